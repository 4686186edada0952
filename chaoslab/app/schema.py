"""JSON Schema (draft 2020-12) of chaoslab's files, for editors (the YAML language server).

Generated from the loader's own definitions: the fields each object allows and requires
(``SPEC_FIELDS``, ``NETWORK_FIELDS``…), the model's enums (modes, actions, tiers, gates),
its duration and name patterns. A field the loader gains appears here by itself; one whose
type this module does not know yet is accepted with any value, so the schema is never
stricter than the loader. Rules that need more than one field's value (a mode's value, the
sub-spec an action needs, selector narrowing) stay the loader's: ``chaoslab validate``.

Optional fields accept ``null``, as the loader does.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from chaoslab.loader import catalog as catalog_fields
from chaoslab.loader import experiment as experiment_fields
from chaoslab.loader import faults as fault_fields
from chaoslab.loader import gameday as gameday_fields
from chaoslab.loader import selectors as selector_fields
from chaoslab.loader.fields import DNS_LABEL_PATTERN, TOP_FIELDS, TOP_REQUIRED
from chaoslab.model import (
    API_VERSION,
    GO_DURATION_PATTERN,
    Direction,
    Gate,
    Mode,
    NetworkAction,
    PodAction,
    SilenceScope,
    Tier,
)
from chaoslab.scope import DAYS

logger = logging.getLogger(__name__)

DRAFT = "https://json-schema.org/draft/2020-12/schema"
KINDS = ("Catalog", "Experiment", "GameDay", "Sandbox")
Schema = dict[str, Any]

_DNS: Schema = {"type": "string", "pattern": DNS_LABEL_PATTERN, "maxLength": 63}
_TEXT: Schema = {"type": "string", "minLength": 1}
_TEXT_LIST: Schema = {"type": "array", "items": _TEXT}
_TEXT_MAP: Schema = {"type": "object", "additionalProperties": {"type": "string"}}
_NUMBER_TEXT: Schema = {"type": ["string", "number"]}  # "25" or 25: the loader takes both
_DURATION: Schema = {"type": "string", "pattern": GO_DURATION_PATTERN}
_TC_TIME: Schema = {"type": "string", "pattern": fault_fields.TC_DURATION_PATTERN}
_MODE: Schema = {"enum": [m.value for m in Mode]}


def _int(minimum: int | None = None, maximum: int | None = None) -> Schema:
    out: Schema = {"type": "integer"}
    if minimum is not None:
        out["minimum"] = minimum
    if maximum is not None:
        out["maximum"] = maximum
    return out


def _object(fields: Sequence[str], types: Mapping[str, Schema], *, required: Sequence[str] = (),
            description: str | None = None) -> Schema:
    """An object with exactly ``fields`` (the loader's tuple). Optional ones may be null."""
    properties: Schema = {}
    for name in fields:
        known = types.get(name)
        if known is None:
            logger.debug("schema: no type for field %s; any value is accepted", name)
            known = {}
        properties[name] = known if name in required or not known else {"anyOf": [known, {"type": "null"}]}
    out: Schema = {"type": "object", "properties": properties, "additionalProperties": False}
    if required:
        out["required"] = list(required)
    if description:
        out["description"] = description
    return out


def _selector(*, namespaces: bool) -> Schema:
    expression = _object(selector_fields.EXPRESSION_FIELDS, {
        "key": _TEXT, "operator": {"enum": list(selector_fields.OPERATORS)}, "values": _TEXT_LIST,
    }, required=selector_fields.EXPRESSION_REQUIRED)
    types = {
        "namespaces": {"type": "array", "items": _DNS},
        "labelSelectors": _TEXT_MAP, "annotationSelectors": _TEXT_MAP, "fieldSelectors": _TEXT_MAP,
        "nodeSelectors": _TEXT_MAP, "nodes": _TEXT_LIST,
        "expressionSelectors": {"type": "array", "items": expression},
        "podPhaseSelectors": {"type": "array", "items": {"enum": list(selector_fields.POD_PHASES)}},
        "pods": {"type": "object", "propertyNames": _DNS, "additionalProperties": _TEXT_LIST},
    }
    fields = [f for f in selector_fields.SELECTOR_FIELDS if namespaces or f != "namespaces"]
    return _object(fields, types, description="Chaos Mesh PodSelectorSpec")


def _service(required: Sequence[str]) -> Schema:
    return _object(catalog_fields.SERVICE_FIELDS, {
        "name": _DNS, "namespace": _DNS, "tier": {"enum": [t.label for t in Tier]},
        "selector": {"$ref": "#/$defs/serviceSelector"}, "owner": _TEXT, "alerts": _TEXT_LIST,
    }, required=required)


def _netem(key: str) -> Schema:
    return _object((key, "correlation"), {key: _NUMBER_TEXT, "correlation": _NUMBER_TEXT}, required=(key,))


def _network() -> Schema:
    f = fault_fields
    reorder = _object(f.REORDER_FIELDS,
                      {"reorder": _NUMBER_TEXT, "correlation": _NUMBER_TEXT, "gap": _int(0)},
                      required=f.REORDER_REQUIRED)
    delay = _object(f.DELAY_FIELDS, {"latency": _TC_TIME, "jitter": _TC_TIME, "correlation": _NUMBER_TEXT,
                                     "reorder": reorder}, required=f.DELAY_REQUIRED)
    bandwidth = _object(f.BANDWIDTH_FIELDS, {"rate": _NUMBER_TEXT, "limit": _int(1), "buffer": _int(1),
                                             "peakrate": _int(0), "minburst": _int(0)},
                        required=f.BANDWIDTH_REQUIRED)
    target = _object(f.TARGET_FIELDS, {"selector": _selector(namespaces=True), "mode": _MODE,
                                       "value": _NUMBER_TEXT}, required=f.TARGET_REQUIRED)
    return _object(f.NETWORK_FIELDS, {
        "action": {"enum": [a.value for a in NetworkAction]}, "mode": _MODE, "value": _NUMBER_TEXT,
        "selector": {"$ref": "#/$defs/faultSelector"}, "duration": _DURATION,
        "direction": {"enum": [d.value for d in Direction]}, "target": target,
        "externalTargets": _TEXT_LIST, "device": _TEXT, "targetDevice": _TEXT, "delay": delay,
        "loss": _netem("loss"), "duplicate": _netem("duplicate"), "corrupt": _netem("corrupt"),
        "bandwidth": bandwidth,
    }, required=f.FAULT_REQUIRED, description="a Chaos Mesh NetworkChaos spec")


def _pod() -> Schema:
    return _object(fault_fields.POD_FIELDS, {
        "action": {"enum": [a.value for a in PodAction]}, "mode": _MODE, "value": _NUMBER_TEXT,
        "selector": {"$ref": "#/$defs/faultSelector"}, "duration": _DURATION, "gracePeriod": _int(0),
        "containerNames": _TEXT_LIST,
    }, required=fault_fields.FAULT_REQUIRED, description="a Chaos Mesh PodChaos spec")


def _fault(extra: Mapping[str, Schema] | None = None) -> Schema:
    extra = extra or {}
    types = {"networkChaos": {"$ref": "#/$defs/networkChaos"}, "podChaos": {"$ref": "#/$defs/podChaos"},
             **extra}
    out = _object((*fault_fields.FAULT_KEYS, *extra), types, required=tuple(extra))
    out["oneOf"] = [{"required": [key]} for key in fault_fields.FAULT_KEYS]
    return out


def _envelope(kind: str, metadata: Schema, spec: Schema, *, required: Sequence[str] = TOP_REQUIRED,
              description: str) -> Schema:
    types = {"apiVersion": {"const": API_VERSION}, "kind": {"const": kind},
             "metadata": metadata, "spec": spec}
    out = _object(TOP_FIELDS, types, required=("apiVersion", "kind", *required))
    out["description"] = description
    return out


def _metadata(extra: Sequence[str] = ()) -> Schema:
    return _object(("name", *extra), {"name": _DNS, "description": _TEXT, "tags": _TEXT_LIST},
                   required=("name",))


def _guards() -> Schema:
    from chaoslab.loader.guards import GUARD_FIELDS

    return _object(GUARD_FIELDS, {"severities": _TEXT_LIST, "matchers": _TEXT_LIST, "ignore": _TEXT_LIST},
                   description="which alerts bound to no service are guards, and which to ignore")


def _silence() -> Schema:
    from chaoslab.loader.silence import FIELDS

    return _object(FIELDS, {
        "alertmanager": {"type": "string", "pattern": "^https?://"},
        "scope": {"enum": [scope.value for scope in SilenceScope]},
        "extraMatchers": _TEXT_LIST, "required": {"type": "boolean"},
    }, description="Alertmanager silences around each fault")


def _catalog() -> Schema:
    services = {"type": "array", "minItems": 1, "items": _service(catalog_fields.SERVICE_REQUIRED)}
    spec = _object(catalog_fields.SPEC_FIELDS, {"services": services, "guards": _guards()},
                   required=catalog_fields.SPEC_REQUIRED)
    return _envelope("Catalog", _metadata(), spec, description="the services chaoslab knows, by tier")


def _experiment() -> Schema:
    e = experiment_fields
    spec = _object(e.SPEC_FIELDS, {
        "service": _DNS, "target": _service(e.TARGET_REQUIRED), "fault": {"$ref": "#/$defs/fault"},
        "hypothesis": _object(e.HYPOTHESIS_FIELDS, {"rules": _TEXT_LIST}),
        "readiness": {"type": "boolean"},
    }, required=e.SPEC_REQUIRED)
    spec["oneOf"] = [{"required": ["service"]}, {"required": ["target"]}]
    return _envelope("Experiment", _metadata(e.METADATA_EXTRA), spec,
                     description="one fault against one service")


def _gameday() -> Schema:
    g = gameday_fields
    matrix_services = {"anyOf": [{"const": "all"}, _TEXT_LIST,
                                 _object(("tier",), {"tier": {"enum": [t.label for t in Tier]}},
                                         required=("tier",))]}
    matrix = _object(g.MATRIX_FIELDS, {
        "services": matrix_services,
        "faults": {"type": "array", "minItems": 1, "items": _fault({"name": _DNS})},
    }, required=g.MATRIX_REQUIRED)
    clock: Schema = {"type": "string", "pattern": g.CLOCK_PATTERN}
    ramp = _object(g.RAMP_FIELDS, {"mode": _MODE, "value": _NUMBER_TEXT}, required=g.RAMP_REQUIRED)
    safety = _object(g.SAFETY_FIELDS, {"allowNamespaces": {"type": "array", "items": _DNS},
                                       "maxPercent": _int(1, 100), "allowKubeSystem": {"type": "boolean"}})
    window = _object(g.WINDOW_FIELDS, {
        "days": {"type": "array", "minItems": 1, "items": {"enum": list(DAYS)}}, "from": clock, "to": clock,
        "timezone": _TEXT,
    }, required=g.WINDOW_FIELDS)
    spec = _object(g.SPEC_FIELDS, {
        "catalog": _TEXT, "rules": _TEXT_LIST, "experiments": _TEXT_LIST, "matrix": matrix,
        "blastRadius": {"type": "array", "items": ramp},
        "gate": {"enum": [gate.value for gate in Gate]},
        "safety": safety,
        "window": window, "recoveryTimeout": _DURATION, "recoveryTarget": _DURATION, "guards": _guards(),
        "readiness": {"type": "boolean"}, "silence": _silence(),
    })
    spec["anyOf"] = [{"required": ["experiments"]}, {"required": ["matrix"]}]
    return _envelope("GameDay", _metadata(g.METADATA_EXTRA), spec,
                     description="which experiments run, in which order, within which limits")


def _sandbox() -> Schema:
    from chaoslab.sandbox import config as c
    from chaoslab.sandbox.shop import SERVICE_NAMES

    override = _object(c.OVERRIDE_KEYS, {"replicas": _int(1, c.MAX_REPLICAS),
                                         "retries": _int(0, c.MAX_RETRIES), "timeout": _DURATION})
    spec = _object(c.SPEC_KEYS, {
        "services": {"type": "object", "propertyNames": {"enum": list(SERVICE_NAMES)},
                     "additionalProperties": {"anyOf": [override, {"type": "null"}]}},
        "restartDelay": _DURATION,
        "load": _object(c.LOAD_KEYS, {"rps": {"type": "number", "minimum": 0, "maximum": c.MAX_RPS}}),
    })
    metadata = _object(c.METADATA_KEYS,
                       {"name": _TEXT, "description": {"type": "string"}, "labels": _TEXT_MAP})
    return _envelope("Sandbox", metadata, spec, required=(), description="the local sandbox's shop")


def build_schema(kind: str | None = None) -> Schema:
    """The schema of one kind of file, or (``kind=None``) of any chaoslab file."""
    if kind is not None and kind not in KINDS:
        from chaoslab.errors import InvalidInputError

        raise InvalidInputError(None, "--kind", f"must be one of {', '.join(KINDS)}, got {kind!r}")
    defs: Schema = {
        "Catalog": _catalog(), "Experiment": _experiment(), "GameDay": _gameday(), "Sandbox": _sandbox(),
        "fault": _fault(), "networkChaos": _network(), "podChaos": _pod(),
        "serviceSelector": _selector(namespaces=False), "faultSelector": _selector(namespaces=False),
    }
    top: Schema = {"$schema": DRAFT, "title": f"chaoslab {kind or 'file'} ({API_VERSION})"}
    if kind is None:
        top["oneOf"] = [{"$ref": f"#/$defs/{name}"} for name in KINDS]
    else:
        top["$ref"] = f"#/$defs/{kind}"
    top["$defs"] = defs
    return top
