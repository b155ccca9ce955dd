"""rds.encrypt against the moto server, driven through commands.run / approve / resume / rollback.

moto makes every RDS change at once (no ``creating``/``modifying``/``renaming`` states), so the
whole flow runs through without engine Waits here; the waiting logic is tested with a botocore
Stubber sequence in tests/unit/test_rds_waits.py. moto also renames onto an existing identifier
silently (AWS refuses); the collision test checks that the step refuses before renaming.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from migrate import commands
from migrate.aws import rds_settings as rs
from migrate.aws.session import AwsSession
from migrate.commands import Settings
from migrate.engine.runner import RunOptions
from migrate.errors import EXIT_WAITING, BadInputError
from migrate.steps.rds.run import parse
from migrate.store.models import ActionRow, JournalEntry, Resource
from migrate.util import format_duration
from tests.conftest import PLAYBOOKS, write_playbook

PLAYBOOK = str(PLAYBOOKS / "rds-encrypt.yaml")
STEP = "rds-encrypt"
DB = "orders-mysql"
REPLICA = "orders-mysql-ro"
OPTS = RunOptions(quiet=True)


def _network(aws: Any) -> dict[str, Any]:
    ec2 = aws("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.20.{i}.0/24", AvailabilityZone=f"us-east-1{z}")[
            "Subnet"
        ]["SubnetId"]
        for i, z in ((1, "a"), (2, "b"))
    ]
    sgs = [
        ec2.create_security_group(GroupName=n, Description=n, VpcId=vpc)["GroupId"]
        for n in ("orders-db", "orders-admin")
    ]
    rds = aws("rds")
    rds.create_db_subnet_group(
        DBSubnetGroupName="orders-subnets", DBSubnetGroupDescription="x", SubnetIds=subnets
    )
    rds.create_db_parameter_group(
        DBParameterGroupName="orders-mysql8",
        DBParameterGroupFamily="mysql8.0",
        Description="orders settings",
    )
    rds.create_option_group(
        OptionGroupName="orders-options",
        EngineName="mysql",
        MajorEngineVersion="8.0",
        OptionGroupDescription="orders options",
    )
    return {"sgs": sgs}


def _mysql(aws: Any, db_id: str = DB, *, replica: bool = True) -> dict[str, Any]:
    """An unencrypted MySQL instance with every setting a restore would lose, and a replica."""
    net = _network(aws)
    rds = aws("rds")
    rds.create_db_instance(
        DBInstanceIdentifier=db_id,
        DBInstanceClass="db.m6g.large",
        Engine="mysql",
        EngineVersion="8.0.35",
        AllocatedStorage=200,
        MaxAllocatedStorage=500,
        StorageType="io1",
        Iops=2000,
        MasterUsername="admin",
        MasterUserPassword="Not-A-Real-Secret-42",
        DBParameterGroupName="orders-mysql8",
        OptionGroupName="orders-options",
        DBSubnetGroupName="orders-subnets",
        VpcSecurityGroupIds=net["sgs"],
        BackupRetentionPeriod=14,
        PreferredBackupWindow="03:00-03:30",
        PreferredMaintenanceWindow="sun:05:00-sun:05:30",
        MultiAZ=True,
        PubliclyAccessible=False,
        Port=3307,
        EnableIAMDatabaseAuthentication=True,
        DeletionProtection=True,
        MonitoringInterval=60,
        MonitoringRoleArn="arn:aws:iam::123456789012:role/rds-monitoring",
        EnableCloudwatchLogsExports=["error", "slowquery"],
        AutoMinorVersionUpgrade=False,
        CopyTagsToSnapshot=True,
        CACertificateIdentifier="rds-ca-rsa2048-g1",
        StorageEncrypted=False,
        Tags=[{"Key": "team", "Value": "orders"}, {"Key": "env", "Value": "prod"}],
    )
    if replica:
        rds.create_db_instance_read_replica(
            DBInstanceIdentifier=REPLICA,
            SourceDBInstanceIdentifier=db_id,
            DBInstanceClass="db.t3.medium",
            VpcSecurityGroupIds=net["sgs"][:1],
            Tags=[{"Key": "team", "Value": "orders"}],
        )
    return _describe(aws, db_id)


def _describe(aws: Any, db_id: str) -> dict[str, Any]:
    return dict(aws("rds").describe_db_instances(DBInstanceIdentifier=db_id)["DBInstances"][0])


def _exists(aws: Any, db_id: str) -> bool:
    return any(
        d["DBInstanceIdentifier"] == db_id
        for d in aws("rds").describe_db_instances()["DBInstances"]
    )


def _key_arn(settings: Settings) -> str:
    status = commands.status(settings, _runs(settings)[0])
    return str(status["steps"][0]["outputs"]["key_arn"])


def _runs(settings: Settings) -> list[str]:
    return [r["id"] for r in commands.status(settings)["runs"]]


def _actions(settings: Settings, run_id: str) -> dict[str, dict[str, Any]]:
    step = next(s for s in commands.status(settings, run_id)["steps"] if s["id"] == STEP)
    return {f"{a['kind']}:{a['target']}": a for a in step["actions"]}


def _timing(settings: Settings, run_id: str, db_id: str = DB) -> dict[str, Any]:
    with settings.store().read() as session:
        row = session.scalar(
            select(Resource).where(
                Resource.run_id == run_id,
                Resource.kind == "rds:timing",
                Resource.identifier == db_id,
            )
        )
        assert row is not None
        return dict(row.details)


def _snapshots(aws: Any) -> dict[str, dict[str, Any]]:
    return {
        s["DBSnapshotIdentifier"]: s
        for s in aws("rds").describe_db_snapshots(SnapshotType="manual")["DBSnapshots"]
    }


def _lockdown_groups(aws: Any, run_id: str) -> list[dict[str, Any]]:
    """The run's lockdown groups that exist."""
    return [
        g
        for g in aws("ec2").describe_security_groups()["SecurityGroups"]
        if g["GroupName"].startswith(f"migrate-lockdown-{run_id}-")
    ]


