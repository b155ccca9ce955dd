"""Pure helpers for per-object S3 work: what state an object's encryption is in, which request
re-encrypts it without losing anything, ACL grants as headers, a rate limiter that backs off on
throttling, and cost estimates (who can read a bucket is in ``readers``).

Nothing here calls AWS; ``s3_reencrypt`` does, and the unit tests exercise these functions alone.
"""

from __future__ import annotations

import hashlib
import math
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from migrate.aws.errors import throttled

# Encryption states of an object, as the plan counts them and the report lists them.
TARGET = "target"  # aws:kms with the target key: nothing to do
UNENCRYPTED = "unencrypted"
SSE_S3 = "sse-s3"
OTHER_KMS = "other-kms"  # aws:kms (or DSSE) under another key
SSE_C = "sse-c"  # cannot be copied without the customer's key
ARCHIVED = "archived"  # Glacier Flexible Retrieval / Deep Archive / Intelligent-Tiering archive
# SSE-KMS under a key nobody named: an S3 Inventory report says "SSE-KMS" but not which key, so
# plan counts from a report use this state (the target key or another one; HEAD tells them apart).
KMS_ANY = "kms-key-unknown"
# HEAD refused (a bucket policy or the object's ACL denies the migrator): its encryption is
# unknown, so the bucket is not compliant; the run lists it with the fix (skipped_access_denied).
DENIED = "access-denied"
STATES = (TARGET, UNENCRYPTED, SSE_S3, OTHER_KMS, SSE_C, ARCHIVED, KMS_ANY, DENIED)

ARCHIVE_CLASSES = frozenset({"GLACIER", "DEEP_ARCHIVE"})
ALL_USERS = "http://acs.amazonaws.com/groups/global/AllUsers"
AUTH_USERS = "http://acs.amazonaws.com/groups/global/AuthenticatedUsers"

# Content headers that a copy with MetadataDirective=COPY keeps and a multipart upload must set.
CONTENT_HEADERS = (
    "ContentType",
    "CacheControl",
    "ContentDisposition",
    "ContentEncoding",
    "ContentLanguage",
    "Expires",
)
# us-east-1 list prices (USD), for rough plan estimates only.
PRICE_WRITE_PER_1000 = 0.005  # PUT, COPY, POST, LIST
PRICE_READ_PER_1000 = 0.0004  # GET, HEAD
PRICE_KMS_PER_10000 = 0.03
FIVE_GB = 5 * 1024**3


def classify(head: Mapping[str, Any], target_arn: str | None, *, ssec: bool = False) -> str:
    """The encryption state of an object from its HEAD response.

    ``target_arn`` None means the target key is not known yet (planning before the key exists):
    every KMS-encrypted object then counts as ``other-kms``. ``ssec`` is True when the HEAD was
    refused because the object is SSE-C (AWS answers 400 without the customer key).
    """
    if ssec or head.get("SSECustomerAlgorithm"):
        return SSE_C
    storage = head.get("StorageClass") or "STANDARD"
    restore = str(head.get("Restore") or "")
    restored = 'ongoing-request="false"' in restore
    if (storage in ARCHIVE_CLASSES or head.get("ArchiveStatus")) and not restored:
        return ARCHIVED
    algorithm = head.get("ServerSideEncryption")
    if algorithm in ("aws:kms", "aws:kms:dsse"):
        key = head.get("SSEKMSKeyId")
        if target_arn and algorithm == "aws:kms" and key_matches(key, target_arn):
            return TARGET
        return OTHER_KMS
    if algorithm == "AES256":
        return SSE_S3
    return UNENCRYPTED


def key_matches(key: str | None, target_arn: str) -> bool:
    """True when ``key`` (an ARN or a bare key id, as S3 reports it) is the target key."""
    if not key:
        return False
    return key == target_arn or target_arn.endswith(f":key/{key}")


def needs_work(state: str, rekey: bool) -> bool:
    """Whether an object in ``state`` is re-encrypted (the others are left and reported).

    ``KMS_ANY`` (from an inventory report) counts as work under ``rekey``: an upper bound, as
    the objects already under the target key among them are only found out by their HEAD.
    """
    return state in (UNENCRYPTED, SSE_S3) or (state in (OTHER_KMS, KMS_ANY) and rekey)


def bucket_owner_canonical_id(acl: Mapping[str, Any]) -> str | None:
    """The canonical id of the ACL's owner."""
    owner = acl.get("Owner") or {}
    value = owner.get("ID")
    return str(value) if value else None


