"""Object facts of a bucket: how many objects and bytes are in which encryption state.

One builder, :class:`ObjectCounts`, makes the ``objects`` facts of a bucket, whether they come
from the listing (:func:`scan_listing`) or from an S3 Inventory report
(:mod:`migrate.steps.s3.inventory`); the plan's estimates and its risks read only these keys.
The listing helpers used by the run and verification (:func:`list_pages`, :func:`prefetched`)
live here too.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from botocore.exceptions import ClientError

from migrate.steps.s3 import objects as so
from migrate.steps.s3.worker import head_state


class ObjectCounts:
    """Counts of current objects by state, bytes and storage class, and the multipart load.

    ``add`` takes each listed (or reported) object; ``state`` is None for an object whose
    encryption was not looked at (a listing beyond the HEAD sample): it counts in the totals,
    not in ``by_state``, and ``scanned`` says how many were looked at.
    """

    def __init__(self, *, multipart_threshold: int, part_size: int) -> None:
        self.multipart_threshold = multipart_threshold
        self.part_size = part_size
        self.by_state: Counter[str] = Counter()
        self.bytes_by_state: Counter[str] = Counter()
        self.by_class: Counter[str] = Counter()
        self.count = self.bytes = self.over = self.parts = self.archived = self.scanned = 0
        self.pages = 0

    def add(self, size: int, storage_class: str | None, state: str | None) -> None:
        """Count one object (``state`` None: not classified)."""
        self.count += 1
        self.bytes += size
        self.by_class[storage_class or "STANDARD"] += 1
        if size > self.multipart_threshold:
            self.over += 1
            self.parts += len(so.part_ranges(size, self.part_size))
        if state is not None:
            self.classified(size, state)
        if state == so.ARCHIVED or (state is None and storage_class in so.ARCHIVE_CLASSES):
            self.archived += 1

    def classified(self, size: int, state: str) -> None:
        """Count the encryption state of an object already counted by :meth:`add`."""
        self.scanned += 1
        self.by_state[state] += 1
        self.bytes_by_state[state] += size

    def to_facts(self) -> dict[str, Any]:
        """The ``objects`` facts of a bucket."""
        return {
            "count": self.count,
            "bytes": self.bytes,
            "scanned": self.scanned,
            "by_state": dict(sorted(self.by_state.items())),
            "bytes_by_state": dict(sorted(self.bytes_by_state.items())),
            "by_storage_class": dict(sorted(self.by_class.items())),
            "over_threshold": self.over,
            "multipart_parts": self.parts,
            "archived": self.archived,
            "list_pages": self.pages or max(1, math.ceil(self.count / 1000)),
        }


def list_pages(s3: Any, bucket: str, start_after: str, page_size: int) -> Iterator[list[Any]]:
    """The listing from ``start_after`` on, one page (= one checkpointed batch) at a time."""
    kwargs: dict[str, Any] = {"Bucket": bucket, "PaginationConfig": {"PageSize": page_size}}
    if start_after:
        kwargs["StartAfter"] = start_after
    for page in s3.get_paginator("list_objects_v2").paginate(**kwargs):
        contents = list(page.get("Contents", []))
        if contents:
            yield contents


def prefetched(pages: Iterator[list[Any]]) -> Iterator[list[Any]]:
    """Fetch the next listing page while the current one is being worked (one page ahead)."""
    with ThreadPoolExecutor(max_workers=1) as lister:
        pending = lister.submit(next, pages, None)
        while True:
            page = pending.result()
            if page is None:
                return
            pending = lister.submit(next, pages, None)
            yield page


def scan_listing(
    s3: Any,
    bucket: str,
    target_arn: str | None,
    *,
    head_limit: int,
    head_first: int | None = None,
    threads: int,
    multipart_threshold: int,
    part_size: int,
) -> dict[str, Any]:
    """Stream the whole listing; HEAD a uniform sample of ``head_limit`` objects (all of them
    in a smaller bucket) to learn their encryption.

    The sample is drawn over the whole listing (reservoir sampling, seeded by the bucket name
    so a re-plan draws the same keys), never the first keys in listing order: old prefixes
    listed first are often the unencrypted ones, or the only encrypted ones. Memory stays at
    ``head_limit`` listed entries whatever the bucket's size.
    """
    counts = ObjectCounts(multipart_threshold=multipart_threshold, part_size=part_size)
    reservoir: list[dict[str, Any]] = []
    draw = random.Random(bucket)
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        counts.pages += 1
        for obj in page.get("Contents", []):
            counts.add(int(obj.get("Size", 0)), obj.get("StorageClass"), None)
            if len(reservoir) < head_limit:
                reservoir.append(obj)
            elif head_limit:
                slot = draw.randrange(counts.count)
                if slot < head_limit:
                    reservoir[slot] = obj
    first = reservoir if head_first is None else reservoir[:head_first]
    with ThreadPoolExecutor(max_workers=threads) as pool:

        def classify(objs: list[dict[str, Any]]) -> None:
            states = pool.map(lambda o: head_state(s3, bucket, o, target_arn), objs)
            for obj, state in zip(objs, states, strict=True):
                counts.classified(int(obj.get("Size", 0)), state)

        classify(first)
        headed = counts.scanned - counts.by_state[so.ARCHIVED]
        if len(first) < len(reservoir) and headed == counts.by_state[so.DENIED]:
            # The first few all refused (or none was HEADed): the whole sample decides, as the
            # plan's did, whether the bucket refuses every read or only some of its objects.
            classify(reservoir[len(first) :])
    # Archived objects are known from the listing (no HEAD was tried for them).
    headed = counts.scanned - counts.by_state[so.ARCHIVED]
    if counts.by_state[so.DENIED] and counts.by_state[so.DENIED] == headed:
        # Every object refused: the bucket (a policy allowing only a VPC endpoint, an SCP),
        # not a few odd objects; the plan leaves it out with a warning, as a refused read.
        raise ClientError(
            {"Error": {"Code": "AccessDenied", "Message": "every sampled HEAD was refused"}},
            "HeadObject",
        )
    return counts.to_facts()
