"""Kubernetes API requests per experiment, through the Chaos Mesh backend.

Runs experiments against the fake API server with the Chaos Mesh controller emulator
(the real ``kubernetes`` client over HTTP) and prints the requests by verb. Goal: at
most 10 per experiment — the backend watches, it does not poll.

- port: preflight → apply → wait_injected → remove, as chaoslab's runner drives it;
- ctk: inject_fault → remove_fault, as `chaos run` of an exported experiment does;
- failure: an injection that Chaos Mesh reports Failed (created, watched, removed).

Prints figures; it is not a test. Usage: python benchmarks/bench_k8s_requests.py [--runs N]
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))  # the fakes live in tests/, which is not installed

from chaoslab.chaosmesh import actions  # noqa: E402
from chaoslab.chaosmesh.backend import KubernetesBackend, connect  # noqa: E402
from chaoslab.errors import InjectionError  # noqa: E402
from chaoslab.model import Delay, FaultRequest, Mode, NetworkAction, NetworkChaos, Selector, Service, Tier  # noqa: E402
from tests.fakes.kube_api import write_kubeconfig  # noqa: E402
from tests.support.kube import FakeCluster, network_delay, start_cluster, stop_cluster  # noqa: E402

GOAL = 10
PAYMENT = Service(name="payment", namespace="shop", tier=Tier.CORE,
                  selector=Selector(label_selectors={"app": "payment"}))


def port_flow(backend: KubernetesBackend, run: int) -> None:
    fault = NetworkChaos(action=NetworkAction.DELAY, mode=Mode.ALL, duration="60s",
                         delay=Delay(latency="200ms"))
    request = FaultRequest(experiment="payment-delay", step="payment-delay", service=PAYMENT, fault=fault,
                           run_id=f"20261127T101500Z-{run:04x}")
    backend.preflight(request)
    handle = backend.apply(request)
    backend.wait_injected(handle, timeout=30)
    backend.remove(handle, timeout=60)


def ctk_flow(backend: KubernetesBackend, run: int) -> None:
    config = {"chaoslab_run_id": f"20261127T101500Z-{run:04x}"}
    actions.inject_fault(network_delay(), timeout=30, configuration=config)
    actions.remove_fault("NetworkChaos", "shop", "payment-delay", timeout=60, configuration=config)


def failure_flow(backend: KubernetesBackend, run: int) -> None:
    handle = backend.create(network_delay(name="doomed"), run_id=f"20261127T101500Z-{run:04x}")
    try:
        backend.wait_injected(handle, timeout=30)
    except InjectionError:
        return
    raise AssertionError("the emulator was told to fail this injection")


def measure(name: str, flow: Callable[[KubernetesBackend, int], None], *, runs: int,
            cluster: FakeCluster, backend: KubernetesBackend) -> bool:
    totals, seconds = [], []
    by_verb: dict[str, int] = {}
    for run in range(runs):
        cluster.server.reset_counts()
        started = time.perf_counter()
        flow(backend, run)
        seconds.append(time.perf_counter() - started)
        by_verb = cluster.server.by_verb()
        totals.append(sum(by_verb.values()))
        assert not cluster.chaos_objects(), "a fault was left behind"
    worst = max(totals)
    verbs = ", ".join(f"{verb} {count}" for verb, count in by_verb.items())
    status = "ok" if worst <= GOAL else "OVER GOAL"
    print(f"{name:8s} requests/experiment: {worst:2d} (goal <= {GOAL}, {status})  [{verbs}]  "
          f"median {statistics.median(seconds) * 1000:.0f} ms over {runs} runs")
    return worst <= GOAL


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    logging.getLogger("chaoslab").setLevel(logging.ERROR)  # the failure flow warns on purpose
    cluster = start_cluster()
    cluster.emulator.fail_injection("doomed-*", "unable to set tc rules")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            kubeconfig = write_kubeconfig(Path(tmp), cluster.url)
            os.environ["KUBECONFIG"] = str(kubeconfig)  # the CTK actions connect on their own
            backend = connect(kubeconfig=str(kubeconfig))
            flows = {"port": port_flow, "ctk": ctk_flow, "failure": failure_flow}
            ok = [measure(name, flow, runs=args.runs, cluster=cluster, backend=backend)
                  for name, flow in flows.items()]
    finally:
        stop_cluster(cluster)
    return 0 if all(ok) else 1


if __name__ == "__main__":
    sys.exit(main())
