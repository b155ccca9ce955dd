"""Policies generated from observed calls: narrowed where CloudTrail showed ARNs, linted by parliament."""

from __future__ import annotations

import json
from typing import Any

import pytest
from parliament import analyze_policy_string

from migrate.cloudtrail.model import fold
from migrate.cloudtrail.parse import parse_bytes
from migrate.steps.iam.policy import INLINE_POLICY_LIMIT, generate_policy
from tests.support.cloudtrail_synth import RecordFactory, log_file

ACCT = "123456789012"
KEY_ARN = f"arn:aws:kms:us-east-1:{ACCT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"


def _call(
    action: str | None, resources: list[str], count: int = 5, **errors: int
) -> dict[str, Any]:
    return {
        "action": action,
        "event": f"x:{action}",
        "count": count,
        "errors": errors,
        "resources": resources,
    }


def _resources(doc: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for statement in doc["Statement"]:
        for action in statement["Action"]:
            out[action] = statement["Resource"]
    return out


def _lint(doc: dict[str, Any]) -> list[tuple[str, Any]]:
    return [(f.issue, f.detail) for f in analyze_policy_string(json.dumps(doc)).findings]


def test_narrowed_by_folder_no_resource_actions_exact_and_not_broad() -> None:
    policy = generate_policy(
        [
            _call("s3:GetObject", ["arn:aws:s3:::data/exports/a.csv", "arn:aws:s3:::data/b.csv"]),
            _call("s3:PutObject", ["arn:aws:s3:::data/exports/c.csv"]),
            _call("s3:ListBucket", ["arn:aws:s3:::data"]),
            _call("s3:ListAllMyBuckets", ["*"]),
            _call("sts:GetCallerIdentity", ["*"]),
            _call("kms:Decrypt", [KEY_ARN]),
        ],
        KEY_ARN,
    )
    by_action = _resources(policy.document)
    # data/* covers data/exports/*: one wildcard is enough.
    assert by_action["s3:GetObject"] == ["arn:aws:s3:::data/*"]
    assert by_action["s3:PutObject"] == ["arn:aws:s3:::data/exports/*"]
    assert by_action["s3:ListBucket"] == ["arn:aws:s3:::data"]
    assert by_action["s3:ListAllMyBuckets"] == by_action["sts:GetCallerIdentity"] == "*"
    assert not policy.wildcard_resources and not policy.may_be_incomplete
    assert not any("broad" in note for note in policy.notes())
    assert _lint(policy.document) == []
    exact = generate_policy(
        [_call("s3:GetObject", ["arn:aws:s3:::data/exports/a.csv"])], exact_objects=True
    )
    assert _resources(exact.document)["s3:GetObject"] == ["arn:aws:s3:::data/exports/a.csv"]


@pytest.mark.parametrize(
    ("calls", "why"),
    [
        ([_call("s3:GetObject", [])], "no resource evidence (e.g. Athena)"),
        ([_call("s3:GetObject", ["*", "arn:aws:s3:::data/a"])], "some calls named none"),
        ([_call("s3:GetObject", ["arn:aws:s3:::data"])], "only a bucket ARN for an object action"),
        ([_call("ec2:TerminateInstances", ["*"])], "an action whose resources we do not classify"),
    ],
)
def test_actions_without_usable_arns_are_star_and_flagged_broad(
    calls: list[dict[str, Any]], why: str
) -> None:
    policy = generate_policy(calls)
    action = calls[0]["action"]
    assert _resources(policy.document)[action] == "*", why
    assert policy.broad == [action] and policy.may_be_incomplete
    assert any("broad" in note and action in note for note in policy.notes())


def test_every_call_of_an_action_must_show_arns() -> None:
    # HeadObject and GetObject both need s3:GetObject; one of them showed no ARN.
    policy = generate_policy(
        [_call("s3:GetObject", ["arn:aws:s3:::data/a"]), _call("s3:GetObject", [])]
    )
    assert _resources(policy.document)["s3:GetObject"] == "*"
    both = generate_policy(
        [
            _call("s3:GetObject", ["arn:aws:s3:::data/x/a"]),
            _call("s3:GetObject", ["arn:aws:s3:::logs/b"]),
        ]
    )
    assert _resources(both.document)["s3:GetObject"] == [
        "arn:aws:s3:::data/x/*",
        "arn:aws:s3:::logs/*",
    ]


def test_denied_calls_are_not_granted_and_the_policy_fits_iam_s_limit() -> None:
    policy = generate_policy([_call("s3:PutObject", ["arn:aws:s3:::d/x"], 2, AccessDenied=2)])
    assert policy.denied == ["s3:PutObject"] and policy.actions == []
    assert policy.document["Statement"][0]["Effect"] == "Deny"
    folders = [f"arn:aws:s3:::bucket-{b}/folder-{f}/x" for b in range(20) for f in range(20)]
    actions = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:GetObjectTagging"]
    big = generate_policy([_call(a, folders[i::4]) for i, a in enumerate(actions)])
    assert len(big.json().replace(" ", "")) <= INLINE_POLICY_LIMIT
    assert _resources(big.document)["s3:GetObject"][0] == "arn:aws:s3:::bucket-0/*"


def test_policies_from_synthetic_usage_pass_parliament() -> None:
    records = list(RecordFactory(seed=8).records(3000))
    result = parse_bytes("f", log_file(records))
    resources = {call: s.window() for call, s in result.resources.items()}
    keys, _ = fold(result.combos.items(), resources=resources)
    assert keys
    for usage in keys.values():
        calls = [
            {
                "action": c.iam_action,
                "event": f"{c.event_source}:{c.event_name}",
                "count": c.count,
                "errors": c.errors,
                "resources": c.resources,
            }
            for c in usage.actions
        ]
        policy = generate_policy(calls, KEY_ARN)
        assert policy.narrowed  # S3 object calls name their buckets' folders
        findings = _lint(policy.document)
        assert not [f for f in findings if f[0] in ("UNKNOWN_ACTION", "RESOURCE_MISMATCH")], (
            findings
        )
