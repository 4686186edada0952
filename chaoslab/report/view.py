"""Reading a run.json document for the reports people read (report.md, report.html, index.html).

The renderers take the run.json document itself (a dict), never the runner's objects: a
report can be re-rendered from any run folder, also one written by an older chaoslab that
had no ``pdca`` key. Every accessor here tolerates a missing key or a value of the wrong
type (the report shows a dash), so a hand-edited or old record still renders.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

logger = logging.getLogger(__name__)

# Verdicts in the order of how much attention they need; the colours of every report.
VERDICT_COLOURS = {
    "halted": "#a40e26",
    "deviated": "#bc4c00",
    "baseline-not-met": "#8250df",
    "error": "#57606a",
    "held": "#1a7f37",
    "skipped": "#8c959f",
}
UNKNOWN_COLOUR = "#6e7781"

# Checklist statuses, the ones that need work first.
STATUS_ORDER = ("reopened", "open", "accepted", "done", "verified")
OPEN_STATUSES = frozenset({"open", "reopened"})

DASH = "—"


def text(doc: Any, key: str) -> str:
    """``doc[key]`` when it is a string (numbers are written out), else ``""``."""
    value = doc.get(key) if isinstance(doc, Mapping) else None
    if isinstance(value, str):
        return value
    if isinstance(value, bool) or value is None:
        return ""
    if isinstance(value, int | float):
        return f"{value:g}"
    return ""


def interruption(run: Mapping[str, Any]) -> str:
    """What interrupted the run, for a sentence: ``SIGTERM (during removal)``; ``""`` when
    nothing did. run.json writes ``{"signal", "phase"}``; older records a bare signal name."""
    value = run.get("interrupted")
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping) and text(value, "signal"):
        phase = text(value, "phase")
        return text(value, "signal") + (f" (during {phase})" if phase else "")
    return ""


def number(doc: Any, key: str) -> float | None:
    """``doc[key]`` when it is a finite number, else ``None``."""
    value = doc.get(key) if isinstance(doc, Mapping) else None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def mapping(doc: Any, key: str) -> dict[str, Any]:
    value = doc.get(key) if isinstance(doc, Mapping) else None
    return dict(value) if isinstance(value, Mapping) else {}


def records(doc: Any, key: str) -> list[dict[str, Any]]:
    """The objects of the list ``doc[key]`` (anything else in it is left out)."""
    value = doc.get(key) if isinstance(doc, Mapping) else None
    if not isinstance(value, list):
        return []
    return [dict(item) for item in value if isinstance(item, Mapping)]


def strings(doc: Any, key: str) -> list[str]:
    value = doc.get(key) if isinstance(doc, Mapping) else None
    if not isinstance(value, list):
        return []
    return [item for item in value if isinstance(item, str)]


def parse_time(value: str) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def epoch(value: str) -> float | None:
    parsed = parse_time(value)
    return None if parsed is None else parsed.timestamp()


def clock(value: str) -> str:
    """``10:15:03.120`` for an ISO timestamp (UTC), or a dash."""
    parsed = parse_time(value)
    return DASH if parsed is None else parsed.astimezone(UTC).strftime("%H:%M:%S.%f")[:-3]


def when(value: str) -> str:
    """``2026-12-06 10:15:03 UTC`` for an ISO timestamp, or a dash."""
    parsed = parse_time(value)
    return DASH if parsed is None else parsed.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def seconds(value: float | None) -> str:
    """A duration for a person: ``0.21 s``, ``4.2 s``, ``2 min 5 s``; a dash when unknown."""
    if value is None:
        return DASH
    if value < 10:
        return f"{value:.2f} s"
    if value < 120:
        return f"{value:.0f} s" if value == int(value) else f"{value:.1f} s"
    minutes, rest = divmod(round(value), 60)
    return f"{minutes} min {rest} s"


def num(value: float | None) -> str:
    """A measured value with three significant digits, or a dash."""
    return DASH if value is None else f"{value:.3g}"


def verdict_colour(verdict: str) -> str:
    return VERDICT_COLOURS.get(verdict, UNKNOWN_COLOUR)


def fault_text(step: Mapping[str, Any]) -> str:
    """``PodChaos pod-kill (one)``, from a run.json step."""
    mode = text(step, "mode")
    value = text(step, "value")
    detail = f"{mode} {value}" if value else mode
    head = " ".join(part for part in (text(step, "kind"), text(step, "action")) if part)
    return f"{head} ({detail})" if detail else head


@dataclass(frozen=True, slots=True, kw_only=True)
class StepView:
    """One step of a run: its run.json entry and its plan, do and check records."""

    index: int
    name: str
    step: dict[str, Any]
    plan: dict[str, Any] = field(default_factory=dict)
    do: dict[str, Any] = field(default_factory=dict)
    check: dict[str, Any] = field(default_factory=dict)

    @property
    def verdict(self) -> str:
        return text(self.check, "verdict") or text(self.step, "verdict") or "unknown"

    @property
    def anchor(self) -> str:
        safe = "".join(c if c.isalnum() or c in "-_" else "-" for c in self.name)
        return f"step-{self.index}-{safe}"


def injection(s: StepView) -> float | None:
    """When the step's fault was injected (unix seconds): its fault window's start, else
    its ``injected`` event; None for a step that injected nothing."""
    start = epoch(text(mapping(s.check, "fault_window"), "start"))
    if start is not None:
        return start
    for event in records(s.do, "events"):
        if text(event, "kind") == "injected":
            return epoch(text(event, "at"))
    return None


def halt_name(condition: str) -> str:
    """``PaymentErrors (payment)`` out of a plan's ``PaymentErrors (payment): <expr>``."""
    return condition.split(": ", 1)[0]


