"""The plan's risk notes for re-encrypting a bucket: what changes for its users and readers.

Each note is a sentence the planning meeting reads; they are derived from the bucket's facts
(settings, object counts by state, readers) and the step's parameters only.
"""

from __future__ import annotations

from typing import Any

from migrate.engine.base import Facts
from migrate.steps.s3 import objects as so
from migrate.steps.s3.params import ReencryptParams


def human_size(n: int) -> str:
    """Bytes as the plan prints them (``1.5 GiB``)."""
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"


def reencrypt_risks(
    params: ReencryptParams,
    name: str,
    bucket: dict[str, Any],
    by_state: dict[str, int],
    facts: Facts,
    key_known: bool,
) -> list[str]:
    """What re-encrypting the bucket changes for its users, in the plan's words."""
    risks: list[str] = []
    objects = bucket["objects"]
    if objects.get("source") == "inventory":
        report = objects["inventory"]
        risks.append(
            f"counts are from the S3 Inventory report {report['config_id']} of "
            f"{report['date']} UTC: objects written since are not in them (the run lists "
            "and HEADs every object itself)"
        )
        if params.rekey and by_state.get(so.KMS_ANY):
            risks.append(
                f"{by_state[so.KMS_ANY]} objects are SSE-KMS and the inventory does not say "
                "under which key: all are counted as to re-key (an upper bound)"
            )
    for reason in objects.get("inventory_skipped", []):
        risks.append(f"S3 Inventory not used for the counts: {reason}")
    if bucket["notifications"]:
        risks.append(
            f"event notifications ({', '.join(bucket['notifications'])}) fire for every "
            "copied object (s3:ObjectCreated:Copy): consumers see a burst of events"
        )
    if bucket["replication"]:
        risks.append(
            "replication is configured: every copied object is replicated again (cost, "
            "and the replication role needs kms:Decrypt/Encrypt on the keys)"
        )
    risks.append(
        "copies reset LastModified: lifecycle transitions and expirations restart their clock"
    )
    if bucket["object_lock"]:
        risks.append(
            "Object Lock is on: locked objects get an encrypted new version; the locked "
            "unencrypted versions stay until their retention ends (never deleted)"
        )
    if by_state.get(so.ARCHIVED):
        risks.append(
            f"{by_state[so.ARCHIVED]} archived objects (Glacier/Deep Archive) are skipped "
            "and listed: restore them first to re-encrypt them"
        )
    if by_state.get(so.DENIED):
        risks.append(
            f"about {by_state[so.DENIED]} objects refused the migrator's HEAD in the plan's sample "
            "(AccessDenied: a bucket policy or the object's ACL): they are left and listed with "
            "the fix (grant s3:GetObject/s3:PutObject on them, then `migrate resume`); the "
            "rest of the bucket is re-encrypted."
        )
    if by_state.get(so.SSE_C):
        risks.append(
            f"{by_state[so.SSE_C]} SSE-C objects cannot be copied without their key: skipped "
            "and listed"
        )
    if by_state.get(so.KMS_ANY) and not params.rekey:
        risks.append(
            f"{by_state[so.KMS_ANY]} objects are SSE-KMS (under the target key or another "
            "one, the inventory does not say): left as they are"
        )
    if by_state.get(so.OTHER_KMS) and not params.rekey:
        risks.append(
            f"{by_state[so.OTHER_KMS]} objects are under another KMS key: left as they are "
            "(rekey: true moves them to the target key)"
        )
    if bucket["versioning"] != "Disabled":
        old = bucket.get("noncurrent_versions", 0)
        risks.append(
            f"versioned: each copy adds a version, so the old unencrypted data stays stored "
            f"(and billed) until lifecycle expires it; {old} older versions exist and are "
            + (
                "reported, not re-encrypted"
                if params.noncurrent_versions == "report"
                else "deleted after approval where an encrypted copy supersedes them"
            )
        )
    null = bucket.get("noncurrent_null") or {}
    if null.get("count"):
        first = ", ".join(null.get("keys", [])[:5])
        risks.append(
            f"versioning is Suspended: {null['count']} objects have an older version with the "
            f"id null (first: {first}), which an in-place copy would replace (S3 gives every new "
            "object in a Suspended bucket the version id null): those objects are skipped and "
            "listed. To re-encrypt them too, enable versioning (aws s3api put-bucket-versioning "
            "--versioning-configuration Status=Enabled) and plan again"
        )
    if bucket.get("website"):
        risks.append(
            "static website hosting is on: the website endpoint serves anonymous requests, "
            "which cannot read SSE-KMS objects - the site stops working (serve it through "
            "CloudFront with origin access control and kms:Decrypt for it, or exclude it)"
        )
    bpa = bucket.get("public_access_block") or {}
    if bucket["acl_enabled"] and bpa.get("BlockPublicAcls"):
        risks.append(
            "Block Public Access refuses public ACL grants (BlockPublicAcls): objects with "
            "grants to AllUsers/AuthenticatedUsers are copied without them where "
            "IgnorePublicAcls already makes them ineffective"
            + (
                ""
                if bpa.get("IgnorePublicAcls")
                else " - here it does not, so such objects are skipped and listed (their grants "
                "are in force; remove them or turn IgnorePublicAcls on)"
            )
            + "; each is noted in the run's report"
        )
    if bucket["acl_enabled"]:
        risks.append(
            "ACLs are enabled: non-default object ACL grants are re-applied with the copy, "
            "but grants to AllUsers stop working (anonymous requests cannot use KMS); "
            "objects uploaded by another account become owned by this account"
        )
    if bucket["objects"]["over_threshold"]:
        risks.append(
            f"{bucket['objects']['over_threshold']} objects above "
            f"{human_size(params.multipart_threshold)} use a multipart copy: their ETag "
            "becomes a multipart ETag"
        )
    if not key_known:
        risks.append(
            "the key does not exist yet: who can decrypt with it is checked when it does "
            "(plan again after the key step)"
        )
    elif not facts["key_policy_known"].get(bucket["region"]):
        risks.append(
            "the key policy could not be read (kms:GetKeyPolicy): readers' access to the "
            "key is not checked"
        )
    for reader in bucket.get("readers", []):
        who = reader["principal"]
        if who == "*":
            risks.append(
                "the bucket policy allows anonymous reads: anonymous requests cannot read "
                "SSE-KMS objects (a public website or a CDN without signed requests breaks)"
            )
        elif reader["access"] == "none":
            kind = "cross-account reader" if reader["cross_account"] else "reader"
            how = (
                "was seen reading it in CloudTrail"
                if reader.get("seen_in") == "CloudTrail"
                else "may read it by its bucket policy"
            )
            risks.append(
                f"{kind} {who} {how} (s3://{name}) but the key policy does not allow it "
                "kms:Decrypt: it loses access (add it to the key policy)"
            )
        elif reader["access"] == "iam":
            seen = " (seen in CloudTrail)" if reader.get("seen_in") == "CloudTrail" else ""
            risks.append(
                f"reader {who}{seen} needs kms:Decrypt on the key in its own IAM policies "
                "(the key policy delegates to its account)"
            )
    risks.append(
        "every reader needs kms:Decrypt on the key; readers granted by IAM policies only "
        "are not checked here"
    )
    return risks


