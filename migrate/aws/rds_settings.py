"""RDS settings as the API spells them: what a restore does not carry, names, and estimates.

Shared by the RDS steps (``rds.encrypt``, ``dr.restore_test``).

Nothing here calls AWS. ``instance_settings`` turns a ``DescribeDBInstances`` entry into a flat,
JSON-able dict (the facts of one database); ``restore_kwargs``/``modify_kwargs``/``replica_kwargs``
turn it back into the explicit parameters of each API call, so that nothing is left to a default
(AWS restores with the default security group and ``default.<engine>`` parameter group otherwise);
``diff_settings`` says which settings of a copy differ from the original.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import Any

# Tags this tool puts on what it creates; they are not part of "the original's settings".
TAG_PREFIXES_IGNORED = ("aws:", "migrate:")
TAG_RUN = "migrate:run"
TAG_SOURCE = "migrate:source"
TAG_ROLE = "migrate:role"

MAX_DB_ID = 63
MAX_SNAPSHOT_ID = 255

# gp3 IOPS/throughput are configurable only from this allocated size up (below it they are the
# fixed baseline, and AWS refuses explicit values); 400 GiB for MySQL/MariaDB/PostgreSQL, 200 GiB
# for Oracle/SQL Server (RDS User Guide, "gp3 storage").
GP3_CONFIGURABLE_FROM_GIB = {"mysql": 400, "mariadb": 400, "postgres": 400}
GP3_CONFIGURABLE_DEFAULT_GIB = 200

# Settings compared after the copy is made. Each is a key of ``instance_settings``.
COMPARED = (
    "instance_class",
    "engine",
    "engine_version",
    "allocated_storage",
    "max_allocated_storage",
    "storage_type",
    "iops",
    "storage_throughput",
    "port",
    "multi_az",
    "availability_zone",
    "publicly_accessible",
    "vpc_security_group_ids",
    "db_subnet_group",
    "parameter_group",
    "option_group",
    "iam_auth",
    "backup_retention",
    "backup_window",
    "maintenance_window",
    "deletion_protection",
    "performance_insights",
    "performance_insights_retention",
    "monitoring_interval",
    "monitoring_role_arn",
    "cloudwatch_logs_exports",
    "auto_minor_version_upgrade",
    "ca_certificate",
    "copy_tags_to_snapshot",
    "license_model",
    "managed_master_password",
    "domain",
    "network_type",
    "engine_lifecycle_support",
    "dedicated_log_volume",
    "processor_features",
    "database_insights_mode",
    "tags",
)
# What a read replica legitimately does not share with its source or gets from it.
NOT_COMPARED_FOR_REPLICA = frozenset(
    {
        "backup_window",
        "multi_az",
        "availability_zone",
        "managed_master_password",
        # CreateDBInstanceReadReplica takes no EngineLifecycleSupport: the replica follows.
        "engine_lifecycle_support",
    }
)
# DomainMemberships fields -> the parameter that sets each (restore, replica, modify).
DOMAIN_PARAMS = {
    "Domain": "Domain",
    "IAMRoleName": "DomainIAMRoleName",
    "FQDN": "DomainFqdn",
    "OU": "DomainOu",
    "AuthSecretArn": "DomainAuthSecretArn",
    "DnsIps": "DomainDnsIps",
}


def user_tags(tag_list: Any) -> dict[str, str]:
    """Tags as a dict, without the ``aws:`` and ``migrate:`` ones."""
    tags = {t["Key"]: t.get("Value", "") for t in tag_list or ()}
    return {k: v for k, v in sorted(tags.items()) if not k.startswith(TAG_PREFIXES_IGNORED)}


def own_instance_settings(db: Mapping[str, Any]) -> dict[str, Any]:
    """The settings of an instance of its own, that an Aurora member has too (the rest of a
    member's settings are its cluster's)."""
    groups = db.get("DBParameterGroups") or [{}]
    return {
        "instance_class": db.get("DBInstanceClass"),
        "parameter_group": groups[0].get("DBParameterGroupName"),
        "publicly_accessible": bool(db.get("PubliclyAccessible", False)),
        "maintenance_window": db.get("PreferredMaintenanceWindow"),
        "performance_insights": bool(db.get("PerformanceInsightsEnabled", False)),
        "performance_insights_retention": db.get("PerformanceInsightsRetentionPeriod"),
        "performance_insights_kms_key": db.get("PerformanceInsightsKMSKeyId"),
        "monitoring_interval": db.get("MonitoringInterval") or 0,
        "monitoring_role_arn": db.get("MonitoringRoleArn")
        if db.get("MonitoringInterval")
        else None,
        "auto_minor_version_upgrade": bool(db.get("AutoMinorVersionUpgrade", False)),
        "ca_certificate": db.get("CACertificateIdentifier"),
        "tags": user_tags(db.get("TagList")),
    }


def instance_settings(db: Mapping[str, Any]) -> dict[str, Any]:
    """Every setting of an instance that a snapshot restore does not carry by itself."""
    options = db.get("OptionGroupMemberships") or [{}]
    subnet = db.get("DBSubnetGroup") or {}
    endpoint = db.get("Endpoint") or {}
    multi_az = bool(db.get("MultiAZ", False))
    secret = db.get("MasterUserSecret") or {}
    domain = (db.get("DomainMemberships") or [{}])[0]
    return {
        **own_instance_settings(db),
        "engine": db.get("Engine"),
        "engine_version": db.get("EngineVersion"),
        "allocated_storage": db.get("AllocatedStorage"),
        "max_allocated_storage": db.get("MaxAllocatedStorage"),
        "storage_type": db.get("StorageType"),
        "iops": db.get("Iops"),
        "storage_throughput": db.get("StorageThroughput"),
        "port": endpoint.get("Port") or db.get("DbInstancePort"),
        "multi_az": multi_az,
        # A Multi-AZ instance may sit in either AZ after a failover: not a setting then.
        "availability_zone": None if multi_az else db.get("AvailabilityZone"),
        "vpc_security_group_ids": sorted(
            g["VpcSecurityGroupId"] for g in db.get("VpcSecurityGroups") or ()
        ),
        "db_subnet_group": subnet.get("DBSubnetGroupName"),
        "option_group": options[0].get("OptionGroupName"),
        "iam_auth": bool(db.get("IAMDatabaseAuthenticationEnabled", False)),
        "backup_retention": db.get("BackupRetentionPeriod"),
        "backup_window": db.get("PreferredBackupWindow"),
        "deletion_protection": bool(db.get("DeletionProtection", False)),
        "cloudwatch_logs_exports": sorted(db.get("EnabledCloudwatchLogsExports") or ()),
        "copy_tags_to_snapshot": bool(db.get("CopyTagsToSnapshot", False)),
        "license_model": db.get("LicenseModel"),
        # A master password kept by RDS in Secrets Manager: a restore cannot turn it on again
        # (except on Oracle), so the copy is modified; the copy gets a *new* secret (the ARN
        # changes) and the original's secret goes when the original is deleted.
        "managed_master_password": bool(secret),
        "master_user_secret_arn": secret.get("SecretArn"),
        "master_user_secret_kms_key": secret.get("KmsKeyId"),
        # Not carried by a restore unless passed (AD/Kerberos, dual-stack, Extended Support
        # enrolment, dedicated log volume, vCPU features, Database Insights mode).
        "domain": {k: domain[k] for k in DOMAIN_PARAMS if domain.get(k)} or None,
        "network_type": db.get("NetworkType"),
        "engine_lifecycle_support": db.get("EngineLifecycleSupport"),
        "dedicated_log_volume": db.get("DedicatedLogVolume"),
        "processor_features": {
            str(f["Name"]): str(f["Value"]) for f in db.get("ProcessorFeatures") or ()
        }
        or None,
        "database_insights_mode": db.get("DatabaseInsightsMode"),
    }


def gp3_performance_settable(settings: Mapping[str, Any]) -> bool:
    """True when gp3 IOPS/throughput may be given explicitly (AWS refuses below a size)."""
    engine = str(settings.get("engine") or "")
    floor = GP3_CONFIGURABLE_FROM_GIB.get(engine, GP3_CONFIGURABLE_DEFAULT_GIB)
    return int(settings.get("allocated_storage") or 0) >= floor


def _storage_kwargs(settings: Mapping[str, Any]) -> dict[str, Any]:
    kwargs: dict[str, Any] = {}
    storage_type = settings.get("storage_type")
    if storage_type:
        kwargs["StorageType"] = storage_type
    provisioned = storage_type in ("io1", "io2") or (
        storage_type == "gp3" and gp3_performance_settable(settings)
    )
    if provisioned and settings.get("iops"):
        kwargs["Iops"] = settings["iops"]
    if storage_type == "gp3" and provisioned and settings.get("storage_throughput"):
        kwargs["StorageThroughput"] = settings["storage_throughput"]
    return kwargs


def tag_list(tags: Mapping[str, str] | None, extra: Mapping[str, str]) -> list[dict[str, str]]:
    """``tags`` and this tool's ``extra`` tags as an API tag list, sorted by key."""
    merged = {**dict(tags or {}), **dict(extra)}
    return [{"Key": k, "Value": v} for k, v in sorted(merged.items())]


