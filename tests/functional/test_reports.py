"""Plan and run reports: every action, every risk, gates, downtime, no secret values."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from migrate import commands
from migrate.commands import Settings
from migrate.engine.runner import RunOptions
from migrate.reports.render import render_plan_report, render_run_report, write_plan_report
from migrate.reports.timeline import schedule
from tests.conftest import PLAYBOOKS, write_playbook

GATED = """\
name: gated report
steps:
  - id: kms
    uses: kms.ensure_key
  - id: s3
    uses: s3.default_encryption
    approve: true
    with:
      kms_key: "{{ steps.kms.key_arn }}"
  - id: soak
    uses: core.wait
    depends_on: []
    with: {minutes: 5}
"""


def _plan_body(settings: Settings, book: str) -> dict[str, Any]:
    plan_id, plan = commands.plan(settings, book)
    body = plan.body()
    body["plan_id"] = plan_id
    return body


def test_plan_report_lists_every_action_risk_and_gate(
    settings: Settings, aws: Any, tmp_path: Path
) -> None:
    for b in ("rep-a", "rep-b"):
        aws("s3").create_bucket(Bucket=b)
    book = write_playbook(tmp_path / "g.yaml", GATED)
    body = _plan_body(settings, str(book))
    actions = [a for s in body["steps"] for a in s["actions"]]
    for fmt in ("md", "html"):
        text = render_plan_report(body, fmt)
        for a in actions:
            assert a["target"] in text
        for risk in {r for a in actions for r in a["risks"]}:
            assert risk in text
        assert f"migrate run --plan {body['plan_id']}" in text
        assert "migrate approve RUN s3 --target rep-a" in text
        assert "(known after kms)" in text
    html = render_plan_report(body, "html")
    assert html.count('class="action-bar') == len(actions)
    assert html.count('<polygon class="gate"') == 2  # both buckets are gated
    # Self-contained: no external scripts, stylesheets or images.
    assert not re.search(r"(src|href)=\"https?://", html)


def test_timeline_runs_independent_steps_in_parallel(
    settings: Settings, aws: Any, tmp_path: Path
) -> None:
    aws("s3").create_bucket(Bucket="par-a")
    book = write_playbook(tmp_path / "g.yaml", GATED)
    body = _plan_body(settings, str(book))
    bars, span = schedule(body)
    soak = next(b for b in bars if b.step == "soak")
    assert soak.start_s == 0 and soak.duration_s == 300
    assert span == 300  # the wait is the longest path, the key and bucket run beside it


def test_report_files_by_extension(settings: Settings, aws: Any, tmp_path: Path) -> None:
    body = _plan_body(settings, str(PLAYBOOKS / "kms-key.yaml"))
    write_plan_report(body, tmp_path / "p.md")
    write_plan_report(body, tmp_path / "p.html")
    assert (tmp_path / "p.md").read_text().startswith("# Plan")
    assert "<!doctype html>" in (tmp_path / "p.html").read_text()


def test_run_report_has_planned_vs_actual_approvals_journal(
    settings: Settings, aws: Any, tmp_path: Path
) -> None:
    aws("s3").create_bucket(Bucket="run-rep")
    book = write_playbook(tmp_path / "g.yaml", GATED.replace("{minutes: 5}", "{seconds: 0}"))
    result = commands.run(settings, str(book), options=RunOptions(quiet=True))
    assert result.status == "awaiting-approval"
    pending = commands.report(settings, result.run_id)["pending"]
    assert [(p["step"], p["target"], p["status"]) for p in pending] == [
        ("s3", "run-rep", "awaiting-approval")
    ]
    commands.approve(settings, result.run_id, "s3")
    commands.resume(settings, result.run_id, RunOptions(quiet=True))
    data = commands.report(settings, result.run_id)
    assert data["schema"] == "migrate.run-report/1"
    assert data["pending"] == []
    acts = [a for s in data["steps"] for a in s["actions"]]
    assert all(a["actual_s"] is not None and a["planned_s"] >= 0 for a in acts)
    for fmt in ("md", "html"):
        text = render_run_report(data, fmt)
        assert "PutBucketEncryption" in text and "run-rep" in text
        assert data["approvals"][0]["by"] in text
    json.dumps(data)  # the JSON form is serialisable as is


def test_status_table_fits_80_columns(settings: Settings, aws: Any, tmp_path: Path) -> None:
    from migrate.reports.views import status_table

    for b in ("a-bucket-with-a-rather-long-name-for-the-table", "bbb"):
        aws("s3").create_bucket(Bucket=b)
    book = write_playbook(tmp_path / "g.yaml", GATED)
    result = commands.run(settings, str(book), options=RunOptions(quiet=True, max_wait_s=0))
    table = status_table(commands.status(settings, result.run_id))
    assert "awaiting-approval" in table and "approve:" in table and "until" in table
    assert max(len(line) for line in table.splitlines()) <= 80


def test_status_names_each_waiting_gate_with_its_exact_command(
    settings: Settings, aws: Any, tmp_path: Path
) -> None:
    """Per target: which gate waits and the command that approves it; step ids in full."""
    from migrate.reports.views import status_table

    for b in ("a-bucket-with-a-rather-long-name-for-the-table", "bbb"):
        aws("s3").create_bucket(Bucket=b)
    book = write_playbook(tmp_path / "g.yaml", GATED)
    result = commands.run(settings, str(book), options=RunOptions(quiet=True, max_wait_s=0))
    data = commands.status(settings, result.run_id)
    table = status_table(data)
    joined = table.replace(" \\\n", " ")
    for step in data["steps"]:
        assert f"  {step['id']}" in table  # never truncated
        for a in step["actions"]:
            if a["status"] == "awaiting-approval":
                assert f"{a['target']}: waits for {a['gate'] or 'approve'}" in table
                command = f"migrate approve {result.run_id} {step['id']} --target {a['target']}"
                assert " ".join(joined.split()).count(command) >= 1, table
    assert max(len(line) for line in table.splitlines()) <= 80


RDS_BOOK = """\
name: night
approvers:
  cut-over: "DBA on call (#db-oncall)"
