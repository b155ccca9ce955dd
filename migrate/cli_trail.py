"""``migrate trail usage``: who uses which access key for what, from CloudTrail."""

from __future__ import annotations

import json

import click
from tqdm import tqdm

from migrate import commands
from migrate.cloudtrail.api import AthenaOptions
from migrate.cloudtrail.render import render_markdown, render_text
from migrate.commands import Settings

pass_settings = click.make_pass_decorator(Settings)


@click.group("trail")
def trail() -> None:
    """Read CloudTrail: per-key usage evidence for retiring access keys."""


@trail.command("usage")
@click.option("--since", default="90d", show_default=True, help="Window: 90d, 2w, 36h, ...")
@click.option(
    "--source",
    default=None,
    metavar="s3://BUCKET[/PREFIX]|DIR|lookup|athena[:s3://BUCKET[/PREFIX]]",
    help="Where the logs are (default: the account's trail bucket, else LookupEvents).",
)
@click.option(
    "--trail-region",
    "regions",
    multiple=True,
    help="Only these regions' logs (repeatable; default: every region found).",
)
@click.option("--account", "accounts", multiple=True, help="Only these accounts (org trails).")
@click.option("--workers", type=int, default=None, help="Parse processes (default: one per core).")
@click.option("--no-attribution", is_flag=True, help="Skip mapping source IPs to EC2 instances.")
@click.option("--athena-database", default="default", show_default=True)
@click.option("--athena-output", default=None, help="s3:// location for Athena query results.")
@click.option("--athena-workgroup", default=None)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--md", "as_md", is_flag=True, help="Print the report as Markdown.")
@pass_settings
def usage_cmd(
    settings: Settings,
    since: str,
    source: str | None,
    regions: tuple[str, ...],
    accounts: tuple[str, ...],
    workers: int | None,
    no_attribution: bool,
    athena_database: str,
    athena_output: str | None,
    athena_workgroup: str | None,
    as_json: bool,
    as_md: bool,
) -> None:
    """Ingest new CloudTrail log files and print per-key usage.

    For every long-lived access key (AKIA...): owner, first/last seen, calls by IAM action with
    error counts, source IPs (mapped to EC2 instances, or flagged as outside AWS or behind NAT),
    user agents, regions, VPC endpoints, and IAM's last-used date. Temporary keys are grouped by
    the role that issued them. Files read once are remembered in the state store; the report is
    stored too (its id is printed) for the keys-to-roles step.

    A directory of downloaded logs needs no AWS credentials: without them, usage is computed
    from the files alone, IAM enrichment and IP attribution are skipped (one line says so) and
    the stored report is marked not enriched, so keys-to-roles will not switch keys from it.
    """
    if as_json and as_md:
        raise click.UsageError("--json and --md exclude each other")
    with tqdm(total=0, desc="log files", unit="file", disable=settings.quiet, leave=False) as bar:
        report = commands.trail_usage(
            settings,
            source,
            since,
            list(regions) or None,
            accounts=list(accounts) or None,
            workers=workers,
            athena=AthenaOptions(
                database=athena_database, output=athena_output, workgroup=athena_workgroup
            ),
            attribute=not no_attribution,
            progress=bar,
        )
    note = report.enrichment_note()
    if note is not None:  # on stderr, so that --json and --md stay clean documents
        click.echo(note, err=True)
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2, sort_keys=True))
    elif as_md:
        click.echo(render_markdown(report), nl=False)
    else:
        click.echo(render_text(report), nl=False)
        click.echo(f"report stored as {report.id}")
