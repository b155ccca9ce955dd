"""The ARN-kind tables against parliament's Service Authorization Reference, and the classifier."""

from __future__ import annotations

import re

import pytest
from parliament import iam_definition

from migrate.cloudtrail.arns import (
    ACCEPTS,
    NO_RESOURCE,
    NO_RESOURCE_SERVICES,
    accepted_kinds,
    accepts,
    arn_kind,
    partition_of,
    takes_no_resource,
)


def _sample(pattern: str) -> str:
    return re.sub(r"\$\{[^}]+\}", "x", pattern).replace("arn:x:", "arn:aws:", 1)


def test_accepts_table_is_what_parliament_says() -> None:
    """Regenerate: every action with a resource type whose ARN pattern arn_kind() classifies."""
    expected: dict[str, set[str]] = {}
    for service in iam_definition:
        kinds = {r["resource"]: arn_kind(_sample(r["arn"])) for r in service["resources"]}
        for privilege in service["privileges"]:
            for resource_type in privilege["resource_types"]:
                kind = kinds.get(resource_type["resource_type"].rstrip("*"))
                if kind:
                    expected.setdefault(kind, set()).add(
                        f"{service['prefix']}:{privilege['privilege']}"
                    )
    assert {k: set(v) for k, v in ACCEPTS.items()} == expected, (
        "arns.ACCEPTS differs from parliament's data: regenerate it (see this test)"
    )


def test_no_resource_table_is_what_parliament_says() -> None:
    expected = {
        f"{service['prefix']}:{privilege['privilege']}"
        for service in iam_definition
        if service["prefix"] in NO_RESOURCE_SERVICES
        for privilege in service["privileges"]
        if not any(rt["resource_type"] for rt in privilege["resource_types"])
    }
    assert set(NO_RESOURCE) == expected


@pytest.mark.parametrize(
    ("arn", "kind"),
    [
        ("arn:aws:s3:::legacy-app-data", "s3:bucket"),
        ("arn:aws:s3:::legacy-app-data/exports/a.csv", "s3:object"),
        ("arn:aws:s3:::legacy-app-data/exports/*", "s3:object"),
        ("arn:aws:s3:us-east-1:123456789012:accesspoint/ap", None),
        ("arn:aws:secretsmanager:us-east-1:123456789012:secret:db-AbCdEf", "secretsmanager:secret"),
        ("arn:aws:dynamodb:us-east-1:123456789012:table/orders", "dynamodb:table"),
        ("arn:aws:dynamodb:us-east-1:123456789012:table/orders/index/by-day", "dynamodb:index"),
        ("arn:aws:dynamodb:us-east-1:123456789012:table/orders/stream/x", None),
        ("arn:aws:sqs:us-east-1:123456789012:jobs", "sqs:queue"),
        ("arn:aws:sns:us-east-1:123456789012:alerts", "sns:topic"),
        ("arn:aws:kms:us-east-1:123456789012:key/1234abcd", "kms:key"),
        ("arn:aws:kms:us-east-1:123456789012:alias/app", "kms:alias"),
        ("arn:aws:rds:us-east-1:123456789012:db:legacy-mysql", "rds:db"),
        ("arn:aws:rds:us-east-1:123456789012:cluster:c1", None),
        ("arn:aws:lambda:us-east-1:123456789012:function:f", "lambda:function"),
        ("arn:aws:iam::123456789012:role/app", "iam:role"),
        ("arn:aws:ec2:us-east-1:123456789012:instance/i-1", None),
        ("*", None),
        ("not an arn", None),
    ],
)
def test_arn_kinds(arn: str, kind: str | None) -> None:
    assert arn_kind(arn) == kind


def test_which_actions_take_which_resources() -> None:
    assert accepted_kinds("s3:GetObject") == {"s3:object"}
    assert accepted_kinds("s3:ListBucket") == {"s3:bucket"}
    assert accepts("s3:GetObject", "arn:aws:s3:::b/k") and not accepts(
        "s3:GetObject", "arn:aws:s3:::b"
    )
    assert accepts("sts:AssumeRole", "arn:aws:iam::123456789012:role/app")
    assert not accepts("kms:Decrypt", "arn:aws:kms:us-east-1:123456789012:alias/app")
    for action in ("s3:ListAllMyBuckets", "sts:GetCallerIdentity", "ec2:DescribeInstances"):
        assert takes_no_resource(action) and not accepted_kinds(action)
    assert not takes_no_resource("rds:DescribeDBInstances")  # takes db ARNs
    assert not takes_no_resource("ec2:TerminateInstances")  # takes instance ARNs
    assert (partition_of("cn-north-1"), partition_of("us-gov-west-1")) == ("aws-cn", "aws-us-gov")
    assert partition_of("eu-west-1") == "aws"
