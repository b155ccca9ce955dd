"""The ``migrate`` command line: parse, call :mod:`migrate.commands`, render, map errors to exits.

Every :class:`MigrateError` is caught here and printed as one paragraph with its exit code;
``--debug`` re-raises it for a traceback.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Any, NoReturn

import click
from botocore.exceptions import BotoCoreError, ClientError
from sqlalchemy.exc import DBAPIError

from migrate import __version__, commands
from migrate.aws import describe_aws_failure
from migrate.commands import RunResult, Settings
from migrate.engine.base import Action
from migrate.engine.runner import (
    CONFIRM_ALL,
    CONFIRM_NO,
    CONFIRM_QUIT,
    CONFIRM_YES,
    Interrupted,
    RunOptions,
)
from migrate.errors import EXIT_FAILED, EXIT_INTERRUPTED, MigrateError
from migrate.reports.render import render_plan, write_plan_report
from migrate.store.db import describe_store_failure
from migrate.util import format_duration, parse_duration


class MigrateGroup(click.Group):
    """Catches MigrateError once, for every command."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except MigrateError as exc:
            if _debug(ctx):
                raise
            _fail(exc.message, exc.exit_code)
        except (ClientError, BotoCoreError) as exc:
            # Any AWS failure a command did not turn into a domain error: still one paragraph.
            if _debug(ctx):
                raise
            error = describe_aws_failure(exc)
            _fail(error.message, error.exit_code)
        except DBAPIError as exc:
            # The store went away mid-command (a lost PostgreSQL connection, a lock timeout).
            if _debug(ctx):
                raise
            _fail(describe_store_failure(exc), EXIT_FAILED)
        except Interrupted:
            _fail(
                "Interrupted. The run is saved and resumable: `migrate resume RUN_ID` continues "
                "where it stopped (`migrate status` shows the id).",
                EXIT_INTERRUPTED,
            )
        except KeyboardInterrupt:
            _fail("Interrupted; nothing was left half-written.", EXIT_INTERRUPTED)


def _debug(ctx: click.Context) -> bool:
    settings = ctx.find_object(Settings)
    return bool(settings and settings.debug) or "--debug" in sys.argv


def _fail(message: str, code: int) -> NoReturn:
    click.echo(f"Error: {message}", err=True)
    sys.exit(code)


pass_settings = click.make_pass_decorator(Settings)


@click.group(cls=MigrateGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="migrate")
@click.option(
    "--state",
    envvar="MIGRATE_STATE",
    help="State store: a SQLite path, or postgresql+psycopg://USER@HOST/DB?sslmode=require for a "
    "team (pip install 'migrate[postgres]') [env MIGRATE_STATE; default state/migrate.db].",
)
@click.option("--profile", envvar="AWS_PROFILE", help="AWS profile [env AWS_PROFILE].")
@click.option("--region", help="AWS region (default: the profile's or AWS_REGION).")
@click.option(
    "--endpoint-url",
    envvar="AWS_ENDPOINT_URL",
    help="AWS endpoint, e.g. the sandbox's [env AWS_ENDPOINT_URL].",
)
@click.option("--debug", is_flag=True, help="Show tracebacks and debug logs.")
@click.option("--quiet", "-q", is_flag=True, help="Only errors and final results; no progress.")
@click.pass_context
def cli(
    ctx: click.Context,
    state: str | None,
    profile: str | None,
    region: str | None,
    endpoint_url: str | None,
    debug: bool,
    quiet: bool,
) -> None:
    """Resumable, dry-run-able security migrations for a legacy AWS account (FTR).

    Plan a playbook (read-only), review the plan, run it step by step, resume after failures,
    approve gates, and report what happened. Start with `migrate demo`.
    """
    logging.basicConfig(level=logging.DEBUG if debug else logging.WARNING)
    # botocore/urllib3 DEBUG logs print request bodies (SecretString, passwords): never show them.
    for noisy in ("botocore", "boto3", "urllib3", "s3transfer"):
        logging.getLogger(noisy).setLevel(logging.INFO if debug else logging.WARNING)
    _log_to_file(state)
    ctx.obj = Settings(
        state=state,
        profile=profile,
        region=region,
        endpoint_url=endpoint_url or None,
        quiet=quiet,
        debug=debug,
    )


