"""The local sandbox: a small shop of real processes, a userspace fault proxy,
a real Prometheus and a load generator, driven through the same ``ChaosBackend``
port and the same Chaos Mesh selector semantics as a cluster.

Submodules are imported explicitly; this package imports nothing so that
Chaos Toolkit can import ``chaoslab.sandbox.actions`` cheaply.
"""
