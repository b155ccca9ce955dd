"""Malformed playbooks: each exits 2 with file:line and a fix, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from migrate.cli import cli

GOOD_STEP = """\
  - id: kms
    uses: kms.ensure_key
    with:
      alias: alias/x
"""

# (name, playbook text, extra CLI args, expected line, a phrase the message must contain)
CASES: list[tuple[str, str, list[str], int, str]] = [
    ("yaml syntax", "name: x\nsteps:\n  - id: a\n   uses: core.wait\n", [], 4, "not valid YAML"),
    ("empty file", "", [], 1, "empty"),
    ("top level list", "- a\n- b\n", [], 1, "must be a YAML mapping"),
    ("unknown top key", "name: x\nstep:\n" + GOOD_STEP, [], 2, "unknown key 'step'"),
    ("missing name", "steps:\n" + GOOD_STEP, [], 1, "needs a `name:`"),
    ("steps not a list", "name: x\nsteps: kms\n", [], 2, "non-empty list"),
    ("step not a mapping", "name: x\nsteps:\n  - kms\n", [], 3, "each step must be a mapping"),
    ("missing id", "name: x\nsteps:\n  - uses: core.wait\n", [], 3, "needs an `id:`"),
    (
        "bad id",
        "name: x\nsteps:\n  - id: 9lives\n    uses: core.wait\n",
        [],
        3,
        "starts with a letter",
    ),
    (
        "duplicate id",
        "name: x\nsteps:\n" + GOOD_STEP + GOOD_STEP,
        [],
        7,
        "duplicate step id 'kms'",
    ),
    (
        "unknown step type",
        "name: x\nsteps:\n  - id: a\n    uses: s3.encrypt_everything\n",
        [],
        4,
        "unknown step type 's3.encrypt_everything'; valid types are:",
    ),
    ("missing uses", "name: x\nsteps:\n  - id: a\n", [], 3, "needs `uses:`"),
    (
        "unknown key in step",
        "name: x\nsteps:\n  - id: a\n    uses: core.wait\n    whith: {}\n",
        [],
        5,
        "unknown key 'whith'",
    ),
    (
        "unknown key under with",
        "name: x\nsteps:\n  - id: a\n    uses: kms.ensure_key\n    with:\n      alias: alias/x\n"
        "      rotation: yes\n",
        [],
        7,
        "unknown key 'rotation'",
    ),
    (
        "wrong type under with",
        "name: x\nsteps:\n  - id: a\n    uses: core.wait\n    with:\n      seconds: soon\n",
        [],
        6,
        "with.seconds",
    ),
    (
        "missing required with key",
        "name: x\nsteps:\n  - id: a\n    uses: s3.default_encryption\n    with:\n"
        "      names: ['*']\n",
        [],
        5,
        "missing the required key 'kms_key'",
    ),
    (
        "undefined parameter",
        "name: x\nsteps:\n  - id: a\n    uses: kms.ensure_key\n    with:\n"
        "      alias: '{{ params.nope }}'\n",
        [],
        6,
        "not defined",
    ),
    (
        "required param not given",
        "name: x\nparams:\n  alias:\n    type: string\nsteps:\n  - id: a\n"
        "    uses: kms.ensure_key\n    with:\n      alias: '{{ params.alias }}'\n",
        [],
        3,
        "no default and was not given",
    ),
    (
        "param of wrong type",
        "name: x\nparams:\n  days: 7\nsteps:\n  - id: a\n    uses: core.wait\n    with:\n"
        "      days: '{{ params.days }}'\n",
        ["-p", "days=soon"],
        3,
        "must be of type integer",
    ),
    (
        "bad jinja",
        "name: x\nsteps:\n  - id: a\n    uses: kms.ensure_key\n    with:\n"
        "      alias: '{{ params.alias '\n",
        [],
        6,
        "not valid jinja2",
    ),
    (
        "depends on later step",
        "name: x\nsteps:\n  - id: a\n    uses: core.wait\n    depends_on: [b]\n"
        "  - id: b\n    uses: core.wait\n",
        [],
        5,
        "not an earlier step",
    ),
    (
        "reference to unknown step output",
        "name: x\nsteps:\n  - id: a\n    uses: s3.default_encryption\n    with:\n"
        "      kms_key: '{{ steps.kms.key_arn }}'\n",
        [],
        5,
        "references `steps.kms`",
    ),
    (
        "duplicate yaml key",
        "name: x\nname: y\nsteps:\n" + GOOD_STEP,
        [],
        2,
        "appears twice",
    ),
    (
        "approve not boolean",
        "name: x\nsteps:\n  - id: a\n    uses: core.wait\n    approve: maybe\n",
        [],
        5,
        "`approve` must be true or false",
    ),
    (
        "value out of range",
        "name: x\nsteps:\n  - id: a\n    uses: core.wait\n    with:\n      seconds: -5\n",
        [],
        6,
        "greater than or equal to 0",
    ),
]


@pytest.mark.parametrize(
    ("text", "args", "line", "phrase"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_malformed_playbook_exits_2_with_file_and_line(
    tmp_path: Path, text: str, args: list[str], line: int, phrase: str
) -> None:
    book = tmp_path / "bad.yaml"
    book.write_text(text)
    result = CliRunner().invoke(
        cli,
        ["--state", str(tmp_path / "s.db"), "plan", str(book), *args],
        env={"AWS_ENDPOINT_URL": "http://127.0.0.1:9"},
    )
    assert result.exit_code == 2, result.output
    assert f"{book}:{line}:" in result.output
    assert phrase in result.output
    assert "Traceback" not in result.output


def test_at_least_fifteen_cases() -> None:
    assert len(CASES) >= 15


def test_unknown_cli_param_names_the_declared_ones(tmp_path: Path) -> None:
    book = tmp_path / "p.yaml"
    book.write_text("name: x\nparams:\n  days: 7\nsteps:\n" + GOOD_STEP)
    result = CliRunner().invoke(
        cli, ["--state", str(tmp_path / "s.db"), "plan", str(book), "-p", "dayz=3"]
    )
    assert result.exit_code == 2
    assert "declares no parameter 'dayz'" in result.output and "days" in result.output


def test_missing_playbook_file(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli, ["--state", str(tmp_path / "s.db"), "plan", str(tmp_path / "nope.yaml")]
    )
    assert result.exit_code == 2
    assert "does not exist" in result.output
