"""The step-type registry: ``@step("s3.reencrypt")`` registers a class under its dotted name."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable

from migrate.engine.base import Step

_REGISTRY: dict[str, type[Step]] = {}
_LOADED = False


def step(name: str) -> Callable[[type[Step]], type[Step]]:
    """Class decorator registering a step type under ``name`` (``area.verb``)."""

    def register(cls: type[Step]) -> type[Step]:
        if name in _REGISTRY and _REGISTRY[name] is not cls:
            raise RuntimeError(f"step type {name!r} registered twice")
        if not cls.__doc__:
            raise RuntimeError(f"step type {name!r} needs a docstring (it is its help text)")
        cls.type_name = name
        _REGISTRY[name] = cls
        return cls

    return register


def load_builtin_steps() -> None:
    """Import every module of the ``migrate.steps`` packages so that their decorators run."""
    global _LOADED
    if _LOADED:
        return
    # Discovered, not imported by name: the step packages sit above the registry they use.
    pkg = importlib.import_module("migrate.steps")
    for mod in pkgutil.walk_packages(pkg.__path__, prefix=f"{pkg.__name__}."):
        importlib.import_module(mod.name)
    _LOADED = True


def registered_steps() -> dict[str, type[Step]]:
    """Every registered step type, by name, sorted."""
    load_builtin_steps()
    return dict(sorted(_REGISTRY.items()))


def get_step_type(name: str) -> type[Step] | None:
    """The step type registered as ``name``, or None."""
    load_builtin_steps()
    return _REGISTRY.get(name)
