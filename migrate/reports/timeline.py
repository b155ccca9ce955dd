"""The plan timeline: actions scheduled on a time axis, drawn as an inline SVG Gantt chart.

Scheduling follows the runner: steps start when every step they depend on has ended, and a step's
actions run one after another. Gates are milestones (a diamond) at the start of the gated action;
actions with estimated downtime are drawn as downtime windows.
"""

from __future__ import annotations

from dataclasses import dataclass
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


def _ticks(total: float) -> list[float]:
    steps = [1, 5, 10, 30, 60, 300, 600, 1800, 3600, 7200, 21600, 43200, 86400, 604800]
    for step in steps:
        if total / step <= 8:
            return [i * step for i in range(int(total // step) + 1)]
    return [0.0, total]


def render_svg(body: dict[str, Any]) -> str:
    """An SVG Gantt chart of the plan (self-contained, no scripts, prints well)."""
    bars, total = schedule(body)
    total = max(total, 1.0)
    scale = CHART_W / total
    rows: list[str] = []
    windows: list[str] = []
    y = AXIS_H
    current_step = None
    for bar in bars:
        if bar.step != current_step:
            current_step = bar.step
            rows.append(f'<text class="step-label" x="4" y="{y + 15}">{escape(bar.step)}</text>')
            y += HEADER_H
        x = LABEL_W + bar.start_s * scale
        width = max(bar.duration_s * scale, 2.0)
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
        rows.append(
            f'<text class="target-label" x="14" y="{y + 13}">{escape(_short(bar.target))}</text>'
            f'<rect class="{cls}" x="{x:.1f}" y="{y + 3}" width="{width:.1f}" '
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
    for tick in _ticks(total):
        x = LABEL_W + tick * scale
        axis.append(
            f'<line class="tick" x1="{x:.1f}" y1="{AXIS_H - 6}" x2="{x:.1f}" y2="{y}"/>'
            f'<text class="tick-label" x="{x + 2:.1f}" y="{AXIS_H - 10}">'
            f"{escape(format_duration(tick))}</text>"
        )
    height = y + 8
    width = LABEL_W + CHART_W + 20
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="timeline" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="timeline of {len(bars)} planned actions">'
        "<style>"
        ".step-label{font:bold 12px sans-serif;fill:#1d2330}"
        ".target-label,.tick-label{font:11px sans-serif;fill:#444}"
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
            "start": format_duration(b.start_s),
            "end": format_duration(b.start_s + b.duration_s),
            "downtime": b.downtime,
            "gate": b.gate,
        }
        for b in bars
    ]
