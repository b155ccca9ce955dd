"""Java ``.properties``: logical lines, continuations, escapes, ``\\uXXXX``; surgical rewrites.

Parsing follows ``java.util.Properties.load``: comment lines start with ``#`` or ``!``; a line
ending in an odd number of backslashes continues on the next one (whose leading blanks are
dropped); the key ends at the first unescaped ``=``, ``:`` or blank. Rewrite styles:

- ``spring-import``: the credential lines are removed and one
  ``spring.config.import=aws-secretsmanager:<secret>`` line (with a comment) takes the place of the
  first of them; Spring Cloud AWS then loads the secret's JSON keys as properties. A file that
  already sets ``spring.config.import`` keeps its line, with ``,aws-secretsmanager:<secret>``
  appended to the value (a comment takes the place of the first removed line);
- ``placeholder``: the value becomes a placeholder (default ``${ENV_NAME}``).

Spring Boot 2.4+ splits a file into documents at ``#---`` / ``!---`` lines, each activated on its
own (``spring.config.activate.on-profile``): credentials of each document are grouped apart
(``db`` in the first, ``db[prod]`` in a ``prod`` document, ``db[document-2]`` without a profile),
so each gets its own secret, and the ``spring-import`` style writes (or extends) the import of
that same document.
"""

from __future__ import annotations

import re
from dataclasses import replace

from migrate.configs.model import (
    ConfigParseError,
    Edit,
    Entry,
    Move,
    apply_edits,
    newline_of,
    physical_lines,
    render_placeholder,
)

_BLANK = " \t\f"
_ESCAPES = {"t": "\t", "n": "\n", "r": "\r", "f": "\f"}
IMPORT_KEY = "spring.config.import"


def _unescape(chars: str, line: int) -> str:
    out: list[str] = []
    i = 0
    while i < len(chars):
        ch = chars[i]
        if ch != "\\":
            out.append(ch)
            i += 1
            continue
        i += 1
        if i >= len(chars):
            break
        nxt = chars[i]
        if nxt == "u":
            digits = chars[i + 1 : i + 5]
            if len(digits) < 4 or not all(c in "0123456789abcdefABCDEF" for c in digits):
                raise ConfigParseError("malformed \\uXXXX escape", line)
            out.append(chr(int(digits, 16)))
            i += 5
            continue
        out.append(_ESCAPES.get(nxt, nxt))
        i += 1
    return "".join(out)


def _logical_lines(text: str) -> list[tuple[int, int, int, int, str, list[int]]]:
    """(line no, start, end, end with break, logical chars, text index of each char)."""
    lines = physical_lines(text)
    out: list[tuple[int, int, int, int, str, list[int]]] = []
    i = 0
    while i < len(lines):
        start, end, _ = lines[i]
        raw = text[start:end]
        pos = start + len(raw) - len(raw.lstrip(_BLANK))
        if pos == end or text[pos] in "#!":
            i += 1
            continue
        first = i
        chars: list[str] = []
        index: list[int] = []
        seg_end = end
        while True:
            seg = text[pos:seg_end]
            trailing = len(seg) - len(seg.rstrip("\\"))
            if trailing % 2 == 1:
                chars.extend(seg[:-1])
                index.extend(range(pos, seg_end - 1))
                if i + 1 >= len(lines):
                    break
                i += 1
                s2, e2, _ = lines[i]
                raw2 = text[s2:e2]
                pos, seg_end = s2 + len(raw2) - len(raw2.lstrip(_BLANK)), e2
                continue
            chars.extend(seg)
            index.extend(range(pos, seg_end))
            break
        out.append((first + 1, lines[first][0], lines[i][1], lines[i][2], "".join(chars), index))
        i += 1
    return out


_DOCUMENT_SEPARATOR = re.compile(r"^[#!]---[ \t]*$", re.M)
_PROFILE_KEYS = ("spring.config.activate.on-profile", "spring.profiles")


def documents(text: str) -> list[int]:
    """Start offsets of the documents of ``text`` (Spring Boot's ``#---`` separators)."""
    return [0] + [m.end() for m in _DOCUMENT_SEPARATOR.finditer(text)]


def document_of(starts: list[int], offset: int) -> int:
    """Index of the document that holds ``offset``."""
    return max(i for i, s in enumerate(starts) if s <= offset)


def parse(text: str) -> list[Entry]:
    """Every key/value of a properties file, with spans into ``text``; entries of the second and
    later documents are grouped per document (see the module doc)."""
    entries = _parse(text)
    starts = documents(text)
    if len(starts) == 1:
        return entries
    labels: dict[int, str] = {}
    for e in entries:
        doc = document_of(starts, e.value_span[0])
        if e.key in _PROFILE_KEYS and e.value.strip():
            labels[doc] = re.sub(r"[^A-Za-z0-9_.-]+", "-", e.value.strip()).strip("-")
    out = []
    for e in entries:
        doc = document_of(starts, e.value_span[0])
        if doc:
            label = labels.get(doc) or f"document-{doc + 1}"
            e = replace(e, group=f"{e.group}[{label}]", document=label)
        out.append(e)
    return out


