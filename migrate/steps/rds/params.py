"""The ``with`` schema of ``rds.encrypt`` (shared by the instance and the cluster phases)."""

from __future__ import annotations

from pydantic import Field, field_validator

from migrate.engine.selection import Selection
from migrate.util import parse_duration


class RdsEncryptParams(Selection):
    """Parameters of ``rds.encrypt``."""

    kms_key: str = Field(min_length=1)
    warm_up: bool = True
    cleanup: bool = True
    # How long the renamed original is kept after the cut-over before the cleanup may delete it:
    # the way back while the encrypted database proves itself under real traffic.
    cleanup_soak: str = "24h"
    disable_deletion_protection_on_cleanup: bool = False
    # Before the cleanup deletes the renamed original: CloudWatch DatabaseConnections since the
    # cut-over must stay at or below this (a cron job or a second service still writing there
    # would lose those writes). -1 skips the check.
    original_connections_allowed: int = Field(default=0, ge=-1)
    keep_encrypted_snapshots: bool = True
    wait_timeout_hours: float = Field(default=12.0, gt=0)
    poll_seconds: float = Field(default=60.0, ge=0)
    regions: list[str] = Field(default_factory=list)
    cluster_volume_gib: float = Field(default=100.0, ge=0)

    @field_validator("cleanup_soak")
    @classmethod
    def _check_duration(cls, value: str) -> str:
        parse_duration(value)
        return value

    @property
    def soak_s(self) -> float:
        """``cleanup_soak`` in seconds."""
        return parse_duration(self.cleanup_soak)
