"""A module that records which thread imported it, for the tests of importing ahead of use.

Import explicitly: ``from tests.support.importing import thread_probe``.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def thread_probe(directory: Path, name: str) -> Iterator[Path]:
    """Module ``name`` written in ``directory``, importable for the block; its ``THREAD`` is
    the name of the thread that imported it. Forgotten afterwards, with every module the
    block imported from ``directory``."""
    (directory / f"{name}.py").write_text("import threading\nTHREAD = threading.current_thread().name\n")
    sys.path.insert(0, str(directory))
    try:
        yield directory
    finally:
        sys.path.remove(str(directory))
        for module in list(sys.modules.values()):
            if str(getattr(module, "__file__", "") or "").startswith(str(directory)):
                sys.modules.pop(module.__name__, None)
