"""The CLI as a subprocess: SIGKILL in the middle of a step, resume; locks; unlock.

Every test runs on a SQLite and on a PostgreSQL state store (``both_stores``)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from migrate.sandbox.server import SandboxServer, is_mutating_request
from tests.conftest import PLAYBOOKS, query_state, run_cli, write_playbook

pytestmark = [pytest.mark.e2e, pytest.mark.both_stores]
BUCKETS = [f"crash-bucket-{i:03d}" for i in range(80)]
_query = query_state


def _end_state(aws: Any) -> dict[str, Any]:
    s3, kms = aws("s3"), aws("kms")
    keys = kms.list_keys()["Keys"]
    aliases = [a for a in kms.list_aliases()["Aliases"] if a["AliasName"] == "alias/migrate-ftr"]
    buckets = {}
    for name in BUCKETS:
        rule = s3.get_bucket_encryption(Bucket=name)["ServerSideEncryptionConfiguration"]["Rules"][
            0
        ]
        default = rule["ApplyServerSideEncryptionByDefault"]
        buckets[name] = (
            default["SSEAlgorithm"],
            default["KMSMasterKeyID"]
            == kms.describe_key(KeyId=aliases[0]["TargetKeyId"])["KeyMetadata"]["Arn"],
            rule["BucketKeyEnabled"],
        )
    return {"keys": len(keys), "aliases": len(aliases), "buckets": buckets}


def _popen(args: list[str], state: Path | str, endpoint: str) -> subprocess.Popen[str]:
    env = dict(os.environ, MIGRATE_STATE=str(state), AWS_ENDPOINT_URL=endpoint)
    exe = Path(os.sys.executable).parent / "migrate"  # type: ignore[attr-defined]
    return subprocess.Popen(
        [str(exe), *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def test_sigkill_mid_step_then_resume_matches_uninterrupted_run(
    moto_server: SandboxServer, endpoint: str, aws: Any, new_state: Callable[[str], str]
) -> None:
    book = str(PLAYBOOKS / "s3-default-encryption.yaml")

    def seed() -> None:
        for name in BUCKETS:
            aws("s3").create_bucket(Bucket=name)

    # Reference: the same playbook, uninterrupted, on a fresh account.
    seed()
    run_cli(
        "-q",
        "run",
        book,
        "--yes",
        state=new_state("ref"),
        endpoint=endpoint,
        check=True,
        timeout=900,
    )
    reference = _end_state(aws)

    moto_server.reset()
    seed()
    db = new_state("crash")
    moto_server.start_recording()
    proc = _popen(["-q", "run", book, "--yes"], db, endpoint)
    deadline = time.monotonic() + 600
    done = 0
    while time.monotonic() < deadline:
        rows = _query(
            db,
            "SELECT count(*) FROM actions a JOIN step_runs s ON s.id = a.step_run_id "
            "WHERE s.step_id = 's3-default-encryption' AND a.status = 'done'",
        )
        done = rows[0][0] if rows else 0
        if done >= 25:
            break
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    assert 25 <= done < len(BUCKETS), f"killed after {done} actions: not in the middle"
    run_id = _query(db, "SELECT id FROM runs")[0][0]
    assert _query(db, f"SELECT status FROM runs WHERE id = '{run_id}'")[0][0] == "running"
    # ... but nobody runs it any more, and status says so.
    shown = json.loads(run_cli("status", run_id, "--json", state=db).stdout)
    assert shown["status"] == "interrupted"

    # The lease of the killed process is taken over at once (same host, dead pid).
    result = run_cli("-q", "resume", run_id, state=db, endpoint=endpoint, timeout=900)
    assert result.returncode == 0, result.stderr
    assert f"run {run_id}: done" in result.stdout

    moto_server.stop_recording()
    # The journal lost nothing: an entry (written before the request left) for every mutating
    # call the server received, the ones the killed process sent included.
    received = [r for r in moto_server.recorded_requests() if is_mutating_request(r)]
    journaled = _query(db, "SELECT count(*) FROM journal")[0][0]
    assert received and journaled >= len(received), (journaled, len(received))

    assert _end_state(aws) == reference
    # No duplicated resource: one key, and each bucket changed once (plus at most the one
    # action that was in flight when the process died).
    assert reference["keys"] == 1
    per_bucket = _query(
        db,
        "SELECT target, count(*) FROM journal WHERE operation = 'PutBucketEncryption' "
        "GROUP BY target HAVING count(*) > 1",
    )
    assert len(per_bucket) <= 1
    assert _query(db, "SELECT count(*) FROM resources WHERE kind = 'kms:key'")[0][0] == 1


WAIT_BOOK = """\
name: long wait
steps:
  - id: soak
    uses: core.wait
    with: {seconds: 600}
