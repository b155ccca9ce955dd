"""The Python API of CloudTrail usage: ingest a source, then build and store the per-key report.

:func:`usage` is what ``migrate trail usage`` calls; the ``cloudtrail.usage`` step uses the same
pieces (:func:`resolve_source`, :func:`ingest_source`, :func:`build_report`) inside its act.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from migrate.aws.errors import describe_aws_failure, error_code
from migrate.aws.session import AwsSession
from migrate.cloudtrail import athena as athena_sql
from migrate.cloudtrail import persist
from migrate.cloudtrail.attribution import attribute_ips, classify_ip, iam_keys
from migrate.cloudtrail.ingest import IngestStats, ingest
from migrate.cloudtrail.lookup import LOOKUP_MAX_DAYS, RateLimiter, lookup_events
from migrate.cloudtrail.model import KIND_KEY, KeyStatus, PrincipalUsage, UsageReport, fold
from migrate.cloudtrail.parse import DIMENSIONS, Combo, ComboValue, merge_combos
from migrate.cloudtrail.resources import ArnSet, CallKey, account_of, merge_resources
from migrate.cloudtrail.sources import (
    KIND_ATHENA,
    KIND_AUTO,
    KIND_DIR,
    KIND_LOOKUP,
    KIND_S3,
    LogFile,
    Source,
    list_dir_logs,
    list_s3_logs,
    parse_source,
    trail_prefixes,
)
from migrate.errors import BadInputError, StepFailed
from migrate.store import Store
from migrate.util import parse_duration

_I_REGION = DIMENSIONS.index("region")
_I_IP = DIMENSIONS.index("source_ip")


@dataclass(frozen=True)
class AthenaOptions:
    """Where Athena keeps the table and writes results."""

    database: str = "default"
    table: str | None = None  # default: cloudtrail_logs_<account>
    output: str | None = None  # s3://bucket/prefix/ for results (unless the workgroup sets one)
    workgroup: str | None = None
    poll_s: float = 2.0
    timeout_s: float = 1800.0


def now_utc() -> datetime:
    """Aware UTC now (one place, so tests and the step agree)."""
    return datetime.now(UTC)


def window_start(since: str | float, now: datetime) -> date:
    """The first day of the window ``since`` (``90d``, ``2w``, seconds) before ``now``."""
    seconds = parse_duration(since) if isinstance(since, str) else float(since)
    return (now - timedelta(seconds=seconds)).date()


def resolve_source(aws: AwsSession, source: Source, region: str | None = None) -> Source:
    """``auto`` -> the first trail's bucket (or ``lookup`` without one); ``athena`` -> its bucket."""
    if source.kind not in (KIND_AUTO, KIND_ATHENA) or source.bucket:
        return source
    trails = aws.client("cloudtrail", region).describe_trails(includeShadowTrails=True)
    for trail in sorted(
        trails.get("trailList", []), key=lambda t: not t.get("IsOrganizationTrail")
    ):
        bucket = trail.get("S3BucketName")
        if bucket:
            kind = KIND_ATHENA if source.kind == KIND_ATHENA else KIND_S3
            return Source(kind=kind, bucket=bucket, prefix=trail.get("S3KeyPrefix") or "")
    if source.kind == KIND_ATHENA:
        raise BadInputError(
            "--source athena needs the trail's bucket, and no trail with an S3 bucket was found. "
            "Name it: --source athena:s3://BUCKET[/PREFIX]."
        )
    return Source(kind=KIND_LOOKUP)


def dataset_name(source: Source, account: str) -> str:
    """Where a source's usage is kept (LookupEvents per account)."""
    return f"lookup:{account}" if source.kind == KIND_LOOKUP else source.dataset


def list_files(
    aws: AwsSession,
    source: Source,
    since: date,
    until: date | None = None,
    regions: list[str] | None = None,
    accounts: list[str] | None = None,
) -> Iterator[list[LogFile]]:
    """Pages of log files of an S3 or directory source in the window (read-only)."""
    if source.kind == KIND_S3:
        s3 = aws.client("s3")
        yield from list_s3_logs(s3, source, since, until, regions, accounts)
    elif source.kind == KIND_DIR:
        assert source.path is not None
        yield from list_dir_logs(source.path, since, until, regions)
    else:
        raise ValueError(f"{source.kind} sources have no files")


