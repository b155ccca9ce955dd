"""moto in server mode, embedded in this process, as the sandbox "legacy AWS account".

:class:`SandboxServer` starts ``moto.server.ThreadedMotoServer`` on ``127.0.0.1`` with a free port
and offers moto's ``/moto-api`` helpers: :meth:`~SandboxServer.reset` and, with
``recording=True``, a request recorder that tests use to prove that a dry run sent no mutating
call (:meth:`~SandboxServer.recorded_requests` and :func:`is_mutating_request`).

Facts about moto 5.2.5 this module relies on (measured, see ``docs/sandbox.md``):

* All moto servers in one process share one set of backends and one recorder: two
  :class:`SandboxServer` instances see the same buckets, and :meth:`SandboxServer.reset` empties
  both.
* The recorder appends to a file whose path moto reads once, when ``moto.moto_api`` is imported
  (``MOTO_RECORDER_FILEPATH``, default ``./moto_recording`` in the working directory).
  ``MOTO_ENABLE_RECORDING`` only sets whether recording is *on from import time*; the
  ``start-recording`` endpoint works without it. Request bodies land in that file verbatim
  (``CreateDBInstance`` carries ``MasterUserPassword``), so this module points the recorder at a
  private temporary file and records only between :meth:`~SandboxServer.start_recording` and
  :meth:`~SandboxServer.stop_recording`.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import json
import logging
import os
import re
import shutil
import socket
import tempfile
import urllib.parse
import urllib.request
from types import TracebackType
from typing import Any, Literal, TypedDict

from migrate.errors import BadInputError

DEFAULT_REGION = "us-east-1"
# Fake operator credentials: moto never checks them, and they must not look like a real secret.
SANDBOX_ACCESS_KEY_ID = "AKIASANDBOXOPERATOR1"
SANDBOX_SECRET_ACCESS_KEY = "sandbox-secret-not-real"

# Operation-name prefixes of calls that only read (the AWS naming convention).
READ_ONLY_PREFIXES = ("Describe", "Get", "List", "Head", "Lookup", "Search")
# HTTP methods that do not change state on REST protocols (S3 and friends).
READ_ONLY_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

# Control calls (reset, recording) of our own server: generous, since a reset of a full account
# on a loaded CI machine (3 test workers on 2 cores) took over 10 s.
_HTTP_TIMEOUT_S = 60.0
# SigV4 credential scope: <key id>/<yyyymmdd>/<region>/<service>/aws4_request.
_CREDENTIAL_SCOPE = re.compile(r"Credential=[^/,\s]+/\d{8}/[^/]+/([^/]+)/aws4_request")
_REST_READ_PATH = re.compile(r"^/(get|list|describe)[A-Z][A-Za-z]*$")
# Smithy RPC v2 (CBOR) puts the operation into the path instead of a header.
_RPC_V2_PATH = re.compile(r"^/service/[^/]+/operation/([^/?]+)$")

# The sandbox answers on loopback only; an operator's HTTP(S)_PROXY must not see its traffic.
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

# AWS-managed IAM policies the sandbox loads (moto loads none unless told to load all).
SANDBOX_MANAGED_POLICIES = ("AmazonSSMManagedInstanceCore",)

Protocol = Literal["json", "rpc-v2-cbor", "query", "rest", "moto-api"]


class RecordedRequest(TypedDict):
    """One request as moto's recorder saw it, decoded.

    ``operation`` is the AWS operation name for JSON, RPC v2 and query protocols (``"CreateKey"``,
    ``"DescribeDBInstances"``) and ``"<SERVICE>:<METHOD> <path>[?<query>]"`` for REST protocols
    (``"S3:PUT /legacy-app-data/a.txt"``). ``service`` is the signing name from the SigV4
    credential scope (``"s3"``, ``"rds"``, ``"kms"``; empty for unsigned requests).
    """

    method: str
    url: str
    path: str
    query: str
    service: str
    protocol: Protocol
    operation: str
    headers: dict[str, str]
    body: bytes


def sandbox_env(endpoint_url: str) -> dict[str, str]:
    """Return the environment variables an AWS client needs to talk to the sandbox.

    The credentials are fixed placeholders: moto accepts any signature, and using obviously fake
    values keeps a real key from ever being sent to (or recorded by) the sandbox.
    """
    return {
        "AWS_ENDPOINT_URL": endpoint_url,
        "AWS_ACCESS_KEY_ID": SANDBOX_ACCESS_KEY_ID,
        "AWS_SECRET_ACCESS_KEY": SANDBOX_SECRET_ACCESS_KEY,
        "AWS_DEFAULT_REGION": DEFAULT_REGION,
        "AWS_REGION": DEFAULT_REGION,
    }


def _check_port_free(port: int) -> None:
    """Refuse a busy port at once: moto binds in its own thread, and a failed bind there would
    leave ``start`` waiting for a server that never comes up."""
    probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        # As werkzeug binds: a port in TIME_WAIT is reusable, one with a listener is not.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind(("127.0.0.1", port))
    except OSError as exc:
        raise BadInputError(
            f"--port {port}: 127.0.0.1:{port} is in use ({exc.strerror}); another sandbox or "
            "program listens there. Stop it, pass another --port, or --port 0 for any free port."
        ) from None
    finally:
        probe.close()


class SandboxServer:
    """moto in server mode on ``127.0.0.1:<free port>``, running in a thread of this process.

    Use it as a context manager or call :meth:`start` / :meth:`stop`. ``endpoint_url`` is set once
    started. With ``recording=True`` the recorder methods are available; otherwise they raise
    :class:`RuntimeError`.
    """

    def __init__(self, *, recording: bool = False, port: int = 0) -> None:
        self.recording = recording
        self.port = port
        self._server: Any = None
        self._endpoint_url: str | None = None
        self._recording_dir: str | None = None
        self._previous_recorder_location: str | None = None

    @property
    def endpoint_url(self) -> str:
        """``http://127.0.0.1:<port>``; raises :class:`RuntimeError` before :meth:`start`."""
        if self._endpoint_url is None:
            raise RuntimeError("SandboxServer is not started")
        return self._endpoint_url

    @property
    def running(self) -> bool:
        """True between :meth:`start` and :meth:`stop`."""
        return self._endpoint_url is not None

    def start(self) -> SandboxServer:
        """Start the server (idempotent) and return ``self``."""
        if self._server is not None:
            return self
        # Imported here: moto's import is slow and only the sandbox commands need it.
        from moto.server import ThreadedMotoServer

        if self.port:
            _check_port_free(self.port)
        # werkzeug logs one line per request at INFO, which would drown the CLI's output.
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        _fill_moto_gaps()
        server.start()
        host, port = server.get_host_and_port()
        self._server = server
        self._endpoint_url = f"http://{host}:{port}"
        if self.recording:
            self._init_recorder()
        return self

    def stop(self) -> None:
        """Stop the server and remove the recording file (idempotent)."""
        server, self._server, self._endpoint_url = self._server, None, None
        if server is not None:
            server.stop()
            # ThreadedMotoServer.stop() shuts the loop down but leaves the listening socket open.
            inner = getattr(server, "_server", None)
            if inner is not None:
                with contextlib.suppress(OSError):
                    inner.server_close()
        self._release_recorder()

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # --- moto-api -----------------------------------------------------------------------------

    def reset(self) -> None:
        """Empty every moto backend (``POST /moto-api/reset``, ~50 ms).

        The backends are process-global, so this also empties any other moto server in this
        process.
        """
        self._call("POST", "/moto-api/reset")

    def start_recording(self) -> None:
        """Erase the recording, then record every request from now on."""
        self._require_recording()
        self._call("POST", "/moto-api/recorder/reset-recording")
        self._call("POST", "/moto-api/recorder/start-recording")

    def stop_recording(self) -> None:
        """Stop recording; the requests recorded so far stay downloadable."""
        self._require_recording()
        self._call("POST", "/moto-api/recorder/stop-recording")

    def recorded_requests(self) -> list[RecordedRequest]:
        """Return the requests recorded since :meth:`start_recording`, oldest first.

        moto's ``GET /moto-api/recorder/download-recording`` answers with one JSON object per
        line (moto 5.2.5)::

            {"headers": {"Host": "127.0.0.1:41234", "X-Amz-Target": "TrentService.CreateKey",
                         "Authorization": "AWS4-HMAC-SHA256 Credential=AKIA.../20261130/
                                           us-east-1/kms/aws4_request, ...", ...},
             "method": "POST",
             "url": "http://127.0.0.1:41234/",          # raw, still percent-encoded
             "body": "e30=",                             # base64 when body_encoded is true
             "body_encoded": true}

        ``body`` is base64 of the raw body when ``body_encoded`` is true (any request with a
        ``Content-Length``, even an empty one) and ``""`` with ``body_encoded: false`` otherwise
        (e.g. a GET without ``Content-Length``). Calls to ``/moto-api/recorder/*`` are never
        recorded; other ``/moto-api`` calls (e.g. reset) are, and come back with protocol
        ``"moto-api"``. Each line is decoded into a :class:`RecordedRequest`.
        """
        self._require_recording()
        raw = self._call("GET", "/moto-api/recorder/download-recording")
        return [
            parse_recorded_line(json.loads(line))
            for line in raw.decode("utf-8").splitlines()
            if line.strip()
        ]

    # --- internals ----------------------------------------------------------------------------

    def _require_recording(self) -> None:
        if not self.recording:
            raise RuntimeError("SandboxServer was created without recording=True")

    def _call(self, method: str, path: str) -> bytes:
        data = b"" if method == "POST" else None
        request = urllib.request.Request(self.endpoint_url + path, data=data, method=method)
        with _opener.open(request, timeout=_HTTP_TIMEOUT_S) as response:
            body: bytes = response.read()
        return body

    def _init_recorder(self) -> None:
        from moto.moto_api import recorder

        if not hasattr(recorder, "_location"):
            raise RuntimeError("this moto version's recorder cannot be pointed at a private file")
        # The recorder writes request bodies (passwords included) to a path fixed at import
        # time, by default in the working directory; give it a file only this user can read.
        self._recording_dir = tempfile.mkdtemp(prefix="migrate-sandbox-recording-")
        self._previous_recorder_location = recorder._location
        recorder._location = os.path.join(self._recording_dir, "recording.jsonl")
        # MOTO_ENABLE_RECORDING in the environment would have it recording since import; seeding
        # must not end up in the file, so it starts off and start_recording() turns it on.
        self._call("POST", "/moto-api/recorder/stop-recording")
        self._call("POST", "/moto-api/recorder/reset-recording")

    def _release_recorder(self) -> None:
        if self._recording_dir is None:
            return
        from moto.moto_api import recorder

        recorder.stop_recording()
        if self._previous_recorder_location is not None:
            recorder._location = self._previous_recorder_location
        shutil.rmtree(self._recording_dir, ignore_errors=True)
        self._recording_dir = None
        self._previous_recorder_location = None


