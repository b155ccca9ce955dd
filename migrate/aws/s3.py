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


def bucket_exists(s3: Any, bucket: str) -> bool:
    """True if ``bucket`` exists and this account can see it (HeadBucket)."""
    return bool(or_default(lambda: s3.head_bucket(Bucket=bucket) or True, False))


def bucket_versioning(s3: Any, bucket: str) -> str | None:
    """``Enabled``, ``Suspended`` or None (never enabled)."""
    status = s3.get_bucket_versioning(Bucket=bucket).get("Status")
    return str(status) if status else None


def bucket_object_lock(s3: Any, bucket: str) -> dict[str, Any]:
    """Object Lock of a bucket as ``{enabled, mode, days}`` (a retention in years is in days)."""
    config: dict[str, Any] = or_default(
        lambda: s3.get_object_lock_configuration(Bucket=bucket)["ObjectLockConfiguration"], {}
    )
    retention = (config.get("Rule") or {}).get("DefaultRetention") or {}
    days = retention.get("Days") or 0
    if not days and retention.get("Years"):
        days = int(retention["Years"]) * 365
    return {
        "enabled": config.get("ObjectLockEnabled") == "Enabled",
        "mode": retention.get("Mode"),
        "days": int(days) if days else None,
    }


def bucket_lifecycle_rules(s3: Any, bucket: str) -> list[dict[str, Any]]:
    """The bucket's lifecycle rules ([] when it has none)."""
    return list(
        or_default(
            lambda: s3.get_bucket_lifecycle_configuration(Bucket=bucket).get("Rules", []), []
        )
    )


def bucket_public_access_block(s3: Any, bucket: str) -> dict[str, bool]:
    """The bucket's four Block Public Access settings ({} when none is set)."""
    config: dict[str, Any] = or_default(
        lambda: s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"], {}
    )
    return {k: bool(v) for k, v in config.items()}
