"""Phenotype synthesizer: time and fidelity on the public CFW phenotype table.

Run: ``OMP_NUM_THREADS=1 python bench/phenotypes.py [--eps inf 10 3 1] [--seed 1]``;
``--lr 0.05 0.02 --subpopulation bw1 --no-hooks-reference`` compares learning rates on the
heavier half of the mice by ``bw1`` (members whose marginals differ from the public bins);
``--dp-bins N`` drops the public bins of the first ``N`` continuous columns (``--dp-bins
999``: all 96), so that they get DP bins (:func:`dpgenome.phenobins.dp_bins`, charged beside
the DP-SGD run, ``--bins-weight`` of its noise scale), as a cohort without a public schema
would; the fidelity figures are then also printed for those columns alone. ``--analysis
abBMD`` trains on the mice with abBMD observed (an analysis subset, as a release's members:
BMD is then complete) and samples abBMD and SW16 complete; ``--patterns both`` runs each
epsilon with and without the missingness-pattern release (:mod:`dpgenome.missingness`,
at the release's weights), printing the share of complete rows (``complete_real`` the
members') and the error of the missingness indicators' correlations (``miss_corr_err``).
``--cages both`` runs each epsilon with ``cageid`` rebuilt from the sampled round
(:mod:`dpgenome.nesting`, the default) and modelled as a number (the reference), printing
the share of rows whose cage the public table does not have in that round
(``cage_outside``), of cages holding one mouse (``cage_lone``) and of cages across rounds
(``cage_split``); the members' own figures are printed first.

Target (issue 5): training on ~1,000 x 160 columns in < 30 s on 2 cores. Reference measured in
the same run: the identical loop without privacy (no per-sample norms, no noise), and Opacus's
materialised per-sample gradients (``grad_sample_mode="hooks"``) instead of ghost clipping.
Fidelity against the real table: mean absolute error of pairwise correlations, correlation of
the correlation matrices, the share of the strong correlations kept (real |r| >= 0.5),
column means (in SDs; the dossier's ``phenotype_marginal_error``), column sds (mean |log
ratio|), missing rates. The table is public (CC0), so tuning on it spends no privacy; it is
*not* a private cohort.
"""

from __future__ import annotations

import argparse
import resource
import time
from dataclasses import replace
from typing import Literal

import numpy as np
import pandas as pd
import torch

from dpgenome.accountant import default_delta
from dpgenome.calibrate import calibrate
from dpgenome.cohort import PhenoType, infer_pheno_types
from dpgenome.nesting import nesting_figures
from dpgenome.pheno_fidelity import phenotype_missingness, strong_correlations
from dpgenome.phenoencoding import PhenoSchema, cfw_schema
from dpgenome.phenotypes import (
    PhenotypeConfig,
    fit_phenotypes,
    planned_bins,
    planned_dp_sgd,
    planned_missingness,
)
from dpgenome.simulate import load_real_phenotypes
from dpgenome.synthconfig import SynthConfig


def _fidelity(real: pd.DataFrame, synth: pd.DataFrame, numeric: list[str]) -> dict[str, float]:
    r, s = real[numeric].corr().to_numpy(), synth[numeric].corr().to_numpy()
    iu = np.triu_indices(len(numeric), 1)
    ok = np.isfinite(r[iu]) & np.isfinite(s[iu])
    sd = real[numeric].std()
    return {
        "corr_mae": float(np.abs(r[iu] - s[iu])[ok].mean()),
        "corr_of_corr": float(np.corrcoef(r[iu][ok], s[iu][ok])[0, 1]),
        # the dossier's "strong phenotype correlations kept" (real |r| >= 0.5)
        "strong_kept": strong_correlations(r, s)["kept"],
        "mean_err_sd": float(((synth[numeric].mean() - real[numeric].mean()) / sd).abs().mean()),
        "sd_log_err": float(np.abs(np.log(synth[numeric].std() / sd))[sd > 0].mean()),
        "missing_err": float((real.isna().mean() - synth.isna().mean()).abs().mean()),
        **_missingness(real, synth),
        **_cages(synth),
    }


