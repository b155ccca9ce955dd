"""Clients for one operator's AWS identity; every botocore client is built here.

:class:`AwsSession` hands out clients configured for the operator's profile, region and endpoint
(``--endpoint-url`` or the ``AWS_ENDPOINT_URL`` convention), with botocore's ``adaptive`` retry mode.
Two hooks hang on its botocore event system:

* the **dry-run guard** (``before-call``): while planning, every operation that is not on the
  read-only allow-list is refused before it is sent;
* the **journal** (``after-call``/``after-call-error``): every mutating call that is sent is handed
  to a recorder with redacted parameters, request id and outcome.
"""

from __future__ import annotations

import contextlib
import email.utils
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import boto3
from botocore.config import Config
from botocore.exceptions import NoCredentialsError, ProfileNotFound
from botocore.utils import parse_timestamp as botocore_timestamp

from migrate.errors import AwsConfigError, DryRunViolation

# Operations that only read. Anything else is "mutating" for the guard and the journal.
READ_ONLY_PREFIXES = ("Describe", "Get", "List", "Head", "Lookup", "Search")
# Reads that are still refused while planning: they return secret material.
READ_DENY = frozenset({"GetSecretValue", "GetParametersByPath", "GetParameter", "GetParameters"})
# SSM reads are fine without decryption: SecureString values then come back encrypted.
_SSM_PLAIN_READS = frozenset({"GetParametersByPath", "GetParameter", "GetParameters"})
# Operations that do not start with a read prefix but only read.
READ_EXTRA = frozenset({"SelectObjectContent"})

# Parameters whose values identify a target and are safe to journal. Everything else is redacted.
IDENTIFIER_PARAMS = (
    "Bucket",
    "Key",
    "KeyId",
    "AliasName",
    "TargetKeyId",
    "DBInstanceIdentifier",
    "DBClusterIdentifier",
    "DBSnapshotIdentifier",
    "SourceDBSnapshotIdentifier",
    "TargetDBSnapshotIdentifier",
    "NewDBInstanceIdentifier",
    "TargetDBInstanceIdentifier",
    "NewDBClusterIdentifier",
    "DBClusterSnapshotIdentifier",
    "SourceDBClusterSnapshotIdentifier",
    "TargetDBClusterSnapshotIdentifier",
    "SnapshotIdentifier",
    "FinalDBSnapshotIdentifier",
    "UserName",
    "RoleName",
    "PolicyName",
    "InstanceProfileName",
    "AccessKeyId",
    "InstanceId",
    "SecretId",
    "Name",
    "FunctionName",
    "QueryExecutionId",
)


def is_read_only(operation: str) -> bool:
    """True if the AWS operation (PascalCase, as botocore names it) changes nothing. Only calls
    that are not read-only are journaled."""
    return operation.startswith(READ_ONLY_PREFIXES) or operation in READ_EXTRA


def allowed_while_planning(operation: str, api_params: dict[str, Any] | None = None) -> bool:
    """True if a plan may make this call: it only reads, and reads no secret value."""
    if not is_read_only(operation):
        return False
    if operation in _SSM_PLAIN_READS:
        return not (api_params or {}).get("WithDecryption")
    return operation not in READ_DENY


def redact_params(params: dict[str, Any]) -> dict[str, Any]:
    """Keep identifier parameters, replace every other value with a marker."""
    out: dict[str, Any] = {}
    for name, value in params.items():
        if name in IDENTIFIER_PARAMS and isinstance(value, str):
            out[name] = value
        else:
            out[name] = "<redacted>"
    return out


def target_of(params: dict[str, Any]) -> str | None:
    """The most specific identifier in a request, for the journal's target column."""
    bucket = params.get("Bucket")
    key = params.get("Key")
    if isinstance(bucket, str) and isinstance(key, str):
        return f"s3://{bucket}/{key}"
    for name in IDENTIFIER_PARAMS:
        value = params.get(name)
        if isinstance(value, str):
            return value
    return None


@dataclass(frozen=True)
class CallRecord:
    """One mutating call as the journal keeps it."""

    service: str
    operation: str
    region: str | None
    target: str | None
    params: dict[str, Any]
    request_id: str | None
    outcome: str
    error_message: str | None = None
    # The journal entry of this call's intent, when it was written ahead of the call.
    journal_id: int | None = None


Recorder = Callable[[CallRecord], None]


