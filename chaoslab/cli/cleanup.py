"""`chaoslab cleanup`: remove the fault objects chaoslab created and left behind
(a run killed with SIGKILL, a lost connection), and only those."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

from chaoslab.cli import exitcodes
from chaoslab.errors import AlertmanagerError, CleanupError, InvalidInputError
from chaoslab.model import FaultHandle

HELP = "remove fault objects left by chaoslab runs (only chaoslab's)"

DESCRIPTION = """Remove the chaos objects that chaoslab created and that are still there, e.g.
after a run was killed with SIGKILL. Only objects labelled
app.kubernetes.io/managed-by=chaoslab are touched, across every namespace unless
--namespace narrows it. Each object is deleted, then chaoslab waits until Chaos Mesh
has recovered every record and released its finalizer.

If an object is still there after --timeout, or cannot be deleted at all (RBAC, an
unreachable API server), the exit code is 4 and the objects that may remain are
listed. --force then asks Chaos Mesh to drop its finalizer
(chaos-mesh.chaos-mesh.org/cleanFinalizer: forced) and, failing that, removes the
finalizers itself: the object goes, but tc/iptables rules may stay on the nodes.

With --alertmanager (or CHAOSLAB_ALERTMANAGER_URL), the Alertmanager silences chaoslab
created (createdBy: chaoslab) that are still active or pending are expired too: all of
them with --all, one run's with --run-id. They would lapse by themselves within minutes."""

EXAMPLES = """examples:
  chaoslab cleanup --all --dry-run
  chaoslab cleanup --run-id 20261127T101500Z-3f2a
  chaoslab cleanup --all --namespace shop
  chaoslab cleanup --all --timeout 20 --force
  KUBECONFIG=~/.kube/staging chaoslab cleanup --all --context staging
  chaoslab cleanup --all --target sandbox --alertmanager http://127.0.0.1:9093
"""


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "cleanup", help=HELP, description=DESCRIPTION, epilog=EXAMPLES + "\n" + exitcodes.EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--run-id", metavar="ID", help="only the objects of this run")
    which.add_argument("--all", action="store_true", help="every object chaoslab created")
    parser.add_argument("--namespace", metavar="NS", help="only this namespace (default: all)")
    parser.add_argument("--dry-run", action="store_true", help="list what would be removed; remove nothing")
    parser.add_argument("--force", action="store_true",
                        help="strip Chaos Mesh's finalizer from objects still there after --timeout")
    parser.add_argument("--timeout", type=float, default=60.0, metavar="SECONDS",
                        help="how long to wait for the objects to go (default: 60)")
    parser.add_argument("--target", choices=("kubernetes", "sandbox"), default="kubernetes",
                        help="where the faults live (default: kubernetes)")
    parser.add_argument("--context", metavar="NAME",
                        help="kubeconfig context (default: $KUBERNETES_CONTEXT, then the current one)")
    parser.add_argument("--alertmanager", metavar="URL",
                        help="also expire chaoslab's silences there (default: CHAOSLAB_ALERTMANAGER_URL)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if args.timeout <= 0:
        raise InvalidInputError(None, "--timeout", "must be greater than 0")
    silenced = _expire_silences(args)
    return max(_cleanup_faults(args), silenced)


def _expire_silences(args: argparse.Namespace) -> int:
    """Expire chaoslab's live silences; an unreachable Alertmanager is exit 3 (they lapse anyway)."""
    from chaoslab.settings import load_settings

    settings = load_settings(overrides={"alertmanager_url": args.alertmanager})
    if not settings.alertmanager_url:
        return exitcodes.OK
    from chaoslab.alertmanager.client import CREATED_BY, client_for
    from chaoslab.runner.silencing import comment_prefix

    client = client_for(settings.alertmanager_url, settings)
    try:
        found = [s for s in client.silences() if s.created_by == CREATED_BY and s.state != "expired"
                 and (args.run_id is None or s.comment.startswith(comment_prefix(args.run_id)))]
        for silence in found:
            if not args.dry_run:
                client.expire(silence.id)
            verb = "would expire" if args.dry_run else "expired"
            print(f"{verb} silence {silence.id} ({', '.join(m.describe() for m in silence.matchers)})")
    except AlertmanagerError as exc:
        print(f"chaoslab: {exc}; chaoslab's silences lapse by themselves within minutes", file=sys.stderr)
        return exitcodes.INFRA
    finally:
        client.close()
    if not found:
        print("no live chaoslab silences in Alertmanager")
    return exitcodes.OK


def _cleanup_faults(args: argparse.Namespace) -> int:
    from chaoslab.app.cleanup import find_faults, open_backend, remove_faults

    with open_backend(args.target, context=args.context) as backend:
        found = find_faults(backend, run_id=None if args.all else args.run_id, namespace=args.namespace)
        if not found:
            print(_nothing_found(args))
            return exitcodes.OK
        if args.dry_run:
            _print_handles(found, verb="would remove", target=args.target)
            return exitcodes.OK
        try:
            remove_faults(backend, found, timeout_s=args.timeout, force=args.force)
        except CleanupError as exc:
            if args.target == "kubernetes":
                _print_handles([h for h in found if h.ref not in exc.remaining], verb="removed",
                               target=args.target)
            raise
        except KeyboardInterrupt:
            if args.target != "kubernetes":
                raise
            # The deletes went out: Chaos Mesh goes on recovering without chaoslab waiting.
            print("chaoslab: cleanup interrupted before every object was confirmed gone; "
                  "`chaoslab cleanup --all --dry-run` shows what remains", file=sys.stderr)
            return exitcodes.CLEANUP
        _print_handles(found, verb="removed", target=args.target)
        return exitcodes.OK


def _nothing_found(args: argparse.Namespace) -> str:
    if args.target == "sandbox":
        return "no chaoslab faults found in the sandbox"
    scope = f"run {args.run_id}" if args.run_id else "any run"
    where = f"namespace {args.namespace}" if args.namespace else "all namespaces"
    return f"no chaoslab fault objects found ({scope}, {where})"


def _print_handles(handles: Sequence[FaultHandle], *, verb: str, target: str) -> None:
    for handle in handles:
        if target == "sandbox":
            print(f"{verb} {handle.ref} (sandbox)")
        else:
            print(f"{verb} {handle.ref} (experiment {handle.experiment or '?'}, run {handle.run_id or '?'})")
