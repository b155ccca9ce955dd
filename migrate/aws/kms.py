"""KMS: resolving the key a playbook names (id, ARN, alias name or alias ARN) to its key ARN."""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from migrate.aws.arns import arn_region, is_kms_key_arn
from migrate.aws.errors import access_denied, has_code, not_found
from migrate.errors import ParamError

# What a service does with a customer's key on the customer's behalf (S3 SSE-KMS, Secrets
# Manager, RDS storage encryption): a key policy that grants none of these cannot be used.
_USE_ACTIONS = ("kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey", "kms:ReEncryptFrom")


class ClientSource(Protocol):
    """Anything that hands out guarded clients (the step context, the session)."""

    def client(self, service: str, region: str | None = None) -> Any:
        """A botocore client for ``service`` in ``region``."""


def describe_key(kms: Any, key: str) -> dict[str, Any] | None:
    """``DescribeKey`` of ``key`` (id, ARN, alias), or None when KMS does not know it."""
    try:
        return dict(kms.describe_key(KeyId=key)["KeyMetadata"])
    except Exception as exc:
        if not_found(exc) or has_code(exc, "InvalidArnException"):
            return None
        raise


class KeyResolver:
    """Resolves key ids, ARNs and aliases to key ARNs per region (cached; read-only).

    ``is_known`` tells a real value from a "(known after STEP)" placeholder while planning; an
    unknown key resolves to None, never to a guess.
    """

    def __init__(
        self, clients: ClientSource, is_known: Callable[[Any], bool] = lambda value: True
    ) -> None:
        self.clients = clients
        self.is_known = is_known
        self._cache: dict[tuple[str, str | None], str | None] = {}

    def arn(self, key: str | None, region: str | None) -> str | None:
        """The key ARN behind ``key`` in ``region``, or None if it cannot be resolved."""
        if not key or not self.is_known(key):
            return None
        if is_kms_key_arn(key):
            return key
        cache_key = (key, region)
        if cache_key not in self._cache:
            try:
                meta = describe_key(self.clients.client("kms", region), key)
            except Exception as exc:
                if not access_denied(exc):
                    raise
                meta = None
            self._cache[cache_key] = str(meta["Arn"]) if meta else None
        return self._cache[cache_key]


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value] if value is not None else []


def via_services(policy: dict[str, Any]) -> list[str] | None:
    """The services a key policy limits *use* of the key to (``kms:ViaService`` on every Allow
    statement that grants an encrypt/decrypt action), or None when some statement grants use
    without that condition (root delegation to IAM policies, a named principal, ...)."""
    found: set[str] = set()
    for statement in _as_list(policy.get("Statement")):
        if not isinstance(statement, dict) or statement.get("Effect") != "Allow":
            continue
        patterns = [str(a).lower() for a in _as_list(statement.get("Action"))]
        if not any(fnmatch.fnmatchcase(u.lower(), p) for u in _USE_ACTIONS for p in patterns):
            continue
        vias: set[str] = set()
        for condition in (statement.get("Condition") or {}).values():
            if isinstance(condition, dict):
                for name, value in condition.items():
                    if name.lower() == "kms:viaservice":
                        vias.update(str(v) for v in _as_list(value))
        if not vias:
            return None
        found |= vias
    return sorted(found) or None


def key_policy_document(kms: Any, key_id: str) -> dict[str, Any] | None:
    """The key's ``default`` policy, or None when the caller may not read it."""
    try:
        return dict(json.loads(kms.get_key_policy(KeyId=key_id, PolicyName="default")["Policy"]))
    except Exception as exc:
        if access_denied(exc) or not_found(exc):
            return None
        raise


# How the refusals name a service (the ViaService prefix is the lowercase one).
SERVICE_LABELS = {"rds": "RDS", "s3": "S3", "secretsmanager": "Secrets Manager"}


def check_usable_key(
    clients: ClientSource,
    key: str,
    regions: Iterable[str],
    service: str,
    param: str = "kms_key",
) -> dict[str, dict[str, Any]]:
    """Refuse (``ParamError`` on ``param``) a key ``service`` could not encrypt with in one of
    ``regions``: it does not exist there, is not Enabled, is not a symmetric encryption key, or
    its key policy allows use only through other services. AWS itself accepts some of these
    silently (a bucket's default encryption naming a missing key is stored, and every later
    PUT then fails), so the plan checks them. A key given by ARN is checked in its own region
    only (buckets of other regions are the step's business); a caller that may not describe
    the key is not refused here (the run's own call will say so). Returns the key's metadata
    per region checked (regions it may not describe are left out)."""
    label = SERVICE_LABELS.get(service, service)
    checked: dict[str, dict[str, Any]] = {}
    wanted = sorted(set(regions))
    if is_kms_key_arn(key):
        wanted = [r for r in [arn_region(key)] if r]
    for region in wanted:
        kms = clients.client("kms", region)
        try:
            meta = describe_key(kms, key)
        except Exception as exc:
            if access_denied(exc):
                continue
            raise
        fix = (
            "Give an existing key (id, ARN or alias/NAME) of that region, or put a "
            "kms.ensure_key step first and use {{ steps.kms.key_arn }}, then plan again."
        )
        if meta is None:
            raise ParamError(f"the KMS key {key!r} does not exist in {region}. {fix}", param)
        arn = meta.get("Arn", key)
        named = repr(key) if arn == key else f"{key!r} ({arn})"
        state = meta.get("KeyState")
        if state != "Enabled":
            raise ParamError(
                f"the KMS key {named} is {state}: {label} cannot encrypt with it. "
                "Enable it (or cancel its deletion), or choose another key, then plan again.",
                param,
            )
        spec = meta.get("KeySpec") or meta.get("CustomerMasterKeySpec") or "SYMMETRIC_DEFAULT"
        usage = meta.get("KeyUsage") or "ENCRYPT_DECRYPT"
        if spec != "SYMMETRIC_DEFAULT" or usage != "ENCRYPT_DECRYPT":
            raise ParamError(
                f"the KMS key {named} is a {spec} key for {usage}; {label} encrypts "
                "only with symmetric encryption keys (SYMMETRIC_DEFAULT, ENCRYPT_DECRYPT). "
                "Choose another key, then plan again.",
                param,
            )
        policy = key_policy_document(kms, str(meta.get("KeyId", key)))
        vias = via_services(policy) if policy is not None else None
        if vias and not any(v.startswith(f"{service}.") for v in vias):
            raise ParamError(
                f"the key policy of {named} lets principals use it only through "
                f"{', '.join(vias)}, not {label}: every encryption would be refused. Add "
                f"{service} to the kms.ensure_key step's services and run it, or use another "
                "key, then plan again.",
                param,
            )
        checked[region] = meta
    return checked
