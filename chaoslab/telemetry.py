"""OpenTelemetry traces of a run, as an event sink of the runner's events.

One trace per run: a span for the run, one per stage (tier), one per step and one per
phase of a step (preflight, baseline, inject, hold, verify, halt, remove, recover), with
the service, tier, fault, blast radius, verdict, halt latency and recovery time as
attributes, and span events for the breach, the halt and signals. The runner never
imports OpenTelemetry: it emits events, and this module turns them into spans.

Configured by the standard variables only (``OTEL_EXPORTER_OTLP_ENDPOINT`` or
``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``, ``OTEL_EXPORTER_OTLP_HEADERS``, ``OTEL_SERVICE_NAME``,
``OTEL_RESOURCE_ATTRIBUTES``, ``OTEL_TRACES_SAMPLER``…), exported over OTLP/HTTP through a
``BatchSpanProcessor``. With no endpoint set (or ``OTEL_SDK_DISABLED=true``,
``OTEL_TRACES_EXPORTER=none``) nothing is imported and nothing exported. A ``TRACEPARENT``
in the environment (as CI systems set it) makes the run a child of that span. The SDK is
set up in a thread (``BackgroundTracing``) so that its import overlaps the run.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from chaoslab.model import RunResult, StepResult, Verdict
from chaoslab.runner.events import (
    PHASE,
    RUN_FINISHED,
    RUN_STARTED,
    SIGNAL,
    STEP_FINISHED,
    STEP_STARTED,
    WARNING,
    RunEvent,
)

logger = logging.getLogger(__name__)

ENDPOINT_VARS = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
TRACER_NAME = "chaoslab"
# The runner's phase names → span names (precheck: the system's SLOs and the backend's preflight).
PHASE_SPANS = {"precheck": "preflight", "baseline": "baseline", "inject": "inject", "hold": "hold",
               "verify": "verify", "halt": "halt", "remove": "remove", "recover": "recover"}


def tracing_wanted(environ: Mapping[str, str]) -> bool:
    """Whether the standard variables ask for traces to be exported (no import needed)."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    if environ.get("OTEL_TRACES_EXPORTER", "otlp").strip().lower() in ("none", ""):
        return False
    return any(environ.get(name, "").strip() for name in ENDPOINT_VARS)


def _ns(value: datetime | None = None) -> int:
    return int(value.timestamp() * 1e9) if value is not None else time.time_ns()


