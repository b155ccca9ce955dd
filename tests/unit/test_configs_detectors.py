"""Value shapes: detect-secrets' plugins on decoded values, our own shapes where they go further."""

from __future__ import annotations

import importlib
import logging
import warnings
from pathlib import Path
from typing import Any

import pytest

from migrate.configs import detect_format, detectors
from migrate.configs.classify import shape_of, value_shape
from migrate.configs.scan import scan_bytes
from tests.unit.configs_corpus import CORPUS, GH_TOKEN, JWT_VALUE, MOVED

DEFAULT = {
    "xml": "jdbc-wrapper",
    "properties": "spring-import",
    "yaml": "spring-import",
    "env": "remove",
    "json": "placeholder",
    "ini": "placeholder",
}
# Fake values of the shapes detect-secrets knows (built here so no scanner flags this file).
DS_SAMPLES = {
    "GitHub Token": GH_TOKEN,
    "Slack Token": "xoxb-" + "123456789012-1234567890123-" + "a1b2c3d4e5f6a1b2c3d4e5f6",
    "Stripe Access Key": "sk_" + "live_" + "4eC39HqLyjWDarjtT1zdp7dc",
    "JSON Web Token": JWT_VALUE,
    "Private Key": "-----BEGIN RSA PRIVATE KEY-----\nMIIEfake\n-----END RSA PRIVATE KEY-----",
    "Basic Auth Credentials": "https://deploy:n0t-a-real-pass@repo.internal/maven",
    "GitLab Token": "glpat-" + "x" * 20,
    "NPM tokens": "//registry.npmjs.org/:_authToken=" + "npm_" + "a" * 36,
}


def _scan(rel: str) -> Any:
    path = Path("/srv/configs") / rel
    fmt = detect_format(path)
    assert fmt is not None
    return scan_bytes(path, CORPUS[rel], fmt, DEFAULT[fmt], "legacy/<file>/<resource>", "${<env>}")


def test_detect_secrets_plugins_are_in_use() -> None:
    assert detectors.available()
    version = detectors.version()
    assert version is not None and version.split(".")[0] >= "1"
    names = set(detectors.plugin_names())
    assert {
        "AWSKeyDetector",
        "PrivateKeyDetector",
        "BasicAuthDetector",
        "JwtTokenDetector",
        "SlackDetector",
        "StripeDetector",
        "GitHubTokenDetector",
    } <= names
    # Not asked: key names are ours, entropy is noise on config values, an IP is no secret.
    assert not names & {"KeywordDetector", "Base64HighEntropyString", "IPPublicDetector"}


@pytest.mark.parametrize("secret_type", sorted(DS_SAMPLES))
def test_values_are_classified_by_detect_secrets(secret_type: str) -> None:
    value = DS_SAMPLES[secret_type]
    assert secret_type in detectors.shapes(value)
    label = value_shape(value)
    assert label is not None and label.endswith("(detect-secrets)")
    # The label names the kind of secret, never the value.
    assert value not in label


def test_aws_access_key_id_is_a_near_miss_not_a_secret() -> None:
    shape = shape_of("AKIAIOSFODNN7SANDBOX")
    assert shape.aws_key_id and shape.label is None
    scan = _scan("app/application.properties")
    assert any("AWS access key id" in n.reason for n in scan.near_misses)


@pytest.mark.parametrize(
    ("value", "label"),
    [
        # JDBC properties detect-secrets does not read (SQL Server ;password=, ?password=).
        ("jdbc:sqlserver://db:1433;databaseName=x;user=u;password=Sq1-Pass", "URL with a password"),
        ("jdbc:postgresql://db:5432/x?user=u&password=Pg-Pass-1", "URL with a password"),
        # A password with characters that BasicAuthDetector's pattern excludes.
        ("jdbc:mysql://batch:Pa$$!w0rd-9@db:3306/batch", "URL with a password"),
        # An encrypted PKCS#8 key (PrivateKeyDetector lists fixed headers).
        ("-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIFfake\n", "private key"),
        ("AIza" + "SyD-fake0fake1fake2fake3fake4fake5f", "google api key"),
    ],
)
def test_our_shapes_go_further_than_detect_secrets(value: str, label: str) -> None:
    assert [s for s in detectors.shapes(value) if s != detectors.AWS_ACCESS_KEY] == []
    assert value_shape(value) == label


def test_corpus_reasons_name_the_detector() -> None:
    scan = _scan("app/datasources.properties")
    reasons = {f.entry.key: f.reason for f in scan.findings}
    assert reasons == {
        "ledger.url": "value shape: URL with a password",
        "batch.url": "value shape: URL with a password",
        "reports.session.seed": "value shape: JSON Web Token (detect-secrets)",
    }
    build = _scan("ci/build.env")
    assert build.findings[0].reason == "value shape: GitHub Token (detect-secrets)"


def test_detect_secrets_is_never_asked_to_verify_or_to_read_files(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from detect_secrets.plugins.base import BasePlugin

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("analyze_line may verify a secret over the network")

    monkeypatch.setattr(BasePlugin, "analyze_line", refuse)
    monkeypatch.setattr(BasePlugin, "verify", refuse)
    for rel in sorted(MOVED):
        assert _scan(rel).error is None


def test_loading_detect_secrets_leaves_warnings_alone() -> None:
    detectors._plugins.cache_clear()
    before = warnings.showwarning
    assert detectors.available()
    assert warnings.showwarning is before
    # detect-secrets' import calls logging.captureWarnings(True); we undo it.
    assert warnings.showwarning is not logging._showwarning  # type: ignore[attr-defined]


def test_without_detect_secrets_our_shapes_still_work(monkeypatch: pytest.MonkeyPatch) -> None:
    real_import = importlib.import_module

    def no_detect_secrets(name: str, package: str | None = None) -> Any:
        if name.startswith("detect_secrets"):
            raise ImportError(name)
        return real_import(name, package)

    monkeypatch.setattr(importlib, "import_module", no_detect_secrets)
    assert detectors._plugins.__wrapped__() == ()
    monkeypatch.setattr(importlib, "import_module", real_import)

    monkeypatch.setattr(detectors, "_plugins", lambda: ())
    assert not detectors.available() and detectors.version() is None
    assert detectors.shapes(GH_TOKEN) == []
    assert value_shape(GH_TOKEN) == "github token"
    assert value_shape(DS_SAMPLES["Private Key"]) == "private key"
    assert value_shape(DS_SAMPLES["Basic Auth Credentials"]) == "URL with a password"
    assert shape_of("AKIAIOSFODNN7SANDBOX").aws_key_id
    # A JWT under an innocent key is what we lose; everything else in the corpus still moves.
    for rel in sorted(MOVED):
        moved = {m.entry.key for g in _scan(rel).groups for m in g.moves}
        expected = MOVED[rel] - {"reports.session.seed"}
        assert moved == expected, rel
