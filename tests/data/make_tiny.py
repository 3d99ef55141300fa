"""Regenerate the tiny test cohorts under tests/data/ (run from the repository root):

    python tests/data/make_tiny.py

* ``tiny/parker``, ``tiny/plink``, ``tiny/vcf``: one hard-call cohort (40 mice x 2 chromosomes x
  60 SNPs from :func:`dpgenome.testing.toy_cohort`, seed 7) with missing dosages, one sample
  flagged ``discard``, one flagged ``mixup``, a map quality column (some SNPs <= 0.95) and
  the toy phenotypes; written by :func:`dpgenome.io.write_cohort`. All three read identically.
* ``tiny_dosage/parker``: the same cohort with 3% non-integer dosages (lossless round trip).
* ``tiny_gt/``: ``tiny/plink`` exported by plink2 as a GT-only VCF
  (``plink2 --bfile ... --export vcf id-paste=iid``), an independent writer for the GT path.

Synthetic data only: no real individual appears in these files.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np

from dpgenome.cohort import Cohort
from dpgenome.io import write_cohort
from dpgenome.testing import ToyConfig, toy_cohort

HERE = Path(__file__).resolve().parent
CONFIG = ToyConfig(n=40, n_chrom=2, snps_per_chrom=60, causal=((0, 20), (1, 35)), pheno_missing=0.1)
SEED = 7


def tiny_cohort() -> Cohort:
    """The hard-call tiny cohort (deterministic)."""
    cohort, _ = toy_cohort(SEED, CONFIG)
    rng = np.random.default_rng(SEED)
    missing = rng.random(cohort.dosages.shape) < 0.01
    cohort.dosages[missing] = np.nan
    cohort.samples.loc[3, "discard"] = True
    cohort.samples.loc[11, "mixup"] = True
    return cohort


def tiny_dosage_cohort() -> Cohort:
    """The tiny cohort with 3% of the observed dosages made non-integer."""
    cohort = tiny_cohort()
    rng = np.random.default_rng(SEED + 1)
    pick = (rng.random(cohort.dosages.shape) < 0.03) & ~np.isnan(cohort.dosages)
    cohort.dosages[pick] = np.round(rng.uniform(0.0, 2.0, size=int(pick.sum())), 3)
    return cohort


def main() -> None:
    for sub in ("tiny", "tiny_dosage", "tiny_gt"):
        shutil.rmtree(HERE / sub, ignore_errors=True)
    cohort = tiny_cohort()
    for fmt in ("parker", "plink", "vcf"):
        write_cohort(cohort, HERE / "tiny" / fmt, fmt)
    write_cohort(tiny_dosage_cohort(), HERE / "tiny_dosage" / "parker", "parker")
    out = HERE / "tiny_gt"
    out.mkdir()
    subprocess.run(
        [
            "plink2",
            "--bfile",
            str(HERE / "tiny" / "plink" / "cohort"),
            "--export",
            "vcf",
            "id-paste=iid",
            "--out",
            str(out / "cohort"),
        ],
        check=True,
        capture_output=True,
    )
    (out / "cohort.log").unlink()
    shutil.copy(HERE / "tiny" / "plink" / "pheno.csv", out / "pheno.csv")


if __name__ == "__main__":
    main()
