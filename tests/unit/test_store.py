"""The state store on SQLite and PostgreSQL: pragmas, writer serialisation, automatic upgrade,
refusing a newer schema, models == schema == the other engine's schema, and URLs that never show
their password."""

from __future__ import annotations

import sqlite3
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from click.testing import CliRunner
from sqlalchemy import inspect, text

from migrate.cli import cli
from migrate.errors import StoreError
from migrate.store import Store, open_store, redact_url, resolve_url
from migrate.store.db import PG_WRITER_LOCK, SCHEMA_HEAD, _alembic_config
from migrate.store.models import Base
from tests.pgserver import PASSWORD, PostgresServer

pytestmark = pytest.mark.both_stores


def test_new_store_is_created_and_upgraded(tmp_path: Path) -> None:
    store = open_store(str(tmp_path / "deep" / "dir" / "m.db"))
    assert store.schema_version is not None
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 1000


def test_models_match_the_migrations(state_url: str) -> None:
    store = open_store(state_url)
    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    store.close()
    assert diff == [], "models and Alembic migrations differ: add a revision"


def test_store_newer_than_code_is_refused(state_url: str) -> None:
    store = open_store(state_url)
    with store.engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999_from_the_future'"))
    store.close()
    with pytest.raises(StoreError, match="newer than this migrate"):
        open_store(state_url)
    result = CliRunner().invoke(cli, ["--state", state_url, "status"])
    assert result.exit_code == 2
    assert "newer than this migrate" in result.output and "Traceback" not in result.output
    assert PASSWORD not in result.output


