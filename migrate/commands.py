"""The Python API: one function per verb. The CLI and the tests both call these.

Each function opens what it needs (store, AWS session), does one thing, and returns data; printing
is the CLI's business. Errors are :class:`migrate.errors.MigrateError` subclasses.
"""

from __future__ import annotations

import inspect
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from migrate.aws import AwsSession
from migrate.engine.context import StepContext, operator_name
from migrate.engine.lock import break_lock, live_lock, live_locks, locks_for_playbook
from migrate.engine.planner import PlanResult, diff_facts, make_plan
from migrate.engine.registry import get_step_type, registered_steps
from migrate.engine.runner import Runner, RunOptions, instantiate, step_regions
from migrate.errors import (
    EXIT_AWAITING_APPROVAL,
    EXIT_FAILED,
    EXIT_OK,
    EXIT_WAITING,
    BadInputError,
    LockedError,
    NotFoundError,
    StalePlanError,
)
from migrate.playbook import Playbook, load_params_file, load_playbook, parse_cli_params
from migrate.store import Store, open_store, redact_url, resolve_url, utcnow
from migrate.store.models import (
    ActionRow,
    Approval,
    Checkpoint,
    JournalEntry,
    Plan,
    Resource,
    Run,
    StepRun,
)

STATUS_EXIT = {
    "done": EXIT_OK,
    "paused": EXIT_OK,
    "failed": EXIT_FAILED,
    "awaiting-approval": EXIT_AWAITING_APPROVAL,
    "waiting": EXIT_WAITING,
}
ENGINE_PERMISSIONS = ("sts:GetCallerIdentity",)
REPORT_SCHEMA = "migrate.run-report/1"


@dataclass
class Settings:
    """Global options: where the state lives and how to reach AWS."""

    state: str | None = None
    profile: str | None = None
    region: str | None = None
    endpoint_url: str | None = None
    quiet: bool = False
    debug: bool = False

    def store(self) -> Store:
        """Open the state store."""
        return open_store(self.state)

    def aws(self) -> AwsSession:
        """A new AWS session (client factory)."""
        return AwsSession(profile=self.profile, region=self.region, endpoint_url=self.endpoint_url)

    def state_dir(self, store: Store) -> Path:
        """Directory beside the state DB for plans, backups and reports."""
        db = store.engine.url.database
        if store.engine.url.get_backend_name() == "sqlite" and db and db != ":memory:":
            return Path(db).parent
        return Path("state")


@dataclass
class RunResult:
    """What ``run``/``resume`` return: the run id, its status and the exit code for it."""

    run_id: str
    status: str
    exit_code: int
    messages: list[str] = field(default_factory=list)


def _open(settings: Settings, options: RunOptions | None) -> tuple[Store, AwsSession, RunOptions]:
    """Store, AWS session and run options with the global settings folded in."""
    options = options or RunOptions()
    store = settings.store()
    options.state_dir = settings.state_dir(store)
    options.quiet = options.quiet or settings.quiet
    options.debug = options.debug or settings.debug
    return store, settings.aws(), options


def _new_id(prefix: str) -> str:
    return f"{prefix}-{utcnow():%Y%m%d}-{secrets.token_hex(3)}"


def _load(
    playbook_path: str,
    params: tuple[str, ...] | list[str] = (),
    params_file: str | None = None,
    stored: Mapping[str, Any] | None = None,
) -> Playbook:
    file_params: dict[str, Any] = dict(stored or {})
    if params_file:
        file_params.update(load_params_file(params_file))
    return load_playbook(playbook_path, file_params, parse_cli_params(params), params_file)


def _given(params: tuple[str, ...] | list[str], params_file: str | None) -> dict[str, Any]:
    """The parameters the operator gave explicitly (not defaults). A run keeps them, so that a
    resume re-reads defaults from the (possibly edited) playbook but keeps the operator's choices."""
    given: dict[str, Any] = {}
    if params_file:
        given.update(load_params_file(params_file))
    given.update(parse_cli_params(params))
    return given


