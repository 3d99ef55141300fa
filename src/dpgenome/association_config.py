"""The association path's configuration (:class:`AssociationConfig`): public, fixed before
any private data is read (:mod:`dpgenome.association` describes the path)."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Literal

from dpgenome.errors import ConfigError


@dataclass(frozen=True)
class AssociationConfig:
    """Hyperparameters of the association path (tuned on simulated cohorts only)."""

    max_regions: int = 3
    #: the noisy max's candidates are windows of ``window`` contiguous SNPs of the public map
    #: (a window's score is its best SNP's), apart from the genotype model's windows
    #: (``SynthConfig.window``; the two were one layout of 16 SNPs until stop 52)
    window: int = 16
    #: a region is the lead window +/- ``flank_bp`` (public map); selected regions exclude
    #: candidates within ``exclusion_factor * flank_bp`` of their lead (one locus, one region)
    #: 4 Mb: CFW LD blocks span several Mb (2.5 Mb recovered fewer hits at eps 10 and inf)
    flank_bp: int = 4_000_000
    exclusion_factor: float = 2.0
    #: components per region under DP: each adds noise of the same scale (the clipping bound
    #: grows with sqrt(q)), so few; six recovered the most SNPs at eps 3-10 on simulated
    #: cohorts (bench/synth.py)
    n_components: int = 6
    #: without formal privacy nothing is noised, so more regions (overlapping: a long LD
    #: block is covered by several) and more components cost nothing
    n_components_exact: int = 32
    max_regions_exact: int = 8
    exclusion_factor_exact: float = 1.0
    #: the selection scores clip standardised dosages at ``x_clip`` and the phenotype at
    #: ``select_y_clip``: the selection noise scales with their product, while the scores'
    #: null sd (:func:`null_score_sd`) falls less (a common SNP's dosages are +/-1.41, a
    #: Gaussian phenotype rarely exceeds 2). 1.25 x 2 instead of 2 x 2.5: both loci selected
    #: at eps 3 in ~0.7 of noise draws instead of ~0.05 (selection-only simulation on two
    #: simulated 960-member cohorts)
    x_clip: float = 1.25
    select_y_clip: float = 2.0
    #: phenotype clip of the location release (and the bound of every later clip)
    y_clip: float = 2.5
    #: release the members' covariate slopes of the analysis phenotype
    #: (:func:`release_covariate_slopes`, one Gaussian mechanism of weight
    #: ``covariate_weight``, each member's standardised covariate vector clipped to norm
    #: ``covariate_clip``) and give them to the final synthetic rows (post-processing; a 0/1
    #: phenotype's rows are drawn to them, :mod:`dpgenome.draw`): the DP phenotype model
    #: alone flattens them (docs/tuning-history.md, stops 26 and 27)
    covariate_slopes: bool = True
    covariate_clip: float = 2.5
    covariate_weight: float = 1.0
    #: adjust the members' phenotype for the released slopes too (post-processing), shrunk
    #: by their noise (:func:`shrink_slopes`), before the selection scores and the region
    #: release: the real GWAS adjusts with the members' own slopes, and a slope left in the
    #: residual moves a lead SNP by its chance correlation with the covariate (1-5% of the
    #: bench's leads with the DP phenotype model's slope)
    slope_residual: bool = True
    #: clips of the association release: the phenotype at ``effect_y_clip`` and each
    #: individual's component vector at ``z_clip_per_component * sqrt(n_components)`` (about
    #: half the members' vectors are clipped). The noise scales with their product; the
    #: attenuation that clipping causes is undone from public models
    #: (:func:`component_attenuation`, :func:`phenotype_attenuation`), so the tighter clips
    #: cost little signal. 1 x 2 instead of 2 x 2.5 (no debiasing), two simulated 960-member
    #: cohorts, 4 seeds each: SNP recall at 1e-8 0.70 / 0.32 -> 0.83 / 0.62 at eps 10 and
    #: 0.11 / 0.04 -> 0.50 / 0.25 at eps 3. The phenotype clip stays at 2: at 1.5 the normal
    #: model's attenuation (0.87) overstated the members' (0.80, heavier tails) and the
    #: released effects came out ~15% short
    effect_y_clip: float = 2.0
    z_clip_per_component: float = 1.0
    debias: bool = True
    #: public threshold of the lead score in units of its null sd (:func:`null_score_sd`),
    #: plus ``threshold_margin`` noise scales
    threshold: float = 5.0
    threshold_margin: float = 1.0
    #: noise weight of the phenotype mean/sd Gaussian relative to the common scale (two
    #: numbers: cheap, and the scale of every SNP score hangs on them)
    center_weight: float = 1.0
    #: SNPs within ``lead_flank_bp`` of the lead window weigh ``lead_weight`` in the region's
    #: PCA, so that its few components carry more of the lead's signal
    #: (768-960 simulated members at eps 10: SNP recall 0.11 -> 0.3-0.4 over 3-5 noise seeds)
    lead_flank_bp: int = 1_000_000
    lead_weight: float = 3.0
    #: read a causal SNP off each released effect (post-processing) and match its full
    #: cross-moment too: the components alone carry only the part of the lead's association
    #: inside their span (its R^2 of it), so synthetic hits came out weaker than real ones.
    #: Candidates need at least ``implied_lead_min_r2`` of their variance in the span.
    implied_lead: bool = True
    implied_lead_min_r2: float = 0.5
    implied_lead_min_maf: float = 0.05
    implied_lead_min_cos: float = 0.5
    #: candidates of the implied lead lie within this distance of the noisy max's lead window
    #: (``None``: anywhere in the region). SNPs of one LD block have nearly parallel
    #: covariances with the components, so the release noise, not the data, often decided
    #: which one aligned best; one read the effect with R^2 0.5 of its variance in the span
    #: and got it ~1.4 times, at the block's edge 3 Mb from the lead window (demo cohort,
    #: epsilon 8: 45 false 1e-8 hits outside the real block). 1 Mb was the default at stop
    #: 40 (eight paired draws of the 768 demo members: precision 0.42-1.00 to 1.00 in 8 of
    #: 8); stop 41's ten paired draws per cell found it no better and off by default again:
    #: bench cohort 1 at epsilon 10 0.682 / 0.765 against 0.707 / 0.808 without (one run at
    #: recall 0.45), the other three cells 0.02-0.04 lower recall, and on the 786 members of
    #: the per-individual split precision >= 0.8 in 6 of 10 against 5, with one spurious
    #: locus (none without)
    implied_lead_flank_bp: int | None = None
    #: pool the implied lead's cross-moment with the one the threshold test measured (the
    #: region's best score: released already, so free), weighting each by its inverse noise
    #: variance (:func:`pool_lead`). The implied lead's sd is the release noise's
    #: (:func:`implied_lead_sd`) times ``implied_lead_sd_factor``: the noise also picks the
    #: SNP (the argmax over candidates aligned with the noisy effect), which about doubled
    #: the spread of its z (seven noise draws of a simulated locus: sd 1.2 z for 0.6 z).
    #: Off by default: ten syntheses of each of the two bench cohorts found both planted loci
    #: in 16 of 20 runs at epsilon 3 (15 of 20 without; the test value alone, factor 1e6: 17),
    #: within chance, and at epsilon 10 one run of 20 made a spurious locus (none without):
    #: the score, the best-scoring SNP's, was read back with the implied lead's clipping
    #: attenuation, which overstated a lead of rarer allele (chr 11: 0.282 for 0.259). Read
    #: back with :func:`lead_attenuation` instead: epsilon 10, both loci and no spurious locus
    #: in 20 of 20, recall >= 0.5 in 18 of 20 (0.50 and 0.37), as without pooling
    lead_from_test: bool = False
    implied_lead_sd_factor: float = 2.0
    #: the test's score is read back with the largest attenuation among the SNPs in LD of
    #: at least this ``r^2`` with the implied lead (:func:`lead_attenuation`)
    lead_attenuation_min_r2: float = 0.5
    #: without formal privacy, the exact cross-moments of the region's ``exact_snps`` most
    #: associated SNPs (one per LD clump of r^2 > ``exact_snp_max_r2``) are matched instead of
    #: an implied lead (:func:`exact_snp_targets`): the components alone left SNPs just above
    #: the 1e-8 line just below it (real -log10 p 8.1-9.2, synthetic 7.5-8.0). Two simulated
    #: 960-member cohorts, four syntheses each (bench/synth.py): recall/precision 0.86/0.96 ->
    #: 0.95/0.95 and 0.93/0.98 -> 0.95/0.94. 24 SNPs did as well there, but at the demo's 768
    #: members one run of six got an off-region hit at -log10 p 9.2 (4 regions x 56 targets
    #: for 768 rows: the matching overfits). 12 instead of 8, once the matching covered only
    #: the tested rows: 0.944/0.923 -> 0.963/0.946 and 0.963/0.966 -> 0.962/0.971 (8 left
    #: SNPs beside the real hits, real -log10 p 6.8-8.0, over the line through the components
    #: and the panel's LD); at the demo's 768 members the largest off-region -log10 p stayed
    #: 4.3-5.7 in six runs (4.0-6.3 with 8). r^2 0.5 instead of 0.8: recall 0.86 and 0.91
    exact_snps: int = 12
    exact_snp_max_r2: float = 0.8
    #: measure the share of each released effect's energy that is signal
    #: (:func:`shrink_effect`), which gates the region (``min_shrink``) and scales the kept
    #: ones (``shrink_power``): at eps 1 a background region that passed the threshold test
    #: carried noise of ~4.6 z-units per component, enough for spurious hits at 1e-8
    shrink: bool = True
    #: a kept region's effect is scaled by ``factor ** shrink_power`` (the factor, the
    #: vector's signal share, still decides ``min_shrink``): the full factor (1) is the
    #: mean-squared-error choice for the whole vector, but the noise it removes is spread over
    #: ``q`` directions while the lead's hit hangs on one, so it pulled leads just above the
    #: 1e-8 line below it. Once the matching reproduced the released effects over the rows
    #: the GWAS tests (:func:`match_tested_rows`; before, leads came out up to 16% stronger
    #: than released), the unscaled (debiased) effect did best: epsilon 3, the bench's two
    #: 960-member cohorts and noise seeds (bench/synth.py), recall / precision 0.52 / 0.69 ->
    #: 0.63 / 0.64 and 0.47 / 0.63 -> 0.57 / 0.61 with power 0.5 -> 0, both planted loci in
    #: 7 of 8 runs instead of 5, no spurious locus either way
    shrink_power: float = 0.0
    #: drop a region whose shrink factor is below ``min_shrink`` (post-processing: the
    #: released vector's energy is then less than ``1 / (1 - min_shrink)`` times the noise's,
    #: so its direction -- and the implied lead read off it -- is mostly noise). Real loci
    #: shrank by 0.87-0.99 at eps 3-10 on simulated 960-member cohorts; what passed at eps 1
    #: shrank by 0-0.7 and one such region made a displaced clump at 1e-8
    min_shrink: float = 0.8
    #: the pairing of synthetic phenotype rows with genotype rows is drawn ``null_draws``
    #: times (independent matchings, or random permutations when no region was released) and
    #: the draw whose genome-wide genomic inflation of the synthetic GWAS is the *median* of
    #: them is kept (post-processing of synthetic data only). Outside the released regions
    #: the synthetic association is the chance of one pairing, so one draw's lambda_GC
    #: scatters like a permutation null (17-25% of a real cohort's permutations fall outside
    #: 0.95-1.10): a median draw keeps the synthetic noise floor typical, not a tail draw.
    #: A draw whose synthetic GWAS has a SNP at -log10 p >= ``null_hit_log10_p`` outside the
    #: released regions is set aside while another has none: there the synthetic association
    #: is the pairing's chance alone (the region blocks are public-panel genotypes, the rest
    #: the structure model's, independent of them), so such a hit is a false locus (cohort
    #: 1, noise seed 1, epsilon 3: one draw of five made a chr-9 clump at -log10 p 8.3).
    #: Inside a region the same holds for a SNP whose association the released targets do
    #: not explain: a draw's hit is set aside as stray too when the SNP's *explained*
    #: -log10 p (:func:`explained_log10_p`: its regression on the matched columns of the
    #: synthetic genotypes, times the released cross-moments; the same for every draw) is
    #: below ``explained_log10_p`` (the suggestive 2e-6). Outside the regions it is 0, so the
    #: rule above is the special case (cohort 1, noise seed 1008, epsilon 10: one draw of
    #: five made a chr-5 clump at -log10 p 9.8, 3 Mb from the released lead, and was kept as
    #: the median).
    #: 1 = the single draw
    null_draws: int = 5
    #: per region, the pairing can also hold the synthetic cross-moments of the top
    #: ``residual_directions`` principal directions of the region's synthetic SNPs, after
    #: their regression on the matched columns, at zero (:func:`residual_directions`): what
    #: the released targets imply there is zero, so any association in them is one pairing's
    #: chance, which moves many SNPs of a block across the line together (cohort 2 at
    #: epsilon 10: one synthesis's five draws gave recall 0.48-0.82 for the same targets;
    #: 0.59-0.71 with ten directions). Off (0) by default: with ten, ten syntheses per bench
    #: cohort kept recall >= 0.5 at epsilon 10 in 20 of 20 (18 of 20 without) but cohort 2's
    #: mean recall fell from 0.743 to 0.640 (the released targets imply less association than
    #: the members' block carries, and the pairing's chance pushed some of it over the line);
    #: docs/tuning-history.md, stop 25. Post-processing either way
    residual_directions: int = 0
    #: without a public panel the region's components are those of the DP synthetic
    #: genotypes, which carry little LD at ~1,000 members: no SNP of theirs holds half its
    #: variance in six components, and a released effect spread over hundreds of nearly
    #: independent SNPs made no synthetic hit (docs/tuning-history.md, stop 28); at 10,000
    #: members they carry enough LD for the components release to work. Without a panel
    #: (under DP) the noisy max then runs over single SNPs (single-SNP windows: the same
    #: sensitivity and ledger), and a region's release is "lead": that SNP's raw moments
    #: alone (:func:`release_lead`: its cross-moment with the phenotype and its allele
    #: frequency; the synthetic column is redrawn at the released frequency and paired to
    #: the released correlation), "components": the panel path's release on the DP
    #: genotypes' components around the lead SNP's window, or "auto": "components" when the
    #: region's DP basis has a SNP the effect can be read as (:func:`lead_candidates`),
    #: else "lead" (post-processing of DP outputs: the choice costs nothing)
    no_panel_release: Literal["auto", "lead", "components"] = "auto"
    #: the lead release's allele-count coordinate weighs ``lead_count_weight`` times the
    #: phenotype bound: the sensitivity grows by ``sqrt(1 + w^2)`` (1.118 at 0.5) and the
    #: frequency's noise sd is ``1 / (2 w y_bound)`` of the cross-moment's
    lead_count_weight: float = 0.5
    null_hit_log10_p: float = 8.0
    explained_log10_p: float = -math.log10(2e-6)
    #: under DP, per kept components region, release the cross-moments of up to
    #: ``pinned_snps`` more SNPs and match them too (:func:`pinned_snps`; the
    #: ``region-snps`` Gaussian mechanism, weight ``pinned_weight``): the SNPs whose
    #: association the released targets alone imply strongest (:func:`explained_log10_p` on
    #: the reference genotypes, at least ``pinned_min_log10_p``), one per LD clump of
    #: reference r^2 > ``pinned_max_r2`` and none in such LD with the implied lead. The
    #: components spread a block's association over SNPs beside it (the demo's false hits:
    #: docs/tuning-history.md, stops 42 and 57); a pinned SNP carries its own. 0: off.
    #: Stop 58 (4 pins, weight 3; the region release's noise multiplier then rises by a
    #: third, e.g. 1.03 -> 1.37 at epsilon 10), paired on the fixed noise: epsilon 10, ten
    #: runs per bench cohort, recall 0.653 / 0.671 -> 0.737 / 0.769 (20 pairs: +0.091,
    #: Wilcoxon p 0.019), precision 0.758 / 0.943 -> 0.772 / 0.946, recall and precision
    #: >= 0.5 in 20 of 20 (19 without); the demo's members at epsilon 8 0.693 / 0.762 ->
    #: 0.741 / 0.751 (precision >= 0.8 in 5 of 10 against 6, lambda 1.11 in two); epsilon
    #: 3 (cohort 1, pins at 0.49 z of noise) precision -0.095 with two spurious loci, hence
    #: ``pinned_max_noise_z``. Off: at n = 10,000 and epsilon 3 (0.19 z, inside the gate)
    #: one run of six made two spurious loci and another fell to recall 0.783. Two pins at
    #: weight 1 (stops 59-60): ten pairs per cohort at epsilon 10 gave recall +0.05, and
    #: recall and precision >= 0.5 in 17 of 20 against 19; not adopted either
    pinned_snps: int = 0
    pinned_min_log10_p: float = 6.0
    pinned_max_r2: float = 0.8
    pinned_weight: float = 3.0
    #: the release is planned only when a pinned SNP's noise, in z units of the members'
    #: GWAS (:func:`pinned_noise_z`, from the calibrated ledger: public), is at most this;
    #: otherwise the ledger is calibrated without it (the noise then moves pinned SNPs across
    #: the line: epsilon 3, 960 members, 0.49 z: precision fell by 0.095, two spurious loci)
    pinned_max_noise_z: float = 0.3

    def __post_init__(self) -> None:
        if self.max_regions < 0:
            raise ConfigError(f"max_regions must be >= 0, got {self.max_regions}")
        if self.window < 1:
            raise ConfigError(f"window must be >= 1 SNP, got {self.window}")
        if self.flank_bp < 0 or self.n_components < 1 or self.exclusion_factor < 1:
            raise ConfigError("flank_bp must be >= 0, exclusion_factor >= 1, n_components >= 1")
        if not 0.0 <= self.min_shrink < 1.0:
            raise ConfigError(f"min_shrink must be in [0, 1), got {self.min_shrink}")
        if not 0.0 <= self.shrink_power <= 1.0:
            raise ConfigError(f"shrink_power must be in [0, 1], got {self.shrink_power}")
        if self.null_draws < 1:
            raise ConfigError(f"null_draws must be >= 1, got {self.null_draws}")
        if self.residual_directions < 0:
            raise ConfigError(f"residual_directions must be >= 0, got {self.residual_directions}")
        if self.no_panel_release not in ("auto", "lead", "components"):
            raise ConfigError(
                "no_panel_release must be 'auto', 'lead' or 'components', got "
                f"{self.no_panel_release!r}"
            )
        if self.pinned_snps < 0 or not 0.0 < self.pinned_max_r2 <= 1.0:
            raise ConfigError(
                f"pinned_snps must be >= 0 and pinned_max_r2 in (0, 1], got "
                f"{self.pinned_snps} and {self.pinned_max_r2}"
            )
        if self.lead_flank_bp < 0:
            raise ConfigError(f"lead_flank_bp must be >= 0, got {self.lead_flank_bp}")
        for name in (
            "x_clip",
            "select_y_clip",
            "y_clip",
            "effect_y_clip",
            "z_clip_per_component",
            "covariate_clip",
            "covariate_weight",
            "lead_weight",
            "null_hit_log10_p",
            "explained_log10_p",
            "lead_count_weight",
            "pinned_weight",
            "pinned_max_noise_z",
        ):
            if not getattr(self, name) > 0:
                raise ConfigError(f"{name} must be > 0, got {getattr(self, name)}")

    def effective(self, private: bool) -> AssociationConfig:
        """The settings in force: as given under DP, the ``*_exact`` ones without it."""
        if private:
            return self
        return replace(
            self,
            max_regions=self.max_regions_exact,
            exclusion_factor=self.exclusion_factor_exact,
            n_components=self.n_components_exact,
        )

    @property
    def z_clip(self) -> float:
        return self.z_clip_per_component * math.sqrt(self.n_components)
