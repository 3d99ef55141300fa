"""The association path of a synthesis (:mod:`dpgenome.synthesize`'s docstring, 3.-5. and 7.):
the analysis phenotype's released location and covariate slopes, the private choice of
associated regions and their Gaussian releases (a region's components, its lead SNP, its
pinned SNPs), and the ``ancestry-phenotype`` release the pairing matches on."""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd

from dpgenome import analysis_phenotype as aph
from dpgenome import ancestry as anc
from dpgenome import association as assoc
from dpgenome import region_selection as regsel
from dpgenome.accountant import Ledger
from dpgenome.association_config import AssociationConfig
from dpgenome.budget import (
    noise_multiplier,
    planned_noise,
    region_sigma,
    releases_slopes,
    selection_budget,
)
from dpgenome.cohort import Cohort, PhenoType
from dpgenome.model import WindowLayout, make_layout
from dpgenome.noise import Noise
from dpgenome.synthconfig import (
    ANCESTRY_PHENOTYPE,
    ASSOCIATION,
    CENTRE,
    REGION_SNPS,
    SLOPES,
    SynthConfig,
)


def mean_sd(column: pd.Series) -> dict[str, float]:
    """A phenotype column's mean and sd over its observed values (an aggregate for the
    details)."""
    x = column.to_numpy(dtype=np.float64, na_value=np.nan)
    return {"mean": float(np.nanmean(x)), "sd": float(np.nanstd(x))}


def _covariate_slopes(
    members: Cohort,
    table: pd.DataFrame,
    adjust: aph.CovariateAdjustment,
    y_std: np.ndarray,
    unit: float,
    config: SynthConfig,
    ledger: Ledger,
    noise: Noise,
) -> tuple[dict[str, Any], np.ndarray]:
    """The ``covariate-slopes`` release
    (:func:`dpgenome.analysis_phenotype.release_covariate_slopes`): the slope that the synthetic
    rows' adjustment leaves in the members' phenotype ``y_std``
    (adjusted, then centred, scaled and clipped by the ``phenotype-centre`` release; ``unit``
    phenotype units each), per covariate column of the synthetic ``table``. Returns its
    details (:func:`dpgenome.synthesize._with_slopes` and
    :func:`dpgenome.synthesize._draw_rows` give the released slope to the final rows) and
    ``y_std`` adjusted for the released step, shrunk by its noise, and clipped again
    (``AssociationConfig.slope_residual``; else ``y_std`` as given)."""
    private = config.private
    a = config.association
    w_synth, names = adjust.design(table)
    w_members = adjust.design(members.phenotypes)[0]
    step, step_sd = aph.release_covariate_slopes(
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
    kept = aph.shrink_slopes(step, step_sd)
    info["members_residual_step"] = [float(v) for v in unit * kept]
    centre = (w_synth if private else w_members).mean(axis=0)
    y_adj = y_std - (w_members - centre) @ kept
    return info, (np.clip(y_adj, -a.y_clip, a.y_clip) if private else y_adj)


def release_association(
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
) -> tuple[list[assoc.Region], aph.CovariateAdjustment | None, anc.PhenotypeMoments | None]:
    """The association path (:mod:`dpgenome.synthesize`'s docstring, 3.-5.): the selected
    regions, the covariate adjustment the pairing matches under and, with ``ancestry`` (the
    members' whole-genome ancestry scores, the synthetic individuals' mean score to centre
    them on, and that release's own noise stream), the ``ancestry-phenotype`` release (there,
    7.)."""
    a = config.association.effective(config.private)
    if a.max_regions == 0:
        details["association"] = {"regions": [], "max_regions": 0}  # disabled: none released
        return [], None, None
    var = members.variants
    layout = make_layout(var, window=a.window, context=0)  # the selection's windows (public)
    reference_dosages = public.dosages if public is not None else synth_dosages
    adjust = aph.CovariateAdjustment.fit(
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
    y_std, loc = aph.normalise_phenotype(
        aph.standardise_phenotype(y, ref, a.y_clip if private else None),
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
            aph.binary_slope_unit(fitted, ref, loc, a.y_clip if private else None)
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
            "released": aph.released_prevalence(
                y_obs, fitted, ref, a.y_clip if private else None, loc.mean
            ),
        }
    else:
        # a continuous one takes the released location and scale (post-processing; applied
        # to the final rows by _relocate)
        z = aph.standardise_phenotype(y_synth[ok], ref, None)
        affine = aph.released_affine(z, a.y_clip if private else None, loc)
        shift, scale = affine if affine is not None else (0.0, 1.0)
        details["phenotype_location"] = {
            "applied": affine is not None,
            "shift": shift * ref.y_sd,
            "scale": scale,
            "synthetic_model": mean_sd(synth_pheno[config.pheno]),
        }
    # a 0/1 phenotype without covariates takes two values (minus the fitted intercept)
    two_valued = members.pheno_types[config.pheno] == PhenoType.BINARY and not config.covariates
    values = np.array([0.0, 1.0]) - adjust.coef[0] if two_valued else None
    y_bound = aph.phenotype_bound(ref, loc, a.y_clip, values) if private else a.y_clip
    x_clip = a.x_clip if private else None
    y_sel_clip = regsel.select_y_bound(a, y_bound) if private else None
    y_sel = y_std if y_sel_clip is None else np.clip(y_std, -y_sel_clip, y_sel_clip)
    # without a panel (under DP) each region is one lead SNP: the noisy max runs over
    # single-SNP windows (public map; the same score sensitivity)
    lead_snps = private and public is None and a.no_panel_release != "components"
    select_layout = make_layout(var, window=1, context=0) if lead_snps else layout
    scores = regsel.window_scores(
        regsel.snp_scores(members.dosages, y_sel, ref.alt_freq, x_clip), select_layout
    )
    sens = regsel.score_sensitivity(a, n, y_bound)
    # null sd of the clipped scores from public inputs only: the reference genotypes, and a
    # standard normal phenotype clipped like the members' with the synthetic missing share
    # (the DP synthetic phenotype's own shape moved the threshold with its tails)
    null_sd = regsel.null_score_sd(
        reference_dosages,
        ref.alt_freq,
        x_clip,
        float(ok.mean()) * regsel.clipped_normal_second_moment(y_sel_clip),
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
            aph.phenotype_values(ref, loc, a.y_clip, values),
            raw=aph.phenotype_values(ref, loc, math.inf, values),
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
    eps_select, eps_test = selection_budget(ledger, config)
    selections = regsel.select_regions(
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
    pin_sigma = planned_noise(ledger, REGION_SNPS)
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
    a: AssociationConfig,
    noise: Noise,
) -> list[assoc.Region]:
    """The ``region-snps`` release (:attr:`~dpgenome.association_config.AssociationConfig.
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
    sel: regsel.Selection,
    y_effect: np.ndarray,
    sigma: float | None,
    effect_bound: float,
    kappa: float,
    a: AssociationConfig,
    noise: Noise,
) -> tuple[assoc.Region | None, dict[str, Any]]:
    """A selected lead SNP's region without a public panel (``no_panel_release`` "lead", or
    "auto" when the region's DP basis has no lead candidate): the SNP's released cross-moment
    and frequency (:func:`dpgenome.association.release_lead`,
    the region's Gaussian release), read as a correlation. The region is that one column,
    redrawn at the released frequency and paired to the correlation; ``None`` when the
    release is mostly noise (:attr:`~dpgenome.association_config.AssociationConfig.min_shrink`) or
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
