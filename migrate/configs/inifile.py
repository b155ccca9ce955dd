"""INI files (``configparser`` rules): sections, ``=``/``:``, ``#``/``;`` comments, continuations.

Rewrite style: ``placeholder`` (the value becomes a placeholder, default ``${ENV_NAME}``).
"""

from __future__ import annotations

import re

from migrate.configs.model import (
    ConfigParseError,
    Edit,
    Entry,
    Move,
    apply_edits,
    physical_lines,
    render_placeholder,
)

_SECTION = re.compile(r"[ \t]*\[([^\]]+)\][ \t]*(?:[#;].*)?$")
_OPTION = re.compile(r"([ \t]*)([^=:\s][^=:]*?)[ \t]*[=:][ \t]*")


def parse(text: str) -> list[Entry]:
    """Every option of an INI file, keyed ``[section] option``, with spans into ``text``."""
    entries: list[Entry] = []
    section = ""
    lines = physical_lines(text)
    i = 0
    while i < len(lines):
        start, end, end_nl = lines[i]
        line = text[start:end]
        stripped = line.strip()
        if not stripped or stripped[0] in "#;":
            i += 1
            continue
        sect = _SECTION.match(line)
        if sect:
            section = sect.group(1).strip()
            i += 1
            continue
        match = _OPTION.match(line)
        if match is None:
            raise ConfigParseError("neither a [section] nor a key = value line", i + 1)
        indent = len(match.group(1))
        name = match.group(2).strip()
        vstart = start + match.end()
        vend, last_nl, first = end, end_nl, i
        # Continuation: following non-blank lines indented deeper than the key.
        while i + 1 < len(lines):
            s2, e2, n2 = lines[i + 1]
            nxt = text[s2:e2]
            if nxt.strip() and len(nxt) - len(nxt.lstrip(" \t")) > indent:
                i += 1
                vend, last_nl = e2, n2
                continue
            break
        raw = text[vstart:vend]
        value = "\n".join(part.strip() for part in re.split(r"\r\n|\n|\r", raw)).strip()
        vend = vstart + len(raw.rstrip(" \t"))
        entries.append(
            Entry(
                key=f"[{section}] {name}",
                name=name,
                value=value,
                line=first + 1,
                value_span=(vstart, vend),
                entry_span=(start, last_nl),
                group=section or "default",
            )
        )
        i += 1
    return entries


def rewrite(text: str, moves: list[Move], style: str, placeholder: str) -> str:
    """Replace the moved values with placeholders; every other byte is kept."""
    if style != "placeholder":
        raise ConfigParseError(f"INI files have no rewrite style {style!r}")
    return apply_edits(
        text, [Edit(*m.entry.value_span, render_placeholder(placeholder, m)) for m in moves]
    )