def _reload(run_row: Run) -> Playbook:
    given = dict(run_row.options.get("given_params") or {})
    cli = {k: v for k, v in given.items() if isinstance(v, str)}
    typed = {k: v for k, v in given.items() if not isinstance(v, str)}
    return load_playbook(run_row.playbook_path, typed, cli)


def _caller_arn(aws: AwsSession) -> str | None:
    try:
        return str(aws.client("sts").get_caller_identity()["Arn"])
    except Exception:  # approvals must work even when AWS is unreachable
        return None


# --- plan -------------------------------------------------------------------------------------------
def plan(
    settings: Settings,
    playbook_path: str,
    params: tuple[str, ...] | list[str] = (),
    params_file: str | None = None,
) -> tuple[str, PlanResult]:
    """Observe and decide every step without changing anything; save and return the plan."""
    playbook = _load(playbook_path, params, params_file)
    store = settings.store()
    aws = settings.aws()
    result = make_plan(playbook, aws, settings.state_dir(store), quiet=settings.quiet, store=store)
    plan_id = _new_id("p")
    with store.write() as session:
        session.add(
            Plan(
                id=plan_id,
                playbook_path=str(Path(playbook_path).absolute()),
                playbook_name=playbook.name,
                params=playbook.params,
                fingerprint=result.fingerprint,
                facts=result.facts(),
                body=result.body(),
                created_by=operator_name(),
                created_at=utcnow(),
            )
        )
    return plan_id, result


# --- run / resume -----------------------------------------------------------------------------------
def _create_run(
    store: Store,
    playbook: Playbook,
    aws: AwsSession,
    plan_id: str | None,
    options: RunOptions,
    given: dict[str, Any],
) -> str:
    run_id = _new_id("r")
    now = utcnow()
    with store.write() as session:
        run = Run(
            id=run_id,
            playbook_path=str(Path(playbook.path).absolute()),
            playbook_name=playbook.name,
            params=playbook.params,
            status="pending",
            plan_id=plan_id,
            created_by=operator_name(),
            caller_arn=_caller_arn(aws),
            region=aws.region,
            options={
                "yes": options.yes,
                "only": options.only,
                "until": options.until,
                "given_params": given,
            },
            created_at=now,
            updated_at=now,
        )
        session.add(run)
        for position, pstep in enumerate(playbook.steps):
            session.add(
                StepRun(
                    run_id=run_id,
                    step_id=pstep.id,
                    uses=pstep.uses,
                    position=position,
                    definition=pstep.definition(),
                    fingerprint=pstep.fingerprint(playbook.params),
                    depends_on=list(pstep.depends_on),
                    status="pending",
                    replan=0,
                    outputs={},
                )
            )
    return run_id


def _check_selection(playbook_steps: list[str], options: RunOptions) -> None:
    for name in [*(options.only or []), *([options.until] if options.until else [])]:
        if name not in playbook_steps:
            raise BadInputError(
                f"there is no step {name!r} in this playbook (--only/--until); its steps are: "
                f"{', '.join(playbook_steps)}."
            )


def run(
    settings: Settings,
    playbook_path: str | None = None,
    params: tuple[str, ...] | list[str] = (),
    params_file: str | None = None,
    plan_id: str | None = None,
    options: RunOptions | None = None,
) -> RunResult:
    """Start a new run of a playbook (or of a saved plan, refused if it is stale)."""
    store, aws, options = _open(settings, options)
    if plan_id is not None:
        with store.read() as session:
            saved = session.get(Plan, plan_id)
        if saved is None:
            raise NotFoundError(
                f"there is no saved plan {plan_id!r} in {store.display_url}. `migrate plan PLAYBOOK` "
                "prints the id of the plan it saves."
            )
        playbook = _load(playbook_path or saved.playbook_path, (), None, saved.params)
        given = dict(saved.params)
        fresh = make_plan(playbook, aws, options.state_dir, quiet=True, store=store)
        if fresh.fingerprint != saved.fingerprint:
            changes = diff_facts(saved.facts, fresh.facts())
            shown = "; ".join(changes[:15]) + (
                f"; and {len(changes) - 15} more" if len(changes) > 15 else ""
            )
            raise StalePlanError(
                f"plan {plan_id} is stale: the account changed since it was made ({shown}). "
                f"Make a new plan with `migrate plan {saved.playbook_path}`, review it, and run "
                "that one."
            )
    else:
        if playbook_path is None:
            raise BadInputError("`migrate run` needs a PLAYBOOK or --plan PLAN_ID.")
        playbook = _load(playbook_path, params, params_file)
        given = _given(params, params_file)
    _check_selection([s.id for s in playbook.steps], options)
    holders = locks_for_playbook(store, playbook.name)
    if holders:
        raise LockedError(
            f"playbook {playbook.name!r} is already being run as {holders[0].run_id} by "
            f"{holders[0].describe()}. Wait for it, or `migrate resume {holders[0].run_id}` "
            "later; if its process died on another machine, `migrate unlock "
            f"{holders[0].run_id} --lock-id {holders[0].lock_id}`."
        )
    run_id = _create_run(store, playbook, aws, plan_id, options, given)
    return _execute(store, aws, run_id, options)


