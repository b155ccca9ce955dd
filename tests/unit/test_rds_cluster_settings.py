"""Pure logic of Aurora clusters in rds.encrypt: settings, explicit API parameters, diffs, order,
what is not handled, and the estimates."""

from __future__ import annotations

from typing import Any

from migrate.steps.rds import cluster as rc

CLUSTER: dict[str, Any] = {
    "DBClusterIdentifier": "orders",
    "Engine": "aurora-postgresql",
    "EngineVersion": "15.4",
    "EngineMode": "provisioned",
    "Port": 5433,
    "StorageType": "aurora-iopt1",
    "VpcSecurityGroups": [{"VpcSecurityGroupId": "sg-2"}, {"VpcSecurityGroupId": "sg-1"}],
    "DBSubnetGroup": "orders-subnets",
    "DBClusterParameterGroup": "orders-cluster",
    "BackupRetentionPeriod": 21,
    "PreferredBackupWindow": "02:00-02:30",
    "PreferredMaintenanceWindow": "sat:04:00-sat:04:30",
    "DeletionProtection": True,
    "IAMDatabaseAuthenticationEnabled": True,
    "EnabledCloudwatchLogsExports": ["postgresql"],
    "CopyTagsToSnapshot": True,
    "ServerlessV2ScalingConfiguration": {"MinCapacity": 1, "MaxCapacity": 16},
    "AssociatedRoles": [{"RoleArn": "arn:aws:iam::1:role/s3-import", "Status": "ACTIVE"}],
    "DBClusterMembers": [
        {"DBInstanceIdentifier": "orders-b", "IsClusterWriter": False},
        {"DBInstanceIdentifier": "orders-a", "IsClusterWriter": True},
        {"DBInstanceIdentifier": "orders-c", "IsClusterWriter": False},
    ],
    "TagList": [{"Key": "team", "Value": "orders"}, {"Key": "aws:x", "Value": "y"}],
}


def _member(name: str, tier: int, cls: str = "db.r6g.large") -> dict[str, Any]:
    return {
        "DBInstanceIdentifier": name,
        "DBInstanceClass": cls,
        "DBParameterGroups": [{"DBParameterGroupName": "orders-instance"}],
        "PromotionTier": tier,
        "PerformanceInsightsEnabled": True,
        "PerformanceInsightsRetentionPeriod": 7,
        "MonitoringInterval": 30,
        "MonitoringRoleArn": "arn:aws:iam::1:role/mon",
        "AutoMinorVersionUpgrade": False,
        "PubliclyAccessible": False,
        "AvailabilityZone": "us-east-1c",
        "CACertificateIdentifier": "rds-ca-rsa2048-g1",
        "PreferredMaintenanceWindow": "tue:01:00-tue:01:30",
        "TagList": [{"Key": "role", "Value": name}, {"Key": "migrate:run", "Value": "r"}],
    }


INSTANCES = {
    "orders-a": _member("orders-a", 1),
    "orders-b": _member("orders-b", 0, "db.r6g.xlarge"),
    "orders-c": _member("orders-c", 0),
}


def test_cluster_settings_are_normalised() -> None:
    got = rc.cluster_settings(CLUSTER)
    assert got["vpc_security_group_ids"] == ["sg-1", "sg-2"]
    assert got["serverless_v2_scaling"] == {"MaxCapacity": 16.0, "MinCapacity": 1.0}
    assert got["tags"] == {"team": "orders"}
    assert got["backtrack_window"] == 0 and got["engine_mode"] == "provisioned"
    assert got["associated_roles"] == ["arn:aws:iam::1:role/s3-import"]


def test_members_carry_their_role_and_the_writer_is_created_first() -> None:
    members = rc.cluster_members(CLUSTER, INSTANCES)
    assert list(members) == ["orders-a", "orders-b", "orders-c"]
    assert members["orders-a"]["writer"] is True and members["orders-b"]["writer"] is False
    assert members["orders-a"]["tags"] == {"role": "orders-a"}
    # Writer first, then readers by promotion tier, then name.
    assert rc.creation_order(members) == ["orders-a", "orders-b", "orders-c"]


