"""s3.reencrypt's plan counts from an S3 Inventory report, against the moto server.

moto stores inventory configurations (put/get/list_bucket_inventory_configuration work) but
never delivers a report. The tests write the report themselves into a moto bucket, in AWS's
layout and format: ``<prefix>/<source>/<config id>/YYYY-MM-DDTHH-MMZ/manifest.json`` (fields
sourceBucket, destinationBucket, version, creationTimestamp, fileFormat, fileSchema,
files[key, size, MD5checksum]) naming gzip'd CSV files under ``.../data/`` whose rows have every
field quoted and no header line.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from migrate import commands
from migrate.commands import Settings
from migrate.sandbox.server import SandboxServer, is_mutating_request
from migrate.steps.s3 import objects as so
from tests.conftest import write_playbook

SOURCE = "inv-source"
DEST = "inv-reports"
FIELDS = ["Size", "StorageClass", "ETag", "EncryptionStatus"]
SCHEMA = ["Bucket", "Key", "Size", "StorageClass", "ETag", "EncryptionStatus"]


def _book(tmp_path: Path, **with_: Any) -> str:
    step = {"names": [SOURCE], "kms_key": "{{ steps.kms.key_arn }}", "lane": "copy", **with_}
    doc = {
        "name": "inventory test",
        "steps": [
            {"id": "kms", "uses": "kms.ensure_key"},
            {"id": "reencrypt", "uses": "s3.reencrypt", "with": step},
        ],
    }
    return str(write_playbook(tmp_path / "book.yaml", yaml.safe_dump(doc, sort_keys=False)))


def _configure(
    s3: Any, config_id: str, *, fmt: str = "CSV", fields: list[str] = FIELDS, prefix: str = "inv"
) -> None:
    s3.put_bucket_inventory_configuration(
        Bucket=SOURCE,
        Id=config_id,
        InventoryConfiguration={
            "Id": config_id,
            "IsEnabled": True,
            "IncludedObjectVersions": "Current",
            "Destination": {
                "S3BucketDestination": {
                    "Bucket": f"arn:aws:s3:::{DEST}",
                    "Format": fmt,
                    "Prefix": prefix,
                }
            },
            "Schedule": {"Frequency": "Daily"},
            "OptionalFields": fields,
        },
    )


def _stamp(age: timedelta) -> str:
    return (datetime.now(UTC) - age).strftime("%Y-%m-%dT%H-%MZ")


def _deliver(
    s3: Any, config_id: str, stamp: str, files: list[list[list[str]]], prefix: str = "inv"
) -> str:
    """Write a report as S3 Inventory delivers it; return the manifest key."""
    base = f"{prefix}/{SOURCE}/{config_id}"
    entries = []
    for rows in files:
        text = io.StringIO()
        csv.writer(text, quoting=csv.QUOTE_ALL, lineterminator="\n").writerows(rows)
        data = gzip.compress(text.getvalue().encode())
        key = f"{base}/data/{uuid.uuid4()}.csv.gz"
        s3.put_object(Bucket=DEST, Key=key, Body=data)
        entries.append(
            {"key": key, "size": len(data), "MD5checksum": hashlib.md5(data).hexdigest()}
        )
    created = datetime.strptime(stamp, "%Y-%m-%dT%H-%MZ").replace(tzinfo=UTC)
    manifest = json.dumps(
        {
            "sourceBucket": SOURCE,
            "destinationBucket": f"arn:aws:s3:::{DEST}",
            "version": "2016-11-30",
            "creationTimestamp": str(int(created.timestamp() * 1000)),
            "fileFormat": "CSV",
            "fileSchema": ", ".join(SCHEMA),
            "files": entries,
        },
        indent=2,
    ).encode()
    key = f"{base}/{stamp}/manifest.json"
    s3.put_object(Bucket=DEST, Key=key, Body=manifest)
    s3.put_object(
        Bucket=DEST,
        Key=f"{base}/{stamp}/manifest.checksum",
        Body=hashlib.md5(manifest).hexdigest().encode(),
    )
    return key


def _rows(n: int, encryption: str, storage: str = "STANDARD", size: int = 1000) -> list[list[str]]:
    tag = f"{encryption}-{storage}".lower()
    return [
        [SOURCE, f"data/{tag}/obj%20{i:05d}.bin", str(size), storage, f"etag{i}", encryption]
        for i in range(n)
    ]


def _seed(s3: Any) -> None:
    s3.create_bucket(Bucket=SOURCE)
    s3.create_bucket(Bucket=DEST)
    for i in range(3):
        s3.put_object(Bucket=SOURCE, Key=f"real-{i}.txt", Body=b"x")


def _plan(settings: Settings, book: str) -> tuple[dict[str, Any], Any]:
    _, plan = commands.plan(settings, book)
    step = plan.steps[1]
    return step.facts["buckets"][SOURCE], step.actions


def test_a_fresh_report_gives_the_counts_without_a_head_per_object(
    moto_server: SandboxServer, settings: Settings, aws: Any, tmp_path: Path
) -> None:
    s3 = aws("s3")
    _seed(s3)
    _configure(s3, "daily-csv")
    stamp = _stamp(timedelta(hours=6))
    older = _stamp(timedelta(days=1, hours=6))
    _deliver(s3, "daily-csv", older, [_rows(5, "NOT-SSE")])  # yesterday's: not used
    manifest = _deliver(
        s3,
        "daily-csv",
        stamp,
        [
            _rows(600, "NOT-SSE") + _rows(300, "SSE-S3", "STANDARD_IA", 2000),
            _rows(200, "SSE-KMS") + _rows(50, "NOT-SSE", "GLACIER") + _rows(50, "SSE-C"),
        ],
    )
    moto_server.start_recording()
    bucket, actions = _plan(settings, _book(tmp_path))
    moto_server.stop_recording()
    recorded = moto_server.recorded_requests()

    objects = bucket["objects"]
    assert objects["source"] == "inventory"
    assert objects["inventory"] == {
        "config_id": "daily-csv",
        "date": stamp,
        "format": "CSV",
        "manifest": f"s3://{DEST}/{manifest}",
        "files": 2,
    }
    assert objects["count"] == 1200
    assert objects["by_state"] == {
        so.UNENCRYPTED: 600,
        so.SSE_S3: 300,
        so.KMS_ANY: 200,
        so.ARCHIVED: 50,
        so.SSE_C: 50,
    }
    assert objects["bytes_by_state"][so.SSE_S3] == 600_000
    assert objects["by_storage_class"] == {"GLACIER": 50, "STANDARD": 850, "STANDARD_IA": 300}
    action = actions[0]
    assert action.details["to_do"] == 900 and action.details["source"] == "inventory"
    assert action.details["inventory_date"] == stamp
    assert f"counted from the S3 Inventory report of {stamp}" in action.summary
    assert any("objects written since are not in them" in r for r in action.risks)
    # No object of the source bucket was HEADed (or listed), and nothing was changed.
    assert not [r for r in recorded if r["path"].startswith(f"/{SOURCE}/real-")]
    assert not [
        r for r in recorded if r["path"].rstrip("/") == f"/{SOURCE}" and "list-type" in r["query"]
    ]
    assert [r["operation"] for r in recorded if is_mutating_request(r)] == []


def test_stale_parquet_or_incomplete_configurations_fall_back_to_heads(
    settings: Settings, aws: Any, tmp_path: Path
) -> None:
    s3 = aws("s3")
    _seed(s3)
    _configure(s3, "stale-csv")
    _deliver(s3, "stale-csv", _stamp(timedelta(hours=72)), [_rows(10, "NOT-SSE")])
    _configure(s3, "parquet", fmt="Parquet")
    _configure(s3, "thin", fields=["Size", "StorageClass"])
    _configure(s3, "never-delivered")

    bucket, actions = _plan(settings, _book(tmp_path))
    objects = bucket["objects"]
    assert objects["source"] == "listing"
    assert objects["count"] == 3 and objects["by_state"] == {so.UNENCRYPTED: 3}
    skipped = " | ".join(objects["inventory_skipped"])
    assert "stale-csv: the latest report" in skipped and "older than 48 h" in skipped
    assert "thin: lacks the fields ETag, EncryptionStatus" in skipped or (
        "thin: lacks the fields EncryptionStatus, ETag" in skipped
    )
    assert "never-delivered: no report delivered yet" in skipped
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        assert "parquet: Parquet report, and pyarrow is not installed" in skipped
    assert any("S3 Inventory not used for the counts: stale-csv" in r for r in actions[0].risks)

    # A larger limit makes the same report fresh enough.
    bucket, _ = _plan(settings, _book(tmp_path, inventory_max_age_h=96))
    assert bucket["objects"]["source"] == "inventory" and bucket["objects"]["count"] == 10


def test_a_report_whose_file_does_not_match_its_checksum_is_not_used(
    settings: Settings, aws: Any, tmp_path: Path
) -> None:
    s3 = aws("s3")
    _seed(s3)
    _configure(s3, "daily-csv")
    manifest_key = _deliver(s3, "daily-csv", _stamp(timedelta(hours=1)), [_rows(4, "NOT-SSE")])
    manifest = json.loads(s3.get_object(Bucket=DEST, Key=manifest_key)["Body"].read())
    s3.put_object(Bucket=DEST, Key=manifest["files"][0]["key"], Body=gzip.compress(b'"x","y"\n'))

    bucket, _ = _plan(settings, _book(tmp_path))
    assert bucket["objects"]["source"] == "listing"
    assert "checksum mismatch" in " ".join(bucket["objects"]["inventory_skipped"])


def test_inventory_false_always_heads(settings: Settings, aws: Any, tmp_path: Path) -> None:
    s3 = aws("s3")
    _seed(s3)
    _configure(s3, "daily-csv")
    _deliver(s3, "daily-csv", _stamp(timedelta(hours=1)), [_rows(4, "NOT-SSE")])
    bucket, _ = _plan(settings, _book(tmp_path, inventory=False))
    assert bucket["objects"]["source"] == "listing" and bucket["objects"]["count"] == 3
    assert "inventory_skipped" not in bucket["objects"]
