"""report.md from a run.json document: verdict table first, a PDCA section per step with the
numbers, the checklist last; an old run.json without ``pdca`` still renders."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

from chaoslab.model import RunResult, Verdict
from chaoslab.report.html import render_html
from chaoslab.report.markdown import render_markdown, write_markdown
from chaoslab.report.record import run_to_dict
from tests.support.pdca_runs import ITEM_CART, ITEM_CATALOG, ITEM_PAYMENT, old_run, sample_gameday_run


def sections(text: str, level: str) -> list[str]:
    return re.findall(rf"^{level} (.+)$", text, flags=re.MULTILINE)


def step_section(text: str, title: str) -> str:
    start = text.index(f"## {title}")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


def test_the_verdict_table_comes_first_then_one_section_per_step_then_the_checklist() -> None:
    text = render_markdown(sample_gameday_run())
    assert text.startswith("# Game day `shop-weekly` — halted\n")
    assert text.index("| step | service | tier | fault | verdict | recovery | reason |") < text.index("## 1.")
    assert sections(text, "##") == [
        "1. catalog-delay — held",
        "2. cart-delay — held",
        "3. payment-pod-kill — halted",
        "4. payment-delay — skipped",
        "Checklist after this run",
    ]
    row = "| payment-pod-kill | payment | core | PodChaos pod-kill (one) | **halted** | 13.6s |"
    assert row in text


def test_each_step_has_plan_timeline_and_check_in_that_order() -> None:
    text = render_markdown(sample_gameday_run())
    payment = step_section(text, "3. payment-pod-kill")
    assert sections(payment, "###") == ["Plan", "Timeline", "Check", "Act"]
    skipped = step_section(text, "4. payment-delay")
    # Nothing was opened or verified by a skipped step: no Act section.
    assert sections(skipped, "###") == ["Plan", "Timeline", "Check"]


def test_plan_names_the_fault_the_hypothesis_and_the_items_it_rechecks() -> None:
    payment = step_section(render_markdown(sample_gameday_run()), "3. payment-pod-kill")
    assert "- **Fault**: pod-kill, one pod of payment, 20s — PodChaos pod-kill (one)" in payment
    assert "- **Expected**: the hypothesis holds" in payment
    assert "`PaymentHighErrorRate (payment)`, `PaymentHighLatencyP99 (payment)`" in payment
    assert f"- **Re-checks**: `{ITEM_PAYMENT}`" in payment
    assert "| PaymentHighErrorRate | payment | `(sum(rate(http_requests_total{" in payment
    assert "| > 0.05 | 60 s | page |" in payment
    assert "| ShopAvailabilityBurn | global |" in payment


def test_timeline_is_timed_from_the_injection_and_names_the_pods() -> None:
    payment = step_section(render_markdown(sample_gameday_run()), "3. payment-pod-kill")
    assert "| 10:15:50.200 | -0.8s | baseline |" in payment
    assert (
        "| 10:15:51.000 | +0.0s | injected | pod-kill of 1 payment pod (shop/payment-6c8f9-k7x2p) |"
        in payment
    )
    assert "| +6.3s | pod-replaced |" in payment
    skipped = step_section(render_markdown(sample_gameday_run()), "4. payment-delay")
    # No injection, no offset to time from.
    assert "| 10:16:12.000 | — | skipped | gate stop: step payment-pod-kill halted |" in skipped


def test_check_has_halt_latency_recovery_sli_range_and_detection() -> None:
    payment = step_section(render_markdown(sample_gameday_run()), "3. payment-pod-kill")
    assert (
        "- **Halt** on `PaymentHighErrorRate (payment)`: breach 10:15:52.600, detected 10:15:52.800, "
        "removed 10:15:52.900: 0.30s from breach to removal"
    ) in payment
    assert "- **Recovery**: 13.6 s, within the target of 60 s" in payment
    assert "- **Fault window**: 10:15:51.000 → 10:15:52.900" in payment
    # SLI min and max against the threshold; the breached one says so.
    assert "| PaymentHighErrorRate (payment) | 0 | 0.31 | > 0.05 | 13 of 61 — **breached** |" in payment
    assert "| PaymentHighLatencyP99 (payment) | 0.08 | 0.48 | > 1 | 0 of 61 |" in payment
    assert "| PaymentHighErrorRate | payment | 60 s | 0.80 s | — | 12.1 s | yes |" in payment
    assert "| PaymentHighLatencyP99 | payment | 60 s | — | — | 0.00 s | no (SLI never breached) |" in payment
    assert "- **slo-broken**: PaymentHighErrorRate (payment) reached 0.31 > 0.05" in payment


def test_a_held_step_has_no_halt_line_and_a_slow_recovery_says_so() -> None:
    run = sample_gameday_run()
    catalog = step_section(render_markdown(run), "1. catalog-delay")
    assert "**Halt**" not in catalog
    assert "- **Recovery**: 0.50 s, within the target of 60 s" in catalog
    run["pdca"]["check"][0]["recovery_s"] = 75.4
    assert "- **Recovery**: 75.4 s, **slower than** the target of 60 s" in render_markdown(run)


def test_act_lists_the_items_of_the_step_and_the_checklist_sorts_work_first() -> None:
    text = render_markdown(sample_gameday_run())
    payment = step_section(text, "3. payment-pod-kill")
    assert f"- [ ] **open** · payment · team-payments · `{ITEM_PAYMENT}`" in payment
    assert "Run more than one payment replica, add a PodDisruptionBudget" in payment
    checklist = step_section(text, "Checklist after this run")
    assert "3 items: 1 open, 1 accepted, 1 verified." in checklist
    order = [checklist.index(f"`{i}`") for i in (ITEM_PAYMENT, ITEM_CATALOG, ITEM_CART)]
    assert order == sorted(order)
    assert f"- [x] **verified** · cart · team-checkout · `{ITEM_CART}`" in checklist
    assert "Note: non-core; the frontend latency SLO covers catalog pages" in checklist


def test_an_old_run_json_without_pdca_renders_the_table_halts_and_recovery() -> None:
    text = render_markdown(old_run())
    assert "has no PDCA record" in text
    assert "| payment-pod-kill | payment | core | PodChaos pod-kill (one) | **halted** | 13.6s |" in text
    payment = step_section(text, "3. payment-pod-kill")
    assert sections(payment, "###") == ["Plan", "Timeline", "Check"]
    assert "0.30s from breach to removal" in payment
    assert "- **Recovery**: 13.6 s" in payment
    assert "| 10:15:52.600 | breach |" in payment
    assert "Checklist" not in text


def test_a_bare_minimum_run_json_renders_without_error() -> None:
    text = render_markdown({"run_id": "r1", "verdict": "held", "steps": [{"verdict": "held"}]})
    assert "## 1. step 1 — held" in text


def test_pipes_and_newlines_from_the_run_cannot_break_the_tables() -> None:
    run = sample_gameday_run()
    run["steps"][0]["reason"] = "a | b\nc"
    run["pdca"]["do"][0]["events"][0]["text"] = "left | right"
    text = render_markdown(run)
    assert "| a \\| b c |" in text
    assert "| left \\| right |" in text


def test_faults_that_may_remain_and_the_interrupting_signal_reach_both_reports(tmp_path: Path) -> None:
    at = datetime(2026, 12, 6, 10, 15, tzinfo=UTC)
    result = RunResult(
        run_id="r1",
        gameday="shop-weekly",
        target="kubernetes",
        started_at=at,
        ended_at=at,
        verdict=Verdict.ERROR,
        steps=(),
        remaining=("shop/PodChaos/payment-kill-r1",),
        interrupted="SIGTERM",
    )
    text = write_markdown(result, tmp_path).read_text(encoding="utf-8")
    assert "## Cleanup failed: these may remain\n\n- `shop/PodChaos/payment-kill-r1`" in text
    assert "The run was interrupted by SIGTERM; the active fault was removed." in text
    html = render_html(run_to_dict(result))
    assert "<code>shop/PodChaos/payment-kill-r1</code>" in html
    assert "interrupted by SIGTERM" in html


def test_the_readme_excerpt_is_what_report_md_says() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    excerpt = readme.split("```markdown\n", 1)[1].split("```", 1)[0]
    lines = render_markdown(sample_gameday_run()).splitlines()
    assert [line for line in excerpt.splitlines() if line and line != "..." and line not in lines] == []