class RunTracer:
    """The event sink: builds the span tree as events arrive (from several threads), each
    span starting and ending at the time its event was emitted (``at``, ns since the epoch)."""

    def __init__(self, tracer: Any, *, parent: Any = None) -> None:
        from opentelemetry import trace

        self._trace = trace
        self._tracer = tracer
        self._parent = parent  # a Context (from TRACEPARENT) or None
        self._lock = threading.Lock()
        self._run: Any = None
        self._stage: Any = None
        self._stage_tier: object = None
        self._step: Any = None
        self._phase: Any = None
        self._phase_name = ""
        self._at = 0
        self.trace_id: str | None = None

    def __call__(self, event: RunEvent, at: int | None = None) -> None:
        with self._lock:
            self._at = at or time.time_ns()
            handler = {RUN_STARTED: self._run_started, STEP_STARTED: self._step_started,
                       PHASE: self._on_phase, SIGNAL: self._on_signal, WARNING: self._on_warning,
                       STEP_FINISHED: self._step_finished, RUN_FINISHED: self._run_finished}.get(event.kind)
            if handler is not None:
                handler(event)

    def close(self) -> None:
        """End whatever is still open (a run that ended in an exception)."""
        with self._lock:
            self._at = time.time_ns()
            for span in (self._phase, self._step, self._stage, self._run):
                self._end(span)
            self._phase = self._step = self._stage = self._run = None

    # --- spans -----------------------------------------------------------------------

    def _child(self, name: str, parent: Any, **attributes: Any) -> Any:
        context = self._trace.set_span_in_context(parent) if parent is not None else self._parent
        return self._tracer.start_span(name, context=context, start_time=self._at,
                                       attributes={k: v for k, v in attributes.items() if v is not None})

    def _end(self, span: Any) -> None:
        if span is not None:
            span.end(end_time=self._at)

    def _run_started(self, event: RunEvent) -> None:
        self._run = self._child("chaoslab run", None, **{"chaoslab.steps": event.total,
                                                         "chaoslab.summary": event.message})
        self.trace_id = format(self._run.get_span_context().trace_id, "032x")

    def _enter_stage(self, event: RunEvent) -> None:
        if event.stage is None or (self._stage is not None and event.stage == self._stage_tier):
            return
        self._end(self._stage)
        self._stage_tier = event.stage
        tier = event.stage.label
        self._stage = self._child(f"stage {tier}", self._run, **{"chaoslab.tier": tier})

    def _step_started(self, event: RunEvent) -> None:
        self._enter_stage(event)
        self._step = self._child(f"step {event.step}", self._stage or self._run,
                                 **{"chaoslab.step": event.step, "chaoslab.index": event.index})

    def _on_phase(self, event: RunEvent) -> None:
        name = PHASE_SPANS.get(event.phase or "")
        if name is None or self._step is None or (self._phase is not None and name == self._phase_name):
            return  # the same phase again (the SLOs, then the pods, recovering) stays one span
        self._end(self._phase)
        self._phase_name = name
        attributes = {"chaoslab.hold_s": event.hold_s} if name == "hold" else {}
        self._phase = self._child(name, self._step, **attributes)
        if name == "halt":
            self._step.add_event("halt", {"chaoslab.reason": event.message}, timestamp=self._at)

    def _on_signal(self, event: RunEvent) -> None:
        target = self._step or self._run
        if target is not None:
            target.add_event("signal", {"chaoslab.message": event.message}, timestamp=self._at)

    def _on_warning(self, event: RunEvent) -> None:
        target = self._step or self._run
        if target is not None:
            target.add_event("warning", {"chaoslab.message": event.message}, timestamp=self._at)

    def _step_finished(self, event: RunEvent) -> None:
        result = event.step_result
        if self._step is None:  # skipped before it started: a span of no length, for the record
            self._enter_stage(event)
            self._step = self._child(f"step {event.step}", self._stage or self._run,
                                     **{"chaoslab.step": event.step, "chaoslab.index": event.index})
        self._end(self._phase)
        self._phase = None
        if result is not None:
            _describe_step(self._step, result, self._trace)
        self._end(self._step)
        self._step = None

    def _run_finished(self, event: RunEvent) -> None:
        result = event.run_result
        for span in (self._phase, self._step, self._stage):
            self._end(span)
        self._phase = self._step = self._stage = None
        if self._run is None:
            return
        if result is not None:
            _describe_run(self._run, result, self._trace)
        self._end(self._run)
        self._run = None


def _describe_step(span: Any, result: StepResult, trace: Any) -> None:
    blast = result.mode.value if result.value is None else f"{result.mode.value} {result.value}"
    attributes: dict[str, Any] = {
        "chaoslab.service": result.service, "chaoslab.tier": result.tier.label,
        "chaoslab.fault": f"{result.kind.value} {result.action}", "chaoslab.blast_radius": blast,
        "chaoslab.verdict": result.verdict.value, "chaoslab.reason": result.reason,
        "chaoslab.injected": result.injected, "chaoslab.experiment": result.experiment,
    }
    if result.recovery_s is not None:
        attributes["chaoslab.recovery_s"] = result.recovery_s
    halt = result.halt
    if halt is not None:
        attributes["chaoslab.halt.condition"] = halt.condition
        if halt.removed_at is not None:
            start = halt.breach_at or halt.detected_at
            attributes["chaoslab.halt_latency_s"] = (halt.removed_at - start).total_seconds()
        span.add_event("breach", {"chaoslab.condition": halt.condition, "chaoslab.kind": halt.kind},
                       timestamp=_ns(halt.breach_at or halt.detected_at))
    span.set_attributes(attributes)
    if result.verdict is Verdict.ERROR:
        span.set_status(trace.Status(trace.StatusCode.ERROR, result.reason))


