"""Which phenotype columns are missing together: a DP release of the members' patterns.

Phenotypes are measured by assays (a fear-conditioning session, a PPI session, a bone scan):
a mouse that missed one misses all of its columns. A model that leaves each column missing on
its own loses that: at stop 49 no synthetic row was complete under DP (members: 77.5%), and
the correlation of the columns' missingness indicators was off by 0.43.

The release, one Gaussian histogram:

1. **Domain (public)**: the distinct missingness patterns of the *public* table the schema
   comes from (:class:`MissingPatterns`; the CC0 CFW table: 54 patterns over its columns),
   projected onto the columns they govern (:func:`pattern_domain`): the modelled columns the
   public table has, less those complete by a public rule (the analysis phenotype and
   covariates) and those a ``--pheno-schema`` file declares (not the CFW columns).
2. **Counts**: each member adds 1 to the domain pattern nearest to its own (Hamming
   distance over those columns; ties to the publicly more common pattern): a deterministic
   map of one row, so the histogram's L2 sensitivity is 1 (add/remove; sqrt(2) replace-one).
3. **Noise and post-processing**: ``N(0, sigma^2)`` on every count; patterns whose noisy
   count is below ``KEEP_SDS`` noise sds are dropped (an empty pattern passes with
   probability 0.023) and the rest normalised. If none passes, the public shares are used.
4. **Sampling** (:meth:`dpgenome.phenotypes.PhenoModel.sample`): each synthetic row draws a
   pattern first; its columns are then missing exactly where the pattern says. Columns the
   domain does not govern keep the model's own missingness. The values do not follow the
   pattern (in the CFW table which assays were run depends on the round);
   :attr:`dpgenome.phenotypes.PhenotypeConfig.pattern_input` makes the pattern the model's
   first input, off by default: it cost the GWAS recall (docs/tuning-history.md, stop 50).

Without formal privacy (``epsilon = inf``) the counts are exact.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from dpgenome.histogram import KEEP_SDS, noisy_shares
from dpgenome.noise import Noise


@dataclass(frozen=True)
class MissingPatterns:
    """The distinct missingness patterns of a public table and how many rows have each."""

    columns: tuple[str, ...]
    #: one row per distinct pattern, True = missing
    missing: tuple[tuple[bool, ...], ...]
    counts: tuple[int, ...]

    @classmethod
    def of(cls, table: pd.DataFrame) -> MissingPatterns:
        """The patterns of a **public** table."""
        m = table.isna().to_numpy(dtype=bool)
        rows, counts = np.unique(m, axis=0, return_counts=True)
        return cls(
            tuple(str(c) for c in table.columns),
            tuple(tuple(bool(v) for v in r) for r in rows),
            tuple(int(c) for c in counts),
        )

    def project(self, keep: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        """The distinct patterns over the columns at ``keep`` (rows, bool) and how many public
        rows have each (patterns that then agree merged)."""
        m = np.asarray(self.missing, dtype=bool).reshape(len(self.counts), -1)[:, list(keep)]
        rows, inverse = np.unique(m, axis=0, return_inverse=True)
        counts = np.bincount(inverse.ravel(), weights=self.counts, minlength=len(rows))
        return rows, counts

    def without(self, columns: Collection[str]) -> MissingPatterns:
        """The patterns over every column but ``columns`` (merged where they then agree)."""
        keep = [i for i, c in enumerate(self.columns) if c not in columns]
        rows, counts = self.project(keep)
        return MissingPatterns(
            tuple(self.columns[i] for i in keep),
            tuple(tuple(bool(v) for v in r) for r in rows),
            tuple(int(c) for c in counts),
        )


@dataclass(frozen=True)
class PatternDomain:
    """The public patterns over the ``columns`` they govern, the most common first."""

    columns: tuple[str, ...]
    missing: np.ndarray  # (k, len(columns)) bool
    public_counts: np.ndarray  # (k,) int

    @property
    def size(self) -> int:
        return len(self.public_counts)


def pattern_domain(patterns: MissingPatterns, columns: Sequence[str]) -> PatternDomain | None:
    """The public patterns projected onto ``columns`` (those of them the public table has),
    or None when fewer than two distinct patterns remain (nothing to release). Public
    information only: the projection, its order and its counts come from the public table."""
    index = {c: i for i, c in enumerate(patterns.columns)}
    governed = [c for c in dict.fromkeys(columns) if c in index]
    if not governed:
        return None
    rows, counts = patterns.project([index[c] for c in governed])
    if len(rows) < 2:
        return None
    # the most common first, then the fewest missing, then lexicographic: a fixed public order
    order = np.lexsort((np.arange(len(rows)), rows.sum(axis=1), -counts))
    return PatternDomain(tuple(governed), rows[order], counts[order].astype(np.int64))


def nearest_patterns(missing: np.ndarray, domain: PatternDomain) -> np.ndarray:
    """Index of the domain pattern nearest to each row of ``missing`` (n x columns bool, in
    ``domain.columns`` order): Hamming distance, ties to the earlier (publicly more common)
    pattern. A deterministic map of each row on its own: the histogram's sensitivity 1."""
    m = missing.astype(np.int32)
    d = domain.missing.astype(np.int32)
    distance = m @ (1 - d).T + (1 - m) @ d.T
    return np.asarray(distance.argmin(axis=1), dtype=np.int64)


@dataclass(frozen=True)
class PatternRelease:
    """The released pattern shares (a DP output, or exact without formal privacy)."""

    domain: PatternDomain
    shares: np.ndarray  # (k,) sums to 1
    noise_multiplier: float | None
    #: the released patterns kept (noisy count at least KEEP_SDS sds); 0: public shares
    kept: int

    def draw(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` pattern indices into the domain (``domain.missing[i]``: the columns missing)."""
        return np.asarray(rng.choice(self.domain.size, size=n, p=self.shares), dtype=np.int64)

    def summary(self) -> dict[str, object]:
        """Aggregates only (no count of a pattern): what the release governed and kept."""
        return {
            "columns": len(self.domain.columns),
            "public_patterns": self.domain.size,
            "patterns_kept": self.kept,
            "noise_multiplier": self.noise_multiplier,
            "keep_sds": KEEP_SDS,
        }


def release_patterns(
    patterns: np.ndarray,
    domain: PatternDomain,
    *,
    noise_multiplier: float | None,
    noise: Noise,
) -> PatternRelease:
    """The members' pattern shares over ``domain`` from each member's pattern index
    (:func:`nearest_patterns`): one Gaussian histogram of L2 sensitivity 1
    (``noise_multiplier`` from the ledger), or exact counts when it is None (no formal
    privacy)."""
    shares, kept = noisy_shares(
        patterns, domain.public_counts, noise_multiplier=noise_multiplier, noise=noise
    )
    sd = None if noise_multiplier is None else float(noise_multiplier)
    return PatternRelease(domain, shares, sd, kept)
