"""CloudTrail log files of several realistic *shapes*, generated fast, for the CLI benchmark.

A shape says how varied the resources are, which is what the per-key resource recording has to
cope with (the usage combos themselves barely change between shapes):

* ``low``: the project's own bench shape (``tests/support/cloudtrail_synth.py``): 3 IAM users, a role
  and an AWS service; every record an S3-style call on 4 buckets whose keys all sit under
  ``data/`` (so they generalise to one folder each);
* ``high``: S3 data events whose object keys are almost all different, under almost as many
  top-level folders (``<tenant>/<yyyy>/<mm>/<uuid>.json``, a fifth at the bucket's root), as on a
  real bucket; EC2 calls naming varied instance ids in ``resources[]``; 12 users;
* ``data30``: 30% data events (S3 with keys as in ``high``, DynamoDB, Lambda), 70% management
  events across EC2 (varied instance ids), KMS, STS, IAM, SQS, Secrets Manager, SSM and CloudWatch.

Records are built from string templates (valid JSON, 1.3-1.7 KB each, with the fields real records
carry: nested ``requestParameters``, ``additionalEventData``, ``tlsDetails``, ``resources``), and
files are written by one process per core, so a million events take seconds, not minutes.
Everything is deterministic for a shape, a file index and a start time.
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from isal import igzip

ACCOUNT = "123456789012"
REGION = "us-east-1"
SHAPES = ("low", "high", "data30")
_AGENTS = (
    "[aws-sdk-java/1.11.820 Linux/4.14.186-146.268.amzn2.x86_64 OpenJDK_64-Bit_Server_VM/25.252-b09"
    " java/1.8.0_252 vendor/Oracle_Corporation]",
    "aws-cli/2.15.30 Python/3.11.8 Linux/6.1.79-99.164.amzn2023.x86_64 exe/x86_64.amzn.2023",
    "Boto3/1.34.69 md/Botocore#1.34.69 ua/2.0 os/linux#6.1 md/arch#x86_64 lang/python#3.11.8",
)
_HEX = "abcdefABCDEF0123456789"


def _users(count: int) -> list[tuple[str, str, str]]:
    """``(name, AKIA key id, source IP)`` of ``count`` IAM users."""
    out = []
    for n in range(count):
        ip = f"10.0.{n % 4}.{10 + n}" if n % 3 else f"203.0.113.{50 + n}"
        out.append((f"user-{n:02d}", f"AKIAEXAMPLE{n:09d}", ip))
    return out


class _Writer:
    """Builds one record's JSON text from its parts."""

    def __init__(self, rng: random.Random, users: list[tuple[str, str, str]]) -> None:
        self.rng = rng
        self.users = users

    def identity(self, i: int) -> tuple[str, str, bool]:
        """(userIdentity JSON, source IP, made by an AWS service)."""
        rng = self.rng
        kind = rng.randrange(len(self.users) + 2)
        if kind < len(self.users):
            name, key, ip = self.users[kind]
            return (
                f'{{"type":"IAMUser","principalId":"AIDA{name.upper():0<16}",'
                f'"arn":"arn:aws:iam::{ACCOUNT}:user/{name}","accountId":"{ACCOUNT}",'
                f'"accessKeyId":"{key}","userName":"{name}"}}',
                ip,
                False,
            )
        if kind == len(self.users):
            session = f"i-0abc{i % 7:04d}"
            return (
                '{"type":"AssumedRole","principalId":"AROAEXAMPLEROLE00001:' + session + '",'
                f'"arn":"arn:aws:sts::{ACCOUNT}:assumed-role/app-task-role/{session}",'
                f'"accountId":"{ACCOUNT}","accessKeyId":"ASIA{i % 50:016d}",'
                '"sessionContext":{"sessionIssuer":{"type":"Role",'
                f'"principalId":"AROAEXAMPLEROLE00001","arn":"arn:aws:iam::{ACCOUNT}:role/'
                f'app-task-role","accountId":"{ACCOUNT}","userName":"app-task-role"}},'
                '"webIdFederationData":{},"attributes":{"creationDate":"2026-11-01T00:00:00Z",'
                '"mfaAuthenticated":"false"},"ec2RoleDelivery":"2.0"}}',
                "10.0.2.25",
                False,
            )
        return '{"type":"AWSService","invokedBy":"cloudtrail.amazonaws.com"}', "", True

    def record(
        self,
        i: int,
        moment: str,
        source: str,
        name: str,
        params: str,
        resources: str,
        *,
        data_event: bool,
        read_only: bool = True,
    ) -> str:
        """One record's JSON."""
        rng = self.rng
        identity, ip, service = self.identity(i)
        if service:
            ip, agent = source, source
        else:
            agent = _AGENTS[rng.randrange(len(_AGENTS))]
        extra = ""
        if not service and rng.random() < 0.03:
            extra += ',"errorCode":"AccessDenied","errorMessage":"Access Denied"'
        if ip.startswith("10."):
            extra += f',"vpcEndpointId":"vpce-0123456789abcdef0","vpcEndpointAccountId":"{ACCOUNT}"'
        token = "".join(rng.choices(_HEX, k=40))
        return (
            f'{{"eventVersion":"1.10","userIdentity":{identity},"eventTime":"{moment}",'
            f'"eventSource":"{source}","eventName":"{name}","awsRegion":"{REGION}",'
            f'"sourceIPAddress":"{ip}","userAgent":"{agent}","requestParameters":{params},'
            '"responseElements":null,"additionalEventData":{"SignatureVersion":"SigV4",'
            '"CipherSuite":"TLS_AES_128_GCM_SHA256","bytesTransferredIn":0,'
            f'"AuthenticationMethod":"AuthHeader","x-amz-id-2":"{token}",'
            f'"bytesTransferredOut":{rng.randrange(1, 5_000_000)}}},'
            f'"requestID":"{rng.getrandbits(64):016X}","eventID":"{uuid.UUID(int=rng.getrandbits(128))}",'
            f'"readOnly":{"true" if read_only else "false"},"resources":{resources},'
            f'"eventType":"AwsApiCall","managementEvent":{"false" if data_event else "true"},'
            f'"recipientAccountId":"{ACCOUNT}","eventCategory":"{"Data" if data_event else "Management"}",'
            '"tlsDetails":{"tlsVersion":"TLSv1.3","cipherSuite":"TLS_AES_128_GCM_SHA256",'
            f'"clientProvidedHostHeader":"{source.split(".")[0]}.{REGION}.amazonaws.com"}}'
            f"{extra}}}"
        )


