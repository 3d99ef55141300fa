"""Paired comparison of two `bench/synth.py` outputs run on the same noise draws.

    python bench/paired.py REFERENCE.txt[,MORE.txt] CANDIDATE.txt[,MORE.txt]

`bench/synth.py` fixes each synthesis's DP noise by its seed, so two runs of it with the same
``--seeds`` and ``--noise-seeds`` (one with ``--set KEY=VALUE``, or on other code) draw the
same noise and differ only in what was changed, and in the pairing's chance on other
genotypes. This script pairs their rows by cohort (seed and members), epsilon and noise seed, and
prints, per pair, the changes of the columns the issue's targets read; then, per cohort and
epsilon, both sides' means and the counts of runs meeting each target, and the paired
difference of recall and precision with a two-sided Wilcoxon signed-rank p-value (scipy;
the draws' spread is wide, docs/tuning-history.md stop 52, so a mean alone says little).

Several files on a side are read as one (for instance the twenty epsilon-3 runs of one cohort
split over two processes). Rows only one side has are listed and left out of the statistics.
"""

from __future__ import annotations

import argparse
import math
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from scipy.stats import wilcoxon

#: the rows of `bench/synth.py` that are syntheses (not the baselines' rows)
SYNTH_MODES = ("dpgenome+public", "dpgenome")
_COHORT = re.compile(r"^## seed (\d+) \(n=(\d+)\)")
#: columns printed per pair (the targets' and the genotype fidelity's)
SHOWN = ("recall", "precision", "planted", "spurious", "lambda_syn", "ld_err", "F")
LAMBDA_BAND = (0.95, 1.10)


@dataclass(frozen=True)
class Run:
    cohort: str  # "seed (n=members)": a --holdout run of one seed has other members
    eps: str
    seed: int
    cells: dict[str, str]

    def number(self, column: str) -> float:
        """The column as a number (NaN for '-' or 'n/a'; 'a/b' gives a: the synthetic side)."""
        text = self.cells.get(column, "-").split("/")[0]
        try:
            return float(text)
        except ValueError:
            return math.nan

    @property
    def both_planted(self) -> bool:
        found, _, total = self.cells.get("planted", "").partition("/")
        return bool(total) and found == total


def read_runs(paths: Iterable[str]) -> dict[tuple[str, str, int], Run]:
    """Every synthesis row of the files, keyed by (cohort, epsilon, noise seed)."""
    runs: dict[tuple[str, str, int], Run] = {}
    for path in paths:
        cohort: str | None = None
        header: list[str] | None = None
        with open(path, encoding="utf-8") as fh:
            for lineno, line in enumerate(fh, 1):
                if m := _COHORT.match(line):
                    cohort, header = f"{m.group(1)} (n={m.group(2)})", None
                elif line.startswith("mode | eps | seed |"):
                    header = [h.strip() for h in line.split("|")]
                elif line.startswith("mode |"):  # the means' table
                    header = None
                elif header and line.split("|")[0].strip() in SYNTH_MODES:
                    cells = dict(zip(header, (c.strip() for c in line.split("|")), strict=False))
                    if cohort is None:
                        raise SystemExit(f"{path}:{lineno}: a table row before its '## seed' line")
                    run = Run(cohort, cells["eps"], int(cells["seed"]), cells)
                    key = (run.cohort, run.eps, run.seed)
                    if key in runs:
                        raise SystemExit(
                            f"{path}:{lineno}: cohort {key[0]} eps {key[1]} seed "
                            f"{key[2]} appears twice on one side"
                        )
                    runs[key] = run
    return runs


def _eps_order(eps: str) -> float:
    return math.inf if eps == "inf" else float(eps)


def _column(runs: list[Run], column: str) -> np.ndarray:
    return np.array([r.number(column) for r in runs])


def _mean(values: np.ndarray) -> str:
    ok = values[np.isfinite(values)]
    return f"{ok.mean():.3f}" if len(ok) else "-"


