"""The public Python API: the names ``chaoslab`` exports, the typed constructors and their
validation, and files in and out (``load(dump(x)) == x`` for every kind)."""

from __future__ import annotations

import inspect
import threading
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import chaoslab
from chaoslab import errors
from chaoslab.errors import InvalidInputError

ROOT = Path(__file__).resolve().parents[2]
EXPERIMENTS = ROOT / "experiments"
CATALOG = EXPERIMENTS / "catalog.yaml"
SHIPPED = sorted(p for p in EXPERIMENTS.rglob("*.yaml")
                 if p.parent.name != "rules" and p.name != "sandbox-fixed.yaml")

EXPORTED = {
    # values
    "Bandwidth", "Catalog", "Corrupt", "Delay", "Direction", "Duplicate", "Experiment", "GameDay", "Gate",
    "Loss", "Matrix", "MatrixFault", "Mode", "NetworkAction", "NetworkChaos", "NetworkTarget", "Plan",
    "PodAction", "PodChaos", "RampLevel", "RunResult", "Safety", "Selector", "Service", "StepResult", "Tier",
    "Verdict", "Window", "Settings", "PrometheusClient", "AlertRule", "ChaosKind", "ExpressionRequirement",
    "FaultHandle", "HaltRecord", "HypothesisCheck", "Reorder", "Stage", "Step",
    # errors
    "BackendError", "ChaoslabError", "CleanupError", "InjectionError", "InvalidInputError",
    "KubernetesError", "LedgerError", "AlertmanagerError", "PlanError", "PreflightError", "PrometheusError",
    # use cases
    "cleanup", "dump", "hypothesis", "load", "run", "save", "to_chaos_mesh", "to_chaostoolkit", "to_plan",
    "validate",
    # constructors
    "catalog", "container_kill", "cross", "experiment", "matrix", "network_delay", "network_loss",
    "network_partition", "pod_failure", "pod_kill", "service",
    # lower-level functions of 0.1
    "bind_alerts", "build_ctk_experiment", "build_hypothesis", "build_manifest", "build_plan",
    "experiment_gameday", "load_any", "load_catalog", "load_experiment", "load_gameday", "load_rules",
    "load_settings", "plan_to_dict", "run_plan", "run_to_dict", "write_run",
    "__version__",
}


def test_the_exported_names_are_exactly_the_public_api() -> None:
    """Removing or renaming a name breaks users' code: it must be a deliberate change here."""
    assert set(chaoslab.__all__) == EXPORTED
    assert len(chaoslab.__all__) == len(EXPORTED)


def test_every_public_error_class_is_exported() -> None:
    classes = {name for name, value in inspect.getmembers(errors, inspect.isclass)
               if issubclass(value, errors.ChaoslabError)}
    assert classes <= set(chaoslab.__all__)
    for name in classes:
        assert getattr(chaoslab, name) is getattr(errors, name)


# --- constructors ------------------------------------------------------------------------


def test_constructors_build_what_the_loader_reads() -> None:
    delay = chaoslab.network_delay(latency="200ms", mode="one", duration="30s")
    assert (delay.action, delay.mode) == (chaoslab.NetworkAction.DELAY, chaoslab.Mode.ONE)
    assert delay.duration == "30s"
    assert delay.delay == chaoslab.Delay(latency="200ms")
    kill = chaoslab.pod_kill(mode="fixed-percent", value=50, duration="20s")
    assert (kill.action, kill.value) == (chaoslab.PodAction.POD_KILL, "50")
    assert chaoslab.container_kill(containers=["app"], duration="5s").container_names == ("app",)
    loss = chaoslab.network_loss(loss=25, duration="10s", mode="all")
    assert loss.loss == chaoslab.Loss(loss="25")


@pytest.mark.parametrize(("build", "field"), [
    (lambda: chaoslab.network_delay(latency="fast", duration="30s"), "fault.networkChaos.delay.latency"),
    (lambda: chaoslab.network_delay(latency="1s", duration="forever"), "fault.networkChaos.duration"),
    (lambda: chaoslab.pod_kill(duration="0s"), "fault.podChaos.duration"),
    (lambda: chaoslab.pod_kill(mode="fixed", duration="10s"), "fault.podChaos.value"),
    (lambda: chaoslab.pod_kill(mode="one", value=3, duration="10s"), "fault.podChaos.value"),
    (lambda: chaoslab.pod_kill(mode="most", duration="10s"), "mode"),  # type: ignore[arg-type]
    (lambda: chaoslab.network_loss(loss="250", duration="10s"), "fault.networkChaos.loss.loss"),
    (lambda: chaoslab.network_partition(duration="10s", direction="both"), "fault.networkChaos.direction"),
    (lambda: chaoslab.service("Pay", namespace="shop", tier="core", labels={"app": "p"}), "service.name"),
    (lambda: chaoslab.service("pay", namespace="shop", tier="gold", labels={"app": "p"}),  # type: ignore[arg-type]
     "service.tier"),
    (lambda: chaoslab.service("pay", namespace="shop", tier="core"), "service.selector"),
], ids=lambda x: x if isinstance(x, str) else "")
def test_an_invalid_value_is_refused_at_construction_naming_the_field(build: object, field: str) -> None:
    with pytest.raises(InvalidInputError) as raised:
        build()  # type: ignore[operator]
    assert raised.value.field == field, str(raised.value)