def _header(headers: dict[str, str], name: str) -> str:
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted:
            return value
    return ""


def parse_recorded_line(entry: dict[str, Any]) -> RecordedRequest:
    """Decode one object of moto's recording (see :meth:`SandboxServer.recorded_requests`)."""
    headers = {str(k): str(v) for k, v in (entry.get("headers") or {}).items()}
    method = str(entry.get("method", "")).upper()
    url = str(entry.get("url", ""))
    raw_body = entry.get("body") or ""
    body = base64.b64decode(raw_body) if entry.get("body_encoded") else str(raw_body).encode()
    split = urllib.parse.urlsplit(url)
    path, query = split.path or "/", split.query

    scope = _CREDENTIAL_SCOPE.search(_header(headers, "Authorization"))
    if scope is None:  # presigned URL: the credential scope is in the query string
        presigned = urllib.parse.parse_qs(query).get("X-Amz-Credential", [""])[0]
        scope = _CREDENTIAL_SCOPE.search(f"Credential={presigned}")
    service = scope.group(1) if scope else ""

    protocol: Protocol
    target = _header(headers, "X-Amz-Target")
    rpc_v2 = _RPC_V2_PATH.match(path)
    action = _query_action(query, body, _header(headers, "Content-Type"))
    if path.startswith("/moto-api"):
        protocol, operation = "moto-api", f"moto-api:{method} {path}"
    elif target:
        # "TrentService.CreateKey", "AmazonSSM.GetParameter": the operation follows the last dot.
        protocol, operation = "json", target.rsplit(".", 1)[-1]
    elif rpc_v2 is not None and _header(headers, "Smithy-Protocol"):
        protocol, operation = "rpc-v2-cbor", rpc_v2.group(1)
    elif action:
        protocol, operation = "query", action
    else:
        protocol = "rest"
        operation = f"{(service or 'rest').upper()}:{method} {path}" + (
            f"?{query}" if query else ""
        )
    return RecordedRequest(
        method=method,
        url=url,
        path=path,
        query=query,
        service=service,
        protocol=protocol,
        operation=operation,
        headers=headers,
        body=body,
    )


