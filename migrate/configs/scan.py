"""From a file's bytes to findings, near-misses, secrets (grouped) and the rewritten bytes.

Everything here works in memory: the scan of a file decides which entries leave it, which secret
each goes to (with its JSON payload), and what the file looks like afterwards. The step calls it
while planning (to show and fingerprint the result) and again while acting, on the byte-exact
backup, so the rewrite is the same every time.

Values live only in :class:`Finding` / :class:`SecretGroup` objects (their ``repr`` hides them);
:meth:`FileScan.facts` is the JSON-safe view: locations, reasons and keyed fingerprints.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from migrate.configs import FORMATS, detect_format, tomcat
from migrate.configs.classify import (
    near_miss_reason,
    parse_db_url,
    props_credentials,
    props_password,
    secret_name_reason,
    shape_of,
    url_password,
)
from migrate.configs.model import ConfigParseError, Entry, Move, env_name
from migrate.configs.textio import Decoded, Fingerprinter, decode, encode

SECRET_NAME_RE = re.compile(r"^[A-Za-z0-9/_+=.@-]{1,512}$")


@dataclass(frozen=True)
class Finding:
    """A credential found in a file: the entry and why it counts."""

    entry: Entry
    reason: str


@dataclass(frozen=True)
class NearMiss:
    """A credential-like entry that is not moved, and why."""

    line: int
    key: str
    reason: str
    # A real-looking credential left in plain text (an XML comment): the file is not compliant.
    plaintext: bool = False


@dataclass
class SecretGroup:
    """Credentials of one file that become one secret."""

    resource: str
    group: str
    shape: str  # "rds" or "flat"
    name: str = ""
    moves: list[Move] = field(default_factory=list)
    payload: dict[str, Any] = field(default_factory=dict, repr=False)

    def secret_string(self) -> str:
        """The SecretString stored in Secrets Manager (canonical JSON)."""
        return canonical(self.payload)


def canonical(payload: dict[str, Any]) -> str:
    """Canonical JSON: the same payload always gives the same string."""
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


@dataclass
class FileScan:
    """What one file holds and what its rewrite would be."""

    path: Path
    format: str
    style: str
    encoding: str = ""
    findings: list[Finding] = field(default_factory=list)
    near_misses: list[NearMiss] = field(default_factory=list)
    groups: list[SecretGroup] = field(default_factory=list)
    error: str | None = None
    # What the application needs for the rewrite to work (named in the plan's risks).
    app_needs: list[str] = field(default_factory=list)
    original: bytes = field(default=b"", repr=False)
    rewritten: bytes | None = field(default=None, repr=False)

    @property
    def compliant(self) -> bool:
        """Nothing flags the file: no error, no credential, no credential left in a comment."""
        return (
            not self.error and not self.findings and not any(n.plaintext for n in self.near_misses)
        )

    def facts(self, fp: Fingerprinter) -> dict[str, Any]:
        """JSON-safe description: no value, only locations, reasons and keyed fingerprints."""
        by_entry = {id(m.entry): g.name for g in self.groups for m in g.moves}
        return {
            "format": self.format,
            "style": self.style,
            "encoding": self.encoding,
            "fp": fp.data(self.original) if self.original else None,
            "rewritten_fp": fp.data(self.rewritten) if self.rewritten is not None else None,
            "findings": [
                {
                    "line": f.entry.line,
                    "key": f.entry.key,
                    "reason": f.reason,
                    "fp": fp.value(f.entry.value),
                    "secret": by_entry.get(id(f.entry)),
                }
                for f in self.findings
            ],
            "near_misses": [
                {"line": n.line, "key": n.key, "reason": n.reason, "plaintext": n.plaintext}
                for n in self.near_misses
            ],
            "compliant": self.compliant,
            "secrets": [
                {
                    "name": g.name,
                    "resource": g.resource,
                    "shape": g.shape,
                    "keys": sorted(g.payload),
                    "lines": sorted({m.entry.line for m in g.moves}),
                    "fp": fp.value(g.secret_string()),
                }
                for g in self.groups
            ],
            "error": self.error,
            "app_needs": list(self.app_needs),
        }


def credential_values(value: str) -> set[str]:
    """A moved value and the credentials inside it (the password of a URL or of driver
    properties): a rewrite that leaves any of them in the file has not moved the credential."""
    inner = {value, url_password(value), props_password(value)}
    return {v for v in inner if v}


def slug(text: str) -> str:
    """A secret-name-safe slug (``jdbc/legacy`` -> ``jdbc-legacy``)."""
    return re.sub(r"[^A-Za-z0-9_.+=@-]+", "-", text).strip("-.") or "config"


def classify(entries: list[Entry]) -> tuple[list[Finding], list[NearMiss]]:
    """Which entries are credentials (findings) and which only look like one (near-misses)."""
    findings: list[Finding] = []
    misses: list[NearMiss] = []
    for entry in entries:
        by_name = secret_name_reason(entry.name)
        shape_info = shape_of(entry.value)
        shape = shape_info.label
        if entry.element is not None and not entry.movable:  # XML comments, odd element text
            if (by_name and not near_miss_reason(entry.value)) or shape:
                misses.append(NearMiss(entry.line, entry.key, entry.why_not_movable, True))
            continue
        if by_name:
            why = near_miss_reason(entry.value)
            if why and not shape:
                misses.append(NearMiss(entry.line, entry.key, why))
            else:
                findings.append(Finding(entry, by_name))
        elif shape:
            findings.append(Finding(entry, f"value shape: {shape}"))
        elif shape_info.aws_key_id:
            misses.append(
                NearMiss(
                    entry.line,
                    entry.key,
                    "an AWS access key id (not a secret by itself; replace the key with a role)",
                )
            )
    return findings, misses


def _resource_for(fmt: str, group: str, path: Path) -> str:
    if fmt == "xml":
        element, _, label = group.partition("[")
        label = label[:-1] if label.endswith("]") else label
        # An element without a name, id or username is labelled by its position: keep its tag
        # in front, so names and environment variables do not start with a digit.
        return slug(f"{element}-{label}" if label.isdigit() or not label else label)
    if fmt == "env":
        return slug(path.name.lstrip(".")).replace(".", "-")
    return slug(group.replace(".", "-"))


PROPS_ATTR = "connectionproperties"


def _rds_payload(entries: list[Entry], group: str, url: Entry) -> dict[str, Any]:
    members = {e.name: e for e in entries if e.group == group and tomcat.is_attribute(e)}
    parsed = parse_db_url(url.value)
    assert parsed is not None
    user = members.get("username") or members.get("user")
    password = members.get("password")
    # A pool's connectionProperties="user=a;password=b" is where some shops keep them.
    pool = next(
        (props_credentials(e.value) for n, e in members.items() if n.lower() == PROPS_ATTR), {}
    )
    payload: dict[str, Any] = {
        "engine": parsed.engine,
        "username": user.value if user else parsed.username or pool.get("user"),
        "password": password.value if password else url_password(url.value) or pool.get("password"),
    }
    if parsed.host:
        payload["host"] = parsed.host
    if parsed.port:
        payload["port"] = parsed.port
    if parsed.dbname:
        payload["dbname"] = parsed.dbname.split("?")[0].split(";")[0]
    return {k: v for k, v in payload.items() if v is not None}


def build_groups(
    fmt: str, style: str, entries: list[Entry], findings: list[Finding], path: Path
) -> list[SecretGroup]:
    """Group the findings of a file into secrets, with their payloads and moves."""
    groups: dict[str, SecretGroup] = {}
    file_group = fmt == "env" or (fmt in ("properties", "yaml") and style == "spring-import")
    for finding in findings:
        entry = finding.entry
        key = "file" if file_group and fmt == "env" else entry.group
        group = groups.get(key)
        if group is None:
            jdbc = tomcat.jdbc_resource(entries, entry.group) if fmt == "xml" else None
            group = SecretGroup(
                resource=_resource_for(fmt, entry.group, path),
                group=entry.group,
                shape="rds" if jdbc else "flat",
            )
            if jdbc:
                group.payload = _rds_payload(entries, entry.group, jdbc[1])
            groups[key] = group
        if fmt == "xml":
            json_key = entry.name
            # <Environment name="api.token" value=...>: the name is the property itself.
            keyed = entry.element in tomcat.KEYED_ELEMENTS
            env = env_name(entry.name if keyed else f"{group.resource}.{entry.name}")
        elif fmt in ("properties", "yaml", "env"):
            json_key, env = entry.key, env_name(entry.key)
            if entry.document and fmt != "env":
                # A later document (a profile) has its own secret: its placeholder gets its
                # own variable too, or one environment would give every profile one password.
                env = env_name(f"{entry.key}_{entry.document}")
        elif fmt == "ini":
            json_key, env = entry.name, env_name(f"{entry.group}.{entry.name}")
        else:
            json_key, env = entry.name, env_name(entry.key)
        group.moves.append(Move(entry, "", json_key, env))
        # With the wrapper, the pool's properties lose their user/password to the RDS shape.
        wrapped_props = style == "jdbc-wrapper" and entry.name.lower() == PROPS_ATTR
        if group.shape == "flat" or (
            entry.name not in ("password", "url", "username", "user") and not wrapped_props
        ):
            group.payload[json_key] = entry.value
    return list(groups.values())


def path_slug(rel: str) -> str:
    """``conf/Catalina/localhost/shop.xml`` as a secret-name path, each segment slugged."""
    return "/".join(slug(part.lstrip(".")) for part in rel.split("/") if part) or "config"


def render_name(
    template: str,
    group: SecretGroup,
    path: Path,
    fmt: str,
    rel: str | None = None,
    host: str = "localhost",
) -> str:
    """The secret name for ``group`` from the playbook's template.

    ``rel`` is the file's path relative to the scanned root (``<path>``; the file name when not
    given), ``host`` fills ``<host>``.
    """
    name = (
        template.replace("<resource>", group.resource)
        .replace("<host>", slug(host))
        .replace("<path>", path_slug(rel if rel is not None else path.name))
        .replace("<file>", slug(path.name.lstrip(".")))
        .replace("<dir>", slug(path.parent.name))
        .replace("<format>", fmt)
    )
    return re.sub(r"/{2,}", "/", name)


# File names Spring Boot reads by itself (config/ and classpath, profile variants included).
SPRING_FILE = re.compile(r"^(application|bootstrap)([-.][\w.-]*)?\.(properties|ya?ml)$")

_NOTHING_EXPANDS = {
    "ini": "an INI file has no standard way to refer to a secret: nothing would expand a "
    "${NAME} written into it and the application would read the placeholder as its password. "
    "Set rewrite.ini: placeholder if the application or its deploy tooling expands ${...} in "
    "this file, or move the credential by hand",
    "json": "a JSON file has no standard way to refer to a secret: nothing would expand a "
    "${NAME} written into it and the application would read the placeholder as its password. "
    "Set rewrite.json: placeholder if the application or its deploy tooling expands ${...} in "
    "this file, or move the credential by hand",
}


def resolve_style(fmt: str, style: str, path: Path) -> tuple[str, str | None]:
    """(style, why it is refused or None). ``auto`` for ``.properties`` and YAML is
    ``spring-import`` for a file Spring Boot loads itself (``application*``/``bootstrap*``) and
    refused for any other (``@PropertySource`` files included): ``java.util.Properties`` or a YAML loader
    ignore ``spring.config.import`` and the application would lose its password. ``refuse``
    says why nothing would expand a reference in the file."""
    if style == "auto":
        # Only the name says Spring Boot loads the file itself: spring.* keys are also in files
        # read through @PropertySource, where spring.config.import is ignored.
        if SPRING_FILE.match(path.name):
            return "spring-import", None
        return "refuse", (
            f"nothing shows that Spring Boot loads this {fmt} file itself (its name is not "
            "application*/bootstrap*; a file read through @PropertySource or by plain code "
            "ignores spring.config.import, even with spring.* keys): the application would "
            f"lose its password. Set rewrite.{fmt}: spring-import if Spring Boot loads it "
            f"(spring.config.location), or rewrite.{fmt}: placeholder if something expands "
            "${...} in it"
        )
    if style == "refuse" and fmt in _NOTHING_EXPANDS:
        return style, _NOTHING_EXPANDS[fmt]
    if style == "refuse" and fmt in ("properties", "yaml"):
        return style, f"rewrite.{fmt}: refuse (the playbook's choice)"
    return style, None


def scan_bytes(
    path: Path,
    data: bytes,
    fmt: str,
    style: str,
    name_template: str,
    placeholder: str,
    rel: str | None = None,
    host: str = "localhost",
    properties_encoding: str = "iso-8859-1",
) -> FileScan:
    """Scan one file's bytes and compute its rewrite (in memory); ``rel`` and ``host`` fill the
    template's ``<path>`` and ``<host>`` (see :func:`render_name`); ``.properties`` are decoded
    with ``properties_encoding``, as the application's runtime reads them."""
    runtime = properties_encoding if fmt == "properties" else None
    scan = FileScan(path=path, format=fmt, style=style, original=data)
    module = FORMATS[fmt]
    try:
        decoded: Decoded = decode(data, declared_xml=fmt == "xml", runtime=runtime)
        scan.encoding = decoded.encoding
        entries = module.parse(decoded.text)
    except ConfigParseError as exc:
        scan.error = f"cannot be parsed as {fmt}: {exc}"
        return scan
    scan.findings, scan.near_misses = classify(entries)
    style, refused = resolve_style(fmt, style, path)
    scan.style = style
    if refused:
        if scan.findings:  # a file without credentials needs no rewrite: it stays compliant
            scan.error = f"not rewritten: {refused}"
        return scan
    if fmt == "xml":
        for element in sorted({f.entry.group for f in scan.findings}):
            factory = tomcat.custom_factory(entries, element)
            if factory:
                scan.error = (
                    f"{element} uses the custom factory {factory}, which may decrypt its password "
                    "itself: the value in the file would then be ciphertext, and storing it as "
                    "the password (or switching in the JDBC wrapper) would break the "
                    "application. Review it: decrypt the password with that factory's tool, "
                    "write it in the file as plain text and switch the factory to "
                    "org.apache.tomcat.jdbc.pool.DataSourceFactory, then plan again; or exclude "
                    "the file"
                )
                return scan
    scan.groups = build_groups(fmt, style, entries, scan.findings, path)
    for group in scan.groups:
        group.name = render_name(name_template, group, path, fmt, rel, host)
        if not SECRET_NAME_RE.match(group.name):
            scan.error = (
                f"the secret name {group.name!r} (from name_template) has characters Secrets "
                "Manager refuses; use letters, digits and /_+=.@-"
            )
            return scan
        group.moves = [Move(m.entry, group.name, m.json_key, m.env) for m in group.moves]
    moves = [m for g in scan.groups for m in g.moves]
    if fmt == "xml" and style == "jdbc-wrapper":
        scan.app_needs = tomcat.wrapper_needs(decoded.text, moves)
    try:
        text = module.rewrite(decoded.text, moves, style, placeholder)
        rewritten = encode(text, decoded.encoding)
        after = module.parse(decode(rewritten, declared_xml=fmt == "xml", runtime=runtime).text)
    except ConfigParseError as exc:
        scan.error = f"cannot be rewritten in style {style}: {exc}"
        scan.groups = []
        return scan
    left, _ = classify(after)
    moved = {v for m in moves for v in credential_values(m.entry.value)}
    if any(credential_values(f.entry.value) & moved for f in left):
        scan.error = f"the {style} rewrite would leave a credential in the file"
        scan.groups = []
        return scan
    scan.rewritten = rewritten if moves else None
    return scan


