"""The Chaos Mesh backend on Kubernetes: the only module that imports ``kubernetes``.

``connect()`` builds a ``KubernetesBackend`` from KUBECONFIG (current context, or
KUBERNETES_CONTEXT) or the in-cluster service account. The backend implements the
``ChaosBackend`` port with few requests and no polling: one pod list for preflight,
one create, one watch until ``AllInjected``, one delete and one watch until gone.
Watches outlive the API server: one it ends or drops is re-established from the last
version seen, an expired version (410) is listed afresh, an unreachable server or a 5xx
is retried until the deadline. API failures become ``KubernetesError`` naming the verb,
the resource and the namespace; a selector that matches no running pod is refused before
anything is created; an object that cannot be deleted, or whose delete is stuck on Chaos
Mesh's finalizer, is a ``CleanupError`` naming it.

chaosk8s's ``create_k8s_api_client`` is not reused: it turns TLS verification off
process-wide unless KUBERNETES_VERIFY_SSL is set, and mutates the client's global
default configuration.

Longer than chaoslab's usual 400 lines on purpose: as the one module allowed to import
``kubernetes``, it holds every API call; the pure parts live in ``objects``.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from typing import Any, NoReturn, cast

import yaml
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException
from kubernetes.watch.watch import iter_resp_lines
from urllib3.exceptions import HTTPError as TransportError

from chaoslab.chaosmesh.objects import (
    FORCE_CLEAN_ANNOTATION,
    GROUP,
    PAUSE_ANNOTATION,
    PLURALS,
    VERSION,
    Manifest,
    Phase,
    Progress,
    describe_failure,
    finalizers,
    handle_from_object,
    injection_progress,
    is_deleting,
    is_terminating_pod,
    kind_of,
    labelled,
    managed_selector,
    mode_from_spec,
    parse_rules_uri,
    plural_of,
    pod_field_selector,
    pod_info,
    pod_label_selector,
    pod_state,
    selector_from_spec,
)
from chaoslab.chaosmesh.selection import PodInfo, count_for_mode, running, select_pods
from chaoslab.errors import (
    CleanupError,
    InjectionError,
    InvalidInputError,
    KubernetesError,
    PreflightError,
)
from chaoslab.model import ChaosKind, FaultHandle, FaultRequest, Mode, PodState, PreflightResult, Selector

logger = logging.getLogger(__name__)

REQUEST_TIMEOUT = (5.0, 30.0)  # connect, read
RECONNECT_BACKOFF_S = 0.2  # first wait before re-establishing a watch the API server refused
TRANSIENT = (None, 429, 500, 502, 503, 504)  # None: not reached at all (restart, network blip)
FORCE_GRACE_S = 10.0
RULES_GROUP, RULES_VERSION, RULES_PLURAL = "monitoring.coreos.com", "v1", "prometheusrules"

Obj = dict[str, Any]


def connect(*, context: str | None = None, secrets: Mapping[str, Any] | None = None,
            kubeconfig: str | None = None) -> KubernetesBackend:
    """A backend for the cluster that KUBECONFIG (or ~/.kube/config) points at, in ``context``
    (default: KUBERNETES_CONTEXT, then the current context), else the in-cluster account.

    ``secrets`` may carry KUBECONFIG / KUBERNETES_CONTEXT as Chaos Toolkit secrets do."""
    secrets = secrets or {}

    def lookup(key: str) -> str | None:
        value = secrets.get(key, os.environ.get(key))
        return str(value) if value else None

    context = context or lookup("KUBERNETES_CONTEXT")
    path = kubeconfig or lookup("KUBECONFIG") or "~/.kube/config"
    files = [os.path.expanduser(p) for p in path.split(os.pathsep) if p]
    configuration = client.Configuration()
    try:
        if any(os.path.exists(f) for f in files):
            context = context or _first_current_context(files)
            config.load_kube_config(  # type: ignore[no-untyped-call]
                config_file=os.pathsep.join(files), context=context, client_configuration=configuration)
            where = f"kubeconfig {path}" + (f" (context {context})" if context else "")
        elif os.environ.get("KUBERNETES_SERVICE_HOST"):
            config.load_incluster_config(  # type: ignore[no-untyped-call]
                client_configuration=configuration)
            where = "in-cluster service account"
        else:
            raise KubernetesError(f"no Kubernetes configuration: {path} does not exist and this is not "
                                  "a pod; set KUBECONFIG or pass --context")
    except (ConfigException, yaml.YAMLError, OSError, ValueError, TypeError, AttributeError, KeyError) as exc:
        # The kubeconfig loader lets a malformed file (bad YAML, a list where a mapping belongs,
        # a directory) escape as whatever error it met: all of them mean the same to the user.
        what = exc if isinstance(exc, ConfigException) else f"{type(exc).__name__}: {exc}"
        raise KubernetesError(f"cannot load the Kubernetes configuration from {path}: {what}") from exc
    logger.info("connecting to %s through %s", configuration.host, where)
    return KubernetesBackend(client.ApiClient(configuration), context=context)


def _first_current_context(files: Sequence[str]) -> str | None:
    """kubectl's rule for several kubeconfig files: the first file that sets current-context
    wins. The Python client lets the last one win, which would aim at another cluster than
    ``kubectl`` does with the same KUBECONFIG."""
    if len(files) < 2:
        return None
    for path in files:
        if os.path.isfile(path):
            with open(path, encoding="utf-8") as f:
                loaded = yaml.safe_load(f)
            if isinstance(loaded, dict) and loaded.get("current-context"):
                return str(loaded["current-context"])
    return None


def _api_status(exc: ApiException) -> tuple[str, str]:
    """``(reason, message)`` of the API's ``Status`` answer, falling back to the HTTP reason."""
    try:
        body = json.loads(exc.body or "")
    except (TypeError, ValueError):
        body = None
    body = body if isinstance(body, dict) else {}
    reason = str(body.get("reason") or exc.reason or "")
    return reason, str(body.get("message") or exc.reason or "no reason given")


