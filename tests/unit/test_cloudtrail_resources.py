"""Resource ARNs per access key and call: extraction from records, bounded sets, storage, report."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from migrate.cloudtrail import persist
from migrate.cloudtrail.model import UsageReport, fold
from migrate.cloudtrail.parse import FileResult, aggregate_records, parse_bytes, parse_task
from migrate.cloudtrail.resources import (
    ANY,
    MAX_ARNS,
    ArnSet,
    bound,
    merge_resources,
    params_arns,
    truncate,
)
from migrate.store import open_store
from tests.support.cloudtrail_synth import RecordFactory, log_file

ACCT = "123456789012"
KEY = "AKIARESOURCES0000001"
REGION = "us-east-1"


def _record(
    source: str,
    name: str,
    params: Any = None,
    *,
    resources: list[dict[str, str]] | None = None,
    key: str = KEY,
    day: str = "2026-11-20",
    error: str | None = None,
) -> dict[str, Any]:
    record: dict[str, Any] = {
        "eventTime": f"{day}T10:00:00Z",
        "eventSource": source,
        "eventName": name,
        "awsRegion": REGION,
        "sourceIPAddress": "10.0.1.10",
        "userAgent": "aws-cli/2",
        "userIdentity": {
            "type": "IAMUser",
            "arn": f"arn:aws:iam::{ACCT}:user/app",
            "accountId": ACCT,
            "accessKeyId": key,
            "userName": "app",
        },
        "requestParameters": params,
        "recipientAccountId": ACCT,
    }
    if resources is not None:
        record["resources"] = resources
    if error:
        record["errorCode"] = error
    return record


def _s3(name: str, bucket: str, obj: str | None = None, **kw: Any) -> dict[str, Any]:
    params: dict[str, Any] = {"bucketName": bucket, "Host": f"{bucket}.s3.amazonaws.com"}
    listed = [{"type": "AWS::S3::Bucket", "ARN": f"arn:aws:s3:::{bucket}"}]
    if obj is not None:
        params["key"] = obj
        listed.insert(0, {"type": "AWS::S3::Object", "ARN": f"arn:aws:s3:::{bucket}/{obj}"})
    return _record("s3.amazonaws.com", name, params, resources=listed, **kw)


RECORDS = [
    _s3("GetObject", "data", "exports/a.csv"),
    _s3("HeadObject", "data", "exports/b.csv"),
    _s3("GetObject", "data", "exports/c.csv", error="AccessDenied"),  # refused: not evidence
    _s3("ListObjects", "data"),
    _record("s3.amazonaws.com", "ListBuckets", {"Host": "s3.amazonaws.com"}),
    _record("s3.amazonaws.com", "PutObject", {"omitted": True, "originalSize": 200000}),
    _record("secretsmanager.amazonaws.com", "GetSecretValue", {"secretId": "prod/db"}),
    _record(
        "dynamodb.amazonaws.com",
        "Query",
        {"tableName": "orders", "indexName": "by-day", "key": {"pk": {"S": "1"}}},
    ),
    _record("dynamodb.amazonaws.com", "GetItem", {"tableName": "orders", "key": {"pk": 1}}),
    _record(
        "sqs.amazonaws.com",
        "ReceiveMessage",
        {"queueUrl": f"https://sqs.eu-west-1.amazonaws.com/{ACCT}/jobs"},
    ),
    _record("sns.amazonaws.com", "Publish", {"topicArn": f"arn:aws:sns:{REGION}:{ACCT}:alerts"}),
    _record(
        "kms.amazonaws.com",
        "Decrypt",
        {"encryptionAlgorithm": "SYMMETRIC_DEFAULT"},
        resources=[{"type": "AWS::KMS::Key", "ARN": f"arn:aws:kms:{REGION}:{ACCT}:key/k-1"}],
    ),
    _record("rds.amazonaws.com", "DescribeDBInstances", {"dBInstanceIdentifier": "Legacy-MySQL"}),
    _record("rds.amazonaws.com", "DescribeDBInstances", None, day="2026-11-21"),
    _record("sts.amazonaws.com", "GetCallerIdentity", None),
    _s3("GetObject", "data", "tmp/x", key="ASIATEMPORARY0000001"),  # a session: no resources
]

EXPECTED = {
    ("s3.amazonaws.com", "GetObject"): ["arn:aws:s3:::data/exports/a.csv"],
    ("s3.amazonaws.com", "HeadObject"): ["arn:aws:s3:::data/exports/b.csv"],
    ("s3.amazonaws.com", "ListObjects"): ["arn:aws:s3:::data"],
    ("s3.amazonaws.com", "ListBuckets"): [ANY],
    ("s3.amazonaws.com", "PutObject"): [ANY],  # truncated parameters name nothing
    ("secretsmanager.amazonaws.com", "GetSecretValue"): [
        f"arn:aws:secretsmanager:{REGION}:{ACCT}:secret:prod/db-??????"
    ],
    ("dynamodb.amazonaws.com", "Query"): [
        f"arn:aws:dynamodb:{REGION}:{ACCT}:table/orders/index/by-day"
    ],
    ("dynamodb.amazonaws.com", "GetItem"): [f"arn:aws:dynamodb:{REGION}:{ACCT}:table/orders"],
    ("sqs.amazonaws.com", "ReceiveMessage"): [f"arn:aws:sqs:eu-west-1:{ACCT}:jobs"],
    ("sns.amazonaws.com", "Publish"): [f"arn:aws:sns:{REGION}:{ACCT}:alerts"],
    ("kms.amazonaws.com", "Decrypt"): [f"arn:aws:kms:{REGION}:{ACCT}:key/k-1"],
    ("rds.amazonaws.com", "DescribeDBInstances"): [
        ANY,  # the call without an identifier
        f"arn:aws:rds:{REGION}:{ACCT}:db:legacy-mysql",
    ],
    ("sts.amazonaws.com", "GetCallerIdentity"): [ANY],
}


def _by_call(result: FileResult) -> dict[tuple[str, str], list[str]]:
    assert {call[0] for call in result.resources} <= {KEY}
    return {(c[1], c[2]): s.window() for c, s in result.resources.items()}


def test_every_service_s_resources_are_found_and_only_the_kinds_the_action_takes() -> None:
    typed = parse_bytes("f", log_file(RECORDS))
    assert typed.counters["bad_records"] == 0
    assert _by_call(typed) == EXPECTED
    # The tolerant path (odd files, LookupEvents) finds exactly the same.
    tolerant = FileResult(name="t")
    aggregate_records(copy.deepcopy(RECORDS), tolerant)
    assert _by_call(tolerant) == EXPECTED
    assert tolerant.combos == typed.combos
    # Within one log file (minutes of events), every ARN of a call gets the call's last day.
    assert typed.resources[(KEY, "rds.amazonaws.com", "DescribeDBInstances")].arns == {
        ANY: "2026-11-21",
        f"arn:aws:rds:{REGION}:{ACCT}:db:legacy-mysql": "2026-11-21",
    }


def test_sets_stay_bounded_and_generalise_by_folder_level() -> None:
    assert truncate("arn:aws:s3:::b/data/2026/x.csv", 3) == "arn:aws:s3:::b/data/2026/*"
    assert truncate("arn:aws:s3:::b/data/2026/x.csv", 2) == "arn:aws:s3:::b/data/*"
    assert truncate(truncate("arn:aws:s3:::b/data/2026/x.csv", 3), 2) == "arn:aws:s3:::b/data/*"
    assert truncate("arn:aws:s3:::b/top.csv", 2) == "arn:aws:s3:::b/top.csv"
    assert truncate("arn:aws:s3:::b", 0) == ANY
    many = ArnSet({f"arn:aws:s3:::b/logs/2026/{n:05d}.gz": "2026-11-20" for n in range(500)})
    many.arns["arn:aws:s3:::b/config/app.yml"] = "2026-11-21"
    bound(many)
    assert many.arns == {
        "arn:aws:s3:::b/logs/2026/*": "2026-11-20",
        "arn:aws:s3:::b/config/app.yml": "2026-11-21",
    }
    assert many.level == 3
    many.add("arn:aws:s3:::b/logs/2026/11/deeper.gz", "2026-11-22")  # generalised alike
    assert "arn:aws:s3:::b/logs/2026/*" in many.arns and len(many.arns) == 2
    buckets = ArnSet({f"arn:aws:s3:::bucket-{n}": "2026-11-20" for n in range(MAX_ARNS + 1)})
    assert bound(buckets).arns == {ANY: "2026-11-20"}  # not even one level fits: "*"


def test_a_workload_touching_many_objects_costs_a_bounded_set() -> None:
    factory = RecordFactory(seed=4)
    records = list(factory.records(4000))  # random keys: thousands of distinct objects
    result = parse_bytes("f", log_file(records))
    assert result.resources and all(len(s.arns) <= MAX_ARNS for s in result.resources.values())
    get = result.resources[("AKIAEXAMPLEAPP000001", "s3.amazonaws.com", "GetObject")]
    assert sorted(get.arns) == [f"arn:aws:s3:::app-bucket-{n}/data/*" for n in range(4)]
    # Merging files keeps the bound, in any order, to the same result.
    halves = [
        parse_bytes("a", log_file(records[:2000])),
        parse_bytes("b", log_file(records[2000:])),
    ]
    one: dict[Any, ArnSet] = {}
    other: dict[Any, ArnSet] = {}
    for r in halves:
        merge_resources(one, r.resources)
    for r in reversed(halves):
        merge_resources(other, r.resources)
    assert {c: s.arns for c, s in one.items()} == {c: s.arns for c, s in other.items()}
    # A worker's task starts each file at the level earlier files reached: same result.
    task = parse_task([("a", log_file(records[:2000])), ("b", log_file(records[2000:]))])
    assert {c: s.arns for c, s in task.resources.items()} == {c: s.arns for c, s in one.items()}


def test_request_parameters_of_common_services() -> None:
    def arns(source: str, **params: Any) -> list[str]:
        return params_arns(source, params.get, "us-east-1", ACCT)

    secret = f"arn:aws:secretsmanager:us-east-1:{ACCT}:secret:db-AbCdEf"
    assert arns("secretsmanager.amazonaws.com", secretId=secret) == [secret]
    assert arns("kms.amazonaws.com", keyId="alias/app") == []  # not an ARN: resources[] decides
    assert arns("sqs.amazonaws.com", queueUrl="https://sqs.us-east-1.amazonaws.com/x") == []
    assert arns("rds.amazonaws.com") == [] and arns("ec2.amazonaws.com", instanceId="i-1") == []
    assert params_arns("dynamodb.amazonaws.com", {"tableName": "t"}.get, None, ACCT) == []


def test_stored_per_batch_merged_windowed_and_shown_in_the_report(tmp_path: Path) -> None:
    store = open_store(str(tmp_path / "m.db"))
    try:
        first = parse_bytes("1", log_file(RECORDS))
        persist.commit_batch(store, "d", [(first, None)], first.combos, resources=first.resources)
        later = _s3("GetObject", "data", "imports/z.csv", day="2026-11-25")
        second = parse_bytes("2", log_file([later]))
        persist.commit_batch(
            store, "d", [(second, None)], second.combos, resources=second.resources
        )
        stored = persist.load_resources(store, "d")
        get = stored[(KEY, "s3.amazonaws.com", "GetObject")]
        assert get.window() == [
            "arn:aws:s3:::data/exports/a.csv",
            "arn:aws:s3:::data/imports/z.csv",
        ]
        assert get.window("2026-11-22") == ["arn:aws:s3:::data/imports/z.csv"]
        # LookupEvents replaces its window: what the stored rows saw from that day on goes.
        persist.replace_window(store, "d", "2026-11-24", {}, resources={})
        again = persist.load_resources(store, "d")[(KEY, "s3.amazonaws.com", "GetObject")]
        assert again.window() == ["arn:aws:s3:::data/exports/a.csv"]
    finally:
        store.close()
    combos = {**first.combos, **second.combos}
    resources = {c: s.window() for c, s in stored.items()}
    keys, sessions = fold(combos.items(), resources=resources)
    calls = {(c.event_source, c.event_name): c for c in keys[KEY].actions}
    assert calls[("s3.amazonaws.com", "ListBuckets")].resources == [ANY]
    assert (
        calls[("s3.amazonaws.com", "GetObject")].resources
        == resources[(KEY, "s3.amazonaws.com", "GetObject")]
    )
    assert all(not c.resources for s in sessions.values() for c in s.actions)
    report = UsageReport("d", "dir", None, None, "2026-11-30T00:00:00Z", keys=list(keys.values()))
    again_report = UsageReport.from_dict(json.loads(json.dumps(report.to_dict())))
    assert again_report == report
    old = report.to_dict()
    for call in old["keys"][0]["actions"]:
        del call["resources"]  # a report stored before resources were recorded
    assert UsageReport.from_dict(old).keys[0].actions[0].resources == []


def _distinct_object_records(
    key_id: str, user: str, count: int, start: int
) -> list[dict[str, Any]]:
    """``count`` S3 data events of one key, each on a different object under its own folder."""
    out = []
    for n in range(start, start + count):
        bucket = f"bucket-{n % 3}"
        obj = f"tenant-{n:06d}/2026/11/{n:08x}.json" if n % 5 else f"{n:08x}.bin"
        record = _s3("GetObject" if n % 2 else "PutObject", bucket, obj, key=key_id)
        record["userIdentity"]["userName"] = user
        record["userIdentity"]["arn"] = f"arn:aws:iam::{ACCT}:user/{user}"
        out.append(record)
    return out


def test_100k_distinct_objects_per_key_keep_every_structure_and_the_report_bounded(
    tmp_path: Path, monkeypatch: Any
) -> None:
    """Not a timing test: counts what ingestion holds while reading 100,000 distinct objects
    per key, and checks that it is bounded by keys x calls x MAX_ARNS, not by the objects."""
    keys = {"AKIAMANYOBJECTS00001": "loader", "AKIAMANYOBJECTS00002": "exporter"}
    per_key, per_file = 100_000, 10_000
    logs = tmp_path / "logs"
    files = 0
    for start in range(0, per_key, per_file):
        records: list[dict[str, Any]] = []
        for key_id, user in keys.items():
            records += _distinct_object_records(key_id, user, per_file, start)
        path = logs / f"{ACCT}_CloudTrail_{REGION}_20261120T{files:04d}Z_x.json.gz"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(log_file(records))
        files += 1

    held = {"adds": 0, "largest": 0, "sets": 0}
    real_add, real_init = ArnSet.add, ArnSet.__init__

    def counting_add(self: ArnSet, arn: str, day: str = "") -> None:
        real_add(self, arn, day)
        held["adds"] += 1
        held["largest"] = max(held["largest"], len(self.arns))

    def counting_init(self: ArnSet, *args: Any, **kwargs: Any) -> None:
        real_init(self, *args, **kwargs)
        held["sets"] += 1

    monkeypatch.setattr(ArnSet, "add", counting_add)
    monkeypatch.setattr(ArnSet, "__init__", counting_init)
    from migrate.cloudtrail.ingest import ingest
    from migrate.cloudtrail.sources import list_dir_logs

    store = open_store(str(tmp_path / "m.db"))
    try:
        # workers=0: parsing runs in this process, so the counters see the workers' structures.
        stats = ingest(store, "d", list_dir_logs(str(logs)), local_root=str(logs), workers=0)
        stored = persist.load_resources(store, "d")
        combos = list(persist.load_combos(store, "d"))
    finally:
        store.close()
    assert stats.counters["aggregated"] == 2 * per_key
    # Every object of every record went through a bounded set, and none ever held more than
    # MAX_ARNS; sets are per file and call (2 keys x 2 calls x 10 files), plus merges.
    assert held["adds"] >= 2 * per_key
    assert held["largest"] <= MAX_ARNS
    assert held["sets"] <= 2 * 2 * files * 3
    # What is stored and reported is bounded the same way, and generalised honestly.
    assert set(stored) == {
        (k, "s3.amazonaws.com", n) for k in keys for n in ("GetObject", "PutObject")
    }
    for arn_set in stored.values():
        assert arn_set.window() == [f"arn:aws:s3:::bucket-{n}/*" for n in range(3)]
    assert len(combos) == 2 * 2  # one day, two keys, two calls: objects are never a dimension
    by_key, _sessions = fold(combos, resources={c: s.window() for c, s in stored.items()})
    for usage in by_key.values():
        assert sum(c.count for c in usage.actions) == per_key
        assert all(0 < len(c.resources) <= MAX_ARNS for c in usage.actions)


def test_request_parameters_add_the_actions_the_role_would_lack(tmp_path: Path) -> None:
    """Ingestion reads the parameters that add an action: an ACL header on PutObject needs
    s3:PutObjectAcl, a version id s3:GetObjectVersion, an instance profile on RunInstances
    iam:PassRole. A role built from the names alone lacks them, and the workload breaks the
    day its key dies. Both decoders (typed and plain) and a stored, windowed report agree;
    a call the key was refused adds nothing; a PutObject without the header adds nothing."""
    acl = _s3("PutObject", "shared", "drop/a.csv")
    acl["requestParameters"]["x-amz-acl"] = "bucket-owner-full-control"
    plain_put = _s3("PutObject", "shared", "drop/b.csv", day="2026-11-26")
    versioned = _s3("GetObject", "data", "exports/a.csv", day="2026-11-25")
    versioned["requestParameters"]["versionId"] = "3HL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY"
    launch = _record(
        "ec2.amazonaws.com",
        "RunInstances",
        {"instancesSet": {}, "iamInstanceProfile": {"name": "worker"}},
    )
    refused = _s3("PutObjectTagging", "data", "x.csv", error="AccessDenied")
    refused["requestParameters"]["versionId"] = "v1"
    records = [acl, versioned, launch, refused]
    typed = parse_bytes("t", log_file(records))
    later = parse_bytes("later", log_file([plain_put]))  # a later log file, another day
    assert not any(s.also for s in later.resources.values())
    plain = FileResult("p")
    aggregate_records(copy.deepcopy(records), plain)
    for result in (typed, plain):
        got = {call[2]: s.also_window() for call, s in result.resources.items() if s.also}
        assert got == {
            "PutObject": ["s3:PutObjectAcl"],
            "GetObject": ["s3:GetObjectVersion"],
            "RunInstances": ["iam:PassRole"],
        }, result.name
    store = open_store(str(tmp_path / "m.db"))
    try:
        persist.commit_batch(store, "d", [(typed, None)], typed.combos, resources=typed.resources)
        persist.commit_batch(store, "d", [(later, None)], later.combos, resources=later.resources)
        stored = persist.load_resources(store, "d")
    finally:
        store.close()
    put = stored[(KEY, "s3.amazonaws.com", "PutObject")]
    assert put.also == {"s3:PutObjectAcl": "2026-11-20"}  # the day of the call with the header
    assert put.also_window("2026-11-21") == []  # a shorter window no longer shows the header
    also = {c: s.also_window() for c, s in stored.items()}
    keys, _ = fold(typed.combos.items(), also=also)
    calls = {c.event_name: c for c in keys[KEY].actions}
    assert calls["PutObject"].also == ["s3:PutObjectAcl"]
    assert calls["RunInstances"].also == ["iam:PassRole"]
    assert "PutObjectTagging" not in calls or calls["PutObjectTagging"].also == []
    report = UsageReport("d", "dir", None, None, "2026-11-30T00:00:00Z", keys=list(keys.values()))
    assert UsageReport.from_dict(json.loads(json.dumps(report.to_dict()))) == report
