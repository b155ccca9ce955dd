"""Athena: for accounts whose logs outgrow one machine.

We create the CloudTrail table with partition projection (no crawler, no ``MSCK REPAIR``: Athena
computes the ``region``/``timestamp`` partitions from the S3 layout) and run the aggregation there.
:func:`aggregation_sql` groups by exactly :data:`migrate.cloudtrail.parse.DIMENSIONS`, with the same
normalisation as the local parser (temporary keys become ``ASIA``, absent values ``''``), so its
rows are combos like any other source's. The same SQL runs in DuckDB (the benchmark's peer, and a
test that checks it against the local parser on the same files).
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from migrate.cloudtrail.parse import DIMENSIONS, Combo, ComboValue, merge_combos
from migrate.errors import StepFailed

# Dimension -> SQL expression over the CloudTrail table's columns (Athena/Trino and DuckDB alike).
DIMENSION_SQL: dict[str, str] = {
    "day": "substr(eventtime, 1, 10)",
    "key_id": "CASE WHEN useridentity.accesskeyid LIKE 'ASIA%' THEN 'ASIA' "
    "ELSE useridentity.accesskeyid END",
    "identity_type": "coalesce(useridentity.type, '')",
    "principal_arn": "coalesce(useridentity.arn, '')",
    "user_name": "coalesce(useridentity.username, '')",
    "issuer_arn": "coalesce(useridentity.sessioncontext.sessionissuer.arn, '')",
    "issuer_type": "coalesce(useridentity.sessioncontext.sessionissuer.type, '')",
    "invoked_by": "coalesce(useridentity.invokedby, '')",
    "event_source": "coalesce(eventsource, '')",
    "event_name": "coalesce(eventname, '')",
    "error_code": "coalesce(errorcode, '')",
    "source_ip": "coalesce(sourceipaddress, '')",
    "user_agent": "coalesce(useragent, '')",
    "region": "coalesce(awsregion, '')",
    "vpc_endpoint_id": "coalesce(vpcendpointid, '')",
}
assert tuple(DIMENSION_SQL) == DIMENSIONS, "the SQL must group by the local parser's dimensions"

_IDENT = re.compile(r"^[a-z_][a-z0-9_]{0,127}$")
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d$")


def _check_ident(name: str, what: str) -> str:
    if not _IDENT.match(name):
        raise StepFailed(
            f"{what} {name!r} is not a valid Athena name (lower-case letters, digits and "
            "underscores, starting with a letter). Choose another with --athena-database/"
            "athena_table."
        )
    return name


def table_ddl(
    table: str, bucket: str, logs_root: str, account: str, regions: list[str], start: date
) -> str:
    """``CREATE EXTERNAL TABLE`` for one account's trail, partition-projected by region and day."""
    _check_ident(table, "table")
    bad = [r for r in regions if not _REGION.match(r)]
    if bad or not regions:
        raise StepFailed(
            f"Athena needs the trail's regions to project partitions; got {regions or 'none'}. "
            "Pass --region (or regions:) with real region names such as us-east-1."
        )
    location = f"s3://{bucket}/{logs_root}{account}/CloudTrail/"
    return f"""CREATE EXTERNAL TABLE IF NOT EXISTS {table} (
    eventversion STRING,
    useridentity STRUCT<
        type: STRING, principalid: STRING, arn: STRING, accountid: STRING,
        invokedby: STRING, accesskeyid: STRING, username: STRING,
        sessioncontext: STRUCT<
            attributes: STRUCT<mfaauthenticated: STRING, creationdate: STRING>,
            sessionissuer: STRUCT<
                type: STRING, principalid: STRING, arn: STRING, accountid: STRING,
                username: STRING>,
            ec2roledelivery: STRING,
            webidfederationdata: MAP<STRING, STRING>>>,
    eventtime STRING,
    eventsource STRING,
    eventname STRING,
    awsregion STRING,
    sourceipaddress STRING,
    useragent STRING,
    errorcode STRING,
    errormessage STRING,
    requestparameters STRING,
    responseelements STRING,
    additionaleventdata STRING,
    requestid STRING,
    eventid STRING,
    readonly STRING,
    resources ARRAY<STRUCT<arn: STRING, accountid: STRING, type: STRING>>,
    eventtype STRING,
    apiversion STRING,
    recipientaccountid STRING,
    serviceeventdetails STRING,
    sharedeventid STRING,
    vpcendpointid STRING,
    tlsdetails STRUCT<tlsversion: STRING, ciphersuite: STRING, clientprovidedhostheader: STRING>
)
PARTITIONED BY (region STRING, `timestamp` STRING)
ROW FORMAT SERDE 'org.apache.hive.hcatalog.data.JsonSerDe'
STORED AS INPUTFORMAT 'com.amazon.emr.cloudtrail.CloudTrailInputFormat'
OUTPUTFORMAT 'org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat'
LOCATION '{location}'
TBLPROPERTIES (
    'projection.enabled' = 'true',
    'projection.region.type' = 'enum',
    'projection.region.values' = '{",".join(regions)}',
    'projection.timestamp.type' = 'date',
    'projection.timestamp.format' = 'yyyy/MM/dd',
    'projection.timestamp.range' = '{start:%Y/%m/%d},NOW',
    'projection.timestamp.interval' = '1',
    'projection.timestamp.interval.unit' = 'DAYS',
    'storage.location.template' = '{location}${{region}}/${{timestamp}}'
)"""


