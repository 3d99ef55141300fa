"""Does science on the synthetic cohort reach the same conclusions? GWAS- and cohort-level
fidelity metrics of a synthetic cohort against the real one.

GWAS (:func:`compare_gwas`), on the SNPs present in both results (matched on SNP id; SNPs in
only one result are counted and left out of every metric; a SNP whose ``a1`` differs has the
synthetic beta sign flipped):

* SNP level, per threshold: hits in each, overlap, recall = overlap / real hits,
  precision = overlap / synthetic hits (each null when its denominator is 0), F1; and, at
  each threshold stricter than ``support_threshold``, the synthetic hits the real GWAS does
  not reach (``false_hits``), how many of them it puts below ``support_threshold`` all the
  same (``false_hits_supported``: the SNPs of a real locus just short of the line, which a
  second sample of the same people would put on either side) and their real -log10 p range;
* locus level: significant SNPs (at the first, strictest threshold) are clumped around lead
  SNPs by distance (the most significant unassigned SNP takes every significant SNP on its
  chromosome within ``locus_window_bp``, repeated), and clumps within ``locus_window_bp`` of
  each other are merged into one locus (a long LD block counts once); a real locus is
  *recovered* when a synthetic locus lies within ``locus_window_bp`` of it. A synthetic
  locus with no real locus within the window is *unmatched*; it is *spurious* (a false
  discovery) when, in addition, no real SNP within ``locus_window_bp`` of it reaches the
  suggestive ``support_threshold`` (default: the loosest threshold, 2e-6): a synthetic hit
  at a SNP that the real GWAS puts at p = 5e-8 is a threshold crossing, which the SNP-level
  precision counts, not a locus the real data do not show;
* lambda_GC of each on the shared SNPs (each p-value read as a 1-df chi^2, its median over
  the null median 0.455; Devlin & Roeder 1999), Spearman correlation of -log10 p, and at the
  real hits (first threshold): Pearson correlation of beta, the share of equal signs and
  the effects' size (the least-squares slope through the origin of synthetic beta on real
  beta; and synthetic over real beta at the real lead SNP): a correlation near 1 says the
  effects rank alike, not that they are the same size.
* F1 = 2 overlap / (real hits + synthetic hits): 0 when only one side has hits.

Cohort (:func:`cohort_fidelity`): allele-frequency correlation, LD decay (mean r^2 per
distance bin on a seeded sample of SNP pairs, the same pairs in both cohorts), PCA fitted on
the real cohort with the synthetic one projected (Patterson, Price & Reich 2006
normalisation), phenotype correlation matrices. Only aggregates leave this module.
"""

from __future__ import annotations

import io
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import special, stats

from dpgenome import plots
from dpgenome.cohort import Cohort, PhenoType, harmonise_alleles
from dpgenome.errors import CohortError, InputError
from dpgenome.gwas import GwasResult, lambda_gc
from dpgenome.io.files import check_utf8, open_binary, strip_bom
from dpgenome.io.tables import parser_error

log = logging.getLogger(__name__)

DEFAULT_THRESHOLDS: tuple[float, ...] = (1e-8, 2e-6)
#: a p-value written as 0 (plink2, GEMMA: below the smallest double) is read as this
P_FLOOR = float(np.nextafter(0.0, 1.0))  # 4.9e-324: below any p the file could write
DEFAULT_LOCUS_WINDOW_BP = 1_000_000
_REQUIRED = ("id", "chr", "pos")
#: column names of other tools accepted as ours (plink2 --glm, GEMMA, R/CSV exports)
_ALIASES = {
    "id": ("ID", "snp", "SNP", "rs", "rsid"),
    "chr": ("#CHROM", "CHROM", "CHR", "chrom", "chromosome"),
    "pos": ("POS", "ps", "bp", "BP", "position"),
    "beta": ("BETA", "effect"),
    "p": ("P", "p_wald", "pvalue", "p_value"),
    "a1": ("A1", "allele1"),
    "n": ("OBS_CT", "NMISS", "N"),
}


def threshold_key(t: float) -> str:
    """JSON key of a threshold, as in docs/architecture.md: 1e-8 -> "1e-08"."""
    return f"{t:.0e}" if float(f"{t:.0e}") == t else repr(float(t))


def _safe(x: float) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


# ---------------------------------------------------------------------------- input


