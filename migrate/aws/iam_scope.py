"""The resources an IAM action can be limited to, and a least-privilege policy built from them.

AWS's *Service Authorization Reference* lists, per IAM action, the resource types it can be
granted on (``arn:${Partition}:s3:::${BucketName}/${ObjectName}`` for ``s3:GetObject``) or none
(``ec2:DescribeInstances`` works on ``*`` only). ``policy_sentry`` ships that reference as data
and is the well-kept copy of it we read; writing it out by hand would go stale with every AWS
release.

A step narrows further with :class:`Scope`: the names its parameters fix (``BucketName`` for the
buckets a playbook names, ``RoleNameWithPath`` for the roles it creates) or a condition (a tag
migrate puts on what it creates). Everything else gets every resource *of the action's types*,
never ``*`` when the action has a type.
"""

from __future__ import annotations

import fnmatch
import itertools
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any

_VARIABLE = re.compile(r"\$\{([A-Za-z]+)\}")
# More resource types than this for one action (rds:AddTagsToResource has 24) become one
# service-wide ARN: the list would say no more and cost a managed policy's size.
_MAX_TYPES = 6
# IAM's size limit for a customer managed policy (characters, whitespace not counted).
MANAGED_POLICY_LIMIT = 6144


@dataclass(frozen=True)
class Scope:
    """What a step's parameters limit some of its actions to.

    ``names`` maps a variable of the reference's ARN formats (``BucketName``, ``ObjectName``,
    ``RoleNameWithPath``, ``InstanceProfileNameWithPath``, ``SecretId``...) to IAM patterns
    (``*`` and ``?`` only); ``condition`` is an IAM ``Condition`` block added to them."""

    actions: tuple[str, ...]
    names: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    condition: Mapping[str, Any] | None = None


def iam_pattern(glob: str) -> str:
    """An fnmatch glob as an IAM resource pattern: ``*`` and ``?`` are the same, a character
    class ``[...]`` (which IAM lacks) becomes ``?`` (a wider match, never a narrower one)."""
    return re.sub(r"\[[^\]]*\]", "?", glob)


@cache
def arn_formats(action: str) -> tuple[str, ...]:
    """The ARN formats of the resource types ``action`` can be granted on; () when it works on
    ``*`` only or the reference does not know it (a newer action: granted on ``*``)."""
    from policy_sentry.querying.actions import get_action_data  # 0.2 s of data: only when asked

    service, _, name = action.partition(":")
    try:
        rows = get_action_data(service, name) or {}
    except Exception:  # policy_sentry raises on unknown services
        return ()
    formats = {
        row["resource_arn_format"]
        for row in rows.get(service, [])
        if row["action"].lower() == action.lower()
    }
    formats.discard("*")
    return tuple(sorted(formats))


def resources_for(
    action: str, names: Mapping[str, Sequence[str]] | None = None, partition: str = "aws"
) -> tuple[str, ...]:
    """The ARNs (IAM patterns) ``action`` needs: each resource type's format with the scoped
    variables filled in and every other variable ``*``; ``("*",)`` for actions without types."""
    formats = arn_formats(action)
    if not formats:
        return ("*",)
    names = names or {}
    arns: set[str] = set()
    for fmt in formats:
        if "BucketName" in names and ":accesspoint/" in fmt:
            continue  # migrate names buckets, never access points: no way around the names
        parts = _VARIABLE.split(fmt)  # literal, var, literal, var, ...
        choices: list[Sequence[str]] = []
        for i, part in enumerate(parts):
            if i % 2 == 0:
                choices.append((part,))
            elif part == "Partition":
                choices.append((partition,))
            else:
                choices.append(tuple(names.get(part, ("*",))) or ("*",))
        arns.update("".join(c) for c in itertools.product(*choices))
    if len(arns) > _MAX_TYPES and not names:
        return (_common_arn(arns),)
    return tuple(sorted(_without_covered(arns)))


