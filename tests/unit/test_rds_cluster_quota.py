"""The plan refuses clusters whose snapshots would not fit the account's quota.

moto has no DescribeAccountAttributes, so RDS's answer (quota and count, ``ManualClusterSnapshots``)
is a botocore Stubber here; the stub fails the test on any call it was not given.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from botocore.stub import Stubber

from migrate.errors import BadInputError
from tests.unit.test_rds_waits import _setup

CLUSTERS = {
    "orders-aurora": {"region": "us-east-1", "encrypted": False},
    "done-aurora": {"region": "us-east-1", "encrypted": True},  # needs no snapshot
}


def _quota(stub: Stubber, used: int, max_: int = 100) -> None:
    stub.add_response(
        "describe_account_attributes",
        {
            "AccountQuotas": [
                {"AccountQuotaName": "ManualSnapshots", "Used": 3, "Max": 100},
                {"AccountQuotaName": "ManualClusterSnapshots", "Used": used, "Max": max_},
            ]
        },
        {},
    )


def test_four_snapshots_per_cluster_must_fit_what_rds_says_is_left(tmp_path: Path) -> None:
    step, ctx, rds, _ = _setup(tmp_path)
    _quota(rds, used=97)
    with rds, pytest.raises(BadInputError) as err:
        step._check_cluster_snapshot_quota(ctx, CLUSTERS)
    text = str(err.value)
    assert "needs up to 4 manual DB cluster snapshots at once and 97 exist" in text
    assert "the quota is 100 (RDS DescribeAccountAttributes)" in text
    _quota(rds, used=96)
    with rds:
        step._check_cluster_snapshot_quota(ctx, CLUSTERS)  # 96 + 4 fit


def test_without_an_answer_the_default_and_a_count_decide(tmp_path: Path) -> None:
    step, ctx, rds, _ = _setup(tmp_path)
    rds.add_client_error("describe_account_attributes", service_error_code="AccessDenied")
    rds.add_response(
        "describe_db_cluster_snapshots",
        {"DBClusterSnapshots": [{"DBClusterSnapshotIdentifier": f"s{i}"} for i in range(97)]},
        {"SnapshotType": "manual"},
    )
    with rds, pytest.raises(BadInputError) as err:
        step._check_cluster_snapshot_quota(ctx, CLUSTERS)
    assert "97 exist; the quota is 100 (the default; RDS did not say)" in str(err.value)
