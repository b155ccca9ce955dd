"""The Python API: one function per verb. The CLI and the tests both call these.

Each function opens what it needs (store, AWS session), does one thing, and returns data; printing
is the CLI's business. Errors are :class:`migrate.errors.MigrateError` subclasses.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from migrate import __version__
from migrate.aws.errors import access_denied, error_code, not_found
from migrate.aws.iam_scope import PolicyBuilder, Scope
from migrate.aws.session import AwsSession
from migrate.cloudtrail import api as cloudtrail_api
from migrate.cloudtrail.model import UsageReport
from migrate.configs import classpath as jvm
from migrate.configs.references import Reference, files_under, references
from migrate.engine.context import StepContext, operator_name
from migrate.engine.lock import (
    already_running,
    break_lock,
    claim_new_run,
    live_lock,
    live_locks,
    playbook_holder,
)
from migrate.engine.outputs import is_known
from migrate.engine.planner import PlanResult, diff_facts, make_plan
from migrate.engine.playbook import (
    Playbook,
    PlaybookStep,
    load_params_file,
    load_playbook,
    parse_cli_params,
    render_step,
    validate_with,
)
from migrate.engine.registry import get_step_type, registered_steps
from migrate.engine.runner import Runner, RunOptions, instantiate, step_regions
from migrate.errors import (
    EXIT_AWAITING_APPROVAL,
    EXIT_FAILED,
    EXIT_OK,
    EXIT_WAITING,
    AwsConfigError,
    BadInputError,
    LockedError,
    MigrateError,
    NotFoundError,
    StalePlanError,
)
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
from migrate.store.status import ActionStatus, RunStatus, StepStatus

STATUS_EXIT = {
    RunStatus.DONE: EXIT_OK,
    RunStatus.PAUSED: EXIT_OK,
    RunStatus.FAILED: EXIT_FAILED,
    RunStatus.AWAITING_APPROVAL: EXIT_AWAITING_APPROVAL,
    RunStatus.WAITING: EXIT_WAITING,
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
    status: RunStatus
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


PLAN_SCHEMA = "migrate.plan/1"


def account_context(aws: AwsSession, regions: list[str] | None = None) -> dict[str, Any]:
    """Who and where a document is about: account, partition, caller, regions, time, version.

    Every plan, report and JSON document carries it, so a change board never approves a plan
    for the wrong account or region."""
    ident = aws.client("sts").get_caller_identity()
    arn = str(ident["Arn"])
    return {
        "account_id": str(ident["Account"]),
        "caller_arn": arn,
        "partition": arn.split(":")[1] if arn.startswith("arn:") else "aws",
        "regions": sorted(set(regions or [aws.region or ""]) - {""}),
        "generated_at": utcnow().strftime("%Y-%m-%dT%H:%M:%SZ"),
        "tool_version": __version__,
    }


def run_context(data: dict[str, Any]) -> dict[str, Any]:
    """The account banner of a stored run, from what the run recorded (no AWS call: a report
    must work from the state store alone)."""
    arn = data.get("caller_arn") or ""
    fields = arn.split(":") if arn.startswith("arn:") else []
    regions = {a.get("region") for s in data["steps"] for a in s["actions"]} - {None, ""}
    return {
        "account_id": fields[4] if len(fields) > 4 else None,
        "caller_arn": arn or None,
        "partition": fields[1] if len(fields) > 1 else None,
        "regions": sorted(str(r) for r in regions),
        "generated_at": utcnow().strftime("%Y-%m-%dT%H:%M:%SZ"),
        "tool_version": __version__,
    }


def playbook_fingerprint(playbook: Playbook) -> str:
    """sha256 of the playbook file and its resolved parameters: which text the plan is of."""
    digest = hashlib.sha256(Path(playbook.path).read_bytes())
    digest.update(json.dumps(playbook.params, sort_keys=True, default=str).encode())
    return "sha256:" + digest.hexdigest()


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
    regions = sorted({r for s in result.steps for r in s.regions} | {aws.region or ""} - {""})
    result.context = {
        **account_context(aws, regions),
        "playbook_fingerprint": playbook_fingerprint(playbook),
    }
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
    caller = _caller_arn(aws)  # an AWS call: not while holding the store's write lock
    with store.write() as session:
        run = Run(
            id=run_id,
            playbook_path=str(Path(playbook.path).absolute()),
            playbook_name=playbook.name,
            params=playbook.params,
            status=RunStatus.PENDING,
            plan_id=plan_id,
            created_by=operator_name(),
            caller_arn=caller,
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
                    status=ActionStatus.PENDING,
                    replan=0,
                    outputs={},
                )
            )
        session.flush()
        # The "already being run" check and the new run's lease in one write transaction.
        claim_new_run(session, run_id, playbook.name)
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
    *,
    just_planned: bool = False,
) -> RunResult:
    """Start a new run of a playbook (or of a saved plan, refused if it is stale).

    ``just_planned``: the caller made ``plan_id`` a moment ago in this process and showed it
    (``migrate run PLAYBOOK``): it is not planned a second time to find it stale (for S3 that
    is a second listing and HEAD sample of every bucket). A saved plan of a meeting is always
    checked."""
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
        fresh = (
            None
            if just_planned
            else make_plan(playbook, aws, options.state_dir, quiet=True, store=store)
        )
        if fresh is not None and fresh.fingerprint != saved.fingerprint:
            # Planned while another run of this playbook was acting: that run is the change,
            # and the answer the operator needs is that it is running, not "plan again".
            holder = playbook_holder(store, playbook.name)
            if holder is not None:
                raise already_running(playbook.name, holder)
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
        elif sr.status != StepStatus.REMOVED and sr.fingerprint != pstep.fingerprint(
            playbook.params
        ):
            changes.append(PlaybookChange(pstep.id, "changed"))
    ids = {s.id for s in playbook.steps}
    changes += [
        PlaybookChange(sid, "removed")
        for sid, sr in stored.items()
        if sid not in ids and sr.status != StepStatus.REMOVED
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
                sr.status = StepStatus.REMOVED
                continue
            pstep = by_id[change.step_id]
            if change.change == "changed":
                sr = existing[change.step_id]
                sr.definition = pstep.definition()
                sr.fingerprint = pstep.fingerprint(run.params)
                sr.depends_on = list(pstep.depends_on)
                sr.uses = pstep.uses
                sr.replan = 1
                if sr.status == StepStatus.DONE:
                    sr.status = StepStatus.PENDING
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
                        status=ActionStatus.PENDING,
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
    if run_row.status == RunStatus.DONE:
        return RunResult(run_id, RunStatus.DONE, EXIT_OK, [f"run {run_id} is already done"])
    if run_row.status == RunStatus.ROLLED_BACK:
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


def residuals_of(data: dict[str, Any]) -> list[dict[str, Any]]:
    """What a run leaves for the FTR: residuals its steps recorded (keys still active, originals
    kept, objects skipped, ...) and every action still waiting for a person or a deadline."""
    out: list[dict[str, Any]] = []
    for step in data["steps"]:
        for a in step["actions"]:
            for r in (a.get("result") or {}).get("residuals", []):
                if isinstance(r, dict) and "what" in r:
                    out.append({"step": step["id"], "target": a["target"], **r})
            if a["status"] == ActionStatus.AWAITING_APPROVAL:
                out.append(
                    {
                        "step": step["id"],
                        "target": a["target"],
                        "what": f"awaits approval ({a['gate'] or 'approve'})",
                        "why": a["summary"],
                        "fix": f"migrate approve {data['id']} {step['id']} --target {a['target']}",
                    }
                )
            elif a["status"] == ActionStatus.SKIPPED:
                out.append(
                    {
                        "step": step["id"],
                        "target": a["target"],
                        "what": "skipped by the operator (--step: no)",
                        "why": a["summary"],
                        "fix": f"a new run of {data['playbook']} plans it again",
                    }
                )
            elif a["status"] in (ActionStatus.WAITING, ActionStatus.FAILED, ActionStatus.PENDING):
                out.append(
                    {
                        "step": step["id"],
                        "target": a["target"],
                        "what": f"not finished ({a['status']})",
                        "why": a["error"] or a["wait_reason"] or a["summary"],
                        "fix": f"migrate resume {data['id']}",
                    }
                )
    return out


def _shown_status(store: Store, run_row: Run, lock: Any = ...) -> str:
    """A run marked ``running`` whose process is gone (killed, machine lost) is shown as
    ``interrupted``: that is what it is, and `migrate resume` continues it."""
    if run_row.status != RunStatus.RUNNING:
        return run_row.status
    holder = live_lock(store, run_row.id) if lock is ... else lock
    return RunStatus.RUNNING if holder is not None else RunStatus.INTERRUPTED


def status(settings: Settings, run_id: str | None = None) -> dict[str, Any]:
    """All runs (newest first), or one run with its steps, actions and progress."""
    store = settings.store()
    if run_id is None:
        with store.read() as session:
            rows = session.scalars(select(Run).order_by(Run.created_at.desc())).all()
            return {
                "schema": STATUS_SCHEMA,
                "runs": [
                    {
                        "id": r.id,
                        "playbook": r.playbook_name,
                        "status": _shown_status(store, r),
                        "created_at": r.created_at.isoformat(timespec="seconds"),
                        "updated_at": r.updated_at.isoformat(timespec="seconds"),
                        "created_by": r.created_by,
                    }
                    for r in rows
                ],
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
                        "region": (a.data or {}).get("region"),
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
            "schema": STATUS_SCHEMA,
            "id": run_row.id,
            "playbook": run_row.playbook_name,
            "playbook_path": run_row.playbook_path,
            "status": _shown_status(store, run_row, lock),
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
                    "reason": a.reason,
                    "ticket": a.ticket,
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
    *,
    reason: str | None = None,
    ticket: str | None = None,
    all_targets: bool = False,
) -> dict[str, Any]:
    """Approve the gates that await approval in a step (optionally one target's only).

    An approval opens the gates waiting *now*: approving the stop-writes gate of a database does
    not approve its later cut-over. With nothing awaiting, ``gate`` records a standing approval of
    that gate (for ``target``, or with ``all_targets`` every target) that opens it when the run
    reaches it. ``gate`` must be one the step can reach; when gates of different kinds wait, the
    approval must name one. ``reason`` and ``ticket`` are recorded with it.
    """
    store = settings.store()
    run_row = _get_run(store, run_id)
    reachable = _reachable_gates(store, run_row, step_id)
    with store.read() as session:
        sr = session.scalar(
            select(StepRun).where(StepRun.run_id == run_id, StepRun.step_id == step_id)
        )
        if sr is None:
            ids = [s.step_id for s in session.get(Run, run_id).steps]  # type: ignore[union-attr]
            raise NotFoundError(
                f"run {run_id} has no step {step_id!r}; its steps are: {', '.join(ids)}."
            )
        targets = sorted({a.target for a in sr.actions if a.status != ActionStatus.SUPERSEDED})
        awaiting = [
            a
            for a in sr.actions
            if a.status == ActionStatus.AWAITING_APPROVAL
            and target in (None, a.target)
            and gate in (None, a.gate or "approve")
        ]
    if target is not None and targets and target not in targets:
        raise NotFoundError(
            f"step {step_id} of run {run_id} has no action on {target!r}; its targets are: "
            f"{', '.join(targets)}."
        )
    if gate is not None and gate not in reachable:
        raise BadInputError(
            f"step {step_id} of run {run_id} has no gate {gate!r}; the gates it can reach are: "
            + (", ".join(sorted(reachable)) or "none")
            + ". Name one of them with --gate."
        )
    kinds = sorted({a.gate or "approve" for a in awaiting})
    if gate is None and target is None and len(kinds) > 1:
        raise BadInputError(
            f"gates of different kinds await approval in step {step_id} of run {run_id} ("
            + ", ".join(kinds)
            + "); approve one kind at a time: "
            + "; ".join(f"`migrate approve {run_id} {step_id} --gate {k}`" for k in kinds)
            + " (add --target RESOURCE for one resource)."
        )
    standing = not awaiting and gate is not None and target is None
    if standing and not all_targets and reachable.get(str(gate)):
        raise BadInputError(
            f"--gate {gate} is destructive: a standing approval of it needs --target RESOURCE "
            "(one resource), or --all-targets to approve it for every resource of the step "
            "before the run gets there."
        )
    if not awaiting and gate is None:
        raise BadInputError(
            f"nothing in step {step_id} of run {run_id} awaits approval"
            + (f" for {target}" if target else "")
            + " right now. To approve a gate before the run reaches it, name it with --gate "
            "(e.g. --gate cut-over); `migrate status RUN` shows the gates."
        )
    who = operator_name()
    try:
        arn = _caller_arn(settings.aws())
    except AwsConfigError:  # no region or profile: the approval still counts, without the ARN
        arn = None
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
                reason=reason,
                ticket=ticket,
            )
        )
        released = 0
        for stale in awaiting:
            row = session.get(ActionRow, stale.id)
            assert row is not None
            # The approval belongs to this action (this gate) only.
            row.result = {
                **(row.result or {}),
                "approved": {
                    "by": who,
                    "caller_arn": arn,
                    "at": now.isoformat(),
                    "reason": reason,
                    "ticket": ticket,
                },
            }
            row.status = ActionStatus.PENDING
            released += 1
        sr_row = session.get(StepRun, sr.id)
        assert sr_row is not None
        if sr_row.status == StepStatus.AWAITING_APPROVAL:
            sr_row.status = StepStatus.PENDING
    return {
        "run_id": run_id,
        "step": step_id,
        "target": target,
        "gate": gate,
        "by": who,
        "caller_arn": arn,
        "released": released,
    }


def _reachable_gates(store: Store, run_row: Run, step_id: str) -> dict[str, bool]:
    """The gate names a step of a run can reach, each with whether it guards a destructive
    action: from the step's decided actions, and from the saved plan the run applies."""
    gates: dict[str, bool] = {}
    with store.read() as session:
        sr = session.scalar(
            select(StepRun).where(StepRun.run_id == run_row.id, StepRun.step_id == step_id)
        )
        rows = list(sr.actions) if sr is not None else []
        for a in rows:
            if a.gate or (sr is not None and sr.definition.get("approve")):
                name = a.gate or "approve"
                gates[name] = gates.get(name, False) or bool(a.destructive)
        saved = session.get(Plan, run_row.plan_id) if run_row.plan_id else None
        for step in (saved.body or {}).get("steps", []) if saved is not None else []:
            if step.get("id") != step_id:
                continue
            for a in step.get("actions", []):
                if a.get("gate") or step.get("gated"):
                    name = a.get("gate") or "approve"
                    gates[name] = gates.get(name, False) or bool(a.get("destructive"))
    return gates


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
        has_actions = {s.id: bool(s.actions) for s in steps}  # loaded while the session is open
    if step_id is not None and step_id not in [s.step_id for s in steps]:
        raise NotFoundError(f"run {run_id} has no step {step_id!r}.")
    outputs = {s.step_id: dict(s.outputs) for s in steps if s.status == StepStatus.DONE}
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
                if sr.status in (StepStatus.PENDING, StepStatus.REMOVED) and not has_actions[sr.id]:
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
                    row.status = ActionStatus.ROLLED_BACK
                done.append(f"{sr.step_id}: rolled back")
        finally:
            journal.flush()
            aws.set_recorder(None)
    with store.write() as session:
        r = session.get(Run, run_id)
        assert r is not None
        r.status = RunStatus.ROLLED_BACK if step_id is None else r.status
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
    data["context"] = run_context(data)
    pending: list[dict[str, Any]] = []
    downtime_taken = 0.0
    for step in data["steps"]:
        for a in step["actions"]:
            actual = None
            if a["started_at"] and a["finished_at"] and a["status"] == ActionStatus.DONE:
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
            if a["status"] in (
                ActionStatus.WAITING,
                ActionStatus.AWAITING_APPROVAL,
                ActionStatus.PENDING,
                ActionStatus.FAILED,
                ActionStatus.STARTED,
            ):
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
    data["residuals"] = residuals_of(data)
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
STEPS_SCHEMA = "migrate.steps/1"
STATUS_SCHEMA = "migrate.status/1"


def playbook_schema() -> dict[str, Any]:
    """A JSON Schema of playbook files, generated from every step type's ``with`` schema.

    Editors (VS Code's YAML extension, JetBrains) validate and complete playbooks with it:
    ``# yaml-language-server: $schema=playbook.schema.json`` at the top of a playbook."""
    variants = []
    for name, cls in registered_steps().items():
        variants.append(
            {
                "if": {"properties": {"uses": {"const": name}}},
                "then": {"properties": {"with": cls.Params.model_json_schema()}},
            }
        )
    step_schema: dict[str, Any] = {
        "type": "object",
        "required": ["id", "uses"],
        "additionalProperties": False,
        "properties": {
            "id": {"type": "string", "pattern": "^[A-Za-z][A-Za-z0-9_-]{0,62}$"},
            "uses": {"enum": list(registered_steps())},
            "with": {"type": "object"},
            "approve": {"type": "boolean"},
            "depends_on": {"type": "array", "items": {"type": "string"}},
            "description": {"type": "string"},
            "yes_approves": {"enum": ["none", "non-destructive", "all"]},
        },
        "allOf": variants,
    }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "migrate.playbook/1",
        "title": "migrate playbook",
        "type": "object",
        "required": ["name", "steps"],
        "additionalProperties": False,
        "properties": {
            "name": {"type": "string"},
            "description": {"type": "string"},
            "params": {
                "type": "object",
                "additionalProperties": {
                    "type": "object",
                    "properties": {
                        "type": {"enum": ["string", "integer", "number", "boolean", "list", "map"]},
                        "default": {},
                        "description": {"type": "string"},
                    },
                    "additionalProperties": False,
                },
            },
            "steps": {"type": "array", "items": step_schema},
            "approvers": {
                "type": "object",
                "description": "Who approves each gate kind, shown in the plan's gates table.",
                "additionalProperties": {"type": "string", "minLength": 1},
            },
        },
    }


