"""What a rewritten config file needs on its application's classpath, checked offline.

A Tomcat ``<Resource>`` switched to the Secrets Manager JDBC wrapper, or a Spring Boot file that
imports ``aws-secretsmanager:``, only works if the application can load the classes that read the
secret. Nothing fails until the application restarts, so ``migrate secrets check`` looks first:
it reads the jars (and the jars inside a Spring Boot jar or a WAR) on the application's classpath
and says which class is missing, from which artifact.

What the JDBC wrapper needs (aws-secretsmanager-jdbc 2.x, read from its source): its driver class
for the engine; ``SecretCache`` (aws-secretsmanager-caching-java); the AWS SDK's Secrets Manager
client (SDK v2 with caching 2.x, v1 with caching 1.x) and, for SDK v2, an HTTP client
implementation (Apache, URLConnection or CRT), without which the SDK cannot build a client; Jackson
(the wrapper parses the secret's JSON); and the real driver it hands the connection to:
``drivers.<engine>.realDriverClass`` from ``secretsmanager.properties`` on the classpath (which
wins), else from a ``-D`` system property, else the wrapper's default for the engine.

What ``spring.config.import=aws-secretsmanager:`` needs: Spring Cloud AWS's config data resolver,
registered in a ``META-INF/spring.factories`` (that is how Spring Boot finds it), and the SDK
client its version uses (v2 for Spring Cloud AWS 3, v1 for 2.x).
"""

from __future__ import annotations

import io
import os
import re
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from migrate.configs.classify import WRAPPER_DRIVERS
from migrate.configs.tomcat import WRAPPER_SUBPREFIX

WRAPPER_ARTIFACT = "aws-secretsmanager-jdbc"
CACHING_ARTIFACT = "aws-secretsmanager-caching-java"
CONFIG_FILE = "secretsmanager.properties"
FACTORIES = "META-INF/spring.factories"
RESOLVER_KEY = "org.springframework.boot.context.config.ConfigDataLocationResolver"

# The wrapper's default real drivers per engine, in the order it tries them (the MySQL wrapper
# takes Connector/J 8's class when it is there); its property sub-prefixes are tomcat's.
_DEFAULT_DRIVERS = {
    "mysql": ("com.mysql.cj.jdbc.Driver", "com.mysql.jdbc.Driver"),
    "mariadb": ("org.mariadb.jdbc.Driver",),
    "postgres": ("org.postgresql.Driver",),
    "oracle": ("oracle.jdbc.OracleDriver",),
    "sqlserver": ("com.microsoft.sqlserver.jdbc.SQLServerDriver",),
    "db2": ("com.ibm.db2.jcc.DB2Driver",),
    "redshift": ("com.amazon.redshift.Driver",),
}
_ENGINE_OF_WRAPPER = {cls: engine for engine, cls in WRAPPER_DRIVERS.items()}

SECRET_CACHE = "com.amazonaws.secretsmanager.caching.SecretCache"
SDK_V2_CLIENT = "software.amazon.awssdk.services.secretsmanager.SecretsManagerClient"
SDK_V1_CLIENT = "com.amazonaws.services.secretsmanager.AWSSecretsManager"
SDK_V2_HTTP = (
    "software.amazon.awssdk.http.apache.ApacheHttpClient",
    "software.amazon.awssdk.http.urlconnection.UrlConnectionHttpClient",
    "software.amazon.awssdk.http.crt.AwsCrtHttpClient",
)
JACKSON = "com.fasterxml.jackson.databind.ObjectMapper"
# What the SDK v1 client itself runs on: its core and Apache HttpClient 4.
SDK_V1_CORE = "com.amazonaws.AmazonWebServiceClient"
SDK_V1_HTTP = "org.apache.http.client.HttpClient"
# Spring Cloud AWS's Secrets Manager module (3.x, then 2.x): the resolver in the autoconfigure
# jar (which every Spring Cloud AWS starter brings) cannot load secrets without it.
SPRING_SECRETS_MODULE = (
    "io.awspring.cloud.secretsmanager.SecretsManagerPropertySource",
    "io.awspring.cloud.secretsmanager.AwsSecretsManagerPropertySource",
)
_NESTED_LIBS = ("BOOT-INF/lib/", "WEB-INF/lib/")
_RESOURCE_ROOTS = ("", "BOOT-INF/classes/", "WEB-INF/classes/")
_POM = re.compile(r"^META-INF/maven/[^/]+/([^/]+)/pom\.properties$")
_SYSPROP = re.compile(r"""-D([A-Za-z0-9_.\-]+)=("[^"]*"|'[^']*'|[^\s"']+)""")