def _parse(text: str) -> list[Entry]:
    entries: list[Entry] = []
    for line_no, start, end, end_nl, chars, index in _logical_lines(text):
        j = 0
        key_chars: list[str] = []
        while j < len(chars):
            ch = chars[j]
            if ch == "\\" and j + 1 < len(chars):
                key_chars.append(chars[j : j + 2])
                j += 2
                continue
            if ch in "=:" or ch in _BLANK:
                break
            key_chars.append(ch)
            j += 1
        while j < len(chars) and chars[j] in _BLANK:
            j += 1
        if j < len(chars) and chars[j] in "=:":
            j += 1
            while j < len(chars) and chars[j] in _BLANK:
                j += 1
        key = _unescape("".join(key_chars), line_no)
        value = _unescape(chars[j:], line_no)
        value_start = index[j] if j < len(chars) else end
        group = key.rsplit(".", 1)[0] if "." in key else key
        entries.append(
            Entry(
                key=key,
                name=key.rsplit(".", 1)[-1],
                value=value,
                line=line_no,
                value_span=(value_start, end),
                entry_span=(start, end_nl),
                group=group,
            )
        )
    return entries


def escape_value(value: str) -> str:
    """A value as a properties file writes it (ASCII; leading blanks and specials escaped)."""
    out: list[str] = []
    for i, ch in enumerate(value):
        if ch == "\\":
            out.append("\\\\")
        elif ch in "\t\n\r\f":
            out.append("\\" + {"\t": "t", "\n": "n", "\r": "r", "\f": "f"}[ch])
        elif ch == " " and i == 0:
            out.append("\\ ")
        elif ord(ch) > 126 or ord(ch) < 32:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return "".join(out)


def rewrite(text: str, moves: list[Move], style: str, placeholder: str) -> str:
    """Take the moved entries out of ``text`` in ``style``; every other byte is kept."""
    if not moves:
        return text
    if style == "placeholder":
        return apply_edits(
            text,
            [
                Edit(*m.entry.value_span, escape_value(render_placeholder(placeholder, m)))
                for m in moves
            ],
        )
    if style != "spring-import":
        raise ConfigParseError(f"properties files have no rewrite style {style!r}")
    starts = documents(text)
    all_imports = [e for e in parse(text) if e.key == IMPORT_KEY]
    by_doc: dict[int, list[Move]] = {}
    for m in moves:
        by_doc.setdefault(document_of(starts, m.entry.value_span[0]), []).append(m)
    edits: list[Edit] = []
    for doc, doc_moves in sorted(by_doc.items()):
        imports = [e for e in all_imports if document_of(starts, e.value_span[0]) == doc]
        edits += _import_edits(text, doc_moves, imports)
    return apply_edits(text, edits)


def _import_edits(text: str, moves: list[Move], imports: list[Entry]) -> list[Edit]:
    """The spring-import edits of one document: its moves, and its own existing imports."""
    nl = newline_of(text)
    names = sorted({m.secret for m in moves})
    keys = ", ".join(m.entry.key for m in moves)
    first = min(moves, key=lambda m: m.entry.line)
    assert first.entry.entry_span is not None
    start = first.entry.entry_span[0]
    indent = re.match(r"[ \t\f]*", text[start:])
    lead = indent.group(0) if indent else ""
    edits = []
    if imports:
        edits.append(_merge_import(text, imports[-1], f"aws-secretsmanager:{';'.join(names)}"))
        insert = f"{lead}# {keys}: moved to AWS Secrets Manager by migrate ({IMPORT_KEY}){nl}"
    else:
        insert = (
            f"{lead}# {keys}: moved to AWS Secrets Manager by migrate{nl}"
            f"{lead}{IMPORT_KEY}=aws-secretsmanager:{';'.join(names)}{nl}"
        )
    for m in moves:
        assert m.entry.entry_span is not None
        s, e = m.entry.entry_span
        if m is first:
            tail = text[s:e]
            ends_with_nl = tail.endswith(("\n", "\r"))
            edits.append(Edit(s, e, insert if ends_with_nl else insert.rstrip("\r\n")))
        else:
            edits.append(Edit(s, e, ""))
    return edits


def _merge_import(text: str, existing: Entry, location: str) -> Edit:
    """Append ``location`` to an existing ``spring.config.import`` (a comma-separated list).

    ``java.util.Properties`` keeps the last of repeated keys, so ``existing`` is the last one
    (of the document: Spring Boot reads each ``#---`` document on its own).
    """
    start, end = existing.value_span
    raw = text[start:end]
    kept = raw.rstrip(" \t\f")
    # A trailing blank escaped with a backslash belongs to the value.
    if (len(kept) - len(kept.rstrip("\\"))) % 2 == 1:
        kept = raw[: len(kept) + 1]
    joiner = "," if existing.value.strip() and not existing.value.rstrip().endswith(",") else ""
    at = start + len(kept)
    return Edit(at, at, joiner + escape_value(location))
