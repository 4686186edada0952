"""Loading Prometheus rule files and PrometheusRule objects into AlertRule values."""

from __future__ import annotations

import subprocess
import textwrap
from pathlib import Path

import pytest

from chaoslab.errors import InvalidInputError
from chaoslab.prometheus.rules import load_rules, parse_prometheus_duration, parse_rule_documents
from tests.support.prometheus import require_promtool

REPO = Path(__file__).resolve().parents[2]
SHOP_RULES = REPO / "experiments" / "rules" / "shop-slo.yaml"
SHOP_TESTS = REPO / "experiments" / "rules" / "shop-slo.test.yaml"

PLAIN = """\
groups:
  - name: payment
    interval: 30s
    rules:
      - record: job:http_errors:rate5m
        expr: sum by (job) (rate(http_requests_total{code=~"5.."}[5m]))
      - alert: PaymentErrors
        expr: job:http_errors:rate5m{job="payment"} > 0.1
        for: 5m30s
        labels: {severity: page, team: payments, priority: 1, paging: true}
        annotations: {summary: "payment fails"}
      - alert: PaymentDown
        expr: up{job="payment"} == 0
"""

PROMETHEUS_RULE = """\
apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata: {name: cart-slo, namespace: shop}
spec:
  groups:
    - name: cart
      rules:
        - alert: CartErrors
          expr: sum(rate(http_requests_total{service="cart",code=~"5.."}[1m])) > 1
          for: 1d
          labels: {severity: warning}
"""


def write(tmp_path: Path, text: str, name: str = "rules.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_shop_rules_load_with_every_field() -> None:
    rules = {rule.name: rule for rule in load_rules([SHOP_RULES])}

    assert set(rules) == {
        "FrontendHighErrorRate", "FrontendHighLatencyP99", "CartHighErrorRate", "CartHighLatencyP99",
        "PaymentHighErrorRate", "PaymentHighLatencyP99", "ShopAvailabilityBurn",
    }  # fmt: skip
    rate = rules["FrontendHighErrorRate"]
    assert (rate.for_s, rate.interval_s, rate.group, rate.source) == (
        60.0,
        1.0,
        "shop-frontend-slo",
        str(SHOP_RULES),
    )
    assert dict(rate.labels) == {"severity": "page", "service": "frontend", "slo": "availability"}
    assert rate.annotations["summary"] == "frontend answers more than 5% of requests with 5xx"
    assert rate.expr.startswith("(sum(rate(http_requests_total{")
    assert "service" not in rules["ShopAvailabilityBurn"].labels


def test_recording_rules_are_ignored_and_values_become_strings(tmp_path: Path) -> None:
    rules = load_rules([write(tmp_path, PLAIN)])

    assert [r.name for r in rules] == ["PaymentErrors", "PaymentDown"]
    errors, down = rules
    assert errors.for_s == 330.0
    assert errors.interval_s == 30.0
    assert dict(errors.labels) == {"severity": "page", "team": "payments", "priority": "1", "paging": "true"}
    assert (down.for_s, dict(down.labels), dict(down.annotations)) == (0.0, {}, {})


def test_prometheus_rule_objects_load_like_rule_files(tmp_path: Path) -> None:
    (rule,) = load_rules([write(tmp_path, PROMETHEUS_RULE)])

    assert (rule.name, rule.for_s, rule.group, rule.interval_s) == ("CartErrors", 86400.0, "cart", None)
    assert rule.labels["severity"] == "warning"


def test_a_kubernetes_list_and_several_documents_load(tmp_path: Path) -> None:
    body = "\n".join("    " + line for line in PROMETHEUS_RULE.splitlines())
    listed = "apiVersion: v1\nkind: List\nitems:\n  -\n" + body + "\n"
    multi = PLAIN + "---\n" + PROMETHEUS_RULE

    assert [r.name for r in load_rules([write(tmp_path, listed, "list.yaml")])] == ["CartErrors"]
    assert [r.name for r in load_rules([write(tmp_path, multi, "multi.yaml")])] == [
        "PaymentErrors", "PaymentDown", "CartErrors",
    ]  # fmt: skip


def test_parse_rule_documents_takes_api_objects_with_their_source() -> None:
    doc = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": "cart-slo", "namespace": "shop"},
        "spec": {"groups": [{"name": "cart", "interval": "15s", "rules": [
            {"alert": "CartErrors", "expr": "rate(x[1m]) > 1", "for": "2m", "labels": {"service": "cart"}},
            {"record": "x:rate1m", "expr": "rate(x[1m])"},
        ]}]},
    }  # fmt: skip

    (rule,) = parse_rule_documents([doc], source="k8s://shop/cart-slo")

    assert (rule.source, rule.for_s, rule.interval_s) == ("k8s://shop/cart-slo", 120.0, 15.0)


