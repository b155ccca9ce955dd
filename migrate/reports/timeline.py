"""The plan timeline: actions scheduled on a time axis, drawn as an inline SVG Gantt chart.

Scheduling follows the runner: steps start when every step they depend on has ended, and a step's
actions run one after another. Gates are milestones (a diamond) at the start of the gated action;
actions with estimated downtime are drawn as downtime windows.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime
from html import escape
from typing import Any

from migrate.util import format_duration

LABEL_W = 260
CHART_W = 720
ROW_H = 18
HEADER_H = 22
AXIS_H = 28


@dataclass(frozen=True)
class Bar:
    """One action on the time axis."""

    step: str
    target: str
    label: str  # the target as shown (an access key with its IAM user)
    phase: str  # what the action does to it ("final snapshot", "cut over")
    summary: str
    start_s: float
    duration_s: float
    downtime: bool
    downtime_s: float
    gate: str | None
    known_after: bool


def schedule(body: dict[str, Any]) -> tuple[list[Bar], float]:
    """Bars for every planned action, and the total span in seconds."""
    ends: dict[str, float] = {}
    bars: list[Bar] = []
    for step in body["steps"]:
        start = max((ends.get(d, 0.0) for d in step.get("depends_on", [])), default=0.0)
        t = start
        for a in step["actions"]:
            duration = float(a["estimate"]["duration_s"])
            bars.append(
                Bar(
                    step=step["id"],
                    target=a["target"],
                    label=target_label(a),
                    phase=_phase(str(a.get("kind", ""))),
                    summary=a["summary"],
                    start_s=t,
                    duration_s=duration,
                    downtime=float(a["estimate"]["downtime_s"]) > 0,
                    downtime_s=float(a["estimate"]["downtime_s"]),
                    gate=a["gate"] or ("approve" if step.get("gated") else None),
                    known_after=bool(a.get("known_after")),
                )
            )
            t += duration
        ends[step["id"]] = t
    return bars, max(ends.values(), default=0.0)


def target_label(action: dict[str, Any]) -> str:
    """The target, with the IAM user for an access key (``AKIA... (app-server)``)."""
    user = (action.get("details") or {}).get("user")
    target = str(action["target"])
    if user and target.startswith(("AKIA", "ASIA")) and str(user) not in target:
        return f"{target} ({user})"
    return target


def _phase(kind: str) -> str:
    """``rds.final_snapshot`` -> ``final snapshot``: the row label of an action."""
    return kind.split(".", 1)[-1].replace("_", " ") or kind


def _ticks(total: float) -> list[float]:
    steps = [1, 5, 10, 30, 60, 300, 600, 1800, 3600, 7200, 21600, 43200, 86400, 604800]
    for step in steps:
        if total / step <= 8:
            return [i * step for i in range(int(total // step) + 1)]
    return [0.0, total]


def night_bars(bars: list[Bar]) -> tuple[list[Bar], float, float]:
    """The migration night of each resource whose workload stops, lined up at its own
    stop-writes (``+0``): its bars from just before to just after its downtime window, and the
    span they need. Drawn on its own scale: beside week-long watch windows and soaks (and the
    other databases' nights, which come after a day's soak each), a 1-hour night is a few
    pixels. Empty when nothing stops a workload."""
    down: dict[str, tuple[float, float]] = {}
    for b in bars:
        if b.downtime:
            start, length = down.get(b.target, (b.start_s, 0.0))
            down[b.target] = (min(start, b.start_s), max(length, b.downtime_s, b.duration_s))
    if not down:
        return [], 0.0, 0.0
    longest = max(length for _, length in down.values())
    pad = max(longest * 0.05, 60.0)
    out: list[Bar] = []
    for b in bars:
        if b.target not in down:
            continue
        start, length = down[b.target]
        rel = b.start_s - start + pad
        if rel + b.duration_s < 0 or rel > length + 2 * pad:
            continue  # the warm-up long before, the soak and cleanup after
        out.append(dataclasses.replace(b, start_s=max(rel, 0.0)))
    return out, longest + 2 * pad, pad


def render_svg(body: dict[str, Any], *, night: bool = False) -> str:
    """An SVG Gantt chart of the plan (self-contained, no scripts, prints well); ``night``:
    only the targets with downtime, from the first stop-writes to the last cut-over."""
    bars, total = schedule(body)
    pad = 0.0  # night: the time drawn before each stop-writes (the axis' +0)
    if night:
        bars, total, pad = night_bars(bars)
        if not bars:
            return ""
    scale = CHART_W / total
    rows: list[str] = []
    windows: list[str] = []
    y = AXIS_H
    current_step = None
    current_target = None
    per_target: dict[tuple[str, str], int] = {}
    for bar in bars:
        per_target[(bar.step, bar.target)] = per_target.get((bar.step, bar.target), 0) + 1
    for bar in bars:
        if bar.step != current_step:
            current_step, current_target = bar.step, None
            rows.append(f'<text class="step-label" x="4" y="{y + 15}">{escape(bar.step)}</text>')
            y += HEADER_H
        several = per_target[(bar.step, bar.target)] > 1
        if several and bar.target != current_target:
            # A resource with several phases: its name once, then one row per phase.
            rows.append(
                f'<text class="resource-label" x="14" y="{y + 13}">'
                f"{escape(_short(bar.label))}</text>"
            )
            y += ROW_H
        current_target = bar.target
        start = bar.start_s
        x = LABEL_W + start * scale
        width = max(min(bar.duration_s * scale, CHART_W - start * scale), 2.0)
        if bar.downtime:
            # The window the workload is down for (writes stopped), which may span later actions.
            band = max(bar.downtime_s * scale, 2.0)
            windows.append(
                f'<rect class="downtime-window" x="{x:.1f}" y="{y}" width="{band:.1f}" '
                f'height="{ROW_H}"><title>downtime window of {escape(bar.target)}: about '
                f"{escape(format_duration(bar.downtime_s))}</title></rect>"
            )
        cls = "action-bar downtime" if bar.downtime else "action-bar"
        if bar.known_after:
            cls += " known-after"
        title = f"{bar.summary} ({format_duration(bar.duration_s)})"
        label = (
            f'<text class="phase-label" x="26" y="{y + 13}">{escape(bar.phase)}</text>'
            if several
            else f'<text class="target-label" x="14" y="{y + 13}">'
            f"{escape(_short(bar.label))} \u00b7 {escape(bar.phase)}</text>"
        )
        rows.append(
            label + f'<rect class="{cls}" x="{x:.1f}" y="{y + 3}" width="{width:.1f}" '
            f'height="{ROW_H - 6}" rx="2"><title>{escape(title)}</title></rect>'
        )
        if bar.gate:
            cx, cy = x, y + ROW_H / 2
            rows.append(
                f'<polygon class="gate" points="{cx:.1f},{cy - 6:.1f} {cx + 6:.1f},{cy:.1f} '
                f'{cx:.1f},{cy + 6:.1f} {cx - 6:.1f},{cy:.1f}"><title>gate: '
                f"{escape(bar.gate)} - approval needed before {escape(bar.target)}</title>"
                "</polygon>"
            )
        y += ROW_H
    axis = []
    for tick in _ticks(total - pad):
        x = LABEL_W + (tick + pad) * scale
        axis.append(
            f'<line class="tick" x1="{x:.1f}" y1="{AXIS_H - 6}" x2="{x:.1f}" y2="{y}"/>'
            f'<text class="tick-label" x="{x + 2:.1f}" y="{AXIS_H - 10}">'
            f"{'+' if night else ''}{escape(format_duration(tick))}</text>"
        )
    height = y + 8
    width = LABEL_W + CHART_W + 20
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="timeline" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="timeline of {len(bars)} planned actions">'
        "<style>"
        ".step-label{font:bold 12px sans-serif;fill:#1d2330}"
        ".target-label,.tick-label,.phase-label{font:11px sans-serif;fill:#444}"
        ".resource-label{font:italic 11px sans-serif;fill:#1d2330}"
        ".action-bar{fill:#3b6fb6}.action-bar.downtime{fill:#c0392b}"
        ".action-bar.known-after{fill-opacity:.55}"
        ".gate{fill:#e6a100;stroke:#7a4b00;stroke-width:1}"
        ".tick{stroke:#dde;stroke-width:1}"
        ".downtime-window{fill:#c0392b;fill-opacity:.15}"
        "</style>" + "".join(axis) + "".join(windows) + "".join(rows) + "</svg>"
    )


def _short(target: str, width: int = 38) -> str:
    """Keep the informative end of long targets (file paths, ARNs)."""
    return target if len(target) <= width else "\u2026" + target[-(width - 1) :]


def text_timeline(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The same schedule as rows (for Markdown and JSON)."""
    bars, _ = schedule(body)
    return [
        {
            "step": b.step,
            "target": b.target,
            "phase": b.phase,
            "start": format_duration(b.start_s),
            "end": format_duration(b.start_s + b.duration_s),
            "downtime": b.downtime,
            "gate": b.gate,
        }
        for b in bars
    ]


