"""s3.reencrypt through the CLI, killed with SIGKILL at random points of a 1,500-object bucket.

After the last `migrate resume` every object is under the target key, and the server received
exactly one copy per object: the checkpoint plus a HEAD per object (encryption state, not just the
cursor) means nothing is copied twice, not even in the batch that was in flight.
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from migrate.sandbox.server import SandboxServer
from tests.conftest import run_cli, write_playbook

pytestmark = pytest.mark.e2e
OBJECTS = 1500
BUCKET = "crash-objects"
BOOK = f"""\
name: reencrypt crash test
steps:
  - id: kms
    uses: kms.ensure_key
  - id: reencrypt
    uses: s3.reencrypt
    with:
      names: ["{BUCKET}"]
      kms_key: "{{{{ steps.kms.key_arn }}}}"
      lane: copy
      batch_size: 100
      concurrency: 16
      plan_head_limit: 0
      verify_sample: 0.2
"""


def _done(db: Path) -> int:
    if not db.exists():
        return 0
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    try:
        row = conn.execute("SELECT coalesce(sum(done), 0) FROM checkpoints WHERE name='main'")
        return int(row.fetchone()[0])
    except sqlite3.OperationalError:
        return 0  # schema not created yet
    finally:
        conn.close()


def _popen(args: list[str], db: Path, endpoint: str) -> subprocess.Popen[str]:
    env = dict(os.environ, MIGRATE_STATE=str(db), AWS_ENDPOINT_URL=endpoint)
    exe = Path(sys.executable).parent / "migrate"
    return subprocess.Popen(
        [str(exe), *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def _kill_when(proc: subprocess.Popen[str], db: Path, at_least: int, jitter_s: float) -> int:
    """SIGKILL once ``at_least`` objects are checkpointed, plus a random moment into the next
    batch (so the kill lands mid-batch, with copies in flight)."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if _done(db) >= at_least:
            break
        time.sleep(0.02)
    time.sleep(jitter_s)
    assert proc.poll() is None, f"finished before the kill at {at_least}: {proc.stderr}"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    return _done(db)


def test_sigkill_at_random_points_then_resume_copies_each_object_once(
    moto_server: SandboxServer, endpoint: str, aws: Any, tmp_path: Path
) -> None:
    seed = int(os.environ.get("CRASH_SEED", random.randrange(1 << 30)))
    rng = random.Random(seed)
    s3 = aws("s3")
    s3.create_bucket(Bucket=BUCKET)
    keys = [f"data/{i // 100:02d}/object-{i:05d}.txt" for i in range(OBJECTS)]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda k: s3.put_object(Bucket=BUCKET, Key=k, Body=k.encode()), keys))
    book = write_playbook(tmp_path / "crash.yaml", BOOK)
    db = tmp_path / "state" / "migrate.db"

    moto_server.start_recording()
    kills = sorted(rng.sample(range(100, OBJECTS - 300), 3))
    proc = _popen(["-q", "run", str(book), "--yes"], db, endpoint)
    progress = [_kill_when(proc, db, kills[0], rng.uniform(0, 0.3))]
    conn = sqlite3.connect(db)
    run_id = conn.execute("SELECT id FROM runs").fetchone()[0]
    conn.close()
    for at in kills[1:]:
        proc = _popen(["-q", "resume", run_id], db, endpoint)
        progress.append(_kill_when(proc, db, at, rng.uniform(0, 0.3)))
    assert progress == sorted(progress) and progress[-1] < OBJECTS, (seed, progress)

    final = run_cli("-q", "resume", run_id, state=db, endpoint=endpoint, timeout=300)
    moto_server.stop_recording()
    assert final.returncode == 0, (seed, final.stderr)
    assert f"run {run_id}: done" in final.stdout

    target = None
    for alias in aws("kms").list_aliases()["Aliases"]:
        if alias["AliasName"] == "alias/migrate-ftr":
            target = aws("kms").describe_key(KeyId=alias["TargetKeyId"])["KeyMetadata"]["Arn"]
    with ThreadPoolExecutor(8) as pool:
        heads = list(pool.map(lambda k: s3.head_object(Bucket=BUCKET, Key=k), keys))
    assert all(h.get("SSEKMSKeyId") == target for h in heads), seed

    copies: dict[str, int] = {}
    for rec in moto_server.recorded_requests():
        if rec["method"] == "PUT" and any(h.lower() == "x-amz-copy-source" for h in rec["headers"]):
            copies[rec["path"]] = copies.get(rec["path"], 0) + 1
    assert len(copies) == OBJECTS, seed
    twice = sorted(path for path, n in copies.items() if n > 1)
    assert twice == [], (seed, progress, twice[:10])
