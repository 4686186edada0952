"""SIGINT/SIGTERM during a run become a halt request, delivered outside the signal handler."""

from __future__ import annotations

import os
import signal

import pytest

from chaoslab.halt import halt_reason, halt_requested, hold, reset_halt
from chaoslab.runner.signals import SignalWatch


@pytest.fixture(autouse=True)
def _clean_halt() -> None:
    reset_halt()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_ends_the_hold_and_is_recorded(sig: signal.Signals) -> None:
    before = signal.getsignal(sig)
    seen: list[str] = []
    watch = SignalWatch(on_signal=seen.append)
    with watch.installed():
        os.kill(os.getpid(), sig)
        result = hold("30s")  # would last 30 s without the signal
        assert watch.event.wait(timeout=10)
    assert result["interrupted"] is True
    assert result["held_s"] < 10
    assert watch.received == sig.name
    assert seen == [sig.name]
    assert halt_requested()
    assert sig.name in (halt_reason() or "")
    assert signal.getsignal(sig) is before  # put back as it was


def test_only_the_first_signal_counts() -> None:
    watch = SignalWatch()
    with watch.installed():
        os.kill(os.getpid(), signal.SIGTERM)
        assert watch.event.wait(timeout=10)
        os.kill(os.getpid(), signal.SIGINT)
    # Leaving the block joins the listener, so the SIGINT has been read by now.
    assert watch.received == "SIGTERM"


@pytest.mark.parametrize("signalled", [True, False], ids=["after-a-signal", "no-signal"])
def test_a_process_about_to_exit_ignores_late_signals_only_after_an_interrupt(signalled: bool) -> None:
    """After an interrupted run the CLI exits: a second Ctrl-C in its last milliseconds must
    not kill it (SIG_IGN survives interpreter shutdown; a Python handler does not)."""
    before = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    watch = SignalWatch()
    try:
        with watch.installed(stay_quiet_after_signal=True):
            if signalled:
                os.kill(os.getpid(), signal.SIGTERM)
                assert watch.event.wait(timeout=10)
        after = {sig: signal.getsignal(sig) for sig in before}
    finally:
        for sig, handler in before.items():
            signal.signal(sig, handler)
    if signalled:
        assert after == {signal.SIGINT: signal.SIG_IGN, signal.SIGTERM: signal.SIG_IGN}
    else:
        assert after == before