def test_duplicates_across_files_are_kept(tmp_path: Path) -> None:
    first, second = write(tmp_path, PLAIN, "a.yaml"), write(tmp_path, PLAIN, "b.yaml")

    rules = load_rules([first, second])

    assert [(r.name, Path(r.source).name) for r in rules] == [
        ("PaymentErrors", "a.yaml"), ("PaymentDown", "a.yaml"),
        ("PaymentErrors", "b.yaml"), ("PaymentDown", "b.yaml"),
    ]  # fmt: skip


def test_an_empty_file_has_no_rules(tmp_path: Path) -> None:
    assert load_rules([write(tmp_path, "# nothing yet\n")]) == ()
    assert load_rules([write(tmp_path, "groups: []\n", "empty.yaml")]) == ()


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("0", 0.0), ("0s", 0.0), ("500ms", 0.5), ("90s", 90.0), ("1m", 60.0), ("5m30s", 330.0),
     ("1h1m", 3660.0), ("1d", 86400.0), ("1w", 604800.0), ("1y", 31536000.0)],
)  # fmt: skip
def test_prometheus_durations(text: str, seconds: float) -> None:
    assert parse_prometheus_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "1.5m", "-1m", "1m1h", "90", "1 m", "1M", "abc"])
def test_durations_prometheus_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="not a Prometheus duration"):
        parse_prometheus_duration(text)


GOOD_RULE = "      - alert: Ok\n        expr: up == 0\n"

