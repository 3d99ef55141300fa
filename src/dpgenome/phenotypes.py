"""DP-SGD phenotype synthesizer: batches of correlated phenotypes, one DP-SGD mechanism.

Pipeline (every data-dependent choice is public or charged to the ledger):

1. **Schema** (:class:`PhenoSchema`, public): how each column is discretised. Continuous
   columns get ``n_bins`` bins with edges at quantiles of a *public* table (by default the
   public CC0 CFW phenotype file shipped in ``dpgenome/data``, Parker et al. 2016; or a
   public panel's phenotypes, or declared ranges); numeric columns with few distinct public
   values (boxes, cages, ages) keep those values; categorical columns keep the public level
   set; binary columns are 0/1. A continuous column absent from the public schema gets its
   bins from a **DP quantile step** (:func:`dp_bins`): two Gaussian histograms per
   column (a range on a data-independent ``asinh`` grid, then quantiles on a linear grid
   inside it), charged to the ledger as one Gaussian mechanism (``count = 2`` per column,
   sensitivity 1). A categorical column absent from the schema is an error (a private level
   set cannot be released without a DP set-union step, which is not implemented).
2. **Batches** (:func:`group_columns`, names only): one *context* batch (the analysis
   phenotype, its covariates and the design columns: round, boxes, cages, ages) and batches
   of correlated traits from CFW naming conventions (body weights ``bw*``, bone, muscle, fear
   conditioning ``Av*``/``D3.*``/..., PPI ``pp*``/``p120*``, methamphetamine activity by day
   ``D1*``/``D2*``/``D3*``), at most ``max_batch_columns`` each. One-hot copies of a parent
   column (``SW1..SW25`` of ``round``, ``FCbox1..4``...) are not modelled but rebuilt from the
   sampled parent, so they stay consistent (the binary covariate ``SW16`` is exactly 0/1).
3. **Model** (:class:`GroupedMade`): each batch is a MADE (Germain et al. 2015, masked
   autoencoder for distribution estimation) over its discretised columns, missingness being
   one more category of each column, and also sees every column of the batches before it
   (context batch first): the model is autoregressive over batches, so covariate effects and
   cross-batch correlations are kept. Each column's conditional distribution is its learnt
   marginal (trained from the public schema's category shares, missing included) tilted by
   ``(z, z^2, missing)`` terms (ordinal columns) or free logits (categorical ones): few
   parameters, hence little DP noise. All batches are grouped
   tensors of one module trained by **one** DP-SGD run -- each individual's gradient over all
   parameters clipped to one norm, one noise draw per step, one ledger entry -- with
   closed-form per-sample gradients and ghost norms (Li et al. 2022) registered with Opacus.
4. **Sampling**: ancestral, batch by batch; a continuous value is drawn within its bin
   from the public table's distribution restricted to the bin (a DP-binned column: from its
   released fine histogram; uniformly for declared ranges; rounded, inside the bin, when the
   public column is integer-valued).
   Rows are fresh draws, never copies.
   Which columns are missing together is released apart (``phenotype-missingness``, one
   Gaussian histogram over the public table's missingness patterns, :mod:`dpgenome.missingness`):
   each row draws its pattern first, and the columns it governs are missing exactly where it
   says.
   Columns complete by a public rule (the analysis phenotype and covariates of an analysis
   subset) are sampled without their missing category.
   ``epsilon = inf``: the same loop without clipping or noise; a continuous column absent
   from the public schema then uses the data's own quantiles (no formal privacy anyway).

Hyperparameters were chosen on the public CFW phenotype table only (``bench/phenotypes.py``;
the learning rate also on a subpopulation whose marginals differ from the public bins, the
heavier half by ``bw1``: docs/tuning-history.md, stop 24).
"""

from __future__ import annotations

import functools
import gzip
import importlib.resources
import logging
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
import torch
from opacus.grad_sample import register_grad_sampler, register_norm_sampler
from scipy.optimize import lsq_linear
from scipy.stats import norm
from torch import nn

from dpgenome.accountant import PlannedDpSgd, PlannedGaussian
from dpgenome.cohort import Cohort, PhenoType, infer_pheno_types
from dpgenome.dpsgd import DpSgdConfig, DpSgdTrainer, check_ran
from dpgenome.errors import ConfigError
from dpgenome.histogram import planned_histogram
from dpgenome.missingness import (
    MissingPatterns,
    PatternDomain,
    PatternRelease,
    nearest_patterns,
    pattern_domain,
    release_patterns,
)
from dpgenome.nesting import (
    Nesting,
    derived_columns,
    nested_in,
    public_nestings,
    without_nestings,
)
from dpgenome.noise import Noise, mechanism_noise

if TYPE_CHECKING:
    from dpgenome.phenoschema import DeclaredSchema

log = logging.getLogger(__name__)

#: trait groups of the CFW schema (Parker et al. 2016), by column name; first match wins
GROUP_PATTERNS: tuple[tuple[str, str], ...] = (
    ("design", r"round|FCbox|PPIbox|methcage|methcycle|cageid|experimenters|earpunch"),
    ("design", r"discard|mixup|FCage|PPIage|methage|glucoseage|sacage"),
    ("body", r"bw\d*|PPIweight|sacweight|taillength|testisweight"),
    ("bone", r"BMD|abBMD|abnormalbone|tibia"),
    ("muscle", r"TA|EDL|gastroc|plantaris|soleus"),
    ("physiology", r"fastglucose|mwpc"),
    ("fear", r"Av.*|D3\.\d+|PreTrainD1|altcontextbin|d1tonebin|pretrainbin|avgnostim|FC.*|deaf"),
    ("ppi", r"pp.*|p120.*|PPI.*|startle"),
    ("meth_d1", r"D1.*"),
    ("meth_d2", r"D2.*"),
    ("meth_d3", r"D3.*"),
)

ColumnKind = Literal["bins", "values", "levels", "binary"]

#: the phenotype model's input carrying a row's missingness pattern (:mod:`dpgenome.missingness`):
#: a categorical column of the context batch (its levels: the pattern indices), never output
PATTERN_COLUMN = "(missingness pattern)"

#: even steps of a column's within-bin shape (:func:`shape_grid`)
SHAPE_POINTS = 200


# ---------------------------------------------------------------------------- schema


@dataclass(frozen=True)
class ColumnSchema:
    """How one column is discretised. ``edges`` (bins: ``n_bins + 1`` increasing edges,
    outer ones included), ``values`` (few numeric values), ``levels`` (categorical).

    ``quantiles`` at ``probabilities`` (bins only, optional): the column's quantile function
    from the same public table as the edges, on an even grid refined geometrically towards
    both tails (:func:`shape_grid`). A value decoded from a bin is drawn from that public
    distribution restricted to the bin rather than uniformly across it: a heavy-tailed
    column's outer bin spans its public maximum, and a uniform draw there triples the sd of
    ``avgnostim`` (mean shift 0.39 sd with the exact bin shares). DP bins carry the shape of
    their released fine histogram (:func:`dp_bins`); without ``quantiles`` (declared ranges)
    the draw is uniform."""

    kind: ColumnKind
    edges: tuple[float, ...] = ()
    values: tuple[float, ...] = ()
    levels: tuple[str, ...] = ()
    integer: bool = False
    source: str = "public"
    quantiles: tuple[float, ...] = ()
    probabilities: tuple[float, ...] = ()
    #: the public table's share of each category (missing last; smoothed), the marginal the
    #: model starts from (:attr:`PhenotypeConfig.public_prior`); empty: uniform
    prior: tuple[float, ...] = ()

    @property
    def n_categories(self) -> int:
        """Categories including the final "missing" one."""
        if self.kind == "bins":
            return len(self.edges)  # (len - 1) bins + missing
        if self.kind == "values":
            return len(self.values) + 1
        if self.kind == "levels":
            return len(self.levels) + 1
        return 3


