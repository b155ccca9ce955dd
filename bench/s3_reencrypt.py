"""Benchmark: `migrate` (s3.reencrypt) against `aws s3 cp --recursive` re-encrypting in place.

Both tools run as subprocesses against the same moto server, which runs as its own process
(`moto_server`), on buckets seeded with the same objects. Two regimes:

* ``plain``: straight to moto; the server is the bottleneck (a few hundred requests/s);
* ``latency``: through a small asyncio TCP proxy that holds every request for ``--latency-ms``
  (default 250 ms) before passing it on, as real S3 and KMS are latency-bound.

For each run it prints objects/s, client CPU ms per object (user+sys of the tool's process tree),
server-side requests per object (counted by moto's request recorder) and the ratios migrate/awscli.

awscli (PyPI ``awscli``, v1) pins an exact botocore, so it is installed into its own virtualenv
(``~/.cache/migrate-bench/awscli-venv``, created on first use) rather than into the project's venv,
where it would replace the botocore migrate is tested with.

    .venv/bin/python bench/s3_reencrypt.py --objects 1000            # shipped defaults
    .venv/bin/python bench/s3_reencrypt.py --objects 1000 --settings tuned
    .venv/bin/python bench/s3_reencrypt.py --objects 600 --regimes latency --concurrency 64
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from migrate.sandbox.server import parse_recorded_line

AWSCLI_VERSION = "1.46.2"
AWSCLI_VENV = Path.home() / ".cache" / "migrate-bench" / "awscli-venv"
BUCKET = "bench-reencrypt"
SHIPPED = Path(__file__).resolve().parent.parent / "playbooks" / "s3-reencrypt.yaml"
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def moto_api(endpoint: str, path: str, method: str = "POST") -> bytes:
    req = urllib.request.Request(
        endpoint + path, data=b"" if method == "POST" else None, method=method
    )
    with _opener.open(req, timeout=30) as resp:
        body: bytes = resp.read()
    return body


def ensure_awscli(explicit: str | None) -> str:
    """The `aws` executable: given, already installed in the bench venv, or installed there now."""
    if explicit:
        return explicit
    exe = AWSCLI_VENV / "bin" / "aws"
    if not exe.exists():
        print(f"installing awscli=={AWSCLI_VERSION} into {AWSCLI_VENV} ...", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(AWSCLI_VENV)], check=True)
        subprocess.run(
            [str(AWSCLI_VENV / "bin" / "pip"), "install", "-q", f"awscli=={AWSCLI_VERSION}"],
            check=True,
        )
    return str(exe)


@contextlib.contextmanager
def moto_process(record_file: Path) -> Iterator[str]:
    """`moto_server` in its own process; yields its endpoint."""
    port = free_port()
    exe = Path(sys.executable).parent / "moto_server"
    env = dict(os.environ, MOTO_RECORDER_FILEPATH=str(record_file), MOTO_ENABLE_RECORDING="False")
    proc = subprocess.Popen(
        [str(exe), "-H", "127.0.0.1", "-p", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                moto_api(endpoint, "/moto-api/reset")
                break
            except OSError:
                time.sleep(0.05)
        yield endpoint
    finally:
        proc.terminate()
        proc.wait(timeout=10)


class DelayProxy:
    """A TCP proxy that holds each HTTP request for ``delay_s`` before forwarding it.

    A new request is the first bytes a client sends after the server last answered on that
    connection (HTTP/1.1: one request in flight per connection), so bodies sent in several
    chunks are delayed once.
    """

    def __init__(self, upstream_port: int, delay_s: float) -> None:
        self.upstream_port = upstream_port
        self.delay_s = delay_s
        self.port = free_port()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._ready = threading.Event()

    def start(self) -> str:
        self._thread.start()
        self._ready.wait(10)
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        async def shutdown() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(shutdown(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(
            asyncio.start_server(self._handle, "127.0.0.1", self.port, backlog=1024)
        )
        self._ready.set()
        try:
            self._loop.run_forever()
        finally:
            server.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        except OSError:
            writer.close()
            return
        state = {"idle": True}

        async def client_to_server() -> None:
            while data := await reader.read(65536):
                if state["idle"]:
                    state["idle"] = False
                    await asyncio.sleep(self.delay_s)
                up_writer.write(data)
                await up_writer.drain()
            with contextlib.suppress(OSError):
                up_writer.write_eof()

        async def server_to_client() -> None:
            while data := await up_reader.read(65536):
                state["idle"] = True
                writer.write(data)
                await writer.drain()
            writer.close()

        with contextlib.suppress(OSError, ConnectionError):
            await asyncio.gather(client_to_server(), server_to_client())
        for w in (writer, up_writer):
            with contextlib.suppress(Exception):
                w.close()


@dataclass
class Result:
    regime: str
    bucket_kind: str
    tool: str
    objects: int
    wall_s: float
    cpu_s: float
    requests: int
    encrypted: int
    phase_s: float  # migrate: the re-encryption action alone; awscli: the whole command
    peak_rss_mib: float = 0.0  # the command's largest process

    @property
    def phase_objects_per_s(self) -> float:
        return self.objects / self.phase_s

    @property
    def objects_per_s(self) -> float:
        return self.objects / self.wall_s

    @property
    def cpu_ms_per_object(self) -> float:
        return 1000 * self.cpu_s / self.objects

    @property
    def requests_per_object(self) -> float:
        return self.requests / self.objects


def _client(service: Any, endpoint: str) -> Any:
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="AKIABENCHOPERATOR001",
        aws_secret_access_key="bench-secret-not-real",
        config=Config(max_pool_connections=32, s3={"addressing_style": "path"}),
    )


def seed(endpoint: str, objects: int, bucket_kind: str) -> str:
    """Reset moto, create the bucket and a KMS key for awscli; return the key ARN."""
    moto_api(endpoint, "/moto-api/reset")
    s3 = _client("s3", endpoint)
    s3.create_bucket(Bucket=BUCKET)
    if bucket_kind == "enforced":
        s3.put_bucket_ownership_controls(
            Bucket=BUCKET,
            OwnershipControls={"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]},
        )
    keys = [f"data/{i // 100:03d}/obj-{i:06d}.json" for i in range(objects)]

    def put(key: str) -> None:
        s3.put_object(
            Bucket=BUCKET,
            Key=key,
            Body=(key * 20).encode(),
            ContentType="application/json",
            Metadata={"source": "bench"},
        )

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(put, keys))
    return str(_client("kms", endpoint).create_key()["KeyMetadata"]["Arn"])


def count_encrypted(endpoint: str) -> int:
    s3 = _client("s3", endpoint)
    keys = [
        o["Key"]
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET)
        for o in page.get("Contents", [])
    ]
    with ThreadPoolExecutor(16) as pool:
        heads = pool.map(lambda k: s3.head_object(Bucket=BUCKET, Key=k), keys)
        return sum(1 for h in heads if h.get("ServerSideEncryption") == "aws:kms")


def count_requests(endpoint: str) -> int:
    raw = moto_api(endpoint, "/moto-api/recorder/download-recording", method="GET")
    count = 0
    for line in raw.decode().splitlines():
        if line.strip():
            rec = parse_recorded_line(json.loads(line))
            if rec["protocol"] != "moto-api":
                count += 1
    return count


def timed(cmd: list[str], env: dict[str, str]) -> tuple[float, float, float]:
    """Run ``cmd``; return (wall seconds, CPU seconds of it and its children, its peak RSS in
    MiB). ``os.wait4`` gives this one command's usage (RUSAGE_CHILDREN would keep the largest
    of every command run so far)."""
    with tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            err.seek(0)
            tail = err.read().decode(errors="replace")[-3000:]
            raise SystemExit(f"{cmd[0]} failed ({proc.returncode}):\n{tail}")
    cpu = usage.ru_utime + usage.ru_stime
    return wall, cpu, usage.ru_maxrss / 1024  # Linux reports KiB


PLAYBOOK = """\
name: bench
steps:
  - id: kms
    uses: kms.ensure_key
  - id: reencrypt
    uses: s3.reencrypt
    with:
      names: ["{bucket}"]
      kms_key: "{{{{ steps.kms.key_arn }}}}"
      lane: copy
      concurrency: {concurrency}
      max_rps: {max_rps}
      plan_head_limit: 0
      verify_sample: 0.0
