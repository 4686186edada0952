"""The object store behind the fake Kubernetes API: resources, resource versions,
finalizers, admission hooks and the watch event log.

Everything happens under one condition variable, so the HTTP handlers and the
Chaos Mesh controller emulator see one consistent history, exactly as clients of a
real API server see etcd through the watch cache.
"""

from __future__ import annotations

import copy
import queue
import re
import threading
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar

Obj = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Resource:
    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool = True

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def qualified(self) -> str:
        """``networkchaos.chaos-mesh.org`` / ``pods``, as API error messages say it."""
        return f"{self.plural}.{self.group}" if self.group else self.plural


PODS = Resource("", "v1", "pods", "Pod")
NAMESPACES = Resource("", "v1", "namespaces", "Namespace", namespaced=False)
NETWORK_CHAOS = Resource("chaos-mesh.org", "v1alpha1", "networkchaos", "NetworkChaos")
POD_CHAOS = Resource("chaos-mesh.org", "v1alpha1", "podchaos", "PodChaos")
PROMETHEUS_RULES = Resource("monitoring.coreos.com", "v1", "prometheusrules", "PrometheusRule")
DEPLOYMENTS = Resource("apps", "v1", "deployments", "Deployment")
RESOURCES = {(r.group, r.version, r.plural): r for r in
             (PODS, NAMESPACES, NETWORK_CHAOS, POD_CHAOS, PROMETHEUS_RULES, DEPLOYMENTS)}

# Field labels the real API server accepts per resource (others are a 400).
POD_FIELDS = {
    "metadata.name": lambda o: o["metadata"].get("name"),
    "metadata.namespace": lambda o: o["metadata"].get("namespace"),
    "spec.nodeName": lambda o: o.get("spec", {}).get("nodeName"),
    "spec.restartPolicy": lambda o: o.get("spec", {}).get("restartPolicy"),
    "spec.schedulerName": lambda o: o.get("spec", {}).get("schedulerName"),
    "spec.serviceAccountName": lambda o: o.get("spec", {}).get("serviceAccountName"),
    "status.phase": lambda o: o.get("status", {}).get("phase"),
    "status.podIP": lambda o: o.get("status", {}).get("podIP"),
}
META_FIELDS = {k: POD_FIELDS[k] for k in ("metadata.name", "metadata.namespace")}

_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
HISTORY_LIMIT = 5000


class ApiError(Exception):
    """A Kubernetes ``Status`` failure."""

    REASONS: ClassVar[dict[int, str]] = {
        400: "BadRequest", 403: "Forbidden", 404: "NotFound", 409: "AlreadyExists",
        410: "Expired", 415: "UnsupportedMediaType", 422: "Invalid"}

    def __init__(self, code: int, message: str, *, reason: str | None = None,
                 details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.reason = reason or self.REASONS.get(code, "InternalError")
        self.details = details or {}

    def status(self) -> Obj:
        return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": self.message, "reason": self.reason, "details": self.details,
                "code": self.code}


def not_found(res: Resource, name: str) -> ApiError:
    return ApiError(404, f'{res.qualified} "{name}" not found',
                    details={"name": name, "group": res.group, "kind": res.plural})


def now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def check_labels(res: Resource, name: str, labels: Any) -> None:
    """422 for label keys or values the real API server refuses."""
    where = f'{res.kind}.{res.group} "{name}" is invalid: metadata.labels: Invalid value'
    rule = "must start and end with an alphanumeric character ('-', '_', '.' inside), at most 63"
    for key, value in (labels or {}).items():
        prefix, _, short = str(key).rpartition("/")
        if not _LABEL_NAME.match(short) or len(short) > 63 or (prefix and not _DNS_SUBDOMAIN.match(prefix)):
            raise ApiError(422, f'{where}: "{key}": name part {rule}')
        if not isinstance(value, str) or len(value) > 63 or (value and not _LABEL_NAME.match(value)):
            raise ApiError(422, f'{where}: "{value}": a valid label must be an empty string or {rule}')


# --- selectors ---------------------------------------------------------------------


def _split_requirements(text: str) -> list[str]:
    parts, depth, current = [], 0, ""
    for char in text:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            parts.append(current.strip())
            current = ""
        else:
            current += char
    if current.strip():
        parts.append(current.strip())
    return parts


