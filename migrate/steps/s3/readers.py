"""Who reads a bucket, and whether the target key will let them decrypt after re-encryption.

Readers come from the bucket policy and, where a ``cloudtrail.usage`` report was ingested, from
the principals CloudTrail saw reading objects; each is checked against the key policy.
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from migrate.aws.errors import access_denied, not_found, or_default
from migrate.engine.context import StepContext


def key_policy(ctx: StepContext, arn: str | None, region: str) -> dict[str, Any] | None:
    """The target key's policy (None when the key is unknown or the policy cannot be read)."""
    if not arn:
        return None
    kms = ctx.client("kms", region)
    text = or_default(
        lambda: kms.get_key_policy(KeyId=arn, PolicyName="default")["Policy"],
        None,
        when=lambda exc: access_denied(exc) or not_found(exc),
    )
    return dict(json.loads(text)) if text else None


def bucket_readers(
    bucket_policy: Mapping[str, Any] | None,
    seen_in_cloudtrail: list[str],
    key_policy_doc: Mapping[str, Any] | None,
    key_account: str,
    region: str,
) -> list[dict[str, Any]]:
    """Readers of one bucket (bucket policy first, then CloudTrail) with their key access."""
    readers = [
        {
            "principal": r.principal,
            "access": r.access,
            "cross_account": r.cross_account,
            "seen_in": "bucket policy",
        }
        for r in readers_report(bucket_policy, key_policy_doc, key_account, region)
    ]
    known = {r["principal"] for r in readers}
    for principal in seen_in_cloudtrail:
        if principal in known:
            continue
        readers.append(
            {
                "principal": principal,
                "access": key_policy_access(key_policy_doc, principal, key_account, region),
                "cross_account": account_of(principal) not in (None, key_account),
                "seen_in": "CloudTrail",
            }
        )
    return readers


@dataclass(frozen=True)
class Reader:
    """A principal that may read a bucket, and whether the key policy lets it decrypt."""

    principal: str
    access: str  # "key-policy" | "iam" | "none"
    cross_account: bool


_READ_ACTIONS = ("s3:GetObject", "s3:GetObjectVersion")


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def _action_matches(patterns: Any, action: str) -> bool:
    return any(fnmatch.fnmatchcase(action.lower(), str(p).lower()) for p in _as_list(patterns))


def _principal_list(principal: Any) -> list[str]:
    if principal == "*":
        return ["*"]
    if isinstance(principal, Mapping):
        return [str(p) for p in _as_list(principal.get("AWS"))]
    return []


def account_of(principal: str) -> str | None:
    """The account id of an IAM principal ARN or bare account id (None for ``*``)."""
    if principal.isdigit() and len(principal) == 12:
        return principal
    parts = principal.split(":")
    if principal.startswith("arn:") and len(parts) > 4 and parts[4]:
        return parts[4]
    return None


def bucket_policy_readers(policy: Mapping[str, Any] | None) -> list[str]:
    """Principals a bucket policy allows to read objects (``*`` for anyone)."""
    readers: set[str] = set()
    for stmt in _as_list((policy or {}).get("Statement")):
        if stmt.get("Effect") != "Allow":
            continue
        if not any(_action_matches(stmt.get("Action"), a) for a in _READ_ACTIONS):
            continue
        readers.update(_principal_list(stmt.get("Principal")))
    return sorted(readers)


def key_policy_access(
    key_policy: Mapping[str, Any] | None, principal: str, key_account: str, region: str
) -> str:
    """How ``principal`` could get kms:Decrypt on the key through S3.

    ``key-policy``: the key policy allows it itself (by ARN, or ``*`` with conditions an S3 read
    from that account meets); ``iam``: the key policy delegates to the principal's account, so its
    IAM policies must grant kms:Decrypt; ``none``: nothing allows it (anonymous readers never can).
    Conditions other than kms:CallerAccount/kms:ViaService are assumed to be met.
    """
    if principal == "*":
        return "none"  # anonymous requests cannot use a KMS key at all
    account = account_of(principal)
    best = "none"
    for stmt in _as_list((key_policy or {}).get("Statement")):
        if stmt.get("Effect") != "Allow" or not _action_matches(stmt.get("Action"), "kms:Decrypt"):
            continue
        if not _conditions_met(stmt.get("Condition") or {}, account, region):
            continue
        names = _principal_list(stmt.get("Principal"))
        if "*" in names or principal in names:
            return "key-policy"
        roots = {f"arn:aws:iam::{account}:root", account} if account else set()
        if roots & set(names):
            best = "iam"
    return best


def _conditions_met(condition: Mapping[str, Any], account: str | None, region: str) -> bool:
    for operator, clauses in condition.items():
        if not str(operator).startswith("StringEquals") and not str(operator).startswith(
            "StringLike"
        ):
            continue
        for name, wanted in (clauses or {}).items():
            values = [str(v) for v in _as_list(wanted)]
            if name.lower() == "kms:calleraccount" and account not in values:
                return False
            if name.lower() == "kms:viaservice" and not any(
                fnmatch.fnmatchcase(f"s3.{region}.amazonaws.com", v) for v in values
            ):
                return False
    return True


def readers_report(
    bucket_policy: Mapping[str, Any] | None,
    key_policy: Mapping[str, Any] | None,
    key_account: str,
    region: str,
) -> list[Reader]:
    """Each bucket-policy reader with how it would get kms:Decrypt on the key."""
    return [
        Reader(
            principal=p,
            access=key_policy_access(key_policy, p, key_account, region),
            cross_account=p != "*" and account_of(p) not in (None, key_account),
        )
        for p in bucket_policy_readers(bucket_policy)
    ]


def cloudtrail_readers(ctx: StepContext) -> dict[str, list[str]]:
    """Principals the newest CloudTrail usage report saw reading objects, by bucket.

    Evidence only where it exists: without an ingested report (``cloudtrail.usage``) this is
    empty, and the plan says readers granted by IAM alone are not checked.
    """
    report = ctx.usage_report()
    if report is None:
        return {}
    found: dict[str, set[str]] = {}
    for usage in (*report.keys, *report.sessions):
        principal = usage.owner_arn or usage.principal
        if not principal or not principal.startswith("arn:"):
            continue
        for call in usage.actions:
            if call.iam_action not in ("s3:GetObject", "s3:GetObjectVersion"):
                continue
            for arn in call.resources:
                if arn.startswith("arn:aws:s3:::"):
                    bucket = arn.removeprefix("arn:aws:s3:::").split("/", 1)[0]
                    found.setdefault(bucket, set()).add(principal)
    return {bucket: sorted(names) for bucket, names in found.items()}
