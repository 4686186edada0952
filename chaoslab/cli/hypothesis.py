"""`chaoslab hypothesis`: the steady-state hypothesis a service gets from alert rule files."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from chaoslab.cli import exitcodes

if TYPE_CHECKING:
    from chaoslab.model import AlertRule, Catalog, Service

HELP = "show the steady-state hypothesis a service gets from Prometheus alert rules"

DESCRIPTION = """Derive a service's steady-state hypothesis from Prometheus alert rules.

An alert belongs to a service when the catalog lists it under the service's `alerts`
(explicit), when its labels have service/app/app_kubernetes_io_name equal to the
service's name (label), or when its expression holds an exact matcher service="S",
app="S" or job="S" (matcher). A critical or paging alert bound to no catalog
service is global: it is part of every service's hypothesis.

Each bound alert becomes one Chaos Toolkit probe (chaoslab.prometheus.probes.alert_quiet):
met only while the alert is neither pending nor firing AND its condition is false now.

Sloth's sloth_service and Pyrra's slo/job labels and matchers bind the same way, also
on the recording rules an alert reads; a generator's sloth_severity counts as severity.

A multi-window burn-rate alert (an `or` of `and`s of ratio legs over windows) is watched
during a fault through the shortest-window leg of each `and`, at that leg's threshold;
the baseline checks the whole alert and those legs, the recovery the whole alert (see
docs/hypotheses.md).

--format json prints exactly the Chaos Toolkit `steady-state-hypothesis` object;
--format yaml the same as YAML; --format table one line per alert: the rule file,
why it is bound, its `for:`, its severity and what is watched during a fault."""

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


def _table(service: Service, rules: tuple[AlertRule, ...], catalog: Catalog) -> str:
    from chaoslab.prometheus.burnrate import analyse
    from chaoslab.prometheus.hypothesis import bind_alerts, severity

    bindings = bind_alerts(service, rules, catalog)
    rows = [_COLUMNS]
    for binding in bindings:
        rule = binding.rule
        burn = analyse(rule)
        rows.append(
            (
                rule.name,
                binding.reason,
                _for(rule.for_s),
                severity(rule) or "-",
                burn.describe() if burn is not None else "the whole alert",
                rule.source,
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(_COLUMNS) - 1)]
    noun = "alert" if len(bindings) == 1 else "alerts"
    lines = [f"service {service.name} ({service.tier.label}): {len(bindings)} {noun}"]
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        lines.append("  ".join([*cells, row[-1]]).rstrip())
    return "\n".join(lines)


def _yaml(data: Any) -> str:
    import yaml

    class Dumper(yaml.SafeDumper):
        """Multi-line PromQL as a literal block, as it is written in rule files."""

    def text(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|" if "\n" in value else None)

    Dumper.add_representer(str, text)
    return yaml.dump(data, Dumper=Dumper, sort_keys=False, width=120)


def run(args: argparse.Namespace) -> int:
    from chaoslab.cli.cluster_rules import load_rules_from
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
