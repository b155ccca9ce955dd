"""Reading many log files fast: downloads in threads, gunzip + parse + aggregate in processes.

The pipeline is streaming with bounded queues everywhere: listing pages feed a window of
downloads (S3, I/O-bound threads), downloads are grouped into tasks of a few MB, and at most a few
tasks per worker process are in flight. Each worker returns one summary per task (the task's combos
and bounded per-call ARN sets merged, plus each file's counters), never records, so the parent's
memory is bounded by the number of distinct combos and keys x calls x MAX_ARNS, and its merge work
by the number of tasks, not files. Every ``batch_files`` files, the batch's file list, combos and ARN sets are
committed together (see :mod:`persist`).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import sys
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from migrate.cloudtrail import persist
from migrate.cloudtrail.parse import (
    COUNTERS,
    Combo,
    ComboValue,
    FileResult,
    merge_combos,
    parse_task,
)
from migrate.cloudtrail.resources import ArnSet, CallKey, merge_resources
from migrate.cloudtrail.sources import LogFile
from migrate.store import Store

T = TypeVar("T")
R = TypeVar("R")

TASK_BYTES = 4 * 1024 * 1024  # compressed bytes per worker task: amortises IPC, keeps memory low
TASK_FILES = 64
INLINE_BELOW_FILES = 16  # fewer new files than this: no worker processes (start-up costs more)


@dataclass
class IngestStats:
    """What an ingestion read: files (new, already known), bytes, record counters, bad files."""

    files_listed: int = 0
    files_skipped: int = 0
    files_read: int = 0
    bytes_read: int = 0
    counters: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNTERS, 0))
    unreadable: list[dict[str, str]] = field(default_factory=list)

    def add(self, result: FileResult) -> None:
        """Count one file's result."""
        self.files_read += 1
        self.bytes_read += result.size
        for name, value in result.counters.items():
            self.counters[name] = self.counters.get(name, 0) + value
        if result.error is not None and len(self.unreadable) < 50:
            self.unreadable.append({"name": result.name, "error": result.error})


def default_workers() -> int:
    """One worker process per core (at least one)."""
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1)


def bounded(
    executor: Executor, fn: Callable[[T], R], items: Iterable[T], window: int
) -> Iterator[R]:
    """``executor.map`` that keeps at most ``window`` calls in flight and yields in order."""
    pending: deque[Future[R]] = deque()
    for item in items:
        pending.append(executor.submit(fn, item))
        if len(pending) >= window:
            yield pending.popleft().result()
    while pending:
        yield pending.popleft().result()


def _tasks(
    items: Iterable[tuple[LogFile, bytes | None, str]],
) -> Iterator[tuple[list[tuple[str, bytes | None]], dict[str, LogFile]]]:
    """Group ``(file, data or None, worker name)`` into tasks of a few MB / files each."""
    batch: list[tuple[str, bytes | None]] = []
    refs: dict[str, LogFile] = {}
    size = 0
    for log, data, worker_name in items:
        batch.append((worker_name, data))
        refs[worker_name] = log
        size += len(data) if data is not None else log.size
        if size >= TASK_BYTES or len(batch) >= TASK_FILES:
            yield batch, refs
            batch, refs, size = [], {}, 0
    if batch:
        yield batch, refs


@contextlib.contextmanager
def _main_hidden() -> Iterator[None]:
    """Keep spawned workers from re-running the caller's ``__main__`` while the pool lives.

    A forkserver/spawn child runs the parent's main script again (as ``__mp_main__``) unless it
    has no file. For ``migrate`` that script is the console entry point, which imports the whole
    CLI (engine, steps, boto3, SQLAlchemy, Alembic): about a second of CPU per worker, measured,
    on a machine with two cores. Workers need only :mod:`migrate.cloudtrail.parse`, so the main
    module's ``__file__`` and ``__spec__`` are hidden while workers start (they start lazily, on
    submit), and restored afterwards.
    """
    main = sys.modules.get("__main__")
    if main is None:
        yield
        return
    saved: dict[str, Any] = {
        name: main.__dict__[name] for name in ("__file__", "__spec__") if name in main.__dict__
    }
    main.__dict__.pop("__file__", None)
    main.__dict__["__spec__"] = None
    try:
        yield
    finally:
        main.__dict__.pop("__spec__", None)
        main.__dict__.update(saved)


