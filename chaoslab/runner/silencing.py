"""Alertmanager silences around steps: a planned fault must not page the on-call, while
chaoslab keeps judging the SLOs itself (a silence mutes notifications, not evaluation).

With ``scope: target`` each step gets silences for the alerts bound to the services it
can affect (its own, and those a NetworkChaos ``target`` selects) and the system-wide
paging ones, created before its fault and expired when the step ends, however it ends.
With ``scope: gameday`` every alert of the catalog is silenced once, before the first
fault, and expired when the run ends.

Matchers are exact: one silence per distinct static label set of the rules, matching
``alertname`` (one name, or an alternation of exact names) and each static label, plus
the game day's ``extraMatchers``. A silence that matches everything is never made.

Silences are short-lived: ``endsAt`` is ``ttl`` ahead and a thread pushes it forward
every ``renew`` seconds while they are needed, so a killed run's silences lapse by
themselves. Alertmanager may answer an update with a new id; the new id is kept.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from chaoslab.errors import AlertmanagerError
from chaoslab.model import (
    AlertRule,
    Catalog,
    Matcher,
    NetworkChaos,
    Service,
    SilenceRecord,
    SilenceScope,
    SilenceSpec,
    Step,
)
from chaoslab.ports import SilencePort
from chaoslab.prometheus.bindings import conditions_for_catalog
from chaoslab.prometheus.hypothesis import bind_alerts

logger = logging.getLogger(__name__)

Warn = Callable[[str], None]
JOIN_S = 10.0  # at most one renewal in flight to wait for when closing


def comment_prefix(run_id: str) -> str:
    """How every silence comment of a run begins (``chaoslab cleanup --run-id`` finds them by it)."""
    return f"chaoslab run {run_id}:"


def silence_matchers(rules: Sequence[AlertRule], extra: Sequence[Matcher] = ()) -> list[tuple[Matcher, ...]]:
    """One matcher set per distinct static label set of ``rules`` (templated label values
    cannot be matched statically and are left out), each with ``alertname`` first."""
    groups: dict[tuple[tuple[str, str], ...], list[str]] = {}
    for rule in rules:
        labels = tuple(sorted((k, v) for k, v in rule.labels.items() if "{{" not in v and k != "alertname"))
        names = groups.setdefault(labels, [])
        if rule.name not in names:
            names.append(rule.name)
    result = []
    for labels, names in groups.items():
        if len(names) == 1:
            alert = Matcher(name="alertname", value=names[0])
        else:
            alert = Matcher(name="alertname", value="|".join(re.escape(n) for n in names), is_regex=True)
        result.append((alert, *(Matcher(name=k, value=v) for k, v in labels), *extra))
    return result


def affected_services(step: Step, catalog: Catalog) -> list[Service]:
    """The step's service, and the catalog services a NetworkChaos ``target`` selects (their
    label selectors and the target's narrow one another, in the target's namespaces)."""
    services = [step.service]
    fault = step.fault
    if isinstance(fault, NetworkChaos) and fault.target is not None:
        wanted = fault.target.selector
        namespaces = wanted.namespaces or (step.service.namespace,)
        target = dict(wanted.label_selectors).items()
        for service in catalog.services:
            labels = dict(service.selector.label_selectors).items()
            overlap = bool(labels and target) and (labels <= target or target <= labels)
            if service.name != step.service.name and service.namespace in namespaces and overlap:
                services.append(service)
    return services


def step_rules(step: Step, rules: Sequence[AlertRule], catalog: Catalog) -> list[AlertRule]:
    """The alerts of the services the step can affect (``affected_services``), and the
    global ones; each rule once."""
    found: dict[tuple[str, str], AlertRule] = {}
    for service in affected_services(step, catalog):
        for binding in bind_alerts(service, rules, catalog):
            found.setdefault((binding.rule.name, binding.rule.expr), binding.rule)
    return list(found.values())


def gameday_rules(rules: Sequence[AlertRule], catalog: Catalog) -> list[AlertRule]:
    """Every alert bound to a catalog service, and the global ones."""
    return [b.rule for b in conditions_for_catalog(catalog, rules)]


@dataclass(slots=True, kw_only=True)
class _Live:
    """A silence being kept alive (mutable: the renewal thread moves it forward)."""

    record: SilenceRecord
    starts_at: datetime
    comment: str
    renew: bool = True


@dataclass(slots=True, kw_only=True)
class Silencer:
    """The run's silences: ``begin`` before a step's fault, ``end`` when the step ends,
    ``close`` when the run ends (also after an error or a signal)."""

    port: SilencePort
    spec: SilenceSpec
    run_id: str
    rules: Sequence[AlertRule]
    catalog: Catalog
    ttl_s: float = 120.0
    renew_s: float = 30.0
    warn: Warn = logger.warning
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    _live: list[_Live] = field(default_factory=list)
    _done: list[SilenceRecord] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _wide: bool = False  # the game-day-wide silences exist

    @property
    def records(self) -> tuple[SilenceRecord, ...]:
        with self._lock:
            return (*self._done, *(live.record for live in self._live))

    def begin(self, step: Step) -> str | None:
        """Silence what the step's fault may trip, before it is injected. Returns why the
        step must not start (Alertmanager unreachable and the silence required), else None."""
        if self.spec.scope is SilenceScope.GAMEDAY:
            if self._wide:
                return None
            rules, owner = gameday_rules(self.rules, self.catalog), None
            comment = f"{comment_prefix(self.run_id)} game day, the SLO alerts of catalog {self.catalog.name}"
        else:
            rules, owner = step_rules(step, self.rules, self.catalog), step.name
            comment = (f"{comment_prefix(self.run_id)} step {step.name}, planned {step.fault.kind.value} "
                       f"{step.fault.action.value} on {step.service.name}")
        comment += "; the SLOs are still judged by chaoslab"
        created: list[_Live] = []
        try:
            for matchers in silence_matchers(rules, self.spec.extra_matchers):
                created.append(self._create(matchers, comment=comment, step=owner))
        except AlertmanagerError as exc:
            self._expire_all(created)
            if self.spec.required:
                return f"cannot silence the alerts in Alertmanager: {exc}"
            self.warn(f"{step.name}: cannot silence the alerts, going on without silences "
                      f"(silence.required: false): {exc}")
            return None
        self._wide = self.spec.scope is SilenceScope.GAMEDAY
        logger.info("%s: %d silences until %s", step.name, len(created), self.clock() + self._ttl)
        self._start_renewing()
        return None

    def end(self, step: Step) -> None:
        """The step ended: expire its own silences (a game day's stay until ``close``)."""
        with self._lock:
            mine = [live for live in self._live if live.record.step == step.name]
        self._expire_all(mine)

    def close(self) -> None:
        """Stop renewing and expire every silence still alive. Safe to call twice."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=JOIN_S)
        with self._lock:
            remaining = list(self._live)
        self._expire_all(remaining)

    # --- plumbing ----------------------------------------------------------------------

    @property
    def _ttl(self) -> timedelta:
        return timedelta(seconds=self.ttl_s)

    def _create(self, matchers: tuple[Matcher, ...], *, comment: str, step: str | None) -> _Live:
        now = self.clock()
        silence_id, starts_at = self.port.put(matchers, starts_at=now, ends_at=now + self._ttl,
                                              comment=comment)
        live = _Live(record=SilenceRecord(id=silence_id, matchers=matchers, created_at=now,
                                          ends_at=now + self._ttl, step=step),
                     starts_at=starts_at, comment=comment)
        with self._lock:
            self._live.append(live)
        return live

    def _expire_all(self, lives: Sequence[_Live]) -> None:
        for live in lives:
            with self._lock:
                if live not in self._live:
                    continue
                self._live.remove(live)
            record = live.record
            try:
                self.port.expire(record.id)
                record = replace(record, expired_at=self.clock())
            except AlertmanagerError as exc:
                self.warn(f"cannot expire silence {record.id}; it lapses by itself at "
                          f"{record.ends_at.isoformat(timespec='seconds')}: {exc}")
                record = replace(record, error=str(exc))
            with self._lock:
                self._done.append(record)

    def _start_renewing(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._renew_loop, name="chaoslab-silences", daemon=True)
            self._thread.start()

    def _renew_loop(self) -> None:
        while not self._stop.wait(self.renew_s):
            with self._lock:
                lives = list(self._live)
            for live in lives:
                self._renew(live)

    def _renew(self, live: _Live) -> None:
        ends_at = self.clock() + self._ttl
        record = live.record
        try:
            new_id, starts_at = self.port.put(record.matchers, starts_at=live.starts_at, ends_at=ends_at,
                                              comment=live.comment, silence_id=record.id)
        except AlertmanagerError as exc:
            logger.warning("cannot renew silence %s (it ends at %s unless renewed): %s",
                           record.id, record.ends_at, exc)
            live.record = replace(record, error=str(exc))
            return
        with self._lock:
            if live not in self._live:
                # Expired meanwhile: the renewal may have made a new silence; end it too.
                expire_late = new_id != record.id
            else:
                expire_late = False
                live.starts_at = starts_at
                live.record = replace(record, id=new_id, ends_at=ends_at, renewals=record.renewals + 1,
                                      error="")
        if expire_late:
            try:
                self.port.expire(new_id)
            except AlertmanagerError as exc:
                logger.warning("cannot expire silence %s: %s", new_id, exc)
