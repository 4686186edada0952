"""What the runner tells its observer (the CLI's progress view) while a run goes on.

Events arrive from the main thread and, for ``tick`` and ``signal``, from the watcher
and signal threads: an observer must be quick and thread-safe. Its exceptions are
logged and ignored; an observer can never change the course of a run.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from chaoslab.model import HypothesisCheck, RunResult, StepResult, Tier

logger = logging.getLogger(__name__)

# Event kinds.
RUN_STARTED = "run-started"
WARNING = "warning"
STEP_STARTED = "step-started"
PHASE = "phase"  # baseline | inject | hold | halt | remove | recover
TICK = "tick"  # a watcher evaluation; ``checks`` holds the margins
SIGNAL = "signal"
STEP_FINISHED = "step-finished"
RUN_FINISHED = "run-finished"


@dataclass(frozen=True, slots=True, kw_only=True)
class RunEvent:
    kind: str
    message: str = ""
    step: str | None = None
    stage: Tier | None = None
    index: int = 0  # 1-based position of the step in the plan
    total: int = 0
    phase: str | None = None
    hold_s: float | None = None  # the hold's full length, with ``phase == "hold"``
    hold_started: float | None = None  # time.monotonic() when the hold began
    checks: tuple[HypothesisCheck, ...] = ()
    step_result: StepResult | None = None
    run_result: RunResult | None = None


EventSink = Callable[[RunEvent], None]


class Emitter:
    """Sends events to an optional sink, filling in the current step's position."""

    def __init__(self, sink: EventSink | None) -> None:
        self._sink = sink
        self.step: str | None = None
        self.stage: Tier | None = None
        self.index = 0
        self.total = 0

    def __call__(self, kind: str, message: str = "", **fields: object) -> None:
        if self._sink is None:
            return
        base: dict[str, object] = {
            "step": self.step, "stage": self.stage, "index": self.index, "total": self.total,
        }
        base.update(fields)
        try:
            self._sink(RunEvent(kind=kind, message=message, **base))  # type: ignore[arg-type]
        except Exception:  # see the module docstring
            logger.exception("progress observer failed on %s", kind)
