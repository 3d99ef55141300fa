"""The CFW-like cohort simulator: the embedded default of the demo, the tests and the benchmarks.

Genotypes
    Ancestry of every chromosome is simulated with msprime (Baumdicker et al. 2022,
    *Genetics* 220:iyab229) under a colony demography: an ancestral population of
    ``ancestral_size`` diploids, a founder bottleneck of ``founders`` animals lasting
    ``founder_generations`` generations, then a closed colony of ``colony_size`` animals for
    ``colony_generations`` generations (CFW: a Swiss colony founded from a handful of mice,
    Chia et al. 2005; Parker et al. 2016, *Nat Genet* 48:919). The recent generations are
    simulated under the discrete-time Wright-Fisher model (the sample is larger than the
    colony), older ones under the standard coalescent. Chromosome lengths are mouse mm10;
    recombination is uniform at ``recombination_rate`` per bp per generation (0.5 cM/Mb).

    SNPs sit at the real CFW panel positions (``data/panel.tsv.gz``: id, chr, pos of the
    79,645 SNPs of the published abBMD GWAS). Mapping: candidate sites are thrown on the
    tree sequence by ``msprime.sim_mutations`` (binary model, ``site_rate`` per bp: at 1,092
    mice 32 candidates per panel SNP on chr 11, 57 on chr 19, so a panel SNP lands a median
    0.35 kb from its position, at most 40 kb); candidates with one mutation and a minor
    allele frequency > ``min_maf`` *among the cohort's individuals* are eligible; each
    panel position takes the nearest eligible candidate, ties to distinct candidates being
    resolved in position order (a monotone matching: panel position k gets candidate
    ``max(nearest_k, chosen_{k-1} + 1)``), and the candidate's genotypes are reported at the
    panel position under the real SNP id. The MAF of each candidate is read from the tree
    sequence (per-site diversity) before any genotype is decoded, so only panel sites are
    ever materialised.

    ref/alt letters are random (seeded), alt is the derived allele half of the time;
    ``quality`` is ``1 - min(Exponential(0.01), 0.049)``: in (0.95, 1], as every panel SNP
    passed the study's QC (quality > 0.95). The imputed
    variant replaces ``imputed_fraction`` of the entries by a non-integer dosage between the
    hard call and a neighbouring genotype, as uncertain calls in the real ``geno.txt``.

Phenotypes
    For ``n == 1092`` the real phenotype table (``data/pheno.csv.gz``, CC0) row for row with
    its real ids, except ``abBMD`` and the bone columns that go with it; otherwise rows drawn
    from a Gaussian copula fitted to it, with fresh ids. ``abBMD`` keeps each row's
    missingness and is re-generated from the genotypes at two haplotype QTLs at the real loci
    plus SW16 (liability-threshold model, calibrated to the real GWAS); ``BMD`` and
    ``abnormalbone`` then follow it (real pairs of the row's class, in liability order), so
    that abBMD stays BMD above the real line. The models are in :mod:`dpgenome.phenomodel`.
    ``truth`` records every causal SNP with its per-allele effect, the liability model and
    the case fraction.

Memory: per chromosome, hard calls are int8 (n x m); only the float32 dosages of the
returned cohort are n x 79,645 x 4 bytes. For large n use :func:`simulate_stream`, which
yields one chromosome block at a time (``dpgenome simulate`` writes large cohorts that way).
"""

from __future__ import annotations

import gzip
import importlib.resources
import io
import math
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, replace
from functools import lru_cache
from typing import Any

import msprime
import numpy as np
import pandas as pd
import tskit

from dpgenome.cohort import Cohort, PhenoType, infer_pheno_types
from dpgenome.errors import ConfigError
from dpgenome.phenomodel import (
    DEFAULT_QTLS,
    REAL_ABBMD_OBSERVED,
    QtlSpec,
    bone_columns_follow,
    calibration_gwas,
    fit_pheno_model,
    plant_abbmd,
)

