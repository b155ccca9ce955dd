"""iam.keys_to_roles (issue 15): placeholders never merged, role names that cannot collide, roles
that are not migrate's never adopted, and evidence that cannot point at the wrong host."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from parliament import analyze_policy_string

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
      host_regions: [us-east-1]
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


def _save(
    settings: Settings,
    keys: list[PrincipalUsage],
    ips: dict[str, IpAttribution],
    sessions: list[PrincipalUsage] | None = None,
) -> str:
    report = UsageReport(
        dataset="evidence",
        source="dir",
        since="2026-11-23",
        until="2026-11-29",
        generated_at="2026-11-30T00:00:00",
        keys=keys,
        sessions=sessions or [],
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


def _dev_twin(aws: Any, summary: SeedSummary, region: str = "us-east-1") -> str:
    """A second VPC with the same private address space, and an instance on the prod IP."""
    ec2 = aws("ec2", region) if region != "us-east-1" else aws("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
    image = ec2.describe_images()["Images"][0]["ImageId"]
    return str(
        ec2.run_instances(
            ImageId=image,
            MinCount=1,
            MaxCount=1,
            SubnetId=subnet,
            PrivateIpAddress=summary.instance_private_ip,
            TagSpecifications=[
                {"ResourceType": "instance", "Tags": [{"Key": "Name", "Value": "dev-app"}]}
            ],
        )["Instances"][0]["InstanceId"]
    )


def test_two_vpcs_sharing_a_private_ip_never_pin_prod_usage_on_the_dev_instance(
    settings: Settings, sandbox: SeedSummary, tmp_path: Path, aws: Any
) -> None:
    dev = _dev_twin(aws, sandbox)
    ip = sandbox.instance_private_ip
    app, batch = sandbox.access_key_id("app-server"), sandbox.access_key_id("batch-reports")
    call = CallStat("s3.amazonaws.com", "GetObject", "s3:GetObject", 7)
    _save(
        settings,
        [
            # The prod key came through the prod VPC's S3 endpoint.
            _usage(
                app,
                "app-server",
                {ip: 7},
                [call],
                ip_endpoints={ip: {sandbox.s3_vpc_endpoint_id: 7}},
            ),
            # This one names no endpoint: the address alone cannot tell the two hosts apart.
            _usage(batch, "batch-reports", {ip: 7}, [call], ip_endpoints={ip: {"": 7}}),
        ],
        # What IP-only attribution concluded: whichever ENI holds the address (here: dev).
        {ip: IpAttribution(ip=ip, kind="ec2-instance", instance_id=dev)},
    )
    _, plan = commands.plan(settings, str(_book(tmp_path, "app-server", "batch-reports")))
    actions = _step_actions(plan)
    switch = next(a for a in actions if a.kind == "iam.switch_workloads" and a.target == app)
    assert [w["instance_id"] for w in switch.details["workloads"]] == [sandbox.instance_id]
    assert not any(a.target == batch and a.kind != "iam.review" for a in actions)
    review = next(a for a in actions if a.target == batch)
    assert dev in review.summary and sandbox.instance_id in review.summary
    assert "dev-app" in review.summary
    # The plan shows per key the evidence window, the trail's coverage and the attribution.
    first = next(a for a in actions if a.target == app)
    evidence = first.details["evidence"]
    assert evidence["window"] == "2026-11-23 .. 2026-11-29"
    assert "AWS::S3::Object" in evidence["coverage"]
    assert evidence["attribution"] == [
        f"{ip} via {sandbox.s3_vpc_endpoint_id} -> {sandbox.instance_id} (vpc-endpoint)"
    ]
    assert "(ambiguous)" in review.details["evidence"]["attribution"][0]


def _instance_in(aws: Any, region: str, ip: str, name: str) -> tuple[str, str, str]:
    """(instance id, VPC id, S3 gateway endpoint id) of a new instance at ``ip`` in ``region``."""
    ec2 = aws("ec2", region)
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
    endpoint = ec2.create_vpc_endpoint(
        VpcId=vpc, ServiceName=f"com.amazonaws.{region}.s3", VpcEndpointType="Gateway"
    )["VpcEndpoint"]["VpcEndpointId"]
    image = ec2.describe_images()["Images"][0]["ImageId"]
    instance = ec2.run_instances(
        ImageId=image,
        MinCount=1,
        MaxCount=1,
        SubnetId=subnet,
        PrivateIpAddress=ip,
        TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": "Name", "Value": name}]}],
    )["Instances"][0]["InstanceId"]
    return str(instance), str(vpc), str(endpoint)


def test_an_instance_outside_the_session_region_is_found_and_switched_there(
    settings: Settings, sandbox: SeedSummary, tmp_path: Path, aws: Any
) -> None:
    instance, _, endpoint = _instance_in(aws, "eu-west-1", "10.0.1.77", "eu-app")
    app = sandbox.access_key_id("app-server")
    call = CallStat("s3.amazonaws.com", "ListBuckets", "s3:ListAllMyBuckets", 4)
    _save(
        settings,
        [
            _usage(
                app,
                "app-server",
                {"10.0.1.77": 4},
                [call],
                ip_endpoints={"10.0.1.77": {endpoint: 4}},
            )
        ],
        {"10.0.1.77": IpAttribution(ip="10.0.1.77", kind="ec2-instance", instance_id=instance)},
    )
    book = write_playbook(
        tmp_path / "k.yaml",
        BOOK.format(names='["app-server"]').replace(
            "host_regions: [us-east-1]", "host_regions: [us-east-1, eu-west-1]"
        ),
    )
    _, plan = commands.plan(settings, str(book))
    switch = next(a for a in _step_actions(plan) if a.kind == "iam.switch_workloads")
    assert [(w["instance_id"], w["region"]) for w in switch.details["workloads"]] == [
        (instance, "eu-west-1")
    ]
    commands.run(settings, str(book), options=RunOptions(quiet=True, yes=True))
    assoc = aws("ec2", "eu-west-1").describe_iam_instance_profile_associations(
        Filters=[{"Name": "instance-id", "Values": [instance]}]
    )["IamInstanceProfileAssociations"]
    assert [a["IamInstanceProfile"]["Arn"].rsplit("/", 1)[-1] for a in assoc] == [
        f"migrate-app-server-{app[-6:].lower()}"
    ]


def test_every_region_is_searched_by_default_so_a_twin_elsewhere_makes_it_ambiguous(
    settings: Settings, sandbox: SeedSummary, tmp_path: Path, aws: Any
) -> None:
    twin, _, _ = _instance_in(aws, "ap-southeast-2", sandbox.instance_private_ip, "sydney-app")
    app = sandbox.access_key_id("app-server")
    ip = sandbox.instance_private_ip
    call = CallStat("iam.amazonaws.com", "ListUsers", "iam:ListUsers", 2)
    _save(
        settings,
        [_usage(app, "app-server", {ip: 2}, [call], ip_endpoints={ip: {"": 2}})],
        _at_instance(sandbox),
    )
    book = write_playbook(
        tmp_path / "k.yaml",
        BOOK.format(names='["app-server"]').replace("      host_regions: [us-east-1]\n", ""),
    )
    _, plan = commands.plan(settings, str(book))
    actions = _step_actions(plan)
    assert [a.kind for a in actions] == ["iam.review"]
    assert twin in actions[0].summary and "ap-southeast-2" in actions[0].summary


def test_the_role_gets_the_actions_batch_copy_and_reencrypt_calls_really_need(
    settings: Settings, sandbox: SeedSummary, tmp_path: Path, aws: Any
) -> None:
    app = sandbox.access_key_id("app-server")
    ip = sandbox.instance_private_ip
    queue = "arn:aws:sqs:us-east-1:123456789012:orders"
    calls = [
        # As a report stored before the correction has them: actions that do not exist.
        CallStat("sqs.amazonaws.com", "SendMessageBatch", "sqs:SendMessageBatch", 9, {}, [queue]),
        CallStat("sns.amazonaws.com", "PublishBatch", "sns:PublishBatch", 2),
        CallStat("s3.amazonaws.com", "CopyObject", "s3:PutObject", 3),
        CallStat("kms.amazonaws.com", "ReEncrypt", "kms:ReEncryptFrom", 1),
        CallStat("lambda.amazonaws.com", "CreateFunction20150331", "lambda:CreateFunction", 1),
    ]
    _save(settings, [_usage(app, "app-server", {ip: 16}, calls)], _at_instance(sandbox))
    _, plan = commands.plan(settings, str(_book(tmp_path, "app-server")))
    create = next(a for a in _step_actions(plan) if a.kind == "iam.create_role")
    granted = {
        action: statement["Resource"]
        for statement in create.details["policy"]["Statement"]
        for action in statement["Action"]
    }
    assert granted["sqs:SendMessage"] == [queue]
    assert {
        "sns:Publish",
        "s3:PutObject",
        "s3:GetObject",
        "kms:ReEncryptFrom",
        "kms:ReEncryptTo",
        "lambda:CreateFunction",
    } <= set(granted)
    assert not {"sqs:SendMessageBatch", "sns:PublishBatch", "iam:PassRole"} & set(granted)
    assert any("iam:PassRole" in r and "CreateFunction" in r for r in create.risks)
    findings = analyze_policy_string(json.dumps(create.details["policy"])).findings
    assert not [f for f in findings if f.issue == "UNKNOWN_ACTION"]


def test_a_key_whose_data_events_the_trail_does_not_log_is_reviewed_unless_accepted(
    settings: Settings, sandbox: SeedSummary, tmp_path: Path, aws: Any
) -> None:
    # The trail logs management events only (CloudTrail's default): no S3 object calls.
    aws("cloudtrail").put_event_selectors(
        TrailName=aws("cloudtrail").describe_trails()["trailList"][0]["Name"],
        EventSelectors=[{"ReadWriteType": "All", "IncludeManagementEvents": True}],
    )
    app = sandbox.access_key_id("app-server")
    ip = sandbox.instance_private_ip
    call = CallStat("s3.amazonaws.com", "ListBuckets", "s3:ListAllMyBuckets", 3)
    _save(settings, [_usage(app, "app-server", {ip: 3}, [call])], _at_instance(sandbox))
    _, plan = commands.plan(settings, str(_book(tmp_path, "app-server")))
    actions = _step_actions(plan)
    assert [a.kind for a in actions] == ["iam.review"]
    assert "AWS::S3::Object" in actions[0].summary and "accept_unlogged" in actions[0].summary

    accepted = write_playbook(
        tmp_path / "a.yaml",
        BOOK.format(names='["app-server"]') + "      accept_unlogged: [s3]\n",
    )
    _, plan = commands.plan(settings, str(accepted))
    assert "iam.switch_workloads" in [a.kind for a in _step_actions(plan)]


def test_session_chain_calls_join_the_key_and_a_role_trusting_the_user_trusts_the_new_role(
    settings: Settings, sandbox: SeedSummary, tmp_path: Path, aws: Any
) -> None:
    iam = aws("iam")
    user_arn = iam.get_user(UserName="app-server")["User"]["Arn"]
    target = iam.create_role(
        RoleName="reports-reader",
        AssumeRolePolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {"Effect": "Allow", "Principal": {"AWS": user_arn}, "Action": "sts:AssumeRole"}
                ],
            }
        ),
    )["Role"]["Arn"]
    app = sandbox.access_key_id("app-server")
    ip = sandbox.instance_private_ip
    calls = [
        CallStat("sts.amazonaws.com", "AssumeRole", "sts:AssumeRole", 4, {}, [target]),
        CallStat("sts.amazonaws.com", "GetSessionToken", "sts:GetSessionToken", 2),
        CallStat("s3.amazonaws.com", "ListBuckets", "s3:ListAllMyBuckets", 3),
    ]
    session = PrincipalUsage(
        principal=user_arn,
        kind="temporary",
        owner="app-server",
        owner_arn=user_arn,
        identity_type="IAMUser",
        calls=5,
        actions=[
            CallStat(
                "secretsmanager.amazonaws.com", "GetSecretValue", "secretsmanager:GetSecretValue", 5
            )
        ],
    )
    report = UsageReport(
        dataset="chain",
        source="dir",
        since="2026-11-23",
        until="2026-11-29",
        generated_at="2026-11-30T00:00:00",
        keys=[_usage(app, "app-server", {ip: 9}, calls)],
        sessions=[session],
        ips=_at_instance(sandbox),
    )
    save_report(settings.store(), report)
    book = _book(tmp_path, "app-server")
    _, plan = commands.plan(settings, str(book))
    actions = _step_actions(plan)
    kinds = [a.kind for a in actions]
    assert (
        kinds.index("iam.trust_role") < kinds.index("iam.watch") < kinds.index("iam.deactivate_key")
    )
    create = next(a for a in actions if a.kind == "iam.create_role")
    granted = {
        action: statement["Resource"]
        for statement in create.details["policy"]["Statement"]
        for action in statement["Action"]
    }
    assert granted["sts:AssumeRole"] == [target]
    assert "secretsmanager:GetSecretValue" in granted  # made with a GetSessionToken session
    assert "sts:GetSessionToken" not in granted

    def trusted() -> str:
        return json.dumps(iam.get_role(RoleName="reports-reader")["Role"], default=str)

    role_arn = f"arn:aws:iam::123456789012:role/migrate-app-server-{app[-6:].lower()}"
    result = commands.run(settings, str(book), options=RunOptions(quiet=True, yes=True))
    assert result.status == "awaiting-approval"  # --yes never widens a trust policy
    assert role_arn not in trusted()
    commands.approve(settings, result.run_id, "keys", target=app)
    commands.resume(settings, result.run_id, RunOptions(quiet=True, yes=True))
    assert role_arn in trusted() and user_arn in trusted()
    meta = iam.list_access_keys(UserName="app-server")["AccessKeyMetadata"]
    assert next(m["Status"] for m in meta if m["AccessKeyId"] == app) == "Active"
    commands.rollback(settings, result.run_id, "keys")
    assert role_arn not in trusted() and user_arn in trusted()


def test_a_merge_into_a_profile_several_instances_share_is_shown_as_such(
    settings: Settings, sandbox: SeedSummary, tmp_path: Path, aws: Any
) -> None:
    iam, ec2 = aws("iam"), aws("ec2")
    iam.create_role(RoleName="fleet-role", AssumeRolePolicyDocument=json.dumps(EC2_TRUST))
    iam.create_instance_profile(InstanceProfileName="fleet-profile")
    iam.add_role_to_instance_profile(InstanceProfileName="fleet-profile", RoleName="fleet-role")
    image = ec2.describe_images()["Images"][0]["ImageId"]
    other = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    for instance in (sandbox.instance_id, other):
        ec2.associate_iam_instance_profile(
            IamInstanceProfile={"Name": "fleet-profile"}, InstanceId=instance
        )
    app = sandbox.access_key_id("app-server")
    ip = sandbox.instance_private_ip
    call = CallStat("s3.amazonaws.com", "ListBuckets", "s3:ListAllMyBuckets", 3)
    _save(settings, [_usage(app, "app-server", {ip: 3}, [call])], _at_instance(sandbox))
    _, plan = commands.plan(settings, str(_book(tmp_path, "app-server")))
    switch = next(a for a in _step_actions(plan) if a.kind == "iam.switch_workloads")
    assert any("shared profile" in r and other in r for r in switch.risks)


def test_secrets_moved_from_a_hosts_config_files_are_granted_in_its_role(
    settings: Settings, sandbox: SeedSummary, tmp_path: Path, aws: Any
) -> None:
    app = sandbox.access_key_id("app-server")
    ip = sandbox.instance_private_ip
    call = CallStat("s3.amazonaws.com", "ListBuckets", "s3:ListAllMyBuckets", 3)
    _save(settings, [_usage(app, "app-server", {ip: 3}, [call])], _at_instance(sandbox))
    # Without a mapping, the plan says what the role will need.
    _, plan = commands.plan(settings, str(_book(tmp_path, "app-server")))
    create = next(a for a in _step_actions(plan) if a.kind == "iam.create_role")
    assert any("host_secrets" in r and sandbox.instance_id in r for r in create.risks)
    assert "secretsmanager:GetSecretValue" not in json.dumps(create.details["policy"])

    mapped = write_playbook(
        tmp_path / "m.yaml",
        BOOK.format(names='["app-server"]')
        + '      host_secrets: {legacy-app-1: ["legacy/app/db-password"]}\n',
    )
    _, plan = commands.plan(settings, str(mapped))
    create = next(a for a in _step_actions(plan) if a.kind == "iam.create_role")
    granted = {
        action: statement["Resource"]
        for statement in create.details["policy"]["Statement"]
        for action in statement["Action"]
    }
    assert granted["secretsmanager:GetSecretValue"] == [
        "arn:aws:secretsmanager:us-east-1:123456789012:secret:legacy/app/db-password-??????"
    ]


def test_a_key_that_assumes_a_role_whose_trust_cannot_be_read_goes_to_review(
    settings: Settings, sandbox: SeedSummary, tmp_path: Path, aws: Any
) -> None:
    """The key assumes a role in another account: migrate can neither read nor extend that
    role's trust, so the new instance role might never be able to take over the assumption.
    The key goes to a human with the role named, and is never planned for deactivation."""
    foreign = "arn:aws:iam::999999999999:role/partner-reports"
    app = sandbox.access_key_id("app-server")
    ip = sandbox.instance_private_ip
    calls = [CallStat("sts.amazonaws.com", "AssumeRole", "sts:AssumeRole", 4, {}, [foreign])]
    _save(settings, [_usage(app, "app-server", {ip: 4}, calls)], _at_instance(sandbox))
    _, plan = commands.plan(settings, str(_book(tmp_path, "app-server")))
    mine = [a for a in _step_actions(plan) if a.target == app]
    assert [a.kind for a in mine] == ["iam.review"], [a.kind for a in mine]
    assert foreign in mine[0].summary + " ".join(mine[0].risks)


def test_sessions_of_a_user_with_two_minting_keys_send_both_keys_to_review(
    settings: Settings, sandbox: SeedSummary, tmp_path: Path, aws: Any
) -> None:
    """Both keys of a user called GetSessionToken: the session's calls belong to one of them,
    and which one is not in the evidence kept. Neither key is switched or retired on a guess."""
    iam = aws("iam")
    user_arn = iam.get_user(UserName="app-server")["User"]["Arn"]
    first = sandbox.access_key_id("app-server")
    second = iam.create_access_key(UserName="app-server")["AccessKey"]["AccessKeyId"]
    ip = sandbox.instance_private_ip
    minting = [CallStat("sts.amazonaws.com", "GetSessionToken", "sts:GetSessionToken", 2)]
    session = PrincipalUsage(
        principal=user_arn,
        kind="temporary",
        owner="app-server",
        owner_arn=user_arn,
        identity_type="IAMUser",
        calls=7,
        actions=[CallStat("s3.amazonaws.com", "GetObject", "s3:GetObject", 7)],
    )
    keys = [
        _usage(first, "app-server", {ip: 2}, minting),
        _usage(second, "app-server", {ip: 2}, minting),
    ]
    _save(settings, keys, _at_instance(sandbox), [session])
    _, plan = commands.plan(settings, str(_book(tmp_path, "app-server")))
    for key_id in (first, second):
        mine = [a for a in _step_actions(plan) if a.target == key_id]
        assert [a.kind for a in mine] == ["iam.review"], (key_id, [a.kind for a in mine])
        assert "which is unknown" in mine[0].summary + " ".join(mine[0].risks)


def test_the_secrets_step_feeds_the_hosts_role_its_secrets(
    settings: Settings, sandbox: SeedSummary, tmp_path: Path, aws: Any
) -> None:
    """secrets.from_configs before keys-to-roles: its secrets_by_host output is the role's
    host_secrets, so the role the host gets can read the secrets its rewritten config now
    names (no mapping typed twice)."""
    app = sandbox.access_key_id("app-server")
    ip = sandbox.instance_private_ip
    call = CallStat("s3.amazonaws.com", "ListBuckets", "s3:ListAllMyBuckets", 3)
    _save(settings, [_usage(app, "app-server", {ip: 3}, [call])], _at_instance(sandbox))
    conf = tmp_path / "tomcat" / "conf"
    conf.mkdir(parents=True)
    (conf / "context.xml").write_text(
        '<?xml version="1.0"?>\n<Context>\n  <Resource name="jdbc/app" type="javax.sql.DataSource" '
        'driverClassName="com.mysql.cj.jdbc.Driver" url="jdbc:mysql://db.internal:3306/app" '
        'username="app" password="Fed-To-The-Role-7"/>\n</Context>\n'
    )
    book = write_playbook(
        tmp_path / "feed.yaml",
        f"""\
