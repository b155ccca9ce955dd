"""CloudTrail usage against the moto server: every source, re-runs, the sandbox, the step, the CLI.

Moto's trails never write logs, so the tests write CloudTrail-format files themselves. Moto lacks
``LookupEvents`` and only pretends to run Athena queries: those two calls are tested with botocore's
Stubber (and only those calls; S3, IAM and EC2 are the moto server's).
"""

from __future__ import annotations

import gzip
import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import click
from botocore.stub import ANY, Stubber
from click.testing import CliRunner

from migrate import commands
from migrate.cli_trail import trail
from migrate.cloudtrail import api, athena, persist
from migrate.cloudtrail.lookup import RateLimiter
from migrate.cloudtrail.model import ATTR_EC2, ATTR_OUTSIDE
from migrate.cloudtrail.sources import Source
from migrate.commands import Settings
from migrate.engine.runner import RunOptions
from migrate.sandbox.seed import BATCH_SOURCE_IP, INSTANCE_NAME, INSTANCE_PRIVATE_IP, seed
from migrate.store import open_store
from tests.conftest import write_playbook
from tests.support.cloudtrail_synth import ACCOUNT, RecordFactory, SynthUser, log_file, log_key

BUCKET = "trail-logs"
OTHER_ACCOUNT = "210987654321"
NOW = datetime.now(UTC)


def _records(seed: int, count: int, days_ago: int, users: Any = None) -> list[dict[str, Any]]:
    start = (NOW - timedelta(days=days_ago)).replace(hour=0, minute=0, second=0, microsecond=0)
    kwargs = {"users": users} if users else {}
    return list(RecordFactory(seed=seed, start=start, **kwargs).records(count))


def _expected(records: list[dict[str, Any]]) -> dict[str, tuple[int, int]]:
    """(calls, errors) per long-lived key, counted the plain way."""
    calls: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    for r in records:
        key = (r.get("userIdentity") or {}).get("accessKeyId", "")
        if key.startswith("AKIA"):
            calls[key] += 1
            errors[key] += 1 if r.get("errorCode") else 0
    return {k: (calls[k], errors[k]) for k in calls}


def _put(s3: Any, key: str, body: bytes) -> None:
    s3.put_object(Bucket=BUCKET, Key=key, Body=body)