steps:
  - id: kms
    uses: kms.ensure_key
  - id: rds
    uses: rds.encrypt
    with:
      kms_key: "{{ steps.kms.key_arn }}"
      cleanup_soak: 7d
  - id: soak
    uses: core.wait
    depends_on: []
    with: {days: 14}
"""


def _mysql(aws: Any, *names: str) -> None:
    for name in names or ("night-db",):
        aws("rds").create_db_instance(
            DBInstanceIdentifier=name,
            DBInstanceClass="db.t3.micro",
            Engine="mysql",
            MasterUsername="admin",
            MasterUserPassword="Not-A-Real-Secret-1",
            AllocatedStorage=20,
        )


def test_a_page_a_planning_meeting_can_read(settings: Settings, aws: Any, tmp_path: Path) -> None:
    """What the change board reads: a Terraform-like change line, one-off and monthly cost,
    timeline rows named by phase under their resource (not the database seven times), the
    migration night on its own scale beside a two-week wait, and per gate who approves (the
    playbook's approvers over the defaults) with the exact --gate command."""
    _mysql(aws, "night-db", "zz-second-db")
    body = _plan_body(settings, str(write_playbook(tmp_path / "n.yaml", RDS_BOOK)))
    html = render_plan_report(body, "html")
    md = render_plan_report(body, "md")
    for text in (html, md):
        line = re.search(r"Plan: [^<*]*", text)
        assert line and line[0].startswith(
            "Plan: 7 to create, 0 to change, 4 to delete/replace (7 checks"
        ), line
        assert "DBA on call (#db-oncall)" in text  # the playbook's approver for cut-over
        assert "application owner" in text  # the default one for stop-writes
        assert "migrate approve RUN rds --target night-db --gate cut-over" in text
    assert "$1.00</b>a month" in html  # the key; the snapshots and copies are one-off
    main, night = html.split("The whole plan")[1], html.split("The whole plan")[0]
    assert "on its own scale" in night and "final snapshot" in night
    # The resource named once, each phase on its own row, in execution order.
    assert main.count(">night-db</text>") == 1
    phases = re.findall(r'class="phase-label"[^>]*>([^<]+)<', main)
    assert phases[:4] == ["warm up", "stop writes", "final snapshot", "restore"], phases
    assert phases.index("soak") < phases.index("cleanup")
    # On the night's own scale the downtime band is wide; beside 14 days it would be a sliver.
    # Each database's night lined up at its own stop-writes: the second one's is not pushed a
    # week out by the first one's soak.
    bands = [float(w) for w in re.findall(r'class="downtime-window"[^>]*width="([\d.]+)"', night)]
    assert len(bands) == 2 and min(bands) > 300, bands


def test_run_report_puts_what_waits_for_a_person_first(
    settings: Settings, aws: Any, tmp_path: Path
) -> None:
    aws("s3").create_bucket(Bucket="run-cards")
    book = write_playbook(tmp_path / "g.yaml", GATED.replace("{minutes: 5}", "{seconds: 0}"))
    result = commands.run(settings, str(book), options=RunOptions(quiet=True))
    html = render_run_report(commands.report(settings, result.run_id), "html")
    assert "waiting for an approval" in html and "actions done" in html
    first = html.index("Waiting for a person")
    assert first < html.index("What remains for the FTR") < html.index("<h2>s3 (")
    assert f"migrate approve {result.run_id} s3 --target run-cards" in html
    assert 'aria-label="actual against planned' in html
