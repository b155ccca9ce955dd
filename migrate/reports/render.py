"""Rendering plans and runs for people: a terminal summary, Markdown and self-contained HTML."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup

from migrate.errors import BadInputError
from migrate.reports.timeline import render_run_svg, render_svg, target_label, text_timeline
from migrate.util import format_duration

_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("migrate.reports", "templates"),
    autoescape=jinja2.select_autoescape(enabled_extensions=("html", "html.j2"), default=False),
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
_ENV.filters["duration"] = format_duration
_ENV.filters["mdcell"] = lambda text: str(text).replace("|", "\\|").replace("\n", " ")


def banner(context: dict[str, Any] | None) -> str:
    """One line naming what a document is about: account, regions, caller, time, version."""
    if not context:
        return "account: unknown (this document predates account banners)"
    parts = [
        f"account {context.get('account_id') or '?'} ({context.get('partition') or 'aws'})",
        "region " + ", ".join(context.get("regions") or ["?"]),
        f"caller {context.get('caller_arn') or '?'}",
        f"at {context.get('generated_at') or '?'}",
        f"migrate {context.get('tool_version') or '?'}",
    ]
    if context.get("playbook_fingerprint"):
        parts.append(f"playbook {str(context['playbook_fingerprint'])[:19]}")
    return " · ".join(parts)


_ENV.filters["banner"] = banner


def _is_gated(step: dict[str, Any], action: dict[str, Any]) -> bool:
    return bool(action["gate"] or step.get("gated"))


# Who approves each gate kind unless the playbook's `approvers:` says otherwise: the person who
# can vouch for what the gate asks (writes stopped, the new database serves, the key is unused).
APPROVERS = {
    "stop-writes": "application owner (writes stopped)",
    "cut-over": "DBA / change manager",
    "cleanup": "data owner",
    "delete-versions": "data owner",
    "config-cutover": "application owner",
    "deactivate": "IAM owner / security",
    "delete": "IAM owner / security",
    "revoke-open-admin-ports": "network / security engineer",
    "trust": "owner of the assumed role",
    "human-review": "security engineer",
    "block-public-access": "security engineer",
    "approve": "change manager",
}

# What each action kind does to the account, for the Terraform-like summary line (a kind not
# listed changes something in place).
CREATES = frozenset(
    {
        "kms.create_key",
        "cloudtrail.prepare_archive_bucket",
        "cloudtrail.create_trail",
        "iam.create_role",
        "secrets.store",
        "rds.warm_up",
        "rds.final_snapshot",
        "rds.restore",
        "rds.recreate_replicas",
        "rds.cluster_warm_up",
        "rds.cluster_final_snapshot",
        "rds.cluster_restore",
        "rds.cluster_members",
        "ssm.instance_role",
        "dr.restore",
        "dr.s3_restore",
    }
)
DELETES = frozenset(
    {
        "iam.delete_key",
        "rds.cut_over",
        "rds.cluster_cut_over",
        "rds.cleanup",
        "rds.cluster_cleanup",
        "s3.delete_superseded_versions",
        "ssm.revoke_open_rule",
        "dr.teardown",
        "dr.network_teardown",
        "dr.s3_teardown",
    }
)
CHECKS = frozenset(
    {
        "core.wait",
        "iam.watch",
        "iam.retire_window",
        "iam.review",
        "rds.stop_writes",
        "rds.cluster_stop_writes",
        "rds.verify",
        "rds.cluster_verify",
        "rds.soak",
        "cloudtrail.ingest",
        "dr.check",
    }
)


def change_counts(actions: list[dict[str, Any]]) -> dict[str, int]:
    """``{"create", "change", "delete", "check"}`` counts (a cut-over replaces a database)."""
    counts = {"create": 0, "change": 0, "delete": 0, "check": 0}
    for a in actions:
        kind = a["kind"]
        key = (
            "create"
            if kind in CREATES
            else "delete"
            if kind in DELETES
            else "check"
            if kind in CHECKS
            else "change"
        )
        counts[key] += 1
    return counts


def change_line(counts: dict[str, int]) -> str:
    """``Plan: 5 to create, 12 to change, 3 to delete/replace (4 checks and waits).``"""
    return (
        f"Plan: {counts['create']} to create, {counts['change']} to change, "
        f"{counts['delete']} to delete/replace ({counts['check']} checks, waits and reviews)."
    )


def plan_summary(body: dict[str, Any]) -> dict[str, Any]:
    """Everything the planning meeting looks at, computed from a plan body."""
    actions = [a for s in body["steps"] for a in s["actions"]]
    approvers = {**APPROVERS, **(body.get("approvers") or {})}
    gates = [
        {
            "step": s["id"],
            "target": a["target"],
            "label": target_label(a),
            "gate": a["gate"] or "approve",
            "destructive": a["destructive"],
            "summary": a["summary"],
            "approver": approvers.get(a["gate"] or "approve", approvers["approve"]),
            "command": f"migrate approve RUN {s['id']} --target {a['target']}"
            + (f" --gate {a['gate']}" if a["gate"] else ""),
        }
        for s in body["steps"]
        for a in s["actions"]
        if _is_gated(s, a)
    ]
    downtime = [
        {
            "step": s["id"],
            "target": a["target"],
            "downtime_s": a["estimate"]["downtime_s"],
            "summary": a["summary"],
        }
        for s in body["steps"]
        for a in s["actions"]
        if a["estimate"]["downtime_s"] > 0
    ]
    risks = [
        {"step": s["id"], "target": a["target"], "risk": r}
        for s in body["steps"]
        for a in s["actions"]
        for r in a["risks"]
    ]
    per_step = [
        {
            "id": s["id"],
            "uses": s["uses"],
            "actions": len(s["actions"]),
            "duration_s": sum(a["estimate"]["duration_s"] for a in s["actions"]),
            "compliant": len(s.get("compliant", [])),
            "gates": sum(1 for a in s["actions"] if _is_gated(s, a)),
            "known_after": s.get("known_after", []),
        }
        for s in body["steps"]
    ]
    from migrate.reports.timeline import schedule

    _, span = schedule(body)
    return {
        "actions": len(actions),
        "gates": gates,
        "downtime": downtime,
        "risks": risks,
        "per_step": per_step,
        "duration_s": span,
        "work_s": sum(a["estimate"]["duration_s"] for a in actions),
        "downtime_s": sum(d["downtime_s"] for d in downtime),
        "api_requests": sum(a["estimate"]["api_requests"] for a in actions),
        "kms_requests": sum(int(a["details"].get("kms_requests", 0) or 0) for a in actions),
        "bytes": sum(a["estimate"]["bytes"] for a in actions),
        "cost_usd": sum(a["estimate"]["cost_usd"] for a in actions),
        "monthly_usd": sum(a["estimate"].get("monthly_usd", 0.0) for a in actions),
        "changes": change_counts(actions),
        "compliant": [(s["id"], c) for s in body["steps"] for c in s.get("compliant", [])],
        "ftr": ftr_view(body),
        "timeline": text_timeline(body),
    }


SEVERITIES = (
    ("blocking", "Blocking (not done by this plan; fix or accept)"),
    ("decision", "Decisions (the approver of the gate accepts these)"),
    ("information", "Information"),
)


def risk_groups(body: dict[str, Any]) -> dict[str, dict[tuple[str, str], list[str]]]:
    """Warnings and risks by severity, each text once with the targets it concerns.

    blocking: a step's warnings (something selected that the plan will not fix); decision: the
    risks of gated actions (the approver accepts them); information: the other actions' risks."""
    out: dict[str, dict[tuple[str, str], list[str]]] = {k: {} for k, _ in SEVERITIES}
    for s in body["steps"]:
        for warning in s.get("warnings", []):
            out["blocking"].setdefault((s["id"], str(warning)), []).append(s["id"])
        for a in s["actions"]:
            severity = "decision" if _is_gated(s, a) else "information"
            for risk in a["risks"]:
                out[severity].setdefault((s["id"], str(risk)), []).append(a["target"])
    return out


