"""Resource ARNs in IAM policies: what kind an ARN is, and which IAM actions accept that kind.

A policy statement may name a resource only if the action accepts that resource type:
``s3:GetObject`` takes object ARNs (``arn:aws:s3:::bucket/key``), ``s3:ListBucket`` bucket ARNs,
and ``s3:ListAllMyBuckets`` or ``sts:GetCallerIdentity`` none at all (only ``*``).
:func:`arn_kind` classifies the ARNs that CloudTrail ingestion records; :data:`ACCEPTS` lists, per
kind, the actions that accept it, and :data:`NO_RESOURCE` the actions of common services that take
no resource at all. The table is AWS's Service Authorization Reference as parliament
ships it, cut to what we classify; ``tests/unit/test_cloudtrail_arns.py`` regenerates it from
parliament and fails on any difference (parliament is a dev dependency, so the table lives here for
run time). An action that accepts none of these kinds gets ``*``: never wrong, only broad.

This module imports nothing heavy: the ingestion workers use it.
"""

from __future__ import annotations

import functools

KIND_S3_BUCKET = "s3:bucket"
KIND_S3_OBJECT = "s3:object"
PARTITIONS = ("aws", "aws-cn", "aws-us-gov")


def partition_of(region: str) -> str:
    """The ARN partition of a region (``cn-north-1`` -> ``aws-cn``)."""
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


def arn_kind(arn: str) -> str | None:
    """``s3:object``, ``kms:key``, ... for the ARN shapes we record; None for anything else.

    Wildcards count as the kind they stand for (``arn:aws:s3:::bucket/*`` is ``s3:object``).
    """
    parts = arn.split(":", 5)
    if len(parts) != 6 or parts[0] != "arn" or not parts[5]:
        return None
    _, _, service, region, account, resource = parts
    regional = bool(region) and bool(account)
    if service == "s3":
        if region or account:
            return None  # access points, jobs, Storage Lens: not bucket/object ARNs
        return KIND_S3_OBJECT if "/" in resource else KIND_S3_BUCKET
    if service == "iam":
        return "iam:role" if resource.startswith("role/") and not region else None
    if not regional:
        return None
    if service == "secretsmanager":
        return "secretsmanager:secret" if resource.startswith("secret:") else None
    if service == "dynamodb":
        segments = resource.split("/")
        if segments[0] != "table" or not segments[1:] or not segments[1]:
            return None
        if len(segments) == 2:
            return "dynamodb:table"
        if len(segments) == 4 and segments[2] == "index" and segments[3]:
            return "dynamodb:index"
        return None
    if service in ("sqs", "sns"):
        if ":" in resource or "/" in resource:
            return None
        return "sqs:queue" if service == "sqs" else "sns:topic"
    if service == "kms":
        if resource.startswith("key/"):
            return "kms:key"
        return "kms:alias" if resource.startswith("alias/") else None
    if service == "rds":
        kind, _, name = resource.partition(":")
        return "rds:db" if kind == "db" and name and ":" not in name else None
    if service == "lambda":
        kind, _, name = resource.partition(":")
        return "lambda:function" if kind == "function" and name and ":" not in name else None
    return None


@functools.cache
def accepted_kinds(action: str) -> frozenset[str]:
    """The kinds of ARN that ``action`` (``s3:GetObject``) accepts; empty: only ``*``."""
    return frozenset(kind for kind, actions in ACCEPTS.items() if action in actions)


def accepts(action: str, arn: str) -> bool:
    """True if a statement allowing ``action`` may name ``arn`` (its kind is one the action takes)."""
    kind = arn_kind(arn)
    return kind is not None and kind in accepted_kinds(action)


