"""The plan is a contract: what the planning meeting approves is exactly what runs, for the account
the plan names (issue 12)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from migrate import cli as cli_module
from migrate import commands
from migrate.cli import cli
from migrate.commands import Settings
from migrate.engine.playbook import load_playbook
from migrate.engine.runner import RunOptions
from migrate.errors import EXIT_AWAITING_APPROVAL
from migrate.reports.render import render_plan, render_plan_report, render_run_report
from migrate.sandbox.seed import seed
from migrate.sandbox.server import SandboxServer
from migrate.steps.dr.restore_test import DrRestoreTest
from migrate.store.status import ActionStatus, StepStatus
from tests.conftest import PLAYBOOKS

SHIPPED = sorted(PLAYBOOKS.glob("*.yaml"))
KMS_S3 = str(PLAYBOOKS / "s3-default-encryption.yaml")


def _sandbox_params(book: Path, config_dir: Path) -> list[str]:
    """What `make demo` passes (no week-long windows), for the parameters ``book`` declares."""
    wanted = {
        "watch_window": "0s",
        "retire_window": "0s",
        "cleanup_soak": "0s",
        "check_endpoint": "false",  # the sandbox has no DNS (the demo passes it too)
        "unused_days": "0",
        "config_paths": str(config_dir),
    }
    declared = load_playbook(str(book)).params
    return [f"{k}={v}" for k, v in wanted.items() if k in declared]


def _planned(result: Any) -> set[tuple[str, str, str, str | None]]:
    return {(s.id, a.kind, a.target, a.gate) for s in result.steps for a in s.actions}


def _ran(settings: Settings, run_id: str) -> set[tuple[str, str, str, str | None]]:
    data = commands.status(settings, run_id)
    return {
        (s["id"], a["kind"], a["target"], a["gate"])
        for s in data["steps"]
        for a in s["actions"]
        if a["status"] != ActionStatus.SUPERSEDED
    }


def approve_waiting(settings: Settings, run_id: str) -> None:
    """Approve every gate that waits, one gate kind per step at a time (as `migrate approve`
    asks an operator to)."""
    for step in commands.status(settings, run_id)["steps"]:
        if step["status"] == StepStatus.AWAITING_APPROVAL:
            waiting = {
                a["gate"] or "approve"
                for a in step["actions"]
                if a["status"] == ActionStatus.AWAITING_APPROVAL
            }
            for gate in sorted(waiting):
                commands.approve(settings, run_id, step["id"], gate=gate)


def _run_to_the_end(settings: Settings, plan_id: str) -> Any:
    """Apply a saved plan as the demo's operator does: --yes, then approve what waits."""
    options = RunOptions(yes=True, quiet=True, max_wait_s=60)
    result = commands.run(settings, None, plan_id=plan_id, options=options)
    for _ in range(10):
        if result.exit_code != EXIT_AWAITING_APPROVAL:
            break
        approve_waiting(settings, result.run_id)
        result = commands.resume(
            settings, result.run_id, RunOptions(yes=True, quiet=True, max_wait_s=60)
        )
    return result


# Playbooks whose run is known to differ from their plan (strict xfail: fixing one fails here
# until it is removed). None now: ssm.session_manager plans for the role keys-to-roles gives an
# instance (its planned output ``instance_roles``) instead of a role of its own.
KNOWN_MISMATCH: dict[str, str] = {}


@pytest.mark.parametrize(
    "book",
    [
        pytest.param(b, marks=pytest.mark.xfail(reason=KNOWN_MISMATCH[b.stem], strict=True))
        if b.stem in KNOWN_MISMATCH
        else b
        for b in SHIPPED
    ],
    ids=[b.stem for b in SHIPPED],
)
def test_what_runs_is_what_was_planned(
    book: Path, moto_server: SandboxServer, settings: Settings, tmp_path: Path
) -> None:
    """For every shipped playbook on the sandbox: the (step, kind, target, gate) set a run of the
    saved plan performs equals the plan's, and a plan made after the run has nothing left to do
    for what the run did."""
    summary = seed(moto_server.endpoint_url, tmp_path / "sandbox")
    params = _sandbox_params(book, summary.config_dir)
    plan_id, plan = commands.plan(settings, str(book), params)
    planned = _planned(plan)
    result = _run_to_the_end(settings, plan_id)
    assert _ran(settings, result.run_id) == planned
    _, after = commands.plan(settings, str(book), params)
    redone = _planned(after) & planned
    assert not {p for p in redone if p[1] not in _REPEATING}, redone


