"""Where CloudTrail log files come from: a trail's S3 bucket, or a local directory of the same files.

The S3 layout is ``<prefix>/AWSLogs/<account>/CloudTrail/<region>/YYYY/MM/DD/<file>.json.gz``; an
organisation trail adds ``o-xxxxxxxxxx/`` after ``AWSLogs/``. Digest files live beside the logs
under ``CloudTrail-Digest/`` (and Insights events under ``CloudTrail-Insight/``): they are never
listed. Listing starts at the first day of the window in each region (``StartAfter``), so a bucket
with years of logs costs only the pages of the window.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from migrate.errors import BadInputError

KIND_S3 = "s3"
KIND_DIR = "dir"
KIND_LOOKUP = "lookup"
KIND_ATHENA = "athena"
KIND_AUTO = "auto"

_DAY_IN_PATH = re.compile(r"/(\d{4})/(\d{2})/(\d{2})/")
_DAY_IN_NAME = re.compile(r"_(\d{4})(\d{2})(\d{2})T\d{4}Z_")
_REGION_IN_PATH = re.compile(r"/CloudTrail/([a-z0-9-]+)/\d{4}/")
_ACCOUNT = re.compile(r"^\d{12}$")
_ORG = re.compile(r"^o-[a-z0-9]{10,32}$")


@dataclass(frozen=True)
class LogFile:
    """One log file: its S3 key (or path relative to the directory), size and ETag."""

    name: str
    size: int = 0
    etag: str | None = None


@dataclass(frozen=True)
class Source:
    """A parsed ``--source``: ``s3://bucket/prefix``, a directory, ``lookup`` or ``athena``."""

    kind: str
    bucket: str | None = None
    prefix: str = ""
    path: str | None = None

    @property
    def dataset(self) -> str:
        """The name under which ingested files and usage are remembered in the state DB."""
        if self.kind == KIND_S3:
            return f"s3://{self.bucket}/{self.prefix}".rstrip("/")
        if self.kind == KIND_DIR:
            return f"dir:{self.path}"
        if self.kind == KIND_ATHENA:
            return f"athena:s3://{self.bucket}/{self.prefix}".rstrip("/")
        return self.kind

    @property
    def logs_root(self) -> str:
        """The key prefix that ends in ``AWSLogs/`` (S3 and Athena sources)."""
        prefix = self.prefix
        if "AWSLogs/" in prefix:
            return prefix[: prefix.index("AWSLogs/") + len("AWSLogs/")]
        return f"{prefix.rstrip('/')}/AWSLogs/" if prefix.strip("/") else "AWSLogs/"


def _split_s3(url: str) -> tuple[str, str]:
    rest = url[len("s3://") :]
    bucket, _, prefix = rest.partition("/")
    if not bucket:
        raise BadInputError(
            f"--source {url!r} names no bucket. Write it as s3://BUCKET or s3://BUCKET/PREFIX "
            "(the trail's S3 key prefix, before AWSLogs/)."
        )
    return bucket, prefix


def parse_source(text: str | None) -> Source:
    """``s3://bucket/prefix``, ``athena[:s3://bucket/prefix]``, ``lookup``, a directory, or auto."""
    value = (text or KIND_AUTO).strip()
    if value in (KIND_AUTO, KIND_LOOKUP, KIND_ATHENA):
        return Source(kind=value)
    if value.startswith("s3://"):
        bucket, prefix = _split_s3(value)
        return Source(kind=KIND_S3, bucket=bucket, prefix=prefix)
    if value.startswith("athena:s3://"):
        bucket, prefix = _split_s3(value[len("athena:") :])
        return Source(kind=KIND_ATHENA, bucket=bucket, prefix=prefix)
    path = Path(value).expanduser()
    if not path.is_dir():
        raise BadInputError(
            f"--source {value!r} is neither s3://BUCKET[/PREFIX], lookup, athena, nor an existing "
            "directory. Pass the trail bucket, a directory of downloaded .json.gz log files, "
            "`lookup` (CloudTrail LookupEvents, last 90 days) or `athena`."
        )
    return Source(kind=KIND_DIR, path=str(path.resolve()))


