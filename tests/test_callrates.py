"""Missing genotype calls: the DP release of the members' shares and the synthetic calls."""

from __future__ import annotations

import json
import logging
import math
from dataclasses import replace

import numpy as np
import pytest
from click.testing import CliRunner

from dpgenome import callrates as C
from dpgenome import synthesize as S
from dpgenome.budget import calibrated_ledger, noise_multiplier
from dpgenome.cli import main
from dpgenome.cohort import align_panel, analysis_subset, qc
from dpgenome.errors import ConfigError
from dpgenome.fidelity import missing_calls
from dpgenome.histogram import noisy_shares
from dpgenome.io import read_cohort, write_cohort
from dpgenome.noise import GeneratorNoise
from dpgenome.simulate import SimConfig, simulate
from dpgenome.synthconfig import GENOTYPE_MISSINGNESS, SynthConfig
from dpgenome.synthesize import synthesize

NO_NOISE = GeneratorNoise(np.random.default_rng(0))


def _with_missing(n: int, m: int, shares: np.ndarray, seed: int = 0) -> np.ndarray:
    """n x m dosages whose row i misses exactly round(shares[i] * m) calls."""
    rng = np.random.default_rng(seed)
    dos = rng.integers(0, 3, size=(n, m)).astype(np.float32)
    for i, s in enumerate(shares):
        dos[i, rng.choice(m, size=round(s * m), replace=False)] = np.nan
    return dos


def test_share_bins__each_row_alone_by_its_share_of_missing_calls() -> None:
    m = 10_000
    shares = np.array([0.0, 0.0001, 0.001, 0.0011, 0.02, 0.021, 0.5, 0.51, 1.0])
    bins = C.share_bins(_with_missing(len(shares), m, shares))
    # bin 0: none missing; bin k: (SHARE_EDGES[k-1], SHARE_EDGES[k]]
    assert bins.tolist() == [0, 1, 1, 2, 5, 6, 9, 10, 10]
    # a row's bin does not depend on the other rows: one member moves one count by one
    # (L2 sensitivity 1, as the ledger's histogram plans it)
    assert C.share_bins(_with_missing(len(shares), m, shares)[3:4]).tolist() == [2]


def test_snp_weights__the_public_panels_missing_calls_smoothed_or_every_snp_alike() -> None:
    w, source = C.snp_weights(None, 5)
    assert w.tolist() == [1.0] * 5 and "no public panel" in source
    complete = np.zeros((4, 5), dtype=np.float32)
    w, source = C.snp_weights(complete, 5)
    assert w.tolist() == [1.0] * 5 and "misses no call" in source
    panel = complete.copy()
    panel[:2, 0] = np.nan  # SNP 0 missed by 2 of 4, SNP 1 by 1, the rest by none
    panel[0, 1] = np.nan
    w, source = C.snp_weights(panel, 5)
    raw = (np.array([2, 1, 0, 0, 0]) + 0.5) / 5.0
    np.testing.assert_allclose(w, raw / raw.mean())
    assert w.mean() == pytest.approx(1.0) and "panel" in source
    with pytest.raises(ValueError, match="4 SNPs"):
        C.snp_weights(panel[:, :4], 5)


@pytest.mark.parametrize("target", [0.0, 1e-4, 0.003, 0.05, 0.4, 0.9, 1.0])
def test_scale_for_share__the_mean_probability_over_snps_is_the_target(target) -> None:
    rng = np.random.default_rng(1)
    weights = rng.gamma(0.3, 1 / 0.3, size=5_000)  # heavy-tailed: min(1, c w) clips some
    weights /= weights.mean()
    c = C.scale_for_share(weights, np.array([target]))[0]
    assert np.minimum(1.0, c * weights).mean() == pytest.approx(target, abs=1e-9)
    if target == 0:
        assert c == 0


def _release(shares: np.ndarray, weights: np.ndarray) -> C.CallRateRelease:
    return C.CallRateRelease(shares, weights, "test", None, int((shares > 0).sum()))