def _common_arn(arns: Iterable[str]) -> str:
    """One ARN pattern matching all of ``arns``: each of the six parts kept where they agree,
    ``*`` where they differ (``arn:aws:rds:*:*:*`` for RDS's resource types)."""
    split = [a.split(":", 5) for a in arns]
    return ":".join(
        column[0] if len(set(column)) == 1 else "*" for column in zip(*split, strict=False)
    )


def _without_covered(arns: set[str]) -> set[str]:
    """Drop an ARN another one of the set already matches (``arn:aws:s3:::b/*`` covers
    ``arn:aws:s3:::b/x*``)."""
    return {
        a
        for a in arns
        if not any(b != a and fnmatch.fnmatchcase(a, b.replace("[", "[[]")) for b in arns)
    }


@dataclass
class PolicyBuilder:
    """Collects (action, resources, condition) grants and prints them as few statements as
    say the same: actions with the same resources and condition share one."""

    partition: str = "aws"
    # (resources, condition as JSON, narrowed by a step's names) -> actions
    _grants: dict[tuple[tuple[str, ...], str, bool], set[str]] = field(default_factory=dict)

    def add(
        self,
        actions: Iterable[str],
        scopes: Sequence[Scope] = (),
        *,
        resources: Sequence[str] | None = None,
        condition: Mapping[str, Any] | None = None,
    ) -> None:
        """Grant ``actions``: on ``resources`` when given, else on what the reference and the
        first scope that names the action allow."""
        for action in actions:
            scope = next((s for s in scopes if action in s.actions), None)
            names = scope.names if scope else None
            if resources is not None:
                arns, cond = tuple(resources), condition
            else:
                arns = resources_for(action, names, self.partition)
                cond = scope.condition if scope else condition
            key = (arns, json.dumps(cond, sort_keys=True) if cond else "", bool(names))
            self._grants.setdefault(key, set()).add(action)

    def statements(self) -> list[dict[str, Any]]:
        """The grants as statements. Actions granted on every resource of their types (no
        step named narrower ones, no condition) share one statement per service, on the union of
        those types: a few resource types more for some actions of that service, in exchange
        for a document that fits IAM's policy size limits."""
        merged: dict[tuple[tuple[str, ...], str], set[str]] = {}
        per_service: dict[str, tuple[set[str], set[str]]] = {}
        for (arns, cond, narrowed), actions in self._grants.items():
            if arns != ("*",) and not cond and not narrowed:
                for action in actions:
                    kinds, acts = per_service.setdefault(action.split(":")[0], (set(), set()))
                    kinds.update(arns)
                    acts.add(action)
            else:
                merged.setdefault((arns, cond), set()).update(actions)
        for kinds, acts in per_service.values():
            arns = tuple(sorted(_without_covered(kinds)))
            merged.setdefault((arns, ""), set()).update(acts)
        out: list[dict[str, Any]] = []
        for (arns, cond), actions in sorted(
            merged.items(), key=lambda kv: (kv[0][0] != ("*",), kv[0])
        ):
            statement: dict[str, Any] = {
                "Sid": _sid(arns, len(out) + 1),
                "Effect": "Allow",
                "Action": sorted(actions),
                "Resource": arns[0] if len(arns) == 1 else list(arns),
            }
            if cond:
                statement["Condition"] = json.loads(cond)
            out.append(statement)
        return out


def _sid(arns: Sequence[str], n: int) -> str:
    if arns == ("*",):
        return f"AnyResource{n}"
    services = sorted({a.split(":")[2] for a in arns if a.count(":") >= 2})
    return "".join(s.capitalize().replace("-", "") for s in services)[:80] + str(n)


def policy_size(document: Mapping[str, Any]) -> int:
    """The size IAM counts against its limits: the JSON without whitespace."""
    return len(json.dumps(document, separators=(",", ":")))
