"""Who owns a secret that ``secrets.from_configs`` writes: the source it was moved out of.

Every secret carries its source's identity as tags: the host (the ``host`` parameter, else this
machine's name), the scanned root (only when no ``host`` is given: then the root is what tells two
copies on one machine apart), the path relative to that root and the resource inside the file. A
plan that would write a secret whose tags name another source, or that migrate did not create, is
refused naming both: a same-named secret is never given a new version behind the back of the app
that reads it.
"""

from __future__ import annotations

import hashlib
import re
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

TAG_MANAGED = "migrate:managed-by"
TAG_SOURCE = "migrate:source"
TAG_HOST = "migrate:source-host"
TAG_ROOT = "migrate:source-root"
TAG_PATH = "migrate:source-path"
TAG_RESOURCE = "migrate:source-resource"
OWNER_TAGS = (TAG_HOST, TAG_ROOT, TAG_PATH, TAG_RESOURCE)
# Secrets Manager tag values: letters, digits, blanks and _ . : / = + - @ only, 256 at most.
_TAG_UNSAFE = re.compile(r"[^\w\s.:/=+@-]")
_TAG_MAX = 256


def tag_value(text: str) -> str:
    """``text`` as a valid tag value: unsafe characters replaced, a long value shortened to its
    end behind a hash of the whole (so two long paths never share a tag value)."""
    safe = _TAG_UNSAFE.sub("_", text)
    if len(safe) <= _TAG_MAX:
        return safe
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
    return f"{digest}..." + safe[-(_TAG_MAX - len(digest) - 3) :]


def local_host() -> str:
    """This machine's short host name (the default ``<host>`` and owner host)."""
    return socket.gethostname().split(".")[0] or "localhost"


@dataclass(frozen=True)
class Owner:
    """The source of a secret: host, scanned root (without a ``host`` parameter), relative path
    and resource."""

    host: str
    root: str | None
    path: str
    resource: str

    def tags(self) -> dict[str, str]:
        """The owner tags written on the secret."""
        out = {TAG_HOST: tag_value(self.host), TAG_PATH: tag_value(self.path)}
        if self.root is not None:
            out[TAG_ROOT] = tag_value(self.root)
        out[TAG_RESOURCE] = tag_value(self.resource)
        return out

    def describe(self) -> str:
        """``host-a:conf/context.xml (resource jdbc-app)``, for messages."""
        where = f"{self.root.rstrip('/')}/{self.path}" if self.root else self.path
        return f"{self.host}:{where} (resource {self.resource})"

    def as_json(self) -> dict[str, str | None]:
        """JSON form, for facts and action details."""
        return {"host": self.host, "root": self.root, "path": self.path, "resource": self.resource}

    @classmethod
    def of(cls, data: Mapping[str, str | None]) -> Owner:
        """The inverse of :meth:`as_json`."""
        return cls(
            host=str(data["host"]),
            root=data.get("root"),
            path=str(data["path"]),
            resource=str(data["resource"]),
        )


def owner_tags(tags: Mapping[str, str]) -> dict[str, str]:
    """The owner tags among a secret's tags."""
    return {k: v for k, v in tags.items() if k in OWNER_TAGS}


def describe_tags(tags: Mapping[str, str]) -> str:
    """The owner an existing secret's tags name, for messages."""
    own = owner_tags(tags)
    if not own:
        return f"{tags.get(TAG_SOURCE, 'an unknown source')} (written before owner tags)"
    where = own.get(TAG_PATH, "?")
    if own.get(TAG_ROOT):
        where = f"{own[TAG_ROOT].rstrip('/')}/{where}"
    return f"{own.get(TAG_HOST, '?')}:{where} (resource {own.get(TAG_RESOURCE, '?')})"


def conflict(tags: Mapping[str, str], owner: Owner, source_file: str) -> str | None:
    """Why ``owner`` may not write a secret with these tags, or None when it may.

    A secret written by an older migrate has no owner tags, only ``migrate:source`` (the absolute
    file path): it is the same owner when that path is ``source_file``.
    """
    if tags.get(TAG_MANAGED) != "migrate":
        return "was not created by migrate (no migrate:managed-by=migrate tag)"
    own = owner_tags(tags)
    if not own:
        if tags.get(TAG_SOURCE) == tag_value(source_file):
            return None
        return f"belongs to {describe_tags(tags)}"
    if own != owner.tags():
        return f"belongs to {describe_tags(tags)}"
    return None


def path_label(root: Path, path: Path) -> str:
    """``path`` relative to ``root`` with ``/`` separators (the file name if it is not below)."""
    try:
        return path.relative_to(root).as_posix() or path.name
    except ValueError:
        return path.name
