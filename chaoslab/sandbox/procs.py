"""OS processes of the sandbox: starting them with a readable name, recording every
pid in the state directory, and ending them by pid — even after an unclean stop.

Every process the sandbox starts is appended to ``pids.jsonl`` with its start
time (``/proc/<pid>/stat``), so a later ``down`` kills exactly those processes
and never a stranger that reused a pid.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import logging
import os
import signal
import site
import socket
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

PIDS_FILE = "pids.jsonl"
_PR_SET_PDEATHSIG = 1
_PR_SET_NAME = 15


@dataclass(frozen=True, slots=True, kw_only=True)
class PidRecord:
    pid: int
    start: int | None
    role: str  # supervisor | prometheus | loadgen | pod
    name: str


def start_time(pid: int) -> int | None:
    """The kernel's start time of ``pid`` (clock ticks since boot), None if it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name may contain spaces and parentheses: split after the last ')'.
    fields = raw[raw.rindex(")") + 2:].split()
    if fields[0] in ("Z", "X"):
        return None  # a zombie has ended; only its parent can still reap it
    return int(fields[19])


def is_alive(pid: int, start: int | None = None) -> bool:
    now = start_time(pid)
    return now is not None and (start is None or now == start)


def record_pid(state_dir: Path, *, pid: int, role: str, name: str) -> PidRecord:
    rec = PidRecord(pid=pid, start=start_time(pid), role=role, name=name)
    line = json.dumps({"pid": rec.pid, "start": rec.start, "role": rec.role, "name": rec.name}) + "\n"
    # One write with O_APPEND: concurrent writers never interleave within a line.
    fd = os.open(state_dir / PIDS_FILE, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)
    return rec


def read_pid_records(state_dir: Path) -> list[PidRecord]:
    try:
        lines = (state_dir / PIDS_FILE).read_text().splitlines()
    except OSError:
        return []
    records = []
    for line in lines:
        with contextlib.suppress(ValueError, KeyError, TypeError):
            raw = json.loads(line)
            records.append(PidRecord(pid=int(raw["pid"]), start=raw["start"], role=raw["role"],
                                     name=raw["name"]))
    return records


def signal_record(rec: PidRecord, sig: signal.Signals) -> bool:
    """Send ``sig`` if the recorded process is still that process. True if sent."""
    if not is_alive(rec.pid, rec.start):
        return False
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(rec.pid, sig)
        return True
    return False


def kill_all(records: Iterable[PidRecord], *, grace_s: float) -> list[PidRecord]:
    """SIGTERM, wait up to ``grace_s``, then SIGKILL. Returns the records still alive after that."""
    records = [r for r in records if is_alive(r.pid, r.start)]
    for rec in records:
        signal_record(rec, signal.SIGCONT)  # a stopped process cannot act on SIGTERM
        signal_record(rec, signal.SIGTERM)
    wait_gone(records, timeout_s=grace_s)
    for rec in records:
        signal_record(rec, signal.SIGKILL)
    return wait_gone(records, timeout_s=5.0)


def wait_gone(records: Iterable[PidRecord], *, timeout_s: float) -> list[PidRecord]:
    deadline = time.monotonic() + timeout_s
    remaining = [r for r in records if is_alive(r.pid, r.start)]
    while remaining and time.monotonic() < deadline:
        time.sleep(0.05)
        remaining = [r for r in remaining if is_alive(r.pid, r.start)]
    return remaining


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def listening_socket(host: str = "127.0.0.1", *, backlog: int = 64) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    sock.listen(backlog)
    return sock


def python_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """Environment for a child started with a custom argv[0].

    Python derives its prefix from argv[0]; with ``<service>-<hex>`` there it cannot
    find the virtualenv, so point it at the real interpreter and our import roots."""
    env = dict(os.environ)
    env["PYTHONEXECUTABLE"] = sys.executable
    root = str(Path(__file__).resolve().parents[2])
    paths = [root, *site.getsitepackages()]
    if env.get("PYTHONPATH"):
        paths.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env.update(extra or {})
    return env


def spawn_python(
    module: str, *, title: str, log_path: Path, env: Mapping[str, str] | None = None,
    pass_fds: tuple[int, ...] = (), new_session: bool = False, args: tuple[str, ...] = (),
) -> subprocess.Popen[bytes]:
    """Run ``python -m module`` with argv[0] = ``title`` so ``ps`` shows the title."""
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            [title, "-m", module, *args], executable=sys.executable, env=python_env(env),
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            pass_fds=pass_fds, start_new_session=new_session, close_fds=True,
        )


def _prctl(option: int, value: int | bytes) -> None:
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(option, value, 0, 0, 0)


def become(name: str, *, parent: int | None) -> None:
    """In a child: show ``name`` as the command name and die with ``parent``.

    The parent-death signal makes an unclean stop of the supervisor take its pods
    with it; the pid file still lets ``down`` clean up whatever slipped through."""
    _prctl(_PR_SET_NAME, name.encode()[:15])
    if parent is not None:
        _prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL))
        if os.getppid() != parent:
            os._exit(1)  # the parent died before the signal was armed
