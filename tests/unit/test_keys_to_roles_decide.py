"""iam.keys_to_roles decisions from observed facts: inactive keys and root access keys.

These paths make no AWS call in decide, so the facts are given directly (moto cannot create
root access keys: ``AccountAccessKeysPresent`` is always 0 there).
"""

from __future__ import annotations

from typing import Any

from migrate.steps.iam.keys_to_roles import KeysToRoles, KeysToRolesParams


def _key(status: str) -> dict[str, Any]:
    return {
        "user": "old-deployer",
        "status": status,
        "created": "2020-01-01T00:00:00",
        "last_used": None,
        "last_used_service": None,
        "usage": None,
        "workloads": [],
        "outside": [],
        "doubtful": [],
        "locations": [],
    }


def _decide(facts: dict[str, Any]) -> list[Any]:
    step = KeysToRoles(KeysToRolesParams(retire_window="0s"))
    return step.decide(None, {"keys": {}, **facts})  # type: ignore[arg-type]


def test_an_inactive_key_is_retired_behind_the_delete_gate() -> None:
    actions = _decide({"keys": {"AKIAINACTIVE00000001": _key("Inactive")}})
    assert [(a.kind, a.gate) for a in actions] == [
        ("iam.retire_window", None),
        ("iam.delete_key", "delete"),
    ]


def test_root_access_keys_are_an_ftr_finding_for_a_human() -> None:
    actions = _decide({"root_access_keys": 1})
    assert [(a.kind, a.target, a.gate) for a in actions] == [
        ("iam.review", "root-access-keys", "human-review")
    ]
    assert "FTR finding" in actions[0].summary and actions[0].destructive
    assert _decide({"root_access_keys": 0}) == []


def test_unreadable_trails_send_a_data_event_key_to_review() -> None:
    """DescribeTrails refused: whether the trails log S3 object calls is unknown, so a key IAM
    last saw using S3 is not switched on evidence that may lack those calls (it used to be:
    unknown coverage counted as no gap). A key of a service without data events still is."""
    step = KeysToRoles(KeysToRolesParams())
    s3_key = {**_key("Active"), "last_used_service": "s3"}
    gap = step._coverage_gap(None, s3_key)
    assert gap and "could not be read" in gap and "accept_unlogged" in gap
    assert step._coverage_gap(None, {**_key("Active"), "last_used_service": "ec2"}) is None
    accepting = KeysToRoles(KeysToRolesParams(accept_unlogged=["s3"]))
    assert accepting._coverage_gap(None, s3_key) is None


def test_the_role_prefix_migrate_permissions_grants_matches_the_names_made() -> None:
    """`migrate permissions` lets the migrator create roles only under the fixed start of
    role_name: that start must be the one of the names really made (spaces and doubled dashes
    cleaned up), or AWS would refuse every CreateRole."""
    import fnmatch

    from migrate.steps.iam.keys_to_roles import _role_name

    for template in ("migrate-{user}-{key_suffix}", "app roles/{user}", "team--{user}"):
        (scope,) = KeysToRoles(KeysToRolesParams(role_name=template)).permission_scopes()
        (pattern,) = scope.names["RoleNameWithPath"]
        made = _role_name(template, "old-deployer", "AKIAEXAMPLE000123456")
        assert fnmatch.fnmatchcase(made, pattern), (template, made, pattern)
    assert KeysToRoles(KeysToRolesParams(role_name="{user}-x")).permission_scopes() == []


def test_a_host_pattern_must_end_the_host_with_a_slash() -> None:
    """legacy/prod/<host>* would let the role of host web read web2's secrets."""
    import pytest
    from pydantic import ValidationError

    from migrate.steps.iam.keys_to_roles import KeysToRolesParams

    for bad in ("legacy/prod/<host>*", "legacy/prod/*", "<host>/*"):
        with pytest.raises(ValidationError):
            KeysToRolesParams(host_secrets_pattern=bad)
    for good in ("legacy/prod/<host>/*", "legacy/prod/<host>"):
        assert KeysToRolesParams(host_secrets_pattern=good).host_secrets_pattern == good