def _cages(table: pd.DataFrame) -> dict[str, float]:
    """``cageid`` against the public table's cages of each round (:mod:`dpgenome.nesting`)."""
    nesting = cfw_schema().nested.get("cageid")
    if nesting is None or "cageid" not in table:
        return {}
    figures = nesting_figures(table, "cageid", nesting)
    return {f"cage_{k}": figures[k] for k in ("outside", "lone", "split")}


def _missingness(real: pd.DataFrame, synth: pd.DataFrame) -> dict[str, float]:
    """The dossier's missingness figures (:func:`dpgenome.pheno_fidelity.phenotype_missingness`):
    the share of complete rows (real, synthetic) and the error of the missingness
    indicators' correlations (stop 49's review: 0.43)."""
    m = phenotype_missingness(real, synth)
    err = m["indicator_correlation_error"]
    return {
        "complete_real": m["complete_rows_real"],
        "complete": m["complete_rows_synthetic"],
        "miss_corr_err": float("nan") if err is None else err,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--eps", nargs="+", default=["inf", "10", "3", "1"])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--no-hooks-reference", action="store_true")
    parser.add_argument("--lr", type=float, nargs="+", default=[PhenotypeConfig().lr])
    parser.add_argument(
        "--subpopulation", metavar="COLUMN", help="train on the rows above COLUMN's median"
    )
    parser.add_argument(
        "--dp-bins", type=int, default=0, metavar="N", help="DP bins for N continuous columns"
    )
    parser.add_argument("--bins-weight", type=float, nargs="+", default=[None])
    parser.add_argument(
        "--analysis",
        metavar="COLUMN",
        help="train on the rows with COLUMN observed, sampled complete with SW16 (an "
        "analysis subset, as a release's members)",
    )
    parser.add_argument(
        "--patterns",
        choices=["on", "off", "both"],
        default="on",
        help="the missingness-pattern release (dpgenome.missingness); 'both' compares",
    )
    parser.add_argument(
        "--cages",
        choices=["on", "off", "both"],
        default="on",
        help="cageid rebuilt from the sampled round (dpgenome.nesting); 'off' models it as "
        "a number; 'both' compares",
    )
    args = parser.parse_args()
    torch.set_num_threads(1)

    table = load_real_phenotypes().drop(columns=["id", "discard", "mixup"])
    if args.subpopulation:  # the schema stays the whole public table's
        v = table[args.subpopulation]
        table = table[v > v.median()].reset_index(drop=True)
    complete: tuple[str, ...] = ()
    if args.analysis:
        table = table[table[args.analysis].notna()].reset_index(drop=True)
        complete = (args.analysis, "SW16")
    types = infer_pheno_types(table, {"abBMD": PhenoType.BINARY, "SW16": PhenoType.BINARY})
    numeric = [c for c in table.columns if types[c] != PhenoType.CATEGORICAL]
    n = len(table)
    delta = default_delta(n)
    config = PhenotypeConfig(seed=args.seed)
    dp_cols: list[str] = []
    if args.dp_bins:
        public = cfw_schema(config.n_bins)
        dp_cols = [c for c, s in public.columns.items() if s.kind == "bins"][: args.dp_bins]
        kept = {c: s for c, s in public.columns.items() if c not in dp_cols}
        config = replace(
            config,
            schema=PhenoSchema(kept, "CFW, continuous bins dropped", public.missing, public.nested),
        )
    # the release's relative weights (the missingness histogram against the DP-SGD run)
    plan = replace(planned_dp_sgd(config, n), weight=SynthConfig.phenotype_weight)
    print(f"public CFW table: {n} rows x {table.shape[1]} columns; delta = {delta:.3g}")
    print(
        f"DP-SGD: q = {plan.sample_rate:.3f}, steps = {plan.steps}, clip = {config.max_grad_norm}"
    )
    if dp_cols:
        print(f"DP bins: {len(dp_cols)} continuous columns, two histograms each")
    members = _cages(table)
    if members:
        print("members' cages: " + ", ".join(f"{k} {v:.3f}" for k, v in members.items()))
    rows = []
    both = {"on": [True], "off": [False], "both": [True, False]}
    patterns, cages = both[args.patterns], both[args.cages]
    Run = tuple[str, float, Literal["ghost", "hooks"], float, float | None, bool, bool]
    runs: list[Run] = [
        (e, float(e), "ghost", lr, w, p, c)
        for w in args.bins_weight
        for lr in args.lr
        for e in args.eps
        for p in patterns
        for c in cages
    ]
    if not args.no_hooks_reference and any(np.isfinite(float(e)) for e in args.eps):
        runs.append(("3 (hooks ref)", 3.0, "hooks", config.lr, None, patterns[0], cages[0]))
    for label, eps, mode, lr, weight, on, nest in runs:
        cfg = replace(config, grad_sample_mode=mode, lr=lr, missing_patterns=on, nest_columns=nest)
        if weight is not None:
            cfg = replace(cfg, bins_weight=weight)
        bins_plan = planned_bins(list(table.columns), types, cfg)
        missing_plan = planned_missingness(list(table.columns), cfg, complete)
        extra = [p for p in (bins_plan, missing_plan) if p is not None]
        sigma = bins_sigma = missing_sigma = None
        if np.isfinite(eps):
            ledger = calibrate(eps, delta, [plan, *extra])
            sigma = ledger.mechanism("phenotypes").noise_multiplier  # type: ignore[union-attr]
            if bins_plan is not None:
                bins_sigma = ledger.mechanism(bins_plan.name).noise_multiplier  # type: ignore[union-attr]
            if missing_plan is not None:
                missing_sigma = ledger.mechanism(missing_plan.name).noise_multiplier  # type: ignore[union-attr]
        t0 = time.perf_counter()
        model = fit_phenotypes(
            table,
            types,
            cfg,
            noise_multiplier=sigma,
            context=["abBMD", "SW16"],
            bins_noise_multiplier=bins_sigma,
            missing_noise_multiplier=missing_sigma,
            complete=complete,
        )
        fit_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        synth = model.sample(n, seed=args.seed + 1, complete=complete)
        sample_s = time.perf_counter() - t0
        row = {
            "epsilon": label,
            "lr": lr,
            "patterns": "on" if model.patterns is not None else "off",
            "cages": "round" if model.encoding.nested else "number",
            "sigma": None if sigma is None else round(sigma, 3),
            "miss_sigma": None if missing_sigma is None else round(missing_sigma, 2),
            "fit_s": round(fit_s, 1),
            "sample_s": round(sample_s, 1),
            **{k: round(v, 4) for k, v in _fidelity(table, synth, numeric).items()},
        }
        if dp_cols:  # the DP-binned columns alone
            row["bins_weight"] = cfg.bins_weight
            row["bins_sigma"] = None if bins_sigma is None else round(bins_sigma, 2)
            dp_fid = _fidelity(table, synth, dp_cols)
            row |= {f"dp_{k}": round(dp_fid[k], 4) for k in ("mean_err_sd", "sd_log_err")}
        rows.append(row)
        # a header whenever the columns change (the hooks reference row has no DP bins')
        header = len(rows) == 1 or list(rows[-2]) != list(row)
        print(pd.DataFrame(rows[-1:]).to_string(index=False, header=header), flush=True)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    references = [
        text
        for present, text in (
            (any(not np.isfinite(float(e)) for e in args.eps), "eps inf (same loop, no privacy)"),
            (
                any(run[0] == "3 (hooks ref)" for run in runs),
                "'3 (hooks ref)' (materialised per-sample gradients)",
            ),
        )
        if present
    ]
    print(
        f"\npeak RSS {peak_mb:.0f} MB; target: fit < 30 s (2 cores); reference rows: "
        + (" and ".join(references) or "none in this run (add inf to --eps)")
    )


if __name__ == "__main__":
    main()
