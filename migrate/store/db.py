"""Opening the state store (SQLite or PostgreSQL): engine, automatic Alembic upgrade, version check.

SQLite is set up for a tool that must not lose progress: WAL journal (readers never block the
writer), ``synchronous=FULL`` (a committed action survives power loss), foreign keys on, a busy
timeout, and ``BEGIN IMMEDIATE`` for writers so that two processes never both read-then-write the
same rows (the SQLAlchemy "pysqlite serializable" recipe).

PostgreSQL (a team's store, ``postgresql+psycopg://``) keeps the same contract: every writer
transaction starts by taking one transaction-scoped advisory lock of the store
(``pg_advisory_xact_lock``), so writers are serialised exactly as ``BEGIN IMMEDIATE`` serialises
them on SQLite, while readers never wait (MVCC, like WAL). Under READ COMMITTED each statement after
the lock sees every earlier writer's commit, so a read-then-write inside ``Store.write()`` is as
safe on both engines. The lock is released by the commit or rollback, also when the process dies.

The URL's password is never printed: every message uses :attr:`Store.display_url`.
"""

from __future__ import annotations

import contextlib
import os
import re
import sqlite3
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, inspect, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError
from sqlalchemy.orm import Session, sessionmaker

from migrate.errors import StoreError
from migrate.util import utcnow

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
DEFAULT_STATE = "state/migrate.db"
BUSY_TIMEOUT_S = 30
# The key of the advisory lock every PostgreSQL writer transaction takes ("migrate" in ASCII).
# Advisory locks are per database: one store per database, so one key is enough.
PG_WRITER_LOCK = 0x6D696772617465
PG_CONNECT_TIMEOUT_S = 10
PG_DRIVER = "postgresql+psycopg"


def store_clock(session: Session) -> datetime:
    """Naive UTC now on the store's clock: the PostgreSQL server's (shared by every operator's
    machine, whatever their clocks say), or this machine's for SQLite (one machine anyway)."""
    if session.get_bind().dialect.name == "postgresql":
        now = session.scalar(text("SELECT clock_timestamp() AT TIME ZONE 'UTC'"))
        assert isinstance(now, datetime)
        return now
    return utcnow()


def resolve_url(state: str | None) -> str:
    """Turn ``--state`` (a path or a SQLAlchemy URL; default ``state/migrate.db``) into a URL.

    ``postgresql://`` and ``postgres://`` mean psycopg 3, the driver ``migrate[postgres]``
    installs (SQLAlchemy's own default would be psycopg2).
    """
    state = state or os.environ.get("MIGRATE_STATE") or DEFAULT_STATE
    if "://" in state:
        for prefix in ("postgresql://", "postgres://"):
            if state.startswith(prefix):
                return f"{PG_DRIVER}://{state.removeprefix(prefix)}"
        return state
    path = Path(state).expanduser()
    if path.is_dir():
        path = path / "migrate.db"
    return f"sqlite:///{path.absolute()}"


def redact_url(url: str | URL) -> str:
    """The URL with its password replaced by ``***``: the only form ever printed or logged."""
    try:
        parsed = url if isinstance(url, URL) else make_url(url)
    except ArgumentError:
        # Not a URL SQLAlchemy can parse: still hide whatever sits between "user:" and "@".
        return re.sub(r"(://[^:/@]*:)[^@/]*@", r"\1***@", str(url))
    return parsed.render_as_string(hide_password=True)


def describe_store_failure(exc: DBAPIError) -> str:
    """One paragraph for a store that failed while in use (a lost connection, a lock timeout)."""
    reason = re.sub(r"(://[^:/@]*:)[^@/]*@", r"\1***@", " ".join(str(exc.orig).split()))
    return (
        f"The state store failed: {reason.rstrip('. ')}. Nothing was half-written (the open "
        "transaction was rolled back). Once the store is reachable again, `migrate resume RUN_ID` "
        "continues where the run stopped (`migrate status` shows the id)."
    )


def _enable_wal(cur: Any) -> None:
    """Turn on the WAL journal, waiting for other processes that do it at the same moment.

    The mode is kept in the file, so an existing store only reads it. On a new file, SQLite
    refuses the switch at once, without its busy timeout, while another connection holds the
    file's write lock: processes opening a new store together were told "database is locked"
    (CI, 2026-12-03). They retry here until the lock is gone or the busy timeout has passed."""
    if str(cur.execute("PRAGMA journal_mode").fetchone()[0]).lower() == "wal":
        return
    deadline = time.monotonic() + BUSY_TIMEOUT_S
    pause = 0.005
    while True:
        try:
            cur.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
        time.sleep(pause)
        pause = min(pause * 2, 0.2)


