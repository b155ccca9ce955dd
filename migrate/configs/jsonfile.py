"""JSON files: every string leaf with its path and span; rewrite style ``placeholder`` only.

JSON has no comments and no import mechanism, so the value is replaced by a placeholder string
(default ``${ENV_NAME}``); the app or its deploy tooling resolves it.
"""

from __future__ import annotations

import json
from json.decoder import scanstring  # type: ignore[attr-defined]

from migrate.configs.model import (
    ConfigParseError,
    Edit,
    Entry,
    Move,
    apply_edits,
    line_at,
    render_placeholder,
)

_WS = " \t\r\n"


class _Walker:
    def __init__(self, text: str) -> None:
        self.text = text
        self.entries: list[Entry] = []

    def ws(self, pos: int) -> int:
        while pos < len(self.text) and self.text[pos] in _WS:
            pos += 1
        return pos

    def value(self, pos: int, path: str, name: str) -> int:
        pos = self.ws(pos)
        ch = self.text[pos]
        if ch == "{":
            pos = self.ws(pos + 1)
            if self.text[pos] == "}":
                return pos + 1
            while True:
                pos = self.ws(pos)
                key, pos = scanstring(self.text, pos + 1)
                pos = self.ws(pos) + 1  # the colon
                child = f"{path}.{key}" if path else key
                pos = self.ws(self.value(pos, child, key))
                if self.text[pos] == "}":
                    return pos + 1
                pos += 1  # the comma
        if ch == "[":
            pos = self.ws(pos + 1)
            if self.text[pos] == "]":
                return pos + 1
            index = 0
            while True:
                pos = self.ws(self.value(pos, f"{path}[{index}]", name))
                index += 1
                if self.text[pos] == "]":
                    return pos + 1
                pos += 1
        if ch == '"':
            value, end = scanstring(self.text, pos + 1)
            end = int(end)
            parent = path.rsplit(".", 1)[0] if "." in path else "$"
            self.entries.append(
                Entry(
                    key=path or "$",
                    name=name,
                    value=value,
                    line=line_at(self.text, pos),
                    value_span=(pos, end),
                    entry_span=None,
                    group=parent,
                    quote='"',
                )
            )
            return end
        # number, true, false, null: skip the token
        end = pos
        while end < len(self.text) and self.text[end] not in _WS + ",]}":
            end += 1
        return end


def parse(text: str) -> list[Entry]:
    """Every string value of a JSON document, keyed by its dotted path."""
    try:
        json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigParseError(f"not valid JSON ({exc.msg})", exc.lineno) from None
    walker = _Walker(text)
    start = walker.ws(1 if text.startswith("\ufeff") else 0)
    walker.value(start, "", "")
    return walker.entries


def rewrite(text: str, moves: list[Move], style: str, placeholder: str) -> str:
    """Replace the moved values with placeholder strings; every other byte is kept."""
    if style != "placeholder":
        raise ConfigParseError(f"JSON files have no rewrite style {style!r}")
    return apply_edits(
        text,
        [Edit(*m.entry.value_span, json.dumps(render_placeholder(placeholder, m))) for m in moves],
    )
