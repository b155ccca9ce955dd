"""``s3.default_encryption``: SSE-KMS default encryption with bucket keys on selected buckets."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from migrate.aws.arns import arn_region
from migrate.aws.errors import error_code
from migrate.aws.iam_scope import Scope
from migrate.aws.kms import KeyResolver, check_usable_key
from migrate.aws.s3 import bucket_encryption
from migrate.engine.base import Action, Estimate, Facts, Step, Wait, handles
from migrate.engine.context import StepContext
from migrate.engine.registry import step
from migrate.engine.selection import Selection
from migrate.errors import StepFailed
from migrate.steps.s3.buckets import select_buckets


class DefaultEncryptionParams(Selection):
    """Parameters of ``s3.default_encryption``."""

    kms_key: str = Field(min_length=1)
    bucket_key: bool = True
    include_log_buckets: bool = False


@step("s3.default_encryption")
class S3DefaultEncryption(Step):
    """Set SSE-KMS default encryption with S3 Bucket Keys on every selected bucket.

    Buckets are selected by ``names`` (globs, default all), ``exclude`` and ``tags``. Buckets that
    already default to SSE-KMS with the target key and bucket keys on are left alone (compliant).
    Default encryption covers new objects only; ``s3.reencrypt`` handles the objects already there.
    The key must be in the bucket's region (AWS refuses otherwise); such buckets are skipped and
    reported. Log buckets are left alone and listed unless ``include_log_buckets: true``: S3 server
    access logs are delivered only to SSE-S3 buckets, and a CloudTrail bucket under SSE-KMS needs
    the key policy to allow CloudTrail. The previous configuration is recorded, and ``migrate rollback`` restores it.
    """

    Params = DefaultEncryptionParams
    action_kinds = ("s3.put_default_encryption",)
    permissions = (
        "s3:ListAllMyBuckets",
        "s3:GetBucketLocation",
        "s3:GetBucketTagging",
        "s3:GetEncryptionConfiguration",
        "s3:GetBucketLogging",
        "cloudtrail:DescribeTrails",
        "s3:PutEncryptionConfiguration",
        "kms:DescribeKey",
    )
    example = """\
- id: s3-default
  uses: s3.default_encryption
  with:
    names: ["*"]
    exclude: ["*-logs"]
    kms_key: "{{ steps.kms.key_arn }}"
