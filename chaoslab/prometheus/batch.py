"""Many alert checks in a few PromQL queries: the watcher's engine at catalog scale.

Checking one alert alone costs two instant queries (its ``expr``, and the comparison's
left-hand side for the value and the margin; see ``probes.check_alert``). A catalog of
hundreds of services would send thousands of queries a second to the Prometheus the whole
organisation relies on. Here every alert is answered by ONE sub-query instead, and the
sub-queries travel together:

- an alert whose ``expr`` is a plain comparison ``<lhs> <op> <number>`` asks for ``lhs``;
  the condition is true exactly when one of those values passes the threshold, which is
  what Prometheus does when it filters ``lhs`` by the comparison (NaN never passes);
- any other alert asks for its ``expr``; the condition is true when it returns data;
- each sub-query's series are tagged with the label ``TAG_LABEL`` (its index, through
  ``label_replace``) and the sub-queries are joined with ``or`` (a balanced tree), in
  batches kept well under Prometheus' request and evaluation limits. Distinct tags never
  match, so ``or`` keeps every series of every sub-query; the tag maps each series back;
- a large catalog is spread over up to ``SPREAD_QUERIES`` batches, asked concurrently.
  Prometheus before 2.55 nests its evaluation context one level deeper for every node it
  evaluates (prometheus/prometheus#14816), so one query's cost grows with the square of
  its size: 1,000 sub-queries cost about 0.38 s of Prometheus CPU in 5 batches and 0.25 s
  in 8 (``benchmarks/bench_watcher.py``). A few queries more, for a third less work.

What cannot be batched safely is asked alone, exactly as ``check_alert`` asks it: a
sub-query that is not an instant vector (``label_replace`` needs one), one that already
mentions the tag label, and one that Prometheus refuses inside a batch (the batch is split
in halves until the refused sub-query stands alone; then it is asked alone from then on,
and its refusal is reported as the old path reports it). A batch that cannot be answered
at all (unreachable, timeout, overloaded) makes its alerts not met with that reason, as
their own queries would: never a pass without data.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import promql_parser

from chaoslab.errors import PrometheusError
from chaoslab.model import AlertState, Sample
from chaoslab.ports import MetricsSource
from chaoslab.prometheus.hypothesis import Comparison, comparison
from chaoslab.prometheus.probes import AlertCheck, alert_state, judge, unknown
from chaoslab.prometheus.promql import parse

logger = logging.getLogger(__name__)

TAG_LABEL = "__chaoslab_query__"
# A few tens of kB per query: far below Prometheus' 1 MiB request limit and any proxy in
# front of it (the batch is POSTed), and cheap enough that each evaluates in milliseconds.
MAX_QUERY_CHARS = 48_000
MAX_QUERY_PARTS = 250
# Sub-queries are spread evenly over up to this many batches, each of at least
# MIN_QUERY_PARTS (a small catalog stays in one query): with the alerts call, 9 requests.
SPREAD_QUERIES = 8
MIN_QUERY_PARTS = 32

# Prometheus refused the query itself (bad_data 400, execution 422): splitting finds the culprit.
# Anything else (no answer, 5xx, 503 overloaded) is the server's trouble, not the query's.
_REFUSED = frozenset({400, 422})

Answer = list[float] | PrometheusError


@dataclass(frozen=True, slots=True, kw_only=True)
class AlertQuery:
    """One alert to check: its name (for its state) and its expression."""

    alert: str
    expr: str


class _UnmappableError(Exception):
    """A batch answer holding a series without a known tag: it cannot be mapped back."""


class BatchEvaluator:
    """Checks a fixed list of alerts, as often as asked, in a few queries each time.

    Planning (parsing, packing) happens once; a sub-query found to be refused inside a
    batch is remembered and asked alone afterwards. Safe to share between threads only
    for one evaluation at a time (the watcher evaluates one after another)."""

    def __init__(self, queries: Sequence[AlertQuery]) -> None:
        self.queries = tuple(queries)
        self._cmps: tuple[Comparison | None, ...] = tuple(comparison(q.expr) for q in self.queries)
        self._asked = tuple(c.lhs if c else q.expr for q, c in zip(self.queries, self._cmps, strict=True))
        self._alone: set[str] = {a for a in self._asked if not batchable(a)}
        self._by_asked: dict[str, list[int]] = {}
        for i, asked in enumerate(self._asked):
            self._by_asked.setdefault(asked, []).append(i)
        self._batches = self._pack()

    def _pack(self) -> tuple[tuple[str, ...], ...]:
        return pack([a for a in dict.fromkeys(self._asked) if a not in self._alone])

    def plan(self) -> tuple[tuple[str, ...], ...]:
        """The batches to ask now: the sub-queries of each batch query. A sub-query found to
        need asking alone since the last plan has left its batch for good."""
        if any(a in self._alone for batch in self._batches for a in batch):
            self._batches = self._pack()
        return tuple(batch for batch in self._batches if batch)

    def positions(self, batch: Sequence[str]) -> list[int]:
        """The indexes of the alerts ``batch`` answers (several alerts may share a sub-query)."""
        return [i for asked in batch for i in self._by_asked.get(asked, ())]

    def judge(
        self, index: int, *, answers: dict[str, Answer], states: Sequence[AlertState]
    ) -> AlertCheck | None:
        """The check of alert ``index`` from the batch ``answers``; None when its sub-query
        got no answer (it was not batched, or it was found to need asking alone)."""
        query, cmp, asked = self.queries[index], self._cmps[index], self._asked[index]
        answer = answers.get(asked)
        if answer is None or asked in self._alone:
            return None
        state = alert_state(query.alert, states)
        if isinstance(answer, PrometheusError):
            return unknown(alert=query.alert, cmp=cmp, state=state, reason=str(answer))
        condition_true = any(cmp.breached(v) for v in answer) if cmp else bool(answer)
        return judge(alert=query.alert, cmp=cmp, state=state, condition_true=condition_true,
                     values=answer if cmp else [])

    def answer(self, metrics: MetricsSource, batch: Sequence[str]) -> dict[str, Answer]:
        """Ask one batch: ``{sub-query: values | PrometheusError}``. A sub-query Prometheus
        refuses inside the batch is isolated by halving and left out (asked alone later)."""
        try:
            return _ask(metrics, batch)
        except PrometheusError as exc:
            if exc.status not in _REFUSED:
                return dict.fromkeys(batch, exc)
            refused = f"{exc}"
        except _UnmappableError as exc:
            refused = f"{exc}"
        if len(batch) == 1:
            logger.info("asking %r alone from now on: %s", batch[0], refused)
            self._alone.add(batch[0])
            return {}
        half = len(batch) // 2
        return {**self.answer(metrics, batch[:half]), **self.answer(metrics, batch[half:])}


def batch_query(batch: Sequence[str]) -> str:
    """One PromQL query answering every sub-query of ``batch``, each tagged with its index.

    The ``or``s form a balanced tree: Prometheus matches each ``or``'s right side against
    everything on its left, so a left-deep chain would cost the square of the batch's size.
    Only right-hand subtrees are bracketed (``or`` is left-associative) and a sub-query
    needs none as a function argument: every bracket is one more node to evaluate. The
    newline after each sub-query ends a trailing ``# comment`` before the comma."""
    parts = [f'label_replace(\n{promql}\n, "{TAG_LABEL}", "{i}", "", "")' for i, promql in enumerate(batch)]
    return _balanced(parts)


