"""The sandbox server and its seeded "legacy account", checked the way a user would look at it."""

from __future__ import annotations

import base64
import gzip
import json
import re
import time
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from botocore.config import Config
from botocore.exceptions import ClientError

from migrate.sandbox import seed as seed_module
from migrate.sandbox.seed import TRAIL_DAYS, TRAIL_FIRST_DAY, SeedSummary, seed
from migrate.sandbox.server import (
    SandboxServer,
    is_mutating_request,
    parse_recorded_line,
    sandbox_env,
)

ACCOUNT = "123456789012"
LOG_KEY = re.compile(
    r"^AWSLogs/123456789012/CloudTrail/us-east-1/(\d{4})/(\d{2})/(\d{2})/"
    r"123456789012_CloudTrail_us-east-1_(\d{8})T\d{4}Z_[A-Za-z0-9]{16}\.json\.gz$"
)
RECORD_FIELDS = {
    "eventVersion",
    "userIdentity",
    "eventTime",
    "eventSource",
    "eventName",
    "awsRegion",
    "sourceIPAddress",
    "userAgent",
    "requestParameters",
    "responseElements",
    "requestID",
    "eventID",
    "readOnly",
    "eventType",
    "managementEvent",
    "recipientAccountId",
    "eventCategory",
}


@dataclass(frozen=True)
class Seeded:
    server: SandboxServer
    summary: SeedSummary
    workdir: Path
    seconds: float


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxServer]:
    with SandboxServer(recording=True) as server:
        yield server


@pytest.fixture(scope="module")
def seeded(sandbox: SandboxServer, tmp_path_factory: pytest.TempPathFactory) -> Seeded:
    # moto's backends are process-global: start from empty whatever ran before in this process.
    sandbox.reset()
    workdir = tmp_path_factory.mktemp("sandbox-workdir")
    started = time.monotonic()
    summary = seed(sandbox.endpoint_url, workdir)
    return Seeded(sandbox, summary, workdir, time.monotonic() - started)


@pytest.fixture(scope="module")
def client(sandbox: SandboxServer) -> Callable[[str], Any]:
    env = sandbox_env(sandbox.endpoint_url)
    config = Config(retries={"max_attempts": 1})

    def make(service: str) -> Any:
        new_client: Any = boto3.client  # the stubs' overloads want a literal service name
        return new_client(
            service,
            endpoint_url=env["AWS_ENDPOINT_URL"],
            region_name=env["AWS_REGION"],
            aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
            config=config,
        )

    return make


@pytest.fixture(scope="module")
def trail_records(seeded: Seeded, client: Callable[[str], Any]) -> list[dict[str, Any]]:
    s3 = client("s3")
    records: list[dict[str, Any]] = []
    for key in seeded.summary.cloudtrail_log_keys:
        body = s3.get_object(Bucket=seeded.summary.log_bucket, Key=key)["Body"].read()
        records.extend(json.loads(gzip.decompress(body))["Records"])
    return records


def test_seeding_is_quick(seeded: Seeded) -> None:
    assert seeded.seconds < 15


def test_sandbox_env_points_clients_at_the_server(sandbox: SandboxServer) -> None:
    env = sandbox_env(sandbox.endpoint_url)
    assert env["AWS_ENDPOINT_URL"] == sandbox.endpoint_url
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+", sandbox.endpoint_url)
    assert env["AWS_DEFAULT_REGION"] == env["AWS_REGION"] == "us-east-1"
    assert env["AWS_ACCESS_KEY_ID"] and env["AWS_SECRET_ACCESS_KEY"]


