"""The collector paused while the program starts (chaoslab.cli.collector)."""

from __future__ import annotations

import gc
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from chaoslab.cli import collector
from chaoslab.runner.events import PHASE, RUN_FINISHED, STEP_FINISHED, STEP_STARTED, RunEvent

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def paused() -> Iterator[None]:
    """The collector paused as ``program`` pauses it; on and unfrozen again afterwards."""
    assert gc.isenabled()
    collector.pause()
    yield
    collector.resume()
    gc.unfreeze()
    gc.enable()


def test_resume_turns_collection_back_on_and_freezes_what_startup_made(paused: None) -> None:
    assert not gc.isenabled()
    assert collector.paused()
    frozen = gc.get_freeze_count()

    collector.resume()

    assert gc.isenabled()
    assert not collector.paused()
    assert gc.get_freeze_count() > frozen
    collector.resume()  # once is enough; a second call changes nothing
    assert gc.isenabled()


def test_resume_without_a_pause_leaves_the_collector_alone() -> None:
    frozen = gc.get_freeze_count()

    collector.resume()

    assert gc.isenabled()
    assert gc.get_freeze_count() == frozen


def test_pause_leaves_a_collector_someone_else_turned_off_alone() -> None:
    gc.disable()
    try:
        collector.pause()
        collector.resume()
        assert not gc.isenabled()  # not ours to turn on
    finally:
        gc.enable()


@pytest.mark.parametrize(
    "event",
    [RunEvent(kind=PHASE, phase="hold"), RunEvent(kind=STEP_FINISHED), RunEvent(kind=RUN_FINISHED)],
    ids=["first hold", "step end without a hold", "run end"],
)
def test_a_run_resumes_at_its_first_hold_or_step_end(paused: None, event: RunEvent) -> None:
    seen: list[RunEvent] = []
    sink = collector.resuming(seen.append)

    sink(RunEvent(kind=STEP_STARTED))
    sink(RunEvent(kind=PHASE, phase="baseline"))
    sink(RunEvent(kind=PHASE, phase="inject"))
    assert not gc.isenabled()

    sink(event)

    assert gc.isenabled()
    assert [e.kind for e in seen] == [STEP_STARTED, PHASE, PHASE, event.kind]  # every event still passes


def test_every_other_command_runs_with_the_collector_on() -> None:
    program = ("import gc, sys\nimport chaoslab.cli.main\ncli = sys.modules['chaoslab.cli.main']\n"
               "cli.COMMANDS = (*cli.COMMANDS, 'probe')\n"
               "sys.modules['chaoslab.cli.probe'] = type(sys)('probe')\n"
               "def register(sub):\n"
               "    sub.add_parser('probe').set_defaults(handler=lambda args: 0 if gc.isenabled() else 7)\n"
               "sys.modules['chaoslab.cli.probe'].register = register\n"
               "sys.argv = ['chaoslab', 'probe']\ncli.program()\n")
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, check=False,
                          cwd=REPO)

    assert done.returncode == 0, done.stderr
