"""Every bad input ends in one clear paragraph and exit 2, with nothing changed (issue 18).

Table-driven: each case is a command line (and environment) an operator could type; the test
checks the exit code, that the error is one paragraph starting "Error:" naming what is wrong, that
no traceback is printed, that the state store is byte-for-byte unchanged, and that nothing was
created in the account.
"""

from __future__ import annotations

import hashlib
import json
import socket
import sqlite3
from collections.abc import Callable
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
    """One bad input: arguments (``{tmp}``, ``{plan}``, ``{run}`` and what ``setup`` returns are
    filled in), environment changes (None deletes), the words the message must contain.

    ``setup`` names a function of :data:`SETUPS` that shapes the account (or the disk) before
    the command; ``files`` are written into the case's own directory (``@name@`` in them is
    filled in the same way); ``keeps`` are files that must be byte-for-byte unchanged after;
    ``hides`` are strings (passwords) that must not appear in the output."""

    args: tuple[str, ...]
    says: tuple[str, ...]
    env: dict[str, str | None] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)
    code: int = 2
    setup: str | None = None
    keeps: tuple[str, ...] = ()
    hides: tuple[str, ...] = ()


def _key(aws: Any, alias: str, **create: Any) -> str:
    kms = aws("kms")
    meta = kms.create_key(**create)["KeyMetadata"]
    kms.create_alias(AliasName=alias, TargetKeyId=meta["KeyId"])
    return str(meta["Arn"])


def _disabled_key(aws: Any, tmp: Path) -> dict[str, str]:
    arn = _key(aws, "alias/off")
    aws("kms").disable_key(KeyId=arn.rsplit("/", 1)[1])
    return {"key": arn}


def _deleted_key(aws: Any, tmp: Path) -> dict[str, str]:
    arn = _key(aws, "alias/gone")
    aws("kms").schedule_key_deletion(KeyId=arn.rsplit("/", 1)[1], PendingWindowInDays=7)
    return {"key": arn}


def _signing_key(aws: Any, tmp: Path) -> dict[str, str]:
    return {"key": _key(aws, "alias/sign", KeySpec="RSA_2048", KeyUsage="SIGN_VERIFY")}


def _rds_only_key(aws: Any, tmp: Path) -> dict[str, str]:
    """A key whose policy lets the account use it only through RDS (as kms.ensure_key's
    ``services: [rds]`` writes it)."""
    root = "arn:aws:iam::123456789012:root"
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": root},
                "Action": [
                    "kms:Describe*",
                    "kms:Get*",
                    "kms:List*",
                    "kms:PutKeyPolicy",
                    "kms:ScheduleKeyDeletion",
                ],
                "Resource": "*",
            },
            {
                "Effect": "Allow",
                "Principal": {"AWS": "*"},
                "Action": [
                    "kms:Encrypt",
                    "kms:Decrypt",
                    "kms:GenerateDataKey*",
                    "kms:ReEncrypt*",
                    "kms:DescribeKey",
                ],
                "Resource": "*",
                "Condition": {
                    "StringEquals": {
                        "kms:CallerAccount": "123456789012",
                        "kms:ViaService": "rds.us-east-1.amazonaws.com",
                    }
                },
            },
        ],
    }
    return {"key": _key(aws, "alias/rds-only", Policy=json.dumps(policy))}


def _foreign_store(aws: Any, tmp: Path) -> dict[str, str]:
    path = tmp / "other-program.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY, total REAL)")
    conn.execute("INSERT INTO invoices (total) VALUES (12.5)")
    conn.commit()
    conn.close()
    return {"store": str(path)}


def _garbage_store(aws: Any, tmp: Path) -> dict[str, str]:
    path = tmp / "garbage.db"
    path.write_bytes(b"this is not a database\n" * 100)
    return {"store": str(path)}


def _truncated_store(aws: Any, tmp: Path) -> dict[str, str]:
    path = tmp / "truncated.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE t (x TEXT)")
    conn.executemany("INSERT INTO t VALUES (?)", [("x" * 500,)] * 200)
    conn.commit()
    conn.close()
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])
    return {"store": str(path)}


def _busy_port(aws: Any, tmp: Path) -> dict[str, str]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(1)
    _HELD.append(sock)
    return {"port": str(sock.getsockname()[1])}


def _a_user(aws: Any, tmp: Path) -> dict[str, str]:
    aws("iam").create_user(UserName="app-deployer")
    return {}


