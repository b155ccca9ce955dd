"""s3.reencrypt names the readers CloudTrail saw, and whether the key lets them decrypt."""

from __future__ import annotations

from pathlib import Path

from migrate import commands
from migrate.commands import Settings
from migrate.engine.runner import RunOptions
from migrate.sandbox.seed import seed
from tests.conftest import write_playbook

EVIDENCE = """\
name: evidence
steps:
  - id: kms
    uses: kms.ensure_key
    with: {{key_policy: {policy}}}
  - id: usage
    uses: cloudtrail.usage
    with: {{source: "s3://legacy-cloudtrail-logs", since: 3650d}}
"""
REENCRYPT = """\
name: reencrypt
steps:
  - id: kms
    uses: kms.ensure_key
    with: {{key_policy: {policy}}}
  - id: s3
    uses: s3.reencrypt
    with:
      names: [legacy-app-data]
      kms_key: "{{{{ steps.kms.key_arn }}}}"
"""


def _risks(settings: Settings, tmp_path: Path, policy: str) -> list[str]:
    evidence = write_playbook(tmp_path / "e.yaml", EVIDENCE.format(policy=policy))
    assert commands.run(settings, str(evidence), options=RunOptions(quiet=True)).status == "done"
    book = write_playbook(tmp_path / "r.yaml", REENCRYPT.format(policy=policy))
    _, plan = commands.plan(settings, str(book))
    step = next(s for s in plan.steps if s.id == "s3")
    return [r for a in step.actions for r in a.risks]


def test_readers_seen_in_cloudtrail_are_checked_against_a_strict_key(
    settings: Settings, endpoint: str, tmp_path: Path
) -> None:
    seed(endpoint, tmp_path / "sandbox")
    risks = _risks(settings, tmp_path, "strict")
    app_server = [r for r in risks if "user/app-server" in r]
    assert app_server and "seen in CloudTrail" in app_server[0]
    assert "kms:Decrypt" in app_server[0]


def test_service_key_policy_lets_account_readers_decrypt(
    settings: Settings, endpoint: str, tmp_path: Path
) -> None:
    seed(endpoint, tmp_path / "sandbox")
    risks = _risks(settings, tmp_path, "service")
    assert not [r for r in risks if "user/app-server" in r]
