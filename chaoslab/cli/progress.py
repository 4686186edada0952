"""The progress view of `chaoslab run`: a live compact panel on a terminal (rich), plain
lines otherwise (not a TTY, NO_COLOR set, or --format json).

Events come from the runner's main thread and from its watcher and signal threads; both
views take a lock. The live panel shows the stage, the step, its phase, the time left in
the hold and the smallest SLO margin the watcher last saw.
"""

from __future__ import annotations

import threading
import time
from typing import IO, Any

from chaoslab.model import HypothesisCheck
from chaoslab.runner.events import PHASE, SIGNAL, STEP_FINISHED, STEP_STARTED, TICK, WARNING, RunEvent

PLAIN_TICK_EVERY_S = 5.0


def worst_margin(checks: tuple[HypothesisCheck, ...]) -> str:
    """The check closest to (or past) its threshold, in words, and the guards that are
    pending or firing but ignored (they do not halt, but they are shown)."""
    return _closest(checks) + guard_note(checks)


def _closest(checks: tuple[HypothesisCheck, ...]) -> str:
    failed = [c for c in checks if not c.met]
    if failed:
        return f"{failed[0].alert}: {failed[0].reason}"
    with_margin = [c for c in checks if None not in (c.margin, c.value, c.threshold)]
    if not with_margin:
        return f"{len(checks)} alerts quiet" if checks else "-"
    worst = min(with_margin, key=_relative_margin)
    return (f"closest: {worst.alert} {worst.value:.3g} vs threshold {worst.threshold:g} "
            f"(margin {worst.margin:.3g})")


def guard_note(checks: tuple[HypothesisCheck, ...]) -> str:
    pending = [c.alert for c in checks if c.guard and c.met and c.state == "pending"]
    ignored = [c.alert for c in checks if c.guard and c.ignored]
    note = ""
    if pending:
        note += f"; guards pending: {', '.join(pending)}"
    if ignored:
        note += f"; guards firing, ignored: {', '.join(ignored)}"
    return note


def _relative_margin(check: HypothesisCheck) -> float:
    """Headroom as a share of the threshold, so that ratios and seconds compare."""
    margin = check.margin if check.margin is not None else 0.0
    return margin / abs(check.threshold) if check.threshold else margin


def _prefix(event: RunEvent) -> str:
    if event.step is None:
        return ""
    stage = event.stage.label if event.stage is not None else "-"
    return f"[{event.index}/{event.total} {stage}] {event.step}: "


class PlainProgress:
    """One line per event; during a hold, a margin line every few seconds."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        self._lock = threading.Lock()
        self._hold_end: float | None = None
        self._last_tick = 0.0

    def __call__(self, event: RunEvent) -> None:
        with self._lock:
            line = self._line(event)
            if line:
                print(line, file=self.stream, flush=True)

    def _line(self, event: RunEvent) -> str | None:
        if event.kind == TICK:
            now = time.monotonic()
            if self._hold_end is None or now - self._last_tick < PLAIN_TICK_EVERY_S:
                return None
            self._last_tick = now
            left = max(0.0, self._hold_end - now)
            return f"{_prefix(event)}hold {left:.0f}s left, {worst_margin(event.checks)}"
        if event.kind == PHASE and event.phase == "hold" and event.hold_s is not None:
            self._hold_end = (event.hold_started or time.monotonic()) + event.hold_s
            self._last_tick = time.monotonic()
            return f"{_prefix(event)}{event.message} for {event.hold_s:g}s"
        if event.kind in (PHASE, STEP_FINISHED):
            self._hold_end = None if event.phase != "halt" else self._hold_end
        if event.kind == WARNING:
            return f"warning: {event.message}"
        if event.kind in (STEP_STARTED, PHASE, SIGNAL, STEP_FINISHED):
            return f"{_prefix(event)}{event.message.removeprefix(f'{event.step}: ')}"
        return event.message or None


class LiveProgress:
    """A rich Live panel; finished steps and warnings scroll above it."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.live import Live

        self.console = Console()
        self._lock = threading.Lock()
        self._state: dict[str, Any] = {"title": "", "step": "", "phase": "", "hold_end": None, "margin": "-"}
        self._live = Live(console=self.console, get_renderable=self._render, refresh_per_second=4,
                          transient=True, redirect_stderr=False)

    def __enter__(self) -> LiveProgress:
        self._live.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._live.stop()

    def __call__(self, event: RunEvent) -> None:
        with self._lock:
            self._apply(event)

    def _apply(self, event: RunEvent) -> None:
        state = self._state
        if event.step is not None:
            stage = event.stage.label if event.stage is not None else "-"
            state["title"] = f"step {event.index}/{event.total} · {stage} stage"
            state["step"] = event.step
        if event.kind == TICK:
            state["margin"] = worst_margin(event.checks)
        elif event.kind == PHASE:
            state["phase"] = event.message
            state["hold_end"] = (
                (event.hold_started or time.monotonic()) + event.hold_s
                if event.phase == "hold" and event.hold_s is not None else None
            )
        elif event.kind in (WARNING, SIGNAL):
            self.console.print(f"[yellow]{event.kind}:[/] {event.message}", highlight=False)
        elif event.kind == STEP_FINISHED and event.step_result is not None:
            result = event.step_result
            colour = VERDICT_STYLE.get(result.verdict.value, "")
            self.console.print(f"{_prefix(event)}[{colour}]{result.verdict.value}[/] — {result.reason}",
                               highlight=False, markup=True)
            state.update(phase="", hold_end=None, margin="-")
        elif event.kind == STEP_STARTED:
            state.update(phase=event.message, hold_end=None, margin="-")
        else:
            self.console.print(event.message, highlight=False)

    def _render(self) -> Any:
        from rich.table import Table

        with self._lock:
            state = dict(self._state)
        table = Table.grid(padding=(0, 2))
        table.add_column(style="bold")
        table.add_column()
        table.add_row(state["title"] or "chaoslab run", state["step"])
        table.add_row("phase", state["phase"])
        if state["hold_end"] is not None:
            table.add_row("hold", f"{max(0.0, state['hold_end'] - time.monotonic()):.1f}s left")
        table.add_row("SLO", state["margin"])
        return table


VERDICT_STYLE = {
    "held": "green", "skipped": "dim", "deviated": "red", "halted": "red bold",
    "baseline-not-met": "yellow", "error": "magenta bold",
}