def test_processes_opening_a_new_store_together_all_get_it(state_url: str) -> None:
    """Operators who start migrate at the same moment on a new store (CI failed on this once, on
    PostgreSQL): one creates the schema, the others wait for it and open it. None is told that
    the store is "not a migrate state store" because it saw the tables before their version."""
    import threading

    barrier = threading.Barrier(6)
    outcomes: list[str] = []

    def open_it() -> None:
        barrier.wait()
        try:
            store = open_store(state_url)
        except StoreError as exc:
            outcomes.append(exc.message)
            return
        outcomes.append(str(store.schema_version))
        store.close()

    threads = [threading.Thread(target=open_it) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    head = open_store(state_url).schema_version
    assert outcomes == [str(head)] * 6, outcomes


def test_a_new_store_another_process_holds_is_waited_for(tmp_path: Path) -> None:
    """SQLite does not apply its busy timeout to switching a new file to WAL: a process that
    opened a new store while another was writing it was told "database is locked" at once (CI
    failed on this). It now waits, as for any other lock, and opens the store."""
    import threading

    path = tmp_path / "state" / "migrate.db"
    path.parent.mkdir()
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")  # a writer mid-transaction on the new file
    threading.Timer(0.5, holder.rollback).start()
    store = Store(f"sqlite:///{path}")
    try:
        assert store.schema_version == SCHEMA_HEAD
        with store.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    finally:
        store.close()
        holder.close()


def test_another_programs_database_is_refused_and_left_untouched(state_url: str) -> None:
    """A --state that points at an application's database (a SQLite file, a shared PostgreSQL
    database) is refused: migrate adds no table to it."""
    from sqlalchemy import create_engine, make_url

    url = resolve_url(state_url)
    if url.startswith("sqlite"):
        Path(str(make_url(url).database)).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE customers (id integer, email text)"))
    with pytest.raises(StoreError, match="is not a migrate state store") as refused:
        open_store(state_url)
    assert "customers" in refused.value.message and "new" in refused.value.message
    result = CliRunner().invoke(cli, ["--state", state_url, "status"])
    assert result.exit_code == 2, result.output
    assert "not a migrate state store" in result.output and "Traceback" not in result.output
    with engine.connect() as conn:
        assert inspect(conn).get_table_names() == ["customers"]
    engine.dispose()


def test_a_file_that_is_not_a_database_is_refused_and_left_as_it_was(tmp_path: Path) -> None:
    garbage = tmp_path / "notes.db"
    garbage.write_bytes(b"meeting notes, not a database\n" * 200)
    before = garbage.read_bytes()
    result = CliRunner().invoke(cli, ["--state", str(garbage), "status"])
    assert result.exit_code == 2, result.output
    assert "Cannot open the state store" in result.output and "Traceback" not in result.output
    assert garbage.read_bytes() == before


def test_sqlite_writers_take_an_immediate_lock(tmp_path: Path) -> None:
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


def test_postgres_writers_are_serialised_and_readers_never_wait(
    pg_server: PostgresServer,
) -> None:
    import psycopg

    url = pg_server.create_database()
    store = open_store(url)
    other = psycopg.connect(url.replace("+psycopg", ""), autocommit=True)
    try:
        with store.write() as session:
            session.execute(Base.metadata.tables["plans"].select())
            # The writer's advisory lock is held from its first statement to its commit...
            held = other.execute("SELECT pg_try_advisory_lock(%s)", (PG_WRITER_LOCK,)).fetchone()
            assert held == (False,)
            # ...and a reader is not held up by it.
            with store.read() as reader:
                assert reader.execute(text("SELECT count(*) FROM runs")).scalar() == 0
        free = other.execute("SELECT pg_try_advisory_lock(%s)", (PG_WRITER_LOCK,)).fetchone()
        assert free == (True,)
        other.execute("SELECT pg_advisory_unlock(%s)", (PG_WRITER_LOCK,))
        # Readers take no lock at all.
        with store.read() as reader:
            reader.execute(text("SELECT count(*) FROM runs"))
            held = other.execute("SELECT pg_try_advisory_lock(%s)", (PG_WRITER_LOCK,)).fetchone()
            assert held == (True,)
    finally:
        other.close()
        store.close()


def _schema(store: Store) -> dict[str, Any]:
    """Tables with their columns (generic type, length, nullability), keys and indexes."""
    insp = inspect(store.engine)
    schema: dict[str, Any] = {}
    for table in sorted(insp.get_table_names()):
        columns = {}
        for col in insp.get_columns(table):
            generic = col["type"].as_generic()
            columns[col["name"]] = (
                type(generic).__name__,
                getattr(generic, "length", None),
                col["nullable"],
            )
        schema[table] = {
            "columns": columns,
            "pk": insp.get_pk_constraint(table)["constrained_columns"],
            "fks": sorted(
                (
                    tuple(fk["constrained_columns"]),
                    fk["referred_table"],
                    fk["options"].get("ondelete"),
                )
                for fk in insp.get_foreign_keys(table)
            ),
            "unique": sorted(tuple(u["column_names"]) for u in insp.get_unique_constraints(table)),
            "indexes": sorted(
                (i["name"], tuple(i["column_names"]), bool(i["unique"]))
                for i in insp.get_indexes(table)
                # PostgreSQL also lists the index behind each unique constraint.
                if not i.get("duplicates_constraint")
            ),
        }
    return schema


def test_migrations_build_the_same_schema_on_both_engines(
    tmp_path: Path, pg_server: PostgresServer
) -> None:
    sqlite_store = open_store(str(tmp_path / "m.db"))
    pg_store = open_store(pg_server.create_database())
    try:
        on_sqlite, on_pg = _schema(sqlite_store), _schema(pg_store)
        assert set(on_sqlite) == set(on_pg)
        for table in on_sqlite:
            assert on_sqlite[table] == on_pg[table], table
        # Down to nothing and up again, identically on both.
        for store in (sqlite_store, pg_store):
            cfg = _alembic_config(store.engine)
            with store.engine.begin() as conn:
                cfg.attributes["connection"] = conn
                command.downgrade(cfg, "base")
            assert inspect(store.engine).get_table_names() == ["alembic_version"]
            with store.engine.begin() as conn:
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, "head")
        assert _schema(sqlite_store) == _schema(pg_store) == on_sqlite
    finally:
        sqlite_store.close()
        pg_store.close()


def test_state_env_and_urls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MIGRATE_STATE", str(tmp_path / "x.db"))
    assert resolve_url(None) == f"sqlite:///{tmp_path / 'x.db'}"
    assert resolve_url("sqlite:////abs/m.db") == "sqlite:////abs/m.db"
    (tmp_path / "dir").mkdir()
    assert resolve_url(str(tmp_path / "dir")).endswith("/dir/migrate.db")
    # Bare postgresql:// means psycopg 3, the driver of the postgres extra.
    assert resolve_url("postgresql://u@db/m") == "postgresql+psycopg://u@db/m"
    assert resolve_url("postgres://u@db/m") == "postgresql+psycopg://u@db/m"
    assert resolve_url("postgresql+psycopg://u@db/m") == "postgresql+psycopg://u@db/m"
    monkeypatch.setenv("MIGRATE_STATE", "postgresql://u:pw@db/m?sslmode=require")
    assert resolve_url(None) == "postgresql+psycopg://u:pw@db/m?sslmode=require"


