"""One database's drill: restore into isolation, check and measure, tear down.

Each phase is one engine action, resumable: what it started is kept in the action's checkpoint and
in the ``dr:drill`` resource (the evidence), names are deterministic from run id + target, and
every create is preceded by a look (a resumed phase adopts what a crashed attempt made). Waits are
engine waits with the deadline ``wait_timeout_hours`` after the drill started, never sleeps.

Nothing here deletes anything that does not carry ``migrate:dr-test=<this run>``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from migrate.aws import rds_restore as rr
from migrate.aws import rds_settings as rs
from migrate.aws.errors import has_code, not_found
from migrate.aws.rds import (
    describe_cluster,
    describe_cluster_snapshot,
    describe_instance,
    describe_snapshot,
    tag_value,
)
from migrate.engine.base import Action, Wait
from migrate.engine.context import StepContext
from migrate.errors import StepFailed
from migrate.steps.dr.network import TAG_DR_TEST, IsolatedNetwork, Network
from migrate.steps.dr.reach import run_check

INSTANCE_FAILED = (
    "failed",
    "incompatible-restore",
    "incompatible-parameters",
    "incompatible-network",
    "inaccessible-encryption-credentials",
    "storage-full",
)
DNS_GRACE = timedelta(minutes=10)


def iso(moment: datetime) -> str:
    """A moment as the evidence stores it (naive UTC, seconds)."""
    return moment.isoformat(timespec="seconds")


def parse(value: str) -> datetime:
    """Inverse of :func:`iso`."""
    return datetime.fromisoformat(value)


def measured_on(ctx: StepContext) -> str:
    """Where the measurements come from: AWS, or a local endpoint (the sandbox, moto), whose
    restores are instant and say nothing about AWS's RTO."""
    url = str(getattr(ctx.aws, "endpoint_url", None) or "")
    if any(h in url for h in ("127.0.0.1", "localhost", "[::1]")):
        return f"sandbox ({url}): restores are instant there, times are not AWS's"
    return "aws" if not url else f"endpoint {url}"


@dataclass
class DrillSettings:
    """The parameters one drill needs (taken from the step's params by the step)."""

    run_hash: str
    restore_from: str
    target_region: str | None
    target_kms_key: str | None
    subnet_group: str | None
    security_group_ids: list[str]
    subnet_ids: list[str]
    allow_cidrs: list[str]
    availability_zone: str | None
    check_endpoint: bool
    check_command: str | None
    check_timeout_s: float
    rto_target_s: float
    rpo_target_s: float
    wait_timeout_hours: float
    poll_seconds: float


