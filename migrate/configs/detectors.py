"""Value shapes from detect-secrets' plugins, applied to one value at a time.

Our readers understand the structure of each format (XML attributes and element text, properties
escapes and continuations, YAML anchors, ...) and hand over decoded values; detect-secrets'
regex plugins then say whether a value *looks like* a known kind of secret (a GitHub token, a
Slack token, a JWT, a private key, ``scheme://user:password@host``, ...). detect-secrets never
reads a file here: it would see the raw lines (escaped, entity-encoded, split over continuations)
and miss what our readers decode.

Only ``analyze_string`` is called: it is a pure regular-expression match. ``analyze_line`` could
try to *verify* a secret against its service over the network, which a migration plan must never
do. Matches are turned into labels (the plugin's ``secret_type``); the matched text is dropped at
once and never logged.

If detect-secrets is not installed, :func:`shapes` returns nothing and :mod:`classify` falls back
on its own, smaller set of token shapes.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import logging
import warnings
from collections.abc import Iterable
from typing import Protocol

# The regex plugins we ask, by module and class (detect-secrets 1.5). A plugin missing from the
# installed version is skipped. Left out on purpose: KeywordDetector (key names are ours to
# judge, and it expects whole source lines), the high-entropy plugins (they only look inside
# quotes and flag hashes and ids), and IPPublicDetector (an address is not a credential).
PLUGINS: tuple[tuple[str, str], ...] = (
    ("artifactory", "ArtifactoryDetector"),
    ("aws", "AWSKeyDetector"),
    ("azure_storage_key", "AzureStorageKeyDetector"),
    ("basic_auth", "BasicAuthDetector"),
    ("cloudant", "CloudantDetector"),
    ("discord", "DiscordBotTokenDetector"),
    ("github_token", "GitHubTokenDetector"),
    ("gitlab_token", "GitLabTokenDetector"),
    ("ibm_cloud_iam", "IbmCloudIamDetector"),
    ("ibm_cos_hmac", "IbmCosHmacDetector"),
    ("jwt", "JwtTokenDetector"),
    ("mailchimp", "MailchimpDetector"),
    ("npm", "NpmDetector"),
    ("openai", "OpenAIDetector"),
    ("private_key", "PrivateKeyDetector"),
    ("pypi_token", "PypiTokenDetector"),
    ("sendgrid", "SendGridDetector"),
    ("slack", "SlackDetector"),
    ("softlayer", "SoftlayerDetector"),
    ("square_oauth", "SquareOAuthDetector"),
    ("stripe", "StripeDetector"),
    ("telegram_token", "TelegramBotTokenDetector"),
    ("twilio", "TwilioKeyDetector"),
)
# detect-secrets reports an AWS access key *id* as a secret; alone it is not one (the secret key
# is), and moving it would not help: iam.keys_to_roles replaces the key. Reported as a near-miss.
AWS_ACCESS_KEY = "AWS Access Key"


class _Plugin(Protocol):
    secret_type: str

    def analyze_string(self, string: str) -> Iterable[str]: ...


@functools.cache
def _plugins() -> tuple[_Plugin, ...]:
    """The installed plugins, loaded once; empty when detect-secrets cannot be imported."""
    before = warnings.showwarning
    loaded: list[_Plugin] = []
    try:
        try:
            importlib.import_module("detect_secrets.plugins")
        except ImportError:
            return ()
        for module_name, class_name in PLUGINS:
            try:
                module = importlib.import_module(f"detect_secrets.plugins.{module_name}")
                loaded.append(getattr(module, class_name)())
            except (ImportError, AttributeError, TypeError):
                continue  # not in this version (or its constructor changed)
    finally:
        # Importing detect-secrets calls logging.captureWarnings(True) for the whole process;
        # put the warnings machinery back as it was.
        if warnings.showwarning is not before:
            logging.captureWarnings(False)
            warnings.showwarning = before
    return tuple(loaded)


def available() -> bool:
    """Whether detect-secrets' plugins are in use."""
    return bool(_plugins())


def version() -> str | None:
    """The installed detect-secrets version, or None."""
    if not available():
        return None
    with contextlib.suppress(Exception):
        from importlib.metadata import version as dist_version

        return dist_version("detect-secrets")
    return None


def plugin_names() -> list[str]:
    """Class names of the plugins in use (for the docs and the tests)."""
    return [type(p).__name__ for p in _plugins()]


def shapes(value: str) -> list[str]:
    """The ``secret_type`` of every plugin that matches ``value`` (in :data:`PLUGINS` order).

    The matched text is not kept. A plugin that fails on a value is skipped: a third-party
    regular expression must not stop a migration plan.
    """
    found: list[str] = []
    for plugin in _plugins():
        try:
            hit = any(True for _ in plugin.analyze_string(value))
        except Exception:  # see the docstring; nothing about the value is reported
            continue
        if hit:
            found.append(str(plugin.secret_type))
    return found
