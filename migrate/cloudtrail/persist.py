"""Reading and writing the CloudTrail tables of the state store.

Each batch of files is committed in one transaction together with the combos and the resource ARN
sets it produced, so the "already ingested" list and the counts can never disagree: after a crash,
the batch in flight is simply read again.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, cast

from sqlalchemy import Table, delete, insert, select, update

from migrate.cloudtrail.model import UsageReport
from migrate.cloudtrail.parse import COUNTERS, DIMENSIONS, Combo, ComboValue, FileResult
from migrate.cloudtrail.resources import ArnSet, CallKey, merge_sets
from migrate.store import Store, utcnow
from migrate.store.usage_models import (
    CloudTrailFile,
    CloudTrailReport,
    CloudTrailResources,
    CloudTrailUsage,
)

_CHUNK = 500  # well under SQLite's bound-parameter limit


def combo_hash(combo: Combo) -> str:
    """A stable id of a combo (the unique key of its row within a dataset)."""
    return hashlib.sha1("\x1f".join(combo).encode(), usedforsecurity=False).hexdigest()


def _chunks(items: Sequence[Any], size: int = _CHUNK) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def already_ingested(store: Store, dataset: str, names: Sequence[str]) -> set[str]:
    """Which of ``names`` were read before for ``dataset``."""
    found: set[str] = set()
    with store.read() as session:
        for chunk in _chunks(list(names)):
            found.update(
                session.scalars(
                    select(CloudTrailFile.name).where(
                        CloudTrailFile.dataset == dataset, CloudTrailFile.name.in_(chunk)
                    )
                )
            )
    return found


def _upsert(session: Any, dataset: str, combos: dict[Combo, ComboValue]) -> None:
    """Add ``combos`` to the dataset's rows: bulk UPDATE of known ones, bulk INSERT of new ones."""
    by_hash = {combo_hash(c): (c, v) for c, v in combos.items()}
    u = CloudTrailUsage
    updates: list[dict[str, Any]] = []
    for chunk in _chunks(list(by_hash)):
        rows = session.execute(
            select(u.id, u.combo_hash, u.count, u.first_seen, u.last_seen).where(
                u.dataset == dataset, u.combo_hash.in_(chunk)
            )
        )
        for row_id, digest, old_count, old_first, old_last in rows:
            _, (count, first, last) = by_hash.pop(digest)
            updates.append(
                {
                    "id": row_id,
                    "count": old_count + count,
                    "first_seen": min(f for f in (old_first, first) if f)
                    if (old_first or first)
                    else "",
                    "last_seen": max(old_last or "", last or ""),
                }
            )
    if updates:
        session.execute(update(CloudTrailUsage), updates)
    inserts = [
        {
            "dataset": dataset,
            "combo_hash": digest,
            "count": count,
            "first_seen": first or "",
            "last_seen": last or "",
            **dict(zip(DIMENSIONS, combo, strict=True)),
        }
        for digest, (combo, (count, first, last)) in by_hash.items()
    ]
    if inserts:
        # A Core executemany on the table: the ORM's bulk-insert path costs several times more
        # per row, and these rows are plain values (no relationships, no defaults to compute).
        session.execute(insert(cast(Table, CloudTrailUsage.__table__)), inserts)


def _rows_of(session: Any, dataset: str, key_ids: Iterable[str]) -> dict[CallKey, Any]:
    r = CloudTrailResources
    found: dict[CallKey, Any] = {}
    for chunk in _chunks(sorted(set(key_ids))):
        for row in session.scalars(select(r).where(r.dataset == dataset, r.key_id.in_(chunk))):
            found[(row.key_id, row.event_source, row.event_name)] = row
    return found


def _upsert_resources(
    session: Any,
    dataset: str,
    resources: Mapping[CallKey, ArnSet],
    drop_from_day: str | None = None,
) -> None:
    """Merge per-call ARN sets into the dataset's rows (one per key and call).

    ``drop_from_day`` first forgets what the stored rows saw from that day on (the window a
    LookupEvents run replaces).
    """
    rows = _rows_of(session, dataset, (call[0] for call in resources))
    if drop_from_day is not None:
        rows.update(_rows_of(session, dataset, _all_key_ids(session, dataset)))
        for row in rows.values():
            kept = {a: d for a, d in (row.arns or {}).items() if d < drop_from_day}
            if kept != row.arns:
                row.arns = kept
            also = {a: d for a, d in (row.also or {}).items() if d < drop_from_day}
            if also != (row.also or {}):
                row.also = also or None
    for call, arn_set in resources.items():
        row = rows.get(call)
        if row is None:
            session.add(
                CloudTrailResources(
                    dataset=dataset,
                    key_id=call[0],
                    event_source=call[1],
                    event_name=call[2],
                    **arn_set.to_json(),
                )
            )
            continue
        stored = ArnSet.from_json({"arns": row.arns, "level": row.level, "also": row.also})
        merge_sets(stored, arn_set)
        data = stored.to_json()
        row.arns, row.level, row.also = data["arns"], data["level"], data["also"]


def _all_key_ids(session: Any, dataset: str) -> list[str]:
    r = CloudTrailResources
    return list(session.scalars(select(r.key_id).where(r.dataset == dataset).distinct()))


