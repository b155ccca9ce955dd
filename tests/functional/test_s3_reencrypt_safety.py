"""s3.reencrypt on the bucket histories where an in-place copy is not harmless, and the cases
where a run must not end "done" (or stay failed) for the wrong reason (issue 13)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from migrate import commands
from migrate.aws.session import AwsSession
from migrate.commands import Settings
from migrate.engine.runner import RunOptions
from tests.conftest import write_playbook

QUIET = RunOptions(quiet=True, yes=True)


def _book(tmp_path: Path, **with_: Any) -> str:
    step = {"names": ["*"], "kms_key": "{{ steps.kms.key_arn }}", "lane": "copy", **with_}
    doc = {
        "name": "reencrypt safety test",
        "steps": [
            {"id": "kms", "uses": "kms.ensure_key"},
            {"id": "reencrypt", "uses": "s3.reencrypt", "with": step},
        ],
    }
    return str(write_playbook(tmp_path / "book.yaml", yaml.safe_dump(doc, sort_keys=False)))


def _sse(s3: Any, bucket: str, key: str) -> str | None:
    return s3.head_object(Bucket=bucket, Key=key).get("ServerSideEncryption")


def test_suspended_bucket_keeps_its_noncurrent_null_version(
    settings: Settings, aws: Any, tmp_path: Path
) -> None:
    """Unversioned, then Enabled, then Suspended: the oldest version of a key has the id null.
    A copy in the Suspended bucket would become the new null version and destroy it."""
    s3 = aws("s3")
    s3.create_bucket(Bucket="suspended-bucket")
    s3.put_object(Bucket="suspended-bucket", Key="ledger.csv", Body=b"oldest")  # version null
    s3.put_object(Bucket="suspended-bucket", Key="plain.txt", Body=b"plain")  # null, current
    s3.put_bucket_versioning(
        Bucket="suspended-bucket", VersioningConfiguration={"Status": "Enabled"}
    )
    s3.put_object(Bucket="suspended-bucket", Key="ledger.csv", Body=b"newer")
    s3.put_bucket_versioning(
        Bucket="suspended-bucket", VersioningConfiguration={"Status": "Suspended"}
    )

    _, plan = commands.plan(settings, _book(tmp_path))
    action = plan.steps[1].actions[0]
    assert any("Suspended" in r and "ledger.csv" in r for r in action.risks), action.risks

    result = commands.run(settings, _book(tmp_path), options=QUIET)
    assert result.status == "done", commands.status(settings, result.run_id)
    oldest = s3.get_object(Bucket="suspended-bucket", Key="ledger.csv", VersionId="null")
    assert oldest["Body"].read() == b"oldest"
    assert s3.get_object(Bucket="suspended-bucket", Key="ledger.csv")["Body"].read() == b"newer"
    # The key without an older null version is re-encrypted as usual.
    assert _sse(s3, "suspended-bucket", "plain.txt") == "aws:kms"
    got = commands.status(settings, result.run_id)["steps"][1]["actions"][0]["result"]
    assert got["skipped_null_version"] == 1
    (residual,) = [r for r in got["residuals"] if r["label"] == "skipped_null_version"]
    assert residual["first"] == ["ledger.csv"] and "enable versioning" in residual["fix"]
    assert "1 object(s)" in residual["what"]
    # The run report lists it under what remains for the FTR.
    remains = commands.report(settings, result.run_id)["residuals"]
    assert any(r["target"] == "suspended-bucket" and "null" in r["why"] for r in remains), remains
    report = commands.status(settings, result.run_id)["steps"][1]
    assert report["outputs"]["objects_skipped"] == 1


class _LateWriterSession(AwsSession):
    """The operator's session, plus an application that writes a new unencrypted object (one
    that sorts before every other key) as the step copies the last key (listed already)."""

    def __init__(self, writer: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.writer, self.fired = writer, False

    def client(self, service: str, region: str | None = None) -> Any:
        client = super().client(service, region)
        if service == "s3" and not getattr(client, "_late_hooked", False):
            client.meta.events.register("before-call.s3.CopyObject", self._write)
            client._late_hooked = True
        return client

    def _write(self, **kwargs: Any) -> None:
        params = kwargs.get("params") or {}
        if self.fired or not str(params.get("url_path", "")).endswith("/z-last.txt"):
            return
        self.fired = True
        self.writer.put_object(Bucket="late-bucket", Key="a-late.txt", Body=b"written mid-run")


class _LateSettings(Settings):
    writer: Any = None

    def aws(self) -> AwsSession:
        return _LateWriterSession(self.writer, region=self.region, endpoint_url=self.endpoint_url)


def _fail_verification(settings: Settings, aws: Any, tmp_path: Path) -> str:
    s3 = aws("s3")
    s3.create_bucket(Bucket="late-bucket")
    for key in ("m-1.txt", "m-2.txt", "z-last.txt"):
        s3.put_object(Bucket="late-bucket", Key=key, Body=b"x")
    late = _LateSettings(state=settings.state, endpoint_url=settings.endpoint_url, quiet=True)
    late.writer = s3
    # Verification HEADs every object here (its default is a small sample): it must find
    # the late object, and the run must fail on it.
    first = commands.run(late, _book(tmp_path, verify_sample=1.0), options=QUIET)
    assert first.status == "failed"
    step = commands.status(settings, first.run_id)["steps"][1]
    assert "a-late.txt" in (step["error"] or "")
    return first.run_id


def test_failed_verification_is_repaired_by_resume(
    settings: Settings, aws: Any, tmp_path: Path
) -> None:
    run_id = _fail_verification(settings, aws, tmp_path)
    again = commands.resume(settings, run_id, options=QUIET)
    assert again.status == "done", commands.status(settings, run_id)
    s3 = aws("s3")
    for key in ("a-late.txt", "m-1.txt", "m-2.txt", "z-last.txt"):
        assert _sse(s3, "late-bucket", key) == "aws:kms", key
    outputs = commands.status(settings, run_id)["steps"][1]["outputs"]
    assert outputs["objects_reencrypted"] == 4  # 3 in the first pass, 1 in the second


def test_failed_verification_is_repaired_after_an_edit_with_accept_changes(
    settings: Settings, aws: Any, tmp_path: Path
) -> None:
    run_id = _fail_verification(settings, aws, tmp_path)
    _book(tmp_path, verify_sample=1.0, concurrency=8)  # the operator edits the step
    again = commands.resume(settings, run_id, options=QUIET, accept_changes=True)
    assert again.status == "done", commands.status(settings, run_id)
    assert _sse(aws("s3"), "late-bucket", "a-late.txt") == "aws:kms"


def test_a_clean_sample_never_makes_a_bucket_compliant(
    settings: Settings, aws: Any, tmp_path: Path
) -> None:
    """The plan HEADs a sample; the 20 keys listed first are under another KMS key (left
    alone), the 10 listed last are unencrypted. The bucket still gets its action."""
    s3 = aws("s3")
    kms = aws("kms")
    other = kms.create_key(Description="another team's key")["KeyMetadata"]["Arn"]
    s3.create_bucket(Bucket="sampled-bucket")
    for i in range(20):
        s3.put_object(
            Bucket="sampled-bucket",
            Key=f"a{i:02d}",
            Body=b"x",
            ServerSideEncryption="aws:kms",
            SSEKMSKeyId=other,
        )
    for i in range(10):
        s3.put_object(Bucket="sampled-bucket", Key=f"z{i:02d}", Body=b"x")
    book = _book(tmp_path, plan_head_limit=5, verify_sample=0.0)
    _, plan = commands.plan(settings, book)
    assert [a.target for a in plan.steps[1].actions] == ["sampled-bucket"]
    result = commands.run(settings, book, options=QUIET)
    assert result.status == "done", commands.status(settings, result.run_id)
    for i in range(10):
        assert _sse(s3, "sampled-bucket", f"z{i:02d}") == "aws:kms"


ALL_USERS = "http://acs.amazonaws.com/groups/global/AllUsers"


def _grants(s3: Any, bucket: str, key: str) -> set[tuple[str, str]]:
    acl = s3.get_object_acl(Bucket=bucket, Key=key)
    return {
        (g["Grantee"].get("URI") or g["Grantee"].get("ID"), g["Permission"]) for g in acl["Grants"]
    }


def test_public_grants_blocked_and_ignored_are_dropped_with_a_note(
    settings: Settings, aws: Any, tmp_path: Path
) -> None:
    """A legacy public-read object in a bucket that now blocks and ignores public ACLs. AWS
    refuses a copy that re-sends the AllUsers grant (moto accepts it), so the step drops that
    grant, which S3 already ignores, keeps the others, and notes the object."""
    s3 = aws("s3")
    s3.create_bucket(Bucket="bpa-bucket")
    s3.put_object(Bucket="bpa-bucket", Key="legacy.html", Body=b"<p>hi</p>")
    owner = s3.get_object_acl(Bucket="bpa-bucket", Key="legacy.html")["Owner"]["ID"]
    s3.put_object_acl(
        Bucket="bpa-bucket",
        Key="legacy.html",
        GrantFullControl=f'id="{owner}"',
        GrantRead=f'uri="{ALL_USERS}"',
    )
    s3.put_public_access_block(
        Bucket="bpa-bucket",
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True,
        },
    )
    result = commands.run(settings, _book(tmp_path), options=QUIET)
    assert result.status == "done", commands.status(settings, result.run_id)
    assert _sse(s3, "bpa-bucket", "legacy.html") == "aws:kms"
    assert _grants(s3, "bpa-bucket", "legacy.html") == {(owner, "FULL_CONTROL")}
    got = commands.status(settings, result.run_id)["steps"][1]["actions"][0]["result"]
    assert got["public_grants_dropped"] == 1


def test_a_bucket_the_migrator_may_not_read_is_a_warning_not_a_failed_plan(
    settings: Settings, aws: Any, tmp_path: Path
) -> None:
    """A bucket whose policy refuses the migrator (on AWS: only through a VPC endpoint, only from
    a network, an SCP) answers 403 to its listing or HEADs. The plan names it and goes on with
    the others; the run neither touches nor "verifies" it. The 403 comes from moto treating a
    conditional deny for Principal "*" as matching every request (../shared/MOTO.md), which is
    what AWS answers a migrator outside the allowed VPC endpoint."""
    s3 = aws("s3")
    for name in ("open-bucket", "vpce-only-bucket"):
        s3.create_bucket(Bucket=name)
        s3.put_object(Bucket=name, Key="a.txt", Body=b"a")
    deny = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "OnlyThroughTheEndpoint",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:*",
                "Resource": ["arn:aws:s3:::vpce-only-bucket", "arn:aws:s3:::vpce-only-bucket/*"],
                "Condition": {"StringNotEquals": {"aws:SourceVpce": "vpce-0123456789abcdef0"}},
            }
        ],
    }
    s3.put_bucket_policy(Bucket="vpce-only-bucket", Policy=json.dumps(deny))

    _, plan = commands.plan(settings, _book(tmp_path))
    step = plan.steps[1]
    assert [a.target for a in step.actions] == ["open-bucket"]
    (warning,) = step.facts["warnings"]
    assert "s3://vpce-only-bucket" in warning and "may not read it" in warning

    result = commands.run(settings, _book(tmp_path), options=QUIET)
    assert result.status == "done", commands.status(settings, result.run_id)
    assert _sse(s3, "open-bucket", "a.txt") == "aws:kms"


class _DeniedResponse:
    """What botocore needs of an HTTP answer to raise the ClientError AWS's 403 makes."""

    status_code = 403
    headers: dict[str, str] = {}
    content = b""


