"""iam.keys_to_roles against the moto server with the sandbox's keys, instance and evidence."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest
from click.testing import CliRunner
from parliament import analyze_policy_string

from migrate import commands
from migrate.cli import cli
from migrate.cloudtrail.model import CallStat, IpAttribution, PrincipalUsage, UsageReport
from migrate.cloudtrail.persist import save_report
from migrate.commands import Settings
from migrate.engine.runner import RunOptions
from migrate.errors import BadInputError
from migrate.sandbox.seed import SeedSummary, seed
from tests.conftest import write_playbook

BOOK = """\
name: keys to roles
params:
  watch_window: 0s
steps:
  - id: kms
    uses: kms.ensure_key
  - id: keys
    uses: iam.keys_to_roles
    with:
      names: ["app-server", "batch-reports", "old-deployer"]
      watch_window: "{{ params.watch_window }}"
      retire_window: 0s
      host_regions: [us-east-1]
      unused_days: 0
      kms_key: "{{ steps.kms.key_arn }}"
"""


def _usage(
    key_id: str, user: str, ip: str, calls: list[tuple[str, str, str, int]]
) -> PrincipalUsage:
    stats = [CallStat(src, name, action, count) for src, name, action, count in calls]
    return PrincipalUsage(
        principal=key_id,
        kind="access_key",
        owner=user,
        calls=sum(c.count for c in stats),
        actions=stats,
        source_ips={ip: sum(c.count for c in stats)},
        first_seen="2026-11-23T00:00:00Z",
        last_seen="2026-11-29T00:00:00Z",
    )


def _report(settings: Settings, summary: SeedSummary) -> str:
    app, batch = summary.access_key_id("app-server"), summary.access_key_id("batch-reports")
    report = UsageReport(
        dataset="test",
        source="dir",
        since="2026-11-23",
        until="2026-11-29",
        generated_at="2026-11-30T00:00:00",
        keys=[
            _usage(
                app,
                "app-server",
                summary.instance_private_ip,
                [
                    ("s3.amazonaws.com", "GetObject", "s3:GetObject", 40),
                    ("s3.amazonaws.com", "PutObject", "s3:PutObject", 12),
                    ("s3.amazonaws.com", "ListBuckets", "s3:ListAllMyBuckets", 3),
                    ("rds.amazonaws.com", "DescribeDBInstances", "rds:DescribeDBInstances", 5),
                ],
            ),
            _usage(
                batch,
                "batch-reports",
                "203.0.113.50",
                [
                    ("s3.amazonaws.com", "GetObject", "s3:GetObject", 9),
                ],
            ),
        ],
        ips={
            summary.instance_private_ip: IpAttribution(
                ip=summary.instance_private_ip,
                kind="ec2-instance",
                instance_id=summary.instance_id,
                instance_name="legacy-app-1",
            ),
            "203.0.113.50": IpAttribution(ip="203.0.113.50", kind="outside-aws-or-nat"),
        },
    )
    return save_report(settings.store(), report)


@pytest.fixture()
def sandbox(settings: Settings, endpoint: str, tmp_path: Path) -> SeedSummary:
    summary = seed(endpoint, tmp_path / "sandbox")
    _report(settings, summary)
    return summary


def _actions(plan: Any, step: str = "keys") -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for s in plan.steps:
        if s.id == step:
            for a in s.actions:
                out.setdefault(a.target, []).append(a.kind)
    return out


def test_plan_switches_ec2_keys_reviews_outside_keys_retires_unused(
    settings: Settings, sandbox: SeedSummary, tmp_path: Path
) -> None:
    book = write_playbook(tmp_path / "k.yaml", BOOK)
    _, plan = commands.plan(settings, str(book))
    actions = _actions(plan)
    app = sandbox.access_key_id("app-server")
    assert actions[app] == [
        "iam.create_role",
        "iam.switch_workloads",
        "iam.watch",
        "iam.deactivate_key",
        "iam.retire_window",
        "iam.delete_key",
    ]
    assert actions[sandbox.access_key_id("batch-reports")] == ["iam.review"]
    assert actions[sandbox.access_key_id("old-deployer")] == [
        "iam.deactivate_key",
        "iam.retire_window",
        "iam.delete_key",
    ]
    keys_step = next(s for s in plan.steps if s.id == "keys")
    review = next(a for a in keys_step.actions if a.kind == "iam.review")
    assert "203.0.113.50" in review.summary and review.gate == "human-review"
    create = next(a for a in keys_step.actions if a.kind == "iam.create_role")
    assert any("may be incomplete" in r for r in create.risks)


def test_run_creates_role_profile_association_then_retires_after_gates(
    settings: Settings, sandbox: SeedSummary, tmp_path: Path, aws: Any
) -> None:
    book = write_playbook(tmp_path / "k.yaml", BOOK)
    result = commands.run(settings, str(book), options=RunOptions(quiet=True, yes=True))
    assert result.status == "awaiting-approval"
    iam, ec2 = aws("iam"), aws("ec2")
    app = sandbox.access_key_id("app-server")
    role = f"migrate-app-server-{app[-6:].lower()}"
    policy = iam.get_role_policy(RoleName=role, PolicyName="migrate-observed-usage")
    doc = policy["PolicyDocument"]
    doc = json.loads(doc) if isinstance(doc, str) else doc
    actions = {
        a
        for s in doc["Statement"]
        for a in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])
    }
    assert {
        "s3:GetObject",
        "s3:PutObject",
        "s3:ListAllMyBuckets",
        "rds:DescribeDBInstances",
    } <= actions
    assert {"kms:Decrypt", "kms:GenerateDataKey"} <= actions
    findings = analyze_policy_string(json.dumps(doc)).findings
    assert not [f for f in findings if f.issue in ("UNKNOWN_ACTION", "RESOURCE_MISMATCH")]
    trust = iam.get_role(RoleName=role)["Role"]["AssumeRolePolicyDocument"]
    assert "ec2.amazonaws.com" in json.dumps(trust)
    assoc = ec2.describe_iam_instance_profile_associations(
        Filters=[{"Name": "instance-id", "Values": [sandbox.instance_id]}]
    )["IamInstanceProfileAssociations"]
    assert [a["IamInstanceProfile"]["Arn"].rsplit("/", 1)[-1] for a in assoc] == [role]

    # Deactivation is destructive: --yes did not approve it; the key is still active.
    def status_of(key: str, user: str) -> str:
        meta = iam.list_access_keys(UserName=user)["AccessKeyMetadata"]
        return next((m["Status"] for m in meta if m["AccessKeyId"] == key), "deleted")

    assert status_of(app, "app-server") == "Active"
    commands.approve(settings, result.run_id, "keys", target=app)
    again = commands.resume(settings, result.run_id, RunOptions(quiet=True, yes=True))
    assert again.status == "awaiting-approval"
    # The approval opened the deactivate gate only; deletion needs its own.
    assert status_of(app, "app-server") == "Inactive"
    commands.approve(settings, result.run_id, "keys", target=app)
    commands.resume(settings, result.run_id, RunOptions(quiet=True, yes=True))
    assert status_of(app, "app-server") == "deleted"
    # The batch key (outside AWS) and the unused key wait for their own approvals.
    assert status_of(sandbox.access_key_id("batch-reports"), "batch-reports") == "Active"
    assert status_of(sandbox.access_key_id("old-deployer"), "old-deployer") == "Active"


def test_key_used_after_the_switch_blocks_deactivation(
    settings: Settings, sandbox: SeedSummary, tmp_path: Path, aws: Any, endpoint: str
) -> None:
    iam = aws("iam")
    # A fresh key whose secret we hold, so we can use it after the switch.
    created = iam.create_access_key(UserName="app-server")["AccessKey"]
    summary_key = created["AccessKeyId"]
    report = UsageReport(
        dataset="t2",
        source="dir",
        since=None,
        until=None,
        generated_at="2026-11-30T00:00:00",
        keys=[
            _usage(
                summary_key,
                "app-server",
                sandbox.instance_private_ip,
                [("s3.amazonaws.com", "ListBuckets", "s3:ListAllMyBuckets", 3)],
            )
        ],
        ips={
            sandbox.instance_private_ip: IpAttribution(
                ip=sandbox.instance_private_ip, kind="ec2-instance", instance_id=sandbox.instance_id
            )
        },
    )
    save_report(settings.store(), report)
    book = write_playbook(
        tmp_path / "k.yaml",
        BOOK.replace('["app-server", "batch-reports", "old-deployer"]', '["app-server"]'),
    )
    result = commands.run(
        settings, str(book), ["watch_window=1h"], options=RunOptions(quiet=True, max_wait_s=0)
    )
    assert result.status in ("waiting", "awaiting-approval")
    boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=summary_key,
        aws_secret_access_key=created["SecretAccessKey"],
    ).list_buckets()
    after = commands.resume(settings, result.run_id, RunOptions(quiet=True, max_wait_s=0))
    assert after.status == "failed"
    watch = next(
        a
        for s in commands.status(settings, result.run_id)["steps"]
        for a in s["actions"]
        if a["kind"] == "iam.watch" and a["target"] == summary_key
    )
    assert watch["status"] == "failed"
    assert "was used at" in watch["error"] and "stays active" in watch["error"]
    assert created["SecretAccessKey"] not in json.dumps(commands.report(settings, result.run_id))
    meta = iam.list_access_keys(UserName="app-server")["AccessKeyMetadata"]
    assert next(m["Status"] for m in meta if m["AccessKeyId"] == summary_key) == "Active"


def test_rollback_reactivates_and_restores_profiles(
    settings: Settings, sandbox: SeedSummary, tmp_path: Path, aws: Any
) -> None:
    book = write_playbook(
        tmp_path / "k.yaml",
        BOOK.replace(
            '["app-server", "batch-reports", "old-deployer"]', '["old-deployer", "app-server"]'
        ),
    )
    result = commands.run(settings, str(book), options=RunOptions(quiet=True, yes=True))
    old = sandbox.access_key_id("old-deployer")
    # Approve the unused key's deactivation only; its deletion is not approved.
    commands.approve(settings, result.run_id, "keys", target=old)
    commands.resume(settings, result.run_id, RunOptions(quiet=True, yes=True))
    iam, ec2 = aws("iam"), aws("ec2")
    assert iam.list_access_keys(UserName="old-deployer")["AccessKeyMetadata"][0]["Status"] == (
        "Inactive"
    )
    commands.rollback(settings, result.run_id, "keys")
    assert iam.list_access_keys(UserName="old-deployer")["AccessKeyMetadata"][0]["Status"] == (
        "Active"
    )
    assoc = ec2.describe_iam_instance_profile_associations(
        Filters=[{"Name": "instance-id", "Values": [sandbox.instance_id]}]
    )["IamInstanceProfileAssociations"]
    assert [a for a in assoc if a.get("State") == "associated"] == []
    app = sandbox.access_key_id("app-server")
    assert iam.get_role(RoleName=f"migrate-app-server-{app[-6:].lower()}")  # kept for inspection


def test_playbook_ingests_the_sandbox_trail_and_switches_the_instance_key(
    settings: Settings, endpoint: str, tmp_path: Path, aws: Any
) -> None:
    summary = seed(endpoint, tmp_path / "sandbox")
    book = write_playbook(
        tmp_path / "k.yaml",
        """\