def saved_plan(settings: Settings, plan_id: str) -> dict[str, Any]:
    """The body of a saved plan, as `migrate plan` printed it (``migrate plan show ID``)."""
    store = settings.store()
    try:
        with store.read() as session:
            saved = session.get(Plan, plan_id)
            if saved is None:
                raise NotFoundError(
                    f"there is no saved plan {plan_id!r} in {store.url}. `migrate plan PLAYBOOK` "
                    "prints the id of the plan it saves."
                )
            body = dict(saved.body or {})
    finally:
        store.close()
    body["plan_id"] = plan_id
    return body


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


def trail_usage(
    settings: Settings,
    source: str | None = None,
    since: str = "90d",
    regions: list[str] | None = None,
    **options: Any,
) -> UsageReport:
    """Ingest what is new in a CloudTrail ``source`` and return (and store) the per-key usage.

    ``source``: ``s3://bucket/prefix``, a directory, ``lookup``, ``athena[:s3://...]`` or None
    (the account's trail bucket, else ``lookup``); ``options`` go to
    :func:`migrate.cloudtrail.api.usage` (accounts, workers, athena, attribute, progress, ...).
    """
    store = settings.store()
    try:
        return cloudtrail_api.usage(store, settings.aws(), source, since, regions, **options)
    finally:
        store.close()


