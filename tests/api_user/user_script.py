"""A small program that uses chaoslab's public API the way a team's own tooling would.
``tests/unit/test_api_typing.py`` checks it with ``mypy --strict``: the API is typed
enough that user code needs no casts or ignores."""

from __future__ import annotations

from pathlib import Path

import chaoslab


def weekly(catalog_path: Path, out: Path) -> chaoslab.GameDay:
    catalog = chaoslab.load(catalog_path)
    if not isinstance(catalog, chaoslab.Catalog):
        raise SystemExit(f"{catalog_path} is not a catalog")
    faults: dict[str, chaoslab.NetworkChaos | chaoslab.PodChaos] = {
        "delay": chaoslab.network_delay(latency="200ms", mode="one", duration="30s"),
        "kill": chaoslab.pod_kill(mode="fixed-percent", value=50, duration="20s"),
    }
    day = chaoslab.GameDay(name="weekly", catalog=catalog, gate=chaoslab.Gate.STOP,
                           matrix=chaoslab.matrix(faults, services=chaoslab.Tier.NON_CORE))
    checked: chaoslab.GameDay = chaoslab.validate(day)
    return chaoslab.save(checked, out / "weekly.yaml")


def summary(result: chaoslab.RunResult) -> list[str]:
    lines = [f"{result.run_id}: {result.verdict.value}"]
    for step in result.steps:
        halted = step.halt.condition if step.halt is not None else "-"
        lines.append(f"{step.step} {step.tier.label} {step.verdict.value} {halted}")
    return lines


def export(catalog: chaoslab.Catalog) -> tuple[dict[str, object], dict[str, object]]:
    exp: chaoslab.Experiment = chaoslab.experiment(
        "payment-delay", service="payment", catalog=catalog,
        fault=chaoslab.network_delay(latency="100ms", duration="10s"))
    return chaoslab.to_chaos_mesh(exp, catalog), chaoslab.to_chaostoolkit(exp, catalog, target="sandbox")


def run_one(day: chaoslab.GameDay) -> int:
    try:
        result = chaoslab.run(day, target="sandbox", reports=Path("reports"))
    except chaoslab.InvalidInputError as exc:
        print(exc.field, exc.reason)
        return 2
    except chaoslab.CleanupError as exc:
        print("may remain:", ", ".join(exc.remaining))
        return 4
    except chaoslab.BackendError:
        return 3
    print("\n".join(summary(result)))
    left: tuple[chaoslab.FaultHandle, ...] = chaoslab.cleanup(target="sandbox", run_id=result.run_id)
    return 1 if result.verdict is not chaoslab.Verdict.HELD or left else 0


def steps_and_yaml(day: chaoslab.GameDay) -> tuple[list[str], str]:
    plan: chaoslab.Plan = chaoslab.to_plan(day)
    errors: list[type[chaoslab.ChaoslabError]] = [chaoslab.PlanError, chaoslab.PrometheusError]
    assert errors
    return [step.name for step in plan.steps], chaoslab.dump(plan.gameday.catalog)
