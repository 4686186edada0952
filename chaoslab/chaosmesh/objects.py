"""Reading and naming Chaos Mesh objects as the API serves them, pure (no I/O).

What belongs here: the group/version/plurals, chaoslab's labels and object names,
the selector and mode read back out of a manifest, the pod label/field selectors
pushed to the API server for preflight, a pod as ``PodInfo``, how far an object's
injection has got (``injection_progress``), and the wording of API failures
(``describe_failure``). The backend and the CTK activities share these; the fake
API server in the tests reads them too.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from chaoslab.chaosmesh.selection import PodInfo
from chaoslab.errors import InvalidInputError
from chaoslab.model import (
    EXPERIMENT_LABEL,
    MANAGED_BY_LABEL,
    MANAGED_BY_VALUE,
    RUN_ID_LABEL,
    ChaosKind,
    ExpressionRequirement,
    FaultHandle,
    Mode,
    PodState,
    Selector,
)

GROUP = "chaos-mesh.org"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
PAUSE_ANNOTATION = "experiment.chaos-mesh.org/pause"
FORCE_CLEAN_ANNOTATION = "chaos-mesh.chaos-mesh.org/cleanFinalizer"
RECORDS_FINALIZER = "chaos-mesh/records"
PLURALS = {ChaosKind.NETWORK_CHAOS: "networkchaos", ChaosKind.POD_CHAOS: "podchaos"}
NAME_LIMIT = 63

Manifest = dict[str, Any]


def kind_of(text: str | ChaosKind) -> ChaosKind:
    """``NetworkChaos``, ``networkchaos`` or the enum → the enum."""
    for kind, plural in PLURALS.items():
        if text in (kind, kind.value, plural):
            return kind
    raise ValueError(f"unknown chaos kind {text!r} (expected NetworkChaos or PodChaos)")


def plural_of(kind: str | ChaosKind) -> str:
    return PLURALS[kind_of(kind)]


# --- names and labels ------------------------------------------------------------


def run_id_suffix(run_id: str) -> str:
    """The short part of a run id (``20261127T101500Z-3f2a`` → ``3f2a``) used in object names."""
    tail = run_id.rsplit("-", 1)[-1].lower()
    return re.sub(r"[^a-z0-9]", "", tail)[:8] or "run"


def object_name(base: str, run_id: str) -> str:
    """``<base>-<suffix>``, lowercased, at most 63 characters. Idempotent."""
    suffix = run_id_suffix(run_id)
    base = base.lower()
    if base.endswith(f"-{suffix}"):
        return base[:NAME_LIMIT]
    room = NAME_LIMIT - len(suffix) - 1
    return f"{base[:room].rstrip('-.')}-{suffix}"


def managed_selector(*, run_id: str | None = None, experiment: str | None = None) -> str:
    """The label selector for chaoslab's objects, optionally of one run or experiment."""
    parts = [f"{MANAGED_BY_LABEL}={MANAGED_BY_VALUE}"]
    if experiment is not None:
        parts.append(f"{EXPERIMENT_LABEL}={experiment}")
    if run_id is not None:
        parts.append(f"{RUN_ID_LABEL}={run_id}")
    return ",".join(parts)


def check_manifest(manifest: Any, *, where: str = "manifest") -> Manifest:
    """The manifest as a dict, or ``InvalidInputError`` naming the broken field."""
    if not isinstance(manifest, Mapping):
        raise InvalidInputError(None, where, "must be a Chaos Mesh manifest (a mapping)")
    if manifest.get("apiVersion") != API_VERSION:
        raise InvalidInputError(None, f"{where}.apiVersion", f"must be {API_VERSION}")
    try:
        kind_of(manifest.get("kind", ""))
    except ValueError as exc:
        raise InvalidInputError(None, f"{where}.kind", str(exc)) from exc
    meta = manifest.get("metadata")
    if not isinstance(meta, Mapping) or not meta.get("name") or not meta.get("namespace"):
        raise InvalidInputError(None, f"{where}.metadata", "needs a name and a namespace")
    if not isinstance(manifest.get("spec"), Mapping):
        raise InvalidInputError(None, f"{where}.spec", "is required")
    return dict(manifest)


