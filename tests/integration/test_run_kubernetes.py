"""`chaoslab run --target kubernetes` end to end: the real kubernetes client against the fake
API server and Chaos Mesh emulator, a real Prometheus scraping controllable exporters.

The exporters stand for the shop's services. A coupler makes the system react to faults
the way a weakness would: while a fault named in ``EFFECTS`` is injected, the services it
names answer a share of requests with 500.
"""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from chaoslab.model import EXPERIMENT_LABEL, RUN_ID_LABEL
from tests.fakes.chaos_mesh import CHAOS
from tests.fakes.kube_api import write_kubeconfig
from tests.fakes.kube_store import NETWORK_CHAOS, PROMETHEUS_RULES, Store
from tests.support.gameday import (
    SERVICES,
    cli_env,
    delay,
    describe,
    error_ratio,
    pod_kill,
    poll,
    read_run,
    run_cli,
    service_ratio,
    slo_rules,
    start_cli,
    stop_process,
    write_gameday,
)
from tests.support.kube import FakeCluster, network_delay, start_cluster, stop_cluster
from tests.support.prometheus import (
    PrometheusProcess,
    Reply,
    ScriptedServer,
    ShopExporter,
    free_port,
    instant,
    require_prometheus,
    start_prometheus,
    vector,
)

pytestmark = [pytest.mark.prometheus, pytest.mark.timeout(240)]

# While the fault of this experiment is in place, these services fail this share of requests.
EFFECTS = {"payment-kill": {"payment": 0.5, "cart": 0.5}}


def k8s_run(*args: str) -> list[str]:
    """``chaoslab run --target kubernetes`` with ``args``."""
    return ["run", "--target", "kubernetes", *args]


class Coupler:
    """Polls the fake cluster: an injected fault named in ``effects`` sets its error ratios."""

    def __init__(
        self, store: Store, exporters: Mapping[str, ShopExporter], effects: Mapping[str, Mapping[str, float]]
    ) -> None:
        self.store, self.exporters, self.effects = store, exporters, effects
        self._stop = threading.Event()
        self._active: frozenset[str] = frozenset()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def start(self) -> Coupler:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _injected(self) -> frozenset[str]:
        found = set()
        for obj in self.store.all_of(CHAOS):
            experiment = obj["metadata"].get("labels", {}).get(EXPERIMENT_LABEL)
            conditions = {c["type"]: c["status"] for c in obj.get("status", {}).get("conditions", [])}
            if (
                experiment in self.effects
                and conditions.get("AllInjected") == "True"
                and not obj["metadata"].get("deletionTimestamp")
            ):
                found.add(experiment)
        return frozenset(found)

    def _loop(self) -> None:
        while not self._stop.wait(0.02):
            active = self._injected()
            if active == self._active:
                continue
            self._active = active
            ratios = dict.fromkeys(self.exporters, 0.0)
            for experiment in active:
                ratios.update(self.effects[experiment])
            for name, exporter in self.exporters.items():
                exporter.set(error_ratio=ratios[name])


@dataclass
class Shop:
    cluster: FakeCluster
    prometheus: PrometheusProcess
    exporters: dict[str, ShopExporter]
    kubeconfig: Path
    root: Path

    def env(self) -> dict[str, str]:
        return cli_env(KUBECONFIG=str(self.kubeconfig))

    def healthy(self) -> None:
        """Every service serving without errors, and Prometheus seeing it."""
        for exporter in self.exporters.values():
            exporter.set(error_ratio=0.0)
        exprs = [f"{error_ratio()} == 0", *(f"{service_ratio(n)} == 0" for n in self.exporters)]
        poll(
            lambda: all(instant(self.prometheus.url, e) for e in exprs),
            timeout=30,
            what="a healthy shop in Prometheus",
            interval=0.2,
        )

    def chaos(self) -> list[str]:
        return self.cluster.chaos_names()


