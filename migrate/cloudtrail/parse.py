"""Reading one CloudTrail log file into a small per-file aggregate (runs in worker processes).

A log file (``{"Records": [...]}``, gzipped) becomes a :class:`FileResult`: a dict of *combos*
(one entry per distinct :data:`DIMENSIONS` tuple, with a count and first/last event time), the
resource ARNs each access key's calls named (bounded sets, see :mod:`resources`), plus counters of
everything odd about the file. The records themselves never leave this function, so memory stays
bounded by the number of distinct combos, not by the number of events, and the parent process only
merges small dicts. The Athena and DuckDB paths group by the very same dimensions.

This module imports nothing heavy (no boto3): worker processes start fast.
"""

from __future__ import annotations

import functools
import gzip
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from migrate.cloudtrail.actions import PARAM_FIELDS, param_actions, param_names
from migrate.cloudtrail.resources import (
    ANY,
    DENIED_CODES,
    MODE_OTHER,
    MODE_S3_BUCKET,
    MODE_S3_OBJECT,
    ArnSet,
    CallKey,
    account_of,
    call_action,
    call_mode,
    keep_accepted,
    listed_arns,
    merge_resources,
    merge_sets,
    params_arns,
    s3_arn_prefix,
)


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
# S3 calls on many objects of one bucket whose keys CloudTrail does not list: granted bucket-wide.
MULTI_OBJECT_CALLS = frozenset({"DeleteObjects"})

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
    resources: dict[CallKey, ArnSet] = field(default_factory=dict)


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

    class _Params(msgspec.Struct, gc=False):
        omitted: bool = False
        # The few parameters that name a resource (Any: other services use the names for other
        # shapes, e.g. DynamoDB's ``key`` is an object; a wrong guess must not fail the file).
        bucketName: Any = None
        key: Any = None
        secretId: Any = None
        tableName: Any = None
        indexName: Any = None
        queueUrl: Any = None
        topicArn: Any = None
        keyId: Any = None
        dBInstanceIdentifier: Any = None
        # The parameters that add an action to a call (actions.PARAM_FIELDS): a version id,
        # ACL and tagging headers, a copy source, a role or instance profile passed.
        versionId: Any = None
        x_amz_copy_source: Any = msgspec.field(default=None, name="x-amz-copy-source")
        x_amz_acl: Any = msgspec.field(default=None, name="x-amz-acl")
        x_amz_grant_read: Any = msgspec.field(default=None, name="x-amz-grant-read")
        x_amz_grant_read_acp: Any = msgspec.field(default=None, name="x-amz-grant-read-acp")
        x_amz_grant_write_acp: Any = msgspec.field(default=None, name="x-amz-grant-write-acp")
        x_amz_grant_full_control: Any = msgspec.field(default=None, name="x-amz-grant-full-control")
        accessControlList: Any = None
        x_amz_tagging: Any = msgspec.field(default=None, name="x-amz-tagging")
        iamInstanceProfile: Any = None
        overrides: Any = None
        taskRoleArn: Any = None
        executionRoleArn: Any = None
        role: Any = None

    class _Resource(msgspec.Struct, gc=False):
        ARN: Any = None
        ARNPrefix: Any = None

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
        # "Was it truncated", and the few names of resources; everything else is skipped.
        requestParameters: _Params | str | None = None
        # Kept raw (cheap) and decoded only for calls whose parameters name no resource.
        resources: msgspec.Raw = msgspec.Raw(b"")

    class _Log(msgspec.Struct, gc=False):
        Records: list[_Record] | None = None

    _DECODER: Any = msgspec.json.Decoder(_Log)
    _GENERIC: Any = msgspec.json.Decoder()
    _RESOURCES: Any = msgspec.json.Decoder(list[_Resource] | None)
    _ERRORS: tuple[type[Exception], ...] = (msgspec.ValidationError, msgspec.DecodeError)
