"""Planning never changes anything: counted on the server, not only by the guard."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from migrate import commands
from migrate.aws.session import AwsSession
from migrate.commands import Settings
from migrate.engine.registry import get_step_type
from migrate.errors import DryRunViolation
from migrate.sandbox.seed import seed
from migrate.sandbox.server import SandboxServer, is_mutating_request
from tests.conftest import PLAYBOOKS

SHIPPED = sorted(PLAYBOOKS.glob("*.yaml"))


def test_planning_every_shipped_playbook_makes_zero_mutating_calls(
    moto_server: SandboxServer, settings: Settings, tmp_path: Path
) -> None:
    seed(moto_server.endpoint_url, tmp_path / "sandbox")
    assert SHIPPED, "no shipped playbooks found"
    moto_server.start_recording()
    planned: list[tuple[str, str]] = []
    try:
        for book in SHIPPED:
            _, result = commands.plan(settings, str(book), [], None)
            planned += [(s.uses, a.kind) for s in result.steps for a in s.actions]
    finally:
        moto_server.stop_recording()
    # Every kind a plan holds is one its step type declares (and so has a handler).
    undeclared = sorted({(u, k) for u, k in planned if k not in _kinds(u)})
    assert planned and undeclared == []
    requests = moto_server.recorded_requests()
    assert requests, "the recorder saw no request at all: the test would prove nothing"
    mutating = [r for r in requests if is_mutating_request(r)]
    assert mutating == [], [f"{r['method']} {r['operation']}" for r in mutating]


def test_the_guard_refuses_before_the_request_leaves(
    moto_server: SandboxServer, endpoint: str
) -> None:
    session = AwsSession(endpoint_url=endpoint, region="us-east-1")
    s3 = session.client("s3")
    moto_server.start_recording()
    try:
        with session.read_only(), pytest.raises(DryRunViolation, match="s3:CreateBucket"):
            s3.create_bucket(Bucket="never-created")
        with session.read_only():
            s3.list_buckets()
    finally:
        moto_server.stop_recording()
    ops = [r["operation"] for r in moto_server.recorded_requests()]
    assert ops and not any("never-created" in op for op in ops)
    assert "never-created" not in [b["Name"] for b in s3.list_buckets()["Buckets"]]


def test_the_guard_refuses_secret_reads(endpoint: str, aws: Any) -> None:
    aws("secretsmanager").create_secret(Name="db", SecretString="hunter2")
    session = AwsSession(endpoint_url=endpoint, region="us-east-1")
    with session.read_only(), pytest.raises(DryRunViolation):
        session.client("secretsmanager").get_secret_value(SecretId="db")


def _kinds(type_name: str) -> tuple[str, ...]:
    step_type = get_step_type(type_name)
    assert step_type is not None
    return step_type.action_kinds
