"""``cloudtrail.usage``: ingest CloudTrail into per-key usage evidence for the keys-to-roles step."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from pydantic import Field

from migrate.cloudtrail import api, persist
from migrate.cloudtrail import athena as athena_sql
from migrate.cloudtrail.ingest import IngestStats
from migrate.cloudtrail.lookup import LOOKUP_MAX_DAYS
from migrate.cloudtrail.sources import (
    KIND_ATHENA,
    KIND_DIR,
    KIND_LOOKUP,
    KIND_S3,
    Source,
    parse_source,
)
from migrate.engine.base import Action, Estimate, Facts, Step, StepParams, Wait, handles
from migrate.engine.context import StepContext
from migrate.engine.registry import step
from migrate.errors import StepFailed
from migrate.util import parse_duration

READ_MB_PER_S = 20.0  # compressed log bytes per second, S3 download + parse, measured (bench)
ATHENA_USD_PER_TB = 5.0


class CloudTrailUsageParams(StepParams):
    """Parameters of ``cloudtrail.usage``."""

    source: str | None = Field(
        default=None,
        description="s3://BUCKET[/PREFIX], a directory, lookup, athena[:s3://BUCKET[/PREFIX]]; "
        "default: the account's trail bucket, else lookup",
    )
    since: str = Field(default="90d", description="window: 90d, 2w, 36h")
    regions: list[str] = Field(
        default_factory=list,
        description="regions whose logs to read (default: all found; lookup: the session's)",
    )
    accounts: list[str] = Field(default_factory=list, description="accounts of an org trail")
    workers: int | None = Field(default=None, ge=0, description="parse processes (default: cores)")
    attribute_ips: bool = True
    athena_database: str = "default"
    athena_output: str | None = None
    athena_workgroup: str | None = None
    athena_poll_s: float = Field(default=5.0, gt=0)


@step("cloudtrail.usage")
class CloudTrailUsage(Step):
    """Read CloudTrail into per-access-key usage (calls, IAM actions, IPs, EC2 owners) for later steps.

    The source is the account's trail bucket (org trails too), a local directory of log files,
    ``lookup`` (LookupEvents: management events only, last 90 days, 2 requests/s) or ``athena``
    (partition-projected table, aggregation run in Athena). Files are read once: the state store
    remembers them, so a later run reads only new files. The step changes nothing in AWS (Athena
    writes its query results to S3); it stores a usage report whose id it publishes as
    ``usage_id`` for the keys-to-roles step.
    """

    Params = CloudTrailUsageParams
    action_kinds = ("cloudtrail.ingest",)
    permissions = (
        "cloudtrail:DescribeTrails",
        "cloudtrail:LookupEvents",
        "s3:ListBucket",
        "s3:GetObject",
        "s3:GetBucketLocation",
        "s3:PutObject",
        "iam:ListUsers",
        "iam:ListAccessKeys",
        "iam:GetAccessKeyLastUsed",
        "ec2:DescribeNetworkInterfaces",
        "ec2:DescribeInstances",
        "sts:GetCallerIdentity",
        "athena:StartQueryExecution",
        "athena:GetQueryExecution",
        "athena:GetQueryResults",
        "glue:GetDatabase",
        "glue:GetTable",
        "glue:CreateTable",
    )
    outputs = ("usage_id", "dataset", "key_ids")
    example = """\
- id: usage
  uses: cloudtrail.usage
  with:
    since: 90d