def scan_file(
    path: Path,
    styles: dict[str, str],
    name_template: str,
    placeholder: str,
    max_bytes: int,
    rel: str | None = None,
    host: str = "localhost",
    properties_encoding: str = "iso-8859-1",
) -> FileScan:
    """Read and scan one file; unreadable or oversized files come back with ``error`` set."""
    fmt = detect_format(path) or "unknown"
    style = styles.get(fmt, "")
    if fmt == "unknown":
        return FileScan(path=path, format=fmt, style=style, error="not a config format we read")
    if path.is_symlink():
        return FileScan(
            path=path,
            format=fmt,
            style=style,
            error="a symbolic link: list the file it points to instead (a rewrite would "
            "replace the link with a file)",
        )
    try:
        size = path.stat().st_size
        if size > max_bytes:
            return FileScan(
                path=path,
                format=fmt,
                style=style,
                error=f"larger than max_file_bytes ({size} > {max_bytes})",
            )
        data = path.read_bytes()
    except PermissionError:
        return FileScan(
            path=path,
            format=fmt,
            style=style,
            error="cannot be read (permission denied): run migrate as a user that can read "
            "and write it, or exclude it",
        )
    except OSError as exc:
        return FileScan(
            path=path, format=fmt, style=style, error=f"cannot be read ({exc.strerror})"
        )
    return scan_bytes(
        path, data, fmt, style, name_template, placeholder, rel, host, properties_encoding
    )
