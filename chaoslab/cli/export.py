"""`chaoslab export`: an experiment or a game day step → Chaos Mesh YAML or a Chaos
Toolkit experiment (JSON), on stdout."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from chaoslab.errors import InvalidInputError, PlanError

if TYPE_CHECKING:
    from chaoslab.model import Catalog, Experiment, GameDay, Service, Step

logger = logging.getLogger(__name__)

HELP = "write Chaos Mesh YAML or a Chaos Toolkit experiment (JSON) to stdout"

DESCRIPTION = """Export an experiment or a game day for other tools.

--to chaos-mesh     the NetworkChaos/PodChaos objects as YAML; a game day gives one
                    document per planned step (named after the step), ready for
                    `kubectl apply -f -`. Objects carry chaoslab's labels and a duration.
--to chaostoolkit   a Chaos Toolkit experiment as JSON: inject, hold for the duration,
                    always remove. Run it with `chaos run exported.json`. A game day
                    needs --step NAME. When the experiment (spec.hypothesis.rules), the
                    game day (spec.rules) or --rules names alert rule files, the export
                    carries the steady-state hypothesis built from them.
--to workflow       a game day as one Chaos Mesh Workflow: stages in order, each watched by
                    a Continuous StatusCheck on `chaoslab gate serve` (--gate-url) that
                    aborts the Workflow at the first unhealthy answer, and a Synchronous
                    check of the gate before each stage.
--to schedule       that Workflow inside a Chaos Mesh Schedule (--cron), never two at once."""

EXAMPLES = """examples:
  chaoslab export --to chaos-mesh experiments/exp/payment-delay.yaml | kubectl apply -f -
  chaoslab export --to chaos-mesh experiments/gameday.yaml > gameday-faults.yaml
  chaoslab export --to chaostoolkit --prometheus http://prometheus.monitoring:9090 \\
      experiments/exp/payment-delay.yaml > payment-delay.json && chaos run payment-delay.json
  chaoslab export --to chaostoolkit --target sandbox experiments/exp/catalog-pod-kill.yaml
  chaoslab export --to chaostoolkit --step recommendation-delay experiments/gameday.yaml
  chaoslab export --to workflow --gate-url http://chaoslab-gate.chaoslab:8080/gate \
      experiments/gameday.yaml | kubectl apply -f -
  chaoslab export --to schedule --cron "0 9 * * 2" --gate-url http://chaoslab-gate.chaoslab:8080/gate \
      experiments/gameday.yaml

exit codes:
  0  written to stdout
  2  bad input or usage (the error names FILE:LINE and the field)
  3  a k8s:// rules address could not be read from the cluster
