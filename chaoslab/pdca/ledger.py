"""The checklist ledger: every Act item across runs, in SQLite at ``<reports>/chaoslab.db``.

It is the record of what the team decided, so it must never lose a write: every change is
one transaction (``BEGIN IMMEDIATE``), the database runs in WAL mode with
``synchronous=FULL`` and a busy timeout (many writers wait their turn), and its schema is
versioned (``schema_version``) with a list of migrations applied in order on open.

Lifecycle of an item (``after_found``, ``after_held``; see docs/running.md):

- found by a run → ``open``; found again while ``verified`` or ``done`` → ``reopened``;
- a later run of the same experiment on the same service *held* and did not find it
  again → ``verified`` (from ``open``, ``reopened`` or ``done``);
- ``accepted`` (a known risk) and ``done`` (fixed) are set by people; ``accepted`` stays
  until someone changes it.

Steps that were skipped, refused or ended in error verify nothing and reopen nothing: they
only ever carry an ``injection-failed`` finding.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sqlite3
from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from chaoslab.errors import InvalidInputError, LedgerError
from chaoslab.pdca.findings import finding_id
from chaoslab.pdca_model import ChecklistItem, Finding, FindingKind, ItemStatus
from chaoslab.redaction import redact, redact_text
from chaoslab.scope import suggest

logger = logging.getLogger(__name__)

DB_FILE = "chaoslab.db"
BUSY_TIMEOUT_S = 60.0

# Each entry migrates the schema from version i to i + 1; only ever append.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """CREATE TABLE items (
            id TEXT PRIMARY KEY,
            experiment TEXT NOT NULL,
            service TEXT NOT NULL,
            target TEXT NOT NULL,
            owner TEXT,
            kind TEXT NOT NULL,
            alert TEXT,
            text TEXT NOT NULL,
            status TEXT NOT NULL,
            note TEXT,
            first_seen TEXT NOT NULL,
            last_seen TEXT NOT NULL,
            evidence TEXT NOT NULL DEFAULT '{}',
            updated_at TEXT NOT NULL)""",
        "CREATE INDEX items_by_target ON items (experiment, target)",
        """CREATE TABLE item_runs (
            item_id TEXT NOT NULL REFERENCES items (id),
            run_id TEXT NOT NULL,
            at TEXT NOT NULL,
            PRIMARY KEY (item_id, run_id))""",
        """CREATE TABLE history (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            item_id TEXT NOT NULL REFERENCES items (id),
            at TEXT NOT NULL,
            run_id TEXT,
            old_status TEXT,
            new_status TEXT NOT NULL,
            note TEXT)""",
    ),
)

RECHECKED = (ItemStatus.OPEN, ItemStatus.REOPENED, ItemStatus.DONE)
SETTABLE = (ItemStatus.ACCEPTED, ItemStatus.DONE)
_ORDER = {ItemStatus.REOPENED: 0, ItemStatus.OPEN: 1, ItemStatus.DONE: 2, ItemStatus.ACCEPTED: 3,
          ItemStatus.VERIFIED: 4}


class Judgement(StrEnum):
    """What a run says about one experiment on one service."""

    HELD = "held"  # every step of it held: what it does not find again is verified
    FAILED = "failed"  # a weakness was found: its findings open or reopen items
    INCONCLUSIVE = "inconclusive"  # skipped, refused, error: nothing is verified or reopened


@dataclass(frozen=True, slots=True, kw_only=True)
class GroupOutcome:
    """A run's steps of one experiment on one service (ramp levels together)."""

    experiment: str
    target: str
    judgement: Judgement
    findings: tuple[Finding, ...] = ()


def after_found(status: ItemStatus | None) -> ItemStatus:
    """The status of an item a run found (again)."""
    if status is None or status is ItemStatus.OPEN:
        return ItemStatus.OPEN
    if status is ItemStatus.ACCEPTED:
        return ItemStatus.ACCEPTED  # a known risk stays known
    return ItemStatus.REOPENED  # verified, done, reopened


def after_held(status: ItemStatus) -> ItemStatus:
    """The status of an item its experiment re-checked, held, and did not find again."""
    return ItemStatus.VERIFIED if status in RECHECKED else status


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text)


