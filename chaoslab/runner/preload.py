"""Importing, on a thread of its own, the modules a run needs later, while it waits.

Importing is CPU work a run cannot skip, and before its first fault a run mostly waits: on
Prometheus for the baseline, on the backend for orphans, the preflight and the pods.
``Preload`` imports modules on a daemon thread meanwhile; the runner starts one for
chaoslib and the activities its steps' experiments name, which nothing imports before the
first experiment runs. ``wait`` before the first use, so that no two threads import the
same modules at once. A module that fails to import is left to the run's own import,
where that is handled.
"""

from __future__ import annotations

import importlib
import logging
import threading
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

logger = logging.getLogger(__name__)

CTK_MODULES = ("chaoslib.experiment", "chaoslib.control.python", "chaoslib.provider.python")


class Preload:
    """Imports ``modules``, in order, on a daemon thread from ``start`` on."""

    def __init__(self, modules: Sequence[str], *, name: str = "chaoslab-preload") -> None:
        self.modules = tuple(dict.fromkeys(modules))
        self.name = name
        self._thread: threading.Thread | None = None

    def start(self) -> Preload:
        """Start importing (once: a second call does nothing)."""
        if self._thread is None and self.modules:
            self._thread = threading.Thread(target=self._load, name=self.name, daemon=True)
            self._thread.start()
        return self

    def wait(self) -> None:
        """Until every module is imported (at once when never started)."""
        if self._thread is not None:
            self._thread.join()

    def _load(self) -> None:
        for name in self.modules:
            try:
                importlib.import_module(name)
            except Exception:  # the run's own import of it fails again, where that is handled
                logger.debug("cannot import %s ahead of its use", name, exc_info=True)


def experiment_modules(experiments: Iterable[Mapping[str, Any]]) -> list[str]:
    """chaoslib's runner and the Python modules ``experiments`` name: their activities'
    providers and their controls."""
    modules = list(CTK_MODULES)
    for experiment in experiments:
        hypothesis = experiment.get("steady-state-hypothesis") or {}
        activities = [*(hypothesis.get("probes") or ()), *(experiment.get("method") or ()),
                      *(experiment.get("rollbacks") or ()), *(experiment.get("controls") or ())]
        for activity in activities:
            provider = activity.get("provider") if isinstance(activity, Mapping) else None
            module = provider.get("module") if isinstance(provider, Mapping) else None
            if isinstance(module, str) and module:
                modules.append(module)
    return modules
