"""Terminal views of runs, shared by the CLI and the sandbox demo."""

from __future__ import annotations

from collections import Counter
from typing import Any

from migrate.store.status import ActionStatus

WIDTH = 80
ID_WIDTH = 22


def shell_lines(words: list[str], indent: int, width: int = WIDTH) -> list[str]:
    """A command wrapped with `` \\`` continuations so that it fits ``width`` and still pastes
    into a shell as one command (a single word longer than the line is left whole)."""
    lines: list[str] = []
    current = " " * indent
    for word in words:
        candidate = f"{current} {word}" if current.strip() else f"{current}{word}"
        if len(candidate) + 2 > width and current.strip():
            lines.append(current + " \\")
            current = " " * (indent + 2) + word
        else:
            current = candidate
    lines.append(current)
    return lines


def status_table(data: dict[str, Any]) -> str:
    """A run's status (``commands.status`` data) as a table that fits 80 columns: full step ids,
    and per resource which gate waits with the exact command that approves it."""
    run_id = data["id"]
    lines = [f"run {run_id}  {data['playbook']}  [{data['status']}]"]
    if data.get("lock"):
        lines.append(f"  locked by {data['lock']['holder']}")
    lines.append(f"  {'STEP':<{ID_WIDTH}} {'STATE':<18} {'PROGRESS':<9} WAIT/GATE")
    for s in data["steps"]:
        acts = [a for a in s["actions"] if a["status"] != ActionStatus.SUPERSEDED]
        done = sum(1 for a in acts if a["status"] == ActionStatus.DONE)
        note = ""
        waits = [
            a["wait_until"] for a in acts if a["status"] == ActionStatus.WAITING and a["wait_until"]
        ]
        gates = [a for a in acts if a["status"] == ActionStatus.AWAITING_APPROVAL]
        if waits:
            note = f"until {min(waits).replace('T', ' ')[:16]}"
        elif any(a["status"] == ActionStatus.WAITING for a in acts):
            note = "polling"
        elif gates:
            kinds = Counter(a["gate"] or "approve" for a in gates)
            note = "approve: " + ", ".join(f"{k} ({n})" for k, n in sorted(kinds.items()))
        elif s["error"]:
            note = s["error"]
        step_id = s["id"]
        if len(step_id) > ID_WIDTH:
            lines.append(f"  {step_id}")  # the whole id, as `migrate approve` wants it
            step_id = ""
        row = f"  {step_id:<{ID_WIDTH}} {s['status'][:18]:<18} {f'{done}/{len(acts)}':<9} {note}"
        lines.append(row if len(row) <= WIDTH else row[: WIDTH - 1] + "\u2026")
        for a in gates:
            gate = a["gate"] or "approve"
            lines.append(_fit(f"    {a['target']}: waits for {gate}"))
            words = ["migrate", "approve", run_id, s["id"], "--target", a["target"]]
            lines.extend(shell_lines([*words, "--gate", gate] if a["gate"] else words, 6))
        for a in acts:
            if a["status"] == ActionStatus.FAILED and a["error"]:
                # Fits 80 columns; `status --json` and `report` have the whole message.
                lines.append(_fit(f"    ! {a['target'][:24]}: {a['error']}"))
    return "\n".join(lines)


def _fit(line: str) -> str:
    return line if len(line) <= WIDTH else line[: WIDTH - 1] + "\u2026"