MALFORMED = [
    pytest.param("groups: [\n", None, "not valid YAML", id="yaml"),
    pytest.param("rules: []\n", "groups", "missing", id="no-groups"),
    pytest.param("groups: {name: x}\n", "groups", "must be a list", id="groups-not-list"),
    pytest.param("groups:\n  - rules: []\n", "groups[0].name", "non-empty name", id="group-without-name"),
    pytest.param(
        "groups:\n  - name: a\n    rules: []\n  - name: a\n    rules: []\n",
        "groups[1].name", "repeated", id="duplicate-group",
    ),
    pytest.param(
        "groups:\n  - name: a\n    rules:\n" + GOOD_RULE + GOOD_RULE
        + "      - alert: Broken\n        expr: sum(rate(x[5m])\n",
        "groups[0].rules[2].expr", "invalid PromQL: unclosed left parenthesis", id="promql",
    ),
    pytest.param(
        "groups:\n  - name: a\n    rules:\n      - alert: NoExpr\n", "groups[0].rules[0].expr",
        "needs a PromQL expression", id="no-expr",
    ),
    pytest.param(
        "groups:\n  - name: a\n    rules:\n      - {alert: A, record: b, expr: up}\n", "groups[0].rules[0]",
        "exactly one of", id="alert-and-record",
    ),
    pytest.param(
        "groups:\n  - name: a\n    rules:\n      - {alert: A, expr: up, for: 1.5m}\n",
        "groups[0].rules[0].for", "not a Prometheus duration", id="bad-for",
    ),
    pytest.param(
        "groups:\n  - name: a\n    interval: soon\n    rules: []\n", "groups[0].interval",
        "not a Prometheus duration", id="bad-interval",
    ),
    pytest.param(
        "groups:\n  - name: a\n    rules:\n      - {alert: A, expr: up, annotation: {a: b}}\n",
        "groups[0].rules[0].annotation", "unknown field", id="typo",
    ),
    pytest.param(
        "groups:\n  - name: a\n    rules:\n      - {alert: A, expr: up, labels: {team: [a, b]}}\n",
        "groups[0].rules[0].labels.team", "must be strings", id="label-list",
    ),
    pytest.param(
        "groups:\n  - name: a\n    rules:\n      - {record: b, expr: 'rate(x[5m]'}\n",
        "groups[0].rules[0].expr", "invalid PromQL", id="recording-rule-checked-too",
    ),
    # PyYAML keeps the last of two equal keys silently; Prometheus refuses the file.
    pytest.param(
        "groups:\n  - name: a\n    rules:\n      - alert: A\n        expr: up > 1\n        expr: up > 2\n",
        None, "duplicate key 'expr' (first on line 5)", id="duplicate-key",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("text", "field", "reason"), MALFORMED)
def test_malformed_rule_files_name_the_file_and_the_field(
    tmp_path: Path, text: str, field: str | None, reason: str
) -> None:
    path = write(tmp_path, text)

    with pytest.raises(InvalidInputError) as info:
        load_rules([path])

    assert info.value.path == str(path)
    assert reason in info.value.reason
    if field is not None:
        assert info.value.field == field
    assert info.value.line is not None
    assert str(path) in str(info.value)


@pytest.mark.parametrize(("text", "field", "reason"), MALFORMED)
def test_promtool_rejects_what_chaoslab_rejects(
    tmp_path: Path, text: str, field: str | None, reason: str
) -> None:
    promtool = require_promtool()
    result = subprocess.run(
        [promtool, "check", "rules", str(write(tmp_path, text))], capture_output=True, text=True, check=False
    )
    assert result.returncode != 0, result.stdout


@pytest.mark.parametrize(
    ("text", "field", "reason"),
    [
        pytest.param("kind: PrometheusRule\napiVersion: v1\nspec: {groups: []}\n", "apiVersion",
                     "monitoring.coreos.com/v1", id="prometheusrule-version"),
        pytest.param("kind: PrometheusRule\napiVersion: monitoring.coreos.com/v1\n", "spec",
                     "needs a spec", id="prometheusrule-without-spec"),
        pytest.param(PLAIN + "---\ngroups:\n  - name: b\n    rules:\n      - {alert: A, expr: 'up =='}\n",
                     "documents[1].groups[0].rules[0].expr", "invalid PromQL", id="second-document"),
        pytest.param("- a\n- b\n", "", "expected a mapping", id="not-a-mapping"),
    ],
)  # fmt: skip
def test_malformed_manifests(tmp_path: Path, text: str, field: str, reason: str) -> None:
    with pytest.raises(InvalidInputError) as info:
        load_rules([write(tmp_path, text)])

    assert (info.value.field, reason in info.value.reason) == (field, True)


def test_merge_keys_may_be_overridden_as_prometheus_allows(tmp_path: Path) -> None:
    text = (
        "groups:\n  - name: a\n    rules:\n"
        "      - &base {alert: A, expr: up > 1, labels: {severity: page}}\n"
        "      - <<: *base\n        alert: B\n"
    )
    rules = load_rules([write(tmp_path, text)])
    assert [(r.name, r.expr, dict(r.labels)) for r in rules] == [
        ("A", "up > 1", {"severity": "page"}), ("B", "up > 1", {"severity": "page"})]


def test_absurd_nesting_is_bad_input_not_a_traceback(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="nested too deeply"):
        load_rules([write(tmp_path, "groups: " + "[" * 3000 + "]" * 3000 + "\n")])


def test_a_missing_rule_file_is_bad_input(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"

    with pytest.raises(InvalidInputError, match="cannot read rule file") as info:
        load_rules([missing])

    assert info.value.path == str(missing)


def test_shop_rules_pass_promtool_check() -> None:
    promtool = require_promtool()
    result = subprocess.run(
        [promtool, "check", "rules", str(SHOP_RULES)], capture_output=True, text=True, check=False
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 7 rules found" in result.stdout


def test_shop_rules_pass_their_promtool_unit_tests() -> None:
    promtool = require_promtool()
    result = subprocess.run(
        [promtool, "test", "rules", SHOP_TESTS.name], cwd=SHOP_TESTS.parent, capture_output=True, text=True,
        check=False,
    )  # fmt: skip

    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout
