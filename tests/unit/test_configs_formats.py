"""Config parsing and rewriting over a corpus of realistic files: findings, exact bytes, styles."""

from __future__ import annotations

import difflib
import hashlib
import json
import os
import stat
import tempfile
from pathlib import Path

import pytest

from migrate.configs import FORMATS, detect_format, envfile, jsonfile, properties, tomcat, yamlfile
from migrate.configs.scan import FileScan, scan_bytes, scan_file
from migrate.configs.textio import Fingerprinter, atomic_write, decode
from tests.unit.configs_corpus import (
    COMPLIANT,
    CORPUS,
    ERRORS,
    LATIN1_PW,
    MOVED,
    PROPS_CONT_PW,
    PROPS_ESCAPED_PW,
    SECRET_VALUES,
    XML_ENTITY_PW,
    YAML_ANCHOR_PW,
)

DEFAULT = {
    "xml": "jdbc-wrapper",
    "properties": "spring-import",
    "yaml": "spring-import",
    "env": "remove",
    "json": "placeholder",
    "ini": "placeholder",
    "pgpass": "refuse",
    "netrc": "refuse",
    "mycnf": "refuse",
}
PLACEHOLDER = {
    **DEFAULT,
    "xml": "placeholder",
    "properties": "placeholder",
    "yaml": "placeholder",
    "env": "placeholder",
}


def _scan(rel: str, styles: dict[str, str] = DEFAULT) -> FileScan:
    path = Path("/srv/configs") / rel
    fmt = detect_format(path)
    assert fmt is not None
    return scan_bytes(path, CORPUS[rel], fmt, styles[fmt], "legacy/<file>/<resource>", "${<env>}")


def test_corpus_has_at_least_25_config_files() -> None:
    assert len([r for r in CORPUS if detect_format(Path(r))]) >= 25


@pytest.mark.parametrize("rel", sorted(r for r in CORPUS if detect_format(Path(r))))
def test_findings_errors_and_compliant_files(rel: str) -> None:
    scan = _scan(rel)
    moved = {m.entry.key for g in scan.groups for m in g.moves}
    assert moved == MOVED.get(rel, set())
    assert bool(scan.error) == (rel in ERRORS), scan.error
    if rel in COMPLIANT:
        assert not scan.findings and scan.rewritten is None


def _allowed_lines(scan: FileScan, text: str) -> set[int]:
    """0-based original lines a rewrite may touch: those of moved entries (XML: their elements)
    and, in the spring-import style, an existing ``spring.config.import`` that gets the secret."""
    module = FORMATS[scan.format]
    entries = module.parse(text)
    groups = {m.entry.group for g in scan.groups for m in g.moves}
    keys = {m.entry.key for g in scan.groups for m in g.moves}
    if scan.style == "spring-import":
        keys.add("spring.config.import")
    lines: set[int] = set()
    if scan.format == "yaml" and scan.style == "spring-import":
        # The key line of a mapping whose entries all moved ("app:") goes with them.
        parents = {part for k in keys for part in k.split(".")[:-1]}
        for number, line in enumerate(text.splitlines()):
            if line.strip().endswith(":") and line.strip()[:-1] in parents:
                lines.add(number)
    for e in entries:
        if e.key in keys or (scan.format == "xml" and e.group in groups):
            spans = [e.value_span] + ([e.entry_span] if e.entry_span else [])
            for start, end in spans:
                first = text.count("\n", 0, start)
                last = text.count("\n", 0, max(start, end - 1))
                lines.update(range(first, last + 1))
    return lines


@pytest.mark.parametrize("styles", [DEFAULT, PLACEHOLDER], ids=["default", "placeholder"])
@pytest.mark.parametrize("rel", sorted(MOVED))
def test_rewrite_keeps_every_other_line_and_leaves_no_credential(
    rel: str, styles: dict[str, str]
) -> None:
    scan = _scan(rel, styles)
    if scan.error:
        pytest.skip(f"not rewritable in this style: {scan.error}")
    assert scan.rewritten is not None
    before = decode(CORPUS[rel], declared_xml=scan.format == "xml")
    after = decode(scan.rewritten, declared_xml=scan.format == "xml")
    assert after.encoding == before.encoding
    old_lines = before.text.splitlines(keepends=True)
    new_lines = after.text.splitlines(keepends=True)
    allowed = _allowed_lines(scan, before.text)
    matcher = difflib.SequenceMatcher(a=old_lines, b=new_lines, autojunk=False)
    for tag, i1, i2, _, _ in matcher.get_opcodes():
        if tag != "equal":
            assert set(range(i1, i2)) <= allowed, (tag, old_lines[i1:i2])
    # The moved values are gone; the file still parses; its line ending style is kept.
    for group in scan.groups:
        for move in group.moves:
            assert move.entry.value not in after.text
    FORMATS[scan.format].parse(after.text)
    if "\r\n" in before.text:
        assert after.text.count("\n") == after.text.count("\r\n")
    # Restoring the backup is the original, byte for byte (the backup is the original).
    assert CORPUS[rel] == bytes(scan.original)


