"""Per-variant association scans: vectorised linear regression with covariates (plink2
``--glm`` / GEMMA ``-lm 1`` model) and the result type shared with the mixed model.

Model, per variant j: ``y = C a + x_j b + e`` with ``C`` = [intercept, covariates]. Following
the Frisch-Waugh-Lovell theorem, y and the dosages are residualised on C once (orthogonal
projection with a QR basis of C), then each variant has the closed form

    b = <x_r, y_r> / <x_r, x_r>,  RSS = <y_r, y_r> - b <x_r, y_r>,
    se = sqrt(RSS / (n - k - 1) / <x_r, x_r>),  t = b / se,

with k = number of columns of C (intercept included), as in plink2 (Chang et al. 2015,
GigaScience 4:7) and GEMMA (Zhou & Stephens 2012, Nat. Genet. 44:821). The two-sided p-value
``P(|T| > |t|) = I_{df/(df+t^2)}(df/2, 1/2)`` is evaluated in log space
(:func:`t_test_log10_p`), so -log10 p stays exact far below the double range (1e-308).

Missing dosages are mean-imputed per variant (GEMMA's behaviour; plink2 drops the sample for
that variant instead); this is recorded in :attr:`GwasResult.missing_policy`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import special, stats

from dpgenome.cohort import Cohort, PhenoType, observed_rows
from dpgenome.errors import CohortError

#: Column order of every GWAS table (plink2 ``--glm`` naming, lower case).
GWAS_COLUMNS: tuple[str, ...] = (
    "chr",
    "pos",
    "id",
    "a1",
    "beta",
    "se",
    "t_stat",
    "p",
    "log10_p",
    "n",
)

MEAN_IMPUTE = "mean-impute: a missing dosage is replaced by the variant's observed mean dosage"

_LN10 = float(np.log(10.0))
#: below this p the regularised incomplete beta underflows; switch to the log-space series
_P_SWITCH = 1e-280


# ---------------------------------------------------------------------------- p-values


def t_test_log10_p(t: np.ndarray, df: float | np.ndarray) -> np.ndarray:
    """-log10 of the two-sided Student-t p-value, exact where p underflows doubles.

    p = I_x(df/2, 1/2) with x = df / (df + t^2) (Abramowitz & Stegun 26.7.1). Where p is
    tiny, log I_x(a, b) = a log x + b log(1-x) - log a - log B(a, b)
    + log 2F1(a+b, 1; a+1; x) (A&S 26.5.23 with 15.3.3). NaN t gives NaN.
    """
    t = np.asarray(t, dtype=np.float64)
    df_arr = np.broadcast_to(np.asarray(df, dtype=np.float64), t.shape)
    out = np.full(t.shape, np.nan)
    ok = np.isfinite(t) & (df_arr > 0)
    if not ok.any():
        return out
    t2 = t[ok] ** 2
    d = df_arr[ok]
    x = d / (d + t2)
    a = d / 2.0
    p = special.betainc(a, 0.5, x)
    with np.errstate(divide="ignore"):
        logp = np.log(p)
    tiny = p < _P_SWITCH
    if tiny.any():
        xs, as_ = x[tiny], a[tiny]
        logp[tiny] = (
            as_ * np.log(xs)
            + 0.5 * np.log1p(-xs)
            - np.log(as_)
            - special.betaln(as_, 0.5)
            + np.log(special.hyp2f1(as_ + 0.5, 1.0, as_ + 1.0, xs))
        )
    out[ok] = np.maximum(-logp / _LN10, 0.0)
    return out


def chi2_1df_log10_p(stat: np.ndarray) -> np.ndarray:
    """-log10 of the upper tail of a 1-df chi-square: p = 2 Phi(-sqrt(stat)), in log space
    (``scipy.special.log_ndtr``). Negative statistics (optimiser round-off) count as 0."""
    stat = np.asarray(stat, dtype=np.float64)
    z = np.sqrt(np.clip(stat, 0.0, None))
    return np.maximum(-(np.log(2.0) + special.log_ndtr(-z)) / _LN10, 0.0)


def p_from_log10(log10_p: np.ndarray) -> np.ndarray:
    """p = 10^(-log10 p) (0.0 below the double range; the log column stays exact)."""
    return np.power(10.0, -np.asarray(log10_p, dtype=np.float64))


def lambda_gc(log10_p: np.ndarray) -> float:
    """Genomic inflation: median chi-square (1 df) of the p-values over its null median
    (Devlin & Roeder 1999). NaN when no p-value is finite."""
    lp = np.asarray(log10_p, dtype=np.float64)
    lp = lp[np.isfinite(lp)]
    if lp.size == 0:
        return float("nan")
    med_p = np.power(10.0, -np.median(lp))
    return float(stats.chi2.isf(med_p, 1) / stats.chi2.ppf(0.5, 1))


# ---------------------------------------------------------------------------- scan


@dataclass(frozen=True)
class ScanResult:
    """Per-variant statistics of one scan (arrays of length m)."""

    beta: np.ndarray
    se: np.ndarray
    t_stat: np.ndarray
    log10_p: np.ndarray
    df: int

    @property
    def p(self) -> np.ndarray:
        return p_from_log10(self.log10_p)


#: a column of [intercept, covariates] whose part orthogonal to the columns before it (its
#: QR diagonal) is this small relative to its own norm lies in their span: the design is
#: rank-deficient (relative to the column itself, so a covariate's units do not matter)
_RANK_TOL = 1e-10


@dataclass(frozen=True)
class Collinearity:
    """Why a design [intercept, covariates] is rank-deficient: the covariates at fault (the
    redundant one last) and whether it is one covariate constant over the rows. Names only,
    never a value."""

    covariates: tuple[str, ...]
    constant: bool = False

    def describe(self, among: str = "") -> str:
        """``covariate SW16 is constant among ...``, ``covariates A and B are collinear ...``."""
        where = f" among {among}" if among else ""
        if self.constant:
            return f"covariate {self.covariates[0]} is constant{where}"
        if len(self.covariates) == 1:
            return (
                f"the one-hot level columns of covariate {self.covariates[0]} are collinear "
                f"with the intercept{where}"
            )
        return f"covariates {_and(self.covariates)} are collinear{where}"

    @property
    def remedy(self) -> str:
        if len(self.covariates) == 1:
            return f"drop {self.covariates[0]} from the covariates"
        return f"drop one of {_and(self.covariates)} from the covariates"


def _and(names: Sequence[str]) -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def design_owners(names: Sequence[str], covariates: Sequence[str]) -> list[str]:
    """The covariate each design column (:meth:`Cohort.design`: ``cov`` or ``cov=level``)
    comes from."""
    out = []
    for name in names:
        owners = [c for c in covariates if name == c or name.startswith(f"{c}=")]
        out.append(max(owners, key=len) if owners else name)
    return out


def _diagnose(design: np.ndarray, r: np.ndarray, owners: Sequence[str]) -> Collinearity | None:
    """The first column of ``design`` ([intercept, covariates], QR factor ``r``) in the
    span of the columns before it, and the covariates that span it (None: full rank)."""
    diag = np.abs(np.diag(r))  # fewer rows than columns: the columns past them are spanned
    norms = np.linalg.norm(design, axis=0)
    small = [i for i in range(1, len(diag)) if diag[i] <= _RANK_TOL * norms[i]]
    if small:
        j = small[0]
    elif design.shape[1] > len(diag) > 0:
        j = len(diag)
    else:
        return None
    # the column's coefficients on the columns before it: R[:j, :j] c = R[:j, j]
    coef = np.linalg.lstsq(r[:j, :j], r[:j, j], rcond=None)[0]
    scale = np.abs(design[:, :j]).max(axis=0) * np.abs(coef)
    used = np.flatnonzero(scale > 1e-8 * max(scale.max(), 1e-300))
    named = [owners[i - 1] for i in used if i > 0]  # column 0 is the intercept
    me = owners[j - 1]
    involved = tuple(dict.fromkeys([*(o for o in named if o != me), me]))
    constant = len(involved) == 1 and not [i for i in used if i > 0]
    return Collinearity(involved, constant)


def find_collinearity(
    covariates: np.ndarray, owners: Sequence[str] | None = None
) -> Collinearity | None:
    """Why [intercept, ``covariates``] (n x c, no missing values) is rank-deficient, by the
    criterion :func:`covariate_basis` applies; ``owners``: the covariate of each column
    (default ``column 1`` ...). None when it has full rank."""
    cov = np.asarray(covariates, dtype=np.float64)
    if cov.ndim != 2 or cov.shape[1] == 0:
        return None
    design = np.hstack([np.ones((cov.shape[0], 1)), cov])
    r = np.linalg.qr(design)[1]
    names = list(owners) if owners is not None else [f"column {i + 1}" for i in range(cov.shape[1])]
    return _diagnose(design, r, names)


def check_design(
    cohort: Cohort, pheno: str, covariates: Sequence[str]
) -> tuple[Collinearity | None, int]:
    """The design [intercept, covariates] of the rows of ``cohort`` a GWAS of ``pheno``
    tests (phenotype and every covariate observed): why it is rank-deficient (None: it is
    not) and the number of those rows. Names only: the caller words the error."""
    if not covariates:
        return None, 0
    cohort.require_phenotypes([pheno, *covariates])
    rows = np.flatnonzero(observed_rows(cohort.phenotypes, pheno, covariates))
    design, names = cohort.design(list(covariates))
    return find_collinearity(design[rows], design_owners(names, covariates)), len(rows)


def require_full_rank(
    cohort: Cohort,
    pheno: str,
    covariates: Sequence[str],
    *,
    among: str | None = None,
    subject: str = "the design",
    note: str = "",
    file: str | Path | None = None,
) -> None:
    """Raise :class:`CohortError` when the design [intercept, covariates] of the rows of
    ``cohort`` a GWAS of ``pheno`` tests is rank-deficient, naming the covariates at fault
    (and, with ``file``, the phenotype file and the redundant covariate's column). ``among``
    describes the rows, ``{n}`` standing for their number (default: the analysis samples);
    ``subject`` whose design it is; ``note`` follows the diagnosis. Names and counts only,
    never a value: the message goes to the operator."""
    found, n = check_design(cohort, pheno, covariates)
    if found is None:
        return
    if among is None:
        among = f"the {{n}} analysis samples ({pheno} and every covariate observed)"
    rows = among.replace("{n}", str(n))
    raise CohortError(
        f"{subject} [intercept + covariates] is rank-deficient: "
        f"{found.describe(rows)}{note}: {found.remedy} (--covar)",
        file=file,
        column=None if file is None else found.covariates[-1],
    )


def covariate_basis(
    n: int, covariates: np.ndarray | None, names: Sequence[str] | None = None
) -> np.ndarray:
    """Orthonormal basis (n x k, float64) of [intercept, covariates]; rejects collinearity,
    naming the covariates at fault (``names``: the covariate of each column)."""
    cols = [np.ones((n, 1))]
    if covariates is not None and np.size(covariates):
        cov = np.asarray(covariates, dtype=np.float64).reshape(n, -1)
        if not np.isfinite(cov).all():
            raise CohortError("covariates contain missing or non-finite values")
        cols.append(cov)
    design = np.hstack(cols)
    q, r = np.linalg.qr(design)
    owners = (
        list(names) if names is not None else [f"column {i}" for i in range(1, design.shape[1])]
    )
    found = _diagnose(design, r, owners)
    if found is not None:
        raise CohortError(
            f"{found.describe(f'the {n} samples analysed')}, so the design [intercept + "
            f"covariates] is rank-deficient: {found.remedy}"
        )
    return np.ascontiguousarray(q)


def _impute_mean(block: np.ndarray) -> np.ndarray:
    """Replace NaN in each column by that column's observed mean (in place when possible)."""
    missing = np.isnan(block)
    if not missing.any():
        return block
    with np.errstate(invalid="ignore"):
        means = np.nanmean(block, axis=0)
    means = np.where(np.isnan(means), 0.0, means).astype(block.dtype)
    return np.where(missing, means[None, :], block)


def linear_scan(
    dosages: np.ndarray,
    y: np.ndarray,
    covariates: np.ndarray | None = None,
    *,
    chunk: int = 0,
    dtype: type[np.floating[Any]] | np.dtype[Any] = np.float32,
    rows: np.ndarray | None = None,
    covariate_names: Sequence[str] | None = None,
) -> ScanResult:
    """Per-variant OLS of ``y ~ 1 + covariates + dosage`` for every column of ``dosages``.

    ``dosages`` (n x m, NaN = missing, mean-imputed per variant), ``y`` (n, no NaN) and
    ``covariates`` (n x c, no NaN, no intercept column). Work is done in variant chunks of
    ``chunk`` columns (memory O(n * chunk); 0 = automatic, ~2.5 MB blocks) in ``dtype``:
    float32 is faster and agrees with float64 to ~1e-5 in -log10 p for ordinary signals and
    to ~1e-5 *relative* for huge ones (the float32 dot products with y accumulate in float32;
    e.g. 3e-3 on -log10 p ~ 300 at n = 50,000); the sums of squares accumulate in float64
    (float32 accumulation would cost 5e-4 at n = 50,000). Use float64 for reference output.
    A monomorphic variant gets NaN statistics. ``rows`` (optional)
    selects the samples of ``dosages`` chunk by chunk, without copying the whole matrix.
    ``covariate_names`` (the covariate of each column of ``covariates``) name the
    covariates at fault when the design is rank-deficient.
    """
    y = np.asarray(y, dtype=np.float64)
    n, m = dosages.shape if rows is None else (len(rows), dosages.shape[1])
    if y.shape != (n,):
        raise CohortError(f"phenotype has {y.shape[0]} values but the dosages {n} rows")
    if not np.isfinite(y).all():
        raise CohortError("the phenotype has missing values; take the analysis subset first")
    q = covariate_basis(n, covariates, covariate_names)
    k = q.shape[1]
    df = n - k - 1
    if df < 1:
        raise CohortError(f"{n} samples are too few for {k - 1} covariate(s) and a dosage")
    y_r = y - q @ (q.T @ y)
    yy = float(y_r @ y_r)
    dt = np.dtype(dtype)
    q_d = q.astype(dt)
    y_d = y_r.astype(dt)
    ones_n = np.ones(n, dtype=dt)
    if chunk <= 0:  # automatic: blocks of ~2.5 MB stay in cache across the passes below
        chunk = int(min(2048, max(64, 640_000 // n)))
    beta = np.empty(m)
    sxx = np.empty(m)
    for start in range(0, m, chunk):
        stop = min(start + chunk, m)
        raw = dosages[:, start:stop] if rows is None else dosages[rows, start:stop]
        block = np.asarray(raw, dtype=dt)
        block = _impute_mean(block)
        # centre first: the intercept is in C, so any constant works and the float32 mean
        # (one matrix-vector product) is enough; centring keeps the sums of squares exact
        block = block - (ones_n @ block) / n
        proj = q_d.T @ block  # k x b
        sxy = (y_d @ block).astype(np.float64)  # y_r is orthogonal to C: no need to project x
        ss = np.einsum("ij,ij->j", block, block, dtype=np.float64)
        sxx_b = ss - np.einsum("ij,ij->j", proj, proj, dtype=np.float64)
        sxx[start:stop] = sxx_b
        with np.errstate(invalid="ignore", divide="ignore"):
            beta[start:stop] = sxy / sxx_b
    with np.errstate(invalid="ignore", divide="ignore"):
        poly = sxx > 1e-8 * n
        rss = np.where(poly, yy - beta * beta * sxx, np.nan)
        rss = np.maximum(rss, 0.0)
        se = np.sqrt(rss / df / sxx)
        t = beta / se
    beta = np.where(poly, beta, np.nan)
    se = np.where(poly, se, np.nan)
    t = np.where(poly, t, np.nan)
    return ScanResult(beta=beta, se=se, t_stat=t, log10_p=t_test_log10_p(t, df), df=df)


# ---------------------------------------------------------------------------- cohort level


@dataclass(frozen=True)
class GwasResult:
    """One GWAS: ``table`` has :data:`GWAS_COLUMNS` (then method-specific extras) with one row
    per variant; ``p`` is the Wald p-value, ``log10_p`` = -log10 p (exact in the far tail)."""

    table: pd.DataFrame
    n: int
    lambda_gc: float
    method: str
    missing_policy: str
    pheno: str = ""
    covariates: tuple[str, ...] = ()
    details: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """Aggregates only (no per-variant rows), for provenance and logs."""
        return {
            "method": self.method,
            "pheno": self.pheno,
            "covariates": list(self.covariates),
            "n": self.n,
            "n_variants": len(self.table),
            "lambda_gc": self.lambda_gc,
            "missing_policy": self.missing_policy,
            **self.details,
        }


def prepare(
    cohort: Cohort, pheno: str, covariates: Sequence[str] = ()
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """Rows of the samples with the phenotype and all covariates observed; their y, the
    covariate design (categorical one-hot, first level dropped: :meth:`Cohort.design`) and
    its column names."""
    cohort.require_phenotypes([pheno, *covariates])
    if cohort.pheno_types[pheno] == PhenoType.CATEGORICAL:
        raise CohortError(
            f"phenotype {pheno!r} is categorical; a GWAS needs a numeric (continuous or 0/1) one"
        )
    observed = cohort.phenotypes[[pheno, *covariates]].notna().all(axis=1).to_numpy()
    if not observed.any():
        raise CohortError(f"no sample has {pheno!r} and all covariates observed")
    rows = np.flatnonzero(observed)
    y = cohort.phenotype(pheno)[rows]
    design, names = cohort.design(list(covariates))
    return rows, y, design[rows], names


def result_table(
    cohort: Cohort, scan: ScanResult, n: int, extras: dict[str, np.ndarray] | None = None
) -> pd.DataFrame:
    """Assemble the plink2-like table; ``a1`` is the allele counted by the dosage (alt)."""
    v = cohort.variants
    table = pd.DataFrame(
        {
            "chr": v["chr"].astype(str).to_numpy(),
            "pos": v["pos"].to_numpy(dtype=np.int64),
            "id": v["id"].astype(str).to_numpy(),
            "a1": v["alt"].astype(str).to_numpy() if "alt" in v else "",
            "beta": scan.beta,
            "se": scan.se,
            "t_stat": scan.t_stat,
            "p": scan.p,
            "log10_p": scan.log10_p,
            "n": np.full(len(v), n, dtype=np.int64),
        }
    )
    for name, values in (extras or {}).items():
        table[name] = values
    return table


def linear_gwas(
    cohort: Cohort,
    pheno: str,
    covariates: Sequence[str] = (),
    *,
    chunk: int = 0,
    dtype: type[np.floating[Any]] | np.dtype[Any] = np.float32,
) -> GwasResult:
    """Linear GWAS ``pheno ~ 1 + covariates + dosage`` on the samples with the phenotype and
    every covariate observed (a 0/1 phenotype is analysed as a number, like R ``lm``)."""
    rows, y, design, names = prepare(cohort, pheno, covariates)
    full = len(rows) == cohort.n_samples
    scan = linear_scan(
        cohort.dosages,
        y,
        design,
        chunk=chunk,
        dtype=dtype,
        rows=None if full else rows,
        covariate_names=design_owners(names, covariates),
    )
    table = result_table(cohort, scan, len(rows))
    return GwasResult(
        table=table,
        n=len(rows),
        lambda_gc=lambda_gc(scan.log10_p),
        method="linear (OLS per variant, t test with n-k-1 df)",
        missing_policy=MEAN_IMPUTE,
        pheno=pheno,
        covariates=tuple(covariates),
    )