def parse_timestamp(value: Any) -> datetime:
    """botocore's timestamp parsing, without dateutil for the two shapes AWS sends.

    botocore parses every timestamp of every answer (``LastModified`` of each listed object,
    ``Last-Modified`` of each HEAD) with ``dateutil.parser``: about a tenth of the client's CPU
    in an S3 re-encryption, measured. ISO 8601 (XML and JSON bodies) and RFC 1123 (HTTP
    headers) are parsed by the standard library here, to the same instant and the same
    awareness (naive stays naive, like dateutil); anything else (epoch numbers, odd shapes)
    goes to botocore's own parser.
    """
    if isinstance(value, str) and value[:1].isdigit() and "-" in value[:5]:
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            pass
    elif isinstance(value, str) and value[:3].isalpha():
        try:
            parsed = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            pass
        else:
            # RFC 2822's "-0000" comes back naive; botocore (dateutil) calls it UTC. A string
            # without any zone stays naive, as with dateutil.
            if parsed.tzinfo is None and value.rstrip().endswith("-0000"):
                return parsed.replace(tzinfo=UTC)
            return parsed
    result: datetime = botocore_timestamp(value)
    return result


@dataclass
class AwsSession:
    """Client factory for one operator's AWS identity.

    Steps never build clients themselves; they ask the session passed in their context, so that the
    guard and the journal see every call.
    """

    profile: str | None = None
    region: str | None = None
    endpoint_url: str | None = None
    max_attempts: int = 8
    _session: Any = field(default=None, init=False, repr=False)
    _clients: dict[tuple[str, str], Any] = field(default_factory=dict, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)
    _dry_run: bool = field(default=False, init=False)
    _recorder: Recorder | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.endpoint_url is None:
            self.endpoint_url = os.environ.get("AWS_ENDPOINT_URL") or None
        if self.endpoint_url is not None:
            parsed = urlsplit(self.endpoint_url)
            if parsed.scheme not in ("http", "https") or not parsed.hostname:
                raise AwsConfigError(
                    f"--endpoint-url/AWS_ENDPOINT_URL {self.endpoint_url!r} is not an endpoint "
                    "URL. Give scheme and host, e.g. http://127.0.0.1:5000 (the sandbox) or "
                    "https://s3.eu-west-1.amazonaws.com, or unset it to use AWS's endpoints."
                )
        try:
            self._session = boto3.session.Session(
                profile_name=self.profile, region_name=self.region
            )
            # Every client of the session parses timestamps without dateutil (see above).
            self._session._session.get_component("response_parser_factory").set_parser_defaults(
                timestamp_parser=parse_timestamp
            )
        except ProfileNotFound as exc:
            raise AwsConfigError(
                f"AWS profile {self.profile!r} is not configured ({exc}). Pass an existing "
                "profile with --profile or AWS_PROFILE, or configure it with `aws configure "
                f"--profile {self.profile}`."
            ) from None
        # The awscli order: --region, then AWS_REGION (the SDKs' variable, which botocore does
        # not read), then AWS_DEFAULT_REGION or the profile (botocore's own resolution).
        self.region = self.region or os.environ.get("AWS_REGION") or self._session.region_name

    @contextlib.contextmanager
    def read_only(self) -> Iterator[None]:
        """Refuse every mutating operation inside the block (the planning guard)."""
        previous = self._dry_run
        self._dry_run = True
        try:
            yield
        finally:
            self._dry_run = previous

    def set_recorder(self, recorder: Recorder | None) -> None:
        """Send every mutating call that leaves the machine to ``recorder``."""
        self._recorder = recorder

    def client(self, service: str, region: str | None = None) -> Any:
        """A botocore client for ``service`` in ``region`` (default: the session's)."""
        region = region or self.region
        if not region:
            # Refused when AWS is actually needed (a folder of logs is analysed without it);
            # with no credentials either, that is what to fix first.
            if self._session.get_credentials() is None:
                raise NoCredentialsError()
            raise AwsConfigError(
                "no AWS region is set. Pass --region REGION, or set AWS_REGION (or "
                "AWS_DEFAULT_REGION), or give the profile a region with `aws configure set "
                "region REGION`. migrate never guesses one: a plan is for the region it names."
            )
        key = (service, region)
        with self._lock:
            if key not in self._clients:
                config = Config(
                    retries={"mode": "adaptive", "max_attempts": self.max_attempts},
                    # Connections open lazily; a large pool costs nothing unused and spares TLS handshakes.
                    max_pool_connections=128,
                    s3={"addressing_style": "path"} if self.endpoint_url else None,
                )
                client = self._session.client(
                    service, region_name=region, endpoint_url=self.endpoint_url, config=config
                )
                events = client.meta.events
                events.register("provide-client-params.*.*", _remember_api_params)
                events.register("before-call.*.*", self._guard)
                events.register("after-call.*.*", self._after_call)
                events.register("after-call-error.*.*", self._after_call_error)
                if service == "s3control" and _is_local_endpoint(self.endpoint_url):
                    events.register("before-sign.s3-control.*", _drop_account_host_prefix)
                self._clients[key] = client
            return self._clients[key]

    # -- hooks ---------------------------------------------------------------------------------
    def _guard(self, model: Any, context: dict[str, Any] | None = None, **kwargs: Any) -> None:
        operation = model.name
        api_params = (context or {}).get("migrate_api_params")
        if self._dry_run and not allowed_while_planning(operation, api_params):
            service = model.service_model.service_name
            raise DryRunViolation(
                f"Refused {service}:{operation} while planning: a plan may only read. This is a "
                "bug in the step that made the call (its observe/decide must only read); please "
                "report it with --debug output."
            )
        # Write-ahead: the journal holds the call's intent before the request leaves.
        intent = getattr(self._recorder, "intent", None)
        if intent is not None and context is not None and not is_read_only(operation):
            params = api_params or {}
            context["migrate_journal_id"] = intent(
                CallRecord(
                    service=model.service_model.service_name,
                    operation=operation,
                    region=context.get("client_region"),
                    target=target_of(params),
                    params=redact_params(params),
                    request_id=None,
                    outcome="sent",
                )
            )

    def _record(
        self,
        service: str,
        operation: str,
        context: dict[str, Any],
        outcome: str,
        request_id: str | None,
        error_message: str | None,
    ) -> None:
        if is_read_only(operation) or self._recorder is None:
            return
        api_params = context.get("migrate_api_params") or {}
        self._recorder(
            CallRecord(
                service=service,
                operation=operation,
                region=context.get("client_region"),
                target=target_of(api_params),
                params=redact_params(api_params),
                request_id=request_id,
                outcome=outcome,
                error_message=error_message,
                journal_id=context.get("migrate_journal_id"),
            )
        )

    def _after_call(
        self,
        model: Any,
        parsed: dict[str, Any],
        context: dict[str, Any],
        http_response: Any = None,
        **kwargs: Any,
    ) -> None:
        meta = parsed.get("ResponseMetadata", {}) if isinstance(parsed, dict) else {}
        request_id = meta.get("RequestId") or (meta.get("HTTPHeaders") or {}).get(
            "x-amz-request-id"
        )
        error = parsed.get("Error") if isinstance(parsed, dict) else None
        status = getattr(http_response, "status_code", 200)
        service = model.service_model.service_name
        if error or status >= 300:
            code = (error or {}).get("Code") or str(status)
            message = (error or {}).get("Message")
            self._record(service, model.name, context, f"error:{code}", request_id, message)
        else:
            self._record(service, model.name, context, "ok", request_id, None)

    def _after_call_error(
        self, event_name: str, context: dict[str, Any], exception: Exception, **kwargs: Any
    ) -> None:
        # No response (connection reset, timeout): botocore names the call only in the event.
        _, service, operation = [*event_name.split("."), "", ""][:3]
        outcome = f"error:{type(exception).__name__}"
        self._record(service, operation, context, outcome, None, str(exception))


def _remember_api_params(params: dict[str, Any], context: dict[str, Any], **kwargs: Any) -> None:
    # The journal wants the user-level parameters; after-call only sees the serialized request.
    context["migrate_api_params"] = dict(params)


def _is_local_endpoint(endpoint_url: str | None) -> bool:
    """True for an endpoint on this machine (the sandbox, a local emulator), not AWS's."""
    host = urlsplit(endpoint_url or "").hostname or ""
    return host in ("localhost", "127.0.0.1", "::1")


def _drop_account_host_prefix(request: Any, **kwargs: Any) -> None:
    # S3 Control puts the account id in front of the host (ACCOUNT.s3-control...); with a local
    # endpoint that makes ACCOUNT.127.0.0.1, which does not resolve. Send it to the endpoint.
    parts = urlsplit(request.url)
    host = parts.hostname or ""
    first, _, rest = host.partition(".")
    if first.isdigit() and len(first) == 12 and rest:
        netloc = rest + (f":{parts.port}" if parts.port else "")
        request.url = urlunsplit(parts._replace(netloc=netloc))
