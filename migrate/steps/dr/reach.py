"""Is the restored copy reachable: its endpoint resolves, and the operator's check passes.

The check command is the operator's (``psql -h {host} -p {port} -c 'select 1'``): it runs without
a shell, with a timeout, and without this process's AWS credentials in its environment (it brings
its own, e.g. ``~/.pgpass``; migrate never stores or passes database credentials). Only its exit
status and duration are recorded, never its output (it might print data).
"""

from __future__ import annotations

import os
import shlex
import socket
import subprocess
import time
from dataclasses import dataclass


def resolves(host: str) -> bool:
    """True when the endpoint's DNS name resolves (RDS publishes it once the copy is available)."""
    try:
        return bool(socket.getaddrinfo(host, None))
    except OSError:
        return False


@dataclass(frozen=True)
class CheckOutcome:
    """What the check command did: ``ok``, its exit status (None: timed out/not started)."""

    ok: bool
    exit_status: int | None
    seconds: float
    note: str


def _clean_env() -> dict[str, str]:
    # The check gets none of our AWS credentials or profile: it is the operator's program.
    return {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}


def run_check(command: str, host: str, port: int, timeout_s: float) -> CheckOutcome:
    """Run the operator's read-only check against ``host:port`` with a timeout."""
    try:
        argv = [part.format(host=host, port=port) for part in shlex.split(command)]
    except (ValueError, KeyError, IndexError) as exc:
        return CheckOutcome(False, None, 0.0, f"the check command cannot be parsed: {exc}")
    started = time.monotonic()
    try:
        done = subprocess.run(
            argv,
            env=_clean_env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=timeout_s,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return CheckOutcome(
            False, None, round(time.monotonic() - started, 1), f"timed out after {timeout_s:g}s"
        )
    except OSError as exc:
        return CheckOutcome(False, None, 0.0, f"could not start {argv[0]!r}: {exc.strerror}")
    seconds = round(time.monotonic() - started, 1)
    note = "passed" if done.returncode == 0 else f"exited with status {done.returncode}"
    return CheckOutcome(done.returncode == 0, done.returncode, seconds, note)
