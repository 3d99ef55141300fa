"""A small seeded cohort with LD and planted effects, for unit tests, docs and quick demos.

This is *not* the CFW-like simulator (:mod:`dpgenome.simulate`, msprime-based); it is a fast
mosaic-of-founders generator: every haplotype is a mosaic of ``n_founders`` founder haplotypes
with switches at rate ``switch_rate`` per SNP, which gives block-like LD in milliseconds.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from dpgenome.cohort import Cohort, PhenoType


@dataclass(frozen=True)
class ToyTruth:
    causal_index: np.ndarray
    causal_effect: np.ndarray
    liability_threshold: float


@dataclass(frozen=True)
class ToyConfig:
    n: int = 300
    n_chrom: int = 3
    snps_per_chrom: int = 400
    n_founders: int = 8
    switch_rate: float = 0.01
    spacing_bp: int = 20_000
    causal: tuple[tuple[int, int], ...] = ((0, 150), (1, 80))  # (chromosome index, SNP index)
    effect: float = 0.9
    case_fraction: float = 0.2
    pheno_missing: float = 0.08
    extra: dict[str, float] = field(default_factory=dict)


def _haplotypes(rng: np.random.Generator, cfg: ToyConfig, n_hap: int) -> np.ndarray:
    m = cfg.snps_per_chrom
    out = np.empty((n_hap, cfg.n_chrom * m), dtype=np.int8)
    for c in range(cfg.n_chrom):
        freq = rng.uniform(0.15, 0.85, size=m)
        founders = (rng.random((cfg.n_founders, m)) < freq).astype(np.int8)
        switches = rng.random((n_hap, m)) < cfg.switch_rate
        switches[:, 0] = True
        segment = np.cumsum(switches, axis=1) - 1
        draws = rng.integers(cfg.n_founders, size=(n_hap, m))
        founder_of = np.take_along_axis(draws, segment, axis=1)
        haps = founders[founder_of, np.arange(m)]
        flips = rng.random((n_hap, m)) < 0.002
        out[:, c * m : (c + 1) * m] = haps ^ flips
    return out


def toy_cohort(seed: int = 0, config: ToyConfig | None = None) -> tuple[Cohort, ToyTruth]:
    """A cohort with phenotypes ``abBMD`` (binary, planted QTLs), ``BMD`` (continuous, same
    QTLs), covariates ``SW16`` (binary) and ``round`` (categorical), and missing values."""
    cfg = config or ToyConfig()
    rng = np.random.default_rng(seed)
    haps = _haplotypes(rng, cfg, 2 * cfg.n)
    dos = (haps[0::2] + haps[1::2]).astype(np.float32)
    m = cfg.snps_per_chrom
    variants = pd.DataFrame(
        {
            "id": [f"rs{c + 1}_{j}" for c in range(cfg.n_chrom) for j in range(m)],
            "chr": [str(c + 1) for c in range(cfg.n_chrom) for _ in range(m)],
            "pos": np.tile(np.arange(1, m + 1, dtype=np.int64) * cfg.spacing_bp, cfg.n_chrom),
            "ref": rng.choice(list("ACGT"), size=cfg.n_chrom * m),
            "alt": "N",
            "quality": np.round(
                np.where(
                    rng.random(cfg.n_chrom * m) < 0.03, 0.9, rng.uniform(0.96, 1.0, cfg.n_chrom * m)
                ),
                3,
            ),
        }
    )
    variants["alt"] = variants["ref"].map({"A": "G", "C": "T", "G": "A", "T": "C"})
    causal = np.array([c * m + j for c, j in cfg.causal], dtype=np.int64)
    effects = np.full(len(causal), cfg.effect)
    rounds = rng.choice([f"SW{i}" for i in range(14, 19)], size=cfg.n)
    sw16 = (rounds == "SW16").astype(np.float64)
    g = dos[:, causal].astype(np.float64)
    g = (g - g.mean(0)) / np.maximum(g.std(0), 1e-9)
    liability = g @ effects + 0.8 * sw16 + rng.normal(size=cfg.n)
    threshold = float(np.quantile(liability, 1 - cfg.case_fraction))
    ab = (liability > threshold).astype(np.float64)
    bmd = 0.5 * (g @ effects) + 0.3 * sw16 + rng.normal(size=cfg.n)
    bw = 20 + 0.5 * bmd + rng.normal(scale=1.5, size=cfg.n)
    for arr in (ab, bmd, bw):
        arr[rng.random(cfg.n) < cfg.pheno_missing] = np.nan
    pheno = pd.DataFrame({"abBMD": ab, "BMD": bmd, "bw": bw, "SW16": sw16, "round": rounds})
    samples = pd.DataFrame({"id": [f"M{seed:02d}{i:05d}" for i in range(cfg.n)]})
    types = {
        "abBMD": PhenoType.BINARY,
        "BMD": PhenoType.CONTINUOUS,
        "bw": PhenoType.CONTINUOUS,
        "SW16": PhenoType.BINARY,
        "round": PhenoType.CATEGORICAL,
    }
    cohort = Cohort(dos, variants, samples, pheno, types, source=f"toy_cohort(seed={seed})")
    return cohort, ToyTruth(causal, effects, threshold)