class _DenyingSession(AwsSession):
    """The operator's session, where S3 refuses the migrator's HEAD of objects under
    ``theirs/`` (a bucket policy denying that prefix, or objects another account owns). moto
    never denies, so a botocore ``before-call`` handler answers those HEADs as AWS does (403,
    no body); every other request goes to the moto server."""

    def client(self, service: str, region: str | None = None) -> Any:
        client = super().client(service, region)
        if service == "s3" and not getattr(client, "_deny_hooked", False):
            client.meta.events.register("before-call.s3.HeadObject", _deny_theirs)
            client._deny_hooked = True
        return client


def _deny_theirs(params: dict[str, Any], **kwargs: Any) -> Any:
    if "/theirs/" not in str(params.get("url_path", "")):
        return None
    return _DeniedResponse(), {"Error": {"Code": "403", "Message": "Forbidden"}}


class _DenyingSettings(Settings):
    def aws(self) -> AwsSession:
        return _DenyingSession(region=self.region, endpoint_url=self.endpoint_url)


def test_objects_that_refuse_the_plans_head_keep_their_bucket_in_the_plan(
    settings: Settings, aws: Any, tmp_path: Path
) -> None:
    """One object the migrator may not read used to drop the whole bucket from the plan (its
    AccessDenied read as the bucket's), so none of its objects were re-encrypted. Now the
    refused object is counted as unknown, the plan says so, and the run re-encrypts the rest
    and lists the refused one with the fix."""
    s3 = aws("s3")
    s3.create_bucket(Bucket="mixed-bucket")
    s3.put_object(Bucket="mixed-bucket", Key="ours/a.txt", Body=b"a")
    s3.put_object(Bucket="mixed-bucket", Key="theirs/b.txt", Body=b"b")
    denying = _DenyingSettings(state=settings.state, endpoint_url=settings.endpoint_url)
    denying.quiet = True
    _, plan = commands.plan(denying, _book(tmp_path))
    (action,) = [a for a in plan.steps[1].actions if a.target == "mixed-bucket"]
    assert any("refused the migrator's HEAD" in r for r in action.risks), action.risks
    result = commands.run(denying, _book(tmp_path), options=QUIET)
    assert result.status == "done", commands.status(denying, result.run_id)
    assert _sse(s3, "mixed-bucket", "ours/a.txt") == "aws:kms"
    assert _sse(s3, "mixed-bucket", "theirs/b.txt") is None  # left as it was
    got = commands.status(denying, result.run_id)["steps"][1]["actions"][0]["result"]
    (residual,) = [r for r in got["residuals"] if r["label"] == "skipped_access_denied"]
    assert residual["first"] == ["theirs/b.txt"], residual


