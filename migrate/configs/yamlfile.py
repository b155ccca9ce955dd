"""YAML files (Spring ``application.yml``): flattened key paths, anchors/aliases, multi-document.

Parsing uses PyYAML's composer (safe, no object construction) for node positions; rewriting edits
only the spans of the moved entries. Rewrite styles:

- ``spring-import``: each credential line is removed (with the key line of a mapping left
  empty) and a top-level ``spring.config.import: "aws-secretsmanager:<secret>"`` line (with a
  comment) is added before the first key of the document that held it: Spring Boot reads each
  ``---`` document on its own. A document that already sets ``spring.config.import`` keeps it: a
  scalar gets ``,aws-secretsmanager:<secret>`` appended, a list gets one more item. Refused (file
  reported, untouched) when a value is anchored or aliased, when removing it would leave a
  mapping empty whose key line cannot go (an anchor or tag on it), or when the existing import
  cannot be extended exactly (a block scalar, a list of mappings, set twice);
- ``placeholder``: the scalar becomes a placeholder, keeping its anchor, so aliases still work.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

import yaml

from migrate.configs.model import (
    ConfigParseError,
    Edit,
    Entry,
    Move,
    apply_edits,
    line_end,
    line_start,
    newline_of,
    render_placeholder,
)

IMPORT_KEY = "spring.config.import"
_STR_TAG = "tag:yaml.org,2002:str"
TYPED = "YAML 1.1 reads this plain value as"


def _typed(node: yaml.ScalarNode) -> str | None:
    """Why a plain scalar is ambiguous: YAML 1.1 loaders (SnakeYAML in Spring, PyYAML) resolve
    ``0123`` to the int 83, ``yes`` to true, ``1e3`` to 1000.0; the app then sees another text
    than the file shows. None when the value is a string, or reads back as the same text."""
    if node.style or node.tag == _STR_TAG:
        return None
    try:
        loaded = yaml.safe_load(node.value)
    except yaml.YAMLError:
        return None
    if isinstance(loaded, bool):
        text = "true" if loaded else "false"
    elif isinstance(loaded, int):
        text = str(loaded)
    else:
        text = None  # floats, nulls, timestamps: no text the app is sure to see
    if text == node.value:
        return None
    kind = node.tag.rsplit(":", 1)[-1]
    return (
        f"{TYPED} {kind}, not the text in the file: quote it if the application reads the text, "
        "or write the value it really uses, then plan again"
    )


@dataclass
class _Walk:
    text: str
    entries: dict[int, Entry] = field(default_factory=dict)
    aliases: dict[int, list[str]] = field(default_factory=dict)
    children: dict[str, int] = field(default_factory=dict)
    sequences: dict[str, list[yaml.SequenceNode]] = field(default_factory=dict)
    documents: int = 0
    # The lines of keys whose value is a block mapping below them (``app:``), by path: what
    # goes too when every entry of that mapping is moved out.
    key_lines: dict[str, tuple[int, int]] = field(default_factory=dict)
    parents: dict[str, str] = field(default_factory=dict)  # path -> its mapping's path
    # Paths reached twice (``spring: datasource:`` and a ``spring.datasource:`` key): which
    # mapping a removal empties cannot be told by path, so spring-import refuses them.
    collisions: set[str] = field(default_factory=set)
    roots: list[yaml.Node | None] = field(default_factory=list)


def _value_start(text: str, start: int, end: int) -> int:
    """Skip an anchor (``&name``) and a tag (``!tag``) before a scalar's text."""
    pos = start
    while pos < end and text[pos] in "&!":
        while pos < end and text[pos] not in " \t\r\n":
            pos += 1
        while pos < end and text[pos] in " \t\r\n":
            pos += 1
    return pos


