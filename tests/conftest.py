"""Suite-wide settings. Fixtures live in tests/support/ and are imported explicitly."""

from __future__ import annotations

import os

# chaoslab reads CHAOSLAB_* settings from the environment; a developer's shell must not
# change what the tests see.
for _key in [k for k in os.environ if k.startswith("CHAOSLAB_")]:
    del os.environ[_key]
os.environ.setdefault("NO_COLOR", "1")
