"""Run plink2 and GEMMA on an in-memory cohort: the independent references of the GWAS tests.

Minimal writers (no dependency on dpgenome.io) for
* GEMMA BIMBAM mean-genotype text (``-g``: ``id, a1, a0, dosage...`` with full-precision
  dosages, ``NA`` = missing), phenotype (``-p``) and covariate (``-c``, intercept column
  first) files;
* a plink2 dosage import (``--import-dosage format=1``: one A1 dosage per sample) with a
  ``.fam`` and ``.map``.

Traps handled: plink2 reads a 0/1 phenotype as case/control (0 = control, logistic
regression); the linear model's beta, se and p are unchanged by adding a constant to y,
so the phenotype is written as ``y + 10`` to force ``--glm``'s linear regression. GEMMA
filters SNPs on MAF (``-maf``) and missingness (``-miss``): both are disabled here.

Run as a script to print the tool versions and one comparison on the toy cohort:
``python tests/reference/tools.py``.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd

PLINK2 = shutil.which("plink2")
GEMMA = shutil.which("gemma")


def _fmt(values: np.ndarray) -> list[str]:
    return ["NA" if np.isnan(v) else repr(float(v)) for v in values]


def write_bimbam(
    tmp: Path,
    dosages: np.ndarray,
    ids: list[str],
    y: np.ndarray,
    covariates: np.ndarray | None,
    *,
    name: str = "data",
) -> dict[str, Path]:
    """GEMMA input files; dosages are written with ``repr`` (17 significant digits)."""
    n, m = dosages.shape
    geno = tmp / f"{name}.geno.txt"
    with geno.open("w") as fh:
        for j in range(m):
            fh.write(f"{ids[j]}, A, B, " + ", ".join(_fmt(dosages[:, j].astype(np.float64))) + "\n")
    pheno = tmp / f"{name}.pheno.txt"
    pheno.write_text("\n".join(_fmt(np.asarray(y, dtype=np.float64))) + "\n")
    cov = np.ones((n, 1))
    if covariates is not None and np.size(covariates):
        cov = np.column_stack([cov, covariates])
    covf = tmp / f"{name}.cov.txt"
    covf.write_text("\n".join(" ".join(_fmt(row)) for row in cov) + "\n")
    return {"geno": geno, "pheno": pheno, "cov": covf}


def _run(cmd: list[str], cwd: Path) -> None:
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")


def gemma_lm(tmp: Path, files: dict[str, Path], *, out: str = "lm") -> pd.DataFrame:
    """GEMMA ``-lm 1`` (Wald); returns its ``.assoc.txt`` table."""
    assert GEMMA is not None
    _run(
        [
            GEMMA,
            "-g",
            str(files["geno"]),
            "-p",
            str(files["pheno"]),
            "-c",
            str(files["cov"]),
            "-lm",
            "1",
            "-maf",
            "0",
            "-miss",
            "1",
            "-o",
            out,
        ],
        tmp,
    )
    return pd.read_csv(tmp / "output" / f"{out}.assoc.txt", sep="\t")


def gemma_kinship(tmp: Path, files: dict[str, Path], *, out: str) -> np.ndarray:
    """GEMMA ``-gk 1`` (centred) kinship from the SNPs in ``files['geno']``."""
    assert GEMMA is not None
    _run(
        [
            GEMMA,
            "-g",
            str(files["geno"]),
            "-p",
            str(files["pheno"]),
            "-gk",
            "1",
            "-maf",
            "0",
            "-miss",
            "1",
            "-o",
            out,
        ],
        tmp,
    )
    return np.loadtxt(tmp / "output" / f"{out}.cXX.txt")


def gemma_lmm(
    tmp: Path, files: dict[str, Path], kinship: Path, *, out: str, mode: int = 4
) -> pd.DataFrame:
    """GEMMA ``-lmm mode`` with a given kinship file; returns its ``.assoc.txt`` table."""
    assert GEMMA is not None
    _run(
        [
            GEMMA,
            "-g",
            str(files["geno"]),
            "-p",
            str(files["pheno"]),
            "-c",
            str(files["cov"]),
            "-k",
            str(kinship),
            "-lmm",
            str(mode),
            "-maf",
            "0",
            "-miss",
            "1",
            "-o",
            out,
        ],
        tmp,
    )
    return pd.read_csv(tmp / "output" / f"{out}.assoc.txt", sep="\t")


def gemma_lmm_loco(
    tmp: Path,
    dosages: np.ndarray,
    ids: list[str],
    chroms: np.ndarray,
    y: np.ndarray,
    covariates: np.ndarray | None,
    *,
    mode: int = 4,
) -> pd.DataFrame:
    """Per chromosome c: GEMMA ``-gk 1`` on the other chromosomes, then ``-lmm`` on c
    (the scheme of Parker et al. 2016's scripts). Concatenated ``.assoc.txt`` tables."""
    tables = []
    for c in pd.unique(chroms):
        on = chroms == c
        rest = write_bimbam(
            tmp,
            dosages[:, ~on],
            [i for i, k in zip(ids, on, strict=True) if not k],
            y,
            covariates,
            name=f"not{c}",
        )
        gemma_kinship(tmp, rest, out=f"kin_not{c}")
        this = write_bimbam(
            tmp,
            dosages[:, on],
            [i for i, k in zip(ids, on, strict=True) if k],
            y,
            covariates,
            name=f"chr{c}",
        )
        tables.append(
            gemma_lmm(tmp, this, tmp / "output" / f"kin_not{c}.cXX.txt", out=f"lmm{c}", mode=mode)
        )
    return pd.concat(tables, ignore_index=True)


def _write_dosage_import(
    tmp: Path, dosages: np.ndarray, ids: list[str], chroms: np.ndarray, pos: np.ndarray
) -> list[str]:
    """``d.dose`` (``--import-dosage format=1``: A1 = the dosage allele), ``d.fam`` and
    ``d.map`` in ``tmp``; the sample ids written."""
    n, m = dosages.shape
    samples = [f"S{i}" for i in range(n)]
    # format=1 with a header line: "SNP A1 A2 FID1 IID1 FID2 IID2 ..."
    header = "SNP A1 A2 " + " ".join(f"{s} {s}" for s in samples)
    rows = [f"{ids[j]} A B " + " ".join(_fmt(dosages[:, j].astype(np.float64))) for j in range(m)]
    (tmp / "d.dose").write_text(header + "\n" + "\n".join(rows) + "\n")
    (tmp / "d.fam").write_text("".join(f"{s} {s} 0 0 0 -9\n" for s in samples))
    (tmp / "d.map").write_text(
        "".join(f"{c} {i} 0 {p}\n" for c, i, p in zip(chroms, ids, pos, strict=True))
    )
    return samples


def plink2_glm(
    tmp: Path,
    dosages: np.ndarray,
    ids: list[str],
    chroms: np.ndarray,
    pos: np.ndarray,
    y: np.ndarray,
    covariates: np.ndarray | None,
) -> pd.DataFrame:
    """plink2 ``--glm`` on imported dosages (A1 = the dosage allele); linear regression
    forced by shifting y by +10 (see module docstring). Returns the ADD rows."""
    assert PLINK2 is not None
    n = dosages.shape[0]
    samples = _write_dosage_import(tmp, dosages, ids, chroms, pos)
    pheno = pd.DataFrame({"FID": samples, "IID": samples, "Y": np.asarray(y) + 10.0})
    pheno.to_csv(tmp / "d.pheno", sep="\t", index=False)
    cmd = [
        PLINK2,
        "--import-dosage",
        "d.dose",
        "format=1",
        "--fam",
        "d.fam",
        "--map",
        "d.map",
        "--pheno",
        "d.pheno",
        "--glm",
        "hide-covar",
        "allow-no-covars",
        "cols=+a1freq",
        "--threads",
        "1",
        "--out",
        "ref",
    ]
    if covariates is not None and np.size(covariates):
        cov = pd.DataFrame(np.asarray(covariates).reshape(n, -1))
        cov.columns = [f"C{i}" for i in range(cov.shape[1])]
        cov.insert(0, "IID", samples)
        cov.insert(0, "FID", samples)
        cov.to_csv(tmp / "d.covar", sep="\t", index=False)
        cmd += ["--covar", "d.covar", "--covar-variance-standardize"]
    _run(cmd, tmp)
    out = pd.read_csv(tmp / "ref.Y.glm.linear", sep="\t")
    return out[out["TEST"] == "ADD"].reset_index(drop=True)


def plink2_hardy(tmp: Path, dosages: np.ndarray, ids: list[str]) -> pd.DataFrame:
    """plink2 ``--hardy`` on imported hard-call dosages (one chromosome, made-up positions):
    per SNP the observed and expected heterozygote counts (``O(HET_A1)``, ``E(HET_A1)``, as
    shares of the calls) and the exact test's ``P``."""
    assert PLINK2 is not None
    chroms = np.full(len(ids), "1")
    _write_dosage_import(tmp, dosages, ids, chroms, 1000 * (np.arange(len(ids)) + 1))
    cmd = [PLINK2, "--import-dosage", "d.dose", "format=1", "--fam", "d.fam", "--map", "d.map"]
    _run([*cmd, "--hardy", "--threads", "1", "--out", "ref"], tmp)
    return pd.read_csv(tmp / "ref.hardy", sep="\t")


REFERENCE_DIR = Path(__file__).resolve().parent


def write_committed_references() -> list[Path]:
    """Regenerate the small committed reference tables (toy_cohort(0) after QC) so the
    comparisons also run where plink2/GEMMA are absent:

    * ``plink2_glm_toy0_abBMD_bw_round.tsv``: plink2 --glm ADD rows, abBMD ~ bw + round;
    * ``gemma_lmm_loco_toy0_BMD_SW16.tsv``: GEMMA -lmm 4 per chromosome with the
      leave-one-chromosome-out -gk 1 kinship, BMD ~ SW16.
    """
    import tempfile

    from dpgenome.cohort import qc
    from dpgenome.gwas import prepare
    from dpgenome.testing import toy_cohort

    toy = qc(toy_cohort(0)[0])[0]
    v = toy.variants
    written = []
    with tempfile.TemporaryDirectory() as d:
        rows, y, design, _ = prepare(toy, "abBMD", ["bw", "round"])
        ref = plink2_glm(
            Path(d),
            toy.dosages[rows],
            list(v["id"]),
            v["chr"].to_numpy(),
            v["pos"].to_numpy(),
            y,
            design,
        )
        out = REFERENCE_DIR / "plink2_glm_toy0_abBMD_bw_round.tsv"
        ref[["ID", "A1", "OBS_CT", "BETA", "SE", "T_STAT", "P"]].to_csv(out, sep="\t", index=False)
        written.append(out)
    with tempfile.TemporaryDirectory() as d:
        rows, y, design, _ = prepare(toy, "BMD", ["SW16"])
        ref = gemma_lmm_loco(
            Path(d), toy.dosages[rows], list(v["id"]), v["chr"].to_numpy(), y, design
        )
        out = REFERENCE_DIR / "gemma_lmm_loco_toy0_BMD_SW16.tsv"
        cols = ["chr", "rs", "beta", "se", "l_remle", "l_mle", "p_wald", "p_lrt"]
        ref[cols].to_csv(out, sep="\t", index=False)
        written.append(out)
    return written


if __name__ == "__main__":  # pragma: no cover - manual reference run
    print(subprocess.run([str(PLINK2), "--version"], capture_output=True, text=True).stdout)
    print(subprocess.run([str(GEMMA), "-h"], capture_output=True, text=True).stdout[:200])
    for path in write_committed_references():
        print(f"wrote {path}")
