"""``s3.default_encryption``: SSE-KMS default encryption with bucket keys on selected buckets."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from migrate.aws import error_code
from migrate.engine.base import Action, Estimate, Facts, Step, Wait
from migrate.engine.context import StepContext
from migrate.engine.registry import step
from migrate.errors import StepFailed
from migrate.steps._select import Selection, tag_dict


class DefaultEncryptionParams(Selection):
    """Parameters of ``s3.default_encryption``."""

    kms_key: str = Field(min_length=1)
    bucket_key: bool = True
    include_log_buckets: bool = False


def bucket_region(s3: Any, bucket: str) -> str:
    """The region of a bucket (``None`` location means us-east-1; ``EU`` is eu-west-1)."""
    loc = s3.get_bucket_location(Bucket=bucket).get("LocationConstraint")
    if not loc:
        return "us-east-1"
    return "eu-west-1" if loc == "EU" else str(loc)


def bucket_tags(s3: Any, bucket: str) -> dict[str, str]:
    """A bucket's tags ({} when it has none)."""
    try:
        return tag_dict(s3.get_bucket_tagging(Bucket=bucket).get("TagSet"))
    except Exception as exc:
        if error_code(exc) in ("NoSuchTagSet", "NoSuchTagSetError"):
            return {}
        raise


def bucket_encryption(s3: Any, bucket: str) -> dict[str, Any]:
    """The default encryption of a bucket as ``{algorithm, kms_key, bucket_key}``."""
    try:
        rules = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"][
            "Rules"
        ]
    except Exception as exc:
        if error_code(exc) == "ServerSideEncryptionConfigurationNotFoundError":
            return {"algorithm": None, "kms_key": None, "bucket_key": False}
        raise
    rule = rules[0] if rules else {}
    default = rule.get("ApplyServerSideEncryptionByDefault", {})
    return {
        "algorithm": default.get("SSEAlgorithm"),
        "kms_key": default.get("KMSMasterKeyID"),
        "bucket_key": bool(rule.get("BucketKeyEnabled", False)),
    }


def select_buckets(ctx: StepContext, selection: Selection) -> dict[str, str]:
    """The buckets a step's ``names``/``exclude``/``tags`` select, with their regions, sorted."""
    s3 = ctx.client("s3")
    names = sorted(
        b["Name"] for b in s3.list_buckets().get("Buckets", []) if selection.name_matches(b["Name"])
    )
    selected: dict[str, str] = {}
    for name in ctx.progress(names, desc="buckets", unit="bucket"):
        if selection.tags and not selection.tags_match(bucket_tags(s3, name)):
            continue
        selected[name] = bucket_region(s3, name)
    return selected


class KeyResolver:
    """Resolves key ids, ARNs and aliases to key ARNs (cached; read-only)."""

    def __init__(self, ctx: StepContext) -> None:
        self.ctx = ctx
        self._cache: dict[tuple[str, str], str | None] = {}

    def arn(self, key: str | None, region: str) -> str | None:
        """The key ARN behind ``key`` in ``region``, or None if it cannot be resolved."""
        if not key or not self.ctx.is_known(key):
            return None
        if key.startswith("arn:") and ":key/" in key:
            return key
        cache_key = (key, region)
        if cache_key not in self._cache:
            try:
                meta = self.ctx.client("kms", region).describe_key(KeyId=key)["KeyMetadata"]
                self._cache[cache_key] = str(meta["Arn"])
            except Exception as exc:
                if error_code(exc) in ("NotFoundException", "AccessDeniedException"):
                    self._cache[cache_key] = None
                else:
                    raise
        return self._cache[cache_key]


def arn_region(arn: str | None) -> str | None:
    """The region field of an ARN."""
    if arn and arn.startswith("arn:"):
        parts = arn.split(":")
        return parts[3] if len(parts) > 3 else None
    return None


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

    def observe(self, ctx: StepContext) -> Facts:
        """Region, tags and default encryption of every selected bucket."""
        s3 = ctx.client("s3")
        resolver = KeyResolver(ctx)
        buckets: dict[str, Any] = {}
        for name, region in select_buckets(ctx, self.params).items():
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
        warnings = [
            f"s3://{name} left on its current default encryption: {b['log_bucket']} "
            "(include_log_buckets: true overrides)"
            for name, b in buckets.items()
            if b.get("log_bucket") and not self.params.include_log_buckets and name not in compliant
        ]
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
        key_known = ctx.is_known(self.params.kms_key)
        for name, bucket in facts["buckets"].items():
            if name in facts["compliant"]:
                continue
            if bucket.get("log_bucket") and not self.params.include_log_buckets:
                continue  # listed in facts["warnings"]; include_log_buckets: true overrides
            region = bucket["region"]
            target_arn = facts["target_key_arns"].get(region)
            key_region = arn_region(target_arn) or arn_region(self.params.kms_key)
            risks = [
                "only new objects are encrypted by default; existing objects need s3.reencrypt",
            ]
            if key_known and key_region and key_region != region:
                risks.append(
                    f"the key is in {key_region} but the bucket is in {region}: AWS refuses a "
                    "key from another region; this bucket is skipped"
                )
                continue
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

    def act(self, ctx: StepContext, action: Action) -> Wait | None:
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