else:  # pragma: no cover
    _DECODER = None
    _GENERIC = None
    _RESOURCES = None
    _ERRORS = ()


def _attr(obj: Any, name: str) -> Any:
    return getattr(obj, name, None)


_PARAM_NAME = {n.replace("-", "_"): n for n in PARAM_FIELDS}  # attribute -> CloudTrail name


@functools.cache
def _param_attrs(source: str, name: str) -> tuple[str, ...]:
    """:func:`param_names` of a call as a typed record's attributes (``x-amz-acl``:
    ``x_amz_acl``), worked out once per call, not per record."""
    return tuple(n.replace("-", "_") for n in param_names(source, name))


def _add_param_actions(
    seen: ArnSet, source: str, name: str, rp: Any, names: tuple[str, ...]
) -> None:
    """Record the actions this record's parameters add to its call: ``names`` are
    :func:`param_names` for a plain record (a dict), :func:`_param_attrs` for a typed one."""
    params: dict[str, Any] = {}
    if rp.__class__ is dict:
        for n in names:
            value = rp.get(n)
            if value is not None:
                params[n] = value
    else:
        for n in names:
            value = getattr(rp, n, None)
            if value is not None:
                params[_PARAM_NAME[n]] = value
    if params:
        for action in param_actions(source, name, params):
            if action not in seen.also:
                seen.also[action] = ""


def _other_arns(r: Any, rp: Any, source: str, name: str) -> list[str]:
    """ARNs of a non-S3 call that its IAM action accepts: from its request parameters, else its
    ``resources[]`` (typed record); ``["*"]`` when it names none of them."""
    if rp is not None and rp.__class__ is not str:
        found = params_arns(
            source,
            lambda field: getattr(rp, field, None),
            r.awsRegion,
            account_of(r.userIdentity.arn),
        )
        if found:
            return keep_accepted(call_action(source, name), found) or [ANY]
    raw = r.resources
    if len(raw) > 2:  # more than "[]"
        try:
            items = _RESOURCES.decode(raw)
        except _ERRORS:
            return [ANY]
        if items:
            return keep_accepted(call_action(source, name), listed_arns(items, _attr)) or [ANY]
    return [ANY]


def _call_set(
    sets: dict[tuple[str, str, str], ArnSet], k: Combo, hints: Mapping[CallKey, ArnSet] | None
) -> ArnSet | None:
    """The bounded resource set shared by every combo of one call in one file.

    None for calls refused with an access-denied code: what they named is no evidence of need,
    so it is not even recorded. ``hints`` (the sets of files read before in the same task) give
    the level to start at: the merge ends at the lower level anyway, so starting there yields the
    same result and spares generalising one level at a time again in every file.
    """
    if k[_I_ERROR] in DENIED_CODES:
        return None
    call = (k[_I_KEY], k[_I_SOURCE], k[_I_NAME])
    found = sets.get(call)
    if found is None:
        hint = hints.get(call) if hints else None
        found = sets[call] = ArnSet(level=hint.level if hint is not None else None)
    return found


