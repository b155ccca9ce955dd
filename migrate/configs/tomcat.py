"""Tomcat ``context.xml`` / ``server.xml`` (and other XML): element attributes with exact spans.

The document is checked for well-formedness with the standard parser (DTD entity declarations are
refused); attributes are then located with a scanner that skips comments, CDATA and processing
instructions, and every value is cross-checked against the parser's. ``<Environment>`` and
``<Parameter>`` elements are keyed by their ``name`` attribute. Credentials inside comments are
reported (never moved). Rewrite styles:

- ``jdbc-wrapper`` (default): a JDBC ``<Resource>`` is switched to the AWS Secrets Manager JDBC
  driver wrapper: ``driverClassName`` of the wrapper, ``url="jdbc-secretsmanager:..."`` without
  embedded credentials, ``username="<secret name>"``, ``password`` removed. Other credential
  attributes get a ``${NAME}`` placeholder (Tomcat resolves them from system properties);
- ``placeholder``: every credential attribute gets a placeholder.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from migrate.configs.classify import WRAPPER_DRIVERS, parse_db_url, strip_url_credentials
from migrate.configs.model import (
    ConfigParseError,
    Edit,
    Entry,
    Move,
    apply_edits,
    line_at,
    render_placeholder,
)

_MASK = re.compile(
    r"<!--.*?-->|<!\[CDATA\[.*?\]\]>|<\?.*?\?>|<!DOCTYPE[^\[>]*(?:\[.*?\])?\s*>", re.S
)
_TAG = re.compile(r"<([A-Za-z_][\w:.-]*)((?:\s+[^\s=/>]+\s*=\s*(?:\"[^\"]*\"|'[^']*'))*)\s*/?>")
_ATTR = re.compile(r"(\s+)([^\s=/>]+)(\s*=\s*)(\"([^\"]*)\"|'([^']*)')")
_ENTITY = re.compile(r"&(?:(lt|gt|amp|quot|apos)|#(\d+)|#x([0-9A-Fa-f]+));")
_NAMED = {"lt": "<", "gt": ">", "amp": "&", "quot": '"', "apos": "'"}
_COMMENT_ATTR = re.compile(r"([\w.:-]+)\s*=\s*(\"[^\"]*\"|'[^']*')")
KEYED_ELEMENTS = ("Environment", "Parameter")


def attr_value(raw: str) -> str:
    """An attribute's value as the XML parser sees it (normalised blanks, references)."""
    text = re.sub(r"\r\n|[\t\n\r]", " ", raw)
    if re.search(r"&(?!(?:lt|gt|amp|quot|apos|#\d+|#x[0-9A-Fa-f]+);)", text):
        raise ConfigParseError("an attribute uses an undefined entity reference")

    def ref(match: re.Match[str]) -> str:
        if match.group(1):
            return _NAMED[match.group(1)]
        return chr(int(match.group(2)) if match.group(2) else int(match.group(3), 16))

    return _ENTITY.sub(ref, text)


def escape_attr(value: str, quote: str) -> str:
    """``value`` as an attribute value between ``quote`` characters."""
    out = value.replace("&", "&amp;").replace("<", "&lt;")
    return out.replace('"', "&quot;") if quote == '"' else out.replace("'", "&apos;")


def _local(name: str) -> str:
    return name.rsplit("}", 1)[-1].rsplit(":", 1)[-1]


