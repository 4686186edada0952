"""Generate a game day for a catalog of N services, in code, and write it as YAML.

    python examples/generate_gameday.py --services 40 --out generated/
    chaoslab validate generated/gameday.yaml && chaoslab plan generated/gameday.yaml

Every fourth service is core; every non-core service gets a network delay, a packet loss
and a pod kill (a matrix), ramped from one pod to half of them. The folder receives
catalog.yaml and gameday.yaml; both are checked by chaoslab's loader rules as they are
built and load back to the same values.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import chaoslab


def build_catalog(count: int, *, namespace: str = "shop") -> chaoslab.Catalog:
    services = [
        chaoslab.service(f"svc-{i:03d}", namespace=namespace, tier="core" if i % 4 == 0 else "non-core",
                         labels={"app": f"svc-{i:03d}"}, owner=f"team-{i % 5}")
        for i in range(count)
    ]
    return chaoslab.catalog(namespace, services)


def build_gameday(catalog: chaoslab.Catalog, *, rules: list[Path]) -> chaoslab.GameDay:
    faults = {
        "delay": chaoslab.network_delay(latency="200ms", duration="30s"),
        "loss": chaoslab.network_loss(loss=10, duration="30s"),
        "kill": chaoslab.pod_kill(duration="20s"),
    }
    return chaoslab.GameDay(
        name="generated-weekly", catalog=catalog, rules=tuple(rules), gate=chaoslab.Gate.STOP,
        matrix=chaoslab.matrix(faults, services=chaoslab.Tier.NON_CORE),
        blast_radius=(chaoslab.RampLevel(mode=chaoslab.Mode.ONE),
                      chaoslab.RampLevel(mode=chaoslab.Mode.FIXED_PERCENT, value="50")),
        safety=chaoslab.Safety(allow_namespaces=(catalog.name,), max_percent=50),
        description=f"every non-core service of {len(catalog.services)} × delay, loss, pod kill",
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--services", type=int, default=20, help="how many services (default: 20)")
    parser.add_argument("--out", type=Path, default=Path("generated"), help="folder to write to")
    parser.add_argument("--rules", type=Path, action="append", default=[],
                        help="alert rule file for the game day's spec.rules (repeatable)")
    args = parser.parse_args(argv)
    try:
        catalog = chaoslab.save(build_catalog(args.services), args.out / "catalog.yaml")
        gameday = chaoslab.save(build_gameday(catalog, rules=args.rules), args.out / "gameday.yaml")
    except chaoslab.ChaoslabError as exc:
        print(f"generate_gameday: {exc}", file=sys.stderr)
        return 2
    steps = chaoslab.to_plan(gameday).steps
    print(f"wrote {args.out / 'gameday.yaml'}: {len(catalog.services)} services, {len(steps)} steps")
    return 0


if __name__ == "__main__":
    sys.exit(main())
