"""Terminal views of runs, shared by the CLI and the sandbox demo."""

from __future__ import annotations

from typing import Any

from migrate.store.status import ActionStatus


def status_table(data: dict[str, Any]) -> str:
    """A run's status (``commands.status`` data) as a table that fits 80 columns."""
    lines = [f"run {data['id']}  {data['playbook']}  [{data['status']}]"]
    if data.get("lock"):
        lines.append(f"  locked by {data['lock']['holder']}")
    lines.append(f"  {'STEP':<18} {'STATE':<18} {'PROGRESS':<10} {'WAIT/GATE':<28}")
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
            note = f"approve: {gates[0]['gate'] or 'step'} ({len(gates)})"
        elif s["error"]:
            note = s["error"][:28]
        lines.append(
            f"  {s['id'][:18]:<18} {s['status'][:18]:<18} {f'{done}/{len(acts)}':<10} {note[:28]}"
        )
        for a in acts:
            if a["status"] == ActionStatus.FAILED and a["error"]:
                # Fits 80 columns; `status --json` and `report` have the whole message.
                line = f"    ! {a['target'][:24]}: {a['error']}"
                lines.append(line if len(line) <= 80 else line[:79] + "\u2026")
    return "\n".join(lines)
