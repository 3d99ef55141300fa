"""What ``dpgenome inspect`` reports: aggregate counts of a cohort before and after QC.

Aggregates only (counts, rates, histograms): never a sample id, genotype row or phenotype
value of an individual.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dpgenome.cohort import Cohort, PhenoType, QCConfig, data_ordered_alleles, qc
from dpgenome.errors import InputError
from dpgenome.phenoencoding import EncodedMissing, cfw_schema
from dpgenome.phenoschema import (
    DeclaredSchema,
    check_schema_domains,
    type_sources,
    values_encoded_as_missing,
)
from dpgenome.phenotypes import PhenotypeConfig

#: MAF histogram edges (the last bin is closed: [0.4, 0.5])
MAF_EDGES: tuple[float, ...] = (0.0, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5)


@dataclass(frozen=True)
class PhenoSummary:
    name: str
    type: str
    n_observed: int
    n_missing: int
    n_levels: int | None  # categorical only
    #: what fixes the type: "public CFW table", the --pheno-schema file's name, "one-hot of
    #: <parent>", or "data" (read from the members' values: an assumption under DP)
    typed_by: str = "data"

    @property
    def missing_rate(self) -> float:
        total = self.n_observed + self.n_missing
        return self.n_missing / total if total else 0.0


@dataclass(frozen=True)
class CohortSummary:
    source: str | None
    format: str | None
    n_samples_read: int
    n_variants_read: int
    n_samples: int
    n_variants: int
    flagged: dict[str, int]
    snps_per_chromosome_read: dict[str, int]
    snps_per_chromosome: dict[str, int]
    missing_rate: float
    sample_missing_rate_max: float
    variant_missing_rate_max: float
    variants_missing_over_5pct: int
    non_integer_dosage_rate: float
    maf_edges: tuple[float, ...]
    maf_counts: list[int]
    maf_median: float | None
    phenotypes: list[PhenoSummary] = field(default_factory=list)
    qc: list[dict[str, Any]] = field(default_factory=list)
    #: observed phenotype values the synthesizer's encoding turns into missing, per column
    #: (counts only: :func:`dpgenome.phenoschema.values_encoded_as_missing`)
    encoded_missing: list[EncodedMissing] = field(default_factory=list)
    #: "minor"/"major" when the map's allele order looks read off the genotypes
    #: (:func:`dpgenome.cohort.data_ordered_alleles`), else None
    allele_order_from_data: str | None = None
    #: the first value outside the types and domains the public schema fixes, as
    #: synthesize and release report it (file, line, column; no value), else None
    schema_problem: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "format": self.format,
            "n_samples": self.n_samples,
            "n_variants": self.n_variants,
            "n_samples_read": self.n_samples_read,
            "n_variants_read": self.n_variants_read,
            "flagged": dict(self.flagged),
            "snps_per_chromosome": dict(self.snps_per_chromosome),
            "snps_per_chromosome_read": dict(self.snps_per_chromosome_read),
            "missingness": {
                "dosage_missing_rate": self.missing_rate,
                "sample_missing_rate_max": self.sample_missing_rate_max,
                "variant_missing_rate_max": self.variant_missing_rate_max,
                "variants_missing_over_5pct": self.variants_missing_over_5pct,
            },
            "non_integer_dosage_rate": self.non_integer_dosage_rate,
            "allele_order_from_data": self.allele_order_from_data,
            "schema_problem": self.schema_problem,
            "maf": {
                "edges": list(self.maf_edges),
                "counts": list(self.maf_counts),
                "median": self.maf_median,
            },
            "n_phenotypes": len(self.phenotypes),
            "phenotypes": [
                {
                    "name": p.name,
                    "type": p.type,
                    "n_observed": p.n_observed,
                    "n_missing": p.n_missing,
                    "missing_rate": p.missing_rate,
                    "typed_by": p.typed_by,
                    **({"n_levels": p.n_levels} if p.n_levels is not None else {}),
                }
                for p in self.phenotypes
            ],
            "qc": list(self.qc),
            "phenotype_values_encoded_as_missing": [e.to_dict() for e in self.encoded_missing],
        }

    def lines(self) -> list[str]:
        out = [
            f"cohort: {self.source or '(in memory)'}" + (f" [{self.format}]" if self.format else "")
        ]
        out.append(f"samples: {self.n_samples_read} read, {self.n_samples} after QC")
        out.append(f"SNPs: {self.n_variants_read} read, {self.n_variants} after QC")
        per_chr = ", ".join(f"{c}: {k}" for c, k in self.snps_per_chromosome.items())
        out.append(f"SNPs per chromosome after QC: {per_chr or '(none)'}")
        out.append(
            f"missing dosages as read: {self.missing_rate:.3%} "
            f"(worst sample {self.sample_missing_rate_max:.2%}, "
            f"worst SNP {self.variant_missing_rate_max:.2%}; "
            f"{self.variants_missing_over_5pct} SNPs over 5%)"
            + (
                "; a synthetic cohort is complete unless synthesize / release run with "
                "--genotype-missingness"
                if self.missing_rate > 0
                else ""
            )
        )
        out.append(f"non-integer dosages as read: {self.non_integer_dosage_rate:.3%}")
        if self.allele_order_from_data is not None:
            which = self.allele_order_from_data
            out.append(
                f"allele order: the {which} allele is the counted one (A1 / alt) at every "
                "polymorphic SNP, an order read off these genotypes (plink 1.9 writes a .bim so "
                "without --keep-allele-order): a DP release refuses to copy it; write the cohort "
                "in reference order, or use --public-panel or --allele-order sorted"
            )
        bins = [
            f"[{lo:g},{hi:g}{']' if i == len(self.maf_counts) - 1 else ')'}: {k}"
            for i, (lo, hi, k) in enumerate(
                zip(self.maf_edges[:-1], self.maf_edges[1:], self.maf_counts, strict=True)
            )
        ]
        median = "n/a" if self.maf_median is None else f"{self.maf_median:.3f}"
        out.append(f"MAF after QC (median {median}): " + "  ".join(bins))
        out.append(f"phenotypes ({len(self.phenotypes)}), after sample QC:")
        width = max((len(p.name) for p in self.phenotypes), default=0)
        for p in self.phenotypes:
            levels = f", {p.n_levels} levels" if p.n_levels is not None else ""
            out.append(
                f"  {p.name:<{width}}  {p.type:<11}  observed {p.n_observed:>6}, "
                f"missing {p.missing_rate:6.1%}{levels}; type from {p.typed_by}"
            )
        from_data = [p.name for p in self.phenotypes if p.typed_by == "data"]
        categorical = [p.name for p in self.phenotypes if p.typed_by == "data" and p.n_levels]
        if from_data:
            out.append(
                f"  {len(from_data)} column(s) typed from the data ({', '.join(from_data[:8])}"
                f"{' ...' if len(from_data) > 8 else ''}): declare them in a --pheno-schema "
                "file before a DP release, or its ledger lists them as an assumption"
            )
        if categorical:
            out.append(
                f"  {len(categorical)} of them categorical ({', '.join(categorical[:8])}"
                f"{' ...' if len(categorical) > 8 else ''}): a DP release refuses them undeclared "
                "(their level set is the members'); declare their levels"
            )
        for e in self.encoded_missing:
            effect = (
                "synthesize and release refuse the column (its type read from the data is "
                "not the schema's)"
                if e.refused
                else "synthesize and release train on them as missing"
            )
            out.append(f"  {e.column}: {e.describe()}: {effect}; {e.remedy}")
        if self.schema_problem is not None:
            out.append(f"  schema: {self.schema_problem}: synthesize and release refuse this file")
        out.append("QC:")
        out += [
            f"  dropped {s['removed']} {s['unit']}: {s['reason']} ({s['remaining']} left)"
            for s in self.qc
        ]
        return out


def _per_chromosome(cohort: Cohort) -> dict[str, int]:
    counts = cohort.variants["chr"].value_counts()
    return {c: int(counts[c]) for c in cohort.chromosomes}


def summarize(
    cohort: Cohort,
    config: QCConfig | None = None,
    fmt: str | None = None,
    declared: DeclaredSchema | None = None,
) -> CohortSummary:
    """Counts, missingness, MAF distribution and phenotype types of ``cohort`` and of its QC'd
    version (QC of Parker et al. 2016, :func:`dpgenome.cohort.qc`), and how many observed
    phenotype values the synthesizer's encoding would turn into missing; ``declared``: a
    ``--pheno-schema`` file's types, applied first."""
    if declared is not None:
        cohort = declared.apply(cohort)
    typed_by = type_sources(cohort.phenotypes.columns, cfw_schema(), declared)
    kept, report = qc(cohort, config or QCConfig())
    try:  # the check synthesize and release make before any work
        check_schema_domains(cohort, PhenotypeConfig(declared=declared))
        schema_problem = None
    except InputError as err:
        schema_problem = str(err)
    # the schema the synthesizer encodes with (synthesize and release: the same config)
    encoded_missing = values_encoded_as_missing(kept, PhenotypeConfig(declared=declared))
    dos = cohort.dosages
    missing = np.isnan(dos)
    with np.errstate(invalid="ignore"):
        non_integer = np.count_nonzero((dos != np.rint(dos)) & ~missing)
    observed = dos.size - int(missing.sum())
    per_sample = missing.mean(axis=1) if dos.size else np.zeros(0)
    per_variant = missing.mean(axis=0) if dos.size else np.zeros(0)
    maf = kept.maf()
    maf = maf[~np.isnan(maf)]
    counts, _ = np.histogram(np.clip(maf, 0.0, 0.5), bins=np.asarray(MAF_EDGES))
    phenos = []
    for name in kept.phenotypes.columns:
        col = kept.phenotypes[name]
        ptype = kept.pheno_types[name]
        phenos.append(
            PhenoSummary(
                name=str(name),
                type=str(ptype),
                n_observed=int(col.notna().sum()),
                n_missing=int(col.isna().sum()),
                n_levels=int(col.nunique()) if ptype == PhenoType.CATEGORICAL else None,
                typed_by=typed_by[str(name)],
            )
        )
    return CohortSummary(
        source=cohort.source,
        format=fmt,
        n_samples_read=cohort.n_samples,
        n_variants_read=cohort.n_variants,
        n_samples=kept.n_samples,
        n_variants=kept.n_variants,
        flagged={f: int(cohort.samples[f].sum()) for f in ("discard", "mixup")},
        snps_per_chromosome_read=_per_chromosome(cohort),
        snps_per_chromosome=_per_chromosome(kept),
        missing_rate=float(missing.mean()) if dos.size else 0.0,
        sample_missing_rate_max=float(per_sample.max(initial=0.0)),
        variant_missing_rate_max=float(per_variant.max(initial=0.0)),
        variants_missing_over_5pct=int((per_variant > 0.05).sum()),
        non_integer_dosage_rate=non_integer / observed if observed else 0.0,
        maf_edges=MAF_EDGES,
        maf_counts=[int(k) for k in counts],
        maf_median=float(np.median(maf)) if len(maf) else None,
        phenotypes=phenos,
        qc=report.to_dict(),
        encoded_missing=encoded_missing,
        allele_order_from_data=data_ordered_alleles(cohort),
        schema_problem=schema_problem,
    )