def _s3(w: _Writer, i: int, moment: str, name: str, bucket: str, key: str | None) -> str:
    host = f"{bucket}.s3.{REGION}.amazonaws.com"
    params = f'{{"bucketName":"{bucket}","Host":"{host}"'
    resources = (
        f'[{{"accountId":"{ACCOUNT}","type":"AWS::S3::Bucket","ARN":"arn:aws:s3:::{bucket}"}}]'
    )
    if key is not None:
        params += f',"key":"{key}","x-amz-checksum-mode":"ENABLED"'
        resources = (
            f'[{{"type":"AWS::S3::Object","ARN":"arn:aws:s3:::{bucket}/{key}"}},' + resources[1:]
        )
    else:
        params += ',"list-type":"2","prefix":"","encoding-type":"url"'
    return w.record(
        i,
        moment,
        "s3.amazonaws.com",
        name,
        params + "}",
        resources,
        data_event=True,
        read_only=name != "PutObject",
    )


def _varied_key(rng: random.Random) -> str:
    """An object key as on a real bucket: almost all distinct, under almost as many folders."""
    leaf = f"{rng.getrandbits(64):016x}.json"
    if rng.random() < 0.2:
        return leaf
    return f"t{rng.randrange(1_000_000):06d}/2026/{rng.randrange(1, 13):02d}/{leaf}"


def _ec2(w: _Writer, i: int, moment: str) -> str:
    rng = w.rng
    instance = f"i-{rng.getrandbits(56):014x}"
    name = ("StartInstances", "StopInstances", "RebootInstances", "CreateTags")[rng.randrange(4)]
    params = f'{{"instancesSet":{{"items":[{{"instanceId":"{instance}"}}]}}}}'
    resources = (
        f'[{{"accountId":"{ACCOUNT}","type":"AWS::EC2::Instance",'
        f'"ARN":"arn:aws:ec2:{REGION}:{ACCOUNT}:instance/{instance}"}}]'
    )
    return w.record(
        i, moment, "ec2.amazonaws.com", name, params, resources, data_event=False, read_only=False
    )


