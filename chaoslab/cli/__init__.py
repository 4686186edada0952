"""Command line: parse, call the API, print, exit. The only place that prints or exits.

Each command lives in its own module with ``register(subparsers)``; the handler it
sets returns an exit code. Heavy imports (kubernetes, chaoslib, rich) happen
inside handlers so that ``chaoslab --help`` starts fast.
"""

from chaoslab.cli.main import main, program

__all__ = ["main", "program"]
