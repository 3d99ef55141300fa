"""The missingness-pattern release (dpgenome.missingness) and its use by the phenotype model."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from dpgenome.accountant import default_delta
from dpgenome.calibrate import calibrate
from dpgenome.cohort import PhenoType, infer_pheno_types
from dpgenome.mechanisms import HISTOGRAM_REPLACE_RATIO
from dpgenome.missingness import (
    KEEP_SDS,
    MissingPatterns,
    PatternDomain,
    nearest_patterns,
    pattern_domain,
    release_patterns,
)
from dpgenome.noise import GeneratorNoise
from dpgenome.phenoencoding import PATTERN_COLUMN, PhenoSchema, cfw_schema
from dpgenome.phenoschema import read_pheno_schema
from dpgenome.phenotypes import (
    PhenotypeConfig,
    fit_phenotypes,
    missingness_domain,
    planned_dp_sgd,
    planned_missingness,
)
from dpgenome.simulate import load_real_phenotypes

NAN = np.nan


def _public() -> pd.DataFrame:
    # patterns over (a, b, c): none missing x5, {b, c} x3, {a} x2
    return pd.DataFrame(
        {
            "a": [1.0] * 5 + [2.0] * 3 + [NAN] * 2,
            "b": [1.0] * 5 + [NAN] * 3 + [3.0] * 2,
            "c": [1.0] * 5 + [NAN] * 3 + [3.0] * 2,
        }
    )


def _own(table: pd.DataFrame, domain: PatternDomain) -> np.ndarray:
    return nearest_patterns(table[list(domain.columns)].isna().to_numpy(), domain)


class _Recording:
    """A Noise that adds nothing and records what it was asked for."""

    def __init__(self, add: float = 0.0) -> None:
        self.add = add
        self.calls: list[tuple[float, float]] = []

    def gaussian(self, values, *, sd: float, sensitivity: float) -> np.ndarray:
        self.calls.append((sd, sensitivity))
        return np.asarray(values, dtype=np.float64) + self.add


# ---------------------------------------------------------------------------- public patterns


def test_missing_patterns__distinct_rows_and_their_counts() -> None:
    p = MissingPatterns.of(_public())
    assert p.columns == ("a", "b", "c")
    assert dict(zip(p.missing, p.counts, strict=True)) == {
        (False, False, False): 5,
        (False, True, True): 3,
        (True, False, False): 2,
    }
    # without b and c: the first two patterns merge
    q = p.without({"b", "c"})
    assert q.columns == ("a",) and dict(zip(q.missing, q.counts, strict=True)) == {
        (False,): 8,
        (True,): 2,
    }


def test_pattern_domain__projection_in_public_order() -> None:
    p = MissingPatterns.of(_public())
    d = pattern_domain(p, ["c", "a", "zzz"])  # a column the public table lacks is not governed
    assert d is not None and d.columns == ("c", "a")
    np.testing.assert_array_equal(d.missing, [[False, False], [True, False], [False, True]])
    np.testing.assert_array_equal(d.public_counts, [5, 3, 2])
    # nothing to release: no governed column, or a single pattern
    assert pattern_domain(p, ["zzz"]) is None
    one = MissingPatterns.of(pd.DataFrame({"x": [1.0, 2.0], "y": [NAN, 1.0]}))
    assert pattern_domain(one, ["x"]) is None and pattern_domain(one, ["x", "y"]) is not None


def test_nearest_patterns__hamming_ties_to_the_more_common() -> None:
    d = PatternDomain(
        ("a", "b", "c"),
        np.array([[0, 0, 0], [0, 1, 1], [1, 0, 0]], dtype=bool),
        np.array([5, 3, 2]),
    )
    rows = np.array([[0, 0, 0], [0, 1, 1], [1, 0, 0], [0, 1, 0], [1, 1, 1], [1, 1, 0]], dtype=bool)
    # [0,1,0]: distance 1 to patterns 0 and 1 -> 0; [1,1,1]: 1 to pattern 1; [1,1,0]: 1 to 2
    np.testing.assert_array_equal(nearest_patterns(rows, d), [0, 1, 2, 0, 1, 2])


# ---------------------------------------------------------------------------- the release


def test_release_patterns__exact_without_formal_privacy() -> None:
    d = pattern_domain(MissingPatterns.of(_public()), ["a", "b", "c"])
    assert d is not None
    members = pd.DataFrame({"a": [1.0, NAN, 1.0, 1.0], "b": [1.0, 2.0, NAN, NAN], "c": [1.0] * 4})
    r = release_patterns(_own(members, d), d, noise_multiplier=None, noise=_Recording())
    # the last two rows (b alone missing) are nearest to "none missing" (tie -> more common)
    np.testing.assert_allclose(r.shares, [0.75, 0.0, 0.25])
    assert r.kept == 2 and r.noise_multiplier is None


def test_release_patterns__one_gaussian_histogram_of_sensitivity_one() -> None:
    """Each member adds one count to one pattern (adding a member changes the histogram by
    1 in L2); the noise is drawn once over the histogram at the ledger's multiplier."""
    rng = np.random.default_rng(0)
    public = load_real_phenotypes().drop(columns=["id", "discard", "mixup"])
    d = pattern_domain(MissingPatterns.of(public), list(public.columns))
    assert d is not None and d.size == 54
    members = public.sample(300, random_state=1).reset_index(drop=True)
    rec = _Recording()
    r = release_patterns(_own(members, d), d, noise_multiplier=0.01, noise=rec)
    assert rec.calls == [(0.01, 1.0)]
    counts = r.shares * 300
    np.testing.assert_allclose(counts, np.round(counts), atol=1e-9)
    for i in rng.integers(0, len(public), 20):
        more = pd.concat([members, public.iloc[[i]]], ignore_index=True)
        counts2 = release_patterns(_own(more, d), d, noise_multiplier=None, noise=rec).shares * 301
        diff = counts2 - counts
        assert np.abs(diff).sum() == pytest.approx(1.0) and np.linalg.norm(diff) == pytest.approx(1)


