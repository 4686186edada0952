"""`chaoslab gate serve`: the SLO gate that Chaos Mesh StatusChecks call (HTTP status codes
from SLO alerts), until SIGTERM or SIGINT."""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path
from typing import Any

from chaoslab.cli import exitcodes
from chaoslab.errors import BackendError, InvalidInputError

HELP = "serve the SLO gate for Chaos Mesh StatusChecks (200 healthy, 503 breached)"

DESCRIPTION = """Serve the SLO gate: an HTTP endpoint that answers 200 while no halt condition
holds and 503 (with a JSON list of the breaches) when one does.

The halt conditions are the ones `chaoslab run` watches during a fault: every catalog
service's bound alerts and the global ones, each judged by its alert state and by its
expression right now. One background loop evaluates them every --interval and every
caller reads that result, so Prometheus sees the same load with one caller or a thousand.
Prometheus unreachable, erroring or slower than --timeout makes the gate answer 503.

  GET /gate                 200 or 503, for all services
  GET /gate?service=NAME    the conditions of a fault on NAME (unknown NAME: 400)
  GET /healthz              200 while the server runs
  GET /metrics              the gate's own metrics (evaluations, breaches, Prometheus errors)

`chaoslab export --to workflow --gate-url http://HOST:PORT/gate` points a Workflow at it."""

EXAMPLES = """examples:
  chaoslab gate serve --catalog experiments/catalog.yaml --rules experiments/rules/shop-slo.yaml \\
      --prometheus http://prometheus.monitoring:9090
  chaoslab gate serve --catalog catalog.yaml --rules k8s://monitoring/ --host 0.0.0.0 --port 8080 \\
      --prometheus http://prometheus.monitoring:9090 --interval 1

exit codes:
  0  stopped by SIGTERM or SIGINT
  2  bad input or usage (the error names the file and the field)
  3  cannot listen on HOST:PORT, or a k8s:// rules address could not be read
"""


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("gate", help=HELP, description=DESCRIPTION, epilog=EXAMPLES,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    actions = parser.add_subparsers(dest="gate_command", metavar="ACTION", required=True)
    serve = actions.add_parser("serve", help="serve /gate, /healthz and /metrics", description=DESCRIPTION,
                               epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    serve.add_argument("--catalog", metavar="FILE", required=True, help="service catalog")
    serve.add_argument("--rules", metavar="FILE", nargs="+", action="extend", required=True,
                       help="alert rule files or k8s://NAMESPACE[/NAME] PrometheusRule addresses")
    serve.add_argument("--prometheus", metavar="URL",
                       help="Prometheus base URL (default: CHAOSLAB_PROMETHEUS_URL)")
    serve.add_argument("--host", default="127.0.0.1",
                       help="address to listen on (default: 127.0.0.1; 0.0.0.0 in a pod)")
    serve.add_argument("--port", type=int, default=8080, help="port to listen on (default: 8080; 0: any)")
    serve.add_argument("--interval", type=float, metavar="SECONDS",
                       help="evaluate every SECONDS (default: the watcher's, CHAOSLAB_WATCH_INTERVAL_S)")
    serve.add_argument("--timeout", type=float, default=2.0, metavar="SECONDS",
                       help="bound on every Prometheus request (default: 2)")
    serve.add_argument("--context", metavar="CTX", help="Kubernetes context for k8s:// rules")
    serve.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from chaoslab.gate.server import GateServer

    client, evaluator, metrics = _evaluator(args)
    # Block the signals before any thread starts (threads inherit the mask), then wait for
    # them with sigwait: no handler runs at an arbitrary point of the main thread.
    stopping = {signal.SIGINT, signal.SIGTERM}
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, stopping)
    try:
        try:
            server = GateServer(evaluator, metrics, host=args.host, port=args.port)
        except OSError as exc:
            raise BackendError(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}") from exc
        evaluator.start()
        server.start()
        host, port = server.address
        print(f"chaoslab gate: listening on http://{host}:{port}/gate ({len(evaluator.conditions)} "
              f"conditions, {len(evaluator.services)} services, every {evaluator.interval:g}s)", flush=True)
        received = signal.sigwait(stopping)
        print(f"chaoslab gate: {signal.Signals(received).name} received, stopping", file=sys.stderr)
        server.close()
        evaluator.stop(wait=2 * args.timeout + 1)
        client.close()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)
    return exitcodes.OK


def _evaluator(args: argparse.Namespace) -> tuple[Any, Any, Any]:
    """(Prometheus client, evaluator, metrics) from the flags and settings; bad input raises."""
    from chaoslab.app.rules import load_rules_from
    from chaoslab.gate.evaluator import GateEvaluator
    from chaoslab.gate.server import CountingMetrics, GateMetrics
    from chaoslab.loader import load_catalog
    from chaoslab.prometheus.client import PrometheusClient
    from chaoslab.settings import load_settings

    settings = load_settings(overrides={"prometheus_url": args.prometheus, "kube_context": args.context})
    _check_numbers(args)
    if not settings.prometheus_url:
        raise InvalidInputError(None, "--prometheus", "no Prometheus URL: pass --prometheus URL or set "
                                "CHAOSLAB_PROMETHEUS_URL")
    catalog = load_catalog(Path(args.catalog))
    rules = load_rules_from(args.rules, context=settings.kube_context)
    if not rules:
        raise InvalidInputError(args.rules[0], "rules", "no alerting rule found")
    interval = args.interval or settings.watch_interval_s
    metrics = GateMetrics.create()
    client = PrometheusClient(settings.prometheus_url, token=settings.prometheus_token,
                              ca_bundle=settings.prometheus_ca_bundle, verify=settings.prometheus_verify_tls,
                              timeout=args.timeout)
    evaluator = GateEvaluator(CountingMetrics(client, metrics), catalog=catalog, rules=rules,
                              interval=interval, stale_after=interval + 2 * args.timeout + 1.0,
                              on_evaluation=metrics.observe)
    return client, evaluator, metrics


def _check_numbers(args: argparse.Namespace) -> None:
    if not 0 <= args.port <= 65535:
        raise InvalidInputError(None, "--port", f"{args.port} is not a port number (0-65535)")
    if args.interval is not None and not 0.05 <= args.interval <= 3600:
        raise InvalidInputError(None, "--interval", f"{args.interval:g} is not between 0.05 and 3600 seconds")
    if not 0.1 <= args.timeout <= 60:
        raise InvalidInputError(None, "--timeout", f"{args.timeout:g} is not between 0.1 and 60 seconds")