def _query_action(query: str, body: bytes, content_type: str) -> str:
    """The ``Action`` of a query-protocol request, from the form body or the query string."""
    actions = urllib.parse.parse_qs(query).get("Action")
    if not actions and "x-www-form-urlencoded" in content_type.lower():
        form = urllib.parse.parse_qs(body.decode("utf-8", errors="replace"))
        actions = form.get("Action")
    return actions[0] if actions else ""


def is_mutating_request(rec: RecordedRequest | dict[str, Any]) -> bool:
    """Say whether a recorded request (may have) changed state in the sandbox.

    moto-api calls (reset, recorder) are bookkeeping, not AWS calls: never mutating. JSON, RPC v2
    and query protocols mutate unless the operation starts with a read prefix (Describe, Get, List,
    Head, Lookup, Search). REST protocols (S3) mutate unless the method is GET, HEAD or OPTIONS;
    that counts S3's read-only POSTs (``SelectObjectContent``) as mutating, which errs on the
    safe side for "the dry run made no mutating call" checks. A REST POST to ``/getX``, ``/listX``
    or ``/describeX`` (the Account API) is a read.
    """
    path = str(rec.get("path", ""))
    protocol = rec.get("protocol")
    if protocol == "moto-api" or path.startswith("/moto-api"):
        return False
    if protocol == "rest":
        # REST-JSON APIs that name the operation in a POST path (the Account API's
        # POST /getAlternateContact) read when that name does; S3 bucket names are lowercase, so
        # no bucket path matches.
        if _REST_READ_PATH.match(path):
            return False
        return str(rec.get("method", "")).upper() not in READ_ONLY_METHODS
    operation = str(rec.get("operation", ""))
    # An operation we could not name is counted as mutating: unknown must not pass as harmless.
    return not operation.startswith(READ_ONLY_PREFIXES)


