"""What a step sees: AWS clients, regions, progress, checkpoints, resources, outputs.

The same context class serves planning and running; while planning it has no action, and
``checkpoint``/``record_resource`` refuse (a plan writes nothing).
"""

from __future__ import annotations

import getpass
import socket
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar, cast

from sqlalchemy import select
from tqdm import tqdm

from migrate.aws.session import AwsSession
from migrate.cloudtrail import persist as evidence
from migrate.cloudtrail.model import UsageReport
from migrate.engine.outputs import is_known
from migrate.store import Store, utcnow
from migrate.store.models import ActionRow, Checkpoint, Resource, StepRun

T = TypeVar("T")


def operator_name() -> str:
    """The OS user and host running migrate, as recorded in approvals and locks."""
    try:
        user = getpass.getuser()
    except Exception:  # no passwd entry in some containers
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


@dataclass(frozen=True)
class RecordedResource:
    """A resource a run created or changed, as steps see it (a copy, not a database row)."""

    kind: str
    identifier: str
    region: str | None
    change: str
    details: dict[str, Any]
    action_id: int | None

    @classmethod
    def of(cls, row: Resource) -> RecordedResource:
        """The step's view of a stored resource row."""
        return cls(
            kind=row.kind,
            identifier=row.identifier,
            region=row.region,
            change=row.change,
            details=dict(row.details or {}),
            action_id=row.action_id,
        )