class KubernetesBackend:
    """``ChaosBackend`` for Chaos Mesh. Also offers the manifest-level calls the Chaos
    Toolkit activities use (``preflight_manifest``, ``create``, ``confirm_injected``,
    ``cleanup``) and ``load_prometheus_rules``."""

    name = "kubernetes"

    def __init__(self, api_client: Any | None = None, *, context: str | None = None) -> None:
        self.api_client = api_client if api_client is not None else client.ApiClient()
        self.context = context
        self._custom = client.CustomObjectsApi(self.api_client)
        self._core = client.CoreV1Api(self.api_client)
        # resourceVersion returned by create, so the injection watch replays from there.
        self._created_rv: dict[tuple[str, str, str], str] = {}

    @property
    def host(self) -> str:
        return str(self.api_client.configuration.host)

    def close(self) -> None:
        self.api_client.close()

    # --- plumbing -------------------------------------------------------------------

    def _call(self, verb: str, resource: str, namespace: str | None, fn: Callable[..., Any],
              *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("_request_timeout", REQUEST_TIMEOUT)
        try:
            return fn(*args, **kwargs)
        except ApiException as exc:
            reason, message = _api_status(exc)
            text = describe_failure(verb=verb, resource=resource, namespace=namespace,
                                    status=exc.status, reason=reason, message=message)
            raise KubernetesError(text, status=exc.status) from exc
        except (TransportError, OSError) as exc:
            cause = getattr(exc, "reason", None) or exc
            where = f"{verb} {resource}" + (f" in {namespace}" if namespace else "")
            raise KubernetesError(f"{where}: cannot reach the Kubernetes API at {self.host}: {cause}"
                                  ) from exc

    def _get(self, handle: FaultHandle) -> Obj | None:
        plural = plural_of(handle.kind)
        try:
            return cast(Obj, self._call("get", plural, handle.namespace,
                                        self._custom.get_namespaced_custom_object,
                                        GROUP, VERSION, handle.namespace, plural, handle.name))
        except KubernetesError as exc:
            if exc.status == 404:
                return None
            raise

    def _list_one(self, handle: FaultHandle) -> tuple[Obj | None, str]:
        """The object (None: absent) and the list's resourceVersion, which a watch can resume
        from however long the object itself has been unchanged."""
        plural = plural_of(handle.kind)
        answer = self._call("list", plural, handle.namespace, self._custom.list_namespaced_custom_object,
                            GROUP, VERSION, handle.namespace, plural,
                            field_selector=f"metadata.name={handle.name}")
        items = [i for i in answer.get("items") or () if (i.get("metadata") or {}).get("name") == handle.name]
        return (items[0] if items else None), str((answer.get("metadata") or {}).get("resourceVersion") or "")

    def _observe(self, handle: FaultHandle, *, rv: str | None, deadline: float) -> Iterator[Obj | None]:
        """The object's successive states until ``deadline``; None once it is gone, then stops.

        Watches from ``rv`` (a list first when there is none, or when the server says it has
        expired: 410). A watch the server ends or drops is re-established from the last version
        seen, and an API server that cannot be reached is retried until the deadline: neither
        says anything about the object."""
        need_list, backoff = not rv, RECONNECT_BACKOFF_S
        while time.monotonic() < deadline:
            try:
                if need_list:
                    current, rv = self._list_one(handle)
                    yield current
                    if current is None:
                        return
                started = time.monotonic()
                resumed = yield from self._stream(handle, rv=rv or "", deadline=deadline)
            except KubernetesError as exc:
                if exc.status not in TRANSIENT or time.monotonic() + backoff >= deadline:
                    raise
                logger.warning("%s; retrying in %.1fs", exc, backoff)
                time.sleep(backoff)
                backoff = min(backoff * 2, 2.0)
                continue
            need_list, rv = resumed is None, resumed
            if resumed is None:
                continue
            logger.debug("watch on %s ended; re-established from version %s", handle.ref, resumed)
            if time.monotonic() - started < RECONNECT_BACKOFF_S:
                # A server (or proxy) that ends every watch at once: do not hammer it.
                time.sleep(max(0.0, min(backoff, deadline - time.monotonic())))
                backoff = min(backoff * 2, 2.0)
            else:
                backoff = RECONNECT_BACKOFF_S

    def _stream(self, handle: FaultHandle, *, rv: str,
                deadline: float) -> Generator[Obj | None, None, str | None]:
        """One watch request from ``rv``: the object's states (None: deleted). Returns the version
        to resume from when the stream ends, None when ``rv`` has expired (410)."""
        plural = plural_of(handle.kind)
        remaining = max(0.0, deadline - time.monotonic())
        # timeoutSeconds is whole seconds: the read timeout keeps the deadline when nothing comes
        # (but leaves the answer's headers a second, however little time is left).
        kwargs: dict[str, Any] = {"watch": True, "field_selector": f"metadata.name={handle.name}",
                                  "timeout_seconds": max(1, math.ceil(remaining)), "_preload_content": False,
                                  "_request_timeout": (REQUEST_TIMEOUT[0], max(remaining, 1.0) + 0.1)}
        if rv:
            kwargs["resource_version"] = rv
        try:
            resp = self._call("watch", plural, handle.namespace, self._custom.list_namespaced_custom_object,
                              GROUP, VERSION, handle.namespace, plural, **kwargs)
        except KubernetesError as exc:
            if exc.status == 410:  # API servers before 1.19 answer an expired version this way
                return None
            raise
        try:
            for line in iter_resp_lines(resp):  # type: ignore[no-untyped-call]
                if not line.strip():
                    continue
                event = json.loads(line)
                kind, obj = event.get("type"), event.get("object") or {}
                if kind == "ERROR":
                    if obj.get("code") == 410:
                        return None
                    raise KubernetesError(f"watch {plural} in {handle.namespace}: {obj.get('message')}",
                                          status=obj.get("code"))
                meta = obj.get("metadata") or {}
                rv = str(meta.get("resourceVersion") or rv)
                if kind != "BOOKMARK" and meta.get("name") == handle.name:
                    yield None if kind == "DELETED" else obj
                if time.monotonic() >= deadline:
                    break
        except (TransportError, ValueError) as exc:  # dropped mid-stream, or a line cut short
            logger.debug("watch on %s dropped (%s)", handle.ref, exc)
        finally:
            resp.close()
            resp.release_conn()
        return rv

    # --- preflight ---------------------------------------------------------------------

    def preflight(self, request: FaultRequest) -> PreflightResult:
        return self.preflight_manifest(self._manifest_for(request))

    def preflight_manifest(self, manifest: Manifest) -> PreflightResult:
        """Which running pods the selector matches, Chaos Mesh's way. ``PreflightError`` if none,
        or if a NetworkChaos ``target`` selector matches none (Chaos Mesh stalls on either)."""
        spec, namespace = manifest["spec"], manifest["metadata"]["namespace"]
        target = spec.get("target") if isinstance(spec.get("target"), Mapping) else None
        try:
            selector = selector_from_spec(spec.get("selector"))
            mode, value = mode_from_spec(spec)
            target_selector = selector_from_spec(target.get("selector")) if target else None
        except ValueError as exc:
            raise InvalidInputError(None, "manifest", str(exc)) from exc
        matched, idle = self._running_matches(selector, namespace=namespace, what="selector")
        will_hit = count_for_mode(mode, value, len(matched))
        notes = "; nodeSelectors not checked" if selector.node_selectors else ""
        if idle:
            # Chaos Mesh picks among every matching pod, whatever its phase (chaos-mesh#4476).
            notes += (f"; {idle} more matching pods are not Running or are being deleted, and Chaos Mesh "
                      "may pick them")
        if target_selector is not None:
            targets, _ = self._running_matches(target_selector, namespace=namespace, what="target selector")
            notes += f"; target {target_selector.describe()}: {len(targets)} running pods"
        where = ", ".join(sorted(selector.pods) or selector.namespaces or (namespace,))
        return PreflightResult(
            matched=tuple(p.ref for p in matched), will_hit=will_hit,
            description=f"{selector.describe()} in {where}: {len(matched)} running pods match, "
                        f"mode {mode.value} hits {'at most ' if mode is Mode.RANDOM_MAX_PERCENT else ''}"
                        f"{will_hit}{notes}")

    def _running_matches(self, selector: Selector, *, namespace: str, what: str) -> tuple[list[PodInfo], int]:
        """The running pods ``selector`` matches, and how many other matching pods there are;
        ``PreflightError`` when none runs."""
        candidates, terminating = self._candidate_pods(selector, namespace=namespace)
        selected = select_pods(selector, candidates, default_namespace=namespace)
        matched = [p for p in running(selected) if p.ref not in terminating]
        if not matched:
            where = ", ".join(sorted(selector.pods) or selector.namespaces or (namespace,))
            idle = f" ({len(selected)} matching pods are not Running or are being deleted)"
            raise PreflightError(f"{what} {selector.describe()} in {where} matches no running pod"
                                 f"{idle if selected else ''}; nothing was created")
        return matched, len(selected) - len(matched)

    def pod_states(self, request: FaultRequest) -> list[PodState]:
        """The service's pods (one list per namespace), except those being deleted and those
        that completed: whether each is Running and Ready, and its restarts."""
        selector, namespace = request.service.selector, request.service.namespace
        items = self._pod_objects(selector, namespace=namespace)
        pods = [pod_info(item, node_labels=selector.node_selectors) for item in items]
        chosen = {p.ref for p in select_pods(selector, pods, default_namespace=namespace)}
        return [pod_state(item) for pod, item in zip(pods, items, strict=True)
                if pod.ref in chosen and not is_terminating_pod(item) and pod.phase != "Succeeded"]

    def _candidate_pods(self, selector: Selector, *, namespace: str) -> tuple[list[PodInfo], set[str]]:
        """The pods to select from, and the refs of those being deleted."""
        # Node labels need the nodes API, which chaoslab's RBAC does not grant.
        node_labels = selector.node_selectors
        items = self._pod_objects(selector, namespace=namespace)
        pods = [pod_info(item, node_labels=node_labels) for item in items]
        return pods, {p.ref for p, item in zip(pods, items, strict=True) if is_terminating_pod(item)}

    def _pod_objects(self, selector: Selector, *, namespace: str) -> list[Obj]:
        """The pods the API server returns for ``selector`` (its labels and server-side fields)."""
        if selector.pods:
            items = [item for ns, names in sorted(selector.pods.items()) for name in names
                     if (item := self._named_pod(ns, name)) is not None]
        else:
            labels, fields = pod_label_selector(selector), pod_field_selector(selector)
            items = []
            for ns in selector.namespaces or (namespace,):
                resp = self._call("list", "pods", ns, self._core.list_namespaced_pod, ns,
                                  label_selector=labels or None, field_selector=fields or None,
                                  _preload_content=False)
                items += json.loads(resp.data).get("items") or ()
        return items

    def _named_pod(self, namespace: str, name: str) -> Obj | None:
        """One pod of a ``pods`` selector, fetched by name as Chaos Mesh does (None: missing)."""
        try:
            resp = self._call("get", "pods", namespace, self._core.read_namespaced_pod, name, namespace,
                              _preload_content=False)
        except KubernetesError as exc:
            if exc.status == 404:
                return None
            raise
        return cast(Obj, json.loads(resp.data))

    # --- inject -------------------------------------------------------------------------

    def _manifest_for(self, request: FaultRequest) -> Manifest:
        from chaoslab.chaosmesh.manifest import build_manifest

        return build_manifest(name=request.step, service=request.service, fault=request.fault,
                              experiment=request.experiment, run_id=request.run_id, step=request.step)

    def apply(self, request: FaultRequest) -> FaultHandle:
        return self.create(self._manifest_for(request), run_id=request.run_id)

    def create(self, manifest: Manifest, *, run_id: str) -> FaultHandle:
        """Create the object named ``<name>-<run suffix>`` with chaoslab's labels. Does not wait."""
        body = labelled(manifest, run_id=run_id)
        plural, namespace = plural_of(body["kind"]), body["metadata"]["namespace"]
        obj = cast(Obj, self._call("create", plural, namespace, self._custom.create_namespaced_custom_object,
                                   GROUP, VERSION, namespace, plural, body))
        meta = obj.get("metadata") or {}
        self._created_rv[(plural, namespace, meta.get("name", ""))] = meta.get("resourceVersion", "")
        obj.setdefault("kind", body["kind"])
        handle = handle_from_object(obj)
        logger.info("created %s (run %s)", handle.ref, run_id)
        return handle

    def wait_injected(self, handle: FaultHandle, *, timeout: float = 30.0) -> None:
        self.confirm_injected(handle, timeout=timeout)

    def confirm_injected(self, handle: FaultHandle, *, timeout: float = 30.0,
                         cleanup_timeout: float = 60.0) -> Progress:
        """Watch until ``AllInjected=True``. Failed Apply attempts are recorded and waited
        out (Chaos Mesh retries them); a failure no retry can fix, the timeout, or a watch
        that cannot be kept up removes the object and raises ``InjectionError`` with the reason."""
        plural = plural_of(handle.kind)
        deadline = time.monotonic() + timeout
        rv = self._created_rv.pop((plural, handle.namespace, handle.name), None)
        last = Progress(phase=Phase.PENDING, message="no status yet")
        try:
            for obj in self._observe(handle, rv=rv, deadline=deadline):
                if obj is None or is_deleting(obj):
                    reason = "it was deleted before it took hold"
                    break
                progress = injection_progress(obj)
                if progress.phase is Phase.INJECTED:
                    logger.info("%s injected into %s (%d failed attempts before)", handle.ref,
                                ", ".join(progress.pods) or "its targets", len(progress.failures))
                    return progress
                if progress.phase is Phase.FAILED:
                    reason = f"Chaos Mesh reported: {progress.message}"
                    break
                if progress.failures != last.failures:
                    logger.warning("%s: %s; Chaos Mesh retries", handle.ref, progress.message)
                last = progress
            else:
                reason = f"not injected within {timeout:g}s ({last.message})"
        except KubernetesError as exc:
            reason = f"could not follow it: {exc}"
        self._fail(handle, reason, cleanup_timeout)

    def _fail(self, handle: FaultHandle, reason: str, cleanup_timeout: float) -> NoReturn:
        logger.warning("%s did not take hold: %s; removing it", handle.ref, reason)
        try:
            self.remove(handle, timeout=cleanup_timeout)
        except CleanupError as exc:
            raise CleanupError(f"{handle.ref} did not take hold ({reason}) and could not be removed: {exc}",
                               remaining=exc.remaining) from exc
        raise InjectionError(f"{handle.ref} did not take hold: {reason}; it was removed")

    # --- pause / remove -----------------------------------------------------------------

    def _patch(self, handle: FaultHandle, body: Obj, *, verb: str = "patch") -> None:
        plural = plural_of(handle.kind)
        self._call(verb, plural, handle.namespace, self._custom.patch_namespaced_custom_object,
                   GROUP, VERSION, handle.namespace, plural, handle.name, body)

    def pause(self, handle: FaultHandle) -> None:
        """Chaos Mesh recovers the fault but keeps the object (the duration keeps counting)."""
        self._patch(handle, {"metadata": {"annotations": {PAUSE_ANNOTATION: "true"}}})

    def resume(self, handle: FaultHandle) -> None:
        self._patch(handle, {"metadata": {"annotations": {PAUSE_ANNOTATION: None}}})

    def _delete(self, handle: FaultHandle) -> Obj | None:
        """Delete; the object as the API answered it, or None when it is surely gone."""
        plural = plural_of(handle.kind)
        try:
            answer = self._call("delete", plural, handle.namespace,
                                self._custom.delete_namespaced_custom_object, GROUP, VERSION,
                                handle.namespace, plural, handle.name,
                                body=client.V1DeleteOptions(propagation_policy="Background"))
        except KubernetesError as exc:
            if exc.status == 404:
                logger.info("%s was already gone", handle.ref)
                return None
            raise
        if not isinstance(answer, dict) or answer.get("kind") == "Status":
            return {}  # no object in the answer: _wait_gone looks it up
        return answer if finalizers(answer) else None

    def _wait_gone(self, handle: FaultHandle, seen: Obj, deadline: float) -> Obj | None:
        """Watch (from ``seen``, its last known state) until the object is deleted; its current
        state if the deadline passes first."""
        rv = (seen.get("metadata") or {}).get("resourceVersion")
        for obj in self._observe(handle, rv=rv, deadline=deadline):
            if obj is None:
                return None
        return self._get(handle)  # the deadline passed: what is left, if anything

    def remove(self, handle: FaultHandle, *, timeout: float = 60.0, force: bool = False) -> None:
        """Delete and wait until gone (every record recovered). Already gone is success.
        Stuck past ``timeout``, or not deletable at all: ``CleanupError`` naming it; with
        ``force``, strip the finalizer first."""
        self.remove_all([handle], timeout=timeout, force=force)

    def remove_all(self, handles: Sequence[FaultHandle], *, timeout: float = 60.0,
                   force: bool = False) -> None:
        """Delete every object first (Chaos Mesh recovers them in parallel), then wait for each.
        Every object is tried even when one fails; ``CleanupError`` names all that may remain."""
        deadline = time.monotonic() + timeout
        failed: list[tuple[FaultHandle, str]] = []  # not deleted, or not known to be gone
        pending: list[tuple[FaultHandle, Obj]] = []
        for handle in handles:
            try:
                if (answer := self._delete(handle)) is not None:
                    pending.append((handle, answer))
            except KubernetesError as exc:
                failed.append((handle, str(exc)))
        stuck: list[tuple[FaultHandle, Obj]] = []
        for handle, answer in pending:
            try:
                last = self._wait_gone(handle, answer, deadline)
            except KubernetesError as exc:
                failed.append((handle, str(exc)))
                continue
            if last is not None:
                stuck.append((handle, last))
            else:
                logger.info("%s removed", handle.ref)
        if stuck and force:
            try:
                stuck = self._force_remove(stuck, grace=min(FORCE_GRACE_S, timeout))
            except KubernetesError as exc:
                failed += [(h, f"forcing its removal failed: {exc}") for h, _ in stuck]
                stuck = []
        if stuck or failed:
            raise CleanupError(_cleanup_failure(stuck, failed, timeout=timeout, force=force),
                               remaining=tuple(h.ref for h, _ in (*stuck, *failed)))

    def _force_remove(self, stuck: list[tuple[FaultHandle, Obj]], *,
                      grace: float) -> list[tuple[FaultHandle, Obj]]:
        """Ask Chaos Mesh to drop its finalizer; if it does not within ``grace`` seconds,
        drop the finalizers ourselves. An object gone meanwhile (404) is done."""
        for body in ({"metadata": {"annotations": {FORCE_CLEAN_ANNOTATION: "forced"}}},
                     {"metadata": {"finalizers": None}}):
            still: list[tuple[FaultHandle, Obj]] = []
            deadline = time.monotonic() + grace
            for handle, obj in stuck:
                logger.warning("forcing removal of %s (%s): Chaos Mesh may leave tc/iptables rules behind",
                               handle.ref, "finalizer" if "finalizers" in body["metadata"] else "annotation")
                try:
                    self._patch(handle, body)
                except KubernetesError as exc:
                    if exc.status != 404:
                        raise
                    continue
                last = self._wait_gone(handle, obj, deadline)
                if last is not None:
                    still.append((handle, last))
            stuck = still
            if not stuck:
                break
        return stuck

    # --- listing and cleanup -----------------------------------------------------------

    def fault_objects(self, *, run_id: str | None = None, namespace: str | None = None,
                      experiment: str | None = None,
                      kinds: Sequence[ChaosKind] = tuple(PLURALS)) -> list[Obj]:
        """chaoslab's chaos objects as the API returns them (status included)."""
        selector = managed_selector(run_id=run_id, experiment=experiment)
        found: list[Obj] = []
        for kind in kinds:
            plural = plural_of(kind)
            if namespace:
                answer = self._call("list", plural, namespace, self._custom.list_namespaced_custom_object,
                                    GROUP, VERSION, namespace, plural, label_selector=selector)
            else:
                answer = self._call("list", plural, None, self._custom.list_cluster_custom_object,
                                    GROUP, VERSION, plural, label_selector=selector)
            for item in answer.get("items") or ():
                item.setdefault("kind", kind.value)
                found.append(item)
        return found

    def list_faults(self, *, run_id: str | None = None, namespace: str | None = None) -> list[FaultHandle]:
        """Every chaos object carrying chaoslab's managed-by label (one run's, if ``run_id``)."""
        return [handle_from_object(o) for o in self.fault_objects(run_id=run_id, namespace=namespace)]

    def cleanup(self, *, run_id: str | None = None, namespace: str | None = None,
                experiment: str | None = None, kind: str | ChaosKind | None = None,
                timeout: float = 60.0, force: bool = False, dry_run: bool = False) -> list[FaultHandle]:
        """Remove chaoslab's objects (only those) matching the filters; returns what was (or,
        with ``dry_run``, would be) removed. ``CleanupError`` lists what may remain."""
        kinds = (kind_of(kind),) if kind is not None else tuple(PLURALS)
        handles = [handle_from_object(o) for o in self.fault_objects(
            run_id=run_id, namespace=namespace, experiment=experiment, kinds=kinds)]
        if handles and not dry_run:
            self.remove_all(handles, timeout=timeout, force=force)
        return handles

    # --- PrometheusRule objects ---------------------------------------------------------

    def load_prometheus_rules(self, namespace: str | None = None, name: str | None = None) -> list[Obj]:
        """PrometheusRule objects (monitoring.coreos.com/v1) in one namespace, or everywhere."""
        api = self._custom
        try:
            if namespace and name:
                return [cast(Obj, self._call("get", RULES_PLURAL, namespace, api.get_namespaced_custom_object,
                                             RULES_GROUP, RULES_VERSION, namespace, RULES_PLURAL, name))]
            if namespace:
                answer = self._call("list", RULES_PLURAL, namespace, api.list_namespaced_custom_object,
                                    RULES_GROUP, RULES_VERSION, namespace, RULES_PLURAL)
            else:
                answer = self._call("list", RULES_PLURAL, None, api.list_cluster_custom_object,
                                    RULES_GROUP, RULES_VERSION, RULES_PLURAL)
        except KubernetesError as exc:
            if exc.status == 404 and not name:
                raise KubernetesError(f"{exc}: is the Prometheus Operator (PrometheusRule CRD) installed?",
                                      status=404) from exc
            raise
        return list(answer.get("items") or ())


def _cleanup_failure(stuck: Sequence[tuple[FaultHandle, Obj]], failed: Sequence[tuple[FaultHandle, str]],
                     *, timeout: float, force: bool) -> str:
    parts = []
    if stuck:
        names = ", ".join(f"{h.ref} (finalizers: {', '.join(finalizers(o)) or 'none'})" for h, o in stuck)
        hint = "" if force else ("; chaoslab cleanup --force strips the finalizer "
                                 "(tc/iptables rules may remain)")
        parts.append(f"still there after {timeout:g}s: {names}{hint}")
    parts += [f"{h.ref} could not be removed: {reason}" for h, reason in failed]
    return "; ".join(parts)


def load_rules_from_cluster(uri: str, *, context: str | None = None,
                            backend: KubernetesBackend | None = None) -> list[tuple[str, Obj]]:
    """The PrometheusRule objects a ``k8s://NAMESPACE[/NAME]`` address names (``k8s://`` is every
    namespace), each with its source ``k8s://namespace/name`` — ready for
    ``chaoslab.prometheus.rules.parse_rule_documents([doc], source=source)``."""
    namespace, name = parse_rules_uri(uri)
    own = backend is None
    backend = backend or connect(context=context)
    try:
        objects = backend.load_prometheus_rules(namespace, name)
    finally:
        if own:
            backend.close()
    out = []
    for obj in objects:
        meta = obj.get("metadata") or {}
        out.append((f"k8s://{meta.get('namespace', namespace)}/{meta.get('name', name)}", obj))
    logger.info("%s: %d PrometheusRule objects", uri, len(out))
    return out
