"""The common model of config-file parsing and rewriting: entries, edits, parse errors.

Every format module turns decoded text into :class:`Entry` objects that know where their raw value
(and, where a line can be removed, the whole entry) sits in the text. Rewrites are
:class:`Edit` lists applied to that same text, so every byte outside an edit is kept as it was.

An :class:`Entry` carries the decoded value in memory only: its ``repr`` hides it, and nothing in
this package puts it into a dict, a message or an exception.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field


class ConfigParseError(Exception):
    """A file cannot be parsed (or safely rewritten); it is reported and left untouched.

    The message names the line and what is wrong, never a value.
    """

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(f"line {line}: {message}" if line else message)
        self.line = line


@dataclass(frozen=True)
class Entry:
    """One key/value of a config file.

    ``key`` is the logical key path in the format's own terms (``spring.datasource.password``,
    ``Resource[jdbc/legacy]@password``, ``[section] key``, ``$.a.b``); ``name`` its last segment.
    ``value_span`` is where the raw value token (with its quotes) sits in the decoded text;
    ``entry_span`` the whole logical entry including its line end, when the entry can be removed as
    lines (None otherwise). ``group`` gathers entries that belong together (a Tomcat resource, a
    properties prefix, an INI section).
    """

    key: str
    name: str
    value: str = field(repr=False)
    line: int
    value_span: tuple[int, int]
    entry_span: tuple[int, int] | None
    group: str
    element: str | None = None
    quote: str = ""
    aliases: tuple[str, ...] = ()
    movable: bool = True
    why_not_movable: str = ""
    # The label of the later document of a multi-document file it is in (``prod``), or None.
    document: str | None = None


@dataclass(frozen=True)
class Edit:
    """Replace ``text[start:end]`` with ``replacement``."""

    start: int
    end: int
    replacement: str


def apply_edits(text: str, edits: Iterable[Edit]) -> str:
    """Apply non-overlapping edits; everything outside them is kept as it was."""
    ordered = sorted(edits, key=lambda e: (e.start, e.end))
    out: list[str] = []
    pos = 0
    for edit in ordered:
        if edit.start < pos:
            raise ConfigParseError("two changes overlap; the file is left untouched")
        out.append(text[pos : edit.start])
        out.append(edit.replacement)
        pos = edit.end
    out.append(text[pos:])
    return "".join(out)


def newline_of(text: str) -> str:
    """The file's line ending (CRLF if its first line break is one, else LF)."""
    match = re.search(r"\r\n|\n|\r", text)
    return match.group(0) if match else "\n"


def line_at(text: str, index: int) -> int:
    """1-based line number of a character index."""
    return text.count("\n", 0, index) + 1


def line_start(text: str, index: int) -> int:
    """Index of the first character of the line holding ``index``."""
    return text.rfind("\n", 0, index) + 1


def line_end(text: str, index: int) -> int:
    """Index just past the line break of the line holding ``index`` (or the end of text)."""
    nl = text.find("\n", index)
    return len(text) if nl < 0 else nl + 1


@dataclass(frozen=True)
class Move:
    """An entry to take out of a file: which secret holds it now, under which JSON key."""

    entry: Entry
    secret: str
    json_key: str
    env: str = ""


def render_placeholder(template: str, move: Move) -> str:
    """``<secret>``, ``<key>`` and ``<env>`` in ``template`` filled in for ``move``."""
    return (
        template.replace("<secret>", move.secret)
        .replace("<key>", move.json_key)
        .replace("<env>", move.env or env_name(move.json_key))
    )


def env_name(key: str) -> str:
    """``spring.datasource.password`` -> ``SPRING_DATASOURCE_PASSWORD`` (Spring relaxed binding)."""
    name = re.sub(r"[^A-Za-z0-9]+", "_", key).strip("_").upper()
    return name or "SECRET"


def physical_lines(text: str) -> list[tuple[int, int, int]]:
    """(start, end without line break, end with line break) of every line."""
    lines: list[tuple[int, int, int]] = []
    pos = 0
    for match in re.finditer(r"\r\n|\n|\r", text):
        lines.append((pos, match.start(), match.end()))
        pos = match.end()
    if pos < len(text):
        lines.append((pos, len(text), len(text)))
    return lines
