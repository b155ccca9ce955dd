"""What is a credential: key names, value shapes, references and placeholders, JDBC URLs.

Key names are normalised (lower case, separators dropped) and matched against credential words;
values are matched against shapes that are secrets whatever their key is called: detect-secrets'
regex plugins first (:mod:`migrate.configs.detectors`: GitHub/GitLab/Slack/Stripe/npm/PyPI/...
tokens, JWTs, private keys, ``scheme://user:password@host``), then our own shapes for what it
misses (encrypted PKCS#8 keys, JDBC ``?password=`` and ``;password=`` parameters, passwords with
``!$&;=`` in a URL, Google API keys) and, without detect-secrets, a few token prefixes. A value that is already a reference (``${VAR}``,
``{{resolve:secretsmanager:...}}``, ``ENC(...)``) or a placeholder is never moved: it is reported
as a near-miss so the operator can check it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qsl, unquote, urlsplit

from migrate.configs import detectors

SECRET_WORDS = (
    "password",
    "passwd",
    "passphrase",
    "pwd",
    "secret",
    "token",
    "apikey",
    "credential",
    "privatekey",
    "authkey",
    "signingkey",
    "masterkey",
    "encryptionkey",
)
# A credential word at the end of the name, optionally followed by what holds it
# (``secretKey``, ``secretAccessKey``, ``tokenValue``); ``tokenizer`` is not a credential.
_SECRET_NAME = re.compile(
    "(?:" + "|".join(SECRET_WORDS) + r")s?(?:key|accesskey|value|string|base64)?$"
)
# Names that contain a credential word but hold something else (a file, a URL, a setting).
NOT_SECRET_SUFFIXES = (
    "file",
    "path",
    "dir",
    "url",
    "uri",
    "endpoint",
    "enabled",
    "enable",
    "length",
    "ttl",
    "timeout",
    "expiry",
    "expiration",
    "expires",
    "policy",
    "pattern",
    "regex",
    "header",
    "type",
    "name",
    "names",
    "encoder",
    "prefix",
    "format",
    "validity",
    "location",
    "class",
    "classname",
    "mode",
    "strategy",
    "provider",
    "id",
    "arn",
    "ref",
    "required",
)
USERNAME_NAMES = {"username", "user", "userid", "login", "dbuser", "uid", "user_name"}
URL_WORDS = ("url", "uri", "dsn", "connectionstring", "jdbc")

_REFERENCE = re.compile(
    r"""^\s*(?:
        \$\{[^}]*\}            # ${VAR} ${VAR:default} (Spring, Tomcat, shell)
      | \$[A-Za-z_][A-Za-z0-9_]*$   # $VAR
      | \#\{[^}]*\}            # #{spEL}
      | \{\{.*\}\}             # {{resolve:secretsmanager:...}}, templates
      | ENC\(.*\)              # jasypt-encrypted
      | %\([^)]*\)s            # python %(name)s
      | vault:.*               # vault references
      | (?:arn:aws[\w-]*:(?:secretsmanager|ssm):).*
      | aws-secretsmanager:.* | aws-parameterstore:.* | sm://.* | ssm://.*
    )\s*$""",
    re.X | re.S,
)
_PLACEHOLDER = re.compile(
    r"""^\s*(?:
        <[^<>]*>                # <password>
      | x{3,} | X{3,} | \*{3,} | \.{3,} | -+ | _+ | \?+
      | changeme | change[_-]me | replace[_-]?me | todo | tbd | fixme | dummy | example
      | your[_ -].* | none | null | nil | undefined | secret | password | pass | redacted
    )\s*$""",
    re.X | re.I,
)
_PRIVATE_KEY = re.compile(r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----")
_URL_CREDS = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:(?:[A-Za-z0-9+.-]+:)?//[^/@\s:]*:([^@\s]+)@")
_QUERY_PASSWORD = re.compile(r"(?:[?&;](?:password|pwd)=)([^&;]+)", re.I)
# Oracle's own URL form: jdbc:oracle:thin:scott/tiger@host:1521:sid (or @//host/service, @tns).
_ORACLE_CREDS = re.compile(
    r'^(jdbc:oracle:(?:thin|oci8?|kprb):)([^/@:\s"]+)/("[^"]*"|[^@\s]+)@', re.I
)
# A pool's driver properties (DBCP/Tomcat JDBC ``connectionProperties="user=a;password=b"``).
_PROPS_PASSWORD = re.compile(r"(?:^|;)\s*(?:password|pwd)\s*=\s*([^;]+)", re.I)
_TOKEN_SHAPES = (
    (
        "github token",
        re.compile(r"^(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{30,}$|^github_pat_\w{30,}$"),
    ),
    ("slack token", re.compile(r"^xox[abprs]-[A-Za-z0-9-]{10,}$")),
    ("stripe key", re.compile(r"^(?:sk|rk)_live_[A-Za-z0-9]{16,}$")),
    ("gitlab token", re.compile(r"^glpat-[A-Za-z0-9_-]{20,}$")),
    ("google api key", re.compile(r"^AIza[0-9A-Za-z_-]{35}$")),
)
AWS_KEY_ID = re.compile(r"^(?:AKIA|ASIA)[A-Z0-9]{16}$")


def normalise(name: str) -> str:
    """``spring.datasource.Password`` -> ``password`` style: last segment, lower, alnum only."""
    last = re.split(r"[.\[\]/@:]", name.strip("[]"))
    segment = next((s for s in reversed(last) if s), name)
    return re.sub(r"[^a-z0-9]", "", segment.lower())


def secret_name_reason(name: str) -> str | None:
    """Why a key name marks a credential (``key name 'password'``), or None."""
    norm = normalise(name)
    # A setting *about* a credential (``password.file``) is not one, unless the name still ends
    # in a credential word (``keystore.url.password``).
    if (not norm or norm.endswith(NOT_SECRET_SUFFIXES)) and not norm.endswith(
        ("password", "passwd", "secret", "token", "pwd")
    ):
        return None
    if norm == "pass" or (norm.endswith(("pass", "pw")) and not norm.endswith("bypass")):
        return f"key name {name!r}"
    if _SECRET_NAME.search(norm):
        return f"key name {name!r}"
    return None


@dataclass(frozen=True)
class Shape:
    """What a value looks like: a secret's shape (``label``), and/or an AWS access key id."""

    label: str | None
    aws_key_id: bool


