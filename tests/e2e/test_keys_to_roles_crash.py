"""iam.keys_to_roles survives SIGKILL between any two of its actions: no duplicate role, instance
profile or association after `migrate resume`."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from migrate.sandbox.seed import seed
from migrate.sandbox.server import SandboxServer
from tests.conftest import run_cli, write_playbook

pytestmark = pytest.mark.e2e
PROMPT = "Perform this action?"
BOOK = """\
name: keys crash
steps:
  - id: usage
    uses: cloudtrail.usage
    with: {source: "s3://legacy-cloudtrail-logs", since: 3650d}
  - id: keys
    uses: iam.keys_to_roles
    with:
      names: [app-server]
      usage_report: "{{ steps.usage.usage_id }}"
      watch_window: 0s
      retire_window: 0s
"""


def _kill_before_action(book: Path, db: Path, endpoint: str, n: int) -> None:
    """Run in --step mode, say yes to the first n-1 prompts, SIGKILL at the n-th."""
    env = dict(os.environ, MIGRATE_STATE=str(db), AWS_ENDPOINT_URL=endpoint)
    exe = Path(sys.executable).parent / "migrate"
    proc = subprocess.Popen(
        [str(exe), "run", str(book), "--step", "--yes"],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        bufsize=1,
    )
    assert proc.stdin is not None and proc.stderr is not None
    seen = 0
    deadline = time.monotonic() + 60
    buffer = ""
    while time.monotonic() < deadline:
        char = proc.stderr.read(1)
        if not char:
            break
        buffer += char
        if buffer.endswith(PROMPT):
            seen += 1
            if seen == n:
                proc.send_signal(signal.SIGKILL)
                proc.wait(timeout=10)
                return
            proc.stdin.write("y\n")
            proc.stdin.flush()
    proc.kill()
    raise AssertionError(f"saw {seen} prompts, wanted {n}:\n{buffer[-2000:]}")


@pytest.mark.parametrize("kill_at", [1, 2, 3])
def test_sigkill_between_actions_then_resume_has_no_duplicates(
    moto_server: SandboxServer, endpoint: str, aws: Any, tmp_path: Path, kill_at: int
) -> None:
    summary = seed(endpoint, tmp_path / "sandbox")
    book = write_playbook(tmp_path / "k.yaml", BOOK)
    db = tmp_path / "k.db"
    # Prompts: 1 create role, 2 switch workloads, 3 watch, ... (the trail's evidence was read
    # while planning: no ingest action is left to ask about)
    _kill_before_action(book, db, endpoint, kill_at)
    status = run_cli("status", "--json", state=db)
    run_id = __import__("json").loads(status.stdout)["runs"][0]["id"]
    resumed = run_cli("-q", "resume", run_id, "--yes", state=db, endpoint=endpoint)
    assert resumed.returncode == 3, resumed.stderr  # stops at the deactivate gate

    iam, ec2 = aws("iam"), aws("ec2")
    key = summary.access_key_id("app-server")
    role = f"migrate-app-server-{key[-6:].lower()}"
    roles = [
        r["RoleName"] for r in iam.list_roles()["Roles"] if r["RoleName"].startswith("migrate-")
    ]
    profiles = [
        p["InstanceProfileName"]
        for p in iam.list_instance_profiles()["InstanceProfiles"]
        if p["InstanceProfileName"].startswith("migrate-")
    ]
    assoc = [
        a
        for a in ec2.describe_iam_instance_profile_associations(
            Filters=[{"Name": "instance-id", "Values": [summary.instance_id]}]
        )["IamInstanceProfileAssociations"]
        if a.get("State") == "associated"
    ]
    assert roles == [role]
    assert profiles == [role]
    assert len(assoc) == 1 and assoc[0]["IamInstanceProfile"]["Arn"].endswith("/" + role)
    profile = iam.get_instance_profile(InstanceProfileName=role)["InstanceProfile"]
    assert [r["RoleName"] for r in profile["Roles"]] == [role]