def _to_cut_over(settings: Settings, *extra: str) -> str:
    """Run until the cut-over gate: warm-up, approve stop-writes, snapshot, restore, verify."""
    # No soak between cut-over and cleanup (test_cleanup_waits_out_the_soak has one).
    first = commands.run(settings, PLAYBOOK, params=["cleanup_soak=0s", *extra], options=OPTS)
    assert first.status == "awaiting-approval" and first.exit_code == 3
    acts = _actions(settings, first.run_id)
    assert acts[f"rds.stop_writes:{DB}"]["status"] == "awaiting-approval"
    commands.approve(settings, first.run_id, STEP, target=DB)
    second = commands.resume(settings, first.run_id, options=OPTS)
    # The stop-writes approval does not open the cut-over: it awaits its own.
    assert second.status == "awaiting-approval"
    acts = _actions(settings, first.run_id)
    assert acts[f"rds.verify:{DB}"]["status"] == "done"
    assert acts[f"rds.cut_over:{DB}"]["status"] == "awaiting-approval"
    return first.run_id


def test_full_flow_encrypts_under_the_same_identifier_with_every_setting(
    settings: Settings, aws: Any
) -> None:
    original = _mysql(aws)
    before = rs.instance_settings(original)
    run_id = _to_cut_over(settings)
    key_arn = _key_arn(settings)
    temp = rs.temp_id(DB, run_id)

    # Before the cut-over: the original is live and untouched, the copy waits beside it.
    assert _describe(aws, DB)["StorageEncrypted"] is False
    copy = _describe(aws, temp)
    assert copy["StorageEncrypted"] is True and copy["KmsKeyId"] == key_arn
    snaps = _snapshots(aws)
    for phase in ("warmup", "final"):
        assert snaps[rs.snapshot_id(run_id, DB, phase)]["Encrypted"] is False
        enc = snaps[rs.snapshot_id(run_id, DB, phase, encrypted=True)]
        assert enc["Encrypted"] is True and enc["KmsKeyId"] == key_arn

    commands.approve(settings, run_id, STEP, target=DB)
    third = commands.resume(settings, run_id, options=OPTS)
    assert third.status == "awaiting-approval"  # cleanup awaits its own approval
    assert _actions(settings, run_id)[f"rds.cleanup:{DB}"]["status"] == "awaiting-approval"

    new = _describe(aws, DB)
    assert new["StorageEncrypted"] is True and new["KmsKeyId"] == key_arn
    assert rs.diff_settings(before, rs.instance_settings(new)) == {}
    # Spot-check what users look at, in their words.
    assert new["DBParameterGroups"][0]["DBParameterGroupName"] == "orders-mysql8"
    assert new["OptionGroupMemberships"][0]["OptionGroupName"] == "orders-options"
    assert sorted(g["VpcSecurityGroupId"] for g in new["VpcSecurityGroups"]) == sorted(
        before["vpc_security_group_ids"]
    )
    assert new["BackupRetentionPeriod"] == 14 and new["MultiAZ"] is True
    assert new["DeletionProtection"] is True and new["Endpoint"]["Port"] == 3307
    assert rs.user_tags(new["TagList"]) == {"env": "prod", "team": "orders"}

    renamed = rs.renamed_id(DB, f"{datetime.now(UTC):%Y%m%d}")
    old = _describe(aws, renamed)
    assert old["StorageEncrypted"] is False
    # Untouched until cleanup, but for its security groups: since the stop-writes approval it
    # is in the run's lockdown group alone, which admits nobody (the copy got the originals).
    kept = rs.instance_settings(old)
    (lock_id,) = kept.pop("vpc_security_group_ids")
    assert kept == {k: v for k, v in before.items() if k != "vpc_security_group_ids"}
    (lock,) = aws("ec2").describe_security_groups(GroupIds=[lock_id])["SecurityGroups"]
    assert lock["GroupName"] == f"migrate-lockdown-{run_id}-{DB}" and lock["IpPermissions"] == []
    assert not _exists(aws, temp)
    _, replan = commands.plan(settings, PLAYBOOK)
    assert replan.steps[1].actions == []  # the kept original is not selected again
    assert replan.steps[1].facts["kept_originals"] == [renamed]

    replica = _describe(aws, REPLICA)
    assert replica["StorageEncrypted"] is True and replica["KmsKeyId"] == key_arn
    assert replica["ReadReplicaSourceDBInstanceIdentifier"] == DB
    assert _exists(aws, rs.renamed_id(REPLICA, f"{datetime.now(UTC):%Y%m%d}"))

    timing = _timing(settings, run_id)
    for phase in ("warmup", "stop_writes", "final", "restore", "verify", "cut_over", "replicas"):
        assert phase in timing, phase
    assert timing["downtime_s"] >= 0
    assert timing["final"]["encrypted_snapshot_id"] == rs.snapshot_id(
        run_id, DB, "final", encrypted=True
    )

    with settings.store().read() as session:
        journal_text = " ".join(str(j.params) for j in session.scalars(select(JournalEntry)))
    assert "Not-A-Real-Secret-42" not in journal_text

    # The run report carries the measured phases and the downtime taken (RTO evidence).
    from migrate.reports.render import render_run_report

    report = commands.report(settings, run_id)
    assert report["downtime_taken_s"] == timing["downtime_s"]
    text = render_run_report(report, "md")
    assert "## Measured timings" in text and f"**{DB}**" in text and "stop_writes" in text
    assert "Not-A-Real-Secret-42" not in text


