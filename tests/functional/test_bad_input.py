"""Every bad input ends in one clear paragraph and exit 2, with nothing changed (issue 18).

Table-driven: each case is a command line (and environment) an operator could type; the test
checks the exit code, that the error is one paragraph starting "Error:" naming what is wrong, that
no traceback is printed, that the state store is byte-for-byte unchanged, and that nothing was
created in the account.
"""

from __future__ import annotations

import hashlib
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from migrate import commands
from migrate.cli import cli
from migrate.commands import Settings
from tests.conftest import PLAYBOOKS

KMS = str(PLAYBOOKS / "kms-key.yaml")
S3 = str(PLAYBOOKS / "s3-default-encryption.yaml")


@dataclass(frozen=True)
class Case:
    """One bad input: arguments (``{tmp}``, ``{plan}``, ``{run}`` are filled in), environment
    changes (None deletes), the words the message must contain."""

    args: tuple[str, ...]
    says: tuple[str, ...]
    env: dict[str, str | None] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)
    code: int = 2


BAD_PLAYBOOKS = {
    "yaml.yaml": "name: x\nsteps: [\n",
    "unknown-step.yaml": "name: x\nsteps:\n  - id: a\n    uses: s3.nope\n",
    "unknown-key.yaml": "name: x\nsteps:\n  - id: a\n    uses: kms.ensure_key\n    with: {alais: x}\n",
    "dup.yaml": "name: x\nsteps:\n  - id: a\n    uses: core.wait\n  - id: a\n    uses: core.wait\n",
    "undefined.yaml": "name: x\nsteps:\n  - id: a\n    uses: kms.ensure_key\n"
    "    with: {alias: '{{ params.nope }}'}\n",
    "no-steps.yaml": "name: x\n",
    "bad-id.yaml": "name: x\nsteps:\n  - id: 1a\n    uses: core.wait\n",
    "bad-param.yaml": "name: x\nparams:\n  n: {type: integer, default: 1}\n"
    "steps:\n  - id: a\n    uses: core.wait\n    with: {seconds: '{{ params.n }}'}\n",
    "bad-type.yaml": "name: x\nsteps:\n  - id: a\n    uses: core.wait\n    with: {seconds: soon}\n",
    "bad-dep.yaml": "name: x\nsteps:\n  - id: a\n    uses: core.wait\n    depends_on: [zz]\n",
    "top-key.yaml": "name: x\nstepz: []\n",
    "params-file.yaml": "- not\n- a map\n",
}

