"""Pure logic of rds.encrypt: settings extraction, explicit API parameters, diffs, names, estimates."""

from __future__ import annotations

from typing import Any

from migrate.aws import rds_settings as rs

DESCRIBED: dict[str, Any] = {
    "DBInstanceIdentifier": "orders",
    "DBInstanceClass": "db.m6g.large",
    "Engine": "mysql",
    "EngineVersion": "8.0.35",
    "AllocatedStorage": 100,
    "StorageType": "gp3",
    "Iops": 3000,
    "StorageThroughput": 125,
    "Endpoint": {"Address": "orders.x.rds.amazonaws.com", "Port": 3307},
    "MultiAZ": False,
    "AvailabilityZone": "us-east-1b",
    "PubliclyAccessible": False,
    "VpcSecurityGroups": [{"VpcSecurityGroupId": "sg-2"}, {"VpcSecurityGroupId": "sg-1"}],
    "DBSubnetGroup": {"DBSubnetGroupName": "orders-subnets"},
    "DBParameterGroups": [{"DBParameterGroupName": "orders-params"}],
    "OptionGroupMemberships": [{"OptionGroupName": "orders-options"}],
    "IAMDatabaseAuthenticationEnabled": True,
    "BackupRetentionPeriod": 14,
    "PreferredBackupWindow": "03:00-03:30",
    "PreferredMaintenanceWindow": "sun:05:00-sun:05:30",
    "DeletionProtection": True,
    "PerformanceInsightsEnabled": True,
    "PerformanceInsightsRetentionPeriod": 7,
    "PerformanceInsightsKMSKeyId": "arn:aws:kms:us-east-1:1:key/pi",
    "MonitoringInterval": 60,
    "MonitoringRoleArn": "arn:aws:iam::1:role/mon",
    "EnabledCloudwatchLogsExports": ["slowquery", "error"],
    "AutoMinorVersionUpgrade": False,
    "CACertificateIdentifier": "rds-ca-rsa2048-g1",
    "CopyTagsToSnapshot": True,
    "LicenseModel": "general-public-license",
    "MaxAllocatedStorage": 500,
    "TagList": [
        {"Key": "team", "Value": "orders"},
        {"Key": "migrate:run", "Value": "r-1"},
        {"Key": "aws:cloudformation:stack-name", "Value": "s"},
    ],
}


def test_settings_are_normalised_and_leave_out_tool_and_aws_tags() -> None:
    got = rs.instance_settings(DESCRIBED)
    assert got["vpc_security_group_ids"] == ["sg-1", "sg-2"]
    assert got["cloudwatch_logs_exports"] == ["error", "slowquery"]
    assert got["port"] == 3307 and got["availability_zone"] == "us-east-1b"
    assert got["tags"] == {"team": "orders"}
    multi = rs.instance_settings({**DESCRIBED, "MultiAZ": True})
    assert multi["availability_zone"] is None  # either AZ after a failover


def test_restore_passes_every_restorable_setting_explicitly() -> None:
    settings = rs.instance_settings(DESCRIBED)
    kwargs = rs.restore_kwargs(settings, "orders-enc-abc", "snap-enc", {"migrate:run": "r-1"})
    assert kwargs["DBParameterGroupName"] == "orders-params"
    assert kwargs["OptionGroupName"] == "orders-options"
    assert kwargs["DBSubnetGroupName"] == "orders-subnets"
    assert kwargs["VpcSecurityGroupIds"] == ["sg-1", "sg-2"]
    assert kwargs["MultiAZ"] is False and kwargs["PubliclyAccessible"] is False
    assert kwargs["AvailabilityZone"] == "us-east-1b"
    assert kwargs["DeletionProtection"] is True
    assert kwargs["EnableIAMDatabaseAuthentication"] is True
    assert kwargs["CACertificateIdentifier"] == "rds-ca-rsa2048-g1"
    assert kwargs["EnableCloudwatchLogsExports"] == ["error", "slowquery"]
    assert kwargs["Tags"] == [
        {"Key": "migrate:run", "Value": "r-1"},
        {"Key": "team", "Value": "orders"},
    ]
    # gp3 below 400 GiB: IOPS and throughput are the baseline; AWS refuses explicit values.
    assert kwargs["StorageType"] == "gp3" and "Iops" not in kwargs
    assert "StorageThroughput" not in kwargs


