"""Multi-window burn-rate SLOs with history like production, for the burn-rate tests and benchmark.

- ``sloth_rules`` and ``pyrra_rules`` write rule files in the published formats of Sloth
  (plain rule file, ``sloth_*`` labels, ``slo:sli_error:ratio_rate<window>`` recording rules,
  one page alert of two conjunctions) and Pyrra (a PrometheusRule, ``<metric>:burnrate<window>``
  recording rules, one ``ErrorBudgetBurn`` alert per window pair).
- ``write_history`` + ``backfill`` make days of samples with ``promtool tsdb
  create-blocks-from openmetrics`` before Prometheus starts on that directory.
- ``SloExporter`` continues those counters live, under the labels the scrape adds, so that
  ``rate(x[1h])`` sees one unbroken series.

Import explicitly: ``from tests.support.burnrate import ...``.
"""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from tests.support.prometheus import ShopExporter

OBJECTIVE = 0.999
BUDGET = round(1 - OBJECTIVE, 12)
RPS = 20.0
HISTORY_S = 3 * 86400
HISTORY_STEP_S = 60
# (short, long, factor) of the page alert, as both generators default to for a 30-day SLO.
SLOTH_PAGE = (("5m", "1h", 14.4), ("30m", "6h", 6.0))
PYRRA_PAIRS = (("5m", "1h", 14.0), ("30m", "6h", 7.0), ("2h", "1d", 2.0), ("6h", "4d", 1.0))
ERRORS = 'code=~"5.."'


def sloth_rules(service: str, *, job: str, objective: float = OBJECTIVE) -> dict[str, Any]:
    """What Sloth generates for an availability SLO ``requests-availability`` of ``service``
    (page alert only: its ticket alert disabled), written out here in Sloth's format."""
    slo = "requests-availability"
    ident = f"{service}-{slo}"
    budget = round(1 - objective, 12)
    common = {"sloth_id": ident, "sloth_service": service, "sloth_slo": slo}
    windows = sorted({w for pair in SLOTH_PAGE for w in pair[:2]}, key=_seconds)
    records = [
        {
            "record": f"slo:sli_error:ratio_rate{w}",
            "expr": f'(sum(rate(http_requests_total{{job="{job}",{ERRORS}}}[{w}])))\n/\n'
                    f'(sum(rate(http_requests_total{{job="{job}"}}[{w}])))\n',
            "labels": {**common, "sloth_window": w},
        }
        for w in windows
    ]
    records.append({"record": "slo:objective:ratio", "expr": f"vector({objective})", "labels": common})
    selector = ", ".join(f'{k}="{v}"' for k, v in common.items())
    legs = [
        " and ".join(
            f"max(slo:sli_error:ratio_rate{w}{{{selector}}} > ({factor} * {budget})) without (sloth_window)"
            for w in (short, long)
        )
        for short, long, factor in SLOTH_PAGE
    ]
    alert = {
        "alert": f"{service.capitalize()}AvailabilitySLO",
        "expr": "(\n    " + "\n)\nor\n(\n    ".join(legs) + "\n)\n",
        "labels": {"sloth_severity": "page", **common},
        "annotations": {"summary": f"High error budget burn for {service}"},
    }
    return {
        "groups": [
            {"name": f"sloth-slo-sli-recordings-{ident}", "interval": "1s", "rules": records},
            {"name": f"sloth-slo-alerts-{ident}", "interval": "1s", "rules": [alert]},
        ]
    }


def pyrra_rules(name: str, *, job: str, target: float = 0.99) -> dict[str, Any]:
    """What Pyrra generates for a ratio objective ``name`` over ``http_requests_total{job}``,
    written out here as Pyrra's PrometheusRule."""
    windows = sorted({w for pair in PYRRA_PAIRS for w in pair[:2]}, key=_seconds)
    matchers = f'job="{job}",slo="{name}"'
    records = [
        {
            "record": f"http_requests:burnrate{w}",
            "expr": f'sum(rate(http_requests_total{{{ERRORS},job="{job}"}}[{w}])) / '
                    f'sum(rate(http_requests_total{{job="{job}"}}[{w}]))',
            "labels": {"job": job, "slo": name},
        }
        for w in windows
    ]
    alerts = [
        {
            "alert": "ErrorBudgetBurn",
            "expr": f"http_requests:burnrate{short}{{{matchers}}} > ({factor:g} * (1-{target})) and "
                    f"http_requests:burnrate{long}{{{matchers}}} > ({factor:g} * (1-{target}))",
            "for": "2m",
            "labels": {"severity": "critical" if factor >= 7 else "warning", "job": job, "long": long,
                       "short": short, "slo": name},
        }
        for short, long, factor in PYRRA_PAIRS
    ]
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": name, "namespace": "monitoring", "labels": {"pyrra.dev/team": "shop"}},
        "spec": {"groups": [{"name": name, "interval": "1s", "rules": [*records, *alerts]}]},
    }


