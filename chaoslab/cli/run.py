"""`chaoslab run`: a game day or a single experiment, step by step, with a live view,
the run record (run.json, report.md, report.html, optional JUnit) and the exit-code contract."""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from chaoslab.cli import collector, exitcodes
from chaoslab.errors import ChaoslabError, InvalidInputError

if TYPE_CHECKING:
    from chaoslab.model import Plan, RunResult
    from chaoslab.runner.signals import SignalWatch
    from chaoslab.settings import Settings

logger = logging.getLogger(__name__)

HELP = "run a game day or an experiment: inject, watch the SLOs, halt, remove, report"

DESCRIPTION = """Run a game day (or one experiment) step by step, non-core services first.

For each step: the run window and safety rules; the baseline (every SLO alert of the
system must be quiet and no guard alert firing, or nothing is injected); inject and hold
while a watcher checks every alert condition 4 times a second (guard alerts: their state
only; firing halts, pending is recorded); on a breach the fault is removed at once; then
wait for the system to recover. With `gate: stop` the first failing step ends the game
day. Each step runs as its exported Chaos Toolkit experiment; its journal, run.json,
report.md and report.html go to REPORTS/<run-id>/, and REPORTS/index.html lists every run.
SIGINT/SIGTERM remove the active fault and exit 3.

Core-tier steps ask for confirmation on a terminal; pass --yes in CI (without a
terminal and without --yes, core steps are refused with exit 2)."""

EXAMPLES = """examples:
  chaoslab run --target sandbox experiments/gameday.yaml
  chaoslab run --target sandbox --dry-run experiments/gameday.yaml
  chaoslab run --prometheus http://prometheus.monitoring:9090 --yes \\
      --junit reports/chaos-junit.xml experiments/gameday.yaml
  chaoslab run --target sandbox --format json experiments/exp/catalog-delay.yaml | jq .verdict
"""


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "run", help=HELP, description=DESCRIPTION, epilog=EXAMPLES + "\n" + exitcodes.EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("path", metavar="PATH", help="a GameDay or Experiment file")
    parser.add_argument("--target", choices=("kubernetes", "sandbox"), default="kubernetes",
                        help="where faults are injected (default: kubernetes)")
    parser.add_argument("--catalog", metavar="FILE",
                        help="service catalog (default: catalog.yaml beside PATH or up to 2 parents)")
    parser.add_argument("--prometheus", metavar="URL",
                        help="Prometheus base URL (default: CHAOSLAB_PROMETHEUS_URL, or the sandbox's)")
    parser.add_argument("--rules", metavar="FILE", action="append", default=[],
                        help="alert rule file, added to those PATH names (repeatable); with none at "
                             "all, the alerting rules Prometheus has loaded")
    parser.add_argument("--reports", metavar="DIR", help="where run folders go (default: reports/)")
    parser.add_argument("--junit", metavar="FILE",
                        help="also write a JUnit XML report (one test case per step)")
    parser.add_argument("--dry-run", action="store_true",
                        help="plan, preflight and check baselines; inject nothing, write nothing")
    parser.add_argument("--yes", action="store_true", help="run core-tier steps without asking")
    parser.add_argument("--format", choices=("text", "json"), default="text",
                        help="text: progress and a verdict table; json: the run record on stdout")
    parser.add_argument("--cleanup-orphans", action="store_true",
                        help="remove faults left by earlier runs instead of only warning about them")
    parser.add_argument("--context", metavar="CTX", help="Kubernetes context (default: the current one)")
    parser.add_argument("--alertmanager", metavar="URL",
                        help="silence the alerts each fault may trip in this Alertmanager (default: "
                             "CHAOSLAB_ALERTMANAGER_URL, then the game day's spec.silence.alertmanager)")
    # The collector stays paused until the first hold (cli/collector.py).
    parser.set_defaults(handler=run, resumes_collector=True)


