"""The supervisor's chaos controller: fault objects, their injection, duration and recovery.

It behaves like the Chaos Mesh controller: targets are selected once, with the
shared selector and mode semantics; a fault recovers by itself when its
duration ends (enforced here, even if the caller died) but the object stays
until it is deleted; pause recovers the fault and keeps the object.
"""

from __future__ import annotations

import asyncio
import logging
import random
import socket
from datetime import UTC, datetime, timedelta
from typing import Any

from chaoslab.chaosmesh.selection import apply_mode, running, select_pods
from chaoslab.model import NetworkChaos, PodAction, PodChaos
from chaoslab.sandbox.manifest import ChaosObject, parse_manifest
from chaoslab.sandbox.netfault import FaultTable, NetworkFaultRuntime, parse_external_targets
from chaoslab.sandbox.pods import PodSet

logger = logging.getLogger(__name__)


class ConflictError(Exception):
    """A fault object of that kind and name already exists in that namespace."""


def fault_key(kind: str, namespace: str, name: str) -> str:
    return f"{kind.lower()}/{namespace}/{name}"


class FaultRecord:
    """One fault object. Mutable: its phase moves as the controller acts."""

    def __init__(self, obj: ChaosObject, manifest: dict[str, Any]) -> None:
        self.obj = obj
        self.manifest = manifest
        self.key = fault_key(obj.kind.value, obj.namespace, obj.name)
        self.created_at = datetime.now(UTC)
        self.until = None if obj.duration_s is None else self.created_at + timedelta(seconds=obj.duration_s)
        self.phase = "pending"  # pending | injected | paused | recovered | not-selected
        self.pods: list[str] = []
        self.targets: list[str] | None = None
        self.runtime: NetworkFaultRuntime | None = None
        self.timer: asyncio.TimerHandle | None = None
        self.message = ""

    @property
    def injected(self) -> bool:
        return self.phase in ("injected", "paused", "recovered")

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.obj.kind.value, "name": self.obj.name, "namespace": self.obj.namespace,
            "labels": dict(self.obj.labels), "experiment": self.obj.experiment, "run_id": self.obj.run_id,
            "action": self.obj.fault.action.value, "pods": list(self.pods), "targets": self.targets,
            "phase": self.phase, "injected": self.injected, "message": self.message,
            "created_at": self.created_at.isoformat(),
            "until": self.until.isoformat() if self.until else None,
            "stats": dict(self.runtime.stats) if self.runtime else {},
            "manifest": self.manifest,
        }


