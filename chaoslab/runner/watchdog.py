"""The removal watchdog: removes the run's faults itself when a stop was requested and the
main thread cannot get to the rollback.

A halt or a signal ends the hold at once, and chaoslib's rollback removes the fault within
milliseconds. But the main thread may be stuck elsewhere while the fault is in place: in
the backend waiting for a slow injection to take hold (Chaos Mesh can take the whole
inject timeout), or in a probe of the hypothesis checked with the fault in place, waiting
on a Prometheus that no longer answers. Between the start of the injection and the start
of the rollback, this thread watches for a stop request (a signal, or a breach seen by the
SLO watcher); when the rollback has not started ``GRACE_S`` after it, the watchdog lists
the faults of this run through the backend and removes them, and keeps doing so until the
main thread reaches the rollback (a fault created after a sweep is removed by the next).

The backend's removal is idempotent (already gone is success), so the rollback that runs
afterwards finds nothing left and succeeds.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

from chaoslab.errors import BackendError, CleanupError
from chaoslab.ports import ChaosBackend

logger = logging.getLogger(__name__)

POLL_S = 0.02  # how often a stop request is looked for: a flag read, no I/O
GRACE_S = 0.2  # the rollback normally starts within milliseconds of a stop request
SWEEP_S = 0.1  # between sweeps once the watchdog acts


class RemovalWatchdog:
    """Runs from ``start()`` (the injection begins) until ``stop()`` (the rollback begins).

    ``stop_reason`` is polled from this thread: it returns why the step must stop (a signal
    or a breach), or None. ``acted`` names that reason once the watchdog removed faults
    itself; ``removed`` lists what it removed and ``removed_at`` when the last removal
    completed."""

    def __init__(
        self,
        backend: ChaosBackend,
        *,
        run_id: str,
        stop_reason: Callable[[], str | None],
        timeout: float,
        grace: float = GRACE_S,
    ) -> None:
        self.backend = backend
        self.run_id = run_id
        self.timeout = timeout
        self.grace = grace
        self._stop_reason = stop_reason
        self._done = threading.Event()
        self._thread: threading.Thread | None = None
        self.acted: str | None = None
        self.removed: list[str] = []
        self.removed_at: datetime | None = None
        self.errors: list[str] = []

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="chaoslab-watchdog", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """The main thread reached the rollback: no sweep starts after this."""
        self._done.set()

    def join(self, timeout: float | None = None) -> None:
        """Stop and wait for a sweep in progress to end."""
        self._done.set()
        if self._thread is not None:
            self._thread.join(timeout=timeout)

    def _loop(self) -> None:
        requested: float | None = None
        while not self._done.wait(POLL_S if self.acted is None else SWEEP_S):
            if requested is None:
                if self._stop_reason() is None:
                    continue
                requested = time.monotonic()
            if time.monotonic() - requested < self.grace:
                continue
            if self.acted is None:
                self.acted = self._stop_reason() or "stop requested"
                logger.warning("%s and the rollback has not started: removing this run's faults now",
                               self.acted)
            self._sweep()

    def _sweep(self) -> None:
        try:
            handles = list(self.backend.list_faults(run_id=self.run_id))
        except BackendError as exc:
            self._note(f"cannot list this run's faults: {exc}")
            return
        for handle in handles:
            if self._done.is_set():
                return  # the rollback has started and removes it
            try:
                self.backend.remove(handle, timeout=self.timeout)
            except (BackendError, CleanupError) as exc:
                self._note(f"{handle.ref}: {exc}")
                continue
            self.removed.append(handle.ref)
            self.removed_at = datetime.now(UTC)
            logger.warning("%s removed by the watchdog", handle.ref)

    def _note(self, error: str) -> None:
        if error not in self.errors:
            self.errors.append(error)
            logger.error("watchdog: %s", error)