def aggregation_sql(
    table: str,
    since: date | None = None,
    until: date | None = None,
    regions: list[str] | None = None,
    *,
    partitioned: bool = True,
) -> str:
    """The per-key aggregation: one row per distinct combo with count, first and last time.

    ``partitioned`` adds the partition-projection filters (Athena); DuckDB's file scan has no
    partition columns and filters on ``eventtime`` instead.
    """
    dims = ",\n    ".join(f"{sql} AS {name}" for name, sql in DIMENSION_SQL.items())
    where = ["useridentity.accesskeyid IS NOT NULL", "useridentity.accesskeyid <> ''"]
    if partitioned:
        if since is not None:
            where.append(f"\"timestamp\" >= '{since:%Y/%m/%d}'")
        if until is not None:
            where.append(f"\"timestamp\" <= '{until:%Y/%m/%d}'")
        if regions:
            bad = [r for r in regions if not _REGION.match(r)]
            if bad:
                raise StepFailed(f"not region names: {bad}")
            where.append("region IN (" + ", ".join(f"'{r}'" for r in regions) + ")")
    else:
        if since is not None:
            where.append(f"eventtime >= '{since:%Y-%m-%d}'")
        if until is not None:
            where.append(f"eventtime < '{until:%Y-%m-%d}T99'")
    group = ", ".join(str(i + 1) for i in range(len(DIMENSION_SQL)))
    return (
        f"SELECT\n    {dims},\n    count(*) AS calls,\n    min(eventtime) AS first_seen,\n"
        f"    max(eventtime) AS last_seen\nFROM {table}\nWHERE "
        + "\n  AND ".join(where)
        + f"\nGROUP BY {group}"
    )


def start_query(
    athena: Any, sql: str, database: str, output: str | None, workgroup: str | None
) -> str:
    """Start a query; returns its execution id."""
    params: dict[str, Any] = {
        "QueryString": sql,
        "QueryExecutionContext": {"Database": _check_ident(database, "database")},
    }
    if output:
        params["ResultConfiguration"] = {"OutputLocation": output}
    if workgroup:
        params["WorkGroup"] = workgroup
    return str(athena.start_query_execution(**params)["QueryExecutionId"])


def query_state(athena: Any, query_id: str) -> tuple[str, str | None]:
    """``(state, reason)``: QUEUED, RUNNING, SUCCEEDED, FAILED or CANCELLED."""
    status = athena.get_query_execution(QueryExecutionId=query_id)["QueryExecution"]["Status"]
    return str(status["State"]), status.get("StateChangeReason")


def read_combos(athena: Any, query_id: str) -> dict[Combo, ComboValue]:
    """The aggregation's result rows as combos (header row skipped)."""
    combos: dict[Combo, ComboValue] = {}
    width = len(DIMENSIONS)
    header_seen = False
    token: str | None = None
    while True:
        params: dict[str, Any] = {"QueryExecutionId": query_id, "MaxResults": 1000}
        if token:
            params["NextToken"] = token
        page = athena.get_query_results(**params)
        for row in page["ResultSet"]["Rows"]:
            values = [cell.get("VarCharValue") for cell in row.get("Data", [])]
            if not header_seen:
                header_seen = True
                if values[:1] == ["day"]:
                    continue
            if len(values) < width + 3:
                continue
            combo = tuple(v or "" for v in values[:width])
            count = int(values[width] or 0)
            merge_combos(combos, {combo: [count, values[width + 1] or "", values[width + 2] or ""]})
        token = page.get("NextToken")
        if not token:
            return combos