def read_gwas_tsv(path: str | Path) -> pd.DataFrame:
    """A GWAS table written by ``dpgenome gwas``, or plink2/GEMMA output, or a CSV such as
    the published CFW GWAS (id, chr, pos, p or log10_p; beta optional; tab- or
    comma-separated, gzip allowed). Errors name the file and the column or line."""
    path = Path(path)
    if not path.is_file():
        raise InputError("file not found", file=path)
    with open_binary(path) as fh:
        data = strip_bom(fh.read())
    check_utf8(data, path)  # names the line of a bad byte
    try:
        header = pd.read_csv(io.BytesIO(data), sep="\t", nrows=0).columns
        sep = "," if len(header) == 1 and "," in str(header[0]) else "\t"
        table = pd.read_csv(io.BytesIO(data), sep=sep, dtype=str)
        table = table.loc[:, ~table.columns.str.startswith("Unnamed")]
    except pd.errors.ParserError as err:
        raise parser_error(err, path) from None
    except pd.errors.EmptyDataError:
        raise InputError("the file is empty", file=path) from None
    # the file line of each row: pandas skips blank lines
    text_lines = data.splitlines()
    rows = [i for i, raw in enumerate(text_lines[1:], start=2) if raw.strip()]
    return normalise_gwas(table, source=str(path), lines=rows)


def normalise_gwas(
    table: pd.DataFrame | GwasResult, *, source: str = "table", lines: Sequence[int] | None = None
) -> pd.DataFrame:
    """Columns id, chr, pos, beta (NaN when absent), log10_p (and a1 when present), one
    row per SNP id. plink2, GEMMA and common CSV column names are accepted (``_ALIASES``).
    Errors name ``lines[row]``, the file line of a row (default: row + 2, a header and no
    blank line)."""

    def line(row: int) -> int:
        return int(lines[row]) if lines is not None and row < len(lines) else row + 2

    if isinstance(table, GwasResult):
        table = table.table
    renames = {}
    for ours, others in _ALIASES.items():
        if ours not in table.columns:
            found = next((o for o in others if o in table.columns), None)
            if found is not None:
                renames[found] = ours
    if renames:
        table = table.rename(columns=renames)
    if "TEST" in table.columns:  # plink2 --glm: a row per term of the model without hide-covar
        terms = table["TEST"].astype(str)
        genotype = [t for t in ("ADD", "DOM", "REC") if (terms == t).any()]
        if genotype:  # the additive test, else --glm dominant / recessive's own
            keep = (terms == genotype[0]).to_numpy()
        elif terms.nunique() == 1:
            keep = np.ones(len(table), dtype=bool)
        else:
            raise InputError(
                f"rows of several model terms ({', '.join(sorted(terms.unique())[:6])}) and "
                "no ADD, DOM or REC test: compare one test per SNP (plink2 --glm hide-covar)",
                file=source,
                column="TEST",
            )
        if lines is None:
            lines = [i + 2 for i in range(len(table))]
        lines = [line_no for line_no, k in zip(lines, keep, strict=False) if k]
        table = table.loc[keep].reset_index(drop=True)
    missing = [c for c in _REQUIRED if c not in table.columns]
    if "log10_p" not in table.columns and "p" not in table.columns:
        missing.append("p or log10_p")
    if missing:
        raise InputError(
            f"GWAS table lacks column(s) {', '.join(missing)}; found: "
            f"{', '.join(map(str, table.columns[:12]))}",
            file=source,
            column=missing[0],
        )
    out = pd.DataFrame({"id": table["id"].astype(str), "chr": table["chr"].astype(str)})
    if "beta" not in table.columns:
        table = table.assign(beta=np.nan)
    for col in ("pos", "beta"):
        out[col] = _numeric_column(table, col, source, line, required=col == "pos")
    col = "log10_p" if "log10_p" in table.columns else "p"
    values = _numeric_column(table, col, source, line, required=False)
    if col == "p":
        outside = np.flatnonzero((values < 0) | (values > 1))
        with np.errstate(divide="ignore", invalid="ignore"):
            lp = -np.log10(values)
    else:
        outside = np.flatnonzero(values < 0)
        lp = values
    if outside.size:
        raise InputError(
            "p-values must lie in [0, 1] (log10_p = -log10 p >= 0)",
            file=source,
            line=line(int(outside[0])),
            column=col,
        )
    beyond = np.isposinf(lp)
    if beyond.any():  # plink2 and GEMMA write p = 0 below the smallest double
        log.warning(
            "%s: %d p-value(s) of 0 (below the file's precision) read as p = %.3g, a floor: "
            "their -log10 p is at least %.1f",
            source,
            int(beyond.sum()),
            P_FLOOR,
            -math.log10(P_FLOOR),
        )
        lp = np.where(beyond, -math.log10(P_FLOOR), lp)
    out["log10_p"] = lp
    if "a1" in table.columns:
        out["a1"] = table["a1"].astype(str)
    if "n" in table.columns:
        out["n"] = pd.to_numeric(table["n"], errors="coerce").to_numpy(dtype=np.float64)
    dup = out["id"].duplicated()
    if dup.any():
        row = int(np.flatnonzero(dup.to_numpy())[0])
        raise InputError(
            f"SNP id {out['id'].iloc[row]!r} appears twice",
            file=source,
            line=line(row),
            column="id",
        )
    return out


