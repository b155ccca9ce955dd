"""MySQL option files (``my.cnf``, ``.my.cnf``, ``conf.d/*.cnf``), read as MySQL reads them.

The INI layout (sections, ``key = value``) with MySQL's value rules on top: a value may be
enclosed in single or double quotes, which MySQL strips; ``\\b \\t \\n \\r \\\\ \\s`` escapes; an
unquoted value ends at a ``#`` comment. So the password stored is the one the client sends, not
``"s3cret"`` with its quotes.

MySQL expands nothing in an option file (no ``${NAME}``), so a placeholder would be a password
nothing resolves: the credentials are found and the rewrite is refused with what to do instead.
"""

from __future__ import annotations

from dataclasses import replace

from migrate.configs import inifile
from migrate.configs.model import ConfigParseError, Entry, Move

REFUSED = (
    "MySQL reads option files literally (no ${NAME} or other reference is expanded), so no "
    "rewrite would keep its clients working: write the [client] password into a "
    "--defaults-extra-file at start-up from the secret (or use mysql_config_editor's login "
    "path, or IAM database authentication), then delete the line by hand"
)
_ESCAPES = {"b": "\b", "t": "\t", "n": "\n", "r": "\r", "\\": "\\", "s": " "}


def _unescape(raw: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(raw):
        if raw[i] == "\\" and i + 1 < len(raw) and raw[i + 1] in _ESCAPES:
            out.append(_ESCAPES[raw[i + 1]])
            i += 2
            continue
        out.append(raw[i])
        i += 1
    return "".join(out)


def mysql_value(raw: str) -> tuple[str, str]:
    """(value as MySQL sees it, quote character or "") of a raw option value."""
    text = raw.strip()
    if text[:1] in ("'", '"'):
        end = text.find(text[0], 1)
        if end > 0 and (not text[end + 1 :].strip() or text[end + 1 :].lstrip()[0] == "#"):
            return _unescape(text[1:end]), text[0]
    return _unescape(text.split("#", 1)[0].rstrip()), ""


def parse(text: str) -> list[Entry]:
    """Every option, keyed ``[section] option``, with the value MySQL would use."""
    out: list[Entry] = []
    for entry in inifile.parse(text):
        value, quote = mysql_value(entry.value)
        out.append(replace(entry, value=value, quote=quote))
    return out


def rewrite(text: str, moves: list[Move], style: str, placeholder: str) -> str:
    """Refused when anything would move (see the module doc)."""
    if moves:
        raise ConfigParseError(REFUSED)
    return text
