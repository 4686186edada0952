"""Binding alert rules to services, the hypotheses they make, and `chaoslab hypothesis`."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from chaoslab.cli.main import main
from chaoslab.errors import PlanError
from chaoslab.model import AlertRule, Catalog, Selector, Service, Tier
from chaoslab.prometheus.bindings import conditions_for_catalog
from chaoslab.prometheus.hypothesis import (
    Binding,
    bind_alerts,
    build_hypothesis,
    comparison,
)
from chaoslab.prometheus.rules import load_rules

REPO = Path(__file__).resolve().parents[2]
SHOP_RULES = REPO / "experiments" / "rules" / "shop-slo.yaml"


def svc(name: str, *, alerts: tuple[str, ...] = (), tier: Tier = Tier.CORE) -> Service:
    return Service(
        name=name,
        namespace="shop",
        tier=tier,
        selector=Selector(label_selectors={"app": name}),
        alerts=alerts,
    )


def rule(name: str, expr: str = "vector(1) > 0", **labels: str) -> AlertRule:
    return AlertRule(name=name, expr=expr, labels=labels, source="test.yaml")


CATALOG = Catalog(
    name="shop",
    services=(
        svc("frontend", alerts=("CheckoutJourney",)),
        svc("catalog", tier=Tier.NON_CORE),
        svc("cart"),
        svc("payment"),
    ),
)


def member(name: str) -> Service:
    found = CATALOG.get(name)
    assert found is not None
    return found


# (rule, the services whose hypothesis holds it with that reason; every other service: absent)
BINDING_CASES = [
    pytest.param(rule("CheckoutJourney", "probe_success{journey='checkout'} < 1", severity="warning"),
                 {"frontend": "explicit"}, id="explicit"),
    pytest.param(rule("CartErrors", service="cart", severity="warning"), {"cart": "label"},
                 id="label-service"),
    pytest.param(rule("PaymentErrors", app="payment", severity="info"), {"payment": "label"}, id="label-app"),
    pytest.param(rule("CartDown", app_kubernetes_io_name="cart"), {"cart": "label"}, id="label-app-k8s-name"),
    pytest.param(rule("PaymentSlow",
                      'histogram_quantile(0.99, sum by (le) (rate(h_bucket{service="payment"}[1m]))) > 1'),
                 {"payment": "matcher"}, id="matcher-service"),
    pytest.param(rule("CartUp", 'up{job="cart"} == 0'), {"cart": "matcher"}, id="matcher-job"),
    pytest.param(rule("FrontendErrors", 'sum(rate(x{app="frontend"}[1m])) / sum(rate(y[1m])) > 0.1'),
                 {"frontend": "matcher"}, id="matcher-app-nested"),
    pytest.param(rule("EitherUp", 'up{job="cart" or job="payment"} == 0'),
                 {"cart": "matcher", "payment": "matcher"}, id="matcher-or-groups"),
    pytest.param(rule("Both", 'rate(x{service="payment"}[1m]) > 1', service="cart"),
                 {"cart": "label", "payment": "matcher"}, id="label-and-matcher-on-two-services"),
    pytest.param(rule("CheckoutJourney", 'up{job="frontend"} == 0', service="frontend"),
                 {"frontend": "explicit"}, id="explicit-beats-label-and-matcher"),
    pytest.param(rule("RegexOnly", 'rate(x{service=~"payment"}[1m]) > 1', severity="warning"), {},
                 id="regex-matcher-does-not-bind"),
    pytest.param(rule("NotPayment", 'rate(x{service!="payment"}[1m]) > 1', severity="warning"), {},
                 id="negative-matcher-does-not-bind"),
    pytest.param(rule("OtherLabel", 'rate(x{pod="payment"}[1m]) > 1', team="payment", severity="warning"), {},
                 id="other-labels-do-not-bind"),
    pytest.param(rule("ShopBurn", "sum(rate(x[1m])) > 1", severity="critical"),
                 dict.fromkeys(("frontend", "catalog", "cart", "payment"), "global"), id="global-critical"),
    pytest.param(rule("ShopPage", 'rate(x{service=~"pay.*"}[1m]) > 1', severity="page"),
                 dict.fromkeys(("frontend", "catalog", "cart", "payment"), "global"),
                 id="global-page-regex-only"),
    pytest.param(rule("Unknown", 'up{job="billing"} == 0', severity="page"),
                 dict.fromkeys(("frontend", "catalog", "cart", "payment"), "global"),
                 id="global-bound-to-no-catalog-service"),
    pytest.param(rule("CartPage", 'up{job="cart"} == 0', severity="page"), {"cart": "matcher"},
                 id="paging-but-bound-is-not-global"),
    pytest.param(rule("Noise", "sum(rate(x[1m])) > 1", severity="warning"), {},
                 id="unbound-warning-not-global"),
    pytest.param(rule("NoSeverity", "sum(rate(x[1m])) > 1"), {}, id="unbound-without-severity-not-global"),
]  # fmt: skip


@pytest.mark.parametrize(("alert", "expected"), BINDING_CASES)
def test_binding_contract(alert: AlertRule, expected: dict[str, str]) -> None:
    found = {}
    for service in CATALOG.services:
        bindings = bind_alerts(service, [alert], CATALOG)
        assert len(bindings) <= 1
        if bindings:
            found[service.name] = bindings[0].reason
            assert bindings[0].service == (None if bindings[0].reason == "global" else service.name)
    assert found == expected


def test_recording_rules_never_bind(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(
        textwrap.dedent("""\
            groups:
              - name: cart
                rules:
                  - record: cart:errors:rate1m
                    expr: sum(rate(http_requests_total{service="cart",code=~"5.."}[1m]))
                    labels: {service: cart, severity: page}
                  - alert: CartErrors
                    expr: cart:errors:rate1m > 1
                    labels: {service: cart}
        """)
    )

    bindings = bind_alerts(member("cart"), load_rules([path]), CATALOG)

    assert [(b.rule.name, b.reason) for b in bindings] == [("CartErrors", "label")]


def test_prometheus_rule_documents_bind_like_rule_files(tmp_path: Path) -> None:
    path = tmp_path / "payment.yaml"
    path.write_text(
        textwrap.dedent("""\
            apiVersion: monitoring.coreos.com/v1
            kind: PrometheusRule
            metadata: {name: payment, namespace: shop}
            spec:
              groups:
                - name: payment
                  rules:
                    - alert: PaymentErrors
                      expr: sum(rate(http_requests_total{service="payment",code=~"5.."}[1m])) > 1
        """)
    )

    bindings = bind_alerts(member("payment"), load_rules([path]), CATALOG)

    assert [(b.rule.name, b.reason) for b in bindings] == [("PaymentErrors", "matcher")]


def test_without_a_catalog_every_paging_alert_not_bound_to_the_service_is_global() -> None:
    rules = [rule("CartPage", service="cart", severity="page"), rule("Mine", service="payment")]

    bindings = bind_alerts(svc("payment"), rules, None)

    assert [(b.rule.name, b.reason) for b in bindings] == [("CartPage", "global"), ("Mine", "label")]


def test_the_same_rule_from_two_files_binds_once() -> None:
    first = rule("CartErrors", service="cart")
    second = AlertRule(name="CartErrors", expr=first.expr, labels=first.labels, source="copy.yaml")
    other_expr = AlertRule(name="CartErrors", expr="vector(2) > 1", labels={"service": "cart"})

    bindings = bind_alerts(member("cart"), [first, second, other_expr], CATALOG)

    assert [b.rule for b in bindings] == [first, other_expr]


def test_shop_hypotheses_hold_own_alerts_plus_the_global_one() -> None:
    rules = load_rules([SHOP_RULES])
    per_service = {
        s.name: [(b.rule.name, b.reason) for b in bind_alerts(s, rules, CATALOG)] for s in CATALOG.services
    }

    assert per_service == {
        "frontend": [("FrontendHighErrorRate", "label"), ("FrontendHighLatencyP99", "label"),
                     ("ShopAvailabilityBurn", "global")],
        "catalog": [("ShopAvailabilityBurn", "global")],
        "cart": [("CartHighErrorRate", "label"), ("CartHighLatencyP99", "label"),
                 ("ShopAvailabilityBurn", "global")],
        "payment": [("PaymentHighErrorRate", "label"), ("PaymentHighLatencyP99", "label"),
                    ("ShopAvailabilityBurn", "global")],
    }  # fmt: skip


def test_conditions_for_a_target_list_every_alert_once_target_first() -> None:
    rules = load_rules([SHOP_RULES])

    conditions = conditions_for_catalog(CATALOG, rules, target=member("payment"))

    assert [(c.rule.name, c.service) for c in conditions] == [
        ("PaymentHighErrorRate", "payment"), ("PaymentHighLatencyP99", "payment"),
        ("ShopAvailabilityBurn", None),
        ("FrontendHighErrorRate", "frontend"), ("FrontendHighLatencyP99", "frontend"),
        ("CartHighErrorRate", "cart"), ("CartHighLatencyP99", "cart"),
    ]  # fmt: skip
    assert all(isinstance(c, Binding) for c in conditions)


def test_build_hypothesis_is_one_probe_per_alert() -> None:
    alert = rule("CartErrors", 'rate(x{service="cart"}[1m]) > 1')

    hypothesis = build_hypothesis(member("cart"), [alert], CATALOG)

    assert hypothesis == {
        "title": "SLO alerts of cart are quiet",
        "probes": [
            {
                "type": "probe",
                "name": "alert-CartErrors-quiet",
                "tolerance": {"type": "regex", "target": "verdict", "pattern": "^met$"},
                "provider": {
                    "type": "python",
                    "module": "chaoslab.prometheus.probes",
                    "func": "alert_quiet",
                    "arguments": {"alert": "CartErrors", "expr": 'rate(x{service="cart"}[1m]) > 1'},
                    "secrets": ["prometheus"],
                },
            }
        ],
    }


def test_same_named_alerts_get_distinct_probe_names() -> None:
    rules = [rule("CartErrors", "a > 1", service="cart"), rule("CartErrors", "b > 1", service="cart")]

    hypothesis = build_hypothesis(member("cart"), rules, CATALOG)

    assert [p["name"] for p in hypothesis["probes"]] == ["alert-CartErrors-quiet", "alert-CartErrors-quiet-2"]


def test_a_service_without_alerts_has_no_hypothesis() -> None:
    with pytest.raises(PlanError, match="no alert rule binds to service 'catalog'"):
        build_hypothesis(member("catalog"), [rule("CartErrors", service="cart")], CATALOG)


def test_an_experiment_with_the_hypothesis_is_valid_for_chaos_toolkit() -> None:
    from chaoslib.experiment import ensure_experiment_is_valid

    experiment = {
        "title": "payment steady state",
        "description": "hypothesis only",
        "configuration": {"prometheus_url": "http://127.0.0.1:9"},
        "steady-state-hypothesis": build_hypothesis(member("payment"), load_rules([SHOP_RULES]), CATALOG),
        "method": [],
    }

    ensure_experiment_is_valid(experiment)


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("x > 1", ("x", ">", 1.0)),
        ("x >= 1", ("x", ">=", 1.0)),
        ("x < 0.5", ("x", "<", 0.5)),
        ("x <= -1", ("x", "<=", -1.0)),
        ("0.05 < sum(rate(x[1m]))", ("sum(rate(x[1m]))", ">", 0.05)),
        ("2 >= x", ("x", "<=", 2.0)),
        ("(x > 1)", ("x", ">", 1.0)),
        ("x > (1)", ("x", ">", 1.0)),
        (
            'rate(x{path=~"/api/.*\\\\.json"}[1m]) > 1e3',
            ('rate(x{path=~"/api/.*\\\\.json"}[1m])', ">", 1000.0),
        ),
        ('x{op=">"} > 1', ('x{op=">"}', ">", 1.0)),
        ("a / b\n  > 0.1", ("a / b", ">", 0.1)),
        ("x > bool 1", None),
        ("x > y", None),
        # `up == 0`: its left-hand side must have data, or a vanished target passes as quiet.
        ('up{job="x"} == 0', ('up{job="x"}', "==", 0.0)),
        ("0 == x", ("x", "==", 0.0)),
        ("x == bool 0", None),
        ("x != 0", None),
        ("absent(up)", None),
        ("1 > 0", None),
        ("x > 1 and y", None),
    ],
)
def test_comparison(expr: str, expected: tuple[str, str, float] | None) -> None:
    found = comparison(expr)
    assert (None if found is None else (found.lhs, found.op, found.threshold)) == expected


def test_comparison_margin_is_headroom() -> None:
    above, below = comparison("x > 0.05"), comparison("x < 10")
    assert above is not None
    assert below is not None

    assert (above.margin(0.01), above.breached(0.01), above.breached(0.05)) == (
        pytest.approx(0.04),
        False,
        False,
    )
    assert (below.margin(12.0), below.breached(12.0), below.breached(9.0)) == (2.0, False, True)
    assert not below.breached(float("nan"))  # as in Prometheus: NaN never satisfies a comparison
    down = comparison("up == 0")
    assert down is not None
    assert (down.margin(1.0), down.breached(1.0), down.breached(0.0)) == (1.0, False, True)


# --- chaoslab hypothesis ------------------------------------------------------------------------


def test_cli_json_is_exactly_the_hypothesis(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["hypothesis", "--rules", str(SHOP_RULES), "--service", "payment", "--format", "json"])

    from chaoslab.loader import load_catalog

    catalog = load_catalog(REPO / "experiments" / "catalog.yaml")
    payment = catalog.get("payment")
    assert payment is not None
    expected = build_hypothesis(payment, load_rules([SHOP_RULES]), catalog)
    assert code == 0
    assert json.loads(capsys.readouterr().out) == expected


def test_cli_yaml_is_the_same_document(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["hypothesis", "--rules", str(SHOP_RULES), "--service", "frontend"]
    assert main([*args, "--format", "json"]) == 0
    as_json = json.loads(capsys.readouterr().out)
    assert main([*args, "--format", "yaml"]) == 0

    assert yaml.safe_load(capsys.readouterr().out) == as_json


def test_cli_table_lists_source_reason_for_and_severity(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["hypothesis", "--rules", str(SHOP_RULES), "--service", "cart"])

    lines = capsys.readouterr().out.splitlines()
    assert code == 0
    assert lines[0] == "service cart (core): 3 alerts"
    slo, guards = table_sections(lines)
    assert slo[0] == "SLO conditions (2): judged by their condition, evaluated now; no data is not met"
    assert slo[1].split() == ["alert", "bound", "for", "severity", "during", "a", "fault", "source"]
    assert [line.split() for line in slo[2:]] == [
        ["CartHighErrorRate", "label", "1m", "page", "the", "whole", "alert", str(SHOP_RULES)],
        ["CartHighLatencyP99", "label", "1m", "warning", "the", "whole", "alert", str(SHOP_RULES)],
    ]
    assert guards[0] == ("guards (1): bound to no service, severity critical|page; judged by their state "
                         "in Prometheus: firing halts, pending is recorded, no data is not firing")
    assert guards[1].split() == ["alert", "judged", "for", "severity", "source"]
    assert [line.split() for line in guards[2:]] == [
        ["ShopAvailabilityBurn", "state", "1m", "critical", str(SHOP_RULES)],
    ]


def table_sections(lines: list[str]) -> list[list[str]]:
    """The blocks of `chaoslab hypothesis --format table` after its first line."""
    blocks: list[list[str]] = []
    for line in lines[1:]:
        if not line:
            blocks.append([])
        else:
            blocks[-1].append(line)
    return blocks


def test_cli_unknown_service_exits_2_with_the_known_names() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "chaoslab", "hypothesis", "--rules", str(SHOP_RULES), "--service", "billing"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip

    assert result.returncode == 2
    assert "unknown service 'billing'" in result.stderr
    assert "frontend, catalog, recommendation, cart, payment" in result.stderr
    assert "Traceback" not in result.stderr


def test_cli_malformed_rules_exit_2_naming_file_and_rule(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("groups:\n  - name: a\n    rules:\n      - alert: A\n        expr: sum(rate(x[5m])\n")

    code = main(
        [
            "hypothesis",
            "--rules",
            str(bad),
            "--service",
            "cart",
            "--catalog",
            str(REPO / "experiments" / "catalog.yaml"),
        ]
    )

    assert code == 2
    assert f"{bad}:4: groups[0].rules[0].expr: invalid PromQL" in capsys.readouterr().err


def test_cli_explicit_catalog_and_explicit_alerts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    catalog = tmp_path / "elsewhere" / "my-catalog.yaml"
    catalog.parent.mkdir()
    catalog.write_text(
        textwrap.dedent("""\
            apiVersion: chaoslab/v1
            kind: Catalog
            metadata: {name: mini}
            spec:
              services:
                - {name: search, namespace: shop, tier: non-core, selector: {labelSelectors: {app: search}},
                   alerts: [SearchJourney, NotDefinedAnywhere]}
        """)
    )
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        "groups:\n  - name: j\n    rules:\n      - {alert: SearchJourney, expr: 'probe_success < 1'}\n"
    )

    code = main(["hypothesis", "--rules", str(rules), "--service", "search", "--catalog", str(catalog)])

    out, err = capsys.readouterr()
    assert code == 0
    assert table_sections(out.splitlines())[0][2].split()[:2] == ["SearchJourney", "explicit"]
    assert "NotDefinedAnywhere" in err


def test_cli_without_a_catalog_says_how_to_give_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rules = tmp_path / "a" / "b" / "c" / "rules.yaml"
    rules.parent.mkdir(parents=True)
    rules.write_text("groups: []\n")

    assert main(["hypothesis", "--rules", str(rules), "--service", "cart"]) == 2
    assert "--catalog" in capsys.readouterr().err


def test_cli_service_with_nothing_bound_exits_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        "groups:\n  - name: j\n    rules:\n      - {alert: CartOnly, expr: 'up{job=\"cart\"} == 0'}\n"
    )

    code = main(["hypothesis", "--rules", str(rules), "--service", "catalog",
                 "--catalog", str(REPO / "experiments" / "catalog.yaml")])  # fmt: skip

    assert code == 2
    assert f"no alert rule binds to service 'catalog' (rule files: {rules})" in capsys.readouterr().err


@pytest.mark.parametrize(
    "text",
    ["", "groups: []\n", "groups:\n  - name: r\n    rules:\n      - {record: 'job:up:sum', expr: sum(up)}\n"],
    ids=["empty", "no-groups", "recording-only"],
)
def test_cli_rule_files_without_alerts_are_named(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, text: str
) -> None:
    rules = tmp_path / "recording.yaml"
    rules.write_text(text)

    code = main(["hypothesis", "--rules", str(rules), "--service", "cart",
                 "--catalog", str(REPO / "experiments" / "catalog.yaml")])  # fmt: skip

    assert code == 2
    assert (f"chaoslab: no alerting rule in {rules} (recording rules are ignored), "
            "so service 'cart' has no hypothesis") in capsys.readouterr().err


def test_cli_table_writes_for_as_prometheus_does(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        "groups:\n  - name: j\n    rules:\n"
        "      - {alert: Slow, expr: 'up{job=\"cart\"} == 0', for: 1h30m}\n"
        "      - {alert: Now, expr: 'up{job=\"cart\"} == 0'}\n"
    )

    code = main(["hypothesis", "--rules", str(rules), "--service", "cart",
                 "--catalog", str(REPO / "experiments" / "catalog.yaml")])  # fmt: skip

    lines = capsys.readouterr().out.splitlines()
    assert code == 0
    assert lines[0] == "service cart (core): 2 alerts"
    rows = [line.split()[:3] for line in table_sections(lines)[0][2:]]
    assert rows == [["Slow", "matcher", "1h30m"], ["Now", "matcher", "0s"]]


def test_cli_help_shows_an_example() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "chaoslab", "hypothesis", "--help"],
        capture_output=True,
        text=True,
        check=False,
    )

    assert result.returncode == 0
    assert "chaoslab hypothesis --rules experiments/rules/shop-slo.yaml --service payment" in result.stdout
    # Its own exit codes, not those of `run` (nothing here holds or deviates).
    assert "0  the hypothesis was printed" in result.stdout
    assert "every hypothesis held" not in result.stdout
