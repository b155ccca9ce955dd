"""Least-privilege policies from observed usage, checked against the list of real IAM actions.

Actions come from the calls a key made (through the vetted eventSource/eventName mapping);
resources from the ARNs CloudTrail showed for them (:mod:`migrate.cloudtrail.resources`), kept
only where the action accepts that kind of ARN (:mod:`migrate.cloudtrail.arns`). S3 objects are
granted by folder (``arn:aws:s3:::bucket/exports/*``): a workload that wrote
``exports/customers-2026-11-23.csv`` will write tomorrow's file too. An action that takes no
resource (``s3:ListAllMyBuckets``) gets ``*``, which is exact; an action that could be narrowed but
showed no ARN gets ``*`` too, and the policy says so ("broad").
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from typing import Any

from migrate.cloudtrail.arns import KIND_S3_OBJECT, accepted_kinds, arn_kind, takes_no_resource
from migrate.cloudtrail.resources import ANY, DENIED_CODES

# IAM's limit for an inline role policy (characters, whitespace not counted).
INLINE_POLICY_LIMIT = 10_240

EC2_TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"Service": "ec2.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
    ],
}
# Calls that read or write S3 objects or secrets under a customer-managed key need the key too.
KMS_READ_USERS = ("s3:GetObject", "secretsmanager:GetSecretValue")
KMS_WRITE_USERS = ("s3:PutObject", "secretsmanager:PutSecretValue", "secretsmanager:CreateSecret")


@functools.cache
def known_iam_actions() -> frozenset[str]:
    """Every real IAM action, lower-cased (parliament ships AWS's list)."""
    try:
        from parliament import iam_definition
    except ImportError:  # parliament is a dev extra: without it every action passes
        return frozenset()
    return frozenset(
        f"{svc['prefix']}:{priv['privilege']}".lower()
        for svc in iam_definition
        for priv in svc["privileges"]
    )


def is_real_action(action: str) -> bool:
    """True if ``action`` is a real IAM action (or the list is unavailable)."""
    known = known_iam_actions()
    return not known or action.lower() in known


@dataclass
class GeneratedPolicy:
    """A policy document with what went into it and what may be missing."""

    document: dict[str, Any]
    actions: list[str]
    denied: list[str] = field(default_factory=list)
    unmapped: list[str] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)
    broad: list[str] = field(default_factory=list)
    narrowed: dict[str, list[str]] = field(default_factory=dict)
    # Notes the step adds (grants past usage cannot show, such as secrets moved later).
    extra_notes: list[str] = field(default_factory=list)

    @property
    def wildcard_resources(self) -> bool:
        """True when some action that could name resources got ``*``."""
        return bool(self.broad)

    @property
    def may_be_incomplete(self) -> bool:
        """True when observed usage cannot prove the policy covers the workload."""
        return bool(self.unmapped or self.unknown or self.wildcard_resources)

    def notes(self) -> list[str]:
        """Plan/report notes on what the policy does not cover."""
        out: list[str] = []
        if self.broad:
            out.append(
                "may be incomplete / broad: resources are '*' for "
                + ", ".join(self.broad[:8])
                + (f" and {len(self.broad) - 8} more" if len(self.broad) > 8 else "")
                + " (CloudTrail showed no ARN for them); narrow them after the watch window"
            )
        if self.unmapped:
            out.append(
                "may be incomplete: no IAM action is known for " + ", ".join(self.unmapped[:8])
            )
        if self.unknown:
            out.append("left out (not real IAM actions): " + ", ".join(self.unknown[:8]))
        if self.denied:
            out.append(
                "not granted (the key was denied these before): " + ", ".join(self.denied[:8])
            )
        return out

    def json(self) -> str:
        """The document as IAM wants it."""
        return json.dumps(self.document, sort_keys=True)


def _folder(arn: str) -> str:
    """An S3 object ARN as its folder (``b/exports/x.csv`` -> ``b/exports/*``; ``b/x`` -> ``b/*``)."""
    if arn.endswith(ANY):
        return arn
    return arn[: arn.rindex("/") + 1] + ANY


def _bucket_wide(arn: str) -> str:
    return arn.split("/", 1)[0] + "/" + ANY


def _without_covered(arns: set[str]) -> list[str]:
    """Drop ARNs a wildcard in the same set already covers (``b/x/*`` under ``b/*``)."""
    wild = [a[:-1] for a in arns if a.endswith(ANY)]
    return sorted(a for a in arns if not any(a != w + ANY and a.startswith(w) for w in wild))


def _narrow(action: str, arns: list[str], exact_objects: bool) -> list[str]:
    """The observed ARNs this action may name (S3 objects by folder unless ``exact_objects``)."""
    kinds = accepted_kinds(action)
    kept: set[str] = set()
    for arn in arns:
        kind = arn_kind(arn)
        if kind is None or kind not in kinds:
            continue
        kept.add(arn if exact_objects or kind != KIND_S3_OBJECT else _folder(arn))
    return _without_covered(kept)