def acl_grant_headers(acl: Mapping[str, Any]) -> dict[str, str]:
    """An object ACL as the ``Grant*`` parameters of CopyObject/CreateMultipartUpload.

    Returns {} for the default ACL (the owner alone with FULL_CONTROL), which the copy recreates by
    itself. Otherwise every grant is carried, the owner's FULL_CONTROL included: a ``Grant*`` header
    replaces the whole ACL. The header form is used because it keeps group grantees (AllUsers),
    which AWS accepts in both forms.
    """
    owner = bucket_owner_canonical_id(acl)
    grants = list(acl.get("Grants") or [])
    default = (
        len(grants) == 1
        and _grantee_id(grants[0]) == owner
        and (grants[0].get("Permission") == "FULL_CONTROL")
    )
    if not grants or default:
        return {}
    by_permission: dict[str, list[str]] = {}
    for grant in grants:
        spec = _grantee_spec(grant.get("Grantee") or {})
        if spec is None:
            continue
        by_permission.setdefault(str(grant.get("Permission")), []).append(spec)
    names = {
        "FULL_CONTROL": "GrantFullControl",
        "READ": "GrantRead",
        "READ_ACP": "GrantReadACP",
        "WRITE_ACP": "GrantWriteACP",
    }
    # WRITE on an object means nothing to S3; it is dropped rather than sent.
    return {
        names[perm]: ", ".join(sorted(set(specs)))
        for perm, specs in sorted(by_permission.items())
        if perm in names
    }


PUBLIC_GRANTEES = (f'uri="{ALL_USERS}"', f'uri="{AUTH_USERS}"')


def without_public_grants(headers: Mapping[str, str]) -> tuple[dict[str, str], list[str]]:
    """The ``Grant*`` headers minus grants to AllUsers/AuthenticatedUsers, and those dropped
    (``GrantRead uri=".../AllUsers"``). Block Public Access's BlockPublicAcls makes S3 refuse
    any request that carries them."""
    kept: dict[str, str] = {}
    dropped: list[str] = []
    for name, value in headers.items():
        specs = [spec.strip() for spec in value.split(",") if spec.strip()]
        public = [spec for spec in specs if spec in PUBLIC_GRANTEES]
        dropped.extend(f"{name} {spec}" for spec in public)
        rest = [spec for spec in specs if spec not in public]
        if rest:
            kept[name] = ", ".join(rest)
    return kept, dropped


def _grantee_id(grant: Mapping[str, Any]) -> str | None:
    grantee = grant.get("Grantee") or {}
    value = grantee.get("ID")
    return str(value) if value else None


def _grantee_spec(grantee: Mapping[str, Any]) -> str | None:
    if grantee.get("ID"):
        return f'id="{grantee["ID"]}"'
    if grantee.get("URI"):
        return f'uri="{grantee["URI"]}"'
    if grantee.get("EmailAddress"):
        return f'emailAddress="{grantee["EmailAddress"]}"'
    return None


def encryption_params(target_arn: str, bucket_key: bool) -> dict[str, Any]:
    """The SSE-KMS parameters of a copy or multipart upload."""
    return {
        "ServerSideEncryption": "aws:kms",
        "SSEKMSKeyId": target_arn,
        "BucketKeyEnabled": bucket_key,
    }


def preserved_params(head: Mapping[str, Any], now: datetime | None = None) -> dict[str, Any]:
    """What a copy must name explicitly to keep it: storage class, website redirect, lock.

    MetadataDirective=COPY keeps user metadata and content headers, TaggingDirective=COPY keeps
    tags; the storage class, the website redirect (AWS does not copy it under COPY) and Object
    Lock settings must be given again. Retention is given only while it still runs (AWS refuses
    a retain-until date in the past); a legal hold is always kept. HEAD returns the lock state
    only to a caller with s3:GetObjectRetention and s3:GetObjectLegalHold (in the permissions).
    """
    params: dict[str, Any] = {"StorageClass": head.get("StorageClass") or "STANDARD"}
    if head.get("WebsiteRedirectLocation"):
        params["WebsiteRedirectLocation"] = head["WebsiteRedirectLocation"]
    if (
        head.get("ObjectLockMode")
        and head.get("ObjectLockRetainUntilDate")
        and _as_time(head["ObjectLockRetainUntilDate"]) > (now or datetime.now(UTC))
    ):
        params["ObjectLockMode"] = head["ObjectLockMode"]
        params["ObjectLockRetainUntilDate"] = head["ObjectLockRetainUntilDate"]
    if head.get("ObjectLockLegalHoldStatus") == "ON":
        params["ObjectLockLegalHoldStatus"] = "ON"
    return params


def _as_time(value: Any) -> datetime:
    """A retain-until date as botocore parses it (datetime) or as text (ISO 8601)."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def multipart_create_params(head: Mapping[str, Any]) -> dict[str, Any]:
    """Everything CreateMultipartUpload needs to recreate the object's headers and metadata."""
    params = {name: head[name] for name in CONTENT_HEADERS if head.get(name) is not None}
    params["Metadata"] = dict(head.get("Metadata") or {})
    params.update(preserved_params(head))
    return params


