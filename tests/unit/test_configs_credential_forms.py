"""Credential forms found since issue 16: Oracle thin URLs, Spring XML beans and
``<util:properties>``, Hibernate cfg, pool ``connectionProperties``, WildFly datasources,
``.pgpass`` and ``.netrc`` (found, never rewritten)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from migrate.configs import detect_format
from migrate.configs.classify import parse_db_url, strip_url_credentials
from migrate.configs.scan import FileScan, credential_values, scan_bytes
from tests.unit.configs_corpus import (
    CORPUS,
    HIBERNATE_PW,
    MYCNF_PW,
    MYCNF_QUOTED_PW,
    NETRC_PW,
    ORACLE_HOST,
    ORACLE_PW,
    PGPASS_PW,
    POOL_PW,
    PROFILE_DEV_PW,
    PROFILE_PROD_PW,
    REFUSED,
    SPRING_BEAN_PW,
    UTF8_PROPS_PW,
    UTIL_PROPS_PW,
    WILDFLY_PW,
    YAML_DEV_PW,
    YAML_PROD_PW,
)
from tests.unit.test_configs_formats import DEFAULT


def _scan(rel: str) -> FileScan:
    path = Path("/srv/configs") / rel
    fmt = detect_format(path)
    assert fmt is not None
    return scan_bytes(path, CORPUS[rel], fmt, DEFAULT[fmt], "legacy/<path>/<resource>", "${<env>}")


def _payloads(scan: FileScan) -> dict[str, dict[str, object]]:
    return {g.name: json.loads(g.secret_string()) for g in scan.groups}


def test_oracle_thin_url_credentials_move_and_leave_no_password() -> None:
    scan = _scan("tomcat/conf/Catalina/localhost/ora.xml")
    assert scan.error is None and scan.rewritten is not None
    text = scan.rewritten.decode()
    assert ORACLE_PW not in text and "scott" not in text
    assert f'url="jdbc-secretsmanager:oracle:thin:@//{ORACLE_HOST}:1521/LEGACY"' in text
    assert "AWSSecretsManagerOracleDriver" in text
    assert _payloads(scan) == {
        "legacy/ora.xml/jdbc-ora": {
            "engine": "oracle",
            "host": ORACLE_HOST,
            "port": 1521,
            "dbname": "LEGACY",
            "username": "scott",
            "password": ORACLE_PW,
        }
    }


@pytest.mark.parametrize(
    "url",
    [
        f"jdbc:oracle:thin:scott/{ORACLE_PW}@{ORACLE_HOST}:1521:ORCL",
        f"jdbc:oracle:thin:scott/{ORACLE_PW}@//{ORACLE_HOST}:1521/svc",
        f'jdbc:oracle:thin:scott/"{ORACLE_PW}"@//{ORACLE_HOST}:1521/svc',
        f"jdbc:postgresql://{ORACLE_HOST}:5432/app?user=scott&password={ORACLE_PW}&ssl=true",
        f"jdbc:mysql://scott:{ORACLE_PW}@{ORACLE_HOST}:3306/app",
        f"jdbc:sqlserver://{ORACLE_HOST}:1433;databaseName=app;user=scott;password={ORACLE_PW}",
    ],
)
def test_every_jdbc_url_credential_form_is_found_split_and_stripped(url: str) -> None:
    parsed = parse_db_url(url)
    assert parsed is not None
    assert (parsed.host, parsed.username, parsed.password) == (ORACLE_HOST, "scott", ORACLE_PW)
    # Verify compares these: a rewrite that kept the password inside the URL is caught.
    assert ORACLE_PW in credential_values(url)
    stripped = strip_url_credentials(url)
    assert ORACLE_PW not in stripped and "scott" not in stripped and ORACLE_HOST in stripped


def test_spring_beans_and_util_properties_become_placeholders_per_bean() -> None:
    scan = _scan("spring/applicationContext.xml")
    assert scan.error is None and scan.rewritten is not None
    text = scan.rewritten.decode()
    assert SPRING_BEAN_PW not in text and UTIL_PROPS_PW not in text
    assert '<property name="password" value="${DATASOURCE_PASSWORD}"/>' in text
    assert '<prop key="db.password">${DBPROPS_DB_PASSWORD}</prop>' in text
    assert _payloads(scan) == {
        "legacy/applicationContext.xml/dataSource": {"password": SPRING_BEAN_PW},
        "legacy/applicationContext.xml/dbProps": {"db.password": UTIL_PROPS_PW},
    }


def test_hibernate_cfg_and_wildfly_datasource_passwords() -> None:
    hib = _scan("hibernate/hibernate.cfg.xml")
    assert hib.rewritten is not None and HIBERNATE_PW not in hib.rewritten.decode()
    assert list(_payloads(hib).values()) == [{"hibernate.connection.password": HIBERNATE_PW}]
    wildfly = _scan("wildfly/standalone.xml")
    assert wildfly.rewritten is not None and WILDFLY_PW not in wildfly.rewritten.decode()


def test_pool_connection_properties_feed_the_rds_secret_and_keep_other_properties() -> None:
    scan = _scan("tomcat/conf/Catalina/localhost/pool.xml")
    assert scan.rewritten is not None
    text = scan.rewritten.decode()
    assert POOL_PW not in text and 'connectionProperties="ssl=true"' in text
    (payload,) = _payloads(scan).values()
    assert payload["username"] == "pool" and payload["password"] == POOL_PW


@pytest.mark.parametrize("rel", sorted(REFUSED))
def test_files_read_literally_are_found_and_their_rewrite_refused(rel: str) -> None:
    scan = _scan(rel)
    assert {f.entry.key for f in scan.findings} == REFUSED[rel]  # so the file is not compliant
    assert {f.entry.value for f in scan.findings} & {PGPASS_PW, NETRC_PW, MYCNF_PW, MYCNF_QUOTED_PW}
    assert scan.error and "literally" in scan.error and scan.rewritten is None
    assert PGPASS_PW not in scan.error and NETRC_PW not in scan.error


def test_mysql_option_file_quotes_are_stripped_as_mysql_does() -> None:
    scan = _scan("etc/mysql/conf.d/backup.cnf")
    (finding,) = scan.findings
    assert finding.entry.value == MYCNF_QUOTED_PW  # not '"My Quoted#Pass"'
    assert scan.error and "literally" in scan.error  # MySQL expands no ${NAME}


def test_a_custom_tomcat_factory_is_named_for_review_and_nothing_is_stored() -> None:
    scan = _scan("tomcat/conf/Catalina/localhost/enc.xml")
    assert scan.error and "com.acme.EncryptedDataSourceFactory" in scan.error
    assert "Resource[jdbc/enc]" in scan.error and "kV9x1wq0" not in scan.error
    assert scan.groups == [] and scan.rewritten is None and scan.findings  # not compliant


def test_properties_values_are_what_java_reads_iso_8859_1_unless_told_utf_8() -> None:
    path = Path("/srv/configs/app/utf8.properties")
    data = CORPUS["app/utf8.properties"]
    as_java = scan_bytes(path, data, "properties", "placeholder", "<resource>", "${<env>}")
    # java.util.Properties.load(InputStream) and Spring Boot read ISO-8859-1: "Ã©", not "é".
    assert as_java.findings[0].entry.value == UTF8_PROPS_PW.encode().decode("iso-8859-1")
    assert as_java.rewritten == data.replace(
        UTF8_PROPS_PW.encode(), b"${DB_PASSWORD}"
    )  # byte-exact elsewhere
    as_utf8 = scan_bytes(
        path,
        data,
        "properties",
        "placeholder",
        "<resource>",
        "${<env>}",
        properties_encoding="utf-8",
    )
    assert as_utf8.findings[0].entry.value == UTF8_PROPS_PW


def test_a_credential_left_in_a_comment_makes_the_file_not_compliant() -> None:
    scan = _scan("tomcat/conf/Catalina/localhost/old.xml")
    assert not scan.findings and scan.rewritten is None  # nothing is moved...
    assert [n.plaintext for n in scan.near_misses] == [True]  # ...but it is listed
    assert not scan.compliant
    assert _scan("app/references.properties").compliant  # references only: compliant


def test_properties_profile_documents_get_their_own_secret_and_import() -> None:
    scan = _scan("app/profiles.properties")
    assert scan.error is None and scan.rewritten is not None
    assert _payloads(scan) == {
        "legacy/profiles.properties/db": {"db.password": PROFILE_DEV_PW},
        "legacy/profiles.properties/db-prod": {"db.password": PROFILE_PROD_PW},
    }
    first, second = scan.rewritten.decode().split("#---\n")
    # Each document imports its own secret: the prod profile no longer gets the dev password
    # (nor the dev profile the prod one, as when the last value won).
    assert "spring.config.import=aws-secretsmanager:legacy/profiles.properties/db\n" in first
    assert "db-prod" not in first
    assert "spring.config.import=aws-secretsmanager:legacy/profiles.properties/db-prod\n" in second
    assert second.startswith("spring.config.activate.on-profile=prod\n")
    assert PROFILE_DEV_PW not in scan.rewritten.decode()
    assert PROFILE_PROD_PW not in scan.rewritten.decode()


def test_profile_documents_get_their_own_placeholder_variable() -> None:
    path = Path("/srv/configs/app/profiles.properties")
    scan = scan_bytes(
        path,
        CORPUS["app/profiles.properties"],
        "properties",
        "placeholder",
        "l/<resource>",
        "${<env>}",
    )
    assert scan.error is None and scan.rewritten is not None
    first, second = scan.rewritten.decode().split("#---\n")
    assert "db.password=${DB_PASSWORD}\n" in first
    assert "db.password=${DB_PASSWORD_PROD}\n" in second


def test_an_existing_import_is_extended_in_the_document_that_holds_the_credential() -> None:
    scan = _scan("app/multidoc.properties")
    assert scan.error is None and scan.rewritten is not None
    first, second = scan.rewritten.decode().split("#---\n")
    assert first.startswith(
        "spring.config.import=optional:file:./base.properties,"
        "aws-secretsmanager:legacy/multidoc.properties/db\n"
    )
    assert "import" not in second


def test_yaml_documents_get_their_own_secret_and_valid_environment_names() -> None:
    path = Path("/srv/configs/app/profiles.yml")
    scan = scan_bytes(
        path, CORPUS["app/profiles.yml"], "yaml", "placeholder", "legacy/<resource>", "${<env>}"
    )
    assert scan.error is None and scan.rewritten is not None
    assert _payloads(scan) == {
        "legacy/app": {"app.password": YAML_DEV_PW},
        "legacy/app-prod": {"app.password": YAML_PROD_PW},
    }
    # Valid environment names (never 1_APP_PASSWORD), one per document: a single
    # APP_PASSWORD in the environment would give every profile the same password.
    text = scan.rewritten.decode()
    assert text.count("password: ${APP_PASSWORD}\n") == 1
    assert text.count("password: ${APP_PASSWORD_PROD}\n") == 1


def test_yaml_documents_each_import_their_own_secret() -> None:
    """spring-import in a multi-document application.yml: Spring Boot reads each document on
    its own, so each imports its own secret in itself; the prod profile never gets the dev
    password (nor an import it would not see), and a mapping left empty goes with its key."""
    scan = _scan("app/profiles.yml")
    assert scan.error is None and scan.rewritten is not None
    text = scan.rewritten.decode()
    first, second = (yaml.safe_load(d) for d in text.split("---\n"))
    assert first == {"spring.config.import": "aws-secretsmanager:legacy/profiles.yml/app"}
    assert second == {
        "spring.config.import": "aws-secretsmanager:legacy/profiles.yml/app-prod",
        "spring": {"config": {"activate": {"on-profile": "prod"}}},
    }
    assert YAML_DEV_PW not in text and YAML_PROD_PW not in text


def test_a_yaml_document_extends_its_own_import_and_keeps_what_is_not_moved() -> None:
    text = (
        "spring:\n  application:\n    name: shop\n"
        "---\n# prod\nspring:\n  config:\n    activate:\n      on-profile: prod\n"
        "    import: optional:file:./extra.yml\n"
        "  datasource:\n    username: app\n    password: Pr0d-Datasource-9\n"
        "cache:\n  redis:\n    password: Pr0d-Redis-9\n"
        "defaults: &defaults\n  timeout: 5\n"
        "mail:\n  <<: *defaults\n  password: Pr0d-Mail-9\n"
    )
    path = Path("/srv/configs/app/application.yml")
    scan = scan_bytes(path, text.encode(), "yaml", "spring-import", "legacy/<resource>", "")
    assert scan.error is None and scan.rewritten is not None
    out = scan.rewritten.decode()
    first, second = out.split("---\n")
    assert first == "spring:\n  application:\n    name: shop\n"  # nothing moved: untouched
    loaded = yaml.safe_load(second)
    assert loaded["spring"]["config"]["import"] == (
        "optional:file:./extra.yml,aws-secretsmanager:legacy/cache-redis-prod;"
        "legacy/mail-prod;legacy/spring-datasource-prod"
    )
    assert loaded["spring"]["datasource"] == {"username": "app"}
    assert "cache" not in loaded  # cache.redis held only the password: both keys went
    assert loaded["mail"] == {"timeout": 5}  # the merge keeps "mail" (it is not empty)
    assert "Pr0d" not in out


def test_yaml_typed_scalar_the_app_reads_differently_is_refused() -> None:
    for style in ("spring-import", "placeholder"):
        path = Path("/srv/configs/app/typed.yml")
        scan = scan_bytes(path, CORPUS["app/typed.yml"], "yaml", style, "<resource>", "${<env>}")
        # Spring would see 83, the file shows 0123: storing either would be a guess.
        assert scan.error and "cache.password" in scan.error and "YAML 1.1" in scan.error
        assert scan.rewritten is None and scan.groups == []
    ok = scan_bytes(path, b"queue:\n  password: 424242\n", "yaml", "placeholder", "r", "${<env>}")
    assert ok.error is None and ok.findings[0].entry.value == "424242"


def test_a_yaml_mapping_that_would_be_left_empty_with_an_anchor_is_refused() -> None:
    # "app: &base" names the mapping for aliases elsewhere: removing the key line could break
    # them, keeping it leaves an empty value; the file is reported, not guessed at.
    text = b"app: &base\n  password: An4chored-Pw\nname: shop\n"
    path = Path("/srv/configs/app/application.yml")
    scan = scan_bytes(path, text, "yaml", "spring-import", "legacy/<resource>", "")
    assert scan.error and "would leave app empty" in scan.error and scan.rewritten is None
    placeholder = scan_bytes(path, text, "yaml", "placeholder", "legacy/<resource>", "${<env>}")
    assert placeholder.error is None and placeholder.rewritten is not None
    assert b"password: ${APP_PASSWORD}" in placeholder.rewritten


def test_a_list_form_import_is_a_reference_secrets_check_resolves() -> None:
    """spring.config.import as a YAML list (what extending an existing list writes) names its
    secrets as a scalar does: secrets check must not pass a file it could not read."""
    from migrate.configs.references import references

    text = (
        b"spring:\n  config:\n    import:\n      - optional:file:./x.yml\n"
        b'      - "aws-secretsmanager:legacy/app;legacy/cache"\n'
    )
    refs = references(Path("/srv/app/application.yml"), text)
    assert [(r.target, r.kind) for r in refs] == [
        ("legacy/app", "secret"),
        ("legacy/cache", "secret"),
    ]


def test_yaml_spring_import_refuses_a_path_written_nested_and_dotted() -> None:
    """spring: datasource: and a spring.datasource: key are one path to Spring: removing the
    emptied mapping by path could delete the other one (losing spring.datasource.url)."""
    text = (
        b"spring:\n  datasource:\n    password: Nested-Dotted-9\n"
        b"spring.datasource:\n  url: jdbc:mysql://db:3306/app\n"
    )
    path = Path("/srv/configs/app/application.yml")
    scan = scan_bytes(path, text, "yaml", "spring-import", "legacy/<resource>", "")
    assert scan.error and "written twice" in scan.error and scan.rewritten is None


def test_yaml_spring_import_refuses_legacy_profile_processing() -> None:
    """A document with spring.profiles runs on Boot < 2.4 or legacy processing, which ignores
    spring.config.import: the moved password would never be loaded."""
    text = b"app:\n  password: Legacy-Dev-9\n---\nspring:\n  profiles: prod\napp:\n  password: Legacy-Prod-9\n"
    path = Path("/srv/configs/app/application.yml")
    scan = scan_bytes(path, text, "yaml", "spring-import", "legacy/<resource>", "")
    assert scan.error and "legacy profile processing" in scan.error and scan.rewritten is None
    placeholder = scan_bytes(path, text, "yaml", "placeholder", "legacy/<resource>", "${<env>}")
    assert placeholder.error is None and placeholder.rewritten is not None
