"""A Chaos Mesh 2.8 controller emulator that runs in a thread against the fake API store.

What it does, as the real controller and webhook do:
- admission: the validating webhook rejects bad specs (the real one answers 403 through
  controller-runtime's ``Denied``; ``webhook_code`` changes that) and skips every check
  for ``partition``; spec changes after creation are refused ("Cannot update chaos spec");
- adds the ``chaos-mesh/records`` finalizer, selects pods **once** (zero matches, of the
  selector or of a NetworkChaos ``target``: ``Selected=False`` and a silent stall), then
  records ``Injected`` and ``AllInjected=True``;
- an action without its sub-spec fails at run time for good (no retry can fix the spec);
  objects whose name matches ``fail_injection(pattern, message, times=N)`` get a ``Failed``
  Apply event carrying the message at each of their first N attempts (every attempt when
  N is None), retried every ``retry_delay`` seconds as Chaos Mesh requeues a failed Apply;
- pod-kill deletes the selected pods, and a replacement with a new name appears shortly after
  (a minimal Deployment controller also creates and replaces the pods of apps/v1 Deployments);
- pod-failure makes the selected pods not Ready while injected; recovering restarts their
  container (``restartCount + 1``) and they are Ready again, unless the object's name matches
  ``leave_unready(pattern)``: then they stay not Ready (an image that no longer starts), and
  the replacements of the pods a pod-kill deleted never become Ready either;
- ``experiment.chaos-mesh.org/pause: "true"`` recovers but keeps the object;
- the duration elapsing recovers (``AllRecovered=True``) and keeps the object;
- deletion recovers every record, then releases the finalizer (after ``release_delay``
  seconds: recovering takes a while on a real cluster), unless the name matches
  ``stick_finalizer(pattern)`` and the object lacks ``cleanFinalizer: forced``.
"""

from __future__ import annotations

import fnmatch
import heapq
import itertools
import queue
import random
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from chaoslab.chaosmesh.objects import (
    FORCE_CLEAN_ANNOTATION,
    PAUSE_ANNOTATION,
    RECORDS_FINALIZER,
    mode_from_spec,
    pod_info,
    selector_from_spec,
)
from chaoslab.chaosmesh.selection import apply_mode, select_pods
from chaoslab.model import parse_go_duration
from tests.fakes.kube_store import (
    DEPLOYMENTS,
    NETWORK_CHAOS,
    POD_CHAOS,
    PODS,
    ApiError,
    Event,
    Obj,
    Resource,
    Store,
    now_rfc3339,
)

CHAOS = (NETWORK_CHAOS, POD_CHAOS)
NETWORK_ACTIONS = {"netem", "delay", "loss", "duplicate", "corrupt", "partition", "bandwidth"}
SUB_SPECS = {"delay": "delay", "loss": "loss", "duplicate": "duplicate", "corrupt": "corrupt",
             "bandwidth": "bandwidth"}
POD_ACTIONS = {"pod-kill", "pod-failure", "container-kill"}
_LATENCY = re.compile(r"^[0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h)$")


@dataclass
class _State:
    selected: list[str] | None = None
    injected: bool = False
    failed: bool = False
    attempts: int = 0
    retry_at: float = 0.0
    events: list[dict[str, str]] = field(default_factory=list)
    expired: bool = False
    expiry_scheduled: bool = False
    releasing: bool = False


def _conditions(**flags: bool) -> list[dict[str, str]]:
    return [{"type": name, "status": "True" if value else "False"} for name, value in flags.items()]


def _validate(res: Resource, spec: dict[str, Any]) -> list[str]:
    """The webhook's complaints about a spec, in Chaos Mesh's ``field: reason`` style."""
    errors: list[str] = []
    if res is NETWORK_CHAOS and spec.get("action") == "partition":
        return errors  # the real webhook skips every check for partition
    try:
        mode, value = mode_from_spec(spec)
        if mode.value in ("fixed", "fixed-percent", "random-max-percent"):
            number = int(value or "")
            limit = 100 if "percent" in mode.value else None
            if number <= 0 or (limit is not None and number > limit):
                errors.append(f'spec.value: Invalid value: "{value}": value out of range')
    except ValueError as exc:
        errors.append(f"spec.mode: Invalid value: {exc}")
    if spec.get("duration"):
        try:
            parse_go_duration(spec["duration"])
        except ValueError:
            errors.append(f'spec.duration: Invalid value: "{spec["duration"]}": time: invalid duration')
    if res is NETWORK_CHAOS:
        errors += _validate_network(spec)
    elif spec.get("action") not in POD_ACTIONS:
        errors.append(f'spec.action: Invalid value: "{spec.get("action")}": unsupported action')
    elif spec["action"] == "container-kill" and not spec.get("containerNames"):
        errors.append("spec.containerNames: Invalid value: []: the name of container is required "
                      "on container-kill action")
    return errors


