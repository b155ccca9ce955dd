"""What the account says about keys and IPs: IAM key status and last use, EC2 owners of IPs.

Every IAM user's access keys are listed and ``get_access_key_last_used`` is asked for each, so keys
that never appear in the logs still show up ("unused for N days"). Source IPs are mapped to network
interfaces with ``describe_network_interfaces`` (private IPs by ``addresses.private-ip-address``,
public ones by ``association.public-ip``), then to the instance behind the ENI with its Name tag and
current instance profile. An IP that maps to nothing is flagged "outside AWS or behind NAT": a NAT
gateway, a VPN, an on-premises server, or an instance that no longer exists.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from migrate.aws.errors import error_code
from migrate.cloudtrail.model import (
    ATTR_EC2,
    ATTR_ENI,
    ATTR_OUTSIDE,
    ATTR_SERVICE,
    IpAttribution,
    KeyStatus,
)

_FILTER_VALUES = 100  # values per describe filter (AWS allows up to 200)


def _iso(value: Any) -> str | None:
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%dT%H:%M:%SZ")
    return str(value) if value else None


def iam_keys(iam: Any) -> dict[str, KeyStatus]:
    """Every access key of every IAM user, with status, creation and last use."""
    keys: dict[str, KeyStatus] = {}
    for page in iam.get_paginator("list_users").paginate():
        for user in page.get("Users", []):
            name = user["UserName"]
            try:
                listed = iam.list_access_keys(UserName=name).get("AccessKeyMetadata", [])
            except Exception as exc:
                if error_code(exc) == "NoSuchEntity":  # deleted while we were listing
                    continue
                raise
            for meta in listed:
                key_id = meta["AccessKeyId"]
                status = KeyStatus(
                    user_name=name, status=meta.get("Status"), created=_iso(meta.get("CreateDate"))
                )
                last = iam.get_access_key_last_used(AccessKeyId=key_id).get("AccessKeyLastUsed", {})
                status.last_used = _iso(last.get("LastUsedDate"))
                service = last.get("ServiceName")
                region = last.get("Region")
                status.last_used_service = None if service in (None, "N/A") else service
                status.last_used_region = None if region in (None, "N/A") else region
                keys[key_id] = status
    return dict(sorted(keys.items()))


def classify_ip(value: str) -> str | None:
    """``private``/``public`` for an IP address; None for a service name (``s3.amazonaws.com``)."""
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return None
    return "private" if address.is_private else "public"


def _batches(values: list[str]) -> Iterable[list[str]]:
    for start in range(0, len(values), _FILTER_VALUES):
        yield values[start : start + _FILTER_VALUES]


def attribute_ips(
    ec2_for_region: Any, ips_by_region: dict[str, set[str]]
) -> dict[str, IpAttribution]:
    """Map every source IP to an instance/ENI, an AWS service, or "outside AWS or behind NAT".

    ``ec2_for_region(region)`` returns an EC2 client; ``ips_by_region`` says in which regions'
    events each IP was seen (an ENI is looked up where the calls were made).
    """
    result: dict[str, IpAttribution] = {}
    wanted: dict[str, dict[str, list[str]]] = {}
    for region, seen in sorted(ips_by_region.items()):
        for ip in sorted(seen):
            kind = classify_ip(ip)
            if kind is None:
                result.setdefault(ip, IpAttribution(ip=ip, kind=ATTR_SERVICE))
                continue
            wanted.setdefault(region, {}).setdefault(kind, []).append(ip)
    for region, by_kind in wanted.items():
        ec2 = ec2_for_region(region)
        enis: dict[str, dict[str, Any]] = {}
        for kind, ips in by_kind.items():
            filter_name = (
                "addresses.private-ip-address" if kind == "private" else "association.public-ip"
            )
            for chunk in _batches(ips):
                pages = ec2.get_paginator("describe_network_interfaces").paginate(
                    Filters=[{"Name": filter_name, "Values": chunk}]
                )
                for page in pages:
                    for eni in page.get("NetworkInterfaces", []):
                        for ip in _eni_ips(eni):
                            if ip in chunk:
                                enis[ip] = eni
        instances = _instances(
            ec2, {e.get("Attachment", {}).get("InstanceId") for e in enis.values()}
        )
        for ip, eni in enis.items():
            if ip in result and result[ip].kind in (ATTR_EC2, ATTR_ENI):
                continue
            instance_id = eni.get("Attachment", {}).get("InstanceId")
            instance = instances.get(instance_id or "")
            if instance is not None:
                tags = {t["Key"]: t.get("Value", "") for t in instance.get("Tags", [])}
                result[ip] = IpAttribution(
                    ip=ip,
                    kind=ATTR_EC2,
                    region=region,
                    instance_id=instance_id,
                    instance_name=tags.get("Name"),
                    instance_profile_arn=(instance.get("IamInstanceProfile") or {}).get("Arn"),
                    eni_id=eni.get("NetworkInterfaceId"),
                )
            else:
                result[ip] = IpAttribution(
                    ip=ip,
                    kind=ATTR_ENI,
                    region=region,
                    eni_id=eni.get("NetworkInterfaceId"),
                    eni_description=eni.get("Description") or eni.get("InterfaceType"),
                )
        for listed in by_kind.values():
            for ip in listed:
                result.setdefault(ip, IpAttribution(ip=ip, kind=ATTR_OUTSIDE))
    return dict(sorted(result.items()))


def _eni_ips(eni: dict[str, Any]) -> list[str]:
    ips = [a.get("PrivateIpAddress") for a in eni.get("PrivateIpAddresses", [])]
    ips.append(eni.get("PrivateIpAddress"))
    ips.append((eni.get("Association") or {}).get("PublicIp"))
    for address in eni.get("PrivateIpAddresses", []):
        ips.append((address.get("Association") or {}).get("PublicIp"))
    ips += [a.get("Ipv6Address") for a in eni.get("Ipv6Addresses", [])]
    return [ip for ip in ips if ip]


def _instances(ec2: Any, instance_ids: set[str | None]) -> dict[str, dict[str, Any]]:
    ids = sorted(i for i in instance_ids if i)
    found: dict[str, dict[str, Any]] = {}
    for chunk in _batches(ids):
        try:
            pages = ec2.get_paginator("describe_instances").paginate(InstanceIds=chunk)
            for page in pages:
                for reservation in page.get("Reservations", []):
                    for instance in reservation.get("Instances", []):
                        found[instance["InstanceId"]] = instance
        except Exception as exc:
            if error_code(exc) != "InvalidInstanceID.NotFound":
                raise
    return found


# -- (VPC, IP, time) attribution for keys-to-roles --------------------------------------------
# How sure an attribution is. Only the first two let keys-to-roles switch a host automatically.
CONF_VPC = "vpc-endpoint"  # the call came through an endpoint of the instance's own VPC
CONF_UNIQUE = "unique"  # a public IP, or a private IP no other ENI in any region holds
CONF_AMBIGUOUS = "ambiguous"  # several ENIs (VPCs, regions) hold the address: a human decides
CONF_STALE = "stale"  # the address moved to this host after the calls were made
CONF_UNKNOWN_VPC = "unknown-vpc"  # the call's VPC endpoint no longer exists
CONF_NONE = "none"  # nothing in the account holds the address (outside AWS or behind NAT)
CONFIDENT = frozenset({CONF_VPC, CONF_UNIQUE})


@dataclass
class SourceAttribution:
    """Who made the calls from one (source IP, VPC endpoint) pair, and how sure that is.

    ``candidates``: every EC2 instance or ENI in the account holding the address now (all
    regions), each ``{"instance_id", "name", "region", "vpc_id", "eni_id", "description"}``;
    ``instance_id`` is set only when exactly one instance is left after the VPC filter and the
    time check. ``reason`` says in the operator's words why the confidence is what it is.
    """

    ip: str
    vpc_endpoint_id: str | None
    kind: str
    confidence: str
    vpc_id: str | None = None
    region: str | None = None
    instance_id: str | None = None
    instance_name: str | None = None
    candidates: list[dict[str, Any]] = field(default_factory=list)
    reason: str = ""

    @property
    def confident(self) -> bool:
        """True if a switch may rely on it."""
        return self.kind == ATTR_EC2 and self.confidence in CONFIDENT

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (step facts)."""
        return {**self.__dict__, "candidates": [dict(c) for c in self.candidates]}


