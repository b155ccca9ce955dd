"""``iam.keys_to_roles``: replace long-lived access keys with least-privilege roles, then retire them.

Per key, in order (one target per key, so one key's watch window never holds up another key):
``iam.create_role`` -> ``iam.switch_workloads`` (EC2 instances) -> ``iam.switch_lambda`` /
``iam.switch_ecs_task`` (gate ``cut-over``, where the key id sits in a Lambda environment or an ECS
task definition) -> ``iam.watch`` (a wait) -> ``iam.deactivate_key`` (gate) -> ``iam.retire_window``
(a wait) -> ``iam.delete_key`` (gate). Keys used from outside AWS
(or from nowhere we can attribute) get a single ``iam.review`` gate: a human decides.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import re
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, Literal
from urllib.parse import unquote

from pydantic import Field, field_validator

from migrate.aws.errors import access_denied, error_code, not_found
from migrate.aws.iam_scope import Scope
from migrate.aws.tags import tag_dict
from migrate.cloudtrail.actions import iam_actions
from migrate.cloudtrail.attribution import (
    CONF_NONE,
    SourceAttribution,
    attribute_sources,
    classify_ip,
)
from migrate.cloudtrail.model import ATTR_ENI, ATTR_SERVICE
from migrate.configs.scan import slug
from migrate.engine.base import Action, Estimate, Facts, Step, Wait, handles
from migrate.engine.context import StepContext
from migrate.engine.registry import step
from migrate.engine.selection import Selection
from migrate.errors import BadInputError, StepFailed
from migrate.steps.iam.coverage import (
    DATA_EVENT_TYPES,
    trail_coverage,
    unlogged_services,
    user_services,
)
from migrate.steps.iam.policy import EC2_TRUST, GeneratedPolicy, generate_policy
from migrate.steps.iam.workloads import (
    ecs_notes,
    ensure_task_role,
    find_ecs,
    find_lambda,
    lambda_rollback_notes,
    log_notes,
    mergeable,
    put_inline_policy,
    register_without_key,
    role_name_of,
    switch_lambda,
)
from migrate.util import format_duration, parse_duration, utcnow

POLICY_NAME = "migrate-observed-usage"
SSM_CORE_ARN = "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"
LOCATIONS = ("lambda", "ecs", "ec2-userdata", "ssm")
HOST_CHECKLIST = (
    "~/.aws/credentials and ~/.aws/config of every user the application runs as (also root)",
    "environment variables AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY in systemd units, "
    "/etc/environment, init scripts, container definitions and CI/CD variables",
    "application config files (.properties, .yml, .env, context.xml) and the deploy bundle",
    "cron jobs and scripts calling the aws CLI with --profile",
    "credential files and environment variables win over the instance profile in every SDK: "
    "the workload keeps using the key until they are gone",
)


def _duration(value: str | int | float) -> float:
    return float(value) if isinstance(value, (int, float)) else parse_duration(value)


class KeysToRolesParams(Selection):
    """Parameters of ``iam.keys_to_roles`` (``names``/``exclude``/``tags`` select IAM users)."""

    usage_report: str | None = None
    role_name: str = "migrate-{user}-{key_suffix}"
    unused_days: int = Field(default=90, ge=0)
    watch_window: str = "7d"
    retire_window: str = "7d"
    kms_key: str | None = None
    attach_ssm_core: bool = False
    s3_object_scope: Literal["folder", "exact"] = "folder"
    locations: list[str] = Field(default_factory=lambda: list(LOCATIONS))
    regions: list[str] = Field(default_factory=list)
    # Where hosts are looked for: every enabled region by default (calls to global services are
    # logged in us-east-1 wherever the host runs, and a private IP is only unambiguous if no
    # other region's VPC holds it too).
    host_regions: list[str] = Field(default_factory=lambda: ["all"])
    last_used_grace: str = "4h"  # added to a non-zero watch window: IAM's last-used lag
    # Host (instance id or Name tag) -> secrets (ARNs or names) its application reads after
    # secrets.from_configs: granted GetSecretValue (+ kms:Decrypt on kms_key) in its role.
    # Or an earlier step's output not known yet: "(known after config-secrets)".
    host_secrets: dict[str, list[str]] | str = Field(default_factory=dict)
    # Or a secret name pattern per host, "<host>" standing for each workload's Name tag and
    # instance id as secrets.from_configs writes it: "legacy/prod/<host>/*" grants the role
    # every secret that step stores for that host's files, whenever they are created.
    host_secrets_pattern: str | None = None
    # Data-event services (s3, lambda, dynamodb, sqs, sns) the operator accepts as unlogged:
    # their calls are missing from the evidence, and the role may lack them.
    accept_unlogged: list[str] = Field(default_factory=list)

    @field_validator("watch_window", "retire_window", "last_used_grace")
    @classmethod
    def _check_duration(cls, value: str) -> str:
        parse_duration(value)
        return value

    @field_validator("locations")
    @classmethod
    def _check_locations(cls, value: list[str]) -> list[str]:
        bad = [v for v in value if v not in LOCATIONS]
        if bad:
            raise ValueError(f"unknown location(s) {bad}; choose from {list(LOCATIONS)}")
        return value

    @field_validator("host_secrets")
    @classmethod
    def _check_host_secrets(cls, value: dict[str, list[str]] | str) -> dict[str, list[str]] | str:
        if isinstance(value, str) and "(known after" not in value:
            raise ValueError(
                "host_secrets maps a host (instance id or Name tag) to the secrets its "
                "application reads, e.g. {web-1: [legacy/prod/db]}, or is an earlier "
                "secrets.from_configs step's secrets_by_host output"
            )
        return value

    @field_validator("host_secrets_pattern")
    @classmethod
    def _check_pattern(cls, value: str | None) -> str | None:
        if value is not None and "<host>" not in value:
            raise ValueError(
                "host_secrets_pattern names each host's secrets with <host> in it, e.g. "
                "legacy/prod/<host>/* (the name_template of secrets.from_configs up to <host>)"
            )
        if value is not None and not re.search(r"<host>(/|$)", value):
            raise ValueError(
                "host_secrets_pattern must end <host> with '/' (or end with it): with "
                "'legacy/prod/<host>*' the role of host web would read web2's secrets too; "
                "write legacy/prod/<host>/*"
            )
        if value is not None and value.replace("<host>", "").strip("/*") == "":
            raise ValueError(
                "host_secrets_pattern must name more than the host (every secret of the "
                "account would match): put the prefix of secrets.from_configs' name_template "
                "before it, e.g. legacy/prod/<host>/*"
            )
        return value


def _host_names(workload: Mapping[str, Any]) -> list[str]:
    """What a workload's host calls itself or is called: its instance id, its Name tag, and
    EC2's default host name for its private IPv4 address (``ip-10-0-1-23``, what ``hostname``
    says on the instance, so what secrets.from_configs run there takes for ``<host>``)."""
    names = [workload.get("instance_id"), workload.get("name")]
    ip = str(workload.get("ip") or "")
    if classify_ip(ip) == "private" and ":" not in ip:
        names.append("ip-" + ip.replace(".", "-"))
    return [str(n) for n in names if n]


def _iso(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.replace(tzinfo=None).isoformat(timespec="seconds")
    return str(value)


ROLE_NAME_LIMIT = 64  # IAM role and instance profile names stop at 64 characters
OWNER_TAG = "migrate:access-key"


def _role_name(template: str, user: str, key_id: str, *, suffix_len: int = 6) -> str:
    """The role name for ``key_id``: the template rendered, always ending in the key's suffix.

    Truncation cuts the user part, never the suffix: two keys of one long-named user must not
    share a role (the second's policy would overwrite the first's). A template without the key
    (``app-{user}``) gets the suffix appended for the same reason.
    """
    suffix = key_id[-suffix_len:].lower()
    # The key goes at the end whatever the template says, so it is rendered without it first.
    name = template.format(user=user, key_id="", key_suffix="")
    name = re.sub(r"[^\w+=,.@-]", "-", name)
    name = re.sub(r"-{2,}", "-", name).strip("-") or "migrate"
    return name[: ROLE_NAME_LIMIT - len(suffix) - 1].rstrip("-") + "-" + suffix


def _role_names(template: str, keys: dict[str, str]) -> dict[str, str]:
    """``{key_id: role name}`` for ``{key_id: user}``, unique: keys whose names collide (the same
    six-character suffix) get the whole key id as suffix."""
    names = {k: _role_name(template, user, k) for k, user in keys.items()}
    counts: dict[str, int] = {}
    for name in names.values():
        counts[name] = counts.get(name, 0) + 1
    for key_id, name in names.items():
        if counts[name] > 1:
            names[key_id] = _role_name(template, keys[key_id], key_id, suffix_len=len(key_id))
    return names


def _task_role_name(role: str) -> str:
    """The ECS task role next to ``role`` (``<role>-task``), cut in the user part, never in the
    key suffix."""
    if len(role) + 5 <= ROLE_NAME_LIMIT:
        return role + "-task"
    head, _, suffix = role.rpartition("-")
    return head[: ROLE_NAME_LIMIT - len(suffix) - 6].rstrip("-") + "-" + suffix + "-task"


def _trusted_principals(doc: dict[str, Any]) -> set[str]:
    """The AWS principal ARNs an assume-role (trust) policy allows."""
    out: set[str] = set()
    statements = doc.get("Statement", [])
    for st in [statements] if isinstance(statements, dict) else statements:
        if st.get("Effect") != "Allow":
            continue
        aws = (
            (st.get("Principal") or {}).get("AWS", [])
            if isinstance(st.get("Principal"), dict)
            else []
        )
        out.update([aws] if isinstance(aws, str) else aws)
    return out


def _with_principal(doc: dict[str, Any], user_arn: str, new_arn: str) -> dict[str, Any]:
    """``doc`` with ``new_arn`` added next to ``user_arn`` in every statement naming the user
    (same actions and conditions: the new role may do what the user could)."""
    out = json.loads(json.dumps(doc))
    statements = out.get("Statement", [])
    for st in [statements] if isinstance(statements, dict) else statements:
        principal = st.get("Principal")
        if not isinstance(principal, dict):
            continue
        aws = principal.get("AWS", [])
        listed = [aws] if isinstance(aws, str) else list(aws)
        if user_arn in listed and new_arn not in listed:
            principal["AWS"] = [*listed, new_arn]
    return dict(out)


def _without_principal(doc: dict[str, Any], arn: str) -> dict[str, Any]:
    """``doc`` without ``arn`` among its AWS principals (what rollback undoes)."""
    out = json.loads(json.dumps(doc))
    statements = out.get("Statement", [])
    for st in [statements] if isinstance(statements, dict) else statements:
        principal = st.get("Principal")
        if isinstance(principal, dict) and isinstance(principal.get("AWS"), list):
            kept = [a for a in principal["AWS"] if a != arn]
            principal["AWS"] = kept[0] if len(kept) == 1 else kept
    return dict(out)


PROFILE_TRIES = 6


def _profile_not_visible_yet(exc: Exception) -> bool:
    """EC2's answer for an instance profile IAM has created but not yet propagated."""
    return error_code(exc) == "InvalidParameterValue" and "instance profile" in str(exc).lower()


