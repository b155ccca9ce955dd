"""``migrate demo`` and ``migrate sandbox serve``: the baseline on the embedded legacy account."""

from __future__ import annotations

import os
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import select

from migrate import commands
from migrate.commands import Settings
from migrate.engine.runner import RunOptions
from migrate.errors import EXIT_AWAITING_APPROVAL, BadInputError
from migrate.reports.dr import render_dr_report
from migrate.reports.render import render_plan, render_run_markdown, write_plan_report
from migrate.reports.views import status_table
from migrate.sandbox.seed import seed
from migrate.sandbox.server import SandboxServer, sandbox_env
from migrate.store.models import Resource
from migrate.store.status import ActionStatus, StepStatus

Echo = Callable[[str], None]
DEMO_DIR = Path("state/demo")


def find_playbook(name: str = "ftr-baseline.yaml") -> Path:
    """A shipped playbook: ./playbooks/NAME, else the one beside the package (a source checkout)."""
    for root in (Path.cwd(), Path(__file__).resolve().parents[2]):
        candidate = root / "playbooks" / name
        if candidate.exists():
            return candidate
    raise BadInputError(
        f"cannot find playbooks/{name}; run `migrate demo` from the project directory."
    )


def _point_at(endpoint: str) -> None:
    # A profile name that does not exist would break both boto3 and moto's own EC2 backend.
    os.environ.pop("AWS_PROFILE", None)
    os.environ.update(sandbox_env(endpoint))


def _migrate_command() -> str:
    """How to call migrate from a new shell: `migrate` if it is on PATH, else the path of the
    script that runs now (`.venv/bin/migrate` after `make demo`)."""
    script = Path(sys.argv[0]) if sys.argv and sys.argv[0] else None
    on_path = shutil.which("migrate")
    if script is None or script.name != "migrate":
        return "migrate" if on_path else ".venv/bin/migrate"
    if on_path and Path(on_path).resolve() == script.resolve():
        return "migrate"
    try:
        return os.path.relpath(script)
    except ValueError:
        return str(script)


def _dr_drill(settings: Settings, demo_dir: Path, echo: Echo) -> Path:
    """After the baseline (a major update), the DR drill on its result; returns the evidence."""
    # One database (the one the baseline just re-encrypted: "after major updates") and a bucket;
    # moto publishes no DNS for its endpoints.
    params = ["databases=[legacy-mysql]", "buckets=[legacy-backups]", "check_endpoint=false"]
    options = RunOptions(yes=True, quiet=settings.quiet, max_wait_s=120, echo=echo)
    result = commands.run(
        settings, str(find_playbook("dr-restore-test.yaml")), params, options=options
    )
    evidence = commands.dr_report(settings, result.run_id)
    for fmt in ("md", "html"):
        (demo_dir / f"dr-evidence.{fmt}").write_text(render_dr_report(evidence, fmt), "utf-8")
    return demo_dir / "dr-evidence.html"


def _show_lockdowns(settings: Settings, run_id: str, shown: set[str], echo: Echo) -> None:
    """After the stop-writes approvals: each database's groups as AWS now has them, beside the
    ones the run recorded, so the demo shows that writes are stopped by the network."""
    with settings.store().read() as session:
        locks = session.scalars(
            select(Resource).where(Resource.run_id == run_id, Resource.kind == "rds:lockdown")
        ).all()
        found = [(r.identifier, r.region, dict(r.details or {})) for r in locks]
    for db_id, region, details in found:
        if db_id in shown:
            continue
        shown.add(db_id)
        rds = settings.aws().client("rds", region)
        if details.get("cluster"):
            live = [
                {**c, "DBInstanceIdentifier": c["DBClusterIdentifier"]}
                for c in rds.describe_db_clusters()["DBClusters"]
            ]
        else:
            live = rds.describe_db_instances()["DBInstances"]
        now = next(
            (
                [g["VpcSecurityGroupId"] for g in d.get("VpcSecurityGroups") or ()]
                for d in live
                if d["DBInstanceIdentifier"] == db_id and not d.get("StorageEncrypted")
            ),
            None,
        )
        echo(
            f"demo: stop-writes enforced on {db_id}: security groups "
            f"{', '.join(details.get('groups') or ()) or '(none)'} replaced by "
            f"{details.get('name')} ({details.get('lock_group')}, no inbound rule); "
            f"AWS shows {', '.join(now) if now is not None else '(renamed already)'}; the "
            "encrypted copy keeps the original groups"
        )


