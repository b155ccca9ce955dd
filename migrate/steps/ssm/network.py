"""Security group rules that open administrative ports (SSH, RDP) to the internet or the VPN."""

from __future__ import annotations

import ipaddress
from typing import Any

ADMIN_PORTS = (22, 3389)
INTERNET = ("0.0.0.0/0", "::/0")


def _covers(permission: dict[str, Any], port: int) -> bool:
    if permission.get("IpProtocol") == "-1":  # every protocol, every port
        return True
    if permission.get("IpProtocol") not in ("tcp", "6"):
        return False
    low, high = permission.get("FromPort"), permission.get("ToPort")
    return low is not None and high is not None and int(low) <= port <= int(high)


def _wide(cidr: str, vpn_cidrs: list[str]) -> bool:
    """True for the internet, or a range that covers one of the VPN ranges (the VPN's way in)."""
    if cidr in INTERNET:
        return True
    net = ipaddress.ip_network(cidr, strict=False)
    for vpn in vpn_cidrs:
        other = ipaddress.ip_network(vpn, strict=False)
        if net.version == other.version and (net.overlaps(other)):
            return True
    return False


def open_admin_rules(groups: list[dict[str, Any]], vpn_cidrs: list[str]) -> list[dict[str, Any]]:
    """One entry per (group, permission, CIDR) that lets SSH or RDP in from a wide range.

    Each entry carries the exact ``IpPermissions`` item that revokes just that CIDR, and that
    authorizes it again on rollback (description included)."""
    found: list[dict[str, Any]] = []
    for group in sorted(groups, key=lambda g: str(g["GroupId"])):
        for perm in group.get("IpPermissions", []):
            ports = [p for p in ADMIN_PORTS if _covers(perm, p)]
            if not ports:
                continue
            base = {k: perm[k] for k in ("IpProtocol", "FromPort", "ToPort") if k in perm}
            ranges = [("IpRanges", "CidrIp", r) for r in perm.get("IpRanges", [])]
            ranges += [("Ipv6Ranges", "CidrIpv6", r) for r in perm.get("Ipv6Ranges", [])]
            for field, key, entry in ranges:
                cidr = str(entry[key])
                if not _wide(cidr, vpn_cidrs):
                    continue
                span = (
                    "all ports"
                    if base.get("IpProtocol") == "-1"
                    else f"{base.get('FromPort')}-{base.get('ToPort')}"
                )
                found.append(
                    {
                        "group_id": group["GroupId"],
                        "group_name": group.get("GroupName"),
                        "vpc_id": group.get("VpcId"),
                        "ports": ports,
                        "cidr": cidr,
                        "target": f"{group['GroupId']}:{base.get('IpProtocol')}:{span}:{cidr}",
                        "permission": {**base, field: [dict(entry)]},
                    }
                )
    return found
