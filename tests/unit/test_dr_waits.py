"""dr.restore_test's waits, with a botocore Stubber: moto is `available` at once, AWS is not.

The restore returns an engine Wait while the copy is `creating`, continues on the next poll
without restoring twice, and gives up clearly past its deadline. The context is a small in-memory
stand-in (checkpoints, resources, results) so that the RDS call sequence is all that is tested.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from migrate.engine.base import Action, Wait
from migrate.errors import StepFailed
from migrate.steps.dr.drill import DatabaseDrill, DrillSettings

RUN = "run-1"
START = datetime(2026, 12, 2, 12, 0, 0)


class FakeContext:
    """What DatabaseDrill uses of StepContext, in memory."""

    def __init__(self, rds: Any) -> None:
        self.rds = rds
        self.run_id = RUN
        self.action_id = 1
        self.aws = None  # no endpoint: measured on AWS
        self.saved: dict[str, Any] = {}
        self.res: dict[tuple[str, str], dict[str, Any]] = {}
        self.results: dict[str, Any] = {}

    def client(self, service: str, region: str | None = None) -> Any:
        return self.rds

    def load_checkpoint(self, name: str = "main") -> dict[str, Any] | None:
        return {"cursor": self.saved[name]} if name in self.saved else None

    def checkpoint(
        self, cursor: dict[str, Any], *, done: int, total: int | None = None, name: str = "main"
    ) -> None:
        self.saved[name] = dict(cursor)

    def record_resource(
        self,
        kind: str,
        ident: str,
        *,
        change: str = "created",
        region: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        self.res.setdefault((kind, ident), {}).update(details or {})

    def record_result(self, **values: Any) -> None:
        self.results.update(values)

    def resources(self, kind: str | None = None) -> list[Any]:
        class R:
            def __init__(self, ident: str, details: dict[str, Any]) -> None:
                self.identifier, self.details = ident, details

        return [R(i, d) for (k, i), d in self.res.items() if kind in (None, k)]


def _drill(rds: Any, clock: list[datetime]) -> DatabaseDrill:
    cfg = DrillSettings(
        run_hash="abc123",
        restore_from="latest",
        target_region=None,
        target_kms_key=None,
        subnet_group="dr-subnets",
        security_group_ids=["sg-dr"],
        subnet_ids=[],
        allow_cidrs=[],
        availability_zone=None,
        check_endpoint=True,
        check_command=None,
        check_timeout_s=10,
        rto_target_s=3600,
        rpo_target_s=900,
        wait_timeout_hours=2,
        poll_seconds=30,
    )
    settings = {
        "instance_class": "db.t3.micro",
        "engine": "postgres",
        "port": 5432,
        "multi_az": False,
        "publicly_accessible": False,
        "auto_minor_version_upgrade": True,
        "copy_tags_to_snapshot": False,
        "iam_auth": False,
        "deletion_protection": True,
        "tags": {},
        "vpc_security_group_ids": ["sg-prod"],
        "db_subnet_group": "prod",
        "parameter_group": "pg16",
        "storage_type": "gp3",
        "allocated_storage": 20,
    }
    action = Action(
        kind="dr.restore",
        target="orders",
        summary="",
        region="us-east-1",
        details={"kind": "instance", "settings": settings},
    )
    ctx: Any = FakeContext(rds)
    return DatabaseDrill(ctx, action, cfg, clock=lambda: clock[0], resolve=lambda h: True)


def _instance(status: str) -> dict[str, Any]:
    return {
        "DBInstanceIdentifier": "drt-abc123-orders",
        "DBInstanceStatus": status,
        "TagList": [{"Key": "migrate:dr-test", "Value": RUN}],
    }


def test_restore_waits_while_creating_then_continues_without_a_second_restore() -> None:
    rds = boto3.client(
        "rds", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="y"
    )
    stub = Stubber(rds)
    latest = datetime(2026, 12, 2, 11, 55, 0, tzinfo=UTC)
    stub.add_response(
        "describe_db_instances",
        {
            "DBInstances": [
                {
                    "DBInstanceIdentifier": "orders",
                    "LatestRestorableTime": latest,
                    "BackupRetentionPeriod": 7,
                }
            ]
        },
        {"DBInstanceIdentifier": "orders"},
    )
    stub.add_response(
        "describe_db_snapshots", {"DBSnapshots": []}, {"DBInstanceIdentifier": "orders"}
    )
    stub.add_client_error(
        "describe_db_instances",
        "DBInstanceNotFound",
        expected_params={"DBInstanceIdentifier": "drt-abc123-orders"},
    )
    stub.add_response("restore_db_instance_to_point_in_time", {})
    stub.add_response("describe_db_instances", {"DBInstances": [_instance("creating")]})
    # The next poll: still creating, then available; never a second restore call.
    stub.add_response("describe_db_instances", {"DBInstances": [_instance("creating")]})
    stub.add_response("describe_db_instances", {"DBInstances": [_instance("available")]})
    clock = [START]
    drill = _drill(rds, clock)
    with stub:
        first = drill.restore()
        assert isinstance(first, Wait) and first.until == START + timedelta(hours=2)
        assert "creating" in first.reason
        clock[0] = START + timedelta(minutes=10)
        assert isinstance(drill.restore(), Wait)
        clock[0] = START + timedelta(minutes=20)
        assert drill.restore() is None
    stub.assert_no_pending_responses()
    ctx: Any = drill.ctx
    assert ctx.results["rpo_s"] == 300.0  # the restore point was 5 min old at the start
    assert ctx.results["available_at"] == "2026-12-02T12:20:00"


def test_restore_gives_up_past_its_deadline() -> None:
    rds = boto3.client(
        "rds", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="y"
    )
    stub = Stubber(rds)
    clock = [START]
    drill = _drill(rds, clock)
    ctx: Any = drill.ctx
    ctx.saved["drill"] = {
        "started_at": START.isoformat(),
        "point": {"kind": "point-in-time", "at": "2026-12-02T11:55:00"},
    }
    stub.add_response("describe_db_instances", {"DBInstances": [_instance("creating")]})
    clock[0] = START + timedelta(hours=3)
    with stub, pytest.raises(StepFailed, match="gave up after 2 h"):
        drill.restore()