_SET_REQ = re.compile(r"^([\w./-]+)\s+(in|notin)\s*\(([^)]*)\)$")
_EQ_REQ = re.compile(r"^([\w./-]+)\s*(==|=|!=)\s*([\w./-]*)$")
_EXISTS_REQ = re.compile(r"^(!?)([\w./-]+)$")


def parse_label_selector(text: str) -> Callable[[dict[str, str]], bool]:
    """A predicate for a label selector: ``=``, ``==``, ``!=``, ``in``, ``notin``, ``k``, ``!k``."""
    checks: list[Callable[[dict[str, str]], bool]] = []
    for req in _split_requirements(text or ""):
        if m := _SET_REQ.match(req):
            key, op, values = m.group(1), m.group(2), {v.strip() for v in m.group(3).split(",")} - {""}
            if not values:
                raise ApiError(400, f"unable to parse requirement: for 'in', 'notin' operators, values set "
                                    f"can't be empty: {req!r}")
            if op == "in":
                checks.append(lambda labels, k=key, vs=values: labels.get(k) in vs)
            else:
                checks.append(lambda labels, k=key, vs=values: labels.get(k) not in vs)
        elif m := _EQ_REQ.match(req):
            key, op, value = m.groups()
            if op == "!=":
                checks.append(lambda labels, k=key, v=value: labels.get(k) != v)
            else:
                checks.append(lambda labels, k=key, v=value: labels.get(k) == v)
        elif m := _EXISTS_REQ.match(req):
            negate, key = m.group(1) == "!", m.group(2)
            checks.append(lambda labels, k=key, n=negate: (k in labels) != n)
        else:
            raise ApiError(400, f"unable to parse requirement: {req!r}")
    return lambda labels: all(check(labels) for check in checks)


def parse_field_selector(text: str, res: Resource) -> Callable[[Obj], bool]:
    allowed = POD_FIELDS if res is PODS else META_FIELDS
    checks: list[Callable[[Obj], bool]] = []
    for req in _split_requirements(text or ""):
        m = re.match(r"^([\w.]+)\s*(==|=|!=)\s*(.*)$", req)
        if not m:
            raise ApiError(400, f"invalid selector: {req!r}")
        key, op, value = m.groups()
        if key not in allowed:
            raise ApiError(400, f'field label not supported: {key}')
        getter = allowed[key]
        if op == "!=":
            checks.append(lambda o, g=getter, v=value: (g(o) or "") != v)
        else:
            checks.append(lambda o, g=getter, v=value: (g(o) or "") == v)
    return lambda obj: all(check(obj) for check in checks)


# --- patches -----------------------------------------------------------------------


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise ApiError(422, f"invalid JSON pointer {path!r}")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _walk(doc: Any, parts: list[str]) -> Any:
    for part in parts:
        doc = doc[int(part)] if isinstance(doc, list) else doc[part]
    return doc


def json_patch(doc: Obj, ops: list[Obj]) -> Obj:
    """RFC 6902: add, remove, replace, test."""
    doc = copy.deepcopy(doc)
    for op in ops:
        parts = _pointer(op.get("path", ""))
        try:
            parent = _walk(doc, parts[:-1])
            last = parts[-1]
            kind = op.get("op")
            if kind == "test":
                if _walk(doc, parts) != op.get("value"):
                    raise ApiError(422, f"testing value {op.get('path')} failed")
            elif kind == "remove":
                del parent[int(last) if isinstance(parent, list) else last]
            elif kind == "replace":
                _walk(doc, parts)  # must exist
                parent[int(last) if isinstance(parent, list) else last] = copy.deepcopy(op["value"])
            elif kind == "add":
                if isinstance(parent, list):
                    index = len(parent) if last == "-" else int(last)
                    parent.insert(index, copy.deepcopy(op["value"]))
                else:
                    parent[last] = copy.deepcopy(op["value"])
            else:
                raise ApiError(422, f"unsupported JSON patch op {kind!r}")
        except (KeyError, IndexError, ValueError, TypeError) as exc:
            raise ApiError(422, f"the server rejected our request due to an error in our request: "
                                f"{op.get('op')} {op.get('path')}: {exc!r}") from exc
    return doc


