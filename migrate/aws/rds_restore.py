"""RDS restore points and restores into an isolated target, as the API spells them.

Used by ``dr.restore_test``. Nothing here decides anything: it finds the newest restorable point
of an instance or Aurora cluster (an automated or manual snapshot, or the point in time AWS
reports as ``LatestRestorableTime``), builds the parameters of the restore calls from the settings
``rds_settings`` captures (with the isolation overrides a drill needs), and reads subnet groups.

The Aurora cluster settings here are the subset a drill restores (a cluster with one writer);
``rds.encrypt`` keeps its own, fuller, capture for the rename-swap.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from migrate.aws import rds_settings as rs
from migrate.aws.errors import or_default

MAX_DB_ID = 63

# Settings a drill changes on purpose (isolation) or does not apply (a modify after a restore
# would only lengthen the drill: backups, maintenance, monitoring of a copy torn down in an hour).
ISOLATION_SETTINGS = frozenset(
    {"db_subnet_group", "vpc_security_group_ids", "publicly_accessible", "deletion_protection"}
)
NOT_APPLIED_IN_DRILL = frozenset(
    {
        "backup_retention",
        "backup_window",
        "maintenance_window",
        "max_allocated_storage",
        "monitoring_interval",
        "monitoring_role_arn",
        "performance_insights",
        "performance_insights_retention",
        "tags",  # the copy carries the original's tags plus migrate:dr-test
    }
)
DRILL_COMPARED = tuple(
    k for k in rs.COMPARED if k not in ISOLATION_SETTINGS and k not in NOT_APPLIED_IN_DRILL
)
CLUSTER_COMPARED = (
    "engine",
    "engine_version",
    "engine_mode",
    "port",
    "storage_type",
    "cluster_parameter_group",
    "iam_auth",
    "cloudwatch_logs_exports",
    "copy_tags_to_snapshot",
    "backtrack_window",
)


def naive_utc(moment: datetime | None) -> datetime | None:
    """An AWS timestamp as the state store keeps times (naive UTC)."""
    if moment is None:
        return None
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment


def drill_id(db_id: str, run_hash: str) -> str:
    """``drt-<hash>-<db>``: the restored copy's identifier, deterministic from run id + target."""
    head = f"drt-{run_hash}-"
    name = re.sub(r"[^A-Za-z0-9-]", "-", db_id)
    name = re.sub(r"-{2,}", "-", head + name)
    return name[:MAX_DB_ID].rstrip("-")


# --- settings ----------------------------------------------------------------------------------


def cluster_settings(cluster: Mapping[str, Any]) -> dict[str, Any]:
    """The settings of an Aurora cluster that a drill restore passes explicitly."""
    return {
        "engine": cluster.get("Engine"),
        "engine_version": cluster.get("EngineVersion"),
        "engine_mode": cluster.get("EngineMode") or "provisioned",
        "port": cluster.get("Port"),
        "storage_type": cluster.get("StorageType"),
        "vpc_security_group_ids": sorted(
            g["VpcSecurityGroupId"] for g in cluster.get("VpcSecurityGroups") or ()
        ),
        "db_subnet_group": cluster.get("DBSubnetGroup"),
        "cluster_parameter_group": cluster.get("DBClusterParameterGroup"),
        "deletion_protection": bool(cluster.get("DeletionProtection", False)),
        "iam_auth": bool(cluster.get("IAMDatabaseAuthenticationEnabled", False)),
        "cloudwatch_logs_exports": sorted(cluster.get("EnabledCloudwatchLogsExports") or ()),
        "copy_tags_to_snapshot": bool(cluster.get("CopyTagsToSnapshot", False)),
        "backtrack_window": int(cluster.get("BacktrackWindow") or 0),
        "backup_retention": cluster.get("BackupRetentionPeriod"),
        "encrypted": bool(cluster.get("StorageEncrypted", False)),
        "kms_key_id": cluster.get("KmsKeyId"),
        "tags": rs.user_tags(cluster.get("TagList")),
    }


def writer_settings(cluster: Mapping[str, Any], instances: Mapping[str, Any]) -> dict[str, Any]:
    """The writer member's own settings (class, parameter group), or {} without a writer."""
    for member in cluster.get("DBClusterMembers") or ():
        if member.get("IsClusterWriter"):
            desc = instances.get(str(member["DBInstanceIdentifier"]))
            if desc is not None:
                return rs.own_instance_settings(desc)
    return {}


