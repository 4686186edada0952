"""Packet-level fault models as TCP would feel them, applied to chunks of a stream.

Pure: state and a seeded RNG, no I/O. The fault proxy asks these models what to
do with each chunk it forwards. They mirror ``tc netem``/``tbf`` where that makes
sense for a byte stream:

- delay: ``latency ± jitter``, with netem's correlation between successive draws;
- loss: a lost segment is retransmitted after an RTO that doubles each time;
- corrupt: the stream is reset (a corrupted segment surfacing as a broken connection);
- duplicate: TCP discards duplicate segments, so it is only counted;
- bandwidth: a token bucket of ``buffer`` bytes filled at ``rate``.
"""

from __future__ import annotations

import random
import re

from chaoslab.model import parse_go_duration

RTO_INITIAL_S = 0.2  # Linux TCP_RTO_MIN
# Linux backs off to 120 s; callers here give up after at most a few seconds, and a
# lower cap lets traffic resume promptly once a partition or loss ends.
RTO_MAX_S = 3.2

_LATENCY = re.compile(r"^[0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h)$")
# Chaos Mesh trims spaces around the number and the unit ("1 mbps"), so do we.
_RATE = re.compile(r"^([0-9]+(?:\.[0-9]+)?)\s*(bit|kbit|mbit|gbit|tbit|bps|kbps|mbps|gbps|tbps)$")
_RATE_BYTES = {
    "bit": 1 / 8, "kbit": 1e3 / 8, "mbit": 1e6 / 8, "gbit": 1e9 / 8, "tbit": 1e12 / 8,
    "bps": 1.0, "kbps": 1e3, "mbps": 1e6, "gbps": 1e9, "tbps": 1e12,
}


def parse_latency(text: str) -> float:
    """Seconds in a netem latency such as ``300ms`` (Chaos Mesh's pattern)."""
    if not isinstance(text, str) or not _LATENCY.match(text):
        raise ValueError(f"{text!r} is not a latency such as 300ms or 1.5s")
    return parse_go_duration(text)


def parse_percent(text: str | float | int) -> float:
    """A Chaos Mesh percentage (``"25"``) as a probability (0.25)."""
    try:
        value = float(text)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{text!r} is not a percentage between 0 and 100") from exc
    if not 0 <= value <= 100:
        raise ValueError(f"{text!r} is not a percentage between 0 and 100")
    return value / 100


def parse_rate(text: str) -> float:
    """Bytes per second in a tc rate: ``1mbit`` (bits) or ``100kbps`` (bytes)."""
    match = _RATE.match(str(text).strip().lower())
    if not match:
        raise ValueError(f"{text!r} is not a rate such as 1mbps or 800kbit")
    value = float(match.group(1)) * _RATE_BYTES[match.group(2)]
    if value <= 0:
        raise ValueError(f"{text!r} is not a rate above zero")
    return value


def backoff(attempt: int) -> float:
    """The retransmission timeout before attempt ``attempt`` (1-based)."""
    return float(min(RTO_INITIAL_S * 2 ** (attempt - 1), RTO_MAX_S))


class Correlated:
    """netem's correlated uniform draw: ``(1 - ρ)·U + ρ·previous``.

    Mutable on purpose: each draw depends on the previous one."""

    def __init__(self, rng: random.Random, correlation: float) -> None:
        self._rng = rng
        self._rho = correlation
        self._last = rng.random()

    def next(self) -> float:
        value = (1 - self._rho) * self._rng.random() + self._rho * self._last
        self._last = value
        return value


class DelaySampler:
    """``latency ± jitter``, uniformly spread, correlated like netem."""

    def __init__(self, *, latency_s: float, jitter_s: float, correlation: float, rng: random.Random) -> None:
        self.latency_s = latency_s
        self.jitter_s = jitter_s
        self._draw = Correlated(rng, correlation)

    def sample(self) -> float:
        if not self.jitter_s:
            return self.latency_s
        return max(0.0, self.latency_s + self.jitter_s * (2 * self._draw.next() - 1))


class Chance:
    """A correlated Bernoulli trial (loss, corrupt, duplicate)."""

    def __init__(self, *, probability: float, correlation: float, rng: random.Random) -> None:
        self.probability = probability
        self._draw = Correlated(rng, correlation)

    def hit(self) -> bool:
        if self.probability >= 1:
            return True
        if self.probability <= 0:
            return False
        return self._draw.next() < self.probability


class TokenBucket:
    """tbf: ``burst`` bytes of credit refilled at ``rate`` bytes/s.

    ``reserve`` takes credit for a chunk and says how long to wait before sending
    it; credit may go negative so a chunk larger than the bucket still passes."""

    def __init__(self, *, rate: float, burst: float) -> None:
        self.rate = rate
        self.burst = max(burst, 1.0)
        self._tokens = self.burst
        self._stamp: float | None = None

    def reserve(self, size: int, now: float) -> float:
        if self._stamp is not None:
            self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now
        self._tokens -= size
        return 0.0 if self._tokens >= 0 else -self._tokens / self.rate