def test_apply__synthetic_individuals_miss_the_released_shares_of_calls() -> None:
    m = 4_000
    weights = np.random.default_rng(2).gamma(0.5, 2.0, size=m)
    weights /= weights.mean()
    shares = np.zeros(C.n_bins())
    shares[[0, 4, 7]] = [0.5, 0.3, 0.2]  # none; (0.5%, 1%]; (5%, 10%]
    dos = np.ones((2_000, m), dtype=np.float32)
    out = _release(shares, weights).apply(dos, np.random.default_rng(3))
    assert out is dos  # in place
    per_row = np.isnan(out).mean(axis=1)
    assert (per_row == 0).mean() == pytest.approx(0.5, abs=0.04)
    bins = C.share_bins(out)
    # a share drawn inside a bin lands in it (up to the binomial spread of its calls)
    assert np.isin(bins, [0, 3, 4, 5, 6, 7, 8]).all()
    assert (bins >= 6).mean() == pytest.approx(0.2, abs=0.04)
    expected = _release(shares, weights).expected_share()
    # by hand: a log-uniform share on (a, b] averages (b - a) / ln(b / a)
    assert expected == pytest.approx((0.3 * 0.005 + 0.2 * 0.05) / math.log(2), rel=1e-12)
    assert np.isnan(out).mean() == pytest.approx(expected, rel=0.08)
    # the SNPs' shares follow their weights
    assert np.corrcoef(np.isnan(out).mean(axis=0), weights)[0, 1] > 0.9
    # a release without a missing call leaves the genotypes complete
    none = np.zeros(C.n_bins())
    none[0] = 1.0
    complete = _release(none, weights).apply(np.ones((50, m)), np.random.default_rng(4))
    assert not np.isnan(complete).any()


def test_release_call_rates__exact_without_noise_and_the_public_default_when_drowned() -> None:
    shares = np.r_[np.zeros(60), np.full(40, 0.02)]
    dos = _with_missing(100, 2_000, shares)
    exact = C.release_call_rates(dos, None, noise_multiplier=None, noise=NO_NOISE)
    assert exact.shares[0] == pytest.approx(0.6) and exact.shares[5] == pytest.approx(0.4)
    assert exact.kept == 2 and exact.noise_multiplier is None
    noisy = C.release_call_rates(
        dos, None, noise_multiplier=3.0, noise=GeneratorNoise(np.random.default_rng(5))
    )
    assert noisy.shares.sum() == pytest.approx(1.0) and noisy.kept >= 2
    assert noisy.shares[0] == pytest.approx(0.6, abs=0.1)
    drowned = C.release_call_rates(
        dos, None, noise_multiplier=1e4, noise=GeneratorNoise(np.random.default_rng(6))
    )
    assert drowned.kept == 0 and drowned.shares[0] == 1.0  # no missing call
    assert drowned.summary()["bins_kept"] == 0


def test_missing_calls__aggregates_of_both_sides() -> None:
    real = _with_missing(10, 1_000, np.r_[np.zeros(5), np.full(5, 0.1)])
    complete = np.zeros((10, 1_000), dtype=np.float32)
    out = missing_calls(np.isnan(real), np.isnan(complete))
    assert out["real"]["share"] == pytest.approx(0.05)
    assert out["real"]["individuals_with_any"] == 0.5
    # half miss ~10% of their calls: over the fixed 5% line, no quantile of anyone's share
    assert out["real"]["individuals_over_5pct"] == 0.5
    assert out["synthetic"]["individuals_over_5pct"] == 0.0
    assert "individual_share_p90" not in out["real"]
    assert out["synthetic"]["share"] == 0.0 and out["snp_share_correlation"] is None
    same = missing_calls(np.isnan(real), np.isnan(real))
    assert same["snp_share_correlation"] == pytest.approx(1.0)


def test_simulate__missing_calls_uneven_and_at_the_panels_snps() -> None:
    sim = simulate(SimConfig.small(seed=3, n=300, n_public=200, missing_calls=0.02))
    c, p = sim.cohort.dosages, sim.public.dosages
    assert np.isnan(c).mean() == pytest.approx(0.02, rel=0.25)
    per_mouse = np.isnan(c).mean(axis=1)
    assert per_mouse.max() > 4 * np.median(per_mouse)  # a few mice miss many
    # one platform: the panel misses calls at the cohort's SNPs
    assert np.corrcoef(np.isnan(c).mean(axis=0), np.isnan(p).mean(axis=0))[0, 1] > 0.8
    # the trait is planted on the complete calls: the phenotypes do not change
    base = simulate(SimConfig.small(seed=3, n=300, n_public=200))
    assert not np.isnan(base.cohort.dosages).any()
    assert base.cohort.phenotypes.equals(sim.cohort.phenotypes)
    with pytest.raises(ConfigError, match="missing_calls"):
        SimConfig.small(missing_calls=0.5)


@pytest.fixture(scope="module")
def missing_cohort():
    sim = simulate(SimConfig.small(seed=3, n=300, n_public=200, missing_calls=0.02))
    real, report = qc(sim.cohort, dp=True, public=sim.public)
    members = analysis_subset(real, "abBMD", ["SW16"], report)
    return members, align_panel(sim.public, members.variants)


FAST = SynthConfig(pheno="abBMD", covariates=("SW16",), epsilon=4.0, pretrain_steps=40)


