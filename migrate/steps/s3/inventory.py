"""Plan counts from an S3 Inventory report instead of a HEAD per object.

A bucket with an inventory configuration (daily or weekly, CSV, or Parquet where pyarrow is
installed, with the fields Size, StorageClass, ETag and EncryptionStatus, covering the whole
bucket) gets a report delivered to
``<destination bucket>/<prefix>/<source bucket>/<config id>/YYYY-MM-DDTHH-MMZ/manifest.json``.
When the latest such report is younger than ``max_age_h``, the plan counts objects and bytes by
encryption state and storage class from it, streaming the gzip'd CSV files (constant memory) and
checking each file's MD5 from the manifest. Otherwise the reasons are reported and the step falls
back to HEADing a sample. Only read calls are made (List*, Get*), so this runs while planning.

An inventory says ``SSE-KMS`` but not which key: such objects count as ``KMS_ANY``.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import importlib
import io
import json
import re
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from migrate.aws.errors import access_denied, error_code, has_code, not_found
from migrate.steps.s3 import objects as so
from migrate.steps.s3.counts import ObjectCounts

REQUIRED_FIELDS = ("EncryptionStatus", "ETag", "Size", "StorageClass")
ENCRYPTION_STATES = {
    "NOT-SSE": so.UNENCRYPTED,
    "SSE-S3": so.SSE_S3,
    "SSE-KMS": so.KMS_ANY,
    "DSSE-KMS": so.OTHER_KMS,
    "SSE-C": so.SSE_C,
}
ARCHIVE_TIERS = frozenset({"ARCHIVE_ACCESS", "DEEP_ARCHIVE_ACCESS"})
STAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}-\d{2}Z$")
# Parquet column names (snake case) -> the CSV fileSchema names used below.
PARQUET_COLUMNS = {
    "bucket": "Bucket",
    "key": "Key",
    "is_latest": "IsLatest",
    "is_delete_marker": "IsDeleteMarker",
    "size": "Size",
    "storage_class": "StorageClass",
    "encryption_status": "EncryptionStatus",
    "intelligent_tiering_access_tier": "IntelligentTieringAccessTier",
}


def pyarrow_available() -> bool:
    """True when Parquet reports can be read (pyarrow is an optional dependency)."""
    try:
        importlib.import_module("pyarrow.parquet")
    except ImportError:
        return False
    return True


def config_problem(config: Mapping[str, Any], *, parquet_ok: bool) -> str | None:
    """Why an inventory configuration cannot give the plan's counts (None: it can)."""
    if not config.get("IsEnabled"):
        return "disabled"
    prefix = (config.get("Filter") or {}).get("Prefix")
    if prefix:
        return f"covers only the prefix {prefix!r}, not the whole bucket"
    fmt = ((config.get("Destination") or {}).get("S3BucketDestination") or {}).get("Format")
    if fmt == "Parquet" and not parquet_ok:
        return "Parquet report, and pyarrow is not installed (pip install pyarrow to read it)"
    if fmt not in ("CSV", "Parquet"):
        return f"{fmt} report (migrate reads CSV, and Parquet with pyarrow)"
    missing = sorted(set(REQUIRED_FIELDS) - set(config.get("OptionalFields") or ()))
    if missing:
        return f"lacks the fields {', '.join(missing)}"
    return None


def stamp_time(stamp: str) -> datetime:
    """The UTC time of a report folder name such as ``2016-11-06T21-32Z``."""
    return datetime.strptime(stamp, "%Y-%m-%dT%H-%MZ").replace(tzinfo=UTC)


def report_base(prefix: str | None, source_bucket: str, config_id: str) -> str:
    """``<prefix>/<source bucket>/<config id>`` as S3 lays out inventory reports."""
    parts = [p for p in ((prefix or "").strip("/"), source_bucket, config_id) if p]
    return "/".join(parts)


def bucket_name(arn_or_name: str) -> str:
    """``arn:aws:s3:::name`` -> ``name``."""
    return arn_or_name.split(":::", 1)[1] if arn_or_name.startswith("arn:") else arn_or_name


@dataclass(frozen=True)
class Candidate:
    """The latest delivered report of one usable configuration."""

    config_id: str
    fmt: str
    dest_bucket: str
    manifest_key: str
    stamp: str


def list_configs(s3: Any, bucket: str) -> list[dict[str, Any]]:
    """Every inventory configuration of ``bucket`` (paginated by continuation token)."""
    configs: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"Bucket": bucket}
    while True:
        page = s3.list_bucket_inventory_configurations(**kwargs)
        for listed in page.get("InventoryConfigurationList") or []:
            # The GET answer is the authoritative one (moto 5.2's list answer garbles
            # OptionalFields); a bucket has a handful of configurations at most.
            full = s3.get_bucket_inventory_configuration(Bucket=bucket, Id=listed["Id"])
            configs.append(dict(full.get("InventoryConfiguration") or listed))
        token = page.get("NextContinuationToken")
        if not page.get("IsTruncated") or not token:
            return configs
        kwargs["ContinuationToken"] = token


