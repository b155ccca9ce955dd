"""The Aurora cluster cut-over (rename-swap) of rds.encrypt, tested with a botocore Stubber.

Why a Stubber: moto 5.2.5 renames a cluster (``ModifyDBCluster NewDBClusterIdentifier``) without
moving its member instances (the renamed cluster lists no members, the instances keep the old
``DBClusterIdentifier``), which AWS does not do; a cut-over against moto would pass or fail for
moto's reasons. So the request sequence is checked here, poll by poll, against what AWS answers:
old members aside, old cluster aside, new cluster onto the name, new members onto the names, each
round issued once and followed by an engine Wait; and a taken target name stops it before the
first rename. Everything else of the cluster flow runs against the moto server in
tests/functional/test_rds_cluster.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from botocore.stub import Stubber

from migrate.aws import rds_settings as rs
from migrate.aws.session import AwsSession
from migrate.engine.base import Action, Wait
from migrate.errors import StepFailed
from migrate.steps.rds import cluster as rc
from migrate.steps.rds.encrypt import RdsEncrypt, RdsEncryptParams
from tests.unit.test_rds_waits import KEY, Clock, MemoryContext

RUN = "r-20250101-cutover"
CID = "orders"
W, R = "orders-1", "orders-2"
DATE = "20250101"
OLD = rs.renamed_id(CID, DATE)
TEMP = rs.temp_id(CID, RUN)
ASIDE = {W: rs.renamed_id(W, DATE), R: rs.renamed_id(R, DATE)}
NEW = {W: rs.temp_id(W, RUN), R: rs.temp_id(R, RUN)}
RUN_TAGS = [
    {"Key": "migrate:run", "Value": RUN},
    {"Key": "migrate:source", "Value": CID},
    {"Key": "team", "Value": "orders"},
]


def _cluster(cid: str, members: list[str], *, encrypted: bool, status: str = "available") -> Any:
    desc: dict[str, Any] = {
        "DBClusterIdentifier": cid,
        "Status": status,
        "Engine": "aurora-mysql",
        "EngineVersion": "8.0.mysql_aurora.3.05.2",
        "EngineMode": "provisioned",
        "Port": 3307,
        "VpcSecurityGroups": [{"VpcSecurityGroupId": "sg-1", "Status": "active"}],
        "DBSubnetGroup": "orders-subnets",
        "DBClusterParameterGroup": "orders-cluster-params",
        "BackupRetentionPeriod": 14,
        "PreferredBackupWindow": "03:00-03:30",
        "PreferredMaintenanceWindow": "sun:05:00-sun:05:30",
        "DeletionProtection": True,
        "StorageEncrypted": encrypted,
        "DBClusterArn": f"arn:aws:rds:us-east-1:123456789012:cluster:{cid}",
        "DBClusterMembers": [
            {"DBInstanceIdentifier": m, "IsClusterWriter": i == 0, "PromotionTier": i}
            for i, m in enumerate(members)
        ],
        "TagList": RUN_TAGS if encrypted else RUN_TAGS[2:],
    }
    if encrypted:
        desc["KmsKeyId"] = KEY
    return desc


def _instance(
    name: str, cluster: str, *, encrypted: bool, role: str, status: str = "available"
) -> Any:
    tier = 0 if role == W else 1
    return {
        "DBInstanceIdentifier": name,
        "DBClusterIdentifier": cluster,
        "DBInstanceStatus": status,
        "DBInstanceClass": "db.r6g.large" if role == W else "db.r6g.xlarge",
        "Engine": "aurora-mysql",
        "StorageEncrypted": encrypted,
        "PromotionTier": tier,
        "AvailabilityZone": "us-east-1a" if role == W else "us-east-1b",
        "DBParameterGroups": [{"DBParameterGroupName": "orders-params"}],
        "AutoMinorVersionUpgrade": False,
        "PubliclyAccessible": False,
        "DBInstanceArn": f"arn:aws:rds:us-east-1:123456789012:db:{name}",
        "TagList": RUN_TAGS if encrypted else [{"Key": "team", "Value": "orders"}],
    }


def _poll(
    stub: Stubber,
    clusters: dict[str, Any | None],
    instances: list[Any],
) -> None:
    """One poll's reads: the original name, the aside name, the temporary name, all instances."""
    for cid in (CID, OLD, TEMP):
        desc = clusters.get(cid)
        if desc is None:
            stub.add_client_error(
                "describe_db_clusters",
                service_error_code="DBClusterNotFoundFault",
                http_status_code=404,
                expected_params={"DBClusterIdentifier": cid},
            )
        else:
            stub.add_response(
                "describe_db_clusters", {"DBClusters": [desc]}, {"DBClusterIdentifier": cid}
            )
    stub.add_response("describe_db_instances", {"DBInstances": instances}, {})