def test_release_patterns__noise_below_the_threshold_is_dropped() -> None:
    d = pattern_domain(MissingPatterns.of(_public()), ["a", "b", "c"])
    assert d is not None
    members = pd.DataFrame({"a": [1.0] * 10, "b": [1.0] * 10, "c": [1.0] * 10})
    # every count gets +3: with sd 2 the threshold is 4, so only the true pattern (13) passes
    r = release_patterns(_own(members, d), d, noise_multiplier=2.0, noise=_Recording(3.0))
    np.testing.assert_allclose(r.shares, [1.0, 0.0, 0.0])
    assert r.kept == 1 and KEEP_SDS == 2.0
    # noise hiding every pattern: the public shares
    r = release_patterns(_own(members, d), d, noise_multiplier=100.0, noise=_Recording(0.0))
    np.testing.assert_allclose(r.shares, [0.5, 0.3, 0.2])
    assert r.kept == 0
    # a real draw: shares sum to 1, patterns drawn only from the domain
    r = release_patterns(
        _own(members, d), d, noise_multiplier=1.0, noise=GeneratorNoise(np.random.default_rng(0))
    )
    assert r.shares.sum() == pytest.approx(1.0)
    drawn = r.draw(100, np.random.default_rng(1))
    assert drawn.shape == (100,) and not d.missing[drawn].any()  # only "none missing" passes


# ---------------------------------------------------------------------------- planning


def test_planned_missingness__names_and_public_table_only() -> None:
    columns = ["abBMD", "SW16", "round", "BMD", "bw1", "PreTrainD1", "startle", "mine"]
    config = PhenotypeConfig()
    plan = planned_missingness(columns, config, ("abBMD", "SW16"))
    assert plan is not None
    assert (plan.count, plan.sensitivity, plan.weight) == (1, 1.0, config.missing_weight)
    assert plan.replace_ratio == HISTOGRAM_REPLACE_RATIO
    dom = missingness_domain(columns, config, ("abBMD", "SW16"))
    assert dom is not None
    # complete columns (SW16 through its parent round), one-hot copies and columns the
    # public table lacks are not governed
    assert dom.columns == ("BMD", "bw1", "PreTrainD1", "startle")
    assert missingness_domain(columns, replace(config, missing_patterns=False)) is None
    assert planned_missingness(["mine", "abBMD"], config, ("abBMD",)) is None


