"""``core.wait``: a soak period between steps, as a run state (not a sleep)."""

from __future__ import annotations

from datetime import datetime, timedelta

from pydantic import Field

from migrate.engine.base import Action, Estimate, Facts, Step, StepParams, Wait, handles
from migrate.engine.context import StepContext
from migrate.engine.registry import step
from migrate.util import utcnow


class WaitParams(StepParams):
    """Parameters of ``core.wait``."""

    seconds: float = Field(default=0, ge=0)
    minutes: float = Field(default=0, ge=0)
    hours: float = Field(default=0, ge=0)
    days: float = Field(default=0, ge=0)
    reason: str = "soak period"


@step("core.wait")
class CoreWait(Step):
    """Wait for a fixed time (a soak period, a window for someone to object) before dependants run.

    The wait is a state: `run` polls it with a progress bar while it ends within ``--max-wait``,
    otherwise the run exits 4 ("waiting") and a later ``migrate resume`` continues it. Ctrl-C keeps
    the deadline.
    """

    Params = WaitParams
    action_kinds = ("core.wait",)
    permissions = ()
    example = """\
- id: soak
  uses: core.wait
  with:
    hours: 24
    reason: let the application run on the new key before cleanup
"""
    params: WaitParams

    def _duration(self) -> timedelta:
        p = self.params
        return timedelta(seconds=p.seconds, minutes=p.minutes, hours=p.hours, days=p.days)

    def observe(self, ctx: StepContext) -> Facts:
        """Nothing to read."""
        return {"duration_s": self._duration().total_seconds()}

    def decide(self, ctx: StepContext, facts: Facts) -> list[Action]:
        """One wait action."""
        seconds = facts["duration_s"]
        return [
            Action(
                kind="core.wait",
                target="wait",
                summary=f"wait {self._duration()} ({self.params.reason})",
                estimate=Estimate(duration_s=seconds),
            )
        ]

    @handles("core.wait")
    def _wait(self, ctx: StepContext, action: Action) -> Wait | None:
        """Start the clock once (checkpointed), then report the remaining wait."""
        saved = ctx.load_checkpoint()
        if saved is None:
            deadline = utcnow() + self._duration()
            ctx.checkpoint({"deadline": deadline.isoformat()}, done=0)
        else:
            deadline = datetime.fromisoformat(saved["cursor"]["deadline"])
        now = utcnow()
        if now >= deadline:
            return None
        remaining = (deadline - now).total_seconds()
        return Wait(reason=self.params.reason, until=deadline, poll_s=min(remaining, 60.0))
