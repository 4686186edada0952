"""Multi-window burn-rate alerts: the shape, the windows, the fast legs, binding by generator
labels, and what `chaoslab hypothesis` and the run record say about them."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from chaoslab.cli.main import main
from chaoslab.model import AlertRule, Catalog, LegHalt, LegReading, Selector, Service, Tier
from chaoslab.prometheus.burnrate import (
    analyse,
    analyse_expr,
    describe_leg_halt,
    format_window,
    seconds_until,
)
from chaoslab.prometheus.hypothesis import bind_alerts, is_global, severity
from chaoslab.prometheus.recordings import RecordingRule, link_windows, windows_of
from chaoslab.prometheus.rules import load_rules
from chaoslab.watch import build_conditions
from tests.support.burnrate import pyrra_rules, sloth_rules

RATE = (
    'sum(rate(http_requests_total{{job="cart",code=~"5.."}}[{w}]))'
    ' / sum(rate(http_requests_total{{job="cart"}}[{w}]))'
)


def inline(window: str) -> str:
    return RATE.format(w=window)


WORKBOOK = (
    f"({inline('5m')} > (14.4 * 0.001) and {inline('1h')} > (14.4 * 0.001))"
    f" or ({inline('30m')} > (6 * 0.001) and {inline('6h')} > (6 * 0.001))"
)


@pytest.mark.parametrize(
    ("expr", "windows", "fast"),
    [
        pytest.param(WORKBOOK, {}, [("5m", 0.0144), ("30m", 0.006)], id="workbook-inline"),
        pytest.param(f"{inline('1h')} > 0.0144 and {inline('5m')} > 0.0144", {}, [("5m", 0.0144)],
                     id="long-leg-written-first"),
        pytest.param(f"{inline('5m')} > 0.01 and on (job) {inline('1h')} > 0.02", {}, [("5m", 0.01)],
                     id="and-on-own-threshold"),
        pytest.param(f"{inline('5m')} > 0.01 and ignoring (sloth_window) {inline('1h')} > 0.01", {},
                     [("5m", 0.01)], id="and-ignoring"),
        pytest.param(f"0.0144 < {inline('5m')} and 0.0144 < {inline('1h')}", {}, [("5m", 0.0144)],
                     id="threshold-on-the-left"),
        pytest.param("max(r5m{s=\"x\"} > (14.4 * 0.001)) without (sloth_window)"
                     " and max(r1h{s=\"x\"} > (14.4 * 0.001)) without (sloth_window)",
                     {"r5m": 300.0, "r1h": 3600.0}, [("5m", 0.0144)], id="sloth-aggregated-legs"),
        pytest.param('burn{w="a",sloth_window="5m"} > 0.1 and burn{w="a",sloth_window="1h"} > 0.1', {},
                     [("5m", 0.1)], id="window-matcher"),
        pytest.param(f"{inline('5m')} > 0.0144 and {inline('1h')} > 0.0144 or {inline('2h')} > 0.003", {},
                     [("5m", 0.0144), ("2h", 0.003)], id="a-single-leg-conjunction-is-its-own-fast-leg"),
    ],
)
def test_multi_window_alerts_watch_the_shortest_leg_of_each_conjunction(
    expr: str, windows: dict[str, float], fast: list[tuple[str, float]]
) -> None:
    burn = analyse(AlertRule(name="A", expr=expr, windows=windows))

    assert burn is not None
    assert [(leg.window, pytest.approx(leg.threshold)) for leg in burn.fast_legs] == fast


@pytest.mark.parametrize(
    "expr",
    [
        pytest.param('absent(up{job="cart"}) or up{job="cart"} > 1', id="absent-or-comparison"),
        pytest.param(f"{inline('5m')} > 0.05", id="single-ratio"),
        pytest.param(f"{inline('5m')} > 0.05 or {inline('1h')} > 0.01", id="or-of-single-legs"),
        pytest.param("r5m > 0.1 and r1h > 0.1", id="recording-rules-of-unknown-window"),
        pytest.param(f"{inline('5m')} > 0.1 and up == 0", id="a-leg-without-window"),
        pytest.param(f"{inline('5m')} > bool 0.1 and {inline('1h')} > 0.1", id="bool-comparison"),
        pytest.param(f"{inline('5m')} > 0.1 unless {inline('1h')} > 0.1", id="unless"),
        pytest.param(f"topk(1, {inline('5m')} > 0.1) and {inline('1h')} > 0.1", id="topk-leg"),
        pytest.param('rate(x[5m] offset 1h) > 1 and rate(x[1h]) > 1', id="offset"),
        pytest.param(f"{inline('5m')} > {inline('1h')} and {inline('1h')} > 0.1", id="ratio-against-ratio"),
    ],
)
def test_other_shapes_keep_watching_the_whole_alert(expr: str) -> None:
    rule = AlertRule(name="Other", expr=expr)
    assert analyse(rule) is None

    condition = build_conditions(svc("cart"), [AlertRule(name="Other", expr=expr, labels={"job": "cart"})],
                                 None)[0]
    assert condition.during_fault().expr == expr


def test_during_a_fault_the_fast_legs_are_watched_and_the_baseline_keeps_the_whole_alert() -> None:
    rule = AlertRule(name="Burn", expr=WORKBOOK, labels={"service": "cart"})
    condition = build_conditions(svc("cart"), [rule], None)[0]

    assert condition.expr == WORKBOOK  # baseline and recovery
    during = condition.during_fault()
    assert during.fast
    assert during.during_fault() == during
    assert during.expr == f"({inline('5m')} > 0.0144) or ({inline('30m')} > 0.006)"


def test_windows_come_from_recording_rules_their_labels_and_the_rules_they_read() -> None:
    recordings = [
        RecordingRule(name="slo:ratio_rate5m", expr=inline("5m")),
        RecordingRule(name="slo:ratio_rate30d", expr="sum_over_time(slo:ratio_rate5m[30d]) / 8640"),
        RecordingRule(name="slo:labelled", expr="vector(0.1)", labels={"sloth_window": "1h"}),
        RecordingRule(name="slo:nothing", expr="vector(1)"),
    ]

    assert {r.name: w for r, w in windows_of(recordings)} == {
        "slo:ratio_rate5m": 300.0, "slo:ratio_rate30d": 30 * 86400 + 300.0, "slo:labelled": 3600.0,
    }


def test_same_named_recording_rules_resolve_by_the_selectors_matchers() -> None:
    recordings = [
        RecordingRule(name="slo:err", expr=inline("5m"),
                      labels={"sloth_service": "cart", "sloth_window": "5m"}),
        RecordingRule(name="slo:err", expr=inline("1h"), labels={"sloth_service": "payment"}),
    ]
    alerts = [AlertRule(name="Cart", expr='slo:err{sloth_service="cart"} > 1'),
              AlertRule(name="Any", expr="slo:err > 1")]

    cart, either = link_windows(alerts, recordings)

    assert cart.windows == {"slo:err": 300.0}
    assert either.windows == {}  # two windows for one name: unknown, so the whole alert is watched


def write(path: Path, doc: object) -> Path:
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def svc(name: str, *, alerts: tuple[str, ...] = ()) -> Service:
    return Service(name=name, namespace="shop", tier=Tier.CORE,
                   selector=Selector(label_selectors={"app": name}), alerts=alerts)


def test_sloth_and_pyrra_rule_files_bind_without_alerts_in_the_catalog(tmp_path: Path) -> None:
    sloth = write(tmp_path / "sloth.yaml", sloth_rules("cart", job="cart-api"))
    pyrra = write(tmp_path / "pyrra.yaml", pyrra_rules("payment", job="payment"))
    rules = load_rules([sloth, pyrra])
    catalog = Catalog(name="shop", services=(svc("cart"), svc("payment")))

    cart = bind_alerts(svc("cart"), rules, catalog)
    payment = bind_alerts(svc("payment"), rules, catalog)

    assert [(b.rule.name, b.reason) for b in cart] == [("CartAvailabilitySLO", "label")]
    assert [(b.rule.name, b.reason) for b in payment] == [("ErrorBudgetBurn", "label")] * 4
    page = analyse(cart[0].rule)
    assert page is not None
    assert page.describe() == "5m leg > 1.44 % or 30m leg > 0.6 %"
    assert [analyse(b.rule).describe() for b in payment] == [  # type: ignore[union-attr]
        "5m leg > 14 %", "30m leg > 7 %", "2h leg > 2 %", "6h leg > 1 %"]


@pytest.mark.parametrize(
    ("labels", "expr", "reason"),
    [
        pytest.param({"sloth_service": "cart"}, "vector(1) > 0", "label", id="sloth-label"),
        pytest.param({}, 'slo:sli_error:ratio_rate5m{sloth_service="cart"} > 0.1', "matcher",
                     id="sloth-matcher-on-a-recording-rule"),
        pytest.param({"slo": "cart"}, "vector(1) > 0", "label", id="pyrra-slo-label"),
        pytest.param({"job": "cart"}, "vector(1) > 0", "label", id="pyrra-job-label"),
        pytest.param({}, 'http_requests:burnrate5m{slo="cart"} > 0.1', "matcher", id="pyrra-slo-matcher"),
    ],
)
def test_generator_labels_and_matchers_bind(labels: dict[str, str], expr: str, reason: str) -> None:
    rule = AlertRule(name="A", expr=expr, labels=labels)

    assert [b.reason for b in bind_alerts(svc("cart"), [rule], None)] == [reason]


@pytest.mark.parametrize(
    ("labels", "expected", "global_"),
    [
        ({"sloth_severity": "page"}, "page", True),
        ({"severity": "warning", "sloth_severity": "page"}, "warning", False),
        ({"sloth_severity": "ticket"}, "ticket", False),
        ({}, None, False),
    ],
)
def test_a_generators_severity_counts_where_severity_is_missing(
    labels: dict[str, str], expected: str | None, global_: bool
) -> None:
    rule = AlertRule(name="A", expr='up{job="billing"} == 0', labels=labels)

    assert severity(rule) == expected
    assert is_global(rule, [svc("cart")]) is global_


def test_cli_table_shows_the_leg_watched_during_a_fault(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rules = write(tmp_path / "sloth.yaml", sloth_rules("cart", job="cart"))
    write(tmp_path / "catalog.yaml", {
        "apiVersion": "chaoslab/v1", "kind": "Catalog", "metadata": {"name": "shop"},
        "spec": {"services": [{"name": "cart", "namespace": "shop", "tier": "core",
                               "selector": {"labelSelectors": {"app": "cart"}}}]},
    })

    assert main(["hypothesis", "--rules", str(rules), "--service", "cart"]) == 0

    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "service cart (core): 1 alert"
    assert lines[2].startswith("SLO conditions (1)")
    row = lines[4]
    assert row.startswith("CartAvailabilitySLO")
    assert "page" in row
    assert "5m leg > 1.44 % or 30m leg > 0.6 %" in row


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        (dict(threshold=0.0144, value=0.0012, earlier=0.0011, span_s=1.0), pytest.approx(132.0)),
        (dict(threshold=0.0144, value=0.02, earlier=0.01, span_s=5.0), 0.0),
        (dict(threshold=0.0144, value=0.001, earlier=0.001, span_s=5.0), None),
        (dict(threshold=0.0144, value=0.001, earlier=0.002, span_s=5.0), None),
        (dict(threshold=0.0144, value=0.001, earlier=0.0, span_s=0.0), None),
        (dict(threshold=0.5, value=0.9, earlier=1.0, span_s=1.0, op="<"), pytest.approx(4.0)),
    ],
)
def test_seconds_until_a_leg_crosses_at_its_current_pace(kwargs: dict[str, float], expected: object) -> None:
    assert seconds_until(**kwargs) == expected  # type: ignore[arg-type]


def reading(window: str, value: float | None, threshold: float = 0.0144) -> LegReading:
    return LegReading(window=window, ratio=f"r{window}", op=">", threshold=threshold, value=value)


@pytest.mark.parametrize(
    ("needs", "more", "expected"),
    [
        ((reading("1h", 0.0052),), 49.6,
         "halted on the 5m leg of X: 14.6 % > 1.44 %; the full alert needs the 1h leg too "
         "(0.52 % of 1.44 %), about 50 s more at this error rate"),
        ((reading("1h", 0.0052),), None,
         "halted on the 5m leg of X: 14.6 % > 1.44 %; the full alert needs the 1h leg too "
         "(0.52 % of 1.44 %)"),
        ((reading("1h", 0.02),), 0.0,
         "halted on the 5m leg of X: 14.6 % > 1.44 %; the full alert's condition held as well"),
        ((reading("1h", None), reading("6h", 0.001)), 600.0,
         "halted on the 5m leg of X: 14.6 % > 1.44 %; the full alert needs the 1h and 6h legs too "
         "(no data of 1.44 %, 0.1 % of 1.44 %), about 10 min more at this error rate"),
    ],
)
def test_the_halt_says_which_leg_and_what_the_full_alert_needed(
    needs: tuple[LegReading, ...], more: float | None, expected: str
) -> None:
    halt = LegHalt(alert="X", leg=reading("5m", 0.146), needs=needs, more_s=more)

    assert describe_leg_halt(halt) == expected


@pytest.mark.parametrize(("seconds", "text"), [(300, "5m"), (3600, "1h"), (5400, "1h30m"), (259200, "3d")])
def test_windows_are_written_as_prometheus_writes_them(seconds: float, text: str) -> None:
    assert format_window(seconds) == text


def test_analysis_is_cached_and_tolerates_unparsable_input() -> None:
    assert analyse_expr("this is not promql") is None