def test_missingness_domain__a_declared_column_is_not_the_public_one(tmp_path) -> None:
    path = tmp_path / "schema.yaml"
    path.write_text("columns:\n  startle: {type: continuous, range: [0, 2000]}\n")
    config = PhenotypeConfig(declared=read_pheno_schema(path))
    dom = missingness_domain(["BMD", "startle", "PreTrainD1"], config)
    assert dom is not None and dom.columns == ("BMD", "PreTrainD1")
    assert "startle" not in (config.resolved_schema().missing or cfw_schema().missing).columns  # type: ignore[union-attr]


# ---------------------------------------------------------------------------- the model


@pytest.fixture(scope="module")
def cfw_members():
    """400 mice of the public CFW table with abBMD observed (an analysis subset); the public
    schema is the whole table's."""
    t = load_real_phenotypes().drop(columns=["id", "discard", "mixup"])
    t = t[t["abBMD"].notna()].sample(400, random_state=0).reset_index(drop=True)
    types = infer_pheno_types(t, {"abBMD": PhenoType.BINARY, "SW16": PhenoType.BINARY})
    return t, types


def _fit_analysis(table, types, config, complete, noise_multiplier=None):
    """A fit with ``complete`` as the context and sampled complete (an analysis subset)."""
    return fit_phenotypes(
        table,
        types,
        config,
        noise_multiplier=noise_multiplier,
        context=complete,
        complete=complete,
    )


def _complete_share(t: pd.DataFrame) -> float:
    return float(t.notna().all(axis=1).mean())


@pytest.mark.parametrize("epsilon", [np.inf, 3.0])
def test_sample__rows_keep_the_members_missingness_patterns(cfw_members, epsilon) -> None:
    """Rows draw one released pattern: the share of complete rows and the missingness of
    a column complete among the members (BMD, observed wherever abBMD is) follow the
    members, where columns left missing on their own did not (stop 49: no complete row
    under DP; BMD 6.5-11% missing)."""
    table, types = cfw_members
    complete = ("abBMD", "SW16")
    config = PhenotypeConfig(steps=20, expected_batch_size=128, seed=1)
    n = len(table)
    nm = pm = None
    if np.isfinite(epsilon):
        plan = planned_missingness(list(table.columns), config, complete)
        assert plan is not None
        ledger = calibrate(epsilon, default_delta(n), [planned_dp_sgd(config, n), plan])
        nm = ledger.mechanism("phenotypes").noise_multiplier  # type: ignore[union-attr]
        pm = ledger.mechanism(plan.name).noise_multiplier  # type: ignore[union-attr]
    model = fit_phenotypes(
        table,
        types,
        config,
        noise_multiplier=nm,
        context=complete,
        missing_noise_multiplier=pm,
        complete=complete,
    )
    assert model.patterns is not None
    summary = model.details["missingness"]
    assert isinstance(summary, dict) and summary["public_patterns"] == model.patterns.domain.size
    synth = model.sample(2_000, seed=2, complete=complete)
    members_share = _complete_share(table)
    assert members_share > 0.7
    assert abs(_complete_share(synth) - members_share) < 0.08
    assert table["BMD"].notna().all() and synth["BMD"].isna().mean() < 0.03
    # every governed column's missingness is one of the public patterns
    dom = model.patterns.domain
    drawn = synth[list(dom.columns)].isna().to_numpy()
    assert (nearest_patterns(drawn, dom) >= 0).all()
    as_rows = {tuple(r) for r in dom.missing.tolist()}
    assert all(tuple(r) in as_rows for r in drawn.tolist())
    # without the release the columns are left missing on their own
    off = _fit_analysis(table, types, replace(config, missing_patterns=False), complete, nm)
    off = off.sample(2_000, seed=2, complete=complete)
    if np.isfinite(epsilon):
        assert _complete_share(off) < members_share - 0.3


