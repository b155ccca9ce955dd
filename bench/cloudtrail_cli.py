"""Benchmark: the ``migrate trail usage`` command as users run it, against DuckDB, on several shapes.

For each data shape (``bench/cloudtrail_shapes.py``: ``low``, ``high`` and ``data30`` resource
cardinality), the same files are read, in the same round, by:

* **migrate**: ``migrate --state FRESH.db trail usage --source DIR --json`` as a whole process
  (interpreter start, imports, state store creation and schema, listing, worker processes, the
  commits, the fold and the report, JSON printed), with default settings (one worker process per
  core), without AWS credentials (the offline path: a folder of downloaded logs);
* **DuckDB**: a Python process that imports duckdb, reads the files with ``read_json_objects``
  and ``json_transform`` of the fields we group by (the fastest DuckDB formulation we found: the
  ``read_json(columns=...)`` form is several times slower on CloudTrail's one-object-per-file
  layout), and runs the per-key aggregation SQL that migrate sends to Athena, ``threads`` = cores.

Each round runs every shape's migrate and DuckDB one after the other, so both see the same machine
load; with ``--repeat N`` (default 3) the table shows medians. Peak RSS is sampled every 20 ms over
the whole process tree (``/proc``; worker processes included), as the largest single process and as
the sum over the tree, and cross-checked with ``wait4``'s ``ru_maxrss``. Before printing, migrate's
stored combos are checked to equal DuckDB's rows.

Usage: ``.venv/bin/python bench/cloudtrail_cli.py [--events 1000000] [--per-file 1000]
[--shapes low,high,data30] [--repeat 3] [--workdir /tmp/migrate-bench-cloudtrail]``. Generated
files are kept under ``--workdir`` (reused by later runs of the same size and day), never in git.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from cloudtrail_shapes import SHAPES, default_start, generate

# What DuckDB extracts per record: exactly the fields the aggregation groups by.
STRUCTURE = json.dumps(
    {
        "Records": [
            {
                "eventTime": "VARCHAR",
                "eventSource": "VARCHAR",
                "eventName": "VARCHAR",
                "awsRegion": "VARCHAR",
                "sourceIPAddress": "VARCHAR",
                "userAgent": "VARCHAR",
                "errorCode": "VARCHAR",
                "vpcEndpointId": "VARCHAR",
                "userIdentity": {
                    "type": "VARCHAR",
                    "arn": "VARCHAR",
                    "accessKeyId": "VARCHAR",
                    "userName": "VARCHAR",
                    "invokedBy": "VARCHAR",
                    "sessionContext": {"sessionIssuer": {"type": "VARCHAR", "arn": "VARCHAR"}},
                },
            }
        ]
    }
)
DIMENSION_COUNT = 15


def _canon(rows: list[tuple[Any, ...]]) -> str:
    """A digest of combos ``(15 dimensions..., count, first, last)``, order-independent."""
    blob = json.dumps(sorted([list(map(str, r)) for r in rows]))
    return hashlib.sha256(blob.encode()).hexdigest()


def run_duckdb(root: str, threads: int) -> dict[str, Any]:
    """The DuckDB peer, inside its own process (started by :func:`_measure`)."""
    began = time.perf_counter()
    import duckdb

    from migrate.cloudtrail.athena import aggregation_sql

    con = duckdb.connect()
    con.execute(f"SET threads = {threads}")
    con.execute(
        "CREATE VIEW trail AS SELECT unnest(r) FROM (SELECT unnest(json_transform(json, "
        f"'{STRUCTURE}').Records) AS r FROM read_json_objects('{root}/**/*.json.gz'))"
    )
    rows = con.execute(aggregation_sql("trail", partitioned=False)).fetchall()
    return {"query_seconds": time.perf_counter() - began, "combos": _canon(rows)}


def _descendants(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        current = todo.pop()
        out.append(current)
        try:
            for task in os.listdir(f"/proc/{current}/task"):
                with open(f"/proc/{current}/task/{task}/children") as handle:
                    todo.extend(int(c) for c in handle.read().split())
        except OSError:
            continue
    return out


def _rss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _measure(cmd: list[str], env: dict[str, str], stdout: Path) -> dict[str, float]:
    """Run ``cmd`` to completion: wall seconds and peak RSS (largest process, tree sum) in MB."""
    peak = {"largest": 0, "tree": 0}
    done = threading.Event()
    with stdout.open("w") as out:
        began = time.perf_counter()
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.PIPE, text=True)

        def sample() -> None:
            while not done.is_set():
                sizes = [_rss_kb(p) for p in _descendants(proc.pid)]
                peak["largest"] = max(peak["largest"], max(sizes, default=0))
                peak["tree"] = max(peak["tree"], sum(sizes))
                done.wait(0.02)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        assert proc.stderr is not None
        stderr = proc.stderr.read()
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - began
        proc.returncode = os.waitstatus_to_exitcode(status)
        done.set()
        sampler.join()
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{stderr[-3000:]}")
    largest = max(peak["largest"], usage.ru_maxrss)
    return {"seconds": seconds, "rss_mb": largest / 1024, "tree_mb": peak["tree"] / 1024}


def _offline_env(workdir: Path) -> dict[str, str]:
    """The caller's environment without any AWS credential or profile (a folder of logs)."""
    empty = workdir / "empty-aws-config"
    empty.write_text("")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.pop("MIGRATE_STATE", None)
    env["AWS_CONFIG_FILE"] = env["AWS_SHARED_CREDENTIALS_FILE"] = str(empty)
    return env


