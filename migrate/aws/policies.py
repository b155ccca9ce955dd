"""Resource policies (bucket and key policies): read, compare and merge statements by ``Sid``.

The archive trail's bucket and key policies and the baseline's TLS-only bucket policies all add
statements to a policy someone else may already own. Statements are merged by ``Sid``: ours
replace a statement of the same Sid and everything else is kept as it was, so a merge never
drops a grant the account relies on.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import unquote

from migrate.aws.errors import or_default

Policy = dict[str, Any]


def empty_policy() -> Policy:
    """A policy document with no statements."""
    return {"Version": "2012-10-17", "Statement": []}


def parse_policy(text: str | None) -> Policy | None:
    """The policy document of ``text``, None when there is none."""
    if not text:
        return None
    data = json.loads(text)
    statements = data.get("Statement", [])
    if isinstance(statements, dict):  # a single statement may be written without a list
        data["Statement"] = [statements]
    return dict(data)


def bucket_policy(s3: Any, bucket: str) -> Policy | None:
    """The bucket policy of ``bucket`` (None when it has none)."""
    text = or_default(lambda: s3.get_bucket_policy(Bucket=bucket).get("Policy"), None)
    return parse_policy(text)


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def missing_statements(policy: Policy | None, wanted: list[dict[str, Any]]) -> list[str]:
    """Sids of ``wanted`` statements that ``policy`` lacks or holds in another form."""
    have = {s.get("Sid"): s for s in (policy or {}).get("Statement", []) if s.get("Sid")}
    return [
        s["Sid"]
        for s in wanted
        if s["Sid"] not in have or _canonical(have[s["Sid"]]) != _canonical(s)
    ]


def merge_statements(policy: Policy | None, wanted: list[dict[str, Any]]) -> Policy:
    """``policy`` with ``wanted`` statements put in by Sid; every other statement kept."""
    merged = dict(policy or empty_policy())
    sids = {s["Sid"] for s in wanted}
    kept = [s for s in merged.get("Statement", []) if s.get("Sid") not in sids]
    merged["Statement"] = kept + list(wanted)
    merged.setdefault("Version", "2012-10-17")
    return merged


def without_statements(policy: Policy | None, sids: set[str]) -> Policy | None:
    """``policy`` minus the statements with ``sids`` (None if nothing is left)."""
    if policy is None:
        return None
    kept = [s for s in policy.get("Statement", []) if s.get("Sid") not in sids]
    if not kept:
        return None
    return {**policy, "Statement": kept}


def dump_policy(policy: Policy) -> str:
    """The JSON text AWS takes (stable key order, so a re-put is byte-identical)."""
    return json.dumps(policy, sort_keys=True)


def tls_only_statement(bucket: str, sid: str = "DenyInsecureTransport") -> dict[str, Any]:
    """Deny every request to ``bucket`` and its objects that does not use TLS."""
    return {
        "Sid": sid,
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }


def remove_key_statements(kms: Any, key: str, sids: set[str]) -> None:
    """Take the statements ``sids`` out of a key policy, keeping everything else as it is now."""
    current = parse_policy(kms.get_key_policy(KeyId=key, PolicyName="default")["Policy"])
    if current is None or not any(s.get("Sid") in sids for s in current.get("Statement", [])):
        return
    kept = without_statements(current, sids) or empty_policy()
    kms.put_key_policy(KeyId=key, PolicyName="default", Policy=dump_policy(kept))


def _text(document: Any) -> str:
    """A policy document as searchable text (botocore decodes most to dicts; some stay strings,
    URL-encoded as IAM sends them)."""
    if isinstance(document, str):
        return unquote(document)
    return json.dumps(document)


def identity_policies_naming(iam: Any, needles: list[str]) -> dict[str, list[str]]:
    """Per needle (a resource id, an ARN fragment), the IAM identity policies whose document
    names it: ``policy NAME`` (customer-managed, default version) and ``role/R inline P``
    (inline policies of users, groups and roles). One paginated GetAccountAuthorizationDetails
    reads them all."""
    found: dict[str, list[str]] = {n: [] for n in needles}
    if not needles:
        return found

    def look(label: str, document: Any) -> None:
        text = _text(document)
        for needle in needles:
            if needle in text and label not in found[needle]:
                found[needle].append(label)

    pages = iam.get_paginator("get_account_authorization_details").paginate(
        Filter=["User", "Role", "Group", "LocalManagedPolicy"]
    )
    for page in pages:
        for kind, details, name_key, inline_key in (
            ("user", "UserDetailList", "UserName", "UserPolicyList"),
            ("group", "GroupDetailList", "GroupName", "GroupPolicyList"),
            ("role", "RoleDetailList", "RoleName", "RolePolicyList"),
        ):
            for entity in page.get(details, []):
                for inline in entity.get(inline_key) or ():
                    look(
                        f"{kind}/{entity.get(name_key)} inline {inline.get('PolicyName')}",
                        inline.get("PolicyDocument"),
                    )
        for policy in page.get("Policies", []):
            for version in policy.get("PolicyVersionList") or ():
                if version.get("IsDefaultVersion"):
                    look(f"policy {policy.get('PolicyName')}", version.get("Document"))
    return found