def _log_to_file(state: str | None) -> None:
    """Append migrate's own log (progress, decisions; never parameter values) to migrate.log
    beside the state DB, so that an operator can read what happened overnight."""
    from migrate.store import resolve_url

    url = resolve_url(state)
    if not url.startswith("sqlite:///"):
        return
    log_path = Path(url.removeprefix("sqlite:///")).parent / "migrate.log"
    try:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(log_path, encoding="utf-8")
    except OSError:
        return  # a read-only state dir must not stop `migrate status`
    handler.setFormatter(
        logging.Formatter("%(asctime)s %(process)d %(name)s %(levelname)s %(message)s")
    )
    logger = logging.getLogger("migrate")
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    # The terminal gets progress through click; the root handler only shows warnings.
    logger.propagate = logging.getLogger().level <= logging.DEBUG


def _echo(settings: Settings) -> Any:
    def echo(message: str) -> None:
        if not settings.quiet:
            click.echo(message, err=True)

    return echo


def _confirm(step_id: str, action: Action) -> str:
    click.echo(f"\n[{step_id}] {action.summary}", err=True)
    if action.gate:
        click.echo(f"  gate: {action.gate}", err=True)
    answer = click.prompt(
        "  Perform this action? (y)es/(n)o/(a)ll remaining/(q)uit",
        type=click.Choice(["y", "n", "a", "q"]),
        default="n",
        err=True,
    )
    return {"y": CONFIRM_YES, "n": CONFIRM_NO, "a": CONFIRM_ALL, "q": CONFIRM_QUIT}[answer]


def _run_options(
    settings: Settings,
    yes: bool,
    only: tuple[str, ...],
    until: str | None,
    step_mode: bool,
    max_wait: str,
) -> RunOptions:
    return RunOptions(
        yes=yes,
        only=list(only) or None,
        until=until,
        confirm=_confirm if step_mode else None,
        max_wait_s=parse_duration(max_wait),
        quiet=settings.quiet,
        debug=settings.debug,
        echo=_echo(settings),
    )


def _param_flags(func: Any) -> Any:
    """``-p KEY=VALUE`` (repeatable) and ``--params FILE``, shared by plan, run and permissions."""
    func = click.option(
        "--params",
        "params_file",
        type=click.Path(dir_okay=False),
        help="YAML/JSON file of parameters.",
    )(func)
    return click.option(
        "-p",
        "--param",
        "params",
        multiple=True,
        metavar="KEY=VALUE",
        help="Set a playbook parameter (repeatable).",
    )(func)


def _run_flags(func: Any) -> Any:
    func = click.option(
        "--max-wait",
        default="30m",
        show_default=True,
        help="How long to poll waits (snapshots, watch windows) before exiting 4 to resume later.",
    )(func)
    func = click.option(
        "--step", "step_mode", is_flag=True, help="Ask before each action (y/n/all/quit)."
    )(func)
    func = click.option("--until", metavar="STEP_ID", help="Stop after this step.")(func)
    func = click.option(
        "--only", multiple=True, metavar="STEP_ID", help="Run only these steps (repeatable)."
    )(func)
    return click.option(
        "--yes",
        "-y",
        is_flag=True,
        help="Approve non-destructive gates (never deletions or "
        "cut-overs unless the playbook allows it).",
    )(func)


def _finish_run(result: RunResult, settings: Settings) -> NoReturn:
    data = commands.status(settings, result.run_id)
    if not settings.quiet:
        click.echo(_status_table(data))
    elif result.status == "failed":
        # Even --quiet says why: "fix the cause shown above" needs a cause.
        for s in data["steps"]:
            errors = [a for a in s["actions"] if a["status"] == "failed" and a["error"]]
            for a in errors:
                click.echo(f"{s['id']}: {a['target']}: {a['error']}", err=True)
            if s["status"] == "failed" and s["error"] and not errors:
                click.echo(f"{s['id']}: {s['error']}", err=True)
    hint = {
        "done": "",
        "paused": f"Continue with `migrate resume {result.run_id}`.",
        "failed": f"Fix the cause shown above, then `migrate resume {result.run_id}`.",
        "awaiting-approval": "Approve with `migrate approve "
        f"{result.run_id} STEP_ID [--target RESOURCE]`, then `migrate resume {result.run_id}`.",
        "waiting": f"Resume later with `migrate resume {result.run_id}`.",
    }.get(result.status, "")
    for message in result.messages:
        click.echo(message)
    click.echo(f"run {result.run_id}: {result.status}. {hint}".rstrip())
    sys.exit(result.exit_code)


