"""Phenotype models of the CFW-like simulator (:mod:`dpgenome.simulate`).

1. **Phenotype rows** (:func:`fit_pheno_model`), used when the simulated cohort does not have
   exactly the 1,092 mice of the real table: a Gaussian copula (Nelsen 2006, *An
   Introduction to Copulas*, ch. 2; as the "GaussianCopula" of Patki et al. 2016, *The
   Synthetic Data Vault*):

   * each column gets a latent normal variable: numeric columns through the normal scores of
     their mid-ranks, categorical (text) columns through their integer codes (sorted levels);
   * each column with missing values also gets a latent missingness indicator (a thresholded
     normal, so that missingness can depend on other columns and on other missingness);
   * the latent correlation matrix is estimated pairwise on the rows where both columns are
     observed, as the correlation of van der Waerden normal scores (a consistent estimator of
     the copula correlation, Klaassen & Wellner 1997), and projected onto the
     positive-definite cone; for missingness indicators this is a (conservative)
     point-biserial proxy of the tetrachoric correlation;
   * sampling draws latent normals, maps each value through the inverse *empirical* CDF of
     the column (so marginals, including their atoms, are the real ones) and sets a value
     missing when its indicator falls below the column's missing rate.

   One-hot columns derived from a categorical parent (``SW1..SW25`` from ``round``,
   ``FCbox1..4`` from ``FCbox`` and so on) are not modelled: they are rebuilt from the sampled
   parent, so they stay consistent. The model holds only per-column sorted observed values
   (the empirical marginals) and a correlation matrix; sampled rows are new draws, not copies
   of real rows.

2. **The abBMD trait** (:func:`plant_abbmd`): a liability-threshold model (Falconer 1965):
   liability = sum over QTLs of a haplotype score + ``sw16_effect`` * SW16 + N(0, residual),
   cases above the ``1 - case_fraction`` quantile of the rows where abBMD is observed (the
   row's missingness is kept). Each QTL (:class:`QtlSpec`; by default the real loci,
   chromosome 11 at 95.3 Mb and chromosome 5 at 23.8 Mb) is a haplotype: a focal SNP, the
   common SNP (MAF >= 10%) in the central half of the window with the longest haplotype block
   (most window SNPs at r^2 >= 0.5; the real loci sit on long haplotypes, 176 SNPs over
   2.3 Mb at p < 1e-8 on chromosome 11), and the ``n_causal`` SNPs in strongest LD with it
   (|r| >= ``min_r``), signed to carry the same haplotype. The locus's share of liability
   variance is either given or calibrated (bisection, see :class:`QtlSpec`) so that its lead
   SNP in ``abBMD ~ SW16 + dosage`` reaches the real study's lead -log10 p. A single causal
   SNP per locus gives too few hits at this SNP density (issue 3); the haplotype does not.

3. **The bone columns follow the planted abBMD** (:func:`bone_columns_follow`). In the real
   table abBMD is BMD above a line (every case above 1.9557, every control at most 1.9533;
   r = 0.83), and ``abnormalbone`` goes with them (77 of its 80 ones are abBMD cases). A
   planted abBMD beside the rows' own BMD broke both (r 0.01 with BMD, 291 of 960 rows
   contradicting the line): each row with abBMD observed now takes a real (BMD,
   abnormalbone) pair of its class, cases from the real cases and controls from the real
   controls, assigned in the order of the row's liability (a quantile match: within each
   class, the higher the liability, the higher the BMD); BMD is missing where abBMD is.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from dpgenome.errors import ConfigError
from dpgenome.nesting import Nesting, derived_columns, nested_in, public_nestings


def _normal_scores(values: np.ndarray) -> np.ndarray:
    """Normal scores of mid-ranks of the observed entries (NaN stays NaN)."""
    out = np.full(values.shape, np.nan)
    ok = ~np.isnan(values)
    if ok.sum() > 1:
        r = stats.rankdata(values[ok])
        out[ok] = stats.norm.ppf(r / (ok.sum() + 1))
    return out


def _nearest_correlation(a: np.ndarray, floor: float = 1e-6) -> np.ndarray:
    """Clip eigenvalues at ``floor`` and rescale to unit diagonal (Higham 2002, one step)."""
    a = (a + a.T) / 2
    w, v = np.linalg.eigh(a)
    b = (v * np.maximum(w, floor)) @ v.T
    d = np.sqrt(np.diag(b))
    b = b / np.outer(d, d)
    np.fill_diagonal(b, 1.0)
    return b


@dataclass(frozen=True)
class PhenoModel:
    """A fitted Gaussian-copula model of phenotype rows (see the module docstring)."""

    columns: tuple[str, ...]  # every column of the table, in order
    modelled: tuple[str, ...]  # columns with a latent value variable
    categorical: dict[str, tuple[str, ...]]  # text columns -> sorted levels
    marginals: dict[str, np.ndarray]  # sorted observed values (codes for categorical)
    missing_rate: dict[str, float]  # columns with any missing value -> rate
    correlation: np.ndarray  # latent correlation: values, then missingness indicators
    derived: dict[str, tuple[str, object]]
    #: columns nested in another (cages in rounds): redrawn from the sampled parent at the
    #: end of :meth:`sample` (:mod:`dpgenome.nesting`), so each cage stays in its round
    nested: dict[str, Nesting] = field(default_factory=dict)

    @property
    def indicator_columns(self) -> tuple[str, ...]:
        return tuple(self.missing_rate)

    def sample(self, n: int, rng: np.random.Generator) -> pd.DataFrame:
        """Draw ``n`` phenotype rows."""
        k = len(self.modelled)
        chol = np.linalg.cholesky(self.correlation)
        z = rng.standard_normal((n, chol.shape[0])) @ chol.T
        u = stats.norm.cdf(z)
        data: dict[str, object] = {}
        for j, name in enumerate(self.modelled):
            sorted_obs = self.marginals[name]
            idx = np.minimum((u[:, j] * len(sorted_obs)).astype(np.int64), len(sorted_obs) - 1)
            col = sorted_obs[idx].astype(np.float64)
            if name in self.missing_rate:
                m = k + self.indicator_columns.index(name)
                col[u[:, m] < self.missing_rate[name]] = np.nan
            if name in self.categorical:
                levels = np.asarray(self.categorical[name], dtype=object)
                text = np.full(n, np.nan, dtype=object)
                ok = ~np.isnan(col)
                text[ok] = levels[col[ok].astype(np.int64)]
                data[name] = text
            else:
                data[name] = col
        for name, (parent, level) in self.derived.items():
            parent_values = pd.Series(data[parent])
            onehot = (parent_values == level).to_numpy(dtype=np.float64, copy=True)
            onehot[parent_values.isna().to_numpy()] = np.nan
            data[name] = onehot
        for name in self.columns:  # constant columns fully missing in the real table
            data.setdefault(name, np.full(n, np.nan))
        for name, nesting in self.nested.items():  # last: every other draw stays as it was
            data[name] = nesting.draw(pd.Series(data[nesting.parent]), rng)
        frame = pd.DataFrame({name: data[name] for name in self.columns})
        for name in self.categorical:
            frame[name] = frame[name].astype(object)
        return frame


def fit_pheno_model(table: pd.DataFrame) -> PhenoModel:
    """Fit the copula to a phenotype table (no ``id`` column)."""
    derived = derived_columns(table.columns)
    modelled = [c for c in table.columns if c not in derived and table[c].notna().any()]
    categorical: dict[str, tuple[str, ...]] = {}
    marginals: dict[str, np.ndarray] = {}
    numeric = np.empty((len(table), len(modelled)))
    for j, name in enumerate(modelled):
        col = table[name]
        if pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col):
            values = col.to_numpy(dtype=np.float64, na_value=np.nan)
        else:
            levels = tuple(sorted(col.dropna().astype(str).unique()))
            categorical[name] = levels
            codes = pd.Categorical(col.astype(object).where(col.notna(), None), categories=levels)
            values = np.where(codes.codes < 0, np.nan, codes.codes.astype(np.float64))
        numeric[:, j] = values
        marginals[name] = np.sort(values[~np.isnan(values)])
    missing = np.isnan(numeric)
    miss_cols = [j for j in range(len(modelled)) if missing[:, j].any()]
    missing_rate = {modelled[j]: float(missing[:, j].mean()) for j in miss_cols}
    latent = np.column_stack(
        [_normal_scores(numeric[:, j]) for j in range(len(modelled))]
        + [_normal_scores(missing[:, j].astype(np.float64)) for j in miss_cols]
    )
    ok = ~np.isnan(latent)
    # Pairwise-complete correlation of the normal scores (vectorised).
    zero = np.where(ok, latent, 0.0)
    okf = ok.astype(np.float64)
    count = okf.T @ okf
    with np.errstate(invalid="ignore", divide="ignore"):
        sx = zero.T @ okf
        sxx = (zero**2).T @ okf
        sxy = zero.T @ zero
        cov = sxy - sx * sx.T / count
        var_x = sxx - sx**2 / count
        rho = cov / np.sqrt(var_x * var_x.T)
    rho = np.where(np.isfinite(rho) & (count >= 10), np.clip(rho, -1.0, 1.0), 0.0)
    np.fill_diagonal(rho, 1.0)
    return PhenoModel(
        columns=tuple(table.columns),
        modelled=tuple(modelled),
        categorical=categorical,
        marginals=marginals,
        missing_rate=missing_rate,
        correlation=_nearest_correlation(rho),
        derived=derived,
        nested=nested_in(modelled, public_nestings(table)),
    )


# ---------------------------------------------------------------------------- abBMD trait


@dataclass(frozen=True)
class QtlSpec:
    """One planted abBMD locus, modelled as a haplotype of several causal SNPs.

    ``variance`` is the share of liability variance the locus explains when
    ``SimConfig.calibrate_lead == "off"``; otherwise it is solved for (bisection) so that the
    locus's lead SNP reaches the real study's ``lead_log10p``: at the real per-SNP variance
    explained (``"variance"``: p then scales with the cohort's size) or at the real p
    whatever the size (``"pvalue"``: small cohorts keep genome-wide hits)."""

    chrom: str
    pos: int
    lead_log10p: float
    variance: float = 0.15
    n_causal: int = 20
    half_window: int = 1_500_000
    min_r: float = 0.5


#: The real loci of the published abBMD GWAS (Parker et al. 2016) with their lead
#: -log10 p (chromosome 11: rs29477109, p = 5.05e-14; chromosome 5: p = 2.1e-9).
DEFAULT_QTLS: tuple[QtlSpec, ...] = (
    QtlSpec("11", 95_300_000, lead_log10p=13.30),
    QtlSpec("5", 23_800_000, lead_log10p=8.68),
)
#: Mice with abBMD observed in the real table (the real GWAS sample size).
REAL_ABBMD_OBSERVED = 960


@dataclass(frozen=True)
class _Locus:
    spec: QtlSpec
    score: np.ndarray  # standardised haplotype score of the cohort (mean 0, variance 1)
    window: np.ndarray  # cohort hard calls of the SNPs within half_window of the locus
    causal: pd.DataFrame  # id, chr, pos, allele, unit_effect (per alt allele, unit variance)


def _qtl_haplotype(spec: QtlSpec, calls: np.ndarray, variants: pd.DataFrame, n: int) -> _Locus:
    """The causal haplotype of one locus: a focal SNP and the SNPs in strongest LD with it
    (``calls``: int8 alt-allele counts of the cohort's chromosome, ``variants`` its map)."""
    all_pos = variants["pos"].to_numpy()
    in_window = np.flatnonzero(np.abs(all_pos - spec.pos) <= spec.half_window)
    g = calls[:n, in_window].astype(np.float64)  # only the window: O(n x window)
    pos = all_pos[in_window]
    window = np.arange(len(in_window))
    freq = g.mean(0) / 2
    common = window[np.minimum(freq, 1 - freq) >= 0.1]
    if len(common) == 0:
        raise ConfigError(f"no common SNP within {spec.half_window} bp of QTL {spec}")
    z = (g - g.mean(0)) / np.maximum(g.std(0), 1e-12)
    # focal: the common SNP in the central half of the window carrying the longest haplotype
    # block (most window SNPs with r^2 >= 0.5), ties to the one nearest the locus
    central = common[np.abs(pos[common] - spec.pos) <= spec.half_window / 2]
    if len(central) == 0:
        central = common
    zc = z[:, central]
    block = ((zc.T @ z / n) ** 2 >= 0.5).sum(axis=1)
    best = np.flatnonzero(block == block.max())
    focal = central[best[np.argmin(np.abs(pos[central[best]] - spec.pos))]]
    r = z.T @ z[:, focal] / n
    # the haplotype: the focal SNP and the SNPs in strongest LD with it (|r| >= min_r)
    order = np.argsort(-np.abs(r), kind="stable")
    order = order[np.abs(r[order]) >= spec.min_r][: spec.n_causal]
    causal = np.sort(order)  # window-local indices
    signs = np.sign(r[causal])
    score = g[:, causal] @ signs
    sd = score.std()
    sd = sd if sd > 0 else 1.0
    table = pd.DataFrame(
        {
            "id": variants["id"].to_numpy()[in_window[causal]],
            "chr": spec.chrom,
            "pos": pos[causal],
            "allele": variants["alt"].to_numpy()[in_window[causal]],
            "unit_effect": signs / sd,
        }
    )
    return _Locus(spec, (score - score.mean()) / sd, g, table)


def _lead_chi2(window: np.ndarray, y: np.ndarray, sw16: np.ndarray) -> float:
    """Largest squared t statistic of ``y ~ SW16 + dosage`` over the locus window."""
    _, t, _ = _ols_t(window, y, sw16[:, None])
    return float(np.nanmax(t * t))


def _target_chi2(lead_log10p: float, n_obs: int, mode: str) -> float:
    """Target t^2 of a locus's lead SNP with ``n_obs`` mice: the real lead's p at ``n_obs - 3``
    d.f. (``"pvalue"``), or the real lead's t^2 (R lm, 960 mice, 957 d.f.) carried to
    ``n_obs`` mice at the same per-SNP variance explained r^2 = t^2 / (t^2 + dof)."""
    p = 10.0**-lead_log10p
    if mode == "pvalue":
        return float(stats.t.isf(p / 2.0, n_obs - 3) ** 2)
    t_real = stats.t.isf(p / 2.0, REAL_ABBMD_OBSERVED - 3)
    r2 = t_real**2 / (t_real**2 + REAL_ABBMD_OBSERVED - 3)
    return float(r2 * (n_obs - 3) / (1.0 - r2))


def plant_abbmd(
    pheno: pd.DataFrame,
    qtls: Sequence[QtlSpec],
    chromosomes: Mapping[str, tuple[np.ndarray, pd.DataFrame]],
    *,
    sw16_effect: float,
    case_fraction: float,
    calibrate_lead: str,
    rng: np.random.Generator,
    offset: np.ndarray | None = None,
) -> tuple[np.ndarray, dict[str, Any], np.ndarray]:
    """Generate the binary ``abBMD`` (liability-threshold model, see the module docstring)
    for the rows of ``pheno`` (its ``SW16`` column and its ``abBMD`` missingness are used);
    ``offset`` (per row, liability sd units) shifts each row's liability, e.g. by its
    sub-colony (a stratified trait).
    ``chromosomes`` maps a chromosome to (int8 calls of the cohort, variant table); QTLs on
    chromosomes not given are left out. Returns the new column, the ground truth and each
    row's liability."""
    n = len(pheno)
    loci = [
        _qtl_haplotype(spec, *chromosomes[spec.chrom], n)
        for spec in qtls
        if spec.chrom in chromosomes
    ]
    noise = rng.standard_normal(n)
    shift = np.zeros(n) if offset is None else np.asarray(offset, dtype=np.float64)
    sw16_raw = pheno["SW16"].to_numpy(dtype=np.float64, na_value=np.nan)
    sw16 = np.nan_to_num(sw16_raw, nan=0.0)
    observed = pheno["abBMD"].notna().to_numpy()

    def trait(variances: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
        genetic = sum(
            (math.sqrt(v) * locus.score for v, locus in zip(variances, loci, strict=True)),
            start=np.zeros(n),
        )
        liability = genetic + sw16_effect * sw16 + math.sqrt(1 - variances.sum()) * noise + shift
        threshold = float(np.quantile(liability[observed], 1.0 - case_fraction))
        ab = (liability > threshold).astype(np.float64)
        ab[~observed] = np.nan
        return ab, liability, threshold

    variances = np.array([locus.spec.variance for locus in loci])
    targets = np.full(len(loci), np.nan)
    if calibrate_lead != "off" and loci:
        n_obs = int((observed & ~np.isnan(sw16_raw)).sum())
        targets = np.array(
            [_target_chi2(locus.spec.lead_log10p, n_obs, calibrate_lead) for locus in loci]
        )
        for _ in range(3):  # coordinate-wise bisection (the loci share the threshold)
            for i, locus in enumerate(loci):
                # at most 0.6 per locus and 0.9 in all (the residual keeps >= 10%)
                lo, hi = 0.0, min(0.6, 0.9 - (variances.sum() - variances[i]))
                for _ in range(22):
                    variances[i] = (lo + hi) / 2
                    chi2 = _lead_chi2(locus.window, trait(variances)[0], sw16_raw)
                    lo, hi = (variances[i], hi) if chi2 < targets[i] else (lo, variances[i])
                variances[i] = (lo + hi) / 2
    ab, liability, threshold = trait(variances)
    causal: list[dict[str, Any]] = []
    records = []
    for v, target, locus in zip(variances, targets, loci, strict=True):
        scale = math.sqrt(v)
        table = locus.causal
        for vid, pos, allele, unit in zip(
            table["id"].astype(str),
            table["pos"].to_numpy(np.int64).tolist(),
            table["allele"].astype(str),
            table["unit_effect"].to_numpy(np.float64).tolist(),
            strict=True,
        ):
            causal.append(
                {
                    "id": vid,
                    "chr": locus.spec.chrom,
                    "pos": pos,
                    "allele": allele,
                    "effect": unit * scale,
                }
            )
        lead = _lead_chi2(locus.window, ab, sw16_raw)
        records.append(
            asdict(locus.spec)
            | {
                "variance": float(v),
                "n_causal_used": len(locus.causal),
                "target_lead_chi2": None if np.isnan(target) else float(target),
                "lead_chi2": lead,
            }
        )
    residual_sd = math.sqrt(1.0 - float(variances.sum()))
    truth = {
        "trait": "abBMD",
        "causal_variants": causal,
        "loci": records,
        "liability_model": {
            "formula": "liability = sum(effect * (alt_dosage - mean) over causal variants) "
            "+ sw16_effect * SW16 + N(0, residual_sd^2); abBMD = 1 if liability > threshold",
            "sw16_effect": sw16_effect,
            "residual_sd": residual_sd,
            "threshold": threshold,
            "genetic_variance": float(variances.sum()),
            "calibrated_to_real_lead": calibrate_lead,
        },
        "case_fraction": float(np.nanmean(ab)),
        "target_case_fraction": case_fraction,
        "n_observed": int(observed.sum()),
    }
    if offset is not None:
        model = truth["liability_model"]
        assert isinstance(model, dict)
        model["formula"] += " (plus each row's offset: colony_effects)"
        model["offset_sd"] = float(shift.std())
    return ab, truth, liability


#: the real table's abBMD is BMD above this line (largest control 1.95328, smallest case
#: 1.95569): the midpoint
BMD_CASE_LINE = 1.9545
#: the columns moved with BMD (a row's pair is kept together: ``abnormalbone`` is mostly
#: the high-BMD mice)
BONE_COLUMNS = ("BMD", "abnormalbone")


def bone_columns_follow(
    pheno: pd.DataFrame, ab: np.ndarray, liability: np.ndarray, real: pd.DataFrame
) -> pd.DataFrame:
    """``pheno`` with :data:`BONE_COLUMNS` of every row whose planted ``ab`` is observed
    taken from the ``real`` table's rows of the same class (BMD above or below
    :data:`BMD_CASE_LINE`), the class's rows ranked by BMD and matched by quantile to the
    rows ranked by ``liability`` (see the module docstring). Without a BMD column in both,
    ``pheno`` unchanged."""
    columns = [c for c in BONE_COLUMNS if c in pheno.columns and c in real.columns]
    if "BMD" not in columns:
        return pheno
    out = pheno.copy()
    real_bmd = real["BMD"].to_numpy(dtype=np.float64, na_value=np.nan)
    donors_all = real[columns].to_numpy(dtype=np.float64, na_value=np.nan)
    for case in (False, True):
        rows = np.flatnonzero(~np.isnan(ab) & ((ab == 1.0) == case))
        donors = np.flatnonzero(~np.isnan(real_bmd) & ((real_bmd > BMD_CASE_LINE) == case))
        if rows.size == 0 or donors.size == 0:
            continue
        donors = donors[np.argsort(real_bmd[donors], kind="stable")]
        rows = rows[np.argsort(liability[rows], kind="stable")]
        pick = ((np.arange(rows.size) + 0.5) * donors.size / rows.size).astype(np.int64)
        values = donors_all[donors[pick]]
        for j, column in enumerate(columns):
            column_values = out[column].to_numpy(dtype=np.float64, na_value=np.nan, copy=True)
            column_values[rows] = values[:, j]
            out[column] = column_values
    # abBMD is read off BMD: one is missing where the other is (as in the real table)
    bmd = out["BMD"].to_numpy(dtype=np.float64, na_value=np.nan, copy=True)
    bmd[np.isnan(ab)] = np.nan
    out["BMD"] = bmd
    return out


def _ols_t(
    dosages: np.ndarray, y: np.ndarray, covariates: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, int]:
    """Per-column OLS of ``y ~ 1 + covariates + dosage``: (beta, t, residual d.f.)."""
    cov = np.ones((len(y), 1))
    if covariates is not None:
        cov = np.column_stack([cov, covariates])
    ok = ~np.isnan(y) & ~np.isnan(cov).any(axis=1)
    q, _ = np.linalg.qr(cov[ok])
    yr = y[ok] - q @ (q.T @ y[ok])
    d = dosages[ok].astype(np.float64)
    d -= q @ (q.T @ d)
    sxx = np.einsum("ij,ij->j", d, d)
    sxy = d.T @ yr
    dof = int(ok.sum()) - cov.shape[1] - 1
    with np.errstate(invalid="ignore", divide="ignore"):
        beta = sxy / sxx
        rss = yr @ yr - beta * sxy
        t = beta / np.sqrt(rss / dof / sxx)
    return beta, t, dof


def calibration_gwas(
    dosages: np.ndarray, y: np.ndarray, covariates: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Per-SNP OLS ``y ~ 1 + covariates + dosage`` on the rows with ``y`` and covariates
    observed (Frisch-Waugh-Lovell: residualise y and every dosage column on the covariates,
    then a simple regression per column). Returns (beta, two-sided p). Used to calibrate and
    check the planted association; the GWAS engine proper is :mod:`dpgenome.gwas`."""
    beta, t, dof = _ols_t(dosages, y, covariates)
    return beta, 2.0 * stats.t.sf(np.abs(t), dof)
