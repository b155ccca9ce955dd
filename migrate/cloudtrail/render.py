"""Rendering a usage report: a plain table per key (terminal) or Markdown."""

from __future__ import annotations

from datetime import UTC, datetime

from migrate.cloudtrail.model import IpAttribution, PrincipalUsage, UsageReport


def _top(counter: dict[str, int], limit: int = 5) -> str:
    items = sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))
    text = ", ".join(f"{name} ({count})" for name, count in items[:limit])
    if len(items) > limit:
        text += f", ... {len(items) - limit} more"
    return text or "-"


def _resources(resources: list[str], limit: int = 4) -> str:
    """``arn1, arn2, ... 3 more``; ``*`` stands for calls that named no resource."""
    text = ", ".join(resources[:limit])
    if len(resources) > limit:
        text += f", ... {len(resources) - limit} more"
    return text


def _generated(report: UsageReport) -> datetime:
    return datetime.fromisoformat(report.generated_at.replace("Z", "+00:00")).astimezone(UTC)


def _latest(*moments: str | None) -> str | None:
    present = [m for m in moments if m]
    return max(present) if present else None


def unused_for(usage: PrincipalUsage, now: datetime) -> int | None:
    """Days since the key was last used (IAM or logs, whichever is later; else since creation)."""
    iam = usage.iam
    moment = _latest(iam.last_used if iam else None, usage.last_seen)
    if moment is None and iam is not None:
        moment = iam.created
    if not moment:
        return None
    then = datetime.fromisoformat(moment.replace("Z", "+00:00"))
    if then.tzinfo is None:
        then = then.replace(tzinfo=UTC)
    return max(0, (now - then).days)


def _key_header(usage: PrincipalUsage, report: UsageReport, now: datetime) -> list[str]:
    iam = usage.iam
    owner = usage.owner or "?"
    lines = [f"{usage.principal}  owner: {owner}"]
    if iam is not None and iam.in_account:
        last = iam.last_used or "never"
        where = (
            f" ({iam.last_used_service}, {iam.last_used_region})" if iam.last_used_service else ""
        )
        lines.append(f"  IAM: {iam.status}, created {iam.created or '?'}, last used {last}{where}")
    elif iam is not None:
        lines.append("  IAM: not a key of this account (deleted, or another account's)")
    elif not report.enriched:
        lines.append("  IAM: not asked (report not enriched)")
    days = unused_for(usage, now)
    if usage.calls == 0:
        suffix = f": unused for {days} days" if days is not None else ""
        lines.append(f"  no calls in the window{suffix}")
    else:
        lines.append(
            f"  calls: {usage.calls}, errors: {usage.errors}, first {usage.first_seen}, "
            f"last {usage.last_seen}" + (f" (unused for {days} days)" if days else "")
        )
    return lines


def _ip_line(ip: str, count: int, ips: dict[str, IpAttribution]) -> str:
    attribution = ips.get(ip)
    if attribution is None:
        return f"{ip} ({count})"
    text = f"{ip} ({count}) -> {attribution.label()}"
    if attribution.instance_profile_arn:
        text += f", profile {attribution.instance_profile_arn}"
    if attribution.flagged:
        text += "  [!]"
    return text


def _principal_text(usage: PrincipalUsage, report: UsageReport, now: datetime) -> list[str]:
    if usage.kind == "access_key":
        lines = _key_header(usage, report, now)
    else:
        lines = [
            f"{usage.principal}  ({usage.identity_type or 'session'}, {usage.sessions} sessions)",
            f"  calls: {usage.calls}, errors: {usage.errors}, first {usage.first_seen}, "
            f"last {usage.last_seen}",
        ]
    if usage.actions:
        width = max(len(c.iam_action or "(no IAM action)") for c in usage.actions)
        lines.append(f"  {'IAM action'.ljust(width)}  {'calls':>7}  {'errors':>6}  call")
        for call in usage.actions:
            errors = ", ".join(f"{code} {n}" for code, n in sorted(call.errors.items()))
            lines.append(
                f"  {(call.iam_action or '(no IAM action)').ljust(width)}  {call.count:>7}  "
                f"{call.error_count:>6}  {call.event_source} {call.event_name}"
                + (f"  [{errors}]" if errors else "")
            )
            if call.resources and call.resources != ["*"]:
                lines.append(f"  {''.ljust(width)}  {'on':>7}  {_resources(call.resources)}")
    if usage.source_ips:
        lines.append("  source IPs:")
        for ip, count in sorted(usage.source_ips.items(), key=lambda kv: (-kv[1], kv[0]))[:10]:
            lines.append(f"    {_ip_line(ip, count, report.ips)}")
    if usage.calls:
        lines.append(f"  user agents: {_top(usage.user_agents, 3)}")
        lines.append(f"  regions: {_top(usage.regions)}")
        if usage.vpc_endpoints:
            lines.append(f"  VPC endpoints: {_top(usage.vpc_endpoints)}")
        if usage.invoked_by:
            lines.append(f"  via services: {_top(usage.invoked_by)}")
    return lines