def _wrapper_keys_missing(value: Mapping[str, Any]) -> str | None:
    """Why the Secrets Manager JDBC wrapper could not log in with this secret: it reads the
    JSON keys ``username`` and ``password`` (only the key names are looked at, never a value)."""
    try:
        parsed = json.loads(str(value.get("SecretString") or ""))
    except ValueError:
        parsed = None
    if not isinstance(parsed, dict):  # never list a value: only an object's key names
        return "not a JSON object: the JDBC wrapper reads the keys username and password"
    keys = set(parsed)
    missing = sorted({"username", "password"} - keys)
    if missing:
        return (
            f"no {' and no '.join(missing)} key: the JDBC wrapper reads username and password "
            f"(the secret has {', '.join(sorted(keys)) or 'no keys'})"
        )
    return None


def _classpath_checks(refs: list[Reference], extra: list[Path]) -> list[dict[str, Any]]:
    """Per file and need (the JDBC wrapper of a Tomcat resource, Spring Cloud AWS for an
    import): whether the application's classpath holds what it will load. The classpath is
    ``extra`` (``--classpath``) plus what the file's place shows (a Tomcat's ``lib``, a webapp's
    ``WEB-INF/lib``); without either, the check says it was not made, and does not fail."""
    out: list[dict[str, Any]] = []
    cache: dict[tuple[str, ...], jvm.Classpath] = {}

    def read(entries: list[Path]) -> jvm.Classpath:
        key = tuple(str(e) for e in entries)
        if key not in cache:
            cache[key] = jvm.read_classpath(entries)
        return cache[key]

    seen: set[tuple[str, str]] = set()
    for ref in refs:
        path = Path(ref.file)
        common: list[Path] = []
        if ref.via == "JDBC wrapper username":
            webapp, common = jvm.tomcat_loaders(path)
            common = list(dict.fromkeys(common + extra))
            need, entries = ref.driver, webapp + common
        elif ref.via == "spring.config.import":
            need, entries = "spring", jvm.spring_classpath(path) + extra
        else:
            continue
        if (ref.file, need) in seen:
            continue
        seen.add((ref.file, need))
        entries = list(dict.fromkeys(entries))
        if not entries:
            what = "the JDBC wrapper" if need != "spring" else "spring.config.import"
            out.append(
                {"file": ref.file, "line": ref.line, "needs": what, "ok": None, "searched": []}
            )
            continue
        cp = read(entries)
        if need == "spring":
            verdict = jvm.check_spring(cp)
        else:
            parent = read(common) if common and common != entries else None
            verdict = jvm.check_wrapper(cp, need, jvm.system_properties(path), parent)
        out.append(
            {
                "file": ref.file,
                "line": ref.line,
                "needs": verdict.needs,
                "ok": not verdict.problems,
                "problems": list(verdict.problems),
                "found": list(verdict.found),
                "searched": cp.searched,
                "unreadable": cp.unreadable,
            }
        )
    return out


