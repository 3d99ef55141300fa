"""The DP synthesizer of a whole cohort: genotype structure + phenotypes + association, one ledger.

``synthesize(members, config, public)`` runs up to eight kinds of mechanism on the members,
calibrated *together* to the target ``(epsilon, delta)`` before any of them touches the data
(:func:`dpgenome.accountant.calibrate`, tight RDP/PLD composition):

1. ``genotype-structure`` (DP-SGD): the grouped window model of :mod:`dpgenome.model`, all
   windows one mechanism. Without a public panel it is trained from scratch by DP-SGD. With
   one, the model is pretrained on the panel (no privacy cost); a DP-SGD fine-tune on the
   members (only the per-SNP biases: low-dimensional) is available (``finetune_steps``) but
   off by default, see :class:`SynthConfig` -- then this mechanism is absent.
2. ``phenotypes`` (DP-SGD): the phenotype synthesizer of :mod:`dpgenome.phenotypes` on every
   phenotype column (analysis phenotype and covariates included). ``phenotype-bins``
   (Gaussian, two histograms per column): the bins of each continuous column the public
   schema lacks (:func:`dpgenome.phenotypes.dp_bins`); absent when the schema covers them all.
   ``phenotype-missingness`` (Gaussian, one histogram): which columns are missing together,
   over the public table's missingness patterns (:mod:`dpgenome.missingness`); absent when
   no public pattern governs the columns.
3. ``phenotype-centre`` (Gaussian, two numbers): the mean and second moment of the
   standardised, clipped analysis phenotype, so that SNP scores are centred and scaled
   whatever the reference allele frequencies and the synthetic phenotype's spread
   (:func:`dpgenome.association.normalise_phenotype`). A 0/1 analysis phenotype's
   prevalence is read off the released mean (:func:`dpgenome.association.released_prevalence`)
   and the synthetic rows are drawn to it from ``phenotype_oversample`` times as many
   sampled rows (:func:`_draw_rows`, post-processing): the DP phenotype model alone can miss
   it by a factor of three. A continuous one's residuals take the released mean and scale
   (:func:`dpgenome.association.released_affine`, :func:`_relocate`, post-processing).
   ``covariate-slopes`` (Gaussian, one number per covariate column; an analysis phenotype
   with covariates): the slopes of the members' phenotype on the covariates
   (:func:`dpgenome.association.release_covariate_slopes`), given to the final synthetic
   rows (post-processing): a continuous phenotype's rows gain the released slope as a term in
   their covariates (:func:`_with_slopes`; a GWAS with those covariates is unchanged by it), a
   0/1 phenotype's rows are drawn to it with the prevalence (:func:`_draw_rows`,
   :mod:`dpgenome.draw`).
4. ``region-selection`` (exponential mechanism, one per round) and ``region-test`` (Laplace,
   one query per round): the private choice of associated regions
   (:mod:`dpgenome.association`: rounds of noisy max + noisy threshold), scores standardised
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
   (:func:`region_sigma`). Synthetic phenotype rows are then assigned to
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
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch

from dpgenome import ancestry as anc
from dpgenome import association as assoc
from dpgenome import callrates
from dpgenome import phenotypes as phenos
from dpgenome.accountant import (
    DpSgdMechanism,
    ExponentialMechanism,
    GaussianMechanism,
    LaplaceMechanism,
    Ledger,
    Planned,
    PlannedDpSgd,
    PlannedGaussian,
    PlannedPure,
    calibrate,
    default_delta,
)
from dpgenome.cohort import Cohort, PhenoType, category_levels, design_matrix, observed_rows
from dpgenome.dpsgd import check_ran
from dpgenome.draw import draw_with_prevalence
from dpgenome.errors import CohortError, ConfigError
from dpgenome.gwas import lambda_gc, linear_scan
from dpgenome.histogram import planned_histogram
from dpgenome.impute import Imputed, impute_nearest
from dpgenome.model import WindowLayout, WindowModel, make_layout
from dpgenome.noise import (
    NOISE_SEED_ENV,
    Noise,
    default_secure_mode,
    fixed_noise,
    mechanism_noise,
)
from dpgenome.phenoschema import data_typed_assumption, typed_from_data, with_schema_types
from dpgenome.sample import sample_dosages, synthetic_samples
from dpgenome.splice import Splice, splice_regions
from dpgenome.train import TrainConfig, train

log = logging.getLogger(__name__)

STRUCTURE = "genotype-structure"

#: what ``secure_mode`` covers, as the ledger of a release made with it states
SECURE_MODE_SCOPE = (
    "secure mode: the DP-SGD runs' noise and Poisson batches come from the OS CSPRNG "
    "(os.urandom, four summed floating-point Gaussians, as Opacus's secure mode); every other "
    "mechanism is sampled exactly in integer arithmetic from the OS CSPRNG (dpgenome.noise): "
    "Gaussian steps by the discrete Gaussian on a power-of-two grid (Canonne, Kamath & "
    "Steinke 2020; its Renyi divergence is the continuous Gaussian's, which the reported "
    "epsilon bounds), Laplace steps by the integer part of Laplace noise on that grid "
    "(post-processing of the Laplace mechanism), the exponential mechanism by exact rejection "
    "sampling; their scales are widened by at least 2^-20 to cover the grid's rounding and "
    "that of the floating-point sums. Not covered: timing side channels"
)
#: the ledger's caveat when secure mode is off (--no-secure-mode) under DP
FLOAT_NOISE_CAVEAT = (
    "not in secure mode: every mechanism's noise is numpy's floating-point sampling from a "
    "seeded generator; the low bits of a noisy floating-point value can reveal the value it "
    "hides (Mironov 2012), which the reported epsilon does not cover. For a release that "
    "leaves the institution use secure mode (the default)"
)
PHENOTYPES = "phenotypes"
PHENOTYPE_BINS = "phenotype-bins"
PHENOTYPE_MISSINGNESS = "phenotype-missingness"
ASSOCIATION = "region-association"
CENTRE = "phenotype-centre"
SLOPES = "covariate-slopes"
SELECTION = "region-selection"
TEST = "region-test"
ANCESTRY = "ancestry"
#: ``SynthConfig.ancestry_pcs``: chosen from the public panel (:func:`resolve_ancestry`)
AUTO = "auto"
ANCESTRY_PHENOTYPE = "ancestry-phenotype"
GENOTYPE_MISSINGNESS = "genotype-missingness"
REGION_SNPS = "region-snps"


@dataclass(frozen=True)
class SynthConfig:
    """Everything that determines a synthetic release (with the seed, it is reproducible).

    Budget split: DP-SGD and Gaussian mechanisms get noise ``s / weight`` for one common scale
    ``s`` found by calibration; each selection round spends ``select_fraction`` and each
    threshold test ``test_fraction`` of the target epsilon, up to a cap (pure DP: an
    exponential mechanism and a Laplace query).
    """

    pheno: str
    covariates: tuple[str, ...] = ()
    epsilon: float = 8.0
    delta: float | None = None
    seed: int = 0
    n_synth: int | None = None
    #: exact samplers and OS-CSPRNG noise for every mechanism (dpgenome.noise); ``None``:
    #: on unless the noise is fixed for tests (:func:`dpgenome.noise.default_secure_mode`)
    secure_mode: bool | None = None
    # structure model (public map windows)
    #: windows of ``window`` SNPs, each SNP also reading the last ``context`` SNPs of the
    #: previous window. 32 / 32 since stop 52 (16 / 8 before): once the model kept its
    #: heterozygotes (stop 51) its LD decayed too fast, the unphased chain losing phase at
    #: each heterozygote, and a longer reach carries it further. Pretrained on a simulated
    #: panel (chromosomes 11 and 19, 1,000 mice) and sampled, against 960 members, the
    #: LD-decay error to 1 Mb: 0.069 (16 / 8, 600 steps at lr 0.02), 0.042 (16 / 16), 0.033
    #: (32 / 16), 0.024 (32 / 32), 0.023 (64 / 32), 0.025 (64 / 64, 300 steps at 0.04);
    #: mean r^2 at 1 Mb 0.064 / 0.127 / real 0.152. A training step costs 22% more
    #: (0.44 s of CPU at 1,000 x 79,645 for 0.36 s), so the pretraining takes 300 steps at lr
    #: 0.04 (0.027; 600 at 0.02: 0.024; 300 at 0.02: 0.033), less time than before.
    #: Without a panel the model trained on the members has its own (``structure_window``)
    window: int = 32
    context: int = 32
    pretrain_steps: int = 300
    pretrain_sample_rate: float = 0.1
    pretrain_lr: float = 0.04
    #: input dropout of the public pretraining (:attr:`dpgenome.model.WindowModel.input_dropout`).
    #: Off. 0.02 takes a sixth off the LD-decay error (0.021-0.023 for 0.025-0.027) for twice
    #: the synthetic F (0.007-0.012 for 0.002-0.007), and on 60 paired bench runs
    #: (stop 57) it moved no recall or precision beyond the draws' spread but made one
    #: spurious locus at epsilon 3 (none without it) and fewer demo draws at precision >= 0.8
    #: (4 of 10 for 6): docs/tuning-history.md, stops 56-57
    pretrain_input_dropout: float = 0.0
    #: seed of the public pretraining (public data only): fixed apart from ``seed`` so that a
    #: release, its audit retrainings and a sweep's points share one pretrained model
    pretrain_seed: int = 0
    #: without a public panel the model is trained from scratch on the members (by DP-SGD,
    #: or without noise at epsilon inf) on windows of ``structure_window`` SNPs reading
    #: ``structure_context`` before them: DP-SGD's noise grows with the parameters, and 32 /
    #: 32 (twice as many) did worse at epsilon 3 on the bench's cohort 1 without a panel
    #: (allele-frequency correlation 0.044 for 0.115, F 0.37 for 0.17; one synthesis each)
    structure_window: int = 16
    structure_context: int = 8
    structure_steps: int = 300
    structure_sample_rate: float = 0.1
    structure_lr: float = 0.02
    structure_clip: float = 5.0
    #: DP fine-tune after public pretraining. Off by default: at n ~ 1,000 and 80k SNPs the
    #: per-coordinate signal-to-noise of a DP-SGD bias update is ~0.04 per step (clipped
    #: per-sample gradient spread over 80k coordinates vs noise sigma * C / B on each), so
    #: the fine-tune adds noise and spends budget better used by the association release.
    finetune_steps: int = 0
    finetune_sample_rate: float = 0.5
    finetune_lr: float = 0.01
    finetune_clip: float = 5.0
    finetune_trainable: Literal["all", "bias"] = "bias"
    structure_weight: float = 1.0
    #: ancestry across chromosomes (:mod:`dpgenome.ancestry`; with a public panel only):
    #: every window reads ``ancestry_pcs`` scores on the panel's principal axes (weights
    #: learnt in the public pretraining), and the synthetic individuals' scores follow the
    #: members' mix of ``ancestry_clusters`` panel clusters (``ancestry`` Gaussian histogram,
    #: ``ancestry_weight``). 0: off (each chromosome is then drawn on its own). ``"auto"``
    #: (the default): chosen from the public panel alone (:func:`dpgenome.ancestry.
    #: detect_structure`: 4 when its two genome halves share structure, else 0; 0 without a
    #: panel), before the ledger is planned
    ancestry_pcs: int | Literal["auto"] = "auto"
    ancestry_clusters: int = 8
    ancestry_weight: float = 1.0
    #: with ancestry on and the association path on: the phenotype follows ancestry too
    #: (``ancestry-phenotype``: the phenotype's cross-moments with the members' ancestry
    #: scores, the phenotype clipped as the region release clips it and each member's score
    #: vector to norm ``ancestry_score_clip`` in panel sds, matched by the pairing), weight
    #: ``ancestry_phenotype_weight``
    ancestry_phenotype: bool = True
    ancestry_phenotype_weight: float = 2.0
    ancestry_score_clip: float = 2.0
    # phenotype synthesizer (its seed and secure mode are set from this config)
    phenotypes: phenos.PhenotypeConfig = field(default_factory=phenos.PhenotypeConfig)
    #: the phenotype synthesizer's DP-SGD (300 steps at sample rate 0.27) took ~45% of the
    #: Gaussian budget at weight 1 (mu^2 0.21 of 0.47 at epsilon 3). At 0.5 the association
    #: release's noise multiplier drops from 3.40 to 2.79 at epsilon 3 (1.24 to 1.01 at 10)
    #: and the phenotype-centre one from 10.2 to 8.4, for a phenotype-correlation error of
    #: 0.106 instead of 0.100 (0.090 instead of 0.080 at epsilon 10; four seeds). The bench's
    #: two 960-member cohorts, ten noise seeds each (bench/synth.py): both planted loci at
    #: epsilon 3 in 17 of 20 runs (15 at weight 1), recall / precision 0.68 / 0.81 and
    #: 0.62 / 0.71 (0.68 / 0.70 and 0.63 / 0.66); epsilon 10: both in 20 of 20, none
    #: spurious, recall >= 0.5 in 19 of 20 (as at weight 1).
    #: 0.45 since stop 50: the missingness-pattern histogram (weight 1, noise multiplier 8.5
    #: at epsilon 3) takes its budget from the phenotype synthesizer's DP-SGD (16.98 ->
    #: 18.87), so that the association and phenotype-centre releases keep theirs (2.83 and
    #: 8.49 at epsilon 3, 6.92 and 20.7 at 1, 1.03 -> 1.026 at 10; 960 members, SW16)
    phenotype_weight: float = 0.45
    #: a 0/1 analysis phenotype is sampled this many times over and ``n_synth`` rows are
    #: drawn to its released prevalence and covariate slopes (:func:`_draw_rows`). 4 covers a
    #: model prevalence a quarter of the released one, but not a slope on a rare 0/1
    #: covariate: abBMD's on SW16 (4% of mice) needs ~3x SW16's share among the cases, and
    #: at 4 the draws fell short of the released slope (0.38 for 0.64 at epsilon 3,
    #: bench/slopes.py; 0.64 at 8)
    phenotype_oversample: int = 8
    # association
    association: assoc.AssociationConfig = field(default_factory=assoc.AssociationConfig)
    #: per selection round, the noisy max spends ``select_fraction`` and the threshold test
    #: ``test_fraction`` of the target epsilon, at most ``select_epsilon_max`` and
    #: ``test_epsilon_max``: the selection needs a signal-to-noise, not a share, and every
    #: epsilon beyond it is taken from the association release. Selection-only simulation
    #: (two simulated 960-member cohorts, 300 noise draws): at epsilon 3, 0.12 / 0.075 select
    #: both planted loci in 0.92 of draws (0.1 / 0.05: 0.66-0.69) with *less* association
    #: noise than the former 0.1 / 0.05 under the former lumped accounting (noise multiplier
    #: 4.28 vs 4.61). At epsilon 10 the caps keep the former per-round 1.0 / 0.5 (noise
    #: multiplier 1.48, was 1.71): 0.5 / 0.3 (1.18) still selected both planted loci but
    #: rarely the second half of a long chr-11 block (0.06 of draws instead of 0.32), and
    #: cohort 1 lost 4-Mb loci and recall (bench/synth.py, 0.55 instead of 0.67)
    select_fraction: float = 0.12
    test_fraction: float = 0.075
    select_epsilon_max: float = 1.0
    test_epsilon_max: float = 0.5
    #: the association release decides the GWAS fidelity: three times the weight (a third of
    #: the noise multiplier) of the phenotype-centre release, six times the phenotype
    #: synthesizer's (tuned in bench/synth.py)
    association_weight: float = 3.0
    #: genotypes inside selected regions: "public" copies a public-panel individual's block
    #: (long-range LD of the population, no privacy cost), "model" keeps the window model's
    region_genotypes: Literal["public", "model"] = "public"
    #: join a region's new genotypes to the model's on both sides (dpgenome.splice: donors
    #: matched on the SNPs before the region, the SNPs after it drawn again); False: random
    #: donors, cut edges (before stop 51)
    join_region_edges: bool = True
    #: missing genotype calls (:mod:`dpgenome.callrates`): the members' shares of missing
    #: calls per individual released (``genotype-missingness``, one Gaussian histogram of
    #: weight ``genotype_missingness_weight``) and the synthetic genotypes missing calls to
    #: match, spread over SNPs as the public panel misses them. Off by default: whether to
    #: spend budget on it is the data steward's call (a complete cohort gains nothing),
    #: not a peek at the members. At 0.5 it costs the other releases under 1% of their noise
    genotype_missingness: bool = False
    genotype_missingness_weight: float = 0.5

    @property
    def pcs(self) -> int:
        """``ancestry_pcs`` as a number: a configuration whose ``"auto"`` was resolved
        (:func:`resolve_ancestry`, before any ledger is planned)."""
        if self.ancestry_pcs == AUTO:
            raise ValueError("ancestry_pcs 'auto' is resolved from the public panel first")
        return int(self.ancestry_pcs)

    def validate(self, n_members: int) -> SynthConfig:
        """A checked copy with ``delta``, ``n_synth`` and ``secure_mode`` resolved for
        ``n_members``."""
        if not (self.epsilon > 0):
            raise ConfigError(f"epsilon must be > 0 or inf, got {self.epsilon!r}")
        delta = default_delta(n_members) if self.delta is None else float(self.delta)
        if not 0.0 < delta < 1.0:
            raise ConfigError(f"delta must be in (0, 1), got {self.delta!r}")
        n_synth = n_members if self.n_synth is None else int(self.n_synth)
        if n_synth < 1:
            raise ConfigError(f"the synthetic cohort needs at least 1 sample, got {n_synth}")
        if (
            not (
                self.ancestry_pcs == AUTO
                or (isinstance(self.ancestry_pcs, int) and not isinstance(self.ancestry_pcs, bool))
            )
            or not isinstance(self.ancestry_clusters, int)
            or (self.ancestry_pcs != AUTO and int(self.ancestry_pcs) < 0)
            or self.ancestry_clusters < 1
        ):
            raise ConfigError(
                f"ancestry_pcs must be 'auto' or >= 0 and ancestry_clusters >= 1, got "
                f"{self.ancestry_pcs!r} and {self.ancestry_clusters!r}"
            )
        for name in (
            "structure_weight",
            "phenotype_weight",
            "association_weight",
            "ancestry_weight",
            "ancestry_phenotype_weight",
            "ancestry_score_clip",
            "genotype_missingness_weight",
        ):
            if not (getattr(self, name) > 0 and math.isfinite(getattr(self, name))):
                raise ConfigError(f"{name} must be finite and > 0, got {getattr(self, name)!r}")
        if not 0.0 <= self.pretrain_input_dropout < 0.5:
            raise ConfigError(
                f"pretrain_input_dropout must be in [0, 0.5), got {self.pretrain_input_dropout!r}"
            )
        if self.phenotype_oversample < 1:
            raise ConfigError(
                f"phenotype_oversample must be >= 1, got {self.phenotype_oversample!r}"
            )
        if not (0 <= self.select_fraction and 0 <= self.test_fraction):
            raise ConfigError("select_fraction and test_fraction must be >= 0")
        if not (self.select_epsilon_max > 0 and self.test_epsilon_max > 0):
            raise ConfigError("select_epsilon_max and test_epsilon_max must be > 0")
        if (
            math.isfinite(self.epsilon)
            and self.association.max_regions
            and not (self.select_fraction > 0 and self.test_fraction > 0)
        ):
            raise ConfigError("selection needs select_fraction > 0 and test_fraction > 0")
        return replace(
            self,
            delta=delta,
            n_synth=n_synth,
            covariates=tuple(self.covariates),
            secure_mode=self.secure,
        )

    @property
    def secure(self) -> bool:
        """``secure_mode`` as resolved (:meth:`validate`); an unresolved ``None`` reads as
        its default."""
        return default_secure_mode() if self.secure_mode is None else self.secure_mode

    @property
    def private(self) -> bool:
        return math.isfinite(self.epsilon)

    def record(self) -> dict[str, Any]:
        declared = self.phenotypes.declared
        rec = asdict(replace(self, phenotypes=replace(self.phenotypes, declared=None)))
        rec["epsilon"] = None if not self.private else self.epsilon
        rec["phenotypes"]["declared"] = None if declared is None else declared.record()
        return rec


@dataclass
class SynthResult:
    cohort: Cohort
    ledger: Ledger
    config: SynthConfig
    timings: dict[str, float]
    #: aggregates only (no individual-level data): selected regions, training diagnostics
    details: dict[str, Any] = field(default_factory=dict)


# ---------------------------------------------------------------------------- plan


def plan(
    config: SynthConfig,
    n: int,
    *,
    has_public: bool,
    phenotype_plan: PlannedDpSgd,
    bins_plan: PlannedGaussian | None = None,
    slopes: bool = False,
    missingness_plan: PlannedGaussian | None = None,
    pinned: bool = True,
) -> list[Planned]:
    """The mechanisms of one release, fixed before any private data is read. ``slopes``:
    the release holds the covariate slopes (:func:`releases_slopes`, from the schema);
    ``pinned``: the ``region-snps`` release when the config asks for it (see
    :func:`calibrated_ledger`)."""
    steps, rate, clip = (
        (config.finetune_steps, config.finetune_sample_rate, config.finetune_clip)
        if has_public
        else (config.structure_steps, config.structure_sample_rate, config.structure_clip)
    )
    out: list[Planned] = []
    if steps > 0:
        out.append(PlannedDpSgd(STRUCTURE, rate, steps, config.structure_weight, clip))
    if has_public and config.pcs:
        out.append(
            planned_histogram(
                ANCESTRY,
                config.ancestry_weight,
                f"ancestry: one histogram over the public panel's ancestry clusters "
                f"({config.pcs} axes)",
            )
        )
    if config.genotype_missingness:
        out.append(
            planned_histogram(
                GENOTYPE_MISSINGNESS,
                config.genotype_missingness_weight,
                "genotype-missingness: one histogram of the members' shares of missing "
                f"genotype calls over {callrates.n_bins()} public bins",
            )
        )
    out.append(replace(phenotype_plan, weight=config.phenotype_weight))
    if releases_ancestry_phenotype(config, has_public=has_public):
        out.append(
            PlannedGaussian(
                ANCESTRY_PHENOTYPE,
                count=1,
                sensitivity=anc.phenotype_moments_sensitivity(
                    config.association.effect_y_clip, config.ancestry_score_clip
                ),
                weight=config.ancestry_phenotype_weight,
                note="ancestry-phenotype: the phenotype's cross-moments with the "
                f"{config.pcs} ancestry scores",
            )
        )
    if bins_plan is not None:
        out.append(bins_plan)
    if missingness_plan is not None:
        out.append(missingness_plan)
    a = config.association
    if a.max_regions:
        # per round a noisy max (Gumbel: an exponential mechanism, bounded range) and a
        # noisy threshold (a Laplace query), composed with everything else by the accountants
        eps_select = min(config.select_fraction * config.epsilon, config.select_epsilon_max)
        eps_test = min(config.test_fraction * config.epsilon, config.test_epsilon_max)
        out.append(
            PlannedPure(SELECTION, epsilon=eps_select, count=a.max_regions, kind="exponential")
        )
        out.append(PlannedPure(TEST, epsilon=eps_test, count=a.max_regions, kind="laplace"))
        out.append(PlannedGaussian(CENTRE, 1, assoc.centre_sensitivity(a.y_clip), a.center_weight))
        if slopes:
            out.append(
                PlannedGaussian(
                    SLOPES,
                    1,
                    assoc.covariate_sensitivity(a.y_clip, a.covariate_clip),
                    a.covariate_weight,
                )
            )
        y_bound = min(a.effect_y_clip, a.y_clip)
        note = (
            f"planned for {a.max_regions} regions (count); when the threshold tests pass "
            f"r < {a.max_regions}, each of the r released regions gets the noise multiplier "
            f"times sqrt(r / {a.max_regions}): the same Gaussian mechanism (mu^2 = count / "
            "noise multiplier^2), so the same epsilon"
        )
        if not has_public and a.no_panel_release != "components":
            # without a panel a region may be one lead SNP (release_lead): another sensitivity,
            # the same multiplier (the noise of each query is scaled to its own)
            lead = y_bound * math.sqrt(1.0 + a.lead_count_weight**2)
            note += (
                f"; per region: {a.z_clip * y_bound:.4g} (z_clip x phenotype bound) for a "
                f"components release, {lead:.4g} (phenotype bound x sqrt(1 + "
                f"{a.lead_count_weight:g}^2)) for a lead-SNP release; each region's noise sd is "
                "the noise multiplier times its own sensitivity"
            )
        out.append(
            PlannedGaussian(
                ASSOCIATION,
                a.max_regions,
                a.z_clip * y_bound,
                config.association_weight,
                note,
            )
        )
        if pinned and a.pinned_snps and config.private:
            out.append(
                PlannedGaussian(
                    REGION_SNPS,
                    a.max_regions,
                    assoc.pin_clip(a.pinned_snps, a) * y_bound,
                    a.pinned_weight,
                    f"region-snps: per region the cross-moments of up to {a.pinned_snps} SNPs "
                    "chosen from the released effect (each member's standardised dosages "
                    f"clipped to norm sqrt(k) x {a.z_clip_per_component:g}, k the SNPs "
                    "released, the noise scaled to that sensitivity); planned for "
                    f"{a.max_regions} regions, the released ones share it as region-association's",
                )
            )
    return out


def releases_ancestry_phenotype(config: SynthConfig, *, has_public: bool) -> bool:
    """Whether a release holds the ``ancestry-phenotype`` mechanism: ancestry on (with a
    public panel) and the association path on (configuration only)."""
    return bool(
        has_public
        and config.pcs
        and config.ancestry_phenotype
        and config.association.effective(config.private).max_regions
    )


def releases_slopes(config: SynthConfig, types: dict[str, PhenoType]) -> bool:
    """Whether a release holds the ``covariate-slopes`` mechanism: a numeric (continuous or
    0/1) analysis phenotype, at least one covariate, and the association path on (schema and
    configuration only)."""
    a = config.association
    return bool(
        a.covariate_slopes
        and a.max_regions
        and config.covariates
        and types.get(config.pheno) in (PhenoType.CONTINUOUS, PhenoType.BINARY)
    )


def schema_assumptions(members: Cohort, config: SynthConfig) -> list[str]:
    """The ledger's assumptions about the phenotype schema of this release (under DP): the
    declaration file it used, and the columns whose type was read from the members' data."""
    if not config.private:
        return []
    out = []
    declared = config.phenotypes.declared
    if declared is not None:
        out.append(
            f"the phenotype types and domains declared in {declared.source} (sha256 "
            f"{declared.digest[:16]}) are public"
        )
    from_data = columns_typed_from_data(members, config)
    if from_data:
        out.append(data_typed_assumption(from_data))
    return out


