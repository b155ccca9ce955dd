"""``s3.reencrypt``: re-encrypt the objects already in S3 with the target KMS key, losing nothing.

The step is the plan/act/verify contract only; each concept it uses has its module beside it:
``params`` (the schema), ``settings`` (bucket settings read while planning), ``counts`` (object
facts from the listing, and the listing itself), ``inventory`` (object facts from an S3 Inventory
report), ``readers`` (who reads the bucket and whether the key lets them), ``risks`` (the plan's
prose), ``run`` (one bucket's action), ``worker`` (one object), ``ledger`` (the bucket's counters,
report file and open uploads), ``batch`` (S3 Batch Operations) and ``versions`` (superseded
versions).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from functools import partial
from typing import Any

from botocore.exceptions import ClientError

from migrate.aws.arns import arn_region, parse_arn
from migrate.aws.errors import access_denied, error_code, not_found, or_default
from migrate.aws.iam_scope import Scope
from migrate.aws.kms import KeyResolver, check_usable_key
from migrate.aws.s3 import bucket_region
from migrate.engine.base import Action, Estimate, Facts, Step, Wait, handles
from migrate.engine.context import StepContext
from migrate.engine.registry import step
from migrate.errors import StepFailed
from migrate.steps.s3 import batch as sb
from migrate.steps.s3 import inventory as inv
from migrate.steps.s3 import objects as so
from migrate.steps.s3 import readers as rd
from migrate.steps.s3.buckets import select_buckets
from migrate.steps.s3.counts import list_pages, scan_listing
from migrate.steps.s3.ledger import report_path, residual_keys
from migrate.steps.s3.params import ReencryptParams
from migrate.steps.s3.risks import batch_risks, human_size, reencrypt_risks
from migrate.steps.s3.run import BucketRun
from migrate.steps.s3.settings import noncurrent_versions, observe_settings, versioning_status
from migrate.steps.s3.versions import delete_superseded
from migrate.steps.s3.worker import RESIDUAL_FIXES, head_state, update_lane_usable

__all__ = ["ReencryptParams", "S3Reencrypt"]


# HEADs of the run's own observe (see _objects): a bucket refusing them all is left out.
RUN_HEAD_SAMPLE = 5


@step("s3.reencrypt")
class S3Reencrypt(Step):
    """Re-encrypt existing S3 objects in place with the target KMS key, losing nothing.

    Every object of the selected buckets that is unencrypted or SSE-S3 (and, with ``rekey: true``,
    under another KMS key) is copied onto itself with SSE-KMS, bucket keys on, its metadata, content
    headers, tags, storage class, website redirect, Object Lock settings and ACL grants; or, where
    S3 supports it (``lane: auto`` on AWS, or ``lane: update``), re-encrypted without a copy by
    UpdateObjectEncryption. SSE-C and archived objects are skipped and listed; older versions stay.
    Work is checkpointed per listing batch and verified by encryption state, so a killed run
    resumes without re-copying. The plan warns about notifications, replication, lifecycle clocks
    and readers that would lose access (the key policy is checked against the bucket policy), and
    counts from a fresh S3 Inventory report where one is configured. ``mode: batch`` hands the
    copies to S3 Batch Operations (one job per storage class, waited for as a run state, failed
    tasks retried by the copy lane).
    """

    Params = ReencryptParams
    action_kinds = ("s3.reencrypt_objects", "s3.delete_superseded_versions")
    permissions = (
        "s3:ListAllMyBuckets",
        "s3:GetBucketLocation",
        "s3:GetBucketTagging",
        "s3:GetEncryptionConfiguration",
        "s3:GetBucketVersioning",
        "s3:GetBucketObjectLockConfiguration",
        "s3:GetBucketOwnershipControls",
        "s3:GetBucketNotification",
        "s3:GetReplicationConfiguration",
        "s3:GetBucketPolicy",
        "s3:GetBucketWebsite",
        "s3:GetBucketPublicAccessBlock",
        "s3:ListBucket",
        "s3:ListBucketVersions",
        "s3:GetObject",
        "s3:GetObjectVersion",
        "s3:GetObjectAcl",
        "s3:GetObjectRetention",
        "s3:GetObjectLegalHold",
        "s3:UpdateObjectEncryption",
        "s3:GetObjectTagging",
        "s3:PutObject",
        "s3:PutObjectAcl",
        "s3:PutObjectTagging",
        "s3:PutObjectRetention",
        "s3:PutObjectLegalHold",
        "s3:AbortMultipartUpload",
        "s3:DeleteObjectVersion",
        "s3:GetInventoryConfiguration",
        "s3:CreateJob",
        "s3:DescribeJob",
        "iam:PassRole",
        "kms:DescribeKey",
        "kms:GetKeyPolicy",
        "kms:GenerateDataKey",
        "kms:Decrypt",
        "kms:Encrypt",
        "kms:ReEncryptFrom",
        "kms:ReEncryptTo",
    )
    passes_roles_to = ("batchoperations.s3.amazonaws.com",)
    outputs = ("objects_reencrypted", "objects_skipped")
    example = """\
