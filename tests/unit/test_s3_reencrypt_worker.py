"""The per-object worker of s3.reencrypt, with botocore's Stubber for what moto cannot do.

moto lacks UpdateObjectEncryption (it stores the request body as the object!), ignores
CopySourceIfMatch, and answers a HEAD of an SSE-C object without the key; AWS answers 412 and
400. These tests pin the request shapes and the handling of those answers, with no server.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.stub import Stubber

from migrate.errors import StepFailed
from migrate.steps.s3 import objects as so
from migrate.steps.s3.ledger import ReportFile, Tally
from migrate.steps.s3.params import ReencryptParams
from migrate.steps.s3.worker import ObjectWorker, Requests

TARGET = "arn:aws:kms:us-east-1:123456789012:key/11111111-2222-3333-4444-555555555555"
BUCKET = "stub-bucket"


def _client() -> Any:
    return boto3.client(
        "s3",
        region_name="us-east-1",
        aws_access_key_id="AKIATESTSTUB00000001",
        aws_secret_access_key="stub-secret-not-real",
        config=Config(retries={"max_attempts": 1}),
    )


def _worker(
    s3: Any, tmp_path: Path, *, use_update: bool = False, acl: bool = False, **params: Any
) -> tuple[ObjectWorker, Tally]:
    tally = Tally()
    worker = ObjectWorker(
        s3=s3,
        bucket=BUCKET,
        target_arn=TARGET,
        params=ReencryptParams(kms_key=TARGET, **params),
        acl_enabled=acl,
        use_update=use_update,
        send=Requests(so.RateLimiter(0), attempts=4),
        tally=tally,
        report=ReportFile(tmp_path / "report.jsonl", 0),
        versioned=False,
        track_upload=lambda upload_id, key, started: None,
    )
    return worker, tally


def _head(etag: str, **extra: Any) -> dict[str, Any]:
    return {"ETag": etag, "ContentLength": 3, "ContentType": "text/plain", **extra}


def _copy_params(etag: str, **extra: Any) -> dict[str, Any]:
    return {
        "Bucket": BUCKET,
        "Key": "k",
        "CopySource": {"Bucket": BUCKET, "Key": "k"},
        "CopySourceIfMatch": etag,
        "IfMatch": etag,
        "MetadataDirective": "COPY",
        "TaggingDirective": "COPY",
        "ServerSideEncryption": "aws:kms",
        "SSEKMSKeyId": TARGET,
        "BucketKeyEnabled": True,
        "StorageClass": "STANDARD",
        **extra,
    }


def test_copy_is_conditional_on_the_etag_seen_and_a_412_is_re_examined(tmp_path: Path) -> None:
    s3 = _client()
    worker, tally = _worker(s3, tmp_path)
    with Stubber(s3) as stub:
        stub.add_response("head_object", _head('"old"'), {"Bucket": BUCKET, "Key": "k"})
        # The object changed between the HEAD and the copy: S3 refuses the conditional copy.
        stub.add_client_error(
            "copy_object",
            service_error_code="PreconditionFailed",
            http_status_code=412,
            expected_params=_copy_params('"old"'),
        )
        # The step looks again and re-encrypts the newer object, conditional on its ETag.
        stub.add_response(
            "head_object",
            _head('"new"', StorageClass="STANDARD_IA"),
            {"Bucket": BUCKET, "Key": "k"},
        )
        stub.add_response("copy_object", {}, _copy_params('"new"', StorageClass="STANDARD_IA"))
        assert worker({"Key": "k", "ETag": '"old"'}) == 3
        stub.assert_no_pending_responses()
    assert tally.counts["changed_during_copy"] == 1 and tally.counts["copied"] == 1


def test_an_object_that_keeps_changing_is_skipped_and_reported(tmp_path: Path) -> None:
    s3 = _client()
    worker, tally = _worker(s3, tmp_path)
    with Stubber(s3) as stub:
        for etag in ('"a"', '"b"'):
            stub.add_response("head_object", _head(etag), {"Bucket": BUCKET, "Key": "k"})
            stub.add_client_error(
                "copy_object", service_error_code="PreconditionFailed", http_status_code=412
            )
        worker({"Key": "k", "ETag": '"a"'})
    assert tally.counts["skipped_changing"] == 1 and tally.counts["copied"] == 0
    assert "skipped-changing-concurrently" in (tmp_path / "report.jsonl").read_text()


def test_update_lane_sends_update_object_encryption_for_sse_s3(tmp_path: Path) -> None:
    s3 = _client()
    worker, tally = _worker(s3, tmp_path, use_update=True, acl=True)
    with Stubber(s3) as stub:
        stub.add_response(
            "head_object",
            _head('"e"', ServerSideEncryption="AES256"),
            {"Bucket": BUCKET, "Key": "k"},
        )
        stub.add_response(
            "update_object_encryption",
            {},
            {
                "Bucket": BUCKET,
                "Key": "k",
                "ObjectEncryption": {"SSEKMS": {"KMSKeyArn": TARGET, "BucketKeyEnabled": True}},
            },
        )
        assert worker({"Key": "k", "ETag": '"e"'}) == 0  # no bytes copied
        stub.assert_no_pending_responses()  # and no ACL read: nothing else changes
    assert tally.counts["updated"] == 1 and tally.counts["copied"] == 0


def test_unencrypted_objects_take_the_copy_lane_even_when_update_is_on(tmp_path: Path) -> None:
    # UpdateObjectEncryption refuses unencrypted sources: they are copied.
    s3 = _client()
    worker, tally = _worker(s3, tmp_path, use_update=True)
    with Stubber(s3) as stub:
        stub.add_response("head_object", _head('"e"'), {"Bucket": BUCKET, "Key": "k"})
        stub.add_response("copy_object", {}, _copy_params('"e"'))
        worker({"Key": "k", "ETag": '"e"'})
    assert tally.counts["copied"] == 1


def test_an_endpoint_that_treats_update_as_a_put_stops_the_step(tmp_path: Path) -> None:
    s3 = _client()
    worker, _ = _worker(s3, tmp_path, use_update=True)
    with Stubber(s3) as stub:
        stub.add_response(
            "head_object",
            _head('"e"', ServerSideEncryption="AES256"),
            {"Bucket": BUCKET, "Key": "k"},
        )
        stub.add_response(
            "update_object_encryption",
            {"ResponseMetadata": {"HTTPStatusCode": 200, "HTTPHeaders": {"etag": '"x"'}}},
        )
        with pytest.raises(StepFailed, match="lane: copy"):
            worker({"Key": "k", "ETag": '"e"'})


def test_sse_c_objects_are_skipped_and_listed(tmp_path: Path) -> None:
    s3 = _client()
    worker, tally = _worker(s3, tmp_path)
    with Stubber(s3) as stub:
        # AWS: a HEAD without the customer key is a 400 Bad Request.
        stub.add_client_error("head_object", service_error_code="400", http_status_code=400)
        worker({"Key": "secret.bin", "ETag": '"e"'})
        stub.assert_no_pending_responses()
    assert tally.counts["skipped_sse_c"] == 1
    assert tally.samples["skipped_sse_c"] == ["secret.bin"]


def test_slowdown_halves_the_rate_and_the_object_is_retried(tmp_path: Path) -> None:
    s3 = _client()
    limiter = so.RateLimiter(100, sleep=lambda s: None)
    worker, tally = _worker(s3, tmp_path)
    worker.send = Requests(limiter, attempts=4)
    with Stubber(s3) as stub:
        stub.add_client_error("head_object", service_error_code="SlowDown", http_status_code=503)
        stub.add_response("head_object", _head('"e"'), {"Bucket": BUCKET, "Key": "k"})
        stub.add_response("copy_object", {}, _copy_params('"e"'))
        worker({"Key": "k", "ETag": '"e"'})
    assert limiter.throttles == 1 and limiter.rate < 100
    assert tally.counts["copied"] == 1


def test_acl_grants_travel_with_the_copy(tmp_path: Path) -> None:
    s3 = _client()
    worker, tally = _worker(s3, tmp_path, acl=True)
    acl = {
        "Owner": {"ID": "owner"},
        "Grants": [
            {"Grantee": {"ID": "owner", "Type": "CanonicalUser"}, "Permission": "FULL_CONTROL"},
            {"Grantee": {"URI": so.ALL_USERS, "Type": "Group"}, "Permission": "READ"},
        ],
    }
    with Stubber(s3) as stub:
        stub.add_response("head_object", _head('"e"'), {"Bucket": BUCKET, "Key": "k"})
        stub.add_response("get_object_acl", acl, {"Bucket": BUCKET, "Key": "k"})
        stub.add_response(
            "copy_object",
            {},
            _copy_params('"e"', GrantFullControl='id="owner"', GrantRead=f'uri="{so.ALL_USERS}"'),
        )
        worker({"Key": "k", "ETag": '"e"'})
        stub.assert_no_pending_responses()
    assert tally.counts["acl_reapplied"] == 1


def test_multipart_copy_carries_headers_tags_and_aborts_on_failure(tmp_path: Path) -> None:
    s3 = _client()
    worker, tally = _worker(s3, tmp_path, multipart_threshold=5 * 1024**2, part_size=5 * 1024**2)
    size = 12 * 1024**2
    head = _head('"m"', ContentLength=size, TagCount=1, Metadata={"a": "1"})
    with Stubber(s3) as stub:
        stub.add_response("head_object", head, {"Bucket": BUCKET, "Key": "k"})
        stub.add_response("get_object_tagging", {"TagSet": [{"Key": "t", "Value": "v w"}]})
        stub.add_response(
            "create_multipart_upload",
            {"UploadId": "u1"},
            {
                "Bucket": BUCKET,
                "Key": "k",
                "ServerSideEncryption": "aws:kms",
                "SSEKMSKeyId": TARGET,
                "BucketKeyEnabled": True,
                "ContentType": "text/plain",
                "Metadata": {"a": "1"},
                "StorageClass": "STANDARD",
                "Tagging": "t=v+w",
            },
        )
        stub.add_response(
            "upload_part_copy",
            {"CopyPartResult": {"ETag": '"p1"'}},
            {
                "Bucket": BUCKET,
                "Key": "k",
                "UploadId": "u1",
                "PartNumber": 1,
                "CopySource": {"Bucket": BUCKET, "Key": "k"},
                "CopySourceIfMatch": '"m"',
                "CopySourceRange": f"bytes=0-{5 * 1024**2 - 1}",
            },
        )
        stub.add_client_error("upload_part_copy", service_error_code="InternalError")
        stub.add_response(
            "abort_multipart_upload", {}, {"Bucket": BUCKET, "Key": "k", "UploadId": "u1"}
        )
        worker({"Key": "k", "ETag": '"m"'})
        stub.assert_no_pending_responses()
    assert tally.counts["failed"] == 1 and tally.failed_keys == ["k"]


def test_auto_lane_falls_back_to_copy_where_update_is_not_implemented(tmp_path: Path) -> None:
    s3 = _client()
    worker, tally = _worker(s3, tmp_path, use_update=True, lane="auto")
    sse_s3 = _head('"e"', ServerSideEncryption="AES256")
    with Stubber(s3) as stub:
        stub.add_response("head_object", sse_s3, {"Bucket": BUCKET, "Key": "k"})
        stub.add_client_error(
            "update_object_encryption", service_error_code="NotImplemented", http_status_code=501
        )
        stub.add_response("copy_object", {}, _copy_params('"e"'))
        # The next object goes straight to the copy lane: no second UpdateObjectEncryption.
        stub.add_response("head_object", sse_s3, {"Bucket": BUCKET, "Key": "k"})
        stub.add_response("copy_object", {}, _copy_params('"e"'))
        worker({"Key": "k", "ETag": '"e"'})
        worker({"Key": "k", "ETag": '"e"'})
        stub.assert_no_pending_responses()
    assert tally.counts["update_fallback"] == 1 and tally.counts["copied"] == 2


def test_explicit_update_lane_does_not_fall_back(tmp_path: Path) -> None:
    s3 = _client()
    worker, tally = _worker(s3, tmp_path, use_update=True, lane="update")
    with Stubber(s3) as stub:
        stub.add_response(
            "head_object",
            _head('"e"', ServerSideEncryption="AES256"),
            {"Bucket": BUCKET, "Key": "k"},
        )
        stub.add_client_error(
            "update_object_encryption", service_error_code="AccessDenied", http_status_code=403
        )
        worker({"Key": "k", "ETag": '"e"'})
    # Never copied under lane: update; the refused object is a residual with its reason (a
    # denial never fails the bucket, issue 13), not a fallback.
    assert tally.counts["copied"] == 0 and tally.counts["update_fallback"] == 0
    assert tally.counts["skipped_access_denied"] == 1


def test_complete_multipart_upload_is_conditional_on_the_etag_seen(tmp_path: Path) -> None:
    """An application PUT lands between the last part and Complete: AWS answers 412 to the
    IfMatch, the upload is aborted and the new object is examined again (it is already under
    the target key here, so nothing is copied). moto ignores IfMatch: Stubber."""
    s3 = _client()
    worker, tally = _worker(s3, tmp_path, multipart_threshold=5 * 1024**2, part_size=5 * 1024**2)
    size = 6 * 1024**2
    with Stubber(s3) as stub:
        stub.add_response("head_object", _head('"m"', ContentLength=size))
        stub.add_response("create_multipart_upload", {"UploadId": "u1"})
        for _ in range(2):
            stub.add_response("upload_part_copy", {"CopyPartResult": {"ETag": '"p"'}})
        stub.add_client_error(
            "complete_multipart_upload",
            service_error_code="PreconditionFailed",
            http_status_code=412,
            expected_params={
                "Bucket": BUCKET,
                "Key": "k",
                "UploadId": "u1",
                "MultipartUpload": {
                    "Parts": [{"PartNumber": 1, "ETag": '"p"'}, {"PartNumber": 2, "ETag": '"p"'}]
                },
                "IfMatch": '"m"',
            },
        )
        stub.add_response(
            "abort_multipart_upload", {}, {"Bucket": BUCKET, "Key": "k", "UploadId": "u1"}
        )
        stub.add_response(
            "head_object",
            _head('"app"', ServerSideEncryption="aws:kms", SSEKMSKeyId=TARGET),
            {"Bucket": BUCKET, "Key": "k"},
        )
        assert worker({"Key": "k", "ETag": '"m"'}) == 0
        stub.assert_no_pending_responses()
    assert tally.counts["changed_during_copy"] == 1 and tally.counts["already"] == 1
    assert tally.counts["multipart_copied"] == 0


def test_a_refusal_for_one_object_sends_only_that_object_to_the_copy_lane(tmp_path: Path) -> None:
    """AccessDenied for one object (its lock, a key it may not use) must not switch the whole
    bucket: the next SSE-S3 object is updated again. UpdateObjectEncryption: Stubber."""
    s3 = _client()
    worker, tally = _worker(s3, tmp_path, use_update=True, lane="auto")
    sse_s3 = _head('"e"', ServerSideEncryption="AES256")
    with Stubber(s3) as stub:
        stub.add_response("head_object", sse_s3, {"Bucket": BUCKET, "Key": "k"})
        stub.add_client_error(
            "update_object_encryption", service_error_code="AccessDenied", http_status_code=403
        )
        stub.add_response("copy_object", {}, _copy_params('"e"'))
        stub.add_response("head_object", sse_s3, {"Bucket": BUCKET, "Key": "k"})
        stub.add_response("update_object_encryption", {})
        worker({"Key": "k", "ETag": '"e"'})
        worker({"Key": "k", "ETag": '"e"'})
        stub.assert_no_pending_responses()
    assert tally.counts["update_refused"] == 1
    assert tally.counts["copied"] == 1 and tally.counts["updated"] == 1
    assert tally.counts["update_fallback"] == 0


def test_archived_sse_s3_objects_take_the_update_lane_without_a_restore(tmp_path: Path) -> None:
    """UpdateObjectEncryption changes the data key of a Glacier object in place (AWS docs:
    archived objects are not restored); a copy would need a restore. Stubber: moto lacks it."""
    s3 = _client()
    worker, tally = _worker(s3, tmp_path, use_update=True)
    with Stubber(s3) as stub:
        stub.add_response(
            "head_object",
            _head('"g"', ServerSideEncryption="AES256", StorageClass="DEEP_ARCHIVE"),
        )
        stub.add_response(
            "update_object_encryption",
            {},
            {
                "Bucket": BUCKET,
                "Key": "k",
                "ObjectEncryption": {"SSEKMS": {"KMSKeyArn": TARGET, "BucketKeyEnabled": True}},
            },
        )
        assert worker({"Key": "k", "ETag": '"g"'}) == 0
        stub.assert_no_pending_responses()
    assert tally.counts["archived_updated"] == 1 and tally.counts["skipped_archived"] == 0


def test_a_copy_that_s3_stored_under_another_encryption_fails_that_object(tmp_path: Path) -> None:
    """The CopyObject response is the object's verification (no second HEAD): a copy S3
    answers as AES256 (a bucket policy or default forcing it) counts as failed, for resume."""
    s3 = _client()
    worker, tally = _worker(s3, tmp_path)
    with Stubber(s3) as stub:
        stub.add_response("head_object", _head('"e"'))
        stub.add_response("copy_object", {"ServerSideEncryption": "AES256"}, _copy_params('"e"'))
        worker({"Key": "k", "ETag": '"e"'})
        stub.assert_no_pending_responses()
    assert tally.counts["copy_not_encrypted"] == 1 and tally.failed_keys == ["k"]
    assert tally.counts["copied"] == 0


def test_access_denied_on_one_object_is_a_residual_not_a_failure(tmp_path: Path) -> None:
    """An object another account owns (or a deny on its prefix): AWS answers 403 to the HEAD.
    It is listed with its reason and the bucket goes on (moto never denies: Stubber)."""
    s3 = _client()
    worker, tally = _worker(s3, tmp_path)
    with Stubber(s3) as stub:
        stub.add_client_error(
            "head_object", service_error_code="AccessDenied", http_status_code=403
        )
        assert worker({"Key": "theirs.bin", "ETag": '"e"'}) == 0
    assert tally.counts["skipped_access_denied"] == 1 and tally.counts["failed"] == 0
    assert tally.failed_keys == []
    entry = (tmp_path / "report.jsonl").read_text()
    assert "skipped_access_denied" in entry and "s3:PutObject" in entry
