"""Reading trails as the archive step compares them: settings, event selectors and status."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from migrate.aws.errors import access_denied, not_found, or_default

# CloudTrail's prices (aws.amazon.com/cloudtrail/pricing): data events $0.10 per 100,000
# delivered; the first copy of management events per region is free, further copies $2.00 per
# 100,000.
DATA_EVENT_USD_PER_MILLION = 1.00
EXTRA_MANAGEMENT_COPY_USD_PER_MILLION = 20.00

# The data resources a playbook can ask for by a short name: every S3 object, every function.
DATA_RESOURCES = {
    "s3": {"Type": "AWS::S3::Object", "Values": ["arn:aws:s3"]},
    "lambda": {"Type": "AWS::Lambda::Function", "Values": ["arn:aws:lambda"]},
}


def wanted_selectors(data_events: list[str]) -> list[dict[str, Any]]:
    """Basic event selectors: management events read and write, plus the data events asked for."""
    return [
        {
            "ReadWriteType": "All",
            "IncludeManagementEvents": True,
            "DataResources": [DATA_RESOURCES[name] for name in sorted(set(data_events))],
        }
    ]


def _management_read_write(selectors: dict[str, Any]) -> bool:
    """True if the trail records management events, both reads and writes."""
    basic = selectors.get("EventSelectors") or []
    advanced = selectors.get("AdvancedEventSelectors") or []
    if not basic and not advanced:
        return True  # a trail without custom selectors records all management events
    if any(s.get("ReadWriteType") == "All" and s.get("IncludeManagementEvents") for s in basic):
        return True
    for sel in advanced:
        fields = {f.get("Field"): f for f in sel.get("FieldSelectors", [])}
        category = fields.get("eventCategory", {}).get("Equals") or []
        if "Management" in category and "readOnly" not in fields:
            return True
    return False


def _data_events(selectors: dict[str, Any]) -> list[str]:
    """The short names of the data events a trail records (for comparison with the params)."""
    found: set[str] = set()
    for sel in selectors.get("EventSelectors") or []:
        for res in sel.get("DataResources") or []:
            for name, wanted in DATA_RESOURCES.items():
                if res.get("Type") == wanted["Type"] and wanted["Values"][0] in res.get(
                    "Values", []
                ):
                    found.add(name)
    return sorted(found)


def read_trails(clients: Any, region: str) -> dict[str, dict[str, Any]]:
    """Every trail visible from ``region`` (multi-Region trails of other home regions too), by
    name, with what the archive step compares. Status is reduced to what is deterministic:
    logging on/off and the latest delivery error (timestamps would make every plan stale)."""
    cloudtrail = clients.client("cloudtrail", region)
    listed = cloudtrail.describe_trails(includeShadowTrails=True).get("trailList", [])
    trails: dict[str, dict[str, Any]] = {}
    for trail in sorted(listed, key=lambda t: str(t.get("TrailARN"))):
        home = trail.get("HomeRegion") or region
        arn = trail.get("TrailARN") or trail.get("Name")
        home_client = clients.client("cloudtrail", home)
        try:
            status = home_client.get_trail_status(Name=arn)
            selectors = home_client.get_event_selectors(TrailName=arn)
        except ClientError as exc:
            # An organization trail seen from a member account cannot be read in detail.
            if not (access_denied(exc) or not_found(exc)):
                raise
            status, selectors = {}, {}
        trails[str(trail["Name"])] = {
            "arn": arn,
            "home_region": home,
            "bucket": trail.get("S3BucketName"),
            "prefix": trail.get("S3KeyPrefix"),
            "multi_region": bool(trail.get("IsMultiRegionTrail")),
            "global_events": bool(trail.get("IncludeGlobalServiceEvents")),
            "validation": bool(trail.get("LogFileValidationEnabled")),
            "kms_key": trail.get("KmsKeyId"),
            "organization": bool(trail.get("IsOrganizationTrail")),
            "logging": bool(status.get("IsLogging")),
            "delivery_error": status.get("LatestDeliveryError") or None,
            "management_read_write": _management_read_write(selectors),
            "data_events": _data_events(selectors),
            "selectors": {
                "EventSelectors": selectors.get("EventSelectors") or [],
                "AdvancedEventSelectors": selectors.get("AdvancedEventSelectors") or [],
            },
        }
    return trails


def trail_status(clients: Any, region: str, name: str) -> dict[str, Any]:
    """``GetTrailStatus`` of one trail ({} when it does not exist)."""
    cloudtrail = clients.client("cloudtrail", region)
    return dict(or_default(lambda: cloudtrail.get_trail_status(Name=name), {}))
