"""ftr.account_baseline against the moto server, through the Python API.

moto serves everything this step calls except EC2 ``GetEbsDefaultKmsKeyId`` and
``ResetEbsDefaultKmsKeyId``: the sandbox server answers those two from moto's own stored default
key (migrate/sandbox/server.py), and their request and response shapes are checked here with
botocore's Stubber against the EC2 model (only those calls). s3control goes to the moto server
through the session's local-endpoint URL hook.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from botocore.stub import Stubber

from migrate import commands
from migrate.aws.session import AwsSession
from migrate.commands import Settings
from migrate.engine.runner import RunOptions
from tests.conftest import PLAYBOOKS

ACCOUNT = "123456789012"
BOOK = str(PLAYBOOKS / "account-baseline.yaml")
CONTACTS = [
    "security_contact=security@example.com",
    "operations_contact=ops@example.com",
    "billing_contact=billing@example.com",
    "contact_phone=+1 555 0100",
]
READERS = {
    "Sid": "PartnerRead",
    "Effect": "Allow",
    "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
    "Action": "s3:GetObject",
    "Resource": "arn:aws:s3:::with-policy/*",
}


def _legacy_account(aws: Any) -> None:
    iam, s3 = aws("iam"), aws("s3")
    iam.create_user(UserName="alice")
    iam.create_login_profile(UserName="alice", Password="Legacy-Password-1")
    s3.create_bucket(Bucket="with-policy")
    s3.put_bucket_policy(
        Bucket="with-policy",
        Policy=json.dumps({"Version": "2012-10-17", "Statement": [READERS]}),
    )
    s3.create_bucket(Bucket="no-policy")


def test_baseline_fixes_the_account_and_rollback_restores_it(settings: Settings, aws: Any) -> None:
    _legacy_account(aws)
    _, plan = commands.plan(settings, BOOK, CONTACTS)
    baseline = plan.steps[1]
    kinds = sorted(a.kind for a in baseline.actions)
    assert kinds == [
        "baseline.alternate_contact",
        "baseline.alternate_contact",
        "baseline.alternate_contact",
        "baseline.block_public_access",
        "baseline.ebs_encryption",
        "baseline.password_policy",
        "baseline.tls_only_policy",
        "baseline.tls_only_policy",
    ]
    findings = {(f["requirement"], f["subject"]): f for f in baseline.facts["findings"]}
    # What only a human can do is in the plan, with the requirement it answers.
    assert findings[("ARC-003", "root user MFA")]["status"] == "manual"
    assert "sign in as root" in findings[("ARC-003", "root user MFA")]["detail"]
    assert findings[("IAM-001", "IAM user alice")]["status"] == "manual"
    assert any(w.startswith("IAM-001") and "alice" in w for w in baseline.facts["warnings"])

    result = commands.run(settings, BOOK, CONTACTS, options=RunOptions(quiet=True, yes=True))
    assert result.status == "done", result

    iam, s3, ec2, kms = aws("iam"), aws("s3"), aws("ec2"), aws("kms")
    policy = iam.get_account_password_policy()["PasswordPolicy"]
    assert policy["MinimumPasswordLength"] == 14 and policy["PasswordReusePrevention"] == 24
    assert policy["MaxPasswordAge"] == 90 and policy["RequireSymbols"]
    contact = aws("account").get_alternate_contact(AlternateContactType="SECURITY")
    assert contact["AlternateContact"]["EmailAddress"] == "security@example.com"
    control = aws("s3control")
    control.meta.events.register("before-sign.s3-control.*", _local_s3control)
    bpa = control.get_public_access_block(AccountId=ACCOUNT)["PublicAccessBlockConfiguration"]
    assert all(bpa.values()) and len(bpa) == 4
    assert ec2.get_ebs_encryption_by_default()["EbsEncryptionByDefault"] is True
    alias = next(a for a in kms.list_aliases()["Aliases"] if a["AliasName"] == "alias/migrate-ftr")
    key_arn = kms.describe_key(KeyId=alias["TargetKeyId"])["KeyMetadata"]["Arn"]
    assert ec2.get_ebs_default_kms_key_id()["KmsKeyId"] == key_arn
    # EC2 can use the key for every launching principal, as with AWS's aws/ebs key.
    key_policy = json.loads(kms.get_key_policy(KeyId=key_arn, PolicyName="default")["Policy"])
    ebs_use = next(s for s in key_policy["Statement"] if s["Sid"].startswith("MigrateEbs"))
    assert "kms:CreateGrant" in ebs_use["Action"]
    assert ebs_use["Condition"]["StringEquals"]["kms:ViaService"] == "ec2.us-east-1.amazonaws.com"
    merged = json.loads(s3.get_bucket_policy(Bucket="with-policy")["Policy"])["Statement"]
    assert merged[0] == READERS  # the existing grant is kept
    tls = merged[1]
    assert tls["Effect"] == "Deny" and tls["Condition"] == {
        "Bool": {"aws:SecureTransport": "false"}
    }
    assert "DenyInsecureTransport" in s3.get_bucket_policy(Bucket="no-policy")["Policy"]

    _, again = commands.plan(settings, BOOK, CONTACTS)
    assert again.steps[1].actions == []

    commands.rollback(settings, result.run_id, "account-baseline")
    assert _absent(lambda: iam.get_account_password_policy())
    assert _absent(lambda: aws("account").get_alternate_contact(AlternateContactType="SECURITY"))
    assert _absent(lambda: control.get_public_access_block(AccountId=ACCOUNT))
    assert ec2.get_ebs_encryption_by_default()["EbsEncryptionByDefault"] is False
    assert "MigrateEbs" not in kms.get_key_policy(KeyId=key_arn, PolicyName="default")["Policy"]
    restored = json.loads(s3.get_bucket_policy(Bucket="with-policy")["Policy"])["Statement"]
    assert restored == [READERS]
    assert _absent(lambda: s3.get_bucket_policy(Bucket="no-policy"))


def test_a_bucket_whose_policy_cannot_take_the_statement_is_reported(
    settings: Settings, aws: Any
) -> None:
    s3 = aws("s3")
    s3.create_bucket(Bucket="crowded")
    # Close to S3's 20 KB bucket policy limit: the TLS statement no longer fits.
    statements = [
        {
            "Sid": f"Reader{i:03d}",
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:role/reader-with-a-long-name-{i:03d}"},
            "Action": "s3:GetObject",
            "Resource": f"arn:aws:s3:::crowded/team-{i:03d}/*",
        }
        for i in range(100)
    ]

    def text() -> str:
        return json.dumps({"Version": "2012-10-17", "Statement": statements}, sort_keys=True)

    while len(text()) > 20 * 1024 - 300:
        statements.pop()
    # Pad the last statement so that the policy ends 60 bytes short of the limit.
    statements[-1]["Resource"] += "x" * (20 * 1024 - 60 - len(text()))
    assert len(text()) == 20 * 1024 - 60
    s3.put_bucket_policy(Bucket="crowded", Policy=text())
    _, plan = commands.plan(settings, BOOK)
    baseline = plan.steps[1]
    assert "crowded" not in [a.target for a in baseline.actions]
    assert any("s3://crowded" in w and "20 KB" in w for w in baseline.facts["warnings"])


def test_contacts_without_a_phone_are_bad_input(settings: Settings, tmp_path: Path) -> None:
    import pytest

    from migrate.errors import BadInputError

    with pytest.raises(BadInputError, match="phone"):
        commands.plan(settings, BOOK, ["security_contact=security@example.com"])


def test_ebs_default_key_calls_match_the_ec2_model(endpoint: str) -> None:
    """moto has no GetEbsDefaultKmsKeyId/ResetEbsDefaultKmsKeyId: a Stubber on an EC2 client
    alone checks the calls the step and its rollback make against botocore's model."""
    from migrate.engine.context import StepContext
    from migrate.steps.baseline.account import AccountBaseline, AccountBaselineParams

    session = AwsSession(endpoint_url=endpoint, region="us-east-1")
    ec2 = session.client("ec2")
    key = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    with Stubber(ec2) as stub:
        stub.add_response("get_ebs_encryption_by_default", {"EbsEncryptionByDefault": False})
        stub.add_response("get_ebs_default_kms_key_id", {"KmsKeyId": key}, {})
        step = AccountBaseline(AccountBaselineParams())
        ctx = StepContext(aws=session, step_id="b", regions=["us-east-1"], state_dir=Path("."))
        ebs = step._ebs(ctx)
        stub.assert_no_pending_responses()
    assert ebs == {
        "us-east-1": {"enabled": False, "kms_key": key, "target_key": None, "key_policy_ok": True}
    }