def _rename_instance(stub: Stubber, old: str, new: str) -> None:
    stub.add_response(
        "modify_db_instance",
        {"DBInstance": {"DBInstanceIdentifier": old}},
        {"DBInstanceIdentifier": old, "NewDBInstanceIdentifier": new, "ApplyImmediately": True},
    )


def _rename_cluster(stub: Stubber, old: str, new: str) -> None:
    stub.add_response(
        "modify_db_cluster",
        {"DBCluster": {"DBClusterIdentifier": old}},
        {"DBClusterIdentifier": old, "NewDBClusterIdentifier": new, "ApplyImmediately": True},
    )


def _setup(tmp_path: Path) -> tuple[RdsEncrypt, MemoryContext, Stubber, Clock, Action]:
    aws = AwsSession(region="us-east-1", endpoint_url="http://127.0.0.1:9")
    ctx = MemoryContext(
        aws=aws, step_id="rds", regions=["us-east-1"], state_dir=tmp_path, run_id=RUN
    )
    step = RdsEncrypt(RdsEncryptParams(kms_key=KEY, poll_seconds=30, wait_timeout_hours=2))
    clock = Clock()
    step.clock = clock
    action = Action(
        kind=rc.CLUSTER_CUT_OVER,
        target=CID,
        summary="cut over",
        region="us-east-1",
        details={"members": {W: {"writer": True}, R: {"writer": False}}},
    )
    return step, ctx, Stubber(ctx.client("rds", "us-east-1")), clock, action


ORIGINAL_MEMBERS = [
    _instance(W, CID, encrypted=False, role=W),
    _instance(R, CID, encrypted=False, role=R),
]
NEW_MEMBERS = [
    _instance(NEW[W], TEMP, encrypted=True, role=W),
    _instance(NEW[R], TEMP, encrypted=True, role=R),
]


