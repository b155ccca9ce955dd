"""Global options are accepted after the subcommand too (`migrate plan X --region eu-west-1`)."""

from __future__ import annotations

import pytest

from migrate.cli import hoist_global_options


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["plan", "x.yaml", "--region", "eu-west-1"], ["--region", "eu-west-1", "plan", "x.yaml"]),
        (["status", "--state=s.db", "-q"], ["--state=s.db", "-q", "status"]),
        (["--debug", "run", "x.yaml", "--yes"], ["--debug", "run", "x.yaml", "--yes"]),
        (
            ["trail", "usage", "--source", "d", "--profile", "p"],
            ["--profile", "p", "trail", "usage", "--source", "d"],
        ),
        (["plan", "x.yaml", "-p", "region=x"], ["plan", "x.yaml", "-p", "region=x"]),
        (["plan", "--", "--region"], ["plan", "--", "--region"]),
    ],
)
def test_global_options_move_before_the_subcommand(argv: list[str], expected: list[str]) -> None:
    assert hoist_global_options(argv) == expected