def commit_batch(
    store: Store,
    dataset: str,
    files: Iterable[tuple[FileResult, str | None]],
    combos: dict[Combo, ComboValue],
    run_id: str | None = None,
    resources: Mapping[CallKey, ArnSet] | None = None,
) -> None:
    """Record a batch of read files (with etags) and add their combos and resource ARNs, in one
    transaction."""
    now = utcnow()
    with store.write() as session:
        for result, etag in files:
            session.add(
                CloudTrailFile(
                    dataset=dataset,
                    name=result.name,
                    etag=etag,
                    size=result.size,
                    records=result.counters.get("records", 0),
                    counters={k: v for k, v in result.counters.items() if v},
                    error=result.error,
                    run_id=run_id,
                    ingested_at=now,
                )
            )
        _upsert(session, dataset, combos)
        if resources:
            _upsert_resources(session, dataset, resources)


def replace_window(
    store: Store,
    dataset: str,
    since_day: str,
    combos: dict[Combo, ComboValue],
    resources: Mapping[CallKey, ArnSet] | None = None,
) -> None:
    """Replace every combo of ``dataset`` from ``since_day`` on (LookupEvents, Athena).

    With ``resources`` (LookupEvents), the ARNs seen from ``since_day`` on are replaced too;
    without (Athena, which aggregates no resources), stored ARNs are left alone.
    """
    with store.write() as session:
        session.execute(
            delete(CloudTrailUsage).where(
                CloudTrailUsage.dataset == dataset, CloudTrailUsage.day >= since_day
            )
        )
        session.flush()
        _upsert(session, dataset, combos)
        if resources is not None:
            _upsert_resources(session, dataset, resources, drop_from_day=since_day)


def load_combos(
    store: Store, dataset: str, since_day: str | None = None
) -> Iterator[tuple[Combo, ComboValue]]:
    """The stored combos of ``dataset`` (from ``since_day`` on), streamed."""
    columns = [getattr(CloudTrailUsage, name) for name in DIMENSIONS]
    query = select(
        *columns, CloudTrailUsage.count, CloudTrailUsage.first_seen, CloudTrailUsage.last_seen
    ).where(CloudTrailUsage.dataset == dataset)
    if since_day:
        query = query.where(CloudTrailUsage.day >= since_day)
    width = len(DIMENSIONS)
    with store.read() as session:
        for row in session.execute(query).yield_per(2000):
            yield tuple(row[:width]), [row[width], row[width + 1], row[width + 2]]


def load_resources(store: Store, dataset: str) -> dict[CallKey, ArnSet]:
    """The stored ARN sets of ``dataset``, per (access key id, eventSource, eventName)."""
    r = CloudTrailResources
    query = select(r.key_id, r.event_source, r.event_name, r.arns, r.level, r.also).where(
        r.dataset == dataset
    )
    with store.read() as session:
        return {
            (key_id, source, name): ArnSet.from_json({"arns": arns, "level": level, "also": also})
            for key_id, source, name, arns, level, also in session.execute(query)
        }


def file_stats(store: Store, dataset: str, limit: int = 50) -> dict[str, Any]:
    """What was read for ``dataset`` so far: files, bytes, record counters, unreadable files."""
    counters = dict.fromkeys(COUNTERS, 0)
    files = size = bad_count = 0
    bad: list[dict[str, str]] = []
    query = (
        select(
            CloudTrailFile.name, CloudTrailFile.size, CloudTrailFile.counters, CloudTrailFile.error
        )
        .where(CloudTrailFile.dataset == dataset)
        .order_by(CloudTrailFile.name)
    )
    with store.read() as session:
        for name, file_size, file_counters, error in session.execute(query).yield_per(5000):
            files += 1
            size += file_size or 0
            for key, value in (file_counters or {}).items():
                counters[key] = counters.get(key, 0) + int(value)
            if error is not None:
                bad_count += 1
                if len(bad) < limit:
                    bad.append({"name": name, "error": error})
    return {
        "files": files,
        "bytes": size,
        "counters": counters,
        "unreadable_files": bad_count,
        "unreadable": bad,
    }


def new_report_id() -> str:
    """``usage-YYYYMMDD-xxxxxx``."""
    return f"usage-{utcnow():%Y%m%d}-{secrets.token_hex(3)}"


def save_report(
    store: Store, report: UsageReport, run_id: str | None = None, step_id: str | None = None
) -> str:
    """Store ``report`` (assigning its id) and return the id."""
    report.id = report.id or new_report_id()
    with store.write() as session:
        session.merge(
            CloudTrailReport(
                id=report.id,
                dataset=report.dataset,
                source=report.source,
                run_id=run_id,
                step_id=step_id,
                body=report.to_dict(),
                created_at=utcnow(),
            )
        )
    return report.id


def load_report(store: Store, report_id: str) -> UsageReport | None:
    """A stored report by id, or None."""
    with store.read() as session:
        row = session.get(CloudTrailReport, report_id)
        return UsageReport.from_dict(row.body) if row is not None else None


def latest_report_id(
    store: Store,
    *,
    dataset: str | None = None,
    run_id: str | None = None,
    step_id: str | None = None,
) -> str | None:
    """The id of the newest stored report matching the filters, or None."""
    query = select(CloudTrailReport.id)
    if dataset is not None:
        query = query.where(CloudTrailReport.dataset == dataset)
    if run_id is not None:
        query = query.where(CloudTrailReport.run_id == run_id)
    if step_id is not None:
        query = query.where(CloudTrailReport.step_id == step_id)
    query = query.order_by(CloudTrailReport.created_at.desc(), CloudTrailReport.id.desc()).limit(1)
    with store.read() as session:
        return session.scalar(query)