__all__ = [
    "AUTOSOMES",
    "DEFAULT_QTLS",
    "MM10_LENGTHS",
    "REAL_ABBMD_OBSERVED",
    "REAL_N",
    "ChromosomeBlock",
    "QtlSpec",
    "SimConfig",
    "Simulated",
    "SimulatedStream",
    "calibration_gwas",
    "colony_labels",
    "load_panel",
    "load_real_phenotypes",
    "simulate",
    "simulate_stream",
]

#: Mouse mm10 (GRCm38) autosome lengths in bp (UCSC chromInfo).
MM10_LENGTHS: dict[str, int] = {
    "1": 195_471_971,
    "2": 182_113_224,
    "3": 160_039_680,
    "4": 156_508_116,
    "5": 151_834_684,
    "6": 149_736_546,
    "7": 145_441_459,
    "8": 129_401_213,
    "9": 124_595_110,
    "10": 130_694_993,
    "11": 122_082_543,
    "12": 120_129_022,
    "13": 120_421_639,
    "14": 124_902_244,
    "15": 104_043_685,
    "16": 98_207_768,
    "17": 94_987_271,
    "18": 90_702_639,
    "19": 61_431_566,
}
AUTOSOMES: tuple[str, ...] = tuple(MM10_LENGTHS)
#: Number of mice in the real phenotype table; a cohort of this size uses it row for row.
REAL_N = 1092


#: msprime joins at most 100 populations in one event: the colony and its sub-colonies
MAX_COLONIES = 99
#: a sub-colony's liability shift beyond this many sds makes the trait the colony's alone
MAX_COLONY_EFFECT = 10.0


