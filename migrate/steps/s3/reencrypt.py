"""``s3.reencrypt``: re-encrypt the objects already in S3 with the target KMS key, losing nothing."""

from __future__ import annotations

import json
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from migrate.aws.arns import arn_region
from migrate.aws.errors import error_code
from migrate.aws.kms import KeyResolver
from migrate.aws.s3 import bucket_encryption, bucket_region
from migrate.engine.base import Action, Estimate, Facts, Step, Wait, handles
from migrate.engine.context import StepContext
from migrate.engine.registry import step
from migrate.engine.selection import Selection
from migrate.errors import StepFailed
from migrate.steps.s3 import batch as sb
from migrate.steps.s3 import inventory as inv
from migrate.steps.s3 import objects as so
from migrate.steps.s3.buckets import select_buckets

MiB = 1024**2
# Answers meaning "UpdateObjectEncryption is not available here" (region, endpoint, permission).
UPDATE_UNAVAILABLE = frozenset(
    {"NotImplemented", "MethodNotAllowed", "AccessDenied", "501", "405", "InvalidRequest"}
)
ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/.+$")
REPORT_SAMPLE = 20  # keys per category kept in the checkpoint (the full list is in the report file)


class ReencryptParams(Selection):
    """Parameters of ``s3.reencrypt``."""

    kms_key: str = Field(min_length=1)
    bucket_key: bool = True
    rekey: bool = False
    lane: Literal["auto", "copy", "update"] = "auto"
    noncurrent_versions: Literal["report", "delete"] = "report"
    concurrency: int = Field(default=64, ge=1, le=256)
    max_rps: float = Field(default=500.0, ge=0)
    batch_size: int = Field(default=1000, ge=1, le=1000)
    multipart_threshold: int = Field(default=so.FIVE_GB, ge=5 * MiB, le=so.FIVE_GB)
    part_size: int = Field(default=512 * MiB, ge=5 * MiB, le=so.FIVE_GB)
    max_failures: int = Field(default=100, ge=0)
    verify_sample: float = Field(default=1.0, ge=0.0, le=1.0)
    plan_head_limit: int = Field(default=10_000, ge=0)
    inventory: bool = True
    inventory_max_age_h: float = Field(default=48.0, gt=0)
    mode: Literal["objects", "batch"] = "objects"
    batch_role_arn: str | None = None
    batch_bucket: str | None = None
    batch_prefix: str = Field(default="migrate-s3-batch", min_length=1)
    batch_report: Literal["FailedTasksOnly", "AllTasks"] = "FailedTasksOnly"
    batch_priority: int = Field(default=10, ge=0, le=2_147_483_647)
    batch_poll_s: float = Field(default=60.0, ge=1.0)

    @model_validator(mode="after")
    def _batch_needs_a_role_and_a_bucket(self) -> ReencryptParams:
        """``mode: batch`` cannot run without the job's role and the manifest/report bucket."""
        if self.mode != "batch":
            return self
        missing = [n for n in ("batch_role_arn", "batch_bucket") if not getattr(self, n)]
        if missing:
            raise ValueError(
                f"mode: batch needs {' and '.join(missing)}: the IAM role S3 Batch Operations "
                "assumes to copy (trusting batchoperations.s3.amazonaws.com) and the bucket "
                "that receives the manifests and completion reports"
            )
        role = str(self.batch_role_arn)
        if role.startswith("arn:") and not ROLE_ARN.match(role):
            raise ValueError(f"batch_role_arn {role!r} is not an IAM role ARN")
        return self


@dataclass
class Tally:
    """Per-bucket counters (kept in the checkpoint, so a resumed run reports the whole bucket)."""

    counts: Counter[str] = field(default_factory=Counter)
    samples: dict[str, list[str]] = field(default_factory=dict)
    failed_keys: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, name: str, n: int = 1, key: str | None = None) -> None:
        """Count ``n`` under ``name``; remember ``key`` among the first few of that category."""
        with self.lock:
            self.counts[name] += n
            if key is not None:
                keys = self.samples.setdefault(name, [])
                if len(keys) < REPORT_SAMPLE and key not in keys:
                    keys.append(key)

    def to_dict(self) -> dict[str, Any]:
        """JSON form for the checkpoint."""
        with self.lock:
            return {
                "counts": dict(self.counts),
                "samples": {k: list(v) for k, v in self.samples.items()},
            }

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Tally:
        """Inverse of :meth:`to_dict`."""
        tally = cls()
        tally.counts.update((data or {}).get("counts", {}))
        tally.samples = {k: list(v) for k, v in (data or {}).get("samples", {}).items()}
        return tally


class ReportFile:
    """The per-bucket list of every object left, skipped, failed or copied (JSON lines).

    Appends are made exactly once per object: the checkpoint stores the file's length, and a
    resumed run cuts the file back to it before redoing the batch that was in flight.
    """

    def __init__(self, path: Path, offset: int) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "ab") as handle:
            handle.truncate(offset)
        self._lock = threading.Lock()

    def write(self, entry: dict[str, Any]) -> None:
        """Append one entry."""
        line = json.dumps(entry, sort_keys=True, default=str) + "\n"
        with self._lock, open(self.path, "a", encoding="utf-8") as handle:
            handle.write(line)

    def offset(self) -> int:
        """The file's current length (committed in the checkpoint)."""
        return self.path.stat().st_size if self.path.exists() else 0


def report_path(ctx: StepContext, bucket: str) -> Path:
    """Where the per-bucket report of this run lives (beside the state DB)."""
    return ctx.state_dir / "s3-reencrypt" / str(ctx.run_id) / f"{ctx.step_id}-{bucket}.jsonl"


class Requests:
    """Sends S3 requests through the shared rate limiter, backing off on throttling."""

    def __init__(self, limiter: so.RateLimiter, attempts: int = 6) -> None:
        self.limiter = limiter
        self.attempts = attempts

    def __call__(self, fn: Callable[..., Any], **kwargs: Any) -> Any:
        delay = 0.2
        for attempt in range(self.attempts):
            self.limiter.acquire()
            try:
                result = fn(**kwargs)
            except Exception as exc:
                if so.is_throttle(exc) and attempt + 1 < self.attempts:
                    self.limiter.on_throttle()
                    time.sleep(delay)
                    delay = min(delay * 2, 10.0)
                    continue
                raise
            self.limiter.on_success()
            return result
        raise AssertionError("unreachable")


