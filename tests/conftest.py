"""Shared fixtures: one moto server (server mode, 127.0.0.1) for the whole session, reset per test.

Tests never read the developer's ~/.aws: the environment points at fake credentials and empty
config files, and every AWS call goes to the moto server through AWS_ENDPOINT_URL.

State stores: a test gets a SQLite store by default. A module marked ``both_stores`` runs each of
its tests on SQLite and on PostgreSQL (``test_x[sqlite]``, ``test_x[postgresql]``); the PostgreSQL
server is started once per session by ``pg_server`` (``tests/pgserver.py``), and each test gets a
database of its own. If the server cannot start, those tests fail with the reason; they never skip.
"""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

from migrate.commands import Settings
from migrate.sandbox.server import SandboxServer
from tests.pgserver import PostgresServer, PostgresUnavailable

ROOT = Path(__file__).resolve().parent.parent
PLAYBOOKS = ROOT / "playbooks"
STORE_ENGINES = ("sqlite", "postgresql")


def pytest_configure(config: pytest.Config) -> None:
    # A suite started in the background of a non-interactive shell (`make test &`, some CI
    # runners) inherits SIGINT *ignored*, and so would every migrate process the tests start:
    # the Ctrl-C tests would then see a run that never stops. A Python handler is reset to the
    # default at exec, so installing one here gives the children a normal Ctrl-C.
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    config.addinivalue_line(
        "markers",
        "both_stores(*engines): run each test on a SQLite and on a PostgreSQL state store "
        "(or on the engines named)",
    )


