"""The top-level command line: which parser answers, whatever comes before the command."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from chaoslab.cli import exitcodes
from chaoslab.cli.main import COMMANDS, main

REPO = Path(__file__).resolve().parents[2]
GAMEDAY = REPO / "experiments" / "gameday.yaml"


@pytest.mark.parametrize("argv", [["validate"], ["-v", "validate"], ["-vv", "--verbose", "validate"]])
def test_a_command_runs_after_verbosity_flags(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*argv, str(GAMEDAY)]) == exitcodes.OK
    assert "GameDay shop-weekly" in capsys.readouterr().out


@pytest.mark.parametrize("argv", [["--help"], ["-h", "run"], ["-v", "--help"]])
def test_the_top_level_help_lists_every_command(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(argv)

    assert exited.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: chaoslab [-h] [-v] COMMAND")
    assert all(f"    {name} " in out for name in COMMANDS)


def test_a_mistyped_command_names_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["rnu", str(GAMEDAY)])

    assert exited.value.code == exitcodes.USAGE
    err = capsys.readouterr().err
    assert "invalid choice: 'rnu'" in err
    assert all(repr(name) in err for name in COMMANDS)


def test_a_command_help_is_its_own(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["run", "--help"])

    assert capsys.readouterr().out.startswith("usage: chaoslab run [-h]")


@pytest.mark.parametrize(("argv", "code"), [(["validate", str(GAMEDAY)], 0), (["nope"], 2)])
def test_the_program_exits_with_the_commands_code(argv: list[str], code: int) -> None:
    done = subprocess.run([sys.executable, "-m", "chaoslab", *argv], capture_output=True, text=True,
                          check=False, cwd=REPO)

    assert done.returncode == code, done.stderr