def test_public_grants_in_force_under_block_public_acls_leave_the_object_listed(
    settings: Settings, aws: Any, tmp_path: Path
) -> None:
    """BlockPublicAcls on, IgnorePublicAcls off: the AllUsers grant still works (the site reads
    it), and AWS refuses a copy that re-sends it. Dropping it would break what the grant serves,
    so the object is left as it was and listed with the fix; the rest of the bucket is done."""
    s3 = aws("s3")
    s3.create_bucket(Bucket="bpa-in-force")
    s3.put_object(Bucket="bpa-in-force", Key="public.html", Body=b"<p>public</p>")
    s3.put_object(Bucket="bpa-in-force", Key="private.txt", Body=b"private")
    owner = s3.get_object_acl(Bucket="bpa-in-force", Key="public.html")["Owner"]["ID"]
    s3.put_object_acl(
        Bucket="bpa-in-force",
        Key="public.html",
        GrantFullControl=f'id="{owner}"',
        GrantRead=f'uri="{ALL_USERS}"',
    )
    s3.put_public_access_block(
        Bucket="bpa-in-force",
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True,
            "IgnorePublicAcls": False,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True,
        },
    )
    result = commands.run(settings, _book(tmp_path), options=QUIET)
    assert result.status == "done", commands.status(settings, result.run_id)
    assert _sse(s3, "bpa-in-force", "public.html") is None  # left as it was
    assert (ALL_USERS, "READ") in _grants(s3, "bpa-in-force", "public.html")
    assert _sse(s3, "bpa-in-force", "private.txt") == "aws:kms"
    got = commands.status(settings, result.run_id)["steps"][1]["actions"][0]["result"]
    (residual,) = [r for r in got["residuals"] if r["label"] == "skipped_public_acl"]
    assert residual["first"] == ["public.html"], residual