def _stored_combos(db: Path) -> str:
    with sqlite3.connect(db) as con:
        rows = con.execute(
            "SELECT day, key_id, identity_type, principal_arn, user_name, issuer_arn, "
            "issuer_type, invoked_by, event_source, event_name, error_code, source_ip, "
            "user_agent, region, vpc_endpoint_id, count, first_seen, last_seen "
            "FROM cloudtrail_usage"
        ).fetchall()
    return _canon(rows)


def _prepare(shape: str, workdir: Path, events: int, per_file: int, cores: int) -> Path:
    start = default_start()
    root = workdir / f"{shape}-{events}-{per_file}-{start:%Y%m%d}"
    marker = root / ".complete"
    if not marker.exists():
        began = time.perf_counter()
        size = generate(shape, root, events, per_file, start, cores)
        marker.write_text(json.dumps({"bytes": size}))
        print(
            f"generated {shape}: {events} events, {size / 1e6:.1f} MB gzipped "
            f"({time.perf_counter() - began:.0f}s)",
            file=sys.stderr,
        )
    return root


def main() -> None:
    """Generate the shapes, run every round, print the medians and the ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--per-file", type=int, default=1000)
    parser.add_argument("--shapes", default=",".join(SHAPES))
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--cores", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--workdir", default="/tmp/migrate-bench-cloudtrail")
    parser.add_argument("--migrate-args", default="", help="extra `trail usage` options (tuned)")
    parser.add_argument("--run", choices=["duckdb"], help=argparse.SUPPRESS)
    parser.add_argument("--dir", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.run == "duckdb":
        print(json.dumps(run_duckdb(args.dir, args.cores)))
        return

    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    shapes = [s for s in args.shapes.split(",") if s]
    roots = {s: _prepare(s, workdir, args.events, args.per_file, args.cores) for s in shapes}
    env = _offline_env(workdir)
    exe = str(Path(sys.executable).parent / "migrate")
    results: dict[str, dict[str, list[float]]] = {s: {} for s in shapes}
    facts: dict[str, dict[str, Any]] = {}
    for round_no in range(args.repeat):
        for shape in shapes:
            root = roots[shape]
            with tempfile.TemporaryDirectory(dir=workdir) as tmp:
                db = Path(tmp) / "state" / "migrate.db"
                report = Path(tmp) / "report.json"
                cmd = [exe, "--state", str(db), "trail", "usage", "--source", str(root), "--json"]
                ours = _measure(cmd + args.migrate_args.split(), env, report)
                data = json.loads(report.read_text())
                theirs_out = Path(tmp) / "duckdb.json"
                theirs = _measure(
                    [
                        sys.executable,
                        __file__,
                        "--run",
                        "duckdb",
                        "--dir",
                        str(root),
                        "--cores",
                        str(args.cores),
                    ],
                    env,
                    theirs_out,
                )
                duck = json.loads(theirs_out.read_text())
                if round_no == 0:
                    same = _stored_combos(db) == duck["combos"]
                    assert same, f"{shape}: migrate and DuckDB aggregated differently"
                    facts[shape] = {
                        "events": data["stats"]["counters"]["records"],
                        "files": data["stats"]["files"],
                        "bytes": data["stats"]["bytes"],
                        "enriched": data["enriched"],
                        "max_resources": max(
                            (len(c["resources"]) for k in data["keys"] for c in k["actions"]),
                            default=0,
                        ),
                    }
            row = results[shape]
            for name, value in (
                ("m_s", ours["seconds"]),
                ("m_rss", ours["rss_mb"]),
                ("m_tree", ours["tree_mb"]),
                ("d_s", theirs["seconds"]),
                ("d_q", duck["query_seconds"]),
                ("d_rss", theirs["rss_mb"]),
            ):
                row.setdefault(name, []).append(value)
            print(
                f"round {round_no + 1} {shape}: migrate {ours['seconds']:.2f}s "
                f"{ours['rss_mb']:.0f} MB, duckdb {theirs['seconds']:.2f}s",
                file=sys.stderr,
            )

    load = os.getloadavg()
    print(
        f"\n{args.cores} cores, load average {load[0]:.1f}/{load[1]:.1f}/{load[2]:.1f}; "
        f"medians of {args.repeat} rounds; migrate = `migrate trail usage --source DIR --json` "
        f"{args.migrate_args or '(defaults)'}, whole process, offline"
    )
    header = (
        "| shape | events | files | MB gz | migrate s | migrate events/s | per core | "
        "DuckDB s (query) | DuckDB events/s | ratio | migrate peak RSS (tree) | DuckDB RSS |"
    )
    print(header)
    print("| --- " + "| ---: " * 11 + "|")
    for shape in shapes:
        f, r = facts[shape], {k: statistics.median(v) for k, v in results[shape].items()}
        ours_rate, duck_rate = f["events"] / r["m_s"], f["events"] / r["d_s"]
        print(
            f"| {shape} | {f['events']:,} | {f['files']} | {f['bytes'] / 1e6:.0f} | "
            f"{r['m_s']:.2f} | {ours_rate:,.0f} | {ours_rate / args.cores:,.0f} | "
            f"{r['d_s']:.2f} ({r['d_q']:.2f}) | {duck_rate:,.0f} | {r['d_s'] / r['m_s']:.1f}x | "
            f"{r['m_rss']:.0f} MB ({r['m_tree']:.0f} MB) | {r['d_rss']:.0f} MB |"
        )
    print(
        "same combos as DuckDB: checked; largest resource list in a report: "
        + ", ".join(f"{s} {facts[s]['max_resources']}" for s in shapes)
    )


if __name__ == "__main__":
    main()
