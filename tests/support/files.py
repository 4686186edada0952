"""chaoslab files on disk for loader, plan and CLI tests: a small shop catalog,
experiments and game days written as YAML (or JSON) into a temporary directory, and
a helper that runs the CLI in-process."""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

from chaoslab.cli.main import main

REPO_ROOT = Path(__file__).resolve().parents[2]
EXPERIMENTS_DIR = REPO_ROOT / "experiments"

SHOP_SERVICES: list[dict[str, Any]] = [
    {
        "name": "frontend",
        "namespace": "shop",
        "tier": "core",
        "selector": {"labelSelectors": {"app": "frontend"}},
    },
    {
        "name": "catalog",
        "namespace": "shop",
        "tier": "non-core",
        "selector": {"labelSelectors": {"app": "catalog"}},
    },
    {
        "name": "recommendation",
        "namespace": "shop",
        "tier": "non-core",
        "selector": {"labelSelectors": {"app": "recommendation"}},
    },
    {"name": "cart", "namespace": "shop", "tier": "core", "selector": {"labelSelectors": {"app": "cart"}}},
    {
        "name": "payment",
        "namespace": "shop",
        "tier": "core",
        "selector": {"labelSelectors": {"app": "payment"}},
        "owner": "team-payments",
        "alerts": ["PaymentErrors"],
    },
]

DELAY_FAULT: dict[str, Any] = {
    "networkChaos": {"action": "delay", "mode": "one", "delay": {"latency": "200ms"}, "duration": "20s"}
}
POD_KILL_FAULT: dict[str, Any] = {"podChaos": {"action": "pod-kill", "mode": "one", "duration": "20s"}}


def write(path: Path, data: Mapping[str, Any] | str) -> Path:
    """Write ``data`` as YAML (or JSON for ``.json``); a string is written as it is."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        path.write_text(data, encoding="utf-8")
    elif path.suffix == ".json":
        path.write_text(json.dumps(data, indent=2), encoding="utf-8")
    else:
        path.write_text(yaml.safe_dump(dict(data), sort_keys=False), encoding="utf-8")
    return path


def catalog_doc(services: Sequence[Mapping[str, Any]] | None = None, *, name: str = "shop") -> dict[str, Any]:
    return {
        "apiVersion": "chaoslab/v1",
        "kind": "Catalog",
        "metadata": {"name": name},
        "spec": {"services": copy.deepcopy(list(services if services is not None else SHOP_SERVICES))},
    }


def experiment_doc(
    name: str = "payment-delay",
    *,
    service: str | None = "payment",
    fault: Mapping[str, Any] | None = None,
    **spec: Any,
) -> dict[str, Any]:
    body: dict[str, Any] = {}
    if service is not None:
        body["service"] = service
    body["fault"] = copy.deepcopy(dict(fault if fault is not None else DELAY_FAULT))
    body.update(spec)
    return {"apiVersion": "chaoslab/v1", "kind": "Experiment", "metadata": {"name": name}, "spec": body}


def network(**fields: Any) -> dict[str, Any]:
    """A networkChaos fault block: a one-pod 200 ms delay for 20 s, with ``fields`` over it
    (a value of None removes the field)."""
    base = {"action": "delay", "mode": "one", "delay": {"latency": "200ms"}, "duration": "20s"}
    base.update(fields)
    return {"networkChaos": {k: v for k, v in base.items() if v is not None}}


def pod(**fields: Any) -> dict[str, Any]:
    """A podChaos fault block: a one-pod pod-kill for 20 s, with ``fields`` over it."""
    base = {"action": "pod-kill", "mode": "one", "duration": "20s"}
    base.update(fields)
    return {"podChaos": {k: v for k, v in base.items() if v is not None}}


def gameday_doc(
    name: str = "weekly",
    *,
    experiments: Sequence[str] | str = ("exp/*.yaml",),
    **spec: Any,
) -> dict[str, Any]:
    body: dict[str, Any] = {"catalog": "catalog.yaml"}
    if experiments:
        # A bare string is kept as it is, so tests can write the wrong type.
        body["experiments"] = experiments if isinstance(experiments, str) else list(experiments)
    body.update(spec)
    return {"apiVersion": "chaoslab/v1", "kind": "GameDay", "metadata": {"name": name}, "spec": body}


def shop(tmp_path: Path, services: Sequence[Mapping[str, Any]] | None = None) -> Path:
    """A directory holding ``catalog.yaml`` (the five-service shop by default)."""
    write(tmp_path / "catalog.yaml", catalog_doc(services))
    return tmp_path


def run_cli(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, str, str]:
    """``chaoslab ARGS`` in-process: exit code, stdout, stderr."""
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def assert_rejected(
    capsys: pytest.CaptureFixture[str], path: Path, field: str, reason: str, *args: str | Path
) -> str:
    """``chaoslab validate PATH`` exits 2 and names the file, the field and the reason."""
    code, out, err = run_cli(capsys, "validate", *args, path)
    assert code == 2, f"expected exit 2, got {code}: {out}{err}"
    assert str(path) in err, err
    assert f": {field}: " in err, f"field {field!r} not named in: {err}"
    assert reason in err, f"reason {reason!r} not in: {err}"
    assert "Traceback" not in err
    return err