def _execute(store: Store, aws: AwsSession, run_id: str, options: RunOptions) -> RunResult:
    status = Runner(store, aws, options).execute(run_id)
    return RunResult(run_id, status, STATUS_EXIT.get(status, EXIT_FAILED))


@dataclass
class PlaybookChange:
    """A step whose definition differs between the run and the playbook file now."""

    step_id: str
    change: str  # "changed", "added", "removed"


def playbook_changes(settings: Settings, run_id: str) -> list[PlaybookChange]:
    """Which steps of the run's playbook changed since the run started."""
    store = settings.store()
    run_row = _get_run(store, run_id)
    if not Path(run_row.playbook_path).exists():
        return []
    playbook = _reload(run_row)
    with store.read() as session:
        stored = {sr.step_id: sr for sr in session.get(Run, run_id).steps}  # type: ignore[union-attr]
    changes: list[PlaybookChange] = []
    for pstep in playbook.steps:
        sr = stored.get(pstep.id)
        if sr is None:
            changes.append(PlaybookChange(pstep.id, "added"))
        elif sr.status != "removed" and sr.fingerprint != pstep.fingerprint(playbook.params):
            changes.append(PlaybookChange(pstep.id, "changed"))
    ids = {s.id for s in playbook.steps}
    changes += [
        PlaybookChange(sid, "removed")
        for sid, sr in stored.items()
        if sid not in ids and sr.status != "removed"
    ]
    return changes


def _apply_changes(store: Store, run_row: Run, changes: list[PlaybookChange]) -> None:
    playbook = _reload(run_row)
    by_id = {s.id: s for s in playbook.steps}
    with store.write() as session:
        run = session.get(Run, run_row.id)
        assert run is not None
        run.params = playbook.params
        existing = {sr.step_id: sr for sr in run.steps}
        for change in changes:
            if change.change == "removed":
                sr = existing[change.step_id]
                sr.status = "removed"
                continue
            pstep = by_id[change.step_id]
            if change.change == "changed":
                sr = existing[change.step_id]
                sr.definition = pstep.definition()
                sr.fingerprint = pstep.fingerprint(run.params)
                sr.depends_on = list(pstep.depends_on)
                sr.uses = pstep.uses
                sr.replan = 1
                if sr.status == "done":
                    sr.status = "pending"
            else:
                session.add(
                    StepRun(
                        run_id=run.id,
                        step_id=pstep.id,
                        uses=pstep.uses,
                        position=0,
                        definition=pstep.definition(),
                        fingerprint=pstep.fingerprint(run.params),
                        depends_on=list(pstep.depends_on),
                        status="pending",
                        replan=0,
                        outputs={},
                    )
                )
        session.flush()
        # Keep file order for steps added in the middle.
        order = {s.id: i for i, s in enumerate(playbook.steps)}
        for sr in session.scalars(select(StepRun).where(StepRun.run_id == run.id)):
            sr.position = order.get(sr.step_id, len(order) + sr.position)


