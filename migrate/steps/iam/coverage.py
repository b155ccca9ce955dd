"""What the account's trails log, and which data-event services a key may use.

Trails log no data events by default: a key that reads S3 objects, invokes Lambda functions or
touches DynamoDB items, SQS messages or SNS topics leaves no trace of those calls unless a trail's
event selectors ask for them, and a role built from such evidence lacks them (the host then fails
quietly once the key is gone, and the watch passes). Used by ``iam.keys_to_roles``: read-only.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

from migrate.aws.errors import access_denied, not_found

# IAM service prefix -> the CloudTrail data-event resource type of its data-plane calls.
DATA_EVENT_TYPES: dict[str, str] = {
    "s3": "AWS::S3::Object",
    "lambda": "AWS::Lambda::Function",
    "dynamodb": "AWS::DynamoDB::Table",
    "sqs": "AWS::SQS::Queue",
    "sns": "AWS::SNS::Topic",
}


def _field(selector: dict[str, Any], name: str) -> list[str]:
    for field in selector.get("FieldSelectors", []):
        if field.get("Field") == name:
            return list(field.get("Equals") or [])
    return []


def trail_coverage(cloudtrail_for_region: Callable[[str | None], Any]) -> dict[str, Any]:
    """Every trail visible to the account (organisation trails included) with what it logs:
    ``{"trails": [...], "data_types": [...], "management": "All"|"ReadOnly"|"WriteOnly"|None,
    "multi_region": bool}``."""
    listed = cloudtrail_for_region(None).describe_trails(includeShadowTrails=True)
    trails: list[dict[str, Any]] = []
    for trail in listed.get("trailList", []):
        home = trail.get("HomeRegion")
        try:
            got = cloudtrail_for_region(home).get_event_selectors(TrailName=trail["TrailARN"])
        except Exception as exc:
            if not (not_found(exc) or access_denied(exc)):
                raise
            got = {}
        management: set[str] = set()
        data: set[str] = set()
        for sel in got.get("EventSelectors") or []:
            if sel.get("IncludeManagementEvents", True):
                management.add(sel.get("ReadWriteType", "All"))
            data.update(r.get("Type", "") for r in sel.get("DataResources") or [])
        for sel in got.get("AdvancedEventSelectors") or []:
            category = _field(sel, "eventCategory")
            read_only = _field(sel, "readOnly")
            kind = "All" if not read_only else ("ReadOnly" if "true" in read_only else "WriteOnly")
            if "Management" in category:
                management.add(kind)
            if "Data" in category:
                data.update(_field(sel, "resources.type"))
        if not got:
            management.add("All")  # no selectors readable: CloudTrail's default
        trails.append(
            {
                "name": trail.get("Name"),
                "home_region": home,
                "multi_region": bool(trail.get("IsMultiRegionTrail")),
                "organization": bool(trail.get("IsOrganizationTrail")),
                "management": "All"
                if "All" in management or {"ReadOnly", "WriteOnly"} <= management
                else (sorted(management)[0] if management else None),
                "data_types": sorted(t for t in data if t),
            }
        )
    managements = {t["management"] for t in trails}
    return {
        "trails": trails,
        "data_types": sorted({d for t in trails for d in t["data_types"]}),
        "management": "All"
        if "All" in managements or {"ReadOnly", "WriteOnly"} <= managements
        else (sorted(m for m in managements if m)[0] if any(managements) else None),
        "multi_region": any(t["multi_region"] for t in trails),
    }


def _prefixes(document: Any) -> set[str]:
    """Service prefixes an Allow statement of a policy document reaches (``*`` for all)."""
    if isinstance(document, str):
        document = json.loads(unquote(document))
    statements = document.get("Statement", []) if isinstance(document, dict) else []
    if isinstance(statements, dict):
        statements = [statements]
    out: set[str] = set()
    for statement in statements:
        if statement.get("Effect") != "Allow":
            continue
        actions = statement.get("Action", [])
        for action in [actions] if isinstance(actions, str) else actions:
            out.add("*" if action == "*" else action.split(":", 1)[0].lower())
    return out


def user_services(iam: Any, user: str) -> list[str]:
    """Service prefixes the user's own and its groups' policies allow (inline and attached)."""
    found: set[str] = set()

    def attached(policies: list[dict[str, Any]]) -> None:
        for policy in policies:
            meta = iam.get_policy(PolicyArn=policy["PolicyArn"])["Policy"]
            version = iam.get_policy_version(
                PolicyArn=policy["PolicyArn"], VersionId=meta["DefaultVersionId"]
            )
            found.update(_prefixes(version["PolicyVersion"]["Document"]))

    for name in iam.list_user_policies(UserName=user).get("PolicyNames", []):
        found.update(
            _prefixes(iam.get_user_policy(UserName=user, PolicyName=name)["PolicyDocument"])
        )
    attached(iam.list_attached_user_policies(UserName=user).get("AttachedPolicies", []))
    for group in iam.list_groups_for_user(UserName=user).get("Groups", []):
        gname = group["GroupName"]
        for name in iam.list_group_policies(GroupName=gname).get("PolicyNames", []):
            found.update(
                _prefixes(iam.get_group_policy(GroupName=gname, PolicyName=name)["PolicyDocument"])
            )
        attached(iam.list_attached_group_policies(GroupName=gname).get("AttachedPolicies", []))
    return sorted(found)


def unlogged_services(
    coverage: dict[str, Any] | None, services: list[str], accepted: list[str]
) -> list[str]:
    """The data-event services among ``services`` (``*`` is every one) that no trail logs and
    the operator did not accept."""
    if coverage is None:
        return []
    wanted = set(DATA_EVENT_TYPES) if "*" in services else set(services) & set(DATA_EVENT_TYPES)
    logged = set(coverage.get("data_types") or [])
    return sorted(s for s in wanted if DATA_EVENT_TYPES[s] not in logged and s not in accepted)
