"""The session's timestamp parser gives what botocore's own would, without dateutil."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.utils import parse_timestamp as botocore_timestamp

from migrate.aws import session as session_module
from migrate.aws.session import AwsSession, parse_timestamp

SHAPES = [
    "2026-12-03T15:00:00.000Z",  # S3 XML (ListObjectsV2 LastModified)
    "2026-12-03T15:00:00Z",
    "2026-12-03T15:00:00.123456Z",
    "2026-12-03T15:00:00+02:00",
    "2026-12-03T15:00:00",  # no zone: naive, as dateutil leaves it
    "Thu, 03 Dec 2026 15:00:00 GMT",  # HTTP headers (HeadObject Last-Modified)
    "Thu, 03 Dec 2026 15:00:00 -0000",
    "Thu, 03 Dec 2026 17:00:00 +0200",
    "Thu, 03 Dec 2026 15:00:00",  # no zone: naive, as dateutil leaves it
    1764770000,  # JSON protocols' epoch seconds
    1764770000.25,
    "1764770000",
    "2026-12-03 15:00",  # odd shapes go to botocore
    "December 3, 2026",
]


@pytest.mark.parametrize("value", SHAPES)
def test_the_same_instant_and_awareness_as_botocore(value: Any) -> None:
    ours, theirs = parse_timestamp(value), botocore_timestamp(value)
    assert ours == theirs
    assert (ours.tzinfo is None) == (theirs.tzinfo is None)
    if ours.tzinfo is not None:
        assert ours.utcoffset() == theirs.utcoffset()


def test_every_client_of_the_session_uses_it(endpoint: str, monkeypatch: Any) -> None:
    """Counted where botocore calls it: answers parsed by a client of the session go through it."""
    calls: list[Any] = []

    def counting(value: Any) -> Any:
        calls.append(value)
        return parse_timestamp(value)

    monkeypatch.setattr(session_module, "parse_timestamp", counting)
    s3 = AwsSession(region="us-east-1", endpoint_url=endpoint).client("s3")
    s3.create_bucket(Bucket="timestamps-bucket")
    s3.put_object(Bucket="timestamps-bucket", Key="k", Body=b"x")
    before = len(calls)
    listed = s3.list_objects_v2(Bucket="timestamps-bucket")["Contents"][0]["LastModified"]
    headed = s3.head_object(Bucket="timestamps-bucket", Key="k")["LastModified"]
    assert len(calls) >= before + 2  # the listing's LastModified and the HEAD's header
    assert listed.tzinfo is not None and abs((headed - listed).total_seconds()) < 2
