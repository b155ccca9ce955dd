"""`migrate trail usage --source DIR` on a folder of downloaded logs, with no AWS credentials at all.

The CLI runs as a subprocess whose environment has no AWS variable, whose AWS config and
credentials files are empty, whose instance-metadata lookup is off, and whose endpoint points at a
closed port on 127.0.0.1: any AWS request would fail the command, so its success proves that none
is needed. The usage must be complete; what only IAM and EC2 know is skipped, said once, and the
stored report says it is not enriched.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from migrate import commands
from migrate.cloudtrail import api, persist
from migrate.commands import Settings
from migrate.store import open_store
from tests.support.cloudtrail_synth import ACCOUNT, RecordFactory, SynthUser, log_file, log_key

pytestmark = pytest.mark.e2e

NOW = datetime.now(UTC)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _offline_env(tmp_path: Path) -> dict[str, str]:
    empty = tmp_path / "empty-aws-file"
    empty.write_text("")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.pop("MIGRATE_STATE", None)
    env.update(
        AWS_CONFIG_FILE=str(empty),
        AWS_SHARED_CREDENTIALS_FILE=str(empty),
        AWS_EC2_METADATA_DISABLED="true",
        AWS_ENDPOINT_URL=f"http://127.0.0.1:{_closed_port()}",
    )
    return env


def _write_logs(root: Path, files: int = 20, per_file: int = 150) -> list[dict[str, Any]]:
    everything: list[dict[str, Any]] = []
    start = (NOW - timedelta(days=3)).replace(hour=0, minute=0, second=0, microsecond=0)
    for n in range(files):  # enough files for the worker processes
        records = list(RecordFactory(seed=300 + n, start=start).records(per_file))
        everything += records
        path = root / log_key(ACCOUNT, "us-east-1", start, n)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(log_file(records))
    return everything


def _calls_per_key(records: list[dict[str, Any]]) -> dict[str, int]:
    calls: Counter[str] = Counter()
    for r in records:
        key = (r.get("userIdentity") or {}).get("accessKeyId", "")
        if key.startswith("AKIA"):
            calls[key] += 1
    return dict(calls)


def _migrate(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("migrate", path=str(Path(sys.executable).parent)) or "migrate"
    return subprocess.run(
        [exe, *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


def test_a_folder_of_logs_is_analysed_without_any_aws_credentials(tmp_path: Path) -> None:
    logs = tmp_path / "downloaded-logs"
    records = _write_logs(logs)
    state = tmp_path / "state" / "migrate.db"
    env = _offline_env(tmp_path)

    proc = _migrate(env, "--state", str(state), "trail", "usage", "--source", str(logs), "--json")
    assert proc.returncode == 0, proc.stderr[-3000:]
    data = json.loads(proc.stdout)
    assert {k["principal"]: k["calls"] for k in data["keys"]} == _calls_per_key(records)
    assert data["enriched"] is False
    assert data["not_enriched_reason"] == api.NO_CREDENTIALS
    assert data["ips"] == {} and all(k["iam"] is None for k in data["keys"])
    get = next(
        c
        for k in data["keys"]
        if k["principal"] == "AKIAEXAMPLEAPP000001"
        for c in k["actions"]
        if c["event_name"] == "GetObject"
    )
    assert get["resources"] == [f"arn:aws:s3:::app-bucket-{n}/data/*" for n in range(4)]
    # One clear line, on stderr (the JSON document stays clean), says what was skipped and why.
    notes = [line for line in proc.stderr.splitlines() if "not enriched" in line]
    assert len(notes) == 1, proc.stderr
    assert "no AWS credentials were found" in notes[0] and "IP attribution" in notes[0]
    assert "Traceback" not in proc.stderr

    # The stored report says so too, and keys-to-roles gets the reason to refuse switching.
    store = open_store(str(state))
    try:
        report_id = persist.latest_report_id(store)
        assert report_id is not None
        stored = persist.load_report(store, report_id)
    finally:
        store.close()
    assert stored is not None and stored.enriched is False
    reason = stored.refuse_switching_reason()
    assert reason is not None and "not enriched" in reason and report_id in reason

    # The text form (a second run reads nothing new) shows the keys without an IAM status.
    text = _migrate(env, "--state", str(state), "trail", "usage", "--source", str(logs))
    assert text.returncode == 0, text.stderr[-3000:]
    assert "IAM: not asked (report not enriched)" in text.stdout
    assert "0 read now, 20 already ingested" in text.stdout
    md = _migrate(env, "--state", str(state), "trail", "usage", "--source", str(logs), "--md")
    assert "**not enriched: no AWS credentials were found" in md.stdout
    assert "| not asked |" in md.stdout


def test_sources_that_need_aws_still_say_credentials_are_missing(tmp_path: Path) -> None:
    env = _offline_env(tmp_path)
    state = str(tmp_path / "state" / "migrate.db")
    proc = _migrate(env, "--state", state, "trail", "usage", "--source", "s3://some-trail-bucket")
    assert proc.returncode != 0
    assert "No AWS credentials were found" in proc.stderr and "Traceback" not in proc.stderr


def test_credentials_of_another_account_do_not_enrich(
    settings: Settings, aws: Any, tmp_path: Path
) -> None:
    """Logs of account B read with account A's credentials (moto's 123456789012): A's IAM and
    EC2 would describe the wrong keys and instances, so the report is not enriched."""
    logs = tmp_path / "other-account"
    other = "210987654321"
    users = (SynthUser("b-app", "AKIAOTHERACCOUNT0001", "198.51.100.20"),)
    start = (NOW - timedelta(days=2)).replace(hour=0, minute=0, second=0, microsecond=0)
    records = []
    for record in RecordFactory(seed=5, start=start, users=users).records(300):
        identity = record["userIdentity"]
        if "arn" in identity:
            identity["arn"] = identity["arn"].replace(ACCOUNT, other)
        records.append(record)
    path = logs / log_key(other, "us-east-1", start, 1)
    path.parent.mkdir(parents=True)
    path.write_bytes(log_file(records))
    report = commands.trail_usage(settings, str(logs), since="30d", attribute=True)
    assert report.enriched is False
    assert report.not_enriched_reason == (
        f"the AWS credentials are account {ACCOUNT}'s, the logs' keys belong to {other}"
    )
    assert report.ips == {} and all(k.iam is None for k in report.keys)
    assert report.refuse_switching_reason() is not None
