"""CloudTrail ``eventSource`` + ``eventName`` -> the IAM action that authorised the call.

Most API calls are authorised by the IAM action of the same name in the service's prefix
(``kms.amazonaws.com`` + ``Decrypt`` -> ``kms:Decrypt``). Where the two differ, the exception tables
below say so; every entry was checked against the list of real IAM actions that parliament ships
(``tests/unit/test_cloudtrail_actions.py`` keeps it that way). A call that maps to nothing real
(``signin`` ``ConsoleLogin``, ``execute-api`` requests) maps to ``None`` and is reported as such.
"""

from __future__ import annotations

import functools
import re
from typing import Any

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
    # DynamoDB: a read transaction is authorised as GetItem on each item; a write transaction
    # and PartiQL per item/statement (see iam_actions: the primary action here is the least).
    ("dynamodb", "TransactGetItems"): "GetItem",
    ("dynamodb", "TransactWriteItems"): "ConditionCheckItem",
    ("dynamodb", "ExecuteStatement"): "PartiQLSelect",
    ("dynamodb", "BatchExecuteStatement"): "PartiQLSelect",
    ("dynamodb", "ExecuteTransaction"): "PartiQLSelect",
    # KMS: re-encryption is logged as ReEncrypt, authorised by ReEncryptFrom *and* ReEncryptTo.
    ("kms", "ReEncrypt"): "ReEncryptFrom",
    # SQS: "you cannot set permissions for SendMessageBatch, DeleteMessageBatch or
    # ChangeMessageVisibilityBatch; permissions for SendMessage, DeleteMessage or
    # ChangeMessageVisibility cover the batch versions" (SQS Developer Guide, batch actions).
    ("sqs", "SendMessageBatch"): "SendMessage",
    ("sqs", "DeleteMessageBatch"): "DeleteMessage",
    ("sqs", "ChangeMessageVisibilityBatch"): "ChangeMessageVisibility",
    # SNS: PublishBatch is authorised by sns:Publish.
    ("sns", "PublishBatch"): "Publish",
}

