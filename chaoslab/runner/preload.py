"""Importing, on another thread, the modules a run needs later, while it waits.

Importing is CPU work a run cannot skip, and before its first fault a run mostly waits: on
Prometheus for the baseline, on the backend for orphans, the preflight and the pods.
``Preload`` imports modules on another thread meanwhile; the runner starts one for
chaoslib and the activities its steps' experiments name, which nothing imports before the
first experiment runs. ``wait`` before the first use, so that no two threads import the
same modules at once. A module that fails to import is left to the run's own import,
where that is handled.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future, wait
from typing import Any

from chaoslab.threads import shared_pool

logger = logging.getLogger(__name__)

CTK_MODULES = ("chaoslib.experiment", "chaoslib.control.python", "chaoslib.provider.python")


class Preload:
    """Imports ``modules``, in order, on one of the process's request threads
    (``chaoslab.threads``: no thread to start) from ``start`` on, then calls each of
    ``then`` (whatever they raise is ignored)."""

    def __init__(self, modules: Sequence[str], *, then: Sequence[Callable[[], object]] = ()) -> None:
        self.modules = tuple(dict.fromkeys(modules))
        self._then = tuple(then)
        self._done: Future[None] | None = None

    def start(self) -> Preload:
        """Start importing (once: a second call does nothing)."""
        if self._done is None and self.modules:
            self._done = shared_pool().submit(self._load)
        return self

    def wait(self) -> None:
        """Until every module is imported (at once when never started)."""
        if self._done is not None:
            wait([self._done])

    def _load(self) -> None:
        for name in self.modules:
            try:
                importlib.import_module(name)
            except Exception:  # the run's own import of it fails again, where that is handled
                logger.debug("cannot import %s ahead of its use", name, exc_info=True)
        for call in self._then:
            try:
                call()
            except Exception:  # asked again where it is used, and handled there
                logger.debug("cannot call %r ahead of its use", call, exc_info=True)


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