- id: s3-reencrypt
  uses: s3.reencrypt
  with:
    names: ["legacy-*"]
    kms_key: "{{ steps.kms.key_arn }}"
    max_rps: 300
"""
    params: ReencryptParams

    def permission_scopes(self) -> list[Scope]:
        """Object writes only in the buckets the playbook names (and the batch bucket, where
        a job's manifest and report go); reads stay wide (Inventory reports live elsewhere)."""
        buckets = self.params.iam_patterns()
        if buckets is None:
            return []
        if self.params.batch_bucket:
            buckets = (*buckets, self.params.batch_bucket)
        writes = tuple(
            p
            for p in self.permissions
            if p.startswith(("s3:Put", "s3:Delete", "s3:Abort", "s3:UpdateObject"))
        )
        return [Scope(writes, {"BucketName": buckets})]

    # -- observe ---------------------------------------------------------------------------------
    def observe(self, ctx: StepContext) -> Facts:
        """Per bucket: settings that a copy affects, and objects by encryption state."""
        s3 = ctx.client("s3")
        resolver = KeyResolver(ctx, ctx.is_known)
        buckets: dict[str, Any] = {}
        selection_warnings: list[str] = []
        for name, region in select_buckets(ctx, self.params, selection_warnings).items():
            buckets[name] = {"region": region}
        if ctx.is_known(self.params.kms_key) and not self.params.kms_key.startswith("alias/aws/"):
            check_usable_key(
                ctx, self.params.kms_key, {b["region"] for b in buckets.values()}, "s3"
            )
        target_arns = {
            region: resolver.arn(self.params.kms_key, region)
            for region in sorted({b["region"] for b in buckets.values()})
        }
        key_policies = {
            region: rd.key_policy(ctx, arn, region) for region, arn in target_arns.items()
        }
        seen_readers = rd.cloudtrail_readers(ctx)
        denied: dict[str, str] = {}
        for name in ctx.progress(sorted(buckets), desc="buckets", unit="bucket"):
            region = buckets[name]["region"]
            arn = target_arns.get(region)
            client = ctx.client("s3", region)
            try:
                settings = observe_settings(
                    client, name, partial(self._objects, ctx, client, name, arn)
                )
            except ClientError as exc:
                if not access_denied(exc):
                    raise
                # A bucket policy (VPC endpoint only, TLS only from another client, ...), an
                # SCP or the migrator's own policy refuses it: one bucket, not the whole plan.
                operation = exc.operation_name or "a read"
                denied[name] = f"{operation}: {error_code(exc)}"
                continue
            buckets[name].update(settings)
            buckets[name]["readers"] = rd.bucket_readers(
                buckets[name].pop("_policy"),
                seen_readers.get(name, []),
                key_policies.get(region),
                _account(arn),
                region,
            )
        for name in denied:
            buckets.pop(name)
        compliant = [n for n, b in buckets.items() if self._settled(b)]
        facts_batch = self._observe_batch_bucket(ctx, s3)
        return {
            **facts_batch,
            "buckets": buckets,
            "denied_buckets": denied,
            "warnings": selection_warnings
            + [
                f"s3://{name}: not re-encrypted, the migrator may not read it (AWS refused "
                f"{why}): its bucket policy, an SCP or the migrator's policy denies it. Allow "
                "the migrator what `migrate permissions PLAYBOOK` lists on it, then plan again"
                for name, why in sorted(denied.items())
            ],
            "target_key": self.params.kms_key,
            "target_key_arns": target_arns,
            "key_policy_known": {r: p is not None for r, p in key_policies.items()},
            "compliant": sorted(compliant),
        }

    def _observe_batch_bucket(self, ctx: StepContext, s3: Any) -> dict[str, Any]:
        """In batch mode: where the manifest/report bucket is (jobs read it in their region)."""
        name = self.params.batch_bucket
        if self.params.mode != "batch" or not name or not ctx.is_known(name):
            return {}
        region = or_default(
            lambda: bucket_region(s3, name), None, when=lambda e: not_found(e) or access_denied(e)
        )
        return {"batch_bucket": {"name": name, "region": region}}

    def _objects(
        self, ctx: StepContext, s3: Any, bucket: str, target_arn: str | None
    ) -> dict[str, Any]:
        """Counts from a fresh S3 Inventory report where one is configured, else a HEAD scan;
        the facts say which source was used (and the report's date)."""
        skipped: list[str] = []
        if self.params.inventory:
            counts, skipped = inv.observe_from_inventory(
                s3,
                bucket,
                lambda name: ctx.client("s3", bucket_region(s3, name)),
                # Only to judge freshness: the facts hold the report's date, never "now".
                now=datetime.now(UTC),
                max_age_h=self.params.inventory_max_age_h,
                multipart_threshold=self.params.multipart_threshold,
                part_size=self.params.part_size,
            )
            if counts is not None:
                if skipped:
                    counts["inventory_skipped"] = skipped
                return counts
        counts = scan_listing(
            s3,
            bucket,
            target_arn,
            # The plan samples for its estimate. When a run observes (the key was not known at
            # planning, or a failed verification asked for it), its action HEADs every object
            # anyway and skips those already done, so a few HEADs suffice; only when those few
            # are all refused is the whole sample HEADed, so a bucket is left out exactly when
            # the plan would leave it out (every read refused), never on 5 unlucky keys.
            head_limit=self.params.plan_head_limit,
            head_first=None if ctx.planning else RUN_HEAD_SAMPLE,
            threads=self.params.concurrency,
            multipart_threshold=self.params.multipart_threshold,
            part_size=self.params.part_size,
        )
        counts["source"] = "listing"
        if skipped:
            counts["inventory_skipped"] = skipped
        return counts

    def _to_do(self, bucket: dict[str, Any]) -> int:
        """Objects needing work, extrapolated from the HEADed sample to the whole bucket."""
        objects = bucket["objects"]
        sample: int = sum(
            n for s, n in objects["by_state"].items() if so.needs_work(s, self.params.rekey)
        )
        if not objects["scanned"]:
            return int(objects["count"])  # nothing was looked at: every object may need work
        count: int = objects["count"]
        return round(sample * count / int(objects["scanned"]))

    def _settled(self, bucket: dict[str, Any]) -> bool:
        """True when the bucket is known to need no work: every object was looked at (a HEAD
        of each, or an S3 Inventory report of all) and none needs it. A sample, however clean,
        never settles a bucket: the objects it did not see may be unencrypted."""
        objects = bucket["objects"]
        if objects["by_state"].get(so.DENIED):
            return False  # their encryption is unknown: the run lists them with the fix
        return int(objects["scanned"]) >= int(objects["count"]) and self._to_do(bucket) == 0

    # -- decide ----------------------------------------------------------------------------------
    def decide(self, ctx: StepContext, facts: Facts) -> list[Action]:
        """One action per bucket with objects to re-encrypt (and, if asked, version clean-up)."""
        actions: list[Action] = []
        key_known = ctx.is_known(self.params.kms_key)
        for name, bucket in sorted(facts["buckets"].items()):
            region = bucket["region"]
            target_arn = facts["target_key_arns"].get(region)
            key_region = arn_region(target_arn) or arn_region(self.params.kms_key)
            if key_known and key_region and key_region != region:
                continue  # AWS refuses a key of another region; s3.default_encryption says so too
            to_do = self._to_do(bucket)
            noncurrent = bucket.get("noncurrent_versions", 0)
            if self._settled(bucket) and not (
                noncurrent and self.params.noncurrent_versions == "delete"
            ):
                continue
            actions.append(self._reencrypt_action(ctx, name, bucket, to_do, facts, key_known))
            if self.params.noncurrent_versions == "delete" and bucket["versioning"] != "Disabled":
                actions.append(
                    Action(
                        kind="s3.delete_superseded_versions",
                        target=name,
                        summary=f"delete the old versions of s3://{name} that this run's "
                        "encrypted copies supersede (only those; others stay)",
                        estimate=Estimate(api_requests=2 * to_do, duration_s=to_do / 100),
                        risks=(
                            "irreversible: the superseded versions are deleted; their content "
                            "stays in the encrypted current versions",
                        ),
                        gate="delete-versions",
                        destructive=True,
                        region=region,
                        details={"bucket": name, "object_lock": bucket["object_lock"]},
                    )
                )
        return actions

    def _reencrypt_action(
        self,
        ctx: StepContext,
        name: str,
        bucket: dict[str, Any],
        to_do: int,
        facts: Facts,
        key_known: bool,
    ) -> Action:
        objects = bucket["objects"]
        ratio = objects["count"] / objects["scanned"] if objects["scanned"] else 1.0
        by_state = {s: round(n * ratio) for s, n in objects["by_state"].items()}
        bytes_to_do = round(
            sum(
                b
                for s, b in objects["bytes_by_state"].items()
                if so.needs_work(s, self.params.rekey)
            )
            * ratio
        )
        use_update = update_lane_usable(self.params, ctx.aws.endpoint_url)
        update_objects = by_state.get(so.SSE_S3, 0) if use_update else 0
        costs = so.estimate_costs(
            objects=to_do,
            multipart_objects=min(objects["over_threshold"], to_do),
            multipart_parts=objects["multipart_parts"],
            acl_reads=bucket["acl_enabled"],
            update_lane_objects=update_objects,
            bucket_key=self.params.bucket_key,
            max_rps=self.params.max_rps,
            list_pages=objects["list_pages"],
        )
        risks = reencrypt_risks(self.params, name, bucket, by_state, facts, key_known)
        estimated = (
            f" (estimated from a uniform sample of {objects['scanned']}; the run checks every "
            "object)"
            if 0 < objects["scanned"] < objects["count"]
            else " (none sampled: every object is checked)"
            if not objects["scanned"] and objects["count"]
            else ""
        )
        inventory = objects.get("inventory") or {}
        if objects.get("source") == "inventory":
            estimated = f" (counted from the S3 Inventory report of {inventory.get('date')})"
        cost = costs.cost_usd
        how = ""
        jobs = 0
        if self.params.mode == "batch":
            jobs = max(
                1, sum(1 for c in objects.get("by_storage_class", {}) if c in sb.BATCH_CLASSES)
            )
            cost = round(cost + sb.batch_costs(to_do, jobs), 4)
            how = f" by S3 Batch Operations (up to {jobs} job(s), one per storage class)"
            risks.extend(batch_risks(self.params, bucket, facts))
        return Action(
            kind="s3.reencrypt_objects",
            target=name,
            summary=f"re-encrypt {to_do} of {objects['count']} objects ({human_size(bytes_to_do)}) in "
            f"s3://{name} with {self.params.kms_key}{how}{estimated}; ~{costs.requests} "
            f"requests, ~{costs.kms_requests} KMS requests, ~${cost:.2f}",
            estimate=Estimate(
                duration_s=costs.duration_s,
                api_requests=costs.requests,
                bytes=bytes_to_do,
                cost_usd=cost,
            ),
            risks=tuple(risks),
            region=bucket["region"],
            details={
                "bucket": name,
                "objects": objects["count"],
                "to_do": to_do,
                "by_state": by_state,
                "kms_requests": costs.kms_requests,
                "requests_per_object": 2 if not bucket["acl_enabled"] else 3,
                "versioned": bucket["versioning"] != "Disabled",
                "source": objects.get("source", "listing"),
                "inventory_date": inventory.get("date"),
                "mode": self.params.mode,
                "batch_jobs": jobs,
            },
        )

    # -- act -------------------------------------------------------------------------------------
    @handles("s3.reencrypt_objects")
    def _reencrypt_objects(self, ctx: StepContext, action: Action) -> Wait | None:
        """Re-encrypt one bucket's objects, resumably (checkpointed per batch)."""
        if not ctx.is_known(self.params.kms_key):
            raise StepFailed(
                f"the KMS key for s3://{action.target} is still {self.params.kms_key}; run the "
                "step that creates it first."
            )
        bucket, region = action.target, action.region or ctx.regions[0]
        target_arn = KeyResolver(ctx, ctx.is_known).arn(self.params.kms_key, region)
        if target_arn is None:
            raise StepFailed(
                f"the KMS key {self.params.kms_key} cannot be found in {region} (the region of "
                f"s3://{bucket}). Check `kms_key` in the playbook and that the key exists there."
            )
        return BucketRun(ctx, action, self.params, target_arn, region).run()

    @handles("s3.delete_superseded_versions")
    def _delete_superseded(self, ctx: StepContext, action: Action) -> None:
        """Delete the versions this run's copies replaced, after checking each copy is there."""
        bucket, region = action.target, action.region or ctx.regions[0]
        if action.details.get("object_lock"):
            raise StepFailed(
                f"s3://{bucket} has Object Lock: locked versions are never deleted by migrate. "
                "Set noncurrent_versions: report for this bucket."
            )
        target_arn = KeyResolver(ctx, ctx.is_known).arn(self.params.kms_key, region)
        if target_arn is None:
            return
        delete_superseded(ctx, ctx.client("s3", region), bucket, target_arn)

    # -- verify ----------------------------------------------------------------------------------
    def verify(self, ctx: StepContext) -> None:
        """HEAD a sample (default all) of every bucket's objects: each is under the target key,
        or is one of the kinds that are skipped and reported (SSE-C, archived, other keys, keys
        with an older null version in a Suspended bucket)."""
        facts_regions = select_buckets(ctx, self.params)
        resolver = KeyResolver(ctx, ctx.is_known)
        bad: list[str] = []
        checked = 0
        for name, region in facts_regions.items():
            arn = resolver.arn(self.params.kms_key, region)
            if arn is None or arn_region(arn) != region:
                continue
            client = ctx.client("s3", region)
            try:
                checked += self._verify_bucket(ctx, client, name, arn, bad)
            except ClientError as exc:
                if not access_denied(exc) or name in ctx.action_targets():
                    raise
                # Refused to the migrator and so left out of the plan (its warning named it):
                # nothing was done here, there is nothing to verify.
        if bad:
            raise StepFailed(
                f"{len(bad)} of {checked} sampled objects are not encrypted with the target key: "
                + ", ".join(bad[:10])
                + ". They were written or changed during the run, or failed; `migrate resume` "
                "re-encrypts them."
            )

    def _verify_bucket(
        self, ctx: StepContext, client: Any, name: str, arn: str, bad: list[str]
    ) -> int:
        """HEAD the verification sample of one bucket; append what is not under the key to
        ``bad``; the number of objects checked."""
        checked = 0
        # Left and listed by the run with their reason (an older null version at stake,
        # public grants in force, AccessDenied, ...): residuals, not verification failures.
        exempt = residual_keys(report_path(ctx, name))
        if versioning_status(client, name) == "Suspended":
            exempt |= noncurrent_versions(client, name)[1]
        with ThreadPoolExecutor(max_workers=self.params.concurrency) as pool:
            for page in list_pages(client, name, "", self.params.batch_size):
                sample = [
                    o
                    for o in page
                    if so.in_sample(o["Key"], self.params.verify_sample) and o["Key"] not in exempt
                ]
                states = pool.map(lambda o, c=client, n=name, a=arn: head_state(c, n, o, a), sample)
                for obj, state in zip(sample, states, strict=True):
                    checked += 1
                    if so.needs_work(state, self.params.rekey):
                        bad.append(f"s3://{name}/{obj['Key']} ({state})")
        return checked

    def published(self, ctx: StepContext) -> dict[str, Any]:
        """Counts over the actions of this run (from their recorded results)."""
        reencrypted = skipped = 0
        for result in ctx.action_results():
            reencrypted += sum(int(result.get(k, 0)) for k in ("copied", "updated", "batch_copied"))
            skipped += sum(int(result.get(k, 0)) for k in RESIDUAL_FIXES)
        return {"objects_reencrypted": reencrypted, "objects_skipped": skipped}

    def rollback(self, ctx: StepContext) -> None:
        """Nothing to undo: objects stay encrypted (older versions, where kept, hold the past)."""
        return None


def _account(arn: str | None) -> str:
    parsed = parse_arn(arn)
    return parsed.account if parsed else ""
