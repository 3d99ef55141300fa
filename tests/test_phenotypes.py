"""DP-SGD phenotype synthesizer: public schema and batches, the grouped MADE and its
per-sample gradients, types/missingness/marginals/correlations, no copied rows, the ledger."""

from __future__ import annotations

import logging
import math
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import stats
from torch.func import functional_call, grad, vmap

from dpgenome.accountant import default_delta
from dpgenome.calibrate import calibrate
from dpgenome.cohort import PhenoType
from dpgenome.dpsgd import DpSgdConfig, DpSgdTrainer
from dpgenome.errors import ConfigError, InputError
from dpgenome.noise import GeneratorNoise
from dpgenome.phenobins import FINE_BINS, RANGE_UNKNOWN, dp_bins, piecewise_constant_fit
from dpgenome.phenoencoding import (
    ColumnSchema,
    EncodedMissing,
    Encoding,
    PhenoSchema,
    _decode_column,
    _encode_column,
    _within_bins,
    cfw_schema,
    encoded_as_missing,
    group_columns,
    shape_grid,
)
from dpgenome.phenomade import GroupedMade, batch_layout
from dpgenome.phenotypes import (
    PhenotypeConfig,
    _resolve_encoding,
    derived_columns,
    fit_phenotypes,
    planned_bins,
    planned_dp_sgd,
    planned_missingness,
    public_column_specs,
)
from dpgenome.testing import ToyConfig, toy_cohort


@pytest.fixture(scope="module")
def toy():
    """Members (seed 1) and a public schema from a separately drawn toy colony (seed 2)."""
    members, _ = toy_cohort(1, ToyConfig(n=500, n_chrom=1, snps_per_chrom=10, causal=((0, 5),)))
    public, _ = toy_cohort(2, ToyConfig(n=500, n_chrom=1, snps_per_chrom=10, causal=((0, 5),)))
    schema = PhenoSchema.from_public_table(public.phenotypes, public.pheno_types, n_bins=16)
    return members, schema


@pytest.fixture(scope="module")
def fitted_inf(toy):
    members, schema = toy
    config = PhenotypeConfig(steps=300, expected_batch_size=128, schema=schema)
    model = fit_phenotypes(
        members.phenotypes,
        members.pheno_types,
        config,
        noise_multiplier=None,
        context=["abBMD", "SW16"],
        seed=3,
    )
    return model, model.sample(2_000, seed=4)


def _corr_error(real: pd.DataFrame, synth: pd.DataFrame, cols: list[str]) -> float:
    r, s = real[cols].corr().to_numpy(), synth[cols].corr().to_numpy()
    iu = np.triu_indices(len(cols), 1)
    return float(np.abs(r[iu] - s[iu]).mean())


# ---------------------------------------------------------------------------- schema and batches


def test_cfw_schema__covers_the_public_table_with_public_bins() -> None:
    schema = cfw_schema(20).columns
    assert schema["round"].kind == "levels" and len(schema["round"].levels) == 25
    assert schema["abBMD"].kind == "binary" and schema["SW16"].kind == "binary"
    assert schema["FCbox"].kind == "values" and schema["FCbox"].values == (1.0, 2.0, 3.0, 4.0)
    bmd = schema["BMD"]
    assert bmd.kind == "bins" and len(bmd.edges) == 21
    assert bmd.edges[0] == pytest.approx(1.770852) and bmd.edges[-1] == pytest.approx(2.189209)
    assert np.all(np.diff(bmd.edges) > 0)
    assert schema["D1TOTDIST5"].integer and not schema["BMD"].integer


def test_group_columns__context_first_names_only_bounded_batches() -> None:
    columns = [
        c for c in cfw_schema().columns if c not in derived_columns(list(cfw_schema().columns))
    ]
    batches = group_columns(columns, ["abBMD", "round"], max_batch_columns=12)
    assert batches[0][:2] == ["abBMD", "round"]
    flat = [c for b in batches for c in b]
    assert sorted(flat) == sorted(columns)  # every modelled column exactly once
    assert all(len(b) <= 12 for b in batches)
    as_sets = [set(b) for b in batches]
    assert any({"bw0", "bw1", "bw2", "bw3"} <= s for s in as_sets)  # body weights together
    assert any({"TA", "EDL", "soleus"} <= s for s in as_sets)  # muscles together
    # the grouping depends on names only: values play no part
    assert group_columns(columns, ["abBMD", "round"]) == batches


