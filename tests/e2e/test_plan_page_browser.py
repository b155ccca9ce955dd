"""The plan page in a real headless browser (Debian's chromium): one bar per planned action,
a screenshot, and no console errors."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import run_cli, write_playbook

pytestmark = pytest.mark.e2e
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--enable-logging=stderr",
    "--v=0",
]

BOOK = """\
name: browser check
steps:
  - id: kms
    uses: kms.ensure_key
  - id: s3
    uses: s3.default_encryption
    approve: true
    with:
      kms_key: "{{ steps.kms.key_arn }}"
"""


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (.ci/run installs it)")
def test_plan_page_renders_one_bar_per_action(endpoint: str, aws: Any, tmp_path: Path) -> None:
    for b in ("page-a", "page-b", "page-c"):
        aws("s3").create_bucket(Bucket=b)
    book = write_playbook(tmp_path / "b.yaml", BOOK)
    page = tmp_path / "plan.html"
    plan = run_cli(
        "-q", "plan", str(book), "--report", str(page), state=tmp_path / "s.db", endpoint=endpoint
    )
    assert plan.returncode == 0, plan.stderr
    assert CHROMIUM is not None
    profile = tmp_path / "profile"
    dom = subprocess.run(
        [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "--dump-dom", page.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert dom.returncode == 0, dom.stderr[-2000:]
    bars = re.findall(r'<rect class="action-bar[^"]*"', dom.stdout)
    assert len(bars) == 4  # the key and three buckets
    assert len(re.findall(r'<polygon class="gate"', dom.stdout)) == 3

    shot = tmp_path / "plan.png"
    screenshot = subprocess.run(
        [
            CHROMIUM,
            *FLAGS,
            f"--user-data-dir={profile}",
            f"--screenshot={shot}",
            "--window-size=1280,1600",
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
        for line in (dom.stderr + screenshot.stderr).splitlines()
        if "CONSOLE" in line or "Uncaught" in line or "Failed to load resource" in line
    ]
    assert console == []