"""
    params: CloudTrailUsageParams

    # -- helpers ----------------------------------------------------------------------------------
    def _source(self, ctx: StepContext) -> tuple[Source, str]:
        source = api.resolve_source(ctx.aws, parse_source(self.params.source))
        account = ctx.account_id if source.kind == KIND_LOOKUP else ""
        return source, api.dataset_name(source, account)

    def _window(self) -> tuple[date, date]:
        """First day of the window, and the last *complete* day (yesterday, UTC).

        Facts count files of complete days only, so a plan stays valid for the rest of the day
        while CloudTrail keeps delivering today's files (act reads those too).
        """
        now = api.now_utc()
        start = api.window_start(self.params.since, now)
        return start, now.date() - timedelta(days=1)

    # -- the contract -----------------------------------------------------------------------------
    def observe(self, ctx: StepContext) -> Facts:
        """The source, and for file sources how many log files of the window are not read yet."""
        parse_duration(self.params.since)  # a bad window fails the plan, not the run
        source, dataset = self._source(ctx)
        start, last_day = self._window()
        facts: Facts = {
            "source": source.kind,
            "dataset": dataset,
            "since": f"{start:%Y-%m-%d}",
            "regions": list(self.params.regions),
            "compliant": [],
        }
        if source.kind not in (KIND_S3, KIND_DIR):
            if source.kind == KIND_LOOKUP:
                facts["regions"] = list(self.params.regions or ctx.regions)
            return facts
        files = size = new = new_size = 0
        store = ctx.store
        pages = api.list_files(
            ctx.aws,
            source,
            start,
            last_day,
            self.params.regions or None,
            self.params.accounts or None,
        )
        for page in pages:
            known = (
                persist.already_ingested(store, dataset, [f.name for f in page])
                if store is not None
                else set()
            )
            for log in page:
                files += 1
                size += log.size
                if log.name not in known:
                    new += 1
                    new_size += log.size
        facts.update({"files": files, "bytes": size})
        if files == 0:
            # Absence of evidence is not evidence of absence: say it loudly, in the plan.
            facts["warnings"] = [
                f"no CloudTrail log files for {dataset} between {start:%Y-%m-%d} and "
                f"{last_day:%Y-%m-%d}: every key would look unused. Check `source`, `regions` "
                "and `accounts`, and that the trail delivers there; keys-to-roles sends keys "
                "without evidence to review, never to deactivation"
            ]
        if store is not None:
            # The planner passes its store too (and gathers the evidence first, see below).
            facts.update({"new_files": new, "new_bytes": new_size})
            if new == 0 and persist.latest_report_id(store, dataset=dataset):
                facts["compliant"] = [dataset]
        return facts

    def decide(self, ctx: StepContext, facts: Facts) -> list[Action]:
        """One ingestion action per dataset (none when nothing new and a report exists)."""
        dataset = facts["dataset"]
        if dataset in facts["compliant"]:
            return []
        kind = facts["source"]
        risks: list[str] = []
        if kind in (KIND_S3, KIND_DIR):
            files = int(facts["new_files"] if "new_files" in facts else facts["files"])
            size = int(facts["new_bytes"] if "new_bytes" in facts else facts["bytes"])
            summary = (
                f"read {files} CloudTrail log files ({size / 1e6:.1f} MB) of {dataset} since "
                f"{facts['since']} (plus today's) into per-key usage"
            )
            estimate = Estimate(
                duration_s=round(size / (READ_MB_PER_S * 1e6) + 5, 1),
                api_requests=files + files // 1000 + 10,
                bytes=size,
                cost_usd=round(files * 0.0004 / 1000, 4),  # S3 GET requests
            )
        elif kind == KIND_LOOKUP:
            regions = ", ".join(facts["regions"])
            summary = f"read management events since {facts['since']} with LookupEvents ({regions})"
            risks.append(
                "LookupEvents has management events only (no S3 object or Lambda invoke data "
                f"events) from the last {LOOKUP_MAX_DAYS} days, at 2 requests/s: keys used only "
                "for data events look unused"
            )
            estimate = Estimate(duration_s=60, api_requests=100)
        else:
            summary = f"aggregate {dataset} since {facts['since']} in Athena"
            risks.append(
                f"Athena bills scanned bytes (about ${ATHENA_USD_PER_TB:.0f}/TB of compressed logs)"
                " and writes query results to the output location"
            )
            estimate = Estimate(duration_s=120, api_requests=20)
        return [
            Action(
                kind="cloudtrail.ingest",
                target=dataset,
                summary=summary,
                estimate=estimate,
                risks=tuple(risks),
                details={"source": kind, "since": facts["since"]},
            )
        ]

    def gather_evidence(self, ctx: StepContext, facts: Facts) -> str | None:
        """Read the window's new log files into the store while planning, so that keys-to-roles
        plans from the calls CloudTrail recorded (not from "never used").

        File sources only (S3 and directories: reads); LookupEvents is read again by the run
        anyway, and Athena starts queries, which a plan may not do."""
        if facts["source"] not in (KIND_S3, KIND_DIR) or facts["dataset"] in facts["compliant"]:
            return None
        assert ctx.store is not None
        source, dataset = self._source(ctx)
        start, _ = self._window()
        stats = api.ingest_source(
            ctx.store,
            ctx.aws,
            source,
            dataset,
            start,
            regions=self.params.regions or None,
            accounts=self.params.accounts or None,
            workers=self.params.workers,
        )
        report_id, report = self._store_report(ctx, source, dataset, start, stats)
        return (
            f"read {stats.files_read} log files of {dataset} while "
            f"planning: usage report {report_id}, {len(report.keys)} access keys"
        )

    def _store_report(
        self,
        ctx: StepContext,
        source: Source,
        dataset: str,
        start: date,
        stats: IngestStats | None,
    ) -> tuple[str, Any]:
        """Fold the dataset into a usage report and store it (for this run, or for no run while
        planning); return its id and the report."""
        assert ctx.store is not None
        report = api.build_report(
            ctx.store,
            ctx.aws,
            source,
            dataset,
            start,
            ingest_stats=stats,
            attribute=self.params.attribute_ips,
        )
        return persist.save_report(ctx.store, report, ctx.run_id, ctx.step_id), report

    @handles("cloudtrail.ingest")
    def _ingest(self, ctx: StepContext, action: Action) -> Wait | None:
        """Ingest (checkpointed per batch of files; Athena queries as waits) and store the report."""
        source, dataset = self._source(ctx)
        start = date.fromisoformat(str(action.details.get("since") or self._window()[0]))
        assert ctx.store is not None
        stats: IngestStats | None = None
        if source.kind == KIND_ATHENA:
            waiting = self._athena_step(ctx, source, dataset, start)
            if waiting is not None:
                return waiting
        else:
            regions = self.params.regions or None
            if source.kind == KIND_LOOKUP:
                regions = list(self.params.regions or ctx.regions)
            bar: Any = ctx.progress(total=0, desc="log files", unit="file")

            def on_batch(done: IngestStats) -> None:
                ctx.checkpoint(
                    {"dataset": dataset, "files_read": done.files_read},
                    done=done.files_read,
                    total=int(bar.total or 0) or None,
                )

            try:
                stats = api.ingest_source(
                    ctx.store,
                    ctx.aws,
                    source,
                    dataset,
                    start,
                    regions=regions,
                    accounts=self.params.accounts or None,
                    workers=self.params.workers,
                    run_id=ctx.run_id,
                    progress=bar,
                    on_batch=on_batch,
                )
            finally:
                bar.close()
        report_id, report = self._store_report(ctx, source, dataset, start, stats)
        ctx.record_resource(
            "migrate:usage-report",
            report_id,
            details={"dataset": dataset, "keys": len(report.keys)},
        )
        return None

    def _athena_step(
        self, ctx: StepContext, source: Source, dataset: str, start: date
    ) -> Wait | None:
        """Run the Athena statements one by one, as waits; None once the combos are stored."""
        options = api.AthenaOptions(
            database=self.params.athena_database,
            output=self.params.athena_output,
            workgroup=self.params.athena_workgroup,
        )
        statements = api.athena_queries(
            ctx.aws,
            source,
            start,
            None,
            self.params.regions or None,
            self.params.accounts or None,
            options,
        )
        client = ctx.client("athena")
        store = ctx.store
        assert store is not None
        saved = ctx.load_checkpoint("athena")
        cursor: dict[str, Any] = dict(saved["cursor"]) if saved else {"index": 0, "query_id": None}
        while cursor["index"] < len(statements):
            sql = statements[cursor["index"]]
            if not cursor["query_id"]:
                cursor["query_id"] = athena_sql.start_query(
                    client, sql, options.database, options.output, options.workgroup
                )
                ctx.checkpoint(cursor, done=cursor["index"], total=len(statements), name="athena")
            state, reason = athena_sql.query_state(client, cursor["query_id"])
            if state in ("QUEUED", "RUNNING"):
                return Wait(
                    reason=f"Athena query {cursor['query_id']} {state.lower()}",
                    poll_s=self.params.athena_poll_s,
                )
            if state != "SUCCEEDED":
                raise StepFailed(
                    f"Athena query {cursor['query_id']} {state.lower()}: {reason}. Check "
                    "athena_output, the workgroup and the Glue database, then resume."
                )
            if sql.startswith("SELECT"):
                combos = athena_sql.read_combos(client, cursor["query_id"])
                if cursor["index"] <= 1:
                    persist.replace_window(store, dataset, f"{start:%Y-%m-%d}", combos)
                else:
                    persist.commit_batch(store, dataset, [], combos, ctx.run_id)
            cursor = {"index": cursor["index"] + 1, "query_id": None}
            ctx.checkpoint(cursor, done=cursor["index"], total=len(statements), name="athena")
        return None

    def verify(self, ctx: StepContext) -> None:
        """A usage report exists for the dataset."""
        if ctx.store is None:
            return
        _, dataset = self._source(ctx)
        if persist.latest_report_id(ctx.store, dataset=dataset) is None:
            raise StepFailed(f"no usage report was stored for {dataset}; resume to retry.")

    def published(self, ctx: StepContext) -> dict[str, Any]:
        """``usage_id`` (this run's report, else the dataset's latest), ``dataset``, ``key_ids``."""
        _, dataset = self._source(ctx)
        if ctx.store is None:
            return {"dataset": dataset}
        report_id = persist.latest_report_id(
            ctx.store, run_id=ctx.run_id, step_id=ctx.step_id
        ) or persist.latest_report_id(ctx.store, dataset=dataset)
        report = persist.load_report(ctx.store, report_id) if report_id else None
        keys = [k.principal for k in report.keys] if report else []
        return {"usage_id": report_id, "dataset": dataset, "key_ids": keys}

    def planned_outputs(self, ctx: StepContext, facts: Facts) -> dict[str, Any]:
        """The dataset; and, when the evidence is already in the store (gathered while planning,
        or by an earlier run) and nothing is left to read, the report the run will publish."""
        dataset = facts["dataset"]
        if ctx.store is None or dataset not in facts["compliant"]:
            return {"dataset": dataset}
        report_id = persist.latest_report_id(ctx.store, dataset=dataset)
        report = persist.load_report(ctx.store, report_id) if report_id else None
        if report is None:
            return {"dataset": dataset}
        return {
            "usage_id": report_id,
            "dataset": dataset,
            "key_ids": [k.principal for k in report.keys],
        }

    def rollback(self, ctx: StepContext) -> None:
        """Nothing to undo in AWS; the stored evidence is kept."""
        return None
