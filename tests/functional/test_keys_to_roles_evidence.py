"""iam.keys_to_roles (issue 15): placeholders never merged, role names that cannot collide, roles
that are not migrate's never adopted, and evidence that cannot point at the wrong host."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from migrate import commands
from migrate.cloudtrail.model import CallStat, IpAttribution, PrincipalUsage, UsageReport
from migrate.cloudtrail.persist import save_report
from migrate.commands import Settings
from migrate.engine.runner import RunOptions
from migrate.errors import BadInputError
from migrate.sandbox.seed import SeedSummary, seed
from tests.conftest import write_playbook

BOOK = """\
name: keys to roles
steps:
  - id: keys
    uses: iam.keys_to_roles
    with:
      names: {names}
      watch_window: 0s
      retire_window: 0s
      unused_days: 0
"""
EC2_TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"Service": "ec2.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
    ],
}


def _usage(
    key_id: str, user: str, ips: dict[str, int], calls: list[CallStat], **extra: Any
) -> PrincipalUsage:
    return PrincipalUsage(
        principal=key_id,
        kind="access_key",
        owner=user,
        calls=sum(c.count for c in calls),
        actions=calls,
        source_ips=ips,
        first_seen="2026-11-23T00:00:00Z",
        last_seen="2026-11-29T00:00:00Z",
        **extra,
    )


def _save(settings: Settings, keys: list[PrincipalUsage], ips: dict[str, IpAttribution]) -> str:
    report = UsageReport(
        dataset="evidence",
        source="dir",
        since="2026-11-23",
        until="2026-11-29",
        generated_at="2026-11-30T00:00:00",
        keys=keys,
        ips=ips,
    )
    return save_report(settings.store(), report)


def _at_instance(summary: SeedSummary) -> dict[str, IpAttribution]:
    ip = summary.instance_private_ip
    return {ip: IpAttribution(ip=ip, kind="ec2-instance", instance_id=summary.instance_id)}


def _book(tmp_path: Path, *names: str) -> Path:
    return write_playbook(tmp_path / "k.yaml", BOOK.format(names=json.dumps(list(names))))


def _step_actions(plan: Any) -> list[Any]:
    return [a for s in plan.steps if s.id == "keys" for a in s.actions]


@pytest.fixture()
def sandbox(settings: Settings, endpoint: str, tmp_path: Path) -> SeedSummary:
    return seed(endpoint, tmp_path / "sandbox")


def test_deny_all_placeholder_is_never_merged_into_an_instance_role(
    settings: Settings, sandbox: SeedSummary, tmp_path: Path, aws: Any
) -> None:
    iam, ec2 = aws("iam"), aws("ec2")
    # The instance already runs with a profile other applications on the host rely on.
    iam.create_role(RoleName="legacy-app-role", AssumeRolePolicyDocument=json.dumps(EC2_TRUST))
    iam.put_role_policy(
        RoleName="legacy-app-role",
        PolicyName="app",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "*"}],
            }
        ),
    )
    iam.create_instance_profile(InstanceProfileName="legacy-app-profile")
    iam.add_role_to_instance_profile(
        InstanceProfileName="legacy-app-profile", RoleName="legacy-app-role"
    )
    ec2.associate_iam_instance_profile(
        IamInstanceProfile={"Name": "legacy-app-profile"}, InstanceId=sandbox.instance_id
    )
    app = sandbox.access_key_id("app-server")
    # Every call the key made was denied: no usable evidence, so the policy is deny-all.
    denied = CallStat("s3.amazonaws.com", "GetObject", "s3:GetObject", 5, {"AccessDenied": 5})
    _save(
        settings,
        [_usage(app, "app-server", {sandbox.instance_private_ip: 5}, [denied])],
        _at_instance(sandbox),
    )
    book = _book(tmp_path, "app-server")
    _, plan = commands.plan(settings, str(book))
    switch = next(a for a in _step_actions(plan) if a.kind == "iam.switch_workloads")
    assert any("nothing is merged" in r and "legacy-app-profile" in r for r in switch.risks)

    commands.run(settings, str(book), options=RunOptions(quiet=True, yes=True))
    assert iam.list_role_policies(RoleName="legacy-app-role")["PolicyNames"] == ["app"]


def test_role_names_keep_the_key_suffix_and_never_collide(
    settings: Settings, sandbox: SeedSummary, tmp_path: Path, aws: Any
) -> None:
    iam = aws("iam")
    user = "reporting-service-for-the-legacy-billing-platform-eu-central"  # 60 characters
    iam.create_user(UserName=user)
    first = iam.create_access_key(UserName=user)["AccessKey"]["AccessKeyId"]
    second = iam.create_access_key(UserName=user)["AccessKey"]["AccessKeyId"]
    ip = sandbox.instance_private_ip
    _save(
        settings,
        [
            _usage(k, user, {ip: 3}, [CallStat("s3.amazonaws.com", "ListBuckets", a, 3)])
            for k, a in ((first, "s3:ListAllMyBuckets"), (second, "s3:ListAllMyBuckets"))
        ],
        _at_instance(sandbox),
    )
    _, plan = commands.plan(settings, str(_book(tmp_path, user)))
    names = {
        a.target: a.details["role_name"] for a in _step_actions(plan) if a.kind == "iam.create_role"
    }
    assert set(names) == {first, second}
    assert names[first] != names[second]
    for key_id, name in names.items():
        assert len(name) <= 64 and name.endswith(key_id[-6:].lower())


@pytest.mark.parametrize(
    ("tags", "named"),
    [
        ([], "no migrate:access-key tag"),
        ([{"Key": "migrate:access-key", "Value": "AKIAOTHER"}], "another key (AKIAOTHER)"),
    ],
)
def test_a_same_named_role_that_is_not_ours_is_a_plan_error(
    settings: Settings,
    sandbox: SeedSummary,
    tmp_path: Path,
    aws: Any,
    tags: list[dict[str, str]],
    named: str,
) -> None:
    app = sandbox.access_key_id("app-server")
    role = f"migrate-app-server-{app[-6:].lower()}"
    aws("iam").create_role(RoleName=role, AssumeRolePolicyDocument=json.dumps(EC2_TRUST), Tags=tags)
    ip = sandbox.instance_private_ip
    call = CallStat("s3.amazonaws.com", "ListBuckets", "s3:ListAllMyBuckets", 3)
    _save(settings, [_usage(app, "app-server", {ip: 3}, [call])], _at_instance(sandbox))
    with pytest.raises(BadInputError) as err:
        commands.plan(settings, str(_book(tmp_path, "app-server")))
    assert role in str(err.value) and named in str(err.value)
    assert aws("iam").list_role_policies(RoleName=role)["PolicyNames"] == []
