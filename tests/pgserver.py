"""A throw-away PostgreSQL server for the tests: initdb + pg_ctl in a temp dir, 127.0.0.1, free port.

The tests that run on both state-store engines need a real server. ``.ci/run`` and ``make test``
need nothing started beforehand: the session fixture in ``tests/conftest.py`` starts this one.

PostgreSQL refuses to run as root, and CI runs as root: then the server runs as the ``postgres``
system user (Debian's package creates it), else as ``nobody``, in a temp dir that user owns.
``MIGRATE_TEST_PG_URL`` (a superuser URL) points the tests at an existing server instead.

If the server cannot start, :class:`PostgresUnavailable` says why; the tests that need it fail
with that message (they never skip: a green run must mean both engines were tested).
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

# The superuser's password. It is in every test URL so that tests can check that it is never
# printed; it is not a secret (the server listens on 127.0.0.1 only and lives for one session).
PASSWORD = "pg-test-Pa55word-never-printed"
USER = "migrate"


class PostgresUnavailable(RuntimeError):
    """The test server could not be started; the message says why and how to fix it."""


def _binary(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    for candidate in sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), reverse=True):
        return str(candidate)
    raise PostgresUnavailable(
        f"{name} was not found (PATH or /usr/lib/postgresql/*/bin). Install the PostgreSQL "
        "server (Debian: apt-get install postgresql; .ci/run does it), or set "
        "MIGRATE_TEST_PG_URL to a superuser URL of a running server."
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _server_user() -> pwd.struct_passwd | None:
    """Who runs the server: None (ourselves) unless we are root, whom initdb refuses."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise PostgresUnavailable(
        "running as root and there is neither a 'postgres' nor a 'nobody' user to run the "
        "PostgreSQL test server as (initdb refuses root). Create one: useradd -r postgres."
    )


class PostgresServer:
    """One PostgreSQL cluster for the test session; a fresh database per test."""

    def __init__(self) -> None:
        self.port = 0
        self.base: Path | None = None
        self.external = os.environ.get("MIGRATE_TEST_PG_URL")
        self._user = None if self.external else _server_user()

    # -- lifecycle -------------------------------------------------------------------------------
    def _run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        extra: dict[str, Any] = {}
        if self._user is not None:
            extra = {"user": self._user.pw_uid, "group": self._user.pw_gid, "extra_groups": []}
        # Never inherit a terminal or the test's PG* variables.
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env["LC_ALL"] = "C"
        return subprocess.run(
            list(args),
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=str(self.base or "/"),
            **extra,
        )

    def start(self) -> None:
        """initdb, then pg_ctl start on a free port; raises PostgresUnavailable with the reason."""
        if self.external:
            return
        initdb, pg_ctl = _binary("initdb"), _binary("pg_ctl")
        self.base = Path(tempfile.mkdtemp(prefix="migrate-pg-"))
        data = self.base / "data"
        pwfile = self.base / "pwfile"
        pwfile.write_text(PASSWORD + "\n")
        if self._user is not None:
            os.chown(self.base, self._user.pw_uid, self._user.pw_gid)
            os.chown(pwfile, self._user.pw_uid, self._user.pw_gid)
        init = self._run(
            initdb,
            "-D",
            str(data),
            "-U",
            USER,
            f"--pwfile={pwfile}",
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            "-E",
            "UTF8",
            "--no-sync",
        )
        if init.returncode != 0:
            raise PostgresUnavailable(f"initdb failed ({init.returncode}): {init.stderr.strip()}")
        for attempt in range(3):
            self.port = _free_port()
            options = " ".join(
                [
                    "-c listen_addresses=127.0.0.1",
                    f"-p {self.port}",
                    f"-k {self.base}",
                    "-c max_connections=300",
                    # A test server: durability is SQLite's and production's business, not this.
                    "-c fsync=off",
                    "-c synchronous_commit=off",
                    "-c full_page_writes=off",
                ]
            )
            started = self._run(
                pg_ctl,
                "-D",
                str(data),
                "-l",
                str(self.base / "server.log"),
                "-w",
                "-t",
                "60",
                "-o",
                options,
                "start",
            )
            if started.returncode == 0:
                return
            if attempt == 2:
                log = (self.base / "server.log").read_text(errors="replace")[-2000:]
                raise PostgresUnavailable(
                    f"pg_ctl start failed ({started.returncode}): {started.stderr.strip()}\n{log}"
                )
            time.sleep(0.5)  # most likely the port was taken in between: try another

    def stop(self) -> None:
        """Stop the server (immediately: its data is thrown away) and remove its directory."""
        if self.external or self.base is None:
            return
        try:
            self._run(_binary("pg_ctl"), "-D", str(self.base / "data"), "-m", "immediate", "stop")
        finally:
            shutil.rmtree(self.base, ignore_errors=True)
            self.base = None

    # -- databases -------------------------------------------------------------------------------
    def url(self, database: str = "postgres") -> str:
        """A psycopg URL of ``database`` as the superuser (with the password in it)."""
        if self.external:
            base = self.external.rsplit("/", 1)[0]
            return f"{base}/{database}".replace("postgresql://", "postgresql+psycopg://", 1)
        return f"postgresql+psycopg://{USER}:{PASSWORD}@127.0.0.1:{self.port}/{database}"

    @contextmanager
    def _admin(self) -> Iterator[Any]:
        import psycopg

        conninfo = self.url().replace("postgresql+psycopg://", "postgresql://", 1)
        with psycopg.connect(conninfo, autocommit=True, connect_timeout=10) as conn:
            yield conn

    def create_database(self, prefix: str = "t") -> str:
        """A new empty database; returns its URL."""
        name = f"{prefix}_{uuid.uuid4().hex[:10]}"
        with self._admin() as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def drop_database(self, url: str) -> None:
        """Drop a database made by :meth:`create_database`, closing what still uses it."""
        name = url.rsplit("/", 1)[1].split("?", 1)[0]
        with self._admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