def sli_breached(detection: Mapping[str, Any]) -> bool:
    """Whether a detection entry's SLI was past its threshold at all (unknown counts as yes):
    only then does an alert that never noticed it matter."""
    span = number(detection, "sli_breached_s")
    return span is None or span > 0


def checked_alerts(step: Mapping[str, Any]) -> list[str]:
    """The alerts a run.json step's hypothesis checks named (before, during, after)."""
    hypothesis = mapping(step, "hypothesis")
    names = {text(c, "alert") for phase in ("before", "during", "after") for c in records(hypothesis, phase)}
    return sorted(names - {""})


def has_pdca(run: Mapping[str, Any]) -> bool:
    return bool(mapping(run, "pdca"))


def _match(entries: list[dict[str, Any]], *, name: str, index: int, count: int) -> dict[str, Any]:
    for entry in entries:
        if text(entry, "step") == name:
            return entry
    # Same number of entries as steps: the contract keeps them in step order.
    if len(entries) == count and not any(text(e, "step") for e in entries):
        return entries[index]
    return {}


def step_views(run: Mapping[str, Any]) -> list[StepView]:
    """The run's steps in order, each with its PDCA records (empty where there are none)."""
    pdca = mapping(run, "pdca")
    steps = records(run, "steps")
    plans, dos, checks = records(pdca, "plan"), records(pdca, "do"), records(pdca, "check")
    views = []
    for i, step in enumerate(steps):
        name = text(step, "step") or text(step, "experiment") or f"step {i + 1}"
        views.append(
            StepView(
                index=i + 1,
                name=name,
                step=step,
                plan=_match(plans, name=name, index=i, count=len(steps)),
                do=_match(dos, name=name, index=i, count=len(steps)),
                check=_match(checks, name=name, index=i, count=len(steps)),
            )
        )
    return views


def checklist(run: Mapping[str, Any]) -> list[dict[str, Any]]:
    return records(run, "checklist")


def sort_items(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Items needing work first (reopened, open, ...), then by service and id."""

    def key(item: dict[str, Any]) -> tuple[int, str, str]:
        status = text(item, "status")
        rank = STATUS_ORDER.index(status) if status in STATUS_ORDER else len(STATUS_ORDER)
        return rank, text(item, "service"), text(item, "id")

    return sorted(items, key=key)


def points(sli: Mapping[str, Any]) -> list[tuple[float, float | None]]:
    """The ``[unix seconds, value]`` pairs of an SLI; a null or non-finite value is a gap."""
    raw = sli.get("points") if isinstance(sli, Mapping) else None
    out: list[tuple[float, float | None]] = []
    for pair in raw if isinstance(raw, list) else []:
        if not isinstance(pair, list | tuple) or len(pair) != 2:
            continue
        at, value = pair
        if isinstance(at, bool) or not isinstance(at, int | float) or not math.isfinite(at):
            continue
        ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
        out.append((float(at), float(value) if ok else None))
    return sorted(out, key=lambda p: p[0])


def breaches(op: str, value: float, threshold: float) -> bool:
    """Whether ``value OP threshold`` holds, i.e. the alert's condition is true."""
    compare = {
        ">": value > threshold,
        ">=": value >= threshold,
        "<": value < threshold,
        "<=": value <= threshold,
        "==": value == threshold,
        "!=": value != threshold,
    }
    return compare.get(op, False)


@dataclass(frozen=True, slots=True, kw_only=True)
class SliSummary:
    low: float | None
    high: float | None
    samples: int
    breached: int


def summarise(sli: Mapping[str, Any]) -> SliSummary:
    values = [v for _, v in points(sli) if v is not None]
    threshold, op = number(sli, "threshold"), text(sli, "op")
    hits = 0 if threshold is None else sum(breaches(op, v, threshold) for v in values)
    return SliSummary(
        low=min(values, default=None), high=max(values, default=None), samples=len(values), breached=hits
    )
