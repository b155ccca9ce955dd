"""iam.keys_to_roles moves Lambda functions and ECS task definitions that hold a key to roles.

Against the moto server. moto accepts AWS_ACCESS_KEY_ID in a Lambda environment (AWS reserves
that name), so the first function uses it as the brief's case and the second uses names of its own,
as a real Lambda would.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any

import pytest
from parliament import analyze_policy_string
from sqlalchemy import select, update

from migrate import commands
from migrate.cloudtrail.model import CallStat, IpAttribution, PrincipalUsage, UsageReport
from migrate.cloudtrail.persist import save_report
from migrate.commands import Settings
from migrate.engine.runner import RunOptions
from migrate.steps.iam.workloads import key_variables
from migrate.store.models import ActionRow, JournalEntry, Run
from tests.conftest import write_playbook

LAMBDA_EGRESS = "3.80.12.34"
TRUST_LAMBDA = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "lambda.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
)
BOOK = """\
name: workloads to roles
params:
  watch_window: 1h
steps:
  - id: keys
    uses: iam.keys_to_roles
    with:
      names: ["reports-app"]
      watch_window: "{{ params.watch_window }}"
      retire_window: 0s
      host_regions: [us-east-1]
      s3_object_scope: exact
"""


def _policy(doc: Any) -> dict[str, Any]:
    return json.loads(doc) if isinstance(doc, str) else dict(doc)


def _zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("handler.py", "def handler(event, context):\n    return None\n")
    return buf.getvalue()


@pytest.fixture()
def legacy(settings: Settings, aws: Any) -> dict[str, Any]:
    """A user whose key sits in two Lambda functions and an ECS task definition, with usage."""
    iam = aws("iam")
    iam.create_user(UserName="reports-app")
    key = iam.create_access_key(UserName="reports-app")["AccessKey"]
    key_id, secret = key["AccessKeyId"], key["SecretAccessKey"]
    role_arn = iam.create_role(RoleName="legacy-fn-role", AssumeRolePolicyDocument=TRUST_LAMBDA)[
        "Role"
    ]["Arn"]
    iam.put_role_policy(
        RoleName="legacy-fn-role",
        PolicyName="logs",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": "logs:PutLogEvents", "Resource": "*"}],
            }
        ),
    )
    lam = aws("lambda")
    common = {"Runtime": "python3.11", "Role": role_arn, "Handler": "handler.handler"}
    lam.create_function(
        FunctionName="nightly-export",
        Code={"ZipFile": _zip()},
        Environment={
            "Variables": {
                "AWS_ACCESS_KEY_ID": key_id,
                "AWS_SECRET_ACCESS_KEY": secret,
                "LOG_LEVEL": "debug",
                "BUCKET": "legacy-app-data",
            }
        },
        **common,
    )
    lam.create_function(
        FunctionName="invoice-mailer",
        Code={"ZipFile": _zip()},
        Environment={
            "Variables": {"APP_KEY_ID": key_id, "APP_SECRET_KEY": secret, "SMTP_HOST": "mail"}
        },
        **common,
    )
    ecs = aws("ecs")
    ecs.register_task_definition(
        family="report-worker",
        executionRoleArn=role_arn,
        networkMode="awsvpc",
        requiresCompatibilities=["FARGATE"],
        cpu="256",
        memory="512",
        containerDefinitions=[
            {
                "name": "worker",
                "image": "legacy/report-worker:3",
                "essential": True,
                "environment": [
                    {"name": "AWS_ACCESS_KEY_ID", "value": key_id},
                    {"name": "AWS_SECRET_ACCESS_KEY", "value": secret},
                    {"name": "QUEUE", "value": "reports"},
                ],
            },
            {"name": "sidecar", "image": "legacy/log-shipper:1", "essential": False},
        ],
        tags=[{"key": "team", "value": "reports"}],
    )
    ecs.create_cluster(clusterName="legacy")
    ecs.create_service(
        cluster="legacy",
        serviceName="report-worker",
        taskDefinition="report-worker:1",
        desiredCount=1,
    )
    calls = [
        CallStat(
            "s3.amazonaws.com",
            "GetObject",
            "s3:GetObject",
            30,
            resources=["arn:aws:s3:::legacy-app-data/exports/a.csv"],
        ),
        CallStat("s3.amazonaws.com", "PutObject", "s3:PutObject", 10),
    ]
    save_report(
        settings.store(),
        UsageReport(
            dataset="wl",
            source="dir",
            since="2026-11-23",
            until="2026-11-29",
            generated_at="2026-11-30T00:00:00",
            keys=[
                PrincipalUsage(
                    principal=key_id,
                    kind="access_key",
                    owner="reports-app",
                    calls=40,
                    actions=calls,
                    source_ips={LAMBDA_EGRESS: 40},
                    first_seen="2026-11-23T00:00:00Z",
                    last_seen="2026-11-29T00:00:00Z",
                )
            ],
            ips={LAMBDA_EGRESS: IpAttribution(ip=LAMBDA_EGRESS, kind="outside-aws-or-nat")},
        ),
    )
    return {"key_id": key_id, "secret": secret, "role_arn": role_arn}


def _keys_actions(settings: Settings, run_id: str) -> dict[str, dict[str, Any]]:
    return {
        a["kind"]: a
        for s in commands.status(settings, run_id)["steps"]
        if s["id"] == "keys"
        for a in s["actions"]
    }


def _journal_ops(settings: Settings, run_id: str) -> list[str]:
    with settings.store().read() as session:
        return [
            row.operation
            for row in session.scalars(select(JournalEntry).where(JournalEntry.run_id == run_id))
        ]


def test_key_variables_keeps_others_and_leaves_ambiguous_secrets() -> None:
    key = "AKIAAAAAAAAAAAAAAAAA"
    secret = "a" * 40
    env = {"APP_KEY_ID": key, "APP_SECRET": secret, "AWS_SESSION_TOKEN": "t", "PORT": "80"}
    assert key_variables(env, key) == (["APP_KEY_ID", "APP_SECRET", "AWS_SESSION_TOKEN"], [])
    # Another key's id in the same environment: we cannot tell whose secret it is.
    env2 = {"A_ID": key, "B_ID": "AKIABBBBBBBBBBBBBBBB", "A_SECRET": secret, "B_SECRET": secret}
    assert key_variables(env2, key) == (["A_ID"], ["A_SECRET", "B_SECRET"])
    assert key_variables({"PORT": "80"}, key) == ([], [])


def test_plan_gates_lambda_and_ecs_cut_overs_before_the_watch(
    settings: Settings, legacy: dict[str, Any], tmp_path: Path
) -> None:
    _, plan = commands.plan(settings, str(write_playbook(tmp_path / "k.yaml", BOOK)))
    step = next(s for s in plan.steps if s.id == "keys")
    acts = [a for a in step.actions if a.target == legacy["key_id"]]
    assert [a.kind for a in acts] == [
        "iam.switch_lambda",
        "iam.switch_ecs_task",
        "iam.watch",
        "iam.deactivate_key",
        "iam.retire_window",
        "iam.delete_key",
    ]
    lam, ecs = acts[0], acts[1]
    assert (lam.gate, lam.destructive, ecs.gate, ecs.destructive) == (
        "cut-over",
        True,
        "cut-over",
        True,
    )
    assert "invoice-mailer" in lam.summary and "nightly-export" in lam.summary
    assert any("rollback cannot restore the removed variables" in r for r in lam.risks)
    assert any("legacy/report-worker" in r and "update-service" in r for r in ecs.risks)
    # exact object scope: the object itself, not its folder.
    assert "arn:aws:s3:::legacy-app-data/exports/a.csv" in json.dumps(lam.details["policy"])
    assert legacy["secret"] not in json.dumps([a.to_dict() for a in step.actions])


def test_cut_over_merges_policies_strips_keys_and_registers_a_revision_once(
    settings: Settings, legacy: dict[str, Any], tmp_path: Path, aws: Any
) -> None:
    key_id, secret = legacy["key_id"], legacy["secret"]
    book = write_playbook(tmp_path / "k.yaml", BOOK)
    result = commands.run(settings, str(book), options=RunOptions(quiet=True, yes=True))
    assert result.status == "awaiting-approval"  # --yes never approves a cut-over
    lam, ecs, iam = aws("lambda"), aws("ecs"), aws("iam")

    def env(name: str) -> dict[str, str]:
        got = lam.get_function_configuration(FunctionName=name).get("Environment") or {}
        return dict(got.get("Variables") or {})

    assert env("nightly-export")["AWS_ACCESS_KEY_ID"] == key_id

    # Each cut-over is its own gate: approving the Lambda one does not open the ECS one.
    commands.approve(settings, result.run_id, "keys", target=key_id)
    after = commands.resume(settings, result.run_id, RunOptions(quiet=True, max_wait_s=0))
    assert after.status == "awaiting-approval"
    assert _keys_actions(settings, result.run_id)["iam.switch_ecs_task"]["status"] == (
        "awaiting-approval"
    )
    commands.approve(settings, result.run_id, "keys", target=key_id)
    after = commands.resume(settings, result.run_id, RunOptions(quiet=True, max_wait_s=0))
    assert after.status == "waiting"  # in the watch window
    acts = _keys_actions(settings, result.run_id)
    assert acts["iam.switch_lambda"]["status"] == "done"
    assert acts["iam.switch_ecs_task"]["status"] == "done"

    # Lambda: every other variable kept exactly; the key's variables gone.
    assert env("nightly-export") == {"LOG_LEVEL": "debug", "BUCKET": "legacy-app-data"}
    assert env("invoice-mailer") == {"SMTP_HOST": "mail"}
    suffix = key_id[-6:].lower()
    assert sorted(iam.list_role_policies(RoleName="legacy-fn-role")["PolicyNames"]) == [
        "logs",
        f"migrate-observed-usage-{suffix}",
    ]
    merged = _policy(
        iam.get_role_policy(
            RoleName="legacy-fn-role", PolicyName=f"migrate-observed-usage-{suffix}"
        )["PolicyDocument"]
    )
    assert "s3:GetObject" in json.dumps(merged)
    findings = analyze_policy_string(json.dumps(merged)).findings
    assert not [f for f in findings if f.issue in ("UNKNOWN_ACTION", "RESOURCE_MISMATCH")]

    # ECS: a task role trusted by ecs-tasks, a new revision with it and without the key.
    task_role = f"migrate-reports-app-{suffix}-task"
    role = iam.get_role(RoleName=task_role)["Role"]
    assert "ecs-tasks.amazonaws.com" in json.dumps(role["AssumeRolePolicyDocument"])
    assert iam.list_role_policies(RoleName=task_role)["PolicyNames"] == ["migrate-observed-usage"]
    arns = ecs.list_task_definitions(familyPrefix="report-worker")["taskDefinitionArns"]
    assert [a.rsplit(":", 1)[-1] for a in arns] == ["1", "2"]
    got = ecs.describe_task_definition(taskDefinition="report-worker:2", include=["TAGS"])
    new = got["taskDefinition"]
    assert new["taskRoleArn"] == role["Arn"]
    assert new["executionRoleArn"] == legacy["role_arn"]
    assert (new["cpu"], new["memory"], new["networkMode"]) == ("256", "512", "awsvpc")
    worker = next(c for c in new["containerDefinitions"] if c["name"] == "worker")
    assert worker["environment"] == [{"name": "QUEUE", "value": "reports"}]
    assert worker["image"] == "legacy/report-worker:3"
    assert {"key": "team", "value": "reports"} in got["tags"]
    # Services are not touched; the result says how to move them.
    svc = ecs.describe_services(cluster="legacy", services=["report-worker"])["services"][0]
    assert svc["taskDefinition"].endswith("report-worker:1")
    assert acts["iam.switch_ecs_task"]["result"]["update_services"] == [
        "aws ecs update-service --cluster legacy --service report-worker "
        "--task-definition report-worker:2"
    ]

    # A crash right after the cut-overs: the resumed run calls act again; nothing twice.
    with settings.store().write() as session:
        session.execute(
            update(ActionRow)
            .where(ActionRow.kind.in_(["iam.switch_lambda", "iam.switch_ecs_task"]))
            .values(status="started")
        )
        session.execute(update(Run).where(Run.id == result.run_id).values(status="interrupted"))
    commands.resume(settings, result.run_id, RunOptions(quiet=True, max_wait_s=0))
    assert len(ecs.list_task_definitions(familyPrefix="report-worker")["taskDefinitionArns"]) == 2
    ops = _journal_ops(settings, result.run_id)
    assert ops.count("RegisterTaskDefinition") == 1
    assert ops.count("UpdateFunctionConfiguration") == 2  # one per function, ever
    assert ops.count("CreateRole") == 1
    # ... although act did run again (it re-put the merged policies: same name, same document).
    assert ops.count("PutRolePolicy") == 2 * (2 + 1)
    assert env("nightly-export") == {"LOG_LEVEL": "debug", "BUCKET": "legacy-app-data"}

    # The secret never reached the state DB (nor its WAL), the report or the journal.
    db = Path(str(settings.state))
    raw = b"".join(p.read_bytes() for p in db.parent.glob(db.name + "*"))
    assert secret.encode() not in raw
    assert secret not in json.dumps(commands.report(settings, result.run_id), default=str)

    # Rollback removes the merged policy and says the environment is the operator's to restore.
    commands.rollback(settings, result.run_id, "keys")
    assert iam.list_role_policies(RoleName="legacy-fn-role")["PolicyNames"] == ["logs"]
    assert env("invoice-mailer") == {"SMTP_HOST": "mail"}  # not restored: never stored
    assert iam.get_role(RoleName=task_role)  # kept for inspection


def test_existing_task_role_gets_the_policy_merged_not_replaced(
    settings: Settings, legacy: dict[str, Any], tmp_path: Path, aws: Any
) -> None:
    ecs, iam = aws("ecs"), aws("iam")
    app_role = iam.create_role(RoleName="worker-app-role", AssumeRolePolicyDocument=TRUST_LAMBDA)[
        "Role"
    ]["Arn"]
    ecs.register_task_definition(
        family="report-worker",
        taskRoleArn=app_role,
        containerDefinitions=[
            {
                "name": "worker",
                "image": "legacy/report-worker:4",
                "memory": 256,
                "environment": [{"name": "AWS_ACCESS_KEY_ID", "value": legacy["key_id"]}],
            }
        ],
    )
    book = write_playbook(tmp_path / "k.yaml", BOOK)
    result = commands.run(settings, str(book), options=RunOptions(quiet=True, yes=True))
    for _ in range(2):  # the Lambda cut-over, then the ECS one
        commands.approve(settings, result.run_id, "keys", target=legacy["key_id"])
        commands.resume(settings, result.run_id, RunOptions(quiet=True, max_wait_s=0))
    new = ecs.describe_task_definition(taskDefinition="report-worker:3")["taskDefinition"]
    assert new["taskRoleArn"] == app_role
    assert new["containerDefinitions"][0].get("environment", []) == []
    suffix = legacy["key_id"][-6:].lower()
    assert iam.list_role_policies(RoleName="worker-app-role")["PolicyNames"] == [
        f"migrate-observed-usage-{suffix}"
    ]