@dataclass
class DatabaseDrill:
    """The three phases of one database's drill (explicit collaborator of the step)."""

    ctx: StepContext
    action: Action
    cfg: DrillSettings
    clock: Callable[[], datetime]
    resolve: Callable[[str], bool]

    # --- shared -----------------------------------------------------------------------------
    @property
    def db_id(self) -> str:
        """The production database drilled."""
        return self.action.target

    @property
    def cluster(self) -> bool:
        """True for an Aurora cluster."""
        return self.action.details.get("kind") == "cluster"

    @property
    def source_region(self) -> str:
        """Where the production database is."""
        return str(self.action.region)

    @property
    def region(self) -> str:
        """Where the copy is restored."""
        return self.cfg.target_region or self.source_region

    @property
    def copy_id(self) -> str:
        """The copy's identifier (instance, or cluster)."""
        return rr.drill_id(self.db_id, self.cfg.run_hash)

    @property
    def writer_id(self) -> str:
        """The drill cluster's one instance."""
        return rr.drill_id(f"{self.db_id}-w", self.cfg.run_hash)

    @property
    def copied_snapshot_id(self) -> str:
        """The cross-Region copy of the restore point's snapshot."""
        return rr.drill_id(f"{self.db_id}-copy", self.cfg.run_hash)

    def tags(self) -> dict[str, str]:
        """What every created resource carries (teardown only deletes what carries it)."""
        return {
            TAG_DR_TEST: self.ctx.run_id or "",
            rs.TAG_RUN: self.ctx.run_id or "",
            rs.TAG_SOURCE: self.db_id,
        }

    def evidence(self) -> dict[str, Any]:
        """The ``dr:drill`` evidence recorded so far for this database."""
        for res in self.ctx.resources("dr:drill"):
            if res.identifier == self.db_id:
                return dict(res.details)
        return {}

    def record(self, **values: Any) -> None:
        """Merge ``values`` into the evidence and the action's result."""
        self.ctx.record_resource(
            "dr:drill", self.db_id, change="measured", region=self.region, details=values
        )
        self.ctx.record_result(target=self.db_id, **values)

    def note(self, kind: str, ident: str, change: str) -> None:
        """Record a deletion, when an action runs (rollback runs outside one)."""
        if self.ctx.action_id is not None:
            self.ctx.record_resource(kind, ident, change=change, region=self.region)

    def state(self) -> dict[str, Any]:
        """The phase's checkpoint (started_at fixed at the first attempt)."""
        saved = self.ctx.load_checkpoint("drill")
        state = dict(saved["cursor"]) if saved else {}
        if "started_at" not in state:
            state["started_at"] = iso(self.clock())
            self.save(state)
        return state

    def save(self, state: dict[str, Any]) -> None:
        """Commit the phase's checkpoint."""
        self.ctx.checkpoint(state, done=0, name="drill")

    def wait(self, started: str, reason: str) -> Wait:
        """A Wait with the drill's deadline; past it, fail clearly (teardown still runs on
        resume or rollback)."""
        deadline = parse(started) + timedelta(hours=self.cfg.wait_timeout_hours)
        if self.clock() >= deadline:
            raise StepFailed(
                f"{self.db_id}: gave up after {self.cfg.wait_timeout_hours:g} h waiting: {reason}. "
                "`migrate resume` waits again; `migrate rollback` deletes what the drill made."
            )
        return Wait(f"{self.db_id}: {reason}", until=deadline, poll_s=self.cfg.poll_seconds)

    def _rds(self, region: str | None = None) -> Any:
        return self.ctx.client("rds", region or self.region)

    def _describe_copy(self) -> dict[str, Any] | None:
        rds = self._rds()
        return (
            describe_cluster(rds, self.copy_id)
            if self.cluster
            else describe_instance(rds, self.copy_id)
        )

    def _ours(self, desc: dict[str, Any] | None, what: str) -> None:
        if desc is not None and tag_value(desc, TAG_DR_TEST) != self.ctx.run_id:
            raise StepFailed(
                f"{what} exists but is not tagged {TAG_DR_TEST}={self.ctx.run_id}; the drill "
                "never touches what it did not create. Rename or delete it, then resume."
            )

    # --- phase 1: restore ----------------------------------------------------------------------
    def restore(self) -> Wait | None:
        """Pick the newest restorable point at the drill's start, restore it in isolation."""
        state = self.state()
        if "point" not in state:
            point = self._find_point()
            started = parse(state["started_at"])
            state["point"] = point
            rpo = round((started - parse(point["at"])).total_seconds(), 1) if point else None
            self.save(state)
            self.record(
                drill_started_at=state["started_at"],
                restore_point=point,
                rpo_s=rpo,
                copy_id=self.copy_id,
                region=self.region,
                kind="cluster" if self.cluster else "instance",
                gib=self.action.details.get("gib"),
                operator=self.action.details.get("operator"),
                measured_on=measured_on(self.ctx),
            )
        point = state["point"]
        if point is None:
            self.record(finding_no_point="no restorable point (no backups, no snapshot)")
            return None
        network = self._network()
        snapshot = point.get("snapshot_id")
        if point.get("snapshot_arn") and self.cfg.target_region:
            copied = self._copy_snapshot(state, point)
            if isinstance(copied, Wait):
                return copied
            snapshot = copied
        desc = self._describe_copy()
        self._ours(desc, f"{'cluster' if self.cluster else 'instance'} {self.copy_id}")
        if desc is None:
            # Intent first: a crash right after the call still has the copy torn down.
            self.ctx.record_resource(
                "rds:db-cluster" if self.cluster else "rds:db-instance",
                self.copy_id,
                region=self.region,
                details={"source": self.db_id, "role": "dr-copy"},
            )
            self._start_restore(point, snapshot, network)
            desc = self._describe_copy()
        status = (desc or {}).get("Status" if self.cluster else "DBInstanceStatus")
        if status in INSTANCE_FAILED:
            raise StepFailed(
                f"the restore of {self.db_id} into {self.copy_id} ended {status}; the drill "
                "failed (a finding for the DR plan). Resume or roll back to tear it down."
            )
        if desc is None or status != "available":
            return self.wait(state["started_at"], f"restoring {self.copy_id} ({status})")
        if desc.get("DeletionProtection") or desc.get("PubliclyAccessible"):
            # The restore was asked for neither; should the copy have them anyway (moto copies
            # the source's deletion protection), the isolation promise is restored first.
            if self.cluster:
                self._rds().modify_db_cluster(
                    DBClusterIdentifier=self.copy_id,
                    DeletionProtection=False,
                    ApplyImmediately=True,
                )
            else:
                self._rds().modify_db_instance(
                    DBInstanceIdentifier=self.copy_id,
                    DeletionProtection=False,
                    PubliclyAccessible=False,
                    ApplyImmediately=True,
                )
            desc = self._describe_copy() or {}
            if (
                desc.get("DeletionProtection")
                or desc.get("PubliclyAccessible")
                or desc.get("Status" if self.cluster else "DBInstanceStatus") != "available"
            ):
                return self.wait(state["started_at"], f"making {self.copy_id} private, unprotected")
        if self.cluster:
            writer = self._ensure_writer(state)
            if writer is not None:
                return writer
        self.record(available_at=iso(self.clock()))
        return None

    def _find_point(self) -> dict[str, Any] | None:
        rds = self._rds(self.source_region)
        if self.cluster:
            desc = describe_cluster(rds, self.db_id)
            snap = rr.newest_cluster_snapshot(rds, self.db_id)
        else:
            desc = describe_instance(rds, self.db_id)
            snap = rr.newest_instance_snapshot(rds, self.db_id)
        if desc is None:
            raise StepFailed(f"{self.db_id} no longer exists in {self.source_region}.")
        return rr.restore_point(
            desc,
            snap,
            prefer=self.cfg.restore_from,
            cross_region=bool(self.cfg.target_region),
            cluster=self.cluster,
        )

    def _network(self) -> Network:
        if self.cfg.subnet_group:
            return Network(self.cfg.subnet_group, list(self.cfg.security_group_ids))
        production = self.action.details.get("production_subnet_group")
        if not production:
            raise StepFailed(
                f"{self.db_id} has no DB subnet group to take the VPC from; give with.subnet_group "
                "and with.security_group_ids for the drill."
            )
        net = IsolatedNetwork(self.ctx, self.region, self.ctx.run_id or "", self.cfg.run_hash)
        port = int(self.action.details["settings"].get("port") or 0)
        network = net.ensure(production, self.cfg.subnet_ids, self.cfg.allow_cidrs, port)
        if self.evidence().get("network") is None:
            self.record(
                network={"subnet_group": network.subnet_group, "sg": network.security_group_ids}
            )
        return network

    def _copy_snapshot(self, state: dict[str, Any], point: dict[str, Any]) -> str | Wait:
        """Copy the restore point's snapshot into the target Region (the DR scenario)."""
        rds = self._rds()
        target = self.copied_snapshot_id
        describe = describe_cluster_snapshot if self.cluster else describe_snapshot
        found = describe(rds, target)
        self._ours(found, f"snapshot {target} in {self.region}")
        if found is None:
            kind = "rds:cluster-snapshot" if self.cluster else "rds:snapshot"
            self.ctx.record_resource(
                kind, target, region=self.region, details={"source": self.db_id, "role": "dr-copy"}
            )
            kwargs: dict[str, Any] = {
                "SourceRegion": self.source_region,
                "Tags": rs.tag_list({}, self.tags()),
            }
            if point.get("encrypted"):
                # AWS needs a key of the target Region for an encrypted cross-Region copy.
                kwargs["KmsKeyId"] = self.cfg.target_kms_key
            if self.cluster:
                rds.copy_db_cluster_snapshot(
                    SourceDBClusterSnapshotIdentifier=point["snapshot_arn"],
                    TargetDBClusterSnapshotIdentifier=target,
                    **kwargs,
                )
            else:
                rds.copy_db_snapshot(
                    SourceDBSnapshotIdentifier=point["snapshot_arn"],
                    TargetDBSnapshotIdentifier=target,
                    **kwargs,
                )
            found = describe(rds, target)
        if (found or {}).get("Status") != "available":
            progress = (found or {}).get("PercentProgress")
            return self.wait(
                state["started_at"],
                f"copying the snapshot to {self.region} ({progress if progress else 0}%)",
            )
        return target

    def _want(self, network: Network) -> dict[str, Any]:
        settings = dict(self.action.details["settings"])
        if self.cfg.target_region:
            # Groups are per Region: the target Region's copy uses the defaults unless a group
            # of that name exists there (the plan lists this as a risk).
            settings["parameter_group"] = None
            settings["option_group"] = None
            settings["cluster_parameter_group"] = None
            settings["availability_zone"] = None
        if self.cfg.availability_zone:
            settings["availability_zone"] = self.cfg.availability_zone
            settings["multi_az"] = False
        return rr.isolated(settings, network.subnet_group, network.security_group_ids)

    def _start_restore(self, point: dict[str, Any], snapshot: str | None, network: Network) -> None:
        rds = self._rds()
        want = self._want(network)
        tags = self.tags()
        if point["kind"] == "point-in-time":
            at = parse(point["at"])
            if self.cluster:
                rds.restore_db_cluster_to_point_in_time(
                    **rr.cluster_to_point_kwargs(want, self.db_id, self.copy_id, at, tags)
                )
            else:
                rds.restore_db_instance_to_point_in_time(
                    **rr.instance_to_point_kwargs(want, self.db_id, self.copy_id, at, tags)
                )
        elif self.cluster:
            key = self.cfg.target_kms_key if self.cfg.target_region else None
            rds.restore_db_cluster_from_snapshot(
                **rr.cluster_from_snapshot_kwargs(want, self.copy_id, str(snapshot), tags, key)
            )
        else:
            rds.restore_db_instance_from_db_snapshot(
                **rr.instance_from_snapshot_kwargs(want, self.copy_id, str(snapshot), tags)
            )

    def _ensure_writer(self, state: dict[str, Any]) -> Wait | None:
        rds = self._rds()
        writer = describe_instance(rds, self.writer_id)
        self._ours(writer, f"instance {self.writer_id}")
        if writer is None:
            self.ctx.record_resource(
                "rds:db-instance",
                self.writer_id,
                region=self.region,
                details={"source": self.db_id, "role": "dr-writer", "cluster": self.copy_id},
            )
            settings = self.action.details["settings"]
            rds.create_db_instance(
                **rr.writer_kwargs(
                    self.action.details.get("writer") or {},
                    self.writer_id,
                    self.copy_id,
                    str(settings["engine"]),
                    self.tags(),
                )
            )
            writer = describe_instance(rds, self.writer_id)
        status = (writer or {}).get("DBInstanceStatus")
        if status in INSTANCE_FAILED:
            raise StepFailed(f"the drill cluster's instance {self.writer_id} ended {status}.")
        if status != "available":
            return self.wait(state["started_at"], f"creating {self.writer_id} ({status})")
        return None

    # --- phase 2: check and measure ------------------------------------------------------------
    def check(self) -> Wait | None:
        """Available and reachable: measure RTO and RPO, compare settings and targets."""
        evidence = self.evidence()
        if evidence.get("restore_point") is None:
            self.record(findings=["no restorable point: the database cannot be recovered"])
            return None
        state = self.state()
        desc = self._describe_copy()
        if desc is None:
            raise StepFailed(f"the drill copy {self.copy_id} of {self.db_id} is missing.")
        endpoint = desc.get("Endpoint")
        host = str(endpoint.get("Address") if isinstance(endpoint, dict) else endpoint or "")
        port = int(
            (endpoint.get("Port") if isinstance(endpoint, dict) else None) or desc.get("Port") or 0
        )
        reach: dict[str, Any] = {"endpoint": host, "port": port}
        if self.cfg.check_endpoint:
            if not host or not self.resolve(host):
                if self.clock() < parse(state["started_at"]) + DNS_GRACE:
                    return Wait(
                        f"{self.db_id}: waiting for {host or 'the endpoint'} to resolve",
                        until=parse(state["started_at"]) + DNS_GRACE,
                        poll_s=min(self.cfg.poll_seconds, 15.0),
                    )
                reach["resolves"] = False
            else:
                reach["resolves"] = True
        if self.cfg.check_command and reach.get("resolves", True):
            outcome = run_check(self.cfg.check_command, host, port, self.cfg.check_timeout_s)
            reach["check"] = {
                "ok": outcome.ok,
                "exit_status": outcome.exit_status,
                "seconds": outcome.seconds,
                "note": outcome.note,
            }
        reachable = reach.get("resolves", True) is not False and (
            reach.get("check") is None or bool(reach["check"]["ok"])
        )
        now = self.clock()
        started = parse(str(evidence["drill_started_at"]))
        rto = round((now - started).total_seconds(), 1) if reachable else None
        diffs = self._settings_diffs(desc)
        findings = self._findings(evidence.get("rpo_s"), rto, reach, diffs)
        self.record(
            reachable_at=iso(now) if reachable else None,
            gib=self.action.details.get("gib"),  # the size the RTO belongs to (estimates)
            reach=reach,
            rto_s=rto,
            rto_target_s=self.cfg.rto_target_s,
            rpo_target_s=self.cfg.rpo_target_s,
            rto_met=rto is not None and rto <= self.cfg.rto_target_s,
            rpo_met=evidence.get("rpo_s") is not None
            and float(evidence["rpo_s"]) <= self.cfg.rpo_target_s,
            settings_compared=len(rr.CLUSTER_COMPARED if self.cluster else rr.DRILL_COMPARED),
            settings_differences=diffs,
            findings=findings,
        )
        return None

    def _settings_diffs(self, desc: dict[str, Any]) -> dict[str, dict[str, Any]]:
        net = self.evidence().get("network") or {}
        network = Network(
            self.cfg.subnet_group or str(net.get("subnet_group") or ""),
            list(self.cfg.security_group_ids or net.get("sg") or []),
        )
        want = self._want(network)
        if self.cluster:
            # A cluster has no public flag of its own (its instance does: created private).
            want.pop("publicly_accessible", None)
            return rr.drill_diffs(want, rr.cluster_settings(desc), rr.CLUSTER_COMPARED)
        return rr.drill_diffs(want, rs.instance_settings(desc), rr.DRILL_COMPARED)

    def _findings(
        self,
        rpo: Any,
        rto: float | None,
        reach: dict[str, Any],
        diffs: dict[str, dict[str, Any]],
    ) -> list[str]:
        out: list[str] = []
        if reach.get("resolves") is False:
            out.append(f"the endpoint {reach.get('endpoint')} did not resolve")
        check = reach.get("check")
        if check is not None and not check["ok"]:
            out.append(f"the check command failed: {check['note']}")
        if rto is None:
            out.append("RTO not met: the copy never became reachable")
        elif rto > self.cfg.rto_target_s:
            out.append(f"RTO missed: {rto:.0f}s > target {self.cfg.rto_target_s:.0f}s")
        if rpo is not None and float(rpo) > self.cfg.rpo_target_s:
            out.append(f"RPO missed: {float(rpo):.0f}s > target {self.cfg.rpo_target_s:.0f}s")
        if diffs:
            out.append("settings differ from production: " + ", ".join(sorted(diffs)))
        return out

    # --- phase 3: teardown ---------------------------------------------------------------------
    def teardown(self) -> Wait | None:
        """Delete the copy (and the copied snapshot); verified gone before the phase is done."""
        state = self.state()
        self.delete_all()
        left = self.residuals()
        if left:
            return self.wait(state["started_at"], f"deleting {', '.join(left)}")
        finished = self.clock()
        self.record(
            torn_down_at=iso(finished),
            teardown_s=round((finished - parse(state["started_at"])).total_seconds(), 1),
            residuals=[],
        )
        return None

    def delete_all(self) -> None:
        """Issue the deletes of everything this database's drill created that still exists
        (only what carries this run's tag); AWS finishes them in its own time."""
        rds = self._rds()
        if self.cluster:
            writer = describe_instance(rds, self.writer_id)
            self._ours(writer, f"instance {self.writer_id}")
            if writer is not None:
                self._delete_instance(rds, writer, self.writer_id, member=True)
            cluster = describe_cluster(rds, self.copy_id)
            self._ours(cluster, f"cluster {self.copy_id}")
            # AWS refuses to delete a cluster that still has instances: members go first.
            if cluster is not None and describe_instance(rds, self.writer_id) is None:
                self._delete_cluster(rds, cluster)
        else:
            copy = describe_instance(rds, self.copy_id)
            self._ours(copy, f"instance {self.copy_id}")
            if copy is not None:
                self._delete_instance(rds, copy, self.copy_id, member=False)
        if self.cfg.target_region:
            describe = describe_cluster_snapshot if self.cluster else describe_snapshot
            snap = describe(rds, self.copied_snapshot_id)
            self._ours(snap, f"snapshot {self.copied_snapshot_id}")
            if snap is not None and snap.get("Status") != "deleting":
                if self.cluster:
                    rds.delete_db_cluster_snapshot(
                        DBClusterSnapshotIdentifier=self.copied_snapshot_id
                    )
                else:
                    rds.delete_db_snapshot(DBSnapshotIdentifier=self.copied_snapshot_id)
                self.note("rds:snapshot", self.copied_snapshot_id, "deleted")

    def _delete_instance(self, rds: Any, desc: dict[str, Any], ident: str, *, member: bool) -> None:
        if desc.get("DBInstanceStatus") == "deleting":
            return
        if desc.get("DeletionProtection"):
            # Only ever our own tagged copy (checked by the caller).
            rds.modify_db_instance(
                DBInstanceIdentifier=ident, DeletionProtection=False, ApplyImmediately=True
            )
        kwargs: dict[str, Any] = {"DBInstanceIdentifier": ident}
        if not member:
            # A drill copy holds nothing the production database does not: no final snapshot,
            # and its own automated backups go with it.
            kwargs.update(SkipFinalSnapshot=True, DeleteAutomatedBackups=True)
        try:
            rds.delete_db_instance(**kwargs)
        except Exception as exc:
            if not (not_found(exc) or has_code(exc, "InvalidDBInstanceState")):
                raise
        self.note("rds:db-instance", ident, "deleted")

    def _delete_cluster(self, rds: Any, desc: dict[str, Any]) -> None:
        if desc.get("Status") == "deleting":
            return
        if desc.get("DeletionProtection"):
            rds.modify_db_cluster(
                DBClusterIdentifier=self.copy_id, DeletionProtection=False, ApplyImmediately=True
            )
        try:
            rds.delete_db_cluster(DBClusterIdentifier=self.copy_id, SkipFinalSnapshot=True)
        except Exception as exc:
            if not (not_found(exc) or has_code(exc, "InvalidDBClusterStateFault")):
                raise
        self.note("rds:db-cluster", self.copy_id, "deleted")

    def residuals(self) -> list[str]:
        """What of this database's drill still exists (after teardown: the residuals)."""
        rds = self._rds()
        left: list[str] = []
        if describe_instance(rds, self.writer_id if self.cluster else self.copy_id) is not None:
            left.append(self.writer_id if self.cluster else self.copy_id)
        if self.cluster and describe_cluster(rds, self.copy_id) is not None:
            left.append(self.copy_id)
        if self.cfg.target_region:
            describe = describe_cluster_snapshot if self.cluster else describe_snapshot
            if describe(rds, self.copied_snapshot_id) is not None:
                left.append(self.copied_snapshot_id)
        return left
