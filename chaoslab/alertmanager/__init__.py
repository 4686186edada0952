"""Alertmanager: silences through its API v2, behind ``chaoslab.ports.SilencePort``.

Beside ``chaoslab.prometheus``, at the same layer: the runner sees the port only.
"""
