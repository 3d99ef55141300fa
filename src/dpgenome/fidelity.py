"""Does the synthetic cohort look like the real one? Cohort-level fidelity metrics.

Cohort (:func:`cohort_fidelity`): allele-frequency correlation, LD decay (mean r^2 per
distance bin on a seeded sample of SNP pairs, the same pairs in both cohorts), PCA fitted on
the real cohort with the synthetic one projected (Patterson, Price & Reich 2006
normalisation), phenotype correlation matrices (:mod:`dpgenome.pheno_fidelity`), genotype
balance (Hardy-Weinberg) and missing calls. Only aggregates leave this module.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import special

from dpgenome import plots
from dpgenome.cohort import Cohort, harmonise_alleles
from dpgenome.errors import CohortError
from dpgenome.jsonvalues import finite_or_none
from dpgenome.pheno_fidelity import (
    pheno_correlations,
    phenotype_marginals,
    phenotype_missingness,
    strong_correlations,
)
from dpgenome.relatedness import hard_calls

log = logging.getLogger(__name__)


# ---------------------------------------------------------------------------- cohort


def _standardise(x: np.ndarray) -> np.ndarray:
    """Mean-impute and scale columns to mean 0, variance 1 (constant columns -> NaN)."""
    x = np.asarray(x, dtype=np.float64)
    mean = np.nanmean(x, axis=0)
    x = np.where(np.isnan(x), mean, x) - mean
    sd = x.std(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return x / np.where(sd > 0, sd, np.nan)


def ld_pairs(
    variants: pd.DataFrame, *, max_distance_bp: int, pairs_per_chrom: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Seeded sample of SNP pairs (i, j) on the same chromosome with 0 < distance <= max:
    a random anchor and a random partner among the SNPs within the distance after it."""
    rng = np.random.default_rng(seed)
    first: list[np.ndarray] = []
    second: list[np.ndarray] = []
    chroms = variants["chr"].astype(str).to_numpy()
    pos_all = variants["pos"].to_numpy(dtype=np.int64)
    for c in pd.unique(chroms):
        idx = np.flatnonzero(chroms == c)
        idx = idx[np.argsort(pos_all[idx], kind="stable")]
        pos = pos_all[idx]
        if len(idx) < 2:
            continue
        upper = np.searchsorted(pos, pos + max_distance_bp, side="right") - 1
        span = upper - np.arange(len(idx))
        anchors = np.flatnonzero(span > 0)
        if anchors.size == 0:
            continue
        a = rng.choice(anchors, size=pairs_per_chrom, replace=True)
        b = a + 1 + np.floor(rng.random(pairs_per_chrom) * span[a]).astype(np.int64)
        first.append(idx[a])
        second.append(idx[b])
    if not first:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    return np.concatenate(first), np.concatenate(second)


def pair_r2(dosages: np.ndarray, i: np.ndarray, j: np.ndarray, *, chunk: int = 4096) -> np.ndarray:
    """Squared Pearson correlation of dosage columns i[k], j[k] over the samples with both
    calls observed (mean imputation would pull r^2 towards 0 by about the missing share
    twice over, so a real cohort with missing calls would look less linked than a complete
    synthetic one). NaN when a column is constant over those samples."""
    out = np.empty(len(i))
    for start in range(0, len(i), chunk):
        a = np.asarray(dosages[:, i[start : start + chunk]], dtype=np.float64)
        b = np.asarray(dosages[:, j[start : start + chunk]], dtype=np.float64)
        both = ~(np.isnan(a) | np.isnan(b))
        if both.all():
            out[start : start + chunk] = np.mean(_standardise(a) * _standardise(b), axis=0) ** 2
            continue
        k = both.sum(axis=0)
        a, b = np.where(both, a, 0.0), np.where(both, b, 0.0)
        with np.errstate(invalid="ignore", divide="ignore"):
            ma, mb = a.sum(axis=0) / k, b.sum(axis=0) / k
            da, db = np.where(both, a - ma, 0.0), np.where(both, b - mb, 0.0)
            saa, sbb = (da * da).sum(axis=0), (db * db).sum(axis=0)
            r = (da * db).sum(axis=0) / np.sqrt(saa * sbb)
        out[start : start + chunk] = np.where((saa > 0) & (sbb > 0) & (k >= 2), r * r, np.nan)
    return out


