"""Fault blocks (``networkChaos`` / ``podChaos``) → ``NetworkChaos`` / ``PodChaos``.

The rules mirror the Chaos Mesh 2.8 CRD schemas and admission webhook, plus what
Chaos Mesh only finds out at run time (an action without its sub-spec) and
chaoslab's own rule that every fault has a duration.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Collection, Mapping
from pathlib import Path

from chaoslab.loader.document import type_name
from chaoslab.loader.fields import Fields, Where, check_duration, number_text
from chaoslab.loader.selectors import parse_selector
from chaoslab.model import (
    Bandwidth,
    Corrupt,
    Delay,
    Direction,
    Duplicate,
    Loss,
    Mode,
    NetworkAction,
    NetworkChaos,
    NetworkTarget,
    PodAction,
    PodChaos,
    Reorder,
    Selector,
)
from chaoslab.scope import NARROWING, selects_whole_namespace

FAULT_KEYS = ("networkChaos", "podChaos")
NETWORK_FIELDS = (
    "action", "mode", "value", "selector", "duration", "direction", "target", "externalTargets",
    "device", "targetDevice", "delay", "loss", "duplicate", "corrupt", "bandwidth",
)
POD_FIELDS = ("action", "mode", "value", "selector", "duration", "gracePeriod", "containerNames")
FAULT_REQUIRED = ("action", "mode")
DELAY_FIELDS, DELAY_REQUIRED = ("latency", "jitter", "correlation", "reorder"), ("latency",)
REORDER_FIELDS, REORDER_REQUIRED = ("reorder", "correlation", "gap"), ("reorder", "gap")
BANDWIDTH_FIELDS = ("rate", "limit", "buffer", "peakrate", "minburst")
BANDWIDTH_REQUIRED = ("rate", "limit", "buffer")
TARGET_FIELDS, TARGET_REQUIRED = ("selector", "mode", "value"), ("selector", "mode")
_UNSUPPORTED = {
    "remoteCluster": "remoteCluster is not supported: chaoslab injects into the cluster it is connected to",
    "rate": "the netem 'rate' field is not supported; use action: bandwidth",
}
NETEM_SPECS = ("delay", "loss", "duplicate", "corrupt")
# Which sub-specs each action needs (all of) or allows (netem: at least one of).
_ACTION_SPECS: dict[NetworkAction, tuple[str, ...]] = {
    NetworkAction.DELAY: ("delay",),
    NetworkAction.LOSS: ("loss",),
    NetworkAction.DUPLICATE: ("duplicate",),
    NetworkAction.CORRUPT: ("corrupt",),
    NetworkAction.BANDWIDTH: ("bandwidth",),
    NetworkAction.NETEM: NETEM_SPECS,
    NetworkAction.PARTITION: (),
}
_TC_DURATION = re.compile(r"^[0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h)$")
TC_DURATION_PATTERN = _TC_DURATION.pattern
_DECIMAL = re.compile(r"^([0-9]+(\.[0-9]*)?|\.[0-9]+)$")
_RATE = re.compile(r"^\s*([0-9]+)\s*(bit|kbit|mbit|gbit|tbit|bps|kbps|mbps|gbps|tbps)\s*$", re.IGNORECASE)
_HOST_LABEL = r"[A-Za-z0-9]([-A-Za-z0-9]{0,61}[A-Za-z0-9])?"
_HOST = re.compile(rf"^(?=.{{1,253}}$){_HOST_LABEL}(\.{_HOST_LABEL})*$")
_WHOLE = re.compile(r"^[0-9]+$")
_INT32_MAX = 2**31 - 1
_INT64_MAX = 2**63 - 1  # the webhook reads a fixed count with Go's strconv.Atoi
_UINT64_MAX = 2**64 - 1


# --- modes ---------------------------------------------------------------------


def check_mode_value(mode: Mode, value: object, where: Where) -> str | None:
    """``value`` for ``mode``, as the webhook checks it; numbers become strings."""
    if mode in (Mode.ONE, Mode.ALL):
        if value is None or value == "":
            return None
        # Chaos Mesh ignores it: `mode: all, value: "50"` would hit every pod, not half.
        hits = "one pod" if mode is Mode.ONE else "every matched pod"
        raise where.fail(f"mode {mode.value} takes no value (it always hits {hits}); "
                         "remove it, or use mode fixed or fixed-percent")
    if value is None:
        raise where.fail(f"is required with mode {mode.value}")
    text = number_text(value, where)
    # ASCII digits only: str.isdigit() also accepts '²' and '١', which Go's Atoi refuses.
    whole = bool(_WHOLE.match(text))
    if mode is Mode.FIXED and (not whole or not 1 <= int(text) <= _INT64_MAX):
        raise where.fail(f"mode fixed needs a whole number of pods ≥ 1, got {text!r}")
    percent = mode in (Mode.FIXED_PERCENT, Mode.RANDOM_MAX_PERCENT)
    if percent and (not whole or not 0 < int(text) <= 100):
        raise where.fail(f"mode {mode.value} needs a whole percentage in (0, 100], got {text!r}")
    return text


def parse_mode(fields: Fields) -> tuple[Mode, str | None]:
    mode = fields.enum("mode", Mode)
    return mode, check_mode_value(mode, fields.raw("value"), fields.at("value"))


# --- small values ----------------------------------------------------------------


def _percent(fields: Fields, key: str) -> str:
    where = fields.at(key)
    text = number_text(fields.raw(key), where)
    if not _DECIMAL.match(text) or not 0 <= float(text) <= 100:
        raise where.fail(f"must be a percentage from \"0\" to \"100\", got {text!r}")
    return text


def _opt_percent(fields: Fields, key: str) -> str | None:
    return _percent(fields, key) if key in fields else None


def _tc_time(fields: Fields, key: str) -> str:
    value = fields.raw(key)
    if not isinstance(value, str) or not _TC_DURATION.match(value):
        shown = repr(value) if isinstance(value, str) else type_name(value)
        raise fields.at(key).fail(f"must be a number and one unit (ns, us, ms, s, m, h) such as 200ms, "
                                  f"got {shown}")
    return value


def _check_external_target(text: str, where: Where) -> None:
    host, _, port = text.rpartition(":") if text.count(":") == 1 or "]:" in text else (text, "", "")
    if port and (not _WHOLE.match(port) or not 0 < int(port) < 65536):
        raise where.fail(f"{text!r}: port {port!r} is not 1-65535")
    try:
        ipaddress.ip_network(host.strip("[]"), strict=False)
        return
    except ValueError:
        pass
    if not _HOST.match(host):
        raise where.fail(f"{text!r} is not an IP address, a CIDR or a domain name (optionally with :port)")


# --- sub-specs -------------------------------------------------------------------


def _delay(fields: Fields) -> Delay:
    spec = fields.sub("delay", allowed=DELAY_FIELDS, required=DELAY_REQUIRED)
    assert spec is not None  # the caller checked it is present
    reorder = None
    sub = spec.sub("reorder", allowed=REORDER_FIELDS, required=REORDER_REQUIRED)
    if sub is not None:
        reorder = Reorder(reorder=_percent(sub, "reorder"), gap=sub.integer("gap", minimum=0),
                          correlation=_opt_percent(sub, "correlation"))
    return Delay(
        latency=_tc_time(spec, "latency"),
        jitter=_tc_time(spec, "jitter") if "jitter" in spec else None,
        correlation=_opt_percent(spec, "correlation"),
        reorder=reorder,
    )


def _bandwidth(fields: Fields) -> Bandwidth:
    spec = fields.sub("bandwidth", allowed=BANDWIDTH_FIELDS, required=BANDWIDTH_REQUIRED)
    assert spec is not None
    rate = number_text(spec.raw("rate"), spec.at("rate"))
    match = _RATE.match(rate)
    if not match:
        raise spec.at("rate").fail(
            f"{rate!r} needs a whole number and a unit: bit, kbit, mbit, gbit, tbit (bits per second) "
            "or bps, kbps, mbps, gbps, tbps (bytes per second), e.g. 1mbps"
        )
    if int(match.group(1)) == 0:
        raise spec.at("rate").fail(f"{rate!r} must be more than zero")
    return Bandwidth(
        rate=rate,
        limit=spec.integer("limit", minimum=1, maximum=_INT32_MAX),
        buffer=spec.integer("buffer", minimum=1, maximum=_INT32_MAX),
        peakrate=spec.opt_integer("peakrate", minimum=0, maximum=_UINT64_MAX),
        minburst=spec.opt_integer("minburst", minimum=0, maximum=_INT32_MAX),
    )


def _one_value(fields: Fields, key: str) -> tuple[str, str | None]:
    spec = fields.sub(key, allowed=(key, "correlation"), required=(key,))
    assert spec is not None
    return _percent(spec, key), _opt_percent(spec, "correlation")


def _loss(fields: Fields) -> Loss | None:
    if "loss" not in fields:
        return None
    loss, correlation = _one_value(fields, "loss")
    return Loss(loss=loss, correlation=correlation)


def _duplicate(fields: Fields) -> Duplicate | None:
    if "duplicate" not in fields:
        return None
    duplicate, correlation = _one_value(fields, "duplicate")
    return Duplicate(duplicate=duplicate, correlation=correlation)


def _corrupt(fields: Fields) -> Corrupt | None:
    if "corrupt" not in fields:
        return None
    corrupt, correlation = _one_value(fields, "corrupt")
    return Corrupt(corrupt=corrupt, correlation=correlation)


def _check_action_specs(fields: Fields, action: NetworkAction) -> None:
    wanted = _ACTION_SPECS[action]
    given = [key for key in (*NETEM_SPECS, "bandwidth") if key in fields]
    for key in given:
        if key in wanted:
            continue
        if key == "bandwidth":
            raise fields.at(key).fail(f"is set but action is {action.value}: bandwidth only goes with "
                                      "action bandwidth; remove it")
        combine = action.value in NETEM_SPECS or action is NetworkAction.NETEM
        raise fields.at(key).fail(
            f"is set but action is {action.value}: Chaos Mesh would apply it anyway; remove it"
            + (", or use action netem to combine delay, loss, duplicate and corrupt" if combine else "")
        )
    if action is NetworkAction.NETEM and not given:
        raise fields.at("action").fail("netem needs at least one of delay, loss, duplicate, corrupt")
    if action not in (NetworkAction.NETEM, NetworkAction.PARTITION) and action.value not in given:
        raise fields.at(action.value).fail(f"is required with action {action.value}")


def _direction_target(fields: Fields, action: NetworkAction) -> tuple[Direction, NetworkTarget | None]:
    direction = fields.enum("direction", Direction, default=Direction.TO)
    target = None
    sub = fields.sub("target", allowed=TARGET_FIELDS, required=TARGET_REQUIRED)
    if sub is not None:
        mode, value = parse_mode(sub)
        selector = parse_selector(sub.raw("selector"), sub.at("selector"), namespaces=True)
        target = NetworkTarget(selector=selector, mode=mode, value=value)
    if direction is Direction.TO:
        return direction, target
    if "externalTargets" in fields:
        # The webhook refuses it for every action but partition, which it does not check at
        # all; chaoslab holds partition to the same rule rather than guess what it would do.
        raise fields.at("externalTargets").fail(
            f"cannot be used with direction {direction.value} "
            "(Chaos Mesh only supports it with direction to)")
    if target is None:
        raise fields.at("direction").fail(
            f"direction {direction.value} needs target (the pods on the other side: selector and mode)")
    _check_injected_target(target, direction, sub)
    return direction, target


def _check_injected_target(target: NetworkTarget, direction: Direction, sub: Fields | None) -> None:
    """With ``from``/``both`` Chaos Mesh injects into the target pods too, so the
    target selector obeys the same rule as a service's: never a whole namespace."""
    if sub is None or not selects_whole_namespace(target.selector):
        return
    namespaces = ", ".join(target.selector.namespaces) or "the service's namespace"
    raise sub.at("selector").fail(
        f"direction {direction.value} injects into the target pods too, and this selector selects "
        f"every pod in {namespaces}; chaoslab refuses that: narrow it with {NARROWING}")