def isolated(
    settings: Mapping[str, Any], subnet_group: str, security_group_ids: list[str]
) -> dict[str, Any]:
    """The original's settings with a drill's isolation: the drill's own subnet group and
    security groups, never public, never deletion-protected."""
    out = dict(settings)
    out["db_subnet_group"] = subnet_group
    out["vpc_security_group_ids"] = sorted(security_group_ids)
    out["publicly_accessible"] = False
    out["deletion_protection"] = False
    return out


def drill_diffs(
    want: Mapping[str, Any], got: Mapping[str, Any], compared: tuple[str, ...]
) -> dict[str, dict[str, Any]]:
    """``{setting: {want, got}}`` of the compared settings that differ, plus isolation breaches.

    A setting the drill left to AWS (``None`` in ``want``: a group that does not exist in the
    target Region) is not compared."""
    out = {
        k: {"want": want.get(k), "got": got.get(k)}
        for k in compared
        if want.get(k) is not None and want.get(k) != got.get(k)
    }
    for key in ISOLATION_SETTINGS:
        if key in want and want.get(key) != got.get(key):
            out[key] = {"want": want.get(key), "got": got.get(key)}
    return out


# --- restore points ------------------------------------------------------------------------------


def newest_instance_snapshot(rds: Any, db_id: str) -> dict[str, Any] | None:
    """The newest available automated or manual snapshot of an instance, or None."""
    best: dict[str, Any] | None = None
    for page in rds.get_paginator("describe_db_snapshots").paginate(DBInstanceIdentifier=db_id):
        for snap in page.get("DBSnapshots", []):
            if snap.get("Status") != "available" or not snap.get("SnapshotCreateTime"):
                continue
            if best is None or snap["SnapshotCreateTime"] > best["SnapshotCreateTime"]:
                best = dict(snap)
    return best


def newest_cluster_snapshot(rds: Any, cluster_id: str) -> dict[str, Any] | None:
    """The newest available automated or manual snapshot of a DB cluster, or None."""
    best: dict[str, Any] | None = None
    pages = rds.get_paginator("describe_db_cluster_snapshots").paginate(
        DBClusterIdentifier=cluster_id
    )
    for page in pages:
        for snap in page.get("DBClusterSnapshots", []):
            if snap.get("Status") != "available" or not snap.get("SnapshotCreateTime"):
                continue
            if best is None or snap["SnapshotCreateTime"] > best["SnapshotCreateTime"]:
                best = dict(snap)
    return best


def restore_point(
    desc: Mapping[str, Any],
    snapshot: Mapping[str, Any] | None,
    *,
    prefer: str,
    cross_region: bool,
    cluster: bool,
) -> dict[str, Any] | None:
    """The point a drill restores: ``{kind, at, snapshot_id, snapshot_arn, encrypted}``.

    ``prefer`` is ``latest`` (the newer of the point in time and the newest snapshot),
    ``snapshot`` or ``point-in-time``. Point-in-time restores stay in the source's region (a
    cross-Region drill copies a snapshot), and need automated backups (retention > 0).
    """
    latest = naive_utc(desc.get("LatestRestorableTime"))
    pitr_ok = latest is not None and int(desc.get("BackupRetentionPeriod") or 0) > 0
    snap_at = naive_utc(snapshot.get("SnapshotCreateTime")) if snapshot else None
    use_pitr = pitr_ok and not cross_region and prefer != "snapshot"
    if use_pitr and prefer == "latest" and snap_at is not None and latest is not None:
        use_pitr = latest >= snap_at
    if use_pitr and latest is not None:
        return {"kind": "point-in-time", "at": latest.isoformat(timespec="seconds")}
    if snapshot is None or snap_at is None or prefer == "point-in-time":
        return None
    return {
        "kind": f"{snapshot.get('SnapshotType') or 'manual'!s} snapshot",
        "at": snap_at.isoformat(timespec="seconds"),
        "snapshot_id": snapshot.get(
            "DBClusterSnapshotIdentifier" if cluster else "DBSnapshotIdentifier"
        ),
        "snapshot_arn": snapshot.get("DBClusterSnapshotArn" if cluster else "DBSnapshotArn"),
        "encrypted": bool(snapshot.get("StorageEncrypted" if cluster else "Encrypted")),
    }


# --- restore calls -----------------------------------------------------------------------------


