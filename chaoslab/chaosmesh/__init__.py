"""Chaos Mesh: manifests (pure), selection semantics (pure), the Kubernetes backend and CTK activities."""
