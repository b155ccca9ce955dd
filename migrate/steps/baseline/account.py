"""``ftr.account_baseline``: the account-level FTR requirements, fixed where an API can and
reported where only a human can."""

from __future__ import annotations

import fnmatch
from functools import partial
from typing import Any, Literal

from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict, Field, model_validator

from migrate.aws.errors import access_denied, or_default
from migrate.aws.ftr import Status, finding
from migrate.aws.iam_scope import Scope, iam_pattern
from migrate.aws.kms import KeyResolver
from migrate.aws.policies import (
    bucket_policy,
    dump_policy,
    merge_statements,
    missing_statements,
    parse_policy,
    remove_key_statements,
    tls_only_statement,
    without_statements,
)
from migrate.aws.s3 import bucket_region
from migrate.engine.base import Action, Estimate, Facts, Step, StepParams, Wait, handles
from migrate.engine.context import StepContext
from migrate.engine.registry import step
from migrate.errors import StepFailed

TLS_SID = "MigrateDenyInsecureTransport"
# AWS refuses bucket policies over 20 KB.
BUCKET_POLICY_MAX_BYTES = 20 * 1024
BLOCK_ALL = {
    "BlockPublicAcls": True,
    "IgnorePublicAcls": True,
    "BlockPublicPolicy": True,
    "RestrictPublicBuckets": True,
}
CONTACT_TYPES = ("BILLING", "OPERATIONS", "SECURITY")
# What UpdateAccountPasswordPolicy takes (GetAccountPasswordPolicy also returns ExpirePasswords).
PASSWORD_POLICY_KEYS = frozenset(
    {
        "MinimumPasswordLength",
        "RequireSymbols",
        "RequireNumbers",
        "RequireUppercaseCharacters",
        "RequireLowercaseCharacters",
        "AllowUsersToChangePassword",
        "MaxPasswordAge",
        "PasswordReusePrevention",
        "HardExpiry",
    }
)


