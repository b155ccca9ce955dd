"""PostgreSQL password files (``~/.pgpass``, ``%APPDATA%\\postgresql\\pgpass.conf``).

One ``hostname:port:database:username:password`` per line, ``\\:`` and ``\\\\`` escaped, ``#``
comments. libpq reads the password literally: nothing in the file is expanded, so there is no
reference a rewrite could leave. The credentials are found (the file is not compliant) and the
rewrite is refused with what to do instead.
"""

from __future__ import annotations

import re

from migrate.configs.model import ConfigParseError, Entry, Move, physical_lines

REFUSED = (
    "libpq reads .pgpass literally (no variable or reference is expanded), so no rewrite "
    "would keep the client working: give it PGPASSWORD from the secret at start-up (or IAM "
    "database authentication), then delete the line by hand"
)
_FIELD = re.compile(r"(?:\\.|[^:\\])*")


def _unescape(raw: str) -> str:
    return re.sub(r"\\(.)", r"\1", raw)


def parse(text: str) -> list[Entry]:
    """The password of every ``host:port:db:user:password`` line, keyed by the first four."""
    entries: list[Entry] = []
    for number, (start, end, end_nl) in enumerate(physical_lines(text), 1):
        line = text[start:end]
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        fields: list[tuple[int, int]] = []
        pos = 0
        while len(fields) < 5:
            match = _FIELD.match(line, pos)
            assert match is not None  # the pattern matches the empty string
            fields.append(match.span())
            pos = match.end() + 1
            if match.end() >= len(line) or line[match.end()] != ":":
                break
        if len(fields) != 5:
            raise ConfigParseError("not a hostname:port:database:username:password line", number)
        where = ":".join(_unescape(line[a:b]) for a, b in fields[:4])
        vstart, vend = fields[4][0], len(line)
        entries.append(
            Entry(
                key=f"{where}/password",
                name="password",
                value=_unescape(line[vstart:vend]),
                line=number,
                value_span=(start + vstart, start + vend),
                entry_span=(start, end_nl),
                group=where,
            )
        )
    return entries


def rewrite(text: str, moves: list[Move], style: str, placeholder: str) -> str:
    """Refused when anything would move (see the module doc)."""
    if moves:
        raise ConfigParseError(REFUSED)
    return text
