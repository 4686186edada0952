"""The process's pool for the requests a run waits on (chaoslab.threads)."""

from __future__ import annotations

import os
import threading
import time

from chaoslab.threads import MAX_WORKERS, shared_pool, start_threads


def test_one_pool_serves_every_caller_on_threads_it_keeps() -> None:
    pool = shared_pool()
    first = pool.submit(lambda: threading.current_thread().name).result(timeout=30)

    assert shared_pool() is pool
    names = {shared_pool().submit(lambda: threading.current_thread().name).result(timeout=30)
             for _ in range(20)}
    assert first.startswith("chaoslab-request")
    assert len(names | {first}) <= MAX_WORKERS  # threads are kept, not started anew for each task


def test_a_forked_child_makes_a_pool_of_its_own() -> None:
    parent = shared_pool()
    parent.submit(int).result(timeout=30)
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # the child: its parent's worker threads do not exist here
        try:
            ok = shared_pool() is not parent and shared_pool().submit(lambda: 42).result(timeout=30) == 42
            os.write(write, b"1" if ok else b"0")
        finally:
            os._exit(0)
    os.close(write)
    answer = os.read(read, 1)
    os.close(read)
    os.waitpid(child, 0)

    assert answer == b"1"


def test_threads_started_ahead_serve_tasks_at_once() -> None:
    start_threads(3)
    everyone = threading.Barrier(4)
    # Three tasks that can only finish together: they need three threads running at once.
    together = [shared_pool().submit(everyone.wait, 30) for _ in range(3)]
    everyone.wait(30)

    assert all(f.result(timeout=30) is not None for f in together)
    start_threads(0)  # nothing to start
    start_threads(MAX_WORKERS + 5)  # never more than the pool has


def test_starting_threads_in_a_pool_whose_threads_are_all_taken_gives_up_soon() -> None:
    release = threading.Event()
    busy = [shared_pool().submit(release.wait, 30) for _ in range(MAX_WORKERS)]
    try:
        started = time.monotonic()
        start_threads(3, timeout=0.2)
        assert time.monotonic() - started < 10.0  # not the 30 s the busy threads wait
    finally:
        release.set()
    assert all(f.result(timeout=30) for f in busy)
