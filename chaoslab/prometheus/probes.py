"""Is an alert quiet right now? The check shared by the Chaos Toolkit probe and the SLO watcher.

An alert is quiet only when Prometheus says it is neither pending nor firing AND an instant
query of its ``expr`` returns nothing, i.e. the condition is false now, before ``for:``
would let it fire. When ``expr`` is a plain comparison, the left-hand side is queried as
well to report the value and the margin to the threshold.

Fail safe: no answer, a timeout, an error status, or no data where data is needed make
the check not met, with the reason. Never a pass without data.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from chaoslab.errors import PrometheusError
from chaoslab.model import AlertFilter, AlertState, HypothesisCheck
from chaoslab.ports import MetricsSource
from chaoslab.prometheus.hypothesis import Comparison, comparison

logger = logging.getLogger(__name__)

TOKEN_ENV = "CHAOSLAB_PROMETHEUS_TOKEN"
URL_ENV = "CHAOSLAB_PROMETHEUS_URL"
ACTIVE_STATES = ("pending", "firing")


@dataclass(frozen=True, slots=True, kw_only=True)
class AlertCheck:
    """One look at one alert. ``met`` is the verdict; ``reason`` says why in one line."""

    alert: str
    state: str  # inactive | pending | firing | unknown
    condition_true: bool | None  # None: not known (no answer)
    value: float | None  # the comparison's left-hand side, worst series
    threshold: float | None
    margin: float | None  # headroom to the threshold; <= 0 is at or past it
    met: bool
    reason: str
    op: str | None = None  # the comparison operator, threshold on the right

    def as_output(self) -> dict[str, Any]:
        """The probe's JSON-able output: these fields plus ``verdict`` (met | not-met).

        NaN and infinities become None, since strict JSON has no such numbers."""
        output = {
            k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in asdict(self).items()
        }
        output["verdict"] = "met" if self.met else "not-met"
        return output


def check_alert(
    metrics: MetricsSource,
    *,
    alert: str,
    expr: str,
    alert_states: Sequence[AlertState] | None = None,
) -> AlertCheck:
    """Check one alert. ``alert_states`` spares a call to ``metrics.alerts()`` when the
    caller checks several alerts at once. Never raises for Prometheus trouble."""
    cmp = comparison(expr)
    known = {"alert": alert, "threshold": cmp.threshold if cmp else None, "op": cmp.op if cmp else None}
    try:
        states = metrics.alerts() if alert_states is None else alert_states
    except PrometheusError as exc:
        return _unknown(known, state="unknown", reason=str(exc))
    state = alert_state(alert, states)
    try:
        condition_true = len(metrics.query(expr)) > 0
        values = [s.value for s in metrics.query(cmp.lhs)] if cmp else []
    except PrometheusError as exc:
        return _unknown(known, state=state, reason=str(exc))
    return _judge(known, cmp=cmp, state=state, condition_true=condition_true, values=values)


def alert_state(alert: str, states: Sequence[AlertState]) -> str:
    """The most severe state among ``alert``'s instances: firing > pending > inactive."""
    found = {s.state for s in states if s.name == alert}
    for state in ("firing", "pending"):
        if state in found:
            return state
    return "inactive"


def _judge(
    known: dict[str, Any],
    *,
    cmp: Comparison | None,
    state: str,
    condition_true: bool,
    values: Sequence[float],
) -> AlertCheck:
    problems: list[str] = []
    if state in ACTIVE_STATES:
        problems.append(f"alert {known['alert']} is {state}")
    value = margin = None
    numbers = [v for v in values if not math.isnan(v)]
    if cmp is not None and not values:
        problems.append(f"no data for {cmp.lhs}")
    elif cmp is not None and not numbers:
        problems.append(f"{cmp.lhs} is NaN (no traffic in its window?)")
    elif cmp is not None:
        value = min(numbers, key=cmp.margin)
        margin = cmp.margin(value)
    if cmp is not None and value is not None and (condition_true or cmp.breached(value)):
        # Either query seeing the breach is enough: they may have looked at different instants.
        problems.append(f"condition true: {value:.4g} {cmp.describe()}")
    elif condition_true:
        problems.append("condition true: the alert expression returns data")
    met = not problems
    if not met:
        reason = "; ".join(problems)
    elif cmp is not None and value is not None and margin is not None:
        reason = f"{known['alert']} is quiet: {value:.4g}, threshold {cmp.describe()}, margin {margin:.4g}"
    else:
        reason = f"{known['alert']} is quiet: the alert expression returns nothing"
    return AlertCheck(
        **known,
        state=state,
        condition_true=condition_true,
        value=value,
        margin=margin,
        met=met,
        reason=reason,
    )


