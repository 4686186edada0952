"""Loading the run record's modules while a fault is held (chaoslab.app.warmup)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from chaoslab.app.warmup import RECORD_MODULES, Warmup
from chaoslab.runner.events import PHASE, STEP_STARTED, RunEvent
from tests.support.importing import thread_probe

PROBE = "chaoslab_warmup_probe"


@pytest.fixture
def probe(tmp_path: Path) -> Iterator[Path]:
    with thread_probe(tmp_path, PROBE) as directory:
        yield directory


def test_modules_load_on_another_thread_once_a_fault_is_held(probe: Path) -> None:
    warmup = Warmup((PROBE,))
    warmup(RunEvent(kind=STEP_STARTED))
    warmup(RunEvent(kind=PHASE, phase="inject"))
    warmup.wait()
    assert PROBE not in sys.modules

    warmup(RunEvent(kind=PHASE, phase="hold"))
    warmup(RunEvent(kind=PHASE, phase="hold"))  # a second hold starts nothing more
    warmup.wait()

    assert sys.modules[PROBE].THREAD.startswith("chaoslab-request")  # one of the process's threads


def test_a_module_that_cannot_load_is_left_to_the_run_itself(probe: Path) -> None:
    (probe / "chaoslab_warmup_broken.py").write_text("raise RuntimeError('broken on purpose')\n")
    warmup = Warmup(("chaoslab_warmup_broken", PROBE))

    warmup(RunEvent(kind=PHASE, phase="hold"))
    warmup.wait()

    assert "chaoslab_warmup_broken" not in sys.modules
    assert PROBE in sys.modules  # the ones after it still load
    with pytest.raises(RuntimeError, match="broken on purpose"):
        __import__("chaoslab_warmup_broken")


def test_without_a_hold_waiting_returns_at_once() -> None:
    Warmup(("chaoslab_warmup_never_imported",)).wait()

    assert "chaoslab_warmup_never_imported" not in sys.modules


def test_the_record_modules_exist() -> None:
    warmup = Warmup()
    warmup(RunEvent(kind=PHASE, phase="hold"))
    warmup.wait()

    assert all(name in sys.modules for name in RECORD_MODULES)