def test_cleanup_waits_out_the_soak_after_the_cut_over(settings: Settings, aws: Any) -> None:
    """A standing cleanup approval does not delete the original seconds after its cut-over:
    the run waits (exit 4) while the soak lasts, with the original kept under its new name,
    and a resume after the soak deletes it."""
    _mysql(aws, replica=False)
    run_id = _to_cut_over(settings, "cleanup_soak=4s")
    commands.approve(settings, run_id, STEP, target=DB, gate="cut-over")
    commands.approve(settings, run_id, STEP, target=DB, gate="cleanup")
    short = RunOptions(quiet=True, max_wait_s=1)
    waited = commands.resume(settings, run_id, options=short)
    renamed = rs.renamed_id(DB, f"{datetime.now(UTC):%Y%m%d}")
    assert waited.exit_code == EXIT_WAITING, waited
    acts = _actions(settings, run_id)
    assert acts[f"rds.cut_over:{DB}"]["status"] == "done"
    assert acts[f"rds.soak:{DB}"]["status"] == "waiting"
    assert acts[f"rds.cleanup:{DB}"]["status"] == "pending"
    assert _exists(aws, renamed) and _describe(aws, DB)["StorageEncrypted"] is True
    aws("rds").modify_db_instance(  # the test database is protected; cleanup would refuse
        DBInstanceIdentifier=renamed, DeletionProtection=False, ApplyImmediately=True
    )
    done = commands.resume(settings, run_id, options=RunOptions(quiet=True, max_wait_s=60))
    errors = [a.get("error") for a in _actions(settings, run_id).values() if a.get("error")]
    assert done.exit_code == 0, errors
    assert not _exists(aws, renamed)
    cut = parse(_timing(settings, run_id)["cut_over"]["finished_at"])  # UTC, naive
    assert datetime.now(UTC).replace(tzinfo=None) - cut >= timedelta(seconds=4)


def test_cleanup_respects_deletion_protection_and_keeps_a_final_snapshot(
    settings: Settings, aws: Any
) -> None:
    # Without a replica: moto 5.2.5 does not move replica links on a rename, so deleting a renamed
    # old replica answers HTTP 500 there (AWS handles it). The replica path is covered above.
    _mysql(aws, replica=False)
    run_id = _to_cut_over(settings)
    commands.approve(settings, run_id, STEP, target=DB)
    assert commands.resume(settings, run_id, options=OPTS).status == "awaiting-approval"
    renamed = rs.renamed_id(DB, f"{datetime.now(UTC):%Y%m%d}")

    # Cleanup respects deletion protection: a clear failure, nothing deleted.
    commands.approve(settings, run_id, STEP, target=DB)
    fourth = commands.resume(settings, run_id, options=OPTS)
    assert fourth.status == "failed"
    error = _actions(settings, run_id)[f"rds.cleanup:{DB}"]["error"]
    assert "deletion protection" in error and renamed in error
    assert _exists(aws, renamed)

    aws("rds").modify_db_instance(
        DBInstanceIdentifier=renamed, DeletionProtection=False, ApplyImmediately=True
    )
    fifth = commands.resume(settings, run_id, options=OPTS)
    assert fifth.status == "done", commands.status(settings, run_id)
    assert not _exists(aws, renamed)
    snaps = _snapshots(aws)
    final = rs.snapshot_id(run_id, DB, "original-final")
    assert final in snaps  # deleted WITH a final snapshot
    assert rs.snapshot_id(run_id, DB, "final") not in snaps  # unencrypted intermediates go
    assert rs.snapshot_id(run_id, DB, "final", encrypted=True) in snaps  # encrypted kept

    with settings.store().read() as session:
        deletes = session.scalars(
            select(JournalEntry).where(
                JournalEntry.run_id == run_id, JournalEntry.operation == "DeleteDBInstance"
            )
        ).all()
    assert {d.target for d in deletes} == {renamed}
    assert _describe(aws, DB)["StorageEncrypted"] is True
    # The lockdown group went with the original it locked.
    assert not _lockdown_groups(aws, run_id)


