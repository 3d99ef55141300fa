"""Shared inputs of the attacks: variant matching, SNP subsets, hard calls and distances.

Genotype distance is the mean absolute difference of hard-called dosages over a seeded SNP
subset, i.e. twice the IBS distance (Purcell et al. 2007, PLINK ``--distance ibs``): 0 for
identical genotypes, 2 for opposite homozygotes everywhere. It is computed with one matrix
product through the threshold code ``t1 = [g >= 1]``, ``t2 = [g >= 2]``: for integer
``g, h`` in {0, 1, 2}, ``|g - h| = |t1(g) - t1(h)| + |t2(g) - t2(h)|`` and for 0/1 values
``|x - y| = x + y - 2xy``. Phenotypes enter standardised (holdout mean and SD), categorical
ones as 0/1 mismatches; missing values are imputed (genotype: rounded mean of the real
cohort; phenotype: the holdout mean, i.e. z = 0; categorical: their own level).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from dpgenome.cohort import Cohort, PhenoType
from dpgenome.errors import CohortError


@dataclass(frozen=True)
class MatchedVariants:
    """Columns of the real and synthetic dosage matrices holding the same SNP ids, in the
    real cohort's order."""

    real: np.ndarray
    synthetic: np.ndarray

    @property
    def n(self) -> int:
        return len(self.real)


def match_variants(real: Cohort, synthetic: Cohort) -> MatchedVariants:
    """Match synthetic to real variants by SNP id; error if they share none."""
    real_ids = real.variants["id"].astype(str).to_numpy()
    syn_ids = pd.Index(synthetic.variants["id"].astype(str))
    if syn_ids.has_duplicates:
        dup = syn_ids[syn_ids.duplicated()][0]
        raise CohortError(f"synthetic cohort lists SNP {dup!r} twice")
    pos = syn_ids.get_indexer(pd.Index(real_ids))
    keep = np.flatnonzero(pos >= 0)
    if len(keep) == 0:
        raise CohortError(
            "the synthetic cohort shares no SNP id with the real cohort "
            f"(real e.g. {real_ids[0]!r}, synthetic e.g. {syn_ids[0]!r})"
        )
    return MatchedVariants(real=keep, synthetic=pos[keep].astype(np.int64))


def snp_subset(
    matched: MatchedVariants, max_snps: int | None, rng: np.random.Generator
) -> MatchedVariants:
    """A seeded random subset (kept in map order) of at most ``max_snps`` matched SNPs."""
    if max_snps is None or matched.n <= max_snps:
        return matched
    pick = np.sort(rng.choice(matched.n, size=max_snps, replace=False))
    return MatchedVariants(matched.real[pick], matched.synthetic[pick])


def hard_calls(
    dosages: np.ndarray, columns: np.ndarray, fill: np.ndarray | None = None
) -> np.ndarray:
    """Rounded dosages (int8 in {0, 1, 2}) of the given columns; missing -> ``fill``."""
    block = dosages[:, columns]
    calls = np.rint(np.clip(block, 0.0, 2.0))
    missing = np.isnan(calls)
    if missing.any():
        if fill is None:
            raise ValueError("missing dosages need a fill value")
        calls = np.where(missing, fill[None, :], calls)
    return calls.astype(np.int8)


def fill_values(dosages: np.ndarray, columns: np.ndarray) -> np.ndarray:
    """Rounded per-SNP mean dosage (0 where nothing is observed)."""
    with np.errstate(invalid="ignore"):
        mean = np.nanmean(dosages[:, columns], axis=0)
    return np.rint(np.nan_to_num(mean, nan=0.0)).astype(np.float32)


def threshold_code(calls: np.ndarray) -> np.ndarray:
    """``[g >= 1, g >= 2]`` side by side (float32, n x 2m)."""
    return np.concatenate([calls >= 1, calls >= 2], axis=1).astype(np.float32)


def genotype_distance(code_a: np.ndarray, code_b: np.ndarray) -> np.ndarray:
    """Mean absolute hard-call difference between every row of ``a`` and every row of ``b``
    (float32, exact for fewer than 2^24 SNPs)."""
    m = code_a.shape[1] // 2
    sa = code_a.sum(axis=1)
    sb = code_b.sum(axis=1)
    d = sa[:, None] + sb[None, :] - 2.0 * (code_a @ code_b.T)
    return np.maximum(d, 0.0) / np.float32(m)


# ---------------------------------------------------------------------------- phenotypes


@dataclass(frozen=True)
class PhenoCoding:
    """Phenotype columns coded for distances: z-scores (numeric) and level codes
    (categorical) of one set of individuals."""

    numeric: np.ndarray  # n x p_num float64
    categorical: np.ndarray  # n x p_cat int64
    columns: tuple[str, ...]

    @property
    def n_columns(self) -> int:
        return self.numeric.shape[1] + self.categorical.shape[1]