def columns_typed_from_data(members: Cohort, config: SynthConfig) -> list[str]:
    """The members' phenotype columns whose type nothing public fixes (neither the schema of
    ``config`` nor its declaration file)."""
    pheno = config.phenotypes
    return typed_from_data(members.phenotypes.columns, pheno.resolved_schema(), pheno.declared)


def calibrated_ledger(members: Cohort, config: SynthConfig, *, has_public: bool) -> Ledger:
    """The ledger of a release from ``members`` (its :func:`plan`, calibrated to the target
    epsilon and delta): fixed before any private data is read, from the member count, the
    phenotype schema and ``config`` only. ``config`` must be validated
    (:meth:`SynthConfig.validate`)."""
    if config.delta is None:
        raise ConfigError("calibrated_ledger needs a validated SynthConfig (delta unset)")
    n = members.n_samples
    pheno_cfg = replace(config.phenotypes, secure_mode=config.secure)
    pheno_plan = phenos.planned_dp_sgd(pheno_cfg, n, name=PHENOTYPES)
    bins_plan = phenos.planned_bins(
        list(members.phenotypes.columns), members.pheno_types, pheno_cfg, name=PHENOTYPE_BINS
    )
    missingness_plan = phenos.planned_missingness(
        list(members.phenotypes.columns),
        pheno_cfg,
        (config.pheno, *config.covariates),
        name=PHENOTYPE_MISSINGNESS,
    )

    delta = config.delta

    def calibrated(pinned: bool) -> Ledger:
        return calibrate(
            config.epsilon,
            delta,
            plan(
                config,
                n,
                has_public=has_public,
                phenotype_plan=pheno_plan,
                bins_plan=bins_plan,
                slopes=releases_slopes(config, dict(members.pheno_types)),
                missingness_plan=missingness_plan,
                pinned=pinned,
            ),
            secure_mode=config.secure,
        )

    ledger = calibrated(True)
    sigma = _planned_noise(ledger, REGION_SNPS)
    a = config.association
    y_bound = min(a.effect_y_clip, a.y_clip)
    if sigma is not None and assoc.pinned_noise_z(sigma, a, y_bound, n) > a.pinned_max_noise_z:
        # too noisy at this epsilon and n (public): the budget goes to the other releases
        ledger = calibrated(False)
    return ledger