def _sqlite_engine(url: str) -> Engine:
    engine = create_engine(
        url,
        connect_args={"timeout": BUSY_TIMEOUT_S, "check_same_thread": False},
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy's begin event own transaction starts (pysqlite otherwise defers them).
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        _enable_wal(cur)
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_S * 1000}")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        mode = "IMMEDIATE" if conn.get_execution_options().get("immediate", True) else "DEFERRED"
        conn.exec_driver_sql(f"BEGIN {mode}")

    return engine


def _postgres_engine(url: URL, display: str) -> Engine:
    connect_args: dict[str, Any] = {}
    # An unreachable server fails in seconds, not after the OS's TCP timeout (minutes).
    if "connect_timeout" not in url.query:
        connect_args["connect_timeout"] = PG_CONNECT_TIMEOUT_S
    # The DBA sees who holds a connection in pg_stat_activity.
    if "application_name" not in url.query:
        connect_args["application_name"] = "migrate"
    try:
        engine = create_engine(url, pool_pre_ping=True, connect_args=connect_args)
    except (ImportError, NoSuchModuleError) as exc:
        raise StoreError(
            f"The state store {display} is on PostgreSQL, but its driver is not installed "
            f"({exc}). Install migrate with the PostgreSQL extra: pip install 'migrate[postgres]' "
            "(psycopg 3), or pass a SQLite path as --state."
        ) from None

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        if conn.get_execution_options().get("immediate", True):
            # As SQLite's busy timeout: a writer waits for the one before it, but not forever.
            conn.exec_driver_sql(f"SET LOCAL lock_timeout = '{BUSY_TIMEOUT_S}s'")
            conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({PG_WRITER_LOCK})")

    return engine


def _alembic_config(engine: Engine) -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    # Never the password: the migrations run on the connection handed in (see _upgrade). The
    # config is a ConfigParser, so "%" must be doubled.
    cfg.set_main_option("sqlalchemy.url", redact_url(engine.url).replace("%", "%%"))
    return cfg


def _no_such_table(exc: DBAPIError) -> bool:
    """The error of a query on a table that does not exist (SQLite, PostgreSQL 42P01)."""
    orig = exc.orig
    if getattr(orig, "sqlstate", None) == "42P01" or getattr(orig, "pgcode", None) == "42P01":
        return True
    return "no such table" in str(orig)


# The newest migration's revision (migrations/versions/). A new migration changes it; a unit
# test compares it with Alembic's head, so the fast path of Store._upgrade cannot go stale.
SCHEMA_HEAD = "0005"


