"""The run lease: one live holder per run, with a heartbeat.

A holder that died on this host (its pid is gone) is taken over at once, so that ``resume`` after a
crash or SIGKILL just works. A holder on another host keeps the run until its lease expires, or an
operator breaks it with ``migrate unlock RUN --lock-id ID``.

The lease is a row (``locks``) on both engines, read and written inside ``Store.write()``, whose
writers are serialised (``BEGIN IMMEDIATE`` on SQLite, a transaction-scoped advisory lock on
PostgreSQL): two processes can never both see the lease free and both take it. Why a row and not
a PostgreSQL session advisory lock held for the whole run: the row names the holder (user, host,
pid, lock id) for the refusal message and for ``migrate unlock``; it behaves the same on SQLite; and
it does not depend on one connection staying up for days (a pooled connection that is recycled or
reconnected by ``pool_pre_ping``, a pgbouncer in transaction mode, or a network blip would drop a
session lock silently while the holder goes on acting).

Expiry is measured on the store's clock (the PostgreSQL server's, or this machine's for SQLite), so
two operators' laptops with skewed clocks agree on when a lease ran out.
"""

from __future__ import annotations

import getpass
import os
import socket
import threading
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from migrate.errors import LockedError, NotFoundError
from migrate.store import Store, store_clock
from migrate.store.models import Lock, Run

LEASE_S = 60.0
# A lease is renewed four times per lease period, so one or two missed beats (a busy store, a
# network blip) do not lose it.
BEATS_PER_LEASE = 4


def lease_seconds() -> float:
    """The lease period: 60 s, or ``MIGRATE_LEASE_SECONDS`` (longer on a flaky network)."""
    raw = os.environ.get("MIGRATE_LEASE_SECONDS")
    try:
        return max(float(raw), 1.0) if raw else LEASE_S
    except ValueError:
        return LEASE_S


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:
        return "unknown"


@dataclass
class LockInfo:
    """Who holds a run's lease."""

    run_id: str
    lock_id: str
    holder_host: str
    holder_pid: int
    holder_user: str
    acquired_at: datetime
    expires_at: datetime
    # Seconds until the lease runs out if nothing renews it (on the store's clock).
    expires_in: float | None = None

    def describe(self) -> str:
        """One line naming the holder, for error messages."""
        return (
            f"{self.holder_user}@{self.holder_host} (pid {self.holder_pid}, since "
            f"{self.acquired_at:%Y-%m-%d %H:%M:%S} UTC, lock id {self.lock_id})"
        )

    def refusal(self) -> str:
        """The paragraph of a refused ``run``/``resume``: who holds the run, and what to do."""
        unlock = f"`migrate unlock {self.run_id} --lock-id {self.lock_id}`"
        if self.holder_host != socket.gethostname() and self.expires_in is not None:
            advice = (
                f"If that process died, its lease runs out in {max(int(self.expires_in), 0)} s "
                "(nothing renews it) and the run can then be resumed from any machine; to take "
                f"over at once, break the lease with {unlock}."
            )
        else:
            advice = f"If that process is stuck, stop it, or break the lease with {unlock}."
        return f"run {self.run_id} is locked by {self.describe()}. Wait for it to finish. {advice}"


def _info(row: Lock, now: datetime | None = None) -> LockInfo:
    return LockInfo(
        row.run_id,
        row.lock_id,
        row.holder_host,
        row.holder_pid,
        row.holder_user,
        row.acquired_at,
        row.expires_at,
        (row.expires_at - now).total_seconds() if now is not None else None,
    )


def holder_is_live(row: Lock, now: datetime) -> bool:
    """True while the lease is held by a process that may still be running (``now``: the store's
    clock, :func:`migrate.store.store_clock`)."""
    if row.holder_host == socket.gethostname():
        return _pid_alive(row.holder_pid) and row.holder_pid != 0
    return row.expires_at > now


def live_lock(store: Store, run_id: str) -> LockInfo | None:
    """The live lease on a run, or None."""
    with store.read() as session:
        row = session.get(Lock, run_id)
        now = store_clock(session)
        if row is not None and holder_is_live(row, now):
            return _info(row, now)
    return None


