"""DR drill evidence and history as Markdown and self-contained HTML, with an RTO-over-drills plot.

The plot is inline SVG (no script, no external asset): one line of points per database, its RTO
per drill in order, the RTO target as a dashed line, misses drawn hollow and red.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from markupsafe import Markup

from migrate.reports.render import _ENV
from migrate.util import format_duration

WIDTH, HEIGHT = 760, 260
LEFT, RIGHT, TOP, BOTTOM = 70, 160, 20, 40
COLOURS = ("#2f6db5", "#c2572b", "#3b8a3a", "#8a4fb0", "#b08a1f", "#1f8a8a")


def rto_plot(drills: Sequence[Mapping[str, Any]]) -> str:
    """An SVG of measured RTO per drill (x: drills in time order, y: seconds) per database."""
    points = [d for d in drills if d.get("kind") in ("instance", "cluster")]
    measured = [float(d["rto_s"]) for d in points if isinstance(d.get("rto_s"), (int, float))]
    targets = [float(d["rto_target_s"]) for d in points if d.get("rto_target_s")]
    top = max([*measured, *targets, 1.0]) * 1.1
    # One x slot per drill (run), in the order the drills started; its databases share it.
    first: dict[str, str] = {}
    for d in points:
        run = str(d["run"])
        first[run] = min(first.get(run, str(d["at"])), str(d["at"]))
    order = sorted(first, key=lambda run: (first[run], run))
    slot = {run: i for i, run in enumerate(order)}
    inner_w = WIDTH - LEFT - RIGHT
    inner_h = HEIGHT - TOP - BOTTOM

    def x(i: int) -> float:
        return LEFT + (inner_w * (i + 0.5) / max(len(order), 1))

    def y(seconds: float) -> float:
        return TOP + inner_h * (1 - seconds / top)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="rto-plot" width="{WIDTH}" '
        f'height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        'aria-label="Measured RTO per drill">',
        f'<line x1="{LEFT}" y1="{TOP + inner_h}" x2="{LEFT + inner_w}" y2="{TOP + inner_h}" '
        'stroke="#667"/>',
        f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{TOP + inner_h}" stroke="#667"/>',
    ]
    for frac in (0.0, 0.5, 1.0):
        value = top * frac
        parts.append(
            f'<text x="{LEFT - 6}" y="{y(value) + 4:.1f}" font-size="11" text-anchor="end">'
            f"{escape(format_duration(value))}</text>"
        )
    for i, key in enumerate(order):
        parts.append(
            f'<text x="{x(i):.1f}" y="{HEIGHT - BOTTOM + 16}" font-size="10" '
            f'text-anchor="middle">{escape(first[key][:16].replace("T", " "))}</text>'
        )
    if targets:
        target = max(targets)
        parts.append(
            f'<line class="rto-target" x1="{LEFT}" y1="{y(target):.1f}" x2="{LEFT + inner_w}" '
            f'y2="{y(target):.1f}" stroke="#a33" stroke-dasharray="6 4"/>'
            f'<text x="{LEFT + 6}" y="{y(target) - 5:.1f}" font-size="11" fill="#a33">'
            f"target {escape(format_duration(target))}</text>"
        )
    names = sorted({str(d["target"]) for d in points})
    for n, name in enumerate(names):
        colour = COLOURS[n % len(COLOURS)]
        series = [
            d for d in points if d["target"] == name and isinstance(d.get("rto_s"), (int, float))
        ]
        series.sort(key=lambda d: slot[str(d["run"])])
        coords = [(x(slot[str(d["run"])]), y(float(d["rto_s"]))) for d in series]
        if len(coords) > 1:
            path = " ".join(f"{cx:.1f},{cy:.1f}" for cx, cy in coords)
            parts.append(f'<polyline points="{path}" fill="none" stroke="{colour}"/>')
        for d, (cx, cy) in zip(series, coords, strict=True):
            missed = d.get("rto_met") is False
            parts.append(
                f'<circle class="rto-point" cx="{cx:.1f}" cy="{cy:.1f}" r="4" '
                f'fill="{"white" if missed else colour}" stroke="{"#a33" if missed else colour}">'
                f"<title>{escape(name)} {escape(str(d['at']))}: RTO "
                f"{escape(format_duration(float(d['rto_s'])))}</title></circle>"
            )
        parts.append(
            f'<text x="{LEFT + inner_w + 10}" y="{TOP + 14 + 14 * n}" font-size="11" '
            f'fill="{colour}">{escape(name[:24])}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def render_dr_report(data: Mapping[str, Any], fmt: str) -> str:
    """``migrate dr report RUN --format md|html``: one run's drill evidence."""
    template = "dr.html.j2" if fmt == "html" else "dr.md.j2"
    return _ENV.get_template(template).render(ev=data, plot=Markup(rto_plot(data["history"])))


def render_dr_history(data: Mapping[str, Any], fmt: str) -> str:
    """``migrate dr history --format md|html``: every drill in the state store, with the plot."""
    template = "dr_history.html.j2" if fmt == "html" else "dr_history.md.j2"
    return _ENV.get_template(template).render(h=data, plot=Markup(rto_plot(data["drills"])))