# Kinds planned again after a run by nature: LookupEvents re-reads its window, and a human review
# the run cannot do stays in every plan until someone acts on it.
_REPEATING = {"cloudtrail.ingest", "iam.review"}
# A DR drill is repeated by design ("periodically and after major updates"): every plan has it.
_REPEATING |= set(DrRestoreTest.action_kinds)


def test_keys_to_roles_plans_from_the_cloudtrail_evidence(
    moto_server: SandboxServer, settings: Settings, tmp_path: Path
) -> None:
    """The plan reads the trail (read-only) before keys-to-roles plans: the app server's key,
    which the seeded logs show in use, is never planned as "never used"."""
    summary = seed(moto_server.endpoint_url, tmp_path / "sandbox")
    book = PLAYBOOKS / "ftr-baseline.yaml"
    _, plan = commands.plan(settings, str(book), _sandbox_params(book, summary.config_dir))
    body = plan.body()
    usage = next(s for s in body["steps"] if s["uses"] == "cloudtrail.usage")
    assert usage["evidence"] and "log files" in usage["evidence"]
    keys = next(s for s in plan.steps if s.uses == "iam.keys_to_roles")
    assert usage["id"] not in keys.known_after, "keys-to-roles still waits for the evidence"
    summaries = " ".join(a.summary for a in keys.actions)
    assert "iam.create_role" in {a.kind for a in keys.actions}, summaries


def test_every_plan_and_report_names_account_region_and_caller(
    settings: Settings, aws: Any, tmp_path: Path
) -> None:
    aws("s3").create_bucket(Bucket="app-data")
    plan_id, plan = commands.plan(settings, KMS_S3)
    body = plan.body()
    body["plan_id"] = plan_id
    ctx = body["context"]
    assert ctx["account_id"] == "123456789012" and ctx["regions"] == ["us-east-1"]
    assert ctx["caller_arn"].startswith("arn:aws:") and ctx["partition"] == "aws"
    assert ctx["playbook_fingerprint"].startswith("sha256:") and ctx["tool_version"]
    assert body["schema"] == "migrate.plan/1"
    for text in (
        render_plan(body),
        render_plan_report(body, "md"),
        render_plan_report(body, "html"),
    ):
        assert "123456789012" in text and "us-east-1" in text and ctx["caller_arn"] in text
    result = commands.run(settings, None, plan_id=plan_id, options=RunOptions(quiet=True))
    report = commands.report(settings, result.run_id)
    assert report["context"]["account_id"] == "123456789012"
    assert report["context"]["regions"] == ["us-east-1"]
    for fmt in ("md", "html"):
        assert "123456789012" in render_run_report(report, fmt)
    json.dumps(report)  # stays JSON


def _invoke(state: Path, *args: str, input: str | None = None) -> Any:
    return CliRunner().invoke(cli, ["--state", str(state), *args], input=input)


def test_run_without_a_plan_refuses_without_a_terminal(
    settings: Settings, aws: Any, tmp_path: Path
) -> None:
    aws("s3").create_bucket(Bucket="app-data")
    out = _invoke(tmp_path / "m.db", "run", KMS_S3)
    assert out.exit_code == 2, out.output
    assert "--yes" in out.output and "migrate run --plan" in out.output
    assert "Traceback" not in out.output
    assert aws("kms").list_keys()["Keys"] == []  # nothing changed