def test_gp3_performance_is_passed_from_the_size_where_it_is_a_setting() -> None:
    big = rs.instance_settings({**DESCRIBED, "AllocatedStorage": 400, "Iops": 12000})
    kwargs = rs.restore_kwargs(big, "n", "s", {})
    assert kwargs["Iops"] == 12000 and kwargs["StorageThroughput"] == 125
    io1 = rs.instance_settings({**DESCRIBED, "StorageType": "io1", "Iops": 2000})
    kwargs = rs.restore_kwargs(io1, "n", "s", {})
    assert kwargs["Iops"] == 2000 and "StorageThroughput" not in kwargs


def test_modify_sets_what_restore_cannot() -> None:
    kwargs = rs.modify_kwargs(rs.instance_settings(DESCRIBED), "orders-enc-abc")
    assert kwargs == {
        "DBInstanceIdentifier": "orders-enc-abc",
        "ApplyImmediately": True,
        "BackupRetentionPeriod": 14,
        "PreferredBackupWindow": "03:00-03:30",
        "PreferredMaintenanceWindow": "sun:05:00-sun:05:30",
        "MaxAllocatedStorage": 500,
        "MonitoringInterval": 60,
        "MonitoringRoleArn": "arn:aws:iam::1:role/mon",
        "EnablePerformanceInsights": True,
        "PerformanceInsightsRetentionPeriod": 7,
        "PerformanceInsightsKMSKeyId": "arn:aws:kms:us-east-1:1:key/pi",
    }


def test_replica_kwargs_take_no_key_and_name_the_new_source() -> None:
    kwargs = rs.replica_kwargs(rs.instance_settings(DESCRIBED), "orders-ro", "orders", {})
    assert kwargs["SourceDBInstanceIdentifier"] == "orders"
    assert "KmsKeyId" not in kwargs  # same region: the source's key
    assert kwargs["DBParameterGroupName"] == "orders-params"


def test_diff_names_each_differing_setting() -> None:
    want = rs.instance_settings(DESCRIBED)
    got = rs.instance_settings(
        {
            **DESCRIBED,
            "DBParameterGroups": [{"DBParameterGroupName": "default.mysql8.0"}],
            "VpcSecurityGroups": [{"VpcSecurityGroupId": "sg-default"}],
            "Iops": 3001,  # baseline gp3 below the floor: not a setting
        }
    )
    diff = rs.diff_settings(want, got)
    assert set(diff) == {"parameter_group", "vpc_security_group_ids"}
    assert diff["parameter_group"] == {"want": "orders-params", "got": "default.mysql8.0"}
    assert rs.diff_settings(want, want) == {}


def test_names_are_deterministic_valid_and_short_enough() -> None:
    assert (
        rs.snapshot_id("r-20250101-abc", "orders", "final") == "migrate-r-20250101-abc-orders-final"
    )
    assert rs.snapshot_id("r-1", "orders", "final", encrypted=True).endswith("-final-enc")
    assert rs.temp_id("orders", "r-1") == rs.temp_id("orders", "r-1")
    assert rs.temp_id("orders", "r-1") != rs.temp_id("orders", "r-2")
    long_id = "a" * 60
    for name in (rs.temp_id(long_id, "r-1"), rs.renamed_id(long_id, "20250101")):
        assert len(name) <= 63 and "--" not in name and not name.endswith("-")
    assert rs.renamed_id("orders", "20250101") == "orders-unencrypted-20250101"
    assert rs.renamed_id("ab-" + "c" * 39 + "-x", "20250101").count("--") == 0


