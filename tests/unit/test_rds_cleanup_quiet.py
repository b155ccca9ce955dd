"""rds.encrypt's cleanup looks at CloudWatch before it deletes the renamed original.

moto publishes no RDS metrics (its answer is always empty), so CloudWatch is a botocore Stubber
here, as RDS is: the test gives the DatabaseConnections answer AWS would, and the stub fails
the test on any call it did not expect (a delete after a refusal, for one).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from botocore.stub import ANY, Stubber

from migrate.aws import rds_settings as rs
from migrate.aws.session import AwsSession
from migrate.engine.base import Action, Wait
from migrate.errors import StepFailed
from migrate.steps.rds.encrypt import CLEANUP, RdsEncrypt, RdsEncryptParams
from migrate.steps.rds.phases import _period_for
from tests.unit.test_rds_waits import DB, KEY, RUN, MemoryContext, _setup

OLD = f"{DB}-unencrypted-20250101"
ACTION = Action(kind=CLEANUP, target=DB, summary="cleanup", region="us-east-1", details={})


def _cut_over(ctx: MemoryContext) -> None:
    ctx.record_resource("rds:renamed", DB, change="modified", details={"renamed_to": OLD})
    ctx.record_resource(
        "rds:timing",
        DB,
        change="measured",
        details={"cut_over": {"finished_at": "2025-01-01T10:00:00"}},
    )


def _original(stub: Stubber) -> None:
    stub.add_response(
        "describe_db_instances",
        {
            "DBInstances": [
                {
                    "DBInstanceIdentifier": OLD,
                    "DBInstanceStatus": "available",
                    "StorageEncrypted": False,
                    "DeletionProtection": False,
                }
            ]
        },
        {"DBInstanceIdentifier": OLD},
    )


def _connections(cw: Stubber, points: list[tuple[str, float]], db_id: str = OLD) -> None:
    """The DatabaseConnections answer CloudWatch gives for ``db_id`` (1-minute periods)."""
    cw.add_response(
        "get_metric_statistics",
        {
            "Label": "DatabaseConnections",
            "Datapoints": [
                {"Timestamp": datetime.fromisoformat(t), "Maximum": m, "Unit": "Count"}
                for t, m in points
            ],
        },
        {
            "Namespace": "AWS/RDS",
            "MetricName": "DatabaseConnections",
            "Dimensions": [{"Name": "DBInstanceIdentifier", "Value": db_id}],
            "StartTime": ANY,
            "EndTime": ANY,
            "Period": 60,
            "Statistics": ["Maximum"],
        },
    )


def _deleting(stub: Stubber) -> None:
    stub.add_response(
        "describe_db_instances",
        {"DBInstances": [{"DBInstanceIdentifier": OLD, "DBInstanceStatus": "deleting"}]},
        {"DBInstanceIdentifier": OLD},
    )


def _cleanup(step: RdsEncrypt, ctx: MemoryContext) -> Any:
    return step._cleanup(step._run(ctx, ACTION), ctx.client("rds"))


def test_connections_to_the_original_since_the_cut_over_stop_the_cleanup(tmp_path: Path) -> None:
    """A cron job still writes to the renamed original: deleting it would lose those writes."""
    step, ctx, rds, _ = _setup(tmp_path)
    _cut_over(ctx)
    cw = Stubber(ctx.client("cloudwatch", "us-east-1"))
    _original(rds)
    _connections(cw, [("2025-01-01T10:30:00+00:00", 0.0), ("2025-01-01T11:05:00+00:00", 2.0)])
    with rds, cw, pytest.raises(StepFailed) as err:
        _cleanup(step, ctx)  # no delete_db_instance stubbed: a delete would fail the test
    assert "2025-01-01 11:05 UTC: 2" in str(err.value) and "Nothing was deleted" in str(err.value)
    assert ("rds:deleted", OLD) not in ctx.recorded


def test_a_quiet_original_is_deleted_with_its_final_snapshot(tmp_path: Path) -> None:
    step, ctx, rds, _ = _setup(tmp_path)
    _cut_over(ctx)
    cw = Stubber(ctx.client("cloudwatch", "us-east-1"))
    _original(rds)
    _connections(cw, [("2025-01-01T10:30:00+00:00", 0.0)])
    rds.add_response(
        "delete_db_instance",
        {"DBInstance": {"DBInstanceIdentifier": OLD}},
        {
            "DBInstanceIdentifier": OLD,
            "FinalDBSnapshotIdentifier": rs.snapshot_id(RUN, DB, "original-final"),
            "DeleteAutomatedBackups": False,
        },
    )
    _deleting(rds)
    with rds, cw:
        assert isinstance(_cleanup(step, ctx), Wait)  # waits for the delete to finish
    assert ("rds:deleted", OLD) in ctx.recorded


def test_the_check_can_be_turned_off_for_a_known_monitoring_agent(tmp_path: Path) -> None:
    step, ctx, rds, _ = _setup(tmp_path)
    step.params = RdsEncryptParams(kms_key=KEY, original_connections_allowed=1)
    _cut_over(ctx)
    cw = Stubber(ctx.client("cloudwatch", "us-east-1"))
    _original(rds)
    _connections(cw, [("2025-01-01T10:30:00+00:00", 1.0)])  # the agent's one connection
    rds.add_response("delete_db_instance", {"DBInstance": {"DBInstanceIdentifier": OLD}})
    _deleting(rds)
    with rds, cw:
        assert isinstance(_cleanup(step, ctx), Wait)
    assert ("rds:deleted", OLD) in ctx.recorded


def test_no_data_at_all_is_no_evidence_on_aws(tmp_path: Path) -> None:
    """RDS publishes DatabaseConnections every minute, zeros included: an empty answer (a
    wrong period, the metric not there) proves nothing, so on AWS the cleanup stops."""
    step, ctx, _, _ = _setup(tmp_path)
    ctx.aws = AwsSession(region="us-east-1")  # AWS itself, not the sandbox's endpoint
    rds = Stubber(ctx.client("rds"))
    _cut_over(ctx)
    cw = Stubber(ctx.client("cloudwatch", "us-east-1"))
    _original(rds)
    _connections(cw, [])
    with rds, cw, pytest.raises(StepFailed, match="no DatabaseConnections data"):
        _cleanup(step, ctx)
    assert ("rds:deleted", OLD) not in ctx.recorded


def test_the_period_is_one_cloudwatch_answers_for_the_datas_age() -> None:
    """1-minute points for 15 days, then 5-minute, then hourly: any other period returns
    nothing (no error), which would read as "nobody connected"."""
    day = 86400.0
    assert _period_for(3600, 3600) == 60
    assert _period_for(16 * day, 16 * day) % 300 == 0
    assert _period_for(90 * day, 90 * day) % 3600 == 0
    assert 16 * day / _period_for(16 * day, 16 * day) <= 1440


def test_the_cut_over_lists_the_new_resource_id_for_iam_auth_policies(tmp_path: Path) -> None:
    """On AWS the encrypted copy keeps its own DbiResourceId after the rename (moto derives it
    from the name, so this is the step's own record): what remains names both ids."""
    step, ctx, _, _ = _setup(tmp_path)
    residuals: list[tuple[str, str, str | None]] = []
    ctx.record_residual = lambda what, why, fix=None: residuals.append((what, why, fix))  # type: ignore[method-assign]
    action = Action(
        kind="rds.cut_over",
        target=DB,
        summary="cut over",
        region="us-east-1",
        details={"settings": {"iam_auth": True}, "resource_id": "db-OLDRESOURCEID"},
    )
    step._cut_over_done(step._run(ctx, action), OLD, {"DbiResourceId": "db-NEWRESOURCEID"})
    ((what, why, fix),) = residuals
    assert "IAM database authentication" in what and "db-OLDRESOURCEID" in why
    assert fix and "db-NEWRESOURCEID" in fix and "rds-db:connect" in fix