class ObjectWorker:
    """Re-encrypts one object at a time (called from the pool's threads)."""

    def __init__(
        self,
        *,
        s3: Any,
        bucket: str,
        target_arn: str,
        params: ReencryptParams,
        acl_enabled: bool,
        use_update: bool,
        send: Requests,
        tally: Tally,
        report: ReportFile,
        versioned: bool,
        track_upload: Callable[[str, str, bool], None],
    ) -> None:
        self.s3 = s3
        self.bucket = bucket
        self.target_arn = target_arn
        self.params = params
        self.acl_enabled = acl_enabled
        self.use_update = use_update
        self.send = send
        self.tally = tally
        self.report = report
        self.versioned = versioned
        self.track_upload = track_upload

    # -- per object ------------------------------------------------------------------------------
    def head(self, key: str) -> tuple[dict[str, Any] | None, bool]:
        """HEAD the object: (response or None if gone, True if it is SSE-C)."""
        try:
            return dict(self.send(self.s3.head_object, Bucket=self.bucket, Key=key)), False
        except Exception as exc:
            code = error_code(exc)
            if code in ("404", "NoSuchKey", "NotFound"):
                return None, False
            # AWS refuses a HEAD of an SSE-C object without the customer key with 400.
            if code in ("400", "BadRequest", "InvalidRequest"):
                return None, True
            raise

    def __call__(self, listed: dict[str, Any]) -> int:
        """Process one listed object; return the bytes copied (for the progress bar)."""
        key = str(listed["Key"])
        try:
            return self._process(key, listed.get("ETag"))
        except StepFailed:
            raise
        except Exception as exc:
            self.tally.add("failed", key=key)
            with self.tally.lock:
                self.tally.failed_keys.append(key)
            self.report.write(
                {
                    "key": key,
                    "result": "failed",
                    "error": f"{error_code(exc) or type(exc).__name__}",
                }
            )
            return 0

    def _process(self, key: str, listed_etag: str | None, retry: bool = True) -> int:
        head, ssec = self.head(key)
        if head is None and not ssec:
            self.tally.add("vanished", key=key)  # deleted since the listing: nothing to protect
            return 0
        head = head or {}
        # Our own precondition check (moto ignores CopySourceIfMatch): the object must still be
        # the one we listed. A newer object is processed as what it now is, never replaced by
        # the listed content, and counted.
        if listed_etag and head.get("ETag") and head["ETag"] != listed_etag:
            self.tally.add("changed_since_listing", key=key)
            self.report.write({"key": key, "result": "changed-since-listing"})
        state = so.classify(head, self.target_arn, ssec=ssec)
        if state == so.TARGET:
            self.tally.add("already")
            return 0
        if not so.needs_work(state, self.params.rekey):
            label = {so.SSE_C: "skipped_sse_c", so.ARCHIVED: "skipped_archived"}.get(
                state, "left_other_kms"
            )
            self.tally.add(label, key=key)
            self.report.write(
                {"key": key, "result": label, "storage_class": head.get("StorageClass")}
            )
            return 0
        if head.get("ObjectLockMode") or head.get("ObjectLockLegalHoldStatus") == "ON":
            # A copy makes a new version; the locked one stays, untouched, until it expires.
            self.tally.add("locked_copied", key=key)
            self.report.write({"key": key, "result": "locked-copied-new-version"})
        size = int(head.get("ContentLength") or 0)
        update_ok = state == so.SSE_S3 or (
            state == so.OTHER_KMS and head.get("ServerSideEncryption") == "aws:kms"
        )
        try:
            if self.use_update and update_ok and self._try_update(key, head):
                self.tally.add("updated")
                return 0
            if size > self.params.multipart_threshold:
                self._multipart(key, head)
                self.tally.add("multipart_copied", key=key)
            else:
                self._copy(key, head)
            self.tally.add("copied")
            self.tally.add("bytes_copied", size)
            return size
        except Exception as exc:
            if error_code(exc) in ("PreconditionFailed", "412") and retry:
                # Rewritten between our HEAD and the copy: look again and re-encrypt what is
                # there now (once); the newer content is never overwritten by what we saw.
                self.tally.add("changed_during_copy", key=key)
                return self._process(key, None, retry=False)
            if error_code(exc) in ("PreconditionFailed", "412"):
                self.tally.add("skipped_changing", key=key)
                self.report.write({"key": key, "result": "skipped-changing-concurrently"})
                return 0
            raise

    def _acl_headers(self, key: str) -> dict[str, str]:
        if not self.acl_enabled:
            return {}  # BucketOwnerEnforced: AWS refuses ACL calls; the bucket policy governs
        acl = self.send(self.s3.get_object_acl, Bucket=self.bucket, Key=key)
        headers = so.acl_grant_headers(acl)
        if headers:
            self.tally.add("acl_reapplied")
        return headers

    def _copy(self, key: str, head: dict[str, Any]) -> None:
        response = self.send(
            self.s3.copy_object,
            Bucket=self.bucket,
            Key=key,
            CopySource={"Bucket": self.bucket, "Key": key},
            CopySourceIfMatch=head["ETag"],
            MetadataDirective="COPY",
            TaggingDirective="COPY",
            **so.encryption_params(self.target_arn, self.params.bucket_key),
            **so.preserved_params(head),
            **self._acl_headers(key),
        )
        self._record_version(key, head, response)

    def _record_version(self, key: str, head: dict[str, Any], response: dict[str, Any]) -> None:
        if self.versioned and response.get("VersionId"):
            self.report.write(
                {
                    "key": key,
                    "result": "copied",
                    "version": response.get("VersionId"),
                    "source_version": response.get("CopySourceVersionId") or head.get("VersionId"),
                }
            )

    def _try_update(self, key: str, head: dict[str, Any]) -> bool:
        """UpdateObjectEncryption; under ``lane: auto`` an endpoint or identity that cannot do it
        switches the whole bucket to the copy lane (returns False: copy this object)."""
        try:
            self._update(key, head)
        except StepFailed:
            raise
        except Exception as exc:
            if self.params.lane != "auto" or error_code(exc) not in UPDATE_UNAVAILABLE:
                raise
            self.use_update = False
            self.tally.add("update_fallback", key=key)
            return False
        return True

    def _update(self, key: str, head: dict[str, Any]) -> None:
        response = self.send(
            self.s3.update_object_encryption,
            Bucket=self.bucket,
            Key=key,
            ObjectEncryption={
                "SSEKMS": {"KMSKeyArn": self.target_arn, "BucketKeyEnabled": self.params.bucket_key}
            },
        )
        headers = (response.get("ResponseMetadata") or {}).get("HTTPHeaders") or {}
        if "etag" in headers:
            # moto 5.2 treats this request as a PutObject and overwrites the object with the
            # request body; real S3 answers without an ETag. Stop at once rather than go on.
            raise StepFailed(
                f"s3://{self.bucket}/{key}: the endpoint answered UpdateObjectEncryption like a "
                "PutObject (it returned an ETag), so it does not implement the API and may have "
                "overwritten the object. Use `lane: copy` with this endpoint."
            )

    def _multipart(self, key: str, head: dict[str, Any]) -> None:
        extra: dict[str, Any] = dict(so.multipart_create_params(head))
        if int(head.get("TagCount") or 0) > 0:
            tags = self.send(self.s3.get_object_tagging, Bucket=self.bucket, Key=key)["TagSet"]
            extra["Tagging"] = so.tagging_query(tags)
        extra.update(self._acl_headers(key))
        upload = self.send(
            self.s3.create_multipart_upload,
            Bucket=self.bucket,
            Key=key,
            **so.encryption_params(self.target_arn, self.params.bucket_key),
            **extra,
        )
        upload_id = str(upload["UploadId"])
        self.track_upload(upload_id, key, True)
        try:
            parts = []
            size = int(head.get("ContentLength") or 0)
            for number, (start, end) in enumerate(so.part_ranges(size, self.params.part_size), 1):
                part = self.send(
                    self.s3.upload_part_copy,
                    Bucket=self.bucket,
                    Key=key,
                    UploadId=upload_id,
                    PartNumber=number,
                    CopySource={"Bucket": self.bucket, "Key": key},
                    CopySourceIfMatch=head["ETag"],
                    CopySourceRange=f"bytes={start}-{end}",
                )
                parts.append({"PartNumber": number, "ETag": part["CopyPartResult"]["ETag"]})
            response = self.send(
                self.s3.complete_multipart_upload,
                Bucket=self.bucket,
                Key=key,
                UploadId=upload_id,
                MultipartUpload={"Parts": parts},
            )
        except BaseException:
            # Never leave a half-copied upload behind (it is billed and invisible).
            try:
                self.s3.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
            finally:
                self.track_upload(upload_id, key, False)
            raise
        self.track_upload(upload_id, key, False)
        self._record_version(key, head, response)


