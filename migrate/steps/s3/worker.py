"""The per-object worker of ``s3.reencrypt``: HEAD, then copy in place (or update) one object.

Requests go through :class:`Requests` (the shared rate limiter, backing off on throttling); what
happened to each object goes into the bucket ledger (:mod:`migrate.steps.s3.ledger`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError

from migrate.aws.errors import access_denied, error_code, has_code, not_found, precondition_failed
from migrate.errors import StepFailed
from migrate.steps.s3 import objects as so
from migrate.steps.s3.ledger import ReportFile, Tally
from migrate.steps.s3.params import ReencryptParams

# Answers meaning "UpdateObjectEncryption is not available here" (region, endpoint): the whole
# bucket goes to the copy lane.
UPDATE_UNAVAILABLE = frozenset({"NotImplemented", "MethodNotAllowed", "501", "405"})
# Answers that may be about one object (its lock, its key's policy, a permission scoped to a
# prefix): that object goes to the copy lane, the next one is tried again.
UPDATE_REFUSED = frozenset({"AccessDenied", "InvalidRequest", "403", "400"})
# So many refusals in a row, with no success, say the identity cannot update at all.
REFUSALS_BEFORE_SWITCH = 25


# Objects the step leaves as they are, by result label, with what would handle them; they are
# listed in the plan, the run's results and the report file, and never fail the bucket.
RESIDUAL_FIXES = {
    "skipped_sse_c": "SSE-C: S3 cannot copy it without the customer's key; copy it with the key "
    "(aws s3 cp --sse-c-copy-source ... --sse aws:kms) or leave it",
    "skipped_archived": "archived: restore it (aws s3api restore-object) and run again; SSE-S3 "
    "objects are moved without a restore by the update lane on AWS (lane: auto)",
    "left_other_kms": "under another KMS key: set rekey: true to move it to the target key",
    "skipped_changing": "rewritten twice while the step worked on it: run again",
    "skipped_null_version": "versioning is Suspended and an older version has the id null: "
    "enable versioning on the bucket and run again",
    "skipped_public_acl": "public ACL grants in force under BlockPublicAcls: remove them or "
    "turn IgnorePublicAcls on, and run again",
    "skipped_access_denied": "AccessDenied: grant the migrator s3:GetObject/s3:PutObject on it "
    "and kms:Decrypt on its key (`migrate permissions PLAYBOOK`), and run again",
}


def ssec_refused(exc: BaseException) -> bool:
    """True for AWS's answer to a HEAD of an SSE-C object without the customer key (400)."""
    return has_code(exc, "400", "BadRequest", "InvalidRequest")


def update_lane_usable(params: ReencryptParams, endpoint_url: str | None) -> bool:
    """UpdateObjectEncryption on AWS itself; never against other endpoints under ``auto``.

    moto 5.2 accepts the request but stores its body as the object (see MOTO.md), so ``auto``
    uses it only when no custom endpoint is configured.
    """
    if params.lane == "update":
        return True
    if params.lane == "copy":
        return False
    return not endpoint_url or "amazonaws.com" in endpoint_url


def head_state(s3: Any, bucket: str, obj: dict[str, Any], target_arn: str | None) -> str:
    """The encryption state of a listed object (its HEAD, unless the listing already says)."""
    if obj.get("StorageClass") in so.ARCHIVE_CLASSES:
        return so.ARCHIVED  # known from the listing; a HEAD would say the same
    try:
        head = s3.head_object(Bucket=bucket, Key=obj["Key"])
    except ClientError as exc:
        if ssec_refused(exc):
            return so.SSE_C
        if not_found(exc):
            return so.TARGET  # gone since the listing: nothing to re-encrypt
        if access_denied(exc):
            return so.DENIED  # one object refused is not the bucket refused
        raise
    return so.classify(head, target_arn)


class CopyNotEncrypted(Exception):
    """S3 answered a copy with another encryption than the target key (counted as failed)."""


