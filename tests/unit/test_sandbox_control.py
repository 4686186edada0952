"""The sandbox's control API client and server over one kept-alive connection
(chaoslab.sandbox.control, chaoslab.sandbox.control_server)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import pytest

from chaoslab.errors import BackendError
from chaoslab.sandbox.control import ControlClient, ControlError
from chaoslab.sandbox.control_server import ControlServer

T = TypeVar("T")


class _Target:
    """A supervisor with no pods and no faults: enough to answer /status, /pods and 404s."""

    registry: Any = None

    def status_json(self) -> dict[str, Any]:
        return {"services": []}

    def pods_json(self) -> list[dict[str, Any]]:
        return [{"name": "cart-1"}]

    def on_loop(self, fn: Callable[[], T]) -> T:
        return fn()


@pytest.fixture
def server() -> Iterator[ControlServer]:
    control = ControlServer(_Target())
    control.start()
    yield control
    control.stop()


@pytest.fixture
def connections(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    """Every TCP connection opened, by address."""
    opened: list[tuple[str, int]] = []
    connect = socket.create_connection

    def counted(address: tuple[str, int], *args: Any, **kwargs: Any) -> socket.socket:
        opened.append(address)
        return connect(address, *args, **kwargs)

    monkeypatch.setattr(socket, "create_connection", counted)
    return opened


def test_requests_in_a_row_share_one_connection(server: ControlServer,
                                                connections: list[tuple[str, int]]) -> None:
    client = ControlClient(server.url)

    answers = [client.pods() for _ in range(20)]

    assert answers == [[{"name": "cart-1"}]] * 20
    assert client.status() == {"services": []}
    assert len(connections) == 1


def test_each_thread_has_a_connection_of_its_own(server: ControlServer,
                                                 connections: list[tuple[str, int]]) -> None:
    client = ControlClient(server.url)
    found: list[Any] = []
    threads = [threading.Thread(target=lambda: found.extend(client.pods() for _ in range(5)))
               for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert found == [[{"name": "cart-1"}]] * 15
    assert len(connections) == 3


def test_an_error_status_is_a_control_error_and_the_connection_goes_on(
    server: ControlServer, connections: list[tuple[str, int]]
) -> None:
    client = ControlClient(server.url)

    with pytest.raises(ControlError, match="404") as raised:
        client.request("GET", "/nothing-here")

    assert raised.value.status == 404
    assert client.pods() == [{"name": "cart-1"}]
    assert len(connections) == 1


def test_a_supervisor_that_is_gone_is_a_backend_error(server: ControlServer) -> None:
    client = ControlClient(server.url, timeout_s=5)
    assert client.pods() == [{"name": "cart-1"}]
    server.stop()
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        gone = ControlClient(f"http://127.0.0.1:{probe.getsockname()[1]}", timeout_s=5)

    with pytest.raises(BackendError, match="unreachable"):
        gone.pods()
