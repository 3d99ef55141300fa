"""New genotypes at the selected regions, joined to the window model's on both sides.

Inside a selected region the synthetic genotypes are replaced after sampling (a public-panel
individual's block, which carries the population's long-range LD; or, without a panel, the
lead SNP redrawn at its released frequency: :mod:`dpgenome.association`). Replaced naively,
nothing links the block to the chromosome around it: r^2 across a region's edges fell to
0.01 against 1.0 in the real cohort (docs/tuning-history.md, stop 51). So, region by region
along each chromosome:

Overlapping regions are spliced as one (:func:`merge_overlapping`).

* **upstream edge**: each synthetic individual takes the block of a panel individual whose
  genotypes at the ``match_snps`` SNPs before the region are closest to its own (an
  assignment, :func:`assign_donors`: each panel individual serves at most ``ceil(n / P)``
  synthetic ones, so a block repeats only when the cohort outnumbers the panel, and evenly);
* **downstream edge**: the SNPs after the region on its chromosome are drawn again from the
  window model given the new block (:func:`dpgenome.sample.sample_dosages` with ``given``).

Inputs: the synthetic genotypes (DP outputs), the public panel and the DP model:
post-processing, no privacy cost.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment

from dpgenome.cohort import chromosome_rank
from dpgenome.model import WindowModel
from dpgenome.sample import sample_dosages

#: SNPs before a region on which a donor's genotypes are matched to the synthetic individual's
MATCH_SNPS = 16


@dataclass(frozen=True)
class Splice:
    """One region's new genotypes: ``columns`` and either a public panel to take them from
    (``values`` None) or the ``values`` themselves (``(n, len(columns))``)."""

    columns: np.ndarray
    values: np.ndarray | None = None


def assign_donors(cost: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A donor (column of ``cost``, ``(n, P)``) for each row, minimising the total cost
    with each donor used at most ``ceil(n / P)`` times; ties broken at random."""
    n, p = cost.shape
    cap = -(-n // p)
    jitter = rng.random((n, p * cap)) * 1e-6
    rows, slots = linear_sum_assignment(np.repeat(cost, cap, axis=1) + jitter)
    donors = np.empty(n, dtype=np.int64)
    donors[rows] = slots // cap
    return donors


def merge_overlapping(
    splices: Sequence[Splice], chrom: np.ndarray, pos: np.ndarray
) -> list[Splice]:
    """``splices`` in map order, panel splices whose ranges overlap on a chromosome merged
    into one (the SNPs between them included): one donor's block across them, rather than
    a second donor overwriting the first one's where they overlap."""
    spans = sorted(splices, key=lambda s: (int(chrom[s.columns].min()), int(pos[s.columns].min())))
    out: list[Splice] = []
    for s in spans:
        prev = out[-1] if out else None
        if (
            prev is not None
            and prev.values is None
            and s.values is None
            and chrom[s.columns[0]] == chrom[prev.columns[0]]
            and pos[s.columns].min() <= pos[prev.columns].max()
        ):
            c = chrom[s.columns[0]]
            lo = pos[prev.columns].min()
            hi = max(pos[prev.columns].max(), pos[s.columns].max())
            out[-1] = Splice(np.flatnonzero((chrom == c) & (pos >= lo) & (pos <= hi)))
        else:
            out.append(s)
    return out


def splice_regions(
    model: WindowModel,
    dosages: np.ndarray,
    variants: pd.DataFrame,
    splices: Sequence[Splice],
    rng: np.random.Generator,
    *,
    panel: np.ndarray | None = None,
    match_snps: int = MATCH_SNPS,
    join_edges: bool = True,
    ancestry: np.ndarray | None = None,
) -> tuple[np.ndarray, dict[str, object]]:
    """``dosages`` with every splice's columns replaced and joined on both sides (module
    docstring), and aggregates: the most times one donor served, the mean mismatch of the
    matched SNPs (count per individual) and the columns drawn again downstream.
    ``join_edges=False``: donors at random (each at most ``ceil(n / P)`` times) and nothing
    drawn again: the blocks as cut before stop 51. ``ancestry``: the synthetic individuals'
    scores, for a model that reads them (:func:`dpgenome.sample.sample_dosages`)."""
    out = np.array(dosages, dtype=np.float32, copy=True)
    chrom = chromosome_rank(variants["chr"].astype(str).to_numpy())
    pos = variants["pos"].to_numpy(dtype=np.int64)
    order = merge_overlapping(splices, chrom, pos)
    spliced = np.concatenate([np.asarray(s.columns) for s in order]) if order else []
    most_served, mismatch, redrawn = 0, [], 0
    for n_done, s in enumerate(order):
        cols = np.asarray(s.columns)
        c, start, end = chrom[cols[0]], pos[cols].min(), pos[cols].max()
        # the next splice on this chromosome draws again what follows it: stop there
        nxt = order[n_done + 1].columns if n_done + 1 < len(order) else None
        stop = pos[nxt].min() if nxt is not None and chrom[nxt[0]] == c else np.inf
        if s.values is None:
            if panel is None:
                raise ValueError("a splice without values needs a panel")
            before = np.flatnonzero((chrom == c) & (pos < start))
            before = before[np.argsort(pos[before], kind="stable")][-match_snps:]
            if not join_edges:
                before = before[:0]
            diff = np.abs(out[:, before][:, None, :] - panel[:, before][None, :, :])
            cost = np.where(np.isnan(diff), 0.5, diff).sum(axis=2)  # a missing call: 0.5
            donors = assign_donors(cost, rng)
            most_served = max(most_served, int(np.bincount(donors).max()))
            if before.size:
                mismatch.append(float(cost[np.arange(len(out)), donors].mean()))
            out[:, cols] = panel[np.ix_(donors, cols)]
        else:
            out[:, cols] = s.values
        after = (chrom == c) & (pos > end) & (pos < stop)
        after[spliced] = False  # no splice's columns: a block a lead sits in stays whole
        if after.any() and join_edges:
            redrawn += int(after.sum())
            out = sample_dosages(model, len(out), rng, given=out, free=after, ancestry=ancestry)
    return out, {
        "regions": len(order),
        "most_served_by_one_donor": most_served,
        "matched_snps": match_snps,
        "mean_mismatch": float(np.mean(mismatch)) if mismatch else None,
        "columns_drawn_again": redrawn,
    }
