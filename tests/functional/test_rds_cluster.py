"""rds.encrypt on an Aurora cluster with two instances, against the moto server.

What moto models is tested here end to end through commands.run / approve / resume / rollback:
cluster snapshot, copy with the KMS key, restore of an encrypted cluster with every setting,
re-created member instances, verification, rollback before the cut-over, and cleanup.

The cut-over is NOT run against moto: moto 5.2.5 renames a cluster (``NewDBClusterIdentifier``)
without moving its members (``DBClusterMembers`` of the renamed cluster becomes empty and the
instances keep the old ``DBClusterIdentifier``), which AWS does not do. The rename-swap's request
sequence is therefore tested with a botocore Stubber in tests/unit/test_rds_cluster_cutover.py,
and cleanup is tested here on clusters created directly under their post-cut-over names.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from migrate import commands
from migrate.aws import rds_settings as rs
from migrate.aws.session import AwsSession
from migrate.commands import Settings
from migrate.engine.base import Action
from migrate.engine.runner import RunOptions
from migrate.errors import BadInputError, StepFailed
from migrate.steps.rds import cluster as rc
from migrate.steps.rds.encrypt import RdsEncrypt, RdsEncryptParams
from migrate.store.models import Resource
from tests.conftest import PLAYBOOKS
from tests.unit.test_rds_waits import MemoryContext

PLAYBOOK = str(PLAYBOOKS / "rds-encrypt.yaml")
STEP = "rds-encrypt"
CLUSTER = "orders-aurora"
WRITER = "orders-aurora-1"
READER = "orders-aurora-2"
OPTS = RunOptions(quiet=True)
ENGINE_VERSION = "8.0.mysql_aurora.3.05.2"


def _aurora(aws: Any, *, deletion_protection: bool = True) -> dict[str, Any]:
    """An unencrypted Aurora MySQL cluster with every setting a restore would lose, and a writer
    and a reader that differ in class, tier, AZ, parameter group and tags."""
    ec2 = aws("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.30.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.30.{i}.0/24", AvailabilityZone=f"us-east-1{z}")[
            "Subnet"
        ]["SubnetId"]
        for i, z in ((1, "a"), (2, "b"))
    ]
    sgs = [
        ec2.create_security_group(GroupName=n, Description=n, VpcId=vpc)["GroupId"]
        for n in ("aurora-app", "aurora-admin")
    ]
    rds = aws("rds")
    rds.create_db_subnet_group(
        DBSubnetGroupName="aurora-subnets", DBSubnetGroupDescription="x", SubnetIds=subnets
    )
    rds.create_db_cluster_parameter_group(
        DBClusterParameterGroupName="orders-cluster-params",
        DBParameterGroupFamily="aurora-mysql8.0",
        Description="orders cluster settings",
    )
    for name in ("orders-writer-params", "orders-reader-params"):
        rds.create_db_parameter_group(
            DBParameterGroupName=name, DBParameterGroupFamily="aurora-mysql8.0", Description=name
        )
    rds.create_db_cluster(
        DBClusterIdentifier=CLUSTER,
        Engine="aurora-mysql",
        EngineVersion=ENGINE_VERSION,
        MasterUsername="admin",
        MasterUserPassword="Not-A-Real-Secret-51",
        DBSubnetGroupName="aurora-subnets",
        VpcSecurityGroupIds=sgs,
        DBClusterParameterGroupName="orders-cluster-params",
        Port=3307,
        BackupRetentionPeriod=14,
        PreferredBackupWindow="03:00-03:30",
        PreferredMaintenanceWindow="sun:05:00-sun:05:30",
        DeletionProtection=deletion_protection,
        EnableIAMDatabaseAuthentication=True,
        EnableCloudwatchLogsExports=["error", "slowquery"],
        CopyTagsToSnapshot=True,
        BacktrackWindow=3600,
        ServerlessV2ScalingConfiguration={"MinCapacity": 0.5, "MaxCapacity": 8},
        StorageEncrypted=False,
        Tags=[{"Key": "team", "Value": "orders"}, {"Key": "env", "Value": "prod"}],
    )
    for name, cls, tier, az, group in (
        (WRITER, "db.r6g.large", 0, "us-east-1a", "orders-writer-params"),
        (READER, "db.r6g.xlarge", 2, "us-east-1b", "orders-reader-params"),
    ):
        rds.create_db_instance(
            DBInstanceIdentifier=name,
            DBClusterIdentifier=CLUSTER,
            Engine="aurora-mysql",
            DBInstanceClass=cls,
            DBParameterGroupName=group,
            PromotionTier=tier,
            AvailabilityZone=az,
            MonitoringInterval=60,
            MonitoringRoleArn="arn:aws:iam::123456789012:role/rds-monitoring",
            AutoMinorVersionUpgrade=False,
            PubliclyAccessible=False,
            PreferredMaintenanceWindow="tue:01:00-tue:01:30",
            Tags=[{"Key": "role", "Value": name[-1]}],
        )
    return _cluster(aws, CLUSTER)


def _cluster(aws: Any, cid: str) -> dict[str, Any]:
    return dict(aws("rds").describe_db_clusters(DBClusterIdentifier=cid)["DBClusters"][0])


def _instances(aws: Any) -> dict[str, dict[str, Any]]:
    return {d["DBInstanceIdentifier"]: d for d in aws("rds").describe_db_instances()["DBInstances"]}


def _clusters(aws: Any) -> dict[str, dict[str, Any]]:
    return {c["DBClusterIdentifier"]: c for c in aws("rds").describe_db_clusters()["DBClusters"]}


@pytest.fixture(autouse=True)
def _restore_encrypts_with_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make moto do what AWS does: RestoreDBClusterFromSnapshot with ``KmsKeyId`` encrypts the
    cluster restored from an unencrypted cluster snapshot (RDS API reference, KmsKeyId). moto
    5.2.5 records the key but leaves the cluster unencrypted; its server runs in this process,
    so the backend method is wrapped for the cluster tests (docs/moto-notes.md)."""
    from moto.rds.models import RDSBackend

    original = RDSBackend.restore_db_cluster_from_snapshot

    def restore(self: Any, from_snapshot_id: str, overrides: dict[str, Any]) -> Any:
        if overrides.get("kms_key_id"):
            overrides = {**overrides, "storage_encrypted": True}
        return original(self, from_snapshot_id, overrides)

    monkeypatch.setattr(RDSBackend, "restore_db_cluster_from_snapshot", restore)


