"""The journal: an append-only record of every mutating AWS call, written ahead of the call.

Each mutating call's intent (service, operation, target, redacted parameters, outcome ``sent``)
is committed *before* the request leaves the machine, so a SIGKILL at any moment leaves an entry
for every call the account may have received. The outcome (``ok``/``error:CODE``, request id)
follows in small batches; an entry still ``sent`` when a run resumes is marked as having no
recorded answer (the call may or may not have taken effect).

Durability without one fsync per S3 copy: intents from concurrent threads are committed together
(group commit). A thread's call waits only for the transaction that carries its own intent.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import update

from migrate.aws.session import CallRecord
from migrate.store import Store, utcnow
from migrate.store.models import JournalEntry

FLUSH_S = 2.0
FLUSH_N = 500
SENT = "sent"
NO_ANSWER = "unknown: no answer recorded (the process stopped after sending)"


@dataclass
class JournalScope:
    """Where calls are being made from."""

    run_id: str | None = None
    step_id: str | None = None
    action_id: int | None = None


class _Pending:
    """One intent waiting for the group commit that carries it."""

    __slots__ = ("entry", "entry_id", "error")

    def __init__(self, entry: JournalEntry) -> None:
        self.entry = entry
        self.entry_id: int | None = None
        self.error: BaseException | None = None


class Journal:
    """Receives intents and outcomes of mutating calls from the AWS session."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.scope = JournalScope()
        self._cond = threading.Condition()
        self._queue: list[_Pending] = []
        self._writing = False
        self._outcomes: list[dict[str, Any]] = []
        self._last_flush = time.monotonic()

    # -- intent: durable before the call ---------------------------------------------------------
    def intent(self, record: CallRecord) -> int:
        """Commit the intent of a call about to be sent; return its journal id."""
        pending = _Pending(self._entry(record, SENT))
        with self._cond:
            self._queue.append(pending)
            while pending.entry_id is None and pending.error is None:
                if self._writing:
                    self._cond.wait()
                    continue
                self._writing = True
                batch, self._queue = self._queue, []
                self._cond.release()
                try:
                    self._commit(batch)
                finally:
                    self._cond.acquire()
                    self._writing = False
                    self._cond.notify_all()
        if pending.error is not None:
            raise pending.error
        assert pending.entry_id is not None
        return pending.entry_id

    def _commit(self, batch: list[_Pending]) -> None:
        try:
            with self.store.write() as session:
                session.add_all([p.entry for p in batch])
                session.flush()
                ids = [p.entry.id for p in batch]
        except BaseException as exc:
            for p in batch:
                p.error = exc
            return
        for p, entry_id in zip(batch, ids, strict=True):
            p.entry_id = entry_id

    # -- outcome: after the call -----------------------------------------------------------------
    def __call__(self, record: CallRecord) -> None:
        """Record a call's outcome (updating its intent, or appending if it had none)."""
        if record.journal_id is None:
            self.intent_with_outcome(record)
            return
        with self._cond:
            self._outcomes.append(
                {
                    "id": record.journal_id,
                    "outcome": record.outcome,
                    "request_id": record.request_id,
                    "error_message": (record.error_message or "")[:500] or None,
                }
            )
            due = len(self._outcomes) >= FLUSH_N or time.monotonic() - self._last_flush > FLUSH_S
        if due:
            self.flush()

    def intent_with_outcome(self, record: CallRecord) -> None:
        """A call journaled after the fact (no intent was taken): one complete entry."""
        with self.store.write() as session:
            session.add(self._entry(record, record.outcome))

    def flush(self) -> None:
        """Write the buffered outcomes in one transaction."""
        with self._cond:
            outcomes, self._outcomes = self._outcomes, []
            self._last_flush = time.monotonic()
        if outcomes:
            with self.store.write() as session:
                session.execute(update(JournalEntry), outcomes)

    def mark_unanswered(self, run_id: str) -> int:
        """Entries of ``run_id`` still ``sent`` (a crash between send and answer): say so."""
        with self.store.write() as session:
            result = session.execute(
                update(JournalEntry)
                .where(JournalEntry.run_id == run_id, JournalEntry.outcome == SENT)
                .values(outcome=NO_ANSWER)
            )
            return int(getattr(result, "rowcount", 0) or 0)

    def _entry(self, record: CallRecord, outcome: str) -> JournalEntry:
        return JournalEntry(
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
            outcome=outcome,
            error_message=(record.error_message or "")[:500] or None,
        )