def _numeric_column(
    table: pd.DataFrame, col: str, source: str, line: Callable[[int], int], *, required: bool
) -> np.ndarray:
    """``table[col]`` as float64: a value that is not a number is an error naming its line
    (read as missing, a typo in a p-value turned a real hit into a spurious locus); a missing
    one (empty, NA, as plink2 writes for a failed test) is an error too when ``required``."""
    values = pd.to_numeric(table[col], errors="coerce").to_numpy(dtype=np.float64)
    raw = table[col].to_numpy(dtype=object)
    text = np.char.upper(np.char.strip(np.where(pd.isna(raw), "", raw).astype(str)))
    missing = np.isin(text, list(_MISSING))
    bad = np.isnan(values) & ~missing
    if required:
        bad |= missing
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        what = "missing value" if missing[row] else f"non-numeric value {raw[row]!r}"
        raise InputError(what, file=source, line=line(row), column=col)
    return values


#: how a GWAS table writes a missing value
_MISSING = frozenset({"NA", "NAN", ".", ""})


# ---------------------------------------------------------------------------- loci


def clump_loci(
    table: pd.DataFrame, log10_threshold: float, window_bp: int, *, merge: bool = True
) -> pd.DataFrame:
    """Distance clumping, then (``merge``) clumps on a chromosome whose intervals lie within
    ``window_bp`` of each other joined into one locus (single linkage), so that one long
    association block counts once: in CFW mice one QTL's hits span ~5 Mb and clumping alone
    split the demo's one chr-11 QTL into four "loci". Columns: chr, start, end, lead_id,
    lead_pos, lead_log10_p (the most significant clump's), n_snps, n_clumps."""
    clumps = _clumps(table, log10_threshold, window_bp)
    if merge and len(clumps):
        clumps = clumps.sort_values(["chr", "start"], kind="stable", ignore_index=True)
        chrom = clumps["chr"].to_numpy()
        start = clumps["start"].to_numpy(dtype=np.int64)
        reach = clumps.groupby("chr", sort=False)["end"].cummax().to_numpy(dtype=np.int64)
        new = np.r_[True, (chrom[1:] != chrom[:-1]) | (start[1:] - reach[:-1] > window_bp)]
        by = clumps.groupby(np.cumsum(new))
        clumps = clumps.loc[by["lead_log10_p"].idxmax().to_numpy()].assign(
            start=by["start"].min().to_numpy(),
            end=by["end"].max().to_numpy(),
            n_snps=by["n_snps"].sum().to_numpy(),
            n_clumps=by.size().to_numpy(),
        )
    return clumps.sort_values("lead_log10_p", ascending=False, ignore_index=True)


def _clumps(table: pd.DataFrame, log10_threshold: float, window_bp: int) -> pd.DataFrame:
    """Distance clumping: the most significant unassigned SNP takes every significant SNP on
    its chromosome within ``window_bp``, repeated."""
    sig = table[table["log10_p"] >= log10_threshold].sort_values(
        "log10_p", ascending=False, kind="stable"
    )
    rows: list[dict[str, Any]] = []
    for chrom, group in sig.groupby("chr", sort=False):
        pos = group["pos"].to_numpy()
        lp = group["log10_p"].to_numpy()
        ids = group["id"].to_numpy()
        free = np.ones(len(pos), dtype=bool)
        for i in range(len(pos)):  # rows are in decreasing significance: i is a lead if free
            if not free[i]:
                continue
            members = free & (np.abs(pos - pos[i]) <= window_bp)
            free &= ~members
            rows.append(
                {
                    "chr": str(chrom),
                    "start": int(pos[members].min()),
                    "end": int(pos[members].max()),
                    "lead_id": str(ids[i]),
                    "lead_pos": int(pos[i]),
                    "lead_log10_p": float(lp[i]),
                    "n_snps": int(members.sum()),
                    "n_clumps": 1,
                }
            )
    cols = ["chr", "start", "end", "lead_id", "lead_pos", "lead_log10_p", "n_snps", "n_clumps"]
    return pd.DataFrame(rows, columns=cols)


def _match_loci(a: pd.DataFrame, b: pd.DataFrame, window_bp: int) -> np.ndarray:
    """For each locus of ``a``: is a locus of ``b`` on its chromosome within the window?"""
    hit = np.zeros(len(a), dtype=bool)
    b_chr = b["chr"].to_numpy()
    b_start = b["start"].to_numpy(dtype=np.int64)
    b_end = b["end"].to_numpy(dtype=np.int64)
    a_chr = a["chr"].to_numpy()
    a_start = a["start"].to_numpy(dtype=np.int64)
    a_end = a["end"].to_numpy(dtype=np.int64)
    for i in range(len(a)):
        same = b_chr == a_chr[i]
        gap = np.maximum(0, np.maximum(b_start[same] - a_end[i], a_start[i] - b_end[same]))
        hit[i] = bool((gap <= window_bp).any())
    return hit