def noise_multiplier(ledger: Ledger, name: str) -> float | None:
    """The calibrated noise multiplier of ``name`` (``None`` = no formal privacy)."""
    if ledger.no_formal_privacy:
        return None
    m = ledger.mechanism(name)
    if not isinstance(m, DpSgdMechanism | GaussianMechanism):
        raise ConfigError(f"ledger mechanism {name!r} has no noise multiplier")
    return float(m.noise_multiplier)


def _planned_noise(ledger: Ledger, name: str) -> float | None:
    """The noise multiplier of ``name`` when the ledger plans it, else None."""
    if not any(m.name == name for m in ledger.mechanisms):
        return None
    return noise_multiplier(ledger, name)


def region_sigma(sigma: float | None, released: int, planned: int) -> float | None:
    """Noise multiplier of each of ``released`` region releases when the ledger holds
    ``planned`` of them at ``sigma``.

    The regions are released together, after every threshold test: their number is a function
    of earlier DP outputs. ``released`` Gaussian releases at ``sigma * sqrt(released /
    planned)`` form one Gaussian mechanism with ``mu^2 = released / sigma_r^2 = planned /
    sigma^2``: the ledger's privacy loss distribution, whatever the tests decided (adaptive
    composition: the mechanism is the same mu-GDP mechanism for every earlier output). So the
    rounds the tests stopped give their share to the regions that were released.
    """
    if sigma is None or released == 0:
        return sigma
    if not 0 < released <= planned:
        raise ConfigError(f"{released} regions released, but the ledger holds {planned}")
    return sigma * math.sqrt(released / planned)