def _statements(
    narrowed: dict[str, list[str]], account_level: list[str], broad: list[str]
) -> list[dict[str, Any]]:
    statements: list[dict[str, Any]] = []
    # Actions with the same resources share a statement (GetObject + PutObject on a folder).
    by_resources: dict[tuple[str, ...], list[str]] = {}
    for action, arns in sorted(narrowed.items()):
        by_resources.setdefault(tuple(arns), []).append(action)
    groups = sorted(by_resources.items(), key=lambda kv: kv[1])
    for i, (resource_arns, actions) in enumerate(groups):
        statements.append(
            {
                "Sid": f"Observed{i}",
                "Effect": "Allow",
                "Action": actions,
                "Resource": list(resource_arns),
            }
        )
    if account_level:
        statements.append(
            {
                "Sid": "ObservedNoResource",
                "Effect": "Allow",
                "Action": sorted(account_level),
                "Resource": "*",
            }
        )
    if broad:
        statements.append(
            {"Sid": "ObservedCalls", "Effect": "Allow", "Action": sorted(broad), "Resource": "*"}
        )
    return statements


def _size(statements: list[dict[str, Any]]) -> int:
    doc = {"Version": "2012-10-17", "Statement": statements}
    return len(json.dumps(doc, separators=(",", ":")))


def generate_policy(
    calls: list[dict[str, Any]],
    kms_key_arn: str | None = None,
    resources: dict[str, list[str]] | None = None,
    *,
    exact_objects: bool = False,
) -> GeneratedPolicy:
    """A least-privilege policy from observed calls.

    ``calls``: ``[{"action": "s3:GetObject" | None, "event": "s3.amazonaws.com:GetObject",
    "count": n, "errors": {code: n}, "resources": [arn, ...]}]``. A call that only ever failed
    with an access-denied code is left out (the key never had it). An action is narrowed to the
    ARNs its calls showed when every call of it showed some (``resources`` empty means unknown,
    ``*`` among them means some calls named none); ``resources`` (``{action: [arn]}``) overrides
    what the calls say for the actions it names.
    """
    granted: set[str] = set()
    denied: set[str] = set()
    unmapped: set[str] = set()
    unknown: set[str] = set()
    seen: dict[str, list[str] | None] = {}
    for call in calls:
        action = call.get("action")
        if not action:
            unmapped.add(call.get("event", "?"))
            continue
        errors = call.get("errors") or {}
        denied_n = sum(n for code, n in errors.items() if code in DENIED_CODES)
        if denied_n >= int(call.get("count", 0)) > 0:
            denied.add(action)
            continue
        if not is_real_action(action):
            unknown.add(action)
            continue
        granted.add(action)
        arns = list(call.get("resources") or [])
        before = seen.get(action, [])
        # One call of the action without evidence makes the whole action unknown: "*".
        seen[action] = None if before is None or not arns or ANY in arns else before + arns
    denied -= granted  # denied once, used successfully elsewhere (another call of it)
    for action, arns in (resources or {}).items():
        if action in granted:
            seen[action] = list(arns) if arns and ANY not in arns else None

    narrowed: dict[str, list[str]] = {}
    account_level: list[str] = []
    broad: list[str] = []
    for action in sorted(granted):
        if takes_no_resource(action):
            account_level.append(action)
            continue
        found = seen.get(action)
        arns = _narrow(action, found, exact_objects) if found else []
        if arns:
            narrowed[action] = arns
        else:
            broad.append(action)
    statements = _statements(narrowed, account_level, broad)
    if _size(statements) > INLINE_POLICY_LIMIT - 400:
        # Too many folders for one inline policy: grant whole buckets instead.
        narrowed = {
            a: _without_covered(
                {_bucket_wide(r) if arn_kind(r) == KIND_S3_OBJECT else r for r in v}
            )
            for a, v in narrowed.items()
        }
        statements = _statements(narrowed, account_level, broad)
    if _size(statements) > INLINE_POLICY_LIMIT - 400:
        broad = sorted({*broad, *narrowed})
        narrowed = {}
        statements = _statements(narrowed, account_level, broad)
    if kms_key_arn and granted & set(KMS_READ_USERS + KMS_WRITE_USERS):
        kms = ["kms:Decrypt"]
        if granted & set(KMS_WRITE_USERS):
            kms.append("kms:GenerateDataKey")
        statements.append(
            {
                "Sid": "KeyForEncryptedData",
                "Effect": "Allow",
                "Action": kms,
                "Resource": kms_key_arn,
            }
        )
    if not statements:
        statements.append(
            {"Sid": "NothingObserved", "Effect": "Deny", "Action": "*", "Resource": "*"}
        )
    return GeneratedPolicy(
        document={"Version": "2012-10-17", "Statement": statements},
        actions=sorted(granted),
        denied=sorted(denied),
        unmapped=sorted(unmapped),
        unknown=sorted(unknown),
        broad=broad,
        narrowed=narrowed,
    )
