"""A release's privacy budget, fixed before any private data is read: the mechanisms a
synthesis runs (:func:`plan`), calibrated together to the target epsilon and delta
(:func:`calibrated_ledger`), and each mechanism's noise read back from the ledger."""

from __future__ import annotations

import math
from dataclasses import replace

from dpgenome import analysis_phenotype as aph
from dpgenome import ancestry as anc
from dpgenome import association as assoc
from dpgenome import callrates
from dpgenome import phenotypes as phenos
from dpgenome.accountant import Ledger
from dpgenome.calibrate import Planned, PlannedDpSgd, PlannedGaussian, PlannedPure, calibrate
from dpgenome.cohort import Cohort, PhenoType
from dpgenome.errors import ConfigError
from dpgenome.histogram import planned_histogram
from dpgenome.mechanisms import (
    DpSgdMechanism,
    ExponentialMechanism,
    GaussianMechanism,
    LaplaceMechanism,
)
from dpgenome.phenoschema import data_typed_assumption, pheno_file, typed_from_data
from dpgenome.synthconfig import (
    ANCESTRY,
    ANCESTRY_PHENOTYPE,
    ASSOCIATION,
    CENTRE,
    GENOTYPE_MISSINGNESS,
    PHENOTYPE_BINS,
    PHENOTYPE_MISSINGNESS,
    PHENOTYPES,
    REGION_SNPS,
    SELECTION,
    SLOPES,
    STRUCTURE,
    TEST,
    SynthConfig,
)


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
        out.append(PlannedGaussian(CENTRE, 1, aph.centre_sensitivity(a.y_clip), a.center_weight))
        if slopes:
            out.append(
                PlannedGaussian(
                    SLOPES,
                    1,
                    aph.covariate_sensitivity(a.y_clip, a.covariate_clip),
                    a.covariate_weight,
                )
            )
        y_bound = min(a.effect_y_clip, a.y_clip)
        note = (
            f"planned for {a.max_regions} regions (count); when the threshold tests pass "
            f"r < {a.max_regions}, each of the r released regions gets the noise multiplier "
            f"times sqrt(r / {a.max_regions}): the same Gaussian mechanism (mu^2 = count / "
            "noise multiplier^2), so the same epsilon. The sensitivity stated is the largest: "
            "where the phenotype can take only a few values (a 0/1 phenotype without "
            "covariates) its bound, and with it each region's noise sd, can be smaller, the "
            "noise multiplier the same"
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
        list(members.phenotypes.columns),
        members.pheno_types,
        pheno_cfg,
        name=PHENOTYPE_BINS,
        source=pheno_file(members),
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
    sigma = planned_noise(ledger, REGION_SNPS)
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


def planned_noise(ledger: Ledger, name: str) -> float | None:
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


def selection_budget(ledger: Ledger, config: SynthConfig) -> tuple[float, float]:
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
