"""``s3.reencrypt`` with ``mode: batch``: S3 Batch Operations does the copies.

The step still lists and HEADs every object (reads are cheap and tell what each one needs), but
instead of copying, it writes the keys of the objects a batch copy can take without losing
anything into CSV manifests, one per storage class (a ``S3PutObjectCopy`` job applies one storage
class, one ACL, one website redirect and one Object Lock setting to all its objects), uploads
them, and submits one job per manifest. Objects a job would damage (non-default ACL grants,
a website redirect, Object Lock settings, sizes above the multipart threshold, storage classes
Batch Operations cannot write) go through the normal copy lane at once. The run then waits for
the jobs as a state, and reconciles their completion reports: failed tasks get a copy-lane pass
of their own.

Phases, kept in the action's ``batch`` checkpoint: ``manifest`` -> ``submit`` -> ``wait`` ->
``reconcile`` -> ``done``. Every phase can be cut by a crash and redone: manifest files are cut
back to the checkpointed length, a re-uploaded manifest has the same content (and ETag), and the
job's ``ClientRequestToken`` is derived from run, step, bucket, storage class and attempt, so
``CreateJob`` after a crash returns the job created before it.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

from botocore.exceptions import ClientError

from migrate.aws.errors import not_found
from migrate.engine.base import Wait
from migrate.engine.context import StepContext
from migrate.errors import StepFailed
from migrate.steps.s3 import objects as so
from migrate.steps.s3.counts import list_pages
from migrate.steps.s3.ledger import ReportFile, Tally
from migrate.steps.s3.params import ReencryptParams
from migrate.steps.s3.worker import ObjectWorker

# Storage classes an S3PutObjectCopy job can write (S3StorageClass, minus the archive classes,
# whose objects are skipped or, when restored, copied by the copy lane).
BATCH_CLASSES = frozenset(
    {"STANDARD", "STANDARD_IA", "ONEZONE_IA", "INTELLIGENT_TIERING", "GLACIER_IR"}
)
JOB_DONE = frozenset({"Complete", "Failed", "Cancelled"})
PRICE_PER_JOB = 0.25  # USD, us-east-1 list price
PRICE_PER_MILLION_OBJECTS = 1.00


def manifest_line(bucket: str, key: str) -> str:
    """One ``S3BatchOperations_CSV_20180820`` line: bucket, URL-encoded key.

    No version id on purpose: a task with a version id copies *that* version onto the key, which
    would bring old content back over a newer write. Without it the task copies the current one.
    """
    return f"{bucket},{quote(key, safe='/')}\n"


def job_token(run_id: str, step_id: str, bucket: str, storage_class: str, attempt: int) -> str:
    """The deterministic ``ClientRequestToken`` (<= 64 characters) of one job."""
    text = f"migrate:{run_id}:{step_id}:{bucket}:{storage_class}:{attempt}"
    return hashlib.sha256(text.encode()).hexdigest()


def manifest_key(
    prefix: str, run_id: str, step_id: str, bucket: str, cls: str, attempt: int
) -> str:
    """Where the manifest of one job is uploaded in the batch bucket."""
    return f"{prefix.strip('/')}/manifests/{run_id}/{step_id}/{bucket}/{cls}-{attempt}.csv"


def report_prefix(prefix: str, run_id: str, step_id: str, bucket: str) -> str:
    """Where S3 writes the completion reports of this bucket's jobs."""
    return f"{prefix.strip('/')}/reports/{run_id}/{step_id}/{bucket}"