def test_rollback_after_cut_over_puts_the_original_back(settings: Settings, aws: Any) -> None:
    before = rs.instance_settings(_mysql(aws, replica=False))
    run_id = _to_cut_over(settings, "warm_up=false")
    commands.approve(settings, run_id, STEP, target=DB)
    commands.resume(settings, run_id, options=OPTS)
    assert _describe(aws, DB)["StorageEncrypted"] is True

    commands.rollback(settings, run_id, STEP)
    back = _describe(aws, DB)
    assert back["StorageEncrypted"] is False
    assert rs.instance_settings(back) == before
    # The encrypted instance is kept aside (it may hold writes made after the cut-over).
    assert _describe(aws, rs.temp_id(DB, run_id))["StorageEncrypted"] is True
    assert not _exists(aws, rs.renamed_id(DB, f"{datetime.now(UTC):%Y%m%d}"))


def test_rollback_before_cut_over_deletes_the_copy_and_snapshots(
    settings: Settings, aws: Any
) -> None:
    before = rs.instance_settings(_mysql(aws, replica=False))
    run_id = _to_cut_over(settings)
    assert _lockdown_groups(aws, run_id)  # locked since the stop-writes approval
    commands.rollback(settings, run_id, STEP)
    # The original has its own security groups again, and the lockdown group is gone.
    assert rs.instance_settings(_describe(aws, DB)) == before
    assert not _lockdown_groups(aws, run_id)
    assert not _exists(aws, rs.temp_id(DB, run_id))
    assert not [s for s in _snapshots(aws) if s.startswith(f"migrate-{run_id}")]


def test_the_lockdown_admits_only_the_allowed_paths_and_operator_mode_changes_nothing(
    settings: Settings, aws: Any
) -> None:
    before = rs.instance_settings(_mysql(aws, replica=False))
    # Enforced (the default), with the migrator's host allowed on the database's port.
    _, plan = commands.plan(settings, PLAYBOOK, ["lockdown_allow=[10.0.5.12/32]"])
    stop = next(a for a in plan.steps[1].actions if a.kind == "rds.stop_writes")
    assert all(g in stop.summary for g in before["vpc_security_group_ids"]), stop.summary
    assert "lockdown group" in stop.summary
    assert "admits only 10.0.5.12/32 on its port" in stop.summary
    assert "nothing can connect" not in stop.summary  # the migrator's host still can
    assert any("only 10.0.5.12/32 may still connect" in r for r in stop.risks)
    run_id = _to_cut_over(settings, "warm_up=false", "lockdown_allow=[10.0.5.12/32]")
    (lock,) = _lockdown_groups(aws, run_id)
    assert [g["VpcSecurityGroupId"] for g in _describe(aws, DB)["VpcSecurityGroups"]] == [
        lock["GroupId"]
    ]
    (rule,) = lock["IpPermissions"]
    assert (rule["FromPort"], rule["ToPort"]) == (3307, 3307)
    assert [r["CidrIp"] for r in rule["IpRanges"]] == ["10.0.5.12/32"]
    # A new plan while the database is still locked down by this run is refused: the lockdown
    # would be taken for its own groups and given to the copy.
    with pytest.raises(BadInputError, match="still locked down by an earlier run"):
        commands.plan(settings, PLAYBOOK)
    commands.rollback(settings, run_id, STEP)

    # Operator mode: the plan says it is the approver's word; the groups are never touched.
    _, plan = commands.plan(settings, PLAYBOOK, ["stop_writes=operator"])
    stop = next(a for a in plan.steps[1].actions if a.kind == "rds.stop_writes")
    assert stop.summary.startswith("confirm the application has stopped writing")
    assert any("operator (trusted, not enforced)" in r for r in stop.risks)
    second = _to_cut_over(settings, "warm_up=false", "stop_writes=operator")
    assert not _lockdown_groups(aws, second)
    assert rs.instance_settings(_describe(aws, DB)) == before
    commands.rollback(settings, second, STEP)

    with pytest.raises(BadInputError, match="neither a CIDR"):
        commands.plan(settings, PLAYBOOK, ["lockdown_allow=[office]"])
    with pytest.raises(BadInputError, match="lets everyone in"):
        commands.plan(settings, PLAYBOOK, ["lockdown_allow=[0.0.0.0/0]"])


def test_cut_over_never_renames_onto_an_existing_name(settings: Settings, aws: Any) -> None:
    _mysql(aws, replica=False)
    taken = rs.renamed_id(DB, f"{datetime.now(UTC):%Y%m%d}")
    aws("rds").create_db_instance(
        DBInstanceIdentifier=taken,
        DBInstanceClass="db.t3.micro",
        Engine="postgres",
        AllocatedStorage=20,
        MasterUsername="someone",
        MasterUserPassword="Not-A-Real-Secret-43",
        StorageEncrypted=True,
    )
    _, plan = commands.plan(settings, PLAYBOOK, params=[f"databases=[{DB}]"])
    stop = next(a for a in plan.steps[1].actions if a.kind == "rds.stop_writes")
    assert any(taken in r for r in stop.risks)

    run_id = _to_cut_over(settings, f"databases=[{DB}]", "warm_up=false")
    commands.approve(settings, run_id, STEP, target=DB)
    result = commands.resume(settings, run_id, options=OPTS)
    assert result.status == "failed"
    error = _actions(settings, run_id)[f"rds.cut_over:{DB}"]["error"]
    assert "an instance with that name exists" in error and "Nothing was changed" in error
    # moto would have replaced `taken` silently; the step never asked it to.
    assert _describe(aws, taken)["Engine"] == "postgres"
    assert _describe(aws, DB)["StorageEncrypted"] is False