@dataclass(frozen=True)
class SimConfig:
    """Everything that determines a simulated cohort (with the seed, it is reproducible).

    ``n`` mice (1092: the real phenotype rows and ids), ``n_public`` further mice of the same
    colony for a public reference panel (genotypes only), ``chromosomes`` (mouse autosomes by
    name), ``imputed_fraction`` of non-integer dosages; the colony demography (diploid sizes,
    generations), ``recombination_rate`` per bp, candidate ``site_rate`` and ``min_maf`` of
    the genotype model; the ``qtls``, case fraction, SW16 effect and calibration mode of the
    abBMD model (:mod:`dpgenome.phenomodel`). Use :meth:`validate` (done by
    :func:`simulate`) for a checked copy; :meth:`small` is the fast preset."""

    n: int = REAL_N
    seed: int = 1
    chromosomes: tuple[str, ...] = AUTOSOMES
    n_public: int = 0
    imputed_fraction: float = 0.03
    #: missing genotype calls: their mean share (0: complete, as the CFW study's imputed
    #: dosages). A mouse's share is ``missing_calls`` times a lognormal factor (log-scale sd
    #: :data:`MISSING_SAMPLE_SD`, mean 1: a few mice miss many calls), a SNP's a gamma factor
    #: (shape :data:`MISSING_SNP_SHAPE`, mean 1: a few probes fail often) fixed by the SNP map
    #: alone, one genotyping platform for the cohort and the public panel; a call is missing
    #: with probability ``min(1, missing_calls x both factors)``, whatever the genotype
    missing_calls: float = 0.0
    # demography (generations, diploid sizes)
    ancestral_size: int = 2000
    founders: int = 5
    founder_generations: int = 2
    colony_size: int = 300
    colony_generations: int = 40
    #: population structure across chromosomes: ``colonies`` sub-colonies of ``colony_size``
    #: animals each, split from the colony ``colony_split_generations`` ago (1: one colony,
    #: CFW). The cohort's mice are in the sub-colonies by ``colony_shares`` (None: equal
    #: shares), the public panel's by equal shares, spread over the rows by a seeded
    #: permutation (:func:`colony_labels`). Every chromosome's genealogy shares the
    #: sub-colonies, so a mouse's ancestry is one across its genome.
    colonies: int = 1
    colony_split_generations: int = 30
    colony_shares: tuple[float, ...] | None = None
    #: a stratified trait: each sub-colony's shift of the abBMD liability, in units of the
    #: liability's sd (None: no shift; environment or diet that differs between sub-colonies,
    #: so the trait's mean follows ancestry as well as the QTLs)
    colony_effects: tuple[float, ...] | None = None
    recombination_rate: float = 5e-9
    site_rate: float = 1e-7
    min_maf: float = 0.02
    # abBMD liability model
    qtls: tuple[QtlSpec, ...] = DEFAULT_QTLS
    case_fraction: float = 0.194
    sw16_effect: float = 1.3
    #: "variance", "pvalue" or "off" (see QtlSpec); "auto" resolves to "pvalue" below the real
    #: cohort size (small cohorts keep genome-wide hits) and to "variance" otherwise
    calibrate_lead: str = "auto"

    @classmethod
    def small(cls, seed: int = 1, n: int = 400, **changes: Any) -> SimConfig:
        """A fast preset (chromosomes 5 and 11, 400 mice, both planted loci, SW16): a few
        seconds; used by the tests and the small end-to-end release. The loci are calibrated
        to the real lead p-values (not to the real variance explained), so the small cohort
        still has genome-wide significant hits at both loci."""
        return cls(n=n, seed=seed, chromosomes=("5", "11"), **changes).validate()

    def validate(self) -> SimConfig:
        """Return a checked copy with chromosome names normalised and sorted."""
        if self.n < 10:
            raise ConfigError(f"n must be at least 10 simulated individuals, got {self.n}")
        if self.n_public < 0:
            raise ConfigError(f"n_public must be >= 0, got {self.n_public}")
        if not 0.0 <= self.imputed_fraction < 0.5:
            raise ConfigError(f"imputed_fraction must be in [0, 0.5), got {self.imputed_fraction}")
        if not 0.0 <= self.missing_calls < 0.5:
            raise ConfigError(f"missing_calls must be in [0, 0.5), got {self.missing_calls}")
        if not 0.0 < self.case_fraction < 1.0:
            raise ConfigError(f"case_fraction must be in (0, 1), got {self.case_fraction}")
        calibrate = self.calibrate_lead
        if calibrate == "auto":
            calibrate = "pvalue" if self.n < REAL_N else "variance"
        if calibrate not in ("variance", "pvalue", "off"):
            raise ConfigError(
                "calibrate_lead must be 'auto', 'variance', 'pvalue' or 'off', "
                f"got {self.calibrate_lead!r}"
            )
        if not 1 <= self.colonies <= MAX_COLONIES:
            raise ConfigError(
                f"colonies must be in [1, {MAX_COLONIES}] (msprime's limit on populations "
                f"joining in one event), got {self.colonies}"
            )
        if self.colonies > 1 and not 0 < self.colony_split_generations < self.colony_generations:
            raise ConfigError(
                "colony_split_generations must be in (0, colony_generations = "
                f"{self.colony_generations}), got {self.colony_split_generations}"
            )
        shares = self.colony_shares
        if shares is not None:
            shares = tuple(float(v) for v in shares)
            if (
                len(shares) != self.colonies
                or min(shares) < 0
                or not math.isclose(sum(shares), 1.0, abs_tol=1e-9)
            ):
                raise ConfigError(
                    f"colony_shares must be {self.colonies} shares >= 0 summing to 1, got "
                    f"{self.colony_shares!r}"
                )
        effects = self.colony_effects
        if effects is not None:
            try:
                effects = tuple(float(v) for v in effects)
            except (TypeError, ValueError):
                effects = ()
            if self.colonies == 1:
                raise ConfigError(
                    "colony_effects need sub-colonies (colonies >= 2): one colony's shift is "
                    "absorbed by the liability threshold and changes nothing"
                )
            if len(effects) != self.colonies or not all(
                math.isfinite(e) and abs(e) <= MAX_COLONY_EFFECT for e in effects
            ):
                raise ConfigError(
                    f"colony_effects must be {self.colonies} numbers (one per sub-colony) "
                    f"within +-{MAX_COLONY_EFFECT:g} liability sds, got {self.colony_effects!r}"
                )
        if not 0 <= self.seed < 2**31:
            raise ConfigError(f"seed must be in [0, 2^31), got {self.seed}")
        chroms = []
        for c in self.chromosomes:
            name = str(c).strip().removeprefix("chr")
            if name not in MM10_LENGTHS:
                raise ConfigError(
                    f"unknown chromosome {c!r}; the simulator has the mouse autosomes 1..19"
                )
            chroms.append(name)
        if not chroms:
            raise ConfigError("no chromosome selected")
        chroms = sorted(set(chroms), key=AUTOSOMES.index)
        total_var = sum(q.variance for q in self.qtls)
        if total_var >= 1.0 or any(q.variance < 0 for q in self.qtls):
            raise ConfigError(f"QTL variances must be >= 0 and sum below 1, got {total_var}")
        return replace(
            self,
            chromosomes=tuple(chroms),
            calibrate_lead=calibrate,
            colony_shares=shares,
            colony_effects=effects,
        )