@dataclass
class StepContext:
    """Everything a step needs, passed into observe/decide/act/verify."""

    aws: AwsSession
    step_id: str
    regions: list[str]
    state_dir: Path
    quiet: bool = False
    run_id: str | None = None
    store: Store | None = None
    action_id: int | None = None
    planning: bool = False
    outputs: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    _account_id: str | None = field(default=None, init=False)

    # -- identity -------------------------------------------------------------------------------
    @property
    def account_id(self) -> str:
        """The AWS account id of the operator's identity (one STS call, cached)."""
        if self._account_id is None:
            ident = self.aws.client("sts").get_caller_identity()
            self._account_id = str(ident["Account"])
        return self._account_id

    def client(self, service: str, region: str | None = None) -> Any:
        """A client of the run's session (guarded while planning, journaled while running)."""
        return self.aws.client(service, region)

    def earlier_outputs(self, name: str) -> dict[str, Any]:
        """Output ``name`` of every earlier step that has it, merged (later steps win), without
        making this step depend on them: while planning, the outputs those steps planned (e.g.
        the instance roles keys-to-roles is about to give); while running, those of the steps
        done. A step that reads it must also hold on what it observes."""
        merged: dict[str, Any] = {}
        for outputs in self.outputs.values():
            known = getattr(outputs, "known", outputs)  # PendingOutputs: only what is planned
            value = known.get(name) if isinstance(known, Mapping) else None
            if isinstance(value, Mapping):
                merged.update(value)
        return merged

    @staticmethod
    def is_known(value: Any) -> bool:
        """False when ``value`` is (or contains) ``(known after STEP)``."""
        return is_known(value)

    @staticmethod
    def now() -> datetime:
        """The current time as the state store records it (naive UTC)."""
        return utcnow()

    # -- stored evidence ---------------------------------------------------------------------------
    def usage_report(self, report_id: str | None = None) -> UsageReport | None:
        """The stored CloudTrail usage report ``report_id`` (default: the newest), or None."""
        if self.store is None:
            return None
        report_id = report_id or evidence.latest_report_id(self.store)
        return evidence.load_report(self.store, report_id) if report_id else None

    def action_results(self) -> list[dict[str, Any]]:
        """The recorded results of this step's actions in this run (counts, timings)."""
        if self.store is None or self.run_id is None:
            return []
        with self.store.read() as session:
            rows = session.scalars(
                select(ActionRow.result)
                .join(StepRun, StepRun.id == ActionRow.step_run_id)
                .where(StepRun.run_id == self.run_id, StepRun.step_id == self.step_id)
            ).all()
        return [dict(row or {}) for row in rows]

    def action_targets(self) -> set[str]:
        """The targets of this step's actions in this run (what it set out to change)."""
        if self.store is None or self.run_id is None:
            return set()
        with self.store.read() as session:
            rows = session.scalars(
                select(ActionRow.target)
                .join(StepRun, StepRun.id == ActionRow.step_run_id)
                .where(StepRun.run_id == self.run_id, StepRun.step_id == self.step_id)
            ).all()
        return {str(row) for row in rows}

    def earlier_results(self, kind: str, limit: int = 50) -> list[dict[str, Any]]:
        """Results of done actions of ``kind`` in other runs, newest first (measured rates of
        earlier drills, for estimates); each with its ``target``. Planning may read them."""
        if self.store is None:
            return []
        query = (
            select(ActionRow.target, ActionRow.result)
            .join(StepRun, StepRun.id == ActionRow.step_run_id)
            .where(ActionRow.kind == kind, ActionRow.status == "done")
            .order_by(ActionRow.finished_at.desc())
            .limit(limit)
        )
        if self.run_id is not None:
            query = query.where(StepRun.run_id != self.run_id)
        with self.store.read() as session:
            rows = session.execute(query).all()
        return [{**dict(result or {}), "target": target} for target, result in rows]

    # -- progress --------------------------------------------------------------------------------
    def progress(
        self,
        iterable: Iterable[T] | None = None,
        *,
        total: float | None = None,
        desc: str = "",
        unit: str = "it",
        unit_scale: bool = False,
    ) -> tqdm[T]:
        """A tqdm bar that goes silent under ``--quiet``; steps never branch on it."""
        bar = tqdm(
            iterable,
            total=total,
            desc=desc,
            unit=unit,
            unit_scale=unit_scale,
            disable=self.quiet,
            leave=False,
            dynamic_ncols=True,
        )
        return cast("tqdm[T]", bar)

    # -- checkpoints -----------------------------------------------------------------------------
    def _require_action(self) -> tuple[Store, int]:
        if self.planning or self.store is None or self.action_id is None:
            raise RuntimeError("checkpoints and resources exist only while an action runs")
        return self.store, self.action_id

    def load_checkpoint(self, name: str = "main") -> dict[str, Any] | None:
        """The last committed checkpoint of the current action, or None."""
        store, action_id = self._require_action()
        with store.read() as session:
            row = session.scalar(
                select(Checkpoint).where(Checkpoint.action_id == action_id, Checkpoint.name == name)
            )
            if row is None:
                return None
            return {"cursor": dict(row.cursor), "done": row.done, "total": row.total}

    def checkpoint(
        self, cursor: Mapping[str, Any], *, done: int, total: int | None = None, name: str = "main"
    ) -> None:
        """Commit fine-grained progress (a batch) of the current action in its own transaction."""
        store, action_id = self._require_action()
        with store.write() as session:
            row = session.scalar(
                select(Checkpoint).where(Checkpoint.action_id == action_id, Checkpoint.name == name)
            )
            if row is None:
                row = Checkpoint(action_id=action_id, name=name)
                session.add(row)
            row.cursor = dict(cursor)
            row.done = done
            row.total = total
            row.updated_at = utcnow()

    def record_result(self, **values: Any) -> None:
        """Merge measured results (phase timings, counts) into the current action's record; the
        run report shows them (e.g. the downtime actually taken). Never pass a secret."""
        store, action_id = self._require_action()
        with store.write() as session:
            row = session.get(ActionRow, action_id)
            if row is not None:
                row.result = {**(row.result or {}), **values}

    def approved_at(self) -> datetime | None:
        """When `migrate approve` released the current action's gate (naive UTC), or None
        (no gate, a standing approval or --yes: the action runs as it is approved). A gate
        whose moment matters (stop-writes starts the downtime clock) reads it from here, not
        from when a later resume happened to carry the action out."""
        if self.planning or self.store is None or self.action_id is None:
            return None
        with self.store.read() as session:
            row = session.get(ActionRow, self.action_id)
            at = ((row.result or {}).get("approved") or {}).get("at") if row else None
        return datetime.fromisoformat(at).replace(tzinfo=None) if at else None

    def record_residual(self, what: str, why: str, fix: str | None = None) -> None:
        """Something the step leaves not compliant or not finished on purpose (a key still
        active after a human review, an original kept, objects skipped): the run report and
        `migrate status` list it, so "done" says what remains for the FTR. Never a secret."""
        store, action_id = self._require_action()
        with store.write() as session:
            row = session.get(ActionRow, action_id)
            if row is not None:
                result = dict(row.result or {})
                entry = {"what": what, "why": why, "fix": fix}
                residuals = [r for r in result.get("residuals", []) if r.get("what") != what]
                result["residuals"] = [*residuals, entry]
                row.result = result

    def record_resource(
        self,
        kind: str,
        identifier: str,
        *,
        change: str = "created",
        region: str | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> None:
        """Remember a resource this run created or changed (for rollback, cleanup, reports)."""
        store, action_id = self._require_action()
        assert self.run_id is not None
        with store.write() as session:
            existing = session.scalar(
                select(Resource).where(
                    Resource.run_id == self.run_id,
                    Resource.step_id == self.step_id,
                    Resource.kind == kind,
                    Resource.identifier == identifier,
                )
            )
            if existing is not None:
                # The latest change wins (a key "modified" and later "deleted" is deleted).
                existing.change = change
                existing.details = {**(existing.details or {}), **dict(details or {})}
                return
            session.add(
                Resource(
                    run_id=self.run_id,
                    step_id=self.step_id,
                    action_id=action_id,
                    kind=kind,
                    identifier=identifier,
                    region=region,
                    change=change,
                    details=dict(details or {}),
                    created_at=utcnow(),
                )
            )

    def resources(self, kind: str | None = None) -> Iterator[RecordedResource]:
        """Resources this step recorded in this run (for rollback)."""
        if self.store is None or self.run_id is None:
            return iter(())
        with self.store.read() as session:
            query = select(Resource).where(
                Resource.run_id == self.run_id, Resource.step_id == self.step_id
            )
            if kind is not None:
                query = query.where(Resource.kind == kind)
            return iter([RecordedResource.of(row) for row in session.scalars(query)])
