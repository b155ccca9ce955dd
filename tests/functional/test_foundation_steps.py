"""kms.ensure_key and s3.default_encryption against the moto server, through the Python API."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from migrate import commands
from migrate.commands import Settings
from migrate.engine.runner import RunOptions
from migrate.errors import BadInputError
from migrate.store.models import JournalEntry
from tests.conftest import PLAYBOOKS, write_playbook

# kms + s3.default_encryption: the part of the baseline these tests are about.
BASELINE = str(PLAYBOOKS / "s3-default-encryption.yaml")


def _buckets(aws: Any, *names: str) -> None:
    s3 = aws("s3")
    for name in names:
        s3.create_bucket(Bucket=name)


def _algorithm(aws: Any, bucket: str) -> str | None:
    """The default algorithm; AWS answers AES256 for a bucket without a configuration, moto
    answers ServerSideEncryptionConfigurationNotFoundError: both mean SSE-S3/none."""
    try:
        rule = _encryption(aws, bucket)
    except aws("s3").exceptions.ClientError as exc:
        assert "ServerSideEncryptionConfigurationNotFound" in str(exc)
        return "AES256"
    return str(rule["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"])


def _encryption(aws: Any, bucket: str) -> dict[str, Any]:
    rule = aws("s3").get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"][
        "Rules"
    ][0]
    return dict(rule)


def test_baseline_creates_key_and_encrypts_every_bucket(settings: Settings, aws: Any) -> None:
    _buckets(aws, "app-data", "app-logs", "static-site")
    result = commands.run(settings, BASELINE, options=RunOptions(quiet=True))
    assert result.status == "done" and result.exit_code == 0

    kms = aws("kms")
    alias = next(a for a in kms.list_aliases()["Aliases"] if a["AliasName"] == "alias/migrate-ftr")
    meta = kms.describe_key(KeyId=alias["TargetKeyId"])["KeyMetadata"]
    assert meta["KeyManager"] == "CUSTOMER" and meta["KeyState"] == "Enabled"
    assert kms.get_key_rotation_status(KeyId=meta["KeyId"])["KeyRotationEnabled"]
    policy = json.loads(kms.get_key_policy(KeyId=meta["KeyId"], PolicyName="default")["Policy"])
    use = next(s for s in policy["Statement"] if s["Sid"] == "UseThroughServicesInThisAccount")
    assert use["Condition"]["StringEquals"]["kms:CallerAccount"] == "123456789012"
    assert "s3.us-east-1.amazonaws.com" in use["Condition"]["StringEquals"]["kms:ViaService"]
    admin = next(s for s in policy["Statement"] if s["Sid"] == "KeyAdministrationThroughIAM")
    assert "kms:Decrypt" not in admin["Action"]

    for bucket in ("app-data", "app-logs", "static-site"):
        rule = _encryption(aws, bucket)
        assert rule["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
        assert rule["ApplyServerSideEncryptionByDefault"]["KMSMasterKeyID"] == meta["Arn"]
        assert rule["BucketKeyEnabled"] is True

    status = commands.status(settings, result.run_id)
    assert status["steps"][0]["outputs"]["key_arn"] == meta["Arn"]


def test_second_plan_finds_everything_compliant(settings: Settings, aws: Any) -> None:
    _buckets(aws, "one-bucket", "two-bucket")
    commands.run(settings, BASELINE, options=RunOptions(quiet=True))
    _, plan = commands.plan(settings, BASELINE)
    assert [a for s in plan.steps for a in s.actions] == []
    assert sorted(plan.steps[1].facts["compliant"]) == ["one-bucket", "two-bucket"]


def test_plan_marks_outputs_known_after_the_key_step(settings: Settings, aws: Any) -> None:
    _buckets(aws, "plan-me")
    _, plan = commands.plan(settings, BASELINE)
    s3_step = plan.steps[1]
    assert s3_step.known_after == ["kms"]
    assert [a.known_after for a in s3_step.actions] == [("kms",)]
    assert "(known after kms)" in json.dumps(plan.body())


def test_running_twice_creates_no_second_key(settings: Settings, aws: Any) -> None:
    _buckets(aws, "idem-bucket")
    commands.run(settings, BASELINE, options=RunOptions(quiet=True))
    commands.run(settings, BASELINE, options=RunOptions(quiet=True))
    keys = aws("kms").list_keys()["Keys"]
    assert len(keys) == 1


def test_key_left_without_alias_by_a_crash_is_reused(settings: Settings, aws: Any) -> None:
    kms = aws("kms")
    orphan = kms.create_key(Tags=[{"TagKey": "migrate:alias", "TagValue": "alias/migrate-ftr"}])
    commands.run(settings, BASELINE, options=RunOptions(quiet=True))
    keys = kms.list_keys()["Keys"]
    assert [k["KeyId"] for k in keys] == [orphan["KeyMetadata"]["KeyId"]]
    alias = next(a for a in kms.list_aliases()["Aliases"] if a["AliasName"] == "alias/migrate-ftr")
    assert alias["TargetKeyId"] == orphan["KeyMetadata"]["KeyId"]


def test_selection_by_glob_exclude_and_tags(settings: Settings, aws: Any, tmp_path: Path) -> None:
    _buckets(aws, "prod-a", "prod-b", "prod-logs", "dev-a")
    aws("s3").put_bucket_tagging(
        Bucket="prod-b", Tagging={"TagSet": [{"Key": "team", "Value": "payments"}]}
    )
    book = write_playbook(
        tmp_path / "sel.yaml",
        """\
name: selection
steps:
  - id: kms
    uses: kms.ensure_key
  - id: s3
    uses: s3.default_encryption
    with:
      names: ["prod-*"]
      exclude: ["*-logs"]
      tags: {team: payments}
      kms_key: "{{ steps.kms.key_arn }}"
