"""Engine behaviour through the Python API: gates, waits, failures, resume, stale plans, edits.

Every test runs on a SQLite and on a PostgreSQL state store (``both_stores``)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from migrate import commands
from migrate.commands import Settings
from migrate.engine.base import Action
from migrate.engine.runner import CONFIRM_NO, CONFIRM_YES, RunOptions
from migrate.errors import BadInputError, StalePlanError
from tests.conftest import PLAYBOOKS, write_playbook

pytestmark = pytest.mark.both_stores

GATED = """\
name: gated
steps:
  - id: kms
    uses: kms.ensure_key
  - id: s3
    uses: s3.default_encryption
    approve: true
    yes_approves: {yes}
    with:
      kms_key: "{{{{ steps.kms.key_arn }}}}"
"""


def _opts(**kw: Any) -> RunOptions:
    return RunOptions(quiet=True, **kw)


def _algo(aws: Any, bucket: str) -> str | None:
    try:
        rules = aws("s3").get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]
    except Exception:
        return None
    return str(rules["Rules"][0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"])


def _action_statuses(settings: Settings, run_id: str, step: str) -> dict[str, str]:
    data = commands.status(settings, run_id)
    s = next(s for s in data["steps"] if s["id"] == step)
    return {a["target"]: a["status"] for a in s["actions"]}


def test_gate_stops_run_until_approved_per_target(
    settings: Settings, aws: Any, tmp_path: Path
) -> None:
    for b in ("gate-a", "gate-b"):
        aws("s3").create_bucket(Bucket=b)
    book = write_playbook(tmp_path / "g.yaml", GATED.format(yes="non-destructive"))
    result = commands.run(settings, str(book), options=_opts())
    assert (result.status, result.exit_code) == ("awaiting-approval", 3)
    assert _algo(aws, "gate-a") is None
    assert _action_statuses(settings, result.run_id, "s3") == {
        "gate-a": "awaiting-approval",
        "gate-b": "awaiting-approval",
    }

    approval = commands.approve(settings, result.run_id, "s3", target="gate-a")
    assert approval["by"] and approval["caller_arn"].startswith("arn:aws:")
    again = commands.resume(settings, result.run_id, _opts())
    assert again.exit_code == 3
    assert _algo(aws, "gate-a") == "aws:kms" and _algo(aws, "gate-b") is None

    commands.approve(settings, result.run_id, "s3")
    final = commands.resume(settings, result.run_id, _opts())
    assert (final.status, final.exit_code) == ("done", 0)
    assert _algo(aws, "gate-b") == "aws:kms"
    approvals = commands.status(settings, result.run_id)["approvals"]
    assert [(a["target"], a["via"]) for a in approvals] == [
        ("gate-a", "approve"),
        (None, "approve"),
    ]


def test_approve_unknown_target_is_refused(settings: Settings, aws: Any, tmp_path: Path) -> None:
    aws("s3").create_bucket(Bucket="gate-c")
    book = write_playbook(tmp_path / "g.yaml", GATED.format(yes="non-destructive"))
    result = commands.run(settings, str(book), options=_opts())
    with pytest.raises(BadInputError, match="its targets are: gate-c"):
        commands.approve(settings, result.run_id, "s3", target="gate-x")
    with pytest.raises(BadInputError, match="has no step 'nope'"):
        commands.approve(settings, result.run_id, "nope")


def test_yes_approves_non_destructive_gates_unless_playbook_says_none(
    settings: Settings, aws: Any, tmp_path: Path, new_state: Callable[[str], str]
) -> None:
    aws("s3").create_bucket(Bucket="yes-bucket")
    book = write_playbook(tmp_path / "g.yaml", GATED.format(yes="non-destructive"))
    result = commands.run(settings, str(book), options=_opts(yes=True))
    assert result.status == "done"
    approvals = commands.status(settings, result.run_id)["approvals"]
    assert approvals and approvals[0]["via"] == "--yes"

    aws("s3").create_bucket(Bucket="yes-bucket-2")
    settings2 = Settings(**{**settings.__dict__, "state": new_state("other")})
    book2 = write_playbook(tmp_path / "g2.yaml", GATED.format(yes="none"))
    result2 = commands.run(settings2, str(book2), options=_opts(yes=True))
    assert result2.status == "awaiting-approval"


def test_wait_is_polled_when_it_ends_within_max_wait(settings: Settings, tmp_path: Path) -> None:
    book = write_playbook(
        tmp_path / "w.yaml",
        "name: w\nsteps:\n  - id: soak\n    uses: core.wait\n    with:\n      seconds: 2\n",
    )
    started = time.monotonic()
    result = commands.run(settings, str(book), options=_opts(max_wait_s=60))
    assert result.status == "done"
    assert time.monotonic() - started >= 2


def test_long_wait_exits_4_and_resume_continues_it(
    settings: Settings, aws: Any, tmp_path: Path
) -> None:
    aws("s3").create_bucket(Bucket="indep-bucket")
    book = write_playbook(
        tmp_path / "w.yaml",
        """\