def render_run_svg(data: dict[str, Any]) -> str:
    """Actual against planned, per action of a run: the dark bar is when the action really ran
    (start to end, on the wall clock from the run's first action), the outline behind it how
    long the plan said it would take. Actions that never started have no row."""
    rows_in: list[tuple[str, str, str, datetime, float, float]] = []
    for step in data.get("steps", []):
        for a in step.get("actions", []):
            if not a.get("started_at"):
                continue
            start = datetime.fromisoformat(a["started_at"])
            end = datetime.fromisoformat(a["finished_at"]) if a.get("finished_at") else start
            rows_in.append(
                (
                    step["id"],
                    str(a["target"]),
                    _phase(str(a.get("kind", ""))),
                    start,
                    max((end - start).total_seconds(), 0.0),
                    float(a.get("planned_s") or a["estimate"].get("duration_s", 0.0)),
                )
            )
    if not rows_in:
        return ""
    origin = min(r[3] for r in rows_in)
    total = max(max((r[3] - origin).total_seconds() + max(r[4], r[5]) for r in rows_in), 1.0)
    scale = CHART_W / total
    out: list[str] = []
    y = AXIS_H
    current = None
    for step_id, target, phase, start, actual, planned in rows_in:
        if step_id != current:
            current = step_id
            out.append(f'<text class="step-label" x="4" y="{y + 15}">{escape(step_id)}</text>')
            y += HEADER_H
        x = LABEL_W + (start - origin).total_seconds() * scale
        out.append(
            f'<text class="target-label" x="14" y="{y + 13}">'
            f"{escape(_short(target, 30))} \u00b7 {escape(phase)}</text>"
            f'<rect class="planned-bar" x="{x:.1f}" y="{y + 2}" '
            f'width="{max(planned * scale, 1.0):.1f}" height="{ROW_H - 4}" rx="2">'
            f"<title>planned {escape(format_duration(planned))}</title></rect>"
            f'<rect class="actual-bar" x="{x:.1f}" y="{y + 5}" '
            f'width="{max(actual * scale, 2.0):.1f}" height="{ROW_H - 10}" rx="2">'
            f"<title>took {escape(format_duration(actual))}</title></rect>"
        )
        y += ROW_H
    axis = []
    for tick in _ticks(total):
        x = LABEL_W + tick * scale
        axis.append(
            f'<line class="tick" x1="{x:.1f}" y1="{AXIS_H - 6}" x2="{x:.1f}" y2="{y}"/>'
            f'<text class="tick-label" x="{x + 2:.1f}" y="{AXIS_H - 10}">'
            f"+{escape(format_duration(tick))}</text>"
        )
    height, width = y + 8, LABEL_W + CHART_W + 20
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="timeline" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="actual against planned, {len(rows_in)} actions">'
        "<style>"
        ".step-label{font:bold 12px sans-serif;fill:#1d2330}"
        ".target-label,.tick-label{font:11px sans-serif;fill:#444}"
        ".planned-bar{fill:none;stroke:#3b6fb6;stroke-dasharray:3 2}"
        ".actual-bar{fill:#1d2330}.tick{stroke:#dde;stroke-width:1}"
        "</style>" + "".join(axis) + "".join(out) + "</svg>"
    )
