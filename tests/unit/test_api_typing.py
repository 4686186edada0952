"""User code of the Python API passes ``mypy --strict`` (tests/api_user/user_script.py), and
the examples/ generator writes a game day that ``chaoslab validate`` and ``plan`` accept."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_a_user_script_passes_mypy_strict() -> None:
    script = ROOT / "tests" / "api_user" / "user_script.py"
    out = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", "--follow-imports=silent",
         str(script)],
        capture_output=True, text=True, check=False, cwd=ROOT, timeout=600,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "Success" in out.stdout


def test_the_example_generates_a_valid_game_day_for_n_services(tmp_path: Path) -> None:
    rules = ROOT / "experiments" / "rules" / "shop-slo.yaml"
    out = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "generate_gameday.py"), "--services", "24",
         "--out", str(tmp_path / "gen"), "--rules", str(rules)],
        capture_output=True, text=True, check=False, cwd=tmp_path, timeout=120,
    )
    assert out.returncode == 0, out.stderr
    # 18 non-core services × 3 faults × 2 ramp levels
    assert "24 services, 108 steps" in out.stdout
    gameday = tmp_path / "gen" / "gameday.yaml"
    assert "catalog: catalog.yaml" in gameday.read_text()
    check = subprocess.run([sys.executable, "-m", "chaoslab", "validate", str(gameday)],
                           capture_output=True, text=True, check=False, timeout=120)
    assert check.returncode == 0, check.stderr
    plan = subprocess.run([sys.executable, "-m", "chaoslab", "plan", "--format", "json", str(gameday)],
                          capture_output=True, text=True, check=False, timeout=120)
    assert plan.returncode == 0, plan.stderr
    stages = json.loads(plan.stdout)["stages"]
    assert [s["tier"] for s in stages] == ["non-core"]
    assert sum(len(s["steps"]) for s in stages) == 108
