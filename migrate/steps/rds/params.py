"""The ``with`` schema of ``rds.encrypt`` (shared by the instance and the cluster phases)."""

from __future__ import annotations

import ipaddress
import re
from typing import Literal

from pydantic import Field, field_validator

from migrate.engine.selection import Selection
from migrate.util import parse_duration

WAIT_MARGIN = 3.0
MIN_WAIT_HOURS = 2.0
ROLLBACK_WAIT_HOURS = 12.0  # rollback polls renames and deletes in place, bounded by this


def wait_hours(explicit: float | None, estimate_s: float, *, size_assumed: bool = False) -> float:
    """The deadline of a waiting phase: ``explicit`` if set, else derived from its estimate.

    ``size_assumed``: the estimate rests on an assumed size (an Aurora volume, which AWS does not
    report: ``cluster_volume_gib``), so the deadline never drops below the former fixed 12 h."""
    if explicit is not None:
        return explicit
    floor = ROLLBACK_WAIT_HOURS if size_assumed else MIN_WAIT_HOURS
    return max(floor, WAIT_MARGIN * estimate_s / 3600)


_GROUP_ID = re.compile(r"^sg-[0-9a-f]{8,17}$")


def check_allow(entry: str) -> str:
    """A ``lockdown_allow`` entry: a CIDR (``10.0.5.12/32``, IPv6 too) or a security group id."""
    if _GROUP_ID.match(entry):
        return entry
    try:
        network = ipaddress.ip_network(entry, strict=False)
    except ValueError:
        raise ValueError(
            f"{entry!r} is neither a CIDR (10.0.5.12/32) nor a security group id (sg-...)"
        ) from None
    if network.prefixlen == 0:
        raise ValueError(
            f"{entry!r} lets everyone in: a lockdown open to the whole internet stops no writer. "
            "Name the hosts that must still connect (a /32), or leave lockdown_allow empty"
        )
    return str(network)


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
    # How writes are stopped at the stop-writes gate: "security-groups" swaps the database's
    # groups for a lockdown group without inbound rules (enforced); "operator" trusts the
    # operator who approves (checked with CloudWatch, not enforced). See lockdown.py.
    stop_writes: Literal["security-groups", "operator"] = "security-groups"
    # CIDRs or security group ids that may still reach the database's port while it is locked
    # down (a migrator's host that checks the data, say); nothing else can connect.
    lockdown_allow: list[str] = Field(default_factory=list)
    # A database with modifications pending for its maintenance window is refused unless this
    # is true: the copy is restored with the current settings, so the pending ones are lost.
    accept_pending_modifications: bool = False
    keep_encrypted_snapshots: bool = True
    # Deadline of each waiting phase. None (the default): derived from the phase's estimate,
    # WAIT_MARGIN times it and at least MIN_WAIT_HOURS (a 5 TiB copy is not given up after a
    # fixed 12 h mid-window; a rename is not waited on for 12 h). A number applies to all.
    wait_timeout_hours: float | None = Field(default=None, gt=0)
    poll_seconds: float = Field(default=60.0, ge=0)
    regions: list[str] = Field(default_factory=list)
    cluster_volume_gib: float = Field(default=100.0, ge=0)

    @field_validator("cleanup_soak")
    @classmethod
    def _check_duration(cls, value: str) -> str:
        parse_duration(value)
        return value

    @field_validator("lockdown_allow")
    @classmethod
    def _check_allow(cls, value: list[str]) -> list[str]:
        return [check_allow(v) for v in value]

    @property
    def soak_s(self) -> float:
        """``cleanup_soak`` in seconds."""
        return parse_duration(self.cleanup_soak)