# --- plan --------------------------------------------------------------------------------------------
@cli.command()
@click.argument("playbook", type=click.Path(dir_okay=False))
@_param_flags
@click.option(
    "--report",
    "report_path",
    type=click.Path(dir_okay=False),
    help="Write the plan as FILE.md or FILE.html for the planning meeting.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON.")
@pass_settings
def plan(
    settings: Settings,
    playbook: str,
    params: tuple[str, ...],
    params_file: str | None,
    report_path: str | None,
    as_json: bool,
) -> None:
    """Observe the account and show what PLAYBOOK would change, without changing anything.

    The plan is saved; apply exactly it with `migrate run --plan PLAN_ID` (refused if the account
    changed since).
    """
    plan_id, result = commands.plan(settings, playbook, params, params_file)
    body = result.body()
    body["plan_id"] = plan_id
    if report_path:
        write_plan_report(body, Path(report_path))
    if as_json:
        click.echo(json.dumps(body, indent=2, default=str))
        return
    click.echo(render_plan(body))
    if report_path:
        click.echo(f"Plan report written to {report_path}")


# --- run / resume -------------------------------------------------------------------------------------
@cli.command()
@click.argument("playbook", required=False, type=click.Path(dir_okay=False))
@_param_flags
@click.option("--plan", "plan_id", metavar="PLAN_ID", help="Apply a saved plan (refused if stale).")
@_run_flags
@pass_settings
def run(
    settings: Settings,
    playbook: str | None,
    params: tuple[str, ...],
    params_file: str | None,
    plan_id: str | None,
    yes: bool,
    only: tuple[str, ...],
    until: str | None,
    step_mode: bool,
    max_wait: str,
) -> None:
    """Start a new run of PLAYBOOK (or of a saved plan with --plan).

    Exit codes: 0 done, 1 failed, 2 bad input, 3 awaiting approval, 4 waiting, 5 locked.
    """
    options = _run_options(settings, yes, only, until, step_mode, max_wait)
    result = commands.run(settings, playbook, params, params_file, plan_id, options)
    _finish_run(result, settings)


@cli.command()
@click.argument("run_id")
@click.option(
    "--accept-changes",
    is_flag=True,
    help="Accept playbook edits made since the run started (those steps are re-planned).",
)
@_run_flags
@pass_settings
def resume(
    settings: Settings,
    run_id: str,
    accept_changes: bool,
    yes: bool,
    only: tuple[str, ...],
    until: str | None,
    step_mode: bool,
    max_wait: str,
) -> None:
    """Continue RUN_ID after a failure, an interruption, a wait or an approval."""
    options = _run_options(settings, yes, only, until, step_mode, max_wait)
    changes = commands.playbook_changes(settings, run_id)
    if changes and not accept_changes and sys.stdin.isatty():
        click.echo("The playbook changed since this run started:", err=True)
        for change in changes:
            click.echo(f"  {change.step_id}: {change.change}", err=True)
        accept_changes = click.confirm(
            "Re-plan those steps (done actions are re-observed, not redone) and continue?",
            err=True,
        )
    result = commands.resume(settings, run_id, options, accept_changes=accept_changes)
    _finish_run(result, settings)


# --- status / approve / unlock / rollback / report ---------------------------------------------------
def _status_table(data: dict[str, Any]) -> str:
    lines = [f"run {data['id']}  {data['playbook']}  [{data['status']}]"]
    if data.get("lock"):
        lines.append(f"  locked by {data['lock']['holder']}")
    lines.append(f"  {'STEP':<18} {'STATE':<18} {'PROGRESS':<10} {'WAIT/GATE':<28}")
    for s in data["steps"]:
        acts = [a for a in s["actions"] if a["status"] != "superseded"]
        done = sum(1 for a in acts if a["status"] == "done")
        note = ""
        waits = [a["wait_until"] for a in acts if a["status"] == "waiting" and a["wait_until"]]
        gates = [a for a in acts if a["status"] == "awaiting-approval"]
        if waits:
            note = f"until {min(waits).replace('T', ' ')[:16]}"
        elif any(a["status"] == "waiting" for a in acts):
            note = "polling"
        elif gates:
            note = f"approve: {gates[0]['gate'] or 'step'} ({len(gates)})"
        elif s["error"]:
            note = s["error"][:28]
        lines.append(
            f"  {s['id'][:18]:<18} {s['status'][:18]:<18} {f'{done}/{len(acts)}':<10} {note[:28]}"
        )
        for a in acts:
            if a["status"] == "failed" and a["error"]:
                # Fits 80 columns; `status --json` and `report` have the whole message.
                line = f"    ! {a['target'][:24]}: {a['error']}"
                lines.append(line if len(line) <= 80 else line[:79] + "\u2026")
    return "\n".join(lines)


