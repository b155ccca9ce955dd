"""Shared fixtures: one moto server (server mode, 127.0.0.1) for the whole session, reset per test.

Tests never read the developer's ~/.aws: the environment points at fake credentials and empty
config files, and every AWS call goes to the moto server through AWS_ENDPOINT_URL.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

from migrate.commands import Settings
from migrate.sandbox.server import SandboxServer

ROOT = Path(__file__).resolve().parent.parent
PLAYBOOKS = ROOT / "playbooks"


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


@pytest.fixture()
def settings(endpoint: str, tmp_path: Path) -> Settings:
    """Settings of a quiet migrate with its own state store, pointed at the moto server."""
    return Settings(
        state=str(tmp_path / "state" / "migrate.db"),
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
    state: Path | None = None,
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


def write_playbook(path: Path, text: str) -> Path:
    """Write a playbook file for a test and return its path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path
