"""``ssm.session_manager``: shell access through Session Manager instead of SSH/RDP and a VPN."""

from __future__ import annotations

import ipaddress
import json
from functools import partial
from typing import Any

from botocore.exceptions import ClientError
from pydantic import Field, field_validator

from migrate.aws.errors import has_code, not_found, or_default
from migrate.aws.ftr import Status, finding
from migrate.aws.iam_scope import Scope
from migrate.aws.kms import KeyResolver
from migrate.aws.policies import (
    dump_policy,
    merge_statements,
    missing_statements,
    parse_policy,
    remove_key_statements,
)
from migrate.aws.tags import tag_dict
from migrate.engine.base import Action, Estimate, Facts, Step, Wait, handles
from migrate.engine.context import StepContext
from migrate.engine.outputs import is_known
from migrate.engine.registry import step
from migrate.engine.selection import Selection
from migrate.errors import StepFailed
from migrate.steps.ssm.network import open_admin_rules

SSM_CORE_ARN = "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"
PREFERENCES = "SSM-SessionManagerRunShell"
LOGGING_POLICY = "migrate-session-manager-logging"
KEY_SID = "MigrateSessionManagerUse"
EC2_TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"Service": "ec2.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
    ],
}
LIVE_STATES = ["pending", "running", "stopping", "stopped"]


class SessionManagerParams(Selection):
    """Parameters of ``ssm.session_manager`` (``names`` match the instances' Name tag or id)."""

    kms_key: str | None = None
    log_bucket: str | None = None
    log_prefix: str = "session-manager/"
    cloudwatch_log_group: str | None = None
    idle_timeout_minutes: int = Field(default=20, ge=1, le=60)
    role_name: str = Field(default="migrate-ssm-instance", pattern=r"^[\w+=,.@-]{1,64}$")
    vpn_cidrs: list[str] = Field(default_factory=list)
    revoke_open_ports: bool = True

    @field_validator("vpn_cidrs")
    @classmethod
    def _cidrs(cls, value: list[str]) -> list[str]:
        for cidr in value:
            ipaddress.ip_network(cidr, strict=False)  # ValueError names the bad one
        return value