@dataclass(frozen=True)
class PhenoSchema:
    """Public discretisation of phenotype columns (see the module docstring)."""

    columns: Mapping[str, ColumnSchema]
    source: str
    #: the public table's missingness patterns (which columns are missing together), the
    #: domain of the DP pattern release (:mod:`dpgenome.missingness`); None: no public table
    missing: MissingPatterns | None = None
    #: columns nested in another in the public table (cages in rounds: :mod:`dpgenome.nesting`),
    #: rebuilt from their parent rather than modelled
    nested: Mapping[str, Nesting] = field(default_factory=dict)

    @classmethod
    def from_public_table(
        cls,
        table: pd.DataFrame,
        types: Mapping[str, PhenoType] | None = None,
        *,
        n_bins: int = 20,
        max_values: int = 32,
        shape_points: int = SHAPE_POINTS,
        source: str = "public table",
    ) -> PhenoSchema:
        """Schema from a **public** table: quantile bin edges (and the within-bin shape:
        quantiles at :func:`shape_grid`, :class:`ColumnSchema`), value and level sets, and
        each column's category shares (the model's starting marginal)."""
        if n_bins < 2:
            raise ConfigError(f"n_bins must be >= 2, got {n_bins}")
        types = dict(types or infer_pheno_types(table))
        cols: dict[str, ColumnSchema] = {}
        for name in table.columns:
            t = types.get(name) or infer_pheno_types(table[[name]])[name]
            col = table[name]
            if t == PhenoType.BINARY:
                cols[name] = ColumnSchema("binary")
            elif t == PhenoType.CATEGORICAL:
                levels = sorted(col.dropna().astype(str).unique())
                if levels:
                    cols[name] = ColumnSchema("levels", levels=tuple(levels))
            else:
                x = pd.to_numeric(col, errors="coerce").to_numpy(np.float64)
                x = x[np.isfinite(x)]
                if len(x) == 0:
                    continue
                uniq = np.unique(x)
                integer = bool(np.all(uniq == np.round(uniq)))
                if len(uniq) <= max_values:
                    cols[name] = ColumnSchema(
                        "values", values=tuple(uniq.tolist()), integer=integer
                    )
                else:
                    cols[name] = _quantile_bins(x, n_bins, shape_points, integer=integer)
        for name, spec in cols.items():
            counts = np.bincount(_encode_column(table[name], spec), minlength=spec.n_categories)
            prior = (counts + 0.5) / (counts.sum() + 0.5 * spec.n_categories)
            cols[name] = replace(spec, prior=tuple(prior.tolist()))
        return cls(cols, source, MissingPatterns.of(table), public_nestings(table))

    @classmethod
    def from_ranges(
        cls, ranges: Mapping[str, tuple[float, float]], *, n_bins: int = 20
    ) -> PhenoSchema:
        """Schema from declared ``(low, high)`` ranges: equal-width bins."""
        cols = {}
        for name, (lo, hi) in ranges.items():
            if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
                raise ConfigError(f"declared range of {name!r} must be finite with low < high")
            cols[name] = ColumnSchema("bins", edges=tuple(np.linspace(lo, hi, n_bins + 1).tolist()))
        return cls(cols, "declared ranges")

    def merged(self, other: PhenoSchema) -> PhenoSchema:
        """This schema with ``other``'s columns added (``other`` wins on conflicts; the
        missingness patterns are ``other``'s if it has them, else this schema's without the
        columns ``other`` redefines; so are the nestings, with ``other``'s added)."""
        if other.missing is not None:
            missing: MissingPatterns | None = other.missing
        else:
            missing = None if self.missing is None else self.missing.without(other.columns)
        return PhenoSchema(
            {**self.columns, **other.columns},
            f"{self.source} + {other.source}",
            missing,
            {**without_nestings(self.nested, other.columns), **other.nested},
        )


@functools.lru_cache(maxsize=4)
def cfw_schema(n_bins: int = 20) -> PhenoSchema:
    """The public schema of the CFW phenotype table (Parker et al. 2016, Dryad, CC0), from
    the copy shipped with dpgenome: public information, free of privacy cost."""
    raw = importlib.resources.files("dpgenome").joinpath("data/pheno.csv.gz").read_bytes()
    import io as _io

    table = pd.read_csv(_io.BytesIO(gzip.decompress(raw)))
    table = table.drop(columns=[c for c in ("id", "discard", "mixup") if c in table])
    types = infer_pheno_types(table, {"abBMD": PhenoType.BINARY, "SW16": PhenoType.BINARY})
    return PhenoSchema.from_public_table(table, types, n_bins=n_bins, source="public CFW table")


def shape_grid(n: int, points: int) -> np.ndarray:
    """Probabilities at which a column's shape is kept: ``points`` even steps, plus steps
    halving from ``1 / points`` towards each tail down to ``1 / n`` (``n`` observed values),
    so that no interpolated segment in a tail spans much more than one observation."""
    if points < 1:
        return np.array([0.0, 1.0])
    tail = 1.0 / points * 0.5 ** np.arange(1, 64)
    tail = tail[tail >= 1.0 / max(n, 1)]
    return np.unique(np.concatenate([np.linspace(0.0, 1.0, points + 1), tail, 1.0 - tail]))


def _quantile_bins(
    x: np.ndarray, n_bins: int, shape_points: int, *, integer: bool = False, source: str = "public"
) -> ColumnSchema:
    """Bins at the quantiles of the observed values ``x`` (at least one), with their shape."""
    edges = np.unique(np.quantile(x, np.linspace(0, 1, n_bins + 1)))
    if len(edges) < 2:
        edges = np.array([edges[0] - 0.5, edges[0] + 0.5])
    probs = shape_grid(len(x), shape_points)
    return ColumnSchema(
        "bins",
        edges=tuple(edges.tolist()),
        integer=integer,
        source=source,
        quantiles=tuple(np.quantile(x, probs).tolist()),
        probabilities=tuple(probs.tolist()),
    )


def rebuilt_columns(columns: Sequence[str], schema: PhenoSchema) -> dict[str, str]:
    """Columns rebuilt from a parent column after sampling rather than modelled, each with
    its parent: one-hot copies (:func:`derived_columns`) and columns nested in another in the
    public table (cages in rounds, :mod:`dpgenome.nesting`). Names and the public schema only."""
    out = {c: parent for c, (parent, _level) in derived_columns(columns).items()}
    for c, nesting in nested_in(columns, schema.nested).items():
        if c not in out and nesting.parent not in out:
            out[c] = nesting.parent
    return out


def group_columns(
    columns: Sequence[str],
    context: Sequence[str] = (),
    *,
    max_batch_columns: int = 12,
) -> list[list[str]]:
    """Batches of modelled columns from their names only (public schema knowledge).

    The first batch is the context: ``context`` (analysis phenotype and covariates, always
    included) then the design group, up to ``max_batch_columns`` (``context`` itself may
    exceed it); the other groups follow :data:`GROUP_PATTERNS`, chunked in name order.
    """
    if max_batch_columns < 1:
        raise ConfigError(f"max_batch_columns must be >= 1, got {max_batch_columns}")
    groups: dict[str, list[str]] = {}
    for name in columns:
        if name in context:
            continue
        label = next((g for g, pattern in GROUP_PATTERNS if re.fullmatch(pattern, name)), "other")
        groups.setdefault(label, []).append(name)
    head = list(dict.fromkeys(context))
    design = sorted(groups.pop("design", []))
    room = max(0, max_batch_columns - len(head))
    head += design[:room]
    rest = design[room:]
    batches = [head] if head else []
    for cols in [rest, *[sorted(v) for v in groups.values()]]:
        for i in range(0, len(cols), max_batch_columns):
            batches.append(cols[i : i + max_batch_columns])
    return [b for b in batches if b]


# ---------------------------------------------------------------------------- DP bins


#: probability that the DP range step keeps a cell no member is in (:func:`dp_bins`)
RANGE_FALSE_CELL = 1e-3
#: cell sums the DP range step tries in turn, the finest first (:func:`dp_bins`)
RANGE_WIDTHS = (1, 2, 4, 8, 16)
#: the finest of them whose cells left hold this share of the most any width keeps is used
RANGE_KEEP = 0.5
#: the range when nothing passes the range test (too few members for the noise): a
#: data-independent default that knows nothing of the column
RANGE_UNKNOWN = (-1.0, 1.0)
#: the source of DP bins that found no range: the column is sampled missing
NO_RANGE = "dp: no range found"
#: the range then grows over each next block whose noisy sum is at least this many noise sds:
#: the blocks kept hold the mass far above the noise, and a column's tails lie beyond them
#: (without it, a normal column at 240 members and noise sd 10 kept 0.84 of its values in
#: the range, 0.59 in the worst of 40 draws; with it 0.97 and 0.85. One sd grew the range
#: into empty blocks more often, which cost the real CFW columns' means more: stop 36)
RANGE_GROW = 2.0
#: equal bins of the DP quantile step's range (:func:`dp_bins`): fewer bins, less noise in
#: the cumulative sum (40 against 100: a model's uniform start on those bins gave synthetic
#: sds off by a factor 1.08 against 1.11 over the first 20 CFW columns, bins sigma 7.3)
FINE_BINS = 40
#: total-variation penalty of the DP quantile step's denoising, in noise sds (:func:`dp_bins`)
FINE_TV_PENALTY = 4.0


