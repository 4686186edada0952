"""The Workflow compiler's pure parts: names Chaos Mesh accepts, cron expressions, the gate
URL, and the watch covering its stage."""

from __future__ import annotations

import re

import pytest

from chaoslab.chaosmesh.workflow import GateCheck, build_workflow, check_cron, check_gate_url, dns_label
from chaoslab.errors import InvalidInputError
from chaoslab.model import Catalog, Experiment, GameDay, Mode, PodAction, PodChaos, parse_go_duration
from chaoslab.plan import build_plan
from tests.support.chaos_cases import PAYMENT, RECOMMENDATION

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


@pytest.mark.parametrize(
    ("text", "limit"),
    [("payment-delay", 63), ("Payment_Delay.v2", 63), ("x" * 80, 57), ("-edge-", 63), ("ÄÖÜ", 63)],
)
def test_dns_label_is_a_label_within_the_limit(text: str, limit: int) -> None:
    label = dns_label(text, limit=limit)
    assert DNS_LABEL.match(label)
    assert len(label) <= limit
    assert dns_label(text, limit=limit) == label  # stable


def test_dns_label_keeps_valid_names_and_never_folds_two_into_one() -> None:
    assert dns_label("payment-delay") == "payment-delay"
    assert dns_label("Payment") != dns_label("payment")
    assert dns_label("a" * 70 + "1", limit=57) != dns_label("a" * 70 + "2", limit=57)


@pytest.mark.parametrize("expr", ["0 9 * * 2", "*/5 * * * *", "0 0 9 * * MON-FRI", "@weekly", "@every 24h"])
def test_cron_expressions_chaos_mesh_parses_are_accepted(expr: str) -> None:
    check_cron(expr)


@pytest.mark.parametrize("expr", ["", "tuesday", "0 9 * *", "0 9 * * * * *", "@every 0s", "@fortnightly"])
def test_bad_cron_expressions_are_refused(expr: str) -> None:
    with pytest.raises(InvalidInputError, match="--cron"):
        check_cron(expr)


@pytest.mark.parametrize("url", ["gate:8080/gate", "ftp://gate/gate", "http:///gate", "http://gate/ gate"])
def test_bad_gate_urls_are_refused(url: str) -> None:
    with pytest.raises(InvalidInputError, match="--gate-url"):
        check_gate_url(url)


def test_long_names_stay_unique_and_short_enough_for_chaos_mesh_nodes() -> None:
    kill = PodChaos(action=PodAction.POD_KILL, mode=Mode.ONE, duration="20s")
    long = "a-very-long-experiment-name-that-goes-on-and-on-and-on-for-a-while"
    experiments = (Experiment(name=f"{long}-1", fault=kill, service="payment"),
                   Experiment(name=f"{long}-2", fault=kill, service="payment"),
                   Experiment(name="game-day", fault=kill, service="recommendation"))
    gameday = GameDay(name="Names", catalog=Catalog(name="c", services=(PAYMENT, RECOMMENDATION)),
                      experiments=experiments)
    spec = build_workflow(build_plan(gameday), gate=GateCheck(url="http://gate:8080/gate"))["spec"]
    names = [t["name"] for t in spec["templates"]]
    assert len(names) == len(set(names))
    assert all(DNS_LABEL.match(n) and len(n) <= 57 for n in names)
    assert spec["entry"] == "game-day"
    assert "game-day-2" in names


def test_the_watch_outlasts_its_steps() -> None:
    kill = PodChaos(action=PodAction.POD_KILL, mode=Mode.ONE, duration="1m30s")
    gameday = GameDay(name="long", catalog=Catalog(name="c", services=(PAYMENT,)),
                      experiments=(Experiment(name="k", fault=kill, service="payment"),) * 1)
    templates = {t["name"]: t for t in build_workflow(
        build_plan(gameday), gate=GateCheck(url="http://gate/gate"))["spec"]["templates"]}
    assert parse_go_duration(templates["watch-core"]["deadline"]) > 90
    assert templates["k"]["deadline"] == "1m30s"
