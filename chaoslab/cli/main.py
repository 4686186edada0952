"""Argument parsing and the top-level error → exit-code mapping."""

from __future__ import annotations

import argparse
import atexit
import contextlib
import gc
import logging
import os
import re
import sys
from collections.abc import Callable, Sequence
from importlib import import_module
from typing import NoReturn

from chaoslab.cli import collector, exitcodes
from chaoslab.errors import (
    BackendError,
    ChaoslabError,
    CleanupError,
    InvalidInputError,
    PlanError,
)

# Command modules, in the order `--help` lists them. Each defines register(subparsers).
COMMANDS = (
    "validate",
    "plan",
    "export",
    "hypothesis",
    "cleanup",
    "run",
    "sandbox",
    "report",
    "schema",
    "checklist",
    "gate",
)
_VERBOSE = re.compile(r"-v+|--verbose")  # the only option before a command name

DESCRIPTION = """chaoslab: disciplined chaos experiments on Kubernetes.

Steady state comes from your Prometheus SLO alerts; Chaos Mesh faults run
non-core services first, widen the blast radius step by step, and halt the
moment an SLO breaks. Every fault is bounded and always removed."""

EXAMPLES = """examples:
  chaoslab validate experiments/gameday.yaml
  chaoslab plan experiments/gameday.yaml
  chaoslab export --to chaos-mesh experiments/exp/payment-delay.yaml
"""

Handler = Callable[[argparse.Namespace], int]


class _Parser(argparse.ArgumentParser):
    """argparse that exits 2 with one line, as the contract asks."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(exitcodes.USAGE, f"{self.prog}: error: {message}\n")


def build_parser(commands: Sequence[str] = COMMANDS) -> argparse.ArgumentParser:
    """The parser of ``commands`` (default: all of them, as ``--help`` lists them)."""
    parser = _Parser(
        prog="chaoslab",
        description=DESCRIPTION,
        epilog=EXAMPLES + "\n" + exitcodes.EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv: debug)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in commands:
        import_module(f"chaoslab.cli.{name}").register(sub)
    return parser


def _commands_for(argv: Sequence[str]) -> Sequence[str]:
    """Only the command being run needs its parser (building all of them costs each
    command module's import); anything else, `--help` or a mistyped name, gets them all."""
    for token in argv:
        if token in COMMANDS:
            return (token,)
        if not _VERBOSE.fullmatch(token):
            break
    return COMMANDS


def _configure_logging(verbosity: int) -> None:
    level = logging.WARNING if verbosity == 0 else logging.INFO if verbosity == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(_commands_for(argv))
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return exitcodes.USAGE
    _configure_logging(args.verbose)
    if not getattr(args, "resumes_collector", False):  # a command may resume it later itself
        collector.resume()
    handler: Handler = args.handler
    try:
        return handler(args)
    except (InvalidInputError, PlanError) as exc:
        print(f"chaoslab: {exc}", file=sys.stderr)
        return exitcodes.USAGE
    except CleanupError as exc:
        print(f"chaoslab: cleanup failed: {exc}", file=sys.stderr)
        for ref in exc.remaining:
            print(f"  may remain: {ref}", file=sys.stderr)
        return exitcodes.CLEANUP
    except BackendError as exc:
        print(f"chaoslab: {exc}", file=sys.stderr)
        return exitcodes.INFRA
    except ChaoslabError as exc:
        print(f"chaoslab: {exc}", file=sys.stderr)
        return exitcodes.INFRA
    except KeyboardInterrupt:
        # Commands that create faults handle signals themselves; anything else just stops.
        print("chaoslab: interrupted", file=sys.stderr)
        return exitcodes.INFRA
    except BrokenPipeError:
        # Output piped into `head` and closed early: not an error worth a traceback.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return exitcodes.OK


def program() -> NoReturn:
    """The ``chaoslab`` program (its console script and ``python -m chaoslab``): ``main``,
    then exit with its code. The collector is paused while the command starts
    (cli/collector.py)."""
    collector.pause()
    code = main()
    _exit(code)


def _exit(code: int) -> NoReturn:
    """Exit with ``code`` as ``sys.exit`` would, without tearing the interpreter down.

    The ``atexit`` hooks run (the guard that removes a fault this process left, logging's
    flush, the trace exporter) and the standard streams are flushed; then the process
    ends. Freeing every module and object one by one (some 10 ms after a run, longer with
    the collector: some 50 ms) would only give memory back that the system takes back at
    once. ``main`` itself, which tests and other programs call in their own process, does
    none of this."""
    run_hooks = getattr(atexit, "_run_exitfuncs", None)
    if run_hooks is None:  # not CPython: the ordinary way
        gc.freeze()
        sys.exit(code)
    run_hooks()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # closed, or its reader went away
            stream.flush()
    os._exit(code)