def test_restore_passes_every_cluster_setting_and_the_key() -> None:
    want = rc.cluster_settings(CLUSTER)
    kwargs = rc.restore_cluster_kwargs(
        want, "orders-enc-1", "snap-enc", "arn:key", {"migrate:run": "r"}
    )
    assert kwargs == {
        "DBClusterIdentifier": "orders-enc-1",
        "SnapshotIdentifier": "snap-enc",
        "Engine": "aurora-postgresql",
        "EngineVersion": "15.4",
        "EngineMode": "provisioned",
        "Port": 5433,
        "KmsKeyId": "arn:key",
        "DeletionProtection": True,
        "EnableIAMDatabaseAuthentication": True,
        "CopyTagsToSnapshot": True,
        "Tags": [{"Key": "migrate:run", "Value": "r"}, {"Key": "team", "Value": "orders"}],
        "DBSubnetGroupName": "orders-subnets",
        "DBClusterParameterGroupName": "orders-cluster",
        "StorageType": "aurora-iopt1",
        "VpcSecurityGroupIds": ["sg-1", "sg-2"],
        "EnableCloudwatchLogsExports": ["postgresql"],
        "ServerlessV2ScalingConfiguration": {"MaxCapacity": 16.0, "MinCapacity": 1.0},
        # The S3 import role goes with the restore (it used to be a risk to fix by hand).
        "AssociatedRoles": [{"RoleArn": "arn:aws:iam::1:role/s3-import"}],
    }
    # Backtracking exists on Aurora MySQL only: passed when the original has it.
    mysql = rc.cluster_settings({**CLUSTER, "Engine": "aurora-mysql", "BacktrackWindow": 3600})
    assert rc.restore_cluster_kwargs(mysql, "n", "s", "k", {})["BacktrackWindow"] == 3600


def test_modify_sets_what_restore_cannot_and_fixes_differences() -> None:
    want = rc.cluster_settings(CLUSTER)
    assert rc.modify_cluster_kwargs(want, "orders-enc-1") == {
        "DBClusterIdentifier": "orders-enc-1",
        "ApplyImmediately": True,
        "BackupRetentionPeriod": 21,
        "PreferredBackupWindow": "02:00-02:30",
        "PreferredMaintenanceWindow": "sat:04:00-sat:04:30",
    }
    got = {**want, "iam_auth": False, "cloudwatch_logs_exports": ["upgrade"], "port": 5432}
    kwargs = rc.modify_cluster_kwargs(want, "orders-enc-1", got)
    assert kwargs["EnableIAMDatabaseAuthentication"] is True and kwargs["Port"] == 5433
    assert kwargs["CloudwatchLogsExportConfiguration"] == {
        "EnableLogTypes": ["postgresql"],
        "DisableLogTypes": ["upgrade"],
    }
    assert "DeletionProtection" not in kwargs  # equal: not sent again


def test_member_creation_passes_every_instance_setting_but_no_storage() -> None:
    want = rc.cluster_members(CLUSTER, INSTANCES)["orders-b"]
    kwargs = rc.member_create_kwargs(want, "orders-b-enc", "orders-enc", "aurora-postgresql", {})
    assert kwargs == {
        "DBInstanceIdentifier": "orders-b-enc",
        "DBClusterIdentifier": "orders-enc",
        "Engine": "aurora-postgresql",
        "DBInstanceClass": "db.r6g.xlarge",
        "PubliclyAccessible": False,
        "AutoMinorVersionUpgrade": False,
        "MonitoringInterval": 30,
        "MonitoringRoleArn": "arn:aws:iam::1:role/mon",
        "EnablePerformanceInsights": True,
        "PerformanceInsightsRetentionPeriod": 7,
        "PromotionTier": 0,
        "DBParameterGroupName": "orders-instance",
        "AvailabilityZone": "us-east-1c",
        "CACertificateIdentifier": "rds-ca-rsa2048-g1",
        "PreferredMaintenanceWindow": "tue:01:00-tue:01:30",
        "Tags": [{"Key": "role", "Value": "orders-b"}],
    }
    modify = rc.member_modify_kwargs(want, "orders-b-enc")
    assert modify["ApplyImmediately"] is True and "AvailabilityZone" not in modify
    assert "DBClusterIdentifier" not in modify and modify["DBInstanceClass"] == "db.r6g.xlarge"


def test_diffs_name_each_differing_setting() -> None:
    want = rc.cluster_settings(CLUSTER)
    got = rc.cluster_settings({**CLUSTER, "DBClusterParameterGroup": "default.aurora-postgresql15"})
    assert rc.diff_cluster(want, got) == {
        "cluster_parameter_group": {"want": "orders-cluster", "got": "default.aurora-postgresql15"}
    }
    member = rc.cluster_members(CLUSTER, INSTANCES)["orders-a"]
    assert set(rc.diff_member(member, {**member, "writer": False, "promotion_tier": 15})) == {
        "writer",
        "promotion_tier",
    }