def ftr_view(body: dict[str, Any]) -> list[dict[str, Any]]:
    """Every finding of every step, by FTR requirement id: the plan as the review's evidence."""
    rows = [{**f, "step": s["id"]} for s in body["steps"] for f in s.get("findings", []) or []]
    order = {"fail": 0, "manual": 1, "pass": 2}
    return sorted(rows, key=lambda r: (r["requirement"], order.get(r["status"], 3), r["subject"]))


def render_plan(body: dict[str, Any]) -> str:
    """The plan summary printed by ``migrate plan``."""
    summary = plan_summary(body)
    lines = [
        f"Plan {body.get('plan_id', '')} for {body['name']} ({body['playbook']})",
        banner(body.get("context")),
        "",
    ]
    lines.append(f"{'STEP':<20} {'TYPE':<24} {'ACTIONS':>7} {'EST.':>8}  NOTES")
    for s in summary["per_step"]:
        notes = []
        if s["known_after"]:
            notes.append("known after " + ", ".join(s["known_after"]))
        if s["gates"]:
            notes.append(f"{s['gates']} gate(s)")
        if s["compliant"]:
            notes.append(f"{s['compliant']} compliant")
        lines.append(
            f"{s['id'][:20]:<20} {s['uses'][:24]:<24} {s['actions']:>7} "
            f"{format_duration(s['duration_s']):>8}  {'; '.join(notes)}"
        )
    lines.append("")
    for s in body["steps"]:
        if s.get("evidence"):
            lines.append(f"  {s['id']}: evidence: {s['evidence']}")
        for a in s["actions"]:
            gate = f" [gate: {a['gate'] or 'approve'}]" if _is_gated(s, a) else ""
            lines.append(f"  {s['id']}: {a['summary']}{gate}")
    if summary["ftr"]:
        counts = {k: sum(1 for r in summary["ftr"] if r["status"] == k) for k in ("fail", "manual")}
        lines.append("")
        lines.append(
            f"FTR: {counts['fail']} finding(s) this plan fixes, {counts['manual']} only a human "
            "can (the report's FTR table lists each with its requirement id)"
        )
        for row in summary["ftr"]:
            if row["status"] == "manual":
                lines.append(f"  {row['requirement']} {row['subject']}: {row['detail']}")
    lines.append("")
    grouped = risk_groups(body)
    for severity, title in SEVERITIES:
        if grouped[severity]:
            lines.append(f"{title}:")
            for (step_id, text), targets in grouped[severity].items():
                where = targets[0] if len(targets) == 1 else f"{len(targets)} targets"
                lines.append(f"  ! {step_id} ({where}): {text}")
            lines.append("")
    lines.append(change_line(summary["changes"]))
    lines.append(
        f"{summary['actions']} action(s), {len(summary['gates'])} gate(s), est. "
        f"{format_duration(summary['duration_s'])}, downtime "
        f"{format_duration(summary['downtime_s'])}, ~{summary['api_requests']} API requests, "
        f"about ${summary['cost_usd']:.2f} once and ${summary['monthly_usd']:.2f} a month, "
        f"{len(summary['compliant'])} resource(s) already compliant."
    )
    if body.get("plan_id"):
        lines.append(f"Apply exactly this plan with: migrate run --plan {body['plan_id']}")
    return "\n".join(lines)


