"""The watch's end: a quiet key is not enough, the new role must have been used since the switch;
and IAM's last-used lag is waited out. moto never fills ``RoleLastUsed``, so IAM's answers come
from botocore's Stubber."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from migrate.engine.base import Action, Wait
from migrate.errors import StepFailed
from migrate.steps.iam.keys_to_roles import KeysToRoles, KeysToRolesParams
from migrate.util import utcnow
from tests.unit.test_keys_to_roles_profile_retry import FakeContext

KEY = "AKIAEXAMPLE000ABC123"
ROLE = "migrate-app-server-abc123"


class WatchContext(FakeContext):
    def __init__(self, clients: dict[str, Any], start: datetime) -> None:
        super().__init__(clients)
        self.saved["watch"] = {"cursor": {"start": start.isoformat()}, "done": 0}
        self.results: dict[str, Any] = {}

    def record_result(self, **values: Any) -> None:
        self.results.update(values)


def _watch(seconds: float, grace: float) -> Action:
    return Action(
        kind="iam.watch",
        target=KEY,
        summary="watch",
        details={
            "user": "app-server",
            "role_name": ROLE,
            "seconds": seconds,
            "grace": grace,
            "health_role": ROLE,
        },
    )


def _iam(role_used: datetime | None) -> tuple[Any, Stubber]:
    iam = boto3.client(
        "iam", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="y"
    )
    stub = Stubber(iam)
    stub.add_response(
        "get_access_key_last_used",
        {"UserName": "app-server", "AccessKeyLastUsed": {"ServiceName": "N/A", "Region": "N/A"}},
    )
    role: dict[str, Any] = {
        "Path": "/",
        "RoleName": ROLE,
        "RoleId": "AROAEXAMPLE0000000001",
        "Arn": f"arn:aws:iam::123456789012:role/{ROLE}",
        "CreateDate": datetime(2026, 11, 1, tzinfo=UTC),
    }
    if role_used is not None:
        role["RoleLastUsed"] = {"LastUsedDate": role_used, "Region": "us-east-1"}
    stub.add_response("get_role", {"Role": role})
    stub.activate()
    return iam, stub


def test_a_quiet_key_whose_new_role_was_never_used_is_not_a_success() -> None:
    start = utcnow() - timedelta(days=8)
    iam, _ = _iam(role_used=None)
    ctx = WatchContext({"iam": iam}, start)
    with pytest.raises(StepFailed, match="shows no use since the switch"):
        KeysToRoles(KeysToRolesParams())._act_watch(ctx, _watch(7 * 86400, 4 * 3600))  # type: ignore[arg-type]


def test_the_watch_passes_when_the_role_works() -> None:
    start = utcnow() - timedelta(days=8)
    iam, _ = _iam(role_used=(start + timedelta(hours=1)).replace(tzinfo=UTC))
    ctx = WatchContext({"iam": iam}, start)
    assert KeysToRoles(KeysToRolesParams())._act_watch(ctx, _watch(7 * 86400, 4 * 3600)) is None  # type: ignore[arg-type]
    assert ctx.results["role_used"]


def test_the_last_used_lag_is_waited_out_after_the_window() -> None:
    start = utcnow() - timedelta(days=7, hours=1)  # window over, 4 h grace not yet
    iam = boto3.client(
        "iam", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="y"
    )
    stub = Stubber(iam)
    stub.add_response(
        "get_access_key_last_used",
        {"AccessKeyLastUsed": {"ServiceName": "N/A", "Region": "N/A"}},
    )
    stub.activate()
    ctx = WatchContext({"iam": iam}, start)
    waited = KeysToRoles(KeysToRolesParams())._act_watch(ctx, _watch(7 * 86400, 4 * 3600))  # type: ignore[arg-type]
    assert isinstance(waited, Wait)