def instance_from_snapshot_kwargs(
    want: Mapping[str, Any], new_id: str, snapshot_id: str, tags: Mapping[str, str]
) -> dict[str, Any]:
    """RestoreDBInstanceFromDBSnapshot parameters: every setting, isolated (``want``)."""
    return rs.restore_kwargs(want, new_id, snapshot_id, tags)


def instance_to_point_kwargs(
    want: Mapping[str, Any], source_id: str, new_id: str, at: datetime, tags: Mapping[str, str]
) -> dict[str, Any]:
    """RestoreDBInstanceToPointInTime parameters: the same settings as a snapshot restore, with
    an explicit ``RestoreTime`` so that the restore point (and the RPO) is the one recorded."""
    kwargs = rs.restore_kwargs(want, new_id, "-", tags)
    kwargs.pop("DBInstanceIdentifier")
    kwargs.pop("DBSnapshotIdentifier")
    kwargs.update(
        SourceDBInstanceIdentifier=source_id,
        TargetDBInstanceIdentifier=new_id,
        RestoreTime=at.replace(tzinfo=UTC),
    )
    return kwargs


def cluster_restore_kwargs(
    want: Mapping[str, Any], new_id: str, tags: Mapping[str, str]
) -> dict[str, Any]:
    """The parameters RestoreDBClusterFromSnapshot and RestoreDBClusterToPointInTime share."""
    kwargs: dict[str, Any] = {
        "DBClusterIdentifier": new_id,
        "Port": want["port"],
        "DeletionProtection": False,
        "EnableIAMDatabaseAuthentication": bool(want["iam_auth"]),
        "CopyTagsToSnapshot": bool(want["copy_tags_to_snapshot"]),
        "Tags": rs.tag_list(want.get("tags"), tags),
    }
    optional = {
        "DBSubnetGroupName": want.get("db_subnet_group"),
        "DBClusterParameterGroupName": want.get("cluster_parameter_group"),
        "BacktrackWindow": want.get("backtrack_window") or None,
        "StorageType": want.get("storage_type"),
    }
    return rs.put_given(kwargs, want, optional)


def cluster_from_snapshot_kwargs(
    want: Mapping[str, Any],
    new_id: str,
    snapshot_id: str,
    tags: Mapping[str, str],
    kms_key: str | None = None,
) -> dict[str, Any]:
    """RestoreDBClusterFromSnapshot parameters (engine, version and mode are required there)."""
    kwargs = cluster_restore_kwargs(want, new_id, tags)
    kwargs.update(
        SnapshotIdentifier=snapshot_id,
        Engine=want["engine"],
        EngineVersion=want["engine_version"],
        EngineMode=want.get("engine_mode") or "provisioned",
    )
    if kms_key:
        kwargs["KmsKeyId"] = kms_key
    return kwargs


def cluster_to_point_kwargs(
    want: Mapping[str, Any], source_id: str, new_id: str, at: datetime, tags: Mapping[str, str]
) -> dict[str, Any]:
    """RestoreDBClusterToPointInTime parameters: a full copy (a clone would share storage with
    production and prove less), at the recorded ``RestoreToTime``."""
    kwargs = cluster_restore_kwargs(want, new_id, tags)
    kwargs.update(
        SourceDBClusterIdentifier=source_id,
        RestoreType="full-copy",
        RestoreToTime=at.replace(tzinfo=UTC),
    )
    return kwargs


def writer_kwargs(
    writer: Mapping[str, Any], new_id: str, cluster_id: str, engine: str, tags: Mapping[str, str]
) -> dict[str, Any]:
    """CreateDBInstance parameters of the drill cluster's one writer instance (private)."""
    kwargs: dict[str, Any] = {
        "DBInstanceIdentifier": new_id,
        "DBClusterIdentifier": cluster_id,
        "Engine": engine,
        "DBInstanceClass": writer.get("instance_class") or "db.r6g.large",
        "PubliclyAccessible": False,
        "Tags": rs.tag_list(writer.get("tags"), tags),
    }
    if writer.get("parameter_group"):
        kwargs["DBParameterGroupName"] = writer["parameter_group"]
    return kwargs


# --- subnet groups ---------------------------------------------------------------------------------


def describe_subnet_group(rds: Any, name: str) -> dict[str, Any] | None:
    """A DB subnet group's description, or None."""
    groups: list[dict[str, Any]] = or_default(
        lambda: rds.describe_db_subnet_groups(DBSubnetGroupName=name)["DBSubnetGroups"], []
    )
    return dict(groups[0]) if groups else None
