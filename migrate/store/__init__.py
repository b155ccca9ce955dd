"""The state store: SQLite (or any SQLAlchemy URL), schema owned by Alembic."""

from __future__ import annotations

from migrate.store.db import Store, open_store, resolve_url
from migrate.util import utcnow

__all__ = ["Store", "open_store", "resolve_url", "utcnow"]