# Generated from parliament's iam_definition (see tests/unit/test_cloudtrail_arns.py): kind ->
# every IAM action with a resource type whose ARN pattern arn_kind() classifies as that kind.
_ACCEPTS: dict[str, str] = {
    "dynamodb:index": (
        "dynamodb:DescribeContributorInsights dynamodb:PartiQLSelect dynamodb:Query dynamodb:Scan "
        "dynamodb:UpdateContributorInsights"
    ),
    "dynamodb:table": (
        "dynamodb:BatchGetItem dynamodb:BatchWriteItem dynamodb:ConditionCheckItem "
        "dynamodb:CreateBackup dynamodb:CreateGlobalTable dynamodb:CreateTable "
        "dynamodb:CreateTableReplica dynamodb:DeleteItem dynamodb:DeleteResourcePolicy "
        "dynamodb:DeleteTable dynamodb:DeleteTableReplica dynamodb:DescribeContinuousBackups "
        "dynamodb:DescribeContributorInsights dynamodb:DescribeKinesisStreamingDestination "
        "dynamodb:DescribeTable dynamodb:DescribeTableReplicaAutoScaling "
        "dynamodb:DescribeTimeToLive dynamodb:DisableKinesisStreamingDestination "
        "dynamodb:EnableKinesisStreamingDestination dynamodb:ExportTableToPointInTime "
        "dynamodb:GetItem dynamodb:GetResourcePolicy dynamodb:ImportTable "
        "dynamodb:ListTagsOfResource dynamodb:PartiQLDelete dynamodb:PartiQLInsert "
        "dynamodb:PartiQLSelect dynamodb:PartiQLUpdate dynamodb:PutItem "
        "dynamodb:PutResourcePolicy dynamodb:Query dynamodb:RestoreTableFromAwsBackup "
        "dynamodb:RestoreTableFromBackup dynamodb:RestoreTableToPointInTime dynamodb:Scan "
        "dynamodb:StartAwsBackupJob dynamodb:TagResource dynamodb:UntagResource "
        "dynamodb:UpdateContinuousBackups dynamodb:UpdateContributorInsights "
        "dynamodb:UpdateGlobalTable dynamodb:UpdateGlobalTableSettings "
        "dynamodb:UpdateGlobalTableVersion dynamodb:UpdateItem "
        "dynamodb:UpdateKinesisStreamingDestination dynamodb:UpdateTable "
        "dynamodb:UpdateTableReplicaAutoScaling dynamodb:UpdateTimeToLive"
    ),
    "iam:role": (
        "ec2:AssociateEnclaveCertificateIamRole ec2:DisassociateEnclaveCertificateIamRole "
        "iam:AttachRolePolicy iam:CreateRole iam:CreateServiceLinkedRole iam:DeleteRole "
        "iam:DeleteRolePermissionsBoundary iam:DeleteRolePolicy iam:DeleteServiceLinkedRole "
        "iam:DetachRolePolicy iam:GenerateServiceLastAccessedDetails "
        "iam:GetContextKeysForPrincipalPolicy iam:GetRole iam:GetRolePolicy "
        "iam:GetServiceLinkedRoleDeletionStatus iam:ListAttachedRolePolicies "
        "iam:ListInstanceProfilesForRole iam:ListPoliciesGrantingServiceAccess "
        "iam:ListRolePolicies iam:ListRoleTags iam:PassRole iam:PutRolePermissionsBoundary "
        "iam:PutRolePolicy iam:SimulatePrincipalPolicy iam:TagRole iam:UntagRole "
        "iam:UpdateAssumeRolePolicy iam:UpdateRole iam:UpdateRoleDescription "
        "ssm:UpdateManagedInstanceRole sts:AssumeRole sts:AssumeRoleWithSAML "
        "sts:AssumeRoleWithWebIdentity sts:SetContext sts:SetSourceIdentity sts:TagSession"
    ),
    "kms:alias": ("kms:CreateAlias kms:DeleteAlias kms:UpdateAlias"),
    "kms:key": (
        "kinesis:StartStreamEncryption kinesis:StopStreamEncryption kms:CancelKeyDeletion "
        "kms:CreateAlias kms:CreateGrant kms:Decrypt kms:DeleteAlias "
        "kms:DeleteImportedKeyMaterial kms:DeriveSharedSecret kms:DescribeKey kms:DisableKey "
        "kms:DisableKeyRotation kms:EnableKey kms:EnableKeyRotation kms:Encrypt "
        "kms:GenerateDataKey kms:GenerateDataKeyPair kms:GenerateDataKeyPairWithoutPlaintext "
        "kms:GenerateDataKeyWithoutPlaintext kms:GenerateMac kms:GetKeyPolicy "
        "kms:GetKeyRotationStatus kms:GetParametersForImport kms:GetPublicKey "
        "kms:ImportKeyMaterial kms:ListGrants kms:ListKeyPolicies kms:ListKeyRotations "
        "kms:ListResourceTags kms:PutKeyPolicy kms:ReEncryptFrom kms:ReEncryptTo kms:ReplicateKey "
        "kms:RetireGrant kms:RevokeGrant kms:RotateKeyOnDemand kms:ScheduleKeyDeletion kms:Sign "
        "kms:SynchronizeMultiRegionKey kms:TagResource kms:UntagResource kms:UpdateAlias "
        "kms:UpdateKeyDescription kms:UpdatePrimaryRegion kms:Verify kms:VerifyMac"
    ),
    "lambda:function": (
        "lambda:AddPermission lambda:CreateAlias lambda:CreateFunction "
        "lambda:CreateFunctionUrlConfig lambda:DeleteAlias lambda:DeleteFunction "
        "lambda:DeleteFunctionCodeSigningConfig lambda:DeleteFunctionConcurrency "
        "lambda:DeleteFunctionEventInvokeConfig lambda:DeleteFunctionUrlConfig "
        "lambda:DisableReplication lambda:EnableReplication lambda:GetAlias lambda:GetFunction "
        "lambda:GetFunctionCodeSigningConfig lambda:GetFunctionConcurrency "
        "lambda:GetFunctionConfiguration lambda:GetFunctionEventInvokeConfig "
        "lambda:GetFunctionRecursionConfig lambda:GetFunctionUrlConfig lambda:GetPolicy "
        "lambda:GetRuntimeManagementConfig lambda:InvokeAsync lambda:InvokeFunction "
        "lambda:InvokeFunctionUrl lambda:ListAliases lambda:ListFunctionEventInvokeConfigs "
        "lambda:ListFunctionUrlConfigs lambda:ListProvisionedConcurrencyConfigs lambda:ListTags "
        "lambda:ListVersionsByFunction lambda:PublishVersion lambda:PutFunctionCodeSigningConfig "
        "lambda:PutFunctionConcurrency lambda:PutFunctionEventInvokeConfig "
        "lambda:PutFunctionRecursionConfig lambda:PutRuntimeManagementConfig "
        "lambda:RemovePermission lambda:TagResource lambda:UntagResource lambda:UpdateAlias "
        "lambda:UpdateFunctionCode lambda:UpdateFunctionCodeSigningConfig "
        "lambda:UpdateFunctionConfiguration lambda:UpdateFunctionEventInvokeConfig "
        "lambda:UpdateFunctionUrlConfig"
    ),
    "rds:db": (
        "rds:AddRoleToDBInstance rds:AddTagsToResource rds:ApplyPendingMaintenanceAction "
        "rds:CreateBlueGreenDeployment rds:CreateDBCluster rds:CreateDBInstance "
        "rds:CreateDBInstanceReadReplica rds:CreateDBSnapshot rds:CreateTenantDatabase "
        "rds:DeleteDBInstance rds:DeleteTenantDatabase rds:DeregisterDBProxyTargets "
        "rds:DescribeDBInstanceAutomatedBackups rds:DescribeDBInstances rds:DescribeDBLogFiles "
        "rds:DescribeDBSnapshotTenantDatabases rds:DescribeDBSnapshots "
        "rds:DescribePendingMaintenanceActions rds:DescribeTenantDatabases "
        "rds:DescribeValidDBInstanceModifications rds:DownloadCompleteDBLogFile "
        "rds:DownloadDBLogFilePortion rds:ListTagsForResource rds:ModifyActivityStream "
        "rds:ModifyDBInstance rds:ModifyTenantDatabase rds:PromoteReadReplica "
        "rds:RebootDBInstance rds:RemoveRoleFromDBInstance rds:RemoveTagsFromResource "
        "rds:RestoreDBInstanceFromDBSnapshot rds:RestoreDBInstanceFromS3 "
        "rds:RestoreDBInstanceToPointInTime rds:StartActivityStream rds:StartDBInstance "
        "rds:StartDBInstanceAutomatedBackupsReplication rds:StopActivityStream rds:StopDBInstance "
        "rds:StopDBInstanceAutomatedBackupsReplication rds:SwitchoverReadReplica"
    ),
    "s3:bucket": (
        "s3:CreateBucket s3:CreateBucketMetadataTableConfiguration s3:DeleteBucket "
        "s3:DeleteBucketMetadataTableConfiguration s3:DeleteBucketPolicy s3:DeleteBucketWebsite "
        "s3:GetAccelerateConfiguration s3:GetAnalyticsConfiguration s3:GetBucketAcl "
        "s3:GetBucketCORS s3:GetBucketLocation s3:GetBucketLogging "
        "s3:GetBucketMetadataTableConfiguration s3:GetBucketNotification "
        "s3:GetBucketObjectLockConfiguration s3:GetBucketOwnershipControls s3:GetBucketPolicy "
        "s3:GetBucketPolicyStatus s3:GetBucketPublicAccessBlock s3:GetBucketRequestPayment "
        "s3:GetBucketTagging s3:GetBucketVersioning s3:GetBucketWebsite "
        "s3:GetEncryptionConfiguration s3:GetIntelligentTieringConfiguration "
        "s3:GetInventoryConfiguration s3:GetLifecycleConfiguration s3:GetMetricsConfiguration "
        "s3:GetReplicationConfiguration s3:ListBucket s3:ListBucketMultipartUploads "
        "s3:ListBucketVersions s3:PauseReplication s3:PutAccelerateConfiguration "
        "s3:PutAnalyticsConfiguration s3:PutBucketAcl s3:PutBucketCORS s3:PutBucketLogging "
        "s3:PutBucketNotification s3:PutBucketObjectLockConfiguration "
        "s3:PutBucketOwnershipControls s3:PutBucketPolicy s3:PutBucketPublicAccessBlock "
        "s3:PutBucketRequestPayment s3:PutBucketTagging s3:PutBucketVersioning "
        "s3:PutBucketWebsite s3:PutEncryptionConfiguration s3:PutIntelligentTieringConfiguration "
        "s3:PutInventoryConfiguration s3:PutLifecycleConfiguration s3:PutMetricsConfiguration "
        "s3:PutReplicationConfiguration ssm:SendCommand"
    ),
    "s3:object": (
        "s3:AbortMultipartUpload s3:BypassGovernanceRetention s3:DeleteObject "
        "s3:DeleteObjectTagging s3:DeleteObjectVersion s3:DeleteObjectVersionTagging s3:GetObject "
        "s3:GetObjectAcl s3:GetObjectAttributes s3:GetObjectLegalHold s3:GetObjectRetention "
        "s3:GetObjectTagging s3:GetObjectTorrent s3:GetObjectVersion s3:GetObjectVersionAcl "
        "s3:GetObjectVersionAttributes s3:GetObjectVersionForReplication "
        "s3:GetObjectVersionTagging s3:GetObjectVersionTorrent s3:InitiateReplication "
        "s3:ListMultipartUploadParts s3:ObjectOwnerOverrideToBucketOwner s3:PutObject "
        "s3:PutObjectAcl s3:PutObjectLegalHold s3:PutObjectRetention s3:PutObjectTagging "
        "s3:PutObjectVersionAcl s3:PutObjectVersionTagging s3:ReplicateDelete s3:ReplicateObject "
        "s3:ReplicateTags s3:RestoreObject"
    ),
    "secretsmanager:secret": (
        "secretsmanager:CancelRotateSecret secretsmanager:CreateSecret "
        "secretsmanager:DeleteResourcePolicy secretsmanager:DeleteSecret "
        "secretsmanager:DescribeSecret secretsmanager:GetResourcePolicy "
        "secretsmanager:GetSecretValue secretsmanager:ListSecretVersionIds "
        "secretsmanager:PutResourcePolicy secretsmanager:PutSecretValue "
        "secretsmanager:RemoveRegionsFromReplication secretsmanager:ReplicateSecretToRegions "
        "secretsmanager:RestoreSecret secretsmanager:RotateSecret "
        "secretsmanager:StopReplicationToReplica secretsmanager:TagResource "
        "secretsmanager:UntagResource secretsmanager:UpdateSecret "
        "secretsmanager:UpdateSecretVersionStage secretsmanager:ValidateResourcePolicy"
    ),
    "sns:topic": (
        "devops-guru:AddNotificationChannel devops-guru:RemoveNotificationChannel "
        "sns:AddPermission sns:ConfirmSubscription sns:CreateTopic sns:DeleteTopic "
        "sns:GetDataProtectionPolicy sns:GetTopicAttributes sns:ListSubscriptionsByTopic "
        "sns:ListTagsForResource sns:Publish sns:PutDataProtectionPolicy sns:RemovePermission "
        "sns:SetTopicAttributes sns:Subscribe sns:TagResource sns:UntagResource"
    ),
    "sqs:queue": (
        "sqs:AddPermission sqs:CancelMessageMoveTask sqs:ChangeMessageVisibility sqs:CreateQueue "
        "sqs:DeleteMessage sqs:DeleteQueue sqs:GetQueueAttributes sqs:GetQueueUrl "
        "sqs:ListDeadLetterSourceQueues sqs:ListMessageMoveTasks sqs:ListQueueTags sqs:PurgeQueue "
        "sqs:ReceiveMessage sqs:RemovePermission sqs:SendMessage sqs:SetQueueAttributes "
        "sqs:StartMessageMoveTask sqs:TagQueue sqs:UntagQueue"
    ),
}
ACCEPTS: dict[str, frozenset[str]] = {
    kind: frozenset(text.split()) for kind, text in _ACCEPTS.items()
}

