"""The crash sweep's parts: run a saved plan as an operator would until a kill point, finish it,
and describe the account as a user would compare it (issue 18.4).

``run_until_killed`` starts ``migrate run --plan ID --yes`` (then ``migrate resume``) as
subprocesses through a :class:`~tests.support.faults.FaultProxy` that SIGKILLs them at its kill
point; gates are approved between processes, as the change board would. ``finish`` resumes in
process, directly against the server, approving what waits, until the run is done.
``account_state`` is what an operator would check after a migration, with the ids AWS makes up
(key ids, snapshot and secret ARN suffixes, instance and access-key ids, run ids) replaced by
what they name, so two runs on two fresh sandboxes compare equal when they did the same.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError
from sqlalchemy import select

from migrate import commands
from migrate.aws.rds_settings import run_hash
from migrate.commands import Settings
from migrate.engine.runner import RunOptions
from migrate.errors import EXIT_AWAITING_APPROVAL, EXIT_OK, EXIT_WAITING
from migrate.sandbox.seed import SeedSummary
from migrate.store import open_store
from migrate.store.models import JournalEntry, Run
from tests.conftest import client
from tests.functional.test_plan_contract import approve_waiting
from tests.support.faults import FaultProxy

RUN_ID = re.compile(r"r-\d{8}-[0-9a-f]{6}")
SECRET_SUFFIX = re.compile(
    r"(arn:aws:secretsmanager:[^:]+:\d+:secret:[^\s\"'<>]+?)-[A-Za-z0-9]{6}\b"
)
AUTOMATED_AT = re.compile(r"-\d{4}-\d{2}-\d{2}-\d{2}-\d{2}$")
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
MIGRATE = Path(sys.executable).parent / "migrate"


def run_id_of(state: str) -> str | None:
    """The newest run in ``state``, read as migrate reads it (a killed writer leaves a WAL that a
    read-only connection could not replay)."""
    if "://" not in state and not Path(state).exists():
        return None
    store = open_store(state)
    try:
        with store.read() as session:
            newest = session.scalars(select(Run.id).order_by(Run.created_at.desc())).first()
    finally:
        store.close()
    return str(newest) if newest else None


def journal_outcomes(state: str, run_id: str) -> list[str]:
    """The outcome of every journal entry of ``run_id``."""
    store = open_store(state)
    try:
        with store.read() as session:
            rows = session.scalars(
                select(JournalEntry.outcome).where(JournalEntry.run_id == run_id)
            ).all()
    finally:
        store.close()
    return [str(r) for r in rows]


def run_until_killed(
    settings: Settings, plan_id: str, proxy: FaultProxy, *, processes: int = 12
) -> tuple[str | None, list[int]]:
    """Apply the plan through ``proxy`` in subprocesses until the proxy kills one, or the run
    ends. Returns (run id, exit codes seen)."""
    env = dict(os.environ, MIGRATE_STATE=str(settings.state), AWS_ENDPOINT_URL=proxy.url)
    args = ["-q", "run", "--plan", plan_id, "--yes"]
    codes: list[int] = []
    for _ in range(processes):
        proc = subprocess.Popen(
            [str(MIGRATE), *args],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        proxy.target_pid = proc.pid
        _, err = proc.communicate(timeout=600)
        codes.append(proc.returncode)
        run_id = run_id_of(str(settings.state))
        if proxy.killed or proc.returncode == EXIT_OK:
            return run_id, codes
        assert run_id is not None, err
        if proc.returncode == EXIT_AWAITING_APPROVAL:
            approve_waiting(settings, run_id)
        elif proc.returncode != EXIT_WAITING:
            raise AssertionError(f"migrate exited {proc.returncode} before the kill point:\n{err}")
        args = ["-q", "resume", run_id, "--yes"]
    raise AssertionError(f"the run neither ended nor reached the kill point: {codes}")


def finish(settings: Settings, run_id: str, attempts: int = 12) -> list[str]:
    """Resume (approving what waits) until the run is done; the failures seen on the way."""
    options = RunOptions(yes=True, quiet=True, max_wait_s=60)
    failures: list[str] = []
    for _ in range(attempts):
        result = commands.resume(settings, run_id, options)
        if result.exit_code == EXIT_OK:
            return failures
        if result.exit_code == EXIT_AWAITING_APPROVAL:
            approve_waiting(settings, run_id)
            continue
        data = commands.status(settings, run_id)
        failures += [f"{s['id']}: {s.get('error')}" for s in data["steps"] if s.get("error")]
        if result.exit_code != EXIT_WAITING:
            raise AssertionError(f"resume ended {result.exit_code}: {failures}")
    raise AssertionError(f"the run did not finish after {attempts} resumes: {failures}")


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()[:12]


class _Names:
    """Replaces made-up ids with what they name."""

    def __init__(self) -> None:
        self.ids: dict[str, str] = {}

    def add(self, made_up: str, name: str) -> None:
        if made_up:
            self.ids[made_up] = name

    def __call__(self, text: Any) -> str:
        out = RUN_ID.sub("RUN", str(text))
        out = SECRET_SUFFIX.sub(r"\1-XXXXXX", out)
        for made_up, name in sorted(self.ids.items(), key=lambda kv: -len(kv[0])):
            out = out.replace(made_up, name)
        return UUID.sub("UUID", out)


def account_state(endpoint: str, summary: SeedSummary, run_id: str | None = None) -> dict[str, Any]:
    """The account (and the seeded config files) as an operator would compare it after a
    migration of the sandbox ``summary`` describes, by run ``run_id``."""
    kms, s3, iam = client("kms", endpoint), client("s3", endpoint), client("iam", endpoint)
    rds, ec2 = client("rds", endpoint), client("ec2", endpoint)
    sm, trail = client("secretsmanager", endpoint), client("cloudtrail", endpoint)
    names = _Names()
    if run_id:
        names.add(run_hash(run_id), "RUNHASH")
    for user in summary.users:
        # A role made for a key is named after the user and the key's last characters.
        names.add(user.access_key_id, f"KEY-OF[{user.name}]")
        names.add(f"-{user.access_key_id[-6:].lower()}", f"-KEY-OF[{user.name}]")
    state: dict[str, Any] = {}

    aliases = kms.list_aliases()["Aliases"]
    by_key: dict[str, list[str]] = {}
    for alias in aliases:
        if alias.get("TargetKeyId"):
            by_key.setdefault(alias["TargetKeyId"], []).append(alias["AliasName"])
    keys = []
    for i, k in enumerate(kms.list_keys()["Keys"]):
        meta = kms.describe_key(KeyId=k["KeyId"])["KeyMetadata"]
        # moto labels the EBS default key it makes on demand CUSTOMER (AWS: KeyManager AWS).
        if meta["KeyManager"] != "CUSTOMER" or str(meta.get("Description", "")).startswith(
            "Default master key"
        ):
            continue
        label = ",".join(sorted(by_key.get(meta["KeyId"], []))) or f"unaliased-{i}"
        names.add(meta["Arn"], f"KEY[{label}]")
        names.add(meta["KeyId"], f"KEY[{label}]")
        keys.append((label, meta["KeyState"], meta.get("Description", "")))
    state["kms_keys"] = sorted(keys)

    for res in ec2.describe_instances()["Reservations"]:
        for inst in res["Instances"]:
            tag = {t["Key"]: t["Value"] for t in inst.get("Tags", [])}.get("Name", "?")
            names.add(inst["InstanceId"], f"INSTANCE[{tag}]")

    buckets: dict[str, Any] = {}
    for bucket in s3.list_buckets()["Buckets"]:
        name = bucket["Name"]
        try:
            rules = s3.get_bucket_encryption(Bucket=name)["ServerSideEncryptionConfiguration"]
            enc = names(rules["Rules"])
        except ClientError as exc:
            enc = exc.response["Error"]["Code"]
        versions = s3.list_object_versions(Bucket=name)
        objects: dict[str, Any] = {}
        for v in versions.get("Versions", []):
            entry = objects.setdefault(v["Key"], {"versions": 0})
            entry["versions"] += 1
            if v["IsLatest"]:
                try:
                    head = s3.head_object(Bucket=name, Key=v["Key"])
                    entry["sse"] = head.get("ServerSideEncryption")
                    entry["key"] = names(head.get("SSEKMSKeyId"))
                    entry["size"] = head["ContentLength"]
                    entry["headers"] = head.get("ContentType"), head.get("Metadata")
                except ClientError as exc:
                    entry["sse"] = f"unreadable: {exc.response['Error']['Code']}"
        for m in versions.get("DeleteMarkers", []):
            objects.setdefault(m["Key"], {"versions": 0})["delete_markers"] = (
                objects.get(m["Key"], {}).get("delete_markers", 0) + 1
            )
        buckets[name] = {"encryption": enc, "objects": objects}
    state["buckets"] = buckets

    state["db_instances"] = sorted(
        (
            d["DBInstanceIdentifier"],
            d["DBInstanceStatus"],
            d.get("StorageEncrypted", False),
            names(d.get("KmsKeyId")),
            d.get("DeletionProtection", False),
        )
        for d in rds.describe_db_instances()["DBInstances"]
    )
    state["db_clusters"] = sorted(
        (c["DBClusterIdentifier"], c.get("StorageEncrypted", False), names(c.get("KmsKeyId")))
        for c in rds.describe_db_clusters()["DBClusters"]
    )
    state["db_snapshots"] = sorted(
        (
            AUTOMATED_AT.sub("-AT", names(s["DBSnapshotIdentifier"])),
            s.get("SnapshotType"),
            s.get("Encrypted", False),
        )
        for s in rds.describe_db_snapshots()["DBSnapshots"]
    )
    state["db_cluster_snapshots"] = sorted(
        (names(s["DBClusterSnapshotIdentifier"]), s.get("StorageEncrypted", False))
        for s in rds.describe_db_cluster_snapshots()["DBClusterSnapshots"]
    )

    state["roles"] = sorted(
        (
            names(r["RoleName"]),
            tuple(sorted(iam.list_role_policies(RoleName=r["RoleName"])["PolicyNames"])),
        )
        for r in iam.list_roles()["Roles"]
    )
    state["instance_profiles"] = sorted(
        (names(p["InstanceProfileName"]), tuple(sorted(names(r["RoleName"]) for r in p["Roles"])))
        for p in iam.list_instance_profiles()["InstanceProfiles"]
    )
    state["associations"] = sorted(
        (names(a["InstanceId"]), names(a["IamInstanceProfile"]["Arn"]), a["State"])
        for a in ec2.describe_iam_instance_profile_associations()["IamInstanceProfileAssociations"]
    )
    state["access_keys"] = sorted(
        (u["UserName"], k["Status"])
        for u in iam.list_users()["Users"]
        for k in iam.list_access_keys(UserName=u["UserName"])["AccessKeyMetadata"]
    )

    secrets = []
    for s in sm.list_secrets()["SecretList"]:
        value = sm.get_secret_value(SecretId=s["ARN"]).get("SecretString", "")
        secrets.append((s["Name"], _digest(value), names(s.get("KmsKeyId"))))
    state["secrets"] = sorted(secrets)

    state["trails"] = sorted(
        (t["Name"], t.get("IsMultiRegionTrail"), t.get("LogFileValidationEnabled"))
        for t in trail.describe_trails()["trailList"]
    )
    state["configs"] = {
        str(p.relative_to(summary.config_dir)): names(p.read_text(errors="replace"))
        for p in sorted(summary.config_dir.rglob("*"))
        if p.is_file()
    }
    return state