def secrets_check(
    settings: Settings, paths: list[str], classpath: Sequence[str] = ()
) -> dict[str, Any]:
    """Resolve every secret the config files under ``paths`` refer to, as their apps will.

    Read-only: ``DescribeSecret`` and ``GetSecretValue`` (``AWSCURRENT``) with the caller's
    credentials; the value is dropped unread. Each reference comes back with ``ok`` and, when it
    would fail, why (missing, scheduled for deletion, access denied, the key refuses to decrypt).
    Placeholders are listed as variables something must supply at start-up. Then the
    application's classpath (``classpath`` and the Tomcat or webapp the file is in) is read for
    what the rewrite makes it load: the JDBC wrapper with its SDK and real driver, or Spring
    Cloud AWS (:mod:`migrate.configs.classpath`).
    """
    extra = [Path(os.path.expanduser(c)).absolute() for c in classpath]
    missing = [str(p) for p in extra if not p.exists()]
    if missing:
        raise BadInputError(
            f"secrets check --classpath {', '.join(missing)}: no such file or directory. Pass "
            "the application's lib directory, jar or WAR (repeat --classpath for several)."
        )
    files = files_under(paths)
    if not files:
        raise BadInputError(
            f"secrets check: {', '.join(paths)} holds no config file migrate reads; name the "
            "rewritten files or their directories."
        )
    refs = [r for f in files for r in references(f, f.read_bytes())]
    sm = settings.aws().client("secretsmanager")
    verdicts: dict[str, str | None] = {}
    wrapped = {r.target for r in refs if r.kind == "secret" and r.via == "JDBC wrapper username"}
    for name in sorted({r.target for r in refs if r.kind == "secret"}):
        try:
            desc = sm.describe_secret(SecretId=name)
            if desc.get("DeletedDate"):
                verdicts[name] = "scheduled for deletion"
                continue
            value = sm.get_secret_value(SecretId=name, VersionStage="AWSCURRENT")
            verdicts[name] = _wrapper_keys_missing(value) if name in wrapped else None
            del value  # only key names were looked at
        except Exception as exc:
            if not_found(exc):
                verdicts[name] = "no such secret"
            elif access_denied(exc):
                verdicts[name] = "access denied for this caller"
            elif error_code(exc) in ("DecryptionFailure", "KMSAccessDeniedException"):
                verdicts[name] = "its KMS key refuses to decrypt for this caller"
            elif error_code(exc) is not None:
                verdicts[name] = f"refused ({error_code(exc)})"
            else:
                raise
    out = [
        {
            "file": r.file,
            "line": r.line,
            "kind": r.kind,
            "target": r.target,
            "via": r.via,
            "ok": verdicts.get(r.target) is None if r.kind == "secret" else None,
            "problem": verdicts.get(r.target) if r.kind == "secret" else None,
        }
        for r in refs
    ]
    checks = _classpath_checks(refs, extra)
    return {
        "schema": "migrate.secrets-check/1",
        "files": [str(f) for f in files],
        "references": out,
        "classpath": checks,
        "failures": sum(1 for r in out if r["ok"] is False)
        + sum(1 for c in checks if c["ok"] is False),
    }


