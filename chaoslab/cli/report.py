"""`chaoslab report`: re-render a run's report.md and report.html from its run.json."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from chaoslab.cli import exitcodes
from chaoslab.errors import InvalidInputError

HELP = "re-render a run's report (report.md, report.html) from its run.json"

DESCRIPTION = """Re-render the report of a run from the run.json in its folder (reports/<run-id>/).

Without --format, writes report.md and report.html into RUN_DIR and prints their
paths. --format md or html writes that one; --format json prints the run.json
document on stdout and writes nothing. Nothing is queried: the report shows what
run.json holds (a run.json from before the PDCA record renders without it)."""

EXAMPLES = """examples:
  chaoslab report reports/20261206T101500Z-3f2a
  chaoslab report --format html reports/20261206T101500Z-3f2a
  chaoslab report --format json reports/20261206T101500Z-3f2a | jq '.pdca.check[].halt_latency_s'
"""


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "report",
        help=HELP,
        description=DESCRIPTION,
        epilog=EXAMPLES + "\n" + exitcodes.EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "run_dir", metavar="RUN_DIR", help="a run folder: reports/<run-id>/, with its run.json"
    )
    parser.add_argument(
        "--format",
        choices=("md", "html", "json"),
        help="md or html: write that report only; json: print run.json (default: md and html)",
    )
    parser.set_defaults(handler=report)


def report(args: argparse.Namespace) -> int:
    from chaoslab.report.files import write_run_reports
    from chaoslab.report.load import load_run

    run_dir = Path(args.run_dir)
    run = load_run(run_dir)
    if args.format == "json":
        print(json.dumps(run, indent=2))
        return exitcodes.OK
    formats = (args.format,) if args.format else ("md", "html")
    try:
        paths = write_run_reports(run, run_dir, formats=formats)
    except OSError as exc:
        raise InvalidInputError(run_dir, "", f"cannot write the report: {exc.strerror or exc}") from None
    for path in paths:
        print(path)
    return exitcodes.OK
