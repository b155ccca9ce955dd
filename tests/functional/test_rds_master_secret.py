"""A master password kept by RDS in Secrets Manager (``MasterUserSecret``) follows the copy.

A restore cannot turn managed master passwords on again (RestoreDBInstanceFromDBSnapshot takes
``ManageMasterUserPassword`` for Oracle only), so without a modify the encrypted copy would run
with the snapshot's old password and no secret, and the applications reading the secret would
break when cleanup deletes the original (and with it its secret).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from migrate.aws import rds_settings as rs
from migrate.aws.session import AwsSession
from migrate.steps.rds.encrypt import (
    FINAL_SNAPSHOT,
    RESTORE,
    VERIFY,
    RdsEncrypt,
    RdsEncryptParams,
)
from tests.functional.test_rds_crash_windows import _act
from tests.unit.test_rds_waits import MemoryContext

DB = "orders-mysql"
RUN = "r-secret-1"


def test_managed_master_password_is_turned_on_for_the_copy_and_named_in_the_plan(
    endpoint: str, aws: Any, tmp_path: Path
) -> None:
    rds = aws("rds")
    rds.create_db_instance(
        DBInstanceIdentifier=DB,
        DBInstanceClass="db.t3.medium",
        Engine="mysql",
        AllocatedStorage=20,
        MasterUsername="admin",
        ManageMasterUserPassword=True,
        StorageEncrypted=False,
    )
    original = rds.describe_db_instances(DBInstanceIdentifier=DB)["DBInstances"][0]
    old_arn = original["MasterUserSecret"]["SecretArn"]
    key_arn = aws("kms").create_key()["KeyMetadata"]["Arn"]
    session = AwsSession(region="us-east-1", endpoint_url=endpoint)
    ctx = MemoryContext(
        aws=session, step_id="rds-encrypt", regions=["us-east-1"], state_dir=tmp_path, run_id=RUN
    )
    step = RdsEncrypt(RdsEncryptParams(kms_key=key_arn, poll_seconds=0, names=[DB]))

    # The plan names the secret whose ARN changes.
    actions = step.decide(ctx, step.observe(ctx))
    restore = next(a for a in actions if a.kind == RESTORE)
    assert any(old_arn in risk and "ARN changes" in risk for risk in restore.risks)
    # ... and says how writes are stopped (enforced by the lockdown group, by default).
    stop = next(a for a in actions if a.gate == "stop-writes")
    assert any(r.startswith("stop-writes mode: security-groups (enforced)") for r in stop.risks)

    details = {"settings": rs.instance_settings(original), "allocated_gib": 20}
    for kind in (FINAL_SNAPSHOT, RESTORE, VERIFY):
        _act(step, ctx, kind, details)
    copy = rds.describe_db_instances(DBInstanceIdentifier=rs.temp_id(DB, RUN))["DBInstances"][0]
    assert copy.get("MasterUserSecret", {}).get("SecretArn") not in (None, old_arn)


def test_restored_copy_without_the_secret_is_modified_to_manage_it(tmp_path: Path) -> None:
    """On AWS the restored copy has no ``MasterUserSecret``; moto 5.2.5 copies it through the
    restore (more lenient than AWS), so this phase is tested with a botocore Stubber: the copy
    comes back without the secret and the step must send ModifyDBInstance
    ManageMasterUserPassword (with the original secret's KMS key)."""
    from botocore.stub import Stubber

    from migrate.engine.base import Action
    from tests.unit.test_rds_waits import KEY, Clock

    secret_key = "arn:aws:kms:us-east-1:123456789012:key/secret-key"
    old_arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:rds!db-old-abc"
    new_arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:rds!db-new-def"
    temp = rs.temp_id(DB, RUN)
    enc = rs.snapshot_id(RUN, DB, "final", encrypted=True)
    base = {
        "DBInstanceClass": "db.t3.medium",
        "Engine": "mysql",
        "EngineVersion": "8.0.35",
        "AllocatedStorage": 20,
        "DBInstanceStatus": "available",
        "BackupRetentionPeriod": 7,
        "Endpoint": {"Port": 3306},
        "DBSubnetGroup": {"DBSubnetGroupName": "orders-subnets"},
        "VpcSecurityGroups": [{"VpcSecurityGroupId": "sg-1"}],
        "DBParameterGroups": [{"DBParameterGroupName": "orders-mysql8"}],
    }
    original = {
        **base,
        "DBInstanceIdentifier": DB,
        "StorageEncrypted": False,
        "MasterUserSecret": {"SecretArn": old_arn, "KmsKeyId": secret_key},
    }
    tags = [{"Key": rs.TAG_RUN, "Value": RUN}, {"Key": rs.TAG_SOURCE, "Value": DB}]
    copy = {**base, "DBInstanceIdentifier": temp, "StorageEncrypted": True, "TagList": tags}
    managed = {**copy, "MasterUserSecret": {"SecretArn": new_arn, "KmsKeyId": secret_key}}

    session = AwsSession(region="us-east-1", endpoint_url="http://127.0.0.1:9")
    ctx = MemoryContext(
        aws=session, step_id="rds-encrypt", regions=["us-east-1"], state_dir=tmp_path, run_id=RUN
    )
    step = RdsEncrypt(RdsEncryptParams(kms_key=KEY, poll_seconds=30))
    step.clock = Clock()
    client = ctx.client("rds", "us-east-1")
    sent: dict[str, Any] = {}
    client.meta.events.register(
        "provide-client-params.rds.ModifyDBInstance", lambda params, **_: sent.update(params)
    )
    stub = Stubber(client)

    def describe(name: str, desc: dict[str, Any] | None) -> None:
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

    describe(DB, original)
    describe(temp, None)
    stub.add_response(
        "describe_db_snapshots",
        {"DBSnapshots": [{"DBSnapshotIdentifier": enc, "Status": "available"}]},
        {"DBSnapshotIdentifier": enc},
    )
    stub.add_response("restore_db_instance_from_db_snapshot", {"DBInstance": copy}, None)
    describe(temp, copy)
    stub.add_response("modify_db_instance", {"DBInstance": copy}, None)
    describe(temp, managed)
    action = Action(
        kind=RESTORE,
        target=DB,
        summary="restore",
        region="us-east-1",
        details={"settings": rs.instance_settings(original), "allocated_gib": 20},
    )
    with stub:
        assert step.act(ctx, action) is None
        stub.assert_no_pending_responses()
    assert sent.get("ManageMasterUserPassword") is True
    assert sent.get("MasterUserSecretKmsKeyId") == secret_key
    assert ctx.results["master_user_secret_arn"] == new_arn