def parse(text: str) -> list[Entry]:
    """Every attribute of every element (and credential-like attributes inside comments)."""
    if "<!ENTITY" in text:
        raise ConfigParseError("the document declares DTD entities, which are not supported")
    try:
        root = ET.fromstring(text.lstrip("\ufeff"))
    except ET.ParseError as exc:
        raise ConfigParseError(f"not well-formed XML ({exc})", exc.position[0]) from None
    parsed = list(root.iter())
    masked = list(text)
    comments: list[tuple[int, int]] = []
    for match in _MASK.finditer(text):
        masked[match.start() : match.end()] = " " * (match.end() - match.start())
        if match.group(0).startswith("<!--"):
            comments.append((match.start(), match.end()))
    flat = "".join(masked)
    entries: list[Entry] = []
    tags = list(_TAG.finditer(flat))
    if len(tags) != len(parsed):
        raise ConfigParseError("could not locate every element of the document")
    counters: dict[str, int] = {}
    for match, element in zip(tags, parsed, strict=True):
        tag = match.group(1)
        if _local(tag) != _local(element.tag):
            raise ConfigParseError("could not locate every element of the document")
        attrs = list(_ATTR.finditer(flat, match.start(2), match.end(2)))
        values = {
            a.group(2): attr_value(a.group(5) if a.group(5) is not None else a.group(6))
            for a in attrs
        }
        for name, value in values.items():
            if ":" not in name and element.get(name) != value:
                raise ConfigParseError(
                    f"attribute {name} of <{tag}> could not be read exactly",
                    line_at(text, match.start()),
                )
        counters[tag] = counters.get(tag, 0) + 1
        label = values.get("name") or str(counters[tag])
        group = f"{_local(tag)}[{label}]"
        for attr in attrs:
            name = attr.group(2)
            key_name = name
            if _local(tag) in KEYED_ELEMENTS and name == "value" and values.get("name"):
                key_name = values["name"]
            entries.append(
                Entry(
                    key=f"{group}@{name}",
                    name=key_name,
                    value=values[name],
                    line=line_at(text, attr.start(4)),
                    value_span=(attr.start(4), attr.end(4)),
                    entry_span=(attr.start(1), attr.end(4)),
                    group=group,
                    element=_local(tag),
                    quote=attr.group(4)[0],
                )
            )
    for start, end in comments:
        for attr in _COMMENT_ATTR.finditer(text, start, end):
            raw = attr.group(2)[1:-1]
            entries.append(
                Entry(
                    key=f"<!-- comment -->@{attr.group(1)}",
                    name=attr.group(1),
                    value=raw,
                    line=line_at(text, attr.start(2)),
                    value_span=(attr.start(2), attr.end(2)),
                    entry_span=None,
                    group="#comment",
                    element="#comment",
                    movable=False,
                    why_not_movable="inside an XML comment: delete it by hand",
                )
            )
    return entries


def jdbc_resource(entries: list[Entry], group: str) -> tuple[str, Entry] | None:
    """(engine, url entry) when ``group`` is a ``<Resource>`` with a JDBC URL we can wrap."""
    members = [e for e in entries if e.group == group]
    if not members or members[0].element != "Resource":
        return None
    url = next((e for e in members if e.name == "url"), None)
    if url is None or not url.value.strip().lower().startswith("jdbc:"):
        return None
    parsed = parse_db_url(url.value)
    if parsed is None or parsed.engine not in WRAPPER_DRIVERS:
        return None
    return parsed.engine, url


def _attr_text(name: str, value: str, quote: str) -> str:
    return f"{name}={quote}{escape_attr(value, quote)}{quote}"


def rewrite(text: str, moves: list[Move], style: str, placeholder: str) -> str:
    """Switch JDBC resources to the wrapper (or placeholders); every other byte is kept."""
    if not moves:
        return text
    if style not in ("jdbc-wrapper", "placeholder"):
        raise ConfigParseError(f"XML files have no rewrite style {style!r}")
    entries = parse(text)
    edits: list[Edit] = []
    by_group: dict[str, list[Move]] = {}
    for m in moves:
        by_group.setdefault(m.entry.group, []).append(m)
    for group, group_moves in by_group.items():
        jdbc = jdbc_resource(entries, group) if style == "jdbc-wrapper" else None
        if jdbc is None:
            for m in group_moves:
                value = render_placeholder(placeholder, m)
                edits.append(Edit(*m.entry.value_span, _attr_text("", value, m.entry.quote)[1:]))
            continue
        engine, url = jdbc
        secret = group_moves[0].secret
        members = {e.name: e for e in entries if e.group == group}
        quote = url.quote
        new_url = "jdbc-secretsmanager:" + strip_url_credentials(url.value.strip())[5:]
        edits.append(Edit(*url.value_span, f"{quote}{escape_attr(new_url, quote)}{quote}"))
        inserted: list[str] = []
        driver = members.get("driverClassName")
        if driver is not None:
            edits.append(
                Edit(*driver.value_span, f"{driver.quote}{WRAPPER_DRIVERS[engine]}{driver.quote}")
            )
        else:
            inserted.append(_attr_text("driverClassName", WRAPPER_DRIVERS[engine], quote))
        user = members.get("username") or members.get("user")
        if user is not None:
            edits.append(
                Edit(*user.value_span, f"{user.quote}{escape_attr(secret, user.quote)}{user.quote}")
            )
        else:
            inserted.append(_attr_text("username", secret, quote))
        if inserted:
            edits.append(Edit(url.value_span[1], url.value_span[1], " " + " ".join(inserted)))
        password = members.get("password")
        if password is not None and password.entry_span is not None:
            edits.append(Edit(*password.entry_span, ""))
        for m in group_moves:
            if m.entry.name not in ("password", "url", "username", "user"):
                value = render_placeholder(placeholder, m)
                edits.append(Edit(*m.entry.value_span, _attr_text("", value, m.entry.quote)[1:]))
    return apply_edits(text, edits)