def resume(
    settings: Settings, run_id: str, options: RunOptions | None = None, accept_changes: bool = False
) -> RunResult:
    """Continue a failed, interrupted, waiting or gated run where it stopped."""
    store, aws, options = _open(settings, options)
    run_row = _get_run(store, run_id)
    if run_row.status == "done":
        return RunResult(run_id, "done", EXIT_OK, [f"run {run_id} is already done"])
    if run_row.status == "rolled-back":
        raise BadInputError(
            f"run {run_id} was rolled back; it cannot be resumed. Start a new run of "
            f"{run_row.playbook_path} (plan it first)."
        )
    holder = live_lock(store, run_id)
    if holder is not None:
        raise LockedError(holder.refusal())
    changes = playbook_changes(settings, run_id)
    if changes:
        listed = ", ".join(f"{c.step_id} ({c.change})" for c in changes)
        if not accept_changes:
            raise BadInputError(
                f"the playbook {run_row.playbook_path} changed since run {run_id} started: "
                f"{listed}. Those steps would be re-planned (their done actions re-observed, not "
                "redone). Review the change, then resume with --accept-changes."
            )
        _apply_changes(store, run_row, changes)
    with store.read() as session:
        step_ids = [sr.step_id for sr in session.get(Run, run_id).steps]  # type: ignore[union-attr]
    _check_selection(step_ids, options)
    return _execute(store, aws, run_id, options)


# --- status -------------------------------------------------------------------------------------------
def _get_run(store: Store, run_id: str) -> Run:
    with store.read() as session:
        run_row = session.get(Run, run_id)
        if run_row is None:
            raise NotFoundError(
                f"there is no run {run_id!r} in {store.display_url}. `migrate status` lists the runs "
                "(check --state / MIGRATE_STATE)."
            )
        return run_row


def status(settings: Settings, run_id: str | None = None) -> dict[str, Any]:
    """All runs (newest first), or one run with its steps, actions and progress."""
    store = settings.store()
    if run_id is None:
        with store.read() as session:
            rows = session.scalars(select(Run).order_by(Run.created_at.desc())).all()
            return {
                "runs": [
                    {
                        "id": r.id,
                        "playbook": r.playbook_name,
                        "status": r.status,
                        "created_at": r.created_at.isoformat(timespec="seconds"),
                        "updated_at": r.updated_at.isoformat(timespec="seconds"),
                        "created_by": r.created_by,
                    }
                    for r in rows
                ]
            }
    _get_run(store, run_id)
    with store.read() as session:
        run_row = session.get(Run, run_id)
        assert run_row is not None
        lock = live_lock(store, run_id)
        steps_out = []
        for sr in run_row.steps:
            actions_out = []
            for a in sr.actions:
                cps = session.scalars(select(Checkpoint).where(Checkpoint.action_id == a.id)).all()
                progress = None
                if cps:
                    progress = {"done": sum(c.done for c in cps), "total": cps[0].total}
                actions_out.append(
                    {
                        "id": a.id,
                        "kind": a.kind,
                        "target": a.target,
                        "summary": a.summary,
                        "status": a.status,
                        "gate": a.gate,
                        "destructive": bool(a.destructive),
                        "attempts": a.attempts,
                        "wait_reason": a.wait_reason,
                        "wait_until": a.wait_until.isoformat(timespec="seconds")
                        if a.wait_until
                        else None,
                        "error": a.error,
                        "progress": progress,
                        "estimate": (a.data or {}).get("estimate", {}),
                        "risks": (a.data or {}).get("risks", []),
                        "result": dict(a.result or {}),
                        "started_at": a.started_at.isoformat(timespec="seconds")
                        if a.started_at
                        else None,
                        "finished_at": a.finished_at.isoformat(timespec="seconds")
                        if a.finished_at
                        else None,
                    }
                )
            steps_out.append(
                {
                    "id": sr.step_id,
                    "uses": sr.uses,
                    "status": sr.status,
                    "depends_on": list(sr.depends_on),
                    "error": sr.error,
                    "outputs": dict(sr.outputs),
                    "actions": actions_out,
                }
            )
        approvals = session.scalars(select(Approval).where(Approval.run_id == run_id)).all()
        journal_count = session.scalar(
            select(func.count()).select_from(JournalEntry).where(JournalEntry.run_id == run_id)
        )
        return {
            "id": run_row.id,
            "playbook": run_row.playbook_name,
            "playbook_path": run_row.playbook_path,
            "status": run_row.status,
            "error": run_row.error,
            "plan_id": run_row.plan_id,
            "created_by": run_row.created_by,
            "caller_arn": run_row.caller_arn,
            "created_at": run_row.created_at.isoformat(timespec="seconds"),
            "updated_at": run_row.updated_at.isoformat(timespec="seconds"),
            "lock": None if lock is None else {"lock_id": lock.lock_id, "holder": lock.describe()},
            "steps": steps_out,
            "approvals": [
                {
                    "step": a.step_id,
                    "target": a.target,
                    "by": a.approved_by,
                    "caller_arn": a.caller_arn,
                    "at": a.approved_at.isoformat(timespec="seconds"),
                    "via": a.via,
                }
                for a in approvals
            ],
            "journal_entries": journal_count,
        }


