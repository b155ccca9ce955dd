"""The FTR requirements that findings answer, by the ids of AWS's Partner Hosted FTR checklist.

Every finding a step reports (``facts["findings"]``) names one of these ids, so a plan doubles as
the evidence pack for the review. The ids and titles follow the Partner Hosted Validation
Checklist's sections (AWS root account, communications from AWS, CloudTrail, IAM, network
security, S3 bucket access, sensitive data); check them against the checklist version your review
uses, which AWS revises twice a year.
"""

from __future__ import annotations

from typing import Any, Literal

REQUIREMENTS: dict[str, str] = {
    "ARC-001": "Use the root user only by exception",
    "ARC-003": "Enable multi-factor authentication (MFA) on the root user",
    "ARC-004": "Remove access keys for the root user",
    "ACOM-001": "Configure AWS account contacts (billing, operations, security)",
    "ACOM-002": "Set account contacts to company-owned email addresses or distribution lists",
    "CTL-001": "Enable CloudTrail in all Regions, with integrity validation, logs protected",
    "IAM-001": "Enable MFA for IAM users with console access",
    "IAM-003": "Enforce a strong password policy for IAM users",
    "NETSEC-001": "Least permissive security group rules (no SSH/RDP open to the internet)",
    "S3-001": "Review S3 buckets for appropriate access (Block Public Access)",
    "SDAT-002": "Encrypt sensitive data at rest (EBS default encryption with a managed key)",
    "SDAT-003": "Use only protocols with encryption in transit (TLS-only bucket policies)",
}

Status = Literal["pass", "fail", "manual"]


def finding(requirement: str, status: Status, subject: str, detail: str) -> dict[str, Any]:
    """One finding: which FTR requirement, its status, what it is about and why."""
    if requirement not in REQUIREMENTS:
        raise ValueError(f"unknown FTR requirement id {requirement!r}")
    return {
        "requirement": requirement,
        "title": REQUIREMENTS[requirement],
        "status": status,
        "subject": subject,
        "detail": detail,
    }
