"""Tomcat ``context.xml`` / ``server.xml`` / ``tomcat-users.xml`` (and other XML, Maven
``settings.xml`` included): element attributes and element text, with exact spans.

The document is checked for well-formedness with the standard parser (DTD entity declarations are
refused); attributes and the text of leaf elements are then located with a scanner that skips
comments, CDATA and processing instructions, and every value is cross-checked against the
parser's. ``<Environment>`` and ``<Parameter>`` elements are keyed by their ``name`` attribute;
an element is labelled by its ``name``, ``id`` or ``username`` attribute, or its ``<id>`` child
(Maven ``<server>``). The text of a leaf element (``<password>..</password>``) belongs to its
parent's group, keyed ``parent[label]/password``. Credentials inside comments are reported (never
moved). Rewrite styles:

- ``jdbc-wrapper`` (default): a JDBC ``<Resource>`` is switched to the AWS Secrets Manager JDBC
  driver wrapper: ``driverClassName`` of the wrapper, ``url="jdbc-secretsmanager:..."`` without
  embedded credentials, ``username="<secret name>"``, ``password`` removed. Other credential
  attributes get a ``${NAME}`` placeholder (Tomcat resolves them from system properties);
- ``placeholder``: every credential attribute gets a placeholder.

Element text always gets a placeholder (entity-escaped, surrounding blanks kept). In a Maven
``settings.xml`` the default placeholder is ``${env.NAME}``, the form Maven resolves.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from migrate.configs.classify import (
    WRAPPER_DRIVERS,
    parse_db_url,
    strip_props_credentials,
    strip_url_credentials,
)
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
_COMMENT_TEXT = re.compile(r"<([A-Za-z_][\w.:-]*)(?:\s[^<>]*)?>([^<]*)</\1\s*>")
_CDATA = re.compile(r"<!\[CDATA\[(.*?)\]\]>", re.S)
_XML_BLANK = " \t\r\n"
KEYED_ELEMENTS = ("Environment", "Parameter")
# Elements that name a property of their parent: Spring ``<property name= value=>`` (beans,
# Hibernate cfg ``<property name="hibernate.connection.password">text</property>``),
# ``<util:properties>``/``<props>`` ``<prop key=>text</prop>``, map ``<entry key= value=>``.
# Their values belong to the parent (the bean, the session factory), keyed by that name.
PROPERTY_ELEMENTS = {"property": "name", "prop": "key", "entry": "key"}
LABEL_ATTRIBUTES = ("name", "id", "username")
DEFAULT_PLACEHOLDER = "${<env>}"
MAVEN_PLACEHOLDER = "${env.<env>}"


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


def text_value(raw: str) -> str:
    """Element text as the XML parser sees it (CDATA kept literally, line ends normalised)."""
    out: list[str] = []
    pos = 0
    for match in _CDATA.finditer(raw):
        out.append(_text_part(raw[pos : match.start()]))
        out.append(re.sub(r"\r\n?", "\n", match.group(1)))
        pos = match.end()
    out.append(_text_part(raw[pos:]))
    return "".join(out)


def _text_part(raw: str) -> str:
    text = re.sub(r"\r\n?", "\n", raw)
    if re.search(r"&(?!(?:lt|gt|amp|quot|apos|#\d+|#x[0-9A-Fa-f]+);)", text):
        raise ConfigParseError("element text uses an undefined entity reference")

    def ref(match: re.Match[str]) -> str:
        if match.group(1):
            return _NAMED[match.group(1)]
        return chr(int(match.group(2)) if match.group(2) else int(match.group(3), 16))

    return _ENTITY.sub(ref, text)


def escape_text(value: str) -> str:
    """``value`` as element text."""
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def is_attribute(entry: Entry) -> bool:
    """Whether ``entry`` is an attribute (not element text, not a comment): only attributes
    can be removed whole, so only they have an ``entry_span``."""
    return entry.entry_span is not None and entry.element != "#comment"


def escape_attr(value: str, quote: str) -> str:
    """``value`` as an attribute value between ``quote`` characters."""
    out = value.replace("&", "&amp;").replace("<", "&lt;")
    return out.replace('"', "&quot;") if quote == '"' else out.replace("'", "&apos;")


def _local(name: str) -> str:
    return name.rsplit("}", 1)[-1].rsplit(":", 1)[-1]


def parse(text: str) -> list[Entry]:
    """Every attribute of every element, the text of leaf elements, and credential-like
    attributes and elements inside comments."""
    if "<!ENTITY" in text:
        raise ConfigParseError("the document declares DTD entities, which are not supported")
    try:
        root = ET.fromstring(text.lstrip("\ufeff"))
    except ET.ParseError as exc:
        raise ConfigParseError(f"not well-formed XML ({exc})", exc.position[0]) from None
    parsed = list(root.iter())
    parent_of = {child: parent for parent in parsed for child in parent}
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
    group_of: dict[ET.Element, str] = {}
    # The property name a Spring/Hibernate element (or its nested <value>) stands for.
    property_of: dict[ET.Element, str] = {}
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
            # Namespace declarations and prefixed attributes are keyed differently by the parser.
            if ":" not in name and name != "xmlns" and element.get(name) != value:
                raise ConfigParseError(
                    f"attribute {name} of <{tag}> could not be read exactly",
                    line_at(text, match.start()),
                )
        counters[tag] = counters.get(tag, 0) + 1
        label = _label(element, values) or str(counters[tag])
        group = f"{_local(tag)}[{label}]"
        key_prefix = group
        parent = parent_of.get(element)
        prop_attr = PROPERTY_ELEMENTS.get(_local(tag))
        if prop_attr and values.get(prop_attr) and parent is not None:
            # <bean id="ds"><property name="password" value=...>: the bean's secret, key password.
            property_of[element] = values[prop_attr]
            group = group_of[parent]
            key_prefix = f"{group}/{_local(tag)}[{values[prop_attr]}]"
        elif _local(tag) == "value" and parent in property_of:
            property_of[element] = property_of[parent]
        group_of[element] = group
        for attr in attrs:
            name = attr.group(2)
            key_name = name
            if _local(tag) in KEYED_ELEMENTS and name == "value" and values.get("name"):
                key_name = values["name"]
            if element in property_of and name == "value":
                key_name = property_of[element]
            entries.append(
                Entry(
                    key=f"{key_prefix}@{name}",
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
        if len(element) == 0 and not match.group(0).endswith("/>"):
            named = property_of.get(element)
            if named is not None:
                # <prop key="db.password">text</prop>: the parent's group, keyed by the name.
                entries.append(_text_entry(text, flat, match, element, group, named))
            else:
                owner = group_of[parent] if parent is not None else group
                entries.append(_text_entry(text, flat, match, element, owner))
    for start, end in comments:
        for attr in _COMMENT_ATTR.finditer(text, start, end):
            entries.append(
                _comment_entry(text, attr.group(1), attr.group(2)[1:-1], attr.span(2), "@")
            )
        for elem in _COMMENT_TEXT.finditer(text, start, end):
            entries.append(_comment_entry(text, elem.group(1), elem.group(2), elem.span(2), "/"))
    return entries


def _label(element: ET.Element, values: dict[str, str]) -> str | None:
    """What tells an element apart from its siblings: an attribute, or an ``<id>`` child."""
    for name in LABEL_ATTRIBUTES:
        if values.get(name):
            return values[name]
    for child in element:
        if _local(child.tag) == "id" and len(child) == 0 and (child.text or "").strip():
            return (child.text or "").strip()
    return None


def _text_entry(
    text: str,
    flat: str,
    match: re.Match[str],
    element: ET.Element,
    group: str,
    named: str | None = None,
) -> Entry:
    """The text of a leaf element, blanks around it excluded from the value and the span."""
    tag = match.group(1)
    close = re.compile(r"</\s*" + re.escape(tag) + r"\s*>")
    end = flat.find("<", match.end())
    if end < 0 or not close.match(flat, end):
        raise ConfigParseError(f"could not locate the end of <{tag}>", line_at(text, match.start()))
    raw = text[match.end() : end]
    lead = len(raw) - len(raw.lstrip(_XML_BLANK))
    inner = raw.strip(_XML_BLANK)
    start = match.end() + lead
    span = (start, start + len(inner))
    why = ""
    if "<!--" in raw or "<?" in raw:
        # The parser drops comments and instructions from the text: we cannot rewrite it exactly.
        why = "the element text holds a comment or processing instruction: edit it by hand"
        value = (element.text or "").strip(_XML_BLANK)
    else:
        if text_value(raw) != (element.text or ""):
            raise ConfigParseError(
                f"the text of <{tag}> could not be read exactly", line_at(text, match.start())
            )
        value = text_value(inner)
    own = _local(tag)
    key = f"{group}/{own}" if not group.startswith(f"{own}[") else f"{group}/#text"
    return Entry(
        key=f"{group}/{own}[{named}]" if named is not None else key,
        name=named if named is not None else own,
        value=value,
        line=line_at(text, span[0]),
        value_span=span,
        entry_span=None,
        group=group,
        element=own,
        movable=not why,
        why_not_movable=why,
    )


def _comment_entry(text: str, name: str, raw: str, span: tuple[int, int], sep: str) -> Entry:
    return Entry(
        key=f"<!-- comment -->{sep}{name}",
        name=name,
        value=raw,
        line=line_at(text, span[0]),
        value_span=span,
        entry_span=None,
        group="#comment",
        element="#comment",
        movable=False,
        why_not_movable="inside an XML comment: delete it by hand",
    )


def jdbc_resource(entries: list[Entry], group: str) -> tuple[str, Entry] | None:
    """(engine, url entry) when ``group`` is a ``<Resource>`` with a JDBC URL we can wrap."""
    members = [e for e in entries if e.group == group]
    # A <Resource> with child elements is not Tomcat's: keep it to placeholders.
    if not members or members[0].element != "Resource" or not all(map(is_attribute, members)):
        return None
    url = next((e for e in members if e.name == "url"), None)
    if url is None or not url.value.strip().lower().startswith("jdbc:"):
        return None
    parsed = parse_db_url(url.value)
    if parsed is None or parsed.engine not in WRAPPER_DRIVERS:
        return None
    return parsed.engine, url


# DataSource factories that take the password as written. Any other ``factory`` (the
# "encrypted password" DataSourceFactory subclasses legacy shops write) may decrypt it first: the
# attribute then holds ciphertext, and storing it as the password would break the app.
STOCK_FACTORIES = frozenset(
    {
        "org.apache.tomcat.jdbc.pool.DataSourceFactory",
        "org.apache.tomcat.dbcp.dbcp2.BasicDataSourceFactory",
        "org.apache.tomcat.dbcp.dbcp.BasicDataSourceFactory",
        "org.apache.commons.dbcp2.BasicDataSourceFactory",
        "org.apache.commons.dbcp.BasicDataSourceFactory",
        "com.zaxxer.hikari.HikariJNDIFactory",
    }
)


def custom_factory(entries: list[Entry], group: str) -> str | None:
    """The class name of a non-stock ``factory`` on the element of ``group``, or None."""
    for e in entries:
        if e.group == group and e.name == "factory" and is_attribute(e):
            name = e.value.strip()
            return None if name in STOCK_FACTORIES else name
    return None


def _attr_text(name: str, value: str, quote: str) -> str:
    return f"{name}={quote}{escape_attr(value, quote)}{quote}"


# The wrapper's property sub-prefix per engine: it loads the real driver named by
# ``drivers.<sub>.realDriverClass`` (a system property or secretsmanager.properties).
WRAPPER_SUBPREFIX = {
    "mysql": "mysql",
    "mariadb": "mariadb",
    "postgres": "postgresql",
    "oracle": "oracle",
    "sqlserver": "sqlserver",
    "db2": "db2",
    "redshift": "redshift",
}


def wrapper_needs(text: str, moves: list[Move]) -> list[str]:
    """What the application needs for each resource the wrapper takes over: the wrapper loads
    the real driver itself, so the one this file named must be on the classpath and named to
    the wrapper (an old ``com.mysql.jdbc.Driver`` is not what the wrapper loads by default)."""
    entries = parse(text)
    notes: list[str] = []
    for group in sorted({m.entry.group for m in moves}):
        jdbc = jdbc_resource(entries, group)
        if jdbc is None:
            continue
        engine = jdbc[0]
        members = {e.name: e for e in entries if e.group == group and is_attribute(e)}
        driver = members.get("driverClassName")
        sub = WRAPPER_SUBPREFIX[engine]
        if driver is not None and driver.value.strip():
            notes.append(
                f"{group}: the wrapper replaces driverClassName {driver.value.strip()}; keep "
                f"that driver's jar in $CATALINA_BASE/lib and name it to the wrapper: "
                f"-Ddrivers.{sub}.realDriverClass={driver.value.strip()} in CATALINA_OPTS "
                "(bin/setenv.sh) or in secretsmanager.properties on the classpath, with "
                "AWS_REGION (or drivers.region) set for the AWS SDK"
            )
        else:
            notes.append(
                f"{group}: the wrapper loads its default {engine} driver; put that jar in "
                f"$CATALINA_BASE/lib, or name another with -Ddrivers.{sub}.realDriverClass=..."
            )
    return notes


def rewrite(text: str, moves: list[Move], style: str, placeholder: str) -> str:
    """Switch JDBC resources to the wrapper (or placeholders); every other byte is kept."""
    if not moves:
        return text
    if style not in ("jdbc-wrapper", "placeholder"):
        raise ConfigParseError(f"XML files have no rewrite style {style!r}")
    entries = parse(text)
    if placeholder == DEFAULT_PLACEHOLDER and _is_maven_settings(text):
        placeholder = MAVEN_PLACEHOLDER  # Maven resolves ${env.NAME}, not ${NAME}
    edits: list[Edit] = []
    by_group: dict[str, list[Move]] = {}
    for m in moves:
        by_group.setdefault(m.entry.group, []).append(m)
    for group, group_moves in by_group.items():
        jdbc = jdbc_resource(entries, group) if style == "jdbc-wrapper" else None
        if jdbc is None:
            edits += [_placeholder_edit(m, placeholder) for m in group_moves]
            continue
        engine, url = jdbc
        secret = group_moves[0].secret
        members = {e.name: e for e in entries if e.group == group and is_attribute(e)}
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
            if m.entry.name.lower() == "connectionproperties":
                # The wrapper supplies user and password: keep the pool's other properties.
                kept = strip_props_credentials(m.entry.value)
                if kept:
                    q = m.entry.quote
                    edits.append(Edit(*m.entry.value_span, f"{q}{escape_attr(kept, q)}{q}"))
                elif m.entry.entry_span is not None:
                    edits.append(Edit(*m.entry.entry_span, ""))
            elif m.entry.name not in ("password", "url", "username", "user"):
                edits.append(_placeholder_edit(m, placeholder))
    return apply_edits(text, edits)


def _placeholder_edit(move: Move, placeholder: str) -> Edit:
    value = render_placeholder(placeholder, move)
    if not is_attribute(move.entry):
        if not move.entry.movable:
            raise ConfigParseError(f"{move.entry.key}: {move.entry.why_not_movable}")
        return Edit(*move.entry.value_span, escape_text(value))
    return Edit(*move.entry.value_span, _attr_text("", value, move.entry.quote)[1:])


def _is_maven_settings(text: str) -> bool:
    """Whether the document is a Maven ``settings.xml`` (root element ``<settings>``)."""
    try:
        root = ET.fromstring(text.lstrip("\ufeff"))
    except ET.ParseError:
        return False
    return _local(root.tag) == "settings"
