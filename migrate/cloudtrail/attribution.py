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
from collections.abc import Iterable
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
