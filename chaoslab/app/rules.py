"""Alert rules from every source, the same way for every command that takes rules: rule
files and PrometheusRule manifests through the rule-file loader, PrometheusRule objects in
the cluster through a ``k8s://NAMESPACE[/NAME]`` address (``k8s://`` for every namespace),
and, when no source is named at all, the alerting rules Prometheus has loaded.

It joins the Kubernetes backend and the Prometheus rules parser, which do not know each
other."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

from chaoslab.errors import InvalidInputError
from chaoslab.model import AlertRule

logger = logging.getLogger(__name__)

SCHEME = "k8s:"
NO_RULES = ("no alert rules: name rule files (spec.rules, spec.hypothesis.rules or --rules), "
            "or load them into Prometheus")


@runtime_checkable
class LoadedRules(Protocol):
    """A metrics source that can list the alerting rules it evaluates (Prometheus)."""

    def rules(self) -> Sequence[AlertRule]: ...


def cluster_address(source: str | Path) -> str | None:
    """``k8s://ns/`` for a cluster source, else None. ``Path`` folds ``k8s://`` into ``k8s:/``."""
    text = str(source)
    if not text.startswith(SCHEME):
        return None
    return "k8s://" + text[len(SCHEME):].lstrip("/")


def load_rules_from(sources: Sequence[str | Path], *, context: str | None = None) -> tuple[AlertRule, ...]:
    """Every alerting rule of ``sources`` in order: files through the rule-file loader,
    ``k8s://`` addresses through the Kubernetes API (one connection for all of them). The
    recording rules of every source give the alerts their windows."""
    from chaoslab.prometheus.recordings import RecordingRule, link_windows
    from chaoslab.prometheus.rules import load_rule_set, parse_rule_set

    addresses = [a for s in sources if (a := cluster_address(s))]
    backend = None
    if addresses:
        from chaoslab.chaosmesh.backend import connect

        backend = connect(context=context)
    try:
        rules: list[AlertRule] = []
        recordings: list[RecordingRule] = []
        for source in sources:
            address = cluster_address(source)
            if address is None:
                alerts, records = load_rule_set([source])
                rules.extend(alerts)
                recordings.extend(records)
                continue
            from chaoslab.chaosmesh.backend import load_rules_from_cluster

            for origin, doc in load_rules_from_cluster(address, backend=backend):
                alerts, records = parse_rule_set([doc], source=origin)
                rules.extend(alerts)
                recordings.extend(records)
        return link_windows(rules, recordings)
    finally:
        if backend is not None:
            backend.close()


def load_run_rules(
    sources: Sequence[str | Path], *, metrics: object, path: str | Path | None,
    context: str | None = None, notice: Callable[[str], None] | None = None,
) -> tuple[AlertRule, ...]:
    """The alert rules that judge a run: those of ``sources`` (the game day's spec.rules
    or the experiment's spec.hypothesis.rules, plus any given by the caller), else what
    Prometheus has loaded (said through ``notice``). None at all is an InvalidInputError
    on ``path``'s spec.rules."""
    if sources:
        return load_rules_from(sources, context=context)
    loaded = tuple(metrics.rules()) if isinstance(metrics, LoadedRules) else ()
    if not loaded:
        raise InvalidInputError(path, "spec.rules", NO_RULES)
    logger.info("no rule files named; using the %d alerting rules Prometheus has loaded", len(loaded))
    if notice is not None:
        notice(f"no rule files named; using the {len(loaded)} alerting rules Prometheus has loaded")
    return loaded
