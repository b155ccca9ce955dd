"""Least-privilege policies from observed usage, checked against the list of real IAM actions."""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from typing import Any

# Error codes that mean "the key was not allowed to do this": such calls are not granted.
DENIED_CODES = frozenset(
    {
        "AccessDenied",
        "AccessDeniedException",
        "UnauthorizedOperation",
        "Client.UnauthorizedOperation",
        "UnauthorizedAccess",
        "AuthorizationError",
    }
)
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
    wildcard_resources: bool = True

    @property
    def may_be_incomplete(self) -> bool:
        """True when observed usage cannot prove the policy covers the workload."""
        return bool(self.unmapped or self.unknown or self.wildcard_resources)

    def notes(self) -> list[str]:
        """Plan/report notes on what the policy does not cover."""
        out: list[str] = []
        if self.wildcard_resources:
            out.append(
                "may be incomplete / broad: resources are '*' where CloudTrail showed no ARN; "
                "narrow them after the watch window"
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


def generate_policy(
    calls: list[dict[str, Any]],
    kms_key_arn: str | None = None,
    resources: dict[str, list[str]] | None = None,
) -> GeneratedPolicy:
    """A least-privilege policy from observed calls.

    ``calls``: ``[{"action": "s3:GetObject" | None, "event": "s3.amazonaws.com:GetObject",
    "count": n, "errors": {code: n}}]``. A call that only ever failed with an access-denied code is
    left out (the key never had it). ``resources`` narrows an action to the ARNs seen for it.
    """
    granted: set[str] = set()
    denied: set[str] = set()
    unmapped: set[str] = set()
    unknown: set[str] = set()
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
    resources = resources or {}
    statements: list[dict[str, Any]] = []
    narrowed = sorted(a for a in granted if resources.get(a))
    broad = sorted(a for a in granted if not resources.get(a))
    for i, action in enumerate(narrowed):
        statements.append(
            {
                "Sid": f"Observed{i}",
                "Effect": "Allow",
                "Action": [action],
                "Resource": sorted(set(resources[action])),
            }
        )
    if broad:
        statements.append(
            {"Sid": "ObservedCalls", "Effect": "Allow", "Action": broad, "Resource": "*"}
        )
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
        wildcard_resources=bool(broad),
    )