def _cluster_snapshots(aws: Any) -> dict[str, dict[str, Any]]:
    snaps = aws("rds").describe_db_cluster_snapshots(SnapshotType="manual")["DBClusterSnapshots"]
    return {s["DBClusterSnapshotIdentifier"]: s for s in snaps}


def _actions(settings: Settings, run_id: str) -> dict[str, dict[str, Any]]:
    step = next(s for s in commands.status(settings, run_id)["steps"] if s["id"] == STEP)
    return {f"{a['kind']}:{a['target']}": a for a in step["actions"]}


def _key_arn(settings: Settings, run_id: str) -> str:
    return str(commands.status(settings, run_id)["steps"][0]["outputs"]["key_arn"])


def _to_cut_over(settings: Settings, *extra: str) -> str:
    first = commands.run(
        settings,
        PLAYBOOK,
        params=[f"databases=[{CLUSTER}]", "cleanup_soak=0s", *extra],
        options=OPTS,
    )
    assert first.status == "awaiting-approval", commands.status(settings, first.run_id)
    acts = _actions(settings, first.run_id)
    assert acts[f"rds.cluster_stop_writes:{CLUSTER}"]["status"] == "awaiting-approval"
    commands.approve(settings, first.run_id, STEP, target=CLUSTER)
    second = commands.resume(settings, first.run_id, options=OPTS)
    assert second.status == "awaiting-approval", commands.status(settings, first.run_id)
    acts = _actions(settings, first.run_id)
    assert acts[f"rds.cluster_verify:{CLUSTER}"]["status"] == "done"
    assert acts[f"rds.cluster_cut_over:{CLUSTER}"]["status"] == "awaiting-approval"
    return first.run_id


