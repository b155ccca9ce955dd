"""The per-cluster phases of ``rds.encrypt`` for Aurora: snapshot and encrypted copy, restore,
member instances, verify, rename-swap cut-over, cleanup and rollback.

Each phase looks at what exists before it creates (names come from run id + cluster id), returns
an engine :class:`Wait` while AWS works, and measures its duration into the cluster's
``rds:timing``. The settings, API parameters and diffs it uses are in ``rds_cluster``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from migrate.engine.base import Action, Wait
from migrate.engine.context import StepContext
from migrate.errors import StepFailed
from migrate.steps import rds_settings as rs
from migrate.steps.rds_aws import (
    all_instances,
    describe_cluster,
    describe_cluster_snapshot,
    describe_instance,
    tag_value,
)
from migrate.steps.rds_cluster import (
    CLUSTER_CLEANUP,
    CLUSTER_COMPARED,
    CLUSTER_CUT_OVER,
    CLUSTER_FAILED,
    CLUSTER_FINAL_SNAPSHOT,
    CLUSTER_MEMBERS,
    CLUSTER_RESTORE,
    CLUSTER_STOP_WRITES,
    CLUSTER_VERIFY,
    CLUSTER_WARM_UP,
    MAX_MODIFY_ATTEMPTS,
    MEMBER_COMPARED,
    SNAPSHOT_FAILED,
    cluster_members,
    cluster_settings,
    creation_order,
    describe_diffs,
    diff_cluster,
    diff_member,
    member_create_kwargs,
    member_modify_kwargs,
    member_names,
    member_settings,
    modify_cluster_kwargs,
    restore_cluster_kwargs,
    tag_list,
)

if TYPE_CHECKING:
    from migrate.steps.rds_encrypt import RdsEncrypt


def _parse(value: str) -> datetime:
    return datetime.fromisoformat(value)


def _iso(host: RdsEncrypt) -> str:
    return host.clock().isoformat(timespec="seconds")


class ClusterFlow:
    """The per-cluster phases of ``rds.encrypt``; ``host`` is the step (params, clock, waits,
    checkpoints, timings)."""

    def __init__(self, host: RdsEncrypt) -> None:
        self.host = host

    def act(self, ctx: StepContext, rds: Any, action: Action) -> Wait | None:
        """Run one phase of one cluster."""
        handlers = {
            CLUSTER_WARM_UP: lambda: self.snapshot_and_copy(ctx, rds, action, "warmup"),
            CLUSTER_STOP_WRITES: lambda: self.stop_writes(ctx, action),
            CLUSTER_FINAL_SNAPSHOT: lambda: self.snapshot_and_copy(ctx, rds, action, "final"),
            CLUSTER_RESTORE: lambda: self.restore(ctx, rds, action),
            CLUSTER_MEMBERS: lambda: self.members(ctx, rds, action),
            CLUSTER_VERIFY: lambda: self.verify(ctx, rds, action),
            CLUSTER_CUT_OVER: lambda: self.cut_over(ctx, rds, action),
            CLUSTER_CLEANUP: lambda: self.cleanup(ctx, rds, action),
        }
        return handlers[action.kind]()

    # helpers ----------------------------------------------------------------------------------
    def _wait(self, ctx: StepContext, state: dict[str, Any], action: Action, why: str) -> Wait:
        return self.host._wait(ctx, state, action, why)

    def _since(self, state: dict[str, Any], key: str) -> float:
        started = _parse(state.get(key) or state["started_at"])
        return round((self.host.clock() - started).total_seconds(), 1)

    def original(self, rds: Any, action: Action) -> tuple[dict[str, Any], dict[str, Any]]:
        """(cluster settings, members) of the live original (untouched until the cut-over),
        or the observed ones once it is renamed or gone."""
        live = describe_cluster(rds, action.target)
        if live is not None and not live.get("StorageEncrypted"):
            instances = {
                str(m["DBInstanceIdentifier"]): describe_instance(rds, m["DBInstanceIdentifier"])
                for m in live.get("DBClusterMembers") or ()
            }
            found = {k: v for k, v in instances.items() if v is not None}
            return cluster_settings(live), cluster_members(live, found)
        return dict(action.details["settings"]), dict(action.details["members"])

    # warm-up / final snapshot ------------------------------------------------------------------
    def snapshot_and_copy(
        self, ctx: StepContext, rds: Any, action: Action, phase: str
    ) -> Wait | None:
        """Cluster snapshot ``migrate-<run>-<cluster>-<phase>``, copied with the key to ``-enc``."""
        cid = action.target
        raw_id = rs.snapshot_id(ctx.run_id, cid, phase)
        enc_id = rs.snapshot_id(ctx.run_id, cid, phase, encrypted=True)
        state = self.host._phase_state(ctx)
        enc = describe_cluster_snapshot(rds, enc_id)
        if enc is None:
            raw = describe_cluster_snapshot(rds, raw_id)
            if raw is None:
                original = describe_cluster(rds, cid)
                if original is None or original.get("StorageEncrypted"):
                    raise StepFailed(
                        f"cluster {cid} is gone or already encrypted; nothing to snapshot. "
                        "Plan again."
                    )
                if original.get("Status") != "available":
                    return self._wait(ctx, state, action, f"cluster {cid} is {original['Status']}")
                tags = self.host._tags(ctx, cid, f"{phase}-snapshot")
                rds.create_db_cluster_snapshot(
                    DBClusterSnapshotIdentifier=raw_id,
                    DBClusterIdentifier=cid,
                    Tags=[{"Key": k, "Value": v} for k, v in tags.items()],
                )
                state["snapshot_started_at"] = _iso(self.host)
                self.host._save_state(ctx, state)
                ctx.record_resource(
                    "rds:cluster-snapshot", raw_id, region=action.region, details={"source": cid}
                )
                raw = describe_cluster_snapshot(rds, raw_id)
            status = (raw or {}).get("Status")
            if status in SNAPSHOT_FAILED:
                raise StepFailed(
                    f"cluster snapshot {raw_id} of {cid} is {status}. Delete it and resume, "
                    "or roll back."
                )
            if status != "available":
                pct = (raw or {}).get("PercentProgress", 0)
                return self._wait(
                    ctx, state, action, f"cluster snapshot {raw_id} {status} ({pct}%)"
                )
            state.setdefault("snapshot_done_at", _iso(self.host))
            rds.copy_db_cluster_snapshot(
                SourceDBClusterSnapshotIdentifier=raw_id,
                TargetDBClusterSnapshotIdentifier=enc_id,
                KmsKeyId=self.host._key_arn(ctx, action.region),
                CopyTags=True,
            )
            state["copy_started_at"] = _iso(self.host)
            self.host._save_state(ctx, state)
            ctx.record_resource(
                "rds:cluster-snapshot",
                enc_id,
                region=action.region,
                details={"source": cid, "encrypted": True},
            )
            enc = describe_cluster_snapshot(rds, enc_id)
        status = (enc or {}).get("Status")
        if status in SNAPSHOT_FAILED:
            raise StepFailed(
                f"the encrypted cluster snapshot copy {enc_id} is {status} (is the KMS key usable "
                "by RDS?). Delete it and resume, or roll back."
            )
        if status != "available":
            pct = (enc or {}).get("PercentProgress", 0)
            return self._wait(ctx, state, action, f"copy {enc_id} {status} ({pct}%)")
        started = _parse(state["started_at"])
        snap_done = _parse(state.get("snapshot_done_at") or state["started_at"])
        copy_start = _parse(state.get("copy_started_at") or state["started_at"])
        now = self.host.clock()
        self.host._record_timing(
            ctx,
            cid,
            phase,
            started_at=state["started_at"],
            finished_at=_iso(self.host),
            snapshot_s=round((snap_done - started).total_seconds(), 1),
            copy_s=round((now - copy_start).total_seconds(), 1),
            duration_s=round((now - started).total_seconds(), 1),
            snapshot_id=raw_id,
            encrypted_snapshot_id=enc_id,
        )
        self.host._save_state(ctx, state, done=1)
        return None

    def stop_writes(self, ctx: StepContext, action: Action) -> Wait | None:
        """The approval is the operator's word that writes stopped: the downtime starts now."""
        self.host._record_timing(ctx, action.target, "stop_writes", at=_iso(self.host))
        return None

    # restore -------------------------------------------------------------------------------------
    def restore(self, ctx: StepContext, rds: Any, action: Action) -> Wait | None:
        """Restore the encrypted copy as the temporary cluster with every setting, then modify."""
        cid = action.target
        temp = rs.temp_id(cid, ctx.run_id)
        enc_id = rs.snapshot_id(ctx.run_id, cid, "final", encrypted=True)
        state = self.host._phase_state(ctx)
        want, _ = self.original(rds, action)
        copy = describe_cluster(rds, temp)
        if copy is None:
            snap = describe_cluster_snapshot(rds, enc_id)
            if snap is None or snap.get("Status") != "available":
                raise StepFailed(
                    f"the encrypted cluster snapshot {enc_id} is missing or not available; "
                    "resume after the final snapshot phase, or roll back."
                )
            rds.restore_db_cluster_from_snapshot(
                **restore_cluster_kwargs(
                    want,
                    temp,
                    enc_id,
                    self.host._key_arn(ctx, action.region),
                    self.host._tags(ctx, cid, "encrypted-copy"),
                )
            )
            state["restore_started_at"] = _iso(self.host)
            self.host._save_state(ctx, state)
            ctx.record_resource(
                "rds:db-cluster",
                temp,
                region=action.region,
                details={"source": cid, "role": "encrypted-copy"},
            )
            copy = describe_cluster(rds, temp)
        if copy is None:
            return self._wait(ctx, state, action, f"restore of cluster {temp} starting")
        if tag_value(copy, rs.TAG_RUN) != ctx.run_id or tag_value(copy, rs.TAG_SOURCE) != cid:
            raise StepFailed(
                f"a cluster named {temp} exists but was not restored by this run for {cid}. "
                "Rename or delete it, then resume."
            )
        status = copy.get("Status")
        if status in CLUSTER_FAILED:
            raise StepFailed(f"the restored cluster {temp} is {status}; roll back and investigate.")
        if status != "available" or copy.get("PendingModifiedValues"):
            return self._wait(ctx, state, action, f"cluster {temp} is {status}")
        state.setdefault("restore_done_at", _iso(self.host))
        got = cluster_settings(copy)
        diffs = diff_cluster(want, got)
        if diffs:
            attempts = int(state.get("modify_attempts", 0))
            if attempts >= MAX_MODIFY_ATTEMPTS:
                raise StepFailed(
                    f"cluster {temp} still differs from {cid} after {attempts} modifications: "
                    + describe_diffs(diffs)
                    + ". Fix the copy by hand and resume, or roll back."
                )
            rds.modify_db_cluster(**modify_cluster_kwargs(want, temp, got))
            if "tags" in diffs:
                rds.add_tags_to_resource(
                    ResourceName=copy["DBClusterArn"], Tags=tag_list(want.get("tags") or {}, {})
                )
            state["modify_attempts"] = attempts + 1
            self.host._save_state(ctx, state)
            copy = describe_cluster(rds, temp) or {}
            if copy.get("Status") != "available" or diff_cluster(want, cluster_settings(copy)):
                return self._wait(ctx, state, action, f"cluster {temp} is being modified")
        self.host._record_timing(
            ctx,
            cid,
            "restore",
            started_at=state.get("restore_started_at") or state["started_at"],
            finished_at=_iso(self.host),
            duration_s=self._since(state, "restore_started_at"),
            temporary_id=temp,
        )
        return None

    # members -------------------------------------------------------------------------------------
    def members(self, ctx: StepContext, rds: Any, action: Action) -> Wait | None:
        """Re-create every member instance in the temporary cluster: the writer first (AWS makes
        the first instance the writer), then the readers together; each with its settings."""
        cid = action.target
        temp = rs.temp_id(cid, ctx.run_id)
        state = self.host._phase_state(ctx)
        want_cluster, want = self.original(rds, action)
        cluster = describe_cluster(rds, temp)
        if cluster is None:
            raise StepFailed(f"the temporary cluster {temp} is missing; resume the restore first.")
        if cluster.get("Status") != "available":
            return self._wait(ctx, state, action, f"cluster {temp} is {cluster.get('Status')}")
        names = member_names(want, ctx.run_id)
        pending: list[str] = []
        writer_ready = True
        for mid in creation_order(want):
            new_id = names[mid]
            is_writer = bool(want[mid]["writer"])
            cur = describe_instance(rds, new_id)
            if cur is None and not writer_ready:
                pending.append(mid)  # readers wait for the writer, so that it stays the writer
                continue
            if cur is None:
                rds.create_db_instance(
                    **member_create_kwargs(
                        want[mid],
                        new_id,
                        temp,
                        str(want_cluster["engine"]),
                        self.host._tags(ctx, cid, "encrypted-member"),
                    )
                )
                state.setdefault("members_started_at", _iso(self.host))
                self.host._save_state(ctx, state)
                ctx.record_resource(
                    "rds:db-instance",
                    new_id,
                    region=action.region,
                    details={"source": cid, "member": mid, "cluster": temp, "role": "member"},
                )
                cur = describe_instance(rds, new_id)
            if cur is not None and (
                tag_value(cur, rs.TAG_RUN) != ctx.run_id or cur.get("DBClusterIdentifier") != temp
            ):
                raise StepFailed(
                    f"an instance named {new_id} exists but is not this run's member of {temp}. "
                    "Rename or delete it, then resume."
                )
            status = (cur or {}).get("DBInstanceStatus")
            if status in CLUSTER_FAILED:
                raise StepFailed(f"member {new_id} of {temp} is {status}; roll back.")
            if cur is None or status != "available" or cur.get("PendingModifiedValues"):
                pending.append(mid)
                writer_ready = writer_ready and not is_writer
                continue
            diffs = diff_member(want[mid], member_settings(cur, writer=is_writer))
            if diffs:
                key = f"modified:{new_id}"
                if int(state.get(key, 0)) >= MAX_MODIFY_ATTEMPTS:
                    raise StepFailed(
                        f"member {new_id} still differs from {mid}: "
                        + describe_diffs(diffs)
                        + ". Fix it by hand and resume, or roll back."
                    )
                rds.modify_db_instance(**member_modify_kwargs(want[mid], new_id))
                state[key] = int(state.get(key, 0)) + 1
                self.host._save_state(ctx, state)
                cur = describe_instance(rds, new_id) or {}
                if (
                    cur.get("DBInstanceStatus") != "available"
                    or cur.get("PendingModifiedValues")
                    or diff_member(want[mid], member_settings(cur, writer=is_writer))
                ):
                    pending.append(mid)
                    writer_ready = writer_ready and not is_writer
        if pending:
            return self._wait(ctx, state, action, f"members {', '.join(names[p] for p in pending)}")
        writer = next((names[m] for m in want if want[m]["writer"]), None)
        cluster = describe_cluster(rds, temp) or {}
        current = next(
            (
                str(m["DBInstanceIdentifier"])
                for m in cluster.get("DBClusterMembers") or ()
                if m.get("IsClusterWriter")
            ),
            None,
        )
        if writer is not None and current != writer:
            if state.get("failover_issued"):
                return self._wait(ctx, state, action, f"failover of {temp} to {writer}")
            rds.failover_db_cluster(DBClusterIdentifier=temp, TargetDBInstanceIdentifier=writer)
            state["failover_issued"] = True
            self.host._save_state(ctx, state)
            return self._wait(ctx, state, action, f"failover of {temp} to {writer}")
        self.host._record_timing(
            ctx,
            cid,
            "members",
            started_at=state.get("members_started_at") or state["started_at"],
            finished_at=_iso(self.host),
            duration_s=self._since(state, "members_started_at"),
            members={m: names[m] for m in sorted(want)},
        )
        return None

    # verify --------------------------------------------------------------------------------------
    def problems(
        self,
        ctx: StepContext,
        action: Action,
        copy: Mapping[str, Any] | None,
        instances: Mapping[str, Mapping[str, Any]],
        want: Mapping[str, Any],
        want_members: Mapping[str, Mapping[str, Any]],
        *,
        names: Mapping[str, str],
    ) -> list[str]:
        """What makes ``copy`` (with its members ``names``) not an exact encrypted copy."""
        if copy is None:
            return ["the encrypted cluster does not exist"]
        key_arn = self.host._key_arn(ctx, action.region)
        out: list[str] = []
        if not copy.get("StorageEncrypted") or copy.get("KmsKeyId") != key_arn:
            out.append(
                f"storage encrypted={copy.get('StorageEncrypted')} with key "
                f"{copy.get('KmsKeyId')}, want {key_arn}"
            )
        if copy.get("Status") != "available":
            out.append(f"cluster status {copy.get('Status')}")
        for name, diff in diff_cluster(want, cluster_settings(copy)).items():
            out.append(f"{name}: want {diff['want']!r}, got {diff['got']!r}")
        got_members = cluster_members(copy, instances)
        expected = {names[m] for m in want_members}
        listed = {str(m["DBInstanceIdentifier"]) for m in copy.get("DBClusterMembers") or ()}
        if listed != expected:
            out.append(f"members {sorted(listed)}, want {sorted(expected)}")
        for mid, settings in want_members.items():
            got = got_members.get(names[mid])
            desc = instances.get(names[mid]) or {}
            if got is None:
                continue  # reported by the member list above
            if desc.get("DBInstanceStatus") != "available":
                out.append(f"member {names[mid]} is {desc.get('DBInstanceStatus')}")
            if not desc.get("StorageEncrypted"):
                out.append(f"member {names[mid]} is not encrypted")
            for name, diff in diff_member(settings, got).items():
                out.append(
                    f"member {names[mid]} {name}: want {diff['want']!r}, got {diff['got']!r}"
                )
        return out

    def verify(self, ctx: StepContext, rds: Any, action: Action) -> Wait | None:
        """The temporary cluster is encrypted with the key and equal, members and all."""
        started = _iso(self.host)
        cid = action.target
        temp = rs.temp_id(cid, ctx.run_id)
        want, want_members = self.original(rds, action)
        copy = describe_cluster(rds, temp)
        names = member_names(want_members, ctx.run_id)
        instances = {n: d for n in names.values() if (d := describe_instance(rds, n)) is not None}
        problems = self.problems(ctx, action, copy, instances, want, want_members, names=names)
        if problems:
            raise StepFailed(
                f"cluster {temp} is not an exact encrypted copy of {cid}: "
                + "; ".join(problems)
                + ". Fix it by hand and resume, or roll back; the original is untouched."
            )
        self.host._record_timing(
            ctx,
            cid,
            "verify",
            started_at=started,
            finished_at=_iso(self.host),
            settings_compared=len(CLUSTER_COMPARED) + len(MEMBER_COMPARED) * len(want_members),
        )
        return None

    # cut-over ------------------------------------------------------------------------------------
    def cut_over(self, ctx: StepContext, rds: Any, action: Action) -> Wait | None:
        """Rename-swap: old members aside, old cluster aside, new cluster on, new members on.

        Every poll looks at what exists, does the next round of renames, and returns a Wait; the
        rename requests of a round are issued once (recorded in the checkpoint). No name is ever
        renamed onto an existing one (AWS refuses; moto silently replaces).
        """
        cid = action.target
        temp = rs.temp_id(cid, ctx.run_id)
        state = self.host._phase_state(ctx)
        if "date" not in state:
            # Fixed once: a resume after midnight must look for the same names.
            state["date"] = f"{self.host.clock():%Y%m%d}"
            self.host._save_state(ctx, state)
        date = str(state["date"])
        members: dict[str, Any] = dict(action.details["members"])
        old_id = rs.renamed_id(cid, date)
        aside = {m: rs.renamed_id(m, date) for m in sorted(members)}
        names = member_names(members, ctx.run_id)
        issued: list[str] = list(state.get("issued", []))

        live = describe_cluster(rds, cid)
        old = describe_cluster(rds, old_id)
        new = describe_cluster(rds, temp)
        instances = all_instances(rds)
        for name, desc in ((cid, live), (old_id, old), (temp, new)):
            if desc is not None and desc.get("Status") != "available":
                return self._wait(ctx, state, action, f"cluster {name} is {desc.get('Status')}")
        involved = [*members, *aside.values(), *names.values()]
        for name in involved:
            desc = instances.get(name)
            if desc is not None and desc.get("DBInstanceStatus") != "available":
                return self._wait(ctx, state, action, f"{name} is {desc.get('DBInstanceStatus')}")

        def rename(kind: str, old_name: str, new_name: str) -> None:
            tag = f"{kind}:{old_name}>{new_name}"
            if tag in issued:
                return
            if kind == "cluster":
                rds.modify_db_cluster(
                    DBClusterIdentifier=old_name,
                    NewDBClusterIdentifier=new_name,
                    ApplyImmediately=True,
                )
            else:
                rds.modify_db_instance(
                    DBInstanceIdentifier=old_name,
                    NewDBInstanceIdentifier=new_name,
                    ApplyImmediately=True,
                )
            issued.append(tag)
            state["issued"] = issued
            self.host._save_state(ctx, state)

        def record() -> None:
            ctx.record_resource(
                "rds:renamed-cluster",
                cid,
                change="modified",
                region=action.region,
                details={
                    "renamed_to": old_id,
                    "copy": temp,
                    "members_renamed_to": aside,
                    "new_members": names,
                },
            )

        if live is not None and not live.get("StorageEncrypted"):
            # Round 1 (old members aside) or 2 (old cluster aside).
            if not state.get("checked"):
                self._precheck(ctx, action, live, old, new, instances, members, aside, names)
                state["checked"] = True
                state["cut_over_started_at"] = _iso(self.host)
                self.host._save_state(ctx, state)
            record()
            still = [
                m for m in members if m in instances and not instances[m].get("StorageEncrypted")
            ]
            if still:
                for m in still:
                    if aside[m] in instances:
                        raise StepFailed(
                            f"cannot rename {m} to {aside[m]}: an instance with that name exists "
                            f"(AWS refuses such a rename). Rename or delete {aside[m]}, then resume."
                        )
                    rename("instance", m, aside[m])
                return self._wait(ctx, state, action, f"renaming the members of {cid} aside")
            if old is not None:
                raise StepFailed(
                    f"cannot rename cluster {cid} to {old_id}: a cluster with that name exists. "
                    f"Rename or delete {old_id}, then resume."
                )
            rename("cluster", cid, old_id)
            return self._wait(ctx, state, action, f"renaming cluster {cid} to {old_id}")
        if live is None:
            # Round 3: the name is free; the new cluster moves onto it.
            if new is None:
                if f"cluster:{temp}>{cid}" in issued:
                    return self._wait(ctx, state, action, f"renaming cluster {temp} to {cid}")
                raise StepFailed(
                    f"cluster {cid} was renamed to {old_id} but the encrypted cluster {temp} is "
                    "missing. Run `migrate rollback` to put the original back under its name."
                )
            rename("cluster", temp, cid)
            return self._wait(ctx, state, action, f"renaming cluster {temp} to {cid}")
        if tag_value(live, rs.TAG_RUN) != ctx.run_id:
            raise StepFailed(
                f"cluster {cid} is encrypted but is not this run's copy; stopping the cut-over. "
                "Check what happened to the clusters, then resume or roll back."
            )
        # Round 4: the new members move onto the original member names.
        waiting = False
        for m, new_name in names.items():
            at_name = instances.get(m)
            if at_name is not None:
                if not at_name.get("StorageEncrypted") or tag_value(at_name, rs.TAG_RUN) != (
                    ctx.run_id
                ):
                    raise StepFailed(
                        f"cannot rename {new_name} to {m}: an instance with that name exists "
                        "that is not this run's member. Rename or delete it, then resume."
                    )
                continue
            if new_name not in instances:
                if f"instance:{new_name}>{m}" in issued:
                    waiting = True
                    continue
                raise StepFailed(
                    f"member {new_name} of the encrypted cluster {cid} is missing; roll back."
                )
            rename("instance", new_name, m)
            waiting = True
        if waiting:
            return self._wait(ctx, state, action, f"renaming the members of {cid} into place")
        now = self.host.clock()
        self.host._record_timing(
            ctx,
            cid,
            "cut_over",
            started_at=state.get("cut_over_started_at") or state["started_at"],
            finished_at=now.isoformat(timespec="seconds"),
            duration_s=self._since(state, "cut_over_started_at"),
            original_renamed_to=old_id,
            members_renamed_to=aside,
        )
        return None

    def _precheck(
        self,
        ctx: StepContext,
        action: Action,
        live: Mapping[str, Any],
        old: Mapping[str, Any] | None,
        new: Mapping[str, Any] | None,
        instances: Mapping[str, Mapping[str, Any]],
        members: Mapping[str, Any],
        aside: Mapping[str, str],
        names: Mapping[str, str],
    ) -> None:
        """Before the first rename: every target name is free and the copy still verifies."""
        cid = action.target
        taken: list[str] = []
        if old is not None:
            taken.append(f"cluster {old['DBClusterIdentifier']}")
        taken.extend(f"instance {aside[m]}" for m in members if aside[m] in instances)
        if taken:
            raise StepFailed(
                f"cannot cut over {cid}: {', '.join(taken)} already exist(s), and the original "
                "would have to be renamed onto that name (AWS refuses such a rename). Nothing "
                "was changed. Rename or delete it, then resume."
            )
        if new is None:
            raise StepFailed(
                f"the encrypted cluster {rs.temp_id(cid, ctx.run_id)} is missing; resume the "
                "restore first, or roll back."
            )
        want = cluster_settings(live)
        want_members = cluster_members(live, instances)
        if set(want_members) != set(members):
            raise StepFailed(
                f"the members of {cid} changed since the plan ({sorted(want_members)} now, "
                f"{sorted(members)} planned). Nothing was changed. Roll back and plan again."
            )
        problems = self.problems(ctx, action, new, instances, want, want_members, names=names)
        if problems:
            raise StepFailed(
                f"{new['DBClusterIdentifier']} is no longer an exact encrypted copy of {cid}: "
                + "; ".join(problems)
                + ". Nothing was changed. Fix it and resume, or roll back."
            )

    # cleanup -------------------------------------------------------------------------------------
    def cleanup(self, ctx: StepContext, rds: Any, action: Action) -> Wait | None:
        """Delete the old members, then the old cluster with a final cluster snapshot."""
        cid = action.target
        state = self.host._phase_state(ctx)
        swaps = {r.identifier: r for r in ctx.resources("rds:renamed-cluster")}
        if cid not in swaps:
            raise StepFailed(f"cluster {cid} was not cut over in this run; nothing to clean up.")
        details = dict(swaps[cid].details or {})
        old_id = str(details["renamed_to"])
        old_members = [str(v) for v in dict(details.get("members_renamed_to") or {}).values()]
        final_id = rs.snapshot_id(ctx.run_id, cid, "original-final")
        old = describe_cluster(rds, old_id)
        victims = {m: d for m in old_members if (d := describe_instance(rds, m)) is not None}
        for name, desc in [*victims.items(), *([(old_id, old)] if old else [])]:
            if desc.get("StorageEncrypted"):
                raise StepFailed(f"{name} is encrypted: it is not the original; not deleting.")
            if desc.get("DBClusterIdentifier") not in (None, old_id):
                raise StepFailed(
                    f"{name} belongs to cluster {desc.get('DBClusterIdentifier')}, not to the "
                    f"renamed original {old_id}; not deleting. Check it, then resume."
                )
        if old is not None and old.get("DeletionProtection"):
            if not self.host.params.disable_deletion_protection_on_cleanup:
                # Checked before deleting anything, so a refusal leaves everything in place.
                raise StepFailed(
                    f"cluster {old_id} (the unencrypted original of {cid}) has deletion "
                    "protection on, and this step respects it; nothing was deleted. Turn it off "
                    f"(aws rds modify-db-cluster --db-cluster-identifier {old_id} "
                    "--no-deletion-protection --apply-immediately) or set "
                    "disable_deletion_protection_on_cleanup: true, then resume."
                )
            rds.modify_db_cluster(
                DBClusterIdentifier=old_id, DeletionProtection=False, ApplyImmediately=True
            )
        pending: list[str] = []
        for name, desc in victims.items():
            if desc.get("DBInstanceStatus") != "deleting":
                if desc.get("DeletionProtection"):
                    rds.modify_db_instance(
                        DBInstanceIdentifier=name, DeletionProtection=False, ApplyImmediately=True
                    )
                # A cluster member has no snapshot of its own (AWS refuses a final snapshot of
                # one): its data is the cluster volume, whose final snapshot is taken below.
                rds.delete_db_instance(DBInstanceIdentifier=name)
                ctx.record_resource(
                    "rds:deleted",
                    name,
                    change="deleted",
                    region=action.region,
                    details={"original": cid, "member_of": old_id},
                )
            if describe_instance(rds, name) is not None:
                pending.append(name)
        if pending:
            return self._wait(ctx, state, action, f"deleting {', '.join(pending)}")
        if old is not None:
            if old.get("Status") != "deleting":
                # Never SkipFinalSnapshot: the final snapshot is what makes this reversible.
                rds.delete_db_cluster(
                    DBClusterIdentifier=old_id, FinalDBSnapshotIdentifier=final_id
                )
                ctx.record_resource(
                    "rds:deleted-cluster",
                    old_id,
                    change="deleted",
                    region=action.region,
                    details={"final_snapshot": final_id, "original": cid},
                )
            if describe_cluster(rds, old_id) is not None:
                return self._wait(ctx, state, action, f"deleting cluster {old_id}")
        for res in ctx.resources("rds:cluster-snapshot"):
            if res.details.get("source") != cid:
                continue
            if res.details.get("encrypted") and self.host.params.keep_encrypted_snapshots:
                continue
            if describe_cluster_snapshot(rds, res.identifier) is not None:
                rds.delete_db_cluster_snapshot(DBClusterSnapshotIdentifier=res.identifier)
        self.host._record_timing(
            ctx,
            cid,
            "cleanup",
            started_at=state["started_at"],
            finished_at=_iso(self.host),
            final_snapshot=final_id,
        )
        return None

    # rollback ------------------------------------------------------------------------------------
    def rollback(self, ctx: StepContext) -> None:
        """Before cleanup: swap the names back (cut over) or delete the unused copy (not cut over).

        The encrypted cluster is kept after a cut-over (it may hold writes made since); before
        the cut-over it never took a write, so it and its members are deleted.
        """
        swaps = {r.identifier: r for r in ctx.resources("rds:renamed-cluster")}
        deleted = {r.identifier: r for r in ctx.resources("rds:deleted-cluster")}
        for res in ctx.resources("rds:db-cluster"):
            if res.details.get("role") != "encrypted-copy":
                continue
            cid = str(res.details["source"])
            rds = ctx.client("rds", res.region)
            swap = swaps.get(cid)
            if swap is not None:
                details = dict(swap.details or {})
                old_id = str(details["renamed_to"])
                if old_id in deleted:
                    raise StepFailed(
                        f"cluster {cid} cannot be rolled back: its original was deleted at "
                        f"cleanup. Its final snapshot is "
                        f"{deleted[old_id].details.get('final_snapshot')}; restore it by hand if "
                        "you need the unencrypted original."
                    )
                self.swap_back(ctx, rds, cid, details)
            else:
                self.delete_copy(ctx, rds, cid, res.identifier)
        for res in ctx.resources("rds:cluster-snapshot"):
            cid = str(res.details.get("source"))
            if res.details.get("encrypted") and cid in swaps:
                continue  # cut over: the encrypted copies document what the new cluster holds
            rds = ctx.client("rds", res.region)
            if describe_cluster_snapshot(rds, res.identifier) is not None:
                rds.delete_db_cluster_snapshot(DBClusterSnapshotIdentifier=res.identifier)

    def delete_copy(self, ctx: StepContext, rds: Any, cid: str, temp: str) -> None:
        """Delete the temporary cluster (never cut over, so it never took a write) and its
        members; the original was never touched."""
        copy = describe_cluster(rds, temp)
        doomed: list[str] = []
        for res in ctx.resources("rds:db-instance"):
            if res.details.get("role") != "member" or res.details.get("cluster") != temp:
                continue
            inst = describe_instance(rds, res.identifier)
            if inst is None or tag_value(inst, rs.TAG_RUN) != ctx.run_id:
                continue
            if inst.get("DBInstanceStatus") != "deleting":
                rds.delete_db_instance(DBInstanceIdentifier=res.identifier)
            doomed.append(res.identifier)
        # AWS deletes the members in parallel; the cluster can go once they are gone.
        self.host._poll(
            f"members {', '.join(doomed)} to be deleted",
            lambda: all(describe_instance(rds, name) is None for name in doomed),
        )
        if copy is None or tag_value(copy, rs.TAG_RUN) != ctx.run_id:
            return
        if copy.get("DeletionProtection"):
            rds.modify_db_cluster(
                DBClusterIdentifier=temp, DeletionProtection=False, ApplyImmediately=True
            )
        # The copy never took a write (the original holds every byte, and the encrypted
        # snapshot copy is kept until the snapshots below are deleted): no final snapshot.
        rds.delete_db_cluster(DBClusterIdentifier=temp, SkipFinalSnapshot=True)
        self.host._poll(
            f"cluster {temp} to be deleted", lambda: describe_cluster(rds, temp) is None
        )

    def swap_back(self, ctx: StepContext, rds: Any, cid: str, details: Mapping[str, Any]) -> None:
        """Put the original cluster and members back under their names; the encrypted ones move
        to their temporary names and are kept. Every rename is checked to land on a free name."""
        old_id = str(details["renamed_to"])
        temp = str(details["copy"])
        aside = {str(k): str(v) for k, v in dict(details.get("members_renamed_to") or {}).items()}
        names = {str(k): str(v) for k, v in dict(details.get("new_members") or {}).items()}

        def rename_instance(src: str, dst: str) -> None:
            if describe_instance(rds, dst) is not None:
                raise StepFailed(f"cannot rename {src} back to {dst}: that name is taken.")
            rds.modify_db_instance(
                DBInstanceIdentifier=src, NewDBInstanceIdentifier=dst, ApplyImmediately=True
            )
            self.host._poll(f"{src} to be renamed", lambda: describe_instance(rds, dst) is not None)

        def rename_cluster(src: str, dst: str) -> None:
            if describe_cluster(rds, dst) is not None:
                raise StepFailed(f"cannot rename cluster {src} back to {dst}: that name is taken.")
            rds.modify_db_cluster(
                DBClusterIdentifier=src, NewDBClusterIdentifier=dst, ApplyImmediately=True
            )
            self.host._poll(
                f"cluster {src} to be renamed", lambda: describe_cluster(rds, dst) is not None
            )

        # 1. The new (encrypted) members leave the original member names.
        for m, new_name in names.items():
            cur = describe_instance(rds, m)
            if cur is not None and cur.get("StorageEncrypted"):
                rename_instance(m, new_name)
        # 2. The encrypted cluster leaves the name; 3. the original takes it back.
        live = describe_cluster(rds, cid)
        if live is not None and live.get("StorageEncrypted"):
            rename_cluster(cid, temp)
            live = None
        if live is None and describe_cluster(rds, old_id) is not None:
            rename_cluster(old_id, cid)
        # 4. The original members take their names back.
        for m, old_name in aside.items():
            if describe_instance(rds, m) is None and describe_instance(rds, old_name) is not None:
                rename_instance(old_name, m)