name: w
steps:
  - id: soak
    uses: core.wait
    with: {seconds: 2}
  - id: after-soak
    uses: core.wait
  - id: kms
    uses: kms.ensure_key
    depends_on: []
""",
    )
    result = commands.run(settings, str(book), options=_opts(max_wait_s=0))
    assert (result.status, result.exit_code) == ("waiting", 4)
    steps = {s["id"]: s for s in commands.status(settings, result.run_id)["steps"]}
    # The waiting step does not hold up a step that does not depend on it...
    assert steps["kms"]["status"] == "done"
    # ...but holds up its dependant.
    assert steps["after-soak"]["status"] == "pending"
    assert steps["soak"]["actions"][0]["wait_until"]
    time.sleep(2.1)
    final = commands.resume(settings, result.run_id, _opts(max_wait_s=0))
    assert final.status == "done"


def test_failed_action_is_retried_on_resume(settings: Settings, aws: Any, tmp_path: Path) -> None:
    s3 = aws("s3")
    for b in ("fail-a", "fail-b"):
        s3.create_bucket(Bucket=b)

    def confirm(step_id: str, action: Action) -> str:
        # Someone deletes the bucket between observation and change: a real NoSuchBucket.
        if action.target == "fail-a":
            s3.delete_bucket(Bucket="fail-a")
        return CONFIRM_YES

    book = str(PLAYBOOKS / "s3-default-encryption.yaml")
    result = commands.run(settings, book, options=_opts(confirm=confirm))
    assert (result.status, result.exit_code) == ("failed", 1)
    actions = _action_statuses(settings, result.run_id, "s3-default-encryption")
    assert actions == {"fail-a": "failed", "fail-b": "done"}
    err = commands.status(settings, result.run_id)["steps"][1]["actions"][0]["error"]
    assert "NoSuchBucket" in err

    s3.create_bucket(Bucket="fail-a")
    final = commands.resume(settings, result.run_id, _opts())
    assert final.status == "done"
    assert _algo(aws, "fail-a") == "aws:kms"


def test_step_mode_no_skips_the_action(settings: Settings, aws: Any) -> None:
    """`--step` "no" skips: the resource is left as it is, the run goes on and ends done with the
    skip in its residuals, and a resume never performs it behind the operator's back."""
    for b in ("step-a", "step-b"):
        aws("s3").create_bucket(Bucket=b)
    asked: list[str] = []

    def confirm(step_id: str, action: Action) -> str:
        asked.append(action.target)
        return CONFIRM_NO if action.target == "step-b" else CONFIRM_YES

    book = str(PLAYBOOKS / "s3-default-encryption.yaml")
    result = commands.run(settings, book, options=_opts(confirm=confirm))
    assert result.status == "done" and result.exit_code == 0
    assert asked == ["alias/migrate-ftr", "step-a", "step-b"]
    assert _algo(aws, "step-a") == "aws:kms" and _algo(aws, "step-b") is None
    remains = commands.report(settings, result.run_id)["residuals"]
    assert [(r["target"], r["what"]) for r in remains] == [
        ("step-b", "skipped by the operator (--step: no)")
    ]
    assert commands.resume(settings, result.run_id, _opts()).status == "done"
    assert _algo(aws, "step-b") is None


