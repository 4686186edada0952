"""Pure: multi-window burn-rate alerts, and the fast condition watched while a fault is in place.

A multi-window, multi-burn-rate alert (the SRE workbook's method, as Sloth and Pyrra write
it) is a disjunction (``or``) of conjunctions (``and``, with ``on``/``ignoring`` or not) of
comparisons, each comparison a *leg*: a ratio over one window against a threshold::

    (slo:sli_error:ratio_rate5m{sloth_service="x"} > (14.4 * 0.001)
       and slo:sli_error:ratio_rate1h{sloth_service="x"} > (14.4 * 0.001))
    or
    (slo:sli_error:ratio_rate30m{sloth_service="x"} > (6 * 0.001)
       and slo:sli_error:ratio_rate6h{sloth_service="x"} > (6 * 0.001))

A leg may be wrapped in an aggregation (``max(... > t) without (sloth_window)``, as Sloth
writes it), and its ratio may be written inline (``rate(x[5m])``) or read from a recording
rule. The window of a leg is the longest range it reads; a recording rule's window comes
from its own expression, else from a window label such as ``sloth_window``
(``chaoslab.prometheus.recordings``).

The long windows keep a blip from paging; during a fault they are only delay, like ``for:``.
So the condition watched during a fault is, for each conjunction, its shortest-window leg
with that leg's own threshold (``BurnRate.watched``). Any other shape gives ``None`` and the
whole alert is watched, as before.
"""

from __future__ import annotations

import logging
import math
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import promql_parser

from chaoslab.model import AlertRule, LegHalt
from chaoslab.prometheus.promql import parse

logger = logging.getLogger(__name__)