def _subdirs(s3: Any, bucket: str, prefix: str) -> list[str]:
    names: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(
        Bucket=bucket, Prefix=prefix, Delimiter="/"
    ):
        for entry in page.get("CommonPrefixes", []):
            names.append(entry["Prefix"][len(prefix) :].rstrip("/"))
    return names


def trail_prefixes(
    s3: Any,
    source: Source,
    regions: list[str] | None = None,
    accounts: list[str] | None = None,
) -> list[tuple[str, str, str]]:
    """``(account, region, key prefix)`` of every log folder under the source (org trails too)."""
    assert source.bucket is not None
    root = source.logs_root
    account_dirs: list[tuple[str, str]] = []
    for name in _subdirs(s3, source.bucket, root):
        if _ACCOUNT.match(name):
            account_dirs.append((name, f"{root}{name}/"))
        elif _ORG.match(name):
            for account in _subdirs(s3, source.bucket, f"{root}{name}/"):
                if _ACCOUNT.match(account):
                    account_dirs.append((account, f"{root}{name}/{account}/"))
    found: list[tuple[str, str, str]] = []
    for account, base in sorted(account_dirs):
        if accounts and account not in accounts:
            continue
        for region in _subdirs(s3, source.bucket, f"{base}CloudTrail/"):
            if regions and region not in regions:
                continue
            found.append((account, region, f"{base}CloudTrail/{region}/"))
    return found


def _is_log_name(name: str) -> bool:
    base = name.rsplit("/", 1)[-1]
    return (
        (base.endswith(".json.gz") or base.endswith(".json"))
        and "CloudTrail-Digest" not in name
        and "CloudTrail-Insight" not in name
    )


def list_s3_logs(
    s3: Any,
    source: Source,
    since: date,
    until: date | None = None,
    regions: list[str] | None = None,
    accounts: list[str] | None = None,
) -> Iterator[list[LogFile]]:
    """Pages of log files in the window ``[since, until]`` (days, UTC), digest files skipped."""
    assert source.bucket is not None
    paginator = s3.get_paginator("list_objects_v2")
    for _account, _region, prefix in trail_prefixes(s3, source, regions, accounts):
        start_after = f"{prefix}{since:%Y/%m/%d}/"
        stop = f"{prefix}{until:%Y/%m/%d}/\uffff" if until else None
        for page in paginator.paginate(Bucket=source.bucket, Prefix=prefix, StartAfter=start_after):
            files = []
            done = False
            for obj in page.get("Contents", []):
                key = obj["Key"]
                if stop is not None and key > stop:
                    done = True
                    break
                if _is_log_name(key):
                    files.append(
                        LogFile(key, int(obj.get("Size", 0)), str(obj.get("ETag", "")).strip('"'))
                    )
            if files:
                yield files
            if done:
                break


def _day_of(path: str) -> date | None:
    match = _DAY_IN_PATH.search(path) or _DAY_IN_NAME.search(path)
    if match is None:
        return None
    try:
        return date(int(match[1]), int(match[2]), int(match[3]))
    except ValueError:
        return None


def list_dir_logs(
    root: str,
    since: date | None = None,
    until: date | None = None,
    regions: list[str] | None = None,
    page_size: int = 1000,
) -> Iterator[list[LogFile]]:
    """Pages of log files under a local directory (recursively, sorted; digests skipped).

    Files whose path or name carries a date outside the window are skipped; so are files under a
    ``CloudTrail/<region>/`` folder of an unwanted region.
    """
    page: list[LogFile] = []
    base = Path(root)
    for dirpath, dirnames, filenames in os.walk(base):
        dirnames.sort()
        for filename in sorted(filenames):
            full = Path(dirpath) / filename
            name = full.relative_to(base).as_posix()
            if not _is_log_name(name):
                continue
            day = _day_of("/" + name)
            if day is not None and (
                (since is not None and day < since) or (until is not None and day > until)
            ):
                continue
            region = _REGION_IN_PATH.search("/" + name)
            if regions and region is not None and region[1] not in regions:
                continue
            try:
                size = full.stat().st_size
            except OSError:
                size = 0
            page.append(LogFile(name, size))
            if len(page) >= page_size:
                yield page
                page = []
    if page:
        yield page