# --- approve / unlock / rollback -----------------------------------------------------------------
def approve(
    settings: Settings,
    run_id: str,
    step_id: str,
    target: str | None = None,
    gate: str | None = None,
) -> dict[str, Any]:
    """Approve the gates that await approval in a step (optionally one target's only).

    An approval opens the gates waiting *now*: approving the stop-writes gate of a database does
    not approve its later cut-over. With nothing awaiting, ``gate`` records a standing approval of
    that gate (for ``target``, or every target) that opens it when the run reaches it.
    """
    store = settings.store()
    _get_run(store, run_id)
    with store.read() as session:
        sr = session.scalar(
            select(StepRun).where(StepRun.run_id == run_id, StepRun.step_id == step_id)
        )
        if sr is None:
            ids = [s.step_id for s in session.get(Run, run_id).steps]  # type: ignore[union-attr]
            raise NotFoundError(
                f"run {run_id} has no step {step_id!r}; its steps are: {', '.join(ids)}."
            )
        targets = sorted({a.target for a in sr.actions if a.status != "superseded"})
        awaiting = [
            a
            for a in sr.actions
            if a.status == "awaiting-approval"
            and target in (None, a.target)
            and gate in (None, a.gate or "approve")
        ]
    if target is not None and targets and target not in targets:
        raise NotFoundError(
            f"step {step_id} of run {run_id} has no action on {target!r}; its targets are: "
            f"{', '.join(targets)}."
        )
    if not awaiting and gate is None:
        raise BadInputError(
            f"nothing in step {step_id} of run {run_id} awaits approval"
            + (f" for {target}" if target else "")
            + " right now. To approve a gate before the run reaches it, name it with --gate "
            "(e.g. --gate cut-over); `migrate status RUN` shows the gates."
        )
    who = operator_name()
    arn = _caller_arn(settings.aws())
    now = utcnow()
    with store.write() as session:
        session.add(
            Approval(
                run_id=run_id,
                step_id=step_id,
                target=target,
                approved_by=who,
                caller_arn=arn,
                approved_at=now,
                via="approve" if awaiting else f"standing:{gate}"[:32],
            )
        )
        released = 0
        for stale in awaiting:
            row = session.get(ActionRow, stale.id)
            assert row is not None
            # The approval belongs to this action (this gate) only.
            row.result = {
                **(row.result or {}),
                "approved": {"by": who, "caller_arn": arn, "at": now.isoformat()},
            }
            row.status = "pending"
            released += 1
        sr_row = session.get(StepRun, sr.id)
        assert sr_row is not None
        if sr_row.status == "awaiting-approval":
            sr_row.status = "pending"
    return {
        "run_id": run_id,
        "step": step_id,
        "target": target,
        "gate": gate,
        "by": who,
        "caller_arn": arn,
        "released": released,
    }


def unlock(settings: Settings, run_id: str, lock_id: str) -> dict[str, Any]:
    """Break a run's lease (``migrate unlock RUN --lock-id ID``)."""
    info = break_lock(settings.store(), run_id, lock_id)
    return {"run_id": run_id, "lock_id": lock_id, "holder": info.describe()}


