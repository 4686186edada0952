"""SIGINT and SIGTERM during a run: end the hold at once, let the rollback remove the fault.

The Python-level handlers do nothing but keep the default actions (exit, KeyboardInterrupt)
away. The work happens in a listener thread woken through ``signal.set_wakeup_fd``: the
interpreter writes the signal number there from C, so the listener wakes even while the
main thread is blocked, and nothing that takes a lock runs inside a signal handler (a
handler that sets an Event can deadlock against the main thread holding that Event's lock).

chaoslib's ``run_experiment`` installs its own SIGTERM handler, which raises
``InterruptExecution`` wherever the main thread happens to be (inside a python provider
that becomes a mere failed activity). chaoslab's control re-installs ``quiet_handler``
for the duration of the experiment; chaoslib restores ours when it returns.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
from collections.abc import Callable, Iterator
from enum import StrEnum
from types import FrameType

from chaoslab.halt import request_halt

logger = logging.getLogger(__name__)

HANDLED = (signal.SIGINT, signal.SIGTERM)
_STOP_BYTE = 0  # no real signal has number 0


class RunPhase(StrEnum):
    """Where a run is, for the record of an interruption (run.json ``interrupted.phase``)."""

    STARTING = "starting"  # before the first step
    BASELINE = "baseline"  # the system's health before anything is injected
    INJECTING = "injecting"
    HOLDING = "holding"  # the fault in place (the hypothesis checked with it too)
    REMOVAL = "removal"
    RECOVERY = "recovery"  # waiting for the hypothesis to hold again
    BETWEEN_STEPS = "between-steps"
    FINISHING = "finishing"  # after the last step


def quiet_handler(signum: int, frame: FrameType | None) -> None:
    """Python-level handler: the listener thread does the work (see the module docstring)."""


class SignalWatch:
    """Records the first SIGINT/SIGTERM of a run and turns it into a halt request.

    ``received`` names the first signal (``SIGTERM``); ``event`` is set when one arrives,
    so waits in the runner can wake at once. ``on_signal`` is called from the listener
    thread; it may be set after construction (the runner sets it when the caller did not)."""

    def __init__(self, *, on_signal: Callable[[str], None] | None = None) -> None:
        self.received: str | None = None
        self.event = threading.Event()
        self.on_signal = on_signal
        self.phase = RunPhase.STARTING
        self.interrupted_phase: RunPhase | None = None  # ``phase`` when the first signal came
        self._lock = threading.Lock()

    def enter(self, phase: RunPhase) -> None:
        """The run moved on to ``phase`` (a signal from now on is recorded with it)."""
        self.phase = phase

    def deliver(self, name: str) -> None:
        """Act on a signal (also usable directly, e.g. when chaoslib raised for one)."""
        with self._lock:
            first = self.received is None
            if first:
                self.received = name
                self.interrupted_phase = self.phase
        if first:
            logger.warning("%s received: removing the active fault and stopping the run", name)
            request_halt(f"{name} received")
            self.event.set()
            if self.on_signal is not None:
                try:
                    self.on_signal(name)
                except Exception:  # an observer failure must not stop the removal
                    logger.exception("signal callback failed")

    @contextlib.contextmanager
    def installed(self, *, stay_quiet_after_signal: bool = False) -> Iterator[SignalWatch]:
        """Handle SIGINT/SIGTERM for the duration of the block (main thread only).

        ``stay_quiet_after_signal``: when a signal was received, ignore SIGINT/SIGTERM
        afterwards instead of putting the previous handlers back. For a process that exits
        right after the block: a second Ctrl-C in its last milliseconds must not turn the
        exit code of an orderly stop into death by SIGINT. (SIG_IGN, not a Python handler:
        the interpreter resets Python handlers to the default action while it shuts down.)"""
        if threading.current_thread() is not threading.main_thread():
            logger.debug("not the main thread: signals are left to the caller")
            yield self
            return
        read_fd, write_fd = os.pipe()
        os.set_blocking(write_fd, False)
        previous = {sig: signal.signal(sig, quiet_handler) for sig in HANDLED}
        old_fd = signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
        listener = threading.Thread(
            target=self._listen, args=(read_fd,), name="chaoslab-signals", daemon=True
        )
        listener.start()
        try:
            yield self
        finally:
            signal.set_wakeup_fd(old_fd)
            for sig, handler in previous.items():
                signal.signal(sig, signal.SIG_IGN if stay_quiet_after_signal and self.received else handler)
            with contextlib.suppress(OSError):
                os.write(write_fd, bytes([_STOP_BYTE]))
            listener.join(timeout=2.0)
            os.close(write_fd)
            os.close(read_fd)

    def _listen(self, read_fd: int) -> None:
        while True:
            try:
                data = os.read(read_fd, 64)
            except OSError:
                return
            if not data:
                return
            for number in data:
                if number == _STOP_BYTE:
                    return
                if number in HANDLED:
                    self.deliver(signal.Signals(number).name)
