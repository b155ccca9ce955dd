"""The runner: observe -> decide -> act -> verify, one committed state change at a time.

Rules it keeps (docs/architecture.md explains why):

* An action is marked ``started`` in its own transaction before ``act`` and ``done`` after it; a
  resumed run calls ``act`` again for a ``started`` action, and ``act`` looks before it creates.
* Steps run in file order; a step runs when every step it depends on is done. A waiting, gated or
  failed step holds up only its dependants.
* Within a step, actions of one target run in order; a blocked action (gate, wait, failure) holds up
  the later actions of that target only.
* Waits are states: the runner polls them (``act`` again) while they are due within ``max_wait``,
  and otherwise leaves the run ``waiting`` for a later ``resume``.
"""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import ValidationError
from sqlalchemy import func, select
from tqdm import tqdm

from migrate.aws.errors import describe_aws_failure
from migrate.aws.session import AwsSession
from migrate.engine.base import Action, Step, Wait
from migrate.engine.context import StepContext, operator_name
from migrate.engine.journal import Journal
from migrate.engine.lock import RunLock
from migrate.engine.playbook import render_step
from migrate.engine.registry import get_step_type
from migrate.errors import MigrateError, StepFailed
from migrate.store import Store, utcnow
from migrate.store.models import ActionRow, Approval, Run, StepRun
from migrate.store.status import (
    SETTLED_ACTION,
    TERMINAL_STEP,
    ActionStatus,
    RunStatus,
    StepStatus,
)

log = logging.getLogger("migrate.runner")


# What `--step` may answer before an action.
CONFIRM_YES, CONFIRM_NO, CONFIRM_ALL, CONFIRM_QUIT = "yes", "no", "all", "quit"
Confirm = Callable[[str, Action], str]


class Interrupted(Exception):
    """Ctrl-C: the run was left resumable."""


@dataclass
class RunOptions:
    """How to execute: approvals, step selection, step-by-step, waits, output."""

    yes: bool = False
    only: list[str] | None = None
    until: str | None = None
    confirm: Confirm | None = None
    max_wait_s: float = 1800.0
    quiet: bool = False
    debug: bool = False
    state_dir: Path = field(default_factory=lambda: Path("state"))
    echo: Callable[[str], None] = print


def friendly_error(exc: BaseException, debug: bool = False) -> str:
    """One paragraph for an exception raised inside a step."""
    if isinstance(exc, MigrateError):
        msg = exc.message
    elif isinstance(exc, (ClientError, BotoCoreError)):
        msg = describe_aws_failure(exc).message
    else:
        msg = f"unexpected {type(exc).__name__}: {exc}"
    if debug:
        msg += "\n" + "".join(traceback.format_exception(exc))
    return msg


def instantiate(
    run: Run, sr: StepRun, outputs: dict[str, dict[str, Any]], prior_ids: list[str]
) -> Step:
    """Render a stored step definition with the outputs known now and build the step object."""
    step_type = get_step_type(sr.uses)
    if step_type is None:
        raise StepFailed(
            f"step {sr.step_id!r} uses {sr.uses!r}, which this migrate does not know (was it "
            "removed in an upgrade?). Install the version that created the run, or edit the "
            "playbook and resume."
        )
    rendered = render_step(sr.definition, run.params, outputs, prior_ids, run.playbook_path)
    try:
        params = step_type.Params.model_validate(rendered)
    except ValidationError as exc:
        raise StepFailed(f"step {sr.step_id!r}: its parameters do not validate: {exc}") from None
    return step_type(params)


def step_regions(step: Step, aws: AwsSession) -> list[str]:
    """The regions a step works in: its ``regions`` parameter or the session's region."""
    regions = getattr(step.params, "regions", None)
    return list(regions) if regions else [aws.region or "us-east-1"]


