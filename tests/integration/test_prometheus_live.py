"""Steady state from SLO alerts against a real Prometheus scraping a controllable shop.

One Prometheus (scrape and evaluation every 1s) serves the module; it evaluates
experiments/rules/shop-slo.yaml over exporters for frontend, cart, payment and an idle
service. Experiments carrying a hypothesis go through the real `chaos run`.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from chaoslab.errors import PrometheusError
from chaoslab.model import AlertRule
from chaoslab.prometheus.client import PrometheusClient
from chaoslab.prometheus.hypothesis import comparison
from chaoslab.prometheus.probes import alert_quiet, check_alert
from chaoslab.prometheus.rules import load_rules
from tests.support.prometheus import (
    PrometheusProcess,
    Reply,
    ScriptedServer,
    ShopExporter,
    active_alerts,
    alerts,
    require_prometheus,
    self_signed_cert,
    start_prometheus,
    vector,
    wait_for,
)

pytestmark = pytest.mark.prometheus

REPO = Path(__file__).resolve().parents[2]
SHOP_RULES = REPO / "experiments" / "rules" / "shop-slo.yaml"
CATALOG = REPO / "experiments" / "catalog.yaml"
CHAOS = Path(sys.executable).parent / "chaos"
# payment carries a tenth of the shop's traffic: half of it failing (5 of 110 requests/s)
# breaks payment's SLO but keeps the shop-wide ratio under ShopAvailabilityBurn's 10%.
TRAFFIC = {"frontend": 50.0, "cart": 50.0, "payment": 10.0, "idle": 0.0}


@dataclass
class Shop:
    prometheus: PrometheusProcess
    exporters: dict[str, ShopExporter]
    rules: dict[str, AlertRule]

    @property
    def url(self) -> str:
        return self.prometheus.url


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shop]:
    require_prometheus()
    exporters = {name: ShopExporter(name, rps=rps) for name, rps in TRAFFIC.items()}
    prometheus = None
    try:
        ports = {name: exporter.start() for name, exporter in exporters.items()}
        prometheus = start_prometheus(
            tmp_path_factory.mktemp("prometheus"), targets=ports, rule_files=[SHOP_RULES]
        )
        rules = {rule.name: rule for rule in load_rules([SHOP_RULES])}
        shop = Shop(prometheus=prometheus, exporters=exporters, rules=rules)
        with PrometheusClient(shop.url) as client:
            # Prometheus applies scrape targets ~5s after start; rate() then needs two samples.
            wait_for(
                lambda: all(check_alert(client, alert=r.name, expr=r.expr).met for r in rules.values()),
                timeout=45,
                what="every shop alert to be quiet with data",
            )
        yield shop
    finally:
        if prometheus is not None:
            prometheus.stop()
        for exporter in exporters.values():
            exporter.stop()


EXPERIMENT = """\
apiVersion: chaoslab/v1
kind: Experiment
metadata: {{name: {service}-delay}}
spec:
  service: {service}
  hypothesis: {{rules: ["{rules}"]}}
  fault:
    networkChaos: {{action: delay, mode: all, delay: {{latency: 100ms}}, duration: 15s}}
