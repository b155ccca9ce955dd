"""CloudTrail parsing and aggregation: numbers against an independent count, and every odd input."""

from __future__ import annotations

import gzip
import json
from collections import Counter
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from migrate.cloudtrail import athena
from migrate.cloudtrail.lookup import RateLimiter
from migrate.cloudtrail.model import KIND_SESSION, UsageReport, fold
from migrate.cloudtrail.parse import TEMPORARY_KEY, merge_combos, parse_bytes, parse_path
from migrate.cloudtrail.sources import Source, list_dir_logs, parse_source
from migrate.errors import BadInputError
from tests.support.cloudtrail_synth import ROLE_ARN, RecordFactory, log_file


def _independent(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per long-lived key: calls, errors, calls per (source, name), IPs; computed the plain way."""
    out: dict[str, dict[str, Any]] = {}
    for r in records:
        key = (r.get("userIdentity") or {}).get("accessKeyId")
        if not key or not key.startswith("AKIA"):
            continue
        k = out.setdefault(key, {"calls": 0, "errors": 0, "by_call": Counter(), "ips": Counter()})
        k["calls"] += 1
        k["errors"] += 1 if r.get("errorCode") else 0
        k["by_call"][(r["eventSource"], r["eventName"])] += 1
        k["ips"][r["sourceIPAddress"]] += 1
    return out


def test_aggregation_matches_an_independent_count() -> None:
    records = list(RecordFactory(seed=3).records(3000))
    combos: dict[Any, Any] = {}
    for start in range(0, 3000, 700):  # several files, merged
        merge_combos(combos, parse_bytes("f", log_file(records[start : start + 700])).combos)
    keys, sessions = fold(combos.items())
    expected = _independent(records)
    assert set(keys) == set(expected)
    for key_id, want in expected.items():
        got = keys[key_id]
        assert got.calls == want["calls"]
        assert got.errors == want["errors"]
        assert {(c.event_source, c.event_name): c.count for c in got.actions} == dict(
            want["by_call"]
        )
        assert got.source_ips == dict(want["ips"])
        assert got.first_seen == min(
            r["eventTime"] for r in records if r["userIdentity"].get("accessKeyId") == key_id
        )
    # Temporary keys are never keys: they are folded into the role that issued the session.
    assert not any(k.startswith("ASIA") for k in keys)
    role = sessions[ROLE_ARN]
    assert role.kind == KIND_SESSION and role.owner == "app-task-role"
    assert role.calls == sum(
        1 for r in records if r["userIdentity"].get("accessKeyId", "").startswith("ASIA")
    )
    assert role.sessions == 7  # distinct session names in the synthetic data


def test_robustness_every_odd_input_is_counted_never_raised() -> None:
    good = RecordFactory(seed=1).record(0)
    good["userIdentity"] = {
        "type": "IAMUser",
        "accessKeyId": "AKIAODDINPUTS0000001",
        "userName": "odd",
        "arn": "arn:aws:iam::123456789012:user/odd",
    }
    truncated_params = dict(good, requestParameters={"omitted": True, "originalSize": 180000})
    string_params = dict(good, requestParameters='{"policy": "{\\"Version\\": \\"2012-10-17')
    no_identity = {k: v for k, v in good.items() if k != "userIdentity"}
    service = dict(good, userIdentity={"type": "AWSService", "invokedBy": "s3.amazonaws.com"})
    service["sourceIPAddress"] = "s3.amazonaws.com"
    console = dict(good, userIdentity={"type": "Root", "arn": "arn:aws:iam::123456789012:root"})
    wrong_type = dict(good, eventName=42)
    records = [good, truncated_params, string_params, no_identity, service, console, wrong_type]
    records.append("not an object")  # type: ignore[arg-type]

    result = parse_bytes("odd.json.gz", log_file(records))
    assert result.error is None
    c = result.counters
    assert c["records"] == 8
    assert c["aggregated"] == 3  # good + the two truncated ones
    assert c["truncated_params"] == 2
    assert c["no_identity"] == 1
    assert c["aws_service"] == 1
    assert c["no_access_key"] == 1
    assert c["bad_records"] == 2
    assert sum(v[0] for v in result.combos.values()) == 3

    raw = log_file([good] * 50)
    for name, data, error in [
        ("truncated.json.gz", raw[: len(raw) // 2], "not a readable gzip file"),
        ("corrupt.json.gz", b"\x1f\x8b" + b"\x00" * 40, "not a readable gzip file"),
        ("empty.json.gz", b"", "not valid JSON"),
        ("text.json.gz", gzip.compress(b"{not json"), "not valid JSON"),
        ("digest.json.gz", gzip.compress(b'{"digestS3Object": "x", "logFiles": []}'), "no Records"),
        ("array.json.gz", gzip.compress(b"[1, 2]"), "no Records"),
    ]:
        bad = parse_bytes(name, data)
        assert bad.error and bad.error.startswith(error), (name, bad.error)
        assert bad.combos == {}


def test_plain_json_and_multi_member_gzip_are_read(tmp_path: Path) -> None:
    records = list(RecordFactory(seed=5).records(40))
    plain = tmp_path / "plain.json"
    plain.write_text(json.dumps({"Records": records}))
    assert parse_path(str(plain)).counters["records"] == 40
    two = log_file(records[:10]) + gzip.compress(b" ")  # a second (blank) gzip member
    assert parse_bytes("two.json.gz", two).counters["records"] == 10
    assert parse_path(str(tmp_path / "gone.json.gz")).error is not None


def test_temporary_keys_collapse_into_one_dimension_value() -> None:
    records = [
        r for r in RecordFactory(seed=9).records(500) if "sessionContext" in r["userIdentity"]
    ]
    combos = parse_bytes("f", log_file(records)).combos
    assert {combo[1] for combo in combos} == {TEMPORARY_KEY}


def test_athena_sql_in_duckdb_equals_the_local_aggregation(tmp_path: Path) -> None:
    duckdb = pytest.importorskip("duckdb")
    factory = RecordFactory(seed=11)
    local: dict[Any, Any] = {}
    for n in range(3):
        path = tmp_path / f"f{n}.json.gz"
        path.write_bytes(log_file(list(factory.records(400, n * 400))))
        merge_combos(local, parse_path(str(path)).combos)
    record_type = (
        "STRUCT(eventTime VARCHAR, eventSource VARCHAR, eventName VARCHAR, awsRegion VARCHAR, "
        "sourceIPAddress VARCHAR, userAgent VARCHAR, errorCode VARCHAR, vpcEndpointId VARCHAR, "
        "userIdentity STRUCT(type VARCHAR, arn VARCHAR, accessKeyId VARCHAR, userName VARCHAR, "
        "invokedBy VARCHAR, sessionContext STRUCT(sessionIssuer STRUCT(type VARCHAR, "
        "arn VARCHAR))))[]"
    )
    con = duckdb.connect()
    con.execute(
        "CREATE VIEW trail AS SELECT unnest(r) FROM (SELECT unnest(Records) AS r FROM "
        f"read_json('{tmp_path}/*.json.gz', columns={{'Records': '{record_type}'}}))"
    )
    rows = con.execute(athena.aggregation_sql("trail", partitioned=False)).fetchall()
    assert {tuple(r[:15]): [r[15], r[16], r[17]] for r in rows} == local


def test_athena_statements_have_partition_projection_and_the_window() -> None:
    ddl = athena.table_ddl(
        "cloudtrail_logs_123456789012",
        "trail-bucket",
        "org/AWSLogs/",
        "123456789012",
        ["eu-west-1", "us-east-1"],
        date(2026, 9, 1),
    )
    assert "'projection.enabled' = 'true'" in ddl
    assert "'projection.region.values' = 'eu-west-1,us-east-1'" in ddl
    assert "'projection.timestamp.range' = '2026/09/01,NOW'" in ddl
    assert (
        "'storage.location.template' = "
        "'s3://trail-bucket/org/AWSLogs/123456789012/CloudTrail/${region}/${timestamp}'" in ddl
    )
    sql = athena.aggregation_sql("t", date(2026, 9, 1), None, ["us-east-1"])
    assert "\"timestamp\" >= '2026/09/01'" in sql and "region IN ('us-east-1')" in sql
    assert sql.rstrip().endswith("GROUP BY " + ", ".join(str(i) for i in range(1, 16)))
    with pytest.raises(Exception, match="not a valid Athena name"):
        athena.table_ddl("drop table x;", "b", "AWSLogs/", "1", ["us-east-1"], date.today())


def test_rate_limiter_spaces_calls_at_two_per_second() -> None:
    now = [100.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    limiter = RateLimiter(2.0, clock=lambda: now[0], sleep=sleep)
    for _ in range(5):
        limiter.wait()
    assert slept == [0.5, 0.5, 0.5, 0.5]
    now[0] += 10  # idle time is not banked: the next call goes at once, then paced again
    limiter.wait()
    limiter.wait()
    assert slept[-1] == 0.5 and len(slept) == 5


def test_sources_parse_and_directory_listing(tmp_path: Path) -> None:
    assert parse_source("s3://b/pre/fix").dataset == "s3://b/pre/fix"
    assert Source(kind="s3", bucket="b", prefix="pre").logs_root == "pre/AWSLogs/"
    assert Source(kind="s3", bucket="b", prefix="").logs_root == "AWSLogs/"
    assert Source(kind="s3", bucket="b", prefix="x/AWSLogs/1/").logs_root == "x/AWSLogs/"
    assert parse_source("lookup").kind == "lookup"
    assert parse_source("athena:s3://b/p").dataset == "athena:s3://b/p"
    with pytest.raises(BadInputError, match="neither"):
        parse_source(str(tmp_path / "missing"))
    base = tmp_path / "AWSLogs/123456789012"
    names = [
        "CloudTrail/us-east-1/2026/11/20/a_CloudTrail_us-east-1_20261120T0000Z_x.json.gz",
        "CloudTrail/eu-west-1/2026/11/20/b_CloudTrail_eu-west-1_20261120T0000Z_x.json.gz",
        "CloudTrail/us-east-1/2026/10/01/c_CloudTrail_us-east-1_20261001T0000Z_x.json.gz",
        "CloudTrail-Digest/us-east-1/2026/11/20/d_CloudTrail-Digest_us-east-1_x.json.gz",
        "CloudTrail/us-east-1/2026/11/20/readme.txt",
    ]
    for name in names:
        (base / name).parent.mkdir(parents=True, exist_ok=True)
        (base / name).write_bytes(b"x")
    found = [f.name for page in list_dir_logs(str(tmp_path), date(2026, 11, 1)) for f in page]
    assert [n.split("/")[3] for n in found] == ["eu-west-1", "us-east-1"]
    only = list_dir_logs(str(tmp_path), date(2026, 11, 1), regions=["us-east-1"])
    assert [f.name.split("/")[3] for page in only for f in page] == ["us-east-1"]


def test_report_round_trips_through_json() -> None:
    records = list(RecordFactory(seed=2).records(200))
    keys, sessions = fold(parse_bytes("f", log_file(records)).combos.items())
    report = UsageReport(
        dataset="d",
        source="dir",
        since="2026-11-01",
        until=None,
        generated_at=datetime(2026, 11, 30, tzinfo=UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        keys=list(keys.values()),
        sessions=list(sessions.values()),
        id="usage-x",
    )
    again = UsageReport.from_dict(json.loads(json.dumps(report.to_dict())))
    assert again == report
    assert again.key(report.keys[0].principal).calls == report.keys[0].calls


def test_parse_workers_do_not_rerun_the_console_script(tmp_path: Path) -> None:
    """The `migrate` console script imports the whole CLI at its top; workers must not redo it."""
    import subprocess
    import sys

    script = tmp_path / "entry.py"
    script.write_text(
        "import multiprocessing, sys\n"
        "from concurrent.futures import ProcessPoolExecutor\n"
        "import migrate.cli  # what the console script does first\n"
        "from migrate.cloudtrail.ingest import _main_hidden\n"
        "from migrate.cloudtrail.parse import parse_batch\n"
        "def main():\n"
        "    ctx = multiprocessing.get_context('forkserver')\n"
        "    ctx.set_forkserver_preload(['migrate.cloudtrail.parse'])\n"
        "    with _main_hidden(), ProcessPoolExecutor(2, mp_context=ctx) as pool:\n"
        "        pool.submit(parse_batch, []).result()\n"
        "        seen = pool.submit(eval, 'sorted(__import__(\"sys\").modules)').result()\n"
        "    print('migrate.commands' in seen, '__file__' in vars(sys.modules['__main__']))\n"
        "if __name__ == '__main__':\n"
        "    main()\n"
    )
    out = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, check=True, timeout=120
    )
    assert out.stdout.split() == ["False", "True"], out.stderr