def piecewise_constant_fit(y: np.ndarray, penalty: float) -> np.ndarray:
    """``y`` as runs of equal values: the runs of its 1-D total-variation denoising
    (``argmin_x 0.5 ||x - y||^2 + penalty * sum |x[i+1] - x[i]|``, solved exactly through its
    dual, ``x = y - D^T z`` for the ``z`` in ``[-penalty, penalty]`` minimising
    ``||y - D^T z||``, ``D`` the first-difference matrix: a box-constrained least-squares
    problem), each run then set to the mean of ``y`` over it (the relaxed fit: the
    denoising alone lowers every peak and raises every trough by about ``2 penalty / run
    length``, which put 5% of a model's uniform start into an empty stretch between two
    modes, against 1.2% relaxed). Keeps the sum of ``y``; a stretch of pure noise becomes
    one run near zero."""
    y = np.asarray(y, dtype=np.float64)
    n = len(y)
    if n < 2 or penalty <= 0:
        return y.copy()
    dt = np.diff(np.eye(n), axis=0).T  # (n, n - 1): D^T
    fit = y - dt @ lsq_linear(dt, y, bounds=(-penalty, penalty)).x
    steps = np.abs(np.diff(fit)) > 1e-7 * max(1.0, float(np.abs(fit).max()))  # solver's tolerance
    starts = np.r_[0, np.flatnonzero(steps) + 1]
    lengths = np.diff(np.r_[starts, n])
    return np.repeat(np.add.reduceat(y, starts) / lengths, lengths)


def dp_bins(
    x: np.ndarray,
    *,
    n_bins: int,
    noise_multiplier: float,
    noise: Noise,
) -> ColumnSchema:
    """Bins of one continuous column by two Gaussian histograms (each individual adds 1 to
    one bin of each: L2 sensitivity 1 per histogram; missing values add nothing).

    1. Range: counts on the data-independent grid ``asinh(x)`` in ``[-20, 20]`` step 0.25
       (160 cells), noise ``N(0, sigma^2)``; cells below ``sigma * z`` are dropped, where
       ``z`` makes a cell without members pass with probability ``RANGE_FALSE_CELL / 160 /
       len(RANGE_WIDTHS)``. The same test runs on sums of 2, 4, 8, 16 adjacent cells (noise
       ``sigma sqrt(k)``, signal ``k`` times a cell's), and the finest width whose blocks
       left hold ``RANGE_KEEP`` of the largest mass left at any width gives the range: a
       sparse column, whose single cells mostly fail, is seen at a coarser range rather than
       narrowly or not at all. A false cell or block anywhere has probability at most
       ``RANGE_FALSE_CELL``. From the first to the last block kept, the range then grows
       outwards over each next block whose noisy sum reaches ``RANGE_GROW`` noise sds (a
       column's tails, too thin for the strict test; an empty block passes with probability
       0.023).
    2. Quantiles: counts on ``FINE_BINS`` equal bins of ``[lo, hi]`` (values clamped), noise;
       the noisy counts as runs of equal values (:func:`piecewise_constant_fit`, penalty
       ``FINE_TV_PENALTY`` noise sds), negatives set to zero, their cumulative sum
       normalised is a DP distribution function; ``n_bins`` edges at its quantiles (linear
       interpolation). It is also the bins' shape (:attr:`ColumnSchema.quantiles`): a value
       decoded from a bin follows it within the bin.

    Stop 36 added the growth and the runs (the quantile step took an isotonic regression of
    the noisy cumulative sum). ``bench/bins.py``, six simulated shapes at 768 members and
    noise sds 5-20, each value redrawn within its own bin (a model that learnt the bins'
    shares): the synthetic sd's mean |log ratio| 0.01-0.35 before, 0.01-0.26 after (a
    lognormal column at noise sd 20: 0.55 to 0.26; 240 members: 0.02-0.66 to 0.01-0.35 at
    noise sds 5-10). On the public CFW table with all 96 continuous columns DP-binned
    (``bench/phenotypes.py --dp-bins 999``, two seeds, the model trained): sd error 0.22 to
    0.15 at epsilon 3 and 0.09 to 0.08 at epsilon 8, mean error 0.09 to 0.10 and 0.07 to
    0.07 sds (docs/tuning-history.md, stop 36).

    Before stop 25: a ``3 sigma`` threshold on 500 cells of step 0.1, which kept a noise
    cell in about half the histograms, and the 1% and 99% quantiles of what was left; then
    100 fine bins with negative noisy counts zeroed. With ~1,000 members and many DP-binned
    columns such a noise cell held a tenth of the total and dragged ``lo`` or ``hi`` to
    ``sinh(25) ~ 4e10`` (37 of 96 CFW columns at a phenotype share of epsilon 2.5), and the
    zeroed negatives left the empty fine bins a positive mass (``sigma / sqrt(2 pi)`` each),
    which pulled the edges into empty space: under a model's uniform start the synthetic sd
    came out twice the real one (docs/tuning-history.md, stop 25).

    When nothing passes the range test at any width (too few members for the noise), the
    range is ``[-1, 1]``, which knows nothing of the column: :func:`fit_phenotypes` warns,
    and the column is sampled missing.

    Post-processing only after the noise: the output is DP with respect to ``x``.
    """
    obs = x[np.isfinite(x)]
    sigma = noise_multiplier
    grid = np.arange(-20.0, 20.0 + 1e-9, 0.25)
    cells = len(grid) - 1
    t = np.clip(np.arcsinh(obs), grid[0], grid[-1] - 1e-9)
    counts = np.bincount(np.searchsorted(grid, t, side="right") - 1, minlength=cells)
    noisy = noise.gaussian(counts[:cells], sd=sigma, sensitivity=1.0)
    # (kept noisy mass, width, the noisy block sums, the blocks kept)
    found: list[tuple[float, int, np.ndarray, np.ndarray]] = []
    for width in RANGE_WIDTHS:  # post-processing of the one noisy histogram
        blocks = noisy.reshape(-1, width).sum(axis=1)  # noise sd sigma * sqrt(width)
        z = norm.isf(RANGE_FALSE_CELL / len(RANGE_WIDTHS) / len(blocks))
        kept = np.flatnonzero(blocks >= sigma * math.sqrt(width) * z)
        if len(kept):
            found.append((float(blocks[kept].sum()), width, blocks, kept))
    lo, hi = RANGE_UNKNOWN
    source = "dp" if found else NO_RANGE  # nothing above the noise: nothing to draw
    if found:
        most = max(f[0] for f in found)
        _, width, blocks, kept = next(f for f in found if f[0] >= RANGE_KEEP * most)  # finest
        grows = blocks >= sigma * math.sqrt(width) * RANGE_GROW
        first, last = int(kept[0]), int(kept[-1])
        while first > 0 and grows[first - 1]:
            first -= 1
        while last < len(blocks) - 1 and grows[last + 1]:
            last += 1
        lo = float(np.sinh(grid[first * width]))
        hi = float(np.sinh(grid[(last + 1) * width]))
    fine = np.linspace(lo, hi, FINE_BINS + 1)
    idx = np.clip(np.searchsorted(fine, obs, side="right") - 1, 0, FINE_BINS - 1)
    noisy2 = noise.gaussian(np.bincount(idx, minlength=FINE_BINS), sd=sigma, sensitivity=1.0)
    mass = np.maximum(piecewise_constant_fit(noisy2, FINE_TV_PENALTY * sigma), 0.0)
    cum = np.cumsum(mass)
    if cum[-1] <= 0:
        return ColumnSchema(
            "bins", edges=tuple(np.linspace(lo, hi, n_bins + 1).tolist()), source=source
        )
    cum2 = np.concatenate([[0.0], cum / cum[-1]])
    edges = np.interp(np.linspace(0, 1, n_bins + 1), cum2, fine)
    edges[0], edges[-1] = lo, hi
    edges = np.unique(edges)  # lo < hi: at least two
    return ColumnSchema(
        "bins",
        edges=tuple(edges.tolist()),
        source=source,
        quantiles=tuple(fine.tolist()),
        probabilities=tuple(cum2.tolist()),
    )


# ---------------------------------------------------------------------------- encoding