def test_tomcat_jdbc_wrapper_rewrite_is_exact() -> None:
    scan = _scan("tomcat/conf/context.xml")
    assert scan.rewritten is not None
    old = CORPUS["tomcat/conf/context.xml"].decode().splitlines()
    new = scan.rewritten.decode().splitlines()
    assert old[:4] == new[:4] and old[5:] == new[5:]
    assert new[4] == (
        '    <Resource name="jdbc/legacy" auth="Container" type="javax.sql.DataSource" '
        'driverClassName="com.amazonaws.secretsmanager.sql.AWSSecretsManagerMySQLDriver" '
        'url="jdbc-secretsmanager:mysql://legacy-mysql.c9akciq32.us-east-1.rds.amazonaws.com'
        ':3306/app" username="legacy/context.xml/jdbc-legacy" maxTotal="50" maxIdle="10" '
        'maxWaitMillis="10000"/>'
    )
    group = scan.groups[0]
    assert group.shape == "rds" and set(group.payload) == {
        "engine",
        "host",
        "port",
        "dbname",
        "username",
        "password",
    }


def test_tomcat_entities_url_credentials_and_comments() -> None:
    text = CORPUS["tomcat/conf/Catalina/localhost/shop.xml"].decode()
    entries = {e.key: e for e in tomcat.parse(text)}
    assert entries["Resource[jdbc/entity]@password"].value == XML_ENTITY_PW
    scan = _scan("tomcat/conf/Catalina/localhost/shop.xml")
    groups = {g.resource: g for g in scan.groups}
    assert groups["jdbc-entity"].payload["password"] == XML_ENTITY_PW
    inurl = groups["jdbc-inurl"].payload
    assert inurl["username"] == "svc" and inurl["engine"] == "mysql"
    assert groups["api.token"].shape == "flat"
    assert scan.rewritten is not None
    out = scan.rewritten.decode()
    assert "jdbc-secretsmanager:postgresql://" in out and "ssl=true&amp;sslmode=require" in out
    assert "jdbc-secretsmanager:mysql://legacy-mysql" in out and "svc:" not in out
    assert '<Environment name="api.token" value="${API_TOKEN}" type=' in out
    assert 'password="${JDBC_ORDERS_PASSWORD}"' not in out  # wrapped, not placeholder
    # The commented-out old resource is reported, not moved (and not touched).
    assert any("comment" in n.reason for n in scan.near_misses)
    assert "OldPass-1999" in out
    assert any(n.reason == "already a reference" for n in scan.near_misses)


def test_latin1_xml_keeps_its_encoding_and_bytes() -> None:
    scan = _scan("tomcat/conf/latin1-context.xml")
    assert scan.encoding == "iso-8859-1"
    assert scan.groups[0].payload["password"] == LATIN1_PW
    assert scan.rewritten is not None
    assert "Base de donn\u00e9es".encode("iso-8859-1") in scan.rewritten
    assert LATIN1_PW.encode("iso-8859-1") not in scan.rewritten


def test_properties_escapes_unicode_and_continuations() -> None:
    text = decode(CORPUS["app/escapes.properties"]).text
    entries = {e.key: e for e in properties.parse(text)}
    assert entries["mail.smtp.password"].value == PROPS_ESCAPED_PW
    assert entries["cache.token"].value == PROPS_CONT_PW
    assert entries["greeting"].value == "Hello\tWorld"
    assert entries["path.with space"].value == "C:\\tmp"
    assert "db.password" not in entries  # a comment line
    scan = _scan("app/escapes.properties", PLACEHOLDER)
    assert scan.rewritten is not None
    out = scan.rewritten.decode("iso-8859-1")
    assert "mail.smtp.password : ${MAIL_SMTP_PASSWORD}\n" in out
    assert "cache.token = ${CACHE_TOKEN}\ntrailing" not in out  # the continuation is consumed
    assert "cache.token = ${CACHE_TOKEN}\npath.with\\ space" in out