def pheno_columns(real: Cohort, synthetic: Cohort, wanted: Sequence[str] | None) -> list[str]:
    """The phenotype columns used: ``wanted`` (each must be in both cohorts) or every column
    shared by both."""
    if wanted:
        real.require_phenotypes(list(wanted))
        missing = [c for c in wanted if c not in synthetic.phenotypes.columns]
        if missing:
            raise CohortError(
                f"the synthetic cohort has no column {', '.join(map(repr, missing))}; it has: "
                + (", ".join(map(str, synthetic.phenotypes.columns[:12])) or "(none)")
            )
        return list(dict.fromkeys(wanted))
    return [c for c in real.phenotypes.columns if c in synthetic.phenotypes.columns]


def code_phenotypes(
    cohorts: Sequence[Cohort], columns: Sequence[str], reference: Cohort
) -> list[PhenoCoding]:
    """Code the columns of several cohorts with the reference's mean/SD and level set."""
    num_cols = [c for c in columns if reference.pheno_types[c] != PhenoType.CATEGORICAL]
    cat_cols = [c for c in columns if reference.pheno_types[c] == PhenoType.CATEGORICAL]
    stats: dict[str, tuple[float, float]] = {}
    for c in num_cols:
        v = reference.phenotypes[c].to_numpy(dtype=np.float64, na_value=np.nan)
        mu = float(np.nanmean(v)) if np.isfinite(v).any() else 0.0
        sd = float(np.nanstd(v)) if np.isfinite(v).sum() > 1 else 1.0
        stats[c] = (mu, sd if sd > 0 else 1.0)
    levels: dict[str, dict[str, int]] = {}
    for c in cat_cols:
        seen = {lvl for co in cohorts for lvl in _level_labels(co.phenotypes[c]) if lvl is not None}
        levels[c] = {lvl: i for i, lvl in enumerate(sorted(seen))}
    out = []
    for co in cohorts:
        n = co.n_samples
        num = np.zeros((n, len(num_cols)))
        for j, c in enumerate(num_cols):
            v = pd.to_numeric(co.phenotypes[c], errors="coerce").to_numpy(
                np.float64, na_value=np.nan
            )
            mu, sd = stats[c]
            num[:, j] = np.nan_to_num((v - mu) / sd, nan=0.0)
        cat = np.zeros((n, len(cat_cols)), dtype=np.int64)
        for j, c in enumerate(cat_cols):
            # a missing value is a level of its own, one past the observed ones
            na = len(levels[c])
            cat[:, j] = [
                na if lvl is None else levels[c][lvl] for lvl in _level_labels(co.phenotypes[c])
            ]
        out.append(PhenoCoding(num, cat, tuple(num_cols + cat_cols)))
    return out


def _level_labels(col: pd.Series) -> list[str | None]:
    """A categorical column's values as level labels (``str``); ``None`` where missing.

    ``Series.astype(str)`` keeps a missing value as ``NaN`` under pandas 3 (which cannot be
    sorted with the labels) and turned it into the label ``"nan"`` before; here it is never a
    label, so it neither breaks the level order nor merges with an observed ``"nan"``."""
    missing = col.isna().to_numpy(dtype=bool)
    return [None if m else str(v) for v, m in zip(col.tolist(), missing, strict=True)]


def pheno_distance(a: PhenoCoding, b: PhenoCoding) -> np.ndarray:
    """Mean over columns of |z_a - z_b| (numeric) and [level_a != level_b] (categorical)."""
    d = np.zeros((a.numeric.shape[0], b.numeric.shape[0]))
    for j in range(a.numeric.shape[1]):
        d += np.abs(a.numeric[:, j, None] - b.numeric[None, :, j])
    for j in range(a.categorical.shape[1]):
        d += a.categorical[:, j, None] != b.categorical[None, :, j]
    return d / max(a.n_columns, 1)


def block_scales(
    geno: np.ndarray, pheno: np.ndarray | None, rows: np.ndarray
) -> tuple[float, float]:
    """Median genotype and phenotype distance over ``rows`` (the holdout rows of a real x
    synthetic matrix: non-member reference pairs); 1.0 where a median is 0 or absent."""
    sg = float(np.median(geno[rows])) or 1.0
    sp = 1.0 if pheno is None else (float(np.median(pheno[rows])) or 1.0)
    return sg, sp


def combine(geno: np.ndarray, pheno: np.ndarray | None, scales: tuple[float, float]) -> np.ndarray:
    """Equal-weight sum of the genotype and phenotype blocks, each divided by its scale."""
    if pheno is None:
        return geno.astype(np.float64)
    return 0.5 * geno / scales[0] + 0.5 * pheno / scales[1]
