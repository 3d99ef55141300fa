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

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
import torch
from torch import nn

from dpgenome.calibrate import PlannedDpSgd, PlannedGaussian
from dpgenome.cohort import Cohort, PhenoType
from dpgenome.dpsgd import DpSgdConfig, DpSgdTrainer, check_ran
from dpgenome.errors import ConfigError, InputError
from dpgenome.histogram import planned_histogram
from dpgenome.missingness import (
    PatternDomain,
    PatternRelease,
    nearest_patterns,
    pattern_domain,
    release_patterns,
)
from dpgenome.nesting import (
    derived_columns,
)
from dpgenome.noise import Noise, mechanism_noise
from dpgenome.phenobins import dp_bins
from dpgenome.phenoencoding import (
    NO_RANGE,
    PATTERN_COLUMN,
    SHAPE_POINTS,
    ColumnSchema,
    Encoding,
    PhenoSchema,
    cfw_schema,
    group_columns,
    quantile_bins,
    rebuilt_columns,
    type_conflict,
)
from dpgenome.phenomade import GroupedMade, batch_layout

if TYPE_CHECKING:
    from dpgenome.phenoschema import DeclaredSchema

log = logging.getLogger(__name__)


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
    columns: Sequence[str],
    types: Mapping[str, PhenoType],
    config: PhenotypeConfig,
    *,
    source: str | None = None,
) -> list[str]:
    """Continuous columns that need DP bins (absent from the public schema); names only.
    A categorical column the schema lacks is an :class:`InputError` naming ``source`` (the
    phenotype file) and the column."""
    resolved = config.resolved_schema()
    schema = resolved.columns
    rebuilt = rebuilt_columns(columns, resolved)
    out = []
    for c in columns:
        if c in rebuilt or c in schema:
            continue
        t = types.get(c)
        if t == PhenoType.CATEGORICAL:
            raise InputError(
                f"categorical column {c!r} has no public level set in the schema "
                f"({resolved.source}); declare its levels in a --pheno-schema "
                "file (dpgenome.phenoschema) or drop the column: a private level set cannot be "
                "released",
                file=source,
                column=c,
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
    source: str | None = None,
) -> PlannedGaussian | None:
    """The Gaussian DP-bins step (two histograms per column), or None when the public schema
    covers every continuous column (``source``: the phenotype file, for errors)."""
    cols = dp_binned_columns(columns, types, config, source=source)
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
            schema[c] = quantile_bins(
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
    net = GroupedMade(batch_layout(enc), config.hidden, public_prior=config.public_prior)
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
