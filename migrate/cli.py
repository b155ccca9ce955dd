"""The ``migrate`` command line: parse, call :mod:`migrate.commands`, render, map errors to exits.

Every :class:`MigrateError` is caught here and printed as one paragraph with its exit code;
``--debug`` re-raises it for a traceback.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

import click
from botocore.exceptions import BotoCoreError, ClientError
from sqlalchemy.exc import DBAPIError

from migrate import __version__, commands
from migrate.aws.errors import describe_aws_failure
from migrate.aws.iam_scope import MANAGED_POLICY_LIMIT, policy_size
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
from migrate.errors import EXIT_FAILED, EXIT_INTERRUPTED, BadInputError, MigrateError
from migrate.reports.render import render_plan, render_plan_report, write_plan_report
from migrate.reports.views import status_table
from migrate.store.db import describe_store_failure
from migrate.store.status import ActionStatus, RunStatus, StepStatus
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


def _interactive() -> bool:
    """True when a person can answer a question (stdin is a terminal)."""
    return sys.stdin.isatty()


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
        click.echo(status_table(data))
    elif result.status == RunStatus.FAILED:
        # Even --quiet says why: "fix the cause shown above" needs a cause.
        for s in data["steps"]:
            errors = [a for a in s["actions"] if a["status"] == ActionStatus.FAILED and a["error"]]
            for a in errors:
                click.echo(f"{s['id']}: {a['target']}: {a['error']}", err=True)
            if s["status"] == StepStatus.FAILED and s["error"] and not errors:
                click.echo(f"{s['id']}: {s['error']}", err=True)
    hint = {
        RunStatus.DONE: "",
        RunStatus.PAUSED: f"Continue with `migrate resume {result.run_id}`.",
        RunStatus.FAILED: f"Fix the cause shown above, then `migrate resume {result.run_id}`.",
        RunStatus.AWAITING_APPROVAL: "Approve with `migrate approve "
        f"{result.run_id} STEP_ID [--target RESOURCE]`, then `migrate resume {result.run_id}`.",
        RunStatus.WAITING: f"Resume later with `migrate resume {result.run_id}`.",
    }.get(result.status, "")
    for message in result.messages:
        click.echo(message)
    remains = commands.residuals_of(data)
    if remains and result.status == RunStatus.DONE:
        # "Done" is not "compliant": say what the run left, honestly.
        hint = (
            f"{len(remains)} item(s) remain for the FTR (kept on purpose or waiting for a "
            f"person): `migrate report {result.run_id}` lists them."
        )
    click.echo(f"run {result.run_id}: {result.status}. {hint}".rstrip())
    sys.exit(result.exit_code)


# --- plan --------------------------------------------------------------------------------------------
def _format_flags(choices: tuple[str, ...], default: str = "table") -> Callable[[Any], Any]:
    """``-f/--format`` (one convention on every command that prints documents) and ``--json``,
    kept as a short alias of ``--format json``."""

    def decorate(func: Any) -> Any:
        func = click.option("--json", "as_json", is_flag=True, help="Same as --format json.")(func)
        return click.option(
            "-f",
            "--format",
            "fmt",
            type=click.Choice(choices),
            default=default,
            show_default=True,
            help="Output format (json documents carry a schema id and version).",
        )(func)

    return decorate


def _check_output(output: str, option: str) -> None:
    """Refuse an output file that cannot be written before any work is done (and so before a
    plan is saved or a report rendered)."""
    path = Path(output)
    if path.is_dir():
        raise BadInputError(
            f"{option} {output} is a directory; give a file name, e.g. {path / 'report.md'}."
        )
    if not path.parent.is_dir():
        raise BadInputError(
            f"{option} {output}: the directory {path.parent} does not exist. Create it, or "
            "write the file somewhere that exists."
        )


@cli.command()
@click.argument("playbook", type=click.Path(dir_okay=False))
@click.argument("plan_ref", required=False, metavar="[PLAN_ID]")
@_param_flags
@_format_flags(("table", "json", "md", "html"))
@click.option(
    "-o",
    "--output",
    "report_path",
    type=click.Path(dir_okay=False),
    help="Also write the plan to FILE (FILE.md or FILE.html) for the planning meeting.",
)
@click.option("--report", "report_alias", type=click.Path(dir_okay=False), hidden=True)
@click.option(
    "--detailed-exitcode",
    is_flag=True,
    help="Exit 0 when nothing would change, 2 when the plan has actions (for CI).",
)
@pass_settings
def plan(
    settings: Settings,
    playbook: str,
    plan_ref: str | None,
    params: tuple[str, ...],
    params_file: str | None,
    fmt: str,
    as_json: bool,
    report_path: str | None,
    report_alias: str | None,
    detailed_exitcode: bool,
) -> None:
    """Observe the account and show what PLAYBOOK would change, without changing anything.

    The plan is saved; apply exactly it with `migrate run --plan PLAN_ID` (refused if the account
    changed since). `migrate plan show PLAN_ID` shows a saved plan again.
    """
    fmt = "json" if as_json else fmt
    report_path = report_path or report_alias
    if report_path:
        _check_output(report_path, "-o")
        if Path(report_path).suffix.lower() not in (".md", ".html", ".htm"):
            raise BadInputError(
                f"-o {report_path}: the format comes from the extension; use FILE.md or "
                "FILE.html (--format json prints JSON to the terminal)."
            )
    if playbook == "show" and not Path(playbook).exists():
        if not plan_ref:
            raise BadInputError("`migrate plan show` needs the PLAN_ID of a saved plan.")
        body = commands.saved_plan(settings, plan_ref)
    else:
        if plan_ref:
            raise BadInputError(
                f"unexpected argument {plan_ref!r}: `migrate plan PLAYBOOK` plans a playbook, "
                "`migrate plan show PLAN_ID` shows a saved plan."
            )
        plan_id, result = commands.plan(settings, playbook, params, params_file)
        body = result.body()
        body["plan_id"] = plan_id
    if report_path:
        write_plan_report(body, Path(report_path))
    if fmt == "json":
        click.echo(json.dumps(body, indent=2, default=str))
    elif fmt in ("md", "html"):
        click.echo(render_plan_report(body, fmt))
    else:
        click.echo(render_plan(body))
        if report_path:
            click.echo(f"Plan report written to {report_path}")
    if detailed_exitcode:
        sys.exit(2 if any(s["actions"] for s in body["steps"]) else 0)


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

    Without --plan, the playbook is planned first and the plan shown; on a terminal migrate asks
    `apply? [y/N]`, without one it refuses unless --yes. What runs is exactly that plan.

    Exit codes: 0 done, 1 failed, 2 bad input, 3 awaiting approval, 4 waiting, 5 locked.
    """
    if plan_id is not None and (params or params_file):
        raise BadInputError(
            "-p/--params cannot be used with --plan: the saved plan fixed its parameters when it "
            "was made. Make a new plan with them (`migrate plan PLAYBOOK -p ...`) and run that."
        )
    just_planned = False
    if plan_id is None:
        if playbook is None:
            raise BadInputError("`migrate run` needs a PLAYBOOK or --plan PLAN_ID.")
        if not yes and not _interactive():
            # Refused before planning: nothing is read or saved that nobody will confirm.
            raise BadInputError(
                f"`migrate run {playbook}` changes the account and asks first, but there is no "
                f"terminal to ask on. Make and review the plan with `migrate plan {playbook}`, "
                "then apply it with `migrate run --plan PLAN_ID`, or pass --yes to apply "
                "without asking."
            )
        plan_id, planned = commands.plan(settings, playbook, params, params_file)
        body = planned.body()
        body["plan_id"] = plan_id
        if not settings.quiet:
            click.echo(render_plan(body), err=True)
        if not yes and not click.confirm("apply?", default=False, err=True):
            click.echo(f"Nothing changed. The plan is saved as {plan_id}.", err=True)
            sys.exit(0)
        playbook = None
        # With --yes the plan was made a moment ago and is applied at once: planning it again
        # to find it stale would only read every bucket twice. After a prompt (minutes may have
        # passed) it is checked like any saved plan.
        just_planned = yes
    options = _run_options(settings, yes, only, until, step_mode, max_wait)
    result = commands.run(settings, playbook, (), None, plan_id, options, just_planned=just_planned)
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


