"""DeleteObjects names its keys only in the request body: its evidence is its bucket, not "*"."""

from __future__ import annotations

import copy

from migrate.cloudtrail.parse import FileResult, aggregate_records, parse_bytes
from migrate.steps.iam.policy import generate_policy
from tests.support.cloudtrail_synth import log_file
from tests.unit.test_cloudtrail_resources import KEY, _s3

RECORDS = [_s3("DeleteObjects", "legacy-app-data"), _s3("DeleteObject", "tmp", "x/1.csv")]


def test_delete_objects_is_narrowed_to_its_bucket_on_both_parse_paths() -> None:
    typed = parse_bytes("f", log_file(RECORDS))
    tolerant = FileResult(name="t")
    aggregate_records(copy.deepcopy(RECORDS), tolerant)
    for result in (typed, tolerant):
        arns = result.resources[(KEY, "s3.amazonaws.com", "DeleteObjects")].window()
        assert arns == ["arn:aws:s3:::legacy-app-data/*"]
    policy = generate_policy(
        [
            {
                "action": "s3:DeleteObject",
                "event": "s3.amazonaws.com:DeleteObjects",
                "count": 1,
                "resources": arns,
            }
        ]
    )
    assert policy.narrowed == {"s3:DeleteObject": ["arn:aws:s3:::legacy-app-data/*"]}
    assert not policy.broad