def test_s3_source_org_trails_digests_robustness_and_second_run(
    settings: Settings, aws: Any
) -> None:
    s3 = aws("s3")
    s3.create_bucket(Bucket=BUCKET)
    day = NOW - timedelta(days=3)
    mine = _records(1, 600, 3)
    org = _records(
        2, 300, 2, users=(SynthUser("org-user", "AKIAORGUSER000000001", "198.51.100.9"),)
    )
    old = _records(3, 100, 200)  # outside the 90-day window
    _put(s3, log_key(ACCOUNT, "us-east-1", day, 1, org_id=None), log_file(mine[:300]))
    _put(s3, log_key(ACCOUNT, "eu-west-1", day, 2), log_file(mine[300:]))
    _put(s3, log_key(OTHER_ACCOUNT, "us-east-1", day, 3, org_id="o-abcdef1234"), log_file(org))
    _put(s3, log_key(ACCOUNT, "us-east-1", NOW - timedelta(days=200), 4), log_file(old))
    digest = log_key(ACCOUNT, "us-east-1", day, 5).replace("/CloudTrail/", "/CloudTrail-Digest/")
    _put(s3, digest, gzip.compress(b'{"logFiles": []}'))
    broken = log_file(mine[:50])
    _put(s3, log_key(ACCOUNT, "us-east-1", day, 6), broken[: len(broken) // 3])  # truncated gz
    odd = dict(mine[0], requestParameters={"omitted": True})
    no_identity = {k: v for k, v in mine[1].items() if k != "userIdentity"}
    _put(s3, log_key(ACCOUNT, "us-east-1", day, 7), log_file([odd, no_identity]))

    report = commands.trail_usage(settings, f"s3://{BUCKET}", since="90d", attribute=False)

    want = _expected(mine + org + [odd])
    assert {k.principal: (k.calls, k.errors) for k in report.keys if k.calls} == want
    assert report.key("AKIAORGUSER000000001").calls > 50  # the org trail's account is read
    stats = report.stats
    assert stats["files"] == 5  # 4 log files in the window + the truncated one; no digest, no old
    assert stats["unreadable_files"] == 1
    assert "not a readable gzip file" in stats["unreadable"][0]["error"]
    assert stats["counters"]["truncated_params"] == 1
    assert stats["counters"]["no_identity"] == 1
    assert stats["counters"]["aws_service"] == sum(
        1 for r in mine + org if r["userIdentity"]["type"] == "AWSService"
    )
    assert stats["this_run"]["files_read"] == 5

    # A second run reads nothing new and reports the same numbers.
    again = commands.trail_usage(settings, f"s3://{BUCKET}", since="90d", attribute=False)
    assert again.stats["this_run"]["files_read"] == 0
    assert again.stats["this_run"]["files_already_ingested"] == 5
    assert {k.principal: k.calls for k in again.keys} == {k.principal: k.calls for k in report.keys}

    # A new file is read alone and added.
    more = _records(4, 120, 1)
    _put(s3, log_key(ACCOUNT, "us-east-1", NOW - timedelta(days=1), 8), log_file(more))
    third = commands.trail_usage(settings, f"s3://{BUCKET}", since="90d", attribute=False)
    assert third.stats["this_run"]["files_read"] == 1
    want = _expected(mine + org + [odd] + more)
    assert {k.principal: (k.calls, k.errors) for k in third.keys if k.calls} == want

    # Only one region, and a shorter window, from the same store.
    store = open_store(settings.state)
    try:
        since = (NOW - timedelta(days=2)).date()
        short = api.build_report(
            store, settings.aws(), Source("s3", BUCKET), f"s3://{BUCKET}", since, attribute=False
        )
    finally:
        store.close()
    assert {k.principal: k.calls for k in short.keys if k.calls} == {
        k: v[0] for k, v in _expected(org + more).items()
    }


def test_local_directory_in_worker_processes_matches_independent_count(
    settings: Settings, tmp_path: Path
) -> None:
    logs = tmp_path / "logs"
    everything: list[dict[str, Any]] = []
    for n in range(24):  # enough files for the worker-process path
        records = _records(100 + n, 150, 5)
        everything += records
        path = logs / log_key(ACCOUNT, "us-east-1", NOW - timedelta(days=5), n)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(log_file(records))
    report = commands.trail_usage(settings, str(logs), since="30d", workers=2, attribute=False)
    assert {k.principal: (k.calls, k.errors) for k in report.keys if k.calls} == _expected(
        everything
    )
    assert report.stats["this_run"]["files_read"] == 24
    assert report.source == "dir" and report.dataset == f"dir:{logs.resolve()}"


def test_lookup_events_is_paced_and_paginated(settings: Settings, aws: Any) -> None:
    # Moto has no LookupEvents: Stubber on the cloudtrail client only.
    session = settings.aws()
    client = session.client("cloudtrail", "us-east-1")
    records = _records(7, 120, 2)
    pages = [records[0:50], records[50:100], records[100:]]
    slept: list[float] = []
    clock = [0.0]

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock[0] += seconds

    with Stubber(client) as stub:
        for index, page in enumerate(pages):
            expected: dict[str, Any] = {"StartTime": ANY, "MaxResults": 50}
            if index:
                expected["NextToken"] = f"token-{index}"
            response: dict[str, Any] = {
                "Events": [
                    {"EventId": r["eventID"], "CloudTrailEvent": json.dumps(r)} for r in page
                ]
            }
            if index < len(pages) - 1:
                response["NextToken"] = f"token-{index + 1}"
            stub.add_response("lookup_events", response, expected)
        store = open_store(settings.state)
        try:
            source = Source(kind="lookup")
            stats = api.ingest_source(
                store,
                session,
                source,
                f"lookup:{ACCOUNT}",
                (NOW - timedelta(days=90)).date(),
                regions=["us-east-1"],
                limiter=RateLimiter(2.0, clock=lambda: clock[0], sleep=sleep),
            )
            report = api.build_report(
                store,
                session,
                source,
                f"lookup:{ACCOUNT}",
                None,
                ingest_stats=stats,
                attribute=False,
            )
        finally:
            store.close()
        stub.assert_no_pending_responses()
    assert slept == [0.5, 0.5]  # three calls at 2 per second
    assert stats.counters["records"] == 120
    assert {k.principal: (k.calls, k.errors) for k in report.keys if k.calls} == _expected(records)


def test_athena_creates_a_projected_table_and_runs_the_same_aggregation(
    settings: Settings, aws: Any
) -> None:
    s3 = aws("s3")
    s3.create_bucket(Bucket=BUCKET)
    records = _records(8, 200, 4)
    _put(
        s3, "trails/" + log_key(ACCOUNT, "us-east-1", NOW - timedelta(days=4), 1), log_file(records)
    )
    _put(s3, "trails/" + log_key(ACCOUNT, "eu-west-1", NOW - timedelta(days=4), 2), log_file([]))
    since = (NOW - timedelta(days=30)).date()
    source = Source(kind="athena", bucket=BUCKET, prefix="trails")
    # The rows Athena would return: the local aggregation of the same file, as strings.
    from migrate.cloudtrail.parse import parse_bytes

    combos = parse_bytes("x", log_file(records)).combos
    rows = [{"Data": [{"VarCharValue": name} for name in (*athena.DIMENSION_SQL, "calls")]}]
    rows += [
        {"Data": [{"VarCharValue": v} for v in (*combo, str(count), first, last)]}
        for combo, (count, first, last) in combos.items()
    ]
    session = settings.aws()
    client = session.client("athena")  # moto runs no query: Stubber for Athena only
    table = f"cloudtrail_logs_{ACCOUNT}"
    ddl = athena.table_ddl(
        table, BUCKET, "trails/AWSLogs/", ACCOUNT, ["eu-west-1", "us-east-1"], since
    )
    with Stubber(client) as stub:
        context = {"Database": "default"}
        results = {"OutputLocation": "s3://athena-results/"}
        stub.add_response(
            "start_query_execution",
            {"QueryExecutionId": "q-ddl"},
            {"QueryString": ddl, "QueryExecutionContext": context, "ResultConfiguration": results},
        )
        stub.add_response(
            "get_query_execution",
            {"QueryExecution": {"Status": {"State": "SUCCEEDED"}}},
            {"QueryExecutionId": "q-ddl"},
        )
        stub.add_response(
            "start_query_execution",
            {"QueryExecutionId": "q-agg"},
            {
                "QueryString": athena.aggregation_sql(table, since),
                "QueryExecutionContext": context,
                "ResultConfiguration": results,
            },
        )
        stub.add_response(
            "get_query_execution",
            {"QueryExecution": {"Status": {"State": "RUNNING"}}},
            {"QueryExecutionId": "q-agg"},
        )
        stub.add_response(
            "get_query_execution",
            {"QueryExecution": {"Status": {"State": "SUCCEEDED"}}},
            {"QueryExecutionId": "q-agg"},
        )
        stub.add_response(
            "get_query_results",
            {"ResultSet": {"Rows": rows}},
            {"QueryExecutionId": "q-agg", "MaxResults": 1000},
        )
        store = open_store(settings.state)
        try:
            api.ingest_source(
                store,
                session,
                source,
                source.dataset,
                since,
                athena=api.AthenaOptions(output="s3://athena-results/"),
                sleep=lambda _s: None,
            )
            report = api.build_report(
                store, session, source, source.dataset, since, attribute=False
            )
        finally:
            store.close()
        stub.assert_no_pending_responses()
    assert "'projection.enabled' = 'true'" in ddl and "${region}/${timestamp}" in ddl
    assert {k.principal: (k.calls, k.errors) for k in report.keys if k.calls} == _expected(records)


def test_sandbox_logs_attribute_each_key_to_where_it_runs(
    settings: Settings, endpoint: str, tmp_path: Path
) -> None:
    summary = seed(endpoint, tmp_path)
    report = commands.trail_usage(settings)  # auto: the trail's bucket, legacy-cloudtrail-logs
    assert report.dataset == f"s3://{summary.log_bucket}"
    app = report.key(summary.access_key_id("app-server"))
    assert app.owner == "app-server"
    assert set(app.source_ips) == {INSTANCE_PRIVATE_IP}
    where = report.ips[INSTANCE_PRIVATE_IP]
    assert where.kind == ATTR_EC2
    assert (where.instance_id, where.instance_name) == (summary.instance_id, INSTANCE_NAME)
    assert app.vpc_endpoints == {summary.s3_vpc_endpoint_id: app.calls - 7}  # RDS calls have none
    assert "s3:ListAllMyBuckets" in app.iam_actions and "rds:DescribeDBInstances" in app.iam_actions
    # The ARNs each call named: object keys of legacy-app-data, the RDS instance, "*" for
    # ListBuckets (an account-level call).
    calls = {c.event_name: c.resources for c in app.actions}
    assert calls["GetObject"] and all(
        r.startswith("arn:aws:s3:::legacy-app-data/uploads/2019/invoice-")
        or r.startswith("arn:aws:s3:::legacy-app-data/exports/customers-")
        for r in calls["GetObject"]
    )
    assert calls["ListBuckets"] == ["*"]
    assert calls["DescribeDBInstances"] == [
        f"arn:aws:rds:us-east-1:{summary.account_id}:db:legacy-mysql"
    ]
    batch_calls = {
        c.event_name: c.resources
        for c in report.key(summary.access_key_id("batch-reports")).actions
    }
    assert batch_calls["ListObjects"] == ["arn:aws:s3:::legacy-app-data"]
    assert batch_calls["PutObject"] == []  # only ever denied: no evidence of need
    batch = report.key(summary.access_key_id("batch-reports"))
    assert report.ips[BATCH_SOURCE_IP].kind == ATTR_OUTSIDE
    put = next(c for c in batch.actions if c.event_name == "PutObject")
    assert put.errors == {"AccessDenied": 1} and batch.errors == 1
    deployer = report.key(summary.access_key_id("old-deployer"))
    assert deployer.calls == 0 and deployer.iam is not None and deployer.iam.in_account
    assert report.stats["counters"]["aws_service"] == 1
    assert report.stats["files"] == len(summary.cloudtrail_log_keys)  # the digest is skipped
    # Nothing secret reached the state store.
    raw = Path(settings.state or "").read_bytes()
    for path in Path(settings.state or "").parent.glob("*.db-wal"):
        raw += path.read_bytes()
    assert b"test-operator-secret-not-real" not in raw and b"SecretAccessKey" not in raw


PLAYBOOK = """\
name: usage
steps:
  - id: usage
    uses: cloudtrail.usage
    with:
      source: "s3://trail-logs"
      since: 30d
      workers: 0
"""


def test_step_gathers_evidence_while_planning_and_publishes_the_report_id(
    settings: Settings, aws: Any, tmp_path: Path
) -> None:
    s3 = aws("s3")
    s3.create_bucket(Bucket=BUCKET)
    records = _records(12, 300, 3)
    _put(s3, log_key(ACCOUNT, "us-east-1", NOW - timedelta(days=3), 1), log_file(records))
    book = write_playbook(tmp_path / "usage.yaml", PLAYBOOK)

    # The plan gathers the evidence (AWS read-only): the file is read now, so later steps plan
    # from the report the run will publish, and nothing is left to ingest.
    _, plan = commands.plan(settings, str(book))
    facts = plan.steps[0].facts
    assert (facts["files"], facts["source"], facts["new_files"]) == (1, "s3", 0)
    assert plan.steps[0].evidence and "1 log files" in plan.steps[0].evidence
    assert plan.steps[0].actions == []
    planned_report = plan.steps[0].planned_outputs["usage_id"]

    result = commands.run(settings, str(book), options=RunOptions(quiet=True))
    assert (result.status, result.exit_code) == ("done", 0)
    outputs = commands.status(settings, result.run_id)["steps"][0]["outputs"]
    store = open_store(settings.state)
    try:
        report = persist.load_report(store, outputs["usage_id"])
    finally:
        store.close()
    assert report is not None and outputs["dataset"] == f"s3://{BUCKET}"
    assert outputs["usage_id"] == planned_report  # the plan named the report the run publishes
    assert {k.principal: (k.calls, k.errors) for k in report.keys if k.calls} == _expected(records)
    assert set(outputs["key_ids"]) == {k.principal for k in report.keys}

    # Nothing new: the second run has no action and publishes the same report.
    second = commands.run(settings, str(book), options=RunOptions(quiet=True))
    status = commands.status(settings, second.run_id)["steps"][0]
    assert second.status == "done" and status["actions"] == []
    assert status["outputs"]["usage_id"] == outputs["usage_id"]


def test_cli_prints_a_table_per_key_and_json(settings: Settings, tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    records = _records(21, 200, 2)
    path = logs / log_key(ACCOUNT, "us-east-1", NOW - timedelta(days=2), 1)
    path.parent.mkdir(parents=True)
    path.write_bytes(log_file(records))

    @click.group()
    @click.pass_context
    def root(ctx: click.Context) -> None:
        ctx.obj = settings

    root.add_command(trail)
    runner = CliRunner()
    text = runner.invoke(root, ["trail", "usage", "--source", str(logs), "--no-attribution"])
    assert text.exit_code == 0, text.output
    for key_id, (calls, _errors) in _expected(records).items():
        assert key_id in text.output and f"calls: {calls}," in text.output
    assert "s3:GetObject" in text.output and "report stored as usage-" in text.output
    as_json = runner.invoke(root, ["trail", "usage", "--source", str(logs), "--json"])
    data = json.loads(as_json.output)
    assert data["stats"]["this_run"]["files_already_ingested"] == 1
    assert data["enriched"] is True and data["not_enriched_reason"] is None
    get = next(
        c
        for k in data["keys"]
        if k["principal"] == "AKIAEXAMPLEAPP000001"
        for c in k["actions"]
        if c["event_name"] == "GetObject"
    )
    assert get["resources"] and all(
        r.startswith("arn:aws:s3:::app-bucket-") for r in get["resources"]
    )
    assert "on  arn:aws:s3:::app-bucket-" in text.output
    md = runner.invoke(root, ["trail", "usage", "--source", str(logs), "--md"])
    assert md.output.startswith("# CloudTrail access-key usage") and "| IAM action |" in md.output
    assert "| resources |" in md.output and "`arn:aws:s3:::app-bucket-" in md.output
    bad = runner.invoke(root, ["trail", "usage", "--source", str(tmp_path / "nope")])
    assert bad.exit_code != 0
