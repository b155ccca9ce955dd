"""migrate secrets check's classpath half: what a rewritten file makes its application load.

The jars are built here with zipfile, holding the class entries (empty) and resources the real
artifacts carry: aws-secretsmanager-jdbc 2.0.2 and its caching library, the SDK v2 client and
HTTP client, Jackson, Connector/J, Spring Cloud AWS 3's spring.factories.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

from migrate.configs import classpath as jvm

MYSQL_WRAPPER = "com.amazonaws.secretsmanager.sql.AWSSecretsManagerMySQLDriver"
RESOLVER_V3 = (
    "io.awspring.cloud.autoconfigure.config.secretsmanager.SecretsManagerConfigDataLocationResolver"
)


def _entries(classes: list[str], files: dict[str, str] | None = None) -> dict[str, bytes]:
    out = {c.replace(".", "/") + ".class": b"\xca\xfe\xba\xbe" for c in classes}
    out.update({name: text.encode() for name, text in (files or {}).items()})
    return out


def _zip_bytes(entries: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return buf.getvalue()


def _jar(path: Path, classes: list[str], files: dict[str, str] | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(_zip_bytes(_entries(classes, files)))
    return path


def _pom(artifact: str, version: str) -> dict[str, str]:
    return {
        f"META-INF/maven/com.amazonaws.secretsmanager/{artifact}/pom.properties": (
            f"artifactId={artifact}\nversion={version}\n"
        )
    }


def _tomcat_lib(lib: Path, *, wrapper: bool = True, http: bool = True, driver: bool = True) -> None:
    if wrapper:
        _jar(
            lib / "aws-secretsmanager-jdbc-2.0.2.jar",
            [MYSQL_WRAPPER],
            _pom("aws-secretsmanager-jdbc", "2.0.2"),
        )
    _jar(
        lib / "aws-secretsmanager-caching-java-2.0.0.jar",
        [jvm.SECRET_CACHE],
        _pom("aws-secretsmanager-caching-java", "2.0.0"),
    )
    _jar(lib / "secretsmanager-2.20.93.jar", [jvm.SDK_V2_CLIENT])
    if http:
        _jar(lib / "apache-client-2.20.93.jar", [jvm.SDK_V2_HTTP[0]])
    _jar(lib / "jackson-databind-2.15.2.jar", [jvm.JACKSON])
    if driver:
        _jar(lib / "mysql-connector-j-8.0.33.jar", ["com.mysql.cj.jdbc.Driver"])
    _jar(lib / "catalina.jar", ["org.apache.catalina.startup.Bootstrap"])


def _context(base: Path) -> Path:
    conf = base / "conf" / "Catalina" / "localhost"
    conf.mkdir(parents=True)
    path = conf / "app.xml"
    path.write_text("<Context/>\n")
    return path


def test_a_complete_tomcat_lib_passes_and_names_what_it_found(tmp_path: Path) -> None:
    config = _context(tmp_path / "tomcat")
    _tomcat_lib(tmp_path / "tomcat" / "lib")
    entries = jvm.tomcat_classpath(config, environ={})
    assert entries == [tmp_path / "tomcat" / "lib"]
    verdict = jvm.check_wrapper(jvm.read_classpath(entries), MYSQL_WRAPPER, {})
    assert verdict.problems == ()
    assert "aws-secretsmanager-jdbc 2.0.2" in verdict.found
    assert "real driver com.mysql.cj.jdbc.Driver" in verdict.found


def test_each_missing_piece_is_named_with_its_artifact(tmp_path: Path) -> None:
    lib = tmp_path / "lib"
    _tomcat_lib(lib, wrapper=False, http=False, driver=False)
    verdict = jvm.check_wrapper(jvm.read_classpath([lib]), MYSQL_WRAPPER, {})
    text = " | ".join(verdict.problems)
    assert "aws-secretsmanager-jdbc" in text  # the wrapper itself
    assert "apache-client" in text  # the SDK v2 cannot build a client without an HTTP client
    assert "com.mysql.cj.jdbc.Driver or com.mysql.jdbc.Driver" in text  # the real driver
    assert len(verdict.problems) == 3


def test_the_real_driver_named_to_the_wrapper_must_be_there(tmp_path: Path) -> None:
    """setenv.sh names the legacy Connector/J 5 class, but only Connector/J 8 is in lib: the
    wrapper would fail on its first connection. secretsmanager.properties on the classpath wins
    over the system property, as in the wrapper's Config."""
    base = tmp_path / "tomcat"
    config = _context(base)
    _tomcat_lib(base / "lib")
    (base / "bin").mkdir()
    (base / "bin" / "setenv.sh").write_text(
        'CATALINA_OPTS="$CATALINA_OPTS -Ddrivers.mysql.realDriverClass=com.mysql.jdbc.Driver"\n'
    )
    props = jvm.system_properties(config, environ={})
    assert props == {"drivers.mysql.realDriverClass": "com.mysql.jdbc.Driver"}
    cp = jvm.read_classpath(jvm.tomcat_classpath(config, environ={}))
    (problem,) = jvm.check_wrapper(cp, MYSQL_WRAPPER, props).problems
    assert "com.mysql.jdbc.Driver" in problem and "-Ddrivers.mysql.realDriverClass" in problem
    (base / "lib" / "secretsmanager.properties").write_text(
        "drivers.mysql.realDriverClass = com.mysql.cj.jdbc.Driver\n"
    )
    cp = jvm.read_classpath(jvm.tomcat_classpath(config, environ={}))
    assert jvm.check_wrapper(cp, MYSQL_WRAPPER, props).problems == ()