def _aggregate_typed(
    records: list[Any], result: FileResult, hints: Mapping[CallKey, ArnSet] | None = None
) -> None:
    combos = result.combos
    sets: dict[tuple[str, str, str], ArnSet] = {}
    c = result.counters
    aggregated = no_identity = aws_service = no_key = truncated = 0
    # Locals: this loop runs once per record.
    star, s3_object, s3_bucket, other = ANY, MODE_S3_OBJECT, MODE_S3_BUCKET, MODE_OTHER
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
        long_lived = key[:4] != TEMPORARY_KEY
        if not long_lived:
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
            # [count, first, last, the call's resource set (long-lived keys only), call mode,
            #  the request parameters that can add an action to it (mostly none)]
            combos[k] = v = [
                1,
                t,
                t,
                _call_set(sets, k, hints) if long_lived else None,
                call_mode(k[8], k[9]),
                _param_attrs(k[8], k[9]),
            ]
        else:
            v[0] += 1
            if t < v[1]:
                v[1] = t
            elif t > v[2]:
                v[2] = t
        aggregated += 1
        seen = v[3]
        if seen is None:
            continue
        attrs = v[5]
        if attrs and rp is not None and rp.__class__ is not str:
            # Mostly none of them is set: looked at here, the helper only runs when one is.
            for attr in attrs:
                if getattr(rp, attr) is not None:
                    _add_param_actions(seen, k[8], k[9], rp, attrs)
                    break
        mode = v[4]
        if mode == 0:
            continue  # the action takes no resource: "*" (added once per call at the end)
        if seen.level == 0:
            continue  # already "*": nothing this record names can change the set
        if mode < other:
            # S3: bucketName/key name the same bucket and object as resources[], and are cheaper.
            bucket = rp.bucketName if rp is not None and rp.__class__ is not str else None
            if bucket.__class__ is not str or not bucket:
                seen.add(star)
                continue
            if mode & s3_object:
                obj = rp.key
                if obj.__class__ is not str or not obj:
                    # DeleteObjects names its keys only in the body: its bucket, not "*".
                    seen.add(f"{bucket}/*" if k[9] in MULTI_OBJECT_CALLS else star)
                    continue
                seen.add(f"{bucket}/{obj}")
            if mode & s3_bucket:
                seen.add(bucket)
        else:
            for arn in _other_arns(r, rp, k[8], k[9]):
                seen.add(arn)
    c["records"] += len(records)
    c["aggregated"] += aggregated
    c["no_identity"] += no_identity
    c["aws_service"] += aws_service
    c["no_access_key"] += no_key
    c["truncated_params"] += truncated
    _collect_resources(combos, result.resources)


_I_DAY, _I_KEY, _I_SOURCE, _I_NAME, _I_ERROR, _I_REGION = (
    DIMENSIONS.index(n)
    for n in ("day", "key_id", "event_source", "event_name", "error_code", "region")
)


def _collect_resources(combos: dict[Combo, ComboValue], into: dict[CallKey, ArnSet]) -> None:
    """Move the calls' resource sets (``value[3]``, bounded already) into ``into``.

    A set is shared by the combos of one call in one file, so every ARN gets the call's last day
    in the file (a log file covers minutes); S3 sets get their ``arn:PARTITION:s3:::`` prefix.
    """
    by_call: dict[CallKey, tuple[ArnSet, str, str]] = {}
    for k, v in combos.items():
        if len(v) <= 3:
            continue
        seen = v[3]
        del v[3:]
        if seen is None:
            continue  # a session's call, or one the key was refused: no evidence of need
        call = (k[_I_KEY], k[_I_SOURCE], k[_I_NAME])
        entry = by_call.get(call)
        if entry is None or k[_I_DAY] > entry[1]:
            by_call[call] = (seen, k[_I_DAY], k[_I_REGION])
    for call, (seen, day, region) in by_call.items():
        mode = call_mode(call[1], call[2])
        if not seen.arns:
            seen.add(ANY)  # the action takes no resource, or no record named one
        if mode and mode < MODE_OTHER:
            prefix = s3_arn_prefix(region)
            seen.arns = {a if a == ANY else prefix + a: day for a in seen.arns}
        else:
            seen.arns = dict.fromkeys(seen.arns, day)
        if seen.also:
            seen.also = dict.fromkeys(seen.also, day)
        mine = into.get(call)
        if mine is None:
            into[call] = seen
        else:
            merge_sets(mine, seen)


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
    local: dict[Combo, ComboValue] = {}
    sets: dict[tuple[str, str, str], ArnSet] = {}
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
            long_lived = key[:4] != TEMPORARY_KEY
            if not long_lived:
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
        v = local.get(k)
        if v is None:
            v = local[k] = [0, t, t, _call_set(sets, k, None) if long_lived else None]
        v[0] += 1
        if t and (not v[1] or t < v[1]):
            v[1] = t
        if t > v[2]:
            v[2] = t
        if v[3] is not None:
            _add_record_arns(v[3], record, rp, k[_I_SOURCE], k[_I_NAME])
            names = param_names(k[_I_SOURCE], k[_I_NAME])
            if names and isinstance(rp, dict):
                _add_param_actions(v[3], k[_I_SOURCE], k[_I_NAME], rp, names)
        c["aggregated"] += 1
    _collect_resources(local, result.resources)
    merge_combos(result.combos, local)


