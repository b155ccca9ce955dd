"""Benchmark: CloudTrail ingestion, ours against DuckDB ``read_json`` (and a naive json.load loop).

Generates N realistic events (about 1.3-1.6 KB each: nested requestParameters, additionalEventData,
tlsDetails, several identity types) into gzipped files in CloudTrail's layout, then measures, each
in a fresh process so peak RSS is its own:

* ``migrate``: :func:`migrate.cloudtrail.ingest.ingest` into a fresh state store (the same path as
  ``migrate trail usage`` minus the IAM/EC2 look-ups), worker processes on every core, then the
  fold into per-key usage;
* ``duckdb``: DuckDB ``read_json`` with the needed columns declared, running the very SQL we send to
  Athena (:func:`migrate.cloudtrail.athena.aggregation_sql`), on as many threads as cores;
* ``naive``: ``json.load`` of every file into one list of records, then the same grouping in Python,
  single process (what a first script would do).

Usage: ``python bench/cloudtrail_ingest.py [--events 400000] [--per-file 5000] [--keep DIR]``.
Both aggregations are checked to produce the same combos before any figure is printed.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

# The synthetic records are test support (tests/support/), not part of the product.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.support.cloudtrail_synth import ACCOUNT, RecordFactory, log_file, log_key

RECORD_TYPE = (
    "STRUCT(eventTime VARCHAR, eventSource VARCHAR, eventName VARCHAR, awsRegion VARCHAR, "
    "sourceIPAddress VARCHAR, userAgent VARCHAR, errorCode VARCHAR, vpcEndpointId VARCHAR, "
    "userIdentity STRUCT(type VARCHAR, arn VARCHAR, accessKeyId VARCHAR, userName VARCHAR, "
    "invokedBy VARCHAR, sessionContext STRUCT(sessionIssuer STRUCT(type VARCHAR, arn VARCHAR))))[]"
)


def generate(root: Path, events: int, per_file: int) -> tuple[int, int]:
    """Write the log files; returns (files, compressed bytes)."""
    start = datetime(2026, 11, 1, tzinfo=UTC)
    factory = RecordFactory(seed=42, start=start)
    files = size = 0
    for offset in range(0, events, per_file):
        count = min(per_file, events - offset)
        records = list(factory.records(count, offset))
        moment = start + timedelta(minutes=5 * files)
        path = root / log_key(ACCOUNT, "us-east-1", moment, files)
        path.parent.mkdir(parents=True, exist_ok=True)
        data = log_file(records)
        path.write_bytes(data)
        files += 1
        size += len(data)
    return files, size


def _peak_rss_mb() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, children) / 1024  # Linux reports KiB; the largest single process


def _files(root: Path) -> Iterator[Path]:
    return iter(sorted(root.rglob("*.json.gz")))


def run_migrate(root: Path, workers: int) -> dict[str, Any]:
    """Our ingestion into a fresh state store, then the per-key fold."""
    from migrate.cloudtrail.ingest import ingest
    from migrate.cloudtrail.model import fold
    from migrate.cloudtrail.persist import load_combos
    from migrate.cloudtrail.sources import list_dir_logs
    from migrate.store import open_store

    with tempfile.TemporaryDirectory() as state:
        store = open_store(str(Path(state) / "m.db"))
        began = time.perf_counter()
        stats = ingest(
            store, "bench", list_dir_logs(str(root)), local_root=str(root), workers=workers
        )
        combos = dict(load_combos(store, "bench"))
        keys, _sessions = fold(combos.items())
        elapsed = time.perf_counter() - began
        store.close()
    return {
        "events": stats.counters["records"],
        "seconds": elapsed,
        "combos": _canon(combos),
        "keys": len(keys),
    }


def run_duckdb(root: Path, threads: int) -> dict[str, Any]:
    """DuckDB read_json + the Athena aggregation SQL."""
    import duckdb

    from migrate.cloudtrail.athena import aggregation_sql

    began = time.perf_counter()
    con = duckdb.connect()
    con.execute(f"SET threads = {threads}")
    con.execute(
        "CREATE VIEW trail AS SELECT unnest(r) FROM (SELECT unnest(Records) AS r FROM "
        f"read_json('{root}/**/*.json.gz', columns={{'Records': '{RECORD_TYPE}'}}))"
    )
    rows = con.execute(aggregation_sql("trail", partitioned=False)).fetchall()
    total = sum(r[15] for r in rows)
    elapsed = time.perf_counter() - began
    combos = {tuple(r[:15]): [r[15], r[16], r[17]] for r in rows}
    # DuckDB only sees records with a key; count every record for events/s like the others.
    events = sum(len(json.loads(gzip.decompress(p.read_bytes()))["Records"]) for p in _files(root))
    return {"events": events, "seconds": elapsed, "combos": _canon(combos), "aggregated": total}


def run_naive(root: Path) -> dict[str, Any]:
    """json.load every file into one big list, then group in Python (one process)."""
    began = time.perf_counter()
    records: list[dict[str, Any]] = []
    for path in _files(root):
        with gzip.open(path) as handle:
            records.extend(json.load(handle)["Records"])
    counts: dict[tuple[str, str, str], int] = {}
    for r in records:
        key = (r.get("userIdentity") or {}).get("accessKeyId")
        if key:
            k = (key, r.get("eventSource", ""), r.get("eventName", ""))
            counts[k] = counts.get(k, 0) + 1
    elapsed = time.perf_counter() - began
    return {"events": len(records), "seconds": elapsed, "combos": None}


def _canon(combos: dict[Any, Any]) -> str:
    import hashlib

    blob = json.dumps(sorted([list(k), list(v)] for k, v in combos.items()))
    return hashlib.sha256(blob.encode()).hexdigest()


def _child(which: str, root: str, cores: int) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, __file__, "--run", which, "--dir", root, "--cores", str(cores)],
        capture_output=True,
        text=True,
        check=True,
    )
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def main() -> None:
    """Generate, measure each tool in its own process, print the comparison."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--events", type=int, default=400_000)
    parser.add_argument("--per-file", type=int, default=5_000)
    parser.add_argument("--cores", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--keep", help="generate into (or reuse) this directory")
    parser.add_argument("--skip-naive", action="store_true")
    parser.add_argument("--run", choices=["migrate", "duckdb", "naive"], help=argparse.SUPPRESS)
    parser.add_argument("--dir", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.run:
        root = Path(args.dir)
        if args.run == "migrate":
            result = run_migrate(root, args.cores)
        elif args.run == "duckdb":
            result = run_duckdb(root, args.cores)
        else:
            result = run_naive(root)
        result["peak_rss_mb"] = _peak_rss_mb()
        print(json.dumps(result))
        return

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(args.keep or tmp)
        if not any(root.rglob("*.json.gz")):
            began = time.perf_counter()
            files, size = generate(root, args.events, args.per_file)
            print(
                f"generated {files} files, {size / 1e6:.1f} MB gzipped "
                f"({time.perf_counter() - began:.0f}s)",
                file=sys.stderr,
            )
        raw = sum(len(gzip.decompress(p.read_bytes())) for p in _files(root))
        files = sum(1 for _ in _files(root))
        ours = _child("migrate", str(root), args.cores)
        duck = _child("duckdb", str(root), args.cores)
        results = {"migrate": ours, f"duckdb read_json ({args.cores} threads)": duck}
        if not args.skip_naive:
            results["naive json.load (1 process)"] = _child("naive", str(root), args.cores)
        assert ours["combos"] == duck["combos"], "migrate and DuckDB aggregated differently"
        events = ours["events"]
        print(
            f"{events} events in {files} files, {raw / events:.0f} bytes/event, {args.cores} cores"
        )
        print(
            f"{'tool':34} {'seconds':>8} {'files/s':>9} {'events/s':>10} {'per core':>9} "
            f"{'peak RSS':>9}"
        )
        for name, r in results.items():
            per_core = r["events"] / r["seconds"] / (1 if "1 process" in name else args.cores)
            print(
                f"{name:34} {r['seconds']:8.2f} {files / r['seconds']:9.0f} "
                f"{r['events'] / r['seconds']:10.0f} {per_core:9.0f} {r['peak_rss_mb']:7.0f}MB"
            )
        print(
            f"ratio migrate/duckdb: {duck['seconds'] / ours['seconds']:.1f}x (same combos, checked)"
        )


if __name__ == "__main__":
    main()
