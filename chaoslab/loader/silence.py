"""``spec.silence`` of a game day: which Alertmanager, which alerts, and whether it is required.

::

    silence:
      alertmanager: http://alertmanager.monitoring:9093   # or --alertmanager / CHAOSLAB_ALERTMANAGER_URL
      scope: target                # target (default) | gameday
      extraMatchers: ['cluster="prod"', 'team=~"shop|web"']
      required: true               # false: an unreachable Alertmanager is a warning
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from chaoslab.loader.document import type_name
from chaoslab.loader.fields import Fields, Where
from chaoslab.model import Matcher, SilenceScope, SilenceSpec

FIELDS = ("alertmanager", "scope", "extraMatchers", "required")
# name, operator, then a double-quoted (with \" and \\ escapes) or a bare value, as amtool reads them.
_MATCHER = re.compile(r'^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*(?:"((?:[^"\\]|\\.)*)"|([^"\s]*))\s*$')


def parse_matcher(raw: object, where: Where) -> Matcher:
    """``name="value"``, ``name!="value"``, ``name=~"regex"`` or ``name!~"regex"``."""
    if not isinstance(raw, str):
        raise where.fail(f'must be a matcher such as cluster="prod", got {type_name(raw)}')
    found = _MATCHER.match(raw)
    if found is None:
        raise where.fail(f'{raw!r} is not a matcher such as cluster="prod" or team=~"shop|web"')
    name, op, quoted, bare = found.groups()
    value = re.sub(r"\\(.)", r"\1", quoted) if quoted is not None else bare
    regex = op in ("=~", "!~")
    if regex:
        try:
            re.compile(value)
        except re.error as exc:
            raise where.fail(f"{raw!r}: the regular expression is invalid: {exc}") from exc
    return Matcher(name=name, value=value, is_regex=regex, is_equal=op in ("=", "=~"))


def check_url(raw: object, where: Where) -> str:
    """An http(s) URL with a host."""
    if not isinstance(raw, str) or not raw:
        raise where.fail(f"must be an http(s) URL such as http://alertmanager:9093, got {type_name(raw)}")
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise where.fail(f"{raw!r} is not an http(s) URL such as http://alertmanager:9093")
    return raw


def parse_silence(spec: Fields) -> SilenceSpec | None:
    fields = spec.sub("silence", allowed=FIELDS)
    if fields is None:
        return None
    url = None
    if "alertmanager" in fields:
        url = check_url(fields.raw("alertmanager"), fields.at("alertmanager"))
    return SilenceSpec(
        alertmanager=url,
        scope=fields.enum("scope", SilenceScope, default=SilenceScope.TARGET),
        extra_matchers=tuple(parse_matcher(raw, where) for raw, where in fields.items("extraMatchers")),
        required=fields.boolean("required", default=True),
    )
