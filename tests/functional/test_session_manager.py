"""ssm.session_manager against the moto server, through the Python API.

moto has no SSM ``DescribeInstanceInformation``: the sandbox server answers it with an empty list
(no agent runs in moto), and the test of a registered agent puts botocore's Stubber on that call
alone (every other SSM call still goes to the moto server).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.stub import Stubber

from migrate import commands
from migrate.aws.session import AwsSession
from migrate.commands import Settings
from migrate.engine.runner import RunOptions
from tests.conftest import write_playbook

CORE = "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"
TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"Service": "ec2.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
    ],
}


def _book(tmp_path: Path, **with_: Any) -> str:
    lines = "".join(f"      {k}: {json.dumps(v)}\n" for k, v in with_.items())
    return str(
        write_playbook(
            tmp_path / "ssm.yaml",
            "name: ssm\nsteps:\n  - id: kms\n    uses: kms.ensure_key\n"
            "  - id: ssm\n    uses: ssm.session_manager\n    with:\n"
            '      kms_key: "{{ steps.kms.key_arn }}"\n'
            "      log_bucket: session-logs\n" + lines,
        )
    )


def _legacy(aws: Any) -> dict[str, str]:
    ec2, iam = aws("ec2"), aws("iam")
    aws("s3").create_bucket(Bucket="session-logs")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
    sg = ec2.create_security_group(GroupName="bastion", Description="b", VpcId=vpc)["GroupId"]
    ec2.authorize_security_group_ingress(
        GroupId=sg,
        IpPermissions=[
            {
                "IpProtocol": "tcp",
                "FromPort": 22,
                "ToPort": 22,
                "IpRanges": [
                    {"CidrIp": "0.0.0.0/0", "Description": "ssh from anywhere"},
                    {"CidrIp": "10.0.0.0/16", "Description": "ssh inside the VPC"},
                ],
            },
            {
                "IpProtocol": "tcp",
                "FromPort": 3389,
                "ToPort": 3389,
                "IpRanges": [{"CidrIp": "10.8.0.0/24"}],
            },
            {
                "IpProtocol": "tcp",
                "FromPort": 443,
                "ToPort": 443,
                "IpRanges": [{"CidrIp": "0.0.0.0/0"}],
            },
        ],
    )
    iam.create_role(RoleName="app-role", AssumeRolePolicyDocument=json.dumps(TRUST))
    iam.create_instance_profile(InstanceProfileName="app-profile")
    iam.add_role_to_instance_profile(InstanceProfileName="app-profile", RoleName="app-role")

    def launch(name: str, profile: str | None) -> str:
        kwargs: dict[str, Any] = {}
        if profile:
            kwargs["IamInstanceProfile"] = {"Name": profile}
        return str(
            ec2.run_instances(
                ImageId="ami-12c6146b",
                InstanceType="t3.micro",
                MinCount=1,
                MaxCount=1,
                SubnetId=subnet,
                SecurityGroupIds=[sg],
                TagSpecifications=[
                    {"ResourceType": "instance", "Tags": [{"Key": "Name", "Value": name}]}
                ],
                **kwargs,
            )["Instances"][0]["InstanceId"]
        )

    return {"sg": sg, "bare": launch("bare-box", None), "app": launch("app-box", "app-profile")}


def _ingress(aws: Any, sg: str) -> set[tuple[int, str]]:
    group = aws("ec2").describe_security_groups(GroupIds=[sg])["SecurityGroups"][0]
    return {
        (p["FromPort"], r["CidrIp"]) for p in group["IpPermissions"] for r in p.get("IpRanges", [])
    }


def test_instances_get_the_ssm_role_sessions_are_logged_and_open_ssh_goes(
    settings: Settings, aws: Any, tmp_path: Path
) -> None:
    ids = _legacy(aws)
    book = _book(tmp_path, vpn_cidrs=["10.8.0.0/16"])
    _, plan = commands.plan(settings, book)
    ssm_step = plan.steps[1]
    by_kind: dict[str, list[str]] = {}
    for action in ssm_step.actions:
        by_kind.setdefault(action.kind, []).append(action.target)
    assert sorted(by_kind["ssm.instance_role"]) == ["role:app-role", "role:migrate-ssm-instance"]
    assert by_kind["ssm.attach_profile"] == [ids["bare"]]
    revokes = sorted(by_kind["ssm.revoke_open_rule"])
    assert revokes == [f"{ids['sg']}:tcp:22-22:0.0.0.0/0", f"{ids['sg']}:tcp:3389-3389:10.8.0.0/24"]
    # The agents are not registered (no agent runs in moto): reported with what to do.
    assert any("not registered with SSM" in w for w in ssm_step.facts["warnings"])

    result = commands.run(settings, book, options=RunOptions(quiet=True, yes=True))
    # Revoking a rule cuts access: a destructive gate that --yes does not open.
    assert result.status == "awaiting-approval", result
    commands.approve(settings, result.run_id, "ssm")
    result = commands.resume(settings, result.run_id, RunOptions(quiet=True, yes=True))
    assert result.status == "done", result

    iam, ec2, ssm = aws("iam"), aws("ec2"), aws("ssm")
    attached = iam.list_attached_role_policies(RoleName="app-role")["AttachedPolicies"]
    assert [p["PolicyArn"] for p in attached] == [CORE]
    logging = iam.get_role_policy(RoleName="app-role", PolicyName="migrate-session-manager-logging")
    document = logging["PolicyDocument"]
    document = json.loads(document) if isinstance(document, str) else document
    put = next(s for s in document["Statement"] if s["Sid"] == "SessionLogsToS3")
    assert put["Resource"] == "arn:aws:s3:::session-logs/session-manager/*"
    bare = ec2.describe_instances(InstanceIds=[ids["bare"]])["Reservations"][0]["Instances"][0]
    assert bare["IamInstanceProfile"]["Arn"].endswith("/migrate-ssm-instance")
    prefs = json.loads(ssm.get_document(Name="SSM-SessionManagerRunShell")["Content"])
    assert prefs["inputs"]["s3BucketName"] == "session-logs"
    assert prefs["inputs"]["s3EncryptionEnabled"] is True
    assert prefs["inputs"]["kmsKeyId"].startswith("arn:aws:kms:")
    assert _ingress(aws, ids["sg"]) == {(22, "10.0.0.0/16"), (443, "0.0.0.0/0")}

    commands.rollback(settings, result.run_id, "ssm")
    assert _ingress(aws, ids["sg"]) == {
        (22, "0.0.0.0/0"),
        (22, "10.0.0.0/16"),
        (3389, "10.8.0.0/24"),
        (443, "0.0.0.0/0"),
    }
    assert iam.list_attached_role_policies(RoleName="app-role")["AttachedPolicies"] == []
    assert "migrate-ssm-instance" not in [r["RoleName"] for r in iam.list_roles()["Roles"]]
    assert not ec2.describe_iam_instance_profile_associations(
        Filters=[{"Name": "instance-id", "Values": [ids["bare"]]}]
    )["IamInstanceProfileAssociations"]


class _SsmProxy:
    """The session's SSM client, except DescribeInstanceInformation, which a Stubber answers."""

    def __init__(self, real: Any, stubbed: Any) -> None:
        self._real, self._stubbed = real, stubbed

    def get_paginator(self, operation: str) -> Any:
        if operation == "describe_instance_information":
            return self._stubbed.get_paginator(operation)
        return self._real.get_paginator(operation)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


