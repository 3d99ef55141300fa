"""The synthetic phenotypes against the real ones: correlations, missingness, marginals.

Aggregates only: correlation matrices and their error, the strong correlations
(:data:`STRONG_R`) kept or lost, each column's share missing and missing together, and each
column's marginal (levels' shares, or quantiles). Part of
:func:`dpgenome.fidelity.cohort_fidelity`.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd

from dpgenome.cohort import Cohort, PhenoType
from dpgenome.jsonvalues import finite_or_none

log = logging.getLogger(__name__)


def pheno_correlations(
    real: Cohort, synth: Cohort
) -> tuple[list[str], np.ndarray | None, np.ndarray | None, float]:
    names = [
        c
        for c in real.phenotypes.columns
        if c in synth.phenotypes.columns
        and real.pheno_types.get(c) != PhenoType.CATEGORICAL
        and synth.pheno_types.get(c) != PhenoType.CATEGORICAL
    ]
    if len(names) < 2:
        return names, None, None, float("nan")
    cr = real.phenotypes[names].apply(pd.to_numeric, errors="coerce").corr().to_numpy()
    cs = synth.phenotypes[names].apply(pd.to_numeric, errors="coerce").corr().to_numpy()
    iu = np.triu_indices(len(names), k=1)
    diff = np.abs(cr[iu] - cs[iu])
    err = float(np.nanmean(diff)) if np.isfinite(diff).any() else float("nan")
    return names, cr, cs, err


def phenotype_missingness(real: pd.DataFrame, synth: pd.DataFrame) -> dict[str, Any]:
    """Which phenotypes are missing together, over the columns both tables have: the share
    of rows with every one of them observed (``complete_rows_real``, ``..._synthetic``) and
    the mean absolute difference between the real and synthetic correlations of the
    missingness indicators of the columns with missing values among the real rows
    (``indicator_correlation_error``; a column never missing in the synthetic rows counts
    as uncorrelated). Columns left missing independently lose it (stop 49: 0.43).
    Aggregates only."""
    shared = [c for c in real.columns if c in synth.columns]
    r, s = real[shared].isna(), synth[shared].isna()
    varied = [c for c in shared if 0 < r[c].mean() < 1]
    err = None
    if len(varied) >= 2 and len(s) >= 2:
        iu = np.triu_indices(len(varied), 1)
        with np.errstate(invalid="ignore", divide="ignore"):
            rc = np.corrcoef(r[varied].to_numpy(dtype=np.float64), rowvar=False)[iu]
            sc = np.corrcoef(s[varied].to_numpy(dtype=np.float64), rowvar=False)[iu]
        err = float(np.abs(rc - np.nan_to_num(sc)).mean())
    return {
        "columns": len(shared),
        "columns_with_missing_values": len(varied),
        "complete_rows_real": float((~r).all(axis=1).mean()) if len(r) else None,
        "complete_rows_synthetic": float((~s).all(axis=1).mean()) if len(s) else None,
        "indicator_correlation_error": err,
    }


#: a phenotype pair counts as strongly correlated from this real |r| on
STRONG_R = 0.5


def strong_correlations(real: np.ndarray | None, synth: np.ndarray | None) -> dict[str, Any]:
    """How much of the strong phenotype correlations (real |r| >= :data:`STRONG_R`) the
    synthetic cohort keeps: the synthetic r in the real r's direction, averaged over those
    pairs, over the real |r| averaged (``kept``: 1 = kept, 0 = lost). The mean absolute
    difference over all pairs dilutes them among the many pairs near zero."""
    out: dict[str, Any] = {"threshold": STRONG_R, "pairs": 0, "kept": None}
    if real is None or synth is None:
        return out
    iu = np.triu_indices(real.shape[0], k=1)
    r, s = real[iu], synth[iu]
    strong = np.isfinite(r) & np.isfinite(s) & (np.abs(r) >= STRONG_R)
    if not strong.any():
        return out
    real_abs = float(np.abs(r[strong]).mean())
    same_sign = float((np.sign(r[strong]) * s[strong]).mean())
    return out | {
        "pairs": int(strong.sum()),
        "real_mean_abs_r": real_abs,
        "synthetic_mean_r_same_sign": same_sign,
        "kept": same_sign / real_abs,
    }


def _level_shares(column: pd.Series) -> pd.Series:
    """Share of each level of a categorical column, missing values as one more level."""
    return (column.astype(object).where(column.notna(), "<missing>").astype(str)).value_counts(
        normalize=True
    )


#: fewest observed real values of a numeric phenotype whose real mean and sd are shown (as
#: the PCA histogram's smallest cell, ``pca_min_cell``)
MARGINAL_MIN_OBSERVED = 5


def phenotype_marginals(
    real: Cohort, synth: Cohort, *, focus: tuple[str, ...] = (), worst: int = 8
) -> dict[str, Any]:
    """Real vs synthetic marginal of every shared phenotype (aggregates only).

    Numeric columns (continuous, binary: the mean is the prevalence): mean, sd and missing
    share of each cohort, and the standardised mean difference ``smd = (mean_synthetic -
    mean_real) / sd_real`` over the observed values; categorical columns: the total variation
    distance between the level shares (missing as a level). ``mean_abs_smd`` (the
    ``phenotype_marginal_error``) averages ``|smd|`` over the numeric columns; ``rows`` lists
    the ``focus`` columns first, then the ``worst`` others by ``|smd|`` or distance. A numeric
    column with fewer than :data:`MARGINAL_MIN_OBSERVED` observed real values is left out: its
    mean and sd over two values are those two people's values.
    """
    rows: list[dict[str, Any]] = []
    for name in real.phenotypes.columns:
        if name not in synth.phenotypes.columns:
            continue
        kind = real.pheno_types.get(name)
        r, s = real.phenotypes[name], synth.phenotypes[name]
        row: dict[str, Any] = {
            "name": str(name),
            "type": str(kind.value if kind is not None else "unknown"),
            "missing_real": finite_or_none(float(r.isna().mean())),
            "missing_synthetic": finite_or_none(float(s.isna().mean())),
        }
        if kind == PhenoType.CATEGORICAL:
            pr, ps = _level_shares(r), _level_shares(s)
            levels = pr.index.union(ps.index)
            tvd = 0.5 * float(
                np.abs(pr.reindex(levels, fill_value=0) - ps.reindex(levels, fill_value=0)).sum()
            )
            row |= {"total_variation": finite_or_none(tvd)}
        else:
            xr = pd.to_numeric(r, errors="coerce").to_numpy(dtype=np.float64)
            xs = pd.to_numeric(s, errors="coerce").to_numpy(dtype=np.float64)
            xr, xs = xr[np.isfinite(xr)], xs[np.isfinite(xs)]
            if len(xr) < MARGINAL_MIN_OBSERVED or len(xs) < 1:
                continue
            sd_r = float(xr.std(ddof=1))
            smd = (float(xs.mean()) - float(xr.mean())) / sd_r if sd_r > 0 else float("nan")
            row |= {
                "mean_real": finite_or_none(float(xr.mean())),
                "mean_synthetic": finite_or_none(float(xs.mean())),
                "sd_real": finite_or_none(sd_r),
                "sd_synthetic": finite_or_none(
                    float(xs.std(ddof=1)) if len(xs) > 1 else float("nan")
                ),
                "smd": finite_or_none(smd),
            }
        rows.append(row)
    smds = [abs(x["smd"]) for x in rows if x.get("smd") is not None]
    focused = [x for name in focus for x in rows if x["name"] == name]
    others = sorted(
        (x for x in rows if x["name"] not in focus),
        key=lambda x: -abs(x.get("smd") or x.get("total_variation") or 0.0),
    )
    return {
        "method": "per shared phenotype: mean, sd and missing share (numeric; a binary "
        "column's mean is its prevalence) and the standardised mean difference "
        "(synthetic - real) / sd_real over observed values; categorical: total variation "
        "distance of the level shares",
        "n_compared": len(rows),
        "mean_abs_smd": finite_or_none(float(np.mean(smds))) if smds else None,
        "max_abs_smd": finite_or_none(float(np.max(smds))) if smds else None,
        "rows": focused + others[:worst],
    }
