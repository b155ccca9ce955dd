"""Reading one CloudTrail log file into a small per-file aggregate (runs in worker processes).

A log file (``{"Records": [...]}``, gzipped) becomes a :class:`FileResult`: a dict of *combos*
(one entry per distinct :data:`DIMENSIONS` tuple, with a count and first/last event time) plus
counters of everything odd about the file. The records themselves never leave this function, so
memory stays bounded by the number of distinct combos, not by the number of events, and the parent
process only merges small dicts. The Athena and DuckDB paths group by the very same dimensions.

This module imports nothing heavy (no boto3): worker processes start fast.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


def _load_gzip() -> Any:
    """ISA-L's igzip inflates about 2x faster than zlib; stdlib gzip is the fallback."""
    try:
        from isal import igzip
    except ImportError:  # pragma: no cover - depends on the environment
        return gzip
    return igzip


_GZIP: Any = _load_gzip()

try:  # msgspec decodes only the fields we declare and skips the rest without building objects.
    import msgspec
except ImportError:  # pragma: no cover - depends on the environment
    msgspec = None  # type: ignore[assignment]

# The group-by of the usage model, in order. Every path (local files, LookupEvents, Athena, the
# DuckDB benchmark peer) aggregates by exactly these, so their results are interchangeable.
DIMENSIONS: tuple[str, ...] = (
    "day",  # eventTime[:10], so a report can use any window inside what was ingested
    "key_id",  # AKIA... as is; every temporary (ASIA...) key becomes "ASIA": sessions, not keys
    "identity_type",  # userIdentity.type
    "principal_arn",  # userIdentity.arn
    "user_name",  # userIdentity.userName
    "issuer_arn",  # userIdentity.sessionContext.sessionIssuer.arn (the role of a session)
    "issuer_type",  # ... .sessionIssuer.type (Role, IAMUser for GetSessionToken)
    "invoked_by",  # userIdentity.invokedBy (an AWS service acting for the caller)
    "event_source",
    "event_name",
    "error_code",
    "source_ip",  # sourceIPAddress: an IP, or a service name such as s3.amazonaws.com
    "user_agent",
    "region",  # awsRegion
    "vpc_endpoint_id",
)
TEMPORARY_KEY = "ASIA"

Combo = tuple[str, ...]
"""A value of every dimension, in :data:`DIMENSIONS` order ("" for absent)."""
ComboValue = list[Any]
"""``[count, first_event_time, last_event_time]`` (ISO-8601 strings compare as times)."""

COUNTERS = (
    "records",  # every record in the file
    "aggregated",  # records with an access key, counted in combos
    "no_identity",  # records without a userIdentity
    "aws_service",  # records made by an AWS service itself (userIdentity.type AWSService)
    "no_access_key",  # other records without an access key (console sign-in, anonymous, ...)
    "truncated_params",  # requestParameters that CloudTrail truncated ("omitted": true)
    "bad_records",  # records that are not objects or have values of the wrong type
)


@dataclass
class FileResult:
    """What one log file contributed: combos, counters, and the file-level error if any."""

    name: str
    combos: dict[Combo, ComboValue] = field(default_factory=dict)
    counters: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNTERS, 0))
    error: str | None = None
    size: int = 0


def merge_combos(into: dict[Combo, ComboValue], other: Mapping[Combo, ComboValue]) -> None:
    """Add ``other``'s counts into ``into`` (first/last become the min/max)."""
    for key, (count, first, last) in other.items():
        mine = into.get(key)
        if mine is None:
            into[key] = [count, first, last]
            continue
        mine[0] += count
        if first and (not mine[1] or first < mine[1]):
            mine[1] = first
        if last and last > mine[2]:
            mine[2] = last


def decompress(data: bytes) -> bytes:
    """Gunzip ``data`` (every member); data that is not gzip is returned as is (plain .json)."""
    if data[:2] != b"\x1f\x8b":
        return data
    return bytes(_GZIP.decompress(data))


# -- typed decoding (the fast path) ----------------------------------------------------------

if msgspec is not None:

    class _Issuer(msgspec.Struct, gc=False):
        type: str | None = None
        arn: str | None = None

    class _SessionContext(msgspec.Struct, gc=False):
        sessionIssuer: _Issuer | None = None

    class _Identity(msgspec.Struct, gc=False):
        type: str | None = None
        arn: str | None = None
        accessKeyId: str | None = None
        userName: str | None = None
        invokedBy: str | None = None
        sessionContext: _SessionContext | None = None

    class _Omittable(msgspec.Struct, gc=False):
        omitted: bool = False

    class _Record(msgspec.Struct, gc=False):
        eventTime: str | None = None
        eventSource: str | None = None
        eventName: str | None = None
        awsRegion: str | None = None
        sourceIPAddress: str | None = None
        userAgent: str | None = None
        errorCode: str | None = None
        vpcEndpointId: str | None = None
        userIdentity: _Identity | None = None
        # Only "was it truncated" matters; the parameters are skipped, never materialised.
        requestParameters: _Omittable | str | None = None

    class _Log(msgspec.Struct, gc=False):
        Records: list[_Record] | None = None

    _DECODER: Any = msgspec.json.Decoder(_Log)
    _GENERIC: Any = msgspec.json.Decoder()
    _ERRORS: tuple[type[Exception], ...] = (msgspec.ValidationError, msgspec.DecodeError)
else:  # pragma: no cover
    _DECODER = None
    _GENERIC = None
    _ERRORS = ()


