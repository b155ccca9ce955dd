"""Read helpers of ``rds.encrypt``: describe one instance, cluster or snapshot, or learn it is gone.

Shared by the instance flow (``rds_encrypt``) and the cluster flow (``rds_cluster``). A missing
resource is ``None``, never an exception, because the phases decide what to do next by looking at
what exists (a resumed phase finds what an earlier attempt created).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from migrate.aws.errors import error_code

NOT_FOUND_INSTANCE = ("DBInstanceNotFound", "DBInstanceNotFoundFault")
NOT_FOUND_SNAPSHOT = ("DBSnapshotNotFound", "DBSnapshotNotFoundFault")
NOT_FOUND_CLUSTER = ("DBClusterNotFoundFault", "DBClusterNotFound")
NOT_FOUND_CLUSTER_SNAPSHOT = ("DBClusterSnapshotNotFoundFault", "DBClusterSnapshotNotFound")


def _first(call: Callable[[], list[Any]], missing: tuple[str, ...]) -> dict[str, Any] | None:
    try:
        found = call()
    except Exception as exc:
        if error_code(exc) in missing:
            return None
        raise
    return dict(found[0]) if found else None


def describe_instance(rds: Any, db_id: str) -> dict[str, Any] | None:
    """An instance's description, or None if no instance has that identifier."""
    return _first(
        lambda: rds.describe_db_instances(DBInstanceIdentifier=db_id)["DBInstances"],
        NOT_FOUND_INSTANCE,
    )


def describe_snapshot(rds: Any, snapshot_id: str) -> dict[str, Any] | None:
    """A manual snapshot's description, or None."""
    return _first(
        lambda: rds.describe_db_snapshots(DBSnapshotIdentifier=snapshot_id)["DBSnapshots"],
        NOT_FOUND_SNAPSHOT,
    )


def describe_cluster(rds: Any, cluster_id: str) -> dict[str, Any] | None:
    """A DB cluster's description, or None if no cluster has that identifier."""
    return _first(
        lambda: rds.describe_db_clusters(DBClusterIdentifier=cluster_id)["DBClusters"],
        NOT_FOUND_CLUSTER,
    )


def describe_cluster_snapshot(rds: Any, snapshot_id: str) -> dict[str, Any] | None:
    """A manual DB cluster snapshot's description, or None."""
    return _first(
        lambda: rds.describe_db_cluster_snapshots(DBClusterSnapshotIdentifier=snapshot_id)[
            "DBClusterSnapshots"
        ],
        NOT_FOUND_CLUSTER_SNAPSHOT,
    )


def all_instances(rds: Any) -> dict[str, dict[str, Any]]:
    """Every instance of the region by identifier (one paginated listing)."""
    out: dict[str, dict[str, Any]] = {}
    for page in rds.get_paginator("describe_db_instances").paginate():
        for db in page.get("DBInstances", []):
            out[str(db["DBInstanceIdentifier"])] = dict(db)
    return out


def tag_value(desc: dict[str, Any] | None, key: str) -> str | None:
    """The value of one tag of a described instance, cluster or snapshot."""
    for tag in (desc or {}).get("TagList") or ():
        if tag.get("Key") == key:
            return str(tag.get("Value"))
    return None