# ---------------------------------------------------------------------------- GWAS


@dataclass(frozen=True)
class GwasComparison:
    """Real vs synthetic GWAS on shared SNPs. ``merged`` holds per-SNP statistics (public
    aggregates) for the plots; :meth:`to_dict` is ``fidelity.gwas`` of results.json."""

    thresholds: tuple[float, ...]
    snp_level: dict[str, dict[str, Any]]
    loci: dict[str, Any]
    lambda_gc_real: float
    lambda_gc_synthetic: float
    spearman_log10p: float
    effect_correlation_at_real_hits: float
    sign_agreement_at_real_hits: float
    #: the synthetic effects' size against the real ones at the real hits: the least-squares
    #: slope through the origin of synthetic beta on real beta (1: the same size; above 1:
    #: stronger in the synthetic cohort), and the ratio at the real lead SNP alone
    effect_ratio_at_real_hits: float
    effect_ratio_at_real_lead: float
    n_shared: int
    n_only_real: int
    n_only_synthetic: int
    merged: pd.DataFrame = field(repr=False)
    #: each side's median per-SNP sample size, when its table has one (``n``, plink2
    #: ``OBS_CT``): at ``k`` times the rows the same association scores ``k`` times the chi^2
    sample_sizes: dict[str, float | None] = field(default_factory=dict)
    #: each side's GWAS model (:attr:`GwasResult.method`; None for a table read from a file)
    models: dict[str, str | None] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "thresholds": self.snp_level,
            "loci": self.loci,
            "lambda_gc": {
                "real": _safe(self.lambda_gc_real),
                "synthetic": _safe(self.lambda_gc_synthetic),
            },
            "spearman_log10p": _safe(self.spearman_log10p),
            "effect_correlation_at_real_hits": _safe(self.effect_correlation_at_real_hits),
            "sign_agreement_at_real_hits": _safe(self.sign_agreement_at_real_hits),
            "effect_ratio_at_real_hits": _safe(self.effect_ratio_at_real_hits),
            "effect_ratio_at_real_lead": _safe(self.effect_ratio_at_real_lead),
            "sample_sizes": self.sample_sizes,
            "models": self.models,
            "snps": {
                "shared": self.n_shared,
                "only_real": self.n_only_real,
                "only_synthetic": self.n_only_synthetic,
                "matching": "on SNP id; SNPs in one result only are left out of every metric",
            },
        }

    def manhattan_svg(self, *, title: str = "GWAS: real (top) vs synthetic (bottom)") -> str:
        m = self.merged
        return plots.manhattan_svg(
            m["chr"].to_numpy(),
            m["pos"].to_numpy(),
            m["log10_p_real"].to_numpy(),
            synthetic_log10_p=m["log10_p_synth"].to_numpy(),
            thresholds=self.thresholds,
            title=title,
        )

    def qq_svg(self) -> str:
        m = self.merged
        return plots.qq_svg(
            {
                f"real (lambda {self.lambda_gc_real:.2f})": m["log10_p_real"].to_numpy(),
                f"synthetic (lambda {self.lambda_gc_synthetic:.2f})": m["log10_p_synth"].to_numpy(),
            }
        )


def gwas_rows(members: Cohort, synth: Cohort, seed: int) -> tuple[Cohort, dict[str, int]]:
    """``(rows, counts)``: the synthetic cohort the GWAS comparison runs on, and the row
    counts (``members``, ``synthetic``, ``compared``).

    A synthetic cohort larger than the members is compared on a seeded random subset of as
    many rows (sorted, so the rows keep their order). Its association is released per
    individual (cross-moments over the members), so at ``k`` times the rows every synthetic
    test statistic grows about ``k``-fold, a power the members' data do not carry: a
    768-member cohort (chromosomes 5 and 11, epsilon 8) synthesised at 3x its size and
    compared whole scored recall 1.00 and precision 0.20 at 1e-8 (170 synthetic hits for 34
    real; leads at -log10 p 22-25 for the members' 9.4-10.0), and on 768 of its rows 1.00
    and 1.00 (leads 9.0-11.0). A smaller one is compared whole: its lower power is what it
    delivers."""
    n = members.n_samples
    counts = {"members": n, "synthetic": synth.n_samples, "compared": synth.n_samples}
    if synth.n_samples <= n:
        return synth, counts
    pick = np.sort(np.random.default_rng([seed, 0x6A5]).choice(synth.n_samples, n, replace=False))
    return synth.take_samples(pick), counts | {"compared": n}


