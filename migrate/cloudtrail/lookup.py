"""CloudTrail ``LookupEvents``: for accounts without a trail bucket.

LookupEvents returns the last 90 days of *management* events only (no S3 object or Lambda invoke
data events), 50 per page, and AWS allows 2 requests per second per account and region. We pace
every call (:class:`RateLimiter`), follow ``NextToken`` to the end, and aggregate each event's
``CloudTrailEvent`` JSON with the same code as the log files.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from migrate.cloudtrail.parse import FileResult, aggregate_records

LOOKUP_TPS = 2.0
LOOKUP_PAGE = 50
LOOKUP_MAX_DAYS = 90


class RateLimiter:
    """At most ``rate`` calls per second (spaced evenly); the clock and sleep are injectable."""

    def __init__(
        self,
        rate: float = LOOKUP_TPS,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.interval = 1.0 / rate
        self.clock = clock
        self.sleep = sleep
        self._next: float | None = None

    def wait(self) -> None:
        """Block until the next call is allowed."""
        now = self.clock()
        if self._next is not None and now < self._next:
            self.sleep(self._next - now)
            now = self._next
        self._next = now + self.interval


def lookup_events(
    cloudtrail: Any,
    since: datetime,
    until: datetime | None = None,
    *,
    limiter: RateLimiter | None = None,
    progress: Any = None,
    name: str = "lookup",
) -> FileResult:
    """Aggregate every management event of one region between ``since`` and ``until``."""
    limiter = limiter or RateLimiter()
    result = FileResult(name=name)
    params: dict[str, Any] = {"StartTime": since, "MaxResults": LOOKUP_PAGE}
    if until is not None:
        params["EndTime"] = until
    while True:
        limiter.wait()
        page = cloudtrail.lookup_events(**params)
        records: list[Any] = []
        for event in page.get("Events", []):
            raw = event.get("CloudTrailEvent")
            try:
                records.append(json.loads(raw) if isinstance(raw, str) else None)
            except ValueError:
                records.append(None)  # counted as a bad record
        aggregate_records(records, result)
        if progress is not None:
            progress.update(len(records))
        token = page.get("NextToken")
        if not token:
            return result
        params["NextToken"] = token
