"""Copying a whole state store to another (a team moving from a laptop's SQLite to PostgreSQL).

Every table but ``locks`` is copied row by row with its primary keys, parents before children, in
one transaction on the target: a copy that fails half-way leaves the target as empty as it was.
The source is read in one read transaction, so the copy is a consistent snapshot. Leases are not
copied: a lease belongs to a process on the old store, and the caller refuses to copy while one is
live. On PostgreSQL the id sequences are moved past the copied ids afterwards, so the next insert
does not collide.
"""

from __future__ import annotations

from sqlalchemy import Table, func, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from migrate.errors import StoreError
from migrate.store.db import Store
from migrate.store.models import Base

BATCH = 1000
SKIPPED = ("locks",)


def _tables() -> list[Table]:
    return [t for t in Base.metadata.sorted_tables if t.name not in SKIPPED]


def row_counts(store: Store) -> dict[str, int]:
    """Rows per copied table."""
    with store.read() as session:
        return {
            t.name: int(session.scalar(select(func.count()).select_from(t)) or 0) for t in _tables()
        }


def copy_store(source: Store, target: Store) -> dict[str, int]:
    """Copy every row of ``source`` into the empty ``target``; return the rows per table."""
    if source.schema_version != target.schema_version:
        raise StoreError(
            f"{source.display_url} is at schema version {source.schema_version} and "
            f"{target.display_url} at {target.schema_version}; open both with this migrate first."
        )
    occupied = {name: n for name, n in row_counts(target).items() if n}
    if occupied:
        listed = ", ".join(f"{name} ({n})" for name, n in sorted(occupied.items()))
        raise StoreError(
            f"The target store {target.display_url} is not empty: {listed}. Copy into an empty "
            "database (one per account: CREATE DATABASE ... OWNER ...), so that no run is mixed "
            "with another's."
        )
    copied: dict[str, int] = {}
    table = ""
    try:
        with source.read() as reading, target.write() as writing:
            for t in _tables():
                table = t.name
                copied[table] = 0
                result = reading.execute(select(t).order_by(*t.primary_key.columns))
                for batch in result.mappings().partitions(BATCH):
                    writing.execute(t.insert(), [dict(row) for row in batch])
                    copied[table] += len(batch)
            if target.backend == "postgresql":
                _advance_sequences(writing, _tables())
    except DBAPIError as exc:
        reason = " ".join(str(exc.orig).split())
        raise StoreError(
            f"Copying table {table} into {target.display_url} failed: {reason}. Nothing was "
            "written to the target (the copy is one transaction); the source is unchanged."
        ) from None
    return copied


def _advance_sequences(session: Session, tables: list[Table]) -> None:
    """After explicit ids were inserted, make each serial id's sequence start past them."""
    for t in tables:
        for col in t.primary_key.columns:
            if col.autoincrement is True or (
                col.autoincrement == "auto" and col.type.python_type is int
            ):
                session.execute(
                    text(
                        f"SELECT setval(pg_get_serial_sequence('{t.name}', '{col.name}'), "
                        f"COALESCE((SELECT MAX({col.name}) FROM {t.name}), 0) + 1, false)"
                    )
                )