@cli.command()
@click.argument("run_id", required=False)
@_format_flags(("table", "json"))
@pass_settings
def status(settings: Settings, run_id: str | None, fmt: str, as_json: bool) -> None:
    """List runs, or show RUN_ID's steps, actions, progress, waits and gates."""
    data = commands.status(settings, run_id)
    if as_json or fmt == "json":
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
    click.echo(status_table(data))


@cli.command()
@click.argument("run_id")
@click.argument("step_id")
@click.option("--target", metavar="RESOURCE", help="Approve only this resource's gate.")
@click.option(
    "--gate",
    metavar="NAME",
    help="Approve this gate only; before the run reaches it, a standing approval.",
)
@click.option(
    "--all-targets",
    is_flag=True,
    help="With --gate: a standing approval for every resource of the step (destructive gates "
    "otherwise need --target).",
)
@click.option("--reason", metavar="TEXT", help="Why it is approved (recorded with the approval).")
@click.option("--ticket", metavar="ID", help="The change ticket (recorded with the approval).")
@pass_settings
def approve(
    settings: Settings,
    run_id: str,
    step_id: str,
    target: str | None,
    gate: str | None,
    all_targets: bool,
    reason: str | None,
    ticket: str | None,
) -> None:
    """Approve the gates awaiting approval in STEP_ID of RUN_ID (or one resource's: --target).

    An approval opens the gates waiting now; a later gate of the same resource (a cut-over after
    stop-writes) needs its own approval, or a standing one with --gate. When gates of different
    kinds wait, name one with --gate.
    """
    result = commands.approve(
        settings,
        run_id,
        step_id,
        target,
        gate,
        reason=reason,
        ticket=ticket,
        all_targets=all_targets,
    )
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
    "-f",
    "--format",
    "fmt",
    type=click.Choice(["md", "html", "json"]),
    default="md",
    show_default=True,
    help="Output format.",
)
@click.option("-o", "--output", type=click.Path(), help="Write to a file.")
@pass_settings
def report(settings: Settings, run_id: str, fmt: str, output: str | None) -> None:
    """What happened in RUN_ID: actions, durations, approvals, resources, the journal."""
    if output:
        _check_output(output, "-o")
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
@_format_flags(("table", "json"))
@click.option(
    "--playbook-schema",
    is_flag=True,
    help="Print the JSON Schema of a playbook (every step type's `with`), for editors.",
)
def steps_cmd(name: str | None, fmt: str, as_json: bool, playbook_schema: bool) -> None:
    """List the registered step types, or show NAME's parameters, outputs and example."""
    if playbook_schema:
        click.echo(json.dumps(commands.playbook_schema(), indent=2))
        return
    data = [commands.step_help(name)] if name else commands.steps()
    if as_json or fmt == "json":
        click.echo(json.dumps({"schema": commands.STEPS_SCHEMA, "steps": data}, indent=2))
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
            choices = spec.get("enum") or [
                v for x in spec.get("anyOf", []) for v in x.get("enum", [x.get("const")]) if v
            ]
            click.echo(f"  {pname}: {kind}{req}{default}")
            if choices:
                click.echo("      one of: " + ", ".join(map(str, choices)))
            if spec.get("description"):
                click.echo(f"      {spec['description']}")
        if s["outputs"]:
            click.echo("\nOutputs: " + ", ".join(s["outputs"]))
        click.echo("\nIAM permissions: " + (", ".join(s["permissions"]) or "(none)"))
        click.echo("\nExample:\n" + s["example"])