""",
    )
    commands.run(settings, str(book), options=RunOptions(quiet=True))
    assert _encryption(aws, "prod-b")["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == (
        "aws:kms"
    )
    for untouched in ("prod-a", "prod-logs", "dev-a"):
        assert _algorithm(aws, untouched) == "AES256"


def test_journal_records_every_mutating_call_without_secrets(settings: Settings, aws: Any) -> None:
    _buckets(aws, "journal-bucket")
    result = commands.run(settings, BASELINE, options=RunOptions(quiet=True))
    store = settings.store()
    with store.read() as session:
        entries = session.scalars(
            select(JournalEntry).where(JournalEntry.run_id == result.run_id)
        ).all()
    ops = [(e.service, e.operation) for e in entries]
    assert ("kms", "CreateKey") in ops and ("s3", "PutBucketEncryption") in ops
    assert not any(op.startswith(("Get", "List", "Describe")) for _, op in ops)
    put = next(e for e in entries if e.operation == "PutBucketEncryption")
    assert put.target == "journal-bucket" and put.outcome == "ok" and put.request_id
    assert put.params["ServerSideEncryptionConfiguration"] == "<redacted>"
    # The operator's secret key never reaches the state DB.
    db = Path(store.engine.url.database or "").read_bytes()
    assert b"test-operator-secret-not-real" not in db


def test_rollback_restores_previous_bucket_encryption(settings: Settings, aws: Any) -> None:
    _buckets(aws, "roll-back-me")
    result = commands.run(settings, BASELINE, options=RunOptions(quiet=True))
    lines = commands.rollback(settings, result.run_id)
    assert "s3-default-encryption: rolled back" in lines
    assert _algorithm(aws, "roll-back-me") == "AES256"
    # The key is kept: data may be encrypted under it.
    assert aws("kms").list_keys()["Keys"]
    assert commands.status(settings, result.run_id)["status"] == "rolled-back"
    with pytest.raises(BadInputError, match="was rolled back"):
        commands.resume(settings, result.run_id, RunOptions(quiet=True))


@pytest.mark.parametrize("mode", ["strict"])
def test_strict_key_policy_is_iam_only_and_plan_warns(
    settings: Settings, aws: Any, mode: str
) -> None:
    book = str(PLAYBOOKS / "kms-key.yaml")
    _, plan = commands.plan(settings, book, [f"key_policy={mode}"])
    risks = [r for s in plan.steps for a in s.actions for r in a.risks]
    assert any("loses access" in r for r in risks)
    commands.run(settings, book, [f"key_policy={mode}"], options=RunOptions(quiet=True))
    kms = aws("kms")
    key_id = kms.list_keys()["Keys"][0]["KeyId"]
    policy = json.loads(kms.get_key_policy(KeyId=key_id, PolicyName="default")["Policy"])
    assert [s["Sid"] for s in policy["Statement"]] == ["EnableIAMPolicies"]


def test_log_buckets_are_left_alone_and_listed(settings: Settings, aws: Any) -> None:
    s3 = aws("s3")
    for name in ("site-bucket", "access-logs", "trail-logs"):
        s3.create_bucket(Bucket=name)
    s3.put_bucket_acl(
        Bucket="access-logs",
        GrantWrite='uri="http://acs.amazonaws.com/groups/s3/LogDelivery"',
        GrantReadACP='uri="http://acs.amazonaws.com/groups/s3/LogDelivery"',
        GrantFullControl=f'id="{s3.list_buckets()["Owner"]["ID"]}"',
    )
    s3.put_bucket_logging(
        Bucket="site-bucket",
        BucketLoggingStatus={
            "LoggingEnabled": {"TargetBucket": "access-logs", "TargetPrefix": "site/"}
        },
    )
    aws("cloudtrail").create_trail(Name="main", S3BucketName="trail-logs")
    _, plan = commands.plan(settings, BASELINE)
    step = plan.steps[1]
    assert [a.target for a in step.actions] == ["site-bucket"]
    warnings = " ".join(step.facts["warnings"])
    assert "s3://access-logs" in warnings and "SSE-S3" in warnings
    assert "s3://trail-logs" in warnings and "cloudtrail.amazonaws.com" in warnings
    commands.run(settings, BASELINE, options=RunOptions(quiet=True))
    assert _algorithm(aws, "access-logs") == "AES256"
    assert _algorithm(aws, "site-bucket") == "aws:kms"


def test_a_bucket_the_key_cannot_serve_is_named_in_the_plan_with_its_reason(
    settings: Settings, aws: Any, tmp_path: Path
) -> None:
    """A key of us-east-1 cannot encrypt an eu-west-1 bucket (AWS refuses): the bucket appears in
    the plan's warnings with the reason, instead of vanishing with no action and no word."""
    aws("s3").create_bucket(Bucket="home-data")
    aws("s3", region="eu-west-1").create_bucket(
        Bucket="far-data", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
    )
    key_arn = aws("kms").create_key()["KeyMetadata"]["Arn"]
    book = write_playbook(
        tmp_path / "pb.yaml",
        "name: cross-region\nsteps:\n  - id: enc\n    uses: s3.default_encryption\n"
        f"    with:\n      kms_key: {key_arn}\n",
    )
    _, plan = commands.plan(settings, str(book), [], None)
    step = plan.steps[0]
    assert [a.target for a in step.actions] == ["home-data"]
    warnings = plan.body()["steps"][0]["warnings"]
    far = [w for w in warnings if "s3://far-data" in w]
    assert far and "eu-west-1" in far[0] and "us-east-1" in far[0]