# ---------------------------------------------------------------------------- packaged data


def _data_bytes(name: str) -> bytes:
    return importlib.resources.files("dpgenome").joinpath("data", name).read_bytes()


@lru_cache(maxsize=1)
def load_panel() -> pd.DataFrame:
    """The real CFW SNP panel: ``id, chr, pos`` sorted by chromosome and position."""
    table = pd.read_csv(io.BytesIO(gzip.decompress(_data_bytes("panel.tsv.gz"))), sep="\t")
    table = table.rename(columns={"snp": "id"})
    table["chr"] = table["chr"].astype(str)
    table["pos"] = table["pos"].astype(np.int64)
    return table


@lru_cache(maxsize=1)
def load_real_phenotypes() -> pd.DataFrame:
    """The real phenotype table of the 1,092 CFW mice (Parker et al. 2016; CC0)."""
    return pd.read_csv(io.BytesIO(gzip.decompress(_data_bytes("pheno.csv.gz"))))


# ---------------------------------------------------------------------------- genotypes


def _seed(config: SimConfig, *key: int) -> np.random.SeedSequence:
    return np.random.SeedSequence([config.seed, *key])


def _split_counts(n: int, shares: tuple[float, ...]) -> np.ndarray:
    """``n`` split by ``shares`` (largest remainders: the counts sum to ``n``)."""
    exact = n * np.asarray(shares, dtype=np.float64)
    counts = np.floor(exact).astype(np.int64)
    counts[np.argsort(counts - exact, kind="stable")[: n - int(counts.sum())]] += 1
    return counts


def colony_labels(config: SimConfig) -> tuple[np.ndarray, np.ndarray]:
    """The sub-colony of each cohort row and of each public-panel row (all 0 for one colony):
    the shares' counts spread over the rows by a seeded permutation, so that the sub-colony
    is not confounded with the row order (at 1,092 mice the real phenotype rows, in order of
    their testing round)."""
    cfg = config.validate()
    k = cfg.colonies
    rng = np.random.default_rng(_seed(cfg, 300))
    cohort = np.repeat(np.arange(k), _split_counts(cfg.n, cfg.colony_shares or (1.0 / k,) * k))
    public = np.repeat(np.arange(k), _split_counts(cfg.n_public, (1.0 / k,) * k))
    return rng.permutation(cohort), rng.permutation(public)


def _samples(config: SimConfig) -> int | list[msprime.SampleSet]:
    """msprime's samples: the cohort's then the panel's, each in sub-colony order
    (:func:`_sample_rows` puts them in row order)."""
    if config.colonies == 1:
        return config.n + config.n_public
    cohort, public = colony_labels(config)
    return [
        msprime.SampleSet(int(np.sum(labels == c)), population=f"colony_{c}")
        for labels in (cohort, public)
        for c in range(config.colonies)
        if np.any(labels == c)
    ]


def _sample_rows(config: SimConfig) -> np.ndarray | None:
    """The msprime individual (in :func:`_samples` order) behind each cohort row, then each
    public row; None for one colony (the same order)."""
    if config.colonies == 1:
        return None
    cohort, public = colony_labels(config)
    rows = []
    for offset, labels in ((0, cohort), (len(cohort), public)):
        individual = np.empty(len(labels), dtype=np.int64)
        individual[np.argsort(labels, kind="stable")] = np.arange(len(labels))
        rows.append(offset + individual)
    return np.concatenate(rows)