def _aggregate_typed(records: list[Any], result: FileResult) -> None:
    combos = result.combos
    c = result.counters
    aggregated = no_identity = aws_service = no_key = truncated = 0
    for r in records:
        ui = r.userIdentity
        if ui is None:
            no_identity += 1
            continue
        key = ui.accessKeyId
        if not key:
            if ui.type == "AWSService":
                aws_service += 1
            else:
                no_key += 1
            continue
        if key[:4] == TEMPORARY_KEY:
            key = TEMPORARY_KEY
        rp = r.requestParameters
        if rp is not None and (rp.__class__ is str or rp.omitted):
            truncated += 1
        sc = ui.sessionContext
        issuer = sc.sessionIssuer if sc is not None else None
        t = r.eventTime or ""
        k = (
            t[:10],
            key,
            ui.type or "",
            ui.arn or "",
            ui.userName or "",
            (issuer.arn or "") if issuer is not None else "",
            (issuer.type or "") if issuer is not None else "",
            ui.invokedBy or "",
            r.eventSource or "",
            r.eventName or "",
            r.errorCode or "",
            r.sourceIPAddress or "",
            r.userAgent or "",
            r.awsRegion or "",
            r.vpcEndpointId or "",
        )
        v = combos.get(k)
        if v is None:
            combos[k] = [1, t, t]
        else:
            v[0] += 1
            if t < v[1]:
                v[1] = t
            elif t > v[2]:
                v[2] = t
        aggregated += 1
    c["records"] += len(records)
    c["aggregated"] += aggregated
    c["no_identity"] += no_identity
    c["aws_service"] += aws_service
    c["no_access_key"] += no_key
    c["truncated_params"] += truncated


# -- tolerant decoding (malformed records, no msgspec) ---------------------------------------


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    raise TypeError(type(value).__name__)


def _get(mapping: Any, name: str) -> Any:
    return mapping.get(name) if isinstance(mapping, dict) else None


def aggregate_records(records: Iterable[Any], result: FileResult) -> None:
    """Aggregate plain decoded records (dicts) one by one; odd records are counted, not fatal.

    Used when a file does not fit the typed schema, when msgspec is not installed, and for
    LookupEvents (whose events arrive one JSON string at a time).
    """
    c = result.counters
    for record in records:
        c["records"] += 1
        if not isinstance(record, dict):
            c["bad_records"] += 1
            continue
        ui = record.get("userIdentity")
        if not isinstance(ui, dict):
            if ui is None:
                c["no_identity"] += 1
            else:
                c["bad_records"] += 1
            continue
        try:
            key = _text(ui.get("accessKeyId"))
            if not key:
                if ui.get("type") == "AWSService":
                    c["aws_service"] += 1
                else:
                    c["no_access_key"] += 1
                continue
            if key[:4] == TEMPORARY_KEY:
                key = TEMPORARY_KEY
            issuer = _get(_get(ui, "sessionContext"), "sessionIssuer")
            t = _text(record.get("eventTime"))
            k = (
                t[:10],
                key,
                _text(ui.get("type")),
                _text(ui.get("arn")),
                _text(ui.get("userName")),
                _text(_get(issuer, "arn")),
                _text(_get(issuer, "type")),
                _text(ui.get("invokedBy")),
                _text(record.get("eventSource")),
                _text(record.get("eventName")),
                _text(record.get("errorCode")),
                _text(record.get("sourceIPAddress")),
                _text(record.get("userAgent")),
                _text(record.get("awsRegion")),
                _text(record.get("vpcEndpointId")),
            )
        except TypeError:
            c["bad_records"] += 1
            continue
        rp = record.get("requestParameters")
        if isinstance(rp, str) or (isinstance(rp, dict) and rp.get("omitted") is True):
            c["truncated_params"] += 1
        merge_combos(result.combos, {k: [1, t, t]})
        c["aggregated"] += 1


def parse_bytes(name: str, data: bytes) -> FileResult:
    """Aggregate one log file's bytes (gzipped or plain JSON). Never raises for bad input."""
    result = FileResult(name=name, size=len(data))
    try:
        raw = decompress(data)
    except Exception as exc:  # truncated/corrupt gzip: EOFError, BadGzipFile, zlib.error, ...
        result.error = f"not a readable gzip file ({type(exc).__name__}: {exc})"
        return result
    if _DECODER is not None:
        try:
            log = _DECODER.decode(raw)
        except _ERRORS:
            pass  # a record of an unexpected shape, or bad JSON: the tolerant path decides
        else:
            if log.Records is None:
                result.error = "no Records array (not a CloudTrail log file)"
            else:
                _aggregate_typed(log.Records, result)
            return result
    try:
        doc = _GENERIC.decode(raw) if _GENERIC is not None else json.loads(raw)
    except Exception as exc:
        result.error = f"not valid JSON ({type(exc).__name__}: {str(exc)[:120]})"
        return result
    records = doc.get("Records") if isinstance(doc, dict) else None
    if not isinstance(records, list):
        result.error = "no Records array (not a CloudTrail log file)"
        return result
    aggregate_records(records, result)
    return result


def parse_path(path: str) -> FileResult:
    """Read and aggregate a local log file."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        return FileResult(name=path, error=f"cannot read: {exc.strerror or exc}")
    return parse_bytes(path, data)


def parse_batch(items: list[tuple[str, bytes | None]]) -> list[FileResult]:
    """Worker entry point: ``(name, bytes)`` pairs, or ``(path, None)`` to read a local file."""
    return [parse_path(name) if data is None else parse_bytes(name, data) for name, data in items]