def report_stamps(s3: Any, dest_bucket: str, base: str) -> list[str]:
    """The report folders (``YYYY-MM-DDTHH-MMZ``) under ``base``, newest first."""
    stamps: list[str] = []
    paginator = s3.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=dest_bucket, Prefix=f"{base}/", Delimiter="/"):
        for common in page.get("CommonPrefixes") or []:
            name = str(common["Prefix"])[len(base) + 1 :].rstrip("/")
            if STAMP.match(name):
                stamps.append(name)
    return sorted(stamps, reverse=True)


class _HashingReader(io.RawIOBase):
    """A raw stream over an S3 body that hashes what passes (the manifest's MD5checksum)."""

    def __init__(self, body: Any) -> None:
        self.body = body
        self.md5 = hashlib.md5(usedforsecurity=False)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self.body.read(len(buffer))
        size = len(data)
        buffer[:size] = data
        self.md5.update(data)
        return size

    def drain(self) -> str:
        """Read whatever is left and return the hex digest of the whole body."""
        while self.readinto(bytearray(1 << 16)):
            pass
        return self.md5.hexdigest()


class ReportError(Exception):
    """A report that cannot be read as delivered (missing file, wrong checksum, bad schema)."""


def csv_rows(body: Any, columns: list[str], expected_md5: str | None) -> Iterator[dict[str, str]]:
    """Rows of one gzip'd CSV inventory file, streamed (no header line; keys URL-encoded)."""
    raw = _HashingReader(body)
    with gzip.GzipFile(fileobj=io.BufferedReader(raw, 1 << 20), mode="rb") as unzipped:
        text = io.TextIOWrapper(unzipped, encoding="utf-8", newline="")
        for record in csv.reader(text):
            if record:
                yield dict(zip(columns, record, strict=False))
    digest = raw.drain()
    if expected_md5 and digest != expected_md5:
        raise ReportError(f"checksum mismatch ({digest} != {expected_md5})")


def parquet_rows(body: Any, expected_md5: str | None) -> Iterator[dict[str, str]]:
    """Rows of one Parquet inventory file: spooled to a temporary file (Parquet needs to seek),
    then read a record batch at a time."""
    # Imported by name: pyarrow is optional and has no type stubs here.
    pq: Any = importlib.import_module("pyarrow.parquet")

    raw = _HashingReader(body)
    with tempfile.TemporaryFile() as spool:
        while chunk := raw.read(1 << 20):
            spool.write(chunk)
        digest = raw.md5.hexdigest()
        if expected_md5 and digest != expected_md5:
            raise ReportError(f"checksum mismatch ({digest} != {expected_md5})")
        spool.seek(0)
        parquet = pq.ParquetFile(spool)
        wanted = [c for c in PARQUET_COLUMNS if c in parquet.schema_arrow.names]
        for batch in parquet.iter_batches(batch_size=65_536, columns=wanted):
            for record in batch.to_pylist():
                yield {
                    PARQUET_COLUMNS[name]: ""
                    if value is None
                    else str(value).lower()
                    if isinstance(value, bool)
                    else str(value)
                    for name, value in record.items()
                }


def state_of(row: Mapping[str, str]) -> str:
    """The encryption state of an inventory row, in the terms of :func:`s3_objects.classify`."""
    encryption = row.get("EncryptionStatus") or "NOT-SSE"
    if encryption == "SSE-C":
        return so.SSE_C
    storage = row.get("StorageClass") or "STANDARD"
    if storage in so.ARCHIVE_CLASSES or row.get("IntelligentTieringAccessTier") in ARCHIVE_TIERS:
        return so.ARCHIVED  # the report does not say whether it is restored: skipped either way
    # An unknown value counts as work: the run HEADs every object before touching it anyway.
    return ENCRYPTION_STATES.get(encryption, so.UNENCRYPTED)


def tally_rows(
    rows: Iterable[Mapping[str, str]],
    *,
    multipart_threshold: int,
    part_size: int,
) -> dict[str, Any]:
    """Count current objects and bytes by state and storage class (same keys as a HEAD scan)."""
    counts = ObjectCounts(multipart_threshold=multipart_threshold, part_size=part_size)
    for row in rows:
        # Reports of all versions have IsLatest/IsDeleteMarker: only current objects count.
        if (row.get("IsLatest") or "true").lower() != "true" or (
            row.get("IsDeleteMarker") or "false"
        ).lower() == "true":
            continue
        counts.add(int(row.get("Size") or 0), row.get("StorageClass"), state_of(row))
    return counts.to_facts()


def _manifest(s3: Any, candidate: Candidate) -> dict[str, Any]:
    body = s3.get_object(Bucket=candidate.dest_bucket, Key=candidate.manifest_key)["Body"]
    return dict(json.loads(body.read()))


