"""Which buckets an S3 step works on: one selection (names, exclude, tags, region) for both."""

from __future__ import annotations

from migrate.aws.s3 import bucket_region, bucket_tags
from migrate.engine.context import StepContext
from migrate.engine.selection import Selection


def select_buckets(
    ctx: StepContext, selection: Selection, warnings: list[str] | None = None
) -> dict[str, str]:
    """The buckets a step's ``names``/``exclude``/``tags`` select, with their regions, sorted.

    A bucket named exactly that does not exist is refused (``ParamError``); a glob that matches
    no bucket is appended to ``warnings``."""
    s3 = ctx.client("s3")
    every = [b["Name"] for b in s3.list_buckets().get("Buckets", [])]
    empty = selection.unmatched(every, "bucket", f"account {ctx.account_id}")
    if warnings is not None:
        warnings.extend(empty)
    names = sorted(name for name in every if selection.name_matches(name))
    selected: dict[str, str] = {}
    for name in ctx.progress(names, desc="buckets", unit="bucket"):
        if selection.tags and not selection.tags_match(bucket_tags(s3, name)):
            continue
        selected[name] = bucket_region(s3, name)
    return selected