@step("s3.reencrypt")
class S3Reencrypt(Step):
    """Re-encrypt existing S3 objects in place with the target KMS key, losing nothing.

    Every object of the selected buckets that is unencrypted or SSE-S3 (and, with ``rekey: true``,
    under another KMS key) is copied onto itself with SSE-KMS, bucket keys on, its metadata, content
    headers, tags, storage class, website redirect, Object Lock settings and ACL grants; or, where
    S3 supports it (``lane: auto`` on AWS, or ``lane: update``), re-encrypted without a copy by
    UpdateObjectEncryption. SSE-C and archived objects are skipped and listed; older versions stay.
    Work is checkpointed per listing batch and verified by encryption state, so a killed run
    resumes without re-copying. The plan warns about notifications, replication, lifecycle clocks
    and readers that would lose access (the key policy is checked against the bucket policy), and
    counts from a fresh S3 Inventory report where one is configured. ``mode: batch`` hands the
    copies to S3 Batch Operations (one job per storage class, waited for as a run state, failed
    tasks retried by the copy lane).
    """

    Params = ReencryptParams
    action_kinds = ("s3.reencrypt_objects", "s3.delete_superseded_versions")
    permissions = (
        "s3:ListAllMyBuckets",
        "s3:GetBucketLocation",
        "s3:GetBucketTagging",
        "s3:GetEncryptionConfiguration",
        "s3:GetBucketVersioning",
        "s3:GetBucketObjectLockConfiguration",
        "s3:GetBucketOwnershipControls",
        "s3:GetBucketNotification",
        "s3:GetReplicationConfiguration",
        "s3:GetBucketPolicy",
        "s3:GetBucketWebsite",
        "s3:ListBucket",
        "s3:ListBucketVersions",
        "s3:GetObject",
        "s3:GetObjectVersion",
        "s3:GetObjectAcl",
        "s3:UpdateObjectEncryption",
        "s3:GetObjectTagging",
        "s3:PutObject",
        "s3:PutObjectAcl",
        "s3:PutObjectTagging",
        "s3:PutObjectRetention",
        "s3:PutObjectLegalHold",
        "s3:AbortMultipartUpload",
        "s3:DeleteObjectVersion",
        "s3:GetInventoryConfiguration",
        "s3:CreateJob",
        "s3:DescribeJob",
        "iam:PassRole",
        "kms:DescribeKey",
        "kms:GetKeyPolicy",
        "kms:GenerateDataKey",
        "kms:Decrypt",
        "kms:Encrypt",
        "kms:ReEncryptFrom",
        "kms:ReEncryptTo",
    )
    outputs = ("objects_reencrypted", "objects_skipped")
    example = """\
- id: s3-reencrypt
  uses: s3.reencrypt
  with:
    names: ["legacy-*"]
    kms_key: "{{ steps.kms.key_arn }}"
    max_rps: 300
"""
    params: ReencryptParams

    # -- observe ---------------------------------------------------------------------------------
    def observe(self, ctx: StepContext) -> Facts:
        """Per bucket: settings that a copy affects, and objects by encryption state."""
        s3 = ctx.client("s3")
        resolver = KeyResolver(ctx, ctx.is_known)
        buckets: dict[str, Any] = {}
        for name, region in select_buckets(ctx, self.params).items():
            buckets[name] = {"region": region}
        target_arns = {
            region: resolver.arn(self.params.kms_key, region)
            for region in sorted({b["region"] for b in buckets.values()})
        }
        key_policies = {
            region: self._key_policy(ctx, arn, region) for region, arn in target_arns.items()
        }
        seen_readers = _cloudtrail_readers(ctx)
        for name in ctx.progress(sorted(buckets), desc="buckets", unit="bucket"):
            region = buckets[name]["region"]
            buckets[name].update(self._observe_bucket(ctx, name, region, target_arns.get(region)))
            policy = buckets[name].pop("_policy")
            arn = target_arns.get(region)
            key_account = arn.split(":")[4] if arn else ""
            readers = [
                {
                    "principal": r.principal,
                    "access": r.access,
                    "cross_account": r.cross_account,
                    "seen_in": "bucket policy",
                }
                for r in so.readers_report(policy, key_policies.get(region), key_account, region)
            ]
            known = {r["principal"] for r in readers}
            for principal in seen_readers.get(name, []):
                if principal in known:
                    continue
                readers.append(
                    {
                        "principal": principal,
                        "access": so.key_policy_access(
                            key_policies.get(region), principal, key_account, region
                        ),
                        "cross_account": so.account_of(principal) not in (None, key_account),
                        "seen_in": "CloudTrail",
                    }
                )
            buckets[name]["readers"] = readers
        compliant = [n for n, b in buckets.items() if self._to_do(b) == 0]
        facts_batch = self._observe_batch_bucket(ctx, s3)
        return {
            **facts_batch,
            "buckets": buckets,
            "target_key": self.params.kms_key,
            "target_key_arns": target_arns,
            "key_policy_known": {r: p is not None for r, p in key_policies.items()},
            "compliant": sorted(compliant),
        }

    def _observe_batch_bucket(self, ctx: StepContext, s3: Any) -> dict[str, Any]:
        """In batch mode: where the manifest/report bucket is (jobs read it in their region)."""
        name = self.params.batch_bucket
        if self.params.mode != "batch" or not name or not ctx.is_known(name):
            return {}
        region = _optional(
            lambda: bucket_region(s3, name), ("NoSuchBucket", "404", "AccessDenied"), None
        )
        return {"batch_bucket": {"name": name, "region": region}}

    def _key_policy(self, ctx: StepContext, arn: str | None, region: str) -> dict[str, Any] | None:
        if not arn:
            return None
        try:
            text = ctx.client("kms", region).get_key_policy(KeyId=arn, PolicyName="default")
            return dict(json.loads(text["Policy"]))
        except Exception as exc:
            if error_code(exc) in ("AccessDeniedException", "NotFoundException"):
                return None
            raise

    def _observe_bucket(
        self, ctx: StepContext, bucket: str, region: str, target_arn: str | None
    ) -> dict[str, Any]:
        s3 = ctx.client("s3", region)
        reads: dict[str, Callable[[], Any]] = {
            "versioning": lambda: (
                s3.get_bucket_versioning(Bucket=bucket).get("Status") or "Disabled"
            ),
            "object_lock": lambda: _optional(
                lambda: (
                    s3.get_object_lock_configuration(Bucket=bucket)
                    .get("ObjectLockConfiguration", {})
                    .get("ObjectLockEnabled")
                    == "Enabled"
                ),
                ("ObjectLockConfigurationNotFoundError",),
                False,
            ),
            "acl_enabled": lambda: _acl_enabled(s3, bucket),
            "default_encryption": lambda: bucket_encryption(s3, bucket),
            "notifications": lambda: _notifications(s3, bucket),
            "replication": lambda: _optional(
                lambda: bool(
                    s3.get_bucket_replication(Bucket=bucket).get("ReplicationConfiguration")
                ),
                ("ReplicationConfigurationNotFoundError",),
                False,
            ),
            "_policy": lambda: _optional(
                lambda: json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"]),
                ("NoSuchBucketPolicy",),
                None,
            ),
            "website": lambda: _optional(
                lambda: bool(s3.get_bucket_website(Bucket=bucket)),
                ("NoSuchWebsiteConfiguration",),
                False,
            ),
            "objects": lambda: self._objects(ctx, s3, bucket, target_arn),
            # Counted only where versioning is or was on: a version listing of a plain bucket
            # would list every object a second time.
            "_versions": lambda: (
                _count_noncurrent(s3, bucket)
                if s3.get_bucket_versioning(Bucket=bucket).get("Status")
                else 0
            ),
        }
        # Independent reads: in parallel, as each costs a round trip (matters far from S3).
        with ThreadPoolExecutor(max_workers=len(reads)) as pool:
            futures = {name: pool.submit(read) for name, read in reads.items()}
            facts = {name: fut.result() for name, fut in futures.items()}
        versions = facts.pop("_versions")
        if facts["versioning"] != "Disabled":
            facts["noncurrent_versions"] = versions
        return facts

    def _objects(
        self, ctx: StepContext, s3: Any, bucket: str, target_arn: str | None
    ) -> dict[str, Any]:
        """Counts from a fresh S3 Inventory report where one is configured, else a HEAD scan;
        the facts say which source was used (and the report's date)."""
        skipped: list[str] = []
        if self.params.inventory:
            counts, skipped = inv.observe_from_inventory(
                s3,
                bucket,
                lambda name: ctx.client("s3", bucket_region(s3, name)),
                # Only to judge freshness: the facts hold the report's date, never "now".
                now=datetime.now(UTC),
                max_age_h=self.params.inventory_max_age_h,
                multipart_threshold=self.params.multipart_threshold,
                part_size=self.params.part_size,
            )
            if counts is not None:
                if skipped:
                    counts["inventory_skipped"] = skipped
                return counts
        counts = self._scan(ctx, s3, bucket, target_arn)
        counts["source"] = "listing"
        if skipped:
            counts["inventory_skipped"] = skipped
        return counts

    def _scan(
        self, ctx: StepContext, s3: Any, bucket: str, target_arn: str | None
    ) -> dict[str, Any]:
        """Stream the listing; HEAD the first ``plan_head_limit`` objects to learn encryption."""
        by_state: Counter[str] = Counter()
        bytes_by_state: Counter[str] = Counter()
        by_class: Counter[str] = Counter()
        count = total_bytes = over = archived = pages = 0
        parts = 0
        limit = self.params.plan_head_limit
        with ThreadPoolExecutor(max_workers=min(self.params.concurrency, 16)) as pool:
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
                pages += 1
                batch = []
                for obj in page.get("Contents", []):
                    size = int(obj.get("Size", 0))
                    count += 1
                    total_bytes += size
                    by_class[str(obj.get("StorageClass") or "STANDARD")] += 1
                    if size > self.params.multipart_threshold:
                        over += 1
                        parts += len(so.part_ranges(size, self.params.part_size))
                    if obj.get("StorageClass") in so.ARCHIVE_CLASSES:
                        archived += 1
                    if count <= limit:
                        batch.append(obj)
                heads = pool.map(lambda o: _head_state(s3, bucket, o, target_arn), batch)
                for obj, state in zip(batch, heads, strict=True):
                    by_state[state] += 1
                    bytes_by_state[state] += int(obj.get("Size", 0))
        scanned = min(count, limit)
        return {
            "count": count,
            "bytes": total_bytes,
            "scanned": scanned,
            "by_state": dict(sorted(by_state.items())),
            "bytes_by_state": dict(sorted(bytes_by_state.items())),
            "by_storage_class": dict(sorted(by_class.items())),
            "over_threshold": over,
            "multipart_parts": parts,
            "archived": archived,
            "list_pages": pages,
        }

    def _to_do(self, bucket: dict[str, Any]) -> int:
        """Objects needing work, extrapolated from the HEADed sample to the whole bucket."""
        objects = bucket["objects"]
        sample: int = sum(
            n for s, n in objects["by_state"].items() if so.needs_work(s, self.params.rekey)
        )
        if objects["scanned"] == 0:
            return int(objects["count"]) if self.params.plan_head_limit == 0 else 0
        count: int = objects["count"]
        return round(sample * count / int(objects["scanned"]))

    # -- decide ----------------------------------------------------------------------------------
    def decide(self, ctx: StepContext, facts: Facts) -> list[Action]:
        """One action per bucket with objects to re-encrypt (and, if asked, version clean-up)."""
        actions: list[Action] = []
        key_known = ctx.is_known(self.params.kms_key)
        for name, bucket in sorted(facts["buckets"].items()):
            region = bucket["region"]
            target_arn = facts["target_key_arns"].get(region)
            key_region = arn_region(target_arn) or arn_region(self.params.kms_key)
            if key_known and key_region and key_region != region:
                continue  # AWS refuses a key of another region; s3.default_encryption says so too
            to_do = self._to_do(bucket)
            noncurrent = bucket.get("noncurrent_versions", 0)
            if to_do == 0 and not (noncurrent and self.params.noncurrent_versions == "delete"):
                continue
            actions.append(self._reencrypt_action(ctx, name, bucket, to_do, facts, key_known))
            if self.params.noncurrent_versions == "delete" and bucket["versioning"] != "Disabled":
                actions.append(
                    Action(
                        kind="s3.delete_superseded_versions",
                        target=name,
                        summary=f"delete the old versions of s3://{name} that this run's "
                        "encrypted copies supersede (only those; others stay)",
                        estimate=Estimate(api_requests=2 * to_do, duration_s=to_do / 100),
                        risks=(
                            "irreversible: the superseded versions are deleted; their content "
                            "stays in the encrypted current versions",
                        ),
                        gate="delete-versions",
                        destructive=True,
                        region=region,
                        details={"bucket": name, "object_lock": bucket["object_lock"]},
                    )
                )
        return actions

    def _reencrypt_action(
        self,
        ctx: StepContext,
        name: str,
        bucket: dict[str, Any],
        to_do: int,
        facts: Facts,
        key_known: bool,
    ) -> Action:
        objects = bucket["objects"]
        ratio = objects["count"] / objects["scanned"] if objects["scanned"] else 1.0
        by_state = {s: round(n * ratio) for s, n in objects["by_state"].items()}
        bytes_to_do = round(
            sum(
                b
                for s, b in objects["bytes_by_state"].items()
                if so.needs_work(s, self.params.rekey)
            )
            * ratio
        )
        update_objects = by_state.get(so.SSE_S3, 0) if self._use_update(ctx) else 0
        costs = so.estimate_costs(
            objects=to_do,
            multipart_objects=min(objects["over_threshold"], to_do),
            multipart_parts=objects["multipart_parts"],
            acl_reads=bucket["acl_enabled"],
            update_lane_objects=update_objects,
            bucket_key=self.params.bucket_key,
            max_rps=self.params.max_rps,
            list_pages=objects["list_pages"],
        )
        risks = self._risks(name, bucket, by_state, facts, key_known)
        estimated = " (estimated from a sample)" if objects["scanned"] < objects["count"] else ""
        inventory = objects.get("inventory") or {}
        if objects.get("source") == "inventory":
            estimated = f" (counted from the S3 Inventory report of {inventory.get('date')})"
        cost = costs.cost_usd
        how = ""
        jobs = 0
        if self.params.mode == "batch":
            jobs = max(
                1, sum(1 for c in objects.get("by_storage_class", {}) if c in sb.BATCH_CLASSES)
            )
            cost = round(cost + sb.batch_costs(to_do, jobs), 4)
            how = f" by S3 Batch Operations (up to {jobs} job(s), one per storage class)"
            risks.extend(self._batch_risks(bucket, facts))
        return Action(
            kind="s3.reencrypt_objects",
            target=name,
            summary=f"re-encrypt {to_do} of {objects['count']} objects ({_size(bytes_to_do)}) in "
            f"s3://{name} with {self.params.kms_key}{how}{estimated}; ~{costs.requests} "
            f"requests, ~{costs.kms_requests} KMS requests, ~${cost:.2f}",
            estimate=Estimate(
                duration_s=costs.duration_s,
                api_requests=costs.requests,
                bytes=bytes_to_do,
                cost_usd=cost,
            ),
            risks=tuple(risks),
            region=bucket["region"],
            details={
                "bucket": name,
                "objects": objects["count"],
                "to_do": to_do,
                "by_state": by_state,
                "kms_requests": costs.kms_requests,
                "requests_per_object": 2 if not bucket["acl_enabled"] else 3,
                "versioned": bucket["versioning"] != "Disabled",
                "source": objects.get("source", "listing"),
                "inventory_date": inventory.get("date"),
                "mode": self.params.mode,
                "batch_jobs": jobs,
            },
        )

    def _batch_risks(self, bucket: dict[str, Any], facts: Facts) -> list[str]:
        risks = [
            "mode: batch - S3 Batch Operations copies without an ETag condition: an object "
            "rewritten between the manifest and its task is re-encrypted as it then is (its new "
            "content is kept) but with the storage class the manifest recorded",
            "mode: batch - a job applies one storage class, one ACL, one website redirect and "
            "one Object Lock setting to all its objects: the manifest is split per storage "
            "class, and objects with non-default ACL grants, a website redirect, Object Lock "
            "settings, a size above the multipart threshold or a class Batch Operations cannot "
            "write go through the copy lane instead",
            f"mode: batch - the role {self.params.batch_role_arn} must trust "
            "batchoperations.s3.amazonaws.com and may s3:GetObject*/s3:PutObject* on the "
            "bucket, kms:Decrypt/kms:GenerateDataKey on the keys, read the manifests and write "
            f"the completion reports in s3://{self.params.batch_bucket}/"
            f"{self.params.batch_prefix}/",
        ]
        where = facts.get("batch_bucket")
        if where and where.get("region") is None:
            risks.append(
                f"mode: batch - the bucket {where['name']} for manifests and reports does not "
                "exist or cannot be read: create it (in the region of the buckets) first"
            )
        elif where and where["region"] != bucket["region"]:
            risks.append(
                f"mode: batch - the bucket {where['name']} is in {where['region']}, the jobs run "
                f"in {bucket['region']}: S3 Batch Operations reads its manifest in the job's "
                "region, so use a manifest bucket there"
            )
        return risks

    def _risks(
        self,
        name: str,
        bucket: dict[str, Any],
        by_state: dict[str, int],
        facts: Facts,
        key_known: bool,
    ) -> list[str]:
        risks: list[str] = []
        objects = bucket["objects"]
        if objects.get("source") == "inventory":
            report = objects["inventory"]
            risks.append(
                f"counts are from the S3 Inventory report {report['config_id']} of "
                f"{report['date']} UTC: objects written since are not in them (the run lists "
                "and HEADs every object itself)"
            )
            if self.params.rekey and by_state.get(so.KMS_ANY):
                risks.append(
                    f"{by_state[so.KMS_ANY]} objects are SSE-KMS and the inventory does not say "
                    "under which key: all are counted as to re-key (an upper bound)"
                )
        for reason in objects.get("inventory_skipped", []):
            risks.append(f"S3 Inventory not used for the counts: {reason}")
        if bucket["notifications"]:
            risks.append(
                f"event notifications ({', '.join(bucket['notifications'])}) fire for every "
                "copied object (s3:ObjectCreated:Copy): consumers see a burst of events"
            )
        if bucket["replication"]:
            risks.append(
                "replication is configured: every copied object is replicated again (cost, "
                "and the replication role needs kms:Decrypt/Encrypt on the keys)"
            )
        risks.append(
            "copies reset LastModified: lifecycle transitions and expirations restart their clock"
        )
        if bucket["object_lock"]:
            risks.append(
                "Object Lock is on: locked objects get an encrypted new version; the locked "
                "unencrypted versions stay until their retention ends (never deleted)"
            )
        if by_state.get(so.ARCHIVED):
            risks.append(
                f"{by_state[so.ARCHIVED]} archived objects (Glacier/Deep Archive) are skipped "
                "and listed: restore them first to re-encrypt them"
            )
        if by_state.get(so.SSE_C):
            risks.append(
                f"{by_state[so.SSE_C]} SSE-C objects cannot be copied without their key: skipped "
                "and listed"
            )
        if by_state.get(so.KMS_ANY) and not self.params.rekey:
            risks.append(
                f"{by_state[so.KMS_ANY]} objects are SSE-KMS (under the target key or another "
                "one, the inventory does not say): left as they are"
            )
        if by_state.get(so.OTHER_KMS) and not self.params.rekey:
            risks.append(
                f"{by_state[so.OTHER_KMS]} objects are under another KMS key: left as they are "
                "(rekey: true moves them to the target key)"
            )
        if bucket["versioning"] != "Disabled":
            old = bucket.get("noncurrent_versions", 0)
            risks.append(
                f"versioned: each copy adds a version, so the old unencrypted data stays stored "
                f"(and billed) until lifecycle expires it; {old} older versions exist and are "
                + (
                    "reported, not re-encrypted"
                    if self.params.noncurrent_versions == "report"
                    else "deleted after approval where an encrypted copy supersedes them"
                )
            )
        if bucket.get("website"):
            risks.append(
                "static website hosting is on: the website endpoint serves anonymous requests, "
                "which cannot read SSE-KMS objects - the site stops working (serve it through "
                "CloudFront with origin access control and kms:Decrypt for it, or exclude it)"
            )
        if bucket["acl_enabled"]:
            risks.append(
                "ACLs are enabled: non-default object ACL grants are re-applied with the copy, "
                "but grants to AllUsers stop working (anonymous requests cannot use KMS); "
                "objects uploaded by another account become owned by this account"
            )
        if bucket["objects"]["over_threshold"]:
            risks.append(
                f"{bucket['objects']['over_threshold']} objects above "
                f"{_size(self.params.multipart_threshold)} use a multipart copy: their ETag "
                "becomes a multipart ETag"
            )
        if not key_known:
            risks.append(
                "the key does not exist yet: who can decrypt with it is checked when it does "
                "(plan again after the key step)"
            )
        elif not facts["key_policy_known"].get(bucket["region"]):
            risks.append(
                "the key policy could not be read (kms:GetKeyPolicy): readers' access to the "
                "key is not checked"
            )
        for reader in bucket.get("readers", []):
            who = reader["principal"]
            if who == "*":
                risks.append(
                    "the bucket policy allows anonymous reads: anonymous requests cannot read "
                    "SSE-KMS objects (a public website or a CDN without signed requests breaks)"
                )
            elif reader["access"] == "none":
                kind = "cross-account reader" if reader["cross_account"] else "reader"
                how = (
                    "was seen reading it in CloudTrail"
                    if reader.get("seen_in") == "CloudTrail"
                    else "may read it by its bucket policy"
                )
                risks.append(
                    f"{kind} {who} {how} (s3://{name}) but the key policy does not allow it "
                    "kms:Decrypt: it loses access (add it to the key policy)"
                )
            elif reader["access"] == "iam":
                seen = " (seen in CloudTrail)" if reader.get("seen_in") == "CloudTrail" else ""
                risks.append(
                    f"reader {who}{seen} needs kms:Decrypt on the key in its own IAM policies "
                    "(the key policy delegates to its account)"
                )
        risks.append(
            "every reader needs kms:Decrypt on the key; readers granted by IAM policies only "
            "are not checked here"
        )
        return risks

    # -- act -------------------------------------------------------------------------------------
    @handles("s3.reencrypt_objects")
    def _reencrypt_objects(self, ctx: StepContext, action: Action) -> Wait | None:
        """Re-encrypt one bucket's objects, resumably (checkpointed per batch)."""
        if not ctx.is_known(self.params.kms_key):
            raise StepFailed(
                f"the KMS key for s3://{action.target} is still {self.params.kms_key}; run the "
                "step that creates it first."
            )
        bucket, region = action.target, action.region or ctx.regions[0]
        target_arn = KeyResolver(ctx, ctx.is_known).arn(self.params.kms_key, region)
        if target_arn is None:
            raise StepFailed(
                f"the KMS key {self.params.kms_key} cannot be found in {region} (the region of "
                f"s3://{bucket}). Check `kms_key` in the playbook and that the key exists there."
            )
        s3 = ctx.client("s3", region)
        # Batch mode keeps its phases in a checkpoint of its own.
        cp = ctx.load_checkpoint("batch" if self.params.mode == "batch" else "main") or {
            "cursor": {},
            "done": 0,
        }
        cursor = dict(cp["cursor"])
        tally = Tally.from_dict(cursor.get("tally"))
        report = ReportFile(report_path(ctx, bucket), int(cursor.get("report_offset", 0)))
        uploads = _UploadTracker(ctx, s3, bucket)
        uploads.abort_leftovers()
        versioned = s3.get_bucket_versioning(Bucket=bucket).get("Status") in (
            "Enabled",
            "Suspended",
        )
        limiter = so.RateLimiter(self.params.max_rps)
        worker = ObjectWorker(
            s3=s3,
            bucket=bucket,
            target_arn=target_arn,
            params=self.params,
            acl_enabled=_acl_enabled(s3, bucket),
            use_update=self._use_update(ctx),
            send=Requests(limiter),
            tally=tally,
            report=report,
            versioned=versioned,
            track_upload=uploads.track,
        )
        if self.params.mode == "batch":
            return self._act_batch(ctx, action, worker, limiter, cursor)
        done = int(cp["done"])
        total = int(action.details.get("objects") or 0) or None
        start_after = str(cursor.get("start_after", ""))
        # Objects that failed in an earlier attempt lie behind the cursor: they go first.
        retry = [{"Key": k} for k in cursor.get("failed_keys", [])]
        tally.counts["failed"] = 0
        tally.samples.pop("failed", None)
        started = time.monotonic()
        bar: Any = ctx.progress(total=total, desc=f"s3://{bucket}", unit="obj")
        bar.update(done)
        moved = 0
        first_done = done

        def save(last_key: str) -> None:
            ctx.checkpoint(
                {
                    "start_after": last_key,
                    "tally": tally.to_dict(),
                    "failed_keys": list(tally.failed_keys),
                    "report_offset": report.offset(),
                },
                done=done,
                total=total,
            )

        pool = ThreadPoolExecutor(max_workers=self.params.concurrency)
        try:
            if retry:
                for fut in [pool.submit(worker, obj) for obj in retry]:
                    moved += fut.result()
                save(start_after)
            for page in _prefetched(self._pages(s3, bucket, start_after)):
                futures: list[Future[int]] = [pool.submit(worker, obj) for obj in page]
                for fut in futures:
                    moved += fut.result()
                    bar.update(1)
                done += len(page)
                elapsed = max(time.monotonic() - started, 1e-6)
                bar.set_postfix_str(
                    f"{(done - first_done) / elapsed:.0f} obj/s, {_size(int(moved / elapsed))}/s",
                    refresh=False,
                )
                save(str(page[-1]["Key"]))
                if tally.counts["failed"] > self.params.max_failures:
                    break
        finally:
            # On Ctrl-C or a fatal error: drop queued objects, let in-flight ones finish.
            pool.shutdown(wait=True, cancel_futures=True)
            bar.close()
        summary = {k: int(v) for k, v in sorted(tally.counts.items())}
        summary["throttled"] = limiter.throttles
        ctx.record_result(**summary)
        if tally.counts["failed"]:
            keys = ", ".join(tally.samples.get("failed", [])[:10])
            raise StepFailed(
                f"s3://{bucket}: {tally.counts['failed']} objects could not be re-encrypted "
                f"(first: {keys}); see {report.path} for the errors. Fix the cause (often "
                "permissions on the object or the key) and `migrate resume`: done objects are "
                "not copied again."
            )
        return None

    def _act_batch(
        self,
        ctx: StepContext,
        action: Action,
        worker: ObjectWorker,
        limiter: so.RateLimiter,
        cursor: dict[str, Any],
    ) -> Wait | None:
        """``mode: batch``: manifests, S3 Batch Operations jobs, a wait, the reconciliation."""
        s3, bucket, tally = worker.s3, worker.bucket, worker.tally
        region = action.region or ctx.regions[0]
        # Objects that failed in the copy lane of an earlier attempt go first.
        retry = [{"Key": k} for k in cursor.get("failed_keys", [])]
        tally.counts["failed"] = 0
        tally.samples.pop("failed", None)
        if retry:
            with ThreadPoolExecutor(max_workers=self.params.concurrency) as pool:
                list(pool.map(worker, retry))

        def acl_headers(key: str) -> dict[str, str]:
            if not worker.acl_enabled:
                return {}
            return so.acl_grant_headers(worker.send(s3.get_object_acl, Bucket=bucket, Key=key))

        lane = sb.BatchLane(
            ctx=ctx,
            s3=s3,
            bucket=bucket,
            region=region,
            target_arn=worker.target_arn,
            params=self.params,
            head=worker.head,
            acl_headers=acl_headers,
            copy_lane=worker,
            tally=tally,
            report=worker.report,
            pages=lambda start_after: self._pages(s3, bucket, start_after),
            use_update=worker.use_update,
        )
        wait = lane.run()
        summary = {k: int(v) for k, v in sorted(tally.counts.items())}
        summary["throttled"] = limiter.throttles
        ctx.record_result(**summary)
        if wait is not None:
            return wait
        if tally.counts["failed"]:
            keys = ", ".join(tally.samples.get("failed", [])[:10])
            raise StepFailed(
                f"s3://{bucket}: {tally.counts['failed']} objects could not be re-encrypted by "
                f"the copy lane (first: {keys}); see {worker.report.path}. Fix the cause and "
                "`migrate resume`: they are retried first."
            )
        return None

    def _pages(self, s3: Any, bucket: str, start_after: str) -> Iterator[list[dict[str, Any]]]:
        """The listing from ``start_after`` on, one page (= one checkpointed batch) at a time."""
        kwargs: dict[str, Any] = {
            "Bucket": bucket,
            "PaginationConfig": {"PageSize": self.params.batch_size},
        }
        if start_after:
            kwargs["StartAfter"] = start_after
        for page in s3.get_paginator("list_objects_v2").paginate(**kwargs):
            contents = list(page.get("Contents", []))
            if contents:
                yield contents

    def _use_update(self, ctx: StepContext) -> bool:
        """UpdateObjectEncryption on AWS itself; never against other endpoints under ``auto``.

        moto 5.2 accepts the request but stores its body as the object (see MOTO.md), so ``auto``
        uses it only when no custom endpoint is configured.
        """
        if self.params.lane == "update":
            return True
        if self.params.lane == "copy":
            return False
        endpoint = ctx.aws.endpoint_url
        return not endpoint or "amazonaws.com" in endpoint

    @handles("s3.delete_superseded_versions")
    def _delete_superseded(self, ctx: StepContext, action: Action) -> None:
        """Delete the versions this run's copies replaced, after checking each copy is there."""
        bucket, region = action.target, action.region or ctx.regions[0]
        if action.details.get("object_lock"):
            raise StepFailed(
                f"s3://{bucket} has Object Lock: locked versions are never deleted by migrate. "
                "Set noncurrent_versions: report for this bucket."
            )
        s3 = ctx.client("s3", region)
        target_arn = KeyResolver(ctx, ctx.is_known).arn(self.params.kms_key, region)
        path = report_path(ctx, bucket)
        if not path.exists() or target_arn is None:
            return
        cp = ctx.load_checkpoint("delete") or {"cursor": {}, "done": 0}
        line_no = int(cp["cursor"].get("line", 0))
        deleted = int(cp["done"])
        with open(path, encoding="utf-8") as handle:
            for index, line in enumerate(handle):
                if index < line_no:
                    continue
                entry = json.loads(line)
                if entry.get("result") == "copied" and entry.get("source_version"):
                    deleted += self._delete_one(s3, bucket, entry, target_arn)
                if index % 200 == 199:
                    ctx.checkpoint({"line": index + 1}, done=deleted, name="delete")
        ctx.checkpoint({"line": 1 << 62}, done=deleted, name="delete")

    @staticmethod
    def _delete_one(s3: Any, bucket: str, entry: dict[str, Any], target_arn: str) -> int:
        key, source = entry["key"], entry["source_version"]
        if source == entry.get("version"):
            return 0
        try:
            copy = s3.head_object(Bucket=bucket, Key=key, VersionId=entry["version"])
        except Exception as exc:
            if error_code(exc) in ("404", "NoSuchKey", "NoSuchVersion", "400"):
                return 0  # the encrypted copy is gone: keep the original
            raise
        if so.classify(copy, target_arn) != so.TARGET:
            return 0
        try:
            s3.delete_object(Bucket=bucket, Key=key, VersionId=source)
        except Exception as exc:
            if error_code(exc) in ("NoSuchVersion", "404"):
                return 0
            raise
        return 1

    # -- verify ----------------------------------------------------------------------------------
    def verify(self, ctx: StepContext) -> None:
        """HEAD a sample (default all) of every bucket's objects: each is under the target key,
        or is one of the kinds that are skipped and reported (SSE-C, archived, other keys)."""
        facts_regions = select_buckets(ctx, self.params)
        resolver = KeyResolver(ctx, ctx.is_known)
        bad: list[str] = []
        checked = 0
        for name, region in facts_regions.items():
            arn = resolver.arn(self.params.kms_key, region)
            if arn is None or arn_region(arn) != region:
                continue
            client = ctx.client("s3", region)
            with ThreadPoolExecutor(max_workers=min(self.params.concurrency, 32)) as pool:
                for page in self._pages(client, name, ""):
                    sample = [o for o in page if so.in_sample(o["Key"], self.params.verify_sample)]
                    states = pool.map(
                        lambda o, c=client, n=name, a=arn: _head_state(c, n, o, a), sample
                    )
                    for obj, state in zip(sample, states, strict=True):
                        checked += 1
                        if so.needs_work(state, self.params.rekey):
                            bad.append(f"s3://{name}/{obj['Key']} ({state})")
        if bad:
            raise StepFailed(
                f"{len(bad)} of {checked} sampled objects are not encrypted with the target key: "
                + ", ".join(bad[:10])
                + ". They were written or changed during the run, or failed; `migrate resume` "
                "re-encrypts them."
            )

    def published(self, ctx: StepContext) -> dict[str, Any]:
        """Counts over the actions of this run (from their recorded results)."""
        reencrypted = skipped = 0
        for result in ctx.action_results():
            reencrypted += sum(int(result.get(k, 0)) for k in ("copied", "updated", "batch_copied"))
            skipped += sum(
                int(result.get(k, 0))
                for k in ("skipped_sse_c", "skipped_archived", "left_other_kms", "skipped_changing")
            )
        return {"objects_reencrypted": reencrypted, "objects_skipped": skipped}

    def rollback(self, ctx: StepContext) -> None:
        """Nothing to undo: objects stay encrypted (older versions, where kept, hold the past)."""
        return None


