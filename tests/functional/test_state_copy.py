"""`migrate state copy`: a laptop's SQLite store moves to PostgreSQL with its runs, and the team
goes on from there (approve + resume on the copy); and back, for a backup."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from migrate import commands
from migrate.cli import cli
from migrate.commands import Settings
from migrate.engine.lock import RunLock
from migrate.engine.runner import RunOptions
from migrate.errors import LockedError, NotFoundError, StoreError
from migrate.store import open_store
from migrate.store.copy import row_counts
from tests.conftest import write_playbook
from tests.pgserver import PASSWORD, PostgresServer

GATED = """\
name: gated
steps:
  - id: kms
    uses: kms.ensure_key
  - id: s3
    uses: s3.default_encryption
    approve: true
    with:
      kms_key: "{{ steps.kms.key_arn }}"
"""


def _status(settings: Settings, run_id: str) -> dict[str, Any]:
    return commands.status(settings, run_id)


def test_copy_sqlite_to_postgres_then_the_team_goes_on(
    settings: Settings, aws: Any, tmp_path: Path, pg_server: PostgresServer
) -> None:
    for bucket in ("copy-a", "copy-b"):
        aws("s3").create_bucket(Bucket=bucket)
    book = write_playbook(tmp_path / "g.yaml", GATED)
    first = commands.run(settings, str(book), options=RunOptions(quiet=True))
    assert first.status == "awaiting-approval"
    commands.approve(settings, first.run_id, "s3", target="copy-a")
    assert commands.resume(settings, first.run_id, RunOptions(quiet=True)).exit_code == 3
    commands.plan(settings, str(book))
    before = _status(settings, first.run_id)

    url = pg_server.create_database("copy")
    result = CliRunner().invoke(cli, ["--state", str(settings.state), "state", "copy", "--to", url])
    assert result.exit_code == 0, result.output
    assert "1 runs, 1 plans" in result.output and PASSWORD not in result.output
    assert row_counts(open_store(settings.state)) == row_counts(open_store(url))

    team = Settings(**{**settings.__dict__, "state": url})
    assert _status(team, first.run_id) == before
    # The team approves and resumes on the new store: new rows get fresh ids after the copied ones.
    commands.approve(team, first.run_id, "s3")
    final = commands.resume(team, first.run_id, RunOptions(quiet=True))
    assert final.status == "done"
    after = _status(team, first.run_id)
    assert [a["target"] for a in after["approvals"]] == ["copy-a", None]
    assert after["journal_entries"] > before["journal_entries"]
    # The laptop's store is left as it was.
    assert _status(settings, first.run_id) == before

    # And back to a file (a backup of the team's store), identical row for row.
    backup = tmp_path / "backup" / "migrate.db"
    copied = commands.copy_state(url, str(backup))
    assert copied["rows"] == row_counts(open_store(url))
    assert _status(Settings(**{**settings.__dict__, "state": str(backup)}), first.run_id) == after


def test_copy_refuses_a_non_empty_target_a_live_run_and_a_missing_source(
    settings: Settings, tmp_path: Path, pg_server: PostgresServer
) -> None:
    book = write_playbook(
        tmp_path / "w.yaml", "name: w\nsteps:\n  - id: soak\n    uses: core.wait\n"
    )
    run = commands.run(settings, str(book), options=RunOptions(quiet=True, max_wait_s=0))
    url = pg_server.create_database("full")
    commands.copy_state(settings.state, url)
    with pytest.raises(StoreError, match=r"is not empty: .*runs \(1\)"):
        commands.copy_state(settings.state, url)

    with (
        RunLock(open_store(settings.state), run.run_id),
        pytest.raises(LockedError, match="is in progress"),
    ):
        commands.copy_state(settings.state, pg_server.create_database("busy"))

    with pytest.raises(NotFoundError, match="no state store at"):
        commands.copy_state(str(tmp_path / "nothing.db"), url)
    result = CliRunner().invoke(cli, ["state", "copy", "--from", url, "--to", url, "--json"])
    assert result.exit_code == 2 and "same store" in result.output
    assert PASSWORD not in result.output and "migrate:***@" in result.output


def test_copy_as_json(settings: Settings, tmp_path: Path) -> None:
    open_store(settings.state).close()
    result = CliRunner().invoke(
        cli,
        ["state", "copy", "--from", str(settings.state), "--to", str(tmp_path / "b.db"), "--json"],
    )
    assert result.exit_code == 0, result.output
    body = json.loads(result.output)
    assert body["rows"]["runs"] == 0 and body["schema_version"]