def test_derived_columns__one_hot_children_of_a_parent() -> None:
    d = derived_columns(["round", "SW16", "SW3", "FCbox", "FCbox2", "bw1"])
    assert d == {"SW3": ("round", "SW3"), "SW16": ("round", "SW16"), "FCbox2": ("FCbox", 2.0)}


def test_schema__uncovered_categorical_column_is_an_error(toy) -> None:
    members, schema = toy
    table = members.phenotypes.assign(site=["a"] * members.n_samples)
    types = dict(members.pheno_types, site=PhenoType.CATEGORICAL)
    with pytest.raises(InputError, match=r"column site: categorical column 'site' has no public"):
        fit_phenotypes(table, types, PhenotypeConfig(schema=schema), noise_multiplier=1.0)


def test_schema__prior_is_the_public_category_shares() -> None:
    public = pd.DataFrame(
        {
            "y": [1.0] * 30 + [0.0] * 60 + [np.nan] * 10,
            "g": ["a"] * 50 + ["b"] * 25 + [None] * 25,
        }
    )
    types = {"y": PhenoType.BINARY, "g": PhenoType.CATEGORICAL}
    schema = PhenoSchema.from_public_table(public, types).columns
    # (count + 0.5) / (n + 0.5 K): categories in code order, missing last
    np.testing.assert_allclose(schema["y"].prior, np.array([60.5, 30.5, 10.5]) / 101.5)
    np.testing.assert_allclose(schema["g"].prior, np.array([50.5, 25.5, 25.5]) / 101.5)
    enc = Encoding((("y", "g"),), schema, types, {}, ("y", "g"))
    logits = batch_layout(enc).prior_logits[0]
    np.testing.assert_allclose(torch.softmax(logits[0, :3], -1), schema["y"].prior, rtol=1e-6)


def test_fit_phenotypes__starts_from_the_public_marginals(toy) -> None:
    """Barely trained (one step at a tiny learning rate), the model samples the public
    schema's shares with ``public_prior`` (missing shares included) and near-uniform ones
    without it (the model's own missingness: no pattern release)."""
    members, schema = toy
    errors = {}
    for prior in (True, False):
        config = PhenotypeConfig(
            schema=schema, steps=1, lr=1e-9, public_prior=prior, missing_patterns=False
        )
        model = fit_phenotypes(
            members.phenotypes, members.pheno_types, config, noise_multiplier=None, seed=3
        )
        synth = model.sample(4_000, seed=4)
        cols = [c for c in ("abBMD", "BMD", "bw", "round") if c in schema.columns]
        errors[prior] = float(
            np.mean([abs(synth[c].isna().mean() - schema.columns[c].prior[-1]) for c in cols])
        )
    assert errors[True] < 0.02 < errors[False]


def test_encoded_as_missing__levels_outside_the_schema_and_values_other_than_0_1() -> None:
    """Observed values the encoding turns into missing, per column, with the reason: levels
    outside the schema's and a 1/2-coded binary column (the synthesizer trained on them as
    missing, and nobody was told). Missing values, numbers beyond the bins (the outer bins
    take them) and clean columns are not counted."""
    table = pd.DataFrame(
        {
            "site": ["A", "C", None, "B", "D", "C"],
            "smoker": [1.0, 2.0, 0.0, np.nan, 2.0, 1.0],
            "sex": ["F", "M", "M", None, "F", "F"],
            "ok01": [0.0, 1.0, np.nan, 1.0, 0.0, 0.0],
            "bmi": [5.0, 20.0, 70.0, np.nan, 30.0, 40.0],
        }
    )
    schema = {
        "site": ColumnSchema("levels", levels=("A", "B")),
        "smoker": ColumnSchema("binary"),
        "sex": ColumnSchema("levels", levels=("F", "M")),
        "ok01": ColumnSchema("binary"),
        "bmi": ColumnSchema("bins", edges=(10.0, 30.0, 60.0)),
    }
    found = encoded_as_missing(table, schema)
    assert found == {
        "site": EncodedMissing("site", 3, "levels"),
        "smoker": EncodedMissing("smoker", 2, "binary"),
    }
    assert found["site"].reason == "level not in the schema"
    assert found["smoker"].reason == "not 0 or 1"
    # the counts are the encoding's own: observed values coded as the missing category
    for c, spec in schema.items():
        lost = (_encode_column(table[c], spec) == spec.n_categories - 1) & table[c].notna()
        assert int(lost.sum()) == (found[c].count if c in found else 0)
    # counts only: no value of an individual in what is reported
    for e in found.values():
        text = e.describe() + e.remedy + str(e.to_dict())
        assert not {"C", "D", "2.0"} & set(text.replace(",", " ").replace("'", " ").split())
    assert found["site"].to_dict() == {
        "name": "site",
        "count": 3,
        "reason": "level not in the schema",
        "refused": False,
        "typed_by": "",
    }
    # with the cohort's types: a 1/2 column typed continuous is refused by the fit instead
    types = {"smoker": PhenoType.CONTINUOUS, "site": PhenoType.CATEGORICAL}
    assert encoded_as_missing(table, schema, types)["smoker"].refused
    assert not encoded_as_missing(table, schema, types)["site"].refused


