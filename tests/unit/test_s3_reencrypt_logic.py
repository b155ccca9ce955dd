"""Pure logic of s3.reencrypt: classification, ACL headers, AIMD rate, readers, estimates."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

from migrate.steps.s3 import objects as so
from migrate.steps.s3 import readers as rd
from migrate.steps.s3.reencrypt import S3Reencrypt

TARGET = "arn:aws:kms:us-east-1:123456789012:key/abcd"


def test_classify_covers_every_state() -> None:
    assert so.classify({}, TARGET) == so.UNENCRYPTED
    assert so.classify({"ServerSideEncryption": "AES256"}, TARGET) == so.SSE_S3
    kms = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": TARGET}
    assert so.classify(kms, TARGET) == so.TARGET
    assert so.classify({**kms, "SSEKMSKeyId": "abcd"}, TARGET) == so.TARGET  # bare key id
    assert so.classify({**kms, "SSEKMSKeyId": "other"}, TARGET) == so.OTHER_KMS
    assert so.classify(kms, None) == so.OTHER_KMS  # key not known yet while planning
    assert so.classify({"ServerSideEncryption": "aws:kms:dsse", "SSEKMSKeyId": TARGET}, TARGET) == (
        so.OTHER_KMS
    )
    assert so.classify({"SSECustomerAlgorithm": "AES256"}, TARGET) == so.SSE_C
    assert so.classify({}, TARGET, ssec=True) == so.SSE_C
    assert so.classify({"StorageClass": "DEEP_ARCHIVE"}, TARGET) == so.ARCHIVED
    restored = {"StorageClass": "GLACIER", "Restore": 'ongoing-request="false", expiry-date="x"'}
    assert so.classify(restored, TARGET) == so.UNENCRYPTED
    assert so.classify({"ArchiveStatus": "ARCHIVE_ACCESS"}, TARGET) == so.ARCHIVED
    assert so.needs_work(so.OTHER_KMS, rekey=True) and not so.needs_work(so.OTHER_KMS, rekey=False)
    assert not so.needs_work(so.SSE_C, rekey=True)


def test_default_acl_needs_no_headers_and_others_keep_every_grant() -> None:
    owner = {"ID": "o1", "Type": "CanonicalUser"}
    default = {"Owner": {"ID": "o1"}, "Grants": [{"Grantee": owner, "Permission": "FULL_CONTROL"}]}
    assert so.acl_grant_headers(default) == {}
    shared = {
        "Owner": {"ID": "o1"},
        "Grants": [
            {"Grantee": owner, "Permission": "FULL_CONTROL"},
            {"Grantee": {"URI": so.ALL_USERS, "Type": "Group"}, "Permission": "READ"},
            {"Grantee": {"ID": "p2", "Type": "CanonicalUser"}, "Permission": "READ"},
            {"Grantee": {"ID": "p2", "Type": "CanonicalUser"}, "Permission": "READ_ACP"},
        ],
    }
    assert so.acl_grant_headers(shared) == {
        "GrantFullControl": 'id="o1"',
        "GrantRead": f'id="p2", uri="{so.ALL_USERS}"',
        "GrantReadACP": 'id="p2"',
    }


def test_preserved_params_name_what_a_copy_would_otherwise_drop() -> None:
    head = {
        "StorageClass": "STANDARD_IA",
        "WebsiteRedirectLocation": "/x",
        "ObjectLockMode": "GOVERNANCE",
        "ObjectLockRetainUntilDate": "2030-01-01T00:00:00Z",
        "ObjectLockLegalHoldStatus": "ON",
    }
    assert so.preserved_params(head) == head
    assert so.preserved_params({}) == {"StorageClass": "STANDARD"}


def test_expired_retention_is_not_sent_again_and_a_legal_hold_is_kept() -> None:
    """AWS refuses a retain-until date in the past; the hold has no date and always stays."""
    now = datetime(2026, 6, 1, tzinfo=UTC)
    head = {
        "ObjectLockMode": "COMPLIANCE",
        "ObjectLockRetainUntilDate": datetime(2026, 5, 31, tzinfo=UTC),
        "ObjectLockLegalHoldStatus": "ON",
    }
    assert so.preserved_params(head, now) == {
        "StorageClass": "STANDARD",
        "ObjectLockLegalHoldStatus": "ON",
    }
    future = {**head, "ObjectLockRetainUntilDate": datetime(2026, 6, 2, tzinfo=UTC)}
    assert so.preserved_params(future, now)["ObjectLockMode"] == "COMPLIANCE"


def test_lock_state_reads_are_in_the_permissions() -> None:
    """Without them HEAD returns no lock state and a copy would silently drop it."""
    assert {"s3:GetObjectRetention", "s3:GetObjectLegalHold"} <= set(S3Reencrypt.permissions)


def test_part_ranges_cover_the_object_without_gaps() -> None:
    size = 12 * 1024**2 + 7
    ranges = so.part_ranges(size, 5 * 1024**2)
    assert ranges[0][0] == 0 and ranges[-1][1] == size - 1
    assert all(b[0] == a[1] + 1 for a, b in itertools.pairwise(ranges))
    # At most 10,000 parts, whatever the size.
    assert len(so.part_ranges(5 * 1024**4, 5 * 1024**2)) <= 10_000


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_rate_limiter_spaces_requests_and_backs_off_then_recovers() -> None:
    clock = FakeClock()
    limiter = so.RateLimiter(10, clock=clock, sleep=clock.sleep, increase_per_s=5)
    for _ in range(21):
        limiter.acquire()
    assert 1.0 <= clock.now <= 2.1  # ~10/s after a one-second burst allowance at most
    limiter.on_throttle()
    assert limiter.rate == 5
    limiter.on_throttle()
    assert limiter.rate == 2.5
    for _ in range(1000):
        limiter.on_success()
    assert limiter.rate == 10  # additive increase back up to max_rps, never beyond


def test_unlimited_limiter_gets_a_ceiling_at_the_first_throttle() -> None:
    limiter = so.RateLimiter(0)
    limiter.acquire()  # no wait
    limiter.on_throttle(observed_rps=400)
    assert limiter.rate == 200 and limiter.max_rps == 400


def test_sampling_is_deterministic_and_roughly_proportional() -> None:
    keys = [f"k{i}" for i in range(4000)]
    picked = [k for k in keys if so.in_sample(k, 0.25)]
    assert picked == [k for k in keys if so.in_sample(k, 0.25)]
    assert 800 < len(picked) < 1200
    assert all(so.in_sample(k, 1.0) for k in keys[:10])


SERVICE_POLICY = {
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"AWS": "arn:aws:iam::123456789012:root"},
            "Action": ["kms:Create*", "kms:Describe*"],
            "Resource": "*",
        },
        {
            "Effect": "Allow",
            "Principal": {"AWS": "*"},
            "Action": ["kms:Decrypt", "kms:GenerateDataKey*"],
            "Resource": "*",
            "Condition": {
                "StringEquals": {
                    "kms:CallerAccount": "123456789012",
                    "kms:ViaService": ["s3.us-east-1.amazonaws.com"],
                }
            },
        },
    ]
}


def _bucket_policy(*principals: str) -> dict[str, object]:
    return {
        "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": list(principals)}, "Action": "s3:Get*"},
            {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject"},
            {"Effect": "Deny", "Principal": "*", "Action": "s3:*"},
        ]
    }


def test_readers_the_key_policy_would_cut_off_are_named() -> None:
    local = "arn:aws:iam::123456789012:role/app"
    partner = "arn:aws:iam::210987654321:role/partner"
    readers = {
        r.principal: r
        for r in rd.readers_report(
            _bucket_policy(local, partner), SERVICE_POLICY, "123456789012", "us-east-1"
        )
    }
    assert readers[local].access == "key-policy" and not readers[local].cross_account
    assert readers[partner].access == "none" and readers[partner].cross_account
    assert readers["*"].access == "none"  # anonymous readers can never use a KMS key


def test_root_only_key_policy_delegates_to_iam() -> None:
    strict = {
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": "arn:aws:iam::123456789012:root"},
                "Action": "kms:*",
                "Resource": "*",
            }
        ]
    }
    access = rd.key_policy_access(
        strict, "arn:aws:iam::123456789012:user/reader", "123456789012", "us-east-1"
    )
    assert access == "iam"


def test_estimates_count_requests_per_object() -> None:
    enforced = so.estimate_costs(
        objects=1000,
        multipart_objects=0,
        multipart_parts=0,
        acl_reads=False,
        update_lane_objects=0,
        bucket_key=True,
        max_rps=100,
        list_pages=1,
    )
    assert enforced.requests == 2001 and enforced.kms_requests == 1
    with_acls = so.estimate_costs(
        objects=1000,
        multipart_objects=0,
        multipart_parts=0,
        acl_reads=True,
        update_lane_objects=0,
        bucket_key=False,
        max_rps=100,
        list_pages=1,
    )
    assert with_acls.requests == 3001 and with_acls.kms_requests == 1000
    assert with_acls.duration_s == 30.0 and with_acls.cost_usd > enforced.cost_usd