"""


def run_one(
    tool: str,
    *,
    regime: str,
    bucket_kind: str,
    moto_endpoint: str,
    client_endpoint: str,
    objects: int,
    awscli: str,
    workdir: Path,
    args: argparse.Namespace,
) -> Result:
    key_arn = seed(moto_endpoint, objects, bucket_kind)
    env = dict(
        os.environ,
        AWS_ENDPOINT_URL=client_endpoint,
        AWS_ACCESS_KEY_ID="AKIABENCHOPERATOR001",
        AWS_SECRET_ACCESS_KEY="bench-secret-not-real",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_CONFIG_FILE=str(workdir / "aws-config"),
        AWS_SHARED_CREDENTIALS_FILE=str(workdir / "aws-credentials"),
    )
    (workdir / "aws-config").write_text(
        f"[default]\ns3 =\n  max_concurrent_requests = {args.awscli_concurrency}\n"
        "  addressing_style = path\n"
    )
    (workdir / "aws-credentials").write_text("")
    if tool == "awscli":
        cmd = [
            awscli,
            "--endpoint-url",
            client_endpoint,
            "s3",
            "cp",
            f"s3://{BUCKET}",
            f"s3://{BUCKET}",
            "--recursive",
            "--sse",
            "aws:kms",
            "--sse-kms-key-id",
            key_arn,
            "--only-show-errors",
        ]
    else:
        state = workdir / f"state-{regime}-{bucket_kind}" / "migrate.db"
        shutil.rmtree(state.parent, ignore_errors=True)
        env["MIGRATE_STATE"] = str(state)
        exe = str(Path(sys.executable).parent / "migrate")
        if args.settings == "defaults":
            # What a user runs: the shipped playbook, no tuning at all.
            cmd = [exe, "-q", "run", str(SHIPPED), "-p", f"buckets={BUCKET}", "--yes"]
        else:
            book = workdir / "bench.yaml"
            book.write_text(
                PLAYBOOK.format(bucket=BUCKET, concurrency=args.concurrency, max_rps=args.max_rps)
            )
            cmd = [exe, "-q", "run", str(book), "--yes"]
        if os.environ.get("BENCH_PROFILE"):
            cmd = [sys.executable, "-m", "cProfile", "-o", os.environ["BENCH_PROFILE"], *cmd]
    moto_api(moto_endpoint, "/moto-api/recorder/reset-recording")
    moto_api(moto_endpoint, "/moto-api/recorder/start-recording")
    wall, cpu, rss = timed(cmd, env)
    moto_api(moto_endpoint, "/moto-api/recorder/stop-recording")
    requests = count_requests(moto_endpoint)
    phase = wall if tool == "awscli" else action_seconds(Path(env["MIGRATE_STATE"]))
    return Result(
        regime,
        bucket_kind,
        tool,
        objects,
        wall,
        cpu,
        requests,
        count_encrypted(moto_endpoint),
        phase,
        rss,
    )


def action_seconds(db: Path) -> float:
    """How long the re-encryption action itself took (from the run's state DB)."""
    conn = sqlite3.connect(db)
    try:
        start, end = conn.execute(
            "SELECT started_at, finished_at FROM actions WHERE kind = 's3.reencrypt_objects'"
        ).fetchone()
    finally:
        conn.close()
    delta = datetime.fromisoformat(str(end)) - datetime.fromisoformat(str(start))
    return delta.total_seconds()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--objects", type=int, default=1000)
    parser.add_argument("--regimes", default="plain,latency")
    parser.add_argument("--bucket-kinds", default="enforced,acls")
    parser.add_argument("--latency-ms", type=float, default=250.0)
    parser.add_argument("--concurrency", type=int, default=64, help="migrate's worker threads")
    parser.add_argument("--max-rps", type=float, default=0, help="migrate's max_rps (0: none)")
    parser.add_argument("--awscli-concurrency", type=int, default=10)
    parser.add_argument("--tools", default="awscli,migrate")
    parser.add_argument(
        "--settings",
        choices=("defaults", "tuned"),
        default="defaults",
        help="defaults: the shipped playbook as a user runs it; tuned: the bench playbook "
        "(plan_head_limit 0, verify_sample 0, --concurrency, --max-rps)",
    )
    parser.add_argument("--awscli", help="path of an `aws` executable (v1 from PyPI)")
    args = parser.parse_args()
    awscli = ensure_awscli(args.awscli)
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="bench-reencrypt-") as tmp:
        workdir = Path(tmp)
        with moto_process(workdir / "recording.jsonl") as moto_endpoint:
            for regime in args.regimes.split(","):
                proxy = None
                client_endpoint = moto_endpoint
                if regime == "latency":
                    proxy = DelayProxy(int(moto_endpoint.rsplit(":", 1)[1]), args.latency_ms / 1000)
                    client_endpoint = proxy.start()
                try:
                    for kind in args.bucket_kinds.split(","):
                        for tool in args.tools.split(","):
                            result = run_one(
                                tool,
                                regime=regime,
                                bucket_kind=kind,
                                moto_endpoint=moto_endpoint,
                                client_endpoint=client_endpoint,
                                objects=args.objects,
                                awscli=awscli,
                                workdir=workdir,
                                args=args,
                            )
                            results.append(result)
                            print(_row(result), flush=True)
                finally:
                    if proxy is not None:
                        proxy.stop()
    print()
    print(_table(results, args))