def _permission_scopes(
    playbook: Playbook, pstep: PlaybookStep, earlier: list[str]
) -> Sequence[Scope]:
    """The step's own narrowing (its buckets, roles, tags), from its parameters as far as they
    are known without AWS; a parameter that waits for an earlier step's output narrows nothing."""
    rendered = render_step(pstep.definition(), playbook.params, {}, earlier, playbook.path)
    try:
        scopes = pstep.step_type(validate_with(pstep, rendered, playbook.path)).permission_scopes()
    except MigrateError:
        return ()
    # A name that is an earlier step's output ("(known after archive)") narrows nothing.
    return [s for s in scopes if is_known(dict(s.names))]


def permissions(
    playbook_path: str, params: tuple[str, ...] | list[str] = (), params_file: str | None = None
) -> dict[str, Any]:
    """The IAM policy document the migrator needs to run ``playbook_path``."""
    playbook = _load(playbook_path, params, params_file)
    policy = PolicyBuilder()
    policy.add(sorted(ENGINE_PERMISSIONS))
    earlier: list[str] = []
    for pstep in playbook.steps:
        step_type = pstep.step_type
        scopes = _permission_scopes(playbook, pstep, earlier)
        earlier.append(pstep.id)
        policy.add(sorted(set(step_type.permissions) - {"iam:PassRole"}), scopes)
        if "iam:PassRole" in step_type.permissions:
            # Passing a role is how an identity gives a service more than it has itself: only
            # roles (the database's own, or those migrate makes for a workload, whatever their
            # names), only to the services the step hands roles to.
            policy.add(
                ["iam:PassRole"],
                resources=["arn:aws:iam::*:role/*"],
                condition={
                    "StringEquals": {"iam:PassedToService": sorted(step_type.passes_roles_to)}
                },
            )
    statements = policy.statements()
    return {"Version": "2012-10-17", "Statement": statements}