def run_demo(settings: Settings, keep: bool = False, echo: Echo = print) -> int:
    """Seed a fresh sandbox, plan and run the baseline with --yes, approve what a human would,
    and print where everything is. Returns the run's exit code."""
    demo_dir = DEMO_DIR
    if settings.state is None:
        # Each demo gets a fresh sandbox account, so a fresh state store too.
        for name in ("migrate.db", "migrate.db-wal", "migrate.db-shm"):
            (demo_dir / name).unlink(missing_ok=True)
        settings.state = str(demo_dir / "migrate.db")
    shutil.rmtree(demo_dir / "sandbox", ignore_errors=True)
    playbook = find_playbook()
    started = time.monotonic()
    with SandboxServer() as server:
        _point_at(server.endpoint_url)
        settings.endpoint_url = server.endpoint_url
        settings.region = settings.region or "us-east-1"
        settings.profile = None
        summary = seed(server.endpoint_url, demo_dir / "sandbox")
        echo(
            f"Sandbox account {summary.account_id} at {server.endpoint_url}: "
            f"{len(summary.buckets)} buckets, {len(summary.db_instances)} databases, "
            f"{len(summary.users)} IAM users with access keys, config files in "
            f"{summary.config_dir}"
        )
        # The sandbox has no week to spare: windows are 0, every key counts as old enough.
        params = [
            "watch_window=0s",
            "retire_window=0s",
            "cleanup_soak=0s",
            "unused_days=0",
            f"config_paths={summary.config_dir}",
            # Company-owned contacts, as the operator would give them (ACOM-001).
            "security_contact=security@example.com",
            "operations_contact=operations@example.com",
            "billing_contact=billing@example.com",
            "contact_phone=+1 555 0100",
        ]
        plan_id, plan = commands.plan(settings, str(playbook), params)
        body = plan.body()
        body["plan_id"] = plan_id
        plan_html = demo_dir / "plan.html"
        write_plan_report(body, plan_html)
        write_plan_report(body, demo_dir / "plan.md")
        echo("")
        echo(render_plan(body))
        echo("")
        options = RunOptions(yes=True, quiet=settings.quiet, max_wait_s=120, echo=echo)
        result = commands.run(settings, None, plan_id=plan_id, options=options)
        # What an operator does on migration night: approve the remaining (destructive) gates.
        rounds = 0
        locked: set[str] = set()
        while result.exit_code == EXIT_AWAITING_APPROVAL and rounds < 10:
            rounds += 1
            status = commands.status(settings, result.run_id)
            for step in status["steps"]:
                if step["status"] == StepStatus.AWAITING_APPROVAL:
                    # One gate kind at a time, as `migrate approve` asks an operator to.
                    waiting = {
                        a["gate"] or "approve"
                        for a in step["actions"]
                        if a["status"] == ActionStatus.AWAITING_APPROVAL
                    }
                    for gate in sorted(waiting):
                        echo(f"demo: approving {step['id']} {gate} (as the operator would)")
                        commands.approve(settings, result.run_id, step["id"], gate=gate)
            result = commands.resume(
                settings,
                result.run_id,
                RunOptions(yes=True, quiet=settings.quiet, max_wait_s=120, echo=echo),
            )
            _show_lockdowns(settings, result.run_id, locked, echo)
        report_path = demo_dir / "report.md"
        report_path.write_text(
            render_run_markdown(commands.report(settings, result.run_id)), encoding="utf-8"
        )
        echo("")
        drill = _dr_drill(settings, demo_dir, echo)

        echo(status_table(commands.status(settings, result.run_id)))
        echo("")
        echo(f"run {result.run_id}: {result.status} in {time.monotonic() - started:.1f}s")
        echo(f"plan report:  {plan_html}")
        echo(f"run report:   {report_path}")
        echo(f"DR evidence:  {drill} (measured in the sandbox: restores are instant there)")
        echo(f"state store:  {settings.state}")
        echo(f"open:         {plan_html} in a browser (the page for the planning meeting)")
        echo(f"try:          {_migrate_command()} --state {settings.state} status {result.run_id}")
        if keep:
            echo("")
            echo("The sandbox keeps running; in another shell:")
            for key, value in sandbox_env(server.endpoint_url).items():
                echo(f"export {key}={value}")
            echo("Ctrl-C ends it.")
            try:
                while True:
                    time.sleep(3600)
            except KeyboardInterrupt:
                pass
        return result.exit_code


def serve(port: int = 0, workdir: Path = Path("state/sandbox"), echo: Echo = print) -> None:
    """Start and seed the sandbox, print the environment to use it, and serve until Ctrl-C."""
    os.environ.pop("AWS_PROFILE", None)
    shutil.rmtree(workdir, ignore_errors=True)
    with SandboxServer(port=port) as server:
        summary = seed(server.endpoint_url, workdir)
        echo("# The sandbox legacy account is up. Paste these lines into another shell:")
        for key, value in sandbox_env(server.endpoint_url).items():
            echo(f"export {key}={value}")
        echo(f"# Config files with credentials: {summary.config_dir}")
        echo("# Ctrl-C stops the sandbox (its state is in memory only).")
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            echo("sandbox stopped")
