"""``python -m chaoslab``."""

from chaoslab.cli import program

program()