class PasswordPolicy(BaseModel):
    """The IAM password policy (defaults follow CIS AWS Foundations and the FTR's IAM section)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    minimum_length: int = Field(default=14, ge=6, le=128)
    require_symbols: bool = True
    require_numbers: bool = True
    require_uppercase: bool = True
    require_lowercase: bool = True
    allow_users_to_change: bool = True
    max_age_days: int = Field(default=90, ge=0, le=1095)
    reuse_prevention: int = Field(default=24, ge=0, le=24)
    hard_expiry: bool = False

    def api(self) -> dict[str, Any]:
        """The ``UpdateAccountPasswordPolicy`` parameters (0 days: passwords never expire)."""
        params: dict[str, Any] = {
            "MinimumPasswordLength": self.minimum_length,
            "RequireSymbols": self.require_symbols,
            "RequireNumbers": self.require_numbers,
            "RequireUppercaseCharacters": self.require_uppercase,
            "RequireLowercaseCharacters": self.require_lowercase,
            "AllowUsersToChangePassword": self.allow_users_to_change,
            "HardExpiry": self.hard_expiry,
        }
        if self.max_age_days:
            params["MaxPasswordAge"] = self.max_age_days
        if self.reuse_prevention:
            params["PasswordReusePrevention"] = self.reuse_prevention
        return params


class Contact(BaseModel):
    """One alternate contact (the Account API's fields)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=64)
    title: str = Field(min_length=1, max_length=50)
    # Empty: not given (a playbook can take contacts from -p parameters that default to "").
    email: str = Field(pattern=r"^([^@\s]+@[^@\s]+\.[^@\s]+)?$")
    phone: str = Field(default="", pattern=r"^([\s0-9()+-]{4,25})?$")


class AccountBaselineParams(StepParams):
    """Parameters of ``ftr.account_baseline``."""

    password_policy: PasswordPolicy | None = Field(default_factory=PasswordPolicy)
    alternate_contacts: dict[Literal["billing", "operations", "security"], Contact] = Field(
        default_factory=dict
    )
    block_public_access: bool = True
    ebs_encryption: bool = True
    kms_key: str | None = None
    tls_buckets: list[str] = Field(default_factory=lambda: ["*"])
    tls_exclude: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _contacts_need_a_phone(self) -> AccountBaselineParams:
        for kind, contact in self.given_contacts().items():
            if not contact.phone:
                raise ValueError(f"the {kind} contact needs a phone number (the Account API does)")
        return self

    def given_contacts(self) -> dict[str, Contact]:
        """The contacts to set, by type in the API's spelling (entries without email skipped)."""
        return {k.upper(): c for k, c in self.alternate_contacts.items() if c.email}


def ebs_key_statement(account: str, region: str) -> dict[str, Any]:
    """The key policy statement of AWS's own aws/ebs key: principals of the account may use the
    key through EC2 (grants included: EC2 attaches volumes with grants)."""
    return {
        "Sid": f"MigrateEbsDefaultEncryption-{region}",
        "Effect": "Allow",
        "Principal": {"AWS": "*"},
        "Action": [
            "kms:Encrypt",
            "kms:Decrypt",
            "kms:ReEncrypt*",
            "kms:GenerateDataKey*",
            "kms:CreateGrant",
            "kms:DescribeKey",
        ],
        "Resource": "*",
        "Condition": {
            "StringEquals": {
                "kms:CallerAccount": account,
                "kms:ViaService": f"ec2.{region}.amazonaws.com",
            }
        },
    }


def _has_tls_deny(policy: dict[str, Any] | None) -> bool:
    """True if a statement already denies every non-TLS request (whatever its Sid)."""
    for st in (policy or {}).get("Statement", []):
        actions = st.get("Action")
        actions = [actions] if isinstance(actions, str) else actions or []
        cond = (st.get("Condition") or {}).get("Bool", {}).get("aws:SecureTransport")
        if st.get("Effect") == "Deny" and "s3:*" in actions and str(cond).lower() == "false":
            return True
    return False


@step("ftr.account_baseline")
class AccountBaseline(Step):
    """Account-level FTR baseline: password policy, contacts, root, Block Public Access, EBS, TLS.

    Fixes, each recorded with the previous value so that ``migrate rollback`` restores it: the IAM
    password policy (``password_policy``, FTR-aligned defaults; ``null`` leaves it alone), the
    alternate contacts given in ``alternate_contacts`` (billing, operations, security; Account
    API), S3 Block Public Access for the whole account (s3control, gated: public content stops
    being public), EBS encryption by default in every region with ``kms_key`` (default: the
    ``aws/ebs`` key), and a TLS-only statement (``aws:SecureTransport`` false: deny) merged into
    the policy of every selected bucket (``tls_buckets``/``tls_exclude``; a bucket whose policy
    cannot take it is reported). Reports, since only a human can fix them: root user MFA and root
    access keys (``GetAccountSummary``), company-owned contact addresses, and IAM users with a
    console password but no MFA. Every finding names the FTR requirement it answers.
    """

    Params = AccountBaselineParams
    action_kinds = (
        "baseline.password_policy",
        "baseline.alternate_contact",
        "baseline.block_public_access",
        "baseline.ebs_encryption",
        "baseline.tls_only_policy",
    )
    permissions = (
        "sts:GetCallerIdentity",
        "iam:GetAccountPasswordPolicy",
        "iam:UpdateAccountPasswordPolicy",
        "iam:DeleteAccountPasswordPolicy",
        "iam:GetAccountSummary",
        "iam:ListUsers",
        "iam:ListMFADevices",
        "iam:GetLoginProfile",
        "account:GetAlternateContact",
        "account:PutAlternateContact",
        "account:DeleteAlternateContact",
        "s3:GetAccountPublicAccessBlock",
        "s3:PutAccountPublicAccessBlock",
        "ec2:GetEbsEncryptionByDefault",
        "ec2:GetEbsDefaultKmsKeyId",
        "ec2:EnableEbsEncryptionByDefault",
        "ec2:DisableEbsEncryptionByDefault",
        "ec2:ModifyEbsDefaultKmsKeyId",
        "ec2:ResetEbsDefaultKmsKeyId",
        "kms:DescribeKey",
        "kms:GetKeyPolicy",
        "kms:PutKeyPolicy",
        "s3:ListAllMyBuckets",
        "s3:GetBucketLocation",
        "s3:GetBucketPolicy",
        "s3:PutBucketPolicy",
        "s3:DeleteBucketPolicy",
    )
    example = """\
- id: account-baseline
  uses: ftr.account_baseline
  with:
    kms_key: "{{ steps.kms.key_arn }}"
    password_policy: {minimum_length: 14, reuse_prevention: 24, max_age_days: 90}
    alternate_contacts:
      security: {name: Security team, title: CISO, email: security@example.com, phone: "+1 555 0100"}
    tls_exclude: ["*-public-assets"]
"""
    params: AccountBaselineParams

    def permission_scopes(self) -> list[Scope]:
        buckets = tuple(iam_pattern(b) for b in self.params.tls_buckets)
        if any(b.strip("*") == "" for b in buckets):
            return []
        return [Scope(("s3:PutBucketPolicy", "s3:DeleteBucketPolicy"), {"BucketName": buckets})]

    # -- observe -------------------------------------------------------------------------------
    def observe(self, ctx: StepContext) -> Facts:
        """Read every setting the step fixes or reports (read-only)."""
        account = ctx.account_id
        iam = ctx.client("iam")
        facts: Facts = {"account": account}
        facts["password_policy"] = or_default(
            lambda: iam.get_account_password_policy()["PasswordPolicy"], None
        )
        facts["contacts"] = self._contacts(ctx)
        summary = iam.get_account_summary()["SummaryMap"]
        facts["root"] = {
            "mfa": bool(summary.get("AccountMFAEnabled")),
            "access_keys": bool(summary.get("AccountAccessKeysPresent")),
        }
        facts["users_without_mfa"] = self._users_without_mfa(iam)
        facts["public_access_block"] = self._account_bpa(ctx, account)
        facts["ebs"] = self._ebs(ctx)
        facts["buckets"] = self._buckets(ctx)
        facts["findings"] = self._findings(facts)
        facts["compliant"] = sorted(
            f"{f['requirement']} {f['subject']}" for f in facts["findings"] if f["status"] == "pass"
        )
        facts["warnings"] = [
            f"{f['requirement']} ({f['title']}): {f['subject']}: {f['detail']}"
            for f in facts["findings"]
            if f["status"] == "manual"
        ]
        return facts

    def _contacts(self, ctx: StepContext) -> dict[str, Any]:
        account = ctx.client("account")
        found: dict[str, Any] = {}
        for kind in CONTACT_TYPES:
            answer: dict[str, Any] = or_default(
                partial(account.get_alternate_contact, AlternateContactType=kind), {}
            )
            contact = answer.get("AlternateContact")
            found[kind] = (
                {k: contact.get(k) for k in ("Name", "Title", "EmailAddress", "PhoneNumber")}
                if contact
                else None
            )
        return found

    @staticmethod
    def _users_without_mfa(iam: Any) -> list[dict[str, Any]]:
        users: list[dict[str, Any]] = []
        for page in iam.get_paginator("list_users").paginate():
            for user in page.get("Users", []):
                name = user["UserName"]
                if iam.list_mfa_devices(UserName=name).get("MFADevices"):
                    continue
                console = bool(or_default(partial(iam.get_login_profile, UserName=name), None))
                users.append({"name": name, "console": console})
        return sorted(users, key=lambda u: u["name"])

    @staticmethod
    def _account_bpa(ctx: StepContext, account: str) -> dict[str, bool]:
        control = ctx.client("s3control")
        answer: dict[str, Any] = or_default(
            partial(control.get_public_access_block, AccountId=account), {}
        )
        config = answer.get("PublicAccessBlockConfiguration") or {}
        return {k: bool(v) for k, v in config.items()}

    def _ebs(self, ctx: StepContext) -> dict[str, Any]:
        resolver = KeyResolver(ctx, ctx.is_known)
        found: dict[str, Any] = {}
        for region in ctx.regions:
            ec2 = ctx.client("ec2", region)
            target = resolver.arn(self.params.kms_key, region) if self.params.kms_key else None
            key_ok = True
            if target:
                text = ctx.client("kms", region).get_key_policy(KeyId=target, PolicyName="default")
                wanted = ebs_key_statement(ctx.account_id, region)
                key_ok = not missing_statements(parse_policy(text.get("Policy")), [wanted])
            found[region] = {
                "enabled": bool(ec2.get_ebs_encryption_by_default()["EbsEncryptionByDefault"]),
                "kms_key": ec2.get_ebs_default_kms_key_id().get("KmsKeyId"),
                "target_key": target,
                "key_policy_ok": key_ok,
            }
        return found

    def _buckets(self, ctx: StepContext) -> dict[str, Any]:
        s3 = ctx.client("s3")
        found: dict[str, Any] = {}
        names = sorted(b["Name"] for b in s3.list_buckets().get("Buckets", []))
        for name in names:
            if not any(fnmatch.fnmatchcase(name, p) for p in self.params.tls_buckets) or any(
                fnmatch.fnmatchcase(name, p) for p in self.params.tls_exclude
            ):
                continue
            region = bucket_region(s3, name)
            try:
                policy = bucket_policy(ctx.client("s3", region), name)
            except ClientError as exc:
                if not access_denied(exc):
                    raise
                found[name] = {"region": region, "problem": "its policy cannot be read here"}
                continue
            entry: dict[str, Any] = {"region": region, "tls_only": _has_tls_deny(policy)}
            if not entry["tls_only"]:
                merged = merge_statements(policy, [tls_only_statement(name, TLS_SID)])
                if len(dump_policy(merged).encode()) > BUCKET_POLICY_MAX_BYTES:
                    entry["problem"] = "the merged policy would exceed S3's 20 KB limit"
            found[name] = entry
        return found

    def _findings(self, facts: Facts) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        pp = self.params.password_policy
        if pp is not None:
            ok = self._password_policy_ok(facts["password_policy"], pp)
            out.append(
                finding(
                    "IAM-003",
                    "pass" if ok else "fail",
                    "IAM password policy",
                    "meets the baseline" if ok else "missing or weaker than the baseline",
                )
            )
        for kind in CONTACT_TYPES:
            wanted = self.params.given_contacts().get(kind)
            have = facts["contacts"][kind]
            if wanted is not None:
                ok = have == self._contact_api(wanted)
                out.append(
                    finding(
                        "ACOM-001",
                        "pass" if ok else "fail",
                        f"{kind.lower()} contact",
                        "set as given" if ok else "to be set from the playbook",
                    )
                )
            elif have is None:
                out.append(
                    finding(
                        "ACOM-001",
                        "manual",
                        f"{kind.lower()} contact",
                        "not set: give it in alternate_contacts (a company-owned address)",
                    )
                )
        out.append(
            finding(
                "ACOM-002",
                "manual",
                "contact addresses",
                "only a human can confirm that the root email and the alternate contacts are "
                "company-owned distribution lists, not one person's mailbox",
            )
        )
        root = facts["root"]
        out.append(
            finding(
                "ARC-003",
                "pass" if root["mfa"] else "manual",
                "root user MFA",
                "on"
                if root["mfa"]
                else "off: sign in as root and assign an MFA device (no API can do this)",
            )
        )
        out.append(
            finding(
                "ARC-004",
                "manual" if root["access_keys"] else "pass",
                "root access keys",
                "present: sign in as root and delete them (no API can do this for root)"
                if root["access_keys"]
                else "none",
            )
        )
        for user in facts["users_without_mfa"]:
            out.append(
                finding(
                    "IAM-001",
                    "manual",
                    f"IAM user {user['name']}",
                    "console password without MFA: the user must register a device"
                    if user["console"]
                    else "no MFA device (no console password; keys are iam.keys_to_roles' job)",
                )
            )
        if self.params.block_public_access:
            ok = facts["public_access_block"] == BLOCK_ALL
            out.append(
                finding(
                    "S3-001",
                    "pass" if ok else "fail",
                    "account Block Public Access",
                    "all four settings on" if ok else "not all four settings on",
                )
            )
        if self.params.ebs_encryption:
            for region, ebs in facts["ebs"].items():
                ok = ebs["enabled"] and (
                    not self.params.kms_key
                    or (ebs["kms_key"] == ebs["target_key"] and ebs["key_policy_ok"])
                )
                out.append(
                    finding(
                        "SDAT-002",
                        "pass" if ok else "fail",
                        f"EBS default encryption in {region}",
                        f"on with {ebs['kms_key']}" if ok else "off or with another key",
                    )
                )
        for name, bucket in facts["buckets"].items():
            status: Status
            if bucket.get("problem"):
                status, detail = "manual", f"cannot take a TLS-only statement: {bucket['problem']}"
            elif bucket["tls_only"]:
                status, detail = "pass", "denies requests without TLS"
            else:
                status, detail = "fail", "accepts requests without TLS"
            out.append(finding("SDAT-003", status, f"s3://{name}", detail))
        return out

    @staticmethod
    def _password_policy_ok(have: dict[str, Any] | None, want: PasswordPolicy) -> bool:
        if not have:
            return False
        api = want.api()
        return (
            have.get("MinimumPasswordLength", 0) >= api["MinimumPasswordLength"]
            and all(
                have.get(k) or not api[k]
                for k in (
                    "RequireSymbols",
                    "RequireNumbers",
                    "RequireUppercaseCharacters",
                    "RequireLowercaseCharacters",
                )
            )
            and have.get("PasswordReusePrevention", 0) >= api.get("PasswordReusePrevention", 0)
            and (
                not api.get("MaxPasswordAge")
                or 0 < have.get("MaxPasswordAge", 0) <= api["MaxPasswordAge"]
            )
        )

    @staticmethod
    def _contact_api(contact: Contact) -> dict[str, Any]:
        return {
            "Name": contact.name,
            "Title": contact.title,
            "EmailAddress": contact.email,
            "PhoneNumber": contact.phone,
        }

    # -- decide --------------------------------------------------------------------------------
    def decide(self, ctx: StepContext, facts: Facts) -> list[Action]:
        """One action per failed finding that an API can fix."""
        actions: list[Action] = []
        failed = {
            (f["requirement"], f["subject"]) for f in facts["findings"] if f["status"] == "fail"
        }
        pp = self.params.password_policy
        if pp is not None and ("IAM-003", "IAM password policy") in failed:
            actions.append(
                Action(
                    kind="baseline.password_policy",
                    target="iam:password-policy",
                    summary=f"IAM-003: set the password policy (at least {pp.minimum_length} "
                    f"characters, all character classes, {pp.reuse_prevention} remembered, "
                    f"expiry {pp.max_age_days or 'never'} days)",
                    estimate=Estimate(duration_s=1, api_requests=1),
                    risks=("existing passwords stay valid until they expire or are changed",),
                    details={"previous": facts["password_policy"]},
                )
            )
        for kind in CONTACT_TYPES:
            wanted = self.params.given_contacts().get(kind)
            if wanted is not None and ("ACOM-001", f"{kind.lower()} contact") in failed:
                actions.append(
                    Action(
                        kind="baseline.alternate_contact",
                        target=f"contact:{kind}",
                        summary=f"ACOM-001: set the {kind.lower()} contact to {wanted.email}",
                        estimate=Estimate(duration_s=1, api_requests=1),
                        details={"type": kind, "previous": facts["contacts"][kind]},
                    )
                )
        if ("S3-001", "account Block Public Access") in failed:
            actions.append(
                Action(
                    kind="baseline.block_public_access",
                    target="s3:account-public-access-block",
                    summary="S3-001: turn on all four S3 Block Public Access settings for the "
                    "account",
                    estimate=Estimate(duration_s=1, api_requests=1),
                    risks=(
                        "objects and buckets that are public today (public ACLs, public bucket "
                        "policies) stop being reachable anonymously: serve public content "
                        "through CloudFront with origin access control first",
                    ),
                    gate="block-public-access",
                    details={"previous": facts["public_access_block"]},
                )
            )
        for region, ebs in facts["ebs"].items():
            if ("SDAT-002", f"EBS default encryption in {region}") in failed:
                key = self.params.kms_key or "the aws/ebs key"
                actions.append(
                    Action(
                        kind="baseline.ebs_encryption",
                        target=f"ebs:{region}",
                        summary=f"SDAT-002: encrypt new EBS volumes in {region} by default with "
                        f"{key}"
                        + (
                            " (the key policy lets EC2 use it, as the aws/ebs key's does)"
                            if self.params.kms_key
                            else ""
                        ),
                        estimate=Estimate(duration_s=1, api_requests=2),
                        risks=(
                            "existing volumes stay unencrypted (snapshot, copy encrypted, swap)",
                        ),
                        region=region,
                        details={"previous": {k: ebs[k] for k in ("enabled", "kms_key")}},
                    )
                )
        for name, bucket in facts["buckets"].items():
            if ("SDAT-003", f"s3://{name}") in failed:
                actions.append(
                    Action(
                        kind="baseline.tls_only_policy",
                        target=name,
                        summary=f"SDAT-003: deny requests without TLS to s3://{name} (merged into "
                        "its bucket policy)",
                        estimate=Estimate(duration_s=1, api_requests=2),
                        risks=("clients that still use http:// endpoints get 403",),
                        region=bucket["region"],
                    )
                )
        return actions

    # -- act -----------------------------------------------------------------------------------
    @handles("baseline.password_policy")
    def _password_policy(self, ctx: StepContext, action: Action) -> Wait | None:
        """Put the password policy (a PUT replaces it, so repeating is harmless)."""
        assert self.params.password_policy is not None
        ctx.record_resource(
            "iam:password-policy",
            "account",
            change="modified",
            details={"previous": action.details.get("previous")},
        )
        ctx.client("iam").update_account_password_policy(**self.params.password_policy.api())
        return None

    @handles("baseline.alternate_contact")
    def _alternate_contact(self, ctx: StepContext, action: Action) -> Wait | None:
        """Put one alternate contact; the previous one is recorded for rollback."""
        kind = str(action.details["type"])
        wanted = self.params.given_contacts()[kind]
        ctx.record_resource(
            "account:alternate-contact",
            kind,
            change="modified",
            details={"previous": action.details.get("previous")},
        )
        ctx.client("account").put_alternate_contact(
            AlternateContactType=kind, **self._contact_api(wanted)
        )
        return None

    @handles("baseline.block_public_access")
    def _block_public_access(self, ctx: StepContext, action: Action) -> Wait | None:
        """Turn on account-level Block Public Access."""
        ctx.record_resource(
            "s3:account-public-access-block",
            ctx.account_id,
            change="modified",
            details={"previous": action.details.get("previous")},
        )
        ctx.client("s3control").put_public_access_block(
            AccountId=ctx.account_id, PublicAccessBlockConfiguration=BLOCK_ALL
        )
        return None

    @handles("baseline.ebs_encryption")
    def _ebs_encryption(self, ctx: StepContext, action: Action) -> Wait | None:
        """Set the region's default EBS key (if one is given), then turn encryption on."""
        region = action.region
        ec2 = ctx.client("ec2", region)
        ctx.record_resource(
            "ec2:ebs-default-encryption",
            str(region),
            change="modified",
            region=region,
            details={"previous": action.details.get("previous")},
        )
        if self.params.kms_key:
            key = KeyResolver(ctx, ctx.is_known).arn(self.params.kms_key, region)
            if key is None:
                raise StepFailed(
                    f"the KMS key {self.params.kms_key} cannot be resolved in {region}; run the "
                    "step that creates it first, or name a key of that region."
                )
            self._grant_ebs_use(ctx, key, str(region))
            ec2.modify_ebs_default_kms_key_id(KmsKeyId=key)
        ec2.enable_ebs_encryption_by_default()
        return None

    @staticmethod
    def _grant_ebs_use(ctx: StepContext, key: str, region: str) -> None:
        """EC2 must be able to use the key for every principal that launches or attaches a
        volume, as with the aws/ebs key; the previous key policy is recorded for rollback."""
        kms = ctx.client("kms", region)
        text = kms.get_key_policy(KeyId=key, PolicyName="default")["Policy"]
        wanted = ebs_key_statement(ctx.account_id, region)
        current = parse_policy(text)
        if not missing_statements(current, [wanted]):
            return
        ctx.record_resource(
            "kms:key-policy", key, change="modified", region=region, details={"previous": text}
        )
        kms.put_key_policy(
            KeyId=key, PolicyName="default", Policy=dump_policy(merge_statements(current, [wanted]))
        )

    @handles("baseline.tls_only_policy")
    def _tls_only_policy(self, ctx: StepContext, action: Action) -> Wait | None:
        """Merge the TLS-only statement into the bucket's policy (every other statement kept)."""
        s3 = ctx.client("s3", action.region)
        current = bucket_policy(s3, action.target)
        if _has_tls_deny(current):
            return None  # a resumed action whose put went through
        ctx.record_resource(
            "s3:bucket-policy",
            action.target,
            change="modified",
            region=action.region,
            details={"previous": dump_policy(current) if current else None},
        )
        merged = merge_statements(current, [tls_only_statement(action.target, TLS_SID)])
        s3.put_bucket_policy(Bucket=action.target, Policy=dump_policy(merged))
        return None

    # -- verify, rollback ----------------------------------------------------------------------
    def verify(self, ctx: StepContext) -> None:
        """Every finding an API can fix now passes."""
        facts = self.observe(ctx)
        failed = [
            f"{f['requirement']} {f['subject']}" for f in facts["findings"] if f["status"] == "fail"
        ]
        if failed:
            raise StepFailed(
                "still not compliant after the step: " + ", ".join(failed[:10]) + ". Resume to "
                "retry; check that nothing else (an SCP, another tool) reverts these settings."
            )

    def rollback(self, ctx: StepContext) -> None:
        """Put every recorded previous value back."""
        for res in ctx.resources():
            previous = res.details.get("previous")
            if res.kind == "iam:password-policy":
                iam = ctx.client("iam")
                if previous:
                    keep = {k: v for k, v in previous.items() if k in PASSWORD_POLICY_KEYS}
                    iam.update_account_password_policy(**keep)
                else:
                    or_default(iam.delete_account_password_policy, None)
            elif res.kind == "account:alternate-contact":
                account = ctx.client("account")
                if previous:
                    account.put_alternate_contact(AlternateContactType=res.identifier, **previous)
                else:
                    or_default(
                        partial(
                            account.delete_alternate_contact, AlternateContactType=res.identifier
                        ),
                        None,
                    )
            elif res.kind == "s3:account-public-access-block":
                control = ctx.client("s3control")
                if previous:
                    control.put_public_access_block(
                        AccountId=res.identifier,
                        PublicAccessBlockConfiguration={
                            **dict.fromkeys(BLOCK_ALL, False),
                            **previous,
                        },
                    )
                else:
                    control.delete_public_access_block(AccountId=res.identifier)
            elif res.kind == "ec2:ebs-default-encryption":
                ec2 = ctx.client("ec2", res.region)
                if previous and previous.get("kms_key"):
                    ec2.modify_ebs_default_kms_key_id(KmsKeyId=previous["kms_key"])
                if not (previous or {}).get("enabled"):
                    ec2.disable_ebs_encryption_by_default()
            elif res.kind == "kms:key-policy":
                # Only our statement goes: others merged since (another step's) stay.
                remove_key_statements(
                    ctx.client("kms", res.region),
                    res.identifier,
                    {ebs_key_statement(ctx.account_id, str(res.region))["Sid"]},
                )
            elif res.kind == "s3:bucket-policy":
                s3 = ctx.client("s3", res.region)
                kept = without_statements(bucket_policy(s3, res.identifier), {TLS_SID})
                if kept:
                    s3.put_bucket_policy(Bucket=res.identifier, Policy=dump_policy(kept))
                else:
                    or_default(partial(s3.delete_bucket_policy, Bucket=res.identifier), None)
