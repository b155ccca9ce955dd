"""``dr.restore_test``: a disaster-recovery drill per database and bucket, with RTO/RPO evidence."""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from datetime import datetime
from typing import Any, Literal

from pydantic import Field, field_validator

from migrate.aws import rds_restore as rr
from migrate.aws import rds_settings as rs
from migrate.aws.rds import (
    all_instances,
    describe_cluster,
    describe_instance,
    describe_snapshot,
    tag_value,
)
from migrate.engine.base import Action, Estimate, Facts, Step, Wait, handles
from migrate.engine.context import StepContext, operator_name
from migrate.engine.registry import step
from migrate.engine.selection import GLOB_CHARS, Selection
from migrate.errors import BadInputError, ParamError, StepFailed
from migrate.steps.dr import estimates as est
from migrate.steps.dr.bucket import BucketDrill, observe_bucket, readiness_findings
from migrate.steps.dr.drill import DatabaseDrill, DrillSettings
from migrate.steps.dr.network import TAG_DR_TEST, IsolatedNetwork, network_name
from migrate.steps.dr.reach import resolves
from migrate.util import format_duration, parse_duration, utcnow

RESTORE = "dr.restore"
CHECK = "dr.check"
TEARDOWN = "dr.teardown"
NETWORK_TEARDOWN = "dr.network_teardown"
S3_RESTORE = "dr.s3_restore"
S3_TEARDOWN = "dr.s3_teardown"


class DrRestoreTestParams(Selection):
    """Parameters of ``dr.restore_test`` (``names``/``exclude``/``tags`` select databases)."""

    rto_target: str = "4h"
    rpo_target: str = "24h"
    restore_from: Literal["latest", "snapshot", "point-in-time"] = "latest"
    subnet_group: str | None = None
    security_group_ids: list[str] = Field(default_factory=list)
    subnet_ids: list[str] = Field(default_factory=list)
    allow_cidrs: list[str] = Field(default_factory=list)
    availability_zone: str | None = None
    target_region: str | None = None
    target_kms_key: str | None = None
    check_endpoint: bool = True
    check_command: str | None = None
    check_timeout_seconds: float = Field(default=60.0, gt=0)
    buckets: list[str] = Field(default_factory=list)
    s3_sample_size: int = Field(default=5, ge=1, le=1000)
    s3_max_object_bytes: int = Field(default=64 * 1024 * 1024, ge=1)
    s3_scratch_prefix: str = "migrate-dr-test/"
    wait_timeout_hours: float = Field(default=12.0, gt=0)
    poll_seconds: float = Field(default=60.0, ge=0)
    regions: list[str] = Field(default_factory=list)

    @field_validator("rto_target", "rpo_target")
    @classmethod
    def _check_duration(cls, value: str) -> str:
        parse_duration(value)
        return value

    @field_validator("s3_scratch_prefix")
    @classmethod
    def _check_prefix(cls, value: str) -> str:
        if not value or not value.endswith("/") or value.startswith("/"):
            raise ValueError("must be a prefix ending in '/', e.g. migrate-dr-test/")
        return value