def test_encoded_as_missing__the_public_specs_are_the_encoding_fit_trains_on(toy) -> None:
    """``dpgenome inspect`` counts against :func:`public_column_specs` without fitting: they
    are the trained encoding's specs (all but the fitted bins of continuous columns outside
    the schema), so both count the same values."""
    members, _ = toy
    table = members.phenotypes.copy()
    rows = table.index[table["round"].notna()][:5]
    table.loc[rows, "round"] = "SW99"  # not a round of the public CFW schema
    config = PhenotypeConfig()
    enc, dp_cols = _resolve_encoding(
        table,
        members.pheno_types,
        config,
        (),
        None,
        False,
        GeneratorNoise(np.random.default_rng(0)),
    )
    specs = public_column_specs(list(table.columns), members.pheno_types, config)
    assert dp_cols == ["bw"] and set(enc.schema) == set(specs) | {"bw"}
    assert all(enc.schema[c] == spec for c, spec in specs.items())
    expected = {"round": EncodedMissing("round", 5, "levels")}
    assert encoded_as_missing(table, enc) == encoded_as_missing(table, specs) == expected
    assert encoded_as_missing(members.phenotypes, enc) == {}


# ---------------------------------------------------------------------------- DP bins


def test_dp_bins__edges_close_to_true_quantiles_with_little_noise() -> None:
    rng = np.random.default_rng(0)
    x = rng.lognormal(3.0, 0.4, 20_000)
    x[:500] = np.nan
    spec = dp_bins(x, n_bins=10, noise_multiplier=5.0, noise=GeneratorNoise(rng))
    assert spec.source == "dp"
    edges = np.asarray(spec.edges)
    truth = np.nanquantile(x, np.linspace(0.1, 0.9, 9))
    assert np.all(np.diff(edges) > 0)
    np.testing.assert_allclose(edges[1:-1], truth, rtol=0.06)
    assert edges[0] <= np.nanquantile(x, 0.02) and edges[-1] >= np.nanquantile(x, 0.98)


def test_dp_bins__the_range_grows_over_tails_too_thin_for_the_strict_test() -> None:
    # 240 members, noise sd 10: only the one or two central cells pass the strict test, so
    # the range was [21, 27] for a normal column 25 +- 4 and held 0.84 of the values (0.59 in
    # the worst of 40); it now grows over the next cells whose noisy counts reach two sds
    # (0.97, 0.85 in the worst)
    rng = np.random.default_rng(3)
    covered = []
    for _ in range(40):
        x = rng.normal(25.0, 4.0, 240)
        edges = dp_bins(x, n_bins=20, noise_multiplier=10.0, noise=GeneratorNoise(rng)).edges
        covered.append(np.mean((x >= edges[0]) & (x <= edges[-1])))
    assert np.mean(covered) >= 0.95 and min(covered) >= 0.8


def test_dp_bins__too_few_members_for_the_noise_gives_the_unknown_range() -> None:
    rng = np.random.default_rng(0)
    spec = dp_bins(
        rng.lognormal(3.0, 0.5, 30), n_bins=20, noise_multiplier=50.0, noise=GeneratorNoise(rng)
    )
    assert (spec.edges[0], spec.edges[-1]) == RANGE_UNKNOWN


