"""The lifetime privacy ledger: every release of a source cohort, in one SQLite file.

Releases are keyed by the source cohort's fingerprint (:func:`individuals_fingerprint`, a
hash of the input's sample ids as read, so the same people read from another format or path,
or analysed with another phenotype, covariates or panel, are the same cohort). Each export
adds its (epsilon, delta).

Composition across releases is *basic composition* (Dwork & Roth 2014, Thm 3.16): the
epsilons add and the deltas add. It holds for any sequence of independently computed
releases, adaptive or not; tighter bounds (RDP / PLD composition) would need each release's
full privacy curve, which is not stored. A release with epsilon = inf (no formal privacy)
makes the lifetime total infinite.

A release is identified by ``release_id``: for ``dpgenome release`` a hash of the synthetic
cohort's content (:func:`dpgenome.release.synthetic_release_id`, so the same synthetic cohort
in another file format is the same release), for ``dpgenome export`` of a directory a hash
of its data files. Exporting the *same* release again -- re-rendering its dossier after a
policy change, or writing it in another format -- adds no privacy cost and is recorded
once. Rows are written as ``pending`` before the bundle is moved into place and marked
``exported`` after; a crash in between leaves a ``pending`` row that still counts (the safe
side).

Nothing individual-level is stored: fingerprints, numbers, names of policies and bundles.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import os
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from dpgenome.errors import BudgetError, InputError


def individuals_fingerprint(sample_ids: Iterable[object]) -> str:
    """The lifetime ledger's key for a source cohort: SHA-256 over the sorted, distinct sample
    ids of the input *as read* -- before QC, and whatever phenotype, covariates, public panel
    or file format a release uses. Keying by the analysis subset's content instead gave the
    same people a fresh budget whenever a release changed its covariates or panel (the QC'd
    subset differs). A cohort whose ids are renamed or which adds or drops individuals is
    another key: the ledger cannot know that two files hold the same people."""
    h = hashlib.sha256(b"dpgenome-individuals\x1f")
    h.update("\x1f".join(sorted({str(i) for i in sample_ids})).encode())
    return h.hexdigest()


#: between the bundles one release was exported to
BUNDLE_SEPARATOR = "; "
#: used when neither ``--lifetime-db`` nor ``DPGENOME_LIFETIME_DB`` is given
DEFAULT_DB = Path("~/.dpgenome/lifetime.sqlite")
_SCHEMA_VERSION = 1
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
    status TEXT NOT NULL,         -- pending | exported
    bundle TEXT NOT NULL,
    pheno TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS releases_fingerprint ON releases (fingerprint);
"""


def default_db_path() -> Path:
    env = os.environ.get("DPGENOME_LIFETIME_DB")
    return Path(env).expanduser() if env else DEFAULT_DB.expanduser()


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

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["epsilon"] = None if math.isinf(self.epsilon) else self.epsilon
        out["no_formal_privacy"] = math.isinf(self.epsilon)
        return out


@dataclass(frozen=True)
class LifetimeTotal:
    """Basic composition over the releases of one cohort."""

    fingerprint: str
    epsilon: float
    delta: float
    releases: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "fingerprint": self.fingerprint,
            "epsilon": None if math.isinf(self.epsilon) else self.epsilon,
            "no_formal_privacy": math.isinf(self.epsilon),
            "delta": self.delta,
            "releases": self.releases,
            "composition": "basic (sum of epsilons and of deltas over releases)",
        }


class LifetimeLedger:
    """The SQLite ledger at ``path`` (created with its folder on first write)."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path).expanduser() if path is not None else default_db_path()

    @contextmanager
    def _connect(self, *, write: bool) -> Iterator[sqlite3.Connection]:
        if write:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        elif not self.path.exists():
            raise FileNotFoundError(self.path)
        try:
            con = sqlite3.connect(self.path, timeout=30)
        except sqlite3.Error as err:
            raise InputError(f"cannot open the lifetime ledger: {err}", file=self.path) from None
        try:
            with con:
                if write:
                    con.executescript(_SCHEMA)
                    con.execute(
                        "INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)",
                        (str(_SCHEMA_VERSION),),
                    )
                yield con
        except sqlite3.DatabaseError as err:
            raise InputError(
                f"the lifetime ledger is not a readable dpgenome ledger: {err}", file=self.path
            ) from None
        finally:
            con.close()

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

    def total(self, fingerprint: str, *, exclude_release: str | None = None) -> LifetimeTotal:
        """Lifetime (epsilon, delta) of a cohort by basic composition, pending rows included.
        ``exclude_release`` leaves out one release (the one being re-exported)."""
        rows = [r for r in self.releases(fingerprint) if r.release_id != exclude_release]
        return LifetimeTotal(
            fingerprint,
            math.fsum(r.epsilon for r in rows) if rows else 0.0,
            math.fsum(r.delta for r in rows) if rows else 0.0,
            len(rows),
        )

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
    ) -> bool:
        """Add a release (``epsilon`` None or inf = no formal privacy). Returns False when the
        same release (same id, cohort and budget) is already recorded: it costs nothing more.
        A known id with a different cohort or budget is a :class:`BudgetError`."""
        if epsilon is not None and (math.isnan(epsilon) or epsilon < 0):
            raise BudgetError(f"epsilon must be >= 0 or infinite, got {epsilon}")
        if not 0.0 <= delta < 1.0:
            raise BudgetError(f"delta must be in [0, 1), got {delta}")
        eps_db = None if epsilon is None or math.isinf(epsilon) else float(epsilon)
        now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        with self._connect(write=True) as con:
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
                        "UPDATE releases SET status = ?, bundle = ? WHERE release_id = ?",
                        (status, bundle, release_id),
                    )
                return False
            con.execute(
                "INSERT INTO releases VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
                ),
            )
        return True

    def set_status(self, release_id: str, status: str, *, bundle: str | None = None) -> None:
        """Set a release's status; ``bundle`` is added to the bundles it was exported to
        (``; ``-separated: the same release exported again keeps its earlier bundles)."""
        with self._connect(write=True) as con:
            if bundle is None:
                con.execute(
                    "UPDATE releases SET status = ? WHERE release_id = ?", (status, release_id)
                )
                return
            row = con.execute(
                "SELECT bundle FROM releases WHERE release_id = ?", (release_id,)
            ).fetchone()
            known = [b for b in (row[0] if row else "").split(BUNDLE_SEPARATOR) if b]
            bundles = BUNDLE_SEPARATOR.join([*known, bundle] if bundle not in known else known)
            con.execute(
                "UPDATE releases SET status = ?, bundle = ? WHERE release_id = ?",
                (status, bundles, release_id),
            )

    def forget_pending(self, release_id: str) -> None:
        """Remove a ``pending`` row whose export failed before anything was released."""
        with self._connect(write=True) as con:
            con.execute(
                "DELETE FROM releases WHERE release_id = ? AND status = 'pending'", (release_id,)
            )