def test_plan_shows_phases_and_downtime_window(settings: Settings, aws: Any) -> None:
    _mysql(aws)
    _, plan = commands.plan(settings, PLAYBOOK)
    actions = [a for a in plan.steps[1].actions if a.target == DB]
    assert [a.kind for a in actions] == [
        "rds.warm_up",
        "rds.stop_writes",
        "rds.final_snapshot",
        "rds.restore",
        "rds.verify",
        "rds.cut_over",
        "rds.recreate_replicas",
        "rds.soak",
        "rds.cleanup",
    ]
    # The default keeps the renamed original a day after the cut-over, and the plan says so.
    soak = actions[7]
    assert soak.estimate.duration_s == 24 * 3600 and soak.gate is None
    assert "for 1d" in soak.summary or "for 24h" in soak.summary, soak.summary
    gates = {a.kind: (a.gate, a.destructive) for a in actions if a.gate}
    assert gates == {
        "rds.stop_writes": ("stop-writes", True),
        "rds.cut_over": ("cut-over", True),
        "rds.cleanup": ("cleanup", True),
    }
    stop = actions[1]
    est = rs.phase_estimates(200, warm_up=True, replicas=1)
    assert stop.estimate.downtime_s == est["downtime"] > 0
    assert "downtime window" in stop.summary
    assert actions[2].estimate.duration_s == est["final_snapshot"] + est["final_copy"]
    # Each waiting phase names its deadline: three times its estimate, at least 2 h.
    deadline = max(2 * 3600, 3 * actions[2].estimate.duration_s)
    assert f"gives up after {format_duration(deadline)} of waiting" in actions[2].summary
    assert "gives up after 2h 00m of waiting" in actions[1].summary  # the lockdown is quick
    assert any("lazily" in r for r in actions[3].risks)
    assert any(REPLICA in r for r in actions[5].risks)
    # The replica is handled with its primary, never selected on its own.
    assert {a.target for a in plan.steps[1].actions} == {DB}
    facts = plan.steps[1].facts
    assert facts["instances"][DB]["replicas"][REPLICA]["instance_class"] == "db.t3.medium"
    assert _exists(aws, DB) and not [s for s in _snapshots(aws)]


def test_already_encrypted_instances_are_compliant(settings: Settings, aws: Any) -> None:
    commands.run(settings, PLAYBOOK, options=RunOptions(quiet=True, until="kms"))
    key = aws("kms").list_aliases()["Aliases"]
    arn = next(a for a in key if a["AliasName"] == "alias/migrate-ftr")["AliasArn"]
    key_arn = aws("kms").describe_key(KeyId=arn)["KeyMetadata"]["Arn"]
    aws("rds").create_db_instance(
        DBInstanceIdentifier="done-db",
        DBInstanceClass="db.t3.micro",
        Engine="postgres",
        AllocatedStorage=20,
        MasterUsername="pg",
        MasterUserPassword="Not-A-Real-Secret-44",
        StorageEncrypted=True,
        KmsKeyId=key_arn,
    )
    _, plan = commands.plan(settings, PLAYBOOK)
    assert plan.steps[1].actions == []
    assert plan.steps[1].facts["compliant"] == ["done-db"]


def test_bad_input_is_refused_before_anything_changes(
    settings: Settings, aws: Any, tmp_path: Path
) -> None:
    _mysql(aws, replica=False)
    with pytest.raises(BadInputError, match="no RDS instance or DB cluster named 'no-such-db'"):
        commands.plan(settings, PLAYBOOK, params=["databases=[no-such-db]"])

    kms = aws("kms")
    doomed = kms.create_key()["KeyMetadata"]
    kms.schedule_key_deletion(KeyId=doomed["KeyId"], PendingWindowInDays=7)
    book = write_playbook(
        tmp_path / "pending.yaml",
        f"name: pending key\nsteps:\n  - id: rds\n    uses: rds.encrypt\n    with:\n"
        f"      kms_key: {doomed['Arn']}\n",
    )
    with pytest.raises(BadInputError, match="PendingDeletion"):
        commands.plan(settings, str(book))
    missing = write_playbook(
        tmp_path / "missing.yaml",
        "name: missing key\nsteps:\n  - id: rds\n    uses: rds.encrypt\n    with:\n"
        "      kms_key: alias/does-not-exist\n",
    )
    with pytest.raises(BadInputError, match="does not exist"):
        commands.plan(settings, str(missing))
    # A key from kms.ensure_key without rds in its services: RDS could not use it.
    s3_only = write_playbook(
        tmp_path / "s3-only.yaml",
        "name: s3 key\nsteps:\n  - id: kms\n    uses: kms.ensure_key\n    with:\n"
        "      alias: alias/s3-only\n      services: [s3]\n"
        "  - id: rds\n    uses: rds.encrypt\n    with:\n"
        '      kms_key: "{{ steps.kms.key_arn }}"\n',
    )
    commands.run(settings, str(s3_only), options=RunOptions(quiet=True, until="kms"))
    with pytest.raises(BadInputError, match="not RDS"):
        commands.plan(settings, str(s3_only))
    assert _snapshots(aws) == {}


