"""The bucket ledger of ``s3.reencrypt``: what happened to every object of one bucket.

Three records, each resumable: the :class:`Tally` of counters (kept in the checkpoint, so a
resumed run reports the whole bucket), the :class:`ReportFile` listing every object left,
skipped, failed or copied, and the :class:`UploadTracker` of multipart uploads in flight.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from migrate.aws.errors import not_found
from migrate.engine.context import StepContext

REPORT_SAMPLE = 20  # keys per category kept in the checkpoint (the full list is in the report file)


@dataclass
class Tally:
    """Per-bucket counters (kept in the checkpoint, so a resumed run reports the whole bucket)."""

    counts: Counter[str] = field(default_factory=Counter)
    samples: dict[str, list[str]] = field(default_factory=dict)
    failed_keys: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, name: str, n: int = 1, key: str | None = None) -> None:
        """Count ``n`` under ``name``; remember ``key`` among the first few of that category."""
        with self.lock:
            self.counts[name] += n
            if key is not None:
                keys = self.samples.setdefault(name, [])
                if len(keys) < REPORT_SAMPLE and key not in keys:
                    keys.append(key)

    def to_dict(self) -> dict[str, Any]:
        """JSON form for the checkpoint."""
        with self.lock:
            return {
                "counts": dict(self.counts),
                "samples": {k: list(v) for k, v in self.samples.items()},
            }

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Tally:
        """Inverse of :meth:`to_dict`."""
        tally = cls()
        tally.counts.update((data or {}).get("counts", {}))
        tally.samples = {k: list(v) for k, v in (data or {}).get("samples", {}).items()}
        return tally


class ReportFile:
    """The per-bucket list of every object left, skipped, failed or copied (JSON lines).

    Appends are made exactly once per object: the checkpoint stores the file's length, and a
    resumed run cuts the file back to it before redoing the batch that was in flight.
    """

    def __init__(self, path: Path, offset: int) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "ab") as handle:
            handle.truncate(offset)
        self._lock = threading.Lock()

    def write(self, entry: dict[str, Any]) -> None:
        """Append one entry."""
        line = json.dumps(entry, sort_keys=True, default=str) + "\n"
        with self._lock, open(self.path, "a", encoding="utf-8") as handle:
            handle.write(line)

    def offset(self) -> int:
        """The file's current length (committed in the checkpoint)."""
        return self.path.stat().st_size if self.path.exists() else 0


def report_path(ctx: StepContext, bucket: str) -> Path:
    """Where the per-bucket report of this run lives (beside the state DB)."""
    return ctx.state_dir / "s3-reencrypt" / str(ctx.run_id) / f"{ctx.step_id}-{bucket}.jsonl"


def residual_keys(path: Path) -> set[str]:
    """Keys the report file lists as left with a reason (``skipped_*``), unless a later entry
    of the same file says the key was copied after all (a later pass)."""
    left: set[str] = set()
    if not path.exists():
        return left
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            entry = json.loads(line)
            result = str(entry.get("result", ""))
            if result.startswith("skipped_"):
                left.add(str(entry["key"]))
            elif result == "copied":
                left.discard(str(entry["key"]))
    return left


class UploadTracker:
    """Multipart uploads in flight, in a checkpoint of their own: a crash leaves none behind."""

    def __init__(self, ctx: StepContext, s3: Any, bucket: str) -> None:
        self.ctx, self.s3, self.bucket = ctx, s3, bucket
        self._lock = threading.Lock()
        saved = ctx.load_checkpoint("uploads")
        self.open: dict[str, str] = dict((saved or {}).get("cursor", {}))

    def abort_leftovers(self) -> None:
        """Abort the uploads a killed run had started (they are ours: their ids were saved)."""
        for upload_id, key in list(self.open.items()):
            try:
                self.s3.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
            except ClientError as exc:
                if not not_found(exc):  # NoSuchUpload: completed or aborted before the crash
                    raise
            self.track(upload_id, key, False)

    def track(self, upload_id: str, key: str, started: bool) -> None:
        """Record an upload as started or finished (committed before any part is copied)."""
        with self._lock:
            if started:
                self.open[upload_id] = key
            else:
                self.open.pop(upload_id, None)
            self.ctx.checkpoint(dict(self.open), done=0, name="uploads")
