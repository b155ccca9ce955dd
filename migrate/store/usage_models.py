"""State-store tables of CloudTrail usage: ingested log files, per-key usage combos, reports.

``cloudtrail_files`` remembers every log file read (so a second run reads only new ones);
``cloudtrail_usage`` holds the aggregated combos (one row per distinct day + identity + call +
origin, with a count), committed in the same transaction as the files they came from, so a crash
never counts a file twice; ``cloudtrail_resources`` holds, per access key and call, the bounded
set of resource ARNs the call named (committed with the same batch); ``cloudtrail_reports`` keeps
each usage report that the keys-to-roles step reads by id. None of them holds a secret: access
key *ids*, ARNs, IPs and user agents only.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, DateTime, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from migrate.store.models import Base


class CloudTrailFile(Base):
    """One CloudTrail log file that was read (or found unreadable) for a dataset."""

    __tablename__ = "cloudtrail_files"
    __table_args__ = (UniqueConstraint("dataset", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    dataset: Mapped[str] = mapped_column(String(512), index=True)
    name: Mapped[str] = mapped_column(Text)
    etag: Mapped[str | None] = mapped_column(String(128), nullable=True)
    size: Mapped[int] = mapped_column(Integer, default=0)
    records: Mapped[int] = mapped_column(Integer, default=0)
    counters: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    run_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    ingested_at: Mapped[datetime] = mapped_column(DateTime)


class CloudTrailUsage(Base):
    """Calls of one distinct combination of day, identity, call and origin, with their count."""

    __tablename__ = "cloudtrail_usage"
    __table_args__ = (
        UniqueConstraint("dataset", "combo_hash"),
        Index("ix_cloudtrail_usage_dataset_day", "dataset", "day"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    dataset: Mapped[str] = mapped_column(String(512))
    combo_hash: Mapped[str] = mapped_column(String(40))
    day: Mapped[str] = mapped_column(String(10))
    key_id: Mapped[str] = mapped_column(String(128))
    identity_type: Mapped[str] = mapped_column(Text)
    principal_arn: Mapped[str] = mapped_column(Text)
    user_name: Mapped[str] = mapped_column(Text)
    issuer_arn: Mapped[str] = mapped_column(Text)
    issuer_type: Mapped[str] = mapped_column(Text)
    invoked_by: Mapped[str] = mapped_column(Text)
    event_source: Mapped[str] = mapped_column(Text)
    event_name: Mapped[str] = mapped_column(Text)
    error_code: Mapped[str] = mapped_column(Text)
    source_ip: Mapped[str] = mapped_column(Text)
    user_agent: Mapped[str] = mapped_column(Text)
    region: Mapped[str] = mapped_column(Text)
    vpc_endpoint_id: Mapped[str] = mapped_column(Text)
    count: Mapped[int] = mapped_column(Integer, default=0)
    first_seen: Mapped[str] = mapped_column(String(40))
    last_seen: Mapped[str] = mapped_column(String(40))


class CloudTrailResources(Base):
    """The resource ARNs one access key's call named: ``{arn: last day seen}``, at most ~20.

    A separate table, not a dimension of ``cloudtrail_usage``: one row per key and call keeps the
    combo count independent of how many objects a workload touches.
    """

    __tablename__ = "cloudtrail_resources"
    __table_args__ = (UniqueConstraint("dataset", "key_id", "event_source", "event_name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    dataset: Mapped[str] = mapped_column(String(512))
    key_id: Mapped[str] = mapped_column(String(128))
    event_source: Mapped[str] = mapped_column(Text)
    event_name: Mapped[str] = mapped_column(Text)
    arns: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # The path depth the ARNs were generalised to (None: exact), see migrate.cloudtrail.resources.
    level: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # IAM actions the call's request parameters showed it needs beyond its name's (an ACL header
    # on PutObject: s3:PutObjectAcl), each with the last day seen; None before revision 0005.
    also: Mapped[dict[str, str] | None] = mapped_column(JSON, nullable=True)


class CloudTrailReport(Base):
    """A per-key usage report (the JSON of ``UsageReport``), referenced by later steps by id."""

    __tablename__ = "cloudtrail_reports"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    dataset: Mapped[str] = mapped_column(String(512), index=True)
    source: Mapped[str] = mapped_column(String(32))
    run_id: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    step_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    body: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime)
