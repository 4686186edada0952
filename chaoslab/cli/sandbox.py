"""``chaoslab sandbox up|status|down``: the local shop with real faults and a real Prometheus."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from chaoslab.cli import exitcodes

DESCRIPTION = """Run the sample shop locally: five services as real processes under load, a
userspace fault proxy in front of every pod, and a real Prometheus evaluating
the SLO rules. `chaoslab run --target sandbox` injects faults into it."""

EXAMPLES = """examples:
  chaoslab sandbox up
  chaoslab sandbox up --config experiments/sandbox-fixed.yaml
  chaoslab sandbox status --format json
  chaoslab sandbox down

`up` returns once Prometheus is ready and every pod is an up target (≤ 30 s).
A second `up` while one runs reports it and exits 0. `down` stops every
process the sandbox started, by pid, even after an unclean stop.
"""


def register(subparsers: Any) -> None:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--state-dir", type=Path, default=None, metavar="DIR",
                        help="state directory (default: $CHAOSLAB_SANDBOX_DIR, "
                             "$XDG_RUNTIME_DIR/chaoslab-sandbox or /tmp/chaoslab-sandbox-<uid>)")
    parser = subparsers.add_parser("sandbox", help="run the local shop sandbox (up, status, down)",
                                   description=DESCRIPTION, epilog=EXAMPLES,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    actions = parser.add_subparsers(dest="sandbox_action", metavar="ACTION", required=True)
    up = actions.add_parser("up", parents=[common], help="start the sandbox, detached",
                            description="Start the shop, Prometheus and the load generator, detached.")
    up.add_argument("--config", type=Path, metavar="FILE",
                    help="a kind: Sandbox file (e.g. experiments/sandbox-fixed.yaml)")
    up.add_argument("--rules", type=Path, action="append", metavar="FILE",
                    help="Prometheus rule file, repeatable "
                         "(default: experiments/rules/shop-slo.yaml if present)")
    up.set_defaults(handler=_up)
    status = actions.add_parser("status", parents=[common], help="services, pods and faults")
    status.add_argument("--format", choices=("table", "json"), default="table")
    status.set_defaults(handler=_status)
    down = actions.add_parser("down", parents=[common], help="stop every process the sandbox started")
    down.set_defaults(handler=_down)


def _up(args: argparse.Namespace) -> int:
    from chaoslab.sandbox.lifecycle import start_sandbox

    result = start_sandbox(state_dir=args.state_dir, config_path=args.config, rules=args.rules)
    state = result.state
    if result.already_running:
        print(f"a sandbox is already running in {state.state_dir} (stop it with `chaoslab sandbox down`)")
        running_with = state.config_path
        if args.config and (running_with is None or Path(running_with) != args.config.resolve()):
            print(f"  note: it runs with {state.config_path or 'the default shop'}, not {args.config}")
    else:
        print(f"sandbox up: {len(state.pids)} processes, state in {state.state_dir}")
        if not state.rules:
            print("  note: no SLO rule file (experiments/rules/shop-slo.yaml not found): "
                  "Prometheus evaluates no alerts")
    print(f"  prometheus: {state.prometheus_url}")
    print(f"  frontend:   {state.frontend_url}")
    return exitcodes.OK


def public_status(raw: dict[str, Any]) -> dict[str, Any]:
    """The documented JSON shape of `sandbox status`."""
    return {
        "prometheus_url": raw["prometheus_url"],
        "services": [{
            "name": s["name"], "namespace": s["namespace"], "tier": s["tier"], "endpoint": s["endpoint"],
            "pods": [{"name": p["name"], "labels": p["labels"], "pid": p["pid"], "ready": p["ready"],
                      "restarts": p["restarts"]} for p in s["pods"]],
        } for s in raw["services"]],
        "faults": [{"experiment": f["experiment"], "kind": f["kind"], "action": f["action"],
                    "pods": f["pods"], "until": f["until"]} for f in raw["faults"]],
    }


def _status(args: argparse.Namespace) -> int:
    from chaoslab.sandbox.backend import SandboxBackend

    backend = SandboxBackend(state_dir=args.state_dir)
    status = public_status(backend.status())
    if args.format == "json":
        print(json.dumps(status, indent=2))
        return exitcodes.OK
    print(f"prometheus {status['prometheus_url']}   frontend {backend.state.frontend_url}")
    print(f"{'SERVICE':<16}{'TIER':<10}{'POD':<22}{'PID':>8}  {'READY':<6}{'RESTARTS':>8}")
    for service in status["services"]:
        for pod in service["pods"] or [{"name": "-", "pid": "", "ready": False, "restarts": ""}]:
            print(f"{service['name']:<16}{service['tier']:<10}{pod['name']:<22}{pod['pid']!s:>8}  "
                  f"{'yes' if pod['ready'] else 'no':<6}{pod['restarts']!s:>8}")
    for fault in status["faults"]:
        print(f"fault {fault['kind']} {fault['action']} ({fault['experiment']}) on "
              f"{', '.join(fault['pods']) or 'no pod'} until {fault['until'] or '-'}")
    return exitcodes.OK


def _down(args: argparse.Namespace) -> int:
    from chaoslab.sandbox.lifecycle import stop_sandbox

    result = stop_sandbox(state_dir=args.state_dir)
    if result.was_running:
        print(f"sandbox down: stopped {len(result.stopped)} processes ({result.state_dir})")
    elif result.stale:
        print(f"the sandbox in {result.state_dir} had stopped uncleanly: "
              f"stopped {len(result.stopped)} leftover processes and removed its state")
    else:
        print(f"no sandbox running in {result.state_dir}")
    return exitcodes.OK
