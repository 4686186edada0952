"""Catalog, Experiment and GameDay files: the envelope (YAML/JSON, apiVersion, kind),
metadata, services, safety rules and game day fields. Bad input goes through
`chaoslab validate` and must exit 2 naming the file and the field."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import time
from pathlib import Path
from typing import Any

import pytest

from chaoslab.errors import InvalidInputError
from chaoslab.loader import (
    find_catalog,
    load_any,
    load_catalog,
    load_experiment,
    load_gameday,
    resolve_service,
)
from chaoslab.model import Catalog, Experiment, GameDay, Gate, Mode, RampLevel, Selector, Tier
from tests.support.files import (
    SHOP_SERVICES,
    assert_rejected,
    catalog_doc,
    experiment_doc,
    gameday_doc,
    network,
    pod,
    run_cli,
    shop,
    write,
)

# --- the envelope ----------------------------------------------------------------

EXPERIMENT_TEXT = """apiVersion: chaoslab/v1
kind: Experiment
metadata: {name: payment-delay}
spec:
  service: payment
  fault:
    networkChaos: {action: delay, mode: one, delay: {latency: 200ms}, duration: 20s}
"""

BAD_TEXTS: list[tuple[str, str, str, str, int | None]] = [
    # (id, file content, field ("" for none), reason, line)
    ("not-yaml", "apiVersion: chaoslab/v1\nkind: [Experiment\n", "", "not valid YAML", 3),
    ("empty", "", "", "the file is empty", None),
    ("comments-only", "# nothing here\n", "", "the file is empty", None),
    ("two-documents", EXPERIMENT_TEXT + "---\n" + EXPERIMENT_TEXT, "", "holds 2 YAML documents", 9),
    ("a-list", "- apiVersion: chaoslab/v1\n", "", "must be a mapping with apiVersion", 1),
    (
        "duplicate-key",
        EXPERIMENT_TEXT.replace("  service: payment\n", "  service: payment\n  service: cart\n"),
        "",
        "duplicate key 'service' (first on line 5)",
        6,
    ),
    ("number-key", EXPERIMENT_TEXT + "  1: x\n", "", "mapping keys must be strings", 8),
    (
        "tab-indent",
        EXPERIMENT_TEXT.replace("metadata: {name: payment-delay}", "metadata:\n\tname: payment-delay"),
        "",
        "(a tab: YAML indents with spaces only)",
        4,
    ),
    (
        "prometheus-rules",
        "groups:\n  - name: shop\n    rules: []\n",
        "apiVersion",
        "this looks like Prometheus alert rules: give them to `chaoslab hypothesis --rules`",
        1,
    ),
    (
        "chaos-mesh-object",
        "apiVersion: chaos-mesh.org/v1alpha1\nkind: PodChaos\nspec: {action: pod-kill}\n",
        "apiVersion",
        "this looks like a Chaos Mesh object",
        1,
    ),
    (
        "no-api-version",
        EXPERIMENT_TEXT.replace("apiVersion: chaoslab/v1\n", ""),
        "apiVersion",
        "is required",
        1,
    ),
    (
        "wrong-api-version",
        EXPERIMENT_TEXT.replace("chaoslab/v1", "chaoslab/v2"),
        "apiVersion",
        "must be chaoslab/v1, got 'chaoslab/v2'",
        1,
    ),
    ("no-kind", EXPERIMENT_TEXT.replace("kind: Experiment\n", ""), "kind", "is required", 1),
    (
        "unknown-kind",
        EXPERIMENT_TEXT.replace("kind: Experiment", "kind: Experimnt"),
        "kind",
        "did you mean 'Experiment'",
        2,
    ),
    ("unknown-top-field", EXPERIMENT_TEXT + "status: {}\n", "status", "unknown field 'status'", 8),
    ("no-spec", EXPERIMENT_TEXT.split("spec:")[0], "spec", "is required", 1),
    ("spec-not-mapping", EXPERIMENT_TEXT.split("spec:")[0] + "spec: [a]\n", "spec", "must be a mapping", 4),
    (
        "no-name",
        EXPERIMENT_TEXT.replace("{name: payment-delay}", "{description: x}"),
        "metadata.name",
        "is required",
        3,
    ),
    (
        "name-not-dns",
        EXPERIMENT_TEXT.replace("payment-delay}", "Payment_Delay}"),
        "metadata.name",
        "not a DNS-1123 label",
        3,
    ),
    (
        "name-too-long",
        EXPERIMENT_TEXT.replace("payment-delay}", "a" * 64 + "}"),
        "metadata.name",
        "at most 63",
        3,
    ),
    (
        "name-trailing-dash",
        EXPERIMENT_TEXT.replace("payment-delay}", "payment-}"),
        "metadata.name",
        "not a DNS-1123 label",
        3,
    ),
    ("name-number", EXPERIMENT_TEXT.replace("payment-delay}", "42}"), "metadata.name", "got a number", 3),
    (
        "metadata-typo",
        EXPERIMENT_TEXT.replace("{name: payment-delay}", "{name: x, descripton: y}"),
        "metadata.descripton",
        "did you mean 'description'",
        3,
    ),
    ("spec-typo", EXPERIMENT_TEXT.replace("  fault:", "  faults:"), "spec.faults", "did you mean 'fault'", 6),
]


@pytest.mark.parametrize(
    ("name", "text", "field", "reason", "line"), BAD_TEXTS, ids=[b[0] for b in BAD_TEXTS]
)
def test_bad_documents_are_rejected_with_file_and_line(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    name: str,
    text: str,
    field: str,
    reason: str,
    line: int | None,
) -> None:
    path = write(shop(tmp_path) / "exp.yaml", text)
    code, _, err = run_cli(capsys, "validate", path)
    assert code == 2
    assert "Traceback" not in err
    where = f"{path}:{line}: " if line else f"{path}: "
    assert err.startswith(where), err
    assert (f": {field}: " in err) if field else True, err
    assert reason in err, err


def test_missing_file_is_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(capsys, "validate", tmp_path / "nope.yaml")
    assert code == 2
    assert "nope.yaml: file not found" in err


def test_json_files_load_like_yaml(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(shop(tmp_path) / "exp.json", experiment_doc("json-delay"))
    code, out, _ = run_cli(capsys, "validate", path)
    assert (code, out) == (0, f"ok  {path} (Experiment json-delay)\n")


def test_json_errors_name_the_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = write(
        shop(tmp_path) / "bad.json", '{\n  "apiVersion": "chaoslab/v1",\n  "kind": "Experiment",,\n}\n'
    )
    code, _, err = run_cli(capsys, "validate", bad)
    assert code == 2
    assert err.startswith(f"{bad}:3: not valid JSON")
    doc = experiment_doc(fault=network(delay={"latency": "200ms", "jiter": "1ms"}))
    typo = write(tmp_path / "typo.json", doc)
    err = assert_rejected(capsys, typo, "spec.fault.networkChaos.delay.jiter", "did you mean 'jitter'")
    assert re.match(rf"{re.escape(str(typo))}:\d+: ", err)  # JSON keeps its line marks


def test_json_duplicate_keys_are_refused_like_yaml(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # json.loads keeps the last of two equal keys silently; chaoslab must not.
    text = (
        '{"apiVersion": "chaoslab/v1", "kind": "Experiment", "metadata": {"name": "e"},\n'
        ' "spec": {"service": "payment", "service": "cart",\n'
        '  "fault": {"podChaos": {"action": "pod-kill", "mode": "one", "duration": "20s"}}}}\n'
    )
    path = write(shop(tmp_path) / "dup.json", text)
    code, _, err = run_cli(capsys, "validate", path)
    assert code == 2
    assert err == f"{path}:2: not valid JSON: duplicate key 'service' (first on line 2)\n"


def test_merge_keys_may_be_overridden_but_not_written_twice(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = EXPERIMENT_TEXT.split("  fault:")[0] + "  fault:\n    podChaos:\n"
    merged = base + "      <<: {action: pod-kill, mode: one, duration: 10s}\n      duration: 20s\n"
    experiment = load_experiment(write(shop(tmp_path) / "merged.yaml", merged))
    assert experiment.fault.duration == "20s"
    twice = base + "      {action: pod-kill, mode: one, duration: 10s, duration: 20s}\n"
    code, _, err = run_cli(capsys, "validate", write(tmp_path / "twice.yaml", twice))
    assert code == 2
    assert "duplicate key 'duration'" in err


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("deep.json", '{"a": ' + "[" * 100_000 + "]" * 100_000 + "}"),
        ("deep.yaml", "a: " + "[" * 3000 + "]" * 3000),
    ],
)
def test_absurd_nesting_is_bad_input_not_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, text: str
) -> None:
    code, _, err = run_cli(capsys, "validate", write(tmp_path / name, text))
    assert code == 2
    assert "nest" in err
    assert "Traceback" not in err


def test_a_run_window_time_is_read_as_text_not_base_60(tmp_path: Path) -> None:
    shop(tmp_path)
    write(tmp_path / "exp" / "a.yaml", experiment_doc("a"))
    text = (
        "apiVersion: chaoslab/v1\nkind: GameDay\nmetadata: {name: w}\nspec:\n  experiments: [exp/a.yaml]\n"
        "  window: {days: [mon], from: 10:00, to: 16:30, timezone: UTC}\n"
    )
    gameday = load_gameday(write(tmp_path / "gameday.yaml", text))
    assert gameday.window is not None
    assert (gameday.window.start, gameday.window.end) == (time(10, 0), time(16, 30))


# --- catalogs --------------------------------------------------------------------


def _service(**fields: Any) -> dict[str, Any]:
    base = {
        "name": "payment",
        "namespace": "shop",
        "tier": "core",
        "selector": {"labelSelectors": {"app": "p"}},
    }
    base.update(fields)
    return {k: v for k, v in base.items() if v is not None}


BAD_CATALOGS: list[tuple[str, list[dict[str, Any]], str, str]] = [
    ("no-services", [], "spec.services", "lists no services"),
    ("duplicate-name", [_service(), _service()], "spec.services[1].name", "listed twice"),
    ("name-not-dns", [_service(name="Payment")], "spec.services[0].name", "not a DNS-1123 label"),
    ("no-namespace", [_service(namespace=None)], "spec.services[0].namespace", "is required"),
    ("bad-namespace", [_service(namespace="Shop")], "spec.services[0].namespace", "not a DNS-1123 label"),
    ("no-tier", [_service(tier=None)], "spec.services[0].tier", "is required"),
    ("bad-tier", [_service(tier="critical")], "spec.services[0].tier", "must be one of non-core, core"),
    ("no-selector", [_service(selector=None)], "spec.services[0].selector", "is required"),
    (
        "whole-namespace",
        [_service(selector={"podPhaseSelectors": ["Running"]})],
        "spec.services[0].selector",
        "selects every pod in namespace shop",
    ),
    (
        "selector-namespaces",
        [_service(selector={"namespaces": ["shop"], "labelSelectors": {"a": "b"}})],
        "spec.services[0].selector.namespaces",
        "namespaces come from the service",
    ),
    (
        "pods-elsewhere",
        [_service(selector={"pods": {"other": ["p-0"]}})],
        "spec.services[0].selector",
        "not the service's namespace",
    ),
    ("alerts-not-list", [_service(alerts="PaymentErrors")], "spec.services[0].alerts", "must be a list"),
    (
        "alerts-not-strings",
        [_service(alerts=[{"name": "x"}])],
        "spec.services[0].alerts[0]",
        "non-empty string",
    ),
    ("unknown-field", [_service(tear="core")], "spec.services[0].tear", "did you mean 'tier'"),
    (
        "pods-and-labels",
        [_service(selector={"pods": {"shop": ["p-0"]}, "labelSelectors": {"a": "b"}})],
        "spec.services[0].selector.pods",
        "pods overrides every other selector field in Chaos Mesh, so labelSelectors would be ignored",
    ),
    (
        "only-exclusions",
        [_service(selector={"expressionSelectors": [{"key": "app", "operator": "NotIn", "values": ["db"]}]})],
        "spec.services[0].selector",
        "selects every pod in namespace shop",
    ),
]


@pytest.mark.parametrize(
    ("name", "services", "field", "reason"), BAD_CATALOGS, ids=[b[0] for b in BAD_CATALOGS]
)
def test_each_catalog_rule_rejects_bad_input(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    name: str,
    services: list[dict[str, Any]],
    field: str,
    reason: str,
) -> None:
    path = write(tmp_path / "catalog.yaml", catalog_doc(services))
    assert_rejected(capsys, path, field, reason)


def test_catalog_services_keep_order_and_pin_their_namespace(tmp_path: Path) -> None:
    services = [
        *SHOP_SERVICES,
        _service(name="ledger", namespace="bank", selector={"pods": {"bank": ["l-0"]}}),
    ]
    catalog = load_catalog(write(tmp_path / "catalog.yaml", catalog_doc(services)))
    assert [s.name for s in catalog.services] == [
        "frontend",
        "catalog",
        "recommendation",
        "cart",
        "payment",
        "ledger",
    ]
    payment = catalog.get("payment")
    assert payment is not None
    assert payment.tier is Tier.CORE
    assert (payment.owner, payment.alerts, payment.selector.namespaces) == (
        "team-payments",
        ("PaymentErrors",),
        ("shop",),
    )
    ledger = catalog.get("ledger")
    assert ledger is not None
    assert ledger.selector.pods == {"bank": ("l-0",)}


def test_find_catalog_looks_beside_and_up_to_two_parents(tmp_path: Path) -> None:
    deep = tmp_path / "a" / "b" / "c"
    deep.mkdir(parents=True)
    assert find_catalog(deep / "x.yaml") is None
    write(tmp_path / "catalog.yaml", catalog_doc())
    assert find_catalog(deep / "x.yaml") is None  # three levels up: too far
    assert find_catalog(tmp_path / "a" / "b" / "x.yaml") == tmp_path / "catalog.yaml"
    write(deep / "catalog.yaml", catalog_doc())
    assert find_catalog(deep / "x.yaml") == deep / "catalog.yaml"


# --- experiments -----------------------------------------------------------------

INLINE = {"namespace": "cards", "tier": "core", "selector": {"labelSelectors": {"app": "issuer"}}}


def test_experiment_with_catalog_service_or_inline_target(tmp_path: Path) -> None:
    shop(tmp_path)
    exp = load_experiment(write(tmp_path / "exp" / "e.yaml", experiment_doc("e", fault=pod())))
    assert (exp.service, exp.target, exp.source) == ("payment", None, tmp_path / "exp" / "e.yaml")
    inline = load_experiment(write(tmp_path / "i.yaml", experiment_doc("i", service=None, target=INLINE)))
    assert inline.service is None
    assert inline.target is not None
    assert (inline.target.name, inline.target.namespace, inline.target.tier) == ("i", "cards", Tier.CORE)
    assert resolve_service(inline, None).selector.label_selectors == {"app": "issuer"}


def test_fault_selector_narrows_the_service(tmp_path: Path) -> None:
    shop(tmp_path)
    fault = pod(
        selector={
            "labelSelectors": {"version": "v2"},
            "expressionSelectors": [{"key": "zone", "operator": "In", "values": ["a"]}],
        }
    )
    exp = load_experiment(write(tmp_path / "e.yaml", experiment_doc("e", fault=fault)))
    service = resolve_service(exp, load_catalog(tmp_path / "catalog.yaml"))
    assert service.selector.label_selectors == {"app": "payment", "version": "v2"}
    assert [e.key for e in service.selector.expression_selectors] == ["zone"]
    assert service.selector.namespaces == ("shop",)


def test_inline_target_may_rely_on_the_fault_selector(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bare = {"namespace": "cards", "tier": "core"}
    ok = write(
        tmp_path / "ok.yaml",
        experiment_doc(
            "ok", service=None, target=bare, fault=pod(selector={"labelSelectors": {"app": "issuer"}})
        ),
    )
    assert run_cli(capsys, "validate", ok)[0] == 0
    bad = write(tmp_path / "bad.yaml", experiment_doc("bad", service=None, target=bare, fault=pod()))
    assert_rejected(capsys, bad, "spec.target", "selects every pod in namespace cards")


BAD_EXPERIMENTS: list[tuple[str, dict[str, Any], str, str]] = [
    ("service-and-target", experiment_doc(target=INLINE), "spec", "exactly one of service"),
    ("neither", experiment_doc(service=None), "spec", "exactly one of service"),
    ("no-fault", {**experiment_doc(), "spec": {"service": "payment"}}, "spec.fault", "is required"),
    ("unknown-service", experiment_doc(service="paymnet"), "spec.service", "did you mean 'payment'"),
    (
        "kube-system",
        experiment_doc(service=None, target={**INLINE, "namespace": "kube-system"}),
        "spec.target",
        "allowKubeSystem: true",
    ),
    (
        "kube-system-target",
        experiment_doc(
            fault=network(
                direction="both",
                target={
                    "selector": {"namespaces": ["kube-system"], "labelSelectors": {"k8s-app": "kube-dns"}},
                    "mode": "one",
                },
            )
        ),
        "spec.service",
        "kube-system",
    ),
    (
        "target-no-namespace",
        experiment_doc(service=None, target={"tier": "core"}),
        "spec.target.namespace",
        "is required",
    ),
    (
        "target-bad-tier",
        experiment_doc(service=None, target={**INLINE, "tier": "gold"}),
        "spec.target.tier",
        "must be one of non-core, core",
    ),
    (
        "rules-missing",
        experiment_doc(hypothesis={"rules": ["rules/nope.yaml"]}),
        "spec.hypothesis.rules[0]",
        "not found",
    ),
    (
        "hypothesis-typo",
        experiment_doc(hypothesis={"rule": ["x.yaml"]}),
        "spec.hypothesis.rule",
        "did you mean 'rules'",
    ),
    (
        "narrowing-pods-by-name",
        experiment_doc(
            service=None,
            target={"namespace": "shop", "tier": "core", "selector": {"pods": {"shop": ["p-0"]}}},
            fault=pod(selector={"labelSelectors": {"version": "v2"}}),
        ),
        "spec.fault.podChaos.selector",
        "this fault selector would be ignored",
    ),
    (
        "inline-only-exclusions",
        experiment_doc(
            service=None,
            target={"namespace": "cards", "tier": "core"},
            fault=pod(selector={"expressionSelectors": [{"key": "tier", "operator": "DoesNotExist"}]}),
        ),
        "spec.target",
        "selects every pod in namespace cards",
    ),
    (
        "tags-not-list",
        {**experiment_doc(), "metadata": {"name": "e", "tags": "core"}},
        "metadata.tags",
        "must be a list",
    ),
]


@pytest.mark.parametrize(
    ("name", "doc", "field", "reason"), BAD_EXPERIMENTS, ids=[b[0] for b in BAD_EXPERIMENTS]
)
def test_each_experiment_rule_rejects_bad_input(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    name: str,
    doc: dict[str, Any],
    field: str,
    reason: str,
) -> None:
    path = write(shop(tmp_path) / "exp.yaml", doc)
    assert_rejected(capsys, path, field, reason)


def test_kube_system_refusal_says_how_to_allow_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(
        tmp_path / "e.yaml", experiment_doc(service=None, target={**INLINE, "namespace": "kube-system"})
    )
    err = assert_rejected(capsys, path, "spec.target", "kube-system")
    assert "GameDay with spec.safety.allowKubeSystem: true" in err


def test_experiment_without_a_catalog_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path / "e.yaml", experiment_doc())
    assert_rejected(capsys, path, "spec.service", "no catalog.yaml was found")
    catalog = write(tmp_path / "elsewhere" / "shop.yaml", catalog_doc())
    code, out, _ = run_cli(capsys, "validate", "--catalog", catalog, path)
    assert (code, out) == (0, f"ok  {path} (Experiment payment-delay)\n")


def test_experiment_metadata_and_rules(tmp_path: Path) -> None:
    shop(tmp_path)
    write(tmp_path / "rules" / "slo.yaml", "groups: []\n")
    doc = experiment_doc("e", hypothesis={"rules": ["rules/slo.yaml"]})
    doc["metadata"].update(description="slow payments", tags=["core", "latency"])
    exp = load_experiment(write(tmp_path / "e.yaml", doc))
    assert (exp.description, exp.tags, exp.rules) == (
        "slow payments",
        ("core", "latency"),
        (tmp_path / "rules" / "slo.yaml",),
    )


# --- game days -------------------------------------------------------------------


def _gameday_dir(tmp_path: Path) -> Path:
    shop(tmp_path)
    write(tmp_path / "exp" / "b-payment.yaml", experiment_doc("payment-kill", fault=pod()))
    write(tmp_path / "exp" / "a-catalog.yaml", experiment_doc("catalog-delay", service="catalog"))
    write(tmp_path / "rules" / "slo.yaml", "groups: []\n")
    return tmp_path


def test_gameday_fields_are_loaded(tmp_path: Path) -> None:
    base = _gameday_dir(tmp_path)
    doc = gameday_doc(
        experiments=["exp/b-payment.yaml", "exp/*.yaml"],
        rules=["rules/slo.yaml"],
        blastRadius=[{"mode": "one"}, {"mode": "fixed-percent", "value": 50}],
        gate="continue",
        safety={"allowNamespaces": ["shop"], "maxPercent": 50, "allowKubeSystem": False},
        window={"days": ["mon", "fri"], "from": "22:00", "to": "02:00", "timezone": "Asia/Shanghai"},
        recoveryTimeout="90s",
        recoveryTarget="45s",
        matrix={"services": {"tier": "non-core"}, "faults": [{"name": "kill", **pod()}]},
    )
    gameday = load_gameday(write(base / "gameday.yaml", doc))
    # A file listed first keeps its place when a later glob matches it again.
    assert [e.name for e in gameday.experiments] == ["payment-kill", "catalog-delay"]
    assert gameday.rules == (base / "rules" / "slo.yaml",)
    assert gameday.blast_radius == (RampLevel(mode=Mode.ONE), RampLevel(mode=Mode.FIXED_PERCENT, value="50"))
    assert (gameday.gate, gameday.recovery_timeout_s, gameday.catalog.source) == (
        Gate.CONTINUE,
        90.0,
        base / "catalog.yaml",
    )
    assert gameday.recovery_target_s == 45.0
    assert (gameday.safety.allow_namespaces, gameday.safety.max_percent) == (("shop",), 50)
    assert gameday.window is not None
    assert gameday.window.timezone == "Asia/Shanghai"
    assert gameday.matrix is not None
    assert gameday.matrix.services is Tier.NON_CORE


def test_gameday_defaults_and_catalog_lookup(tmp_path: Path) -> None:
    base = _gameday_dir(tmp_path)
    doc = gameday_doc()
    del doc["spec"]["catalog"]
    gameday = load_gameday(
        write(base / "days" / "gameday.yaml", {**doc, "spec": {"experiments": ["../exp/*.yaml"]}})
    )
    assert [e.name for e in gameday.experiments] == ["catalog-delay", "payment-kill"]  # sorted within a glob
    assert (gameday.gate, gameday.recovery_timeout_s, gameday.window, gameday.matrix) == (
        Gate.STOP,
        120.0,
        None,
        None,
    )
    assert gameday.recovery_target_s == 60.0
    other = write(tmp_path / "other" / "catalog.yaml", catalog_doc([*SHOP_SERVICES, _service(name="extra")]))
    assert len(load_gameday(base / "days" / "gameday.yaml", catalog_path=other).catalog.services) == 6


BAD_GAMEDAYS: list[tuple[str, dict[str, Any], str, str]] = [
    ("catalog-missing", {"catalog": "nope.yaml"}, "spec.catalog", "not found"),
    ("nothing-to-run", {"experiments": []}, "spec", "nothing to run"),
    ("glob-no-match", {"experiments": ["exp/*.yml"]}, "spec.experiments[0]", "matches no file"),
    ("experiments-not-list", {"experiments": "exp/*.yaml"}, "spec.experiments", "must be a list"),
    ("rules-missing", {"rules": ["rules/nope.yaml"]}, "spec.rules[0]", "not found"),
    ("gate-typo", {"gate": "halt"}, "spec.gate", "must be one of stop, continue"),
    ("spec-typo", {"blastradius": []}, "spec.blastradius", "did you mean 'blastRadius'"),
    ("ramp-bad-mode", {"blastRadius": [{"mode": "half"}]}, "spec.blastRadius[0].mode", "must be one of"),
    (
        "ramp-fixed-no-value",
        {"blastRadius": [{"mode": "fixed"}]},
        "spec.blastRadius[0].value",
        "is required with mode fixed",
    ),
    (
        "ramp-percent-over",
        {"blastRadius": [{"mode": "fixed-percent", "value": "150"}]},
        "spec.blastRadius[0].value",
        "(0, 100]",
    ),
    (
        "ramp-typo",
        {"blastRadius": [{"mode": "one", "vaule": "1"}]},
        "spec.blastRadius[0].vaule",
        "did you mean 'value'",
    ),
    ("max-percent-zero", {"safety": {"maxPercent": 0}}, "spec.safety.maxPercent", "at least 1"),
    ("max-percent-over", {"safety": {"maxPercent": 101}}, "spec.safety.maxPercent", "at most 100"),
    (
        "allow-kube-system-text",
        {"safety": {"allowKubeSystem": "sure"}},
        "spec.safety.allowKubeSystem",
        "true or false",
    ),
    (
        "allow-namespaces-bad",
        {"safety": {"allowNamespaces": ["Shop"]}},
        "spec.safety.allowNamespaces[0]",
        "DNS-1123",
    ),
    (
        "allow-kube-system-namespace",
        {"safety": {"allowNamespaces": ["kube-system"]}},
        "spec.safety.allowNamespaces",
        "allowKubeSystem: true",
    ),
    (
        "window-day",
        {"window": {"days": ["monday"], "from": "10:00", "to": "16:00", "timezone": "UTC"}},
        "spec.window.days[0]",
        "did you mean 'mon'",
    ),
    (
        "window-no-days",
        {"window": {"days": [], "from": "10:00", "to": "16:00", "timezone": "UTC"}},
        "spec.window.days",
        "lists no days",
    ),
    (
        "window-from",
        {"window": {"days": ["mon"], "from": "25:00", "to": "16:00", "timezone": "UTC"}},
        "spec.window.from",
        "HH:MM",
    ),
    (
        "window-empty",
        {"window": {"days": ["mon"], "from": "10:00", "to": "10:00", "timezone": "UTC"}},
        "spec.window.to",
        "would be empty",
    ),
    (
        "window-timezone",
        {"window": {"days": ["mon"], "from": "10:00", "to": "16:00", "timezone": "Mars/Base"}},
        "spec.window.timezone",
        "not an IANA time zone",
    ),
    (
        "window-no-timezone",
        {"window": {"days": ["mon"], "from": "10:00", "to": "16:00"}},
        "spec.window.timezone",
        "is required",
    ),
    ("recovery-timeout", {"recoveryTimeout": "2 minutes"}, "spec.recoveryTimeout", "Go duration"),
    ("recovery-target", {"recoveryTarget": "a minute"}, "spec.recoveryTarget", "Go duration"),
    ("recovery-target-zero", {"recoveryTarget": "0s"}, "spec.recoveryTarget", "longer than zero"),
    (
        "matrix-no-faults",
        {"matrix": {"services": "all", "faults": []}},
        "spec.matrix.faults",
        "lists no faults",
    ),
    (
        "matrix-unknown-service",
        {"matrix": {"services": ["paymnt"], "faults": [{"name": "k", **pod()}]}},
        "spec.matrix.services[0]",
        "did you mean 'payment'",
    ),
    (
        "matrix-services-text",
        {"matrix": {"services": "some", "faults": [{"name": "k", **pod()}]}},
        "spec.matrix.services",
        "must be all, a list",
    ),
    (
        "matrix-tier",
        {"matrix": {"services": {"tier": "gold"}, "faults": [{"name": "k", **pod()}]}},
        "spec.matrix.services.tier",
        "non-core, core",
    ),
    (
        "matrix-fault-name",
        {"matrix": {"faults": [{"name": "Kill", **pod()}]}},
        "spec.matrix.faults[0].name",
        "DNS-1123",
    ),
    ("matrix-fault-no-name", {"matrix": {"faults": [pod()]}}, "spec.matrix.faults[0].name", "is required"),
    (
        "matrix-fault-twice",
        {"matrix": {"faults": [{"name": "k", **pod()}, {"name": "k", **pod()}]}},
        "spec.matrix.faults[1].name",
        "used twice",
    ),
    (
        "matrix-fault-invalid",
        {"matrix": {"faults": [{"name": "k", **pod(duration=None)}]}},
        "spec.matrix.faults[0].podChaos.duration",
        "is required",
    ),
    (
        "matrix-selector-conflict",
        {"matrix": {"faults": [{"name": "k", **pod(selector={"labelSelectors": {"app": "x"}})}]}},
        "spec.matrix.faults[0]",
        "conflicts with the service's",
    ),
    (
        "matrix-name-too-long",
        {"matrix": {"faults": [{"name": "k" * 60, **pod()}]}},
        "spec.matrix",
        "would exceed 63 characters",
    ),
    (
        "matrix-name-clash",
        {"matrix": {"services": ["payment"], "faults": [{"name": "kill", **pod()}]}},
        "spec.matrix",
        "has the name of experiment",
    ),
]


@pytest.mark.parametrize(("name", "spec", "field", "reason"), BAD_GAMEDAYS, ids=[b[0] for b in BAD_GAMEDAYS])
def test_each_gameday_rule_rejects_bad_input(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    name: str,
    spec: dict[str, Any],
    field: str,
    reason: str,
) -> None:
    path = write(_gameday_dir(tmp_path) / "gameday.yaml", gameday_doc(**spec))
    assert_rejected(capsys, path, field, reason)


def test_an_error_in_a_listed_experiment_names_that_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = _gameday_dir(tmp_path)
    broken = write(base / "exp" / "c-broken.yaml", experiment_doc("broken", fault=network(mode="fixed")))
    code, _, err = run_cli(capsys, "validate", write(base / "gameday.yaml", gameday_doc()))
    assert code == 2
    assert err.startswith(f"{broken}:")
    assert "spec.fault.networkChaos.value" in err


def test_a_matrix_that_selects_no_service_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Otherwise the game day validates, plans zero steps and a run does nothing, silently.
    shop(tmp_path, [s for s in SHOP_SERVICES if s["tier"] == "core"])
    matrix = {"services": {"tier": "non-core"}, "faults": [{"name": "kill", **pod()}]}
    path = write(tmp_path / "gameday.yaml", gameday_doc(experiments=(), matrix=matrix))
    reason = "selects no service: catalog shop has no non-core service"
    assert_rejected(capsys, path, "spec.matrix.services", reason)


def test_duplicate_experiment_names_in_a_gameday(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = _gameday_dir(tmp_path)
    write(base / "exp" / "c-again.yaml", experiment_doc("payment-kill"))
    assert_rejected(
        capsys, write(base / "gameday.yaml", gameday_doc()), "spec.experiments", "is used by both"
    )


def test_kube_system_needs_the_gameday_to_allow_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = shop(tmp_path)
    write(
        base / "exp" / "dns.yaml",
        experiment_doc(
            "dns-kill",
            service=None,
            fault=pod(),
            target={
                "namespace": "kube-system",
                "tier": "core",
                "selector": {"labelSelectors": {"k8s-app": "kube-dns"}},
            },
        ),
    )
    code, _, err = run_cli(capsys, "validate", write(base / "gameday.yaml", gameday_doc()))
    assert code == 2
    assert err.startswith(f"{base / 'exp' / 'dns.yaml'}:")
    assert "spec.target: service 'dns-kill' is in namespace kube-system" in err
    assert "this game day does not allow kube-system (set spec.safety.allowKubeSystem: true)" in err
    allowed = write(base / "allowed.yaml", gameday_doc(safety={"allowKubeSystem": True}))
    assert run_cli(capsys, "validate", allowed)[0] == 0


def test_load_any_returns_the_kind_in_the_file(tmp_path: Path) -> None:
    base = _gameday_dir(tmp_path)
    assert isinstance(load_any(base / "catalog.yaml"), Catalog)
    assert isinstance(load_any(base / "exp" / "a-catalog.yaml"), Experiment)
    assert isinstance(load_any(write(base / "gameday.yaml", gameday_doc())), GameDay)
    with pytest.raises(InvalidInputError, match="kind: must be one of Catalog"):
        load_catalog(base / "exp" / "a-catalog.yaml")


def test_resolve_service_names_what_is_wrong(tmp_path: Path) -> None:
    catalog = load_catalog(write(tmp_path / "catalog.yaml", catalog_doc()))
    experiment = load_experiment(write(tmp_path / "e.yaml", experiment_doc("e", fault=pod())))
    assert resolve_service(experiment, catalog).name == "payment"
    missing = replace(experiment, service="paymnt")
    with pytest.raises(
        InvalidInputError, match=re.escape("spec.service: unknown service 'paymnt' (did you mean 'payment'")
    ):
        resolve_service(missing, catalog)
    with pytest.raises(InvalidInputError, match="no catalog was given"):
        resolve_service(experiment, None)
    conflict = replace(
        experiment, fault=replace(experiment.fault, selector=Selector(label_selectors={"app": "x"}))
    )
    with pytest.raises(
        InvalidInputError, match=re.escape("spec.fault.podChaos.selector: labelSelectors.app")
    ):
        resolve_service(conflict, catalog)