"""
    params: DefaultEncryptionParams

    def permission_scopes(self) -> list[Scope]:
        buckets = self.params.iam_patterns()
        if buckets is None:
            return []
        return [Scope(("s3:PutEncryptionConfiguration",), {"BucketName": buckets})]

    def observe(self, ctx: StepContext) -> Facts:
        """Region, tags and default encryption of every selected bucket."""
        s3 = ctx.client("s3")
        resolver = KeyResolver(ctx, ctx.is_known)
        buckets: dict[str, Any] = {}
        warnings: list[str] = []
        selected = select_buckets(ctx, self.params, warnings)
        if ctx.is_known(self.params.kms_key) and not self.params.kms_key.startswith("alias/aws/"):
            check_usable_key(ctx, self.params.kms_key, set(selected.values()), "s3")
        for name, region in selected.items():
            enc = bucket_encryption(ctx.client("s3", region), name)
            enc["kms_key_arn"] = resolver.arn(enc["kms_key"], region)
            buckets[name] = {"region": region, "encryption": enc}
        for name, why in self._log_buckets(ctx, s3, list(buckets)).items():
            buckets[name]["log_bucket"] = why
        target_arns = {
            region: resolver.arn(self.params.kms_key, region)
            for region in sorted({b["region"] for b in buckets.values()})
        }
        compliant = [
            name
            for name, b in buckets.items()
            if self._compliant(b["encryption"], target_arns.get(b["region"]))
        ]
        warnings += [
            f"s3://{name} left on its current default encryption: {b['log_bucket']} "
            "(include_log_buckets: true overrides)"
            for name, b in buckets.items()
            if b.get("log_bucket") and not self.params.include_log_buckets and name not in compliant
        ]
        # A key can only encrypt buckets of its own region (AWS refuses others): such a bucket
        # is named in the plan with its reason instead of vanishing from it.
        key_region = arn_region(self.params.kms_key) if ctx.is_known(self.params.kms_key) else None
        for name, b in buckets.items():
            arn_of_region = target_arns.get(b["region"])
            where = arn_region(arn_of_region) or key_region
            if name not in compliant and where and where != b["region"]:
                b["skipped"] = (
                    f"the key is in {where} but the bucket is in {b['region']}: AWS refuses a "
                    "key from another region"
                )
                warnings.append(
                    f"s3://{name} skipped: {b['skipped']}; give a key of {b['region']} "
                    "(a kms.ensure_key step with regions: [...]) or exclude the bucket"
                )
        return {
            "buckets": buckets,
            "target_key": self.params.kms_key,
            "target_key_arns": target_arns,
            "compliant": compliant,
            "warnings": warnings,
        }

    @staticmethod
    def _log_buckets(ctx: StepContext, s3: Any, names: list[str]) -> dict[str, str]:
        """Buckets that AWS services write logs to, where SSE-KMS by default breaks delivery:
        server access log targets support SSE-S3 only, and CloudTrail needs the key policy to let
        cloudtrail.amazonaws.com use the key."""
        found: dict[str, str] = {}
        for name in names:
            try:
                target = s3.get_bucket_logging(Bucket=name).get("LoggingEnabled", {})
            except Exception as exc:
                if error_code(exc) in ("AccessDenied", "NoSuchBucket"):
                    continue
                raise
            bucket = target.get("TargetBucket")
            if bucket in names:
                found[bucket] = (
                    f"server access logs of s3://{name} go here, and S3 only delivers them to "
                    "buckets whose default encryption is SSE-S3"
                )
        for region in ctx.regions:
            try:
                trails = ctx.client("cloudtrail", region).describe_trails().get("trailList", [])
            except Exception as exc:
                if error_code(exc) in ("AccessDeniedException", "UnrecognizedClientException"):
                    continue
                raise
            for trail in trails:
                bucket = trail.get("S3BucketName")
                if bucket in names and bucket not in found:
                    found[bucket] = (
                        f"CloudTrail trail {trail.get('Name')} delivers here; SSE-KMS by default "
                        "stops delivery unless the key policy lets cloudtrail.amazonaws.com use "
                        "the key (encrypt the trail with its own KmsKeyId instead)"
                    )
        return found

    def _compliant(self, enc: dict[str, Any], target_arn: str | None) -> bool:
        return (
            enc["algorithm"] == "aws:kms"
            and target_arn is not None
            and enc.get("kms_key_arn") == target_arn
            and (enc["bucket_key"] or not self.params.bucket_key)
        )

    def decide(self, ctx: StepContext, facts: Facts) -> list[Action]:
        """One action per bucket that does not default to the target key yet."""
        actions: list[Action] = []
        for name, bucket in facts["buckets"].items():
            if name in facts["compliant"]:
                continue
            if bucket.get("log_bucket") and not self.params.include_log_buckets:
                continue  # listed in facts["warnings"]; include_log_buckets: true overrides
            if bucket.get("skipped"):
                continue  # named in facts["warnings"] with its reason
            region = bucket["region"]
            risks = [
                "only new objects are encrypted by default; existing objects need s3.reencrypt",
            ]
            enc = bucket["encryption"]
            was = enc["algorithm"] or "none"
            if enc["algorithm"] == "aws:kms" and enc.get("kms_key"):
                was = f"aws:kms with {enc['kms_key']}"
                risks.append(
                    "the bucket already defaults to another KMS key; new objects will use the "
                    "target key instead"
                )
            actions.append(
                Action(
                    kind="s3.put_default_encryption",
                    target=name,
                    summary=f"set default encryption of s3://{name} to SSE-KMS with key "
                    f"{self.params.kms_key}, bucket keys on (was {was})",
                    estimate=Estimate(duration_s=1, api_requests=2),
                    risks=tuple(risks),
                    region=region,
                    details={
                        "previous": {k: enc[k] for k in ("algorithm", "kms_key", "bucket_key")}
                    },
                )
            )
        return actions

    def _rules(self) -> dict[str, Any]:
        return {
            "Rules": [
                {
                    "ApplyServerSideEncryptionByDefault": {
                        "SSEAlgorithm": "aws:kms",
                        "KMSMasterKeyID": self.params.kms_key,
                    },
                    "BucketKeyEnabled": self.params.bucket_key,
                }
            ]
        }

    @handles("s3.put_default_encryption")
    def _put_default_encryption(self, ctx: StepContext, action: Action) -> Wait | None:
        """Put the bucket's default encryption (a PUT replaces, so repeating is harmless)."""
        if not ctx.is_known(self.params.kms_key):
            raise StepFailed(
                f"the KMS key for s3://{action.target} is still {self.params.kms_key}; run the "
                "step that creates it first."
            )
        s3 = ctx.client("s3", action.region)
        ctx.record_resource(
            "s3:bucket-encryption",
            action.target,
            change="modified",
            region=action.region,
            details={"previous": action.details.get("previous")},
        )
        s3.put_bucket_encryption(
            Bucket=action.target, ServerSideEncryptionConfiguration=self._rules()
        )
        return None

    def verify(self, ctx: StepContext) -> None:
        """Every selected bucket (outside skipped ones) now defaults to the target key."""
        facts = self.observe(ctx)
        missing = [
            name
            for name, bucket in facts["buckets"].items()
            if name not in facts["compliant"]
            and not (bucket.get("log_bucket") and not self.params.include_log_buckets)
            and arn_region(facts["target_key_arns"].get(bucket["region"])) == bucket["region"]
        ]
        if missing:
            raise StepFailed(
                "default encryption is not SSE-KMS with the target key on: "
                + ", ".join(missing[:10])
                + ". Resume to retry; check that nothing else rewrites bucket settings."
            )

    def rollback(self, ctx: StepContext) -> None:
        """Restore each bucket's previous default encryption."""
        for res in ctx.resources("s3:bucket-encryption"):
            s3 = ctx.client("s3", res.region)
            previous = (res.details or {}).get("previous") or {}
            if previous.get("algorithm"):
                default: dict[str, Any] = {"SSEAlgorithm": previous["algorithm"]}
                if previous.get("kms_key"):
                    default["KMSMasterKeyID"] = previous["kms_key"]
                s3.put_bucket_encryption(
                    Bucket=res.identifier,
                    ServerSideEncryptionConfiguration={
                        "Rules": [
                            {
                                "ApplyServerSideEncryptionByDefault": default,
                                "BucketKeyEnabled": bool(previous.get("bucket_key")),
                            }
                        ]
                    },
                )
            else:
                s3.delete_bucket_encryption(Bucket=res.identifier)
