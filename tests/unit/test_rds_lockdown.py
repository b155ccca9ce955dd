"""Stop-writes enforced: the lockdown group, as AWS answers what moto cannot show.

moto puts a new security group in force at once and deletes a group that a database still uses;
AWS shows the change as ``adding``/``removing`` for a while and refuses the delete with
``DependencyViolation`` until a deleted database's network interfaces are released. So EC2, RDS
and CloudWatch are botocore Stubbers here (the end-to-end path runs on moto in
tests/functional/test_rds_encrypt.py); a stub fails the test on any call it was not given.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from botocore.stub import ANY, Stubber

from migrate.engine.base import Action, Wait
from migrate.errors import StepFailed
from migrate.steps.rds import lockdown as lk
from migrate.steps.rds import phases as ph
from migrate.steps.rds.encrypt import CUT_OVER, STOP_WRITES
from tests.unit.test_rds_cleanup_quiet import _connections
from tests.unit.test_rds_waits import DB, RUN, _setup

APP_GROUP = "sg-0a1b2c3d4e5f60718"
LOCK = "sg-0f0e0d0c0b0a09080"
VPC = "vpc-0123456789abcdef0"
STOP = Action(kind=STOP_WRITES, target=DB, summary="stop", region="us-east-1", details={})


def _instance(groups: list[tuple[str, str]]) -> dict[str, Any]:
    return {
        "DBInstances": [
            {
                "DBInstanceIdentifier": DB,
                "DBInstanceStatus": "available",
                "StorageEncrypted": False,
                "Endpoint": {"Address": f"{DB}.x.rds.amazonaws.com", "Port": 3306},
                "DBSubnetGroup": {"DBSubnetGroupName": "app", "VpcId": VPC},
                "VpcSecurityGroups": [
                    {"VpcSecurityGroupId": g, "Status": status} for g, status in groups
                ],
            }
        ]
    }


def test_the_lockdown_waits_until_aws_has_the_group_in_force(tmp_path: Path) -> None:
    step, ctx, rds, _ = _setup(tmp_path)
    ec2 = Stubber(ctx.client("ec2", "us-east-1"))
    name = lk.group_name(RUN, DB)
    rds.add_response(
        "describe_db_instances", _instance([(APP_GROUP, "active")]), {"DBInstanceIdentifier": DB}
    )
    ec2.add_response(
        "describe_security_groups",
        {"SecurityGroups": []},
        {
            "Filters": [
                {"Name": "group-name", "Values": [name]},
                {"Name": "vpc-id", "Values": [VPC]},
            ]
        },
    )
    ec2.add_response(
        "create_security_group",
        {"GroupId": LOCK},
        {"GroupName": name, "Description": ANY, "VpcId": VPC, "TagSpecifications": ANY},
    )
    rds.add_response(
        "modify_db_instance",
        {"DBInstance": {"DBInstanceIdentifier": DB}},
        {"DBInstanceIdentifier": DB, "VpcSecurityGroupIds": [LOCK], "ApplyImmediately": True},
    )
    # AWS moves the groups over for a while: the phase waits, the downtime is not started.
    rds.add_response(
        "describe_db_instances",
        _instance([(LOCK, "adding"), (APP_GROUP, "removing")]),
        {"DBInstanceIdentifier": DB},
    )
    with rds, ec2:
        wait = step.act(ctx, STOP)
    assert isinstance(wait, Wait) and LOCK in wait.reason
    assert ctx.recorded[(lk.LOCKDOWN, DB)].details["groups"] == [APP_GROUP]
    assert ctx.recorded[(lk.LOCK_GROUP, name)].details["group_id"] == LOCK
    assert ("rds:timing", DB) not in ctx.recorded

    # Still moving at the next poll: no second modify (AWS would refuse it), still waiting.
    rds.add_response(
        "describe_db_instances",
        _instance([(LOCK, "adding"), (APP_GROUP, "removing")]),
        {"DBInstanceIdentifier": DB},
    )
    with rds, ec2:
        assert isinstance(step.act(ctx, STOP), Wait)
    # The resume finds the group in force: no second group, no second modify; downtime starts.
    rds.add_response(
        "describe_db_instances", _instance([(LOCK, "active")]), {"DBInstanceIdentifier": DB}
    )
    with rds, ec2:
        assert step.act(ctx, STOP) is None
    assert "stop_writes" in ctx.recorded[("rds:timing", DB)].details
    # The copy is restored with the original groups, not the lockdown.
    live = {"vpc_security_group_ids": [LOCK], "port": 3306}
    assert lk.unlocked(ctx, DB, live)["vpc_security_group_ids"] == [APP_GROUP]


def test_the_cleanup_waits_while_aws_still_uses_the_group(tmp_path: Path) -> None:
    step, ctx, _, _ = _setup(tmp_path)
    ec2 = Stubber(ctx.client("ec2", "us-east-1"))
    ctx.record_resource(
        lk.LOCKDOWN,
        DB,
        change="modified",
        details={"groups": [APP_GROUP], "lock_group": LOCK, "name": "n"},
    )
    run = step._run(ctx, STOP)
    ec2.add_client_error(
        "delete_security_group",
        service_error_code="DependencyViolation",
        http_status_code=400,
        expected_params={"GroupId": LOCK},
    )
    ec2.add_response("delete_security_group", {}, {"GroupId": LOCK})
    with ec2:
        waiting = lk.drop_group(run, ph.INSTANCE)
        assert isinstance(waiting, Wait) and "still in use" in waiting.reason
        assert lk.drop_group(run, ph.INSTANCE) is None
    assert ctx.recorded[(lk.LOCK_GROUP, "n")].change == "deleted"


def test_the_cut_over_refuses_when_the_original_had_clients_after_the_final_snapshot(
    tmp_path: Path,
) -> None:
    """What a writer put in the original after the final snapshot is in no copy: renaming now
    would lose it without a word, so nothing is renamed."""
    step, ctx, _, clock = _setup(tmp_path)
    clock.now = datetime(2025, 1, 1, 13, 0, 0)
    ctx.record_resource(
        "rds:timing",
        DB,
        change="measured",
        details={"final": {"started_at": "2025-01-01T12:10:00"}},
    )
    cw = Stubber(ctx.client("cloudwatch", "us-east-1"))
    _connections(cw, [("2025-01-01T12:11:00+00:00", 0.0), ("2025-01-01T12:40:00+00:00", 1.0)], DB)
    run = step._run(
        ctx, Action(kind=CUT_OVER, target=DB, summary="cut", region="us-east-1", details={})
    )
    with cw, pytest.raises(StepFailed) as err:
        ph.check_quiet_after_snapshot(run, ph.INSTANCE, DB)
    assert "2025-01-01 12:40 UTC: 1" in str(err.value) and "Nothing was renamed" in str(err.value)


def test_clients_draining_before_the_snapshot_are_not_counted_at_the_cut_over(
    tmp_path: Path,
) -> None:
    """The final snapshot waited for open connections to close (12:10 to 12:25): those are
    expected, and in the snapshot. Only what came after the snapshot was asked for counts."""
    step, ctx, _, clock = _setup(tmp_path)
    clock.now = datetime(2025, 1, 1, 13, 0, 0)
    ctx.record_resource(
        "rds:timing",
        DB,
        change="measured",
        details={
            "final": {
                "started_at": "2025-01-01T12:10:00",
                "snapshot_started_at": "2025-01-01T12:25:30",
            }
        },
    )
    cw = Stubber(ctx.client("cloudwatch", "us-east-1"))
    cw.add_response(
        "get_metric_statistics",
        {"Datapoints": [{"Timestamp": datetime(2025, 1, 1, 12, 30, tzinfo=UTC), "Maximum": 0.0}]},
        {
            "Namespace": "AWS/RDS",
            "MetricName": "DatabaseConnections",
            "Dimensions": [{"Name": "DBInstanceIdentifier", "Value": DB}],
            "StartTime": datetime(2025, 1, 1, 12, 26, 0),  # the first whole minute after it
            "EndTime": ANY,
            "Period": 60,
            "Statistics": ["Maximum"],
        },
    )
    run = step._run(
        ctx, Action(kind=CUT_OVER, target=DB, summary="cut", region="us-east-1", details={})
    )
    with cw:
        ph.check_quiet_after_snapshot(run, ph.INSTANCE, DB)  # passes: quiet since the snapshot
