"""Realistic synthetic CloudTrail records and log files, for tests and the benchmark.

Moto's trails never write logs, so tests and ``bench/cloudtrail_ingest.py`` write their own files in
the layout CloudTrail uses (``AWSLogs/<account>/CloudTrail/<region>/YYYY/MM/DD/..json.gz``). Records
are about 1.3 KB each, like real ones: nested ``requestParameters``, ``additionalEventData``,
``tlsDetails``, ``resources``, and several identity types (IAM users with long-lived keys, assumed
roles with temporary keys, AWS services). Everything is deterministic for a given seed.
"""

from __future__ import annotations

import gzip
import json
import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

ACCOUNT = "123456789012"
_AGENTS = (
    "[aws-sdk-java/1.11.820 Linux/4.14.186-146.268.amzn2.x86_64 OpenJDK_64-Bit_Server_VM/25.252-b09"
    " java/1.8.0_252 vendor/Oracle_Corporation]",
    "aws-cli/2.15.30 Python/3.11.8 Linux/6.1.79-99.164.amzn2023.x86_64 exe/x86_64.amzn.2023",
    "Boto3/1.34.69 md/Botocore#1.34.69 ua/2.0 os/linux#6.1 md/arch#x86_64 lang/python#3.11.8",
)
_CALLS = (
    ("s3.amazonaws.com", "GetObject", True),
    ("s3.amazonaws.com", "PutObject", False),
    ("s3.amazonaws.com", "ListObjects", True),
    ("s3.amazonaws.com", "HeadObject", True),
    ("sqs.amazonaws.com", "ReceiveMessage", True),
    ("dynamodb.amazonaws.com", "GetItem", True),
    ("kms.amazonaws.com", "Decrypt", True),
    ("ec2.amazonaws.com", "DescribeInstances", True),
    ("sts.amazonaws.com", "GetCallerIdentity", True),
)


@dataclass(frozen=True)
class SynthUser:
    """An IAM user with a long-lived key, calling from ``ip``."""

    name: str
    key_id: str
    ip: str


DEFAULT_USERS = (
    SynthUser("app-server", "AKIAEXAMPLEAPP000001", "10.0.1.10"),
    SynthUser("batch-reports", "AKIAEXAMPLEBATCH0002", "203.0.113.50"),
    SynthUser("ci-deployer", "AKIAEXAMPLECI0000003", "198.51.100.7"),
)
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/app-task-role"