class _UploadTracker:
    """Multipart uploads in flight, in a checkpoint of their own: a crash leaves none behind."""

    def __init__(self, ctx: StepContext, s3: Any, bucket: str) -> None:
        self.ctx, self.s3, self.bucket = ctx, s3, bucket
        self._lock = threading.Lock()
        saved = ctx.load_checkpoint("uploads")
        self.open: dict[str, str] = dict((saved or {}).get("cursor", {}))

    def abort_leftovers(self) -> None:
        """Abort the uploads a killed run had started (they are ours: their ids were saved)."""
        for upload_id, key in list(self.open.items()):
            try:
                self.s3.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
            except Exception as exc:
                if error_code(exc) not in ("NoSuchUpload", "404"):
                    raise
            self.track(upload_id, key, False)

    def track(self, upload_id: str, key: str, started: bool) -> None:
        """Record an upload as started or finished (committed before any part is copied)."""
        with self._lock:
            if started:
                self.open[upload_id] = key
            else:
                self.open.pop(upload_id, None)
            self.ctx.checkpoint(dict(self.open), done=0, name="uploads")


def _prefetched(pages: Iterator[list[dict[str, Any]]]) -> Iterator[list[dict[str, Any]]]:
    """Fetch the next listing page while the current one is being worked (one page ahead)."""
    with ThreadPoolExecutor(max_workers=1) as lister:
        pending = lister.submit(next, pages, None)
        while True:
            page = pending.result()
            if page is None:
                return
            pending = lister.submit(next, pages, None)
            yield page