def test_phases_repeated_after_a_crash_create_nothing_twice(
    endpoint: str, aws: Any, tmp_path: Path
) -> None:
    """A resumed run calls act again on an action left `started`; even with its checkpoints lost
    (a crash between the AWS call and the commit), names from run id + target find what exists."""
    from migrate.aws.session import AwsSession
    from migrate.engine.base import Action
    from migrate.steps.rds.encrypt import FINAL_SNAPSHOT, RESTORE, RdsEncrypt, RdsEncryptParams
    from tests.unit.test_rds_waits import MemoryContext

    original = _mysql(aws, replica=False)
    key_arn = aws("kms").create_key()["KeyMetadata"]["Arn"]
    session = AwsSession(region="us-east-1", endpoint_url=endpoint)
    ctx = MemoryContext(
        aws=session, step_id=STEP, regions=["us-east-1"], state_dir=tmp_path, run_id="r-crash-1"
    )
    step = RdsEncrypt(RdsEncryptParams(kms_key=key_arn))
    details = {"settings": rs.instance_settings(original), "allocated_gib": 200}
    for kind in (FINAL_SNAPSHOT, RESTORE):
        action = Action(kind=kind, target=DB, summary=kind, region="us-east-1", details=details)
        assert step.act(ctx, action) is None
        ctx.saved.clear()  # the crash lost the checkpoint
        assert step.act(ctx, action) is None
    assert sorted(_snapshots(aws)) == [
        rs.snapshot_id("r-crash-1", DB, "final"),
        rs.snapshot_id("r-crash-1", DB, "final", encrypted=True),
    ]
    ids = sorted(
        d["DBInstanceIdentifier"] for d in aws("rds").describe_db_instances()["DBInstances"]
    )
    assert ids == sorted([DB, rs.temp_id(DB, "r-crash-1")])


def test_an_alias_names_each_regions_own_key(settings: Settings, aws: Any, tmp_path: Path) -> None:
    """with.kms_key: alias/NAME in a two-region step: each region's databases are encrypted with
    that region's key of the alias (RDS needs a key of the database's region), not refused."""
    arns = {}
    for region in ("us-east-1", "eu-west-1"):
        kms = aws("kms", region)
        key = kms.create_key(Description=f"orders key {region}")["KeyMetadata"]
        kms.create_alias(AliasName="alias/orders", TargetKeyId=key["KeyId"])
        arns[region] = key["Arn"]
        aws("rds", region).create_db_instance(
            DBInstanceIdentifier=f"orders-{region}",
            DBInstanceClass="db.t3.micro",
            Engine="postgres",
            AllocatedStorage=20,
            MasterUsername="app",
            MasterUserPassword="Not-A-Real-Secret-77",
        )
    book = write_playbook(
        tmp_path / "two-regions.yaml",
        "name: two regions\nsteps:\n  - id: rds\n    uses: rds.encrypt\n    with:\n"
        "      names: ['orders-*']\n      kms_key: alias/orders\n"
        "      regions: [us-east-1, eu-west-1]\n",
    )
    _, plan = commands.plan(settings, str(book))
    regions = {a.target: a.region for a in plan.steps[0].actions}
    assert regions == {"orders-us-east-1": "us-east-1", "orders-eu-west-1": "eu-west-1"}
    assert plan.steps[0].facts["target_key"]["arns"] == arns


def test_a_stopped_instance_is_reported_with_how_to_start_it_not_waited_on(
    settings: Settings, aws: Any
) -> None:
    """A stopped instance cannot be renamed at the cut-over (RDS wants it available): it used
    to be waited on for wait_timeout_hours (12 h) and then fail. Now the plan names it with the
    command that starts it, and the step is not done while it is selected."""
    _mysql(aws, replica=False)
    aws("rds").stop_db_instance(DBInstanceIdentifier=DB)
    assert _describe(aws, DB)["DBInstanceStatus"] == "stopped"
    _, plan = commands.plan(settings, PLAYBOOK)
    step = plan.steps[1]
    assert not [a for a in step.actions if a.target == DB]
    (why,) = [w for w in step.facts["warnings"] if w.startswith(f"{DB}:")]
    assert "start-db-instance" in why and DB in why
    result = commands.run(settings, PLAYBOOK, options=RunOptions(quiet=True, yes=True))
    assert result.status == "failed"
    assert "start-db-instance" in commands.status(settings, result.run_id)["steps"][1]["error"]
    assert not _describe(aws, DB)["StorageEncrypted"]


def _add_pending(parsed: dict[str, Any], **kwargs: Any) -> None:
    for db in parsed.get("DBInstances", []):
        if db["DBInstanceIdentifier"] == DB:
            db["PendingModifiedValues"] = {"DBInstanceClass": "db.r6g.large"}