def _s3_fetcher(aws: AwsSession, bucket: str) -> Callable[[LogFile], bytes]:
    s3 = aws.client("s3")

    def fetch(log: LogFile) -> bytes:
        try:
            return bytes(s3.get_object(Bucket=bucket, Key=log.name)["Body"].read())
        except Exception as exc:
            if error_code(exc) in ("NoSuchKey", "404"):
                return b""  # deleted since listing (lifecycle): counted as unreadable
            raise

    return fetch


def ingest_source(
    store: Store,
    aws: AwsSession,
    source: Source,
    dataset: str,
    since: date,
    *,
    until: date | None = None,
    regions: list[str] | None = None,
    accounts: list[str] | None = None,
    workers: int | None = None,
    run_id: str | None = None,
    progress: Any = None,
    on_batch: Callable[[IngestStats], None] | None = None,
    limiter: RateLimiter | None = None,
    athena: AthenaOptions | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> IngestStats:
    """Read what is new in ``source`` into ``dataset`` (files once; lookup/Athena: the window)."""
    if source.kind in (KIND_S3, KIND_DIR):
        pages = list_files(aws, source, since, until, regions, accounts)
        fetch = (
            _s3_fetcher(aws, source.bucket) if source.kind == KIND_S3 and source.bucket else None
        )
        return ingest(
            store,
            dataset,
            pages,
            fetch=fetch,
            local_root=source.path,
            workers=workers,
            run_id=run_id,
            progress=progress,
            on_batch=on_batch,
        )
    stats = IngestStats()
    if source.kind == KIND_LOOKUP:
        earliest = (now_utc() - timedelta(days=LOOKUP_MAX_DAYS)).date()
        since = max(since, earliest)
        start = datetime(since.year, since.month, since.day, tzinfo=UTC)
        combos: dict[Combo, ComboValue] = {}
        resources: dict[CallKey, ArnSet] = {}
        for region in regions or [aws.region or "us-east-1"]:
            result = lookup_events(
                aws.client("cloudtrail", region),
                start,
                limiter=limiter or RateLimiter(),
                progress=progress,
                name=f"lookup:{region}",
            )
            stats.add(result)
            merge_combos(combos, result.combos)
            merge_resources(resources, result.resources)
        persist.replace_window(store, dataset, f"{since:%Y-%m-%d}", combos, resources)
        return stats
    if source.kind == KIND_ATHENA:
        combos = run_athena(aws, source, since, until, regions, accounts, athena, sleep)
        stats.counters["aggregated"] = sum(v[0] for v in combos.values())
        persist.replace_window(store, dataset, f"{since:%Y-%m-%d}", combos)
        return stats
    raise ValueError(source.kind)


def athena_queries(
    aws: AwsSession,
    source: Source,
    since: date,
    until: date | None,
    regions: list[str] | None,
    accounts: list[str] | None,
    options: AthenaOptions,
) -> list[str]:
    """The statements Athena runs: one CREATE TABLE and one aggregation per account."""
    assert source.bucket is not None
    found = trail_prefixes(aws.client("s3"), source, regions, accounts)
    by_account: dict[str, list[str]] = {}
    for account, region, _prefix in found:
        by_account.setdefault(account, []).append(region)
    if not by_account:
        raise StepFailed(
            f"no CloudTrail logs under s3://{source.bucket}/{source.logs_root} for Athena to "
            "read. Check the bucket and prefix (--source athena:s3://BUCKET/PREFIX) and --region."
        )
    statements = []
    for account, account_regions in sorted(by_account.items()):
        table = options.table or f"cloudtrail_logs_{account}"
        if len(by_account) > 1 and options.table:
            table = f"{options.table}_{account}"
        statements.append(
            athena_sql.table_ddl(
                table, source.bucket, source.logs_root, account, sorted(account_regions), since
            )
        )
        statements.append(athena_sql.aggregation_sql(table, since, until, regions))
    return statements


def run_athena(
    aws: AwsSession,
    source: Source,
    since: date,
    until: date | None,
    regions: list[str] | None,
    accounts: list[str] | None,
    options: AthenaOptions | None,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[Combo, ComboValue]:
    """Create the tables and run the aggregation in Athena; return the combos (polls inline)."""
    options = options or AthenaOptions()
    client = aws.client("athena")
    combos: dict[Combo, ComboValue] = {}
    for sql in athena_queries(aws, source, since, until, regions, accounts, options):
        query_id = athena_sql.start_query(
            client, sql, options.database, options.output, options.workgroup
        )
        waited = 0.0
        while True:
            state, reason = athena_sql.query_state(client, query_id)
            if state == "SUCCEEDED":
                break
            if state in ("FAILED", "CANCELLED"):
                raise StepFailed(
                    f"Athena query {query_id} {state.lower()}: {reason}. Check the output "
                    "location (--athena-output), the workgroup and the Glue database, then retry."
                )
            if waited >= options.timeout_s:
                raise StepFailed(f"Athena query {query_id} still {state} after {waited:.0f}s.")
            sleep(options.poll_s)
            waited += options.poll_s
        if sql.startswith("SELECT"):
            merge_combos(combos, athena_sql.read_combos(client, query_id))
    return combos


# Error codes that mean "these credentials may not ask this": enrichment is skipped, not fatal.
_REFUSED = frozenset(
    {
        "AccessDenied",
        "AccessDeniedException",
        "UnauthorizedOperation",
        "InvalidClientTokenId",
        "ExpiredToken",
        "ExpiredTokenException",
        "SignatureDoesNotMatch",
    }
)
NO_CREDENTIALS = "no AWS credentials were found"


def has_credentials(aws: AwsSession) -> bool:
    """True if the session's profile/environment yields AWS credentials (no request is sent)."""
    session = boto3.session.Session(profile_name=aws.profile, region_name=aws.region)
    return session.get_credentials() is not None


def enrichment_obstacle(aws: AwsSession, keys: Mapping[str, PrincipalUsage]) -> str | None:
    """Why IAM enrichment and IP attribution cannot be trusted with these credentials, or None.

    No credentials (a folder of downloaded logs analysed offline); credentials that STS rejects;
    or credentials of an account that owns none of the logs' keys (an ``s3://`` source read from
    a log-archive account), whose IAM and EC2 would describe the wrong account.
    """
    if not has_credentials(aws):
        return NO_CREDENTIALS
    try:
        caller = str(aws.client("sts").get_caller_identity()["Account"])
    except NoCredentialsError:
        return NO_CREDENTIALS
    except ClientError as exc:
        if error_code(exc) not in _REFUSED:
            raise
        return f"STS refused the AWS credentials ({error_code(exc)})"
    owners = {a for a in (account_of(u.owner_arn) for u in keys.values()) if a is not None}
    if owners and caller not in owners:
        return f"the AWS credentials are account {caller}'s, the logs' keys belong to " + ", ".join(
            sorted(owners)
        )
    return None


def build_report(
    store: Store,
    aws: AwsSession,
    source: Source,
    dataset: str,
    since: date | None,
    *,
    ingest_stats: IngestStats | None = None,
    attribute: bool = True,
    with_iam: bool = True,
    now: datetime | None = None,
) -> UsageReport:
    """Fold the dataset's stored combos into the report; add IAM key status and IP attribution."""
    ips_by_region: dict[str, set[str]] = {}

    def rows() -> Iterator[tuple[Combo, ComboValue]]:
        for combo, value in persist.load_combos(
            store, dataset, f"{since:%Y-%m-%d}" if since else None
        ):
            ip = combo[_I_IP]
            if ip:
                ips_by_region.setdefault(combo[_I_REGION] or aws.region or "us-east-1", set()).add(
                    ip
                )
            yield combo, value

    since_day = f"{since:%Y-%m-%d}" if since else None
    stored = persist.load_resources(store, dataset)
    resources = {call: arn_set.window(since_day) for call, arn_set in stored.items()}
    also = {call: arn_set.also_window(since_day) for call, arn_set in stored.items()}
    keys, sessions = fold(rows(), resources=resources, also=also)
    skipped: str | None = None
    if with_iam or attribute:
        skipped = enrichment_obstacle(aws, keys)
    if with_iam and skipped is None:
        try:
            statuses = iam_keys(aws.client("iam"))
        except ClientError as exc:
            if error_code(exc) not in _REFUSED:
                raise
            skipped = f"IAM refused listing the account's access keys ({error_code(exc)})"
        else:
            for key_id, status in statuses.items():
                usage = keys.get(key_id)
                if usage is None:
                    usage = keys[key_id] = PrincipalUsage(
                        principal=key_id, kind=KIND_KEY, owner=status.user_name
                    )
                usage.iam = status
            for usage in keys.values():
                if usage.iam is None:
                    usage.iam = KeyStatus(user_name=usage.owner, in_account=False)
    ips = (
        attribute_ips(lambda r: aws.client("ec2", r), ips_by_region)
        if attribute and skipped is None
        else {}
    )
    stats = persist.file_stats(store, dataset)
    if ingest_stats is not None:
        stats["this_run"] = {
            "files_listed": ingest_stats.files_listed,
            "files_already_ingested": ingest_stats.files_skipped,
            "files_read": ingest_stats.files_read,
            "bytes_read": ingest_stats.bytes_read,
            "counters": dict(ingest_stats.counters),
            "unreadable": list(ingest_stats.unreadable),
        }
        if source.kind in (KIND_LOOKUP, KIND_ATHENA):
            stats["counters"] = dict(ingest_stats.counters)
    stats["unmapped_calls"] = sorted(
        {
            f"{c.event_source} {c.event_name}"
            for u in (*keys.values(), *sessions.values())
            for c in u.actions
            if c.iam_action is None
        }
    )
    moment = now or now_utc()
    return UsageReport(
        dataset=dataset,
        source=source.kind,
        since=f"{since:%Y-%m-%d}" if since else None,
        until=None,
        generated_at=moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
        keys=sorted(keys.values(), key=lambda u: (u.owner or "~", u.principal)),
        sessions=sorted(sessions.values(), key=lambda u: u.principal),
        ips=ips,
        stats=stats,
        enriched=with_iam and skipped is None,
        not_enriched_reason=skipped or (None if with_iam else "IAM enrichment not asked for"),
    )


def usage(
    store: Store,
    aws: AwsSession,
    source: str | None = None,
    since: str = "90d",
    regions: list[str] | None = None,
    *,
    accounts: list[str] | None = None,
    workers: int | None = None,
    athena: AthenaOptions | None = None,
    attribute: bool = True,
    progress: Any = None,
    limiter: RateLimiter | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> UsageReport:
    """Ingest what is new in ``source`` and return (and store) the per-key usage report.

    ``source``: ``s3://bucket/prefix``, a directory, ``lookup``, ``athena[:s3://bucket/prefix]``
    or None (the account's trail bucket, else ``lookup``). ``since``: the window (``90d``).
    The caller owns ``store`` (opens and closes it).
    """
    try:
        return _usage(
            store,
            aws,
            source,
            since,
            regions,
            accounts,
            workers,
            athena,
            attribute,
            progress,
            limiter,
            sleep,
        )
    except (ClientError, BotoCoreError) as exc:
        raise describe_aws_failure(exc) from None


def _usage(
    store: Store,
    aws: AwsSession,
    source: str | None,
    since: str,
    regions: list[str] | None,
    accounts: list[str] | None,
    workers: int | None,
    athena: AthenaOptions | None,
    attribute: bool,
    progress: Any,
    limiter: RateLimiter | None,
    sleep: Callable[[float], None],
) -> UsageReport:
    """The body of :func:`usage` (errors are mapped there)."""
    parsed = resolve_source(aws, parse_source(source))
    account = ""
    if parsed.kind == KIND_LOOKUP:
        account = str(aws.client("sts").get_caller_identity()["Account"])
    dataset = dataset_name(parsed, account)
    start = window_start(since, now_utc())
    stats = ingest_source(
        store,
        aws,
        parsed,
        dataset,
        start,
        regions=regions,
        accounts=accounts,
        workers=workers,
        progress=progress,
        limiter=limiter,
        athena=athena,
        sleep=sleep,
    )
    report = build_report(
        store, aws, parsed, dataset, start, ingest_stats=stats, attribute=attribute
    )
    persist.save_report(store, report)
    return report


__all__ = [
    "AthenaOptions",
    "build_report",
    "classify_ip",
    "ingest_source",
    "resolve_source",
    "usage",
]