def compare_gwas(
    real: GwasResult | pd.DataFrame,
    synth: GwasResult | pd.DataFrame,
    thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
    *,
    locus_window_bp: int = DEFAULT_LOCUS_WINDOW_BP,
    max_loci_rows: int = 50,
    support_threshold: float | None = None,
) -> GwasComparison:
    """Compare two GWAS results (see the module docstring for every definition)."""
    thresholds = tuple(sorted(float(t) for t in thresholds))
    if not thresholds or any(not 0.0 < t < 1.0 for t in thresholds):
        raise CohortError(f"thresholds must lie in (0, 1), got {thresholds}")
    r = normalise_gwas(real, source="real GWAS")
    s = normalise_gwas(synth, source="synthetic GWAS")
    merged = r.merge(s, on="id", suffixes=("_real", "_synth"), how="inner")
    n_shared = len(merged)
    if n_shared == 0:
        raise CohortError("the real and synthetic GWAS share no SNP id")
    beta_s = merged["beta_synth"].to_numpy()
    if "a1_real" in merged and "a1_synth" in merged:
        flip = (merged["a1_real"] != merged["a1_synth"]).to_numpy()
        beta_s = np.where(flip, -beta_s, beta_s)
    merged = pd.DataFrame(
        {
            "id": merged["id"],
            "chr": merged["chr_real"],
            "pos": merged["pos_real"],
            "beta_real": merged["beta_real"],
            "beta_synth": beta_s,
            "log10_p_real": merged["log10_p_real"],
            "log10_p_synth": merged["log10_p_synth"],
        }
    )
    lp_r = merged["log10_p_real"].to_numpy()
    lp_s = merged["log10_p_synth"].to_numpy()
    support = thresholds[-1] if support_threshold is None else float(support_threshold)
    if not 0.0 < support < 1.0:
        raise CohortError(f"support_threshold must lie in (0, 1), got {support_threshold}")
    known_r, known_s = np.nan_to_num(lp_r, nan=-1.0), np.nan_to_num(lp_s, nan=-1.0)
    snp_level: dict[str, dict[str, Any]] = {}
    for t in thresholds:
        level = -math.log10(t)
        hr, hs = known_r >= level, known_s >= level
        n_r, n_s, both = int(hr.sum()), int(hs.sum()), int((hr & hs).sum())
        recall = both / n_r if n_r else None
        precision = both / n_s if n_s else None
        # F1 = 2 TP / (2 TP + FP + FN): 0 when one side has hits and none are shared (a
        # synthetic GWAS with no hit against a real one with hits scores 0, not "undefined")
        f1 = 2 * both / (n_r + n_s) if n_r + n_s else None
        snp_level[threshold_key(t)] = {
            "real_hits": n_r,
            "synthetic_hits": n_s,
            "overlap": both,
            "recall": recall,
            "precision": precision,
            "f1": f1,
        }
        if t < support:
            # the synthetic hits the real GWAS does not reach, and where it puts them
            missed = known_r[hs & ~hr]
            snp_level[threshold_key(t)] |= {
                "false_hits": len(missed),
                "false_hits_supported": int((missed >= -math.log10(support)).sum()),
                "false_hits_real_log10_p": (
                    [float(missed.min()), float(missed.max())] if len(missed) else None
                ),
            }
    primary = -math.log10(thresholds[0])
    sub_r = merged.rename(columns={"log10_p_real": "log10_p"})[["id", "chr", "pos", "log10_p"]]
    sub_s = merged.rename(columns={"log10_p_synth": "log10_p"})[["id", "chr", "pos", "log10_p"]]
    loci_r = clump_loci(sub_r, primary, locus_window_bp)
    loci_s = clump_loci(sub_s, primary, locus_window_bp)
    rec = _match_loci(loci_r, loci_s, locus_window_bp)
    real_match_of_synth = _match_loci(loci_s, loci_r, locus_window_bp)
    # every real SNP at the support threshold is a one-SNP "locus" for the support test
    suggestive = sub_r[np.nan_to_num(lp_r, nan=-1.0) >= -math.log10(support)]
    supported = real_match_of_synth | _match_loci(
        loci_s, suggestive.assign(start=suggestive["pos"], end=suggestive["pos"]), locus_window_bp
    )
    table = [
        {"source": "real", **row, "matched": bool(hit)}
        for row, hit in zip(loci_r.to_dict("records"), rec, strict=True)
    ][:max_loci_rows] + [
        {"source": "synthetic", **row, "matched": bool(hit), "supported": bool(ok)}
        for row, hit, ok in zip(
            loci_s.to_dict("records"), real_match_of_synth, supported, strict=True
        )
    ][:max_loci_rows]
    loci = {
        "method": (
            f"distance clumping of SNPs with p < {thresholds[0]:g} around lead SNPs, "
            f"window {locus_window_bp:,} bp, clumps within {locus_window_bp:,} bp of each "
            f"other merged into one locus; a real locus is recovered when a synthetic "
            f"locus lies within {locus_window_bp:,} bp; a synthetic locus is spurious when "
            f"no real locus and no real SNP with p < {support:g} lies within "
            f"{locus_window_bp:,} bp"
        ),
        "threshold": thresholds[0],
        "support_threshold": support,
        "window_bp": int(locus_window_bp),
        "real_loci": len(loci_r),
        "synthetic_loci": len(loci_s),
        "recovered": int(rec.sum()),
        "unmatched": int((~real_match_of_synth).sum()),
        "spurious": int((~supported).sum()),
        "table": table,
    }
    both_ok = np.isfinite(lp_r) & np.isfinite(lp_s)
    # undefined (NaN, without scipy's warning) for fewer than 3 SNPs or a constant side
    spearman = (
        float(stats.spearmanr(lp_r[both_ok], lp_s[both_ok]).statistic)
        if both_ok.sum() >= 3 and np.ptp(lp_r[both_ok]) > 0 and np.ptp(lp_s[both_ok]) > 0
        else float("nan")
    )
    hits = (np.nan_to_num(lp_r, nan=-1.0) >= primary) & np.isfinite(beta_s)
    br, bs = merged["beta_real"].to_numpy()[hits], merged["beta_synth"].to_numpy()[hits]
    effect_corr = (
        float(np.corrcoef(br, bs)[0, 1])
        if hits.sum() >= 3 and np.std(br) > 0 and np.std(bs) > 0
        else float("nan")
    )
    signs = float(np.mean(np.sign(br) == np.sign(bs))) if hits.any() else float("nan")
    scale = float(np.sum(br * br))
    ratio = float(np.sum(br * bs)) / scale if scale > 0 else float("nan")
    lead_ratio = float("nan")
    if hits.any():
        lead = int(np.argmax(np.where(hits, lp_r, -np.inf)))
        real_lead = float(merged["beta_real"].to_numpy(dtype=np.float64)[lead])
        if real_lead != 0:
            lead_ratio = float(merged["beta_synth"].to_numpy(dtype=np.float64)[lead]) / real_lead
    return GwasComparison(
        thresholds=thresholds,
        snp_level=snp_level,
        loci=loci,
        lambda_gc_real=lambda_gc(lp_r),
        lambda_gc_synthetic=lambda_gc(lp_s),
        spearman_log10p=spearman,
        effect_correlation_at_real_hits=effect_corr,
        sign_agreement_at_real_hits=signs,
        effect_ratio_at_real_hits=ratio,
        effect_ratio_at_real_lead=lead_ratio,
        n_shared=n_shared,
        n_only_real=len(r) - n_shared,
        n_only_synthetic=len(s) - n_shared,
        merged=merged,
        sample_sizes={"real": _median_n(r), "synthetic": _median_n(s)},
        models={"real": _model(real), "synthetic": _model(synth)},
    )


