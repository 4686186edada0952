"""JUnit XML for CI: one test case per step.

held → passed; deviated, halted and baseline-not-met → ``<failure>``; error → ``<error>``;
skipped → ``<skipped>``. CI systems (GitLab, Jenkins, GitHub test reporters) read this.
"""

from __future__ import annotations

import logging
import re
import xml.etree.ElementTree as ET
from datetime import UTC
from pathlib import Path

from chaoslab.model import RunResult, StepResult, Verdict

logger = logging.getLogger(__name__)

FAILURES = frozenset({Verdict.DEVIATED, Verdict.HALTED, Verdict.BASELINE_NOT_MET})

# Reasons quote error messages from other systems, which may carry terminal colours or
# other control characters; XML 1.0 cannot hold them at all, and ElementTree writes them
# unescaped, which leaves a file no CI system can parse.
_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _text(value: str) -> str:
    return _NOT_XML.sub("", _ANSI.sub("", value))


def _seconds(step: StepResult) -> float:
    if step.started_at is None or step.ended_at is None:
        return 0.0
    return max(0.0, (step.ended_at - step.started_at).total_seconds())


def _case(step: StepResult, *, suite: str) -> ET.Element:
    case = ET.Element(
        "testcase",
        {"classname": _text(f"{suite}.{step.tier.label}"), "name": _text(step.step),
         "time": f"{_seconds(step):.3f}"},
    )
    message = _text(step.reason or step.verdict.value)
    if step.verdict in FAILURES:
        node = ET.SubElement(case, "failure", {"message": message, "type": step.verdict.value})
        node.text = _text(_details(step))
    elif step.verdict is Verdict.ERROR:
        node = ET.SubElement(case, "error", {"message": message, "type": "error"})
        node.text = _text(_details(step))
    elif step.verdict is Verdict.SKIPPED:
        ET.SubElement(case, "skipped", {"message": message})
    return case


def _details(step: StepResult) -> str:
    lines = [f"{step.experiment} on {step.service}: {step.kind.value} {step.action} mode={step.mode.value}",
             f"verdict: {step.verdict.value}", f"reason: {step.reason}"]
    if step.halt is not None:
        lines.append(f"halted on {step.halt.condition} (detected {step.halt.detected_at.isoformat()})")
    if step.recovery_s is not None:
        lines.append(f"recovered in {step.recovery_s:.1f}s")
    return "\n".join(lines)


def render_junit(result: RunResult) -> str:
    """The JUnit XML document (one ``testsuite`` inside ``testsuites``)."""
    suite_name = _text(result.gameday)
    cases = [_case(step, suite=suite_name) for step in result.steps]
    counts = {
        "tests": str(len(result.steps)),
        "failures": str(sum(s.verdict in FAILURES for s in result.steps)),
        "errors": str(sum(s.verdict is Verdict.ERROR for s in result.steps)),
        "skipped": str(sum(s.verdict is Verdict.SKIPPED for s in result.steps)),
        "time": f"{max(0.0, (result.ended_at - result.started_at).total_seconds()):.3f}",
    }
    root = ET.Element("testsuites", {"name": "chaoslab", **counts})
    # The JUnit schema's timestamp has no zone and no fraction (it is UTC here), and its id
    # is the suite's index; the run id is a property.
    started = result.started_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")
    suite = ET.SubElement(root, "testsuite", {"name": suite_name, "id": "0", "timestamp": started, **counts})
    props = ET.SubElement(suite, "properties")
    facts = (("run_id", result.run_id), ("target", result.target), ("verdict", result.verdict.value))
    for key, value in facts:
        ET.SubElement(props, "property", {"name": key, "value": _text(value)})
    suite.extend(cases)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def write_junit(result: RunResult, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_junit(result), encoding="utf-8")
    logger.info("JUnit report written to %s", path)
    return path