class Ledger:
    """One connection to the ledger; open it with ``Ledger(path)`` or ``open_ledger(reports)``.

    ``secrets``: values masked wherever they would be stored (see chaoslab.redaction)."""

    def __init__(self, path: Path, *, timeout: float = BUSY_TIMEOUT_S, secrets: Iterable[str | None] = (),
                 migrations: Sequence[tuple[str, ...]] = MIGRATIONS) -> None:
        self.path = Path(path)
        self._secrets = tuple(s for s in secrets if s)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, timeout=timeout, isolation_level=None)
        except (OSError, sqlite3.Error) as exc:
            raise LedgerError(f"cannot open the checklist ledger {self.path}: {exc}") from exc
        self._db.row_factory = sqlite3.Row
        try:
            self._db.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
            self._db.execute("PRAGMA journal_mode = WAL")
            self._db.execute("PRAGMA synchronous = FULL")
            self._db.execute("PRAGMA foreign_keys = ON")
            self._migrate(migrations)
        except sqlite3.Error as exc:
            self._db.close()
            raise LedgerError(f"cannot open the checklist ledger {self.path}: {exc}") from exc
        except LedgerError:
            self._db.close()
            raise

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- schema ------------------------------------------------------------------------------

    @property
    def version(self) -> int:
        row = self._db.execute("SELECT max(version) FROM schema_version").fetchone()
        return int(row[0] or 0)

    def _migrate(self, migrations: Sequence[tuple[str, ...]]) -> None:
        with self._write():
            self._db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            current = self.version
            if current > len(migrations):
                raise LedgerError(f"the checklist ledger {self.path} has schema version {current}; this "
                                  f"chaoslab knows up to {len(migrations)}: upgrade chaoslab")
            for version in range(current, len(migrations)):
                for statement in migrations[version]:
                    self._db.execute(statement)
                self._db.execute("INSERT INTO schema_version (version) VALUES (?)", (version + 1,))
                logger.info("checklist ledger %s migrated to schema version %d", self.path, version + 1)

    @contextlib.contextmanager
    def _write(self) -> Iterator[None]:
        """One transaction; it takes the write lock at once, so writers queue instead of failing."""
        try:
            self._db.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise LedgerError(f"cannot write the checklist ledger {self.path}: {exc}") from exc
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        try:
            self._db.execute("COMMIT")
        except sqlite3.Error as exc:
            self._db.execute("ROLLBACK")
            raise LedgerError(f"cannot write the checklist ledger {self.path}: {exc}") from exc

    # --- runs ---------------------------------------------------------------------------------

    def record_run(
        self, *, run_id: str, at: datetime, outcomes: Sequence[GroupOutcome]
    ) -> tuple[ChecklistItem, ...]:
        """Apply one run's outcomes in one transaction. Returns the items this run touched
        (opened, saw again, verified or reopened), in the order of the outcomes."""
        touched: list[str] = []
        try:
            with self._write():
                for outcome in outcomes:
                    touched += self._apply(outcome, run_id=run_id, at=at)
        except sqlite3.Error as exc:
            raise LedgerError(f"cannot record run {run_id} in {self.path}: {exc}") from exc
        return tuple(item for item_id in dict.fromkeys(touched) if (item := self.get(item_id)) is not None)

    def _apply(self, outcome: GroupOutcome, *, run_id: str, at: datetime) -> list[str]:
        found: dict[str, Finding] = {}
        for finding in outcome.findings:
            inconclusive = outcome.judgement is Judgement.INCONCLUSIVE
            if inconclusive and finding.kind is not FindingKind.INJECTION_FAILED:
                continue  # see the module docstring
            found.setdefault(finding_id(finding), finding)
        for item_id, finding in found.items():
            self._found(item_id, finding, run_id=run_id, at=at)
        touched = list(found)
        if outcome.judgement is Judgement.HELD:
            marks = ",".join("?" * len(RECHECKED))
            rows = self._db.execute(
                f"SELECT id, status FROM items WHERE experiment = ? AND target = ? AND status IN ({marks})",
                (outcome.experiment, outcome.target, *RECHECKED),
            ).fetchall()
            for row in rows:
                if row["id"] in found:
                    continue
                self._set(row["id"], ItemStatus(row["status"]), after_held(ItemStatus(row["status"])),
                          at=at, run_id=run_id)
                touched.append(row["id"])
        return touched

    def _found(self, item_id: str, finding: Finding, *, run_id: str, at: datetime) -> None:
        row = self._db.execute("SELECT status FROM items WHERE id = ?", (item_id,)).fetchone()
        old = ItemStatus(row["status"]) if row is not None else None
        new = after_found(old)
        text = redact_text(finding.text, secrets=self._secrets)
        clean = redact(dict(finding.evidence), secrets=self._secrets)
        evidence = json.dumps(clean, sort_keys=True, default=str)
        stamp = _iso(at)
        if row is None:
            self._db.execute(
                "INSERT INTO items (id, experiment, service, target, owner, kind, alert, text, status, "
                "first_seen, last_seen, evidence, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (item_id, finding.experiment, finding.service, finding.target, finding.owner,
                 finding.kind.value, finding.alert, text, new.value, stamp, stamp, evidence, stamp),
            )
        else:
            self._db.execute(
                "UPDATE items SET owner = ?, alert = ?, text = ?, evidence = ?, last_seen = ?, "
                "updated_at = ? WHERE id = ?",
                (finding.owner, finding.alert, text, evidence, stamp, stamp, item_id),
            )
        self._db.execute("INSERT OR IGNORE INTO item_runs (item_id, run_id, at) VALUES (?, ?, ?)",
                         (item_id, run_id, stamp))
        if new is not old:
            self._set(item_id, old, new, at=at, run_id=run_id)

    def _set(self, item_id: str, old: ItemStatus | None, new: ItemStatus, *, at: datetime,
             run_id: str | None = None, note: str | None = None) -> None:
        stamp = _iso(at)
        if old is not None:
            self._db.execute("UPDATE items SET status = ?, updated_at = ? WHERE id = ?",
                             (new.value, stamp, item_id))
        self._db.execute(
            "INSERT INTO history (item_id, at, run_id, old_status, new_status, note) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (item_id, stamp, run_id, old.value if old else None, new.value, note),
        )

    # --- people -------------------------------------------------------------------------------

    def set_status(self, item_id: str, status: ItemStatus, *, note: str | None = None,
                   at: datetime | None = None) -> ChecklistItem:
        """Mark an item ``accepted`` (a known risk) or ``done`` (fixed) by hand.

        Raises InvalidInputError for an unknown id or another status."""
        if status not in SETTABLE:
            raise InvalidInputError(None, "--status",
                                    f"{status.value} is set by runs; by hand: accepted or done")
        moment = at or datetime.now(UTC)
        clean = redact_text(note, secrets=self._secrets) if note is not None else None
        try:
            with self._write():
                row = self._db.execute("SELECT status FROM items WHERE id = ?", (item_id,)).fetchone()
                if row is None:
                    known = [r[0] for r in self._db.execute("SELECT id FROM items")]
                    raise InvalidInputError(self.path, "ID",
                                            f"no checklist item {item_id!r}{suggest(item_id, known)}")
                self._set(item_id, ItemStatus(row["status"]), status, at=moment, note=clean)
                if clean is not None:
                    self._db.execute("UPDATE items SET note = ? WHERE id = ?", (clean, item_id))
        except sqlite3.Error as exc:
            raise LedgerError(f"cannot update {item_id} in {self.path}: {exc}") from exc
        item = self.get(item_id)
        assert item is not None  # it was there inside the transaction, and items are never deleted
        return item

    # --- reading ------------------------------------------------------------------------------

    def items(self, *, statuses: Collection[ItemStatus] | None = None,
              service: str | None = None) -> list[ChecklistItem]:
        """Items, reopened and open first, then done, accepted and verified."""
        where, args = [], []
        if statuses is not None:
            where.append(f"status IN ({','.join('?' * len(statuses))})")
            args += [s.value for s in statuses]
        if service is not None:
            where.append("service = ?")
            args.append(service)
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        items = [self._item(row) for row in self._select(clause, args)]
        return sorted(items, key=lambda i: (_ORDER[i.status], i.service, i.id))

    def get(self, item_id: str) -> ChecklistItem | None:
        rows = self._select(" WHERE id = ?", [item_id])
        return self._item(rows[0]) if rows else None

    def rechecks(self, *, experiment: str, target: str) -> list[str]:
        """Ids of the open, reopened and done items a run of ``experiment`` on ``target`` re-checks."""
        marks = ",".join("?" * len(RECHECKED))
        rows = self._db.execute(
            f"SELECT id FROM items WHERE experiment = ? AND target = ? AND status IN ({marks}) ORDER BY id",
            (experiment, target, *RECHECKED),
        ).fetchall()
        return [row["id"] for row in rows]

    def _select(self, clause: str, args: Sequence[Any]) -> list[sqlite3.Row]:
        query = ("SELECT items.*, (SELECT group_concat(run_id, ' ') FROM (SELECT run_id FROM item_runs "
                 "WHERE item_id = items.id ORDER BY at, run_id)) AS runs FROM items" + clause)
        try:
            return self._db.execute(query, tuple(args)).fetchall()
        except sqlite3.Error as exc:
            raise LedgerError(f"cannot read the checklist ledger {self.path}: {exc}") from exc

    @staticmethod
    def _item(row: sqlite3.Row) -> ChecklistItem:
        return ChecklistItem(
            id=row["id"], experiment=row["experiment"], service=row["service"], owner=row["owner"],
            kind=FindingKind(row["kind"]), alert=row["alert"], text=row["text"],
            status=ItemStatus(row["status"]), note=row["note"],
            first_seen=_time(row["first_seen"]), last_seen=_time(row["last_seen"]),
            runs=tuple((row["runs"] or "").split()), evidence=json.loads(row["evidence"] or "{}"),
        )


def open_ledger(reports_dir: Path, *, secrets: Iterable[str | None] = ()) -> Ledger:
    """The ledger of a reports folder, created (and migrated) on first use."""
    return Ledger(Path(reports_dir) / DB_FILE, secrets=secrets)
