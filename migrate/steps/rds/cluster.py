"""Aurora DB clusters in ``rds.encrypt``: their settings, the explicit API parameters, and the phases.

An Aurora cluster cannot be encrypted in place either. Per cluster the step takes a (warm-up and a
final) cluster snapshot, copies it with the KMS key, restores the copy under a temporary cluster
identifier with every observed cluster setting passed explicitly, re-creates every member instance
(``CreateDBInstance`` with ``DBClusterIdentifier``) with its own class and settings, verifies, and
at the cut-over renames the original cluster and its instances aside and the new ones onto the
original names. This module holds the pure parts (settings, kwargs, diffs, estimates) and the
actions decided per cluster; the phases are ``cluster_flow.ClusterFlow``.

Multi-AZ DB clusters (non-Aurora engines, whose instances AWS creates and names itself), Aurora
Serverless v1, replica clusters and clusters with cross-cluster read replicas are reported under
``clusters_not_handled``, not changed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from migrate.aws import rds_dependents as rdeps
from migrate.aws import rds_settings as rs
from migrate.engine.base import Action
from migrate.engine.context import StepContext
from migrate.errors import BadInputError
from migrate.steps.rds import lockdown as lk
from migrate.steps.rds.params import RdsEncryptParams
from migrate.steps.rds.phases import (
    CLUSTER,
    action_adder,
    add_soak,
    cleanup_risks,
)

# Action kinds, in the order they run for one cluster (the target is the cluster identifier).
CLUSTER_WARM_UP = "rds.cluster_warm_up"
CLUSTER_STOP_WRITES = "rds.cluster_stop_writes"
CLUSTER_FINAL_SNAPSHOT = "rds.cluster_final_snapshot"
CLUSTER_RESTORE = "rds.cluster_restore"
CLUSTER_MEMBERS = "rds.cluster_members"
CLUSTER_VERIFY = "rds.cluster_verify"
CLUSTER_CUT_OVER = "rds.cluster_cut_over"
CLUSTER_CLEANUP = "rds.cluster_cleanup"
KINDS = (
    CLUSTER_WARM_UP,
    CLUSTER_STOP_WRITES,
    CLUSTER_FINAL_SNAPSHOT,
    CLUSTER_RESTORE,
    CLUSTER_MEMBERS,
    CLUSTER_VERIFY,
    CLUSTER_CUT_OVER,
    CLUSTER_CLEANUP,
)

# Cluster settings compared between the original and the copy (keys of ``cluster_settings``).
CLUSTER_COMPARED = (
    "engine",
    "engine_version",
    "engine_mode",
    "port",
    "storage_type",
    "vpc_security_group_ids",
    "db_subnet_group",
    "cluster_parameter_group",
    "backup_retention",
    "backup_window",
    "maintenance_window",
    "deletion_protection",
    "iam_auth",
    "cloudwatch_logs_exports",
    "copy_tags_to_snapshot",
    "backtrack_window",
    "serverless_v2_scaling",
    "tags",
    "network_type",
    "engine_lifecycle_support",
    "domain",
    "associated_roles",
    "database_insights_mode",
    "http_endpoint",
    "managed_master_password",
)
# Member instance settings compared (keys of ``member_settings``); ``writer`` is the role.
MEMBER_COMPARED = (
    "instance_class",
    "parameter_group",
    "promotion_tier",
    "performance_insights",
    "performance_insights_retention",
    "monitoring_interval",
    "monitoring_role_arn",
    "auto_minor_version_upgrade",
    "publicly_accessible",
    "availability_zone",
    "ca_certificate",
    "maintenance_window",
    "tags",
    "writer",
)


# --- settings ---------------------------------------------------------------------------------------


def not_handled_reason(cluster: Mapping[str, Any]) -> str | None:
    """Why this unencrypted cluster is left alone, or None when the step handles it."""
    engine = str(cluster.get("Engine") or "")
    if not engine.startswith("aurora"):
        return (
            f"Multi-AZ DB cluster ({engine}): AWS creates and names its instances itself; "
            "not handled by rds.encrypt yet (snapshot, encrypted copy and restore by hand)"
        )
    if (cluster.get("EngineMode") or "provisioned") not in ("provisioned",):
        return (
            f"Aurora {cluster.get('EngineMode')} cluster (e.g. Serverless v1): not handled by "
            "rds.encrypt; restore an encrypted copy by hand"
        )
    if cluster.get("GlobalClusterIdentifier"):
        return (
            f"member of the global database {cluster.get('GlobalClusterIdentifier')}: not "
            "handled by rds.encrypt (a global database is re-created as a whole)"
        )
    if cluster.get("ReplicationSourceIdentifier"):
        return (
            f"replica of {cluster.get('ReplicationSourceIdentifier')}: encrypt its source; a "
            "replica cluster is re-created from it"
        )
    if cluster.get("ReadReplicaIdentifiers"):
        return (
            "has replica clusters "
            + ", ".join(str(r) for r in cluster["ReadReplicaIdentifiers"])
            + ": not handled by rds.encrypt yet"
        )
    return None


# Types of ServerlessV2ScalingConfiguration's members in the RDS API model (botocore refuses a
# float where the model says integer, so a restore would fail after writes stopped).
SCALING_TYPES: dict[str, type[int] | type[float]] = {
    "MinCapacity": float,
    "MaxCapacity": float,
    "SecondsUntilAutoPause": int,
}


def _scaling(cluster: Mapping[str, Any]) -> dict[str, float | int] | None:
    raw = cluster.get("ServerlessV2ScalingConfiguration") or {}
    out = {
        k: SCALING_TYPES[k](v) if k in SCALING_TYPES else v
        for k, v in sorted(raw.items())
        if v is not None
    }
    return out or None


def cluster_settings(cluster: Mapping[str, Any]) -> dict[str, Any]:
    """Every setting of an Aurora cluster that a snapshot restore does not carry by itself."""
    domain = (cluster.get("DomainMemberships") or [{}])[0]
    return {
        "engine": cluster.get("Engine"),
        "engine_version": cluster.get("EngineVersion"),
        "engine_mode": cluster.get("EngineMode") or "provisioned",
        "port": cluster.get("Port"),
        # Aurora Standard ("aurora") or I/O-Optimized ("aurora-iopt1"): a restore would pick
        # the default, so it is passed.
        "storage_type": cluster.get("StorageType"),
        "vpc_security_group_ids": sorted(
            g["VpcSecurityGroupId"] for g in cluster.get("VpcSecurityGroups") or ()
        ),
        "db_subnet_group": cluster.get("DBSubnetGroup"),
        "cluster_parameter_group": cluster.get("DBClusterParameterGroup"),
        "backup_retention": cluster.get("BackupRetentionPeriod"),
        "backup_window": cluster.get("PreferredBackupWindow"),
        "maintenance_window": cluster.get("PreferredMaintenanceWindow"),
        "deletion_protection": bool(cluster.get("DeletionProtection", False)),
        "iam_auth": bool(cluster.get("IAMDatabaseAuthenticationEnabled", False)),
        "cloudwatch_logs_exports": sorted(cluster.get("EnabledCloudwatchLogsExports") or ()),
        "copy_tags_to_snapshot": bool(cluster.get("CopyTagsToSnapshot", False)),
        "backtrack_window": int(cluster.get("BacktrackWindow") or 0),
        "serverless_v2_scaling": _scaling(cluster),
        "tags": rs.user_tags(cluster.get("TagList")),
        # Not carried by a restore unless passed: dual-stack, Extended Support enrolment, the
        # directory (Kerberos) membership, and the IAM roles associated with the cluster (S3
        # import/export, Lambda, Comprehend...), each with its feature.
        "network_type": cluster.get("NetworkType"),
        "engine_lifecycle_support": cluster.get("EngineLifecycleSupport"),
        "domain": {
            k: v
            for k, v in (
                ("Domain", domain.get("Domain")),
                ("IAMRoleName", domain.get("IAMRoleName")),
            )
            if v
        }
        or None,
        "associated_roles": sorted(
            f"{r['RoleArn']}|{r['FeatureName']}" if r.get("FeatureName") else str(r["RoleArn"])
            for r in cluster.get("AssociatedRoles") or ()
            if r.get("RoleArn")
        ),
        # Not restore parameters: set by a modify after the restore (the Data API too, which
        # applications calling rds-data:ExecuteStatement need).
        "database_insights_mode": cluster.get("DatabaseInsightsMode"),
        "http_endpoint": bool(cluster.get("HttpEndpointEnabled", False)),
        # A master password RDS keeps in Secrets Manager: a restore cannot turn it on, so the
        # copy is modified and gets a *new* secret (the ARN changes; see the restore's risk).
        "managed_master_password": bool(cluster.get("MasterUserSecret")),
        "master_user_secret_arn": (cluster.get("MasterUserSecret") or {}).get("SecretArn"),
        "master_user_secret_kms_key": (cluster.get("MasterUserSecret") or {}).get("KmsKeyId"),
    }


def member_settings(db: Mapping[str, Any], *, writer: bool) -> dict[str, Any]:
    """Every setting of one member instance that re-creating it must pass explicitly."""
    return {
        **rs.own_instance_settings(db),
        "promotion_tier": db.get("PromotionTier"),
        "availability_zone": db.get("AvailabilityZone"),
        "writer": writer,
    }


def cluster_members(
    cluster: Mapping[str, Any], instances: Mapping[str, Mapping[str, Any]]
) -> dict[str, dict[str, Any]]:
    """``{instance id: member_settings}`` of a described cluster's members (described or not)."""
    out: dict[str, dict[str, Any]] = {}
    for member in cluster.get("DBClusterMembers") or ():
        mid = str(member["DBInstanceIdentifier"])
        desc = instances.get(mid)
        if desc is not None:
            out[mid] = member_settings(desc, writer=bool(member.get("IsClusterWriter")))
    return dict(sorted(out.items()))