def _class_entry(name: str) -> str:
    return name.replace(".", "/") + ".class"


@dataclass
class Classpath:
    """The classes, the few resources that matter, and the artifact versions found."""

    searched: list[str] = field(default_factory=list)
    classes: set[str] = field(default_factory=set)
    # Resource name -> (where, text) in classpath order: the first one is what the app loads.
    resources: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    unreadable: list[str] = field(default_factory=list)

    def has(self, class_name: str) -> bool:
        return _class_entry(class_name) in self.classes

    def first(self, *class_names: str) -> str | None:
        return next((c for c in class_names if self.has(c)), None)


def _add_zip(cp: Classpath, archive: zipfile.ZipFile, where: str, nested: bool) -> None:
    for info in archive.infolist():
        name = info.filename
        if name.endswith(".class"):
            for root in _RESOURCE_ROOTS[1:]:
                if name.startswith(root):
                    name = name[len(root) :]
                    break
            cp.classes.add(name)
            continue
        if not nested and name.startswith(_NESTED_LIBS) and name.endswith(".jar"):
            try:
                with archive.open(info) as raw:
                    inner = zipfile.ZipFile(io.BytesIO(raw.read()))
                with inner:
                    _add_zip(cp, inner, f"{where}!/{name}", nested=True)
            except (zipfile.BadZipFile, OSError):
                cp.unreadable.append(f"{where}!/{name}")
            continue
        pom = _POM.match(name)
        if pom:
            text = archive.read(info).decode("iso-8859-1")
            version = re.search(r"^version=(.+)$", text, re.M)
            if version:
                cp.versions.setdefault(pom.group(1), version.group(1).strip())
            continue
        for root in _RESOURCE_ROOTS:
            if name in (root + CONFIG_FILE, root + FACTORIES):
                text = archive.read(info).decode("iso-8859-1")
                cp.resources.setdefault(name[len(root) :], []).append((f"{where}!/{name}", text))


def _add_file(cp: Classpath, path: Path) -> None:
    try:
        with zipfile.ZipFile(path) as archive:
            _add_zip(cp, archive, str(path), nested=False)
    except (zipfile.BadZipFile, OSError):
        cp.unreadable.append(str(path))


def _add_dir(cp: Classpath, path: Path) -> None:
    if path.name == "lib" and path.parent.name == "WEB-INF":
        # A webapp's own classes come before its jars (Tomcat's webapp loader).
        resource = path.parent / "classes" / CONFIG_FILE
        if resource.is_file():
            text = resource.read_bytes().decode("iso-8859-1")
            cp.resources.setdefault(CONFIG_FILE, []).append((str(resource), text))
    for root in _RESOURCE_ROOTS:
        resource = path / root / CONFIG_FILE
        if resource.is_file():
            text = resource.read_bytes().decode("iso-8859-1")
            cp.resources.setdefault(CONFIG_FILE, []).append((str(resource), text))
    for sub in ("", "WEB-INF/lib", "BOOT-INF/lib"):
        folder = path / sub if sub else path
        if folder.is_dir():
            for jar in sorted(folder.glob("*.jar")):
                _add_file(cp, jar)


def read_classpath(entries: Iterable[Path]) -> Classpath:
    """Read ``entries`` (lib directories, jars, Spring Boot jars, WARs, exploded webapps)."""
    cp = Classpath()
    for entry in entries:
        cp.searched.append(str(entry))
        if entry.is_dir():
            _add_dir(cp, entry)
        elif entry.is_file():
            _add_file(cp, entry)
    return cp


def tomcat_loaders(
    config: Path, environ: Mapping[str, str] | None = None
) -> tuple[list[Path], list[Path]]:
    """``(webapp, common)``: the directories of the two Tomcat class loaders a config file's
    resources see. Common: the ``<base>/lib`` of the ``conf`` directory the file is in (and
    ``$CATALINA_HOME/lib``); webapp: ``WEB-INF/lib`` for a webapp's ``META-INF/context.xml``.
    The webapp loader sees the common one, never the reverse."""
    env = os.environ if environ is None else environ
    webapp: list[Path] = []
    common: list[Path] = []
    for parent in config.parents:
        if parent.name == "conf":
            common.append(parent.parent / "lib")
            break
        if parent.name == "META-INF":
            webapp.append(parent.parent / "WEB-INF" / "lib")
            if parent.parent.parent.name == "webapps":
                common.append(parent.parent.parent.parent / "lib")
            break
    home = env.get("CATALINA_HOME")
    if (webapp or common) and home:
        common.append(Path(home) / "lib")
    return (
        [p for p in webapp if p.is_dir()],
        list(dict.fromkeys(p for p in common if p.is_dir())),
    )


