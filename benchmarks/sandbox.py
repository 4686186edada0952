"""Sandbox figures: resource use at idle under load, and the payment pod-kill with and without the fix.

Prints, for the default shop and for experiments/sandbox-fixed.yaml:
- processes, RSS and CPU of every sandbox process over a 20 s window (load running);
- checkout requests the load generator saw fail in the 15 s after one payment pod is killed.

Run: .venv/bin/python benchmarks/sandbox.py   (about 90 s; needs /usr/bin/prometheus)
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from chaoslab.sandbox.backend import SandboxBackend  # noqa: E402
from chaoslab.sandbox.lifecycle import start_sandbox, stop_sandbox  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")
KILL_PAYMENT = {
    "apiVersion": "chaos-mesh.org/v1alpha1", "kind": "PodChaos",
    "metadata": {"name": "payment-kill", "namespace": "shop"},
    "spec": {"action": "pod-kill", "mode": "one", "selector": {"labelSelectors": {"app": "payment"}}},
}


def cpu_ticks(pid: int) -> int:
    raw = Path(f"/proc/{pid}/stat").read_text()
    fields = raw[raw.rindex(")") + 2:].split()
    return int(fields[11]) + int(fields[12])


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS"):
            return int(line.split()[1]) / 1024
    return 0.0


def resources(pids: dict[str, int], window: float = 20.0) -> None:
    before = {name: cpu_ticks(pid) for name, pid in pids.items()}
    time.sleep(window)
    total_cpu = total_rss = 0.0
    for name, pid in pids.items():
        cpu = (cpu_ticks(pid) - before[name]) / TICK / window * 100
        rss = rss_mib(pid)
        total_cpu += cpu
        total_rss += rss
        print(f"  {name:<22} cpu {cpu:5.1f}%   rss {rss:6.1f} MiB")
    print(f"  {'total':<22} cpu {total_cpu:5.1f}%   rss {total_rss:6.1f} MiB   processes {len(pids)}")


def load_counts(state_dir: Path) -> dict[str, int]:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            return dict(json.loads((state_dir / "load.json").read_text()))
        except (OSError, ValueError):
            time.sleep(0.5)
    return {"ok": 0, "failed": 0}


def payment_kill(state_dir: Path) -> None:
    backend = SandboxBackend(state_dir=state_dir)
    before = load_counts(state_dir)
    started = time.monotonic()
    handle = backend.apply_manifest(KILL_PAYMENT)
    backend.wait_injected(handle, timeout=10)
    time.sleep(15 + 5)  # the load generator writes its counts every 5 s
    after = load_counts(state_dir)
    backend.remove(handle, timeout=10)
    failed = after["failed"] - before["failed"]
    ok = after["ok"] - before["ok"]
    print(f"  payment pod-kill: {failed} of {failed + ok} checkouts failed "
          f"in the {time.monotonic() - started:.0f} s after the kill")


def run(label: str, config: Path | None) -> None:
    with tempfile.TemporaryDirectory(prefix="chaoslab-bench-") as tmp:
        state_dir = Path(tmp) / "state"
        started = time.monotonic()
        result = start_sandbox(state_dir=state_dir, config_path=config, rules=[])
        print(f"{label}: up in {time.monotonic() - started:.1f} s")
        try:
            resources(dict(result.state.pids))
            payment_kill(state_dir)
        finally:
            stop_sandbox(state_dir=state_dir)


if __name__ == "__main__":
    run("default shop (1 payment replica, no retry)", None)
    run("with experiments/sandbox-fixed.yaml (2 payment replicas, 2 retries)",
        REPO / "experiments" / "sandbox-fixed.yaml")
