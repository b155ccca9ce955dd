"""The run's own observe HEADs 5 objects, and the whole sample only when those 5 are refused.

A Stubber plays S3 (one thread, so the HEADs come in order): moto cannot refuse HEADs of some
objects and not others by policy. It fails the test on any HEAD it was not given.
"""

from __future__ import annotations

from datetime import UTC, datetime

from botocore.stub import Stubber

from migrate.aws.session import AwsSession
from migrate.steps.s3 import objects as so
from migrate.steps.s3.counts import scan_listing

BUCKET = "half-denied"
KEYS = [f"k{i}" for i in range(10)]


def _listing(stub: Stubber) -> None:
    stub.add_response(
        "list_objects_v2",
        {
            "Contents": [
                {"Key": k, "Size": 1, "StorageClass": "STANDARD", "LastModified": datetime.now(UTC)}
                for k in KEYS
            ],
            "IsTruncated": False,
        },
        {"Bucket": BUCKET},
    )


def _denied(stub: Stubber, key: str) -> None:
    stub.add_client_error(
        "head_object",
        service_error_code="403",
        service_message="Forbidden",
        http_status_code=403,
        expected_params={"Bucket": BUCKET, "Key": key},
    )


def _plain(stub: Stubber, key: str) -> None:
    stub.add_response("head_object", {"ContentLength": 1}, {"Bucket": BUCKET, "Key": key})


def _scan(s3: object) -> dict[str, object]:
    return scan_listing(
        s3,
        BUCKET,
        None,
        head_limit=10,
        head_first=5,
        threads=1,
        multipart_threshold=8 * 2**20,
        part_size=8 * 2**20,
    )


def test_five_readable_objects_are_enough() -> None:
    s3 = AwsSession(region="us-east-1", endpoint_url="http://127.0.0.1:9").client("s3")
    stub = Stubber(s3)
    _listing(stub)
    for key in KEYS[:5]:
        _plain(stub, key)
    with stub:
        counts = _scan(s3)
        stub.assert_no_pending_responses()
    assert counts["scanned"] == 5 and counts["count"] == 10


def test_five_refused_ones_make_the_whole_sample_decide() -> None:
    """The first five keys sit under a denied prefix; the other five are readable: the bucket
    is worked on (its readable objects need re-encrypting), not left out as refused."""
    s3 = AwsSession(region="us-east-1", endpoint_url="http://127.0.0.1:9").client("s3")
    stub = Stubber(s3)
    _listing(stub)
    for key in KEYS[:5]:
        _denied(stub, key)
    for key in KEYS[5:]:
        _plain(stub, key)
    with stub:
        counts = _scan(s3)
        stub.assert_no_pending_responses()
    assert counts["scanned"] == 10
    assert counts["by_state"][so.DENIED] == 5