def part_ranges(size: int, part_size: int) -> list[tuple[int, int]]:
    """Inclusive byte ranges for a multipart copy (at most 10,000 parts, each >= 5 MiB but last)."""
    if size <= 0:
        return [(0, -1)]
    part = max(part_size, 5 * 1024**2, math.ceil(size / 10_000))
    return [(start, min(start + part, size) - 1) for start in range(0, size, part)]


def tagging_query(tags: Iterable[Mapping[str, str]]) -> str:
    """A TagSet as the URL-encoded ``Tagging`` parameter of CreateMultipartUpload."""
    from urllib.parse import urlencode

    return urlencode([(t["Key"], t.get("Value", "")) for t in tags])


def is_throttle(exc: BaseException) -> bool:
    """True for S3/KMS throttling (SlowDown, ThrottlingException, 503)."""
    if not isinstance(exc, ClientError):
        return False
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return throttled(exc) or status == 503


def in_sample(key: str, fraction: float) -> bool:
    """Deterministic sampling: the same keys are chosen on every run (hash of the key)."""
    if fraction >= 1.0:
        return True
    if fraction <= 0.0:
        return False
    digest = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big")
    return digest / 2**64 < fraction


class RateLimiter:
    """A token bucket shared by all workers, with AIMD on throttling.

    ``acquire`` blocks until a request may go. ``on_throttle`` halves the rate (multiplicative
    decrease, floor ``min_rps``); every ``on_success`` adds ``increase_per_s / rate`` so the rate
    climbs back by about ``increase_per_s`` requests/s each second (additive increase) up to
    ``max_rps``. ``max_rps`` 0 means unlimited until the first throttle.
    """

    def __init__(
        self,
        max_rps: float,
        *,
        min_rps: float = 1.0,
        increase_per_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.max_rps = float(max_rps)
        self.min_rps = min_rps
        self.increase_per_s = increase_per_s
        self.rate = self.max_rps
        self.throttles = 0
        self._clock = clock
        self._sleep = sleep
        self._next = clock()
        self._lock = threading.Lock()

    def acquire(self) -> None:
        """Wait for the next request slot."""
        if self.rate <= 0:
            return
        with self._lock:
            now = self._clock()
            slot = max(self._next, now)
            # A burst of at most one second's worth after an idle period, not more.
            self._next = max(slot, now - 1.0) + 1.0 / self.rate
            delay = slot - now
        if delay > 0:
            self._sleep(delay)

    def on_success(self) -> None:
        """Additive increase towards ``max_rps``."""
        if self.rate <= 0 or (self.max_rps > 0 and self.rate >= self.max_rps):
            return
        with self._lock:
            self.rate += self.increase_per_s / max(self.rate, 1.0)
            if self.max_rps > 0:
                self.rate = min(self.rate, self.max_rps)

    def on_throttle(self, observed_rps: float | None = None) -> None:
        """Multiplicative decrease (an unlimited limiter starts from what it observed)."""
        with self._lock:
            self.throttles += 1
            base = self.rate if self.rate > 0 else (observed_rps or 100.0)
            self.rate = max(self.min_rps, base / 2)
            if self.max_rps <= 0:
                self.max_rps = base


@dataclass(frozen=True)
class Costs:
    """Rough request counts and cost of re-encrypting a bucket."""

    requests: int
    write_requests: int
    read_requests: int
    kms_requests: int
    cost_usd: float
    duration_s: float


def estimate_costs(
    *,
    objects: int,
    multipart_objects: int,
    multipart_parts: int,
    acl_reads: bool,
    update_lane_objects: int,
    bucket_key: bool,
    max_rps: float,
    list_pages: int,
) -> Costs:
    """Requests, KMS calls, list-price cost and duration for one bucket.

    Per object: HEAD + (GetObjectAcl where ACLs are enabled) + CopyObject, or HEAD +
    UpdateObjectEncryption; multipart objects add GetObjectTagging, Create/Complete and one
    UploadPartCopy per part. KMS: one GenerateDataKey per object without bucket keys; with bucket
    keys S3 reuses a data key for a while, estimated here as one call per 1,000 objects.
    """
    single = max(0, objects - multipart_objects)
    reads = objects + list_pages + multipart_objects
    if acl_reads:
        reads += objects - update_lane_objects
    writes = single + multipart_objects * 2 + multipart_parts
    kms = objects if not bucket_key else math.ceil(objects / 1000)
    requests = reads + writes
    cost = (
        writes / 1000 * PRICE_WRITE_PER_1000
        + reads / 1000 * PRICE_READ_PER_1000
        + kms / 10000 * PRICE_KMS_PER_10000
    )
    duration = requests / max_rps if max_rps > 0 else requests / 100.0
    return Costs(requests, writes, reads, kms, round(cost, 4), round(duration, 1))