def _model(result: GwasResult | pd.DataFrame) -> str | None:
    return result.method if isinstance(result, GwasResult) else None


def _median_n(table: pd.DataFrame) -> float | None:
    if "n" not in table.columns:
        return None
    return _safe(float(np.nanmedian(table["n"]))) if table["n"].notna().any() else None


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
    #: per shared phenotype, real vs synthetic marginal (:func:`phenotype_marginals`)
    pheno_marginals: dict[str, Any] = field(default_factory=dict)
    #: which phenotypes are missing together (:func:`phenotype_missingness`)
    pheno_missingness: dict[str, Any] = field(default_factory=dict)
    #: heterozygosity, inbreeding and Hardy-Weinberg (:func:`heterozygosity`)
    heterozygosity: dict[str, Any] = field(default_factory=dict)
    #: missing genotype calls on both sides (:func:`missing_calls`)
    missing_calls: dict[str, Any] = field(default_factory=dict)
    seed: int = 0

    def to_dict(self) -> dict[str, Any]:
        mids = 0.5 * (self.ld_bins_bp[:-1] + self.ld_bins_bp[1:])
        return {
            "allele_frequency_correlation": _safe(self.allele_frequency_correlation),
            "ld_decay_error": _safe(self.ld_decay_error),
            "phenotype_correlation_error": _safe(self.phenotype_correlation_error),
            "phenotype_strong_correlations": strong_correlations(
                self.pheno_corr_real, self.pheno_corr_synthetic
            ),
            "pca": self.pca,
            "ld_decay": {
                "method": "mean r^2 per distance bin over a seeded sample of SNP pairs "
                "(same pairs in both cohorts); error = mean |real - synthetic| over bins",
                "bin_mid_bp": [float(x) for x in mids],
                "real": [_safe(float(x)) for x in self.ld_real],
                "synthetic": [_safe(float(x)) for x in self.ld_synthetic],
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
    ``pca_min_cell`` samples zeroed. Phenotype marginals: :func:`phenotype_marginals`
    (``focus``, e.g. the analysis phenotype and its covariates, listed first).
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
    names, corr_r, corr_s, corr_err = _pheno_correlations(real, synth)
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
        "individual_share_p90": float(np.quantile(per_individual, 0.9))
        if per_individual.size
        else 0.0,
        "snps_over_5pct": float((per_snp > 0.05).mean()) if per_snp.size else 0.0,
    }


def missing_calls(miss_r: np.ndarray, miss_s: np.ndarray) -> dict[str, Any]:
    """Missing genotype calls of two cohorts over the same SNPs (boolean masks, True =
    missing, columns in the same order): each side's share of calls missing, share of
    individuals missing any, 90th percentile of an individual's share and share of SNPs
    missing over 5% of their calls, and the correlation of the SNPs' shares between the sides
    (None unless both miss calls). Aggregates only."""
    out: dict[str, Any] = {"real": _call_summary(miss_r), "synthetic": _call_summary(miss_s)}
    snp_r, snp_s = miss_r.mean(axis=0), miss_s.mean(axis=0)
    both = snp_r.size >= 3 and snp_r.std() > 0 and snp_s.std() > 0
    out["snp_share_correlation"] = float(np.corrcoef(snp_r, snp_s)[0, 1]) if both else None
    return out


#: a SNP whose Hardy-Weinberg test gives p below this fails (plink2's --hwe convention)
HWE_P = 1e-6
#: a dosage further than this from a whole number is no hard call (plink2's default
#: --hard-call-threshold)
HARD_CALL = 0.1


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
    d = np.asarray(dosages, dtype=np.float64)
    g = np.round(d)
    g[np.abs(d - g) > HARD_CALL] = np.nan  # an ambiguous dosage is no call (as plink2)
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
            _safe(float(v)) for v in (var_s / np.where(var_r > 0, var_r, np.nan))
        ],
        "variance_ratio_out_of_sample": [_safe(float(v)) for v in oos],
        "centroid_distance_pc12_sd": _safe(float(np.sqrt(np.sum(gap**2)))),
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