_LOW_CALLS = (
    ("GetObject", True),
    ("PutObject", True),
    ("ListObjects", False),
    ("HeadObject", True),
    ("ReceiveMessage", None),
    ("GetItem", None),
    ("Decrypt", None),
    ("DescribeInstances", None),
    ("GetCallerIdentity", None),
)
_LOW_SOURCES = {
    "ReceiveMessage": "sqs",
    "GetItem": "dynamodb",
    "Decrypt": "kms",
    "DescribeInstances": "ec2",
    "GetCallerIdentity": "sts",
}


def _low(w: _Writer, i: int, moment: str) -> str:
    """The synth.py shape: every record carries S3 parameters and resources."""
    rng = w.rng
    name, has_key = _LOW_CALLS[rng.randrange(len(_LOW_CALLS))]
    bucket = f"app-bucket-{rng.randrange(4)}"
    key = f"data/{rng.randrange(10_000):05d}/part-{rng.randrange(100):03d}.parquet"
    if has_key is not None:
        return _s3(w, i, moment, name, bucket, key if has_key else None)
    source = f"{_LOW_SOURCES[name]}.amazonaws.com"
    params = (
        f'{{"bucketName":"{bucket}","Host":"{bucket}.s3.{REGION}.amazonaws.com","key":"{key}"}}'
    )
    resources = (
        f'[{{"type":"AWS::S3::Object","ARN":"arn:aws:s3:::{bucket}/{key}"}},'
        f'{{"accountId":"{ACCOUNT}","type":"AWS::S3::Bucket","ARN":"arn:aws:s3:::{bucket}"}}]'
    )
    return w.record(i, moment, source, name, params, resources, data_event=False)


def _high(w: _Writer, i: int, moment: str) -> str:
    rng = w.rng
    if rng.random() < 0.15:
        return _ec2(w, i, moment)
    bucket = f"prod-data-{rng.randrange(6)}"
    name = ("GetObject", "GetObject", "PutObject", "HeadObject", "DeleteObject")[rng.randrange(5)]
    return _s3(w, i, moment, name, bucket, _varied_key(rng))


_MANAGEMENT: tuple[tuple[str, str, Callable[[random.Random], tuple[str, str]]], ...] = (
    (
        "kms.amazonaws.com",
        "Decrypt",
        lambda r: (
            '{"encryptionAlgorithm":"SYMMETRIC_DEFAULT"}',
            f'[{{"accountId":"{ACCOUNT}","type":"AWS::KMS::Key","ARN":"arn:aws:kms:{REGION}:{ACCOUNT}:'
            f'key/{uuid.UUID(int=r.randrange(8))}"}}]',
        ),
    ),
    ("sts.amazonaws.com", "GetCallerIdentity", lambda r: ("null", "[]")),
    (
        "sts.amazonaws.com",
        "AssumeRole",
        lambda r: (
            f'{{"roleArn":"arn:aws:iam::{ACCOUNT}:role/job-{r.randrange(30)}","roleSessionName":"s"}}',
            f'[{{"accountId":"{ACCOUNT}","type":"AWS::IAM::Role",'
            f'"ARN":"arn:aws:iam::{ACCOUNT}:role/job-{r.randrange(30)}"}}]',
        ),
    ),
    (
        "iam.amazonaws.com",
        "GetUser",
        lambda r: (f'{{"userName":"user-{r.randrange(12):02d}"}}', "[]"),
    ),
    (
        "sqs.amazonaws.com",
        "SendMessage",
        lambda r: (
            f'{{"queueUrl":"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/jobs-{r.randrange(40)}"}}',
            "[]",
        ),
    ),
    (
        "secretsmanager.amazonaws.com",
        "GetSecretValue",
        lambda r: (f'{{"secretId":"prod/app-{r.randrange(200)}"}}', "[]"),
    ),
    (
        "ssm.amazonaws.com",
        "GetParameter",
        lambda r: (f'{{"name":"/app/config/{r.randrange(500)}","withDecryption":true}}', "[]"),
    ),
    ("monitoring.amazonaws.com", "PutMetricData", lambda r: ('{"namespace":"App"}', "[]")),
    (
        "ec2.amazonaws.com",
        "DescribeInstances",
        lambda r: ('{"instancesSet":{},"filterSet":{}}', "[]"),
    ),
)