# --- kinds -----------------------------------------------------------------------


def _optional_selector(fields: Fields) -> Selector | None:
    if "selector" not in fields:
        return None
    return parse_selector(fields.raw("selector"), fields.at("selector"), namespaces=False)


def _require_duration(fields: Fields) -> str:
    if "duration" not in fields:
        raise fields.at("duration").fail("is required: chaoslab never runs a fault without an end "
                                         "(e.g. duration: 30s)")
    return check_duration(fields.raw("duration"), fields.at("duration"))


def parse_network_chaos(value: object, where: Where) -> NetworkChaos:
    fields = Fields(value, where, allowed=NETWORK_FIELDS, required=FAULT_REQUIRED,
                    unsupported=_UNSUPPORTED)
    action = fields.enum("action", NetworkAction)
    mode, mode_value = parse_mode(fields)
    _check_action_specs(fields, action)
    direction, target = _direction_target(fields, action)
    external = fields.text_list("externalTargets")
    for text, item in zip(external, fields.items("externalTargets"), strict=True):
        _check_external_target(text, item[1])
    return NetworkChaos(
        action=action, mode=mode, value=mode_value, duration=_require_duration(fields),
        selector=_optional_selector(fields),
        direction=direction, target=target, external_targets=external,
        device=fields.opt_text("device"), target_device=fields.opt_text("targetDevice"),
        delay=_delay(fields) if "delay" in fields else None,
        loss=_loss(fields), duplicate=_duplicate(fields), corrupt=_corrupt(fields),
        bandwidth=_bandwidth(fields) if "bandwidth" in fields else None,
    )


