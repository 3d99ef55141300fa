"""Nearest-neighbour leakage: DCR distributions, share closer to members, NNDR, duplicates.

Distances come from :mod:`dpgenome.audit.features`. Every statistic is reported next to
the same statistic for the holdout, which the synthesizer never saw: in an outbred colony
with few founders, long identical haplotype windows and close genotypes occur between real
individuals too, so only the excess over that baseline is evidence of leakage.
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from dpgenome.audit.scoring import histogram


def _r(x: float) -> float:
    return float(round(float(x), 6))


def _closer(d_mem: np.ndarray, d_hold: np.ndarray) -> float:
    return float(((d_mem < d_hold).sum() + 0.5 * (d_mem == d_hold).sum()) / len(d_mem))


def share_closer(
    distance: np.ndarray, mem: np.ndarray, hold: np.ndarray, rng: np.random.Generator
) -> float:
    """One bootstrap replicate of the DCR share: the columns of ``distance`` (real rows x
    reference records) resampled with replacement, then the share of them whose nearest row
    among ``mem`` is closer than their nearest among ``hold`` (ties count one half)."""
    n = distance.shape[1]
    cols = rng.integers(n, size=n)
    return _closer(
        distance[np.ix_(mem, cols)].min(axis=0), distance[np.ix_(hold, cols)].min(axis=0)
    )


def share_estimate(
    distance: np.ndarray,
    members: np.ndarray,
    holdout: np.ndarray,
    rng: np.random.Generator,
    n_subsamples: int = 20,
) -> tuple[float, np.ndarray, np.ndarray]:
    """The DCR share of :func:`share_closer_to_members` without its CI: the mean over
    ``n_subsamples`` seeded subsamples of the larger real set to the smaller one's size, with
    the last subsample's nearest-member and nearest-holdout distances (for histograms)."""
    k = min(len(members), len(holdout))
    d_hold_full = distance[holdout].min(axis=0) if len(holdout) == k else None
    shares = []
    d_mem = d_hold = np.empty(0)
    for _ in range(n_subsamples):
        mem = rng.choice(members, size=k, replace=False)
        hold = holdout if d_hold_full is not None else rng.choice(holdout, size=k, replace=False)
        d_mem = distance[mem].min(axis=0)
        d_hold = d_hold_full if d_hold_full is not None else distance[hold].min(axis=0)
        shares.append(_closer(d_mem, d_hold))
    return float(np.mean(shares)), d_mem, d_hold


def share_closer_to_members(
    distance: np.ndarray,
    members: np.ndarray,
    holdout: np.ndarray,
    rng: np.random.Generator,
    confidence: float = 0.95,
    *,
    n_subsamples: int = 20,
    n_bootstrap: int = 200,
    centred: bool = False,
) -> dict[str, Any]:
    """Share of synthetic records whose nearest member is closer than their nearest holdout
    individual (ties count one half): the "DCR share" test of Platzer & Reutterer 2021
    ("Holdout-based fidelity and privacy assessment of mixed-type synthetic data").

    ``centred``: the share on :func:`centre_distances` (the same entries without the distance
    histograms: centred distances are not distances). The raw share's spread under no leak
    is set by the few hubs nearest to many records (below); centring roughly doubles the
    effective number of nearest individuals. On the demo's synthetic cohort over 200 random
    splits (``bench/control.py``, stop 39) the sd over splits fell from 0.031 to 0.016, while
    ten percent of records copied from members moved both shares by 0.014: twice the
    signal-to-noise. The bootstrap CI is conservative for the centred share: its se is 0.028
    against the 0.016 over splits (the raw share's 0.037 against 0.031).

    The larger of the two real sets is subsampled (seeded) to the size of the smaller, so
    that under no leakage the expected share is exactly 0.5 (with unequal sets it would be
    n_members / (n_members + n_holdout)); the estimate averages ``n_subsamples`` subsamples.
    The CI is estimate +- z x the bootstrap standard error, resampling the members, the
    holdout and the synthetic records: the synthetic records share one reference set, so
    treating them as independent trials (a plain Wilson interval) would be far too narrow.
    (Percentile limits are avoided: resampling a reference set with replacement shrinks it,
    which shifts nearest-neighbour statistics.)
    ``distance`` is real (rows) x synthetic (columns).

    The share's spread under no leak is set by how many real individuals are nearest to
    synthetic records, not by the holdout's size: each of them falls among the members or the
    holdout by the split's chance, and all the records nearest to it go with it. With shares
    p_i of the records nearest to real individual i, ``share_nearest_effective`` = 1 / sum
    p_i^2 and ``share_null_sd`` = 0.5 / sqrt of it (the demo: 205 effective on these
    distances, 192 on genotypes alone, so sd 0.035; measured 0.025-0.033 over random splits
    at holdouts of 20-50% by ``bench/control.py``).
    """
    if centred:
        distance = centre_distances(distance)
    share, d_mem, d_hold = _share_with_ci(
        distance, members, holdout, rng, confidence, n_subsamples, n_bootstrap
    )
    if centred:
        return share
    # the top edge is a quantile, not the largest distance: that is one record's distance to
    # one real individual (larger ones fall in the last bin)
    hi_edge = float(max(np.quantile(np.r_[d_mem, d_hold], 0.99), 1e-9))
    edges = np.linspace(0.0, hi_edge, 31)
    return share | {
        "dcr_members": histogram(d_mem, edges),
        "dcr_holdout": histogram(d_hold, edges),
    }


