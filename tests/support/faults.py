"""A fault-injecting HTTP proxy in front of the moto server (loopback only, for tests).

Each request, drawn from a seeded random stream, is one of:

* **throttled**: answered at once with the protocol's throttling error (``ThrottlingException``
  for JSON APIs, ``Throttling`` for query APIs, ``RequestLimitExceeded`` for EC2, ``SlowDown``
  503 for S3), never forwarded;
* **reset**: the connection is closed without an answer, never forwarded;
* **lost answer** (mutating requests only): forwarded, so moto *acts*, then answered 500
  ``InternalError`` instead of moto's answer, as when AWS acted but the response was lost;
* otherwise forwarded and answered as moto answered.

``counts`` says how many of each happened, so a test can prove the faults were really injected.

A **kill point** (``kill_at=N``) makes the proxy SIGKILL the process ``target_pid`` at the N-th
mutating request it sees: ``kill_when="before"`` kills it before the request is forwarded (the
intent was journaled, AWS never saw the call), ``"after"`` once the server has acted and before
the answer goes back (AWS acted, the process never learnt it). Requests other threads of the
killed process had already sent are still forwarded, as AWS would receive them.
"""

from __future__ import annotations

import http.client
import json
import os
import random
import signal
import threading
import urllib.parse
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from migrate.sandbox.server import is_mutating_request

_SCOPE_MARK = "Credential="


def _service(headers: Any) -> str:
    auth = headers.get("Authorization", "")
    if _SCOPE_MARK in auth:
        scope = auth.split(_SCOPE_MARK, 1)[1].split(",", 1)[0].split("/")
        if len(scope) >= 4:
            return scope[3]
    return ""


def _operation(handler: BaseHTTPRequestHandler, body: bytes) -> tuple[str, str]:
    """(protocol, operation) of a request, as the sandbox's recorder names them."""
    target = handler.headers.get("X-Amz-Target")
    if target:
        return "json", target.rsplit(".", 1)[-1]
    query = urllib.parse.urlsplit(handler.path).query
    action = urllib.parse.parse_qs(query).get("Action")
    if not action and "x-www-form-urlencoded" in handler.headers.get("Content-Type", ""):
        action = urllib.parse.parse_qs(body.decode("utf-8", "replace")).get("Action")
    if action:
        return "query", action[0]
    return "rest", f"{handler.command} {handler.path}"


def _mutating(handler: BaseHTTPRequestHandler, protocol: str, operation: str) -> bool:
    """As the sandbox's recorder counts them (the Account API's POST reads are reads)."""
    return is_mutating_request(
        {
            "protocol": protocol,
            "path": handler.path,
            "method": handler.command,
            "operation": operation,
        }
    )


def _error(protocol: str, service: str, code: str, status: int) -> tuple[int, str, bytes]:
    """(status, content type, body) of an AWS error in the request's protocol."""
    message = "Rate exceeded" if status != 500 else "We encountered an internal error."
    if protocol == "json":
        body = json.dumps({"__type": code, "message": message}).encode()
        return status, "application/x-amz-json-1.1", body
    if protocol == "query" and service == "ec2":
        xml = (
            f"<Response><Errors><Error><Code>{code}</Code><Message>{message}</Message>"
            "</Error></Errors><RequestID>fault</RequestID></Response>"
        )
        return status, "text/xml", xml.encode()
    if protocol == "query":
        xml = (
            "<ErrorResponse><Error><Type>Sender</Type>"
            f"<Code>{code}</Code><Message>{message}</Message></Error>"
            "<RequestId>fault</RequestId></ErrorResponse>"
        )
        return status, "text/xml", xml.encode()
    if service == "s3":
        xml = f"<Error><Code>{code}</Code><Message>{message}</Message></Error>"
        return status, "application/xml", xml.encode()
    body = json.dumps({"message": message}).encode()
    return status, "application/json", body


def _throttle_code(protocol: str, service: str) -> tuple[str, int]:
    if protocol == "query" and service == "ec2":
        return "RequestLimitExceeded", 503
    if protocol == "query":
        return "Throttling", 400
    if protocol == "rest" and service == "s3":
        return "SlowDown", 503
    if protocol == "rest":
        return "ThrottlingException", 429
    return "ThrottlingException", 400


