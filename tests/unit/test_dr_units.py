"""dr.restore_test's pure parts: which restore point, the estimates, the RTO plot."""

from __future__ import annotations

from datetime import UTC, datetime

from migrate.aws.rds_restore import drill_id, restore_point
from migrate.reports.dr import rto_plot
from migrate.steps.dr.estimates import drill_cost, estimate_rto, hourly_price

LATEST = datetime(2026, 12, 2, 11, 55, tzinfo=UTC)
SNAP = {
    "DBSnapshotIdentifier": "rds:orders-2026-12-02-03-00",
    "DBSnapshotArn": "arn:aws:rds:us-east-1:1:snapshot:rds:orders-2026-12-02-03-00",
    "SnapshotCreateTime": datetime(2026, 12, 2, 3, 0, tzinfo=UTC),
    "SnapshotType": "automated",
    "Encrypted": True,
}


def test_latest_prefers_the_point_in_time_when_backups_are_on() -> None:
    desc = {"LatestRestorableTime": LATEST, "BackupRetentionPeriod": 7}
    point = restore_point(desc, SNAP, prefer="latest", cross_region=False, cluster=False)
    assert point == {"kind": "point-in-time", "at": "2026-12-02T11:55:00"}


def test_without_backups_or_across_regions_the_newest_snapshot_is_used() -> None:
    no_backups = {"LatestRestorableTime": LATEST, "BackupRetentionPeriod": 0}
    point = restore_point(no_backups, SNAP, prefer="latest", cross_region=False, cluster=False)
    assert point is not None and point["kind"] == "automated snapshot"
    assert point["at"] == "2026-12-02T03:00:00" and point["encrypted"] is True
    backups = {"LatestRestorableTime": LATEST, "BackupRetentionPeriod": 7}
    far = restore_point(backups, SNAP, prefer="latest", cross_region=True, cluster=False)
    assert far is not None and far["snapshot_arn"] == SNAP["DBSnapshotArn"]


def test_point_in_time_forced_without_backups_is_no_point() -> None:
    desc = {"BackupRetentionPeriod": 0}
    assert (
        restore_point(desc, SNAP, prefer="point-in-time", cross_region=False, cluster=False) is None
    )
    assert restore_point(desc, None, prefer="latest", cross_region=False, cluster=False) is None


def test_drill_ids_are_valid_rds_identifiers() -> None:
    name = drill_id("a" * 80 + "--x", "abc123")
    assert name.startswith("drt-abc123-") and len(name) <= 63 and "--" not in name


def test_estimates_follow_this_databases_measured_drills() -> None:
    history = [
        {"target": "orders", "rto_s": 1800.0, "gib": 100.0},
        {"target": "orders", "rto_s": 2400.0, "gib": 100.0},
        {"target": "other", "rto_s": 60.0, "gib": 10.0},
    ]
    seconds, basis = estimate_rto(
        "orders", 200.0, history, point_in_time=True, cross_region=False, cluster=False
    )
    assert seconds == 4200 and "this database's 2 earlier" in basis  # median 21 s/GiB x 200
    fresh, basis = estimate_rto(
        "new", 50.0, [], point_in_time=False, cross_region=False, cluster=False
    )
    assert fresh == 980 and "published rates" in basis


def test_cost_of_the_temporary_copy() -> None:
    assert hourly_price("db.r6g.2xlarge") == 0.9  # 4 x large
    assert hourly_price("db.t3.micro", multi_az=True) == 0.034
    # 1 h drill + 10 min teardown of a db.m5.large (0.171 /h) and 100 GiB of storage
    assert round(drill_cost("db.m5.large", 100.0, 3600.0, multi_az=False), 3) == 0.218


def test_rto_plot_has_one_point_per_measured_drill_and_marks_misses() -> None:
    drills = [
        {
            "run": "r1",
            "at": "2026-11-01T10:00:00",
            "target": "orders",
            "kind": "instance",
            "rto_s": 1200.0,
            "rto_target_s": 3600.0,
            "rto_met": True,
        },
        {
            "run": "r2",
            "at": "2026-12-01T10:00:00",
            "target": "orders",
            "kind": "instance",
            "rto_s": 5000.0,
            "rto_target_s": 3600.0,
            "rto_met": False,
        },
        {
            "run": "r2",
            "at": "2026-12-01T10:00:00",
            "target": "s3://b",
            "kind": "bucket",
            "rto_s": 2.0,
        },
    ]
    svg = rto_plot(drills)
    assert svg.count('class="rto-point"') == 2
    assert svg.count('fill="white"') == 1  # the miss is hollow
    assert 'class="rto-target"' in svg