class FaultRegistry:
    def __init__(self, *, pods: PodSet, table: FaultTable, rng: random.Random | None = None) -> None:
        self.pods = pods
        self.table = table
        self.records: dict[str, FaultRecord] = {}
        self.rng = rng or random.Random()

    def create(self, manifest: dict[str, Any]) -> FaultRecord:
        """Parse, select targets once and inject. ``InvalidInputError`` or ``ConflictError``."""
        obj = parse_manifest(manifest)
        rec = FaultRecord(obj, manifest)
        if rec.key in self.records:
            raise ConflictError(f"{rec.key} already exists")
        self.records[rec.key] = rec
        matched = self._match(obj.selector, obj.namespace)
        chosen = apply_mode(matched, obj.fault.mode, obj.fault.value, rng=self.rng)
        rec.pods = [p.name for p in chosen]
        if not chosen:
            # Chaos Mesh leaves such an object Selected=False and never retries it.
            rec.phase = "not-selected"
            rec.message = (f"mode {obj.fault.mode.value} {obj.fault.value or ''} selected none of the "
                           f"{len(matched)} matching pods" if matched
                           else "no running pod matched the selector")
            logger.warning("%s selected no pod: %s", rec.key, rec.message)
            return rec
        if isinstance(obj.fault, NetworkChaos):
            self._inject_network(rec, obj.fault)
        else:
            self._inject_pod(rec, obj.fault)
        if obj.duration_s is not None:
            loop = asyncio.get_running_loop()
            rec.timer = loop.call_later(obj.duration_s, self._expire, rec.key)
        logger.info("%s injected into %s", rec.key, ", ".join(rec.pods))
        return rec

    def _match(self, selector: Any, namespace: str) -> list[Any]:
        return select_pods(selector, running(self.pods.infos()), default_namespace=namespace)

    def _select(self, selector: Any, mode: Any, value: str | None, namespace: str) -> list[Any]:
        return apply_mode(self._match(selector, namespace), mode, value, rng=self.rng)

    def _inject_network(self, rec: FaultRecord, fault: NetworkChaos) -> None:
        targets = None
        if fault.target is not None:
            target = fault.target
            chosen = self._select(target.selector, target.mode, target.value, rec.obj.namespace)
            targets = rec.targets = [p.name for p in chosen]
        externals = parse_external_targets(fault.external_targets, resolve=_resolve)
        rec.runtime = NetworkFaultRuntime(key=rec.key, fault=fault, selected=rec.pods, targets=targets,
                                          externals=externals, seed=self.rng.randrange(2**32))
        self.table.add(rec.runtime)
        rec.phase = "injected"

    def _inject_pod(self, rec: FaultRecord, fault: PodChaos) -> None:
        for name in rec.pods:
            pod = self.pods.pods.get(name)
            if pod is None:
                continue
            if fault.action is PodAction.POD_KILL:
                self.pods.kill(pod, grace_s=float(fault.grace_period or 0))
            elif fault.action is PodAction.CONTAINER_KILL:
                self.pods.kill_container(pod)
            else:
                self.pods.stop(pod)
        rec.phase = "injected"

    def _recover(self, rec: FaultRecord) -> None:
        """Undo what can be undone: network faults end, frozen pods resume."""
        if rec.runtime is not None:
            self.table.discard(rec.key)
        fault = rec.obj.fault
        if isinstance(fault, PodChaos) and fault.action is PodAction.POD_FAILURE:
            for name in rec.pods:
                pod = self.pods.pods.get(name)
                if pod is not None and pod.stopped:
                    self.pods.cont(pod)

    def _expire(self, key: str) -> None:
        rec = self.records.get(key)
        if rec is None or rec.phase in ("recovered", "not-selected"):
            return
        self._recover(rec)
        rec.phase = "recovered"
        rec.timer = None
        logger.info("%s recovered: its duration ended", key)

    def get(self, key: str) -> FaultRecord | None:
        return self.records.get(key)

    def pause(self, key: str) -> FaultRecord | None:
        rec = self.records.get(key)
        if rec is not None and rec.phase == "injected":
            if rec.runtime is not None:
                rec.runtime.paused = True
            else:
                self._recover(rec)  # frozen pods resume; a kill cannot be undone
            rec.phase = "paused"
        return rec

    def resume(self, key: str) -> FaultRecord | None:
        rec = self.records.get(key)
        if rec is None or rec.phase != "paused":
            return rec
        if rec.until is not None and datetime.now(UTC) >= rec.until:
            # The duration counts from creation, paused or not (Chaos Mesh does the same).
            self._expire(key)
            return rec
        if rec.runtime is not None:
            rec.runtime.paused = False
        elif rec.obj.fault.action is PodAction.POD_FAILURE:
            for name in rec.pods:
                pod = self.pods.pods.get(name)
                if pod is not None:
                    self.pods.stop(pod)
        rec.phase = "injected"
        return rec

    def delete(self, key: str) -> bool:
        rec = self.records.pop(key, None)
        if rec is None:
            return False
        if rec.timer is not None:
            rec.timer.cancel()
        self._recover(rec)
        logger.info("%s deleted", key)
        return True

    def recover_all(self) -> None:
        for key in list(self.records):
            self.delete(key)

    def list(self) -> list[FaultRecord]:
        return sorted(self.records.values(), key=lambda r: r.created_at)


def _resolve(host: str) -> list[str]:
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except OSError:
        logger.warning("external target %s does not resolve; ignored", host)
        return []
    return sorted({str(info[4][0]) for info in infos})
