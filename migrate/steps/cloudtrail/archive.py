"""``cloudtrail.archive``: a multi-Region, validated, KMS-encrypted trail into a locked archive."""

from __future__ import annotations

import json
from typing import Any, Literal

from botocore.exceptions import ClientError
from pydantic import Field, model_validator

from migrate.aws.errors import already_exists, has_code, or_default
from migrate.aws.ftr import finding
from migrate.aws.iam_scope import Scope
from migrate.aws.kms import KeyResolver
from migrate.aws.policies import (
    bucket_policy,
    dump_policy,
    merge_statements,
    missing_statements,
    parse_policy,
    remove_key_statements,
    without_statements,
)
from migrate.aws.s3 import (
    bucket_encryption,
    bucket_exists,
    bucket_lifecycle_rules,
    bucket_object_lock,
    bucket_public_access_block,
    bucket_region,
    bucket_versioning,
)
from migrate.engine.base import Action, Estimate, Facts, Step, StepParams, Wait, handles
from migrate.engine.context import StepContext
from migrate.engine.registry import step
from migrate.errors import StepFailed
from migrate.steps.cloudtrail.archive_policy import (
    BUCKET_SIDS,
    KEY_SIDS,
    bucket_statements,
    key_statements,
    trail_arn,
)
from migrate.steps.cloudtrail.trails import (
    DATA_EVENT_USD_PER_MILLION,
    EXTRA_MANAGEMENT_COPY_USD_PER_MILLION,
    read_trails,
    trail_status,
    wanted_selectors,
)

LIFECYCLE_RULE_ID = "migrate-archive-to-colder-storage"
BLOCK_ALL = {
    "BlockPublicAcls": True,
    "IgnorePublicAcls": True,
    "BlockPublicPolicy": True,
    "RestrictPublicBuckets": True,
}