def _head_state(s3: Any, bucket: str, obj: dict[str, Any], target_arn: str | None) -> str:
    if obj.get("StorageClass") in so.ARCHIVE_CLASSES:
        return so.ARCHIVED  # known from the listing; a HEAD would say the same
    try:
        head = s3.head_object(Bucket=bucket, Key=obj["Key"])
    except Exception as exc:
        code = error_code(exc)
        if code in ("400", "BadRequest", "InvalidRequest"):
            return so.SSE_C
        if code in ("404", "NoSuchKey", "NotFound"):
            return so.TARGET  # gone since the listing: nothing to re-encrypt
        raise
    return so.classify(head, target_arn)


def _acl_enabled(s3: Any, bucket: str) -> bool:
    """False when Object Ownership is BucketOwnerEnforced (AWS refuses object ACL calls)."""
    try:
        rules = s3.get_bucket_ownership_controls(Bucket=bucket)["OwnershipControls"]["Rules"]
    except Exception as exc:
        if error_code(exc) == "OwnershipControlsNotFoundError":
            return True
        raise
    return not any(r.get("ObjectOwnership") == "BucketOwnerEnforced" for r in rules)


def _notifications(s3: Any, bucket: str) -> list[str]:
    conf = s3.get_bucket_notification_configuration(Bucket=bucket)
    kinds = {
        "TopicConfigurations": "SNS",
        "QueueConfigurations": "SQS",
        "LambdaFunctionConfigurations": "Lambda",
        "EventBridgeConfiguration": "EventBridge",
    }
    return sorted(label for name, label in kinds.items() if name in conf and conf[name] is not None)


