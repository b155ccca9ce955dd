"""Typed RDS calls: describe one instance, cluster or snapshot (or learn it is gone), and the
create/copy/rename/delete calls the RDS migration makes, each spelled out by its API name.

A missing resource is ``None``, never an exception, because the phases decide what to do next by
looking at what exists (a resumed phase finds what an earlier attempt created). A create whose
resource already exists and a delete whose resource is already gone are done: their first attempt
succeeded and only its answer was lost (a crash, a 500 after the server acted).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from botocore.exceptions import ClientError

from migrate.aws.errors import already_exists, not_found


def _first(call: Callable[[], list[Any]]) -> dict[str, Any] | None:
    try:
        found = call()
    except ClientError as exc:
        if not_found(exc):
            return None
        raise
    return dict(found[0]) if found else None


def _once(call: Callable[[], Any], done: Callable[[BaseException], bool]) -> bool:
    """Make ``call``; False when AWS answered that it was already done (``done(exc)``)."""
    try:
        call()
    except ClientError as exc:
        if done(exc):
            return False
        raise
    return True


def _tags(tags: Mapping[str, str]) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in tags.items()]


# --- describe -------------------------------------------------------------------------------------


def describe_instance(rds: Any, db_id: str) -> dict[str, Any] | None:
    """An instance's description, or None if no instance has that identifier."""
    return _first(lambda: rds.describe_db_instances(DBInstanceIdentifier=db_id)["DBInstances"])


def describe_snapshot(rds: Any, snapshot_id: str) -> dict[str, Any] | None:
    """A manual snapshot's description, or None."""
    return _first(
        lambda: rds.describe_db_snapshots(DBSnapshotIdentifier=snapshot_id)["DBSnapshots"]
    )


def describe_cluster(rds: Any, cluster_id: str) -> dict[str, Any] | None:
    """A DB cluster's description, or None if no cluster has that identifier."""
    return _first(lambda: rds.describe_db_clusters(DBClusterIdentifier=cluster_id)["DBClusters"])


def describe_cluster_snapshot(rds: Any, snapshot_id: str) -> dict[str, Any] | None:
    """A manual DB cluster snapshot's description, or None."""
    return _first(
        lambda: rds.describe_db_cluster_snapshots(DBClusterSnapshotIdentifier=snapshot_id)[
            "DBClusterSnapshots"
        ]
    )


def all_instances(rds: Any) -> dict[str, dict[str, Any]]:
    """Every instance of the region by identifier (one paginated listing)."""
    out: dict[str, dict[str, Any]] = {}
    for page in rds.get_paginator("describe_db_instances").paginate():
        for db in page.get("DBInstances", []):
            out[str(db["DBInstanceIdentifier"])] = dict(db)
    return out


def tag_value(desc: Mapping[str, Any] | None, key: str) -> str | None:
    """The value of one tag of a described instance, cluster or snapshot."""
    for tag in (desc or {}).get("TagList") or ():
        if tag.get("Key") == key:
            return str(tag.get("Value"))
    return None


def migrate_tag_keys(desc: Mapping[str, Any] | None) -> list[str]:
    """The ``migrate:*`` (bookkeeping) tag keys of a described instance, cluster or snapshot."""
    return [
        str(t["Key"])
        for t in (desc or {}).get("TagList") or ()
        if str(t.get("Key", "")).startswith("migrate:")
    ]


# --- snapshots ------------------------------------------------------------------------------------


def create_db_snapshot(rds: Any, snapshot_id: str, db_id: str, tags: Mapping[str, str]) -> bool:
    """CreateDBSnapshot of instance ``db_id``; False if the snapshot already existed."""
    return _once(
        lambda: rds.create_db_snapshot(
            DBSnapshotIdentifier=snapshot_id, DBInstanceIdentifier=db_id, Tags=_tags(tags)
        ),
        already_exists,
    )


def create_db_cluster_snapshot(
    rds: Any, snapshot_id: str, cluster_id: str, tags: Mapping[str, str]
) -> bool:
    """CreateDBClusterSnapshot of ``cluster_id``; False if the snapshot already existed."""
    return _once(
        lambda: rds.create_db_cluster_snapshot(
            DBClusterSnapshotIdentifier=snapshot_id,
            DBClusterIdentifier=cluster_id,
            Tags=_tags(tags),
        ),
        already_exists,
    )


def copy_db_snapshot(rds: Any, source_id: str, target_id: str, kms_key_id: str) -> bool:
    """CopyDBSnapshot encrypting with ``kms_key_id`` (tags copied); False if the copy existed."""
    return _once(
        lambda: rds.copy_db_snapshot(
            SourceDBSnapshotIdentifier=source_id,
            TargetDBSnapshotIdentifier=target_id,
            KmsKeyId=kms_key_id,
            CopyTags=True,
        ),
        already_exists,
    )