# Generated likewise: the actions of these services that take no resource at all, so ``*`` is
# their only (and exact) resource. Actions of other services are not known to be so.
NO_RESOURCE_SERVICES = (
    "cloudwatch",
    "dynamodb",
    "ec2",
    "iam",
    "kms",
    "lambda",
    "logs",
    "rds",
    "s3",
    "secretsmanager",
    "sns",
    "sqs",
    "ssm",
    "sts",
)
_NO_RESOURCE_TEXT = (
    "cloudwatch:BatchGetServiceLevelIndicatorReport cloudwatch:CreateServiceLevelObjective "
    "cloudwatch:DeleteAnomalyDetector cloudwatch:DescribeAlarmsForMetric "
    "cloudwatch:DescribeAnomalyDetectors cloudwatch:DescribeInsightRules "
    "cloudwatch:EnableTopologyDiscovery cloudwatch:GenerateQuery cloudwatch:GetMetricData "
    "cloudwatch:GetMetricStatistics cloudwatch:GetMetricWidgetImage "
    "cloudwatch:GetTopologyDiscoveryStatus cloudwatch:GetTopologyMap cloudwatch:Link "
    "cloudwatch:ListDashboards cloudwatch:ListEntitiesForMetric "
    "cloudwatch:ListManagedInsightRules cloudwatch:ListMetricStreams cloudwatch:ListMetrics "
    "cloudwatch:ListServiceLevelObjectives cloudwatch:ListServices "
    "cloudwatch:PutAnomalyDetector cloudwatch:PutManagedInsightRules cloudwatch:PutMetricData "
    "dynamodb:DescribeEndpoints dynamodb:DescribeLimits dynamodb:DescribeReservedCapacity "
    "dynamodb:DescribeReservedCapacityOfferings dynamodb:GetAbacStatus dynamodb:ListBackups "
    "dynamodb:ListContributorInsights dynamodb:ListExports dynamodb:ListGlobalTables "
    "dynamodb:ListImports dynamodb:ListStreams dynamodb:ListTables "
    "dynamodb:PurchaseReservedCapacityOfferings dynamodb:UpdateAbacStatus "
    "ec2:AcceptReservedInstancesExchangeQuote ec2:AdvertiseByoipCidr ec2:AssociateIpamByoasn "
    "ec2:AssociateTrunkInterface ec2:BundleInstance ec2:CancelBundleTask "
    "ec2:CancelConversionTask ec2:CancelReservedInstancesListing ec2:ConfirmProductInstance "
    "ec2:CreateDefaultSubnet ec2:CreateDefaultVpc ec2:CreateReservedInstancesListing "
    "ec2:CreateSpotDatafeedSubscription ec2:CreateSubnetCidrReservation "
    "ec2:DeleteQueuedReservedInstances ec2:DeleteSpotDatafeedSubscription "
    "ec2:DeleteSubnetCidrReservation ec2:DeprovisionByoipCidr "
    "ec2:DeregisterInstanceEventNotificationAttributes ec2:DescribeAccountAttributes "
    "ec2:DescribeAddressTransfers ec2:DescribeAddresses ec2:DescribeAddressesAttribute "
    "ec2:DescribeAggregateIdFormat ec2:DescribeAvailabilityZones "
    "ec2:DescribeAwsNetworkPerformanceMetricSubscriptions ec2:DescribeBundleTasks "
    "ec2:DescribeByoipCidrs ec2:DescribeCapacityBlockOfferings "
    "ec2:DescribeCapacityReservationBillingRequests ec2:DescribeCapacityReservationFleets "
    "ec2:DescribeCapacityReservations ec2:DescribeCarrierGateways "
    "ec2:DescribeClassicLinkInstances ec2:DescribeCoipPools ec2:DescribeConversionTasks "
    "ec2:DescribeCustomerGateways ec2:DescribeDeclarativePoliciesReports "
    "ec2:DescribeDhcpOptions ec2:DescribeEgressOnlyInternetGateways ec2:DescribeElasticGpus "
    "ec2:DescribeExportImageTasks ec2:DescribeExportTasks ec2:DescribeFastLaunchImages "
    "ec2:DescribeFastSnapshotRestores ec2:DescribeFleets ec2:DescribeFlowLogs "
    "ec2:DescribeFpgaImages ec2:DescribeHostReservationOfferings ec2:DescribeHostReservations "
    "ec2:DescribeHosts ec2:DescribeIamInstanceProfileAssociations ec2:DescribeIdFormat "
    "ec2:DescribeIdentityIdFormat ec2:DescribeImages ec2:DescribeImportImageTasks "
    "ec2:DescribeImportSnapshotTasks ec2:DescribeInstanceConnectEndpoints "
    "ec2:DescribeInstanceCreditSpecifications ec2:DescribeInstanceEventNotificationAttributes "
    "ec2:DescribeInstanceEventWindows ec2:DescribeInstanceImageMetadata "
    "ec2:DescribeInstanceStatus ec2:DescribeInstanceTopology "
    "ec2:DescribeInstanceTypeOfferings ec2:DescribeInstanceTypes ec2:DescribeInstances "
    "ec2:DescribeInternetGateways ec2:DescribeIpamByoasn "
    "ec2:DescribeIpamExternalResourceVerificationTokens ec2:DescribeIpamPools "
    "ec2:DescribeIpamResourceDiscoveries ec2:DescribeIpamResourceDiscoveryAssociations "
    "ec2:DescribeIpamScopes ec2:DescribeIpams ec2:DescribeIpv6Pools ec2:DescribeKeyPairs "
    "ec2:DescribeLaunchTemplateVersions ec2:DescribeLaunchTemplates "
    "ec2:DescribeLocalGatewayRouteTablePermissions "
    "ec2:DescribeLocalGatewayRouteTableVirtualInterfaceGroupAssociations "
    "ec2:DescribeLocalGatewayRouteTableVpcAssociations ec2:DescribeLocalGatewayRouteTables "
    "ec2:DescribeLocalGatewayVirtualInterfaceGroups ec2:DescribeLocalGatewayVirtualInterfaces "
    "ec2:DescribeLocalGateways ec2:DescribeLockedSnapshots ec2:DescribeMacHosts "
    "ec2:DescribeManagedPrefixLists ec2:DescribeMovingAddresses ec2:DescribeNatGateways "
    "ec2:DescribeNetworkAcls ec2:DescribeNetworkInsightsAccessScopeAnalyses "
    "ec2:DescribeNetworkInsightsAccessScopes ec2:DescribeNetworkInsightsAnalyses "
    "ec2:DescribeNetworkInsightsPaths ec2:DescribeNetworkInterfaceAttribute "
    "ec2:DescribeNetworkInterfacePermissions ec2:DescribeNetworkInterfaces "
    "ec2:DescribePlacementGroups ec2:DescribePrefixLists ec2:DescribePrincipalIdFormat "
    "ec2:DescribePublicIpv4Pools ec2:DescribeRegions ec2:DescribeReplaceRootVolumeTasks "
    "ec2:DescribeReservedInstances ec2:DescribeReservedInstancesListings "
    "ec2:DescribeReservedInstancesModifications ec2:DescribeReservedInstancesOfferings "
    "ec2:DescribeRouteTables ec2:DescribeScheduledInstanceAvailability "
    "ec2:DescribeScheduledInstances ec2:DescribeSecurityGroupRules "
    "ec2:DescribeSecurityGroupVpcAssociations ec2:DescribeSecurityGroups "
    "ec2:DescribeSnapshotTierStatus ec2:DescribeSnapshots "
    "ec2:DescribeSpotDatafeedSubscription ec2:DescribeSpotFleetRequests "
    "ec2:DescribeSpotInstanceRequests ec2:DescribeSpotPriceHistory "
    "ec2:DescribeStaleSecurityGroups ec2:DescribeStoreImageTasks ec2:DescribeSubnets "
    "ec2:DescribeTags ec2:DescribeTrafficMirrorFilterRules ec2:DescribeTrafficMirrorFilters "
    "ec2:DescribeTrafficMirrorSessions ec2:DescribeTrafficMirrorTargets "
    "ec2:DescribeTransitGatewayAttachments ec2:DescribeTransitGatewayConnectPeers "
    "ec2:DescribeTransitGatewayConnects ec2:DescribeTransitGatewayMulticastDomains "
    "ec2:DescribeTransitGatewayPeeringAttachments ec2:DescribeTransitGatewayPolicyTables "
    "ec2:DescribeTransitGatewayRouteTableAnnouncements ec2:DescribeTransitGatewayRouteTables "
    "ec2:DescribeTransitGatewayVpcAttachments ec2:DescribeTransitGateways "
    "ec2:DescribeTrunkInterfaceAssociations ec2:DescribeVerifiedAccessEndpoints "
    "ec2:DescribeVerifiedAccessGroups ec2:DescribeVerifiedAccessInstanceLoggingConfigurations "
    "ec2:DescribeVerifiedAccessInstanceWebAclAssociations ec2:DescribeVerifiedAccessInstances "
    "ec2:DescribeVerifiedAccessTrustProviders ec2:DescribeVolumeStatus ec2:DescribeVolumes "
    "ec2:DescribeVolumesModifications ec2:DescribeVpcBlockPublicAccessExclusions "
    "ec2:DescribeVpcBlockPublicAccessOptions ec2:DescribeVpcClassicLink "
    "ec2:DescribeVpcClassicLinkDnsSupport ec2:DescribeVpcEndpointConnectionNotifications "
    "ec2:DescribeVpcEndpointConnections ec2:DescribeVpcEndpointServiceConfigurations "
    "ec2:DescribeVpcEndpointServices ec2:DescribeVpcEndpoints "
    "ec2:DescribeVpcPeeringConnections ec2:DescribeVpcs ec2:DescribeVpnConnections "
    "ec2:DescribeVpnGateways ec2:DisableAllowedImagesSettings "
    "ec2:DisableAwsNetworkPerformanceMetricSubscription ec2:DisableEbsEncryptionByDefault "
    "ec2:DisableImageBlockPublicAccess ec2:DisableIpamOrganizationAdminAccount "
    "ec2:DisableSerialConsoleAccess ec2:DisableSnapshotBlockPublicAccess "
    "ec2:DisassociateIpamByoasn ec2:DisassociateTrunkInterface "
    "ec2:EnableAllowedImagesSettings ec2:EnableAwsNetworkPerformanceMetricSubscription "
    "ec2:EnableEbsEncryptionByDefault ec2:EnableImageBlockPublicAccess "
    "ec2:EnableIpamOrganizationAdminAccount ec2:EnableReachabilityAnalyzerOrganizationSharing "
    "ec2:EnableSerialConsoleAccess ec2:EnableSnapshotBlockPublicAccess "
    "ec2:ExportTransitGatewayRoutes ec2:GetAllowedImagesSettings "
    "ec2:GetAssociatedIpv6PoolCidrs ec2:GetAwsNetworkPerformanceData "
    "ec2:GetDefaultCreditSpecification ec2:GetEbsDefaultKmsKeyId "
    "ec2:GetEbsEncryptionByDefault ec2:GetHostReservationPurchasePreview "
    "ec2:GetImageBlockPublicAccessState ec2:GetInstanceMetadataDefaults "
    "ec2:GetInstanceTypesFromInstanceRequirements ec2:GetReservedInstancesExchangeQuote "
    "ec2:GetSerialConsoleAccessStatus ec2:GetSnapshotBlockPublicAccessState "
    "ec2:GetSpotPlacementScores ec2:GetSubnetCidrReservations "
    "ec2:GetTransitGatewayAttachmentPropagations ec2:GetTransitGatewayPrefixListReferences "
    "ec2:GetTransitGatewayRouteTableAssociations ec2:GetTransitGatewayRouteTablePropagations "
    "ec2:GetVpnConnectionDeviceTypes ec2:InjectApiError ec2:ListImagesInRecycleBin "
    "ec2:ListSnapshotsInRecycleBin ec2:ModifyAvailabilityZoneGroup "
    "ec2:ModifyDefaultCreditSpecification ec2:ModifyEbsDefaultKmsKeyId ec2:ModifyIdFormat "
    "ec2:ModifyIdentityIdFormat ec2:ModifyInstanceMetadataDefaults "
    "ec2:ModifyVpcBlockPublicAccessOptions ec2:MoveAddressToVpc ec2:ProvisionByoipCidr "
    "ec2:PurchaseReservedInstancesOffering ec2:PurchaseScheduledInstances "
    "ec2:RegisterInstanceEventNotificationAttributes "
    "ec2:ReplaceImageCriteriaInAllowedImagesSettings ec2:ResetEbsDefaultKmsKeyId "
    "ec2:RestoreAddressToClassic ec2:RunScheduledInstances ec2:StartDeclarativePoliciesReport "
    "ec2:WithdrawByoipCidr iam:CreateAccountAlias iam:DeleteAccountAlias "
    "iam:DeleteAccountPasswordPolicy iam:DeleteCloudFrontPublicKey "
    "iam:DisableOrganizationsRootCredentialsManagement iam:DisableOrganizationsRootSessions "
    "iam:EnableOrganizationsRootCredentialsManagement iam:EnableOrganizationsRootSessions "
    "iam:GenerateCredentialReport iam:GetAccountAuthorizationDetails "
    "iam:GetAccountEmailAddress iam:GetAccountName iam:GetAccountPasswordPolicy "
    "iam:GetAccountSummary iam:GetCloudFrontPublicKey iam:GetContextKeysForCustomPolicy "
    "iam:GetCredentialReport iam:GetOrganizationsAccessReport "
    "iam:GetServiceLastAccessedDetails iam:GetServiceLastAccessedDetailsWithEntities "
    "iam:ListAccountAliases iam:ListCloudFrontPublicKeys iam:ListGroups "
    "iam:ListInstanceProfiles iam:ListOpenIDConnectProviders iam:ListOrganizationsFeatures "
    "iam:ListPolicies iam:ListRoles iam:ListSAMLProviders iam:ListSTSRegionalEndpointsStatus "
    "iam:ListServerCertificates iam:ListUsers iam:ListVirtualMFADevices "
    "iam:SetSTSRegionalEndpointStatus iam:SetSecurityTokenServicePreferences "
    "iam:SimulateCustomPolicy iam:UpdateAccountEmailAddress iam:UpdateAccountName "
    "iam:UpdateAccountPasswordPolicy iam:UpdateCloudFrontPublicKey "
    "iam:UploadCloudFrontPublicKey kms:ConnectCustomKeyStore kms:CreateCustomKeyStore "
    "kms:CreateKey kms:DeleteCustomKeyStore kms:DescribeCustomKeyStores "
    "kms:DisconnectCustomKeyStore kms:GenerateRandom kms:ListAliases kms:ListKeys "
    "kms:ListRetirableGrants kms:UpdateCustomKeyStore lambda:CreateCodeSigningConfig "
    "lambda:CreateEventSourceMapping lambda:GetAccountSettings lambda:ListCodeSigningConfigs "
    "lambda:ListEventSourceMappings lambda:ListFunctions lambda:ListLayerVersions "
    "lambda:ListLayers logs:CancelExportTask logs:CreateLogDelivery logs:DeleteAccountPolicy "
    "logs:DeleteIndexPolicy logs:DeleteIntegration logs:DeleteLogDelivery "
    "logs:DeleteQueryDefinition logs:DeleteResourcePolicy logs:DescribeAccountPolicies "
    "logs:DescribeConfigurationTemplates logs:DescribeDeliveries "
    "logs:DescribeDeliveryDestinations logs:DescribeDeliverySources logs:DescribeDestinations "
    "logs:DescribeExportTasks logs:DescribeFieldIndexes logs:DescribeIndexPolicies "
    "logs:DescribeLogGroups logs:DescribeQueries logs:DescribeQueryDefinitions "
    "logs:DescribeResourcePolicies logs:GetIntegration logs:GetLogDelivery logs:Link "
    "logs:ListEntitiesForLogGroup logs:ListIntegrations logs:ListLogDeliveries "
    "logs:ListLogGroupsForEntity logs:ListLogGroupsForQuery logs:PutAccountPolicy "
    "logs:PutIndexPolicy logs:PutIntegration logs:PutQueryDefinition logs:PutResourcePolicy "
    "logs:StopLiveTail logs:StopQuery logs:TestMetricFilter logs:TestTransformer "
    "logs:UpdateLogDelivery rds:CancelExportTask rds:CreateDBProxy "
    "rds:CrossRegionCommunication rds:DescribeAccountAttributes rds:DescribeCertificates "
    "rds:DescribeDBEngineVersions rds:DescribeDBRecommendations "
    "rds:DescribeEngineDefaultClusterParameters rds:DescribeEngineDefaultParameters "
    "rds:DescribeEventCategories rds:DescribeEvents rds:DescribeOptionGroupOptions "
    "rds:DescribeOrderableDBInstanceOptions rds:DescribeRecommendationGroups "
    "rds:DescribeRecommendations rds:DescribeReservedDBInstancesOfferings "
    "rds:DescribeSourceRegions rds:ModifyCertificates rds:ModifyDBRecommendation "
    "rds:ModifyRecommendation s3:CreateJob s3:CreateStorageLensGroup s3:GetAccessPoint "
    "s3:GetAccountPublicAccessBlock s3:ListAccessGrantsInstances s3:ListAccessPoints "
    "s3:ListAccessPointsForObjectLambda s3:ListAllMyBuckets s3:ListJobs "
    "s3:ListMultiRegionAccessPoints s3:ListStorageLensConfigurations s3:ListStorageLensGroups "
    "s3:PutAccessPointPublicAccessBlock s3:PutAccountPublicAccessBlock "
    "s3:PutStorageLensConfiguration secretsmanager:BatchGetSecretValue "
    "secretsmanager:GetRandomPassword secretsmanager:ListSecrets "
    "sns:CheckIfPhoneNumberIsOptedOut sns:CreatePlatformApplication "
    "sns:CreatePlatformEndpoint sns:CreateSMSSandboxPhoneNumber sns:DeleteEndpoint "
    "sns:DeletePlatformApplication sns:DeleteSMSSandboxPhoneNumber sns:GetEndpointAttributes "
    "sns:GetPlatformApplicationAttributes sns:GetSMSAttributes sns:GetSMSSandboxAccountStatus "
    "sns:GetSubscriptionAttributes sns:ListEndpointsByPlatformApplication "
    "sns:ListOriginationNumbers sns:ListPhoneNumbersOptedOut sns:ListPlatformApplications "
    "sns:ListSMSSandboxPhoneNumbers sns:ListSubscriptions sns:ListTopics sns:OptInPhoneNumber "
    "sns:SetEndpointAttributes sns:SetPlatformApplicationAttributes sns:SetSMSAttributes "
    "sns:SetSubscriptionAttributes sns:Unsubscribe sns:VerifySMSSandboxPhoneNumber "
    "sqs:ListQueues ssm:CancelCommand ssm:CreateActivation ssm:CreateMaintenanceWindow "
    "ssm:CreateOpsItem ssm:CreateOpsMetadata ssm:CreatePatchBaseline ssm:DeleteActivation "
    "ssm:DeleteInventory ssm:DescribeActivations ssm:DescribeAutomationExecutions "
    "ssm:DescribeAvailablePatches ssm:DescribeInstanceInformation "
    "ssm:DescribeInstancePatchStatesForPatchGroup ssm:DescribeInstanceProperties "
    "ssm:DescribeInventoryDeletions ssm:DescribeMaintenanceWindowExecutionTaskInvocations "
    "ssm:DescribeMaintenanceWindowExecutionTasks ssm:DescribeMaintenanceWindowSchedule "
    "ssm:DescribeMaintenanceWindows ssm:DescribeMaintenanceWindowsForTarget "
    "ssm:DescribeOpsItems ssm:DescribeParameters ssm:DescribePatchBaselines "
    "ssm:DescribePatchGroupState ssm:DescribePatchGroups ssm:DescribePatchProperties "
    "ssm:DescribeSessions ssm:ExecuteAPI ssm:GetCommandInvocation "
    "ssm:GetDeployablePatchSnapshotForInstance ssm:GetExecutionPreview ssm:GetInventory "
    "ssm:GetInventorySchema ssm:GetMaintenanceWindowExecution "
    "ssm:GetMaintenanceWindowExecutionTask ssm:GetMaintenanceWindowExecutionTaskInvocation "
    "ssm:GetManifest ssm:GetPatchBaselineForPatchGroup ssm:ListAssociations "
    "ssm:ListCommandInvocations ssm:ListCommands ssm:ListComplianceItems "
    "ssm:ListComplianceSummaries ssm:ListDocuments ssm:ListInventoryEntries "
    "ssm:ListOpsItemEvents ssm:ListOpsItemRelatedItems ssm:ListOpsMetadata "
    "ssm:ListResourceComplianceSummaries ssm:ListResourceDataSync "
    "ssm:PutConfigurePackageResult ssm:PutInventory ssm:RegisterManagedInstance "
    "ssm:StartExecutionPreview sts:DecodeAuthorizationMessage sts:GetAccessKeyInfo "
    "sts:GetCallerIdentity sts:GetServiceBearerToken sts:GetSessionToken"
)
NO_RESOURCE: frozenset[str] = frozenset(_NO_RESOURCE_TEXT.split())


def takes_no_resource(action: str) -> bool:
    """True if ``action`` is known to take no resource (``s3:ListAllMyBuckets``)."""
    return action in NO_RESOURCE and not accepted_kinds(action)
