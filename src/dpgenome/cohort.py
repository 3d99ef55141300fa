"""The in-memory cohort every stage consumes, its QC, and the seeded member/holdout split.

A :class:`Cohort` holds

* ``dosages``: float32 samples x variants, expected alternative-allele count in [0, 2],
  NaN = missing (1,200 x 80,000 is 384 MB);
* ``variants``: a table with columns ``id, chr, pos, ref, alt, quality`` (quality NaN when the
  source has none; ``chr`` is a normalised string such as ``"11"`` or ``"X"``);
* ``samples``: a table with columns ``id, discard, mixup`` (booleans);
* ``phenotypes``: a table aligned row for row with ``samples`` (NaN = missing) and a type for
  each column (:class:`PhenoType`).

Readers build cohorts (``dpgenome.io``); every later stage takes and returns typed values.
"""

from __future__ import annotations

import difflib
import hashlib
import logging
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

import numpy as np
import pandas as pd

from dpgenome.errors import CohortError, ConfigError, InputError

log = logging.getLogger(__name__)

#: Chromosome names accepted in any input (a leading ``chr`` is stripped); order is sort order.
CHROMOSOME_ORDER: tuple[str, ...] = (*tuple(str(i) for i in range(1, 39)), "X", "Y", "MT")
_CHROM_RANK = {c: i for i, c in enumerate(CHROMOSOME_ORDER)}
_CHROM_ALIASES = {"M": "MT", "23": "X", "24": "Y", "26": "MT"}


class PhenoType(StrEnum):
    CONTINUOUS = "continuous"
    BINARY = "binary"
    CATEGORICAL = "categorical"


def normalise_chromosome(name: object) -> str | None:
    """Return the canonical chromosome name, or None when it is not a known chromosome."""
    text = str(name).strip()
    if text.lower().startswith("chr"):
        text = text[3:]
    text = text.upper() if not text.isdigit() else str(int(text))
    text = _CHROM_ALIASES.get(text, text)
    return text if text in _CHROM_RANK else None


def chromosome_rank(names: Iterable[str]) -> np.ndarray:
    """Sort keys of canonical chromosome names."""
    return np.array([_CHROM_RANK[c] for c in names], dtype=np.int64)


def infer_pheno_types(
    table: pd.DataFrame, overrides: dict[str, PhenoType] | None = None
) -> dict[str, PhenoType]:
    """Type each phenotype column: text -> categorical; numbers only in {0, 1} -> binary;
    other numbers -> continuous. ``overrides`` (public schema knowledge) wins."""
    overrides = overrides or {}
    types: dict[str, PhenoType] = {}
    for name in table.columns:
        if name in overrides:
            types[name] = PhenoType(overrides[name])
            continue
        col = table[name]
        if not pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col):
            types[name] = PhenoType.CATEGORICAL
            continue
        values = col.dropna().unique()
        if len(values) > 0 and np.isin(values, (0.0, 1.0)).all():
            types[name] = PhenoType.BINARY
        else:
            types[name] = PhenoType.CONTINUOUS
    return types