def test_piecewise_constant_fit__runs_of_the_denoising_at_their_means() -> None:
    rng = np.random.default_rng(0)
    truth = np.repeat([0.0, 100.0, 30.0, 0.0], [10, 5, 5, 20])
    y = truth + rng.normal(0.0, 2.0, len(truth))
    fit = piecewise_constant_fit(y, 20.0)
    starts = np.r_[0, np.flatnonzero(np.diff(fit)) + 1]
    assert {10, 15, 20} <= set(starts) and len(starts) <= 6  # the steps (and a tiny one)
    assert np.abs(fit - truth).max() < 6.0
    for a, b in zip(starts, np.r_[starts[1:], len(y)], strict=True):
        np.testing.assert_allclose(fit[a:b], y[a:b].mean())  # each run at y's mean over it
    assert fit.sum() == pytest.approx(y.sum())
    assert np.ptp(piecewise_constant_fit(rng.normal(0.0, 2.0, 40), 20.0)) < 1.0  # pure noise
    np.testing.assert_array_equal(piecewise_constant_fit(y, 0.0), y)


def test_fit_phenotypes__warns_when_dp_bins_find_no_range(toy, caplog) -> None:
    members, schema = toy
    config = PhenotypeConfig(
        schema=PhenoSchema({k: v for k, v in schema.columns.items() if k != "bw"}, "no bw"),
        steps=2,
    )
    warned, observed = {}, {}
    for sigma in (1e4, 1.0):  # no cell passes under noise sd 10,000; under 1 the range is found
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="dpgenome.phenotypes"):
            model = fit_phenotypes(
                members.phenotypes,
                members.pheno_types,
                config,
                noise_multiplier=1.0,
                bins_noise_multiplier=sigma,
            )
        warned[sigma] = "continuous column 'bw': its DP bins found no range" in caplog.text
        observed[sigma] = int(model.sample(200, seed=1)["bw"].notna().sum())
    assert warned == {1e4: True, 1.0: False}
    # no values made up over [-1, 1]: the column is left missing
    assert observed[1e4] == 0 and observed[1.0] > 100


def test_dp_bins__range_stays_near_the_data_under_heavy_noise() -> None:
    # ~1,000 members, the noise of ~100 DP-binned columns (sigma 30): a noise cell kept far
    # from the data dragged lo or hi to sinh(+-25) in about half the histograms (3 sigma on
    # 500 cells); the threshold now keeps one in about 1 of 1,000
    rng = np.random.default_rng(0)
    x = rng.lognormal(5.0, 0.5, 1_000)
    wild = 0
    for _ in range(200):
        edges = dp_bins(x, n_bins=20, noise_multiplier=30.0, noise=GeneratorNoise(rng)).edges
        wild += edges[0] < x.min() / 10 or edges[-1] > x.max() * 10
        assert edges[0] < np.median(x) < edges[-1]
    assert wild <= 1


def test_dp_bins__a_column_too_sparse_for_one_cell_gets_a_coarser_range() -> None:
    # 1,000 values spread over 8 range cells (125 each) under sigma 40: no single cell
    # passes its threshold (~190), sums of four do
    rng = np.random.default_rng(1)
    x = np.sinh(rng.uniform(4.0, 6.0, 1_000))
    covered = []
    for _ in range(20):
        edges = dp_bins(x, n_bins=10, noise_multiplier=40.0, noise=GeneratorNoise(rng)).edges
        assert edges[0] >= np.sinh(4.0 - 2.0) and edges[-1] <= np.sinh(6.0 + 2.0)
        covered.append(np.mean((x >= edges[0]) & (x <= edges[-1])))  # (-1, 1) covers none
    assert min(covered) >= 0.25 and np.mean(covered) >= 0.75


def test_dp_bins__an_empty_stretch_of_the_range_gets_little_mass() -> None:
    # two modes and a gap between them: zeroing the negative noisy counts gave every empty
    # fine bin a positive mass, and a model's uniform start on the bins put 0.067 of the
    # values in the gap (100 fine bins; measured); the isotonic cumulative sum gave 0.016,
    # plain total-variation denoising 0.051 (it raises troughs), its relaxed runs 0.012
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(100, 5, 500), rng.normal(200, 5, 500)])
    shares = []
    for _ in range(10):
        spec = dp_bins(x, n_bins=20, noise_multiplier=10.0, noise=GeneratorNoise(rng))
        u = _decode_column(rng.integers(0, len(spec.edges) - 1, 20_000), spec, rng)
        shares.append(np.mean((u > 130) & (u < 170)))
    assert np.mean(shares) < 0.03