@dataclass(frozen=True)
class CohortFidelity:
    """Cohort-level fidelity: scalar metrics in :meth:`to_dict`, figures as SVG methods."""

    n_shared_snps: int
    allele_frequency_correlation: float
    af_real: np.ndarray = field(repr=False)
    af_synthetic: np.ndarray = field(repr=False)
    ld_bins_bp: np.ndarray = field(repr=False)
    ld_real: np.ndarray = field(repr=False)
    ld_synthetic: np.ndarray = field(repr=False)
    ld_pairs: int = 0
    ld_decay_error: float = float("nan")
    pca: dict[str, Any] = field(default_factory=dict)
    pca_real_hist: tuple[np.ndarray, np.ndarray, np.ndarray] | None = field(
        default=None, repr=False
    )
    pca_synthetic: np.ndarray | None = field(default=None, repr=False)
    pheno_names: tuple[str, ...] = ()
    pheno_corr_real: np.ndarray | None = field(default=None, repr=False)
    pheno_corr_synthetic: np.ndarray | None = field(default=None, repr=False)
    phenotype_correlation_error: float = float("nan")
    #: per shared phenotype, real vs synthetic marginal
    #: (:func:`~dpgenome.pheno_fidelity.phenotype_marginals`)
    pheno_marginals: dict[str, Any] = field(default_factory=dict)
    #: which phenotypes are missing together
    #: (:func:`~dpgenome.pheno_fidelity.phenotype_missingness`)
    pheno_missingness: dict[str, Any] = field(default_factory=dict)
    #: heterozygosity, inbreeding and Hardy-Weinberg (:func:`genotype_balance`)
    heterozygosity: dict[str, Any] = field(default_factory=dict)
    #: missing genotype calls on both sides (:func:`missing_calls`)
    missing_calls: dict[str, Any] = field(default_factory=dict)
    seed: int = 0

    def to_dict(self) -> dict[str, Any]:
        mids = 0.5 * (self.ld_bins_bp[:-1] + self.ld_bins_bp[1:])
        return {
            "allele_frequency_correlation": finite_or_none(self.allele_frequency_correlation),
            "ld_decay_error": finite_or_none(self.ld_decay_error),
            "phenotype_correlation_error": finite_or_none(self.phenotype_correlation_error),
            "phenotype_strong_correlations": strong_correlations(
                self.pheno_corr_real, self.pheno_corr_synthetic
            ),
            "pca": self.pca,
            "ld_decay": {
                "method": "mean r^2 per distance bin over a seeded sample of SNP pairs "
                "(same pairs in both cohorts); error = mean |real - synthetic| over bins",
                "bin_mid_bp": [float(x) for x in mids],
                "real": [finite_or_none(float(x)) for x in self.ld_real],
                "synthetic": [finite_or_none(float(x)) for x in self.ld_synthetic],
                "pairs": self.ld_pairs,
            },
            "phenotypes_compared": list(self.pheno_names),
            "phenotype_marginal_error": self.pheno_marginals.get("mean_abs_smd"),
            "phenotype_marginals": self.pheno_marginals,
            "phenotype_missingness": self.pheno_missingness,
            "heterozygosity": self.heterozygosity,
            "missing_calls": self.missing_calls,
            "n_shared_snps": self.n_shared_snps,
            "seed": self.seed,
        }

    def af_scatter_svg(self) -> str:
        return plots.scatter_svg(
            self.af_real,
            self.af_synthetic,
            xlabel="alt allele frequency, real",
            ylabel="alt allele frequency, synthetic",
            title=f"Allele frequencies (r = {self.allele_frequency_correlation:.3f})",
        )

    def ld_decay_svg(self) -> str:
        mids = 0.5 * (self.ld_bins_bp[:-1] + self.ld_bins_bp[1:]) / 1e3
        return plots.lines_svg(
            mids,
            {"real": self.ld_real, "synthetic": self.ld_synthetic},
            xlabel="distance (kb)",
            ylabel="mean r^2",
            title=f"LD decay (mean abs. error {self.ld_decay_error:.3f})",
        )

    def pca_svg(self) -> str:
        if self.pca_real_hist is None or self.pca_synthetic is None:
            return plots.message_svg("PCA not computed: too few polymorphic SNPs or samples")
        hist, xe, ye = self.pca_real_hist
        return plots.pca_overlay_svg(
            hist, xe, ye, self.pca_synthetic, explained=self.pca.get("real_explained_variance", [])
        )

    def phenotype_correlation_svg(self) -> str:
        if self.pheno_corr_real is None or self.pheno_corr_synthetic is None:
            return plots.message_svg(
                "Phenotype correlations not computed: fewer than two numeric phenotypes shared"
            )
        return plots.correlation_pair_svg(
            self.pheno_corr_real,
            self.pheno_corr_synthetic,
            self.pheno_names,
            title=f"Phenotype correlations (mean abs. difference "
            f"{self.phenotype_correlation_error:.3f})",
        )


