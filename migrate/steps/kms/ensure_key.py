"""``kms.ensure_key``: a customer-managed KMS key with an alias, rotation on, and a safe policy."""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import Field

from migrate.aws.errors import already_exists, error_code
from migrate.engine.base import Action, Estimate, Facts, Step, StepParams, handles
from migrate.engine.context import StepContext
from migrate.engine.registry import step
from migrate.errors import StepFailed

TAG_ALIAS = "migrate:alias"
ADMIN_ACTIONS = [
    "kms:Create*",
    "kms:Describe*",
    "kms:Enable*",
    "kms:List*",
    "kms:Put*",
    "kms:Update*",
    "kms:Revoke*",
    "kms:Disable*",
    "kms:Get*",
    "kms:Delete*",
    "kms:TagResource",
    "kms:UntagResource",
    "kms:ScheduleKeyDeletion",
    "kms:CancelKeyDeletion",
]
USE_ACTIONS = [
    "kms:Encrypt",
    "kms:Decrypt",
    "kms:ReEncrypt*",
    "kms:GenerateDataKey*",
    "kms:DescribeKey",
]


class KmsKeyParams(StepParams):
    """Parameters of ``kms.ensure_key``."""

    alias: str = Field(default="alias/migrate-ftr", pattern=r"^alias/[A-Za-z0-9/_-]{1,250}$")
    description: str = "Customer-managed key for FTR encryption at rest (created by migrate)"
    key_policy: Literal["service", "strict"] = "service"
    services: list[str] = Field(default_factory=lambda: ["s3", "secretsmanager", "rds"])
    administrators: list[str] = Field(default_factory=list)
    region: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)


def key_policy(
    mode: str, account: str, region: str, services: list[str], administrators: list[str]
) -> dict[str, Any]:
    """The key policy document for ``mode`` (see the step's docstring)."""
    root = f"arn:aws:iam::{account}:root"
    if mode == "strict":
        return {
            "Version": "2012-10-17",
            "Id": "migrate-strict",
            "Statement": [
                {
                    "Sid": "EnableIAMPolicies",
                    "Effect": "Allow",
                    "Principal": {"AWS": root},
                    "Action": "kms:*",
                    "Resource": "*",
                }
            ],
        }
    statements: list[dict[str, Any]] = [
        {
            # Administration stays possible through IAM: the key can never be orphaned.
            "Sid": "KeyAdministrationThroughIAM",
            "Effect": "Allow",
            "Principal": {"AWS": root},
            "Action": ADMIN_ACTIONS,
            "Resource": "*",
        },
        {
            # The pattern of AWS-managed keys: anyone in the account may use the key, but only
            # through the named services, so existing readers of buckets/secrets keep working.
            "Sid": "UseThroughServicesInThisAccount",
            "Effect": "Allow",
            "Principal": {"AWS": "*"},
            "Action": USE_ACTIONS,
            "Resource": "*",
            "Condition": {
                "StringEquals": {
                    "kms:CallerAccount": account,
                    "kms:ViaService": [f"{svc}.{region}.amazonaws.com" for svc in services],
                }
            },
        },
    ]
    if administrators:
        statements.append(
            {
                "Sid": "KeyAdministrators",
                "Effect": "Allow",
                "Principal": {"AWS": administrators},
                "Action": ADMIN_ACTIONS,
                "Resource": "*",
            }
        )
    return {"Version": "2012-10-17", "Id": "migrate-service", "Statement": statements}


def _find_alias(kms: Any, alias: str) -> dict[str, Any] | None:
    for page in kms.get_paginator("list_aliases").paginate():
        for entry in page.get("Aliases", []):
            if entry.get("AliasName") == alias:
                return dict(entry)
    return None


def _find_tagged_key(kms: Any, alias: str) -> str | None:
    """A key this tool created for ``alias`` whose alias was never made (crash in between)."""
    for page in kms.get_paginator("list_keys").paginate():
        for key in page.get("Keys", []):
            key_id = key["KeyId"]
            try:
                meta = kms.describe_key(KeyId=key_id)["KeyMetadata"]
            except Exception as exc:
                if error_code(exc) in ("AccessDeniedException", "NotFoundException"):
                    continue
                raise
            if meta.get("KeyManager") != "CUSTOMER" or meta.get("KeyState") != "Enabled":
                continue
            tags = kms.list_resource_tags(KeyId=key_id).get("Tags", [])
            if any(t.get("TagKey") == TAG_ALIAS and t.get("TagValue") == alias for t in tags):
                return str(key_id)
    return None