def _add_record_arns(seen: ArnSet, record: dict[str, Any], rp: Any, source: str, name: str) -> None:
    """Add a plain record's resources to its call's set, exactly as the typed path does."""
    mode = call_mode(source, name)
    if mode == 0 or seen.level == 0:
        return
    params = rp if isinstance(rp, dict) else {}
    if mode < MODE_OTHER:
        bucket = params.get("bucketName")
        if not isinstance(bucket, str) or not bucket:
            seen.add(ANY)
            return
        if mode & MODE_S3_OBJECT:
            obj = params.get("key")
            if not isinstance(obj, str) or not obj:
                seen.add(bucket + "/*" if name in MULTI_OBJECT_CALLS else ANY)
                return
            seen.add(bucket + "/" + obj)
        if mode & MODE_S3_BUCKET:
            seen.add(bucket)
        return
    region = record.get("awsRegion")
    found = params_arns(
        source,
        params.get,
        region if isinstance(region, str) else None,
        account_of(_get(record.get("userIdentity"), "arn")),
    )
    listed = record.get("resources")
    if not found and isinstance(listed, list):
        found = listed_arns(listed, _get)
    for arn in keep_accepted(call_action(source, name), found) or (ANY,):
        seen.add(arn)


def parse_bytes(
    name: str, data: bytes, hints: Mapping[CallKey, ArnSet] | None = None
) -> FileResult:
    """Aggregate one log file's bytes (gzipped or plain JSON). Never raises for bad input.

    ``hints``: ARN sets of earlier files to take generalisation levels from (see _call_set).
    """
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
                _aggregate_typed(log.Records, result, hints)
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


def parse_path(path: str, hints: Mapping[CallKey, ArnSet] | None = None) -> FileResult:
    """Read and aggregate a local log file."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        return FileResult(name=path, error=f"cannot read: {exc.strerror or exc}")
    return parse_bytes(path, data, hints)


def parse_batch(items: list[tuple[str, bytes | None]]) -> list[FileResult]:
    """``(name, bytes)`` pairs, or ``(path, None)`` to read a local file: one result per file."""
    return [parse_path(name) if data is None else parse_bytes(name, data) for name, data in items]


@dataclass
class TaskResult:
    """What a worker returns for a task of several files: each file's counters and error (its
    ``combos``/``resources`` emptied), and the task's combos and bounded ARN sets merged.

    Merging in the worker keeps the parent, a single process that also commits, from becoming
    the bottleneck: it merges one small summary per task instead of one per file.
    """

    files: list[FileResult]
    combos: dict[Combo, ComboValue]
    resources: dict[CallKey, ArnSet]


def parse_task(items: list[tuple[str, bytes | None]]) -> TaskResult:
    """Worker entry point: parse every file of a task and merge their summaries."""
    combos: dict[Combo, ComboValue] = {}
    resources: dict[CallKey, ArnSet] = {}
    files = []
    for name, data in items:
        # Each file starts its calls' sets at the level the task's merged sets reached.
        result = parse_path(name, resources) if data is None else parse_bytes(name, data, resources)
        files.append(result)
        if combos:
            merge_combos(combos, result.combos)
        else:
            combos = result.combos
        merge_resources(resources, result.resources)
        result.combos, result.resources = {}, {}
    return TaskResult(files, combos, resources)
