"""Crashes between an RDS call and the state that records it (issue 18's crash windows).

A real crash is a SIGKILL after AWS accepted a call and before the run committed anything about
it. Here a botocore ``after-call`` hook raises right after the moto server answered one chosen
call: the server has acted, the step never sees the answer. The phase is then called again (as
``migrate resume`` does with an action left ``started``), and the run must reach the same end
state as an uninterrupted one: cut over and cleaned up, or rolled back, with nothing left behind.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from migrate.aws import rds_settings as rs
from migrate.aws.session import AwsSession
from migrate.engine.base import Action
from migrate.steps.rds.encrypt import (
    CLEANUP,
    CUT_OVER,
    FINAL_SNAPSHOT,
    RESTORE,
    VERIFY,
    RdsEncrypt,
    RdsEncryptParams,
)
from tests.functional.test_rds_encrypt import DB, _mysql
from tests.unit.test_rds_waits import MemoryContext

RUN = "r-crash-2"


class Crash(BaseException):
    """What a SIGKILL looks like to the code under test: nothing after the call runs."""


def _crash_after(client: Any, operation: str, when: Any = lambda params: True) -> None:
    """Raise Crash once, right after the server answered ``operation`` (if ``when(params)``)."""
    sent: dict[str, Any] = {}
    fired: list[bool] = []

    def remember(params: Any, **_: Any) -> None:
        sent.clear()
        sent.update(params)

    def crash(**_: Any) -> None:
        if not fired and when(sent):
            fired.append(True)
            raise Crash(operation)

    client.meta.events.register(f"provide-client-params.rds.{operation}", remember)
    client.meta.events.register(f"after-call.rds.{operation}", crash)


def _setup(endpoint: str, aws: Any, tmp_path: Path) -> tuple[RdsEncrypt, MemoryContext, Any]:
    original = _mysql(aws, replica=False)
    # Deletion protection off, so that cleanup runs without the extra parameter.
    aws("rds").modify_db_instance(
        DBInstanceIdentifier=DB, DeletionProtection=False, ApplyImmediately=True
    )
    key_arn = aws("kms").create_key()["KeyMetadata"]["Arn"]
    session = AwsSession(region="us-east-1", endpoint_url=endpoint)
    ctx = MemoryContext(
        aws=session, step_id="rds-encrypt", regions=["us-east-1"], state_dir=tmp_path, run_id=RUN
    )
    step = RdsEncrypt(RdsEncryptParams(kms_key=key_arn, poll_seconds=0))
    original["DeletionProtection"] = False
    details = {"settings": rs.instance_settings(original), "allocated_gib": 200}
    return step, ctx, details


def _act(step: RdsEncrypt, ctx: MemoryContext, kind: str, details: dict[str, Any]) -> None:
    """One action to its end (moto has no transitions: a phase needs a poll or two), with its
    own checkpoints, as the runner keeps them per action; they survive a Crash."""
    action = Action(kind=kind, target=DB, summary=kind, region="us-east-1", details=details)
    ctx.saved = PHASES.setdefault((id(ctx), kind), {})
    for _ in range(5):
        if step.act(ctx, action) is None:
            return
    pytest.fail(f"{kind} did not finish")


PHASES: dict[tuple[int, str], dict[str, Any]] = {}


def _crashing(step: RdsEncrypt, ctx: MemoryContext, kind: str, details: dict[str, Any]) -> None:
    with pytest.raises(Crash):
        _act(step, ctx, kind, details)


def _instances(aws: Any) -> dict[str, bool]:
    return {
        d["DBInstanceIdentifier"]: bool(d.get("StorageEncrypted"))
        for d in aws("rds").describe_db_instances()["DBInstances"]
    }


def _snapshots(aws: Any) -> dict[str, bool]:
    return {
        s["DBSnapshotIdentifier"]: bool(s.get("Encrypted"))
        for s in aws("rds").describe_db_snapshots(SnapshotType="manual")["DBSnapshots"]
    }


def test_crash_right_after_the_original_is_renamed_resumes_to_a_cleaned_up_cut_over(
    endpoint: str, aws: Any, tmp_path: Path
) -> None:
    step, ctx, details = _setup(endpoint, aws, tmp_path)
    for kind in (FINAL_SNAPSHOT, RESTORE, VERIFY):
        _act(step, ctx, kind, details)
    rds = ctx.client("rds", "us-east-1")
    _crash_after(rds, "ModifyDBInstance", lambda p: p.get("DBInstanceIdentifier") == DB)
    _crashing(step, ctx, CUT_OVER, details)
    assert DB not in _instances(aws)  # the original was renamed aside, the answer lost
    _act(step, ctx, CUT_OVER, details)  # resume
    _act(step, ctx, CLEANUP, details)
    # The encrypted copy holds the name; the unencrypted original is gone (its final snapshot
    # kept); no unencrypted intermediate snapshot is left.
    assert _instances(aws) == {DB: True}
    snaps = _snapshots(aws)
    assert snaps.pop(rs.snapshot_id(RUN, DB, "original-final")) is False
    assert all(snaps.values()), snaps


def test_crash_right_after_the_final_snapshot_leaves_nothing_after_rollback(
    endpoint: str, aws: Any, tmp_path: Path
) -> None:
    step, ctx, details = _setup(endpoint, aws, tmp_path)
    rds = ctx.client("rds", "us-east-1")
    _crash_after(rds, "CreateDBSnapshot")
    _crashing(step, ctx, FINAL_SNAPSHOT, details)
    assert rs.snapshot_id(RUN, DB, "final") in _snapshots(aws)
    _act(step, ctx, FINAL_SNAPSHOT, details)  # resume adopts the snapshot, copies it
    step.rollback(ctx)
    assert _snapshots(aws) == {}
    assert _instances(aws) == {DB: False}


def test_crash_right_after_the_restore_leaves_nothing_after_rollback(
    endpoint: str, aws: Any, tmp_path: Path
) -> None:
    step, ctx, details = _setup(endpoint, aws, tmp_path)
    _act(step, ctx, FINAL_SNAPSHOT, details)
    rds = ctx.client("rds", "us-east-1")
    _crash_after(rds, "RestoreDBInstanceFromDBSnapshot")
    _crashing(step, ctx, RESTORE, details)
    assert rs.temp_id(DB, RUN) in _instances(aws)
    step.rollback(ctx)  # rolled back straight after the crash, without a resume
    assert _instances(aws) == {DB: False}
    assert _snapshots(aws) == {}


def test_a_create_or_delete_whose_answer_was_lost_is_recognised_as_done(aws: Any) -> None:
    """A 500 after the server acted: the create is sent again and AWS answers AlreadyExists, or
    the delete again and AWS answers NotFound; both are done, not failures."""
    from migrate.aws import rds as api

    _mysql(aws, replica=False)
    rds = aws("rds")
    assert api.create_db_snapshot(rds, "migrate-lost-answer", DB, {}) is True
    assert api.create_db_snapshot(rds, "migrate-lost-answer", DB, {}) is False
    assert api.delete_db_snapshot(rds, "migrate-lost-answer") is True
    assert api.delete_db_snapshot(rds, "migrate-lost-answer") is False