def test_planned_bins__two_gaussian_histograms_per_uncovered_column(toy) -> None:
    members, schema = toy
    without_bw = PhenoSchema({k: v for k, v in schema.columns.items() if k != "bw"}, "no bw")
    config = PhenotypeConfig(
        schema=without_bw.merged(PhenoSchema.from_ranges({"BMD": (-4.0, 4.0)}))
    )
    plan = planned_bins(list(members.phenotypes.columns), members.pheno_types, config)
    assert plan is not None and plan.count == 2 and plan.sensitivity == 1.0  # only "bw"
    with pytest.raises(ConfigError, match="'bw' is not in the public schema"):
        fit_phenotypes(members.phenotypes, members.pheno_types, config, noise_multiplier=1.0)
    model = fit_phenotypes(
        members.phenotypes,
        members.pheno_types,
        PhenotypeConfig(schema=config.schema, steps=2),
        noise_multiplier=1.0,
        bins_noise_multiplier=5.0,
    )
    assert model.details["dp_binned_columns"] == ["bw"]
    assert model.encoding.schema["bw"].source == "dp"


# ---------------------------------------------------------------------------- decoding


def _heavy_tailed(n: int, seed: int) -> np.ndarray:
    """A column like ``avgnostim``: an atom at 0 (30%), a lognormal bulk, a long tail."""
    rng = np.random.default_rng(seed)
    x = rng.lognormal(1.5, 0.8, n)
    x[rng.random(n) < 0.3] = 0.0
    return x


def test_decode__values_follow_the_public_shape_within_each_bin() -> None:
    public = pd.DataFrame({"x": _heavy_tailed(5_000, 1), "k": np.round(_heavy_tailed(5_000, 2))})
    types = {"x": PhenoType.CONTINUOUS, "k": PhenoType.CONTINUOUS}
    schema = PhenoSchema.from_public_table(public, types, n_bins=8, max_values=8)
    spec = schema.columns["x"]
    assert spec.kind == "bins" and len(spec.quantiles) == len(spec.probabilities) > 201
    np.testing.assert_allclose(spec.probabilities, shape_grid(5_000, 200))
    assert spec.quantiles[0] == public["x"].min() and spec.quantiles[-1] == public["x"].max()
    real = pd.Series(_heavy_tailed(20_000, 3))  # members from the same population
    codes = _encode_column(real, spec)
    rng = np.random.default_rng(4)
    shaped = _decode_column(codes, spec, rng)
    uniform = _decode_column(codes, replace(spec, quantiles=()), rng)
    # every value stays in its bin, the atom survives, the distribution is the members'
    np.testing.assert_array_equal(_encode_column(pd.Series(shaped), spec), codes)
    assert np.mean(shaped == 0.0) == pytest.approx(0.3, abs=0.01)
    assert stats.ks_2samp(shaped, real).statistic < 0.02
    # the spread is the members' up to the public sample's own tail (5,000 draws)
    assert np.std(shaped) == pytest.approx(np.std(real), rel=0.12)
    # a uniform draw across the top bin, which spans the public maximum, triples it
    assert np.std(uniform) > 2.5 * np.std(real)
    # integer columns: rounded and still in their bin
    kspec = schema.columns["k"]
    assert kspec.kind == "bins" and kspec.integer
    kcodes = _encode_column(pd.Series(np.round(_heavy_tailed(20_000, 5))), kspec)
    k = _decode_column(kcodes, kspec, rng)
    assert np.all(k == np.round(k))
    np.testing.assert_array_equal(_encode_column(pd.Series(k), kspec), kcodes)


def test_decode__dp_bins_follow_their_released_histogram_within_each_bin() -> None:
    rng = np.random.default_rng(0)
    x = rng.lognormal(1.5, 0.8, 5_000)  # skewed: a wide top bin
    x[:100] = np.nan
    spec = dp_bins(x, n_bins=8, noise_multiplier=5.0, noise=GeneratorNoise(rng))
    assert len(spec.quantiles) == len(spec.probabilities) == FINE_BINS + 1
    assert spec.probabilities[0] == 0.0 and spec.probabilities[-1] == pytest.approx(1.0)
    codes = _encode_column(pd.Series(x), spec)
    shaped = _decode_column(codes, spec, rng)
    uniform = _decode_column(codes, replace(spec, quantiles=()), rng)
    np.testing.assert_array_equal(_encode_column(pd.Series(shaped), spec), codes)
    assert np.isnan(shaped).sum() == 100
    observed = x[np.isfinite(x)]
    ks_shaped = stats.ks_2samp(shaped[np.isfinite(shaped)], observed).statistic
    ks_uniform = stats.ks_2samp(uniform[np.isfinite(uniform)], observed).statistic
    assert ks_shaped < 0.02 and ks_uniform > 2 * ks_shaped  # measured 0.011 and 0.045


