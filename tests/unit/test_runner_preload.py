"""Importing chaoslib and the steps' activities while the run waits (chaoslab.runner.preload)."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from chaoslab.app.build import experiment, network_delay, service
from chaoslab.ctk import build_ctk_experiment
from chaoslab.runner.preload import CTK_MODULES, Preload, experiment_modules
from tests.support.importing import thread_probe

PROBE = "chaoslab_preload_probe"


@pytest.fixture
def probe(tmp_path: Path) -> Iterator[Path]:
    with thread_probe(tmp_path, PROBE) as directory:
        yield directory


def test_modules_load_on_another_thread_from_start(probe: Path) -> None:
    preload = Preload((PROBE, PROBE))
    preload.wait()  # not started: returns at once, nothing imported
    assert PROBE not in sys.modules
    assert preload.modules == (PROBE,)

    preload.start().start()  # a second start starts nothing more
    preload.wait()

    assert sys.modules[PROBE].THREAD.startswith("chaoslab-request")  # one of the process's threads


def test_a_module_that_cannot_load_is_left_to_its_user(probe: Path) -> None:
    (probe / "chaoslab_preload_broken.py").write_text("raise RuntimeError('broken on purpose')\n")

    Preload(("chaoslab_preload_broken", PROBE)).start().wait()

    assert "chaoslab_preload_broken" not in sys.modules
    assert PROBE in sys.modules  # the ones after it still load


def test_the_modules_of_an_experiment_are_chaoslib_its_activities_and_its_controls() -> None:
    cart = service("cart", namespace="shop", tier="non-core", labels={"app": "cart"})
    fault = network_delay(latency="50ms", mode="all", duration="2s")
    delay = experiment("cart-delay", service=cart, fault=fault)
    exported = build_ctk_experiment(experiment=delay, service=cart, prometheus_url="http://127.0.0.1:9090",
                                    target="sandbox")
    control = {"name": "mine", "provider": {"type": "python", "module": "chaoslab.runner.control"}}
    exported["controls"] = [control]

    modules = experiment_modules([exported, exported])

    assert modules[: len(CTK_MODULES)] == list(CTK_MODULES)
    named = set(modules[len(CTK_MODULES) :])
    assert named == {"chaoslab.sandbox.actions", "chaoslab.halt", "chaoslab.runner.control"}
    Preload(modules).start().wait()
    assert all(name in sys.modules for name in modules)  # every one of them exists


def test_what_is_called_then_runs_after_the_imports_on_the_same_thread(probe: Path) -> None:
    seen: list[tuple[str, bool]] = []

    def first() -> None:
        raise RuntimeError("ignored: asked again where it is used")

    def then() -> None:
        seen.append((threading.current_thread().name, PROBE in sys.modules))

    Preload((PROBE,), then=(first, then)).start().wait()

    ((thread, imported),) = seen
    assert thread.startswith("chaoslab-request")
    assert imported  # the imports came first
