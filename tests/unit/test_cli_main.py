"""The top-level command line: which parser answers, whatever comes before the command."""

from __future__ import annotations

import os
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


EXIT_PROGRAM = """
import atexit, sys
from chaoslab.cli.main import _exit
atexit.register(lambda: print("hook ran", file=sys.stderr))
print("not yet flushed", end="")
_exit(int(sys.argv[1]))
"""
BUFFERED = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}  # output waits for a flush


@pytest.mark.parametrize("code", [0, 1, 3])
def test_the_program_exit_runs_the_atexit_hooks_and_flushes_its_output(code: int) -> None:
    # stdout is a pipe here, so the print above sits in a buffer until something flushes it.
    done = subprocess.run([sys.executable, "-c", EXIT_PROGRAM, str(code)], capture_output=True, text=True,
                          check=False, cwd=REPO, env=BUFFERED)

    assert done.returncode == code
    assert done.stdout == "not yet flushed"
    assert done.stderr == "hook ran\n"


def test_the_program_exit_into_a_closed_pipe_keeps_its_code() -> None:
    # Output still in the buffer when the reader goes away (`| head -c 10`): flushing it
    # fails, which must neither raise nor change the exit code.
    program = EXIT_PROGRAM.replace('print("not yet flushed", end="")',
                                   'print("x" * 1000)\nsys.stdin.readline()')
    reader = subprocess.Popen([sys.executable, "-c", program, "1"], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO, env=BUFFERED)
    assert reader.stdin is not None
    assert reader.stdout is not None
    assert reader.stderr is not None
    reader.stdout.close()
    reader.stdin.write(b"go on\n")
    reader.stdin.close()

    assert reader.wait(timeout=60) == 1
    assert reader.stderr.read() == b"hook ran\n"
