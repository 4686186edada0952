"""The Chaos Mesh backend driving the real ``kubernetes`` client over HTTP against the
fake API server and the Chaos Mesh controller emulator."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from chaoslab.chaosmesh.backend import KubernetesBackend, connect, load_rules_from_cluster
from chaoslab.chaosmesh.objects import PAUSE_ANNOTATION, conditions, parse_rules_uri
from chaoslab.cli.cluster_rules import load_rules_from
from chaoslab.errors import CleanupError, InjectionError, InvalidInputError, KubernetesError, PreflightError
from chaoslab.model import (
    ChaosKind,
    Delay,
    FaultHandle,
    FaultRequest,
    Mode,
    NetworkAction,
    NetworkChaos,
    Selector,
    Service,
    Tier,
)
from chaoslab.ports import ChaosBackend
from tests.fakes.kube_api import parse_route, write_kubeconfig
from tests.fakes.kube_store import NETWORK_CHAOS, PODS, PROMETHEUS_RULES, not_found
from tests.support.kube import (  # noqa: F401 - fixtures imported by name
    RUN_ID,
    FakeCluster,
    backend_fixture,
    kube_fixture,
    kubeconfig_fixture,
    network_delay,
    pod_kill,
    wait_for,
)

RBAC = Path(__file__).resolve().parents[2] / "deploy" / "rbac.yaml"
PAYMENT = Service(name="payment", namespace="shop", tier=Tier.CORE,
                  selector=Selector(label_selectors={"app": "payment"}))


def _request(mode: Mode = Mode.ALL, value: str | None = None, service: Service = PAYMENT) -> FaultRequest:
    fault = NetworkChaos(action=NetworkAction.DELAY, mode=mode, value=value, duration="60s",
                         delay=Delay(latency="200ms"))
    return FaultRequest(experiment="payment-delay", step="payment-delay", service=service, fault=fault,
                        run_id=RUN_ID)


def _handle(name: str, namespace: str = "shop") -> FaultHandle:
    return FaultHandle(kind=ChaosKind.NETWORK_CHAOS, name=name, namespace=namespace)


# --- connect -----------------------------------------------------------------------------


def test_connect_follows_kubeconfig_and_current_context(kube: FakeCluster, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_kubeconfig(tmp_path, kube.url, context="fake", extra_contexts=("other",))
    monkeypatch.setenv("KUBECONFIG", str(path))
    monkeypatch.delenv("KUBERNETES_CONTEXT", raising=False)
    instance = connect()
    assert isinstance(instance, ChaosBackend)
    assert instance.host == kube.url
    assert instance.list_faults() == []


def test_connect_honours_kubernetes_context(kube: FakeCluster, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_kubeconfig(tmp_path, kube.url, context="fake", extra_contexts=("other",))
    monkeypatch.setenv("KUBECONFIG", str(path))
    monkeypatch.setenv("KUBERNETES_CONTEXT", "other")
    assert connect().context == "other"
    monkeypatch.setenv("KUBERNETES_CONTEXT", "missing")
    with pytest.raises(KubernetesError, match="missing"):
        connect()


def test_connect_without_any_configuration(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "absent"))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    with pytest.raises(KubernetesError, match="no Kubernetes configuration"):
        connect()


def test_connect_merges_several_kubeconfig_files(kube: FakeCluster, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = write_kubeconfig(tmp_path / "a", "http://127.0.0.1:9", context="elsewhere")
    second = write_kubeconfig(tmp_path / "b", kube.url, context="fake")
    monkeypatch.delenv("KUBERNETES_CONTEXT", raising=False)
    # kubectl's rule: the first file that sets current-context wins, missing files are skipped.
    monkeypatch.setenv("KUBECONFIG", f"{tmp_path / 'absent'}:{first}:{second}")
    assert connect().host == "http://127.0.0.1:9"
    monkeypatch.setenv("KUBERNETES_CONTEXT", "fake")
    instance = connect()
    assert (instance.host, instance.context) == (kube.url, "fake")
    assert instance.list_faults() == []


def test_connect_in_cluster_uses_the_service_account(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from kubernetes.config import incluster_config  # the library's own paths, pointed at test files

    (tmp_path / "token").write_text("sa-token")
    (tmp_path / "ca.crt").write_text("not a real certificate")
    monkeypatch.setattr(incluster_config, "SERVICE_TOKEN_FILENAME", str(tmp_path / "token"))
    monkeypatch.setattr(incluster_config, "SERVICE_CERT_FILENAME", str(tmp_path / "ca.crt"))
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "absent"))
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "443")
    instance = connect()
    assert instance.host == "https://10.96.0.1:443"
    assert instance.api_client.configuration.get_api_key_with_prefix("BearerToken").endswith(" sa-token")
    monkeypatch.delenv("KUBERNETES_SERVICE_PORT")
    with pytest.raises(KubernetesError, match=r"cannot load the Kubernetes configuration"):
        connect()


@pytest.mark.parametrize("content", ["apiVersion: v1\nclusters: [\n  oops", "contexts: 5", "[1, 2]", ""],
                         ids=["bad-yaml", "wrong-type", "a-list", "empty"])
def test_a_broken_kubeconfig_is_a_clear_error(tmp_path: Path, content: str) -> None:
    path = tmp_path / "kubeconfig"
    path.write_text(content)
    with pytest.raises(KubernetesError, match=f"cannot load the Kubernetes configuration from {path}: "):
        connect(kubeconfig=str(path))
    with pytest.raises(KubernetesError, match="cannot load the Kubernetes configuration"):
        connect(kubeconfig=str(tmp_path))  # a directory


def test_unreachable_api_is_a_kubernetes_error(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    instance = connect(kubeconfig=str(write_kubeconfig(tmp_path, f"http://127.0.0.1:{port}")))
    with pytest.raises(KubernetesError, match=r"list pods in shop: cannot reach the Kubernetes API"):
        instance.preflight_manifest(network_delay())


# --- preflight ---------------------------------------------------------------------------


@pytest.mark.parametrize(("mode", "value", "hits"), [
    (Mode.ALL, None, 2), (Mode.ONE, None, 1), (Mode.FIXED, "5", 2), (Mode.FIXED_PERCENT, "50", 1),
    (Mode.FIXED_PERCENT, "10", 1), (Mode.RANDOM_MAX_PERCENT, "100", 2),
    (Mode.RANDOM_MAX_PERCENT, "30", 1),  # Chaos Mesh rounds up: 30% of 2 pods may hit one
])
def test_preflight_reports_how_many_pods_the_mode_hits(backend: KubernetesBackend, kube: FakeCluster,
                                                       mode: Mode, value: str | None, hits: int) -> None:
    result = backend.preflight(_request(mode, value))
    assert result.matched == ("shop/payment-7d4b9-00000", "shop/payment-7d4b9-00001")
    assert result.will_hit == hits
    assert kube.chaos_objects() == []


def test_preflight_refuses_a_selector_without_running_pods(backend: KubernetesBackend,
                                                           kube: FakeCluster) -> None:
    ghost = Service(name="ghost", namespace="bank", tier=Tier.CORE,
                    selector=Selector(label_selectors={"app": "ghost"}))
    with pytest.raises(PreflightError, match=r"^selector app=ghost in bank matches no running pod"):
        backend.preflight(_request(service=ghost))
    assert kube.server.count("create") == 0
    assert kube.chaos_objects() == []


def test_preflight_skips_pods_that_are_not_running(backend: KubernetesBackend, kube: FakeCluster) -> None:
    kube.store.add_pod("shop", "batch-1", labels={"app": "batch"}, phase="Succeeded")
    _terminating_pod(kube, "batch-2", labels={"app": "batch"})
    with pytest.raises(PreflightError, match=r"matches no running pod \(2 matching pods are not Running or "
                                             r"are being deleted\)"):
        backend.preflight_manifest(network_delay(app="batch"))
    kube.store.add_pod("shop", "batch-3", labels={"app": "batch"})
    result = backend.preflight_manifest(network_delay(app="batch", mode="one"))
    assert (result.matched, result.will_hit) == (("shop/batch-3",), 1)
    assert "2 more matching pods are not Running or are being deleted, and Chaos Mesh may pick them" in (
        result.description)


def _terminating_pod(kube: FakeCluster, name: str, *, labels: dict[str, str]) -> None:
    """A Running pod in its grace period: deletionTimestamp set, still listed."""
    kube.store.add_pod("shop", name, labels=labels)
    kube.store.mutate(PODS, "shop", name, lambda o: o["metadata"].update(finalizers=["example.com/hold"]))
    kube.store.delete(PODS, "shop", name)


@pytest.fixture
def varied_pods(kube: FakeCluster) -> FakeCluster:
    """Pods of app=web in shop and bank, differing in one selector field each."""
    kube.store.add_pod("shop", "web-a", labels={"app": "web", "tier": "gold"}, annotations={"canary": "yes"},
                       node="node-a")
    kube.store.add_pod("shop", "web-b", labels={"app": "web", "tier": "silver"}, node="node-b")
    kube.store.add_pod("shop", "web-c", labels={"app": "web"}, phase="Pending", node="node-b")
    kube.store.add_pod("bank", "web-d", labels={"app": "web"}, node="node-a")
    return kube


@pytest.mark.parametrize(("selector", "expected"), [
    ({"labelSelectors": {"app": "web"}}, ["shop/web-a", "shop/web-b"]),
    ({"namespaces": ["shop", "bank"], "labelSelectors": {"app": "web"}},
     ["bank/web-d", "shop/web-a", "shop/web-b"]),
    ({"labelSelectors": {"app": "web"}, "annotationSelectors": {"canary": "yes"}}, ["shop/web-a"]),
    ({"labelSelectors": {"app": "web"}, "fieldSelectors": {"spec.nodeName": "node-b"}}, ["shop/web-b"]),
    ({"labelSelectors": {"app": "web"}, "podPhaseSelectors": ["Running"]}, ["shop/web-a", "shop/web-b"]),
    ({"labelSelectors": {"app": "web"}, "nodes": ["node-a"]}, ["shop/web-a"]),
    ({"expressionSelectors": [{"key": "tier", "operator": "NotIn", "values": ["gold"]},
                              {"key": "app", "operator": "In", "values": ["web", "api"]}]}, ["shop/web-b"]),
    ({"labelSelectors": {"app": "nothing"}, "pods": {"bank": ["web-d", "gone"], "shop": ["web-c"]}},
     ["bank/web-d"]),
], ids=["labels", "namespaces", "annotations", "fields", "phases", "nodes", "expressions", "pods-override"])
def test_preflight_follows_each_selector_field(backend: KubernetesBackend, varied_pods: FakeCluster,
                                               selector: dict[str, object], expected: list[str]) -> None:
    manifest = network_delay()
    manifest["spec"]["selector"] = selector
    assert sorted(backend.preflight_manifest(manifest).matched) == expected


@pytest.mark.parametrize(("expression", "problem"), [
    ({"key": "app", "operator": "In", "values": []}, "must not be empty for In"),
    ({"key": "app", "operator": "Exists", "values": ["x"]}, "must be empty for Exists"),
])
def test_preflight_rejects_expressions_the_api_server_would(backend: KubernetesBackend, kube: FakeCluster,
                                                           expression: dict[str, object],
                                                           problem: str) -> None:
    manifest = network_delay()
    manifest["spec"]["selector"]["expressionSelectors"] = [expression]
    with pytest.raises(InvalidInputError, match=rf"expressionSelectors\[0\]\.values: {problem}"):
        backend.preflight_manifest(manifest)
    assert kube.server.count() == 0


def test_preflight_pushes_label_expressions_to_the_server(backend: KubernetesBackend,
                                                          kube: FakeCluster) -> None:
    manifest = network_delay()
    manifest["spec"]["selector"] = {"namespaces": ["shop"], "expressionSelectors": [
        {"key": "app", "operator": "In", "values": ["payment", "cart"]},
        {"key": "tier", "operator": "DoesNotExist"}]}
    result = backend.preflight_manifest(manifest)
    assert len(result.matched) == 4
    assert kube.server.count("list", path_contains="/namespaces/shop/pods") == 1


def test_preflight_with_explicit_pods_overrides_labels(backend: KubernetesBackend) -> None:
    manifest = network_delay(app="nothing")
    manifest["spec"]["selector"]["pods"] = {"shop": ["cart-7d4b9-00001"]}
    assert backend.preflight_manifest(manifest).matched == ("shop/cart-7d4b9-00001",)


def _with_target(app: str) -> dict[str, object]:
    return network_delay(direction="both", target={
        "mode": "all", "selector": {"namespaces": ["shop"], "labelSelectors": {"app": app}}})


def test_preflight_reports_the_network_target(backend: KubernetesBackend) -> None:
    manifest = _with_target("cart")
    assert "target app=cart: 2 running pods" in backend.preflight_manifest(manifest).description
    backend.wait_injected(backend.create(manifest, run_id=RUN_ID), timeout=10)


def test_preflight_refuses_a_network_target_without_running_pods(backend: KubernetesBackend,
                                                                 kube: FakeCluster) -> None:
    manifest = _with_target("ghost")
    with pytest.raises(PreflightError, match=r"^target selector app=ghost in shop matches no running pod; "
                                             r"nothing was created"):
        backend.preflight_manifest(manifest)
    # What Chaos Mesh does with it: Selected=False, and nothing ever happens.
    handle = backend.create(manifest, run_id=RUN_ID)
    _wait_stalled(kube, handle.name)
    with pytest.raises(InjectionError, match=r"not injected within 1s \(Selected=False"):
        backend.wait_injected(handle, timeout=1)


def test_preflight_rejects_an_unknown_mode(backend: KubernetesBackend) -> None:
    with pytest.raises(InvalidInputError, match=r"spec\.mode"):
        backend.preflight_manifest(network_delay(mode="most"))


# --- inject ------------------------------------------------------------------------------


def test_apply_wait_remove_through_the_port(backend: KubernetesBackend, kube: FakeCluster) -> None:
    request = _request()
    backend.preflight(request)
    handle = backend.apply(request)
    assert handle.name == "payment-delay-3f2a"
    assert (handle.run_id, handle.experiment) == (RUN_ID, "payment-delay")
    stored = kube.store.get(NETWORK_CHAOS, "shop", handle.name)
    assert stored["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "chaoslab"
    assert stored["metadata"]["labels"]["chaoslab.io/run-id"] == RUN_ID
    backend.wait_injected(handle, timeout=10)
    assert conditions(kube.store.get(NETWORK_CHAOS, "shop", handle.name))["AllInjected"]["status"] == "True"
    backend.remove(handle, timeout=10)
    assert kube.chaos_objects() == []
    assert sum(kube.server.by_verb().values()) <= 10
    assert kube.server.count("get") == 0  # watched, never polled


def test_a_long_name_gives_valid_name_and_labels(backend: KubernetesBackend, kube: FakeCluster) -> None:
    manifest = network_delay(name="a" * 62 + "-b")
    del manifest["metadata"]["labels"]["chaoslab.io/experiment"]  # a hand-written manifest
    handle = backend.create(manifest, run_id=RUN_ID)  # the fake checks names and labels as the API does
    assert (len(handle.name), handle.experiment) == (63, "a" * 62)
    assert handle.name.endswith("a-3f2a")


def test_confirm_injected_names_the_targets(backend: KubernetesBackend) -> None:
    handle = backend.create(network_delay(), run_id=RUN_ID)
    progress = backend.confirm_injected(handle, timeout=10)
    assert progress.pods == ("shop/payment-7d4b9-00000", "shop/payment-7d4b9-00001")


def test_an_injection_that_keeps_failing_is_removed_at_the_timeout_and_reported(
    backend: KubernetesBackend, kube: FakeCluster
) -> None:
    kube.emulator.fail_injection("payment-delay-*", "unable to set tc rules: RTNETLINK answers")
    handle = backend.create(network_delay(), run_id=RUN_ID)
    failing = r"shop/payment-7d4b9-0000[01]: unable to set tc rules: RTNETLINK answers"
    with pytest.raises(InjectionError, match=rf"not injected within 1s \(\d+ failed attempt\(s\), the last: "
                                             rf"{failing}\).*it was removed"):
        backend.wait_injected(handle, timeout=1)
    assert kube.chaos_objects() == []


def test_a_transient_failure_is_waited_out_and_recorded(
    backend: KubernetesBackend, kube: FakeCluster
) -> None:
    """Chaos Mesh retries a failed Apply; the second retry succeeds."""
    kube.emulator.fail_injection("payment-delay-*", "unable to flush ip sets for pod", times=2)
    handle = backend.create(network_delay(), run_id=RUN_ID)
    progress = backend.confirm_injected(handle, timeout=30)
    assert progress.pods == ("shop/payment-7d4b9-00000", "shop/payment-7d4b9-00001")
    # two attempts, each failing on both pods
    assert len(progress.failures) == 4
    assert all(f.endswith(": unable to flush ip sets for pod") for f in progress.failures)
    assert [o["metadata"]["name"] for o in kube.chaos_objects()] == [handle.name]


def test_action_without_its_sub_spec_fails_at_run_time(backend: KubernetesBackend, kube: FakeCluster) -> None:
    manifest = network_delay()
    del manifest["spec"]["delay"]
    handle = backend.create(manifest, run_id=RUN_ID)  # admitted, as by the real webhook
    started = time.monotonic()
    with pytest.raises(InjectionError, match=r"Chaos Mesh reported: .*delay is required"):
        backend.wait_injected(handle, timeout=60)
    assert time.monotonic() - started < 30  # no retry can fix it: failed at once, not at the timeout
    assert kube.chaos_objects() == []


def test_injection_that_never_comes_times_out_and_is_removed(backend: KubernetesBackend,
                                                             kube: FakeCluster) -> None:
    handle = backend.create(network_delay(app="ghost"), run_id=RUN_ID)  # skipping preflight on purpose
    _wait_stalled(kube, handle.name)  # the watch replays it from the created version
    stalled = r"not injected within 1s \(Selected=False \(no pod is selected\)\)"
    with pytest.raises(InjectionError, match=stalled):
        backend.wait_injected(handle, timeout=1)
    assert kube.chaos_objects() == []


def _wait_stalled(kube: FakeCluster, name: str) -> None:
    wait_for(lambda: conditions(kube.store.get(NETWORK_CHAOS, "shop", name)).get("Selected", {}).get(
        "status") == "False", what="Selected=False")


def test_injection_watch_outlives_watches_the_server_ends_early(backend: KubernetesBackend,
                                                                 kube: FakeCluster) -> None:
    kube.server.watch_limit_s = 0.1  # as an API server or a load balancer may do
    kube.emulator.inject_delay = 1.0
    handle = backend.create(network_delay(), run_id=RUN_ID)
    assert backend.confirm_injected(handle, timeout=20).pods
    assert kube.server.count("watch") >= 2  # re-established, neither a success nor a failure
    assert kube.server.count("get") == 0


def test_injection_watch_outlives_a_dropped_connection(backend: KubernetesBackend, kube: FakeCluster) -> None:
    kube.emulator.inject_delay = 60.0  # the test injects by hand once the watch was re-established
    handle = backend.create(network_delay(), run_id=RUN_ID)

    def chaos_mesh_after_a_restart() -> None:
        wait_for(lambda: kube.server.count("watch") >= 1, what="the watch")
        kube.server.drop_watches()
        wait_for(lambda: kube.server.count("watch") >= 2, what="the watch to be re-established")
        kube.store.mutate(NETWORK_CHAOS, "shop", handle.name, lambda o: o.update(status={
            "conditions": [{"type": "AllInjected", "status": "True"}]}))

    helper = threading.Thread(target=chaos_mesh_after_a_restart, daemon=True)
    helper.start()
    try:
        assert backend.confirm_injected(handle, timeout=20).message == "AllInjected=True"
    finally:
        helper.join(timeout=20)
    assert kube.server.count("watch") == 2


def test_injection_watch_retries_an_api_server_that_is_briefly_unavailable(backend: KubernetesBackend,
                                                                           kube: FakeCluster) -> None:
    kube.server.fail_next("watch", "networkchaos", code=503, times=2)
    handle = backend.create(network_delay(), run_id=RUN_ID)
    assert backend.confirm_injected(handle, timeout=20).pods
    assert kube.server.count("watch") == 3


def test_an_expired_resource_version_is_listed_again(backend: KubernetesBackend, kube: FakeCluster) -> None:
    handle = backend.create(network_delay(), run_id=RUN_ID)
    kube.store.delete(NETWORK_CHAOS, "shop", handle.name)  # e.g. a concurrent `chaoslab cleanup`
    wait_for(lambda: not kube.chaos_objects(), what="the object to go")
    kube.store.compact()  # the version create returned is too old to watch from now
    with pytest.raises(InjectionError, match="it was deleted before it took hold"):
        backend.confirm_injected(handle, timeout=20)
    assert kube.server.count("list", path_contains="/networkchaos") == 1


def test_removal_survives_an_expired_watch(backend: KubernetesBackend, kube: FakeCluster) -> None:
    kube.emulator.release_delay = 0.3
    handle = backend.create(network_delay(), run_id=RUN_ID)
    backend.wait_injected(handle, timeout=10)
    kube.server.fail_next("watch", "networkchaos", code=410)  # as API servers before 1.19 answer
    backend.remove(handle, timeout=20)
    assert kube.chaos_objects() == []


def test_a_watch_that_cannot_be_kept_up_removes_the_fault(backend: KubernetesBackend,
                                                          kube: FakeCluster) -> None:
    kube.server.deny("watch", "networkchaos")
    handle = backend.create(network_delay(), run_id=RUN_ID)
    with pytest.raises(InjectionError, match=r"could not follow it: watch networkchaos in shop: forbidden by "
                                             r"RBAC.*it was removed"):
        backend.wait_injected(handle, timeout=10)
    assert kube.chaos_objects() == []


def test_missing_chaos_mesh_is_named(backend: KubernetesBackend, kube: FakeCluster) -> None:
    kube.server.uninstalled.add("chaos-mesh.org")
    with pytest.raises(KubernetesError, match=r"list networkchaos in all namespaces: not found: .*is Chaos "
                                              r"Mesh installed\? the API server does not serve "
                                              r"networkchaos\.chaos-mesh\.org/v1alpha1"):
        backend.list_faults()


@pytest.mark.parametrize("code", [403, 422, 400])
def test_webhook_rejection_names_verb_resource_and_namespace(backend: KubernetesBackend, kube: FakeCluster,
                                                            code: int) -> None:
    kube.emulator.webhook_code = code
    manifest = network_delay(direction="from")
    with pytest.raises(KubernetesError) as caught:
        backend.create(manifest, run_id=RUN_ID)
    assert caught.value.status == code
    assert str(caught.value).startswith("create networkchaos in shop: rejected by the admission webhook: "
                                        'admission webhook "vnetworkchaos.kb.io" denied the request: '
                                        "spec.direction")
    assert kube.chaos_objects() == []


def test_webhook_skips_partition(backend: KubernetesBackend) -> None:
    manifest = network_delay(action="partition", direction="from")
    del manifest["spec"]["delay"]
    assert backend.create(manifest, run_id=RUN_ID).name == "payment-delay-3f2a"


@pytest.mark.parametrize(("verb", "plural", "call", "expected"), [
    ("create", "networkchaos", "create", "create networkchaos in shop: forbidden by RBAC: "),
    ("list", "pods", "preflight", "list pods in shop: forbidden by RBAC: "),
    ("list", "networkchaos", "list", "list networkchaos in all namespaces: forbidden by RBAC: "),
])
def test_rbac_denial_is_a_clear_error(backend: KubernetesBackend, kube: FakeCluster, verb: str,
                                      plural: str, call: str, expected: str) -> None:
    kube.server.deny(verb, plural)
    actions = {"create": lambda: backend.create(network_delay(), run_id=RUN_ID),
               "preflight": lambda: backend.preflight_manifest(network_delay()),
               "list": backend.list_faults}
    with pytest.raises(KubernetesError) as caught:
        actions[call]()
    assert caught.value.status == 403
    assert str(caught.value).startswith(expected)
    assert f'cannot {verb} resource "{plural}"' in str(caught.value)


@pytest.mark.parametrize(("attempt", "expected"), [
    ("again", r"create networkchaos in shop: already exists: .*chaoslab cleanup"),
    ("pause", r'patch networkchaos in shop: not found: .*"ghost" not found'),
    ("nowhere", r'create networkchaos in nowhere: not found: namespaces "nowhere"'),
])
def test_other_api_failures_name_what_was_attempted(backend: KubernetesBackend, attempt: str,
                                                    expected: str) -> None:
    backend.create(network_delay(), run_id=RUN_ID)
    attempts = {"again": lambda: backend.create(network_delay(), run_id=RUN_ID),
                "pause": lambda: backend.pause(_handle("ghost")),
                "nowhere": lambda: backend.create(network_delay(namespace="nowhere"), run_id=RUN_ID)}
    with pytest.raises(KubernetesError, match=expected):
        attempts[attempt]()


# --- remove ------------------------------------------------------------------------------


def test_remove_tolerates_what_is_already_gone(backend: KubernetesBackend, kube: FakeCluster) -> None:
    handle = backend.create(network_delay(), run_id=RUN_ID)
    backend.wait_injected(handle, timeout=10)
    backend.remove(handle, timeout=10)
    backend.remove(handle, timeout=10)
    backend.remove(_handle("never-existed"), timeout=10)
    assert kube.server.count("delete") == 3


def test_stuck_finalizer_is_a_cleanup_error_naming_the_object(backend: KubernetesBackend,
                                                              kube: FakeCluster) -> None:
    kube.emulator.stick_finalizer("*-stuck-*")
    handle = backend.create(network_delay(name="payment-stuck"), run_id=RUN_ID)
    backend.wait_injected(handle, timeout=10)
    with pytest.raises(CleanupError, match=r"networkchaos/payment-stuck-3f2a in shop \(finalizers: "
                                           r"chaos-mesh/records\)") as caught:
        backend.remove(handle, timeout=1)
    assert caught.value.remaining == ("networkchaos/payment-stuck-3f2a in shop",)
    assert kube.chaos_names() == ["payment-stuck-3f2a"]
    backend.remove(handle, timeout=1, force=True)
    assert kube.chaos_objects() == []


def test_objects_that_cannot_be_deleted_are_named_and_the_rest_removed(backend: KubernetesBackend,
                                                                       kube: FakeCluster) -> None:
    for manifest in (network_delay(), pod_kill()):
        backend.wait_injected(backend.create(manifest, run_id=RUN_ID), timeout=10)
    kube.server.deny("delete", "podchaos")
    with pytest.raises(CleanupError) as caught:
        backend.cleanup(run_id=RUN_ID, timeout=10)
    assert caught.value.remaining == ("podchaos/catalog-kill-3f2a in shop",)
    assert "podchaos/catalog-kill-3f2a in shop could not be removed: delete podchaos in shop: forbidden by " \
           "RBAC" in str(caught.value)
    assert kube.chaos_names() == ["catalog-kill-3f2a"]


def test_force_tolerates_an_object_that_went_meanwhile(backend: KubernetesBackend, kube: FakeCluster) -> None:
    kube.emulator.stick_finalizer("*-stuck-*")
    handle = backend.create(network_delay(name="payment-stuck"), run_id=RUN_ID)
    backend.wait_injected(handle, timeout=10)
    with pytest.raises(CleanupError, match="payment-stuck-3f2a"):
        backend.remove(handle, timeout=0.5)

    def vanish(operation: str, res: object, obj: object, old: object) -> None:
        kube.store.objects.pop((NETWORK_CHAOS, "shop", handle.name), None)  # released as the force arrives
        raise not_found(NETWORK_CHAOS, handle.name)

    kube.store.admission.append(vanish)
    backend.remove(handle, timeout=0.5, force=True)
    assert kube.chaos_objects() == []


def test_force_strips_finalizers_when_nothing_releases_them(backend: KubernetesBackend,
                                                            kube: FakeCluster) -> None:
    body = network_delay(name="orphan")
    body["metadata"]["finalizers"] = ["example.com/never-released"]
    kube.store.create(NETWORK_CHAOS, "shop", body)
    handle = _handle("orphan")
    with pytest.raises(CleanupError):
        backend.remove(handle, timeout=0.5)
    backend.remove(handle, timeout=0.5, force=True)
    assert kube.chaos_objects() == []


def test_duration_expiry_recovers_but_keeps_the_object(backend: KubernetesBackend, kube: FakeCluster) -> None:
    handle = backend.create(network_delay(duration="200ms"), run_id=RUN_ID)
    backend.wait_injected(handle, timeout=10)
    wait_for(lambda: conditions(kube.store.get(NETWORK_CHAOS, "shop", handle.name))
             .get("AllRecovered", {}).get("status") == "True", what="AllRecovered")
    assert kube.chaos_names() == [handle.name]
    backend.remove(handle, timeout=10)
    assert kube.chaos_objects() == []


def test_pause_and_resume_use_the_annotation(backend: KubernetesBackend, kube: FakeCluster) -> None:
    handle = backend.create(network_delay(), run_id=RUN_ID)
    backend.wait_injected(handle, timeout=10)

    def paused() -> str:
        stored = kube.store.get(NETWORK_CHAOS, "shop", handle.name)
        return str(conditions(stored).get("Paused", {}).get("status"))

    backend.pause(handle)
    assert kube.store.get(NETWORK_CHAOS, "shop", handle.name)["metadata"]["annotations"] == {
        PAUSE_ANNOTATION: "true"}
    wait_for(lambda: paused() == "True", what="Paused=True")
    backend.resume(handle)
    assert PAUSE_ANNOTATION not in kube.store.get(NETWORK_CHAOS, "shop", handle.name)["metadata"].get(
        "annotations", {})
    wait_for(lambda: paused() == "False", what="Paused=False")
    backend.remove(handle, timeout=10)


def test_pod_kill_replaces_the_pod(backend: KubernetesBackend, kube: FakeCluster) -> None:
    before = set(kube.store.names(PODS, "shop"))
    handle = backend.create(pod_kill(), run_id=RUN_ID)
    progress = backend.confirm_injected(handle, timeout=10)
    (victim,) = progress.pods
    assert victim.split("/")[1] not in kube.store.names(PODS, "shop")
    replacement = wait_for(lambda: set(kube.store.names(PODS, "shop")) - before, what="replacement pod")
    assert next(iter(replacement)).startswith("catalog-7d4b9-r")
    backend.remove(handle, timeout=10)
    assert kube.chaos_objects() == []


# --- listing and cleanup ------------------------------------------------------------------


def test_list_and_cleanup_touch_only_chaoslab_objects(backend: KubernetesBackend, kube: FakeCluster) -> None:
    other_run = "20261127T111500Z-beef"
    mine = backend.create(network_delay(), run_id=RUN_ID)
    backend.create(pod_kill(), run_id=RUN_ID)
    theirs = backend.create(network_delay(name="cart-delay", app="cart"), run_id=other_run)
    foreign = network_delay(name="hand-made")
    foreign["metadata"]["labels"] = {"team": "sre"}
    kube.store.create(NETWORK_CHAOS, "shop", foreign)

    assert {h.name for h in backend.list_faults()} == {mine.name, "catalog-kill-3f2a", theirs.name}
    assert {h.name for h in backend.list_faults(run_id=RUN_ID)} == {mine.name, "catalog-kill-3f2a"}
    assert backend.list_faults(namespace="bank") == []

    planned = backend.cleanup(run_id=RUN_ID, dry_run=True)
    assert len(planned) == 2
    assert len(kube.chaos_objects()) == 4
    removed = backend.cleanup(run_id=RUN_ID, timeout=10)
    assert {h.ref for h in removed} == {"networkchaos/payment-delay-3f2a in shop",
                                        "podchaos/catalog-kill-3f2a in shop"}
    assert kube.chaos_names() == ["cart-delay-beef", "hand-made"]
    assert kube.server.count("list", path_contains="/apis/chaos-mesh.org/v1alpha1/networkchaos") >= 1


# --- PrometheusRule ------------------------------------------------------------------------


def _rule(namespace: str, name: str) -> dict[str, object]:
    return {"apiVersion": "monitoring.coreos.com/v1", "kind": "PrometheusRule",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"groups": [{"name": "slo", "rules": [{"alert": "PaymentErrors",
                                                            "expr": "error_ratio > 0.01", "for": "2m"}]}]}}


def test_prometheus_rules_are_loaded_from_the_cluster(backend: KubernetesBackend, kube: FakeCluster) -> None:
    kube.store.create(PROMETHEUS_RULES, "monitoring", _rule("monitoring", "shop-slo"))
    kube.store.create(PROMETHEUS_RULES, "shop", _rule("shop", "local"))
    assert [r["metadata"]["name"] for r in backend.load_prometheus_rules("monitoring")] == ["shop-slo"]
    assert len(backend.load_prometheus_rules(None)) == 2
    only = backend.load_prometheus_rules("shop", "local")
    assert only[0]["spec"]["groups"][0]["rules"][0]["alert"] == "PaymentErrors"


def test_rules_from_files_and_the_cluster(kubeconfig: Path, kube: FakeCluster,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    kube.store.create(PROMETHEUS_RULES, "monitoring", _rule("monitoring", "shop-slo"))
    assert [src for src, _ in load_rules_from_cluster("k8s://")] == ["k8s://monitoring/shop-slo"]
    shop_rules = Path(__file__).resolve().parents[2] / "experiments" / "rules" / "shop-slo.yaml"
    # A Path folds "k8s://" into "k8s:/", as a game day's spec.rules entry would be.
    rules = load_rules_from([Path("k8s://monitoring/"), shop_rules])
    assert (rules[0].name, rules[0].source) == ("PaymentErrors", "k8s://monitoring/shop-slo")
    assert {r.source for r in rules[1:]} == {str(shop_rules)}


@pytest.mark.parametrize(("uri", "expected"), [
    ("k8s://", (None, None)), ("k8s://monitoring/", ("monitoring", None)),
    ("k8s://monitoring/shop-slo", ("monitoring", "shop-slo")),
])
def test_rules_uri(uri: str, expected: tuple[str | None, str | None]) -> None:
    assert parse_rules_uri(uri) == expected


def test_rules_uri_rejects_other_schemes() -> None:
    with pytest.raises(InvalidInputError, match="k8s://NAMESPACE"):
        parse_rules_uri("http://monitoring/")


# --- RBAC -----------------------------------------------------------------------------------


def _granted() -> set[tuple[str, str, str]]:
    docs = list(yaml.safe_load_all(RBAC.read_text()))
    account, role, binding = docs
    assert [account["kind"], role["kind"], binding["kind"]] == ["ServiceAccount", "ClusterRole",
                                                                "ClusterRoleBinding"]
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": account["metadata"]["name"],
                                    "namespace": account["metadata"]["namespace"]}]
    granted = {(group, resource, verb) for rule in role["rules"] for group in rule["apiGroups"]
               for resource in rule["resources"] for verb in rule["verbs"]}
    assert not [g for g in granted if "*" in "".join(g)], "no wildcards"
    return granted


def test_rbac_grants_exactly_the_requests_the_backend_makes(backend: KubernetesBackend,
                                                            kube: FakeCluster) -> None:
    kube.emulator.stick_finalizer("*-stuck-*")
    kube.store.create(PROMETHEUS_RULES, "monitoring", _rule("monitoring", "shop-slo"))
    for manifest, pod in ((network_delay(name="payment-stuck"), "payment-7d4b9-00000"),
                          (pod_kill(name="cart-stuck", app="cart"), "cart-7d4b9-00000")):
        manifest["spec"]["selector"]["pods"] = {"shop": [pod]}
        backend.preflight_manifest(manifest)
        created = backend.create(manifest, run_id=RUN_ID)
        (listed,) = backend.list_faults(run_id=RUN_ID)
        backend.wait_injected(listed, timeout=10)  # a listed handle: looked up first
        backend.pause(created)
        backend.remove(created, timeout=0.5, force=True)
    backend.preflight_manifest(network_delay())
    backend.load_prometheus_rules("monitoring")
    backend.load_prometheus_rules("monitoring", "shop-slo")

    used = set()
    for verb, path in kube.server.requests:
        resource = parse_route(path).resource
        used.add((resource.group, resource.plural, verb))
    assert used == _granted()


# --- the fake API server itself, through the real client ------------------------------------


def test_fake_api_speaks_json_patch_selectors_and_watch_replay(backend: KubernetesBackend,
                                                               kube: FakeCluster) -> None:
    from kubernetes import client

    custom = client.CustomObjectsApi(backend.api_client)
    core = client.CoreV1Api(backend.api_client)
    created = custom.create_namespaced_custom_object("chaos-mesh.org", "v1alpha1", "shop", "networkchaos",
                                                     network_delay(name="plain"))
    assert created["metadata"]["generation"] == 1
    assert created["metadata"]["uid"]
    patched = custom.patch_namespaced_custom_object(
        "chaos-mesh.org", "v1alpha1", "shop", "networkchaos", "plain",
        [{"op": "add", "path": "/metadata/labels/team", "value": "sre"}],
        _content_type="application/json-patch+json")
    assert patched["metadata"]["labels"]["team"] == "sre"
    assert int(patched["metadata"]["resourceVersion"]) > int(created["metadata"]["resourceVersion"])

    def names(selector: str) -> list[str]:
        pods = core.list_namespaced_pod("shop", label_selector=selector).items
        return sorted(p.metadata.name for p in pods)

    assert len(names("app!=payment")) == 8
    assert names("app notin (payment,cart,catalog,frontend)") == ["recommendation-7d4b9-00000",
                                                                  "recommendation-7d4b9-00001"]
    assert names("!app") == []
    assert len(names("app")) == 10

    replay = custom.list_namespaced_custom_object(  # from the version create returned: history first
        "chaos-mesh.org", "v1alpha1", "shop", "networkchaos", watch=True, _preload_content=False,
        resource_version=created["metadata"]["resourceVersion"], timeout_seconds=1,
        field_selector="metadata.name=plain")
    assert b'"type": "MODIFIED"' in b"".join(replay.stream())
    with pytest.raises(client.ApiException) as caught:
        custom.get_namespaced_custom_object("chaos-mesh.org", "v1alpha1", "shop", "podchaos", "nope")
    assert caught.value.status == 404
    assert '"kind": "Status"' in caught.value.body


def test_fake_api_answers_failures_and_watches_like_a_real_server(backend: KubernetesBackend,
                                                                 kube: FakeCluster) -> None:
    import json

    from kubernetes import client

    custom = client.CustomObjectsApi(backend.api_client)
    core = client.CoreV1Api(backend.api_client)
    args = ("chaos-mesh.org", "v1alpha1", "shop", "networkchaos")
    created = custom.create_namespaced_custom_object(*args, network_delay(name="plain"))

    def status_of(call: Callable[[], object]) -> dict[str, object]:
        with pytest.raises(client.ApiException) as caught:
            call()
        body = json.loads(caught.value.body)
        assert (body["kind"], body["apiVersion"], body["status"], body["code"]) == (
            "Status", "v1", "Failure", caught.value.status)
        return dict(body)

    exists = status_of(lambda: custom.create_namespaced_custom_object(*args, network_delay(name="plain")))
    assert (exists["reason"], exists["details"]) == ("AlreadyExists", {
        "name": "plain", "group": "chaos-mesh.org", "kind": "networkchaos"})
    spec_change = status_of(lambda: custom.patch_namespaced_custom_object(*args, "plain",
                                                                          {"spec": {"mode": "one"}}))
    assert "Cannot update chaos spec" in str(spec_change["message"])
    strategic = status_of(lambda: custom.patch_namespaced_custom_object(  # custom resources have no schema
        *args, "plain", {"metadata": {"labels": {"a": "b"}}},
        _content_type="application/strategic-merge-patch+json"))
    assert (strategic["code"], strategic["reason"]) == (415, "UnsupportedMediaType")
    policy = status_of(lambda: custom.delete_namespaced_custom_object(
        *args, "plain", body=client.V1DeleteOptions(propagation_policy="Sideways")))
    assert (policy["code"], policy["reason"]) == (422, "Invalid")
    empty_set = status_of(lambda: core.list_namespaced_pod("shop", label_selector="app in ()"))
    assert empty_set["reason"] == "BadRequest"
    assert len(core.list_namespaced_pod("shop", label_selector="app in(payment,cart)").items) == 4

    listed = custom.list_namespaced_custom_object(*args)
    assert int(listed["metadata"]["resourceVersion"]) >= int(created["metadata"]["resourceVersion"])

    def broken(operation: str, res: object, obj: object, old: object) -> None:
        raise RuntimeError("a bug")

    kube.store.admission.append(broken)
    assert status_of(lambda: custom.create_namespaced_custom_object(*args, network_delay(name="other")))[
        "reason"] == "InternalError"
    kube.store.admission.remove(broken)

    wait_for(lambda: kube.store.rv > int(created["metadata"]["resourceVersion"]), what="a later version")
    kube.store.compact()
    expired = custom.list_namespaced_custom_object(
        *args, watch=True, _preload_content=False, resource_version=created["metadata"]["resourceVersion"],
        timeout_seconds=1)
    (event,) = [json.loads(line) for line in b"".join(expired.stream()).splitlines() if line.strip()]
    assert event["type"] == "ERROR"
    assert (event["object"]["code"], event["object"]["reason"]) == (410, "Expired")