def run(args: argparse.Namespace) -> int:
    from chaoslab.runner.signals import SignalWatch
    from chaoslab.settings import load_settings

    _quiet_logs(args.verbose)
    settings = load_settings(overrides={
        "prometheus_url": args.prometheus, "reports_dir": args.reports, "kube_context": args.context,
        "alertmanager_url": args.alertmanager,
    })
    plan = _plan(Path(args.path), catalog_flag=args.catalog, settings=settings)
    if not args.dry_run and not _confirm_core(plan, assume_yes=args.yes):
        return exitcodes.USAGE
    if not args.dry_run:
        _check_writable(settings.reports_dir, flag="--reports")
    if args.junit:
        _check_writable(Path(args.junit).parent, flag="--junit")
    from chaoslab.app.operations import silences_for

    silences = silences_for(plan, settings)
    # From here to the exit, SIGINT/SIGTERM are recorded rather than fatal: before the first
    # step they skip every step, during a step they remove its fault, and after the last
    # one they let run.json be written. (Not earlier: the confirmation prompt must stay
    # interruptible.)
    signals = SignalWatch()
    try:
        with signals.installed(stay_quiet_after_signal=True):
            return _run(args, plan=plan, settings=settings, signals=signals, silences=silences)
    except ChaoslabError:
        raise
    except Exception as exc:  # the CLI's boundary: a crash must not exit 1 ("a weakness was found")
        logger.exception("chaoslab run failed")
        print(f"chaoslab: internal error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return exitcodes.INFRA


def _run(
    args: argparse.Namespace, *, plan: Plan, settings: Settings, signals: SignalWatch, silences: Any = None
) -> int:
    from chaoslab.app.execution import execute

    live = _use_live(args.format)
    progress = _progress(live=live, json_out=args.format == "json")
    with progress as sink:
        try:
            result = execute(plan, settings=settings, target=args.target, rules=args.rules, path=args.path,
                             events=collector.resuming(sink), dry_run=args.dry_run,
                             cleanup_orphans=args.cleanup_orphans, signals=signals, notice=_notice,
                             silences=silences)
        finally:
            collector.resume()  # a run that raised before its first step
    result = _late_signal(result, signals)
    if result.record_error:
        print(f"chaoslab: {result.record_error}", file=sys.stderr)
    code = exit_code(result)
    try:
        paths = _write_reports(result, junit=args.junit, secrets=(settings.prometheus_token,))
    except OSError as exc:
        print(f"chaoslab: cannot write the run record: {exc}", file=sys.stderr)
        paths, code = {}, max(code, exitcodes.INFRA)
    _print_result(result, paths=paths, json_out=args.format == "json", rich=live,
                  secrets=(settings.prometheus_token,))
    return code


def _notice(message: str) -> None:
    print(f"chaoslab: {message}", file=sys.stderr)


def _late_signal(result: RunResult, signals: SignalWatch) -> RunResult:
    """A signal after the runner's last look still makes the run interrupted, in its record too."""
    from chaoslab.model import Verdict

    if not signals.received or result.interrupted:
        return result
    return dataclasses.replace(result, interrupted=signals.received, verdict=Verdict.ERROR,
                               interrupted_phase=str(signals.interrupted_phase or "finishing"))


def _check_writable(directory: Path, *, flag: str) -> None:
    """Refuse (exit 2) before anything is injected when the run's files cannot be written."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=directory):
            pass
    except OSError as exc:
        raise InvalidInputError(None, flag, f"cannot write to {directory}: {exc.strerror or exc}") from exc


def exit_code(result: RunResult) -> int:
    """The contract: 4 cleanup failed > 3 infrastructure error, interrupted or a checklist
    that could not be written > 1 a step
    deviated, halted or missed its baseline > 0. Skipped steps alone (outside the window,
    refused by safety rules, or a dry run) exit 0."""
    from chaoslab.model import Verdict

    verdicts = {step.verdict for step in result.steps}
    if result.remaining:
        return exitcodes.CLEANUP
    if Verdict.ERROR in verdicts or result.interrupted or result.record_error:
        return exitcodes.INFRA
    if verdicts & {Verdict.DEVIATED, Verdict.HALTED, Verdict.BASELINE_NOT_MET}:
        return exitcodes.FAILED
    return exitcodes.OK


def _quiet_logs(verbosity: int) -> None:
    # The progress view reports halts, warnings and errors itself; chaoslib's own lines
    # (it logs a rollback warning on every run) only with -vv.
    if verbosity < 2:
        logging.getLogger("chaostoolkit").setLevel(logging.CRITICAL + 1)
    if verbosity < 1:
        logging.getLogger("chaoslab").setLevel(logging.ERROR)
        # Its retry warnings repeat what the step's reason says once.
        logging.getLogger("urllib3").setLevel(logging.ERROR)


def _plan(path: Path, *, catalog_flag: str | None, settings: Settings) -> Plan:
    from chaoslab.app.subject import load_plan

    # A lone experiment has no recoveryTimeout of its own: the setting applies.
    return load_plan(path, catalog=catalog_flag, recovery_timeout_s=settings.recovery_timeout_s,
                     refusal="cannot be run: give a GameDay or an Experiment")


def _confirm_core(plan: Plan, *, assume_yes: bool) -> bool:
    from chaoslab.model import Tier

    core = [s.name for s in plan.steps if s.service.tier is Tier.CORE and s.refusal is None]
    if not core or assume_yes:
        return True
    names = ", ".join(core)
    if not sys.stdin.isatty():
        print(f"chaoslab: {len(core)} core-tier steps ({names}) need --yes when not run from a terminal",
              file=sys.stderr)
        return False
    try:
        answer = input(f"Run {len(core)} core-tier steps ({names}) against live services? [y/N] ")
    except (EOFError, KeyboardInterrupt):
        answer = ""
    if answer.strip().lower() in ("y", "yes"):
        return True
    print("chaoslab: not confirmed; nothing was run", file=sys.stderr)
    return False


def _use_live(fmt: str) -> bool:
    return fmt == "text" and sys.stdout.isatty() and not os.environ.get("NO_COLOR")


class _Progress:
    """Context manager yielding the event sink (live panel or plain lines)."""

    def __init__(self, *, live: bool, stream: Any) -> None:
        from chaoslab.cli.progress import LiveProgress, PlainProgress

        self._view: Any = LiveProgress() if live else PlainProgress(stream)
        self._live = live

    def __enter__(self) -> Any:
        if self._live:
            self._view.__enter__()
        return self._view

    def __exit__(self, *exc: object) -> None:
        if self._live:
            self._view.__exit__(*exc)


def _progress(*, live: bool, json_out: bool) -> _Progress:
    return _Progress(live=live, stream=sys.stderr if json_out else sys.stdout)


def _write_reports(result: RunResult, *, junit: str | None, secrets: Sequence[str | None]) -> dict[str, Path]:
    from chaoslab.app.execution import write_reports

    return write_reports(result, junit=junit, secrets=secrets)


def _print_result(result: RunResult, *, paths: dict[str, Path], json_out: bool, rich: bool,
                  secrets: Sequence[str | None] = ()) -> None:
    from chaoslab.report.record import run_document

    if json_out:
        print(json.dumps(run_document(result, secrets=secrets), indent=2))
    elif rich:
        _rich_table(result)
    else:
        _plain_table(result)
    if result.remaining:  # on stderr in every format: exit 4 must say what may remain
        print("cleanup failed; these may remain (run `chaoslab cleanup`):", file=sys.stderr)
        for ref in result.remaining:
            print(f"  {ref}", file=sys.stderr)
    if json_out:
        return
    if "report" in paths:
        print(f"report: {paths['report']}")
        print(f"html report: {paths['html']}")
        print(f"run record: {paths['run']}")
    if "junit" in paths:
        print(f"junit: {paths['junit']}")
    if result.pdca is not None:
        from chaoslab.cli.checklist import checklist_summary

        print(checklist_summary(result))


def _plain_table(result: RunResult) -> None:
    rows = [("step", "service", "tier", "verdict", "recovery", "reason")]
    for s in result.steps:
        recovery = "" if s.recovery_s is None else f"{s.recovery_s:.1f}s"
        rows.append((s.step, s.service, s.tier.label, s.verdict.value, recovery, s.reason))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    print(f"\nrun {result.run_id} ({result.gameday} on {result.target}): {result.verdict.value}")
    for row in rows:
        print("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row[:5])) + "  " + row[5])


def _rich_table(result: RunResult) -> None:
    from rich.console import Console
    from rich.table import Table

    from chaoslab.cli.progress import VERDICT_STYLE

    table = Table(title=f"run {result.run_id} · {result.gameday} on {result.target} · {result.verdict.value}")
    for column in ("step", "service", "tier", "verdict", "recovery", "reason"):
        table.add_column(column, overflow="fold")
    for s in result.steps:
        style = VERDICT_STYLE.get(s.verdict.value, "")
        recovery = "" if s.recovery_s is None else f"{s.recovery_s:.1f}s"
        table.add_row(s.step, s.service, s.tier.label, f"[{style}]{s.verdict.value}[/]", recovery, s.reason)
    Console().print(table)
