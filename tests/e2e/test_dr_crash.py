"""dr.restore_test survives SIGKILL between its actions: after `migrate resume` no drill copy,
subnet group or security group is left, and exactly one copy was ever created."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from migrate.store import open_store
from migrate.store.models import JournalEntry
from tests.conftest import run_cli, write_playbook
from tests.e2e.test_keys_to_roles_crash import _kill_before_action
from tests.functional.test_dr_restore_test import BUCKET, DB, _account, _drill_copies

pytestmark = pytest.mark.e2e
BOOK = f"""\
name: dr crash
steps:
  - id: dr
    uses: dr.restore_test
    with:
      names: [{DB}]
      buckets: [{BUCKET}]
      check_endpoint: false
"""


# Prompts: 1 restore, 2 check, 3 teardown, 4 network teardown, 5 s3 restore, 6 s3 teardown.
@pytest.mark.parametrize("kill_at", [2, 3, 4])
def test_sigkill_during_a_drill_then_resume_leaves_nothing_running(
    endpoint: str, aws: Any, tmp_path: Path, kill_at: int
) -> None:
    _account(aws)
    book = write_playbook(tmp_path / "dr.yaml", BOOK)
    db = tmp_path / "dr.db"
    _kill_before_action(book, db, endpoint, kill_at)
    # Killed mid-drill: before the teardown the copy is running, after it the network is left.
    assert len(_drill_copies(aws)) == (1 if kill_at <= 3 else 0)
    groups = aws("rds").describe_db_subnet_groups()["DBSubnetGroups"]
    assert len(groups) == 2  # production's and the drill's

    run_id = json.loads(run_cli("status", "--json", state=db).stdout)["runs"][0]["id"]
    resumed = run_cli("-q", "resume", run_id, "--yes", state=db, endpoint=endpoint, timeout=300)
    assert resumed.returncode == 0, resumed.stderr

    assert _drill_copies(aws) == []
    assert [
        g["DBSubnetGroupName"] for g in aws("rds").describe_db_subnet_groups()["DBSubnetGroups"]
    ] == ["orders-subnets"]
    tagged = aws("ec2").describe_security_groups(
        Filters=[{"Name": "tag-key", "Values": ["migrate:dr-test"]}]
    )["SecurityGroups"]
    assert tagged == []
    store = open_store(f"sqlite:///{db}")
    with store.read() as session:
        ops = [j.operation for j in session.scalars(select(JournalEntry))]
    assert ops.count("RestoreDBInstanceToPointInTime") == 1
    assert ops.count("CreateSecurityGroup") == 1