def _range(runs: list[Run], column: str, digits: int) -> str:
    v = _column(runs, column)
    v = v[np.isfinite(v)]
    return f"{v.min():.{digits}f}-{v.max():.{digits}f}" if len(v) else "-"


def summary(runs: list[Run]) -> str:
    recall, precision = _column(runs, "recall"), _column(runs, "precision")
    lam = _column(runs, "lambda_syn")
    in_band = int(np.sum((lam >= LAMBDA_BAND[0]) & (lam <= LAMBDA_BAND[1])))
    with np.errstate(invalid="ignore"):
        both_half = int(np.sum((recall >= 0.5) & (precision >= 0.5)))
        precise = int(np.sum(precision >= 0.8))
    return (
        f"recall {_mean(recall)} / precision {_mean(precision)}; "
        f"both planted {sum(r.both_planted for r in runs)}, "
        f"spurious loci {int(np.nansum(_column(runs, 'spurious')))}, "
        f"recall & precision >= 0.5 {both_half}, precision >= 0.8 {precise}, "
        f"lambda in {LAMBDA_BAND[0]}-{LAMBDA_BAND[1]} {in_band} ({_range(runs, 'lambda_syn', 2)}); "
        f"LD-decay error {_range(runs, 'ld_err', 4)}, F {_range(runs, 'F', 3)} "
        f"(of {len(runs)} runs)"
    )


def paired_test(ref: list[Run], new: list[Run], column: str) -> str:
    a, b = _column(ref, column), _column(new, column)
    ok = np.isfinite(a) & np.isfinite(b)
    d = b[ok] - a[ok]
    if len(d) == 0:
        return f"{column}: no pair with both defined"
    p = wilcoxon(d).pvalue if len(d) >= 2 and np.any(d != 0) else math.nan
    return (
        f"{column} {np.mean(d):+.3f} (median {np.median(d):+.3f}, "
        f"Wilcoxon p {p:.2g}, {len(d)} pairs)"
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("reference", help="bench/synth.py output(s) of the reference, comma-separated")
    ap.add_argument("candidate", help="bench/synth.py output(s) of the candidate, comma-separated")
    args = ap.parse_args(argv)
    ref = read_runs(args.reference.split(","))
    new = read_runs(args.candidate.split(","))
    shared = sorted(ref.keys() & new.keys(), key=lambda k: (k[0], _eps_order(k[1]), k[2]))
    print(
        f"# bench/paired.py: reference {args.reference} ({len(ref)} runs), candidate "
        f"{args.candidate} ({len(new)} runs), {len(shared)} paired"
    )
    for only, side in (
        (ref.keys() - new.keys(), "reference"),
        (new.keys() - ref.keys(), "candidate"),
    ):
        if only:
            print(f"only in the {side}: " + ", ".join(f"{c}/{e}/{s}" for c, e, s in sorted(only)))
    if not shared:
        print("no run is on both sides: compare outputs of the same --seeds and --noise-seeds")
        return 1
    print("\ncohort | eps | seed | " + " | ".join(f"{c} ref -> cand" for c in SHOWN))
    for key in shared:
        cells = " | ".join(
            f"{ref[key].cells.get(c, '-')} -> {new[key].cells.get(c, '-')}" for c in SHOWN
        )
        print(f"{key[0]} | {key[1]} | {key[2]} | {cells}")
    for cohort, eps in sorted({k[:2] for k in shared}, key=lambda k: (k[0], _eps_order(k[1]))):
        keys = [k for k in shared if k[:2] == (cohort, eps)]
        r, n = [ref[k] for k in keys], [new[k] for k in keys]
        print(f"\n## cohort {cohort}, epsilon {eps}: {len(keys)} paired runs")
        print(f"reference: {summary(r)}")
        print(f"candidate: {summary(n)}")
        tests = [paired_test(r, n, c) for c in ("recall", "precision")]
        print("candidate - reference: " + "; ".join(tests))
    return 0


if __name__ == "__main__":
    sys.exit(main())