"""



def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "export", help=HELP, description=DESCRIPTION, epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("path", metavar="PATH", help="an Experiment or GameDay file (YAML or JSON)")
    parser.add_argument("--to", required=True, choices=("chaos-mesh", "chaostoolkit", "workflow", "schedule"),
                        help="output format")
    parser.add_argument("--catalog", metavar="FILE",
                        help="service catalog (default: catalog.yaml beside PATH or up to 2 parents)")
    parser.add_argument("--target", choices=("kubernetes", "sandbox"), default="kubernetes",
                        help="where `chaos run` injects the fault (chaostoolkit only; default: kubernetes)")
    parser.add_argument("--prometheus", metavar="URL",
                        help="Prometheus base URL written into the experiment's configuration "
                             "(default with --target sandbox: the running sandbox's; else read from "
                             "CHAOSLAB_PROMETHEUS_URL when the experiment runs)")
    parser.add_argument("--rules", metavar="FILE", action="append", default=[],
                        help="alert rule file (or k8s://NAMESPACE[/NAME]) for the steady-state "
                             "hypothesis (repeatable)")
    parser.add_argument("--step", metavar="NAME",
                        help="export only this game day step (chaostoolkit: needed when there are several)")
    parser.add_argument("--gate-url", metavar="URL",
                        help="workflow/schedule: the URL of `chaoslab gate serve`'s /gate that the "
                             "StatusChecks call (required for them)")
    parser.add_argument("--cron", metavar="EXPR",
                        help="schedule: when to start the Workflow, e.g. '0 9 * * 2' or @weekly (required)")
    parser.add_argument("--namespace", metavar="NS",
                        help="workflow/schedule: the object's namespace (default: the services' own)")
    parser.set_defaults(handler=run)


@dataclass(frozen=True, slots=True, kw_only=True)
class _Unit:
    """One exportable fault: an experiment (ramp applied) on a service, under a name."""

    name: str
    experiment: Experiment
    service: Service
    step: str | None
    rules: tuple[str | Path, ...]


def run(args: argparse.Namespace) -> int:
    path = Path(args.path)
    if args.to in ("workflow", "schedule"):
        sys.stdout.write(_workflow_yaml(path, args))
        return 0
    catalog, units = _load_units(path, catalog_flag=args.catalog, step=args.step,
                                 need_one=args.to == "chaostoolkit")
    if args.to == "chaos-mesh":
        sys.stdout.write(_chaos_mesh_yaml(units))
        return 0
    unit = units[0]
    rules = (*unit.rules, *args.rules)
    hypothesis = _hypothesis(unit.service, rules, catalog) if rules else None
    prometheus_url = args.prometheus
    if prometheus_url is None and args.target == "sandbox" and hypothesis is not None:
        prometheus_url = _sandbox_prometheus_url()
    from chaoslab.ctk import build_ctk_experiment

    doc = build_ctk_experiment(
        experiment=unit.experiment, service=unit.service, target=args.target,
        prometheus_url=prometheus_url, hypothesis=hypothesis, step_name=unit.step,
    )
    sys.stdout.write(json.dumps(doc, indent=2) + "\n")
    return 0


def _load_units(
    path: Path, *, catalog_flag: str | None, step: str | None, need_one: bool
) -> tuple[Catalog | None, list[_Unit]]:
    from chaoslab.app.subject import load_subject
    from chaoslab.model import GameDay
    from chaoslab.scope import resolve_service

    subject = load_subject(path, catalog=catalog_flag, refusal="holds no fault to export")
    doc = subject.loaded
    if isinstance(doc, GameDay):
        return doc.catalog, _gameday_units(path, doc, step=step, need_one=need_one)
    if step is not None:
        raise InvalidInputError(path, "--step", "only a game day has steps; this file is an Experiment")
    unit = _Unit(name=doc.name, experiment=doc, service=resolve_service(doc, subject.catalog), step=None,
                 rules=tuple(doc.rules))
    return subject.catalog, [unit]


def _gameday_units(path: Path, gameday: GameDay, *, step: str | None, need_one: bool) -> list[_Unit]:
    from chaoslab.plan import build_plan

    steps = build_plan(gameday).steps
    names = ", ".join(s.name for s in steps) or "<none>"
    if step is None and need_one and len(steps) != 1:
        raise InvalidInputError(path, "--step", f"a game day has {len(steps)} steps; choose one of: {names}")
    if step is not None:
        chosen = [s for s in steps if s.name == step]
        if not chosen:
            raise InvalidInputError(path, "--step", f"no step named {step!r}; choose one of: {names}")
        steps = tuple(chosen)
    runnable = [s for s in steps if _runnable(path, s, explicit=step is not None)]
    if not runnable:
        raise PlanError(f"{path}: every step of game day {gameday.name} is refused by its safety rules")
    return [_Unit(name=s.name, experiment=s.experiment, service=s.service, step=s.name,
                  rules=(*gameday.rules, *s.experiment.rules)) for s in runnable]


def _runnable(path: Path, step: Step, *, explicit: bool) -> bool:
    if step.refusal is None:
        return True
    if explicit:
        raise InvalidInputError(path, "--step", f"step {step.name} is refused: {step.refusal}")
    # Never hand out a manifest that the game day's own safety rules forbid.
    print(f"chaoslab: skipping step {step.name}: {step.refusal}", file=sys.stderr)
    return False


def _chaos_mesh_yaml(units: list[_Unit]) -> str:
    import yaml

    from chaoslab.chaosmesh.manifest import build_manifest

    manifests = [
        build_manifest(name=u.name, service=u.service, fault=u.experiment.fault,
                       experiment=u.experiment.name, step=u.step)
        for u in units
    ]
    return str(yaml.safe_dump_all(manifests, sort_keys=False, explicit_start=len(manifests) > 1))


def _workflow_yaml(path: Path, args: argparse.Namespace) -> str:
    import yaml

    from chaoslab.chaosmesh.workflow import GateCheck, build_schedule, build_workflow
    from chaoslab.loader import find_catalog, load_any
    from chaoslab.model import GameDay, Gate
    from chaoslab.plan import build_plan

    _check_workflow_flags(path, args)
    doc = load_any(path, catalog_path=Path(args.catalog) if args.catalog else find_catalog(path))
    if not isinstance(doc, GameDay):
        raise InvalidInputError(path, "kind", f"--to {args.to} needs a GameDay, not a {type(doc).__name__}")
    plan = build_plan(doc)
    for step in plan.steps:
        if step.refusal is not None:
            print(f"chaoslab: skipping step {step.name}: {step.refusal}", file=sys.stderr)
    if doc.gate is Gate.CONTINUE:
        print("chaoslab: warning: gate: continue cannot be expressed: the Workflow aborts at the "
              "first unhealthy answer of the gate", file=sys.stderr)
    gate = GateCheck(url=args.gate_url)
    if args.to == "schedule":
        obj = build_schedule(plan, gate=gate, cron=args.cron, namespace=args.namespace)
    else:
        obj = build_workflow(plan, gate=gate, namespace=args.namespace)
    return str(yaml.safe_dump(obj, sort_keys=False))


def _check_workflow_flags(path: Path, args: argparse.Namespace) -> None:
    """--gate-url (and --cron for a schedule) present and well-formed, errors naming PATH."""
    from chaoslab.chaosmesh.workflow import check_cron, check_gate_url, dns_label

    if not args.gate_url:
        raise InvalidInputError(path, "--gate-url", f"--to {args.to} needs --gate-url URL "
                                "(the /gate of `chaoslab gate serve`)")
    if args.to == "schedule" and not args.cron:
        raise InvalidInputError(path, "--cron", "--to schedule needs --cron EXPR, e.g. '0 9 * * 2'")
    try:
        check_gate_url(args.gate_url)
        if args.to == "schedule":
            check_cron(args.cron)
    except InvalidInputError as exc:  # name the game day being exported
        raise InvalidInputError(path, exc.field, exc.reason) from exc
    if args.namespace is not None and dns_label(args.namespace) != args.namespace:
        raise InvalidInputError(path, "--namespace",
                                f"{args.namespace!r} is not a namespace name (a DNS-1123 label)")
    if args.step is not None:
        raise InvalidInputError(path, "--step", f"--to {args.to} exports the whole game day")


def _hypothesis(service: Service, rules: tuple[str | Path, ...], catalog: Catalog | None) -> dict[str, Any]:
    from chaoslab.app.rules import load_rules_from
    from chaoslab.prometheus.hypothesis import build_hypothesis

    return build_hypothesis(service, load_rules_from(rules), catalog, sources=rules)


def _sandbox_prometheus_url() -> str | None:
    """The running sandbox's Prometheus, or None (with a warning) when none runs: an export
    is a conversion and must not depend on it; the experiment then reads the URL from
    CHAOSLAB_PROMETHEUS_URL at run time."""
    try:
        from chaoslab.sandbox.state import load_state

        state = load_state()
    except ModuleNotFoundError:  # a build without the sandbox has none running either
        state = None
    if state is None:
        from chaoslab.app.execution import NO_SANDBOX

        print(f"chaoslab: warning: {NO_SANDBOX}; the experiment reads the Prometheus URL from "
              "CHAOSLAB_PROMETHEUS_URL when it runs (or pass --prometheus URL)", file=sys.stderr)
        return None
    return str(state.prometheus_url)
