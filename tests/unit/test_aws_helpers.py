"""The read-only allow-list and journal redaction."""

from __future__ import annotations

import pytest

from migrate.aws.session import allowed_while_planning, is_read_only, redact_params, target_of
from migrate.errors import BadInputError
from migrate.util import format_duration, parse_duration


@pytest.mark.parametrize(
    "op", ["DescribeDBInstances", "GetBucketEncryption", "ListKeys", "HeadObject", "LookupEvents"]
)
def test_reads_are_allowed(op: str) -> None:
    assert is_read_only(op) and allowed_while_planning(op)


@pytest.mark.parametrize(
    "op",
    [
        "CreateKey",
        "PutBucketEncryption",
        "CopyObject",
        "DeleteDBInstance",
        "GetSecretValue",
        "StartQueryExecution",
        "ModifyDBInstance",
        "UpdateAccessKey",
        "GenerateDataKey",
    ],
)
def test_writes_and_secret_reads_are_refused(op: str) -> None:
    assert not allowed_while_planning(op)


def test_secret_reads_are_reads_but_not_while_planning() -> None:
    assert is_read_only("GetSecretValue")  # not journaled as a change...
    assert not allowed_while_planning("GetSecretValue")  # ...but never part of a plan
    assert allowed_while_planning("GetParameters", {"Names": ["x"]})
    assert not allowed_while_planning("GetParameters", {"Names": ["x"], "WithDecryption": True})


def test_redaction_keeps_identifiers_only() -> None:
    params = {
        "SecretId": "prod/db",
        "SecretString": "hunter2",
        "Bucket": "b",
        "Key": "k",
        "Policy": '{"Statement": []}',
        "MasterUserPassword": "pw",
    }
    red = redact_params(params)
    assert red["SecretId"] == "prod/db" and red["Bucket"] == "b"
    assert "hunter2" not in repr(red) and "pw" not in red.values()
    assert red["Policy"] == "<redacted>"
    assert target_of(params) == "s3://b/k"


def test_durations() -> None:
    assert parse_duration("90") == 90
    assert parse_duration("1h30m") == 5400
    assert parse_duration("7d") == 7 * 86400
    with pytest.raises(BadInputError):
        parse_duration("soon")
    assert format_duration(45) == "45s"
    assert format_duration(3 * 3600 + 300) == "3h 05m"
    assert format_duration(3 * 86400) == "3d 0h"


def test_a_call_that_never_got_an_answer_is_journaled(monkeypatch: pytest.MonkeyPatch) -> None:
    from botocore.exceptions import EndpointConnectionError

    from migrate.aws.session import AwsSession, CallRecord

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIATESTOPERATOR0001")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test-operator-secret-not-real")
    session = AwsSession(endpoint_url="http://127.0.0.1:9", region="us-east-1", max_attempts=1)
    seen: list[CallRecord] = []
    session.set_recorder(seen.append)
    with pytest.raises(EndpointConnectionError):
        session.client("kms").create_alias(AliasName="alias/x", TargetKeyId="k")
    with pytest.raises(EndpointConnectionError):
        session.client("kms").list_aliases()
    assert [(r.service, r.operation, r.outcome) for r in seen] == [
        ("kms", "CreateAlias", "error:EndpointConnectionError")
    ]
    assert seen[0].target == "alias/x"


def test_a_server_error_botocore_did_not_retry_claims_no_attempts() -> None:
    """RetryAttempts 0 (botocore's retry quota spent): no "kept" and no attempt count."""
    from botocore.exceptions import ClientError

    from migrate.aws.errors import describe_aws_failure

    exc = ClientError(
        {
            "Error": {"Code": "InternalFailure", "Message": "boom"},
            "ResponseMetadata": {"HTTPStatusCode": 500, "RetryAttempts": 0},
        },
        "CreateKey",
    )
    message = describe_aws_failure(exc).message
    assert message.startswith("AWS throttled or was unavailable for CreateKey (InternalFailure);")
    assert "attempts" not in message and "not a permissions problem" in message