def shape_of(value: str) -> Shape:
    """The shape of ``value`` from detect-secrets' plugins and ours (see the module doc)."""
    found = detectors.shapes(value)
    aws = detectors.AWS_ACCESS_KEY in found or bool(AWS_KEY_ID.match(value.strip()))
    label = next((f"{s} (detect-secrets)" for s in found if s != detectors.AWS_ACCESS_KEY), None)
    return Shape(label or own_value_shape(value), aws)


def value_shape(value: str) -> str | None:
    """A shape that makes ``value`` a secret whatever its key is called, or None."""
    return shape_of(value).label


def own_value_shape(value: str) -> str | None:
    """Our own shapes (used for what detect-secrets does not know, or without it)."""
    if _PRIVATE_KEY.search(value):
        return "private key"
    if url_password(value) is not None:
        return "URL with a password"
    if props_password(value) is not None:
        return "driver properties with a password"
    stripped = value.strip()
    for label, pattern in _TOKEN_SHAPES:
        if pattern.match(stripped):
            return label
    return None


def props_password(value: str) -> str | None:
    """The password in ``user=a;password=b`` driver properties, or None."""
    if "=" not in value or "://" in value:
        return None
    match = _PROPS_PASSWORD.search(value)
    if match and not is_reference(match.group(1).strip()):
        return match.group(1).strip()
    return None


def props_credentials(value: str) -> dict[str, str]:
    """``user``/``password`` of ``user=a;password=b`` driver properties (keys lower-cased)."""
    out: dict[str, str] = {}
    for part in value.split(";"):
        key, sep, val = part.partition("=")
        if sep and key.strip().lower() in ("user", "username", "password", "pwd"):
            out["password" if key.strip().lower() in ("password", "pwd") else "user"] = val.strip()
    return out


def strip_props_credentials(value: str) -> str:
    """Driver properties without their ``user``/``password`` entries."""
    kept = [
        p
        for p in value.split(";")
        if p.strip()
        and p.partition("=")[0].strip().lower() not in ("user", "username", "password", "pwd")
    ]
    return ";".join(kept)


def oracle_credentials(value: str) -> tuple[str, str] | None:
    """(user, password) of an Oracle ``user/password@`` URL, or None."""
    match = _ORACLE_CREDS.match(value.strip())
    if not match:
        return None
    password = match.group(3)
    if password.startswith('"') and password.endswith('"'):
        password = password[1:-1]
    return (match.group(2), password) if not is_reference(password) else None


def url_password(value: str) -> str | None:
    """The password embedded in a URL (``scheme://user:pw@``, ``?password=``, Oracle's
    ``user/password@``), or None."""
    oracle = oracle_credentials(value)
    if oracle is not None:
        return oracle[1]
    match = _URL_CREDS.match(value.strip())
    if match and not is_reference(unquote(match.group(1))):
        return unquote(match.group(1))
    match = _QUERY_PASSWORD.search(value)
    db_url = value.strip().lower().startswith(("jdbc:", "mongodb", "postgres", "mysql"))
    if match and db_url and not is_reference(unquote(match.group(1))):
        return unquote(match.group(1))
    return None


def is_reference(value: str) -> bool:
    """Already points elsewhere (``${VAR}``, ``{{resolve:...}}``, ``ENC(...)``, an ARN...)."""
    return bool(_REFERENCE.match(value))


