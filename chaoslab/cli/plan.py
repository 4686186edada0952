"""`chaoslab plan`: the stages and steps a game day (or one experiment) would run."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from chaoslab.cli import exitcodes

if TYPE_CHECKING:
    from chaoslab.model import Plan

HELP = "show the ordered stages and steps of a game day, with safety refusals"

DESCRIPTION = """Plan a game day without touching anything: stages in tier order (non-core
first, then core), steps in the order of spec.experiments and then the matrix
(<service>-<fault>), each experiment widened by the blastRadius ramp
(<name>-r1, <name>-r2, ...). Steps that the game day's safety rules refuse
(allowNamespaces, maxPercent, kube-system) are listed with the reason; a run
skips them. A single Experiment gives a one-step plan.

--format json prints {"gameday", "stages": [{"tier", "steps": [{"experiment",
"service", "namespace", "kind", "action", "mode", "value", "duration", "step",
"level", "refused"}]}]}."""

EXAMPLES = """examples:
  chaoslab plan experiments/gameday.yaml
  chaoslab plan --format json experiments/gameday.yaml | jq '.stages[].steps[].step'
  chaoslab plan experiments/exp/payment-pod-kill.yaml
"""

EXIT_CODES = """
exit codes:
  0  planned (refused steps are listed, not an error)
  2  bad input or usage (the error names FILE:LINE and the field)
"""

_COLUMNS = ("stage", "#", "step", "service", "fault", "mode", "duration", "refused")


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "plan", help=HELP, description=DESCRIPTION, epilog=EXAMPLES + EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("path", metavar="GAMEDAY", help="a GameDay (or a single Experiment) file")
    parser.add_argument("--format", choices=("table", "json"), default="table",
                        help="output (default: table)")
    parser.add_argument("--catalog", metavar="FILE",
                        help="service catalog (default: the game day's spec.catalog, else catalog.yaml "
                             "beside the file or up to 2 parents)")
    parser.set_defaults(handler=run)


def _load_plan(path: Path, catalog_flag: str | None) -> Plan:
    from chaoslab.app.subject import load_plan

    return load_plan(path, catalog=catalog_flag)


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" + ("" if number == 1 else "s")


def _table(plan: Plan) -> str:
    from chaoslab.plan import window_allows

    gameday = plan.gameday
    steps = plan.steps
    refused = sum(1 for s in steps if s.refusal)
    _, window = window_allows(gameday.window, datetime.now(UTC))
    lines = [f"game day {gameday.name}: {_count(len(steps), 'step')} in {_count(len(plan.stages), 'stage')}"
             f"{f', {refused} refused' if refused else ''}; gate {gameday.gate.value}; {window}"]
    rows = [_COLUMNS]
    number = 0
    for stage in plan.stages:
        for step in stage.steps:
            number += 1
            fault = step.fault
            mode = fault.mode.value + (f" {fault.value}" if fault.value is not None else "")
            service = f"{step.service.name} ({step.service.namespace})"
            kind = f"{fault.kind.value}/{fault.action.value}"
            rows.append((stage.tier.label, str(number), step.name, service, kind, mode, fault.duration,
                         step.refusal or ""))
    widths = [max(len(row[i]) for row in rows) for i in range(len(_COLUMNS) - 1)]
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        lines.append("  ".join([*cells, row[-1]]).rstrip())
    lines += [f"left out of the matrix: {reason}" for reason in plan.excluded]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from chaoslab.plan import plan_to_dict

    plan = _load_plan(Path(args.path), args.catalog)
    if args.format == "json":
        print(json.dumps(plan_to_dict(plan), indent=2))
    else:
        print(_table(plan))
    return exitcodes.OK