_HELD: list[socket.socket] = []
SETUPS: dict[str, Callable[[Any, Path], dict[str, str]]] = {
    "disabled_key": _disabled_key,
    "deleted_key": _deleted_key,
    "signing_key": _signing_key,
    "rds_only_key": _rds_only_key,
    "foreign_store": _foreign_store,
    "garbage_store": _garbage_store,
    "truncated_store": _truncated_store,
    "busy_port": _busy_port,
    "a_user": _a_user,
}


def _s3_book(uses: str, names: str, key: str) -> str:
    return (
        f"name: s3 bad input\nsteps:\n  - id: s3\n    uses: {uses}\n    with:\n"
        f"      names: {names}\n      kms_key: {key}\n"
    )


MISSING_ARN = "arn:aws:kms:us-east-1:123456789012:key/00000000-0000-4000-8000-000000000000"
SECRETS_BOOK = (
    "name: secrets bad input\nsteps:\n  - id: cfg\n    uses: secrets.from_configs\n"
    "    with:\n      paths: [@paths@]\n      kms_key: @key@\n"
)


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
    # -- names that match nothing, keys that cannot be used (the plan checks what AWS would not)
    "s3-default-missing-bucket": Case(
        ("plan", "{case}/b.yaml"),
        ("b.yaml:6", "with.names", "no-such-bucket"),
        files={"b.yaml": _s3_book("s3.default_encryption", "[no-such-bucket]", "alias/aws/s3")},
    ),
    "s3-reencrypt-missing-bucket": Case(
        ("plan", "{case}/b.yaml"),
        ("b.yaml:6", "no-such-bucket"),
        files={"b.yaml": _s3_book("s3.reencrypt", "[app-data, no-such-bucket]", "alias/aws/s3")},
    ),
    "s3-default-missing-alias": Case(
        ("plan", "{case}/b.yaml"),
        ("b.yaml:7", "with.kms_key", "alias/nope", "does not exist"),
        files={"b.yaml": _s3_book("s3.default_encryption", "[app-data]", "alias/nope")},
    ),
    "s3-default-missing-key-arn": Case(
        ("plan", "{case}/b.yaml"),
        ("with.kms_key", MISSING_ARN, "does not exist"),
        files={"b.yaml": _s3_book("s3.default_encryption", "[app-data]", MISSING_ARN)},
    ),
    "s3-reencrypt-missing-alias": Case(
        ("plan", "{case}/b.yaml"),
        ("with.kms_key", "alias/nope"),
        files={"b.yaml": _s3_book("s3.reencrypt", "['app-*']", "alias/nope")},
    ),
    "s3-default-disabled-key": Case(
        ("plan", "{case}/b.yaml"),
        ("alias/off", "Disabled"),
        setup="disabled_key",
        files={"b.yaml": _s3_book("s3.default_encryption", "[app-data]", "alias/off")},
    ),
    "s3-default-key-pending-deletion": Case(
        ("plan", "{case}/b.yaml"),
        ("alias/gone", "PendingDeletion"),
        setup="deleted_key",
        files={"b.yaml": _s3_book("s3.default_encryption", "[app-data]", "alias/gone")},
    ),
    "s3-reencrypt-signing-key": Case(
        ("plan", "{case}/b.yaml"),
        ("alias/sign", "RSA_2048", "symmetric"),
        setup="signing_key",
        files={"b.yaml": _s3_book("s3.reencrypt", "[app-data]", "alias/sign")},
    ),
    "s3-default-key-only-for-rds": Case(
        ("plan", "{case}/b.yaml"),
        ("alias/rds-only", "rds.us-east-1.amazonaws.com", "not S3"),
        setup="rds_only_key",
        files={"b.yaml": _s3_book("s3.default_encryption", "[app-data]", "alias/rds-only")},
    ),
    "s3-default-disabled-key-by-arn": Case(
        ("plan", "{case}/b.yaml"),
        ("Disabled",),
        setup="disabled_key",
        files={"b.yaml": _s3_book("s3.default_encryption", "[app-data]", "'@key@'")},
    ),
    "secrets-missing-file": Case(
        ("plan", "{case}/b.yaml"),
        ("with.paths", "/nonexistent/conf/context.xml", "no such file"),
        files={
            "b.yaml": SECRETS_BOOK.replace("@paths@", "/nonexistent/conf/context.xml").replace(
                "@key@", "alias/aws/secretsmanager"
            )
        },
    ),
    "secrets-missing-key": Case(
        ("plan", "{case}/b.yaml"),
        ("with.kms_key", "alias/nope"),
        files={
            "b.yaml": SECRETS_BOOK.replace("@paths@", "'/nonexistent/*.properties'").replace(
                "@key@", "alias/nope"
            )
        },
    ),
    "secrets-key-only-for-rds": Case(
        ("plan", "{case}/b.yaml"),
        ("alias/rds-only", "not Secrets Manager"),
        setup="rds_only_key",
        files={
            "b.yaml": SECRETS_BOOK.replace("@paths@", "'/nonexistent/*.env'").replace(
                "@key@", "alias/rds-only"
            )
        },
    ),
    "rds-missing-database": Case(
        ("plan", "{case}/b.yaml"),
        ("with.names", "orders-db"),
        setup="rds_only_key",
        files={
            "b.yaml": "name: r\nsteps:\n  - id: rds\n    uses: rds.encrypt\n    with:\n"
            "      names: [orders-db]\n      kms_key: '@key@'\n"
        },
    ),
    "rds-disabled-key": Case(
        ("plan", "{case}/b.yaml"),
        ("with.kms_key", "Disabled"),
        setup="disabled_key",
        files={
            "b.yaml": "name: r\nsteps:\n  - id: rds\n    uses: rds.encrypt\n    with:\n"
            "      names: ['*']\n      kms_key: alias/off\n"
        },
    ),
    "rds-missing-key": Case(
        ("plan", "{case}/b.yaml"),
        ("with.kms_key", "alias/nope", "does not exist"),
        files={
            "b.yaml": "name: r\nsteps:\n  - id: rds\n    uses: rds.encrypt\n    with:\n"
            "      names: ['*']\n      kms_key: alias/nope\n"
        },
    ),
    "dr-missing-database": Case(
        ("plan", "{case}/b.yaml"),
        ("with.names", "orders-db"),
        files={
            "b.yaml": "name: d\nsteps:\n  - id: dr\n    uses: dr.restore_test\n    with:\n"
            "      names: [orders-db]\n"
        },
    ),
    "ssm-missing-instance": Case(
        ("plan", "{case}/b.yaml"),
        ("with.names", "bastion-01"),
        files={
            "b.yaml": "name: s\nsteps:\n  - id: ssm\n    uses: ssm.session_manager\n"
            "    with:\n      names: [bastion-01]\n"
        },
    ),
    # -- state stores migrate cannot or must not use
    "state-dev-null": Case(("--state", "/dev/null", "status"), ("/dev/null",)),
    "state-foreign-sqlite": Case(
        ("--state", "{store}", "status"),
        ("not a migrate state store",),
        setup="foreign_store",
        keeps=("{store}",),
    ),
    "state-garbage-file": Case(
        ("--state", "{store}", "status"), ("garbage.db",), setup="garbage_store", keeps=("{store}",)
    ),
    "state-truncated-sqlite": Case(
        ("--state", "{store}", "status"),
        ("truncated.db",),
        setup="truncated_store",
        keeps=("{store}",),
    ),
    "state-unknown-scheme": Case(
        ("--state", "mysql://u:hunter2@db/x", "status"), ("mysql",), hides=("hunter2",)
    ),
    "state-env-unknown-scheme": Case(
        ("status",), ("ftp",), env={"MIGRATE_STATE": "ftp://example/x"}
    ),
    "state-postgres-unreachable": Case(
        ("--state", "postgresql+psycopg://ops:hunter2@127.0.0.1:9/migrate", "status"),
        ("127.0.0.1:9",),
        hides=("hunter2",),
    ),
    "state-missing-parent-is-not-a-directory": Case(
        ("--state", "{tmp}/yaml.yaml/x.db", "status"), ("yaml.yaml",)
    ),
    # -- more command lines
    "plan-directory-as-playbook": Case(("plan", "{tmp}"), ("directory",)),
    "plan-empty-playbook": Case(
        ("plan", "{case}/empty.yaml"), ("empty.yaml",), files={"empty.yaml": ""}
    ),
    "plan-binary-playbook": Case(
        ("plan", "{case}/bin.yaml"), ("bin.yaml",), files={"bin.yaml": "\x00\x01\x02\xff"}
    ),
    "plan-playbook-is-a-list": Case(
        ("plan", "{case}/list.yaml"), ("list.yaml",), files={"list.yaml": "- a\n- b\n"}
    ),
    "plan-params-file-invalid-yaml": Case(
        ("plan", KMS, "--params", "{tmp}/yaml.yaml"), ("yaml.yaml",)
    ),
    "plan-bad-enum-param": Case(("plan", KMS, "-p", "key_policy=bogus"), ("bogus",)),
    "plan-output-missing-directory": Case(
        ("plan", KMS, "-o", "{tmp}/no/such/dir/p.md"), ("does not exist",)
    ),
    "plan-output-bad-extension": Case(("plan", KMS, "-o", "{tmp}/plan.json"), ("extension",)),
    "resume-bad-max-wait": Case(("resume", "{run}", "--max-wait", "soon"), ("soon",)),
    "run-negative-max-wait": Case(
        ("run", "--plan", "{plan}", "--max-wait", "-5m", "--yes"), ("-5m",)
    ),
    "run-unknown-until": Case(("run", "--plan", "{plan}", "--until", "zz", "--yes"), ("zz",)),
    "resume-no-id": Case(("resume",), ("RUN_ID",)),
    "approve-no-step": Case(("approve", "{run}"), ("STEP_ID",)),
    "report-output-is-a-directory": Case(("report", "{run}", "-o", "{tmp}"), ("directory",)),
    "unlock-not-locked": Case(("unlock", "{run}", "--lock-id", "abc"), ("not locked",)),
    "unlock-no-lock-id": Case(("unlock", "{run}"), ("--lock-id",)),
    "permissions-invalid-yaml": Case(("permissions", "{tmp}/yaml.yaml"), ("yaml.yaml",)),
    "trail-usage-missing-directory": Case(
        ("trail", "usage", "--source", "{tmp}/no-logs-here"), ("no-logs-here",)
    ),
    "trail-usage-bad-window": Case(("trail", "usage", "--since", "soon"), ("soon",)),
    "sandbox-serve-busy-port": Case(
        ("sandbox", "serve", "--port", "{port}"), ("{port}", "in use"), setup="busy_port"
    ),
    "state-copy-same-store": Case(("state", "copy", "--to", "{state}"), ("{state}",)),
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
    tmp_path: Path,
) -> None:
    case = CASES[name]
    aws("s3").create_bucket(Bucket="app-data")
    # A real run and a saved plan for the cases that need one (a core.wait: no AWS changes).
    book = prepared["tmp"] / "wait.yaml"
    book.write_text("name: w\nsteps:\n  - id: kms\n    uses: core.wait\n    with: {seconds: 0}\n")
    plan_id, _ = commands.plan(settings, str(book))
    run = commands.run(settings, None, plan_id=plan_id)
    state = Path(str(settings.state))
    fill = {
        "tmp": str(prepared["tmp"]),
        "plan": plan_id,
        "run": run.run_id,
        "case": str(tmp_path),
        "state": str(state),
    }
    if case.setup:
        fill.update(SETUPS[case.setup](aws, tmp_path))
    for file_name, text in case.files.items():
        for key, value in fill.items():
            text = text.replace(f"@{key}@", value)
        (tmp_path / file_name).write_text(text)
    kept = {p.format(**fill): Path(p.format(**fill)).read_bytes() for p in case.keeps}
    before = _digest(state)
    keys_before = aws("kms").list_keys()["Keys"]
    for key, value in case.env.items():
        if value is None:
            monkeypatch.delenv(key, raising=False)
        else:
            monkeypatch.setenv(key, value)
    args = [a.format(**fill) for a in case.args]
    try:
        # MIGRATE_STATE is what a case tries: --state would override it.
        store = [] if "MIGRATE_STATE" in case.env else ["--state", str(state)]
        out = CliRunner().invoke(cli, [*store, *args])
    finally:
        while _HELD:
            _HELD.pop().close()
    text = out.output
    assert out.exit_code == case.code, (args, text)
    assert out.exception is None or isinstance(out.exception, SystemExit), (args, out.exception)
    assert "Traceback" not in text
    error = text[text.index("Error:") :] if "Error:" in text else ""
    assert error, f"no 'Error:' paragraph: {text!r}"
    assert "\n\n" not in error.strip(), f"more than one paragraph: {error!r}"
    for word in case.says:
        assert word.format(**fill) in error, (word, error)
    for secret in case.hides:
        assert secret not in text, f"{secret!r} was printed"
    assert _digest(state) == before, "the state store changed"
    for path, data in kept.items():
        assert Path(path).read_bytes() == data, f"{path} was changed"
    assert aws("kms").list_keys()["Keys"] == keys_before, "something was created in the account"


def test_the_table_covers_at_least_80_bad_inputs() -> None:
    assert len(CASES) >= 80, len(CASES)


def test_a_glob_that_matches_nothing_is_a_warning_on_the_terminal(
    settings: Settings, aws: Any, tmp_path: Path
) -> None:
    aws("s3").create_bucket(Bucket="app-data")
    book = tmp_path / "globs.yaml"
    book.write_text(_s3_book("s3.default_encryption", "['app-*', 'archive-*']", "alias/aws/s3"))
    out = CliRunner().invoke(cli, ["--state", str(settings.state), "plan", str(book)])
    assert out.exit_code == 0, out.output
    assert "'archive-*' matches no bucket" in out.output
    assert "'app-*' matches no bucket" not in out.output