def _balanced(parts: Sequence[str]) -> str:
    if len(parts) == 1:
        return parts[0]
    half = len(parts) // 2
    return f"{_balanced(parts[:half])} or ({_balanced(parts[half:])})"


def pack(asked: Sequence[str]) -> tuple[tuple[str, ...], ...]:
    """Consecutive sub-queries grouped into batches under the size limits, spread evenly
    over ``SPREAD_QUERIES`` batches when there are enough of them (see the module's notes)."""
    spread = max(-(-len(asked) // MAX_QUERY_PARTS), min(SPREAD_QUERIES, -(-len(asked) // MIN_QUERY_PARTS)))
    parts = -(-len(asked) // max(1, spread))
    batches: list[tuple[str, ...]] = []
    current: list[str] = []
    size = 0
    for promql in asked:
        cost = len(promql) + len(TAG_LABEL) + 40
        if current and (size + cost > MAX_QUERY_CHARS or len(current) >= parts):
            batches.append(tuple(current))
            current, size = [], 0
        current.append(promql)
        size += cost
    if current:
        batches.append(tuple(current))
    return tuple(batches)


def batchable(promql: str) -> bool:
    """Whether ``promql`` may go into a batch: an instant vector that does not use the tag."""
    if TAG_LABEL in promql:
        return False
    return _instant_vector(promql)


@lru_cache(maxsize=4096)
def _instant_vector(promql: str) -> bool:
    try:
        return _is_vector(parse(promql))
    except ValueError:
        return False  # asked alone, so that Prometheus' own refusal is what gets reported


def _is_vector(node: Any) -> bool:
    if isinstance(node, promql_parser.ParenExpr | promql_parser.UnaryExpr):
        return _is_vector(node.expr)
    if isinstance(node, promql_parser.VectorSelector | promql_parser.AggregateExpr):
        return True
    if isinstance(node, promql_parser.Call):
        return bool(node.func.return_type == promql_parser.ValueType.Vector)
    if isinstance(node, promql_parser.BinaryExpr):
        return _is_vector(node.lhs) or _is_vector(node.rhs)
    return False  # scalars, strings, range vectors, subqueries


def _ask(metrics: MetricsSource, batch: Sequence[str]) -> dict[str, Answer]:
    samples = metrics.query(batch_query(batch))
    answers: dict[str, Answer] = {promql: [] for promql in batch}
    for sample in samples:
        answers[_owner(sample, batch)].append(sample.value)  # type: ignore[union-attr]
    return answers


def _owner(sample: Sample, batch: Sequence[str]) -> str:
    tag = sample.labels.get(TAG_LABEL, "")
    if not tag.isdigit() or int(tag) >= len(batch):
        raise _UnmappableError(f"a series without a known {TAG_LABEL} label: {dict(sample.labels)}")
    return batch[int(tag)]
