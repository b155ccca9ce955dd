"""The policies an archive trail needs: its bucket's and its key's statements.

Written after AWS's CloudTrail user guide ("Amazon S3 bucket policy for CloudTrail", "Configure
AWS KMS key policies for CloudTrail"): CloudTrail checks the bucket ACL and writes under
``AWSLogs/<account>/``, both conditioned on the trail's ARN (``aws:SourceArn``) and account
(``aws:SourceAccount``) so that no other trail can write into the archive; it uses the key only
through ``kms:GenerateDataKey*`` within its own encryption context, again for that trail only.
"""

from __future__ import annotations

from typing import Any

from migrate.aws.policies import tls_only_statement

CLOUDTRAIL = "cloudtrail.amazonaws.com"
BUCKET_SIDS = (
    "MigrateCloudTrailAclCheck",
    "MigrateCloudTrailWrite",
    "MigrateDenyInsecureTransport",
    "MigrateDenyDeletes",
)
KEY_SIDS = ("MigrateCloudTrailEncrypt", "MigrateCloudTrailDescribeKey", "MigrateCloudTrailDecrypt")


def trail_arn(region: str, account: str, name: str) -> str:
    """The ARN a trail ``name`` of ``account`` with home ``region`` has (known before it exists)."""
    return f"arn:aws:cloudtrail:{region}:{account}:trail/{name}"


def bucket_statements(bucket: str, account: str, trail: str) -> list[dict[str, Any]]:
    """The archive bucket's statements: CloudTrail delivery of this trail only, TLS only, and no
    deletes (object versions are also held by Object Lock; this stops deletes of the bucket and of
    delete markers' targets by anyone, including administrators who are not root)."""
    source = {"aws:SourceArn": trail, "aws:SourceAccount": account}
    return [
        {
            "Sid": "MigrateCloudTrailAclCheck",
            "Effect": "Allow",
            "Principal": {"Service": CLOUDTRAIL},
            "Action": "s3:GetBucketAcl",
            "Resource": f"arn:aws:s3:::{bucket}",
            "Condition": {"StringEquals": source},
        },
        {
            "Sid": "MigrateCloudTrailWrite",
            "Effect": "Allow",
            "Principal": {"Service": CLOUDTRAIL},
            "Action": "s3:PutObject",
            "Resource": f"arn:aws:s3:::{bucket}/AWSLogs/{account}/*",
            "Condition": {
                "StringEquals": {**source, "s3:x-amz-acl": "bucket-owner-full-control"},
            },
        },
        tls_only_statement(bucket, sid="MigrateDenyInsecureTransport"),
        {
            "Sid": "MigrateDenyDeletes",
            "Effect": "Deny",
            "Principal": "*",
            "Action": ["s3:DeleteBucket", "s3:DeleteObject", "s3:DeleteObjectVersion"],
            "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"],
        },
    ]


def key_statements(account: str, trail: str) -> list[dict[str, Any]]:
    """The key policy statements CloudTrail needs to encrypt this trail's logs and digests, and
    that readers in the account need to decrypt them (``cloudtrail.usage`` reads them)."""
    context = {
        "kms:EncryptionContext:aws:cloudtrail:arn": f"arn:aws:cloudtrail:*:{account}:trail/*"
    }
    return [
        {
            "Sid": "MigrateCloudTrailEncrypt",
            "Effect": "Allow",
            "Principal": {"Service": CLOUDTRAIL},
            "Action": "kms:GenerateDataKey*",
            "Resource": "*",
            "Condition": {"StringEquals": {"aws:SourceArn": trail}, "StringLike": context},
        },
        {
            "Sid": "MigrateCloudTrailDescribeKey",
            "Effect": "Allow",
            "Principal": {"Service": CLOUDTRAIL},
            "Action": "kms:DescribeKey",
            "Resource": "*",
            "Condition": {"StringEquals": {"aws:SourceArn": trail}},
        },
        {
            "Sid": "MigrateCloudTrailDecrypt",
            "Effect": "Allow",
            "Principal": {"AWS": "*"},
            "Action": ["kms:Decrypt", "kms:ReEncryptFrom"],
            "Resource": "*",
            "Condition": {"StringEquals": {"kms:CallerAccount": account}, "StringLike": context},
        },
    ]