def cohort_fidelity(
    real: Cohort,
    synth: Cohort,
    *,
    seed: int,
    max_snps: int = 20_000,
    ld_max_distance_bp: int = 1_000_000,
    ld_bins: int = 20,
    ld_pairs_per_chrom: int = 2_000,
    n_pcs: int = 10,
    pca_min_cell: int = 5,
    focus: tuple[str, ...] = (),
) -> CohortFidelity:
    """Cohort-level fidelity of ``synth`` against ``real`` on the SNPs they share (by id).

    Allele frequencies use every shared SNP; LD uses seeded pairs within
    ``ld_max_distance_bp``; PCA uses a seeded subsample of at most ``max_snps`` SNPs
    polymorphic in the real cohort, normalised by the real frequencies, fitted on the real
    cohort only. The real PCA cloud is kept only as a 2-D histogram with cells of fewer than
    ``pca_min_cell`` samples zeroed. Phenotype marginals:
    :func:`~dpgenome.pheno_fidelity.phenotype_marginals` (``focus``, e.g. the analysis phenotype
    and its covariates, listed first).
    """
    synth = harmonise_alleles(synth, real.variants, what="the synthetic cohort")
    rng = np.random.default_rng(seed)
    ids_r = pd.Index(real.variants["id"].astype(str))
    ids_s = pd.Index(synth.variants["id"].astype(str))
    pos_s = ids_s.get_indexer(ids_r)
    shared_r = np.flatnonzero(pos_s >= 0)
    if shared_r.size == 0:
        raise CohortError("the real and synthetic cohorts share no SNP id")
    shared_s = pos_s[shared_r]
    af_r = real.alt_frequency()[shared_r]
    af_s = synth.alt_frequency()[shared_s]
    ok = np.isfinite(af_r) & np.isfinite(af_s)
    af_corr = float(np.corrcoef(af_r[ok], af_s[ok])[0, 1]) if ok.sum() >= 3 else float("nan")

    # LD decay on the same pairs (indices into the shared SNPs)
    shared_variants = real.variants.iloc[shared_r].reset_index(drop=True)
    pi, pj = ld_pairs(
        shared_variants,
        max_distance_bp=ld_max_distance_bp,
        pairs_per_chrom=ld_pairs_per_chrom,
        seed=int(rng.integers(2**31)),
    )
    edges = np.linspace(0, ld_max_distance_bp, ld_bins + 1)
    ld_r = np.full(ld_bins, np.nan)
    ld_s = np.full(ld_bins, np.nan)
    if pi.size:
        dist = np.abs(shared_variants["pos"].to_numpy()[pj] - shared_variants["pos"].to_numpy()[pi])
        with np.errstate(invalid="ignore"):
            r2_r = pair_r2(real.dosages, shared_r[pi], shared_r[pj])
            r2_s = pair_r2(synth.dosages, shared_s[pi], shared_s[pj])
        good = np.isfinite(r2_r) & np.isfinite(r2_s)
        b = np.clip(np.searchsorted(edges, dist, side="right") - 1, 0, ld_bins - 1)
        for k in range(ld_bins):
            sel = good & (b == k)
            if sel.any():
                ld_r[k] = r2_r[sel].mean()
                ld_s[k] = r2_s[sel].mean()
        n_pairs = int(good.sum())
    else:
        n_pairs = 0
    both = np.isfinite(ld_r) & np.isfinite(ld_s)
    ld_err = float(np.mean(np.abs(ld_r[both] - ld_s[both]))) if both.any() else float("nan")

    pca, hist, synth_pcs = _pca(
        real, synth, shared_r, shared_s, af_r, rng, max_snps, n_pcs, pca_min_cell
    )
    names, corr_r, corr_s, corr_err = pheno_correlations(real, synth)
    return CohortFidelity(
        n_shared_snps=int(shared_r.size),
        allele_frequency_correlation=af_corr,
        af_real=af_r,
        af_synthetic=af_s,
        ld_bins_bp=edges,
        ld_real=ld_r,
        ld_synthetic=ld_s,
        ld_pairs=n_pairs,
        ld_decay_error=ld_err,
        pca=pca,
        pca_real_hist=hist,
        pca_synthetic=synth_pcs,
        pheno_names=tuple(names),
        pheno_corr_real=corr_r,
        pheno_corr_synthetic=corr_s,
        phenotype_correlation_error=corr_err,
        pheno_marginals=phenotype_marginals(real, synth, focus=focus),
        pheno_missingness=phenotype_missingness(real.phenotypes, synth.phenotypes),
        heterozygosity={
            "real": genotype_balance(real.dosages[:, shared_r]),
            "synthetic": genotype_balance(synth.dosages[:, shared_s]),
        },
        missing_calls=missing_calls(
            np.isnan(real.dosages)[:, shared_r], np.isnan(synth.dosages)[:, shared_s]
        ),
        seed=seed,
    )


