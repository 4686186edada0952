"""The userspace TCP fault proxy (this kernel has no netem) and the service balancer.

Every pod is reached through its own ``FaultProxy`` listener, so a NetworkChaos on
selected pods affects the traffic to and from them. Each direction of a
connection is a link; per chunk the proxy asks the ``FaultTable`` which faults
apply and acts as TCP would make the application feel them:

- delay: the chunk is released ``latency ± jitter`` after it arrived; chunks keep
  their order and overlap in flight, so a response costs one latency, not one per chunk;
- loss and partition: the chunk is retransmitted after an RTO that doubles
  (0.2 s, 0.4 s, ... capped), head-of-line blocking what follows; a partition one way
  holds both directions, as a handshake that cannot complete would;
- corrupt: the connection is reset;
- duplicate: counted only (TCP drops duplicate segments);
- bandwidth: the chunk waits for the source pod's token bucket.

``Balancer`` is the service address (like a ClusterIP): it forwards each new
connection to a ready pod's proxy, round-robin, with no faults of its own.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import logging
import socket
import struct
from collections.abc import Callable

from chaoslab.sandbox.effects import backoff
from chaoslab.sandbox.netfault import FaultTable, Peer

logger = logging.getLogger(__name__)

CHUNK = 65536
CONNECT_TIMEOUT_S = 3.0
IDLE_TIMEOUT_S = 60.0  # a connection silent this long in both directions is dropped

Link = tuple[Peer, Peer]
Identify = Callable[[str, int], Peer]
Address = tuple[str, int]


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with an RST, as a peer that gave up on a broken stream would."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


class _Connection:
    """Both sides of one proxied connection; aborting one aborts both."""

    def __init__(self, client: asyncio.StreamWriter, upstream: asyncio.StreamWriter) -> None:
        self.writers = (client, upstream)
        self.closed = asyncio.Event()

    def reset(self) -> None:
        if not self.closed.is_set():
            self.closed.set()
            for writer in self.writers:
                _reset(writer)

    async def pause(self, seconds: float) -> bool:
        """Sleep, unless the connection ends first. True if it is still open."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.closed.wait(), seconds)
        return not self.closed.is_set()

    def close(self) -> None:
        self.closed.set()
        for writer in self.writers:
            writer.close()


async def _transmit(
    data: bytes, link: Link, table: FaultTable, conn: _Connection, source_ended: asyncio.Event,
) -> bool:
    """Apply loss/partition/corrupt/duplicate/bandwidth to one chunk. False: connection reset."""
    attempt = 0
    cut = False
    while True:
        faults = table.matching(*link)
        cuts = table.cutting(*link)
        cut = cut or bool(cuts)
        if cut and source_ended.is_set():
            # The sender gave up on a connection that could never be made: nothing of it
            # may reach the pod later (no burst of stale requests when the partition ends).
            conn.reset()
            return False
        blocked = cuts + [f for f in faults if f.loss is not None and f.loss.hit()]
        if not blocked:
            break
        attempt += 1
        for fault in blocked:
            fault.stats["blocked" if fault.partition else "retransmits"] += 1
        if not await conn.pause(backoff(attempt)):
            return False
    loop = asyncio.get_running_loop()
    for fault in faults:
        if fault.corrupt is not None and fault.corrupt.hit():
            fault.stats["resets"] += 1
            conn.reset()
            return False
        if fault.duplicate is not None and fault.duplicate.hit():
            fault.stats["duplicates"] += 1
        wait = fault.bandwidth_wait(link[0], len(data), loop.time())
        if wait > 0:
            fault.stats["throttled"] += 1
            if not await conn.pause(wait):
                return False
    return True