name: evidence to roles
steps:
  - id: kms
    uses: kms.ensure_key
  - id: usage
    uses: cloudtrail.usage
    with:
      source: s3://legacy-cloudtrail-logs
      since: 3650d
  - id: keys
    uses: iam.keys_to_roles
    with:
      usage_report: "{{ steps.usage.usage_id }}"
      watch_window: 0s
      retire_window: 0s
      host_regions: [us-east-1]
      unused_days: 0
      kms_key: "{{ steps.kms.key_arn }}"
""",
    )
    _, plan = commands.plan(settings, str(book))
    keys_step = next(s for s in plan.steps if s.id == "keys")
    # The plan gathered the trail's evidence: only the key (created by the run) is still unknown.
    assert keys_step.known_after == ["kms"]
    result = commands.run(settings, str(book), options=RunOptions(quiet=True, yes=True))
    assert result.status == "awaiting-approval"
    by_target: dict[str, list[str]] = {}
    for s in commands.status(settings, result.run_id)["steps"]:
        if s["id"] == "keys":
            for a in s["actions"]:
                by_target.setdefault(a["target"], []).append(f"{a['kind']}:{a['status']}")
    app = summary.access_key_id("app-server")
    assert by_target[app][:4] == [
        "iam.create_role:done",
        "iam.switch_workloads:done",
        "iam.watch:done",
        "iam.deactivate_key:awaiting-approval",
    ]
    assert by_target[summary.access_key_id("batch-reports")] == ["iam.review:awaiting-approval"]
    assert by_target[summary.access_key_id("old-deployer")][0] == (
        "iam.deactivate_key:awaiting-approval"
    )
    role = f"migrate-app-server-{app[-6:].lower()}"
    doc = aws("iam").get_role_policy(RoleName=role, PolicyName="migrate-observed-usage")[
        "PolicyDocument"
    ]
    text = json.dumps(doc)
    assert "s3:GetObject" in text and "s3:ListAllMyBuckets" in text


def _statement_for(doc: dict[str, Any], action: str) -> dict[str, Any]:
    found = [s for s in doc["Statement"] if action in s["Action"]]
    assert len(found) == 1, (action, doc)
    return found[0]


def test_sandbox_policy_is_narrowed_to_the_resources_cloudtrail_showed(
    settings: Settings, endpoint: str, tmp_path: Path, aws: Any
) -> None:
    summary = seed(endpoint, tmp_path / "sandbox")
    book = write_playbook(
        tmp_path / "k.yaml",
        """\
