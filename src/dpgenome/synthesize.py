"""The DP synthesizer of a whole cohort: genotype structure + phenotypes + association, one ledger.

``synthesize(members, config, public)`` runs up to eight kinds of mechanism on the members,
calibrated *together* to the target ``(epsilon, delta)`` before any of them touches the data
(:func:`dpgenome.calibrate.calibrate`, tight RDP/PLD composition):

1. ``genotype-structure`` (DP-SGD): the grouped window model of :mod:`dpgenome.model`, all
   windows one mechanism. Without a public panel it is trained from scratch by DP-SGD. With
   one, the model is pretrained on the panel (no privacy cost); a DP-SGD fine-tune on the
   members (only the per-SNP biases: low-dimensional) is available (``finetune_steps``) but
   off by default, see :class:`~dpgenome.synthconfig.SynthConfig` -- then this mechanism is absent.
2. ``phenotypes`` (DP-SGD): the phenotype synthesizer of :mod:`dpgenome.phenotypes` on every
   phenotype column (analysis phenotype and covariates included). ``phenotype-bins``
   (Gaussian, two histograms per column): the bins of each continuous column the public
   schema lacks (:func:`dpgenome.phenobins.dp_bins`); absent when the schema covers them all.
   ``phenotype-missingness`` (Gaussian, one histogram): which columns are missing together,
   over the public table's missingness patterns (:mod:`dpgenome.missingness`); absent when
   no public pattern governs the columns.
3. ``phenotype-centre`` (Gaussian, two numbers): the mean and second moment of the
   standardised, clipped analysis phenotype, so that SNP scores are centred and scaled
   whatever the reference allele frequencies and the synthetic phenotype's spread
   (:func:`dpgenome.analysis_phenotype.normalise_phenotype`). A 0/1 analysis phenotype's
   prevalence is read off the released mean
   (:func:`dpgenome.analysis_phenotype.released_prevalence`) and the synthetic rows are
   drawn to it from ``phenotype_oversample`` times as many
   sampled rows (:func:`_draw_rows`, post-processing): the DP phenotype model alone can miss
   it by a factor of three. A continuous one's residuals take the released mean and scale
   (:func:`dpgenome.analysis_phenotype.released_affine`, :func:`_relocate`, post-processing).
   ``covariate-slopes`` (Gaussian, one number per covariate column; an analysis phenotype
   with covariates): the slopes of the members' phenotype on the covariates
   (:func:`dpgenome.analysis_phenotype.release_covariate_slopes`), given to the final synthetic
   rows (post-processing): a continuous phenotype's rows gain the released slope as a term in
   their covariates (:func:`_with_slopes`; a GWAS with those covariates is unchanged by it), a
   0/1 phenotype's rows are drawn to it with the prevalence (:func:`_draw_rows`,
   :mod:`dpgenome.draw`).
4. ``region-selection`` (exponential mechanism, one per round) and ``region-test`` (Laplace,
   one query per round): the private choice of associated regions
   (:mod:`dpgenome.region_selection`: rounds of noisy max + noisy threshold), scores standardised
   with post-processed DP outputs (or the public panel) so their sensitivity is bounded. Each
   round is accounted as its own steps, the test by the Laplace mechanism's exact privacy
   loss and the noisy max as a bounded-range mechanism by both accountants (a quarter of a
   generic pure-DP step's Rényi divergence at small orders; its own dominating pair for
   PLD). At epsilon 3 and 960 members (phenotype weight 1) the association's noise
   multiplier is 3.40 this way, 3.70 with the bounded-range form in RDP only, 4.28 with the
   noisy max as a generic pure-DP step and more again with the rounds lumped into one
   basic-composition step.
5. ``region-association`` (Gaussian): the low-dimensional release of the phenotype-genotype
   association of each selected region (cross-moments of the covariate-adjusted phenotype
   with the region's principal components; without a public panel, of its lead SNP alone
   with that SNP's allele count), planned for ``max_regions`` regions: when the
   threshold tests stop earlier, the released regions share the plan's privacy loss
   (:func:`dpgenome.budget.region_sigma`). Synthetic phenotype rows are then assigned to
   synthetic genotype rows so that the synthetic cohort reproduces those cross-moments over
   the rows a GWAS tests (:func:`dpgenome.association.match_tested_rows`: a permutation,
   post-processing).
6. ``ancestry`` (Gaussian, one histogram; with a public panel and ``ancestry_pcs`` only):
   the members' shares of the panel's ancestry clusters (:mod:`dpgenome.ancestry`). The
   window model then reads each synthetic individual's ancestry scores in every window, so
   its chromosomes share one ancestry.
7. ``ancestry-phenotype`` (Gaussian, one vector of ``ancestry_pcs`` numbers; with ancestry
   and the association path on): the cross-moments of the members' analysis phenotype (as
   the region release reads it) with their whole-genome ancestry scores
   (:func:`dpgenome.ancestry.release_phenotype_moments`). The pairing then also matches them
   on the synthetic individuals' own scores, so a trait whose mean follows ancestry keeps
   that stratification (and the GWAS inflation it brings) in the synthetic cohort.
8. ``genotype-missingness`` (Gaussian, one histogram; with ``genotype_missingness`` only):
   the members' shares of missing genotype calls over public bins (:mod:`dpgenome.callrates`);
   the synthetic genotypes then miss calls to match, at the SNPs the public panel misses.

Everything data-dependent is either public (the SNP map, the phenotype schema, the member
count ``n`` -- treated as public, as in the default ``delta = 1/n^1.1`` -- and the public panel)
or one of these mechanisms. ``epsilon = inf`` runs the same pipeline without clipping or
noise and is labelled "no formal privacy". Hyperparameters were tuned on simulated cohorts
(``bench/synth.py``), never on a private one.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import secrets
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
import torch

from dpgenome import analysis_phenotype as aph
from dpgenome import ancestry as anc
from dpgenome import association as assoc
from dpgenome import callrates
from dpgenome import phenotypes as phenos
from dpgenome.accountant import Ledger
from dpgenome.association_path import (
    mean_sd,
    release_association,
)
from dpgenome.budget import (
    calibrated_ledger,
    noise_multiplier,
    planned_noise,
    releases_ancestry_phenotype,
    schema_assumptions,
)
from dpgenome.cohort import Cohort, PhenoType, category_levels, design_matrix, observed_rows
from dpgenome.dpsgd import check_ran
from dpgenome.draw import draw_with_prevalence
from dpgenome.errors import CohortError, ConfigError
from dpgenome.gwas import lambda_gc, linear_scan
from dpgenome.impute import Imputed, impute_nearest
from dpgenome.model import WindowModel, make_layout
from dpgenome.noise import (
    NOISE_SEED_ENV,
    Noise,
    fixed_noise,
    mechanism_noise,
)
from dpgenome.phenoschema import with_schema_types
from dpgenome.sample import sample_dosages, synthetic_samples
from dpgenome.splice import Splice, splice_regions
from dpgenome.synthconfig import (
    ANCESTRY,
    AUTO,
    FLOAT_NOISE_CAVEAT,
    GENOTYPE_MISSINGNESS,
    PHENOTYPE_BINS,
    PHENOTYPE_MISSINGNESS,
    PHENOTYPES,
    SECURE_MODE_SCOPE,
    STRUCTURE,
    SynthConfig,
)
from dpgenome.train import TrainConfig, train

log = logging.getLogger(__name__)


@dataclass
class SynthResult:
    cohort: Cohort
    ledger: Ledger
    config: SynthConfig
    timings: dict[str, float]
    #: aggregates only (no individual-level data): selected regions, training diagnostics
    details: dict[str, Any] = field(default_factory=dict)


# ---------------------------------------------------------------------------- pairing


def _draw_rows(
    table: pd.DataFrame,
    adjust: aph.CovariateAdjustment | None,
    config: SynthConfig,
    details: dict[str, Any],
    rng: np.random.Generator,
) -> pd.DataFrame:
    """``config.n_synth`` of the sampled phenotype rows. A 0/1 analysis phenotype was sampled
    ``phenotype_oversample`` times over; its rows are drawn so that its prevalence is the
    one the released location implies (``details["phenotype_prevalence"]``, from
    :func:`dpgenome.analysis_phenotype.released_prevalence`: post-processing) and, with the
    ``covariate-slopes`` release, so that its slopes on the covariates are the released ones
    (``details["covariate_slopes"]``; :func:`dpgenome.draw.draw_with_prevalence`), whole
    rows at a time, so every other relation between a row's columns is kept. The DP
    phenotype model alone missed the prevalence by a factor of three in the demo (abBMD 0.06
    for 0.19 at epsilon 8) and flattened the slopes; without a released location (no
    association path) the first rows are kept."""
    n = int(config.n_synth or len(table))
    info = details.get("phenotype_prevalence")
    if info is None or len(table) == n:
        return table.iloc[:n].reset_index(drop=True)
    y = table[config.pheno].to_numpy(dtype=np.float64, na_value=np.nan)
    slopes = details.get("covariate_slopes")
    x = adjust.design(table)[0] if adjust is not None and slopes is not None else None
    pick = draw_with_prevalence(
        np.nan_to_num(y),
        n,
        info["released"],
        rng,
        covariates=x,
        slopes=None if slopes is None else np.asarray(slopes["released"]),
    )
    out = table.iloc[pick].reset_index(drop=True)
    info |= {"rows_sampled": len(table), "synthetic": float(np.nanmean(y[pick]))}
    return out


def _relocate(
    table: pd.DataFrame,
    adjust: aph.CovariateAdjustment | None,
    config: SynthConfig,
    details: dict[str, Any],
) -> pd.DataFrame:
    """A continuous analysis phenotype with the members' location and scale: each synthetic
    row's covariate-adjusted residual ``r`` becomes ``shift + scale * r``
    (``details["phenotype_location"]``, from :func:`dpgenome.analysis_phenotype.released_affine`:
    post-processing of the ``phenotype-centre`` release), unless the release does not
    identify the map (then the rows stay as sampled). Covariate effects stay as the model
    learnt them; a GWAS statistic with those covariates is unchanged, since the map only
    scales the residuals and adds a term in the covariates' span."""
    info = details.get("phenotype_location")
    if info is None or adjust is None or not info["applied"]:
        return table
    r = adjust.residual(table, config.pheno)
    out = table.copy()
    y = out[config.pheno].to_numpy(dtype=np.float64, na_value=np.nan)
    out[config.pheno] = y + info["shift"] + (info["scale"] - 1.0) * r
    info["synthetic"] = mean_sd(out[config.pheno])
    return out


