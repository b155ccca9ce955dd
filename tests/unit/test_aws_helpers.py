"""The read-only allow-list and journal redaction."""

from __future__ import annotations

import pytest

from migrate.aws import is_read_only, redact_params, target_of
from migrate.errors import BadInputError
from migrate.util import format_duration, parse_duration


@pytest.mark.parametrize(
    "op", ["DescribeDBInstances", "GetBucketEncryption", "ListKeys", "HeadObject", "LookupEvents"]
)
def test_reads_are_allowed(op: str) -> None:
    assert is_read_only(op)


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
    assert not is_read_only(op)


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
