"""botocore failures, translated once.

Steps ask *what kind* of failure an exception is (``not_found(exc)``, ``access_denied(exc)``,
``throttled(exc)``) instead of comparing error-code strings in ``except Exception`` blocks; the
codes AWS uses for each kind differ by service and live here, in one table per kind.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from migrate.errors import AwsConfigError, AwsError

T = TypeVar("T")

# "The thing you named does not exist", as each service spells it.
NOT_FOUND_CODES = frozenset(
    {
        "404",
        "NotFound",
        "NoSuchEntity",  # IAM
        "NotFoundException",  # KMS
        "ResourceNotFoundException",  # Secrets Manager, Lambda, ECS, ...
        "NoSuchBucket",
        "NoSuchKey",
        "NoSuchVersion",
        "NoSuchUpload",
        "NoSuchTagSet",
        "NoSuchTagSetError",
        "NoSuchBucketPolicy",
        "NoSuchLifecycleConfiguration",
        "ServerSideEncryptionConfigurationNotFoundError",
        "OwnershipControlsNotFoundError",
        "NoSuchPublicAccessBlockConfiguration",
        "ObjectLockConfigurationNotFoundError",
        "InvalidInstanceID.NotFound",  # EC2
        "InvalidAssociationID.NotFound",
        "InvalidGroup.NotFound",
        "ParameterNotFound",  # SSM
        "TrailNotFoundException",  # CloudTrail
        "DBInstanceNotFound",
        "DBInstanceNotFoundFault",
        "DBSnapshotNotFound",
        "DBSnapshotNotFoundFault",
        "DBClusterNotFound",
        "DBClusterNotFoundFault",
        "DBClusterSnapshotNotFound",
        "DBClusterSnapshotNotFoundFault",
        "DBClusterEndpointNotFoundFault",
        "DBSubnetGroupNotFoundFault",
    }
)
ACCESS_DENIED_CODES = frozenset(
    {
        "403",
        "AccessDenied",
        "AccessDeniedException",
        "UnauthorizedOperation",
        "AuthorizationError",
        "AuthFailure",
        "UnrecognizedClientException",
        "InvalidClientTokenId",
        "SignatureDoesNotMatch",
        "ExpiredToken",
    }
)
THROTTLE_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "RequestThrottled",
        "RequestThrottledException",
        "SlowDown",
        "ProvisionedThroughputExceededException",
        "TransactionInProgressException",
        "503",
        "ServiceUnavailable",
        "RequestTimeout",
        "RequestTimeoutException",
        "PriorRequestNotComplete",
        "EC2ThrottledException",
        "BandwidthLimitExceeded",
        "LimitExceededException",
    }
)
# Server-side failures botocore retries; still failing after its retries, AWS is unavailable
# (not refusing): the operator should resume later, not look at permissions.
SERVER_ERROR_CODES = frozenset(
    {
        "InternalError",
        "InternalFailure",
        "InternalServerError",
        "InternalServiceError",
        "InternalServiceErrorException",
        "ServiceFailure",
        "ServiceUnavailableException",
        "KMSInternalException",
        "DependencyTimeoutException",
    }
)
ALREADY_EXISTS_CODES = frozenset(
    {
        "EntityAlreadyExists",  # IAM
        "AlreadyExistsException",  # KMS aliases
        "ResourceExistsException",  # Secrets Manager
        "ResourceConflictException",  # Lambda
        "BucketAlreadyOwnedByYou",
        "DBInstanceAlreadyExists",
        "DBInstanceAlreadyExistsFault",
        "DBSnapshotAlreadyExists",
        "DBSnapshotAlreadyExistsFault",
        "DBClusterAlreadyExistsFault",
        "DBClusterSnapshotAlreadyExistsFault",
        "InvalidPermission.Duplicate",
    }
)
PRECONDITION_CODES = frozenset({"PreconditionFailed", "PreconditionFailedException", "412"})


def error_code(exc: BaseException) -> str | None:
    """The AWS error code of a ClientError, or None for anything else."""
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code"))
    return None


def has_code(exc: BaseException, *codes: str) -> bool:
    """True if ``exc`` is a ClientError with one of ``codes``."""
    return error_code(exc) in codes


def not_found(exc: BaseException) -> bool:
    """True if AWS answered that the named resource does not exist."""
    return error_code(exc) in NOT_FOUND_CODES


def access_denied(exc: BaseException) -> bool:
    """True if AWS refused the call for the caller's permissions or credentials."""
    return error_code(exc) in ACCESS_DENIED_CODES


def throttled(exc: BaseException) -> bool:
    """True if AWS asked to slow down or was briefly unavailable (retry later)."""
    return error_code(exc) in THROTTLE_CODES


def already_exists(exc: BaseException) -> bool:
    """True if a create found the resource there already."""
    return error_code(exc) in ALREADY_EXISTS_CODES


def unavailable(exc: BaseException) -> bool:
    """True if AWS failed on its side (a 5xx answer or a server-error code), not refused."""
    if not isinstance(exc, ClientError):
        return False
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
    return error_code(exc) in SERVER_ERROR_CODES or int(status) >= 500


def precondition_failed(exc: BaseException) -> bool:
    """True if a conditional request (If-Match, CopySourceIfMatch, ...) did not hold."""
    return error_code(exc) in PRECONDITION_CODES


def or_default(
    call: Callable[[], T], default: T, when: Callable[[BaseException], bool] = not_found
) -> T:
    """``call()``, or ``default`` when it fails in the way ``when`` names (default: not found)."""
    try:
        return call()
    except ClientError as exc:
        if when(exc):
            return default
        raise


def describe_aws_failure(exc: BaseException) -> AwsError:
    """Turn a botocore failure into a one-paragraph AwsError."""
    if isinstance(exc, NoCredentialsError):
        return AwsConfigError(
            "No AWS credentials were found. Set AWS_PROFILE or pass --profile, or export "
            "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY; for the sandbox run `migrate sandbox serve` "
            "and export what it prints."
        )
    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        op = getattr(exc, "operation_name", "an AWS call")
        if throttled(exc) or unavailable(exc):
            retries = exc.response.get("ResponseMetadata", {}).get("RetryAttempts")
            if isinstance(retries, int) and retries > 0:
                what = f"AWS kept throttling or was unavailable for {op}"
                after = f" after {retries + 1} attempts"
            else:  # not retried (botocore's retry quota was spent, or the error is not retried)
                what, after = f"AWS throttled or was unavailable for {op}", ""
            return AwsError(
                f"{what} ({err.get('Code')}){after}; this is not a permissions problem. Nothing was lost: `migrate resume "
                "RUN_ID` continues where the run stopped; if it keeps happening, lower the "
                "step's concurrency or rate limit, or check the AWS Health Dashboard."
            )
        if not_found(exc):
            return AwsError(
                f"AWS answered {op}: {err.get('Code')}: {err.get('Message')}. The resource does "
                "not exist in the selected account/region: check --region and the names in the "
                "playbook."
            )
        return AwsError(
            f"AWS refused {op}: {err.get('Code')}: {err.get('Message')}. Check that the "
            "migrator's identity has the permissions `migrate permissions PLAYBOOK` lists, and "
            "that the resource exists in the selected region."
        )
    if isinstance(exc, BotoCoreError):
        return AwsError(
            f"Could not reach AWS: {exc}. Check --endpoint-url/AWS_ENDPOINT_URL, --region and "
            "the network, then resume."
        )
    return AwsError(str(exc))