def _call_summary(missing: np.ndarray) -> dict[str, Any]:
    per_individual = missing.mean(axis=1) if missing.size else np.zeros(0)
    per_snp = missing.mean(axis=0) if missing.size else np.zeros(0)
    return {
        "share": float(missing.mean()) if missing.size else 0.0,
        "individuals_with_any": float((per_individual > 0).mean()) if per_individual.size else 0.0,
        # over a fixed threshold, not a quantile: a quantile of the members' shares is one
        # member's share (or two neighbours')
        "individuals_over_5pct": float((per_individual > 0.05).mean())
        if per_individual.size
        else 0.0,
        "snps_over_5pct": float((per_snp > 0.05).mean()) if per_snp.size else 0.0,
    }


def missing_calls(miss_r: np.ndarray, miss_s: np.ndarray) -> dict[str, Any]:
    """Missing genotype calls of two cohorts over the same SNPs (boolean masks, True =
    missing, columns in the same order): each side's share of calls missing, share of
    individuals missing any, share of individuals missing over 5% of their calls and share
    of SNPs missing over 5% of their calls, and the correlation of the SNPs' shares between
    the sides (None unless both miss calls). Aggregates only."""
    out: dict[str, Any] = {"real": _call_summary(miss_r), "synthetic": _call_summary(miss_s)}
    snp_r, snp_s = miss_r.mean(axis=0), miss_s.mean(axis=0)
    both = snp_r.size >= 3 and snp_r.std() > 0 and snp_s.std() > 0
    out["snp_share_correlation"] = float(np.corrcoef(snp_r, snp_s)[0, 1]) if both else None
    return out


#: a SNP whose Hardy-Weinberg test gives p below this fails (plink2's --hwe convention)
HWE_P = 1e-6


