"""Selecting resources by names (globs), exclusions and tags, the same way in every step."""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping

from pydantic import Field

from migrate.aws.iam_scope import iam_pattern
from migrate.engine.base import StepParams
from migrate.errors import ParamError

# A name with one of these is a pattern; without, it names exactly one resource.
GLOB_CHARS = frozenset("*?[")


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

    def iam_patterns(self) -> tuple[str, ...] | None:
        """``names`` as IAM resource-name patterns for ``migrate permissions``; None when they
        select everything (``*``). Exclusions and tags cannot be said in a resource ARN: the
        patterns are wider than the selection, never narrower."""
        if any(n.strip("*") == "" for n in self.names):
            return None
        return tuple(iam_pattern(n) for n in self.names)

    def tags_match(self, tags: Mapping[str, str]) -> bool:
        """True when every wanted tag is present (value ``*`` matches any value)."""
        return all(
            k in tags and (v == "*" or fnmatch.fnmatchcase(tags[k], v))
            for k, v in self.tags.items()
        )

    def unmatched(self, seen: Iterable[str], what: str, where: str) -> list[str]:
        """Check ``names`` against every name the account has (``seen``, before exclusions and
        tags): an explicit name that matches nothing is a typo or the wrong account/region, so
        it raises :class:`ParamError` (``names``); a glob that matches nothing is returned as a
        warning for the plan (the default ``*`` on an empty account is not worth one)."""
        have = set(seen)
        missing = [n for n in self.names if not GLOB_CHARS & set(n) and n not in have]
        if missing:
            listed = ", ".join(repr(n) for n in missing)
            raise ParamError(
                f"no {what} named {listed} in {where}. Check the spelling, the account and the "
                "region (--region or with.regions), or use a glob (e.g. 'app-*'): a glob that "
                "matches nothing is only a warning.",
                "names",
            )
        return [
            f"names: {pattern!r} matches no {what} in {where}"
            for pattern in self.names
            if pattern != "*"
            and GLOB_CHARS & set(pattern)
            and not any(fnmatch.fnmatchcase(n, pattern) for n in have)
        ]
