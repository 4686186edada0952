"""The last step's PDCA observation is asked as the step ends (``EarlyObservation``): the
record then uses it instead of asking Prometheus again, for that step only, and comes out
the same as when everything is asked at the end."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import chaoslab
from chaoslab.app.pdca import EarlyObservation
from chaoslab.model import AlertRule, Experiment, GameDay, Plan
from chaoslab.pdca.collect import collect_run
from chaoslab.pdca_model import PdcaRecord
from chaoslab.runner import RunEvent, run_plan
from chaoslab.runner.signals import SignalWatch
from chaoslab.settings import load_settings
from tests.fakes.memory import MemoryBackend, ScriptedMetrics

SERVICES = ("catalog", "cart", "payment")
RULES = tuple(
    AlertRule(name=f"{s.capitalize()}Errors", expr=f'sum(rate(errors{{service="{s}"}}[10s])) > 0.05',
              for_s=0.0, labels={"service": s})
    for s in SERVICES
)


def _plan() -> Plan:
    catalog = chaoslab.catalog("shop", [
        chaoslab.service(s, namespace="shop", tier="non-core", labels={"app": s}) for s in SERVICES
    ])
    delay = chaoslab.network_delay(latency="100ms", duration="1s")
    experiments: tuple[Experiment, ...] = tuple(
        chaoslab.experiment(f"{s}-delay", service=s, fault=delay, catalog=catalog) for s in SERVICES
    )
    return chaoslab.to_plan(GameDay(name="early", catalog=catalog, experiments=experiments))


def _for(service: str, ranges: list[str]) -> list[str]:
    return [q for q in ranges if f'service="{service}"' in q]


def test_only_the_last_step_is_observed_as_it_ends_and_the_record_uses_it(tmp_path: Path) -> None:
    plan = _plan()
    metrics = ScriptedMetrics()
    early = EarlyObservation(plan, rules=RULES, metrics=metrics)
    settings = load_settings(env={}, overrides={"reports_dir": tmp_path, "remove_timeout_s": 1.0})
    result = run_plan(plan, settings=settings, backend=MemoryBackend(), metrics=metrics, rules=RULES,
                      events=early, signals=SignalWatch())
    assert [s.verdict.value for s in result.steps] == ["held", "held", "held"]
    last = plan.steps[-1]
    asked = early.observed(last, result.steps[-1])
    assert asked is not None
    asked()  # waits for the answers
    asked_early = list(metrics.ranges)
    assert asked_early  # before any record is made
    assert early.observed(plan.steps[0], result.steps[0]) is None
    # Another result of the same step (a copy, not the one the run ended with) is asked again.
    assert early.observed(last, dataclasses.replace(result.steps[-1])) is None

    record, outcomes = collect_run(plan, result, rules=RULES, metrics=metrics, observed=early.observed)
    at_the_end = metrics.ranges[len(asked_early):]
    again, outcomes_again = collect_run(plan, result, rules=RULES, metrics=metrics)
    everything = metrics.ranges[len(asked_early) + len(at_the_end):]
    # The steps are alike, so each asks as many range queries: the run's end had asked the
    # last step's, and the record asks every step's but the last one's.
    assert len(asked_early) * len(plan.steps) == len(everything)
    assert len(at_the_end) == len(everything) - len(asked_early)
    assert sorted(at_the_end + asked_early) == sorted(everything)
    # The same record, but for where each chart ends: now, at most 5 s after the step's last
    # event (a memory run's steps are a second apart), which is a little sooner for the
    # step observed early.
    assert (_unended(record), outcomes) == (_unended(again), outcomes_again)
    assert record.check[-1].slis[0].end <= again.check[-1].slis[0].end


def _unended(record: PdcaRecord) -> PdcaRecord:
    checks = tuple(dataclasses.replace(c, slis=tuple(dataclasses.replace(s, end=s.start) for s in c.slis))
                   for c in record.check)
    return dataclasses.replace(record, check=checks)


def test_the_steps_before_the_last_start_nothing(tmp_path: Path) -> None:
    plan = _plan()
    metrics = ScriptedMetrics()
    early = EarlyObservation(plan, rules=RULES, metrics=metrics)
    settings = load_settings(env={}, overrides={"reports_dir": tmp_path, "remove_timeout_s": 1.0})
    events: list[str] = []

    def sink(event: RunEvent) -> None:
        early(event)
        if event.kind == "step-finished":
            events.append(f"{event.index}/{event.total}:{len(metrics.ranges)}")

    run_plan(plan, settings=settings, backend=MemoryBackend(), metrics=metrics, rules=RULES,
             events=sink, signals=SignalWatch())
    assert events[:2] == ["1/3:0", "2/3:0"]  # nothing asked for the first two steps
