"""Chaos Mesh netem and bandwidth sub-specs → model values, checked.
Split from ``manifest`` to keep each module small.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from chaoslab.model import (
    Bandwidth,
    Corrupt,
    Delay,
    Duplicate,
    Loss,
    NetworkAction,
    Reorder,
)
from chaoslab.sandbox.effects import parse_latency, parse_percent, parse_rate

if TYPE_CHECKING:
    from chaoslab.sandbox.manifest import _Reader

_NEEDS = {
    NetworkAction.DELAY: ("delay",),
    NetworkAction.LOSS: ("loss",),
    NetworkAction.DUPLICATE: ("duplicate",),
    NetworkAction.CORRUPT: ("corrupt",),
    NetworkAction.BANDWIDTH: ("bandwidth",),
    NetworkAction.NETEM: ("delay", "loss", "duplicate", "corrupt"),
}


def read_netem(r: _Reader, spec: dict[str, Any], action: NetworkAction) -> dict[str, Any]:
    """The sub-specs as model values, keyword arguments for ``NetworkChaos``."""
    needed = _NEEDS.get(action, ())
    if needed and not any(spec.get(key) for key in needed):
        # Chaos Mesh admits this and fails at run time; refuse it up front.
        raise r.fail(f"spec.{needed[0]}", f"action {action.value} needs one of: {', '.join(needed)}")
    result: dict[str, Any] = {}
    if spec.get("delay"):
        result["delay"] = _delay(r, spec["delay"])
    for key in ("loss", "duplicate", "corrupt"):
        if spec.get(key):
            raw = r.mapping(spec[key], f"spec.{key}", {key, "correlation"})
            amount = _percent(r, raw, key, f"spec.{key}", required=True) or "0"
            correlation = _percent(r, raw, "correlation", f"spec.{key}")
            if key == "loss":
                result[key] = Loss(loss=amount, correlation=correlation)
            elif key == "duplicate":
                result[key] = Duplicate(duplicate=amount, correlation=correlation)
            else:
                result[key] = Corrupt(corrupt=amount, correlation=correlation)
    if spec.get("bandwidth"):
        result["bandwidth"] = _bandwidth(r, spec["bandwidth"])
    return result


def _percent(r: _Reader, raw: dict[str, Any], key: str, path: str, *, required: bool = False) -> str | None:
    text = r.text(raw, key, path, required=required)
    if text is not None:
        try:
            parse_percent(text)
        except ValueError as exc:
            raise r.fail(f"{path}.{key}", str(exc)) from exc
    return text


def _delay(r: _Reader, raw: Any) -> Delay:
    raw = r.mapping(raw, "spec.delay", {"latency", "jitter", "correlation", "reorder"})
    latency = r.text(raw, "latency", "spec.delay", required=True) or ""
    jitter = r.text(raw, "jitter", "spec.delay")
    for key, text in (("latency", latency), ("jitter", jitter)):
        if text is not None:
            try:
                parse_latency(text)
            except ValueError as exc:
                raise r.fail(f"spec.delay.{key}", str(exc)) from exc
    reorder = None
    if raw.get("reorder"):
        ro = r.mapping(raw["reorder"], "spec.delay.reorder", {"reorder", "correlation", "gap"})
        gap = ro.get("gap", 0)
        if isinstance(gap, bool) or not isinstance(gap, int) or gap < 0:
            raise r.fail("spec.delay.reorder.gap", f"expected an integer ≥ 0, got {gap!r}")
        reorder = Reorder(reorder=_percent(r, ro, "reorder", "spec.delay.reorder", required=True) or "0",
                          gap=gap, correlation=_percent(r, ro, "correlation", "spec.delay.reorder"))
    return Delay(latency=latency, jitter=jitter,
                 correlation=_percent(r, raw, "correlation", "spec.delay"), reorder=reorder)


def _bandwidth(r: _Reader, raw: Any) -> Bandwidth:
    raw = r.mapping(raw, "spec.bandwidth", {"rate", "limit", "buffer", "peakrate", "minburst"})
    rate = r.text(raw, "rate", "spec.bandwidth", required=True) or ""
    try:
        parse_rate(rate)
    except ValueError as exc:
        raise r.fail("spec.bandwidth.rate", str(exc)) from exc
    numbers: dict[str, int | None] = {}
    for key, required in (("limit", True), ("buffer", True), ("peakrate", False), ("minburst", False)):
        value = raw.get(key)
        if value is None and not required:
            numbers[key] = None
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < (1 if required else 0):
            low = 1 if required else 0
            raise r.fail(f"spec.bandwidth.{key}", f"expected an integer ≥ {low}, got {value!r}")
        numbers[key] = value
    return Bandwidth(rate=rate, limit=numbers["limit"] or 1, buffer=numbers["buffer"] or 1,
                     peakrate=numbers["peakrate"], minburst=numbers["minburst"])