def _pheno_correlations(
    real: Cohort, synth: Cohort
) -> tuple[list[str], np.ndarray | None, np.ndarray | None, float]:
    names = [
        c
        for c in real.phenotypes.columns
        if c in synth.phenotypes.columns
        and real.pheno_types.get(c) != PhenoType.CATEGORICAL
        and synth.pheno_types.get(c) != PhenoType.CATEGORICAL
    ]
    if len(names) < 2:
        return names, None, None, float("nan")
    cr = real.phenotypes[names].apply(pd.to_numeric, errors="coerce").corr().to_numpy()
    cs = synth.phenotypes[names].apply(pd.to_numeric, errors="coerce").corr().to_numpy()
    iu = np.triu_indices(len(names), k=1)
    diff = np.abs(cr[iu] - cs[iu])
    err = float(np.nanmean(diff)) if np.isfinite(diff).any() else float("nan")
    return names, cr, cs, err


def phenotype_missingness(real: pd.DataFrame, synth: pd.DataFrame) -> dict[str, Any]:
    """Which phenotypes are missing together, over the columns both tables have: the share
    of rows with every one of them observed (``complete_rows_real``, ``..._synthetic``) and
    the mean absolute difference between the real and synthetic correlations of the
    missingness indicators of the columns with missing values among the real rows
    (``indicator_correlation_error``; a column never missing in the synthetic rows counts
    as uncorrelated). Columns left missing independently lose it (stop 49: 0.43).
    Aggregates only."""
    shared = [c for c in real.columns if c in synth.columns]
    r, s = real[shared].isna(), synth[shared].isna()
    varied = [c for c in shared if 0 < r[c].mean() < 1]
    err = None
    if len(varied) >= 2 and len(s) >= 2:
        iu = np.triu_indices(len(varied), 1)
        with np.errstate(invalid="ignore", divide="ignore"):
            rc = np.corrcoef(r[varied].to_numpy(dtype=np.float64), rowvar=False)[iu]
            sc = np.corrcoef(s[varied].to_numpy(dtype=np.float64), rowvar=False)[iu]
        err = float(np.abs(rc - np.nan_to_num(sc)).mean())
    return {
        "columns": len(shared),
        "columns_with_missing_values": len(varied),
        "complete_rows_real": float((~r).all(axis=1).mean()) if len(r) else None,
        "complete_rows_synthetic": float((~s).all(axis=1).mean()) if len(s) else None,
        "indicator_correlation_error": err,
    }


#: a phenotype pair counts as strongly correlated from this real |r| on
STRONG_R = 0.5