def test_plan_shows_cluster_phases_members_and_downtime(settings: Settings, aws: Any) -> None:
    _aurora(aws)
    aws("rds").create_db_cluster(
        DBClusterIdentifier="maz-postgres",
        Engine="postgres",
        DBClusterInstanceClass="db.m6gd.large",
        StorageType="io1",
        Iops=1000,
        AllocatedStorage=100,
        MasterUsername="pg",
        MasterUserPassword="Not-A-Real-Secret-52",
    )
    _, plan = commands.plan(settings, PLAYBOOK)
    step = plan.steps[1]
    actions = [a for a in step.actions if a.target == CLUSTER]
    # The renamed original is kept a day (the default soak) before its cleanup.
    assert [a.kind for a in actions] == [*rc.KINDS[:-1], "rds.soak", rc.CLUSTER_CLEANUP]
    assert actions[7].estimate.duration_s == 24 * 3600 and actions[7].gate is None
    gates = {a.kind: (a.gate, a.destructive) for a in actions if a.gate}
    assert gates == {
        rc.CLUSTER_STOP_WRITES: ("stop-writes", True),
        rc.CLUSTER_CUT_OVER: ("cut-over", True),
        rc.CLUSTER_CLEANUP: ("cleanup", True),
    }
    est = rc.cluster_phase_estimates(100, warm_up=True, members=2)
    stop = actions[1]
    assert stop.estimate.downtime_s == est["downtime"] > 0
    assert "downtime window" in stop.summary and "members" in stop.summary
    assert any("cluster_volume_gib" in r for r in stop.risks)
    assert any("DNS" in r for r in actions[6].risks)
    assert any("deletion protection" in r for r in actions[8].risks)

    facts = step.facts["clusters"][CLUSTER]
    assert facts["encrypted"] is False
    settings_seen = facts["settings"]
    assert settings_seen["cluster_parameter_group"] == "orders-cluster-params"
    assert settings_seen["port"] == 3307 and settings_seen["backup_retention"] == 14
    assert settings_seen["backtrack_window"] == 3600
    assert settings_seen["serverless_v2_scaling"] == {"MaxCapacity": 8.0, "MinCapacity": 0.5}
    assert settings_seen["cloudwatch_logs_exports"] == ["error", "slowquery"]
    assert settings_seen["tags"] == {"env": "prod", "team": "orders"}
    members = facts["members"]
    assert set(members) == {WRITER, READER}
    assert members[WRITER]["writer"] is True and members[READER]["writer"] is False
    assert members[READER]["instance_class"] == "db.r6g.xlarge"
    assert members[READER]["promotion_tier"] == 2
    assert members[READER]["availability_zone"] == "us-east-1b"
    assert members[READER]["parameter_group"] == "orders-reader-params"
    # Member instances are handled with their cluster, never as instances of their own.
    assert WRITER not in step.facts["instances"] and READER not in step.facts["instances"]
    # A Multi-AZ DB cluster is reported, not changed.
    assert "Multi-AZ DB cluster" in step.facts["clusters_not_handled"]["maz-postgres"]
    assert {a.target for a in step.actions} == {CLUSTER}
    assert _cluster_snapshots(aws) == {}


def test_cluster_is_restored_encrypted_with_every_setting_and_its_members(
    settings: Settings, aws: Any
) -> None:
    original = _aurora(aws)
    instances = _instances(aws)
    before = rc.cluster_settings(original)
    before_members = rc.cluster_members(original, instances)
    run_id = _to_cut_over(settings)
    key_arn = _key_arn(settings, run_id)
    temp = rs.temp_id(CLUSTER, run_id)
    names = rc.member_names(before_members, run_id)

    # Snapshots: the warm-up's copied with the key (it measures the re-encryption speed); the
    # final one not copied: the restore encrypts it, so no copy sits inside the downtime window.
    snaps = _cluster_snapshots(aws)
    for phase in ("warmup", "final"):
        assert snaps[rs.snapshot_id(run_id, CLUSTER, phase)]["StorageEncrypted"] is False
    enc = snaps[rs.snapshot_id(run_id, CLUSTER, "warmup", encrypted=True)]
    assert enc["StorageEncrypted"] is True and enc["KmsKeyId"] == key_arn
    assert rs.snapshot_id(run_id, CLUSTER, "final", encrypted=True) not in snaps

    # The temporary cluster: encrypted with the key, every cluster setting equal.
    copy = _cluster(aws, temp)
    assert copy["StorageEncrypted"] is True and copy["KmsKeyId"] == key_arn
    assert rc.diff_cluster(before, rc.cluster_settings(copy)) == {}
    assert copy["DBClusterParameterGroup"] == "orders-cluster-params"
    assert sorted(g["VpcSecurityGroupId"] for g in copy["VpcSecurityGroups"]) == sorted(
        before["vpc_security_group_ids"]
    )
    assert copy["BackupRetentionPeriod"] == 14 and copy["DeletionProtection"] is True
    assert copy["Port"] == 3307 and copy["DBSubnetGroup"] == "aurora-subnets"

    # Its members: the same class, tier, AZ, parameter group, tags and role, encrypted.
    now = _instances(aws)
    copied = rc.cluster_members(copy, now)
    assert set(copied) == set(names.values())
    for mid, want in before_members.items():
        got = copied[names[mid]]
        assert rc.diff_member(want, got) == {}, mid
        assert now[names[mid]]["StorageEncrypted"] is True
        assert now[names[mid]]["KmsKeyId"] == key_arn
    assert copied[names[WRITER]]["writer"] is True
    assert copied[names[READER]]["instance_class"] == "db.r6g.xlarge"

    # The original is live and untouched until the cut-over, but for its security groups: from
    # the stop-writes approval on it is in the run's lockdown group alone, which admits nobody.
    live = rc.cluster_settings(_cluster(aws, CLUSTER))
    (lock_id,) = live.pop("vpc_security_group_ids")
    assert live == {k: v for k, v in before.items() if k != "vpc_security_group_ids"}
    (lock,) = aws("ec2").describe_security_groups(GroupIds=[lock_id])["SecurityGroups"]
    assert lock["GroupName"] == f"migrate-lockdown-{run_id}-{CLUSTER}"
    assert lock["IpPermissions"] == []
    assert rc.cluster_members(_cluster(aws, CLUSTER), now) == before_members

    # Measured phases, and no secret in what the run recorded.
    with settings.store().read() as session:
        timing = next(
            r.details
            for r in session.query(Resource).filter_by(kind="rds:timing", identifier=CLUSTER)
        )
    for phase in ("warmup", "stop_writes", "final", "restore", "members", "verify"):
        assert phase in timing, phase
    report = commands.report(settings, run_id)
    assert "Not-A-Real-Secret-51" not in str(report)