def create_job_request(
    *,
    account_id: str,
    bucket: str,
    storage_class: str,
    target_arn: str,
    bucket_key: bool,
    manifest_bucket: str,
    manifest_object: str,
    manifest_etag: str,
    report_bucket: str,
    report_prefix: str,
    report_scope: str,
    role_arn: str,
    priority: int,
    token: str,
    description: str,
) -> dict[str, Any]:
    """The ``s3control.create_job`` parameters of an in-place re-encryption job.

    ``TargetResource`` is the source bucket and there is no ``TargetKeyPrefix``: each object is
    copied onto itself. ``MetadataDirective=COPY`` without ``NewObjectMetadata`` keeps user
    metadata and content headers; without ``NewObjectTagging`` the tags are copied; no ACL is
    given, so the copy gets the default (owner-only) ACL, which is why objects with other grants
    are not in the manifest.
    """
    return {
        "AccountId": account_id,
        "ConfirmationRequired": False,
        "Operation": {
            "S3PutObjectCopy": {
                "TargetResource": f"arn:aws:s3:::{bucket}",
                "MetadataDirective": "COPY",
                "StorageClass": storage_class,
                "SSEAwsKmsKeyId": target_arn,
                "BucketKeyEnabled": bucket_key,
            }
        },
        "Report": {
            "Bucket": f"arn:aws:s3:::{report_bucket}",
            "Format": "Report_CSV_20180820",
            "Enabled": True,
            "Prefix": report_prefix,
            "ReportScope": report_scope,
        },
        "ClientRequestToken": token,
        "Manifest": {
            "Spec": {"Format": "S3BatchOperations_CSV_20180820", "Fields": ["Bucket", "Key"]},
            "Location": {
                "ObjectArn": f"arn:aws:s3:::{manifest_bucket}/{manifest_object}",
                "ETag": manifest_etag,
            },
        },
        "Description": description[:256],
        "Priority": priority,
        "RoleArn": role_arn,
    }


def copy_lane_reason(
    head: Mapping[str, Any], acl_headers: Mapping[str, str], multipart_threshold: int
) -> str | None:
    """Why an object needing work must not go into a batch job (None: it can).

    A job applies one ACL, redirect, lock setting and storage class to every object, and copies
    at most 5 GB per object; anything it would drop or cannot do goes to the copy lane.
    """
    if acl_headers:
        return "acl"
    if head.get("WebsiteRedirectLocation"):
        return "redirect"
    if head.get("ObjectLockMode") or head.get("ObjectLockLegalHoldStatus") == "ON":
        return "object_lock"
    if int(head.get("ContentLength") or 0) > multipart_threshold:
        return "large"
    if (head.get("StorageClass") or "STANDARD") not in BATCH_CLASSES:
        return "storage_class"
    return None


def failed_tasks(
    s3: Any, report_bucket: str, prefix: str, job_id: str
) -> Iterator[tuple[str, str]]:
    """(key, error) of every failed task in a job's completion report, streamed.

    The report is ``<prefix>/job-<id>/manifest.json`` naming result CSV files
    (``Bucket, Key, VersionId, TaskStatus, ErrorCode, HTTPStatusCode, ResultMessage``); keys are
    URL-encoded as in the manifest.
    """
    top = f"{prefix}/job-{job_id}/manifest.json"
    try:
        body = s3.get_object(Bucket=report_bucket, Key=top)["Body"].read()
    except ClientError as exc:
        if not_found(exc):
            raise StepFailed(
                f"the completion report of S3 Batch Operations job {job_id} is missing "
                f"(s3://{report_bucket}/{top}). Check that the job's role may write to "
                f"s3://{report_bucket}/{prefix}/; `migrate resume` reads it again."
            ) from None
        raise
    manifest = json.loads(body)
    for result in manifest.get("Results") or []:
        if result.get("TaskExecutionStatus") != "failed":
            continue
        obj = s3.get_object(Bucket=result.get("Bucket") or report_bucket, Key=result["Key"])
        text = io.TextIOWrapper(io.BufferedReader(obj["Body"]), encoding="utf-8", newline="")
        for row in csv.reader(text):
            if len(row) < 4 or row[3] == "succeeded":
                continue
            yield unquote(row[1]), " ".join(x for x in row[4:] if x)[:300]


