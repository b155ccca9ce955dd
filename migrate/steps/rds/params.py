"""The ``with`` schema of ``rds.encrypt`` (shared by the instance and the cluster phases)."""

from __future__ import annotations

from pydantic import Field

from migrate.engine.selection import Selection


class RdsEncryptParams(Selection):
    """Parameters of ``rds.encrypt``."""

    kms_key: str = Field(min_length=1)
    warm_up: bool = True
    cleanup: bool = True
    disable_deletion_protection_on_cleanup: bool = False
    keep_encrypted_snapshots: bool = True
    wait_timeout_hours: float = Field(default=12.0, gt=0)
    poll_seconds: float = Field(default=60.0, ge=0)
    regions: list[str] = Field(default_factory=list)
    cluster_volume_gib: float = Field(default=100.0, ge=0)
