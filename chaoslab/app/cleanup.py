"""Faults that chaoslab created and left behind (a run killed with SIGKILL, a lost
connection): found and removed over the ``ChaosBackend`` port, for either target.

Only faults carrying chaoslab's managed-by label are ever listed, so nothing else is
touched."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

from chaoslab.errors import CleanupError, InvalidInputError
from chaoslab.model import FaultHandle
from chaoslab.ports import ChaosBackend

logger = logging.getLogger(__name__)


@runtime_checkable
class RemovesInBulk(Protocol):
    """A backend that deletes many faults at once and then waits for all of them (Chaos
    Mesh recovers them in parallel), rather than one removal after the other."""

    def remove_all(self, handles: Sequence[FaultHandle], *, timeout: float = 60.0,
                   force: bool = False) -> None: ...


@contextlib.contextmanager
def open_backend(
    target: str, *, context: str | None = None, state_dir: Path | None = None
) -> Iterator[ChaosBackend | None]:
    """The backend of ``target`` for the duration of the block; None for a sandbox that is
    not running (its faults live in its supervisor, so none can remain)."""
    if target == "kubernetes":
        from chaoslab.chaosmesh.backend import connect

        backend = connect(context=context)
        try:
            yield backend
        finally:
            backend.close()
        return
    if target != "sandbox":
        raise InvalidInputError(None, "target", f"must be kubernetes or sandbox, got {target!r}")
    from chaoslab.sandbox.backend import SandboxBackend
    from chaoslab.sandbox.state import load_state

    state = load_state(state_dir)
    yield None if state is None else SandboxBackend(state)


def find_faults(
    backend: ChaosBackend | None, *, run_id: str | None = None, namespace: str | None = None
) -> tuple[FaultHandle, ...]:
    """chaoslab's faults in ``backend``: one run's (``run_id``), or every run's."""
    if backend is None:
        return ()
    return tuple(backend.list_faults(run_id=run_id, namespace=namespace))


def remove_faults(
    backend: ChaosBackend | None, handles: Sequence[FaultHandle], *, timeout_s: float = 60.0,
    force: bool = False,
) -> None:
    """Remove every fault of ``handles`` and wait until each is gone. Every one is tried even
    when one fails; ``CleanupError`` then names all that may remain."""
    if backend is None or not handles:
        return
    if isinstance(backend, RemovesInBulk):
        backend.remove_all(handles, timeout=timeout_s, force=force)
        return
    failed: list[str] = []
    for handle in handles:
        try:
            backend.remove(handle, timeout=timeout_s, force=force)
        except CleanupError as exc:
            failed.extend(exc.remaining or (handle.ref,))
    if failed:
        raise CleanupError(f"{len(failed)} {backend.name} fault(s) could not be removed",
                           remaining=tuple(failed))


def cleanup(
    *, target: str = "kubernetes", run_id: str | None = None, namespace: str | None = None,
    dry_run: bool = False, force: bool = False, timeout_s: float = 60.0, context: str | None = None,
    state_dir: Path | None = None,
) -> tuple[FaultHandle, ...]:
    """Remove chaoslab's faults from ``target`` (one run's with ``run_id``, else every run's)
    and return them; with ``dry_run``, return what would be removed. ``CleanupError`` names
    what may remain."""
    if timeout_s <= 0:
        raise InvalidInputError(None, "timeout_s", "must be greater than 0")
    with open_backend(target, context=context, state_dir=state_dir) as backend:
        found = find_faults(backend, run_id=run_id, namespace=namespace)
        if not dry_run:
            remove_faults(backend, found, timeout_s=timeout_s, force=force)
        logger.info("cleanup on %s: %d fault(s)%s", target, len(found), " (dry run)" if dry_run else "")
        return found
