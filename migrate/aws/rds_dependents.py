"""What else reaches a database and does not follow its cut-over: RDS Proxy targets, DMS tasks.

A rename-swap keeps the endpoint's DNS name with the *name*, so clients that connect by host
name reach the encrypted copy. Two kinds of client do not connect that way:

- an **RDS Proxy** registers its targets as databases (``RdsResourceId``), and a renamed
  database stays registered: after the cut-over the proxy keeps sending its clients to the
  renamed original, whose writes cleanup then deletes;
- a **DMS task** reads (CDC source) or writes (target) the database through an endpoint: its
  host name follows the swap, but a CDC source's position (binlog, replication slot, LSN) is
  the original's, and a running task holds connections through the stop-writes gate.

Both are read-only look-ups for the plan. Any refusal (not granted, DMS not used in the Region,
an API the account does not have) gives None, which the plan reports as "could not be read".
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError


def proxy_targets(rds: Any, identifiers: Iterable[str]) -> dict[str, list[str]] | None:
    """``{database id: [proxy name]}`` for the proxies that target one of ``identifiers``
    (instance or cluster ids); None when RDS would not say."""
    wanted = set(identifiers)
    found: dict[str, list[str]] = {i: [] for i in sorted(wanted)}
    if not wanted:
        return found
    try:
        for page in rds.get_paginator("describe_db_proxies").paginate():
            for proxy in page.get("DBProxies", []):
                name = proxy["DBProxyName"]
                targets = rds.get_paginator("describe_db_proxy_targets").paginate(DBProxyName=name)
                for tpage in targets:
                    for target in tpage.get("Targets", []):
                        for rid in (target.get("RdsResourceId"), target.get("TrackedClusterId")):
                            if rid in wanted and name not in found[rid]:
                                found[rid].append(name)
    except (ClientError, BotoCoreError):
        return None
    return found


def dms_tasks(dms: Any, addresses: dict[str, str]) -> dict[str, list[str]] | None:
    """``{database id: ["TASK (source, cdc)", ...]}``: the DMS replication tasks whose source or
    target endpoint names the database's host (``addresses``: id -> endpoint address); None
    when DMS would not say."""
    found: dict[str, list[str]] = {i: [] for i in sorted(addresses)}
    if not addresses:
        return found
    by_host = {host.lower(): db_id for db_id, host in addresses.items() if host}
    try:
        endpoints: dict[str, str] = {}
        for page in dms.get_paginator("describe_endpoints").paginate():
            for ep in page.get("Endpoints", []):
                db_id = by_host.get(str(ep.get("ServerName") or "").lower())
                if db_id:
                    endpoints[ep["EndpointArn"]] = db_id
        if not endpoints:
            return found
        for page in dms.get_paginator("describe_replication_tasks").paginate(WithoutSettings=True):
            for task in page.get("ReplicationTasks", []):
                for role, arn in (
                    ("source", task.get("SourceEndpointArn")),
                    ("target", task.get("TargetEndpointArn")),
                ):
                    if arn in endpoints:
                        # Not its status: stopping the task, as the plan asks, must not
                        # make the approved plan stale.
                        found[endpoints[arn]].append(
                            f"{task['ReplicationTaskIdentifier']} ({role}, "
                            f"{task.get('MigrationType')})"
                        )
    except (ClientError, BotoCoreError):
        return None
    return found


def dependents_risk(
    kind_label: str, db_id: str, proxies: list[str] | None, tasks: list[str] | None
) -> list[str]:
    """The plan's risk lines for what reaches ``db_id`` besides its DNS name."""
    out: list[str] = []
    if proxies is None:
        out.append(
            f"whether an RDS Proxy targets {kind_label}{db_id} could not be read (grant "
            "rds:DescribeDBProxies and rds:DescribeDBProxyTargets to see it here)"
        )
    elif proxies:
        out.append(
            f"RDS Proxy {', '.join(proxies)} targets {kind_label}{db_id} as a database, not by "
            "its host name: after the cut-over it keeps sending its clients to the renamed "
            "original, whose writes cleanup would delete. Right after the cut-over, deregister "
            "the renamed original and register the encrypted database (aws rds "
            "deregister-db-proxy-targets / register-db-proxy-targets); cleanup refuses while "
            "the original still has clients"
        )
    if tasks is None:
        out.append(
            f"whether a DMS task uses {kind_label}{db_id} could not be read (grant "
            "dms:DescribeEndpoints and dms:DescribeReplicationTasks to see it here)"
        )
    elif tasks:
        out.append(
            f"DMS task(s) {', '.join(tasks)} use {kind_label}{db_id}: stop them before the "
            "stop-writes gate (a running task holds connections and its writes would be lost); "
            "a CDC source's position (binlog, replication slot) is the original's, so after "
            "the cut-over restart it from a new start position, or with a full load"
        )
    return out
