"""``rds.encrypt``: encrypt unencrypted RDS instances and Aurora clusters by snapshot, encrypted
copy, restore, cut-over. The instance phases are here; the cluster ones are in ``cluster``
(settings, decide) and ``cluster_flow`` (phases). Every phase runs with a ``run.PhaseRun``."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from functools import partial
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from botocore.parsers import ResponseParserError

from migrate.aws import rds as api
from migrate.aws import rds_dependents as rdeps
from migrate.aws import rds_settings as rs
from migrate.aws.arns import arn_region, is_kms_key_arn
from migrate.aws.errors import already_exists
from migrate.aws.iam_scope import Scope
from migrate.aws.kms import check_usable_key
from migrate.aws.policies import identity_policies_naming
from migrate.aws.rds import describe_instance, migrate_tag_keys, tag_value
from migrate.engine.base import Action, Facts, Step, Wait, handles
from migrate.engine.context import StepContext
from migrate.engine.registry import step
from migrate.errors import BadInputError, ParamError, StepFailed
from migrate.steps.rds import cluster as rc
from migrate.steps.rds import lockdown as lk
from migrate.steps.rds import phases as ph
from migrate.steps.rds.cluster_flow import ClusterFlow
from migrate.steps.rds.params import RdsEncryptParams
from migrate.steps.rds.phases import INSTANCE
from migrate.steps.rds.run import PhaseRun, iso, parse, poll_until, seconds
from migrate.util import utcnow

__all__ = ["RdsEncrypt", "RdsEncryptParams"]

KEPT_ORIGINAL = re.compile(r"-unencrypted-\d{8}$")
# Service Quotas: "Manual DB instance snapshots" (100 per Region unless raised).
SNAPSHOT_QUOTA_CODE = "L-272F1212"

# Action kinds, in the order they run for one database.
WARM_UP = "rds.warm_up"
STOP_WRITES = "rds.stop_writes"
FINAL_SNAPSHOT = "rds.final_snapshot"
RESTORE = "rds.restore"
VERIFY = "rds.verify"
CUT_OVER = "rds.cut_over"
REPLICAS = "rds.recreate_replicas"
CLEANUP = "rds.cleanup"


# --- small AWS helpers ---------------------------------------------------------------------------


def _absent(rds: Any, db_id: str) -> bool:
    return describe_instance(rds, db_id) is None


def _present(rds: Any, db_id: str) -> bool:
    return describe_instance(rds, db_id) is not None


def _rename_pending(desc: dict[str, Any] | None) -> bool:
    """True if a rename of this instance was accepted and is not applied yet (AWS shows the new
    identifier under PendingModifiedValues until the instance answers under it)."""
    pending = (desc or {}).get("PendingModifiedValues") or {}
    return bool(pending.get("DBInstanceIdentifier"))


def _stopped(db: dict[str, Any]) -> str | None:
    """Why a stopped instance is not migrated: its rename at the cut-over needs it running, and
    RDS starts a stopped instance by itself after 7 days anyway."""
    status = db.get("DBInstanceStatus")
    if status not in ("stopped", "stopping"):
        return None
    return (
        f"{status}: the cut-over renames it, which RDS refuses unless it is available. Start it "
        f"(aws rds start-db-instance --db-instance-identifier {db['DBInstanceIdentifier']}) "
        "and plan again, or exclude it"
    )


def _pending(db: dict[str, Any]) -> list[str]:
    """Settings RDS will change at the next maintenance window (not the rename, which the
    cut-over itself leaves pending for a moment)."""
    pending = db.get("PendingModifiedValues") or {}
    return sorted(k for k in pending if k != "DBInstanceIdentifier")


def _never_renamed(rds: Any, db_id: str, old_id: str) -> bool:
    """True if the unencrypted original still answers under its name, with no rename pending,
    and nothing answers under the name it would be renamed to."""
    live = describe_instance(rds, db_id)
    return (
        live is not None
        and not live.get("StorageEncrypted")
        and not _rename_pending(live)
        and describe_instance(rds, old_id) is None
    )


def _replica_blocker(db: dict[str, Any], by_id: dict[str, Any]) -> str | None:
    """Why a primary cannot be migrated with its replicas, or None: a cross-Region replica (it
    would follow the renamed original and be orphaned at cleanup), a replica chain, or an Aurora
    read replica cluster."""
    reasons: list[str] = []
    for rid in db.get("ReadReplicaDBInstanceIdentifiers") or ():
        replica = by_id.get(str(rid))
        if replica is None:
            reasons.append(f"cross-Region read replica {rid}")
        elif replica.get("ReadReplicaDBInstanceIdentifiers"):
            chained = ", ".join(replica["ReadReplicaDBInstanceIdentifiers"])
            reasons.append(f"replica chain {rid} -> {chained}")
    for cid in db.get("ReadReplicaDBClusterIdentifiers") or ():
        reasons.append(f"Aurora read replica cluster {cid}")
    if not reasons:
        return None
    return (
        "has " + "; ".join(reasons) + ": not re-created by rds.encrypt yet (it would be "
        "orphaned at the cut-over). Encrypt it by hand, or delete/promote those replicas first"
    )


def _only_once(found: dict[str, Any], ident: str, what: str) -> None:
    """Refuse a name selected in two regions: actions are keyed by name alone."""
    if ident in found:
        raise BadInputError(
            f"{what} {ident} exists in more than one selected region; run one region at a time "
            "(with.regions)."
        )


def _key_for(key: dict[str, Any], region: str) -> str | None:
    """The target key's ARN for ``region``: an alias's key there, else the one key given."""
    arns = key.get("arns") or {}
    return arns.get(region) or key.get("arn")


def _key_in_region(arn: str | None, region: str, where: str, what: str) -> None:
    """Refuse a key of another region: RDS encrypts only with a key of the database's region."""
    if arn and arn_region(arn) not in (None, region):
        raise ParamError(
            f"the KMS key {arn} is not in {region}, where {where} is; RDS needs a key in the "
            f"{what}'s region. Use a key of that region, or an alias that each region has.",
            "kms_key",
        )


# ManageMasterUserPassword on the copy: RDS makes its new secret (rds!db-..., rds!cluster-...)
# with the caller's permissions.
MANAGED_SECRET_ACTIONS = (
    "secretsmanager:CreateSecret",
    "secretsmanager:RotateSecret",
    "secretsmanager:DescribeSecret",
    "secretsmanager:UpdateSecret",
    "secretsmanager:DeleteSecret",
    "secretsmanager:TagResource",
)