def _walk(
    walk: _Walk, node: yaml.Node, path: str, name: str, key_node: yaml.Node | None, flow: bool
) -> None:
    if isinstance(node, yaml.MappingNode):
        count = 0
        for k, v in node.value:
            if isinstance(k, yaml.ScalarNode) and k.value == "<<":
                # Merged values are found where their anchor is defined; the merge counts as
                # an entry, so a mapping left with only its "<<" is not taken for empty.
                count += 1
                continue
            key = k.value if isinstance(k, yaml.ScalarNode) else "?"
            count += 1
            child = f"{path}.{key}" if path else key
            if child in walk.parents:
                walk.collisions.add(child)
            walk.parents[child] = path
            if isinstance(v, yaml.MappingNode) and not (flow or node.flow_style or v.flow_style):
                _key_line(walk, child, k, v)
            _walk(walk, v, child, key, k, flow or bool(node.flow_style))
        walk.children[path] = count
        return
    if isinstance(node, yaml.SequenceNode):
        walk.sequences.setdefault(path, []).append(node)
        for index, item in enumerate(node.value):
            _walk(walk, item, f"{path}[{index}]", name, None, True)
        return
    if not isinstance(node, yaml.ScalarNode):
        return
    if id(node) in walk.entries:
        walk.aliases.setdefault(id(node), []).append(path)
        return
    text = walk.text
    start = _value_start(text, node.start_mark.index, node.end_mark.index)
    end = node.end_mark.index
    if node.style in ("|", ">"):
        # A block scalar ends after its last content line; keep the line break and blank lines.
        end = start + len(text[start:end].rstrip(" \t\r\n"))
    anchored = text[node.start_mark.index] == "&"
    entry_span = None
    why = ""
    if key_node is not None and not flow:
        kstart = key_node.start_mark.index
        single = node.start_mark.line == key_node.start_mark.line == node.end_mark.line
        if text[line_start(text, kstart) : kstart].strip() == "" and single:
            entry_span = (line_start(text, kstart), line_end(text, end))
        else:
            why = "the value is not on one line with its key"
    else:
        why = "the value is inside a flow collection or a list"
    if anchored:
        why = "the value carries an anchor (&) used elsewhere"
    typed = _typed(node)
    if typed:
        why = typed
    group = path.rsplit(".", 1)[0] if "." in path else ""
    walk.entries[id(node)] = Entry(
        key=path,
        name=name,
        value=str(node.value),
        line=node.start_mark.line + 1,
        value_span=(start, end),
        entry_span=entry_span if not why else None,
        group=group or path,
        quote=node.style or "",
        movable=not why,
        why_not_movable=why,
    )


def _key_line(walk: _Walk, path: str, key: yaml.Node, value: yaml.MappingNode) -> None:
    """Record ``path``'s key line when it holds only the key (``app:``, maybe a comment): no
    anchor or tag that something else could refer to, and the mapping starts below it."""
    text = walk.text
    start = line_start(text, key.start_mark.index)
    end = line_end(text, key.end_mark.index)
    after = text[key.end_mark.index : end].strip()
    if (
        text[start : key.start_mark.index].strip() == ""
        and key.start_mark.line == key.end_mark.line
        and value.start_mark.line > key.start_mark.line
        and (after == ":" or (after.startswith(":") and after[1:].lstrip().startswith("#")))
    ):
        walk.key_lines[path] = (start, end)


def _parse(text: str) -> _Walk:
    walk = _Walk(text)
    try:
        docs = list(yaml.compose_all(text, Loader=yaml.SafeLoader))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise ConfigParseError(f"not valid YAML ({problem})", mark.line + 1 if mark else None)
    walk.documents = len(docs)
    walk.roots = list(docs)
    for index, doc in enumerate(docs):
        if doc is not None:
            _walk(walk, doc, f"[{index}]" if index else "", "", None, False)
    return walk


_DOC_PREFIX = re.compile(r"^\[(\d+)\]\.?")
_PROFILE_KEYS = ("spring.config.activate.on-profile", "spring.profiles")


def _per_document(entries: list[Entry]) -> list[Entry]:
    """Entries of the second and later documents keyed as Spring binds them (``app.password``,
    not ``[1].app.password``) and grouped per document (``app[prod]``, by its
    ``spring.config.activate.on-profile``, else ``app[document-2]``): each document gets its own
    secret, and placeholders stay valid environment names."""
    labels: dict[str, str] = {}
    for e in entries:
        match = _DOC_PREFIX.match(e.key)
        if match and e.key[match.end() :] in _PROFILE_KEYS and e.value.strip():
            labels[match.group(1)] = re.sub(r"[^A-Za-z0-9_.-]+", "-", e.value.strip()).strip("-")
    out = []
    for e in entries:
        match = _DOC_PREFIX.match(e.key)
        if match is None:
            out.append(e)
            continue
        doc = match.group(1)
        key = e.key[match.end() :]
        base = key.rsplit(".", 1)[0] if "." in key else key
        label = labels.get(doc) or f"document-{int(doc) + 1}"
        out.append(replace(e, key=key, group=f"{base}[{label}]", document=label))
    return out


def parse(text: str) -> list[Entry]:
    """Every scalar of every document, keyed by its flattened path (``a.b[0].c``); later
    documents' entries are grouped per document (see :func:`_per_document`)."""
    return _per_document(_parse_entries(text))