def test_validate_names_the_field_of_a_value_built_by_hand() -> None:
    catalog = chaoslab.load(CATALOG)
    assert isinstance(catalog, chaoslab.Catalog)
    # Built with the dataclass directly, so nothing checked it yet.
    fault = chaoslab.NetworkChaos(action=chaoslab.NetworkAction.DELAY, mode=chaoslab.Mode.ALL,
                                  duration="30s")
    experiment = chaoslab.Experiment(name="payment-delay", service="payment", fault=fault)
    with pytest.raises(InvalidInputError) as raised:
        chaoslab.validate(experiment, catalog=catalog)
    assert raised.value.field == "spec.fault.networkChaos.delay"
    with pytest.raises(InvalidInputError, match="unknown service 'paymnt'"):
        chaoslab.experiment("x", service="paymnt", fault=chaoslab.pod_kill(duration="5s"), catalog=catalog)


def test_a_kube_system_service_is_refused_for_a_lone_experiment() -> None:
    system = chaoslab.service("dns", namespace="kube-system", tier="core", labels={"k8s-app": "kube-dns"})
    with pytest.raises(InvalidInputError, match="kube-system"):
        chaoslab.experiment("dns-kill", service=system, fault=chaoslab.pod_kill(duration="5s"))


def test_one_line_matrix_of_non_core_services_and_three_faults() -> None:
    catalog = chaoslab.load(CATALOG)
    assert isinstance(catalog, chaoslab.Catalog)
    faults = {"delay": chaoslab.network_delay(latency="100ms", duration="30s"),
              "loss": chaoslab.network_loss(loss=10, duration="30s"),
              "kill": chaoslab.pod_kill(duration="20s")}
    day = chaoslab.GameDay(name="matrix", catalog=catalog,
                           matrix=chaoslab.matrix(faults, services=chaoslab.Tier.NON_CORE))
    non_core = [s.name for s in catalog.services if s.tier is chaoslab.Tier.NON_CORE]
    steps = [s.name for s in chaoslab.to_plan(chaoslab.validate(day)).steps]
    assert steps == [f"{s}-{f}" for s in non_core for f in faults]
    crossed = chaoslab.cross(catalog, faults, tier=chaoslab.Tier.NON_CORE)
    assert [e.name for e in crossed] == steps


def test_exports_of_an_experiment_built_in_code() -> None:
    catalog = chaoslab.load(CATALOG)
    assert isinstance(catalog, chaoslab.Catalog)
    exp = chaoslab.experiment("payment-delay", service="payment", catalog=catalog,
                              fault=chaoslab.network_delay(latency="200ms", duration="30s"))
    manifest = chaoslab.to_chaos_mesh(exp, catalog)
    assert manifest["kind"] == "NetworkChaos"
    assert manifest["spec"]["selector"]["namespaces"] == ["shop"]
    ctk = chaoslab.to_chaostoolkit(exp, catalog, target="sandbox",
                                   rules=[EXPERIMENTS / "rules" / "shop-slo.yaml"])
    assert ctk["steady-state-hypothesis"]["probes"]
    hypothesis = chaoslab.hypothesis("payment", [EXPERIMENTS / "rules" / "shop-slo.yaml"], catalog)
    assert hypothesis == ctk["steady-state-hypothesis"]


# --- files in and out ------------------------------------------------------------------------


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: str(p.relative_to(EXPERIMENTS)))
def test_every_shipped_file_round_trips(path: Path, tmp_path: Path) -> None:
    loaded = chaoslab.load(path)
    copy = tmp_path / path.name
    copy.write_text(chaoslab.dump(loaded))
    assert chaoslab.load(copy, catalog=CATALOG) == loaded
    assert chaoslab.validate(loaded, catalog=chaoslab.load(CATALOG)) == loaded  # type: ignore[arg-type]


_names = st.from_regex(r"[a-z][a-z0-9]{0,8}", fullmatch=True)
_duration = st.builds(lambda n, u: f"{n}{u}", st.integers(1, 600), st.sampled_from(["ms", "s", "m"]))
_mode = st.sampled_from(["one", "all", "fixed", "fixed-percent", "random-max-percent"])


def _value(mode: str, number: int) -> int | None:
    return None if mode in ("one", "all") else number


_faults = st.one_of(
    st.builds(lambda la, d, m, n: chaoslab.network_delay(latency=la, duration=d, mode=m, value=_value(m, n)),
              _duration, _duration, _mode, st.integers(1, 100)),
    st.builds(lambda loss, d, m, n: chaoslab.network_loss(loss=loss, duration=d, mode=m, value=_value(m, n)),
              st.integers(1, 100), _duration, _mode, st.integers(1, 100)),
    st.builds(lambda d, m, n, g: chaoslab.pod_kill(duration=d, mode=m, value=_value(m, n), grace_period=g),
              _duration, _mode, st.integers(1, 100), st.none() | st.integers(0, 60)),
    st.builds(lambda d, c: chaoslab.container_kill(containers=c, duration=d), _duration,
              st.lists(_names, min_size=1, max_size=3, unique=True)),
)


