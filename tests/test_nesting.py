"""Columns rebuilt from a parent (dpgenome.nesting): cages nested in rounds."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from dpgenome.cohort import PhenoType, infer_pheno_types
from dpgenome.nesting import (
    Nesting,
    derived_columns,
    nested_in,
    nesting_figures,
    public_nestings,
)
from dpgenome.phenoencoding import PhenoSchema, cfw_schema, rebuilt_columns
from dpgenome.phenomodel import fit_pheno_model
from dpgenome.phenoschema import read_pheno_schema, type_sources
from dpgenome.phenotypes import PhenotypeConfig, fit_phenotypes, missingness_domain
from dpgenome.simulate import load_real_phenotypes

NAN = np.nan


def _public() -> pd.DataFrame:
    # round A: cages 1 (x3), 2 (x2); round B: cage 3 (x4); one row without a cage
    return pd.DataFrame(
        {
            "round": ["A"] * 5 + ["B"] * 4 + ["A", NAN],
            "cage": [1.0, 1.0, 1.0, 2.0, 2.0, 3.0, 3.0, 3.0, 3.0, NAN, NAN],
        }
    )


def _sizes(values: np.ndarray) -> dict[float, int]:
    vals, counts = np.unique(values[~pd.isna(values)].astype(float), return_counts=True)
    return dict(zip(vals.tolist(), counts.tolist(), strict=True))


def test_nesting_of__each_parent_level_with_its_children_and_their_public_counts() -> None:
    n = Nesting.of(_public(), "cage", "round")
    assert n is not None and n.parent == "round" and n.numeric
    assert dict(n.groups) == {"A": ((1.0, 2.0), (3, 2)), "B": ((3.0,), (4,))}


def test_nesting_of__none_unless_nested() -> None:
    t = _public()
    assert Nesting.of(t, "cage", "batch") is None  # no such column
    assert Nesting.of(t.assign(cage=NAN), "cage", "round") is None  # no row with both
    spread = t.copy()
    spread.loc[5, "cage"] = 1.0  # cage 1 now in rounds A and B
    assert Nesting.of(spread, "cage", "round") is None


def test_draw__children_filled_to_their_public_counts_within_the_parent() -> None:
    n = Nesting.of(_public(), "cage", "round")
    assert n is not None
    parent = pd.Series(["A"] * 4 + ["B"] * 3 + [NAN, "C"])
    for seed in range(20):
        out = n.draw(parent, np.random.default_rng(seed))
        assert out.dtype == np.float64
        assert np.isin(out[:4], [1.0, 2.0]).all() and (out[4:7] == 3.0).all()
        assert np.isnan(out[7]) and np.isnan(out[8])  # missing parent; a level without cages
        a = _sizes(out[:4])
        # one cage full at its public count, the other holds the rest
        assert a in ({1.0: 3, 2.0: 1}, {2.0: 2, 1.0: 2})


def test_draw__more_rows_than_public_places_go_round_again() -> None:
    n = Nesting.of(_public(), "cage", "round")
    assert n is not None
    out = n.draw(np.array(["A"] * 12, dtype=object), np.random.default_rng(0))
    sizes = _sizes(out)
    assert sum(sizes.values()) == 12 and sizes[1.0] >= 6 and sizes[2.0] >= 4


def test_draw__text_children_stay_text() -> None:
    t = _public().assign(cage=lambda d: d["cage"].map({1.0: "c1", 2.0: "c2", 3.0: "c3"}))
    n = Nesting.of(t, "cage", "round")
    assert n is not None and not n.numeric
    out = n.draw(pd.Series(["B", "A"]), np.random.default_rng(0))
    assert out[0] == "c3" and out[1] in ("c1", "c2")


def test_cfw_schema__cages_nested_in_rounds() -> None:
    schema = cfw_schema()
    n = schema.nested["cageid"]
    assert n.parent == "round" and len(n.groups) == 25
    assert sum(len(v) for v, _ in n.groups.values()) == 298
    assert sum(sum(c) for _, c in n.groups.values()) == 1073  # rows with both
    assert rebuilt_columns(["round", "cageid", "SW16", "bw1"], schema) == {
        "cageid": "round",
        "SW16": "round",
    }
    assert rebuilt_columns(["cageid", "bw1"], schema) == {}  # no round: cageid modelled
    assert nested_in(["cageid"], schema.nested) == {}
    assert public_nestings(pd.DataFrame({"x": [1]})) == {}
    assert derived_columns(["round", "SW3"]) == {"SW3": ("round", "SW3")}


def test_schema__a_declared_or_redefined_cage_is_not_the_public_one(tmp_path) -> None:
    path = tmp_path / "schema.yaml"
    path.write_text("columns:\n  cageid: {type: categorical, levels: [x, y]}\n")
    resolved = PhenotypeConfig(declared=read_pheno_schema(path)).resolved_schema()
    assert "cageid" not in resolved.nested
    merged = cfw_schema().merged(PhenoSchema.from_ranges({"cageid": (0.0, 1.0)}))
    assert "cageid" not in merged.nested
    assert "cageid" in cfw_schema().merged(PhenoSchema.from_ranges({"bw1": (0.0, 1.0)})).nested


@pytest.fixture(scope="module")
def cfw_members():
    """300 mice of the public CFW table with abBMD observed (an analysis subset)."""
    t = load_real_phenotypes().drop(columns=["id", "discard", "mixup"])
    t = t[t["abBMD"].notna()].sample(300, random_state=1).reset_index(drop=True)
    types = infer_pheno_types(t, {"abBMD": PhenoType.BINARY, "SW16": PhenoType.BINARY})
    return t, types


def _check_nested(synth: pd.DataFrame) -> None:
    public = cfw_schema().nested["cageid"]
    figures = nesting_figures(synth, "cageid", public)
    assert figures["outside"] == 0 and figures["split"] == 0 and figures["lone"] < 0.1
    both = synth[["cageid", "round"]].dropna()
    assert len(both) > 0
    for level, rows in both.groupby("round"):
        cages, counts = public.groups[str(level)]
        assert set(rows["cageid"]) <= set(cages)  # real cages of that round only
        sizes = rows["cageid"].value_counts()
        allowed = dict(zip(cages, counts, strict=True))
        # while a round has no more rows than public places, no cage holds more than its
        # public count, and at most one cage of the round is partly filled
        if len(rows) <= sum(counts):
            assert all(sizes[c] <= allowed[c] for c in sizes.index)
            assert sum(sizes[c] < allowed[c] for c in sizes.index) <= 1
    assert synth["cageid"][synth["round"].isna()].isna().all()
    assert synth["cageid"][synth["round"].notna()].notna().all()


def test_fit_phenotypes__cages_rebuilt_from_the_sampled_round(cfw_members) -> None:
    table, types = cfw_members
    complete = ("abBMD", "SW16")
    config = PhenotypeConfig(steps=20, expected_batch_size=128, seed=3)
    model = fit_phenotypes(
        table, types, config, noise_multiplier=None, context=complete, complete=complete
    )
    assert model.details["nested_columns"] == {"cageid": "round"}
    assert all("cageid" not in b for b in model.encoding.batches)
    synth = model.sample(600, seed=4, complete=complete)
    assert list(synth.columns) == list(table.columns)
    nesting = cfw_schema().nested["cageid"]
    _check_nested(synth)
    # modelled as a number (as before stop 51): made-up cages, cages across rounds
    number = fit_phenotypes(
        table,
        types,
        replace(config, nest_columns=False),
        noise_multiplier=None,
        context=complete,
        complete=complete,
    )
    assert number.details["nested_columns"] == {}
    figures = nesting_figures(number.sample(600, seed=4, complete=complete), "cageid", nesting)
    assert figures["outside"] > 0.5 and figures["split"] > 0.05
    # the missingness release does not govern a column rebuilt from its parent (here round
    # is complete too: SW16, a one-hot copy of it, is)
    dom = missingness_domain(list(table.columns), config, complete)
    assert dom is not None and "cageid" not in dom.columns and "FCbox" in dom.columns


def test_simulator__cages_stay_in_their_rounds() -> None:
    table = load_real_phenotypes().drop(columns=["id"])
    model = fit_pheno_model(table)
    assert set(model.nested) == {"cageid"}
    synth = model.sample(700, np.random.default_rng(0))
    _check_nested(synth)


def test_nesting_figures__made_up_lone_and_split_children() -> None:
    n = Nesting.of(_public(), "cage", "round")
    assert n is not None
    table = pd.DataFrame(
        {"round": ["A", "A", "B", "B", "A", NAN], "cage": [1.0, 1.0, 3.0, 1.0, 9.0, 2.0]}
    )
    f = nesting_figures(table, "cage", n)
    # cage 1 in round B and the made-up cage 9 are outside; cages 1, 3, 9: 3 and 9 alone;
    # cage 1 in two rounds
    assert f["outside"] == pytest.approx(2 / 5)
    assert f["lone"] == pytest.approx(2 / 3) and f["split"] == pytest.approx(1 / 3)
    assert f["mean_size"] == pytest.approx(5 / 3)
    assert nesting_figures(table, "cage", n) == nesting_figures(
        table.astype({"cage": object}), "cage", n
    )


def test_type_sources__a_nested_column_is_typed_by_its_public_values(tmp_path) -> None:
    typed = type_sources(["round", "cageid", "SW2"], cfw_schema())
    assert typed == {
        "round": "public CFW table",
        "cageid": "nested in round (the public table's cageid values)",
        "SW2": "one-hot of round",
    }
    path = tmp_path / "schema.yaml"
    path.write_text("columns:\n  round: {type: categorical, levels: [A, B]}\n")
    declared = read_pheno_schema(path)
    typed = type_sources(["round", "cageid"], cfw_schema(), declared)
    assert typed == {"round": "schema.yaml", "cageid": "public CFW table"}
