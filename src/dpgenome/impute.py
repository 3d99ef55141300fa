"""The public panel's missing calls, filled from its nearest individuals (public data only).

The synthesizer reads the public panel three ways: it pretrains the genotype model on it,
copies its blocks into the selected regions (:mod:`dpgenome.splice`) and takes its principal
components as the regions' reference. A panel missing calls hurt the first two: the model,
trained on inputs where a missing neighbour reads as a centred 0, kept fewer heterozygotes
(inbreeding F 0.04 against the members' 0.002 at 2% missing calls, ``bench/synth.py
--missing-calls 0.02``), and a copied block carried its donor's missing calls into the
synthetic cohort, which then missed calls whatever ``genotype_missingness`` said.

So the panel's missing calls are filled first, by the oldest trick of genotype imputation in
a closed colony, where individuals share long haplotypes: within each window of
:data:`WINDOW` SNPs of a chromosome, an individual's missing call takes the call of its
nearest panel individual (mean squared dosage difference over the SNPs both have called,
over at least half the window) that has it; when none of its :data:`NEIGHBOURS` nearest has
it, the SNP's mean dosage over the panel, rounded. Everything read is the public panel's, so
this costs no privacy. The synthetic genotypes' own missing calls, if any, come from
:mod:`dpgenome.callrates` alone.
"""

from __future__ import annotations

import itertools
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

#: SNPs per window of the nearest-individual search
WINDOW = 64
#: nearest individuals tried, nearest first, for each missing call
NEIGHBOURS = 8


@dataclass(frozen=True)
class Imputed:
    """A panel's dosages with every missing call filled, and how many were."""

    dosages: np.ndarray
    filled: int
    #: of them, filled from the SNP's mean (no near individual had the call)
    from_mean: int

    def summary(self) -> dict[str, int | float]:
        return {
            "calls_filled": self.filled,
            "share_filled": self.filled / max(self.dosages.size, 1),
            "from_snp_mean": self.from_mean,
            "window_snps": WINDOW,
            "neighbours": NEIGHBOURS,
        }


def _windows(chromosomes: np.ndarray, size: int) -> list[tuple[int, int]]:
    """``(start, stop)`` column ranges of ``size`` contiguous SNPs, never across a chromosome;
    a chromosome's last window shorter than ``size // 2`` is merged into the one before (so
    a window holds up to ``1.5 size`` SNPs), and a chromosome shorter than ``size`` is one."""
    out: list[tuple[int, int]] = []
    change = np.flatnonzero(chromosomes[1:] != chromosomes[:-1]) + 1
    bounds = [0, *change.tolist(), len(chromosomes)]
    for lo, hi in itertools.pairwise(bounds):
        starts = list(range(lo, hi, size))
        if len(starts) > 1 and hi - starts[-1] < size // 2:
            starts.pop()
        out += [(s, starts[i + 1] if i + 1 < len(starts) else hi) for i, s in enumerate(starts)]
    return out


def impute_nearest(dosages: np.ndarray, chromosomes: pd.Series | np.ndarray) -> Imputed:
    """``dosages`` (individuals x SNPs in map order, NaN = missing; not modified) with every
    missing call filled (see the module docstring). ``chromosomes``: each SNP's."""
    x = np.asarray(dosages, dtype=np.float32)
    missing = np.isnan(x)
    if not missing.any():
        return Imputed(x, 0, 0)
    out = x.copy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a SNP nobody called: NaN, then 0
        mean = np.nanmean(x, axis=0)
    fallback = np.rint(np.nan_to_num(mean, nan=0.0)).astype(np.float32)
    chroms = np.asarray(pd.Series(chromosomes).astype(str))
    n = x.shape[0]
    k = min(NEIGHBOURS, n - 1)
    from_mean = 0
    for start, stop in _windows(chroms, WINDOW):
        miss = missing[:, start:stop]
        query = np.flatnonzero(miss.any(axis=1))
        if not query.size:
            continue
        cols = np.arange(start, stop)[None, :]
        # without a near individual that called it (or anybody to ask): the SNP's mean
        found = np.zeros((query.size, stop - start), dtype=bool)
        value = np.broadcast_to(fallback[start:stop][None, :], found.shape)
        if k >= 1:
            obs = (~miss).astype(np.float32)
            v = np.where(miss, 0.0, x[:, start:stop]).astype(np.float32)
            v2 = v * v
            oq, vq, v2q = obs[query], v[query], v2[query]
            shared = oq @ obs.T
            squared = v2q @ obs.T + oq @ v2.T - 2.0 * (vq @ v.T)
            with np.errstate(invalid="ignore", divide="ignore"):
                distance = np.where(
                    shared >= (stop - start) / 2.0, squared / np.maximum(shared, 1.0), np.inf
                )
            distance[np.arange(query.size), query] = np.inf  # not itself
            near = np.argpartition(distance, k - 1, axis=1)[:, :k]
            order = np.argsort(np.take_along_axis(distance, near, axis=1), axis=1, kind="stable")
            near = np.take_along_axis(near, order, axis=1)
            usable = np.isfinite(np.take_along_axis(distance, near, axis=1))
            # the first of the nearest that called each SNP (q x k x w)
            has = usable[:, :, None] & (obs[near] > 0)
            found = has.any(axis=1)
            donor = np.take_along_axis(near, has.argmax(axis=1), axis=1)  # (q, w)
            value = np.where(found, x[donor, cols], value)
        filled = miss[query]
        from_mean += int((filled & ~found).sum())
        block = out[query, start:stop]
        block[filled] = value[filled]
        out[query, start:stop] = block
    return Imputed(out, int(missing.sum()), from_mean)
