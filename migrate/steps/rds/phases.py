"""Phase helpers that ``rds.encrypt`` shares between instances and Aurora clusters.

The instance flow (``encrypt``) and the cluster flow (``cluster_flow``) run the same phases
against two families of RDS APIs (``create_db_snapshot`` / ``create_db_cluster_snapshot``,
``DBInstanceStatus`` / ``Status``, ...). A :class:`Kind` names one family's API calls, fields and
wording; the helpers here take it, so that each phase step that is really the same is written once:
snapshot and encrypted copy, the start of a restore and its checks, bounded modify retries, renames,
the key check of a copy, timing records and the snapshot cleanup.

Every helper keeps the order of AWS calls of the phase it serves (the wait tests replay them with a
botocore Stubber).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from migrate.aws import rds as api
from migrate.aws import rds_settings as rs
from migrate.aws.errors import access_denied, already_exists, error_code, has_code, not_found
from migrate.aws.rds import tag_value
from migrate.engine.base import Action, Estimate, Wait
from migrate.engine.context import RecordedResource, StepContext
from migrate.errors import StepFailed
from migrate.steps.rds.params import wait_hours
from migrate.steps.rds.run import PhaseRun, iso, parse, seconds
from migrate.util import format_duration

SNAPSHOT_FAILED = ("failed", "error", "incompatible-restore", "incompatible-parameters")
CLUSTER_FAILED = (
    "failed",
    "incompatible-restore",
    "incompatible-parameters",
    "incompatible-network",
    "inaccessible-encryption-credentials",
)
INSTANCE_FAILED = (*CLUSTER_FAILED, "storage-full")
MAX_MODIFY_ATTEMPTS = 3
# What AWS answers a modification of a database that is being modified (e.g. renamed) already.
RENAME_BUSY = (
    "InvalidDBInstanceState",
    "InvalidDBInstanceStateFault",
    "InvalidDBClusterStateFault",
)
# Between the cut-over and the cleanup of a database (instance or cluster): the original is kept.
SOAK = "rds.soak"
# The plan names how writes are stopped (issue 14 asks for enforced modes; none is built yet).
Describe = Callable[[Any, str], "dict[str, Any] | None"]
CreateSnapshot = Callable[[Any, str, str, Mapping[str, str]], bool]
CopySnapshot = Callable[[Any, str, str, str], bool]
DeleteSnapshot = Callable[[Any, str], bool]
Rename = Callable[[Any, str, str], None]
Unprotect = Callable[[Any, str], None]


@dataclass(frozen=True)
class Kind:
    """One family of RDS APIs (instances or clusters): call names, fields and wording."""

    label: str  # prefix of the identifier in messages: "" or "cluster "
    article: str  # "an instance" / "a cluster"
    restored: str  # what a restored copy is called: "copy" / "cluster"
    copy_noun: str  # what the encrypted snapshot copy is called
    status_key: str
    snapshot_resource: str
    restore_resource: str
    renamed_resource: str  # the cut-over's record: the original renamed aside
    deleted_resource: str  # the cleanup's record: the original deleted
    failed: tuple[str, ...]
    describe: Describe
    describe_snapshot: Describe
    create_snapshot: CreateSnapshot
    copy_snapshot: CopySnapshot
    delete_snapshot: DeleteSnapshot
    rename: Rename
    unprotect: Unprotect


INSTANCE = Kind(
    label="",
    article="an instance",
    restored="copy",
    copy_noun="copy",
    status_key="DBInstanceStatus",
    snapshot_resource="rds:snapshot",
    restore_resource="rds:db-instance",
    renamed_resource="rds:renamed",
    deleted_resource="rds:deleted",
    failed=INSTANCE_FAILED,
    describe=api.describe_instance,
    describe_snapshot=api.describe_snapshot,
    create_snapshot=api.create_db_snapshot,
    copy_snapshot=api.copy_db_snapshot,
    delete_snapshot=api.delete_db_snapshot,
    rename=api.rename_db_instance,
    unprotect=api.unprotect_db_instance,
)
CLUSTER = Kind(
    label="cluster ",
    article="a cluster",
    restored="cluster",
    copy_noun="cluster snapshot copy",
    status_key="Status",
    snapshot_resource="rds:cluster-snapshot",
    restore_resource="rds:db-cluster",
    renamed_resource="rds:renamed-cluster",
    deleted_resource="rds:deleted-cluster",
    failed=CLUSTER_FAILED,
    describe=api.describe_cluster,
    describe_snapshot=api.describe_cluster_snapshot,
    create_snapshot=api.create_db_cluster_snapshot,
    copy_snapshot=api.copy_db_cluster_snapshot,
    delete_snapshot=api.delete_db_cluster_snapshot,
    rename=api.rename_db_cluster,
    unprotect=api.unprotect_db_cluster,
)


__all__ = ["iso", "parse", "seconds"]  # re-exported for the step modules


# --- AWS calls of either kind ---------------------------------------------------------------------


def rename(rds: Any, kind: Kind, old: str, new: str) -> None:
    """Rename an instance or cluster now (AWS refuses a rename onto an existing name).

    A rename whose answer was lost (a 5xx after AWS acted) is retried by botocore. The retry
    finds ``old`` gone (the rename is through) or still there but ``renaming`` towards ``new``
    (AWS renames asynchronously, and refuses a second modification meanwhile): both are the
    rename done. Callers never rename onto an existing name and wait for ``new`` themselves."""
    try:
        kind.rename(rds, old, new)
    except ClientError as exc:
        if not (not_found(exc) or has_code(exc, *RENAME_BUSY)):
            raise
        current = kind.describe(rds, old)
        if current is None and kind.describe(rds, new):
            return
        pending = (current or {}).get("PendingModifiedValues") or {}
        if current is not None and (
            current.get(kind.status_key) == "renaming"
            or new in (pending.get("DBInstanceIdentifier"), pending.get("DBClusterIdentifier"))
        ):
            return
        raise


def unprotect(rds: Any, kind: Kind, ident: str) -> None:
    """Turn deletion protection off, so that the delete that follows is accepted."""
    kind.unprotect(rds, ident)


def delete_snapshot(rds: Any, kind: Kind, snapshot: str) -> None:
    """Delete a manual snapshot if it still exists."""
    if kind.describe_snapshot(rds, snapshot) is not None:
        kind.delete_snapshot(rds, snapshot)


def delete_run_snapshots(
    ctx: StepContext, rds: Any, kind: Kind, source: str, *, keep_encrypted: bool
) -> None:
    """Cleanup: delete the snapshots this run took of ``source`` (the encrypted ones if asked)."""
    for res in ctx.resources(kind.snapshot_resource):
        if res.details.get("source") != source:
            continue
        if res.details.get("encrypted") and keep_encrypted:
            continue
        delete_snapshot(rds, kind, res.identifier)


def copies_to_roll_back(
    ctx: StepContext, kind: Kind
) -> Iterator[tuple[RecordedResource, str, Any, dict[str, Any] | None]]:
    """Rollback: ``(copy, original id, rds client, cut-over details or None)`` of each encrypted
    copy this run restored. Refuses one whose original was deleted at cleanup."""
    swaps = {r.identifier: r for r in ctx.resources(kind.renamed_resource)}
    deleted = {r.identifier: r for r in ctx.resources(kind.deleted_resource)}
    for res in ctx.resources(kind.restore_resource):
        if res.details.get("role") != "encrypted-copy":
            continue
        source = str(res.details["source"])
        swap = swaps.get(source)
        details = dict(swap.details or {}) if swap is not None else None
        old_id = str((details or {}).get("renamed_to", ""))
        if old_id and old_id in deleted:
            raise StepFailed(
                f"{kind.label}{source} cannot be rolled back: its original was deleted at "
                f"cleanup. Its final snapshot is {deleted[old_id].details.get('final_snapshot')}; "
                "restore it by hand if you need the unencrypted original."
            )
        yield res, source, ctx.client("rds", res.region), details


def rollback_snapshots(ctx: StepContext, kind: Kind, cut_over: set[str]) -> None:
    """Rollback: delete this run's snapshots; those of a database that was cut over
    (``cut_over``) keep their encrypted copies, which document what the new database holds."""
    for res in ctx.resources(kind.snapshot_resource):
        source = str(res.details.get("source"))
        if res.details.get("encrypted") and source in cut_over:
            continue
        delete_snapshot(ctx.client("rds", res.region), kind, res.identifier)


def busy(kind: Kind, described: Iterable[tuple[str, Mapping[str, Any] | None]]) -> str | None:
    """Why to wait, if one of the existing ``(name, description)`` is not available."""
    for name, desc in described:
        if desc is not None and desc.get(kind.status_key) != "available":
            return f"{kind.label}{name} is {desc.get(kind.status_key)}"
    return None


def key_problems(kind: Kind, copy: Mapping[str, Any], key_arn: str) -> list[str]:
    """What makes ``copy`` not encrypted with ``key_arn``, or not available."""
    out: list[str] = []
    if not copy.get("StorageEncrypted") or copy.get("KmsKeyId") != key_arn:
        out.append(
            f"storage encrypted={copy.get('StorageEncrypted')} with key "
            f"{copy.get('KmsKeyId')}, want {key_arn}"
        )
    if copy.get(kind.status_key) != "available":
        out.append(f"{kind.label}status {copy.get(kind.status_key)}")
    return out


def diff_lines(diffs: Mapping[str, Mapping[str, Any]], prefix: str = "") -> list[str]:
    """``["<prefix>name: want 'a', got 'b'", ...]`` for messages."""
    return [f"{prefix}{k}: want {v['want']!r}, got {v['got']!r}" for k, v in diffs.items()]


def describe_diffs(diffs: Mapping[str, Mapping[str, Any]]) -> str:
    """``"name: want 'a', got 'b'; ..."`` for messages."""
    return "; ".join(diff_lines(diffs))


def refuse_unequal(problems: list[str], what: str, advice: str) -> None:
    """Raise ``"<what>: <problems>. <advice>"`` if the copy check found problems."""
    if problems:
        raise StepFailed(f"{what}: " + "; ".join(problems) + f". {advice}")


# --- is anyone still using the original? -----------------------------------------------------------


def _period_for(age_s: float, span_s: float) -> int:
    """The smallest period CloudWatch answers for data ``age_s`` old over ``span_s``: 1-minute
    points are kept 15 days, 5-minute points 63 days, hourly after that; a period that is not a
    multiple of those returns no data at all (no error), and one answer holds 1,440 points."""
    unit = 60 if age_s < 15 * 86400 else 300 if age_s < 63 * 86400 else 3600
    return max(unit, -(-int(span_s / 1440) // unit) * unit)


def connection_points(
    cw: Any, db_id: str, since: datetime, until: datetime, dimension: str = "DBInstanceIdentifier"
) -> list[tuple[datetime, float]] | None:
    """CloudWatch ``DatabaseConnections`` maxima per period after ``since``, oldest first, or
    None when CloudWatch holds no point at all (RDS publishes the metric every minute, zeros
    included: no point is no evidence)."""
    span = max((until - since).total_seconds(), 60.0)
    period = _period_for(span, span)
    # From the first whole period after `since` (CloudWatch rounds the start down, which would
    # count connections of before it), for at least one period; an end in the future is allowed.
    epoch = datetime(1970, 1, 1)
    first = -(-int((since - epoch).total_seconds()) // period) * period
    start = epoch + timedelta(seconds=first)
    until = max(until, start + timedelta(seconds=period))
    answer = cw.get_metric_statistics(
        Namespace="AWS/RDS",
        MetricName="DatabaseConnections",
        Dimensions=[{"Name": dimension, "Value": db_id}],
        StartTime=start,
        EndTime=until,
        Period=period,
        Statistics=["Maximum"],
    )
    points = sorted(answer.get("Datapoints", []), key=lambda p: p["Timestamp"])
    if not points:
        return None
    return [(p["Timestamp"], float(p.get("Maximum", 0))) for p in points]


def _dimension(kind: Kind) -> str:
    """The CloudWatch dimension naming a database of ``kind``."""
    return "DBClusterIdentifier" if kind.label else "DBInstanceIdentifier"


def _points_or_refuse(
    run: PhaseRun,
    label: str,
    name: str,
    since: datetime,
    dimension: str,
    shows: str,
    unchanged: str,
    off: str,
) -> list[tuple[datetime, float]] | None:
    """:func:`connection_points` of ``name`` from ``since`` to now; refused by IAM, the phase
    fails saying what nothing then ``shows``, that it left things ``unchanged``, and how to
    turn the check ``off``."""
    cw = run.ctx.client("cloudwatch", run.action.region)
    try:
        return connection_points(cw, name, since, run.clock(), dimension)
    except ClientError as exc:
        if not access_denied(exc):
            raise
        raise StepFailed(
            f"cannot read CloudWatch DatabaseConnections of {label}{name} ({error_code(exc)}), "
            f"so nothing shows {shows}; {unchanged}. Grant cloudwatch:GetMetricStatistics and "
            f"resume, or set original_connections_allowed: -1 to {off}."
        ) from exc


# CloudWatch publishes a minute's point a minute or two later: waiting this long after the
# stop-writes approval for a first point is normal; longer without one is no evidence.
METRIC_LAG = timedelta(minutes=5)


def still_connected(run: PhaseRun, kind: Kind, db_id: str) -> str | None:
    """Why the final snapshot must wait: the database still had clients in the latest minute
    CloudWatch published after the stop-writes approval (the application has not stopped, or
    something else writes). None when it is quiet, or when the check is off."""
    allowed = run.params.original_connections_allowed
    stop = (run.timing().get("stop_writes") or {}).get("at")
    if allowed < 0 or not stop:
        return None
    since, now = parse(stop), run.clock()
    points = _points_or_refuse(
        run,
        kind.label,
        db_id,
        since,
        _dimension(kind),
        "that writes stopped",
        "no snapshot was taken",
        "rely on the stop-writes approval alone",
    )
    if points is None:
        if run.ctx.aws.endpoint_url:
            return None  # the sandbox (moto) publishes no RDS metrics
        if now - since < METRIC_LAG:
            return f"{kind.label}{db_id}: waiting for CloudWatch's first DatabaseConnections point"
        raise StepFailed(
            f"CloudWatch holds no DatabaseConnections data for {kind.label}{db_id} since the "
            f"stop-writes approval ({stop}): nothing shows that writes stopped, so no snapshot "
            "was taken. Check the metric in CloudWatch and resume, or set "
            "original_connections_allowed: -1 to rely on the approval alone."
        )
    at, latest = points[-1]
    if latest > allowed:
        return (
            f"{kind.label}{db_id} still had {int(latest)} connection(s) at {at:%H:%M} UTC, after "
            "the stop-writes approval: the final snapshot waits until the application (or "
            "whatever else connects) has stopped"
        )
    return None


def check_nobody_uses(run: PhaseRun, names: list[str]) -> None:
    """Refuse (nothing deleted) while CloudWatch shows connections to the renamed original's
    instances (``names``: the original and its old replicas, or an Aurora cluster's old members)
    since its final snapshot: whoever holds them (a cron job, a second service, DMS) writes to a
    database the application no longer reads, and the delete would lose those writes."""
    allowed = run.params.original_connections_allowed
    timing = run.timing()
    # From the final snapshot on: whatever reached the original after it is in no copy.
    cut = snapshot_taken_at(timing) or (timing.get("cut_over") or {}).get("finished_at")
    if allowed < 0 or not cut or not names:
        return
    seen: list[str] = []
    for name in names:
        found = _points_or_refuse(
            run,
            "",
            name,
            parse(cut),
            "DBInstanceIdentifier",
            "that nobody used it since its final snapshot",
            "nothing was deleted",
            "skip the check",
        )
        points = (
            None
            if found is None
            else [f"{t:%Y-%m-%d %H:%M} UTC: {int(m)}" for t, m in found if m > allowed]
        )
        if points is None:
            if run.ctx.aws.endpoint_url:
                # A custom endpoint (the sandbox: moto publishes no RDS metrics) cannot show
                # connections either way; on AWS, no point at all is no evidence.
                continue
            raise StepFailed(
                f"CloudWatch holds no DatabaseConnections data for {name} since the final "
                f"snapshot ({cut}): nothing shows that nobody uses it, so nothing was deleted. RDS "
                "publishes the metric every minute; check the instance in CloudWatch, then "
                "resume, or set original_connections_allowed: -1 to skip the check."
            )
        seen += [f"{name} at {p}" for p in points[:5]]
    if seen:
        raise StepFailed(
            "the renamed original had connections after its final snapshot ("
            + "; ".join(seen)
            + "): something still uses it, and its writes would be lost with it. Nothing was "
            "deleted. Find the client (`SHOW PROCESSLIST` / pg_stat_activity on the original), "
            "point it at the encrypted database, then resume; or raise "
            "original_connections_allowed for monitoring agents that always connect."
        )


def snapshot_taken_at(timing: Mapping[str, Any]) -> str | None:
    """When the final snapshot was asked for: not when its phase began, which is before the
    wait for the clients to drain (connections then are expected, and not lost)."""
    final = timing.get("final") or {}
    found = final.get("snapshot_started_at") or final.get("started_at")
    return str(found) if found else None


def check_quiet_after_snapshot(run: PhaseRun, kind: Kind, db_id: str) -> None:
    """Before the cut-over renames the original: refuse (nothing renamed) when CloudWatch shows
    clients on it after the final snapshot started. What they wrote is not in the snapshot, so
    the encrypted copy lacks it and the cut-over would lose it without a word."""
    allowed = run.params.original_connections_allowed
    since = snapshot_taken_at(run.timing())
    if allowed < 0 or not since:
        return
    points = _points_or_refuse(
        run,
        kind.label,
        db_id,
        parse(since),
        _dimension(kind),
        "that nobody wrote after the final snapshot",
        "nothing was renamed",
        "rely on the stop-writes approval alone",
    )
    if points is None and not run.ctx.aws.endpoint_url:
        # RDS publishes the metric every minute, zeros included; the final snapshot, the copy
        # and the restore take longer than that: no point at all is no evidence.
        raise StepFailed(
            f"CloudWatch holds no DatabaseConnections data for {kind.label}{db_id} since its "
            f"final snapshot ({since}): nothing shows that nobody wrote to it, so nothing was "
            "renamed. Check the metric in CloudWatch and resume, or set "
            "original_connections_allowed: -1 to rely on the stop-writes approval alone."
        )
    seen = [f"{t:%Y-%m-%d %H:%M} UTC: {int(m)}" for t, m in points or () if m > allowed]
    if seen:
        raise StepFailed(
            f"{kind.label}{db_id} had connections after its final snapshot started ("
            + "; ".join(seen[:5])
            + "): what they wrote is not in the encrypted copy, and the cut-over would lose it. "
            "Nothing was renamed. Stop the client, then roll back and run again (a new final "
            "snapshot), or, if it wrote nothing, raise original_connections_allowed and resume."
        )


# --- phases ---------------------------------------------------------------------------------------


def stop_writes(run: PhaseRun) -> Wait | None:
    """The approval is the operator's word that writes stopped: the downtime clock starts at
    the approval (a resume carried out later does not shorten the measured downtime)."""
    approved = run.ctx.approved_at()
    at = min(approved, run.clock()) if approved else run.clock()
    run.record_timing("stop_writes", at=iso(at), approved_at=iso(approved) if approved else None)
    return None


def _snapshot_wait(
    run: PhaseRun, snap: Mapping[str, Any] | None, what: str, failed: str
) -> Wait | None:
    """None once ``snap`` is available; a Wait while AWS makes it; ``failed`` (with its
    ``{status}``) raised when AWS gave up on it."""
    status = (snap or {}).get("Status")
    if status in SNAPSHOT_FAILED:
        raise StepFailed(failed.replace("{status}", str(status)))
    if status != "available":
        pct = (snap or {}).get("PercentProgress", 0)
        return run.wait(f"{what} {status} ({pct}%)")
    return None


def _take_snapshot(run: PhaseRun, rds: Any, kind: Kind, phase: str, raw_id: str) -> Wait | None:
    """Snapshot ``raw_id`` of the database (adopted if it exists); None once it is available."""
    db_id = run.target
    state = run.state
    raw = kind.describe_snapshot(rds, raw_id)
    if raw is None:
        original = kind.describe(rds, db_id)
        if original is None or original.get("StorageEncrypted"):
            raise StepFailed(
                f"{kind.label}{db_id} is gone or already encrypted; nothing to snapshot. "
                "Plan again."
            )
        why = busy(kind, [(db_id, original)])
        if why:
            return run.wait(why)
        if phase == "final":
            # The approval is the operator's word; CloudWatch says whether clients are gone.
            why = still_connected(run, kind, db_id)
            if why:
                return run.wait(why)
        # Intent first: a crash between the call and a later record would leave an
        # unencrypted full-database snapshot that no cleanup or rollback knows about.
        state["snapshot_started_at"] = run.now_iso()
        run.save()
        run.record(kind.snapshot_resource, raw_id, "created", source=db_id)
        kind.create_snapshot(rds, raw_id, db_id, run.tags(f"{phase}-snapshot"))
        raw = kind.describe_snapshot(rds, raw_id)
    not_ready = _snapshot_wait(
        run,
        raw,
        f"{kind.label}snapshot {raw_id}",
        f"{kind.label}snapshot {raw_id} of {db_id} is {{status}}. Delete it and resume, "
        "or roll back.",
    )
    if not_ready:
        return not_ready
    state.setdefault("snapshot_done_at", run.now_iso())
    # Adopted by name if it exists (this run's snapshot, found by a resumed phase).
    run.record(kind.snapshot_resource, raw_id, "created", source=db_id)
    return None


def snapshot_and_copy(
    run: PhaseRun, rds: Any, phase: str, kind: Kind, *, copy: bool = True, **timing: Any
) -> Wait | None:
    """Snapshot ``migrate-<run>-<db>-<phase>`` of the database, copied with the key to ``-enc``
    (``copy=False``: the snapshot only, for a restore that encrypts it itself); measured into
    the database's timing (with ``timing`` added)."""
    db_id = run.target
    raw_id = rs.snapshot_id(run.run_id, db_id, phase)
    enc_id = rs.snapshot_id(run.run_id, db_id, phase, encrypted=True)
    state = run.state
    if not copy:
        not_ready = _take_snapshot(run, rds, kind, phase, raw_id)
        if not_ready:
            return not_ready
        now = run.now()
        started = parse(state["started_at"])
        run.record_timing(
            phase,
            started_at=iso(started),
            finished_at=iso(now),
            snapshot_s=seconds(started, now),
            copy_s=0.0,
            duration_s=seconds(started, now),
            **timing,
            snapshot_id=raw_id,
            # When the snapshot itself was asked for (after the clients drained): what reached
            # the database after this is in no copy.
            snapshot_started_at=state.get("snapshot_started_at") or iso(started),
        )
        run.save(done=1)
        return None
    enc = kind.describe_snapshot(rds, enc_id)
    if enc is None:
        not_ready = _take_snapshot(run, rds, kind, phase, raw_id)
        if not_ready:
            return not_ready
        state["copy_started_at"] = run.now_iso()
        run.save()
        run.record(kind.snapshot_resource, enc_id, "created", source=db_id, encrypted=True)
        kind.copy_snapshot(rds, raw_id, enc_id, run.key_arn())
        enc = kind.describe_snapshot(rds, enc_id)
    not_ready = _snapshot_wait(
        run,
        enc,
        f"copy {enc_id}",
        f"the encrypted {kind.copy_noun} {enc_id} is {{status}} (is the KMS key usable by "
        "RDS?). Delete it and resume, or roll back.",
    )
    if not_ready:
        return not_ready
    now = run.now()
    started = parse(state["started_at"])
    snap_done = parse(state.get("snapshot_done_at") or state["started_at"])
    copy_start = parse(state.get("copy_started_at") or iso(snap_done))
    run.record_timing(
        phase,
        started_at=iso(started),
        finished_at=iso(now),
        snapshot_s=seconds(started, snap_done),
        copy_s=seconds(copy_start, now),
        duration_s=seconds(started, now),
        **timing,
        snapshot_id=raw_id,
        snapshot_started_at=state.get("snapshot_started_at") or iso(started),
        encrypted_snapshot_id=enc_id,
    )
    run.save(done=1)
    return None


def start_restore(
    run: PhaseRun,
    rds: Any,
    kind: Kind,
    restore: Callable[[str, str], None],
    *,
    from_encrypted: bool = True,
) -> dict[str, Any] | Wait:
    """The restored temporary copy, restoring it from the final encrypted snapshot first if it
    does not exist (``restore(temp, snapshot)`` makes the call); a Wait while it is not ready.
    ``from_encrypted=False``: from the unencrypted final snapshot (the restore encrypts it).

    Refuses a database of that name that this run did not restore for this target.
    """
    db_id = run.target
    state = run.state
    temp = rs.temp_id(db_id, run.run_id)
    enc_id = rs.snapshot_id(run.run_id, db_id, "final", encrypted=from_encrypted)
    copy = kind.describe(rds, temp)
    if copy is None:
        snap = kind.describe_snapshot(rds, enc_id)
        if snap is None or snap.get("Status") != "available":
            raise StepFailed(
                f"the final {kind.label}snapshot {enc_id} is missing or not available; "
                "resume after the final snapshot phase, or roll back."
            )
        state["restore_started_at"] = run.now_iso()
        run.save()
        # Intent first, so that rollback knows the copy even if the crash hit right after the
        # call; a restore whose answer was lost finds the copy already there.
        run.record(kind.restore_resource, temp, "created", source=db_id, role="encrypted-copy")
        try:
            restore(temp, enc_id)
        except ClientError as exc:
            if not already_exists(exc):
                raise
        copy = kind.describe(rds, temp)
    if copy is None:
        return run.wait(f"restore of {kind.label}{temp} starting")
    if tag_value(copy, rs.TAG_RUN) != run.run_id or tag_value(copy, rs.TAG_SOURCE) != db_id:
        raise StepFailed(
            f"{kind.article} named {temp} exists but was not restored by this run for {db_id}. "
            "Rename or delete it, then resume."
        )
    # Adopted by name (a copy an earlier attempt restored): rollback must know it.
    run.record(kind.restore_resource, temp, "created", source=db_id, role="encrypted-copy")
    status = copy.get(kind.status_key)
    if status in kind.failed:
        raise StepFailed(
            f"the restored {kind.restored} {temp} is {status}; roll back and investigate."
        )
    if status != "available" or copy.get("PendingModifiedValues"):
        return run.wait(f"{kind.label}{temp} is {status}")
    state.setdefault("restore_done_at", run.now_iso())
    return copy


def modify_again(
    run: PhaseRun, key: str, refuse: str | Callable[[int], str], modify: Callable[[], None]
) -> None:
    """One more modification of a copy that still differs, counted under ``key`` in the phase
    state; past :data:`MAX_MODIFY_ATTEMPTS`, fail with ``refuse`` (or ``refuse(attempts)``)."""
    attempts = int(run.state.get(key, 0))
    if attempts >= MAX_MODIFY_ATTEMPTS:
        raise StepFailed(refuse if isinstance(refuse, str) else refuse(attempts))
    modify()
    run.state[key] = attempts + 1
    run.save()


def finish_cleanup(run: PhaseRun, rds: Any, kind: Kind, final_snapshot: str) -> None:
    """Last of the cleanup: the run's snapshots of the database go (the encrypted ones only if
    not kept), and the phase is measured."""
    delete_run_snapshots(
        run.ctx, rds, kind, run.target, keep_encrypted=run.params.keep_encrypted_snapshots
    )
    run.record_phase(
        "cleanup", run.state["started_at"], duration=False, final_snapshot=final_snapshot
    )


# --- decide ---------------------------------------------------------------------------------------


def action_adder(
    out: list[Action],
    target: str,
    region: str,
    details: dict[str, Any],
    gib: float,
    wait_timeout_hours: float | None = None,
) -> Callable[..., None]:
    """``add(kind, summary, seconds, downtime=, requests=, data=, **Action fields)``: appends one
    action of ``target`` with its estimate (``data`` counts the database's bytes); the summary
    of a phase that waits ends with its deadline (``wait_timeout_hours``, else derived from the
    estimate)."""

    def add(kind: str, summary: str, seconds: float, **kw: Any) -> None:
        if kind != SOAK:
            hours = wait_hours(
                wait_timeout_hours, seconds, size_assumed=bool(details.get("cluster"))
            )
            summary = f"{summary}; gives up after {format_duration(hours * 3600)} of waiting"
        out.append(
            Action(
                kind=kind,
                target=target,
                summary=summary,
                estimate=Estimate(
                    duration_s=seconds,
                    downtime_s=kw.pop("downtime", 0.0),
                    api_requests=kw.pop("requests", 4),
                    bytes=int(gib * 2**30) if kw.pop("data", False) else 0,
                ),
                region=region,
                details=details,
                **kw,
            )
        )

    return add


def add_soak(add: Callable[..., None], kind: Kind, target: str, soak_s: float) -> None:
    """The soak between cut-over and cleanup (none when ``cleanup_soak`` is 0)."""
    if soak_s <= 0:
        return
    add(
        SOAK,
        f"keep the original {kind.label}{target} (renamed aside) for {format_duration(soak_s)} "
        "after the cut-over: the way back while the encrypted copy runs under real traffic; "
        "the cleanup cannot delete it before",
        soak_s,
        requests=1,
    )


def soak(run: PhaseRun) -> Wait | None:
    """Wait until ``cleanup_soak`` has passed since the database's cut-over finished."""
    cut = run.timing().get("cut_over", {}).get("finished_at")
    if not cut:
        raise StepFailed(
            f"{run.target}: no cut-over is recorded in this run, so there is nothing to soak; "
            "resume the cut-over first."
        )
    until = parse(str(cut)) + timedelta(seconds=run.params.soak_s)
    if run.now() >= until:
        return None
    return Wait(
        f"{run.target}: kept {format_duration(run.params.soak_s)} after the cut-over "
        f"(until {iso(until)}) before the cleanup may delete the original",
        until=until,
        poll_s=max(1.0, min(run.params.poll_seconds, (until - run.now()).total_seconds())),
    )


def cleanup_risks(kind: Kind, target: str, deletion_protection: bool) -> tuple[str, ...]:
    """The risks of the cleanup gate: the kept final snapshot, and deletion protection."""
    risks = [
        f"the final {kind.label}snapshot of the original is unencrypted (it is what makes the "
        "deletion reversible); delete it once your retention policy allows",
    ]
    if deletion_protection:
        risks.append(
            f"{target} has deletion protection: cleanup stops unless "
            "disable_deletion_protection_on_cleanup is true or you turn it off yourself"
        )
    return tuple(risks)