def test_properties_spring_import_replaces_the_first_line_and_removes_the_rest() -> None:
    scan = _scan("app/application.properties")
    assert scan.rewritten is not None
    out = scan.rewritten.decode()
    assert (
        "db.username=app\n# db.password, aws.secretKey: moved to AWS Secrets Manager by migrate\n"
        "spring.config.import=aws-secretsmanager:legacy/application.properties/aws;"
        "legacy/application.properties/db\ndb.pool.size=20\n"
    ) in out
    assert "aws.accessKey=AKIAIOSFODNN7SANDBOX" in out  # near-miss, kept
    payloads = {g.name: g.payload for g in scan.groups}
    assert payloads["legacy/application.properties/db"] == {"db.password": "Tomcat-Legacy-2019!"}


def test_bom_and_crlf_are_kept() -> None:
    bom = _scan("app/bom.properties")
    assert bom.rewritten is not None and bom.rewritten.startswith(b"\xef\xbb\xbf")
    crlf = _scan("app/crlf.properties")
    assert crlf.rewritten is not None
    assert crlf.rewritten == (
        b"server.port=9090\r\n# comment\r\n# db.password: moved to AWS Secrets Manager by "
        b"migrate\r\nspring.config.import=aws-secretsmanager:legacy/crlf.properties/db\r\n"
        b"db.user=crlf\r\n"
    )


def test_env_quotes_export_multiline_and_remove_style() -> None:
    text = CORPUS["worker/.env.production"].decode()
    entries = {e.key: e for e in envfile.parse(text)}
    assert entries["QUOTED_SECRET"].value == "quoted value # not a comment"
    assert entries["SINGLE_TOKEN"].value == "single$quoted\\n"
    assert entries["SESSION_SECRET"].value == "export-me-Secret1"
    assert entries["TLS_KEY"].value.startswith("-----BEGIN RSA PRIVATE KEY-----\n")
    scan = _scan("worker/.env.production")
    assert scan.rewritten is not None
    out = scan.rewritten.decode()
    assert out.startswith("# worker\n# SESSION_SECRET, QUOTED_SECRET, SINGLE_TOKEN, TLS_KEY: moved")
    assert "EMPTY_PASSWORD=\n" in out and "WORKERS=4\n" in out and "BEGIN RSA" not in out
    placeholder = _scan("worker/.env.production", PLACEHOLDER)
    assert placeholder.rewritten is not None
    assert "SINGLE_TOKEN='${SINGLE_TOKEN}'  # literal\n" in placeholder.rewritten.decode()


def test_yaml_anchor_keeps_alias_working_in_placeholder_style() -> None:
    scan = _scan("app/anchors.yml", PLACEHOLDER)
    assert scan.error is None and scan.rewritten is not None
    out = scan.rewritten.decode()
    assert "password: &pw ${DEFAULTS_PASSWORD}\n" in out
    import yaml

    doc = yaml.safe_load(out)
    assert doc["prod"]["replica-password"] == "${DEFAULTS_PASSWORD}"
    assert doc["prod"]["password"] == "${DEFAULTS_PASSWORD}"  # through the merge key
    assert YAML_ANCHOR_PW not in out
    # spring-import cannot remove an anchored value: reported, file untouched.
    assert "anchor" in (_scan("app/anchors.yml").error or "") or "alias" in (
        _scan("app/anchors.yml").error or ""
    )


def test_yaml_spring_import_and_quoted_crlf() -> None:
    scan = _scan("app/application.yml")
    assert scan.rewritten is not None
    out = scan.rewritten.decode()
    assert out.startswith(
        "# Spring Boot settings for the reporting service\n# spring.datasource.password: moved"
    )
    assert (
        'spring.config.import: "aws-secretsmanager:legacy/application.yml/spring-datasource"' in out
    )
    assert "    username: reports\n    driver-class-name" in out
    quoted = _scan("app/quoted.yaml", PLACEHOLDER)
    assert quoted.rewritten is not None
    assert b'  password: "${REDIS_PASSWORD}"   # keep this comment\r\n' in quoted.rewritten


