"""One bucket's re-encryption in a run: the object lane's checkpointed loop, or the batch lane,
and the tail both share (the recorded result, and the failure that names what is left)."""

from __future__ import annotations

import time
from collections import Counter
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from migrate.engine.base import Action, Wait
from migrate.engine.context import StepContext
from migrate.errors import StepFailed
from migrate.steps.s3 import batch as sb
from migrate.steps.s3 import objects as so
from migrate.steps.s3.counts import list_pages, prefetched
from migrate.steps.s3.ledger import ReportFile, Tally, UploadTracker, report_path
from migrate.steps.s3.params import ReencryptParams
from migrate.steps.s3.risks import human_size
from migrate.steps.s3.settings import (
    acl_enabled,
    noncurrent_versions,
    public_access_block,
    versioning_status,
)
from migrate.steps.s3.worker import RESIDUAL_FIXES, ObjectWorker, Requests, update_lane_usable

# Counters that add up over passes of the listing (the others describe the bucket as the last
# pass found it, which saw every object).
CARRIED = frozenset(
    {
        "copied",
        "updated",
        "bytes_copied",
        "multipart_copied",
        "acl_reapplied",
        "changed_during_copy",
    }
)


class BucketRun:
    """The ``s3.reencrypt_objects`` action for one bucket: set up the ledger and the worker,
    then run the object lane (or, under ``mode: batch``, the batch lane)."""

    def __init__(
        self,
        ctx: StepContext,
        action: Action,
        params: ReencryptParams,
        target_arn: str,
        region: str,
    ) -> None:
        self.ctx, self.action, self.params = ctx, action, params
        self.bucket, self.region = action.target, region
        self.s3 = ctx.client("s3", region)
        # Batch mode keeps its phases in a checkpoint of its own.
        self.checkpoint = ctx.load_checkpoint("batch" if params.mode == "batch" else "main") or {
            "cursor": {},
            "done": 0,
        }
        self.cursor = dict(self.checkpoint["cursor"])
        if self.cursor.get("complete") and params.mode == "objects":
            self._next_pass()
        tally = Tally.from_dict(self.cursor.get("tally"))
        report = ReportFile(report_path(ctx, self.bucket), int(self.cursor.get("report_offset", 0)))
        self.uploads = UploadTracker(ctx, self.s3, self.bucket)
        self.limiter = so.RateLimiter(params.max_rps)
        versioning = versioning_status(self.s3, self.bucket)
        null_keys: frozenset[str] = frozenset()
        if versioning == "Suspended":
            null_keys = frozenset(noncurrent_versions(self.s3, self.bucket)[1])
        self.worker = ObjectWorker(
            s3=self.s3,
            bucket=self.bucket,
            target_arn=target_arn,
            params=params,
            acl_enabled=acl_enabled(self.s3, self.bucket),
            use_update=update_lane_usable(params, ctx.aws.endpoint_url),
            send=Requests(self.limiter),
            tally=tally,
            report=report,
            versioned=versioning != "Disabled",
            track_upload=self.uploads.track,
            null_version_keys=null_keys,
            public_access_block=public_access_block(self.s3, self.bucket),
        )

    def _next_pass(self) -> None:
        """The listing was finished by an earlier attempt, yet the action runs again: after a
        failed verification (the runner re-observes the step) or a playbook edit. Objects may
        have been written anywhere in the key space since, so the whole listing is walked
        again (done objects are HEADed, seen under the target key, and not copied again); what
        earlier passes did is carried into the result."""
        previous = Counter(self.cursor.get("previous") or {})
        counts = (self.cursor.get("tally") or {}).get("counts") or {}
        previous.update({k: int(v) for k, v in counts.items() if k in CARRIED})
        self.cursor = {
            "previous": dict(previous),
            "pass": int(self.cursor.get("pass", 1)) + 1,
            "report_offset": self.cursor.get("report_offset", 0),
        }
        self.checkpoint = {"cursor": self.cursor, "done": 0}

    @property
    def tally(self) -> Tally:
        """The bucket's counters."""
        return self.worker.tally

    def run(self) -> Wait | None:
        """Re-encrypt the bucket; a :class:`Wait` while batch jobs run; raises if objects failed."""
        self.uploads.abort_leftovers()
        # Objects that failed in an earlier attempt lie behind the cursor: they go first.
        retry = [{"Key": k} for k in self.cursor.get("failed_keys", [])]
        self.tally.counts["failed"] = 0
        self.tally.samples.pop("failed", None)
        if self.params.mode == "batch":
            if retry:
                with ThreadPoolExecutor(max_workers=self.params.concurrency) as pool:
                    list(pool.map(self.worker, retry))
            wait = sb.BatchLane(ctx=self.ctx, worker=self.worker, region=self.region).run()
            self._record()
            if wait is not None:
                return wait
            self._fail_if_failed("by the copy lane ")
            return None
        self._objects(retry)
        self._record()
        self._fail_if_failed("")
        return None

    def _objects(self, retry: list[dict[str, Any]]) -> None:
        """The object lane: listing pages from the cursor on, each checkpointed when done."""
        complete = self._pages(retry)
        if complete:
            # The whole listing was walked: a later attempt starts a new pass (see _next_pass).
            self._save(str(self.cursor.get("start_after", "")), complete=True)

    def _save(self, last_key: str, *, complete: bool = False) -> None:
        self.cursor.update(
            start_after=last_key,
            tally=self.tally.to_dict(),
            failed_keys=list(self.tally.failed_keys),
            report_offset=self.worker.report.offset(),
            complete=complete,
        )
        self.ctx.checkpoint(dict(self.cursor), done=self.done, total=self.total)

    def _pages(self, retry: list[dict[str, Any]]) -> bool:
        """Work the pages; True when the listing was walked to its end."""
        tally = self.tally
        self.done = int(self.checkpoint["done"])
        self.total = int(self.action.details.get("objects") or 0) or None
        start_after = str(self.cursor.get("start_after", ""))
        started = time.monotonic()
        bar: Any = self.ctx.progress(total=self.total, desc=f"s3://{self.bucket}", unit="obj")
        bar.update(self.done)
        moved = 0
        first_done = self.done
        save = self._save
        pool = ThreadPoolExecutor(max_workers=self.params.concurrency)
        try:
            if retry:
                for fut in [pool.submit(self.worker, obj) for obj in retry]:
                    moved += fut.result()
                save(start_after)
            pages = list_pages(self.s3, self.bucket, start_after, self.params.batch_size)
            for page in prefetched(pages):
                futures: list[Future[int]] = [pool.submit(self.worker, obj) for obj in page]
                for fut in futures:
                    moved += fut.result()
                    bar.update(1)
                self.done += len(page)
                elapsed = max(time.monotonic() - started, 1e-6)
                bar.set_postfix_str(
                    f"{(self.done - first_done) / elapsed:.0f} obj/s, "
                    f"{human_size(int(moved / elapsed))}/s",
                    refresh=False,
                )
                save(str(page[-1]["Key"]))
                if tally.counts["failed"] > self.params.max_failures:
                    return False
        finally:
            # On Ctrl-C or a fatal error: drop queued objects, let in-flight ones finish.
            pool.shutdown(wait=True, cancel_futures=True)
            bar.close()
        return True

    def _record(self) -> None:
        summary = Counter({k: int(v) for k, v in self.tally.counts.items()})
        summary.update({k: int(v) for k, v in (self.cursor.get("previous") or {}).items()})
        summary = Counter(dict(sorted(summary.items())))
        summary["throttled"] = self.limiter.throttles
        # The run report's residual shape (what / why / fix), plus the label, the count and the
        # first keys so an operator can find the objects.
        residuals = []
        for label, how in RESIDUAL_FIXES.items():
            count = int(summary.get(label, 0))
            if not count:
                continue
            why, _, fix = how.partition(": ")
            residuals.append(
                {
                    "what": f"s3://{self.bucket}: {count} object(s) left as they were ({label})",
                    "why": why,
                    "fix": fix or None,
                    "label": label,
                    "count": count,
                    "first": list(self.tally.samples.get(label, [])),
                }
            )
        self.ctx.record_result(**dict(summary), residuals=residuals)

    def _fail_if_failed(self, lane: str) -> None:
        denied = self.tally.counts["skipped_access_denied"]
        done = sum(self.tally.counts[k] for k in ("copied", "updated", "already"))
        if denied > self.params.max_failures and not done:
            # Every object refused: the migrator's own permissions, not a few odd objects.
            raise StepFailed(
                f"s3://{self.bucket}: AccessDenied on all {denied} objects tried (first: "
                f"{', '.join(self.tally.samples.get('skipped_access_denied', [])[:5])}). Grant "
                "the permissions `migrate permissions PLAYBOOK` lists (s3:GetObject, "
                "s3:PutObject, kms:GenerateDataKey and kms:Decrypt on the keys) and "
                "`migrate resume`."
            )
        failed = self.tally.counts["failed"]
        if not failed:
            return
        keys = ", ".join(self.tally.samples.get("failed", [])[:10])
        raise StepFailed(
            f"s3://{self.bucket}: {failed} objects could not be re-encrypted {lane}"
            f"(first: {keys}); see {self.worker.report.path} for the errors. Fix the cause "
            "(often permissions on the object or the key) and `migrate resume`: they are "
            "retried first, and done objects are not copied again."
        )