def _add_modifying(parsed: dict[str, Any], **kwargs: Any) -> None:
    _add_pending(parsed)
    for db in parsed.get("DBInstances", []):
        if db["DBInstanceIdentifier"] == DB:
            db["DBInstanceStatus"] = "modifying"


def _answering(hook: Any) -> type[Settings]:
    """Settings whose sessions' DescribeDBInstances answers pass through ``hook``: moto
    applies every change at once, so an ``after-call`` handler adds to moto's real answer
    what RDS shows after a modify without --apply-immediately (or while it applies one)."""

    class _Session(AwsSession):
        def client(self, service: str, region: str | None = None) -> Any:
            client = super().client(service, region)
            if service == "rds" and not getattr(client, "_answer_hooked", False):
                client.meta.events.register("after-call.rds.DescribeDBInstances", hook)
                client._answer_hooked = True
            return client

    class _Settings(Settings):
        def aws(self) -> AwsSession:
            return _Session(region=self.region, endpoint_url=self.endpoint_url)

    return _Settings


_PendingSettings = _answering(_add_pending)


def _accepting_book(tmp_path: Path) -> Path:
    """The RDS playbook with accept_pending_modifications: true."""
    return write_playbook(
        tmp_path / "accept.yaml",
        "name: accept\nsteps:\n  - id: kms\n    uses: kms.ensure_key\n"
        "  - id: rds-encrypt\n    uses: rds.encrypt\n    with:\n"
        '      kms_key: "{{ steps.kms.key_arn }}"\n      accept_pending_modifications: true\n',
    )


def test_pending_modifications_are_refused_unless_accepted_then_named(
    settings: Settings, aws: Any, tmp_path: Path
) -> None:
    """Settings RDS will change at the next maintenance window are not carried by a restore
    (it takes the current ones): the plan refuses, saying what to do; accepted, it names them."""
    _mysql(aws, replica=False)
    pending = _PendingSettings(state=settings.state, endpoint_url=settings.endpoint_url)
    pending.quiet = True
    with pytest.raises(BadInputError) as err:
        commands.plan(pending, PLAYBOOK)
    assert "DBInstanceClass" in str(err.value) and "accept_pending_modifications" in str(err.value)
    accepting = _accepting_book(tmp_path)
    _, plan = commands.plan(pending, str(accepting))
    stop = next(a for a in plan.steps[1].actions if a.target == DB and a.gate == "stop-writes")
    (risk,) = [r for r in stop.risks if "pending" in r]
    assert "DBInstanceClass" in risk and "--apply-immediately" in risk
    _, plain = commands.plan(settings, PLAYBOOK)
    stop = next(a for a in plain.steps[1].actions if a.target == DB and a.gate == "stop-writes")
    assert not [r for r in stop.risks if "pending" in r]


def test_a_modification_being_applied_now_is_waited_for_not_called_pending(
    settings: Settings, aws: Any, tmp_path: Path
) -> None:
    """An --apply-immediately modify in progress (status modifying) is not a change for the
    next maintenance window: accepting it would not help, and the plan says to wait."""
    _mysql(aws, replica=False)
    busy = _answering(_add_modifying)(state=settings.state, endpoint_url=settings.endpoint_url)
    busy.quiet = True
    accepting = _accepting_book(tmp_path)
    for book in (PLAYBOOK, str(accepting)):
        with pytest.raises(BadInputError) as err:
            commands.plan(busy, book)
        message = str(err.value)
        assert "is modifying" in message and "db-instance-available" in message
        assert "maintenance window" not in message


def test_downtime_is_measured_from_the_stop_writes_approval(settings: Settings, aws: Any) -> None:
    """The operator approves stop-writes when the application stopped; the resume that carries
    the phase out may come later (another operator's run, a cron). The downtime counts from
    the approval, not from that resume."""
    _mysql(aws, replica=False)
    first = commands.run(settings, PLAYBOOK, params=["cleanup_soak=0s"], options=OPTS)
    commands.approve(settings, first.run_id, STEP, target=DB)
    earlier = datetime.now(UTC).replace(tzinfo=None, microsecond=0) - timedelta(minutes=20)
    with settings.store().write() as session:  # the approval was given 20 minutes ago
        row = session.scalars(
            select(ActionRow).where(ActionRow.kind == "rds.stop_writes", ActionRow.target == DB)
        ).one()
        row.result = {
            **row.result,
            "approved": {**row.result["approved"], "at": earlier.isoformat()},
        }
    commands.resume(settings, first.run_id, options=OPTS)
    commands.approve(settings, first.run_id, STEP, target=DB, gate="cut-over")
    commands.resume(settings, first.run_id, options=OPTS)
    timing = _timing(settings, first.run_id)
    assert timing["stop_writes"]["at"] == earlier.isoformat()
    assert timing["downtime_s"] >= 20 * 60


TRUST_EC2 = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"Service": "ec2.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
    ],
}
READ_ONLY = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}],
}