def _new_instance_kwargs(
    settings: Mapping[str, Any], extra_tags: Mapping[str, str], **names: str
) -> dict[str, Any]:
    """The parameters a restore and a replica creation share, with the identifiers ``names``."""
    kwargs: dict[str, Any] = {
        **names,
        "DBInstanceClass": settings["instance_class"],
        "Port": settings["port"],
        "MultiAZ": bool(settings["multi_az"]),
        "PubliclyAccessible": bool(settings["publicly_accessible"]),
        "AutoMinorVersionUpgrade": bool(settings["auto_minor_version_upgrade"]),
        "CopyTagsToSnapshot": bool(settings["copy_tags_to_snapshot"]),
        "EnableIAMDatabaseAuthentication": bool(settings["iam_auth"]),
        "DeletionProtection": bool(settings["deletion_protection"]),
        "Tags": tag_list(settings.get("tags"), extra_tags),
        **_storage_kwargs(settings),
    }
    optional = {
        "DBParameterGroupName": settings.get("parameter_group"),
        "OptionGroupName": custom_option_group(settings.get("option_group")),
        "CACertificateIdentifier": settings.get("ca_certificate"),
        "AvailabilityZone": None if settings["multi_az"] else settings.get("availability_zone"),
        "NetworkType": settings.get("network_type"),
    }
    kwargs.update(_extra_instance_kwargs(settings))
    return put_given(kwargs, settings, optional)


