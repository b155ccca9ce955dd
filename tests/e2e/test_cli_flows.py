"""The CLI as an operator uses it: demo, plan/run/status/report, Ctrl-C and resume."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import PLAYBOOKS, run_cli, write_playbook

pytestmark = pytest.mark.e2e


def test_demo_runs_the_baseline_on_the_sandbox(tmp_path: Path) -> None:
    exe = Path(sys.executable).parent / "migrate"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    started = time.monotonic()
    proc = subprocess.run(
        [str(exe), "demo"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert time.monotonic() - started < 120
    html = (tmp_path / "state" / "demo" / "plan.html").read_text()
    assert "<html" in html and "alias/migrate-ftr" in html
    assert ": done in" in proc.stdout
    assert "Traceback" not in proc.stderr
    # Stop-writes is enforced, and the demo shows it: each database was in its lockdown group
    # alone (as AWS answered) once its stop-writes gate was approved.
    locked = [line for line in proc.stdout.splitlines() if "stop-writes enforced on" in line]
    assert len(locked) == 2, proc.stdout[-3000:]
    for line in locked:
        group = line.split("(")[1].split(",")[0]
        assert group.startswith("sg-") and f"AWS shows {group};" in line, line


def test_plan_run_status_report_through_the_cli(endpoint: str, aws, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    aws("s3").create_bucket(Bucket="cli-bucket")
    db = tmp_path / "cli.db"
    book = str(PLAYBOOKS / "s3-default-encryption.yaml")
    plan = run_cli(
        "plan", book, "--json", "--report", str(tmp_path / "plan.md"), state=db, endpoint=endpoint
    )
    assert plan.returncode == 0, plan.stderr
    body = json.loads(plan.stdout)
    assert body["plan_id"].startswith("p-")
    assert "cli-bucket" in (tmp_path / "plan.md").read_text()

    run = run_cli("-q", "run", "--plan", body["plan_id"], state=db, endpoint=endpoint)
    assert run.returncode == 0, run.stderr
    run_id = run.stdout.split("run ")[-1].split(":")[0]

    status = json.loads(run_cli("status", run_id, "--json", state=db).stdout)
    assert status["status"] == "done" and status["plan_id"] == body["plan_id"]
    report = run_cli("report", run_id, state=db)
    assert "PutBucketEncryption" in report.stdout and "cli-bucket" in report.stdout
    listing = run_cli("status", state=db)
    assert run_id in listing.stdout

    perms = json.loads(run_cli("permissions", book).stdout)
    actions = {a for s in perms["Statement"] for a in s["Action"]}
    assert {"kms:CreateKey", "s3:PutEncryptionConfiguration", "sts:GetCallerIdentity"} <= actions


def test_ctrl_c_during_a_wait_leaves_the_run_resumable(endpoint: str, tmp_path: Path) -> None:
    book = write_playbook(
        tmp_path / "w.yaml",
        "name: ctrl-c\nsteps:\n  - id: soak\n    uses: core.wait\n    with: {seconds: 3}\n"
        "  - id: after\n    uses: core.wait\n",
    )
    db = tmp_path / "c.db"
    env = dict(os.environ, MIGRATE_STATE=str(db), AWS_ENDPOINT_URL=endpoint)
    exe = Path(sys.executable).parent / "migrate"
    proc = subprocess.Popen(
        [str(exe), "run", str(book), "--yes"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    # Interrupt once the run is really inside its wait (start-up can be slow on a busy machine).
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        rows: list[tuple[str]] = []
        if db.exists():
            conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
            try:
                rows = conn.execute("SELECT status FROM actions").fetchall()
            except sqlite3.OperationalError:
                rows = []
            finally:
                conn.close()
        if ("waiting",) in rows:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _out, err = proc.communicate(timeout=20)
    assert proc.returncode == 130, err
    assert "resumable" in err and "Traceback" not in err
    runs = json.loads(run_cli("status", "--json", state=db).stdout)["runs"]
    assert runs[0]["status"] == "interrupted"
    time.sleep(2)
    resumed = run_cli("-q", "resume", runs[0]["id"], state=db, endpoint=endpoint)
    assert resumed.returncode == 0, resumed.stderr
    assert ": done" in resumed.stdout


def test_errors_are_one_paragraph_without_traceback(tmp_path: Path) -> None:
    db = tmp_path / "e.db"
    for args, code in (
        (["status", "r-nope"], 2),
        (["approve", "r-nope", "x"], 2),
        (["run", "--plan", "p-nope"], 2),
        (["resume", "r-nope"], 2),
        (["steps", "s3.nope"], 2),
    ):
        proc = run_cli(*args, state=db)
        assert proc.returncode == code, (args, proc.stderr)
        assert proc.stderr.startswith("Error: ") and "Traceback" not in proc.stderr
    # AWS unreachable while planning: one paragraph naming the step, not a botocore traceback.
    unreachable = run_cli(
        "--region",
        "us-east-1",
        "plan",
        str(PLAYBOOKS / "kms-key.yaml"),
        state=db,
        endpoint="http://127.0.0.1:9",
    )
    assert unreachable.returncode == 1, unreachable.stderr
    assert unreachable.stderr.startswith("Error: step 'kms': Could not reach AWS")
    assert "Traceback" not in unreachable.stderr
    debug = run_cli("--debug", "status", "r-nope", state=db)
    assert "Traceback" in debug.stderr
