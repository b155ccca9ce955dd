"""Registry-wide checks: every step type is documented, has a schema, a valid example and real
IAM permissions (checked against parliament's list of IAM actions)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from parliament import analyze_policy_string, iam_definition

from migrate import commands
from migrate.aws.iam_scope import policy_size
from migrate.engine.playbook import load_playbook
from migrate.engine.registry import registered_steps
from tests.conftest import PLAYBOOKS

STEP_TYPES = registered_steps()
# IAM actions newer than parliament's list (checked by hand against AWS's service reference).
NEWER_THAN_PARLIAMENT = {"s3:updateobjectencryption"}
REAL_ACTIONS = {
    f"{svc['prefix']}:{priv['privilege']}".lower()
    for svc in iam_definition
    for priv in svc["privileges"]
} | NEWER_THAN_PARLIAMENT


def test_the_two_foundation_steps_are_registered() -> None:
    assert {"kms.ensure_key", "s3.default_encryption", "core.wait"} <= set(STEP_TYPES)


@pytest.mark.parametrize("name", list(STEP_TYPES))
def test_step_type_has_help_schema_and_outputs(name: str) -> None:
    cls = STEP_TYPES[name]
    assert cls.__doc__ and len(cls.__doc__.strip().splitlines()[0]) > 20
    schema = cls.Params.model_json_schema()
    assert schema["type"] == "object"
    assert schema.get("additionalProperties") is False  # unknown keys are errors


@pytest.mark.parametrize("name", list(STEP_TYPES))
def test_step_example_validates_as_a_playbook(name: str, tmp_path: Path) -> None:
    cls = STEP_TYPES[name]
    assert cls.example.strip(), f"{name} has no example"
    prelude = ""
    if "steps.kms" in cls.example:
        prelude = "  - id: kms\n    uses: kms.ensure_key\n"
    example = "\n".join("  " + line for line in cls.example.splitlines())
    book = tmp_path / "example.yaml"
    book.write_text(f"name: example\nsteps:\n{prelude}{example}\n")
    playbook = load_playbook(str(book))
    assert playbook.steps[-1].uses == name


@pytest.mark.parametrize("name", [n for n in STEP_TYPES if STEP_TYPES[n].permissions])
def test_declared_permissions_are_real_iam_actions(name: str) -> None:
    perms = STEP_TYPES[name].permissions
    unknown = [p for p in perms if p.lower() not in REAL_ACTIONS]
    assert not unknown, f"{name} declares permissions that are not IAM actions: {unknown}"
    policy = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": list(perms), "Resource": "*"}],
    }
    findings = analyze_policy_string(json.dumps(policy)).findings
    assert not [
        f
        for f in findings
        if f.issue == "UNKNOWN_ACTION"
        and not any(new in str(f.detail).lower() for new in NEWER_THAN_PARLIAMENT)
    ]


def test_the_iam_action_list_catches_a_classic_mistake() -> None:
    # The API is ListBuckets, the IAM action is s3:ListAllMyBuckets.
    assert "s3:listbuckets" not in REAL_ACTIONS
    assert "s3:listallmybuckets" in REAL_ACTIONS


@pytest.mark.parametrize("name", list(STEP_TYPES))
def test_every_action_kind_has_exactly_one_handler(name: str) -> None:
    """Action kinds are dispatched one way: each declared kind resolves to a @handles method,
    and no handler serves a kind the step does not declare."""
    cls = STEP_TYPES[name]
    assert cls.action_kinds, f"{name} declares no action_kinds"
    assert len(set(cls.action_kinds)) == len(cls.action_kinds), f"{name}: duplicate kinds"
    missing = [k for k in cls.action_kinds if k not in cls.handlers]
    assert not missing, f"{name}: no @handles method for {missing}"
    extra = sorted(set(cls.handlers) - set(cls.action_kinds))
    assert not extra, f"{name}: handlers for undeclared kinds {extra}"
    for kind, method in cls.handlers.items():
        assert callable(getattr(cls, method)), (name, kind, method)


@pytest.mark.parametrize("book", sorted(p.name for p in PLAYBOOKS.glob("*.yaml")))
def test_the_migrator_may_pass_roles_only_to_the_services_its_steps_hand_them_to(
    book: str,
) -> None:
    """`migrate permissions`: iam:PassRole on "*" without iam:PassedToService would let the
    migrator hand any role (an admin one) to any service; parliament says so, and says nothing
    about the document migrate prints."""
    policy = commands.permissions(str(PLAYBOOKS / book))
    passing = [s for s in policy["Statement"] if "iam:PassRole" in _as_list(s["Action"])]
    for statement in passing:
        assert _as_list(statement["Action"]) == ["iam:PassRole"], statement
        services = statement["Condition"]["StringEquals"]["iam:PassedToService"]
        assert services and all(s.endswith(".amazonaws.com") for s in services), statement
        assert statement["Resource"] == "arn:aws:iam::*:role/*", statement
    findings = analyze_policy_string(json.dumps(policy)).findings
    assert not [f for f in findings if "PassRole" in str(f.detail)], findings
    unscoped = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "iam:PassRole", "Resource": "*"}],
    }
    assert any(  # the check above can fail: parliament flags the unscoped form
        "PassRole" in str(f.detail) or f.issue == "RESOURCE_STAR"
        for f in analyze_policy_string(json.dumps(unscoped)).findings
    )


def _as_list(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


@pytest.mark.parametrize(
    "name", [n for n in STEP_TYPES if "iam:PassRole" in STEP_TYPES[n].permissions]
)
def test_a_step_that_passes_roles_names_the_services(name: str) -> None:
    """iam:PassedToService with no value matches nothing: the migrator could pass no role."""
    services = STEP_TYPES[name].passes_roles_to
    assert services and all(s.endswith(".amazonaws.com") for s in services), name


def _statements_with(policy: dict[str, Any], action: str) -> list[dict[str, Any]]:
    return [s for s in policy["Statement"] if action in _as_list(s["Action"])]


@pytest.mark.parametrize("book", sorted(p.name for p in PLAYBOOKS.glob("*.yaml")))
def test_no_action_is_granted_on_star_when_it_takes_a_resource(book: str) -> None:
    """`migrate permissions` gives every action that takes a resource type (AWS's
    authorization reference) those types, never "*": parliament reports no RESOURCE_STAR. The
    document also fits an inline role policy (10,240 characters)."""
    policy = commands.permissions(str(PLAYBOOKS / book))
    findings = analyze_policy_string(json.dumps(policy)).findings
    assert not [f for f in findings if f.issue == "RESOURCE_STAR"], findings
    assert policy_size(policy) <= 10_240
    everything = {a for s in policy["Statement"] for a in _as_list(s["Action"])}
    declared = {
        p for n in load_playbook(str(PLAYBOOKS / book)).steps for p in n.step_type.permissions
    }
    assert declared <= everything  # narrowed, nothing dropped
    wide = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}],
    }
    assert any(  # the check above can fail
        f.issue == "RESOURCE_STAR" for f in analyze_policy_string(json.dumps(wide)).findings
    )


def test_object_writes_only_in_the_buckets_the_playbook_names() -> None:
    policy = commands.permissions(str(PLAYBOOKS / "s3-reencrypt.yaml"), ["buckets=app-data"])
    for action in ("s3:PutObject", "s3:PutObjectAcl", "s3:DeleteObjectVersion"):
        (statement,) = _statements_with(policy, action)
        assert statement["Resource"] == "arn:aws:s3:::app-data/*", statement
    # Every bucket (the default) cannot be narrowed by name, only by resource type.
    policy = commands.permissions(str(PLAYBOOKS / "s3-reencrypt.yaml"))
    (statement,) = _statements_with(policy, "s3:PutObject")
    assert "arn:aws:s3:::*" in _as_list(statement["Resource"]), statement


def test_roles_and_profiles_are_created_only_under_the_role_name_prefix() -> None:
    policy = commands.permissions(str(PLAYBOOKS / "keys-to-roles.yaml"))
    (create,) = _statements_with(policy, "iam:CreateRole")
    assert create["Resource"] == "arn:aws:iam::*:role/migrate-*"
    (profile,) = _statements_with(policy, "iam:CreateInstanceProfile")
    assert profile["Resource"] == "arn:aws:iam::*:instance-profile/migrate-*"
    # Policies are merged into roles workloads already have: those stay on every role.
    (merge,) = _statements_with(policy, "iam:PutRolePolicy")
    assert "arn:aws:iam::*:role/*" in _as_list(merge["Resource"])


def test_secrets_are_written_only_when_they_carry_migrates_tag() -> None:
    policy = commands.permissions(str(PLAYBOOKS / "config-secrets.yaml"))
    tag = "migrate:managed-by"
    (create,) = _statements_with(policy, "secretsmanager:CreateSecret")
    assert create["Condition"] == {"StringEquals": {f"aws:RequestTag/{tag}": "migrate"}}
    for action in ("PutSecretValue", "GetSecretValue", "DeleteSecret", "UpdateSecretVersionStage"):
        (statement,) = _statements_with(policy, f"secretsmanager:{action}")
        assert statement["Condition"] == {"StringEquals": {f"aws:ResourceTag/{tag}": "migrate"}}
    # Finding out who owns a same-named secret needs DescribeSecret on any secret.
    (describe,) = _statements_with(policy, "secretsmanager:DescribeSecret")
    assert "Condition" not in describe


def test_rds_snapshots_are_made_and_deleted_only_under_migrates_names() -> None:
    policy = commands.permissions(str(PLAYBOOKS / "rds-encrypt.yaml"))
    (delete,) = _statements_with(policy, "rds:DeleteDBSnapshot")
    assert delete["Resource"] == "arn:aws:rds:*:*:snapshot:migrate-*"
    (create,) = _statements_with(policy, "rds:CreateDBSnapshot")
    # Taking a snapshot is authorised on the database too.
    assert set(_as_list(create["Resource"])) == {
        "arn:aws:rds:*:*:db:*",
        "arn:aws:rds:*:*:snapshot:migrate-*",
    }


def test_rds_lockdown_changes_only_its_own_security_groups() -> None:
    """The stop-writes lockdown creates its group with migrate's tags; the migrator may open
    (lockdown_allow) or delete only a group carrying them, and tag only on create: not any
    security group of the account (the shape of AWS's own tag-based example for EC2)."""
    policy = commands.permissions(str(PLAYBOOKS / "rds-encrypt.yaml"))
    for action in ("ec2:AuthorizeSecurityGroupIngress", "ec2:DeleteSecurityGroup"):
        (statement,) = _statements_with(policy, action)
        assert statement["Condition"] == {
            "StringEquals": {"aws:ResourceTag/migrate:role": "lockdown"}
        }
        assert "arn:aws:ec2:*:*:security-group/*" in _as_list(statement["Resource"])
    (tags,) = _statements_with(policy, "ec2:CreateTags")
    assert tags["Condition"] == {"StringEquals": {"ec2:CreateAction": "CreateSecurityGroup"}}


def test_rds_managed_password_secrets_are_only_rds_own() -> None:
    """A copy modified with ManageMasterUserPassword gets a secret RDS makes with the caller's
    permissions; the migrator may touch only those (rds!db-..., rds!cluster-...), never the
    account's other secrets."""
    policy = commands.permissions(str(PLAYBOOKS / "rds-encrypt.yaml"))
    for action in ("CreateSecret", "RotateSecret", "DeleteSecret", "TagResource"):
        (statement,) = _statements_with(policy, f"secretsmanager:{action}")
        assert statement["Resource"] == "arn:aws:secretsmanager:*:*:secret:rds!*", statement
