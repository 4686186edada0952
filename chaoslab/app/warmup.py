"""Loading, while a fault is held, the modules that record the run once it is removed.

A step's hold is time the run only waits through, and what comes after the removal (the
PDCA record, the checklist ledger, the reports) adds to every run's length. So the
modules of that record are imported during the first hold, on another thread, by
``Warmup``: an event sink that hears the runner's ``hold`` phase (it subscribes; the
runner does not know it). Nothing is done early but the imports, and a run that never
holds a fault imports them afterwards, as before. ``wait`` before using them, so that no
two threads import the same modules at once. The runner's own modules for the end of a
step come first: they are loaded a few milliseconds into the hold, and a step that ends
sooner imports them itself once they are (each module is imported under its own lock).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

from chaoslab.runner.events import PHASE, RunEvent
from chaoslab.runner.preload import Preload

RECORD_MODULES = (
    # First what the runner's own thread needs as the step ends (runner/step.py).
    "chaoslab.runner.journal",
    "chaoslab.runner.recovery",
    "chaoslab.runner.trace",
    "chaoslab.pdca_model",
    "chaoslab.pdca.cycle",
    "chaoslab.pdca.ledger",
    "chaoslab.report.record",
    "chaoslab.report.files",
    "chaoslab.report.markdown",
    "chaoslab.report.html",
    "chaoslab.report.index",
)


class Warmup:
    """Imports ``modules`` on another thread from the first ``hold`` event on."""

    def __init__(self, modules: Sequence[str] = RECORD_MODULES) -> None:
        self._preload = Preload(modules)
        self.modules = self._preload.modules
        self._lock = threading.Lock()

    def __call__(self, event: RunEvent) -> None:
        if event.kind != PHASE or event.phase != "hold":
            return
        with self._lock:  # a hold on the main thread, ticks from the watcher's: one start
            self._preload.start()

    def wait(self) -> None:
        """Until every module is imported (at once when no hold started the imports)."""
        self._preload.wait()