name: feed
steps:
  - id: kms
    uses: kms.ensure_key
  - id: config-secrets
    uses: secrets.from_configs
    with:
      paths: ["{tmp_path / "tomcat"}"]
      kms_key: "{{{{ steps.kms.key_arn }}}}"
      host: legacy-app-1
  - id: keys
    uses: iam.keys_to_roles
    depends_on: [config-secrets]
    with:
      names: ["app-server"]
      watch_window: 0s
      retire_window: 0s
      host_regions: [us-east-1]
      unused_days: 0
      kms_key: "{{{{ steps.kms.key_arn }}}}"
      host_secrets: "{{{{ steps['config-secrets'].secrets_by_host }}}}"
""",
    )
    _, plan = commands.plan(settings, str(book))
    create = next(a for a in _step_actions(plan) if a.kind == "iam.create_role")
    policy = json.dumps(create.details["policy"])
    assert "secret:legacy-app-1/conf/context.xml/jdbc-app-??????" in policy, policy


def test_a_host_pattern_grants_the_secrets_the_config_step_stores_for_that_host(
    settings: Settings, sandbox: SeedSummary, tmp_path: Path, aws: Any
) -> None:
    """The baseline's wiring: keys-to-roles plans before any secret exists, so it grants the
    host's role the pattern legacy/prod/<host>/* for its Name tag; the secret the config step
    then stores for that host's file falls under it (and another host's does not)."""
    import fnmatch

    app = sandbox.access_key_id("app-server")
    ip = sandbox.instance_private_ip
    call = CallStat("s3.amazonaws.com", "ListBuckets", "s3:ListAllMyBuckets", 3)
    _save(settings, [_usage(app, "app-server", {ip: 3}, [call])], _at_instance(sandbox))
    book = write_playbook(
        tmp_path / "pattern.yaml",
        """\
