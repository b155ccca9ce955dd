"""s3.reencrypt against the moto server: object by object, nothing is lost.

moto ignores CopySourceIfMatch, so the race "rewritten between HEAD and copy" is covered by the
Stubber tests in tests/unit/test_s3_reencrypt_worker.py; here a concurrent writer rewrites an
object between the listing and the step's HEAD (a botocore event hook plays the writer).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import yaml

from migrate import commands
from migrate.aws.session import AwsSession
from migrate.commands import Settings
from migrate.engine.runner import RunOptions
from migrate.sandbox.server import SandboxServer, is_mutating_request
from migrate.steps.s3 import objects as so
from migrate.steps.s3.reencrypt import RUN_HEAD_SAMPLE
from tests.conftest import PLAYBOOKS, run_cli, write_playbook

ALL_USERS = "http://acs.amazonaws.com/groups/global/AllUsers"
MiB = 1024**2


def _book(tmp_path: Path, **with_: Any) -> str:
    step = {"names": ["*"], "kms_key": "{{ steps.kms.key_arn }}", "lane": "copy", **with_}
    doc = {
        "name": "reencrypt test",
        "steps": [
            {"id": "kms", "uses": "kms.ensure_key"},
            {"id": "reencrypt", "uses": "s3.reencrypt", "with": step},
        ],
    }
    return str(write_playbook(tmp_path / "book.yaml", yaml.safe_dump(doc, sort_keys=False)))


def _run(settings: Settings, book: str) -> commands.RunResult:
    result = commands.run(settings, book, options=RunOptions(quiet=True, yes=True))
    assert result.status == "done", commands.status(settings, result.run_id)
    return result


def _key_arn(aws: Any) -> str:
    kms = aws("kms")
    alias = next(a for a in kms.list_aliases()["Aliases"] if a["AliasName"] == "alias/migrate-ftr")
    return str(kms.describe_key(KeyId=alias["TargetKeyId"])["KeyMetadata"]["Arn"])


KEPT = (
    "ContentType",
    "CacheControl",
    "ContentDisposition",
    "ContentEncoding",
    "ContentLanguage",
    "Expires",
    "WebsiteRedirectLocation",
    "Metadata",
    "ContentLength",
)


def _snapshot(s3: Any, bucket: str, key: str, acl: bool = True) -> dict[str, Any]:
    """What a user would compare before and after: everything but the encryption."""
    head = s3.head_object(Bucket=bucket, Key=key)
    snap = {name: head.get(name) for name in KEPT}
    snap["StorageClass"] = head.get("StorageClass") or "STANDARD"
    snap["tags"] = sorted(
        (t["Key"], t["Value"]) for t in s3.get_object_tagging(Bucket=bucket, Key=key)["TagSet"]
    )
    snap["body"] = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    if acl:
        grants = s3.get_object_acl(Bucket=bucket, Key=key)["Grants"]
        snap["grants"] = sorted(
            (g["Grantee"].get("ID") or g["Grantee"].get("URI"), g["Permission"]) for g in grants
        )
    return snap


def _encryption(s3: Any, bucket: str, key: str, **kw: Any) -> tuple[Any, Any, Any]:
    head = s3.head_object(Bucket=bucket, Key=key, **kw)
    return head.get("ServerSideEncryption"), head.get("SSEKMSKeyId"), head.get("BucketKeyEnabled")


def _seed_rich_bucket(s3: Any, bucket: str) -> list[str]:
    s3.create_bucket(Bucket=bucket)
    owner = s3.list_buckets()["Owner"]["ID"]
    keys = []
    for i in range(12):
        key = f"data/file-{i:02d}.txt"
        s3.put_object(
            Bucket=bucket,
            Key=key,
            Body=f"content {i}\n".encode() * (i + 1),
            ContentType="text/plain; charset=utf-8",
            CacheControl="max-age=60",
            ContentDisposition=f'attachment; filename="f{i}.txt"',
            ContentEncoding="identity",
            ContentLanguage="en-GB",
            Expires="2031-01-01T00:00:00Z",
            WebsiteRedirectLocation=f"/redirect/{i}",
            Metadata={"owner-team": "app", "seq": str(i)},
            Tagging=f"classification=internal&seq={i}",
            StorageClass="STANDARD_IA" if i % 3 == 0 else "STANDARD",
        )
        keys.append(key)
    s3.put_object_acl(
        Bucket=bucket,
        Key="data/file-01.txt",
        GrantRead=f'uri="{ALL_USERS}"',
        GrantFullControl=f'id="{owner}"',
    )
    s3.put_object(
        Bucket=bucket, Key="sse-s3.txt", Body=b"s3 managed", ServerSideEncryption="AES256"
    )
    keys.append("sse-s3.txt")
    return keys


def test_every_object_is_encrypted_and_nothing_else_changes(
    settings: Settings, aws: Any, tmp_path: Path
) -> None:
    s3, kms = aws("s3"), aws("kms")
    keys = _seed_rich_bucket(s3, "rich-bucket")
    other_key = kms.create_key(Description="someone else's key")["KeyMetadata"]["Arn"]
    s3.put_object(
        Bucket="rich-bucket",
        Key="other-kms.txt",
        Body=b"other",
        ServerSideEncryption="aws:kms",
        SSEKMSKeyId=other_key,
    )
    s3.put_object(Bucket="rich-bucket", Key="frozen.bin", Body=b"cold", StorageClass="GLACIER")
    before = {key: _snapshot(s3, "rich-bucket", key) for key in keys}

    result = _run(settings, _book(tmp_path))

    target = _key_arn(aws)
    for key in keys:
        assert _encryption(s3, "rich-bucket", key) == ("aws:kms", target, True), key
        assert _snapshot(s3, "rich-bucket", key) == before[key], key
    # The public-read grant is still there, exactly as before.
    assert (ALL_USERS, "READ") in before["data/file-01.txt"]["grants"]
    # Left alone and reported: another KMS key (rekey is off) and an archived object.
    assert _encryption(s3, "rich-bucket", "other-kms.txt")[1] == other_key
    assert s3.head_object(Bucket="rich-bucket", Key="frozen.bin").get("StorageClass") == "GLACIER"
    status = commands.status(settings, result.run_id)
    action = next(a for a in status["steps"][1]["actions"] if a["target"] == "rich-bucket")
    counts = action["result"]
    assert counts["copied"] == len(keys)
    assert counts["left_other_kms"] == 1 and counts["skipped_archived"] == 1
    assert counts["acl_reapplied"] == 1
    report = Path(settings.state or "").parent / "s3-reencrypt" / result.run_id
    lines = [
        json.loads(x) for x in (report / "reencrypt-rich-bucket.jsonl").read_text().splitlines()
    ]
    assert {(e["key"], e["result"]) for e in lines} == {
        ("other-kms.txt", "left_other_kms"),
        ("frozen.bin", "skipped_archived"),
    }
    assert status["steps"][1]["outputs"] == {"objects_reencrypted": len(keys), "objects_skipped": 2}


def test_rekey_moves_objects_from_another_kms_key(
    settings: Settings, aws: Any, tmp_path: Path
) -> None:
    s3, kms = aws("s3"), aws("kms")
    s3.create_bucket(Bucket="rekey-bucket")
    old = kms.create_key()["KeyMetadata"]["Arn"]
    s3.put_object(
        Bucket="rekey-bucket", Key="k", Body=b"x", ServerSideEncryption="aws:kms", SSEKMSKeyId=old
    )
    _run(settings, _book(tmp_path, rekey=True))
    assert _encryption(s3, "rekey-bucket", "k")[:2] == ("aws:kms", _key_arn(aws))


def test_versioned_bucket_keeps_its_old_versions(
    settings: Settings, aws: Any, tmp_path: Path
) -> None:
    s3 = aws("s3")
    s3.create_bucket(Bucket="versioned-bucket")
    s3.put_bucket_versioning(
        Bucket="versioned-bucket", VersioningConfiguration={"Status": "Enabled"}
    )
    for v in (1, 2):
        s3.put_object(Bucket="versioned-bucket", Key="backup.sql", Body=f"v{v}".encode())
    versions_before = s3.list_object_versions(Bucket="versioned-bucket")["Versions"]
    assert len(versions_before) == 2

    _, plan = commands.plan(settings, _book(tmp_path))
    action = plan.steps[1].actions[0]
    assert any("1 older versions exist" in r for r in action.risks)

    _run(settings, _book(tmp_path))
    versions = s3.list_object_versions(Bucket="versioned-bucket")["Versions"]
    assert len(versions) == 3  # the encrypted copy on top of both originals
    for old in versions_before:
        body = s3.get_object(
            Bucket="versioned-bucket", Key="backup.sql", VersionId=old["VersionId"]
        )
        assert body["Body"].read() in (b"v1", b"v2")
    current = s3.get_object(Bucket="versioned-bucket", Key="backup.sql")
    assert current["Body"].read() == b"v2" and current["ServerSideEncryption"] == "aws:kms"


def test_delete_superseded_versions_is_gated_and_deletes_only_the_copied_ones(
    settings: Settings, aws: Any, tmp_path: Path
) -> None:
    s3 = aws("s3")
    s3.create_bucket(Bucket="prune-bucket")
    s3.put_bucket_versioning(Bucket="prune-bucket", VersioningConfiguration={"Status": "Enabled"})
    for v in (1, 2):
        s3.put_object(Bucket="prune-bucket", Key="doc.txt", Body=f"v{v}".encode())
    book = _book(tmp_path, noncurrent_versions="delete")
    first = commands.run(settings, book, options=RunOptions(quiet=True, yes=True))
    assert first.status == "awaiting-approval"  # --yes never approves a destructive gate
    assert len(s3.list_object_versions(Bucket="prune-bucket")["Versions"]) == 3
    commands.approve(settings, first.run_id, "reencrypt", target="prune-bucket")
    done = commands.resume(settings, first.run_id, options=RunOptions(quiet=True, yes=True))
    assert done.status == "done"
    versions = s3.list_object_versions(Bucket="prune-bucket")["Versions"]
    bodies = sorted(
        s3.get_object(Bucket="prune-bucket", Key="doc.txt", VersionId=v["VersionId"])["Body"].read()
        for v in versions
    )
    # v2 (the copied original) is gone; v1, which no copy supersedes, stays; the copy is current.
    assert bodies == [b"v1", b"v2"] and len(versions) == 2
    assert _encryption(s3, "prune-bucket", "doc.txt")[0] == "aws:kms"


def test_multipart_copy_above_the_threshold_keeps_everything(
    settings: Settings, aws: Any, tmp_path: Path
) -> None:
    s3 = aws("s3")
    s3.create_bucket(Bucket="big-bucket")
    owner = s3.list_buckets()["Owner"]["ID"]
    body = os.urandom(11 * MiB)
    s3.put_object(
        Bucket="big-bucket",
        Key="big.bin",
        Body=body,
        ContentType="application/x-big",
        CacheControl="no-cache",
        ContentDisposition="inline",
        ContentLanguage="fr",
        WebsiteRedirectLocation="/elsewhere",
        Metadata={"origin": "batch"},
        Tagging="team=data&tier=gold",
        StorageClass="STANDARD_IA",
    )
    s3.put_object_acl(
        Bucket="big-bucket",
        Key="big.bin",
        GrantRead=f'uri="{ALL_USERS}"',
        GrantFullControl=f'id="{owner}"',
    )
    before = _snapshot(s3, "big-bucket", "big.bin")
    result = _run(settings, _book(tmp_path, multipart_threshold=5 * MiB, part_size=5 * MiB))
    assert _snapshot(s3, "big-bucket", "big.bin") == before
    assert _encryption(s3, "big-bucket", "big.bin")[:2] == ("aws:kms", _key_arn(aws))
    assert s3.head_object(Bucket="big-bucket", Key="big.bin")["ETag"].endswith('-3"')
    assert s3.list_multipart_uploads(Bucket="big-bucket").get("Uploads", []) == []
    action = commands.status(settings, result.run_id)["steps"][1]["actions"][0]
    assert action["result"]["multipart_copied"] == 1


class _ConcurrentWriterSession(AwsSession):
    """The operator's session, plus a writer who rewrites an object right after the step listed
    it (when the step first HEADs it): the race window between listing and copy."""

    def __init__(self, writer: Any, key: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.writer, self.key, self.fired = writer, key, False

    def client(self, service: str, region: str | None = None) -> Any:
        client = super().client(service, region)
        if service == "s3" and not getattr(client, "_writer_hooked", False):
            client.meta.events.register("before-call.s3.HeadObject", self._rewrite)
            client._writer_hooked = True
        return client

    def _rewrite(self, params: dict[str, Any], **kwargs: Any) -> None:
        if self.fired or not params.get("url_path", "").endswith(self.key):
            return
        self.fired = True
        self.writer.put_object(
            Bucket="race-bucket",
            Key=self.key,
            Body=b"NEW content from the application",
            ContentType="application/json",
            Metadata={"writer": "app-v2"},
        )


class _RaceSettings(Settings):
    writer: Any = None

    def aws(self) -> AwsSession:
        return _ConcurrentWriterSession(
            self.writer, "hot.txt", region=self.region, endpoint_url=self.endpoint_url
        )


def test_object_rewritten_after_listing_is_not_clobbered(
    settings: Settings, aws: Any, tmp_path: Path
) -> None:
    s3 = aws("s3")
    s3.create_bucket(Bucket="race-bucket")
    s3.put_object(Bucket="race-bucket", Key="hot.txt", Body=b"old", ContentType="text/plain")
    s3.put_object(Bucket="race-bucket", Key="cold.txt", Body=b"cold")
    race = _RaceSettings(state=settings.state, endpoint_url=settings.endpoint_url, quiet=True)
    race.writer = s3
    # plan_head_limit 0: the plan HEADs nothing, so the first HEAD of hot.txt is the step's own.
    result = _run(race, _book(tmp_path, plan_head_limit=0))
    got = s3.get_object(Bucket="race-bucket", Key="hot.txt")
    assert got["Body"].read() == b"NEW content from the application"
    assert got["ContentType"] == "application/json" and got["Metadata"] == {"writer": "app-v2"}
    assert got["ServerSideEncryption"] == "aws:kms"
    action = commands.status(race, result.run_id)["steps"][1]["actions"][0]
    assert action["result"]["changed_since_listing"] == 1


def _object_requests(recorded: list[Any], bucket: str) -> dict[str, int]:
    """Requests per object key the server received (bucket-level calls excluded)."""
    per_key: dict[str, int] = {}
    prefix = f"/{bucket}/"
    for rec in recorded:
        if rec["protocol"] == "rest" and rec["path"].startswith(prefix):
            key = rec["path"][len(prefix) :]
            if key:
                per_key[key] = per_key.get(key, 0) + 1
    return per_key


def test_requests_per_object_stay_low(
    moto_server: SandboxServer, settings: Settings, aws: Any, tmp_path: Path
) -> None:
    s3 = aws("s3")
    s3.create_bucket(Bucket="enforced-bucket")
    s3.put_bucket_ownership_controls(
        Bucket="enforced-bucket",
        OwnershipControls={"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]},
    )
    s3.create_bucket(Bucket="acl-bucket")
    for i in range(40):
        s3.put_object(Bucket="enforced-bucket", Key=f"o{i}", Body=b"x")
        s3.put_object(Bucket="acl-bucket", Key=f"o{i}", Body=b"x")
    owner = s3.list_buckets()["Owner"]["ID"]
    s3.put_object_acl(
        Bucket="acl-bucket",
        Key="o1",
        GrantRead=f'uri="{ALL_USERS}"',
        GrantFullControl=f'id="{owner}"',
    )
    moto_server.start_recording()
    _run(settings, _book(tmp_path, plan_head_limit=0, verify_sample=0.0))
    moto_server.stop_recording()
    recorded = moto_server.recorded_requests()
    enforced = _object_requests(recorded, "enforced-bucket")
    with_acls = _object_requests(recorded, "acl-bucket")
    assert len(enforced) == 40 and max(enforced.values()) <= 2  # HEAD + COPY
    assert len(with_acls) == 40 and max(with_acls.values()) <= 3  # HEAD + GET ?acl + COPY
    assert not any("acl" in r["query"] for r in recorded if "/enforced-bucket/" in r["path"])
    grants = s3.get_object_acl(Bucket="acl-bucket", Key="o1")["Grants"]
    assert any(g["Grantee"].get("URI") == ALL_USERS for g in grants)


def test_with_the_shipped_defaults_the_run_does_not_head_what_its_action_heads(
    moto_server: SandboxServer, endpoint: str, aws: Any, tmp_path: Path
) -> None:
    """`migrate run playbooks/s3-reencrypt.yaml --yes`, no tuning, its key made in the same run
    (so the step is observed again once the key is known): the plan HEADs its sample, the run's
    observe HEADs nothing, the action HEADs and copies each object once, and verification HEADs
    its 5% sample. Before, the run's observe HEADed the plan's 200 again; now it HEADs 5."""
    s3 = aws("s3")
    s3.create_bucket(Bucket="defaults-bucket")
    s3.put_bucket_ownership_controls(
        Bucket="defaults-bucket",
        OwnershipControls={"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]},
    )
    keys = [f"k{i:03d}" for i in range(300)]
    for key in keys:
        s3.put_object(Bucket="defaults-bucket", Key=key, Body=b"x")
    moto_server.start_recording()
    proc = run_cli(
        "-q",
        "run",
        str(PLAYBOOKS / "s3-reencrypt.yaml"),
        "-p",
        "buckets=[defaults-bucket]",
        "--yes",
        state=tmp_path / "state.db",
        endpoint=endpoint,
    )
    moto_server.stop_recording()
    assert proc.returncode == 0, proc.stderr
    per_key = _object_requests(moto_server.recorded_requests(), "defaults-bucket")
    plan_sample = 200  # plan_head_limit's default
    run_sample = RUN_HEAD_SAMPLE  # the run's observe: a handful, to tell a bucket refusing all
    verified = sum(so.in_sample(k, 0.05) for k in keys)  # verify_sample's default
    assert 0 < verified < 40
    assert sum(per_key.values()) == 2 * len(keys) + plan_sample + run_sample + verified
    assert {
        s3.head_object(Bucket="defaults-bucket", Key=k)["ServerSideEncryption"] for k in keys
    } == {"aws:kms"}


def test_plan_is_read_only_and_warns_about_readers_and_events(
    moto_server: SandboxServer, settings: Settings, aws: Any, tmp_path: Path
) -> None:
    s3, sqs = aws("s3"), aws("sqs")
    commands.run(settings, str(PLAYBOOKS / "kms-key.yaml"), options=RunOptions(quiet=True))
    s3.create_bucket(Bucket="shared-bucket")
    s3.put_object(Bucket="shared-bucket", Key="report.csv", Body=b"a,b")
    queue = sqs.create_queue(QueueName="events")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    s3.put_bucket_notification_configuration(
        Bucket="shared-bucket",
        NotificationConfiguration={
            "QueueConfigurations": [{"QueueArn": queue_arn, "Events": ["s3:ObjectCreated:*"]}]
        },
    )
    partner = "arn:aws:iam::210987654321:role/partner-reader"
    s3.put_bucket_policy(
        Bucket="shared-bucket",
        Policy=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"AWS": partner},
                        "Action": "s3:GetObject",
                        "Resource": "arn:aws:s3:::shared-bucket/*",
                    }
                ],
            }
        ),
    )
    s3.put_bucket_website(
        Bucket="shared-bucket", WebsiteConfiguration={"IndexDocument": {"Suffix": "index.html"}}
    )
    moto_server.start_recording()
    _, plan = commands.plan(settings, str(PLAYBOOKS / "s3-reencrypt.yaml"))
    moto_server.stop_recording()
    assert [r["operation"] for r in moto_server.recorded_requests() if is_mutating_request(r)] == []

    action = plan.steps[1].actions[0]
    assert action.kind == "s3.reencrypt_objects" and action.target == "shared-bucket"
    risks = " | ".join(action.risks)
    assert "SQS" in risks and "fire for every copied object" in risks
    assert "LastModified" in risks
    assert "static website hosting is on" in risks  # anonymous website reads break
    assert f"cross-account reader {partner}" in risks and "loses access" in risks
    assert action.estimate.api_requests >= 2 and action.estimate.cost_usd >= 0
    assert action.details["to_do"] == 1


def test_resume_after_a_failure_does_not_copy_again(
    moto_server: SandboxServer, settings: Settings, aws: Any, tmp_path: Path
) -> None:
    """A run stopped after some batches: the second attempt HEADs, sees the target key, and
    copies only what is left (counted server-side)."""
    s3 = aws("s3")
    s3.create_bucket(Bucket="resume-bucket")
    s3.put_bucket_ownership_controls(
        Bucket="resume-bucket",
        OwnershipControls={"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]},
    )
    for i in range(30):
        s3.put_object(Bucket="resume-bucket", Key=f"k{i:02d}", Body=b"x")
    book = _book(tmp_path, batch_size=10, plan_head_limit=0)
    moto_server.start_recording()
    _run(settings, book)
    # Make 5 objects plain again and run once more: only those 5 are copied.
    for i in range(5):
        s3.put_object(Bucket="resume-bucket", Key=f"k{i:02d}", Body=b"y")
    _run(settings, book)
    moto_server.stop_recording()
    copies: dict[str, int] = {}
    for rec in moto_server.recorded_requests():
        if rec["method"] == "PUT" and "x-amz-copy-source" in {h.lower() for h in rec["headers"]}:
            copies[rec["path"]] = copies.get(rec["path"], 0) + 1
    assert len(copies) == 30
    assert sorted(k for k, n in copies.items() if n == 2) == [
        f"/resume-bucket/k{i:02d}" for i in range(5)
    ]


def test_run_with_yes_plans_once_before_it_acts(
    moto_server: SandboxServer, settings: Settings, aws: Any, tmp_path: Path
) -> None:
    """`migrate run PLAYBOOK --yes` (the shipped playbook, default settings, the whole CLI
    process): the plan it shows is not made a second time to check it is not stale, so the plan
    sample of each bucket is HEADed twice (plan, then the run's own look), not three times."""
    s3 = aws("s3")
    s3.create_bucket(Bucket="big-bucket")
    objects = 300
    for i in range(objects):
        s3.put_object(Bucket="big-bucket", Key=f"o{i:04d}", Body=b"x")
    moto_server.start_recording()
    out = run_cli(
        "run",
        str(PLAYBOOKS / "s3-reencrypt.yaml"),
        "-p",
        "buckets=big-bucket",
        "--yes",
        state=tmp_path / "m.db",
        endpoint=moto_server.endpoint_url,
    )
    moto_server.stop_recording()
    assert out.returncode == 0, out.stderr
    heads = sum(
        1
        for r in moto_server.recorded_requests()
        if r["method"] == "HEAD" and r["path"].startswith("/big-bucket/o")
    )
    sample = 200  # plan_head_limit's default
    # One HEAD per object before its copy, the plan's and the run's samples, 5% verified.
    assert heads <= objects + 2 * sample + 0.06 * objects, heads
    assert all(
        s3.head_object(Bucket="big-bucket", Key=f"o{i:04d}")["ServerSideEncryption"] == "aws:kms"
        for i in (0, 299)
    )