def test_shape_grid__even_steps_refined_towards_both_tails() -> None:
    p = shape_grid(1_000, 10)
    expected_tail = [0.05, 0.025, 0.0125, 0.00625, 0.003125, 0.0015625]  # down to 1/1000
    np.testing.assert_allclose(
        p, sorted({*np.linspace(0, 1, 11), *expected_tail, *(1 - np.array(expected_tail))})
    )


def test_within_bins__no_public_mass_in_a_bin_falls_back_to_uniform() -> None:
    edges = np.array([0.0, 1.0, 2.0, 3.0])
    quantiles = np.linspace(0.0, 1.0, 11)  # public mass only in [0, 1]
    u = np.linspace(0.0, 0.999, 1_000)
    probs = np.linspace(0.0, 1.0, 11)
    x = _within_bins(edges, np.full(1_000, 2), quantiles, probs, u)
    np.testing.assert_allclose(x, 2.0 + u)
    inside = _within_bins(edges, np.zeros(1_000, dtype=np.int64), quantiles, probs, u)
    np.testing.assert_allclose(inside, u)


# ---------------------------------------------------------------------------- the model


def _tiny_model() -> tuple[GroupedMade, torch.Tensor, Encoding]:
    table = pd.DataFrame(
        {
            "a": [0.0, 1.0, np.nan, 1.0] * 5,
            "b": np.linspace(0, 1, 20),
            "c": ["x", "y", "z", "x", None] * 4,
            "d": np.linspace(1, 2, 20) ** 2,
        }
    )
    types = {
        "a": PhenoType.BINARY,
        "b": PhenoType.CONTINUOUS,
        "c": PhenoType.CATEGORICAL,
        "d": PhenoType.CONTINUOUS,
    }
    schema = PhenoSchema.from_public_table(table, types, n_bins=4)
    enc = Encoding((("a", "c"), ("b", "d")), schema.columns, types, {}, tuple(table.columns))
    torch.manual_seed(0)
    net = GroupedMade(batch_layout(enc), hidden=6)
    return net, torch.from_numpy(enc.encode(table)), enc


def test_grouped_made__is_autoregressive_within_batches_and_conditioned_on_context() -> None:
    net, codes, _ = _tiny_model()
    feats = net.features(codes[:1]).requires_grad_(True)
    logits = net(feats)  # [1, B, C, K]
    n_f = net.layout.n_feat

    def depends(b_out: int, c_out: int, b_in: int, c_in: int) -> bool:
        g = torch.autograd.grad(logits[0, b_out, c_out].sum(), feats, retain_graph=True)[0]
        return bool(g[0, b_in, c_in * n_f : (c_in + 1) * n_f].abs().sum() > 0)

    assert not depends(0, 0, 0, 0) and not depends(0, 0, 0, 1) and depends(0, 1, 0, 0)
    assert not depends(1, 0, 1, 0) and not depends(1, 0, 1, 1) and depends(1, 1, 1, 0)
    assert depends(1, 0, 0, 0) and depends(1, 0, 0, 1)  # the context reaches batch 1
    assert not depends(0, 1, 1, 0)  # but not the other way round
    with torch.no_grad():
        for b in range(2):
            torch.testing.assert_close(net.batch_logits(feats, b), logits[:, b])


