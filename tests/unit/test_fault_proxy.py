"""The userspace fault proxy, in-process: a real HTTP server behind a real ``FaultProxy``.

Each NetworkChaos action is applied through the same ``FaultTable`` the supervisor
uses, and observed the way a caller feels it: slower, stalled, reset or throttled.
"""

from __future__ import annotations

import asyncio
import http.client
import ipaddress
import itertools
import random
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from chaoslab.sandbox.effects import (
    Chance,
    DelaySampler,
    TokenBucket,
    backoff,
    parse_latency,
    parse_percent,
    parse_rate,
)
from chaoslab.sandbox.endpoints import Endpoint, get
from chaoslab.sandbox.manifest import parse_manifest
from chaoslab.sandbox.netfault import FaultTable, NetworkFaultRuntime, Peer, parse_external_targets
from chaoslab.sandbox.proxy import FaultProxy, cancel_connections

POD = "catalog-aaaaa"
POD_IP = "127.42.0.1"
CALLER = "frontend-bbbbb"
CALLER_IP = "127.42.0.2"
BODY = b"x" * 4000


class _Upstream(BaseHTTPRequestHandler):
    disable_nagle_algorithm = True
    served: list[str] = []  # noqa: RUF012 (shared on purpose: the requests that reached the pod)

    def do_GET(self) -> None:
        self.served.append(self.path)
        self.send_response(200)
        self.send_header("Content-Length", str(len(BODY)))
        self.end_headers()
        self.wfile.write(BODY)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class Rig:
    """An upstream server, a proxy in front of it on its own event loop, and a caller."""

    def __init__(self) -> None:
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _Upstream)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.table = FaultTable()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        names = {CALLER_IP: CALLER}
        self.proxy = FaultProxy(pod=Peer(POD_IP, POD), upstream=("127.0.0.1", self.server.server_address[1]),
                                table=self.table, identify=lambda ip, port: Peer(ip, names.get(ip), port))
        self.port = self.on_loop(self.proxy.start())

    def on_loop(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=10)

    def add(self, spec: dict[str, Any], *, selected: tuple[str, ...] = (POD,),
            targets: tuple[str, ...] | None = None) -> NetworkFaultRuntime:
        obj = parse_manifest({"apiVersion": "chaos-mesh.org/v1alpha1", "kind": "NetworkChaos",
                              "metadata": {"name": "f", "namespace": "shop"},
                              "spec": {"mode": "all", "duration": "1m", **spec}})
        externals = parse_external_targets(obj.fault.external_targets, resolve=lambda host: ["127.0.0.1"])
        runtime = NetworkFaultRuntime(key="f", fault=obj.fault, selected=selected, targets=targets,
                                      externals=externals, seed=7)

        async def install() -> None:
            self.table.add(runtime)

        self.on_loop(install())
        return runtime

    def clear(self) -> None:
        async def drop() -> None:
            self.table.discard("f")

        self.on_loop(drop())

    def call(self, *, timeout: float = 2.0, source: str | None = None) -> tuple[int | str, float]:
        started = time.monotonic()
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout,
                                          source_address=(source, 0) if source else None)
        try:
            conn.request("GET", "/")
            response = conn.getresponse()
            body = response.read()
            assert body == BODY
            return response.status, time.monotonic() - started
        except (OSError, http.client.HTTPException) as exc:
            return type(exc).__name__, time.monotonic() - started
        finally:
            conn.close()

    def close(self) -> None:
        async def shutdown() -> None:
            self.proxy.close()
            await cancel_connections()

        self.on_loop(shutdown())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def shared_rig() -> Iterator[Rig]:
    r = Rig()
    try:
        yield r
    finally:
        r.close()


@pytest.fixture
def rig(shared_rig: Rig) -> Iterator[Rig]:
    upstream = shared_rig.proxy.upstream
    yield shared_rig
    shared_rig.clear()
    shared_rig.proxy.upstream = upstream


def test_without_faults_the_proxy_is_transparent(rig: Rig) -> None:
    assert [rig.call()[0] for _ in range(3)] == [200, 200, 200]


def test_delay_slows_responses_during_the_fault_and_not_after(rig: Rig) -> None:
    runtime = rig.add({"action": "delay", "delay": {"latency": "300ms"}})
    during = [rig.call() for _ in range(3)]
    assert all(status == 200 and elapsed >= 0.29 for status, elapsed in during), during
    assert runtime.stats["delayed"] >= 3
    rig.clear()
    after = [rig.call() for _ in range(3)]
    assert all(status == 200 and elapsed < 0.25 for status, elapsed in after), after


def test_a_fault_on_another_pod_leaves_this_one_alone(rig: Rig) -> None:
    runtime = rig.add({"action": "delay", "delay": {"latency": "2s"}}, selected=("other-ccccc",))
    status, elapsed = rig.call()
    assert status == 200
    assert elapsed < 1.0
    assert runtime.stats["chunks"] == 0


