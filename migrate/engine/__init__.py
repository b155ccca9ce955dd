"""The engine: step registry, actions, run context, runner, planner, lock."""

from __future__ import annotations

from migrate.engine.base import Action, Estimate, Facts, Step, StepParams, Wait
from migrate.engine.registry import get_step_type, registered_steps, step

__all__ = [
    "Action",
    "Estimate",
    "Facts",
    "Step",
    "StepParams",
    "Wait",
    "get_step_type",
    "registered_steps",
    "step",
]