def _local_s3control(request: Any, **kwargs: Any) -> None:
    request.url = request.url.replace(f"{ACCOUNT}.127.0.0.1", "127.0.0.1")


def _absent(call: Any) -> bool:
    try:
        call()
    except Exception as exc:  # the test only asks "is it gone"
        return (
            "NoSuch" in type(exc).__name__
            or "NotFound" in type(exc).__name__
            or "NoSuch" in str(exc)
        )
    return False


def test_the_plan_is_the_ftr_evidence_pack(settings: Settings, aws: Any, tmp_path: Path) -> None:
    """Every finding, with its FTR requirement id, in the JSON plan and the plan reports."""
    from migrate.reports.render import render_plan, render_plan_report

    _legacy_account(aws)
    plan_id, plan = commands.plan(settings, BOOK)
    body = {**plan.body(), "plan_id": plan_id}
    findings = body["steps"][1]["findings"]
    assert {"requirement": "ARC-003", "status": "manual"}.items() <= next(
        f for f in findings if f["subject"] == "root user MFA"
    ).items()
    markdown = render_plan_report(body, "md")
    assert "## FTR requirements" in markdown
    assert "| IAM-001 Enable MFA for IAM users with console access | manual | IAM user alice |" in (
        markdown
    )
    html = render_plan_report(body, "html")
    assert "<h2>FTR requirements</h2>" in html and "SDAT-003" in html
    assert "ARC-003 root user MFA" in render_plan(body)