def parse_pod_chaos(value: object, where: Where) -> PodChaos:
    fields = Fields(value, where, allowed=POD_FIELDS, required=FAULT_REQUIRED,
                    unsupported={"remoteCluster": _UNSUPPORTED["remoteCluster"]})
    action = fields.enum("action", PodAction)
    mode, mode_value = parse_mode(fields)
    containers = fields.text_list("containerNames")
    if action is PodAction.CONTAINER_KILL and not containers:
        raise fields.at("containerNames").fail("container-kill needs containerNames (the containers to kill)")
    return PodChaos(
        action=action, mode=mode, value=mode_value, duration=_require_duration(fields),
        selector=_optional_selector(fields),
        grace_period=fields.opt_integer("gracePeriod", minimum=0),
        container_names=containers,
    )


def parse_fault(
    data: Mapping[str, object],
    *,
    path: str | Path | None,
    field_prefix: str,
    line: int | None = None,
    extra_keys: Collection[str] = (),
) -> NetworkChaos | PodChaos:
    """The fault in a block holding exactly one of ``networkChaos`` / ``podChaos``.

    ``field_prefix`` locates the block in its file (``spec.fault``); ``extra_keys`` are
    other keys the caller reads itself (a matrix fault's ``name``)."""
    where = Where(Path(path) if path is not None else None, field_prefix,
                  getattr(data, "line", None) or line)
    fields = Fields(data, where, allowed=(*FAULT_KEYS, *extra_keys))
    given = [key for key in FAULT_KEYS if key in fields]
    if len(given) != 1:
        raise where.fail("needs exactly one of networkChaos, podChaos" +
                         (", got both" if given else ""))
    if given[0] == "networkChaos":
        return parse_network_chaos(fields.raw("networkChaos"), fields.at("networkChaos"))
    return parse_pod_chaos(fields.raw("podChaos"), fields.at("podChaos"))