@dataclass(frozen=True)
class Encoding:
    """Columns, their schema, their batch layout: everything public about the model."""

    batches: tuple[tuple[str, ...], ...]
    schema: Mapping[str, ColumnSchema]
    types: Mapping[str, PhenoType]
    derived: Mapping[str, tuple[str, object]]
    columns: tuple[str, ...]  # output column order (as in the input table)
    #: columns rebuilt from their parent's sampled level and a public table (cages in rounds)
    nested: Mapping[str, Nesting] = field(default_factory=dict)

    def parent_of(self, column: str) -> str:
        """The modelled column ``column`` is rebuilt from, or ``column`` if it is modelled."""
        if column in self.derived:
            return str(self.derived[column][0])
        return self.nested[column].parent if column in self.nested else column

    @property
    def max_columns(self) -> int:
        return max(len(b) for b in self.batches)

    @property
    def max_categories(self) -> int:
        return max(self.schema[c].n_categories for b in self.batches for c in b)

    def encode(self, table: pd.DataFrame) -> np.ndarray:
        """Category codes ``[n, n_batches, max_columns]`` (-1 = padding)."""
        n = len(table)
        out = np.full((n, len(self.batches), self.max_columns), -1, dtype=np.int64)
        for b, cols in enumerate(self.batches):
            for j, c in enumerate(cols):
                out[:, b, j] = _encode_column(table[c], self.schema[c])
        return out

    def missing(self, table: pd.DataFrame, columns: Sequence[str]) -> np.ndarray:
        """(n, len(columns)) bool: where each column's code is "missing" (a missing value,
        or one the schema cannot hold: :func:`encoded_as_missing`)."""
        out = np.zeros((len(table), len(columns)), dtype=bool)
        for j, c in enumerate(columns):
            out[:, j] = _encode_column(table[c], self.schema[c]) == self.schema[c].n_categories - 1
        return out

    def decode(self, codes: np.ndarray, rng: np.random.Generator) -> pd.DataFrame:
        n = codes.shape[0]
        data: dict[str, object] = {}
        for b, cols in enumerate(self.batches):
            for j, c in enumerate(cols):
                data[c] = _decode_column(codes[:, b, j], self.schema[c], rng)
        for name, (parent, level) in self.derived.items():
            p = pd.Series(data[parent])
            hit = p.astype(str) == str(level) if isinstance(level, str) else p == level
            col = np.array(hit.to_numpy(dtype=np.float64), copy=True)
            col[p.isna().to_numpy()] = np.nan
            data[name] = col
        for name, nesting in self.nested.items():
            data[name] = nesting.draw(pd.Series(data[nesting.parent]), rng)
        return pd.DataFrame({c: data[c] for c in self.columns}, index=pd.RangeIndex(n))


def _encode_column(col: pd.Series, spec: ColumnSchema) -> np.ndarray:
    return _encode(col, spec)[0]