name: pattern
steps:
  - id: kms
    uses: kms.ensure_key
  - id: keys
    uses: iam.keys_to_roles
    with:
      names: ["app-server"]
      host_regions: [us-east-1]
      unused_days: 0
      kms_key: "{{ steps.kms.key_arn }}"
      host_secrets_pattern: "legacy/prod/<host>/*"
""",
    )
    _, plan = commands.plan(settings, str(book))
    create = next(a for a in _step_actions(plan) if a.kind == "iam.create_role")
    (grant,) = [
        st for st in create.details["policy"]["Statement"] if st["Sid"] == "SecretsFromConfigs"
    ]
    assert grant["Action"] == ["secretsmanager:GetSecretValue"]
    # kms:Decrypt on the key comes with it once the key step ran (unknown while planning).
    assert "legacy/prod/legacy-app-1/*" in json.dumps(create.details)
    stored: dict[str, str] = {}
    for host in ("legacy-app-1", "legacy-app-2"):
        conf = tmp_path / host / "conf"
        conf.mkdir(parents=True)
        (conf / "context.xml").write_text(
            '<?xml version="1.0"?>\n<Context>\n  <Resource name="jdbc/app" '
            'type="javax.sql.DataSource" driverClassName="com.mysql.cj.jdbc.Driver" '
            'url="jdbc:mysql://db.internal:3306/app" username="app" '
            f'password="Pattern-Granted-{host}"/>\n</Context>\n'
        )
        secrets_book = write_playbook(
            tmp_path / f"secrets-{host}.yaml",
            f"""\