def test_rollback_before_cut_over_deletes_the_temporary_cluster_and_its_instances(
    settings: Settings, aws: Any
) -> None:
    original = _aurora(aws)
    before = rc.cluster_settings(original)
    run_id = _to_cut_over(settings, "warm_up=false")
    temp = rs.temp_id(CLUSTER, run_id)
    assert temp in _clusters(aws)

    commands.rollback(settings, run_id, STEP)
    assert set(_clusters(aws)) == {CLUSTER}
    assert set(_instances(aws)) == {WRITER, READER}
    assert rc.cluster_settings(_cluster(aws, CLUSTER)) == before
    assert not [s for s in _cluster_snapshots(aws) if s.startswith(f"migrate-{run_id}")]


def _ctx(endpoint: str, tmp_path: Path, run_id: str) -> MemoryContext:
    session = AwsSession(region="us-east-1", endpoint_url=endpoint)
    return MemoryContext(
        aws=session, step_id=STEP, regions=["us-east-1"], state_dir=tmp_path, run_id=run_id
    )


def _details(aws: Any) -> dict[str, Any]:
    cluster = _cluster(aws, CLUSTER)
    return {
        "cluster": True,
        "settings": rc.cluster_settings(cluster),
        "members": rc.cluster_members(cluster, _instances(aws)),
    }


def test_phases_repeated_after_a_crash_create_nothing_twice(
    endpoint: str, aws: Any, tmp_path: Path
) -> None:
    """A resumed run calls act again on an action left `started`; even with its checkpoints lost,
    names from run id + target find the snapshot, the cluster and the members already made."""
    _aurora(aws)
    key_arn = aws("kms").create_key()["KeyMetadata"]["Arn"]
    ctx = _ctx(endpoint, tmp_path, "r-crash-2")
    step = RdsEncrypt(RdsEncryptParams(kms_key=key_arn))
    details = _details(aws)
    for kind in (rc.CLUSTER_FINAL_SNAPSHOT, rc.CLUSTER_RESTORE, rc.CLUSTER_MEMBERS):
        action = Action(
            kind=kind, target=CLUSTER, summary=kind, region="us-east-1", details=details
        )
        assert step.act(ctx, action) is None, kind
        ctx.saved.clear()  # the crash lost the checkpoint
        assert step.act(ctx, action) is None, kind
    verify = Action(
        kind=rc.CLUSTER_VERIFY, target=CLUSTER, summary="v", region="us-east-1", details=details
    )
    assert step.act(ctx, verify) is None
    assert sorted(_cluster_snapshots(aws)) == [rs.snapshot_id("r-crash-2", CLUSTER, "final")]
    assert sorted(_clusters(aws)) == sorted([CLUSTER, rs.temp_id(CLUSTER, "r-crash-2")])
    assert sorted(_instances(aws)) == sorted(
        [WRITER, READER, rs.temp_id(WRITER, "r-crash-2"), rs.temp_id(READER, "r-crash-2")]
    )