def test_synthesize__releases_missing_calls_under_the_ledger(
    missing_cohort, caplog, monkeypatch
) -> None:
    members, panel = missing_cohort
    # at weight 2 (default 0.5) the histogram's multiplier is about 5 and the largest bins
    # (61, 81 of 258 members) sit over 9 sds above the keep line: any redraw of the seeded
    # noise keeps them (at 0.5 every bin fell under it in 2-3% of redraws)
    on = replace(FAST, genotype_missingness=True, genotype_missingness_weight=2.0)
    res = synthesize(members, on, panel)
    led = res.ledger.to_dict()
    assert 3.9 < led["epsilon"] <= 4.0
    mech = {m["name"]: m for m in led["mechanisms"]}[GENOTYPE_MISSINGNESS]
    assert mech["kind"] == "gaussian" and mech["sensitivity"] == 1.0 and mech["count"] == 1
    det = res.details["genotype_missingness"]
    assert det["noise_multiplier"] == mech["noise_multiplier"]
    assert det["bins_kept"] >= 1
    assert det["snp_weights"] == "the public panel's per-SNP missing calls"
    fid = missing_calls(np.isnan(members.dosages), np.isnan(res.cohort.dosages))
    assert fid["synthetic"]["share"] == pytest.approx(fid["real"]["share"], rel=0.5)
    assert fid["snp_share_correlation"] > 0.5
    # off (the default): no mechanism, complete genotypes, and a warning that says so
    monkeypatch.setitem(S._WARNED, "complete", False)
    with caplog.at_level(logging.WARNING, logger="dpgenome.synthesize"):
        off = synthesize(members, FAST, panel)
    assert GENOTYPE_MISSINGNESS not in {m["name"] for m in off.ledger.to_dict()["mechanisms"]}
    assert not np.isnan(off.cohort.dosages).any()
    assert "miss some genotype calls" in caplog.text
    # at the default weight the other releases' noise moves by under 1% for it
    cfg = replace(FAST, ancestry_pcs=0).validate(members.n_samples)
    without = calibrated_ledger(members, cfg, has_public=True)
    with_it = calibrated_ledger(members, replace(cfg, genotype_missingness=True), has_public=True)
    ratio = noise_multiplier(with_it, "region-association") / noise_multiplier(
        without, "region-association"
    )
    assert 1 < ratio < 1.01


def test_synthesize__no_formal_privacy_releases_exact_shares(missing_cohort) -> None:
    members, panel = missing_cohort
    res = synthesize(
        members, replace(FAST, epsilon=math.inf, genotype_missingness=True, seed=2), panel
    )
    det = res.details["genotype_missingness"]
    assert det["noise_multiplier"] is None
    exact = np.bincount(C.share_bins(members.dosages), minlength=C.n_bins()) / members.n_samples
    np.testing.assert_allclose(det["released_shares"], exact, atol=1e-5)


def test_synth_config__missingness_weight_must_be_positive() -> None:
    with pytest.raises(ConfigError, match="genotype_missingness_weight"):
        replace(FAST, genotype_missingness_weight=0.0).validate(100)