def _parse_entries(text: str) -> list[Entry]:
    walk = _parse(text)
    out: list[Entry] = []
    for node_id, entry in walk.entries.items():
        aliases = tuple(walk.aliases.get(node_id, ()))
        if aliases:
            entry = Entry(
                **{
                    **entry.__dict__,
                    "aliases": aliases,
                    "movable": False,
                    "entry_span": None,
                    "why_not_movable": "the value is aliased (*) elsewhere",
                }
            )
        out.append(entry)
    return sorted(out, key=lambda e: e.value_span)


def _quoted(value: str, style: str) -> str:
    if style == "'":
        return "'" + value.replace("'", "''") + "'"
    if style == '"' or re.search(r"^[\s&*!|>'\"%@`#,\[\]{}?:-]|: | #|\s$", value):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return value


def rewrite(text: str, moves: list[Move], style: str, placeholder: str) -> str:
    """Take the moved entries out of ``text`` in ``style``; every other byte is kept."""
    if not moves:
        return text
    for m in moves:
        if m.entry.why_not_movable.startswith(TYPED):
            raise ConfigParseError(f"{m.entry.key}: {m.entry.why_not_movable}", m.entry.line)
    edits: list[Edit] = []
    if style == "placeholder":
        for m in moves:
            new = render_placeholder(placeholder, m)
            if m.entry.quote in ("|", ">"):
                new = '"' + new.replace("\\", "\\\\").replace('"', '\\"') + '"'
            else:
                new = _quoted(new, m.entry.quote)
            edits.append(Edit(*m.entry.value_span, new))
        return apply_edits(text, edits)
    if style != "spring-import":
        raise ConfigParseError(f"YAML files have no rewrite style {style!r}")
    hint = "; use the placeholder style for this file (rewrite.yaml: placeholder)"
    for m in moves:
        if not m.entry.movable or m.entry.entry_span is None:
            raise ConfigParseError(f"{m.entry.key}: {m.entry.why_not_movable}" + hint, m.entry.line)
    whole = _parse(text)
    legacy = [
        e
        for e in whole.entries.values()
        if re.sub(r"^\[\d+\]\.?", "", re.sub(r"\[\d+\]$", "", e.key)) == "spring.profiles"
        or (e.key.endswith("spring.config.use-legacy-processing") and e.value.lower() == "true")
    ]
    if legacy:
        # Boot 2.4+ refuses spring.profiles in a document unless legacy processing is on, and
        # legacy processing ignores spring.config.import: the secret would never be loaded.
        raise ConfigParseError(
            "the file uses Spring Boot's legacy profile processing (spring.profiles or "
            "spring.config.use-legacy-processing), which ignores spring.config.import" + hint,
            legacy[0].line,
        )
    docs = whole.roots
    by_doc: dict[int, list[Move]] = {}
    for m in moves:
        by_doc.setdefault(_document_of(docs, m.entry.value_span[0]), []).append(m)
    for index, doc_moves in sorted(by_doc.items()):
        # Spring Boot reads each document on its own (a profile's document imports its own
        # secret), so each gets its own import, in itself, exactly as a one-document file.
        root = docs[index]
        assert root is not None  # a document with a moved entry has content
        walk = _Walk(text)
        _walk(walk, root, "", "", None, False)
        edits += _import_edits(walk, root, doc_moves, hint)
    return apply_edits(text, edits)


def _document_of(roots: list[yaml.Node | None], offset: int) -> int:
    """Index of the document whose root holds ``offset``."""
    found = 0
    for index, root in enumerate(roots):
        if root is not None and root.start_mark.index <= offset:
            found = index
    return found