def test_clusters_the_step_does_not_handle_say_why() -> None:
    assert rc.not_handled_reason(CLUSTER) is None
    assert "Multi-AZ DB cluster" in str(rc.not_handled_reason({**CLUSTER, "Engine": "postgres"}))
    assert "serverless" in str(rc.not_handled_reason({**CLUSTER, "EngineMode": "serverless"}))
    replica = rc.not_handled_reason({**CLUSTER, "ReplicationSourceIdentifier": "arn:src"})
    assert "encrypt its source" in str(replica)
    world = rc.not_handled_reason({**CLUSTER, "GlobalClusterIdentifier": "orders-global"})
    assert "global database orders-global" in str(world)


def test_cluster_estimates_count_members_and_the_four_rename_rounds() -> None:
    small = rc.cluster_phase_estimates(10, warm_up=False, members=1)
    big = rc.cluster_phase_estimates(1000, warm_up=True, members=3)
    assert big["downtime"] > small["downtime"] > 0
    assert "warm_up" in big and "warm_up" not in small
    assert big["members"] > small["members"]
    assert small["cut_over"] == 4 * rc.CLUSTER_RATES["rename"][0]
    assert big["downtime"] == sum(
        big[k] for k in ("final_snapshot", "final_copy", "restore", "members", "verify", "cut_over")
    )


def test_serverless_v2_auto_pause_passes_botocore_validation() -> None:
    """SecondsUntilAutoPause is an integer in the RDS API model, the capacities doubles: a
    float there makes botocore refuse the restore (after writes stopped and the final
    snapshot was taken)."""
    import botocore.session
    from botocore.validate import validate_parameters

    model = botocore.session.get_session().get_service_model("rds")
    paused = {
        **CLUSTER,
        "ServerlessV2ScalingConfiguration": {
            "MinCapacity": 0,
            "MaxCapacity": 8,
            "SecondsUntilAutoPause": 300,
        },
    }
    want = rc.cluster_settings(paused)
    restore = rc.restore_cluster_kwargs(want, "orders-enc-1", "snap", "arn:aws:kms:k", {})
    validate_parameters(restore, model.operation_model("RestoreDBClusterFromSnapshot").input_shape)
    got = {**want, "serverless_v2_scaling": {"MinCapacity": 0.5, "MaxCapacity": 8.0}}
    modify = rc.modify_cluster_kwargs(want, "orders-enc-1", got)
    assert modify["ServerlessV2ScalingConfiguration"]["SecondsUntilAutoPause"] == 300
    validate_parameters(modify, model.operation_model("ModifyDBCluster").input_shape)


def test_aurora_parity_settings_are_restored_or_modified_and_compared() -> None:
    """Dual-stack, Extended Support enrolment, the Kerberos directory, the associated roles
    with their features, Database Insights and a managed master password: each is passed to
    the restore, or set by the modify after it, and a copy without it differs."""
    original = {
        **CLUSTER,
        "NetworkType": "DUAL",
        "EngineLifecycleSupport": "open-source-rds-extended-support-disabled",
        "DomainMemberships": [
            {"Domain": "d-906712345", "IAMRoleName": "rds-directory", "Status": "joined"}
        ],
        "AssociatedRoles": [
            {"RoleArn": "arn:aws:iam::1:role/s3-import", "FeatureName": "s3Import"},
            {"RoleArn": "arn:aws:iam::1:role/lambda", "Status": "ACTIVE"},
        ],
        "DatabaseInsightsMode": "advanced",
        "HttpEndpointEnabled": True,
        "MasterUserSecret": {"SecretArn": "arn:aws:secretsmanager:r:1:secret:rds!cluster-x"},
    }
    want = rc.cluster_settings(original)
    kwargs = rc.restore_cluster_kwargs(want, "n", "s", "k", {})
    assert kwargs["NetworkType"] == "DUAL"
    assert kwargs["EngineLifecycleSupport"] == "open-source-rds-extended-support-disabled"
    assert kwargs["Domain"] == "d-906712345" and kwargs["DomainIAMRoleName"] == "rds-directory"
    assert kwargs["AssociatedRoles"] == [
        {"RoleArn": "arn:aws:iam::1:role/lambda"},
        {"RoleArn": "arn:aws:iam::1:role/s3-import", "FeatureName": "s3Import"},
    ]
    restored = rc.cluster_settings({**CLUSTER, "NetworkType": "DUAL"})  # what a bare restore has
    diffs = rc.diff_cluster(want, restored)
    for key in (
        "domain",
        "associated_roles",
        "database_insights_mode",
        "http_endpoint",
        "managed_master_password",
    ):
        assert key in diffs, key
    modify = rc.modify_cluster_kwargs(want, "n", restored)
    assert modify["DatabaseInsightsMode"] == "advanced"
    assert modify["EnableHttpEndpoint"] is True  # the Data API
    assert modify["ManageMasterUserPassword"] is True
    assert modify["Domain"] == "d-906712345"
    assert "NetworkType" not in modify  # the restore took it