def _data30(w: _Writer, i: int, moment: str) -> str:
    rng = w.rng
    roll = rng.random()
    if roll < 0.20:
        bucket = f"prod-data-{rng.randrange(6)}"
        name = ("GetObject", "PutObject", "HeadObject")[rng.randrange(3)]
        return _s3(w, i, moment, name, bucket, _varied_key(rng))
    if roll < 0.25:
        table = f"orders-{rng.randrange(5)}"
        return w.record(
            i,
            moment,
            "dynamodb.amazonaws.com",
            "GetItem",
            f'{{"tableName":"{table}","key":{{"pk":{{"S":"{rng.getrandbits(48):x}"}}}}}}',
            f'[{{"accountId":"{ACCOUNT}","type":"AWS::DynamoDB::Table",'
            f'"ARN":"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{table}"}}]',
            data_event=True,
        )
    if roll < 0.30:
        function = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:fn-{rng.randrange(20)}"
        return w.record(
            i,
            moment,
            "lambda.amazonaws.com",
            "Invoke",
            f'{{"functionName":"{function}","invocationType":"Event"}}',
            f'[{{"accountId":"{ACCOUNT}","type":"AWS::Lambda::Function","ARN":"{function}"}}]',
            data_event=True,
            read_only=False,
        )
    if roll < 0.45:
        return _ec2(w, i, moment)
    source, name, parts = _MANAGEMENT[rng.randrange(len(_MANAGEMENT))]
    params, resources = parts(rng)
    return w.record(i, moment, source, name, params, resources, data_event=False)


_BUILDERS: dict[str, tuple[int, Callable[[_Writer, int, str], str]]] = {
    "low": (3, _low),
    "high": (12, _high),
    "data30": (12, _data30),
}


def log_key(moment: datetime, seq: int) -> str:
    """The object key CloudTrail uses for a log file delivered at ``moment``."""
    stamp = moment.strftime("%Y%m%dT%H%MZ")
    return (
        f"AWSLogs/{ACCOUNT}/CloudTrail/{REGION}/{moment:%Y/%m/%d}/"
        f"{ACCOUNT}_CloudTrail_{REGION}_{stamp}_{seq:06d}abcdEFGH.json.gz"
    )


def write_file(args: tuple[str, str, int, int, int, str]) -> int:
    """Write log file ``index`` of a shape under ``root``; returns its compressed size."""
    shape, root, index, per_file, files, start_iso = args
    users, build = _BUILDERS[shape]
    rng = random.Random(f"{shape}-{index}")
    writer = _Writer(rng, _users(users))
    start = datetime.fromisoformat(start_iso)
    # Files spread evenly over 14 days; events inside a file over its 5 minutes.
    moment = start + timedelta(seconds=14 * 86400 * index // max(1, files))
    records = []
    for n in range(per_file):
        t = (moment + timedelta(seconds=300 * n // per_file)).strftime("%Y-%m-%dT%H:%M:%SZ")
        records.append(build(writer, index * per_file + n, t))
    body = ('{"Records":[' + ",".join(records) + "]}").encode()
    if index == 0:
        json.loads(body)  # the templates must stay valid JSON
    data = igzip.compress(body, compresslevel=2)
    path = Path(root) / log_key(moment, index)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return len(data)


def generate(
    shape: str, root: Path, events: int, per_file: int, start: datetime, cores: int
) -> int:
    """Write ``events`` records of ``shape`` into files of ``per_file``; returns gzipped bytes."""
    from multiprocessing import get_context

    files = -(-events // per_file)
    jobs = [
        (shape, str(root), n, min(per_file, events - n * per_file), files, start.isoformat())
        for n in range(files)
    ]
    with get_context("forkserver").Pool(cores) as pool:
        return sum(pool.imap_unordered(write_file, jobs, chunksize=8))


def default_start(now: datetime | None = None) -> datetime:
    """Two weeks ending yesterday (UTC), so the CLI's default ``--since 90d`` covers every file."""
    today = (now or datetime.now(UTC)).replace(hour=0, minute=0, second=0, microsecond=0)
    return today - timedelta(days=15)