"""


def exported_experiment(service: str, prometheus_url: str, workdir: Path) -> dict[str, Any]:
    """`chaoslab export --to chaostoolkit` of a delay on ``service`` whose hypothesis comes
    from the shop's SLO rules."""
    workdir.mkdir(parents=True, exist_ok=True)
    source = workdir / f"{service}-delay.yaml"
    source.write_text(EXPERIMENT.format(service=service, rules=SHOP_RULES))
    result = subprocess.run(
        [sys.executable, "-m", "chaoslab", "export", "--to", "chaostoolkit", "--catalog", str(CATALOG),
         "--prometheus", prometheus_url, str(source)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    experiment = dict(json.loads(result.stdout))
    assert experiment["steady-state-hypothesis"]["probes"], "the export carries the hypothesis"
    return experiment


def chaos_run(experiment: dict[str, Any], workdir: Path) -> dict[str, Any]:
    """`chaos run` in a subprocess with dry actions (no cluster here: the fault is not injected,
    the hypothesis probes run for real). Returns the journal: `chaos run` exits 0 even when
    the steady state is not met."""
    workdir.mkdir(parents=True, exist_ok=True)
    source, journal = workdir / "experiment.json", workdir / "journal.json"
    source.write_text(json.dumps(experiment, indent=2))
    result = subprocess.run(
        [str(CHAOS), "--no-version-check", "--no-log-file", "--settings", str(workdir / "settings.yaml"),
         "run", "--dry", "actions", "--journal-path", str(journal), str(source)],
        cwd=workdir, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert journal.exists(), (
        f"chaos run wrote no journal (exit {result.returncode}):\n{result.stderr[-2000:]}"
    )
    return dict(json.loads(journal.read_text()))


def probe_outputs(journal: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {p["activity"]["name"]: p["output"] for p in journal["steady_states"]["before"]["probes"]}


# --- through `chaos run` ------------------------------------------------------------------------


def test_healthy_shop_meets_the_frontend_hypothesis(shop: Shop, tmp_path: Path) -> None:
    journal = chaos_run(exported_experiment("frontend", shop.url, tmp_path), tmp_path)

    assert journal["steady_states"]["before"]["steady_state_met"] is True
    assert journal["steady_states"]["after"]["steady_state_met"] is True
    outputs = probe_outputs(journal)
    assert set(outputs) == {
        "alert-FrontendHighErrorRate-quiet",
        "alert-FrontendHighLatencyP99-quiet",
        "guard-alerts-not-firing",
    }
    # The shop-wide alert is bound to no service: a guard, judged by its state only.
    guards = outputs.pop("guard-alerts-not-firing")
    assert (guards["verdict"], guards["firing"], guards["pending"]) == ("met", [], [])
    assert guards["checks"] == [{
        "alert": "ShopAvailabilityBurn", "state": "inactive", "met": True, "ignored": False,
        "reason": "guard alert ShopAvailabilityBurn is not firing",
    }]
    for output in outputs.values():
        assert output["verdict"] == "met"
        assert output["state"] == "inactive"
        assert output["condition_true"] is False
        assert output["margin"] > 0


def test_errors_break_the_hypothesis_while_the_alert_is_only_pending(shop: Shop, tmp_path: Path) -> None:
    payment = shop.exporters["payment"]
    rule, burn = shop.rules["PaymentHighErrorRate"], shop.rules["ShopAvailabilityBurn"]
    payment.set(error_ratio=0.5)
    try:
        with PrometheusClient(shop.url) as client:
            wait_for(
                lambda: not check_alert(client, alert=rule.name, expr=rule.expr).met,
                timeout=20,
                what="the payment error ratio to cross 5%",
            )
            journal = chaos_run(exported_experiment("payment", shop.url, tmp_path), tmp_path)
            states = wait_for(
                lambda: active_alerts(shop.url).get(rule.name), timeout=20, what=f"{rule.name} to be pending"
            )
            global_check = check_alert(client, alert=burn.name, expr=burn.expr)
    finally:
        payment.set(error_ratio=0.0)

    assert journal["steady_states"]["before"]["steady_state_met"] is False
    output = probe_outputs(journal)["alert-PaymentHighErrorRate-quiet"]
    assert output["verdict"] == "not-met"
    assert output["condition_true"] is True
    assert output["value"] > 0.05
    assert output["margin"] < 0
    assert "condition true" in output["reason"]
    # The probe said "not met" long before `for: 1m` lets Prometheus fire the alert.
    assert rule.for_s == 60
    assert states == {"pending"}
    # The global alert stayed quiet: payment carries a small share of the shop's traffic.
    assert global_check.met, global_check.reason


def test_stopped_prometheus_fails_the_hypothesis_with_the_reason(tmp_path: Path) -> None:
    require_prometheus()
    prometheus = start_prometheus(tmp_path / "prometheus", targets={})
    prometheus.stop()

    journal = chaos_run(exported_experiment("cart", prometheus.url, tmp_path), tmp_path / "run")

    assert journal["steady_states"]["before"]["steady_state_met"] is False
    outputs = probe_outputs(journal)
    assert outputs, "the cart hypothesis has probes"
    for output in outputs.values():
        assert output["verdict"] == "not-met"
        assert output["state"] == "unknown"
        assert f"cannot reach Prometheus at {prometheus.url}" in output["reason"]
        assert "refused" in output["reason"].lower()


# --- probe semantics against the live shop ---------------------------------------------------------


def test_the_comparison_left_hand_side_returns_data_for_every_shop_alert(shop: Shop) -> None:
    with PrometheusClient(shop.url) as client:
        for rule in shop.rules.values():
            cmp = comparison(rule.expr)
            assert cmp is not None, rule.name
            values = [s.value for s in client.query(cmp.lhs)]
            assert len(values) == 1, rule.name
            assert not math.isnan(values[0]), rule.name


@pytest.mark.parametrize(
    ("expr", "reason"),
    [
        ('sum(rate(http_requests_total{service="nosuch"}[10s])) > 0.05', "no data for"),
        ('up{job="nosuch"} == 0', "no data for"),
        (
            '(sum(rate(http_requests_total{service="idle", code=~"5.."}[10s])) or vector(0))'
            ' / sum(rate(http_requests_total{service="idle"}[10s])) > 0.05',
            "is NaN",
        ),
    ],
    ids=["no-series", "target-gone", "no-traffic"],
)
def test_no_data_is_never_a_pass(shop: Shop, expr: str, reason: str) -> None:
    with PrometheusClient(shop.url) as client:
        check = check_alert(client, alert="Probe", expr=expr)

    assert check.met is False
    assert check.condition_true is False  # Prometheus itself would stay silent here
    assert reason in check.reason


def test_alert_quiet_is_met_on_the_healthy_frontend(shop: Shop) -> None:
    rule = shop.rules["FrontendHighLatencyP99"]
    output = alert_quiet(rule.name, rule.expr, configuration={"prometheus_url": shop.url})

    assert output["verdict"] == "met"
    assert output["threshold"] == 1.0
    assert 0 < output["value"] < 1
    assert output["margin"] == pytest.approx(1 - output["value"])
    json.dumps(output, allow_nan=False)  # strict JSON for the journal


# --- the client against the live Prometheus -----------------------------------------------------------


def test_client_query_and_query_range(shop: Shop) -> None:
    from datetime import UTC, datetime, timedelta

    with PrometheusClient(shop.url) as client:
        up = client.query('up{job="frontend"}')
        scalar = client.query("1 + 1")
        end = datetime.now(UTC)
        series = client.query_range('up{job="cart"}', start=end - timedelta(seconds=5), end=end, step=1)

    assert [(s.labels["namespace"], s.value) for s in up] == [("shop", 1.0)]
    assert [(dict(s.labels), s.value) for s in scalar] == [({}, 2.0)]
    assert len(series) == 1
    assert series[0].labels["job"] == "cart"
    assert all(value == 1.0 for _ts, value in series[0].points)
    assert len(series[0].points) >= 2


def test_client_rules_are_the_loaded_alerting_rules(shop: Shop) -> None:
    with PrometheusClient(shop.url) as client:
        loaded = {rule.name: rule for rule in client.rules()}

    assert set(loaded) == set(shop.rules)
    burn = loaded["ShopAvailabilityBurn"]
    assert (burn.for_s, burn.group, burn.interval_s) == (60.0, "shop-global-slo", 1.0)
    assert burn.labels["severity"] == "critical"
    assert burn.source == str(SHOP_RULES)


def test_client_reports_a_bad_query_with_the_url(shop: Shop) -> None:
    with PrometheusClient(shop.url) as client, pytest.raises(PrometheusError) as info:
        client.query("sum(")

    assert info.value.url == shop.url
    assert shop.url in str(info.value)
    assert "bad_data" in str(info.value)


# --- the client and the probe against scripted servers -----------------------------------------------


def test_bearer_token_is_sent_and_never_shown() -> None:
    token = "s3cret-token"
    with ScriptedServer() as server:
        with PrometheusClient(server.url, token=token) as client:
            client.alerts()
        server.replies["/api/v1/alerts"] = Reply(status=401, body=b"unauthorized")
        output = alert_quiet(
            "Any",
            "up == 0",
            configuration={"prometheus_url": server.url},
            secrets={"prometheus_token": token},
        )

    assert [r.headers.get("Authorization") for r in server.requests] == [f"Bearer {token}"] * 2
    assert output["verdict"] == "not-met"
    assert "401" in output["reason"]
    assert "bearer token" in output["reason"]
    assert token not in json.dumps(output)


@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")
def test_tls_is_verified_against_the_ca_bundle(tmp_path: Path) -> None:
    cert, key = self_signed_cert(tmp_path)
    with ScriptedServer(tls=(cert, key)) as server:
        with PrometheusClient(server.url, ca_bundle=str(cert)) as client:
            trusted = client.alerts()
        with PrometheusClient(server.url, verify=False) as client:
            unchecked = client.alerts()
        with PrometheusClient(server.url) as client, pytest.raises(PrometheusError) as info:
            client.alerts()

    assert (trusted, unchecked) == ([], [])
    assert "TLS error" in str(info.value)
    assert "CERTIFICATE_VERIFY_FAILED" in str(info.value)


def test_a_slow_prometheus_times_out_as_not_met() -> None:
    with ScriptedServer({"/api/v1/alerts": Reply(delay_s=3.0)}) as server:
        started = time.monotonic()
        output = alert_quiet("Any", "up == 0", configuration={"prometheus_url": server.url}, timeout=0.3)
        elapsed = time.monotonic() - started

    assert output["verdict"] == "not-met"
    assert "no answer within 0.3s" in output["reason"]
    assert elapsed < 3.0  # ten times the timeout: the request was abandoned, not awaited


@pytest.mark.parametrize(
    ("replies", "state", "condition", "reason"),
    [
        ({"/api/v1/alerts": alerts(("Burn", "pending"))}, "pending", True, "alert Burn is pending"),
        ({"/api/v1/alerts": alerts(("Burn", "pending"), ("Burn", "firing"))}, "firing", True, "is firing"),
        ({"/api/v1/alerts": alerts(("Other", "firing"))}, "inactive", True, "condition true: 0.2 > 0.1"),
        (
            {
                ("/api/v1/query", "ratio"): Reply(
                    status=503, body={"status": "error", "errorType": "unavailable", "error": "overloaded"}
                )
            },
            "inactive",
            None,
            "answered 503",
        ),
        ({"/api/v1/alerts": Reply(status=200, body=b"<html>login</html>")}, "unknown", None, "not JSON"),
        (
            {"/api/v1/alerts": Reply(body={"status": "success", "data": {"alerts": ["Burn"]}})},
            "unknown",
            None,
            "malformed answer to an alerts request",
        ),
    ],
    ids=["pending", "firing-wins", "condition-true", "error-status", "not-json", "alert-not-an-object"],
)
def test_probe_is_not_met_unless_everything_is_quiet(
    replies: dict[Any, Reply], state: str, condition: bool | None, reason: str
) -> None:
    expr = "ratio > 0.1"
    scripted = {("/api/v1/query", expr): vector(({}, 0.2)), ("/api/v1/query", "ratio"): vector(({}, 0.2))}
    with ScriptedServer({**scripted, **replies}) as server, PrometheusClient(server.url) as client:
        check = check_alert(client, alert="Burn", expr=expr)

    assert (check.met, check.state, check.condition_true) == (False, state, condition)
    assert reason in check.reason


def test_probe_reports_the_worst_series_and_its_margin() -> None:
    expr = "latency < 0.5"  # threshold below: a value falling towards it is the danger
    scripted = {
        ("/api/v1/query", "latency"): vector(({"pod": "a"}, 0.9), ({"pod": "b"}, 0.6), ({"pod": "c"}, "NaN")),
    }
    with ScriptedServer(scripted) as server, PrometheusClient(server.url) as client:
        check = check_alert(client, alert="Slow", expr=expr, alert_states=[])

    assert (check.met, check.value, check.op, check.threshold) == (True, 0.6, "<", 0.5)
    assert check.margin == pytest.approx(0.1)
    assert [r.path for r in server.requests] == ["/api/v1/query", "/api/v1/query"]  # states were given


def test_probe_without_prometheus_url_is_not_met(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CHAOSLAB_PROMETHEUS_URL", raising=False)
    output = alert_quiet("Any", "up == 0", configuration={})

    assert output["verdict"] == "not-met"
    assert "prometheus_url" in output["reason"]
