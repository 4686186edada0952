"""One pool of threads for the requests a run waits on right away.

A run asks Prometheus and the backend many small things at once and waits for the
answers: the baseline (the alerts and the batch queries, with the preflight and the pod
listing beside them), each recovery check, the PDCA record's range queries. A pool of
its own for each of them starts its threads afresh every time, and on a busy machine a
thread takes a millisecond or more to start. ``shared_pool`` keeps one pool for the
process: its threads start on first use and serve every later check.

Its tasks must not wait on other tasks of the same pool (a task that did could wait for
a thread that never comes). A request that hangs holds its thread until the client's
timeout, as it would in a pool of its own; the pool starts more threads meanwhile, up to
``MAX_WORKERS``.
"""

from __future__ import annotations

import contextlib
import os
import threading
from concurrent.futures import Executor, ThreadPoolExecutor

MAX_WORKERS = 8  # below requests' default connection pool of 10 per host

_lock = threading.Lock()
_pool: ThreadPoolExecutor | None = None


def shared_pool() -> Executor:
    """The process's pool (made on first use)."""
    global _pool
    with _lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=MAX_WORKERS, thread_name_prefix="chaoslab-request")
        return _pool


def start_threads(count: int, *, timeout: float = 0.5) -> None:
    """Have ``count`` of the pool's threads running (at most ``MAX_WORKERS``) before they
    are needed. A thread started while another one is busy in the interpreter (importing,
    say) waits for the interpreter's switch interval before it runs, and the thread
    starting it waits too: a run starts them before its busy part begins.

    Waits at most ``timeout`` seconds: a pool whose threads are all taken (requests to a
    Prometheus that hangs, say) starts its threads on use instead."""
    count = max(0, min(count, MAX_WORKERS))
    if not count:
        return
    everyone = threading.Barrier(count + 1, timeout=timeout)
    for _ in range(count):  # as many tasks running at once as there are to be threads
        shared_pool().submit(_meet, everyone)
    _meet(everyone)


def _meet(barrier: threading.Barrier) -> None:
    with contextlib.suppress(threading.BrokenBarrierError):
        barrier.wait()


def _forget_in_child() -> None:
    """A forked child has none of its parent's threads: it makes its own pool when it needs one."""
    global _lock, _pool
    _lock = threading.Lock()
    _pool = None


os.register_at_fork(after_in_child=_forget_in_child)
