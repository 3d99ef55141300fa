"""Does a GWAS on the synthetic cohort reach the real one's conclusions?

Reading GWAS tables (:func:`read_gwas_tsv`, :func:`normalise_gwas`: plink2, GEMMA and
dpgenome columns), clumping hits into loci (:func:`clump_loci`) and comparing two results.

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
"""

from __future__ import annotations

import csv
import io
import logging
import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from dpgenome import plots
from dpgenome.cohort import Cohort
from dpgenome.errors import CohortError, InputError
from dpgenome.gwas import GwasResult, lambda_gc
from dpgenome.io.files import check_utf8, open_binary, strip_bom
from dpgenome.io.tables import parser_error
from dpgenome.jsonvalues import finite_or_none

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
    return normalise_gwas(table, source=str(path), lines=_row_lines(data, sep, path))


def _row_lines(data: bytes, sep: str, path: Path) -> list[int]:
    """The file line of each data row (pandas skips blank lines), every row checked to have
    the header's number of fields: pandas fills a short row's last columns with NaN, so a
    row missing a field in its middle would shift its values one column left (an ``n`` read
    as its ``log10_p``)."""
    reader = csv.reader(io.StringIO(data.decode("utf-8")), delimiter=sep)
    width, lines = None, []
    for row in reader:
        if not any(field.strip() for field in row):
            continue
        if width is None:
            width = len(row)
        elif len(row) != width:
            raise InputError(
                f"{len(row)} fields where the header has {width}", file=path, line=reader.line_num
            )
        else:
            lines.append(reader.line_num)
    return lines


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
    if col == "log10_p" and "p" in table.columns:
        p_values = _numeric_column(table, "p", source, line, required=False)
        _check_p_matches(p_values, lp, source, line)
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


#: how far -log10 p may sit from a row's log10_p: a p printed to 3 significant digits is
#: off by at most 0.5%, 0.002 in -log10 p
_P_AGREEMENT = 0.01
#: -log10 of the smallest normal double: a p written as 0 below it (plink2, GEMMA, our own
#: table) beside a log10_p above it is the same value
_P_ZERO_LOG10 = -math.log10(sys.float_info.min)


def _check_p_matches(
    p: np.ndarray, log10_p: np.ndarray, source: str, line: Callable[[int], int]
) -> None:
    """A table with both ``p`` and ``log10_p`` is read by its ``log10_p``: a row where the
    two disagree (one missing, or -log10 p more than ``_P_AGREEMENT`` away) is an error
    naming its line rather than a silent choice of one of them."""
    with np.errstate(divide="ignore", invalid="ignore"):
        from_p = -np.log10(p)
    missing_p, missing_lp = np.isnan(p), np.isnan(log10_p)
    zero = p == 0
    off = ~missing_p & ~missing_lp & ~zero & ~(np.abs(from_p - log10_p) <= _P_AGREEMENT)
    off |= zero & ~missing_lp & (log10_p < _P_ZERO_LOG10)
    off |= missing_p != missing_lp
    if off.any():
        row = int(np.flatnonzero(off)[0])
        if missing_p[row] or missing_lp[row]:
            what = f"p is {_shown(p[row])} where log10_p is {_shown(log10_p[row])}"
        else:
            what = f"-log10 p is {from_p[row]:.6g} where log10_p is {log10_p[row]:.6g}"
        raise InputError(
            f"p and log10_p disagree ({what}): one of the two columns is wrong",
            file=source,
            line=line(row),
            column="log10_p",
        )


def _shown(value: float) -> str:
    return "missing" if math.isnan(value) else f"{value:.6g}"


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
                "real": finite_or_none(self.lambda_gc_real),
                "synthetic": finite_or_none(self.lambda_gc_synthetic),
            },
            "spearman_log10p": finite_or_none(self.spearman_log10p),
            "effect_correlation_at_real_hits": finite_or_none(self.effect_correlation_at_real_hits),
            "sign_agreement_at_real_hits": finite_or_none(self.sign_agreement_at_real_hits),
            "effect_ratio_at_real_hits": finite_or_none(self.effect_ratio_at_real_hits),
            "effect_ratio_at_real_lead": finite_or_none(self.effect_ratio_at_real_lead),
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
    return finite_or_none(float(np.nanmedian(table["n"]))) if table["n"].notna().any() else None