# Calls that need more than one action whatever their parameters say, beyond the primary one.
ALSO_NEEDED: dict[tuple[str, str], tuple[str, ...]] = {
    # The copy reads its source: s3:GetObject on the source object.
    ("s3", "CopyObject"): ("s3:GetObject",),
    ("s3", "UploadPartCopy"): ("s3:GetObject",),
    ("kms", "ReEncrypt"): ("kms:ReEncryptTo",),
    # The function's execution role is passed: never logged as an event of its own.
    ("lambda", "CreateFunction"): ("iam:PassRole",),
    # A task runs with its definition's task and execution roles, which the caller passes (the
    # Service Authorization Reference lists iam:PassRole as RunTask's dependent action).
    ("ecs", "RunTask"): ("iam:PassRole",),
    ("ecs", "StartTask"): ("iam:PassRole",),
    # A write transaction may put, update, delete or check items: without the parameters
    # (data events) every item action it may need.
    ("dynamodb", "TransactWriteItems"): (
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:DeleteItem",
    ),
    ("dynamodb", "ExecuteStatement"): (
        "dynamodb:PartiQLInsert",
        "dynamodb:PartiQLUpdate",
        "dynamodb:PartiQLDelete",
    ),
    ("dynamodb", "BatchExecuteStatement"): (
        "dynamodb:PartiQLInsert",
        "dynamodb:PartiQLUpdate",
        "dynamodb:PartiQLDelete",
    ),
    ("dynamodb", "ExecuteTransaction"): (
        "dynamodb:PartiQLInsert",
        "dynamodb:PartiQLUpdate",
        "dynamodb:PartiQLDelete",
    ),
}
# S3 calls on one object version (``versionId`` in the request) need the *Version action.
S3_VERSIONED: dict[str, str] = {
    "GetObject": "GetObjectVersion",
    "HeadObject": "GetObjectVersion",
    "DeleteObject": "DeleteObjectVersion",
    "GetObjectAcl": "GetObjectVersionAcl",
    "PutObjectAcl": "PutObjectVersionAcl",
    "GetObjectTagging": "GetObjectVersionTagging",
    "PutObjectTagging": "PutObjectVersionTagging",
    "DeleteObjectTagging": "DeleteObjectVersionTagging",
    "GetObjectAttributes": "GetObjectVersionAttributes",
    "GetObjectTorrent": "GetObjectVersionTorrent",
}
# Request parameters (as CloudTrail logs them) that make an S3 write set an ACL or tags too.
_S3_ACL_PARAMS = (
    "x-amz-acl",
    "x-amz-grant-read",
    "x-amz-grant-read-acp",
    "x-amz-grant-write-acp",
    "x-amz-grant-full-control",
    "accessControlList",
)
_S3_WRITES = ("PutObject", "CopyObject", "CreateMultipartUpload")
_PARTIQL = {
    "SELECT": "PartiQLSelect",
    "INSERT": "PartiQLInsert",
    "UPDATE": "PartiQLUpdate",
    "DELETE": "PartiQLDelete",
    "EXISTS": "PartiQLSelect",
}
_TRANSACT_ITEM = {
    "put": "PutItem",
    "update": "UpdateItem",
    "delete": "DeleteItem",
    "conditionCheck": "ConditionCheckItem",
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


def _params_get(params: Any, name: str) -> Any:
    return params.get(name) if isinstance(params, dict) else None


def _partiql(statements: list[Any]) -> tuple[str, ...]:
    """``dynamodb:PartiQL*`` actions of PartiQL statements by their verb (None if unreadable)."""
    out: list[str] = []
    for text in statements:
        verb = text.lstrip().split(None, 1)[0].upper() if isinstance(text, str) and text else ""
        if verb not in _PARTIQL:
            return ()
        out.append("dynamodb:" + _PARTIQL[verb])
    return tuple(dict.fromkeys(out))


def iam_actions(event_source: str, event_name: str, params: Any = None) -> tuple[str, ...]:
    """Every IAM action a CloudTrail call needs, the primary (:func:`iam_action`) first.

    ``params`` is the record's ``requestParameters`` where known: a version id makes S3 reads
    and deletes ``*Version`` actions, an ACL header on a write adds ``s3:PutObjectAcl``, tags add
    ``s3:PutObjectTagging``, an instance profile on ``RunInstances`` or a role on
    ``RunTask``/``UpdateFunctionConfiguration`` adds ``iam:PassRole`` (CloudTrail never logs
    PassRole itself), and DynamoDB transactions and PartiQL statements name exactly the item
    actions they need. Without parameters the name alone decides, erring towards what the
    call may need (:data:`ALSO_NEEDED`).
    """
    primary = iam_action(event_source, event_name)
    if primary is None:
        return ()
    prefix = primary.split(":", 1)[0]
    event = (
        _VERSION_SUFFIX.sub("", event_name) if prefix in ("lambda", "cloudfront") else event_name
    )
    get = functools.partial(_params_get, params)
    actions: list[str] = [primary]
    if prefix == "s3":
        if get("versionId") and event_name in S3_VERSIONED:
            actions = ["s3:" + S3_VERSIONED[event_name]]
        if event_name in ("CopyObject", "UploadPartCopy"):
            source = get("x-amz-copy-source") or ""
            versioned = isinstance(source, str) and "versionId=" in source
            actions.append("s3:GetObjectVersion" if versioned else "s3:GetObject")
        if event_name in _S3_WRITES and any(get(p) for p in _S3_ACL_PARAMS):
            actions.append("s3:PutObjectAcl")
        if event_name in _S3_WRITES and get("x-amz-tagging"):
            actions.append("s3:PutObjectTagging")
        return tuple(dict.fromkeys(actions))
    if prefix == "dynamodb" and params is not None:
        if event in ("TransactWriteItems",):
            items = get("transactItems")
            if isinstance(items, list) and items:
                found = [
                    "dynamodb:" + _TRANSACT_ITEM[k]
                    for item in items
                    if isinstance(item, dict)
                    for k in item
                    if k in _TRANSACT_ITEM
                ]
                if found:
                    return tuple(dict.fromkeys(found))
        if event in ("ExecuteStatement", "BatchExecuteStatement", "ExecuteTransaction"):
            texts: list[Any] = []
            if event == "ExecuteStatement":
                texts = [get("statement")]
            else:
                listed = get("statements") or get("transactStatements") or []
                texts = [s.get("statement") for s in listed if isinstance(s, dict)]
            found_partiql = _partiql(texts) if texts else ()
            if found_partiql:
                return found_partiql
    if prefix == "ec2" and event == "RunInstances" and get("iamInstanceProfile"):
        actions.append("iam:PassRole")
    if prefix == "ecs" and event in ("RunTask", "StartTask"):
        overrides = get("overrides") or {}
        if isinstance(overrides, dict) and (
            overrides.get("taskRoleArn") or overrides.get("executionRoleArn")
        ):
            actions.append("iam:PassRole")
    if (
        prefix == "ecs"
        and event == "RegisterTaskDefinition"
        and (get("taskRoleArn") or get("executionRoleArn"))
    ):
        actions.append("iam:PassRole")
    if prefix == "lambda" and event == "UpdateFunctionConfiguration" and get("role"):
        actions.append("iam:PassRole")
    actions += ALSO_NEEDED.get((prefix, event), ())
    return tuple(dict.fromkeys(actions))


# The request parameters that can add an action to a call (:func:`iam_actions`), as CloudTrail
# logs them: ingestion keeps these of the calls :func:`params_matter` names, nothing else.
PARAM_FIELDS: tuple[str, ...] = (
    "versionId",
    "x-amz-copy-source",
    *_S3_ACL_PARAMS,
    "x-amz-tagging",
    "iamInstanceProfile",
    "overrides",
    "taskRoleArn",
    "executionRoleArn",
    "role",
)


@functools.cache
def _by_name(event_source: str, event_name: str) -> frozenset[str]:
    return frozenset(iam_actions(event_source, event_name))


_CALL_PARAMS: dict[tuple[str, str], tuple[str, ...]] = {
    ("ec2", "RunInstances"): ("iamInstanceProfile",),
    ("ecs", "RunTask"): ("overrides",),
    ("ecs", "StartTask"): ("overrides",),
    ("ecs", "RegisterTaskDefinition"): ("taskRoleArn", "executionRoleArn"),
    ("lambda", "UpdateFunctionConfiguration"): ("role",),
}


@functools.cache
def param_names(event_source: str, event_name: str) -> tuple[str, ...]:
    """The request parameters that can add an IAM action to what this call's name needs (an
    ACL header on a PutObject, a version id on a GetObject, a role passed to RunInstances);
    empty for most calls. Ingestion looks at exactly these, once per record of such a call."""
    prefix = service_prefix(event_source)
    if prefix == "s3":
        names: list[str] = []
        if event_name in S3_VERSIONED:
            names.append("versionId")
        if event_name in ("CopyObject", "UploadPartCopy"):
            names.append("x-amz-copy-source")
        if event_name in _S3_WRITES:
            names += [*_S3_ACL_PARAMS, "x-amz-tagging"]
        return tuple(names)
    event = _VERSION_SUFFIX.sub("", event_name) if prefix == "lambda" else event_name
    return _CALL_PARAMS.get((prefix or "", event), ())


def param_actions(event_source: str, event_name: str, params: Any) -> tuple[str, ...]:
    """The IAM actions this call's ``params`` (a dict of :data:`PARAM_FIELDS`) show it needs
    beyond those its name alone does: what a role built from the name would lack."""
    by_name = _by_name(event_source, event_name)
    return tuple(a for a in iam_actions(event_source, event_name, params) if a not in by_name)