def hwe_exact_p(
    hom1: np.ndarray, het: np.ndarray, hom2: np.ndarray, *, chunk: int = 2048
) -> np.ndarray:
    """The exact Hardy-Weinberg test per SNP (Wigginton, Cutler & Abecasis 2005; plink2's
    ``--hardy``): given the genotype count ``n`` and the minor allele count, the probability
    of each possible heterozygote count ``h`` is proportional to ``2^h / (h! a! b!)`` (``a``,
    ``b`` the homozygote counts it implies); p is the total probability of the counts no
    more likely than the observed one. Vectorised over SNPs (``chunk`` at a time)."""
    hom1, het, hom2 = (np.asarray(v, dtype=np.int64) for v in (hom1, het, hom2))
    n = hom1 + het + hom2
    rare = np.minimum(2 * hom1 + het, 2 * hom2 + het)  # minor allele count
    out = np.ones(len(n))
    for lo in range(0, len(n), chunk):
        sl = slice(lo, lo + chunk)
        r, nn, h_obs = rare[sl], n[sl], het[sl]
        steps = np.arange(int(r.max()) // 2 + 1 if len(r) else 1)
        h = (r % 2)[:, None] + 2 * steps[None, :]  # heterozygote counts of rare's parity
        valid = h <= r[:, None]
        h = np.where(valid, h, r[:, None])
        a = (r[:, None] - h) // 2  # homozygotes of the minor allele
        b = nn[:, None] - h - a
        log_p = (
            h * math.log(2.0)
            - special.gammaln(h + 1.0)
            - special.gammaln(a + 1.0)
            - special.gammaln(b + 1.0)
        )
        log_p = np.where(valid, log_p, -np.inf)
        log_p -= log_p.max(axis=1, keepdims=True)
        probs = np.exp(log_p)
        probs /= probs.sum(axis=1, keepdims=True)
        observed = np.take_along_axis(probs, ((h_obs - r % 2) // 2)[:, None], axis=1)
        # counts no more likely than the observed one (a relative tolerance for ties)
        out[sl] = np.minimum(1.0, (probs * (probs <= observed * (1 + 1e-7))).sum(axis=1))
    return out


def genotype_balance(dosages: np.ndarray, *, hwe_p: float = HWE_P) -> dict[str, Any]:
    """Heterozygosity of a cohort's hard calls (dosages within :data:`HARD_CALL` of a whole number,
    rounded; others and missing left out) over its SNPs polymorphic in it: the observed heterozygote
    share, the inbreeding coefficient ``F = 1 - sum H_obs / sum H_exp`` (``H_exp = 2 p (1 - p)`` per
    SNP; 0 in an outbred colony in Hardy-Weinberg equilibrium, 1 with no heterozygote), and the
    share of SNPs whose exact Hardy-Weinberg test (:func:`hwe_exact_p`) gives p < ``hwe_p``. A
    synthesizer whose genotype conditionals cannot favour the heterozygote drifts towards F = 1
    along linked SNPs (docs/tuning-history.md, stop 51)."""
    g = hard_calls(dosages)  # an ambiguous dosage is no call (as plink2)
    called = np.isfinite(g)
    n = called.sum(axis=0).astype(np.float64)
    n1 = (g == 1).sum(axis=0).astype(np.float64)
    n2 = (g == 2).sum(axis=0).astype(np.float64)
    n0 = n - n1 - n2
    with np.errstate(invalid="ignore", divide="ignore"):
        p = (n1 + 2 * n2) / (2 * n)
    poly = (n > 0) & (p > 0) & (p < 1)
    h_exp = 2 * p * (1 - p)
    if not poly.any():
        return {"snps": 0, "observed": None, "expected": None, "inbreeding": None}
    observed = float(n1[poly].sum() / n[poly].sum())
    expected_share = float((h_exp[poly] * n[poly]).sum() / n[poly].sum())
    fails = hwe_exact_p(n0[poly], n1[poly], n2[poly]) < hwe_p
    return {
        "snps": int(poly.sum()),
        "observed": observed,
        "expected": expected_share,
        "inbreeding": 1.0 - observed / expected_share,
        "hwe_failure_share": float(fails.mean()),
        "hwe_p": hwe_p,
    }


def _pca(
    real: Cohort,
    synth: Cohort,
    shared_r: np.ndarray,
    shared_s: np.ndarray,
    af_r: np.ndarray,
    rng: np.random.Generator,
    max_snps: int,
    n_pcs: int,
    min_cell: int,
) -> tuple[dict[str, Any], tuple[np.ndarray, np.ndarray, np.ndarray] | None, np.ndarray | None]:
    poly = np.flatnonzero((af_r > 0) & (af_r < 1))
    if poly.size < 2 or real.n_samples < 3 or synth.n_samples < 1:
        return {"computed": False, "reason": "too few polymorphic SNPs or samples"}, None, None
    pick = np.sort(rng.choice(poly, size=min(max_snps, poly.size), replace=False))
    p = af_r[pick]
    scale = np.sqrt(2 * p * (1 - p))

    def normalise(dos: np.ndarray) -> np.ndarray:
        x = np.asarray(dos, dtype=np.float64)
        x = np.where(np.isnan(x), 2 * p, x)
        return (x - 2 * p) / scale

    xr = normalise(real.dosages[:, shared_r[pick]])
    xs = normalise(synth.dosages[:, shared_s[pick]])
    k = int(min(n_pcs, min(xr.shape) - 1))
    _, sv, vt = np.linalg.svd(xr - xr.mean(axis=0), full_matrices=False)
    total_r = float(np.sum(sv**2))
    axes = vt[:k].T
    centre = xr.mean(axis=0)
    scores_r = (xr - centre) @ axes
    scores_s = (xs - centre) @ axes
    var_r = scores_r.var(axis=0)
    var_s = scores_s.var(axis=0)
    total_s = float(np.sum((xs - xs.mean(axis=0)) ** 2) / max(len(xs), 1))
    oos = _out_of_sample_ratio(xr, xs, k, rng)
    sd = np.sqrt(np.where(var_r > 0, var_r, np.nan))
    gap = (scores_s[:, :2].mean(axis=0) - scores_r[:, :2].mean(axis=0)) / sd[:2]
    info = {
        "computed": True,
        "n_snps": int(pick.size),
        "n_components": k,
        "real_explained_variance": [float(v) for v in (sv[:k] ** 2 / total_r)],
        "synthetic_explained_variance": [float(v) for v in var_s / total_s] if total_s else [],
        "variance_ratio_synthetic_over_real": [
            finite_or_none(float(v)) for v in (var_s / np.where(var_r > 0, var_r, np.nan))
        ],
        "variance_ratio_out_of_sample": [finite_or_none(float(v)) for v in oos],
        "centroid_distance_pc12_sd": finite_or_none(float(np.sqrt(np.sum(gap**2)))),
        "method": "real-frequency normalised dosages; SVD of the real cohort; synthetic "
        "projected on the real axes. variance_ratio_synthetic_over_real divides the "
        "synthetic's projected variance by the real cohort's own (in-sample) PC variance, "
        "which out-of-sample projection shrinks even for real individuals (a real holdout "
        "scores well below 1 on PCs 2-10); variance_ratio_out_of_sample fits the axes on a "
        "seeded half of the real cohort and divides by the projected variance of the other "
        "half (about 1 when the synthetic cohort has the real one's structure)",
    }
    return info, pca_histogram(scores_r[:, :2], scores_s[:, :2], min_cell=min_cell), scores_s[:, :2]


def _out_of_sample_ratio(
    xr: np.ndarray, xs: np.ndarray, k: int, rng: np.random.Generator
) -> np.ndarray:
    """Per PC: the synthetic rows' variance over that of held-out real rows, both projected
    on axes fitted to a seeded half of the real rows ``xr`` (normalised dosages).

    A cohort's own PC scores are inflated by fitting (in-sample) and the scores of anyone
    projected on them are shrunk (Lee, Zou & Wright 2010, PLoS Genet 6:e1001097), so the
    synthetic-over-real ratio of in-sample real variances is below 1 even for new real
    individuals; here both sides are projected, so an exchangeable cohort scores about 1.
    Empty when the real cohort is too small to halve (fewer than 4 rows per half)."""
    n = len(xr)
    half = n // 2
    if half < 4 or n - half < 4 or len(xs) < 2:
        return np.empty(0)
    perm = rng.permutation(n)
    fit, held = xr[perm[:half]], xr[perm[half:]]
    centre = fit.mean(axis=0)
    vt = np.linalg.svd(fit - centre, full_matrices=False)[2]
    axes = vt[: min(k, half - 1)].T
    var_h = ((held - centre) @ axes).var(axis=0)
    var_s = ((xs - centre) @ axes).var(axis=0)
    return var_s / np.where(var_h > 0, var_h, np.nan)


#: the real PCA histogram spans the real scores' mean +- this many sds (and the synthetic scores)
PCA_SPAN_SD = 4.0


def pca_histogram(
    real: np.ndarray, synthetic: np.ndarray, *, min_cell: int, bins: int = 30
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(counts, xedges, yedges)`` of the real PC1/PC2 scores ``real`` (n x 2), cells of
    fewer than ``min_cell`` samples zeroed. The range is the real scores' mean +- PCA_SPAN_SD
    sds (aggregates), widened to the synthetic scores, never the real extremes: the axis of an
    outlier's suppressed cell would still show where that one person lies. Real scores beyond
    it count in the edge cells."""
    mean, sd = real.mean(axis=0), real.std(axis=0)
    lo, hi = mean - PCA_SPAN_SD * sd, mean + PCA_SPAN_SD * sd
    if len(synthetic):
        lo = np.minimum(lo, synthetic.min(axis=0))
        hi = np.maximum(hi, synthetic.max(axis=0))
    hi = np.where(hi > lo, hi, lo + 1.0)
    inside = np.clip(real, lo, hi)
    hist, xe, ye = np.histogram2d(
        inside[:, 0], inside[:, 1], bins=bins, range=[[lo[0], hi[0]], [lo[1], hi[1]]]
    )
    hist[hist < min_cell] = 0
    return hist, xe, ye