def test_json_and_ini_placeholders() -> None:
    scan = _scan("web/config.json")
    assert scan.rewritten is not None
    doc = json.loads(scan.rewritten)
    assert doc["database"]["password"] == "${DATABASE_PASSWORD}"
    assert doc["services"][0]["apiKey"] == "${SERVICES_0_APIKEY}"
    assert doc["database"]["user"] == "web"
    ini = _scan("etc/app.ini")
    assert ini.rewritten is not None
    out = ini.rewritten.decode()
    assert "password = ${DATABASE_PASSWORD}\n" in out
    assert "secret: ${CACHE_SECRET}\nttl = 60\n" in out


def test_parse_errors_name_the_line_never_the_value() -> None:
    for rel in ERRORS:
        error = _scan(rel).error or ""
        assert error
        assert not any(v in error for v in SECRET_VALUES)
        assert "not-moved" not in error


def test_scan_reports_values_only_as_keyed_fingerprints(tmp_path: Path) -> None:
    fp = Fingerprinter.for_state_dir(tmp_path)
    assert stat.S_IMODE((tmp_path / "config-secrets.key").stat().st_mode) == 0o600
    facts = json.dumps([_scan(rel).facts(fp) for rel in sorted(CORPUS) if detect_format(Path(rel))])
    for value in SECRET_VALUES:
        assert value not in facts and json.dumps(value)[1:-1] not in facts
        # Not a plain hash either: a short password's sha256 would be brute-forced.
        assert hashlib.sha256(value.encode()).hexdigest()[:16] not in facts
    other = Fingerprinter.for_state_dir(tmp_path / "other")
    assert fp.value("x") != other.value("x")
    assert Fingerprinter.for_state_dir(tmp_path).value("x") == fp.value("x")
    assert "key hidden" in repr(fp)
    entry = tomcat.parse(CORPUS["tomcat/conf/context.xml"].decode())[6]
    assert "Tomcat-Legacy" not in repr(entry)


def test_atomic_write_keeps_mode_and_leaves_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "app.properties"
    target.write_bytes(b"a=1\n")
    target.chmod(0o640)
    atomic_write(target, b"a=2\n")
    assert target.read_bytes() == b"a=2\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    assert [p.name for p in tmp_path.iterdir()] == ["app.properties"]


def test_unreadable_file_is_reported(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        target = tmp_path / "secret.properties"
        target.write_bytes(b"db.password=unreadable-1\n")
        target.chmod(0)
        scan = scan_file(target, DEFAULT, "<resource>", "${<env>}", 10**6)
        assert scan.error and "permission denied" in scan.error
        return
    # As root every file is readable: scan as an unprivileged user in a forked child.
    base = Path(tempfile.mkdtemp(prefix="migrate-perm-"))
    try:
        base.chmod(0o755)
        target = base / "secret.properties"
        target.write_bytes(b"db.password=unreadable-1\n")
        target.chmod(0o600)
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:  # child: drop to nobody, scan, report, exit without pytest's cleanup
            try:
                os.close(read_end)
                os.setgid(65534)
                os.setuid(65534)
                error = scan_file(target, DEFAULT, "<resource>", "x", 10**6).error or ""
                os.write(write_end, error.encode())
            finally:
                os._exit(0)
        os.close(write_end)
        with os.fdopen(read_end, "rb") as pipe:
            error = pipe.read().decode()
        os.waitpid(pid, 0)
        assert "permission denied" in error
    finally:
        for p in base.iterdir():
            p.unlink()
        base.rmdir()


def test_jsonfile_and_yaml_spans_point_at_the_raw_tokens() -> None:
    text = '{"a": {"password": "x\\"y"}, "list": ["p"]}'
    entry = next(e for e in jsonfile.parse(text) if e.key == "a.password")
    assert text[entry.value_span[0] : entry.value_span[1]] == '"x\\"y"' and entry.value == 'x"y'
    ytext = "a:\n  token: !!str &t 'it''s'\n"
    yentry = next(e for e in yamlfile.parse(ytext) if e.key == "a.token")
    assert ytext[yentry.value_span[0] : yentry.value_span[1]] == "'it''s'"
