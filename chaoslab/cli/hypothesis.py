"""`chaoslab hypothesis`: the steady-state hypothesis a service gets from alert rule files."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sized
from pathlib import Path
from typing import TYPE_CHECKING, Any

from chaoslab.cli import exitcodes

if TYPE_CHECKING:
    from chaoslab.model import AlertRule, Catalog, Service

HELP = "show the steady-state hypothesis a service gets from Prometheus alert rules"

DESCRIPTION = """Derive a service's steady-state hypothesis from Prometheus alert rules.

SLO conditions: an alert belongs to a service when the catalog lists it under the
service's `alerts` (explicit), when its labels have service/app/app_kubernetes_io_name
equal to the service's name (label), or when its expression holds an exact matcher
service="S", app="S" or job="S" (matcher). Each is judged by its condition, evaluated
now: one Chaos Toolkit probe per alert (chaoslab.prometheus.probes.alert_quiet), met only
while the alert is neither pending nor firing AND its condition is false; no data is
not met.

Guards: an alert bound to no catalog service whose severity is critical or page (the
catalog's or game day's `guards:` can change that) is global. Guards are judged by their
state in Prometheus only: firing halts, pending is recorded, no data is not firing;
their conditions are never evaluated. One probe checks them all
(chaoslab.prometheus.probes.guards_quiet), from one request. Alerts named under
`guards.ignore` never halt; when they fire, the run record lists them.

Alerts bound to no service with other severities (warning, info, none) are no halt
condition at all.

--format json prints exactly the Chaos Toolkit `steady-state-hypothesis` object;
--format yaml the same as YAML; --format table the SLO conditions and the guards, one
line per alert: the rule file, why it is bound, its `for:`, its severity and, for an SLO
condition, what is watched during a fault (a multi-window alert's fast legs)."""

EXAMPLES = """examples:
  chaoslab hypothesis --rules experiments/rules/shop-slo.yaml --service payment
  chaoslab hypothesis --rules experiments/rules/shop-slo.yaml --service payment --format json
  chaoslab hypothesis --rules team-a.yaml team-b.yaml --service cart --catalog experiments/catalog.yaml
"""

EXIT_CODES = """
exit codes:
  0  the hypothesis was printed
  2  bad input or usage: a malformed rule file or catalog, an unknown service, or no
     alert rule binds to the service (the error names the file and the field)
  3  a k8s:// rules address could not be read from the cluster
"""

_COLUMNS = ("alert", "bound", "for", "severity", "during a fault", "source")
_GUARD_COLUMNS = ("alert", "judged", "for", "severity", "source")


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "hypothesis",
        help=HELP,
        description=DESCRIPTION,
        epilog=EXAMPLES + EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--rules", metavar="FILE", nargs="+", required=True,
        help="Prometheus rule files or PrometheusRule manifests (YAML)",
    )  # fmt: skip
    parser.add_argument("--service", metavar="NAME", required=True, help="a service of the catalog")
    parser.add_argument(
        "--catalog", metavar="FILE",
        help="service catalog (default: catalog.yaml beside the first rule file or up to 2 parents)",
    )  # fmt: skip
    parser.add_argument(
        "--format", choices=("table", "json", "yaml"), default="table", help="output (default: table)"
    )
    parser.set_defaults(handler=run)


def _catalog(rules: list[str], flag: str | None) -> Catalog:
    from chaoslab.errors import InvalidInputError
    from chaoslab.loader import find_catalog, load_catalog

    path = Path(flag) if flag else find_catalog(rules[0])
    if path is None:
        raise InvalidInputError(
            rules[0], "", "no catalog.yaml beside this file or up to 2 parents; pass --catalog FILE"
        )
    return load_catalog(path)


def _service(catalog: Catalog, name: str) -> Service:
    from chaoslab.errors import InvalidInputError

    service = catalog.get(name)
    if service is None:
        known = ", ".join(s.name for s in catalog.services)
        raise InvalidInputError(catalog.source, "--service", f"unknown service {name!r} (known: {known})")
    return service


