"""Waiting in rds.encrypt, tested with a botocore Stubber sequence and a fake clock.

moto has no status transitions (a snapshot is ``available`` at once), so the polling of a phase is
tested here: a Stubber answers ``creating`` and then ``available``, and the step returns engine
Waits (never sleeps) until then. The context keeps checkpoints and resources in memory instead of
the state DB; the AWS client is the real botocore client of an AwsSession, stubbed.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from botocore.stub import ANY, Stubber

from migrate.aws import rds_settings as rs
from migrate.aws.session import AwsSession
from migrate.engine.base import Action, Estimate, Wait
from migrate.engine.context import StepContext
from migrate.errors import StepFailed
from migrate.steps.rds.encrypt import FINAL_SNAPSHOT, RdsEncrypt, RdsEncryptParams
from migrate.store.models import Resource

KEY = "arn:aws:kms:us-east-1:123456789012:key/11111111-2222-3333-4444-555555555555"
RUN = "r-20250101-abcdef"
DB = "orders"
RAW = rs.snapshot_id(RUN, DB, "final")
ENC = rs.snapshot_id(RUN, DB, "final", encrypted=True)


@dataclass
class MemoryContext(StepContext):
    """A StepContext whose checkpoints and resources live in memory (no state DB)."""

    saved: dict[str, dict[str, Any]] = field(default_factory=dict)
    recorded: dict[tuple[str, str], Resource] = field(default_factory=dict)
    results: dict[str, Any] = field(default_factory=dict)

    def record_result(self, **values: Any) -> None:
        self.results.update(values)

    def load_checkpoint(self, name: str = "main") -> dict[str, Any] | None:
        return self.saved.get(name)

    def checkpoint(
        self, cursor: Any, *, done: int, total: int | None = None, name: str = "main"
    ) -> None:
        self.saved[name] = {"cursor": dict(cursor), "done": done, "total": total}

    def record_resource(
        self,
        kind: str,
        identifier: str,
        *,
        change: str = "created",
        region: str | None = None,
        details: Any = None,
    ) -> None:
        self.recorded[(kind, identifier)] = Resource(
            kind=kind,
            identifier=identifier,
            change=change,
            region=region,
            details=dict(details or {}),
        )

    def resources(self, kind: str | None = None) -> Iterator[Resource]:
        return iter([r for (k, _), r in self.recorded.items() if kind in (None, k)])


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = datetime(2025, 1, 1, 12, 0, 0)

    def __call__(self) -> datetime:
        return self.now


def _setup(tmp_path: Path) -> tuple[RdsEncrypt, MemoryContext, Stubber, Clock]:
    aws = AwsSession(region="us-east-1", endpoint_url="http://127.0.0.1:9")
    ctx = MemoryContext(
        aws=aws, step_id="rds", regions=["us-east-1"], state_dir=tmp_path, run_id=RUN
    )
    step = RdsEncrypt(RdsEncryptParams(kms_key=KEY, poll_seconds=30, wait_timeout_hours=12))
    clock = Clock()
    step.clock = clock
    return step, ctx, Stubber(ctx.client("rds")), clock


def _snap(sid: str, status: str, pct: int, encrypted: bool = False) -> dict[str, Any]:
    return {
        "DBSnapshots": [
            {
                "DBSnapshotIdentifier": sid,
                "DBInstanceIdentifier": DB,
                "Status": status,
                "PercentProgress": pct,
                "Encrypted": encrypted,
            }
        ]
    }


def _missing(stub: Stubber, sid: str) -> None:
    stub.add_client_error(
        "describe_db_snapshots",
        service_error_code="DBSnapshotNotFound",
        http_status_code=404,
        expected_params={"DBSnapshotIdentifier": sid},
    )


def _available(stub: Stubber) -> None:
    """The unencrypted original, available (what a snapshot phase looks at first)."""
    stub.add_response(
        "describe_db_instances",
        {
            "DBInstances": [
                {
                    "DBInstanceIdentifier": DB,
                    "DBInstanceStatus": "available",
                    "StorageEncrypted": False,
                }
            ]
        },
        {"DBInstanceIdentifier": DB},
    )


ACTION = Action(
    kind=FINAL_SNAPSHOT,
    target=DB,
    summary="final",
    region="us-east-1",
    details={"allocated_gib": 100},
)


def test_snapshot_and_copy_poll_from_creating_to_available(tmp_path: Path) -> None:
    step, ctx, stub, clock = _setup(tmp_path)
    # Poll 1: nothing yet -> create the snapshot; it is `creating`.
    _missing(stub, ENC)
    _missing(stub, RAW)
    _available(stub)
    stub.add_response(
        "create_db_snapshot",
        {"DBSnapshot": {"DBSnapshotIdentifier": RAW, "Status": "creating"}},
        {"DBSnapshotIdentifier": RAW, "DBInstanceIdentifier": DB, "Tags": ANY},
    )
    stub.add_response(
        "describe_db_snapshots", _snap(RAW, "creating", 10), {"DBSnapshotIdentifier": RAW}
    )
    # Poll 2 (10 minutes later): snapshot available -> copy with the key; the copy is `creating`.
    _missing(stub, ENC)
    stub.add_response(
        "describe_db_snapshots", _snap(RAW, "available", 100), {"DBSnapshotIdentifier": RAW}
    )
    stub.add_response(
        "copy_db_snapshot",
        {"DBSnapshot": {"DBSnapshotIdentifier": ENC, "Status": "creating"}},
        {
            "SourceDBSnapshotIdentifier": RAW,
            "TargetDBSnapshotIdentifier": ENC,
            "KmsKeyId": KEY,
            "CopyTags": True,
        },
    )
    stub.add_response(
        "describe_db_snapshots", _snap(ENC, "creating", 0, True), {"DBSnapshotIdentifier": ENC}
    )
    # Poll 3 (25 minutes later): the encrypted copy is available -> done.
    stub.add_response(
        "describe_db_snapshots", _snap(ENC, "available", 100, True), {"DBSnapshotIdentifier": ENC}
    )

    with stub:
        first = step.act(ctx, ACTION)
        assert isinstance(first, Wait) and "creating (10%)" in first.reason
        assert first.poll_s == 30 and first.until == clock.now + timedelta(hours=12)
        clock.now += timedelta(minutes=10)
        second = step.act(ctx, ACTION)
        assert isinstance(second, Wait) and f"copy {ENC} creating (0%)" in second.reason
        clock.now += timedelta(minutes=25)
        assert step.act(ctx, ACTION) is None
        stub.assert_no_pending_responses()

    timing = ctx.recorded[("rds:timing", DB)].details["final"]
    assert timing["snapshot_s"] == 600.0 and timing["copy_s"] == 1500.0
    assert timing["duration_s"] == 2100.0
    assert ("rds:snapshot", RAW) in ctx.recorded and ("rds:snapshot", ENC) in ctx.recorded


def test_deadline_exceeded_fails_clearly_and_a_resume_waits_again(tmp_path: Path) -> None:
    step, ctx, stub, clock = _setup(tmp_path)
    _missing(stub, ENC)
    _missing(stub, RAW)
    _available(stub)
    stub.add_response("create_db_snapshot", {"DBSnapshot": {"DBSnapshotIdentifier": RAW}}, None)
    stub.add_response(
        "describe_db_snapshots", _snap(RAW, "creating", 5), {"DBSnapshotIdentifier": RAW}
    )
    # Past the 12 h deadline, still creating.
    _missing(stub, ENC)
    stub.add_response(
        "describe_db_snapshots", _snap(RAW, "creating", 40), {"DBSnapshotIdentifier": RAW}
    )
    # The resume: still creating, but within a fresh window; no second snapshot is created.
    _missing(stub, ENC)
    stub.add_response(
        "describe_db_snapshots", _snap(RAW, "creating", 41), {"DBSnapshotIdentifier": RAW}
    )

    with stub:
        assert isinstance(step.act(ctx, ACTION), Wait)
        clock.now += timedelta(hours=12, minutes=1)
        with pytest.raises(StepFailed) as failed:
            step.act(ctx, ACTION)
        assert "gave up after 12 h" in failed.value.message
        assert f"snapshot {RAW} creating (40%)" in failed.value.message
        assert "migrate resume" in failed.value.message
        clock.now += timedelta(minutes=1)
        again = step.act(ctx, ACTION)
        assert isinstance(again, Wait) and again.until == clock.now - timedelta(
            minutes=1
        ) + timedelta(hours=12)
        stub.assert_no_pending_responses()


@pytest.mark.parametrize(("estimate_h", "deadline_h"), [(10.0, 30.0), (0.1, 2.0)])
def test_by_default_the_deadline_follows_the_phases_estimate(
    tmp_path: Path, estimate_h: float, deadline_h: float
) -> None:
    """A copy estimated at 10 h may take 30 h before the phase gives up (a fixed 12 h would
    fail it mid-window); a short phase still gets 2 h."""
    _, ctx, stub, clock = _setup(tmp_path)
    step = RdsEncrypt(RdsEncryptParams(kms_key=KEY, poll_seconds=30))  # no wait_timeout_hours
    step.clock = clock
    action = Action(
        kind=FINAL_SNAPSHOT,
        target=DB,
        summary="final",
        region="us-east-1",
        details={"allocated_gib": 100},
        estimate=Estimate(duration_s=estimate_h * 3600),
    )
    _missing(stub, ENC)
    _missing(stub, RAW)
    _available(stub)
    stub.add_response("create_db_snapshot", {"DBSnapshot": {"DBSnapshotIdentifier": RAW}}, None)
    stub.add_response(
        "describe_db_snapshots", _snap(RAW, "creating", 5), {"DBSnapshotIdentifier": RAW}
    )
    with stub:
        wait = step.act(ctx, action)
    assert isinstance(wait, Wait) and wait.until == clock.now + timedelta(hours=deadline_h)
