"""``python -m chaoslab``."""

from chaoslab.cli import main

raise SystemExit(main())