def _describe_run(span: Any, result: RunResult, trace: Any) -> None:
    span.set_attributes({"chaoslab.run_id": result.run_id, "chaoslab.gameday": result.gameday,
                         "chaoslab.target": result.target, "chaoslab.verdict": result.verdict.value,
                         "chaoslab.dry_run": result.dry_run})
    if result.interrupted:
        span.set_attribute("chaoslab.interrupted", result.interrupted)
    if result.verdict is Verdict.ERROR or result.interrupted:
        span.set_status(trace.Status(trace.StatusCode.ERROR, result.interrupted or "a step failed"))


class Tracing:
    """The SDK set up from the environment: a tracer provider with the OTLP/HTTP exporter
    behind a batch processor, and the run's sink. ``shutdown`` flushes; call it before exit."""

    def __init__(self, provider: Any, *, traceparent: str | None = None) -> None:
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

        self.provider = provider
        parent = None
        if traceparent:
            parent = TraceContextTextMapPropagator().extract({"traceparent": traceparent})
        self.sink = RunTracer(provider.get_tracer(TRACER_NAME), parent=parent)

    @property
    def trace_id(self) -> str | None:
        return self.sink.trace_id

    def shutdown(self) -> None:
        self.sink.close()
        try:
            self.provider.shutdown()  # flushes the batch processor, then stops the exporter
        except Exception:  # an exporter that cannot flush must not change the run's exit code
            logger.exception("could not flush the run's trace")


def build_tracing() -> Tracing:
    """The SDK, the OTLP/HTTP exporter and a batch processor, as the process's OTEL_* variables
    say (the SDK reads them itself), joined to its ``TRACEPARENT``."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    environ = os.environ
    named = environ.get("OTEL_SERVICE_NAME") or "service.name=" in environ.get("OTEL_RESOURCE_ATTRIBUTES", "")
    provider = TracerProvider(resource=Resource.create({} if named else {"service.name": "chaoslab"}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    return Tracing(provider, traceparent=environ.get("TRACEPARENT") or environ.get("traceparent"))


class BackgroundTracing:
    """``Tracing`` set up in a thread: importing the SDK and its exporter takes about a second,
    which then overlaps the run instead of delaying it. Events that arrive before it is ready
    are kept with the time they were emitted and replayed, so every span keeps its real times."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: list[tuple[RunEvent, int]] = []
        self._ready = False
        self._tracing: Tracing | None = None
        self._thread = threading.Thread(target=self._build, name="chaoslab-tracing", daemon=True)
        self._thread.start()

    def _build(self) -> None:
        try:
            tracing: Tracing | None = build_tracing()
        except Exception:  # tracing must never stop a run
            logger.exception("cannot set up OpenTelemetry tracing; the run goes on untraced")
            tracing = None
        with self._lock:
            if tracing is not None:
                for event, at in self._pending:
                    tracing.sink(event, at)
            self._pending.clear()
            self._tracing, self._ready = tracing, True

    def sink(self, event: RunEvent) -> None:
        at = time.time_ns()
        with self._lock:
            if not self._ready:
                self._pending.append((event, at))
                return
            tracing = self._tracing
        if tracing is not None:
            tracing.sink(event, at)

    @property
    def trace_id(self) -> str | None:
        return self._tracing.trace_id if self._tracing is not None else None

    def shutdown(self) -> None:
        """Wait for the set-up (if the run was shorter than it), end open spans, flush."""
        self._thread.join()
        if self._tracing is not None:
            self._tracing.shutdown()


def tracing_from_env() -> BackgroundTracing | None:
    """Tracing when the process's OTEL_* variables ask for it, else None (and nothing imported)."""
    return BackgroundTracing() if tracing_wanted(os.environ) else None