@cli.command()
@click.argument("run_id", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@pass_settings
def status(settings: Settings, run_id: str | None, as_json: bool) -> None:
    """List runs, or show RUN_ID's steps, actions, progress, waits and gates."""
    data = commands.status(settings, run_id)
    if as_json:
        click.echo(json.dumps(data, indent=2, default=str))
        return
    if run_id is None:
        if not data["runs"]:
            click.echo("No runs yet. Start with `migrate plan PLAYBOOK` or `migrate demo`.")
        for r in data["runs"]:
            click.echo(
                f"{r['id']:<20} {r['status']:<18} {r['updated_at'].replace('T', ' ')}  "
                f"{r['playbook'][:30]}"
            )
        return
    click.echo(_status_table(data))


@cli.command()
@click.argument("run_id")
@click.argument("step_id")
@click.option("--target", metavar="RESOURCE", help="Approve only this resource's gate.")
@click.option(
    "--gate",
    metavar="NAME",
    help="Approve this gate only; before the run reaches it, a standing approval.",
)
@pass_settings
def approve(
    settings: Settings, run_id: str, step_id: str, target: str | None, gate: str | None
) -> None:
    """Approve the gates awaiting approval in STEP_ID of RUN_ID (or one resource's: --target).

    An approval opens the gates waiting now; a later gate of the same resource (a cut-over after
    stop-writes) needs its own approval, or a standing one with --gate.
    """
    result = commands.approve(settings, run_id, step_id, target, gate)
    what = f"{step_id} ({target})" if target else step_id
    click.echo(
        f"Approved {what} in {run_id} as {result['by']}"
        + (f" ({result['caller_arn']})" if result["caller_arn"] else "")
        + f". Continue with `migrate resume {run_id}`."
    )


@cli.command()
@click.argument("run_id")
@click.option("--lock-id", required=True, help="The lock id named in the 'locked' error.")
@pass_settings
def unlock(settings: Settings, run_id: str, lock_id: str) -> None:
    """Break RUN_ID's lease held by a dead process (only with the matching --lock-id)."""
    result = commands.unlock(settings, run_id, lock_id)
    click.echo(f"Unlocked {run_id} (was held by {result['holder']}).")


@cli.command()
@click.argument("run_id")
@click.argument("step_id", required=False)
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@pass_settings
def rollback(settings: Settings, run_id: str, step_id: str | None, yes: bool) -> None:
    """Undo RUN_ID's changes (newest step first), or only STEP_ID's, where they can be undone."""
    if not yes and not click.confirm(
        f"Roll back {'step ' + step_id + ' of ' if step_id else ''}run {run_id}?", err=True
    ):
        _fail("Rollback cancelled; nothing was changed.", 1)
    for line in commands.rollback(settings, run_id, step_id):
        click.echo(line)


@cli.command()
@click.argument("run_id")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["md", "html", "json"]),
    default="md",
    show_default=True,
    help="Output format.",
)
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write to a file.")
@pass_settings
def report(settings: Settings, run_id: str, fmt: str, output: str | None) -> None:
    """What happened in RUN_ID: actions, durations, approvals, resources, the journal."""
    data = commands.report(settings, run_id)
    from migrate.reports.render import render_run_report

    text = (
        json.dumps(data, indent=2, default=str) if fmt == "json" else render_run_report(data, fmt)
    )
    if output:
        Path(output).write_text(text, encoding="utf-8")
        click.echo(f"Report written to {output}")
    else:
        click.echo(text)