def _extra_instance_kwargs(settings: Mapping[str, Any]) -> dict[str, Any]:
    """Directory membership, dedicated log volume and processor features, as the restore, the
    replica creation and the modify all name them."""
    kwargs: dict[str, Any] = {}
    for field, param in DOMAIN_PARAMS.items():
        value = (settings.get("domain") or {}).get(field)
        if value:
            kwargs[param] = list(value) if field == "DnsIps" else value
    if settings.get("dedicated_log_volume") is not None:
        kwargs["DedicatedLogVolume"] = bool(settings["dedicated_log_volume"])
    if settings.get("processor_features"):
        kwargs["ProcessorFeatures"] = [
            {"Name": k, "Value": v} for k, v in sorted(settings["processor_features"].items())
        ]
    return kwargs


def put_given(
    kwargs: dict[str, Any], settings: Mapping[str, Any], optional: Mapping[str, Any]
) -> dict[str, Any]:
    """``kwargs`` with the ``optional`` parameters that have a value, and the security groups and
    log exports of ``settings`` if any (an empty value would mean "the default" to AWS)."""
    kwargs.update({k: v for k, v in optional.items() if v})
    if settings.get("vpc_security_group_ids"):
        kwargs["VpcSecurityGroupIds"] = list(settings["vpc_security_group_ids"])
    if settings.get("cloudwatch_logs_exports"):
        kwargs["EnableCloudwatchLogsExports"] = list(settings["cloudwatch_logs_exports"])
    return kwargs


def restore_kwargs(
    settings: Mapping[str, Any], new_id: str, snapshot_id: str, extra_tags: Mapping[str, str]
) -> dict[str, Any]:
    """RestoreDBInstanceFromDBSnapshot parameters that re-create every restorable setting."""
    kwargs = _new_instance_kwargs(
        settings, extra_tags, DBInstanceIdentifier=new_id, DBSnapshotIdentifier=snapshot_id
    )
    # Only a restore takes these: a same-region read replica gets them from its source.
    optional = {
        "DBSubnetGroupName": settings.get("db_subnet_group"),
        "LicenseModel": settings.get("license_model"),
        # Without it AWS enrols the copy in RDS Extended Support (billed) by default.
        "EngineLifecycleSupport": settings.get("engine_lifecycle_support"),
    }
    kwargs.update({k: v for k, v in optional.items() if v})
    return kwargs


def backup_and_maintenance_kwargs(settings: Mapping[str, Any], **names: str) -> dict[str, Any]:
    """Modify parameters (applied now) of the backups and maintenance window, which a restore
    does not carry over; ``names`` identifies the instance or cluster."""
    kwargs: dict[str, Any] = {**names, "ApplyImmediately": True}
    if settings.get("backup_retention") is not None:
        kwargs["BackupRetentionPeriod"] = settings["backup_retention"]
    if settings.get("backup_window"):
        kwargs["PreferredBackupWindow"] = settings["backup_window"]
    if settings.get("maintenance_window"):
        kwargs["PreferredMaintenanceWindow"] = settings["maintenance_window"]
    return kwargs