class _Inline(Executor):
    """Runs calls at once in this process (small jobs, and tests that want no processes)."""

    def submit(self, fn: Callable[..., R], /, *args: Any, **kwargs: Any) -> Future[R]:
        future: Future[R] = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:
            future.set_exception(exc)
        return future


def ingest(
    store: Store,
    dataset: str,
    pages: Iterable[list[LogFile]],
    *,
    fetch: Callable[[LogFile], bytes] | None = None,
    local_root: str | None = None,
    workers: int | None = None,
    batch_files: int = 200,
    run_id: str | None = None,
    progress: Any = None,
    on_batch: Callable[[IngestStats], None] | None = None,
) -> IngestStats:
    """Read every not-yet-ingested file of ``pages`` into the store's usage tables.

    ``fetch`` downloads one file (S3); without it, files are paths under ``local_root`` that the
    workers read themselves. ``workers`` is the number of parse processes (default: one per core;
    0 parses in this process). ``progress`` is a tqdm bar (or None); ``on_batch`` is called after
    each committed batch (the step checkpoints there).
    """
    stats = IngestStats()

    def new_files() -> Iterator[LogFile]:
        for page in pages:
            stats.files_listed += len(page)
            known = persist.already_ingested(store, dataset, [f.name for f in page])
            stats.files_skipped += len(known)
            fresh = [f for f in page if f.name not in known]
            if progress is not None and fresh:
                progress.total = (progress.total or 0) + len(fresh)
                progress.refresh()
            yield from fresh

    files = new_files()
    # Peek far enough to decide whether worker processes pay off.
    head: list[LogFile] = []
    for log in files:
        head.append(log)
        if len(head) >= INLINE_BELOW_FILES:
            break
    if not head:
        return stats
    count = default_workers() if workers is None else workers
    if len(head) < INLINE_BELOW_FILES and workers is None:
        count = 0

    def all_files() -> Iterator[LogFile]:
        yield from head
        yield from files

    downloader: ThreadPoolExecutor | None = None
    if fetch is not None:
        downloader = ThreadPoolExecutor(max_workers=8, thread_name_prefix="ct-download")
        fetch_fn = fetch

        def get(log: LogFile) -> tuple[LogFile, bytes | None, str]:
            return log, fetch_fn(log), log.name

        items: Iterable[tuple[LogFile, bytes | None, str]] = bounded(
            downloader, get, all_files(), window=32
        )
    else:
        root = Path(local_root or ".")
        items = ((log, None, str(root / log.name)) for log in all_files())

    pool: Executor
    if count > 0:
        # forkserver: never fork a parent that holds threads (boto3, tqdm, SQLite). Preloading
        # only the parser keeps the server from re-running the caller's __main__ module, and
        # _main_hidden() (below) keeps each worker from doing so.
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(["migrate.cloudtrail.parse"])
        pool = ProcessPoolExecutor(max_workers=count, mp_context=context)
    else:
        pool = _Inline()
    batch_combos: dict[Combo, ComboValue] = {}
    batch_resources: dict[CallKey, ArnSet] = {}
    batch_files_list: list[tuple[FileResult, str | None]] = []

    def flush() -> None:
        if not batch_files_list:
            return
        persist.commit_batch(
            store, dataset, batch_files_list, batch_combos, run_id, resources=batch_resources
        )
        batch_files_list.clear()
        batch_combos.clear()
        batch_resources.clear()
        if on_batch is not None:
            on_batch(stats)

    with _main_hidden() if count > 0 else contextlib.nullcontext():
        try:
            tasks = _tasks(items)
            refs_by_task: deque[dict[str, LogFile]] = deque()

            def submit_source() -> Iterator[list[tuple[str, bytes | None]]]:
                for batch, refs in tasks:
                    refs_by_task.append(refs)
                    yield batch

            window = max(2, count * 3)
            for task in bounded(pool, parse_task, submit_source(), window=window):
                refs = refs_by_task.popleft()
                for result in task.files:
                    log = refs[result.name]
                    result.name = log.name  # the worker saw the absolute path of local files
                    stats.add(result)
                    batch_files_list.append((result, log.etag))
                if batch_combos:
                    merge_combos(batch_combos, task.combos)
                else:
                    batch_combos.update(task.combos)
                merge_resources(batch_resources, task.resources)
                if progress is not None:
                    progress.update(len(task.files))
                if len(batch_files_list) >= batch_files:
                    flush()
            flush()
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        if downloader is not None:
            downloader.shutdown(wait=True, cancel_futures=True)
    return stats