"""


def test_second_operator_is_locked_out_until_unlock(
    endpoint: str, tmp_path: Path, state_url: str
) -> None:
    book = write_playbook(tmp_path / "wait.yaml", WAIT_BOOK)
    db = state_url
    first = _popen(["-q", "run", str(book), "--yes", "--max-wait", "900"], db, endpoint)
    try:
        deadline = time.monotonic() + 30
        lock: list[tuple[Any, ...]] = []
        while time.monotonic() < deadline and not lock:
            lock = _query(db, "SELECT run_id, lock_id, holder_pid FROM locks")
            time.sleep(0.05)
        assert lock, "the first run never took its lease"
        run_id, lock_id, pid = lock[0]
        assert pid == first.pid

        second = run_cli("run", str(book), "--yes", state=db, endpoint=endpoint)
        assert second.returncode == 5
        assert f"pid {first.pid}" in second.stderr and lock_id in second.stderr
        assert "Traceback" not in second.stderr

        resumed = run_cli("resume", run_id, state=db, endpoint=endpoint)
        assert resumed.returncode == 5 and f"pid {first.pid}" in resumed.stderr

        wrong = run_cli("unlock", run_id, "--lock-id", "not-the-id", state=db, endpoint=endpoint)
        assert wrong.returncode == 2 and lock_id in wrong.stderr

        ok = run_cli("unlock", run_id, "--lock-id", lock_id, state=db, endpoint=endpoint)
        assert ok.returncode == 0, ok.stderr
        # The first process notices its lease is gone and stops rather than race the next one.
        assert first.wait(timeout=60) == 5
        assert "lease" in (first.stderr.read() if first.stderr else "")

        after = run_cli("resume", run_id, "--max-wait", "0", state=db, endpoint=endpoint)
        assert after.returncode == 4, after.stderr  # free now; still in its wait window
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()


KEY_THEN_WAIT = """\
name: key then wait
steps:
  - id: kms
    uses: kms.ensure_key
    with: {alias: alias/race-test}
  - id: soak
    uses: core.wait
    with: {seconds: 600}
"""


def test_runs_of_one_playbook_started_together_only_one_proceeds(
    endpoint: str, aws: Any, tmp_path: Path, state_url: str
) -> None:
    """Four operators start the same playbook at the same moment: the "already being run" check
    and the lease are one write transaction, so exactly one run exists and acts (one key for
    the alias); the others exit 5 naming it, having changed nothing."""
    book = write_playbook(tmp_path / "race.yaml", KEY_THEN_WAIT)
    procs = [_popen(["-q", "run", str(book), "--yes"], state_url, endpoint) for _ in range(4)]
    try:
        losers: list[str] = []
        deadline = time.monotonic() + 240
        while len(losers) < 3 and time.monotonic() < deadline:
            for proc in procs:
                if proc.poll() is not None and proc.stderr and not proc.stderr.closed:
                    losers.append(proc.stderr.read())
                    proc.stderr.close()
            time.sleep(0.2)
        assert len(losers) == 3, f"{len(losers)} of 4 processes were refused"
        assert sorted(p.returncode for p in procs if p.poll() is not None) == [5, 5, 5], losers
        runs = _query(state_url, "SELECT id FROM runs")
        assert len(runs) == 1, runs
        for text in losers:
            assert "already being run" in text and runs[0][0] in text, text
            assert "Traceback" not in text
        holder = next(p for p in procs if p.poll() is None)
        # The winner creates the one key, then waits in its soak step.
        _wait_for_step(state_url, "kms", "done", 120)
        assert holder.poll() is None
        assert len(aws("kms").list_keys()["Keys"]) == 1
        aliases = aws("kms").list_aliases()["Aliases"]
        assert [a["AliasName"] for a in aliases if a["AliasName"] == "alias/race-test"] == [
            "alias/race-test"
        ]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def _wait_for_step(state: str, step_id: str, status: str, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        rows = _query(state, f"SELECT status FROM step_runs WHERE step_id = '{step_id}'")
        if rows and rows[0][0] == status:
            return
        time.sleep(0.2)
    raise AssertionError(f"step {step_id} never reached {status}")