def test_a_spring_boot_jar_is_read_with_the_jars_inside_it(tmp_path: Path) -> None:
    factories = {
        "META-INF/spring.factories": (
            "org.springframework.boot.context.config.ConfigDataLocationResolver=\\\n"
            f"  {RESOLVER_V3}\n"
        )
    }
    nested = {
        "BOOT-INF/lib/spring-cloud-aws-autoconfigure-3.1.1.jar": _zip_bytes(
            _entries([RESOLVER_V3], factories)
        ),
        "BOOT-INF/lib/spring-cloud-aws-secrets-manager-3.1.1.jar": _zip_bytes(
            _entries([jvm.SPRING_SECRETS_MODULE[0]])
        ),
        "BOOT-INF/lib/secretsmanager-2.25.0.jar": _zip_bytes(_entries([jvm.SDK_V2_CLIENT])),
        "BOOT-INF/lib/url-connection-client-2.25.0.jar": _zip_bytes(_entries([jvm.SDK_V2_HTTP[1]])),
        "BOOT-INF/classes/com/acme/App.class": b"\xca\xfe",
    }
    app = tmp_path / "shop.jar"
    app.write_bytes(_zip_bytes(nested))
    verdict = jvm.check_spring(jvm.read_classpath([app]))
    assert verdict.problems == ()
    assert verdict.found[0] == "SecretsManagerConfigDataLocationResolver"
    # Another Spring Cloud AWS starter (S3) brings the resolver, not the Secrets Manager
    # module: the import would fail at start-up.
    without = {k: v for k, v in nested.items() if "secrets-manager" not in k}
    app.write_bytes(_zip_bytes(without))
    (problem,) = jvm.check_spring(jvm.read_classpath([app])).problems
    assert "spring-cloud-aws-secrets-manager" in problem
    # The same application built without the starter: Spring Boot would not start.
    del nested["BOOT-INF/lib/spring-cloud-aws-autoconfigure-3.1.1.jar"]
    app.write_bytes(_zip_bytes(nested))
    (problem,) = jvm.check_spring(jvm.read_classpath([app])).problems
    assert "spring-cloud-aws-starter-secrets-manager" in problem


def test_a_webapp_context_xml_reads_its_web_inf_lib_and_the_tomcat_lib(tmp_path: Path) -> None:
    webapp = tmp_path / "tomcat" / "webapps" / "shop"
    (webapp / "META-INF").mkdir(parents=True)
    config = webapp / "META-INF" / "context.xml"
    config.write_text("<Context/>\n")
    (webapp / "WEB-INF" / "lib").mkdir(parents=True)
    (tmp_path / "tomcat" / "lib").mkdir()
    assert jvm.tomcat_classpath(config, environ={}) == [
        webapp / "WEB-INF" / "lib",
        tmp_path / "tomcat" / "lib",
    ]


def test_a_file_that_is_not_a_jar_is_reported_not_fatal(tmp_path: Path) -> None:
    lib = tmp_path / "lib"
    _tomcat_lib(lib)
    (lib / "truncated.jar").write_bytes(b"PK\x03\x04 not really")
    cp = jvm.read_classpath([lib])
    assert cp.unreadable == [str(lib / "truncated.jar")]
    assert jvm.check_wrapper(cp, MYSQL_WRAPPER, {}).problems == ()


def test_the_wrapper_in_tomcat_lib_cannot_see_a_driver_in_web_inf_lib(tmp_path: Path) -> None:
    """Tomcat's common loader (lib/) is the webapp loader's parent, never the reverse: the
    wrapper in lib/ with Connector/J only in WEB-INF/lib fails on its first connection. And
    the webapp's own WEB-INF/classes/secretsmanager.properties is the one read first."""
    base = tmp_path / "tomcat"
    webapp = base / "webapps" / "shop"
    (webapp / "META-INF").mkdir(parents=True)
    config = webapp / "META-INF" / "context.xml"
    config.write_text("<Context/>\n")
    _tomcat_lib(base / "lib", driver=False)
    _jar(webapp / "WEB-INF" / "lib" / "mysql-connector-j-8.0.33.jar", ["com.mysql.cj.jdbc.Driver"])
    webapp_dirs, common_dirs = jvm.tomcat_loaders(config, environ={})
    everything = jvm.read_classpath(webapp_dirs + common_dirs)
    common = jvm.read_classpath(common_dirs)
    (problem,) = jvm.check_wrapper(everything, MYSQL_WRAPPER, {}, common).problems
    assert "com.mysql.cj.jdbc.Driver" in problem and "cannot see" in problem
    # Merged into one set, as before, the check would have passed.
    assert jvm.check_wrapper(everything, MYSQL_WRAPPER, {}).problems == ()
    (webapp / "WEB-INF" / "classes").mkdir()
    (webapp / "WEB-INF" / "classes" / "secretsmanager.properties").write_text(
        "drivers.mysql.realDriverClass=org.mariadb.jdbc.Driver\n"
    )
    (base / "lib" / "secretsmanager.properties").write_text(
        "drivers.mysql.realDriverClass=com.mysql.cj.jdbc.Driver\n"
    )
    everything = jvm.read_classpath(webapp_dirs + common_dirs)
    (problem,) = jvm.check_wrapper(everything, MYSQL_WRAPPER, {}).problems
    assert "org.mariadb.jdbc.Driver" in problem and "WEB-INF/classes" in problem