def _encode(col: pd.Series, spec: ColumnSchema) -> tuple[np.ndarray, np.ndarray]:
    """Category codes of ``col`` (the last one is "missing") and the mask of its observed
    values that the encoding turns into missing: a level outside ``spec.levels``, a value of
    a binary column other than 0 / 1, a value of a numeric column that is not a finite
    number. Numeric values beyond the bins fall into the outer bins (not lost)."""
    missing = spec.n_categories - 1
    observed = col.notna().to_numpy(dtype=bool)
    if spec.kind == "levels":
        lookup = {v: i for i, v in enumerate(spec.levels)}
        codes = col.astype(object).map(
            lambda v: lookup.get(str(v), missing) if pd.notna(v) else missing
        )
        out = codes.to_numpy(dtype=np.int64)
        return out, observed & (out == missing)
    x = pd.to_numeric(col, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    ok = np.isfinite(x)
    out = np.full(len(x), missing, dtype=np.int64)
    if spec.kind == "binary":
        out[ok & (x == 0)] = 0
        out[ok & (x == 1)] = 1  # other values cannot be binary: treated as missing
    elif spec.kind == "values":
        vals = np.asarray(spec.values)
        nearest = np.abs(x[ok, None] - vals[None, :]).argmin(axis=1)
        out[ok] = nearest
    else:
        inner = np.asarray(spec.edges[1:-1])
        out[ok] = np.searchsorted(inner, x[ok], side="right")
    return out, observed & (out == missing)


#: why an observed value becomes missing when encoded, by the kind of its column's schema:
#: (the reason, as ``inspect --json`` names it; the phrase of messages; what to do)
ENCODED_AS_MISSING: Mapping[ColumnKind, tuple[str, str, str]] = {
    "levels": (
        "level not in the schema",
        "have a level not in the schema",
        "declare the column's levels in a --pheno-schema file or recode the values",
    ),
    "binary": (
        "not 0 or 1",
        "are not 0 or 1",
        "recode the column to 0 / 1 or declare its type (and levels) in a --pheno-schema file",
    ),
    "values": ("not a finite number", "are not finite numbers", "recode the values"),
    "bins": ("not a finite number", "are not finite numbers", "recode the values"),
}


@dataclass(frozen=True)
class EncodedMissing:
    """Observed values of one phenotype column that the encoding turns into missing (the
    synthesizer then trains on them as missing): how many and why, never a value or a
    sample (:func:`encoded_as_missing`). ``refused``: the cohort's type of the column is not
    its schema's (a 1/2-coded column of the CFW schema's binaries is continuous by its values),
    so :func:`fit_phenotypes` refuses the column rather than train on it. ``typed_by``: what
    fixes the column's type, as :func:`dpgenome.phenoschema.type_sources` names it."""

    column: str
    count: int
    kind: ColumnKind
    refused: bool = False
    typed_by: str = ""

    @property
    def reason(self) -> str:
        return ENCODED_AS_MISSING[self.kind][0]

    @property
    def remedy(self) -> str:
        return ENCODED_AS_MISSING[self.kind][2]

    def describe(self) -> str:
        """The count and the reason, for messages (no value, no sample)."""
        typed = f" (type from {self.typed_by})" if self.typed_by else ""
        return f"{self.count} observed value(s) {ENCODED_AS_MISSING[self.kind][1]}{typed}"

    def to_dict(self) -> dict[str, object]:
        return {
            "name": self.column,
            "count": self.count,
            "reason": self.reason,
            "refused": self.refused,
            "typed_by": self.typed_by,
        }


def encoded_as_missing(
    table: pd.DataFrame,
    schema: Encoding | Mapping[str, ColumnSchema],
    types: Mapping[str, PhenoType] | None = None,
) -> dict[str, EncodedMissing]:
    """Per column of ``table`` that ``schema`` encodes (an :class:`Encoding`, or column specs
    such as :func:`public_column_specs`), the observed values its encoding turns into
    missing, when there are any: counts only (:func:`_encode`, the encoding itself).
    ``types`` (the cohort's): mark the columns :func:`fit_phenotypes` refuses instead."""
    specs = schema.schema if isinstance(schema, Encoding) else schema
    out = {}
    for c, spec in specs.items():
        if c not in table.columns:
            continue
        k = int(_encode(table[c], spec)[1].sum())
        if k:
            refused = types is not None and type_conflict(spec, types.get(c))
            out[c] = EncodedMissing(c, k, spec.kind, refused)
    return out


def type_conflict(spec: ColumnSchema, ptype: PhenoType | None) -> bool:
    """The cohort's type of a column is not its schema entry's (:func:`fit_phenotypes`
    refuses the column)."""
    return (ptype == PhenoType.CATEGORICAL) != (spec.kind == "levels") or (
        spec.kind == "binary" and ptype not in (PhenoType.BINARY, None)
    )


def _decode_column(codes: np.ndarray, spec: ColumnSchema, rng: np.random.Generator) -> np.ndarray:
    missing = codes == spec.n_categories - 1
    safe = np.where(missing, 0, codes)
    if spec.kind == "levels":
        out = np.asarray(spec.levels, dtype=object)[safe]
        out[missing] = None
        return out
    if spec.kind == "binary":
        x = safe.astype(np.float64)
    elif spec.kind == "values":
        x = np.asarray(spec.values, dtype=np.float64)[safe]
    elif spec.source == NO_RANGE:
        return np.full(len(codes), np.nan)
    else:
        edges = np.asarray(spec.edges)
        u = rng.random(len(codes))
        x = _within_bins(edges, safe, spec.quantiles, spec.probabilities, u)
        if spec.integer:  # rounded, kept inside its bin when the bin holds an integer
            top = safe == len(edges) - 2
            lo = np.ceil(edges[safe])
            hi = np.where(top, np.floor(edges[safe + 1]), np.ceil(edges[safe + 1]) - 1)
            x = np.where(hi >= lo, np.clip(np.round(x), lo, hi), np.round(x))
    x[missing] = np.nan
    return x


def _within_bins(
    edges: np.ndarray,
    bins: np.ndarray,
    quantiles: Sequence[float],
    probabilities: Sequence[float],
    u: np.ndarray,
) -> np.ndarray:
    """Values in ``[edges[b], edges[b + 1]]`` for bin indices ``bins`` from uniforms ``u``:
    through the piecewise-linear quantile function (``quantiles`` at ``probabilities``)
    restricted to the bin (the probabilities ``p`` with ``lo <= Q(p) < hi``), or uniformly
    across the bin when there is no shape or the shape puts no mass in it."""
    lo, hi = edges[bins], edges[bins + 1]
    uniform = lo + u * (hi - lo)
    q = np.asarray(quantiles, dtype=np.float64)
    if len(q) < 2:
        return uniform
    p = np.asarray(probabilities, dtype=np.float64)

    def cdf_left(v: np.ndarray) -> np.ndarray:  # inf {p : Q(p) >= v}
        j = np.searchsorted(q, v, side="left")  # q[j - 1] < v <= q[j] inside the range
        i = np.clip(j, 1, len(q) - 1)
        with np.errstate(invalid="ignore", divide="ignore"):
            t = np.clip((v - q[i - 1]) / (q[i] - q[i - 1]), 0.0, 1.0)
        inside = p[i - 1] + t * (p[i] - p[i - 1])
        return np.where(j == 0, 0.0, np.where(j == len(q), 1.0, inside))

    f_lo = cdf_left(lo)
    # the top bin is closed: it takes the distribution's right end
    f_hi = np.where((bins == len(edges) - 2) & (hi >= q[-1]), 1.0, cdf_left(hi))
    shaped = np.clip(np.interp(f_lo + u * (f_hi - f_lo), p, q), lo, hi)
    return np.where(f_hi > f_lo, shaped, uniform)


# ---------------------------------------------------------------------------- the model


class GroupedMaskedLinear(nn.Module):
    """``B`` masked linear maps at once: ``y[:, b] = x[:, b] @ (W[b] * M[b]) + bias[b]``.

    Input ``[n, B, d_in]`` (or ``[n, d_in]``, shared by all groups), output ``[n, B, d_out]``.
    Per-sample gradients in closed form (registered with Opacus below)."""

    def __init__(
        self, mask: torch.Tensor, *, bias: bool = True, shared_input: bool = False
    ) -> None:
        super().__init__()
        groups, d_in, d_out = mask.shape
        self.shared_input = shared_input
        # a plain attribute, not a buffer: Opacus refuses trainable layers with buffers
        self.mask = mask.to(torch.float32)
        fan_in = mask.sum(dim=1).clamp(min=1.0)  # [B, d_out]
        w = torch.randn(groups, d_in, d_out) / fan_in.sqrt()[:, None, :]
        self.weight = nn.Parameter(w * self.mask)
        self.bias = nn.Parameter(torch.zeros(groups, d_out)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight * self.mask
        y = (
            torch.einsum("ni,bio->nbo", x, w)
            if self.shared_input
            else torch.einsum("nbi,bio->nbo", x, w)
        )
        return y + self.bias if self.bias is not None else y


@register_grad_sampler(GroupedMaskedLinear)
def _grouped_masked_linear_grad_sample(
    layer: GroupedMaskedLinear, activations: list[torch.Tensor], backprops: torch.Tensor
) -> dict[nn.Parameter, torch.Tensor]:
    x = activations[0]
    if layer.shared_input:
        gw = torch.einsum("ni,nbo->nbio", x, backprops)
    else:
        gw = torch.einsum("nbi,nbo->nbio", x, backprops)
    out = {layer.weight: gw * layer.mask}
    if layer.bias is not None:
        out[layer.bias] = backprops
    return out


@register_norm_sampler(GroupedMaskedLinear)
def _grouped_masked_linear_norm_sample(
    layer: GroupedMaskedLinear, activations: list[torch.Tensor], backprops: torch.Tensor
) -> dict[nn.Parameter, torch.Tensor]:
    """Per-sample gradient norms without materialising the gradients (ghost clipping, Li et
    al. 2022): ``||(x_b g_b^T) * M_b||^2 = (x_b^2)^T M_b (g_b^2)`` for a 0/1 mask."""
    x2 = activations[0] ** 2
    g2 = backprops**2
    if layer.shared_input:
        xm = torch.einsum("ni,bio->nbo", x2, layer.mask)
    else:
        xm = torch.einsum("nbi,bio->nbo", x2, layer.mask)
    out = {layer.weight: (xm * g2).sum(dim=(1, 2)).clamp(min=0).sqrt()}
    if layer.bias is not None:
        out[layer.bias] = backprops.reshape(len(backprops), -1).norm(dim=1)
    return out


class CategoryBias(nn.Module):
    """Adds a learnt bias ``[B, C, K]`` to logits ``[n, B, C, K]`` (the marginal shape of
    every column); closed-form per-sample gradients (the backprops) registered below."""

    def __init__(self, groups: int, columns: int, categories: int) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(groups, columns, categories))

    def forward(self, logits: torch.Tensor) -> torch.Tensor:
        return logits + self.bias


@register_grad_sampler(CategoryBias)
def _category_bias_grad_sample(
    layer: CategoryBias, activations: list[torch.Tensor], backprops: torch.Tensor
) -> dict[nn.Parameter, torch.Tensor]:
    return {layer.bias: backprops}


@register_norm_sampler(CategoryBias)
def _category_bias_norm_sample(
    layer: CategoryBias, activations: list[torch.Tensor], backprops: torch.Tensor
) -> dict[nn.Parameter, torch.Tensor]:
    return {layer.bias: backprops.reshape(len(backprops), -1).norm(dim=1)}


@dataclass(frozen=True)
class Layout:
    """Fixed (public) tensors of the grouped model: input features and output bases.

    Each column's input features are ``[z, missing]`` for ordinal columns (bins, values,
    binary; ``z`` the category rank scaled to [-1, 1]) or a one-hot for categorical ones.
    Its conditional logits are ``bias[k] + sum_r u_r(h) V[r, k]`` with the basis ``V`` =
    ``(z_k, z_k^2, 1{k = missing})`` for ordinal columns -- an exponential tilt of the
    learnt marginal that moves its mean, spread and missingness with the inputs -- and the
    identity for categorical ones. This keeps the number of parameters, hence the DP noise
    per step, small."""

    sizes: tuple[int, ...]  # columns per batch
    n_cols: int  # max columns per batch
    n_cat: int  # max categories (incl. missing)
    n_feat: int  # max input features per column
    n_basis: int  # max basis functions per column
    features: torch.Tensor  # [B, C, K, F]: feature vector of each category
    feat_valid: torch.Tensor  # [B, C, F]
    basis: torch.Tensor  # [B, C, R, K]
    basis_valid: torch.Tensor  # [B, C, R]
    logit_mask: torch.Tensor  # [B, C, K]: 0 real category, -1e9 padding
    prior_logits: torch.Tensor  # [B, C, K]: log public shares (0: none, or padding)

    @property
    def flat_index(self) -> torch.Tensor:
        """Positions of the real input features in the padded ``[B * C * F]`` vector."""
        return torch.nonzero(self.feat_valid.reshape(-1) > 0).reshape(-1)

    @property
    def flat_batch(self) -> torch.Tensor:
        """The batch of each real input feature."""
        return self.flat_index // (self.n_cols * self.n_feat)


def _layout(encoding: Encoding) -> Layout:
    specs = [[encoding.schema[c] for c in cols] for cols in encoding.batches]
    n_b, n_c = len(specs), max(len(s) for s in specs)
    n_k = max(sp.n_categories for s in specs for sp in s)
    n_f = max(sp.n_categories if sp.kind == "levels" else 2 for s in specs for sp in s)
    n_r = max(sp.n_categories if sp.kind == "levels" else 3 for s in specs for sp in s)
    feats = torch.zeros(n_b, n_c, n_k, n_f)
    fvalid = torch.zeros(n_b, n_c, n_f)
    basis = torch.zeros(n_b, n_c, n_r, n_k)
    bvalid = torch.zeros(n_b, n_c, n_r)
    lmask = torch.full((n_b, n_c, n_k), -1e9)
    prior = torch.zeros(n_b, n_c, n_k)
    for b, cols in enumerate(specs):
        for j, sp in enumerate(cols):
            k = sp.n_categories
            lmask[b, j, :k] = 0.0
            if len(sp.prior) == k:
                prior[b, j, :k] = torch.log(torch.tensor(sp.prior, dtype=torch.float32))
            if sp.kind == "levels":
                feats[b, j, torch.arange(k), torch.arange(k)] = 1.0
                fvalid[b, j, :k] = 1.0
                basis[b, j, torch.arange(k), torch.arange(k)] = 1.0
                bvalid[b, j, :k] = 1.0
                continue
            observed = k - 1
            z = torch.linspace(-1.0, 1.0, observed) if observed > 1 else torch.zeros(1)
            feats[b, j, :observed, 0] = z
            feats[b, j, observed, 1] = 1.0
            fvalid[b, j, :2] = 1.0
            basis[b, j, 0, :observed] = z
            basis[b, j, 1, :observed] = z**2 - (z**2).mean()
            basis[b, j, 2, observed] = 1.0
            bvalid[b, j, :3] = 1.0
    return Layout(
        tuple(len(s) for s in specs),
        n_c,
        n_k,
        n_f,
        n_r,
        feats,
        fvalid,
        basis,
        bvalid,
        lmask,
        prior,
    )


def _masks(layout: Layout, hidden: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """MADE masks per batch (Germain et al. 2015). Hidden unit ``h`` of a batch with ``k``
    columns has degree ``m = h mod k``: it sees the own columns at positions ``< m`` and
    feeds the outputs of columns at positions ``>= m``; so column ``p`` depends on columns
    ``< p`` of its batch and on every column of the batches before it (the context batch
    first), which makes the whole model autoregressive over batches."""
    n_b, n_c, n_f, n_r = len(layout.sizes), layout.n_cols, layout.n_feat, layout.n_basis
    m_in = torch.zeros(n_b, n_c * n_f, hidden)
    m_out = torch.zeros(n_b, hidden, n_c * n_r)
    pos_in = torch.arange(n_c).repeat_interleave(n_f)
    pos_out = torch.arange(n_c).repeat_interleave(n_r)
    for b, k in enumerate(layout.sizes):
        degree = torch.arange(hidden) % k
        fv = layout.feat_valid[b].reshape(-1) > 0
        bv = layout.basis_valid[b].reshape(-1) > 0
        m_in[b] = ((pos_in[:, None] < degree[None, :]) & fv[:, None]).float()
        m_out[b] = ((degree[:, None] <= pos_out[None, :]) & bv[None, :]).float()
    # batch b sees every real feature of the batches before it (block-autoregressive)
    src = layout.flat_batch
    ctx = (src[None, :] < torch.arange(n_b)[:, None]).float()[:, :, None].expand(-1, -1, hidden)
    return m_in, ctx.contiguous(), m_out


class GroupedMade(nn.Module):
    """All batches' MADEs as one module of grouped tensors; each batch also sees the batches
    before it (batch 0, the context, first). ``features(codes [n, B, C])`` (-1 = padding)
    gives the inputs; ``forward(features) -> logits [n, B, C, K]``."""

    def __init__(self, layout: Layout, hidden: int, *, public_prior: bool = False) -> None:
        super().__init__()
        self.layout = layout
        m_in, m_ctx, m_out = _masks(layout, hidden)
        self.flat_index = layout.flat_index
        self.own = GroupedMaskedLinear(m_in)
        self.ctx = GroupedMaskedLinear(m_ctx, bias=False, shared_input=True)
        self.out = GroupedMaskedLinear(m_out, bias=False)
        self.marginal = CategoryBias(len(layout.sizes), layout.n_cols, layout.n_cat)
        if public_prior:  # start from the public marginals (no privacy cost)
            with torch.no_grad():
                self.marginal.bias.copy_(layout.prior_logits)

    def features(self, codes: torch.Tensor) -> torch.Tensor:
        n_b, n_c = codes.shape[1], codes.shape[2]
        b_idx = torch.arange(n_b)[None, :, None]
        c_idx = torch.arange(n_c)[None, None, :]
        f = self.layout.features[b_idx, c_idx, codes.clamp(min=0)]  # [n, B, C, F]
        f = f * (codes >= 0).unsqueeze(-1).float()
        return f.reshape(codes.shape[0], n_b, -1)

    def batch_logits(self, feats: torch.Tensor, b: int) -> torch.Tensor:
        """Logits ``[n, C, K]`` of batch ``b`` only (for sampling; same values as
        ``forward(feats)[:, b]``)."""
        lay = self.layout
        flat = feats.reshape(len(feats), -1)[:, self.flat_index]
        pre = feats[:, b] @ (self.own.weight[b] * self.own.mask[b])
        pre = pre + flat @ (self.ctx.weight[b] * self.ctx.mask[b])
        if self.own.bias is not None:
            pre = pre + self.own.bias[b]
        u = torch.tanh(pre) @ (self.out.weight[b] * self.out.mask[b])
        tilt = torch.einsum("ncr,crk->nck", u.reshape(-1, lay.n_cols, lay.n_basis), lay.basis[b])
        return tilt + self.marginal.bias[b] + lay.logit_mask[b]

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        lay = self.layout
        flat = feats.reshape(len(feats), -1)[:, self.flat_index]
        h = torch.tanh(self.own(feats) + self.ctx(flat))
        u = self.out(h).reshape(-1, len(lay.sizes), lay.n_cols, lay.n_basis)
        tilt = torch.einsum("nbcr,bcrk->nbck", u, lay.basis)
        return self.marginal(tilt) + lay.logit_mask


# ---------------------------------------------------------------------------- config and fit


@dataclass(frozen=True)
class PhenotypeConfig:
    """The phenotype synthesizer's hyperparameters (chosen on the public CFW table).

    ``expected_batch_size`` fixes the Poisson sample rate ``q = min(1, expected_batch_size
    / n)`` (``n`` = number of members, treated as public as in ``delta = 1/n^1.1``).
    ``schema=None`` uses the public CFW schema (:func:`cfw_schema`) for the columns it knows;
    other continuous columns get DP bins (:func:`dp_bins`).
    """

    seed: int = 0
    secure_mode: bool = False
    n_bins: int = 20
    max_batch_columns: int = 12
    hidden: int = 16
    steps: int = 300
    expected_batch_size: int = 256
    lr: float = 0.02
    max_grad_norm: float = 1.0
    #: weight of the DP-bins Gaussian step relative to the common noise scale (if needed).
    #: 0.5 (was 0.2; ``bench/phenotypes.py --dp-bins N --bins-weight``, phenotype share
    #: epsilon 2.5): with 5 DP-binned CFW columns their synthetic sd's mean |log ratio|
    #: 0.31-0.37 -> 0.22-0.24 for a DP-SGD noise multiplier 5.92 -> 6.25 (two seeds; weight
    #: 1: 0.14-0.17, 7.34); with
    #: all 96, 0.36-0.39 -> 0.25-0.27 for 7.0 -> 11.4 (three seeds), and 2.32 -> 0.81 at
    #: share 1.0 (docs/tuning-history.md, stop 25)
    bins_weight: float = 0.5
    #: which columns are missing together: one Gaussian histogram over the public table's
    #: missingness patterns (:mod:`dpgenome.missingness`), at this weight of the common
    #: noise scale; ``missing_patterns=False``: each column's missingness is the model's own
    missing_patterns: bool = True
    missing_weight: float = 1.0
    #: the model also takes each member's pattern as its first input, and samples with the
    #: drawn one (:data:`PATTERN_COLUMN`), so that values follow which assays a row has
    #: (round against the columns' missingness, mean Cramer's V: members 0.80, 0.77 with it,
    #: 0.17 without, no formal privacy). Off: under DP it buys nothing measurable (0.16-0.18
    #: either way) for twice the fit time, and it cost the GWAS recall -- in ten paired
    #: epsilon-3 syntheses of bench/synth.py cohort 1 0.730 -> 0.661, and without formal
    #: privacy 0.97 -> 0.82-0.90 (two runs), below the issue's 0.92 (docs/tuning-history.md,
    #: stop 50): the analysis phenotype then follows the pattern's weights, not the genotypes
    pattern_input: bool = False
    #: columns nested in another in the public schema (cages in rounds) are rebuilt from
    #: their sampled parent (:mod:`dpgenome.nesting`); False: modelled like any column
    #: (``cageid`` binned as a number: 16-17% made-up cages, half the cages of one mouse,
    #: cages across rounds; docs/tuning-history.md, stop 51)
    nest_columns: bool = True
    #: start each column's marginal from the public schema's category shares (its missing
    #: share included) rather than uniform: public information, no privacy cost
    public_prior: bool = True
    #: per-sample gradient norms by ghost clipping (fast) or Opacus hooks (materialised)
    grad_sample_mode: Literal["ghost", "hooks"] = "ghost"
    schema: PhenoSchema | None = None
    #: a ``--pheno-schema`` file's declarations (:mod:`dpgenome.phenoschema`): they replace
    #: the schema's entries of the columns they name
    declared: DeclaredSchema | None = None

    def validate(self) -> PhenotypeConfig:
        checks = {
            "n_bins": self.n_bins >= 2,
            "max_batch_columns": self.max_batch_columns >= 1,
            "hidden": self.hidden >= 1,
            "steps": self.steps >= 1,
            "expected_batch_size": self.expected_batch_size >= 1,
            "lr": self.lr > 0,
            "max_grad_norm": self.max_grad_norm > 0 and math.isfinite(self.max_grad_norm),
            "bins_weight": self.bins_weight > 0,
            "missing_weight": self.missing_weight > 0 and math.isfinite(self.missing_weight),
            "grad_sample_mode": self.grad_sample_mode in ("ghost", "hooks"),
        }
        bad = [k for k, ok in checks.items() if not ok]
        if bad:
            raise ConfigError(f"invalid phenotype synthesizer setting(s): {', '.join(bad)}")
        return self

    def sample_rate(self, n: int) -> float:
        return min(1.0, self.expected_batch_size / max(n, 1))

    def resolved_schema(self) -> PhenoSchema:
        base = self.schema if self.schema is not None else cfw_schema(self.n_bins)
        resolved = base if self.declared is None else self.declared.resolved(base)
        return resolved if self.nest_columns else replace(resolved, nested={})


#: the brief's name for the same configuration
PhenoSynthConfig = PhenotypeConfig


def planned_dp_sgd(config: PhenotypeConfig, n: int, *, name: str = "phenotypes") -> PlannedDpSgd:
    """The DP-SGD mechanism of the phenotype synthesizer, fixed before reading data."""
    config.validate()
    return PlannedDpSgd(name, config.sample_rate(n), config.steps, 1.0, config.max_grad_norm)


def dp_binned_columns(
    columns: Sequence[str], types: Mapping[str, PhenoType], config: PhenotypeConfig
) -> list[str]:
    """Continuous columns that need DP bins (absent from the public schema); names only."""
    resolved = config.resolved_schema()
    schema = resolved.columns
    rebuilt = rebuilt_columns(columns, resolved)
    out = []
    for c in columns:
        if c in rebuilt or c in schema:
            continue
        t = types.get(c)
        if t == PhenoType.CATEGORICAL:
            raise ConfigError(
                f"categorical column {c!r} has no public level set in the schema "
                f"({config.resolved_schema().source}); declare its levels in a --pheno-schema "
                "file (dpgenome.phenoschema) or drop the column: a private level set cannot be "
                "released"
            )
        if t == PhenoType.CONTINUOUS:
            out.append(c)
    return out


def public_column_specs(
    columns: Sequence[str], types: Mapping[str, PhenoType], config: PhenotypeConfig
) -> dict[str, ColumnSchema]:
    """The public part of the encoding :func:`fit_phenotypes` trains on: each modelled
    column's entry of the resolved schema (the public CFW schema and a ``--pheno-schema``
    file's declarations), or 0 / 1 for a binary column the schema lacks. Left out: columns
    rebuilt from a parent (:func:`rebuilt_columns`: one-hot copies, cages) and continuous
    columns the schema lacks (their bins are fitted: :func:`dp_bins`). Names and the public
    schema only."""
    resolved = config.resolved_schema()
    schema = resolved.columns
    rebuilt = rebuilt_columns(columns, resolved)
    out = {}
    for c in columns:
        if c in rebuilt:
            continue
        if c in schema:
            out[c] = schema[c]
        elif types.get(c) in (PhenoType.BINARY, None):
            out[c] = ColumnSchema("binary")  # binary columns need no public information
    return out


def planned_bins(
    columns: Sequence[str],
    types: Mapping[str, PhenoType],
    config: PhenotypeConfig,
    *,
    name: str = "phenotype-bins",
) -> PlannedGaussian | None:
    """The Gaussian DP-bins step (two histograms per column), or None when the public schema
    covers every continuous column."""
    cols = dp_binned_columns(columns, types, config)
    if not cols:
        return None
    return planned_histogram(name, config.bins_weight, count=2 * len(cols))


def missingness_domain(
    columns: Sequence[str], config: PhenotypeConfig, complete: Sequence[str] = ()
) -> PatternDomain | None:
    """The public patterns the missingness release counts the members over
    (:func:`dpgenome.missingness.pattern_domain`), or None when there is none to release
    (``config.missing_patterns`` off, no public table, fewer than two patterns). It governs
    the modelled columns of the public table (not those rebuilt from a parent: a cage is
    missing where its round is), less ``complete`` (complete by a public rule:
    the analysis phenotype and covariates) and the columns a ``--pheno-schema`` file
    declares. Names and the public table only."""
    resolved = config.resolved_schema()
    public = resolved.missing
    if not config.missing_patterns or public is None:
        return None
    rebuilt = rebuilt_columns(columns, resolved)
    never = {rebuilt.get(c, c) for c in complete}
    governed = [c for c in columns if c not in rebuilt and c not in never]
    return pattern_domain(public, governed)


def planned_missingness(
    columns: Sequence[str],
    config: PhenotypeConfig,
    complete: Sequence[str] = (),
    *,
    name: str = "phenotype-missingness",
) -> PlannedGaussian | None:
    """The Gaussian missingness-pattern histogram (:func:`missingness_domain`), or None
    when there is nothing to release."""
    if missingness_domain(columns, config, complete) is None:
        return None
    return planned_histogram(
        name,
        config.missing_weight,
        "missingness patterns: one histogram over the public table's patterns",
    )


@dataclass
class PhenoModel:
    """A fitted phenotype synthesizer: public encoding + trained grouped MADE."""

    encoding: Encoding
    net: GroupedMade
    #: aggregates only: losses, bins provenance, privacy parameters
    details: dict[str, object] = field(default_factory=dict)
    #: which columns are missing together (:mod:`dpgenome.missingness`); None: each
    #: column's missingness is the model's own
    patterns: PatternRelease | None = None

    @torch.no_grad()
    def sample(
        self, n: int, seed: int | np.random.Generator, complete: Sequence[str] = ()
    ) -> pd.DataFrame:
        """``n`` fresh synthetic rows (same columns and types as the training table).

        Columns in ``complete`` are never missing: their "missing" category is dropped from
        every conditional (a one-hot copy's parent column instead). For columns the training
        table has complete by a public rule -- the analysis phenotype and covariates of an
        analysis subset -- the model's missing share is pure DP noise (4% of rows at epsilon
        10 on a 960-member cohort: rows the synthetic GWAS then could not test).

        With a pattern release (:attr:`patterns`) each row first draws its missingness
        pattern; the columns it governs are then missing exactly where it says (the other
        categories, or the missing one, dropped from their conditionals)."""
        if n < 0:
            raise ConfigError(f"cannot sample {n} rows")
        rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        g = torch.Generator().manual_seed(int(rng.integers(2**62)))
        enc = self.encoding
        n_b, n_c = len(enc.batches), enc.max_columns
        codes = torch.full((n, n_b, n_c), -1, dtype=torch.long)
        sizes = [len(b) for b in enc.batches]
        self.net.eval()

        feats = self.net.features(codes)
        n_f = self.net.layout.n_feat
        never_missing = {enc.parent_of(c) for c in complete}
        governed: dict[str, torch.Tensor] = {}
        pattern = torch.zeros(n, dtype=torch.long)
        if self.patterns is not None:
            idx = self.patterns.draw(n, rng)
            pattern = torch.from_numpy(idx)
            missing = torch.from_numpy(self.patterns.domain.missing[idx])
            for j, c in enumerate(self.patterns.domain.columns):
                if c not in never_missing:
                    governed[c] = missing[:, j]
        for b in range(n_b):  # ancestral: batch by batch, column by column
            for pos in range(sizes[b]):
                logits = self.net.batch_logits(feats, b)[:, pos, :]
                column = enc.batches[b][pos]
                last = enc.schema[column].n_categories - 1  # the "missing" category
                if column == PATTERN_COLUMN:  # the row's drawn pattern
                    logits[:] = -math.inf
                    logits[torch.arange(n), pattern] = 0.0
                elif column in never_missing:
                    logits[:, last] = -math.inf
                elif column in governed:
                    missing = governed[column]
                    logits[missing, :last] = -math.inf
                    logits[~missing, last] = -math.inf
                probs = torch.softmax(logits, dim=-1)
                drawn = torch.multinomial(probs, 1, generator=g).squeeze(1)
                codes[:, b, pos] = drawn
                feats[:, b, pos * n_f : (pos + 1) * n_f] = self.net.layout.features[b, pos, drawn]
        return enc.decode(codes.numpy(), rng)


def _resolve_encoding(
    table: pd.DataFrame,
    types: Mapping[str, PhenoType],
    config: PhenotypeConfig,
    context: Sequence[str],
    bins_noise_multiplier: float | None,
    private: bool,
    noise: Noise,
    domain: PatternDomain | None = None,
) -> tuple[Encoding, list[str]]:
    columns = list(table.columns)
    if PATTERN_COLUMN in columns:
        raise ConfigError(f"a phenotype column may not be named {PATTERN_COLUMN!r}")
    derived = derived_columns(columns)
    resolved = config.resolved_schema()
    rebuilt = rebuilt_columns(columns, resolved)
    nested = {c: resolved.nested[c] for c in rebuilt if c not in derived}
    modelled = [c for c in columns if c not in rebuilt]
    ctx = [] if domain is None else [PATTERN_COLUMN]  # the model's first input
    for c in context:
        if c not in columns:
            raise ConfigError(f"context column {c!r} is not in the phenotype table")
        ctx.append(rebuilt.get(c, c))
    schema = public_column_specs(columns, types, config)
    dp_cols = dp_binned_columns(columns, types, config)
    for c in dp_cols:
        x = pd.to_numeric(table[c], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        if private:
            if bins_noise_multiplier is None:
                raise ConfigError(
                    f"continuous column {c!r} is not in the public schema and no DP-bins "
                    "budget was planned (phenotypes.planned_bins); add it to the plan or "
                    "declare its range"
                )
            schema[c] = dp_bins(
                x, n_bins=config.n_bins, noise_multiplier=bins_noise_multiplier, noise=noise
            )
            if schema[c].source == NO_RANGE:  # a DP output
                # values drawn over a made-up [-1, 1] (negative ages, a collapsed tail)
                # would pass for data: the column is left missing (post-processing)
                log.warning(
                    "continuous column %r: its DP bins found no range above their noise (sd "
                    "%.3g; too few members for it), so its synthetic values are left "
                    "missing; declare its range in a --pheno-schema file",
                    c,
                    bins_noise_multiplier,
                )
        else:  # no formal privacy: exact quantiles of the training data
            ok = x[np.isfinite(x)]
            schema[c] = _quantile_bins(
                ok if len(ok) else np.array([0.0, 1.0]),
                config.n_bins,
                SHAPE_POINTS,
                integer=bool(len(ok)) and bool(np.all(ok == np.round(ok))),
                source="no formal privacy",
            )
    for c in modelled:
        if type_conflict(schema[c], types.get(c)):
            raise ConfigError(
                f"column {c!r} is {types.get(c)} in the cohort but {schema[c].kind} in the "
                f"schema ({config.resolved_schema().source}): declare its type in a "
                "--pheno-schema file (dpgenome.phenoschema)"
            )
    if domain is not None:  # the pattern: a public level set, the public shares to start
        counts = np.append(domain.public_counts, 0.0) + 0.5
        schema[PATTERN_COLUMN] = ColumnSchema(
            "levels",
            levels=tuple(str(i) for i in range(domain.size)),
            source="public missingness patterns",
            prior=tuple((counts / counts.sum()).tolist()),
        )
        modelled = [PATTERN_COLUMN, *modelled]
    batches = group_columns(modelled, ctx, max_batch_columns=config.max_batch_columns)
    enc = Encoding(
        tuple(tuple(b) for b in batches),
        {c: schema[c] for c in modelled},
        dict(types),
        derived,
        tuple(columns),
        nested,
    )
    return enc, dp_cols


def fit_phenotypes(
    table: pd.DataFrame,
    types: Mapping[str, PhenoType],
    config: PhenotypeConfig,
    *,
    noise_multiplier: float | None,
    context: Sequence[str] = (),
    bins_noise_multiplier: float | None = None,
    missing_noise_multiplier: float | None = None,
    complete: Sequence[str] = (),
    seed: int | None = None,
    accounted: Mapping[str, Any] | None = None,
) -> PhenoModel:
    """Train the phenotype synthesizer on the members' ``table`` by one DP-SGD run.

    ``noise_multiplier`` comes from the calibrated ledger (mechanism
    :func:`planned_dp_sgd`); ``None`` = no formal privacy (no clipping, no noise).
    ``accounted``: that ledger mechanism's fields, which the run as Opacus did it must match
    (:func:`dpgenome.dpsgd.check_ran`).
    ``context``: the analysis phenotype and covariates (modelled first, seen by every batch).
    ``missing_noise_multiplier``: the missingness-pattern histogram's (mechanism
    :func:`planned_missingness`, over the columns not in ``complete``); required under DP
    when there is a pattern domain (:func:`missingness_domain`), exact counts without
    formal privacy.
    ``seed`` defaults to ``config.seed``.
    """
    config = config.validate()
    n = len(table)
    if n < 2:
        raise ConfigError(f"{n} rows are too few to train the phenotype synthesizer")
    if len(table.columns) == 0:
        raise ConfigError("the phenotype table has no columns")
    private = noise_multiplier is not None
    ss = np.random.SeedSequence(config.seed if seed is None else seed)
    s_bins, s_init, s_train = (int(v) for v in ss.generate_state(3))
    noise = mechanism_noise(config.secure_mode and private, np.random.default_rng(s_bins), n)
    domain = missingness_domain(list(table.columns), config, complete)
    as_input = config.pattern_input
    enc, dp_cols = _resolve_encoding(
        table,
        types,
        config,
        context,
        bins_noise_multiplier,
        private,
        noise,
        domain if as_input else None,
    )
    if domain is not None and private and missing_noise_multiplier is None:
        raise ConfigError(
            "the phenotype table has public missingness patterns but no missingness budget "
            "was planned (phenotypes.planned_missingness); add it to the plan or set "
            "missing_patterns=False"
        )
    patterns = None
    if domain is not None:
        # each member's pattern, missing as the model reads it (a level outside the schema
        # is missing too): the histogram's counts, and (as_input) the model's first input
        own = nearest_patterns(enc.missing(table, domain.columns), domain)
        patterns = release_patterns(
            own,
            domain,
            noise_multiplier=missing_noise_multiplier if private else None,
            noise=noise,
        )
        if as_input:
            own_column = pd.DataFrame({PATTERN_COLUMN: own.astype(str)}, index=table.index)
            table = pd.concat([table, own_column], axis=1)
    codes = torch.from_numpy(enc.encode(table))
    torch.manual_seed(s_init)
    net = GroupedMade(_layout(enc), config.hidden, public_prior=config.public_prior)
    feats_all = net.features(codes)
    targets = codes.clamp(min=0)
    valid = (codes >= 0).float()

    def loss_fn(module: nn.Module, idx: torch.Tensor) -> torch.Tensor:
        logits = module(feats_all[idx])
        logp = torch.log_softmax(logits, dim=-1)
        picked = logp.gather(-1, targets[idx].unsqueeze(-1)).squeeze(-1)
        return -(picked * valid[idx]).sum(dim=(1, 2))

    q = config.sample_rate(n)
    dp_config = (
        DpSgdConfig(
            q,
            config.steps,
            float(noise_multiplier or 0.0),
            config.max_grad_norm,
            secure_mode=config.secure_mode,
        )
        if private
        else DpSgdConfig.no_privacy(q, config.steps)
    )
    trainer = DpSgdTrainer(
        net,
        lambda ps: torch.optim.Adam(ps, lr=config.lr),
        n,
        dp_config,
        seed=s_train,
        grad_sample_mode=config.grad_sample_mode,
    )

    def cosine_decay(step: int, _loss: float) -> None:
        # data-independent schedule: cosine decay of the learning rate to 0 over the run
        for group in trainer.optimizer.param_groups:
            group["lr"] = 0.5 * config.lr * (1.0 + math.cos(math.pi * (step + 1) / config.steps))

    try:
        losses = trainer.run(loss_fn, cosine_decay)
    finally:
        trainer.close()
    ran = trainer.ran()
    if accounted is not None:
        check_ran(ran, accounted, str(accounted.get("name", "phenotypes")))
    finite = [v for v in losses if math.isfinite(v)]
    details: dict[str, object] = {
        "n_batches": len(enc.batches),
        "batches": [list(b) for b in enc.batches],
        "n_modelled_columns": sum(len(b) for b in enc.batches),
        "n_rebuilt_one_hot_columns": len(enc.derived),
        "nested_columns": {c: n.parent for c, n in enc.nested.items()},
        "schema": config.resolved_schema().source,
        "dp_binned_columns": dp_cols,
        # as Opacus ran them (its accountant's record and its optimizer's clipping norm)
        "sample_rate": q if ran is None else ran["sample_rate"],
        "steps": config.steps if ran is None else ran["steps"],
        "noise_multiplier": None if ran is None else ran["noise_multiplier"],
        "max_grad_norm": None if ran is None else ran["max_grad_norm"],
        # the batch losses are exact statistics of the members' un-noised batches, charged
        # to no mechanism: kept without DP only
        "final_loss": float(np.mean(finite[-20:])) if finite and not private else None,
        "n_parameters": int(sum(p.numel() for p in net.parameters())),
        "missingness": None if patterns is None else patterns.summary(),
    }
    return PhenoModel(enc, net, details, patterns)


def synthesize_phenotypes(
    members: Cohort,
    config: PhenotypeConfig,
    *,
    noise_multiplier: float | None,
    n_synth: int,
    context: Sequence[str] = (),
    bins_noise_multiplier: float | None = None,
    missing_noise_multiplier: float | None = None,
    complete: Sequence[str] = (),
    accounted: Mapping[str, Any] | None = None,
    details: dict[str, object] | None = None,
) -> tuple[pd.DataFrame, dict[str, PhenoType]]:
    """Fit on ``members.phenotypes`` and sample ``n_synth`` rows (seeds from ``config``);
    ``complete``: columns never missing in the sample (:meth:`PhenoModel.sample`);
    ``accounted``, ``missing_noise_multiplier``: as :func:`fit_phenotypes`; ``details``
    gets the missingness release's summary (aggregates only)."""
    model = fit_phenotypes(
        members.phenotypes,
        members.pheno_types,
        config,
        noise_multiplier=noise_multiplier,
        context=context,
        bins_noise_multiplier=bins_noise_multiplier,
        missing_noise_multiplier=missing_noise_multiplier,
        complete=complete,
        accounted=accounted,
    )
    if details is not None:
        details["missingness"] = model.details["missingness"]
    seed = int(np.random.SeedSequence(config.seed).generate_state(4)[3])
    table = model.sample(n_synth, seed, complete)
    return table, dict(members.pheno_types)
