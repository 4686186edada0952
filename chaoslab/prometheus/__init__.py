"""Prometheus: alert rule files (rules), alert → service binding and hypotheses (hypothesis,
pure), the HTTP client (client) and the Chaos Toolkit probes (probes).

Submodules are imported on demand: ``client`` and ``probes`` pull in ``requests`` and
``rules`` pulls in ``promql_parser``, which the command line must not pay for at start.
"""