@pytest.mark.parametrize(("answer", "changed"), [("n\n", False), ("y\n", True)])
def test_run_without_a_plan_shows_it_and_asks_on_a_terminal(
    answer: str,
    changed: bool,
    settings: Settings,
    aws: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    aws("s3").create_bucket(Bucket="app-data")
    monkeypatch.setattr(cli_module, "_interactive", lambda: True)
    out = _invoke(tmp_path / "m.db", "run", KMS_S3, input=answer)
    assert "apply?" in out.output and "s3://app-data" in out.output
    assert out.exit_code == 0, out.output
    assert bool(aws("kms").list_keys()["Keys"]) is changed


def test_params_with_a_saved_plan_are_refused(settings: Settings, aws: Any, tmp_path: Path) -> None:
    plan_id, _ = commands.plan(settings, KMS_S3)
    out = _invoke(Path(str(settings.state)), "run", "--plan", plan_id, "-p", "key_alias=alias/x")
    assert out.exit_code == 2 and "fixed its parameters" in out.output


def test_no_region_is_an_error_and_aws_region_is_honoured(
    endpoint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    monkeypatch.delenv("AWS_REGION", raising=False)
    out = _invoke(tmp_path / "m.db", "plan", KMS_S3)
    assert out.exit_code == 2 and "no AWS region" in out.output, out.output
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    out = _invoke(tmp_path / "m.db", "plan", KMS_S3, "--json")
    assert out.exit_code == 0, out.output
    assert json.loads(out.stdout)["context"]["regions"] == ["eu-west-1"]


RDS = str(PLAYBOOKS / "rds-encrypt.yaml")


def _rds_run(
    moto_server: SandboxServer, settings: Settings, tmp_path: Path
) -> tuple[str, list[str]]:
    """A sandbox rds-encrypt run stopped at its first gates (stop-writes, one per database)."""
    summary = seed(moto_server.endpoint_url, tmp_path / "sandbox")
    plan_id, _ = commands.plan(settings, RDS)
    result = commands.run(settings, None, plan_id=plan_id, options=RunOptions(yes=True, quiet=True))
    assert result.exit_code == EXIT_AWAITING_APPROVAL
    return result.run_id, sorted(summary.db_instances)


def test_approvals_name_real_gates_one_kind_at_a_time(
    moto_server: SandboxServer, settings: Settings, tmp_path: Path
) -> None:
    run_id, dbs = _rds_run(moto_server, settings, tmp_path)
    assert len(dbs) >= 2, "the sandbox needs two databases for this test"
    step = next(
        s["id"] for s in commands.status(settings, run_id)["steps"] if s["uses"] == "rds.encrypt"
    )
    state = Path(str(settings.state))
    typo = _invoke(state, "approve", run_id, step, "--gate", "stop-writs")
    assert typo.exit_code == 2 and "stop-writes" in typo.output and "cut-over" in typo.output
    # One database's stop-writes approved: it reaches its cut-over while the other still waits
    # at stop-writes; a bare approval would open two kinds of gates at once.
    first = _invoke(
        state,
        "approve",
        run_id,
        step,
        "--target",
        dbs[0],
        "--reason",
        "night 1",
        "--ticket",
        "CHG-7",
    )
    assert first.exit_code == 0, first.output
    commands.resume(settings, run_id, RunOptions(yes=True, quiet=True))
    mixed = _invoke(state, "approve", run_id, step)
    assert mixed.exit_code == 2 and "--gate cut-over" in mixed.output, mixed.output
    assert "--gate stop-writes" in mixed.output
    recorded = commands.status(settings, run_id)["approvals"]
    assert {(a["target"], a["reason"], a["ticket"]) for a in recorded} == {
        (dbs[0], "night 1", "CHG-7")
    }


def test_a_standing_destructive_approval_needs_a_target_or_all_targets(
    moto_server: SandboxServer, settings: Settings, tmp_path: Path
) -> None:
    run_id, dbs = _rds_run(moto_server, settings, tmp_path)
    step = next(
        s["id"] for s in commands.status(settings, run_id)["steps"] if s["uses"] == "rds.encrypt"
    )
    state = Path(str(settings.state))
    bare = _invoke(state, "approve", run_id, step, "--gate", "cleanup")
    assert bare.exit_code == 2 and "--all-targets" in bare.output, bare.output
    one = _invoke(state, "approve", run_id, step, "--gate", "cleanup", "--target", dbs[0])
    assert one.exit_code == 0, one.output
    every = _invoke(state, "approve", run_id, step, "--gate", "cleanup", "--all-targets")
    assert every.exit_code == 0, every.output


def test_the_terminal_plan_groups_warnings_and_risks_by_severity(
    settings: Settings, aws: Any, tmp_path: Path
) -> None:
    for name in ("app-a", "app-b"):
        aws("s3").create_bucket(Bucket=name)
    aws("s3", region="eu-west-1").create_bucket(
        Bucket="far-data", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
    )
    key_arn = aws("kms").create_key()["KeyMetadata"]["Arn"]
    book = tmp_path / "pb.yaml"
    book.write_text(
        "name: sev\nsteps:\n  - id: enc\n    uses: s3.default_encryption\n"
        f"    with:\n      kms_key: {key_arn}\n"
    )
    out = _invoke(Path(str(settings.state)), "plan", str(book))
    assert out.exit_code == 0, out.output
    text = out.stdout
    blocking = text.index("Blocking")
    assert "s3://far-data" in text[blocking:]
    # The same risk on two buckets is one line naming how many targets, not two bullets.
    info = [line for line in text.splitlines() if "only new objects are encrypted" in line]
    assert len(info) == 1 and "2 targets" in info[0]


def test_detailed_exitcode_show_and_schema_ids(
    settings: Settings, aws: Any, tmp_path: Path
) -> None:
    state = Path(str(settings.state))
    aws("s3").create_bucket(Bucket="app-data")
    changes = _invoke(state, "plan", KMS_S3, "--detailed-exitcode", "-f", "json")
    assert changes.exit_code == 2
    body = json.loads(changes.stdout)
    assert body["schema"] == "migrate.plan/1"
    shown = _invoke(state, "plan", "show", body["plan_id"], "--json")
    assert shown.exit_code == 0 and json.loads(shown.stdout)["fingerprint"] == body["fingerprint"]
    assert _invoke(state, "plan", "show", "p-nope").exit_code == 2
    commands.run(settings, None, plan_id=body["plan_id"], options=RunOptions(quiet=True))
    none_left = _invoke(state, "plan", KMS_S3, "--detailed-exitcode")
    assert none_left.exit_code == 0, none_left.output
    status = json.loads(_invoke(state, "status", "-f", "json").stdout)
    assert status["schema"] == "migrate.status/1"
    steps = json.loads(_invoke(state, "steps", "--json").stdout)
    assert steps["schema"] == "migrate.steps/1" and steps["steps"]


def test_the_playbook_json_schema_validates_and_catches_typos(tmp_path: Path) -> None:
    import jsonschema

    out = CliRunner().invoke(cli, ["steps", "--playbook-schema"])
    schema = json.loads(out.stdout)
    jsonschema.Draft202012Validator.check_schema(schema)
    good = {
        "name": "x",
        "steps": [{"id": "kms", "uses": "kms.ensure_key", "with": {"alias": "alias/a"}}],
    }
    jsonschema.validate(good, schema)
    for bad in (
        {"name": "x", "steps": [{"id": "kms", "uses": "kms.ensure_kee"}]},
        {"name": "x", "steps": [{"id": "kms", "uses": "kms.ensure_key", "with": {"alais": "a"}}]},
    ):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(bad, schema)


def test_done_says_what_remains_for_the_ftr(settings: Settings, aws: Any, tmp_path: Path) -> None:
    """A residual a step records (here: a test step that keeps something on purpose) is listed
    first in the run report and named by the CLI's last line, even when the run is done."""
    from migrate.engine.base import Action, Estimate, Step, StepParams, handles
    from migrate.engine.registry import step

    @step("test.keeps_one")
    class KeepsOne(Step):
        """Test step: does its work but keeps one thing on purpose (a residual)."""

        Params = StepParams
        action_kinds = ("test.keep",)
        example = "- id: keep\n  uses: test.keeps_one\n"

        def observe(self, ctx: Any) -> dict[str, Any]:
            return {"compliant": []}

        def decide(self, ctx: Any, facts: dict[str, Any]) -> list[Action]:
            return [Action(kind="test.keep", target="old-key", summary="keep", estimate=Estimate())]

        @handles("test.keep")
        def _keep(self, ctx: Any, action: Action) -> None:
            ctx.record_residual(
                "access key still active", "a human review kept it", "deactivate it later"
            )

    book = tmp_path / "keep.yaml"
    book.write_text("name: keep\nsteps:\n  - id: keep\n    uses: test.keeps_one\n")
    try:
        out = _invoke(Path(str(settings.state)), "run", str(book), "--yes")
    finally:
        from migrate.engine import registry

        registry._REGISTRY.pop("test.keeps_one", None)
    assert out.exit_code == 0, out.output
    assert "1 item(s) remain for the FTR" in out.output
    run_id = commands.status(settings)["runs"][0]["id"]
    report = commands.report(settings, run_id)
    assert report["residuals"][0]["what"] == "access key still active"
    md = render_run_report(report, "md")
    assert md.index("What remains for the FTR") < md.index("## keep")
    assert "access key still active" in md


def test_missing_credentials_and_missing_profile_share_one_exit_code(
    endpoint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID", raising=False)
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY", raising=False)
    no_credentials = _invoke(tmp_path / "m.db", "plan", KMS_S3)
    assert no_credentials.exit_code == 2, no_credentials.output
    assert "No AWS credentials" in no_credentials.output
    no_profile = _invoke(tmp_path / "m.db", "--profile", "nope", "plan", KMS_S3)
    assert no_profile.exit_code == 2 and "nope" in no_profile.output, no_profile.output