class RunLock:
    """Context manager holding a run's lease, renewed by a heartbeat thread."""

    def __init__(self, store: Store, run_id: str) -> None:
        self.store = store
        self.run_id = run_id
        self.lock_id = uuid.uuid4().hex[:12]
        self.lease = timedelta(seconds=lease_seconds())
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def acquire(self) -> None:
        """Take the lease or raise LockedError naming the live holder."""
        with self.store.write() as session:
            now = store_clock(session)
            row = session.get(Lock, self.run_id)
            ours = row is not None and (row.holder_host, row.holder_pid) == (
                socket.gethostname(),
                os.getpid(),
            )
            if row is not None and holder_is_live(row, now) and not ours:
                raise LockedError(_info(row, now).refusal())
            if row is not None and ours:
                # The lease claim_new_run took for this process: keep its id (it may already
                # have been shown to a second operator) and renew it.
                self.lock_id = row.lock_id
                row.heartbeat_at = now
                row.expires_at = now + self.lease
            else:
                if row is not None:
                    session.delete(row)
                    session.flush()
                session.add(
                    Lock(
                        run_id=self.run_id,
                        lock_id=self.lock_id,
                        holder_host=socket.gethostname(),
                        holder_pid=os.getpid(),
                        holder_user=_user(),
                        acquired_at=now,
                        heartbeat_at=now,
                        expires_at=now + self.lease,
                    )
                )
        self._thread = threading.Thread(target=self._beat, name="migrate-lease", daemon=True)
        self._thread.start()

    def check(self) -> None:
        """Raise LockedError if the lease was broken (``migrate unlock``) or taken over."""
        with self.store.read() as session:
            row = session.get(Lock, self.run_id)
            if row is None or row.lock_id != self.lock_id:
                holder = f" by {_info(row).describe()}" if row is not None else ""
                raise LockedError(
                    f"the lease on run {self.run_id} was broken{holder} (`migrate unlock`); this "
                    "process stops here so that two processes never act on the same run. "
                    f"`migrate status {self.run_id}` shows where it stands."
                )

    def _beat(self) -> None:
        while not self._stop.wait(self.lease.total_seconds() / BEATS_PER_LEASE):
            try:
                with self.store.write() as session:
                    row = session.get(Lock, self.run_id)
                    if row is None or row.lock_id != self.lock_id:
                        return  # broken by `migrate unlock`
                    now = store_clock(session)
                    row.heartbeat_at = now
                    row.expires_at = now + self.lease
            except Exception:  # a busy store must not kill the run; the next beat retries
                continue

    def release(self) -> None:
        """Stop the heartbeat and drop the lease (if still ours)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        with self.store.write() as session:
            row = session.get(Lock, self.run_id)
            if row is not None and row.lock_id == self.lock_id:
                session.delete(row)

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def break_lock(store: Store, run_id: str, lock_id: str) -> LockInfo:
    """Remove a run's lease, if ``lock_id`` matches the one held (``migrate unlock``)."""
    with store.write() as session:
        if session.get(Run, run_id) is None:
            raise NotFoundError(f"there is no run {run_id!r}; `migrate status` lists the runs.")
        row = session.get(Lock, run_id)
        if row is None:
            raise NotFoundError(f"run {run_id} is not locked; nothing to unlock.")
        if row.lock_id != lock_id:
            raise NotFoundError(
                f"run {run_id} is locked with lock id {row.lock_id}, not {lock_id}. Check the id "
                "in the error message of the refused command (or `migrate status`)."
            )
        info = _info(row)
        session.delete(row)
        return info


def already_running(playbook_name: str, info: LockInfo) -> LockedError:
    """The refusal of a second run of a playbook that ``info``'s holder is running."""
    return LockedError(
        f"playbook {playbook_name!r} is already being run as {info.run_id} by "
        f"{info.describe()}. Wait for it, or `migrate resume {info.run_id}` later; if its "
        f"process died on another machine, `migrate unlock {info.run_id} --lock-id "
        f"{info.lock_id}`."
    )


def _rival(session: Session, playbook_name: str) -> LockInfo | None:
    now = store_clock(session)
    me = (socket.gethostname(), os.getpid())
    rows = session.execute(
        select(Lock).join(Run, Run.id == Lock.run_id).where(Run.playbook_name == playbook_name)
    ).scalars()
    for row in rows:
        # A lease this very process left behind (a run it created but never started) is no rival.
        if holder_is_live(row, now) and (row.holder_host, row.holder_pid) != me:
            return _info(row, now)
    return None


def playbook_holder(store: Store, playbook_name: str) -> LockInfo | None:
    """The live lease of another process on a run of this playbook, if any (a read: advisory;
    :func:`claim_new_run` is the atomic check)."""
    with store.read() as session:
        return _rival(session, playbook_name)


def claim_new_run(session: Session, run_id: str, playbook_name: str) -> None:
    """Inside the write transaction that creates run ``run_id``: refuse (LockedError naming the
    holder) if another run of the same playbook holds a live lease, else take the new run's
    lease for this process. Writers are serialised, so of two ``migrate run`` started together
    exactly one gets past this; the runner's :class:`RunLock` then takes the lease over as its
    own (same host and pid)."""
    rival = _rival(session, playbook_name)
    if rival is not None:
        raise already_running(playbook_name, rival)
    now = store_clock(session)
    session.add(
        Lock(
            run_id=run_id,
            lock_id=uuid.uuid4().hex[:12],
            holder_host=socket.gethostname(),
            holder_pid=os.getpid(),
            holder_user=_user(),
            acquired_at=now,
            heartbeat_at=now,
            expires_at=now + timedelta(seconds=lease_seconds()),
        )
    )


def live_locks(store: Store) -> list[LockInfo]:
    """Every live lease in the store (a copy of the store must not race a running run)."""
    with store.read() as session:
        now = store_clock(session)
        return [_info(r) for r in session.scalars(select(Lock)) if holder_is_live(r, now)]