@pytest.fixture(scope="module", name="shop")  # by name: test_readiness_kubernetes shares it
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shop]:
    require_prometheus()
    root = tmp_path_factory.mktemp("k8s-run")
    exporters = {name: ShopExporter(name) for name, _tier in SERVICES}
    for exporter in exporters.values():
        exporter.start()
    prometheus = cluster = coupler = None
    try:
        prometheus = start_prometheus(root / "prometheus", targets={n: e.port for n, e in exporters.items()})
        cluster = start_cluster()
        coupler = Coupler(cluster.store, exporters, EFFECTS).start()
        yield Shop(
            cluster=cluster,
            prometheus=prometheus,
            exporters=exporters,
            kubeconfig=write_kubeconfig(root, cluster.url),
            root=root,
        )
    finally:
        if coupler is not None:
            coupler.stop()
        if cluster is not None:
            stop_cluster(cluster)
        if prometheus is not None:
            prometheus.stop()
        for exporter in exporters.values():
            exporter.stop()


def _ts(text: str) -> datetime:
    return datetime.fromisoformat(text)


def test_gameday_holds_non_core_halts_the_core_breach_and_skips_the_rest(shop: Shop, tmp_path: Path) -> None:
    shop.healthy()
    gameday = write_gameday(
        tmp_path,
        {
            "catalog-delay": delay("catalog"),
            "recommendation-delay": delay("recommendation"),
            "payment-kill": pod_kill("payment", duration="60s"),
            "cart-delay": delay("cart"),
        },
    )
    reports, junit = tmp_path / "reports", tmp_path / "junit.xml"
    started = time.monotonic()
    result = run_cli(
        k8s_run("--prometheus", shop.prometheus.url, "--yes", "--reports", str(reports), "--junit",
                str(junit), str(gameday)),
        env=shop.env(),
        cwd=tmp_path,
    )
    elapsed = time.monotonic() - started
    assert result.returncode == 1, describe(result)
    run = read_run(reports)
    verdicts = {s["experiment"]: s["verdict"] for s in run["steps"]}
    assert verdicts == {
        "catalog-delay": "held",
        "recommendation-delay": "held",
        "payment-kill": "halted",
        "cart-delay": "skipped",
    }, describe(result)
    assert run["verdict"] == "halted"
    kill = next(s for s in run["steps"] if s["experiment"] == "payment-kill")
    halt = kill["halt"]
    assert any(name in halt["condition"] for name in ("PaymentErrors", "CartErrors", "ShopErrorBurn"))
    assert halt["breach_at"] is not None, describe(result)
    assert _ts(halt["breach_at"]) <= _ts(halt["detected_at"]) <= _ts(halt["removed_at"])
    assert elapsed < 60 + 60, "the 60 s pod-kill was not cut short by the halt"
    assert kill["recovery_s"] is not None
    skipped = next(s for s in run["steps"] if s["experiment"] == "cart-delay")
    assert "payment-kill" in skipped["reason"]
    assert shop.chaos() == []
    for step in run["steps"][:3]:
        assert (reports / run["run_id"] / step["journal"]).is_file()
    assert (reports / run["run_id"] / "report.md").is_file()
    assert "payment-kill" in (reports / run["run_id"] / "report.html").read_text()
    assert run["run_id"] in (reports / "index.html").read_text()
    junit_text = junit.read_text()
    assert junit_text.count("<testcase") == 4
    assert 'failures="1"' in junit_text
    assert "verdict" in result.stdout