def labelled(manifest: Manifest, *, run_id: str) -> Manifest:
    """A copy named ``<name>-<run suffix>`` carrying chaoslab's labels for ``run_id``."""
    out = copy.deepcopy(manifest)
    meta = out["metadata"]
    meta["name"] = object_name(meta["name"], run_id)
    labels = dict(meta.get("labels") or {})
    labels[MANAGED_BY_LABEL] = MANAGED_BY_VALUE
    labels[RUN_ID_LABEL] = run_id
    # A label value must end with an alphanumeric character, which a cut may not.
    labels.setdefault(EXPERIMENT_LABEL, manifest["metadata"]["name"].lower()[:NAME_LIMIT].rstrip("-_."))
    meta["labels"] = labels
    return out


def parse_timestamp(text: str | None) -> datetime | None:
    if not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def handle_from_object(obj: Mapping[str, Any]) -> FaultHandle:
    meta = obj.get("metadata") or {}
    labels = meta.get("labels") or {}
    return FaultHandle(
        kind=kind_of(obj.get("kind", "")),
        name=meta.get("name", ""),
        namespace=meta.get("namespace", ""),
        run_id=labels.get(RUN_ID_LABEL),
        experiment=labels.get(EXPERIMENT_LABEL),
        created_at=parse_timestamp(meta.get("creationTimestamp")),
    )


# --- selectors ----------------------------------------------------------------------


def _str_map(value: Any, field: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ValueError(f"spec.selector.{field} must be a mapping")
    return {str(k): str(v) for k, v in value.items()}


def _str_tuple(value: Any, field: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, Sequence) or isinstance(value, str):
        raise ValueError(f"spec.selector.{field} must be a list")
    return tuple(str(v) for v in value)


def selector_from_spec(raw: Any) -> Selector:
    """A Chaos Mesh ``PodSelectorSpec`` dict → ``Selector``; ValueError names the bad field."""
    raw = raw or {}
    if not isinstance(raw, Mapping):
        raise ValueError("spec.selector must be a mapping")
    expressions = []
    for i, item in enumerate(raw.get("expressionSelectors") or ()):
        if not isinstance(item, Mapping) or "key" not in item or "operator" not in item:
            raise ValueError(f"spec.selector.expressionSelectors[{i}] needs key and operator")
        if item["operator"] not in ("In", "NotIn", "Exists", "DoesNotExist"):
            raise ValueError(f"spec.selector.expressionSelectors[{i}].operator: {item['operator']!r}")
        values = _str_tuple(item.get("values"), f"expressionSelectors[{i}].values")
        # The API server (and Chaos Mesh's LabelSelectorAsSelector) refuses both of these.
        if item["operator"] in ("In", "NotIn") and not values:
            raise ValueError(f"spec.selector.expressionSelectors[{i}].values: must not be empty for "
                             f"{item['operator']}")
        if item["operator"] in ("Exists", "DoesNotExist") and values:
            raise ValueError(f"spec.selector.expressionSelectors[{i}].values: must be empty for "
                             f"{item['operator']}")
        expressions.append(ExpressionRequirement(key=str(item["key"]), operator=str(item["operator"]),
                                                 values=values))
    pods_raw = raw.get("pods") or {}
    if not isinstance(pods_raw, Mapping):
        raise ValueError("spec.selector.pods must map namespaces to pod names")
    return Selector(
        namespaces=_str_tuple(raw.get("namespaces"), "namespaces"),
        label_selectors=_str_map(raw.get("labelSelectors"), "labelSelectors"),
        expression_selectors=tuple(expressions),
        annotation_selectors=_str_map(raw.get("annotationSelectors"), "annotationSelectors"),
        field_selectors=_str_map(raw.get("fieldSelectors"), "fieldSelectors"),
        pod_phase_selectors=_str_tuple(raw.get("podPhaseSelectors"), "podPhaseSelectors"),
        nodes=_str_tuple(raw.get("nodes"), "nodes"),
        node_selectors=_str_map(raw.get("nodeSelectors"), "nodeSelectors"),
        pods={str(ns): _str_tuple(names, f"pods.{ns}") for ns, names in pods_raw.items()},
    )


def mode_from_spec(spec: Mapping[str, Any]) -> tuple[Mode, str | None]:
    try:
        mode = Mode(str(spec.get("mode")))
    except ValueError as exc:
        raise ValueError(f"spec.mode: {spec.get('mode')!r} is not one of "
                         f"{', '.join(m.value for m in Mode)}") from exc
    value = spec.get("value")
    return mode, (str(value) if value not in (None, "") else None)


def pod_label_selector(selector: Selector) -> str:
    """The selector's labelSelectors and expressionSelectors in API-server syntax."""
    parts = [f"{k}={v}" for k, v in sorted(selector.label_selectors.items())]
    for req in selector.expression_selectors:
        values = ",".join(req.values)
        parts.append({"In": f"{req.key} in ({values})", "NotIn": f"{req.key} notin ({values})",
                      "Exists": req.key, "DoesNotExist": f"!{req.key}"}[req.operator])
    return ",".join(parts)


# Pod field labels the API server can filter on (others are checked locally only).
SERVER_POD_FIELDS = frozenset({"metadata.name", "metadata.namespace", "spec.nodeName", "status.phase",
                               "spec.restartPolicy", "spec.schedulerName", "spec.serviceAccountName",
                               "status.podIP"})


def pod_field_selector(selector: Selector) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(selector.field_selectors.items())
                    if k in SERVER_POD_FIELDS)


