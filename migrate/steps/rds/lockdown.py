"""Stop-writes enforced: the database's security groups swapped for a lockdown group.

With ``stop_writes: security-groups`` (the default), the stop-writes phase of ``rds.encrypt``
does not only record the operator's approval: it creates ``migrate-lockdown-<run>-<db>`` in the
database's VPC with no inbound rule (``lockdown_allow`` adds the paths that must stay open, on the
database's port), and modifies the instance or cluster to use that group alone, at once. Nobody
can open a new connection to the original from then on, until it is retired.

What a security-group change does not do, and what covers it: connections already established
stay open (EC2 connection tracking keeps them), so the final snapshot still waits until CloudWatch
shows no client (:func:`phases.still_connected`). The encrypted copy is restored with the
original's groups (recorded before the change, :func:`unlocked`), so the application reaches it
after the cut-over as before; the retired original keeps the lockdown until the cleanup deletes it
and then the group. ``migrate rollback`` puts the original groups back and deletes the group.

Every change is recorded before its AWS call (``rds:lockdown``, ``ec2:security-group``), so a
crash at any point leaves a run that knows what to undo.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import partial
from typing import Any

from botocore.exceptions import ClientError

from migrate.aws.errors import access_denied, error_code, has_code
from migrate.engine.base import Wait
from migrate.engine.context import StepContext
from migrate.errors import BadInputError, StepFailed
from migrate.steps.rds.phases import Kind, busy
from migrate.steps.rds.run import PhaseRun, poll_until

MODE_GROUPS = "security-groups"
MODE_OPERATOR = "operator"
MODES = (MODE_GROUPS, MODE_OPERATOR)
LOCKDOWN = "rds:lockdown"  # the database whose groups were swapped: details groups, lock_group
LOCK_GROUP = "ec2:security-group"  # the lockdown group itself
# A VPC security group membership on its way in or out after a modify.
TRANSITIONAL = ("adding", "removing", "modifying")
PERMISSIONS = (
    "ec2:DescribeSecurityGroups",
    "ec2:CreateSecurityGroup",
    "ec2:AuthorizeSecurityGroupIngress",
    "ec2:DeleteSecurityGroup",
    "ec2:CreateTags",
    "rds:DescribeDBSubnetGroups",
)


def group_name(run_id: str | None, db_id: str) -> str:
    """The lockdown group's name (unique per run and database; EC2 allows 255 characters)."""
    return f"migrate-lockdown-{run_id or 'plan'}-{db_id}"[:255]


def _ids(desc: Mapping[str, Any]) -> list[str]:
    return sorted(str(g["VpcSecurityGroupId"]) for g in desc.get("VpcSecurityGroups") or ())


def plan_summary(
    mode: str, kind: Kind, db_id: str, groups: list[str], window: str, allow: Sequence[str] = ()
) -> str:
    """The stop-writes action's line in the plan, naming how writes are stopped and who may
    still connect (``lockdown_allow``)."""
    if mode == MODE_OPERATOR:
        return f"confirm the application has stopped writing to {kind.label}{db_id} ({window})"
    if allow:
        return (
            f"stop writes to {kind.label}{db_id}: replace its security group(s) "
            f"{', '.join(groups) or '(none)'} with a lockdown group that admits only "
            f"{', '.join(allow)} on its port, so nothing else can connect until it is "
            f"retired ({window})"
        )
    return (
        f"stop writes to {kind.label}{db_id}: replace its security group(s) "
        f"{', '.join(groups) or '(none)'} with a lockdown group without inbound rules, so "
        f"nothing can connect until it is retired ({window})"
    )


def plan_risk(mode: str, allow: list[str]) -> str:
    """What the stop-writes mode does and does not guarantee (a risk line of the gate)."""
    if mode == MODE_OPERATOR:
        return (
            "stop-writes mode: operator (trusted, not enforced). The final snapshot waits until "
            "CloudWatch DatabaseConnections shows no client after the approval, and the "
            "cut-over and cleanup refuse when the original had clients after the final "
            "snapshot (original_connections_allowed); but nothing keeps a writer from "
            "connecting again, and its writes would be lost. stop_writes: security-groups "
            "enforces it"
        )
    kept = f"; only {', '.join(allow)} may still connect" if allow else ""
    return (
        "stop-writes mode: security-groups (enforced). New connections are refused from the "
        f"approval on{kept}; connections already open are not cut by a security-group change, "
        "so the final snapshot waits until CloudWatch shows no client (stop the application or "
        "restart its pools). The encrypted copy gets the original groups; rollback puts them "
        "back on the original"
    )