def test_estimates_grow_with_storage_and_warm_up_shortens_the_downtime() -> None:
    small = rs.phase_estimates(20, warm_up=False)
    large = rs.phase_estimates(2000, warm_up=False)
    warm = rs.phase_estimates(2000, warm_up=True)
    assert large["downtime"] > small["downtime"] > 0
    assert warm["downtime"] < large["downtime"]
    assert warm["final_copy"] == large["final_copy"]  # the copy is counted in full
    assert large["downtime"] == sum(
        large[k] for k in ("final_snapshot", "final_copy", "restore", "verify", "cut_over")
    )
    assert rs.phase_estimates(100, warm_up=False, replicas=2)["replicas"] > 0
    assert rs.minutes(3900) == "1 h 05 min" and rs.minutes(600) == "10 min"


def test_default_option_groups_are_not_passed_explicitly() -> None:
    from migrate.aws.rds_settings import custom_option_group

    assert custom_option_group("default:mysql-8-0") is None
    assert custom_option_group(None) is None
    assert custom_option_group("legacy-mysql-options") == "legacy-mysql-options"


AD_AND_FRIENDS: dict[str, Any] = {
    **DESCRIBED,
    "DomainMemberships": [
        {"Domain": "d-1234567890", "Status": "joined", "IAMRoleName": "rds-directory"}
    ],
    "NetworkType": "DUAL",
    "EngineLifecycleSupport": "open-source-rds-extended-support-disabled",
    "DedicatedLogVolume": True,
    "ProcessorFeatures": [
        {"Name": "coreCount", "Value": "2"},
        {"Name": "threadsPerCore", "Value": "1"},
    ],
    "DatabaseInsightsMode": "advanced",
}


def test_directory_network_lifecycle_log_volume_and_cpu_settings_are_carried() -> None:
    """AD/Kerberos, dual-stack, Extended Support enrolment, the dedicated log volume, processor
    features and the Database Insights mode are observed, passed where the API takes them
    (checked against botocore's model), and compared."""
    import botocore.session
    from botocore.validate import validate_parameters

    model = botocore.session.get_session().get_service_model("rds")
    want = rs.instance_settings(AD_AND_FRIENDS)
    restore = rs.restore_kwargs(want, "orders-enc-1", "snap", {})
    validate_parameters(
        restore, model.operation_model("RestoreDBInstanceFromDBSnapshot").input_shape
    )
    assert restore["Domain"] == "d-1234567890" and restore["DomainIAMRoleName"] == "rds-directory"
    assert restore["NetworkType"] == "DUAL"
    assert restore["EngineLifecycleSupport"] == "open-source-rds-extended-support-disabled"
    assert restore["DedicatedLogVolume"] is True
    assert {f["Name"]: f["Value"] for f in restore["ProcessorFeatures"]} == {
        "coreCount": "2",
        "threadsPerCore": "1",
    }
    replica = rs.replica_kwargs(want, "orders-ro", "orders", {})
    validate_parameters(replica, model.operation_model("CreateDBInstanceReadReplica").input_shape)
    # What the restored copy did not take is modified (Database Insights is modify-only).
    got = rs.instance_settings({**DESCRIBED, "NetworkType": "IPV4"})
    modify = rs.modify_kwargs(want, "orders-enc-1", got)
    validate_parameters(modify, model.operation_model("ModifyDBInstance").input_shape)
    assert modify["DatabaseInsightsMode"] == "advanced" and modify["NetworkType"] == "DUAL"
    assert modify["Domain"] == "d-1234567890"
    assert set(rs.diff_settings(want, got)) >= {
        "domain",
        "network_type",
        "engine_lifecycle_support",
        "dedicated_log_volume",
        "processor_features",
        "database_insights_mode",
    }


def test_a_rename_is_estimated_at_the_user_guides_ten_minutes() -> None:
    """The RDS User Guide: the new DNS name of a renamed instance takes about 10 minutes; the
    cut-over is two renames (the original aside, the copy onto the name)."""
    est = rs.phase_estimates(100, warm_up=False)
    assert est["cut_over"] >= 2 * 600
    assert est["downtime"] >= est["cut_over"]
