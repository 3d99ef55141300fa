"""Nearest-neighbour leakage: share closer to members, NNDR, duplicates of genotypes,
genotype windows and phenotype rows; each against its holdout baseline."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dpgenome.audit.neighbours import (
    centre_distances,
    distinct_nearest_test,
    exact_duplicates,
    nndr,
    phenotype_row_keys,
    row_digests,
    share_closer_to_members,
    window_duplicate_rate,
    window_keys,
)
from test_audit_membership import reports


def test_run_audits__copy_of_members_flags_every_duplicate():
    nn = reports()[1]["nearest_neighbour"]
    n = nn["n_synthetic"]
    assert nn["exact_duplicate_genotypes"] == n
    assert nn["near_duplicate_genotypes"] == n
    assert nn["exact_duplicate_phenotype_rows"] == n
    assert nn["duplicate_genotype_windows_rate"] == 1.0
    assert nn["nndr_median"] == 0.0
    assert nn["exact_duplicate_genotypes_holdout"] == 0
    assert nn["share_closer_to_members_ci"][0] > 0.5
    assert nn["centred"]["share_closer_to_members_ci"][0] > 0.5


def test_run_audits__fresh_draws_stay_at_baseline():
    nn = reports()[0]["nearest_neighbour"]
    lo, hi = nn["share_closer_to_members_ci"]
    assert lo <= 0.5 <= hi
    lo, hi = nn["centred"]["share_closer_to_members_ci"]
    assert lo <= 0.5 <= hi
    assert nn["exact_duplicate_genotypes"] == 0 and nn["near_duplicate_genotypes"] == 0
    # the colony shares windows (few founders): synthetic at the holdout's level, +-0.03
    assert nn["duplicate_genotype_windows_rate"] == pytest.approx(
        nn["duplicate_genotype_windows_rate_holdout"], abs=0.03
    )
    assert nn["nndr_median"] == pytest.approx(nn["nndr_median_holdout"], abs=0.03)
    assert sum(nn["dcr_members"]["hist"]) == sum(nn["dcr_holdout"]["hist"]) == nn["n_synthetic"]


def test_share_closer_to_members__null_is_half_with_unequal_sets():
    """With 3x more members than holdout and no leakage, the subsampled share is ~0.5
    (without subsampling it would be ~0.75)."""
    rng = np.random.default_rng(0)
    d = rng.random((400, 2000))  # 300 members + 100 holdout rows, 2000 synthetic columns
    res = share_closer_to_members(d, np.arange(300), np.arange(300, 400), np.random.default_rng(1))
    lo, hi = res["share_closer_to_members_ci"]
    assert lo <= 0.5 <= hi
    assert res["share_reference_size"] == 100


def test_share_closer_to_members__null_spread_is_set_by_the_nearest_real_individuals():
    """1,000 synthetic records whose nearest real individuals are 20 hubs with shares
    proportional to 1..20: n_eff = 1 / sum p^2 by hand, and over random 100/100 splits (no
    leak) the share's sd is 0.5 / sqrt(n_eff), as the audit reports, not the ~0.016 that
    1,000 independent records would give."""
    rng = np.random.default_rng(4)
    weights = np.arange(1, 21) / np.arange(1, 21).sum()
    hub = rng.choice(20, size=1000, p=weights)
    d = rng.uniform(1.0, 2.0, size=(200, 1000))
    hubs = rng.choice(200, size=20, replace=False)
    d[hubs[hub], np.arange(1000)] = 0.5
    p_hand = np.bincount(hub, minlength=20) / 1000
    n_eff = 1 / (p_hand**2).sum()
    res = share_closer_to_members(d, np.arange(100), np.arange(100, 200), rng, n_bootstrap=2)
    assert res["share_nearest_distinct"] == 20
    assert res["share_nearest_effective"] == pytest.approx(n_eff, abs=1e-5)
    assert res["share_null_sd"] == pytest.approx(0.5 / np.sqrt(n_eff), abs=1e-6)
    shares = []
    for _ in range(300):
        order = rng.permutation(200)
        split = share_closer_to_members(d, order[:100], order[100:], rng, n_bootstrap=2)
        shares.append(split["share_closer_to_members"])
    assert np.mean(shares) == pytest.approx(0.5, abs=0.02)
    # split 100/100, two hubs are members together a little less often than independently
    # (covariance -0.25 / 199): var = 0.25 (sum p^2 - (1 - sum p^2) / 199)
    expected = res["share_null_sd"] * np.sqrt(1 - (n_eff - 1) / 199)
    assert np.std(shares, ddof=1) == pytest.approx(expected, rel=0.2)


def _hub_world(rng: np.random.Generator) -> np.ndarray:
    """200 real individuals x 1,000 records: random distances plus a per-individual offset,
    low for 20 central individuals (hubs: nearest to most records whoever the members are)."""
    offset = np.full(200, 1.0)
    offset[rng.choice(200, size=20, replace=False)] = 0.2
    return offset[:, None] + rng.random((200, 1000))


def test_centre_distances__subtracts_each_rows_median():
    d = np.array([[1.0, 2.0, 4.0], [0.0, 10.0, 3.0]])
    assert np.array_equal(centre_distances(d), [[-1.0, 0.0, 2.0], [-3.0, 7.0, 0.0]])


def test_centred_share__removes_the_hubs_spread_and_keeps_the_null_at_half():
    """Over random 100/100 splits of a world with 20 hubs, the raw share spreads with the
    hubs (n_eff about 20); centred, every individual is nearest to some records and the
    share's sd shrinks to about 0.5 / sqrt(n_eff) of the centred distances, mean 0.5."""
    rng = np.random.default_rng(5)
    d = _hub_world(rng)
    raw = share_closer_to_members(d, np.arange(100), np.arange(100, 200), rng, n_bootstrap=2)
    cen = share_closer_to_members(
        d, np.arange(100), np.arange(100, 200), rng, n_bootstrap=2, centred=True
    )
    assert raw["share_nearest_distinct"] == 20
    assert cen["share_nearest_distinct"] > 120
    assert cen["share_nearest_effective"] > 3 * raw["share_nearest_effective"]
    raws, cens = [], []
    for _ in range(200):
        order = rng.permutation(200)
        mem, hold = order[:100], order[100:]
        raws.append(share_closer_to_members(d, mem, hold, rng, n_bootstrap=2))
        cens.append(share_closer_to_members(d, mem, hold, rng, n_bootstrap=2, centred=True))
    raw_shares = np.array([r["share_closer_to_members"] for r in raws])
    cen_shares = np.array([r["share_closer_to_members"] for r in cens])
    assert cen_shares.mean() == pytest.approx(0.5, abs=0.01)
    assert np.std(cen_shares, ddof=1) < 0.5 * np.std(raw_shares, ddof=1)
    assert np.std(cen_shares, ddof=1) == pytest.approx(cen["share_null_sd"], rel=0.35)