def _demography(config: SimConfig) -> msprime.Demography:
    dem = msprime.Demography()
    if config.colonies > 1:
        for c in range(config.colonies):
            dem.add_population(name=f"colony_{c}", initial_size=config.colony_size)
    dem.add_population(name="colony", initial_size=config.colony_size)
    if config.colonies > 1:
        dem.add_population_split(
            time=config.colony_split_generations,
            derived=[f"colony_{c}" for c in range(config.colonies)],
            ancestral="colony",
        )
    t_found = config.colony_generations
    dem.add_population_parameters_change(
        time=t_found, initial_size=config.founders, population="colony"
    )
    dem.add_population_parameters_change(
        time=t_found + config.founder_generations,
        initial_size=config.ancestral_size,
        population="colony",
    )
    return dem


def _ancestry(config: SimConfig, chrom: str, n_individuals: int) -> tskit.TreeSequence:
    ss = _seed(config, AUTOSOMES.index(chrom) + 1)
    anc_seed, mut_seed = (int(s) % (2**31 - 1) + 1 for s in ss.generate_state(2))
    recent = config.colony_generations + config.founder_generations + 20
    assert n_individuals == config.n + config.n_public
    ts = msprime.sim_ancestry(
        samples=_samples(config),
        demography=_demography(config),
        sequence_length=MM10_LENGTHS[chrom],
        recombination_rate=config.recombination_rate,
        model=[
            msprime.DiscreteTimeWrightFisher(duration=recent),
            msprime.StandardCoalescent(),
        ],
        random_seed=anc_seed,
    )
    return msprime.sim_mutations(
        ts,
        rate=config.site_rate,
        random_seed=mut_seed,
        model=msprime.BinaryMutationModel(),
    )


