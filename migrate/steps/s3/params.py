"""Parameters of ``s3.reencrypt`` (shared by the step, its worker, its ledger and its batch lane)."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, model_validator

from migrate.engine.selection import Selection
from migrate.steps.s3 import objects as so

MiB = 1024**2
ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/.+$")


class ReencryptParams(Selection):
    """Parameters of ``s3.reencrypt``."""

    kms_key: str = Field(min_length=1)
    bucket_key: bool = True
    rekey: bool = False
    lane: Literal["auto", "copy", "update"] = "auto"
    noncurrent_versions: Literal["report", "delete"] = "report"
    concurrency: int = Field(default=64, ge=1, le=256)
    # 0: no fixed cap; the shared limiter starts unlimited and halves its rate on every
    # SlowDown/503, climbing back additively (AIMD), so it finds what the bucket sustains.
    max_rps: float = Field(default=0.0, ge=0)
    batch_size: int = Field(default=1000, ge=1, le=1000)
    multipart_threshold: int = Field(default=so.FIVE_GB, ge=5 * MiB, le=so.FIVE_GB)
    part_size: int = Field(default=512 * MiB, ge=5 * MiB, le=so.FIVE_GB)
    max_failures: int = Field(default=100, ge=0)
    # Every copy is checked by its own response (ServerSideEncryption, SSEKMSKeyId); the
    # verification HEADs a uniform sample on top, to catch what changed after the run.
    verify_sample: float = Field(default=0.05, ge=0.0, le=1.0)
    # A uniform sample for the plan's estimates (the run HEADs every object anyway); a
    # bucket larger than this always gets its action, as a sample never proves compliance.
    plan_head_limit: int = Field(default=200, ge=0)
    inventory: bool = True
    inventory_max_age_h: float = Field(default=48.0, gt=0)
    mode: Literal["objects", "batch"] = "objects"
    batch_role_arn: str | None = None
    batch_bucket: str | None = None
    batch_prefix: str = Field(default="migrate-s3-batch", min_length=1)
    batch_report: Literal["FailedTasksOnly", "AllTasks"] = "FailedTasksOnly"
    batch_priority: int = Field(default=10, ge=0, le=2_147_483_647)
    batch_poll_s: float = Field(default=60.0, ge=1.0)

    @model_validator(mode="after")
    def _batch_needs_a_role_and_a_bucket(self) -> ReencryptParams:
        """``mode: batch`` cannot run without the job's role and the manifest/report bucket."""
        if self.mode != "batch":
            return self
        missing = [n for n in ("batch_role_arn", "batch_bucket") if not getattr(self, n)]
        if missing:
            raise ValueError(
                f"mode: batch needs {' and '.join(missing)}: the IAM role S3 Batch Operations "
                "assumes to copy (trusting batchoperations.s3.amazonaws.com) and the bucket "
                "that receives the manifests and completion reports"
            )
        role = str(self.batch_role_arn)
        if role.startswith("arn:") and not ROLE_ARN.match(role):
            raise ValueError(f"batch_role_arn {role!r} is not an IAM role ARN")
        return self