def batch_risks(params: ReencryptParams, bucket: dict[str, Any], facts: Facts) -> list[str]:
    """What ``mode: batch`` changes about the guarantees, and problems with its bucket."""
    risks = [
        "mode: batch - S3 Batch Operations copies without an ETag condition: an object "
        "rewritten between the manifest and its task is re-encrypted as it then is (its new "
        "content is kept) but with the storage class the manifest recorded",
        "mode: batch - a job applies one storage class, one ACL, one website redirect and "
        "one Object Lock setting to all its objects: the manifest is split per storage "
        "class, and objects with non-default ACL grants, a website redirect, Object Lock "
        "settings, a size above the multipart threshold or a class Batch Operations cannot "
        "write go through the copy lane instead",
        f"mode: batch - the role {params.batch_role_arn} must trust "
        "batchoperations.s3.amazonaws.com and may s3:GetObject*/s3:PutObject* on the "
        "bucket, kms:Decrypt/kms:GenerateDataKey on the keys, read the manifests and write "
        f"the completion reports in s3://{params.batch_bucket}/"
        f"{params.batch_prefix}/",
    ]
    where = facts.get("batch_bucket")
    if where and where.get("region") is None:
        risks.append(
            f"mode: batch - the bucket {where['name']} for manifests and reports does not "
            "exist or cannot be read: create it (in the region of the buckets) first"
        )
    elif where and where["region"] != bucket["region"]:
        risks.append(
            f"mode: batch - the bucket {where['name']} is in {where['region']}, the jobs run "
            f"in {bucket['region']}: S3 Batch Operations reads its manifest in the job's "
            "region, so use a manifest bucket there"
        )
    return risks