class Store:
    """An open, up-to-date state store."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.display_url = redact_url(url)
        try:
            parsed = make_url(url)
        except ArgumentError:
            raise StoreError(
                f"--state {self.display_url!r} is neither a file path nor a SQLAlchemy URL. Pass "
                "a path such as state/migrate.db or a URL such as sqlite:////abs/path.db or "
                "postgresql+psycopg://user@host/dbname."
            ) from None
        self.backend = parsed.get_backend_name()
        if self.backend == "sqlite":
            db = parsed.database
            if db and db != ":memory:":
                self._refuse_foreign_file(Path(db))
                try:
                    Path(db).parent.mkdir(parents=True, exist_ok=True)
                except OSError as exc:
                    raise StoreError(
                        f"Cannot create the state store {self.display_url}: its directory "
                        f"{Path(db).parent} cannot be made ({exc.strerror}). Pass a --state "
                        "path whose parent is a directory you can write."
                    ) from None
            self.engine = _sqlite_engine(url)
        elif self.backend == "postgresql":
            self.engine = _postgres_engine(parsed, self.display_url)
        else:
            raise StoreError(
                f"--state {self.display_url}: the state store runs on SQLite or PostgreSQL, not "
                f"{self.backend}. Pass a SQLite path (state/migrate.db) or a URL such as "
                "postgresql+psycopg://user@host/dbname?sslmode=require."
            )
        self._writer = sessionmaker(self.engine, expire_on_commit=False)
        self._reader = sessionmaker(
            self.engine.execution_options(immediate=False), expire_on_commit=False
        )
        self._upgrade()

    def _current_revision(self) -> str | None:
        """The schema version the store records, read with plain SQL (None: no version table
        yet). Comparing it with :data:`SCHEMA_HEAD` spares importing Alembic (and Mako) on
        every command: ~0.2 s of CPU on a machine like CI's."""
        try:
            with self.engine.execution_options(immediate=False).connect() as conn:
                rows = conn.execute(text("SELECT version_num FROM alembic_version")).all()
        except DBAPIError as exc:
            if _no_such_table(exc):
                return None  # a new store: the slow path creates the schema
            raise StoreError(self._cannot_open(exc)) from None
        return str(rows[0][0]) if len(rows) == 1 else None

    def _upgrade(self) -> None:
        # The common case, read without taking the writer lock: already up to date.
        if self._current_revision() == SCHEMA_HEAD:
            return
        from alembic import command
        from alembic.runtime.migration import MigrationContext
        from alembic.script import ScriptDirectory

        cfg = _alembic_config(self.engine)
        script = ScriptDirectory.from_config(cfg)
        head = script.get_current_head()
        try:
            # Otherwise check and upgrade in one writer transaction: the writer lock (BEGIN
            # IMMEDIATE, or the advisory lock on PostgreSQL) makes processes that open a new store
            # at the same moment take turns, and the one that comes second sees the schema the
            # first committed, not "tables without a version" (someone else's database).
            with self.engine.begin() as conn:
                current = MigrationContext.configure(conn).get_current_revision()
                if current == head:
                    return
                if current is None:
                    tables = sorted(set(inspect(conn).get_table_names()) - {"alembic_version"})
                    if tables:
                        self._refuse(tables)
                known = {rev.revision for rev in script.walk_revisions()}
                if current is not None and current not in known:
                    raise StoreError(
                        f"The state store {self.display_url} has schema version {current}, which "
                        f"is newer than this migrate (newest known: {head}). It was written by a "
                        "newer release: upgrade migrate (pip install -U migrate), or point "
                        "--state at another store."
                    )
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, "head")
        except DBAPIError as exc:
            raise StoreError(self._cannot_open(exc)) from None

    def _refuse_foreign_file(self, path: Path) -> None:
        """Look at an existing SQLite file read-only before the engine opens it: opening turns
        on WAL, which rewrites the header of a file that may be another program's."""
        if not path.is_file() or path.stat().st_size == 0:
            return
        try:
            conn = sqlite3.connect(f"{path.absolute().as_uri()}?mode=ro", uri=True)
        except sqlite3.Error:
            return  # the engine's own open names the failure
        try:
            names = {
                r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
            }
        except sqlite3.Error:
            return
        finally:
            conn.close()
        if names and "alembic_version" not in names:
            self._refuse(sorted(names))

    def _refuse(self, tables: list[str]) -> None:
        shown = ", ".join(tables[:5]) + (f" and {len(tables) - 5} more" if len(tables) > 5 else "")
        raise StoreError(
            f"--state {self.display_url} is not a migrate state store: it has no migrate "
            f"schema version but holds other tables ({shown}), and migrate never writes "
            "into another program's database. Point --state (or MIGRATE_STATE) at a new "
            "file such as state/migrate.db, or at an empty PostgreSQL database of its own."
        )

    def _cannot_open(self, exc: DBAPIError) -> str:
        """One paragraph: what failed, where, and what to check (never the password)."""
        reason = " ".join(str(exc.orig).split()).replace(self.url, self.display_url)
        parsed = make_url(self.url)
        if parsed.password:
            reason = reason.replace(str(parsed.password), "***")
        reason = reason.rstrip(". ")
        reason += "" if reason.endswith("?") else "."
        if self.backend == "postgresql":
            return (
                f"Cannot open the state store {self.display_url}: {reason} Check that the "
                "server is running and reachable from this machine, that the database exists, "
                "and that the user, password (or ~/.pgpass / PGPASSWORD) and sslmode are right; "
                "docs/team-state.md shows a team's set-up."
            )
        return (
            f"Cannot open the state store {self.display_url}: {reason} Check that the path is "
            "writable and not on a network file system (SQLite needs working file locks)."
        )

    @property
    def schema_version(self) -> str | None:
        """The Alembic revision the store is at."""
        from alembic.runtime.migration import MigrationContext

        with self.engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()

    @contextlib.contextmanager
    def write(self) -> Iterator[Session]:
        """A writer transaction (``BEGIN IMMEDIATE``): committed on success, else rolled back."""
        with self._writer() as session, session.begin():
            yield session

    @contextlib.contextmanager
    def read(self) -> Iterator[Session]:
        """A read-only session (deferred transaction, never commits)."""
        with self._reader() as session:
            yield session

    def close(self) -> None:
        """Release every pooled connection."""
        self.engine.dispose()


def open_store(state: str | None = None) -> Store:
    """Open (creating or upgrading as needed) the store named by ``--state``/``MIGRATE_STATE``."""
    return Store(resolve_url(state))
