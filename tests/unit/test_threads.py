"""The process's pool for the requests a run waits on (chaoslab.threads)."""

from __future__ import annotations

import os
import threading

from chaoslab.threads import MAX_WORKERS, shared_pool


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
