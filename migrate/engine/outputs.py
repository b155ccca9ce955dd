"""Outputs of steps in templates: what an output that does not exist yet renders as.

While planning, or before a step ran, ``{{ steps.X.name }}`` renders as ``(known after X)``: a
string that says so, never a guess. Steps tell such values apart with ``ctx.is_known``; the planner
marks the actions that depend on them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

KNOWN_AFTER_PREFIX = "(known after "


class KnownAfter(str):
    """The rendered value of an output that does not exist yet: ``(known after STEP)``."""

    __slots__ = ("step_id",)
    step_id: str

    def __new__(cls, step_id: str) -> KnownAfter:
        obj = super().__new__(cls, f"{KNOWN_AFTER_PREFIX}{step_id})")
        obj.step_id = step_id
        return obj


class PendingOutputs(Mapping[str, Any]):
    """Outputs of a step that has not run: every name renders as ``(known after STEP)``."""

    def __init__(self, step_id: str, known: Mapping[str, Any] | None = None) -> None:
        self.step_id = step_id
        self.known = dict(known or {})

    def __getitem__(self, name: str) -> Any:
        if name in self.known:
            return self.known[name]
        return KnownAfter(self.step_id)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return self[name]

    def __iter__(self) -> Any:
        return iter(self.known)

    def __len__(self) -> int:
        return len(self.known)


def is_known(value: Any) -> bool:
    """False for a value (or a value containing one) that is ``(known after STEP)``."""
    if isinstance(value, str):
        return KNOWN_AFTER_PREFIX not in value
    if isinstance(value, dict):
        return all(is_known(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return all(is_known(v) for v in value)
    return True


def unknown_steps(value: Any) -> set[str]:
    """The step ids a rendered value is still waiting for."""
    found: set[str] = set()
    if isinstance(value, str):
        for match in re.finditer(r"\(known after ([^)]+)\)", value):
            found.add(match.group(1))
    elif isinstance(value, dict):
        for v in value.values():
            found |= unknown_steps(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            found |= unknown_steps(v)
    return found