CASES: dict[str, Case] = {
    "plan-missing-file": Case(("plan", "{tmp}/nope.yaml"), ("nope.yaml",)),
    "plan-invalid-yaml": Case(("plan", "{tmp}/yaml.yaml"), ("yaml.yaml", "YAML")),
    "plan-unknown-step": Case(("plan", "{tmp}/unknown-step.yaml"), ("s3.nope",)),
    "plan-unknown-with-key": Case(("plan", "{tmp}/unknown-key.yaml"), ("alais",)),
    "plan-duplicate-id": Case(("plan", "{tmp}/dup.yaml"), ("duplicate",)),
    "plan-undefined-param": Case(("plan", "{tmp}/undefined.yaml"), ("nope",)),
    "plan-no-steps": Case(("plan", "{tmp}/no-steps.yaml"), ("steps",)),
    "plan-bad-step-id": Case(("plan", "{tmp}/bad-id.yaml"), ("1a",)),
    "plan-bad-with-type": Case(("plan", "{tmp}/bad-type.yaml"), ("seconds",)),
    "plan-unknown-dependency": Case(("plan", "{tmp}/bad-dep.yaml"), ("zz",)),
    "plan-unknown-top-key": Case(("plan", "{tmp}/top-key.yaml"), ("stepz",)),
    "plan-param-without-equals": Case(("plan", KMS, "-p", "key_alias"), ("KEY=VALUE",)),
    "plan-unknown-param": Case(("plan", KMS, "-p", "nope=1"), ("nope",)),
    "plan-params-file-missing": Case(("plan", KMS, "--params", "{tmp}/none.yaml"), ("none.yaml",)),
    "plan-params-file-not-a-map": Case(
        ("plan", KMS, "--params", "{tmp}/params-file.yaml"), ("params-file.yaml",)
    ),
    "plan-show-no-id": Case(("plan", "show"), ("PLAN_ID",)),
    "plan-show-unknown": Case(("plan", "show", "p-nope"), ("p-nope",)),
    "plan-extra-argument": Case(("plan", KMS, "p-123"), ("p-123",)),
    "plan-bad-format": Case(("plan", KMS, "-f", "xml"), ("xml",)),
    "plan-endpoint-not-a-url": Case(("--endpoint-url", "notaurl", "plan", KMS), ("notaurl",)),
    "plan-endpoint-ftp": Case(("--endpoint-url", "ftp://x", "plan", KMS), ("ftp://x",)),
    "plan-no-region": Case(
        ("plan", KMS), ("region",), env={"AWS_DEFAULT_REGION": None, "AWS_REGION": None}
    ),
    "plan-unknown-profile": Case(("--profile", "nope", "plan", KMS), ("nope",)),
    "plan-no-credentials": Case(
        ("plan", KMS),
        ("credentials",),
        env={"AWS_ACCESS_KEY_ID": None, "AWS_SECRET_ACCESS_KEY": None},
    ),
    "run-nothing": Case(("run",), ("PLAYBOOK",)),
    "run-no-terminal": Case(("run", S3), ("--yes",)),
    "run-unknown-plan": Case(("run", "--plan", "p-nope"), ("p-nope",)),
    "run-params-with-plan": Case(("run", "--plan", "{plan}", "-p", "x=1"), ("--plan",)),
    "run-bad-max-wait": Case(("run", "--plan", "{plan}", "--max-wait", "soon"), ("soon",)),
    "run-unknown-only": Case(("run", "--plan", "{plan}", "--only", "zz", "--yes"), ("zz",)),
    "resume-unknown-run": Case(("resume", "r-nope"), ("r-nope",)),
    "status-unknown-run": Case(("status", "r-nope"), ("r-nope",)),
    "status-bad-format": Case(("status", "-f", "yaml"), ("yaml",)),
    "approve-unknown-run": Case(("approve", "r-nope", "kms"), ("r-nope",)),
    "approve-unknown-step": Case(("approve", "{run}", "nope"), ("nope",)),
    "approve-nothing-waits": Case(("approve", "{run}", "kms"), ("awaits",)),
    "approve-unknown-gate": Case(
        ("approve", "{run}", "kms", "--gate", "deactivte"), ("deactivte",)
    ),
    "approve-unknown-target": Case(("approve", "{run}", "kms", "--target", "zz"), ("zz",)),
    "report-unknown-run": Case(("report", "r-nope"), ("r-nope",)),
    "report-missing-directory": Case(
        ("report", "{run}", "-o", "{tmp}/no/such/dir/r.md"), ("does not exist",)
    ),
    "report-bad-format": Case(("report", "{run}", "-f", "pdf"), ("pdf",)),
    "unlock-unknown-run": Case(("unlock", "r-nope", "--lock-id", "x"), ("r-nope",)),
    "rollback-unknown-run": Case(("rollback", "r-nope", "--yes"), ("r-nope",)),
    "steps-unknown-type": Case(("steps", "s3.nope"), ("s3.nope",)),
    "permissions-missing-file": Case(("permissions", "{tmp}/nope.yaml"), ("nope.yaml",)),
    "unknown-command": Case(("plam", KMS), ("plam",)),
}


def _digest(path: Path) -> str | None:
    """The store's content (every row of every table): a WAL checkpoint may rewrite the file's
    pages without changing a thing in it."""
    if not path.exists():
        return None
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return hashlib.sha256("\n".join(conn.iterdump()).encode()).hexdigest()
    finally:
        conn.close()


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("bad-input")
    for name, text in BAD_PLAYBOOKS.items():
        (tmp / name).write_text(text)
    return {"tmp": tmp}


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_is_one_clear_paragraph_and_changes_nothing(
    name: str,
    prepared: dict[str, Any],
    settings: Settings,
    aws: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    case = CASES[name]
    aws("s3").create_bucket(Bucket="app-data")
    # A real run and a saved plan for the cases that need one (a core.wait: no AWS changes).
    book = prepared["tmp"] / "wait.yaml"
    book.write_text("name: w\nsteps:\n  - id: kms\n    uses: core.wait\n    with: {seconds: 0}\n")
    plan_id, _ = commands.plan(settings, str(book))
    run = commands.run(settings, None, plan_id=plan_id)
    state = Path(str(settings.state))
    before = _digest(state)
    keys_before = aws("kms").list_keys()["Keys"]
    for key, value in case.env.items():
        if value is None:
            monkeypatch.delenv(key, raising=False)
        else:
            monkeypatch.setenv(key, value)
    fill = {"tmp": str(prepared["tmp"]), "plan": plan_id, "run": run.run_id}
    args = [a.format(**fill) for a in case.args]
    out = CliRunner().invoke(cli, ["--state", str(state), *args])
    text = out.output
    assert out.exit_code == case.code, (args, text)
    assert out.exception is None or isinstance(out.exception, SystemExit), (args, out.exception)
    assert "Traceback" not in text
    error = text[text.index("Error:") :] if "Error:" in text else ""
    assert error, f"no 'Error:' paragraph: {text!r}"
    assert "\n\n" not in error.strip(), f"more than one paragraph: {error!r}"
    for word in case.says:
        assert word in error, (word, error)
    assert _digest(state) == before, "the state store changed"
    assert aws("kms").list_keys()["Keys"] == keys_before, "something was created in the account"
