"""Bytes on disk: decoding that round-trips, atomic replacement, backups, keyed fingerprints.

Decoding picks an encoding whose decode/encode round-trip is byte-exact for the file (UTF-8 with or
without BOM, an XML-declared encoding, else ISO-8859-1, which Java ``.properties`` use by default),
so a rewrite re-encodes untouched text to the very same bytes.

Fingerprints are HMAC-SHA256 under a random key kept in the state directory (mode 0600), never a
plain hash: a plain SHA-256 of a short password is brute-forced in minutes, a keyed one is not
without the key file. The key never goes into the state DB, plans or reports.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import re
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path

from migrate.configs.model import ConfigParseError

KEY_FILE = "config-secrets.key"
BACKUP_DIR = "backups"
_XML_DECL = re.compile(rb"^<\?xml[^>]*encoding\s*=\s*[\"']([A-Za-z0-9._-]+)[\"']")


@dataclass(frozen=True)
class Decoded:
    """A file's text and how to turn it back into the same bytes."""

    text: str
    encoding: str


def decode(data: bytes, declared_xml: bool = False, runtime: str | None = None) -> Decoded:
    """Decode ``data`` with an encoding that re-encodes it byte for byte.

    ``runtime`` is the encoding the consuming runtime reads the file with (``java.util.Properties``
    and Spring Boot read ``.properties`` as ISO-8859-1): it comes first, so a value is what the
    application sees, not what an editor shows. A BOM still means UTF-8.
    """
    candidates: list[str] = []
    if data.startswith(b"\xef\xbb\xbf"):
        candidates.append("utf-8-sig")
    if runtime:
        candidates.append(runtime)
    if declared_xml:
        match = _XML_DECL.match(data.lstrip(b"\xef\xbb\xbf"))
        if match:
            candidates.append(match.group(1).decode("ascii").lower())
    candidates += ["utf-8", "iso-8859-1"]
    for encoding in candidates:
        try:
            text = data.decode(encoding)
        except (UnicodeDecodeError, LookupError):
            continue
        try:
            if text.encode(encoding) == data:
                return Decoded(text, encoding)
        except UnicodeEncodeError:
            continue
    raise ConfigParseError("the file's encoding could not be determined")  # pragma: no cover


def encode(text: str, encoding: str) -> bytes:
    """Encode rewritten text; text we add is ASCII, so this fails only on a bug."""
    try:
        return text.encode(encoding)
    except UnicodeEncodeError:
        raise ConfigParseError(
            f"the rewritten text cannot be written in the file's encoding ({encoding})"
        ) from None


class Fingerprinter:
    """Keyed fingerprints (HMAC-SHA256) of values and files, with a per-state-dir random key."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    def __repr__(self) -> str:
        return "Fingerprinter(<key hidden>)"

    @classmethod
    def for_state_dir(cls, state_dir: Path) -> Fingerprinter:
        """Load the key from ``state_dir``, creating it (0600, exclusively) on first use."""
        path = Path(state_dir) / KEY_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            key = path.read_bytes()
            if len(key) < 32:
                raise ConfigParseError(
                    f"{path} is damaged (shorter than 32 bytes); delete it and plan again"
                ) from None
            return cls(key)
        with os.fdopen(fd, "wb") as handle:
            handle.write(secrets.token_bytes(32))
            handle.flush()
            os.fsync(handle.fileno())
        return cls(path.read_bytes())

    def value(self, value: str) -> str:
        """Short fingerprint of a secret value, safe to show and store."""
        digest = hmac.new(self._key, b"value\0" + value.encode("utf-8", "surrogatepass"), "sha256")
        return "hmac:" + digest.hexdigest()[:16]

    def data(self, data: bytes) -> str:
        """Fingerprint of file content (full length, for backup and stale checks)."""
        return "hmac:" + hmac.new(self._key, b"file\0" + data, "sha256").hexdigest()


def file_mode(path: Path) -> int:
    """Permission bits of a file."""
    return stat.S_IMODE(path.stat().st_mode)


def atomic_write(path: Path, data: bytes, mode: int | None = None) -> None:
    """Replace ``path`` with ``data``: temp file in the same directory, fsync, rename, fsync dir.

    A crash leaves either the old or the new file, never a half-written one. Permissions (and the
    owner, where we may set it) are the old file's.
    """
    path = Path(path)
    old = path.stat() if path.exists() else None
    tmp = path.with_name(f".{path.name}.migrate-tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if old is not None:
            with contextlib.suppress(PermissionError):
                os.chown(tmp, old.st_uid, old.st_gid)
        os.chmod(tmp, mode if mode is not None else (stat.S_IMODE(old.st_mode) if old else 0o600))
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    fsync_dir(path.parent)


def fsync_dir(directory: Path) -> None:
    """Make a rename durable (no-op where directories cannot be opened)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def backup_path(state_dir: Path, run_id: str, file: Path) -> Path:
    """Where the backup of ``file`` for ``run_id`` lives (unique per absolute path)."""
    tag = hashlib.sha256(str(Path(file).absolute()).encode()).hexdigest()[:12]
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", Path(file).name) or "file"
    return Path(state_dir) / BACKUP_DIR / run_id / f"{tag}-{safe}"


def write_backup(target: Path, data: bytes) -> None:
    """Write a backup (0600, in 0700 directories), atomically."""
    target.parent.mkdir(parents=True, exist_ok=True)
    for parent in (target.parent, target.parent.parent):
        with contextlib.suppress(OSError):
            os.chmod(parent, 0o700)
    atomic_write(target, data, mode=0o600)