def test_centred_share__a_copied_member_stays_nearest_to_its_copy():
    """A tenth of the records replaced by copies of members (distance 0 to that member): each
    copy's nearest individual on centred distances is its member, and the share rises by the
    copies that chance had given to the holdout (100 members, 100 holdout: no subsampling)."""
    rng = np.random.default_rng(6)
    d = _hub_world(rng)
    members, holdout = np.arange(100), np.arange(100, 200)
    before = share_closer_to_members(d, members, holdout, rng, n_bootstrap=2, centred=True)
    chance = int((centre_distances(d)[:, :100].argmin(axis=0) < 100).sum())
    d[rng.permutation(100), np.arange(100)] = 0.0  # records 0-99: copies of the 100 members
    after = share_closer_to_members(d, members, holdout, rng, n_bootstrap=2, centred=True)
    assert np.array_equal(centre_distances(d)[:, :100].argmin(axis=0) < 100, np.ones(100, bool))
    rise = after["share_closer_to_members"] - before["share_closer_to_members"]
    assert rise == pytest.approx((100 - chance) / 1000, abs=0.01)
    assert rise > 0.03


def test_distinct_nearest_test__counts_each_nearest_individual_once():
    """Ten records nearest to member 0, one to holdout 5, one to holdout 6 and one to member
    1: two members among four distinct individuals, where the record share would be 11 / 13;
    the p-value is the hypergeometric tail P(X >= 2), X ~ draws of 4 from 4 + 4 (by hand:
    (C(4,2) C(4,2) + C(4,3) C(4,1) + C(4,4)) / C(8,4) = 53 / 70)."""
    d = np.full((8, 13), 5.0)
    d[0, :10] = 1.0
    d[5, 10] = d[6, 11] = 1.0
    d[1, 12] = 1.0
    res = distinct_nearest_test(d, np.arange(4), np.arange(4, 8))
    assert (res["distinct_nearest"], res["distinct_nearest_members"]) == (4, 2)
    assert res["distinct_share"] == 0.5 and res["distinct_share_null"] == 0.5
    assert res["distinct_share_p_value"] == pytest.approx(53 / 70)