# --- steps / permissions ---------------------------------------------------------------------------
@cli.command("steps")
@click.argument("name", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print as JSON (with JSON Schemas).")
def steps_cmd(name: str | None, as_json: bool) -> None:
    """List the registered step types, or show NAME's parameters, outputs and example."""
    data = [commands.step_help(name)] if name else commands.steps()
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    for s in data:
        first = s["help"].splitlines()[0] if s["help"] else ""
        if not name:
            click.echo(f"{s['name']:<24} {first}")
            continue
        click.echo(f"{s['name']}\n\n{s['help']}\n\nParameters (with:):")
        props = s["schema"].get("properties", {})
        required = set(s["schema"].get("required", []))
        for pname, spec in props.items():
            kind = spec.get("type") or "/".join(x.get("type", "?") for x in spec.get("anyOf", []))
            default = "" if pname in required else f" (default {spec.get('default')!r})"
            req = " (required)" if pname in required else ""
            click.echo(f"  {pname}: {kind}{req}{default}")
        if s["outputs"]:
            click.echo("\nOutputs: " + ", ".join(s["outputs"]))
        click.echo("\nIAM permissions: " + (", ".join(s["permissions"]) or "(none)"))
        click.echo("\nExample:\n" + s["example"])


@cli.command()
@click.argument("playbook", type=click.Path(dir_okay=False))
@_param_flags
def permissions(playbook: str, params: tuple[str, ...], params_file: str | None) -> None:
    """Print the IAM policy document the migrator itself needs to run PLAYBOOK."""
    click.echo(json.dumps(commands.permissions(playbook, params, params_file), indent=2))


# --- demo / sandbox ----------------------------------------------------------------------------------
@cli.command()
@click.option("--keep", is_flag=True, help="Keep the sandbox running after the demo (Ctrl-C ends).")
@pass_settings
def demo(settings: Settings, keep: bool) -> None:
    """Plan and run playbooks/ftr-baseline.yaml on the embedded sandbox account."""
    from migrate.sandbox.demo import run_demo

    sys.exit(run_demo(settings, keep=keep, echo=click.echo))


@cli.group()
def sandbox() -> None:
    """The embedded legacy sandbox account (moto server on 127.0.0.1)."""


@sandbox.command("serve")
@click.option("--port", default=0, show_default=True, help="Port (0: any free port).")
@click.option(
    "--workdir",
    default="state/sandbox",
    show_default=True,
    help="Where the seeded config files go.",
)
def sandbox_serve(port: int, workdir: str) -> None:
    """Start the seeded sandbox and print the environment to point migrate (or aws) at it."""
    from migrate.sandbox.demo import serve

    serve(port=port, workdir=Path(workdir), echo=click.echo)


# --- state store ----------------------------------------------------------------------------------
@cli.group("state")
def state_group() -> None:
    """The state store itself: copy it to another (SQLite to PostgreSQL, for a team)."""


@state_group.command("copy")
@click.option(
    "--from",
    "source",
    metavar="PATH|URL",
    help="The store to copy [default: the global --state / MIGRATE_STATE].",
)
@click.option(
    "--to",
    "target",
    required=True,
    metavar="PATH|URL",
    help="An empty store to copy into, e.g. postgresql+psycopg://ops@db/migrate?sslmode=require.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@pass_settings
def state_copy(settings: Settings, source: str | None, target: str, as_json: bool) -> None:
    """Copy every run, plan, approval, checkpoint, journal entry and CloudTrail evidence of one
    state store into an empty one, in one transaction. The source is left as it was; point the
    team's --state / MIGRATE_STATE at the new store afterwards."""
    result = commands.copy_state(source or settings.state, target)
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    rows = result["rows"]
    click.echo(
        f"copied {result['from']} -> {result['to']} (schema {result['schema_version']}): "
        f"{rows.get('runs', 0)} runs, {rows.get('plans', 0)} plans, "
        f"{rows.get('journal', 0)} journal entries, {sum(rows.values())} rows in all."
    )
    click.echo(
        "Next: export MIGRATE_STATE=<the new URL> on every operator's machine, and move the old "
        "store aside so that nobody writes to it. Files beside a SQLite store (config backups, "
        "reports) are not in the database: keep that directory."
    )


# Command families that live beside their capability (sqlite-utils' lesson: keep cli.py small).
from migrate.cloudtrail.cli import trail  # noqa: E402

cli.add_command(trail)


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="migrate")


__all__ = ["cli", "format_duration", "main"]