# The longest test files (minutes each on the 2-core CI machine). They are collected first so
# that the xdist workers start them at once, instead of one of them starting last and the
# whole suite waiting for it (longest-first scheduling).
SLOW_FIRST = (
    "tests/functional/test_faults.py",
    "tests/e2e/test_crash_sweep.py",
    "tests/e2e/test_s3_reencrypt_crash.py",
    "tests/functional/test_plan_contract.py",
    "tests/e2e/test_crash_and_lock.py",
    "tests/e2e/test_cli_flows.py",
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        path = Path(str(item.path)).resolve()
        for i, slow in enumerate(SLOW_FIRST):
            if path == ROOT / slow:
                return i
        return len(SLOW_FIRST)

    items.sort(key=rank)  # stable: the order within a file and among the rest is kept


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    marker = metafunc.definition.get_closest_marker("both_stores")
    if "store_engine" in metafunc.fixturenames and marker is not None:
        # A test may narrow its module's both_stores to one engine: @both_stores("postgresql").
        metafunc.parametrize("store_engine", marker.args or STORE_ENGINES, indirect=True)


@pytest.fixture(scope="session", autouse=True)
def _isolated_aws_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """No test sees the developer's AWS profile, credentials or config."""
    empty = tmp_path_factory.mktemp("aws") / "empty"
    empty.write_text("")
    saved = dict(os.environ)
    for name in list(os.environ):
        if name.startswith("AWS_") or name == "MIGRATE_STATE":
            del os.environ[name]
    os.environ["AWS_CONFIG_FILE"] = str(empty)
    os.environ["AWS_SHARED_CREDENTIALS_FILE"] = str(empty)
    os.environ["AWS_ACCESS_KEY_ID"] = "AKIATESTOPERATOR0001"
    os.environ["AWS_SECRET_ACCESS_KEY"] = "test-operator-secret-not-real"
    os.environ["AWS_DEFAULT_REGION"] = "us-east-1"
    os.environ["AWS_MAX_ATTEMPTS"] = "2"
    yield
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture(scope="session")
def moto_server(_isolated_aws_env: None) -> Iterator[SandboxServer]:
    """The one moto server of the session, with request recording enabled."""
    server = SandboxServer(recording=True)
    server.start()
    yield server
    server.stop()


@pytest.fixture()
def endpoint(moto_server: SandboxServer, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh (reset) account on the shared server; AWS_ENDPOINT_URL points at it."""
    moto_server.reset()
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server.endpoint_url)
    return moto_server.endpoint_url


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresServer]:
    """The session's PostgreSQL server (started on first use); fails, never skips, without one."""
    server = PostgresServer()
    atexit.register(server.stop)  # also when the session is interrupted before its teardown
    try:
        server.start()
    except (PostgresUnavailable, OSError, subprocess.SubprocessError) as exc:
        server.stop()
        pytest.fail(f"the PostgreSQL test server could not start: {exc}", pytrace=False)
    yield server
    server.stop()


@pytest.fixture()
def store_engine(request: pytest.FixtureRequest) -> str:
    """``sqlite`` or ``postgresql``: the engine of the test's state stores (see ``both_stores``).

    ``MIGRATE_TEST_STORE=postgresql`` makes PostgreSQL the default of every other test too, to try
    a step's tests on it (tests that open the SQLite file themselves then fail, as they should)."""
    return str(getattr(request, "param", os.environ.get("MIGRATE_TEST_STORE", "sqlite")))


@pytest.fixture()
def new_state(
    store_engine: str,
    tmp_path: Path,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Callable[[str], str]]:
    """``new_state("name")`` -> the ``--state`` of a new, empty store on the test's engine."""
    made: list[str] = []
    server: PostgresServer | None = None
    if store_engine == "postgresql":
        server = request.getfixturevalue("pg_server")
        # Plans, backups and reports go to ./state when the store is not a file: keep them here.
        monkeypatch.chdir(tmp_path)

    def make(name: str = "migrate") -> str:
        if server is None:
            return str(tmp_path / "state" / f"{name}.db")
        made.append(server.create_database(name.replace("-", "_")))
        return made[-1]

    yield make
    for url in made:
        assert server is not None
        server.drop_database(url)


@pytest.fixture()
def state_url(new_state: Callable[[str], str]) -> str:
    """The ``--state`` of the test's own store (a SQLite path, or a PostgreSQL URL)."""
    return new_state("migrate")


@pytest.fixture()
def settings(endpoint: str, state_url: str) -> Settings:
    """Settings of a quiet migrate with its own state store, pointed at the moto server."""
    return Settings(
        state=state_url,
        endpoint_url=endpoint,
        region="us-east-1",
        quiet=True,
    )


def client(service: str, endpoint: str, region: str = "us-east-1") -> Any:
    """A test-side boto3 client on the moto server (fails fast)."""
    return boto3.client(
        service,
        region_name=region,
        endpoint_url=endpoint,
        config=Config(retries={"max_attempts": 1}),
    )


@pytest.fixture()
def aws(endpoint: str) -> Any:
    """``aws("s3")`` -> a boto3 client on the test's fresh account."""

    def make(service: str, region: str = "us-east-1") -> Any:
        return client(service, endpoint, region)

    return make


def run_cli(
    *args: str,
    state: Path | str | None = None,
    endpoint: str | None = None,
    timeout: float = 120,
    check: bool = False,
    input: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run the `migrate` console script as a subprocess."""
    env = dict(os.environ)
    if endpoint:
        env["AWS_ENDPOINT_URL"] = endpoint
    if state is not None:
        env["MIGRATE_STATE"] = str(state)
    exe = shutil.which("migrate", path=str(Path(sys.executable).parent)) or "migrate"
    proc = subprocess.run(
        [exe, *args], env=env, capture_output=True, text=True, timeout=timeout, input=input
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"migrate {' '.join(args)} -> {proc.returncode}\n{proc.stderr}")
    return proc


_probe_engines: dict[str, Any] = {}


def query_state(state: Path | str, sql: str) -> list[tuple[Any, ...]]:
    """Read a state store from outside the process writing it (SQLite read-only, or PostgreSQL);
    ``[]`` while it does not exist or has no schema yet."""
    if "://" not in str(state):
        if not Path(state).exists():
            return []
        conn = sqlite3.connect(f"file:{state}?mode=ro", uri=True, timeout=5)
        try:
            return conn.execute(sql).fetchall()
        except sqlite3.OperationalError:
            return []  # schema not created yet
        finally:
            conn.close()
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import DBAPIError

    url = str(state)
    if url not in _probe_engines:
        _probe_engines[url] = create_engine(url)
    try:
        with _probe_engines[url].connect() as conn:
            return [tuple(row) for row in conn.execute(text(sql))]
    except DBAPIError:
        return []  # schema not created yet


def write_playbook(path: Path, text: str) -> Path:
    """Write a playbook file for a test and return its path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path