def _share_with_ci(
    distance: np.ndarray,
    members: np.ndarray,
    holdout: np.ndarray,
    rng: np.random.Generator,
    confidence: float,
    n_subsamples: int,
    n_bootstrap: int,
) -> tuple[dict[str, Any], np.ndarray, np.ndarray]:
    """The share, its bootstrap CI and its spread under no leak (the entries both shares
    report), with the last subsample's nearest distances."""
    k = min(len(members), len(holdout))
    estimate, d_mem, d_hold = share_estimate(distance, members, holdout, rng, n_subsamples)
    boot = np.empty(n_bootstrap)
    for b in range(n_bootstrap):
        mem = rng.choice(members, size=k, replace=True)
        hold = rng.choice(holdout, size=k, replace=True)
        boot[b] = share_closer(distance, mem, hold, rng)
    z = float(stats.norm.ppf(0.5 * (1.0 + confidence)))
    half = z * float(np.std(boot, ddof=1))
    lo, hi = max(estimate - half, 0.0), min(estimate + half, 1.0)
    nearest = np.bincount(distance[np.r_[members, holdout]].argmin(axis=0)) / distance.shape[1]
    n_eff = 1.0 / float((nearest**2).sum())
    share = {
        "share_closer_to_members": _r(estimate),
        "share_closer_to_members_ci": [_r(lo), _r(hi)],
        "share_null": 0.5,
        "share_reference_size": int(k),
        "share_nearest_distinct": int(np.count_nonzero(nearest)),
        "share_nearest_effective": _r(n_eff),
        "share_null_sd": _r(0.5 / np.sqrt(n_eff)),
    }
    return share, d_mem, d_hold


def centre_distances(distance: np.ndarray) -> np.ndarray:
    """Each real individual's distances (a row) less its median distance to the synthetic
    records: which individual a record is *unusually* close to, rather than which one is
    close to every record.

    In a colony some individuals sit near the middle of genotype space and are the nearest
    real individual to many synthetic records whether or not they were members (hubs:
    Radovanovic, Nanopoulos & Ivanovic 2010, "Hubs in space", JMLR 11). Centring each
    individual's distances on its own typical distance removes most of that (Suzuki et al.
    2013, "Centering similarity measures to reduce hubs", EMNLP). It uses no membership
    label, so under no leak a share on centred distances is still 0.5 in expectation; a
    copied member stays nearest to its copy (distance 0, far below its median)."""
    return distance - np.median(distance, axis=1, keepdims=True)


def distinct_nearest_test(
    distance: np.ndarray, members: np.ndarray, holdout: np.ndarray
) -> dict[str, Any]:
    """How many of the *distinct* real individuals nearest to a synthetic record are members,
    with its exact null (measured in ``bench/control.py``; a policy may gate on it with
    ``nearest_neighbour.min_distinct_share_p_value``, and no shipped policy does).

    The nearest individuals are found among all members and all the holdout, so the set of
    them does not depend on the split: under no leak (a synthetic cohort independent of which
    individuals were members) the members among them are a hypergeometric draw from the
    split -- |D| of the N real individuals, of whom K are members -- and the one-sided p-value
    of the count is exact (up to the split's stratification). Each individual counts once
    however many records are nearest to it, so the colony's hubs do not widen the null as
    they widen the record share's (:func:`share_closer_to_members`), and every member copied
    into the synthetic cohort adds one member to the set. A record equally near several
    individuals counts the first of them in the cohort's order, not the first member: the
    set must not depend on the split (ties broken towards members inflated the count where
    distances tie, with few SNPs or identical genotypes: p < 0.05 in 59% of no-leak splits
    on 30 SNPs)."""
    rows = np.sort(np.r_[members, holdout])
    nearest = np.unique(rows[distance[rows].argmin(axis=0)])
    n, k, d = len(rows), len(members), len(nearest)
    m = int(np.isin(nearest, members).sum())
    null = k / n
    return {
        "distinct_nearest": d,
        "distinct_nearest_members": m,
        "distinct_share": _r(m / d),
        "distinct_share_null": _r(null),
        "distinct_share_null_sd": _r(np.sqrt(null * (1 - null) / d * (n - d) / (n - 1))),
        "distinct_share_p_value": float(stats.hypergeom.sf(m - 1, n, k, d)),
    }


