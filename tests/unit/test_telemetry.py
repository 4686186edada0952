"""The trace of a run: the span tree the runner's events make, read back through the SDK's
in-memory exporter, and when tracing is switched on at all."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from chaoslab.model import ChaosKind, HaltRecord, Mode, RunResult, StepResult, Tier, Verdict
from chaoslab.runner.events import (
    PHASE,
    RUN_FINISHED,
    RUN_STARTED,
    SIGNAL,
    STEP_FINISHED,
    STEP_STARTED,
    TICK,
    RunEvent,
)
from chaoslab.telemetry import Tracing, tracing_wanted

T0 = datetime(2026, 11, 27, 10, 15, tzinfo=UTC)
PARENT_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_SPAN = "00f067aa0ba902b7"


def step(name: str, service: str, tier: Tier, verdict: Verdict, **extra: Any) -> StepResult:
    return StepResult(step=name, experiment=name, service=service, tier=tier, kind=ChaosKind.POD_CHAOS,
                      action="pod-kill", mode=Mode.FIXED_PERCENT, value="50", verdict=verdict, **extra)


HALT = HaltRecord(condition="CartErrors (cart)", breach_at=T0 + timedelta(seconds=1.0),
                  detected_at=T0 + timedelta(seconds=1.2), removed_at=T0 + timedelta(seconds=1.5))
STEPS = (
    step("catalog-kill", "catalog", Tier.NON_CORE, Verdict.HELD, recovery_s=3.5, injected=True),
    step("payment-kill", "payment", Tier.CORE, Verdict.HALTED, halt=HALT, recovery_s=8.0, injected=True),
    step("cart-kill", "cart", Tier.CORE, Verdict.SKIPPED, reason="a core step failed before"),
)


def events() -> list[RunEvent]:
    """What the runner emits for a held non-core step, a halted core step and a skipped one."""
    out = [RunEvent(kind=RUN_STARTED, message="run r1: shop, 3 steps on sandbox", total=3)]
    phases = ("precheck", "baseline", "inject", "hold")
    for index, (result, stage, tail) in enumerate(
        [(STEPS[0], Tier.NON_CORE, ("verify", "remove", "recover")),
         (STEPS[1], Tier.CORE, ("halt", "remove", "recover"))], start=1):
        at = {"step": result.step, "stage": stage, "index": index, "total": 3}
        out.append(RunEvent(kind=STEP_STARTED, **at))
        for phase in (*phases, *tail):
            out.append(RunEvent(kind=PHASE, phase=phase, message=f"{phase} now", hold_s=4.0, **at))
            if phase == "hold" and index == 2:
                out.append(RunEvent(kind=TICK, **at))  # the watcher's ticks make no spans
        out.append(RunEvent(kind=STEP_FINISHED, step_result=result, **at))
    at = {"step": "cart-kill", "stage": Tier.CORE, "index": 3, "total": 3}
    out.append(RunEvent(kind=STEP_FINISHED, step_result=STEPS[2], **at))
    run = RunResult(run_id="r1", gameday="shop", target="sandbox", started_at=T0, ended_at=T0,
                    verdict=Verdict.HALTED, steps=STEPS)
    out.append(RunEvent(kind=RUN_FINISHED, run_result=run))
    return out


def trace(sequence: list[RunEvent], *, traceparent: str | None = None) -> tuple[Tracing, list[ReadableSpan]]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing = Tracing(provider, traceparent=traceparent)
    for event in sequence:
        tracing.sink(event)
    tracing.shutdown()
    return tracing, list(exporter.get_finished_spans())


def tree(spans: list[ReadableSpan]) -> dict[str, list[str]]:
    """Each span's name → its children's names, in start order."""
    by_id = {s.context.span_id: s for s in spans}
    children: dict[str, list[str]] = {s.name: [] for s in spans}
    for span in sorted(spans, key=lambda s: s.start_time or 0):
        if span.parent is not None and span.parent.span_id in by_id:
            children[by_id[span.parent.span_id].name].append(span.name)
    return children


def named(spans: list[ReadableSpan], name: str) -> ReadableSpan:
    (found,) = [s for s in spans if s.name == name]
    return found


def test_one_trace_with_run_stage_step_and_phase_spans() -> None:
    tracing, spans = trace(events())
    assert {format(s.context.trace_id, "032x") for s in spans} == {tracing.trace_id}
    shape = tree(spans)
    assert shape["chaoslab run"] == ["stage non-core", "stage core"]
    assert shape["stage non-core"] == ["step catalog-kill"]
    assert shape["stage core"] == ["step payment-kill", "step cart-kill"]
    assert shape["step catalog-kill"] == ["preflight", "baseline", "inject", "hold", "verify", "remove",
                                          "recover"]
    assert shape["step payment-kill"] == ["preflight", "baseline", "inject", "hold", "halt", "remove",
                                          "recover"]
    assert shape["step cart-kill"] == []
    assert named(spans, "chaoslab run").parent is None


def test_step_spans_carry_the_result_and_the_breach() -> None:
    _, spans = trace(events())
    halted = named(spans, "step payment-kill")
    attrs = dict(halted.attributes or {})
    assert attrs["chaoslab.service"] == "payment"
    assert attrs["chaoslab.tier"] == "core"
    assert attrs["chaoslab.fault"] == "PodChaos pod-kill"
    assert attrs["chaoslab.blast_radius"] == "fixed-percent 50"
    assert attrs["chaoslab.verdict"] == "halted"
    assert attrs["chaoslab.recovery_s"] == 8.0
    assert attrs["chaoslab.halt_latency_s"] == pytest.approx(0.5)
    breach = [e for e in halted.events if e.name == "breach"]
    assert len(breach) == 1
    assert breach[0].timestamp == int((T0 + timedelta(seconds=1.0)).timestamp() * 1e9)
    assert (breach[0].attributes or {})["chaoslab.condition"] == "CartErrors (cart)"
    assert [e.name for e in halted.events if e.name == "halt"] == ["halt"]
    run = dict(named(spans, "chaoslab run").attributes or {})
    assert (run["chaoslab.run_id"], run["chaoslab.verdict"]) == ("r1", "halted")
    assert dict(named(spans, "step cart-kill").attributes or {})["chaoslab.verdict"] == "skipped"


def test_a_signal_is_an_event_and_open_spans_still_end() -> None:
    sequence = events()[:7]  # into the first step's hold
    at = {"step": "catalog-kill", "stage": Tier.NON_CORE, "index": 1, "total": 3}
    sequence.append(RunEvent(kind=SIGNAL, message="SIGTERM received: removing the fault", **at))
    _, spans = trace(sequence)  # shutdown ends what the run could not
    step_span = named(spans, "step catalog-kill")
    assert [e.name for e in step_span.events] == ["signal"]
    assert {s.name for s in spans} >= {"chaoslab run", "stage non-core", "hold"}


def test_a_traceparent_makes_the_run_a_child_of_that_span() -> None:
    tracing, spans = trace(events(), traceparent=f"00-{PARENT_TRACE}-{PARENT_SPAN}-01")
    run = named(spans, "chaoslab run")
    assert tracing.trace_id == PARENT_TRACE
    assert run.parent is not None
    assert format(run.parent.span_id, "016x") == PARENT_SPAN


@pytest.mark.parametrize(
    ("environ", "wanted"),
    [
        ({}, False),
        ({"OTEL_SERVICE_NAME": "x"}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, True),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4318/v1/traces"}, True),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://x:4318", "OTEL_SDK_DISABLED": "true"}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://x:4318", "OTEL_TRACES_EXPORTER": "none"}, False),
    ],
)
def test_tracing_only_when_an_endpoint_is_set(environ: dict[str, str], wanted: bool) -> None:
    assert tracing_wanted(environ) is wanted


def test_help_and_an_untraced_import_never_load_opentelemetry() -> None:
    code = ("import sys, chaoslab.cli.main, chaoslab.telemetry, chaoslab.cli.run; "
            "sys.exit(any(m.startswith('opentelemetry') for m in sys.modules))")
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