@cli.command()
@click.argument("playbook", type=click.Path(dir_okay=False))
@_param_flags
def permissions(playbook: str, params: tuple[str, ...], params_file: str | None) -> None:
    """Print the IAM policy document the migrator itself needs to run PLAYBOOK."""
    document = commands.permissions(playbook, params, params_file)
    click.echo(json.dumps(document, indent=2))
    size = policy_size(document)
    if size > MANAGED_POLICY_LIMIT:
        click.echo(
            f"Note: this document is {size:,} characters without whitespace, more than a "
            f"customer managed policy holds ({MANAGED_POLICY_LIMIT:,}). Attach it as an inline "
            "policy of the migrator's role (up to 10,240), or run `migrate permissions` per "
            "playbook of the baseline and attach one managed policy each.",
            err=True,
        )


@cli.group()
def secrets() -> None:
    """Read-only checks of config files migrate rewrote."""


@secrets.command("check")
@click.argument("paths", nargs=-1, required=True)
@click.option(
    "--classpath",
    "classpath",
    multiple=True,
    metavar="PATH",
    help="The application's lib directory, jar, Spring Boot jar or WAR (repeatable): checked "
    "for the classes the rewritten files make it load. A Tomcat's lib is found by itself.",
)
@pass_settings
def secrets_check(settings: Settings, paths: tuple[str, ...], classpath: tuple[str, ...]) -> None:
    """Resolve every secret the rewritten files under PATHS refer to, and check the classpath
    for what the application then loads (exit 1 if either would fail)."""
    result = commands.secrets_check(settings, list(paths), classpath)
    for ref in result["references"]:
        where = f"{ref['file']}:{ref['line']}"
        if ref["kind"] == "variable":
            click.echo(f"{where}: ${{{ref['target']}}} must be supplied at start-up (not checked)")
        elif ref["ok"]:
            click.echo(f"{where}: {ref['target']} ({ref['via']}): ok")
        else:
            click.echo(f"{where}: {ref['target']} ({ref['via']}): FAILS: {ref['problem']}")
    for check in result["classpath"]:
        where = f"{check['file']}:{check['line']}"
        if check["ok"] is None:
            click.echo(
                f"{where}: classpath for {check['needs']} not checked: pass --classpath with "
                "the application's lib directory, jar or WAR"
            )
            continue
        searched = ", ".join(check["searched"])
        if check["ok"]:
            found = "; ".join(check["found"])
            click.echo(f"{where}: classpath for {check['needs']} ({searched}): ok ({found})")
        else:
            problems = "; ".join(check["problems"])
            click.echo(f"{where}: classpath for {check['needs']} ({searched}): FAILS: {problems}")
        for path in check["unreadable"]:
            click.echo(f"{where}: {path} is not a readable jar (skipped)")
    click.echo(
        f"{len(result['references'])} reference(s), {len(result['classpath'])} classpath "
        f"check(s), {result['failures']} would fail"
    )
    if result["failures"]:
        sys.exit(1)


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
from migrate.cli_dr import dr  # noqa: E402
from migrate.cli_trail import trail  # noqa: E402