def _stats_lines(report: UsageReport) -> list[str]:
    stats = report.stats
    counters = stats.get("counters", {})
    run = stats.get("this_run", {})
    lines = [
        f"dataset {report.dataset} ({report.source}), window from {report.since}, "
        f"generated {report.generated_at}",
        f"files: {stats.get('files', 0)} ingested in total, {run.get('files_read', 0)} read now, "
        f"{run.get('files_already_ingested', 0)} already ingested; "
        f"{stats.get('unreadable_files', 0)} unreadable",
        "records: "
        + ", ".join(f"{name.replace('_', ' ')} {counters.get(name, 0)}" for name in counters),
    ]
    for bad in stats.get("unreadable", [])[:10]:
        lines.append(f"  unreadable: {bad['name']}: {bad['error']}")
    if stats.get("unmapped_calls"):
        lines.append("calls without an IAM action: " + ", ".join(stats["unmapped_calls"][:10]))
    return lines


def render_text(report: UsageReport) -> str:
    """The terminal form: a block per access key, then per role session issuer, then totals."""
    now = _generated(report)
    out: list[str] = []
    out.append(f"Access keys ({len(report.keys)})")
    out.append("=" * 40)
    for usage in report.keys:
        out.extend(_principal_text(usage, report, now))
        out.append("")
    if report.sessions:
        out.append(f"Temporary credentials by issuer ({len(report.sessions)})")
        out.append("=" * 40)
        for usage in report.sessions:
            out.extend(_principal_text(usage, report, now))
            out.append("")
    flagged = sorted(ip for ip, a in report.ips.items() if a.flagged)
    if flagged:
        out.append("[!] outside AWS or behind NAT: " + ", ".join(flagged))
    out.extend(_stats_lines(report))
    return "\n".join(out) + "\n"


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|")


def render_markdown(report: UsageReport) -> str:
    """Markdown: a section and a call table per key, for the planning meeting."""
    now = _generated(report)
    out = [f"# CloudTrail access-key usage: {report.dataset}", ""]
    out.append(
        f"Window from {report.since}; generated {report.generated_at}; report `{report.id}`."
    )
    out.append("")
    note = report.enrichment_note()
    if note is not None:
        out.extend([f"**{_md_escape(note)}**", ""])
    out.append("| key | owner | status | calls | errors | last seen | unused (days) |")
    out.append("| --- | --- | --- | ---: | ---: | --- | ---: |")
    for usage in report.keys:
        status: str | None = "not in account"
        if usage.iam is None and not report.enriched:
            status = "not asked"
        elif usage.iam is not None and usage.iam.in_account:
            status = usage.iam.status
        days = unused_for(usage, now)
        out.append(
            f"| `{usage.principal}` | {usage.owner or '?'} | {status} | {usage.calls} | "
            f"{usage.errors} | {usage.last_seen or '-'} | {'' if days is None else days} |"
        )
    out.append("")
    for usage in (*report.keys, *report.sessions):
        out.append(f"## `{usage.principal}` ({usage.owner or usage.kind})")
        out.append("")
        if usage.actions:
            out.append("| IAM action | call | calls | errors | resources |")
            out.append("| --- | --- | ---: | --- | --- |")
            for call in usage.actions:
                errors = ", ".join(f"{code}: {n}" for code, n in sorted(call.errors.items()))
                resources = ", ".join(f"`{r}`" for r in call.resources[:8])
                if len(call.resources) > 8:
                    resources += f", ... {len(call.resources) - 8} more"
                out.append(
                    f"| {call.iam_action or '(none)'} | {call.event_source} {call.event_name} | "
                    f"{call.count} | {errors} | {_md_escape(resources)} |"
                )
            out.append("")
        else:
            out.append("No calls in the window.")
            out.append("")
        for ip, count in sorted(usage.source_ips.items(), key=lambda kv: (-kv[1], kv[0]))[:10]:
            out.append(f"- source {_md_escape(_ip_line(ip, count, report.ips))}")
        if usage.user_agents:
            out.append(f"- user agents: {_md_escape(_top(usage.user_agents, 3))}")
        if usage.vpc_endpoints:
            out.append(f"- VPC endpoints: {_top(usage.vpc_endpoints)}")
        out.append("")
    out.append("## Ingestion")
    out.append("")
    out.extend(f"- {_md_escape(line)}" for line in _stats_lines(report))
    return "\n".join(out) + "\n"
