"""S3 bucket reads shared by the S3, secrets and baseline steps."""

from __future__ import annotations

from typing import Any

from migrate.aws.errors import or_default
from migrate.aws.tags import tag_dict


def bucket_region(s3: Any, bucket: str) -> str:
    """The region of a bucket (``None`` location means us-east-1; ``EU`` is eu-west-1)."""
    loc = s3.get_bucket_location(Bucket=bucket).get("LocationConstraint")
    if not loc:
        return "us-east-1"
    return "eu-west-1" if loc == "EU" else str(loc)


def bucket_tags(s3: Any, bucket: str) -> dict[str, str]:
    """A bucket's tags ({} when it has none)."""
    tag_set = or_default(lambda: s3.get_bucket_tagging(Bucket=bucket).get("TagSet"), None)
    return tag_dict(tag_set)


def bucket_encryption(s3: Any, bucket: str) -> dict[str, Any]:
    """The default encryption of a bucket as ``{algorithm, kms_key, bucket_key}``."""
    config = or_default(
        lambda: s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"], None
    )
    if config is None:
        return {"algorithm": None, "kms_key": None, "bucket_key": False}
    rules = config.get("Rules") or []
    rule = rules[0] if rules else {}
    default = rule.get("ApplyServerSideEncryptionByDefault", {})
    return {
        "algorithm": default.get("SSEAlgorithm"),
        "kms_key": default.get("KMSMasterKeyID"),
        "bucket_key": bool(rule.get("BucketKeyEnabled", False)),
    }