def recorded(ctx: StepContext, db_id: str, cluster: bool | None = None) -> dict[str, Any] | None:
    """The lockdown of ``db_id`` recorded in this run: ``groups`` (the original ones) and
    ``lock_group``, or None. ``cluster`` tells an instance from a cluster of the same name."""
    found = None
    for res in ctx.resources(LOCKDOWN):
        details = dict(res.details or {})
        if res.identifier == db_id and cluster in (None, bool(details.get("cluster"))):
            found = details
    return found


def unlocked(
    ctx: StepContext, db_id: str, settings: dict[str, Any], cluster: bool = False
) -> dict[str, Any]:
    """``settings`` of the live original with its security groups as they were before the
    lockdown (what the encrypted copy must get, and what verify compares)."""
    lock = recorded(ctx, db_id, cluster)
    if lock is None:
        return settings
    live = sorted(settings.get("vpc_security_group_ids") or ())
    if lock.get("lock_group") and live == [lock["lock_group"]]:
        settings = {**settings, "vpc_security_group_ids": sorted(lock["groups"])}
    return settings


def refuse_leftover_locks(ctx: StepContext, databases: Mapping[str, Any]) -> None:
    """While planning: refuse a database that is still in a lockdown group of an earlier run
    (abandoned, or its rollback failed). Its groups would be taken for its own: the copy would
    get the lockdown, and after the cut-over nobody could connect to it."""
    by_region: dict[str, dict[str, list[str]]] = {}
    for db_id, db in databases.items():
        if db.get("encrypted"):
            continue
        groups = (db.get("settings") or {}).get("vpc_security_group_ids") or []
        if groups:
            by_region.setdefault(db["region"], {})[db_id] = list(groups)
    for region, dbs in sorted(by_region.items()):
        ids = sorted({g for groups in dbs.values() for g in groups})
        try:
            found = ctx.client("ec2", region).describe_security_groups(GroupIds=ids)
        except ClientError as exc:
            if has_code(exc, "InvalidGroup.NotFound") or access_denied(exc):
                continue  # no evidence either way; the stop-writes phase looks again
            raise
        locks = {
            str(g["GroupId"]): str(g.get("GroupName"))
            for g in found.get("SecurityGroups", [])
            if str(g.get("GroupName", "")).startswith("migrate-lockdown-")
        }
        for db_id, groups in sorted(dbs.items()):
            left = [f"{locks[g]} ({g})" for g in groups if g in locks]
            if left:
                raise BadInputError(
                    f"{db_id} is still locked down by an earlier run: its security groups are "
                    f"{', '.join(left)}. Its own groups would be lost on the encrypted copy. Roll "
                    "that run back (`migrate rollback RUN rds-encrypt`, RUN is in the group's "
                    "name) or give the database its groups back by hand, then plan again."
                )


def _vpc_of(run: PhaseRun, rds: Any, kind: Kind, desc: Mapping[str, Any], ec2: Any) -> str:
    subnet = desc.get("DBSubnetGroup")
    if isinstance(subnet, Mapping) and subnet.get("VpcId"):
        return str(subnet["VpcId"])  # an instance names its subnet group's VPC
    if isinstance(subnet, str) and subnet:
        groups = rds.describe_db_subnet_groups(DBSubnetGroupName=subnet)["DBSubnetGroups"]
        if groups and groups[0].get("VpcId"):
            return str(groups[0]["VpcId"])
    current = _ids(desc)
    if current:
        found = ec2.describe_security_groups(GroupIds=current)["SecurityGroups"]
        if found and found[0].get("VpcId"):
            return str(found[0]["VpcId"])
    raise StepFailed(
        f"cannot tell which VPC {kind.label}{run.target} is in (no subnet group or security "
        "group names one), so no lockdown group can be made; nothing was changed. Set "
        "stop_writes: operator for this database and stop its writers yourself, then resume."
    )


def _find_group(ec2: Any, name: str, vpc: str) -> str | None:
    found = ec2.describe_security_groups(
        Filters=[{"Name": "group-name", "Values": [name]}, {"Name": "vpc-id", "Values": [vpc]}]
    )["SecurityGroups"]
    return str(found[0]["GroupId"]) if found else None


