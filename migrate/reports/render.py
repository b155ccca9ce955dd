"""Rendering plans and runs for people: a terminal summary, Markdown and self-contained HTML."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2

from migrate.util import format_duration

_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("migrate.reports", "templates"),
    autoescape=jinja2.select_autoescape(enabled_extensions=("html",), default=False),
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
_ENV.filters["duration"] = format_duration


def plan_totals(body: dict[str, Any]) -> dict[str, Any]:
    """Counts and estimate sums over a plan body."""
    actions = [a for s in body["steps"] for a in s["actions"]]
    return {
        "actions": len(actions),
        "gates": sum(1 for s in body["steps"] for a in s["actions"] if a["gate"] or s["gated"]),
        "duration_s": sum(a["estimate"]["duration_s"] for a in actions),
        "downtime_s": sum(a["estimate"]["downtime_s"] for a in actions),
        "api_requests": sum(a["estimate"]["api_requests"] for a in actions),
        "cost_usd": sum(a["estimate"]["cost_usd"] for a in actions),
        "compliant": sum(len(s.get("compliant", [])) for s in body["steps"]),
        "risks": sum(len(a["risks"]) for a in actions),
    }


def render_plan(body: dict[str, Any]) -> str:
    """The plan summary printed by ``migrate plan``."""
    totals = plan_totals(body)
    lines = [f"Plan {body.get('plan_id', '')} for {body['name']} ({body['playbook']})", ""]
    lines.append(f"{'STEP':<16} {'TYPE':<24} {'ACTIONS':>7} {'EST.':>8}  NOTES")
    for s in body["steps"]:
        est = sum(a["estimate"]["duration_s"] for a in s["actions"])
        notes = []
        if s["known_after"]:
            notes.append("known after " + ", ".join(s["known_after"]))
        gates = sum(1 for a in s["actions"] if a["gate"] or s["gated"])
        if gates:
            notes.append(f"{gates} gate(s)")
        if s.get("compliant"):
            notes.append(f"{len(s['compliant'])} compliant")
        lines.append(
            f"{s['id'][:16]:<16} {s['uses'][:24]:<24} {len(s['actions']):>7} "
            f"{format_duration(est):>8}  {'; '.join(notes)}"
        )
    lines.append("")
    for s in body["steps"]:
        for a in s["actions"]:
            gate = f" [gate: {a['gate'] or 'approve'}]" if a["gate"] or s["gated"] else ""
            lines.append(f"  {s['id']}: {a['summary']}{gate}")
            for risk in a["risks"]:
                lines.append(f"      ! {risk}")
    lines.append("")
    lines.append(
        f"{totals['actions']} action(s), {totals['gates']} gate(s), est. "
        f"{format_duration(totals['duration_s'])}, downtime "
        f"{format_duration(totals['downtime_s'])}, ~{totals['api_requests']} API requests, "
        f"{totals['compliant']} resource(s) already compliant."
    )
    if body.get("plan_id"):
        lines.append(f"Apply exactly this plan with: migrate run --plan {body['plan_id']}")
    return "\n".join(lines)


def write_plan_report(body: dict[str, Any], path: Path) -> None:
    """Write the plan as Markdown (``.md``) or self-contained HTML (``.html``)."""
    suffix = path.suffix.lower()
    template = {".md": "plan.md.j2", ".html": "plan.html.j2", ".htm": "plan.html.j2"}.get(suffix)
    if template is None:
        from migrate.errors import BadInputError

        raise BadInputError(
            f"--report {path}: the report format comes from the extension; use .md or .html."
        )
    text = _ENV.get_template(template).render(plan=body, totals=plan_totals(body))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def render_run_markdown(data: dict[str, Any]) -> str:
    """``migrate report RUN --format md``."""
    return _ENV.get_template("run.md.j2").render(run=data)