def _seconds(window: str) -> int:
    unit = {"m": 60, "h": 3600, "d": 86400}[window[-1]]
    return int(window[:-1]) * unit


# --- history -------------------------------------------------------------------------------------


class SloExporter(ShopExporter):
    """A ``ShopExporter`` whose counters start where the written history ends."""

    def __init__(self, service: str, *, rps: float = RPS, error_ratio: float = 0.0,
                 start: Mapping[str, float]) -> None:
        super().__init__(service, rps=rps, error_ratio=error_ratio)
        self._counts = dict(start)


def history_counts(
    *, rps: float, phases: Sequence[tuple[float, float]]
) -> list[tuple[float, dict[str, float]]]:
    """Counter values every ``HISTORY_STEP_S`` seconds, oldest first, relative to the end
    (offsets <= 0): ``phases`` are (seconds, error ratio), oldest first, and end now."""
    total = sum(seconds for seconds, _ in phases)
    points: list[tuple[float, dict[str, float]]] = []
    counts = {"200": 0.0, "500": 0.0}
    offset = -total
    for seconds, ratio in phases:
        end = offset + seconds
        while offset < end:
            points.append((offset, dict(counts)))
            step = min(HISTORY_STEP_S, end - offset)
            counts["500"] += rps * step * ratio
            counts["200"] += rps * step * (1 - ratio)
            offset += step
    points.append((0.0, dict(counts)))
    return points


def write_history(
    path: Path, *, now: float, series: Mapping[str, Mapping[str, str]],
    points: Mapping[str, Sequence[tuple[float, Mapping[str, float]]]],
) -> None:
    """An OpenMetrics file of ``http_requests_total``: for each job, its ``points`` (offsets
    from ``now``) under the labels ``series[job]`` (instance, job, and the static labels)."""
    lines = ["# TYPE http_requests counter"]
    for job, labels in series.items():
        for offset, counts in points[job]:
            for code, value in counts.items():
                text = ",".join(f'{k}="{v}"' for k, v in sorted({**labels, "code": code}.items()))
                lines.append(f"http_requests_total{{{text}}} {value:.3f} {now + offset:.3f}")
    lines.append("# EOF")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def backfill(promtool: str, history: Path, tsdb: Path) -> None:
    tsdb.mkdir(parents=True, exist_ok=True)
    subprocess.run([promtool, "tsdb", "create-blocks-from", "openmetrics", str(history), str(tsdb)],
                   check=True, capture_output=True, timeout=120)


def live_labels(job: str, port: int) -> dict[str, str]:
    """The labels the test Prometheus' scrape adds (tests.support.prometheus.prometheus_config)."""
    return {"instance": f"127.0.0.1:{port}", "job": job, "namespace": "shop", "service": job}


def wall_now() -> float:
    return time.time()


class OutageCoupler:
    """Polls ``injected()``: while a fault is in place the exporter fails ``ratio`` of its
    requests (a total outage by default). ``started`` is the wall-clock time the outage began."""

    def __init__(self, injected: Callable[[], bool], exporter: ShopExporter, *, ratio: float = 1.0) -> None:
        self.injected, self.exporter, self.ratio = injected, exporter, ratio
        self.healthy = exporter.error_ratio
        self.started: float | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> OutageCoupler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.exporter.set(error_ratio=self.healthy)

    def _loop(self) -> None:
        active = False
        while not self._stop.wait(0.02):
            now = self.injected()
            if now == active:
                continue
            active = now
            self.exporter.set(error_ratio=self.ratio if active else self.healthy)
            if active and self.started is None:
                self.started = time.time()
