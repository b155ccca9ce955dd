"""The journal: an append-only record of every mutating AWS call, written in small batches.

Calls are buffered and flushed at each action boundary, at each checkpoint and at least every
``FLUSH_S`` seconds, so a copy loop over millions of objects does not pay one fsync per call.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from migrate.aws.session import CallRecord
from migrate.store import Store, utcnow
from migrate.store.models import JournalEntry

FLUSH_S = 2.0
FLUSH_N = 500


@dataclass
class JournalScope:
    """Where calls are being made from."""

    run_id: str | None = None
    step_id: str | None = None
    action_id: int | None = None


class Journal:
    """Receives CallRecords from the AWS session and appends them to the store."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.scope = JournalScope()
        self._buffer: list[JournalEntry] = []
        self._lock = threading.Lock()
        self._last_flush = time.monotonic()

    def __call__(self, record: CallRecord) -> None:
        entry = JournalEntry(
            at=utcnow(),
            run_id=self.scope.run_id,
            step_id=self.scope.step_id,
            action_id=self.scope.action_id,
            service=record.service,
            operation=record.operation,
            region=record.region,
            target=record.target,
            params=record.params,
            request_id=record.request_id,
            outcome=record.outcome,
            error_message=(record.error_message or "")[:500] or None,
        )
        with self._lock:
            self._buffer.append(entry)
            due = len(self._buffer) >= FLUSH_N or time.monotonic() - self._last_flush > FLUSH_S
        if due:
            self.flush()

    def flush(self) -> None:
        """Write buffered entries in one transaction."""
        with self._lock:
            entries, self._buffer = self._buffer, []
            self._last_flush = time.monotonic()
        if entries:
            with self.store.write() as session:
                session.add_all(entries)
