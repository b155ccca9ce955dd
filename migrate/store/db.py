"""Opening the state store: engine with SQLite pragmas, automatic Alembic upgrade, version check.

SQLite is set up for a tool that must not lose progress: WAL journal (readers never block the
writer), ``synchronous=FULL`` (a committed action survives power loss), foreign keys on, a busy
timeout, and ``BEGIN IMMEDIATE`` for writers so that two processes never both read-then-write the
same rows (the SQLAlchemy "pysqlite serializable" recipe).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from migrate.errors import StoreError

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
DEFAULT_STATE = "state/migrate.db"
BUSY_TIMEOUT_S = 30


def resolve_url(state: str | None) -> str:
    """Turn ``--state`` (a path or a SQLAlchemy URL; default ``state/migrate.db``) into a URL."""
    state = state or os.environ.get("MIGRATE_STATE") or DEFAULT_STATE
    if "://" in state:
        return state
    path = Path(state).expanduser()
    if path.is_dir():
        path = path / "migrate.db"
    return f"sqlite:///{path.absolute()}"


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
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_S * 1000}")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        mode = "IMMEDIATE" if conn.get_execution_options().get("immediate", True) else "DEFERRED"
        conn.exec_driver_sql(f"BEGIN {mode}")

    return engine


def _alembic_config(engine: Engine) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False))
    return cfg


class Store:
    """An open, up-to-date state store."""

    def __init__(self, url: str) -> None:
        self.url = url
        try:
            parsed = make_url(url)
        except ArgumentError:
            raise StoreError(
                f"--state {url!r} is neither a file path nor a SQLAlchemy URL. Pass a path such as "
                "state/migrate.db or a URL such as sqlite:////abs/path.db."
            ) from None
        if parsed.get_backend_name() == "sqlite":
            db = parsed.database
            if db and db != ":memory:":
                Path(db).parent.mkdir(parents=True, exist_ok=True)
            self.engine = _sqlite_engine(url)
        else:
            self.engine = create_engine(url, pool_pre_ping=True)
        self._writer = sessionmaker(self.engine, expire_on_commit=False)
        self._reader = sessionmaker(
            self.engine.execution_options(immediate=False), expire_on_commit=False
        )
        self._upgrade()

    def _upgrade(self) -> None:
        cfg = _alembic_config(self.engine)
        script = ScriptDirectory.from_config(cfg)
        head = script.get_current_head()
        try:
            with self.engine.connect() as conn:
                current = MigrationContext.configure(conn).get_current_revision()
        except OperationalError as exc:
            raise StoreError(
                f"Cannot open the state store {self.url}: {exc.orig}. Check that the path is "
                "writable and not on a network file system (SQLite needs working file locks)."
            ) from None
        if current == head:
            return
        known = {rev.revision for rev in script.walk_revisions()}
        if current is not None and current not in known:
            raise StoreError(
                f"The state store {self.url} has schema version {current}, which is newer than "
                f"this migrate (newest known: {head}). It was written by a newer release: upgrade "
                "migrate (pip install -U migrate), or point --state at another store."
            )
        with self.engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")

    @property
    def schema_version(self) -> str | None:
        """The Alembic revision the store is at."""
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
