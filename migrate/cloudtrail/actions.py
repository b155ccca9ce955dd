"""CloudTrail ``eventSource`` + ``eventName`` -> the IAM action that authorised the call.

Most API calls are authorised by the IAM action of the same name in the service's prefix
(``kms.amazonaws.com`` + ``Decrypt`` -> ``kms:Decrypt``). Where the two differ, the exception tables
below say so; every entry was checked against the list of real IAM actions that parliament ships
(``tests/unit/test_cloudtrail_actions.py`` keeps it that way). A call that maps to nothing real
(``signin`` ``ConsoleLogin``, ``execute-api`` requests) maps to ``None`` and is reported as such.
"""

from __future__ import annotations

import re

# eventSource host -> IAM service prefix, where the two differ.
SOURCE_PREFIX: dict[str, str] = {
    "monitoring.amazonaws.com": "cloudwatch",
    "email.amazonaws.com": "ses",
    "tagging.amazonaws.com": "tag",
    "elasticfilesystem.amazonaws.com": "elasticfilesystem",
    "runtime.sagemaker.amazonaws.com": "sagemaker",
    "api.ecr.amazonaws.com": "ecr",
    "streams.dynamodb.amazonaws.com": "dynamodb",
    "sso.amazonaws.com": "sso",
    "identitystore.amazonaws.com": "identitystore",
    "ecr-public.amazonaws.com": "ecr-public",
    "data.iot.amazonaws.com": "iot",
    "s3-outposts.amazonaws.com": "s3-outposts",
}

# Services whose calls are not IAM actions at all (sign-in events, API Gateway invocations).
NO_IAM_ACTION_SOURCES = frozenset(
    {"signin.amazonaws.com", "execute-api.amazonaws.com", "health.amazonaws.com/notification"}
)

