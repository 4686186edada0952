"""docs/python-api.md runs: every ```python block, in order and in one namespace, from a
folder holding a copy of experiments/, with the fake Kubernetes API (and its Chaos Mesh
emulator) as the cluster and a real Prometheus scraping the shop's exporters."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes.kube_api import write_kubeconfig
from tests.support.gameday import SERVICES, poll
from tests.support.kube import start_cluster, stop_cluster
from tests.support.prometheus import ShopExporter, instant, require_prometheus, start_prometheus

pytestmark = [pytest.mark.prometheus, pytest.mark.timeout(240)]

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "python-api.md"
SHOP_RULES = ROOT / "experiments" / "rules" / "shop-slo.yaml"


def code_blocks(text: str) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", text, flags=re.DOTALL | re.MULTILINE)


@pytest.fixture
def shop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    require_prometheus()
    exporters = {name: ShopExporter(name) for name, _tier in SERVICES}
    for exporter in exporters.values():
        exporter.start()
    prometheus = cluster = None
    try:
        prometheus = start_prometheus(tmp_path / "prometheus", rule_files=[SHOP_RULES],
                                      targets={n: e.port for n, e in exporters.items()})
        cluster = start_cluster()
        monkeypatch.setenv("KUBECONFIG", str(write_kubeconfig(tmp_path, cluster.url)))
        monkeypatch.setenv("CHAOSLAB_PROMETHEUS_URL", prometheus.url)
        work = tmp_path / "work"
        shutil.copytree(ROOT / "experiments", work / "experiments")
        monkeypatch.chdir(work)
        # Every SLO ratio has data (rate windows filled), as on a live system.
        url = prometheus.url
        poll(lambda: _services_with_traffic(url) == len(SERVICES), timeout=60,
             what="traffic of every service in Prometheus", interval=0.3)
        yield work
    finally:
        if cluster is not None:
            stop_cluster(cluster)
        if prometheus is not None:
            prometheus.stop()
        for exporter in exporters.values():
            exporter.stop()


def _services_with_traffic(url: str) -> int:
    expr = 'count(sum by (service) (rate(http_requests_total{namespace="shop"}[10s])) >= 0)'
    found = instant(url, expr)
    return int(float(found[0]["value"][1])) if found else 0


def test_the_doc_has_examples() -> None:
    assert len(code_blocks(DOC.read_text())) >= 5


def test_every_example_of_the_python_api_doc_runs(shop: Path, capsys: pytest.CaptureFixture[str]) -> None:
    namespace: dict[str, object] = {"__name__": "python_api_doc"}
    for number, block in enumerate(code_blocks(DOC.read_text()), start=1):
        try:
            exec(compile(block, f"{DOC.name}, block {number}", "exec"), namespace)
        except Exception as exc:
            raise AssertionError(f"block {number} of {DOC.name} failed: {exc!r}\n{block}") from exc
    out = capsys.readouterr().out
    assert "fault.networkChaos.delay.latency" in out
    assert (shop / "generated" / "weekly.yaml").is_file()
    assert not (shop / "generated" / "catalog.yaml").exists()  # the catalog came from a file
