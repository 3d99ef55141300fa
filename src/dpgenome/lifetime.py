"""The lifetime privacy ledger: every release of a source cohort, in one SQLite file.

The unit of privacy is one individual, and so is the lifetime budget. Each release is
recorded with its source cohort's fingerprint (:func:`individuals_fingerprint`, a hash of the
input's sample ids as read, so the same people read from another format or path, or analysed
with another phenotype, covariates or panel, are the same cohort) and, when the release's
individuals are known, the cohort's *member set*: a keyed hash of each individual's id
(:func:`member_tokens`). A new release is then charged with the most any one of its
individuals has spent: the sum over every earlier release whose cohort included that
individual. A growing biobank's next cohort (the same people plus newcomers, or minus those
who withdrew) is another fingerprint but the same people, and pays for their past releases;
a release of other people costs them nothing (its output does not depend on their records).
A release recorded without its individuals (``dpgenome export`` without ``--cohort``, or a
ledger written before per-individual accounting) counts for every individual of a cohort with
its fingerprint, and for no other cohort -- the ledger cannot know who was in it.

Composition across releases is per individual, over the releases that included them
(:mod:`dpgenome.lifetime_compose`).

A release is identified by ``release_id``: for ``dpgenome release`` a hash of the synthetic
cohort's content (:func:`dpgenome.release_id.synthetic_release_id`, so the same synthetic cohort
in another file format is the same release; its results.json records that fingerprint, so
an export of the release from anywhere, or through the API, gets the same id, and a caller's
id that differs is refused: :func:`dpgenome.release_id.results_release_id`), for ``dpgenome
export`` of a directory whose results do not name their synthetic cohort a hash of its data
files. Exporting the *same* release again -- re-rendering its dossier after a
policy change, or writing it in another format -- adds no privacy cost and is recorded
once. Rows are written as ``pending`` before the bundle is moved into place and marked
``exported`` after; a crash in between leaves a ``pending`` row that still counts (the safe
side). ``dpgenome synthesize`` records its synthetic cohort as ``synthesized`` (its id made
the same way, from the cohort it wrote) before writing it: it is a release wherever it goes.

What is stored: fingerprints, numbers, names of policies and bundles, and per cohort the
members' tokens -- HMAC-SHA-256 of each sample id under a random 256-bit key drawn when the
ledger is created and kept in it (128-bit tokens). No id, genotype or phenotype is stored,
but whoever holds the ledger file can test whether a given id was in a cohort: the file is as
sensitive as the cohort's id list, is created readable by its owner only, and stays with the
data holder (it is never part of a bundle).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import logging
import math
import os
import secrets
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from dpgenome.errors import BudgetError, InputError
from dpgenome.lifetime_compose import LifetimeTotal, ReleaseBudget, compose, compose_replace_one

log = logging.getLogger(__name__)


def individuals_fingerprint(sample_ids: Iterable[object]) -> str:
    """The lifetime ledger's name for a source cohort: SHA-256 over the sorted, distinct
    sample ids of the input *as read* -- before QC, and whatever phenotype, covariates, public
    panel or file format a release uses. Keying by the analysis subset's content instead gave
    the same people a fresh budget whenever a release changed its covariates or panel (the
    QC'd subset differs). A cohort which adds or drops individuals is another fingerprint; its
    releases are linked to this one's through the individuals they share (member tokens).
    Renamed ids are other individuals to the ledger: it cannot know two ids are one person."""
    h = hashlib.sha256(b"dpgenome-individuals\x1f")
    h.update("\x1f".join(distinct_ids(sample_ids)).encode())
    return h.hexdigest()


def distinct_ids(sample_ids: Iterable[object]) -> list[str]:
    """The sorted distinct sample ids, as text: the individuals a fingerprint hashes."""
    return sorted({str(i) for i in sample_ids})


def member_tokens(key: bytes, sample_ids: Iterable[object]) -> list[bytes]:
    """One 128-bit token per distinct id: HMAC-SHA-256 under the ledger's ``key``. The same
    id gives the same token in every cohort of one ledger (so releases link through their
    shared individuals) and an unrelated token under another ledger's key."""
    return [
        hmac.new(key, i.encode(), hashlib.sha256).digest()[:_TOKEN_BYTES]
        for i in distinct_ids(sample_ids)
    ]


#: between the bundles one release was exported to
BUNDLE_SEPARATOR = "; "
#: used when neither ``--lifetime-db`` nor ``DPGENOME_LIFETIME_DB`` is given
DEFAULT_DB = Path("~/.dpgenome/lifetime.sqlite")
#: 1: releases keyed by cohort fingerprint; 2: + the cohorts' member tokens and each
#: release's mechanisms
_SCHEMA_VERSION = 2
_TOKEN_BYTES = 16
_KEY = "member_key"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS releases (
    release_id TEXT PRIMARY KEY,
    fingerprint TEXT NOT NULL,
    epsilon REAL,                 -- NULL = infinite (no formal privacy)
    delta REAL NOT NULL,
    created_utc TEXT NOT NULL,
    policy TEXT NOT NULL,
    verdict TEXT NOT NULL,
    overridden INTEGER NOT NULL,
    status TEXT NOT NULL,         -- pending | exported | blocked | synthesized (all charged)
    bundle TEXT NOT NULL,
    pheno TEXT NOT NULL,
    mechanisms TEXT               -- JSON of the release ledger's mechanisms; NULL = unknown
);
CREATE INDEX IF NOT EXISTS releases_fingerprint ON releases (fingerprint);
CREATE TABLE IF NOT EXISTS cohorts (
    cohort INTEGER PRIMARY KEY,
    fingerprint TEXT NOT NULL UNIQUE,
    individuals INTEGER NOT NULL  -- how many member tokens it has
);
CREATE TABLE IF NOT EXISTS members (
    token BLOB NOT NULL,          -- HMAC-SHA-256(member_key, sample id), 16 bytes
    cohort INTEGER NOT NULL REFERENCES cohorts (cohort),
    PRIMARY KEY (token, cohort)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS members_cohort ON members (cohort);
CREATE TABLE IF NOT EXISTS verdicts (  -- every verdict a release was given, in order
    release_id TEXT NOT NULL,
    at_utc TEXT NOT NULL,
    policy TEXT NOT NULL,
    verdict TEXT NOT NULL,
    overridden INTEGER NOT NULL,
    outcome TEXT NOT NULL,        -- exported | blocked (charged)
    bundle TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS verdicts_release ON verdicts (release_id);
"""


def default_db_path() -> Path:
    env = os.environ.get("DPGENOME_LIFETIME_DB")
    return Path(env).expanduser() if env else DEFAULT_DB.expanduser()


@dataclass(frozen=True)
class VerdictEvent:
    """One verdict given to a release: when, under which policy, and what followed
    (``exported`` to ``bundle``, or ``blocked`` and charged)."""

    at_utc: str
    policy: str
    verdict: str
    overridden: bool
    outcome: str
    bundle: str


@dataclass(frozen=True)
class LifetimeRecord:
    release_id: str
    fingerprint: str
    epsilon: float  # math.inf = no formal privacy
    delta: float
    created_utc: str
    policy: str
    verdict: str
    overridden: bool
    status: str
    bundle: str
    pheno: str
    #: every verdict it was given, oldest first (:class:`VerdictEvent`): a release blocked
    #: under one policy and exported under another, or under an override, shows both; the
    #: row's own policy and verdict are those it was first recorded with (an export of a
    #: release recorded as blocked replaces them)
    history: tuple[VerdictEvent, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["epsilon"] = None if math.isinf(self.epsilon) else self.epsilon
        out["no_formal_privacy"] = math.isinf(self.epsilon)
        return out


def check_individuals(fingerprint: str, sample_ids: Iterable[object]) -> list[str]:
    """``sample_ids`` as :func:`distinct_ids`, after checking they are the individuals of
    the cohort ``fingerprint`` (an :class:`InputError` otherwise)."""
    ids = distinct_ids(sample_ids)
    if individuals_fingerprint(ids) != fingerprint:
        raise InputError(
            "the cohort given is not the one this release was made from: its individuals' "
            f"fingerprint is {individuals_fingerprint(ids)[:12]}, the release's "
            f"{fingerprint[:12]}"
        )
    return ids


class LifetimeLedger:
    """The SQLite ledger at ``path`` (created with its folder on first write)."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path).expanduser() if path is not None else default_db_path()

    @contextmanager
    def _connect(self, *, write: bool) -> Iterator[sqlite3.Connection]:
        if write:
            try:  # created readable by its owner only: it holds the members' tokens
                self.path.parent.mkdir(parents=True, exist_ok=True)
                os.close(os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
                if self.path == default_db_path() and "DPGENOME_LIFETIME_DB" not in os.environ:
                    log.warning(
                        "a new lifetime ledger at %s, this user's default: releases recorded "
                        "in any other ledger (another user's, another machine's) are not "
                        "counted. Point DPGENOME_LIFETIME_DB (or --lifetime-db) at the "
                        "institution's one ledger",
                        self.path,
                    )
            except FileExistsError:
                pass
            except OSError as err:
                raise InputError(
                    f"cannot create the lifetime ledger: {err.strerror or err}", file=self.path
                ) from None
        elif not self.path.exists() or self.path.stat().st_size == 0:
            # an empty file (a first write that failed before its commit) holds no release
            raise FileNotFoundError(self.path)
        try:
            # explicit transactions: a write holds the ledger from its first read (BEGIN
            # IMMEDIATE), so a budget check and the record it guards see one state
            con = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        except sqlite3.Error as err:
            raise InputError(f"cannot open the lifetime ledger: {err}", file=self.path) from None
        try:
            if write:
                con.execute("BEGIN IMMEDIATE")
                kept = _has_table(con, "verdicts")
                for statement in _statements(_SCHEMA):
                    con.execute(statement)
                if not kept:  # a ledger from before verdicts were kept: each row's is its first
                    con.execute(
                        "INSERT INTO verdicts SELECT release_id, created_utc, policy, verdict, "
                        "overridden, status, bundle FROM releases ORDER BY created_utc, release_id"
                    )
                if not _has_mechanisms(con):  # a version-1 ledger
                    con.execute("ALTER TABLE releases ADD COLUMN mechanisms TEXT")
                con.execute(
                    "INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)",
                    (str(_SCHEMA_VERSION),),
                )
                _require_key_with_members(con, self.path)
                drawn = con.execute(
                    "INSERT OR IGNORE INTO meta VALUES (?, ?)", (_KEY, secrets.token_hex(32))
                ).rowcount
                if drawn:  # the ledger now holds a key: owner-only, also when upgraded
                    self._restrict()
            yield con
            if write:
                con.execute("COMMIT")
        except sqlite3.DatabaseError as err:
            raise InputError(_database_error(err), file=self.path) from None
        finally:
            if con.in_transaction:
                con.execute("ROLLBACK")
            con.close()

    def check_writable(self) -> None:
        """Fail before any work (an :class:`InputError` naming the path) when the ledger
        could not be written: an existing ledger must be a file this process can open for
        writing (opened, not changed), a new one must have a folder it can be created in."""
        from dpgenome.io.files import check_writable

        if not self.path.exists():
            check_writable(self.path, "lifetime ledger")
            return
        # SQLite writes its journal beside the ledger: the folder must take new files too
        check_writable(self.path.parent, "lifetime ledger's journal", into=True)
        try:
            with open(self.path, "ab"):
                pass
        except OSError as err:
            raise InputError(
                f"the lifetime ledger cannot be written ({err.strerror or err})", file=self.path
            ) from None

    def _restrict(self) -> None:
        """Make the ledger file readable and writable by its owner only (it holds the key
        and the members' tokens); a file another user owns keeps its mode, with a warning."""
        try:
            mode = self.path.stat().st_mode & 0o777
            if mode & 0o077:
                os.chmod(self.path, mode & 0o700)
        except OSError as err:
            log.warning(
                "could not make the lifetime ledger %s owner-only (%s): it holds keyed tokens "
                "of the released individuals",
                self.path,
                err.strerror or err,
            )

    def _rows(self, where: str = "", args: tuple[Any, ...] = ()) -> list[LifetimeRecord]:
        try:
            with self._connect(write=False) as con:
                cur = con.execute(
                    "SELECT release_id, fingerprint, epsilon, delta, created_utc, policy, verdict,"
                    f" overridden, status, bundle, pheno FROM releases {where}"
                    " ORDER BY created_utc, release_id",
                    args,
                )
                rows = cur.fetchall()
                events = _verdict_events(con, where, args)
        except FileNotFoundError:
            return []
        return [
            LifetimeRecord(
                r[0],
                r[1],
                math.inf if r[2] is None else float(r[2]),
                float(r[3]),
                r[4],
                r[5],
                r[6],
                bool(r[7]),
                r[8],
                r[9],
                r[10],
                tuple(events.get(r[0], ())),
            )
            for r in rows
        ]

    def releases(self, fingerprint: str | None = None) -> list[LifetimeRecord]:
        """Every recorded release (of one cohort if ``fingerprint`` is given), oldest first."""
        if fingerprint is None:
            return self._rows()
        return self._rows("WHERE fingerprint = ?", (fingerprint,))

    def get(self, release_id: str) -> LifetimeRecord | None:
        rows = self._rows("WHERE release_id = ?", (release_id,))
        return rows[0] if rows else None

    def total(
        self,
        fingerprint: str,
        *,
        individuals: Iterable[object] | None = None,
        exclude_release: str | None = None,
        including: ReleaseBudget | None = None,
        replace_one: bool = False,
    ) -> LifetimeTotal:
        """The most any individual of cohort ``fingerprint`` has spent, composed over the
        earlier releases that included them (:func:`compose`; pending rows included, and
        releases a policy blocked but charged: status ``blocked``).

        The cohort's individuals are its stored member tokens, else ``individuals`` (its
        sample ids, checked against ``fingerprint``); when neither is known, only the
        releases recorded under ``fingerprint`` count. ``exclude_release`` leaves out one
        release (the one being re-exported); ``including`` adds one for every individual
        (the release about to be exported: the lifetime total it would make); ``replace_one``
        also composes them between cohorts that replace one individual
        (:func:`compose_replace_one`; a second accounting, so only when asked for)."""
        ids = None if individuals is None else check_individuals(fingerprint, individuals)
        extra = () if including is None else (including,)
        try:
            with self._connect(write=False) as con:
                sets, budgets, n = self._release_sets(con, fingerprint, ids, exclude_release or "")
        except FileNotFoundError:
            sets, budgets, n = [frozenset()], {}, None if ids is None else len(ids)
        # composition only grows with more releases: the maximal sets bound everyone
        maximal = [a for a in sets if not any(a < b for b in sets)]
        composed = [compose([*(budgets[r] for r in a), *extra]) for a in maximal]
        reached = frozenset().union(*sets)
        replaced: tuple[float, float] | None = None
        if replace_one:
            pairs = [compose_replace_one([*(budgets[r] for r in a), *extra]) for a in maximal]
            if all(p is not None for p in pairs):
                replaced = (max(p[0] for p in pairs if p), max(p[1] for p in pairs if p))
        return LifetimeTotal(
            fingerprint,
            max(c[0] for c in composed),
            max(c[1] for c in composed),
            len(reached),
            n,
            max(c[2] for c in composed),
            reached,
            replaced,
            replace_one,
        )

    def _release_sets(
        self, con: sqlite3.Connection, fingerprint: str, ids: Sequence[str] | None, exclude: str
    ) -> tuple[list[frozenset[str]], dict[str, ReleaseBudget], int | None]:
        """The distinct sets of earlier releases the cohort's individuals were in, every
        such release's budget, and how many individuals (None: unknown to the ledger)."""
        recorded = "r.mechanisms" if _has_mechanisms(con) else "NULL"
        columns = f"r.release_id, r.epsilon, r.delta, {recorded}"
        own = con.execute(
            f"SELECT {columns} FROM releases r WHERE r.fingerprint = ? AND r.release_id != ?",
            (fingerprint, exclude),
        ).fetchall()
        stored = _member_count(con, fingerprint)
        _require_key_with_members(con, self.path)
        key = _member_key(con)
        budgets = {r[0]: _budget(r) for r in own}
        if stored is None and (ids is None or key is None):
            # nobody's tokens to link through: this fingerprint's releases count for everyone
            return [frozenset(budgets)], budgets, None if ids is None else len(ids)
        con.execute("CREATE TEMP TABLE IF NOT EXISTS probe (token BLOB PRIMARY KEY) WITHOUT ROWID")
        con.execute("DELETE FROM probe")
        if stored is not None:
            con.execute(
                "INSERT INTO probe SELECT m.token FROM members m JOIN cohorts c USING (cohort) "
                "WHERE c.fingerprint = ?",
                (fingerprint,),
            )
            common: frozenset[str] = frozenset()  # the join below reaches them
        else:
            assert ids is not None and key is not None
            con.executemany("INSERT INTO probe VALUES (?)", ((t,) for t in member_tokens(key, ids)))
            common = frozenset(budgets)  # known only by this fingerprint: everyone's
        linked = (
            "FROM probe p JOIN members m ON m.token = p.token JOIN cohorts c USING (cohort) "
            "JOIN releases r ON r.fingerprint = c.fingerprint WHERE r.release_id != ?"
        )
        budgets |= {
            r[0]: _budget(r) for r in con.execute(f"SELECT DISTINCT {columns} {linked}", (exclude,))
        }
        sets = {common}  # an individual in no linked release
        for (joined,) in con.execute(
            f"SELECT DISTINCT s FROM (SELECT group_concat(r.release_id, char(31)) AS s {linked} "
            "GROUP BY p.token)",
            (exclude,),
        ):
            sets.add(common | frozenset(joined.split("\x1f")))
        return list(sets), budgets, stored if stored is not None else len(ids or ())

    def link(self, fingerprint: str, individuals: Iterable[object]) -> int:
        """Store cohort ``fingerprint``'s member tokens from its sample ids (checked against
        it), linking its releases recorded without them to the releases of cohorts sharing
        its people. Returns how many of its releases the ledger holds (none: nothing is
        stored)."""
        ids = check_individuals(fingerprint, individuals)
        if not self.path.exists():
            return 0
        with self._connect(write=True) as con:
            (count,) = con.execute(
                "SELECT COUNT(*) FROM releases WHERE fingerprint = ?", (fingerprint,)
            ).fetchone()
            if count:  # a cohort never released needs no tokens
                _store_members(con, fingerprint, ids)
        return int(count)

    def unlinked_releases(self, *, besides: str = "") -> int:
        """How many releases were recorded without their individuals (by an export without
        ``--cohort`` or a ledger before per-individual accounting), other than those of
        cohort ``besides``: each counts only for its own cohort fingerprint."""
        try:
            with self._connect(write=False) as con:
                if not _has_table(con, "cohorts"):
                    query = "SELECT COUNT(*) FROM releases WHERE fingerprint != ?"
                else:
                    query = (
                        "SELECT COUNT(*) FROM releases WHERE fingerprint != ? AND fingerprint "
                        "NOT IN (SELECT fingerprint FROM cohorts)"
                    )
                return int(con.execute(query, (besides,)).fetchone()[0])
        except FileNotFoundError:
            return 0

    def linked(self, fingerprint: str) -> bool:
        """Whether the ledger knows cohort ``fingerprint``'s individuals (its member tokens)."""
        try:
            with self._connect(write=False) as con:
                return _member_count(con, fingerprint) is not None
        except FileNotFoundError:
            return False

    def record(
        self,
        fingerprint: str,
        epsilon: float | None,
        delta: float,
        release_id: str,
        *,
        policy: str = "",
        verdict: str = "",
        overridden: bool = False,
        bundle: str = "",
        pheno: str = "",
        status: str = "exported",
        individuals: Iterable[object] | None = None,
        mechanisms: str | None = None,
        expect_releases: frozenset[str] | None = None,
    ) -> bool:
        """Add a release (``epsilon`` None or inf = no formal privacy). Returns False when the
        same release (same id, cohort and budget) is already recorded: it costs nothing more.
        A known id with a different cohort or budget is a :class:`BudgetError`.

        ``individuals`` (the source cohort's sample ids, checked against ``fingerprint``)
        stores the cohort's member tokens once, which links this release -- and every other
        release of this fingerprint -- to the releases of cohorts sharing individuals.
        ``mechanisms`` (:attr:`ReleaseBudget.mechanisms`) lets later totals compose this
        release by its mechanisms rather than add its epsilon. ``expect_releases`` (the
        :attr:`LifetimeTotal.release_ids` a policy check was made with) is re-checked in the
        same transaction as the write: a release recorded meanwhile by another process for
        some of these individuals is a :class:`BudgetError` and nothing is recorded."""
        if epsilon is not None and (math.isnan(epsilon) or epsilon < 0):
            raise BudgetError(f"epsilon must be >= 0 or infinite, got {epsilon}")
        if not 0.0 <= delta < 1.0:
            raise BudgetError(f"delta must be in [0, 1), got {delta}")
        eps_db = None if epsilon is None or math.isinf(epsilon) else float(epsilon)
        ids = None if individuals is None else check_individuals(fingerprint, individuals)
        now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        with self._connect(write=True) as con:
            if status == "blocked":  # one event per verdict given, the charge or not
                _log_verdict(con, release_id, (policy, verdict, overridden), "blocked", "")
            if ids:
                _store_members(con, fingerprint, ids)
            if expect_releases is not None:
                sets = self._release_sets(con, fingerprint, ids, release_id)[0]
                meanwhile = frozenset().union(*sets) - expect_releases
                if meanwhile:
                    raise BudgetError(
                        f"{len(meanwhile)} release(s) of some of these individuals were recorded "
                        "in the lifetime ledger while this one was being exported; nothing was "
                        "exported: run the export again to check the policy with them",
                        file=self.path,
                    )
            row = con.execute(
                "SELECT fingerprint, epsilon, delta, status FROM releases WHERE release_id = ?",
                (release_id,),
            ).fetchone()
            if row is not None:
                if row[0] != fingerprint or row[1] != eps_db or row[2] != delta:
                    raise BudgetError(
                        f"release {release_id} is already in the lifetime ledger with another "
                        "cohort or budget; refusing to rewrite history",
                        file=self.path,
                    )
                if status == "exported" and row[3] != "exported":  # never downgrade
                    con.execute(
                        "UPDATE releases SET status = ?, bundle = ?, policy = ?, verdict = ?, "
                        "overridden = ? WHERE release_id = ?",
                        (status, bundle, policy, verdict, int(overridden), release_id),
                    )
                elif status == "blocked" and row[3] == "pending":
                    # charged for good: a pending export of it that fails withdraws its claim,
                    # never this charge
                    con.execute(
                        "UPDATE releases SET status = 'blocked', policy = ?, verdict = ?, "
                        "overridden = ? WHERE release_id = ?",
                        (policy, verdict, int(overridden), release_id),
                    )
                    return True
                elif row[3] == "pending" and bundle:  # a second export of it under way
                    _add_bundle(con, release_id, bundle)
                if mechanisms is not None:
                    con.execute(
                        "UPDATE releases SET mechanisms = ? WHERE release_id = ? AND "
                        "mechanisms IS NULL",
                        (mechanisms, release_id),
                    )
                return False
            con.execute(
                "INSERT INTO releases VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    release_id,
                    fingerprint,
                    eps_db,
                    float(delta),
                    now,
                    policy,
                    verdict,
                    int(overridden),
                    status,
                    bundle,
                    pheno,
                    mechanisms,
                ),
            )
        return True

    def set_status(
        self,
        release_id: str,
        status: str | None,
        *,
        bundle: str | None = None,
        verdict: tuple[str, str, bool] | None = None,
        replaces: str | None = None,
    ) -> None:
        """Set a release's status (``None``: keep it); ``bundle`` is added to the bundles
        it was exported to (``; ``-separated: the same release exported again keeps its
        earlier bundles), in place of ``replaces`` (the export's own claim while it was
        pending). ``verdict`` (policy name, verdict, overridden) replaces those of a release
        recorded as ``blocked`` (charged when a policy blocked it) that another export lets
        out."""
        with self._connect(write=True) as con:
            if replaces is not None:
                row = con.execute(
                    "SELECT bundle FROM releases WHERE release_id = ?", (release_id,)
                ).fetchone()
                if row is not None:
                    con.execute(
                        "UPDATE releases SET bundle = ? WHERE release_id = ?",
                        (
                            BUNDLE_SEPARATOR.join(b for b in _bundles(row[0]) if b != replaces),
                            release_id,
                        ),
                    )
            if verdict is not None:
                con.execute(
                    "UPDATE releases SET policy = ?, verdict = ?, overridden = ? "
                    "WHERE release_id = ? AND status = 'blocked'",
                    (verdict[0], verdict[1], int(verdict[2]), release_id),
                )
            if status == "exported" and verdict is not None:
                _log_verdict(con, release_id, verdict, "exported", bundle or "")
            if status is not None:  # None: the status stays (only the bundle changes)
                con.execute(
                    "UPDATE releases SET status = ? WHERE release_id = ?", (status, release_id)
                )
            if bundle is not None:
                _add_bundle(con, release_id, bundle)

    def log_verdict(
        self, release_id: str, verdict: tuple[str, str, bool], outcome: str, bundle: str = ""
    ) -> None:
        """Keep a verdict in the release's history (:class:`VerdictEvent`) without changing
        what is charged: a block under a policy that does not charge blocked releases, or
        an export whose row could not be marked exported."""
        with self._connect(write=True) as con:
            _log_verdict(con, release_id, verdict, outcome, bundle)

    def forget_pending(self, release_id: str, *, bundle: str | None = None) -> None:
        """Withdraw a ``pending`` release whose export failed before anything was released:
        ``bundle``'s claim on it (the row goes when no other export of it is under way), or
        the whole row without ``bundle``."""
        with self._connect(write=True) as con:
            row = con.execute(
                "SELECT bundle, status FROM releases WHERE release_id = ?", (release_id,)
            ).fetchone()
            if row is None:
                return
            others = [b for b in _bundles(row[0]) if b != bundle] if bundle is not None else []
            if others or row[1] != "pending":  # exported or charged: only the claim goes
                con.execute(
                    "UPDATE releases SET bundle = ? WHERE release_id = ?",
                    (BUNDLE_SEPARATOR.join(others), release_id),
                )
            else:
                con.execute("DELETE FROM releases WHERE release_id = ?", (release_id,))


def _log_verdict(
    con: sqlite3.Connection,
    release_id: str,
    verdict: tuple[str, str, bool],
    outcome: str,
    bundle: str,
) -> None:
    now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    con.execute(
        "INSERT INTO verdicts VALUES (?, ?, ?, ?, ?, ?, ?)",
        (release_id, now, verdict[0], verdict[1], int(verdict[2]), outcome, bundle),
    )


def _has_table(con: sqlite3.Connection, name: str) -> bool:
    found = con.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)
    ).fetchone()
    return found is not None


def _verdict_events(
    con: sqlite3.Connection, where: str = "", args: tuple[Any, ...] = ()
) -> dict[str, list[VerdictEvent]]:
    """The verdicts of the releases ``where`` selects, oldest first (none in a ledger written
    before they were kept: its table is made by the first write)."""
    if not _has_table(con, "verdicts"):
        return {}
    events: dict[str, list[VerdictEvent]] = {}
    for r in con.execute(
        "SELECT release_id, at_utc, policy, verdict, overridden, outcome, bundle FROM verdicts "
        f"WHERE release_id IN (SELECT release_id FROM releases {where}) ORDER BY rowid",
        args,
    ):
        events.setdefault(r[0], []).append(VerdictEvent(r[1], r[2], r[3], bool(r[4]), r[5], r[6]))
    return events


def _statements(script: str) -> Iterator[str]:
    """The SQL statements of ``script`` (``executescript`` would commit the transaction)."""
    pending = ""
    for line in script.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            yield pending
            pending = ""


def _bundles(text: str) -> list[str]:
    return [b for b in text.split(BUNDLE_SEPARATOR) if b]


def _add_bundle(con: sqlite3.Connection, release_id: str, bundle: str) -> None:
    row = con.execute("SELECT bundle FROM releases WHERE release_id = ?", (release_id,)).fetchone()
    known = _bundles(row[0] if row else "")
    if bundle not in known:
        con.execute(
            "UPDATE releases SET bundle = ? WHERE release_id = ?",
            (BUNDLE_SEPARATOR.join([*known, bundle]), release_id),
        )


def _database_error(err: sqlite3.DatabaseError) -> str:
    """What went wrong with the ledger file, in the user's terms."""
    text = str(err)
    if "readonly" in text:
        return f"the lifetime ledger cannot be written (read-only file or folder: {text})"
    if "locked" in text or "busy" in text:
        return (
            "the lifetime ledger stayed locked by another dpgenome process for 30 s "
            f"({text}); try again when it has finished"
        )
    return f"the lifetime ledger is not a readable dpgenome ledger: {text}"


def _store_members(con: sqlite3.Connection, fingerprint: str, ids: Sequence[str]) -> None:
    """Cohort ``fingerprint``'s member tokens, once (an empty cohort stores nothing: it
    would hide its releases from a total by fingerprint)."""
    if not ids or _member_count(con, fingerprint) is not None:
        return
    key = _member_key(con)
    assert key is not None  # drawn on every write connection
    cohort = con.execute(
        "INSERT INTO cohorts (fingerprint, individuals) VALUES (?, ?)", (fingerprint, len(ids))
    ).lastrowid
    con.executemany(
        "INSERT INTO members VALUES (?, ?)", ((t, cohort) for t in member_tokens(key, ids))
    )


def _member_count(con: sqlite3.Connection, fingerprint: str) -> int | None:
    """How many member tokens cohort ``fingerprint`` has stored (None: not stored; a ledger
    written before per-individual accounting has no such table)."""
    try:
        row = con.execute(
            "SELECT individuals FROM cohorts WHERE fingerprint = ?", (fingerprint,)
        ).fetchone()
    except sqlite3.OperationalError:  # schema version 1, read without writing
        return None
    return None if row is None else int(row[0])


def _require_key_with_members(con: sqlite3.Connection, path: Path) -> None:
    """A ledger holding member tokens must hold the key they were made with: without it the
    individuals of a new cohort cannot be linked to them, and every total would silently
    leave out the releases of cohorts sharing them (a :class:`BudgetError`)."""
    if not _has_table(con, "cohorts") or _member_key(con) is not None:
        return
    if con.execute("SELECT 1 FROM members LIMIT 1").fetchone() is not None:
        raise BudgetError(
            "the lifetime ledger holds member tokens but not the key they were made with "
            "(its meta table lost the member_key row): releases of cohorts sharing "
            "individuals can no longer be linked, so no total can be trusted. Restore the "
            "ledger from a backup",
            file=path,
        )


def _member_key(con: sqlite3.Connection) -> bytes | None:
    row = con.execute("SELECT value FROM meta WHERE key = ?", (_KEY,)).fetchone()
    return None if row is None else bytes.fromhex(row[0])


def _has_mechanisms(con: sqlite3.Connection) -> bool:
    """Whether the releases table records mechanisms (a version-1 ledger does not)."""
    return any(row[1] == "mechanisms" for row in con.execute("PRAGMA table_info(releases)"))


def _budget(row: tuple[Any, ...]) -> ReleaseBudget:
    """A ``(release_id, epsilon, delta, mechanisms)`` row's budget, re-derived as
    :meth:`ReleaseBudget.of` derives a new release's: a row recorded from a ledger that
    understated its epsilon costs what its mechanisms give, one whose mechanisms do not
    parse or give less costs its epsilon alone."""
    epsilon, delta, text = math.inf if row[1] is None else float(row[1]), float(row[2]), row[3]
    if text is None:
        return ReleaseBudget(epsilon, delta)
    try:
        mechanisms = json.loads(text)
    except (TypeError, ValueError):
        mechanisms = None
    return ReleaseBudget.of(epsilon, delta, {"mechanisms": mechanisms})