def _validate_network(spec: dict[str, Any]) -> list[str]:
    errors = []
    if spec.get("action") not in NETWORK_ACTIONS:
        errors.append(f'spec.action: Invalid value: "{spec.get("action")}": unsupported action')
    direction = spec.get("direction", "to")
    if direction not in ("to", "from", "both"):
        errors.append(f'spec.direction: Invalid value: "{direction}": unknown direction')
    elif direction in ("from", "both") and not spec.get("target"):
        errors.append(f'spec.direction: Invalid value: "{direction}": `from` and `both` direction '
                      "cannot be used when targets is empty")
    elif direction in ("from", "both") and spec.get("externalTargets"):
        errors.append(f'spec.direction: Invalid value: "{direction}": external targets cannot be '
                      "used with `from` and `both` direction")
    latency = (spec.get("delay") or {}).get("latency")
    if latency is not None and not _LATENCY.match(str(latency)):
        errors.append(f'spec.delay.latency: Invalid value: "{latency}": parse latency field error')
    return errors


@dataclass
class ChaosMeshEmulator:
    store: Store
    inject_delay: float = 0.02
    replacement_delay: float = 0.3
    seed: int = 0
    webhook_code: int = 403
    release_delay: float = 0.0
    retry_delay: float = 0.1
    failures: list[tuple[str, str, int | None]] = field(default_factory=list)
    stuck: list[str] = field(default_factory=list)
    unready: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)
        self._states: dict[str, _State] = {}
        self._timers: list[tuple[float, int, Callable[[], None]]] = []
        self._seq = itertools.count()
        self._names = itertools.count(1)
        self._stop = threading.Event()
        self._queue: queue.Queue[Event] | None = None
        self._thread: threading.Thread | None = None
        self._unready_owners: set[tuple[str, str]] = set()  # Deployments whose next pods never get Ready

    # -- test controls
    def fail_injection(
        self, pattern: str, message: str = "unable to flush ip sets for pod", *, times: int | None = None
    ) -> None:
        self.failures.append((pattern, message, times))

    def stick_finalizer(self, pattern: str) -> None:
        self.stuck.append(pattern)

    def leave_unready(self, pattern: str) -> None:
        self.unready.append(pattern)

    def _leaves_unready(self, name: str) -> bool:
        return any(fnmatch.fnmatch(name, p) for p in self.unready)

    def start(self) -> ChaosMeshEmulator:
        self.store.admission.append(self._admit)
        self._queue = self.store.subscribe()
        self._thread = threading.Thread(target=self._loop, name="chaos-mesh-emulator", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._queue is not None:
            self.store.unsubscribe(self._queue)
        if self._admit in self.store.admission:
            self.store.admission.remove(self._admit)

    # -- admission webhook
    def _admit(self, operation: str, res: Resource, obj: Obj, old: Obj | None) -> None:
        if res not in CHAOS:
            return
        hook = f"v{res.plural}.kb.io"
        if operation == "UPDATE" and old is not None and obj.get("spec") != old.get("spec"):
            errors = ["Cannot update chaos spec"]
        elif operation == "CREATE":
            errors = _validate(res, obj.get("spec") or {})
        else:
            errors = []
        if errors:
            raise ApiError(self.webhook_code,
                           f'admission webhook "{hook}" denied the request: {"; ".join(errors)}')

    # -- controller loop
    def _loop(self) -> None:
        assert self._queue is not None
        while not self._stop.is_set():
            wait = 0.05
            if self._timers:
                wait = max(0.0, min(wait, self._timers[0][0] - time.monotonic()))
            try:
                event = self._queue.get(timeout=wait)
            except queue.Empty:
                event = None
            if event is not None and event.resource in CHAOS:
                self._on_event(event)
            elif event is not None:
                self._on_workload(event)
            while self._timers and self._timers[0][0] <= time.monotonic():
                _, _, action = heapq.heappop(self._timers)
                action()

    def _after(self, delay: float, action: Callable[[], None]) -> None:
        heapq.heappush(self._timers, (time.monotonic() + delay, next(self._seq), action))

    def _on_event(self, event: Event) -> None:
        meta = event.object["metadata"]
        key = (event.resource, meta["namespace"], meta["name"])
        if event.type == "DELETED":
            self._states.pop(meta["uid"], None)
            return
        delay = self.inject_delay if event.type == "ADDED" else 0.0
        self._after(delay, lambda: self._reconcile(*key))

    def _on_workload(self, event: Event) -> None:
        """Just enough of a Deployment controller: create the replicas, replace deleted pods."""
        meta = event.object["metadata"]
        if event.resource is DEPLOYMENTS and event.type == "ADDED":
            spec = event.object.get("spec") or {}
            labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
            for _ in range(int(spec.get("replicas", 1))):
                self._spawn(meta["namespace"], meta["name"], labels)
        elif event.resource is PODS and event.type == "DELETED":
            owners = [o["name"] for o in meta.get("ownerReferences") or () if o.get("kind") == "Deployment"]
            for owner in owners:
                labels = meta.get("labels") or {}
                ready = (meta["namespace"], owner) not in self._unready_owners
                self._after(self.replacement_delay, lambda o=owner, ns=meta["namespace"], lb=labels, r=ready:
                            self._spawn(ns, o, lb, r))

    def _spawn(self, namespace: str, deployment: str, labels: dict[str, str], ready: bool = True) -> None:
        try:
            self.store.get(DEPLOYMENTS, namespace, deployment)
        except ApiError:
            return  # the deployment (or its namespace) is gone
        name = f"{deployment}-{next(self._names):05d}"
        self.store.add_pod(namespace, name, labels=labels, owner=deployment, ready=ready)

    def _mutate(self, res: Resource, ns: str, name: str, change: Callable[[Obj], None]) -> Obj | None:
        return self.store.mutate(res, ns, name, change)

    def _reconcile(self, res: Resource, ns: str, name: str) -> None:
        try:
            obj = self.store.get(res, ns, name)
        except ApiError:
            return
        meta = obj["metadata"]
        state = self._states.setdefault(meta["uid"], _State())
        if meta.get("deletionTimestamp"):
            self._finish(res, obj, state)
            return
        if RECORDS_FINALIZER not in (meta.get("finalizers") or []):
            self._mutate(res, ns, name, lambda o: o["metadata"].setdefault("finalizers", []).append(
                RECORDS_FINALIZER))
        if state.selected is None:
            try:
                state.selected = self._select(obj)
            except ValueError:  # a selector Chaos Mesh cannot use: nothing selected, as for no match
                state.selected = []
        if not state.selected:
            self._set_status(res, obj, conditions=_conditions(Selected=False, AllInjected=False,
                                                              AllRecovered=False, Paused=False),
                             records=[], phase="Run", message="no pod is selected")
            return
        paused = (meta.get("annotations") or {}).get(PAUSE_ANNOTATION) == "true"
        if state.expired or paused:
            self._recover(res, obj, state, paused=paused)
        elif not state.injected and not state.failed and time.monotonic() >= state.retry_at:
            self._inject(res, obj, state)

    def _select(self, obj: Obj) -> list[str]:
        spec = obj.get("spec") or {}
        namespace = obj["metadata"]["namespace"]
        pods = [pod_info(p) for p in self.store.list(PODS, None)[0]]
        target = spec.get("target") or {}
        if target.get("selector") is not None and not select_pods(
                selector_from_spec(target["selector"]), pods, default_namespace=namespace):
            return []  # every selector must select something (Chaos Mesh 2.2+), or nothing is
        matched = select_pods(selector_from_spec(spec.get("selector")), pods, default_namespace=namespace)
        mode, value = mode_from_spec(spec)
        return [p.ref for p in apply_mode(matched, mode, value, rng=self._rng)]

    def _record(self, pod: str, *, phase: str, events: list[dict[str, str]]) -> dict[str, Any]:
        return {"id": pod, "selectorKey": ".", "phase": phase, "events": events,
                "injectedCount": int(phase == "Injected"), "recoveredCount": 0}

    def _inject(self, res: Resource, obj: Obj, state: _State) -> None:
        name, spec = obj["metadata"]["name"], obj.get("spec") or {}
        assert state.selected is not None
        failure = next(((m, n) for pattern, m, n in self.failures if fnmatch.fnmatch(name, pattern)), None)
        state.attempts += 1
        message = failure[0] if failure and (failure[1] is None or state.attempts <= failure[1]) else None
        retry = message is not None
        sub = SUB_SPECS.get(spec.get("action", "")) if res is NETWORK_CHAOS else None
        if message is None and sub and not spec.get(sub):
            message = f"failed to apply for pod: {sub} is required for action {spec.get('action')}"
        if message is not None:
            state.failed = not retry
            state.events.append({"type": "Failed", "operation": "Apply", "message": message,
                                 "timestamp": now_rfc3339()})
            events = list(state.events)
            records = [self._record(p, phase="Not Injected", events=events) for p in state.selected]
            self._set_status(res, obj, conditions=_conditions(Selected=True, AllInjected=False,
                                                              AllRecovered=False, Paused=False),
                             records=records, phase="Run")
            if retry:
                state.retry_at = time.monotonic() + self.retry_delay
                key = (res, obj["metadata"]["namespace"], name)
                self._after(self.retry_delay, lambda: self._reconcile(*key))
            return
        if res is POD_CHAOS and spec.get("action") == "pod-kill":
            for ref in state.selected:
                self._kill(ref, ready=not self._leaves_unready(name))
        elif res is POD_CHAOS and spec.get("action") == "pod-failure":
            for ref in state.selected:
                self.store.set_pod_ready(*ref.split("/", 1), False)
        state.injected = True
        applied = {"type": "Succeeded", "operation": "Apply", "timestamp": now_rfc3339()}
        records = [self._record(p, phase="Injected", events=[*state.events, applied]) for p in state.selected]
        self._set_status(res, obj, conditions=_conditions(Selected=True, AllInjected=True,
                                                          AllRecovered=False, Paused=False),
                         records=records, phase="Run")
        if spec.get("duration") and not state.expiry_scheduled:
            state.expiry_scheduled = True
            key = (res, obj["metadata"]["namespace"], obj["metadata"]["name"])
            self._after(parse_go_duration(spec["duration"]), lambda: self._expire(state, key))

    def _expire(self, state: _State, key: tuple[Resource, str, str]) -> None:
        state.expired = True
        self._reconcile(*key)

    def _kill(self, ref: str, *, ready: bool = True) -> None:
        ns, pod = ref.split("/", 1)
        try:
            victim = self.store.get(PODS, ns, pod)
        except ApiError:
            return
        owners = [o["name"] for o in victim["metadata"].get("ownerReferences") or ()]
        if not ready:
            self._unready_owners.update((ns, o) for o in owners)
        try:
            self.store.delete(PODS, ns, pod)
        except ApiError:
            return
        if owners:
            return  # its Deployment replaces it
        stem = pod.rsplit("-", 1)[0] if "-" in pod else pod
        labels = victim["metadata"].get("labels") or {}
        replacement = f"{stem}-r{next(self._names):04d}"
        self._after(self.replacement_delay,
                    lambda: self.store.add_pod(ns, replacement, labels=labels, ready=ready))

    def _recover(self, res: Resource, obj: Obj, state: _State, *, paused: bool = False) -> None:
        recovered = {"type": "Succeeded", "operation": "Recover", "timestamp": now_rfc3339()}
        records = []
        for record in ((obj.get("status") or {}).get("experiment") or {}).get("containerRecords") or []:
            if record.get("phase") == "Injected":
                record = dict(record, phase="Not Injected", recoveredCount=1,
                              events=[*record.get("events", []), recovered])
            records.append(record)
        if state.injected and res is POD_CHAOS and (obj.get("spec") or {}).get("action") == "pod-failure":
            ready = not self._leaves_unready(obj["metadata"]["name"])
            for ref in state.selected or ():
                self.store.set_pod_ready(*ref.split("/", 1), ready, restart=True)
        state.injected = False
        self._set_status(res, obj, conditions=_conditions(Selected=True, AllInjected=False,
                                                          AllRecovered=True, Paused=paused),
                         records=records, phase="Stop")

    def _finish(self, res: Resource, obj: Obj, state: _State) -> None:
        meta = obj["metadata"]
        if state.injected:
            self._recover(res, obj, state)
        forced = (meta.get("annotations") or {}).get(FORCE_CLEAN_ANNOTATION) == "forced"
        if any(fnmatch.fnmatch(meta["name"], p) for p in self.stuck) and not forced:
            return

        def release(o: Obj) -> None:
            o["metadata"]["finalizers"] = [f for f in o["metadata"].get("finalizers") or []
                                           if f != RECORDS_FINALIZER]

        def release_now() -> None:
            self._mutate(res, meta["namespace"], meta["name"], release)

        if self.release_delay <= 0:
            release_now()
        elif not state.releasing:
            state.releasing = True
            self._after(self.release_delay, release_now)

    def _set_status(self, res: Resource, obj: Obj, *, conditions: list[dict[str, str]],
                    records: list[dict[str, Any]], phase: str, message: str | None = None) -> None:
        def change(o: Obj) -> None:
            status = {"conditions": conditions,
                      "experiment": {"desiredPhase": phase, "containerRecords": records}}
            if message:
                status["conditions"][0]["message"] = message
            o["status"] = status

        self._mutate(res, obj["metadata"]["namespace"], obj["metadata"]["name"], change)
