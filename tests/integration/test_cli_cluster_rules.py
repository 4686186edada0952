"""`--rules k8s://NAMESPACE/` reads PrometheusRule objects through the Kubernetes API."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chaoslab.cli.main import main
from tests.fakes.kube_store import PROMETHEUS_RULES
from tests.support.kube import FakeCluster, kube_fixture, kubeconfig_fixture  # noqa: F401

CATALOG = Path(__file__).resolve().parents[2] / "experiments" / "catalog.yaml"


def _prometheus_rule(namespace: str, name: str, alert: str, service: str) -> dict[str, object]:
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"groups": [{"name": "slo", "rules": [
            {"record": "job:errors:ratio", "expr": "sum(rate(errors[1m]))"},
            {"alert": alert, "expr": f'error_ratio{{service="{service}"}} > 0.01', "for": "2m",
             "labels": {"severity": "page"}},
        ]}]},
    }


def test_hypothesis_from_prometheusrule_objects_in_the_cluster(
    kube: FakeCluster, kubeconfig: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    kube.store.create(PROMETHEUS_RULES, "monitoring", _prometheus_rule("monitoring", "payment-slo",
                                                                       "PaymentErrors", "payment"))
    kube.store.create(PROMETHEUS_RULES, "shop", _prometheus_rule("shop", "cart-slo", "CartErrors", "cart"))

    code = main(["hypothesis", "--rules", "k8s://monitoring/", "--service", "payment",
                 "--catalog", str(CATALOG), "--format", "json"])

    assert code == 0
    hypothesis = json.loads(capsys.readouterr().out)
    assert [p["provider"]["arguments"]["alert"] for p in hypothesis["probes"]] == ["PaymentErrors"]


def test_unreachable_cluster_for_rules_is_an_infrastructure_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.fakes.kube_api import write_kubeconfig

    monkeypatch.setenv("KUBECONFIG", str(write_kubeconfig(tmp_path, "http://127.0.0.1:9")))
    code = main(["hypothesis", "--rules", "k8s://monitoring/", "--service", "payment",
                 "--catalog", str(CATALOG)])
    assert code == 3
    err = capsys.readouterr().err
    assert "prometheusrules" in err
    assert "Traceback" not in err


def test_recording_rules_in_the_cluster_give_the_windows_of_alerts_in_a_file(
    kube: FakeCluster, kubeconfig: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import yaml

    from tests.support.burnrate import pyrra_rules

    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    pyrra = pyrra_rules("payment", job="payment")
    group = pyrra["spec"]["groups"][0]
    records = [r for r in group["rules"] if "record" in r]
    alerts = [r for r in group["rules"] if "alert" in r]
    pyrra["spec"]["groups"][0] = {**group, "rules": records}
    kube.store.create(PROMETHEUS_RULES, "monitoring", pyrra)
    alert_file = tmp_path / "alerts.yaml"
    alert_file.write_text(yaml.safe_dump({"groups": [{"name": "payment-alerts", "rules": alerts}]}))

    code = main(["hypothesis", "--rules", str(alert_file), "k8s://monitoring/", "--service", "payment",
                 "--catalog", str(CATALOG)])

    assert code == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("ErrorBudgetBurn")]
    assert [row.split("  ")[0] for row in rows] == ["ErrorBudgetBurn"] * 4
    assert ["5m leg > 14 %" in rows[0], "30m leg > 7 %" in rows[1]] == [True, True]