def _when(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value.replace(tzinfo=None)
    if not value:
        return None
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")).replace(tzinfo=None)
    except ValueError:
        return None


def _endpoint_vpcs(
    ec2_for_region: Callable[[str], Any], regions: list[str], wanted: set[str]
) -> dict[str, tuple[str, str]]:
    """``{vpce id: (vpc id, region)}`` for the endpoints that still exist (ids are regional)."""
    found: dict[str, tuple[str, str]] = {}
    for region in regions:
        if wanted <= set(found):
            break
        ec2 = ec2_for_region(region)
        for page in ec2.get_paginator("describe_vpc_endpoints").paginate():
            for endpoint in page.get("VpcEndpoints", []):
                if endpoint.get("VpcEndpointId") in wanted:
                    found[endpoint["VpcEndpointId"]] = (endpoint.get("VpcId", ""), region)
    return found


def _holders(
    ec2_for_region: Callable[[str], Any], regions: list[str], ips: set[str]
) -> dict[str, list[dict[str, Any]]]:
    """``{ip: [candidate]}``: every ENI of every region holding one of ``ips`` now."""
    by_kind: dict[str, list[str]] = {}
    for ip in sorted(ips):
        kind = classify_ip(ip)
        if kind and ":" in ip:
            kind = "ipv6"  # IPv6 addresses are the ENI's own, public or not
        if kind:
            by_kind.setdefault(kind, []).append(ip)
    holders: dict[str, list[dict[str, Any]]] = {}
    for region in regions:
        ec2 = ec2_for_region(region)
        enis: list[tuple[str, dict[str, Any]]] = []
        for kind, listed in by_kind.items():
            name = {
                "private": "addresses.private-ip-address",
                "public": "association.public-ip",
                "ipv6": "ipv6-addresses.ipv6-address",
            }[kind]
            for chunk in _batches(listed):
                pages = ec2.get_paginator("describe_network_interfaces").paginate(
                    Filters=[{"Name": name, "Values": chunk}]
                )
                for page in pages:
                    for eni in page.get("NetworkInterfaces", []):
                        enis += [(ip, eni) for ip in set(_eni_ips(eni)) if ip in chunk]
        instances = _instances(ec2, {e.get("Attachment", {}).get("InstanceId") for _, e in enis})
        for ip, eni in enis:
            instance_id = eni.get("Attachment", {}).get("InstanceId")
            instance = instances.get(instance_id or "")
            tags = {t["Key"]: t.get("Value", "") for t in (instance or {}).get("Tags", [])}
            public = (eni.get("Association") or {}).get("PublicIp") == ip
            holders.setdefault(ip, []).append(
                {
                    "instance_id": instance_id if instance is not None else None,
                    "name": tags.get("Name"),
                    "region": region,
                    "vpc_id": eni.get("VpcId"),
                    "eni_id": eni.get("NetworkInterfaceId"),
                    "description": eni.get("Description") or eni.get("InterfaceType"),
                    # A public IP AWS assigned (not an Elastic IP) changes at every stop/start:
                    # the instance holds it only since its last launch.
                    "held_since": _iso((instance or {}).get("LaunchTime"))
                    if public and (eni.get("Association") or {}).get("IpOwnerId") == "amazon"
                    else None,
                }
            )
    return holders


def _label(candidate: dict[str, Any]) -> str:
    what = candidate["instance_id"] or candidate["eni_id"]
    name = f" ({candidate['name']})" if candidate.get("name") else ""
    return f"{what}{name} in {candidate['vpc_id']}, {candidate['region']}"


def attribute_sources(
    ec2_for_region: Callable[[str], Any],
    regions: list[str],
    sources: Iterable[tuple[str, str]],
    first_seen: dict[tuple[str, str], str | None] | None = None,
) -> dict[tuple[str, str], SourceAttribution]:
    """Attribute (source IP, VPC endpoint id or "") pairs to instances by VPC, IP and time.

    Private IPs repeat across VPCs: a call through a VPC endpoint is looked for only in that
    endpoint's VPC; a private IP without one is looked for in every region and attributed only
    if a single ENI holds it. Every region is searched because calls to global services (IAM,
    STS, CloudFront) are logged in us-east-1 wherever the host runs. ``first_seen`` (per pair,
    the first call's time) makes an auto-assigned public IP that the instance received only
    after the calls *stale*: someone else had it then. Ambiguous, stale and unknown-VPC results
    name their candidates and are never confident.
    """
    pairs = sorted(set(sources))
    endpoints = _endpoint_vpcs(ec2_for_region, regions, {v for _, v in pairs if v})
    holders = _holders(ec2_for_region, regions, {ip for ip, _ in pairs})
    out: dict[tuple[str, str], SourceAttribution] = {}
    for ip, vpce in pairs:
        if classify_ip(ip) is None:
            out[(ip, vpce)] = SourceAttribution(ip, vpce or None, ATTR_SERVICE, CONF_UNIQUE)
            continue
        candidates = holders.get(ip, [])
        vpc_id = region = None
        confidence = CONF_UNIQUE
        reason = ""
        if vpce and vpce in endpoints:
            vpc_id, region = endpoints[vpce]
            confidence = CONF_VPC
            candidates = [c for c in candidates if c["vpc_id"] == vpc_id and c["region"] == region]
            reason = f"through {vpce} of {vpc_id} ({region})"
        elif vpce:
            confidence = CONF_UNKNOWN_VPC
            reason = (
                f"the calls came through {vpce}, which no longer exists: the VPC they came from "
                "is unknown"
            )
        elif len(candidates) > 1:
            confidence = CONF_AMBIGUOUS
            reason = (
                f"{len(candidates)} network interfaces hold {ip} (private IPs repeat across VPCs)"
            )
        att = SourceAttribution(
            ip, vpce or None, ATTR_OUTSIDE, confidence, vpc_id, region, candidates=candidates
        )
        if not candidates:
            att.confidence = CONF_NONE if confidence != CONF_UNKNOWN_VPC else confidence
            att.reason = reason or "no network interface of the account holds it"
        elif len(candidates) > 1 and att.confidence in CONFIDENT:
            att.confidence = CONF_AMBIGUOUS
            att.reason = f"{reason}; {len(candidates)} network interfaces hold {ip}"
        else:
            only = candidates[0]
            since = _when(only.get("held_since"))
            first = _when((first_seen or {}).get((ip, vpce)))
            att.kind = ATTR_EC2 if only["instance_id"] else ATTR_ENI
            att.region, att.vpc_id = only["region"], only["vpc_id"]
            att.instance_id, att.instance_name = only["instance_id"], only["name"]
            att.reason = reason or ("the only holder of the address" if att.confident else "")
            if since and first and since > first and att.confidence in CONFIDENT:
                att.confidence = CONF_STALE
                att.reason = (
                    f"{only['instance_id']} received {ip} at {only['held_since']}, after the "
                    f"calls from it began ({(first_seen or {}).get((ip, vpce))}): another host "
                    "had the address then"
                )
        if att.confidence not in CONFIDENT and att.candidates:
            att.reason += ": candidates " + "; ".join(_label(c) for c in att.candidates)
        out[(ip, vpce)] = att
    return out
