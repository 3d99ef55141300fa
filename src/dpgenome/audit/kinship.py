"""KING-robust kinship between synthetic and real individuals, vectorised on hard calls.

Manichaikul et al. 2010, "Robust relationship inference in genome-wide association
studies", Bioinformatics 26:2867. For individuals i, j and the SNPs genotyped in both,

    phi_ij = 1/2 - (N_Aa(i) + N_Aa(j) - 2 N_Aa,Aa + 4 N_AA,aa) / (4 min(N_Aa(i), N_Aa(j)))

(N_Aa,Aa: both heterozygous; N_AA,aa: opposite homozygotes; N_Aa(i): heterozygous in i),
the between-family KING-robust estimator that PLINK 2 ``--make-king`` reports (validated
against it in the tests, and to 5e-7 over 19,877 pairs by a review at stop 45). Dosages are
rounded to hard calls; plink2 by default sets a dosage more than 0.1 from a whole number to
missing instead (its ``--hard-call-threshold 0.1``), so on imputed dosages the two differ
slightly (up to 0.026 on a VCF with 3% non-integer dosages; equal with plink2's
``--hard-call-threshold 0.4999``). Every
count is a matrix product of 0/1 indicator matrices, so all pairs between two sets cost a
few BLAS calls. Thresholds follow KING: >= 0.354 duplicate/MZ twin, >= 0.177 first degree.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dpgenome.audit.scoring import wilson_interval
from dpgenome.relatedness import DUPLICATE, FIRST_DEGREE, Indicators, king_robust

__all__ = ["Indicators", "king_robust", "kinship_leakage"]


def _at_or_above(phi: np.ndarray, level: float) -> np.ndarray:
    """Per row: number of partners with kinship >= level (NaN never counts)."""
    return (np.nan_to_num(phi, nan=-1.0) >= level).sum(axis=1)


def _pair_rate(counts: np.ndarray, n_partners: int) -> float:
    return float(counts.sum() / (len(counts) * n_partners)) if len(counts) and n_partners else 0.0


def kinship_leakage(
    synthetic: Indicators,
    members: Indicators,
    holdout: Indicators,
    *,
    duplicate: float = DUPLICATE,
    first_degree: float = FIRST_DEGREE,
    n_bootstrap: int = 200,
    rng: np.random.Generator,
    confidence: float = 0.95,
) -> dict[str, Any]:
    """Relatedness of synthetic individuals to the members, against the holdout baseline.

    Pairs are counted at or above two levels: ``duplicate`` (phi >= 0.354: the same genome,
    an MZ twin) and ``first_degree`` (phi >= 0.177: parent/offspring, full sibling, or
    closer; so duplicates are counted at both levels). The rates are pair rates, pairs /
    (n_synthetic x n_members), and the same for holdout x members: the holdout, never seen
    by the synthesizer, measures the colony's own relatedness, and the excess is synthetic
    minus holdout rate (CI: percentile bootstrap over synthetic and holdout individuals).
    The share of individuals with at least one member relative is reported too. Pairs among
    the members are counted as well: a member's relatives carry much of their genome, so an
    individual-level guarantee protects a family less than an individual.
    """
    sm = king_robust(synthetic, members)
    hm = king_robust(holdout, members)
    mm = king_robust(members, members)
    n_m = mm.shape[0]
    iu = np.triu_indices(n_m, k=1)
    mm_pairs = np.nan_to_num(mm[iu], nan=-1.0)
    del mm
    s_first, h_first = _at_or_above(sm, first_degree), _at_or_above(hm, first_degree)
    s_dup, h_dup = _at_or_above(sm, duplicate), _at_or_above(hm, duplicate)
    n_s, n_h = len(s_first), len(h_first)
    excess = _pair_rate(s_first, n_m) - _pair_rate(h_first, n_m)
    boot_s = s_first[rng.integers(n_s, size=(n_bootstrap, n_s))].sum(axis=1) / (n_s * n_m)
    boot_h = h_first[rng.integers(n_h, size=(n_bootstrap, n_h))].sum(axis=1) / (n_h * n_m)
    alpha = (1.0 - confidence) / 2.0
    lo, hi = np.quantile(boot_s - boot_h, [alpha, 1.0 - alpha])

    def r(x: float) -> float:
        return float(f"{x:.6g}")

    def share(counts: np.ndarray) -> tuple[float, list[float]]:
        k = float((counts > 0).sum())
        return r(k / len(counts)), [r(x) for x in wilson_interval(k, len(counts), confidence)]

    s_share, s_share_ci = share(s_first)
    h_share, h_share_ci = share(h_first)
    return {
        "thresholds": {"duplicate": duplicate, "first_degree": first_degree},
        "synthetic_member_duplicate_pairs": int(s_dup.sum()),
        "synthetic_member_first_degree_pairs": int(s_first.sum()),
        "holdout_member_duplicate_pairs": int(h_dup.sum()),
        "holdout_member_first_degree_pairs": int(h_first.sum()),
        "synthetic_first_degree_rate": r(_pair_rate(s_first, n_m)),
        "holdout_first_degree_rate": r(_pair_rate(h_first, n_m)),
        "excess_first_degree_rate": r(excess),
        "excess_first_degree_rate_ci": [r(lo), r(hi)],
        "synthetic_duplicate_rate": r(_pair_rate(s_dup, n_m)),
        "holdout_duplicate_rate": r(_pair_rate(h_dup, n_m)),
        "excess_duplicate_rate": r(_pair_rate(s_dup, n_m) - _pair_rate(h_dup, n_m)),
        "synthetic_share_with_first_degree_member": s_share,
        "synthetic_share_with_first_degree_member_ci": s_share_ci,
        "holdout_share_with_first_degree_member": h_share,
        "holdout_share_with_first_degree_member_ci": h_share_ci,
        "member_member_duplicate_pairs": int((mm_pairs >= duplicate).sum()),
        "member_member_first_degree_pairs": int((mm_pairs >= first_degree).sum()),
        "member_pairs": len(mm_pairs),
        "n_synthetic": n_s,
        "n_holdout": n_h,
        "n_members": n_m,
        "method": "KING-robust kinship (Manichaikul et al. 2010; plink2 --make-king) on hard "
        "calls; pair counts at or above each level; rates = pairs / (n x n_members)",
    }
