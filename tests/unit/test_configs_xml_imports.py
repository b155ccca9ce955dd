"""XML element text and tomcat-users.xml; merging into an existing ``spring.config.import``."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from migrate.configs import detect_format, tomcat
from migrate.configs.scan import FileScan, scan_bytes
from tests.unit.configs_corpus import (
    CORPUS,
    IMPORT_LIST_PW,
    IMPORT_SCALAR_PW,
    MAVEN_CDATA_PW,
    MAVEN_PW,
    PROXY_PW,
    REDIS_PW,
    TOMCAT_ADMIN_PW,
    TOMCAT_DEPLOY_PW,
)

DEFAULT = {
    "xml": "jdbc-wrapper",
    "properties": "spring-import",
    "yaml": "spring-import",
    "env": "remove",
    "json": "placeholder",
    "ini": "placeholder",
}


def _scan(
    rel: str, data: bytes | None = None, style: str | None = None, placeholder: str = "${<env>}"
) -> FileScan:
    path = Path("/srv/configs") / rel
    fmt = detect_format(path)
    assert fmt is not None
    return scan_bytes(
        path,
        CORPUS[rel] if data is None else data,
        fmt,
        style or DEFAULT[fmt],
        "legacy/<file>/<resource>",
        placeholder,
    )


# -- XML: tomcat-users.xml and element text -------------------------------------------------------


def test_tomcat_users_passwords_become_placeholders_and_nothing_else_changes() -> None:
    scan = _scan("tomcat/conf/tomcat-users.xml")
    assert scan.error is None and scan.rewritten is not None
    payloads = {g.name: g.payload for g in scan.groups}
    assert payloads == {
        "legacy/tomcat-users.xml/admin": {"password": TOMCAT_ADMIN_PW},
        "legacy/tomcat-users.xml/deployer": {"password": TOMCAT_DEPLOY_PW},
    }
    expected = (
        CORPUS["tomcat/conf/tomcat-users.xml"]
        .replace(f'password="{TOMCAT_ADMIN_PW}"'.encode(), b'password="${ADMIN_PASSWORD}"')
        .replace(b"password='Deploy&amp;Pass-8'", b"password='${DEPLOYER_PASSWORD}'")
    )
    assert scan.rewritten == expected
    # The commented-out example users: the real-looking one is reported, the placeholder is not.
    misses = [(n.line, n.reason) for n in scan.near_misses]
    assert misses == [(8, "inside an XML comment: delete it by hand")]


def test_maven_settings_element_text_is_rewritten_in_place_with_env_placeholders() -> None:
    original = CORPUS["maven/settings.xml"]
    scan = _scan("maven/settings.xml")
    assert scan.error is None and scan.rewritten is not None
    payloads = {g.name: g.payload for g in scan.groups}
    assert payloads == {
        "legacy/settings.xml/nexus-releases": {"password": MAVEN_PW},
        "legacy/settings.xml/nexus-snapshots": {"password": MAVEN_CDATA_PW},
        "legacy/settings.xml/corp": {"password": PROXY_PW},
    }
    expected = (
        original.replace(
            b"<password>Nexus-R3lease&amp;Pass</password>",
            b"<password>${env.NEXUS_RELEASES_PASSWORD}</password>",
        )
        .replace(f"<![CDATA[{MAVEN_CDATA_PW}]]>".encode(), b"${env.NEXUS_SNAPSHOTS_PASSWORD}")
        .replace(
            f"<password>{PROXY_PW}</password>".encode(),
            b"<password>${env.CORP_PASSWORD}</password>",
        )
    )
    assert scan.rewritten == expected  # CRLF, indentation, comments: all kept
    assert scan.rewritten.count(b"\r\n") == original.count(b"\r\n")
    misses = {n.key: n.reason for n in scan.near_misses}
    assert misses == {
        "server[docker-hub]/password": "already a reference",
        "<!-- comment -->/password": "inside an XML comment: delete it by hand",
    }


def test_an_explicit_placeholder_is_used_in_maven_settings_too() -> None:
    scan = _scan("maven/settings.xml", placeholder="${<secret>}")
    assert scan.rewritten is not None
    assert b"<password>${legacy/settings.xml/corp}</password>" in scan.rewritten


def test_element_text_entries_keyed_under_their_parent() -> None:
    text = (
        "<config>\n"
        '  <db name="main"><user>app</user><password> a&lt;b&#33; </password></db>\n'
        "  <api><token><![CDATA[t<k&n]]></token></api>\n"
        "  <secret>root-level-ish</secret>\n"
        "</config>\n"
    )
    entries = {e.key: e for e in tomcat.parse(text)}
    pw = entries["db[main]/password"]
    assert pw.value == "a<b!" and text[pw.value_span[0] : pw.value_span[1]] == "a&lt;b&#33;"
    assert entries["api[1]/token"].value == "t<k&n"
    assert entries["config[1]/secret"].value == "root-level-ish"
    scan = _scan("x/app.xml", text.encode())
    assert scan.rewritten is not None
    out = scan.rewritten.decode()
    assert "<password> ${MAIN_PASSWORD} </password>" in out  # blanks around the text kept
    assert "<token>${API_1_TOKEN}</token>" in out and "<user>app</user>" in out


def test_element_text_with_a_comment_inside_is_reported_not_moved() -> None:
    text = "<config>\n  <password>abc<!-- old: xyz -->def</password>\n</config>\n"
    scan = _scan("x/odd.xml", text.encode())
    assert scan.findings == [] and scan.rewritten is None
    assert [n.reason for n in scan.near_misses] == [
        "the element text holds a comment or processing instruction: edit it by hand"
    ]


def test_a_resource_with_child_elements_is_not_wrapped() -> None:
    text = (
        '<Context>\n  <Resource name="jdbc/x" url="jdbc:mysql://db:3306/x" username="u">'
        "<password>Child-Pass-1</password></Resource>\n</Context>\n"
    )
    scan = _scan("x/context.xml", text.encode())
    assert scan.rewritten is not None
    assert [g.shape for g in scan.groups] == ["flat"]
    assert b"<password>${JDBC_X_PASSWORD}</password>" in scan.rewritten
    assert b'url="jdbc:mysql://db:3306/x"' in scan.rewritten


# -- spring.config.import merging -----------------------------------------------------------------


def test_properties_import_is_extended_not_refused() -> None:
    scan = _scan("app/imports.properties")
    assert scan.error is None and scan.rewritten is not None
    assert scan.rewritten == (
        b"spring.config.import=optional:file:./extra.properties,"
        b"aws-secretsmanager:legacy/imports.properties/redis\n"
        b"# redis.password: moved to AWS Secrets Manager by migrate (spring.config.import)\n"
    )
    assert REDIS_PW.encode() not in scan.rewritten


def test_properties_import_merge_keeps_trailing_blanks_and_takes_the_last_key() -> None:
    data = (
        b"spring.config.import=ignored:by-java\n"
        b"db.password=Merge-Pass-1\n"
        b"spring.config.import = optional:file:x  \n"
        b"z=1"
    )
    scan = _scan("app/merge.properties", data)
    assert scan.rewritten == (
        b"spring.config.import=ignored:by-java\n"
        b"# db.password: moved to AWS Secrets Manager by migrate (spring.config.import)\n"
        b"spring.config.import = optional:file:x,aws-secretsmanager:legacy/merge.properties/db  \n"
        b"z=1"
    )


def test_properties_multi_document_file_also_takes_placeholders() -> None:
    # The spring-import style per document: tests/unit/test_configs_credential_forms.py.
    placeholder = _scan("app/multidoc.properties", style="placeholder")
    assert placeholder.error is None and placeholder.rewritten is not None


def test_yaml_import_list_gets_one_more_item() -> None:
    original = CORPUS["app/imports-list.yml"].decode()
    scan = _scan("app/imports-list.yml")
    assert scan.error is None and scan.rewritten is not None
    out = scan.rewritten.decode()
    secret = "legacy/imports-list.yml/spring-datasource"
    assert out == (
        "# Ledger service\n"
        "# spring.datasource.password: moved to AWS Secrets Manager by migrate "
        "(spring.config.import)\n"
        + original.split("\n", 1)[1]
        .replace(
            "      - optional:configtree:/run/secrets/\n",
            f'      - optional:configtree:/run/secrets/\n      - "aws-secretsmanager:{secret}"\n',
        )
        .replace(f"    password: {IMPORT_LIST_PW}\n", "")
    )
    doc = yaml.safe_load(out)
    assert doc["spring"]["config"]["import"] == [
        "optional:file:./shared.yml",
        "optional:configtree:/run/secrets/",
        f"aws-secretsmanager:{secret}",
    ]
    assert "password" not in doc["spring"]["datasource"]


def test_yaml_import_scalar_gets_the_secret_appended() -> None:
    scan = _scan("app/imports-scalar.yaml")
    assert scan.error is None and scan.rewritten is not None
    out = scan.rewritten.decode()
    assert out == (
        "# mail.password: moved to AWS Secrets Manager by migrate (spring.config.import)\n"
        'spring.config.import: "optional:file:./local.yaml,'
        'aws-secretsmanager:legacy/imports-scalar.yaml/mail"\n'
        "mail:\n  host: smtp.internal\n  port: 587\n"
    )
    assert IMPORT_SCALAR_PW not in out


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ("  config: {import: [a, 'b']}\n", ["a", "b", "aws-secretsmanager:legacy/f.yml/spring-ds"]),
        ("  config:\n    import: []\n", ["aws-secretsmanager:legacy/f.yml/spring-ds"]),
        ("  config:\n    import:\n", "aws-secretsmanager:legacy/f.yml/spring-ds"),
        (
            "  config:\n    import: 'optional:configserver:'\n",
            "optional:configserver:,aws-secretsmanager:legacy/f.yml/spring-ds",
        ),
        (
            "  config:\n    import:\n    - a   # indentless list\n",
            ["a", "aws-secretsmanager:legacy/f.yml/spring-ds"],
        ),
    ],
)
def test_yaml_import_forms(config: str, expected: object) -> None:
    data = f"spring:\n{config}  ds:\n    url: x\n    password: Form-Pass-1\n".encode()
    scan = _scan("app/f.yml", data)
    assert scan.error is None and scan.rewritten is not None
    doc = yaml.safe_load(scan.rewritten)
    assert doc["spring"]["config"]["import"] == expected
    assert doc["spring"]["ds"] == {"url": "x"}


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (
            "spring.config.import: a\nspring:\n  config:\n    import: b\n  ds:\n    url: x\n"
            "    password: Twice-Pass-1\n",
            "set more than once",
        ),
        (
            "imp: &i optional:file:x\nspring:\n  config:\n    import: *i\n  ds:\n    url: x\n"
            "    password: Alias-Pass-1\n",
            "alias",
        ),
        (
            "spring:\n  config:\n    import:\n      - |\n        a\n  ds:\n    url: x\n"
            "    password: Block-Pass-1\n",
            "not a one-line",
        ),
    ],
)
def test_yaml_import_merge_refusals_leave_the_file_untouched(data: str, why: str) -> None:
    scan = _scan("app/r.yml", data.encode())
    assert scan.error is not None and why in scan.error
    assert "placeholder" in scan.error and scan.rewritten is None
    assert not any(pw in scan.error for pw in ("Twice-Pass-1", "Alias-Pass-1", "Block-Pass-1"))


def test_unlabelled_elements_get_names_that_do_not_start_with_a_digit() -> None:
    scan = _scan("jobs/notifier.xml")
    assert [g.name for g in scan.groups] == ["legacy/notifier.xml/smtp-1"]
    assert scan.rewritten is not None
    assert b'password="${SMTP_1_PASSWORD}"' in scan.rewritten
