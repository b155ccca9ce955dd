"""Selecting resources by names (globs), exclusions and tags, the same way in every step."""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping

from pydantic import Field

from migrate.engine.base import StepParams


class Selection(StepParams):
    """``names`` (glob patterns, default all), ``exclude`` (globs) and ``tags`` (all must match)."""

    names: list[str] = Field(default_factory=lambda: ["*"])
    exclude: list[str] = Field(default_factory=list)
    tags: dict[str, str] = Field(default_factory=dict)

    def name_matches(self, name: str) -> bool:
        """True when ``name`` matches a pattern of ``names`` and none of ``exclude``."""
        return any(fnmatch.fnmatchcase(name, p) for p in self.names) and not any(
            fnmatch.fnmatchcase(name, p) for p in self.exclude
        )

    def tags_match(self, tags: Mapping[str, str]) -> bool:
        """True when every wanted tag is present (value ``*`` matches any value)."""
        return all(
            k in tags and (v == "*" or fnmatch.fnmatchcase(tags[k], v))
            for k, v in self.tags.items()
        )