class _PublicGrantsInForce(Exception):
    """An object's public ACL grants are effective and BlockPublicAcls refuses to copy them."""

    def __init__(self, grants: list[str]) -> None:
        super().__init__(", ".join(grants))
        self.grants = grants


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
            except ClientError as exc:
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
        null_version_keys: frozenset[str] = frozenset(),
        public_access_block: dict[str, bool] | None = None,
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
        # Versioning Suspended: keys whose noncurrent versions include ``null``; a copy would
        # become the new ``null`` version and destroy that older one (see settings.py).
        self.null_version_keys = null_version_keys
        self.public_access_block = public_access_block or {}
        self._refusals = 0  # update-lane refusals in a row (see _try_update)

    # -- per object ------------------------------------------------------------------------------
    def head(self, key: str) -> tuple[dict[str, Any] | None, bool]:
        """HEAD the object: (response or None if gone, True if it is SSE-C)."""
        try:
            return dict(self.send(self.s3.head_object, Bucket=self.bucket, Key=key)), False
        except ClientError as exc:
            if not_found(exc):
                return None, False
            if ssec_refused(exc):
                return None, True
            raise

    def __call__(self, listed: dict[str, Any]) -> int:
        """Process one listed object; return the bytes copied (for the progress bar)."""
        key = str(listed["Key"])
        try:
            return self._process(key, listed.get("ETag"))
        except StepFailed:
            raise
        except ClientError as exc:
            if not access_denied(exc):
                self._failed(key, exc)
                return 0
            # Not ours to read or write (an object another account uploaded, a deny on a prefix
            # or on its key): a residual with its reason, not a failure of the bucket.
            self.tally.add("skipped_access_denied", key=key)
            self.report.write(
                {
                    "key": key,
                    "result": "skipped_access_denied",
                    "error": f"{error_code(exc)} on {getattr(exc, 'operation_name', 'a call')}",
                    "reason": RESIDUAL_FIXES["skipped_access_denied"],
                }
            )
            return 0
        except Exception as exc:
            self._failed(key, exc)
            return 0

    def _failed(self, key: str, exc: BaseException) -> None:
        """Count one object as failed (retried first by the next attempt)."""
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
        # UpdateObjectEncryption re-encrypts an archived object's data key without a restore
        # (the data is not read); a refusal leaves it skipped as before.
        if (
            state == so.ARCHIVED
            and self.use_update
            and self._archived_updatable(head)
            and self._try_update(key, head)
        ):
            self.tally.add("updated")
            self.tally.add("archived_updated", key=key)
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
                self.tally.add("updated")  # no new version: nothing else is touched
                return 0
            if key in self.null_version_keys:
                self.tally.add("skipped_null_version", key=key)
                self.report.write(
                    {
                        "key": key,
                        "result": "skipped_null_version",
                        "reason": "versioning is Suspended and an older version has the id "
                        "null: an in-place copy would replace it. Enable versioning on the "
                        "bucket and run again to re-encrypt this object.",
                    }
                )
                return 0
            if size > self.params.multipart_threshold:
                self._multipart(key, head)
                self.tally.add("multipart_copied", key=key)
            else:
                self._copy(key, head)
            self.tally.add("copied")
            self.tally.add("bytes_copied", size)
            return size
        except _PublicGrantsInForce as exc:
            self.tally.add("skipped_public_acl", key=key)
            self.report.write(
                {
                    "key": key,
                    "result": "skipped_public_acl",
                    "grants": exc.grants,
                    "reason": "the bucket blocks public ACLs (BlockPublicAcls) but does not ignore "
                    "them (IgnorePublicAcls off): these grants are in force and S3 refuses a "
                    "copy that keeps them. Remove the grants (or turn IgnorePublicAcls on) and "
                    "run again.",
                }
            )
            return 0
        except ClientError as exc:
            if (precondition_failed(exc) or has_code(exc, "ConditionalRequestConflict")) and retry:
                # Rewritten between our HEAD and the copy: look again and re-encrypt what is
                # there now (once); the newer content is never overwritten by what we saw.
                self.tally.add("changed_during_copy", key=key)
                return self._process(key, None, retry=False)
            if precondition_failed(exc) or has_code(exc, "ConditionalRequestConflict"):
                self.tally.add("skipped_changing", key=key)
                self.report.write({"key": key, "result": "skipped-changing-concurrently"})
                return 0
            raise

    def acl_grants(self, key: str) -> dict[str, str]:
        """The object's non-default ACL grants as ``Grant*`` headers ({} for none)."""
        if not self.acl_enabled:
            return {}  # BucketOwnerEnforced: AWS refuses ACL calls; the bucket policy governs
        acl = self.send(self.s3.get_object_acl, Bucket=self.bucket, Key=key)
        return so.acl_grant_headers(acl)

    def _acl_headers(self, key: str) -> dict[str, str]:
        headers = self.acl_grants(key)
        if headers and self.public_access_block.get("BlockPublicAcls"):
            headers, dropped = so.without_public_grants(headers)
            if dropped:
                if not self.public_access_block.get("IgnorePublicAcls"):
                    # The grants are in force, and S3 refuses a copy that keeps them: dropping
                    # them would change who can read the object. Leave it as it is.
                    raise _PublicGrantsInForce(dropped)
                # IgnorePublicAcls: S3 already ignores these grants, so dropping them changes
                # nobody's access, and BlockPublicAcls would refuse the copy that kept them.
                self.tally.add("public_grants_dropped", key=key)
                self.report.write(
                    {
                        "key": key,
                        "result": "public-acl-grants-dropped",
                        "grants": dropped,
                        "reason": "Block Public Access (BlockPublicAcls) refuses them and "
                        "IgnorePublicAcls already makes them ineffective",
                    }
                )
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
            # The destination is the source; its own condition also covers a write landing
            # between S3 reading the source and storing the copy.
            IfMatch=head["ETag"],
            MetadataDirective="COPY",
            TaggingDirective="COPY",
            **so.encryption_params(self.target_arn, self.params.bucket_key),
            **so.preserved_params(head),
            **self._acl_headers(key),
        )
        self._record_version(key, head, response)

    def _check_encrypted(self, key: str, response: dict[str, Any]) -> None:
        """The write's own response says how S3 stored the new object: that is the
        verification of this object (a HEAD afterwards would only repeat it)."""
        algorithm = response.get("ServerSideEncryption")
        if algorithm is None:
            return  # not said (an endpoint that omits it): the verification sample looks
        if algorithm != "aws:kms" or not so.key_matches(
            response.get("SSEKMSKeyId"), self.target_arn
        ):
            self.tally.add("copy_not_encrypted", key=key)
            raise CopyNotEncrypted(
                f"s3://{self.bucket}/{key}: S3 stored the copy as {algorithm} "
                f"{response.get('SSEKMSKeyId') or ''}".strip()
            )

    def _record_version(self, key: str, head: dict[str, Any], response: dict[str, Any]) -> None:
        self._check_encrypted(key, response)
        if self.versioned and response.get("VersionId"):
            self.report.write(
                {
                    "key": key,
                    "result": "copied",
                    "version": response.get("VersionId"),
                    "source_version": response.get("CopySourceVersionId") or head.get("VersionId"),
                }
            )

    def _archived_updatable(self, head: dict[str, Any]) -> bool:
        """An archived object the update lane can move: SSE-S3, or SSE-KMS under another key
        with ``rekey`` (UpdateObjectEncryption only changes encrypted objects)."""
        algorithm = head.get("ServerSideEncryption")
        return algorithm == "AES256" or (algorithm == "aws:kms" and self.params.rekey)

    def _try_update(self, key: str, head: dict[str, Any]) -> bool:
        """UpdateObjectEncryption; False when this object must take the copy lane instead.

        Under ``lane: auto``, an endpoint that does not implement it switches the whole bucket
        to the copy lane; a refusal that may concern this object alone (Object Lock, a key or
        prefix the identity may not use) sends only this object there, until
        ``REFUSALS_BEFORE_SWITCH`` refusals in a row show the identity cannot update at all.
        """
        try:
            self._update(key, head)
        except ClientError as exc:
            if self.params.lane != "auto":
                raise
            if has_code(exc, *UPDATE_UNAVAILABLE):
                self.use_update = False
                self.tally.add("update_fallback", key=key)
                return False
            if not has_code(exc, *UPDATE_REFUSED):
                raise
            self.tally.add("update_refused", key=key)
            with self.tally.lock:
                self._refusals += 1
                if self._refusals >= REFUSALS_BEFORE_SWITCH:
                    self.use_update = False
            if not self.use_update:
                self.tally.add("update_fallback", key=key)
            return False
        self._refusals = 0
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
                # An application PUT after our HEAD must not be replaced by the older bytes
                # the parts were copied from: S3 answers 412 and the object is re-examined.
                IfMatch=head["ETag"],
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