def nndr(distance: np.ndarray) -> np.ndarray:
    """Nearest-neighbour distance ratio d1/d2 of every column's two nearest rows (0/0 = 0:
    two exact copies count as maximal risk). Values near 0 mean a record sits on one
    individual rather than between several (Lowe 2004; used for synthetic data by e.g.
    the synthcity privacy metrics)."""
    part = np.partition(distance, 1, axis=0)[:2]
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = part[0] / part[1]
    return np.nan_to_num(ratio, nan=0.0)


def row_digests(calls: np.ndarray) -> list[bytes]:
    """A 128-bit digest of each row of hard calls (int8, any missing code)."""
    calls = np.ascontiguousarray(calls)
    return [hashlib.blake2b(row.tobytes(), digest_size=16).digest() for row in calls]


def exact_duplicates(queries: list[bytes], reference: list[bytes]) -> int:
    """How many query digests occur among the reference digests."""
    ref = set(reference)
    return int(sum(q in ref for q in queries))


_MIX = np.uint64(0x9E3779B97F4A7C15)
_MIX2 = np.uint64(0xC2B2AE3D27D4EB4F)


def window_keys(
    calls: np.ndarray, chromosomes: np.ndarray, window: int, chunk: int = 64
) -> np.ndarray:
    """64-bit keys of every non-overlapping ``window``-SNP window (within chromosomes, tail
    windows dropped) of hard calls coded 0, 1, 2 (3 = missing): rows x windows, uint64.
    Windows are packed two bits per SNP into 128 bits and mixed into 64 (collisions have
    probability ~ n²/2^64) together with the window index."""
    blocks: list[np.ndarray] = []
    for chrom in pd.unique(chromosomes):
        idx = np.flatnonzero(chromosomes == chrom)
        n_win = len(idx) // window
        if n_win:
            blocks.append(idx[: n_win * window].reshape(n_win, window))
    if not blocks:
        return np.empty((calls.shape[0], 0), dtype=np.uint64)
    cols = np.concatenate(blocks)  # windows x window, column indices
    n_windows = cols.shape[0]
    half = (window + 1) // 2
    w1 = np.uint64(4) ** np.arange(half, dtype=np.uint64)
    w2 = np.uint64(4) ** np.arange(window - half, dtype=np.uint64)
    win = np.arange(n_windows, dtype=np.uint64)[None, :] * np.uint64(0x165667B19E3779F9)
    out = np.empty((calls.shape[0], n_windows), dtype=np.uint64)
    for start in range(0, calls.shape[0], chunk):
        vals = calls[start : start + chunk][:, cols].astype(np.uint64)  # rows x windows x snps
        with np.errstate(over="ignore"):
            k1 = (vals[:, :, :half] * w1).sum(axis=2, dtype=np.uint64)
            k2 = (vals[:, :, half:] * w2).sum(axis=2, dtype=np.uint64)
            out[start : start + chunk] = (k1 * _MIX) ^ (k2 * _MIX2) ^ win
    return out


def window_duplicate_rate(query_keys: np.ndarray, reference_keys: np.ndarray) -> float | None:
    """Share of (individual, window) pairs whose window genotype occurs in some reference
    individual's same window; ``None`` when there is no window (no chromosome has a whole
    window's SNPs)."""
    if query_keys.size == 0:
        return None
    return round(float(np.isin(query_keys, reference_keys).mean()), 6)


def phenotype_row_keys(table: pd.DataFrame) -> list[tuple[object, ...]]:
    """Phenotype rows as hashable tuples (numbers rounded to 6 significant digits; NaN is a
    value)."""
    cols: list[list[object]] = []
    for c in table.columns:
        col = table[c]
        if pd.api.types.is_numeric_dtype(col):
            v = col.to_numpy(dtype=np.float64, na_value=np.nan)
            cols.append([("nan" if np.isnan(x) else float(f"{x:.6g}")) for x in v])
        else:
            cols.append(list(col.astype(str)))
    return list(zip(*cols, strict=True)) if cols else []
