"""The per-cluster phases of ``rds.encrypt`` for Aurora: snapshot and encrypted copy, restore,
member instances, verify, rename-swap cut-over, cleanup and rollback.

Each phase looks at what exists before it creates (names come from run id + cluster id), returns
an engine :class:`Wait` while AWS works, and measures its duration into the cluster's
``rds:timing``. The settings, API parameters and diffs it uses are in ``rds_cluster``.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import Any

from botocore.exceptions import ClientError

from migrate.aws import rds as api
from migrate.aws import rds_settings as rs
from migrate.aws.errors import already_exists
from migrate.aws.rds import (
    all_instances,
    describe_cluster,
    describe_instance,
    migrate_tag_keys,
    tag_value,
)
from migrate.engine.base import Wait
from migrate.engine.context import StepContext
from migrate.errors import StepFailed
from migrate.steps.rds import lockdown as lk
from migrate.steps.rds import phases as ph
from migrate.steps.rds.cluster import (
    CLUSTER_CLEANUP,
    CLUSTER_COMPARED,
    CLUSTER_CUT_OVER,
    CLUSTER_FINAL_SNAPSHOT,
    CLUSTER_MEMBERS,
    CLUSTER_RESTORE,
    CLUSTER_STOP_WRITES,
    CLUSTER_VERIFY,
    CLUSTER_WARM_UP,
    MEMBER_COMPARED,
    cluster_members,
    cluster_settings,
    creation_order,
    diff_cluster,
    diff_member,
    member_create_kwargs,
    member_modify_kwargs,
    member_names,
    member_settings,
    modify_cluster_kwargs,
    restore_cluster_kwargs,
    role_item,
)
from migrate.steps.rds.params import RdsEncryptParams
from migrate.steps.rds.phases import CLUSTER, CLUSTER_FAILED, INSTANCE
from migrate.steps.rds.run import PhaseRun, poll_until


def _never_renamed(rds: Any, cid: str, details: Mapping[str, Any]) -> bool:
    """True if the unencrypted original cluster still has its name and neither it nor any of
    its members has been renamed aside (a cut-over that recorded its intent, then stopped)."""
    live = describe_cluster(rds, cid)
    if live is None or live.get("StorageEncrypted"):
        return False
    if describe_cluster(rds, str(details["renamed_to"])) is not None:
        return False
    aside = dict(details.get("members_renamed_to") or {})
    return all(describe_instance(rds, str(name)) is None for name in aside.values())


class ClusterFlow:
    """The per-cluster phases of ``rds.encrypt``. Each phase runs with a :class:`PhaseRun`
    (clock, checkpointed state, waits, timings, key); rollback polls with the step's params."""

    def __init__(self, params: RdsEncryptParams) -> None:
        self.params = params

    def act(self, run: PhaseRun, rds: Any) -> Wait | None:
        """Run one phase of one cluster."""
        handlers = {
            CLUSTER_WARM_UP: lambda: self.snapshot_and_copy(run, rds, "warmup"),
            CLUSTER_STOP_WRITES: lambda: self.stop_writes(run, rds),
            CLUSTER_FINAL_SNAPSHOT: lambda: self.snapshot_and_copy(run, rds, "final"),
            CLUSTER_RESTORE: lambda: self.restore(run, rds),
            CLUSTER_MEMBERS: lambda: self.members(run, rds),
            CLUSTER_VERIFY: lambda: self.verify(run, rds),
            CLUSTER_CUT_OVER: lambda: self.cut_over(run, rds),
            CLUSTER_CLEANUP: lambda: self.cleanup(run, rds),
        }
        return handlers[run.action.kind]()

    def stop_writes(self, run: PhaseRun, rds: Any) -> Wait | None:
        """Lock the cluster down (``stop_writes: security-groups``), then start the downtime."""
        if self.params.stop_writes == lk.MODE_GROUPS:
            locking = lk.lock(run, rds, CLUSTER, self.params.lockdown_allow)
            if locking:
                return locking
        return ph.stop_writes(run)

    # helpers ----------------------------------------------------------------------------------

    def original(self, run: PhaseRun, rds: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        """(cluster settings, members) of the live original (untouched until the cut-over, but
        for the lockdown of its security groups, undone here), or the observed ones once it is
        renamed or gone."""
        action = run.action
        live = describe_cluster(rds, action.target)
        if live is not None and not live.get("StorageEncrypted"):
            instances = {
                str(m["DBInstanceIdentifier"]): describe_instance(rds, m["DBInstanceIdentifier"])
                for m in live.get("DBClusterMembers") or ()
            }
            found = {k: v for k, v in instances.items() if v is not None}
            settings = lk.unlocked(run.ctx, action.target, cluster_settings(live), cluster=True)
            return settings, cluster_members(live, found)
        return dict(action.details["settings"]), dict(action.details["members"])

    # warm-up / final snapshot ------------------------------------------------------------------
    def snapshot_and_copy(self, run: PhaseRun, rds: Any, phase: str) -> Wait | None:
        """Cluster snapshot ``migrate-<run>-<cluster>-<phase>``; the warm-up's is copied with the
        key to ``-enc`` (it measures the re-encryption speed while the application runs), the
        final one is not: RestoreDBClusterFromSnapshot with KmsKeyId encrypts an unencrypted
        cluster snapshot itself, so a copy inside the downtime window would be time lost."""
        return ph.snapshot_and_copy(run, rds, phase, CLUSTER, copy=phase != "final")

    # restore -------------------------------------------------------------------------------------
    def restore(self, run: PhaseRun, rds: Any) -> Wait | None:
        """Restore the encrypted copy as the temporary cluster with every setting, then modify."""
        ctx, action = run.ctx, run.action
        cid = action.target
        temp = rs.temp_id(cid, ctx.run_id)
        state = run.state
        want, _ = self.original(run, rds)
        copy = ph.start_restore(
            run,
            rds,
            CLUSTER,
            lambda new_id, snap_id: rds.restore_db_cluster_from_snapshot(
                **restore_cluster_kwargs(
                    want,
                    new_id,
                    snap_id,
                    run.key_arn(),
                    run.tags("encrypted-copy"),
                )
            ),
            from_encrypted=False,
        )
        if isinstance(copy, Wait):
            return copy
        restored: dict[str, Any] = copy
        got = cluster_settings(restored)
        diffs = diff_cluster(want, got)
        if diffs:

            def modify() -> None:
                rds.modify_db_cluster(**modify_cluster_kwargs(want, temp, got))
                # A role the restore did not associate (it takes AssociatedRoles, but a role
                # IAM had not propagated, or a feature name it refused, is left out).
                for entry in sorted(
                    set(want.get("associated_roles") or ()) - set(got.get("associated_roles") or ())
                ):
                    rds.add_role_to_db_cluster(DBClusterIdentifier=temp, **role_item(entry))
                if "tags" in diffs:
                    rds.add_tags_to_resource(
                        ResourceName=restored["DBClusterArn"],
                        Tags=rs.tag_list(want.get("tags"), {}),
                    )

            ph.modify_again(
                run,
                "modify_attempts",
                lambda attempts: (
                    f"cluster {temp} still differs from {cid} after {attempts} modifications: "
                    + ph.describe_diffs(diffs)
                    + ". Fix the copy by hand and resume, or roll back."
                ),
                modify,
            )
            copy = describe_cluster(rds, temp) or {}
            if copy.get("Status") != "available" or diff_cluster(want, cluster_settings(copy)):
                return run.wait(f"cluster {temp} is being modified")
        run.record_phase(
            "restore",
            state.get("restore_started_at") or state["started_at"],
            temporary_id=temp,
        )
        return None

    # members -------------------------------------------------------------------------------------
    def members(self, run: PhaseRun, rds: Any) -> Wait | None:
        """Re-create every member instance in the temporary cluster: the writer first (AWS makes
        the first instance the writer), then the readers together; each with its settings."""
        ctx, action = run.ctx, run.action
        cid = action.target
        temp = rs.temp_id(cid, ctx.run_id)
        state = run.state
        want_cluster, want = self.original(run, rds)
        cluster = describe_cluster(rds, temp)
        if cluster is None:
            raise StepFailed(f"the temporary cluster {temp} is missing; resume the restore first.")
        if cluster.get("Status") != "available":
            return run.wait(f"cluster {temp} is {cluster.get('Status')}")
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
                state.setdefault("members_started_at", run.now_iso())
                run.save()
                # Intent first: rollback deletes the members it knows of, and a crash right
                # after the create must not leave one it does not.
                run.record(
                    "rds:db-instance",
                    new_id,
                    "created",
                    source=cid,
                    member=mid,
                    cluster=temp,
                    role="member",
                )
                try:
                    rds.create_db_instance(
                        **member_create_kwargs(
                            want[mid],
                            new_id,
                            temp,
                            str(want_cluster["engine"]),
                            run.tags("encrypted-member"),
                        )
                    )
                except ClientError as exc:
                    if not already_exists(exc):  # else: created, only the answer was lost
                        raise
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
                ph.modify_again(
                    run,
                    f"modified:{new_id}",
                    f"member {new_id} still differs from {mid}: "
                    + ph.describe_diffs(diffs)
                    + ". Fix it by hand and resume, or roll back.",
                    partial(rds.modify_db_instance, **member_modify_kwargs(want[mid], new_id)),
                )
                cur = describe_instance(rds, new_id) or {}
                if (
                    cur.get("DBInstanceStatus") != "available"
                    or cur.get("PendingModifiedValues")
                    or diff_member(want[mid], member_settings(cur, writer=is_writer))
                ):
                    pending.append(mid)
                    writer_ready = writer_ready and not is_writer
        if pending:
            return run.wait(f"members {', '.join(names[p] for p in pending)}")
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
                return run.wait(f"failover of {temp} to {writer}")
            rds.failover_db_cluster(DBClusterIdentifier=temp, TargetDBInstanceIdentifier=writer)
            state["failover_issued"] = True
            run.save()
            return run.wait(f"failover of {temp} to {writer}")
        run.record_phase(
            "members",
            state.get("members_started_at") or state["started_at"],
            members={m: names[m] for m in sorted(want)},
        )
        return None

    # verify --------------------------------------------------------------------------------------
    def problems(
        self,
        key_arn: str,
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
        out = ph.key_problems(CLUSTER, copy, key_arn)
        out += ph.diff_lines(diff_cluster(want, cluster_settings(copy)))
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
            out += ph.diff_lines(diff_member(settings, got), f"member {names[mid]} ")
        return out

    def verify(self, run: PhaseRun, rds: Any) -> Wait | None:
        """The temporary cluster is encrypted with the key and equal, members and all."""
        ctx, action = run.ctx, run.action
        started = run.now_iso()
        cid = action.target
        temp = rs.temp_id(cid, ctx.run_id)
        want, want_members = self.original(run, rds)
        copy = describe_cluster(rds, temp)
        names = member_names(want_members, ctx.run_id)
        instances = {n: d for n in names.values() if (d := describe_instance(rds, n)) is not None}
        problems = self.problems(run.key_arn(), copy, instances, want, want_members, names=names)
        ph.refuse_unequal(
            problems,
            f"cluster {temp} is not an exact encrypted copy of {cid}",
            "Fix it by hand and resume, or roll back; the original is untouched.",
        )
        run.record_phase(
            "verify",
            started,
            duration=False,
            settings_compared=len(CLUSTER_COMPARED) + len(MEMBER_COMPARED) * len(want_members),
        )
        return None

    # cut-over ------------------------------------------------------------------------------------
    def cut_over(self, run: PhaseRun, rds: Any) -> Wait | None:
        """Rename-swap: old members aside, old cluster aside, new cluster on, new members on.

        Every poll looks at what exists, does the next round of renames, and returns a Wait; the
        rename requests of a round are issued once (recorded in the checkpoint). No name is ever
        renamed onto an existing one (AWS refuses; moto silently replaces).
        """
        ctx, action = run.ctx, run.action
        cid = action.target
        temp = rs.temp_id(cid, ctx.run_id)
        state = run.state
        if "date" not in state:
            # Fixed once: a resume after midnight must look for the same names.
            state["date"] = f"{run.now():%Y%m%d}"
            run.save()
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
        involved = [*members, *aside.values(), *names.values()]
        why = ph.busy(CLUSTER, ((cid, live), (old_id, old), (temp, new))) or ph.busy(
            INSTANCE, ((name, instances.get(name)) for name in involved)
        )
        if why:
            return run.wait(why)

        def rename(kind: str, old_name: str, new_name: str) -> None:
            tag = f"{kind}:{old_name}>{new_name}"
            if tag in issued:
                return
            ph.rename(rds, CLUSTER if kind == "cluster" else INSTANCE, old_name, new_name)
            issued.append(tag)
            state["issued"] = issued
            run.save()

        def record() -> None:
            run.record(
                "rds:renamed-cluster",
                cid,
                "modified",
                renamed_to=old_id,
                copy=temp,
                members_renamed_to=aside,
                new_members=names,
            )

        if live is not None and not live.get("StorageEncrypted"):
            # Round 1 (old members aside) or 2 (old cluster aside).
            if not state.get("checked"):
                self._precheck(run, live, old, new, instances, members, aside, names)
                ph.check_quiet_after_snapshot(run, CLUSTER, cid)
                state["checked"] = True
                state["cut_over_started_at"] = run.now_iso()
                run.save()
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
                return run.wait(f"renaming the members of {cid} aside")
            if old is not None:
                raise StepFailed(
                    f"cannot rename cluster {cid} to {old_id}: a cluster with that name exists. "
                    f"Rename or delete {old_id}, then resume."
                )
            rename("cluster", cid, old_id)
            return run.wait(f"renaming cluster {cid} to {old_id}")
        if live is None:
            # Round 3: the name is free; the new cluster moves onto it.
            if new is None:
                if f"cluster:{temp}>{cid}" in issued:
                    return run.wait(f"renaming cluster {temp} to {cid}")
                raise StepFailed(
                    f"cluster {cid} was renamed to {old_id} but the encrypted cluster {temp} is "
                    "missing. Run `migrate rollback` to put the original back under its name."
                )
            rename("cluster", temp, cid)
            return run.wait(f"renaming cluster {temp} to {cid}")
        moved = bool(state.get("tags_moved"))  # the bookkeeping already left the copy
        if tag_value(live, rs.TAG_RUN) != ctx.run_id and not moved:
            raise StepFailed(
                f"cluster {cid} is encrypted but is not this run's copy; stopping the cut-over. "
                "Check what happened to the clusters, then resume or roll back."
            )
        # Round 4: the new members move onto the original member names.
        waiting = False
        for m, new_name in names.items():
            at_name = instances.get(m)
            if at_name is not None:
                if not at_name.get("StorageEncrypted") or (
                    tag_value(at_name, rs.TAG_RUN) != ctx.run_id and not moved
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
            return run.wait(f"renaming the members of {cid} into place")
        self.move_bookkeeping_tags(run, rds, old_id, list(aside.values()), list(names))
        run.record_phase(
            "cut_over",
            state.get("cut_over_started_at") or state["started_at"],
            original_renamed_to=old_id,
            members_renamed_to=aside,
        )
        return None

    def move_bookkeeping_tags(
        self, run: PhaseRun, rds: Any, old_id: str, old_members: list[str], members: list[str]
    ) -> None:
        """The cluster and members under the original names end with exactly the original's
        tags; the ``migrate:*`` bookkeeping moves to the retired original and its members (and
        stays on the snapshots and in the state store). Flagged first: a resume must still know
        the copy as this run's once its tags are gone."""
        run.state["tags_moved"] = True
        run.save()
        retired = run.tags("retired-original")
        old = describe_cluster(rds, old_id)
        if old is not None and old.get("DBClusterArn"):
            api.add_tags_to_resource(rds, str(old["DBClusterArn"]), retired)
        for name in old_members:
            desc = describe_instance(rds, name)
            if desc is not None and desc.get("DBInstanceArn"):
                api.add_tags_to_resource(rds, str(desc["DBInstanceArn"]), retired)
        live = describe_cluster(rds, run.target)
        if live is not None and live.get("DBClusterArn"):
            api.remove_tags_from_resource(rds, str(live["DBClusterArn"]), migrate_tag_keys(live))
        for name in members:
            desc = describe_instance(rds, name)
            if desc is not None and desc.get("DBInstanceArn"):
                api.remove_tags_from_resource(
                    rds, str(desc["DBInstanceArn"]), migrate_tag_keys(desc)
                )

    def _precheck(
        self,
        run: PhaseRun,
        live: Mapping[str, Any],
        old: Mapping[str, Any] | None,
        new: Mapping[str, Any] | None,
        instances: Mapping[str, Mapping[str, Any]],
        members: Mapping[str, Any],
        aside: Mapping[str, str],
        names: Mapping[str, str],
    ) -> None:
        """Before the first rename: every target name is free and the copy still verifies."""
        ctx, cid = run.ctx, run.target
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
        problems = self.problems(run.key_arn(), new, instances, want, want_members, names=names)
        ph.refuse_unequal(
            problems,
            f"{new['DBClusterIdentifier']} is no longer an exact encrypted copy of {cid}",
            "Nothing was changed. Fix it and resume, or roll back.",
        )

    # cleanup -------------------------------------------------------------------------------------
    def cleanup(self, run: PhaseRun, rds: Any) -> Wait | None:
        """Delete the old members, then the old cluster with a final cluster snapshot."""
        ctx, action = run.ctx, run.action
        cid = action.target
        run.begin()
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
        ph.check_nobody_uses(
            run, [m for m, d in victims.items() if d.get("DBInstanceStatus") != "deleting"]
        )
        if old is not None and old.get("DeletionProtection"):
            if not self.params.disable_deletion_protection_on_cleanup:
                # Checked before deleting anything, so a refusal leaves everything in place.
                raise StepFailed(
                    f"cluster {old_id} (the unencrypted original of {cid}) has deletion "
                    "protection on, and this step respects it; nothing was deleted. Turn it off "
                    f"(aws rds modify-db-cluster --db-cluster-identifier {old_id} "
                    "--no-deletion-protection --apply-immediately) or set "
                    "disable_deletion_protection_on_cleanup: true, then resume."
                )
            ph.unprotect(rds, CLUSTER, old_id)
        pending: list[str] = []
        for name, desc in victims.items():
            if desc.get("DBInstanceStatus") != "deleting":
                if desc.get("DeletionProtection"):
                    ph.unprotect(rds, INSTANCE, name)
                # A cluster member has no snapshot of its own (AWS refuses a final snapshot of
                # one): its data is the cluster volume, whose final snapshot is taken below.
                run.record("rds:deleted", name, "deleted", original=cid, member_of=old_id)
                api.delete_db_instance(rds, name, member=True)
            if describe_instance(rds, name) is not None:
                pending.append(name)
        if pending:
            return run.wait(f"deleting {', '.join(pending)}")
        if old is not None:
            if old.get("Status") != "deleting":
                # Never SkipFinalSnapshot: the final snapshot is what makes this reversible.
                # Recorded first: rollback must refuse (naming the snapshot) even if the crash
                # hit right after the delete was accepted.
                run.record(
                    "rds:deleted-cluster",
                    old_id,
                    "deleted",
                    final_snapshot=final_id,
                    original=cid,
                )
                api.delete_db_cluster(rds, old_id, final_snapshot_id=final_id)
            if describe_cluster(rds, old_id) is not None:
                return run.wait(f"deleting cluster {old_id}")
        freeing = lk.drop_group(run, CLUSTER)
        if freeing:
            return freeing
        ph.finish_cleanup(run, rds, CLUSTER, final_id)
        return None

    # rollback ------------------------------------------------------------------------------------
    def rollback(self, ctx: StepContext) -> None:
        """Before cleanup: swap the names back (cut over) or delete the unused copy (not cut over).

        The encrypted cluster is kept after a cut-over (it may hold writes made since); before
        the cut-over it never took a write, so it and its members are deleted.
        """
        cut_over: set[str] = set()
        for res, cid, rds, swapped in ph.copies_to_roll_back(ctx, CLUSTER):
            if swapped is not None and _never_renamed(rds, cid, swapped):
                # The original is under its name and the copy aside: either the cut-over
                # recorded its intent and renamed nothing, or an earlier rollback swapped the
                # names back. The two look the same, and in the second the copy may hold writes
                # made while it had the name: it is kept, never deleted. Its bookkeeping tags
                # are stripped from the original (again).
                self.strip_original_tags(rds, cid, swapped)
                continue
            if swapped is not None:
                cut_over.add(cid)
                self.swap_back(ctx, rds, cid, swapped)
            else:
                self.delete_copy(ctx, rds, cid, res.identifier)
        lk.unlock(ctx, CLUSTER, self.params)
        ph.rollback_snapshots(ctx, CLUSTER, cut_over)

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
                api.delete_db_instance(rds, res.identifier, member=True)
            doomed.append(res.identifier)
        # AWS deletes the members in parallel; the cluster can go once they are gone.
        poll_until(
            self.params,
            f"members {', '.join(doomed)} to be deleted",
            lambda: all(describe_instance(rds, name) is None for name in doomed),
        )
        if copy is None or tag_value(copy, rs.TAG_RUN) != ctx.run_id:
            return
        if copy.get("DeletionProtection"):
            ph.unprotect(rds, CLUSTER, temp)
        # The copy never took a write (the original holds every byte, and the encrypted
        # snapshot copy is kept until the snapshots below are deleted): no final snapshot.
        api.delete_db_cluster(rds, temp, final_snapshot_id=None)
        poll_until(
            self.params,
            f"cluster {temp} to be deleted",
            lambda: describe_cluster(rds, temp) is None,
        )

    def swap_back(self, ctx: StepContext, rds: Any, cid: str, details: Mapping[str, Any]) -> None:
        """Put the original cluster and members back under their names; the encrypted ones move
        to their temporary names and are kept. Every rename is checked to land on a free name."""
        old_id = str(details["renamed_to"])
        temp = str(details["copy"])
        aside = {str(k): str(v) for k, v in dict(details.get("members_renamed_to") or {}).items()}
        names = {str(k): str(v) for k, v in dict(details.get("new_members") or {}).items()}

        def rename_back(kind: ph.Kind, src: str, dst: str) -> None:
            if kind.describe(rds, dst) is not None:
                raise StepFailed(
                    f"cannot rename {kind.label}{src} back to {dst}: that name is taken."
                )
            ph.rename(rds, kind, src, dst)
            poll_until(
                self.params,
                f"{kind.label}{src} to be renamed",
                lambda: kind.describe(rds, dst) is not None,
            )

        def rename_instance(src: str, dst: str) -> None:
            rename_back(INSTANCE, src, dst)

        def rename_cluster(src: str, dst: str) -> None:
            rename_back(CLUSTER, src, dst)

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
        # 5. Back under their names, the original and its members shed the bookkeeping the
        # cut-over put on them.
        self.strip_original_tags(rds, cid, details)

    def strip_original_tags(self, rds: Any, cid: str, details: Mapping[str, Any]) -> None:
        """The original cluster and members, back under their names, without ``migrate:*``."""
        aside = dict(details.get("members_renamed_to") or {})
        back = describe_cluster(rds, cid)
        if back is not None and not back.get("StorageEncrypted") and back.get("DBClusterArn"):
            api.remove_tags_from_resource(rds, str(back["DBClusterArn"]), migrate_tag_keys(back))
        for m in aside:
            desc = describe_instance(rds, m)
            if desc is not None and not desc.get("StorageEncrypted") and desc.get("DBInstanceArn"):
                api.remove_tags_from_resource(
                    rds, str(desc["DBInstanceArn"]), migrate_tag_keys(desc)
                )