def test_cut_over_renames_members_and_clusters_in_order_with_a_wait_between_rounds(
    tmp_path: Path,
) -> None:
    step, ctx, stub, clock, action = _setup(tmp_path)
    aside_members = [
        _instance(ASIDE[W], CID, encrypted=False, role=W),
        _instance(ASIDE[R], CID, encrypted=False, role=R),
    ]
    # Poll 1: everything in place; the copy still verifies -> old members aside.
    _poll(
        stub,
        {
            CID: _cluster(CID, [W, R], encrypted=False),
            TEMP: _cluster(TEMP, list(NEW.values()), encrypted=True),
        },
        [*ORIGINAL_MEMBERS, *NEW_MEMBERS],
    )
    _rename_instance(stub, W, ASIDE[W])
    _rename_instance(stub, R, ASIDE[R])
    # Poll 2: one member still `renaming` -> wait, nothing issued.
    _poll(
        stub,
        {
            CID: _cluster(CID, [ASIDE[W], R], encrypted=False),
            TEMP: _cluster(TEMP, list(NEW.values()), encrypted=True),
        },
        [
            aside_members[0],
            _instance(R, CID, encrypted=False, role=R, status="renaming"),
            *NEW_MEMBERS,
        ],
    )
    # Poll 3: members aside -> the original cluster aside.
    _poll(
        stub,
        {
            CID: _cluster(CID, list(ASIDE.values()), encrypted=False),
            TEMP: _cluster(TEMP, list(NEW.values()), encrypted=True),
        },
        [*aside_members, *NEW_MEMBERS],
    )
    _rename_cluster(stub, CID, OLD)
    # Poll 4: the name is free -> the encrypted cluster onto it.
    aside_members_old = [{**m, "DBClusterIdentifier": OLD} for m in aside_members]
    _poll(
        stub,
        {
            OLD: _cluster(OLD, list(ASIDE.values()), encrypted=False),
            TEMP: _cluster(TEMP, list(NEW.values()), encrypted=True),
        },
        [*aside_members_old, *NEW_MEMBERS],
    )
    _rename_cluster(stub, TEMP, CID)
    # Poll 5: the encrypted cluster has the name -> its members onto the original member names.
    new_members_live = [{**m, "DBClusterIdentifier": CID} for m in NEW_MEMBERS]
    _poll(
        stub,
        {
            CID: _cluster(CID, list(NEW.values()), encrypted=True),
            OLD: _cluster(OLD, list(ASIDE.values()), encrypted=False),
        },
        [*aside_members_old, *new_members_live],
    )
    _rename_instance(stub, NEW[W], W)
    _rename_instance(stub, NEW[R], R)
    # Poll 6: everything in place -> done.
    _poll(
        stub,
        {
            CID: _cluster(CID, [W, R], encrypted=True),
            OLD: _cluster(OLD, list(ASIDE.values()), encrypted=False),
        },
        [
            *aside_members_old,
            {**new_members_live[0], "DBInstanceIdentifier": W},
            {**new_members_live[1], "DBInstanceIdentifier": R},
        ],
    )
    # Done: the bookkeeping moves to the retired original and its members; the cluster and the
    # members under the original names end with exactly the original's tags.
    retired = [
        {"Key": "migrate:run", "Value": RUN},
        {"Key": "migrate:source", "Value": CID},
        {"Key": "migrate:role", "Value": "retired-original"},
    ]
    old_cluster = _cluster(OLD, list(ASIDE.values()), encrypted=False)
    stub.add_response(
        "describe_db_clusters", {"DBClusters": [old_cluster]}, {"DBClusterIdentifier": OLD}
    )
    stub.add_response(
        "add_tags_to_resource", {}, {"ResourceName": old_cluster["DBClusterArn"], "Tags": retired}
    )
    for member in aside_members_old:
        stub.add_response(
            "describe_db_instances",
            {"DBInstances": [member]},
            {"DBInstanceIdentifier": member["DBInstanceIdentifier"]},
        )
        stub.add_response(
            "add_tags_to_resource", {}, {"ResourceName": member["DBInstanceArn"], "Tags": retired}
        )
    live = _cluster(CID, [W, R], encrypted=True)
    stub.add_response("describe_db_clusters", {"DBClusters": [live]}, {"DBClusterIdentifier": CID})
    ours = ["migrate:run", "migrate:source"]
    stub.add_response(
        "remove_tags_from_resource", {}, {"ResourceName": live["DBClusterArn"], "TagKeys": ours}
    )
    for name, new_member in ((W, new_members_live[0]), (R, new_members_live[1])):
        member = {**new_member, "DBInstanceIdentifier": name, "DBInstanceArn": f"arn:{name}"}
        stub.add_response(
            "describe_db_instances", {"DBInstances": [member]}, {"DBInstanceIdentifier": name}
        )
        stub.add_response(
            "remove_tags_from_resource", {}, {"ResourceName": f"arn:{name}", "TagKeys": ours}
        )

    reasons = []
    with stub:
        for _ in range(5):
            result = step.act(ctx, action)
            assert isinstance(result, Wait) and result.poll_s == 30
            reasons.append(result.reason)
            clock.now = clock.now.replace(minute=clock.now.minute + 2)
        assert step.act(ctx, action) is None
        stub.assert_no_pending_responses()

    assert "renaming the members of orders aside" in reasons[0]
    assert f"{R} is renaming" in reasons[1]
    assert f"renaming cluster {CID} to {OLD}" in reasons[2]
    assert f"renaming cluster {TEMP} to {CID}" in reasons[3]
    assert "into place" in reasons[4]
    swap = ctx.recorded[("rds:renamed-cluster", CID)].details
    assert swap["renamed_to"] == OLD and swap["copy"] == TEMP
    assert swap["members_renamed_to"] == ASIDE and swap["new_members"] == NEW
    timing = ctx.recorded[("rds:timing", CID)].details["cut_over"]
    assert timing["original_renamed_to"] == OLD and timing["duration_s"] == 600.0


def test_cut_over_never_renames_onto_an_existing_cluster_name(tmp_path: Path) -> None:
    step, ctx, stub, _, action = _setup(tmp_path)
    _poll(
        stub,
        {
            CID: _cluster(CID, [W, R], encrypted=False),
            OLD: _cluster(OLD, [], encrypted=False),  # someone else's cluster holds the name
            TEMP: _cluster(TEMP, list(NEW.values()), encrypted=True),
        },
        [*ORIGINAL_MEMBERS, *NEW_MEMBERS],
    )
    with stub, pytest.raises(StepFailed) as failed:
        step.act(ctx, action)  # the Stubber has no rename queued: one would fail the test
    assert (
        f"cluster {OLD}" in failed.value.message and "Nothing was changed" in failed.value.message
    )
    assert ("rds:renamed-cluster", CID) not in ctx.recorded


