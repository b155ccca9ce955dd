"""The collaborator every RDS phase works with: :class:`PhaseRun`.

One phase of one database (one action) runs with a ``PhaseRun``: the clock, the phase state
checkpointed in the state DB (what was issued, when each part started), waits with the phase's
deadline, the database's timing record, the resolved KMS key ARN and the bookkeeping tags. The
phase modules (``phases``, ``cluster_flow``) take it instead of reaching into the step.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from migrate.aws import rds_settings as rs
from migrate.engine.base import Action, Wait
from migrate.engine.context import StepContext
from migrate.errors import StepFailed
from migrate.steps.rds.params import ROLLBACK_WAIT_HOURS, RdsEncryptParams, wait_hours

Clock = Callable[[], datetime]
TIMING = "rds:timing"


def iso(moment: datetime) -> str:
    """A moment as stored in checkpoints and timings (seconds precision)."""
    return moment.isoformat(timespec="seconds")


def parse(value: str) -> datetime:
    """The inverse of :func:`iso`."""
    return datetime.fromisoformat(value)


def seconds(since: datetime, until: datetime) -> float:
    """Elapsed seconds, rounded as the timings record them."""
    return round((until - since).total_seconds(), 1)


class PhaseRun:
    """One phase of one database as it runs: clock, checkpointed state, waits, timings, key."""

    def __init__(
        self, ctx: StepContext, action: Action, params: RdsEncryptParams, clock: Clock
    ) -> None:
        self.ctx = ctx
        self.action = action
        self.params = params
        self.clock = clock
        self._state: dict[str, Any] | None = None
        self._key: str | None = None

    # -- who and where ---------------------------------------------------------------------------
    @property
    def target(self) -> str:
        """The database (instance or cluster identifier) the phase works on."""
        return self.action.target

    @property
    def run_id(self) -> str | None:
        """The run's id (names of everything the run creates derive from it)."""
        return self.ctx.run_id

    def rds(self) -> Any:
        """The RDS client of the action's region."""
        return self.ctx.client("rds", self.action.region)

    def now(self) -> datetime:
        """The phase's clock (a test replaces it)."""
        return self.clock()

    def now_iso(self) -> str:
        """:meth:`now` as stored."""
        return iso(self.clock())

    # -- checkpointed state ------------------------------------------------------------------------
    @property
    def state(self) -> dict[str, Any]:
        """The phase's checkpointed state; its ``started_at`` is fixed on first use."""
        if self._state is None:
            saved = self.ctx.load_checkpoint("phase")
            self._state = dict(saved["cursor"]) if saved else {}
            if "started_at" not in self._state:
                self._state["started_at"] = self.now_iso()
                self.ctx.checkpoint(self._state, done=0, name="phase")
        return self._state

    def begin(self) -> None:
        """Fix the phase's start now (a phase whose state is otherwise read later)."""
        _ = self.state

    def save(self, done: int = 0) -> None:
        """Commit the phase state (before the AWS call it announces, or after a result)."""
        self.ctx.checkpoint(self.state, done=done, name="phase")

    def wait(self, reason: str) -> Wait:
        """A Wait with the phase's deadline; past it, fail clearly (a resume starts a new one)."""
        state = self.state
        hours = wait_hours(
            self.params.wait_timeout_hours,
            self.action.estimate.duration_s,
            size_assumed=bool(self.action.details.get("cluster")),
        )
        deadline = parse(state["started_at"]) + timedelta(hours=hours)
        if self.now() >= deadline:
            state["started_at"] = self.now_iso()  # a resume waits another full window
            self.save()
            raise StepFailed(
                f"{self.target}: gave up after {hours:.3g} h waiting: {reason}. Check the "
                "instance/snapshot in the RDS console; `migrate resume` continues waiting "
                "(nothing is created twice), `migrate rollback` undoes."
            )
        return Wait(f"{self.target}: {reason}", until=deadline, poll_s=self.params.poll_seconds)

    # -- records -----------------------------------------------------------------------------------
    def record(self, kind: str, ident: str, change: str, **details: Any) -> None:
        """Remember a resource of the action's region that the phase changed (rollback and
        cleanup read it). Called *before* the AWS call that creates or renames it, with the
        deterministic name, so that a crash between the call and the record loses nothing."""
        self.ctx.record_resource(
            kind, ident, change=change, region=self.action.region, details=details
        )

    def timing(self) -> dict[str, Any]:
        """The database's ``rds:timing`` record so far (phase -> its measurements)."""
        details: dict[str, Any] = {}
        for res in self.ctx.resources(TIMING):
            if res.identifier == self.target:
                details = dict(res.details or {})
        return details

    def record_timing(self, phase: str, **values: Any) -> None:
        """Merge one phase's measurements into the database's ``rds:timing`` resource."""
        details = self.timing()
        details[phase] = values
        stop = details.get("stop_writes", {}).get("at")
        cut = details.get("cut_over", {}).get("finished_at")
        if stop and cut:
            details["downtime_s"] = round((parse(cut) - parse(stop)).total_seconds(), 1)
        self.ctx.record_resource(TIMING, self.target, change="measured", details=details)

    def record_phase(
        self, phase: str, started_at: str, *, duration: bool = True, **values: Any
    ) -> None:
        """Record a finished phase: its start, its end (now), its duration and ``values``."""
        now = self.now()
        times: dict[str, Any] = {"started_at": started_at, "finished_at": iso(now)}
        if duration:
            times["duration_s"] = seconds(parse(started_at), now)
        self.record_timing(phase, **times, **values)

    # -- key and tags ------------------------------------------------------------------------------
    def key_arn(self) -> str:
        """The target KMS key's ARN (resolved once per phase)."""
        if self._key is None:
            key = self.params.kms_key
            if not self.ctx.is_known(key):
                raise StepFailed(
                    f"the KMS key is still {key}; run the step that creates it first "
                    "(kms.ensure_key)."
                )
            if key.startswith("arn:") and ":key/" in key:
                self._key = key
            else:
                kms = self.ctx.client("kms", self.action.region)
                self._key = str(kms.describe_key(KeyId=key)["KeyMetadata"]["Arn"])
        return self._key

    def tags(self, role: str) -> dict[str, str]:
        """The bookkeeping tags of what the phase creates for its database."""
        return {rs.TAG_RUN: self.run_id or "", rs.TAG_SOURCE: self.target, rs.TAG_ROLE: role}


def poll_until(params: RdsEncryptParams, what: str, done: Callable[[], bool]) -> None:
    """Rollback is one operator command, not a resumable action: it polls in place, bounded by
    ``wait_timeout_hours`` (12 h when it is derived per phase)."""
    hours = params.wait_timeout_hours or ROLLBACK_WAIT_HOURS
    deadline = time.monotonic() + hours * 3600
    while not done():
        if time.monotonic() > deadline:
            raise StepFailed(f"rollback gave up waiting for {what}; run rollback again.")
        time.sleep(max(params.poll_seconds, 1.0))
