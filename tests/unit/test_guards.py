"""Guard alerts: the `guards:` block, which alerts are guards, how they are judged (state
only, from the one alerts answer), the probe, the messages and `chaoslab hypothesis`."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from chaoslab.loader import load_catalog, load_gameday
from chaoslab.model import AlertRule, AlertState, Catalog, GuardPolicy, Selector, Service, Tier
from chaoslab.prometheus.client import PrometheusClient
from chaoslab.prometheus.guards import judge_guard
from chaoslab.prometheus.hypothesis import GUARDS_PROBE_NAME, bind_alerts, build_hypothesis
from chaoslab.prometheus.probes import guards_quiet
from chaoslab.runner.guards import baseline_reason
from chaoslab.runner.journal import probe_checks
from chaoslab.watch import build_conditions, evaluate, first_breach
from tests.support.files import (
    SHOP_SERVICES,
    assert_rejected,
    catalog_doc,
    experiment_doc,
    gameday_doc,
    run_cli,
    shop,
    write,
)
from tests.support.prometheus import Reply, ScriptedServer, alerts, vector

PAYMENT = Service(name="payment", namespace="shop", tier=Tier.CORE,
                  selector=Selector(label_selectors={"app": "payment"}))
SLO_LHS = 'sum(rate(errors{service="payment"}[10s]))'
SLO = AlertRule(name="PaymentErrors", expr=f"{SLO_LHS} > 1",
                labels={"severity": "page", "service": "payment"})
# Prometheus's answers while payment is healthy: the condition is false, its left-hand side 0.5.
HEALTHY = {("/api/v1/query", SLO.expr): vector(), ("/api/v1/query", SLO_LHS): vector(({}, 0.5))}


def guard_rule(name: str, severity: str = "critical", **labels: str) -> AlertRule:
    return AlertRule(name=name, expr=f'absent(up{{job="{name.lower()}"}} == 1)', for_s=900.0,
                     labels={"severity": severity, **labels})


def catalog(policy: GuardPolicy | None = None) -> Catalog:
    return Catalog(name="shop", services=(PAYMENT,), guards=policy or GuardPolicy())


def policy_from(tmp_path: Path, guards: dict[str, Any]) -> GuardPolicy:
    doc = catalog_doc()
    doc["spec"]["guards"] = guards
    path = write(tmp_path / "catalog.yaml", doc)
    return load_catalog(path).guards


# --- configuration --------------------------------------------------------------------------


def test_guards_default_to_critical_and_page() -> None:
    rules = [SLO, guard_rule("KubeSchedulerDown"), guard_rule("Paging", "page"), guard_rule("Info", "info"),
             guard_rule("Watchdog", "none")]
    found = [(b.rule.name, b.guard) for b in bind_alerts(PAYMENT, rules, catalog())]
    assert found == [("PaymentErrors", False), ("KubeSchedulerDown", True), ("Paging", True)]


def test_severities_and_matchers_choose_the_guards(tmp_path: Path) -> None:
    policy = policy_from(tmp_path, {"severities": ["critical", "warning"],
                                    "matchers": ['namespace=~"kube-.*"', "{team!=\"dev\"}"]})
    rules = [guard_rule("A", namespace="kube-system"), guard_rule("B", "warning", namespace="kube-public"),
             guard_rule("C", namespace="shop"), guard_rule("D", namespace="kube-system", team="dev"),
             guard_rule("E", "page", namespace="kube-system")]
    assert [b.rule.name for b in bind_alerts(PAYMENT, rules, catalog(policy)) if b.guard] == ["A", "B"]


def test_a_gameday_refines_its_catalogs_guards(tmp_path: Path) -> None:
    base = shop(tmp_path)
    doc = catalog_doc()
    doc["spec"]["guards"] = {"severities": ["critical"], "ignore": ["KubeSchedulerDown"]}
    write(base / "catalog.yaml", doc)
    write(base / "exp" / "a.yaml", experiment_doc("catalog-delay", service="catalog"))
    path = write(base / "gameday.yaml", gameday_doc(guards={"ignore": ['{alertname="X", cluster="eks"}']}))
    policy = load_gameday(path).catalog.guards
    assert policy.severities == ("critical",)
    assert [f.text for f in policy.ignore] == ["KubeSchedulerDown", '{alertname="X", cluster="eks"}']
    assert policy.ignores("X", {"cluster": "eks"})
    assert not policy.ignores("X", {"cluster": "gke"})


BAD_GUARDS = [
    ("unknown-field", {"ignores": ["X"]}, "spec.guards.ignores", "did you mean 'ignore'"),
    ("not-a-mapping", ["X"], "spec.guards", "must be a mapping"),
    ("no-severity", {"severities": []}, "spec.guards.severities", "lists no severity"),
    ("bad-matcher", {"matchers": ['team="a']}, "spec.guards.matchers[0]",
     "neither an alert name nor PromQL label matchers"),
    ("bad-regex", {"ignore": ['job=~"(("']}, "spec.guards.ignore[0]", "illegal regex"),
    ("not-a-string", {"ignore": [{"alert": "X"}]}, "spec.guards.ignore[0]", "must be an alert name"),
]


@pytest.mark.parametrize(("name", "guards", "field", "reason"), BAD_GUARDS, ids=[b[0] for b in BAD_GUARDS])
@pytest.mark.parametrize("kind", ["catalog", "gameday"])
def test_bad_guards_name_the_file_and_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str, name: str, guards: Any, field: str,
    reason: str,
) -> None:
    shop(tmp_path)
    write(tmp_path / "exp" / "a.yaml", experiment_doc("catalog-delay", service="catalog"))
    if kind == "catalog":
        spec = {"services": copy.deepcopy(SHOP_SERVICES), "guards": guards}
        path = write(tmp_path / "catalog.yaml", {**catalog_doc(), "spec": spec})
    else:
        path = write(tmp_path / "gameday.yaml", gameday_doc(guards=guards))
    assert_rejected(capsys, path, field, reason)


# --- judging -------------------------------------------------------------------------------


def state(name: str, value: str, **labels: str) -> AlertState:
    return AlertState(name=name, state=value, labels={"alertname": name, **labels},
                      active_at=datetime(2026, 12, 6, 10, 0, tzinfo=UTC))


@pytest.mark.parametrize(
    ("states", "ignore", "expected"),
    [
        ([], [], (True, "inactive", False)),  # no data: not firing
        ([state("G", "pending")], [], (True, "pending", False)),
        ([state("G", "firing")], [], (False, "firing", False)),
        ([state("G", "firing")], ["G"], (True, "firing", True)),
        ([state("G", "firing", namespace="dev")], ['namespace="dev"'], (True, "firing", True)),
        ([state("G", "firing", namespace="dev"), state("G", "firing", namespace="prod")], ['namespace="dev"'],
         (False, "firing", False)),
        ([state("Other", "firing")], [], (True, "inactive", False)),
    ],
    ids=["absent", "pending", "firing", "ignored-by-name", "ignored-by-labels", "one-instance-not-ignored",
         "another-alert"],
)
def test_a_guard_is_judged_by_its_state(
    states: list[AlertState], ignore: list[str], expected: tuple[bool, str, bool]
) -> None:
    from chaoslab.loader.guards import parse_filter

    check = judge_guard("G", states, ignore=[parse_filter(text) for text in ignore])
    assert (check.met, check.state, check.ignored) == expected
    assert check.guard
    assert not check.no_data


def test_guards_add_no_query_however_many_they_are() -> None:
    """One alerts request per evaluation, plus the SLO condition's own queries: the same
    count with 34 guards as with 300."""
    counts = {}
    for size in (34, 300):
        rules = [SLO, *(guard_rule(f"Guard{i}") for i in range(size))]
        firing = [(f"Guard{i}", "pending") for i in range(0, size, 3)]
        with ScriptedServer({"/api/v1/alerts": alerts(*firing), **HEALTHY}) as server:
            with PrometheusClient(server.url, token=None, timeout=5.0) as client:
                conditions = build_conditions(PAYMENT, rules, catalog())
                checks = evaluate(client, conditions)
            counts[size] = len(server.requests)
        assert sum(c.guard for c in checks) == size
        guards = [c for c in checks if c.guard]
        assert all(c.met for c in guards), [c.reason for c in guards if not c.met]
    assert counts[34] == counts[300] <= 3  # alerts + the SLO condition's batched query


def test_a_firing_guard_breaches_and_the_message_says_how_to_ignore_it() -> None:
    rules = [guard_rule("KubeSchedulerDown"), guard_rule("NodeRAIDDegraded")]
    conditions = build_conditions(PAYMENT, rules, catalog())
    replies = {"/api/v1/alerts": alerts(("KubeSchedulerDown", "firing"), ("NodeRAIDDegraded", "pending")),
               **HEALTHY}
    with ScriptedServer(replies) as server, PrometheusClient(server.url, token=None, timeout=5.0) as client:
        checks = evaluate(client, conditions)
    breach = first_breach(conditions, checks)
    assert breach is not None
    assert breach.condition.alert == "KubeSchedulerDown"
    assert breach.kind == "alert-state"
    assert breach.condition.breach_expr == 'ALERTS{alertname="KubeSchedulerDown", alertstate="firing"}'
    reason = baseline_reason(conditions, checks)
    assert reason.startswith("guard alert is firing: KubeSchedulerDown")
    assert "`guards: {ignore: [KubeSchedulerDown]}`" in reason
    assert "NodeRAIDDegraded" not in reason  # pending does not block


def test_an_slo_condition_without_data_still_fails() -> None:
    conditions = build_conditions(PAYMENT, [SLO, guard_rule("KubeSchedulerDown")], catalog())
    # Every query answers an empty vector.
    with ScriptedServer() as server, PrometheusClient(server.url, token=None, timeout=5.0) as client:
        checks = evaluate(client, conditions)
    slo, guard = checks
    assert not slo.met
    assert "no data for" in slo.reason
    assert guard.met
    assert baseline_reason(conditions, checks).startswith("PaymentErrors (payment): no data for")


# --- the Chaos Toolkit probe ----------------------------------------------------------------


def test_one_guards_probe_in_the_hypothesis_is_a_valid_chaos_toolkit_activity() -> None:
    from chaoslib.experiment import ensure_experiment_is_valid

    policy = GuardPolicy(ignore=GuardPolicy().ignore)
    rules = [SLO, *(guard_rule(f"Guard{i}") for i in range(40))]
    hypothesis = build_hypothesis(PAYMENT, rules, catalog(policy))
    names = [p["name"] for p in hypothesis["probes"]]
    assert names == ["alert-PaymentErrors-quiet", GUARDS_PROBE_NAME]
    provider = hypothesis["probes"][1]["provider"]
    assert (provider["func"], len(provider["arguments"]["alerts"])) == ("guards_quiet", 40)
    ensure_experiment_is_valid({"title": "t", "description": "d", "method": [],
                                "configuration": {"prometheus_url": "http://127.0.0.1:9"},
                                "steady-state-hypothesis": hypothesis})


def test_the_guards_probe_reads_states_once_and_reports_what_did_not_halt() -> None:
    replies = {"/api/v1/alerts": alerts(("A", "pending"), ("B", "firing"), ("C", "firing"))}
    with ScriptedServer(replies) as server:
        config = {"prometheus_url": server.url}
        held = guards_quiet(["A", "B", "C", "D"], ignore=["B", 'alertname="C"'], configuration=config)
        blocked = guards_quiet(["A", "B", "C"], ignore=["B"], configuration=config)
        assert len(server.requests) == 2
    assert (held["verdict"], held["pending"], held["ignored_firing"], held["firing"]) == \
        ("met", ["A"], ["B", "C"], [])
    assert (blocked["verdict"], blocked["firing"]) == ("not-met", ["C"])
    assert "guards: {ignore: [C]}" in blocked["reason"]
    checks = probe_checks({"probes": [{"output": blocked, "activity": {}, "end": None}]})
    assert [(c.alert, c.state, c.met, c.ignored, c.guard) for c in checks] == [
        ("A", "pending", True, False, True),
        ("B", "firing", True, True, True),
        ("C", "firing", False, False, True),
    ]


def test_the_guards_probe_without_prometheus_is_not_met() -> None:
    with ScriptedServer({"/api/v1/alerts": Reply(status=503, body={"status": "error"})}) as server:
        output = guards_quiet(["A"], configuration={"prometheus_url": server.url})
    assert output["verdict"] == "not-met"
    assert output["checks"][0]["state"] == "unknown"
    assert guards_quiet(["A"], configuration={})["reason"].startswith("no Prometheus to ask")


# --- chaoslab hypothesis ------------------------------------------------------------------------


def test_hypothesis_lists_slo_conditions_guards_ignored_and_what_does_not_halt(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = catalog_doc()
    doc["spec"]["guards"] = {"ignore": ["KubeControllerManagerDown"]}
    write(tmp_path / "catalog.yaml", doc)
    rules = write(tmp_path / "rules.yaml", {"groups": [{"name": "k", "rules": [
        {"alert": "PaymentErrors", "expr": 'up{job="payment"} == 0', "labels": {"severity": "page"}},
        {"alert": "KubeSchedulerDown", "expr": 'absent(up{job="kube-scheduler"} == 1)', "for": "15m",
         "labels": {"severity": "critical"}},
        {"alert": "KubeControllerManagerDown", "expr": 'absent(up{job="kube-controller-manager"} == 1)',
         "for": "15m", "labels": {"severity": "critical"}},
        {"alert": "Watchdog", "expr": "vector(1)", "labels": {"severity": "none"}},
        {"alert": "KubeletTooManyPods", "expr": "kubelet_running_pods > 100", "labels": {"severity": "info"}},
    ]}]})
    code, out, _ = run_cli(capsys, "hypothesis", "--rules", rules, "--service", "payment")
    assert code == 0
    text = out.splitlines()
    assert text[0] == "service payment (core): 3 alerts"
    assert text[2].startswith("SLO conditions (1)")
    assert text[4].split()[:2] == ["PaymentErrors", "explicit"]
    assert text[6].startswith("guards (2): bound to no service, severity critical|page; judged by their")
    assert [line.split()[:3] for line in text[8:10]] == [
        ["KubeSchedulerDown", "state", "15m"], ["KubeControllerManagerDown", "ignored", "15m"]]
    assert text[10] == "ignore: KubeControllerManagerDown (firing: recorded, never a halt)"
    assert text[12] == ("not halt conditions: 2 alerts bound to no service and not guards "
                        "(severity info, none): Watchdog, KubeletTooManyPods")


def test_the_live_view_shows_pending_and_ignored_guards() -> None:
    from chaoslab.cli.progress import worst_margin
    from chaoslab.loader.guards import parse_filter

    states = [state("KubeSchedulerDown", "pending"), state("KubeControllerManagerDown", "firing")]
    ignore = [parse_filter("KubeControllerManagerDown")]
    checks = tuple(judge_guard(name, states, ignore=ignore)
                   for name in ("KubeSchedulerDown", "KubeControllerManagerDown", "NodeRAIDDegraded"))
    assert worst_margin(checks) == ("3 alerts quiet; guards pending: KubeSchedulerDown; "
                                    "guards firing, ignored: KubeControllerManagerDown")


def test_the_run_record_and_the_report_list_guards_that_did_not_halt(tmp_path: Path) -> None:
    import json

    from chaoslab.loader.guards import parse_filter
    from chaoslab.model import ChaosKind, Mode, RunResult, StepResult, Verdict
    from chaoslab.report.markdown import render_markdown
    from chaoslab.report.record import run_to_dict, write_run

    states = [state("KubeSchedulerDown", "pending"), state("KubeControllerManagerDown", "firing")]
    ignore = [parse_filter("KubeControllerManagerDown")]
    names = ("KubeSchedulerDown", "KubeControllerManagerDown")
    seen = tuple(judge_guard(name, states, ignore=ignore) for name in names)
    at = datetime(2026, 12, 6, 10, 0, tzinfo=UTC)
    step = StepResult(step="catalog-delay", experiment="catalog-delay", service="catalog", tier=Tier.NON_CORE,
                      kind=ChaosKind.NETWORK_CHAOS, action="delay", mode=Mode.ALL, verdict=Verdict.HELD,
                      before=seen, guards=seen)
    result = RunResult(run_id="r", gameday="g", target="sandbox", started_at=at, ended_at=at,
                       verdict=Verdict.HELD, steps=(step,))
    doc = json.loads(write_run(result, tmp_path).read_text())["steps"][0]
    assert doc["guards"] == {"firing": [], "pending": ["KubeSchedulerDown"],
                             "ignored_firing": ["KubeControllerManagerDown"]}
    assert [(c["guard"], c["ignored"]) for c in doc["hypothesis"]["before"]] == [(True, False), (True, True)]
    assert ("- **catalog-delay**: firing but ignored (guards.ignore): `KubeControllerManagerDown`; "
            "pending (did not halt): `KubeSchedulerDown`") in render_markdown(run_to_dict(result))
