"""KMS: resolving the key a playbook names (id, ARN, alias name or alias ARN) to its key ARN."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from migrate.aws.arns import is_kms_key_arn
from migrate.aws.errors import access_denied, has_code, not_found


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
