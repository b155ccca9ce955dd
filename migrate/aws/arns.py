"""ARNs: one parser for the whole project (``arn:partition:service:region:account:resource``)."""

from __future__ import annotations

from typing import NamedTuple


class Arn(NamedTuple):
    """The six fields of an ARN; ``resource`` keeps its own ``type/id`` or ``type:id`` form."""

    partition: str
    service: str
    region: str
    account: str
    resource: str


def parse_arn(arn: str | None) -> Arn | None:
    """The fields of ``arn``, or None if it is not an ARN."""
    if not arn or not arn.startswith("arn:"):
        return None
    parts = arn.split(":", 5)
    if len(parts) < 6:
        return None
    return Arn(parts[1], parts[2], parts[3], parts[4], parts[5])


def arn_region(arn: str | None) -> str | None:
    """The region field of an ARN (None when it is not an ARN or names no region)."""
    parsed = parse_arn(arn)
    return parsed.region or None if parsed else None


def is_kms_key_arn(value: str | None) -> bool:
    """True for ``arn:...:kms:REGION:ACCOUNT:key/ID`` (not an alias ARN)."""
    parsed = parse_arn(value)
    return bool(parsed and parsed.service == "kms" and parsed.resource.startswith("key/"))
