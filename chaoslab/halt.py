"""The process-wide halt switch and the interruptible hold.

Chaos Toolkit activities and controls are process-global (one experiment at a time
per process), so the switch that a watcher, a signal handler or a control flips to
end a hold at once is process-global too. ``hold`` is the Chaos Toolkit action every
exported experiment uses to keep a fault in place.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from chaoslab.model import parse_go_duration

logger = logging.getLogger(__name__)

# Process-global on purpose: see the module docstring.
_HALT = threading.Event()
_REASON: list[str] = []


def request_halt(reason: str) -> None:
    """Ask the current hold (and any later one) to end now."""
    if not _HALT.is_set():
        _REASON.append(reason)
        logger.warning("halt requested: %s", reason)
    _HALT.set()


def halt_requested() -> bool:
    return _HALT.is_set()


def halt_reason() -> str | None:
    return _REASON[0] if _REASON else None


def reset_halt() -> None:
    """Clear the switch before a new step."""
    _REASON.clear()
    _HALT.clear()


def hold(duration: str) -> dict[str, Any]:
    """Chaos Toolkit action: keep the fault in place for ``duration`` (a Go duration),
    returning early the moment a halt is requested."""
    seconds = parse_go_duration(duration)
    started = time.monotonic()
    interrupted = _HALT.wait(timeout=seconds)
    held = time.monotonic() - started
    return {"held_s": round(held, 3), "requested_s": seconds, "interrupted": interrupted,
            "reason": halt_reason() if interrupted else None}
