"""Two operators on two machines sharing one state store (docs/team-state.md).

Each "machine" is a process in a UTS namespace of its own (``unshare --uts``) with its own host
name, so the lease sees two hosts exactly as it would across a network: the pid of a holder on
another host means nothing here, only its lease does. Every test runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import query_state, write_playbook
from tests.pgserver import PASSWORD

pytestmark = [pytest.mark.e2e, pytest.mark.both_stores]

TEAM_BOOK = """\
name: team
steps:
  - id: soak
    uses: core.wait
    with: {seconds: 600}
  - id: kms
    uses: kms.ensure_key
    depends_on: []
    approve: true
    yes_approves: none
"""

LONG_WAIT = """\
name: long wait
steps:
  - id: soak
    uses: core.wait
    with: {seconds: 120}
"""


def _machine(host: str, user: str, args: list[str], state: str, endpoint: str) -> list[str]:
    """The command line of ``migrate ARGS`` run by ``user`` on machine ``host``."""
    if shutil.which("unshare") is None:
        pytest.fail("unshare (util-linux) is needed to give a process a host name of its own")
    exe = str(Path(sys.executable).parent / "migrate")
    ns = (
        ["unshare", "--uts"]
        if os.geteuid() == 0
        else ["unshare", "--user", "--map-root-user", "--uts"]
    )
    return [*ns, "sh", "-c", 'hostname "$0" && exec "$@"', host, exe, *args]


def _env(user: str, state: str, endpoint: str, **extra: str) -> dict[str, str]:
    return dict(
        os.environ,
        MIGRATE_STATE=state,
        AWS_ENDPOINT_URL=endpoint,
        USER=user,
        LOGNAME=user,
        **extra,
    )


def _start(host: str, user: str, args: list[str], state: str, endpoint: str, **extra: str) -> Any:
    return subprocess.Popen(
        _machine(host, user, args, state, endpoint),
        env=_env(user, state, endpoint, **extra),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )


def _on(
    host: str, user: str, args: list[str], state: str, endpoint: str, **extra: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        _machine(host, user, args, state, endpoint),
        env=_env(user, state, endpoint, **extra),
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )


def _wait_for(state: str, sql: str, what: str, seconds: float = 60) -> list[tuple[Any, ...]]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        rows = query_state(state, sql)
        if rows:
            return rows
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def _gone(proc: Any) -> str:
    """What a process that should still be running said, if it is not."""
    if proc.poll() is None:
        return "still running"
    return f"exited {proc.returncode}: {proc.stdout.read()} {proc.stderr.read()}"


def _steps(status_json: str) -> dict[str, str]:
    return {s["id"]: s["status"] for s in json.loads(status_json)["steps"]}


def test_approval_from_another_machine_while_the_first_resume_waits(
    endpoint: str, tmp_path: Path, state_url: str
) -> None:
    book = str(write_playbook(tmp_path / "team.yaml", TEAM_BOOK))
    kms_status = (
        "SELECT a.status FROM actions a JOIN step_runs s ON s.id = a.step_run_id "
        "WHERE s.step_id = 'kms' AND a.status = '{}'"
    )
    # The app owner starts the run on laptop-a: soak waits 10 minutes, kms awaits approval.
    first = _start("laptop-a", "appowner", ["-q", "run", book, "--yes"], state_url, endpoint)
    try:
        _wait_for(state_url, kms_status.format("awaiting-approval"), "the kms gate")
        run_id = query_state(state_url, "SELECT id FROM runs")[0][0]

        # The DBA on laptop-b sees the same status...
        seen = _on("laptop-b", "dba", ["status", run_id, "--json"], state_url, endpoint)
        assert seen.returncode == 0, seen.stderr
        assert _steps(seen.stdout) == {"soak": "waiting", "kms": "awaiting-approval"}
        # ...cannot run it beside the first process (refused, naming the holder)...
        second = _on("laptop-b", "dba", ["resume", run_id], state_url, endpoint)
        assert second.returncode == 5, (second.stderr, _gone(first))
        assert "appowner@laptop-a" in second.stderr and f"pid {first.pid}" in second.stderr
        assert "Traceback" not in second.stderr
        # ...but approves the gate while laptop-a's run holds the lease and waits.
        approved = _on("laptop-b", "dba", ["approve", run_id, "kms"], state_url, endpoint)
        assert approved.returncode == 0, approved.stderr

        # laptop-a's waiting run notices the approval within seconds and acts on it.
        _wait_for(state_url, kms_status.format("done"), "laptop-a to create the key", 90)
        assert first.poll() is None, _gone(first)
        holder = query_state(state_url, "SELECT holder_host, holder_pid FROM locks")
        assert holder == [("laptop-a", first.pid)]
        during = _on("laptop-b", "dba", ["status", run_id, "--json"], state_url, endpoint)
        assert _steps(during.stdout) == {"soak": "waiting", "kms": "done"}
        # Ctrl-C on laptop-a: the run stays resumable, from either machine.
        first.send_signal(signal.SIGINT)
        assert first.wait(timeout=30) == 130, _gone(first)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    final = _on("laptop-b", "dba", ["status", run_id, "--json"], state_url, endpoint)
    body = json.loads(final.stdout)
    assert body["status"] == "interrupted", body["status"]
    assert _steps(final.stdout)["kms"] == "done"
    assert [(a["step"], a["by"], a["via"]) for a in body["approvals"]] == [
        ("kms", "dba@laptop-b", "approve")
    ]
    for out in (seen.stdout, second.stderr, approved.stdout, final.stdout):
        assert PASSWORD not in out


# On PostgreSQL, the team's store (the lease code is the same on SQLite, whose same-host takeover
# test_crash_and_lock covers): this test waits for a real lease to run out.
@pytest.mark.both_stores("postgresql")
def test_killed_holder_on_another_machine_is_taken_over_after_its_lease(
    endpoint: str, tmp_path: Path, state_url: str
) -> None:
    book = str(write_playbook(tmp_path / "wait.yaml", LONG_WAIT))
    # 30 s: renewed every 7.5 s, so it runs out 22.5-30 s after the kill; the early resume below
    # comes well before that, even on a loaded machine (where one `migrate` start can take 15 s).
    lease = {"MIGRATE_LEASE_SECONDS": "30"}
    first = _start(
        "laptop-a",
        "secops",
        ["-q", "run", book, "--yes", "--max-wait", "300"],
        state_url,
        endpoint,
        **lease,
    )
    try:
        lock = _wait_for(
            state_url, "SELECT run_id, lock_id, holder_host FROM locks", "the first lease"
        )
        run_id, lock_id, host = lock[0]
        assert host == "laptop-a"
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    killed_at = time.monotonic()

    # From another machine, the dead pid on laptop-a means nothing: the lease still holds...
    early = _on("laptop-b", "dba", ["resume", run_id, "--max-wait", "0"], state_url, endpoint)
    assert time.monotonic() - killed_at < 22, "too slow to check the lease before it expired"
    assert early.returncode == 5, early.stderr
    assert "secops@laptop-a" in early.stderr and lock_id in early.stderr
    assert "lease runs out in" in early.stderr
    # ...until it expires (no heartbeat renews it), then the next operator takes the run over.
    time.sleep(max(0.0, 31.0 - (time.monotonic() - killed_at)))
    later = _on("laptop-b", "dba", ["resume", run_id, "--max-wait", "0"], state_url, endpoint)
    assert later.returncode == 4, later.stderr  # taken over; the run is still in its wait window
    status = json.loads(
        _on("laptop-b", "dba", ["status", run_id, "--json"], state_url, endpoint).stdout
    )
    assert status["status"] == "waiting"
    assert query_state(state_url, "SELECT count(*) FROM locks")[0][0] == 0  # released on exit