def test_rds_instances_are_unencrypted_with_custom_groups(
    seeded: Seeded, client: Callable[[str], Any]
) -> None:
    rds, ec2 = client("rds"), client("ec2")
    summary = seeded.summary
    expected = {"legacy-mysql": "legacy-mysql-params", "legacy-postgres": "legacy-postgres-params"}
    assert set(summary.db_instances) == set(expected)
    sg = ec2.describe_security_groups(GroupIds=[summary.db_security_group_id])["SecurityGroups"]
    assert sg[0]["GroupName"] == "legacy-db-sg"
    for db_id, params in expected.items():
        db = rds.describe_db_instances(DBInstanceIdentifier=db_id)["DBInstances"][0]
        assert db["StorageEncrypted"] is False
        assert "KmsKeyId" not in db
        assert db["DBInstanceClass"] == "db.t3.micro"
        assert db["AllocatedStorage"] == 20
        assert db["BackupRetentionPeriod"] == 7
        assert [g["DBParameterGroupName"] for g in db["DBParameterGroups"]] == [params]
        assert [g["VpcSecurityGroupId"] for g in db["VpcSecurityGroups"]] == [
            summary.db_security_group_id
        ]
        assert db["DBSubnetGroup"]["DBSubnetGroupName"] == "legacy-db-subnets"
        assert db["DBSubnetGroup"]["VpcId"] == summary.vpc_id
        tags = {t["Key"]: t["Value"] for t in db["TagList"]}
        assert tags["Environment"] == "production"
    engines = {
        db["DBInstanceIdentifier"]: db["Engine"]
        for db in rds.describe_db_instances()["DBInstances"]
    }
    assert engines == {"legacy-mysql": "mysql", "legacy-postgres": "postgres"}
    changed = rds.describe_db_parameters(DBParameterGroupName="legacy-mysql-params", Source="user")
    assert {p["ParameterName"]: p["ParameterValue"] for p in changed["Parameters"]} == {
        "max_connections": "500"
    }
    family = rds.describe_db_parameter_groups(DBParameterGroupName="legacy-mysql-params")
    assert family["DBParameterGroups"][0]["DBParameterGroupFamily"] == "mysql8.0"


def test_buckets_and_objects_are_unencrypted(seeded: Seeded, client: Callable[[str], Any]) -> None:
    s3 = client("s3")
    names = {b["Name"] for b in s3.list_buckets()["Buckets"]}
    assert {
        "legacy-app-data",
        "legacy-backups",
        "legacy-static-site",
        "legacy-cloudtrail-logs",
    } <= names
    for name in seeded.summary.bucket_names:
        with pytest.raises(ClientError) as info:
            s3.get_bucket_encryption(Bucket=name)
        assert info.value.response["Error"]["Code"] == (
            "ServerSideEncryptionConfigurationNotFoundError"
        )
    app = seeded.summary.bucket("legacy-app-data")
    listed = s3.list_objects_v2(Bucket=app.name)["Contents"]
    assert len(listed) == len(app.keys) == 20
    for key in app.keys:
        head = s3.head_object(Bucket=app.name, Key=key)
        # moto applies no default encryption (neither does a legacy bucket without SSE config).
        assert "ServerSideEncryption" not in head
        assert "SSEKMSKeyId" not in head
        assert head["Metadata"]["uploaded-by"] == "app-server"
        assert head["ContentType"]
        assert head["CacheControl"]
        tags = s3.get_object_tagging(Bucket=app.name, Key=key)["TagSet"]
        assert {"Key": "classification", "Value": "internal"} in tags
    site = seeded.summary.bucket("legacy-static-site")
    assert {o["Key"] for o in s3.list_objects_v2(Bucket=site.name)["Contents"]} == set(site.keys)


def test_one_object_grants_public_read(seeded: Seeded, client: Callable[[str], Any]) -> None:
    bucket, key = seeded.summary.public_read_object
    grants = client("s3").get_object_acl(Bucket=bucket, Key=key)["Grants"]
    public = [g for g in grants if g["Grantee"].get("URI", "").endswith("/global/AllUsers")]
    assert [g["Permission"] for g in public] == ["READ"]
    assert any(g["Permission"] == "FULL_CONTROL" for g in grants)