# Labels a generator puts on a recording rule to say which window it covers.
WINDOW_LABELS = ("sloth_window", "window")
# Aggregations that keep an empty input empty and a non-empty one non-empty.
_PASS_AGGREGATIONS = frozenset({"max", "min", "sum", "avg", "count", "group"})
_COMPARISONS = frozenset({">", "<", ">=", "<="})
_FLIPPED = {">": "<", "<": ">", ">=": "<=", "<=": ">="}
_ARITHMETIC: dict[str, Callable[[float, float], float]] = {
    "+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv,
    "%": math.fmod, "^": operator.pow,
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Leg:
    """``<ratio> <op> <threshold>`` over ``window_s`` seconds, the threshold on the right."""

    ratio: str  # PromQL of the ratio (the comparison's left-hand side)
    op: str
    threshold: float
    window_s: float

    @property
    def condition(self) -> str:
        """The leg alone as PromQL, its threshold folded to a number (so it can be judged
        with a value and a margin, like a plain ratio alert). 15 digits: ``14.4 * 0.001``
        reads ``0.0144`` rather than ``0.014400000000000001``."""
        return f"{self.ratio} {self.op} {self.threshold:.15g}"

    @property
    def window(self) -> str:
        return format_window(self.window_s)

    def describe(self) -> str:
        return f"{self.window} leg {self.op} {format_ratio(self.threshold)}"


@dataclass(frozen=True, slots=True, kw_only=True)
class Conjunction:
    """Legs that must all hold; ``legs[0]`` has the shortest window."""

    legs: tuple[Leg, ...]

    @property
    def fast(self) -> Leg:
        return self.legs[0]

    @property
    def slow(self) -> tuple[Leg, ...]:
        return self.legs[1:]


@dataclass(frozen=True, slots=True, kw_only=True)
class BurnRate:
    """A recognised multi-window alert: its conjunctions, in the order written."""

    conjunctions: tuple[Conjunction, ...]

    @property
    def fast_legs(self) -> tuple[Leg, ...]:
        return tuple(c.fast for c in self.conjunctions)

    @property
    def watched(self) -> str:
        """What is watched during a fault: the ``or`` of each conjunction's fastest leg."""
        legs = self.fast_legs
        if len(legs) == 1:
            return legs[0].condition
        return " or ".join(f"({leg.condition})" for leg in legs)

    def describe(self) -> str:
        return " or ".join(leg.describe() for leg in self.fast_legs)


def format_window(seconds: float) -> str:
    """``300`` → ``5m``, ``3600`` → ``1h``, ``5400`` → ``1h30m`` (Prometheus' spelling)."""
    rest = round(seconds)
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, rest = divmod(rest, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts) or "0s"


def format_ratio(value: float) -> str:
    """A ratio as a percentage with three significant digits: 0.0144 → ``1.44 %``."""
    return f"{value * 100:.3g} %"


# --- recognising the shape ---------------------------------------------------------------------


def analyse(rule: AlertRule) -> BurnRate | None:
    """The multi-window structure of ``rule``, or None when it has another shape."""
    return analyse_expr(rule.expr, tuple(sorted(rule.windows.items())))


@lru_cache(maxsize=1024)
def analyse_expr(expr: str, windows: tuple[tuple[str, float], ...] = ()) -> BurnRate | None:
    """``expr`` as a disjunction of conjunctions of legs with known windows, or None.

    ``windows`` gives the window (seconds) of recording rules by metric name. At least one
    conjunction must have two legs or more: a single ratio is already as fast as it gets."""
    try:
        tree = parse(expr)
    except ValueError:
        return None
    known = dict(windows)
    conjunctions = []
    for branch in _split(tree, "or"):
        legs = [_leg(node, known) for node in _split(branch, "and")]
        if any(leg is None for leg in legs):
            return None
        ordered = sorted((leg for leg in legs if leg is not None), key=lambda leg: leg.window_s)
        conjunctions.append(Conjunction(legs=tuple(ordered)))
    if all(len(c.legs) < 2 for c in conjunctions):
        return None
    return BurnRate(conjunctions=tuple(conjunctions))


def _split(node: Any, op: str) -> list[Any]:
    """The operands of a chain of ``op`` (``a or b or c``), parentheses removed."""
    node = _unparen(node)
    if isinstance(node, promql_parser.BinaryExpr) and str(node.op) == op:
        return [*_split(node.lhs, op), *_split(node.rhs, op)]
    return [node]


def _unparen(node: Any) -> Any:
    while isinstance(node, promql_parser.ParenExpr):
        node = node.expr
    return node


def _leg(node: Any, windows: Mapping[str, float]) -> Leg | None:
    node = _unparen(node)
    if isinstance(node, promql_parser.AggregateExpr):
        if str(node.op) not in _PASS_AGGREGATIONS or node.param is not None:
            return None
        node = _unparen(node.expr)
    if not isinstance(node, promql_parser.BinaryExpr):
        return None
    op = str(node.op)
    if op not in _COMPARISONS or (node.modifier is not None and node.modifier.return_bool):
        return None
    right, left = constant(node.rhs), constant(node.lhs)
    if (right is None) == (left is None):
        return None
    side, threshold, op = (node.lhs, right, op) if right is not None else (node.rhs, left, _FLIPPED[op])
    assert threshold is not None  # exactly one side is a number, checked above
    ratio = _text(side)
    window = window_of(side, windows)
    if ratio is None or window is None or not math.isfinite(threshold):
        return None
    return Leg(ratio=ratio, op=op, threshold=threshold, window_s=window)


def constant(node: Any) -> float | None:
    """The value of a number expression such as ``(14.4 * 0.001)`` or ``(1-0.99)``, else None."""
    node = _unparen(node)
    if isinstance(node, promql_parser.NumberLiteral):
        value = float(node.val)
        return None if math.isnan(value) else value
    if isinstance(node, promql_parser.UnaryExpr):
        inner = constant(node.expr)
        return None if inner is None else -inner
    if isinstance(node, promql_parser.BinaryExpr) and str(node.op) in _ARITHMETIC:
        left, right = constant(node.lhs), constant(node.rhs)
        if left is None or right is None:
            return None
        try:
            return _ARITHMETIC[str(node.op)](left, right)
        except (ZeroDivisionError, OverflowError, ValueError):
            return None
    return None


def _text(node: Any) -> str | None:
    """PromQL for ``node``, accepted only when it reads back to the same tree (the parser
    prints string literals without their escapes)."""
    text = str(node)
    try:
        same = str(parse(text)) == text
    except ValueError:
        return None
    return text if same else None


# --- windows -------------------------------------------------------------------------------------


def window_of(node: Any, windows: Mapping[str, float]) -> float | None:
    """The longest stretch of time ``node`` reads, in seconds: a range ``[5m]``, a subquery
    ``[1h:1m]`` (plus what it reads inside), a recording rule's own window (``windows`` by
    metric name) or a window matcher (``sloth_window="5m"``). None when there is none, or
    when an offset or ``@`` makes it read elsewhere in time."""
    found: list[float] = []
    unknown = False

    def visit(item: Any, extra: float) -> None:
        nonlocal unknown
        item = _unparen(item)
        if isinstance(item, promql_parser.MatrixSelector):
            inner = _selector_window(item.vector_selector, windows)
            if inner is False:
                unknown = True
                return
            found.append(item.range.total_seconds() + extra + (inner or 0.0))
        elif isinstance(item, promql_parser.SubqueryExpr):
            if item.offset is not None or item.at is not None or item.range is None:
                unknown = True
                return
            visit(item.expr, extra + item.range.total_seconds())
        elif isinstance(item, promql_parser.VectorSelector):
            inner = _selector_window(item, windows)
            if inner is False:
                unknown = True
            elif inner is not None:
                found.append(inner + extra)
        else:
            for child in _children(item):
                visit(child, extra)

    visit(node, 0.0)
    if unknown or not found:
        return None
    return max(found)


def _selector_window(selector: Any, windows: Mapping[str, float]) -> float | bool | None:
    """A selector's own window: a recording rule's, or a window matcher's; None for a raw
    series; False when it reads another time (offset, ``@``)."""
    if selector.offset is not None or selector.at is not None:
        return False
    if selector.name and selector.name in windows:
        return windows[selector.name]
    for matcher in matchers_of(selector):
        if matcher.name in WINDOW_LABELS and matcher.op == promql_parser.MatchOp.Equal:
            seconds = duration_seconds(matcher.value)
            if seconds is not None:
                return seconds
    return None


def _children(node: Any) -> list[Any]:
    if isinstance(node, promql_parser.BinaryExpr):
        return [node.lhs, node.rhs]
    if isinstance(node, promql_parser.AggregateExpr | promql_parser.UnaryExpr):
        return [node.expr]
    if isinstance(node, promql_parser.Call):
        return list(node.args)
    return []


def matchers_of(selector: Any) -> list[Any]:
    groups = [selector.matchers.matchers, *selector.matchers.or_matchers]
    return [m for group in groups for m in group]


def duration_seconds(text: str) -> float | None:
    try:
        return float(promql_parser.parse_duration(text).total_seconds())
    except (ValueError, TypeError, AttributeError):
        return None


# --- after a halt on a fast leg ------------------------------------------------------------------


def seconds_until(
    *, threshold: float, value: float, earlier: float, span_s: float, op: str = ">"
) -> float | None:
    """How long until a leg now at ``value`` (``earlier`` ``span_s`` seconds before) reaches
    ``threshold`` if it keeps moving at the same pace; 0 when it already has; None when it
    does not move towards it (no estimate)."""
    if span_s <= 0 or not all(math.isfinite(v) for v in (value, earlier, threshold)):
        return None
    rising = op in (">", ">=")
    gap = threshold - value if rising else value - threshold
    if gap < 0 or (gap == 0 and op in (">=", "<=")):
        return 0.0
    pace = (value - earlier if rising else earlier - value) / span_s
    if pace <= 0:
        return None
    return gap / pace


def describe_leg_halt(halt: LegHalt) -> str:
    """One line: ``halted on the 5m leg of X: 14.6 % > 1.44 %; the full alert needs the 1h
    leg too (0.52 % of 1.44 %), about 50 s more at this error rate``."""
    leg = halt.leg
    value = "no data" if leg.value is None else format_ratio(leg.value)
    text = f"halted on the {leg.window} leg of {halt.alert}: {value} {leg.op} {format_ratio(leg.threshold)}"
    if not halt.needs:
        return text
    if halt.more_s == 0:
        return f"{text}; the full alert's condition held as well"
    windows = " and ".join(n.window for n in halt.needs)
    noun = "leg" if len(halt.needs) == 1 else "legs"
    where = ", ".join(
        f"{'no data' if n.value is None else format_ratio(n.value)} of {format_ratio(n.threshold)}"
        for n in halt.needs
    )
    text = f"{text}; the full alert needs the {windows} {noun} too ({where})"
    if halt.more_s is not None:
        text += f", about {_about(halt.more_s)} more at this error rate"
    return text


def _about(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