def test_cut_over_never_renames_a_member_onto_an_existing_instance_name(tmp_path: Path) -> None:
    step, ctx, stub, _, action = _setup(tmp_path)
    squatter = _instance(ASIDE[R], "other-cluster", encrypted=True, role=R)
    _poll(
        stub,
        {
            CID: _cluster(CID, [W, R], encrypted=False),
            TEMP: _cluster(TEMP, list(NEW.values()), encrypted=True),
        },
        [*ORIGINAL_MEMBERS, *NEW_MEMBERS, squatter],
    )
    with stub, pytest.raises(StepFailed) as failed:
        step.act(ctx, action)
    assert f"instance {ASIDE[R]}" in failed.value.message
    assert "Nothing was changed" in failed.value.message


def test_cut_over_refuses_when_the_copy_no_longer_matches(tmp_path: Path) -> None:
    step, ctx, stub, _, action = _setup(tmp_path)
    drifted = {**_cluster(TEMP, list(NEW.values()), encrypted=True), "Port": 3306}
    _poll(
        stub,
        {CID: _cluster(CID, [W, R], encrypted=False), TEMP: drifted},
        [*ORIGINAL_MEMBERS, *NEW_MEMBERS],
    )
    with stub, pytest.raises(StepFailed) as failed:
        step.act(ctx, action)
    assert "port: want 3307, got 3306" in failed.value.message
    assert "Nothing was changed" in failed.value.message


def test_restore_waits_from_creating_to_available_then_modifies(tmp_path: Path) -> None:
    """The temporary cluster is `creating` for a while (moto makes it available at once)."""
    step, ctx, stub, clock, _ = _setup(tmp_path)
    original = _cluster(CID, [W, R], encrypted=False)
    want = rc.cluster_settings(original)
    # The restore reads the unencrypted final snapshot and encrypts it with KmsKeyId.
    enc = rs.snapshot_id(RUN, CID, "final")
    action = Action(
        kind=rc.CLUSTER_RESTORE,
        target=CID,
        summary="restore",
        region="us-east-1",
        details={"settings": want, "members": {}},
    )
    creating = {**_cluster(TEMP, [], encrypted=True, status="creating"), "BackupRetentionPeriod": 1}
    restored = {**creating, "Status": "available"}

    def original_reads() -> None:
        stub.add_response(
            "describe_db_clusters", {"DBClusters": [original]}, {"DBClusterIdentifier": CID}
        )
        for m in ORIGINAL_MEMBERS:
            stub.add_response(
                "describe_db_instances",
                {"DBInstances": [m]},
                {"DBInstanceIdentifier": m["DBInstanceIdentifier"]},
            )

    # Poll 1: restore with every setting and the key; the cluster is `creating`.
    original_reads()
    stub.add_client_error(
        "describe_db_clusters",
        service_error_code="DBClusterNotFoundFault",
        http_status_code=404,
        expected_params={"DBClusterIdentifier": TEMP},
    )
    stub.add_response(
        "describe_db_cluster_snapshots",
        {"DBClusterSnapshots": [{"DBClusterSnapshotIdentifier": enc, "Status": "available"}]},
        {"DBClusterSnapshotIdentifier": enc},
    )
    stub.add_response(
        "restore_db_cluster_from_snapshot",
        {"DBCluster": {"DBClusterIdentifier": TEMP}},
        rc.restore_cluster_kwargs(
            want,
            TEMP,
            enc,
            KEY,
            {rs.TAG_RUN: RUN, rs.TAG_SOURCE: CID, rs.TAG_ROLE: "encrypted-copy"},
        ),
    )
    stub.add_response(
        "describe_db_clusters", {"DBClusters": [creating]}, {"DBClusterIdentifier": TEMP}
    )
    # Poll 2: available, backup retention 1 (a restore's default) -> modify what it cannot set.
    original_reads()
    stub.add_response(
        "describe_db_clusters", {"DBClusters": [restored]}, {"DBClusterIdentifier": TEMP}
    )
    stub.add_response(
        "modify_db_cluster",
        {"DBCluster": {"DBClusterIdentifier": TEMP}},
        {
            "DBClusterIdentifier": TEMP,
            "ApplyImmediately": True,
            "BackupRetentionPeriod": 14,
            "PreferredBackupWindow": "03:00-03:30",
            "PreferredMaintenanceWindow": "sun:05:00-sun:05:30",
        },
    )
    stub.add_response(
        "describe_db_clusters",
        {"DBClusters": [{**restored, "BackupRetentionPeriod": 14}]},
        {"DBClusterIdentifier": TEMP},
    )
    with stub:
        first = step.act(ctx, action)
        assert isinstance(first, Wait) and f"cluster {TEMP} is creating" in first.reason
        clock.now = clock.now.replace(minute=20)
        assert step.act(ctx, action) is None
        stub.assert_no_pending_responses()
    kwargs = rc.restore_cluster_kwargs(want, TEMP, enc, KEY, {})
    assert (
        kwargs["KmsKeyId"] == KEY
        and kwargs["DBClusterParameterGroupName"] == "orders-cluster-params"
    )
    assert ctx.recorded[("rds:timing", CID)].details["restore"]["duration_s"] == 1200.0