name: narrowed roles
steps:
  - id: kms
    uses: kms.ensure_key
  - id: usage
    uses: cloudtrail.usage
    with:
      source: s3://legacy-cloudtrail-logs
      since: 3650d
      workers: 0
  - id: keys
    uses: iam.keys_to_roles
    with:
      names: ["app-server"]
      usage_report: "{{ steps.usage.usage_id }}"
      watch_window: 0s
      retire_window: 0s
      host_regions: [us-east-1]
      kms_key: "{{ steps.kms.key_arn }}"
""",
    )
    result = commands.run(settings, str(book), options=RunOptions(quiet=True, yes=True))
    assert result.status == "awaiting-approval"
    app = summary.access_key_id("app-server")
    role = f"migrate-app-server-{app[-6:].lower()}"
    doc = aws("iam").get_role_policy(RoleName=role, PolicyName="migrate-observed-usage")[
        "PolicyDocument"
    ]
    doc = json.loads(doc) if isinstance(doc, str) else doc
    # Objects are granted by the folders the app used (uploads/2019/invoice-0001.pdf, ...).
    assert _statement_for(doc, "s3:GetObject")["Resource"] == [
        "arn:aws:s3:::legacy-app-data/exports/*",
        "arn:aws:s3:::legacy-app-data/uploads/2019/*",
    ]
    put = _statement_for(doc, "s3:PutObject")["Resource"]
    assert put == [
        "arn:aws:s3:::legacy-app-data/exports/*",
        "arn:aws:s3:::legacy-app-data/reports/*",
    ]
    assert _statement_for(doc, "s3:ListAllMyBuckets")["Resource"] == "*"
    account = aws("sts").get_caller_identity()["Account"]
    assert _statement_for(doc, "rds:DescribeDBInstances")["Resource"] == [
        f"arn:aws:rds:us-east-1:{account}:db:legacy-mysql"
    ]
    # parliament finds nothing at all in it (no unknown action, no resource an action can't take).
    assert [(f.issue, f.detail) for f in analyze_policy_string(json.dumps(doc)).findings] == []
    # Fully narrowed (ListAllMyBuckets takes no resource): the plan does not call it broad.
    create = next(
        a
        for s in commands.status(settings, result.run_id)["steps"]
        if s["id"] == "keys"
        for a in s["actions"]
        if a["kind"] == "iam.create_role"
    )
    assert not any("broad" in r for r in create["risks"])
    assert "resources narrowed for 3" in create["summary"]


def test_a_role_left_by_a_crashed_attempt_is_adopted_and_recorded(
    settings: Settings, sandbox: SeedSummary, tmp_path: Path, aws: Any
) -> None:
    # A crash right after CreateRole: the role exists (tagged for the key) but was never recorded.
    app = sandbox.access_key_id("app-server")
    role = f"migrate-app-server-{app[-6:].lower()}"
    aws("iam").create_role(
        RoleName=role,
        AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}),
        Tags=[{"Key": "migrate:access-key", "Value": app}],
    )
    book = write_playbook(
        tmp_path / "k.yaml",
        BOOK.replace('["app-server", "batch-reports", "old-deployer"]', '["app-server"]'),
    )
    result = commands.run(settings, str(book), options=RunOptions(quiet=True, yes=True))
    kinds = {
        (r["kind"], r["identifier"]) for r in commands.report(settings, result.run_id)["resources"]
    }
    assert ("iam:role", role) in kinds and ("iam:instance-profile", role) in kinds
    assert [r["RoleName"] for r in aws("iam").list_roles()["Roles"] if r["RoleName"] == role] == [
        role
    ]


def test_a_report_without_iams_view_is_refused_before_anything_is_planned(
    settings: Settings, endpoint: str, tmp_path: Path
) -> None:
    """A report read from a log folder without credentials (``migrate trail usage --source DIR``)
    lacks IAM's last-used dates and the keys that made no call: retiring keys from it is unsafe,
    so keys-to-roles refuses it, naming the report and how to make a usable one."""
    summary = seed(endpoint, tmp_path / "sandbox")
    offline = UsageReport(
        dataset="offline",
        source="dir",
        since="2026-11-23",
        until="2026-11-29",
        generated_at="2026-11-30T00:00:00",
        keys=[_usage(summary.access_key_id("app-server"), "app-server", "10.0.0.5", [])],
        enriched=False,
        not_enriched_reason="no AWS credentials were found",
    )
    report_id = save_report(settings.store(), offline)
    book = write_playbook(
        tmp_path / "k.yaml",
        BOOK.replace("      names:", f"      usage_report: {report_id}\n      names:"),
    )
    with pytest.raises(BadInputError) as refused:
        commands.plan(settings, str(book))
    message = refused.value.message
    assert report_id in message and "not enriched" in message and "`migrate trail usage`" in message
    assert "usage_report" in message

    out = CliRunner().invoke(cli, ["--state", str(settings.state), "plan", str(book)])
    assert out.exit_code == 2, out.output
    assert report_id in out.output and "Traceback" not in out.output
    roles = boto3.client("iam", endpoint_url=endpoint, region_name="us-east-1").list_roles()
    assert not [r for r in roles["Roles"] if r["RoleName"].startswith("migrate-")]
