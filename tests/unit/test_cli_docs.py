"""Every command has --help text and is documented in docs/cli.md with its options."""

from __future__ import annotations

from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from migrate.cli import cli

DOCS = (Path(__file__).resolve().parents[2] / "docs" / "cli.md").read_text()


def _commands(group: click.Group, prefix: str = "") -> list[tuple[str, click.Command]]:
    out: list[tuple[str, click.Command]] = []
    for name, cmd in sorted(group.commands.items()):
        full = f"{prefix}{name}"
        out.append((full, cmd))
        if isinstance(cmd, click.Group):
            out.extend(_commands(cmd, full + " "))
    return out


COMMANDS = _commands(cli)


def test_core_verbs_exist() -> None:
    names = {n for n, _ in COMMANDS}
    assert {
        "plan",
        "run",
        "resume",
        "status",
        "approve",
        "rollback",
        "report",
        "unlock",
        "steps",
        "permissions",
        "demo",
        "sandbox",
        "sandbox serve",
    } <= names


@pytest.mark.parametrize(("name", "cmd"), COMMANDS, ids=[n for n, _ in COMMANDS])
def test_help_works_and_is_documented(name: str, cmd: click.Command) -> None:
    result = CliRunner().invoke(cli, [*name.split(), "--help"])
    assert result.exit_code == 0, result.output
    assert cmd.help and len(cmd.help) > 20
    assert f"migrate {name}" in DOCS, f"docs/cli.md does not document `migrate {name}`"
    for param in cmd.params:
        if isinstance(param, click.Option) and param.opts[0] != "--help":
            assert any(opt in DOCS for opt in param.opts), f"{name}: {param.opts} undocumented"


def test_top_level_help_lists_commands() -> None:
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    for verb in ("plan", "run", "resume", "status", "approve"):
        assert verb in result.output