def test_backups_bucket_keeps_two_versions_per_key(
    seeded: Seeded, client: Callable[[str], Any]
) -> None:
    s3 = client("s3")
    backups = seeded.summary.bucket("legacy-backups")
    assert backups.versioned
    assert s3.get_bucket_versioning(Bucket=backups.name)["Status"] == "Enabled"
    versions = s3.list_object_versions(Bucket=backups.name)["Versions"]
    assert Counter(v["Key"] for v in versions) == dict.fromkeys(backups.keys, 2)


def test_iam_users_have_the_reported_access_keys(
    seeded: Seeded, client: Callable[[str], Any]
) -> None:
    iam = client("iam")
    assert {u.name for u in seeded.summary.users} == {"app-server", "batch-reports", "old-deployer"}
    for user in seeded.summary.users:
        keys = iam.list_access_keys(UserName=user.name)["AccessKeyMetadata"]
        assert [k["AccessKeyId"] for k in keys] == [user.access_key_id]
        assert keys[0]["Status"] == "Active"
        assert iam.list_user_policies(UserName=user.name)["PolicyNames"]
    policy = iam.get_user_policy(UserName="app-server", PolicyName="app-server-access")
    document = policy["PolicyDocument"]
    if isinstance(document, str):
        document = json.loads(document)
    actions = {a for s in document["Statement"] for a in _as_list(s["Action"])}
    assert {"s3:GetObject", "s3:PutObject", "rds:Describe*"} <= actions
    last_used = iam.get_access_key_last_used(
        AccessKeyId=seeded.summary.access_key_id("old-deployer")
    )
    assert "LastUsedDate" not in last_used["AccessKeyLastUsed"]