@dataclass
class Cohort:
    dosages: np.ndarray
    variants: pd.DataFrame
    samples: pd.DataFrame
    phenotypes: pd.DataFrame = field(default_factory=pd.DataFrame)
    pheno_types: dict[str, PhenoType] = field(default_factory=dict)
    #: where the cohort was read from (for messages and provenance), if anywhere
    source: str | None = None

    def __post_init__(self) -> None:
        if self.dosages.dtype != np.float32:
            self.dosages = np.asarray(self.dosages, dtype=np.float32)
        if self.dosages.ndim != 2:
            raise CohortError(f"dosages must be 2-D, got shape {self.dosages.shape}")
        n, m = self.dosages.shape
        if len(self.samples) != n:
            raise CohortError(f"{len(self.samples)} samples in the table but {n} dosage rows")
        if len(self.variants) != m:
            raise CohortError(f"{len(self.variants)} variants in the table but {m} dosage columns")
        if self.phenotypes.empty and len(self.phenotypes.columns) == 0:
            self.phenotypes = pd.DataFrame(index=pd.RangeIndex(n))
        if len(self.phenotypes) != n:
            raise CohortError(f"{len(self.phenotypes)} phenotype rows but {n} samples")
        self.samples = self.samples.reset_index(drop=True)
        self.variants = self.variants.reset_index(drop=True)
        self.phenotypes = self.phenotypes.reset_index(drop=True)
        for col, default in (("discard", False), ("mixup", False)):
            if col not in self.samples:
                self.samples[col] = default
        if "quality" not in self.variants:
            self.variants["quality"] = np.nan
        missing = [c for c in self.phenotypes.columns if c not in self.pheno_types]
        if missing:
            self.pheno_types.update(infer_pheno_types(self.phenotypes[missing]))

    # ------------------------------------------------------------------ shape and lookup
    @property
    def n_samples(self) -> int:
        return int(self.dosages.shape[0])

    @property
    def n_variants(self) -> int:
        return int(self.dosages.shape[1])

    @property
    def sample_ids(self) -> np.ndarray:
        return self.samples["id"].to_numpy(dtype=object)

    @property
    def chromosomes(self) -> list[str]:
        chroms = self.variants["chr"].unique().tolist()
        return sorted(chroms, key=lambda c: _CHROM_RANK.get(c, 10_000))

    def phenotype(self, name: str) -> np.ndarray:
        """A numeric phenotype as float64 (NaN = missing)."""
        self.require_phenotypes([name])
        if self.pheno_types[name] == PhenoType.CATEGORICAL:
            raise CohortError(f"phenotype {name!r} is categorical; a numeric phenotype is needed")
        return self.phenotypes[name].to_numpy(dtype=np.float64, na_value=np.nan)

    def require_phenotypes(self, names: Sequence[str]) -> None:
        unknown = [n for n in names if n not in self.phenotypes.columns]
        if unknown:
            columns = [str(c) for c in self.phenotypes.columns]
            known = ", ".join(columns[:12]) or "(none)"
            where = f" in {self.source}" if self.source else ""
            by_case = {c.lower(): c for c in columns}
            close = [
                by_case.get(n.lower())
                or next(iter(difflib.get_close_matches(n, columns, n=1, cutoff=0.7)), None)
                for n in unknown
            ]
            hint = ", ".join(f"{c!r} for {n!r}" for n, c in zip(unknown, close, strict=True) if c)
            raise CohortError(
                f"unknown phenotype/covariate {', '.join(map(repr, unknown))}{where}; "
                + (f"did you mean {hint}? " if hint else "")
                + f"available columns include: {known} ({len(columns)} in all)"
            )

    # ------------------------------------------------------------------ subsets
    def take_samples(self, index: np.ndarray | Sequence[int]) -> Cohort:
        idx = np.asarray(index)
        if idx.dtype == bool:
            idx = np.flatnonzero(idx)
        return replace(
            self,
            dosages=np.ascontiguousarray(self.dosages[idx]),
            samples=self.samples.iloc[idx].reset_index(drop=True),
            phenotypes=self.phenotypes.iloc[idx].reset_index(drop=True),
            pheno_types=dict(self.pheno_types),
        )

    def take_variants(self, index: np.ndarray | Sequence[int]) -> Cohort:
        idx = np.asarray(index)
        if idx.dtype == bool:
            idx = np.flatnonzero(idx)
        return replace(
            self,
            # np.take along axis 1 writes C order directly: ~30x faster than fancy
            # indexing + ascontiguousarray on a 1,200 x 80,000 matrix.
            dosages=np.take(self.dosages, idx, axis=1),
            variants=self.variants.iloc[idx].reset_index(drop=True),
            pheno_types=dict(self.pheno_types),
        )

    # ------------------------------------------------------------------ summaries
    def alt_frequency(self) -> np.ndarray:
        """Alternative-allele frequency per variant over observed dosages (float64)."""
        with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a SNP with no call: NaN
            return np.nanmean(self.dosages, axis=0, dtype=np.float64) / 2.0

    def maf(self) -> np.ndarray:
        f = self.alt_frequency()
        return np.minimum(f, 1.0 - f)

    def variant_missing_rate(self) -> np.ndarray:
        return np.isnan(self.dosages).mean(axis=0)

    def sample_missing_rate(self) -> np.ndarray:
        return np.isnan(self.dosages).mean(axis=1)

    def fingerprint(self) -> str:
        """SHA-256 of the cohort's content (ids, map, dosages, phenotypes): keys the
        lifetime privacy ledger. Independent of file format."""
        h = hashlib.sha256()
        h.update("\x1f".join(map(str, self.sample_ids)).encode())
        h.update(b"\x1e")
        h.update("\x1f".join(map(str, self.variants["id"])).encode())
        h.update(np.ascontiguousarray(self.variants["pos"].to_numpy(np.int64)).tobytes())
        h.update(b"\x1e")
        h.update(np.ascontiguousarray(self.dosages).tobytes())
        h.update(self.phenotypes.to_csv(index=False, na_rep="NA").encode())
        return h.hexdigest()

    def hard_call_fingerprint(self) -> str:
        """:meth:`fingerprint` of the cohort with its dosages rounded to the nearest call, as
        a PLINK 1 .bed holds it: what the PLINK files of a synthetic cohort read back as."""
        return replace(self, dosages=np.rint(self.dosages)).fingerprint()

    def design(self, covariates: Sequence[str]) -> tuple[np.ndarray, list[str]]:
        """Covariate matrix (no intercept) and its column names.

        Categorical covariates are one-hot encoded with the first level (in sorted order)
        dropped, as plink2 does; binary and continuous ones enter as numbers. Rows with a
        missing covariate are NaN in every column of that covariate.
        """
        self.require_phenotypes(covariates)
        levels = category_levels(self.phenotypes, self.pheno_types, covariates)
        return design_matrix(self.phenotypes, covariates, levels)


