"""Replicas rds.encrypt cannot carry are reported, never dropped or left with a silent done."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from migrate.aws.session import AwsSession
from migrate.errors import StepFailed
from migrate.steps.rds.encrypt import RdsEncrypt, RdsEncryptParams, _replica_blocker
from tests.functional.test_rds_encrypt import DB, REPLICA, _mysql
from tests.unit.test_rds_waits import MemoryContext


def test_a_selected_replica_whose_primary_is_not_selected_is_reported(
    endpoint: str, aws: Any, tmp_path: Path
) -> None:
    _mysql(aws, replica=True)
    key_arn = aws("kms").create_key()["KeyMetadata"]["Arn"]
    ctx = MemoryContext(
        aws=AwsSession(region="us-east-1", endpoint_url=endpoint),
        step_id="rds-encrypt",
        regions=["us-east-1"],
        state_dir=tmp_path,
        run_id="r-orphan-1",
    )
    step = RdsEncrypt(RdsEncryptParams(kms_key=key_arn, names=[REPLICA]))
    facts = step.observe(ctx)
    assert step.decide(ctx, facts) == []
    assert any(REPLICA in w and f"select {DB}" in w for w in facts["warnings"])
    with pytest.raises(StepFailed, match=REPLICA):
        step.verify(ctx)  # never a silent done


def test_cross_region_replicas_chains_and_aurora_replicas_block_the_primary() -> None:
    # DescribeDBInstances names a cross-Region replica by its ARN; it is not in this Region's
    # listing.
    remote = "arn:aws:rds:eu-west-1:123456789012:db:orders-eu"
    primary = {"DBInstanceIdentifier": "orders", "ReadReplicaDBInstanceIdentifiers": [remote]}
    assert "cross-Region read replica " + remote in str(_replica_blocker(primary, {}))
    chain = {
        "DBInstanceIdentifier": "orders",
        "ReadReplicaDBInstanceIdentifiers": ["orders-ro"],
    }
    by_id = {"orders-ro": {"ReadReplicaDBInstanceIdentifiers": ["orders-ro-ro"]}}
    assert "replica chain orders-ro -> orders-ro-ro" in str(_replica_blocker(chain, by_id))
    aurora = {"DBInstanceIdentifier": "orders", "ReadReplicaDBClusterIdentifiers": ["orders-a"]}
    assert "Aurora read replica cluster orders-a" in str(_replica_blocker(aurora, {}))
    plain = {"DBInstanceIdentifier": "orders", "ReadReplicaDBInstanceIdentifiers": ["orders-ro"]}
    assert _replica_blocker(plain, {"orders-ro": {}}) is None
