"""The ``kind: Sandbox`` file: valid overrides resolve onto the shop, bad input names file, field and line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from chaoslab.errors import InvalidInputError
from chaoslab.sandbox.config import SandboxConfig, load_sandbox_config
from chaoslab.sandbox.procs import is_alive, read_pid_records

REPO = Path(__file__).resolve().parents[2]

HEADER = "apiVersion: chaoslab/v1\nkind: Sandbox\n"
SERVICES = HEADER + "spec:\n  services:\n    "


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "sandbox.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_fix_file_adds_a_payment_replica_and_cart_retries() -> None:
    config = load_sandbox_config(REPO / "experiments" / "sandbox-fixed.yaml")
    specs = {s.name: s for s in config.resolve()}
    assert (specs["payment"].replicas, specs["cart"].retries) == (2, 2)
    assert specs["frontend"].replicas == 2
    assert config.restart_delay_s == 5.0
    assert config.load_rps == 20.0


def test_defaults_keep_the_built_in_weakness() -> None:
    specs = {s.name: s for s in SandboxConfig().resolve()}
    assert specs["payment"].replicas == 1
    assert specs["cart"].retries == 0
    assert specs["recommendation"].timeout_s == pytest.approx(0.3)
    assert [d.service for d in specs["frontend"].calls] == ["catalog", "recommendation", "cart"]
    assert [d.fallback for d in specs["frontend"].calls] == [False, True, False]


def test_every_field_is_read(tmp_path: Path) -> None:
    path = write(tmp_path, SERVICES + "catalog: {replicas: 3, retries: 1, timeout: 750ms}\n"
                 "  restartDelay: 1.5s\n  load: {rps: 7.5}\n")
    config = load_sandbox_config(path)
    catalog = {s.name: s for s in config.resolve()}["catalog"]
    assert (catalog.replicas, catalog.retries, catalog.timeout_s) == (3, 1, 0.75)
    assert (config.restart_delay_s, config.load_rps) == (1.5, 7.5)
    assert SandboxConfig.from_json(config.to_json()) == config


@pytest.mark.parametrize(
    ("body", "field", "line", "reason"),
    [
        ("apiVersion: chaoslab/v2\nkind: Sandbox\n", "apiVersion", 1, "chaoslab/v1"),
        ("apiVersion: chaoslab/v1\nkind: Catalog\n", "kind", 2, "Sandbox"),
        (HEADER + "spek: {}\n", "spek", 3, "unknown field"),
        (SERVICES + "checkout: {replicas: 2}\n", "spec.services.checkout", 5, "unknown service"),
        (SERVICES + "payment: {replica: 2}\n", "spec.services.payment.replica", 5,
         "unknown field"),
        (SERVICES + "payment: {replicas: 0}\n", "spec.services.payment.replicas", 5,
         "between 1 and 5"),
        (SERVICES + "payment: {replicas: 9}\n", "spec.services.payment.replicas", 5,
         "between 1 and 5"),
        (SERVICES + "payment: {replicas: '2'}\n", "spec.services.payment.replicas", 5,
         "integer"),
        (SERVICES + "cart: {retries: true}\n", "spec.services.cart.retries", 5, "integer"),
        (SERVICES + "cart: {retries: -1}\n", "spec.services.cart.retries", 5, "between"),
        (SERVICES + "cart: {timeout: fast}\n", "spec.services.cart.timeout", 5,
         "Go duration"),
        (SERVICES + "cart: {timeout: 2}\n", "spec.services.cart.timeout", 5, "Go duration"),
        (SERVICES + "cart: {timeout: 31s}\n", "spec.services.cart.timeout", 5, "between"),
        (HEADER + "spec:\n  services: [payment]\n", "spec.services", 4, "mapping"),
        (HEADER + "spec:\n  restartDelay: 5\n", "spec.restartDelay", 4, "Go duration"),
        (HEADER + "spec:\n  restartDelay: 11m\n", "spec.restartDelay", 4, "between"),
        (HEADER + "spec:\n  load: {rps: -1}\n", "spec.load.rps", 4, "between"),
        (HEADER + "spec:\n  load: {rps: many}\n", "spec.load.rps", 4, "number"),
        (HEADER + "spec:\n  load: {rate: 5}\n", "spec.load.rate", 4, "unknown field"),
        (HEADER + "metadata: [x]\n", "metadata", 3, "mapping"),
    ],
)
def test_bad_input_names_file_field_and_line(
    tmp_path: Path, body: str, field: str, line: int, reason: str
) -> None:
    path = write(tmp_path, body)
    with pytest.raises(InvalidInputError) as info:
        load_sandbox_config(path)
    assert info.value.path == str(path)
    assert info.value.field == field
    assert info.value.line == line
    assert reason in info.value.reason


@pytest.mark.parametrize("text", ["spec: [unclosed\n", "- just\n- a list\n", ""])
def test_not_a_sandbox_document(tmp_path: Path, text: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(InvalidInputError) as info:
        load_sandbox_config(path)
    assert info.value.path == str(path)


def test_missing_file_is_bad_input(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="file not found"):
        load_sandbox_config(tmp_path / "absent.yaml")


def test_a_duplicate_key_is_refused_not_silently_overridden(tmp_path: Path) -> None:
    # A second `services:` used to replace the first, dropping the fix without a word.
    path = write(tmp_path, HEADER + "spec:\n  services: {payment: {replicas: 2}}\n"
                                    "  services: {cart: {retries: 2}}\n")
    with pytest.raises(InvalidInputError) as info:
        load_sandbox_config(path)
    assert info.value.line == 5
    assert "duplicate key 'services'" in info.value.reason


def test_a_json_sandbox_file_is_read_like_yaml(tmp_path: Path) -> None:
    path = tmp_path / "sandbox.json"
    path.write_text('{"apiVersion": "chaoslab/v1", "kind": "Sandbox",\n'
                    ' "spec": {"services": {"payment": {"replicas": 7}}}}\n', encoding="utf-8")
    with pytest.raises(InvalidInputError) as info:
        load_sandbox_config(path)
    assert (info.value.field, info.value.line) == ("spec.services.payment.replicas", 2)


def test_cli_up_refuses_a_bad_config_before_starting_anything(tmp_path: Path) -> None:
    path = write(tmp_path, SERVICES + "payment: {replicas: 0}\n")
    state_dir = tmp_path / "state"
    proc = subprocess.run(
        [sys.executable, "-m", "chaoslab", "sandbox", "up", "--state-dir", str(state_dir),
         "--config", str(path)],
        capture_output=True, text=True, timeout=60, cwd=REPO,
    )
    assert proc.returncode == 2
    assert f"{path}:5: spec.services.payment.replicas" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (state_dir / "state.json").exists()


def test_cli_up_refuses_broken_rules_before_starting_anything(tmp_path: Path) -> None:
    if not Path("/usr/bin/promtool").exists():
        pytest.skip("/usr/bin/promtool is not installed (apt-get install prometheus)")
    rules = tmp_path / "rules.yaml"
    rules.write_text("groups:\n  - name: x\n    rules:\n      - alert: A\n        expr: sum(rate(x[1m]) >\n")
    state_dir = tmp_path / "state"
    proc = subprocess.run(
        [sys.executable, "-m", "chaoslab", "sandbox", "up", "--state-dir", str(state_dir),
         "--rules", str(rules)],
        capture_output=True, text=True, timeout=60, cwd=REPO,
    )
    assert proc.returncode == 2
    assert str(rules) in proc.stderr
    assert "parse error" in proc.stderr
    assert not (state_dir / "state.json").exists()


def up_with_prometheus(tmp_path: Path, binary: Path) -> subprocess.CompletedProcess[str]:
    rules = tmp_path / "rules.yaml"
    rules.write_text("groups: []\n", encoding="utf-8")
    return subprocess.run(
        [sys.executable, "-m", "chaoslab", "sandbox", "up", "--state-dir", str(tmp_path / "state"),
         "--rules", str(rules)],
        capture_output=True, text=True, timeout=60, cwd=REPO,
        env={**os.environ, "CHAOSLAB_PROMETHEUS_BIN": str(binary)},
    )


@pytest.mark.parametrize(
    ("name", "mode", "message"),
    [("absent", None, "prometheus not found at"), ("not-executable", 0o644, "is not executable")],
)
def test_cli_up_says_plainly_that_prometheus_is_missing_and_starts_nothing(
    tmp_path: Path, name: str, mode: int | None, message: str
) -> None:
    binary = tmp_path / name
    if mode is not None:
        binary.write_text("#!/bin/sh\n", encoding="utf-8")
        binary.chmod(mode)
    proc = up_with_prometheus(tmp_path, binary)
    assert proc.returncode == 3
    assert proc.stderr.startswith(f"chaoslab: {binary}" if mode else f"chaoslab: {message}"), proc.stderr
    assert message in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1  # one line, no traceback
    assert not (tmp_path / "state" / "pids.jsonl").exists()


def test_cli_up_reports_a_prometheus_that_will_not_run_in_one_line_and_leaves_nothing(
    tmp_path: Path,
) -> None:
    binary = tmp_path / "prometheus"
    binary.write_text("#!/bin/sh\necho 'cannot run here' >&2\nexit 1\n", encoding="utf-8")
    binary.chmod(0o755)
    proc = up_with_prometheus(tmp_path, binary)
    assert proc.returncode == 3
    assert "prometheus did not start; see" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    started = read_pid_records(tmp_path / "state")
    assert {r.role for r in started} == {"supervisor", "prometheus"}
    assert [r for r in started if is_alive(r.pid, r.start)] == []
