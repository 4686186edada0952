"""A NetworkChaos at run time: which links it affects and the effect models it applies.

A link is one direction of one TCP connection, from a source peer to a
destination peer. Pods are told apart by the loopback address each one sends
from (``127.42.x.y``); anything else is outside the shop. Chaos Mesh semantics:

- ``direction: to`` affects packets *from* the selected pods (to the target pods,
  the external targets, or anywhere when neither is given);
- ``from`` affects packets from the target pods to the selected pods;
- ``both`` is either.
"""

from __future__ import annotations

import ipaddress
import random
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from chaoslab.model import Direction, NetworkAction, NetworkChaos
from chaoslab.sandbox.effects import (
    Chance,
    DelaySampler,
    TokenBucket,
    parse_latency,
    parse_percent,
    parse_rate,
)

_NETEM_ACTIONS = {NetworkAction.NETEM, NetworkAction.DELAY, NetworkAction.LOSS,
                  NetworkAction.DUPLICATE, NetworkAction.CORRUPT}

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class Peer:
    ip: str
    pod: str | None = None  # None: a client outside the shop
    port: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class ExternalTarget:
    network: IpNetwork
    port: int | None = None

    def matches(self, peer: Peer) -> bool:
        try:
            address = ipaddress.ip_address(peer.ip)
        except ValueError:
            return False
        return address in self.network and (self.port is None or self.port == peer.port)


def parse_external_targets(
    entries: Iterable[str], *, resolve: Callable[[str], list[str]]
) -> tuple[ExternalTarget, ...]:
    """``8.8.8.8``, ``10.0.0.0/8:22``, ``example.com:443`` → networks (names resolved now)."""
    result: list[ExternalTarget] = []
    for entry in entries:
        host, port = entry, None
        if entry.count(":") == 1:
            host, _, port_text = entry.partition(":")
            port = int(port_text)
        try:
            result.append(ExternalTarget(network=ipaddress.ip_network(host, strict=False), port=port))
        except ValueError:
            result.extend(ExternalTarget(network=ipaddress.ip_network(ip), port=port) for ip in resolve(host))
    return tuple(result)


class NetworkFaultRuntime:
    """One injected NetworkChaos. Mutable: it carries RNG, token buckets and counters."""

    def __init__(
        self, *, key: str, fault: NetworkChaos, selected: Iterable[str], targets: Iterable[str] | None,
        externals: tuple[ExternalTarget, ...] = (), seed: int | None = None,
    ) -> None:
        self.key = key
        self.action = fault.action
        self.direction = fault.direction
        self.selected = frozenset(selected)
        self.targets = None if targets is None else frozenset(targets)
        self.externals = externals
        self.paused = False
        self.stats: Counter[str] = Counter()
        rng = random.Random(seed)
        netem = self.action in _NETEM_ACTIONS
        self.partition = self.action is NetworkAction.PARTITION
        self.loss: Chance | None
        self.delay: DelaySampler | None = None
        if netem and fault.delay is not None:
            self.delay = DelaySampler(
                latency_s=parse_latency(fault.delay.latency),
                jitter_s=parse_latency(fault.delay.jitter) if fault.delay.jitter else 0.0,
                correlation=parse_percent(fault.delay.correlation or "0"), rng=rng)
        self.loss = self.corrupt = self.duplicate = None
        if netem and fault.loss is not None:
            self.loss = _chance(fault.loss.loss, fault.loss.correlation, rng)
        if netem and fault.corrupt is not None:
            self.corrupt = _chance(fault.corrupt.corrupt, fault.corrupt.correlation, rng)
        if netem and fault.duplicate is not None:
            self.duplicate = _chance(fault.duplicate.duplicate, fault.duplicate.correlation, rng)
        self._rate = 0.0
        self._burst = 0.0
        if self.action is NetworkAction.BANDWIDTH and fault.bandwidth is not None:
            self._rate = parse_rate(fault.bandwidth.rate)
            self._burst = float(fault.bandwidth.buffer)
        self._buckets: dict[str, TokenBucket] = {}

    def _to_matches(self, src: Peer, dst: Peer) -> bool:
        if src.pod not in self.selected:
            return False
        if self.targets is None and not self.externals:
            return True
        if self.targets is not None and dst.pod in self.targets:
            return True
        return dst.pod is None and any(e.matches(dst) for e in self.externals)

    def affects(self, src: Peer, dst: Peer) -> bool:
        """Whether packets from ``src`` to ``dst`` are subject to this fault."""
        if self.paused:
            return False
        to = self.direction in (Direction.TO, Direction.BOTH) and self._to_matches(src, dst)
        back = (self.direction in (Direction.FROM, Direction.BOTH) and self.targets is not None
                and src.pod in self.targets and dst.pod in self.selected)
        return to or back

    def bandwidth_wait(self, src: Peer, size: int, now: float) -> float:
        """Seconds a chunk of ``size`` bytes leaving ``src`` waits for the pod's token bucket."""
        if not self._rate or src.pod is None:
            return 0.0
        bucket = self._buckets.get(src.pod)
        if bucket is None:
            bucket = self._buckets[src.pod] = TokenBucket(rate=self._rate, burst=self._burst)
        return bucket.reserve(size, now)

    def summary(self) -> Mapping[str, int]:
        return dict(self.stats)


def _chance(amount: str, correlation: str | None, rng: random.Random) -> Chance:
    return Chance(probability=parse_percent(amount), correlation=parse_percent(correlation or "0"), rng=rng)


class FaultTable:
    """The network faults in force. The proxy asks it about every chunk it forwards."""

    def __init__(self) -> None:
        self._faults: dict[str, NetworkFaultRuntime] = {}

    def add(self, runtime: NetworkFaultRuntime) -> None:
        self._faults[runtime.key] = runtime

    def discard(self, key: str) -> NetworkFaultRuntime | None:
        return self._faults.pop(key, None)

    def get(self, key: str) -> NetworkFaultRuntime | None:
        return self._faults.get(key)

    def matching(self, src: Peer, dst: Peer) -> list[NetworkFaultRuntime]:
        if not self._faults:
            return []
        return [f for f in self._faults.values() if f.affects(src, dst)]

    def cutting(self, src: Peer, dst: Peer) -> list[NetworkFaultRuntime]:
        """The partitions that cut the connection between ``src`` and ``dst``. One way is
        enough: TCP needs both ways for its handshake, so with either dropped no byte passes
        in any direction (the selected pod never even sees the request)."""
        if not self._faults:
            return []
        return [f for f in self._faults.values()
                if f.partition and (f.affects(src, dst) or f.affects(dst, src))]