def creation_order(members: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Writer first (AWS makes the first instance of a cluster its writer), then by tier, name."""
    return sorted(
        members,
        key=lambda m: (not members[m]["writer"], members[m].get("promotion_tier") or 0, m),
    )


def restore_cluster_kwargs(
    want: Mapping[str, Any],
    new_id: str,
    snapshot_id: str,
    key_arn: str,
    extra_tags: Mapping[str, str],
) -> dict[str, Any]:
    """RestoreDBClusterFromSnapshot parameters re-creating every restorable cluster setting.

    Nothing is left to a default: without them AWS restores into the default VPC security group
    and the ``default.aurora-*`` cluster parameter group.
    """
    kwargs: dict[str, Any] = {
        "DBClusterIdentifier": new_id,
        "SnapshotIdentifier": snapshot_id,
        "Engine": want["engine"],
        "EngineVersion": want["engine_version"],
        "EngineMode": want.get("engine_mode") or "provisioned",
        "Port": want["port"],
        "KmsKeyId": key_arn,
        "DeletionProtection": bool(want["deletion_protection"]),
        "EnableIAMDatabaseAuthentication": bool(want["iam_auth"]),
        "CopyTagsToSnapshot": bool(want["copy_tags_to_snapshot"]),
        "Tags": rs.tag_list(want.get("tags"), extra_tags),
    }
    optional = {
        "DBSubnetGroupName": want.get("db_subnet_group"),
        "DBClusterParameterGroupName": want.get("cluster_parameter_group"),
        "BacktrackWindow": want.get("backtrack_window") or None,
        "StorageType": want.get("storage_type"),
        "NetworkType": want.get("network_type"),
        "EngineLifecycleSupport": want.get("engine_lifecycle_support"),
    }
    rs.put_given(kwargs, want, optional)
    domain = want.get("domain") or {}
    if domain.get("Domain"):
        kwargs["Domain"] = domain["Domain"]
        if domain.get("IAMRoleName"):
            kwargs["DomainIAMRoleName"] = domain["IAMRoleName"]
    if want.get("associated_roles"):
        kwargs["AssociatedRoles"] = [role_item(r) for r in want["associated_roles"]]
    if want.get("serverless_v2_scaling"):
        kwargs["ServerlessV2ScalingConfiguration"] = dict(want["serverless_v2_scaling"])
    return kwargs


def role_item(entry: str) -> dict[str, str]:
    """``ARN|feature`` (an ``associated_roles`` entry) as an AssociatedRoles item."""
    arn, _, feature = entry.partition("|")
    return {"RoleArn": arn, **({"FeatureName": feature} if feature else {})}


def modify_cluster_kwargs(
    want: Mapping[str, Any], cluster_id: str, got: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """ModifyDBCluster parameters: what a restore cannot set (backup retention and window,
    maintenance window), plus every other modifiable setting in which ``got`` differs."""
    kwargs = rs.backup_and_maintenance_kwargs(want, DBClusterIdentifier=cluster_id)
    if got is None:
        return kwargs

    def differs(key: str) -> bool:
        return want.get(key) != got.get(key)

    simple = {
        "deletion_protection": "DeletionProtection",
        "iam_auth": "EnableIAMDatabaseAuthentication",
        "copy_tags_to_snapshot": "CopyTagsToSnapshot",
        "backtrack_window": "BacktrackWindow",
        "port": "Port",
        "cluster_parameter_group": "DBClusterParameterGroupName",
        "storage_type": "StorageType",
    }
    for key, param in simple.items():
        if differs(key) and want.get(key) is not None:
            kwargs[param] = want[key]
    if differs("vpc_security_group_ids") and want.get("vpc_security_group_ids"):
        kwargs["VpcSecurityGroupIds"] = list(want["vpc_security_group_ids"])
    if differs("serverless_v2_scaling") and want.get("serverless_v2_scaling"):
        kwargs["ServerlessV2ScalingConfiguration"] = dict(want["serverless_v2_scaling"])
    for key, param in (
        ("network_type", "NetworkType"),
        ("engine_lifecycle_support", "EngineLifecycleSupport"),
        ("database_insights_mode", "DatabaseInsightsMode"),
    ):
        if differs(key) and want.get(key):
            kwargs[param] = want[key]
    if differs("domain") and (want.get("domain") or {}).get("Domain"):
        kwargs["Domain"] = want["domain"]["Domain"]
        if want["domain"].get("IAMRoleName"):
            kwargs["DomainIAMRoleName"] = want["domain"]["IAMRoleName"]
    if differs("http_endpoint") and want.get("http_endpoint"):
        kwargs["EnableHttpEndpoint"] = True
    if want.get("managed_master_password") and not got.get("managed_master_password"):
        kwargs["ManageMasterUserPassword"] = True
        if want.get("master_user_secret_kms_key"):
            kwargs["MasterUserSecretKmsKeyId"] = want["master_user_secret_kms_key"]
    if differs("cloudwatch_logs_exports"):
        wanted = set(want.get("cloudwatch_logs_exports") or ())
        have = set(got.get("cloudwatch_logs_exports") or ())
        kwargs["CloudwatchLogsExportConfiguration"] = {
            "EnableLogTypes": sorted(wanted - have),
            "DisableLogTypes": sorted(have - wanted),
        }
    return kwargs


def member_create_kwargs(
    want: Mapping[str, Any],
    new_id: str,
    cluster_id: str,
    engine: str,
    extra_tags: Mapping[str, str],
) -> dict[str, Any]:
    """CreateDBInstance parameters re-creating one member instance in the new cluster.

    No storage, encryption or network parameters: an Aurora instance takes those from its cluster
    (the new cluster is encrypted with the key, so is every instance in it).
    """
    interval = int(want.get("monitoring_interval") or 0)
    kwargs: dict[str, Any] = {
        "DBInstanceIdentifier": new_id,
        "DBClusterIdentifier": cluster_id,
        "Engine": engine,
        "DBInstanceClass": want["instance_class"],
        "PubliclyAccessible": bool(want["publicly_accessible"]),
        "AutoMinorVersionUpgrade": bool(want["auto_minor_version_upgrade"]),
        "MonitoringInterval": interval,
        "EnablePerformanceInsights": bool(want["performance_insights"]),
        "Tags": rs.tag_list(want.get("tags"), extra_tags),
    }
    optional = {
        "PromotionTier": want.get("promotion_tier"),
        "DBParameterGroupName": want.get("parameter_group"),
        "AvailabilityZone": want.get("availability_zone"),
        "CACertificateIdentifier": want.get("ca_certificate"),
        "PreferredMaintenanceWindow": want.get("maintenance_window"),
        "MonitoringRoleArn": want.get("monitoring_role_arn") if interval else None,
    }
    kwargs.update({k: v for k, v in optional.items() if v is not None and v != ""})
    kwargs.update(rs.performance_insights_kwargs(want))
    return kwargs


def member_modify_kwargs(want: Mapping[str, Any], db_id: str) -> dict[str, Any]:
    """ModifyDBInstance parameters setting every modifiable member setting again (a retry after
    creation left something different; the availability zone cannot be modified)."""
    kwargs = member_create_kwargs(want, db_id, "", "", {})
    for key in ("DBClusterIdentifier", "Engine", "Tags", "AvailabilityZone"):
        kwargs.pop(key, None)
    kwargs["ApplyImmediately"] = True
    return kwargs


def _diff(
    keys: tuple[str, ...], want: Mapping[str, Any], got: Mapping[str, Any]
) -> dict[str, dict[str, Any]]:
    return {k: {"want": want.get(k), "got": got.get(k)} for k in keys if want.get(k) != got.get(k)}


def diff_cluster(want: Mapping[str, Any], got: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """``{setting: {"want", "got"}}`` for every compared cluster setting that differs."""
    return _diff(CLUSTER_COMPARED, want, got)


def diff_member(want: Mapping[str, Any], got: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """``{setting: {"want", "got"}}`` for every compared member setting that differs."""
    return _diff(MEMBER_COMPARED, want, got)


def member_names(members: Mapping[str, Any], run_id: str | None) -> dict[str, str]:
    """``{original member id: temporary id}`` of the re-created members."""
    return {m: rs.temp_id(m, run_id) for m in sorted(members)}


# --- estimates ----------------------------------------------------------------------------------

# Aurora snapshots are incremental copies of the cluster volume's pages (quick and mostly
# independent of size); the re-encrypting copy reads the whole volume; a restore builds the
# cluster volume (~15 min) and each instance takes ~10-15 min to create (members in parallel).
# The copy, restore, verify, rename and delete figures are those of an instance.
CLUSTER_RATES = {
    **{k: rs.RATES[k] for k in ("copy", "restore", "verify", "rename", "delete")},
    "snapshot": (120.0, 0.5),
    "modify": (120.0, 0.0),
    "member": (900.0, 0.0),
    "member_extra": (60.0, 0.0),
}


def _rate(name: str, gib: float) -> float:
    return rs.rate(CLUSTER_RATES, name, gib)


def cluster_phase_estimates(volume_gib: float, *, warm_up: bool, members: int) -> dict[str, float]:
    """Estimated seconds per phase of one cluster and the write downtime (final snapshot to the
    end of the cut-over: snapshot, copy, restore, members, verify and four rename rounds)."""
    gib = float(volume_gib or 0)
    est: dict[str, float] = {}
    if warm_up:
        est["warm_up"] = _rate("snapshot", gib) + _rate("copy", gib)
    est["final_snapshot"] = _rate("snapshot", gib)
    # No copy in the window: the restore encrypts the unencrypted final snapshot with the key
    # (RestoreDBClusterFromSnapshot KmsKeyId), building the volume as it would anyway.
    est["final_copy"] = 0.0
    est["restore"] = _rate("restore", gib) + _rate("modify", gib)
    est["members"] = (
        _rate("member", gib) + max(members - 1, 0) * _rate("member_extra", gib) if members else 0
    )
    est["verify"] = _rate("verify", gib)
    # Old members aside, cluster aside, new cluster on, new members on: four rounds.
    est["cut_over"] = 4 * _rate("rename", gib)
    est["cleanup"] = 2 * _rate("delete", gib)
    est["downtime"] = (
        est["final_snapshot"]
        + est["final_copy"]
        + est["restore"]
        + est["members"]
        + est["verify"]
        + est["cut_over"]
    )
    return est


# --- decide -------------------------------------------------------------------------------------


def cluster_actions(
    params: RdsEncryptParams,
    date: str,
    ctx: StepContext,
    facts: Mapping[str, Any],
    cid: str,
    cluster: Any,
) -> list[Action]:
    """The actions of one unencrypted Aurora cluster (eight, and the soak before its cleanup),
    with estimates and the downtime; ``date`` (``YYYYMMDD``, today) names the renamed originals."""
    settings = cluster["settings"]
    members: dict[str, Any] = cluster["members"]
    region = cluster["region"]
    run_id = ctx.run_id
    est = cluster_phase_estimates(
        params.cluster_volume_gib, warm_up=params.warm_up, members=len(members)
    )
    temp = rs.temp_id(cid, run_id) if run_id else None
    names = member_names(members, run_id) if run_id else {}
    related_clusters = set(facts.get("related_cluster_identifiers") or ())
    related = set(facts.get("related_identifiers") or ())
    if temp and temp in related_clusters:
        raise BadInputError(
            f"the temporary identifier {temp} for cluster {cid} is already taken by another "
            "cluster. Delete or rename it, or start a new run (a new run gets a new name)."
        )
    if len(set(names.values())) != len(names):
        raise BadInputError(
            f"the member instances of {cid} have names too long to tell apart once shortened "
            "for the temporary cluster; rename them or encrypt this cluster by hand."
        )
    taken = sorted(n for n in names.values() if n in related)
    if taken:
        raise BadInputError(
            f"the temporary member name(s) {', '.join(taken)} for cluster {cid} are already "
            "taken by other instances. Delete or rename them, or start a new run."
        )
    risks_common: list[str] = rdeps.dependents_risk(
        CLUSTER.label, cid, cluster.get("proxies", []), cluster.get("dms_tasks", [])
    )
    if rs.renamed_id(cid, date) in related_clusters:
        risks_common.append(
            f"a cluster named {rs.renamed_id(cid, date)} exists: a cut-over today would need "
            "that name for the original, and is refused until it is gone"
        )
    for m in members:
        if rs.renamed_id(m, date) in related:
            risks_common.append(
                f"an instance named {rs.renamed_id(m, date)} exists: the cut-over would need "
                f"that name for the member {m}, and is refused until it is gone"
            )
    details = {
        "cluster": True,
        "settings": settings,
        "members": members,
        "volume_gib": params.cluster_volume_gib,
        "estimates": est,
        "temp_id": temp,
        "member_temp_ids": names,
    }
    window = (
        f"downtime window ~{rs.minutes(est['downtime'])}: final snapshot "
        f"~{rs.minutes(est['final_snapshot'])}, no copy (the restore encrypts), "
        f"restore ~{rs.minutes(est['restore'])}, members ~{rs.minutes(est['members'])}, "
        f"cut-over ~{rs.minutes(est['cut_over'])}"
    )
    writer = next((m for m in members if members[m]["writer"]), None)
    out: list[Action] = []
    add = action_adder(
        out, cid, region, details, params.cluster_volume_gib, params.wait_timeout_hours
    )

    size_note = (
        f"Aurora does not report its volume size: estimates assume {params.cluster_volume_gib:g} "
        "GiB (with.cluster_volume_gib); the warm-up measures the real speed"
    )
    if params.warm_up:
        add(
            CLUSTER_WARM_UP,
            f"warm-up: cluster snapshot of {cid}, copied with the KMS key while the application "
            f"runs (~{rs.minutes(est['warm_up'])}; measures this account's speed)",
            est["warm_up"],
            data=True,
            risks=(size_note,),
        )
    add(
        CLUSTER_STOP_WRITES,
        lk.plan_summary(
            params.stop_writes,
            CLUSTER,
            cid,
            settings.get("vpc_security_group_ids") or [],
            window,
            params.lockdown_allow,
        ),
        0.0,
        downtime=est["downtime"],
        gate="stop-writes",
        destructive=True,
        risks=(
            "writes after this point and before the cut-over are lost: stop the application "
            "before approving",
            lk.plan_risk(params.stop_writes, params.lockdown_allow),
            size_note,
            *risks_common,
        ),
        requests=6 if params.stop_writes == lk.MODE_GROUPS else 1,
    )
    add(
        CLUSTER_FINAL_SNAPSHOT,
        f"final cluster snapshot of {cid} (not copied: the restore encrypts it with key "
        f"{params.kms_key})",
        est["final_snapshot"] + est["final_copy"],
        data=True,
    )
    restore_risks = []
    if settings.get("managed_master_password"):
        restore_risks.append(
            f"{cid} keeps its master password in Secrets Manager "
            f"({settings.get('master_user_secret_arn')}); a restore cannot carry that, so the "
            "new cluster is modified with ManageMasterUserPassword and gets a NEW secret: the "
            "secret ARN changes (the new one is in the run's results), and the old secret is "
            f"deleted with the original at cleanup. Point the applications and the IAM "
            f"policies that read {settings.get('master_user_secret_arn')} at the new ARN "
            "before cleanup"
        )
    add(
        CLUSTER_RESTORE,
        f"restore the final snapshot, encrypted with the key, as cluster "
        f"{temp or '(temporary id known at run time)'} "
        f"with every setting of {cid} (cluster parameter group "
        f"{settings['cluster_parameter_group']}, {len(settings['vpc_security_group_ids'])} "
        "security group(s), port, backups, log exports, ...), then modify what a restore "
        "cannot set",
        est["restore"],
        risks=tuple(restore_risks),
    )
    add(
        CLUSTER_MEMBERS,
        f"re-create {len(members)} member instance(s) of {cid} in the new cluster with their "
        f"class, parameter group, tier and AZ (writer {writer or '-'} first)",
        est["members"],
    )
    add(
        CLUSTER_VERIFY,
        f"verify cluster {temp or cid + '-enc-...'}: encrypted with the target key, every "
        f"cluster and member setting equal to {cid}'s, all available",
        est["verify"],
    )
    add(
        CLUSTER_CUT_OVER,
        f"cut over cluster {cid}: its instances and the cluster renamed aside "
        f"(-unencrypted-YYYYMMDD), the new cluster and instances renamed onto the original names",
        est["cut_over"],
        gate="cut-over",
        destructive=True,
        risks=(
            f"renames {cid} -> {rs.renamed_id(cid, 'YYYYMMDD')} and each member M -> "
            "M-unencrypted-YYYYMMDD, then the new cluster and members onto the original names: "
            "the cluster endpoint name stays, but DNS caches and connection pools may point at "
            "the old cluster for a few minutes: restart or reconnect the application",
            "the cluster endpoint answers nothing between the rename of the old cluster and "
            "that of the new one (about two renames)",
            *risks_common,
        ),
    )
    if params.cleanup:
        add_soak(add, CLUSTER, cid, params.soak_s)
        add(
            CLUSTER_CLEANUP,
            f"delete the original cluster {cid} (renamed): its member instances, then the "
            "cluster with a final cluster snapshot, and the unencrypted intermediate snapshots",
            est["cleanup"],
            gate="cleanup",
            destructive=True,
            risks=cleanup_risks(CLUSTER, cid, bool(settings["deletion_protection"])),
        )
    return out
