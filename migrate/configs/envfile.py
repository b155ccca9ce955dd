"""``.env`` files (dotenv / docker compose): ``export``, quotes, multi-line quoted values.

Rewrite styles:

- ``remove`` (default): the variables are removed and a comment naming the secret, with a loader
  command line, takes the place of the first of them;
- ``placeholder``: the value becomes a placeholder (quoted as it was).
"""

from __future__ import annotations

import re

from migrate.configs.model import (
    ConfigParseError,
    Edit,
    Entry,
    Move,
    apply_edits,
    line_at,
    newline_of,
    render_placeholder,
)

_ASSIGN = re.compile(r"[ \t]*(?:export[ \t]+)?([A-Za-z_][A-Za-z0-9_.-]*)[ \t]*=[ \t]*")
_DQ_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\", "$": "$"}


def _line_end(text: str, pos: int) -> tuple[int, int]:
    """(end without break, end with break) of the line holding ``pos``."""
    match = re.compile(r"\r\n|\n|\r").search(text, pos)
    if match is None:
        return len(text), len(text)
    return match.start(), match.end()


def parse(text: str) -> list[Entry]:
    """Every variable of a .env file, with spans into ``text``."""
    entries: list[Entry] = []
    pos = 0
    while pos < len(text):
        end, end_nl = _line_end(text, pos)
        line = text[pos:end]
        if not line.strip() or line.lstrip().startswith("#"):
            pos = end_nl
            continue
        match = _ASSIGN.match(text, pos, end)
        if match is None:
            raise ConfigParseError("not a NAME=value line", line_at(text, pos))
        key = match.group(1)
        vstart = match.end()
        quote = text[vstart] if vstart < end and text[vstart] in "'\"" else ""
        if quote:
            close = vstart + 1
            chars: list[str] = []
            while True:
                if close >= len(text):
                    raise ConfigParseError(f"unterminated {quote} quote", line_at(text, vstart))
                ch = text[close]
                if quote == '"' and ch == "\\" and close + 1 < len(text):
                    nxt = text[close + 1]
                    chars.append(_DQ_ESCAPES.get(nxt, "\\" + nxt))
                    close += 2
                    continue
                if ch == quote:
                    break
                chars.append(ch)
                close += 1
            value = "".join(chars)
            vend = close + 1
            end, end_nl = _line_end(text, vend)
            rest = text[vend:end]
            if rest.strip() and not rest.strip().startswith("#"):
                raise ConfigParseError("text after the closing quote", line_at(text, vend))
        else:
            raw = text[vstart:end]
            comment = re.search(r"[ \t]#", raw)
            if comment:
                raw = raw[: comment.start()]
            value = raw.rstrip(" \t")
            vend = vstart + len(value)
        entries.append(
            Entry(
                key=key,
                name=key,
                value=value,
                line=line_at(text, pos),
                value_span=(vstart, vend),
                entry_span=(pos, end_nl),
                group="env",
                quote=quote,
            )
        )
        pos = end_nl
    return entries


def quote_like(value: str, quote: str) -> str:
    """``value`` written with the entry's quoting (double quotes where it needs them)."""
    if quote == "'" and "'" not in value:
        return f"'{value}'"
    if quote == '"' or re.search(r"[\s#'\"\\]", value):
        escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        return f'"{escaped}"'
    return value


def loader_hint(secret: str) -> str:
    """A shell line that exports the secret's JSON keys (shown in a comment)."""
    return (
        f"aws secretsmanager get-secret-value --secret-id {secret} --query SecretString "
        "--output text | jq -r 'to_entries[] | \"export \\(.key)=\\(.value | @sh)\"'"
    )


def rewrite(text: str, moves: list[Move], style: str, placeholder: str) -> str:
    """Take the moved variables out of ``text`` in ``style``; every other byte is kept."""
    if not moves:
        return text
    if style == "placeholder":
        return apply_edits(
            text,
            [
                Edit(
                    *m.entry.value_span,
                    quote_like(render_placeholder(placeholder, m), m.entry.quote),
                )
                for m in moves
            ],
        )
    if style != "remove":
        raise ConfigParseError(f".env files have no rewrite style {style!r}")
    nl = newline_of(text)
    first = min(moves, key=lambda m: m.entry.line)
    lines: list[str] = []
    for secret in sorted({m.secret for m in moves}):
        names = ", ".join(m.entry.key for m in moves if m.secret == secret)
        lines.append(f"# {names}: moved to AWS Secrets Manager secret {secret} by migrate.")
        lines.append(f'# Load at start-up: eval "$({loader_hint(secret)})"')
    edits: list[Edit] = []
    for m in moves:
        assert m.entry.entry_span is not None
        s, e = m.entry.entry_span
        if m is first:
            block = nl.join(lines)
            edits.append(Edit(s, e, block + nl if text[s:e].endswith(("\n", "\r")) else block))
        else:
            edits.append(Edit(s, e, ""))
    return apply_edits(text, edits)
