"""Configuration of the audit suite (frozen, validated)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from dpgenome.errors import ConfigError
from dpgenome.relatedness import DUPLICATE, FIRST_DEGREE


@dataclass(frozen=True)
class AuditConfig:
    """Every knob of :func:`dpgenome.audit.run_audits`; all randomness derives from ``seed``.

    ``pheno``/``covariates`` name the phenotype columns used beside genotypes (distances,
    duplicates, attribute inference); with ``pheno=None`` every phenotype column shared by the
    real and synthetic cohorts is used and attribute inference targets each non-covariate one
    (at most ``max_attribute_targets``).
    """

    seed: int = 0
    n_bootstrap: int = 200
    pheno: str | None = None
    covariates: tuple[str, ...] = ()
    #: SNPs (seeded random subset of the shared panel) used by distances, PCA and attribute
    #: inference; ``None`` = all.
    max_snps: int | None = 10_000
    #: SNPs used by KING-robust kinship; ``None`` = all.
    max_snps_kinship: int | None = 20_000
    pca_components: int = 5
    #: resamples of the holdout that the density-ratio and allele-frequency attacks' scores
    #: are recomputed against, to widen their AUC's CI by the reference's variance (0: not)
    reference_draws: int = 20
    window_snps: int = 64
    #: mean absolute dosage difference at or below which two genotypes are near duplicates
    #: (0.01 = one allele in 200 differs).
    near_duplicate_distance: float = 0.01
    kinship_duplicate: float = DUPLICATE
    kinship_first_degree: float = FIRST_DEGREE
    histogram_bins: int = 30
    #: continuous secrets count as inferred when |guess - truth| <= tolerance x SD (synthetic).
    attribute_tolerance: float = 0.1
    max_attribute_targets: int = 10
    #: shadow-model attack: number of targets (0 = NOT RUN), games per target and side, size
    #: of each shadow training set.
    shadow_targets: int = 0
    shadow_games: int = 2
    shadow_size: int = 200
    #: one-run canary audit: number of canaries (0 = NOT RUN) and guesses on each side
    #: (``None``: a fifth of the canaries as IN and a fifth as OUT).
    canaries: int = 0
    canary_guesses: int | None = None
    confidence: float = 0.95
    claimed_epsilon: float | None = None
    delta: float = 1e-5

    def validate(self) -> AuditConfig:
        def need(ok: bool, what: str) -> None:
            if not ok:
                raise ConfigError(f"audit config: {what}")

        need(self.n_bootstrap >= 20, f"n_bootstrap must be >= 20, got {self.n_bootstrap}")
        need(self.max_snps is None or self.max_snps >= 10, f"max_snps too small: {self.max_snps}")
        need(
            self.max_snps_kinship is None or self.max_snps_kinship >= 100,
            f"max_snps_kinship too small: {self.max_snps_kinship}",
        )
        need(self.pca_components >= 1, f"pca_components must be >= 1, got {self.pca_components}")
        need(
            self.reference_draws == 0 or self.reference_draws >= 5,
            f"reference_draws must be 0 (not widened) or >= 5, got {self.reference_draws}",
        )
        need(self.window_snps >= 8, f"window_snps must be >= 8, got {self.window_snps}")
        need(0 <= self.near_duplicate_distance < 1, "near_duplicate_distance must be in [0, 1)")
        need(
            0 < self.kinship_first_degree < self.kinship_duplicate <= 0.5,
            "kinship thresholds must satisfy 0 < first_degree < duplicate <= 0.5",
        )
        need(self.shadow_targets >= 0, f"shadow targets must be >= 0, got {self.shadow_targets}")
        need(
            self.shadow_targets == 0 or self.shadow_targets >= 4,
            f"the shadow attack needs >= 4 targets (two folds), got {self.shadow_targets}",
        )
        need(self.shadow_games >= 1, f"shadow_games must be >= 1, got {self.shadow_games}")
        need(self.shadow_size >= 10, f"shadow_size must be >= 10, got {self.shadow_size}")
        need(self.canaries >= 0, f"canaries must be >= 0, got {self.canaries}")
        need(
            self.canaries == 0 or self.canaries >= 10,
            f"the canary audit needs >= 10 canaries, got {self.canaries}",
        )
        if self.canary_guesses is not None:
            need(
                1 <= self.canary_guesses and 2 * self.canary_guesses <= self.canaries,
                f"canary_guesses must be in [1, canaries/2], got {self.canary_guesses}",
            )
        need(0.5 < self.confidence < 1, f"confidence must be in (0.5, 1), got {self.confidence}")
        need(0 <= self.delta < 1, f"delta must be in [0, 1), got {self.delta}")
        need(
            self.claimed_epsilon is None or self.claimed_epsilon >= 0,
            f"claimed epsilon must be >= 0, got {self.claimed_epsilon}",
        )
        need(self.attribute_tolerance > 0, "attribute_tolerance must be > 0")
        return self

    def record(self) -> dict[str, Any]:
        out = asdict(self)
        out["covariates"] = list(self.covariates)
        return out