def category_levels(
    phenotypes: pd.DataFrame, types: Mapping[str, PhenoType], covariates: Sequence[str]
) -> dict[str, list[str]]:
    """The sorted levels of every categorical covariate (the design's one-hot columns)."""
    return {
        c: sorted(phenotypes[c].dropna().astype(str).unique())
        for c in covariates
        if types[c] == PhenoType.CATEGORICAL
    }


def design_matrix(
    phenotypes: pd.DataFrame, covariates: Sequence[str], levels: Mapping[str, Sequence[str]]
) -> tuple[np.ndarray, list[str]]:
    """:meth:`Cohort.design` with the categorical levels given (``levels`` has an entry for
    exactly the categorical covariates; a value outside them counts as the first level), so
    that another table can be encoded on the same columns."""
    cols: list[np.ndarray] = []
    names: list[str] = []
    for cov in covariates:
        raw = phenotypes[cov]
        if cov in levels:
            observed = raw.notna().to_numpy()
            values = raw.astype(str).to_numpy()
            for level in list(levels[cov])[1:]:
                col = (values == level).astype(np.float64)
                col[~observed] = np.nan
                cols.append(col)
                names.append(f"{cov}={level}")
        else:
            cols.append(raw.to_numpy(dtype=np.float64, na_value=np.nan))
            names.append(cov)
    if not cols:
        return np.empty((len(phenotypes), 0)), names
    return np.column_stack(cols), names


# ---------------------------------------------------------------------------- QC


@dataclass(frozen=True)
class QCConfig:
    """QC thresholds of Parker et al. 2016: drop flagged samples, SNPs with quality <= 0.95
    (when the map has a quality column) and SNPs with minor allele frequency <= 2%."""

    min_quality: float = 0.95
    min_maf: float = 0.02
    drop_flagged: bool = True

    def __post_init__(self) -> None:
        # NaN passes every comparison: it switched the quality filter off, and a MAF of NaN
        # dropped every SNP, each without a word
        for name, value, top in (
            ("min_quality", self.min_quality, 1.0),
            ("min_maf", self.min_maf, 0.5),
        ):
            if not (isinstance(value, int | float) and 0.0 <= value < top):
                raise ConfigError(
                    f"QC threshold {name} must be a number in [0, {top:g}) (from {top:g} up "
                    f"every SNP is dropped), got {value!r}"
                )


@dataclass(frozen=True)
class QCStep:
    unit: str  # "samples" or "variants"
    reason: str
    removed: int
    remaining: int


@dataclass
class QCReport:
    steps: list[QCStep] = field(default_factory=list)

    def add(self, unit: str, reason: str, removed: int, remaining: int) -> None:
        self.steps.append(QCStep(unit, reason, int(removed), int(remaining)))

    def to_dict(self) -> list[dict[str, Any]]:
        return [step.__dict__.copy() for step in self.steps]

    def lines(self) -> list[str]:
        return [
            f"dropped {s.removed} {s.unit}: {s.reason} ({s.remaining} left)" for s in self.steps
        ]


def _flagged(cohort: Cohort, column: str) -> np.ndarray:
    flag = cohort.samples[column].to_numpy(dtype=bool)
    if column in cohort.phenotypes.columns:
        text = [str(v).strip().lower() for v in cohort.phenotypes[column]]
        flag = flag | np.isin(text, ["yes", "true", "1"])
    return flag


def align_panel(public: Cohort, variants: pd.DataFrame) -> Cohort:
    """The public panel restricted to the cohort's ``variants`` (their ids, in their order),
    its dosages counting the cohort's ``alt`` allele.

    Panels and cohorts often list a SNP's two alleles the other way round (a reference panel
    in reference order, a PLINK ``.bim`` with the minor allele first): such SNPs are flipped
    so that pretraining and the public blocks copied into released regions count the same
    allele as the members (:func:`harmonise_alleles`, whose rules apply: another pair of
    alleles is an error). A panel lacking any of the SNPs is a
    :class:`~dpgenome.errors.CohortError` naming the panel."""
    ids = [str(v) for v in variants["id"]]
    index = {str(v): i for i, v in enumerate(public.variants["id"].tolist())}
    missing = [v for v in ids if v not in index]
    if missing:
        raise CohortError(
            f"the public panel lacks {len(missing)} of the cohort's {len(ids)} SNPs "
            f"(e.g. {missing[0]!r}); it must cover the cohort's SNP map",
            file=public.source,
        )
    aligned = public.take_variants(np.array([index[v] for v in ids], dtype=np.int64))
    # the same map: a SNP id on another chromosome or at another position (another build, a
    # relabelled file) would put the panel's genotypes in the wrong windows and ancestry scores
    here = aligned.variants
    moved = (here["chr"].astype(str).to_numpy() != variants["chr"].astype(str).to_numpy()) | (
        here["pos"].to_numpy(dtype=np.int64) != variants["pos"].to_numpy(dtype=np.int64)
    )
    if moved.any():
        i = int(np.argmax(moved))
        raise CohortError(
            f"the public panel places {int(moved.sum())} of the cohort's SNPs elsewhere (e.g. "
            f"{ids[i]!r} at chr {here['chr'].iloc[i]}:{here['pos'].iloc[i]}, the cohort's at "
            f"chr {variants['chr'].iloc[i]}:{variants['pos'].iloc[i]}); it must share the "
            "cohort's SNP map (chromosome and position, one genome build)",
            file=public.source,
        )
    return harmonise_alleles(aligned, variants, what="the public panel")