class _StubbedSession(AwsSession):
    stubbed: Any = None

    def client(self, service: str, region: str | None = None) -> Any:
        real = super().client(service, region)
        return _SsmProxy(real, self.stubbed) if service == "ssm" else real


class _StubbedSettings(Settings):
    stubbed: Any = None

    def aws(self) -> AwsSession:
        session = _StubbedSession(region=self.region, endpoint_url=self.endpoint_url)
        session.stubbed = self.stubbed
        return session


def test_a_registered_agent_passes_and_an_unregistered_one_is_reported(
    settings: Settings, aws: Any, tmp_path: Path, endpoint: str
) -> None:
    ids = _legacy(aws)
    stubbed = boto3.client(
        "ssm",
        region_name="us-east-1",
        endpoint_url=endpoint,
        config=Config(retries={"max_attempts": 1}),
    )
    stub = Stubber(stubbed)
    for _ in range(3):
        stub.add_response(
            "describe_instance_information",
            {
                "InstanceInformationList": [
                    {
                        "InstanceId": ids["app"],
                        "PingStatus": "Online",
                        "AgentVersion": "3.3.40.0",
                        "IsLatestVersion": True,
                    }
                ]
            },
        )
    stub.activate()
    stubbed_settings = _StubbedSettings(
        state=settings.state, endpoint_url=settings.endpoint_url, region="us-east-1", quiet=True
    )
    stubbed_settings.stubbed = stubbed
    _, plan = commands.plan(stubbed_settings, _book(tmp_path))
    findings = {f["subject"]: f for f in plan.steps[1].facts["findings"]}
    assert findings[f"SSM agent on app-box ({ids['app']})"]["status"] == "pass"
    assert findings[f"SSM agent on bare-box ({ids['bare']})"]["status"] == "manual"
