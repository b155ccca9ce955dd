"""A fresh instance profile that EC2 does not see yet is retried with backoff, a bounded number of
times. moto cannot express it (its IAM and EC2 are consistent at once), so EC2's answer comes
from botocore's Stubber: AWS says ``InvalidParameterValue`` ... "Invalid IAM Instance Profile
name" for a profile IAM created a moment ago."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from migrate.engine.base import Action, Wait
from migrate.errors import StepFailed
from migrate.steps.iam.keys_to_roles import PROFILE_TRIES, KeysToRoles, KeysToRolesParams

ROLE = "migrate-app-server-abc123"
PROFILE_ARN = f"arn:aws:iam::123456789012:instance-profile/{ROLE}"


class FakeContext:
    """The part of StepContext the switch uses: clients, checkpoints, resources."""

    def __init__(self, clients: dict[str, Any]) -> None:
        self.clients = clients
        self.saved: dict[str, dict[str, Any]] = {}
        self.resources: list[tuple[str, str]] = []

    def client(self, service: str, region: str | None = None) -> Any:
        return self.clients[service]

    def load_checkpoint(self, name: str = "main") -> dict[str, Any] | None:
        return self.saved.get(name)

    def checkpoint(self, cursor: dict[str, Any], *, done: int, name: str = "main") -> None:
        self.saved[name] = {"cursor": dict(cursor), "done": done}

    def record_resource(self, kind: str, identifier: str, **_: Any) -> None:
        self.resources.append((kind, identifier))


def _clients(failures: int) -> tuple[dict[str, Any], list[Stubber]]:
    kw = {"region_name": "us-east-1", "aws_access_key_id": "x", "aws_secret_access_key": "y"}
    iam, ec2 = boto3.client("iam", **kw), boto3.client("ec2", **kw)
    iam_stub, ec2_stub = Stubber(iam), Stubber(ec2)
    profile = {
        "InstanceProfile": {
            "Path": "/",
            "InstanceProfileName": ROLE,
            "InstanceProfileId": "AIPAEXAMPLE0000000001",
            "Arn": PROFILE_ARN,
            "CreateDate": "2026-12-01T00:00:00Z",
            "Roles": [],
        }
    }
    for attempt in range(failures + 1):
        iam_stub.add_response("get_instance_profile", profile, {"InstanceProfileName": ROLE})
        ec2_stub.add_response(
            "describe_iam_instance_profile_associations", {"IamInstanceProfileAssociations": []}
        )
        if attempt < failures:
            ec2_stub.add_client_error(
                "associate_iam_instance_profile",
                service_error_code="InvalidParameterValue",
                service_message=f"Value ({ROLE}) for parameter iamInstanceProfile.name is "
                "invalid. Invalid IAM Instance Profile name",
            )
        else:
            ec2_stub.add_response(
                "associate_iam_instance_profile",
                {"IamInstanceProfileAssociation": {"AssociationId": "iip-assoc-1"}},
            )
    iam_stub.activate()
    ec2_stub.activate()
    return {"iam": iam, "ec2": ec2}, [iam_stub, ec2_stub]


ACTION = Action(
    kind="iam.switch_workloads",
    target="AKIAEXAMPLE000ABC123",
    summary="switch",
    details={
        "role_name": ROLE,
        "policy": {"Version": "2012-10-17", "Statement": []},
        "workloads": [{"instance_id": "i-0123456789abcdef0", "region": "us-east-1"}],
    },
)


def test_an_unpropagated_profile_waits_with_backoff_then_associates() -> None:
    clients, stubs = _clients(failures=2)
    ctx = FakeContext(clients)
    step = KeysToRoles(KeysToRolesParams())
    first = step._act_switch_workloads(ctx, ACTION)  # type: ignore[arg-type]
    second = step._act_switch_workloads(ctx, ACTION)  # type: ignore[arg-type]
    assert isinstance(first, Wait) and isinstance(second, Wait)
    assert (first.poll_s, second.poll_s) == (2.0, 4.0)
    assert "eventually consistent" in first.reason
    assert step._act_switch_workloads(ctx, ACTION) is None  # type: ignore[arg-type]
    for stub in stubs:
        stub.assert_no_pending_responses()


def test_the_retries_are_bounded() -> None:
    clients, _ = _clients(failures=PROFILE_TRIES + 1)
    ctx = FakeContext(clients)
    step = KeysToRoles(KeysToRolesParams())
    for _ in range(PROFILE_TRIES):
        assert isinstance(step._act_switch_workloads(ctx, ACTION), Wait)  # type: ignore[arg-type]
    with pytest.raises(StepFailed, match="still does not see the instance profile"):
        step._act_switch_workloads(ctx, ACTION)  # type: ignore[arg-type]
