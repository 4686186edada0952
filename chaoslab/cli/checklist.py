"""`chaoslab checklist`: the improvement items that runs found, across runs, and
`chaoslab checklist set` to mark one accepted or done by hand. Also the step of
`chaoslab run` that turns a run into its PDCA record and updates the ledger."""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from chaoslab.app.pdca import read_items
from chaoslab.cli import exitcodes
from chaoslab.errors import InvalidInputError

if TYPE_CHECKING:
    from chaoslab.model import RunResult
    from chaoslab.pdca_model import ChecklistItem

logger = logging.getLogger(__name__)

HELP = "the improvement checklist: what runs found, open until a later run verifies the fix"

DESCRIPTION = """The improvement checklist of a reports folder (REPORTS/chaoslab.db).

Every run turns what it found into items: an SLO that broke under a fault, a slow
recovery, an alert that never fired or a service no alert covers, an unhealthy
baseline, an experiment that could not be injected. Each item has a stable id
(experiment/service/kind[/alert]), the service's owner from the catalog, and a text
that says what to do, with the numbers.

An item is open when a run finds it, verified when a later run of the same experiment
on the same service holds, reopened when the weakness comes back. People mark items
accepted (a known risk) or done (fixed: the next held run verifies it, the next
failure reopens it) with `chaoslab checklist set`.

Without --status, the open and reopened items are listed."""

EXAMPLES = """examples:
  chaoslab checklist
  chaoslab checklist --status all --format json
  chaoslab checklist --service payment --format md >> issue.md
  chaoslab checklist set payment-pod-kill/payment/slo-broken --status done --note "2 replicas since v2.3"
  chaoslab checklist set payment-pod-kill/payment/coverage-gap --status accepted --note "alert planned Q3"
"""

STATUSES = ("open", "verified", "reopened", "accepted", "done", "all")
DEFAULT_STATUSES = ("open", "reopened")


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "checklist", help=HELP, description=DESCRIPTION, epilog=EXAMPLES + "\n" + exitcodes.EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--reports", metavar="DIR", help="the reports folder (default: reports/)")
    parser.add_argument("--status", dest="list_status", choices=STATUSES, action="append",
                        help="items with this status (repeatable; default: open and reopened; "
                             "all: every item)")
    parser.add_argument("--service", metavar="S", help="only the items of this service")
    parser.add_argument("--format", choices=("table", "json", "md"), default="table",
                        help="table (default), json (a list of items), md (- [ ] lines for an issue tracker)")
    parser.set_defaults(handler=list_items)
    sub = parser.add_subparsers(dest="action", metavar="[set]", parser_class=type(parser))
    setter = sub.add_parser(
        "set", help="mark an item accepted (a known risk) or done (fixed) by hand",
        description="Mark an item accepted (a known risk, say why with --note) or done (fixed: the next "
                    "held run of its experiment verifies it, the next failure reopens it).",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    setter.add_argument("id", metavar="ID", help="the item's id, as `chaoslab checklist` shows it")
    setter.add_argument("--status", dest="set_status", choices=("accepted", "done"), required=True)
    setter.add_argument("--note", metavar="TEXT", help="why (kept with the item)")
    setter.add_argument("--reports", metavar="DIR", default=argparse.SUPPRESS,
                        help="the reports folder (default: reports/)")
    setter.set_defaults(handler=set_item)


def _reports(args: argparse.Namespace) -> Path:
    from chaoslab.settings import load_settings

    return Path(load_settings(overrides={"reports_dir": args.reports}).reports_dir)


def list_items(args: argparse.Namespace) -> int:
    reports = _reports(args)
    chosen = args.list_status or list(DEFAULT_STATUSES)
    statuses = None if "all" in chosen else chosen
    items = read_items(reports, statuses=statuses, service=args.service)
    if args.format == "json":
        from chaoslab.report.pdca_record import checklist_to_list

        print(json.dumps(checklist_to_list(items), indent=2))
    elif args.format == "md":
        for line in _markdown(items):
            print(line)
    else:
        what = "every status" if statuses is None else ", ".join(statuses)
        where = f" of {args.service}" if args.service else ""
        print(f"{len(items)} item{'' if len(items) == 1 else 's'}{where} ({what}) in {reports}")
        for line in _table(items):
            print(line)
    return exitcodes.OK


def _table(items: Sequence[ChecklistItem]) -> list[str]:
    if not items:
        return []
    rows = [("status", "service", "owner", "kind", "runs", "id")]
    rows += [(i.status.value, i.service, i.owner or "-", i.kind.value, str(len(i.runs)), i.id) for i in items]
    widths = [max(len(r[c]) for r in rows) for c in range(5)]
    lines = []
    for index, row in enumerate(rows):
        lines.append("  ".join(cell.ljust(widths[c]) for c, cell in enumerate(row[:5])) + "  " + row[5])
        if index:
            item = items[index - 1]
            lines.append(f"    {item.text}")
            if item.note:
                lines.append(f"    note: {item.note}")
    return lines


def _markdown(items: Sequence[ChecklistItem]) -> list[str]:
    lines = []
    for item in items:
        box = "[ ]" if item.status.value in DEFAULT_STATUSES else "[x]"
        owner = f" ({item.owner})" if item.owner else ""
        note = f" Note: {item.note}" if item.note else ""
        lines.append(f"- {box} **{item.service}**{owner}, {item.kind.value}, {item.status.value}: "
                     f"{item.text}{note} `{item.id}`")
    return lines


def set_item(args: argparse.Namespace) -> int:
    from chaoslab.pdca.ledger import DB_FILE, open_ledger
    from chaoslab.pdca_model import ItemStatus

    reports = _reports(args)
    if not (reports / DB_FILE).exists():
        raise InvalidInputError(reports / DB_FILE, "ID", f"no checklist item {args.id!r}: no run has "
                                f"written a checklist in {reports} yet")
    with open_ledger(reports) as ledger:
        item = ledger.set_status(args.id, ItemStatus(args.set_status), note=args.note)
    note = f" ({item.note})" if item.note else ""
    print(f"{item.id}: {item.status.value}{note}")
    return exitcodes.OK


# --- from `chaoslab run` --------------------------------------------------------------------


def checklist_summary(result: RunResult) -> str:
    """One line for the end of `chaoslab run`: what this run did to the checklist."""
    act = result.pdca.act if result.pdca is not None else ()
    counts: dict[str, int] = {}
    for item in act:
        counts[item.status.value] = counts.get(item.status.value, 0) + 1
    done = ", ".join(f"{n} {status}" for status, n in counts.items()) or "no item changed"
    where = result.directory.parent if result.directory is not None else "reports"
    return f"checklist: {done} (chaoslab checklist --reports {where})"