# --- the store ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Event:
    rv: int
    type: str  # ADDED | MODIFIED | DELETED
    resource: Resource
    object: Obj


Admission = Callable[[str, Resource, Obj, Obj | None], None]  # raise ApiError to deny


def pod_readiness(ready: bool, *, restarts: int = 0) -> Obj:
    """The ``conditions`` and ``containerStatuses`` of a pod's status, Ready or not."""
    flag = "True" if ready else "False"
    container: Obj = {"name": "app", "image": "demo:1", "imageID": "demo@sha256:0", "ready": ready,
                      "restartCount": restarts,
                      "state": {"running": {}} if ready else {"waiting": {"reason": "CrashLoopBackOff"}}}
    return {"conditions": [{"type": "Ready", "status": flag, "reason": "" if ready else "ContainersNotReady"},
                           {"type": "ContainersReady", "status": flag}],
            "containerStatuses": [container]}


@dataclass
class Store:
    cond: threading.Condition = field(default_factory=threading.Condition)
    objects: dict[tuple[Resource, str, str], Obj] = field(default_factory=dict)
    namespaces: set[str] = field(default_factory=set)
    rv: int = 100
    history: list[Event] = field(default_factory=list)
    admission: list[Admission] = field(default_factory=list)
    subscribers: list[queue.Queue[Event]] = field(default_factory=list)
    closed: bool = False
    compacted_rv: int = 0  # versions up to this one are expired, as after an etcd compaction

    # -- events
    def _emit(self, kind: str, res: Resource, obj: Obj) -> None:
        event = Event(self.rv, kind, res, copy.deepcopy(obj))
        self.history.append(event)
        if len(self.history) > HISTORY_LIMIT:
            del self.history[: len(self.history) - HISTORY_LIMIT]
        for sub in self.subscribers:
            sub.put(event)
        self.cond.notify_all()

    def _bump(self, obj: Obj) -> None:
        self.rv += 1
        obj["metadata"]["resourceVersion"] = str(self.rv)

    def oldest_rv(self) -> int:
        oldest = self.history[0].rv - 1 if self.history else self.rv
        return max(oldest, self.compacted_rv)

    def compact(self) -> None:
        """Expire every resourceVersion older than the current one: a watch resuming from one
        gets ``410 Gone``, as from a real API server after etcd compacted its history."""
        with self.cond:
            self.compacted_rv = self.rv

    def events_after(self, rv: int) -> list[Event]:
        return [e for e in self.history if e.rv > rv]

    def subscribe(self) -> queue.Queue[Event]:
        q: queue.Queue[Event] = queue.Queue()
        with self.cond:
            self.subscribers.append(q)
        return q

    def unsubscribe(self, q: queue.Queue[Event]) -> None:
        with self.cond:
            if q in self.subscribers:
                self.subscribers.remove(q)

    def close(self) -> None:
        with self.cond:
            self.closed = True
            self.cond.notify_all()

    # -- reads
    def get(self, res: Resource, namespace: str, name: str) -> Obj:
        with self.cond:
            obj = self.objects.get((res, namespace, name))
            if obj is None:
                raise not_found(res, name)
            return copy.deepcopy(obj)

    def list(self, res: Resource, namespace: str | None, *, labels: str = "",
             fields: str = "") -> tuple[list[Obj], int]:
        label_ok = parse_label_selector(labels)
        field_ok = parse_field_selector(fields, res)
        with self.cond:
            items = [copy.deepcopy(o) for (r, ns, _), o in sorted(
                self.objects.items(), key=lambda kv: (kv[0][1], kv[0][2]))
                if r is res and (namespace is None or ns == namespace)
                and label_ok(o["metadata"].get("labels") or {}) and field_ok(o)]
            return items, self.rv

    # -- writes
    def _admit(self, operation: str, res: Resource, obj: Obj, old: Obj | None) -> None:
        for hook in list(self.admission):
            hook(operation, res, obj, old)

    def create(self, res: Resource, namespace: str, body: Obj) -> Obj:
        obj = copy.deepcopy(body)
        meta = obj.setdefault("metadata", {})
        if obj.get("apiVersion") != res.api_version or obj.get("kind") != res.kind:
            raise ApiError(400, f"the API version in the data ({obj.get('apiVersion')}) does not match "
                                f"the expected API version ({res.api_version})")
        if meta.get("namespace") not in (None, "", namespace):
            raise ApiError(400, "the namespace of the provided object does not match the namespace "
                                "sent on the request")
        name = meta.get("name")
        if not name:
            if not meta.get("generateName"):
                raise ApiError(422, f'{res.kind}.{res.group} "" is invalid: metadata.name: '
                                    "Required value: name or generateName is required")
            name = meta["generateName"] + uuid.uuid4().hex[:5]
        if len(name) > 253 or not _DNS_SUBDOMAIN.match(name):
            raise ApiError(422, f'{res.kind}.{res.group} "{name}" is invalid: metadata.name: '
                                f'Invalid value: "{name}": a lowercase RFC 1123 subdomain must '
                                "consist of lower case alphanumeric characters, '-' or '.'")
        check_labels(res, name, meta.get("labels"))
        with self.cond:
            if res.namespaced and namespace not in self.namespaces:
                raise ApiError(404, f'namespaces "{namespace}" not found',
                               details={"name": namespace, "kind": "namespaces"})
            if (res, namespace, name) in self.objects:
                raise ApiError(409, f'{res.qualified} "{name}" already exists',
                               details={"name": name, "group": res.group, "kind": res.plural})
            meta.update(name=name, uid=str(uuid.uuid4()), creationTimestamp=now_rfc3339(), generation=1)
            if res.namespaced:
                meta["namespace"] = namespace
            self._admit("CREATE", res, obj, None)
            self._bump(obj)
            self.objects[(res, namespace, name)] = obj
            if res is NAMESPACES:
                self.namespaces.add(name)
            self._emit("ADDED", res, obj)
            return copy.deepcopy(obj)

    def _store_update(self, res: Resource, namespace: str, old: Obj, new: Obj, *, admit: bool) -> Obj:
        """Persist ``new`` over ``old`` (lock held): no-op when unchanged; finalizers honoured."""
        meta, old_meta = new.setdefault("metadata", {}), old["metadata"]
        for key in ("name", "namespace", "uid", "creationTimestamp", "deletionTimestamp"):
            if key in old_meta:
                meta[key] = old_meta[key]
            else:
                meta.pop(key, None)
        meta["resourceVersion"] = old_meta["resourceVersion"]
        meta["generation"] = old_meta.get("generation", 1)
        if new == old:
            return copy.deepcopy(old)
        if admit:
            check_labels(res, meta["name"], meta.get("labels"))
            self._admit("UPDATE", res, new, old)
        if new.get("spec") != old.get("spec"):
            meta["generation"] += 1
        self._bump(new)
        key = (res, namespace, meta["name"])
        if meta.get("deletionTimestamp") and not meta.get("finalizers"):
            del self.objects[key]
            self._emit("DELETED", res, new)
        else:
            self.objects[key] = new
            self._emit("MODIFIED", res, new)
        return copy.deepcopy(new)

    def patch(self, res: Resource, namespace: str, name: str, body: Any, content_type: str) -> Obj:
        with self.cond:
            old = self.objects.get((res, namespace, name))
            if old is None:
                raise not_found(res, name)
            if content_type.startswith("application/json-patch+json"):
                if not isinstance(body, list):
                    raise ApiError(400, "a JSON patch must be a list of operations")
                new = json_patch(old, body)
            elif content_type.startswith("application/merge-patch+json") or (
                    res is PODS and content_type.startswith("application/strategic-merge-patch+json")):
                new = merge_patch(old, body)
            else:
                raise ApiError(415, f"the body of the request was in an unknown format - accepted "
                                    f"media types include: application/json-patch+json, "
                                    f"application/merge-patch+json (got {content_type})")
            return self._store_update(res, namespace, old, new, admit=True)

    def replace(self, res: Resource, namespace: str, name: str, body: Obj) -> Obj:
        with self.cond:
            old = self.objects.get((res, namespace, name))
            if old is None:
                raise not_found(res, name)
            sent_rv = body.get("metadata", {}).get("resourceVersion")
            if sent_rv and sent_rv != old["metadata"]["resourceVersion"]:
                raise ApiError(409, f'Operation cannot be fulfilled on {res.qualified} "{name}": the '
                                    "object has been modified; please apply your changes to the latest "
                                    "version and try again", reason="Conflict")
            return self._store_update(res, namespace, old, copy.deepcopy(body), admit=True)

    def mutate(self, res: Resource, namespace: str, name: str, change: Callable[[Obj], None]) -> Obj | None:
        """Controller-side update: apply ``change`` to the current object, skipping admission.
        Returns None when the object is gone."""
        with self.cond:
            old = self.objects.get((res, namespace, name))
            if old is None:
                return None
            new = copy.deepcopy(old)
            change(new)
            return self._store_update(res, namespace, old, new, admit=False)

    def delete(self, res: Resource, namespace: str, name: str) -> Obj:
        with self.cond:
            obj = self.objects.get((res, namespace, name))
            if obj is None:
                raise not_found(res, name)
            if res is NAMESPACES:
                # No namespace controller: the contents go at once, finalizers or not.
                for key in [k for k in self.objects if k[0].namespaced and k[1] == name]:
                    gone = self.objects.pop(key)
                    self._bump(gone)
                    self._emit("DELETED", key[0], gone)
                self.namespaces.discard(name)
            if obj["metadata"].get("finalizers"):
                if not obj["metadata"].get("deletionTimestamp"):
                    obj["metadata"]["deletionTimestamp"] = now_rfc3339()
                    obj["metadata"]["deletionGracePeriodSeconds"] = 0
                    self._bump(obj)
                    self._emit("MODIFIED", res, obj)
                return copy.deepcopy(obj)
            del self.objects[(res, namespace, name)]
            self._bump(obj)
            self._emit("DELETED", res, obj)
            return copy.deepcopy(obj)

    # -- test helpers
    def add_namespace(self, name: str) -> None:
        with self.cond:
            if name not in self.namespaces:
                self.create(NAMESPACES, "", {"apiVersion": "v1", "kind": "Namespace",
                                             "metadata": {"name": name}, "status": {"phase": "Active"}})

    def add_pod(self, namespace: str, name: str, *, labels: dict[str, str] | None = None,
                phase: str = "Running", node: str = "node-1",
                annotations: dict[str, str] | None = None, owner: str | None = None,
                ready: bool | None = None) -> Obj:
        """A pod with one container; ``ready`` defaults to True for a Running pod (its
        ``Ready`` condition and container status say so, as the kubelet would)."""
        self.add_namespace(namespace)
        meta: Obj = {"name": name, "labels": dict(labels or {}), "annotations": dict(annotations or {})}
        if owner:
            meta["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": "Deployment", "name": owner,
                                        "uid": owner, "controller": True}]
        body: Obj = {
            "apiVersion": "v1", "kind": "Pod",
            "metadata": meta,
            "spec": {"nodeName": node, "containers": [{"name": "app", "image": "demo:1"}]},
            "status": {"phase": phase, "podIP": "10.0.0.1",
                       **pod_readiness(phase == "Running" if ready is None else ready)},
        }
        return self.create(PODS, namespace, body)

    def set_pod_ready(self, namespace: str, name: str, ready: bool, *, restart: bool = False) -> Obj | None:
        """The kubelet's view of a pod changes: Ready or not (``restart``: its container restarted)."""
        def change(pod: Obj) -> None:
            restarts = pod["status"]["containerStatuses"][0]["restartCount"] + int(restart)
            pod["status"].update(pod_readiness(ready, restarts=restarts))

        return self.mutate(PODS, namespace, name, change)

    def names(self, res: Resource, namespace: str | None = None) -> list[str]:
        items, _ = self.list(res, namespace)
        return [o["metadata"]["name"] for o in items]

    def find(self, res: Resource, predicate: Callable[[Obj], bool]) -> list[Obj]:
        items, _ = self.list(res, None)
        return [o for o in items if predicate(o)]

    def all_of(self, resources: Iterable[Resource]) -> list[Obj]:
        return [o for res in resources for o in self.list(res, None)[0]]