@dataclass
class BatchLane:
    """Runs the phases of one bucket's batch re-encryption (see the module docstring).

    The ``worker`` is the bucket's copy lane: its HEAD and ACL reads classify objects for the
    manifests, it re-encrypts (or leaves and lists) what a job cannot take, and its ledger
    (tally and report file) is the bucket's.
    """

    ctx: StepContext
    worker: ObjectWorker
    region: str

    @property
    def s3(self) -> Any:
        """The bucket's S3 client."""
        return self.worker.s3

    @property
    def bucket(self) -> str:
        """The bucket being re-encrypted."""
        return self.worker.bucket

    @property
    def params(self) -> ReencryptParams:
        """The step's parameters."""
        return self.worker.params

    @property
    def tally(self) -> Tally:
        """The bucket's counters."""
        return self.worker.tally

    @property
    def report(self) -> ReportFile:
        """The bucket's per-object report file."""
        return self.worker.report

    # -- state -----------------------------------------------------------------------------------
    def _files_dir(self) -> Path:
        return self.ctx.state_dir / "s3-reencrypt" / str(self.ctx.run_id)

    def _manifest_path(self, cls: str) -> Path:
        return self._files_dir() / f"{self.ctx.step_id}-{self.bucket}-manifest-{cls}.csv"

    def _save(self, state: dict[str, Any]) -> None:
        state["tally"] = self.tally.to_dict()
        state["report_offset"] = self.report.offset()
        state["failed_keys"] = list(self.tally.failed_keys)
        self.ctx.checkpoint(state, done=int(state.get("listed", 0)), name="batch")

    def run(self) -> Wait | None:
        """Advance as far as possible; a :class:`Wait` while jobs are running."""
        saved = self.ctx.load_checkpoint("batch")
        state: dict[str, Any] = dict(saved["cursor"]) if saved else {"phase": "manifest"}
        if state["phase"] == "manifest":
            self._write_manifests(state)
        if state["phase"] == "submit":
            self._submit(state)
        if state["phase"] == "wait":
            wait = self._wait(state)
            if wait is not None:
                return wait
        if state["phase"] == "reconcile":
            self._reconcile(state)
        return None

    # -- phase 1: manifests ----------------------------------------------------------------------
    def _classify(self, obj: dict[str, Any]) -> tuple[str, str] | None:
        """(storage class, key) for the manifest, or None when handled (or left) here."""
        key = str(obj["Key"])
        head, ssec = self.worker.head(key)
        if head is None and not ssec:
            self.tally.add("vanished", key=key)
            return None
        state = so.classify(head or {}, self.worker.target_arn, ssec=ssec)
        if state == so.TARGET:
            self.tally.add("already")
            return None
        head = head or {}
        if not so.needs_work(state, self.params.rekey):
            # Left and listed (SSE-C, archived, another key): the worker reports them.
            self.worker({"Key": key, "ETag": head.get("ETag")})
            return None
        if self.worker.use_update and (
            state == so.SSE_S3 or head.get("ServerSideEncryption") == "aws:kms"
        ):
            # UpdateObjectEncryption needs no copy at all: better than any batch job.
            self.worker({"Key": key, "ETag": head.get("ETag")})
            return None
        if key in self.worker.null_version_keys:
            # A job's copy on a Suspended bucket replaces the older `null` version just as
            # ours would: the worker leaves the object and lists it.
            self.worker({"Key": key, "ETag": head.get("ETag")})
            return None
        reason = copy_lane_reason(
            head, self.worker.acl_grants(key), self.params.multipart_threshold
        )
        if reason is not None:
            self.tally.add(f"batch_excluded_{reason}", key=key)
            self.worker({"Key": key, "ETag": head.get("ETag")})
            return None
        if self.worker.versioned and head.get("VersionId"):
            # The job's copy supersedes this version; the completion report does not name
            # versions, so the source is recorded here for noncurrent_versions: delete.
            self.report.write(
                {"key": key, "result": "batch-manifest", "source_version": head["VersionId"]}
            )
        return str(head.get("StorageClass") or "STANDARD"), key

    def _write_manifests(self, state: dict[str, Any]) -> None:
        offsets: dict[str, int] = dict(state.get("offsets", {}))
        counts: dict[str, int] = dict(state.get("counts", {}))
        self._files_dir().mkdir(parents=True, exist_ok=True)
        for cls in BATCH_CLASSES:
            path = self._manifest_path(cls)
            if path.exists():
                # Drop the lines of the page in flight at a crash (a class first seen in that
                # page has no offset yet: it goes back to empty).
                with open(path, "ab") as handle:
                    handle.truncate(offsets.get(cls, 0))
        listed = int(state.get("listed", 0))
        bar: Any = self.ctx.progress(desc=f"s3://{self.bucket} manifest", unit="obj")
        bar.update(listed)
        with ThreadPoolExecutor(max_workers=self.params.concurrency) as pool:
            start_after = str(state.get("start_after", ""))
            for page in list_pages(self.s3, self.bucket, start_after, self.params.batch_size):
                lines: dict[str, list[str]] = {}
                for found in pool.map(self._classify, page):
                    if found is not None:
                        lines.setdefault(found[0], []).append(manifest_line(self.bucket, found[1]))
                for cls, chunk in sorted(lines.items()):
                    path = self._manifest_path(cls)
                    with open(path, "a", encoding="utf-8") as handle:
                        handle.writelines(chunk)
                    offsets[cls] = path.stat().st_size
                    counts[cls] = counts.get(cls, 0) + len(chunk)
                    self.tally.add("batch_manifest", len(chunk))
                listed += len(page)
                bar.update(len(page))
                state.update(
                    start_after=str(page[-1]["Key"]), offsets=offsets, counts=counts, listed=listed
                )
                self._save(state)
                if self.tally.counts["failed"] > self.params.max_failures:
                    bar.close()
                    raise StepFailed(
                        f"s3://{self.bucket}: {self.tally.counts['failed']} objects failed in the "
                        f"copy lane (more than max_failures); see {self.report.path}. Fix the "
                        "cause and `migrate resume`: the listing goes on from here."
                    )
        bar.close()
        state.update(phase="submit", jobs={cls: {"attempt": 1} for cls in sorted(counts)})
        self._save(state)

    # -- phase 2: submit -------------------------------------------------------------------------
    def _submit(self, state: dict[str, Any]) -> None:
        params = self.params
        # Both set under mode: batch (ReencryptParams refuses the playbook otherwise).
        batch_bucket, role_arn = str(params.batch_bucket), str(params.batch_role_arn)
        control = self.ctx.client("s3control", self.region)
        account = self.ctx.account_id
        store = self.ctx.client("s3", self.region)
        run_id, step_id = str(self.ctx.run_id), self.ctx.step_id
        for cls, job in sorted(state.get("jobs", {}).items()):
            if job.get("job_id"):
                continue
            attempt = int(job.get("attempt", 1))
            key = manifest_key(params.batch_prefix, run_id, step_id, self.bucket, cls, attempt)
            # Same content on a redo, so the same ETag: the token then names the same request.
            store.upload_file(str(self._manifest_path(cls)), batch_bucket, key)
            etag = str(store.head_object(Bucket=batch_bucket, Key=key)["ETag"]).strip('"')
            request = create_job_request(
                account_id=account,
                bucket=self.bucket,
                storage_class=cls,
                target_arn=self.worker.target_arn,
                bucket_key=params.bucket_key,
                manifest_bucket=batch_bucket,
                manifest_object=key,
                manifest_etag=etag,
                report_bucket=batch_bucket,
                report_prefix=report_prefix(params.batch_prefix, run_id, step_id, self.bucket),
                report_scope=params.batch_report,
                role_arn=role_arn,
                priority=params.batch_priority,
                token=job_token(run_id, step_id, self.bucket, cls, attempt),
                description=f"migrate {run_id} {step_id}: re-encrypt s3://{self.bucket} ({cls})",
            )
            job_id = str(control.create_job(**request)["JobId"])
            job.update(job_id=job_id, status="New", manifest=f"s3://{params.batch_bucket}/{key}")
            self.ctx.record_resource(
                "s3-batch-job",
                job_id,
                region=self.region,
                details={"bucket": self.bucket, "storage_class": cls, "manifest": job["manifest"]},
            )
            self._save(state)
        state["phase"] = "wait"
        self._save(state)

    # -- phase 3: wait ---------------------------------------------------------------------------
    def _wait(self, state: dict[str, Any]) -> Wait | None:
        control = self.ctx.client("s3control", self.region)
        account = self.ctx.account_id
        running: list[str] = []
        broken: list[str] = []
        for cls, job in sorted(state.get("jobs", {}).items()):
            if job.get("status") in JOB_DONE:
                continue
            described = control.describe_job(AccountId=account, JobId=job["job_id"])["Job"]
            job["status"] = str(described.get("Status"))
            progress = described.get("ProgressSummary") or {}
            job["succeeded"] = int(progress.get("NumberOfTasksSucceeded") or 0)
            job["failed"] = int(progress.get("NumberOfTasksFailed") or 0)
            job["total"] = int(progress.get("TotalNumberOfTasks") or 0)
            if job["status"] in ("Failed", "Cancelled"):
                reasons = "; ".join(
                    str(r.get("FailureReason") or r.get("FailureCode"))
                    for r in described.get("FailureReasons") or []
                )
                broken.append(f"{job['job_id']} ({cls}) {job['status']}: {reasons or 'no reason'}")
                # The next attempt is a new job (new token) over the same manifest.
                state["jobs"][cls] = {"attempt": int(job.get("attempt", 1)) + 1}
            elif job["status"] not in JOB_DONE:
                running.append(
                    f"{job['job_id']} ({cls}) {job['status']}, "
                    f"{job['succeeded'] + job['failed']}/{job['total'] or '?'} tasks"
                )
        if broken:
            state["phase"] = "submit"
            self._save(state)
            raise StepFailed(
                f"S3 Batch Operations for s3://{self.bucket}: {'; '.join(broken)}. Fix the cause "
                f"(often the role {self.params.batch_role_arn}: trust for "
                "batchoperations.s3.amazonaws.com, s3:GetObject/PutObject on the bucket, "
                "kms:Decrypt/GenerateDataKey on the key, the manifest and report locations) and "
                "`migrate resume`: a new job is submitted over the same manifest (objects it "
                "already re-encrypted are copied once more)."
            )
        self._save(state)
        if running:
            return Wait(
                reason=f"S3 Batch Operations job(s) for s3://{self.bucket}: " + "; ".join(running),
                poll_s=self.params.batch_poll_s,
            )
        state["phase"] = "reconcile"
        self._save(state)
        return None

    # -- phase 4: reconcile ----------------------------------------------------------------------
    def _reconcile(self, state: dict[str, Any]) -> None:
        params = self.params
        store = self.ctx.client("s3", self.region)
        run_id, step_id = str(self.ctx.run_id), self.ctx.step_id
        prefix = report_prefix(params.batch_prefix, run_id, step_id, self.bucket)
        done_jobs: list[str] = list(state.get("reconciled", []))
        for cls, job in sorted(state.get("jobs", {}).items()):
            if cls in done_jobs:
                continue
            if job.get("failed", 0):
                skip = int(state.get("reconcile_line", 0))
                retry: list[dict[str, Any]] = []
                line = 0
                for key, error in failed_tasks(
                    store, str(params.batch_bucket), prefix, job["job_id"]
                ):
                    line += 1
                    if line <= skip:
                        continue  # retried before a crash (the checkpoint says so)
                    self.tally.add("batch_failed_tasks", key=key)
                    self.report.write({"key": key, "result": "batch-task-failed", "error": error})
                    retry.append({"Key": key})
                    if len(retry) >= params.batch_size:
                        self._retry(state, retry, line)
                        retry = []
                self._retry(state, retry, line)
            self.tally.add("batch_copied", int(job.get("succeeded", 0)))
            done_jobs.append(cls)
            state.update(reconciled=done_jobs, reconcile_line=0)
            self._save(state)
        state["phase"] = "done"
        self._save(state)

    def _retry(self, state: dict[str, Any], objects: list[dict[str, Any]], line: int) -> None:
        """The copy-lane pass over one batch of failed tasks, then a checkpoint."""
        with ThreadPoolExecutor(max_workers=self.params.concurrency) as pool:
            list(pool.map(self.worker, objects))
        state["reconcile_line"] = line
        self._save(state)


def batch_costs(objects: int, jobs: int) -> float:
    """The S3 Batch Operations fees (per job and per object) at list price."""
    return round(jobs * PRICE_PER_JOB + objects / 1e6 * PRICE_PER_MILLION_OBJECTS, 4)
