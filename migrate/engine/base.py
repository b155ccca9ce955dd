"""The step contract: parameters, actions as data, waits, and the Step base class.

A step type observes (read-only), decides (pure: facts in, actions out), acts (one action at a time,
idempotently, looking before it creates) and verifies. It never knows whether it is planning: the
planner runs ``observe`` and ``decide`` under a session that refuses mutating calls.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict

from migrate.aws.iam_scope import Scope
from migrate.errors import StepFailed

if TYPE_CHECKING:
    from migrate.engine.context import StepContext

Facts = dict[str, Any]
"""What ``observe`` saw: JSON-serialisable, deterministic (it is fingerprinted for stale plans)."""


class StepParams(BaseModel):
    """Base of every step's ``with`` schema: unknown keys are errors, types are checked."""

    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True)
class Estimate:
    """What an action is expected to cost; reports add these up."""

    duration_s: float = 0.0
    downtime_s: float = 0.0
    api_requests: int = 0
    bytes: int = 0
    cost_usd: float = 0.0  # one-off (requests, copies, restores while they last)
    monthly_usd: float = 0.0  # what stays on the bill every month (a key, a secret)


@dataclass(frozen=True)
class Action:
    """One change to one resource, as data (rendered by plans and reports, executed by act).

    ``gate`` names the approval the action needs before it runs (None: none); ``destructive``
    marks deletions and cut-overs, which ``--yes`` never approves unless the playbook says so.
    Actions of the same ``target`` run in order, and a blocked one (gate, wait, failure) holds up
    the later ones of that target only.
    """

    kind: str
    target: str
    summary: str
    estimate: Estimate = Estimate()
    risks: tuple[str, ...] = ()
    gate: str | None = None
    destructive: bool = False
    region: str | None = None
    known_after: tuple[str, ...] = ()
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON form, as stored in the state DB and saved plans."""
        data = dataclasses.asdict(self)
        data["risks"] = list(self.risks)
        data["known_after"] = list(self.known_after)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Action:
        """Inverse of :meth:`to_dict`."""
        return cls(
            kind=data["kind"],
            target=data["target"],
            summary=data["summary"],
            estimate=Estimate(**data.get("estimate", {})),
            risks=tuple(data.get("risks", ())),
            gate=data.get("gate"),
            destructive=bool(data.get("destructive", False)),
            region=data.get("region"),
            known_after=tuple(data.get("known_after", ())),
            details=dict(data.get("details", {})),
        )


@dataclass(frozen=True)
class Wait:
    """Returned by ``act`` when the action is not finished yet: the run waits, as a state.

    ``until`` is a deadline (a watch window's end) or None (poll until done, e.g. a snapshot);
    ``poll_s`` is how often the runner calls ``act`` again to re-check.
    """

    reason: str
    until: datetime | None = None
    poll_s: float = 30.0


Handler = Callable[[Any, "StepContext", Action], "Wait | None"]


def handles(*kinds: str) -> Callable[[Handler], Handler]:
    """Mark a step method as the one that carries out actions of ``kinds``.

    ``Step.act`` dispatches on ``action.kind`` through these marks (one table per step type,
    built when the class is defined), so every kind a step decides is found by grep and checked
    by a test to have exactly one handler.
    """

    def mark(func: Handler) -> Handler:
        func.__dict__["_migrate_kinds"] = kinds
        return func

    return mark


class Step:
    """Base of every step type. Subclasses are registered with ``@step("area.name")``.

    Class attributes a step type declares:

    - ``Params``: its ``with`` schema (a :class:`StepParams` subclass);
    - ``permissions``: the IAM actions it needs (checked to be real IAM actions);
    - ``passes_roles_to``: the services it passes roles to (``iam:PassRole`` is granted for
      those only, with ``iam:PassedToService``);
    - ``outputs``: names of the outputs later steps can reference (``{{ steps.ID.NAME }}``);
    - ``example``: a YAML snippet of a playbook step using it (validated by the test suite);
    - ``action_kinds``: every ``Action.kind`` its ``decide`` can return; each has a method marked
      ``@handles(kind)``, which the default ``act`` dispatches to.
    """

    type_name: ClassVar[str] = ""
    Params: ClassVar[type[StepParams]] = StepParams
    permissions: ClassVar[tuple[str, ...]] = ()
    passes_roles_to: ClassVar[tuple[str, ...]] = ()
    outputs: ClassVar[tuple[str, ...]] = ()
    example: ClassVar[str] = ""
    action_kinds: ClassVar[tuple[str, ...]] = ()
    handlers: ClassVar[dict[str, str]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        table: dict[str, str] = {}
        for klass in reversed(cls.__mro__):
            for name, member in vars(klass).items():
                for kind in getattr(member, "_migrate_kinds", ()):
                    table[kind] = name
        cls.handlers = table

    def __init__(self, params: StepParams) -> None:
        self.params = params

    def handler_for(self, kind: str) -> Callable[[StepContext, Action], Wait | None]:
        """The bound method that carries out actions of ``kind``."""
        name = self.handlers.get(kind)
        if name is None:
            raise StepFailed(
                f"{self.type_name} has no handler for the action kind {kind!r}; this is a bug "
                "in the step (every kind it decides needs a method marked @handles(kind))."
            )
        method: Callable[[StepContext, Action], Wait | None] = getattr(self, name)
        return method

    def observe(self, ctx: StepContext) -> Facts:
        """Read the account; read-only calls only."""
        raise NotImplementedError

    def decide(self, ctx: StepContext, facts: Facts) -> list[Action]:
        """Turn facts into the actions that would make the account compliant."""
        raise NotImplementedError

    def act(self, ctx: StepContext, action: Action) -> Wait | None:
        """Carry out one action idempotently; return a :class:`Wait` if it is not finished.

        The default dispatches to the method marked ``@handles(action.kind)``."""
        return self.handler_for(action.kind)(ctx, action)

    def gather_evidence(self, ctx: StepContext, facts: Facts) -> str | None:
        """While planning: gather the read-only evidence later steps plan from (e.g. CloudTrail
        usage) into the state store, so that their plan states facts, not guesses.

        AWS stays read-only (the guard still refuses mutating calls); the planner observes the
        step again afterwards. Returns a line for the plan saying what was gathered, or None
        (the default: a step with no evidence to gather)."""
        return None

    def verify(self, ctx: StepContext) -> None:
        """Raise :class:`migrate.errors.StepFailed` if the post-condition does not hold."""

    def permission_scopes(self) -> Sequence[Scope]:
        """What this step's parameters limit some of its ``permissions`` to (the buckets the
        playbook names, the roles it creates, a tag on the secrets it writes), for
        ``migrate permissions``. The default: nothing narrower than the resource types AWS's
        authorization reference gives each action."""
        return ()

    def published(self, ctx: StepContext) -> dict[str, Any]:
        """Outputs after the step is done (read-only calls allowed)."""
        return {}

    def planned_outputs(self, ctx: StepContext, facts: Facts) -> dict[str, Any]:
        """Outputs already known while planning (e.g. an existing key's ARN); the rest show as
        ``(known after STEP)``."""
        return {}

    def rollback(self, ctx: StepContext) -> None:
        """Undo what the step did, where it can be undone."""
        raise NotImplementedError(f"{self.type_name} cannot be rolled back automatically")
