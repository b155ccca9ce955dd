"""The S3 part of a drill: is what a restore needs there, and does a restore of a sample work.

Readiness is read, never assumed: versioning (previous versions are the restore mechanism for
overwrites and deletes), replication (its configuration and the replication status of the sample's
current versions) and AWS Backup recovery points of the bucket. The drill then restores a sample of
objects from their previous version into a scratch prefix of this run, times it, and compares
SHA-256 checksums of the previous version and the restored copy. Teardown deletes every version
under the scratch prefix and checks that none is left.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from migrate.aws.errors import access_denied, has_code, not_found, or_default
from migrate.engine.base import Action
from migrate.engine.context import StepContext
from migrate.errors import StepFailed
from migrate.steps.dr.drill import measured_on

CHUNK = 1024 * 1024


def _unavailable(exc: BaseException) -> bool:
    # AWS Backup may be off-limits to the migrator, or absent (an endpoint without it).
    return not_found(exc) or access_denied(exc) or has_code(exc, "500", "InvalidParameterValue")


def scratch_key(prefix: str, run_id: str, key: str) -> str:
    """Where a sample object is restored: ``<prefix><run>/<key>``."""
    return f"{prefix}{run_id}/{key}"


def observe_bucket(
    s3: Any, backup: Any, bucket: str, sample_size: int, max_bytes: int, scratch_prefix: str
) -> dict[str, Any]:
    """What a restore of ``bucket`` can rely on, and a deterministic sample to restore."""
    versioning = s3.get_bucket_versioning(Bucket=bucket).get("Status") or "Disabled"
    replication = or_default(
        lambda: s3.get_bucket_replication(Bucket=bucket)["ReplicationConfiguration"],
        None,
        lambda exc: has_code(exc, "ReplicationConfigurationNotFoundError") or not_found(exc),
    )
    points = or_default(
        lambda: backup.list_recovery_points_by_resource(ResourceArn=f"arn:aws:s3:::{bucket}").get(
            "RecoveryPoints", []
        ),
        None,
        _unavailable,
    )
    sample: list[dict[str, Any]] = []
    too_big: list[str] = []
    if versioning != "Disabled":
        latest: dict[str, str] = {}
        previous: dict[str, dict[str, Any]] = {}
        pages = s3.get_paginator("list_object_versions").paginate(
            Bucket=bucket, PaginationConfig={"MaxItems": 5000}
        )
        for page in pages:
            for version in page.get("Versions", []):
                key = str(version["Key"])
                if key.startswith(scratch_prefix):
                    continue
                if version.get("IsLatest"):
                    latest[key] = str(version["VersionId"])
                elif key not in previous:  # listed newest first: the first older one
                    previous[key] = dict(version)
        for key in sorted(previous):
            version = previous[key]
            if int(version.get("Size") or 0) > max_bytes:
                too_big.append(key)
                continue
            sample.append(
                {
                    "key": key,
                    "version_id": str(version["VersionId"]),
                    "size": int(version.get("Size") or 0),
                    "current_version_id": latest.get(key),
                }
            )
            if len(sample) >= sample_size:
                break
    replication_sample: dict[str, str | None] = {}
    if replication is not None:
        for item in sample:
            if item["current_version_id"]:
                head = s3.head_object(
                    Bucket=bucket, Key=item["key"], VersionId=item["current_version_id"]
                )
                replication_sample[item["key"]] = head.get("ReplicationStatus")
    return {
        "versioning": versioning,
        "replication_rules": len((replication or {}).get("Rules", [])),
        "replication_destinations": sorted(
            {
                str(r.get("Destination", {}).get("Bucket"))
                for r in (replication or {}).get("Rules", [])
            }
        ),
        "replication_sample": replication_sample,
        "recovery_points": None if points is None else len(points),
        "sample": sample,
        "too_big_for_sample": too_big[:20],
    }


def readiness_findings(facts: dict[str, Any]) -> list[str]:
    """What a restore of the bucket could not rely on."""
    out: list[str] = []
    if facts["versioning"] != "Enabled":
        out.append(
            f"versioning is {facts['versioning']}: an overwrite or delete cannot be undone "
            "from the bucket itself"
        )
    failed = [
        k for k, v in facts["replication_sample"].items() if v not in ("COMPLETED", "REPLICA")
    ]
    if failed:
        out.append(f"replication not completed for {len(failed)} sampled object(s)")
    if (
        facts["versioning"] != "Enabled"
        and not facts["replication_rules"]
        and not facts["recovery_points"]
    ):
        out.append("no restore mechanism found: no versioning, replication or AWS Backup point")
    if facts["versioning"] == "Enabled" and not facts["sample"]:
        out.append("no object has a previous version yet: nothing to restore a sample from")
    return out


def _sha256(s3: Any, bucket: str, key: str, version_id: str | None) -> str:
    kwargs: dict[str, Any] = {"Bucket": bucket, "Key": key}
    if version_id:
        kwargs["VersionId"] = version_id
    body = s3.get_object(**kwargs)["Body"]
    digest = hashlib.sha256()
    for chunk in iter(lambda: body.read(CHUNK), b""):
        digest.update(chunk)
    return digest.hexdigest()


@dataclass
class BucketDrill:
    """Restore a bucket's sample into the scratch prefix and tear it down (collaborator)."""

    ctx: StepContext
    action: Action
    scratch_prefix: str
    clock: Callable[[], float] = time.monotonic

    @property
    def bucket(self) -> str:
        """The bucket drilled."""
        return str(self.action.details["bucket"])

    @property
    def prefix(self) -> str:
        """This run's scratch prefix."""
        return f"{self.scratch_prefix}{self.ctx.run_id}/"

    def restore_sample(self) -> None:
        """Copy each sampled previous version to the scratch prefix, checksum both, time it."""
        s3 = self.ctx.client("s3", self.action.region)
        facts = self.action.details["facts"]
        sample = list(facts["sample"])
        saved = self.ctx.load_checkpoint("sample")
        cursor: dict[str, Any] = (
            dict(saved["cursor"]) if saved else {"next": 0, "results": [], "seconds": 0.0}
        )
        findings = readiness_findings(facts)
        for index in range(int(cursor["next"]), len(sample)):
            item = sample[index]
            started = self.clock()
            dest = scratch_key(self.scratch_prefix, self.ctx.run_id or "", item["key"])
            self.ctx.record_resource(
                "s3:dr-scratch", f"{self.bucket}/{dest}", region=self.action.region
            )
            try:
                copied = s3.copy_object(
                    Bucket=self.bucket,
                    Key=dest,
                    CopySource={
                        "Bucket": self.bucket,
                        "Key": item["key"],
                        "VersionId": item["version_id"],
                    },
                    MetadataDirective="COPY",
                )
            except Exception as exc:
                if not (not_found(exc) or access_denied(exc)):
                    raise
                cursor["results"].append(
                    {"key": item["key"], "restored": False, "error": str(exc)[:200]}
                )
            else:
                want = _sha256(s3, self.bucket, item["key"], item["version_id"])
                got = _sha256(s3, self.bucket, dest, copied.get("VersionId"))
                cursor["results"].append(
                    {
                        "key": item["key"],
                        "version_id": item["version_id"],
                        "restored": True,
                        "bytes": item["size"],
                        "sha256_match": want == got,
                        "sha256": want,
                    }
                )
            cursor["seconds"] = round(float(cursor["seconds"]) + self.clock() - started, 3)
            cursor["next"] = index + 1
            self.ctx.checkpoint(cursor, done=index + 1, total=len(sample), name="sample")
        results = list(cursor["results"])
        restored = [r for r in results if r.get("restored")]
        mismatched = [r["key"] for r in restored if not r.get("sha256_match")]
        if mismatched:
            findings.append(f"checksum mismatch after restore: {', '.join(mismatched)}")
        if len(restored) < len(results):
            findings.append(f"{len(results) - len(restored)} sampled object(s) did not restore")
        total_bytes = sum(int(r.get("bytes") or 0) for r in restored)
        seconds = float(cursor["seconds"])
        evidence = {
            "kind": "bucket",
            "bucket": self.bucket,
            "versioning": facts["versioning"],
            "replication_rules": facts["replication_rules"],
            "replication_sample": facts["replication_sample"],
            "recovery_points": facts["recovery_points"],
            "sampled": len(results),
            "restored": len(restored),
            "checksums_matched": len(restored) - len(mismatched),
            "restore_s": round(seconds, 3),
            "bytes": total_bytes,
            "bytes_per_s": round(total_bytes / seconds, 1) if seconds > 0 else None,
            "scratch_prefix": self.prefix,
            "findings": findings,
            "measured_on": measured_on(self.ctx),
        }
        self.ctx.record_resource(
            "dr:drill",
            f"s3://{self.bucket}",
            change="measured",
            region=self.action.region,
            details=evidence,
        )
        self.ctx.record_result(target=self.action.target, **evidence)

    def teardown(self) -> None:
        """Delete every version and delete marker under this run's scratch prefix, verified."""
        s3 = self.ctx.client("s3", self.action.region)
        if not self.ctx.run_id or not self.prefix.endswith(f"{self.ctx.run_id}/"):
            raise StepFailed("refusing to delete a scratch prefix that does not name this run")
        deleted = 0
        for _ in range(10):
            victims = self._versions(s3)
            if not victims:
                break
            for start in range(0, len(victims), 1000):
                s3.delete_objects(
                    Bucket=self.bucket,
                    Delete={"Objects": victims[start : start + 1000], "Quiet": True},
                )
            deleted += len(victims)
        left = self._versions(s3)
        if left:
            raise StepFailed(
                f"{len(left)} object version(s) are still under s3://{self.bucket}/{self.prefix}; "
                "resume to delete them."
            )
        if self.ctx.action_id is None:
            return  # a rollback: nothing to record against
        self.ctx.record_resource(
            "dr:drill",
            f"s3://{self.bucket}",
            change="measured",
            region=self.action.region,
            details={"torn_down": True, "scratch_versions_deleted": deleted, "residuals": []},
        )
        self.ctx.record_result(target=self.action.target, scratch_versions_deleted=deleted)

    def _versions(self, s3: Any) -> list[dict[str, str]]:
        out: list[dict[str, str]] = []
        pages = s3.get_paginator("list_object_versions").paginate(
            Bucket=self.bucket, Prefix=self.prefix
        )
        for page in pages:
            for entry in [*page.get("Versions", []), *page.get("DeleteMarkers", [])]:
                out.append({"Key": str(entry["Key"]), "VersionId": str(entry["VersionId"])})
        return out