def test_cli__simulate_and_synthesize_with_missing_calls(tmp_path) -> None:
    """`simulate --missing-calls` writes NA calls; `synthesize --genotype-missingness` reads
    them, charges the histogram and writes a cohort missing calls."""
    sim = tmp_path / "sim"
    args = ["simulate", "--out", str(sim), "--n", "150", "--public-panel", "120"]
    args += ["--chromosomes", "11", "--missing-calls", "0.03", "--seed", "4"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    cohort = read_cohort(sim)
    assert np.isnan(cohort.dosages).mean() == pytest.approx(0.03, rel=0.4)
    out = tmp_path / "synth"
    # the tests' seeded noise (conftest: DPGENOME_NOISE_SEED): at epsilon 6 (multiplier 13.3
    # at 150 members, keep line 40) stop 61's new stream tag drew noise that dropped every
    # bin, on every run; fresh noise would have done so in about 16% of runs. At 40
    # (multiplier 3.0, keep line 9) the largest bins, 40 and 43 members, pass whatever the
    # draw: what is tested is the plumbing (the noise: test_release_call_rates__...)
    args = ["synthesize", str(sim), "--pheno", "abBMD", "--covar", "SW16", "--epsilon", "40"]
    args += ["--public-panel", str(sim / "public"), "--genotype-missingness", "--out", str(out)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    ledger = json.loads((out / "ledger.json").read_text())
    assert GENOTYPE_MISSINGNESS in {m["name"] for m in ledger["mechanisms"]}
    synth = read_cohort(out)
    assert 0 < np.isnan(synth.dosages).mean() < 0.1
    summary = json.loads((out / "synthesis.json").read_text())
    assert "DPGENOME_NOISE_SEED" in summary["details"]["noise_source"]
    assert summary["details"]["genotype_missingness"]["bins_kept"] >= 1
    assert summary["config"]["genotype_missingness"] is True
    # a panel written in another format reads the same calls back
    write_cohort(cohort, tmp_path / "plink", "plink")
    assert np.isnan(read_cohort(tmp_path / "plink").dosages).sum() == np.isnan(cohort.dosages).sum()


def test_synthesize__the_plan_holds_the_release_whatever_the_members_miss(missing_cohort) -> None:
    """The ledger is the configuration's: members without a missing call still pay for the
    histogram (the plan does not look at them), and the public default gives no missing call
    when nothing passes the noise."""
    members, panel = missing_cohort
    complete = replace(members, dosages=np.nan_to_num(members.dosages, nan=0.0))
    res = synthesize(complete, replace(FAST, genotype_missingness=True), panel)
    assert GENOTYPE_MISSINGNESS in {m["name"] for m in res.ledger.to_dict()["mechanisms"]}
    det = res.details["genotype_missingness"]
    assert det["released_shares"][0] == 1.0 and not np.isnan(res.cohort.dosages).any()


def test_draw_shares__a_bin_below_one_call_draws_one_call() -> None:
    """On few SNPs the lowest bins lie below one call's share: a synthetic individual drawn
    into them misses one call on average, not a fraction of one."""
    shares = np.zeros(C.n_bins())
    shares[1] = 1.0  # (0, 0.1%]: below one call of 300
    release = _release(shares, np.ones(300))
    drawn = release.draw_shares(1_000, np.random.default_rng(8))
    assert np.allclose(drawn, 1 / 300)
    assert release.expected_share() == pytest.approx(1 / 300)


class _ChosenNoise:
    """Noise that adds chosen offsets (in noise sds) and records what it was asked for."""

    secure = False

    def __init__(self, offsets_sd: list[float]) -> None:
        self.offsets = np.asarray(offsets_sd, dtype=np.float64)
        self.calls: list[tuple[float, float]] = []

    def gaussian(self, values, *, sd: float, sensitivity: float) -> np.ndarray:
        self.calls.append((sd, sensitivity))
        return np.asarray(values, dtype=np.float64) + self.offsets * sd


def test_noisy_shares__noise_scale_keep_line_normalisation_and_public_fallback() -> None:
    """One Gaussian of the calibrated sd at sensitivity 1 over the counts; a bin is kept at a
    noisy count of at least ``keep_sds`` sds (2.9 dropped, 3.0 kept); the kept counts
    normalised; the public shares when none is kept; exact shares without formal privacy."""
    bins = np.array([0] * 30 + [1] * 10)  # counts 30, 10, 0, 0 over 4 bins
    public = np.array([1.0, 1.0, 2.0, 0.0])
    shares, kept = noisy_shares(bins, public, noise_multiplier=None, noise=NO_NOISE)
    assert shares.tolist() == [0.75, 0.25, 0.0, 0.0] and kept == 2
    noise = _ChosenNoise([0.0, -10.0 / 5.0, 2.9, 3.0])  # sd 5: 30, 0, 14.5, 15
    shares, kept = noisy_shares(bins, public, noise_multiplier=5.0, noise=noise, keep_sds=3.0)
    assert noise.calls == [(5.0, 1.0)]
    assert kept == 2 and shares.tolist() == pytest.approx([30 / 45, 0.0, 0.0, 15 / 45])
    hidden = _ChosenNoise([-10.0, -10.0, 0.0, 0.0])  # every noisy count under the line
    shares, kept = noisy_shares(bins, public, noise_multiplier=5.0, noise=hidden)
    assert kept == 0 and shares.tolist() == [0.25, 0.25, 0.5, 0.0]


def test_release_call_rates__the_ledgers_multiplier_and_a_keep_line_of_three_sds() -> None:
    """The missing-call histogram draws its noise at the ledger's multiplier (sensitivity 1)
    and keeps a bin from 3 noise sds (callrates.KEEP_SDS), not the 2 of the other
    histograms: an empty bin at 2.9 sds is dropped, one at 3.0 kept."""
    assert C.KEEP_SDS == 3.0
    shares = np.array([0.0] * 40 + [0.01] * 20)  # 40 members in bin 0, 20 in 0.01's bin
    dos = _with_missing(len(shares), 1_000, shares)
    counts = np.bincount(C.share_bins(dos), minlength=C.n_bins())
    nonempty = np.flatnonzero(counts)
    empty = np.flatnonzero(counts == 0)
    offsets = np.zeros(C.n_bins())
    offsets[empty[0]], offsets[empty[1]] = 2.9, 3.0
    noise = _ChosenNoise(offsets.tolist())
    release = C.release_call_rates(dos, None, noise_multiplier=4.0, noise=noise)
    assert noise.calls == [(4.0, 1.0)] and release.noise_multiplier == 4.0
    assert release.kept == len(nonempty) + 1
    expected = np.where(counts > 0, counts, 0.0).astype(np.float64)
    expected[empty[1]] = 12.0
    np.testing.assert_allclose(release.shares, expected / expected.sum())