def test_verify_refuses_a_copy_whose_member_differs(
    endpoint: str, aws: Any, tmp_path: Path
) -> None:
    _aurora(aws, deletion_protection=False)
    key_arn = aws("kms").create_key()["KeyMetadata"]["Arn"]
    ctx = _ctx(endpoint, tmp_path, "r-verify-1")
    step = RdsEncrypt(RdsEncryptParams(kms_key=key_arn))
    details = _details(aws)
    for kind in (rc.CLUSTER_FINAL_SNAPSHOT, rc.CLUSTER_RESTORE, rc.CLUSTER_MEMBERS):
        action = Action(
            kind=kind, target=CLUSTER, summary=kind, region="us-east-1", details=details
        )
        assert step.act(ctx, action) is None
    reader_copy = rs.temp_id(READER, "r-verify-1")
    aws("rds").modify_db_instance(
        DBInstanceIdentifier=reader_copy, DBInstanceClass="db.t3.medium", ApplyImmediately=True
    )
    verify = Action(
        kind=rc.CLUSTER_VERIFY, target=CLUSTER, summary="v", region="us-east-1", details=details
    )
    with pytest.raises(StepFailed) as failed:
        step.act(ctx, verify)
    assert f"member {reader_copy} instance_class" in failed.value.message
    assert (
        "db.r6g.xlarge" in failed.value.message and "original is untouched" in failed.value.message
    )


def _post_cut_over_account(aws: Any, date: str, *, protected: bool) -> dict[str, str]:
    """The account as a cut-over leaves it (built directly, since moto cannot rename clusters):
    the original cluster and members under their -unencrypted-<date> names."""
    old_id = rs.renamed_id(CLUSTER, date)
    rds = aws("rds")
    rds.create_db_cluster(
        DBClusterIdentifier=old_id,
        Engine="aurora-mysql",
        EngineVersion=ENGINE_VERSION,
        MasterUsername="admin",
        MasterUserPassword="Not-A-Real-Secret-53",
        DeletionProtection=protected,
        StorageEncrypted=False,
    )
    aside = {m: rs.renamed_id(m, date) for m in (WRITER, READER)}
    for name in aside.values():
        rds.create_db_instance(
            DBInstanceIdentifier=name,
            DBClusterIdentifier=old_id,
            Engine="aurora-mysql",
            DBInstanceClass="db.r6g.large",
        )
    return {"old_id": old_id, **aside}


def test_cleanup_deletes_old_members_then_the_cluster_with_a_final_snapshot(
    endpoint: str, aws: Any, tmp_path: Path
) -> None:
    date = "20250101"
    names = _post_cut_over_account(aws, date, protected=True)
    old_id = names["old_id"]
    run_id = "r-clean-1"
    rds = aws("rds")
    rds.create_db_cluster_snapshot(
        DBClusterSnapshotIdentifier=rs.snapshot_id(run_id, CLUSTER, "final"),
        DBClusterIdentifier=old_id,
    )
    key_arn = aws("kms").create_key()["KeyMetadata"]["Arn"]
    rds.copy_db_cluster_snapshot(
        SourceDBClusterSnapshotIdentifier=rs.snapshot_id(run_id, CLUSTER, "final"),
        TargetDBClusterSnapshotIdentifier=rs.snapshot_id(run_id, CLUSTER, "final", encrypted=True),
        KmsKeyId=key_arn,
    )
    ctx = _ctx(endpoint, tmp_path, run_id)
    ctx.recorded[("rds:renamed-cluster", CLUSTER)] = Resource(
        kind="rds:renamed-cluster",
        identifier=CLUSTER,
        change="modified",
        details={
            "renamed_to": old_id,
            "copy": rs.temp_id(CLUSTER, run_id),
            "members_renamed_to": {WRITER: names[WRITER], READER: names[READER]},
        },
    )
    for sid, encrypted in (
        (rs.snapshot_id(run_id, CLUSTER, "final"), False),
        (rs.snapshot_id(run_id, CLUSTER, "final", encrypted=True), True),
    ):
        ctx.recorded[("rds:cluster-snapshot", sid)] = Resource(
            kind="rds:cluster-snapshot",
            identifier=sid,
            change="created",
            details={"source": CLUSTER, "encrypted": encrypted},
        )
    action = Action(kind=rc.CLUSTER_CLEANUP, target=CLUSTER, summary="c", region="us-east-1")

    # Deletion protection is respected: a clear failure, nothing deleted.
    with pytest.raises(StepFailed) as failed:
        RdsEncrypt(RdsEncryptParams(kms_key=key_arn)).act(ctx, action)
    assert "deletion protection" in failed.value.message and old_id in failed.value.message
    assert old_id in _clusters(aws) and names[READER] in _instances(aws)

    step = RdsEncrypt(
        RdsEncryptParams(kms_key=key_arn, disable_deletion_protection_on_cleanup=True)
    )
    assert step.act(ctx, action) is None
    assert old_id not in _clusters(aws)
    assert not set(_instances(aws)) & {names[WRITER], names[READER]}
    snaps = _cluster_snapshots(aws)
    final = rs.snapshot_id(run_id, CLUSTER, "original-final")
    assert final in snaps  # deleted WITH a final cluster snapshot
    assert ctx.recorded[("rds:deleted-cluster", old_id)].details["final_snapshot"] == final
    assert rs.snapshot_id(run_id, CLUSTER, "final") not in snaps  # unencrypted intermediate
    assert rs.snapshot_id(run_id, CLUSTER, "final", encrypted=True) in snaps  # kept