def test_distinct_nearest_test__exact_null_over_random_splits():
    """The hubs of the record-share test plus scattered records, 150 members / 50 holdout:
    over random splits the share centres on 0.75 with the hypergeometric sd it reports, and
    the p-value falls below 0.05 in at most about 5% of splits (exact test, discrete)."""
    rng = np.random.default_rng(4)
    weights = np.arange(1, 21) / np.arange(1, 21).sum()
    hub = rng.choice(20, size=1000, p=weights)
    d = rng.uniform(1.0, 2.0, size=(200, 1000))
    hubs = rng.choice(200, size=20, replace=False)
    d[hubs[hub[:700]], np.arange(700)] = 0.5
    results = []
    for _ in range(400):
        order = rng.permutation(200)
        results.append(distinct_nearest_test(d, order[:150], order[150:]))
    shares = np.array([r["distinct_share"] for r in results])
    assert shares.mean() == pytest.approx(0.75, abs=0.01)
    assert shares.std(ddof=1) == pytest.approx(results[0]["distinct_share_null_sd"], rel=0.15)
    rejected = np.mean([r["distinct_share_p_value"] < 0.05 for r in results])
    assert rejected <= 0.08


def test_distinct_nearest_test__ties_do_not_go_to_members():
    """Individuals 0 and 1 are equally near record 0: the set of nearest individuals is the
    same whichever of them is a member (the first in the cohort's order), so its members stay
    a hypergeometric draw; breaking ties towards members counted 2 of 2 either way (helper
    review, stop 45). Over random splits of a cohort whose records tie among four identical
    genotypes, p < 0.05 stays near 5%."""
    d = np.array([[0.1, 0.9], [0.1, 0.9], [0.8, 0.2]])
    one = distinct_nearest_test(d, np.array([1, 2]), np.array([0]))
    other = distinct_nearest_test(d, np.array([0, 2]), np.array([1]))
    assert (one["distinct_nearest"], one["distinct_nearest_members"]) == (2, 1)
    assert (other["distinct_nearest"], other["distinct_nearest_members"]) == (2, 2)
    rng = np.random.default_rng(3)
    d = np.repeat(rng.uniform(1.0, 2.0, size=(50, 300)), 4, axis=0)  # 200 in quadruplets
    rejected = []
    for _ in range(400):
        holdout = rng.random(200) < 0.25
        res = distinct_nearest_test(d, np.flatnonzero(~holdout), np.flatnonzero(holdout))
        rejected.append(res["distinct_share_p_value"] < 0.05)
    assert np.mean(rejected) <= 0.08


def test_share_closer_to_members__histogram_edges_do_not_show_one_record():
    """One synthetic record far from every real individual sets no axis: the histograms' top
    edge is the 99th percentile of the nearest distances and the record is in the last bin."""
    rng = np.random.default_rng(2)
    d = rng.uniform(1.0, 2.0, size=(100, 400))
    d[:, 0] = 1000.0
    res = share_closer_to_members(d, np.arange(50), np.arange(50, 100), rng, n_bootstrap=2)
    assert res["dcr_members"]["edges"][-1] < 2.0
    assert res["dcr_members"]["hist"][-1] >= 1 and sum(res["dcr_members"]["hist"]) == 400


def test_nndr__hand_example():
    d = np.array([[1.0, 0.0, 2.0], [2.0, 0.0, 4.0], [4.0, 3.0, 8.0]])
    np.testing.assert_allclose(nndr(d), [0.5, 0.0, 0.5])


def test_window_keys__match_brute_force_window_comparison():
    rng = np.random.default_rng(2)
    calls = rng.integers(0, 2, size=(40, 300)).astype(np.int8)  # binary: many shared windows
    calls[20:30, :64] = calls[0:10, :64]  # planted shared windows
    chroms = np.array(["1"] * 150 + ["2"] * 150)
    keys = window_keys(calls, chroms, 16)
    starts = [*range(0, 150 - 15, 16), *range(150, 300 - 15, 16)]
    assert keys.shape == (40, len(starts))
    q, ref = calls[20:], calls[:20]
    brute = np.array(
        [[any((ref[:, s : s + 16] == row[s : s + 16]).all(axis=1)) for s in starts] for row in q]
    )
    assert window_duplicate_rate(keys[20:], keys[:20]) == pytest.approx(brute.mean())
    assert brute[:10, :4].all()


def test_row_digests__exact_genotype_duplicates():
    rng = np.random.default_rng(3)
    calls = rng.integers(0, 3, size=(10, 50)).astype(np.int8)
    calls[5] = calls[1]
    calls[6] = calls[2]
    calls[6, 0] = 3  # a missing call makes it a different row
    d = row_digests(calls)
    assert exact_duplicates(d[5:], d[:5]) == 1


def test_phenotype_row_keys__rounding_and_missing():
    a = pd.DataFrame({"x": [1.0, 2.0, np.nan], "g": ["a", "b", "c"]})
    b = pd.DataFrame({"x": [1.0000000001, 2.5, np.nan], "g": ["a", "b", "c"]})
    ka, kb = set(phenotype_row_keys(a)), phenotype_row_keys(b)
    assert [k in ka for k in kb] == [True, False, True]
