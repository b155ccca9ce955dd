"""Which resources each access key's calls touched: ARNs from CloudTrail records, kept bounded.

Per long-lived access key and call (``eventSource`` + ``eventName``) we keep the ARNs the call
named, each with the last day it was seen, so a report for a shorter window can drop what is older.
They come from the record's ``resources[]`` array and, for the common services, from
``requestParameters`` (S3 ``bucketName``/``key``, Secrets Manager ``secretId``, DynamoDB
``tableName``/``indexName``, SQS ``queueUrl``, SNS ``topicArn``, KMS ``keyId`` when it is an ARN,
RDS ``dBInstanceIdentifier``). Only the kinds of ARN the call's IAM action accepts are kept
(``s3:GetObject`` keeps object ARNs, ``s3:ListBucket`` bucket ARNs); a call whose action takes no
resource (``s3:ListAllMyBuckets``), or a record that names none (truncated parameters, an
account-level ``DescribeDBInstances``), contributes :data:`ANY` (``*``).

A set never holds more than :data:`MAX_ARNS` entries, by construction: the add that would make it
:data:`MAX_ARNS` + 1 generalises it one path level at a time (``arn:aws:s3:::b/data/2026/x.csv`` ->
``arn:aws:s3:::b/data/2026/*`` -> ``arn:aws:s3:::b/data/*`` -> ``arn:aws:s3:::b/*``), every ARN to
the same level, and the level is remembered so later ARNs are generalised alike before they are
looked up; when even one path level is too many, the set becomes ``*`` and stays so. The ingestion
workers record each log file's calls into such sets as they read records, so no list of distinct
ARNs ever exists, in a worker or in the parent: memory is bounded by keys x calls x
:data:`MAX_ARNS`, whatever the number of objects or events. The result does not depend on the order
in which ARNs arrive (the level reached is the deepest one at which everything seen fits), so
files can be read and merged in any order.

This module imports nothing heavy: the ingestion workers use it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from migrate.cloudtrail.actions import iam_action
from migrate.cloudtrail.arns import (
    KIND_S3_BUCKET,
    KIND_S3_OBJECT,
    PARTITIONS,
    accepted_kinds,
    arn_kind,
    partition_of,
)

ANY = "*"
MAX_ARNS = 20
# Error codes that mean "the key was not allowed to do this": those calls' resources are not
# evidence of need (and iam_policy does not grant actions that only ever failed so).
DENIED_CODES = frozenset(
    {
        "AccessDenied",
        "AccessDeniedException",
        "UnauthorizedOperation",
        "Client.UnauthorizedOperation",
        "UnauthorizedAccess",
        "AuthorizationError",
    }
)

CallKey = tuple[str, str, str]
"""``(access key id, eventSource, eventName)``."""

# How a call's records name their resources (decided once per call, see call_mode).
MODE_NONE = 0  # the action takes no resource we classify: the call is "*"
MODE_S3_OBJECT = 1  # bit: S3 object ARN from bucketName + key
MODE_S3_BUCKET = 2  # bit: S3 bucket ARN from bucketName
MODE_OTHER = 4  # requestParameters of the common services, else resources[]

S3_SOURCE = "s3.amazonaws.com"


@dataclass(slots=True)
class ArnSet:
    """ARNs (or wildcards, or ``*``) -> the last day (``YYYY-MM-DD``) each was seen.

    ``level`` is the path depth the set was generalised to (None: exact ARNs; 0: ``*``). Within
    one log file the day is left empty (``""``) and filled in once per call when the file is done.
    """

    arns: dict[str, str] = field(default_factory=dict)
    level: int | None = None
    # IAM actions the call's request parameters added (``s3:PutObjectAcl`` for an ACL header),
    # each with the last day seen, like the ARNs; never bounded (a handful per call at most).
    also: dict[str, str] = field(default_factory=dict)

    def add(self, arn: str, day: str = "") -> None:
        """Add one ARN seen on ``day``, generalised to the set's level; never exceeds the bound."""
        level = self.level
        if level is not None and arn != ANY:  # truncate(arn, level), inlined: once per record
            if level == 0:
                arn = ANY
            else:
                parts = arn.split("/", level)
                if len(parts) > level and parts[-1] != ANY:
                    arn = arn[: len(arn) - len(parts[-1])] + ANY
        arns = self.arns
        old = arns.get(arn)
        if old is None:
            arns[arn] = day
            if len(arns) > MAX_ARNS:
                bound(self)
        elif old < day:
            arns[arn] = day

    @property
    def is_any(self) -> bool:
        """True once the set is ``*`` (level 0): no later ARN can change it, only its day."""
        return self.level == 0

    def window(self, since_day: str | None = None) -> list[str]:
        """The ARNs seen on or after ``since_day``, sorted."""
        return sorted(a for a, day in self.arns.items() if not since_day or day >= since_day)

    def also_window(self, since_day: str | None = None) -> list[str]:
        """The added actions seen on or after ``since_day``, sorted."""
        return sorted(a for a, day in self.also.items() if not since_day or day >= since_day)

    def to_json(self) -> dict[str, Any]:
        """The stored form."""
        return {
            "arns": dict(sorted(self.arns.items())),
            "level": self.level,
            "also": dict(sorted(self.also.items())) or None,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ArnSet:
        """Inverse of :meth:`to_json`."""
        level = data.get("level")
        return cls(
            dict(data.get("arns") or {}),
            None if level is None else int(level),
            dict(data.get("also") or {}),
        )


def truncate(arn: str, level: int) -> str:
    """``arn`` generalised to keep its first ``level`` path separators (``/``); 0 is ``*``.

    ARNs with fewer separators than ``level`` are kept; ``b/data/x`` at level 2 is ``b/data/*``.
    Generalising is idempotent and composes (level 3, then 2, equals level 2).
    """
    if level <= 0 or arn == ANY:
        return ANY
    parts = arn.split("/", level)
    if len(parts) <= level:
        return arn
    rest = parts[-1]
    if rest == ANY:
        return arn
    return arn[: len(arn) - len(rest)] + ANY


def _truncate_all(arns: Mapping[str, str], level: int) -> dict[str, str]:
    out: dict[str, str] = {}
    get = out.get
    for arn, day in arns.items():
        if arn != ANY:
            parts = arn.split("/", level)
            if len(parts) > level and parts[-1] != ANY:
                arn = arn[: len(arn) - len(parts[-1])] + ANY
        old = get(arn)
        if old is None or old < day:  # days may be "" (inside one file), so compare to None
            out[arn] = day
    return out


def bound(arn_set: ArnSet, cap: int = MAX_ARNS) -> ArnSet:
    """Generalise ``arn_set`` in place, one path level at a time, until it has <= ``cap`` ARNs.

    Sets built with :meth:`ArnSet.add` are bounded already; this is for sets built otherwise
    (stored rows, tests) and for merges with a smaller ``cap``.
    """
    arns = arn_set.arns
    if len(arns) <= cap:
        return arn_set
    level = max(a.count("/") for a in arns)
    if arn_set.level is not None:
        level = min(level, arn_set.level)
    while len(arns) > cap and level > 0:
        arns = _truncate_all(arns, level)
        if len(arns) > cap:
            level -= 1
    if len(arns) > cap or level <= 0:
        arns, level = {ANY: max(arns.values())}, 0
    arn_set.arns, arn_set.level = arns, level
    return arn_set


def _min_level(a: int | None, b: int | None) -> int | None:
    if a is None:
        return b
    return a if b is None else min(a, b)


def merge_sets(into: ArnSet, other: ArnSet, cap: int = MAX_ARNS) -> None:
    """Add ``other`` into ``into`` (both end at the lower level), then :func:`bound`."""
    if other.also:
        also = into.also
        for action, day in other.also.items():
            old = also.get(action)
            if old is None or old < day:
                also[action] = day
    if other.level == into.level:
        # The common case (files of one workload generalise alike): ``other``'s ARNs are at
        # ``into``'s level already, so only days and new entries need looking at. At most
        # 2 x MAX_ARNS entries exist until the bound below.
        arns = into.arns
        for arn, day in other.arns.items():
            old = arns.get(arn)
            if old is None or old < day:
                arns[arn] = day
        if len(arns) > cap:
            bound(into, cap)
        return
    level = _min_level(into.level, other.level)
    if level is not None and level != into.level and into.arns:
        into.arns = _truncate_all(into.arns, level) if level > 0 else {ANY: max(into.arns.values())}
    into.level = level
    for arn, day in other.arns.items():
        into.add(arn, day)
    bound(into, cap)


def merge_resources(
    into: dict[CallKey, ArnSet], other: Mapping[CallKey, ArnSet], cap: int = MAX_ARNS
) -> None:
    """Merge per-call ARN sets (``other`` is left alone)."""
    for call, arn_set in other.items():
        mine = into.get(call)
        if mine is None:
            into[call] = ArnSet(dict(arn_set.arns), arn_set.level, dict(arn_set.also))
        else:
            merge_sets(mine, arn_set, cap)


# -- where a record names its resources --------------------------------------------------------


@functools.cache
def call_action(event_source: str, event_name: str) -> str | None:
    """:func:`iam_action`, remembered (the workers ask once per record of some calls)."""
    return iam_action(event_source, event_name)


@functools.cache
def call_mode(event_source: str, event_name: str) -> int:
    """How records of this call name the resources its IAM action accepts (a MODE_* value)."""
    action = iam_action(event_source, event_name)
    if action is None:
        return MODE_NONE
    kinds = accepted_kinds(action)
    if not kinds:
        return MODE_NONE
    if event_source == S3_SOURCE and kinds <= {KIND_S3_OBJECT, KIND_S3_BUCKET}:
        return (MODE_S3_OBJECT if KIND_S3_OBJECT in kinds else 0) | (
            MODE_S3_BUCKET if KIND_S3_BUCKET in kinds else 0
        )
    return MODE_OTHER


def s3_arn_prefix(region: str) -> str:
    """``arn:aws:s3:::`` in the partition of ``region``."""
    return f"arn:{partition_of(region)}:s3:::"


def _queue_arn(url: str, partition: str, region: str) -> str | None:
    # https://sqs.us-east-1.amazonaws.com/123456789012/name (or the legacy region.queue host)
    parts = url.rstrip("/").split("/")
    if len(parts) < 5 or not parts[-2].isdigit():
        return None
    host = parts[2].split(".")
    if host[0] == "sqs" and len(host) > 2:
        region = host[1]
    elif len(host) > 1 and host[1] == "queue":
        region = host[0]
    return f"arn:{partition}:sqs:{region}:{parts[-2]}:{parts[-1]}"


def account_of(principal_arn: Any) -> str | None:
    """The account id in a principal ARN (``arn:aws:iam::123456789012:user/x``), or None.

    Resources named without an ARN (a secret's name, a table's name) are the caller's own.
    """
    if not isinstance(principal_arn, str):
        return None
    parts = principal_arn.split(":", 5)
    return parts[4] if len(parts) == 6 and parts[4].isdigit() else None


def params_arns(
    source: str, get: Callable[[str], Any], region: str | None, account: str | None
) -> list[str]:
    """ARNs named by the request parameters of a common service's call (``get(name)``)."""
    if not region or not account:
        return []
    partition = partition_of(region)
    base = f"arn:{partition}:"
    if source == "secretsmanager.amazonaws.com":
        secret = get("secretId")
        if isinstance(secret, str) and secret:
            if secret.startswith("arn:"):
                return [secret]
            # Secret ARNs end in a random 6-character suffix; AWS's own advice is "-??????".
            return [f"{base}secretsmanager:{region}:{account}:secret:{secret}-??????"]
    elif source == "dynamodb.amazonaws.com":
        table = get("tableName")
        if isinstance(table, str) and table:
            arn = (
                table
                if table.startswith("arn:")
                else f"{base}dynamodb:{region}:{account}:table/{table}"
            )
            index = get("indexName")
            return [f"{arn}/index/{index}"] if isinstance(index, str) and index else [arn]
    elif source == "sqs.amazonaws.com":
        url = get("queueUrl")
        if isinstance(url, str) and url:
            queue = _queue_arn(url, partition, region)
            return [queue] if queue else []
    elif source == "sns.amazonaws.com":
        topic = get("topicArn")
        if isinstance(topic, str) and topic.startswith("arn:"):
            return [topic]
    elif source == "kms.amazonaws.com":
        key = get("keyId")
        if isinstance(key, str) and key.startswith("arn:"):
            return [key]
    elif source == "rds.amazonaws.com":
        db = get("dBInstanceIdentifier")
        if isinstance(db, str) and db:
            # RDS stores identifiers in lower case, and its ARNs use them so.
            return [
                db if db.startswith("arn:") else f"{base}rds:{region}:{account}:db:{db.lower()}"
            ]
    return []


def listed_arns(resources: Iterable[Any], get: Callable[[Any, str], Any]) -> list[str]:
    """The ARNs of a ``resources[]`` array (``ARNPrefix`` entries become ``prefix*``)."""
    out = []
    for item in resources:
        arn = get(item, "ARN")
        if isinstance(arn, str) and arn:
            out.append(arn)
            continue
        prefix = get(item, "ARNPrefix")
        if isinstance(prefix, str) and prefix:
            out.append(prefix + ANY)
    return out


@functools.cache
def _service_prefixes(action: str) -> tuple[str, ...]:
    services = {kind.split(":", 1)[0] for kind in accepted_kinds(action)}
    return tuple(f"arn:{p}:{s}:" for p in PARTITIONS for s in sorted(services))


def keep_accepted(action: str | None, arns: Iterable[str]) -> list[str]:
    """The ARNs whose kind ``action`` accepts (``*`` is kept: it is never wrong)."""
    if action is None:
        return []
    kinds = accepted_kinds(action)
    prefixes = _service_prefixes(action)  # a cheap first cut before classifying
    return [a for a in arns if a == ANY or (a.startswith(prefixes) and arn_kind(a) in kinds)]
