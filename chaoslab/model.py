"""The domain model: frozen dataclasses and enums, no I/O.

Everything that flows between chaoslab's layers is one of these values.
Dicts exist only at the edges (YAML input, Chaos Mesh manifests, Chaos Toolkit
documents, Prometheus JSON, reports) and are converted once, in their adapter.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, time
from enum import IntEnum, StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from chaoslab.pdca_model import PdcaRecord, TimelineEvent

API_VERSION = "chaoslab/v1"
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY_VALUE = "chaoslab"
EXPERIMENT_LABEL = "chaoslab.io/experiment"
RUN_ID_LABEL = "chaoslab.io/run-id"
STEP_LABEL = "chaoslab.io/step"


class Tier(IntEnum):
    """Service tier. Sorting puts non-core first, which is the run order."""

    NON_CORE = 0
    CORE = 1

    @property
    def label(self) -> str:
        return "non-core" if self is Tier.NON_CORE else "core"

    @classmethod
    def parse(cls, text: str) -> Tier:
        for tier in cls:
            if tier.label == text:
                return tier
        raise ValueError(f"unknown tier {text!r} (expected non-core or core)")

    def __str__(self) -> str:
        return self.label


class Verdict(StrEnum):
    HELD = "held"
    DEVIATED = "deviated"
    HALTED = "halted"
    BASELINE_NOT_MET = "baseline-not-met"
    ERROR = "error"
    SKIPPED = "skipped"


class Mode(StrEnum):
    ONE = "one"
    ALL = "all"
    FIXED = "fixed"
    FIXED_PERCENT = "fixed-percent"
    RANDOM_MAX_PERCENT = "random-max-percent"


class NetworkAction(StrEnum):
    NETEM = "netem"
    DELAY = "delay"
    LOSS = "loss"
    DUPLICATE = "duplicate"
    CORRUPT = "corrupt"
    PARTITION = "partition"
    BANDWIDTH = "bandwidth"


class Direction(StrEnum):
    TO = "to"
    FROM = "from"
    BOTH = "both"


class PodAction(StrEnum):
    POD_KILL = "pod-kill"
    POD_FAILURE = "pod-failure"
    CONTAINER_KILL = "container-kill"


class Gate(StrEnum):
    STOP = "stop"
    CONTINUE = "continue"


class ChaosKind(StrEnum):
    NETWORK_CHAOS = "NetworkChaos"
    POD_CHAOS = "PodChaos"


# --- selectors ---------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class ExpressionRequirement:
    key: str
    operator: str  # In | NotIn | Exists | DoesNotExist
    values: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Selector:
    """A Chaos Mesh PodSelectorSpec. Empty fields are unset."""

    namespaces: tuple[str, ...] = ()
    label_selectors: Mapping[str, str] = field(default_factory=dict)
    expression_selectors: tuple[ExpressionRequirement, ...] = ()
    annotation_selectors: Mapping[str, str] = field(default_factory=dict)
    field_selectors: Mapping[str, str] = field(default_factory=dict)
    pod_phase_selectors: tuple[str, ...] = ()
    nodes: tuple[str, ...] = ()
    node_selectors: Mapping[str, str] = field(default_factory=dict)
    pods: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def describe(self) -> str:
        """Short human form, e.g. ``app=payment``."""
        parts = [f"{k}={v}" for k, v in sorted(self.label_selectors.items())]
        parts += [
            f"{e.key} {e.operator} ({','.join(e.values)})" if e.values else f"{e.key} {e.operator}"
            for e in self.expression_selectors
        ]
        parts += [f"@{k}={v}" for k, v in sorted(self.annotation_selectors.items())]
        parts += [f"{k}={v}" for k, v in sorted(self.field_selectors.items())]
        if self.pod_phase_selectors:
            parts.append("phase in (" + ",".join(self.pod_phase_selectors) + ")")
        for ns, names in sorted(self.pods.items()):
            parts.append(f"pods {ns}/{','.join(names)}")
        return ", ".join(parts) or "<every pod>"


@dataclass(frozen=True, slots=True, kw_only=True)
class Service:
    name: str
    namespace: str
    tier: Tier
    selector: Selector
    owner: str | None = None
    alerts: tuple[str, ...] = ()


# --- guard alerts ------------------------------------------------------------------

DEFAULT_GUARD_SEVERITIES = ("critical", "page")


@dataclass(frozen=True, slots=True, kw_only=True)
class LabelMatcher:
    """One PromQL label matcher: ``name op "value"`` with op ``=``, ``!=``, ``=~`` or ``!~``."""

    name: str
    op: str
    value: str

    def matches(self, labels: Mapping[str, str]) -> bool:
        """As Prometheus: a missing label is the empty string; regexes are fully anchored."""
        actual = labels.get(self.name, "")
        if self.op in ("=", "!="):
            return (actual == self.value) is (self.op == "=")
        return (re.fullmatch(self.value, actual) is not None) is (self.op == "=~")


@dataclass(frozen=True, slots=True, kw_only=True)
class AlertFilter:
    """An entry of ``guards.matchers`` or ``guards.ignore``: an alert name, or label
    matchers that must all match (``alertname`` is one of the labels). ``text`` is the
    entry as written."""

    text: str
    alert: str | None = None
    matchers: tuple[LabelMatcher, ...] = ()

    def matches(self, name: str, labels: Mapping[str, str]) -> bool:
        if self.alert is not None:
            return name == self.alert
        merged = {**labels, "alertname": name}
        return all(m.matches(merged) for m in self.matchers)


@dataclass(frozen=True, slots=True, kw_only=True)
class GuardPolicy:
    """Which alerts bound to no service are guards, judged by their state in Prometheus.

    An unbound alert is a guard when its ``severity`` label is one of ``severities`` and
    it matches every entry of ``matchers``. Guards matched by ``ignore`` never halt; when
    they fire, the run record says so."""

    severities: tuple[str, ...] = DEFAULT_GUARD_SEVERITIES
    matchers: tuple[AlertFilter, ...] = ()
    ignore: tuple[AlertFilter, ...] = ()

    def selects(self, name: str, labels: Mapping[str, str]) -> bool:
        # Without a severity label, an SLO generator's own counts (Sloth: sloth_severity).
        if labels.get("severity", labels.get("sloth_severity")) not in self.severities:
            return False
        return all(m.matches(name, labels) for m in self.matchers)

    def ignores(self, name: str, labels: Mapping[str, str]) -> bool:
        return any(entry.matches(name, labels) for entry in self.ignore)


@dataclass(frozen=True, slots=True, kw_only=True)
class Catalog:
    name: str
    services: tuple[Service, ...]
    source: Path | None = field(default=None, compare=False)  # where it was read; not its value
    guards: GuardPolicy = field(default_factory=GuardPolicy)  # a game day's guards refine these

    def get(self, name: str) -> Service | None:
        for service in self.services:
            if service.name == name:
                return service
        return None


# --- faults ------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Reorder:
    reorder: str
    gap: int
    correlation: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Delay:
    latency: str
    jitter: str | None = None
    correlation: str | None = None
    reorder: Reorder | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Loss:
    loss: str
    correlation: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Duplicate:
    duplicate: str
    correlation: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Corrupt:
    corrupt: str
    correlation: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Bandwidth:
    rate: str
    limit: int
    buffer: int
    peakrate: int | None = None
    minburst: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class NetworkTarget:
    """The other side of a NetworkChaos (``spec.target``)."""

    selector: Selector
    mode: Mode
    value: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class NetworkChaos:
    action: NetworkAction
    mode: Mode
    duration: str
    value: str | None = None
    selector: Selector | None = None  # narrows the service's selector
    direction: Direction = Direction.TO
    target: NetworkTarget | None = None
    external_targets: tuple[str, ...] = ()
    device: str | None = None
    target_device: str | None = None
    delay: Delay | None = None
    loss: Loss | None = None
    duplicate: Duplicate | None = None
    corrupt: Corrupt | None = None
    bandwidth: Bandwidth | None = None

    @property
    def kind(self) -> ChaosKind:
        return ChaosKind.NETWORK_CHAOS


@dataclass(frozen=True, slots=True, kw_only=True)
class PodChaos:
    action: PodAction
    mode: Mode
    duration: str
    value: str | None = None
    selector: Selector | None = None
    grace_period: int | None = None
    container_names: tuple[str, ...] = ()

    @property
    def kind(self) -> ChaosKind:
        return ChaosKind.POD_CHAOS


Fault = NetworkChaos | PodChaos


# --- experiments and game days ------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Experiment:
    """One fault against one service. ``service`` names a catalog entry;
    ``target`` is an inline service used instead of the catalog."""

    name: str
    fault: Fault
    service: str | None = None
    target: Service | None = None
    description: str = ""
    tags: tuple[str, ...] = ()
    rules: tuple[Path, ...] = ()
    source: Path | None = field(default=None, compare=False)  # where it was read; not its value
    readiness: bool | None = None  # check the target's pods (None: the game day's setting)


@dataclass(frozen=True, slots=True, kw_only=True)
class RampLevel:
    mode: Mode
    value: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class MatrixFault:
    name: str
    fault: Fault


@dataclass(frozen=True, slots=True, kw_only=True)
class Matrix:
    """Fault templates crossed with catalog services.

    ``services`` is ``None`` for all, a tier, or explicit names."""

    faults: tuple[MatrixFault, ...]
    services: Tier | tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Safety:
    allow_namespaces: tuple[str, ...] = ()
    max_percent: int | None = None
    allow_kube_system: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Window:
    days: tuple[str, ...]  # mon..sun
    start: time
    end: time
    timezone: str


class SilenceScope(StrEnum):
    TARGET = "target"  # per step: the alerts of the step's hypothesis
    GAMEDAY = "gameday"  # for the whole run: every alert of the catalog


@dataclass(frozen=True, slots=True, kw_only=True)
class Matcher:
    """An Alertmanager matcher: ``name="value"``, ``!=``, ``=~`` or ``!~``."""

    name: str
    value: str
    is_regex: bool = False
    is_equal: bool = True

    def describe(self) -> str:
        op = ("=" if self.is_equal else "!=") if not self.is_regex else ("=~" if self.is_equal else "!~")
        escaped = self.value.replace("\\", "\\\\").replace('"', '\\"')
        return f'{self.name}{op}"{escaped}"'


@dataclass(frozen=True, slots=True, kw_only=True)
class SilenceSpec:
    """``spec.silence`` of a game day: mute notifications for the alerts a fault may trip."""

    alertmanager: str | None = None  # the URL; --alertmanager / CHAOSLAB_ALERTMANAGER_URL win
    scope: SilenceScope = SilenceScope.TARGET
    extra_matchers: tuple[Matcher, ...] = ()
    required: bool = True  # False: an unreachable Alertmanager is a warning, not an error


@dataclass(frozen=True, slots=True, kw_only=True)
class GameDay:
    name: str
    catalog: Catalog
    experiments: tuple[Experiment, ...] = ()
    rules: tuple[Path, ...] = ()
    matrix: Matrix | None = None
    blast_radius: tuple[RampLevel, ...] = ()
    gate: Gate = Gate.STOP
    safety: Safety = field(default_factory=Safety)
    window: Window | None = None
    recovery_timeout_s: float = 120.0
    description: str = ""
    source: Path | None = field(default=None, compare=False)  # where it was read; not its value
    recovery_target_s: float = 60.0  # slower recovery than this is a finding (spec.recoveryTarget)
    readiness: bool = True  # the target's pods are part of every step's hypothesis
    silence: SilenceSpec | None = None


# --- plan ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Step:
    """One fault injection: an experiment (with ramp overrides applied) on a service."""

    name: str
    experiment: Experiment
    service: Service
    level: int = 0  # index in the blast-radius ramp, 0 without a ramp
    refusal: str | None = None  # a safety rule that refuses this step, found at plan time

    @property
    def fault(self) -> Fault:
        return self.experiment.fault


@dataclass(frozen=True, slots=True, kw_only=True)
class Stage:
    tier: Tier
    steps: tuple[Step, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Plan:
    gameday: GameDay
    stages: tuple[Stage, ...]
    excluded: tuple[str, ...] = ()  # matrix services left out by the safety rules, and why

    @property
    def steps(self) -> tuple[Step, ...]:
        return tuple(step for stage in self.stages for step in stage.steps)


# --- Prometheus --------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class AlertRule:
    name: str
    expr: str
    for_s: float = 0.0
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    group: str = ""
    interval_s: float | None = None
    source: str = ""  # file path or k8s://namespace/name
    # Seconds of the window of each recording rule ``expr`` reads, by metric name, found
    # from the recording rules loaded with it (chaoslab.prometheus.recordings.link_windows).
    windows: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class AlertState:
    name: str
    state: str  # inactive | pending | firing
    labels: Mapping[str, str] = field(default_factory=dict)
    active_at: datetime | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Sample:
    labels: Mapping[str, str]
    value: float
    timestamp: float


@dataclass(frozen=True, slots=True, kw_only=True)
class Series:
    labels: Mapping[str, str]
    points: tuple[tuple[float, float], ...]


# --- backend -------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class FaultRequest:
    """What a backend is asked to inject."""

    experiment: str
    step: str
    service: Service
    fault: Fault
    run_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class FaultHandle:
    """A fault object that exists (or existed) in a backend."""

    kind: ChaosKind
    name: str
    namespace: str
    run_id: str | None = None
    experiment: str | None = None
    created_at: datetime | None = None

    @property
    def ref(self) -> str:
        return f"{self.kind.value.lower()}/{self.name} in {self.namespace}"


@dataclass(frozen=True, slots=True, kw_only=True)
class PodState:
    """One pod a service's selector matches, as the backend sees it now."""

    name: str
    namespace: str
    phase: str  # Pending | Running | Succeeded | Failed | Unknown
    ready: bool
    restarts: int = 0  # container restarts, summed over the pod's containers
    reason: str = ""  # why it is not ready, when the backend knows

    @property
    def ref(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def serving(self) -> bool:
        return self.phase == "Running" and self.ready


@dataclass(frozen=True, slots=True, kw_only=True)
class PreflightResult:
    matched: tuple[str, ...]  # namespace/name of every running pod the selector matches
    will_hit: int  # how many of them the mode selects
    description: str = ""


# --- durations -------------------------------------------------------------------

_GO_DURATION = re.compile(r"^(?:(\d+(?:\.\d+)?|\.\d+)(ns|us|µs|ms|s|m|h))+$")
GO_DURATION_PATTERN = _GO_DURATION.pattern  # for the JSON Schema of the files
_GO_PART = re.compile(r"(\d+(?:\.\d+)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_UNIT_SECONDS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}


def parse_go_duration(text: str) -> float:
    """Seconds in a Go duration such as ``90s``, ``1.5h`` or ``2h45m``.

    Raises ValueError for anything Go's ``time.ParseDuration`` would reject,
    and for signs, which are meaningless for a fault's length."""
    if not isinstance(text, str) or not _GO_DURATION.match(text):
        raise ValueError(f"{text!r} is not a Go duration such as 30s, 1.5m or 2h45m")
    return sum(float(num) * _UNIT_SECONDS[unit] for num, unit in _GO_PART.findall(text))


def format_seconds(seconds: float) -> str:
    """The shortest Go duration for a number of seconds: 90 → ``90s``, 0.5 → ``500ms``."""
    if seconds < 1:
        return f"{round(seconds * 1000)}ms"
    if float(seconds).is_integer():
        return f"{int(seconds)}s"
    return f"{seconds:g}s"


# --- run results -------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class HypothesisCheck:
    """One evaluation of one alert: its state and whether its condition holds right now.

    ``met`` is True only when the alert is neither pending nor firing and its condition is
    false. A check that could not get data is never met (``no_data`` says why it failed)."""

    alert: str
    met: bool
    service: str | None = None  # None for a global alert
    state: str | None = None  # inactive | pending | firing | None when unknown
    condition_true: bool | None = None
    value: float | None = None
    threshold: float | None = None
    margin: float | None = None
    reason: str = ""
    no_data: bool = False
    at: datetime | None = None
    guard: bool = False  # a guard alert, judged by its state only
    ignored: bool = False  # a guard firing but matched by guards.ignore: it did not halt


@dataclass(frozen=True, slots=True, kw_only=True)
class HaltRecord:
    """Why and when a fault was halted. ``breach_at`` is the first Prometheus sample where
    the condition held, found after the fact; ``None`` when it cannot be found."""

    condition: str
    detected_at: datetime
    removed_at: datetime | None = None
    breach_at: datetime | None = None
    kind: str = "condition"  # condition | alert-state | no-data | signal
    leg: LegHalt | None = None  # when the halt came from a fast leg of a multi-window alert


@dataclass(frozen=True, slots=True, kw_only=True)
class StepResult:
    step: str
    experiment: str
    service: str
    tier: Tier
    kind: ChaosKind
    action: str
    mode: Mode
    verdict: Verdict
    value: str | None = None
    reason: str = ""
    started_at: datetime | None = None
    ended_at: datetime | None = None
    halt: HaltRecord | None = None
    recovery_s: float | None = None
    before: tuple[HypothesisCheck, ...] = ()
    during: tuple[HypothesisCheck, ...] = ()
    after: tuple[HypothesisCheck, ...] = ()
    journal: str | None = None  # path relative to the run directory
    injected: bool = False
    # Guard alerts seen pending or firing (ignored or not) at any point of the step, each
    # alert and state once, first sighting: what did not halt is recorded all the same.
    guards: tuple[HypothesisCheck, ...] = ()
    failed_attempts: tuple[str, ...] = ()  # injection attempts that failed before it took hold
    events: tuple[TimelineEvent, ...] = ()  # what the runner saw happen, in order (the PDCA timeline)
    inject_error: str | None = None  # why the injection (or its preflight) failed
    pods: PodReport | None = None  # the target's pods, when readiness was checked


@dataclass(frozen=True, slots=True, kw_only=True)
class PodReport:
    """The target's pods around a step: before the fault, after the removal, and what changed."""

    before: tuple[PodState, ...] = ()
    after: tuple[PodState, ...] = ()
    restarted: tuple[str, ...] = ()  # refs whose restart count rose during the step
    replaced: tuple[str, ...] = ()  # refs present before and gone after
    added: tuple[str, ...] = ()  # refs that appeared during the step (the replacements)
    ready_s: float | None = None  # seconds after the removal until as many pods served again
    reason: str = ""  # why the pods did not count as ready (before or after)


@dataclass(frozen=True, slots=True, kw_only=True)
class RunResult:
    run_id: str
    gameday: str
    target: str
    started_at: datetime
    ended_at: datetime
    verdict: Verdict
    steps: tuple[StepResult, ...] = ()
    remaining: tuple[str, ...] = ()  # faults that may remain after a failed cleanup
    interrupted: str | None = None  # the signal that ended the run, if any
    dry_run: bool = False
    directory: Path | None = None  # where run.json and the journals were written
    interrupted_phase: str | None = None  # where the run was when ``interrupted`` arrived
    pdca: PdcaRecord | None = None  # the Plan-Do-Check-Act record (None for a dry run)
    record_error: str | None = None  # why the PDCA record or the checklist could not be written
    silences: tuple[SilenceRecord, ...] = ()  # Alertmanager silences the run created
    trace_id: str | None = None  # the OpenTelemetry trace of the run, when traced


@dataclass(frozen=True, slots=True, kw_only=True)
class LegReading:
    """One leg of a multi-window alert, read when a fault was halted: ``ratio op threshold``
    over ``window``; ``value`` is the ratio then (None: no data)."""

    window: str  # as Prometheus writes durations: 5m, 1h
    ratio: str
    op: str
    threshold: float
    value: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class LegHalt:
    """A halt on the fast leg of a multi-window alert, and what the full alert still needed.

    ``needs`` are the other legs of the halting conjunction; ``more_s`` is the estimated
    time until they would all hold at the pace they were rising (0: they held already;
    None: no estimate, e.g. a leg not rising)."""

    alert: str
    leg: LegReading
    needs: tuple[LegReading, ...] = ()
    more_s: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class SilenceRecord:
    """One Alertmanager silence a run created: its last id, what it matched, and when it
    was created and expired (None: not known to be expired; it then lapses by itself)."""

    id: str
    matchers: tuple[Matcher, ...]
    created_at: datetime
    ends_at: datetime  # the last endsAt sent
    expired_at: datetime | None = None
    step: str | None = None  # None for a game-day-wide silence
    renewals: int = 0
    error: str = ""  # the last failure talking to Alertmanager about it