@step("ssm.session_manager")
class SessionManager(Step):
    """Move shell access to Session Manager: SSM role, logged and encrypted sessions, no open SSH.

    Every selected instance (``names``: Name tag or id globs, ``exclude``, ``tags``) needs
    ``AmazonSSMManagedInstanceCore`` on its role: it is attached to the role of its instance
    profile, and an instance without a profile gets ``role_name`` (created once, with an instance
    profile of the same name). The Session Manager preferences (``SSM-SessionManagerRunShell``)
    send session logs to ``log_bucket`` (usually the audit archive) and/or the existing
    ``cloudwatch_log_group``, encrypted with ``kms_key``, which also encrypts the sessions; the
    instance roles get the permissions to write those logs and use the key. SSM agent
    registration is checked (``DescribeInstanceInformation``) and missing agents are reported.
    Security group rules that open SSH (22) or RDP (3389) to 0.0.0.0/0, ::/0 or the
    ``vpn_cidrs`` are listed and, behind the ``revoke-open-admin-ports`` gate, revoked
    (``revoke_open_ports: false`` only lists them). Rollback restores every rule, policy,
    association and preference it changed.
    """

    Params = SessionManagerParams
    action_kinds = (
        "ssm.instance_role",
        "ssm.attach_profile",
        "ssm.session_preferences",
        "ssm.grant_key",
        "ssm.revoke_open_rule",
    )
    permissions = (
        "sts:GetCallerIdentity",
        "ec2:DescribeInstances",
        "ec2:DescribeSecurityGroups",
        "ec2:DescribeIamInstanceProfileAssociations",
        "ec2:AssociateIamInstanceProfile",
        "ec2:DisassociateIamInstanceProfile",
        "ec2:RevokeSecurityGroupIngress",
        "ec2:AuthorizeSecurityGroupIngress",
        "iam:GetInstanceProfile",
        "iam:GetRole",
        "iam:GetRolePolicy",
        "iam:ListAttachedRolePolicies",
        "iam:ListRolePolicies",
        "iam:AttachRolePolicy",
        "iam:DetachRolePolicy",
        "iam:PutRolePolicy",
        "iam:DeleteRolePolicy",
        "iam:CreateRole",
        "iam:DeleteRole",
        "iam:TagRole",
        "iam:CreateInstanceProfile",
        "iam:DeleteInstanceProfile",
        "iam:AddRoleToInstanceProfile",
        "iam:RemoveRoleFromInstanceProfile",
        "iam:PassRole",
        "ssm:DescribeInstanceInformation",
        "ssm:GetDocument",
        "ssm:CreateDocument",
        "ssm:UpdateDocument",
        "ssm:UpdateDocumentDefaultVersion",
        "ssm:DeleteDocument",
        "logs:DescribeLogGroups",
        "kms:DescribeKey",
        "kms:GetKeyPolicy",
        "kms:PutKeyPolicy",
    )
    passes_roles_to = ("ec2.amazonaws.com",)
    example = """\
- id: session-manager
  uses: ssm.session_manager
  with:
    kms_key: "{{ steps.kms.key_arn }}"
    log_bucket: my-audit-archive-bucket
    vpn_cidrs: ["10.8.0.0/16"]
"""
    params: SessionManagerParams

    def permission_scopes(self) -> list[Scope]:
        """The role and profile it makes for instances without one carry ``role_name``."""
        made = (self.params.role_name,)
        return [
            Scope(
                (
                    "iam:CreateRole",
                    "iam:DeleteRole",
                    "iam:CreateInstanceProfile",
                    "iam:DeleteInstanceProfile",
                ),
                {"RoleNameWithPath": made, "InstanceProfileNameWithPath": made},
            )
        ]

    # -- observe -------------------------------------------------------------------------------
    def observe(self, ctx: StepContext) -> Facts:
        """Instances and their roles, agent registration, preferences, open admin ports."""
        region = ctx.regions[0]
        ec2, iam = ctx.client("ec2", region), ctx.client("iam")
        seen: set[str] = set()
        instances = self._instances(ec2, seen)
        empty_globs = self.params.unmatched(seen, "running or stopped instance", region)
        roles: dict[str, dict[str, Any]] = {}
        for inst in instances.values():
            role = self._role_of(iam, inst.get("profile_arn"))
            inst["role"] = role
            if role and role not in roles:
                roles[role] = self._role_facts(iam, role)
        # Instances an earlier step of this run gives a role (keys-to-roles, which comes first so
        # that each workload keeps a role of its own): plan for that role, not for ours. While
        # running, the association is observed once that step switched them.
        for inst_id, given in ctx.earlier_outputs("instance_roles").items():
            planned_for = instances.get(inst_id)
            if (
                planned_for is None
                or planned_for["role"]
                or planned_for.get("profile_arn")
                or not given.get("role")
            ):
                continue
            role = str(given["role"])
            planned_for["role"] = role
            planned_for["role_planned"] = True
            if role not in roles:
                roles[role] = (
                    self._role_facts(iam, role)
                    if self._role_exists(iam, role)
                    else {
                        "core": bool(given.get("ssm_core")),
                        "logging_policy": None,
                        "logging_ok": not self._logging_policy(),
                        "planned": True,
                    }
                )
        registered = self._registered(ctx, region)
        for inst_id, inst in instances.items():
            inst["registered"] = registered.get(inst_id)
        key_arn = KeyResolver(ctx, ctx.is_known).arn(self.params.kms_key, region)
        facts: Facts = {
            "region": region,
            "account": ctx.account_id,
            "instances": instances,
            "roles": roles,
            "migrate_role": self._role_facts(iam, self.params.role_name)
            if self._role_exists(iam, self.params.role_name)
            else None,
            "preferences": self._preferences(ctx, region),
            "wanted_preferences": self._wanted_preferences(key_arn),
            "log_group_exists": self._log_group_exists(ctx, region),
            "key": self._key(ctx, key_arn, region, sorted(self._role_names(instances))),
            "open_rules": open_admin_rules(
                ec2.describe_security_groups().get("SecurityGroups", []),
                self.params.vpn_cidrs,
            ),
        }
        facts["findings"] = self._findings(facts)
        facts["compliant"] = sorted(
            f"{f['requirement']} {f['subject']}" for f in facts["findings"] if f["status"] == "pass"
        )
        facts["warnings"] = empty_globs + [
            f"{f['requirement']} ({f['title']}): {f['subject']}: {f['detail']}"
            for f in facts["findings"]
            if f["status"] == "manual"
        ]
        if not (self.params.log_bucket or self.params.cloudwatch_log_group):
            facts["warnings"].append(
                "sessions are not logged anywhere: give log_bucket and/or cloudwatch_log_group"
            )
        if self.params.cloudwatch_log_group and not facts["log_group_exists"]:
            facts["warnings"].append(
                f"log group {self.params.cloudwatch_log_group} does not exist: Session Manager "
                "streams only to an existing group (create it, encrypted with the key)"
            )
        return facts

    def _instances(self, ec2: Any, seen: set[str] | None = None) -> dict[str, dict[str, Any]]:
        """The selected live instances; ``seen`` collects every live instance's name and id."""
        found: dict[str, dict[str, Any]] = {}
        pages = ec2.get_paginator("describe_instances").paginate(
            Filters=[{"Name": "instance-state-name", "Values": LIVE_STATES}]
        )
        for page in pages:
            for reservation in page.get("Reservations", []):
                for inst in reservation.get("Instances", []):
                    tags = tag_dict(inst.get("Tags"))
                    inst_id = inst["InstanceId"]
                    name = tags.get("Name", inst_id)
                    if seen is not None:
                        seen.update((name, inst_id))
                    if not (self.params.name_matches(name) or self.params.name_matches(inst_id)):
                        continue
                    if self.params.tags and not self.params.tags_match(tags):
                        continue
                    found[inst_id] = {
                        "name": name,
                        "state": inst.get("State", {}).get("Name"),
                        "profile_arn": (inst.get("IamInstanceProfile") or {}).get("Arn"),
                        "security_groups": sorted(
                            g["GroupId"] for g in inst.get("SecurityGroups", [])
                        ),
                    }
        return dict(sorted(found.items()))

    @staticmethod
    def _role_of(iam: Any, profile_arn: str | None) -> str | None:
        if not profile_arn:
            return None
        name = profile_arn.rsplit("/", 1)[-1]
        profile = or_default(lambda: iam.get_instance_profile(InstanceProfileName=name), None)
        roles = (profile or {}).get("InstanceProfile", {}).get("Roles", [])
        return str(roles[0]["RoleName"]) if roles else None

    @staticmethod
    def _role_exists(iam: Any, role: str) -> bool:
        return or_default(lambda: iam.get_role(RoleName=role), None) is not None

    def _role_facts(self, iam: Any, role: str) -> dict[str, Any]:
        attached = [
            p["PolicyArn"]
            for p in iam.list_attached_role_policies(RoleName=role).get("AttachedPolicies", [])
        ]
        logging = or_default(
            lambda: iam.get_role_policy(RoleName=role, PolicyName=LOGGING_POLICY), None
        )
        document = (logging or {}).get("PolicyDocument")
        if isinstance(document, str):
            document = json.loads(document)
        return {
            "core": SSM_CORE_ARN in attached,
            "logging_policy": document,
            "logging_ok": document == self._logging_policy() if self._logging_policy() else True,
        }

    @staticmethod
    def _registered(ctx: StepContext, region: str) -> dict[str, dict[str, Any]]:
        ssm = ctx.client("ssm", region)
        found: dict[str, dict[str, Any]] = {}
        for page in ssm.get_paginator("describe_instance_information").paginate():
            for info in page.get("InstanceInformationList", []):
                found[str(info["InstanceId"])] = {
                    "ping": info.get("PingStatus"),
                    "agent": info.get("AgentVersion"),
                    "latest": bool(info.get("IsLatestVersion")),
                }
        return found

    @staticmethod
    def _preferences(ctx: StepContext, region: str) -> dict[str, Any] | None:
        ssm = ctx.client("ssm", region)
        doc = or_default(
            lambda: ssm.get_document(Name=PREFERENCES, DocumentFormat="JSON"),
            None,
            when=lambda exc: not_found(exc) or has_code(exc, "InvalidDocument"),
        )
        if doc is None:
            return None
        return {"content": json.loads(doc["Content"]), "version": doc.get("DocumentVersion")}

    def _wanted_preferences(self, key_arn: str | None) -> dict[str, Any]:
        bucket = self.params.log_bucket if ctx_known(self.params.log_bucket) else None
        return {
            "schemaVersion": "1.0",
            "description": "Session Manager preferences (set by migrate)",
            "sessionType": "Standard_Stream",
            "inputs": {
                "s3BucketName": bucket or "",
                "s3KeyPrefix": self.params.log_prefix if bucket else "",
                "s3EncryptionEnabled": bool(bucket),
                "cloudWatchLogGroupName": self.params.cloudwatch_log_group or "",
                "cloudWatchEncryptionEnabled": bool(self.params.cloudwatch_log_group),
                "cloudWatchStreamingEnabled": bool(self.params.cloudwatch_log_group),
                "kmsKeyId": key_arn or "",
                "runAsEnabled": False,
                "runAsDefaultUser": "",
                "idleSessionTimeout": str(self.params.idle_timeout_minutes),
                "maxSessionDuration": "",
                "shellProfile": {"windows": "", "linux": ""},
            },
        }

    def _log_group_exists(self, ctx: StepContext, region: str) -> bool:
        group = self.params.cloudwatch_log_group
        if not group:
            return False
        logs = ctx.client("logs", region)
        found = logs.describe_log_groups(logGroupNamePrefix=group).get("logGroups", [])
        return any(g.get("logGroupName") == group for g in found)

    def _logging_policy(self) -> dict[str, Any] | None:
        """What an instance role needs to write session logs and use the key (None: nothing)."""
        statements: list[dict[str, Any]] = []
        bucket = self.params.log_bucket if ctx_known(self.params.log_bucket) else None
        if bucket:
            statements.append(
                {
                    "Sid": "SessionLogsToS3",
                    "Effect": "Allow",
                    "Action": "s3:PutObject",
                    "Resource": f"arn:aws:s3:::{bucket}/{self.params.log_prefix}*",
                }
            )
            statements.append(
                {
                    "Sid": "SessionLogsBucketEncryption",
                    "Effect": "Allow",
                    "Action": "s3:GetEncryptionConfiguration",
                    "Resource": f"arn:aws:s3:::{bucket}",
                }
            )
        if self.params.cloudwatch_log_group:
            statements.append(
                {
                    "Sid": "SessionLogsToCloudWatch",
                    "Effect": "Allow",
                    "Action": [
                        "logs:CreateLogStream",
                        "logs:PutLogEvents",
                        "logs:DescribeLogGroups",
                        "logs:DescribeLogStreams",
                    ],
                    "Resource": "*",
                }
            )
        if self.params.kms_key and ctx_known(self.params.kms_key):
            statements.append(
                {
                    "Sid": "SessionEncryption",
                    "Effect": "Allow",
                    "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
                    "Resource": "*",
                }
            )
        return {"Version": "2012-10-17", "Statement": statements} if statements else None

    def _role_names(self, instances: dict[str, dict[str, Any]]) -> set[str]:
        return {i["role"] or self.params.role_name for i in instances.values()}

    def _key_statement(self, account: str, roles: list[str]) -> dict[str, Any]:
        # The key policy of kms.ensure_key lets IAM administer the key but not use it directly;
        # the instance roles decrypt session data themselves, so the key policy names them.
        return {
            "Sid": KEY_SID,
            "Effect": "Allow",
            "Principal": {"AWS": "*"},
            "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
            "Resource": "*",
            "Condition": {
                "StringEquals": {"kms:CallerAccount": account},
                "ArnLike": {
                    "aws:PrincipalArn": [f"arn:aws:iam::{account}:role/{r}" for r in roles]
                },
            },
        }

    def _key(
        self, ctx: StepContext, key_arn: str | None, region: str, roles: list[str]
    ) -> dict[str, Any]:
        if not self.params.kms_key:
            return {"arn": None, "missing": False}
        if key_arn is None or not roles:
            return {"arn": key_arn, "missing": bool(roles)}
        text = ctx.client("kms", region).get_key_policy(KeyId=key_arn, PolicyName="default")[
            "Policy"
        ]
        wanted = self._key_statement(ctx.account_id, roles)
        return {"arn": key_arn, "missing": bool(missing_statements(parse_policy(text), [wanted]))}

    def _findings(self, facts: Facts) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for inst_id, inst in facts["instances"].items():
            role = inst["role"]
            ok = bool(role and facts["roles"][role]["core"] and facts["roles"][role]["logging_ok"])
            out.append(
                finding(
                    "NETSEC-001",
                    "pass" if ok else "fail",
                    f"instance {inst['name']} ({inst_id})",
                    f"role {role} can use Session Manager"
                    if ok
                    else f"no instance profile yet: an earlier step of this run gives it role "
                    f"{role}, which then gets AmazonSSMManagedInstanceCore and session logging"
                    if inst.get("role_planned")
                    else f"role {role} lacks AmazonSSMManagedInstanceCore or session logging"
                    if role
                    else "no instance profile: Session Manager cannot reach it",
                )
            )
            reg = inst.get("registered")
            status: Status = "pass" if reg and reg.get("ping") == "Online" else "manual"
            out.append(
                finding(
                    "NETSEC-001",
                    status,
                    f"SSM agent on {inst['name']} ({inst_id})",
                    f"registered, agent {reg.get('agent')}"
                    if status == "pass" and reg
                    else "not registered with SSM: install or update the SSM agent and let it "
                    "reach the SSM endpoints (NAT or VPC endpoints ssm, ssmmessages, ec2messages); "
                    "it registers within minutes once the role is attached",
                )
            )
        prefs_ok = (facts["preferences"] or {}).get("content") == facts["wanted_preferences"]
        out.append(
            finding(
                "CTL-001",
                "pass" if prefs_ok else "fail",
                "Session Manager preferences",
                "sessions logged and encrypted" if prefs_ok else "to be set",
            )
        )
        for rule in facts["open_rules"]:
            ports = "/".join(str(p) for p in rule["ports"])
            out.append(
                finding(
                    "NETSEC-001",
                    "fail" if self.params.revoke_open_ports else "manual",
                    f"{rule['group_id']} ({rule['group_name']})",
                    f"opens port {ports} to {rule['cidr']}",
                )
            )
        return out

    # -- decide --------------------------------------------------------------------------------
    def decide(self, ctx: StepContext, facts: Facts) -> list[Action]:
        """Roles first (one action per role), then profiles, preferences, key, rules."""
        actions: list[Action] = []
        wanted_logging = self._logging_policy()
        region = facts["region"]
        roles_to_fix: dict[str, list[str]] = {}
        for inst_id, inst in facts["instances"].items():
            role = inst["role"] or self.params.role_name
            known = facts["roles"].get(role) or facts["migrate_role"]
            if (
                known is None
                or not known["core"]
                or (wanted_logging and known["logging_policy"] != wanted_logging)
            ):
                roles_to_fix.setdefault(role, []).append(inst_id)
        for role, inst_ids in sorted(roles_to_fix.items()):
            create = role == self.params.role_name and facts["migrate_role"] is None
            planned = bool(facts["roles"].get(role, {}).get("planned"))
            actions.append(
                Action(
                    kind="ssm.instance_role",
                    target=f"role:{role}",
                    summary=f"{'create role and instance profile' if create else 'update role'} "
                    f"{role}: AmazonSSMManagedInstanceCore"
                    + (", session logging and key use" if wanted_logging else "")
                    + f" (for {', '.join(inst_ids)})"
                    + (" once an earlier step of this run has created it" if planned else ""),
                    estimate=Estimate(duration_s=3, api_requests=5),
                    risks=(
                        "every instance using this role can be reached by principals allowed "
                        "ssm:StartSession",
                    ),
                    details={
                        "role": role,
                        "create": create,
                        "planned": planned,
                        "instances": inst_ids,
                    },
                )
            )
        for inst_id, inst in facts["instances"].items():
            if inst["role"] is None and not inst["profile_arn"]:
                actions.append(
                    Action(
                        kind="ssm.attach_profile",
                        target=inst_id,
                        summary=f"attach instance profile {self.params.role_name} to "
                        f"{inst['name']} ({inst_id})",
                        estimate=Estimate(duration_s=10, api_requests=2),
                        region=region,
                    )
                )
        prefs = facts["preferences"]
        if (prefs or {}).get("content") != facts["wanted_preferences"]:
            inputs = facts["wanted_preferences"]["inputs"]
            where = [
                f"s3://{inputs['s3BucketName']}/{inputs['s3KeyPrefix']}"
                if inputs["s3BucketName"]
                else "",
                f"CloudWatch Logs {inputs['cloudWatchLogGroupName']}"
                if inputs["cloudWatchLogGroupName"]
                else "",
            ]
            actions.append(
                Action(
                    kind="ssm.session_preferences",
                    target=PREFERENCES,
                    summary=f"{'update' if prefs else 'create'} the Session Manager preferences: "
                    f"logs to {' and '.join(w for w in where if w) or 'nowhere'}, encrypted "
                    f"with {self.params.kms_key or 'no key'}, idle timeout "
                    f"{self.params.idle_timeout_minutes} min",
                    estimate=Estimate(duration_s=2, api_requests=3),
                    region=region,
                    details={"previous": prefs},
                )
            )
        if facts["key"]["missing"]:
            actions.append(
                Action(
                    kind="ssm.grant_key",
                    # A stable name: the key's ARN may be "(known after kms)" in the plan, and a
                    # target must be the same in the plan and the run.
                    target="key-policy",
                    summary="let the instance roles use the key for sessions (key policy "
                    f"statement {KEY_SID})",
                    estimate=Estimate(duration_s=1, api_requests=2),
                    region=region,
                )
            )
        if self.params.revoke_open_ports:
            for rule in facts["open_rules"]:
                ports = "/".join(str(p) for p in rule["ports"])
                actions.append(
                    Action(
                        kind="ssm.revoke_open_rule",
                        target=rule["target"],
                        summary=f"revoke port {ports} from {rule['cidr']} on {rule['group_id']} "
                        f"({rule['group_name']})",
                        estimate=Estimate(duration_s=1, api_requests=1),
                        risks=(
                            "SSH/RDP through this rule stops: connect with `aws ssm "
                            "start-session --target INSTANCE` (check the agent is registered "
                            "first: the plan lists the ones that are not)",
                        ),
                        gate="revoke-open-admin-ports",
                        destructive=True,
                        region=region,
                        details={"group_id": rule["group_id"], "permission": rule["permission"]},
                    )
                )
        return actions

    # -- act -----------------------------------------------------------------------------------
    @handles("ssm.instance_role")
    def _instance_role(self, ctx: StepContext, action: Action) -> Wait | None:
        """Create the migrate role/profile if it is ours to create, then attach the SSM policy
        and the logging policy (each recorded for rollback before it is put)."""
        iam = ctx.client("iam")
        role = str(action.details["role"])
        if role == self.params.role_name:
            self._ensure_migrate_role(ctx, iam)
        elif not self._role_exists(iam, role):
            # Planned for a role an earlier step creates (keys-to-roles): not there yet, e.g.
            # while that step awaits a review. Never replaced by a role of ours.
            return Wait(
                f"role {role} does not exist yet: the earlier step that gives "
                f"{', '.join(action.details.get('instances', []))} that role has not created it "
                "(see `migrate status`)",
                poll_s=60,
            )
        self._configure_role(ctx, iam, role)
        return None

    def _configure_role(self, ctx: StepContext, iam: Any, role: str) -> None:
        """Attach the SSM policy and put the logging policy on ``role`` (recorded first)."""
        attached = [
            p["PolicyArn"]
            for p in iam.list_attached_role_policies(RoleName=role).get("AttachedPolicies", [])
        ]
        if SSM_CORE_ARN not in attached:
            ctx.record_resource(
                "iam:role-managed-policy",
                role,
                change="modified",
                details={"policy_arn": SSM_CORE_ARN},
            )
            iam.attach_role_policy(RoleName=role, PolicyArn=SSM_CORE_ARN)
        wanted = self._logging_policy()
        if wanted:
            current = or_default(
                lambda: iam.get_role_policy(RoleName=role, PolicyName=LOGGING_POLICY), None
            )
            previous = (current or {}).get("PolicyDocument")
            if not any(r.identifier == role for r in ctx.resources("iam:role-inline-policy")):
                ctx.record_resource(
                    "iam:role-inline-policy",
                    role,
                    change="modified",
                    details={"policy_name": LOGGING_POLICY, "previous": previous},
                )
            iam.put_role_policy(
                RoleName=role, PolicyName=LOGGING_POLICY, PolicyDocument=json.dumps(wanted)
            )

    def _ensure_migrate_role(self, ctx: StepContext, iam: Any) -> None:
        role = self.params.role_name
        if not self._role_exists(iam, role):
            ctx.record_resource("iam:role", role, details={})
            try:
                iam.create_role(
                    RoleName=role,
                    AssumeRolePolicyDocument=json.dumps(EC2_TRUST),
                    Description="Session Manager access for instances without a role (migrate)",
                    Tags=[{"Key": "migrate:step", "Value": ctx.step_id}],
                )
            except ClientError as exc:
                if not has_code(exc, "EntityAlreadyExists"):
                    raise
        profile = or_default(lambda: iam.get_instance_profile(InstanceProfileName=role), None)
        if profile is None:
            ctx.record_resource("iam:instance-profile", role, details={})
            try:
                profile = iam.create_instance_profile(InstanceProfileName=role)
            except ClientError as exc:
                if not has_code(exc, "EntityAlreadyExists"):
                    raise
                profile = iam.get_instance_profile(InstanceProfileName=role)
        roles = [r["RoleName"] for r in profile["InstanceProfile"].get("Roles", [])]
        if role not in roles:
            iam.add_role_to_instance_profile(InstanceProfileName=role, RoleName=role)

    @handles("ssm.attach_profile")
    def _attach_profile(self, ctx: StepContext, action: Action) -> Wait | None:
        """Associate the migrate profile with an instance that has none (looking first)."""
        iam, ec2 = ctx.client("iam"), ctx.client("ec2", action.region)
        self._ensure_migrate_role(ctx, iam)
        current = [
            a
            for a in ec2.describe_iam_instance_profile_associations(
                Filters=[{"Name": "instance-id", "Values": [action.target]}]
            ).get("IamInstanceProfileAssociations", [])
            if a.get("State") in ("associated", "associating")
        ]
        if current:
            # Associated before a crash, or meanwhile by someone else (keys-to-roles gives the
            # hosts of access keys their own role): that role gets what Session Manager needs,
            # merged, never replaced.
            profile = current[0]["IamInstanceProfile"]["Arn"]
            role = self._role_of(iam, profile)
            if role and role != self.params.role_name:
                self._configure_role(ctx, iam, role)
            return None
        ctx.record_resource(
            "ec2:instance-profile-association",
            action.target,
            region=action.region,
            details={"profile": self.params.role_name},
        )
        try:
            ec2.associate_iam_instance_profile(
                IamInstanceProfile={"Name": self.params.role_name}, InstanceId=action.target
            )
        except ClientError as exc:
            # A new instance profile takes a few seconds to reach EC2 (IAM is eventually
            # consistent): AWS answers InvalidParameterValue until then.
            if has_code(exc, "InvalidParameterValue") and "profile" in str(exc).lower():
                return Wait("the new instance profile is not visible to EC2 yet", poll_s=10)
            raise
        return None

    @handles("ssm.session_preferences")
    def _session_preferences(self, ctx: StepContext, action: Action) -> Wait | None:
        """Create or update the preferences document and make the new version the default."""
        ssm = ctx.client("ssm", action.region)
        key_arn = KeyResolver(ctx, ctx.is_known).arn(self.params.kms_key, action.region)
        if self.params.kms_key and key_arn is None:
            raise StepFailed(f"the KMS key {self.params.kms_key} cannot be resolved; plan again.")
        content = json.dumps(self._wanted_preferences(key_arn))
        current = self._preferences(ctx, str(action.region))
        ctx.record_resource(
            "ssm:document",
            PREFERENCES,
            change="modified" if action.details.get("previous") else "created",
            region=action.region,
            details={"previous": action.details.get("previous")},
        )
        if current is None:
            ssm.create_document(
                Name=PREFERENCES, DocumentType="Session", DocumentFormat="JSON", Content=content
            )
            return None
        if current["content"] == json.loads(content):
            return None
        try:
            version = ssm.update_document(
                Name=PREFERENCES, DocumentVersion="$LATEST", DocumentFormat="JSON", Content=content
            )["DocumentDescription"]["DocumentVersion"]
        except ClientError as exc:
            if not has_code(exc, "DuplicateDocumentContent"):
                raise
            return None
        ssm.update_document_default_version(Name=PREFERENCES, DocumentVersion=version)
        return None

    @handles("ssm.grant_key")
    def _grant_key(self, ctx: StepContext, action: Action) -> Wait | None:
        """Merge the statement that lets the instance roles use the key; previous recorded."""
        region = action.region
        key_arn = KeyResolver(ctx, ctx.is_known).arn(self.params.kms_key, region)
        if key_arn is None:
            raise StepFailed(f"the KMS key {self.params.kms_key} cannot be resolved; plan again.")
        kms = ctx.client("kms", region)
        text = kms.get_key_policy(KeyId=key_arn, PolicyName="default")["Policy"]
        instances = self._instances(ctx.client("ec2", region))
        iam = ctx.client("iam")
        for inst in instances.values():
            inst["role"] = self._role_of(iam, inst.get("profile_arn"))
        wanted = self._key_statement(ctx.account_id, sorted(self._role_names(instances)))
        if not missing_statements(parse_policy(text), [wanted]):
            return None
        ctx.record_resource(
            "kms:key-policy", key_arn, change="modified", region=region, details={"previous": text}
        )
        kms.put_key_policy(
            KeyId=key_arn,
            PolicyName="default",
            Policy=dump_policy(merge_statements(parse_policy(text), [wanted])),
        )
        return None

    @handles("ssm.revoke_open_rule")
    def _revoke_open_rule(self, ctx: StepContext, action: Action) -> Wait | None:
        """Revoke exactly one CIDR of one rule; the rule is recorded to authorize it again."""
        ec2 = ctx.client("ec2", action.region)
        ctx.record_resource(
            "ec2:security-group-rule",
            action.target,
            change="deleted",
            region=action.region,
            details={
                "group_id": action.details["group_id"],
                "permission": action.details["permission"],
            },
        )
        try:
            ec2.revoke_security_group_ingress(
                GroupId=action.details["group_id"], IpPermissions=[action.details["permission"]]
            )
        except ClientError as exc:
            if not has_code(exc, "InvalidPermission.NotFound"):
                raise  # NotFound: revoked before a crash
        return None

    # -- verify, rollback ----------------------------------------------------------------------
    def verify(self, ctx: StepContext) -> None:
        """Every selected instance has a role with the SSM policy, the preferences are set, and
        no revoked rule is back. Agent registration stays a report (it needs the network)."""
        facts = self.observe(ctx)
        failed = [
            f"{f['subject']}: {f['detail']}" for f in facts["findings"] if f["status"] == "fail"
        ]
        if failed:
            raise StepFailed(
                "Session Manager is not complete: " + "; ".join(failed[:10]) + ". Resume to retry."
            )

    def rollback(self, ctx: StepContext) -> None:
        """Authorize revoked rules again, restore preferences, key policy and roles."""
        for res in ctx.resources("ec2:security-group-rule"):
            ec2 = ctx.client("ec2", res.region)
            try:
                ec2.authorize_security_group_ingress(
                    GroupId=res.details["group_id"], IpPermissions=[res.details["permission"]]
                )
            except ClientError as exc:
                if not has_code(exc, "InvalidPermission.Duplicate"):
                    raise
        for res in ctx.resources("ssm:document"):
            ssm = ctx.client("ssm", res.region)
            previous = res.details.get("previous")
            if previous:
                self._restore_preferences(ssm, previous["content"])
            else:
                or_default(partial(ssm.delete_document, Name=PREFERENCES), None)
        for res in ctx.resources("kms:key-policy"):
            # Only our statement goes: the archive's and the EBS statements stay.
            remove_key_statements(ctx.client("kms", res.region), res.identifier, {KEY_SID})
        self._rollback_iam(ctx)

    @staticmethod
    def _restore_preferences(ssm: Any, content: dict[str, Any]) -> None:
        try:
            version = ssm.update_document(
                Name=PREFERENCES,
                DocumentVersion="$LATEST",
                DocumentFormat="JSON",
                Content=json.dumps(content),
            )["DocumentDescription"]["DocumentVersion"]
        except ClientError as exc:
            if not has_code(exc, "DuplicateDocumentContent"):
                raise
            return
        ssm.update_document_default_version(Name=PREFERENCES, DocumentVersion=version)

    def _rollback_iam(self, ctx: StepContext) -> None:
        iam = ctx.client("iam")
        for res in ctx.resources("ec2:instance-profile-association"):
            ec2 = ctx.client("ec2", res.region)
            for assoc in ec2.describe_iam_instance_profile_associations(
                Filters=[{"Name": "instance-id", "Values": [res.identifier]}]
            ).get("IamInstanceProfileAssociations", []):
                if assoc["IamInstanceProfile"]["Arn"].endswith(f"/{res.details['profile']}"):
                    ec2.disassociate_iam_instance_profile(AssociationId=assoc["AssociationId"])
        for res in ctx.resources("iam:role-inline-policy"):
            previous = res.details.get("previous")
            if previous:
                document = previous if isinstance(previous, str) else json.dumps(previous)
                iam.put_role_policy(
                    RoleName=res.identifier,
                    PolicyName=LOGGING_POLICY,
                    PolicyDocument=document,
                )
            else:
                or_default(
                    partial(
                        iam.delete_role_policy, RoleName=res.identifier, PolicyName=LOGGING_POLICY
                    ),
                    None,
                )
        for res in ctx.resources("iam:role-managed-policy"):
            or_default(
                partial(iam.detach_role_policy, RoleName=res.identifier, PolicyArn=SSM_CORE_ARN),
                None,
            )
        created_roles = {r.identifier for r in ctx.resources("iam:role")}
        for res in ctx.resources("iam:instance-profile"):
            for role in created_roles:
                or_default(
                    partial(
                        iam.remove_role_from_instance_profile,
                        InstanceProfileName=res.identifier,
                        RoleName=role,
                    ),
                    None,
                )
            or_default(
                partial(iam.delete_instance_profile, InstanceProfileName=res.identifier), None
            )
        for role in created_roles:
            for policy in iam.list_attached_role_policies(RoleName=role).get(
                "AttachedPolicies", []
            ):
                iam.detach_role_policy(RoleName=role, PolicyArn=policy["PolicyArn"])
            for name in iam.list_role_policies(RoleName=role).get("PolicyNames", []):
                iam.delete_role_policy(RoleName=role, PolicyName=name)
            iam.delete_role(RoleName=role)


def ctx_known(value: str | None) -> bool:
    """True when ``value`` is given and is not a "(known after STEP)" placeholder."""
    return bool(value) and is_known(value)