# (IAM prefix, eventName) -> IAM action name, where they differ. Keep sorted by service.
EXCEPTIONS: dict[tuple[str, str], str] = {
    # S3: the API/CloudTrail names and the IAM actions part ways often.
    ("s3", "ListBuckets"): "ListAllMyBuckets",
    ("s3", "ListObjects"): "ListBucket",
    ("s3", "ListObjectsV2"): "ListBucket",
    ("s3", "HeadBucket"): "ListBucket",
    ("s3", "HeadObject"): "GetObject",
    ("s3", "SelectObjectContent"): "GetObject",
    ("s3", "ListObjectVersions"): "ListBucketVersions",
    ("s3", "ListMultipartUploads"): "ListBucketMultipartUploads",
    ("s3", "ListParts"): "ListMultipartUploadParts",
    ("s3", "CreateMultipartUpload"): "PutObject",
    ("s3", "UploadPart"): "PutObject",
    ("s3", "UploadPartCopy"): "PutObject",
    ("s3", "CompleteMultipartUpload"): "PutObject",
    ("s3", "CopyObject"): "PutObject",
    ("s3", "DeleteObjects"): "DeleteObject",
    ("s3", "GetBucketEncryption"): "GetEncryptionConfiguration",
    ("s3", "PutBucketEncryption"): "PutEncryptionConfiguration",
    ("s3", "DeleteBucketEncryption"): "PutEncryptionConfiguration",
    ("s3", "GetBucketLifecycle"): "GetLifecycleConfiguration",
    ("s3", "GetBucketLifecycleConfiguration"): "GetLifecycleConfiguration",
    ("s3", "PutBucketLifecycle"): "PutLifecycleConfiguration",
    ("s3", "PutBucketLifecycleConfiguration"): "PutLifecycleConfiguration",
    ("s3", "DeleteBucketLifecycle"): "PutLifecycleConfiguration",
    ("s3", "GetBucketReplication"): "GetReplicationConfiguration",
    ("s3", "PutBucketReplication"): "PutReplicationConfiguration",
    ("s3", "DeleteBucketReplication"): "PutReplicationConfiguration",
    ("s3", "GetBucketCors"): "GetBucketCORS",
    ("s3", "PutBucketCors"): "PutBucketCORS",
    ("s3", "DeleteBucketCors"): "PutBucketCORS",
    ("s3", "DeleteBucketTagging"): "PutBucketTagging",
    ("s3", "GetBucketAccelerateConfiguration"): "GetAccelerateConfiguration",
    ("s3", "PutBucketAccelerateConfiguration"): "PutAccelerateConfiguration",
    ("s3", "GetBucketAnalyticsConfiguration"): "GetAnalyticsConfiguration",
    ("s3", "PutBucketAnalyticsConfiguration"): "PutAnalyticsConfiguration",
    ("s3", "ListBucketAnalyticsConfigurations"): "GetAnalyticsConfiguration",
    ("s3", "GetBucketInventoryConfiguration"): "GetInventoryConfiguration",
    ("s3", "PutBucketInventoryConfiguration"): "PutInventoryConfiguration",
    ("s3", "ListBucketInventoryConfigurations"): "GetInventoryConfiguration",
    ("s3", "GetBucketMetricsConfiguration"): "GetMetricsConfiguration",
    ("s3", "PutBucketMetricsConfiguration"): "PutMetricsConfiguration",
    ("s3", "ListBucketMetricsConfigurations"): "GetMetricsConfiguration",
    ("s3", "GetBucketIntelligentTieringConfiguration"): "GetIntelligentTieringConfiguration",
    ("s3", "PutBucketIntelligentTieringConfiguration"): "PutIntelligentTieringConfiguration",
    ("s3", "GetBucketNotificationConfiguration"): "GetBucketNotification",
    ("s3", "PutBucketNotificationConfiguration"): "PutBucketNotification",
    ("s3", "GetObjectLockConfiguration"): "GetBucketObjectLockConfiguration",
    ("s3", "PutObjectLockConfiguration"): "PutBucketObjectLockConfiguration",
    ("s3", "GetPublicAccessBlock"): "GetBucketPublicAccessBlock",
    ("s3", "PutPublicAccessBlock"): "PutBucketPublicAccessBlock",
    ("s3", "DeletePublicAccessBlock"): "PutBucketPublicAccessBlock",
    ("s3", "DeleteBucketOwnershipControls"): "PutBucketOwnershipControls",
    # Lambda: the invoke API is Invoke, the action InvokeFunction.
    ("lambda", "Invoke"): "InvokeFunction",
    ("lambda", "InvokeWithResponseStream"): "InvokeFunction",
    # DynamoDB: a read transaction is authorised as GetItem on each item (writes vary by item).
    ("dynamodb", "TransactGetItems"): "GetItem",
    # KMS: re-encryption is logged as ReEncrypt, authorised by ReEncryptFrom/ReEncryptTo.
    ("kms", "ReEncrypt"): "ReEncryptFrom",
}

# Lambda (and a few others) log API-version suffixes: CreateFunction20150331, GetFunction20150331v2.
_VERSION_SUFFIX = re.compile(r"(\d{8}(v\d+)?|\d{4}_\d{2}_\d{2})$")
# API Gateway's IAM actions are HTTP verbs on resources.
_APIGW_VERBS = (("Get", "GET"), ("Create", "POST"), ("Update", "PATCH"), ("Delete", "DELETE"))


def service_prefix(event_source: str) -> str | None:
    """The IAM prefix of an ``eventSource`` (``s3.amazonaws.com`` -> ``s3``)."""
    if event_source in NO_IAM_ACTION_SOURCES or not event_source:
        return None
    if event_source in SOURCE_PREFIX:
        return SOURCE_PREFIX[event_source]
    host = event_source.removesuffix(".amazonaws.com")
    if host == event_source and "." in event_source:
        return None  # not an AWS service endpoint
    return host


def iam_action(event_source: str, event_name: str) -> str | None:
    """The IAM action (``s3:ListAllMyBuckets``) that a CloudTrail call needs, or None."""
    prefix = service_prefix(event_source)
    if prefix is None or not event_name:
        return None
    name = _VERSION_SUFFIX.sub("", event_name) if prefix in ("lambda", "cloudfront") else event_name
    if prefix == "apigateway":
        for start, verb in _APIGW_VERBS:
            if name.startswith(start):
                return f"apigateway:{verb}"
        if name.startswith("Put"):
            return "apigateway:PUT"
        return None
    return f"{prefix}:{EXCEPTIONS.get((prefix, name), name)}"
