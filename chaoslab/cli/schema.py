"""`chaoslab schema`: the JSON Schema of chaoslab's files, for editors."""

from __future__ import annotations

import argparse
import json
from typing import Any

from chaoslab.cli import exitcodes

HELP = "print the JSON Schema of chaoslab files (for editors and the YAML language server)"

DESCRIPTION = """Print a JSON Schema (draft 2020-12) of chaoslab's files, generated from the
loader's own field definitions: every field, its type, the allowed values of modes,
actions, tiers and gates, duration and name patterns. Without --kind, it accepts any
chaoslab file (by its kind). Rules that tie fields together (a mode's value, the
sub-spec an action needs, selector narrowing) stay with `chaoslab validate`.

Editors: save it and point the YAML language server at it, in settings or on the
first line of a file:  # yaml-language-server: $schema=chaoslab.schema.json"""

EXAMPLES = """examples:
  chaoslab schema > chaoslab.schema.json
  chaoslab schema --kind Experiment > experiment.schema.json
"""

EXIT_CODES = """
exit codes:
  0  printed
  2  bad usage
"""


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "schema", help=HELP, description=DESCRIPTION, epilog=EXAMPLES + EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--kind", choices=("Experiment", "GameDay", "Catalog", "Sandbox"),
                        help="only this kind of file (default: any)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from chaoslab.app.schema import build_schema

    print(json.dumps(build_schema(args.kind), indent=2))
    return exitcodes.OK