def _monotone_nearest(candidates: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """For sorted ``targets``, indices into sorted ``candidates``: the nearest candidate,
    made strictly increasing (each candidate used once) by pushing collisions right (and,
    at the right end, left)."""
    if len(candidates) < len(targets):
        raise ConfigError(
            f"only {len(candidates)} eligible simulated sites for {len(targets)} panel SNPs; "
            "raise site_rate"
        )
    j = np.clip(np.searchsorted(candidates, targets), 1, len(candidates) - 1)
    nearest = np.where(targets - candidates[j - 1] <= candidates[j] - targets, j - 1, j)
    k = np.arange(len(targets))
    idx = np.maximum.accumulate(nearest - k) + k
    top = len(candidates) - len(targets) + k  # the largest index target k may take
    idx = np.minimum(idx, top)
    return idx


@dataclass(frozen=True)
class _ChromCalls:
    chrom: str
    calls: np.ndarray  # int8 (n_individuals x m) alt-allele counts
    variants: pd.DataFrame  # id, chr, pos, ref, alt, quality
    sim_pos: np.ndarray  # position of the simulated site behind each panel SNP


def _chromosome_calls(config: SimConfig, chrom: str, panel: pd.DataFrame) -> _ChromCalls:
    """Hard calls (cohort rows first, then public rows) at the panel SNPs of one chromosome."""
    n_total = config.n + config.n_public
    ts = _ancestry(config, chrom, n_total)
    cohort_nodes = ts.samples()[: 2 * config.n]
    nh = len(cohort_nodes)
    pi = ts.diversity(
        sample_sets=[cohort_nodes], windows="sites", mode="site", span_normalise=False
    ).reshape(-1)
    # per-site diversity of a biallelic site = 2 x (nh - x) / (nh (nh - 1)): solve for x
    prod = pi * nh * (nh - 1) / 2.0
    minor = (nh - np.sqrt(np.maximum(nh * nh - 4.0 * prod, 0.0))) / 2.0
    n_mut = np.bincount(ts.tables.mutations.site, minlength=ts.num_sites)
    # a small margin keeps MAF > min_maf after the uncertain calls perturb some dosages
    eligible = np.flatnonzero((minor / nh > config.min_maf + 0.0025) & (n_mut == 1))
    site_pos = ts.tables.sites.position
    panel_pos = panel["pos"].to_numpy()
    chosen = eligible[_monotone_nearest(site_pos[eligible], panel_pos)]
    drop = np.ones(ts.num_sites, dtype=bool)
    drop[chosen] = False
    kept = ts.delete_sites(np.flatnonzero(drop))
    haps = kept.genotype_matrix()  # m x 2n, int8 (derived allele = 1)
    rng = np.random.default_rng(_seed(config, AUTOSOMES.index(chrom) + 1, 7))
    m = len(panel_pos)
    flip = rng.random(m) < 0.5  # alt is the ancestral allele for these
    dip = haps[:, 0::2] + haps[:, 1::2]  # m x n, rows contiguous
    del haps
    dip[flip] = 2 - dip[flip]
    rows = _sample_rows(config)
    calls = np.ascontiguousarray(dip.T if rows is None else dip.T[rows])  # n x m, row order
    ref, alt = _alleles(rng, m)
    quality = np.round(1.0 - np.minimum(rng.exponential(0.01, size=m), 0.049), 3)
    variants = pd.DataFrame(
        {
            "id": panel["id"].to_numpy(),
            "chr": chrom,
            "pos": panel_pos,
            "ref": ref,
            "alt": alt,
            "quality": quality,
        }
    )
    return _ChromCalls(chrom, calls, variants, site_pos[chosen].astype(np.int64))


_TRANSITION = {"A": "G", "G": "A", "C": "T", "T": "C"}


def _alleles(rng: np.random.Generator, m: int) -> tuple[np.ndarray, np.ndarray]:
    """Random ref/alt pairs, two transitions for each transversion (as in mammals)."""
    bases = np.array(list("ACGT"))
    ref = bases[rng.integers(0, 4, size=m)]
    transition = np.array([_TRANSITION[b] for b in "ACGT"])[np.searchsorted(bases, ref)]
    other = np.array([["C", "T"], ["A", "G"], ["C", "T"], ["A", "G"]])[np.searchsorted(bases, ref)]
    transversion = other[np.arange(m), rng.integers(0, 2, size=m)]
    alt = np.where(rng.random(m) < 2 / 3, transition, transversion)
    return ref.astype(object), alt.astype(object)


def _dosages(calls: np.ndarray, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """float32 dosages with ``fraction`` of entries made uncertain: moved a random share in
    (0.02, 0.49) of the way towards a neighbouring genotype, rounded to 3 decimals."""
    dos = calls.astype(np.float32)
    if fraction <= 0:
        return dos
    flat = dos.reshape(-1)
    # positions drawn with replacement (O(k) memory at any n); repeats are merged, so the
    # realised share is fraction * (1 - fraction / 2) to first order
    where = np.unique(rng.integers(0, flat.size, size=rng.binomial(flat.size, fraction)))
    k = len(where)
    g = flat[where]
    step = np.where(g == 0, 1.0, np.where(g == 2, -1.0, np.where(rng.random(k) < 0.5, 1.0, -1.0)))
    w = rng.uniform(0.02, 0.49, size=k)
    flat[where] = np.round(g + step * w, 3).astype(np.float32)
    return dos


#: log-scale sd of a mouse's factor of missing calls (:attr:`SimConfig.missing_calls`)
MISSING_SAMPLE_SD = 1.0
#: gamma shape of a SNP's factor of missing calls (mean 1; smaller: a heavier tail)
MISSING_SNP_SHAPE = 0.5
#: the genotyping platform's seed: SNP factors depend on the map, not on the cohort's seed
PLATFORM_SEED = 20_161_004


def _missing_sample_factors(config: SimConfig) -> np.ndarray:
    """Each mouse's factor of missing calls, cohort rows then panel rows (lognormal, mean 1)."""
    rng = np.random.default_rng(_seed(config, 400))
    sd = MISSING_SAMPLE_SD
    return rng.lognormal(-sd * sd / 2.0, sd, size=config.n + config.n_public)


def _missing_snp_factors(chrom: str, m: int) -> np.ndarray:
    """Each SNP's factor of missing calls on ``chrom`` (gamma, mean 1): one platform, the same
    for every simulated cohort and panel of the map."""
    rng = np.random.default_rng([PLATFORM_SEED, AUTOSOMES.index(chrom) + 1])
    return rng.gamma(MISSING_SNP_SHAPE, 1.0 / MISSING_SNP_SHAPE, size=m)


def _miss_calls(
    dosages: np.ndarray, mice: np.ndarray, snps: np.ndarray, rng: np.random.Generator
) -> None:
    """Make calls missing in place, each with probability ``min(1, mice_i x snps_j)``."""
    prob = np.minimum(1.0, np.outer(mice, snps))
    dosages[rng.random(dosages.shape) < prob] = np.nan


# ---------------------------------------------------------------------------- phenotypes


def _phenotype_rows(config: SimConfig) -> tuple[pd.DataFrame, np.ndarray]:
    """Phenotype table (no ``id``) and sample ids of the cohort."""
    real = load_real_phenotypes()
    if config.n == REAL_N:
        return real.drop(columns="id").reset_index(drop=True), real["id"].astype(str).to_numpy()
    model = fit_pheno_model(real.drop(columns="id"))
    rows = model.sample(config.n, np.random.default_rng(_seed(config, 100)))
    ids = np.array([f"sim{config.seed}_{i:06d}" for i in range(config.n)], dtype=object)
    return rows, ids


# ---------------------------------------------------------------------------- assembly


@dataclass(frozen=True)
class ChromosomeBlock:
    """The simulated genotypes of one chromosome (cohort and public panel rows)."""

    chrom: str
    variants: pd.DataFrame
    dosages: np.ndarray  # float32, cohort samples x variants
    public_dosages: np.ndarray | None  # float32, public samples x variants


@dataclass
class SimulatedStream:
    """A simulation whose genotypes are produced one chromosome at a time (large n)."""

    config: SimConfig
    samples: pd.DataFrame
    phenotypes: pd.DataFrame
    pheno_types: dict[str, PhenoType]
    truth: dict[str, Any]
    public_samples: pd.DataFrame | None
    _cache: dict[str, _ChromCalls] = field(default_factory=dict, repr=False)

    @property
    def variants(self) -> pd.DataFrame:
        panel = load_panel()
        return panel[panel["chr"].isin(self.config.chromosomes)]

    def assemble(self) -> Simulated:
        """All chromosomes in one cohort (float32 dosages: n x variants x 4 bytes)."""
        cfg = self.config
        variants = self.variants.reset_index(drop=True)
        m = len(variants)
        dos = np.empty((cfg.n, m), dtype=np.float32)
        pub = np.empty((cfg.n_public, m), dtype=np.float32) if cfg.n_public else None
        tables = []
        start = 0
        for block in self.blocks():
            stop = start + block.dosages.shape[1]
            dos[:, start:stop] = block.dosages
            if pub is not None and block.public_dosages is not None:
                pub[:, start:stop] = block.public_dosages
            tables.append(block.variants)
            start = stop
        variant_table = pd.concat(tables, ignore_index=True)
        cohort = Cohort(
            dos,
            variant_table,
            self.samples.copy(),
            self.phenotypes.copy(),
            dict(self.pheno_types),
            source=f"dpgenome.simulate(seed={cfg.seed}, n={cfg.n})",
        )
        public = None
        if pub is not None and self.public_samples is not None:
            public = Cohort(
                pub,
                variant_table.copy(),
                self.public_samples.copy(),
                source=f"dpgenome.simulate(seed={cfg.seed}, public={cfg.n_public})",
            )
        return Simulated(cohort, self.truth, public)

    def blocks(self) -> Iterator[ChromosomeBlock]:
        """Yield the chromosomes in order; each block's arrays are freshly allocated."""
        cfg = self.config
        panel = load_panel()
        mice = _missing_sample_factors(cfg) if cfg.missing_calls > 0 else None
        for chrom in cfg.chromosomes:
            calls = self._cache.get(chrom) or _chromosome_calls(
                cfg, chrom, panel[panel["chr"] == chrom]
            )
            rng = np.random.default_rng(_seed(cfg, AUTOSOMES.index(chrom) + 1, 11))
            dos = _dosages(calls.calls[: cfg.n], cfg.imputed_fraction, rng)
            pub = (
                _dosages(calls.calls[cfg.n :], cfg.imputed_fraction, rng) if cfg.n_public else None
            )
            if mice is not None:
                snps = _missing_snp_factors(chrom, dos.shape[1])
                miss = np.random.default_rng(_seed(cfg, AUTOSOMES.index(chrom) + 1, 13))
                _miss_calls(dos, cfg.missing_calls * mice[: cfg.n], snps, miss)
                if pub is not None:
                    _miss_calls(pub, cfg.missing_calls * mice[cfg.n :], snps, miss)
            yield ChromosomeBlock(chrom, calls.variants, dos, pub)


@dataclass(frozen=True)
class Simulated:
    cohort: Cohort
    truth: dict[str, Any]
    public: Cohort | None


def simulate_stream(config: SimConfig) -> SimulatedStream:
    """Simulate phenotypes (and the QTL chromosomes they need) now, genotypes on demand."""
    cfg = config.validate()
    panel = load_panel()
    pheno, ids = _phenotype_rows(cfg)
    qtl_calls = {
        q.chrom: _chromosome_calls(cfg, q.chrom, panel[panel["chr"] == q.chrom])
        for q in cfg.qtls
        if q.chrom in cfg.chromosomes
    }
    ab, truth, liability = plant_abbmd(
        pheno,
        cfg.qtls,
        {c: (calls.calls, calls.variants) for c, calls in qtl_calls.items()},
        sw16_effect=cfg.sw16_effect,
        case_fraction=cfg.case_fraction,
        calibrate_lead=cfg.calibrate_lead,
        rng=np.random.default_rng(_seed(cfg, 200)),
        offset=None
        if cfg.colony_effects is None
        else np.asarray(cfg.colony_effects)[colony_labels(cfg)[0]],
    )
    pheno["abBMD"] = ab
    pheno = bone_columns_follow(pheno, ab, liability, load_real_phenotypes())
    truth |= {
        "simulator": "dpgenome.simulate",
        "config": _config_record(cfg),
        "n_samples": cfg.n,
        "n_variants": int(panel["chr"].isin(cfg.chromosomes).sum()),
        "phenotype_rows": "real table row for row" if cfg.n == REAL_N else "gaussian copula",
    }
    # discard/mixup are sample flags in the Cohort model, not phenotypes
    flags = {
        name: np.array([str(v).strip().lower() in ("yes", "true", "1") for v in pheno.pop(name)])
        for name in ("discard", "mixup")
        if name in pheno
    }
    overrides = {"abBMD": PhenoType.BINARY, "SW16": PhenoType.BINARY}
    types = infer_pheno_types(pheno, overrides)
    samples = pd.DataFrame(
        {
            "id": ids,
            "discard": flags.get("discard", np.zeros(cfg.n, dtype=bool)),
            "mixup": flags.get("mixup", np.zeros(cfg.n, dtype=bool)),
        }
    )
    public = None
    if cfg.n_public:
        public = pd.DataFrame(
            {
                "id": [f"pub{cfg.seed}_{i:06d}" for i in range(cfg.n_public)],
                "discard": False,
                "mixup": False,
            }
        )
    return SimulatedStream(cfg, samples, pheno, types, truth, public, dict(qtl_calls))


def _config_record(cfg: SimConfig) -> dict[str, Any]:
    rec = asdict(cfg)
    rec["chromosomes"] = list(cfg.chromosomes)
    rec["qtls"] = [asdict(q) for q in cfg.qtls]
    return rec


def simulate(config: SimConfig) -> Simulated:
    """Simulate a CFW-like cohort (and optionally a disjoint public reference panel).

    Deterministic for ``config.seed``; a chromosome's genotypes depend only on the seed, the
    chromosome, ``n``, ``n_public`` and the demography (the colony settings included), not
    on which other chromosomes are simulated.
    """
    return simulate_stream(config).assemble()