cli.add_command(trail)
cli.add_command(dr)


# Global options and whether they take a value: accepted after the subcommand too
# (`migrate plan X --region eu-west-1`), as awscli users type them.
GLOBAL_OPTIONS = {
    "--state": True,
    "--profile": True,
    "--region": True,
    "--endpoint-url": True,
    "--debug": False,
    "--quiet": False,
    "-q": False,
}


def hoist_global_options(argv: list[str]) -> list[str]:
    """Move global options that follow the subcommand in front of it (click wants them first)."""
    commands_at = next((i for i, a in enumerate(argv) if a in cli.commands), None)
    if commands_at is None:
        return argv
    head, tail = argv[: commands_at + 1], argv[commands_at + 1 :]
    moved: list[str] = []
    rest: list[str] = []
    i = 0
    while i < len(tail):
        word = tail[i]
        name = word.split("=", 1)[0]
        if word == "--":
            rest.extend(tail[i:])
            break
        if name in GLOBAL_OPTIONS:
            takes_value = GLOBAL_OPTIONS[name] and "=" not in word
            moved.extend(tail[i : i + 2] if takes_value else [word])
            i += 2 if takes_value else 1
            continue
        rest.append(word)
        i += 1
    return head[:commands_at] + moved + [head[commands_at], *rest]


def main() -> None:
    """Console-script entry point."""
    cli(args=hoist_global_options(sys.argv[1:]), prog_name="migrate")


__all__ = ["cli", "format_duration", "main"]
