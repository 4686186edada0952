"""Silence matchers (pure) and the game day's `spec.silence` in files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from chaoslab.loader import load_gameday
from chaoslab.model import AlertRule, Catalog, Matcher, SilenceScope, Step
from chaoslab.plan import build_plan
from chaoslab.runner.silencing import silence_matchers, step_rules
from tests.support.files import assert_rejected, experiment_doc, gameday_doc, pod, run_cli, shop, write


def rule(name: str, **labels: str) -> AlertRule:
    return AlertRule(name=name, expr="vector(1) > 0", labels=labels)


def test_rules_with_the_same_labels_share_one_exact_silence() -> None:
    sets = silence_matchers([rule("PaymentErrors", service="payment", severity="page"),
                             rule("PaymentLatency", service="payment", severity="page"),
                             rule("ShopErrorBurn", severity="critical"),
                             rule("PaymentErrors", service="payment", severity="page")])
    assert [[m.describe() for m in s] for s in sets] == [
        ['alertname=~"PaymentErrors|PaymentLatency"', 'service="payment"', 'severity="page"'],
        ['alertname="ShopErrorBurn"', 'severity="critical"'],
    ]


def test_templated_labels_are_left_out_and_extra_matchers_added() -> None:
    extra = (Matcher(name="cluster", value="prod"),)
    (only,) = silence_matchers([rule("Slow", instance="{{ $labels.pod }}", team="shop")], extra)
    assert [m.describe() for m in only] == ['alertname="Slow"', 'team="shop"', 'cluster="prod"']


def test_no_rules_no_silence() -> None:
    assert silence_matchers([]) == []


def _gameday(tmp_path: Path, silence: object) -> Path:
    shop(tmp_path)
    write(tmp_path / "exp" / "e.yaml", experiment_doc())
    return write(tmp_path / "gameday.yaml", gameday_doc(silence=silence))


def test_spec_silence_is_loaded(tmp_path: Path) -> None:
    day = load_gameday(_gameday(tmp_path, {
        "alertmanager": "https://am.example:9093", "scope": "gameday", "required": False,
        "extraMatchers": ['cluster="prod"', "team!~shop|web", 'note!="say \\"hi\\""']}))
    assert day.silence is not None
    assert day.silence.alertmanager == "https://am.example:9093"
    assert day.silence.scope is SilenceScope.GAMEDAY
    assert day.silence.required is False
    assert day.silence.extra_matchers == (
        Matcher(name="cluster", value="prod"),
        Matcher(name="team", value="shop|web", is_regex=True, is_equal=False),
        Matcher(name="note", value='say "hi"', is_equal=False),
    )


def test_spec_silence_defaults(tmp_path: Path) -> None:
    day = load_gameday(_gameday(tmp_path, {}))
    assert day.silence is not None
    assert (day.silence.alertmanager, day.silence.scope, day.silence.required) == (
        None, SilenceScope.TARGET, True)


@pytest.mark.parametrize(
    ("silence", "field", "reason"),
    [
        ({"scope": "cluster"}, "spec.silence.scope", "target, gameday"),
        ({"alertmanager": "am:9093"}, "spec.silence.alertmanager", "is not an http(s) URL"),
        ({"extraMatchers": ["cluster"]}, "spec.silence.extraMatchers[0]", "is not a matcher"),
        ({"extraMatchers": ['x=~"("']}, "spec.silence.extraMatchers[0]", "regular expression is invalid"),
        ({"extraMatchers": [3]}, "spec.silence.extraMatchers[0]", "must be a matcher"),
        ({"required": "no"}, "spec.silence.required", "must be true or false"),
        ({"ttl": "2m"}, "spec.silence.ttl", "unknown field"),
    ],
)
def test_bad_spec_silence_names_the_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], silence: object, field: str, reason: str
) -> None:
    assert_rejected(capsys, _gameday(tmp_path, silence), field, reason)


def test_a_silence_without_any_alertmanager_url_is_bad_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CHAOSLAB_ALERTMANAGER_URL", raising=False)
    path = _gameday(tmp_path, {"scope": "gameday"})
    code, _out, err = run_cli(capsys, "run", "--target", "sandbox", "--yes", "--reports",
                              tmp_path / "reports", path)
    assert code == 2, err
    assert f"{path}" in err
    assert "spec.silence.alertmanager: no Alertmanager URL" in err
    assert "Traceback" not in err


def _step(tmp_path: Path, fault: dict[str, Any]) -> tuple[Step, Catalog]:
    shop(tmp_path)
    write(tmp_path / "exp" / "e.yaml", experiment_doc("cart-fault", service="cart", fault=fault))
    day = load_gameday(write(tmp_path / "gameday.yaml", gameday_doc()))
    return build_plan(day).steps[0], day.catalog


SLO = [rule("CartErrors", service="cart", severity="page"), rule("PaymentErrors", service="payment"),
       rule("FrontendErrors", service="frontend"), rule("ShopDown", severity="critical")]


@pytest.mark.parametrize(
    ("fault", "alerts"),
    [
        (pod(), {"CartErrors", "ShopDown"}),
        ({"networkChaos": {"action": "partition", "mode": "all", "duration": "10s", "direction": "both",
                           "target": {"mode": "all", "selector": {"labelSelectors": {"app": "payment"}}}}},
         {"CartErrors", "PaymentErrors", "ShopDown"}),
    ],
    ids=["own-and-global", "and-the-network-target"],
)
def test_scope_target_silences_the_services_a_step_can_affect(
    tmp_path: Path, fault: dict[str, Any], alerts: set[str]
) -> None:
    step, catalog = _step(tmp_path, fault)
    assert {r.name for r in step_rules(step, SLO, catalog)} == alerts


def test_a_renewal_slower_than_the_lifetime_is_bad_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CHAOSLAB_SILENCE_TTL_S", "20")
    monkeypatch.setenv("CHAOSLAB_SILENCE_RENEW_S", "30")
    path = _gameday(tmp_path, {"alertmanager": "http://127.0.0.1:9"})
    code, _out, err = run_cli(capsys, "run", "--target", "sandbox", "--yes", "--reports",
                              tmp_path / "reports", path)
    assert code == 2, err
    assert "CHAOSLAB_SILENCE_RENEW_S: 30s must be more than 0 and less than" in err
