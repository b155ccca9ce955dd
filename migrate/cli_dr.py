"""``migrate dr report`` and ``migrate dr history``: disaster-recovery drill evidence."""

from __future__ import annotations

import json
from pathlib import Path

import click

from migrate import commands
from migrate.commands import Settings
from migrate.reports.dr import render_dr_history, render_dr_report

pass_settings = click.make_pass_decorator(Settings)
FORMAT = click.Choice(["md", "html", "json"])


def _emit(text: str, output: str | None) -> None:
    if output:
        Path(output).write_text(text, encoding="utf-8")
        click.echo(f"Written to {output}")
    else:
        click.echo(text)


@click.group("dr")
def dr() -> None:
    """Disaster-recovery drills (dr.restore_test): evidence and history."""


@dr.command("report")
@click.argument("run_id")
@click.option("--format", "fmt", type=FORMAT, default="md", show_default=True, help="Format.")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write to a file.")
@pass_settings
def dr_report(settings: Settings, run_id: str, fmt: str, output: str | None) -> None:
    """The drill evidence of RUN_ID: restore points, RTO/RPO vs targets, teardown, journal."""
    data = commands.dr_report(settings, run_id)
    text = json.dumps(data, indent=2, default=str) if fmt == "json" else render_dr_report(data, fmt)
    _emit(text, output)


@dr.command("history")
@click.option("--format", "fmt", type=FORMAT, default="md", show_default=True, help="Format.")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write to a file.")
@pass_settings
def dr_history(settings: Settings, fmt: str, output: str | None) -> None:
    """Every drill in the state store, with an RTO-over-drills plot (html)."""
    data = commands.dr_history(settings)
    text = (
        json.dumps(data, indent=2, default=str) if fmt == "json" else render_dr_history(data, fmt)
    )
    _emit(text, output)
