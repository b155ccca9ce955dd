"""dr.restore_test against the moto server, driven through commands.plan / run / resume.

moto restores at once (no ``creating`` state) and publishes no DNS for its endpoints, so the DNS
check is replaced by a resolver the test controls (``DrRestoreTest.resolve``); the waits are
tested with a Stubber sequence in tests/unit/test_dr_waits.py.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from migrate import commands
from migrate.commands import Settings
from migrate.engine.base import Action
from migrate.engine.runner import CONFIRM_NO, CONFIRM_QUIT, CONFIRM_YES, Interrupted, RunOptions
from migrate.errors import BadInputError
from migrate.steps.dr.restore_test import DrRestoreTest
from migrate.store.status import RunStatus
from migrate.util import utcnow
from tests.conftest import PLAYBOOKS

PLAYBOOK = str(PLAYBOOKS / "dr-restore-test.yaml")
DB = "orders-pg"
BUCKET = "orders-archive"
OPTS = RunOptions(quiet=True)


@pytest.fixture(autouse=True)
def _dns_resolves(monkeypatch: pytest.MonkeyPatch) -> None:
    # moto's endpoints (*.rds.amazonaws.com with a fake id) resolve nowhere.
    monkeypatch.setattr(DrRestoreTest, "resolve", staticmethod(lambda host: bool(host)))


def _account(aws: Any) -> dict[str, Any]:
    """A production Postgres with backups in its own subnet group, and a versioned bucket."""
    ec2 = aws("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.30.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.30.{i}.0/24", AvailabilityZone=f"us-east-1{z}")[
            "Subnet"
        ]["SubnetId"]
        for i, z in ((1, "a"), (2, "b"))
    ]
    prod_sg = ec2.create_security_group(GroupName="orders-db", Description="x", VpcId=vpc)[
        "GroupId"
    ]
    rds = aws("rds")
    rds.create_db_subnet_group(
        DBSubnetGroupName="orders-subnets", DBSubnetGroupDescription="x", SubnetIds=subnets
    )
    rds.create_db_parameter_group(
        DBParameterGroupName="orders-pg16", DBParameterGroupFamily="postgres16", Description="x"
    )
    rds.create_db_instance(
        DBInstanceIdentifier=DB,
        DBInstanceClass="db.t3.medium",
        Engine="postgres",
        EngineVersion="16.3",
        AllocatedStorage=50,
        MasterUsername="postgres",
        MasterUserPassword="Not-A-Real-Secret-42",
        DBParameterGroupName="orders-pg16",
        DBSubnetGroupName="orders-subnets",
        VpcSecurityGroupIds=[prod_sg],
        BackupRetentionPeriod=7,
        PubliclyAccessible=True,
        DeletionProtection=True,
        AvailabilityZone="us-east-1a",
        Tags=[{"Key": "team", "Value": "orders"}],
    )
    s3 = aws("s3")
    s3.create_bucket(Bucket=BUCKET)
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    for key in ("a.csv", "b.csv", "c.csv"):
        s3.put_object(Bucket=BUCKET, Key=key, Body=f"{key} v1\n".encode() * 10)
        s3.put_object(Bucket=BUCKET, Key=key, Body=f"{key} v2\n".encode() * 10)
    return {"prod_sg": prod_sg, "vpc": vpc}


def _drill_copies(aws: Any) -> list[str]:
    """Every instance carrying a migrate:dr-test tag (what a drill must not leave running)."""
    out = []
    for db in aws("rds").describe_db_instances()["DBInstances"]:
        if any(t["Key"] == "migrate:dr-test" for t in db.get("TagList", [])):
            out.append(db["DBInstanceIdentifier"])
    return out


def _params(*extra: str) -> list[str]:
    return [f"databases=[{DB}]", f"buckets=[{BUCKET}]", "rto_target=1h", "rpo_target=15m", *extra]


def _evidence(settings: Settings, run_id: str) -> dict[str, dict[str, Any]]:
    data = commands.report(settings, run_id)
    return {r["identifier"]: r["details"] for r in data["resources"] if r["kind"] == "dr:drill"}


def test_drill_restores_in_isolation_measures_and_tears_down(settings: Settings, aws: Any) -> None:
    net = _account(aws)
    seen: dict[str, Any] = {}

    def look_before_teardown(step_id: str, action: Action) -> str:
        # The copy as it stands between check and teardown: what the isolation promises.
        if action.kind == "dr.teardown":
            copies = _drill_copies(aws)
            seen["copies"] = copies
            seen["desc"] = aws("rds").describe_db_instances(DBInstanceIdentifier=copies[0])[
                "DBInstances"
            ][0]
        return CONFIRM_YES

    result = commands.run(
        settings,
        PLAYBOOK,
        _params(),
        options=RunOptions(quiet=True, yes=True, confirm=look_before_teardown),
    )
    assert result.status == RunStatus.DONE, result.messages

    desc = seen["desc"]
    assert desc["DBInstanceIdentifier"].startswith("drt-") and desc[
        "DBInstanceIdentifier"
    ].endswith(DB)
    assert desc["DBSubnetGroup"]["DBSubnetGroupName"] != "orders-subnets"
    assert desc["DBSubnetGroup"]["VpcId"] == net["vpc"]
    assert [g["VpcSecurityGroupId"] for g in desc["VpcSecurityGroups"]] != [net["prod_sg"]]
    assert desc["PubliclyAccessible"] is False
    assert desc["DeletionProtection"] is False
    assert desc["DBParameterGroups"][0]["DBParameterGroupName"] == "orders-pg16"
    assert desc["DBInstanceClass"] == "db.t3.medium"
    tags = {t["Key"]: t["Value"] for t in desc["TagList"]}
    assert tags["migrate:dr-test"] == result.run_id and tags["team"] == "orders"

    # Nothing left: the copy, its subnet group and its security group are gone.
    assert _drill_copies(aws) == []
    groups = aws("rds").describe_db_subnet_groups()["DBSubnetGroups"]
    assert [g["DBSubnetGroupName"] for g in groups] == ["orders-subnets"]
    sgs = aws("ec2").describe_security_groups(
        Filters=[{"Name": "tag-key", "Values": ["migrate:dr-test"]}]
    )["SecurityGroups"]
    assert sgs == []

    evidence = _evidence(settings, result.run_id)
    db = evidence[DB]
    assert db["restore_point"]["kind"] == "point-in-time"
    assert db["rto_s"] is not None and db["rto_met"] is True
    assert db["rpo_s"] is not None and db["rpo_met"] is True
    assert db["settings_differences"] == {}
    assert db["residuals"] == [] and db["torn_down_at"]
    bucket = evidence[f"s3://{BUCKET}"]
    assert bucket["restored"] == 3 and bucket["checksums_matched"] == 3
    assert bucket["torn_down"] is True
    left = aws("s3").list_object_versions(Bucket=BUCKET, Prefix="migrate-dr-test/")
    assert not left.get("Versions") and not left.get("DeleteMarkers")


def test_a_missed_target_is_a_finding_not_a_failure(
    settings: Settings, aws: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    _account(aws)
    # The drill starts two hours after the newest snapshot: RPO 2 h against a 15 min target.
    monkeypatch.setattr(DrRestoreTest, "clock", staticmethod(lambda: utcnow() + timedelta(hours=2)))
    result = commands.run(
        settings,
        PLAYBOOK,
        [f"databases=[{DB}]", "rpo_target=15m", "restore_from=snapshot"],
        options=RunOptions(quiet=True, yes=True),
    )
    assert result.status == RunStatus.DONE, result.messages
    db = _evidence(settings, result.run_id)[DB]
    assert db["restore_point"]["kind"] == "automated snapshot"
    assert db["rpo_s"] >= 7000 and db["rpo_met"] is False
    assert any(f.startswith("RPO missed") for f in db["findings"])
    assert _drill_copies(aws) == []


def test_unreachable_copy_is_a_finding(
    settings: Settings, aws: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    _account(aws)
    # A check command that fails: the copy is not reachable, RTO not met; teardown still runs.
    result = commands.run(
        settings,
        PLAYBOOK,
        _params("check_command=false {host} {port}"),
        options=RunOptions(quiet=True, yes=True),
    )
    assert result.status == RunStatus.DONE, result.messages
    db = _evidence(settings, result.run_id)[DB]
    assert db["reach"]["check"]["ok"] is False and db["rto_s"] is None
    assert "RTO not met: the copy never became reachable" in db["findings"]
    assert _drill_copies(aws) == []


def test_interrupted_between_actions_then_resumed_leaves_nothing_running(
    settings: Settings, aws: Any
) -> None:
    _account(aws)

    def quit_before_teardown(step_id: str, action: Action) -> str:
        return CONFIRM_QUIT if action.kind == "dr.teardown" else CONFIRM_YES

    # Ctrl-C at the prompt before the teardown (as `run --step` does): the copy is running.
    with pytest.raises(Interrupted):
        commands.run(
            settings,
            PLAYBOOK,
            _params(),
            options=RunOptions(quiet=True, yes=True, confirm=quit_before_teardown),
        )
    runs = commands.status(settings)["runs"]
    assert runs[0]["status"] == RunStatus.INTERRUPTED
    assert len(_drill_copies(aws)) == 1  # the copy is running while the drill is interrupted

    resumed = commands.resume(settings, runs[0]["id"], OPTS)
    assert resumed.status == RunStatus.DONE, resumed.messages
    assert _drill_copies(aws) == []
    assert aws("rds").describe_db_instances(DBInstanceIdentifier=DB)["DBInstances"]


def test_rollback_deletes_a_paused_drills_copy(settings: Settings, aws: Any) -> None:
    _account(aws)

    def no_teardown(step_id: str, action: Action) -> str:
        return CONFIRM_NO if action.kind in ("dr.teardown", "dr.network_teardown") else CONFIRM_YES

    first = commands.run(
        settings, PLAYBOOK, _params(), options=RunOptions(quiet=True, yes=True, confirm=no_teardown)
    )
    assert _drill_copies(aws)
    commands.rollback(settings, first.run_id, "dr")
    assert _drill_copies(aws) == []


def test_plan_estimates_rto_and_cost_then_uses_measured_drills(
    settings: Settings, aws: Any
) -> None:
    _account(aws)
    _, plan = commands.plan(settings, PLAYBOOK, _params())
    restore = next(
        a for s in plan.body()["steps"] for a in s["actions"] if a["kind"] == "dr.restore"
    )
    assert restore["estimate"]["cost_usd"] > 0
    assert "published rates" in restore["details"]["rto_estimate_basis"]
    assert restore["estimate"]["duration_s"] > 900  # a real restore takes more than 15 min

    commands.run(settings, PLAYBOOK, _params(), options=RunOptions(quiet=True, yes=True))
    _, again = commands.plan(settings, PLAYBOOK, _params())
    restore = next(
        a for s in again.body()["steps"] for a in s["actions"] if a["kind"] == "dr.restore"
    )
    # The sandbox restores in a second: the estimate now follows the measured drill.
    assert "measured" in restore["details"]["rto_estimate_basis"]
    assert restore["estimate"]["duration_s"] < 900


def test_a_production_subnet_group_is_refused(settings: Settings, aws: Any, tmp_path: Path) -> None:
    net = _account(aws)
    book = tmp_path / "dr.yaml"
    book.write_text(
        "name: dr\nsteps:\n  - id: dr\n    uses: dr.restore_test\n    with:\n"
        f"      names: [{DB}]\n      subnet_group: orders-subnets\n"
        f"      security_group_ids: [{net['prod_sg']}]\n"
    )
    with pytest.raises(BadInputError, match="production subnet group"):
        commands.plan(settings, str(book))


def test_aurora_cluster_drill_restores_cluster_and_writer_then_deletes_both(
    settings: Settings, aws: Any
) -> None:
    _account(aws)
    rds = aws("rds")
    rds.create_db_cluster(
        DBClusterIdentifier="orders-aurora",
        Engine="aurora-mysql",
        EngineVersion="8.0.mysql_aurora.3.05.2",
        MasterUsername="admin",
        MasterUserPassword="Not-A-Real-Secret-42",
        DBSubnetGroupName="orders-subnets",
        BackupRetentionPeriod=3,
        DeletionProtection=True,
    )
    rds.create_db_instance(
        DBInstanceIdentifier="orders-aurora-1",
        DBClusterIdentifier="orders-aurora",
        Engine="aurora-mysql",
        DBInstanceClass="db.r6g.large",
    )
    rds.create_db_cluster_snapshot(
        DBClusterIdentifier="orders-aurora", DBClusterSnapshotIdentifier="orders-aurora-manual"
    )
    seen: dict[str, Any] = {}

    def look(step_id: str, action: Action) -> str:
        if action.kind == "dr.teardown" and action.target == "orders-aurora":
            seen["clusters"] = [
                c
                for c in rds.describe_db_clusters()["DBClusters"]
                if c["DBClusterIdentifier"].startswith("drt-")
            ]
        return CONFIRM_YES

    result = commands.run(
        settings,
        PLAYBOOK,
        ["databases=[orders-aurora]", "restore_from=snapshot"],
        options=RunOptions(quiet=True, yes=True, confirm=look),
    )
    assert result.status == RunStatus.DONE, result.messages
    (copy,) = seen["clusters"]
    assert copy["DBSubnetGroup"] != "orders-subnets"
    assert copy["DeletionProtection"] is False
    assert [m["IsClusterWriter"] for m in copy["DBClusterMembers"]] == [True]
    evidence = _evidence(settings, result.run_id)["orders-aurora"]
    assert evidence["restore_point"]["snapshot_id"] == "orders-aurora-manual"
    assert evidence["kind"] == "cluster" and evidence["rto_met"] is True
    assert not [
        c
        for c in rds.describe_db_clusters()["DBClusters"]
        if c["DBClusterIdentifier"].startswith("drt-")
    ]
    assert _drill_copies(aws) == []


def test_cross_region_drill_copies_the_snapshot_and_deletes_the_copy(
    settings: Settings, aws: Any, tmp_path: Path
) -> None:
    _account(aws)
    aws("rds").create_db_snapshot(DBInstanceIdentifier=DB, DBSnapshotIdentifier="orders-manual")
    ec2 = aws("ec2", "eu-west-1")
    vpc = ec2.create_vpc(CidrBlock="10.40.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.40.{i}.0/24", AvailabilityZone=f"eu-west-1{z}")[
            "Subnet"
        ]["SubnetId"]
        for i, z in ((1, "a"), (2, "b"))
    ]
    dr_sg = ec2.create_security_group(GroupName="dr", Description="dr", VpcId=vpc)["GroupId"]
    aws("rds", "eu-west-1").create_db_subnet_group(
        DBSubnetGroupName="dr-subnets", DBSubnetGroupDescription="dr", SubnetIds=subnets
    )
    book = tmp_path / "dr.yaml"
    book.write_text(
        "name: dr\nsteps:\n  - id: dr\n    uses: dr.restore_test\n    with:\n"
        f"      names: [{DB}]\n      target_region: eu-west-1\n"
        f"      subnet_group: dr-subnets\n      security_group_ids: [{dr_sg}]\n"
    )
    seen: dict[str, Any] = {}

    def look(step_id: str, action: Action) -> str:
        if action.kind == "dr.teardown":
            far = aws("rds", "eu-west-1")
            seen["dbs"] = far.describe_db_instances()["DBInstances"]
            seen["snaps"] = far.describe_db_snapshots()["DBSnapshots"]
        return CONFIRM_YES

    result = commands.run(
        settings, str(book), options=RunOptions(quiet=True, yes=True, confirm=look)
    )
    assert result.status == RunStatus.DONE, result.messages
    (copy,) = seen["dbs"]
    assert copy["DBSubnetGroup"]["DBSubnetGroupName"] == "dr-subnets"
    assert ":eu-west-1:" in copy["DBInstanceArn"]
    copied = copy["DBInstanceIdentifier"].replace(DB, f"{DB}-copy")
    assert copied in [s["DBSnapshotIdentifier"] for s in seen["snaps"]]
    evidence = _evidence(settings, result.run_id)[DB]
    assert evidence["region"] == "eu-west-1"
    assert evidence["restore_point"]["snapshot_id"] == "orders-manual"
    far = aws("rds", "eu-west-1")
    assert far.describe_db_instances()["DBInstances"] == []
    assert far.describe_db_snapshots()["DBSnapshots"] == []
    # The given network is the operator's: the drill leaves it in place.
    assert [g["DBSubnetGroupName"] for g in far.describe_db_subnet_groups()["DBSubnetGroups"]] == [
        "dr-subnets"
    ]
