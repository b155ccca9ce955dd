"""The DR evidence report and the drill history in a real headless browser (Debian's chromium),
made through the CLI from two drills on the moto server: one row per database and bucket, one
RTO point per drill, the sandbox note, a screenshot, no console errors."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import PLAYBOOKS, run_cli
from tests.e2e.test_plan_page_browser import CHROMIUM, FLAGS
from tests.functional.test_dr_restore_test import BUCKET, DB, _account

pytestmark = pytest.mark.e2e


def _dom(page: Path, profile: Path) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    return subprocess.run(
        [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "--dump-dom", page.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (.ci/run installs it)")
def test_dr_evidence_and_history_pages(endpoint: str, aws: Any, tmp_path: Path) -> None:
    _account(aws)
    state = tmp_path / "s.db"
    runs = []
    for _ in range(2):
        done = run_cli(
            "-q",
            "run",
            str(PLAYBOOKS / "dr-restore-test.yaml"),
            "--yes",
            "-p",
            f"databases=[{DB}]",
            "-p",
            f"buckets=[{BUCKET}]",
            "-p",
            "check_endpoint=false",  # moto's endpoints resolve nowhere
            state=state,
            endpoint=endpoint,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr
        listing = run_cli("status", "--json", state=state, endpoint=endpoint, check=True)
        runs.append(json.loads(listing.stdout)["runs"][0]["id"])
    page = tmp_path / "dr.html"
    run_cli(
        "dr",
        "report",
        runs[-1],
        "--format",
        "html",
        "-o",
        str(page),
        state=state,
        endpoint=endpoint,
        check=True,
    )
    history = tmp_path / "history.html"
    run_cli(
        "dr",
        "history",
        "--format",
        "html",
        "-o",
        str(history),
        state=state,
        endpoint=endpoint,
        check=True,
    )
    md = run_cli("dr", "report", runs[-1], state=state, endpoint=endpoint, check=True).stdout
    assert f"| {DB} (instance) | point-in-time at" in md
    assert "Measured on: sandbox" in md

    profile = tmp_path / "profile"
    dom = _dom(page, profile)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert len(re.findall(r'<tr class="drill"', dom.stdout)) == 2  # the database and the bucket
    assert "Measured on: sandbox" in dom.stdout
    assert "None: everything the drill created was deleted" in dom.stdout
    assert len(re.findall(r'<circle class="rto-point"', dom.stdout)) == 2  # two drills so far

    hist = _dom(history, profile)
    assert hist.returncode == 0
    assert len(re.findall(r'<tr class="drill"', hist.stdout)) == 4  # 2 runs x (db + bucket)
    assert len(re.findall(r'<circle class="rto-point"', hist.stdout)) == 2

    shot = tmp_path / "dr.png"  # kept by pytest under its basetemp for a look
    screenshot = subprocess.run(
        [
            CHROMIUM or "chromium",
            *FLAGS,
            f"--user-data-dir={profile}",
            f"--screenshot={shot}",
            "--window-size=1280,1400",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert screenshot.returncode == 0
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000
    console = [
        line
        for line in (dom.stderr + hist.stderr + screenshot.stderr).splitlines()
        if "CONSOLE" in line or "Uncaught" in line or "Failed to load resource" in line
    ]
    assert console == []