def copy_db_cluster_snapshot(rds: Any, source_id: str, target_id: str, kms_key_id: str) -> bool:
    """CopyDBClusterSnapshot encrypting with ``kms_key_id`` (tags copied); False if it existed."""
    return _once(
        lambda: rds.copy_db_cluster_snapshot(
            SourceDBClusterSnapshotIdentifier=source_id,
            TargetDBClusterSnapshotIdentifier=target_id,
            KmsKeyId=kms_key_id,
            CopyTags=True,
        ),
        already_exists,
    )


def delete_db_snapshot(rds: Any, snapshot_id: str) -> bool:
    """DeleteDBSnapshot; False if it was already gone."""
    return _once(lambda: rds.delete_db_snapshot(DBSnapshotIdentifier=snapshot_id), not_found)


def delete_db_cluster_snapshot(rds: Any, snapshot_id: str) -> bool:
    """DeleteDBClusterSnapshot; False if it was already gone."""
    return _once(
        lambda: rds.delete_db_cluster_snapshot(DBClusterSnapshotIdentifier=snapshot_id),
        not_found,
    )


# --- renames and protection -----------------------------------------------------------------------


def rename_db_instance(rds: Any, db_id: str, new_id: str) -> None:
    """ModifyDBInstance with NewDBInstanceIdentifier, now (AWS refuses an existing new name)."""
    rds.modify_db_instance(
        DBInstanceIdentifier=db_id, NewDBInstanceIdentifier=new_id, ApplyImmediately=True
    )


def rename_db_cluster(rds: Any, cluster_id: str, new_id: str) -> None:
    """ModifyDBCluster with NewDBClusterIdentifier, now (AWS refuses an existing new name)."""
    rds.modify_db_cluster(
        DBClusterIdentifier=cluster_id, NewDBClusterIdentifier=new_id, ApplyImmediately=True
    )


def unprotect_db_instance(rds: Any, db_id: str) -> None:
    """ModifyDBInstance DeletionProtection=False, now (so that a delete is accepted)."""
    rds.modify_db_instance(
        DBInstanceIdentifier=db_id, DeletionProtection=False, ApplyImmediately=True
    )


def unprotect_db_cluster(rds: Any, cluster_id: str) -> None:
    """ModifyDBCluster DeletionProtection=False, now (so that a delete is accepted)."""
    rds.modify_db_cluster(
        DBClusterIdentifier=cluster_id, DeletionProtection=False, ApplyImmediately=True
    )


# --- deletes ----------------------------------------------------------------------------------------


def delete_db_instance(
    rds: Any, db_id: str, *, final_snapshot_id: str | None = None, member: bool = False
) -> bool:
    """DeleteDBInstance: with a final snapshot when ``final_snapshot_id`` is given, without one
    otherwise (``member``: a cluster member, for which AWS takes neither parameter). False if the
    instance was already gone."""
    kwargs: dict[str, Any] = {"DBInstanceIdentifier": db_id}
    if final_snapshot_id:
        kwargs.update(FinalDBSnapshotIdentifier=final_snapshot_id, DeleteAutomatedBackups=False)
    elif not member:
        kwargs["SkipFinalSnapshot"] = True
    return _once(lambda: rds.delete_db_instance(**kwargs), not_found)


def delete_db_cluster(rds: Any, cluster_id: str, *, final_snapshot_id: str | None) -> bool:
    """DeleteDBCluster with a final snapshot (``None``: skip it, for a copy that never took a
    write). False if the cluster was already gone."""
    kwargs: dict[str, Any] = {"DBClusterIdentifier": cluster_id}
    if final_snapshot_id:
        kwargs["FinalDBSnapshotIdentifier"] = final_snapshot_id
    else:
        kwargs["SkipFinalSnapshot"] = True
    return _once(lambda: rds.delete_db_cluster(**kwargs), not_found)


# --- tags -------------------------------------------------------------------------------------------


def add_tags_to_resource(rds: Any, arn: str, tags: Mapping[str, str]) -> None:
    """AddTagsToResource on an instance, cluster or snapshot ARN (existing keys are replaced)."""
    if tags:
        rds.add_tags_to_resource(ResourceName=arn, Tags=_tags(tags))


def remove_tags_from_resource(rds: Any, arn: str, keys: list[str]) -> None:
    """RemoveTagsFromResource on an instance, cluster or snapshot ARN."""
    if keys:
        rds.remove_tags_from_resource(ResourceName=arn, TagKeys=list(keys))
