"""The state store: SQLite pragmas, automatic upgrade, refusing a newer schema, models == schema."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from click.testing import CliRunner

from migrate.cli import cli
from migrate.errors import StoreError
from migrate.store import open_store, resolve_url
from migrate.store.models import Base


def test_new_store_is_created_and_upgraded(tmp_path: Path) -> None:
    store = open_store(str(tmp_path / "deep" / "dir" / "m.db"))
    assert store.schema_version is not None
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 1000


def test_models_match_the_migrations(tmp_path: Path) -> None:
    store = open_store(str(tmp_path / "m.db"))
    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == [], "models and Alembic migrations differ: add a revision"


def test_store_newer_than_code_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "m.db"
    open_store(str(path)).close()
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE alembic_version SET version_num = '9999_from_the_future'")
    with pytest.raises(StoreError, match="newer than this migrate"):
        open_store(str(path))
    result = CliRunner().invoke(cli, ["--state", str(path), "status"])
    assert result.exit_code == 2
    assert "newer than this migrate" in result.output and "Traceback" not in result.output


def test_writers_take_an_immediate_lock(tmp_path: Path) -> None:
    path = tmp_path / "m.db"
    store = open_store(str(path))
    other = sqlite3.connect(path, timeout=0.1)
    with store.write() as session:
        session.execute(Base.metadata.tables["plans"].select())
        # BEGIN IMMEDIATE holds the write lock from the start of the transaction.
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            other.execute("BEGIN IMMEDIATE")
    other.execute("BEGIN IMMEDIATE")
    other.rollback()


def test_state_env_and_urls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MIGRATE_STATE", str(tmp_path / "x.db"))
    assert resolve_url(None) == f"sqlite:///{tmp_path / 'x.db'}"
    assert resolve_url("sqlite:////abs/m.db") == "sqlite:////abs/m.db"
    (tmp_path / "dir").mkdir()
    assert resolve_url(str(tmp_path / "dir")).endswith("/dir/migrate.db")