def render_plan_report(body: dict[str, Any], fmt: str) -> str:
    """The plan as Markdown (``md``) or a self-contained HTML page (``html``)."""
    summary = plan_summary(body)
    if fmt == "html":
        return _ENV.get_template("plan.html.j2").render(
            plan=body,
            summary=summary,
            timeline=Markup(render_svg(body)),
            night=Markup(render_svg(body, night=True)),
            change_line=change_line(summary["changes"]),
        )
    return _ENV.get_template("plan.md.j2").render(
        plan=body, summary=summary, change_line=change_line(summary["changes"])
    )


def write_plan_report(body: dict[str, Any], path: Path) -> None:
    """Write the plan as Markdown (``.md``) or self-contained HTML (``.html``), atomically."""
    fmt = {".md": "md", ".html": "html", ".htm": "html"}.get(path.suffix.lower())
    if fmt is None:
        raise BadInputError(
            f"--report {path}: the format comes from the extension; use FILE.md or FILE.html."
        )
    _write(path, render_plan_report(body, fmt))


def run_summary(data: dict[str, Any]) -> dict[str, Any]:
    """The run report's cards: how far it got, what waits for a person, what remains."""
    actions = [a for s in data.get("steps", []) for a in s.get("actions", [])]
    pending = data.get("pending", [])
    planned_down = sum(float(a["estimate"].get("downtime_s", 0.0)) for a in actions)
    return {
        "actions": len(actions),
        "done": sum(1 for a in actions if a["status"] == "done"),
        "failed": sum(1 for a in actions if a["status"] == "failed"),
        "awaiting": [p for p in pending if p["status"] == "awaiting-approval"],
        "waiting": [p for p in pending if p["status"] == "waiting"],
        "residuals": len(data.get("residuals", [])),
        "downtime_planned_s": planned_down,
    }


def render_run_report(data: dict[str, Any], fmt: str) -> str:
    """``migrate report RUN --format md|html``."""
    template = "run.html.j2" if fmt == "html" else "run.md.j2"
    extra: dict[str, Any] = {"summary": run_summary(data)}
    if fmt == "html":
        extra["timeline"] = Markup(render_run_svg(data))
    return _ENV.get_template(template).render(run=data, **extra)


def render_run_markdown(data: dict[str, Any]) -> str:
    """The run report as Markdown."""
    return render_run_report(data, "md")


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