def test_urls_are_redacted() -> None:
    assert redact_url("postgresql+psycopg://ops:s3cr%40t@db:5432/m?sslmode=require") == (
        "postgresql+psycopg://ops:***@db:5432/m?sslmode=require"
    )
    assert redact_url("sqlite:////tmp/m.db") == "sqlite:////tmp/m.db"
    assert "hunter2" not in redact_url("weird+://ops:hunter2@db/m")


def _cli(*args: str) -> Any:
    return CliRunner().invoke(cli, list(args))


def _one_paragraph(output: str) -> None:
    assert "Traceback" not in output
    assert output.startswith("Error: ") and "\n\n" not in output.strip()


def test_unreachable_postgres_is_one_paragraph_without_the_password() -> None:
    secret = "Unreachable-Pa55"
    url = f"postgresql+psycopg://ops:{secret}@127.0.0.1:1/migrate?connect_timeout=3"
    with pytest.raises(StoreError) as info:
        open_store(url)
    assert secret not in info.value.message
    assert "ops:***@127.0.0.1:1/migrate" in info.value.message
    result = _cli("--state", url, "status")
    assert result.exit_code == 2, result.output
    _one_paragraph(result.output)
    assert secret not in result.output and "Cannot open the state store" in result.output
    assert "reachable" in result.output


def test_wrong_password_is_refused_without_printing_it(pg_server: PostgresServer) -> None:
    url = pg_server.create_database().replace(PASSWORD, "Wrong-Pa55word-xyz")
    result = _cli("--state", url, "status")
    assert result.exit_code == 2, result.output
    _one_paragraph(result.output)
    assert "Wrong-Pa55word-xyz" not in result.output and "password" in result.output


def test_missing_psycopg_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)  # `import psycopg` now fails
    url = "postgresql://ops:Not-Printed-1@db.internal/migrate"
    result = _cli("--state", url, "status")
    assert result.exit_code == 2, result.output
    _one_paragraph(result.output)
    assert "pip install 'migrate[postgres]'" in result.output
    assert "Not-Printed-1" not in result.output and "ops:***@db.internal" in result.output


def test_other_databases_are_refused() -> None:
    result = _cli("--state", "mysql://ops:Not-Printed-2@db/m", "status")
    assert result.exit_code == 2
    _one_paragraph(result.output)
    assert "SQLite or PostgreSQL" in result.output and "Not-Printed-2" not in result.output


def test_missing_run_names_the_store_without_its_password(
    state_url: str, new_state: Callable[[str], str]
) -> None:
    result = _cli("--state", state_url, "status", "no-such-run")
    assert result.exit_code == 2
    assert "there is no run 'no-such-run'" in result.output
    assert PASSWORD not in result.output


def test_a_store_lost_mid_command_is_one_paragraph(monkeypatch: pytest.MonkeyPatch) -> None:
    from sqlalchemy.exc import OperationalError

    from migrate import commands

    def lost(*_: Any, **__: Any) -> Any:
        raise OperationalError(
            "SELECT 1", {}, Exception("server closed the connection unexpectedly")
        )

    monkeypatch.setattr(commands, "status", lost)
    result = _cli("status")
    assert result.exit_code == 1
    _one_paragraph(result.output)
    assert "server closed the connection" in result.output and "migrate resume" in result.output


def test_the_fast_schema_check_names_alembics_head(tmp_path: Path) -> None:
    """SCHEMA_HEAD is what an up-to-date store is compared with before Alembic is imported: it
    must be the newest migration (a new migration that forgets it would skip its upgrade)."""
    from alembic.script import ScriptDirectory

    store = open_store(str(tmp_path / "head.db"))
    try:
        head = ScriptDirectory.from_config(_alembic_config(store.engine)).get_current_head()
        assert SCHEMA_HEAD == head == store.schema_version
    finally:
        store.close()


def test_opening_an_up_to_date_store_does_not_import_alembic(tmp_path: Path) -> None:
    import subprocess

    db = tmp_path / "fast.db"
    open_store(str(db)).close()  # created and upgraded (Alembic runs here)
    probe = (
        "import sys; from migrate.store import open_store; "
        f"open_store({str(db)!r}).close(); "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('alembic', 'mako')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]", out