def _count_noncurrent(s3: Any, bucket: str) -> int:
    count = 0
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
        count += sum(1 for v in page.get("Versions", []) if not v.get("IsLatest"))
    return count


def _optional(fn: Callable[[], Any], missing: tuple[str, ...], default: Any) -> Any:
    try:
        return fn()
    except Exception as exc:
        if error_code(exc) in missing:
            return default
        raise


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"


def _cloudtrail_readers(ctx: StepContext) -> dict[str, list[str]]:
    """Principals the newest CloudTrail usage report saw reading objects, by bucket.

    Evidence only where it exists: without an ingested report (``cloudtrail.usage``) this is
    empty, and the plan says readers granted by IAM alone are not checked.
    """
    report = ctx.usage_report()
    if report is None:
        return {}
    found: dict[str, set[str]] = {}
    for usage in (*report.keys, *report.sessions):
        principal = usage.owner_arn or usage.principal
        if not principal or not principal.startswith("arn:"):
            continue
        for call in usage.actions:
            if call.iam_action not in ("s3:GetObject", "s3:GetObjectVersion"):
                continue
            for arn in call.resources:
                if arn.startswith("arn:aws:s3:::"):
                    bucket = arn.removeprefix("arn:aws:s3:::").split("/", 1)[0]
                    found.setdefault(bucket, set()).add(principal)
    return {bucket: sorted(names) for bucket, names in found.items()}
