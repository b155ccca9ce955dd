"""Where rewritten config files point: the Secrets Manager secrets (and environment variables)
their applications will read at start-up.

Used by ``migrate secrets check`` (a read-only preflight): every reference found here is resolved
against Secrets Manager with the caller's credentials. Recognised references are the ones the
rewrite styles write:

- XML: a ``<Resource>`` whose ``url`` starts with ``jdbc-secretsmanager:``; its ``username`` is the
  secret id the JDBC wrapper reads;
- ``.properties`` / YAML: ``spring.config.import`` entries ``[optional:]aws-secretsmanager:a;b``;
- ``.env``: the ``moved to AWS Secrets Manager secret NAME`` comment of the ``remove`` style;
- placeholders ``${NAME}`` / ``${env.NAME}`` anywhere: environment variables or system
  properties something must supply (listed, not resolvable here).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from migrate.configs import FORMATS, detect_format
from migrate.configs.model import ConfigParseError, line_at
from migrate.configs.textio import decode

_SKIP_DIRS = {".git", ".svn", ".hg", "node_modules", "__pycache__", ".venv"}
_ENV_COMMENT = re.compile(r"moved to AWS Secrets Manager secret (\S+) by migrate")
_PLACEHOLDER = re.compile(r"\$\{(?:env\.)?([A-Za-z_][A-Za-z0-9_.]*)(?::[^}]*)?\}")
_IMPORT_KEY = "spring.config.import"
_PREFIX = "aws-secretsmanager:"


@dataclass(frozen=True)
class Reference:
    """One reference in a file: a secret id (``kind="secret"``) or a variable (``"variable"``)."""

    file: str
    line: int
    kind: str
    target: str
    via: str
    # The JDBC wrapper's driver class a Tomcat resource names ("" for other references).
    driver: str = ""


def files_under(paths: list[str]) -> list[Path]:
    """Config files named by ``paths`` (files, or directories walked recursively)."""
    found: set[Path] = set()
    for spec in paths:
        path = Path(os.path.expanduser(spec)).absolute()
        if path.is_dir():
            for root, dirs, names in os.walk(path):
                dirs[:] = sorted(d for d in dirs if d not in _SKIP_DIRS)
                found.update(Path(root) / n for n in names if detect_format(Path(root) / n))
        elif path.exists():
            found.add(path)
    return sorted(found)


def references(path: Path, data: bytes) -> list[Reference]:
    """The references in one file's bytes (an unparseable file has none it can be trusted for)."""
    fmt = detect_format(path)
    if fmt is None:
        return []
    try:
        text = decode(data, declared_xml=fmt == "xml").text
        entries = FORMATS[fmt].parse(text)
    except ConfigParseError:
        return []
    out: list[Reference] = []
    where = str(path)
    if fmt == "xml":
        by_group: dict[str, dict[str, tuple[str, int]]] = {}
        for e in entries:
            if e.element == "Resource" and e.entry_span is not None:
                by_group.setdefault(e.group, {})[e.name] = (e.value, e.line)
        for attrs in by_group.values():
            url = attrs.get("url", ("", 0))[0].strip()
            user = attrs.get("username") or attrs.get("user")
            if url.startswith("jdbc-secretsmanager:") and user:
                driver = attrs.get("driverClassName", ("", 0))[0].strip()
                out.append(
                    Reference(where, user[1], "secret", user[0], "JDBC wrapper username", driver)
                )
    for e in entries:
        # A list (spring.config.import[0]) as well as a scalar; a later document's key may
        # carry its index ([1].spring.config.import).
        key = re.sub(r"\[\d+\]$", "", e.key)
        if key.rsplit("]", 1)[-1].lstrip(".") == _IMPORT_KEY or key == _IMPORT_KEY:
            for item in re.split(r",", e.value):
                item = item.strip().removeprefix("optional:")
                if item.startswith(_PREFIX):
                    for name in item[len(_PREFIX) :].split(";"):
                        if name.strip():
                            out.append(
                                Reference(where, e.line, "secret", name.strip(), _IMPORT_KEY)
                            )
    if fmt == "env":
        for match in _ENV_COMMENT.finditer(text):
            line = line_at(text, match.start())
            out.append(Reference(where, line, "secret", match.group(1), "env loader comment"))
    for match in _PLACEHOLDER.finditer(text):
        line = line_at(text, match.start())
        out.append(Reference(where, line, "variable", match.group(1), "placeholder"))
    return out
