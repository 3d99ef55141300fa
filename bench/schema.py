"""Declared phenotype shares (``--pheno-schema``): what a column's synthetic marginal gets
from its declaration, right and wrong, against the members' own and against the named
reference, the same column undeclared (typed from the data, DP bins on the ledger).

    python bench/schema.py [--seeds 3 4 5] [--eps 8] [--n 300]

A toy cohort (``dpgenome.testing.toy_cohort``: 300 mice, about 277 members once the analysis
subset drops rows missing BMD or SW16) gets two columns outside the CFW schema: ``bmi``, normal
with mean 25 and sd 4, and ``site``, three levels with shares 0.6 / 0.3 / 0.1 and no missing
value. Each arm declares them differently and runs the whole ``synthesize`` at the same epsilon
and synthesis seeds:

* ``data``: ``bmi`` not declared (the reference: typed from the data, DP bins on the ledger),
  ``site`` by its levels (a categorical column's levels cannot come from the members);
* ``domain``: ``bmi`` over the range [10, 45] (20 equal-width bins), ``site`` by its levels,
  no shares (a declared domain starts uniform);
* ``right``: with the shares of the distribution the members were drawn from, and
  ``missing: 0`` (the best case for public knowledge);
* ``shifted``: shares of a population 0.75 sd heavier (mean 28) and site 0.3 / 0.3 / 0.4;
* ``wide``: shares of a population 1.5 times as spread (sd 6) and site 1/3 each.

Printed per arm (means over the seeds): ``bmi``'s synthetic mean and sd beside the members',
its Kolmogorov-Smirnov distance to the members' values, its missing share, and ``site``'s
total variation distance to the members' level shares and its missing share.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from dpgenome.cohort import analysis_subset, qc
from dpgenome.phenoschema import read_pheno_schema
from dpgenome.phenotypes import PhenotypeConfig
from dpgenome.synthconfig import SynthConfig
from dpgenome.synthesize import NOISE_SEED_ENV, synthesize
from dpgenome.testing import ToyConfig, toy_cohort

# the DP noise is drawn from fresh OS entropy unless fixed: a benchmark's draws are
# reproducible from its seeds (dpgenome.synthesize.NOISE_SEED_ENV; never for a release)
os.environ.setdefault(NOISE_SEED_ENV, "seed")

LOW, HIGH, BINS = 10.0, 45.0, 20
SITES = ("A", "B", "C")


def bin_shares(mean: float, sd: float) -> list[float]:
    """Shares of N(mean, sd) in the declared range's equal-width bins (outer bins open)."""
    edges = np.linspace(LOW, HIGH, BINS + 1)
    cdf = stats.norm.cdf(edges[1:-1], mean, sd)
    return np.diff(np.r_[0.0, cdf, 1.0]).round(6).tolist()


def schema_text(arm: str) -> str:
    bmi = f"{{type: continuous, range: [{LOW:g}, {HIGH:g}], n_bins: {BINS}"
    site = f"{{type: categorical, levels: [{', '.join(SITES)}]"
    if arm == "data":  # a categorical column's levels cannot come from the members
        return f"columns:\n  site: {site}}}\n"
    shares = {
        "right": ((25.0, 4.0), (0.6, 0.3, 0.1)),
        "shifted": ((28.0, 4.0), (0.3, 0.3, 0.4)),
        "wide": ((25.0, 6.0), (1 / 3, 1 / 3, 1 / 3)),
    }
    if arm in shares:
        (mean, sd), site_shares = shares[arm]
        bmi += f", shares: {bin_shares(mean, sd)}, missing: 0"
        site += f", shares: {list(site_shares)}, missing: 0"
    return f"columns:\n  bmi: {bmi}}}\n  site: {site}}}\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[3, 4, 5])
    ap.add_argument("--eps", type=float, default=8.0)
    ap.add_argument("--n", type=int, default=300)
    args = ap.parse_args()
    t0 = time.perf_counter()

    cohort, _ = toy_cohort(3, ToyConfig(n=args.n))
    rng = np.random.default_rng(11)
    cohort.phenotypes["bmi"] = rng.normal(25.0, 4.0, cohort.n_samples)
    cohort.phenotypes["site"] = rng.choice(SITES, cohort.n_samples, p=[0.6, 0.3, 0.1])
    real, report = qc(cohort)
    members = analysis_subset(real, "BMD", ["SW16"], report)
    bmi_m = members.phenotypes["bmi"].to_numpy(float)
    site_m = members.phenotypes["site"].value_counts(normalize=True).reindex(SITES, fill_value=0)
    print(
        f"{members.n_samples} members; bmi mean {bmi_m.mean():.2f} sd {bmi_m.std(ddof=1):.2f}; "
        f"site {' / '.join(f'{v:.2f}' for v in site_m)}; epsilon {args.eps:g}, seeds {args.seeds}"
    )
    base = SynthConfig(pheno="BMD", covariates=("SW16",), epsilon=args.eps)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for arm in ("data", "domain", "right", "shifted", "wide"):
            path = Path(tmp) / f"{arm}.yaml"
            path.write_text(schema_text(arm))
            declared = read_pheno_schema(path)
            phenotypes = replace(PhenotypeConfig(), declared=declared)
            runs = []
            for seed in args.seeds:
                res = synthesize(members, replace(base, seed=seed, phenotypes=phenotypes))
                ph = res.cohort.phenotypes
                bmi = pd.to_numeric(ph["bmi"], errors="coerce").to_numpy(float)
                ok = bmi[np.isfinite(bmi)]
                site = ph["site"].astype("string")
                shares = site.dropna().value_counts(normalize=True).reindex(SITES, fill_value=0)
                runs.append(
                    {
                        "bmi_mean": ok.mean(),
                        "bmi_sd": ok.std(ddof=1),
                        "bmi_ks": stats.ks_2samp(ok, bmi_m).statistic,
                        "bmi_missing": 1 - len(ok) / len(bmi),
                        "site_tv": 0.5 * float(np.abs(shares - site_m).sum()),
                        "site_missing": float(site.isna().mean()),
                        "epsilon": res.ledger.to_dict()["epsilon"],
                    }
                )
            mean = pd.DataFrame(runs).mean()
            sd = pd.DataFrame(runs).std(ddof=1) if len(runs) > 1 else mean * np.nan
            rows.append(
                {"arm": arm, **{k: round(float(v), 3) for k, v in mean.items()}}
                | {"bmi_sd (sd over seeds)": round(float(sd["bmi_sd"]), 3)}
            )
            print(f"  {arm}: {time.perf_counter() - t0:.0f} s", flush=True)
    print(pd.DataFrame(rows).to_string(index=False))
    print(
        f"\nmembers: bmi mean {bmi_m.mean():.3f}, sd {bmi_m.std(ddof=1):.3f}; reference arm: "
        f"'data' (undeclared, DP bins). {time.perf_counter() - t0:.0f} s"
    )


if __name__ == "__main__":
    main()