class ArchiveParams(StepParams):
    """Parameters of ``cloudtrail.archive``."""

    kms_key: str = Field(min_length=1)
    trail_name: str = Field(
        default="migrate-archive", pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{2,127}$"
    )
    bucket: str | None = Field(default=None, pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
    bucket_account: str | None = Field(default=None, pattern=r"^[0-9]{12}$")
    adopt: str | None = None
    object_lock_mode: Literal["GOVERNANCE", "COMPLIANCE"] = "GOVERNANCE"
    retention_days: int = Field(default=365, ge=1, le=36500)
    transition_days: int = Field(default=90, ge=0)
    storage_class: Literal["STANDARD_IA", "GLACIER_IR", "GLACIER", "DEEP_ARCHIVE"] = "GLACIER"
    data_events: list[Literal["s3", "lambda"]] = Field(default_factory=list)
    region: str | None = None

    @model_validator(mode="after")
    def _log_archive_needs_bucket(self) -> ArchiveParams:
        if self.bucket_account and not self.bucket:
            raise ValueError(
                "bucket_account names the log-archive account; give the archive bucket's name "
                "there as well (bucket: ...)"
            )
        return self


@step("cloudtrail.archive")
class CloudTrailArchive(Step):
    """A multi-Region trail with log file validation and SSE-KMS into a locked archive bucket.

    The trail records management events (read and write) in every Region, and the data events
    listed in ``data_events`` (``s3``, ``lambda``; the plan shows their price per million). Its
    logs are encrypted with the customer-managed key (the key policy gets statements that let
    ``cloudtrail.amazonaws.com`` use it for this trail only, ``aws:SourceArn``) and delivered to
    an archive bucket that is created (``migrate-cloudtrail-archive-ACCOUNT-REGION``) or given
    (``bucket``): versioning, Object Lock with a default retention (``object_lock_mode``,
    ``retention_days``), a policy that lets only this trail deliver (``aws:SourceArn`` and
    ``aws:SourceAccount``) and denies non-TLS requests and deletes, a lifecycle rule to a colder
    class, Block Public Access and SSE-KMS by default. A bucket in a separate log-archive account
    (``bucket`` + ``bucket_account``) is not touched: the plan prints the statements its policy
    needs. A trail named ``trail_name`` (or ``adopt: NAME``) is taken over, never duplicated;
    other trails are reported with what a second copy of management events costs. The previous
    trail, key policy and bucket settings are recorded, and ``migrate rollback`` restores them
    (Object Lock and versioning cannot be turned off once on: AWS refuses).
    """

    Params = ArchiveParams
    action_kinds = (
        "cloudtrail.prepare_archive_bucket",
        "cloudtrail.grant_key",
        "cloudtrail.create_trail",
        "cloudtrail.update_trail",
    )
    permissions = (
        "sts:GetCallerIdentity",
        "cloudtrail:DescribeTrails",
        "cloudtrail:GetTrailStatus",
        "cloudtrail:GetEventSelectors",
        "cloudtrail:CreateTrail",
        "cloudtrail:UpdateTrail",
        "cloudtrail:PutEventSelectors",
        "cloudtrail:StartLogging",
        "cloudtrail:StopLogging",
        "cloudtrail:DeleteTrail",
        "cloudtrail:AddTags",
        "kms:DescribeKey",
        "kms:GetKeyPolicy",
        "kms:PutKeyPolicy",
        "s3:ListBucket",
        "s3:ListBucketVersions",
        "s3:GetBucketLocation",
        "s3:GetBucketVersioning",
        "s3:GetBucketObjectLockConfiguration",
        "s3:GetLifecycleConfiguration",
        "s3:GetBucketPolicy",
        "s3:GetBucketPublicAccessBlock",
        "s3:GetEncryptionConfiguration",
        "s3:CreateBucket",
        "s3:PutBucketOwnershipControls",
        "s3:PutBucketVersioning",
        "s3:PutBucketObjectLockConfiguration",
        "s3:PutLifecycleConfiguration",
        "s3:PutBucketPolicy",
        "s3:DeleteBucketPolicy",
        "s3:PutBucketPublicAccessBlock",
        "s3:PutEncryptionConfiguration",
        "s3:DeleteBucket",
    )
    outputs = ("trail_arn", "bucket", "bucket_arn")
    example = """\
- id: audit-archive
  uses: cloudtrail.archive
  with:
    kms_key: "{{ steps.kms.key_arn }}"
    retention_days: 365
    object_lock_mode: GOVERNANCE
    data_events: []
"""
    params: ArchiveParams

    def permission_scopes(self) -> list[Scope]:
        if not self.params.bucket:
            return []  # the name is made from the account id while planning
        writes = tuple(
            p for p in self.permissions if p.startswith(("s3:Put", "s3:Delete", "s3:Create"))
        )
        return [Scope(writes, {"BucketName": (self.params.bucket,)})]

    # -- observe -------------------------------------------------------------------------------
    def _region(self, ctx: StepContext) -> str:
        return self.params.region or ctx.regions[0]

    def _bucket_name(self, account: str, region: str) -> str:
        return self.params.bucket or f"migrate-cloudtrail-archive-{account}-{region}"

    def observe(self, ctx: StepContext) -> Facts:
        """Trails, the archive bucket's protections and the key policy, as they are."""
        region = self._region(ctx)
        account = ctx.account_id
        trails = read_trails(ctx, region)
        name = self.params.adopt or self.params.trail_name
        ours = trails.get(name)
        if self.params.adopt and ours is None:
            raise StepFailed(
                f"adopt: {self.params.adopt} names no trail visible from {region} (trails: "
                f"{', '.join(sorted(trails)) or 'none'}). Fix the name or drop adopt."
            )
        home = ours["home_region"] if ours else region
        arn = ours["arn"] if ours else trail_arn(home, account, name)
        bucket = self._bucket_name(account, region)
        bucket_account = self.params.bucket_account or account
        key_arn = KeyResolver(ctx, ctx.is_known).arn(self.params.kms_key, home)
        facts: Facts = {
            "region": home,
            "account": account,
            "trail": {"name": name, "arn": arn, "exists": ours is not None, "current": ours},
            "other_trails": {k: v for k, v in trails.items() if k != name},
            "bucket": self._observe_bucket(ctx, bucket, bucket_account, account, arn, key_arn),
            "key": self._observe_key(ctx, key_arn, home, account, arn),
        }
        facts["trail"]["differences"] = self._trail_differences(ours, bucket, key_arn)
        facts["compliant"], facts["warnings"] = self._assess(facts)
        facts["findings"] = self._findings(facts)
        return facts

    @staticmethod
    def _findings(facts: Facts) -> list[dict[str, Any]]:
        """The FTR view: the trail, its archive and its key answer CTL-001."""
        trail, bucket, key = facts["trail"], facts["bucket"], facts["key"]
        out = [
            finding(
                "CTL-001",
                "pass" if not trail["differences"] else "fail",
                f"trail {trail['name']}",
                "multi-Region, validated, SSE-KMS, logging"
                if not trail["differences"]
                else "; ".join(trail["differences"]),
            )
        ]
        if bucket.get("external"):
            out.append(
                finding(
                    "CTL-001",
                    "manual",
                    f"s3://{bucket['name']}",
                    f"in the log-archive account {bucket['account']}: its owner applies the "
                    "policy the plan prints, versioning and Object Lock",
                )
            )
        else:
            missing = bucket.get("missing") or []
            out.append(
                finding(
                    "CTL-001",
                    "fail" if missing else "pass",
                    f"s3://{bucket['name']}",
                    "lacks " + ", ".join(m.replace("_", " ") for m in missing)
                    if missing
                    else "versioned, Object Lock, CloudTrail-only, TLS-only, no deletes",
                )
            )
        out.append(
            finding(
                "CTL-001",
                "fail" if key["policy_missing"] else "pass",
                f"key policy of {key['arn'] or 'the key'}",
                "lets CloudTrail encrypt for this trail only"
                if not key["policy_missing"]
                else "lacks " + ", ".join(key["policy_missing"]),
            )
        )
        for name in facts["other_trails"]:
            out.append(
                finding(
                    "CTL-001",
                    "manual",
                    f"trail {name}",
                    "another trail: left as it is (see the warnings for its cost)",
                )
            )
        return out

    def _observe_bucket(
        self,
        ctx: StepContext,
        bucket: str,
        bucket_account: str,
        account: str,
        arn: str,
        key_arn: str | None,
    ) -> dict[str, Any]:
        wanted = bucket_statements(bucket, account, arn)
        facts: dict[str, Any] = {"name": bucket, "account": bucket_account}
        if bucket_account != account:
            # Another account's bucket: nothing to read from here; its owner applies the policy.
            facts.update(
                external=True, policy_needed={"Version": "2012-10-17", "Statement": wanted}
            )
            return facts
        s3 = ctx.client("s3")
        facts["external"] = False
        facts["exists"] = bucket_exists(s3, bucket)
        if not facts["exists"]:
            facts["missing"] = ["create"]
            return facts
        region = bucket_region(s3, bucket)
        s3r = ctx.client("s3", region)
        lock = bucket_object_lock(s3r, bucket)
        rules = bucket_lifecycle_rules(s3r, bucket)
        enc = bucket_encryption(s3r, bucket)
        facts.update(
            region=region,
            versioning=bucket_versioning(s3r, bucket),
            object_lock=lock,
            lifecycle_rule=next((r for r in rules if r.get("ID") == LIFECYCLE_RULE_ID), None),
            policy_missing=missing_statements(bucket_policy(s3r, bucket), wanted),
            public_access_block=bucket_public_access_block(s3r, bucket),
            encryption=enc,
        )
        missing: list[str] = []
        if facts["versioning"] != "Enabled":
            missing.append("versioning")
        if not (
            lock["enabled"]
            and lock["mode"] == self.params.object_lock_mode
            and lock["days"] == self.params.retention_days
        ):
            missing.append("object_lock")
        if facts["lifecycle_rule"] != self._lifecycle_rule():
            missing.append("lifecycle")
        if facts["policy_missing"]:
            missing.append("policy")
        if facts["public_access_block"] != BLOCK_ALL:
            missing.append("public_access_block")
        if not (enc["algorithm"] == "aws:kms" and key_arn and enc.get("kms_key") == key_arn):
            missing.append("encryption")
        facts["missing"] = missing
        return facts

    def _observe_key(
        self, ctx: StepContext, key_arn: str | None, region: str, account: str, arn: str
    ) -> dict[str, Any]:
        if key_arn is None:
            return {"arn": None, "policy_missing": list(KEY_SIDS)}
        kms = ctx.client("kms", region)
        text = kms.get_key_policy(KeyId=key_arn, PolicyName="default").get("Policy")
        return {
            "arn": key_arn,
            "policy_missing": missing_statements(parse_policy(text), key_statements(account, arn)),
        }

    def _trail_differences(
        self, current: dict[str, Any] | None, bucket: str, key_arn: str | None
    ) -> list[str]:
        """What differs between the trail and the archive trail (empty when compliant)."""
        if current is None:
            return ["missing"]
        diffs = []
        if current["bucket"] != bucket or current.get("prefix"):
            diffs.append(f"delivers to s3://{current['bucket']}/{current.get('prefix') or ''}")
        if not current["multi_region"]:
            diffs.append("single-Region")
        if not current["global_events"]:
            diffs.append("no global service events")
        if not current["validation"]:
            diffs.append("log file validation off")
        if not key_arn or current.get("kms_key") != key_arn:
            diffs.append(f"encrypted with {current.get('kms_key') or 'SSE-S3 only'}")
        if not current["management_read_write"]:
            diffs.append("does not record all management events")
        if sorted(set(self.params.data_events)) != current["data_events"]:
            diffs.append(f"data events {current['data_events'] or 'none'}")
        if not current["logging"]:
            diffs.append("logging off")
        if current.get("delivery_error"):
            diffs.append(f"delivery error {current['delivery_error']}")
        return diffs

    def _assess(self, facts: Facts) -> tuple[list[str], list[str]]:
        trail, bucket, key = facts["trail"], facts["bucket"], facts["key"]
        compliant: list[str] = []
        warnings: list[str] = []
        if not trail["differences"]:
            compliant.append(f"trail {trail['name']}")
        if not bucket.get("external") and not bucket.get("missing"):
            compliant.append(f"s3://{bucket['name']}")
        if key["arn"] and not key["policy_missing"]:
            compliant.append(f"key policy of {key['arn']}")
        if bucket.get("external"):
            warnings.append(
                f"s3://{bucket['name']} is in the log-archive account {bucket['account']}: "
                "migrate cannot check or change it from here. Its owner must enable versioning "
                "and Object Lock and apply this bucket policy before the run: "
                + json.dumps(bucket["policy_needed"], sort_keys=True)
            )
        if bucket.get("region") and key["arn"] and bucket["region"] not in key["arn"].split(":"):
            warnings.append(
                f"the key {key['arn']} is not in the bucket's region {bucket['region']}: "
                "CloudTrail needs the key and the bucket in the same region"
            )
        for name, other in facts["other_trails"].items():
            records = "records management events" if other["management_read_write"] else ""
            warnings.append(
                f"trail {name} (s3://{other['bucket']}, "
                f"{'multi-Region' if other['multi_region'] else 'single-Region'}) is left as it "
                f"is{': it also ' + records if records else ''}; a second copy of management "
                f"events costs ${EXTRA_MANAGEMENT_COPY_USD_PER_MILLION:.2f} per million events. "
                f"Stop it once the archive trail delivers, or take it over with adopt: {name}"
            )
        return compliant, warnings

    # -- decide --------------------------------------------------------------------------------
    def decide(self, ctx: StepContext, facts: Facts) -> list[Action]:
        """Bucket, key policy, then the trail: one target (the trail), so they run in order."""
        trail, bucket, key = facts["trail"], facts["bucket"], facts["key"]
        name = trail["name"]
        region = facts["region"]
        actions: list[Action] = []
        if bucket.get("region") and key["arn"] and bucket["region"] not in key["arn"].split(":"):
            return []  # named in facts["warnings"]; AWS would refuse the trail
        if not bucket.get("external") and bucket.get("missing"):
            create = "create" in bucket["missing"]
            what = (
                "create"
                if create
                else "configure " + ", ".join(m.replace("_", " ") for m in bucket["missing"])
            )
            actions.append(
                Action(
                    kind="cloudtrail.prepare_archive_bucket",
                    target=name,
                    summary=f"{what} archive bucket s3://{bucket['name']}: versioning, Object "
                    f"Lock {self.params.object_lock_mode} {self.params.retention_days} days, "
                    f"to {self.params.storage_class} after {self.params.transition_days} days, "
                    "CloudTrail-only delivery, TLS only, no deletes, SSE-KMS",
                    estimate=Estimate(duration_s=5, api_requests=10),
                    risks=(
                        "Object Lock and versioning cannot be turned off again (AWS refuses); "
                        f"{self.params.object_lock_mode.lower()} retention keeps every log for "
                        f"{self.params.retention_days} days",
                        *(
                            [
                                "an existing bucket: its other policy statements and lifecycle "
                                "rules are kept"
                            ]
                            if not create
                            else []
                        ),
                    ),
                    region=bucket.get("region") or region,
                    details={"bucket": bucket["name"], "create": create, "trail_arn": trail["arn"]},
                )
            )
        if key["policy_missing"]:
            actions.append(
                Action(
                    kind="cloudtrail.grant_key",
                    target=name,
                    summary=f"let cloudtrail.amazonaws.com encrypt trail {name}'s logs with key "
                    f"{key['arn'] or self.params.kms_key} (aws:SourceArn {trail['arn']}) and "
                    "readers in the account decrypt them",
                    estimate=Estimate(duration_s=1, api_requests=2),
                    region=region,
                    details={"trail_arn": trail["arn"]},
                )
            )
        diffs = trail["differences"]
        if diffs:
            data = ", ".join(sorted(set(self.params.data_events))) or "none"
            cost = (
                f"data events: {data} at ${DATA_EVENT_USD_PER_MILLION:.2f} per million events"
                if self.params.data_events
                else "no data events (management events: first copy free)"
            )
            kind = "cloudtrail.update_trail" if trail["exists"] else "cloudtrail.create_trail"
            verb = (
                f"take over trail {name} ({'; '.join(diffs)})"
                if trail["exists"]
                else f"create trail {name}"
            )
            actions.append(
                Action(
                    kind=kind,
                    target=name,
                    summary=f"{verb}: multi-Region, log file validation, SSE-KMS, to "
                    f"s3://{bucket['name']}, management events read+write; {cost}",
                    estimate=Estimate(duration_s=3, api_requests=4),
                    risks=(
                        "the archive is checked by GetTrailStatus after the run; the first "
                        "digest file arrives about an hour after logging starts",
                        *(
                            [
                                f"trail {name}'s new logs go to s3://{bucket['name']} instead of "
                                f"s3://{trail['current']['bucket']}"
                            ]
                            if trail["exists"] and trail["current"]["bucket"] != bucket["name"]
                            else []
                        ),
                    ),
                    region=region,
                    details={"differences": diffs},
                )
            )
        return actions

    # -- act -----------------------------------------------------------------------------------
    def _key_arn(self, ctx: StepContext, region: str) -> str:
        arn = KeyResolver(ctx, ctx.is_known).arn(self.params.kms_key, region)
        if arn is None:
            raise StepFailed(
                f"the KMS key {self.params.kms_key} cannot be resolved in {region}; run the step "
                "that creates it first, or name an existing key."
            )
        return arn

    def _lifecycle_rule(self) -> dict[str, Any]:
        return {
            "ID": LIFECYCLE_RULE_ID,
            "Filter": {"Prefix": ""},
            "Status": "Enabled",
            "Transitions": [
                {"Days": self.params.transition_days, "StorageClass": self.params.storage_class}
            ],
        }

    @handles("cloudtrail.prepare_archive_bucket")
    def _prepare_bucket(self, ctx: StepContext, action: Action) -> Wait | None:
        """Create the bucket with Object Lock (or find it), then put each protection, after
        recording what was there so rollback can put it back."""
        region = action.region or self._region(ctx)
        account = ctx.account_id
        bucket = str(action.details["bucket"])
        # The planned trail's ARN (an adopted trail keeps its own home region).
        arn = str(action.details["trail_arn"])
        key_arn = self._key_arn(ctx, region)
        s3 = ctx.client("s3", region)
        if not bucket_exists(s3, bucket):
            # Intent first: a crash after create leaves a bucket the record already names.
            ctx.record_resource("s3:archive-bucket", bucket, region=region, details={})
            kwargs: dict[str, Any] = {
                "Bucket": bucket,
                "ObjectLockEnabledForBucket": True,
                "ObjectOwnership": "BucketOwnerEnforced",
            }
            if region != "us-east-1":
                kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
            try:
                s3.create_bucket(**kwargs)
            except ClientError as exc:
                if not already_exists(exc):
                    raise
            created = True
        else:
            created = any(
                r.identifier == bucket and r.change == "created"
                for r in ctx.resources("s3:archive-bucket")
            )
        policy = bucket_policy(s3, bucket)
        rules = bucket_lifecycle_rules(s3, bucket)
        previous = {
            "policy": policy,
            "lifecycle": rules,
            "public_access_block": bucket_public_access_block(s3, bucket),
            "encryption": bucket_encryption(s3, bucket),
            "versioning": bucket_versioning(s3, bucket),
            "object_lock": bucket_object_lock(s3, bucket),
        }
        if not any(
            r.identifier == bucket and r.details.get("previous")
            for r in ctx.resources("s3:archive-bucket")
        ):
            ctx.record_resource(
                "s3:archive-bucket",
                bucket,
                change="created" if created else "modified",
                region=region,
                details={"previous": previous},
            )
        s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration=BLOCK_ALL)
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
        # Object Lock needs versioning first; on an existing bucket this call also enables it.
        s3.put_object_lock_configuration(
            Bucket=bucket,
            ObjectLockConfiguration={
                "ObjectLockEnabled": "Enabled",
                "Rule": {
                    "DefaultRetention": {
                        "Mode": self.params.object_lock_mode,
                        "Days": self.params.retention_days,
                    }
                },
            },
        )
        s3.put_bucket_encryption(
            Bucket=bucket,
            ServerSideEncryptionConfiguration={
                "Rules": [
                    {
                        "ApplyServerSideEncryptionByDefault": {
                            "SSEAlgorithm": "aws:kms",
                            "KMSMasterKeyID": key_arn,
                        },
                        "BucketKeyEnabled": True,
                    }
                ]
            },
        )
        kept = [r for r in rules if r.get("ID") != LIFECYCLE_RULE_ID]
        s3.put_bucket_lifecycle_configuration(
            Bucket=bucket, LifecycleConfiguration={"Rules": [*kept, self._lifecycle_rule()]}
        )
        merged = merge_statements(policy, bucket_statements(bucket, account, arn))
        s3.put_bucket_policy(Bucket=bucket, Policy=dump_policy(merged))
        return None

    @handles("cloudtrail.grant_key")
    def _grant_key(self, ctx: StepContext, action: Action) -> Wait | None:
        """Merge CloudTrail's statements into the key policy; the previous policy is recorded."""
        region = action.region or self._region(ctx)
        key_arn = self._key_arn(ctx, region)
        kms = ctx.client("kms", region)
        text = kms.get_key_policy(KeyId=key_arn, PolicyName="default")["Policy"]
        current = parse_policy(text)
        wanted = key_statements(ctx.account_id, str(action.details["trail_arn"]))
        if not missing_statements(current, wanted):
            return None  # a resumed action whose put went through
        ctx.record_resource(
            "kms:key-policy", key_arn, change="modified", region=region, details={"previous": text}
        )
        kms.put_key_policy(
            KeyId=key_arn,
            PolicyName="default",
            Policy=dump_policy(merge_statements(current, wanted)),
        )
        return None

    def _trail_settings(self, ctx: StepContext, region: str) -> dict[str, Any]:
        return {
            "S3BucketName": self._bucket_name(ctx.account_id, self._region(ctx)),
            "IsMultiRegionTrail": True,
            "IncludeGlobalServiceEvents": True,
            "EnableLogFileValidation": True,
            "KmsKeyId": self._key_arn(ctx, region),
        }

    @handles("cloudtrail.create_trail")
    def _create_trail(self, ctx: StepContext, action: Action) -> Wait | None:
        """Create the trail (looking first: a resumed action finds the one it made)."""
        region = action.region or self._region(ctx)
        name = self.params.trail_name
        cloudtrail = ctx.client("cloudtrail", region)
        if name not in read_trails(ctx, region):
            ctx.record_resource("cloudtrail:trail", name, region=region, details={})
            tags = [{"Key": "migrate:step", "Value": ctx.step_id}]
            if ctx.run_id:
                tags.append({"Key": "migrate:run", "Value": ctx.run_id})
            try:
                cloudtrail.create_trail(
                    Name=name, **self._trail_settings(ctx, region), TagsList=tags
                )
            except ClientError as exc:
                if not (already_exists(exc) or has_code(exc, "TrailAlreadyExistsException")):
                    raise
        self._configure_and_start(cloudtrail, name)
        return None

    @handles("cloudtrail.update_trail")
    def _update_trail(self, ctx: StepContext, action: Action) -> Wait | None:
        """Take over an existing trail; its previous settings are recorded for rollback."""
        region = action.region or self._region(ctx)
        name = self.params.adopt or self.params.trail_name
        current = read_trails(ctx, region).get(name)
        if current is None:
            raise StepFailed(f"trail {name} disappeared while the run went on; plan again.")
        home = current["home_region"]
        cloudtrail = ctx.client("cloudtrail", home)
        if not any(r.identifier == name for r in ctx.resources("cloudtrail:trail")):
            ctx.record_resource(
                "cloudtrail:trail",
                name,
                change="modified",
                region=home,
                details={"previous": current},
            )
        cloudtrail.update_trail(Name=current["arn"], **self._trail_settings(ctx, home))
        self._configure_and_start(cloudtrail, current["arn"])
        return None

    def _configure_and_start(self, cloudtrail: Any, name: str) -> None:
        cloudtrail.put_event_selectors(
            TrailName=name, EventSelectors=wanted_selectors(list(self.params.data_events))
        )
        cloudtrail.start_logging(Name=name)

    # -- verify, outputs, rollback --------------------------------------------------------------
    def verify(self, ctx: StepContext) -> None:
        """GetTrailStatus says logging with no delivery error; bucket and key are in place."""
        facts = self.observe(ctx)
        trail = facts["trail"]
        status = trail_status(ctx, facts["region"], trail["arn"])
        problems = []
        if not status.get("IsLogging"):
            problems.append(f"trail {trail['name']} is not logging")
        if status.get("LatestDeliveryError"):
            problems.append(f"delivery error {status['LatestDeliveryError']}")
        problems += [f"trail: {d}" for d in trail["differences"]]
        bucket = facts["bucket"]
        if not bucket.get("external") and bucket.get("missing"):
            problems.append(f"s3://{bucket['name']} lacks {', '.join(bucket['missing'])}")
        if facts["key"]["policy_missing"]:
            problems.append(f"the key policy lacks {', '.join(facts['key']['policy_missing'])}")
        if problems:
            raise StepFailed(
                "the audit-log archive is not complete: " + "; ".join(problems) + ". Check the "
                "key policy and bucket policy CloudTrail needs (the plan lists them), then resume."
            )

    def published(self, ctx: StepContext) -> dict[str, Any]:
        """``trail_arn``, ``bucket`` and ``bucket_arn``."""
        region = self._region(ctx)
        name = self.params.adopt or self.params.trail_name
        bucket = self._bucket_name(ctx.account_id, region)
        trail = read_trails(ctx, region).get(name)
        arn = trail["arn"] if trail else trail_arn(region, ctx.account_id, name)
        return {"trail_arn": arn, "bucket": bucket, "bucket_arn": f"arn:aws:s3:::{bucket}"}

    def planned_outputs(self, ctx: StepContext, facts: Facts) -> dict[str, Any]:
        """The bucket's name and the trail's ARN are known before anything is created."""
        bucket = facts["bucket"]["name"]
        return {
            "trail_arn": facts["trail"]["arn"],
            "bucket": bucket,
            "bucket_arn": f"arn:aws:s3:::{bucket}",
        }

    def rollback(self, ctx: StepContext) -> None:
        """Trail first (created: deleted; taken over: its settings restored), then the key
        policy, then the bucket (settings restored; a created bucket is deleted only while it
        holds no object version: archived logs are never deleted)."""
        for res in ctx.resources("cloudtrail:trail"):
            cloudtrail = ctx.client("cloudtrail", res.region)
            previous = res.details.get("previous")
            if res.change == "created" or not previous:
                _delete_trail(cloudtrail, res.identifier)
                continue
            settings: dict[str, Any] = {
                "S3BucketName": previous["bucket"],
                "IsMultiRegionTrail": previous["multi_region"],
                "IncludeGlobalServiceEvents": previous["global_events"],
                "EnableLogFileValidation": previous["validation"],
                "KmsKeyId": previous.get("kms_key") or "",
            }
            if previous.get("prefix"):
                settings["S3KeyPrefix"] = previous["prefix"]
            cloudtrail.update_trail(Name=previous["arn"], **settings)
            selectors = previous.get("selectors") or {}
            if selectors.get("AdvancedEventSelectors"):
                cloudtrail.put_event_selectors(
                    TrailName=previous["arn"],
                    AdvancedEventSelectors=selectors["AdvancedEventSelectors"],
                )
            elif selectors.get("EventSelectors"):
                cloudtrail.put_event_selectors(
                    TrailName=previous["arn"], EventSelectors=selectors["EventSelectors"]
                )
            if not previous.get("logging"):
                cloudtrail.stop_logging(Name=previous["arn"])
        for res in ctx.resources("kms:key-policy"):
            # Our statements come out of the policy as it is now: other steps (Session Manager,
            # the EBS default key) may have merged theirs since, and those stay.
            remove_key_statements(ctx.client("kms", res.region), res.identifier, set(KEY_SIDS))
        for res in ctx.resources("s3:archive-bucket"):
            self._rollback_bucket(ctx, res.identifier, res.region, res.change, res.details)

    def _rollback_bucket(
        self,
        ctx: StepContext,
        bucket: str,
        region: str | None,
        change: str,
        details: dict[str, Any],
    ) -> None:
        s3 = ctx.client("s3", region)
        if not bucket_exists(s3, bucket):
            return
        previous = details.get("previous") or {}
        restored = without_statements(bucket_policy(s3, bucket), set(BUCKET_SIDS))
        if restored:
            s3.put_bucket_policy(Bucket=bucket, Policy=dump_policy(restored))
        else:
            s3.delete_bucket_policy(Bucket=bucket)
        if change == "created":
            versions = s3.list_object_versions(Bucket=bucket, MaxKeys=1)
            if not versions.get("Versions") and not versions.get("DeleteMarkers"):
                s3.delete_bucket(Bucket=bucket)
                return
            # Logs arrived: they are audit evidence under Object Lock, so the bucket stays.
            return
        rules = [r for r in previous.get("lifecycle") or [] if r.get("ID") != LIFECYCLE_RULE_ID]
        if rules:
            s3.put_bucket_lifecycle_configuration(
                Bucket=bucket, LifecycleConfiguration={"Rules": rules}
            )
        else:
            s3.delete_bucket_lifecycle(Bucket=bucket)
        pab = previous.get("public_access_block")
        if pab:
            s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration=pab)
        else:
            s3.delete_public_access_block(Bucket=bucket)
        enc = previous.get("encryption") or {}
        if enc.get("algorithm"):
            default: dict[str, Any] = {"SSEAlgorithm": enc["algorithm"]}
            if enc.get("kms_key"):
                default["KMSMasterKeyID"] = enc["kms_key"]
            s3.put_bucket_encryption(
                Bucket=bucket,
                ServerSideEncryptionConfiguration={
                    "Rules": [
                        {
                            "ApplyServerSideEncryptionByDefault": default,
                            "BucketKeyEnabled": bool(enc.get("bucket_key")),
                        }
                    ]
                },
            )
        else:
            s3.delete_bucket_encryption(Bucket=bucket)


def _delete_trail(cloudtrail: Any, name: str) -> None:
    """Stop and delete a trail this run created (gone already: nothing to do). Its logs stay."""
    or_default(lambda: cloudtrail.stop_logging(Name=name), None)
    or_default(lambda: cloudtrail.delete_trail(Name=name), None)