def _row(r: Result) -> str:
    return (
        f"{r.regime:8} {r.bucket_kind:9} {r.tool:8} {r.objects:6d} obj  {r.wall_s:7.1f} s  "
        f"{r.objects_per_s:7.1f} obj/s ({r.phase_objects_per_s:6.1f} in the copy phase)  "
        f"{r.cpu_ms_per_object:6.2f} CPU ms/obj  "
        f"{r.requests_per_object:5.2f} req/obj  encrypted {r.encrypted}/{r.objects}"
    )


def _table(results: list[Result], args: argparse.Namespace) -> str:
    lines = [
        f"objects={args.objects} latency={args.latency_ms:.0f}ms migrate settings="
        f"{args.settings}"
        + (f" (concurrency {args.concurrency})" if args.settings == "tuned" else "")
        + f" awscli max_concurrent_requests={args.awscli_concurrency}",
        "| regime | bucket | tool | objects/s (whole command) | objects/s (copy phase) "
        "| client CPU ms/object | server requests/object | peak RSS MiB |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in results:
        lines.append(
            f"| {r.regime} | {r.bucket_kind} | {r.tool} | {r.objects_per_s:.1f} | "
            f"{r.phase_objects_per_s:.1f} | {r.cpu_ms_per_object:.2f} | "
            f"{r.requests_per_object:.2f} | {r.peak_rss_mib:.0f} |"
        )
    lines.append("")
    lines.append(
        "| regime | bucket | objects/s migrate/awscli (whole) | (copy phase) "
        "| CPU/object migrate/awscli | requests/object migrate/awscli |"
    )
    lines.append("| --- | --- | ---: | ---: | ---: | ---: |")
    by_key = {(r.regime, r.bucket_kind, r.tool): r for r in results}
    for regime, kind, tool in by_key:
        if tool != "migrate" or (regime, kind, "awscli") not in by_key:
            continue
        m, a = by_key[(regime, kind, "migrate")], by_key[(regime, kind, "awscli")]
        lines.append(
            f"| {regime} | {kind} | {m.objects_per_s / a.objects_per_s:.2f}x | "
            f"{m.phase_objects_per_s / a.phase_objects_per_s:.2f}x | "
            f"{m.cpu_ms_per_object / a.cpu_ms_per_object:.2f}x | "
            f"{m.requests_per_object / a.requests_per_object:.2f}x |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
