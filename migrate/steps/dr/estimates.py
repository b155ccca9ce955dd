"""What a drill is expected to take and cost, before it runs.

RTO estimates start from published rates (a restore is mostly size-independent, because EBS loads
blocks lazily, ~15 min; a point-in-time restore replays logs on top; a cross-Region copy moves every
byte) and are replaced by this account's own measurements once earlier drills recorded them:
the measured RTO per GiB of earlier drills, scaled to this database's size.

The cost is the temporary copy: on-demand instance hours (RDS bills per second with a 10-minute
minimum) for the drill's duration plus the teardown, and its storage for that time. Prices are
us-east-1 on-demand list prices (single-AZ; Multi-AZ doubles), rounded; the plan says so.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from statistics import median
from typing import Any

# (fixed seconds, seconds per GiB)
RATES = {
    "restore": (900.0, 1.0),
    "point_in_time_extra": (300.0, 0.5),
    "cross_region_copy": (300.0, 30.0),
    "cluster_writer": (600.0, 0.0),
    "teardown": (600.0, 0.0),
    "check": (30.0, 0.0),
}
HOURLY_USD = {
    "db.t3.micro": 0.017,
    "db.t3.small": 0.034,
    "db.t3.medium": 0.068,
    "db.t3.large": 0.136,
    "db.t4g.micro": 0.016,
    "db.t4g.small": 0.032,
    "db.t4g.medium": 0.065,
    "db.t4g.large": 0.129,
    "db.m5.large": 0.171,
    "db.m6g.large": 0.152,
    "db.m6i.large": 0.171,
    "db.m7g.large": 0.168,
    "db.r5.large": 0.25,
    "db.r6g.large": 0.225,
    "db.r6i.large": 0.25,
    "db.r7g.large": 0.239,
}
# A size's multiple of ``large`` (every family doubles per size step).
SIZE_FACTOR = {
    "micro": 0.125,
    "small": 0.25,
    "medium": 0.5,
    "large": 1.0,
    "xlarge": 2.0,
    "2xlarge": 4.0,
    "4xlarge": 8.0,
    "8xlarge": 16.0,
    "12xlarge": 24.0,
    "16xlarge": 32.0,
    "24xlarge": 48.0,
}
LARGE_FALLBACK_USD = 0.25
STORAGE_GB_MONTH_USD = 0.115
MINIMUM_BILLED_S = 600.0


def _rate(name: str, gib: float) -> float:
    fixed, per_gib = RATES[name]
    return fixed + per_gib * gib


def hourly_price(instance_class: str | None, *, multi_az: bool = False) -> float:
    """Approximate on-demand USD per hour of ``instance_class``."""
    name = str(instance_class or "")
    price = HOURLY_USD.get(name)
    if price is None:
        family, _, size = name.rpartition(".")
        large = HOURLY_USD.get(f"{family}.large", LARGE_FALLBACK_USD)
        price = large * SIZE_FACTOR.get(size, 1.0)
    return round(price * (2 if multi_az else 1), 4)


def default_rto(gib: float, *, point_in_time: bool, cross_region: bool, cluster: bool) -> float:
    """Seconds to a reachable copy by the published rates."""
    seconds = _rate("restore", gib) + _rate("check", gib)
    if point_in_time:
        seconds += _rate("point_in_time_extra", gib)
    if cross_region:
        seconds += _rate("cross_region_copy", gib)
    if cluster:
        seconds += _rate("cluster_writer", gib)
    return round(seconds)


def estimate_rto(
    target: str,
    gib: float,
    history: Sequence[Mapping[str, Any]],
    **kinds: bool,
) -> tuple[float, str]:
    """``(seconds, basis)``: from this database's earlier drills, else any earlier drill's RTO
    per GiB, else the published rates. ``history`` holds earlier ``dr.check`` results."""
    measured = [h for h in history if isinstance(h.get("rto_s"), (int, float))]
    own = [h for h in measured if h.get("target") == target]
    pool = own or measured
    if pool:
        per_gib = median(float(h["rto_s"]) / max(float(h.get("gib") or 1.0), 1.0) for h in pool)
        seconds = round(per_gib * max(gib, 1.0))
        whose = "this database's" if own else "this account's"
        return seconds, f"measured: median of {whose} {len(pool)} earlier drill(s), scaled by size"
    return default_rto(gib, **kinds), "published rates (no earlier drill measured yet)"


def drill_cost(
    instance_class: str | None, gib: float, seconds: float, *, multi_az: bool, instances: int = 1
) -> float:
    """USD of the temporary copy for ``seconds`` (plus teardown), storage included."""
    billed = max(seconds + _rate("teardown", gib), MINIMUM_BILLED_S)
    hours = billed / 3600
    compute = hourly_price(instance_class, multi_az=multi_az) * hours * instances
    storage = STORAGE_GB_MONTH_USD * gib * hours / 730
    return round(compute + storage, 4)


def teardown_seconds(gib: float) -> float:
    """Seconds to delete the copy."""
    return round(_rate("teardown", gib))
