"""The load generator: drives the frontend at a steady rate while the sandbox is up.

Open loop (a request starts every ``1/rps`` seconds whatever the previous ones
do), so a slow or failing shop does not slow the load down, as with real users.
It picks frontend pods from the endpoints file like any caller, and writes its
counts to ``load.json`` in the state directory every few seconds.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

from chaoslab.sandbox.endpoints import ENDPOINTS_FILE, Endpoint, EndpointsView
from chaoslab.sandbox.procs import become

logger = logging.getLogger(__name__)

LOAD_ENV = "CHAOSLAB_LOAD"
STATS_FILE = "load.json"
MAX_IN_FLIGHT = 200
STATS_EVERY_S = 5.0


@dataclass(frozen=True, slots=True, kw_only=True)
class LoadSpec:
    state_dir: Path
    rps: float
    service: str
    timeout_s: float
    parent: int | None

    def to_json(self) -> str:
        return json.dumps({"state_dir": str(self.state_dir), "rps": self.rps, "service": self.service,
                           "timeout_s": self.timeout_s, "parent": self.parent})

    @classmethod
    def from_json(cls, text: str) -> LoadSpec:
        raw = json.loads(text)
        return cls(state_dir=Path(raw["state_dir"]), rps=float(raw["rps"]), service=raw["service"],
                   timeout_s=float(raw["timeout_s"]), parent=raw.get("parent"))


async def request(endpoint: Endpoint, *, timeout_s: float) -> int | None:
    """One GET /; the status, or None when the call failed."""
    writer = None
    try:
        async with asyncio.timeout(timeout_s):
            reader, writer = await asyncio.open_connection(endpoint.host, endpoint.port)
            writer.write(b"GET / HTTP/1.0\r\nHost: shop\r\n\r\n")
            status_line = await reader.readline()
            await reader.read()  # until the server closes
            return int(status_line.split(b" ", 2)[1])
    except (OSError, TimeoutError, ValueError, IndexError):
        return None
    finally:
        if writer is not None:
            writer.close()


class LoadGenerator:
    def __init__(self, spec: LoadSpec) -> None:
        self.spec = spec
        self.view = EndpointsView(spec.state_dir / ENDPOINTS_FILE)
        self.counts = {"sent": 0, "ok": 0, "failed": 0, "skipped": 0}
        self.in_flight: set[asyncio.Task[None]] = set()

    async def _one(self) -> None:
        endpoint = self.view.pick(self.spec.service)
        status = None if endpoint is None else await request(endpoint, timeout_s=self.spec.timeout_s)
        self.counts["ok" if status is not None and status < 500 else "failed"] += 1

    def _write_stats(self) -> None:
        path = self.spec.state_dir / STATS_FILE
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(json.dumps({**self.counts, "rps": self.spec.rps, "at": time.time()}))
        os.replace(tmp, path)

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        interval = 1.0 / self.spec.rps
        due = loop.time()
        next_stats = due + STATS_EVERY_S
        while True:
            due += interval
            if len(self.in_flight) >= MAX_IN_FLIGHT:
                self.counts["skipped"] += 1
            else:
                self.counts["sent"] += 1
                task = asyncio.create_task(self._one())
                self.in_flight.add(task)
                task.add_done_callback(self.in_flight.discard)
            now = loop.time()
            if now >= next_stats:
                next_stats = now + STATS_EVERY_S
                self._write_stats()
            if due < now - 1.0:
                due = now  # fell far behind (machine was busy): do not burst to catch up
            await asyncio.sleep(max(0.0, due - now))


def main() -> None:
    spec = LoadSpec.from_json(os.environ[LOAD_ENV])
    become("shop-loadgen", parent=spec.parent)
    logging.basicConfig(level=logging.WARNING)
    if spec.rps > 0:
        asyncio.run(LoadGenerator(spec).run())


if __name__ == "__main__":
    main()
