"""Pure parts of reading S3 Inventory reports: which configurations qualify, row states, counts,
and streaming a large gzip'd CSV file in constant memory with its MD5 checked."""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import tracemalloc
from typing import Any

import pytest

from migrate.steps.s3 import inventory as inv
from migrate.steps.s3 import objects as so

FIELDS = ["Size", "StorageClass", "ETag", "EncryptionStatus"]


def _config(**overrides: Any) -> dict[str, Any]:
    return {
        "Id": "c",
        "IsEnabled": True,
        "Destination": {"S3BucketDestination": {"Bucket": "arn:aws:s3:::d", "Format": "CSV"}},
        "Schedule": {"Frequency": "Weekly"},
        "OptionalFields": FIELDS,
        **overrides,
    }


def test_which_configurations_can_give_the_counts() -> None:
    assert inv.config_problem(_config(), parquet_ok=False) is None
    assert inv.config_problem(_config(IsEnabled=False), parquet_ok=False) == "disabled"
    assert "prefix 'logs/'" in str(
        inv.config_problem(_config(Filter={"Prefix": "logs/"}), parquet_ok=False)
    )
    parquet = _config(
        Destination={"S3BucketDestination": {"Bucket": "arn:aws:s3:::d", "Format": "Parquet"}}
    )
    assert "pyarrow is not installed" in str(inv.config_problem(parquet, parquet_ok=False))
    assert inv.config_problem(parquet, parquet_ok=True) is None
    orc = _config(
        Destination={"S3BucketDestination": {"Bucket": "arn:aws:s3:::d", "Format": "ORC"}}
    )
    assert "ORC" in str(inv.config_problem(orc, parquet_ok=True))
    thin = inv.config_problem(_config(OptionalFields=["Size"]), parquet_ok=False)
    assert thin == "lacks the fields ETag, EncryptionStatus, StorageClass"


def test_report_layout_and_stamps() -> None:
    assert inv.report_base("inv/", "src", "cfg") == "inv/src/cfg"
    assert inv.report_base(None, "src", "cfg") == "src/cfg"
    assert inv.bucket_name("arn:aws:s3:::dest") == "dest"
    assert inv.stamp_time("2016-11-06T21-32Z").isoformat() == "2016-11-06T21:32:00+00:00"
    assert inv.STAMP.match("2016-11-06T21-32Z") and not inv.STAMP.match("data")


def test_row_states_follow_the_object_classification() -> None:
    assert inv.state_of({"EncryptionStatus": "NOT-SSE"}) == so.UNENCRYPTED
    assert inv.state_of({"EncryptionStatus": "SSE-S3"}) == so.SSE_S3
    assert inv.state_of({"EncryptionStatus": "SSE-KMS"}) == so.KMS_ANY
    assert inv.state_of({"EncryptionStatus": "DSSE-KMS"}) == so.OTHER_KMS
    assert inv.state_of({"EncryptionStatus": "SSE-C", "StorageClass": "GLACIER"}) == so.SSE_C
    assert inv.state_of({"EncryptionStatus": "NOT-SSE", "StorageClass": "DEEP_ARCHIVE"}) == (
        so.ARCHIVED
    )
    tiered = {
        "StorageClass": "INTELLIGENT_TIERING",
        "IntelligentTieringAccessTier": "ARCHIVE_ACCESS",
    }
    assert inv.state_of(tiered) == so.ARCHIVED
    assert so.needs_work(so.KMS_ANY, rekey=True) and not so.needs_work(so.KMS_ANY, rekey=False)


def test_counts_skip_older_versions_and_delete_markers() -> None:
    rows = [
        {
            "Size": "10",
            "StorageClass": "STANDARD",
            "EncryptionStatus": "NOT-SSE",
            "IsLatest": "true",
        },
        {
            "Size": "20",
            "StorageClass": "STANDARD",
            "EncryptionStatus": "NOT-SSE",
            "IsLatest": "false",
        },
        {"Size": "", "IsLatest": "true", "IsDeleteMarker": "true"},
        {"Size": "7000000", "StorageClass": "STANDARD_IA", "EncryptionStatus": "SSE-S3"},
    ]
    counts = inv.tally_rows(rows, multipart_threshold=5 * 1024**2, part_size=5 * 1024**2)
    assert counts["count"] == 2 and counts["bytes"] == 7_000_010
    assert counts["by_state"] == {so.SSE_S3: 1, so.UNENCRYPTED: 1}
    assert counts["by_storage_class"] == {"STANDARD": 1, "STANDARD_IA": 1}
    assert counts["over_threshold"] == 1 and counts["multipart_parts"] == 2


def _gzip_csv(rows: int) -> bytes:
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb") as zipped:
        text = io.TextIOWrapper(zipped, encoding="utf-8", newline="")
        writer = csv.writer(text, quoting=csv.QUOTE_ALL, lineterminator="\n")
        for i in range(rows):
            writer.writerow(["b", f"k%2F{i}", "123", "STANDARD", f"e{i}", "NOT-SSE"])
        text.flush()
        text.detach()
    return out.getvalue()


def test_a_large_file_streams_in_constant_memory_and_its_md5_is_checked() -> None:
    data = _gzip_csv(200_000)
    columns = ["Bucket", "Key", "Size", "StorageClass", "ETag", "EncryptionStatus"]
    md5 = hashlib.md5(data).hexdigest()
    tracemalloc.start()
    try:
        counts = inv.tally_rows(
            inv.csv_rows(io.BytesIO(data), columns, md5),
            multipart_threshold=inv.so.FIVE_GB,
            part_size=512 * 1024**2,
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert counts["count"] == 200_000 and counts["bytes"] == 200_000 * 123
    # The uncompressed file is ~8 MB; reading it keeps a few buffers, not the rows.
    assert peak < 4 * 1024**2, peak
    with pytest.raises(inv.ReportError, match="checksum mismatch"):
        list(inv.csv_rows(io.BytesIO(data), columns, "0" * 32))


def test_parquet_reports_are_read_when_pyarrow_is_installed() -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    table = pa.table(
        {
            "bucket": ["b", "b", "b"],
            "key": ["k1", "k2", "k3"],
            "is_latest": [True, False, True],
            "is_delete_marker": [False, False, False],
            "size": [5, 6, 7],
            "e_tag": ["e1", "e2", "e3"],
            "storage_class": ["STANDARD", "STANDARD", "ONEZONE_IA"],
            "encryption_status": ["NOT-SSE", "NOT-SSE", "SSE-KMS"],
        }
    )
    out = io.BytesIO()
    pq.write_table(table, out)
    data = out.getvalue()
    counts = inv.tally_rows(
        inv.parquet_rows(io.BytesIO(data), hashlib.md5(data).hexdigest()),
        multipart_threshold=inv.so.FIVE_GB,
        part_size=512 * 1024**2,
    )
    assert counts["count"] == 2 and counts["bytes"] == 12
    assert counts["by_state"] == {so.KMS_ANY: 1, so.UNENCRYPTED: 1}
    assert counts["by_storage_class"] == {"ONEZONE_IA": 1, "STANDARD": 1}