def rollback(
    settings: Settings, run_id: str, step_id: str | None = None, options: RunOptions | None = None
) -> list[str]:
    """Undo the steps of a run (newest first), or one step, where the step type can."""
    options = options or RunOptions()
    store = settings.store()
    aws = settings.aws()
    run_row = _get_run(store, run_id)
    holder = live_lock(store, run_id)
    if holder is not None:
        raise LockedError(f"run {run_id} is locked by {holder.describe()}; wait for it first.")
    with store.read() as session:
        steps = list(session.get(Run, run_id).steps)  # type: ignore[union-attr]
    if step_id is not None and step_id not in [s.step_id for s in steps]:
        raise NotFoundError(f"run {run_id} has no step {step_id!r}.")
    outputs = {s.step_id: dict(s.outputs) for s in steps if s.status == "done"}
    done: list[str] = []
    ids = [s.step_id for s in steps]
    from migrate.engine.lock import RunLock

    with RunLock(store, run_id):
        from migrate.engine.journal import Journal

        journal = Journal(store)
        journal.scope.run_id = run_id
        aws.set_recorder(journal)
        try:
            for sr in reversed(steps):
                if step_id is not None and sr.step_id != step_id:
                    continue
                if sr.status in ("pending", "removed") and not sr.actions:
                    continue
                journal.scope.step_id = sr.step_id
                step = instantiate(run_row, sr, outputs, ids[: ids.index(sr.step_id)])
                ctx = StepContext(
                    aws=aws,
                    step_id=sr.step_id,
                    regions=step_regions(step, aws),
                    state_dir=settings.state_dir(store),
                    run_id=run_id,
                    store=store,
                )
                try:
                    step.rollback(ctx)
                except NotImplementedError as exc:
                    done.append(f"{sr.step_id}: not rolled back ({exc})")
                    continue
                with store.write() as session:
                    row = session.get(StepRun, sr.id)
                    assert row is not None
                    row.status = "rolled-back"
                done.append(f"{sr.step_id}: rolled back")
        finally:
            journal.flush()
            aws.set_recorder(None)
    with store.write() as session:
        r = session.get(Run, run_id)
        assert r is not None
        r.status = "rolled-back" if step_id is None else r.status
        r.updated_at = utcnow()
    return done


# --- report ---------------------------------------------------------------------------------------------
def report(settings: Settings, run_id: str) -> dict[str, Any]:
    """What happened in a run: status, actions with planned vs actual durations, downtime taken,
    approvals, resources, what is still pending, and the journal. Stable JSON: see docs/reports.md."""
    from datetime import datetime

    store = settings.store()
    data = status(settings, run_id)
    data["schema"] = REPORT_SCHEMA
    pending: list[dict[str, Any]] = []
    downtime_taken = 0.0
    for step in data["steps"]:
        for a in step["actions"]:
            actual = None
            if a["started_at"] and a["finished_at"] and a["status"] == "done":
                actual = (
                    datetime.fromisoformat(a["finished_at"])
                    - datetime.fromisoformat(a["started_at"])
                ).total_seconds()
            a["planned_s"] = float(a["estimate"].get("duration_s", 0.0))
            a["actual_s"] = actual
            measured = a["result"].get("downtime_s")
            if isinstance(measured, (int, float)):
                downtime_taken += float(measured)
            elif a["estimate"].get("downtime_s") and actual is not None:
                downtime_taken += actual
            if a["status"] in ("waiting", "awaiting-approval", "pending", "failed", "started"):
                pending.append(
                    {
                        "step": step["id"],
                        "target": a["target"],
                        "status": a["status"],
                        "gate": a["gate"],
                        "wait_until": a["wait_until"],
                        "summary": a["summary"],
                    }
                )
    data["pending"] = pending
    data["downtime_taken_s"] = downtime_taken
    with store.read() as session:
        data["resources"] = [
            {
                "step": r.step_id,
                "kind": r.kind,
                "identifier": r.identifier,
                "region": r.region,
                "change": r.change,
                "at": r.created_at.isoformat(timespec="seconds"),
                # Details never hold secrets (the step contract): timings, previous settings.
                "details": dict(r.details or {}),
            }
            for r in session.scalars(select(Resource).where(Resource.run_id == run_id))
        ]
        measured = [
            float(r["details"]["downtime_s"])
            for r in data["resources"]
            if isinstance(r["details"].get("downtime_s"), (int, float))
        ]
        if measured:
            # Steps that measure their downtime (RDS: stop-writes to cut-over) are the evidence.
            data["downtime_taken_s"] = sum(measured)
        data["journal"] = [
            {
                "at": j.at.isoformat(timespec="seconds"),
                "step": j.step_id,
                "service": j.service,
                "operation": j.operation,
                "region": j.region,
                "target": j.target,
                "request_id": j.request_id,
                "outcome": j.outcome,
            }
            for j in session.scalars(
                select(JournalEntry).where(JournalEntry.run_id == run_id).order_by(JournalEntry.id)
            )
        ]
    return data


