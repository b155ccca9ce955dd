"""``~/.netrc`` (curl, ftp, git over HTTPS, Python's ``netrc``): ``machine``/``login``/``password``
tokens, ``default``, ``macdef`` bodies skipped.

Programs read the password literally: nothing is expanded, so no reference can take its place.
Credentials are found (the file is not compliant) and the rewrite is refused with what to do
instead.
"""

from __future__ import annotations

import re

from migrate.configs.model import ConfigParseError, Entry, Move, line_at

REFUSED = (
    ".netrc is read literally (no variable or reference is expanded), so no rewrite would keep "
    "its users working: write the file at start-up from the secret (or use a credential helper), "
    "then delete the password by hand"
)
_TOKEN = re.compile(r'"(?:\\.|[^"\\])*"|[^\s"]+')


def parse(text: str) -> list[Entry]:
    """Every ``password`` (and ``account``) token, keyed by its machine."""
    entries: list[Entry] = []
    tokens = list(_TOKEN.finditer(text))
    machine = ""
    i = 0
    while i < len(tokens):
        word = tokens[i].group(0)
        if word == "macdef":  # a macro body runs to the next blank line
            end = text.find("\n\n", tokens[i].end())
            i = next((j for j, t in enumerate(tokens) if end >= 0 and t.start() > end), len(tokens))
            continue
        if word == "machine" and i + 1 < len(tokens):
            machine = tokens[i + 1].group(0)
            i += 2
            continue
        if word == "default":
            machine, i = "default", i + 1
            continue
        if word in ("password", "account", "login") and i + 1 < len(tokens):
            value = tokens[i + 1]
            raw = value.group(0)
            decoded = re.sub(r"\\(.)", r"\1", raw[1:-1]) if raw.startswith('"') else raw
            if not machine:
                raise ConfigParseError(f"{word} before any machine", line_at(text, value.start()))
            entries.append(
                Entry(
                    key=f"machine[{machine}]/{word}",
                    name=word,
                    value=decoded,
                    line=line_at(text, value.start()),
                    value_span=value.span(),
                    entry_span=None,
                    group=f"machine[{machine}]",
                )
            )
            i += 2
            continue
        i += 1
    return entries


def rewrite(text: str, moves: list[Move], style: str, placeholder: str) -> str:
    """Refused when anything would move (see the module doc)."""
    if moves:
        raise ConfigParseError(REFUSED)
    return text