def test_target_limits_a_fault_to_traffic_towards_the_target_pods(rig: Rig) -> None:
    spec = {"action": "delay", "delay": {"latency": "300ms"}, "direction": "to",
            "target": {"mode": "all", "selector": {"labelSelectors": {"app": "frontend"}}}}
    rig.add(spec, targets=(CALLER,))
    status, elapsed = rig.call(source=CALLER_IP)
    assert status == 200
    assert elapsed >= 0.29
    status, elapsed = rig.call()  # from outside the shop: not a target
    assert status == 200
    assert elapsed < 0.25


def test_direction_from_delays_what_the_target_sends_to_the_selected_pods(rig: Rig) -> None:
    spec = {"action": "delay", "delay": {"latency": "300ms"}, "direction": "from",
            "target": {"mode": "all", "selector": {"labelSelectors": {"app": "frontend"}}}}
    runtime = rig.add(spec, targets=(CALLER,))
    status, elapsed = rig.call(source=CALLER_IP)
    assert status == 200
    assert elapsed >= 0.29
    assert runtime.affects(Peer(CALLER_IP, CALLER), Peer(POD_IP, POD))
    assert not runtime.affects(Peer(POD_IP, POD), Peer(CALLER_IP, CALLER))


def test_external_targets_match_callers_outside_the_shop(rig: Rig) -> None:
    rig.add({"action": "delay", "delay": {"latency": "300ms"}, "externalTargets": ["127.0.0.1/32"]})
    status, elapsed = rig.call()
    assert status == 200
    assert elapsed >= 0.29
    status, elapsed = rig.call(source=CALLER_IP)  # a pod, not an external target
    assert status == 200
    assert elapsed < 0.25


def test_partition_makes_callers_time_out_until_it_ends(rig: Rig) -> None:
    runtime = rig.add({"action": "partition"})
    assert rig.call(timeout=0.5)[0] == "TimeoutError"
    assert runtime.stats["blocked"] >= 1
    rig.clear()
    assert rig.call()[0] == 200


def test_a_partition_cuts_the_pod_off_so_it_never_sees_the_request(rig: Rig) -> None:
    # `direction: to` drops only what the pod sends, yet with its SYN-ACKs lost no
    # connection is ever made: the pod serves nothing, even once the partition ends.
    before = len(_Upstream.served)
    runtime = rig.add({"action": "partition"})
    assert rig.call(timeout=0.5)[0] == "TimeoutError"
    assert len(_Upstream.served) == before
    assert runtime.stats["blocked"] >= 1
    rig.clear()
    assert rig.call()[0] == 200
    assert len(_Upstream.served) == before + 1  # only the new call, not the abandoned one


@pytest.mark.parametrize("direction", ["from", "both"])
def test_a_partition_from_the_target_cuts_connections_either_way(rig: Rig, direction: str) -> None:
    before = len(_Upstream.served)
    # The caller is the selected pod and this proxy's pod the target: only target → selected
    # is dropped, and that alone keeps the caller's connection from ever being made.
    rig.add({"action": "partition", "direction": direction,
             "target": {"mode": "all", "selector": {"labelSelectors": {"app": "catalog"}}}},
            selected=(CALLER,), targets=(POD,))
    assert rig.call(timeout=0.5, source=CALLER_IP)[0] == "TimeoutError"
    assert len(_Upstream.served) == before


def test_total_loss_stalls_like_endless_retransmissions(rig: Rig) -> None:
    runtime = rig.add({"action": "loss", "loss": {"loss": "100"}})
    assert rig.call(timeout=0.5)[0] == "TimeoutError"
    assert runtime.stats["retransmits"] >= 1
    rig.clear()
    assert rig.call()[0] == 200


def test_partial_loss_costs_a_retransmission_timeout(rig: Rig) -> None:
    runtime = rig.add({"action": "loss", "loss": {"loss": "20"}})
    results = []
    # Until a response was lost once (at 20% that takes a few calls; 60 bounds it).
    while len(results) < 60 and not runtime.stats["retransmits"]:
        results.append(rig.call(timeout=30.0))
    assert all(status == 200 for status, _ in results), results
    assert runtime.stats["retransmits"] >= 1
    assert max(elapsed for _, elapsed in results) >= 0.19  # at least one RTO


def test_corrupt_resets_the_connection(rig: Rig) -> None:
    runtime = rig.add({"action": "corrupt", "corrupt": {"corrupt": "100"}})
    status, _ = rig.call()
    assert status in ("ConnectionResetError", "RemoteDisconnected", "BadStatusLine")
    assert runtime.stats["resets"] >= 1


def test_duplicate_is_harmless_and_counted(rig: Rig) -> None:
    runtime = rig.add({"action": "duplicate", "duplicate": {"duplicate": "100"}})
    assert rig.call()[0] == 200
    assert runtime.stats["duplicates"] >= 1


def test_bandwidth_throttles_to_the_rate(rig: Rig) -> None:
    # 4000 bytes through an 8 kB/s bucket of 1 byte: about half a second.
    runtime = rig.add({"action": "bandwidth", "bandwidth": {"rate": "8kbps", "limit": 1, "buffer": 1}})
    status, elapsed = rig.call(timeout=10)
    assert status == 200
    assert elapsed >= 0.4
    assert runtime.stats["throttled"] >= 1