class Runner:
    """Executes one run until it is done, blocked, waiting beyond ``max_wait``, or interrupted."""

    def __init__(self, store: Store, aws: AwsSession, options: RunOptions) -> None:
        self.store = store
        self.aws = aws
        self.options = options
        self.journal = Journal(store)
        self._confirm_all = False
        self.lock: RunLock | None = None

    def _say(self, message: str) -> None:
        """Progress lines go to the operator (unless --quiet) and to the log file."""
        log.info("%s", message)
        if not self.options.quiet:
            self.options.echo(message)

    # -- public ----------------------------------------------------------------------------------
    def execute(self, run_id: str) -> RunStatus:
        """Run (or continue) ``run_id``; return the run's final status."""
        with RunLock(self.store, run_id) as lock:
            self.lock = lock
            self.aws.set_recorder(self.journal)
            self.journal.scope.run_id = run_id
            # Calls a killed process sent without recording the answer: say so, don't guess.
            self.journal.mark_unanswered(run_id)
            self._reset_for_retry(run_id)
            started = time.monotonic()
            try:
                while True:
                    self._pass(run_id)
                    next_check = self._next_poll(run_id, started)
                    if next_check is None:
                        break
                    self._sleep_until(run_id, next_check)
            except KeyboardInterrupt:
                self._set_run_status(run_id, RunStatus.INTERRUPTED)
                raise Interrupted() from None
            finally:
                self.journal.flush()
                self.aws.set_recorder(None)
            return self._finish(run_id)

    # -- passes ------------------------------------------------------------------------------------
    def _reset_for_retry(self, run_id: str) -> None:
        """A new attempt: failed/blocked steps and failed actions get another go."""
        with self.store.write() as session:
            run = session.get(Run, run_id)
            assert run is not None
            run.status = RunStatus.RUNNING
            run.error = None
            run.updated_at = utcnow()
            for sr in run.steps:
                if sr.status in (StepStatus.FAILED, StepStatus.BLOCKED, StepStatus.INTERRUPTED):
                    sr.status = StepStatus.PENDING
                    sr.error = None
                for row in sr.actions:
                    if row.status == ActionStatus.FAILED:
                        row.status = ActionStatus.PENDING
                    if row.status == ActionStatus.WAITING:
                        row.next_check_at = None  # a resume re-checks every wait at once

    def _pass(self, run_id: str) -> None:
        with self.store.read() as session:
            run = session.get(Run, run_id)
            assert run is not None
            steps = list(run.steps)
        by_id = {sr.step_id: sr for sr in steps}
        statuses = {sr.step_id: sr.status for sr in steps}
        outputs = {sr.step_id: dict(sr.outputs) for sr in steps if sr.status == StepStatus.DONE}
        ids: list[str] = []
        for sr in steps:
            prior = list(ids)
            ids.append(sr.step_id)
            if sr.status in TERMINAL_STEP:
                continue
            if self.options.only and sr.step_id not in self.options.only:
                continue
            deps = [d for d in sr.depends_on if d in by_id and statuses[d] != StepStatus.REMOVED]
            broken = [d for d in deps if statuses[d] in (StepStatus.FAILED, StepStatus.BLOCKED)]
            if broken:
                self._set_step(
                    sr.id, StepStatus.BLOCKED, f"waits for step {broken[0]!r}, which failed"
                )
                statuses[sr.step_id] = StepStatus.BLOCKED
                continue
            if any(statuses[d] != StepStatus.DONE for d in deps):
                continue
            statuses[sr.step_id] = self._run_step(run, sr, outputs, prior)
            if statuses[sr.step_id] == StepStatus.DONE:
                with self.store.read() as session:
                    fresh = session.get(StepRun, sr.id)
                    assert fresh is not None
                    outputs[sr.step_id] = dict(fresh.outputs)
            if self.options.until and sr.step_id == self.options.until:
                break

    def _run_step(
        self, run: Run, sr: StepRun, outputs: dict[str, dict[str, Any]], prior: list[str]
    ) -> StepStatus:
        echo = self._say
        self.journal.scope.step_id = sr.step_id
        self.journal.scope.action_id = None
        try:
            step = instantiate(run, sr, outputs, prior)
        except MigrateError as exc:
            self._set_step(sr.id, StepStatus.FAILED, exc.message)
            return StepStatus.FAILED
        ctx = StepContext(
            aws=self.aws,
            step_id=sr.step_id,
            regions=step_regions(step, self.aws),
            state_dir=self.options.state_dir,
            quiet=self.options.quiet,
            run_id=run.id,
            store=self.store,
            outputs=outputs,
        )
        with self.store.read() as session:
            rows = list(session.scalars(select(ActionRow).where(ActionRow.step_run_id == sr.id)))
        if not rows or sr.replan:
            if not self.options.quiet:
                echo(f"[{sr.step_id}] observing ({sr.uses})")
            try:
                facts = step.observe(ctx)
                actions = step.decide(ctx, facts)
            except KeyboardInterrupt:
                raise
            except Exception as exc:
                self._set_step(sr.id, StepStatus.FAILED, friendly_error(exc, self.options.debug))
                echo(f"[{sr.step_id}] failed while observing: {friendly_error(exc)}")
                return StepStatus.FAILED
            rows = self._sync_actions(sr, actions)
        self._set_step(sr.id, StepStatus.RUNNING, None, started=True)

        blocked: set[str] = set()
        failed = awaiting = waiting = False
        skipped: set[str] = set()
        for row in rows:
            if row.status in SETTLED_ACTION:
                continue
            if row.target in skipped:
                # "No" to an earlier action of this resource: its later ones are not done either
                # (a cut-over without its stop-writes would be worse than nothing).
                self._set_action(row.id, status=ActionStatus.SKIPPED)
                continue
            if row.target in blocked:
                continue
            action = Action.from_dict(row.data)
            if (
                row.status == ActionStatus.WAITING
                and row.next_check_at
                and row.next_check_at > utcnow()
            ):
                blocked.add(row.target)
                waiting = True
                continue
            if self._needs_gate(sr, action) and not self._approved(run.id, sr, action, row):
                self._set_action(row.id, status=ActionStatus.AWAITING_APPROVAL)
                if not self.options.quiet:
                    echo(
                        f"[{sr.step_id}] awaiting approval ({action.gate or 'approve'}): "
                        f"{action.summary}"
                    )
                blocked.add(row.target)
                awaiting = True
                continue
            if (
                self.options.confirm
                and not self._confirm_all
                and row.status == ActionStatus.PENDING
            ):
                answer = self.options.confirm(sr.step_id, action)
                if answer == CONFIRM_QUIT:
                    raise KeyboardInterrupt
                if answer == CONFIRM_ALL:
                    self._confirm_all = True
                elif answer != CONFIRM_YES:
                    self._set_action(row.id, status=ActionStatus.SKIPPED)
                    echo(f"[{sr.step_id}] skipped (--step: no): {action.summary}")
                    skipped.add(row.target)
                    continue
            outcome = self._act(run.id, sr, step, ctx, row, action)
            if outcome == ActionStatus.FAILED:
                failed = True
                blocked.add(row.target)
            elif outcome == ActionStatus.WAITING:
                waiting = True
                blocked.add(row.target)

        if failed:
            self._set_step(
                sr.id, StepStatus.FAILED, "one or more actions failed (see `migrate status`)"
            )
            return StepStatus.FAILED
        if awaiting:
            self._set_step(sr.id, StepStatus.AWAITING_APPROVAL, None)
            return StepStatus.AWAITING_APPROVAL
        if waiting:
            self._set_step(sr.id, StepStatus.WAITING, None)
            return StepStatus.WAITING
        # Resources the operator skipped are left as they are on purpose: the step's
        # post-condition cannot hold for them, and the run's residuals name them.
        skipped_any = bool(skipped) or any(r.status == ActionStatus.SKIPPED for r in rows)
        ctx.action_id = None
        try:
            if not skipped_any:
                step.verify(ctx)
            published = step.published(ctx)
        except KeyboardInterrupt:
            raise
        except Exception as exc:
            message = friendly_error(exc, self.options.debug)
            self._set_step(sr.id, StepStatus.FAILED, f"verification failed: {message}")
            # Its actions are done, so a resume that only retried actions would verify the
            # same world again, forever: re-observe instead, so what is still needed is redone.
            self._mark_replan(sr.id)
            echo(f"[{sr.step_id}] verification failed: {friendly_error(exc)}")
            return StepStatus.FAILED
        with self.store.write() as session:
            fresh = session.get(StepRun, sr.id)
            assert fresh is not None
            fresh.status = StepStatus.DONE
            fresh.outputs = published
            fresh.replan = 0
            fresh.finished_at = utcnow()
            fresh.error = (
                "verification not run: the operator skipped some resources (--step)"
                if skipped_any
                else None
            )
        if not self.options.quiet:
            echo(f"[{sr.step_id}] done")
        return StepStatus.DONE

    def _act(
        self, run_id: str, sr: StepRun, step: Step, ctx: StepContext, row: ActionRow, action: Action
    ) -> ActionStatus:
        now = utcnow()
        with self.store.write() as session:
            fresh = session.get(ActionRow, row.id)
            assert fresh is not None
            fresh.status = ActionStatus.STARTED
            fresh.attempts += 1
            fresh.started_at = fresh.started_at or now
            fresh.error = None
        ctx.action_id = row.id
        self.journal.scope.action_id = row.id
        if not self.options.quiet and row.status != ActionStatus.WAITING:
            self._say(f"[{sr.step_id}] {action.summary}")
        try:
            result = step.act(ctx, action)
        except KeyboardInterrupt:
            raise
        except Exception as exc:
            message = friendly_error(exc, self.options.debug)
            self._set_action(row.id, status=ActionStatus.FAILED, error=message, finished=True)
            self._say(f"[{sr.step_id}] FAILED {action.target}: {friendly_error(exc)}")
            return ActionStatus.FAILED
        finally:
            self.journal.flush()
            ctx.action_id = None
            self.journal.scope.action_id = None
        if isinstance(result, Wait):
            self._set_action(
                row.id,
                status=ActionStatus.WAITING,
                wait_reason=result.reason,
                wait_until=result.until,
                next_check_at=self._next_check(result),
            )
            if not self.options.quiet:
                until = f" until {result.until:%Y-%m-%d %H:%M} UTC" if result.until else ""
                self._say(f"[{sr.step_id}] waiting{until}: {result.reason}")
            return ActionStatus.WAITING
        self._set_action(
            row.id, status=ActionStatus.DONE, finished=True, wait_reason=None, wait_until=None
        )
        return ActionStatus.DONE

    @staticmethod
    def _next_check(wait: Wait) -> datetime:
        # At least a second between checks: a step asking for 0 must not spin the CPU.
        nxt = utcnow() + timedelta(seconds=max(wait.poll_s, 1.0))
        if wait.until is not None and wait.until < nxt:
            return wait.until
        return nxt

    # -- gates -------------------------------------------------------------------------------------
    @staticmethod
    def _needs_gate(sr: StepRun, action: Action) -> bool:
        return action.gate is not None or bool(sr.definition.get("approve"))

    def _approved(self, run_id: str, sr: StepRun, action: Action, row: ActionRow) -> bool:
        if (row.result or {}).get("approved"):
            return True
        gate = action.gate or "approve"
        with self.store.read() as session:
            standing = session.scalars(
                select(Approval).where(
                    Approval.run_id == run_id,
                    Approval.step_id == sr.step_id,
                    Approval.via.in_(("standing", f"standing:{gate}"[:32])),
                )
            ).all()
        if any(a.target in (None, action.target) for a in standing):
            return True
        if not self.options.yes:
            return False
        policy = sr.definition.get("yes_approves", "non-destructive")
        allowed = policy == "all" or (policy == "non-destructive" and not action.destructive)
        if not allowed:
            return False
        who = operator_name()
        with self.store.write() as session:
            session.add(
                Approval(
                    run_id=run_id,
                    step_id=sr.step_id,
                    target=action.target,
                    approved_by=who,
                    caller_arn=None,
                    approved_at=utcnow(),
                    via="--yes",
                )
            )
            fresh = session.get(ActionRow, row.id)
            assert fresh is not None
            fresh.result = {**(fresh.result or {}), "approved": {"by": who, "via": "--yes"}}
        return True

    # -- waits ---------------------------------------------------------------------------------------
    def _next_poll(self, run_id: str, started: float) -> datetime | None:
        """When to poll next, or None to stop (nothing pollable within max_wait)."""
        remaining = self.options.max_wait_s - (time.monotonic() - started)
        if remaining <= 0:
            return None
        horizon = utcnow() + timedelta(seconds=remaining)
        with self.store.read() as session:
            rows = session.scalars(
                select(ActionRow)
                .join(StepRun, StepRun.id == ActionRow.step_run_id)
                .where(StepRun.run_id == run_id, ActionRow.status == ActionStatus.WAITING)
            ).all()
            checks = [r.next_check_at or utcnow() for r in rows]
        due = [c for c in checks if c <= horizon]
        return min(due) if due else None

    def _sleep_until(self, run_id: str, when: datetime) -> None:
        seconds = max((when - utcnow()).total_seconds(), 0.0)
        if seconds <= 0:
            return
        approvals = self._approval_count(run_id)
        with tqdm(
            total=round(seconds),
            desc=f"{run_id} waiting",
            unit="s",
            disable=self.options.quiet,
            leave=False,
        ) as bar:
            end = time.monotonic() + seconds
            last_check = time.monotonic()
            while (left := end - time.monotonic()) > 0:
                time.sleep(min(1.0, left))
                if self.lock is not None and time.monotonic() - last_check > 2:
                    self.lock.check()
                    last_check = time.monotonic()
                    # Another operator approved a gate (`migrate approve` from any machine): pass
                    # again now rather than at the next check of the wait (a minute, or more).
                    if self._approval_count(run_id) != approvals:
                        return
                bar.n = min(round(seconds - max(left - 1.0, 0.0)), round(seconds))
                bar.refresh()

    def _approval_count(self, run_id: str) -> int:
        with self.store.read() as session:
            count = session.scalar(
                select(func.count()).select_from(Approval).where(Approval.run_id == run_id)
            )
        return int(count or 0)

    # -- bookkeeping -----------------------------------------------------------------------------
    def _sync_actions(self, sr: StepRun, actions: list[Action]) -> list[ActionRow]:
        """Store the decided actions; keep done ones, reopen the ones still needed."""
        with self.store.write() as session:
            existing = {
                (r.kind, r.target): r
                for r in session.scalars(select(ActionRow).where(ActionRow.step_run_id == sr.id))
            }
            wanted: list[ActionRow] = []
            for seq, action in enumerate(actions):
                row = existing.pop((action.kind, action.target), None)
                if row is None:
                    row = ActionRow(
                        step_run_id=sr.id,
                        kind=action.kind,
                        target=action.target,
                        status=ActionStatus.PENDING,
                        attempts=0,
                        result={},
                    )
                    session.add(row)
                elif row.status in (ActionStatus.DONE, ActionStatus.SUPERSEDED):
                    # Observed as still needed: the world drifted, or the step was edited. An
                    # approval given for the earlier attempt does not carry over.
                    row.status = ActionStatus.PENDING
                    row.result = {k: v for k, v in (row.result or {}).items() if k != "approved"}
                row.seq = seq
                row.summary = action.summary
                row.data = action.to_dict()
                row.gate = action.gate
                row.destructive = int(action.destructive)
                wanted.append(row)
            for row in existing.values():
                if row.status in (
                    ActionStatus.PENDING,
                    ActionStatus.AWAITING_APPROVAL,
                    ActionStatus.FAILED,
                ):
                    row.status = ActionStatus.SUPERSEDED
            fresh = session.get(StepRun, sr.id)
            assert fresh is not None
            fresh.replan = 0
            session.flush()
            return sorted(wanted, key=lambda r: r.seq)

    def _mark_replan(self, step_run_id: int) -> None:
        with self.store.write() as session:
            sr = session.get(StepRun, step_run_id)
            assert sr is not None
            sr.replan = 1

    def _set_step(
        self, step_run_id: int, status: StepStatus, error: str | None, started: bool = False
    ) -> None:
        with self.store.write() as session:
            sr = session.get(StepRun, step_run_id)
            assert sr is not None
            sr.status = status
            sr.error = error
            if started and sr.started_at is None:
                sr.started_at = utcnow()

    def _set_action(self, action_id: int, *, finished: bool = False, **values: Any) -> None:
        with self.store.write() as session:
            row = session.get(ActionRow, action_id)
            assert row is not None
            for key, value in values.items():
                setattr(row, key, value)
            if finished:
                row.finished_at = utcnow()

    def _set_run_status(self, run_id: str, status: RunStatus, error: str | None = None) -> None:
        with self.store.write() as session:
            run = session.get(Run, run_id)
            assert run is not None
            run.status = status
            run.error = error
            run.updated_at = utcnow()
            if status == RunStatus.DONE:
                run.finished_at = run.updated_at

    def _finish(self, run_id: str) -> RunStatus:
        with self.store.read() as session:
            run = session.get(Run, run_id)
            assert run is not None
            statuses = [
                sr.status
                for sr in run.steps
                if sr.status not in (StepStatus.REMOVED, StepStatus.ROLLED_BACK)
            ]
        if any(s in (StepStatus.FAILED, StepStatus.BLOCKED) for s in statuses):
            status = RunStatus.FAILED
        elif any(s == StepStatus.AWAITING_APPROVAL for s in statuses):
            status = RunStatus.AWAITING_APPROVAL
        elif any(s == StepStatus.WAITING for s in statuses):
            status = RunStatus.WAITING
        elif all(s == StepStatus.DONE for s in statuses):
            status = RunStatus.DONE
        else:
            status = RunStatus.PAUSED
        self._set_run_status(run_id, status)
        return status
