"""Seed a running sandbox with the "legacy AWS account" that the demo migrates.

:func:`seed` creates, in moto's default account 123456789012: two unencrypted RDS instances with
custom parameter groups in a custom VPC security group, four S3 buckets (unencrypted objects with
metadata and tags, a public-read ACL grant, a versioned backup bucket, a CloudTrail log bucket),
three IAM users with access keys, one EC2 instance with a fixed private IP (no instance profile,
SSH open to 0.0.0.0/0 in its security group), a week of
CloudTrail-format log files (from a single-Region trail without KMS: no archive trail), and a
directory of application config files holding credentials. The account has no IAM password
policy, no alternate contacts, no S3 Block Public Access and no EBS encryption by default.

Everything is deterministic (names, object bodies, log records, file names, config files) except
identifiers moto generates (access key ids, user ids, instance/VPC/SG ids), which the log records
and configs reference and :class:`SeedSummary` reports. The RDS master passwords are random per
call and never leave this module; IAM secret access keys are dropped as soon as moto returns them.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import secrets
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import botocore.session
from botocore.config import Config
from botocore.exceptions import ClientError

from migrate.sandbox.server import sandbox_env

ACCOUNT_ID = "123456789012"  # moto's default account

VPC_CIDR = "10.0.0.0/16"
# (CIDR, AZ suffix): two AZs because an RDS subnet group needs them.
SUBNETS = (("10.0.1.0/24", "a"), ("10.0.2.0/24", "b"))
DB_SUBNET_GROUP = "legacy-db-subnets"
DB_SECURITY_GROUP = "legacy-db-sg"
APP_SECURITY_GROUP = "legacy-app-sg"
MYSQL_ID = "legacy-mysql"
POSTGRES_ID = "legacy-postgres"
MYSQL_PARAMS = "legacy-mysql-params"
POSTGRES_PARAMS = "legacy-postgres-params"

APP_DATA_BUCKET = "legacy-app-data"
BACKUPS_BUCKET = "legacy-backups"
STATIC_SITE_BUCKET = "legacy-static-site"
# ACLs disabled (BucketOwnerEnforced), one SSE-S3 object and one archived object: the paths where
# s3.reencrypt skips ACL calls, uses its update lane or copy fallback, and skips-and-lists.
UPLOADS_BUCKET = "legacy-uploads"
LOG_BUCKET = "legacy-cloudtrail-logs"
TRAIL_NAME = "legacy-trail"
PUBLIC_READ_KEY = "public/logo.png"
ALL_USERS_URI = "http://acs.amazonaws.com/groups/global/AllUsers"

APP_USER = "app-server"
BATCH_USER = "batch-reports"
DEPLOYER_USER = "old-deployer"

INSTANCE_NAME = "legacy-app-1"
INSTANCE_PRIVATE_IP = "10.0.1.10"
INSTANCE_TYPE = "t3.micro"
# Amazon Linux 2 from 2018, as a legacy box would run; moto ships it in its AMI list.
AMI_NAME = "amzn2-ami-hvm-2.0.20180810-x86_64-gp2"
FALLBACK_AMI_ID = "ami-12c6146b"

BATCH_SOURCE_IP = "203.0.113.50"  # TEST-NET-3: "somewhere outside AWS"
# The CloudTrail window: the week before yesterday, relative to today, so that a 90-day evidence
# window holds the sandbox's logs in any year (fixed dates made `make demo` tell "never used" once
# the calendar moved past them). Within a day the files are the same on every run.
TRAIL_DAYS = 7
TRAIL_FIRST_DAY = datetime.now(UTC).date() - timedelta(days=TRAIL_DAYS + 1)

# Credentials that the legacy config files contain. All fake; none is an AWS or RDS secret the
# sandbox knows, so a test can look for them on disk without exposing anything.
TOMCAT_DB_PASSWORD = "Tomcat-Legacy-2019!"
REPORTS_DB_PASSWORD = "Reports-Pass-2020"
FAKE_AWS_SECRET_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYSANDBOXFAKE"
FAKE_API_TOKEN = "tok_live_sandbox_4f9c2a7e1b3d5f60a8c2"
CONFIG_SECRET_VALUES = (
    TOMCAT_DB_PASSWORD,
    REPORTS_DB_PASSWORD,
    FAKE_AWS_SECRET_KEY,
    FAKE_API_TOKEN,
)

# Namespace for the deterministic CloudTrail eventIDs (uuid5).
_EVENT_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://migrate.invalid/sandbox/cloudtrail")
_ALNUM = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_JAVA_SDK_UA = (
    "aws-sdk-java/1.11.820 Linux/4.14.186-146.268.amzn2.x86_64 "
    "OpenJDK_64-Bit_Server_VM/25.252-b09 java/1.8.0_252 vendor/Oracle_Corporation"
)
_CLI_UA = "aws-cli/1.18.69 Python/3.6.9 Linux/4.15.0-1065-aws botocore/1.16.19"


@dataclass(frozen=True)
class SeededUser:
    """An IAM user and the id of its (only) access key. The secret is never kept."""

    name: str
    access_key_id: str
    user_id: str


@dataclass(frozen=True)
class SeededBucket:
    """A bucket and the object keys seeded into it."""

    name: str
    keys: tuple[str, ...]
    versioned: bool = False


@dataclass(frozen=True)
class SeedSummary:
    """What :func:`seed` created. Holds no secret."""

    account_id: str
    region: str
    vpc_id: str
    subnet_ids: tuple[str, ...]
    s3_vpc_endpoint_id: str
    db_instances: tuple[str, ...]
    db_parameter_groups: tuple[str, ...]
    db_subnet_group: str
    db_security_group_id: str
    buckets: tuple[SeededBucket, ...]
    public_read_object: tuple[str, str]
    log_bucket: str
    trail_name: str
    cloudtrail_log_keys: tuple[str, ...]
    cloudtrail_digest_key: str
    users: tuple[SeededUser, ...]
    instance_id: str
    instance_private_ip: str
    app_security_group_id: str
    config_dir: Path
    config_files: tuple[Path, ...]

    @property
    def bucket_names(self) -> tuple[str, ...]:
        """Names of every seeded bucket, log bucket included."""
        return tuple(bucket.name for bucket in self.buckets)

    def bucket(self, name: str) -> SeededBucket:
        """The seeded bucket called ``name``."""
        for bucket in self.buckets:
            if bucket.name == name:
                return bucket
        raise KeyError(name)

    def user(self, name: str) -> SeededUser:
        """The seeded IAM user called ``name``."""
        for user in self.users:
            if user.name == name:
                return user
        raise KeyError(name)

    def access_key_id(self, user_name: str) -> str:
        """The access key id of the seeded IAM user ``user_name``."""
        return self.user(user_name).access_key_id


@contextmanager
def _exists_ok(*codes: str) -> Iterator[None]:
    """Swallow the "already exists" errors a second seeding run gets."""
    try:
        yield
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") not in codes:
            raise


class _Clients:
    def __init__(self, endpoint_url: str, region: str) -> None:
        env = sandbox_env(endpoint_url)
        # The operator's AWS_PROFILE means nothing to the sandbox and may not even exist on this
        # machine (ProfileNotFound): read no profile name from the environment.
        core = botocore.session.Session(session_vars={"profile": (None, None, None, None)})
        # Typed as Any: boto3-stubs' overloads want a literal service name.
        self._session: Any = boto3.session.Session(
            botocore_session=core,
            aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
            region_name=region,
        )
        self._endpoint_url = endpoint_url
        self._config = Config(retries={"max_attempts": 2}, s3={"addressing_style": "path"})
        self._clients: dict[str, Any] = {}

    def __getitem__(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = self._session.client(
                service, endpoint_url=self._endpoint_url, config=self._config
            )
        return self._clients[service]


def seed(endpoint_url: str, workdir: Path, region: str = "us-east-1") -> SeedSummary:
    """Create the legacy account in the sandbox at ``endpoint_url``; configs go to ``workdir``.

    ``workdir / "configs"`` receives the legacy config files (overwritten if present). Safe to call
    twice against the same server: existing resources are reused, nothing is duplicated. Takes about
    two seconds against an in-process server. Returns what was created; holds no secret.
    """
    clients = _Clients(endpoint_url, region)
    network = _seed_network(clients, region)
    dbs = _seed_rds(clients, network)
    buckets = _seed_s3(clients, region)
    users = _seed_iam(clients)
    instance_id = _seed_instance(clients, network)
    log_keys, digest_key = _seed_cloudtrail(clients, region, users, network)
    config_dir = Path(workdir) / "configs"
    config_files = _write_configs(config_dir, dbs, users)
    log_bucket = SeededBucket(LOG_BUCKET, (*log_keys, digest_key))
    return SeedSummary(
        account_id=ACCOUNT_ID,
        region=region,
        vpc_id=network.vpc_id,
        subnet_ids=network.subnet_ids,
        s3_vpc_endpoint_id=network.s3_endpoint_id,
        db_instances=(MYSQL_ID, POSTGRES_ID),
        db_parameter_groups=(MYSQL_PARAMS, POSTGRES_PARAMS),
        db_subnet_group=DB_SUBNET_GROUP,
        db_security_group_id=network.db_sg_id,
        buckets=(*buckets, log_bucket),
        public_read_object=(APP_DATA_BUCKET, PUBLIC_READ_KEY),
        log_bucket=LOG_BUCKET,
        trail_name=TRAIL_NAME,
        cloudtrail_log_keys=log_keys,
        cloudtrail_digest_key=digest_key,
        users=users,
        instance_id=instance_id,
        instance_private_ip=INSTANCE_PRIVATE_IP,
        app_security_group_id=network.app_sg_id,
        config_dir=config_dir,
        config_files=config_files,
    )


# --- network ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Network:
    vpc_id: str
    subnet_ids: tuple[str, ...]
    db_sg_id: str
    app_sg_id: str
    s3_endpoint_id: str


def _name_tag(name: str, resource_type: str) -> list[dict[str, Any]]:
    return [{"ResourceType": resource_type, "Tags": [{"Key": "Name", "Value": name}]}]


def _seed_network(clients: _Clients, region: str) -> _Network:
    ec2 = clients["ec2"]
    vpcs = ec2.describe_vpcs(Filters=[{"Name": "tag:Name", "Values": ["legacy-vpc"]}])["Vpcs"]
    if vpcs:
        vpc_id = vpcs[0]["VpcId"]
    else:
        vpc_id = ec2.create_vpc(
            CidrBlock=VPC_CIDR, TagSpecifications=_name_tag("legacy-vpc", "vpc")
        )["Vpc"]["VpcId"]

    subnet_ids = []
    for cidr, az in SUBNETS:
        found = ec2.describe_subnets(
            Filters=[
                {"Name": "vpc-id", "Values": [vpc_id]},
                {"Name": "cidr-block", "Values": [cidr]},
            ]
        )["Subnets"]
        if found:
            subnet_ids.append(found[0]["SubnetId"])
            continue
        subnet = ec2.create_subnet(
            VpcId=vpc_id,
            CidrBlock=cidr,
            AvailabilityZone=f"{region}{az}",
            TagSpecifications=_name_tag(f"legacy-private-{az}", "subnet"),
        )["Subnet"]
        subnet_ids.append(subnet["SubnetId"])

    app_sg_id = _security_group(ec2, vpc_id, APP_SECURITY_GROUP, "legacy app servers")
    db_sg_id = _security_group(ec2, vpc_id, DB_SECURITY_GROUP, "legacy databases")
    # The databases accept MySQL and Postgres from the app servers only.
    with _exists_ok("InvalidPermission.Duplicate"):
        ec2.authorize_security_group_ingress(
            GroupId=db_sg_id,
            IpPermissions=[
                {
                    "IpProtocol": "tcp",
                    "FromPort": port,
                    "ToPort": port,
                    "UserIdGroupPairs": [{"GroupId": app_sg_id}],
                }
                for port in (3306, 5432)
            ],
        )

    # The legacy way in: SSH to the app servers from anywhere (the FTR flags it; Session
    # Manager replaces it).
    with _exists_ok("InvalidPermission.Duplicate"):
        ec2.authorize_security_group_ingress(
            GroupId=app_sg_id,
            IpPermissions=[
                {
                    "IpProtocol": "tcp",
                    "FromPort": 22,
                    "ToPort": 22,
                    "IpRanges": [{"CidrIp": "0.0.0.0/0", "Description": "ssh from anywhere"}],
                }
            ],
        )

    # The app reaches S3 through a gateway endpoint, which is why CloudTrail shows its private IP.
    s3_service = f"com.amazonaws.{region}.s3"
    endpoints = ec2.describe_vpc_endpoints(
        Filters=[
            {"Name": "vpc-id", "Values": [vpc_id]},
            {"Name": "service-name", "Values": [s3_service]},
        ]
    )["VpcEndpoints"]
    if endpoints:
        s3_endpoint_id = endpoints[0]["VpcEndpointId"]
    else:
        s3_endpoint_id = ec2.create_vpc_endpoint(
            VpcId=vpc_id, ServiceName=s3_service, VpcEndpointType="Gateway"
        )["VpcEndpoint"]["VpcEndpointId"]
    return _Network(vpc_id, tuple(subnet_ids), db_sg_id, app_sg_id, s3_endpoint_id)


def _security_group(ec2: Any, vpc_id: str, name: str, description: str) -> str:
    found = ec2.describe_security_groups(
        Filters=[
            {"Name": "vpc-id", "Values": [vpc_id]},
            {"Name": "group-name", "Values": [name]},
        ]
    )["SecurityGroups"]
    if found:
        return str(found[0]["GroupId"])
    return str(
        ec2.create_security_group(
            GroupName=name,
            Description=description,
            VpcId=vpc_id,
            TagSpecifications=_name_tag(name, "security-group"),
        )["GroupId"]
    )


# --- RDS --------------------------------------------------------------------------------------


_DB_TAGS = [
    {"Key": "Environment", "Value": "production"},
    {"Key": "Owner", "Value": "legacy-team"},
    {"Key": "CostCenter", "Value": "cc-1017"},
]


@dataclass(frozen=True)
class _Databases:
    mysql_host: str
    postgres_host: str


def _seed_rds(clients: _Clients, network: _Network) -> _Databases:
    rds = clients["rds"]
    with _exists_ok("DBSubnetGroupAlreadyExists", "DBSubnetGroupAlreadyExistsFault"):
        rds.create_db_subnet_group(
            DBSubnetGroupName=DB_SUBNET_GROUP,
            DBSubnetGroupDescription="legacy database subnets",
            SubnetIds=list(network.subnet_ids),
            Tags=_DB_TAGS,
        )
    groups = (
        (MYSQL_PARAMS, "mysql8.0", "max_connections", "500", "pending-reboot"),
        (POSTGRES_PARAMS, "postgres16", "log_min_duration_statement", "2000", "immediate"),
    )
    for name, family, parameter, value, apply_method in groups:
        with _exists_ok("DBParameterGroupAlreadyExists"):
            rds.create_db_parameter_group(
                DBParameterGroupName=name,
                DBParameterGroupFamily=family,
                Description=f"legacy {family} settings",
                Tags=_DB_TAGS,
            )
        rds.modify_db_parameter_group(
            DBParameterGroupName=name,
            Parameters=[
                {
                    "ParameterName": parameter,
                    "ParameterValue": value,
                    "ApplyMethod": apply_method,
                }
            ],
        )

    instances = (
        (MYSQL_ID, "mysql", "8.0.35", MYSQL_PARAMS, "admin"),
        (POSTGRES_ID, "postgres", "16.3", POSTGRES_PARAMS, "postgres"),
    )
    hosts: dict[str, str] = {}
    for db_id, engine, version, params, master_user in instances:
        with _exists_ok("DBInstanceAlreadyExists"):
            rds.create_db_instance(
                DBInstanceIdentifier=db_id,
                DBInstanceClass="db.t3.micro",
                Engine=engine,
                EngineVersion=version,
                AllocatedStorage=20,
                MasterUsername=master_user,
                # Random and forgotten at once: nothing in the sandbox connects as master, and a
                # constant would be one more secret sitting in the source tree.
                MasterUserPassword=secrets.token_urlsafe(24),
                DBParameterGroupName=params,
                DBSubnetGroupName=DB_SUBNET_GROUP,
                VpcSecurityGroupIds=[network.db_sg_id],
                BackupRetentionPeriod=7,
                StorageEncrypted=False,
                PubliclyAccessible=False,
                MultiAZ=False,
                Tags=[*_DB_TAGS, {"Key": "Name", "Value": db_id}],
            )
        described = rds.describe_db_instances(DBInstanceIdentifier=db_id)["DBInstances"][0]
        hosts[db_id] = described["Endpoint"]["Address"]
    return _Databases(mysql_host=hosts[MYSQL_ID], postgres_host=hosts[POSTGRES_ID])


# --- S3 ---------------------------------------------------------------------------------------


def _create_bucket(s3: Any, name: str, region: str) -> None:
    kwargs: dict[str, Any] = {"Bucket": name}
    if region != "us-east-1":
        kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
    with _exists_ok("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
        s3.create_bucket(**kwargs)
    s3.put_bucket_tagging(
        Bucket=name,
        Tagging={"TagSet": [{"Key": "Environment", "Value": "production"}]},
    )


# (key, Content-Type, Cache-Control) of legacy-app-data; 20 objects in total.
_APP_DATA_OBJECTS: tuple[tuple[str, str, str], ...] = (
    *((f"uploads/2019/invoice-{n:04d}.pdf", "application/pdf", "private") for n in range(1, 6)),
    *((f"exports/customers-2026-11-{d}.csv", "text/csv", "no-cache") for d in range(23, 28)),
    *((f"reports/weekly-{w}.json", "application/json", "max-age=300") for w in range(44, 48)),
    ("config/feature-flags.json", "application/json", "no-store"),
    ("config/settings.xml", "application/xml", "no-store"),
    ("images/banner.jpg", "image/jpeg", "public, max-age=86400"),
    ("images/avatar-default.png", "image/png", "public, max-age=86400"),
    ("docs/README.txt", "text/plain; charset=utf-8", "max-age=3600"),
    (PUBLIC_READ_KEY, "image/png", "public, max-age=86400"),
)


def _body(bucket: str, key: str, version: int = 1) -> bytes:
    # Deterministic, a few hundred bytes, different per object (and per version).
    line = f"{bucket}/{key} v{version} legacy sandbox content\n"
    return (line * (3 + len(key) % 7)).encode()


def _seed_s3(clients: _Clients, region: str) -> tuple[SeededBucket, ...]:
    s3 = clients["s3"]
    for name in (APP_DATA_BUCKET, BACKUPS_BUCKET, STATIC_SITE_BUCKET, LOG_BUCKET):
        _create_bucket(s3, name, region)

    app_keys = []
    for index, (key, content_type, cache_control) in enumerate(_APP_DATA_OBJECTS):
        s3.put_object(
            Bucket=APP_DATA_BUCKET,
            Key=key,
            Body=_body(APP_DATA_BUCKET, key),
            ContentType=content_type,
            CacheControl=cache_control,
            Metadata={"uploaded-by": APP_USER, "source-system": "legacy-app", "seq": str(index)},
            Tagging="classification=internal&team=app",
        )
        app_keys.append(key)
    owner_id = s3.list_buckets()["Owner"]["ID"]
    # The header form: moto drops Group grantees given as AccessControlPolicy (see MOTO.md).
    # Owner FULL_CONTROL is listed too, since a Grant* header replaces the whole ACL on AWS.
    s3.put_object_acl(
        Bucket=APP_DATA_BUCKET,
        Key=PUBLIC_READ_KEY,
        GrantRead=f'uri="{ALL_USERS_URI}"',
        GrantFullControl=f'id="{owner_id}"',
    )

    s3.put_bucket_versioning(Bucket=BACKUPS_BUCKET, VersioningConfiguration={"Status": "Enabled"})
    backup_keys = (
        "mysql/legacy-mysql-2026-11-28.sql.gz",
        "mysql/legacy-mysql-2026-11-29.sql.gz",
        "postgres/legacy-postgres-2026-11-28.dump",
        "postgres/legacy-postgres-2026-11-29.dump",
    )
    existing = {
        version["Key"]
        for version in s3.list_object_versions(Bucket=BACKUPS_BUCKET).get("Versions", [])
    }
    for key in backup_keys:
        if key in existing:  # a second run must not add a third version
            continue
        for version in (1, 2):
            s3.put_object(
                Bucket=BACKUPS_BUCKET,
                Key=key,
                Body=_body(BACKUPS_BUCKET, key, version),
                ContentType="application/octet-stream",
                Metadata={"backup-run": f"nightly-{version}"},
            )

    site_objects = (
        ("index.html", "text/html", b"<html><body><h1>Legacy App</h1></body></html>\n"),
        ("error.html", "text/html", b"<html><body><h1>Not found</h1></body></html>\n"),
        ("css/site.css", "text/css", b"body { font-family: sans-serif; }\n"),
        ("js/app.js", "application/javascript", b"console.log('legacy');\n"),
    )
    for key, content_type, body in site_objects:
        s3.put_object(
            Bucket=STATIC_SITE_BUCKET,
            Key=key,
            Body=body,
            ContentType=content_type,
            CacheControl="public, max-age=600",
        )
    s3.put_bucket_website(
        Bucket=STATIC_SITE_BUCKET,
        WebsiteConfiguration={
            "IndexDocument": {"Suffix": "index.html"},
            "ErrorDocument": {"Key": "error.html"},
        },
    )
    _create_bucket(s3, UPLOADS_BUCKET, region)
    s3.put_bucket_ownership_controls(
        Bucket=UPLOADS_BUCKET,
        OwnershipControls={"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]},
    )
    uploads: tuple[tuple[str, bytes, dict[str, str]], ...] = (
        ("incoming/2026-11-01.csv", b"id,amount\n1,10\n", {}),
        ("incoming/2026-11-02.csv", b"id,amount\n2,20\n", {}),
        ("exports/sse-s3.csv", b"a,b\n", {"ServerSideEncryption": "AES256"}),
        ("archive/2019.tar", b"old archive", {"StorageClass": "GLACIER"}),
    )
    for key, body, extra in uploads:
        s3.put_object(Bucket=UPLOADS_BUCKET, Key=key, Body=body, ContentType="text/csv", **extra)
    return (
        SeededBucket(APP_DATA_BUCKET, tuple(app_keys)),
        SeededBucket(BACKUPS_BUCKET, backup_keys, versioned=True),
        SeededBucket(STATIC_SITE_BUCKET, tuple(key for key, _, _ in site_objects)),
        SeededBucket(UPLOADS_BUCKET, tuple(key for key, _, _ in uploads)),
    )


# --- IAM --------------------------------------------------------------------------------------


def _policy(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


_APP_DATA_ARN = f"arn:aws:s3:::{APP_DATA_BUCKET}"
_USER_POLICIES: dict[str, tuple[str, str]] = {
    APP_USER: (
        "app-server-access",
        _policy(
            {
                "Sid": "AppData",
                "Effect": "Allow",
                "Action": ["s3:GetObject", "s3:PutObject"],
                "Resource": f"{_APP_DATA_ARN}/*",
            },
            {
                "Sid": "ListAppData",
                "Effect": "Allow",
                "Action": ["s3:ListBucket", "s3:ListAllMyBuckets"],
                "Resource": ["*"],
            },
            {"Sid": "Rds", "Effect": "Allow", "Action": "rds:Describe*", "Resource": "*"},
        ),
    ),
    BATCH_USER: (
        "batch-reports-read",
        _policy(
            {
                "Sid": "ReadReports",
                "Effect": "Allow",
                "Action": ["s3:GetObject", "s3:ListBucket"],
                "Resource": [_APP_DATA_ARN, f"{_APP_DATA_ARN}/*"],
            }
        ),
    ),
    DEPLOYER_USER: (
        "deployer-legacy",
        _policy(
            {
                "Sid": "DeploySite",
                "Effect": "Allow",
                "Action": "s3:*",
                "Resource": [
                    f"arn:aws:s3:::{STATIC_SITE_BUCKET}",
                    f"arn:aws:s3:::{STATIC_SITE_BUCKET}/*",
                ],
            },
            {"Sid": "Ec2", "Effect": "Allow", "Action": "ec2:Describe*", "Resource": "*"},
        ),
    ),
}


def _seed_iam(clients: _Clients) -> tuple[SeededUser, ...]:
    iam = clients["iam"]
    users = []
    for name, (policy_name, document) in _USER_POLICIES.items():
        with _exists_ok("EntityAlreadyExists"):
            iam.create_user(UserName=name, Tags=[{"Key": "Team", "Value": "legacy"}])
        iam.put_user_policy(UserName=name, PolicyName=policy_name, PolicyDocument=document)
        keys = iam.list_access_keys(UserName=name)["AccessKeyMetadata"]
        if keys:
            key_id = keys[0]["AccessKeyId"]
        else:
            # Only the id is kept: the secret never reaches a variable that outlives this line.
            key_id = iam.create_access_key(UserName=name)["AccessKey"]["AccessKeyId"]
        user_id = iam.get_user(UserName=name)["User"]["UserId"]
        users.append(SeededUser(name=name, access_key_id=key_id, user_id=user_id))
    return tuple(users)


# --- EC2 --------------------------------------------------------------------------------------


def _seed_instance(clients: _Clients, network: _Network) -> str:
    ec2 = clients["ec2"]
    found = ec2.describe_instances(
        Filters=[
            {"Name": "tag:Name", "Values": [INSTANCE_NAME]},
            {"Name": "instance-state-name", "Values": ["pending", "running"]},
        ]
    )["Reservations"]
    if found:
        return str(found[0]["Instances"][0]["InstanceId"])
    images = ec2.describe_images(Filters=[{"Name": "name", "Values": [AMI_NAME]}])["Images"]
    image_id = images[0]["ImageId"] if images else FALLBACK_AMI_ID
    instance = ec2.run_instances(
        ImageId=image_id,
        InstanceType=INSTANCE_TYPE,
        MinCount=1,
        MaxCount=1,
        SubnetId=network.subnet_ids[0],
        PrivateIpAddress=INSTANCE_PRIVATE_IP,
        SecurityGroupIds=[network.app_sg_id],
        TagSpecifications=[
            {
                "ResourceType": "instance",
                "Tags": [
                    {"Key": "Name", "Value": INSTANCE_NAME},
                    {"Key": "Environment", "Value": "production"},
                ],
            }
        ],
    )["Instances"][0]
    return str(instance["InstanceId"])


# --- CloudTrail -------------------------------------------------------------------------------


def _det_hex(*parts: object, length: int = 16) -> str:
    return hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()[:length].upper()


def _det_alnum(*parts: object, length: int = 16) -> str:
    digest = hashlib.sha512("|".join(map(str, parts)).encode()).digest()  # up to 64 chars
    return "".join(_ALNUM[byte % len(_ALNUM)] for byte in digest[:length])


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


class _TrailWriter:
    """Builds CloudTrail records that look like what a real trail delivers."""

    def __init__(self, region: str, users: tuple[SeededUser, ...], network: _Network) -> None:
        self.region = region
        self.users = {user.name: user for user in users}
        self.network = network
        self.records: list[dict[str, Any]] = []

    def _identity(self, user_name: str) -> dict[str, Any]:
        user = self.users[user_name]
        return {
            "type": "IAMUser",
            "principalId": user.user_id,
            "arn": f"arn:aws:iam::{ACCOUNT_ID}:user/{user.name}",
            "accountId": ACCOUNT_ID,
            "accessKeyId": user.access_key_id,
            "userName": user.name,
        }

    def _base(
        self,
        moment: datetime,
        event_source: str,
        event_name: str,
        source_ip: str,
        user_agent: str,
        *,
        read_only: bool,
        management: bool,
        identity: dict[str, Any],
    ) -> dict[str, Any]:
        seq = len(self.records)
        return {
            "eventVersion": "1.09" if management else "1.10",
            "userIdentity": identity,
            "eventTime": _iso(moment),
            "eventSource": event_source,
            "eventName": event_name,
            "awsRegion": self.region,
            "sourceIPAddress": source_ip,
            "userAgent": user_agent,
            "requestParameters": None,
            "responseElements": None,
            "requestID": _det_hex("request", seq, event_name, moment),
            "eventID": str(uuid.uuid5(_EVENT_NAMESPACE, f"{seq}|{event_name}|{_iso(moment)}")),
            "readOnly": read_only,
            "eventType": "AwsApiCall",
            "managementEvent": management,
            "recipientAccountId": ACCOUNT_ID,
            "eventCategory": "Management" if management else "Data",
        }

    def s3_object(
        self,
        moment: datetime,
        user_name: str,
        event_name: str,
        key: str | None,
        source_ip: str,
        *,
        bucket: str = APP_DATA_BUCKET,
        error: str | None = None,
    ) -> None:
        """An S3 data event (GetObject, PutObject, ListObjects) by an IAM user."""
        from_vpc = source_ip.startswith("10.")
        agent = f"[{_JAVA_SDK_UA}]" if from_vpc else f"[{_CLI_UA}]"
        read_only = event_name != "PutObject"
        record = self._base(
            moment,
            "s3.amazonaws.com",
            event_name,
            source_ip,
            agent,
            read_only=read_only,
            management=False,
            identity=self._identity(user_name),
        )
        host = f"{bucket}.s3.amazonaws.com"
        params: dict[str, Any] = {"bucketName": bucket, "Host": host}
        resources: list[dict[str, Any]] = []
        if key is None:
            params.update({"list-type": "2", "prefix": "reports/", "encoding-type": "url"})
        else:
            params["key"] = key
            resources.append({"type": "AWS::S3::Object", "ARN": f"arn:aws:s3:::{bucket}/{key}"})
        resources.append(
            {"accountId": ACCOUNT_ID, "type": "AWS::S3::Bucket", "ARN": f"arn:aws:s3:::{bucket}"}
        )
        size = len(_body(bucket, key)) if key else 0
        record["requestParameters"] = params
        record["additionalEventData"] = {
            "SignatureVersion": "SigV4",
            "CipherSuite": "ECDHE-RSA-AES128-GCM-SHA256",
            "bytesTransferredIn": size if event_name == "PutObject" else 0,
            "AuthenticationMethod": "AuthHeader",
            "x-amz-id-2": _det_alnum("id2", len(self.records), length=40),
            "bytesTransferredOut": size if event_name == "GetObject" else 0,
        }
        if error is not None:
            record["errorCode"] = error
            record["errorMessage"] = "Access Denied"
            record["additionalEventData"]["bytesTransferredIn"] = 0
        record["resources"] = resources
        record["tlsDetails"] = {
            "tlsVersion": "TLSv1.2",
            "cipherSuite": "ECDHE-RSA-AES128-GCM-SHA256",
            "clientProvidedHostHeader": host,
        }
        if from_vpc:
            record["vpcEndpointId"] = self.network.s3_endpoint_id
            record["vpcEndpointAccountId"] = ACCOUNT_ID
        self.records.append(record)

    def list_buckets(self, moment: datetime, user_name: str, source_ip: str) -> None:
        """S3 ListBuckets: a management event."""
        record = self._base(
            moment,
            "s3.amazonaws.com",
            "ListBuckets",
            source_ip,
            f"[{_JAVA_SDK_UA}]",
            read_only=True,
            management=True,
            identity=self._identity(user_name),
        )
        record["requestParameters"] = {"Host": "s3.amazonaws.com"}
        record["additionalEventData"] = {
            "SignatureVersion": "SigV4",
            "CipherSuite": "ECDHE-RSA-AES128-GCM-SHA256",
            "bytesTransferredIn": 0,
            "AuthenticationMethod": "AuthHeader",
            "x-amz-id-2": _det_alnum("id2", len(self.records), length=40),
            "bytesTransferredOut": 1250,
        }
        record["vpcEndpointId"] = self.network.s3_endpoint_id
        record["vpcEndpointAccountId"] = ACCOUNT_ID
        self.records.append(record)

    def describe_db_instances(self, moment: datetime, user_name: str, source_ip: str) -> None:
        """RDS DescribeDBInstances: a management event."""
        record = self._base(
            moment,
            "rds.amazonaws.com",
            "DescribeDBInstances",
            source_ip,
            _JAVA_SDK_UA,
            read_only=True,
            management=True,
            identity=self._identity(user_name),
        )
        record["requestParameters"] = {"dBInstanceIdentifier": MYSQL_ID}
        record["requestID"] = str(uuid.uuid5(_EVENT_NAMESPACE, record["requestID"]))
        record["apiVersion"] = "2014-10-31"
        self.records.append(record)

    def aws_service_call(self, moment: datetime) -> None:
        """A call made by an AWS service itself: no IAM user, no access key, no IP address."""
        record = self._base(
            moment,
            "s3.amazonaws.com",
            "GetBucketAcl",
            "s3.amazonaws.com",
            "s3.amazonaws.com",
            read_only=True,
            management=True,
            identity={"type": "AWSService", "invokedBy": "s3.amazonaws.com"},
        )
        record["requestParameters"] = {
            "bucketName": LOG_BUCKET,
            "Host": f"{LOG_BUCKET}.s3.amazonaws.com",
            "acl": "",
        }
        record["resources"] = [
            {
                "accountId": ACCOUNT_ID,
                "type": "AWS::S3::Bucket",
                "ARN": f"arn:aws:s3:::{LOG_BUCKET}",
            }
        ]
        self.records.append(record)


def _build_records(writer: _TrailWriter) -> None:
    app_keys = [key for key, _, _ in _APP_DATA_OBJECTS]
    first = datetime(TRAIL_FIRST_DAY.year, TRAIL_FIRST_DAY.month, TRAIL_FIRST_DAY.day, tzinfo=UTC)
    app_ip, batch_ip = INSTANCE_PRIVATE_IP, BATCH_SOURCE_IP
    for offset in range(TRAIL_DAYS):
        day = first + timedelta(days=offset)

        def at(hour: int, minute: int, second: int, day: datetime = day) -> datetime:
            return day + timedelta(hours=hour, minutes=minute, seconds=second)

        # app-server on legacy-app-1: business hours, through the S3 gateway endpoint.
        writer.list_buckets(at(9, 0, 12), APP_USER, app_ip)
        writer.describe_db_instances(at(9, 0, 40), APP_USER, app_ip)
        for n in range(3):
            key = app_keys[(offset * 3 + n) % 10]
            writer.s3_object(at(9, 10 + n * 7, 5), APP_USER, "GetObject", key, app_ip)
        export_key = f"exports/customers-2026-11-{23 + offset % 5}.csv"
        writer.s3_object(at(14, 2, 30), APP_USER, "PutObject", export_key, app_ip)
        report_key = f"reports/weekly-{44 + offset % 4}.json"
        writer.s3_object(at(14, 31, 8), APP_USER, "PutObject", report_key, app_ip)
        # batch-reports: a nightly job somewhere outside AWS.
        writer.s3_object(at(2, 0, 3), BATCH_USER, "ListObjects", None, batch_ip)
        for week in (44 + offset % 4, 44 + (offset + 1) % 4):
            key = f"reports/weekly-{week}.json"
            writer.s3_object(at(2, 0, 9), BATCH_USER, "GetObject", key, batch_ip)
        if offset == 3:
            # The job once tried to write its output back; its policy only allows reads.
            key = "reports/weekly-summary.json"
            writer.s3_object(
                at(2, 4, 51), BATCH_USER, "PutObject", key, batch_ip, error="AccessDenied"
            )
        if offset == 0:
            writer.aws_service_call(at(0, 15, 0))


def _seed_cloudtrail(
    clients: _Clients, region: str, users: tuple[SeededUser, ...], network: _Network
) -> tuple[tuple[str, ...], str]:
    cloudtrail = clients["cloudtrail"]
    s3 = clients["s3"]
    if not cloudtrail.describe_trails(trailNameList=[TRAIL_NAME])["trailList"]:
        cloudtrail.create_trail(
            Name=TRAIL_NAME, S3BucketName=LOG_BUCKET, EnableLogFileValidation=True
        )
        cloudtrail.start_logging(Name=TRAIL_NAME)
    # The sandbox's logs hold S3 data events (GetObject, PutObject): its trail says it logs them,
    # as a real trail must for keys-to-roles to trust object-level evidence.
    cloudtrail.put_event_selectors(
        TrailName=TRAIL_NAME,
        EventSelectors=[
            {
                "ReadWriteType": "All",
                "IncludeManagementEvents": True,
                "DataResources": [{"Type": "AWS::S3::Object", "Values": ["arn:aws:s3"]}],
            }
        ],
    )

    writer = _TrailWriter(region, users, network)
    _build_records(writer)
    # CloudTrail delivers a file per region roughly every 5 minutes; one per hour with events.
    files: dict[datetime, list[dict[str, Any]]] = {}
    for record in writer.records:
        moment = datetime.strptime(record["eventTime"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        delivered = moment.replace(minute=0, second=0) + timedelta(hours=1, minutes=5)
        files.setdefault(delivered, []).append(record)

    prefix = f"AWSLogs/{ACCOUNT_ID}/CloudTrail/{region}"
    log_keys = []
    digest_entries = []
    for delivered in sorted(files):
        records = sorted(files[delivered], key=lambda r: (r["eventTime"], r["eventID"]))
        stamp = delivered.strftime("%Y%m%dT%H%MZ")
        file_id = _det_alnum("log", region, stamp)
        key = (
            f"{prefix}/{delivered:%Y/%m/%d}/"
            f"{ACCOUNT_ID}_CloudTrail_{region}_{stamp}_{file_id}.json.gz"
        )
        raw = json.dumps({"Records": records}, separators=(",", ":")).encode()
        # mtime=0 keeps the gzip bytes, and so the object's ETag, identical across runs.
        s3.put_object(
            Bucket=LOG_BUCKET,
            Key=key,
            Body=gzip.compress(raw, mtime=0),
            ContentType="application/json",
            ContentEncoding="gzip",
        )
        log_keys.append(key)
        digest_entries.append(
            {
                "s3Bucket": LOG_BUCKET,
                "s3Object": key,
                "hashValue": hashlib.sha256(raw).hexdigest(),
                "hashAlgorithm": "SHA-256",
                "newestEventTime": records[-1]["eventTime"],
                "oldestEventTime": records[0]["eventTime"],
            }
        )

    digest_key = _put_digest(s3, region, digest_entries)
    return tuple(log_keys), digest_key


def _put_digest(s3: Any, region: str, entries: list[dict[str, Any]]) -> str:
    """One CloudTrail-Digest file: same bucket, no ``Records``; log readers must skip it."""
    end = datetime(TRAIL_FIRST_DAY.year, TRAIL_FIRST_DAY.month, TRAIL_FIRST_DAY.day, tzinfo=UTC)
    end += timedelta(days=TRAIL_DAYS)
    start = end - timedelta(hours=1)
    stamp = end.strftime("%Y%m%dT%H%M%SZ")
    last_day = end - timedelta(seconds=1)
    key = (
        f"AWSLogs/{ACCOUNT_ID}/CloudTrail-Digest/{region}/{last_day:%Y/%m/%d}/"
        f"{ACCOUNT_ID}_CloudTrail-Digest_{region}_{TRAIL_NAME}_{region}_{stamp}.json.gz"
    )
    digest = {
        "awsAccountId": ACCOUNT_ID,
        "digestStartTime": _iso(start),
        "digestEndTime": _iso(end),
        "digestS3Bucket": LOG_BUCKET,
        "digestS3Object": key,
        "digestPublicKeyFingerprint": _det_hex("fingerprint", length=32).lower(),
        "digestSignatureAlgorithm": "SHA256withRSA",
        "newestEventTime": entries[-1]["newestEventTime"] if entries else None,
        "oldestEventTime": entries[0]["oldestEventTime"] if entries else None,
        "previousDigestS3Bucket": None,
        "previousDigestS3Object": None,
        "previousDigestHashValue": None,
        "previousDigestHashAlgorithm": None,
        "previousDigestSignature": None,
        "logFiles": entries,
    }
    raw = json.dumps(digest, separators=(",", ":")).encode()
    s3.put_object(
        Bucket=LOG_BUCKET,
        Key=key,
        Body=gzip.compress(raw, mtime=0),
        ContentType="application/json",
        ContentEncoding="gzip",
        Metadata={
            "signature": hashlib.sha256(b"sandbox-digest|" + raw).hexdigest(),
            "signature-algorithm": "SHA256withRSA",
        },
    )
    return key


# --- config files -----------------------------------------------------------------------------


def _write_configs(
    config_dir: Path, dbs: _Databases, users: tuple[SeededUser, ...]
) -> tuple[Path, ...]:
    app_key_id = next(user.access_key_id for user in users if user.name == APP_USER)
    files = {
        "tomcat/conf/context.xml": f"""\
