"""Ancestry across chromosomes: the public panel's principal axes, each individual's place on
them, and a DP release of where the members sit.

The window model (:mod:`dpgenome.model`) is a chain along each chromosome. On its own it draws
the chromosomes of a synthetic individual independently of each other, so a cohort of two
populations comes out as admixed individuals: each chromosome from either population, the
genome-wide principal components collapsed to the middle. Reading a few ancestry scores in
every window gives the chromosomes of one individual a common ancestry:

1. **Axes (public)**: the top ``k`` principal axes of the public panel's dosages, each SNP
   standardised by the panel's allele frequency (:func:`fit_axes`). SNPs monomorphic in the
   panel weigh nothing.
2. **Scores**: an individual's projection on the axes, standardised to unit variance over
   the panel. The model's windows on chromosome ``c`` read the *leave-one-chromosome-out*
   score (the projection of the other chromosomes only, standardised likewise): a window
   never reads its own SNPs back through the score, and the chain along ``c`` already
   carries ``c``'s own LD.
3. **Domain (public)**: the panel's scores cut into ``clusters`` groups by k-means (seeded:
   :func:`ancestry_domain`), each axis weighed by its sd relative to the first (on
   standardised scores the last axes' noise split a two-colony panel across clusters:
   colony purity 0.68-0.88 with 8 axes, 0.95-0.97 weighed).
4. **Release (one Gaussian histogram, :mod:`dpgenome.histogram`)**: each member counted at
   the cluster centre nearest its (whole-genome) score, a deterministic map of one row
   (sensitivity 1); noisy counts below two noise sds dropped, the rest normalised; if none
   passes, the panel's own cluster sizes.
5. **Sampling** (post-processing): each synthetic individual draws a cluster by the released
   shares and then a panel individual of that cluster uniformly, and takes that panel
   individual's leave-one-chromosome-out scores (public): each chromosome's windows read
   the scores the pretraining gave them for that individual.

6. **The phenotype (one Gaussian vector of ``k`` numbers)**: the cross-moments of the
   members' standardised phenotype with their whole-genome scores, each score vector clipped
   to a norm (:func:`release_phenotype_moments`), which the pairing of phenotype rows to
   genotype rows then matches on the synthetic individuals' own scores
   (:mod:`dpgenome.synthesize`): a trait whose mean follows ancestry keeps that
   stratification.

The model's ancestry weights are learnt on the panel (public pretraining), so what the
release takes from the members is their mix of the panel's ancestry groups and how their
phenotype lines up with it. Only with a public
panel: without one the axes would be the members' own (a DP PCA, not built).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import chi2

from dpgenome.association import clip_rows
from dpgenome.cohort import chromosome_rank
from dpgenome.errors import ConfigError
from dpgenome.histogram import noisy_shares
from dpgenome.noise import Noise
from dpgenome.relatedness import unrelated

#: k-means iterations of the public clustering (it converges in far fewer on panel scores)
KMEANS_ITERATIONS = 50
#: the phenotype moments the pairing matches are the released ones moved this many noise sds
#: towards 0 (soft threshold): a matched moment overstates the members' by more than one noise
#: sd only when the noise exceeds three (a 0.13% chance per axis). An overstated moment makes
#: the synthetic trait more stratified than the members', which puts GWAS hits where the
#: members have none: James-Stein shrinkage kept too much at epsilon 1 (bench/ancestry.py, a
#: stratified trait, members' lambda 1.94: synthetic lambda 3.52 and 2.56, 51 and 9 spurious
#: loci)
MOMENT_THRESHOLD_SDS = 2.0


def chromosome_codes(variants: pd.DataFrame) -> np.ndarray:
    """``(M,)`` dense chromosome index of every variant: 0 for the first chromosome in map
    order, 1 for the next... (the order of :attr:`dpgenome.model.WindowLayout.chrom`)."""
    ranks = chromosome_rank(variants["chr"].astype(str).to_numpy())
    return np.unique(ranks, return_inverse=True)[1].astype(np.int64).reshape(-1)


@dataclass(frozen=True)
class AncestryAxes:
    """The panel's principal axes and the scales that standardise scores (public)."""

    #: ``(M,)`` the panel's alternative-allele frequency and ``sqrt(2 f (1 - f))`` (0: SNP
    #: monomorphic in the panel, which then weighs nothing)
    frequency: np.ndarray
    scale: np.ndarray
    #: ``(M, k)`` unit-norm SNP loadings
    loadings: np.ndarray
    #: ``(M,)`` dense chromosome index (:func:`chromosome_codes`)
    chromosome: np.ndarray
    #: ``(k,)`` panel sd of the whole-genome scores; ``(C, k)`` of the leave-one-out ones
    full_sd: np.ndarray
    loco_sd: np.ndarray
    #: ``(k,)`` share of the panel's standardised variance on each axis
    explained: np.ndarray

    @property
    def k(self) -> int:
        return int(self.loadings.shape[1])

    @property
    def n_chromosomes(self) -> int:
        return int(self.loco_sd.shape[0])

    def contributions(self, dosages: np.ndarray) -> np.ndarray:
        """``(n, C, k)``: each chromosome's part of each individual's projection (missing
        dosages at the panel's mean), one chromosome at a time."""
        x = np.asarray(dosages)
        out = np.zeros((x.shape[0], self.n_chromosomes, self.k))
        for c in range(self.n_chromosomes):
            cols = np.flatnonzero(self.chromosome == c)
            z = _standardise(x[:, cols], self.frequency[cols], self.scale[cols])
            out[:, c] = z @ self.loadings[cols]
        return out

    def scores(self, dosages: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The whole-genome scores ``(n, k)`` and the leave-one-chromosome-out ones ``(n, C,
        k)`` of ``dosages``, each standardised by the panel's sds."""
        parts = self.contributions(dosages)
        full = parts.sum(axis=1)
        loco = (full[:, None, :] - parts) / self.loco_sd[None]
        return full / self.full_sd, loco


def _standardise(x: np.ndarray, frequency: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """Dosages centred at ``2 f`` and divided by ``scale`` (0 where the scale is 0 or the
    dosage missing), float32."""
    centred = np.nan_to_num(np.asarray(x, dtype=np.float32) - 2.0 * frequency.astype(np.float32))
    inv = np.divide(1.0, scale, out=np.zeros_like(scale), where=scale > 0).astype(np.float32)
    return centred * inv


def _panel_scale(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The panel's alternative-allele frequency per SNP (0.5 where nobody is called) and the
    standardising scale ``sqrt(2 f (1 - f))``."""
    with np.errstate(invalid="ignore"):
        frequency = np.nan_to_num(np.nanmean(x, axis=0, dtype=np.float64) / 2.0, nan=0.5)
    return frequency, np.sqrt(2.0 * frequency * (1.0 - frequency))


def panel_grams(panel: np.ndarray, variants: pd.DataFrame, groups: np.ndarray) -> np.ndarray:
    """``(G, n_p, n_p)``: the Gram matrices of the **public** panel's standardised dosages
    (:func:`_standardise` at the panel's own frequencies) over the chromosomes of each group,
    chromosome ``c`` in group ``groups[c]`` (dense chromosome indices, :func:`chromosome_codes`),
    read one chromosome at a time (no ``n_p x M`` float copy held). One group is the whole
    genome's (:func:`fit_axes`), two the halves :func:`test_structure` compares."""
    x = np.asarray(panel)
    frequency, scale = _panel_scale(x)
    chromosome = chromosome_codes(variants)
    groups = np.asarray(groups, dtype=np.int64)
    out = np.zeros((int(groups.max()) + 1, x.shape[0], x.shape[0]))
    for c in range(int(chromosome.max()) + 1):
        cols = np.flatnonzero(chromosome == c)
        z = _standardise(x[:, cols], frequency[cols], scale[cols])
        out[groups[c]] += (z @ z.T).astype(np.float64)
    return out


def _rank(values: np.ndarray) -> int:
    """How many of a Gram matrix's eigenvalues are axes, not float32 rounding (below 1e-5 of
    the largest)."""
    return int((values > 1e-5 * max(float(values.max(initial=0.0)), 1e-300)).sum())


def fit_axes(
    panel: np.ndarray, variants: pd.DataFrame, k: int, gram: np.ndarray | None = None
) -> AncestryAxes:
    """The top ``k`` principal axes of the **public** panel's standardised dosages (``(n_p,
    M)``), by the eigenvectors of its ``n_p x n_p`` Gram matrix (``gram``, computed here when
    not given: :func:`panel_grams` in one group). Standardised by the panel's
    own frequencies, each SNP's column is already centred (a missing dosage enters as the
    mean), so the Gram matrix is the covariance's and :meth:`AncestryAxes.contributions`
    gives the panel its own principal-component scores."""
    x = np.asarray(panel)
    n_p = x.shape[0]
    if not 1 <= k < n_p:
        raise ConfigError(
            f"ancestry_pcs must be in [1, {n_p}) for a public panel of {n_p} individuals, got {k}"
        )
    frequency, scale = _panel_scale(x)
    chromosome = chromosome_codes(variants)
    blocks = [np.flatnonzero(chromosome == c) for c in range(int(chromosome.max()) + 1)]

    def standardised(cols: np.ndarray) -> np.ndarray:
        return _standardise(x[:, cols], frequency[cols], scale[cols])

    if gram is None:
        gram = panel_grams(x, variants, np.zeros(len(blocks), dtype=np.int64))[0]
    values, vectors = np.linalg.eigh(gram)
    rank = _rank(values)
    if k > rank:  # the axes beyond would be numerical noise, each a moment spent on nothing
        raise ConfigError(
            f"ancestry_pcs = {k}, but the public panel's genotypes span only {rank} principal "
            "axes (too few SNPs or individuals varying): ask for at most that many"
        )
    top = np.argsort(values)[::-1][:k]
    values, vectors = np.maximum(values[top], 1e-12), vectors[:, top]
    loadings = np.zeros((x.shape[1], k))
    parts = np.zeros((n_p, len(blocks), k))  # each chromosome's part of the panel's scores
    for c, cols in enumerate(blocks):
        z = standardised(cols)
        loadings[cols] = (z.T @ vectors.astype(np.float32)).astype(np.float64) / np.sqrt(values)
        parts[:, c] = z @ loadings[cols]
    full = parts.sum(axis=1)
    loco = full[:, None, :] - parts
    return AncestryAxes(
        frequency,
        scale,
        loadings,
        chromosome,
        np.maximum(full.std(axis=0), 1e-12),
        np.maximum(loco.std(axis=0), 1e-12),
        values / max(float(np.trace(gram)), 1e-12),
    )


#: ``ancestry_pcs = "auto"`` (:func:`detect_structure`): the axes compared per genome half,
#: the sequential test's level, the least canonical correlation that counts, and the K chosen
#: when the halves share structure (K = 4 is what ``bench/ancestry.py`` measured on two
#: sub-colonies, stops 53-54)
STRUCTURE_TEST_AXES = 10
STRUCTURE_ALPHA = 1e-3
STRUCTURE_MIN_CORRELATION = 0.3
AUTO_PCS = 4


@dataclass(frozen=True)
class StructureTest:
    """Whether the **public** panel's two genome halves share structure
    (:func:`detect_structure`): ``correlations`` ``(k,)``, the canonical correlations of the
    panel's top ``k`` principal components on the even-numbered chromosomes with those on the
    odd-numbered ones (the 1st, 3rd... chromosomes in map order against the 2nd, 4th...);
    ``p_values[j]`` Bartlett's test that the ``j``-th and every later one are 0; ``axes``
    the shared axes found, ``pcs`` the ``ancestry_pcs`` chosen; ``panel`` its individuals,
    ``unrelated`` those tested."""

    correlations: np.ndarray
    p_values: np.ndarray
    axes: int
    pcs: int
    panel: int
    #: the panel individuals tested: no two related at a first degree or closer
    unrelated: int

    def summary(self) -> dict[str, object]:
        """What the dossier and results show: public-panel figures only."""
        return {
            "test": "canonical correlations of the public panel's principal components "
            "between its two genome halves (Bartlett's sequential chi-square)",
            "panel": self.panel,
            "unrelated": self.unrelated,
            "correlations": [round(float(v), 4) for v in self.correlations],
            "p_values": [float(f"{v:.3g}") for v in self.p_values],
            "alpha": STRUCTURE_ALPHA,
            "min_correlation": STRUCTURE_MIN_CORRELATION,
            "shared_axes": self.axes,
            "ancestry_pcs": self.pcs,
        }


def detect_structure(
    panel: np.ndarray, variants: pd.DataFrame
) -> tuple[StructureTest, np.ndarray | None]:
    """Population structure across chromosomes in the **public** panel, for ``ancestry_pcs =
    "auto"`` (no member's data: no privacy cost). Within a chromosome LD makes large
    principal components of its own; only what the whole genome shares lines up between
    chromosomes: population structure, and close relatives (who share half their genomes, on
    every chromosome), so the test runs among panel individuals without first-degree
    relatives (:func:`dpgenome.relatedness.unrelated`: no pair at KING kinship of a first
    degree or closer). Their top ``k`` components (:data:`STRUCTURE_TEST_AXES`, at most one
    per 10 of them and the rank of either half) are taken on each half of the chromosomes,
    and their canonical correlations tested by Bartlett's sequential chi-square (Bartlett
    1941; Mardia, Kent & Bibby 1979, sec. 10.2): ``-(n - 1 - (2k + 1) / 2) sum_{i >= j} ln(1
    - rho_i^2)`` on ``(k - j)^2`` degrees of freedom. The shared axes are the leading
    correlations that are significant at :data:`STRUCTURE_ALPHA` and at least
    :data:`STRUCTURE_MIN_CORRELATION` (a large panel makes a trace of structure significant;
    below 0.3 one half's place predicts under 9% of the other's). ``pcs``: 0 without shared
    axes, else ``max(AUTO_PCS, axes)`` (within the panel's rank). On the simulated CFW-like
    panels of 1,000 mice: largest correlation 0.17 and 0.19 without sub-colonies, 0.97 with
    two (``docs/tuning-history.md``, stop 55). Also returns the whole panel's Gram matrix
    (the halves' sum, for :func:`fit_axes`), or None when the panel has under two
    chromosomes (nothing tested)."""
    x = np.asarray(panel)
    n_p = x.shape[0]
    n_chrom = int(chromosome_codes(variants).max()) + 1
    empty = np.zeros(0)
    if n_chrom < 2:
        return StructureTest(empty, empty, 0, 0, n_p, n_p), None
    halves = panel_grams(x, variants, np.arange(n_chrom) % 2)
    keep = unrelated(x)
    n = len(keep)
    centre = np.eye(n) - 1.0 / n  # the unrelated individuals' own centring
    bases, ranks = [], []
    for g in halves:
        # centred, so every axis of a non-zero eigenvalue is orthogonal to the constant: the
        # top k (k within the rank) are an orthonormal basis of centred component scores
        values, vectors = np.linalg.eigh(centre @ g[np.ix_(keep, keep)] @ centre)
        ranks.append(_rank(values))
        bases.append(vectors[:, np.argsort(values)[::-1]])
    k = min(STRUCTURE_TEST_AXES, (n - 1) // 10, *ranks)
    gram = halves.sum(axis=0)
    if k < 1:
        return StructureTest(empty, empty, 0, 0, n_p, n), gram
    a, b = (v[:, :k] for v in bases)
    rho = np.clip(np.linalg.svd(a.T @ b, compute_uv=False), 0.0, 1.0 - 1e-15)
    tail = np.cumsum(np.log1p(-(rho**2))[::-1])[::-1]  # sum_{i >= j} ln(1 - rho_i^2)
    stat = -(n - 1 - (2 * k + 1) / 2) * tail
    p_values = chi2.sf(stat, (k - np.arange(k)) ** 2)
    shared = (p_values < STRUCTURE_ALPHA) & (rho >= STRUCTURE_MIN_CORRELATION)
    axes = int(np.argmin(shared)) if not shared.all() else k
    pcs = 0 if axes == 0 else min(max(AUTO_PCS, axes), _rank(np.linalg.eigvalsh(gram)))
    return StructureTest(rho, p_values, axes, pcs, n_p, n), gram


@dataclass(frozen=True)
class AncestryDomain:
    """The panel's ancestry clusters (public): centres ``(C, k)``, each panel individual's
    whole-genome score ``(n_p, k)`` and cluster ``(n_p,)``; distances weigh axis ``i`` by
    ``weights[i]`` (the axes' sds relative to the first: the clusters follow the axes with
    the most variance, not the noise of the last ones). ``panel_loco`` ``(n_p, chromosomes,
    k)``: each panel individual's leave-one-chromosome-out scores, what the model was
    pretrained on and what a synthetic individual drawing that panel individual reads."""

    centres: np.ndarray
    panel_scores: np.ndarray
    panel_cluster: np.ndarray
    weights: np.ndarray
    panel_loco: np.ndarray | None = None

    @property
    def size(self) -> int:
        return int(self.centres.shape[0])

    @property
    def public_counts(self) -> np.ndarray:
        return np.bincount(self.panel_cluster, minlength=self.size)

    def nearest(self, scores: np.ndarray) -> np.ndarray:
        """The nearest centre of each row of ``scores`` (ties to the lower index): a
        deterministic map of one individual's score."""
        diff = (np.asarray(scores)[:, None, :] - self.centres[None]) * self.weights
        d = (diff**2).sum(axis=2)
        return np.asarray(d.argmin(axis=1), dtype=np.int64)


def ancestry_domain(
    panel_scores: np.ndarray,
    clusters: int,
    seed: int,
    weights: np.ndarray | None = None,
    panel_loco: np.ndarray | None = None,
) -> AncestryDomain:
    """k-means (k-means++ start, ``seed``) of the **public** panel's scores, axis ``i``
    weighed by ``weights[i]`` (default 1), into at most ``clusters`` non-empty clusters;
    ``panel_loco``: the panel's leave-one-chromosome-out scores, kept for :meth:`draw`."""
    s = np.asarray(panel_scores, dtype=np.float64)
    w = np.ones(s.shape[1]) if weights is None else np.asarray(weights, dtype=np.float64)
    rng = np.random.default_rng(seed)
    c = max(1, min(int(clusters), len(s)))
    centres = [s[rng.integers(len(s))]]
    for _ in range(1, c):
        d = np.min([(((s - m) * w) ** 2).sum(axis=1) for m in centres], axis=0)
        if not d.sum() > 0:
            break
        centres.append(s[rng.choice(len(s), p=d / d.sum())])
    cen = np.array(centres)
    label = np.zeros(len(s), dtype=np.int64)
    for _ in range(KMEANS_ITERATIONS):
        label = AncestryDomain(cen, s, label, w).nearest(s)
        new = np.array(
            [s[label == j].mean(axis=0) if np.any(label == j) else cen[j] for j in range(len(cen))]
        )
        if np.allclose(new, cen):
            break
        cen = new
    used = np.unique(label)
    cen = cen[used]
    return AncestryDomain(cen, s, np.searchsorted(used, label), w, panel_loco)


@dataclass(frozen=True)
class AncestryRelease:
    """The released cluster shares (a DP output, or exact without formal privacy)."""

    domain: AncestryDomain
    shares: np.ndarray
    noise_multiplier: float | None
    #: clusters kept (noisy count at least two noise sds); 0: the panel's own shares
    kept: int

    def draw(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` individuals' leave-one-chromosome-out scores ``(n, chromosomes, k)``: a
        cluster by the released shares, then a panel individual of it uniformly, whose
        (public) scores are taken: those the model was pretrained on."""
        if self.domain.panel_loco is None:
            raise ValueError("the domain holds no leave-one-chromosome-out panel scores")
        cluster = rng.choice(self.domain.size, size=n, p=self.shares)
        members = [np.flatnonzero(self.domain.panel_cluster == j) for j in range(self.domain.size)]
        pick = np.array([members[j][rng.integers(len(members[j]))] for j in cluster], dtype=int)
        return np.asarray(self.domain.panel_loco[pick.reshape(-1)])

    def summary(self, axes: AncestryAxes) -> dict[str, object]:
        """Aggregates only: the axes, the clusters, how many were kept."""
        return {
            "axes": axes.k,
            "panel_explained_variance": [round(float(v), 5) for v in axes.explained],
            "clusters": self.domain.size,
            "clusters_kept": self.kept,
            "noise_multiplier": self.noise_multiplier,
        }


def release_ancestry(
    member_scores: np.ndarray,
    domain: AncestryDomain,
    *,
    noise_multiplier: float | None,
    noise: Noise,
) -> AncestryRelease:
    """The members' shares of the panel's ancestry clusters: one Gaussian histogram of L2
    sensitivity 1 (``noise_multiplier`` from the ledger), exact when it is None."""
    if not np.isfinite(member_scores).all():
        raise ValueError("the ancestry scores must be finite")
    shares, kept = noisy_shares(
        domain.nearest(member_scores),
        domain.public_counts,
        noise_multiplier=noise_multiplier,
        noise=noise,
    )
    sd = None if noise_multiplier is None else float(noise_multiplier)
    return AncestryRelease(domain, shares, sd, kept)


def phenotype_moments_sensitivity(y_clip: float, score_clip: float) -> float:
    """L2 sensitivity (add or remove one member) of :func:`release_phenotype_moments`' sums:
    one member adds ``y u`` with ``|y| <= y_clip`` and ``||u|| <= score_clip``."""
    return float(y_clip) * float(score_clip)


@dataclass(frozen=True)
class PhenotypeMoments:
    """The released per-member cross-moments of the standardised phenotype with the ancestry
    scores (a DP output, or exact without formal privacy): ``released``, the sd its noise
    gives each, and ``kept``, the released values moved :data:`MOMENT_THRESHOLD_SDS` noise
    sds towards 0 (an axis whose moment is within that of 0 is dropped), which the pairing
    matches."""

    released: np.ndarray
    noise_sd: np.ndarray
    kept: np.ndarray
    #: the score vectors' clip (None: unclipped, no formal privacy) and the centre they were
    #: clipped about
    clip: float | None
    centre: np.ndarray

    def columns(self, scores: np.ndarray) -> np.ndarray:
        """The matched columns of (synthetic) individuals' whole-genome ``scores``, centred
        and clipped as the members' were."""
        s = np.asarray(scores, dtype=np.float64) - self.centre
        return s if self.clip is None else clip_rows(s, self.clip)

    def summary(self) -> dict[str, list[float]]:
        return {
            "released": [round(float(v), 5) for v in self.released],
            "noise_sd": [round(float(v), 5) for v in self.noise_sd],
            "matched": [round(float(v), 5) for v in self.kept],
        }


def release_phenotype_moments(
    y_std: np.ndarray,
    scores: np.ndarray,
    *,
    y_clip: float | None,
    score_clip: float | None,
    noise_multiplier: float | None,
    noise: Noise,
    centre: np.ndarray | None = None,
    attenuation: float = 1.0,
) -> PhenotypeMoments:
    """``mean(y u)`` over the members: ``y_std`` their standardised phenotype, clipped here
    to ``[-y_clip, y_clip]`` (the bound in :func:`phenotype_moments_sensitivity`; the
    release's plan fixed both clips), ``u`` their whole-genome ancestry scores ``(n, k)``
    less ``centre`` (public or a DP output: the synthetic individuals' mean score; default
    the panel's, 0), each row clipped to norm ``score_clip``. One Gaussian mechanism
    (``noise_multiplier`` from the ledger, times the sensitivity); exact, unclipped, when it
    is None. The phenotype is centred by the released phenotype centre and the scores near
    the members' mean, so the moment is the phenotype's covariance with the scores up to the
    product of the two centres' errors. ``attenuation``: the clip's average shrink of the
    phenotype's cross-moments (a public model, the region release's ``kappa``), divided out
    of the released values and their noise sd."""
    y = np.nan_to_num(np.asarray(y_std, dtype=np.float64))
    n, k = np.asarray(scores).shape
    if not np.isfinite(scores).all():  # a NaN would pass the clip and void the bound
        raise ValueError("the ancestry scores must be finite")
    c = np.zeros(k) if centre is None else np.asarray(centre, dtype=np.float64)
    s = np.asarray(scores, dtype=np.float64) - c
    if noise_multiplier is None:
        exact = y @ s / n
        return PhenotypeMoments(exact, np.zeros(k), exact, None, c)
    if score_clip is None or y_clip is None:
        raise ValueError("a noisy phenotype-moment release needs both clips")
    y = np.clip(y, -y_clip, y_clip)
    u = clip_rows(s, score_clip)
    sens = phenotype_moments_sensitivity(y_clip, score_clip)
    sd = float(noise_multiplier) * sens
    scale = n * float(attenuation)
    released = np.asarray(noise.gaussian(y @ u, sd=sd, sensitivity=sens)) / scale
    noise_sd = np.full(k, sd / scale)
    kept = np.sign(released) * np.maximum(np.abs(released) - MOMENT_THRESHOLD_SDS * noise_sd, 0.0)
    return PhenotypeMoments(released, noise_sd, kept, score_clip, c)