def read_report(
    s3: Any, candidate: Candidate, *, multipart_threshold: int, part_size: int
) -> dict[str, Any]:
    """Count the objects of one delivered report; raises :class:`ReportError` if unusable."""
    try:
        manifest = _manifest(s3, candidate)
    except ClientError as exc:
        if not_found(exc):
            raise ReportError("manifest.json is missing (delivery in progress?)") from None
        raise
    fmt = str(manifest.get("fileFormat") or "")
    if fmt != candidate.fmt:
        raise ReportError(f"manifest says {fmt}, the configuration {candidate.fmt}")
    columns = [c.strip() for c in str(manifest.get("fileSchema") or "").split(",")]
    if fmt == "CSV" and not {"Key", "Size", "StorageClass", "EncryptionStatus"} <= set(columns):
        raise ReportError(f"the report's fileSchema lacks fields: {manifest.get('fileSchema')}")
    files = list(manifest.get("files") or [])

    def rows() -> Iterator[dict[str, str]]:
        for entry in files:
            try:
                body = s3.get_object(Bucket=candidate.dest_bucket, Key=entry["key"])["Body"]
            except ClientError as exc:
                if not_found(exc):
                    raise ReportError(f"data file {entry['key']} is missing") from None
                raise
            md5 = entry.get("MD5checksum")
            try:
                if fmt == "CSV":
                    yield from csv_rows(body, columns, md5)
                else:
                    yield from parquet_rows(body, md5)
            except ReportError as exc:
                raise ReportError(f"data file {entry['key']}: {exc}") from None
            except (OSError, EOFError, csv.Error, UnicodeDecodeError) as exc:
                raise ReportError(f"data file {entry['key']} is unreadable ({exc})") from None

    counts = tally_rows(
        rows(),
        multipart_threshold=multipart_threshold,
        part_size=part_size,
    )
    counts["source"] = "inventory"
    counts["inventory"] = {
        "config_id": candidate.config_id,
        "date": candidate.stamp,
        "format": fmt,
        "manifest": f"s3://{candidate.dest_bucket}/{candidate.manifest_key}",
        "files": len(files),
    }
    return counts


def find_candidates(
    s3: Any,
    bucket: str,
    client_for_bucket: Callable[[str], Any],
    *,
    now: datetime,
    max_age_h: float,
) -> tuple[list[Candidate], list[str]]:
    """Fresh reports of the bucket's usable configurations (newest first), and why the others
    were not used (``"<config id>: <reason>"``)."""
    try:
        configs = list_configs(s3, bucket)
    except ClientError as exc:
        if access_denied(exc) or has_code(exc, "NoSuchConfiguration", "NotImplemented", "501"):
            return [], [f"inventory configurations cannot be listed ({error_code(exc)})"]
        raise
    parquet_ok = pyarrow_available()
    candidates: list[Candidate] = []
    skipped: list[str] = []
    for config in sorted(configs, key=lambda c: str(c.get("Id"))):
        config_id = str(config.get("Id"))
        problem = config_problem(config, parquet_ok=parquet_ok)
        if problem:
            skipped.append(f"{config_id}: {problem}")
            continue
        dest = config["Destination"]["S3BucketDestination"]
        dest_bucket = bucket_name(str(dest["Bucket"]))
        base = report_base(dest.get("Prefix"), bucket, config_id)
        try:
            reader = client_for_bucket(dest_bucket)
            stamps = report_stamps(reader, dest_bucket, base)
        except ClientError as exc:
            if access_denied(exc) or not_found(exc) or has_code(exc, "AllAccessDisabled"):
                code = error_code(exc)
                skipped.append(f"{config_id}: s3://{dest_bucket}/{base}/ cannot be read ({code})")
                continue
            raise
        if not stamps:
            skipped.append(f"{config_id}: no report delivered yet under s3://{dest_bucket}/{base}/")
            continue
        age_h = (now - stamp_time(stamps[0])).total_seconds() / 3600
        if age_h > max_age_h:
            skipped.append(
                f"{config_id}: the latest report ({stamps[0]}) is older than {max_age_h:g} h"
            )
            continue
        candidates.append(
            Candidate(
                config_id=config_id,
                fmt=str(dest.get("Format")),
                dest_bucket=dest_bucket,
                manifest_key=f"{base}/{stamps[0]}/manifest.json",
                stamp=stamps[0],
            )
        )
    candidates.sort(key=lambda c: c.stamp, reverse=True)
    return candidates, skipped


def observe_from_inventory(
    s3: Any,
    bucket: str,
    client_for_bucket: Callable[[str], Any],
    *,
    now: datetime,
    max_age_h: float,
    multipart_threshold: int,
    part_size: int,
) -> tuple[dict[str, Any] | None, list[str]]:
    """The plan's object counts from the freshest usable report (None if there is none), and
    the reasons the bucket's other inventory configurations or reports were not used."""
    candidates, skipped = find_candidates(
        s3, bucket, client_for_bucket, now=now, max_age_h=max_age_h
    )
    for candidate in candidates:
        reader = client_for_bucket(candidate.dest_bucket)
        try:
            counts = read_report(
                reader, candidate, multipart_threshold=multipart_threshold, part_size=part_size
            )
        except ReportError as exc:
            skipped.append(f"{candidate.config_id}: report {candidate.stamp}: {exc}")
            continue
        return counts, skipped
    return None, skipped