@st.composite
def _gamedays(draw: st.DrawFn) -> tuple[chaoslab.Catalog, chaoslab.GameDay]:
    names = draw(st.lists(_names, min_size=1, max_size=6, unique=True))
    services = [chaoslab.service(n, namespace=draw(_names), tier=draw(st.sampled_from(["core", "non-core"])),
                                 labels={"app": n}) for n in names]
    catalog = chaoslab.catalog(draw(_names), services)
    faults = draw(st.dictionaries(_names, _faults, min_size=1, max_size=3))
    matrix = chaoslab.matrix(faults, services=draw(st.sampled_from(["all", services[0].tier, names[:1]])))
    window = draw(st.none() | st.builds(
        lambda days, a, b: chaoslab.Window(days=tuple(days), start=a, end=b, timezone="Europe/Paris"),
        st.lists(st.sampled_from(["mon", "tue", "wed", "thu", "fri", "sat", "sun"]), min_size=1, unique=True),
        st.times().map(lambda t: t.replace(second=0, microsecond=0)),
        st.times().map(lambda t: t.replace(second=0, microsecond=0))).filter(lambda w: w.start != w.end))
    gameday = chaoslab.GameDay(
        name=draw(_names), catalog=catalog, matrix=matrix, gate=draw(st.sampled_from(list(chaoslab.Gate))),
        blast_radius=tuple(draw(st.lists(st.sampled_from([chaoslab.RampLevel(mode=chaoslab.Mode.ONE),
                                                          chaoslab.RampLevel(mode=chaoslab.Mode.FIXED_PERCENT,
                                                                             value="50")]), max_size=2))),
        window=window, recovery_timeout_s=float(draw(st.integers(1, 600))),
        description=draw(st.text(alphabet="abc xyz", max_size=20)).strip(),
    )
    return catalog, gameday


@settings(max_examples=25, deadline=None)
@given(_gamedays())
def test_generated_game_days_round_trip(tmp_path_factory: pytest.TempPathFactory,
                                        drawn: tuple[chaoslab.Catalog, chaoslab.GameDay]) -> None:
    catalog, gameday = drawn
    folder = tmp_path_factory.mktemp("generated")
    checked = chaoslab.validate(gameday)
    assert checked == gameday
    saved = chaoslab.save(checked, folder / "gameday.yaml")
    assert saved == checked
    assert chaoslab.load(folder / "gameday.yaml") == saved
    assert chaoslab.load(folder / "catalog.yaml") == catalog


@settings(max_examples=40, deadline=None)
@given(_names, _faults, st.text(alphabet="abcdef ", max_size=30), st.lists(_names, max_size=3))
def test_generated_experiments_round_trip(tmp_path_factory: pytest.TempPathFactory, name: str,
                                          fault: chaoslab.NetworkChaos | chaoslab.PodChaos, description: str,
                                          tags: list[str]) -> None:
    target = chaoslab.service("svc", namespace="team", tier="non-core", labels={"app": "svc"})
    exp = chaoslab.experiment(name, service=target, fault=fault, description=description.strip(), tags=tags)
    path = tmp_path_factory.mktemp("exp") / "exp.yaml"
    path.write_text(chaoslab.dump(exp))
    assert chaoslab.load(path) == exp


def test_a_game_day_built_in_code_is_saved_with_its_catalog_and_experiments(tmp_path: Path) -> None:
    services = [chaoslab.service(f"svc{i}", namespace="shop", tier="core" if i == 0 else "non-core",
                                 labels={"app": f"svc{i}"}) for i in range(3)]
    catalog = chaoslab.catalog("shop", services)
    exp = chaoslab.experiment("svc1-kill", service="svc1", catalog=catalog,
                              fault=chaoslab.pod_kill(duration="9s"))
    day = chaoslab.GameDay(name="coded", catalog=catalog, experiments=(exp,))
    with pytest.raises(InvalidInputError, match="built in code"):
        chaoslab.dump(day)
    saved = chaoslab.save(day, tmp_path / "gameday.yaml")
    assert saved == day
    assert (tmp_path / "catalog.yaml").is_file()
    assert (tmp_path / "exp" / "svc1-kill.yaml").is_file()
    assert "catalog: catalog.yaml" in (tmp_path / "gameday.yaml").read_text()


def test_run_from_another_thread_says_it_needs_the_main_thread() -> None:
    """Signals must remove the active fault: only the main thread can install handlers."""
    errors: list[BaseException] = []
    day = chaoslab.load(EXPERIMENTS / "gameday.yaml")
    assert isinstance(day, chaoslab.GameDay)

    def call() -> None:
        try:
            chaoslab.run(day, target="sandbox")
        except BaseException as exc:  # collected for the main thread to check
            errors.append(exc)

    worker = threading.Thread(target=call)
    worker.start()
    worker.join(timeout=60)
    [error] = errors
    assert isinstance(error, chaoslab.ChaoslabError)
    assert "main thread" in str(error)