def _selection_budget(ledger: Ledger, config: SynthConfig) -> tuple[float, float]:
    """``(eps_select, eps_test)`` of each round: the epsilon of one ``region-selection`` step
    (noisy max) and of one ``region-test`` query (noisy threshold); the ledger holds
    ``max_regions`` of each."""
    if ledger.no_formal_privacy:
        return math.inf, math.inf
    k = config.association.max_regions
    select = ledger.mechanism(SELECTION)
    if not (isinstance(select, ExponentialMechanism) and select.count == k):
        raise ConfigError(f"ledger mechanism {SELECTION!r} is not {k} exponential mechanisms")
    test = ledger.mechanism(TEST)
    if not (isinstance(test, LaplaceMechanism) and test.count == k):
        raise ConfigError(f"ledger mechanism {TEST!r} is not {k} Laplace queries")
    return float(select.epsilon), float(test.epsilon)


# ---------------------------------------------------------------------------- pairing


def _draw_rows(
    table: pd.DataFrame,
    adjust: assoc.CovariateAdjustment | None,
    config: SynthConfig,
    details: dict[str, Any],
    rng: np.random.Generator,
) -> pd.DataFrame:
    """``config.n_synth`` of the sampled phenotype rows. A 0/1 analysis phenotype was sampled
    ``phenotype_oversample`` times over; its rows are drawn so that its prevalence is the
    one the released location implies (``details["phenotype_prevalence"]``, from
    :func:`dpgenome.association.released_prevalence`: post-processing) and, with the
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


def _mean_sd(column: pd.Series) -> dict[str, float]:
    x = column.to_numpy(dtype=np.float64, na_value=np.nan)
    return {"mean": float(np.nanmean(x)), "sd": float(np.nanstd(x))}


def _relocate(
    table: pd.DataFrame,
    adjust: assoc.CovariateAdjustment | None,
    config: SynthConfig,
    details: dict[str, Any],
) -> pd.DataFrame:
    """A continuous analysis phenotype with the members' location and scale: each synthetic
    row's covariate-adjusted residual ``r`` becomes ``shift + scale * r``
    (``details["phenotype_location"]``, from :func:`dpgenome.association.released_affine`:
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
    info["synthetic"] = _mean_sd(out[config.pheno])
    return out


def _pairing(
    dosages: np.ndarray,
    table: pd.DataFrame,
    types: dict[str, PhenoType],
    regions: list[assoc.Region],
    adjust: assoc.CovariateAdjustment | None,
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
    (:attr:`dpgenome.association.AssociationConfig.null_draws`)."""
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
    seeds: list[int],
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
    torch.manual_seed(seeds[0])
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
            seed=seeds[2],
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


def _covariate_slopes(
    members: Cohort,
    table: pd.DataFrame,
    adjust: assoc.CovariateAdjustment,
    y_std: np.ndarray,
    unit: float,
    config: SynthConfig,
    ledger: Ledger,
    noise: Noise,
) -> tuple[dict[str, Any], np.ndarray]:
    """The ``covariate-slopes`` release (:func:`dpgenome.association.release_covariate_slopes`):
    the slope that the synthetic rows' adjustment leaves in the members' phenotype ``y_std``
    (adjusted, then centred, scaled and clipped by the ``phenotype-centre`` release; ``unit``
    phenotype units each), per covariate column of the synthetic ``table``. Returns its
    details (:func:`_with_slopes` and :func:`_draw_rows` give the released slope to the
    final rows) and ``y_std`` adjusted for the released step, shrunk by its noise, and
    clipped again (``AssociationConfig.slope_residual``; else ``y_std`` as given)."""
    private = config.private
    a = config.association
    w_synth, names = adjust.design(table)
    w_members = adjust.design(members.phenotypes)[0]
    step, step_sd = assoc.release_covariate_slopes(
        y_std,
        w_members,
        w_synth,
        w_clip=a.covariate_clip if private else None,
        y_clip=a.y_clip if private else None,
        noise_multiplier=noise_multiplier(ledger, SLOPES),
        noise=noise,
    )
    info: dict[str, Any] = {
        "columns": names,
        "synthetic_model": [float(v) for v in adjust.coef[1:]],
        "released": [float(v) for v in adjust.coef[1:] + unit * step],
        "noise_sd": [float(v) for v in unit * step_sd],
    }
    if not a.slope_residual:
        return info, y_std
    # post-processing: each member's value moves by a released step times its own covariates
    # (about the synthetic rows' centre; without formal privacy the members' own: exact)
    kept = assoc.shrink_slopes(step, step_sd)
    info["members_residual_step"] = [float(v) for v in unit * kept]
    centre = (w_synth if private else w_members).mean(axis=0)
    y_adj = y_std - (w_members - centre) @ kept
    return info, (np.clip(y_adj, -a.y_clip, a.y_clip) if private else y_adj)


def _with_slopes(
    table: pd.DataFrame,
    adjust: assoc.CovariateAdjustment | None,
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


def _association(
    members: Cohort,
    synth_dosages: np.ndarray,
    synth_pheno: pd.DataFrame,
    public: Cohort | None,
    config: SynthConfig,
    ledger: Ledger,
    noise: Noise,
    details: dict[str, Any],
    ancestry: tuple[np.ndarray, np.ndarray, Noise] | None = None,
    pin_noise: Noise | None = None,
) -> tuple[list[assoc.Region], assoc.CovariateAdjustment | None, anc.PhenotypeMoments | None]:
    """The association path (module docstring, 3.-5.): the selected regions, the covariate
    adjustment the pairing matches under and, with ``ancestry`` (the members' whole-genome
    ancestry scores, the synthetic individuals' mean score to centre them on, and that
    release's own noise stream), the ``ancestry-phenotype`` release (module docstring, 7.)."""
    a = config.association.effective(config.private)
    if a.max_regions == 0:
        details["association"] = {"regions": [], "max_regions": 0}  # disabled: none released
        return [], None, None
    var = members.variants
    layout = make_layout(var, window=a.window, context=0)  # the selection's windows (public)
    reference_dosages = public.dosages if public is not None else synth_dosages
    adjust = assoc.CovariateAdjustment.fit(
        synth_pheno, members.pheno_types, config.pheno, tuple(config.covariates)
    )
    y_synth = adjust.residual(synth_pheno, config.pheno)
    ok = ~np.isnan(y_synth)
    y_sd = float(y_synth[ok].std()) if ok.sum() > 1 else 1.0
    ref = assoc.Reference(
        alt_freq=np.nanmean(reference_dosages, axis=0) / 2.0, y_mean=0.0, y_sd=max(y_sd, 1e-6)
    )
    private = config.private
    y = adjust.residual(members.phenotypes, config.pheno)
    y_std, loc = assoc.normalise_phenotype(
        assoc.standardise_phenotype(y, ref, a.y_clip if private else None),
        a.y_clip if private else None,
        noise_multiplier(ledger, CENTRE),
        noise,
    )
    binary = members.pheno_types[config.pheno] == PhenoType.BINARY
    y_obs = synth_pheno[config.pheno].to_numpy(dtype=np.float64, na_value=np.nan)[ok]
    fitted = y_obs - y_synth[ok]  # the synthetic rows' [1, covariates] @ coef
    if releases_slopes(config, dict(members.pheno_types)):
        # phenotype units per unit of y_std: a 0/1 phenotype's two values sit apart by a
        # gap the clips shrink
        unit = (
            assoc.binary_slope_unit(fitted, ref, loc, a.y_clip if private else None)
            if binary
            else ref.y_sd * loc.sd
        )
        details["covariate_slopes"], y_std = _covariate_slopes(
            members, synth_pheno, adjust, y_std, unit, config, ledger, noise
        )
    n = members.n_samples
    if binary:
        # the released location implies the members' prevalence (post-processing); the
        # synthetic rows are then drawn to it (synthesize)
        details["phenotype_prevalence"] = {
            "synthetic_model": float(y_obs.mean()),
            "released": assoc.released_prevalence(
                y_obs, fitted, ref, a.y_clip if private else None, loc.mean
            ),
        }
    else:
        # a continuous one takes the released location and scale (post-processing; applied
        # to the final rows by _relocate)
        z = assoc.standardise_phenotype(y_synth[ok], ref, None)
        affine = assoc.released_affine(z, a.y_clip if private else None, loc)
        shift, scale = affine if affine is not None else (0.0, 1.0)
        details["phenotype_location"] = {
            "applied": affine is not None,
            "shift": shift * ref.y_sd,
            "scale": scale,
            "synthetic_model": _mean_sd(synth_pheno[config.pheno]),
        }
    # a 0/1 phenotype without covariates takes two values (minus the fitted intercept)
    two_valued = members.pheno_types[config.pheno] == PhenoType.BINARY and not config.covariates
    values = np.array([0.0, 1.0]) - adjust.coef[0] if two_valued else None
    y_bound = assoc.phenotype_bound(ref, loc, a.y_clip, values) if private else a.y_clip
    x_clip = a.x_clip if private else None
    y_sel_clip = assoc.select_y_bound(a, y_bound) if private else None
    y_sel = y_std if y_sel_clip is None else np.clip(y_std, -y_sel_clip, y_sel_clip)
    # without a panel (under DP) each region is one lead SNP: the noisy max runs over
    # single-SNP windows (public map; the same score sensitivity)
    lead_snps = private and public is None and a.no_panel_release != "components"
    select_layout = make_layout(var, window=1, context=0) if lead_snps else layout
    scores = assoc.window_scores(
        assoc.snp_scores(members.dosages, y_sel, ref.alt_freq, x_clip), select_layout
    )
    sens = assoc.score_sensitivity(a, n, y_bound)
    # null sd of the clipped scores from public inputs only: the reference genotypes, and a
    # standard normal phenotype clipped like the members' with the synthetic missing share
    # (the DP synthetic phenotype's own shape moved the threshold with its tails)
    null_sd = assoc.null_score_sd(
        reference_dosages,
        ref.alt_freq,
        x_clip,
        float(ok.mean()) * assoc.clipped_normal_second_moment(y_sel_clip),
    )
    # the association release clips the phenotype harder (undone by ``kappa`` afterwards)
    effect_bound = min(a.effect_y_clip, y_bound) if private else y_bound
    y_effect = np.clip(y_std, -effect_bound, effect_bound) if private else y_std

    def attenuation(bound: float) -> float:
        """``kappa`` of a phenotype clipped at ``bound`` (public model)."""
        if values is None:
            return assoc.phenotype_attenuation(bound)
        # the members' two values (clipped at y_clip) against the unclipped ones
        return assoc.phenotype_attenuation(
            bound,
            assoc.phenotype_values(ref, loc, a.y_clip, values),
            raw=assoc.phenotype_values(ref, loc, math.inf, values),
        )

    kappa = attenuation(effect_bound) if private and a.debias else 1.0
    moments = None
    if ancestry is not None:
        # the phenotype as the regions' release reads it (adjusted for the released slopes),
        # clipped as it clips it, the clip's shrink undone as it undoes it
        member_scores, centre, ancestry_noise = ancestry
        moments = anc.release_phenotype_moments(
            y_std,
            member_scores,
            y_clip=a.effect_y_clip if private else None,
            score_clip=config.ancestry_score_clip if private else None,
            noise_multiplier=noise_multiplier(ledger, ANCESTRY_PHENOTYPE),
            noise=ancestry_noise,
            centre=centre,
            attenuation=kappa,
        )
        details.setdefault("ancestry", {})["phenotype"] = moments.summary()
    eps_select, eps_test = _selection_budget(ledger, config)
    selections = assoc.select_regions(
        scores,
        select_layout,
        a,
        sensitivity=sens,
        eps_select=eps_select,
        eps_test=eps_test,
        noise=noise,
        null_sd=null_sd,
    )
    sigma = region_sigma(noise_multiplier(ledger, ASSOCIATION), len(selections), a.max_regions)
    effect_sd = assoc.effect_noise_sd(sigma, a.z_clip, effect_bound, n)  # per component
    regions: list[assoc.Region] = []
    region_details: list[dict[str, Any]] = []
    matched_columns = np.zeros(0, dtype=np.int64)  # exact SNP targets of earlier regions
    pinnable: list[tuple[int, dict[str, Any]]] = []  # kept components regions
    releases: list[str] = []
    for sel in selections:
        # the lead window: the noisy max's (with a panel), or its lead SNP's
        lead = (
            int(layout.window_of_snp[select_layout.snp_index[sel.lead, 0]])
            if lead_snps
            else sel.lead
        )
        cols = assoc.region_columns(lead, layout, a.flank_bp)
        rb = assoc.region_basis(
            reference_dosages[:, cols], a.n_components, assoc.column_weights(lead, cols, layout, a)
        )
        if lead_snps and (
            a.no_panel_release == "lead"
            or not len(assoc.lead_candidates(rb, a.implied_lead_min_r2, a.implied_lead_min_maf))
        ):
            releases.append("lead SNP")
            lead_region, lead_info = _lead_region(
                members, select_layout, layout, sel, y_effect, sigma, effect_bound, kappa, a, noise
            )
            region_details.append(lead_info | {"release": "lead SNP"})
            if lead_region is not None:
                regions.append(lead_region)
            continue
        releases.append("components")
        z = assoc.components(members.dosages[:, cols], rb.center, rb.scale, rb.basis)
        beta = assoc.release_effect(
            z, y_effect, noise_multiplier=sigma, z_clip=a.z_clip, y_clip=effect_bound, noise=noise
        )
        released_norm = float(np.linalg.norm(beta))
        shrink = 1.0
        if a.shrink:
            beta, shrink = assoc.shrink_effect(beta, effect_sd, a.shrink_power)
        detail: dict[str, Any] = {
            "chr": str(var["chr"].iloc[cols[0]]),
            "start": int(var["pos"].iloc[cols].min()),
            "end": int(var["pos"].iloc[cols].max()),
            "n_snps": len(cols),
            "n_components": int(rb.basis.shape[1]),
            "released_effect_norm": released_norm,
            "shrink_factor": shrink,
            # mostly noise: no association is carried into the synthetic cohort (post-processing)
            "dropped": shrink < a.min_shrink,
            "implied_lead": None,
            "release": "components",
        }
        region_details.append(detail)
        if detail["dropped"]:
            continue
        debias = None  # the map from the released to the debiased effect
        if private and a.debias:
            z_ref = assoc.components(reference_dosages[:, cols], rb.center, rb.scale, rb.basis)
            debias = assoc.debias_map(assoc.component_attenuation(z_ref, a.z_clip), kappa)
            beta = debias @ beta
        snps, snp_effects = np.zeros(0, dtype=np.int64), np.zeros(0)
        if not private and a.exact_snps > 0:
            snps, snp_effects = assoc.exact_snp_targets(
                members.dosages[:, cols],
                y_effect,
                rb,
                reference_dosages[:, cols],
                a.exact_snps,
                a.exact_snp_max_r2,
                np.flatnonzero(np.isin(cols, matched_columns)),
            )
            matched_columns = np.union1d(matched_columns, cols[snps])
            detail["exact_snps"] = [str(v) for v in var["id"].iloc[cols[snps]]]
        elif a.implied_lead:
            implied = assoc.implied_lead(
                rb,
                beta,
                a.implied_lead_min_r2,
                a.implied_lead_min_maf,
                a.implied_lead_min_cos,
                assoc.near_lead(lead, cols, layout, a.implied_lead_flank_bp),
            )
            if implied is not None:
                j, cross = implied
                lead_detail: dict[str, Any] = {"snp": str(var["id"].iloc[cols[j]])}
                if a.lead_from_test and sel.noise_sd > 0.0:
                    # the test measured the region's best score: clipped dosages and phenotype
                    # (attenuation from public models), over sqrt(n)
                    unit = math.sqrt(n) * attenuation(y_sel_clip or math.inf)
                    unit *= assoc.lead_attenuation(
                        reference_dosages[:, cols],
                        ref.alt_freq[cols],
                        j,
                        x_clip,
                        a.lead_attenuation_min_r2,
                    )
                    implied_sd = a.implied_lead_sd_factor * assoc.implied_lead_sd(
                        rb, j, effect_sd, debias
                    )
                    tested = sel.score / unit
                    lead_detail |= {"implied_cross_moment": cross, "tested_cross_moment": tested}
                    cross = assoc.pool_lead(
                        cross, implied_sd, tested, sel.noise_sd / unit, rb.var[j] ** 0.5
                    )
                # the cross-moment the synthetic cohort reproduces
                detail["implied_lead"] = lead_detail | {"cross_moment": cross}
                snps, snp_effects = np.array([j]), np.array([cross])
        regions.append(
            assoc.Region(
                lead, cols, rb.center, rb.scale, rb.basis, beta, rb.loading, snps, snp_effects
            )
        )
        pinnable.append((len(regions) - 1, detail))
    pin_sigma = _planned_noise(ledger, REGION_SNPS)
    if pin_sigma is not None and regions:
        regions = _pin_snps(
            members,
            reference_dosages,
            regions,
            pinnable,
            y_effect,
            effect_bound,
            kappa,
            region_sigma(pin_sigma, len(selections), a.max_regions),
            a,
            pin_noise if pin_noise is not None else noise,
        )
    details["association"] = {
        # the noisy max's candidates: windows of the public map (single SNPs under DP without
        # a panel)
        "selection_windows": select_layout.n_windows,
        "score_sensitivity": sens,
        "score_null_sd": null_sd,
        "phenotype_bound": y_bound,
        "effect_phenotype_bound": effect_bound,
        "phenotype_attenuation": kappa,
        # None without formal privacy (no noise: an infinite epsilon, not JSON)
        "eps_select_per_round": eps_select if math.isfinite(eps_select) else None,
        "eps_test_per_round": eps_test if math.isfinite(eps_test) else None,
        # the noise multiplier each released region was given (the rounds the tests stopped
        # give it their share: see region_sigma)
        "region_noise_multiplier": sigma,
        "phenotype_location": {"mean": loc.mean, "sd": loc.sd},
        "regions": region_details,
        "reference": "public panel" if public is not None else "DP synthetic genotypes",
        # "lead SNP" when a region was released as its lead SNP alone (without a panel:
        # no_panel_release; each region's own is in its details)
        "release": "lead SNP" if "lead SNP" in releases else "components",
    }
    return regions, adjust, moments


def _pin_snps(
    members: Cohort,
    reference_dosages: np.ndarray,
    regions: list[assoc.Region],
    pinnable: list[tuple[int, dict[str, Any]]],
    y_effect: np.ndarray,
    effect_bound: float,
    kappa: float,
    sigma: float | None,
    a: assoc.AssociationConfig,
    noise: Noise,
) -> list[assoc.Region]:
    """The ``region-snps`` release (:attr:`~dpgenome.association.AssociationConfig.
    pinned_snps`): per components region, the SNPs its released targets alone imply
    strongest (:func:`~dpgenome.association.pinned_snps`, post-processing of DP outputs and
    the reference genotypes) get their own cross-moments released (a Gaussian mechanism:
    each member's standardised dosages of the ``k`` SNPs clipped to norm ``sqrt(k) x
    z_clip_per_component``, the phenotype as the region release clips it; the clips'
    attenuation undone from the reference as there) and matched as the region's targets.
    ``pinnable``: each kept components region's index in ``regions`` and its details."""
    out = list(regions)
    n = members.n_samples
    for index, detail in pinnable:
        r = out[index]
        reference = reference_dosages[:, r.columns]  # one copy for both readings
        implied = assoc.explained_log10_p(
            reference, [replace(r, columns=np.arange(len(r.columns)))], n_tested=n
        )
        pins = assoc.pinned_snps(
            reference,
            r,
            implied,
            a.pinned_snps,
            a.pinned_max_r2,
            a.pinned_min_log10_p,
        )
        if not len(pins):
            detail["pinned_snps"] = []
            continue
        clip = assoc.pin_clip(len(pins), a)
        cols = r.columns[pins]
        x = assoc.standardise_columns(members.dosages[:, cols], r.center[pins], r.scale[pins])
        cross = assoc.release_effect(
            x, y_effect, noise_multiplier=sigma, z_clip=clip, y_clip=effect_bound, noise=noise
        )
        x_ref = assoc.standardise_columns(reference[:, pins], r.center[pins], r.scale[pins])
        cov = x_ref.T @ x_ref / max(len(x_ref), 1)  # the pins are correlated: not whitened
        cross = assoc.debias_map(assoc.component_attenuation(x_ref, clip), kappa, cov) @ cross
        bound = np.sqrt(np.maximum(x_ref.var(axis=0), 1e-12))
        cross = np.clip(cross, -bound, bound)
        detail["pinned_snps"] = [
            {"snp": str(members.variants["id"].iloc[c]), "cross_moment": float(v)}
            for c, v in zip(cols, cross, strict=True)
        ]
        out[index] = replace(
            r,
            snps=np.concatenate([r.snps, pins]).astype(np.int64),
            snp_effects=np.concatenate([r.snp_effects, cross]),
        )
    return out


def _lead_region(
    members: Cohort,
    snp_layout: WindowLayout,
    layout: WindowLayout,
    sel: assoc.Selection,
    y_effect: np.ndarray,
    sigma: float | None,
    effect_bound: float,
    kappa: float,
    a: assoc.AssociationConfig,
    noise: Noise,
) -> tuple[assoc.Region | None, dict[str, Any]]:
    """A selected lead SNP's region without a public panel (``no_panel_release`` "lead", or
    "auto" when the region's DP basis has no lead candidate): the SNP's released cross-moment
    and frequency (:func:`dpgenome.association.release_lead`,
    the region's Gaussian release), read as a correlation. The region is that one column,
    redrawn at the released frequency and paired to the correlation; ``None`` when the
    release is mostly noise (:attr:`~dpgenome.association.AssociationConfig.min_shrink`) or
    the released minor-allele frequency is below ``implied_lead_min_maf``."""
    j = int(snp_layout.snp_index[sel.lead, 0])
    rel = assoc.release_lead(
        members.dosages[:, j],
        y_effect,
        noise_multiplier=sigma,
        y_clip=effect_bound,
        count_weight=a.lead_count_weight,
        noise=noise,
    )
    shrink = assoc.shrink_effect(np.array([rel.cross]), rel.cross_sd)[1] if a.shrink else 1.0
    r, r_sd, f = rel.correlation(kappa)
    r *= shrink**a.shrink_power  # as a components release's effect (1 at the default power 0)
    var = members.variants
    pos = int(var["pos"].iloc[j])
    rare = min(f, 1.0 - f) < a.implied_lead_min_maf
    detail: dict[str, Any] = {
        "chr": str(var["chr"].iloc[j]),
        "start": pos,
        "end": pos,
        "n_snps": 1,
        "n_components": 1,
        "released_effect_norm": abs(rel.cross),
        "shrink_factor": shrink,
        "dropped": shrink < a.min_shrink or rare,
        "released_frequency": f,
        "implied_lead": None,
    }
    if rare and shrink >= a.min_shrink:
        detail["drop_reason"] = f"minor-allele frequency below {a.implied_lead_min_maf:g}"
    if detail["dropped"]:
        return None, detail
    detail["implied_lead"] = {"snp": str(var["id"].iloc[j]), "cross_moment": r, "sd": r_sd}
    sd_x = math.sqrt(2.0 * f * (1.0 - f))
    region = assoc.Region(
        int(layout.window_of_snp[j]),
        np.array([j]),
        np.array([2.0 * f]),
        np.array([sd_x]),
        np.ones((1, 1)),
        np.array([r]),
        np.ones(1),
        redraw=True,
    )
    return region, detail


def substream(seed: int, tag: int) -> np.random.Generator:
    """A generator of its own for one use of ``seed`` (``tag`` >= 1 names the use): the
    stream of ``SeedSequence([seed, tag])``. Tag 0 is refused: numpy drops trailing zero
    words of entropy, so ``SeedSequence([seed, 0])`` is ``SeedSequence(seed)`` and would
    repeat the stream of ``default_rng(seed)`` (two mechanisms drawing the same noise)."""
    if tag < 1:
        raise ValueError(f"substream tags start at 1 (tag 0 repeats the seed's stream), got {tag}")
    return np.random.default_rng((seed, tag))


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
    if structure is not None:
        details["ancestry"] = {"auto": structure.summary()}
        if echo is not None:
            echo(_structure_line(structure))
    assert cfg.delta is not None and cfg.n_synth is not None

    with _step(timings, "calibrate", "calibrating the noise to the target (epsilon, delta)", echo):
        pheno_cfg = replace(cfg.phenotypes, seed=seeds[3], secure_mode=cfg.secure)
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
            members, public, cfg, ledger, seeds, details, gram=panel_gram
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
                    substream(seeds[5], 3),
                    members.n_samples,
                ),
                substream(seeds[4], 3),
                details,
            )
        dosages = sample_dosages(
            model, cfg.n_synth, np.random.default_rng(seeds[4]), ancestry=scores
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
            bins_noise_multiplier=_planned_noise(ledger, PHENOTYPE_BINS),
            missing_noise_multiplier=_planned_noise(ledger, PHENOTYPE_MISSINGNESS),
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
            cfg.secure and cfg.private, np.random.default_rng(seeds[5]), members.n_samples
        )
        ancestry_input = None
        if panel_ancestry is not None and releases_ancestry_phenotype(
            cfg, has_public=public is not None
        ):
            assert member_scores is not None  # drawn with the panel's ancestry
            # its own noise stream: the other releases draw what they drew without it
            ancestry_noise = mechanism_noise(
                cfg.secure and cfg.private,
                substream(seeds[5], 4),
                members.n_samples,
            )
            # centred on the synthetic individuals' mean score (a DP output: the released mix)
            centre = panel_ancestry.axes.scores(dosages)[0].mean(axis=0)
            ancestry_input = (member_scores, centre, ancestry_noise)
        regions, adjust, moments = _association(
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
            mechanism_noise(cfg.secure and cfg.private, substream(seeds[5], 5), members.n_samples),
        )
        pheno_table = _draw_rows(pheno_table, adjust, cfg, details, substream(seeds[3], 1))
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
        redraw_rng = substream(seeds[7], 1)
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
                np.random.default_rng(seeds[7]),
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
            seeds[6],
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
                    substream(seeds[5], 5),
                    members.n_samples,
                ),
            )
            # last: the pairing and the splices read complete genotypes
            dosages = release.apply(dosages, substream(seeds[7], 2))
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
