"""Running a plan: the chaos backend and the metrics source for a target, the alert rules,
the run itself, and the run record (run.json, report.md, optional JUnit).

The CLI and the Python API both come through here; they differ only in what they show
while the run goes on (an event sink) and how they report the result.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from chaoslab.errors import BackendError, InvalidInputError

if TYPE_CHECKING:
    from chaoslab.alertmanager.client import AlertmanagerClient
    from chaoslab.model import Plan, RunResult
    from chaoslab.ports import ChaosBackend, MetricsSource
    from chaoslab.prometheus.client import PrometheusClient
    from chaoslab.runner.events import EventSink
    from chaoslab.runner.signals import SignalWatch
    from chaoslab.settings import Settings

logger = logging.getLogger(__name__)

Target = Literal["kubernetes", "sandbox"]
TARGETS: tuple[Target, ...] = ("kubernetes", "sandbox")
NO_SANDBOX = "no sandbox is running; start it with `chaoslab sandbox up`"
NO_PROMETHEUS = ("no Prometheus URL: pass --prometheus URL or set CHAOSLAB_PROMETHEUS_URL "
                 "(the sandbox target finds its own)")


def connect_backend(target: str, settings: Settings) -> tuple[ChaosBackend, Settings]:
    """The chaos backend of ``target``, and the settings completed with what it knows (the
    sandbox's Prometheus and state directory). BackendError when it cannot be reached."""
    if target == "kubernetes":
        from chaoslab.chaosmesh.backend import connect

        if settings.kube_context:
            # The Chaos Toolkit activities connect on their own; they read the same variable.
            os.environ["KUBERNETES_CONTEXT"] = settings.kube_context
        return connect(context=settings.kube_context), settings
    if target != "sandbox":
        raise InvalidInputError(None, "target", f"must be one of {', '.join(TARGETS)}, got {target!r}")
    from chaoslab.sandbox.backend import SandboxBackend
    from chaoslab.sandbox.state import load_state

    state = load_state(settings.sandbox_state_dir)
    if state is None:
        raise BackendError(NO_SANDBOX)
    completed = dataclasses.replace(settings, prometheus_url=settings.prometheus_url or state.prometheus_url,
                                    sandbox_state_dir=state.state_dir)
    return SandboxBackend(state), completed


def connect_metrics(settings: Settings) -> PrometheusClient:
    """The Prometheus client of ``settings``; InvalidInputError on ``--prometheus`` without a URL."""
    from chaoslab.prometheus.client import PrometheusClient

    url = settings.prometheus_url
    if not url:
        raise InvalidInputError(None, "--prometheus", NO_PROMETHEUS)
    return PrometheusClient(url, token=settings.prometheus_token, ca_bundle=settings.prometheus_ca_bundle,
                            verify=settings.prometheus_verify_tls, timeout=settings.prometheus_timeout_s)


def execute(
    plan: Plan, *, settings: Settings, target: str, rules: Sequence[str | Path] = (),
    path: str | Path | None = None, events: EventSink | None = None, dry_run: bool = False,
    cleanup_orphans: bool = False, signals: SignalWatch | None = None,
    notice: Callable[[str], None] | None = None, ports: tuple[ChaosBackend, MetricsSource] | None = None,
    silences: AlertmanagerClient | None = None,
) -> RunResult:
    """Run ``plan`` on ``target``: connect the backend and Prometheus, load the alert rules
    (the plan's ``spec.rules`` plus ``rules``, from files, PrometheusRule files or ``k8s://``
    addresses; else what Prometheus has loaded, said through ``notice``), run every step.

    ``path`` is the file the plan came from, named in errors. Raises before anything is
    injected when an input is wrong (InvalidInputError, PlanError) or the backend or
    Prometheus cannot be reached (BackendError); after that, what happens is in the result.

    ``ports`` replaces both with the caller's own backend and metrics source: the steps then
    inject, remove and check alerts through them (the ``port`` target, named after the
    backend). ``silences`` (``app.operations.silences_for``) silences the alerts of each
    step's services in Alertmanager while it runs; it is closed when the run ends. With the
    ``OTEL_*`` variables set, the run is traced and the result carries its trace id."""
    from chaoslab.app.operations import fan_out, tracing
    from chaoslab.app.pdca import EarlyObservation, record_pdca
    from chaoslab.app.rules import load_run_rules
    from chaoslab.app.warmup import Warmup
    from chaoslab.runner import run_plan

    metrics: MetricsSource
    if ports is None:
        backend, settings = connect_backend(target, settings)
        metrics = connect_metrics(settings)
    else:
        backend, metrics = ports
        target = backend.name
    alert_rules = load_run_rules([*plan.gameday.rules, *rules], metrics=metrics,
                                 path=path if path is not None else plan.gameday.source,
                                 context=settings.kube_context, notice=notice)
    traced = tracing()
    warmup = Warmup()  # the record's modules load while the first fault is held
    early = None if dry_run else EarlyObservation(plan, rules=alert_rules, metrics=metrics)
    try:
        sink = fan_out(early, events, warmup, None if traced is None else traced.sink)
        result = run_plan(plan, settings=settings, backend=backend, metrics=metrics, rules=alert_rules,
                          events=sink, target=target, dry_run=dry_run, cleanup_orphans=cleanup_orphans,
                          signals=signals, silences=silences)
    finally:
        if silences is not None:
            silences.close()
        if traced is not None:
            traced.shutdown()  # flush the trace, also after a signal or an error
    if traced is not None:
        result = dataclasses.replace(result, trace_id=traced.trace_id)
    warmup.wait()
    return record_pdca(plan, result, rules=alert_rules, metrics=metrics, settings=settings,
                       observed=None if early is None else early.observed)


def write_reports(
    result: RunResult, *, junit: str | Path | None = None, secrets: Sequence[str | None] = (),
) -> dict[str, Path]:
    """The run record beside the journals (run.json, report.md, report.html and the reports
    folder's index.html with the checklist as it stands; nothing for a dry run) and, with
    ``junit``, a JUnit XML file; ``secrets`` (and every credential chaoslab knows the shape
    of) masked in all of them. Returns the paths by role: run, report, html, index, junit.
    Raises OSError when a file cannot be written."""
    from chaoslab.app.pdca import current_items
    from chaoslab.redaction import redact, redact_text
    from chaoslab.report.files import write_reports as write_pages
    from chaoslab.report.record import run_document, write_document

    paths: dict[str, Path] = {}
    if not result.dry_run and result.directory is not None:
        document = run_document(result, secrets=secrets)  # run.json and the pages: one document
        paths["run"] = write_document(document, result.directory)
        reports = result.directory.parent
        items = None if result.pdca is None else redact(current_items(reports), secrets=secrets)
        written = write_pages(document, result.directory, reports_dir=result.directory.parent, items=items)
        paths.update(zip(("report", "html", "index"), written, strict=True))
    if junit:
        from chaoslab.report.junit import render_junit

        paths["junit"] = Path(junit)
        paths["junit"].parent.mkdir(parents=True, exist_ok=True)
        paths["junit"].write_text(redact_text(render_junit(result), secrets=secrets), encoding="utf-8")
    return paths