class RecordFactory:
    """Builds records; ``record(i)`` is deterministic for a given seed and index."""

    def __init__(
        self,
        *,
        seed: int = 7,
        users: tuple[SynthUser, ...] = DEFAULT_USERS,
        start: datetime = datetime(2026, 11, 1, tzinfo=UTC),
        region: str = "us-east-1",
    ) -> None:
        self.rng = random.Random(seed)
        self.users = users
        self.start = start
        self.region = region

    def _identity(self, kind: int, i: int) -> dict[str, Any]:
        if kind < len(self.users):
            user = self.users[kind]
            return {
                "type": "IAMUser",
                "principalId": f"AIDA{user.name.upper().replace('-', '')[:12]:0<12}EXAMPLE",
                "arn": f"arn:aws:iam::{ACCOUNT}:user/{user.name}",
                "accountId": ACCOUNT,
                "accessKeyId": user.key_id,
                "userName": user.name,
            }
        if kind == len(self.users):
            session = f"i-0abc{i % 7:04d}"
            return {
                "type": "AssumedRole",
                "principalId": f"AROAEXAMPLEROLE00001:{session}",
                "arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/app-task-role/{session}",
                "accountId": ACCOUNT,
                "accessKeyId": f"ASIA{i % 50:016d}",
                "sessionContext": {
                    "sessionIssuer": {
                        "type": "Role",
                        "principalId": "AROAEXAMPLEROLE00001",
                        "arn": ROLE_ARN,
                        "accountId": ACCOUNT,
                        "userName": "app-task-role",
                    },
                    "webIdFederationData": {},
                    "attributes": {
                        "creationDate": "2026-11-01T00:00:00Z",
                        "mfaAuthenticated": "false",
                    },
                    "ec2RoleDelivery": "2.0",
                },
            }
        return {"type": "AWSService", "invokedBy": "cloudtrail.amazonaws.com"}

    def record(self, i: int) -> dict[str, Any]:
        """The ``i``-th record (about 1.3 KB as JSON)."""
        rng = self.rng
        kind = rng.randrange(len(self.users) + 2)
        source, name, read_only = _CALLS[rng.randrange(len(_CALLS))]
        moment = self.start + timedelta(seconds=i * 3)
        identity = self._identity(kind, i)
        service_call = identity["type"] == "AWSService"
        user = self.users[kind] if kind < len(self.users) else None
        ip = user.ip if user else ("10.0.2.25" if not service_call else "cloudtrail.amazonaws.com")
        bucket = f"app-bucket-{rng.randrange(4)}"
        key = f"data/{rng.randrange(10_000):05d}/part-{rng.randrange(100):03d}.parquet"
        record: dict[str, Any] = {
            "eventVersion": "1.10",
            "userIdentity": identity,
            "eventTime": moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "eventSource": source,
            "eventName": name,
            "awsRegion": self.region,
            "sourceIPAddress": ip,
            "userAgent": "cloudtrail.amazonaws.com" if service_call else rng.choice(_AGENTS),
            "requestParameters": {
                "bucketName": bucket,
                "Host": f"{bucket}.s3.{self.region}.amazonaws.com",
                "key": key,
                "x-amz-checksum-mode": "ENABLED",
            },
            "responseElements": None,
            "additionalEventData": {
                "SignatureVersion": "SigV4",
                "CipherSuite": "TLS_AES_128_GCM_SHA256",
                "bytesTransferredIn": 0,
                "AuthenticationMethod": "AuthHeader",
                "x-amz-id-2": "".join(rng.choice("abcdefABCDEF0123456789+/") for _ in range(40)),
                "bytesTransferredOut": rng.randrange(1, 5_000_000),
            },
            "requestID": uuid.UUID(int=rng.getrandbits(128)).hex.upper()[:16],
            "eventID": str(uuid.UUID(int=rng.getrandbits(128))),
            "readOnly": read_only,
            "resources": [
                {"type": "AWS::S3::Object", "ARN": f"arn:aws:s3:::{bucket}/{key}"},
                {"accountId": ACCOUNT, "type": "AWS::S3::Bucket", "ARN": f"arn:aws:s3:::{bucket}"},
            ],
            "eventType": "AwsApiCall",
            "managementEvent": False,
            "recipientAccountId": ACCOUNT,
            "eventCategory": "Data",
            "tlsDetails": {
                "tlsVersion": "TLSv1.3",
                "cipherSuite": "TLS_AES_128_GCM_SHA256",
                "clientProvidedHostHeader": f"{bucket}.s3.{self.region}.amazonaws.com",
            },
        }
        if rng.random() < 0.03:
            record["errorCode"] = "AccessDenied"
            record["errorMessage"] = "Access Denied"
        if ip.startswith("10."):
            record["vpcEndpointId"] = "vpce-0123456789abcdef0"
            record["vpcEndpointAccountId"] = ACCOUNT
        return record

    def records(self, count: int, offset: int = 0) -> Iterator[dict[str, Any]]:
        """``count`` records starting at index ``offset``."""
        for i in range(offset, offset + count):
            yield self.record(i)


def log_key(
    account: str, region: str, moment: datetime, seq: int, *, org_id: str | None = None
) -> str:
    """The object key CloudTrail uses for a log file delivered at ``moment``."""
    org = f"{org_id}/" if org_id else ""
    stamp = moment.strftime("%Y%m%dT%H%MZ")
    return (
        f"AWSLogs/{org}{account}/CloudTrail/{region}/{moment:%Y/%m/%d}/"
        f"{account}_CloudTrail_{region}_{stamp}_{seq:04d}abcdEFGH.json.gz"
    )


def log_file(records: list[dict[str, Any]]) -> bytes:
    """Records as a gzipped CloudTrail log file."""
    return gzip.compress(json.dumps({"Records": records}).encode(), compresslevel=6, mtime=0)