def _for(seconds: float) -> str:
    """``for:`` as Prometheus writes durations (``1m``, ``1h30m``), not as a sum of seconds."""
    millis = round(seconds * 1000)
    if millis == 0:
        return "0s"
    parts = []
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000), ("ms", 1)):
        count, millis = divmod(millis, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)


def _rows(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> list[str]:
    table = [header, *rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(header) - 1)]
    lines = []
    for row in table:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        lines.append("  ".join([*cells, row[-1]]).rstrip())
    return lines


def _count(items: Sized, noun: str) -> str:
    return f"{len(items)} {noun}" + ("" if len(items) == 1 else "s")


def _table(service: Service, rules: tuple[AlertRule, ...], catalog: Catalog) -> str:
    from chaoslab.prometheus.burnrate import analyse
    from chaoslab.prometheus.hypothesis import bind_alerts, binding_reason, severity

    bindings = bind_alerts(service, rules, catalog)
    slo = [b for b in bindings if not b.guard]
    guards = [b for b in bindings if b.guard]
    policy = catalog.guards
    lines = [f"service {service.name} ({service.tier.label}): {_count(bindings, 'alert')}", "",
             f"SLO conditions ({len(slo)}): judged by their condition, evaluated now; no data is not met"]
    lines += _rows(_COLUMNS, [(b.rule.name, b.reason, _for(b.rule.for_s), severity(b.rule) or "-",
                               _watched(analyse(b.rule)), b.rule.source) for b in slo])
    selected = ", ".join([f"severity {'|'.join(policy.severities)}", *(m.text for m in policy.matchers)])
    lines += ["", f"guards ({len(guards)}): bound to no service, {selected}; judged by their state in "
              "Prometheus: firing halts, pending is recorded, no data is not firing"]
    lines += _rows(_GUARD_COLUMNS, [
        (b.rule.name, "ignored" if policy.ignores(b.rule.name, b.rule.labels) else "state",
         _for(b.rule.for_s), severity(b.rule) or "-", b.rule.source) for b in guards])
    if policy.ignore:
        lines.append(f"ignore: {', '.join(e.text for e in policy.ignore)} (firing: recorded, never a halt)")
    bound = {(b.rule.name, b.rule.expr) for b in bindings}
    others = [r for r in rules if (r.name, r.expr) not in bound
              and all(binding_reason(r, s) is None for s in catalog.services)]
    if others:
        severities = ", ".join(sorted({r.labels.get("severity", "none") for r in others}))
        names = ", ".join(dict.fromkeys(r.name for r in others))
        lines += ["", f"not halt conditions: {_count(others, 'alert')} bound to no service and not "
                  f"guards (severity {severities}): {names}"]
    return "\n".join(lines)


def _watched(burn: Any) -> str:
    """What the watcher evaluates during a fault: a multi-window alert's fast legs, else all of it."""
    return "the whole alert" if burn is None else str(burn.describe())


def _yaml(data: Any) -> str:
    import yaml

    class Dumper(yaml.SafeDumper):
        """Multi-line PromQL as a literal block, as it is written in rule files."""

    def text(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|" if "\n" in value else None)

    Dumper.add_representer(str, text)
    return yaml.dump(data, Dumper=Dumper, sort_keys=False, width=120)


def run(args: argparse.Namespace) -> int:
    from chaoslab.app.rules import load_rules_from
    from chaoslab.prometheus.hypothesis import build_hypothesis, unknown_explicit_alerts

    rules = load_rules_from(args.rules)
    catalog = _catalog(args.rules, args.catalog)
    service = _service(catalog, args.service)
    # PlanError (exit 2) when nothing binds
    hypothesis = build_hypothesis(service, rules, catalog, sources=args.rules)
    for name in unknown_explicit_alerts(service, rules):
        print(
            f"chaoslab: warning: {service.name} lists alert {name!r}, which no rule file defines",
            file=sys.stderr,
        )
    if args.format == "json":
        print(json.dumps(hypothesis, indent=2))
    elif args.format == "yaml":
        print(_yaml(hypothesis), end="")
    else:
        print(_table(service, rules, catalog))
    return exitcodes.OK