name: secrets
steps:
  - id: kms
    uses: kms.ensure_key
  - id: config-secrets
    uses: secrets.from_configs
    yes_approves: all
    with:
      paths: ["{tmp_path / host}"]
      kms_key: "{{{{ steps.kms.key_arn }}}}"
      name_template: "legacy/prod/<host>/<path>/<resource>"
      host: {host}
""",
        )
        result = commands.run(settings, str(secrets_book), options=RunOptions(quiet=True, yes=True))
        assert result.status == "done"
        (arn,) = [
            s["ARN"]
            for s in aws("secretsmanager").list_secrets()["SecretList"]
            if s["Name"].startswith(f"legacy/prod/{host}/")
        ]
        stored[host] = arn
    # The sandbox instance is legacy-app-1: its role reads its own secret, not the other's.
    assert any(fnmatch.fnmatchcase(stored["legacy-app-1"], r) for r in grant["Resource"])
    assert not any(fnmatch.fnmatchcase(stored["legacy-app-2"], r) for r in grant["Resource"])
    # Run on the instance itself with no host given, the config step names it by its own
    # host name, EC2's default for its private address: that is granted too.
    ec2_name = "ip-" + sandbox.instance_private_ip.replace(".", "-")
    assert any(r.endswith(f":secret:legacy/prod/{ec2_name}/*") for r in grant["Resource"])


def test_actions_the_request_parameters_showed_are_in_the_role(
    settings: Settings, sandbox: SeedSummary, tmp_path: Path, aws: Any
) -> None:
    """The app writes into a partner's bucket with x-amz-acl: bucket-owner-full-control and
    reads object versions: the role needs s3:PutObjectAcl and s3:GetObjectVersion on those
    objects, or the workload fails the day its key is deactivated. A RunInstances that passed
    a profile needs iam:PassRole, which the plan names (never granted on "*")."""
    app = sandbox.access_key_id("app-server")
    ip = sandbox.instance_private_ip
    put = CallStat(
        "s3.amazonaws.com",
        "PutObject",
        "s3:PutObject",
        9,
        resources=["arn:aws:s3:::partner-drop/exports/*"],
        also=["s3:PutObjectAcl"],
    )
    get = CallStat(
        "s3.amazonaws.com",
        "GetObject",
        "s3:GetObject",
        4,
        resources=["arn:aws:s3:::archive/2026/*"],
        also=["s3:GetObjectVersion"],
    )
    launch = CallStat("ec2.amazonaws.com", "RunInstances", "ec2:RunInstances", 1)
    launch.also = ["iam:PassRole"]
    _save(
        settings, [_usage(app, "app-server", {ip: 14}, [put, get, launch])], _at_instance(sandbox)
    )
    _, plan = commands.plan(settings, str(_book(tmp_path, "app-server")))
    create = next(a for a in _step_actions(plan) if a.kind == "iam.create_role")
    granted: dict[str, set[str]] = {}
    for st in create.details["policy"]["Statement"]:
        actions = [st["Action"]] if isinstance(st["Action"], str) else st["Action"]
        resources = [st["Resource"]] if isinstance(st["Resource"], str) else st["Resource"]
        for action in actions:
            granted.setdefault(action, set()).update(resources)
    assert granted["s3:PutObjectAcl"] == {"arn:aws:s3:::partner-drop/exports/*"}
    assert granted["s3:GetObjectVersion"] == {"arn:aws:s3:::archive/2026/*"}
    assert "iam:PassRole" not in granted
    assert any("ec2.amazonaws.com:RunInstances" in r and "PassRole" in r for r in create.risks)
