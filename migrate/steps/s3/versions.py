"""Older versions superseded by this run's encrypted copies (``noncurrent_versions: delete``)."""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from migrate.aws.errors import has_code, not_found
from migrate.engine.context import StepContext
from migrate.steps.s3 import objects as so
from migrate.steps.s3.ledger import report_path


def delete_superseded(ctx: StepContext, s3: Any, bucket: str, target_arn: str) -> None:
    """Delete the source versions the bucket's report file says this run's copies replaced,
    each only after checking that its encrypted copy is there (checkpointed by report line)."""
    path = report_path(ctx, bucket)
    if not path.exists():
        return
    # Keys whose batch task failed: the copy lane retried them and wrote its own entries.
    batch_failed: set[str] = set()
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            entry = json.loads(line)
            if entry.get("result") == "batch-task-failed":
                batch_failed.add(str(entry["key"]))
    cp = ctx.load_checkpoint("delete") or {"cursor": {}, "done": 0}
    line_no = int(cp["cursor"].get("line", 0))
    deleted = int(cp["done"])
    with open(path, encoding="utf-8") as handle:
        for index, line in enumerate(handle):
            if index < line_no:
                continue
            entry = json.loads(line)
            if entry.get("result") == "copied" and entry.get("source_version"):
                deleted += delete_one(s3, bucket, entry, target_arn)
            elif entry.get("result") == "batch-manifest" and entry["key"] not in batch_failed:
                deleted += delete_batch_source(s3, bucket, entry, target_arn)
            if index % 200 == 199:
                ctx.checkpoint({"line": index + 1}, done=deleted, name="delete")
    ctx.checkpoint({"line": 1 << 62}, done=deleted, name="delete")


def delete_one(s3: Any, bucket: str, entry: dict[str, Any], target_arn: str) -> int:
    """Delete one superseded version (1) or keep it (0) when its encrypted copy is not there."""
    key, source = entry["key"], entry["source_version"]
    if source == entry.get("version"):
        return 0
    try:
        copy = s3.head_object(Bucket=bucket, Key=key, VersionId=entry["version"])
    except ClientError as exc:
        if not_found(exc) or has_code(exc, "400"):
            return 0  # the encrypted copy is gone: keep the original
        raise
    if so.classify(copy, target_arn) != so.TARGET:
        return 0
    try:
        s3.delete_object(Bucket=bucket, Key=key, VersionId=source)
    except ClientError as exc:
        if not_found(exc):
            return 0
        raise
    return 1


def delete_batch_source(s3: Any, bucket: str, entry: dict[str, Any], target_arn: str) -> int:
    """Delete the source version of a batch job's copy (1), or keep it (0).

    The job's report names no version, so the copy is found as the version right above the
    source in the key's history; the source goes only if that version is under the target key.
    """
    key, source = str(entry["key"]), str(entry["source_version"])
    newer: str | None = None
    pages = s3.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=key)
    for page in pages:
        for version in page.get("Versions", []):  # newest first, per key
            if version["Key"] != key:
                continue
            if version["VersionId"] == source:
                if newer is None:
                    return 0  # still the current version: nothing superseded it
                return delete_one(s3, bucket, {**entry, "version": newer}, target_arn)
            newer = str(version["VersionId"])
    return 0  # the source version is gone already
