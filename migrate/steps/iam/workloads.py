"""Lambda functions and ECS task definitions that hold an access key: find them, move them to roles.

Used by ``iam.keys_to_roles``. Only variable *names* ever leave this module (facts, details,
resources, errors): the values are read from AWS right before an update and written straight back
without the key's variables, never stored.

Which variables go (:func:`key_variables`): every variable whose value contains the key id, the
SDK's standard names (``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``,
``AWS_ACCESS_KEY``, ``AWS_SECRET_KEY``), and a variable named ``*SECRET*`` whose value has the shape
of a secret access key (40 characters of base64) - but only when no *other* key id sits in the same
environment (then we cannot tell which secret belongs to which key, and the plan names the
candidates for a human instead). On AWS, Lambda reserves the standard names, so a function keeps a
key under names of its own (``APP_KEY_ID``/``APP_SECRET``) and passes it explicitly to the SDK: its
code must switch to the default credential chain before the cut-over.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from typing import Any

from migrate.aws.errors import error_code
from migrate.engine.base import Wait
from migrate.engine.context import StepContext
from migrate.errors import StepFailed

log = logging.getLogger("migrate.steps.iam.workloads")

STANDARD_NAMES = frozenset(
    {
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_ACCESS_KEY",
        "AWS_SECRET_KEY",
    }
)
KEY_ID_RE = re.compile(r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b")
SECRET_SHAPE = re.compile(r"^[A-Za-z0-9/+]{40}$")
ECS_TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"Service": "ecs-tasks.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
    ],
}
# Fields describe_task_definition returns that register_task_definition does not take.
ECS_READ_ONLY = (
    "taskDefinitionArn",
    "revision",
    "status",
    "requiresAttributes",
    "compatibilities",
    "registeredAt",
    "registeredBy",
    "deregisteredAt",
)
REPLACES_TAG = "migrate:replaces"


def key_variables(env: Mapping[str, str], key_id: str) -> tuple[list[str], list[str]]:
    """Names of the variables that carry ``key_id`` (to remove) and of secret-looking variables
    we cannot pin to this key (left in place, for a human).

    Pure and deterministic: observe uses it for the plan, act again on the current configuration.
    """
    holds_id = {n for n, v in env.items() if key_id in (v or "")}
    if not holds_id:
        return [], []
    remove = holds_id | {n for n in env if n.upper() in STANDARD_NAMES}
    other_ids = {
        n
        for n, v in env.items()
        if n not in remove and any(m != key_id for m in KEY_ID_RE.findall(v or ""))
    }
    secrets = {
        n
        for n, v in env.items()
        if n not in remove and "SECRET" in n.upper() and SECRET_SHAPE.match(v or "")
    }
    if other_ids:
        return sorted(remove), sorted(secrets)
    return sorted(remove | secrets), []


def role_name_of(arn: str) -> str:
    """The role name of a role ARN (``arn:aws:iam::1:role/path/name`` -> ``name``)."""
    return arn.rsplit("/", 1)[-1]


def mergeable(policy: Mapping[str, Any]) -> bool:
    """False for the deny-all placeholder of a key with no usable evidence: merged into a role
    that other code relies on, it would break that code."""
    return not any(s.get("Effect") == "Deny" for s in policy.get("Statement", []))


def put_inline_policy(iam: Any, role: str, name: str, policy: Mapping[str, Any]) -> None:
    try:
        iam.put_role_policy(RoleName=role, PolicyName=name, PolicyDocument=json.dumps(policy))
    except Exception as exc:
        if error_code(exc) != "LimitExceeded":
            raise
        raise StepFailed(
            f"role {role} has no room for the inline policy {name}: IAM allows 10,240 characters "
            "of inline policies per role, together. Move some of its inline policies into "
            "managed policies (or attach a managed copy of the generated policy yourself), then "
            "`migrate resume`."
        ) from exc


# -- observe -------------------------------------------------------------------------------------
def find_lambda(ctx: StepContext, region: str, ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    """Lambda functions whose environment holds one of ``ids``: ``{key_id: [location]}``."""
    lam = ctx.client("lambda", region)
    found: dict[str, list[dict[str, Any]]] = {}
    for page in lam.get_paginator("list_functions").paginate():
        for fn in page.get("Functions", []):
            env = (fn.get("Environment") or {}).get("Variables") or {}
            for key_id in ids:
                remove, unsure = key_variables(env, key_id)
                if not remove:
                    continue
                # Published versions are immutable: they keep the key until a new version is
                # published and the aliases move to it.
                versions = [
                    v["Version"]
                    for vp in lam.get_paginator("list_versions_by_function").paginate(
                        FunctionName=fn["FunctionName"]
                    )
                    for v in vp.get("Versions", [])
                    if v.get("Version") != "$LATEST"
                    and key_id in json.dumps((v.get("Environment") or {}).get("Variables") or {})
                ]
                found.setdefault(key_id, []).append(
                    {
                        "kind": "lambda",
                        "name": fn["FunctionName"],
                        "region": region,
                        "role": fn.get("Role"),
                        "variables": remove,
                        "unsure": unsure,
                        "versions": versions,
                    }
                )
    return found


def _container_env(container: Mapping[str, Any]) -> dict[str, str]:
    return {e["name"]: e.get("value", "") for e in container.get("environment") or []}


def find_ecs(ctx: StepContext, region: str, ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    """ACTIVE task definitions with one of ``ids`` in a container environment, with the services
    that run them: ``{key_id: [location]}``."""
    ecs = ctx.client("ecs", region)
    found: dict[str, list[dict[str, Any]]] = {}
    for page in ecs.get_paginator("list_task_definitions").paginate(status="ACTIVE"):
        for arn in page.get("taskDefinitionArns", []):
            td = ecs.describe_task_definition(taskDefinition=arn)["taskDefinition"]
            for key_id in ids:
                per_container = {
                    c["name"]: key_variables(_container_env(c), key_id)
                    for c in td.get("containerDefinitions", [])
                }
                remove = {n: r for n, (r, _) in per_container.items() if r}
                if not remove:
                    continue
                found.setdefault(key_id, []).append(
                    {
                        "kind": "ecs",
                        "name": arn,
                        "region": region,
                        "family": td["family"],
                        "revision": td["revision"],
                        "role": td.get("taskRoleArn"),
                        "variables": remove,
                        "unsure": {n: u for n, (_, u) in per_container.items() if u},
                        "services": [],
                    }
                )
    if found:
        users = _services_by_task_definition(ecs)
        for locations in found.values():
            for loc in locations:
                loc["services"] = users.get(loc["name"], [])
    return found


def _services_by_task_definition(ecs: Any) -> dict[str, list[str]]:
    """``{task definition ARN: ["cluster/service", ...]}`` over every cluster (read-only)."""
    users: dict[str, list[str]] = {}
    for page in ecs.get_paginator("list_clusters").paginate():
        for cluster in page.get("clusterArns", []):
            arns = [
                a
                for sp in ecs.get_paginator("list_services").paginate(cluster=cluster)
                for a in sp.get("serviceArns", [])
            ]
            for i in range(0, len(arns), 10):
                got = ecs.describe_services(cluster=cluster, services=arns[i : i + 10])
                for svc in got.get("services", []):
                    users.setdefault(svc.get("taskDefinition", ""), []).append(
                        f"{cluster.rsplit('/', 1)[-1]}/{svc['serviceName']}"
                    )
    return {k: sorted(v) for k, v in users.items()}


# -- act: Lambda ---------------------------------------------------------------------------------
def switch_lambda(
    ctx: StepContext, key_id: str, functions: list[dict[str, Any]], policy: dict[str, Any]
) -> Wait | None:
    """Merge ``policy`` into each function's execution role, then drop the key's variables from
    its environment (every other variable kept exactly). Looks before it acts."""
    policy_name = f"migrate-observed-usage-{key_id[-6:].lower()}"
    for fn in functions:
        lam = ctx.client("lambda", fn["region"])
        iam = ctx.client("iam")
        name = fn["name"]
        config = lam.get_function_configuration(FunctionName=name)
        if config.get("LastUpdateStatus") == "InProgress" or config.get("State") == "Pending":
            # AWS refuses a second update while one runs (ResourceConflictException).
            return Wait(f"function {name} is being updated", poll_s=5.0)
        role = role_name_of(config["Role"])
        if mergeable(policy):
            put_inline_policy(iam, role, policy_name, policy)
            ctx.record_resource(
                "iam:role-policy",
                f"{role}/{policy_name}",
                change="created",
                details={"function": name, "region": fn["region"]},
            )
        env = dict((config.get("Environment") or {}).get("Variables") or {})
        remove, _ = key_variables(env, key_id)
        if not remove:
            continue  # done before a crash, or removed by someone else
        kept = {k: v for k, v in env.items() if k not in remove}
        kwargs: dict[str, Any] = {"FunctionName": name, "Environment": {"Variables": kept}}
        if config.get("RevisionId"):
            # Fail rather than overwrite a change made since we read the configuration.
            kwargs["RevisionId"] = config["RevisionId"]
        try:
            lam.update_function_configuration(**kwargs)
        except Exception as exc:
            if error_code(exc) not in ("PreconditionFailedException", "ResourceConflictException"):
                raise
            return Wait(f"function {name} changed while we updated it; trying again", poll_s=5.0)
        ctx.record_resource(
            "lambda:environment",
            name,
            change="modified",
            region=fn["region"],
            details={"removed": remove, "role": role, "policy": policy_name, "key": key_id},
        )
    return None


def lambda_rollback_notes(ctx: StepContext) -> list[str]:
    """What the operator must restore by hand: the secret was never stored, so it cannot be put
    back."""
    notes = []
    for res in ctx.resources("lambda:environment"):
        names = ", ".join((res.details or {}).get("removed", []))
        notes.append(
            f"Lambda function {res.identifier} ({res.region}): the variables {names} were "
            "removed and are NOT restored (the secret key was never stored). Put them back "
            "yourself (`aws lambda update-function-configuration --environment ...` with every "
            "current variable plus these) or keep the function on its execution role."
        )
    return notes


# -- act: ECS ------------------------------------------------------------------------------------
def ensure_task_role(
    ctx: StepContext, role: str, key_id: str, policy: dict[str, Any], policy_name: str
) -> str:
    """The task role for ``key_id`` (look before create) with its inline policy; its ARN."""
    iam = ctx.client("iam")
    try:
        found = iam.get_role(RoleName=role)["Role"]
        arn = str(found["Arn"])
        owner = {t["Key"]: t.get("Value") for t in found.get("Tags") or []}.get(
            "migrate:access-key"
        )
        if owner != key_id:
            # Never adopt a task role migrate did not create for this key (the plan checked;
            # this catches one created since).
            raise StepFailed(
                f"task role {role} exists and is not migrate's for {key_id} "
                f"(migrate:access-key: {owner or 'untagged'}); nothing was changed. Choose "
                "another `role_name` and plan again."
            )
    except StepFailed:
        raise
    except Exception as exc:
        if error_code(exc) != "NoSuchEntity":
            raise
        arn = str(
            iam.create_role(
                RoleName=role,
                AssumeRolePolicyDocument=json.dumps(ECS_TRUST),
                Description=f"ECS task role replacing access key {key_id} (created by migrate)",
                Tags=[
                    {"Key": "migrate:access-key", "Value": key_id},
                    {"Key": "migrate:run", "Value": ctx.run_id or ""},
                ],
            )["Role"]["Arn"]
        )
        ctx.record_resource("iam:role", role, details={"arn": arn, "trust": "ecs-tasks"})
    put_inline_policy(iam, role, policy_name, policy)
    return arn


def _registered_replacement(ecs: Any, family: str, base_arn: str, base_rev: int) -> str | None:
    """A revision of ``family`` newer than the base and tagged as its replacement (a crash
    between register and record), or None."""
    for page in ecs.get_paginator("list_task_definitions").paginate(
        familyPrefix=family, sort="DESC"
    ):
        for arn in page.get("taskDefinitionArns", []):
            fam, _, rev = arn.rsplit("/", 1)[-1].rpartition(":")
            if fam != family or int(rev) <= base_rev:
                continue
            tags = ecs.describe_task_definition(taskDefinition=arn, include=["TAGS"]).get("tags")
            if any(t.get("key") == REPLACES_TAG and t.get("value") == base_arn for t in tags or []):
                return str(arn)
    return None


def register_without_key(
    ctx: StepContext, key_id: str, family: dict[str, Any], task_role_arn: str | None
) -> str:
    """Register a new revision of ``family['base']`` without the key's variables, with
    ``task_role_arn`` (None: keep the revision's own task role). Returns its ARN; registers at
    most once per base revision (tagged ``migrate:replaces``)."""
    ecs = ctx.client("ecs", family["region"])
    base_arn = family["base"]
    got = ecs.describe_task_definition(taskDefinition=base_arn, include=["TAGS"])
    td = got["taskDefinition"]
    existing = _registered_replacement(ecs, td["family"], base_arn, int(td["revision"]))
    if existing:
        return existing
    accepted = ecs.meta.service_model.operation_model("RegisterTaskDefinition").input_shape.members
    request = {k: v for k, v in td.items() if k in accepted and k not in ECS_READ_ONLY}
    removed: dict[str, list[str]] = {}
    containers = []
    for container in td.get("containerDefinitions", []):
        remove, _ = key_variables(_container_env(container), key_id)
        if remove:
            removed[container["name"]] = remove
            container = {
                **container,
                "environment": [e for e in container["environment"] if e["name"] not in remove],
            }
        containers.append(container)
    request["containerDefinitions"] = containers
    if task_role_arn:
        request["taskRoleArn"] = task_role_arn
    # aws: tags are AWS's own and cannot be set; the rest travel with the definition.
    tags = [t for t in got.get("tags") or [] if not t["key"].startswith("aws:")]
    tags = [t for t in tags if t["key"] not in (REPLACES_TAG, "migrate:access-key")]
    request["tags"] = [
        *tags[:48],
        {"key": REPLACES_TAG, "value": base_arn},
        {"key": "migrate:access-key", "value": key_id},
    ]
    new = ecs.register_task_definition(**request)["taskDefinition"]
    arn = str(new["taskDefinitionArn"])
    ctx.record_resource(
        "ecs:task-definition",
        arn,
        change="created",
        region=family["region"],
        details={
            "replaces": base_arn,
            "family": td["family"],
            "removed": removed,
            "services": family.get("services", []),
            "key": key_id,
        },
    )
    return arn


def ecs_notes(ctx: StepContext) -> list[str]:
    """What rollback leaves to the operator for ECS: services point where the operator put them."""
    notes = []
    for res in ctx.resources("ecs:task-definition"):
        details = res.details or {}
        notes.append(
            f"ECS: revision {res.identifier} (without the key) is kept; services you moved to it "
            f"go back with `aws ecs update-service --task-definition {details.get('replaces')}`"
        )
    return notes


def log_notes(notes: list[str]) -> None:
    """Tell the operator what rollback could not do (the CLI shows warnings)."""
    for note in notes:
        log.warning("%s", note)
