"""Relatedness on hard calls: KING-robust kinship (Manichaikul et al. 2010, Bioinformatics
26:2867) and a set of mutually unrelated individuals.

For individuals i, j and the SNPs genotyped in both,

    phi_ij = 1/2 - (N_Aa(i) + N_Aa(j) - 2 N_Aa,Aa + 4 N_AA,aa) / (4 min(N_Aa(i), N_Aa(j)))

(N_Aa,Aa: both heterozygous; N_AA,aa: opposite homozygotes; N_Aa(i): heterozygous in i), the
between-family KING-robust estimator that PLINK 2 ``--make-king`` reports (validated against
it in ``tests/test_audit_kinship.py``), robust to population structure. Every count is a
matrix product of 0/1 indicator matrices, so all pairs between two sets cost a few BLAS
calls. Thresholds follow KING: >= 0.354 duplicate/MZ twin, >= 0.177 first degree, >= 0.0884
second degree (on a short genome or a small panel the estimate's noise reaches the second-
degree bound: of a 300-mouse panel on two chromosomes, setting relatives aside kept 126 at a
second degree, 251 at a first). Used by the kinship audit (:mod:`dpgenome.audit.kinship`)
and, on the public panel, by :func:`dpgenome.ancestry.detect_structure` (population
structure is tested among individuals without first-degree relatives: close relatives share
their genomes across every chromosome too).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: KING's lower bounds of a duplicate (or identical twin), a first- and a second-degree
#: relationship
DUPLICATE = 0.354
FIRST_DEGREE = 0.177
SECOND_DEGREE = 0.0884


#: a dosage further than this from a whole number is no hard call (plink2's default
#: --hard-call-threshold)
HARD_CALL = 0.1


def hard_calls(dosages: np.ndarray) -> np.ndarray:
    """float64 hard calls 0 / 1 / 2 of ``dosages``: a dosage within :data:`HARD_CALL` of a
    whole number rounded to it, any other (an uncertain imputed call) and a missing one NaN,
    as plink2 reads dosages (``--hard-call-threshold`` 0.1). Rounding every dosage instead
    moved KING kinship from plink2's by up to 0.18 (a degree of relationship) on a cohort
    with 10% uncertain calls (stop 62)."""
    d = np.clip(np.asarray(dosages, dtype=np.float64), 0.0, 2.0)
    g = np.round(d)
    g[np.abs(d - g) > HARD_CALL] = np.nan
    return g


@dataclass(frozen=True)
class Indicators:
    """0/1 float32 indicators of one set of individuals on a fixed SNP set."""

    het: np.ndarray
    hom_ref: np.ndarray
    hom_alt: np.ndarray
    observed: np.ndarray | None  # None: nothing missing

    def called(self) -> np.ndarray:
        """0/1 float32: the calls made (all ones when nothing is missing)."""
        return self.observed if self.observed is not None else np.ones_like(self.het)

    @classmethod
    def from_dosages(cls, dosages: np.ndarray) -> Indicators:
        """The :func:`hard_calls` of ``dosages``; NaN and uncertain dosages = missing."""
        calls = hard_calls(dosages)
        observed = ~np.isnan(calls)
        return cls(
            het=(calls == 1).astype(np.float32),
            hom_ref=(calls == 0).astype(np.float32),
            hom_alt=(calls == 2).astype(np.float32),
            observed=None if observed.all() else observed.astype(np.float32),
        )


def king_robust(a: Indicators, b: Indicators) -> np.ndarray:
    """KING-robust kinship of every row of ``a`` with every row of ``b`` (float64).
    Pairs where either individual has no heterozygous call on the shared SNPs get NaN."""
    hethet = a.het @ b.het.T
    ibs0 = a.hom_ref @ b.hom_alt.T + a.hom_alt @ b.hom_ref.T
    if a.observed is None and b.observed is None:
        het_a = np.broadcast_to(a.het.sum(axis=1)[:, None], hethet.shape)
        het_b = np.broadcast_to(b.het.sum(axis=1)[None, :], hethet.shape)
    else:
        het_a = a.het @ b.called().T
        het_b = a.called() @ b.het.T
    het_min = np.minimum(het_a, het_b).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        phi = 0.5 + (2.0 * hethet - 4.0 * ibs0 - het_a - het_b) / (4.0 * het_min)
    phi[het_min == 0] = np.nan
    return phi


def unrelated(
    dosages: np.ndarray, level: float = FIRST_DEGREE, max_snps: int = 20_000
) -> np.ndarray:
    """Indices (ascending) of individuals (rows of ``dosages``) no two of whom have KING-robust
    kinship at or above ``level``: the individual with the most such relatives is dropped
    until none is left (ties to the later row). Read on at most ``max_snps`` SNPs spread
    evenly along the map (KING at a second degree needs far fewer than a genome's)."""
    x = np.asarray(dosages)
    step = max(1, -(-x.shape[1] // max_snps))
    calls = Indicators.from_dosages(x[:, ::step])
    phi = np.nan_to_num(king_robust(calls, calls), nan=-1.0)
    related = phi >= level
    np.fill_diagonal(related, False)
    keep = np.ones(len(x), dtype=bool)
    degree = related.sum(axis=1)
    while degree.max(initial=0) > 0:
        worst = len(degree) - 1 - int(np.argmax(degree[::-1]))
        keep[worst] = False
        degree -= related[worst]
        degree[worst] = 0
        related[worst] = related[:, worst] = False
    return np.flatnonzero(keep)