def _allow(ec2: Any, group: str, port: int | None, allow: list[str]) -> None:
    """Open the database's port to the ``lockdown_allow`` entries (idempotent)."""
    if not allow or not port:
        return
    perm: dict[str, Any] = {"IpProtocol": "tcp", "FromPort": int(port), "ToPort": int(port)}
    v4 = [a for a in allow if not a.startswith("sg-") and ":" not in a]
    v6 = [a for a in allow if ":" in a]
    pairs = [a for a in allow if a.startswith("sg-")]
    if v4:
        perm["IpRanges"] = [{"CidrIp": c, "Description": "migrate lockdown_allow"} for c in v4]
    if v6:
        perm["Ipv6Ranges"] = [{"CidrIpv6": c, "Description": "migrate lockdown_allow"} for c in v6]
    if pairs:
        perm["UserIdGroupPairs"] = [{"GroupId": g} for g in pairs]
    try:
        ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=[perm])
    except ClientError as exc:
        if not has_code(exc, "InvalidPermission.Duplicate"):
            raise


def _modify_groups(rds: Any, kind: Kind, db_id: str, groups: list[str]) -> None:
    if kind.label:
        rds.modify_db_cluster(
            DBClusterIdentifier=db_id, VpcSecurityGroupIds=groups, ApplyImmediately=True
        )
    else:
        rds.modify_db_instance(
            DBInstanceIdentifier=db_id, VpcSecurityGroupIds=groups, ApplyImmediately=True
        )


def lock(run: PhaseRun, rds: Any, kind: Kind, allow: list[str]) -> Wait | None:
    """Swap the database's security groups for the lockdown group; None once it is in force.

    Resumable at every point: the original groups and the group's name are recorded before the
    calls, the group is found by name in the VPC, and a database already in the lockdown group
    is not modified again.
    """
    db_id, state, region = run.target, run.state, run.action.region
    desc = kind.describe(rds, db_id)
    if desc is None or desc.get("StorageEncrypted"):
        raise StepFailed(
            f"{kind.label}{db_id} is gone or already encrypted; nothing to stop. Plan again."
        )
    ec2 = run.ctx.client("ec2", region)
    name = group_name(run.run_id, db_id)
    cluster = bool(kind.label)
    lock_id = state.get("lock_group")
    if "groups" not in state:
        state["groups"] = _ids(desc)  # before any change: what the copy and a rollback get back
        run.save()
    if lock_id is None:
        vpc = _vpc_of(run, rds, kind, desc, ec2)
        lock_id = _find_group(ec2, name, vpc)
        if lock_id is None:
            # Intent first: a crash after the create still leaves a group rollback deletes.
            run.record(LOCK_GROUP, name, "created", vpc=vpc, database=db_id, cluster=cluster)
            try:
                answer = ec2.create_security_group(
                    GroupName=name,
                    Description=f"migrate: no inbound rule; {db_id} takes no writes (run "
                    f"{run.run_id})"[:255],
                    VpcId=vpc,
                    TagSpecifications=[
                        {
                            "ResourceType": "security-group",
                            "Tags": [
                                {"Key": k, "Value": v} for k, v in run.tags("lockdown").items()
                            ],
                        }
                    ],
                )
            except ClientError as exc:
                if not has_code(exc, "InvalidGroup.Duplicate"):
                    raise
                # Made by an earlier attempt whose answer was lost, and not yet visible to
                # DescribeSecurityGroups (EC2 is eventually consistent): found at the next poll.
                return run.wait(f"the lockdown group {name} exists; waiting until EC2 lists it")
            lock_id = str(answer["GroupId"])
        run.record(
            LOCK_GROUP, name, "created", vpc=vpc, database=db_id, cluster=cluster, group_id=lock_id
        )
        state["lock_group"] = lock_id
        run.save()
    # An instance's port is in its Endpoint; a cluster's Endpoint is a host name, its port apart.
    endpoint = desc.get("Endpoint")
    port = endpoint.get("Port") if isinstance(endpoint, Mapping) else desc.get("Port")
    if allow and not state.get("allowed"):
        _allow(ec2, lock_id, port or desc.get("DbInstancePort"), allow)
        state["allowed"] = True
        run.save()
    current = _ids(desc)
    moving = any(g.get("Status") in TRANSITIONAL for g in desc.get("VpcSecurityGroups") or ())
    # Modified once: while AWS moves the groups (adding/removing), a second modify would be
    # refused (the database is being modified), so the phase only waits.
    if lock_id not in current or (current != [lock_id] and not moving):
        why = busy(kind, [(db_id, desc)])
        if why:
            return run.wait(why)  # AWS refuses a modify while the database is being modified
        run.record(
            LOCKDOWN,
            db_id,
            "modified",
            groups=state["groups"],
            lock_group=lock_id,
            name=name,
            cluster=cluster,
        )
        _modify_groups(rds, kind, db_id, [lock_id])
        desc = kind.describe(rds, db_id) or {}
    active = [
        g
        for g in desc.get("VpcSecurityGroups") or ()
        if g.get("VpcSecurityGroupId") == lock_id and g.get("Status", "active") == "active"
    ]
    if _ids(desc) != [lock_id] or not active:
        return run.wait(f"{kind.label}{db_id}: putting the lockdown group {lock_id} in force")
    return None


