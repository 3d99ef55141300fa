"""The audit suite every release runs: :func:`run_audits` -> :class:`AuditReport`.

Aggregates only: the report holds AUCs, ROC curves, rates, counts and histograms; no real
sample id, per-individual score, genotype or phenotype value ever enters it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from dpgenome.audit import features as ft
from dpgenome.audit import neighbours as nb
from dpgenome.audit.attribute import attribute_inference
from dpgenome.audit.canary import canary_audit
from dpgenome.audit.config import AuditConfig
from dpgenome.audit.control import public_control
from dpgenome.audit.kinship import Indicators, kinship_leakage
from dpgenome.audit.membership import (
    allele_counts,
    allele_frequency_score_draws,
    cross_fit_folds,
    dcr_scores,
    density_ratio_scores,
    reference_auc_sd,
    reference_resamples,
)
from dpgenome.audit.scoring import AttackResult, score_attack
from dpgenome.audit.shadow import shadow_attack
from dpgenome.cohort import Cohort, PhenoType, Split, harmonise_alleles
from dpgenome.errors import CohortError

log = logging.getLogger(__name__)

TrainFn = Callable[[Cohort, int], Cohort]
NOT_RUN = "NOT RUN"


def not_run(reason: str) -> dict[str, Any]:
    """An audit that did not run: no metric keys, so a policy reads it as NOT EVALUATED."""
    return {"status": NOT_RUN, "reason": reason}


#: the keys every membership attack's entry holds (issue 6's contract), null when not run
ATTACK_KEYS = ("auc", "auc_ci", "tpr_at_fpr_0.01")


def attack_not_run(reason: str) -> dict[str, Any]:
    """A membership attack that did not run: its contracted keys null (a policy reads them
    as missing: NOT EVALUATED), with the reason."""
    return dict.fromkeys(ATTACK_KEYS) | not_run(reason)


@dataclass(frozen=True)
class AuditReport:
    """Everything the audit found, aggregate only; ``to_dict()`` is the ``audit`` object of
    the results document (docs/architecture.md)."""

    attacks: dict[str, AttackResult | dict[str, Any]]
    nearest_neighbour: dict[str, Any]
    kinship: dict[str, Any]
    attribute_inference: dict[str, Any]
    canary: dict[str, Any]
    summary: dict[str, Any]
    config: AuditConfig
    timings_s: dict[str, float] = field(default_factory=dict)
    public_control: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "attacks": {
                name: a.to_dict() if isinstance(a, AttackResult) else dict(a)
                for name, a in self.attacks.items()
            },
            "nearest_neighbour": self.nearest_neighbour,
            "kinship": self.kinship,
            "attribute_inference": self.attribute_inference,
            "canary": self.canary,
            "public_control": self.public_control,
            "summary": self.summary,
            "config": self.config.record(),
            "timings_s": {k: round(v, 3) for k, v in self.timings_s.items()},
        }


class _Clock:
    def __init__(self) -> None:
        self.times: dict[str, float] = {}
        self._t = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.times[name] = now - self._t
        self._t = now
        log.info("audit %s: %.1f s", name, self.times[name])


def _secret_values(cohort: Cohort, column: str) -> np.ndarray:
    if cohort.pheno_types.get(column) == PhenoType.CATEGORICAL:
        return (
            cohort.phenotypes[column]
            .astype(object)
            .where(cohort.phenotypes[column].notna(), None)
            .to_numpy()
        )
    return cohort.phenotypes[column].to_numpy(dtype=np.float64, na_value=np.nan)


def _pheno_only(cohort: Cohort, rows: np.ndarray) -> Cohort:
    """The phenotypes of ``rows`` as a cohort without variants (no dosage copy)."""
    return Cohort(
        np.empty((len(rows), 0), dtype=np.float32),
        pd.DataFrame(
            {
                "id": pd.Series(dtype=str),
                "chr": pd.Series(dtype=str),
                "pos": pd.Series(dtype=np.int64),
            }
        ),
        cohort.samples.iloc[rows].reset_index(drop=True),
        cohort.phenotypes.iloc[rows].reset_index(drop=True),
        dict(cohort.pheno_types),
        cohort.source,
    )


def _all_calls(
    dosages: np.ndarray, rows: np.ndarray, columns: np.ndarray, chunk: int = 128
) -> np.ndarray:
    """Hard calls (int8; 3 = missing) of ``rows`` x ``columns``, built in row chunks."""
    out = np.empty((len(rows), len(columns)), dtype=np.int8)
    for s in range(0, len(rows), chunk):
        block = dosages[rows[s : s + chunk]][:, columns]
        calls = np.rint(np.clip(block, 0.0, 2.0))
        out[s : s + chunk] = np.where(np.isnan(calls), 3, calls).astype(np.int8)
    return out


def _public_control(
    real: Cohort,
    synthetic: Cohort,
    public: Cohort,
    sub: ft.MatchedVariants,
    fill: np.ndarray,
    real_code: np.ndarray,
    d_geno: np.ndarray,
    members: np.ndarray,
    holdout: np.ndarray,
    config: AuditConfig,
    rng: np.random.Generator,
) -> dict[str, Any]:
    """The public-panel control on the distance SNPs the panel also has (matched by id)."""
    index = pd.Index(public.variants["id"].astype(str))
    if index.has_duplicates:
        raise CohortError(f"the public panel lists SNP {index[index.duplicated()][0]!r} twice")
    pos = index.get_indexer(pd.Index(real.variants["id"].astype(str).to_numpy()[sub.real]))
    keep = np.flatnonzero(pos >= 0)
    if len(keep) < 10 or public.n_samples < 2:
        return not_run(
            f"the public panel shares {len(keep)} of the {sub.n} distance SNPs and has "
            f"{public.n_samples} individual(s)"
        )
    if len(keep) < sub.n:  # the synthetic side on the same SNPs as the panel side
        real_code = ft.threshold_code(ft.hard_calls(real.dosages, sub.real[keep], fill[keep]))
        d_geno = ft.genotype_distance(
            real_code,
            ft.threshold_code(ft.hard_calls(synthetic.dosages, sub.synthetic[keep], fill[keep])),
        )
    pub_code = ft.threshold_code(ft.hard_calls(public.dosages, pos[keep], fill[keep]))
    d_public = ft.genotype_distance(real_code, pub_code)
    out = public_control(
        d_geno,
        d_public,
        members,
        holdout,
        rng,
        confidence=config.confidence,
        n_bootstrap=config.n_bootstrap,
    )
    return {**out, "n_snps": len(keep)}


def _phenotypes_only(
    d_pheno: np.ndarray | None,
    columns: list[str],
    members: np.ndarray,
    holdout: np.ndarray,
    config: AuditConfig,
    rng: np.random.Generator,
) -> dict[str, Any]:
    """The DCR attack's AUC and the DCR share on the phenotype columns alone.

    The public-panel control (:mod:`dpgenome.audit.control`) explains the genotype part of a
    distance signal; a policy that judges the genotypes against it judges the phenotype part
    here, against the holdout (the panel has no phenotypes, and nothing public confounds
    them)."""
    if d_pheno is None:
        return not_run("the distance audits used no phenotype column")
    dcr = dcr_scores(d_pheno)
    attack = score_attack(
        dcr[members],
        dcr[holdout],
        method=f"distance to closest synthetic record on {len(columns)} phenotype columns",
        n_bootstrap=config.n_bootstrap,
        rng=rng,
    ).to_dict()
    share = nb.share_closer_to_members(
        d_pheno, members, holdout, rng, config.confidence, n_bootstrap=config.n_bootstrap
    )
    return {
        "columns": list(columns),
        "dcr_auc": attack["auc"],
        "dcr_auc_ci": attack["auc_ci"],
        "share_closer_to_members": share["share_closer_to_members"],
        "share_closer_to_members_ci": share["share_closer_to_members_ci"],
    }


def run_audits(
    real: Cohort,
    split: Split,
    synthetic: Cohort,
    config: AuditConfig,
    train_fn: TrainFn | None = None,
    public: Cohort | None = None,
) -> AuditReport:
    """Run every audit of the synthetic cohort against the real member/holdout split.

    ``train_fn(training_cohort, seed) -> synthetic cohort`` retrains the synthesizer; the
    shadow-model attack and the canary audit need it and are reported NOT RUN without it.
    ``public`` (the public reference panel the synthesizer learnt genotype structure from)
    adds the negative control of :mod:`dpgenome.audit.control`; NOT RUN without it.
    """
    config = config.validate()
    members, holdout = np.asarray(split.members), np.asarray(split.holdout)
    if len(members) < 4 or len(holdout) < 4:
        raise CohortError(
            f"the audit needs >= 4 members and >= 4 holdout individuals, got "
            f"{len(members)} and {len(holdout)}"
        )
    if synthetic.n_samples < 2:
        raise CohortError(f"the synthetic cohort has {synthetic.n_samples} individual(s)")
    # the first ten as spawn(10) gave, the eleventh as spawn(11)
    seeds = np.random.SeedSequence(config.seed).spawn(12)
    rngs = [np.random.default_rng(s) for s in seeds]
    clock = _Clock()

    synthetic = harmonise_alleles(synthetic, real.variants, what="the synthetic cohort")
    matched = ft.match_variants(real, synthetic)
    sub = ft.snp_subset(matched, config.max_snps, rngs[0])
    fill = ft.fill_values(real.dosages, sub.real)
    real_calls = ft.hard_calls(real.dosages, sub.real, fill)
    synth_calls = ft.hard_calls(synthetic.dosages, sub.synthetic, fill)
    real_code, synth_code = ft.threshold_code(real_calls), ft.threshold_code(synth_calls)
    d_geno = ft.genotype_distance(real_code, synth_code)  # real x synthetic
    wanted = [config.pheno, *config.covariates] if config.pheno else list(config.covariates)
    columns = ft.pheno_columns(real, synthetic, wanted or None)
    reference = _pheno_only(real, holdout)
    member_pheno = _pheno_only(real, members)
    real_ph, synth_ph = ft.code_phenotypes([real, synthetic], columns, reference)
    d_pheno = ft.pheno_distance(real_ph, synth_ph) if columns else None
    scales = ft.block_scales(d_geno, d_pheno, holdout)
    distance = ft.combine(d_geno, d_pheno, scales)
    clock.lap("distances")

    attacks: dict[str, AttackResult | dict[str, Any]] = {}
    dcr = dcr_scores(distance)
    attacks["dcr"] = score_attack(
        dcr[members],
        dcr[holdout],
        method="distance to closest synthetic record (genotype IBS distance on "
        f"{sub.n} SNPs"
        + (f" + {len(columns)} standardised phenotype columns" if columns else "")
        + ")",
        n_bootstrap=config.n_bootstrap,
        rng=rngs[1],
    )
    folds = cross_fit_folds(split, real.n_samples, rngs[2])
    resamples = reference_resamples(holdout, config.reference_draws, rngs[11])

    def domias(rows: np.ndarray | None = None) -> np.ndarray:  # rows: a holdout resample
        return density_ratio_scores(
            real_calls,
            synth_calls,
            real_ph.numeric,
            synth_ph.numeric,
            split,
            folds,
            config.pca_components,
            holdout=rows,
        )

    try:
        dr = domias()
        resampled = []
        for rows in resamples:
            try:
                resampled.append(domias(rows))
            except ValueError:  # a resample leaving a fold too few rows (a small holdout)
                continue
        draws = np.array(resampled)
        attacks["density_ratio"] = score_attack(
            dr[members],
            dr[holdout],
            method=f"DOMIAS density ratio (KDE, {config.pca_components} PCs fitted on holdout, "
            "cross-fitted halves)",
            n_bootstrap=config.n_bootstrap,
            rng=rngs[1],
            reference_sd=reference_auc_sd(draws, members, holdout),
        )
    except ValueError as err:  # too few holdout individuals for the density
        attacks["density_ratio"] = attack_not_run(str(err))
    total, observed = allele_counts(
        synthetic.dosages, np.arange(synthetic.n_samples), matched.synthetic
    )
    synth_freq = (total + 0.5) / (2.0 * observed + 1.0)
    af, *af_draws = allele_frequency_score_draws(
        real.dosages, matched.real, synth_freq, [holdout, *resamples], folds
    )
    attacks["allele_frequency"] = score_attack(
        af[members],
        af[holdout],
        method=f"allele-frequency likelihood ratio (Homer 2008 / Sankararaman 2009) on {matched.n} "
        "SNPs, reference = holdout of the other cross-fitting fold",
        n_bootstrap=config.n_bootstrap,
        rng=rngs[1],
        reference_sd=reference_auc_sd(np.array(af_draws), members, holdout),
    )
    clock.lap("membership")

    if config.shadow_targets == 0:
        attacks["shadow"] = attack_not_run("no shadow targets requested (--shadow 0)")
    elif train_fn is None:
        attacks["shadow"] = attack_not_run("no synthesizer to retrain (train_fn not given)")
    else:
        hold_total, hold_obs = allele_counts(real.dosages, holdout, sub.real)
        attacks["shadow"] = shadow_attack(
            real,
            split,
            train_fn,
            n_targets=config.shadow_targets,
            games=config.shadow_games,
            size=config.shadow_size,
            distance_columns=sub.real,
            reference_freq=hold_total / np.maximum(2.0 * hold_obs, 1.0),
            n_bootstrap=config.n_bootstrap,
            rng=rngs[3],
        )
        clock.lap("shadow")

    # ---------------------------------------------------------------- nearest neighbours
    neighbour = nb.share_closer_to_members(
        distance, members, holdout, rngs[4], config.confidence, n_bootstrap=config.n_bootstrap
    )
    neighbour |= nb.distinct_nearest_test(distance, members, holdout)
    neighbour["centred"] = nb.share_closer_to_members(
        distance,
        members,
        holdout,
        rngs[10],
        config.confidence,
        n_bootstrap=config.n_bootstrap,
        centred=True,
    )
    d_mh_geno = ft.genotype_distance(real_code[members], real_code[holdout])
    d_mh_pheno = None
    if columns:
        mem_ph, hold_ph = ft.code_phenotypes([member_pheno, reference], columns, reference)
        d_mh_pheno = ft.pheno_distance(mem_ph, hold_ph)
    d_mh = ft.combine(d_mh_geno, d_mh_pheno, scales)
    neighbour["nndr_median"] = float(round(float(np.median(nb.nndr(distance[members]))), 6))
    neighbour["nndr_median_holdout"] = float(round(float(np.median(nb.nndr(d_mh))), 6))
    # hard calls (3 = missing) on every shared SNP: exact duplicates and windows
    mem_calls = _all_calls(real.dosages, members, matched.real)
    syn_calls = _all_calls(synthetic.dosages, np.arange(synthetic.n_samples), matched.synthetic)
    hold_calls = _all_calls(real.dosages, holdout, matched.real)
    mem_dig = nb.row_digests(mem_calls)
    neighbour["exact_duplicate_genotypes"] = nb.exact_duplicates(nb.row_digests(syn_calls), mem_dig)
    neighbour["exact_duplicate_genotypes_holdout"] = nb.exact_duplicates(
        nb.row_digests(hold_calls), mem_dig
    )
    thr = config.near_duplicate_distance
    neighbour["near_duplicate_genotypes"] = int((d_geno[members].min(axis=0) <= thr).sum())
    neighbour["near_duplicate_genotypes_holdout"] = int((d_mh_geno.min(axis=0) <= thr).sum())
    neighbour["near_duplicate_distance"] = thr
    chroms = real.variants["chr"].astype(str).to_numpy()[matched.real]
    mem_keys = nb.window_keys(mem_calls, chroms, config.window_snps)
    syn_keys = nb.window_keys(syn_calls, chroms, config.window_snps)
    hold_keys = nb.window_keys(hold_calls, chroms, config.window_snps)
    del mem_calls, syn_calls, hold_calls
    # None (no window: no chromosome has window_snps SNPs) reads as not measured
    neighbour["duplicate_genotype_windows_rate"] = nb.window_duplicate_rate(syn_keys, mem_keys)
    neighbour["duplicate_genotype_windows_rate_holdout"] = nb.window_duplicate_rate(
        hold_keys, mem_keys
    )
    neighbour["window_snps"] = config.window_snps
    neighbour["windows"] = int(mem_keys.shape[1])
    del mem_keys, syn_keys, hold_keys
    row_columns = [c for c in real.phenotypes.columns if c in synthetic.phenotypes.columns]
    if row_columns:
        mem_rows = set(nb.phenotype_row_keys(real.phenotypes.iloc[members][row_columns]))
        syn_rows = nb.phenotype_row_keys(synthetic.phenotypes[row_columns])
        hold_rows = nb.phenotype_row_keys(real.phenotypes.iloc[holdout][row_columns])
        neighbour["exact_duplicate_phenotype_rows"] = int(sum(r in mem_rows for r in syn_rows))
        neighbour["exact_duplicate_phenotype_rows_holdout"] = int(
            sum(r in mem_rows for r in hold_rows)
        )
    else:
        neighbour["exact_duplicate_phenotype_rows"] = None
    neighbour["phenotypes_only"] = _phenotypes_only(
        d_pheno, columns, members, holdout, config, rngs[9]
    )
    neighbour["phenotype_row_columns"] = len(row_columns)
    neighbour["phenotype_columns"] = list(columns)
    neighbour["n_synthetic"] = synthetic.n_samples
    neighbour["method"] = (
        "DCR share with members subsampled to the holdout size (null 0.5); baselines "
        "(*_holdout) are the same statistics for holdout individuals against members; "
        "exact duplicates = identical hard calls on every shared SNP; near duplicates = mean "
        "absolute hard-call difference <= near_duplicate_distance; phenotype rows compare "
        "every phenotype column shared by both cohorts"
    )
    clock.lap("nearest_neighbour")

    if public is None:
        control = not_run("no public panel given")
    else:
        control = _public_control(
            real,
            synthetic,
            public,
            sub,
            fill,
            real_code,
            d_geno,
            members,
            holdout,
            config,
            rngs[8],
        )
        clock.lap("public_control")

    # ---------------------------------------------------------------- kinship
    kin = ft.snp_subset(matched, config.max_snps_kinship, rngs[5])
    kinship = kinship_leakage(
        Indicators.from_dosages(synthetic.dosages[:, kin.synthetic]),
        Indicators.from_dosages(real.dosages[np.ix_(members, kin.real)]),
        Indicators.from_dosages(real.dosages[np.ix_(holdout, kin.real)]),
        duplicate=config.kinship_duplicate,
        first_degree=config.kinship_first_degree,
        n_bootstrap=config.n_bootstrap,
        rng=rngs[5],
        confidence=config.confidence,
    )
    kinship["n_snps"] = kin.n
    kinship["relatives_caveat"] = (
        f"{kinship['member_member_first_degree_pairs']} member pairs are first-degree relatives "
        f"or closer ({kinship['member_member_duplicate_pairs']} at duplicate/MZ level): "
        "differential privacy bounds what the release reveals about one individual; relatives "
        "share much of a genome, so a family is protected less than an individual"
    )
    clock.lap("kinship")

    # ---------------------------------------------------------------- attribute inference
    attribute: dict[str, Any] = {}
    if config.pheno:
        secrets = [config.pheno]
    else:
        secrets = [c for c in columns if c not in config.covariates][: config.max_attribute_targets]
    covs = [c for c in config.covariates if c in columns]
    aux = d_geno.astype(np.float64)
    if covs:
        real_cov, synth_cov = ft.code_phenotypes([real, synthetic], covs, reference)
        d_cov = ft.pheno_distance(real_cov, synth_cov)
        aux = ft.combine(d_geno, d_cov, ft.block_scales(d_geno, d_cov, holdout))
    for secret in secrets:
        try:
            result = attribute_inference(
                aux[members],
                aux[holdout],
                _secret_values(member_pheno, secret),
                _secret_values(reference, secret),
                _secret_values(synthetic, secret),
                continuous=real.pheno_types[secret] == PhenoType.CONTINUOUS,
                tolerance=config.attribute_tolerance,
                rng=rngs[6],
                confidence=config.confidence,
            )
        except ValueError as err:
            attribute[secret] = not_run(str(err))
            continue
        result["known"] = f"genotypes ({sub.n} SNPs)" + (f" + {', '.join(covs)}" if covs else "")
        attribute[secret] = result
    clock.lap("attribute_inference")

    # ---------------------------------------------------------------- canary
    if config.canaries == 0:
        canary = not_run("no canaries requested (canaries = 0)")
    elif train_fn is None:
        canary = not_run("no synthesizer to retrain (train_fn not given)")
    else:
        canary = canary_audit(
            real.take_samples(members),
            train_fn,
            m=config.canaries,
            k=config.canary_guesses,
            distance_columns=sub.real,
            delta=config.delta,
            claimed_epsilon=config.claimed_epsilon,
            confidence=config.confidence,
            rng=rngs[7],
        )
        clock.lap("canary")
    if "epsilon_lower_bound" not in canary:
        canary = {**canary, "claimed_epsilon": config.claimed_epsilon}

    summary = {
        "n_members": len(members),
        "n_holdout": len(holdout),
        "n_synthetic": synthetic.n_samples,
        "n_variants_shared": matched.n,
        "n_snps_distances": sub.n,
        "n_snps_kinship": kin.n,
        "phenotype_columns": list(columns),
        "relatives_caveat": kinship["relatives_caveat"],
    }
    return AuditReport(
        attacks=attacks,
        nearest_neighbour=neighbour,
        kinship=kinship,
        attribute_inference=attribute,
        canary=canary,
        summary=summary,
        config=config,
        timings_s=clock.times,
        public_control=control,
    )
