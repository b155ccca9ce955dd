"""After the cut-over the database under the original name has exactly the original's tags
(Terraform/CloudFormation see no drift, cost reports no noise); the ``migrate:*`` bookkeeping
lives on the retired original, the snapshots and in the state store."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from migrate.aws import rds_settings as rs
from migrate.steps.rds.encrypt import CUT_OVER, FINAL_SNAPSHOT, RESTORE, VERIFY
from tests.functional.test_rds_crash_windows import RUN, _act, _setup
from tests.functional.test_rds_encrypt import DB


def _tags(aws: Any, db_id: str) -> dict[str, str]:
    desc = aws("rds").describe_db_instances(DBInstanceIdentifier=db_id)["DBInstances"][0]
    return {t["Key"]: t["Value"] for t in desc.get("TagList") or ()}


def test_the_migrated_database_has_exactly_the_original_tags(
    endpoint: str, aws: Any, tmp_path: Path
) -> None:
    step, ctx, details = _setup(endpoint, aws, tmp_path)
    before = _tags(aws, DB)
    assert before == {"team": "orders", "env": "prod"}
    for kind in (FINAL_SNAPSHOT, RESTORE, VERIFY, CUT_OVER):
        _act(step, ctx, kind, details)
    assert _tags(aws, DB) == before
    retired = ctx.recorded[("rds:renamed", DB)].details["renamed_to"]
    assert _tags(aws, retired)[rs.TAG_RUN] == RUN
    assert _tags(aws, retired)[rs.TAG_ROLE] == "retired-original"
    # Rolled back, the original is back under its name with its own tags only.
    step.rollback(ctx)
    desc = aws("rds").describe_db_instances(DBInstanceIdentifier=DB)["DBInstances"][0]
    assert not desc.get("StorageEncrypted")
    assert _tags(aws, DB) == before