def _merged_policy_name(key_id: str) -> str:
    return f"{POLICY_NAME}-{key_id[-6:].lower()}"


def _ecs_families(locations: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One new revision per task definition family, based on the newest revision holding the
    key; services of every revision holding it must move to the new one."""
    families: dict[tuple[str, str], dict[str, Any]] = {}
    for loc in locations:
        if loc["kind"] != "ecs":
            continue
        fam = families.setdefault(
            (loc["region"], loc["family"]),
            {"region": loc["region"], "family": loc["family"], "revisions": [], "services": []},
        )
        fam["revisions"].append(loc)
        fam["services"] = sorted({*fam["services"], *loc["services"]})
    out = []
    for fam in families.values():
        base = max(fam.pop("revisions"), key=lambda r: int(r["revision"]))
        out.append(
            {**fam, "base": base["name"], "role": base["role"], "variables": base["variables"]}
        )
    return sorted(out, key=lambda f: (f["region"], f["family"]))


@step("iam.keys_to_roles")
class KeysToRoles(Step):
    """Replace long-lived access keys with least-privilege roles, watch, then retire the keys.

    Evidence comes from a CloudTrail usage report (``cloudtrail.usage``; the newest one when
    ``usage_report`` is not given): which calls each key made and from which hosts. A key used from
    EC2 instances gets a role (trust ``ec2.amazonaws.com``, an inline policy generated from the
    observed calls plus ``kms:Decrypt``/``GenerateDataKey`` on ``kms_key`` where the workload reads
    or writes encrypted data), an instance profile, and the profile on each instance - or, where an
    instance already has a profile, the policy merged into that profile's role. Then a watch window
    (a run state) proves the key went quiet; deactivation and deletion are separate gates with a
    retire window between them. Keys unused for ``unused_days`` go straight to deactivation. Keys used
    from outside AWS or from unattributed addresses are listed for a human (``iam.review``). The
    key id is also looked for in Lambda environments, ECS task definitions, EC2 user data and SSM
    parameters; a Lambda gets the policy merged into its execution role and the key's variables
    removed, an ECS task definition a new revision with a task role and without them (both behind
    a ``cut-over`` gate; ECS services are moved by the operator). Rollback reactivates keys,
    restores instance profiles and removes merged policies; roles are kept, and removed Lambda
    variables are the operator's to restore (the secret was never stored).
    """

    Params = KeysToRolesParams
    permissions = (
        "iam:ListUsers",
        "iam:ListUserPolicies",
        "iam:GetUserPolicy",
        "iam:ListAttachedUserPolicies",
        "iam:GetPolicy",
        "iam:GetPolicyVersion",
        "iam:ListGroupsForUser",
        "iam:ListGroupPolicies",
        "iam:GetGroupPolicy",
        "iam:ListAttachedGroupPolicies",
        "cloudtrail:DescribeTrails",
        "cloudtrail:GetEventSelectors",
        "iam:GetAccountSummary",
        "iam:ListUserTags",
        "iam:ListAccessKeys",
        "iam:GetAccessKeyLastUsed",
        "iam:GetRole",
        "iam:ListRoleTags",
        "iam:ListRolePolicies",
        "iam:CreateRole",
        "iam:TagRole",
        "iam:PutRolePolicy",
        "iam:UpdateAssumeRolePolicy",
        "iam:DeleteRolePolicy",
        "iam:AttachRolePolicy",
        "iam:GetInstanceProfile",
        "iam:CreateInstanceProfile",
        "iam:AddRoleToInstanceProfile",
        "iam:PassRole",
        "iam:UpdateAccessKey",
        "iam:DeleteAccessKey",
        "ec2:DescribeInstances",
        "ec2:DescribeRegions",
        "ec2:DescribeNetworkInterfaces",
        "ec2:DescribeVpcEndpoints",
        "ec2:DescribeInstanceAttribute",
        "ec2:DescribeIamInstanceProfileAssociations",
        "ec2:AssociateIamInstanceProfile",
        "ec2:DisassociateIamInstanceProfile",
        "lambda:ListFunctions",
        "lambda:ListVersionsByFunction",
        "lambda:GetFunctionConfiguration",
        "lambda:UpdateFunctionConfiguration",
        "ecs:ListTaskDefinitions",
        "ecs:DescribeTaskDefinition",
        "ecs:RegisterTaskDefinition",
        "ecs:TagResource",
        "ecs:ListClusters",
        "ecs:ListServices",
        "ecs:DescribeServices",
        "ssm:DescribeParameters",
        "ssm:GetParameters",
    )
    passes_roles_to = (
        "ec2.amazonaws.com",
        "ecs-tasks.amazonaws.com",
    )
    outputs = ("role_arns", "retired_keys", "instance_roles")
    action_kinds = (
        "iam.review",
        "iam.create_role",
        "iam.switch_workloads",
        "iam.switch_lambda",
        "iam.switch_ecs_task",
        "iam.trust_role",
        "iam.watch",
        "iam.deactivate_key",
        "iam.retire_window",
        "iam.delete_key",
    )
    example = """\
- id: keys-to-roles
  uses: iam.keys_to_roles
  with:
    names: ["*"]
    watch_window: 7d
    retire_window: 7d
    kms_key: "{{ steps.kms.key_arn }}"
"""
    params: KeysToRolesParams

    def permission_scopes(self) -> list[Scope]:
        """Roles and instance profiles are created only under the fixed start of ``role_name``
        (``migrate-`` by default); policies are also merged into roles workloads already have,
        so those actions stay on every role."""
        # The fixed start of the names `_role_name` really makes (its clean-up included): what
        # two very different users' names share.
        one = _role_name(self.params.role_name, "a", "AKIA0000000000AAAAAA")
        two = _role_name(self.params.role_name, "zz", "AKIA0000000000ZZZZZZ")
        prefix = os.path.commonprefix([one, two])  # noqa: RUF071 (names, not paths)
        if not prefix:
            return []
        made = (prefix + "*",)
        return [
            Scope(
                ("iam:CreateRole", "iam:CreateInstanceProfile", "iam:AddRoleToInstanceProfile"),
                {"RoleNameWithPath": made, "InstanceProfileNameWithPath": made},
            )
        ]

    # -- observe ---------------------------------------------------------------------------------
    def _report(self, ctx: StepContext) -> Any:
        report_id = self.params.usage_report
        if report_id and not ctx.is_known(report_id):
            return None
        return ctx.usage_report(report_id)

    def observe(self, ctx: StepContext) -> Facts:
        """Keys of the selected users, their usage, workloads and where the key id is stored."""
        iam = ctx.client("iam")
        report = self._report(ctx)
        refused = report.refuse_switching_reason() if report is not None else None
        if refused:
            # Without IAM's view a key that made no call is absent from the report and one of
            # another account looks like ours: switching or retiring keys from it is unsafe.
            raise BadInputError(
                f"step {ctx.step_id!r} (iam.keys_to_roles): {refused} "
                + (
                    "(the step's `usage_report` names it)"
                    if self.params.usage_report
                    else "(it is the newest report in the state store, used because the "
                    "step names no `usage_report`)"
                )
            )
        keys: dict[str, Any] = {}
        every_user: list[str] = []
        for page in iam.get_paginator("list_users").paginate():
            for user in page.get("Users", []):
                name = user["UserName"]
                every_user.append(name)
                if not self.params.name_matches(name):
                    continue
                if self.params.tags:
                    tags = tag_dict(iam.list_user_tags(UserName=name).get("Tags"))
                    if not self.params.tags_match(tags):
                        continue
                for meta in iam.list_access_keys(UserName=name).get("AccessKeyMetadata", []):
                    key_id = meta["AccessKeyId"]
                    last = iam.get_access_key_last_used(AccessKeyId=key_id).get(
                        "AccessKeyLastUsed", {}
                    )
                    keys[key_id] = {
                        "user": name,
                        "status": meta.get("Status"),
                        "created": _iso(meta.get("CreateDate")),
                        "last_used": _iso(last.get("LastUsedDate")),
                        "last_used_service": last.get("ServiceName"),
                        "usage": self._usage(report, key_id),
                        "workloads": [],
                        "outside": [],
                        "doubtful": [],
                        "attribution": [],
                        "locations": [],
                    }
        empty_globs = self.params.unmatched(every_user, "IAM user", f"account {ctx.account_id}")
        names = _role_names(self.params.role_name, {k: v["user"] for k, v in keys.items()})
        for key_id, key in keys.items():
            key["role_name"] = names[key_id]
            key["role_owners"] = {
                role: self._role_owner(iam, role)
                for role in (names[key_id], _task_role_name(names[key_id]))
            }
        self._attribute_all(ctx, keys)
        self._session_chain(ctx, report, keys)
        try:
            coverage: dict[str, Any] | None = trail_coverage(lambda r: ctx.client("cloudtrail", r))
        except Exception as exc:
            if not access_denied(exc):
                raise
            coverage = None  # the plan says coverage is unknown
        services: dict[str, list[str]] = {}
        for key in keys.values():
            if key["user"] not in services:
                services[key["user"]] = user_services(iam, key["user"])
            key["policy_services"] = services[key["user"]]
        self._find_locations(ctx, keys)
        try:
            summary = iam.get_account_summary().get("SummaryMap", {})
        except Exception as exc:
            if not access_denied(exc):
                raise
            summary = {}
        return {
            # The root user's keys are no IAM user's: list_users never shows them.
            "root_access_keys": summary.get("AccountAccessKeysPresent"),
            "coverage": coverage,
            "report_id": getattr(report, "id", None),
            "report_window": [getattr(report, "since", None), getattr(report, "until", None)],
            "keys": keys,
            "compliant": [],
            "warnings": empty_globs,
        }

    def _session_chain(self, ctx: StepContext, report: Any, keys: dict[str, Any]) -> None:
        """Follow each key's temporary credentials: the calls made with its GetSessionToken
        sessions join the key's evidence, and the roles it assumed are listed with their trust
        (a role that trusts the *user* must trust the new role too, or the workload breaks the
        day the key is deactivated)."""
        iam = ctx.client("iam")
        minting: dict[str, list[str]] = {}
        for key_id, key in keys.items():
            chain = (key["usage"] or {}).get("chain")
            if chain and chain["session_tokens"] > 0:
                minting.setdefault(key["user"], []).append(key_id)
        for session in getattr(report, "sessions", None) or []:
            if session.identity_type != "IAMUser" or session.owner not in minting:
                continue
            minted = minting[session.owner]
            if len(minted) > 1:
                # Which key minted which session needs responseElements.credentials.accessKeyId,
                # which ingestion does not keep: a human decides.
                for key_id in minted:
                    keys[key_id]["doubtful"].append(
                        f"sessions of {session.owner} ({session.calls} calls) were minted by "
                        f"GetSessionToken with one of {', '.join(minted)}: which is unknown"
                    )
                continue
            usage = keys[minted[0]]["usage"]
            for c in session.actions:
                needed = iam_actions(c.event_source, c.event_name) or (c.iam_action,)
                usage["actions"].append(
                    {
                        "action": needed[0],
                        "event": f"{c.event_source}:{c.event_name} (GetSessionToken session)",
                        "count": c.count,
                        "errors": dict(c.errors),
                        "resources": [],
                    }
                )
            usage["chain"]["session_calls"] = session.calls
        for key in keys.values():
            chain = (key["usage"] or {}).get("chain")
            if not chain:
                continue
            user_arn = f"arn:aws:iam::{ctx.account_id}:user/{key['user']}"
            listed = []
            for arn in chain["targets"]:
                entry: dict[str, Any] = {"arn": arn, "readable": False, "names_user": False}
                if arn.split(":")[4:5] == [ctx.account_id]:
                    try:
                        doc = iam.get_role(RoleName=arn.rsplit("/", 1)[-1])["Role"][
                            "AssumeRolePolicyDocument"
                        ]
                        doc = json.loads(unquote(doc)) if isinstance(doc, str) else doc
                        entry.update(
                            readable=True,
                            names_user=user_arn in _trusted_principals(doc),
                            trust=doc,
                        )
                    except Exception as exc:
                        if not not_found(exc):
                            raise
                listed.append(entry)
            chain["targets_trust"] = listed

    @staticmethod
    def _role_owner(iam: Any, role: str) -> dict[str, Any] | None:
        """None if no role of that name exists; else whose it is (the ``migrate:access-key``
        tag, None when untagged), so the plan never adopts a role migrate did not make."""
        try:
            found = iam.get_role(RoleName=role)["Role"]
        except Exception as exc:
            if not not_found(exc):
                raise
            return None
        tags = found.get("Tags")
        if tags is None:  # get_role returns tags on AWS; list them where it did not
            tags = iam.list_role_tags(RoleName=role).get("Tags", [])
        return {"arn": found.get("Arn"), "owner": tag_dict(tags).get(OWNER_TAG)}

    @staticmethod
    def _usage(report: Any, key_id: str) -> dict[str, Any] | None:
        if report is None:
            return None
        try:
            usage = report.key(key_id)
        except KeyError:
            return {"calls": 0, "first_seen": None, "last_seen": None, "actions": [], "ips": {}}
        calls: list[dict[str, Any]] = []
        pass_role: list[str] = []
        chain: dict[str, Any] = {"session_tokens": 0, "assume_role": 0, "targets": []}
        for c in usage.actions:
            event = f"{c.event_source}:{c.event_name}"
            if c.event_source == "sts.amazonaws.com" and c.event_name == "GetSessionToken":
                # A role cannot call GetSessionToken: the key's sessions are followed instead.
                chain["session_tokens"] += c.count - sum(c.errors.values())
                continue
            if c.event_source == "sts.amazonaws.com" and c.event_name == "AssumeRole":
                chain["assume_role"] += c.count - sum(c.errors.values())
                chain["targets"] = sorted(
                    {*chain["targets"], *(r for r in c.resources if r != "*")}
                )
                if not chain["targets"]:
                    continue  # no known target: sts:AssumeRole on "*" would be for nothing
            # Mapped again here, not taken from the report: a report stored before the table was
            # corrected (sqs:SendMessageBatch, which is no action) still yields the right role.
            needed = iam_actions(c.event_source, c.event_name) or (c.iam_action,)
            calls.append(
                {
                    "action": needed[0],
                    "event": event,
                    "count": c.count,
                    "errors": dict(c.errors),
                    "resources": sorted(c.resources),
                }
            )
            # What its request parameters showed it needs too (an ACL header: PutObjectAcl;
            # a version id: GetObjectVersion), on the objects it named itself.
            shown = [a for a in c.also if a not in needed]
            for extra in (*needed[1:], *shown):
                if extra == "iam:PassRole":
                    # Never granted on "*" (that lets the host hand any role to anything):
                    # the plan names the call so the operator grants it on the role passed.
                    pass_role.append(event)
                    continue
                copy_source = c.event_name in ("CopyObject", "UploadPartCopy") and extra in (
                    "s3:GetObject",
                    "s3:GetObjectVersion",
                )
                # What the call's name says it also needs (the copy source, ReEncryptTo) has no
                # resource CloudTrail names: it is granted on "*" and flagged broad.
                calls.append(
                    {
                        "action": extra,
                        "event": f"{event} (also needs {extra})",
                        "count": c.count,
                        "errors": dict(c.errors),
                        "resources": sorted(c.resources)
                        if extra in shown and not copy_source
                        else [],
                    }
                )
        return {
            "calls": usage.calls,
            "first_seen": usage.first_seen,
            "last_seen": usage.last_seen,
            "actions": calls,
            "pass_role": sorted(set(pass_role)),
            "chain": chain,
            "ips": dict(sorted(usage.source_ips.items())),
            "ip_endpoints": {ip: dict(v) for ip, v in sorted(usage.ip_endpoints.items())},
            "user_agents": sorted(usage.user_agents)[:5],
        }

    def _search_regions(self, ctx: StepContext) -> list[str]:
        """``host_regions``, where ``all`` means every enabled region (ENIs of all regions:
        global-service calls are logged in us-east-1 wherever the host runs); the step's own
        regions first."""
        named = [r for r in self.params.host_regions if r != "all"]
        if "all" not in self.params.host_regions:
            return list(dict.fromkeys([*ctx.regions, *named]))
        try:
            listed = [
                r["RegionName"] for r in ctx.client("ec2").describe_regions().get("Regions", [])
            ]
        except Exception as exc:
            if not access_denied(exc):
                raise
            listed = []  # no ec2:DescribeRegions: the step's regions only
        return list(dict.fromkeys([*ctx.regions, *named, *sorted(listed)]))

    def _attribute_all(self, ctx: StepContext, keys: dict[str, Any]) -> None:
        """Attribute every key's (source IP, VPC endpoint) pairs by VPC, IP and time, once for
        all keys; only confident EC2 attributions become workloads to switch."""
        pairs: dict[tuple[str, str], str | None] = {}
        for key in keys.values():
            usage = key["usage"]
            for ip in (usage or {}).get("ips", {}):
                if ip.endswith(".amazonaws.com") or classify_ip(ip) is None:
                    continue  # an AWS service acting for the caller
                for vpce in usage["ip_endpoints"].get(ip) or {"": 0}:
                    first = pairs.get((ip, vpce))
                    seen = usage.get("first_seen")
                    pairs[(ip, vpce)] = (
                        min(x for x in (first, seen) if x) if first or seen else None
                    )
        if not pairs:
            return
        regions = self._search_regions(ctx)
        found = attribute_sources(lambda r: ctx.client("ec2", r), regions, pairs, pairs)
        for key in keys.values():
            usage = key["usage"]
            if not usage:
                continue
            for ip in usage["ips"]:
                for vpce in usage["ip_endpoints"].get(ip) or {"": 0}:
                    att = found.get((ip, vpce))
                    if att is not None:
                        self._place(ctx, key, att)
            key["workloads"].sort(key=lambda w: w["instance_id"])
            key["outside"].sort()

    @staticmethod
    def _place(ctx: StepContext, key: dict[str, Any], att: SourceAttribution) -> None:
        """File one attribution under the key: a workload, an address outside, or a doubt."""
        key.setdefault("attribution", []).append(att.to_dict())
        if att.kind == ATTR_SERVICE:
            return
        if not att.confident:
            if att.confidence in (CONF_NONE,) or att.kind == ATTR_ENI:
                key["outside"].append(att.ip)
            else:
                key.setdefault("doubtful", []).append(f"{att.ip}: {att.reason}")
            return
        if any(w["instance_id"] == att.instance_id for w in key["workloads"]):
            return
        region = att.region or ctx.regions[0]
        assoc = (
            ctx.client("ec2", region)
            .describe_iam_instance_profile_associations(
                Filters=[{"Name": "instance-id", "Values": [att.instance_id]}]
            )
            .get("IamInstanceProfileAssociations", [])
        )
        live = [a for a in assoc if a.get("State") in ("associated", "associating")]
        shared: list[str] = []
        if live:
            # Who else runs with this profile: a merge reaches every one of them.
            profile = live[0]["IamInstanceProfile"]["Arn"]
            pages = (
                ctx.client("ec2", region)
                .get_paginator("describe_iam_instance_profile_associations")
                .paginate()
            )
            shared = sorted(
                a["InstanceId"]
                for page in pages
                for a in page.get("IamInstanceProfileAssociations", [])
                if a["IamInstanceProfile"]["Arn"] == profile
                and a.get("State") in ("associated", "associating")
                and a["InstanceId"] != att.instance_id
            )
        key["workloads"].append(
            {
                "kind": "ec2",
                "instance_id": att.instance_id,
                "name": att.instance_name,
                "ip": att.ip,
                "region": region,
                "vpc_id": att.vpc_id,
                "confidence": att.confidence,
                "profile_arn": live[0]["IamInstanceProfile"]["Arn"] if live else None,
                "profile_shared_with": shared,
            }
        )

    def _find_locations(self, ctx: StepContext, keys: dict[str, Any]) -> None:
        """Where legacy systems keep key ids: only the fact that a key id appears is kept."""
        if not keys:
            return
        ids = list(keys)

        def hits(text: str | None) -> list[str]:
            return [k for k in ids if text and k in text]

        wanted = set(self.params.locations)
        for region in ctx.regions:
            if "lambda" in wanted:
                for k, found in find_lambda(ctx, region, ids).items():
                    keys[k]["locations"] += found
            if "ecs" in wanted:
                for k, found in find_ecs(ctx, region, ids).items():
                    keys[k]["locations"] += found
            if "ec2-userdata" in wanted:
                ec2 = ctx.client("ec2", region)
                for page in ec2.get_paginator("describe_instances").paginate():
                    for res in page.get("Reservations", []):
                        for inst in res.get("Instances", []):
                            attr = ec2.describe_instance_attribute(
                                InstanceId=inst["InstanceId"], Attribute="userData"
                            )
                            raw = (attr.get("UserData") or {}).get("Value")
                            text = base64.b64decode(raw).decode("utf-8", "replace") if raw else ""
                            for k in hits(text):
                                keys[k]["locations"].append(
                                    {
                                        "kind": "ec2-userdata",
                                        "name": inst["InstanceId"],
                                        "region": region,
                                    }
                                )
            if "ssm" in wanted:
                ssm = ctx.client("ssm", region)
                names: list[str] = []
                for page in ssm.get_paginator("describe_parameters").paginate():
                    names += [
                        p["Name"]
                        for p in page.get("Parameters", [])
                        if p.get("Type") != "SecureString"
                    ]
                for i in range(0, len(names), 10):
                    got = ssm.get_parameters(Names=names[i : i + 10], WithDecryption=False)
                    for param in got.get("Parameters", []):
                        for k in hits(param.get("Value")):
                            keys[k]["locations"].append(
                                {"kind": "ssm", "name": param["Name"], "region": region}
                            )
        for key in keys.values():
            key["locations"].sort(key=lambda loc: (loc["kind"], loc["name"]))

    # -- decide ----------------------------------------------------------------------------------
    def _unused_days(self, key: dict[str, Any]) -> float | None:
        """Days since the key was last used (or created, if never), per IAM."""
        when = key["last_used"] or key["created"]
        if not when:
            return None
        try:
            moment = datetime.fromisoformat(str(when).replace("Z", "+00:00")).replace(tzinfo=None)
        except ValueError:
            return None
        return (utcnow() - moment).total_seconds() / 86400

    def decide(self, ctx: StepContext, facts: Facts) -> list[Action]:
        """Per key: a role and a switch, or retirement of an unused key, or a human review."""
        actions: list[Action] = []
        watch = _duration(self.params.watch_window)
        retire = _duration(self.params.retire_window)
        if facts.get("root_access_keys"):
            actions.append(
                Action(
                    kind="iam.review",
                    target="root-access-keys",
                    summary="FTR finding: the account's root user has access keys. No role can "
                    "replace them and migrate never touches root credentials: sign in as root, "
                    "check what uses them (IAM credential report: access_key_*_last_used), move "
                    "that to a role, then delete them (Security credentials page)",
                    gate="human-review",
                    destructive=True,
                    risks=("root access keys can do anything in the account, unrestricted",),
                    details={"user": "root"},
                )
            )
        for key_id, key in sorted(facts["keys"].items()):
            if key["status"] == "Inactive":
                # Already off (nothing can use it): only the deletion is left, behind its gate,
                # after the retire window (an FTR reviewer counts inactive keys too).
                actions += self._retire(
                    key_id,
                    key["user"],
                    retire,
                    [f"{key_id} ({key['user']}) is inactive"],
                )[1:]
                continue
            if key["status"] != "Active":
                continue
            user = key["user"]
            usage = key["usage"]
            idle = self._unused_days(key)
            calls = usage["calls"] if usage else 0
            if calls == 0:
                if key["last_used"] and idle is not None and idle < self.params.unused_days:
                    actions.append(
                        self._review(
                            key_id,
                            user,
                            f"IAM saw this key used {idle:.0f} days ago "
                            f"({key['last_used_service']}) "
                            + (
                                "but there is no CloudTrail usage report: run cloudtrail.usage "
                                "(`migrate trail usage`) first, then plan again"
                                if usage is None
                                else "but the CloudTrail evidence has no call: widen its window"
                            ),
                        )
                    )
                elif idle is None or idle >= self.params.unused_days:
                    note = f"unused for {idle:.0f} days" if idle is not None else "never used"
                    if not key["last_used"]:
                        note = "never used" + (f" (created {idle:.0f} days ago)" if idle else "")
                    actions += self._retire(
                        key_id,
                        user,
                        retire,
                        [f"{key_id} ({user}) is {note}", *self._location_notes(key, "retire")],
                    )
                else:
                    actions.append(
                        self._review(
                            key_id,
                            user,
                            f"no use seen, but the key is only {idle:.0f} days old "
                            f"(unused_days is {self.params.unused_days})",
                        )
                    )
                continue
            assert usage is not None  # calls > 0
            if key.get("doubtful"):
                # An address that may belong to another host (another VPC, a reused IP): a
                # switch would hand this key's permissions to the wrong machine.
                actions.append(
                    self._review(
                        key_id,
                        user,
                        "attribution is not certain, no automatic switch: "
                        + " | ".join(key["doubtful"]),
                    )
                )
                continue
            chain = usage.get("chain") or {}
            unresolved = [t["arn"] for t in chain.get("targets_trust", []) if not t["readable"]]
            if chain.get("assume_role") and not chain.get("targets"):
                unresolved.append("(CloudTrail named no role)")
            if unresolved:
                # The key must not go before we know the new role can take over the
                # assumption: a trust we cannot read or change is a human's.
                actions.append(
                    self._review(
                        key_id,
                        user,
                        "the key assumes role(s) whose trust policy migrate cannot read or "
                        "extend: " + ", ".join(unresolved),
                    )
                )
                continue
            gap = self._coverage_gap(facts.get("coverage"), key)
            if gap:
                actions.append(self._review(key_id, user, gap))
                continue
            moves = [loc for loc in key["locations"] if loc["kind"] in ("lambda", "ecs")]
            # A Lambda or ECS hit is a workload we can move; its calls come from AWS addresses
            # no instance owns, so "outside" alone does not stop the switch then (the watch
            # window still catches any other user of the key).
            if not moves and (key["outside"] or not key["workloads"]):
                seen = ", ".join(key["outside"]) or "no attributable address"
                actions.append(
                    self._review(
                        key_id,
                        user,
                        f"used from {seen} (outside AWS or behind NAT): no automatic switch; "
                        f"{usage['calls']} calls, actions "
                        + ", ".join(
                            sorted({a["action"] or a["event"] for a in usage["actions"]})[:10]
                        ),
                    )
                )
                continue
            actions += self._switch(ctx, key_id, key, watch, retire)
        return self._with_evidence(facts, actions)

    @staticmethod
    def _with_evidence(facts: Facts, actions: list[Action]) -> list[Action]:
        """The first action of each key carries the key's evidence in the operator's words:
        window and coverage, attribution with its confidence, the session chain, and why."""
        coverage = facts.get("coverage")
        if coverage is None:
            covered = "trail coverage unknown"
        elif not coverage["trails"]:
            covered = "no trail in the account"
        else:
            covered = (
                f"trails {', '.join(t['name'] for t in coverage['trails'])}: management "
                f"{coverage['management'] or 'none'}, data events "
                f"{', '.join(coverage['data_types']) or 'none'}, "
                + ("multi-region" if coverage["multi_region"] else "single-region")
            )
        window = facts.get("report_window") or [None, None]
        seen: set[str] = set()
        out: list[Action] = []
        for action in actions:
            key = facts["keys"].get(action.target)
            if key is None or action.target in seen:
                out.append(action)
                continue
            seen.add(action.target)
            attribution = [
                f"{a['ip']}"
                + (f" via {a['vpc_endpoint_id']}" if a.get("vpc_endpoint_id") else "")
                + f" -> {a.get('instance_id') or a['kind']} ({a['confidence']})"
                for a in key.get("attribution", [])
            ]
            chain = ((key.get("usage") or {}).get("chain")) or {}
            chain_text = []
            if chain.get("session_tokens"):
                chain_text.append(
                    f"GetSessionToken x{chain['session_tokens']}"
                    + (
                        f", {chain['session_calls']} session calls joined"
                        if chain.get("session_calls")
                        else ""
                    )
                )
            for t in chain.get("targets_trust", []):
                chain_text.append(
                    f"assumes {t['arn']}"
                    + (" (trusts the user)" if t["names_user"] else "")
                    + ("" if t["readable"] else " (trust unreadable)")
                )
            evidence = {
                "window": f"{window[0] or '?'} .. {window[1] or '?'}",
                "coverage": covered,
                "attribution": attribution,
                "session_chain": chain_text,
                "decision": action.kind,
                "why": action.summary,
            }
            line = (
                f"evidence {evidence['window']}; {covered}; attribution: "
                + ("; ".join(attribution) or "none")
                + "; session chain: "
                + ("; ".join(chain_text) or "none")
            )
            out.append(
                dataclasses.replace(
                    action,
                    details={**action.details, "evidence": evidence},
                    risks=(line, *action.risks),
                )
            )
        return out

    def _grant_secrets(
        self, ctx: StepContext, key: dict[str, Any], policy: GeneratedPolicy, kms: str | None
    ) -> None:
        """Secrets the host reads once secrets.from_configs moved its credentials: past usage
        never shows them, so the operator names them per host (``host_secrets``)."""
        mapping = self.params.host_secrets
        if isinstance(mapping, str):
            # An earlier step's output (secrets_by_host) this plan could not know yet.
            policy.extra_notes.append(
                "the secrets named in host_secrets are granted once the step creating them ran"
            )
            if self.params.host_secrets_pattern is None:
                return
            mapping = {}
        wanted: list[str] = []
        for w in key["workloads"]:
            for host in (w["instance_id"], w.get("name")):
                wanted += mapping.get(host or "", [])
        pattern = self.params.host_secrets_pattern
        if pattern is not None:
            hosts = sorted({slug(h) for w in key["workloads"] for h in _host_names(w) if h})
            # A pattern that ends in "*" matches the name's random suffix as well.
            named = [pattern.replace("<host>", h) for h in hosts]
            wanted += [n + ("" if n.endswith("*") else "-??????") for n in named]
            if named:
                policy.extra_notes.append(
                    "secretsmanager:GetSecretValue on the secrets secrets.from_configs stores "
                    f"for this host ({', '.join(named)}), before they exist: the application "
                    "reads them once its config files are rewritten"
                )
        if not wanted:
            if key["workloads"]:
                policy.extra_notes.append(
                    "secrets that secrets.from_configs moves out of config files on "
                    + ", ".join(w["instance_id"] for w in key["workloads"])
                    + " are not in this role: the application will need "
                    "secretsmanager:GetSecretValue on them"
                    + (f" and kms:Decrypt on {self.params.kms_key}" if self.params.kms_key else "")
                    + "; name them under host_secrets (host -> secrets) to grant them"
                )
            return
        if not all(ctx.is_known(s) for s in wanted):
            policy.extra_notes.append(
                "the secrets named in host_secrets are granted once the step creating them ran"
            )
            return
        region = ctx.regions[0]
        arns = sorted(
            {
                s
                if s.startswith("arn:")
                else f"arn:aws:secretsmanager:{region}:{ctx.account_id}:secret:{s}"
                + ("" if s.endswith(("*", "-??????")) else "-??????")
                for s in wanted
            }
        )
        statements = policy.document["Statement"]
        statements[:] = [st for st in statements if st.get("Effect") != "Deny"]
        statements.append(
            {
                "Sid": "SecretsFromConfigs",
                "Effect": "Allow",
                "Action": ["secretsmanager:GetSecretValue"],
                "Resource": arns,
            }
        )
        if kms and not any(st.get("Sid") == "KeyForEncryptedData" for st in statements):
            statements.append(
                {
                    "Sid": "KeyForSecrets",
                    "Effect": "Allow",
                    "Action": ["kms:Decrypt"],
                    "Resource": kms,
                }
            )

    def _coverage_gap(self, coverage: dict[str, Any] | None, key: dict[str, Any]) -> str | None:
        """Why the evidence cannot show everything the key does, or None."""
        last = (key.get("last_used_service") or "").lower()
        services = [*key.get("policy_services", []), *([last] if last else [])]
        if coverage is None:
            # The trails could not be read: which data events they log is unknown, so a key
            # that may use a data-event service is not switched on evidence that may lack it.
            unknown = unlogged_services({"data_types": []}, services, self.params.accept_unlogged)
            if not unknown:
                return None
            return (
                "the trails could not be read (cloudtrail:DescribeTrails refused), so whether "
                f"they log data events for {', '.join(unknown)} is unknown: those calls may be "
                "missing from the evidence and the role would lack them. Grant the migrator "
                "cloudtrail:DescribeTrails and cloudtrail:GetEventSelectors and plan again, or "
                "accept with `accept_unlogged: " + json.dumps(unknown) + "`"
            )
        missing = unlogged_services(coverage, services, self.params.accept_unlogged)
        problems = []
        if missing:
            why = ", ".join(
                f"{s} ({DATA_EVENT_TYPES[s]}"
                + (
                    ": IAM last saw the key use it"
                    if s == last
                    else ": the user's policies allow it"
                )
                + ")"
                for s in missing
            )
            trails = ", ".join(t["name"] for t in coverage["trails"]) or "no trail"
            problems.append(
                f"the trails ({trails}) log no data events for {why}: those calls are missing "
                "from the evidence and the role would lack them. Add data-event selectors and "
                "collect again, or accept with `accept_unlogged: " + json.dumps(missing) + "`"
            )
        if coverage["management"] not in ("All", None):
            problems.append(
                f"the trails log management events {coverage['management']} only: the "
                "evidence misses the other kind of calls"
            )
        return "; ".join(problems) or None

    def _check_owner(self, key_id: str, key: dict[str, Any], role: str) -> None:
        """A role of our name that migrate did not make for this key is never adopted: its
        policy would be overwritten and its trust may let other principals in."""
        found = (key.get("role_owners") or {}).get(role)
        if found is None or found.get("owner") == key_id:
            return
        owner = found.get("owner")
        whose = (
            f"its {OWNER_TAG} tag names another key ({owner})"
            if owner
            else f"it has no {OWNER_TAG} tag (migrate did not create it)"
        )
        raise BadInputError(
            f"iam.keys_to_roles: the role {role} for access key {key_id} ({key['user']}) already "
            f"exists and is not migrate's for this key: {whose}. Migrate never adopts or "
            "overwrites such a role. Choose another naming scheme with the step's `role_name` "
            "parameter (placeholders {user}, {key_suffix}), or rename or delete that role, then "
            "plan again."
        )

    @staticmethod
    def _location_notes(key: dict[str, Any], why: str) -> list[str]:
        """Plan notes for places holding the key id that no action of this step changes."""
        kinds = ("ec2-userdata", "ssm") if why == "switch" else LOCATIONS
        return [
            f"the key id also appears in {loc['kind']} {loc['name']} ({loc['region']}): "
            + (
                "change that workload to its role too"
                if why == "switch"
                else "remove it there (deactivation breaks whatever still reads it)"
            )
            for loc in key["locations"]
            if loc["kind"] in kinds
        ]

    def _review(self, key_id: str, user: str, why: str) -> Action:
        return Action(
            kind="iam.review",
            target=key_id,
            summary=f"human review of {key_id} ({user}): {why}",
            gate="human-review",
            destructive=True,  # `--yes` must never wave this through
            risks=(why,),
            details={"user": user},
        )

    def _retire(self, key_id: str, user: str, retire: float, risks: list[str]) -> list[Action]:
        return [
            Action(
                kind="iam.deactivate_key",
                target=key_id,
                summary=f"deactivate access key {key_id} of {user}",
                gate="deactivate",
                destructive=True,
                estimate=Estimate(duration_s=1, api_requests=1),
                risks=tuple(risks),
                details={"user": user},
            ),
            Action(
                kind="iam.retire_window",
                target=key_id,
                summary=f"keep {key_id} inactive for {format_duration(retire)} before deletion",
                estimate=Estimate(duration_s=retire, api_requests=2),
                details={"user": user, "seconds": retire},
            ),
            Action(
                kind="iam.delete_key",
                target=key_id,
                summary=f"delete access key {key_id} of {user}",
                gate="delete",
                destructive=True,
                estimate=Estimate(duration_s=1, api_requests=1),
                details={"user": user},
            ),
        ]

    def _switch(
        self, ctx: StepContext, key_id: str, key: dict[str, Any], watch: float, retire: float
    ) -> list[Action]:
        kms = (
            self.params.kms_key
            if self.params.kms_key and ctx.is_known(self.params.kms_key)
            else None
        )
        # Each observed call carries the ARNs CloudTrail showed for it; generate_policy narrows
        # every action whose calls all showed some, and flags the rest as broad.
        policy = generate_policy(
            key["usage"]["actions"], kms, exact_objects=self.params.s3_object_scope == "exact"
        )
        self._grant_secrets(ctx, key, policy, kms)
        role = key.get("role_name") or _role_name(self.params.role_name, key["user"], key_id)
        if key["workloads"]:
            self._check_owner(key_id, key, role)
        if any(not fam["role"] for fam in _ecs_families(key["locations"])):
            self._check_owner(key_id, key, _task_role_name(role))
        notes = policy.notes() + policy.extra_notes
        if key["usage"].get("pass_role"):
            notes.append(
                "may be incomplete: "
                + ", ".join(key["usage"]["pass_role"])
                + " pass a role (iam:PassRole, which CloudTrail never logs as an event): it is "
                "not granted on '*'; add iam:PassRole on that role's ARN to the role yourself"
            )
        if self.params.kms_key and not kms:
            notes.append(f"kms:Decrypt on {self.params.kms_key} is added once the key exists")
        common = {"user": key["user"], "role_name": role}
        actions: list[Action] = []
        if key["workloads"]:
            actions += self._ec2_switch(key_id, key, policy, notes, common)
        else:
            notes.append(
                "no EC2 instance uses this key: only the Lambda/ECS workloads below are moved"
            )
        lambdas = [loc for loc in key["locations"] if loc["kind"] == "lambda"]
        if lambdas:
            actions.append(self._lambda_switch(key_id, lambdas, policy, notes, common, key))
        families = _ecs_families(key["locations"])
        if families:
            actions.append(self._ecs_switch(key_id, families, policy, notes, common, key))
        trusts = [
            t for t in (key["usage"].get("chain") or {}).get("targets_trust", []) if t["names_user"]
        ]
        if trusts:
            actions.append(
                Action(
                    kind="iam.trust_role",
                    target=key_id,
                    summary=f"add role {role} as a principal to the trust policy of "
                    + ", ".join(t["arn"] for t in trusts)
                    + f" (they trust {key['user']}, whose key goes)",
                    gate="trust",
                    destructive=True,  # widens who may assume those roles: never by --yes
                    estimate=Estimate(duration_s=2 * len(trusts), api_requests=2 * len(trusts)),
                    risks=(
                        "without it the workload cannot assume these roles once the key is "
                        "deactivated (the watch would pass: the key is quiet); rollback removes "
                        "the added principal",
                    ),
                    details={**common, "targets": [t["arn"] for t in trusts]},
                )
            )
        watch_risks = [
            "the watch fails (and the key stays active) if the key is used after the "
            "switch: remove it from the host first",
        ]
        if not key["workloads"]:
            watch_risks += self._location_notes(key, "switch")  # no switch_workloads to carry them
        if key["outside"]:
            watch_risks.append(
                f"the key was also used from {', '.join(key['outside'])}: if that is not the "
                "Lambda/ECS workload's own egress, the watch fails and the key stays active"
            )
        actions.append(
            Action(
                kind="iam.watch",
                target=key_id,
                summary=f"watch {key_id} for {format_duration(watch)}: it must show no use after "
                "the switch",
                estimate=Estimate(duration_s=watch, api_requests=2),
                risks=tuple(watch_risks),
                details={
                    **common,
                    "seconds": watch,
                    # IAM's last-used data lags (AWS: usually within 4 hours): a key used near
                    # the window's end must still be seen before it is deactivated.
                    "grace": _duration(self.params.last_used_grace) if watch > 0 else 0.0,
                    # The role that must show use if the workload really moved to it (only
                    # ours: a merged profile role is used by other software too).
                    "health_role": role
                    if any(not w["profile_arn"] for w in key["workloads"])
                    else None,
                    "checklist": list(HOST_CHECKLIST),
                },
            )
        )
        return actions + self._retire(key_id, key["user"], retire, [])

    def _ec2_switch(
        self,
        key_id: str,
        key: dict[str, Any],
        policy: GeneratedPolicy,
        notes: list[str],
        common: dict[str, Any],
    ) -> list[Action]:
        role = common["role_name"]
        instances = [w["instance_id"] for w in key["workloads"]]
        merged = [w for w in key["workloads"] if w["profile_arn"]]
        switch_risks = [
            "remove the key from the hosts (credential files and environment variables win over "
            "the instance profile): " + "; ".join(HOST_CHECKLIST[:2]),
        ]
        if merged and not mergeable(policy.document):
            switch_risks.append(
                "no usable evidence of what the key did: nothing is merged into the existing "
                "profile role(s) of "
                + ", ".join(f"{w['instance_id']} ({w['profile_arn']})" for w in merged)
                + "; give them what the workload needs before the watch ends"
            )
        elif merged:
            switch_risks.append(
                "instances with a profile already get the policy merged into that profile's role: "
                + ", ".join(f"{w['instance_id']} ({w['profile_arn']})" for w in merged)
            )
        for w in merged:
            if w.get("profile_shared_with"):
                switch_risks.append(
                    f"shared profile: {w['profile_arn']} of {w['instance_id']} is also used by "
                    + ", ".join(w["profile_shared_with"])
                    + ": the merged policy reaches those instances too"
                )
        switch_risks += self._location_notes(key, "switch")
        return [
            Action(
                kind="iam.create_role",
                target=key_id,
                summary=f"create role {role} + instance profile with {len(policy.actions)} "
                f"observed action(s) for the workload of {key_id} ({key['user']}); "
                + (
                    f"resources narrowed for {len(policy.narrowed)}"
                    if policy.narrowed
                    else "no resource evidence"
                ),
                estimate=Estimate(duration_s=5, api_requests=6),
                risks=tuple(notes),
                details={
                    **common,
                    "policy": policy.document,
                    "ssm_core": self.params.attach_ssm_core,
                },
            ),
            Action(
                kind="iam.switch_workloads",
                target=key_id,
                summary=f"give {', '.join(instances)} the role {role}",
                estimate=Estimate(duration_s=5 * len(instances), api_requests=3 * len(instances)),
                risks=tuple(switch_risks),
                details={**common, "policy": policy.document, "workloads": key["workloads"]},
            ),
        ]

    @staticmethod
    def _lambda_switch(
        key_id: str,
        lambdas: list[dict[str, Any]],
        policy: GeneratedPolicy,
        notes: list[str],
        common: dict[str, Any],
        key: dict[str, Any],
    ) -> Action:
        policy_name = _merged_policy_name(key_id)
        names = sorted({v for loc in lambdas for v in loc["variables"]})
        risks = [] if key["workloads"] else list(notes)
        risks += [
            "cut-over: the function must take its credentials from the default chain (its "
            "execution role) once " + ", ".join(names) + " are gone; code that reads them by name "
            "(on AWS Lambda reserves AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, so a function keeps "
            "a key under names of its own and passes it to the SDK) fails at its next cold start: "
            "change the code first",
            "rollback cannot restore the removed variables: the secret key is never read into or "
            f"stored by migrate. Rollback removes the merged policy {policy_name} and the operator "
            "puts the variables back",
        ]
        if not mergeable(policy.document):
            risks.append(
                "no usable evidence of what the key did: no policy is merged into the execution "
                "role(s); give them what the function needs before approving"
            )
        for loc in lambdas:
            if loc["versions"]:
                risks.append(
                    f"published version(s) {', '.join(loc['versions'])} of {loc['name']} keep "
                    "the key (versions are immutable): publish a new version and move the "
                    "aliases to it, then delete the old versions"
                )
            if loc["unsure"]:
                risks.append(
                    f"{loc['name']}: {', '.join(loc['unsure'])} look like secret keys, but another "
                    "key id is in the same environment: left in place, check them"
                )
        functions = [
            {"name": loc["name"], "region": loc["region"], "role": loc["role"]} for loc in lambdas
        ]
        roles = sorted({role_name_of(loc["role"] or "?") for loc in lambdas})
        return Action(
            kind="iam.switch_lambda",
            target=key_id,
            summary=f"merge policy {policy_name} into execution role(s) {', '.join(roles)} of "
            f"Lambda {', '.join(loc['name'] for loc in lambdas)} and remove "
            f"{', '.join(names)} from their environment",
            gate="cut-over",
            destructive=True,
            estimate=Estimate(duration_s=3 * len(lambdas), api_requests=3 * len(lambdas)),
            risks=tuple(risks),
            details={
                **common,
                "policy": policy.document,
                "policy_name": policy_name,
                "functions": functions,
            },
        )

    @staticmethod
    def _ecs_switch(
        key_id: str,
        families: list[dict[str, Any]],
        policy: GeneratedPolicy,
        notes: list[str],
        common: dict[str, Any],
        key: dict[str, Any],
    ) -> Action:
        task_role = _task_role_name(common["role_name"])
        risks = [] if key["workloads"] else list(notes)
        services = [s for fam in families for s in fam["services"]]
        risks.append(
            "services are NOT updated: after the cut-over, move each to the new revision "
            "(`aws ecs update-service --cluster CLUSTER --service SERVICE --task-definition "
            "FAMILY:NEW`; the run report names the new revisions)"
            + (f": {', '.join(services)}" if services else "")
            + "; scheduled tasks and scripts calling run-task name a revision too"
        )
        risks.append("the old revisions still hold the key: deregister them once nothing runs them")
        for fam in families:
            if fam["role"]:
                risks.append(
                    f"{fam['family']} already has the task role {fam['role']}: the policy is "
                    f"merged into it as {_merged_policy_name(key_id)}, not replaced"
                )
        changed = sorted({v for fam in families for vs in fam["variables"].values() for v in vs})
        return Action(
            kind="iam.switch_ecs_task",
            target=key_id,
            summary=f"register new revision(s) of {', '.join(f['family'] for f in families)} "
            f"with a task role ({task_role} unless one exists) and without "
            f"{', '.join(changed)}; update the services yourself",
            gate="cut-over",
            destructive=True,
            estimate=Estimate(duration_s=5 * len(families), api_requests=4 + 3 * len(families)),
            risks=tuple(risks),
            details={
                **common,
                "task_role": task_role,
                "policy": policy.document,
                "families": families,
            },
        )

    # -- act -------------------------------------------------------------------------------------
    @handles("iam.review")
    def _act_review(self, ctx: StepContext, action: Action) -> None:
        return None  # the approval is the review

    @handles("iam.create_role")
    def _act_create_role(self, ctx: StepContext, action: Action) -> None:
        iam = ctx.client("iam")
        role = action.details["role_name"]
        try:
            found = iam.get_role(RoleName=role)["Role"]
            arn = found["Arn"]
            # Ours if a crashed attempt created it (tagged with this key): record it this time.
            owner = tag_dict(found.get("Tags")).get(OWNER_TAG)
            if owner != action.target:
                # Created by someone else since the plan: never adopt or overwrite it.
                raise StepFailed(
                    f"role {role} appeared since the plan and is not migrate's for "
                    f"{action.target} ({OWNER_TAG}: {owner or 'untagged'}); nothing was changed. "
                    "Choose another `role_name` and plan again."
                )
            ours = True
        except Exception as exc:
            if error_code(exc) != "NoSuchEntity":
                raise
            ours = True
            arn = iam.create_role(
                RoleName=role,
                AssumeRolePolicyDocument=json.dumps(EC2_TRUST),
                Description=f"Replaces access key {action.target} (created by migrate)",
                Tags=[
                    {"Key": "migrate:access-key", "Value": action.target},
                    {"Key": "migrate:run", "Value": ctx.run_id or ""},
                ],
            )["Role"]["Arn"]
        if ours:
            ctx.record_resource("iam:role", role, details={"arn": arn})
        iam.put_role_policy(
            RoleName=role,
            PolicyName=POLICY_NAME,
            PolicyDocument=json.dumps(action.details["policy"]),
        )
        if action.details.get("ssm_core"):
            iam.attach_role_policy(RoleName=role, PolicyArn=SSM_CORE_ARN)
        try:
            profile = iam.get_instance_profile(InstanceProfileName=role)["InstanceProfile"]
        except Exception as exc:
            if error_code(exc) != "NoSuchEntity":
                raise
            profile = iam.create_instance_profile(InstanceProfileName=role)["InstanceProfile"]
        if ours:
            ctx.record_resource("iam:instance-profile", role, details={"arn": profile["Arn"]})
        if role not in [r["RoleName"] for r in profile.get("Roles", [])]:
            iam.add_role_to_instance_profile(InstanceProfileName=role, RoleName=role)
        ctx.record_result(role_arn=arn, instance_profile_arn=profile["Arn"])
        return None

    @staticmethod
    def _profile_wait(ctx: StepContext, role: str, exc: Exception) -> Wait:
        """IAM is eventually consistent: EC2 may not see a fresh instance profile for a few
        seconds. Wait with backoff (2, 4, 8, ... s), at most PROFILE_TRIES times, then fail."""
        saved = ctx.load_checkpoint("profile-visible")
        tries = int(saved["cursor"]["tries"]) if saved else 0
        if tries >= PROFILE_TRIES:
            raise StepFailed(
                f"EC2 still does not see the instance profile {role} after {tries} tries "
                f"({exc}); check it exists with its role, then `migrate resume`."
            ) from exc
        ctx.checkpoint({"tries": tries + 1}, done=0, name="profile-visible")
        return Wait(
            f"instance profile {role} is not visible to EC2 yet (IAM is eventually consistent)",
            poll_s=min(60.0, 2.0 ** (tries + 1)),
        )

    @handles("iam.switch_workloads")
    def _act_switch_workloads(self, ctx: StepContext, action: Action) -> Wait | None:
        iam = ctx.client("iam")
        role = action.details["role_name"]
        policy = json.dumps(action.details["policy"])
        own_profile = iam.get_instance_profile(InstanceProfileName=role)["InstanceProfile"]["Arn"]
        for workload in action.details["workloads"]:
            instance_id = workload["instance_id"]
            # The instance's own region: attribution searched every region.
            region = workload.get("region")
            ec2 = ctx.client("ec2", region)
            assoc = [
                a
                for a in ec2.describe_iam_instance_profile_associations(
                    Filters=[{"Name": "instance-id", "Values": [instance_id]}]
                ).get("IamInstanceProfileAssociations", [])
                if a.get("State") in ("associated", "associating")
            ]
            if not assoc:
                # Recorded before the call: a crash in between must still leave rollback
                # knowing the association may exist (rollback checks before it removes).
                ctx.record_resource(
                    "ec2:instance-profile-association",
                    instance_id,
                    change="created",
                    region=region,
                    details={"profile": role, "previous": None},
                )
                try:
                    ec2.associate_iam_instance_profile(
                        IamInstanceProfile={"Name": role}, InstanceId=instance_id
                    )
                except Exception as exc:
                    if not _profile_not_visible_yet(exc):
                        raise
                    return self._profile_wait(ctx, role, exc)
                continue
            current = assoc[0]["IamInstanceProfile"]["Arn"]
            if current == own_profile:
                continue  # done before a crash
            # The instance already has a profile: merge, never replace (other apps may use it).
            if not mergeable(action.details["policy"]):
                # The deny-all placeholder of a key without usable evidence would break every
                # other application on the host: never merged (the plan said so).
                continue
            profile_name = current.rsplit("/", 1)[-1]
            roles = iam.get_instance_profile(InstanceProfileName=profile_name)["InstanceProfile"][
                "Roles"
            ]
            for existing in roles:
                iam.put_role_policy(
                    RoleName=existing["RoleName"],
                    PolicyName=f"{POLICY_NAME}-{action.target[-6:].lower()}",
                    PolicyDocument=policy,
                )
                ctx.record_resource(
                    "iam:role-policy",
                    f"{existing['RoleName']}/{POLICY_NAME}-{action.target[-6:].lower()}",
                    change="created",
                    details={"instance": instance_id, "profile": profile_name},
                )
        saved = ctx.load_checkpoint("switch")
        if saved is None:
            ctx.checkpoint({"switched_at": utcnow().isoformat()}, done=1, name="switch")
        return None

    @handles("iam.trust_role")
    def _act_trust_role(self, ctx: StepContext, action: Action) -> None:
        iam = ctx.client("iam")
        new_arn = f"arn:aws:iam::{ctx.account_id}:role/{action.details['role_name']}"
        user_arn = f"arn:aws:iam::{ctx.account_id}:user/{action.details['user']}"
        for target in action.details["targets"]:
            name = target.rsplit("/", 1)[-1]
            doc = iam.get_role(RoleName=name)["Role"]["AssumeRolePolicyDocument"]
            doc = json.loads(unquote(doc)) if isinstance(doc, str) else doc
            if new_arn in _trusted_principals(doc):
                continue  # done before a crash
            changed = _with_principal(doc, user_arn, new_arn)
            # Intent first: rollback removes exactly the principal added here.
            ctx.record_resource(
                "iam:trust-policy",
                name,
                change="modified",
                details={"added": new_arn, "key": action.target},
            )
            iam.update_assume_role_policy(RoleName=name, PolicyDocument=json.dumps(changed))
        return None

    @handles("iam.switch_lambda")
    def _act_switch_lambda(self, ctx: StepContext, action: Action) -> Wait | None:
        return switch_lambda(
            ctx, action.target, action.details["functions"], action.details["policy"]
        )

    @handles("iam.switch_ecs_task")
    def _act_switch_ecs_task(self, ctx: StepContext, action: Action) -> None:
        policy = action.details["policy"]
        merged_name = _merged_policy_name(action.target)
        new_role_arn: str | None = None
        revisions: dict[str, str] = {}
        for fam in action.details["families"]:
            task_role: str | None = None
            if fam["role"]:
                # The family already has a task role: merge, never replace (other code in the
                # task may rely on it).
                existing = role_name_of(fam["role"])
                if mergeable(policy):
                    put_inline_policy(ctx.client("iam"), existing, merged_name, policy)
                    ctx.record_resource(
                        "iam:role-policy",
                        f"{existing}/{merged_name}",
                        details={"task_definition": fam["base"]},
                    )
            else:
                if new_role_arn is None:
                    new_role_arn = ensure_task_role(
                        ctx, action.details["task_role"], action.target, policy, POLICY_NAME
                    )
                task_role = new_role_arn
            revisions[fam["base"]] = register_without_key(ctx, action.target, fam, task_role)
        ctx.record_result(
            new_revisions=revisions,
            update_services=[
                f"aws ecs update-service --cluster {svc.split('/', 1)[0]} --service "
                f"{svc.split('/', 1)[1]} --task-definition {revisions[fam['base']].rsplit('/', 1)[-1]}"
                for fam in action.details["families"]
                for svc in fam["services"]
            ],
        )
        return None

    def _switched_at(self, ctx: StepContext) -> datetime:
        saved = ctx.load_checkpoint("watch")
        if saved is None:
            now = utcnow()
            ctx.checkpoint({"start": now.isoformat()}, done=0, name="watch")
            return now
        return datetime.fromisoformat(saved["cursor"]["start"])

    @handles("iam.watch")
    def _act_watch(self, ctx: StepContext, action: Action) -> Wait | None:
        iam = ctx.client("iam")
        start = self._switched_at(ctx)
        last = iam.get_access_key_last_used(AccessKeyId=action.target).get("AccessKeyLastUsed", {})
        used = last.get("LastUsedDate")
        if isinstance(used, datetime) and used.replace(tzinfo=None) > start:
            # The window starts again once the operator has removed the key from the host.
            ctx.checkpoint({"start": utcnow().isoformat()}, done=0, name="watch")
            raise StepFailed(
                f"access key {action.target} ({action.details['user']}) was used at "
                f"{used:%Y-%m-%d %H:%M:%S} UTC (service {last.get('ServiceName')}, region "
                f"{last.get('Region')}) after the switch at {start:%Y-%m-%d %H:%M:%S} UTC. The key "
                "stays active. Remove it from the host (check: "
                + "; ".join(HOST_CHECKLIST[:3])
                + "), then `migrate resume`: the watch window starts again."
            )
        seconds = float(action.details["seconds"]) + float(action.details.get("grace", 0.0))
        deadline = start + timedelta(seconds=seconds)
        now = utcnow()
        if now >= deadline:
            role_used = self._role_health(ctx, action, start)
            ctx.record_result(
                watched_from=start.isoformat(), watched_until=now.isoformat(), role_used=role_used
            )
            return None
        remaining = (deadline - now).total_seconds()
        return Wait(
            f"watching {action.target} for use",
            until=deadline,
            poll_s=min(3600.0, max(remaining, 1.0)),
        )

    @staticmethod
    def _role_health(ctx: StepContext, action: Action, start: datetime) -> str | None:
        """A quiet key is not proof the workload works: after a real window the new role must
        have been used since the switch (IAM ``RoleLastUsed``), or the host may simply be down
        or failing. Returns when the role was last used."""
        role = action.details.get("health_role")
        if not role or float(action.details["seconds"]) <= 0:
            return None
        found = ctx.client("iam").get_role(RoleName=role)["Role"]
        used = (found.get("RoleLastUsed") or {}).get("LastUsedDate")
        if not isinstance(used, datetime) or used.replace(tzinfo=None) < start:
            raise StepFailed(
                f"access key {action.target} stayed quiet, but the role {role} shows no use since "
                f"the switch at {start:%Y-%m-%d %H:%M:%S} UTC: the workload may be down or "
                "failing rather than working on the role. Check the application on the host "
                "(and CloudTrail for AccessDenied errors of the role), then `migrate resume`. "
                "The key stays active."
            )
        return used.replace(tzinfo=None).isoformat(timespec="seconds")

    @handles("iam.deactivate_key")
    def _act_deactivate_key(self, ctx: StepContext, action: Action) -> None:
        iam = ctx.client("iam")
        user = action.details["user"]
        try:
            iam.update_access_key(UserName=user, AccessKeyId=action.target, Status="Inactive")
        except Exception as exc:
            if error_code(exc) != "NoSuchEntity":
                raise
            return None  # already deleted by someone: nothing left to deactivate
        ctx.record_resource(
            "iam:access-key",
            action.target,
            change="modified",
            details={"user": user, "previous": "Active"},
        )
        ctx.record_result(deactivated_at=utcnow().isoformat())
        return None

    @handles("iam.retire_window")
    def _act_retire_window(self, ctx: StepContext, action: Action) -> Wait | None:
        saved = ctx.load_checkpoint("retire")
        if saved is None:
            start = utcnow()
            ctx.checkpoint({"start": start.isoformat()}, done=0, name="retire")
        else:
            start = datetime.fromisoformat(saved["cursor"]["start"])
        deadline = start + timedelta(seconds=float(action.details["seconds"]))
        if utcnow() >= deadline:
            return None
        return Wait(
            f"{action.target} stays inactive before deletion",
            until=deadline,
            poll_s=min(3600.0, (deadline - utcnow()).total_seconds()),
        )

    @handles("iam.delete_key")
    def _act_delete_key(self, ctx: StepContext, action: Action) -> None:
        iam = ctx.client("iam")
        try:
            iam.delete_access_key(UserName=action.details["user"], AccessKeyId=action.target)
        except Exception as exc:
            if error_code(exc) != "NoSuchEntity":
                raise
        ctx.record_resource(
            "iam:access-key",
            action.target,
            change="deleted",
            details={"user": action.details["user"]},
        )
        return None

    # -- verify / outputs / rollback ---------------------------------------------------------
    def verify(self, ctx: StepContext) -> None:
        """Every role this step created exists with its policy and profile."""
        iam = ctx.client("iam")
        for res in ctx.resources("iam:role"):
            names = iam.list_role_policies(RoleName=res.identifier).get("PolicyNames", [])
            if POLICY_NAME not in names:
                raise StepFailed(f"role {res.identifier} lost its policy {POLICY_NAME}; resume")

    def published(self, ctx: StepContext) -> dict[str, Any]:
        """Role ARNs by key, the keys retired, and the instances given a profile."""
        roles = {r.identifier: (r.details or {}).get("arn") for r in ctx.resources("iam:role")}
        retired = sorted(
            r.identifier for r in ctx.resources("iam:access-key") if r.change == "deleted"
        )
        given = {
            r.identifier: {
                "role": (r.details or {}).get("profile"),
                "ssm_core": self.params.attach_ssm_core,
            }
            for r in ctx.resources("ec2:instance-profile-association")
            if r.change == "created"
        }
        return {"role_arns": roles, "retired_keys": retired, "instance_roles": given}

    def planned_outputs(self, ctx: StepContext, facts: Facts) -> dict[str, Any]:
        """``instance_roles``: the instances without a profile this step gives its role (and
        profile of the same name), so a later step (Session Manager) plans for that role
        instead of one of its own."""
        given: dict[str, dict[str, Any]] = {}
        for action in self.decide(ctx, facts):
            if action.kind != "iam.switch_workloads":
                continue
            for workload in action.details.get("workloads", []):
                if not workload.get("profile_arn"):
                    given[workload["instance_id"]] = {
                        "role": action.details["role_name"],
                        "ssm_core": self.params.attach_ssm_core,
                    }
        return {"instance_roles": given}

    def rollback(self, ctx: StepContext) -> None:
        """Reactivate keys (unless deleted), restore instance profiles, remove merged policies;
        roles, profiles and new task definition revisions are kept for inspection. Variables
        removed from Lambda environments are not restored (the secret was never stored): the
        rollback says which, for the operator."""
        iam = ctx.client("iam")
        deleted = {r.identifier for r in ctx.resources("iam:access-key") if r.change == "deleted"}
        for res in ctx.resources("iam:access-key"):
            if res.change == "modified" and res.identifier not in deleted:
                iam.update_access_key(
                    UserName=res.details["user"], AccessKeyId=res.identifier, Status="Active"
                )
        for res in ctx.resources("ec2:instance-profile-association"):
            ec2 = ctx.client("ec2", res.region)
            for assoc in ec2.describe_iam_instance_profile_associations(
                Filters=[{"Name": "instance-id", "Values": [res.identifier]}]
            ).get("IamInstanceProfileAssociations", []):
                if assoc["IamInstanceProfile"]["Arn"].endswith("/" + res.details["profile"]):
                    ec2.disassociate_iam_instance_profile(AssociationId=assoc["AssociationId"])
        for res in ctx.resources("iam:trust-policy"):
            try:
                doc = iam.get_role(RoleName=res.identifier)["Role"]["AssumeRolePolicyDocument"]
            except Exception as exc:
                if not not_found(exc):
                    raise
                continue
            doc = json.loads(unquote(doc)) if isinstance(doc, str) else doc
            iam.update_assume_role_policy(
                RoleName=res.identifier,
                PolicyDocument=json.dumps(_without_principal(doc, res.details["added"])),
            )
        for res in ctx.resources("iam:role-policy"):
            role, policy = res.identifier.split("/", 1)
            try:
                iam.delete_role_policy(RoleName=role, PolicyName=policy)
            except Exception as exc:
                if error_code(exc) != "NoSuchEntity":
                    raise
        log_notes(lambda_rollback_notes(ctx) + ecs_notes(ctx))