def _as_list(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else value


def test_instance_has_the_known_private_ip(seeded: Seeded, client: Callable[[str], Any]) -> None:
    ec2 = client("ec2")
    found = ec2.describe_instances(
        Filters=[{"Name": "private-ip-address", "Values": [seeded.summary.instance_private_ip]}]
    )["Reservations"]
    instances = [i for r in found for i in r["Instances"]]
    assert [i["InstanceId"] for i in instances] == [seeded.summary.instance_id]
    instance = instances[0]
    assert instance["PrivateIpAddress"] == "10.0.1.10"
    assert instance["InstanceType"] == "t3.micro"
    assert instance["VpcId"] == seeded.summary.vpc_id
    assert {t["Key"]: t["Value"] for t in instance["Tags"]}["Name"] == "legacy-app-1"
    assert "IamInstanceProfile" not in instance


def test_cloudtrail_files_are_gzip_json_in_the_cloudtrail_layout(
    seeded: Seeded, client: Callable[[str], Any]
) -> None:
    s3 = client("s3")
    summary = seeded.summary
    trails = client("cloudtrail").describe_trails(trailNameList=[summary.trail_name])["trailList"]
    assert trails[0]["S3BucketName"] == summary.log_bucket
    listed = s3.list_objects_v2(Bucket=summary.log_bucket, Prefix="AWSLogs/")["Contents"]
    keys = [o["Key"] for o in listed]
    log_keys = [k for k in keys if "/CloudTrail/" in k]
    assert sorted(log_keys) == sorted(summary.cloudtrail_log_keys)
    days = set()
    for key in log_keys:
        match = LOG_KEY.match(key)
        assert match, key
        assert match.group(4) == "".join(match.group(1, 2, 3))
        days.add(match.group(4))
        body = s3.get_object(Bucket=summary.log_bucket, Key=key)["Body"].read()
        assert body[:2] == b"\x1f\x8b"
        assert json.loads(gzip.decompress(body))["Records"]
    assert days == {
        f"{TRAIL_FIRST_DAY + timedelta(days=offset):%Y%m%d}" for offset in range(TRAIL_DAYS)
    }

    digests = [k for k in keys if "/CloudTrail-Digest/" in k]
    assert digests == [summary.cloudtrail_digest_key]
    digest = json.loads(
        gzip.decompress(s3.get_object(Bucket=summary.log_bucket, Key=digests[0])["Body"].read())
    )
    assert "Records" not in digest
    assert {f["s3Object"] for f in digest["logFiles"]} == set(log_keys)


def test_cloudtrail_records_look_real(trail_records: list[dict[str, Any]]) -> None:
    assert trail_records
    for record in trail_records:
        assert record.keys() >= RECORD_FIELDS, record
        assert record["eventType"] == "AwsApiCall"
        assert record["recipientAccountId"] == ACCOUNT
        moment = datetime.strptime(record["eventTime"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        first = datetime.combine(TRAIL_FIRST_DAY, datetime.min.time(), tzinfo=UTC)
        assert first <= moment < first + timedelta(days=TRAIL_DAYS)
        if record["eventCategory"] == "Data":
            assert record["managementEvent"] is False
            assert record["resources"]
    assert len({r["eventID"] for r in trail_records}) == len(trail_records)


def test_cloudtrail_shows_who_used_which_key_from_where(
    seeded: Seeded, trail_records: list[dict[str, Any]]
) -> None:
    summary = seeded.summary
    by_key: dict[str, list[dict[str, Any]]] = {}
    for record in trail_records:
        key_id = record["userIdentity"].get("accessKeyId")
        if key_id:
            by_key.setdefault(key_id, []).append(record)

    app = by_key[summary.access_key_id("app-server")]
    assert {r["sourceIPAddress"] for r in app} == {summary.instance_private_ip}
    assert {r["userIdentity"]["userName"] for r in app} == {"app-server"}
    assert {(r["eventSource"], r["eventName"]) for r in app} == {
        ("s3.amazonaws.com", "GetObject"),
        ("s3.amazonaws.com", "PutObject"),
        ("s3.amazonaws.com", "ListBuckets"),
        ("rds.amazonaws.com", "DescribeDBInstances"),
    }
    get = next(r for r in app if r["eventName"] == "GetObject")
    assert get["requestParameters"]["bucketName"] == "legacy-app-data"
    assert get["requestParameters"]["key"] in summary.bucket("legacy-app-data").keys
    assert {r["type"] for r in get["resources"]} == {"AWS::S3::Object", "AWS::S3::Bucket"}

    batch = by_key[summary.access_key_id("batch-reports")]
    assert {r["sourceIPAddress"] for r in batch} == {"203.0.113.50"}
    assert {"ListObjects", "GetObject"} <= {r["eventName"] for r in batch}

    assert summary.access_key_id("old-deployer") not in by_key
    denied = [r for r in trail_records if r.get("errorCode") == "AccessDenied"]
    assert len(denied) == 1
    service = [r for r in trail_records if r["userIdentity"]["type"] == "AWSService"]
    assert service
    assert service[0]["sourceIPAddress"] == "s3.amazonaws.com"
    assert "accessKeyId" not in service[0]["userIdentity"]


def test_config_files_hold_the_legacy_credentials(seeded: Seeded) -> None:
    config_dir = seeded.workdir / "configs"
    assert seeded.summary.config_dir == config_dir
    expected = {
        "tomcat/conf/context.xml",
        "app/application.properties",
        "app/.env",
        "app/application.yml",
    }
    assert {p.relative_to(config_dir).as_posix() for p in seeded.summary.config_files} == expected

    context = ET.parse(config_dir / "tomcat/conf/context.xml").getroot()
    resource = context.find("Resource")
    assert resource is not None
    assert resource.get("name") == "jdbc/legacy"
    assert resource.get("driverClassName") == "com.mysql.cj.jdbc.Driver"
    assert (resource.get("url") or "").startswith("jdbc:mysql://legacy-mysql.")
    assert resource.get("password") == seed_module.TOMCAT_DB_PASSWORD

    properties = (config_dir / "app/application.properties").read_text()
    assert f"db.password={seed_module.TOMCAT_DB_PASSWORD}\n" in properties
    assert f"aws.secretKey={seed_module.FAKE_AWS_SECRET_KEY}\n" in properties
    assert f"aws.accessKey={seeded.summary.access_key_id('app-server')}\n" in properties
    assert "server.port=8080\n" in properties and properties.startswith("# ")

    dotenv = (config_dir / "app/.env").read_text()
    assert re.search(r"^DATABASE_URL=postgres://reports:[^@]+@legacy-postgres\.", dotenv, re.M)
    assert f"API_TOKEN={seed_module.FAKE_API_TOKEN}\n" in dotenv
    assert "LOG_LEVEL=info\n" in dotenv

    spring = yaml.safe_load((config_dir / "app/application.yml").read_text())
    assert spring["spring"]["datasource"]["password"] == seed_module.REPORTS_DB_PASSWORD
    assert spring["server"]["port"] == 8081


def _moto_secrets(summary: SeedSummary) -> list[str]:
    """The secrets only moto knows: IAM secret access keys and RDS master passwords.

    The server runs in this process, so its backends can be asked directly.
    """
    from moto.iam.models import iam_backends
    from moto.rds.models import rds_backends

    found = []
    iam = iam_backends[ACCOUNT]["aws"]
    for user in summary.users:
        found += [key.secret_access_key for key in iam.users[user.name].access_keys]
    rds = rds_backends[ACCOUNT][summary.region]
    for db_id in summary.db_instances:
        found.append(str(rds.databases[db_id]._master_user_password))
    return [str(secret) for secret in found]


def test_no_moto_secret_reaches_the_workdir_or_the_summary(seeded: Seeded) -> None:
    secrets = _moto_secrets(seeded.summary)
    assert len(secrets) == 5 and all(len(s) >= 16 for s in secrets)
    files = [p for p in seeded.workdir.rglob("*") if p.is_file()]
    assert files
    for path in files:
        content = path.read_bytes()
        for secret in secrets:
            assert secret.encode() not in content, f"a secret leaked into {path}"
    for secret in secrets:
        assert secret not in repr(seeded.summary)


def test_seeding_again_changes_nothing(seeded: Seeded, client: Callable[[str], Any]) -> None:
    s3 = client("s3")
    before = s3.list_objects_v2(Bucket=seeded.summary.log_bucket)["KeyCount"]
    again = seed(seeded.server.endpoint_url, seeded.workdir)
    assert again == seeded.summary
    assert s3.list_objects_v2(Bucket=seeded.summary.log_bucket)["KeyCount"] == before
    versions = s3.list_object_versions(Bucket="legacy-backups")["Versions"]
    assert len(versions) == 2 * len(seeded.summary.bucket("legacy-backups").keys)


def test_recording_counts_exactly_one_mutating_request(
    seeded: Seeded, client: Callable[[str], Any]
) -> None:
    s3 = client("s3")
    server = seeded.server
    server.start_recording()
    try:
        s3.put_object(Bucket="legacy-app-data", Key="recorded/probe.txt", Body=b"probe")
        s3.get_object(Bucket="legacy-app-data", Key="recorded/probe.txt")["Body"].read()
    finally:
        server.stop_recording()
    recorded = server.recorded_requests()
    assert [(r["method"], r["path"]) for r in recorded] == [
        ("PUT", "/legacy-app-data/recorded/probe.txt"),
        ("GET", "/legacy-app-data/recorded/probe.txt"),
    ]
    assert [r["operation"] for r in recorded] == [
        "S3:PUT /legacy-app-data/recorded/probe.txt",
        "S3:GET /legacy-app-data/recorded/probe.txt",
    ]
    assert recorded[0]["body"] == b"probe"
    assert [is_mutating_request(r) for r in recorded] == [True, False]

    # Query and JSON protocols are named by their operation.
    server.start_recording()
    try:
        client("rds").describe_db_instances()
        client("iam").tag_user(UserName="old-deployer", Tags=[{"Key": "k", "Value": "v"}])
        client("kms").list_keys()
    finally:
        server.stop_recording()
    s3.delete_object(Bucket="legacy-app-data", Key="recorded/probe.txt")
    named = [
        (r["protocol"], r["operation"], is_mutating_request(r)) for r in server.recorded_requests()
    ]
    assert named == [
        ("query", "DescribeDBInstances", False),
        ("query", "TagUser", True),
        ("json", "ListKeys", False),
    ]


def _line(method: str, url: str, headers: dict[str, str], body: bytes | None) -> dict[str, Any]:
    encoded = body is not None
    text = base64.b64encode(body).decode() if body is not None else ""
    return {"headers": headers, "method": method, "url": url, "body": text, "body_encoded": encoded}


@pytest.mark.parametrize(
    ("line", "operation", "mutating"),
    [
        (_line("POST", "http://h/", {"X-Amz-Target": "TrentService.CreateKey"}, b"{}"),
         "CreateKey", True),
        (_line("POST", "http://h/", {"X-Amz-Target": "AmazonSSM.GetParameter"}, b"{}"),
         "GetParameter", False),
        (_line("POST", "http://h/", {"Content-Type": "application/x-www-form-urlencoded"},
               b"Action=CreateUser&Version=2010-05-08&UserName=u"), "CreateUser", True),
        (_line("GET", "http://h/?Action=DescribeInstances&Version=2016-11-15", {}, None),
         "DescribeInstances", False),
        (_line("DELETE", "http://h/b/k", {}, None), "REST:DELETE /b/k", True),
        (_line("HEAD", "http://h/b/k", {}, None), "REST:HEAD /b/k", False),
        (_line("POST", "http://h/b?delete", {}, b"<Delete/>"), "REST:POST /b?delete", True),
        (_line("POST", "http://h/moto-api/reset", {}, b""), "moto-api:POST /moto-api/reset",
         False),
    ],
)  # fmt: skip
def test_recorded_lines_are_classified(
    line: dict[str, Any], operation: str, mutating: bool
) -> None:
    record = parse_recorded_line(line)
    assert record["operation"] == operation
    assert is_mutating_request(record) is mutating


def test_recorder_methods_need_recording_enabled() -> None:
    server = SandboxServer()
    with pytest.raises(RuntimeError):
        server.start_recording()
    with pytest.raises(RuntimeError):
        _ = server.endpoint_url


def test_the_account_lacks_what_the_ftr_baseline_adds(
    seeded: Seeded, client: Callable[[str], Any]
) -> None:
    """No archive trail, no password policy, an instance with SSH open and no SSM role."""
    summary = seeded.summary
    trails = client("cloudtrail").describe_trails()["trailList"]
    assert [t["Name"] for t in trails] == [summary.trail_name]
    assert not trails[0]["IsMultiRegionTrail"] and not trails[0].get("KmsKeyId")
    with pytest.raises(ClientError, match="NoSuchEntity"):
        client("iam").get_account_password_policy()
    ec2 = client("ec2")
    group = ec2.describe_security_groups(GroupIds=[summary.app_security_group_id])
    ssh = [
        r["CidrIp"]
        for p in group["SecurityGroups"][0]["IpPermissions"]
        if p.get("FromPort") == 22
        for r in p.get("IpRanges", [])
    ]
    assert ssh == ["0.0.0.0/0"]
    instance = ec2.describe_instances(InstanceIds=[summary.instance_id])["Reservations"][0][
        "Instances"
    ][0]
    assert "IamInstanceProfile" not in instance


def test_account_api_reads_are_not_counted_as_mutating() -> None:
    # The Account API names its operation in a POST path; only its reads are harmless.
    def rest(method: str, path: str) -> dict[str, Any]:
        return {"method": method, "path": path, "protocol": "rest", "operation": path}

    assert not is_mutating_request(rest("POST", "/getAlternateContact"))
    assert is_mutating_request(rest("POST", "/putAlternateContact"))
    assert is_mutating_request(rest("POST", "/getbucket"))  # an S3 bucket name is lowercase