def _unknown(known: dict[str, Any], *, state: str, reason: str) -> AlertCheck:
    return AlertCheck(
        **known, state=state, condition_true=None, value=None, margin=None, met=False, reason=reason
    )


def alert_quiet(
    alert: str,
    expr: str,
    configuration: Mapping[str, Any] | None = None,
    secrets: Mapping[str, Any] | None = None,
    timeout: float = 5.0,
) -> dict[str, Any]:
    """Chaos Toolkit probe: is ``alert`` quiet now? Returns a dict with ``verdict`` met | not-met.

    Configuration: ``prometheus_url`` (else env CHAOSLAB_PROMETHEUS_URL), optional
    ``prometheus_ca_bundle`` and ``prometheus_verify_tls``. Secret: ``prometheus_token``
    (else env CHAOSLAB_PROMETHEUS_TOKEN). ``timeout`` bounds each HTTP request, since
    Chaos Toolkit does not enforce activity timeouts for python providers."""
    from chaoslab.prometheus.client import PrometheusClient  # requests only where it is used

    config = configuration or {}
    url = config.get("prometheus_url") or os.environ.get(URL_ENV)
    fresh = _recent(str(url or ""), alert, expr)
    if fresh is not None:  # the runner in this process judged this alert a moment ago
        logger.info("%s: %s (the run's own check, moments ago)", alert, fresh.reason)
        return fresh.as_output()
    if not url:
        reason = "no Prometheus to ask: set prometheus_url in the experiment configuration"
        return _unknown(_bare(alert), state="unknown", reason=reason).as_output()
    token = (secrets or {}).get("prometheus_token") or os.environ.get(TOKEN_ENV)
    try:
        with PrometheusClient(
            str(url),
            token=token,
            ca_bundle=config.get("prometheus_ca_bundle"),
            verify=_truthy(config.get("prometheus_verify_tls", True)),
            timeout=float(timeout),
        ) as client:
            check = check_alert(client, alert=alert, expr=expr)
    except Exception as exc:  # a probe that cannot judge must say not met, not crash
        check = _unknown(_bare(alert), state="unknown", reason=f"probe error: {type(exc).__name__}: {exc}")
    logger.info("%s: %s", alert, check.reason)
    return check.as_output()


def _bare(alert: str) -> dict[str, Any]:
    return {"alert": alert, "threshold": None, "op": None}


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() not in ("0", "false", "no", "off")
    return bool(value)


def guards_quiet(
    alerts: list[str],
    ignore: list[str] | None = None,
    configuration: Mapping[str, Any] | None = None,
    secrets: Mapping[str, Any] | None = None,
    timeout: float = 5.0,
) -> dict[str, Any]:
    """Chaos Toolkit probe: is none of the guard ``alerts`` firing? One request to
    ``/api/v1/alerts`` for all of them; their conditions are never evaluated.

    Met unless a guard fires that no ``ignore`` entry (an alert name or label matchers
    such as ``namespace="dev"``) matches; pending and ignored-firing guards are listed in
    the output. Prometheus unreachable is not met. Configuration and secrets as
    :func:`alert_quiet`."""
    from chaoslab.loader.guards import parse_filter
    from chaoslab.prometheus.guards import blocked_message, judge_guard, states_by_name

    try:
        filters = [parse_filter(str(entry)) for entry in ignore or []]
        url = (configuration or {}).get("prometheus_url") or os.environ.get(URL_ENV)
        fresh = _recent_guards(str(url or ""), alerts, filters)
        if fresh is None:
            with _client_from(configuration, secrets, timeout) as client:
                states = client.alerts()
    except Exception as exc:  # a probe that cannot judge must say not met, not crash
        reason = exc.args[0] if isinstance(exc, _NoPrometheusError) else f"cannot read alert states: {exc}"
        return _guards_output([], met=False, reason=str(reason), alerts=alerts)
    if fresh is not None:  # the runner in this process judged these guards a moment ago
        checks = fresh
    else:
        by_name = states_by_name(states)
        checks = [judge_guard(name, by_name.get(name, []), ignore=filters) for name in dict.fromkeys(alerts)]
    failed = [c for c in checks if not c.met]
    reason = blocked_message(failed) if failed else f"no guard alert firing ({len(checks)} watched)"
    logger.info("guards: %s", reason)
    return _guards_output(checks, met=not failed, reason=reason, alerts=alerts)