def _pairing(
    dosages: np.ndarray,
    table: pd.DataFrame,
    types: dict[str, PhenoType],
    regions: list[assoc.Region],
    adjust: aph.CovariateAdjustment | None,
    config: SynthConfig,
    seed: int,
    *,
    ancestry: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[np.ndarray, dict[str, Any]]:
    """``(order, details)``: synthetic phenotype row ``order[i]`` goes to genotype row ``i``
    (post-processing: synthetic data and released values only).

    ``ancestry``: the synthetic individuals' (clipped) ancestry scores ``(n, k)`` and the
    released cross-moments of the phenotype with them (``ancestry-phenotype``), matched
    beside the regions' (each score weighs as a standardised SNP).

    With released regions, phenotype rows are assigned so that the synthetic cross-moments of
    the covariate-adjusted phenotype reproduce the released ones
    (:func:`dpgenome.association.match_tested_rows`), and, when
    ``AssociationConfig.residual_directions`` asks for them, those of each region's residual
    directions the zero the targets imply there
    (:func:`dpgenome.association.residual_directions`); without, the pairing is random. Either
    way it is drawn ``null_draws`` times and the draw whose synthetic GWAS (linear, the
    analysis covariates) has the median genomic inflation is kept, among the draws without a
    SNP outside the released regions at ``null_hit_log10_p`` when there is one
    (:attr:`dpgenome.association_config.AssociationConfig.null_draws`)."""
    n = len(table)
    draws = config.association.null_draws
    children = np.random.SeedSequence(seed).spawn(draws - 1)
    rngs = [np.random.default_rng(seed), *(np.random.default_rng(c) for c in children)]
    candidates: list[tuple[np.ndarray, float | None]] = []
    if (regions or ancestry is not None) and adjust is not None:
        z = assoc.region_components(dosages, regions)
        targets = np.concatenate([np.zeros(0), *(r.targets() for r in regions)])
        weights = assoc.region_weights(regions)
        extra, extra_weights = assoc.residual_directions(
            dosages, regions, config.association.residual_directions
        )
        z = np.hstack([z, extra])
        targets = np.concatenate([targets, np.zeros(extra.shape[1])])
        weights = np.concatenate([weights, extra_weights])
        if ancestry is not None:
            scores, moments = ancestry
            # a unit of cross-moment on a score of sd s moves its correlation by 1 / s: each
            # score weighs as a standardised SNP of the most loaded region
            unit = float(weights.max()) if len(weights) else 1.0
            sd = np.maximum(scores.std(axis=0), 1e-12)
            z = np.hstack([z, scores - scores.mean(axis=0)])
            targets = np.concatenate([targets, moments])
            weights = np.concatenate([weights, unit / sd])
        y = adjust.residual(table, config.pheno)
        tested = adjust.complete(table, config.pheno)
        for rng in rngs:
            candidates.append(assoc.match_tested_rows(z, y, tested, targets, rng, weights=weights))
    else:  # the phenotype rows are drawn independently of the genotype rows: any order is a
        # random pairing, the first draw is the table's own
        candidates = [(np.arange(n), None), *((rng.permutation(n), None) for rng in rngs[1:])]
    chosen = 0
    info: dict[str, Any] = {"draws": draws}
    if draws > 1:  # (synthesize rejects a categorical analysis phenotype up front)
        scans = [_pairing_scan(dosages, table, types, config, order) for order, _ in candidates]
        lambdas = [lam for lam, _ in scans]
        if all(math.isfinite(x) for x in lambdas):
            # a SNP whose association the released targets do not explain (every SNP outside
            # the regions) gets it from the pairing's chance alone: a draw with a hit there
            # is a false locus of the pairing, not of the data
            a = config.association
            n_tested = int(adjust.complete(table, config.pheno).sum()) if adjust else None
            chance = (
                assoc.explained_log10_p(dosages, regions, n_tested, ancestry) < a.explained_log10_p
            )
            stray = [bool(np.any(lp[chance] >= a.null_hit_log10_p)) for _, lp in scans]
            chosen = assoc.typical_draw(lambdas, stray)
            info["lambda_gc"] = lambdas
            info["unexplained_hit"] = stray
            info["stray_hit_log10_p"] = a.null_hit_log10_p
            info["chosen"] = chosen
    order, residual = candidates[chosen]
    if residual is not None:
        info["matching_relative_residual"] = residual
    return order, info


def _pairing_scan(
    dosages: np.ndarray,
    table: pd.DataFrame,
    types: dict[str, PhenoType],
    config: SynthConfig,
    order: np.ndarray,
) -> tuple[float, np.ndarray]:
    """``(lambda_GC, -log10 p per SNP)`` of the linear GWAS of ``config.pheno`` (covariates
    ``config.covariates``) on the synthetic genotypes with phenotype row ``order[i]`` on
    genotype row ``i`` (NaN when the synthetic table cannot be analysed: too few rows,
    collinear covariates)."""
    t = table.iloc[order]
    covariates = list(config.covariates)
    rows = np.flatnonzero(observed_rows(t, config.pheno, covariates))
    design, _ = design_matrix(t, covariates, category_levels(t, types, covariates))
    y = t[config.pheno].to_numpy(dtype=np.float64, na_value=np.nan)[rows]
    try:
        scan = linear_scan(dosages, y, design[rows], rows=rows)
    except CohortError:
        return math.nan, np.full(dosages.shape[1], np.nan)
    return lambda_gc(scan.log10_p), np.nan_to_num(scan.log10_p, nan=0.0)


# ---------------------------------------------------------------------------- stages


def _structure(
    members: Cohort,
    public: Cohort | None,
    config: SynthConfig,
    ledger: Ledger,
    streams: Streams,
    details: dict[str, Any],
    *,
    gram: np.ndarray | None = None,
) -> tuple[WindowModel, PanelAncestry | None]:
    """The genotype model (module docstring, 1.) and, with ancestry on, the panel's ancestry
    axes and clusters (public) it reads (``gram``: the panel's Gram matrix when
    :func:`resolve_ancestry` computed it)."""
    window, context = (
        (config.window, config.context)
        if public is not None
        else (config.structure_window, config.structure_context)
    )
    pcs = config.pcs if public is not None else 0
    model = WindowModel(make_layout(members.variants, window, context), ancestry=pcs)
    torch.manual_seed(streams.seed(0, "the genotype model's initial weights"))
    ancestry: PanelAncestry | None = None
    if public is not None:
        key = _pretrain_key(public, config)
        if key not in _PRETRAINED:
            pseeds = np.random.SeedSequence(config.pretrain_seed).generate_state(2).tolist()
            torch.manual_seed(pseeds[0])
            model.init_bias_from_frequency(public.alt_frequency())
            panel_loco = None
            if pcs:  # public data only: the panel's axes, clusters and own scores
                axes = anc.fit_axes(public.dosages, public.variants, pcs, gram=gram)
                panel_full, panel_loco = axes.scores(public.dosages)
                domain = anc.ancestry_domain(
                    panel_full,
                    config.ancestry_clusters,
                    config.pretrain_seed,
                    weights=axes.full_sd / axes.full_sd[0],
                    panel_loco=panel_loco,
                )
                ancestry = PanelAncestry(axes, domain)
            model.input_dropout = config.pretrain_input_dropout
            try:
                rep = train(
                    model,
                    public.dosages,
                    TrainConfig(
                        config.pretrain_steps, config.pretrain_sample_rate, config.pretrain_lr
                    ),
                    seed=pseeds[1],
                    ancestry=panel_loco,
                )
            finally:
                model.input_dropout = 0.0
            while len(_PRETRAINED) >= _PRETRAINED_MAX:
                _PRETRAINED.pop(next(iter(_PRETRAINED)))
            _PRETRAINED[key] = (
                {k: v.detach().clone() for k, v in model.state_dict().items()},
                {"steps": rep.steps, "final_loss": _last(rep.losses), "seconds": rep.seconds},
                ancestry,
            )
            details["pretrain"] = {**_PRETRAINED[key][1], "reused": False}
        else:
            state, info, ancestry = _PRETRAINED[key]
            model.load_state_dict({k: v.clone() for k, v in state.items()})
            details["pretrain"] = {**info, "reused": True}
        steps, rate, lr, clip, trainable = (
            config.finetune_steps,
            config.finetune_sample_rate,
            config.finetune_lr,
            config.finetune_clip,
            config.finetune_trainable,
        )
    else:
        model.init_bias_from_frequency(np.full(members.n_variants, 0.5))
        steps, rate, lr, clip, trainable = (
            config.structure_steps,
            config.structure_sample_rate,
            config.structure_lr,
            config.structure_clip,
            "all",
        )
    if steps > 0:
        sigma = noise_multiplier(ledger, STRUCTURE)
        rep = train(
            model,
            members.dosages,
            TrainConfig(steps, rate, lr, sigma, clip, trainable, config.secure),
            seed=streams.seed(2, "the genotype model's DP-SGD"),
            delta=ledger.delta,
            # each member's own scores are part of its row: clipped with it
            ancestry=None if ancestry is None else ancestry.axes.scores(members.dosages)[1],
        )
        if sigma is not None:  # the run as Opacus did it, against the ledger's account
            check_ran(rep.ran, asdict(ledger.mechanism(STRUCTURE)), STRUCTURE)
        details["structure"] = {
            "steps": rep.steps,
            "sample_rate": rep.sample_rate,
            "noise_multiplier": rep.noise_multiplier,
            "max_grad_norm": rep.max_grad_norm,
            "trainable": trainable,
            "opacus_epsilon": rep.opacus_epsilon,
        }
        if sigma is None:
            # the batch losses and the share of clipped gradients are exact statistics of the
            # members' un-noised batches, charged to no mechanism: shown without DP only (so is
            # the run time, which moves with them)
            details["structure"] |= {
                "seconds": rep.seconds,
                "clipped_fraction": rep.clipped_fraction,
                "final_loss": _last(rep.losses),
            }
    return model, ancestry


@dataclass(frozen=True)
class PanelAncestry:
    """The public panel's ancestry axes and clusters (:mod:`dpgenome.ancestry`)."""

    axes: anc.AncestryAxes
    domain: anc.AncestryDomain


def _ancestry(
    members: Cohort,
    ancestry: PanelAncestry,
    config: SynthConfig,
    ledger: Ledger,
    noise: Noise,
    rng: np.random.Generator,
    details: dict[str, Any],
) -> tuple[np.ndarray, np.ndarray]:
    """The ``ancestry`` release (the members' shares of the panel's clusters): the synthetic
    individuals' scores drawn from it ``(n_synth, chromosomes, ancestry_pcs)``, and the
    members' own whole-genome scores ``(n, ancestry_pcs)`` (for the ``ancestry-phenotype``
    release)."""
    assert config.n_synth is not None
    full, _ = ancestry.axes.scores(members.dosages)
    release = anc.release_ancestry(
        full, ancestry.domain, noise_multiplier=noise_multiplier(ledger, ANCESTRY), noise=noise
    )
    details.setdefault("ancestry", {}).update(release.summary(ancestry.axes))
    return release.draw(config.n_synth, rng), full


#: the public panels' structure tests of this process (:func:`resolve_ancestry`), keyed by a
#: hash of the panel (public data only)
_STRUCTURE: dict[str, tuple[anc.StructureTest, np.ndarray | None]] = {}


def resolve_ancestry(
    config: SynthConfig, public: Cohort | None
) -> tuple[SynthConfig, anc.StructureTest | None, np.ndarray | None]:
    """``config`` with ``ancestry_pcs = "auto"`` made a number from the public panel alone
    (:func:`dpgenome.ancestry.detect_structure`; 0 without a panel): no member's data, so no
    privacy cost, and done before the ledger is planned. Also returns the test (None when
    the number was given) and the panel's whole-genome Gram matrix for
    :func:`dpgenome.ancestry.fit_axes`."""
    if config.ancestry_pcs != AUTO:
        return config, None, None
    if public is None:
        return replace(config, ancestry_pcs=0), None, None
    key = _panel_digest(public)
    if key not in _STRUCTURE:
        while len(_STRUCTURE) >= _PRETRAINED_MAX:
            _STRUCTURE.pop(next(iter(_STRUCTURE)))
        _STRUCTURE[key] = anc.detect_structure(public.dosages, public.variants)
    test, gram = _STRUCTURE[key]
    return replace(config, ancestry_pcs=test.pcs), test, gram


#: warnings given once per process
_WARNED = {"complete": False}

#: the public panels' imputed dosages of this process (:func:`imputed_panel`), keyed by a
#: hash of the panel as given (public data only)
_IMPUTED: dict[str, Imputed] = {}


def imputed_panel(public: Cohort) -> Imputed:
    """The public panel's dosages with its missing calls filled from its nearest individuals
    (:func:`dpgenome.impute.impute_nearest`: public data only, no privacy cost), cached per
    panel in this process."""
    key = _panel_digest(public)
    if key not in _IMPUTED:
        while len(_IMPUTED) >= _PRETRAINED_MAX:
            _IMPUTED.pop(next(iter(_IMPUTED)))
        _IMPUTED[key] = impute_nearest(public.dosages, public.variants["chr"])
    return _IMPUTED[key]


def _panel_digest(public: Cohort) -> str:
    """Content hash of a public panel: its dosages, SNP ids and chromosomes (which decide the
    structure test's halves and the ancestry scores' leave-one-out chromosomes)."""
    h = hashlib.sha256(np.ascontiguousarray(public.dosages).tobytes())
    for column in ("id", "chr"):
        h.update("\x1f".join(map(str, public.variants[column])).encode())
    return h.hexdigest()


def _structure_line(test: anc.StructureTest) -> str:
    """The progress line of ``ancestry_pcs = "auto"``: what the panel showed, what was chosen."""
    if not test.correlations.size:
        return "  ancestry: auto, nothing to test (one chromosome or a tiny panel): off"
    top = float(test.correlations[0])
    if test.pcs:
        return (
            f"  ancestry: auto, the public panel's genome halves share {test.axes} axis(es) "
            f"(canonical correlation {top:.2f}): ancestry_pcs = {test.pcs}"
        )
    return (
        f"  ancestry: auto, no structure shared across the public panel's genome halves "
        f"(largest canonical correlation {top:.2f}): off"
    )


#: public-panel pretrainings of this process, keyed by :func:`_pretrain_key` (public data only)
_PRETRAINED: dict[str, tuple[dict[str, torch.Tensor], dict[str, Any], PanelAncestry | None]] = {}
_PRETRAINED_MAX = 2


def _pretrain_key(public: Cohort, config: SynthConfig) -> str:
    """Content hash of the public panel and of every setting the pretraining depends on."""
    h = hashlib.sha256(_panel_digest(public).encode())
    settings = [
        config.window,
        config.context,
        config.pretrain_steps,
        config.pretrain_sample_rate,
        config.pretrain_lr,
        config.pretrain_seed,
        config.pcs,
        config.ancestry_clusters,
        config.pretrain_input_dropout,
    ]
    h.update(json.dumps(settings).encode())
    return h.hexdigest()


def _last(losses: list[float]) -> float | None:
    ok = [v for v in losses if not math.isnan(v)]
    return float(np.mean(ok[-10:])) if ok else None


def _with_slopes(
    table: pd.DataFrame,
    adjust: aph.CovariateAdjustment | None,
    config: SynthConfig,
    details: dict[str, Any],
) -> pd.DataFrame:
    """The final synthetic rows with the released covariate slopes
    (``details["covariate_slopes"]``): each row's analysis phenotype gains ``step . (x -
    mean x)`` in its covariate columns ``x`` (post-processing). The rows' own slope is the
    adjustment's (their residuals are its least-squares residuals, which the pairing and
    :func:`_relocate` only permute and scale), so they end with the released one. A GWAS
    adjusted for these covariates is unchanged: the added term lies in their span."""
    info = details.get("covariate_slopes")
    if info is None or adjust is None or "phenotype_prevalence" in details:
        return table  # (a 0/1 phenotype's rows were drawn to the slopes: _draw_rows)
    x, _ = adjust.design(table)
    out = table.copy()
    y = out[config.pheno].to_numpy(dtype=np.float64, na_value=np.nan)
    step = np.subtract(info["released"], info["synthetic_model"])
    out[config.pheno] = y + (x - x.mean(axis=0)) @ step
    return out


def substream(seed: int, tag: int) -> np.random.Generator:
    """A generator of its own for one use of ``seed`` (``tag`` >= 1 names the use): the
    stream of ``SeedSequence([seed, tag])``. Tag 0 is refused: numpy drops trailing zero
    words of entropy, so ``SeedSequence([seed, 0])`` is ``SeedSequence(seed)`` and would
    repeat the stream of ``default_rng(seed)`` (two mechanisms drawing the same noise)."""
    if tag < 1:
        raise ValueError(f"substream tags start at 1 (tag 0 repeats the seed's stream), got {tag}")
    return np.random.default_rng((seed, tag))


class Streams:
    """The random streams of one synthesis, each handed out once.

    ``seeds`` are :func:`mechanism_seeds`' eight. ``stream(k, use)`` is
    ``default_rng(seeds[k])`` and ``seed(k, use)`` the seed itself, for a consumer that builds
    its own streams from it (the same root: they count as one); ``stream(k, use, tag)`` is
    :func:`substream`. A stream asked for twice is a :class:`RuntimeError` naming both uses:
    two mechanisms drawing the same noise would void the ledger's composition, which takes
    their noise as independent."""

    def __init__(self, seeds: Sequence[int]) -> None:
        self.seeds = list(seeds)
        self._taken: dict[tuple[int, int], str] = {}

    def _take(self, k: int, tag: int, use: str) -> None:
        if (k, tag) in self._taken:
            raise RuntimeError(
                f"random stream ({k}, {tag}) handed out twice: to {self._taken[k, tag]} and "
                f"to {use}"
            )
        self._taken[k, tag] = use

    def seed(self, k: int, use: str) -> int:
        self._take(k, 0, use)
        return self.seeds[k]

    def stream(self, k: int, use: str, tag: int = 0) -> np.random.Generator:
        self._take(k, tag, use)
        return substream(self.seeds[k], tag) if tag else np.random.default_rng(self.seeds[k])


def mechanism_seeds(config: SynthConfig) -> tuple[list[int], str]:
    """``(seeds, source)``: the eight seeds of one synthesis's random streams (mechanism
    noise, Poisson batches, sampling) and where they come from (for ``details``).

    Under DP they must not be a function of anything published: by default fresh OS
    entropy mixed with ``config.seed``, recorded nowhere (two runs of one configuration
    draw different noise: each is a release of its own). :data:`NOISE_SEED_ENV` fixes them
    for tests and benchmarks. Without formal privacy: ``config.seed`` alone (reproducible).
    In secure mode every mechanism draws its noise from the OS CSPRNG itself, so these
    seeds drive post-processing only and :data:`NOISE_SEED_ENV` fixes nothing."""
    fixed = fixed_noise()
    if not config.private:
        root, source = np.random.SeedSequence(config.seed), "the configuration's seed"
    elif config.secure:  # no noise comes from these seeds: NOISE_SEED_ENV fixes nothing
        root = np.random.SeedSequence([secrets.randbits(128), config.seed])
        source = "the OS CSPRNG, drawn by every mechanism itself (secure mode)"
    elif fixed == "seed":
        root = np.random.SeedSequence(config.seed)
        source = (
            f"the configuration's seed ({NOISE_SEED_ENV}=seed: tests only; the noise can be "
            "regenerated by anyone who knows the seed)"
        )
    elif fixed:
        try:
            secret = int(fixed)
        except ValueError as err:
            raise ConfigError(
                f"{NOISE_SEED_ENV} must be 'seed' or an integer, got {fixed!r}"
            ) from err
        root = np.random.SeedSequence([abs(secret), config.seed])
        source = f"a fixed secret ({NOISE_SEED_ENV}; benchmarks only)"
    else:
        root = np.random.SeedSequence([secrets.randbits(128), config.seed])
        source = "fresh OS entropy (recorded nowhere)"
    return [int(s) for s in root.generate_state(8)], source


def fixed_noise_assumption(config: SynthConfig) -> str | None:
    """The ledger's assumption when :data:`NOISE_SEED_ENV` fixes a DP release's noise (tests
    and benchmarks): the stated (epsilon, delta) then holds only against whoever does not
    know the seed. ``None`` for secret noise or without formal privacy."""
    fixed = fixed_noise()
    if not config.private or not fixed or config.secure:
        return None
    return (
        f"the DP noise was fixed by {NOISE_SEED_ENV}={fixed if fixed == 'seed' else '<secret>'}"
        " (tests and benchmarks only): "
        + (
            "it is derived from the configuration's seed, which the release publishes, so "
            "anyone can regenerate and remove it: no privacy at all"
            if fixed == "seed"
            else "the guarantee holds only against whoever does not know that value"
        )
    )


@contextmanager
def _step(
    timings: dict[str, float], name: str, what: str, echo: Callable[[str], None] | None
) -> Iterator[None]:
    """Time one step of :func:`synthesize` into ``timings[name]``, and announce it (its start
    and its duration) through ``echo`` when given."""
    if echo is not None:
        echo(f"  {what} ...")
    t0 = time.perf_counter()
    yield
    timings[name] = time.perf_counter() - t0
    if echo is not None:
        echo(f"  {what}: done in {timings[name]:.1f} s")


def synthesize(
    members: Cohort,
    config: SynthConfig,
    public: Cohort | None = None,
    *,
    echo: Callable[[str], None] | None = None,
) -> SynthResult:
    """A synthetic cohort of ``config.n_synth`` fresh individuals over the same variants,
    with one privacy ledger for everything learnt from ``members`` (see the module docstring).

    ``members`` must already be QC'd and restricted to the analysis subset; ``public`` (a
    public reference panel) must have the same variants in the same order. ``echo`` takes a
    line per step (its start and its duration): the library itself never prints.
    """
    n = members.n_samples
    if n < 10:
        raise CohortError(f"{n} member samples are too few to synthesize from (need >= 10)")
    members.require_phenotypes([config.pheno, *config.covariates])
    if not observed_rows(members.phenotypes, config.pheno, config.covariates).all():
        # the synthetic sample has them complete (synthesize_phenotypes' ``complete``)
        raise CohortError(
            f"{config.pheno!r} or a covariate has missing values among the members: synthesize "
            "from the analysis subset (dpgenome.cohort.analysis_subset)"
        )
    declared = config.phenotypes.declared
    if declared is not None:  # idempotent: the CLI applies it before QC already
        members = declared.apply(
            members, replace(config.phenotypes, declared=None).resolved_schema()
        )
    # types from the public schema, not the members' values (idempotent after the CLI's)
    members = with_schema_types(members, config.phenotypes)
    empty = [str(c) for c in members.phenotypes.columns[members.phenotypes.isna().all()]]
    if empty:
        # nothing to learn it from: the model would fill a few rows from its prior, and under
        # DP charge bins for a range it cannot know (README: validated input)
        raise CohortError(
            f"phenotype column {empty[0]!r}"
            + (f" (and {len(empty) - 1} more)" if len(empty) > 1 else "")
            + f" has no observed value among the {n} training samples: remove it from the "
            "phenotype table"
        )
    if members.pheno_types[config.pheno] == PhenoType.CATEGORICAL:
        raise CohortError(f"phenotype {config.pheno!r} is categorical; a numeric one is needed")
    cfg = config.validate(n)
    if not cfg.genotype_missingness and not _WARNED["complete"] and np.isnan(members.dosages).any():
        _WARNED["complete"] = True  # once per process, not once per audit retraining
        log.warning(
            "the members miss some genotype calls and the synthetic genotypes will be "
            "complete: genotype_missingness (--genotype-missingness) releases the members' "
            "shares of missing calls under DP and gives the synthetic cohort missing calls"
        )
    if public is not None:
        same = (
            public.n_variants == members.n_variants
            and (
                public.variants["id"].astype(str).to_numpy()
                == members.variants["id"].astype(str).to_numpy()
            ).all()
        )
        if not same:
            raise CohortError(
                "the public panel must have the same variants, in the same order, as the cohort "
                f"({public.n_variants} vs {members.n_variants} variants)"
            )
    timings: dict[str, float] = {}
    details: dict[str, Any] = {}
    panel_calls = None if public is None else public.dosages  # as given: where it misses calls
    if public is not None and np.isnan(public.dosages).any():
        with _step(
            timings, "impute_panel", "filling the public panel's missing calls (public data)", echo
        ):
            imputed = imputed_panel(public)
        public = replace(public, dosages=imputed.dosages)
        details["public_panel_imputation"] = imputed.summary()
    cfg, structure, panel_gram = resolve_ancestry(cfg, public)  # the public panel only
    if cfg.pcs:  # before the ledger is calibrated, let alone charged
        if public is None:
            raise ConfigError(
                f"ancestry_pcs = {cfg.ancestry_pcs} needs a public panel (--public-panel): the "
                "ancestry axes are the panel's"
            )
        if cfg.pcs >= public.n_samples:
            raise ConfigError(
                f"ancestry_pcs = {cfg.ancestry_pcs} principal axes need a public panel of more "
                f"individuals (it has {public.n_samples})"
            )
        if members.variants["chr"].astype(str).nunique() < 2:
            raise ConfigError(
                "ancestry across chromosomes needs at least two chromosomes: a window reads "
                "the scores of the other chromosomes"
            )
    seeds, details["noise_source"] = mechanism_seeds(cfg)
    streams = Streams(seeds)
    if structure is not None:
        details["ancestry"] = {"auto": structure.summary()}
        if echo is not None:
            echo(_structure_line(structure))
    assert cfg.delta is not None and cfg.n_synth is not None

    with _step(timings, "calibrate", "calibrating the noise to the target (epsilon, delta)", echo):
        pheno_cfg = replace(
            cfg.phenotypes,
            seed=streams.seed(3, "the phenotype synthesizer"),
            secure_mode=cfg.secure,
        )
        ledger = calibrated_ledger(members, cfg, has_public=public is not None)
        ledger.assumptions += schema_assumptions(members, cfg)
        if cfg.private:
            ledger.assumptions.append(SECURE_MODE_SCOPE if cfg.secure else FLOAT_NOISE_CAVEAT)
        fixed_noise = fixed_noise_assumption(cfg)
        if fixed_noise is not None:
            ledger.assumptions.append(fixed_noise)
            log.warning("%s", fixed_noise)

    with _step(timings, "structure", "training the genotype structure model", echo):
        model, panel_ancestry = _structure(
            members, public, cfg, ledger, streams, details, gram=panel_gram
        )

    with _step(timings, "sample_genotypes", "sampling the synthetic genotypes", echo):
        scores = member_scores = None
        if panel_ancestry is not None:
            scores, member_scores = _ancestry(
                members,
                panel_ancestry,
                cfg,
                ledger,
                mechanism_noise(
                    cfg.secure and cfg.private,
                    streams.stream(5, "the ancestry release's noise", 3),
                    members.n_samples,
                ),
                streams.stream(4, "the synthetic individuals' ancestry", 3),
                details,
            )
        dosages = sample_dosages(
            model,
            cfg.n_synth,
            streams.stream(4, "the synthetic genotypes"),
            ancestry=scores,
        )

    with _step(
        timings, "phenotypes", "training the phenotype model and sampling the phenotypes", echo
    ):
        # a 0/1 analysis phenotype: more rows than needed, drawn below to the prevalence the
        # association path's released location implies (without that path there is none)
        draw = (
            members.pheno_types[cfg.pheno] == PhenoType.BINARY
            and cfg.association.effective(cfg.private).max_regions > 0
        )
        n_rows = cfg.n_synth * (cfg.phenotype_oversample if draw else 1)
        pheno_table, pheno_types = phenos.synthesize_phenotypes(
            members,
            pheno_cfg,
            noise_multiplier=noise_multiplier(ledger, PHENOTYPES),
            n_synth=n_rows,
            context=(cfg.pheno, *cfg.covariates),
            bins_noise_multiplier=planned_noise(ledger, PHENOTYPE_BINS),
            missing_noise_multiplier=planned_noise(ledger, PHENOTYPE_MISSINGNESS),
            # the members are an analysis subset: its phenotype and covariates are present by a
            # public rule (dpgenome.cohort.analysis_subset), so they are in the synthetic rows too
            complete=(cfg.pheno, *cfg.covariates),
            accounted=None if ledger.no_formal_privacy else asdict(ledger.mechanism(PHENOTYPES)),
            details=details.setdefault("phenotype_model", {}),
        )

    with _step(
        timings,
        "association",
        "releasing the association and pairing phenotype rows with genotypes",
        echo,
    ):
        noise = mechanism_noise(
            cfg.secure and cfg.private,
            streams.stream(5, "the association releases' noise"),
            members.n_samples,
        )
        ancestry_input = None
        if panel_ancestry is not None and releases_ancestry_phenotype(
            cfg, has_public=public is not None
        ):
            assert member_scores is not None  # drawn with the panel's ancestry
            # its own noise stream: the other releases draw what they drew without it
            ancestry_noise = mechanism_noise(
                cfg.secure and cfg.private,
                streams.stream(5, "the ancestry-phenotype release's noise", 4),
                members.n_samples,
            )
            # centred on the synthetic individuals' mean score (a DP output: the released mix)
            centre = panel_ancestry.axes.scores(dosages)[0].mean(axis=0)
            ancestry_input = (member_scores, centre, ancestry_noise)
        regions, adjust, moments = release_association(
            members,
            dosages,
            pheno_table,
            public,
            cfg,
            ledger,
            noise,
            details,
            ancestry_input,
            # its own noise stream, as ancestry-phenotype's
            mechanism_noise(
                cfg.secure and cfg.private,
                streams.stream(5, "the pinned SNPs' release's noise", 5),
                members.n_samples,
            ),
        )
        pheno_table = _draw_rows(
            pheno_table, adjust, cfg, details, streams.stream(3, "the rows' draw", 1)
        )
        if adjust is not None and "phenotype_prevalence" in details:
            # the drawn rows have their own prevalence and slopes: the pairing matches the
            # residual a GWAS of them tests
            adjust = adjust.refit(pheno_table, cfg.pheno)
        splices = []
        if regions and public is not None and cfg.region_genotypes == "public":
            # Selected regions take a public-panel individual's block per synthetic
            # individual: the public panel's long-range LD (which the window model, with its
            # short context, cannot carry across a multi-Mb block) spreads the association across
            # the block as in the population. Public data: no privacy cost. Each block's donor
            # matches the synthetic individual's genotypes just before the region, and the
            # SNPs after it are drawn again given the block (dpgenome.splice: LD across both
            # edges); a donor serves at most ceil(n / panel) synthetic individuals.
            splices += [Splice(r.columns) for r in regions if not r.redraw]
        redraw_rng = streams.stream(7, "the redrawn lead SNPs", 1)
        for r in (r for r in regions if r.redraw):
            # a lead release's column at its released frequency (post-processing)
            freq = r.center / 2.0
            values = redraw_rng.binomial(2, freq, size=(len(dosages), len(freq)))
            splices.append(Splice(r.columns, values.astype(np.float32)))
        if splices:
            dosages, details["splice"] = splice_regions(
                model,
                dosages,
                members.variants,
                splices,
                streams.stream(7, "the region splices"),
                panel=None if public is None else public.dosages,
                join_edges=cfg.join_region_edges,
                ancestry=scores,
            )
            served = details["splice"]["most_served_by_one_donor"]
            if public is not None and cfg.n_synth > public.n_samples and served > 1:
                log.warning(
                    "%d synthetic individuals but a public panel of %d: each panel "
                    "individual's block at a selected region serves up to %d of them",
                    cfg.n_synth,
                    public.n_samples,
                    served,
                )
        matched_ancestry = None
        if moments is not None and panel_ancestry is not None:
            # the synthetic individuals' own whole-genome scores (their final genotypes)
            matched_ancestry = (
                moments.columns(panel_ancestry.axes.scores(dosages)[0]),
                moments.kept,
            )
        order, pairing = _pairing(
            dosages,
            pheno_table,
            pheno_types,
            regions,
            adjust,
            cfg,
            streams.seed(6, "the pairing"),
            ancestry=matched_ancestry,
        )
        if matched_ancestry is not None and adjust is not None:
            paired = pheno_table.iloc[order].reset_index(drop=True)
            details["ancestry"]["phenotype"]["synthetic"] = [
                round(float(v), 5)
                for v in assoc.tested_cross_moments(
                    matched_ancestry[0],
                    adjust.residual(paired, cfg.pheno),
                    adjust.complete(paired, cfg.pheno),
                )
            ]
        pheno_table = _relocate(
            pheno_table.iloc[order].reset_index(drop=True), adjust, cfg, details
        )
        pheno_table = _with_slopes(pheno_table, adjust, cfg, details)
        if "covariate_slopes" in details and adjust is not None:
            # the final rows' own least-squares slopes, on the columns the slopes were released on
            final = adjust.refit(pheno_table, cfg.pheno)
            details["covariate_slopes"]["synthetic"] = [float(v) for v in final.coef[1:]]
        details["pairing"] = pairing
        if "matching_relative_residual" in pairing:
            details["association"]["matching_relative_residual"] = pairing.pop(
                "matching_relative_residual"
            )

    if cfg.genotype_missingness:
        with _step(timings, "missing_calls", "releasing the members' missing-call shares", echo):
            release = callrates.release_call_rates(
                members.dosages,
                panel_calls,
                noise_multiplier=noise_multiplier(ledger, GENOTYPE_MISSINGNESS),
                # its own noise stream: the other releases draw what they drew without it
                noise=mechanism_noise(
                    cfg.secure and cfg.private,
                    streams.stream(5, "the missing-call release's noise", 6),
                    members.n_samples,
                ),
            )
            # last: the pairing and the splices read complete genotypes
            dosages = release.apply(dosages, streams.stream(7, "the missing calls' draw", 2))
            details["genotype_missingness"] = release.summary() | {
                "synthetic_missing_share": round(float(np.isnan(dosages).mean()), 6)
            }

    variants = members.variants.copy()
    if cfg.private:
        # a per-SNP quality (an imputation INFO / R2 score, the study map's quality) is a
        # statistic of the members' own dosages, charged to no mechanism: not carried over
        variants["quality"] = np.nan
    cohort = Cohort(
        dosages,
        variants,
        # under DP the ids do not look at the members' (avoiding a member's id would tell
        # whether one is called SYN000001); without formal privacy they avoid them
        synthetic_samples(cfg.n_synth, avoid=() if cfg.private else members.sample_ids),
        pheno_table.reset_index(drop=True),
        dict(pheno_types),
        source=f"dpgenome.synthesize({ledger.label}, seed={cfg.seed})",
    )
    details["windows"] = model.layout.n_windows
    return SynthResult(cohort, ledger, cfg, timings, details)
