"""The statuses of runs, steps and actions, as the state store keeps them.

They are ``StrEnum``s: a member equals its stored string (``RunStatus.DONE == "done"``), so rows
written by older versions read back unchanged, while the code names each status once.
"""

from __future__ import annotations

from enum import StrEnum


class RunStatus(StrEnum):
    """Where a run stands."""

    # Created, no step started yet.
    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    AWAITING_APPROVAL = "awaiting-approval"
    WAITING = "waiting"
    # Stopped on purpose: --until, --only, or a "no" in --step mode.
    PAUSED = "paused"
    # Ctrl-C or a lost lease; `resume` continues.
    INTERRUPTED = "interrupted"
    ROLLED_BACK = "rolled-back"


class StepStatus(StrEnum):
    """Where one step of a run stands."""

    PENDING = "pending"
    RUNNING = "running"
    WAITING = "waiting"
    AWAITING_APPROVAL = "awaiting-approval"
    FAILED = "failed"
    # A dependency failed; retried on resume.
    BLOCKED = "blocked"
    INTERRUPTED = "interrupted"
    DONE = "done"
    # Gone from the playbook after an edit.
    REMOVED = "removed"
    ROLLED_BACK = "rolled-back"


class ActionStatus(StrEnum):
    """Where one action stands: ``started`` is committed before ``act``, ``done`` after."""

    PENDING = "pending"
    STARTED = "started"
    WAITING = "waiting"
    AWAITING_APPROVAL = "awaiting-approval"
    DONE = "done"
    FAILED = "failed"
    # No longer decided after a re-plan.
    SUPERSEDED = "superseded"
    # The operator answered "no" in --step mode: not performed in this run (nor its target's
    # later actions); listed in the run's residuals.
    SKIPPED = "skipped"
    ROLLED_BACK = "rolled-back"


# Steps that need nothing more in this run.
TERMINAL_STEP = frozenset({StepStatus.DONE, StepStatus.REMOVED, StepStatus.ROLLED_BACK})
# Actions that need nothing more in this run.
SETTLED_ACTION = frozenset({ActionStatus.DONE, ActionStatus.SUPERSEDED, ActionStatus.SKIPPED})
