"""What a run adds for the team's operations, once for the CLI and the Python API: the
Alertmanager silences of a game day (``spec.silence``, ``--alertmanager``) and the
OpenTelemetry trace of the run (the standard ``OTEL_*`` variables; imported only then)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from chaoslab.errors import InvalidInputError

if TYPE_CHECKING:
    from chaoslab.model import Plan
    from chaoslab.runner.events import EventSink, RunEvent
    from chaoslab.settings import Settings

logger = logging.getLogger(__name__)


def silences_for(plan: Plan, settings: Settings) -> Any:
    """The Alertmanager to silence alerts in: --alertmanager / CHAOSLAB_ALERTMANAGER_URL, else
    the game day's spec.silence.alertmanager; None when neither names one. InvalidInputError
    (before anything runs) for a silence without a URL or renewals slower than the lifetime."""
    spec = plan.gameday.silence
    url = settings.alertmanager_url or (spec.alertmanager if spec else None)
    if not url:
        if spec is not None:
            raise InvalidInputError(plan.gameday.source, "spec.silence.alertmanager",
                                    "no Alertmanager URL: set it here, pass --alertmanager URL or set "
                                    "CHAOSLAB_ALERTMANAGER_URL")
        return None
    if not 0 < settings.silence_renew_s < settings.silence_ttl_s:
        raise InvalidInputError(
            None, "CHAOSLAB_SILENCE_RENEW_S",
            f"{settings.silence_renew_s:g}s must be more than 0 and less than the silences' lifetime "
            f"CHAOSLAB_SILENCE_TTL_S ({settings.silence_ttl_s:g}s), or they lapse between renewals")
    from chaoslab.alertmanager.client import client_for

    return client_for(url, settings)


def tracing() -> Any:
    """OpenTelemetry tracing when the OTEL_* variables ask for it (imported only then)."""
    from chaoslab.telemetry import tracing_from_env

    return tracing_from_env()


def fan_out(*sinks: EventSink | None) -> EventSink:
    """One event sink feeding several; one that fails does not starve the others."""
    live = [sink for sink in sinks if sink is not None]

    def send(event: RunEvent) -> None:
        for sink in live:
            try:
                sink(event)
            except Exception:  # an observer can never change the course of a run
                logger.exception("event sink %r failed on %s", sink, event.kind)

    return send