def is_terminating_pod(pod: Mapping[str, Any]) -> bool:
    """Being deleted: still listed (often still Running) until its grace period ends, but
    going away. Chaos Mesh would still select it and never inject its replacement."""
    return bool((pod.get("metadata") or {}).get("deletionTimestamp"))


def pod_info(pod: Mapping[str, Any], *, node_labels: Mapping[str, str] | None = None) -> PodInfo:
    meta, spec, status = pod.get("metadata") or {}, pod.get("spec") or {}, pod.get("status") or {}
    fields = {
        "metadata.name": meta.get("name", ""), "metadata.namespace": meta.get("namespace", ""),
        "spec.nodeName": spec.get("nodeName") or "", "status.phase": status.get("phase") or "",
        "spec.restartPolicy": spec.get("restartPolicy") or "",
        "spec.schedulerName": spec.get("schedulerName") or "",
        "spec.serviceAccountName": spec.get("serviceAccountName") or "",
        "status.podIP": status.get("podIP") or "",
    }
    return PodInfo(name=meta.get("name", ""), namespace=meta.get("namespace", ""),
                   labels=dict(meta.get("labels") or {}), annotations=dict(meta.get("annotations") or {}),
                   phase=status.get("phase") or "Unknown", node=spec.get("nodeName"),
                   node_labels=dict(node_labels or {}), fields=fields)


def pod_state(pod: Mapping[str, Any]) -> PodState:
    """A pod's phase, its ``Ready`` condition and its containers' restarts. A pod without a
    ``Ready`` condition is not ready; ``reason`` says why when the status tells."""
    meta, status = pod.get("metadata") or {}, pod.get("status") or {}
    ready = next((c for c in status.get("conditions") or () if c.get("type") == "Ready"), None)
    containers = [*(status.get("initContainerStatuses") or ()), *(status.get("containerStatuses") or ())]
    restarts = sum(int(c.get("restartCount") or 0) for c in containers)
    waiting = [f"{c.get('name')}: {w['reason']}" for c in containers
               if (w := (c.get("state") or {}).get("waiting")) and w.get("reason")]
    if ready is None:
        reason = "no Ready condition"
    else:
        reason = "; ".join(waiting) or str(ready.get("message") or ready.get("reason") or "")
    return PodState(name=str(meta.get("name", "")), namespace=str(meta.get("namespace", "")),
                    phase=str(status.get("phase") or "Unknown"),
                    ready=ready is not None and ready.get("status") == "True",
                    restarts=restarts, reason="" if ready and ready.get("status") == "True" else reason)


# --- API failures ---------------------------------------------------------------------


def describe_failure(*, verb: str, resource: str, namespace: str | None, status: int | None,
                     reason: str = "", message: str) -> str:
    """``create networkchaos in shop: forbidden by RBAC: ...`` and the like."""
    where = f"{verb} {resource}" + (f" in {namespace}" if namespace else " in all namespaces")
    if "admission webhook" in message:
        return f"{where}: rejected by the admission webhook: {message}"
    if status == 403 and "cannot " in message:
        return f"{where}: forbidden by RBAC: {message} (see deploy/rbac.yaml)"
    if status in (400, 422):
        return f"{where}: rejected as invalid: {message}"
    if status == 401:
        return f"{where}: unauthorized: the credentials in the kubeconfig were refused ({message})"
    if status == 404 and resource in PLURALS.values() and verb in ("list", "watch", "create") \
            and 'namespaces "' not in message:
        # A collection that is not there: the CRD is missing, not an object.
        return (f"{where}: not found: {message} (is Chaos Mesh installed? the API server does not "
                f"serve {resource}.{GROUP}/{VERSION})")
    if status == 404:
        return f"{where}: not found: {message}"
    if status == 409:
        return f"{where}: already exists: {message} (a run with the same id left it? try chaoslab cleanup)"
    return f"{where}: HTTP {status} {reason}: {message}".replace("  ", " ")