@pytest.mark.parametrize(
    "signals",
    [(signal.SIGTERM,), (signal.SIGINT,), (signal.SIGINT, signal.SIGINT), (signal.SIGTERM, signal.SIGINT)],
    ids=["SIGTERM", "SIGINT", "double-Ctrl-C", "SIGTERM-then-SIGINT"],
)
def test_signal_mid_hold_removes_the_fault_and_exits_3(
    shop: Shop, tmp_path: Path, signals: tuple[signal.Signals, ...]
) -> None:
    """Also a second signal right after the first (an impatient Ctrl-C): the removal still
    completes, and the exit code is still 3, not death by the second signal."""
    sig = signals[0]
    shop.healthy()
    write_gameday(tmp_path, {"catalog-long": delay("catalog", duration="120s")})
    reports = tmp_path / "reports"
    log = tmp_path / "run.log"
    process = start_cli(
        k8s_run("--prometheus", shop.prometheus.url, "--reports", str(reports),
                str(tmp_path / "exp" / "catalog-long.yaml")),
        env=shop.env(),
        cwd=tmp_path,
        log=log,
    )
    try:
        poll(lambda: "holding the fault" in log.read_text(), timeout=60, what="the hold")
        assert shop.chaos()
        sent = time.monotonic()
        for each in signals:
            process.send_signal(each)
        poll(lambda: not shop.chaos(), timeout=30, what="the fault removed")
        removal_s = time.monotonic() - sent
        assert process.wait(timeout=60) == 3, log.read_text()
    finally:
        stop_process(process)
    assert removal_s < 20.0, f"removal took {removal_s:.2f}s (goal 2 s)"
    step = read_run(reports)["steps"][0]
    assert step["verdict"] == "error"
    assert sig.name in step["reason"]


@contextlib.contextmanager
def slow_injection(shop: Shop, seconds: float) -> Iterator[None]:
    """Chaos Mesh takes ``seconds`` to inject (a node's chaos-daemon that does not answer)."""
    before = shop.cluster.emulator.inject_delay
    shop.cluster.emulator.inject_delay = seconds
    try:
        yield
    finally:
        shop.cluster.emulator.inject_delay = before


SLOW_INJECTION_S = 60.0
# chaoslab would otherwise give up on the injection (and remove it) after 30 s by itself.
SLOW_ENV = {"CHAOSLAB_INJECT_TIMEOUT_S": "120"}


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_during_a_slow_injection_removes_the_fault_at_once(
    shop: Shop, tmp_path: Path, sig: signal.Signals
) -> None:
    """The main thread waits in the backend for the fault to take hold; the fault must not
    wait with it."""
    shop.healthy()
    write_gameday(tmp_path, {"catalog-slow": delay("catalog", duration="120s")})
    reports = tmp_path / "reports"
    log = tmp_path / "run.log"
    with slow_injection(shop, SLOW_INJECTION_S):
        process = start_cli(
            ["run", "--target", "kubernetes", "--prometheus", shop.prometheus.url, "--reports", str(reports),
             str(tmp_path / "exp" / "catalog-slow.yaml")],
            env={**shop.env(), **SLOW_ENV}, cwd=tmp_path, log=log,
        )  # fmt: skip
        try:
            poll(shop.chaos, timeout=60, what="the fault being injected")
            assert "injecting the fault" in log.read_text()
            sent = time.monotonic()
            process.send_signal(sig)
            poll(lambda: not shop.chaos(), timeout=SLOW_INJECTION_S / 2, what="the fault removed")
            removal_s = time.monotonic() - sent
            assert process.wait(timeout=60) == 3, log.read_text()
        finally:
            stop_process(process)
    assert removal_s < 20.0, f"removal took {removal_s:.2f}s (goal 2 s)"
    step = read_run(reports)["steps"][0]
    assert step["verdict"] == "error", step["reason"]
    assert f"interrupted by {sig.name}" in step["reason"]


def test_a_breach_during_a_slow_injection_halts_it(shop: Shop, tmp_path: Path) -> None:
    """The part of a fault already in place breaks cart before Chaos Mesh reports the whole
    fault injected: the halt must not wait for the injection to finish."""
    shop.healthy()
    write_gameday(tmp_path, {"catalog-slow": delay("catalog", duration="120s")})
    reports = tmp_path / "reports"
    log = tmp_path / "run.log"
    with slow_injection(shop, SLOW_INJECTION_S):
        process = start_cli(
            ["run", "--target", "kubernetes", "--prometheus", shop.prometheus.url, "--reports", str(reports),
             str(tmp_path / "exp" / "catalog-slow.yaml")],
            env={**shop.env(), **SLOW_ENV}, cwd=tmp_path, log=log,
        )  # fmt: skip
        try:
            poll(shop.chaos, timeout=60, what="the fault being injected")
            shop.exporters["cart"].set(error_ratio=0.5)
            poll(lambda: not shop.chaos(), timeout=SLOW_INJECTION_S / 2, what="the fault removed")
            shop.exporters["cart"].set(error_ratio=0.0)  # the fault is gone: so is its effect
            assert process.wait(timeout=90) == 1, log.read_text()
        finally:
            shop.exporters["cart"].set(error_ratio=0.0)
            stop_process(process)
    step = read_run(reports)["steps"][0]
    assert step["verdict"] == "halted", step["reason"]
    halt = step["halt"]
    assert "CartErrors" in halt["condition"] or "ShopErrorBurn" in halt["condition"]
    assert halt["removed_at"] is not None
    assert (_ts(halt["removed_at"]) - _ts(halt["detected_at"])).total_seconds() < 10.0


