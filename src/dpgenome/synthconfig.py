"""The synthesizer's configuration (:class:`SynthConfig`) and the names of its mechanisms
on a release's ledger (:mod:`dpgenome.synthesize`'s docstring lists them)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

from dpgenome import phenotypes as phenos
from dpgenome.accountant import default_delta
from dpgenome.association_config import AssociationConfig
from dpgenome.errors import ConfigError
from dpgenome.noise import default_secure_mode

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
#: ``SynthConfig.ancestry_pcs``: chosen from the public panel
#: (:func:`dpgenome.synthesize.resolve_ancestry`)
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
    #: drawn to its released prevalence and covariate slopes
    #: (:func:`dpgenome.synthesize._draw_rows`). 4 covers a model prevalence a quarter of the
    #: released one, but not a slope on a rare 0/1
    #: covariate: abBMD's on SW16 (4% of mice) needs ~3x SW16's share among the cases, and
    #: at 4 the draws fell short of the released slope (0.38 for 0.64 at epsilon 3,
    #: bench/slopes.py; 0.64 at 8)
    phenotype_oversample: int = 8
    # association
    association: AssociationConfig = field(default_factory=AssociationConfig)
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
        (:func:`dpgenome.synthesize.resolve_ancestry`, before any ledger is planned)."""
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