# --- dr: drill evidence and history ---------------------------------------------------------------
DR_STEP_TYPE = "dr.restore_test"
DR_EVIDENCE_SCHEMA = "migrate.dr-evidence/1"
DR_HISTORY_SCHEMA = "migrate.dr-history/1"


def dr_report(settings: Settings, run_id: str) -> dict[str, Any]:
    """The evidence of the DR drills of one run: per database and bucket the restore point,
    RTO/RPO measured vs target, settings verified, findings, teardown; who ran it; the journal."""
    data = report(settings, run_id)
    dr_steps = [s for s in data["steps"] if s["uses"] == DR_STEP_TYPE]
    if not dr_steps:
        raise BadInputError(
            f"run {run_id} has no {DR_STEP_TYPE} step; `migrate dr history` lists the drills."
        )
    ids = {s["id"] for s in dr_steps}
    drills = []
    for res in data["resources"]:
        if res["step"] in ids and res["kind"] == "dr:drill":
            statuses = {
                a["kind"]: a["status"]
                for s in dr_steps
                for a in s["actions"]
                if a["target"] == res["identifier"]
            }
            drills.append(
                {
                    "target": res["identifier"],
                    "step": res["step"],
                    **res["details"],
                    "actions": statuses,
                }
            )
    return {
        "schema": DR_EVIDENCE_SCHEMA,
        "run": {
            k: data[k]
            for k in (
                "id",
                "playbook",
                "status",
                "created_by",
                "caller_arn",
                "created_at",
                "updated_at",
                "error",
            )
        },
        "steps": dr_steps,
        "drills": drills,
        "residuals": [
            {"step": s["id"], "error": s["error"]} for s in dr_steps if s["status"] != "done"
        ],
        "journal": [j for j in data["journal"] if j["step"] in ids],
        "history": dr_history(settings)["drills"],
    }


