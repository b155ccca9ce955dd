"""The final snapshot is taken only once CloudWatch shows the database's clients gone.

The stop-writes approval is the operator's word; CloudWatch's DatabaseConnections says whether
the application really let go. moto publishes no RDS metrics, so CloudWatch is a botocore
Stubber here (as RDS is): the stub fails the test on a CreateDBSnapshot it was not given.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from botocore.stub import ANY, Stubber

from migrate.aws.session import AwsSession
from migrate.engine.base import Wait
from migrate.errors import StepFailed
from tests.unit.test_rds_cleanup_quiet import _connections
from tests.unit.test_rds_waits import (
    ACTION,
    DB,
    ENC,
    RAW,
    MemoryContext,
    _available,
    _missing,
    _setup,
)

STOPPED_AT = "2025-01-01T12:00:00"  # the harness' clock starts here


def _stopped(ctx: MemoryContext) -> None:
    ctx.record_resource(
        "rds:timing", DB, change="measured", details={"stop_writes": {"at": STOPPED_AT}}
    )


def _on_aws(tmp_path: Path) -> tuple[Any, MemoryContext, Stubber, Any, Stubber]:
    step, ctx, _, clock = _setup(tmp_path)
    ctx.aws = AwsSession(region="us-east-1")  # AWS itself: no sandbox endpoint
    return step, ctx, Stubber(ctx.client("rds")), clock, Stubber(ctx.client("cloudwatch"))


def test_the_final_snapshot_waits_while_the_application_still_connects(tmp_path: Path) -> None:
    step, ctx, rds, clock, cw = _on_aws(tmp_path)
    _stopped(ctx)
    clock.now += timedelta(minutes=3)
    _missing(rds, ENC)
    _missing(rds, RAW)
    _available(rds)
    _connections(cw, [("2025-01-01T12:01:00+00:00", 4.0), ("2025-01-01T12:02:00+00:00", 3.0)], DB)
    with rds, cw:
        wait = step.act(ctx, ACTION)  # no create_db_snapshot stubbed: taking one fails the test
    assert isinstance(wait, Wait) and "still had 3 connection(s) at 12:02 UTC" in wait.reason
    assert ("rds:snapshot", RAW) not in ctx.recorded


def test_once_the_latest_minute_is_quiet_the_snapshot_is_taken(tmp_path: Path) -> None:
    step, ctx, rds, clock, cw = _on_aws(tmp_path)
    _stopped(ctx)
    clock.now += timedelta(minutes=4)
    _missing(rds, ENC)
    _missing(rds, RAW)
    _available(rds)
    _connections(cw, [("2025-01-01T12:01:00+00:00", 2.0), ("2025-01-01T12:03:00+00:00", 0.0)], DB)
    rds.add_response(
        "create_db_snapshot",
        {"DBSnapshot": {"DBSnapshotIdentifier": RAW, "Status": "creating"}},
        {"DBSnapshotIdentifier": RAW, "DBInstanceIdentifier": DB, "Tags": ANY},
    )
    rds.add_response(
        "describe_db_snapshots",
        {
            "DBSnapshots": [
                {"DBSnapshotIdentifier": RAW, "Status": "creating", "PercentProgress": 5}
            ]
        },
        {"DBSnapshotIdentifier": RAW},
    )
    with rds, cw:
        wait = step.act(ctx, ACTION)
    assert isinstance(wait, Wait) and "creating" in wait.reason
    assert ("rds:snapshot", RAW) in ctx.recorded


def test_no_metric_long_after_the_approval_is_no_evidence(tmp_path: Path) -> None:
    step, ctx, rds, clock, cw = _on_aws(tmp_path)
    _stopped(ctx)
    clock.now += timedelta(minutes=20)
    _missing(rds, ENC)
    _missing(rds, RAW)
    _available(rds)
    _connections(cw, [], DB)
    with rds, cw, pytest.raises(StepFailed, match="nothing shows that writes stopped"):
        step.act(ctx, ACTION)
    assert ("rds:snapshot", RAW) not in ctx.recorded
