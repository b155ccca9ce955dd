"""s3.reencrypt with ``mode: batch`` (S3 Batch Operations) against the moto server.

moto has no S3 Batch Operations: the s3control client alone gets botocore's Stubber (CreateJob
and DescribeJob answers queued by the test, every request captured), so no s3control request is
sent. Everything else is real moto S3: the manifests the step uploads, the objects, and the
completion reports. Between the run and the resume the test plays the job: it reads the manifest
the step wrote, copies each listed object as the captured ``S3PutObjectCopy`` operation says
(failing one on purpose), and writes the completion report in AWS's format
(``<prefix>/job-<id>/manifest.json`` naming result CSVs ``Bucket, Key, VersionId, TaskStatus,
ErrorCode, HTTPStatusCode, ResultMessage``).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
import yaml
from botocore.stub import Stubber

from migrate import commands
from migrate.aws.session import AwsSession
from migrate.commands import Settings
from migrate.engine.runner import Interrupted, RunOptions
from migrate.errors import MigrateError
from migrate.steps.s3 import batch as sb
from tests.conftest import write_playbook

SRC = "batch-src"
OPS = "batch-ops"
ROLE = "arn:aws:iam::123456789012:role/s3-batch-reencrypt"
ALL_USERS = "http://acs.amazonaws.com/groups/global/AllUsers"


class _StubbedControlSession(AwsSession):
    """The operator's session, with a Stubber on every s3control client it makes."""

    def __init__(self, owner: _BatchSettings, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.owner = owner

    def client(self, service: str, region: str | None = None) -> Any:
        client = super().client(service, region)
        if service == "s3control" and not getattr(client, "_migrate_test_stub", False):
            client._migrate_test_stub = True
            stub = Stubber(client)
            for method, response in self.owner.responses:
                stub.add_response(method, response)
            self.owner.responses.clear()
            stub.activate()
            client.meta.events.register("before-parameter-build.s3-control.*", self.owner.capture)
        return client


class _BatchSettings(Settings):
    responses: list[tuple[str, dict[str, Any]]]
    calls: list[tuple[str, dict[str, Any]]]

    def aws(self) -> AwsSession:
        return _StubbedControlSession(
            self, region=self.region, endpoint_url=self.endpoint_url, profile=self.profile
        )

    def capture(self, params: dict[str, Any], model: Any, **kwargs: Any) -> None:
        self.calls.append((model.name, json.loads(json.dumps(params, default=str))))


def _settings(settings: Settings) -> _BatchSettings:
    batch = _BatchSettings(state=settings.state, endpoint_url=settings.endpoint_url, quiet=True)
    batch.responses, batch.calls = [], []
    return batch


def _book(tmp_path: Path, **with_: Any) -> str:
    step = {
        "names": [SRC],
        "kms_key": "{{ steps.kms.key_arn }}",
        "lane": "copy",
        "mode": "batch",
        "batch_role_arn": ROLE,
        "batch_bucket": OPS,
        "batch_prefix": "jobs",
        **with_,
    }
    doc = {
        "name": "batch test",
        "steps": [
            {"id": "kms", "uses": "kms.ensure_key"},
            {"id": "reencrypt", "uses": "s3.reencrypt", "with": step},
        ],
    }
    return str(write_playbook(tmp_path / "book.yaml", yaml.safe_dump(doc, sort_keys=False)))


def _key_arn(aws: Any) -> str:
    kms = aws("kms")
    alias = next(a for a in kms.list_aliases()["Aliases"] if a["AliasName"] == "alias/migrate-ftr")
    return str(kms.describe_key(KeyId=alias["TargetKeyId"])["KeyMetadata"]["Arn"])


def _job(job_id: str, status: str, succeeded: int = 0, failed: int = 0) -> dict[str, Any]:
    return {
        "Job": {
            "JobId": job_id,
            "Status": status,
            "Priority": 10,
            "ProgressSummary": {
                "TotalNumberOfTasks": succeeded + failed,
                "NumberOfTasksSucceeded": succeeded,
                "NumberOfTasksFailed": failed,
            },
        }
    }


def _play_job(
    s3: Any, request: dict[str, Any], job_id: str, fail: set[str]
) -> tuple[list[str], int]:
    """Do what S3 Batch Operations would: copy each manifest line as the operation says, write
    the completion report (failed tasks only). Returns (keys in the manifest, failures)."""
    location = request["Manifest"]["Location"]
    bucket, key = location["ObjectArn"].split(":::", 1)[1].split("/", 1)
    body = s3.get_object(Bucket=bucket, Key=key)
    assert body["ETag"].strip('"') == location["ETag"]
    op = request["Operation"]["S3PutObjectCopy"]
    target = op["TargetResource"].split(":::", 1)[1]
    keys, failed_rows = [], []
    for line in body["Body"].read().decode().splitlines():
        src_bucket, encoded = line.split(",")
        obj = unquote(encoded)
        keys.append(obj)
        if obj in fail:
            failed_rows.append([src_bucket, encoded, "", "failed", "AccessDenied", "403", "denied"])
            continue
        s3.copy_object(
            Bucket=target,
            Key=obj,
            CopySource={"Bucket": src_bucket, "Key": obj},
            MetadataDirective=op["MetadataDirective"],
            StorageClass=op["StorageClass"],
            ServerSideEncryption="aws:kms",
            SSEKMSKeyId=op["SSEAwsKmsKeyId"],
            BucketKeyEnabled=op["BucketKeyEnabled"],
        )
    report = request["Report"]
    report_bucket = report["Bucket"].split(":::", 1)[1]
    results = []
    if failed_rows:
        text = io.StringIO()
        csv.writer(text, lineterminator="\n").writerows(failed_rows)
        data = text.getvalue().encode()
        result_key = f"{report['Prefix']}/job-{job_id}/results/{hashlib.sha1(data).hexdigest()}.csv"
        s3.put_object(Bucket=report_bucket, Key=result_key, Body=data)
        results.append(
            {
                "TaskExecutionStatus": "failed",
                "Bucket": report_bucket,
                "MD5Checksum": hashlib.md5(data).hexdigest(),
                "Key": result_key,
            }
        )
    s3.put_object(
        Bucket=report_bucket,
        Key=f"{report['Prefix']}/job-{job_id}/manifest.json",
        Body=json.dumps(
            {
                "Format": "Report_CSV_20180820",
                "ReportCreationDate": "2026-01-01T00:00:00.000Z",
                "Results": results,
                "ReportSchema": "Bucket, Key, VersionId, TaskStatus, ErrorCode, HTTPStatusCode, "
                "ResultMessage",
            }
        ),
    )
    return keys, len(failed_rows)


def _seed(s3: Any) -> None:
    s3.create_bucket(Bucket=SRC)
    s3.create_bucket(Bucket=OPS)
    owner = s3.list_buckets()["Owner"]["ID"]
    for i in range(6):
        s3.put_object(
            Bucket=SRC,
            Key=f"plain/file {i}+{i}.txt",
            Body=b"p" * (i + 1),
            ContentType="text/plain",
            Metadata={"seq": str(i)},
            Tagging=f"seq={i}",
        )
    for i in range(4):
        s3.put_object(Bucket=SRC, Key=f"ia/obj-{i}", Body=b"ia", StorageClass="STANDARD_IA")
    s3.put_object(Bucket=SRC, Key="sse-s3.bin", Body=b"s", ServerSideEncryption="AES256")
    s3.put_object(Bucket=SRC, Key="shared.html", Body=b"<p>")
    s3.put_object_acl(
        Bucket=SRC,
        Key="shared.html",
        GrantRead=f'uri="{ALL_USERS}"',
        GrantFullControl=f'id="{owner}"',
    )
    s3.put_object(Bucket=SRC, Key="moved.html", Body=b"m", WebsiteRedirectLocation="/new.html")
    s3.put_object(Bucket=SRC, Key="cold.bin", Body=b"c", StorageClass="GLACIER")


def test_batch_mode_submits_one_job_per_storage_class_waits_and_reconciles(
    settings: Settings, aws: Any, tmp_path: Path
) -> None:
    s3 = aws("s3")
    _seed(s3)
    batch = _settings(settings)
    book = _book(tmp_path)
    batch.responses = [
        ("create_job", {"JobId": "job-standard-0001"}),
        ("create_job", {"JobId": "job-ia-00000001"}),
        ("describe_job", _job("job-standard-0001", "Active")),
        ("describe_job", _job("job-ia-00000001", "Preparing")),
    ]
    first = commands.run(batch, book, options=RunOptions(quiet=True, yes=True, max_wait_s=0))
    assert first.status == "waiting", commands.status(batch, first.run_id)
    action = commands.status(batch, first.run_id)["steps"][1]["actions"][0]
    assert action["status"] == "waiting" and "job-standard-0001" in action["wait_reason"]
    target = _key_arn(aws)

    # The requests: one job per storage class, in place, encryption set, report on.
    creates = [p for name, p in batch.calls if name == "CreateJob"]
    assert [c["Operation"]["S3PutObjectCopy"]["StorageClass"] for c in creates] == [
        "STANDARD",
        "STANDARD_IA",
    ]
    for create in creates:
        cls = create["Operation"]["S3PutObjectCopy"]["StorageClass"]
        assert create["Operation"]["S3PutObjectCopy"] == {
            "TargetResource": f"arn:aws:s3:::{SRC}",
            "MetadataDirective": "COPY",
            "StorageClass": cls,
            "SSEAwsKmsKeyId": target,
            "BucketKeyEnabled": True,
        }
        assert create["ConfirmationRequired"] is False and create["RoleArn"] == ROLE
        assert create["AccountId"] == "123456789012"
        assert create["ClientRequestToken"] == sb.job_token(first.run_id, "reencrypt", SRC, cls, 1)
        assert create["Report"] == {
            "Bucket": f"arn:aws:s3:::{OPS}",
            "Format": "Report_CSV_20180820",
            "Enabled": True,
            "Prefix": f"jobs/reports/{first.run_id}/reencrypt/{SRC}",
            "ReportScope": "FailedTasksOnly",
        }
        assert create["Manifest"]["Spec"] == {
            "Format": "S3BatchOperations_CSV_20180820",
            "Fields": ["Bucket", "Key"],
        }
    # Objects a job would damage went through the copy lane already; archived ones are left.
    shared = s3.head_object(Bucket=SRC, Key="shared.html")
    assert shared["SSEKMSKeyId"] == target
    grants = s3.get_object_acl(Bucket=SRC, Key="shared.html")["Grants"]
    assert any(g["Grantee"].get("URI") == ALL_USERS for g in grants)
    moved = s3.head_object(Bucket=SRC, Key="moved.html")
    assert moved["SSEKMSKeyId"] == target and moved["WebsiteRedirectLocation"] == "/new.html"
    assert "ServerSideEncryption" not in s3.head_object(Bucket=SRC, Key="cold.bin")

    # S3 Batch Operations does its work (one task fails), then the run is resumed.
    std_keys, _ = _play_job(s3, creates[0], "job-standard-0001", set())
    ia_keys, _ = _play_job(s3, creates[1], "job-ia-00000001", {"ia/obj-2"})
    assert sorted(std_keys) == sorted(
        [f"plain/file {i}+{i}.txt" for i in range(6)] + ["sse-s3.bin"]
    )
    assert sorted(ia_keys) == [f"ia/obj-{i}" for i in range(4)]
    batch.responses = [
        ("describe_job", _job("job-standard-0001", "Complete", succeeded=7)),
        ("describe_job", _job("job-ia-00000001", "Complete", succeeded=3, failed=1)),
    ]
    done = commands.resume(batch, first.run_id, options=RunOptions(quiet=True, yes=True))
    assert done.status == "done", commands.status(batch, first.run_id)
    # The resume only described the jobs: no second CreateJob.
    assert [name for name, _ in batch.calls].count("CreateJob") == 2

    for obj in s3.list_objects_v2(Bucket=SRC)["Contents"]:
        if obj["Key"] == "cold.bin":
            continue
        head = s3.head_object(Bucket=SRC, Key=obj["Key"])
        assert (head["ServerSideEncryption"], head["SSEKMSKeyId"]) == ("aws:kms", target), obj
    assert s3.head_object(Bucket=SRC, Key="ia/obj-2")["StorageClass"] == "STANDARD_IA"
    plain = s3.head_object(Bucket=SRC, Key="plain/file 3+3.txt")
    assert plain["Metadata"] == {"seq": "3"} and plain["ContentType"] == "text/plain"

    status = commands.status(batch, first.run_id)
    result = status["steps"][1]["actions"][0]["result"]
    assert result["batch_manifest"] == 11 and result["batch_copied"] == 10
    assert result["batch_failed_tasks"] == 1
    assert result["batch_excluded_acl"] == 1 and result["batch_excluded_redirect"] == 1
    assert result["copied"] == 3  # shared.html, moved.html, and the failed task ia/obj-2
    assert result["skipped_archived"] == 1
    assert status["steps"][1]["outputs"]["objects_reencrypted"] == 13
    report = Path(settings.state or "").parent / "s3-reencrypt" / first.run_id
    lines = [json.loads(x) for x in (report / f"reencrypt-{SRC}.jsonl").read_text().splitlines()]
    assert {
        "key": "ia/obj-2",
        "result": "batch-task-failed",
        "error": "AccessDenied 403 denied",
    } in (lines)


def test_a_failed_job_stops_the_action_and_resume_submits_a_new_one(
    settings: Settings, aws: Any, tmp_path: Path
) -> None:
    s3 = aws("s3")
    s3.create_bucket(Bucket=SRC)
    s3.create_bucket(Bucket=OPS)
    s3.put_object(Bucket=SRC, Key="only.txt", Body=b"x")
    batch = _settings(settings)
    book = _book(tmp_path, batch_poll_s=1)
    failed = _job("job-first-000001", "Failed")
    failed["Job"]["FailureReasons"] = [
        {"FailureCode": "AccessDenied", "FailureReason": "Reading the manifest is forbidden"}
    ]
    batch.responses = [("create_job", {"JobId": "job-first-000001"}), ("describe_job", failed)]
    first = commands.run(batch, book, options=RunOptions(quiet=True, yes=True, max_wait_s=0))
    assert first.status == "failed"
    error = commands.status(batch, first.run_id)["steps"][1]["actions"][0]["error"]
    assert "Reading the manifest is forbidden" in error and ROLE in error

    batch.responses = [
        ("create_job", {"JobId": "job-second-00001"}),
        ("describe_job", _job("job-second-00001", "Active")),
    ]
    waiting = commands.resume(batch, first.run_id, options=RunOptions(quiet=True, max_wait_s=0))
    assert waiting.status == "waiting"
    second = [p for name, p in batch.calls if name == "CreateJob"][-1]
    assert second["ClientRequestToken"] == sb.job_token(
        first.run_id, "reencrypt", SRC, "STANDARD", 2
    )
    assert second["Manifest"]["Location"]["ObjectArn"].endswith("/STANDARD-2.csv")
    _play_job(s3, second, "job-second-00001", set())
    batch.responses = [("describe_job", _job("job-second-00001", "Complete", succeeded=1))]
    done = commands.resume(batch, first.run_id, options=RunOptions(quiet=True))
    assert done.status == "done", commands.status(batch, first.run_id)
    assert s3.head_object(Bucket=SRC, Key="only.txt")["ServerSideEncryption"] == "aws:kms"


def test_batch_mode_without_a_role_is_a_validation_error(
    settings: Settings, tmp_path: Path
) -> None:
    book = _book(tmp_path, batch_role_arn=None)
    with pytest.raises(MigrateError) as err:
        commands.plan(settings, book)
    assert "batch_role_arn" in str(err.value) and "batchoperations.s3.amazonaws.com" in str(
        err.value
    )


def test_the_batch_plan_prices_the_jobs_and_names_what_the_copy_lane_takes(
    settings: Settings, aws: Any, tmp_path: Path
) -> None:
    s3 = aws("s3")
    _seed(s3)
    _, plan = commands.plan(settings, _book(tmp_path))
    action = plan.steps[1].actions[0]
    assert action.details["mode"] == "batch" and action.details["batch_jobs"] == 2
    assert "by S3 Batch Operations (up to 2 job(s), one per storage class)" in action.summary
    risks = " | ".join(action.risks)
    assert "one storage class, one ACL" in risks and ROLE in risks
    assert "without an ETag condition" in risks


class _InterruptingSession(_StubbedControlSession):
    """Ctrl-C (KeyboardInterrupt) on the HEAD of one key, once: the run stops mid-manifest."""

    def client(self, service: str, region: str | None = None) -> Any:
        client = super().client(service, region)
        if service == "s3" and not getattr(client, "_migrate_test_interrupt", False):
            client._migrate_test_interrupt = True
            client.meta.events.register("before-call.s3.HeadObject", self.owner.interrupt)
        return client


class _InterruptSettings(_BatchSettings):
    fired: bool

    def aws(self) -> AwsSession:
        return _InterruptingSession(
            self, region=self.region, endpoint_url=self.endpoint_url, profile=self.profile
        )

    def interrupt(self, params: dict[str, Any], **kwargs: Any) -> None:
        if not self.fired and params.get("url_path", "").endswith("/k-017"):
            self.fired = True
            raise KeyboardInterrupt


def test_an_interrupted_manifest_resumes_with_every_key_exactly_once(
    settings: Settings, aws: Any, tmp_path: Path
) -> None:
    s3 = aws("s3")
    s3.create_bucket(Bucket=SRC)
    s3.create_bucket(Bucket=OPS)
    for i in range(30):
        s3.put_object(
            Bucket=SRC,
            Key=f"k-{i:03d}",
            Body=b"x",
            StorageClass="ONEZONE_IA" if i == 16 else "STANDARD",
        )
    batch = _InterruptSettings(state=settings.state, endpoint_url=settings.endpoint_url, quiet=True)
    batch.responses, batch.calls, batch.fired = [], [], False
    book = _book(tmp_path, batch_size=4, concurrency=2, plan_head_limit=0)
    with pytest.raises(Interrupted):
        commands.run(batch, book, options=RunOptions(quiet=True, yes=True, max_wait_s=0))
    run = commands.status(batch)["runs"][0]
    assert run["status"] == "interrupted" and batch.fired
    assert not [name for name, _ in batch.calls if name == "CreateJob"]

    batch.responses = [
        ("create_job", {"JobId": "job-onezone-0001"}),
        ("create_job", {"JobId": "job-standard-0001"}),
        ("describe_job", _job("job-onezone-0001", "Active")),
        ("describe_job", _job("job-standard-0001", "Active")),
    ]
    waiting = commands.resume(batch, run["id"], options=RunOptions(quiet=True, max_wait_s=0))
    assert waiting.status == "waiting", commands.status(batch, run["id"])
    manifests: dict[str, list[str]] = {}
    for name, request in batch.calls:
        if name == "CreateJob":
            arn = request["Manifest"]["Location"]["ObjectArn"]
            key = arn.split(":::", 1)[1].split("/", 1)[1]
            text = s3.get_object(Bucket=OPS, Key=key)["Body"].read().decode()
            manifests[request["Operation"]["S3PutObjectCopy"]["StorageClass"]] = text.splitlines()
    assert manifests["ONEZONE_IA"] == [f"{SRC},k-016"]
    assert sorted(manifests["STANDARD"]) == [f"{SRC},k-{i:03d}" for i in range(30) if i != 16]


def test_noncurrent_versions_delete_removes_the_sources_a_job_copied(
    settings: Settings, aws: Any, tmp_path: Path
) -> None:
    """A versioned bucket in batch mode with ``noncurrent_versions: delete``: the completion
    report names no versions, so the step records each source version in its manifest phase;
    after approval the versions the job superseded are deleted, the failed task's is kept."""
    s3 = aws("s3")
    s3.create_bucket(Bucket=SRC)
    s3.create_bucket(Bucket=OPS)
    s3.put_bucket_versioning(Bucket=SRC, VersioningConfiguration={"Status": "Enabled"})
    for i in range(3):
        s3.put_object(Bucket=SRC, Key=f"doc-{i}", Body=f"d{i}".encode())
    batch = _settings(settings)
    book = _book(tmp_path, noncurrent_versions="delete")
    batch.responses = [
        ("create_job", {"JobId": "job-versioned-0001"}),
        ("describe_job", _job("job-versioned-0001", "Active")),
    ]
    first = commands.run(batch, book, options=RunOptions(quiet=True, yes=True, max_wait_s=0))
    assert first.status == "waiting", commands.status(batch, first.run_id)
    create = next(p for name, p in batch.calls if name == "CreateJob")
    _play_job(s3, create, "job-versioned-0001", {"doc-2"})
    batch.responses = [
        ("describe_job", _job("job-versioned-0001", "Complete", succeeded=2, failed=1)),
    ]
    gated = commands.resume(batch, first.run_id, options=RunOptions(quiet=True, yes=True))
    assert gated.status == "awaiting-approval", commands.status(batch, first.run_id)
    commands.approve(batch, first.run_id, "reencrypt", target=SRC)
    done = commands.resume(batch, first.run_id, options=RunOptions(quiet=True, yes=True))
    assert done.status == "done", commands.status(batch, first.run_id)
    target = _key_arn(aws)
    for i in range(3):
        versions = [
            v
            for v in s3.list_object_versions(Bucket=SRC, Prefix=f"doc-{i}")["Versions"]
            if v["Key"] == f"doc-{i}"
        ]
        # Only the encrypted copy is left: the unencrypted original is gone (doc-2's was
        # copied by the copy lane after its task failed, and recorded there).
        assert len(versions) == 1, (i, versions)
        head = s3.head_object(Bucket=SRC, Key=f"doc-{i}", VersionId=versions[0]["VersionId"])
        assert head["SSEKMSKeyId"] == target
        body = s3.get_object(Bucket=SRC, Key=f"doc-{i}")["Body"].read()
        assert body == f"d{i}".encode()


def test_a_job_never_copies_a_key_whose_older_null_version_a_copy_would_replace(
    settings: Settings, aws: Any, tmp_path: Path
) -> None:
    """Unversioned, then Enabled, then Suspended: a Batch Operations copy in the Suspended
    bucket becomes the new `null` version, as ours would, and destroys the oldest data. Such a
    key stays out of the job's manifest and is listed; the job copies the others."""
    s3 = aws("s3")
    s3.create_bucket(Bucket=SRC)
    s3.create_bucket(Bucket=OPS)
    s3.put_object(Bucket=SRC, Key="ledger.csv", Body=b"oldest")  # version null
    s3.put_bucket_versioning(Bucket=SRC, VersioningConfiguration={"Status": "Enabled"})
    s3.put_object(Bucket=SRC, Key="ledger.csv", Body=b"newer")
    s3.put_object(Bucket=SRC, Key="plain.txt", Body=b"plain")
    s3.put_bucket_versioning(Bucket=SRC, VersioningConfiguration={"Status": "Suspended"})
    batch = _settings(settings)
    batch.responses = [
        ("create_job", {"JobId": "job-suspended-0001"}),
        ("describe_job", _job("job-suspended-0001", "Active")),
    ]
    book = _book(tmp_path)
    first = commands.run(batch, book, options=RunOptions(quiet=True, yes=True, max_wait_s=0))
    assert first.status == "waiting", commands.status(batch, first.run_id)
    create = next(p for name, p in batch.calls if name == "CreateJob")
    keys, _ = _play_job(s3, create, "job-suspended-0001", set())
    assert keys == ["plain.txt"]
    batch.responses = [("describe_job", _job("job-suspended-0001", "Complete", succeeded=1))]
    done = commands.resume(batch, first.run_id, options=RunOptions(quiet=True, yes=True))
    assert done.status == "done", commands.status(batch, first.run_id)
    oldest = s3.get_object(Bucket=SRC, Key="ledger.csv", VersionId="null")
    assert oldest["Body"].read() == b"oldest"
    got = commands.status(batch, first.run_id)["steps"][1]["actions"][0]["result"]
    assert got["skipped_null_version"] == 1, got
