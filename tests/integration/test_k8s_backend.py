"""The Chaos Mesh backend driving the real ``kubernetes`` client over HTTP against the
fake API server and the Chaos Mesh controller emulator."""

from __future__ import annotations

import socket
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
from tests.fakes.kube_store import NETWORK_CHAOS, PODS, PROMETHEUS_RULES
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
    (Mode.RANDOM_MAX_PERCENT, "100", 2),
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
    with pytest.raises(PreflightError, match=r"matches no running pod \(1 matching pods are not Running\)"):
        backend.preflight_manifest(network_delay(app="batch"))
    kube.store.add_pod("shop", "batch-2", labels={"app": "batch"})
    assert backend.preflight_manifest(network_delay(app="batch")).matched == ("shop/batch-2",)


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


def test_confirm_injected_names_the_targets(backend: KubernetesBackend) -> None:
    handle = backend.create(network_delay(), run_id=RUN_ID)
    progress = backend.confirm_injected(handle, timeout=10)
    assert progress.pods == ("shop/payment-7d4b9-00000", "shop/payment-7d4b9-00001")


def test_failed_injection_is_removed_and_reported(backend: KubernetesBackend, kube: FakeCluster) -> None:
    kube.emulator.fail_injection("payment-delay-*", "unable to set tc rules: RTNETLINK answers")
    handle = backend.create(network_delay(), run_id=RUN_ID)
    with pytest.raises(InjectionError, match=r"Chaos Mesh reported: shop/payment-7d4b9-0000[01]: unable to "
                                             r"set tc rules: RTNETLINK answers.*it was removed"):
        backend.wait_injected(handle, timeout=10)
    assert kube.chaos_objects() == []


def test_action_without_its_sub_spec_fails_at_run_time(backend: KubernetesBackend, kube: FakeCluster) -> None:
    manifest = network_delay()
    del manifest["spec"]["delay"]
    handle = backend.create(manifest, run_id=RUN_ID)  # admitted, as by the real webhook
    with pytest.raises(InjectionError, match="delay is required"):
        backend.wait_injected(handle, timeout=10)
    assert kube.chaos_objects() == []


def test_injection_that_never_comes_times_out_and_is_removed(backend: KubernetesBackend,
                                                             kube: FakeCluster) -> None:
    handle = backend.create(network_delay(app="ghost"), run_id=RUN_ID)  # skipping preflight on purpose
    stalled = r"not injected within 1s \(Selected=False \(no pod is selected\)\)"
    with pytest.raises(InjectionError, match=stalled):
        backend.wait_injected(handle, timeout=1)
    assert kube.chaos_objects() == []


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