def modify_kwargs(
    settings: Mapping[str, Any], db_id: str, got: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """ModifyDBInstance parameters for what a restore (or replica creation) cannot set;
    ``got`` (the copy's settings, when known) leaves out what it already has."""
    kwargs = backup_and_maintenance_kwargs(settings, DBInstanceIdentifier=db_id)
    if settings.get("managed_master_password") and not (got or {}).get("managed_master_password"):
        kwargs["ManageMasterUserPassword"] = True
        if settings.get("master_user_secret_kms_key"):
            kwargs["MasterUserSecretKmsKeyId"] = settings["master_user_secret_kms_key"]
    if settings.get("max_allocated_storage"):
        kwargs["MaxAllocatedStorage"] = settings["max_allocated_storage"]
    interval = int(settings.get("monitoring_interval") or 0)
    if interval:
        kwargs["MonitoringInterval"] = interval
        if settings.get("monitoring_role_arn"):
            kwargs["MonitoringRoleArn"] = settings["monitoring_role_arn"]
    if settings.get("performance_insights"):
        kwargs["EnablePerformanceInsights"] = True
        kwargs.update(performance_insights_kwargs(settings))
    # Database Insights mode is not a restore parameter; set after Performance Insights.
    if settings.get("database_insights_mode") and (got or {}).get(
        "database_insights_mode"
    ) != settings.get("database_insights_mode"):
        kwargs["DatabaseInsightsMode"] = settings["database_insights_mode"]
    if got is not None:
        # Anything a restore was given but did not take is set again.
        if settings.get("network_type") and got.get("network_type") != settings["network_type"]:
            kwargs["NetworkType"] = settings["network_type"]
        for key, param in (
            ("engine_lifecycle_support", "EngineLifecycleSupport"),
            ("dedicated_log_volume", "DedicatedLogVolume"),
        ):
            if settings.get(key) is not None and got.get(key) != settings.get(key):
                kwargs[param] = settings[key]
        extra = _extra_instance_kwargs(settings)
        if settings.get("domain") != got.get("domain"):
            kwargs.update({k: v for k, v in extra.items() if k.startswith("Domain")})
        if settings.get("processor_features") != got.get("processor_features"):
            kwargs.update({k: v for k, v in extra.items() if k == "ProcessorFeatures"})
    return kwargs


def performance_insights_kwargs(settings: Mapping[str, Any]) -> dict[str, Any]:
    """The Performance Insights retention and key to pass, when Performance Insights is on."""
    kwargs: dict[str, Any] = {}
    if settings.get("performance_insights"):
        if settings.get("performance_insights_retention"):
            kwargs["PerformanceInsightsRetentionPeriod"] = settings[
                "performance_insights_retention"
            ]
        if settings.get("performance_insights_kms_key"):
            kwargs["PerformanceInsightsKMSKeyId"] = settings["performance_insights_kms_key"]
    return kwargs


def replica_kwargs(
    settings: Mapping[str, Any], replica_id: str, source_id: str, extra_tags: Mapping[str, str]
) -> dict[str, Any]:
    """CreateDBInstanceReadReplica parameters re-creating a replica's own settings.

    The replica of an encrypted source in the same region is encrypted with the source's key, so
    no ``KmsKeyId`` is passed (AWS uses the source's).
    """
    return _new_instance_kwargs(
        settings, extra_tags, DBInstanceIdentifier=replica_id, SourceDBInstanceIdentifier=source_id
    )


def diff_settings(
    want: Mapping[str, Any], got: Mapping[str, Any], *, replica: bool = False
) -> dict[str, dict[str, Any]]:
    """``{setting: {"want": ..., "got": ...}}`` for every compared setting that differs."""
    out: dict[str, dict[str, Any]] = {}
    for key in COMPARED:
        if replica and key in NOT_COMPARED_FOR_REPLICA:
            continue
        # Below the gp3 floor IOPS and throughput are the fixed baseline, not settings.
        if (
            key in ("iops", "storage_throughput")
            and want.get("storage_type") == "gp3"
            and not gp3_performance_settable(want)
        ):
            continue
        if want.get(key) != got.get(key):
            out[key] = {"want": want.get(key), "got": got.get(key)}
    return out


# --- names ------------------------------------------------------------------------------------------


def _clean(name: str, limit: int) -> str:
    """An RDS identifier: letters, digits and single hyphens, starting with a letter, <= limit."""
    name = re.sub(r"[^A-Za-z0-9-]", "-", name)
    name = re.sub(r"-{2,}", "-", name)
    if not name[:1].isalpha():
        name = "x" + name
    return name[:limit].rstrip("-")


def run_hash(run_id: str | None) -> str:
    """Six hex digits derived from the run id (stable across resumes)."""
    return hashlib.sha256((run_id or "plan").encode()).hexdigest()[:6]


def snapshot_id(run_id: str | None, db_id: str, phase: str, *, encrypted: bool = False) -> str:
    """``migrate-<run>-<db>-<phase>[-enc]``: deterministic, so a resume finds what it made."""
    suffix = f"-{phase}" + ("-enc" if encrypted else "")
    head = _clean(f"migrate-{run_id or 'RUN'}-{db_id}", MAX_SNAPSHOT_ID - len(suffix))
    return head + suffix


def temp_id(db_id: str, run_id: str | None) -> str:
    """The identifier the encrypted copy is restored under before the cut-over."""
    suffix = f"-enc-{run_hash(run_id)}"
    return _clean(db_id, MAX_DB_ID - len(suffix)) + suffix


def renamed_id(db_id: str, yyyymmdd: str) -> str:
    """``<id>-unencrypted-<yyyymmdd>``: the name the original keeps until cleanup."""
    suffix = f"-unencrypted-{yyyymmdd}"
    return _clean(db_id, MAX_DB_ID - len(suffix)) + suffix


# --- estimates ----------------------------------------------------------------------------------

# Seconds per GiB and fixed overheads. Conservative figures from published experience (a first
# snapshot ~3 GiB/min, a re-encrypting copy ~2 GiB/min, a restore mostly size-independent because
# EBS loads blocks lazily). A rename: the RDS User Guide ("Renaming a DB instance") says the new
# DNS name takes about 10 minutes to be usable. A warm-up run records the account's real rates.
RATES = {
    "snapshot": (120.0, 20.0),
    "snapshot_incremental": (120.0, 2.0),
    "copy": (180.0, 30.0),
    "restore": (900.0, 1.0),
    "modify": (300.0, 0.0),
    "verify": (30.0, 0.0),
    "rename": (600.0, 0.0),
    "replica": (900.0, 20.0),
    "delete": (600.0, 0.0),
}


def rate(rates: Mapping[str, tuple[float, float]], name: str, gib: float) -> float:
    """Estimated seconds of ``name`` for ``gib`` GiB by a table of (fixed s, s per GiB)."""
    fixed, per_gib = rates[name]
    return round(fixed + per_gib * gib)


def _rate(name: str, gib: float) -> float:
    return rate(RATES, name, gib)


def phase_estimates(allocated_gib: float, *, warm_up: bool, replicas: int = 0) -> dict[str, float]:
    """Estimated seconds per phase and the write downtime (final snapshot to cut-over end).

    With a warm-up, the final snapshot is incremental; the final copy is counted in full, because
    AWS copies incrementally only in some cases (same key, earlier copy still present).
    """
    gib = float(allocated_gib or 0)
    est: dict[str, float] = {}
    if warm_up:
        est["warm_up"] = _rate("snapshot", gib) + _rate("copy", gib)
        est["final_snapshot"] = _rate("snapshot_incremental", gib)
    else:
        est["final_snapshot"] = _rate("snapshot", gib)
    est["final_copy"] = _rate("copy", gib)
    est["restore"] = _rate("restore", gib) + _rate("modify", gib)
    est["verify"] = _rate("verify", gib)
    est["cut_over"] = 2 * _rate("rename", gib)
    # Re-created side by side (each poll advances every replica): as long as one of them.
    est["replicas"] = (_rate("rename", gib) + _rate("replica", gib)) if replicas else 0.0
    est["cleanup"] = _rate("delete", gib)
    est["downtime"] = (
        est["final_snapshot"] + est["final_copy"] + est["restore"] + est["verify"] + est["cut_over"]
    )
    return est


def minutes(seconds: float) -> str:
    """``"1 h 05 min"`` / ``"12 min"`` for summaries."""
    total = round(seconds / 60)
    if total >= 60:
        return f"{total // 60} h {total % 60:02d} min"
    return f"{total} min"


def custom_option_group(name: str | None) -> str | None:
    """The option group to pass explicitly, or None for an engine default (``default:mysql-8-0``):
    a restore or replica gets the engine's default option group by itself, and naming a default
    group that the account never materialised is refused (OptionGroupNotFoundFault)."""
    if not name or name.startswith("default:"):
        return None
    return name
