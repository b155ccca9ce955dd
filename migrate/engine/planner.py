"""Planning: observe + decide for every step under the read-only guard, fingerprinted.

The planner is the executor's dry-run twin: the same steps, a session that refuses mutating calls.
An output that only exists after an earlier step runs renders as ``(known after STEP)`` and the
actions that use it are marked so; nothing is guessed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from migrate.aws.errors import describe_aws_failure
from migrate.aws.session import AwsSession
from migrate.engine.base import Action, Step
from migrate.engine.context import StepContext
from migrate.engine.outputs import PendingOutputs, unknown_steps
from migrate.engine.playbook import Playbook, PlaybookStep, render_step, validate_with
from migrate.engine.runner import step_regions
from migrate.errors import AwsError, ParamError, PlaybookError
from migrate.store import Store


@dataclass
class PlannedStep:
    """One step of a plan: what was observed and what would change."""

    id: str
    uses: str
    description: str
    depends_on: list[str]
    facts: dict[str, Any]
    actions: list[Action]
    gated: bool
    known_after: list[str]
    planned_outputs: dict[str, Any]
    # What evidence planning gathered (not a fact: the run re-observes it as already there).
    evidence: str | None = None
    regions: list[str] = field(default_factory=list)


@dataclass
class PlanResult:
    """A whole plan: steps and the fingerprint of the observed facts."""

    playbook: Playbook
    steps: list[PlannedStep]
    fingerprint: str
    # Account, caller, regions, time, version (set by ``commands.plan``; not fingerprinted).
    context: dict[str, Any] = field(default_factory=dict)

    def facts(self) -> dict[str, Any]:
        """Facts per step id (what the fingerprint covers)."""
        return {s.id: s.facts for s in self.steps}

    def body(self) -> dict[str, Any]:
        """JSON form of the plan (stored with it, and printed by ``plan --json``)."""
        return {
            "schema": "migrate.plan/1",
            "context": self.context,
            "playbook": self.playbook.path,
            "name": self.playbook.name,
            "params": self.playbook.params,
            "approvers": self.playbook.approvers,
            "fingerprint": self.fingerprint,
            "steps": [
                {
                    "id": s.id,
                    "uses": s.uses,
                    "description": s.description,
                    "depends_on": s.depends_on,
                    "gated": s.gated,
                    "known_after": s.known_after,
                    "planned_outputs": s.planned_outputs,
                    "compliant": s.facts.get("compliant", []),
                    "warnings": s.facts.get("warnings", []),
                    "evidence": s.evidence,
                    "findings": s.facts.get("findings", []),
                    "actions": [a.to_dict() for a in s.actions],
                }
                for s in self.steps
            ],
        }


def fingerprint(facts: dict[str, Any]) -> str:
    """A stable hash of observed facts."""
    blob = json.dumps(facts, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()


def make_plan(
    playbook: Playbook,
    aws: AwsSession,
    state_dir: Path,
    quiet: bool = True,
    store: Store | None = None,
) -> PlanResult:
    """Observe and decide every step of ``playbook`` without changing anything.

    ``store`` lets steps read earlier evidence (e.g. ingested CloudTrail usage) and lets evidence
    steps gather theirs (``Step.gather_evidence``); nothing else is written while planning."""
    outputs: dict[str, Any] = {}
    planned: list[PlannedStep] = []
    prior: list[str] = []
    with aws.read_only():
        evidence = _gather_evidence(playbook, aws, state_dir, store) if store is not None else {}
        for pstep in playbook.steps:
            definition = pstep.definition()
            rendered = render_step(definition, playbook.params, outputs, prior, playbook.path)
            params = validate_with(pstep, rendered, playbook.path)
            step = pstep.step_type(params)
            ctx = StepContext(
                aws=aws,
                step_id=pstep.id,
                regions=step_regions(step, aws),
                state_dir=state_dir,
                quiet=quiet,
                planning=True,
                store=store,
                outputs=outputs,
            )
            try:
                facts = step.observe(ctx)
                actions = step.decide(ctx, facts)
                planned_outputs = step.planned_outputs(ctx, facts)
            except (ClientError, BotoCoreError) as exc:
                # Name the step: "AWS refused X" alone does not say which part of the plan asked.
                raise _in_step(pstep.id, exc) from exc
            except ParamError as exc:
                raise _at_param(playbook, pstep, exc) from None
            waits_for = sorted(unknown_steps(rendered))
            if waits_for:
                actions = [
                    dataclasses.replace(
                        a, known_after=tuple(sorted(set(a.known_after) | set(waits_for)))
                    )
                    for a in actions
                ]
            planned.append(
                PlannedStep(
                    id=pstep.id,
                    uses=pstep.uses,
                    description=pstep.description or (pstep.step_type.__doc__ or "").split("\n")[0],
                    depends_on=list(pstep.depends_on),
                    facts=facts,
                    actions=actions,
                    gated=pstep.approve,
                    known_after=waits_for,
                    planned_outputs=planned_outputs,
                    evidence=evidence.get(pstep.id),
                    regions=list(ctx.regions),
                )
            )
            outputs[pstep.id] = PendingOutputs(pstep.id, planned_outputs)
            prior.append(pstep.id)
    return PlanResult(playbook, planned, fingerprint({s.id: s.facts for s in planned}))


def _in_step(step_id: str, exc: BaseException) -> AwsError:
    """An AWS failure while planning, naming the step that asked (the kind, and so the exit code,
    kept: missing credentials are bad input, an unreachable endpoint a failure)."""
    error = describe_aws_failure(exc)
    return type(error)(f"step {step_id!r}: {error.message}")


def _at_param(playbook: Playbook, pstep: PlaybookStep, exc: ParamError) -> PlaybookError:
    """A parameter the account cannot satisfy, at its ``file:line`` in the playbook."""
    return PlaybookError(
        f"step {pstep.id!r} ({pstep.uses}), with.{exc.param}: {exc.message}",
        playbook.path,
        pstep.param_line(exc.param),
    )


def _gather_evidence(
    playbook: Playbook, aws: AwsSession, state_dir: Path, store: Store
) -> dict[str, str]:
    """First pass: the evidence steps gather theirs (``Step.gather_evidence``) before any step
    observes, so that every step plans from the same evidence the run will see, whatever its
    place in the file. A step whose parameters wait for an earlier step's output is skipped."""
    gathered: dict[str, str] = {}
    earlier: list[str] = []
    for pstep in playbook.steps:
        earlier.append(pstep.id)
        if pstep.step_type.gather_evidence is Step.gather_evidence:
            continue
        rendered = render_step(pstep.definition(), playbook.params, {}, earlier[:-1], playbook.path)
        if unknown_steps(rendered):
            continue
        step = pstep.step_type(validate_with(pstep, rendered, playbook.path))
        ctx = StepContext(
            aws=aws,
            step_id=pstep.id,
            regions=step_regions(step, aws),
            state_dir=state_dir,
            quiet=True,
            planning=True,
            store=store,
        )
        try:
            line = step.gather_evidence(ctx, step.observe(ctx))
        except (ClientError, BotoCoreError) as exc:
            raise _in_step(pstep.id, exc) from exc
        except ParamError as exc:
            raise _at_param(playbook, pstep, exc) from None
        if line is not None:
            gathered[pstep.id] = line
    return gathered


def diff_facts(old: Any, new: Any, path: str = "") -> list[str]:
    """Human-readable differences between two fact trees (for "plan is stale")."""
    if isinstance(old, dict) and isinstance(new, dict):
        out: list[str] = []
        for key in sorted(set(old) | set(new), key=str):
            sub = f"{path}.{key}" if path else str(key)
            if key not in old:
                out.append(f"{sub}: added ({_short(new[key])})")
            elif key not in new:
                out.append(f"{sub}: removed (was {_short(old[key])})")
            else:
                out.extend(diff_facts(old[key], new[key], sub))
        return out
    if old != new:
        return [f"{path}: {_short(old)} -> {_short(new)}"]
    return []


def _short(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= 80 else text[:77] + "..."
