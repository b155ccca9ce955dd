"""The per-key usage model: combos folded into keys and role sessions, and the report around them.

A long-lived access key (``AKIA...``) is the unit of the model: who owns it, when it was first and
last seen, which calls it made (with error counts and the IAM action each needs), from which IPs,
user agents, regions and VPC endpoints, and what IAM says about its last use. Temporary keys
(``ASIA...``) are never treated as user keys: their calls are folded into the role (or user) that
issued the session.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from migrate.cloudtrail.actions import iam_action
from migrate.cloudtrail.parse import DIMENSIONS, TEMPORARY_KEY, Combo, ComboValue

KIND_KEY = "access_key"
KIND_SESSION = "temporary"

ATTR_EC2 = "ec2-instance"
ATTR_ENI = "network-interface"
ATTR_SERVICE = "aws-service"
ATTR_OUTSIDE = "outside-aws-or-nat"

_DIM = {name: index for index, name in enumerate(DIMENSIONS)}


@dataclass
class CallStat:
    """One API call type made by a principal: counts, errors by code, its IAM action, and the
    resource ARNs it named.

    ``resources`` (access keys only): ARNs of the kinds the IAM action accepts, generalised to
    wildcards when there were many (``arn:aws:s3:::bucket/folder/*``); ``*`` among them means some
    calls named no resource (or the action takes none). Empty: unknown (no resource evidence was
    ingested for this call, e.g. through Athena).
    """

    event_source: str
    event_name: str
    iam_action: str | None
    count: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    resources: list[str] = field(default_factory=list)
    # IAM actions its request parameters showed it needs too (an ACL header on PutObject:
    # s3:PutObjectAcl; a profile on RunInstances: iam:PassRole); access keys only.
    also: list[str] = field(default_factory=list)

    @property
    def error_count(self) -> int:
        """Calls that failed (any error code)."""
        return sum(self.errors.values())


@dataclass
class KeyStatus:
    """What IAM says about an access key (``list_access_keys`` + ``get_access_key_last_used``)."""

    user_name: str | None
    status: str | None = None
    created: str | None = None
    last_used: str | None = None
    last_used_service: str | None = None
    last_used_region: str | None = None
    in_account: bool = True


@dataclass
class IpAttribution:
    """Where a source IP comes from: an EC2 instance/ENI, an AWS service, or outside AWS/NAT."""

    ip: str
    kind: str
    region: str | None = None
    instance_id: str | None = None
    instance_name: str | None = None
    instance_profile_arn: str | None = None
    eni_id: str | None = None
    eni_description: str | None = None

    @property
    def flagged(self) -> bool:
        """True for IPs that map to nothing in the account ("outside AWS or behind NAT")."""
        return self.kind == ATTR_OUTSIDE

    def label(self) -> str:
        """A short human description."""
        if self.kind == ATTR_EC2:
            name = f" ({self.instance_name})" if self.instance_name else ""
            return f"{self.instance_id}{name}"
        if self.kind == ATTR_ENI:
            return f"{self.eni_id} {self.eni_description or ''}".strip()
        if self.kind == ATTR_SERVICE:
            return "AWS service"
        return "outside AWS or behind NAT"


@dataclass
class PrincipalUsage:
    """Usage of one long-lived key (``kind=access_key``) or one session issuer (``temporary``)."""

    principal: str
    kind: str
    owner: str | None = None
    owner_arn: str | None = None
    identity_type: str | None = None
    first_seen: str | None = None
    last_seen: str | None = None
    calls: int = 0
    errors: int = 0
    actions: list[CallStat] = field(default_factory=list)
    source_ips: dict[str, int] = field(default_factory=dict)
    user_agents: dict[str, int] = field(default_factory=dict)
    regions: dict[str, int] = field(default_factory=dict)
    vpc_endpoints: dict[str, int] = field(default_factory=dict)
    invoked_by: dict[str, int] = field(default_factory=dict)
    # source IP -> {VPC endpoint id ("" for none): calls}: which network each address was in,
    # so attribution looks for the IP in the endpoint's VPC only (private IPs repeat across VPCs).
    ip_endpoints: dict[str, dict[str, int]] = field(default_factory=dict)
    sessions: int = 0
    iam: KeyStatus | None = None

    @property
    def iam_actions(self) -> list[str]:
        """The distinct IAM actions of successful and failed calls, sorted."""
        return sorted({c.iam_action for c in self.actions if c.iam_action})


@dataclass
class UsageReport:
    """Everything ``migrate trail usage`` shows and the keys-to-roles step reads."""

    dataset: str
    source: str
    since: str | None
    until: str | None
    generated_at: str
    keys: list[PrincipalUsage] = field(default_factory=list)
    sessions: list[PrincipalUsage] = field(default_factory=list)
    ips: dict[str, IpAttribution] = field(default_factory=dict)
    stats: dict[str, Any] = field(default_factory=dict)
    id: str | None = None
    # False when IAM enrichment (every key's status and last use, keys without events) and IP
    # attribution were skipped: no AWS credentials (a folder of downloaded logs analysed offline),
    # credentials of another account than the logs', or IAM refused. The usage itself is complete;
    # what IAM would add is not. Reports stored before this field existed were always enriched.
    enriched: bool = True
    not_enriched_reason: str | None = None

    def enrichment_note(self) -> str | None:
        """The one line that says what an unenriched report lacks, and why (None if enriched)."""
        if self.enriched:
            return None
        return (
            f"not enriched: {self.not_enriched_reason or 'AWS was not asked'}; usage is computed "
            "from the log files alone, IAM enrichment (last used, keys without events) and IP "
            "attribution were skipped, and the stored report is marked not enriched."
        )

    def refuse_switching_reason(self) -> str | None:
        """Why keys-to-roles must not switch keys from this report (None: it may).

        Without IAM's view, a key that made no call in the window is simply absent, and one of
        another account cannot be told apart, so retiring keys from such a report is unsafe.
        """
        if self.enriched:
            return None
        return (
            f"usage report {self.id or '(unsaved)'} is not enriched "
            f"({self.not_enriched_reason or 'AWS was not asked'}): it lacks IAM's last-used "
            "dates and the keys without events. Re-run `migrate trail usage` with credentials of "
            "the account the logs belong to, then pass the new report id."
        )

    def key(self, key_id: str) -> PrincipalUsage:
        """The usage of one access key (KeyError if the report does not know it)."""
        for usage in self.keys:
            if usage.principal == key_id:
                return usage
        raise KeyError(key_id)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (stored in the state DB, printed by ``--json``)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> UsageReport:
        """Inverse of :meth:`to_dict`."""

        def principal(d: dict[str, Any]) -> PrincipalUsage:
            d = dict(d)
            d["actions"] = [CallStat(**c) for c in d.get("actions", [])]
            d["iam"] = KeyStatus(**d["iam"]) if d.get("iam") else None
            return PrincipalUsage(**d)

        return cls(
            dataset=data["dataset"],
            source=data["source"],
            since=data.get("since"),
            until=data.get("until"),
            generated_at=data["generated_at"],
            keys=[principal(k) for k in data.get("keys", [])],
            sessions=[principal(s) for s in data.get("sessions", [])],
            ips={ip: IpAttribution(**a) for ip, a in data.get("ips", {}).items()},
            stats=dict(data.get("stats", {})),
            id=data.get("id"),
            enriched=bool(data.get("enriched", True)),
            not_enriched_reason=data.get("not_enriched_reason"),
        )


def _bump(counter: dict[str, int], name: str, count: int) -> None:
    if name:
        counter[name] = counter.get(name, 0) + count


def _role_name(arn: str) -> str:
    return arn.rsplit("/", 1)[-1] if "/" in arn else arn


def fold(
    rows: Iterable[tuple[Combo, ComboValue]],
    since_day: str | None = None,
    resources: Mapping[tuple[str, str, str], list[str]] | None = None,
    also: Mapping[tuple[str, str, str], list[str]] | None = None,
) -> tuple[dict[str, PrincipalUsage], dict[str, PrincipalUsage]]:
    """Fold combos into ``(keys by key id, sessions by issuer ARN)``.

    ``since_day`` (``YYYY-MM-DD``) drops combos of earlier days, so one ingested dataset serves
    any shorter window. ``resources`` (``(key id, eventSource, eventName)`` -> ARNs, already
    cut to the window) fills each access key call's ``resources``, ``also`` its ``also``.
    """
    keys: dict[str, PrincipalUsage] = {}
    sessions: dict[str, PrincipalUsage] = {}
    calls: dict[tuple[str, str, str], CallStat] = {}
    session_arns: dict[str, set[str]] = {}
    i_day, i_key, i_type, i_arn, i_user = (_DIM[n] for n in DIMENSIONS[:5])
    for combo, (count, first, last) in rows:
        if since_day and combo[i_day] < since_day:
            continue
        key_id = combo[i_key]
        if key_id == TEMPORARY_KEY or not key_id.startswith("AKIA"):
            issuer = combo[_DIM["issuer_arn"]] or combo[i_arn] or key_id
            usage = sessions.get(issuer)
            if usage is None:
                usage = sessions[issuer] = PrincipalUsage(
                    principal=issuer,
                    kind=KIND_SESSION,
                    owner=_role_name(issuer),
                    owner_arn=issuer,
                    identity_type=combo[_DIM["issuer_type"]] or combo[i_type] or None,
                )
            session_arns.setdefault(issuer, set()).add(combo[i_arn])
            principal = issuer
        else:
            usage = keys.get(key_id)
            if usage is None:
                usage = keys[key_id] = PrincipalUsage(
                    principal=key_id,
                    kind=KIND_KEY,
                    owner=combo[i_user] or None,
                    owner_arn=combo[i_arn] or None,
                    identity_type=combo[i_type] or None,
                )
            principal = key_id
        usage.calls += count
        if first and (usage.first_seen is None or first < usage.first_seen):
            usage.first_seen = first
        if last and (usage.last_seen is None or last > usage.last_seen):
            usage.last_seen = last
        source, name, error = (
            combo[_DIM["event_source"]],
            combo[_DIM["event_name"]],
            combo[_DIM["error_code"]],
        )
        stat = calls.get((principal, source, name))
        if stat is None:
            stat = calls[(principal, source, name)] = CallStat(
                source, name, iam_action(source, name)
            )
            usage.actions.append(stat)
        stat.count += count
        if error:
            stat.errors[error] = stat.errors.get(error, 0) + count
            usage.errors += count
        _bump(usage.source_ips, combo[_DIM["source_ip"]], count)
        _bump(usage.user_agents, combo[_DIM["user_agent"]], count)
        _bump(usage.regions, combo[_DIM["region"]], count)
        _bump(usage.vpc_endpoints, combo[_DIM["vpc_endpoint_id"]], count)
        _bump(usage.invoked_by, combo[_DIM["invoked_by"]], count)
        if combo[_DIM["source_ip"]]:
            per_ip = usage.ip_endpoints.setdefault(combo[_DIM["source_ip"]], {})
            per_ip[combo[_DIM["vpc_endpoint_id"]]] = (
                per_ip.get(combo[_DIM["vpc_endpoint_id"]], 0) + count
            )
    for issuer, arns in session_arns.items():
        sessions[issuer].sessions = len(arns)
    if resources or also:
        for (principal, source, name), stat in calls.items():
            if principal not in keys:
                continue
            found = (resources or {}).get((principal, source, name))
            if found:
                stat.resources = sorted(found)
            added = (also or {}).get((principal, source, name))
            if added:
                stat.also = sorted(added)
    for usage in (*keys.values(), *sessions.values()):
        usage.actions.sort(key=lambda c: (-c.count, c.event_source, c.event_name))
    return keys, sessions
