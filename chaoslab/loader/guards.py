"""``spec.guards`` of a catalog or a game day: which alerts bound to no service are
guards, and which of them a team knows to be noise.

```yaml
guards:
  severities: [critical, page]          # default
  matchers: ['namespace!="dev"']        # every entry must match (optional)
  ignore: [KubeSchedulerDown, '{alertname="KubeControllerManagerDown", cluster="eks"}']
```

An entry of ``matchers`` or ``ignore`` is an alert name, or PromQL label matchers with
or without braces (``team="platform"``, ``{job=~"kube-.*", severity="critical"}``),
parsed with the same PromQL parser as the rule files. A game day's guards refine its
catalog's: ``severities`` and ``matchers`` replace the catalog's when given, ``ignore``
lists add up.
"""

from __future__ import annotations

import dataclasses
import re

from chaoslab.loader.fields import Fields, Where
from chaoslab.model import AlertFilter, Catalog, GuardPolicy, LabelMatcher

GUARD_FIELDS = ("severities", "matchers", "ignore")
_ALERT_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
_OPS = {"Equal": "=", "NotEqual": "!=", "Re": "=~", "NotRe": "!~"}


def parse_filter(text: str) -> AlertFilter:
    """An alert name or label matchers; ValueError saying what is wrong otherwise."""
    import promql_parser  # only where matchers are written

    text = text.strip()
    if _ALERT_NAME.match(text):
        return AlertFilter(text=text, alert=text)
    body = text if text.startswith("{") else "{" + text + "}"
    try:
        node = promql_parser.parse("x" + body)
    except ValueError as exc:
        raise ValueError(f"{text!r} is neither an alert name nor PromQL label matchers "
                         f"such as team=\"platform\": {exc}") from exc
    if not isinstance(node, promql_parser.VectorSelector) or node.matchers.or_matchers:
        raise ValueError(f"{text!r}: write label matchers such as {{team=\"platform\", env!=\"dev\"}} "
                         "(no `or`, no functions)")
    matchers = []
    for matcher in node.matchers.matchers:
        op = _OPS[str(matcher.op).rpartition(".")[2]]
        if op in ("=~", "!~"):
            try:
                re.compile(matcher.value)
            except re.error as exc:
                raise ValueError(f"{text!r}: invalid regex {matcher.value!r}: {exc}") from exc
        matchers.append(LabelMatcher(name=matcher.name, op=op, value=matcher.value))
    if not matchers:
        raise ValueError(f"{text!r} holds no label matcher")
    return AlertFilter(text=text, matchers=tuple(matchers))


def _filters(fields: Fields, key: str) -> tuple[AlertFilter, ...]:
    found = []
    for raw, where in fields.items(key):
        if not isinstance(raw, str) or not raw.strip():
            raise where.fail("must be an alert name or label matchers such as 'team=\"platform\"' (a string)")
        try:
            found.append(parse_filter(raw))
        except ValueError as exc:
            raise where.fail(str(exc)) from exc
    return tuple(found)


def parse_guards(value: object, where: Where) -> tuple[GuardPolicy, frozenset[str]]:
    """The policy in a ``guards`` block, and which of its keys were given."""
    fields = Fields(value, where, allowed=GUARD_FIELDS)
    given = frozenset(key for key in GUARD_FIELDS if key in fields)
    severities = fields.text_list("severities")
    if "severities" in given and not severities:
        raise fields.at("severities").fail(
            "lists no severity: no alert would be a guard; to make a known alert harmless, "
            "name it under ignore instead")
    return GuardPolicy(
        severities=severities or GuardPolicy().severities,
        matchers=_filters(fields, "matchers"),
        ignore=_filters(fields, "ignore"),
    ), given


def catalog_guards(spec: Fields) -> GuardPolicy:
    """A catalog's ``spec.guards`` (the default policy when absent)."""
    if "guards" not in spec:
        return GuardPolicy()
    return parse_guards(spec.raw("guards"), spec.at("guards"))[0]


def refine_catalog(catalog: Catalog, spec: Fields) -> Catalog:
    """The catalog as a game day sees it: its guards refined by the game day's ``spec.guards``."""
    if "guards" not in spec:
        return catalog
    own, given = parse_guards(spec.raw("guards"), spec.at("guards"))
    base = catalog.guards
    policy = GuardPolicy(
        severities=own.severities if "severities" in given else base.severities,
        matchers=own.matchers if "matchers" in given else base.matchers,
        ignore=(*base.ignore, *(f for f in own.ignore if f not in base.ignore)),
    )
    return dataclasses.replace(catalog, guards=policy)