def test_only_and_until(settings: Settings, aws: Any) -> None:
    aws("s3").create_bucket(Bucket="until-bucket")
    book = str(PLAYBOOKS / "s3-default-encryption.yaml")
    result = commands.run(settings, book, options=_opts(until="kms"))
    assert result.status == "paused"
    assert _algo(aws, "until-bucket") is None
    assert commands.resume(settings, result.run_id, _opts()).status == "done"
    with pytest.raises(BadInputError, match="no step 'nope'"):
        commands.run(settings, book, options=_opts(only=["nope"]))


def test_stale_plan_is_refused_with_what_changed(settings: Settings, aws: Any) -> None:
    aws("s3").create_bucket(Bucket="before-plan")
    book = str(PLAYBOOKS / "s3-default-encryption.yaml")
    plan_id, _ = commands.plan(settings, book)
    aws("s3").create_bucket(Bucket="after-plan")
    with pytest.raises(StalePlanError, match=r"plan .* is stale.*buckets\.after-plan: added"):
        commands.run(settings, None, plan_id=plan_id, options=_opts())
    assert not aws("kms").list_keys()["Keys"]  # nothing was changed

    fresh_id, _ = commands.plan(settings, book)
    result = commands.run(settings, None, plan_id=fresh_id, options=_opts())
    assert result.status == "done"
    assert commands.status(settings, result.run_id)["plan_id"] == fresh_id


def test_resume_after_playbook_edit_replans_changed_steps(
    settings: Settings, aws: Any, tmp_path: Path
) -> None:
    for b in ("edit-keep", "edit-skip"):
        aws("s3").create_bucket(Bucket=b)
    text = (PLAYBOOKS / "s3-default-encryption.yaml").read_text()
    book = write_playbook(tmp_path / "b.yaml", text)
    result = commands.run(settings, str(book), options=_opts(until="kms"))
    assert result.status == "paused"
    book.write_text(text.replace("default: []", 'default: ["edit-skip"]'))
    changes = commands.playbook_changes(settings, result.run_id)
    assert {(c.step_id, c.change) for c in changes} == {
        ("kms", "changed"),
        ("s3-default-encryption", "changed"),
    }
    with pytest.raises(BadInputError, match="changed since run"):
        commands.resume(settings, result.run_id, _opts())
    final = commands.resume(settings, result.run_id, _opts(), accept_changes=True)
    assert final.status == "done"
    assert _algo(aws, "edit-keep") == "aws:kms"
    assert _algo(aws, "edit-skip") is None
    assert len(aws("kms").list_keys()["Keys"]) == 1  # the done kms step was not redone


def test_plan_is_stale_when_a_database_changed_after_planning(settings: Settings, aws: Any) -> None:
    rds = aws("rds")
    rds.create_db_instance(
        DBInstanceIdentifier="stale-db",
        DBInstanceClass="db.t3.micro",
        Engine="mysql",
        MasterUsername="admin",
        MasterUserPassword="Not-A-Real-Secret-7",
        AllocatedStorage=20,
        BackupRetentionPeriod=7,
    )
    plan_id, _ = commands.plan(settings, str(PLAYBOOKS / "rds-encrypt.yaml"))
    rds.modify_db_instance(
        DBInstanceIdentifier="stale-db", BackupRetentionPeriod=14, ApplyImmediately=True
    )
    with pytest.raises(StalePlanError, match=r"stale-db.*(7 -> 14|backup)"):
        commands.run(settings, None, plan_id=plan_id, options=_opts())


def test_plan_is_stale_when_an_object_was_added_after_planning(
    settings: Settings, aws: Any
) -> None:
    s3 = aws("s3")
    s3.create_bucket(Bucket="stale-objects")
    s3.put_object(Bucket="stale-objects", Key="a.txt", Body=b"a")
    plan_id, _ = commands.plan(settings, str(PLAYBOOKS / "s3-reencrypt.yaml"))
    s3.put_object(Bucket="stale-objects", Key="b.txt", Body=b"b")
    with pytest.raises(StalePlanError, match="stale-objects"):
        commands.run(settings, None, plan_id=plan_id, options=_opts())