@step("rds.encrypt")
class RdsEncrypt(Step):
    """Encrypt unencrypted RDS instances and Aurora clusters: snapshot, encrypted copy, restore, cut-over.

    An RDS instance cannot be encrypted in place. Per selected instance (``names`` globs,
    ``exclude``, ``tags``) the step runs resumable actions in order: an optional warm-up snapshot and
    copy; the **stop-writes** gate (the operator confirms the application stopped writing: the
    downtime starts); the final snapshot, copied with the KMS key; a restore under a temporary
    identifier with every observed setting passed explicitly, then a modify for what a restore cannot
    set; a verification that every setting equals the original's and the storage is encrypted with
    the key; the **cut-over** gate, which renames the original to ``<id>-unencrypted-<yyyymmdd>``
    and the copy to ``<id>`` (the endpoint name stays); re-created read replicas; a soak that
    keeps the renamed original for ``cleanup_soak`` (a day by default); and the
    **cleanup** gate, which deletes the original with a final snapshot. Each gate is approved on
    its own (``migrate approve RUN STEP --target DB`` opens the gate the database waits at).
    Aurora clusters go the same way with cluster snapshots: the copy is restored as a temporary
    cluster with every cluster setting, each member instance is re-created in it with its own
    settings (writer first), and the cut-over renames the cluster and its instances. Already
    encrypted databases are left alone; Multi-AZ DB clusters and Aurora Serverless v1 are
    reported under ``clusters_not_handled``, not changed. ``migrate rollback`` before cleanup
    swaps the names back (or deletes the unused copy).
    """

    Params = RdsEncryptParams
    permissions = (
        "rds:DescribeDBInstances",
        "rds:DescribeDBSnapshots",
        "rds:DescribeDBClusters",
        "rds:CreateDBSnapshot",
        "rds:CopyDBSnapshot",
        "rds:RestoreDBInstanceFromDBSnapshot",
        "rds:ModifyDBInstance",
        "rds:AddTagsToResource",
        "rds:RemoveTagsFromResource",
        "rds:CreateDBInstanceReadReplica",
        "rds:DeleteDBInstance",
        "cloudwatch:GetMetricStatistics",
        "servicequotas:GetServiceQuota",
        "rds:DescribeAccountAttributes",
        "iam:GetAccountAuthorizationDetails",
        "rds:DeleteDBSnapshot",
        "rds:DescribeDBClusterSnapshots",
        "rds:CreateDBClusterSnapshot",
        "rds:CopyDBClusterSnapshot",
        "rds:RestoreDBClusterFromSnapshot",
        "rds:ModifyDBCluster",
        "rds:AddRoleToDBCluster",
        "rds:CreateDBInstance",
        "rds:FailoverDBCluster",
        "rds:DeleteDBCluster",
        "rds:DeleteDBClusterSnapshot",
        *MANAGED_SECRET_ACTIONS,
        "rds:DescribeDBProxies",
        "rds:DescribeDBProxyTargets",
        "dms:DescribeEndpoints",
        "dms:DescribeReplicationTasks",
        "kms:DescribeKey",
        "kms:GetKeyPolicy",
        "kms:CreateGrant",
        "iam:PassRole",
        *lk.PERMISSIONS,
    )
    # Enhanced monitoring's role, the directory (Kerberos) role, Aurora's associated roles.
    passes_roles_to = (
        "monitoring.rds.amazonaws.com",
        "directoryservice.rds.amazonaws.com",
        "rds.amazonaws.com",
    )
    outputs = ("encrypted",)
    action_kinds = (
        WARM_UP,
        STOP_WRITES,
        FINAL_SNAPSHOT,
        RESTORE,
        VERIFY,
        CUT_OVER,
        REPLICAS,
        ph.SOAK,
        CLEANUP,
        *rc.KINDS,
    )
    example = """\
- id: rds
  uses: rds.encrypt
  with:
    names: ["legacy-*"]
    kms_key: "{{ steps.kms.key_arn }}"
    warm_up: true
"""
    params: RdsEncryptParams

    def permission_scopes(self) -> list[Scope]:
        """The snapshots it takes, copies and deletes are all named ``migrate-<run>-...``; the
        security groups it changes are its own lockdown groups (by their tags)."""
        ours = ("migrate-*",)
        return [
            Scope(
                (
                    "rds:CreateDBSnapshot",
                    "rds:CopyDBSnapshot",
                    "rds:DeleteDBSnapshot",
                    "rds:CreateDBClusterSnapshot",
                    "rds:CopyDBClusterSnapshot",
                    "rds:DeleteDBClusterSnapshot",
                ),
                {"SnapshotName": ours, "ClusterSnapshotName": ours},
            ),
            # The lockdown group is created with its tags, and only a group carrying them is
            # opened to lockdown_allow or deleted: never another security group of the account.
            Scope(
                ("ec2:AuthorizeSecurityGroupIngress", "ec2:DeleteSecurityGroup"),
                condition={"StringEquals": {f"aws:ResourceTag/{rs.TAG_ROLE}": "lockdown"}},
            ),
            Scope(
                ("ec2:CreateTags",),
                condition={"StringEquals": {"ec2:CreateAction": "CreateSecurityGroup"}},
            ),
            # The only secrets it touches are those RDS makes for a managed master password.
            Scope(MANAGED_SECRET_ACTIONS, {"SecretId": ("rds!*",)}),
        ]

    # The clock of waits and measurements; a test replaces it to step past a deadline.
    clock: Callable[[], datetime] = staticmethod(utcnow)

    # --- observe -----------------------------------------------------------------------------------
    def _regions(self, ctx: StepContext) -> list[str]:
        return list(self.params.regions) or list(ctx.regions)

    def observe(self, ctx: StepContext) -> Facts:
        """Every setting of each selected instance that a restore does not carry, and its replicas."""
        instances: dict[str, Any] = {}
        clusters: dict[str, Any] = {}
        not_handled: dict[str, str] = {}
        instances_not_handled: dict[str, str] = {}
        seen: set[str] = set()
        existing: list[str] = []
        existing_clusters: list[str] = []
        kept: list[str] = []
        key = self._observe_key(ctx)
        for region in self._regions(ctx):
            rds = ctx.client("rds", region)
            all_dbs: list[dict[str, Any]] = []
            for page in rds.get_paginator("describe_db_instances").paginate():
                all_dbs.extend(page.get("DBInstances", []))
            by_id = {d["DBInstanceIdentifier"]: d for d in all_dbs}
            existing.extend(by_id)
            for db_id, db in sorted(by_id.items()):
                seen.add(db_id)
                if not self.params.name_matches(db_id) or db.get("DBClusterIdentifier"):
                    continue
                settings = rs.instance_settings(db)
                if db.get("ReadReplicaSourceDBInstanceIdentifier"):
                    # Re-created with its primary; one whose primary is not handled here is
                    # reported, never silently left unencrypted (an old replica this step
                    # renamed aside is deleted at cleanup).
                    why = None if KEPT_ORIGINAL.search(db_id) else self._orphan_replica(db, by_id)
                    if why and (not self.params.tags or self.params.tags_match(settings["tags"])):
                        instances_not_handled[db_id] = why
                    continue
                if KEPT_ORIGINAL.search(db_id):
                    kept.append(db_id)  # an original this step renamed aside, kept until cleanup
                    continue
                if self.params.tags and not self.params.tags_match(settings["tags"]):
                    continue
                blocker = _replica_blocker(db, by_id) or _stopped(db)
                if blocker and not db.get("StorageEncrypted"):
                    instances_not_handled[db_id] = blocker
                    continue
                _only_once(instances, db_id, "instance")
                instances[db_id] = {
                    "region": region,
                    "address": (db.get("Endpoint") or {}).get("Address"),
                    "status": db.get("DBInstanceStatus"),
                    "resource_id": db.get("DbiResourceId"),
                    "pending_modifications": _pending(db),
                    "encrypted": bool(db.get("StorageEncrypted")),
                    "kms_key_id": db.get("KmsKeyId"),
                    "settings": settings,
                    "replicas": {
                        rid: rs.instance_settings(by_id[rid])
                        for rid in sorted(db.get("ReadReplicaDBInstanceIdentifiers") or ())
                        if rid in by_id
                    },
                }
            for page in rds.get_paginator("describe_db_clusters").paginate():
                for cluster in page.get("DBClusters", []):
                    self._observe_cluster(cluster, region, by_id, clusters, not_handled, kept, seen)
                    existing_clusters.append(str(cluster["DBClusterIdentifier"]))
        warnings = self.params.unmatched(
            seen, "RDS instance or DB cluster", ", ".join(self._regions(ctx))
        )
        databases = [*instances.items(), *clusters.items()]
        compliant = sorted(
            {
                i
                for i, d in databases
                if d["encrypted"]
                and (not key.get("arns") or d["kms_key_id"] == _key_for(key, d["region"]))
            }
        )
        other_key = sorted({i for i, d in databases if d["encrypted"] and i not in compliant})
        if ctx.planning:
            self._check_snapshot_quota(ctx, instances)
            self._check_cluster_snapshot_quota(ctx, clusters)
            lk.refuse_leftover_locks(ctx, {**instances, **clusters})
        self._policies_naming_resource_ids(ctx, instances)
        self._dependents(ctx, instances, clusters)
        members = [m for c in clusters.values() for m in c["members"]]
        prefixes = tuple(f"{i}-" for i in [*instances, *members])
        cluster_prefixes = tuple(f"{c}-" for c in clusters)
        return {
            "target_key": key,
            "instances": instances,
            "clusters": clusters,
            "compliant": compliant,
            "encrypted_with_other_key": other_key,
            "clusters_not_handled": not_handled,
            "instances_not_handled": instances_not_handled,
            "warnings": [
                *warnings,
                *(
                    f"{i}: {why}; not changed"
                    for i, why in sorted({**instances_not_handled, **not_handled}.items())
                ),
            ],
            "kept_originals": sorted(kept),
            "related_identifiers": sorted(e for e in existing if e.startswith(prefixes)),
            "related_cluster_identifiers": sorted(
                c for c in existing_clusters if c.startswith(cluster_prefixes)
            ),
        }

    def _orphan_replica(self, db: dict[str, Any], by_id: dict[str, Any]) -> str | None:
        """Why an unencrypted read replica is left alone: its primary is not migrated here."""
        if db.get("StorageEncrypted"):
            return None
        source = str(db["ReadReplicaSourceDBInstanceIdentifier"])
        primary = by_id.get(source)
        if primary is None:
            return (
                f"read replica of {source} in another Region: encrypt the primary there (its "
                "replicas are re-created with it), or promote this replica and select it"
            )
        if not self.params.name_matches(source) or (
            self.params.tags and not self.params.tags_match(rs.user_tags(primary.get("TagList")))
        ):
            return (
                f"read replica of {source}, which is not selected: select {source} (its "
                "replicas are re-created with it, encrypted)"
            )
        if primary.get("ReadReplicaSourceDBInstanceIdentifier"):
            return f"replica of the replica {source} (a chain): not handled by rds.encrypt yet"
        return None

    def _observe_cluster(
        self,
        cluster: dict[str, Any],
        region: str,
        by_id: dict[str, dict[str, Any]],
        clusters: dict[str, Any],
        not_handled: dict[str, str],
        kept: list[str],
        seen: set[str],
    ) -> None:
        """One described cluster into the facts: handled, not handled, kept aside or ignored."""
        cid = str(cluster["DBClusterIdentifier"])
        seen.add(cid)
        if not self.params.name_matches(cid):
            return
        if KEPT_ORIGINAL.search(cid):
            kept.append(cid)  # an original cluster this step renamed aside, kept until cleanup
            return
        settings = rc.cluster_settings(cluster)
        if self.params.tags and not self.params.tags_match(settings["tags"]):
            return
        encrypted = bool(cluster.get("StorageEncrypted"))
        reason = None if encrypted else rc.not_handled_reason(cluster)
        if reason:
            not_handled[cid] = reason
            return
        _only_once(clusters, cid, "cluster")
        clusters[cid] = {
            "region": region,
            "address": cluster.get("Endpoint"),
            "status": cluster.get("Status"),
            "encrypted": encrypted,
            "kms_key_id": cluster.get("KmsKeyId") if encrypted else None,
            "settings": settings,
            "members": rc.cluster_members(cluster, by_id),
        }

    def _check_snapshot_quota(self, ctx: StepContext, instances: dict[str, Any]) -> None:
        """While planning: refuse a plan whose manual snapshots would not fit the account's
        quota (Service Quotas ``L-272F1212``, 100 unless raised). Each instance takes up to five
        at once (warm-up and final, each with its encrypted copy, and the original's final
        snapshot at cleanup); hitting the quota mid-night fails the final snapshot after writes
        stopped. Only while planning: a run's own snapshots would be counted twice."""
        per_region: dict[str, int] = {}
        for db in instances.values():
            if not db["encrypted"]:
                per_region[db["region"]] = per_region.get(db["region"], 0) + (
                    5 if self.params.warm_up else 3
                )
        for region, needed in sorted(per_region.items()):
            rds = ctx.client("rds", region)
            existing = sum(
                len(page.get("DBSnapshots", []))
                for page in rds.get_paginator("describe_db_snapshots").paginate(
                    SnapshotType="manual"
                )
            )
            quota, source = 100, "the default; Service Quotas did not answer"
            try:
                answer = ctx.client("service-quotas", region).get_service_quota(
                    ServiceCode="rds", QuotaCode=SNAPSHOT_QUOTA_CODE
                )
                quota, source = int(answer["Quota"]["Value"]), "Service Quotas"
            except ClientError:  # not granted, or not known to this endpoint: the default
                pass
            if existing + needed > quota:
                raise BadInputError(
                    f"rds.encrypt in {region} needs up to {needed} manual DB snapshots at once "
                    f"and {existing} exist; the quota is {quota} ({source}). The final snapshot "
                    "would fail after writes stopped. Delete manual snapshots you no longer "
                    "need, request a higher quota (Service Quotas, RDS, 'Manual DB instance "
                    f"snapshots', {SNAPSHOT_QUOTA_CODE}), or encrypt fewer databases per run "
                    "(with.names), then plan again."
                )

    def _policies_naming_resource_ids(self, ctx: StepContext, instances: dict[str, Any]) -> None:
        """For each unencrypted instance with IAM database authentication: the identity
        policies that name its DbiResourceId (``rds-db:connect`` on ``dbuser:<id>/<user>``),
        into its facts as ``iam_policies`` (None when IAM would not say). The encrypted copy
        gets a new id, so exactly those policies let nobody in after the cut-over."""
        wanted = {
            db_id: str(db["resource_id"])
            for db_id, db in instances.items()
            if not db["encrypted"] and db["settings"].get("iam_auth") and db.get("resource_id")
        }
        if not wanted:
            return
        try:
            found = identity_policies_naming(ctx.client("iam"), sorted(set(wanted.values())))
        except (ClientError, BotoCoreError):
            # Not granted iam:GetAccountAuthorizationDetails, or throttled past the retries: the
            # look-up only feeds a message, which then says IAM would not list them.
            found = None
        for db_id, rid in wanted.items():
            instances[db_id]["iam_policies"] = None if found is None else found.get(rid, [])

    def _dependents(
        self, ctx: StepContext, instances: dict[str, Any], clusters: dict[str, Any]
    ) -> None:
        """For each unencrypted database: the RDS Proxies that target it and the DMS tasks that
        use it (``proxies``, ``dms_tasks`` in its facts; None when AWS would not say): neither
        follows a rename-swap (:mod:`migrate.aws.rds_dependents`)."""
        todo = {i: d for i, d in [*instances.items(), *clusters.items()] if not d["encrypted"]}
        for region in sorted({d["region"] for d in todo.values()}):
            here = {i: d for i, d in todo.items() if d["region"] == region}
            proxies = rdeps.proxy_targets(ctx.client("rds", region), here)
            tasks = rdeps.dms_tasks(
                ctx.client("dms", region), {i: d.get("address") or "" for i, d in here.items()}
            )
            for db_id, db in here.items():
                db["proxies"] = None if proxies is None else proxies.get(db_id, [])
                db["dms_tasks"] = None if tasks is None else tasks.get(db_id, [])

    def _check_cluster_snapshot_quota(self, ctx: StepContext, clusters: dict[str, Any]) -> None:
        """While planning, as for instances: each unencrypted cluster takes up to four manual
        cluster snapshots at once (the warm-up and its encrypted copy, the final one, and the
        original's final one at cleanup). RDS itself says the quota and how many exist
        (DescribeAccountAttributes ``ManualClusterSnapshots``); where it does not answer, the
        documented default (100) and a count of the manual cluster snapshots."""
        per_region: dict[str, int] = {}
        for cluster in clusters.values():
            if not cluster["encrypted"]:
                per_region[cluster["region"]] = per_region.get(cluster["region"], 0) + (
                    4 if self.params.warm_up else 2
                )
        for region, needed in sorted(per_region.items()):
            rds = ctx.client("rds", region)
            quota = used = None
            try:
                for q in rds.describe_account_attributes().get("AccountQuotas", []):
                    if q.get("AccountQuotaName") == "ManualClusterSnapshots":
                        quota, used = int(q["Max"]), int(q["Used"])
            except (ClientError, BotoCoreError, ResponseParserError):
                pass  # not granted, or not known to this endpoint (moto answers an HTML 500)
            source = "RDS DescribeAccountAttributes"
            if quota is None or used is None:
                quota, source = 100, "the default; RDS did not say"
                used = sum(
                    len(page.get("DBClusterSnapshots", []))
                    for page in rds.get_paginator("describe_db_cluster_snapshots").paginate(
                        SnapshotType="manual"
                    )
                )
            if used + needed > quota:
                raise BadInputError(
                    f"rds.encrypt in {region} needs up to {needed} manual DB cluster snapshots at "
                    f"once and {used} exist; the quota is {quota} ({source}). The final cluster "
                    "snapshot would fail after writes stopped. Delete manual cluster snapshots you "
                    "no longer need, request a higher quota (Service Quotas, RDS, 'Manual DB "
                    "cluster snapshots'), or encrypt fewer clusters per run (with.names), then "
                    "plan again."
                )

    def _observe_key(self, ctx: StepContext) -> dict[str, Any]:
        """The target key; refused (ParamError) when RDS could not encrypt with it in one of the
        step's regions: missing, not Enabled, not symmetric, or its policy allows other
        services only."""
        key = self.params.kms_key
        if not ctx.is_known(key):
            return {"arn": None, "state": None, "known": False}
        regions = self._regions(ctx)
        checked = check_usable_key(ctx, key, regions, "rds")
        # An alias names one key per region: each region's databases use that region's key. A
        # region whose key the migrator may not describe is left to the restore's own call.
        arns = {region: str(meta["Arn"]) for region, meta in checked.items() if meta.get("Arn")}
        if is_kms_key_arn(key):
            arns = {arn_region(key) or regions[0]: key}
        states = [meta.get("KeyState") for meta in checked.values()]
        first = arns.get(regions[0]) or next(iter(arns.values()), None)
        return {"arn": first, "arns": arns, "state": states[0] if states else None, "known": True}

    # --- decide ------------------------------------------------------------------------------------
    def decide(self, ctx: StepContext, facts: Facts) -> list[Action]:
        """Up to nine actions per unencrypted instance (the soak and the cleanup are optional),
        with phase estimates and the downtime window."""
        key = facts["target_key"]
        actions: list[Action] = []
        for db_id, db in facts["instances"].items():
            if db["encrypted"]:
                continue
            _key_in_region(_key_for(key, db["region"]), db["region"], db_id, "instance")
            actions.extend(self._db_actions(ctx, facts, db_id, db))
        for cid, cluster in facts.get("clusters", {}).items():
            if cluster["encrypted"]:
                continue
            _key_in_region(
                _key_for(key, cluster["region"]), cluster["region"], f"cluster {cid}", "cluster"
            )
            twin = facts["instances"].get(cid)
            if twin is not None and not twin["encrypted"]:
                raise BadInputError(
                    f"an instance and a cluster are both named {cid}; their phases would share "
                    "one target. Encrypt them in two steps: exclude the name in one and select "
                    "it only in the other (with.exclude / with.names)... or rename one of them."
                )
            actions.extend(
                rc.cluster_actions(self.params, f"{self.clock():%Y%m%d}", ctx, facts, cid, cluster)
            )
        return actions

    def _db_actions(
        self, ctx: StepContext, facts: Facts, db_id: str, db: dict[str, Any]
    ) -> list[Action]:
        settings = db["settings"]
        replicas = db["replicas"]
        gib = float(settings.get("allocated_storage") or 0)
        est = rs.phase_estimates(gib, warm_up=self.params.warm_up, replicas=len(replicas))
        region = db["region"]
        temp = rs.temp_id(db_id, ctx.run_id) if ctx.run_id else None
        related = set(facts["related_identifiers"])
        if temp and temp in related:
            raise BadInputError(
                f"the temporary identifier {temp} for {db_id} is already taken by another "
                "instance. Delete or rename it, or start a new run (a new run gets a new name)."
            )
        today = rs.renamed_id(db_id, f"{self.clock():%Y%m%d}")
        risks_common: list[str] = rdeps.dependents_risk(
            "", db_id, db.get("proxies", []), db.get("dms_tasks", [])
        )
        status = db.get("status") or "available"
        if db.get("pending_modifications") and status != "available":
            # Not waiting for a maintenance window: RDS is applying them now (an
            # --apply-immediately modify). Once it is done they are current settings and the
            # copy gets them; planning now would name settings that are about to change.
            raise BadInputError(
                f"{db_id} is {status}: RDS is applying modifications to it now "
                f"({', '.join(db['pending_modifications'])}). Wait until it is available "
                f"(aws rds wait db-instance-available --db-instance-identifier {db_id}), then "
                "plan again: the encrypted copy then gets the new settings."
            )
        if db.get("pending_modifications") and not self.params.accept_pending_modifications:
            raise BadInputError(
                f"{db_id} has modifications pending for its next maintenance window "
                f"({', '.join(db['pending_modifications'])}). The encrypted copy would be "
                "restored with the current settings, so they would be lost at the cut-over. "
                f"Apply them first (aws rds modify-db-instance --db-instance-identifier {db_id} "
                "--apply-immediately with the same changes), or set "
                "accept_pending_modifications: true in the step's `with:` to migrate without "
                "them (the plan then names them), and plan again."
            )
        if db.get("pending_modifications"):
            risks_common.append(
                f"{db_id} has modifications pending for its next maintenance window "
                f"({', '.join(db['pending_modifications'])}): the encrypted copy is restored "
                "with the current settings, so they are lost at the cut-over. Apply them first "
                "(modify-db-instance --apply-immediately) or again after the cut-over"
            )
        if today in related:
            risks_common.append(
                f"an instance named {today} exists: a cut-over today would need that name for "
                "the original, and is refused until it is gone"
            )
        details = {
            "settings": settings,
            "replicas": replicas,
            "allocated_gib": gib,
            "estimates": est,
            "temp_id": temp,
            "resource_id": db.get("resource_id"),
            "iam_policies": db.get("iam_policies"),
        }
        if settings.get("iam_auth"):
            policies = db.get("iam_policies")
            named = (
                "IAM would not list the policies that name it (grant "
                "iam:GetAccountAuthorizationDetails to see them here)"
                if policies is None
                else f"the policies naming it: {', '.join(policies)}"
                if policies
                else "no identity policy of this account names it"
            )
            risks_common.append(
                f"IAM database authentication is on: rds-db:connect policies name {db_id}'s "
                f"resource id {db.get('resource_id') or '(unknown)'}, which the encrypted copy "
                "does not keep; from the cut-over those policies let nobody in until they name "
                f"the new id (the run lists it among what remains); {named}"
            )
        downtime = est["downtime"]
        window = (
            f"downtime window ~{rs.minutes(downtime)}: final snapshot "
            f"~{rs.minutes(est['final_snapshot'])}, copy ~{rs.minutes(est['final_copy'])}, "
            f"restore ~{rs.minutes(est['restore'])}, cut-over ~{rs.minutes(est['cut_over'])}"
        )
        out: list[Action] = []
        add = ph.action_adder(out, db_id, region, details, gib, self.params.wait_timeout_hours)
        if self.params.warm_up:
            add(
                WARM_UP,
                f"warm-up: snapshot {db_id} and copy it with the KMS key while the application "
                f"runs (~{rs.minutes(est['warm_up'])}; measures this account's speed)",
                est["warm_up"],
                data=True,
            )
        mode = self.params.stop_writes
        add(
            STOP_WRITES,
            lk.plan_summary(
                mode,
                INSTANCE,
                db_id,
                settings["vpc_security_group_ids"],
                window,
                self.params.lockdown_allow,
            ),
            0.0,
            downtime=downtime,
            gate="stop-writes",
            destructive=True,
            risks=(
                "writes after this point and before the cut-over are lost: stop the application "
                "before approving",
                lk.plan_risk(mode, self.params.lockdown_allow),
                *risks_common,
            ),
            requests=6 if mode == lk.MODE_GROUPS else 1,
        )
        add(
            FINAL_SNAPSHOT,
            f"final snapshot of {db_id}, copied with key {self.params.kms_key}",
            est["final_snapshot"] + est["final_copy"],
            data=True,
        )
        restore_risks = [
            "storage of a restored instance is loaded lazily from S3: first reads of each "
            "block are slow until touched (warm the hot tables after the cut-over)",
        ]
        if settings.get("managed_master_password"):
            restore_risks.append(
                f"{db_id} keeps its master password in Secrets Manager "
                f"({settings.get('master_user_secret_arn')}); a restore cannot carry that, so "
                "the copy is modified with ManageMasterUserPassword and gets a NEW secret: the "
                "secret ARN changes (the new one is in the run's results), and the old secret "
                f"is deleted with the original at cleanup. Point the applications and the IAM "
                f"policies that read {settings.get('master_user_secret_arn')} at the new ARN "
                "before cleanup"
            )
        add(
            RESTORE,
            f"restore the encrypted copy as {temp or '(temporary id known at run time)'} with "
            f"every setting of {db_id} ({settings['instance_class']}, "
            f"{'Multi-AZ' if settings['multi_az'] else 'single-AZ'}, parameter group "
            f"{settings['parameter_group']}, {len(settings['vpc_security_group_ids'])} security "
            f"group(s)), then modify what a restore cannot set",
            est["restore"],
            risks=tuple(restore_risks),
        )
        add(
            VERIFY,
            f"verify the copy: encrypted with the target key, every setting equal to {db_id}'s",
            est["verify"],
        )
        risks = [
            f"renames {db_id} -> {rs.renamed_id(db_id, 'YYYYMMDD')} and the copy -> {db_id}; the "
            "endpoint name stays, but DNS caches and connection pools may point at the old "
            "instance for a few minutes: restart or reconnect the application",
            *risks_common,
        ]
        if replicas:
            risks.append(
                f"read replicas {', '.join(replicas)} are renamed aside and re-created on the new "
                "primary after the cut-over; reads from them are unavailable until then"
            )
        add(
            CUT_OVER,
            f"cut over {db_id}: rename the original aside, the encrypted copy to {db_id}",
            est["cut_over"],
            gate="cut-over",
            destructive=True,
            risks=tuple(risks),
        )
        if replicas:
            add(
                REPLICAS,
                f"re-create read replica(s) {', '.join(replicas)} on the encrypted {db_id}",
                est["replicas"],
            )
        if self.params.cleanup:
            ph.add_soak(add, INSTANCE, db_id, self.params.soak_s)
            add(
                CLEANUP,
                f"delete the original {db_id} (renamed) with a final snapshot, and the "
                "unencrypted intermediate snapshots",
                est["cleanup"],
                gate="cleanup",
                destructive=True,
                risks=ph.cleanup_risks(INSTANCE, db_id, bool(settings["deletion_protection"])),
            )
        return out

    # --- act ---------------------------------------------------------------------------------------
    # One phase of one database per action; phases that wait return a Wait.
    def _run(self, ctx: StepContext, action: Action) -> PhaseRun:
        return PhaseRun(ctx, action, self.params, self.clock)

    @handles(*rc.KINDS)
    def _cluster_phase(self, ctx: StepContext, action: Action) -> Wait | None:
        return ClusterFlow(self.params).act(
            self._run(ctx, action), ctx.client("rds", action.region)
        )

    @handles(WARM_UP)
    def _warm_up(self, ctx: StepContext, action: Action) -> Wait | None:
        return self._snapshot_and_copy(self._run(ctx, action), "warmup")

    @handles(STOP_WRITES)
    def _stop_writes(self, ctx: StepContext, action: Action) -> Wait | None:
        run = self._run(ctx, action)
        if self.params.stop_writes == lk.MODE_GROUPS:
            locking = lk.lock(run, run.rds(), INSTANCE, self.params.lockdown_allow)
            if locking:
                return locking
        return ph.stop_writes(run)

    @handles(FINAL_SNAPSHOT)
    def _final_snapshot(self, ctx: StepContext, action: Action) -> Wait | None:
        return self._snapshot_and_copy(self._run(ctx, action), "final")

    @handles(RESTORE)
    def _restore_phase(self, ctx: StepContext, action: Action) -> Wait | None:
        return self._restore(self._run(ctx, action), ctx.client("rds", action.region))

    @handles(VERIFY)
    def _verify_phase(self, ctx: StepContext, action: Action) -> Wait | None:
        return self._verify_copy(self._run(ctx, action), ctx.client("rds", action.region))

    @handles(CUT_OVER)
    def _cut_over_phase(self, ctx: StepContext, action: Action) -> Wait | None:
        return self._cut_over(self._run(ctx, action), ctx.client("rds", action.region))

    @handles(REPLICAS)
    def _replicas_phase(self, ctx: StepContext, action: Action) -> Wait | None:
        return self._replicas(self._run(ctx, action), ctx.client("rds", action.region))

    @handles(ph.SOAK)
    def _soak_phase(self, ctx: StepContext, action: Action) -> Wait | None:
        return ph.soak(self._run(ctx, action))

    @handles(CLEANUP)
    def _cleanup_phase(self, ctx: StepContext, action: Action) -> Wait | None:
        return self._cleanup(self._run(ctx, action), ctx.client("rds", action.region))

    # phases -------------------------------------------------------------------------------------
    def _snapshot_and_copy(self, run: PhaseRun, phase: str) -> Wait | None:
        gib = float(run.action.details.get("allocated_gib") or 0)
        return ph.snapshot_and_copy(run, run.rds(), phase, INSTANCE, allocated_gib=gib)

    def _original_settings(self, run: PhaseRun, rds: Any) -> dict[str, Any]:
        """The live original's settings (it stays untouched until cut-over, but for the lockdown
        of its security groups, undone here), or the observed."""
        action = run.action
        original = describe_instance(rds, action.target)
        if original is not None and not original.get("StorageEncrypted"):
            return lk.unlocked(run.ctx, action.target, rs.instance_settings(original))
        return dict(action.details["settings"])

    def _restore(self, run: PhaseRun, rds: Any) -> Wait | None:
        ctx, action = run.ctx, run.action
        db_id = action.target
        temp = rs.temp_id(db_id, ctx.run_id)
        state = run.state
        want = self._original_settings(run, rds)
        copy = ph.start_restore(
            run,
            rds,
            INSTANCE,
            lambda new_id, snap_id: rds.restore_db_instance_from_db_snapshot(
                **rs.restore_kwargs(want, new_id, snap_id, run.tags("encrypted-copy"))
            ),
        )
        if isinstance(copy, Wait):
            return copy
        got = rs.instance_settings(copy)
        diffs = rs.diff_settings(want, got)
        if diffs:
            ph.modify_again(
                run,
                "modify_attempts",
                lambda attempts: (
                    f"{temp} still differs from {db_id} after {attempts} modifications: "
                    + ph.describe_diffs(diffs)
                    + ". Fix the copy by hand and resume, or roll back."
                ),
                lambda: rds.modify_db_instance(**rs.modify_kwargs(want, temp, got)),
            )
            copy = describe_instance(rds, temp) or {}
            if (
                copy.get("DBInstanceStatus") != "available"
                or copy.get("PendingModifiedValues")
                or rs.diff_settings(want, rs.instance_settings(copy))
            ):
                return run.wait(f"{temp} is being modified")
            got = rs.instance_settings(copy)
        started = state.get("restore_started_at") or state["started_at"]
        secrets: dict[str, Any] = {}
        if want.get("managed_master_password"):
            # The ARN applications must switch to (an ARN, never the secret's value).
            secrets = {"master_user_secret_arn": got.get("master_user_secret_arn")}
            run.ctx.record_result(**secrets)
        run.record_phase(
            "restore",
            started,
            restore_s=seconds(parse(started), parse(state["restore_done_at"])),
            temporary_id=temp,
            **secrets,
        )
        return None

    def _check_copy(self, run: PhaseRun, rds: Any, copy_id: str) -> None:
        """Raise unless ``copy_id`` is available, encrypted with the key, and equal in settings."""
        action = run.action
        copy = describe_instance(rds, copy_id)
        if copy is None:
            raise StepFailed(f"the encrypted copy {copy_id} of {action.target} does not exist.")
        problems = ph.key_problems(INSTANCE, copy, run.key_arn())
        want = self._original_settings(run, rds)
        problems += ph.diff_lines(rs.diff_settings(want, rs.instance_settings(copy)))
        ph.refuse_unequal(
            problems,
            f"{copy_id} is not an exact encrypted copy of {action.target}",
            "Fix it by hand and resume, or roll back; the original is untouched.",
        )

    def _verify_copy(self, run: PhaseRun, rds: Any) -> Wait | None:
        ctx, action = run.ctx, run.action
        started = iso(self.clock())
        self._check_copy(run, rds, rs.temp_id(action.target, ctx.run_id))
        run.record_phase(
            "verify",
            started,
            duration=False,
            settings_compared=len(rs.COMPARED),
        )
        return None

    def _cut_over(self, run: PhaseRun, rds: Any) -> Wait | None:
        ctx, action = run.ctx, run.action
        db_id = action.target
        temp = rs.temp_id(db_id, ctx.run_id)
        state = run.state
        if "renamed_id" not in state:
            # Fixed once: a resume after midnight must look for the same name.
            state["renamed_id"] = rs.renamed_id(db_id, f"{self.clock():%Y%m%d}")
            run.save()
        old_id = state["renamed_id"]
        live = describe_instance(rds, db_id)
        old = describe_instance(rds, old_id)
        new = describe_instance(rds, temp)
        why = ph.busy(INSTANCE, ((db_id, live), (old_id, old), (temp, new)))
        if why:
            return run.wait(why)
        if live is not None and live.get("StorageEncrypted"):
            if tag_value(live, rs.TAG_RUN) != ctx.run_id and not state.get("tags_moved"):
                raise StepFailed(
                    f"{db_id} is encrypted but is not this run's copy; stopping the cut-over. "
                    "Check what happened to the instances, then resume or roll back."
                )
            self._move_bookkeeping_tags(run, rds, live, old_id)
            self._cut_over_done(run, old_id, live)
            return None
        if live is not None:
            # The original is still live under its name: first step of the swap.
            if old is not None:
                raise StepFailed(
                    f"cannot rename {db_id} to {old_id}: an instance with that name exists (AWS "
                    "refuses such a rename). Nothing was changed. Rename or delete "
                    f"{old_id}, then resume."
                )
            if new is None:
                raise StepFailed(f"the encrypted copy {temp} is missing; resume the restore first.")
            if _rename_pending(live):
                return run.wait(f"renaming {db_id} to {old_id}")
            # Issued or not before a crash, the original still answers under its name with no
            # rename pending: (re-)issue it.
            self._check_copy(run, rds, temp)  # last look before the point of no return
            ph.check_quiet_after_snapshot(run, INSTANCE, db_id)
            state["cut_over_started_at"] = iso(self.clock())
            state["rename_original_issued"] = True
            run.save()
            # Intent first: a crash right after the rename must still leave a run that knows
            # where the original went (cleanup and rollback read this record).
            run.record("rds:renamed", db_id, "modified", renamed_to=old_id, copy=temp)
            ph.rename(rds, INSTANCE, db_id, old_id)
            live = describe_instance(rds, db_id)
            new = describe_instance(rds, temp)
            if live is not None or describe_instance(rds, old_id) is None:
                return run.wait(f"renaming {db_id} to {old_id}")
        # The name is free: move the copy onto it. Recorded again from what is observed (the
        # original is aside), whatever moment an earlier crash hit.
        if old is not None:
            run.record("rds:renamed", db_id, "modified", renamed_to=old_id, copy=temp)
        if new is None and state.get("rename_copy_issued"):
            return run.wait(f"renaming {temp} to {db_id}")
        if new is None:
            raise StepFailed(
                f"{db_id} was renamed to {old_id} but the copy {temp} is missing. Run "
                "`migrate rollback` to put the original back under its name."
            )
        if not _rename_pending(new):
            state["rename_copy_issued"] = True
            run.save()
            ph.rename(rds, INSTANCE, temp, db_id)
        live = describe_instance(rds, db_id)
        if live is None or live.get("DBInstanceStatus") != "available":
            return run.wait(f"renaming {temp} to {db_id}")
        self._move_bookkeeping_tags(run, rds, live, old_id)
        self._cut_over_done(run, old_id, live)
        return None

    def _move_bookkeeping_tags(
        self, run: PhaseRun, rds: Any, live: dict[str, Any], old_id: str
    ) -> None:
        """The database under the original name ends with exactly the original's tags; the
        ``migrate:*`` bookkeeping moves to the retired original (and stays on the snapshots and
        in the state store). Flagged first: a resume must still know the copy as this run's."""
        run.state["tags_moved"] = True
        run.save()
        old = describe_instance(rds, old_id)
        if old is not None and old.get("DBInstanceArn"):
            api.add_tags_to_resource(rds, str(old["DBInstanceArn"]), run.tags("retired-original"))
        if live.get("DBInstanceArn"):
            api.remove_tags_from_resource(rds, str(live["DBInstanceArn"]), migrate_tag_keys(live))

    def _cut_over_done(self, run: PhaseRun, old_id: str, live: dict[str, Any]) -> None:
        started = run.state.get("cut_over_started_at") or run.state["started_at"]
        run.record_phase("cut_over", started, original_renamed_to=old_id)
        was, now = run.action.details.get("resource_id"), live.get("DbiResourceId")
        if run.action.details.get("settings", {}).get("iam_auth") and was and now and was != now:
            # rds-db:connect policies name the resource id, which the copy does not share.
            policies = run.action.details.get("iam_policies") or []
            run.ctx.record_residual(
                f"{run.target}: IAM database authentication policies",
                f"rds-db:connect policies name the resource id {was}"
                + (f" ({', '.join(policies)})" if policies else "")
                + f"; the database under this name is now {now}, so those policies no longer "
                "let their users in",
                f"replace {was} with {now} in every policy granting rds-db:connect "
                f"(arn:aws:rds-db:{run.action.region}:ACCOUNT:dbuser:{now}/USER)",
            )

    def _replicas(self, run: PhaseRun, rds: Any) -> Wait | None:
        """Every replica advances at each poll (renamed aside, re-created on the encrypted
        primary, modified), all in parallel: AWS builds replicas side by side, so the phase
        takes as long as the slowest one, not the sum of them."""
        action = run.action
        db_id = action.target
        state = run.state
        date = state.setdefault("date", f"{self.clock():%Y%m%d}")
        run.save()
        pending: list[str] = []
        for rid, settings in sorted(action.details.get("replicas", {}).items()):
            why = self._one_replica(run, rds, db_id, rid, settings, rs.renamed_id(rid, date))
            if why:
                pending.append(why)
        if pending:
            return run.wait("; ".join(pending))
        run.record_phase(
            "replicas",
            state["started_at"],
            replicas=sorted(action.details.get("replicas", {})),
        )
        return None

    def _one_replica(
        self,
        run: PhaseRun,
        rds: Any,
        db_id: str,
        rid: str,
        settings: dict[str, Any],
        aside: str,
    ) -> str | None:
        """One step of one replica; what it waits for, or None once it equals the original."""
        cur = describe_instance(rds, rid)
        why = ph.busy(INSTANCE, [(rid, cur)])
        if why:
            return why
        if cur is not None and not cur.get("StorageEncrypted"):
            if describe_instance(rds, aside) is not None:
                raise StepFailed(
                    f"cannot rename replica {rid} to {aside}: that name is taken. Rename or "
                    "delete it, then resume."
                )
            # Intent first: rollback puts it back from this record.
            run.record("rds:renamed-replica", rid, "modified", renamed_to=aside, primary=db_id)
            ph.rename(rds, INSTANCE, rid, aside)
            cur = describe_instance(rds, rid)
            if cur is not None:
                return f"renaming replica {rid} to {aside}"
        if cur is None:
            run.record("rds:db-instance", rid, "created", source=db_id, role="replica")
            try:
                rds.create_db_instance_read_replica(
                    **rs.replica_kwargs(settings, rid, db_id, run.tags("replica"))
                )
            except ClientError as exc:
                if not already_exists(exc):  # else: created, only the answer was lost
                    raise
            cur = describe_instance(rds, rid)
            if cur is None or cur.get("DBInstanceStatus") != "available":
                return f"creating replica {rid}"
        diffs = rs.diff_settings(settings, rs.instance_settings(cur), replica=True)
        if diffs:
            ph.modify_again(
                run,
                f"modified:{rid}",
                f"replica {rid} still differs from the original replica: "
                + ", ".join(sorted(diffs))
                + ". Fix it by hand and resume.",
                partial(rds.modify_db_instance, **rs.modify_kwargs(settings, rid)),
            )
            return f"modifying replica {rid}"
        return None

    def _cleanup(self, run: PhaseRun, rds: Any) -> Wait | None:
        ctx, action = run.ctx, run.action
        db_id = action.target
        run.begin()
        renamed = {r.identifier: r for r in ctx.resources("rds:renamed")}
        if db_id not in renamed:
            raise StepFailed(f"{db_id} was not cut over in this run; nothing to clean up.")
        old_id = str(renamed[db_id].details["renamed_to"])
        old_replicas = [
            str(r.details["renamed_to"])
            for r in ctx.resources("rds:renamed-replica")
            if r.details.get("primary") == db_id
        ]
        final_id = rs.snapshot_id(ctx.run_id, db_id, "original-final")
        pending: list[str] = []
        victims: dict[str, dict[str, Any]] = {}
        for victim in [*old_replicas, old_id]:
            desc = describe_instance(rds, victim)
            if desc is None:
                continue
            if desc.get("StorageEncrypted"):
                raise StepFailed(f"{victim} is encrypted: it is not the original; not deleting.")
            victims[victim] = desc
        protected = [v for v, d in victims.items() if d.get("DeletionProtection")]
        if protected and not self.params.disable_deletion_protection_on_cleanup:
            # Checked for all before deleting any, so a refusal leaves everything in place.
            raise StepFailed(
                f"{', '.join(protected)} (the unencrypted original of {db_id}"
                f"{' and its old replicas' if len(victims) > 1 else ''}) "
                "has deletion protection on, and this step respects it; nothing was deleted. "
                "Turn it off (aws rds modify-db-instance --db-instance-identifier NAME "
                "--no-deletion-protection --apply-immediately) or set "
                "disable_deletion_protection_on_cleanup: true, then resume."
            )
        ph.check_nobody_uses(
            run, [v for v, d in victims.items() if d.get("DBInstanceStatus") != "deleting"]
        )
        for victim, desc in victims.items():
            if desc.get("DBInstanceStatus") == "deleting":
                pending.append(victim)
                continue
            if victim == old_id and pending:
                break  # replicas go first; a deleted source would promote them
            if desc.get("DeletionProtection"):
                ph.unprotect(rds, INSTANCE, victim)
            if victim == old_id:
                # Never SkipFinalSnapshot: the final snapshot is what makes this reversible.
                # Recorded first: rollback must refuse (naming the snapshot) even if the crash
                # hit right after the delete was accepted.
                run.record(
                    "rds:deleted",
                    victim,
                    "deleted",
                    final_snapshot=final_id,
                    original=db_id,
                )
                api.delete_db_instance(rds, victim, final_snapshot_id=final_id)
            else:
                # A read replica cannot have a final snapshot (AWS refuses one); its data lives
                # in the primary, whose final snapshot is taken.
                run.record("rds:deleted", victim, "deleted", original=db_id, replica=True)
                api.delete_db_instance(rds, victim)
            if describe_instance(rds, victim) is not None:
                pending.append(victim)
        if pending:
            return run.wait(f"deleting {', '.join(pending)}")
        freeing = lk.drop_group(run, INSTANCE)
        if freeing:
            return freeing
        ph.finish_cleanup(run, rds, INSTANCE, final_id)
        return None

    # --- verify / outputs / rollback ------------------------------------------------------------
    def verify(self, ctx: StepContext) -> None:
        """Every selected instance and cluster is encrypted with the target key."""
        facts = self.observe(ctx)
        left = [i for i in [*facts["instances"], *facts["clusters"]] if i not in facts["compliant"]]
        left = [i for i in left if i not in facts["encrypted_with_other_key"]]
        # Selected and unencrypted, but of a kind this step cannot migrate (a Multi-AZ DB
        # cluster, a replica without its primary, ...): the step is not done while they are.
        unhandled = {**facts["instances_not_handled"], **facts["clusters_not_handled"]}
        left += [f"{i} ({why})" for i, why in sorted(unhandled.items())]
        if left:
            raise StepFailed(
                "still unencrypted or not on the target key after the step: "
                + ", ".join(left)
                + ". Resume to retry, or look at `migrate status` for the failed phase"
                + (
                    "; a database this step cannot migrate needs its own migration, or leave it "
                    "out of the step with `exclude:` to accept it as it is."
                    if unhandled
                    else "."
                )
            )

    def published(self, ctx: StepContext) -> dict[str, Any]:
        """``encrypted``: the instances and clusters now encrypted with the target key."""
        return {"encrypted": self.observe(ctx)["compliant"]}

    def rollback(self, ctx: StepContext) -> None:
        """Before cleanup: swap names back (cut over) or delete the unused copy (not cut over)."""
        ClusterFlow(self.params).rollback(ctx)
        cut_over: set[str] = set()
        for res, db_id, rds, swapped in ph.copies_to_roll_back(ctx, INSTANCE):
            if swapped is not None and _never_renamed(rds, db_id, str(swapped["renamed_to"])):
                # The original is under its name and the copy aside: either the cut-over
                # recorded its intent and renamed nothing, or an earlier rollback swapped the
                # names back. The two look the same, and in the second the copy may hold writes
                # made while it had the name: it is kept, never deleted.
                continue
            if swapped is not None:
                cut_over.add(db_id)
                self._rollback_replicas(ctx, rds, db_id)
                self._swap_back(rds, db_id, str(swapped.get("renamed_to", "")), res.identifier)
            else:
                copy = describe_instance(rds, res.identifier)
                if copy is not None and tag_value(copy, rs.TAG_RUN) == ctx.run_id:
                    if copy.get("DeletionProtection"):
                        ph.unprotect(rds, INSTANCE, res.identifier)
                    # Never cut over, so no write ever reached it: the original holds all data.
                    api.delete_db_instance(rds, res.identifier)
        lk.unlock(ctx, INSTANCE, self.params)
        ph.rollback_snapshots(ctx, INSTANCE, cut_over)

    def _poll(self, what: str, done: Callable[[], bool]) -> None:
        poll_until(self.params, what, done)

    def _swap_back(self, rds: Any, db_id: str, old_id: str, aside_id: str) -> None:
        """Put the original back under ``db_id``; the encrypted instance moves to ``aside_id``.

        The encrypted instance is kept, not deleted: after the cut-over it may hold writes.
        """
        live = describe_instance(rds, db_id)
        if live is not None and live.get("StorageEncrypted"):
            if describe_instance(rds, aside_id) is not None:
                raise StepFailed(
                    f"cannot move the encrypted {db_id} aside to {aside_id}: the name is taken."
                )
            ph.rename(rds, INSTANCE, db_id, aside_id)
            self._poll(f"{db_id} to be renamed", lambda: describe_instance(rds, db_id) is None)
            live = None
        if live is None and describe_instance(rds, old_id) is not None:
            ph.rename(rds, INSTANCE, old_id, db_id)
            self._poll(f"{old_id} to be renamed", lambda: describe_instance(rds, db_id) is not None)
            live = describe_instance(rds, db_id)
        if live is not None and not live.get("StorageEncrypted") and live.get("DBInstanceArn"):
            # Back under its name, the original sheds the bookkeeping the cut-over put on it.
            api.remove_tags_from_resource(rds, str(live["DBInstanceArn"]), migrate_tag_keys(live))

    def _rollback_replicas(self, ctx: StepContext, rds: Any, db_id: str) -> None:
        for res in ctx.resources("rds:renamed-replica"):
            if res.details.get("primary") != db_id:
                continue
            rid, aside = res.identifier, str(res.details["renamed_to"])
            cur = describe_instance(rds, rid)
            if cur is not None and cur.get("StorageEncrypted"):
                # A replica holds no data of its own; the old one still follows the original.
                if cur.get("DeletionProtection"):
                    ph.unprotect(rds, INSTANCE, rid)
                api.delete_db_instance(rds, rid)
                self._poll(
                    f"replica {rid} to be deleted",
                    partial(_absent, rds, rid),
                )
            if describe_instance(rds, rid) is None and describe_instance(rds, aside) is not None:
                ph.rename(rds, INSTANCE, aside, rid)
                self._poll(
                    f"{aside} to be renamed",
                    partial(_present, rds, rid),
                )