def strong_correlations(real: np.ndarray | None, synth: np.ndarray | None) -> dict[str, Any]:
    """How much of the strong phenotype correlations (real |r| >= :data:`STRONG_R`) the
    synthetic cohort keeps: the synthetic r in the real r's direction, averaged over those
    pairs, over the real |r| averaged (``kept``: 1 = kept, 0 = lost). The mean absolute
    difference over all pairs dilutes them among the many pairs near zero."""
    out: dict[str, Any] = {"threshold": STRONG_R, "pairs": 0, "kept": None}
    if real is None or synth is None:
        return out
    iu = np.triu_indices(real.shape[0], k=1)
    r, s = real[iu], synth[iu]
    strong = np.isfinite(r) & np.isfinite(s) & (np.abs(r) >= STRONG_R)
    if not strong.any():
        return out
    real_abs = float(np.abs(r[strong]).mean())
    same_sign = float((np.sign(r[strong]) * s[strong]).mean())
    return out | {
        "pairs": int(strong.sum()),
        "real_mean_abs_r": real_abs,
        "synthetic_mean_r_same_sign": same_sign,
        "kept": same_sign / real_abs,
    }


def _level_shares(column: pd.Series) -> pd.Series:
    """Share of each level of a categorical column, missing values as one more level."""
    return (column.astype(object).where(column.notna(), "<missing>").astype(str)).value_counts(
        normalize=True
    )


#: fewest observed real values of a numeric phenotype whose real mean and sd are shown (as
#: the PCA histogram's smallest cell, ``pca_min_cell``)
MARGINAL_MIN_OBSERVED = 5


def phenotype_marginals(
    real: Cohort, synth: Cohort, *, focus: tuple[str, ...] = (), worst: int = 8
) -> dict[str, Any]:
    """Real vs synthetic marginal of every shared phenotype (aggregates only).

    Numeric columns (continuous, binary: the mean is the prevalence): mean, sd and missing
    share of each cohort, and the standardised mean difference ``smd = (mean_synthetic -
    mean_real) / sd_real`` over the observed values; categorical columns: the total variation
    distance between the level shares (missing as a level). ``mean_abs_smd`` (the
    ``phenotype_marginal_error``) averages ``|smd|`` over the numeric columns; ``rows`` lists
    the ``focus`` columns first, then the ``worst`` others by ``|smd|`` or distance. A numeric
    column with fewer than :data:`MARGINAL_MIN_OBSERVED` observed real values is left out: its
    mean and sd over two values are those two people's values.
    """
    rows: list[dict[str, Any]] = []
    for name in real.phenotypes.columns:
        if name not in synth.phenotypes.columns:
            continue
        kind = real.pheno_types.get(name)
        r, s = real.phenotypes[name], synth.phenotypes[name]
        row: dict[str, Any] = {
            "name": str(name),
            "type": str(kind.value if kind is not None else "unknown"),
            "missing_real": _safe(float(r.isna().mean())),
            "missing_synthetic": _safe(float(s.isna().mean())),
        }
        if kind == PhenoType.CATEGORICAL:
            pr, ps = _level_shares(r), _level_shares(s)
            levels = pr.index.union(ps.index)
            tvd = 0.5 * float(
                np.abs(pr.reindex(levels, fill_value=0) - ps.reindex(levels, fill_value=0)).sum()
            )
            row |= {"total_variation": _safe(tvd)}
        else:
            xr = pd.to_numeric(r, errors="coerce").to_numpy(dtype=np.float64)
            xs = pd.to_numeric(s, errors="coerce").to_numpy(dtype=np.float64)
            xr, xs = xr[np.isfinite(xr)], xs[np.isfinite(xs)]
            if len(xr) < MARGINAL_MIN_OBSERVED or len(xs) < 1:
                continue
            sd_r = float(xr.std(ddof=1))
            smd = (float(xs.mean()) - float(xr.mean())) / sd_r if sd_r > 0 else float("nan")
            row |= {
                "mean_real": _safe(float(xr.mean())),
                "mean_synthetic": _safe(float(xs.mean())),
                "sd_real": _safe(sd_r),
                "sd_synthetic": _safe(float(xs.std(ddof=1)) if len(xs) > 1 else float("nan")),
                "smd": _safe(smd),
            }
        rows.append(row)
    smds = [abs(x["smd"]) for x in rows if x.get("smd") is not None]
    focused = [x for name in focus for x in rows if x["name"] == name]
    others = sorted(
        (x for x in rows if x["name"] not in focus),
        key=lambda x: -abs(x.get("smd") or x.get("total_variation") or 0.0),
    )
    return {
        "method": "per shared phenotype: mean, sd and missing share (numeric; a binary "
        "column's mean is its prevalence) and the standardised mean difference "
        "(synthetic - real) / sd_real over observed values; categorical: total variation "
        "distance of the level shares",
        "n_compared": len(rows),
        "mean_abs_smd": _safe(float(np.mean(smds))) if smds else None,
        "max_abs_smd": _safe(float(np.max(smds))) if smds else None,
        "rows": focused + others[:worst],
    }
