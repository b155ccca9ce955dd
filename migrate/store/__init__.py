"""The state store: SQLite by default, PostgreSQL for teams; schema owned by Alembic."""

from __future__ import annotations

from migrate.store.db import Store, open_store, redact_url, resolve_url, store_clock
from migrate.util import utcnow

__all__ = ["Store", "open_store", "redact_url", "resolve_url", "store_clock", "utcnow"]
