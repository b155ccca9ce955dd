"""The eventSource/eventName -> IAM action mapping, checked against parliament's IAM action list."""

from __future__ import annotations

from typing import Any

import pytest
from parliament import iam_definition

from migrate.cloudtrail.actions import (
    EXCEPTIONS,
    SOURCE_PREFIX,
    iam_action,
    iam_actions,
    service_prefix,
)
from tests.unit.cloudtrail_action_cases import CASES

REAL = {f"{s['prefix']}:{p['privilege']}" for s in iam_definition for p in s["privileges"]}
PREFIXES = {s["prefix"] for s in iam_definition}


@pytest.mark.parametrize(("key", "target"), sorted(EXCEPTIONS.items()))
def test_every_exception_is_a_real_action_and_really_needed(
    key: tuple[str, str], target: str
) -> None:
    prefix, event_name = key
    assert f"{prefix}:{target}" in REAL, f"{prefix}:{target} is not an IAM action"
    # Vetted: the same-name guess would be wrong (not an action, or not with this spelling).
    assert f"{prefix}:{event_name}" not in REAL, f"{key} needs no exception"


def test_source_prefix_exceptions_are_real_prefixes() -> None:
    assert set(SOURCE_PREFIX.values()) <= PREFIXES


@pytest.mark.parametrize(
    ("source", "name", "action"),
    [
        ("s3.amazonaws.com", "ListBuckets", "s3:ListAllMyBuckets"),
        ("s3.amazonaws.com", "HeadObject", "s3:GetObject"),
        ("s3.amazonaws.com", "ListObjects", "s3:ListBucket"),
        ("s3.amazonaws.com", "GetObject", "s3:GetObject"),
        ("s3.amazonaws.com", "PutObject", "s3:PutObject"),
        ("rds.amazonaws.com", "DescribeDBInstances", "rds:DescribeDBInstances"),
        ("sts.amazonaws.com", "GetCallerIdentity", "sts:GetCallerIdentity"),
        ("kms.amazonaws.com", "Decrypt", "kms:Decrypt"),
        ("monitoring.amazonaws.com", "PutMetricData", "cloudwatch:PutMetricData"),
        ("lambda.amazonaws.com", "GetFunction20150331v2", "lambda:GetFunction"),
        ("lambda.amazonaws.com", "Invoke", "lambda:InvokeFunction"),
        ("apigateway.amazonaws.com", "GetRestApis", "apigateway:GET"),
        ("ec2.amazonaws.com", "DescribeInstances", "ec2:DescribeInstances"),
        ("iam.amazonaws.com", "ListAccessKeys", "iam:ListAccessKeys"),
        ("dynamodb.amazonaws.com", "GetItem", "dynamodb:GetItem"),
        ("sqs.amazonaws.com", "ReceiveMessage", "sqs:ReceiveMessage"),
    ],
)
def test_common_calls_map_to_real_actions(source: str, name: str, action: str) -> None:
    assert iam_action(source, name) == action
    assert action in REAL


def test_calls_that_are_no_iam_action_map_to_none() -> None:
    assert iam_action("signin.amazonaws.com", "ConsoleLogin") is None
    assert iam_action("", "GetObject") is None
    assert service_prefix("example.com") is None


def test_the_case_table_is_large_enough() -> None:
    assert len(CASES) >= 150


@pytest.mark.parametrize(
    ("source", "name", "params", "expected"),
    CASES,
    ids=[f"{c[1]}-{i}" for i, c in enumerate(CASES)],
)
def test_real_calls_need_the_actions_the_service_authorization_reference_names(
    source: str, name: str, params: Any, expected: tuple[str, ...]
) -> None:
    got = iam_actions(source, name, params)
    assert set(got) == set(expected)
    assert got[0] == expected[0] or got[0] in expected  # the primary action comes first
    assert set(got) <= REAL, f"not IAM actions: {set(got) - REAL}"


def test_batch_calls_no_longer_map_to_actions_that_do_not_exist() -> None:
    for source, name, action in (
        ("sqs.amazonaws.com", "SendMessageBatch", "sqs:SendMessage"),
        ("sqs.amazonaws.com", "DeleteMessageBatch", "sqs:DeleteMessage"),
        ("sqs.amazonaws.com", "ChangeMessageVisibilityBatch", "sqs:ChangeMessageVisibility"),
        ("sns.amazonaws.com", "PublishBatch", "sns:Publish"),
    ):
        assert iam_action(source, name) == action


def test_the_typed_decoder_reads_every_parameter_that_adds_an_action() -> None:
    """A parameter the typed record has no field for would read as absent, silently: the
    role would lack the action again. Every name param_names asks for is a field."""
    import msgspec

    from migrate.cloudtrail.actions import PARAM_FIELDS, param_names
    from migrate.cloudtrail.parse import _Params

    fields = {f.encode_name: f.name for f in msgspec.structs.fields(_Params)}
    assert set(PARAM_FIELDS) <= set(fields)
    assert all(fields[n] == n.replace("-", "_") for n in PARAM_FIELDS)
    calls = [
        ("s3.amazonaws.com", "PutObject"),
        ("s3.amazonaws.com", "CopyObject"),
        ("s3.amazonaws.com", "GetObject"),
        ("ec2.amazonaws.com", "RunInstances"),
        ("ecs.amazonaws.com", "RegisterTaskDefinition"),
        ("lambda.amazonaws.com", "UpdateFunctionConfiguration20150331v2"),
    ]
    for source, name in calls:
        assert param_names(source, name), name
        assert set(param_names(source, name)) <= set(PARAM_FIELDS)
    assert param_names("s3.amazonaws.com", "ListBuckets") == ()
    assert param_names("sts.amazonaws.com", "GetCallerIdentity") == ()
