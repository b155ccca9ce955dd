"""cloudtrail.archive against the moto server, through the Python API.

moto never delivers logs and treats a bucket policy statement with ``Principal: "*"`` and a
Condition (our TLS-only deny) as matching every request, so object calls on the archive bucket
answer 403 after the run: these tests read only bucket-level settings of the archive, never its
objects.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from migrate import commands
from migrate.commands import Settings
from migrate.engine.runner import RunOptions
from tests.conftest import PLAYBOOKS, write_playbook

ACCOUNT = "123456789012"
ARCHIVE = f"migrate-cloudtrail-archive-{ACCOUNT}-us-east-1"
BOOK = str(PLAYBOOKS / "cloudtrail-archive.yaml")


def _book(tmp_path: Path, **with_: Any) -> str:
    lines = "".join(f"      {k}: {json.dumps(v)}\n" for k, v in with_.items())
    return str(
        write_playbook(
            tmp_path / "archive.yaml",
            "name: archive\nsteps:\n  - id: kms\n    uses: kms.ensure_key\n"
            "  - id: archive\n    uses: cloudtrail.archive\n    with:\n"
            '      kms_key: "{{ steps.kms.key_arn }}"\n' + lines,
        )
    )


def _key_arn(aws: Any) -> str:
    kms = aws("kms")
    alias = next(a for a in kms.list_aliases()["Aliases"] if a["AliasName"] == "alias/migrate-ftr")
    return str(kms.describe_key(KeyId=alias["TargetKeyId"])["KeyMetadata"]["Arn"])


def test_archive_trail_is_multi_region_validated_encrypted_and_locked(
    settings: Settings, aws: Any
) -> None:
    result = commands.run(settings, BOOK, options=RunOptions(quiet=True))
    assert result.status == "done", result
    key_arn = _key_arn(aws)
    trail_arn = f"arn:aws:cloudtrail:us-east-1:{ACCOUNT}:trail/migrate-archive"

    ct = aws("cloudtrail")
    trail = ct.describe_trails(trailNameList=["migrate-archive"])["trailList"][0]
    assert trail["IsMultiRegionTrail"] and trail["LogFileValidationEnabled"]
    assert trail["KmsKeyId"] == key_arn and trail["S3BucketName"] == ARCHIVE
    assert ct.get_trail_status(Name="migrate-archive")["IsLogging"] is True
    selectors = ct.get_event_selectors(TrailName="migrate-archive")["EventSelectors"]
    assert selectors == [
        {"ReadWriteType": "All", "IncludeManagementEvents": True, "DataResources": []}
    ]

    s3 = aws("s3")
    assert s3.get_bucket_versioning(Bucket=ARCHIVE)["Status"] == "Enabled"
    lock = s3.get_object_lock_configuration(Bucket=ARCHIVE)["ObjectLockConfiguration"]
    assert lock["ObjectLockEnabled"] == "Enabled"
    assert lock["Rule"]["DefaultRetention"]["Mode"] == "GOVERNANCE"
    assert lock["Rule"]["DefaultRetention"]["Days"] == 365
    rules = s3.get_bucket_lifecycle_configuration(Bucket=ARCHIVE)["Rules"]
    assert rules[0]["Transitions"] == [{"Days": 90, "StorageClass": "GLACIER"}]
    policy = json.loads(s3.get_bucket_policy(Bucket=ARCHIVE)["Policy"])
    by_sid = {s["Sid"]: s for s in policy["Statement"]}
    write = by_sid["MigrateCloudTrailWrite"]
    assert write["Principal"] == {"Service": "cloudtrail.amazonaws.com"}
    assert write["Condition"]["StringEquals"]["aws:SourceArn"] == trail_arn
    assert write["Condition"]["StringEquals"]["aws:SourceAccount"] == ACCOUNT
    assert write["Resource"] == f"arn:aws:s3:::{ARCHIVE}/AWSLogs/{ACCOUNT}/*"
    tls = by_sid["MigrateDenyInsecureTransport"]
    assert tls["Effect"] == "Deny" and tls["Condition"] == {
        "Bool": {"aws:SecureTransport": "false"}
    }
    assert "s3:DeleteObjectVersion" in by_sid["MigrateDenyDeletes"]["Action"]
    pab = s3.get_public_access_block(Bucket=ARCHIVE)["PublicAccessBlockConfiguration"]
    assert all(pab.values())

    key_policy = json.loads(
        aws("kms").get_key_policy(KeyId=key_arn, PolicyName="default")["Policy"]
    )
    sids = {s["Sid"]: s for s in key_policy["Statement"]}
    encrypt = sids["MigrateCloudTrailEncrypt"]
    assert encrypt["Principal"] == {"Service": "cloudtrail.amazonaws.com"}
    assert encrypt["Condition"]["StringEquals"]["aws:SourceArn"] == trail_arn
    # kms.ensure_key's own statements are still there: the merge drops nothing.
    assert "KeyAdministrationThroughIAM" in sids

    status = commands.status(settings, result.run_id)
    outputs = status["steps"][1]["outputs"]
    assert outputs["bucket"] == ARCHIVE and outputs["trail_arn"] == trail_arn

    # A second plan has nothing left to do.
    _, plan = commands.plan(settings, BOOK)
    assert [a for s in plan.steps for a in s.actions] == []


def test_existing_trail_is_reported_and_a_named_one_is_adopted_not_duplicated(
    settings: Settings, aws: Any, tmp_path: Path
) -> None:
    s3, ct = aws("s3"), aws("cloudtrail")
    s3.create_bucket(Bucket="old-logs")
    ct.create_trail(Name="legacy-trail", S3BucketName="old-logs")
    ct.start_logging(Name="legacy-trail")

    _, plan = commands.plan(settings, BOOK)
    archive = plan.steps[1]
    assert [a.kind for a in archive.actions] == [
        "cloudtrail.prepare_archive_bucket",
        "cloudtrail.grant_key",
        "cloudtrail.create_trail",
    ]
    warning = next(w for w in archive.facts["warnings"] if "legacy-trail" in w)
    assert "$20.00 per million" in warning and "adopt: legacy-trail" in warning

    book = _book(tmp_path, adopt="legacy-trail", data_events=["s3"])
    _, plan = commands.plan(settings, book)
    update = next(a for a in plan.steps[1].actions if a.kind == "cloudtrail.update_trail")
    assert "single-Region" in update.summary and "$1.00 per million" in update.summary

    result = commands.run(settings, book, options=RunOptions(quiet=True))
    assert result.status == "done", result
    trails = ct.describe_trails()["trailList"]
    assert [t["Name"] for t in trails] == ["legacy-trail"]  # taken over, not duplicated
    assert trails[0]["IsMultiRegionTrail"] and trails[0]["S3BucketName"] == ARCHIVE
    selectors = ct.get_event_selectors(TrailName="legacy-trail")["EventSelectors"]
    assert selectors[0]["DataResources"] == [{"Type": "AWS::S3::Object", "Values": ["arn:aws:s3"]}]

    # Rollback puts the legacy trail back where it was; the created archive bucket is empty
    # (moto delivers nothing), so it goes too.
    commands.rollback(settings, result.run_id, "archive")
    trail = ct.describe_trails()["trailList"][0]
    assert trail["S3BucketName"] == "old-logs" and not trail["IsMultiRegionTrail"]
    assert not trail.get("KmsKeyId")  # UpdateTrail with KmsKeyId="" turns SSE-KMS off
    assert ARCHIVE not in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    key_policy = aws("kms").get_key_policy(KeyId=_key_arn(aws), PolicyName="default")["Policy"]
    assert "MigrateCloudTrailEncrypt" not in key_policy


def test_given_bucket_keeps_its_policy_and_rules(
    settings: Settings, aws: Any, tmp_path: Path
) -> None:
    s3 = aws("s3")
    s3.create_bucket(Bucket="my-audit")
    s3.put_bucket_policy(
        Bucket="my-audit",
        Policy=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Sid": "AuditorsRead",
                        "Effect": "Allow",
                        "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:role/auditor"},
                        "Action": "s3:GetObject",
                        "Resource": "arn:aws:s3:::my-audit/*",
                    }
                ],
            }
        ),
    )
    s3.put_bucket_lifecycle_configuration(
        Bucket="my-audit",
        LifecycleConfiguration={
            "Rules": [
                {
                    "ID": "expire-tmp",
                    "Filter": {"Prefix": "tmp/"},
                    "Status": "Enabled",
                    "Expiration": {"Days": 7},
                }
            ]
        },
    )
    book = _book(tmp_path, bucket="my-audit", retention_days=30, storage_class="DEEP_ARCHIVE")
    result = commands.run(settings, book, options=RunOptions(quiet=True))
    assert result.status == "done", result
    sids = [
        s["Sid"] for s in json.loads(s3.get_bucket_policy(Bucket="my-audit")["Policy"])["Statement"]
    ]
    assert "AuditorsRead" in sids and "MigrateCloudTrailWrite" in sids
    rules = {r["ID"] for r in s3.get_bucket_lifecycle_configuration(Bucket="my-audit")["Rules"]}
    assert rules == {"expire-tmp", "migrate-archive-to-colder-storage"}
    lock = s3.get_object_lock_configuration(Bucket="my-audit")["ObjectLockConfiguration"]
    assert lock["Rule"]["DefaultRetention"]["Days"] == 30

    commands.rollback(settings, result.run_id, "archive")
    # An existing bucket stays; its own policy and lifecycle come back as they were.
    sids = [
        s["Sid"] for s in json.loads(s3.get_bucket_policy(Bucket="my-audit")["Policy"])["Statement"]
    ]
    assert sids == ["AuditorsRead"]
    rules = {r["ID"] for r in s3.get_bucket_lifecycle_configuration(Bucket="my-audit")["Rules"]}
    assert rules == {"expire-tmp"}


def test_log_archive_account_bucket_is_not_touched_and_its_policy_is_printed(
    settings: Settings, tmp_path: Path
) -> None:
    book = _book(tmp_path, bucket="org-log-archive", bucket_account="210987654321")
    _, plan = commands.plan(settings, book)
    archive = plan.steps[1]
    assert "cloudtrail.prepare_archive_bucket" not in [a.kind for a in archive.actions]
    warning = next(w for w in archive.facts["warnings"] if "210987654321" in w)
    assert "MigrateCloudTrailWrite" in warning and f'"aws:SourceAccount": "{ACCOUNT}"' in warning


def test_log_archive_account_without_bucket_is_bad_input(
    settings: Settings, tmp_path: Path
) -> None:
    import pytest

    from migrate.errors import BadInputError

    book = _book(tmp_path, bucket_account="210987654321")
    with pytest.raises(BadInputError, match="bucket"):
        commands.plan(settings, book)