def _nll(net: nn.Module, feats: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
    logp = torch.log_softmax(net(feats), dim=-1)
    picked = logp.gather(-1, codes.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    return -(picked * (codes >= 0).float()).sum(dim=(1, 2))


nn = torch.nn


@pytest.mark.parametrize("mode", ["hooks", "ghost"])
def test_grouped_made__per_sample_gradients_match_torch_func(mode) -> None:
    net, codes, _ = _tiny_model()
    feats = net.features(codes)
    params = {k: v.detach() for k, v in net.named_parameters()}

    def one(p, f, c):
        return _nll(lambda x: functional_call(net, p, (x,)), f[None], c[None]).sum()  # type: ignore[arg-type]

    reference = vmap(grad(one), in_dims=(None, 0, 0))(params, feats, codes)
    ref_norms = torch.sqrt(sum((g.reshape(len(codes), -1) ** 2).sum(1) for g in reference.values()))
    trainer = DpSgdTrainer(
        net,
        lambda ps: torch.optim.SGD(ps, lr=0.0),
        len(codes),
        DpSgdConfig(1.0, 1, 0.0, 1e30),
        seed=0,
        grad_sample_mode=mode,
    )
    trainer.step(torch.arange(len(codes)), lambda m, idx: _nll(m, feats[idx], codes[idx]))
    torch.testing.assert_close(trainer.per_sample_grad_norms(), ref_norms, rtol=1e-4, atol=1e-5)
    if mode == "hooks":
        for name, p in trainer.module.named_parameters():
            torch.testing.assert_close(
                p.grad_sample, reference[name.removeprefix("_module.")], rtol=1e-4, atol=1e-5
            )
    trainer.close()


# ---------------------------------------------------------------------------- fit and sample


def test_fit_phenotypes__eps_inf_keeps_types_missingness_marginals_correlations(
    toy, fitted_inf
) -> None:
    members, _ = toy
    _, synth = fitted_inf
    real = members.phenotypes
    assert list(synth.columns) == list(real.columns) and len(synth) == 2_000
    for col in ("abBMD", "SW16"):
        assert set(synth[col].dropna().unique()) <= {0.0, 1.0}
    assert set(synth["round"].dropna()) <= set(real["round"].dropna())
    # SW16 is rebuilt from round, so it agrees with it exactly
    has_round = synth["round"].notna()
    assert ((synth["round"] == "SW16").astype(float) == synth["SW16"])[has_round].all()
    assert synth["SW16"][~has_round].isna().all()
    np.testing.assert_allclose(synth.isna().mean(), real.isna().mean(), atol=0.03)
    assert synth["abBMD"].mean() == pytest.approx(real["abBMD"].mean(), abs=0.04)
    for col in ("BMD", "bw"):
        assert synth[col].mean() == pytest.approx(real[col].mean(), abs=0.15 * real[col].std())
        assert synth[col].std() == pytest.approx(real[col].std(), rel=0.15)
    assert _corr_error(real, synth, ["abBMD", "BMD", "bw", "SW16"]) < 0.08
    # the covariate effect on the analysis phenotype survives (round SW16 has more cases)
    by_sw16 = synth.groupby("SW16")["abBMD"].mean()
    assert by_sw16[1.0] > by_sw16[0.0] + 0.1


def test_sample__no_training_row_is_copied(toy, fitted_inf) -> None:
    members, _ = toy
    _, synth = fitted_inf
    cols = ["BMD", "bw"]
    real_rows = set(map(tuple, members.phenotypes[cols].dropna().round(12).to_numpy()))
    synth_rows = [tuple(r) for r in synth[cols].dropna().round(12).to_numpy()]
    assert sum(r in real_rows for r in synth_rows) == 0
    assert not set(synth["BMD"].dropna()) & set(members.phenotypes["BMD"].dropna())


def test_sample__same_seed_same_rows(fitted_inf) -> None:
    model, _ = fitted_inf
    pd.testing.assert_frame_equal(model.sample(50, seed=9), model.sample(50, seed=9))
    assert not model.sample(50, seed=9).equals(model.sample(50, seed=10))


def test_sample__complete_columns_are_never_missing(toy, fitted_inf) -> None:
    """``complete`` drops the missing category of the named columns (of a one-hot copy's
    parent: SW16 through round) and leaves the other columns' missingness as learnt."""
    members, _ = toy
    model, synth = fitted_inf
    real = members.phenotypes
    assert synth[["abBMD", "BMD"]].isna().any().all()  # the toy has missing values
    assert not synth["round"].isna().any()  # as among the members (the released patterns)
    full = model.sample(2_000, seed=4, complete=["abBMD", "SW16", "BMD"])
    assert not full[["abBMD", "SW16", "round", "BMD"]].isna().any().any()
    np.testing.assert_allclose(full["bw"].isna().mean(), real["bw"].isna().mean(), atol=0.03)
    # the observed categories keep their learnt proportions
    assert full["abBMD"].mean() == pytest.approx(synth["abBMD"].mean(), abs=0.04)


def test_fit_phenotypes__finite_epsilon_degrades_gracefully(toy, fitted_inf) -> None:
    members, schema = toy
    real = members.phenotypes
    config = PhenotypeConfig(steps=150, expected_batch_size=256, schema=schema)
    n = members.n_samples
    missing_plan = planned_missingness(list(real.columns), config)
    assert missing_plan is not None
    ledger = calibrate(3.0, default_delta(n), [planned_dp_sgd(config, n), missing_plan])
    sigma = ledger.mechanism("phenotypes").noise_multiplier  # type: ignore[union-attr]
    model = fit_phenotypes(
        real,
        members.pheno_types,
        config,
        noise_multiplier=sigma,
        context=["abBMD", "SW16"],
        missing_noise_multiplier=ledger.mechanism(missing_plan.name).noise_multiplier,  # type: ignore[union-attr]
        seed=3,
    )
    synth = model.sample(2_000, seed=4)
    assert model.details["noise_multiplier"] == sigma and model.details["max_grad_norm"] == 1.0
    # the un-noised batch losses are the members' statistic: not kept under DP
    assert model.details["final_loss"] is None
    assert fitted_inf[0].details["final_loss"] is not None
    assert set(synth["abBMD"].dropna().unique()) <= {0.0, 1.0}
    np.testing.assert_allclose(synth.isna().mean(), real.isna().mean(), atol=0.08)
    for col in ("BMD", "bw"):
        assert synth[col].mean() == pytest.approx(real[col].mean(), abs=0.5 * real[col].std())
    err_dp = _corr_error(real, synth, ["abBMD", "BMD", "bw"])
    err_inf = _corr_error(real, fitted_inf[1], ["abBMD", "BMD", "bw"])
    assert err_inf <= err_dp + 0.05 and err_dp < 0.35


def test_planned_dp_sgd__is_the_mechanism_the_fit_runs(toy) -> None:
    members, schema = toy
    config = PhenotypeConfig(
        steps=3, expected_batch_size=100, schema=schema, missing_patterns=False
    )
    planned = planned_dp_sgd(config, members.n_samples)
    assert planned.sample_rate == pytest.approx(100 / members.n_samples) and planned.steps == 3
    ledger = calibrate(2.0, 1e-5, [planned])
    mech = ledger.to_dict()["mechanisms"][0]
    assert mech["kind"] == "dp-sgd" and mech["steps"] == 3 and mech["max_grad_norm"] == 1.0
    model = fit_phenotypes(
        members.phenotypes, members.pheno_types, config, noise_multiplier=mech["noise_multiplier"]
    )
    assert model.details["sample_rate"] == mech["sample_rate"]
    assert model.details["steps"] == mech["steps"]
    assert model.details["noise_multiplier"] == mech["noise_multiplier"]


@pytest.mark.parametrize(
    "bad", [{"n_bins": 1}, {"steps": 0}, {"max_grad_norm": math.inf}, {"lr": 0}]
)
def test_config__rejects_bad_values(bad) -> None:
    with pytest.raises(ConfigError, match="invalid phenotype synthesizer"):
        PhenotypeConfig(**bad).validate()


def test_fit_phenotypes__whole_numbers_stay_whole(toy, tmp_path) -> None:
    """An integer column outside the public schema stays integer without formal privacy
    (its exact quantiles are read from the data anyway), and a declared ``integer: true``
    range keeps it so under DP; under DP a column typed from the data is not rounded (that
    it holds whole numbers would be another statistic of the members)."""
    from dpgenome.phenoschema import read_pheno_schema

    members, schema = toy
    rng = np.random.default_rng(0)
    table = members.phenotypes.copy()
    table["years"] = rng.integers(20, 80, len(table)).astype(float)
    types = {**members.pheno_types, "years": PhenoType.CONTINUOUS}
    config = PhenotypeConfig(steps=5, expected_batch_size=64, schema=schema)
    free = fit_phenotypes(table, types, config, noise_multiplier=None, seed=1).sample(300, seed=2)
    years = free["years"].dropna()
    assert len(years) > 200 and (years == years.round()).all()
    assert years.between(20, 79).all()
    path = tmp_path / "schema.yaml"
    path.write_text("columns:\n  years: {type: continuous, range: [20, 80], integer: true}\n")
    declared = replace(config, declared=read_pheno_schema(path))
    dp = fit_phenotypes(
        table, types, declared, noise_multiplier=5.0, missing_noise_multiplier=5.0, seed=1
    ).sample(300, seed=2)
    years = dp["years"].dropna()
    assert len(years) > 200 and (years == years.round()).all()
