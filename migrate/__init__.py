"""migrate: resumable, dry-run-able security migrations for legacy AWS accounts."""

from __future__ import annotations

__version__ = "0.1.0"