# --- steps / permissions ----------------------------------------------------------------------------
def steps() -> list[dict[str, Any]]:
    """Every registered step type with its help, parameters (JSON Schema), outputs and example."""
    out = []
    for name, cls in registered_steps().items():
        out.append(
            {
                "name": name,
                "help": inspect.cleandoc(cls.__doc__ or ""),
                "schema": cls.Params.model_json_schema(),
                "outputs": list(cls.outputs),
                "permissions": list(cls.permissions),
                "example": cls.example,
            }
        )
    return out


def step_help(name: str) -> dict[str, Any]:
    """One step type's help."""
    if get_step_type(name) is None:
        raise NotFoundError(
            f"there is no step type {name!r}; the step types are: {', '.join(registered_steps())}."
        )
    return next(s for s in steps() if s["name"] == name)


def permissions(
    playbook_path: str, params: tuple[str, ...] | list[str] = (), params_file: str | None = None
) -> dict[str, Any]:
    """The IAM policy document the migrator needs to run ``playbook_path``."""
    playbook = _load(playbook_path, params, params_file)
    statements = [
        {
            "Sid": "MigrateEngine",
            "Effect": "Allow",
            "Action": sorted(ENGINE_PERMISSIONS),
            "Resource": "*",
        }
    ]
    for pstep in playbook.steps:
        actions = sorted(set(pstep.step_type.permissions))
        if actions:
            sid = "".join(part.capitalize() for part in pstep.id.replace("_", "-").split("-"))
            statements.append(
                {"Sid": f"Step{sid}"[:100], "Effect": "Allow", "Action": actions, "Resource": "*"}
            )
    return {"Version": "2012-10-17", "Statement": statements}


# --- state store ------------------------------------------------------------------------------------
def copy_state(source: str | None, target: str) -> dict[str, Any]:
    """Copy a whole state store (runs, plans, journal, evidence) into an empty one
    (``migrate state copy``): a team that started on a laptop moves to PostgreSQL."""
    from migrate.store.copy import copy_store

    source_url, target_url = resolve_url(source), resolve_url(target)
    if source_url == target_url:
        raise BadInputError(f"--from and --to are the same store ({redact_url(source_url)}).")
    if source_url.startswith("sqlite:///") and not Path(source_url[10:]).is_file():
        raise NotFoundError(
            f"there is no state store at {source_url[10:]} to copy (--from, or --state / "
            "MIGRATE_STATE)."
        )
    src = Store(source_url)
    busy = live_locks(src)
    if busy:
        raise LockedError(
            f"run {busy[0].run_id} of {src.display_url} is in progress, held by "
            f"{busy[0].describe()}. Copy the store when no run is going on, so that nothing "
            "is written to the old store after the copy."
        )
    dst = Store(target_url)
    try:
        copied = copy_store(src, dst)
    finally:
        src.close()
        dst.close()
    return {
        "from": src.display_url,
        "to": dst.display_url,
        "schema_version": dst.schema_version,
        "rows": copied,
    }
