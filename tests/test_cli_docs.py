"""Every command has help and is documented in the README (datasette's test_docs habit)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from click.testing import CliRunner

from dpgenome.cli import main

README = (Path(__file__).parents[1] / "README.md").read_text()


@pytest.mark.parametrize("name", sorted(main.commands))
def test_command__has_help_and_is_in_readme(name: str) -> None:
    result = CliRunner().invoke(main, [name, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output
    assert f"dpgenome {name}" in README or f"`{name}`" in README, name


def test_readme__two_commands_match_ci() -> None:
    ci = (Path(__file__).parents[1] / ".ci" / "run").read_text()
    assert "python -m pytest" in README
    assert ci.rstrip().splitlines()[-1] == "python -m pytest"
    assert "pip install torch==2.13.0" in README and "dpgenome demo" in README


def test_main__user_error_exits_2_without_traceback(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["inspect", str(tmp_path)])
    assert result.exit_code == 2
    assert "Traceback" not in result.output + result.stderr
    assert str(tmp_path) in result.stderr


def test_main__verbose_flag_shows_info_lines(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """``-v`` did nothing: Opacus configures logging when imported (with the commands), after
    which the group's ``logging.basicConfig`` was a no-op and the root level stayed WARNING."""

    def info_lines(*flags: str, out: str) -> list[str]:
        caplog.clear()
        args = [*flags, "simulate", "--out", str(tmp_path / out), "--n", "30"]
        result = CliRunner().invoke(main, [*args, "--chromosomes", "19"])
        assert result.exit_code == 0, result.output
        return [r.getMessage() for r in caplog.records if r.name == "dpgenome.cli.simulate"]

    try:
        assert info_lines(out="a") == []
        assert [m.split(" in ")[0] for m in info_lines("-v", out="b")] == [
            "simulated and wrote 30 x 1828"
        ]
    finally:
        logging.getLogger().setLevel(logging.WARNING)
