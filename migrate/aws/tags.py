"""AWS tag lists."""

from __future__ import annotations

from collections.abc import Iterable, Mapping


def tag_dict(tag_list: Iterable[Mapping[str, str]] | None) -> dict[str, str]:
    """AWS ``[{"Key": k, "Value": v}]`` into ``{k: v}``."""
    return {t["Key"]: t.get("Value", "") for t in tag_list or ()}


def tag_list(tags: Mapping[str, str]) -> list[dict[str, str]]:
    """``{k: v}`` into the AWS ``[{"Key": k, "Value": v}]`` shape."""
    return [{"Key": k, "Value": v} for k, v in tags.items()]
