"""The sandbox supervisor: a detached daemon that owns Prometheus, the pods, their
proxies, the service addresses, the load generator and every fault.

``python -m chaoslab.sandbox.supervisor --state-dir DIR`` (started by
``chaoslab sandbox up``) reads its inputs from ``DIR/sandbox.json`` and keeps
``state.json``, ``endpoints.json`` and Prometheus' target files current. It
enforces every fault's duration itself, so faults end on time even when the
process that injected them is gone, and restarts Prometheus and the load generator
when they die, as a kubelet would. SIGTERM stops everything it started. When it
cannot start, it writes why to ``DIR/fatal.txt`` for ``chaoslab sandbox up`` to show.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import functools
import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from chaoslab.errors import ChaoslabError, PrometheusError
from chaoslab.sandbox import prometheus
from chaoslab.sandbox.chaos import FaultRegistry
from chaoslab.sandbox.config import SandboxConfig
from chaoslab.sandbox.control_server import ControlServer
from chaoslab.sandbox.endpoints import ENDPOINTS_FILE, write_endpoints
from chaoslab.sandbox.load import LOAD_ENV, LoadSpec
from chaoslab.sandbox.netfault import FaultTable
from chaoslab.sandbox.pods import PodSet
from chaoslab.sandbox.procs import become, free_port, record_pid, spawn_python, start_time
from chaoslab.sandbox.proxy import Address, Balancer, cancel_connections
from chaoslab.sandbox.shop import ENTRY_SERVICE, NAMESPACE
from chaoslab.sandbox.state import FATAL_FILE, INPUT_FILE, LOGS_DIR, STATE_FILE, write_json

logger = logging.getLogger(__name__)
T = TypeVar("T")

PROMETHEUS_DIR = "prometheus"
READY_TIMEOUT_S = 25.0
PUBLISH_EVERY_S = 0.1
PROMETHEUS_ATTEMPTS = 3
PROMETHEUS_READY_S = 15.0
PROMETHEUS_STABLE_S = 10.0  # a restarted Prometheus that lived this long resets the back-off
PROMETHEUS_BACKOFF_MAX_S = 30.0


class Supervisor:
    def __init__(self, *, state_dir: Path, config: SandboxConfig, rules: list[Path]) -> None:
        self.state_dir = state_dir
        self.config = config
        self.rules = rules
        self.specs = config.resolve()
        self.table = FaultTable()
        self.loop = asyncio.new_event_loop()
        self.pods = PodSet(state_dir=state_dir, specs=self.specs, restart_delay_s=config.restart_delay_s,
                           table=self.table, on_change=self._changed)
        self.registry = FaultRegistry(pods=self.pods, table=self.table)
        self.balancers: dict[str, Balancer] = {}
        self._cursor: dict[str, int] = {}
        self.control = ControlServer(self)
        self.prometheus: subprocess.Popen[bytes] | None = None
        self.prometheus_port = 0
        self.prometheus_restarts = 0
        self._prometheus_since = 0.0  # loop time of its last (re)start
        self._prometheus_failures = 0  # restarts in a row that died young
        self._prometheus_due: float | None = None  # loop time of the next restart
        self.loadgen: subprocess.Popen[bytes] | None = None
        self.phase = "starting"
        self.started_at = datetime.now(UTC)
        self._dirty = True

    # --- control API target -----------------------------------------------------

    def on_loop(self, fn: Callable[[], T]) -> T:
        future: concurrent.futures.Future[T] = concurrent.futures.Future()

        def run() -> None:
            try:
                future.set_result(fn())
            except BaseException as exc:  # handed to the waiting request thread
                future.set_exception(exc)

        self.loop.call_soon_threadsafe(run)
        return future.result(timeout=30)

    def pods_json(self) -> list[dict[str, Any]]:
        return [p.to_json() for p in self.pods.pods.values() if not p.terminating]

    def status_json(self) -> dict[str, Any]:
        pods = self.pods_json()
        services = [{
            "name": s.name, "namespace": NAMESPACE, "tier": s.tier.label,
            "endpoint": self._url(s.name), "replicas": s.replicas, "retries": s.retries,
            "timeout_s": s.timeout_s, "pods": [p for p in pods if p["service"] == s.name],
        } for s in self.specs]
        return {"prometheus_url": self.prometheus_url, "frontend_url": self._url(ENTRY_SERVICE),
                "control_url": self.control.url, "namespace": NAMESPACE, "phase": self.phase,
                "services": services, "faults": [r.to_json() for r in self.registry.list()]}

    # --- addresses ----------------------------------------------------------------

    @property
    def prometheus_url(self) -> str:
        return f"http://127.0.0.1:{self.prometheus_port}"

    def _url(self, service: str) -> str:
        balancer = self.balancers.get(service)
        return f"http://127.0.0.1:{balancer.port}" if balancer else ""

    def _pick(self, service: str) -> Address | None:
        ready = self.pods.ready_endpoints().get(service) or []
        if not ready:
            return None
        cursor = self._cursor.get(service, 0)
        self._cursor[service] = cursor + 1
        chosen = ready[cursor % len(ready)]
        return chosen.host, chosen.port

    # --- publishing -----------------------------------------------------------------

    def _changed(self) -> None:
        self._dirty = True

    def _publish(self) -> None:
        self._dirty = False
        write_endpoints(self.state_dir / ENDPOINTS_FILE, self.pods.ready_endpoints())
        targets = self.state_dir / PROMETHEUS_DIR / prometheus.TARGETS_DIR
        for spec in self.specs:
            live = [(p.name, p.direct) for p in self.pods.pods.values()
                    if p.spec.name == spec.name and not p.terminating]
            prometheus.write_targets(targets, service=spec.name, namespace=NAMESPACE, pods=live)
        write_json(self.state_dir / STATE_FILE, self._state_json())

    def _state_json(self) -> dict[str, Any]:
        pids = {"supervisor": os.getpid()}
        ports = [self.control.port, self.prometheus_port, *(b.port for b in self.balancers.values())]
        if self.prometheus is not None:
            pids["prometheus"] = self.prometheus.pid
        if self.loadgen is not None:
            pids["loadgen"] = self.loadgen.pid
        for pod in self.pods.pods.values():
            if pod.pid is not None:
                pids[pod.name] = pod.pid
            ports += [pod.proxy.port, pod.port]
        return {
            "version": 1, "phase": self.phase, "supervisor_pid": os.getpid(),
            "supervisor_start": start_time(os.getpid()), "control_url": self.control.url,
            "prometheus_url": self.prometheus_url, "frontend_url": self._url(ENTRY_SERVICE),
            "service_urls": {s.name: self._url(s.name) for s in self.specs}, "namespace": NAMESPACE,
            "pids": pids, "ports": sorted(p for p in ports if p),
            "config_path": str(self.config.source) if self.config.source else None,
            "rules": [str(r) for r in self.rules], "load_rps": self.config.load_rps,
            "started_at": self.started_at.isoformat(),
        }

    async def _keep_publishing(self) -> None:
        while True:
            if self._dirty:
                self._publish()
            self._watch_prometheus()
            if self.loadgen is not None and self.loadgen.poll() is not None and self.phase == "running":
                logger.warning("load generator exited with %s; restarting it", self.loadgen.returncode)
                self._start_loadgen()
            await asyncio.sleep(PUBLISH_EVERY_S)

    # --- children -----------------------------------------------------------------------

    def _launch_prometheus(self, port: int) -> subprocess.Popen[bytes]:
        proc = prometheus.launch(
            workdir=self.state_dir / PROMETHEUS_DIR, port=port, rules=self.rules,
            log_path=self.state_dir / LOGS_DIR / "prometheus.log", parent=os.getpid())
        record_pid(self.state_dir, pid=proc.pid, role="prometheus", name="prometheus")
        return proc

    def _start_prometheus(self) -> None:
        """Start Prometheus and wait until it serves, before anything else binds a port:
        the free port it was given could otherwise be taken by one of our own listeners."""
        for _ in range(PROMETHEUS_ATTEMPTS):
            port = free_port()
            proc = self._launch_prometheus(port)
            deadline = time.monotonic() + PROMETHEUS_READY_S
            while proc.poll() is None and time.monotonic() < deadline:
                if prometheus.is_ready(f"http://127.0.0.1:{port}"):
                    self.prometheus, self.prometheus_port = proc, port
                    return
                time.sleep(0.05)
            logger.warning("prometheus did not start on port %s (exit %s); retrying", port, proc.poll())
            if proc.poll() is None:
                proc.kill()
            proc.wait()
        raise PrometheusError(f"prometheus did not start; see {self.state_dir / LOGS_DIR / 'prometheus.log'}")

    def _watch_prometheus(self) -> None:
        """Restart a Prometheus that died, on the same port (its URL is published), with
        a back-off that doubles while it keeps dying young."""
        now = self.loop.time()
        if self.prometheus is not None and self.prometheus.poll() is not None:
            young = now - self._prometheus_since < PROMETHEUS_STABLE_S
            self._prometheus_failures = self._prometheus_failures + 1 if young else 0
            delay = min(2.0 ** self._prometheus_failures, PROMETHEUS_BACKOFF_MAX_S)
            logger.error("prometheus exited with %s; restarting it in %.0fs (see logs/prometheus.log)",
                         self.prometheus.returncode, delay)
            self.prometheus, self._prometheus_due = None, now + delay
            self._dirty = True
        if self.prometheus is None and self._prometheus_due is not None and now >= self._prometheus_due:
            self._prometheus_due = None
            try:
                self.prometheus = self._launch_prometheus(self.prometheus_port)
            except (OSError, PrometheusError) as exc:
                logger.error("cannot restart prometheus: %s", exc)
                self._prometheus_due = now + PROMETHEUS_BACKOFF_MAX_S
                return
            self.prometheus_restarts += 1
            self._prometheus_since = now
            self._dirty = True
            logger.info("prometheus restarted (pid %s, restart %s)", self.prometheus.pid,
                        self.prometheus_restarts)

    def _start_loadgen(self) -> None:
        if self.config.load_rps <= 0:
            return
        frontend = next(s for s in self.specs if s.name == ENTRY_SERVICE)
        spec = LoadSpec(state_dir=self.state_dir, rps=self.config.load_rps, service=ENTRY_SERVICE,
                        timeout_s=frontend.timeout_s, parent=os.getpid())
        self.loadgen = spawn_python("chaoslab.sandbox.load", title="shop-loadgen",
                                    log_path=self.state_dir / LOGS_DIR / "loadgen.log",
                                    env={LOAD_ENV: spec.to_json()})
        record_pid(self.state_dir, pid=self.loadgen.pid, role="loadgen", name="shop-loadgen")
        self._dirty = True

    # --- main -----------------------------------------------------------------------------

    def run(self) -> int:
        self._start_prometheus()  # first: see its docstring
        self.control.start()
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self._main())
        finally:
            self.loop.close()
        return 0

    async def _main(self) -> None:
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            self.loop.add_signal_handler(sig, stop.set)
        for spec in self.specs:
            balancer = Balancer(pick=functools.partial(self._pick, spec.name))
            await balancer.start()
            self.balancers[spec.name] = balancer
        await self.pods.start_all()
        tasks = [asyncio.create_task(self.pods.watch()), asyncio.create_task(self._keep_publishing())]
        deadline = self.loop.time() + READY_TIMEOUT_S
        while not self.pods.all_ready() and self.loop.time() < deadline and not stop.is_set():
            await asyncio.sleep(0.1)
        self._start_loadgen()
        self.phase = "running"
        self._dirty = True
        logger.info("sandbox running: prometheus %s, frontend %s",
                    self.prometheus_url, self._url(ENTRY_SERVICE))
        await stop.wait()
        self.phase = "stopping"
        self._publish()
        for task in tasks:
            task.cancel()
        self._shutdown()
        await cancel_connections()

    def _shutdown(self) -> None:
        self.registry.recover_all()
        if self.loadgen is not None:
            self.loadgen.terminate()
        self.pods.shutdown()
        for balancer in self.balancers.values():
            balancer.close()
        self.control.stop()
        for proc in (self.loadgen, self.prometheus):
            if proc is None:
                continue
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        logger.info("sandbox stopped")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="chaoslab-sandbox")
    parser.add_argument("--state-dir", required=True, type=Path)
    args = parser.parse_args(argv)
    become("chaoslab-sandbox", parent=None)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        inputs = json.loads((args.state_dir / INPUT_FILE).read_text(encoding="utf-8"))
        config = SandboxConfig.from_json(json.dumps(inputs["config"]))
        rules = [Path(r) for r in inputs.get("rules", [])]
        return Supervisor(state_dir=args.state_dir, config=config, rules=rules).run()
    except (ChaoslabError, OSError) as exc:
        # One line for `sandbox up` to show instead of a traceback.
        logger.error("the sandbox cannot start: %s", exc)
        write_json(args.state_dir / FATAL_FILE, {"error": str(exc)})
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