class FaultProxy:
    """``FaultProxy(upstream, seed=..., throttle=0.2, lost=0.05, reset=0.02)``; ``.url``."""

    def __init__(
        self,
        upstream: str,
        *,
        seed: int,
        throttle: float = 0.0,
        lost: float = 0.0,
        reset: float = 0.0,
        kill_at: int | None = None,
        kill_when: str = "after",
    ) -> None:
        assert kill_when in ("before", "after")
        parsed = urllib.parse.urlsplit(upstream)
        assert parsed.hostname == "127.0.0.1", "the proxy forwards to loopback only"
        self.upstream = (parsed.hostname, parsed.port or 80)
        self.rates = {"throttle": throttle, "lost": lost, "reset": reset}
        self.random = random.Random(seed)
        self.counts: Counter[str] = Counter()
        self._lock = threading.Lock()
        self.enabled = True
        self.kill_at = kill_at
        self.kill_when = kill_when
        self.target_pid: int | None = None
        self.mutating_seen = 0
        self.killed: str | None = None  # the operation at which the process was killed
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                return None

            def _any(self) -> None:
                proxy._handle(self)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = do_PATCH = do_OPTIONS = _any

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        # A client that died mid-request (the kill point) or gave up is not the proxy's error.
        self._server.handle_error = lambda request, client_address: None  # type: ignore[method-assign]
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> FaultProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _draw(self, mutating: bool) -> str:
        with self._lock:
            if not self.enabled:
                return "pass"
            roll = self.random.random()
            if roll < self.rates["reset"]:
                return "reset"
            roll -= self.rates["reset"]
            if roll < self.rates["throttle"]:
                return "throttle"
            roll -= self.rates["throttle"]
            if mutating and roll < self.rates["lost"]:
                return "lost"
            return "pass"

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        protocol, operation = _operation(handler, body)
        service = _service(handler.headers)
        mutating = _mutating(handler, protocol, operation)
        kill = self._kill_point(mutating)
        if kill == "before":
            self._kill(handler, operation)
            return
        fault = self._draw(mutating)
        with self._lock:
            self.counts[fault] += 1
            if fault == "lost":
                self.counts[f"lost:{operation}"] += 1
        if fault == "reset":
            handler.close_connection = True
            handler.connection.close()
            return
        if fault == "throttle":
            code, status = _throttle_code(protocol, service)
            self._answer(handler, *_error(protocol, service, code, status))
            return
        conn = http.client.HTTPConnection(*self.upstream, timeout=120)
        try:
            headers = {k: v for k, v in handler.headers.items() if k.lower() != "connection"}
            conn.request(handler.command, handler.path, body=body, headers=headers)
            answer = conn.getresponse()
            data = answer.read()
            if kill == "after":
                self._kill(handler, operation)
                return
            if fault == "lost":
                code = (
                    "InternalFailure" if protocol != "rest" or service != "s3" else "InternalError"
                )
                self._answer(handler, *_error(protocol, service, code, 500))
                return
            handler.send_response(answer.status)
            for key, value in answer.getheaders():
                if key.lower() not in ("transfer-encoding", "connection", "content-length"):
                    handler.send_header(key, value)
            handler.send_header("Content-Length", str(len(data)))
            handler.end_headers()
            if handler.command != "HEAD":
                handler.wfile.write(data)
        finally:
            conn.close()

    def _kill_point(self, mutating: bool) -> str | None:
        """``"before"``/``"after"`` when this request is the kill point, else None."""
        if not mutating:
            return None
        with self._lock:
            self.mutating_seen += 1
            if self.mutating_seen == self.kill_at and self.target_pid is not None:
                return self.kill_when
        return None

    def _kill(self, handler: BaseHTTPRequestHandler, operation: str) -> None:
        assert self.target_pid is not None
        os.kill(self.target_pid, signal.SIGKILL)
        self.killed = operation
        handler.close_connection = True
        handler.connection.close()

    @staticmethod
    def _answer(handler: BaseHTTPRequestHandler, status: int, ctype: str, body: bytes) -> None:
        handler.send_response(status)
        handler.send_header("Content-Type", ctype)
        handler.send_header("Content-Length", str(len(body)))
        handler.send_header("x-amzn-RequestId", "fault-injected")
        handler.end_headers()
        if handler.command != "HEAD":
            handler.wfile.write(body)
