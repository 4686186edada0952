"""The orchestrator: executes a plan step by step — gates, halts, removal, recovery.

``run_plan`` is the entry point; ``control`` is the Chaos Toolkit control every step's
experiment carries. See docs/running.md for the step lifecycle.
"""

from chaoslab.runner.core import handle_orphans, run_plan
from chaoslab.runner.events import EventSink, RunEvent
from chaoslab.runner.verdict import aggregate_verdict, new_run_id

__all__ = ["EventSink", "RunEvent", "aggregate_verdict", "handle_orphans", "new_run_id", "run_plan"]