class _NoPrometheusError(Exception):
    """No URL configured: nothing to ask."""


def _client_from(configuration: Mapping[str, Any] | None, secrets: Mapping[str, Any] | None,
                 timeout: float) -> Any:
    from chaoslab.prometheus.client import PrometheusClient  # requests only where it is used

    config = configuration or {}
    url = config.get("prometheus_url") or os.environ.get(URL_ENV)
    if not url:
        raise _NoPrometheusError("no Prometheus to ask: set prometheus_url in the experiment configuration")
    token = (secrets or {}).get("prometheus_token") or os.environ.get(TOKEN_ENV)
    return PrometheusClient(str(url), token=token, ca_bundle=config.get("prometheus_ca_bundle"),
                            verify=_truthy(config.get("prometheus_verify_tls", True)), timeout=float(timeout))


def _guards_output(checks: Sequence[Any], *, met: bool, reason: str, alerts: Sequence[str]) -> dict[str, Any]:
    rows = [{"alert": c.alert, "state": c.state, "met": c.met, "ignored": c.ignored, "reason": c.reason}
            for c in checks]
    if not checks:  # no answer: every guard unknown
        rows = [{"alert": a, "state": "unknown", "met": False, "ignored": False, "reason": reason}
                for a in dict.fromkeys(alerts)]
    return {
        "kind": "guards",
        "met": met,
        "verdict": "met" if met else "not-met",
        "reason": reason,
        "firing": [r["alert"] for r in rows if r["state"] == "firing" and not r["ignored"]],
        "pending": [r["alert"] for r in rows if r["state"] == "pending"],
        "ignored_firing": [r["alert"] for r in rows if r["ignored"]],
        "checks": rows,
    }


def judge(
    *, alert: str, cmp: Comparison | None, state: str, condition_true: bool, values: Sequence[float]
) -> AlertCheck:
    """The verdict on answers obtained elsewhere (e.g. in a batch): the same rules as ``check_alert``."""
    known = {"alert": alert, "threshold": cmp.threshold if cmp else None, "op": cmp.op if cmp else None}
    return _judge(known, cmp=cmp, state=state, condition_true=condition_true, values=values)


def unknown(*, alert: str, cmp: Comparison | None, state: str, reason: str) -> AlertCheck:
    """A check that got no answer, as ``check_alert`` reports one."""
    known = {"alert": alert, "threshold": cmp.threshold if cmp else None, "op": cmp.op if cmp else None}
    return _unknown(known, state=state, reason=reason)


# chaoslib calls probes by module path, so a runner in the same process that has just
# judged the same alerts hands its answers over through this one slot (as the runner's
# control does with its session): a probe then answers from them instead of asking again.
RecentAnswers = Callable[[str, str, str], "AlertCheck | None"]  # (url, alert, expr) → a fresh check
# (url, guard alerts, ignore filters) → every guard's fresh check, or None
RecentGuards = Callable[[str, Sequence[str], Sequence[AlertFilter]], "list[HypothesisCheck] | None"]
_RECENT: list[RecentAnswers] = []
_RECENT_GUARDS: list[RecentGuards] = []


@contextlib.contextmanager
def answers_from(lookup: RecentAnswers, guards: RecentGuards | None = None) -> Iterator[None]:
    """For the block's duration, ``alert_quiet`` first asks ``lookup`` for a fresh check,
    and ``guards_quiet`` asks ``guards`` for fresh checks of its guard alerts."""
    _RECENT[:] = [lookup]
    _RECENT_GUARDS[:] = [guards] if guards is not None else []
    try:
        yield
    finally:
        _RECENT.clear()
        _RECENT_GUARDS.clear()


def _recent(url: str, alert: str, expr: str) -> AlertCheck | None:
    if not _RECENT:
        return None
    try:
        return _RECENT[0](url, alert, expr)
    except Exception:  # a broken lookup must not make a probe fail: ask Prometheus instead
        logger.exception("reusing a recent check of %s failed", alert)
        return None


def _recent_guards(
    url: str, alerts: Sequence[str], ignore: Sequence[AlertFilter]
) -> list[HypothesisCheck] | None:
    if not _RECENT_GUARDS:
        return None
    try:
        return _RECENT_GUARDS[0](url, alerts, ignore)
    except Exception:  # as for _recent: ask Prometheus instead
        logger.exception("reusing the recent checks of the guards %s failed", ", ".join(alerts))
        return None