def test_prometheus_unreachable_at_start_exits_3_and_injects_nothing(shop: Shop, tmp_path: Path) -> None:
    write_gameday(tmp_path, {"catalog-delay": delay("catalog")})
    since = shop.cluster.store.rv
    reports = tmp_path / "reports"
    result = run_cli(
        ["run", "--target", "kubernetes", "--prometheus", f"http://127.0.0.1:{free_port()}",
         "--reports", str(reports), str(tmp_path / "exp" / "catalog-delay.yaml")],
        env=shop.env(), cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 3, describe(result)
    step = read_run(reports)["steps"][0]
    assert step["verdict"] == "error"
    assert "cannot evaluate the hypothesis" in step["reason"]
    assert "nothing was injected" in step["reason"]
    assert [e for e in shop.cluster.store.events_after(since) if e.resource in CHAOS] == []


def test_kubernetes_unreachable_exits_3_in_one_line(shop: Shop, tmp_path: Path) -> None:
    shop.healthy()
    write_gameday(tmp_path, {"catalog-delay": delay("catalog")})
    kubeconfig = write_kubeconfig(tmp_path, f"http://127.0.0.1:{free_port()}")
    reports = tmp_path / "reports"
    result = run_cli(
        ["run", "--target", "kubernetes", "--prometheus", shop.prometheus.url, "--reports", str(reports),
         str(tmp_path / "exp" / "catalog-delay.yaml")],
        env=cli_env(KUBECONFIG=str(kubeconfig)), cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 3, describe(result)
    step = read_run(reports)["steps"][0]
    assert step["verdict"] == "error"
    assert "cannot reach the Kubernetes API" in step["reason"]
    assert "Traceback" not in result.stderr
    assert "Retrying" not in result.stderr  # the client's retry warnings: noise, the reason says it


def test_unwritable_reports_exit_2_before_anything_is_injected(shop: Shop, tmp_path: Path) -> None:
    """Found out only once the run is over, the fault would have been injected for nothing
    and the run would end in a traceback (exit 1, "a weakness was found")."""
    write_gameday(tmp_path, {"catalog-delay": delay("catalog")})
    (tmp_path / "a-file").write_text("")
    since = shop.cluster.store.rv
    for flag, value in (("--reports", "a-file/reports"), ("--junit", "a-file/junit.xml")):
        result = run_cli(
            ["run", "--target", "kubernetes", "--prometheus", shop.prometheus.url, flag, value,
             str(tmp_path / "exp" / "catalog-delay.yaml")],
            env=shop.env(), cwd=tmp_path,
        )  # fmt: skip
        assert result.returncode == 2, describe(result)
        assert flag in result.stderr
        assert "Traceback" not in result.stderr
    assert [e for e in shop.cluster.store.events_after(since) if e.resource in CHAOS] == []


def _rule_exprs() -> list[str]:
    return [rule["expr"] for group in slo_rules()["groups"] for rule in group["rules"]]


@pytest.mark.parametrize(
    ("answer", "code", "verdict"),
    [("error-status", 3, "error"), ("nan", 1, "baseline-not-met"), ("empty", 1, "baseline-not-met")],
)
def test_a_hypothesis_that_cannot_be_evaluated_is_never_a_pass(
    shop: Shop, tmp_path: Path, answer: str, code: int, verdict: str
) -> None:
    """A Prometheus that answers with an error status, NaN (no traffic in the window) or
    nothing at all: nothing is injected, and the step is never held."""
    replies: dict[Any, Reply] = {}
    if answer == "error-status":
        bad = {"status": "error", "errorType": "execution", "error": "query timed out"}
        replies["/api/v1/query"] = Reply(status=422, body=bad)
    elif answer == "nan":
        # The comparison itself returns nothing (NaN > x is false); its left side is NaN.
        replies["/api/v1/query"] = vector(({}, "NaN"))
        replies.update({("/api/v1/query", expr): vector() for expr in _rule_exprs()})
    write_gameday(tmp_path, {"catalog-delay": delay("catalog")})
    since = shop.cluster.store.rv
    reports = tmp_path / "reports"
    with ScriptedServer(replies) as prometheus:
        result = run_cli(
            ["run", "--target", "kubernetes", "--prometheus", prometheus.url, "--reports", str(reports),
             str(tmp_path / "exp" / "catalog-delay.yaml")],
            env=shop.env(), cwd=tmp_path,
        )  # fmt: skip
    assert result.returncode == code, describe(result)
    step = read_run(reports)["steps"][0]
    assert step["verdict"] == verdict, step["reason"]
    slo = [check for check in step["hypothesis"]["before"] if not check["guard"]]
    assert slo
    assert not any(check["met"] for check in slo)
    # The guard (ShopErrorBurn, bound to no service) is judged by its state: not listed, not firing.
    assert all(check["met"] for check in step["hypothesis"]["before"] if check["guard"])
    assert [e for e in shop.cluster.store.events_after(since) if e.resource in CHAOS] == []


def test_a_signal_before_the_first_step_skips_every_step_and_writes_the_record(
    shop: Shop, tmp_path: Path
) -> None:
    """SIGTERM while chaoslab still asks Prometheus for its rules: no traceback, no death
    by signal, every step skipped with the reason, run.json written, exit 3."""
    write_gameday(tmp_path, {"catalog-delay": delay("catalog")})
    exp = tmp_path / "exp" / "catalog-delay.yaml"
    doc = yaml.safe_load(exp.read_text())
    del doc["spec"]["hypothesis"]  # no rule files: the rules Prometheus has loaded are used
    exp.write_text(yaml.safe_dump(doc))
    rule = {"type": "alerting", "name": "ShopErrorBurn", "query": _rule_exprs()[-1], "duration": 60,
            "labels": {"severity": "critical"}}
    rules = {"status": "success", "data": {"groups": [{"name": "slo", "file": "slo.yaml", "rules": [rule]}]}}
    since = shop.cluster.store.rv
    reports = tmp_path / "reports"
    log = tmp_path / "run.log"
    with ScriptedServer({"/api/v1/rules": Reply(body=rules, delay_s=3.0)}) as prometheus:
        process = start_cli(
            ["run", "--target", "kubernetes", "--prometheus", prometheus.url, "--reports", str(reports),
             str(exp)],
            env=shop.env(), cwd=tmp_path, log=log,
        )  # fmt: skip
        try:
            poll(lambda: any(r.path == "/api/v1/rules" for r in prometheus.requests), timeout=60,
                 what="the rules request")  # fmt: skip
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=60) == 3, log.read_text()
        finally:
            stop_process(process)
    assert "Traceback" not in log.read_text()
    step = read_run(reports)["steps"][0]
    assert step["verdict"] == "skipped"
    assert "interrupted by SIGTERM" in step["reason"]
    assert [e for e in shop.cluster.store.events_after(since) if e.resource in CHAOS] == []


def test_baseline_not_met_injects_nothing(shop: Shop, tmp_path: Path) -> None:
    shop.healthy()
    write_gameday(tmp_path, {"catalog-delay": delay("catalog")})
    shop.exporters["cart"].set(error_ratio=0.5)
    try:
        poll(
            lambda: instant(shop.prometheus.url, f"{service_ratio('cart')} > 0.05"),
            timeout=30,
            what="cart errors in Prometheus",
            interval=0.2,
        )
        since = shop.cluster.store.rv
        reports = tmp_path / "reports"
        result = run_cli(
            k8s_run("--prometheus", shop.prometheus.url, "--reports", str(reports),
                    str(tmp_path / "exp" / "catalog-delay.yaml")),
            env=shop.env(),
            cwd=tmp_path,
        )
    finally:
        shop.exporters["cart"].set(error_ratio=0.0)
    assert result.returncode == 1, describe(result)
    step = read_run(reports)["steps"][0]
    assert step["verdict"] == "baseline-not-met"
    assert "CartErrors" in step["reason"]
    created = [e for e in shop.cluster.store.events_after(since) if e.resource in CHAOS]
    assert created == []  # nothing was ever created, not merely removed again


def test_dry_run_changes_nothing(shop: Shop, tmp_path: Path) -> None:
    shop.healthy()
    gameday = write_gameday(
        tmp_path, {"catalog-delay": delay("catalog"), "payment-kill": pod_kill("payment")}
    )
    since = shop.cluster.store.rv
    reports = tmp_path / "reports"
    result = run_cli(
        k8s_run("--prometheus", shop.prometheus.url, "--dry-run", "--reports", str(reports), str(gameday)),
        env=shop.env(),
        cwd=tmp_path,
    )
    assert result.returncode == 0, describe(result)
    assert "dry run" in result.stdout
    assert shop.cluster.store.events_after(since) == []
    assert not reports.exists()


def test_core_steps_need_yes_without_a_terminal(shop: Shop, tmp_path: Path) -> None:
    gameday = write_gameday(tmp_path, {"payment-kill": pod_kill("payment")})
    since = shop.cluster.store.rv
    result = run_cli(
        k8s_run("--prometheus", shop.prometheus.url, "--reports", str(tmp_path / "reports"), str(gameday)),
        env=shop.env(),
        cwd=tmp_path,
    )
    assert result.returncode == 2, describe(result)
    assert "--yes" in result.stderr
    assert "Traceback" not in result.stderr
    assert shop.cluster.store.events_after(since) == []


def test_orphans_of_earlier_runs_are_reported_and_removed_on_request(shop: Shop, tmp_path: Path) -> None:
    shop.healthy()
    orphan = network_delay(name="old-delay-1a2b", app="recommendation", experiment="old-delay")
    orphan["metadata"]["labels"][RUN_ID_LABEL] = "20261126T090000Z-1a2b"
    shop.cluster.store.create(NETWORK_CHAOS, "shop", orphan)
    poll(shop.chaos, timeout=10, what="the orphan")
    write_gameday(tmp_path, {"catalog-delay": delay("catalog", duration="1s")})
    args = k8s_run("--prometheus", shop.prometheus.url, "--dry-run",
                   str(tmp_path / "exp" / "catalog-delay.yaml"))
    warned = run_cli(args, env=shop.env(), cwd=tmp_path)
    assert warned.returncode == 0, describe(warned)
    assert "old-delay-1a2b" in warned.stdout
    assert shop.chaos() == ["old-delay-1a2b"]
    removed = run_cli(
        [*args[:-2], "--reports", str(tmp_path / "reports"), "--cleanup-orphans", args[-1]],
        env=shop.env(),
        cwd=tmp_path,
    )
    assert removed.returncode == 0, describe(removed)
    assert shop.chaos() == []


def test_prometheus_killed_mid_hold_halts_and_exits_3(shop: Shop, tmp_path: Path) -> None:
    shop.healthy()
    second = start_prometheus(tmp_path / "prometheus", targets={n: e.port for n, e in shop.exporters.items()})
    try:
        poll(
            lambda: all(instant(second.url, f"{service_ratio(n)} == 0") for n in shop.exporters),
            timeout=30,
            what="the second Prometheus to see traffic",
            interval=0.2,
        )
        write_gameday(tmp_path, {"catalog-long": delay("catalog", duration="120s")})
        reports = tmp_path / "reports"
        log = tmp_path / "run.log"
        process = start_cli(
            k8s_run("--prometheus", second.url, "--reports", str(reports),
                    str(tmp_path / "exp" / "catalog-long.yaml")),
            env=shop.env(),
            cwd=tmp_path,
            log=log,
        )
        try:
            poll(lambda: "holding the fault" in log.read_text(), timeout=60, what="the hold")
            second.process.kill()
            second.process.wait(timeout=10)
            poll(lambda: not shop.chaos(), timeout=30, what="the fault removed")
            assert process.wait(timeout=60) == 3, log.read_text()
        finally:
            stop_process(process)
    finally:
        second.stop()
    step = read_run(reports)["steps"][0]
    assert step["verdict"] == "error"
    assert "Prometheus unreachable" in step["reason"]


def test_outside_the_run_window_every_step_is_skipped(shop: Shop, tmp_path: Path) -> None:
    today = datetime.now(UTC).strftime("%a").lower()
    other_days = [d for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun") if d != today]
    window = {"days": other_days, "from": "00:00", "to": "23:59", "timezone": "UTC"}
    gameday = write_gameday(tmp_path, {"catalog-delay": delay("catalog")}, extra={"window": window})
    since = shop.cluster.store.rv
    reports = tmp_path / "reports"
    result = run_cli(
        k8s_run("--prometheus", shop.prometheus.url, "--reports", str(reports), str(gameday)),
        env=shop.env(),
        cwd=tmp_path,
    )
    assert result.returncode == 0, describe(result)
    run = read_run(reports)
    assert run["verdict"] == "skipped"
    assert "outside the run window" in run["steps"][0]["reason"]
    assert shop.cluster.store.events_after(since) == []


def test_a_selector_matching_no_pod_is_an_infrastructure_error(shop: Shop, tmp_path: Path) -> None:
    shop.healthy()
    ghost = {
        "target": {"namespace": "shop", "tier": "non-core", "selector": {"labelSelectors": {"app": "ghost"}}},
        "fault": delay("catalog")["fault"],
    }
    write_gameday(tmp_path, {"ghost-delay": ghost})
    since = shop.cluster.store.rv
    reports = tmp_path / "reports"
    result = run_cli(
        k8s_run("--prometheus", shop.prometheus.url, "--reports", str(reports),
                str(tmp_path / "exp" / "ghost-delay.yaml")),
        env=shop.env(),
        cwd=tmp_path,
    )
    assert result.returncode == 3, describe(result)
    step = read_run(reports)["steps"][0]
    assert step["verdict"] == "error"
    assert "app=ghost" in step["reason"]
    assert [e for e in shop.cluster.store.events_after(since) if e.resource in CHAOS] == []


def test_a_failed_injection_is_removed_and_exits_3(shop: Shop, tmp_path: Path) -> None:
    shop.healthy()
    shop.cluster.emulator.fail_injection("recommendation-broken*", "unable to flush ip sets for pod")
    write_gameday(tmp_path, {"recommendation-broken": delay("recommendation", duration="30s")})
    reports = tmp_path / "reports"
    result = run_cli(
        k8s_run("--prometheus", shop.prometheus.url, "--reports", str(reports),
                str(tmp_path / "exp" / "recommendation-broken.yaml")),
        env={**shop.env(), "CHAOSLAB_INJECT_TIMEOUT_S": "2"},  # Chaos Mesh retries until then
        cwd=tmp_path,
    )
    assert result.returncode == 3, describe(result)
    step = read_run(reports)["steps"][0]
    assert step["verdict"] == "error"
    assert "injection failed" in step["reason"]
    assert "unable to flush ip sets" in step["reason"]
    assert shop.chaos() == []


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_a_fault_that_cannot_be_removed_exits_4_naming_it(shop: Shop, tmp_path: Path, fmt: str) -> None:
    """Also with --format json: stdout holds the record only, stderr names what may remain."""
    shop.healthy()
    shop.cluster.emulator.stick_finalizer("catalog-stuck*")
    write_gameday(tmp_path, {"catalog-stuck": delay("catalog", duration="1s")})
    reports = tmp_path / "reports"
    try:
        result = run_cli(
            k8s_run("--prometheus", shop.prometheus.url, "--format", fmt, "--reports", str(reports),
                    str(tmp_path / "exp" / "catalog-stuck.yaml")),
            env={**shop.env(), "CHAOSLAB_REMOVE_TIMEOUT_S": "1"},
            cwd=tmp_path,
        )
        assert result.returncode == 4, describe(result)
        assert "catalog-stuck" in result.stderr
        assert "may remain" in result.stderr
        if fmt == "json":
            assert json.loads(result.stdout) == read_run(reports)
        step = read_run(reports)["steps"][0]
        assert step["verdict"] == "error"
        assert "cleanup failed" in step["reason"]
    finally:
        shop.cluster.emulator.stuck.clear()
        for name in shop.chaos():
            shop.cluster.store.mutate(
                NETWORK_CHAOS, "shop", name, lambda o: o["metadata"].__setitem__("finalizers", [])
            )
        poll(lambda: not shop.chaos(), timeout=10, what="the stuck object released")


def test_gameday_rules_from_a_k8s_address_judge_the_run(shop: Shop, tmp_path: Path) -> None:
    """spec.rules may name PrometheusRule objects in the cluster (k8s://NAMESPACE/), for
    `run` as for `export` and `hypothesis`: they are read through the Kubernetes API."""
    shop.healthy()
    rule = {"apiVersion": "monitoring.coreos.com/v1", "kind": "PrometheusRule",
            "metadata": {"name": "shop-slo", "namespace": "monitoring"}, "spec": slo_rules()}
    shop.cluster.store.create(PROMETHEUS_RULES, "monitoring", rule)
    try:
        gameday = write_gameday(tmp_path, {"catalog-delay": delay("catalog")},
                                extra={"rules": ["k8s://monitoring/"]})
        reports = tmp_path / "reports"
        result = run_cli(k8s_run("--prometheus", shop.prometheus.url, "--yes", "--reports", str(reports),
                                 str(gameday)), env=shop.env(), cwd=tmp_path)
    finally:
        shop.cluster.store.delete(PROMETHEUS_RULES, "monitoring", "shop-slo")
    assert result.returncode == 0, describe(result)
    [step] = read_run(reports)["steps"]
    assert step["verdict"] == "held"
    judged = {check["alert"] for check in step["hypothesis"]["before"]}
    assert "ShopErrorBurn" in judged, step["hypothesis"]
    assert shop.chaos() == []


API_RUN = """
import sys

import chaoslab

experiment = chaoslab.load(sys.argv[1])
result = chaoslab.run(experiment, target="kubernetes", prometheus=sys.argv[2], reports=sys.argv[3])
print("result:", result.interrupted, result.steps[0].verdict.value, flush=True)
"""


def test_the_python_api_run_removes_the_fault_on_sigint(shop: Shop, tmp_path: Path) -> None:
    """chaoslab.run() called from a program's main thread handles SIGINT as the CLI does:
    the fault goes at once, the result says why, and Python is not killed."""
    shop.healthy()
    write_gameday(tmp_path, {"catalog-long": delay("catalog", duration="120s")})
    script = tmp_path / "api_run.py"
    script.write_text(API_RUN)
    process = subprocess.Popen(
        [sys.executable, str(script), str(tmp_path / "exp" / "catalog-long.yaml"), shop.prometheus.url,
         str(tmp_path / "reports")],
        env=shop.env(), cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        poll(lambda: shop.chaos(), timeout=60, what="the fault injected", interval=0.1)
        process.send_signal(signal.SIGINT)
        poll(lambda: not shop.chaos(), timeout=30, what="the fault removed", interval=0.1)
        out, err = process.communicate(timeout=60)
    finally:
        stop_process(process)
    assert process.returncode == 0, err
    assert "result: SIGINT error" in out, out + err
    step = read_run(tmp_path / "reports")["steps"][0]
    assert "SIGINT" in step["reason"]