def test_iam_database_authentication_is_named_in_the_plan_with_the_resource_id(
    settings: Settings, aws: Any
) -> None:
    """rds-db:connect policies name the DbiResourceId, which the encrypted copy does not keep
    (moto derives the id from the name, so the run's half is tested in
    tests/unit/test_rds_cleanup_quiet.py)."""
    _mysql(aws, replica=False)
    aws("rds").modify_db_instance(
        DBInstanceIdentifier=DB, EnableIAMDatabaseAuthentication=True, ApplyImmediately=True
    )
    was = _describe(aws, DB)["DbiResourceId"]
    # The application's role may connect as `app`: its inline policy names the resource id.
    iam = aws("iam")
    iam.create_role(RoleName="orders-app", AssumeRolePolicyDocument=json.dumps(TRUST_EC2))
    iam.put_role_policy(
        RoleName="orders-app",
        PolicyName="db-connect",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Action": "rds-db:connect",
                        "Resource": f"arn:aws:rds-db:us-east-1:123456789012:dbuser:{was}/app",
                    }
                ],
            }
        ),
    )
    iam.create_policy(PolicyName="unrelated", PolicyDocument=json.dumps(READ_ONLY))
    _, plan = commands.plan(settings, PLAYBOOK, ["cleanup_soak=0s"])
    cut = next(a for a in plan.steps[1].actions if a.kind == "rds.cut_over")
    assert any("rds-db:connect" in r and was in r for r in cut.risks), cut.risks
    named = next(r for r in cut.risks if "the policies naming it" in r)
    assert "role/orders-app inline db-connect" in named and "unrelated" not in named


def test_a_plan_whose_snapshots_would_not_fit_the_quota_is_refused(
    settings: Settings, aws: Any
) -> None:
    """Each instance takes up to five manual snapshots at once; past the account's quota the
    final snapshot would fail after writes stopped. moto has no RDS quota in Service Quotas, so
    the default (100) applies, as the message says."""
    _mysql(aws, replica=False)
    rds = aws("rds")
    for i in range(96):
        rds.create_db_snapshot(DBSnapshotIdentifier=f"keep-{i}", DBInstanceIdentifier=DB)
    with pytest.raises(BadInputError) as err:
        commands.plan(settings, PLAYBOOK)
    text = str(err.value)
    assert "needs up to 5 manual DB snapshots" in text and "96 exist" in text
    assert "quota is 100 (the default" in text and "L-272F1212" in text
    rds.delete_db_snapshot(DBSnapshotIdentifier="keep-0")
    commands.plan(settings, PLAYBOOK)  # 95 + 5 fit


def test_a_proxy_and_a_dms_task_that_do_not_follow_the_swap_are_named(
    settings: Settings, aws: Any
) -> None:
    """An RDS Proxy registers the database itself, not its host name, so after the rename-swap
    it keeps sending clients to the renamed original; a DMS CDC task's position is the
    original's. The plan names both on the stop-writes gate, with what to do."""
    db = _mysql(aws, replica=False)
    rds, dms = aws("rds"), aws("dms")
    subnets = [s["SubnetIdentifier"] for s in db["DBSubnetGroup"]["Subnets"]]
    rds.create_db_proxy(
        DBProxyName="orders-proxy",
        EngineFamily="MYSQL",
        Auth=[
            {"AuthScheme": "SECRETS", "SecretArn": "arn:aws:secretsmanager:us-east-1:1:secret:p"}
        ],
        RoleArn="arn:aws:iam::123456789012:role/proxy",
        VpcSubnetIds=subnets,
    )
    rds.register_db_proxy_targets(DBProxyName="orders-proxy", DBInstanceIdentifiers=[DB])
    source = dms.create_endpoint(
        EndpointIdentifier="orders-src",
        EndpointType="source",
        EngineName="mysql",
        ServerName=db["Endpoint"]["Address"],
        Port=3307,
        Username="dms",
        Password="Not-A-Real-Secret-7",
    )["Endpoint"]["EndpointArn"]
    target = dms.create_endpoint(
        EndpointIdentifier="lake",
        EndpointType="target",
        EngineName="s3",
        S3Settings={"BucketName": "lake", "ServiceAccessRoleArn": "arn:aws:iam::1:role/dms"},
    )["Endpoint"]["EndpointArn"]
    instance = dms.create_replication_instance(
        ReplicationInstanceIdentifier="dms-1", ReplicationInstanceClass="dms.t3.medium"
    )["ReplicationInstance"]["ReplicationInstanceArn"]
    dms.create_replication_task(
        ReplicationTaskIdentifier="orders-to-lake",
        SourceEndpointArn=source,
        TargetEndpointArn=target,
        ReplicationInstanceArn=instance,
        MigrationType="full-load-and-cdc",
        TableMappings='{"rules": []}',
    )
    _, plan = commands.plan(settings, PLAYBOOK)
    stop = next(a for a in plan.steps[1].actions if a.target == DB and a.gate == "stop-writes")
    (proxy,) = [r for r in stop.risks if "RDS Proxy" in r]
    assert "orders-proxy" in proxy and "register-db-proxy-targets" in proxy
    (task,) = [r for r in stop.risks if "DMS task" in r]
    assert "orders-to-lake (source, full-load-and-cdc" in task and "start position" in task
    assert "Not-A-Real-Secret" not in json.dumps(plan.steps[1].facts)
