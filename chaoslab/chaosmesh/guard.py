"""What keeps a Chaos Toolkit process from leaving a fault behind: a registry of the
faults it created and has not removed yet, removed at interpreter exit, and the
signal handling around injection and removal.

Why chaoslib alone is not enough (chaoslib 1.44, ``chaos run``):
- its SIGTERM handler raises ``InterruptExecution`` wherever the main thread is; inside
  a python provider that is caught as a mere failed activity, so the rest of the method
  and the after-hypothesis still run before the rollbacks. ``exit_on_sigterm`` swaps it,
  for the run, for one raising ``SystemExit``: chaoslib then marks the run interrupted
  and goes straight to the rollbacks (which exported experiments always play);
- a signal during a rollback makes chaoslib skip the remaining rollbacks. ``shielded``
  defers SIGINT/SIGTERM while a fault is being removed; a second one gets through;
- a signal while the create request is on the wire would leave an object the process never
  heard of. ``deferred`` holds it back until the create has answered, then delivers it;
- faults still registered when the interpreter exits (rollbacks skipped, an error) are
  removed by an ``atexit`` hook. Only SIGKILL escapes: ``chaoslab cleanup`` is for that.

When chaoslab's runner drives chaoslib it installs its own quiet handlers first, and
``exit_on_sigterm`` leaves them alone. Process-global on purpose: chaoslib runs one
experiment at a time per process, in the main thread.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import signal
import threading
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any

from chaoslab.halt import request_halt

logger = logging.getLogger(__name__)

Remover = Callable[[], None]

Key = tuple[str, ...]
_LIVE: dict[Key, Remover] = {}
_LOCK = threading.Lock()
_ATEXIT: list[bool] = []


def track(key: Key, remover: Remover) -> None:
    """Remember a created fault until ``untrack``; ``remover`` deletes it at exit if needed."""
    with _LOCK:
        _LIVE[key] = remover
        if not _ATEXIT:
            atexit.register(remove_leftovers)
            _ATEXIT.append(True)


def untrack(key: Key) -> None:
    with _LOCK:
        _LIVE.pop(key, None)


def untrack_where(predicate: Callable[[Key], bool]) -> None:
    with _LOCK:
        for key in [k for k in _LIVE if predicate(k)]:
            del _LIVE[key]


def tracked() -> list[Key]:
    with _LOCK:
        return sorted(_LIVE)


def remove_leftovers() -> None:
    """Remove every fault this process created and did not remove (the atexit hook)."""
    with _LOCK:
        leftovers = list(_LIVE.items())
        _LIVE.clear()
    for key, remover in leftovers:
        what = "/".join(key)
        logger.warning("removing %s, left in place when the process ended", what)
        try:
            with shielded():
                remover()
        except Exception as exc:  # at exit: report, and go on with the others
            logger.error("could not remove %s: %s (run chaoslab cleanup)", what, exc)


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def _raise_exit(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def exit_on_sigterm() -> None:
    """Under chaoslib's own SIGTERM handler, use one raising ``SystemExit`` instead (see the
    module docstring). Any other handler (chaoslab's runner, an embedding program) stays."""
    if not _in_main_thread():
        return
    try:
        from chaoslib.exit import _terminate_now  # chaoslib is imported lazily, as everywhere
    except ImportError:
        return
    if signal.getsignal(signal.SIGTERM) is _terminate_now:
        signal.signal(signal.SIGTERM, _raise_exit)


@contextlib.contextmanager
def _holding_signals(what: str, *, then: Callable[[int], None]) -> Iterator[None]:
    """Hold SIGINT/SIGTERM back during the block, then ``then(signum)`` for the first one
    received. A second signal of the same kind is handled as usual at once."""
    if not _in_main_thread():
        yield
        return
    received: list[int] = []
    previous: dict[int, Any] = {}

    def defer(signum: int, frame: FrameType | None) -> None:
        if signum in received:
            handler = previous.get(signum)
            if callable(handler):
                handler(signum, frame)
            elif handler == signal.SIG_DFL:
                raise SystemExit(128 + signum)
            return
        received.append(signum)
        logger.warning("%s received while %s: finishing that first (send it again to abandon it)",
                       signal.Signals(signum).name, what)

    for signum in (signal.SIGINT, signal.SIGTERM):
        if signal.getsignal(signum) is not None:  # None: a handler set outside Python, left alone
            previous[signum] = signal.signal(signum, defer)
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
        if received:
            then(received[0])


def shielded() -> contextlib.AbstractContextManager[None]:
    """Defer SIGINT/SIGTERM while a fault is being removed. A second signal of the same kind
    is handled as usual; a deferred one becomes a halt request once the block ends."""
    return _holding_signals("removing a fault",
                            then=lambda signum: request_halt(f"{signal.Signals(signum).name} received"))


def deferred() -> contextlib.AbstractContextManager[None]:
    """Defer SIGINT/SIGTERM while a fault is being created: the API server goes on with a
    create whose answer the process did not wait for, and the process would not know what to
    remove. The signal is delivered again as soon as the block ends, the object's name known."""
    return _holding_signals("creating a fault", then=signal.raise_signal)
