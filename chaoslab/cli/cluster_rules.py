"""Alert rules for the commands that take ``--rules``: kept for callers of its old home;
the use case lives in :mod:`chaoslab.app.rules`."""

from chaoslab.app.rules import SCHEME, cluster_address, load_rules_from

__all__ = ["SCHEME", "cluster_address", "load_rules_from"]