async def _send(
    queue: asyncio.Queue[tuple[bytes, float] | None], writer: asyncio.StreamWriter,
    link: Link | None, table: FaultTable, conn: _Connection, source_ended: asyncio.Event,
) -> None:
    loop = asyncio.get_running_loop()
    release = 0.0
    while (item := await queue.get()) is not None:
        data, due = item
        release = max(release, due)
        if release > loop.time() and not await conn.pause(release - loop.time()):
            return
        if link is not None and not await _transmit(data, link, table, conn, source_ended):
            return
        if writer.is_closing():
            return
        writer.write(data)
        await writer.drain()
    if writer.can_write_eof() and not writer.is_closing():
        writer.write_eof()


async def _pipe(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *,
    link: Link | None, table: FaultTable, conn: _Connection,
) -> None:
    """Copy one direction, stamping each chunk with the time it may leave."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[bytes, float] | None] = asyncio.Queue()
    ended = asyncio.Event()
    sender = asyncio.create_task(_send(queue, writer, link, table, conn, ended))
    try:
        while not conn.closed.is_set():
            async with asyncio.timeout(IDLE_TIMEOUT_S):
                data = await reader.read(CHUNK)
            if not data:
                ended.set()
                break
            delay = 0.0
            for fault in table.matching(*link) if link is not None else ():
                fault.stats["chunks"] += 1
                if fault.delay is not None:
                    delay += fault.delay.sample()
                    fault.stats["delayed"] += 1
            queue.put_nowait((data, loop.time() + delay))
    except (OSError, TimeoutError):
        conn.reset()
    except asyncio.CancelledError:
        sender.cancel()
        raise
    queue.put_nowait(None)
    try:
        await sender
    except OSError:
        conn.reset()


async def splice(
    client: tuple[asyncio.StreamReader, asyncio.StreamWriter],
    upstream: tuple[asyncio.StreamReader, asyncio.StreamWriter], *,
    inbound: Link | None, table: FaultTable,
) -> None:
    """Forward both directions until both end. ``inbound`` is the client → pod link."""
    conn = _Connection(client[1], upstream[1])
    outbound = None if inbound is None else (inbound[1], inbound[0])
    try:
        await asyncio.gather(
            _pipe(client[0], upstream[1], link=inbound, table=table, conn=conn),
            _pipe(upstream[0], client[1], link=outbound, table=table, conn=conn),
        )
    finally:
        conn.close()


async def _connect(address: Address | None) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
    if address is None:
        return None
    try:
        return await asyncio.wait_for(asyncio.open_connection(*address), CONNECT_TIMEOUT_S)
    except (OSError, TimeoutError):
        return None


class _Listener(abc.ABC):
    def __init__(self) -> None:
        self._server: asyncio.Server | None = None
        self.port = 0

    async def start(self, host: str = "127.0.0.1") -> int:
        self._server = await asyncio.start_server(self._handle, host, 0, backlog=256)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    def close(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None

    @abc.abstractmethod
    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Serve one accepted connection."""


class FaultProxy(_Listener):
    """The listener in front of one pod. ``upstream`` is the pod's own port, or None while it is down."""

    def __init__(self, *, pod: Peer, upstream: Address | None, table: FaultTable, identify: Identify) -> None:
        super().__init__()
        self.pod = pod
        self.upstream = upstream
        self._table = table
        self._identify = identify

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        ip, port = writer.get_extra_info("peername")[:2]
        caller = self._identify(ip, port)
        upstream = await _connect(self.upstream)
        if upstream is None:
            _reset(writer)  # the pod is gone: like a refused connection
            return
        await splice((reader, writer), upstream, inbound=(caller, self.pod), table=self._table)


class Balancer(_Listener):
    """A service address: each new connection goes to the next ready pod's proxy."""

    def __init__(self, *, pick: Callable[[], Address | None]) -> None:
        super().__init__()
        self._pick = pick
        self._table = FaultTable()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream = await _connect(self._pick())
        if upstream is None:
            _reset(writer)
            return
        await splice((reader, writer), upstream, inbound=None, table=self._table)


async def cancel_connections() -> None:
    """Cancel every other task on this loop (open connections) and wait for them to end."""
    tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