def _import_edits(walk: _Walk, root: yaml.Node, moves: list[Move], hint: str) -> list[Edit]:
    """One document's edits: its credential lines out (with the key lines of mappings that
    become empty), and its ``spring.config.import`` written or extended."""
    text = walk.text
    if not isinstance(root, yaml.MappingNode) or root.flow_style:
        raise ConfigParseError(
            "the document is not a block mapping" + hint, root.start_mark.line + 1
        )
    for m in moves:
        clash = next(
            (
                c
                for c in sorted(walk.collisions)
                if m.entry.key == c or m.entry.key.startswith(c + ".")
            ),
            None,
        )
        if clash is not None:
            raise ConfigParseError(
                f"{clash} is written twice in the document (nested and as a dotted key), so "
                f"which mapping removing {m.entry.key} would empty is not clear" + hint,
                m.entry.line,
            )
    spans: list[tuple[int, int]] = []
    removed: dict[str, int] = {}
    for m in moves:
        assert m.entry.entry_span is not None
        spans.append(m.entry.entry_span)
        parent = walk.parents.get(m.entry.key, "")
        removed[parent] = removed.get(parent, 0) + 1
    # A mapping whose entries all move goes too (its key line): "app:" left alone would give
    # Spring an empty "app" value. Deepest first, so a parent sees its emptied children.
    gone: set[str] = set()
    for group in sorted(removed, key=lambda g: g.count("."), reverse=True):
        while group and group not in gone and removed.get(group, 0) >= walk.children.get(group, 0):
            if group not in walk.key_lines:
                raise ConfigParseError(f"removing the credentials would leave {group} empty" + hint)
            gone.add(group)
            spans.append(walk.key_lines[group])
            parent = walk.parents.get(group, "")
            removed[parent] = removed.get(parent, 0) + 1
            group = parent
    nl = newline_of(text)
    keys = ", ".join(m.entry.key for m in moves)
    names = ";".join(sorted({m.secret for m in moves}))
    merge = _merge_import(walk, f"aws-secretsmanager:{names}", nl, hint)
    # Before the document's first key (after its comments, directives and "---").
    insert_at = line_start(text, root.start_mark.index)
    if text[insert_at : root.start_mark.index].strip():
        raise ConfigParseError(
            "the document's first key is on its '---' line" + hint, root.start_mark.line + 1
        )
    lead = " " * root.start_mark.column
    if merge is not None:
        block = f"{lead}# {keys}: moved to AWS Secrets Manager by migrate ({IMPORT_KEY}){nl}"
        edits = [merge]
    else:
        block = (
            f"{lead}# {keys}: moved to AWS Secrets Manager by migrate{nl}"
            f'{lead}{IMPORT_KEY}: "aws-secretsmanager:{names}"{nl}'
        )
        edits = []
    edits.append(Edit(insert_at, insert_at, block))
    edits += [Edit(start, end, "") for start, end in spans]
    return edits


def _merge_import(walk: _Walk, location: str, nl: str, hint: str) -> Edit | None:
    """The edit that adds ``location`` to an existing ``spring.config.import``, or None.

    Spring binds the key from a scalar (a comma-separated list) or a list; either may be written
    nested (``spring: config: import:``) or dotted; both flatten to the same path here.
    """
    text = walk.text
    scalars = [e for e in walk.entries.values() if e.key == IMPORT_KEY]
    sequences = walk.sequences.get(IMPORT_KEY, [])
    if any(IMPORT_KEY in paths for paths in walk.aliases.values()):
        raise ConfigParseError(f"{IMPORT_KEY} is an alias (*)" + hint)
    if len(scalars) + len(sequences) == 0:
        return None
    if len(scalars) + len(sequences) > 1:
        raise ConfigParseError(f"{IMPORT_KEY} is set more than once" + hint)
    if scalars:
        entry = scalars[0]
        node_id = next(k for k, v in walk.entries.items() if v is entry)
        start, end = entry.value_span
        if walk.aliases.get(node_id) or text[start:end].count("\n") or entry.quote in ("|", ">"):
            raise ConfigParseError(f"{IMPORT_KEY} is aliased or spans lines" + hint, entry.line)
        value = entry.value
        joined = value + ("," if value.strip() and not value.rstrip().endswith(",") else "")
        # Always quoted: a plain scalar with a comma would break inside a flow mapping.
        new = _quoted(joined + location, entry.quote if entry.quote == "'" else '"')
        if start == end and start > 0 and text[start - 1] == ":":
            new = " " + new  # ``import:`` with no value
        return Edit(start, end, new)
    seq = sequences[0]
    items = seq.value
    if not all(isinstance(i, yaml.ScalarNode) for i in items):
        raise ConfigParseError(f"{IMPORT_KEY} is a list of something else than strings" + hint)
    item = f'"{location}"'
    if seq.flow_style:
        if items:
            at = items[-1].end_mark.index
            return Edit(at, at, f", {item}")
        at = text.index("[", seq.start_mark.index) + 1
        return Edit(at, at, item)
    last = items[-1]
    prefix = text[line_start(text, last.start_mark.index) : last.start_mark.index]
    dash = re.match(r"^([ \t]*-[ \t]+)", prefix)
    if dash is None or last.start_mark.line != last.end_mark.line:
        raise ConfigParseError(
            f"the last item of {IMPORT_KEY} is not a one-line '- item'" + hint,
            last.start_mark.line + 1,
        )
    at = line_end(text, last.end_mark.index)
    lead = "" if text[:at].endswith(("\n", "\r")) else nl
    return Edit(at, at, f"{lead}{dash.group(1)}{item}{nl}")
