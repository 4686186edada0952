"""The garbage collector while the program starts.

Starting a command is mostly importing: classes, functions and constants that live as long
as the process. The cyclic collector walks them again and again as they pile up and finds
nothing to free: some 70 collections, 10–15 ms, before a run's first fault is injected.
``program`` pauses it (``pause``); ``resume`` marks everything made so far permanent
(``gc.freeze``: later collections do not walk it either) and turns it back on.

``main`` resumes it before a command's handler runs, unless the command's parser sets
``resumes_collector``: ``run`` does, and resumes it (``resuming``) when its first
fault is held, or when its first step ends without one, whichever comes first: until
then it only loads files and checks a baseline, which leaves little garbage with cycles.
``main`` alone, as tests and other programs call it in their own process, never pauses.
"""

from __future__ import annotations

import gc
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from chaoslab.runner.events import EventSink, RunEvent

_paused = False


def pause() -> None:
    """Stop collecting until ``resume`` (only the program's own process calls this)."""
    global _paused
    if gc.isenabled():
        gc.disable()
        _paused = True


def resume() -> None:
    """Collect again, leaving what startup made out of every later collection. Does nothing
    unless ``pause`` stopped the collector; safe to call more than once."""
    global _paused
    if _paused:
        _paused = False
        gc.freeze()
        gc.enable()


def paused() -> bool:
    return _paused


def resuming(sink: EventSink) -> EventSink:
    """``sink``, resuming the collector first at the first hold, step end or run end."""
    from chaoslab.runner.events import PHASE, RUN_FINISHED, STEP_FINISHED

    def send(event: RunEvent) -> None:
        if _paused and (
            (event.kind == PHASE and event.phase == "hold") or event.kind in (STEP_FINISHED, RUN_FINISHED)
        ):
            resume()
        sink(event)

    return send
