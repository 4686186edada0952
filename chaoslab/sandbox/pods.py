"""The supervisor's pods: start, probe, kill, stop and replace them, like a kubelet and a ReplicaSet.

Each pod is an OS process named ``<service>-<5 hex>`` serving on a socket the
supervisor bound for it, reached through its own ``FaultProxy``, and calling
out from its own loopback address (``127.42.x.y``, its "pod IP"). A pod that
dies is replaced by a new pod with a new name after ``restartDelay``; a killed
container restarts in place (same pod, ``restarts + 1``).

Everything here runs on the supervisor's event loop thread. That matters: the
pods' parent-death signal fires when the *thread* that forked them ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import signal
import subprocess
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from chaoslab.chaosmesh.selection import PodInfo
from chaoslab.sandbox.endpoints import Endpoint
from chaoslab.sandbox.netfault import FaultTable, Peer
from chaoslab.sandbox.procs import listening_socket, record_pid, spawn_python
from chaoslab.sandbox.proxy import FaultProxy
from chaoslab.sandbox.service import POD_ENV, Downstream, PodSpec
from chaoslab.sandbox.shop import NAMESPACE, ServiceSpec

logger = logging.getLogger(__name__)

NODE = "sandbox"
PROBE_TIMEOUT_S = 0.5
PROBE_PERIOD_S = 1.0  # once ready; a starting pod is probed on every tick
FAILURE_THRESHOLD = 2
TICK_S = 0.2


class PodRuntime:
    """One pod and its process. Mutable: the supervisor updates it as things happen."""

    def __init__(self, *, name: str, spec: ServiceSpec, ip: str, proxy: FaultProxy) -> None:
        self.name = name
        self.spec = spec
        self.ip = ip
        self.proxy = proxy
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.restarts = 0
        self.ready = False
        self.ever_ready = False
        self.failures = 0
        self.stopped = False
        self.terminating = False
        self.restart_in_place = False
        self.next_probe = 0.0
        self.created_at = datetime.now(UTC)

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    @property
    def direct(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def phase(self) -> str:
        return "Running" if self.ever_ready and not self.terminating else "Pending"

    def info(self) -> PodInfo:
        return PodInfo(name=self.name, namespace=NAMESPACE, labels=self.spec.labels, phase=self.phase,
                       node=NODE, node_labels={"kubernetes.io/hostname": NODE})

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "service": self.spec.name, "namespace": NAMESPACE,
                "labels": self.spec.labels, "pid": self.pid, "ready": self.ready, "restarts": self.restarts,
                "phase": self.phase, "stopped": self.stopped, "ip": self.ip,
                "address": f"127.0.0.1:{self.proxy.port}", "metrics": self.direct,
                "created_at": self.created_at.isoformat()}


class PodSet:
    """Every pod of the shop, keyed by name."""

    def __init__(self, *, state_dir: Path, specs: tuple[ServiceSpec, ...], restart_delay_s: float,
                 table: FaultTable, on_change: Callable[[], None]) -> None:
        self.state_dir = state_dir
        self.specs = {s.name: s for s in specs}
        self.restart_delay_s = restart_delay_s
        self.table = table
        self.on_change = on_change
        self.pods: dict[str, PodRuntime] = {}
        self._ips: dict[str, str] = {}  # pod IP → pod name, for every pod ever started
        self._next_ip = 1
        self._pending: set[asyncio.TimerHandle] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self.closing = False

    # --- identity -------------------------------------------------------------

    def identify(self, ip: str, port: int) -> Peer:
        return Peer(ip, self._ips.get(ip), port)

    def _allocate_ip(self, name: str) -> str:
        n = self._next_ip
        self._next_ip += 1
        ip = f"127.42.{n // 250}.{n % 250 + 1}"
        self._ips[ip] = name
        return ip

    def _new_name(self, service: str) -> str:
        while True:
            name = f"{service}-{secrets.token_hex(3)[:5]}"
            if name not in self.pods and name not in self._ips.values():
                return name

    # --- lifecycle ------------------------------------------------------------

    async def spawn(self, service: str) -> PodRuntime:
        spec = self.specs[service]
        name = self._new_name(service)
        ip = self._allocate_ip(name)
        proxy = FaultProxy(pod=Peer(ip, name), upstream=None, table=self.table, identify=self.identify)
        await proxy.start()
        pod = PodRuntime(name=name, spec=spec, ip=ip, proxy=proxy)
        self.pods[name] = pod
        self._start_process(pod)
        logger.info("started pod %s (pid %s)", name, pod.pid)
        self.on_change()
        return pod

    def _start_process(self, pod: PodRuntime) -> None:
        sock = listening_socket()
        try:
            pod.port = sock.getsockname()[1]
            calls = tuple(Downstream(service=d.service, fallback=d.fallback,
                                     timeout_s=self.specs[d.service].timeout_s) for d in pod.spec.calls)
            spec = PodSpec(name=pod.name, service=pod.spec.name, ip=pod.ip, fd=sock.fileno(),
                           state_dir=self.state_dir, parent=os.getpid(), retries=pod.spec.retries,
                           calls=calls)
            pod.proc = spawn_python("chaoslab.sandbox.service", title=pod.name,
                                    log_path=self.state_dir / "logs" / "pods.log",
                                    env={POD_ENV: spec.to_json()}, pass_fds=(sock.fileno(),))
        finally:
            # Only the pod may hold its socket: once it dies, connections must be refused.
            sock.close()
        record_pid(self.state_dir, pid=pod.proc.pid, role="pod", name=pod.name)
        pod.proxy.upstream = ("127.0.0.1", pod.port)
        pod.ready = pod.ever_ready = pod.stopped = False
        pod.failures = 0
        pod.next_probe = 0.0

    def _send(self, pod: PodRuntime, sig: signal.Signals) -> None:
        if pod.proc is not None and pod.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                pod.proc.send_signal(sig)

    def kill(self, pod: PodRuntime, *, grace_s: float = 0.0) -> None:
        """pod-kill: the pod goes away and a new one replaces it after the restart delay."""
        pod.terminating = True
        pod.ready = False
        if grace_s > 0:
            self._send(pod, signal.SIGTERM)
            self._later(grace_s, lambda: self._send(pod, signal.SIGKILL))
        else:
            self._send(pod, signal.SIGKILL)
        self.on_change()

    def kill_container(self, pod: PodRuntime) -> None:
        """container-kill: the process dies and restarts in place."""
        pod.restart_in_place = True
        pod.ready = False
        self._send(pod, signal.SIGKILL)
        self.on_change()

    def stop(self, pod: PodRuntime) -> None:
        """pod-failure: the process is frozen and stops serving."""
        self._send(pod, signal.SIGSTOP)
        pod.stopped = True

    def cont(self, pod: PodRuntime) -> None:
        self._send(pod, signal.SIGCONT)
        pod.stopped = False

    def _later(self, delay: float, fn: Callable[[], object]) -> None:
        loop = asyncio.get_running_loop()

        def run() -> None:
            self._pending.discard(handle)
            fn()

        handle = loop.call_later(delay, run)
        self._pending.add(handle)

    def _exited(self, pod: PodRuntime) -> None:
        code = pod.proc.returncode if pod.proc else None
        if pod.restart_in_place and not pod.terminating and not self.closing:
            pod.restart_in_place = False
            pod.restarts += 1
            logger.info("container of %s exited (%s); restarting in place", pod.name, code)
            self._start_process(pod)
            self.on_change()
            return
        logger.info("pod %s exited (%s); a replacement starts in %.1fs", pod.name, code, self.restart_delay_s)
        pod.proxy.upstream = None
        pod.proxy.close()
        del self.pods[pod.name]
        if not self.closing:
            service = pod.spec.name
            self._later(self.restart_delay_s,
                        lambda: self._track(asyncio.ensure_future(self._replace(service))))
        self.on_change()

    def _track(self, task: asyncio.Task[None]) -> None:
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _replace(self, service: str) -> None:
        if not self.closing:
            await self.spawn(service)

    # --- watching -------------------------------------------------------------

    async def watch(self) -> None:
        """Reap exited pods and probe readiness, forever."""
        loop = asyncio.get_running_loop()
        while not self.closing:
            for pod in list(self.pods.values()):
                if pod.proc is not None and pod.proc.poll() is not None:
                    self._exited(pod)
            now = loop.time()
            probes = [self._probe(p) for p in self.pods.values()
                      if not p.terminating and now >= p.next_probe]
            if probes:
                await asyncio.gather(*probes)
            await asyncio.sleep(TICK_S)

    async def _probe(self, pod: PodRuntime) -> None:
        loop = asyncio.get_running_loop()
        pod.next_probe = loop.time() + (PROBE_PERIOD_S if pod.ever_ready else TICK_S)
        ok = await probe(pod.port)
        if pod.terminating or pod.name not in self.pods:
            return
        was = pod.ready
        if ok:
            pod.failures = 0
            pod.ready = pod.ever_ready = True
        else:
            pod.failures += 1
            if pod.failures >= FAILURE_THRESHOLD:
                pod.ready = False
        if pod.ready != was:
            logger.info("pod %s is %s", pod.name, "ready" if pod.ready else "not ready")
            self.on_change()

    # --- views ------------------------------------------------------------------

    def infos(self) -> list[PodInfo]:
        return [p.info() for p in self.pods.values() if not p.terminating]

    def ready_endpoints(self) -> dict[str, list[Endpoint]]:
        result: dict[str, list[Endpoint]] = {name: [] for name in self.specs}
        for pod in self.pods.values():
            if pod.ready and not pod.terminating:
                result[pod.spec.name].append(Endpoint(pod=pod.name, host="127.0.0.1", port=pod.proxy.port))
        return result

    def all_ready(self) -> bool:
        counts = {name: 0 for name in self.specs}
        for pod in self.pods.values():
            if pod.ready and not pod.terminating:
                counts[pod.spec.name] += 1
        return all(counts[n] >= s.replicas for n, s in self.specs.items())

    async def start_all(self) -> None:
        for spec in self.specs.values():
            for _ in range(spec.replicas):
                await self.spawn(spec.name)

    def shutdown(self, *, grace_s: float = 2.0) -> None:
        """Stop every pod: SIGCONT (a stopped pod cannot die gracefully), SIGTERM, then SIGKILL."""
        self.closing = True
        for handle in self._pending:
            handle.cancel()
        procs = [p.proc for p in self.pods.values() if p.proc is not None]
        for pod in self.pods.values():
            self._send(pod, signal.SIGCONT)
            self._send(pod, signal.SIGTERM)
            pod.proxy.close()
        for proc in procs:
            try:
                proc.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)


async def probe(port: int) -> bool:
    """GET /healthz on a pod's own port (not through its proxy)."""
    writer = None
    try:
        async with asyncio.timeout(PROBE_TIMEOUT_S):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET /healthz HTTP/1.0\r\n\r\n")
            response = await reader.read()  # to the end: a half-read reply breaks the pod's pipe
            return response.split(b" ", 2)[1:2] == [b"200"]
    except (OSError, TimeoutError, IndexError):
        return False
    finally:
        if writer is not None:
            writer.close()