def _delete_group(ec2: Any, group: str) -> bool:
    """Delete the lockdown group; False while something still uses it (AWS releases a deleted
    database's network interfaces some minutes after it is gone)."""
    try:
        ec2.delete_security_group(GroupId=group)
    except ClientError as exc:
        if has_code(exc, "InvalidGroup.NotFound"):
            return True
        if has_code(exc, "DependencyViolation", "InvalidGroup.InUse"):
            return False
        raise
    return True


def drop_group(run: PhaseRun, kind: Kind) -> Wait | None:
    """Cleanup, once the original is deleted: delete its lockdown group (waits while AWS still
    holds the deleted database's network interfaces in it)."""
    lock = recorded(run.ctx, run.target, bool(kind.label))
    if lock is None or not lock.get("lock_group"):
        return None
    ec2 = run.ctx.client("ec2", run.action.region)
    if not _delete_group(ec2, str(lock["lock_group"])):
        return run.wait(
            f"the lockdown group {lock['lock_group']} of {run.target} is still in use "
            "(AWS releases a deleted database's network interfaces after some minutes)"
        )
    run.record(LOCK_GROUP, str(lock.get("name") or lock["lock_group"]), "deleted")
    return None


def _settled(rds: Any, kind: Kind, db_id: str) -> bool:
    """The database is available and no security group membership is moving: a modify now
    is accepted."""
    desc = kind.describe(rds, db_id) or {}
    moving = any(g.get("Status") in TRANSITIONAL for g in desc.get("VpcSecurityGroups") or ())
    return not moving and busy(kind, [(db_id, desc)]) is None


def _has_groups(rds: Any, kind: Kind, db_id: str, groups: list[str]) -> bool:
    return _ids(kind.describe(rds, db_id) or {}) == groups


def _of_kind(res: Any, kind: Kind) -> bool:
    return bool((res.details or {}).get("cluster")) == bool(kind.label)


def unlock(ctx: StepContext, kind: Kind, params: Any) -> None:
    """Rollback: the original (back under its name) gets its own security groups again, and
    every lockdown group of the run is deleted. A database that is gone or encrypted (the copy
    under the name) is left alone."""
    for res in ctx.resources(LOCKDOWN):
        if not _of_kind(res, kind):
            continue
        db_id, details = res.identifier, dict(res.details or {})
        rds = ctx.client("rds", res.region or ctx.regions[0])
        lock_id = str(details.get("lock_group") or "")
        groups = sorted(details.get("groups") or ())
        desc = kind.describe(rds, db_id)
        if desc is None or desc.get("StorageEncrypted") or lock_id not in _ids(desc):
            continue
        poll_until(
            params,
            f"{kind.label}{db_id} to finish its current modification",
            partial(_settled, rds, kind, db_id),
        )
        if not groups:
            raise StepFailed(
                f"the lockdown of {kind.label}{db_id} recorded no original security group; "
                "give it its groups back by hand (--vpc-security-group-ids) and run rollback "
                "again."
            )
        try:
            _modify_groups(rds, kind, db_id, groups)
        except ClientError as exc:
            raise StepFailed(
                f"cannot give {kind.label}{db_id} its security groups {', '.join(groups)} back "
                f"({error_code(exc)}); it is still locked down. Fix the cause and run rollback "
                "again."
            ) from exc
        poll_until(
            params,
            f"{kind.label}{db_id} to get its security groups back",
            partial(_has_groups, rds, kind, db_id, groups),
        )
    for res in ctx.resources(LOCK_GROUP):
        if res.change == "deleted" or not _of_kind(res, kind):
            continue
        details = dict(res.details or {})
        ec2 = ctx.client("ec2", res.region or ctx.regions[0])
        group = details.get("group_id") or _find_group(ec2, res.identifier, str(details["vpc"]))
        if group:
            poll_until(
                params,
                f"the lockdown group {group} to be free",
                partial(_delete_group, ec2, str(group)),
            )