def test_paused_fault_has_no_effect(rig: Rig) -> None:
    runtime = rig.add({"action": "partition"})
    runtime.paused = True
    assert rig.call()[0] == 200


def test_a_caller_gets_the_status_through_the_proxy(rig: Rig) -> None:
    assert get(Endpoint(pod=POD, host="127.0.0.1", port=rig.port), timeout_s=2.0) == 200


class _Trickle(BaseHTTPRequestHandler):
    """A response whose every byte comes within 0.1 s of the last, and the whole in 3 s."""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "30")
        self.end_headers()
        try:
            for _ in range(30):
                self.wfile.write(b"x")
                time.sleep(0.1)  # the server's pacing, not a wait in the test
        except OSError:
            pass  # the caller gave up, as it should

    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_a_call_timeout_bounds_the_whole_response_not_each_read() -> None:
    # recommendation's 300 ms: a reply trickling in (loss, bandwidth) must not outlast it.
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Trickle)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            get(Endpoint(pod="slow", host="127.0.0.1", port=server.server_address[1]), timeout_s=0.5)
        assert time.monotonic() - started < 2.5  # the trickle takes 3 s
    finally:
        server.shutdown()
        server.server_close()


def test_a_pod_that_is_gone_refuses_at_once(rig: Rig) -> None:
    rig.proxy.upstream = None
    status, elapsed = rig.call(timeout=5)
    assert status in ("ConnectionResetError", "RemoteDisconnected")
    assert elapsed < 5


# --- the effect models, pure -------------------------------------------------------


def test_jitter_spreads_delays_around_the_latency() -> None:
    sampler = DelaySampler(latency_s=0.1, jitter_s=0.05, correlation=0.0, rng=random.Random(1))
    samples = [sampler.sample() for _ in range(2000)]
    assert min(samples) >= 0.05
    assert max(samples) <= 0.15
    assert sum(samples) / len(samples) == pytest.approx(0.1, abs=0.005)


def test_full_correlation_repeats_the_previous_draw() -> None:
    sampler = DelaySampler(latency_s=0.1, jitter_s=0.05, correlation=1.0, rng=random.Random(2))
    assert len({sampler.sample() for _ in range(50)}) == 1


def test_correlation_makes_successive_delays_closer() -> None:
    def mean_step(rho: float) -> float:
        sampler = DelaySampler(latency_s=0.1, jitter_s=0.05, correlation=rho, rng=random.Random(3))
        values = [sampler.sample() for _ in range(2000)]
        return sum(abs(a - b) for a, b in itertools.pairwise(values)) / (len(values) - 1)

    assert mean_step(0.75) < mean_step(0.0) / 2


@pytest.mark.parametrize("percent", [0.0, 0.25, 0.5, 1.0])
def test_chance_hits_at_its_probability(percent: float) -> None:
    chance = Chance(probability=percent, correlation=0.0, rng=random.Random(4))
    rate = sum(chance.hit() for _ in range(4000)) / 4000
    assert rate == pytest.approx(percent, abs=0.03)


def test_token_bucket_waits_for_credit() -> None:
    bucket = TokenBucket(rate=1000.0, burst=100.0)
    assert bucket.reserve(100, now=0.0) == 0.0
    assert bucket.reserve(500, now=0.0) == pytest.approx(0.5)
    assert bucket.reserve(0, now=1.0) == 0.0


def test_backoff_doubles_up_to_a_cap() -> None:
    assert [backoff(n) for n in range(1, 7)] == [0.2, 0.4, 0.8, 1.6, 3.2, 3.2]


@pytest.mark.parametrize(("text", "expected"), [("1mbit", 125000.0), ("100kbps", 100000.0), ("8bit", 1.0),
                                                 ("1gbps", 1e9), ("1 mbps", 1e6), ("2 MBIT", 250000.0)])
def test_rates_in_tc_units(text: str, expected: float) -> None:
    assert parse_rate(text) == pytest.approx(expected)


@pytest.mark.parametrize("bad", ["fast", "10", "-1mbps", "0kbps"])
def test_bad_rates(bad: str) -> None:
    with pytest.raises(ValueError, match="rate"):
        parse_rate(bad)


def test_latency_and_percent_parsing() -> None:
    assert parse_latency("1.5s") == 1.5
    assert parse_percent("25") == 0.25
    with pytest.raises(ValueError, match="latency"):
        parse_latency("300")
    with pytest.raises(ValueError, match="percentage"):
        parse_percent("101")


def test_external_targets_with_ports_and_names() -> None:
    targets = parse_external_targets(["10.0.0.0/8:22", "8.8.8.8", "example.com:443"],
                                     resolve=lambda host: ["93.184.216.34"])
    assert [(str(t.network), t.port) for t in targets] == [
        ("10.0.0.0/8", 22), ("8.8.8.8/32", None), ("93.184.216.34/32", 443)]
    assert targets[0].matches(Peer("10.1.2.3", None, 22))
    assert not targets[0].matches(Peer("10.1.2.3", None, 80))
    assert ipaddress.ip_address("8.8.8.8") in targets[1].network