#: a panel individual is one of the cohort's when their genotype calls agree at this share of
#: the SNPs both have called (plink's duplicate check reads IBS the same way) ...
DUPLICATE_CONCORDANCE = 0.98
#: ... over at least this many SNPs, unless their sample ids are the same too: on one or two
#: chromosomes distinct mice of a colony can share whole chromosomes by descent (a review:
#: 23 of 1,000 panel mice identical to a cohort mouse over chromosome 19 alone; none over
#: chromosomes 5 and 11 or the whole genome)
DUPLICATE_MIN_SNPS = 5_000


def require_separate_panel(public: Cohort, cohort: Cohort, max_snps: int = 20_000) -> None:
    """A :class:`~dpgenome.errors.CohortError` naming the panel when any of its individuals
    is one of the cohort's: their hard calls agree at :data:`DUPLICATE_CONCORDANCE` of the SNPs
    both have called (on at most ``max_snps`` SNPs spread along the map), over at least
    :data:`DUPLICATE_MIN_SNPS` such SNPs or under the same sample id. That is the cohort's own
    files given as the panel, or a panel built with members in it: the panel is taken as
    public, so their genotypes would enter a release unprotected. Read on the genotypes: the
    same person may carry another id in the panel, and unrelated files often number their
    samples alike. ``public`` must already be aligned to ``cohort``'s variants
    (:func:`align_panel`). Only the count is named, never an id."""
    from dpgenome.relatedness import Indicators

    step = max(1, -(-cohort.n_variants // max_snps))
    members = Indicators.from_dosages(np.asarray(cohort.dosages)[:, ::step])
    member_ids = np.asarray(cohort.sample_ids).astype(str)
    copies = 0
    for lo in range(0, public.n_samples, 1000):  # a block of panel rows at a time
        block = Indicators.from_dosages(np.asarray(public.dosages)[lo : lo + 1000, ::step])
        agree = (
            block.het @ members.het.T
            + block.hom_ref @ members.hom_ref.T
            + block.hom_alt @ members.hom_alt.T
        )
        both = block.called() @ members.called().T
        same = agree >= DUPLICATE_CONCORDANCE * both
        ids = np.asarray(public.sample_ids[lo : lo + 1000]).astype(str)
        trusted = (both >= DUPLICATE_MIN_SNPS) | (ids[:, None] == member_ids[None, :])
        copies += int((same & trusted & (both > 0)).any(axis=1).sum())
    if copies:
        raise CohortError(
            f"{copies} of the public panel's {public.n_samples} individuals are individuals "
            f"of the cohort (their genotype calls agree at >= {DUPLICATE_CONCORDANCE:.0%} of "
            "the SNPs both have called): a public panel must hold no individual of the cohort "
            "(its genotypes are taken as public and enter the release without privacy "
            "protection)",
            file=public.source,
        )


def harmonise_alleles(
    cohort: Cohort, variants: pd.DataFrame, *, what: str, warn_strand: bool = True
) -> Cohort:
    """``cohort`` with every SNP it shares (by id) with ``variants`` counting ``variants``'
    ``alt`` allele: a SNP listed with its two alleles the other way round is flipped (dosage
    ``2 - d``, labels swapped); SNPs not in ``variants`` are left as they are.

    Files of one cohort often list alleles in different orders (reference order, or a PLINK
    ``.bim`` with the minor allele first, as plink 1.9 rewrites one by default); comparing
    dosages by SNP id alone would then compare opposite alleles. A SNP whose alleles differ
    in any other way (another strand or build) is a :class:`~dpgenome.errors.CohortError`
    naming ``what`` and ``cohort.source``. A label missing on either side (``NA``, ``.``,
    ``0``: PLINK writes ``0`` for the allele of a SNP monomorphic in its file) decides
    nothing; the known labels do: ``G/0`` against ``A/G`` is a swap, against ``G/A`` the
    same order, against ``A/T`` an error. A SNP whose known labels fit both orders (no label
    on one side) is kept as it is.

    An A/T or C/G SNP listed the other way round is flipped as a swap, but at such a SNP a
    swap cannot be told from the other strand (T/A on the other strand is A/T). The other
    SNPs show ``cohort``'s strand (another strand there is an error), so those flips are
    right unless its strand differs at the A/T and C/G SNPs alone; their count is logged as a
    warning (labels only, no data), unless ``warn_strand`` is false: reordering a cohort's
    own labels (a synthetic map put in a public order) raises no strand question."""
    labels = {"ref", "alt"}
    if not (labels <= set(variants.columns) and labels <= set(cohort.variants.columns)):
        return cohort
    ref_ids = pd.Index(variants["id"].astype(str))
    if ref_ids.has_duplicates:
        ref_ids = ref_ids.drop_duplicates()
        variants = variants.loc[~variants["id"].astype(str).duplicated()]
    pos = ref_ids.get_indexer(pd.Index(cohort.variants["id"].astype(str)))
    shared = np.flatnonzero(pos >= 0)
    if shared.size == 0:
        return cohort
    ids = cohort.variants["id"].astype(str).to_numpy()[shared]
    ours = [_allele_labels(variants[c].iloc[pos[shared]]) for c in ("ref", "alt")]
    theirs = [_allele_labels(cohort.variants[c].iloc[shared]) for c in ("ref", "alt")]

    def differ(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return (a != "") & (b != "") & (a != b)

    fits_same = ~(differ(ours[0], theirs[0]) | differ(ours[1], theirs[1]))
    fits_swap = ~(differ(ours[0], theirs[1]) | differ(ours[1], theirs[0]))
    swapped = fits_swap & ~fits_same
    other = ~(fits_same | fits_swap)
    if other.any():
        j = int(np.argmax(other))
        pair = [f"{a[j] or '?'}/{b[j] or '?'}" for a, b in (theirs, ours)]  # ? = no label
        raise CohortError(
            f"{what}'s alleles differ from the cohort's at {int(other.sum())} SNP(s), "
            f"e.g. {ids[j]!r}: {pair[0]} in {what}, {pair[1]} in the cohort (another strand "
            f"or genome build?); {what} must list the same two alleles",
            file=cohort.source,
        )
    if not swapped.any():
        return cohort
    pairs = np.char.add(ours[0].astype(str), ours[1].astype(str))
    ambiguous = swapped & np.isin(pairs, ("AT", "TA", "CG", "GC"))
    if warn_strand and ambiguous.any():
        log.warning(
            "%d A/T or C/G SNP(s) are listed the other way round in %s %s (e.g. %r) and were "
            "flipped as swaps; at such SNPs a swap looks the same as the other strand: its "
            "other SNPs are on the cohort's strand, so check it was not strand-aligned apart "
            "from its A/T and C/G SNPs",
            int(ambiguous.sum()),
            what,
            cohort.source,
            ids[int(np.argmax(ambiguous))],
        )
    return swap_alleles(cohort, shared[swapped])


def swap_alleles(cohort: Cohort, cols: np.ndarray) -> Cohort:
    """``cohort`` listing the two alleles of the SNPs at columns ``cols`` the other way round:
    the same genotypes, the labels swapped and the dosages counting the other allele."""
    dosages = cohort.dosages.copy()
    dosages[:, cols] = 2.0 - dosages[:, cols]
    table = cohort.variants.copy()
    rows = table.index[cols]
    table.loc[rows, ["ref", "alt"]] = table.loc[rows, ["alt", "ref"]].to_numpy()
    return replace(cohort, dosages=dosages, variants=table, pheno_types=dict(cohort.pheno_types))


#: how a synthetic cohort's map lists each SNP's two alleles (``--allele-order``)
ALLELE_ORDERS = ("auto", "input", "panel", "sorted")


def data_ordered_alleles(cohort: Cohort, least: int = 50) -> str | None:
    """``"minor"`` (``"major"``) when the counted (``alt``) allele is the cohort's minor
    (major) allele at every one of at least ``least`` SNPs whose frequency is not exactly
    1/2, i.e. when the map's allele order looks read off these individuals' genotypes (plink
    1.9 writes a ``.bim`` minor allele first unless told ``--keep-allele-order``); else
    ``None``. A map in reference order has SNPs either way round, unless every SNP is rare."""
    freq = cohort.alt_frequency()
    with np.errstate(invalid="ignore"):
        poly = np.isfinite(freq) & (freq > 0) & (freq < 1) & (freq != 0.5)
    if int(poly.sum()) < least:
        return None
    if (freq[poly] < 0.5).all():
        return "minor"
    if (freq[poly] > 0.5).all():
        return "major"
    return None


def public_allele_map(
    order: str, cohort: Cohort, panel: Cohort | None, *, private: bool, file: str | None = None
) -> tuple[str, pd.DataFrame | None]:
    """``(order, map)``: how a synthetic cohort of ``cohort`` lists its alleles, resolved, and
    the map (``id``, ``ref``, ``alt``) to :func:`harmonise_alleles` it to (``None``: as the
    input lists them).

    A synthetic map copying the input's allele order tells whatever chose that order: a
    PLINK ``.bim`` written minor allele first tells which allele was the minor one among the
    individuals, a statistic outside the privacy ledger. ``order``: ``"panel"`` lists them as
    the public panel does; ``"sorted"`` in alphabetical order (``ref`` first; a missing label
    stays where it is); ``"input"`` as the input does (its order is then taken as public, as
    a VCF's REF/ALT in reference order is); ``"auto"`` is ``"panel"`` with a panel, else
    ``"input"``, except that under DP (``private``) an input order that
    :func:`data_ordered_alleles` finds read off the cohort's genotypes is an
    :class:`~dpgenome.errors.InputError` naming ``file`` (the genotype file)."""
    if order not in ALLELE_ORDERS:
        raise InputError(f"allele order must be one of {', '.join(ALLELE_ORDERS)}, got {order!r}")
    if order == "auto":
        if panel is not None:
            order = "panel"
        else:
            found = data_ordered_alleles(cohort) if private else None
            if found is not None:
                raise InputError(
                    f"the SNP map lists each SNP's {found} allele among these individuals as the "
                    f"counted one (A1 / alt) at every polymorphic SNP, an order read off their "
                    f"genotypes (plink 1.9 writes a .bim so unless told --keep-allele-order): a "
                    f"synthetic map copying it would tell which allele was the {found} one, "
                    f"outside the privacy ledger. Write the cohort in reference order, or choose "
                    f"--allele-order sorted (alphabetical), --public-panel (the panel's order), "
                    f"or --allele-order input if this order is public after all",
                    file=file,
                )
            order = "input"
    if order == "input":
        return order, None
    if order == "panel":
        if panel is None:
            raise InputError("--allele-order panel needs --public-panel")
        return order, panel.variants
    if not {"ref", "alt"} <= set(cohort.variants.columns):
        return order, None  # no labels to order
    table = cohort.variants[["id", "ref", "alt"]].copy()
    ref, alt = (_allele_labels(table[c]) for c in ("ref", "alt"))
    later = (ref != "") & (alt != "") & (ref > alt)
    table.loc[later, ["ref", "alt"]] = table.loc[later, ["alt", "ref"]].to_numpy()
    return order, table


def in_allele_order(cohort: Cohort, allele_map: pd.DataFrame | None) -> Cohort:
    """``cohort`` (a synthetic one) listing its alleles as ``allele_map`` does (the map
    :func:`public_allele_map` gives; ``None``: as it is). Its own labels reordered raise no
    strand question, so no strand warning."""
    if allele_map is None:
        return cohort
    return harmonise_alleles(cohort, allele_map, what="the allele order", warn_strand=False)


def _allele_labels(col: pd.Series) -> np.ndarray:
    """Upper-case allele labels; ``""`` where missing (NA, ``.``, ``0``)."""
    raw = col.to_numpy(dtype=object)
    text = np.char.upper(np.char.strip(np.where(pd.isna(raw), "", raw).astype(str)))
    return np.where(np.isin(text, (".", "0", "NAN", "NA", "NONE")), "", text)


def qc(
    cohort: Cohort,
    config: QCConfig | None = None,
    *,
    dp: bool = False,
    public: Cohort | None = None,
) -> tuple[Cohort, QCReport]:
    """Apply the study's QC; return the filtered cohort and every count dropped and why.

    ``dp`` (the input of a DP release): the SNPs kept must not depend on the members, since
    the synthetic cohort carries the same SNPs and a filter on the members' own minor-allele
    frequencies or quality scores (an imputation INFO / R2 is computed from their dosages)
    would be a statistic of them charged to no mechanism. The variant filter then reads the
    ``public`` panel's frequencies only (it must cover every SNP of the cohort), and without a
    panel no SNP is dropped. Sample filters (flagged ``discard`` / ``mixup``) act on each
    record alone, which keeps any later mechanism's guarantee; the counts are, like the
    number of members, treated as public. Without ``dp`` the members' own frequencies and
    quality scores decide, as in the original study, and ``public`` is not read."""
    config = config or QCConfig()
    report = QCReport()
    if config.drop_flagged:
        for column in ("discard", "mixup"):
            flag = _flagged(cohort, column)
            if flag.any():
                cohort = cohort.take_samples(~flag)
            report.add("samples", f"flagged {column}", flag.sum(), cohort.n_samples)
    if dp:
        if public is None:
            report.add(
                "variants",
                "none: a DP release reads no member's frequency or quality score, and no "
                "public panel was given to filter on",
                0,
                cohort.n_variants,
            )
            return cohort, report
        maf = align_panel(public, cohort.variants).maf()
        rare = ~(maf > config.min_maf)
        if rare.any():
            cohort = cohort.take_variants(~rare)
        report.add(
            "variants",
            f"minor allele frequency <= {config.min_maf:.0%} in the public panel or not observed "
            "there (a DP release reads no member's frequency or quality score)",
            rare.sum(),
            cohort.n_variants,
        )
        return cohort, report
    quality = cohort.variants["quality"].to_numpy(dtype=np.float64)
    has_quality = ~np.isnan(quality)
    low_quality = has_quality & (quality <= config.min_quality)
    if has_quality.any():
        if low_quality.any():
            cohort = cohort.take_variants(~low_quality)
        report.add(
            "variants", f"quality <= {config.min_quality:g}", low_quality.sum(), cohort.n_variants
        )
    maf = cohort.maf()
    rare = ~(maf > config.min_maf)  # NaN (nothing observed) is dropped too
    if rare.any():
        cohort = cohort.take_variants(~rare)
    report.add(
        "variants",
        f"minor allele frequency <= {config.min_maf:.0%} or not observed",
        rare.sum(),
        cohort.n_variants,
    )
    return cohort, report


def observed_rows(
    phenotypes: pd.DataFrame, pheno: str, covariates: Sequence[str] = ()
) -> np.ndarray:
    """Rows with the phenotype and every covariate observed: the rows a GWAS tests."""
    return np.asarray(phenotypes[[pheno, *covariates]].notna().all(axis=1).to_numpy())


def analysis_subset(
    cohort: Cohort,
    pheno: str,
    covariates: Sequence[str] = (),
    report: QCReport | None = None,
) -> Cohort:
    """Keep the samples with the phenotype and every covariate observed. A covariate that is
    the phenotype itself, or one named twice, is an error (``--covar``): adjusting a
    phenotype for itself explains it away (betas ~1e-15, lambda 0.16)."""
    if pheno in covariates:
        raise CohortError(f"{pheno!r} is the analysis phenotype and cannot also be a covariate")
    twice = sorted({c for c in covariates if list(covariates).count(c) > 1})
    if twice:
        raise CohortError(f"covariate {twice[0]!r} is named twice")
    cohort.require_phenotypes([pheno, *covariates])
    observed = observed_rows(cohort.phenotypes, pheno, covariates)
    if report is not None:
        report.add(
            "samples",
            f"{pheno} or a covariate ({', '.join(covariates) or 'none'}) missing",
            (~observed).sum(),
            observed.sum(),
        )
    if not observed.any():
        raise CohortError(f"no sample has {pheno!r} and all covariates observed")
    return cohort.take_samples(observed)


# ---------------------------------------------------------------------------- split


@dataclass(frozen=True)
class Split:
    """Member/holdout split. Members train the synthesizers; the holdout are the non-members
    of every audit. Indices refer to the cohort the split was drawn on."""

    members: np.ndarray
    holdout: np.ndarray
    seed: int
    holdout_fraction: float
    stratify: str | None
    member_hash: str
    #: how each individual's side was decided (:data:`PER_INDIVIDUAL` or :data:`SHUFFLED`)
    method: str = ""

    def record(self) -> dict[str, Any]:
        """What the dossier shows: no ids, only sizes, seed and a hash of the member ids."""
        return {
            "seed": self.seed,
            "holdout_fraction": self.holdout_fraction,
            "method": self.method,
            "stratified_on": self.stratify,
            "n_members": len(self.members),
            "n_holdout": len(self.holdout),
            "member_ids_sha256": self.member_hash,
        }


def hash_ids(ids: Iterable[object]) -> str:
    return hashlib.sha256("\n".join(sorted(map(str, ids))).encode()).hexdigest()


#: :func:`split_members` without ``stratify``: each individual's own draw
PER_INDIVIDUAL = (
    "per individual: the holdout are those whose keyed hash of (seed, sample id) falls below "
    "the holdout fraction, so adding or removing one individual moves nobody else"
)
#: :func:`split_members` with ``stratify``: shuffled within strata
SHUFFLED = (
    "shuffled within strata of the phenotype: adding or removing one individual can move "
    "others between the sides"
)


def individual_draws(sample_ids: Iterable[object], seed: int) -> np.ndarray:
    """One uniform draw in [0, 1) per sample id, a function of ``(seed, id)`` alone: the
    first 64 bits of SHA-256 over both."""
    prefix = f"dpgenome-split\x1f{int(seed)}\x1f".encode()
    words = [
        int.from_bytes(hashlib.sha256(prefix + str(i).encode()).digest()[:8], "big")
        for i in sample_ids
    ]
    return np.asarray(words, dtype=np.uint64).astype(np.float64) / 2.0**64


def split_members(
    cohort: Cohort,
    *,
    holdout_fraction: float = 0.2,
    seed: int = 0,
    stratify: str | None = None,
) -> Split:
    """Seeded member/holdout split.

    Without ``stratify`` (what ``dpgenome release`` uses) each individual's side is their
    own: holdout when the keyed hash of ``(seed, sample id)`` (:func:`individual_draws`) falls
    below ``holdout_fraction``, so the holdout's size is binomial around that share. Adding or
    removing one individual of the input then changes nobody else's side, and the release's
    guarantee about its members is one about the input cohort: an individual is a member,
    protected by the release's (epsilon, delta), or in the holdout, and the synthetic output
    does not depend on them. With ``stratify`` the sides are shuffled within its strata
    (binary/categorical by value, continuous by quintile; missing values form their own
    stratum) to exact shares, which balances the holdout on that column, but one individual
    more or less reshuffles their stratum and moves others between the sides: a guarantee
    about the member set only."""
    if not 0.0 < holdout_fraction < 1.0:
        raise CohortError(f"holdout fraction must be in (0, 1), got {holdout_fraction}")
    n = cohort.n_samples
    if n < 4:
        raise CohortError(f"{n} samples are too few for a member/holdout split")
    if stratify is None:
        hold = np.flatnonzero(individual_draws(cohort.sample_ids, seed) < holdout_fraction)
        method = PER_INDIVIDUAL
    else:
        hold = _stratified_holdout(cohort, holdout_fraction, seed, stratify)
        method = SHUFFLED
    is_member = np.ones(n, dtype=bool)
    is_member[hold] = False
    members = np.flatnonzero(is_member)
    if len(members) == 0 or len(hold) == 0:
        raise CohortError(
            f"a holdout fraction of {holdout_fraction} of {n} samples leaves "
            f"{len(members)} members and {len(hold)} holdout samples; choose a fraction that "
            "leaves both"
        )
    return Split(
        members=members,
        holdout=hold,
        seed=seed,
        holdout_fraction=holdout_fraction,
        stratify=stratify,
        member_hash=hash_ids(cohort.sample_ids[members]),
        method=method,
    )


def _stratified_holdout(
    cohort: Cohort, holdout_fraction: float, seed: int, stratify: str
) -> np.ndarray:
    """The holdout indices shuffled within strata of ``stratify`` (see :func:`split_members`)."""
    n = cohort.n_samples
    rng = np.random.default_rng(seed)
    cohort.require_phenotypes([stratify])
    col = cohort.phenotypes[stratify]
    if cohort.pheno_types[stratify] == PhenoType.CONTINUOUS:
        values = col.to_numpy(dtype=np.float64, na_value=np.nan)
        ok = ~np.isnan(values)
        strata = np.full(n, -1, dtype=np.int64)
        if ok.any():
            edges = np.quantile(values[ok], [0.2, 0.4, 0.6, 0.8])
            strata[ok] = np.searchsorted(edges, values[ok])
    else:
        strata = pd.factorize(col.astype(str).where(col.notna(), "<NA>"))[0]
    holdout: list[np.ndarray] = []
    for s in np.unique(strata):
        idx = np.flatnonzero(strata == s)
        rng.shuffle(idx)
        holdout.append(idx[: round(holdout_fraction * len(idx))])
    return np.sort(np.concatenate(holdout))


def split_from_holdout_ids(
    cohort: Cohort,
    holdout_ids: Sequence[str],
    *,
    file: str,
    lines: Sequence[int] | None = None,
) -> Split:
    """Rebuild a split from a list of holdout ids (``dpgenome audit --holdout``). ``lines``:
    the file line of each id, for messages (else its position in the list). A bad id is
    located, never quoted: sample ids identify individuals."""
    ids = pd.Index(cohort.sample_ids.astype(str))
    wanted = pd.Index([str(i) for i in holdout_ids])
    line = list(lines) if lines is not None else None
    if wanted.has_duplicates:
        j = int(np.argmax(wanted.duplicated()))
        first = list(wanted).index(wanted[j])
        raise InputError(
            f"holdout id listed twice (first on line {line[first]})"
            if line is not None
            else f"holdout id listed twice (entries {first + 1} and {j + 1} of the list)",
            file=file,
            line=None if line is None else line[j],
        )
    unknown = ~wanted.isin(ids)
    if unknown.any():
        j = int(np.argmax(unknown))
        raise InputError(
            f"{int(unknown.sum())} holdout id(s) are not in the cohort "
            + ("(the first on this line)" if line is not None else f"(the first is entry {j + 1})"),
            file=file,
            line=None if line is None else line[j],
        )
    is_hold = ids.isin(wanted)
    hold = np.flatnonzero(is_hold)
    members = np.flatnonzero(~is_hold)
    if len(hold) == 0 or len(members) == 0:
        raise InputError("the holdout list leaves no members or no holdout samples", file=file)
    return Split(
        members, hold, -1, len(hold) / len(ids), None, hash_ids(ids[members]), "a holdout id list"
    )