# --- status ---------------------------------------------------------------------------


class Phase(StrEnum):
    PENDING = "pending"
    INJECTED = "injected"
    FAILED = "failed"


@dataclass(frozen=True, slots=True, kw_only=True)
class Progress:
    phase: Phase
    message: str
    pods: tuple[str, ...] = ()
    failures: tuple[str, ...] = ()  # every failed Apply attempt so far: "<pod>: <message>"


# Failed Apply messages no retry can fix: the spec itself is wrong. Chaos Mesh retries
# every other failure (the records controller requeues the Apply), often with success.
PERMANENT_FAILURES = ("is required for action",)


def conditions(obj: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    status = obj.get("status") or {}
    return {c.get("type", ""): c for c in status.get("conditions") or () if isinstance(c, Mapping)}


def _records(obj: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    status = obj.get("status") or {}
    return list((status.get("experiment") or {}).get("containerRecords") or ())


def injection_progress(obj: Mapping[str, Any]) -> Progress:
    """How far Chaos Mesh got: injected (AllInjected=True), failed for good (a Failed Apply
    event that no retry can fix) or pending (perhaps after failed attempts it retries)."""
    conds = conditions(obj)
    records = _records(obj)
    pods = tuple(str(r.get("id", "")) for r in records)
    failures = _failures(records)
    if conds.get("AllInjected", {}).get("status") == "True":
        return Progress(phase=Phase.INJECTED, message="AllInjected=True", pods=pods, failures=failures)
    permanent = [f for f in failures if any(marker in f for marker in PERMANENT_FAILURES)]
    if permanent:
        return Progress(phase=Phase.FAILED, message="; ".join(dict.fromkeys(permanent)), pods=pods,
                        failures=failures)
    recovered = conds.get("AllRecovered", {}).get("status") == "True"
    applied = any(e.get("type") == "Succeeded" and e.get("operation") == "Apply"
                  for r in records for e in r.get("events") or ())
    if recovered and applied:
        # A short duration can elapse before anyone looks: it did take hold.
        return Progress(phase=Phase.INJECTED, message="already recovered (duration elapsed)", pods=pods,
                        failures=failures)
    selected = conds.get("Selected", {})
    if selected.get("status") == "False":
        why = selected.get("message") or selected.get("reason") or "no pod selected"
        return Progress(phase=Phase.PENDING, message=f"Selected=False ({why})", pods=pods, failures=failures)
    shown = ", ".join(f"{k}={v.get('status')}" for k, v in sorted(conds.items())) or "no status yet"
    if failures:
        shown = f"{len(failures)} failed attempt(s), the last: {failures[-1]}"
    return Progress(phase=Phase.PENDING, message=shown, pods=pods, failures=failures)


def _failures(records: list[Mapping[str, Any]]) -> tuple[str, ...]:
    """Every failed Apply attempt (a record keeps its events), oldest first."""
    found = [
        (str(event.get("timestamp", "")), f"{record.get('id', '?')}: {event.get('message') or 'failed'}")
        for record in records
        for event in record.get("events") or ()
        if event.get("type") == "Failed" and event.get("operation", "Apply") == "Apply"
    ]
    return tuple(text for _when, text in sorted(found, key=lambda item: item[0]))


def is_deleting(obj: Mapping[str, Any]) -> bool:
    return bool((obj.get("metadata") or {}).get("deletionTimestamp"))


def finalizers(obj: Mapping[str, Any]) -> tuple[str, ...]:
    return tuple((obj.get("metadata") or {}).get("finalizers") or ())


def parse_rules_uri(uri: str) -> tuple[str | None, str | None]:
    """``k8s://`` (every namespace), ``k8s://monitoring/`` or ``k8s://monitoring/name``."""
    if not uri.startswith("k8s://"):
        raise InvalidInputError(None, "rules", f"{uri!r} is not a k8s://NAMESPACE[/NAME] address")
    rest = uri[len("k8s://"):].strip("/")
    if not rest:
        return None, None
    namespace, _, name = rest.partition("/")
    if "/" in name:
        raise InvalidInputError(None, "rules", f"{uri!r}: expected k8s://NAMESPACE[/NAME]")
    return namespace, name or None
