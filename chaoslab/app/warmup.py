"""Loading, while a fault is held, the modules that record the run once it is removed.

A step's hold is time the run only waits through, and what comes after the removal (the
PDCA record, the checklist ledger, the reports) adds to every run's length. So the
modules of that record are imported during the first hold, on a thread of their own, by
``Warmup``: an event sink that hears the runner's ``hold`` phase (it subscribes; the
runner does not know it). Nothing is done early but the imports, and a run that never
holds a fault imports them afterwards, as before. ``wait`` before using them, so that no
two threads import the same modules at once.
"""

from __future__ import annotations

import importlib
import logging
import threading
from collections.abc import Sequence

from chaoslab.runner.events import PHASE, RunEvent

logger = logging.getLogger(__name__)

RECORD_MODULES = (
    "chaoslab.pdca_model",  # first: the runner's own thread needs it as the step ends
    "chaoslab.pdca.cycle",
    "chaoslab.pdca.ledger",
    "chaoslab.report.record",
    "chaoslab.report.files",
    "chaoslab.report.markdown",
    "chaoslab.report.html",
    "chaoslab.report.index",
)


class Warmup:
    """Imports ``modules`` on a daemon thread from the first ``hold`` event on."""

    def __init__(self, modules: Sequence[str] = RECORD_MODULES) -> None:
        self.modules = tuple(modules)
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def __call__(self, event: RunEvent) -> None:
        if event.kind != PHASE or event.phase != "hold":
            return
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._load, name="chaoslab-warmup", daemon=True)
                self._thread.start()

    def wait(self) -> None:
        """Until every module is imported (at once when no hold started the thread)."""
        with self._lock:
            thread = self._thread
        if thread is not None:
            thread.join()

    def _load(self) -> None:
        for name in self.modules:
            try:
                importlib.import_module(name)
            except Exception:  # the run's own import of it fails again, where that is handled
                logger.debug("cannot import %s ahead of the record", name, exc_info=True)