def tomcat_classpath(config: Path, environ: Mapping[str, str] | None = None) -> list[Path]:
    """Every directory of :func:`tomcat_loaders`, webapp first."""
    webapp, common = tomcat_loaders(config, environ)
    return webapp + common


def spring_classpath(config: Path) -> list[Path]:
    """A config file inside an exploded webapp or Spring Boot jar: its ``lib`` beside it."""
    for parent in config.parents:
        if parent.name == "classes" and parent.parent.name in ("WEB-INF", "BOOT-INF"):
            lib = parent.parent / "lib"
            return [lib] if lib.is_dir() else []
    return []


def system_properties(config: Path, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """``-Dname=value`` settings the JVM gets: Tomcat's ``bin/setenv.sh`` (beside ``conf``),
    and ``CATALINA_OPTS`` / ``JAVA_OPTS`` of this environment."""
    env = os.environ if environ is None else environ
    texts: list[str] = []
    for parent in config.parents:
        if parent.name == "conf":
            for name in ("setenv.sh", "setenv.bat"):
                script = parent.parent / "bin" / name
                if script.is_file():
                    texts.append(script.read_text(errors="replace"))
            break
    texts += [env.get("CATALINA_OPTS", ""), env.get("JAVA_OPTS", "")]
    found: dict[str, str] = {}
    for text in texts:
        for match in _SYSPROP.finditer(text):
            found[match.group(1)] = match.group(2).strip("\"'")
    return found


def _property(text: str, key: str) -> str | None:
    """``key``'s value in a ``.properties`` text (the last one, as java.util.Properties)."""
    value = None
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith(("#", "!")):
            continue
        match = re.match(rf"{re.escape(key)}\s*[=:\s]\s*(.*)$", stripped)
        if match:
            value = match.group(1).strip()
    return value


@dataclass(frozen=True)
class Verdict:
    """Whether an application can load what its rewritten file needs."""

    needs: str
    problems: tuple[str, ...]
    found: tuple[str, ...]


def _sdk_problems(cp: Classpath, major: str | None, what: str) -> tuple[list[str], list[str]]:
    problems: list[str] = []
    found: list[str] = []
    client = SDK_V1_CLIENT if major == "1" else SDK_V2_CLIENT
    if major is None and cp.has(SDK_V1_CLIENT) and not cp.has(SDK_V2_CLIENT):
        client = SDK_V1_CLIENT
    if not cp.has(client):
        sdk = (
            "com.amazonaws:aws-java-sdk-secretsmanager"
            if client == SDK_V1_CLIENT
            else ("software.amazon.awssdk:secretsmanager")
        )
        problems.append(f"no {client} ({sdk}), which {what} calls Secrets Manager with")
    elif client == SDK_V2_CLIENT:
        http = cp.first(*SDK_V2_HTTP)
        if http is None:
            problems.append(
                "no HTTP client for the AWS SDK v2 (software.amazon.awssdk:apache-client or "
                "url-connection-client): the SDK cannot build its Secrets Manager client"
            )
        else:
            found.append(f"SDK v2 with {http.rsplit('.', 1)[-1]}")
    else:
        if not cp.has(SDK_V1_CORE):
            problems.append(f"no {SDK_V1_CORE} (com.amazonaws:aws-java-sdk-core)")
        if not cp.has(SDK_V1_HTTP):
            problems.append(
                f"no {SDK_V1_HTTP} (org.apache.httpcomponents:httpclient), which the AWS SDK v1 "
                "sends its requests with"
            )
        if not problems:
            found.append("SDK v1")
    return problems, found


def check_wrapper(
    cp: Classpath,
    wrapper_class: str,
    sysprops: Mapping[str, str],
    common: Classpath | None = None,
) -> Verdict:
    """What the JDBC wrapper driver ``wrapper_class`` needs, looked up in ``cp``.

    ``common`` is the part of ``cp`` a parent class loader reads (Tomcat's ``lib``): a wrapper
    found there loads its dependencies there too, so a jar only in ``WEB-INF/lib`` does not
    count for it."""
    if common is None or not common.has(wrapper_class):
        return _check_wrapper(cp, cp, wrapper_class, sysprops)
    verdict = _check_wrapper(common, cp, wrapper_class, sysprops)
    # What the whole classpath has but the wrapper's loader does not: a jar in WEB-INF/lib.
    everywhere = set(_check_wrapper(cp, cp, wrapper_class, sysprops).problems)
    problems = tuple(
        p
        if p in everywhere
        else p + " (a jar in WEB-INF/lib has it, but the wrapper in lib/ cannot see that loader: "
        "put it beside the wrapper)"
        for p in verdict.problems
    )
    return Verdict(verdict.needs, problems, verdict.found)


def _check_wrapper(
    cp: Classpath, resources: Classpath, wrapper_class: str, sysprops: Mapping[str, str]
) -> Verdict:
    engine = _ENGINE_OF_WRAPPER.get(wrapper_class)
    needs = f"the JDBC wrapper ({wrapper_class.rsplit('.', 1)[-1]})"
    problems: list[str] = []
    found: list[str] = []
    if engine is None:
        return Verdict(needs, (f"{wrapper_class} is not a driver of {WRAPPER_ARTIFACT}",), ())
    if cp.has(wrapper_class):
        found.append(f"{WRAPPER_ARTIFACT} {cp.versions.get(WRAPPER_ARTIFACT, '')}".strip())
    else:
        problems.append(
            f"no jar has {wrapper_class} (com.amazonaws.secretsmanager:{WRAPPER_ARTIFACT})"
        )
    caching = cp.versions.get(CACHING_ARTIFACT)
    if not cp.has(SECRET_CACHE):
        problems.append(
            f"no {SECRET_CACHE} (com.amazonaws.secretsmanager:{CACHING_ARTIFACT}, which the "
            "wrapper reads secrets through)"
        )
    sdk_problems, sdk_found = _sdk_problems(
        cp, caching.split(".")[0] if caching else None, "the wrapper"
    )
    problems += sdk_problems
    found += sdk_found
    if not cp.has(JACKSON):
        problems.append(
            f"no {JACKSON} (com.fasterxml.jackson.core:jackson-databind), which the "
            "wrapper parses the secret with"
        )
    key = f"drivers.{WRAPPER_SUBPREFIX[engine]}.realDriverClass"
    configured = None
    source = ""
    for where, text in resources.resources.get(CONFIG_FILE, [])[:1]:
        configured = _property(text, key)
        source = where
    if configured is None and key in sysprops:
        configured, source = sysprops[key], f"-D{key}"
    if configured:
        if cp.has(configured):
            found.append(f"real driver {configured}")
        else:
            problems.append(
                f"the real driver {configured} ({key} in {source}) is in no jar: put its jar "
                "beside the wrapper's"
            )
    else:
        real = cp.first(*_DEFAULT_DRIVERS[engine])
        if real is None:
            problems.append(
                f"no {engine} driver ({' or '.join(_DEFAULT_DRIVERS[engine])}), which the "
                f"wrapper loads by default: put the driver's jar beside the wrapper's, or name "
                f"another with {key}"
            )
        else:
            found.append(f"real driver {real}")
    return Verdict(needs, tuple(problems), tuple(found))


def _resolvers(cp: Classpath) -> list[str]:
    """Spring Cloud AWS Secrets Manager resolvers registered in a spring.factories."""
    out: list[str] = []
    for _, text in cp.resources.get(FACTORIES, []):
        joined = re.sub(r"\\\r?\n\s*", "", text)
        for line in joined.splitlines():
            name, _, value = line.partition("=")
            if name.strip() != RESOLVER_KEY:
                continue
            for cls in value.split(","):
                cls = cls.strip()
                if cls.startswith("io.awspring.cloud.") and "SecretsManager" in cls:
                    out.append(cls)
    return out


def check_spring(cp: Classpath) -> Verdict:
    """What ``spring.config.import=aws-secretsmanager:`` needs, looked up in ``cp``."""
    needs = "spring.config.import (Spring Cloud AWS Secrets Manager)"
    resolvers = [r for r in _resolvers(cp) if cp.has(r)]
    if not resolvers:
        return Verdict(
            needs,
            (
                "no Spring Cloud AWS Secrets Manager resolver registered (io.awspring.cloud:"
                "spring-cloud-aws-starter-secrets-manager): Spring Boot would stop at start-up "
                "with 'No ConfigDataLocationResolver found' for aws-secretsmanager:",
            ),
            (),
        )
    resolver = resolvers[0]
    # Spring Cloud AWS 3 (io.awspring.cloud.autoconfigure.config...) is on the SDK v2.
    major = "2" if ".autoconfigure.config." in resolver else "1"
    problems, found = _sdk_problems(cp, major, "Spring Cloud AWS")
    if cp.first(*SPRING_SECRETS_MODULE) is None:
        problems.insert(
            0,
            "no Spring Cloud AWS Secrets Manager module (io.awspring.cloud:"
            "spring-cloud-aws-secrets-manager, which spring-cloud-aws-starter-secrets-manager "
            "brings): the resolver another starter brought cannot load the secret",
        )
    return Verdict(needs, tuple(problems), (resolver.rsplit(".", 1)[-1], *found))