def test_rollback_after_cut_over_swaps_clusters_and_members_back(tmp_path: Path) -> None:
    """Rollback after the cut-over: new members and cluster move to their temporary names (kept:
    they may hold writes), the original cluster and members take their names back. Each rename
    is preceded by a check that the target name is free and followed by a poll until it lands."""
    from migrate.store.models import Resource

    step, ctx, stub, _, _ = _setup(tmp_path)
    ctx.recorded[("rds:db-cluster", TEMP)] = Resource(
        kind="rds:db-cluster",
        identifier=TEMP,
        region="us-east-1",
        details={"source": CID, "role": "encrypted-copy"},
    )
    ctx.recorded[("rds:renamed-cluster", CID)] = Resource(
        kind="rds:renamed-cluster",
        identifier=CID,
        region="us-east-1",
        details={
            "renamed_to": OLD,
            "copy": TEMP,
            "members_renamed_to": ASIDE,
            "new_members": NEW,
        },
    )

    def instance(name: str, desc: Any | None) -> None:
        if desc is None:
            stub.add_client_error(
                "describe_db_instances",
                service_error_code="DBInstanceNotFound",
                http_status_code=404,
                expected_params={"DBInstanceIdentifier": name},
            )
        else:
            stub.add_response(
                "describe_db_instances", {"DBInstances": [desc]}, {"DBInstanceIdentifier": name}
            )

    def cluster(name: str, desc: Any | None) -> None:
        if desc is None:
            stub.add_client_error(
                "describe_db_clusters",
                service_error_code="DBClusterNotFoundFault",
                http_status_code=404,
                expected_params={"DBClusterIdentifier": name},
            )
        else:
            stub.add_response(
                "describe_db_clusters", {"DBClusters": [desc]}, {"DBClusterIdentifier": name}
            )

    enc = {
        W: _instance(W, CID, encrypted=True, role=W),
        R: _instance(R, CID, encrypted=True, role=R),
    }
    old = {
        W: _instance(ASIDE[W], OLD, encrypted=False, role=W),
        R: _instance(ASIDE[R], OLD, encrypted=False, role=R),
    }
    # 0. Rollback first looks whether the recorded cut-over renamed anything (it did: the
    # encrypted cluster has the name).
    cluster(CID, _cluster(CID, list(NEW.values()), encrypted=True))
    # 1. The encrypted members leave the original names.
    for m in (W, R):
        instance(m, enc[m])
        instance(NEW[m], None)
        _rename_instance(stub, m, NEW[m])
        instance(NEW[m], {**enc[m], "DBInstanceIdentifier": NEW[m]})
    # 2. The encrypted cluster leaves the name; 3. the original takes it back.
    cluster(CID, _cluster(CID, list(NEW.values()), encrypted=True))
    cluster(TEMP, None)
    _rename_cluster(stub, CID, TEMP)
    cluster(TEMP, _cluster(TEMP, list(NEW.values()), encrypted=True))
    cluster(OLD, _cluster(OLD, list(ASIDE.values()), encrypted=False))
    cluster(CID, None)
    _rename_cluster(stub, OLD, CID)
    cluster(CID, _cluster(CID, list(ASIDE.values()), encrypted=False))
    # 4. The original members take their names back.
    for m in (W, R):
        instance(m, None)
        instance(ASIDE[m], old[m])
        instance(m, None)
        _rename_instance(stub, ASIDE[m], m)
        instance(m, {**old[m], "DBInstanceIdentifier": m})
    # 5. Back under their names, the original and its members shed the cut-over's bookkeeping.
    retired = [{"Key": "migrate:role", "Value": "retired-original"}, *RUN_TAGS]
    back = {**_cluster(CID, [W, R], encrypted=False), "TagList": retired}
    cluster(CID, back)
    keys = ["migrate:role", "migrate:run", "migrate:source"]
    stub.add_response(
        "remove_tags_from_resource", {}, {"ResourceName": back["DBClusterArn"], "TagKeys": keys}
    )
    for m in (W, R):
        arn = f"arn:aws:rds:us-east-1:123456789012:db:{m}"
        instance(m, {**old[m], "DBInstanceIdentifier": m, "DBInstanceArn": arn, "TagList": retired})
        stub.add_response("remove_tags_from_resource", {}, {"ResourceName": arn, "TagKeys": keys})
    with stub:
        step.rollback(ctx)
        stub.assert_no_pending_responses()