<?xml version="1.0" encoding="UTF-8"?>
<!-- Legacy app datasource. Edited by hand on the box since 2017 (ticket OPS-1422). -->
<Context>
    <WatchedResource>WEB-INF/web.xml</WatchedResource>
    <Resource name="jdbc/legacy" auth="Container" type="javax.sql.DataSource" driverClassName="com.mysql.cj.jdbc.Driver" url="jdbc:mysql://{dbs.mysql_host}:3306/app" username="app" password="{TOMCAT_DB_PASSWORD}" maxTotal="50" maxIdle="10" maxWaitMillis="10000"/>
    <!-- TODO: move the password out of this file -->
</Context>
""",
        "app/application.properties": f"""\
# Legacy application settings (edited on the box, not in git)
server.port=8080
app.name=legacy-app

# Database
db.url=jdbc:mysql://{dbs.mysql_host}:3306/app
db.username=app
db.password={TOMCAT_DB_PASSWORD}
db.pool.size=20

# AWS
aws.region=us-east-1
aws.accessKey={app_key_id}
aws.secretKey={FAKE_AWS_SECRET_KEY}
s3.bucket={APP_DATA_BUCKET}
logging.level.root=INFO
""",
        "app/.env": f"""\
# Environment for the reporting worker
APP_ENV=production
DATABASE_URL=postgres://reports:{REPORTS_DB_PASSWORD}@{dbs.postgres_host}:5432/reports
API_TOKEN={FAKE_API_TOKEN}
LOG_LEVEL=info
REPORT_BUCKET={APP_DATA_BUCKET}
""",
        "app/application.yml": f"""\
# Spring Boot settings for the reporting service
server:
  port: 8081
spring:
  application:
    name: legacy-reports
  datasource:
    url: jdbc:postgresql://{dbs.postgres_host}:5432/reports
    username: reports
    password: {REPORTS_DB_PASSWORD}
    driver-class-name: org.postgresql.Driver
  jpa:
    hibernate:
      ddl-auto: none  # schema is managed by hand
management:
  endpoints:
    web:
      exposure:
        include: health,info
""",
    }
    written = []
    for relative, text in files.items():
        path = config_dir / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return tuple(written)