def near_miss_reason(value: str) -> str | None:
    """Why a credential-named value is not moved (empty, reference, placeholder), or None."""
    if value.strip() == "":
        return "empty value"
    if is_reference(value):
        return "already a reference"
    if _PLACEHOLDER.match(value):
        return "a placeholder, not a credential"
    return None


@dataclass(frozen=True)
class JdbcUrl:
    """The parts of a JDBC (or database) URL that the RDS secret shape holds."""

    engine: str
    host: str | None
    port: int | None
    dbname: str | None
    username: str | None
    password: str | None = None

    def __repr__(self) -> str:
        return f"JdbcUrl(engine={self.engine!r}, host={self.host!r}, port={self.port!r})"


ENGINES = {
    "mysql": "mysql",
    "mariadb": "mariadb",
    "postgresql": "postgres",
    "postgres": "postgres",
    "oracle": "oracle",
    "sqlserver": "sqlserver",
    "db2": "db2",
    "redshift": "redshift",
}
WRAPPER_DRIVERS = {
    "mysql": "com.amazonaws.secretsmanager.sql.AWSSecretsManagerMySQLDriver",
    "mariadb": "com.amazonaws.secretsmanager.sql.AWSSecretsManagerMariaDBDriver",
    "postgres": "com.amazonaws.secretsmanager.sql.AWSSecretsManagerPostgreSQLDriver",
    "oracle": "com.amazonaws.secretsmanager.sql.AWSSecretsManagerOracleDriver",
    "sqlserver": "com.amazonaws.secretsmanager.sql.AWSSecretsManagerMSSQLServerDriver",
    "db2": "com.amazonaws.secretsmanager.sql.AWSSecretsManagerDb2Driver",
    "redshift": "com.amazonaws.secretsmanager.sql.AWSSecretsManagerRedshiftDriver",
}


def parse_db_url(url: str) -> JdbcUrl | None:
    """Split ``jdbc:mysql://u:p@host:3306/db?x=y`` (or ``postgres://...``) into its parts."""
    raw = url.strip()
    body = raw[5:] if raw.lower().startswith("jdbc:") else raw
    scheme = body.split(":", 1)[0].lower()
    engine = ENGINES.get(scheme)
    if engine is None:
        return None
    query_creds = dict(
        (k.lower(), unquote(v))
        for k, v in parse_qsl(re.sub(r"[;&]", "&", body.split("?", 1)[1]) if "?" in body else "")
    )
    if engine == "sqlserver":
        # jdbc:sqlserver://host:1433;databaseName=db;user=u;password=p
        rest = body.split("//", 1)[1] if "//" in body else ""
        hostport, _, props = rest.partition(";")
        pairs = dict(
            (k.strip().lower(), v) for k, _, v in (p.partition("=") for p in props.split(";") if p)
        )
        host, _, port_text = hostport.partition(":")
        return JdbcUrl(
            engine,
            host or None,
            int(port_text) if port_text.isdigit() else None,
            pairs.get("databasename") or pairs.get("database"),
            pairs.get("user") or pairs.get("username"),
            pairs.get("password"),
        )
    if engine == "oracle":
        creds = oracle_credentials(raw)
        user, password = creds if creds else (None, None)
        match = re.search(r"@(?://)?([^:/@]+)(?::(\d+))?[:/]([\w.$-]+)$", body)
        if not match:
            return JdbcUrl(engine, None, None, None, user, password)
        return JdbcUrl(
            engine,
            match.group(1),
            int(match.group(2)) if match.group(2) else None,
            match.group(3),
            user,
            password,
        )
    try:
        parts = urlsplit(body)
        port = parts.port
    except ValueError:
        return JdbcUrl(engine, None, None, None, None)
    dbname = parts.path.lstrip("/") or None
    return JdbcUrl(
        engine,
        parts.hostname,
        port,
        dbname,
        unquote(parts.username) if parts.username else query_creds.get("user"),
        unquote(parts.password) if parts.password else query_creds.get("password"),
    )


def strip_url_credentials(url: str) -> str:
    """The URL without ``user:pw@`` (Oracle: ``user/pw@``) and without ``user=``/``password=``
    parameters."""
    out = _ORACLE_CREDS.sub(r"\1@", url.strip())
    out = re.sub(r"^([A-Za-z][A-Za-z0-9+.:-]*//)[^/@\s]*@", r"\1", out)
    drop = re.compile(r"^(?:user|username|password|pwd)=", re.I)
    base, sep, query = out.partition("?")
    if sep:
        kept = [p for p in query.split("&") if p and not drop.match(p)]
        out = base + ("?" + "&".join(kept) if kept else "")
    if ";" in out:  # sqlserver-style properties
        head, *props = out.split(";")
        out = ";".join([head, *[p for p in props if p and not drop.match(p)]])
    return out