@step("dr.restore_test")
class DrRestoreTest(Step):
    """Disaster-recovery drill: restore each database's newest point in isolation, measure RTO/RPO, tear down.

    Per selected RDS instance and Aurora cluster (``names`` globs, ``exclude``, ``tags``) the step
    finds the newest restorable point (point in time via ``LatestRestorableTime``, or the newest
    automated or manual snapshot; ``restore_from``), restores it under ``drt-<run>-<db>`` with every
    setting of the original into an isolated network (a subnet group and a security group without
    egress that the drill creates, or ``subnet_group``/``security_group_ids`` given; never the
    production ones, never public, no deletion protection, tagged ``migrate:dr-test=<run>``),
    optionally in another Region through a cross-Region snapshot copy (``target_region``) or AZ.
    It measures RTO (drill start to the copy available, its endpoint resolving and the operator's
    optional read-only ``check_command`` passing) and RPO (the restore point's age at the start),
    compares them with ``rto_target``/``rpo_target`` (a miss is a finding, not a failure), and
    deletes everything it created, verifying it is gone. For ``buckets`` it checks versioning,
    replication and AWS Backup recovery points, restores a sample of previous versions into a
    scratch prefix, compares checksums and removes the scratch objects. `migrate dr report RUN`
    renders the evidence; `migrate dr history` lists drills across runs.
    """

    Params = DrRestoreTestParams
    permissions = (
        "rds:DescribeDBInstances",
        "rds:DescribeDBSnapshots",
        "rds:DescribeDBClusters",
        "rds:DescribeDBClusterSnapshots",
        "rds:DescribeDBSubnetGroups",
        "rds:ListTagsForResource",
        "rds:RestoreDBInstanceFromDBSnapshot",
        "rds:RestoreDBInstanceToPointInTime",
        "rds:RestoreDBClusterFromSnapshot",
        "rds:RestoreDBClusterToPointInTime",
        "rds:CreateDBInstance",
        "rds:ModifyDBInstance",
        "rds:ModifyDBCluster",
        "rds:CopyDBSnapshot",
        "rds:CopyDBClusterSnapshot",
        "rds:CreateDBSubnetGroup",
        "rds:AddTagsToResource",
        "rds:DeleteDBInstance",
        "rds:DeleteDBCluster",
        "rds:DeleteDBSnapshot",
        "rds:DeleteDBClusterSnapshot",
        "rds:DeleteDBSubnetGroup",
        "ec2:DescribeSecurityGroups",
        "ec2:CreateSecurityGroup",
        "ec2:CreateTags",
        "ec2:RevokeSecurityGroupEgress",
        "ec2:AuthorizeSecurityGroupIngress",
        "ec2:DeleteSecurityGroup",
        "kms:DescribeKey",
        "kms:CreateGrant",
        "s3:ListAllMyBuckets",
        "s3:GetBucketVersioning",
        "s3:GetReplicationConfiguration",
        "s3:ListBucketVersions",
        "s3:GetObjectVersion",
        "s3:GetObject",
        "s3:PutObject",
        "s3:DeleteObjectVersion",
        "backup:ListRecoveryPointsByResource",
    )
    outputs = ("drilled", "findings")
    action_kinds = (RESTORE, CHECK, TEARDOWN, NETWORK_TEARDOWN, S3_RESTORE, S3_TEARDOWN)
    example = """\
- id: dr
  uses: dr.restore_test
  with:
    names: ["legacy-*"]
    rto_target: 1h
    rpo_target: 15m
    buckets: ["legacy-backups"]
"""
    params: DrRestoreTestParams
    # The clock of waits and measurements, and the DNS check; tests replace them.
    clock: Callable[[], datetime] = staticmethod(utcnow)
    resolve: Callable[[str], bool] = staticmethod(resolves)

    # --- observe -----------------------------------------------------------------------------
    def _regions(self, ctx: StepContext) -> list[str]:
        return list(self.params.regions) or list(ctx.regions)

    def observe(self, ctx: StepContext) -> Facts:
        """Each selected database's settings and restorable point kind; each bucket's readiness."""
        databases: dict[str, Any] = {}
        skipped: dict[str, str] = {}
        seen: set[str] = set()
        for region in self._regions(ctx):
            rds = ctx.client("rds", region)
            by_id = all_instances(rds)
            for db_id, db in sorted(by_id.items()):
                seen.add(db_id)
                if not self._selected(db_id, db, skipped):
                    continue
                settings = rs.instance_settings(db)
                if self.params.tags and not self.params.tags_match(settings["tags"]):
                    continue
                self._only_once(databases, db_id)
                databases[db_id] = self._database(rds, region, db, settings, cluster=False)
            for page in rds.get_paginator("describe_db_clusters").paginate():
                for cluster in page.get("DBClusters", []):
                    cid = str(cluster["DBClusterIdentifier"])
                    seen.add(cid)
                    if not self._selected(cid, cluster, skipped):
                        continue
                    settings = rr.cluster_settings(cluster)
                    if self.params.tags and not self.params.tags_match(settings["tags"]):
                        continue
                    if str(cluster.get("EngineMode") or "provisioned") != "provisioned":
                        skipped[cid] = f"engine mode {cluster.get('EngineMode')} not drilled"
                        continue
                    if not str(cluster.get("Engine", "")).startswith("aurora"):
                        skipped[cid] = "Multi-AZ DB cluster (non-Aurora): not drilled yet"
                        continue
                    self._only_once(databases, cid)
                    databases[cid] = self._database(
                        rds, region, cluster, settings, cluster=True, instances=by_id
                    )
        warnings = self.params.unmatched(
            seen, "RDS instance or DB cluster", ", ".join(self._regions(ctx))
        )
        return {
            "databases": databases,
            "skipped": skipped,
            "warnings": warnings,
            "buckets": self._observe_buckets(ctx),
            "target_network": self._observe_target_network(ctx),
        }

    def _selected(self, ident: str, desc: dict[str, Any], skipped: dict[str, str]) -> bool:
        if not self.params.name_matches(ident):
            return False
        if tag_value(desc, TAG_DR_TEST) is not None or ident.startswith("drt-"):
            return False  # a drill's own copy
        if desc.get("DBClusterIdentifier") and "DBInstanceIdentifier" in desc:
            return False  # a cluster member: drilled with its cluster
        if desc.get("ReadReplicaSourceDBInstanceIdentifier"):
            skipped[ident] = "read replica: its primary is the database to drill"
            return False
        return True

    @staticmethod
    def _only_once(found: dict[str, Any], ident: str) -> None:
        if ident in found:
            raise BadInputError(
                f"{ident} is selected twice (two regions, or an instance and a cluster of that "
                "name); select it once with with.regions or with.exclude."
            )

    def _database(
        self,
        rds: Any,
        region: str,
        desc: dict[str, Any],
        settings: dict[str, Any],
        *,
        cluster: bool,
        instances: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        ident = str(desc["DBClusterIdentifier" if cluster else "DBInstanceIdentifier"])
        snap = (
            rr.newest_cluster_snapshot(rds, ident)
            if cluster
            else rr.newest_instance_snapshot(rds, ident)
        )
        point = rr.restore_point(
            desc,
            snap,
            prefer=self.params.restore_from,
            cross_region=bool(self.params.target_region),
            cluster=cluster,
        )
        subnet_name = settings.get("db_subnet_group")
        subnet = rr.describe_subnet_group(rds, str(subnet_name)) if subnet_name else None
        writer = rr.writer_settings(desc, instances or {}) if cluster else {}
        gib = float(desc.get("AllocatedStorage") or 0) if not cluster else 0.0
        return {
            "kind": "cluster" if cluster else "instance",
            "region": region,
            "settings": settings,
            "writer": writer,
            "gib": gib,
            "encrypted": bool(desc.get("StorageEncrypted")),
            # The kind and the snapshot, not the time: facts are fingerprinted, and
            # LatestRestorableTime moves every five minutes.
            "restore_point_kind": point["kind"] if point else None,
            "snapshot_id": (point or {}).get("snapshot_id"),
            "production_subnet_group": (
                {"VpcId": subnet.get("VpcId"), "Subnets": subnet.get("Subnets", [])}
                if subnet
                else None
            ),
        }

    def _observe_buckets(self, ctx: StepContext) -> dict[str, Any]:
        if not self.params.buckets:
            return {}
        region = self._regions(ctx)[0]
        s3 = ctx.client("s3", region)
        backup = ctx.client("backup", region)
        names = [str(b["Name"]) for b in s3.list_buckets().get("Buckets", [])]
        out: dict[str, Any] = {}
        for name in sorted(names):
            if any(fnmatch.fnmatchcase(name, p) for p in self.params.buckets):
                out[name] = observe_bucket(
                    s3,
                    backup,
                    name,
                    self.params.s3_sample_size,
                    self.params.s3_max_object_bytes,
                    self.params.s3_scratch_prefix,
                )
        missing = [p for p in self.params.buckets if not (GLOB_CHARS & set(p)) and p not in names]
        if missing:
            raise BadInputError(
                f"no bucket named {', '.join(missing)} in this account. Check with.buckets."
            )
        return out

    def _observe_target_network(self, ctx: StepContext) -> dict[str, Any]:
        region = self.params.target_region or self._regions(ctx)[0]
        if not self.params.subnet_group:
            return {"given": False, "region": region}
        group = rr.describe_subnet_group(ctx.client("rds", region), self.params.subnet_group)
        return {"given": True, "region": region, "exists": group is not None}

    # --- decide ------------------------------------------------------------------------------
    def decide(self, ctx: StepContext, facts: Facts) -> list[Action]:
        """Restore, check and teardown per database; a network teardown per region; the S3
        sample restore and its teardown per bucket."""
        self._check_input(facts)
        history = ctx.earlier_results(CHECK)
        actions: list[Action] = []
        regions: set[str] = set()
        for db_id, db in facts["databases"].items():
            actions.extend(self._db_actions(ctx, db_id, db, history))
            regions.add(self.params.target_region or db["region"])
        if not self.params.subnet_group:
            for region in sorted(regions):
                name = network_name(rs.run_hash(ctx.run_id)) if ctx.run_id else "migrate-dr-RUN"
                actions.append(
                    Action(
                        kind=NETWORK_TEARDOWN,
                        target=f"network:{region}",
                        summary=f"delete the drill's subnet group and security group {name} in "
                        f"{region} once every copy there is gone; verify they are gone",
                        estimate=Estimate(duration_s=60.0, api_requests=6),
                        region=region,
                    )
                )
        for bucket, bfacts in facts["buckets"].items():
            actions.extend(self._bucket_actions(ctx, bucket, bfacts))
        return actions

    def _check_input(self, facts: Facts) -> None:
        net = facts["target_network"]
        if self.params.target_region and not self.params.subnet_group:
            raise BadInputError(
                "a cross-Region drill (with.target_region) needs with.subnet_group and "
                "with.security_group_ids of that Region: the drill cannot copy a VPC there."
            )
        if net["given"] and not net["exists"]:
            raise BadInputError(
                f"the DB subnet group {self.params.subnet_group} does not exist in "
                f"{net['region']}. Create it (isolated subnets) or leave with.subnet_group out "
                "to let the drill create its own."
            )
        if net["given"] and not self.params.security_group_ids:
            raise BadInputError(
                "with.subnet_group is given but with.security_group_ids is not; give the "
                "isolated security group(s) of the drill too."
            )
        for db_id, db in facts["databases"].items():
            settings = db["settings"]
            if (
                self.params.subnet_group
                and self.params.subnet_group == settings.get("db_subnet_group")
                and not self.params.target_region
            ):
                raise ParamError(
                    f"with.subnet_group {self.params.subnet_group} is the production subnet "
                    f"group of {db_id}; a drill restores into an isolated one. Give another.",
                    "subnet_group",
                )
            shared = set(self.params.security_group_ids) & set(
                settings.get("vpc_security_group_ids") or ()
            )
            if shared and not self.params.target_region:
                raise ParamError(
                    f"with.security_group_ids includes {', '.join(sorted(shared))}, a production "
                    f"security group of {db_id}; a drill uses isolated ones only.",
                    "security_group_ids",
                )
            if self.params.target_region and db["encrypted"] and not self.params.target_kms_key:
                raise ParamError(
                    f"{db_id} is encrypted: a cross-Region copy needs a KMS key of "
                    f"{self.params.target_region} (with.target_kms_key).",
                    "target_kms_key",
                )

    def _db_actions(
        self, ctx: StepContext, db_id: str, db: dict[str, Any], history: list[dict[str, Any]]
    ) -> list[Action]:
        settings = db["settings"]
        cluster = db["kind"] == "cluster"
        point = db["restore_point_kind"]
        region = db["region"]
        gib = float(db["gib"] or 0)
        rto_est, basis = est.estimate_rto(
            db_id,
            gib,
            history,
            point_in_time=point == "point-in-time",
            cross_region=bool(self.params.target_region),
            cluster=cluster,
        )
        instance_class = (db["writer"] if cluster else settings).get("instance_class")
        cost = est.drill_cost(instance_class, gib, rto_est, multi_az=bool(settings.get("multi_az")))
        copy_id = rr.drill_id(db_id, rs.run_hash(ctx.run_id)) if ctx.run_id else f"drt-RUN-{db_id}"
        rto_t = parse_duration(self.params.rto_target)
        rpo_t = parse_duration(self.params.rpo_target)
        where = self.params.target_region or region
        isolation = (
            f"subnet group {self.params.subnet_group} and security group(s) "
            f"{', '.join(self.params.security_group_ids)}"
            if self.params.subnet_group
            else "a subnet group and a security group without egress that the drill creates"
        )
        risks: list[str] = []
        if point is None:
            risks.append(
                f"{db_id} has no restorable point (no automated backups, no snapshot): the "
                "drill will record that it cannot be recovered"
            )
        if rto_est > rto_t:
            risks.append(
                f"estimated RTO {format_duration(rto_est)} exceeds the target "
                f"{format_duration(rto_t)}"
            )
        if self.params.target_region:
            risks.append(
                f"parameter and option groups are per Region: the copy in {where} uses the "
                "defaults unless groups of the same name exist there"
            )
        if settings.get("multi_az"):
            risks.append(f"{db_id} is Multi-AZ: the copy is too (twice the instance cost)")
        details = {
            "kind": db["kind"],
            "settings": settings,
            "writer": db["writer"],
            "gib": gib,
            "production_subnet_group": db["production_subnet_group"],
            "restore_point_kind": point,
            "rto_estimate_s": rto_est,
            "rto_estimate_basis": basis,
            "cost_usd": cost,
            "operator": operator_name(),
        }
        what = "cluster" if cluster else "instance"
        source = point or "no restorable point"
        if self.params.target_region and point:
            source = f"{point}, copied to {where}"
        teardown_s = est.teardown_seconds(gib)
        return [
            Action(
                kind=RESTORE,
                target=db_id,
                summary=f"restore {what} {db_id} from its newest point ({source}) as {copy_id} "
                f"in {where}, with every setting ({instance_class}), into {isolation}; not "
                f"public, no deletion protection (est. RTO {format_duration(rto_est)}: {basis}; "
                f"copy ~${cost:.2f})",
                estimate=Estimate(duration_s=rto_est, api_requests=8, cost_usd=cost),
                risks=tuple(risks),
                region=region,
                details=details,
            ),
            Action(
                kind=CHECK,
                target=db_id,
                summary=f"check {copy_id}: available"
                + (", endpoint resolves" if self.params.check_endpoint else "")
                + (", the check command passes" if self.params.check_command else "")
                + f", settings equal {db_id}'s; RTO vs {self.params.rto_target}, RPO vs "
                f"{self.params.rpo_target}",
                estimate=Estimate(duration_s=30.0, api_requests=2),
                region=region,
                details={**details, "rto_target_s": rto_t, "rpo_target_s": rpo_t},
            ),
            Action(
                kind=TEARDOWN,
                target=db_id,
                summary=f"delete the drill copy {copy_id}"
                + (" and its copied snapshot" if self.params.target_region else "")
                + " (tag-checked), and verify it is gone",
                estimate=Estimate(duration_s=teardown_s, api_requests=6),
                region=region,
                details=details,
            ),
        ]

    def _bucket_actions(self, ctx: StepContext, bucket: str, facts: dict[str, Any]) -> list[Action]:
        region = self._regions(ctx)[0]
        findings = readiness_findings(facts)
        sample = facts["sample"]
        size = sum(int(s["size"]) for s in sample)
        prefix = f"{self.params.s3_scratch_prefix}{ctx.run_id or 'RUN'}/"
        details = {"bucket": bucket, "facts": facts}
        return [
            Action(
                kind=S3_RESTORE,
                target=f"s3://{bucket}",
                summary=f"restore {len(sample)} sampled object(s) of {bucket} from their previous "
                f"version into s3://{bucket}/{prefix}, timed, SHA-256 compared (versioning "
                f"{facts['versioning']}, {facts['replication_rules']} replication rule(s), "
                f"{facts['recovery_points'] if facts['recovery_points'] is not None else 'unknown'}"
                " AWS Backup recovery point(s))",
                estimate=Estimate(
                    duration_s=5.0 + 0.2 * len(sample), api_requests=3 * len(sample), bytes=size
                ),
                risks=(
                    *findings,
                    "writing the scratch copies fires the bucket's event notifications and "
                    "replication rules, if any, for the scratch prefix",
                ),
                region=region,
                details=details,
            ),
            Action(
                kind=S3_TEARDOWN,
                target=f"s3://{bucket}",
                summary=f"delete every version under s3://{bucket}/{prefix} and verify none is left",
                estimate=Estimate(duration_s=5.0, api_requests=2 + len(sample)),
                region=region,
                details=details,
            ),
        ]

    # --- act ---------------------------------------------------------------------------------
    def _drill(self, ctx: StepContext, action: Action) -> DatabaseDrill:
        p = self.params
        cfg = DrillSettings(
            run_hash=rs.run_hash(ctx.run_id),
            restore_from=p.restore_from,
            target_region=p.target_region,
            target_kms_key=p.target_kms_key,
            subnet_group=p.subnet_group,
            security_group_ids=list(p.security_group_ids),
            subnet_ids=list(p.subnet_ids),
            allow_cidrs=list(p.allow_cidrs),
            availability_zone=p.availability_zone,
            check_endpoint=p.check_endpoint,
            check_command=p.check_command,
            check_timeout_s=p.check_timeout_seconds,
            rto_target_s=parse_duration(p.rto_target),
            rpo_target_s=parse_duration(p.rpo_target),
            wait_timeout_hours=p.wait_timeout_hours,
            poll_seconds=p.poll_seconds,
        )
        return DatabaseDrill(ctx, action, cfg, clock=self.clock, resolve=self.resolve)

    @handles(RESTORE)
    def _restore(self, ctx: StepContext, action: Action) -> Wait | None:
        return self._drill(ctx, action).restore()

    @handles(CHECK)
    def _check(self, ctx: StepContext, action: Action) -> Wait | None:
        return self._drill(ctx, action).check()

    @handles(TEARDOWN)
    def _teardown(self, ctx: StepContext, action: Action) -> Wait | None:
        return self._drill(ctx, action).teardown()

    @handles(NETWORK_TEARDOWN)
    def _network_teardown(self, ctx: StepContext, action: Action) -> Wait | None:
        region = str(action.region)
        copies = self._copies_left(ctx, region)
        started = ctx.load_checkpoint("network")
        since = (
            self.clock()
            if started is None
            else datetime.fromisoformat(str(started["cursor"]["since"]))
        )
        if started is None:
            ctx.checkpoint({"since": since.isoformat(timespec="seconds")}, done=0, name="network")
        drill = self._drill(ctx, action)
        if copies:
            return drill.wait(since.isoformat(), f"waiting for {', '.join(copies)} to be deleted")
        net = IsolatedNetwork(ctx, region, ctx.run_id or "", rs.run_hash(ctx.run_id))
        left = net.remove()
        if left:
            return drill.wait(since.isoformat(), f"deleting {', '.join(left)}")
        ctx.record_result(target=action.target, network_removed=net.name)
        return None

    def _copies_left(self, ctx: StepContext, region: str) -> list[str]:
        """The drill copies of this run that still exist in ``region``."""
        rds = ctx.client("rds", region)
        left: list[str] = []
        for res in ctx.resources("rds:db-instance"):
            if res.region == region and describe_instance(rds, res.identifier) is not None:
                left.append(res.identifier)
        for res in ctx.resources("rds:db-cluster"):
            if res.region == region and describe_cluster(rds, res.identifier) is not None:
                left.append(res.identifier)
        return sorted(set(left))

    @handles(S3_RESTORE)
    def _s3_restore(self, ctx: StepContext, action: Action) -> Wait | None:
        BucketDrill(ctx, action, self.params.s3_scratch_prefix).restore_sample()
        return None

    @handles(S3_TEARDOWN)
    def _s3_teardown(self, ctx: StepContext, action: Action) -> Wait | None:
        BucketDrill(ctx, action, self.params.s3_scratch_prefix).teardown()
        return None

    # --- verify / outputs / rollback ---------------------------------------------------------
    def residuals(self, ctx: StepContext) -> list[str]:
        """Everything this run's drill created that still exists."""
        left: list[str] = []
        regions = {r.region for r in ctx.resources() if r.region}
        for region in sorted(regions):
            left.extend(f"{c} ({region})" for c in self._copies_left(ctx, region))
            rds = ctx.client("rds", region)
            for res in ctx.resources("rds:snapshot"):
                if res.region == region and describe_snapshot(rds, res.identifier):
                    left.append(f"snapshot {res.identifier} ({region})")
            for res in ctx.resources("rds:subnet-group"):
                if res.region == region and rr.describe_subnet_group(rds, res.identifier):
                    left.append(f"subnet group {res.identifier} ({region})")
        return left

    def verify(self, ctx: StepContext) -> None:
        """Nothing the drill created is left (anything left is a residual, named)."""
        left = self.residuals(ctx)
        if left:
            raise StepFailed(
                "the drill left resources behind: " + ", ".join(left) + ". `migrate resume` "
                "retries the teardown; `migrate rollback` deletes them."
            )

    def published(self, ctx: StepContext) -> dict[str, Any]:
        """``drilled``: databases and buckets drilled; ``findings``: per target, what missed."""
        drilled: list[str] = []
        findings: dict[str, list[str]] = {}
        for res in ctx.resources("dr:drill"):
            drilled.append(res.identifier)
            if res.details.get("findings"):
                findings[res.identifier] = list(res.details["findings"])
        return {"drilled": sorted(drilled), "findings": findings}

    def rollback(self, ctx: StepContext) -> None:
        """Delete what the drill created (tag-checked): copies, copied snapshots, scratch
        objects; the network goes once AWS has let go of the copies (run rollback again)."""
        for res in ctx.resources("dr:drill"):
            if res.identifier.startswith("s3://"):
                action = Action(
                    kind=S3_TEARDOWN,
                    target=res.identifier,
                    summary="rollback",
                    region=res.region,
                    details={"bucket": res.identifier[len("s3://") :]},
                )
                BucketDrill(ctx, action, self.params.s3_scratch_prefix).teardown()
                continue
            action = Action(
                kind=TEARDOWN,
                target=res.identifier,
                summary="rollback",
                region=res.region,
                details={"kind": str(res.details.get("kind") or "instance")},
            )
            self._drill(ctx, action).delete_all()
        for region in sorted({r.region for r in ctx.resources("rds:subnet-group") if r.region}):
            if not self._copies_left(ctx, region):
                IsolatedNetwork(ctx, region, ctx.run_id or "", rs.run_hash(ctx.run_id)).remove()
