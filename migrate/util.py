"""Small helpers shared by the CLI and reports: durations."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from migrate.errors import BadInputError

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> float:
    """``90``, ``90s``, ``30m``, ``2h``, ``7d``, ``1h30m`` -> seconds."""
    value = text.strip().lower()
    if re.fullmatch(r"\d+(\.\d+)?", value):
        return float(value)
    parts = re.findall(r"(\d+(?:\.\d+)?)([smhdw])", value)
    if not parts or "".join(n + u for n, u in parts) != value:
        raise BadInputError(
            f"{text!r} is not a duration. Write it as a number of seconds or with units, e.g. "
            "90s, 30m, 2h, 7d, 1h30m."
        )
    return sum(float(n) * _UNITS[u] for n, u in parts)


def format_duration(seconds: float) -> str:
    """Seconds as a short human duration: ``45s``, ``12m``, ``3h 05m``, ``2d 4h``."""
    seconds = max(0.0, float(seconds))
    if seconds < 60:
        return f"{seconds:.0f}s"
    minutes = seconds / 60
    if minutes < 60:
        return f"{minutes:.0f}m"
    hours, rem = divmod(int(minutes), 60)
    if hours < 48:
        return f"{hours}h {rem:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d {hours}h"


def utcnow() -> datetime:
    """Naive UTC now: every timestamp in the state store is UTC without tzinfo."""
    return datetime.now(UTC).replace(tzinfo=None)