@step("kms.ensure_key")
class EnsureKmsKey(Step):
    """Create or find a customer-managed KMS key with an alias and yearly rotation.

    With ``key_policy: service`` (default) the key policy lets principals of this account use the key
    only through the listed services (``kms:ViaService`` + ``kms:CallerAccount``, the pattern of
    AWS-managed keys), so moving objects and secrets to the key does not cut off their readers;
    administration stays with IAM (the account root statement covers only key administration).
    ``key_policy: strict`` leaves every grant to IAM: readers then need ``kms:Decrypt`` in their own
    policies, and the plan warns about it. An existing key under the alias is kept as it is; only
    rotation is turned on.
    """

    Params = KmsKeyParams
    action_kinds = ("kms.create_key", "kms.restore_key", "kms.enable_rotation")
    permissions = (
        "kms:ListAliases",
        "kms:ListKeys",
        "kms:DescribeKey",
        "kms:ListResourceTags",
        "kms:GetKeyRotationStatus",
        "kms:GetKeyPolicy",
        "kms:CreateKey",
        "kms:CreateAlias",
        "kms:TagResource",
        "kms:EnableKeyRotation",
        "kms:EnableKey",
        "kms:CancelKeyDeletion",
        "kms:PutKeyPolicy",
        "sts:GetCallerIdentity",
    )
    outputs = ("key_arn", "key_id", "alias")
    example = """\
- id: kms
  uses: kms.ensure_key
  with:
    alias: alias/migrate-ftr
    key_policy: service
"""
    params: KmsKeyParams

    def _region(self, ctx: StepContext) -> str:
        return self.params.region or ctx.regions[0]

    def observe(self, ctx: StepContext) -> Facts:
        """Look up the alias, its key's state and rotation."""
        kms = ctx.client("kms", self._region(ctx))
        alias = _find_alias(kms, self.params.alias)
        facts: Facts = {"alias": self.params.alias, "region": self._region(ctx), "key": None}
        if alias is None or not alias.get("TargetKeyId"):
            facts["compliant"] = []
            return facts
        meta = kms.describe_key(KeyId=alias["TargetKeyId"])["KeyMetadata"]
        rotation = None
        if meta.get("KeyManager") == "CUSTOMER" and meta.get("KeyState") == "Enabled":
            rotation = bool(
                kms.get_key_rotation_status(KeyId=meta["KeyId"]).get("KeyRotationEnabled")
            )
        facts["key"] = {
            "arn": meta["Arn"],
            "id": meta["KeyId"],
            "manager": meta.get("KeyManager"),
            "state": meta.get("KeyState"),
            "spec": meta.get("KeySpec") or meta.get("CustomerMasterKeySpec"),
            "rotation": rotation,
        }
        ok = meta.get("KeyState") == "Enabled" and rotation
        facts["compliant"] = [self.params.alias] if ok else []
        return facts

    def decide(self, ctx: StepContext, facts: Facts) -> list[Action]:
        """Create the key, or repair rotation/state of the existing one."""
        alias = self.params.alias
        key = facts.get("key")
        risks: list[str] = []
        if self.params.key_policy == "strict":
            risks.append(
                "key_policy: strict - principals can use the key only if their IAM policies "
                "grant kms:Decrypt/GenerateDataKey on it; every reader of the buckets and "
                "secrets moved to this key without such a grant loses access."
            )
        if key is None:
            return [
                Action(
                    kind="kms.create_key",
                    target=alias,
                    summary=f"create customer-managed key {alias} (rotation on, "
                    f"{self.params.key_policy} key policy)",
                    estimate=Estimate(duration_s=3, api_requests=4, monthly_usd=1.0),
                    risks=tuple(risks),
                    region=facts["region"],
                )
            ]
        if key["manager"] != "CUSTOMER":
            raise StepFailed(
                f"{alias} points to an AWS-managed key ({key['arn']}); FTR needs a "
                "customer-managed key. Choose another alias in the playbook (with.alias)."
            )
        actions: list[Action] = []
        if key["state"] in ("Disabled", "PendingDeletion"):
            actions.append(
                Action(
                    kind="kms.restore_key",
                    target=alias,
                    summary=f"re-enable key {key['id']} ({key['state']}) behind {alias}",
                    estimate=Estimate(duration_s=2, api_requests=2),
                    risks=(f"the key behind {alias} is {key['state']}",),
                    region=facts["region"],
                )
            )
        elif key["state"] != "Enabled":
            raise StepFailed(
                f"the key behind {alias} is in state {key['state']}; it cannot be used. "
                "Choose another alias or fix the key, then plan again."
            )
        if not key.get("rotation"):
            actions.append(
                Action(
                    kind="kms.enable_rotation",
                    target=alias,
                    summary=f"turn on yearly rotation of {alias}",
                    estimate=Estimate(duration_s=1, api_requests=1),
                    region=facts["region"],
                )
            )
        return actions

    # Create or repair the key; each is safe to repeat after a crash at any point.
    @handles("kms.create_key")
    def _create_key(self, ctx: StepContext, action: Action) -> None:
        kms = ctx.client("kms", action.region or self._region(ctx))
        alias = self.params.alias
        existing = _find_alias(kms, alias)
        if existing is not None and existing.get("TargetKeyId"):
            key_id = str(existing["TargetKeyId"])
        else:
            key_id = _find_tagged_key(kms, alias) or self._create(ctx, kms)
            try:
                kms.create_alias(AliasName=alias, TargetKeyId=key_id)
            except Exception as exc:
                if not already_exists(exc):
                    raise
        kms.enable_key_rotation(KeyId=key_id)
        meta = kms.describe_key(KeyId=key_id)["KeyMetadata"]
        ctx.record_resource("kms:key", meta["Arn"], region=action.region, details={"alias": alias})

    def _aliased_key(self, kms: Any) -> str:
        entry = _find_alias(kms, self.params.alias)
        if entry is None:
            raise StepFailed(
                f"alias {self.params.alias} disappeared while the run was going on; plan again."
            )
        return str(entry["TargetKeyId"])

    @handles("kms.restore_key")
    def _restore_key(self, ctx: StepContext, action: Action) -> None:
        kms = ctx.client("kms", action.region or self._region(ctx))
        key_id = self._aliased_key(kms)
        state = kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"]
        if state == "PendingDeletion":
            kms.cancel_key_deletion(KeyId=key_id)
        kms.enable_key(KeyId=key_id)
        ctx.record_resource("kms:key", key_id, change="modified", region=action.region)

    @handles("kms.enable_rotation")
    def _enable_rotation(self, ctx: StepContext, action: Action) -> None:
        kms = ctx.client("kms", action.region or self._region(ctx))
        key_id = self._aliased_key(kms)
        kms.enable_key_rotation(KeyId=key_id)
        ctx.record_resource("kms:key", key_id, change="modified", region=action.region)

    def _create(self, ctx: StepContext, kms: Any) -> str:
        region = self._region(ctx)
        policy = key_policy(
            self.params.key_policy,
            ctx.account_id,
            region,
            self.params.services,
            self.params.administrators,
        )
        tags = [{"TagKey": TAG_ALIAS, "TagValue": self.params.alias}]
        tags += [{"TagKey": k, "TagValue": v} for k, v in sorted(self.params.tags.items())]
        if ctx.run_id:
            tags.append({"TagKey": "migrate:run", "TagValue": ctx.run_id})
        meta = kms.create_key(
            Description=self.params.description,
            KeyUsage="ENCRYPT_DECRYPT",
            KeySpec="SYMMETRIC_DEFAULT",
            Policy=json.dumps(policy),
            Tags=tags,
        )["KeyMetadata"]
        return str(meta["KeyId"])

    def verify(self, ctx: StepContext) -> None:
        """The alias resolves to an enabled customer-managed key with rotation on."""
        facts = self.observe(ctx)
        key = facts.get("key")
        if not key or key["state"] != "Enabled" or not key.get("rotation"):
            raise StepFailed(
                f"{self.params.alias} is not an enabled key with rotation on after the step "
                f"(observed: {key}). Resume to retry."
            )

    def published(self, ctx: StepContext) -> dict[str, Any]:
        """``key_arn``, ``key_id`` and ``alias``."""
        key = self.observe(ctx)["key"]
        return {"key_arn": key["arn"], "key_id": key["id"], "alias": self.params.alias}

    def planned_outputs(self, ctx: StepContext, facts: Facts) -> dict[str, Any]:
        """An existing key's ARN is known while planning."""
        key = facts.get("key")
        if key and key.get("manager") == "CUSTOMER":
            return {"key_arn": key["arn"], "key_id": key["id"], "alias": self.params.alias}
        return {"alias": self.params.alias}

    def rollback(self, ctx: StepContext) -> None:
        """Keys are never deleted automatically: data may already be encrypted under them."""
        return None
