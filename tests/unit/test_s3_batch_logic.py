"""Pure parts of s3.reencrypt's batch mode: manifest lines, tokens, the CreateJob request (checked
against botocore's s3control model with a Stubber: moto has no S3 Batch Operations), and which
objects a batch job may take."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.stub import Stubber
from pydantic import ValidationError

from migrate.steps.s3 import batch as sb
from migrate.steps.s3.reencrypt import ReencryptParams

KEY = "arn:aws:kms:us-east-1:123456789012:key/11111111-2222-3333-4444-555555555555"
ROLE = "arn:aws:iam::123456789012:role/batch"


def _request(**overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "account_id": "123456789012",
        "bucket": "data",
        "storage_class": "STANDARD_IA",
        "target_arn": KEY,
        "bucket_key": True,
        "manifest_bucket": "ops",
        "manifest_object": "m/STANDARD_IA-1.csv",
        "manifest_etag": "0123456789abcdef0123456789abcdef",
        "report_bucket": "ops",
        "report_prefix": "r/run/step/data",
        "report_scope": "FailedTasksOnly",
        "role_arn": ROLE,
        "priority": 10,
        "token": sb.job_token("run", "step", "data", "STANDARD_IA", 1),
        "description": "migrate test",
        **overrides,
    }
    return sb.create_job_request(**values)


def test_manifest_lines_url_encode_the_key_and_carry_no_version() -> None:
    assert sb.manifest_line("b", "dir/a b+c,d é.txt") == "b,dir/a%20b%2Bc%2Cd%20%C3%A9.txt\n"
    assert sb.manifest_line("b", "plain") == "b,plain\n"


def test_job_tokens_are_deterministic_short_and_distinct() -> None:
    token = sb.job_token("r1", "s", "bucket", "STANDARD", 1)
    assert token == sb.job_token("r1", "s", "bucket", "STANDARD", 1)
    assert 1 <= len(token) <= 64
    others = {
        sb.job_token("r2", "s", "bucket", "STANDARD", 1),
        sb.job_token("r1", "s", "bucket", "STANDARD_IA", 1),
        sb.job_token("r1", "s", "bucket", "STANDARD", 2),
        sb.job_token("r1", "s", "other", "STANDARD", 1),
    }
    assert token not in others and len(others) == 4


def test_the_create_job_request_is_valid_for_botocores_s3control_model() -> None:
    client = boto3.client(
        "s3control",
        region_name="us-east-1",
        aws_access_key_id="AKIATESTSTUB00000001",
        aws_secret_access_key="stub-secret-not-real",
        config=Config(retries={"max_attempts": 1}),
    )
    request = _request()
    copy = request["Operation"]["S3PutObjectCopy"]
    # In place (no TargetKeyPrefix), metadata and tags copied (no NewObject*), no ACL given.
    assert "TargetKeyPrefix" not in copy and "NewObjectMetadata" not in copy
    assert "NewObjectTagging" not in copy and "AccessControlGrants" not in copy
    assert copy["MetadataDirective"] == "COPY" and copy["TargetResource"] == "arn:aws:s3:::data"
    assert request["Report"]["Enabled"] and request["ConfirmationRequired"] is False
    with Stubber(client) as stub:
        stub.add_response("create_job", {"JobId": "job-1"}, expected_params=request)
        assert client.create_job(**request)["JobId"] == "job-1"  # botocore validates the shape
        stub.assert_no_pending_responses()


def test_objects_a_job_would_damage_go_to_the_copy_lane() -> None:
    plain = {"ContentLength": 10, "StorageClass": "STANDARD_IA"}
    assert sb.copy_lane_reason(plain, {}, 5 * 1024**3) is None
    assert sb.copy_lane_reason({}, {}, 100) is None  # STANDARD is implied
    assert sb.copy_lane_reason(plain, {"GrantRead": 'uri="x"'}, 100) == "acl"
    assert sb.copy_lane_reason({**plain, "WebsiteRedirectLocation": "/x"}, {}, 100) == "redirect"
    assert sb.copy_lane_reason({**plain, "ObjectLockMode": "GOVERNANCE"}, {}, 100) == "object_lock"
    assert sb.copy_lane_reason({**plain, "ObjectLockLegalHoldStatus": "ON"}, {}, 100) == (
        "object_lock"
    )
    assert sb.copy_lane_reason({**plain, "ContentLength": 101}, {}, 100) == "large"
    assert sb.copy_lane_reason({"StorageClass": "REDUCED_REDUNDANCY"}, {}, 100) == "storage_class"


def test_batch_mode_parameters_are_validated() -> None:
    with pytest.raises(ValidationError, match="batch_role_arn and batch_bucket"):
        ReencryptParams(kms_key=KEY, mode="batch")
    with pytest.raises(ValidationError, match="not an IAM role ARN"):
        ReencryptParams(kms_key=KEY, mode="batch", batch_bucket="ops", batch_role_arn="arn:aws:x")
    ok = ReencryptParams(kms_key=KEY, mode="batch", batch_bucket="ops", batch_role_arn=ROLE)
    assert ok.batch_report == "FailedTasksOnly" and ok.batch_poll_s == 60
    # A role from an earlier step's output is only known at run time: not checked here.
    ReencryptParams(
        kms_key=KEY, mode="batch", batch_bucket="ops", batch_role_arn="(known after iam)"
    )


def test_batch_fees_add_per_job_and_per_million_objects() -> None:
    assert sb.batch_costs(2_000_000, 3) == pytest.approx(0.75 + 2.0)