def _fill_moto_gaps() -> None:
    """Fill the gaps of moto 5.2.5 that a plan of the baseline would fall into on the sandbox.

    * SSM ``DescribeInstanceInformation`` is not implemented: the sandbox answers what AWS
      answers for an account where no SSM agent has registered (no agent runs in moto).
    * AWS-managed IAM policies exist only with ``MOTO_IAM_LOAD_MANAGED_POLICIES`` (which loads
      ~1,200 policies on every reset): the sandbox loads the one the steps attach,
      ``AmazonSSMManagedInstanceCore``.
    * The two EBS default-key calls, below.

    moto keeps the account's default EBS key (``ModifyEbsDefaultKmsKeyId`` works) but answers
    ``GetEbsDefaultKmsKeyId`` and ``ResetEbsDefaultKmsKeyId`` with HTTP 500, which would stop any
    plan of the baseline on the sandbox. Both are served here from moto's own stored value, the
    way AWS answers (``alias/aws/ebs``'s key until another is set). Functional tests of the calls'
    shape use botocore's Stubber (tests/functional/test_account_baseline.py).
    """
    from moto.core.responses import ActionResult
    from moto.ec2.responses.elastic_block_store import ElasticBlockStore
    from moto.iam import models as iam_models
    from moto.ssm.responses import SimpleSystemManagerResponse

    if hasattr(ElasticBlockStore, "get_ebs_default_kms_key_id"):
        return

    def get_ebs_default_kms_key_id(self: Any) -> Any:
        backend = self.ec2_backend
        arn = backend.default_kms_key_id or backend._create_default_encryption_key()
        return ActionResult({"KmsKeyId": arn})

    def reset_ebs_default_kms_key_id(self: Any) -> Any:
        self.error_on_dryrun()
        return ActionResult({"KmsKeyId": self.ec2_backend._create_default_encryption_key()})

    ElasticBlockStore.get_ebs_default_kms_key_id = get_ebs_default_kms_key_id  # type: ignore[attr-defined]
    ElasticBlockStore.reset_ebs_default_kms_key_id = reset_ebs_default_kms_key_id  # type: ignore[attr-defined]

    def describe_instance_information(self: Any) -> Any:
        return ActionResult({"InstanceInformationList": []})

    SimpleSystemManagerResponse.describe_instance_information = describe_instance_information  # type: ignore[attr-defined]

    load_all = iam_models.IAMBackend._init_aws_policies

    def init_aws_policies(self: Any) -> Any:
        loaded = load_all(self)
        if loaded:
            return loaded
        return [
            iam_models.AWSManagedPolicy.from_data(name, self.account_id, self.region_name, data)
            for name, data in _sandbox_managed_policies().items()
        ]

    iam_models.IAMBackend._init_aws_policies = init_aws_policies  # type: ignore[method-assign]


@functools.cache
def _sandbox_managed_policies() -> dict[str, Any]:
    """The AWS-managed policies the sandbox account offers, from moto's own copy of them."""
    from moto.iam.aws_managed_policies import aws_managed_policies_data

    every = json.loads(aws_managed_policies_data)
    return {name: every[name] for name in SANDBOX_MANAGED_POLICIES}