def test_fit_phenotypes__dp_without_a_planned_missingness_budget_is_an_error(cfw_members) -> None:
    table, types = cfw_members
    with pytest.raises(Exception, match="no missingness budget was planned"):
        fit_phenotypes(table, types, PhenotypeConfig(steps=1), noise_multiplier=5.0)


def _cramers_v(a: pd.Series, b: pd.Series) -> float:
    ct = pd.crosstab(a, b).to_numpy(dtype=np.float64)
    if min(ct.shape) < 2:
        return 0.0
    e = ct.sum(1, keepdims=True) * ct.sum(0, keepdims=True) / ct.sum()
    return float(np.sqrt(((ct - e) ** 2 / e).sum() / ct.sum() / (min(ct.shape) - 1)))


def test_fit_phenotypes__values_follow_the_drawn_pattern(cfw_members) -> None:
    """With ``pattern_input`` the model is trained with each member's pattern as its first
    input and samples with the drawn one: which assays a row has keeps its dependence on the
    round (in the CFW table some rounds skipped assays). A pattern drawn beside the model,
    the default, loses it (mean Cramer's V over the columns with missing values 0.80 among
    the members, 0.17 in the synthetic rows; review at stop 50)."""
    table, types = cfw_members
    complete = ("abBMD", "SW16")
    config = PhenotypeConfig(steps=300, expected_batch_size=128, seed=1, pattern_input=True)
    model = fit_phenotypes(
        table, types, config, noise_multiplier=None, context=complete, complete=complete
    )
    assert model.encoding.batches[0][:3] == (PATTERN_COLUMN, "abBMD", "round")
    synth = model.sample(len(table), seed=2, complete=complete)
    assert PATTERN_COLUMN not in synth.columns and list(synth.columns) == list(table.columns)
    cols = [
        c
        for c in table.columns
        if c not in ("abBMD", "SW16", "round")
        and not c.startswith("SW")
        and 0.03 < table[c].isna().mean() < 0.97
    ]

    def v(t: pd.DataFrame) -> float:
        return float(np.mean([_cramers_v(t["round"].astype(str), t[c].isna()) for c in cols]))

    beside = _fit_analysis(table, types, replace(config, pattern_input=False), complete)
    assert PATTERN_COLUMN not in beside.encoding.batches[0]
    lost = v(beside.sample(len(table), seed=2, complete=complete))
    assert v(table) > 0.7 and v(synth) > 0.6 and lost < 0.35
    dp = fit_phenotypes(
        table,
        types,
        PhenotypeConfig(steps=1),
        noise_multiplier=5.0,
        missing_noise_multiplier=5.0,
        context=complete,
        complete=complete,
    )
    assert PATTERN_COLUMN not in dp.encoding.batches[0]


def test_fit_phenotypes__a_value_the_schema_cannot_hold_counts_as_missing(cfw_members) -> None:
    """The pattern is read as the model reads the row: a value the schema cannot hold (not
    a finite number) is missing there, so it is missing in the member's pattern too."""
    table, types = cfw_members
    t = table.copy()
    t["taillength"] = np.inf  # not NaN, but encoded as missing
    model = fit_phenotypes(
        t, types, PhenotypeConfig(steps=1), noise_multiplier=None, complete=("abBMD", "SW16")
    )
    assert model.encoding.missing(t, ["taillength"]).all()
    assert not model.encoding.missing(table.dropna(subset=["taillength"]), ["taillength"]).any()
    assert model.patterns is not None
    dom = model.patterns.domain
    only = [
        i
        for i, row in enumerate(dom.missing)
        if dom.columns[int(row.argmax())] == "taillength" and row.sum() == 1
    ]
    assert len(only) == 1
    # the members complete but for it (most of them) count there, not at "none missing"
    assert model.patterns.shares[only[0]] > 0.6 and model.patterns.shares[0] == 0.0


def test_schema_merged__a_redefined_column_leaves_the_public_patterns() -> None:
    base = cfw_schema()
    assert base.missing is not None and "BMD" in base.missing.columns
    merged = base.merged(PhenoSchema.from_ranges({"BMD": (1.0, 3.0)}))
    assert merged.missing is not None and "BMD" not in merged.missing.columns
    assert "TA" in merged.missing.columns
