"""`chaoslab validate`: check catalogs, experiments and game days, one line per file."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from chaoslab.cli import exitcodes

HELP = "check catalogs, experiments and game days (every field, as Chaos Mesh would)"

DESCRIPTION = """Validate chaoslab files (YAML or JSON, apiVersion chaoslab/v1): Catalog,
Experiment, GameDay and Sandbox, recognised by their kind. Checks mirror the
Chaos Mesh CRDs and admission webhook (actions and their sub-specs, modes and values, durations,
directions and targets, ...) plus chaoslab's safety rules: every fault has a
duration, kube-system is refused unless a game day allows it, and a selector may
not select every pod of a namespace. A game day is checked with its catalog and
every experiment it lists.

Each valid file prints `ok  PATH (Kind name)`. Each invalid one prints
`FILE[:LINE]: field.path: reason` on stderr; the exit code is then 2.
Experiments that name a catalog service use --catalog, or else the catalog.yaml
beside the file or up to two folders above."""

EXAMPLES = """examples:
  chaoslab validate experiments/gameday.yaml
  chaoslab validate experiments/exp/*.yaml
  chaoslab validate --catalog experiments/catalog.yaml my-experiment.json
"""

EXIT_CODES = """
exit codes:
  0  every file is valid
  2  a file is invalid (each error names FILE:LINE and the field), or bad usage
"""


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "validate", help=HELP, description=DESCRIPTION, epilog=EXAMPLES + EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("paths", nargs="+", metavar="PATH",
                        help="Catalog, Experiment, GameDay or Sandbox files")
    parser.add_argument("--catalog", metavar="FILE",
                        help="service catalog (default: catalog.yaml beside each file or up to 2 parents)")
    parser.set_defaults(handler=run)


def _validate_one(path: Path, catalog: str | None) -> str:
    """``Kind name`` of a valid file; raises InvalidInputError otherwise."""
    from chaoslab.loader import load_document, read_document

    doc = read_document(path)
    if doc.kind == "Sandbox":
        from chaoslab.sandbox.config import load_sandbox_config

        load_sandbox_config(path)
        metadata = doc.data.get("metadata")
        name = metadata.get("name") if isinstance(metadata, dict) else None
        return f"Sandbox {name or path.stem}"
    loaded = load_document(doc, catalog_path=catalog)
    from chaoslab.model import GameDay

    if isinstance(loaded, GameDay):
        from chaoslab.plan import build_plan, check_safety

        check_safety(build_plan(loaded))  # a game day whose own safety rules refuse a step
    return f"{doc.kind} {loaded.name}"


def run(args: argparse.Namespace) -> int:
    from chaoslab.errors import InvalidInputError

    failed = 0
    for path in args.paths:
        try:
            what = _validate_one(Path(path), args.catalog)
        except InvalidInputError as exc:
            failed += 1
            print(exc, file=sys.stderr)
            continue
        print(f"ok  {path} ({what})")
    return exitcodes.USAGE if failed else exitcodes.OK
