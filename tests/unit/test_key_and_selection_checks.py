"""Which KMS keys a plan accepts, and names that match nothing (issue 18, bad input).

The key policies are AWS's documented shapes: the account-root delegation of the default key
policy, the "use through services" pattern of AWS-managed keys (``kms:ViaService``), and a
policy naming one role. DescribeKey/GetKeyPolicy answers are stubbed with botocore's Stubber
where moto cannot give them (an access-denied DescribeKey), and said so below.
"""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from migrate.aws.kms import check_usable_key, via_services
from migrate.engine.selection import Selection
from migrate.errors import ParamError

ROOT = "arn:aws:iam::111122223333:root"
USE = ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"]


def _statement(actions: Any, via: Any = None, principal: Any = None) -> dict[str, Any]:
    statement: dict[str, Any] = {
        "Effect": "Allow",
        "Principal": principal or {"AWS": "*"},
        "Action": actions,
        "Resource": "*",
    }
    if via is not None:
        statement["Condition"] = {"StringEquals": {"kms:ViaService": via}}
    return statement


def test_root_delegation_leaves_use_unrestricted() -> None:
    policy = {"Statement": [_statement("kms:*", principal={"AWS": ROOT})]}
    assert via_services(policy) is None


def test_use_only_through_services_is_a_restriction() -> None:
    policy = {
        "Statement": [
            _statement(["kms:Describe*", "kms:Put*"], principal={"AWS": ROOT}),
            _statement(USE, via=["s3.eu-west-1.amazonaws.com", "rds.eu-west-1.amazonaws.com"]),
        ]
    }
    assert via_services(policy) == ["rds.eu-west-1.amazonaws.com", "s3.eu-west-1.amazonaws.com"]


def test_a_statement_granting_use_without_the_condition_lifts_the_restriction() -> None:
    policy = {
        "Statement": [
            _statement(USE, via="rds.eu-west-1.amazonaws.com"),
            _statement(
                ["kms:Decrypt", "kms:GenerateDataKey"],
                principal={"AWS": "arn:aws:iam::111122223333:role/app"},
            ),
        ]
    }
    assert via_services(policy) is None


def test_deny_statements_and_admin_only_statements_do_not_count() -> None:
    deny = {**_statement("kms:*"), "Effect": "Deny"}
    policy = {"Statement": [deny, _statement(USE, via="secretsmanager.us-east-1.amazonaws.com")]}
    assert via_services(policy) == ["secretsmanager.us-east-1.amazonaws.com"]


class _Clients:
    def __init__(self, kms: Any) -> None:
        self.kms = kms
        self.regions: list[str | None] = []

    def client(self, service: str, region: str | None = None) -> Any:
        self.regions.append(region)
        return self.kms


def _stubbed_kms() -> tuple[Any, Stubber]:
    kms = boto3.client(
        "kms", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="y"
    )
    return kms, Stubber(kms)


def test_a_caller_that_may_not_describe_the_key_is_not_refused_by_the_plan() -> None:
    # Stubber: moto does not enforce IAM, so it cannot answer AccessDenied to DescribeKey.
    kms, stub = _stubbed_kms()
    stub.add_client_error("describe_key", "AccessDeniedException", http_status_code=400)
    with stub:
        check_usable_key(_Clients(kms), "alias/app", ["eu-west-1"], "s3")
    stub.assert_no_pending_responses()


def test_an_external_key_awaiting_its_material_is_refused() -> None:
    # Stubber: moto cannot create a key in state PendingImport (no key-material import flow).
    kms, stub = _stubbed_kms()
    arn = "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    stub.add_response(
        "describe_key",
        {
            "KeyMetadata": {
                "KeyId": "1234abcd-12ab-34cd-56ef-1234567890ab",
                "Arn": arn,
                "KeyState": "PendingImport",
                "Origin": "EXTERNAL",
            }
        },
    )
    with stub, pytest.raises(ParamError, match="PendingImport") as caught:
        check_usable_key(_Clients(kms), arn, ["us-east-1"], "s3")
    assert caught.value.param == "kms_key"


def test_a_key_given_by_arn_is_checked_in_its_own_region_only() -> None:
    kms, stub = _stubbed_kms()
    arn = "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    meta = {
        "KeyId": "1234abcd-12ab-34cd-56ef-1234567890ab",
        "Arn": arn,
        "KeyState": "Enabled",
        "KeySpec": "SYMMETRIC_DEFAULT",
        "KeyUsage": "ENCRYPT_DECRYPT",
    }
    stub.add_response("describe_key", {"KeyMetadata": meta})
    policy = {"Statement": [_statement("kms:*", principal={"AWS": ROOT})]}
    stub.add_response("get_key_policy", {"Policy": json.dumps(policy)})
    clients = _Clients(kms)
    with stub:
        check_usable_key(clients, arn, ["us-east-1", "eu-west-1", "ap-south-1"], "s3")
    assert clients.regions == ["eu-west-1"]


def test_an_exact_name_that_matches_nothing_is_refused_a_glob_only_warned() -> None:
    selection = Selection(names=["app-data", "logs-*", "*"])
    assert selection.unmatched(["app-data", "web"], "bucket", "account 1") == [
        "names: 'logs-*' matches no bucket in account 1"
    ]
    with pytest.raises(ParamError, match="'app-dta'") as caught:
        Selection(names=["app-dta"]).unmatched(["app-data"], "bucket", "account 1")
    assert caught.value.param == "names"


def test_the_default_selection_on_an_empty_account_says_nothing() -> None:
    assert Selection().unmatched([], "bucket", "account 1") == []