def dr_history(settings: Settings) -> dict[str, Any]:
    """Every drill recorded in the state store, oldest first, one row per database or bucket."""
    store = settings.store()
    rows: list[dict[str, Any]] = []
    with store.read() as session:
        query = (
            select(Resource, Run)
            .join(Run, Run.id == Resource.run_id)
            .join(
                StepRun, (StepRun.run_id == Resource.run_id) & (StepRun.step_id == Resource.step_id)
            )
            .where(Resource.kind == "dr:drill", StepRun.uses == DR_STEP_TYPE)
            .order_by(Run.created_at, Resource.id)
        )
        for res, run_row in session.execute(query).all():
            d = dict(res.details or {})
            rows.append(
                {
                    "run": run_row.id,
                    "status": run_row.status,
                    "at": d.get("drill_started_at")
                    or run_row.created_at.isoformat(timespec="seconds"),
                    "by": run_row.created_by,
                    "caller_arn": run_row.caller_arn,
                    "target": res.identifier,
                    "kind": d.get("kind"),
                    "restore_point": d.get("restore_point"),
                    "rto_s": d.get("rto_s", d.get("restore_s")),
                    "rto_target_s": d.get("rto_target_s"),
                    "rpo_s": d.get("rpo_s"),
                    "rpo_target_s": d.get("rpo_target_s"),
                    "rto_met": d.get("rto_met"),
                    "rpo_met": d.get("rpo_met"),
                    "findings": list(d.get("findings") or []),
                    "torn_down": bool(d.get("torn_down_at") or d.get("torn_down")),
                    "measured_on": d.get("measured_on"),
                }
            )
    return {
        "schema": DR_HISTORY_SCHEMA,
        "generated_at": utcnow().isoformat(timespec="seconds"),
        "drills": rows,
    }


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
