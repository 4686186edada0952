"""A step's Chaos Toolkit probes answer from the runner's fresh checks instead of asking
Prometheus again; a stale check, a check without data, or another Prometheus is asked.
So does the guard probe, when every one of its guards was judged with its ``ignore``."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from chaoslab.model import HypothesisCheck
from chaoslab.prometheus.probes import alert_quiet, answers_from, guards_quiet
from chaoslab.runner.recent import RecentChecks
from chaoslab.watch import Condition
from tests.support.prometheus import Reply, ScriptedServer, alerts

EXPR = 'sum(rate(errors{service="cart"}[10s])) / sum(rate(total{service="cart"}[10s])) > 0.05'
CONDITION = Condition(alert="CartErrors", expr=EXPR, service="cart", target=True)
QUIET = HypothesisCheck(alert="CartErrors", service="cart", met=True, state="inactive", condition_true=False,
                        value=0.01, threshold=0.05, margin=0.04, reason="CartErrors is quiet: 0.01",
                        at=datetime.now(UTC))


def scripted() -> ScriptedServer:
    return ScriptedServer({"/api/v1/alerts": alerts(), "/api/v1/query": Reply()})


def test_a_fresh_check_answers_the_probe_without_a_request() -> None:
    with scripted() as server:
        recent = RecentChecks(url=server.url, max_age=60.0)
        recent.update([CONDITION], [QUIET])
        with answers_from(recent.lookup):
            output = alert_quiet("CartErrors", EXPR, configuration={"prometheus_url": server.url})
        assert server.requests == []
    assert output["verdict"] == "met"
    assert (output["value"], output["threshold"], output["margin"], output["op"]) == (0.01, 0.05, 0.04, ">")
    assert recent.reused == 1


@pytest.mark.parametrize(
    ("max_age", "check", "other_url"),
    [(0.0, QUIET, False), (60.0, HypothesisCheck(alert="CartErrors", met=False, no_data=True), False),
     (60.0, QUIET, True)],
    ids=["stale", "no-data", "other-prometheus"],
)
def test_otherwise_the_probe_asks_prometheus(max_age: float, check: HypothesisCheck, other_url: bool) -> None:
    with scripted() as server:
        recent = RecentChecks(url="http://elsewhere:9090" if other_url else server.url, max_age=max_age)
        recent.update([CONDITION], [check])
        with answers_from(recent.lookup):
            output = alert_quiet("CartErrors", EXPR, configuration={"prometheus_url": server.url})
        assert [r.path for r in server.requests][:1] == ["/api/v1/alerts"]
    assert output["verdict"] == "not-met"  # the scripted Prometheus has no data for it
    assert recent.reused == 0


GUARD = Condition(alert="NodeDown", expr="up == 0", guard=True)
GUARD_QUIET = HypothesisCheck(alert="NodeDown", met=True, state="inactive", guard=True,
                              reason="guard alert NodeDown is not firing", at=datetime.now(UTC))


def test_fresh_guard_checks_answer_the_guard_probe_without_a_request() -> None:
    with scripted() as server:
        recent = RecentChecks(url=server.url, max_age=60.0)
        recent.update([CONDITION, GUARD], [QUIET, GUARD_QUIET])
        with answers_from(recent.lookup, recent.guards):
            output = guards_quiet(["NodeDown"], configuration={"prometheus_url": server.url})
        assert server.requests == []
    assert output["verdict"] == "met"
    assert output["checks"] == [{"alert": "NodeDown", "state": "inactive", "met": True, "ignored": False,
                                 "reason": "guard alert NodeDown is not firing"}]
    assert recent.reused == 1


@pytest.mark.parametrize(
    ("max_age", "check", "names", "ignore"),
    [(0.0, GUARD_QUIET, ["NodeDown"], []),
     (60.0, HypothesisCheck(alert="NodeDown", met=False, no_data=True, guard=True), ["NodeDown"], []),
     (60.0, GUARD_QUIET, ["NodeDown", "DiskFull"], []),
     (60.0, GUARD_QUIET, ["NodeDown"], ["NodeDown"])],
    ids=["stale", "no-data", "a-guard-not-judged", "other-ignore"],
)
def test_otherwise_the_guard_probe_asks_prometheus(
    max_age: float, check: HypothesisCheck, names: list[str], ignore: list[str]
) -> None:
    with ScriptedServer({"/api/v1/alerts": alerts(("NodeDown", "firing"))}) as server:
        recent = RecentChecks(url=server.url, max_age=max_age)
        recent.update([GUARD], [check])
        with answers_from(recent.lookup, recent.guards):
            output = guards_quiet(names, ignore=ignore, configuration={"prometheus_url": server.url})
        assert [r.path for r in server.requests] == ["/api/v1/alerts"]
    firing = {"met": True, "ignored": True} if ignore else {"met": False, "ignored": False}
    assert output["checks"][0] == {"alert": "NodeDown", "state": "firing", **firing,
                                   "reason": output["checks"][0]["reason"]}
    assert recent.reused == 0
