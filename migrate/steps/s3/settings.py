"""Bucket settings that an in-place copy affects, read while planning (read-only calls only)."""

from __future__ import annotations

import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from migrate.aws.errors import has_code, or_default
from migrate.aws.s3 import bucket_encryption


def versioning_status(s3: Any, bucket: str) -> str:
    """``Enabled``, ``Suspended`` or ``Disabled`` (never versioned)."""
    return str(s3.get_bucket_versioning(Bucket=bucket).get("Status") or "Disabled")


def object_lock_enabled(s3: Any, bucket: str) -> bool:
    """True when the bucket has Object Lock."""
    config: dict[str, Any] = or_default(lambda: s3.get_object_lock_configuration(Bucket=bucket), {})
    return bool((config.get("ObjectLockConfiguration") or {}).get("ObjectLockEnabled") == "Enabled")


def acl_enabled(s3: Any, bucket: str) -> bool:
    """False when Object Ownership is BucketOwnerEnforced (AWS refuses object ACL calls)."""
    controls = or_default(lambda: s3.get_bucket_ownership_controls(Bucket=bucket), None)
    if controls is None:
        return True  # no ownership controls: ACLs are in force
    rules = controls["OwnershipControls"]["Rules"]
    return not any(r.get("ObjectOwnership") == "BucketOwnerEnforced" for r in rules)


def public_access_block(s3: Any, bucket: str) -> dict[str, bool]:
    """The bucket's Block Public Access settings ({} when it has none)."""
    config: dict[str, Any] = or_default(lambda: s3.get_public_access_block(Bucket=bucket), {})
    return {k: bool(v) for k, v in (config.get("PublicAccessBlockConfiguration") or {}).items()}


def notifications(s3: Any, bucket: str) -> list[str]:
    """The kinds of event notification destinations configured (SNS, SQS, Lambda, EventBridge)."""
    conf = s3.get_bucket_notification_configuration(Bucket=bucket)
    kinds = {
        "TopicConfigurations": "SNS",
        "QueueConfigurations": "SQS",
        "LambdaFunctionConfigurations": "Lambda",
        "EventBridgeConfiguration": "EventBridge",
    }
    return sorted(label for name, label in kinds.items() if name in conf and conf[name] is not None)


def replication_configured(s3: Any, bucket: str) -> bool:
    """True when the bucket replicates."""
    config: dict[str, Any] = or_default(
        lambda: s3.get_bucket_replication(Bucket=bucket),
        {},
        when=lambda exc: has_code(exc, "ReplicationConfigurationNotFoundError"),
    )
    return bool(config.get("ReplicationConfiguration"))


def bucket_policy(s3: Any, bucket: str) -> dict[str, Any] | None:
    """The bucket policy as a document (None without one)."""
    text = or_default(lambda: s3.get_bucket_policy(Bucket=bucket)["Policy"], None)
    return dict(json.loads(text)) if text else None


def website_enabled(s3: Any, bucket: str) -> bool:
    """True when static website hosting is on."""
    return bool(
        or_default(
            lambda: s3.get_bucket_website(Bucket=bucket),
            None,
            when=lambda exc: has_code(exc, "NoSuchWebsiteConfiguration"),
        )
    )


NULL_KEYS_IN_FACTS = 20  # keys with a noncurrent ``null`` version named in the plan


def noncurrent_versions(s3: Any, bucket: str) -> tuple[int, set[str]]:
    """Noncurrent versions in the bucket, and the keys whose noncurrent versions include the
    ``null`` version (ListObjectVersions).

    Under versioning Suspended, S3 gives every new object (an in-place copy too) the version id
    ``null`` and replaces the existing ``null`` version of that key, current or not: copying a
    key whose ``null`` version is noncurrent would destroy that older version.
    """
    count = 0
    null_keys: set[str] = set()
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
        for version in page.get("Versions", []):
            if version.get("IsLatest"):
                continue
            count += 1
            if version.get("VersionId") == "null":
                null_keys.add(str(version["Key"]))
    return count, null_keys


def observe_settings(s3: Any, bucket: str, objects: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """The bucket's settings and its ``objects`` facts (from ``objects()``), read in parallel.

    The ``_policy`` entry is the bucket policy, for the reader analysis; callers pop it.
    """
    reads: dict[str, Callable[[], Any]] = {
        "versioning": lambda: versioning_status(s3, bucket),
        "object_lock": lambda: object_lock_enabled(s3, bucket),
        "acl_enabled": lambda: acl_enabled(s3, bucket),
        "default_encryption": lambda: bucket_encryption(s3, bucket),
        "notifications": lambda: notifications(s3, bucket),
        "replication": lambda: replication_configured(s3, bucket),
        "_policy": lambda: bucket_policy(s3, bucket),
        "website": lambda: website_enabled(s3, bucket),
        "public_access_block": lambda: public_access_block(s3, bucket),
        "objects": objects,
        # Counted only where versioning is or was on: a version listing of a plain bucket
        # would list every object a second time.
        "_versions": lambda: (
            noncurrent_versions(s3, bucket)
            if versioning_status(s3, bucket) != "Disabled"
            else (0, set())
        ),
    }
    # Independent reads: in parallel, as each costs a round trip (matters far from S3).
    with ThreadPoolExecutor(max_workers=len(reads)) as pool:
        futures = {name: pool.submit(read) for name, read in reads.items()}
        facts = {name: fut.result() for name, fut in futures.items()}
    versions, null_keys = facts.pop("_versions")
    if facts["versioning"] != "Disabled":
        facts["noncurrent_versions"] = versions
    if facts["versioning"] == "Suspended":
        facts["noncurrent_null"] = {
            "count": len(null_keys),
            "keys": sorted(null_keys)[:NULL_KEYS_IN_FACTS],
        }
    return facts