def test_cluster_bad_input_and_already_encrypted(settings: Settings, aws: Any) -> None:
    _aurora(aws)
    # An instance already holding a member's temporary name at plan time of a given run cannot be
    # tested before the run id exists; the run's first plan refuses it (see decide). Here: a
    # cluster already encrypted with the key is compliant and gets no action.
    commands.run(settings, PLAYBOOK, options=RunOptions(quiet=True, until="kms"))
    aliases = aws("kms").list_aliases()["Aliases"]
    alias_arn = next(a for a in aliases if a["AliasName"] == "alias/migrate-ftr")["AliasArn"]
    key_arn = aws("kms").describe_key(KeyId=alias_arn)["KeyMetadata"]["Arn"]
    aws("rds").create_db_cluster(
        DBClusterIdentifier="done-aurora",
        Engine="aurora-postgresql",
        MasterUsername="pg",
        MasterUserPassword="Not-A-Real-Secret-54",
        StorageEncrypted=True,
        KmsKeyId=key_arn,
    )
    _, plan = commands.plan(settings, PLAYBOOK, params=["databases=[done-aurora]"])
    assert plan.steps[1].actions == []
    assert plan.steps[1].facts["compliant"] == ["done-aurora"]

    with pytest.raises(
        BadInputError, match="no RDS instance or DB cluster named 'no-such-cluster'"
    ):
        commands.plan(settings, PLAYBOOK, params=["databases=[no-such-cluster]"])
    assert _cluster_snapshots(aws) == {}


def test_a_selected_cluster_the_step_cannot_migrate_keeps_it_from_done(
    settings: Settings, aws: Any
) -> None:
    """An unencrypted Multi-AZ DB cluster is reported, never changed, and the step does not end
    "done" while it is selected (it used to: the plan's warning was all that said so)."""
    aws("rds").create_db_cluster(
        DBClusterIdentifier="maz-postgres",
        Engine="postgres",
        DBClusterInstanceClass="db.m6gd.large",
        StorageType="io1",
        Iops=1000,
        AllocatedStorage=100,
        MasterUsername="pg",
        MasterUserPassword="Not-A-Real-Secret-52",
    )
    options = RunOptions(quiet=True, yes=True)
    result = commands.run(settings, PLAYBOOK, options=options)
    assert result.status == "failed", commands.status(settings, result.run_id)
    step = commands.status(settings, result.run_id)["steps"][1]
    assert "maz-postgres (" in step["error"] and "Multi-AZ DB cluster" in step["error"]
    assert "exclude:" in step["error"]
    cluster = aws("rds").describe_db_clusters(DBClusterIdentifier="maz-postgres")["DBClusters"][0]
    assert cluster["StorageEncrypted"] is False  # never touched
    # Left out on purpose, the rest of the step is done.
    excluded = commands.run(settings, PLAYBOOK, ["exclude_databases=maz-postgres"], options=options)
    assert excluded.status == "done", commands.status(settings, excluded.run_id)
