"""Alert rules for the commands that take ``--rules``: rule files, or PrometheusRule objects
read from the cluster through a ``k8s://NAMESPACE[/NAME]`` address (``k8s://`` for every
namespace). Lives in the CLI layer because it joins the Kubernetes backend and the
Prometheus rules parser, which do not know each other."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from chaoslab.model import AlertRule

SCHEME = "k8s:"


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
