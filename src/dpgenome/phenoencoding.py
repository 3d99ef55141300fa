"""How the phenotype synthesizer sees a phenotype table: the public schema of its columns,
their batches, and the encoding of values to categories and back.

- :class:`PhenoSchema` (public): each column's kind and bins (quantiles of a public table,
  a public value set or level set, or 0/1); :func:`cfw_schema` is the shipped CFW one.
- :func:`group_columns` (names only): the context batch and the batches of correlated
  traits; :func:`rebuilt_columns`: one-hot copies rebuilt from their parent.
- :class:`Encoding`: values -> category codes (missing is one more category) and back,
  drawing a continuous value uniformly inside its bin; :func:`encoded_as_missing` names the
  values a schema cannot hold.
"""

from __future__ import annotations

import functools
import gzip
import importlib.resources
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np
import pandas as pd

from dpgenome.cohort import PhenoType, infer_pheno_types
from dpgenome.errors import ConfigError
from dpgenome.missingness import (
    MissingPatterns,
)
from dpgenome.nesting import (
    Nesting,
    derived_columns,
    nested_in,
    public_nestings,
    without_nestings,
)

#: trait groups of the CFW schema (Parker et al. 2016), by column name; first match wins
GROUP_PATTERNS: tuple[tuple[str, str], ...] = (
    ("design", r"round|FCbox|PPIbox|methcage|methcycle|cageid|experimenters|earpunch"),
    ("design", r"discard|mixup|FCage|PPIage|methage|glucoseage|sacage"),
    ("body", r"bw\d*|PPIweight|sacweight|taillength|testisweight"),
    ("bone", r"BMD|abBMD|abnormalbone|tibia"),
    ("muscle", r"TA|EDL|gastroc|plantaris|soleus"),
    ("physiology", r"fastglucose|mwpc"),
    ("fear", r"Av.*|D3\.\d+|PreTrainD1|altcontextbin|d1tonebin|pretrainbin|avgnostim|FC.*|deaf"),
    ("ppi", r"pp.*|p120.*|PPI.*|startle"),
    ("meth_d1", r"D1.*"),
    ("meth_d2", r"D2.*"),
    ("meth_d3", r"D3.*"),
)

ColumnKind = Literal["bins", "values", "levels", "binary"]

#: the phenotype model's input carrying a row's missingness pattern (:mod:`dpgenome.missingness`):
#: a categorical column of the context batch (its levels: the pattern indices), never output
PATTERN_COLUMN = "(missingness pattern)"

#: even steps of a column's within-bin shape (:func:`shape_grid`)
SHAPE_POINTS = 200


# ---------------------------------------------------------------------------- schema


@dataclass(frozen=True)
class ColumnSchema:
    """How one column is discretised. ``edges`` (bins: ``n_bins + 1`` increasing edges,
    outer ones included), ``values`` (few numeric values), ``levels`` (categorical).

    ``quantiles`` at ``probabilities`` (bins only, optional): the column's quantile function
    from the same public table as the edges, on an even grid refined geometrically towards
    both tails (:func:`shape_grid`). A value decoded from a bin is drawn from that public
    distribution restricted to the bin rather than uniformly across it: a heavy-tailed
    column's outer bin spans its public maximum, and a uniform draw there triples the sd of
    ``avgnostim`` (mean shift 0.39 sd with the exact bin shares). DP bins carry the shape of
    their released fine histogram (:func:`dp_bins`); without ``quantiles`` (declared ranges)
    the draw is uniform."""

    kind: ColumnKind
    edges: tuple[float, ...] = ()
    values: tuple[float, ...] = ()
    levels: tuple[str, ...] = ()
    integer: bool = False
    source: str = "public"
    quantiles: tuple[float, ...] = ()
    probabilities: tuple[float, ...] = ()
    #: the public table's share of each category (missing last; smoothed), the marginal the
    #: model starts from (:attr:`PhenotypeConfig.public_prior`); empty: uniform
    prior: tuple[float, ...] = ()

    @property
    def n_categories(self) -> int:
        """Categories including the final "missing" one."""
        if self.kind == "bins":
            return len(self.edges)  # (len - 1) bins + missing
        if self.kind == "values":
            return len(self.values) + 1
        if self.kind == "levels":
            return len(self.levels) + 1
        return 3


@dataclass(frozen=True)
class PhenoSchema:
    """Public discretisation of phenotype columns (see the module docstring)."""

    columns: Mapping[str, ColumnSchema]
    source: str
    #: the public table's missingness patterns (which columns are missing together), the
    #: domain of the DP pattern release (:mod:`dpgenome.missingness`); None: no public table
    missing: MissingPatterns | None = None
    #: columns nested in another in the public table (cages in rounds: :mod:`dpgenome.nesting`),
    #: rebuilt from their parent rather than modelled
    nested: Mapping[str, Nesting] = field(default_factory=dict)

    @classmethod
    def from_public_table(
        cls,
        table: pd.DataFrame,
        types: Mapping[str, PhenoType] | None = None,
        *,
        n_bins: int = 20,
        max_values: int = 32,
        shape_points: int = SHAPE_POINTS,
        source: str = "public table",
    ) -> PhenoSchema:
        """Schema from a **public** table: quantile bin edges (and the within-bin shape:
        quantiles at :func:`shape_grid`, :class:`ColumnSchema`), value and level sets, and
        each column's category shares (the model's starting marginal)."""
        if n_bins < 2:
            raise ConfigError(f"n_bins must be >= 2, got {n_bins}")
        types = dict(types or infer_pheno_types(table))
        cols: dict[str, ColumnSchema] = {}
        for name in table.columns:
            t = types.get(name) or infer_pheno_types(table[[name]])[name]
            col = table[name]
            if t == PhenoType.BINARY:
                cols[name] = ColumnSchema("binary")
            elif t == PhenoType.CATEGORICAL:
                levels = sorted(col.dropna().astype(str).unique())
                if levels:
                    cols[name] = ColumnSchema("levels", levels=tuple(levels))
            else:
                x = pd.to_numeric(col, errors="coerce").to_numpy(np.float64)
                x = x[np.isfinite(x)]
                if len(x) == 0:
                    continue
                uniq = np.unique(x)
                integer = bool(np.all(uniq == np.round(uniq)))
                if len(uniq) <= max_values:
                    cols[name] = ColumnSchema(
                        "values", values=tuple(uniq.tolist()), integer=integer
                    )
                else:
                    cols[name] = quantile_bins(x, n_bins, shape_points, integer=integer)
        for name, spec in cols.items():
            counts = np.bincount(_encode_column(table[name], spec), minlength=spec.n_categories)
            prior = (counts + 0.5) / (counts.sum() + 0.5 * spec.n_categories)
            cols[name] = replace(spec, prior=tuple(prior.tolist()))
        return cls(cols, source, MissingPatterns.of(table), public_nestings(table))

    @classmethod
    def from_ranges(
        cls, ranges: Mapping[str, tuple[float, float]], *, n_bins: int = 20
    ) -> PhenoSchema:
        """Schema from declared ``(low, high)`` ranges: equal-width bins."""
        cols = {}
        for name, (lo, hi) in ranges.items():
            if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
                raise ConfigError(f"declared range of {name!r} must be finite with low < high")
            cols[name] = ColumnSchema("bins", edges=tuple(np.linspace(lo, hi, n_bins + 1).tolist()))
        return cls(cols, "declared ranges")

    def merged(self, other: PhenoSchema) -> PhenoSchema:
        """This schema with ``other``'s columns added (``other`` wins on conflicts; the
        missingness patterns are ``other``'s if it has them, else this schema's without the
        columns ``other`` redefines; so are the nestings, with ``other``'s added)."""
        if other.missing is not None:
            missing: MissingPatterns | None = other.missing
        else:
            missing = None if self.missing is None else self.missing.without(other.columns)
        return PhenoSchema(
            {**self.columns, **other.columns},
            f"{self.source} + {other.source}",
            missing,
            {**without_nestings(self.nested, other.columns), **other.nested},
        )


@functools.lru_cache(maxsize=4)
def cfw_schema(n_bins: int = 20) -> PhenoSchema:
    """The public schema of the CFW phenotype table (Parker et al. 2016, Dryad, CC0), from
    the copy shipped with dpgenome: public information, free of privacy cost."""
    raw = importlib.resources.files("dpgenome").joinpath("data/pheno.csv.gz").read_bytes()
    import io as _io

    table = pd.read_csv(_io.BytesIO(gzip.decompress(raw)))
    table = table.drop(columns=[c for c in ("id", "discard", "mixup") if c in table])
    types = infer_pheno_types(table, {"abBMD": PhenoType.BINARY, "SW16": PhenoType.BINARY})
    return PhenoSchema.from_public_table(table, types, n_bins=n_bins, source="public CFW table")


def shape_grid(n: int, points: int) -> np.ndarray:
    """Probabilities at which a column's shape is kept: ``points`` even steps, plus steps
    halving from ``1 / points`` towards each tail down to ``1 / n`` (``n`` observed values),
    so that no interpolated segment in a tail spans much more than one observation."""
    if points < 1:
        return np.array([0.0, 1.0])
    tail = 1.0 / points * 0.5 ** np.arange(1, 64)
    tail = tail[tail >= 1.0 / max(n, 1)]
    return np.unique(np.concatenate([np.linspace(0.0, 1.0, points + 1), tail, 1.0 - tail]))


def quantile_bins(
    x: np.ndarray, n_bins: int, shape_points: int, *, integer: bool = False, source: str = "public"
) -> ColumnSchema:
    """Bins at the quantiles of the observed values ``x`` (at least one), with their shape."""
    edges = np.unique(np.quantile(x, np.linspace(0, 1, n_bins + 1)))
    if len(edges) < 2:
        edges = np.array([edges[0] - 0.5, edges[0] + 0.5])
    probs = shape_grid(len(x), shape_points)
    return ColumnSchema(
        "bins",
        edges=tuple(edges.tolist()),
        integer=integer,
        source=source,
        quantiles=tuple(np.quantile(x, probs).tolist()),
        probabilities=tuple(probs.tolist()),
    )


def rebuilt_columns(columns: Sequence[str], schema: PhenoSchema) -> dict[str, str]:
    """Columns rebuilt from a parent column after sampling rather than modelled, each with
    its parent: one-hot copies (:func:`derived_columns`) and columns nested in another in the
    public table (cages in rounds, :mod:`dpgenome.nesting`). Names and the public schema only."""
    out = {c: parent for c, (parent, _level) in derived_columns(columns).items()}
    for c, nesting in nested_in(columns, schema.nested).items():
        if c not in out and nesting.parent not in out:
            out[c] = nesting.parent
    return out


def group_columns(
    columns: Sequence[str],
    context: Sequence[str] = (),
    *,
    max_batch_columns: int = 12,
) -> list[list[str]]:
    """Batches of modelled columns from their names only (public schema knowledge).

    The first batch is the context: ``context`` (analysis phenotype and covariates, always
    included) then the design group, up to ``max_batch_columns`` (``context`` itself may
    exceed it); the other groups follow :data:`GROUP_PATTERNS`, chunked in name order.
    """
    if max_batch_columns < 1:
        raise ConfigError(f"max_batch_columns must be >= 1, got {max_batch_columns}")
    groups: dict[str, list[str]] = {}
    for name in columns:
        if name in context:
            continue
        label = next((g for g, pattern in GROUP_PATTERNS if re.fullmatch(pattern, name)), "other")
        groups.setdefault(label, []).append(name)
    head = list(dict.fromkeys(context))
    design = sorted(groups.pop("design", []))
    room = max(0, max_batch_columns - len(head))
    head += design[:room]
    rest = design[room:]
    batches = [head] if head else []
    for cols in [rest, *[sorted(v) for v in groups.values()]]:
        for i in range(0, len(cols), max_batch_columns):
            batches.append(cols[i : i + max_batch_columns])
    return [b for b in batches if b]


#: the source of DP bins that found no range: the column is sampled missing
NO_RANGE = "dp: no range found"


# ---------------------------------------------------------------------------- encoding


@dataclass(frozen=True)
class Encoding:
    """Columns, their schema, their batch layout: everything public about the model."""

    batches: tuple[tuple[str, ...], ...]
    schema: Mapping[str, ColumnSchema]
    types: Mapping[str, PhenoType]
    derived: Mapping[str, tuple[str, object]]
    columns: tuple[str, ...]  # output column order (as in the input table)
    #: columns rebuilt from their parent's sampled level and a public table (cages in rounds)
    nested: Mapping[str, Nesting] = field(default_factory=dict)

    def parent_of(self, column: str) -> str:
        """The modelled column ``column`` is rebuilt from, or ``column`` if it is modelled."""
        if column in self.derived:
            return str(self.derived[column][0])
        return self.nested[column].parent if column in self.nested else column

    @property
    def max_columns(self) -> int:
        return max(len(b) for b in self.batches)

    @property
    def max_categories(self) -> int:
        return max(self.schema[c].n_categories for b in self.batches for c in b)

    def encode(self, table: pd.DataFrame) -> np.ndarray:
        """Category codes ``[n, n_batches, max_columns]`` (-1 = padding)."""
        n = len(table)
        out = np.full((n, len(self.batches), self.max_columns), -1, dtype=np.int64)
        for b, cols in enumerate(self.batches):
            for j, c in enumerate(cols):
                out[:, b, j] = _encode_column(table[c], self.schema[c])
        return out

    def missing(self, table: pd.DataFrame, columns: Sequence[str]) -> np.ndarray:
        """(n, len(columns)) bool: where each column's code is "missing" (a missing value,
        or one the schema cannot hold: :func:`encoded_as_missing`)."""
        out = np.zeros((len(table), len(columns)), dtype=bool)
        for j, c in enumerate(columns):
            out[:, j] = _encode_column(table[c], self.schema[c]) == self.schema[c].n_categories - 1
        return out

    def decode(self, codes: np.ndarray, rng: np.random.Generator) -> pd.DataFrame:
        n = codes.shape[0]
        data: dict[str, object] = {}
        for b, cols in enumerate(self.batches):
            for j, c in enumerate(cols):
                data[c] = _decode_column(codes[:, b, j], self.schema[c], rng)
        for name, (parent, level) in self.derived.items():
            p = pd.Series(data[parent])
            hit = p.astype(str) == str(level) if isinstance(level, str) else p == level
            col = np.array(hit.to_numpy(dtype=np.float64), copy=True)
            col[p.isna().to_numpy()] = np.nan
            data[name] = col
        for name, nesting in self.nested.items():
            data[name] = nesting.draw(pd.Series(data[nesting.parent]), rng)
        return pd.DataFrame({c: data[c] for c in self.columns}, index=pd.RangeIndex(n))


def _encode_column(col: pd.Series, spec: ColumnSchema) -> np.ndarray:
    return _encode(col, spec)[0]


def _encode(col: pd.Series, spec: ColumnSchema) -> tuple[np.ndarray, np.ndarray]:
    """Category codes of ``col`` (the last one is "missing") and the mask of its observed
    values that the encoding turns into missing: a level outside ``spec.levels``, a value of
    a binary column other than 0 / 1, a value of a numeric column that is not a finite
    number. Numeric values beyond the bins fall into the outer bins (not lost)."""
    missing = spec.n_categories - 1
    observed = col.notna().to_numpy(dtype=bool)
    if spec.kind == "levels":
        lookup = {v: i for i, v in enumerate(spec.levels)}
        codes = col.astype(object).map(
            lambda v: lookup.get(str(v), missing) if pd.notna(v) else missing
        )
        out = codes.to_numpy(dtype=np.int64)
        return out, observed & (out == missing)
    x = pd.to_numeric(col, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    ok = np.isfinite(x)
    out = np.full(len(x), missing, dtype=np.int64)
    if spec.kind == "binary":
        out[ok & (x == 0)] = 0
        out[ok & (x == 1)] = 1  # other values cannot be binary: treated as missing
    elif spec.kind == "values":
        vals = np.asarray(spec.values)
        nearest = np.abs(x[ok, None] - vals[None, :]).argmin(axis=1)
        out[ok] = nearest
    else:
        inner = np.asarray(spec.edges[1:-1])
        out[ok] = np.searchsorted(inner, x[ok], side="right")
    return out, observed & (out == missing)


#: why an observed value becomes missing when encoded, by the kind of its column's schema:
#: (the reason, as ``inspect --json`` names it; the phrase of messages; what to do)
ENCODED_AS_MISSING: Mapping[ColumnKind, tuple[str, str, str]] = {
    "levels": (
        "level not in the schema",
        "have a level not in the schema",
        "declare the column's levels in a --pheno-schema file or recode the values",
    ),
    "binary": (
        "not 0 or 1",
        "are not 0 or 1",
        "recode the column to 0 / 1 or declare its type (and levels) in a --pheno-schema file",
    ),
    "values": ("not a finite number", "are not finite numbers", "recode the values"),
    "bins": ("not a finite number", "are not finite numbers", "recode the values"),
}


@dataclass(frozen=True)
class EncodedMissing:
    """Observed values of one phenotype column that the encoding turns into missing (the
    synthesizer then trains on them as missing): how many and why, never a value or a
    sample (:func:`encoded_as_missing`). ``refused``: the cohort's type of the column is not
    its schema's (a 1/2-coded column of the CFW schema's binaries is continuous by its values),
    so :func:`fit_phenotypes` refuses the column rather than train on it. ``typed_by``: what
    fixes the column's type, as :func:`dpgenome.phenoschema.type_sources` names it."""

    column: str
    count: int
    kind: ColumnKind
    refused: bool = False
    typed_by: str = ""

    @property
    def reason(self) -> str:
        return ENCODED_AS_MISSING[self.kind][0]

    @property
    def remedy(self) -> str:
        return ENCODED_AS_MISSING[self.kind][2]

    def describe(self) -> str:
        """The count and the reason, for messages (no value, no sample)."""
        typed = f" (type from {self.typed_by})" if self.typed_by else ""
        return f"{self.count} observed value(s) {ENCODED_AS_MISSING[self.kind][1]}{typed}"

    def to_dict(self) -> dict[str, object]:
        return {
            "name": self.column,
            "count": self.count,
            "reason": self.reason,
            "refused": self.refused,
            "typed_by": self.typed_by,
        }


def encoded_as_missing(
    table: pd.DataFrame,
    schema: Encoding | Mapping[str, ColumnSchema],
    types: Mapping[str, PhenoType] | None = None,
) -> dict[str, EncodedMissing]:
    """Per column of ``table`` that ``schema`` encodes (an :class:`Encoding`, or column specs
    such as :func:`public_column_specs`), the observed values its encoding turns into
    missing, when there are any: counts only (:func:`_encode`, the encoding itself).
    ``types`` (the cohort's): mark the columns :func:`fit_phenotypes` refuses instead."""
    specs = schema.schema if isinstance(schema, Encoding) else schema
    out = {}
    for c, spec in specs.items():
        if c not in table.columns:
            continue
        k = int(_encode(table[c], spec)[1].sum())
        if k:
            refused = types is not None and type_conflict(spec, types.get(c))
            out[c] = EncodedMissing(c, k, spec.kind, refused)
    return out


def type_conflict(spec: ColumnSchema, ptype: PhenoType | None) -> bool:
    """The cohort's type of a column is not its schema entry's (:func:`fit_phenotypes`
    refuses the column)."""
    return (ptype == PhenoType.CATEGORICAL) != (spec.kind == "levels") or (
        spec.kind == "binary" and ptype not in (PhenoType.BINARY, None)
    )


def _decode_column(codes: np.ndarray, spec: ColumnSchema, rng: np.random.Generator) -> np.ndarray:
    missing = codes == spec.n_categories - 1
    safe = np.where(missing, 0, codes)
    if spec.kind == "levels":
        out = np.asarray(spec.levels, dtype=object)[safe]
        out[missing] = None
        return out
    if spec.kind == "binary":
        x = safe.astype(np.float64)
    elif spec.kind == "values":
        x = np.asarray(spec.values, dtype=np.float64)[safe]
    elif spec.source == NO_RANGE:
        return np.full(len(codes), np.nan)
    else:
        edges = np.asarray(spec.edges)
        u = rng.random(len(codes))
        x = _within_bins(edges, safe, spec.quantiles, spec.probabilities, u)
        if spec.integer:  # rounded, kept inside its bin when the bin holds an integer
            top = safe == len(edges) - 2
            lo = np.ceil(edges[safe])
            hi = np.where(top, np.floor(edges[safe + 1]), np.ceil(edges[safe + 1]) - 1)
            x = np.where(hi >= lo, np.clip(np.round(x), lo, hi), np.round(x))
    x[missing] = np.nan
    return x


def _within_bins(
    edges: np.ndarray,
    bins: np.ndarray,
    quantiles: Sequence[float],
    probabilities: Sequence[float],
    u: np.ndarray,
) -> np.ndarray:
    """Values in ``[edges[b], edges[b + 1]]`` for bin indices ``bins`` from uniforms ``u``:
    through the piecewise-linear quantile function (``quantiles`` at ``probabilities``)
    restricted to the bin (the probabilities ``p`` with ``lo <= Q(p) < hi``), or uniformly
    across the bin when there is no shape or the shape puts no mass in it."""
    lo, hi = edges[bins], edges[bins + 1]
    uniform = lo + u * (hi - lo)
    q = np.asarray(quantiles, dtype=np.float64)
    if len(q) < 2:
        return uniform
    p = np.asarray(probabilities, dtype=np.float64)

    def cdf_left(v: np.ndarray) -> np.ndarray:  # inf {p : Q(p) >= v}
        j = np.searchsorted(q, v, side="left")  # q[j - 1] < v <= q[j] inside the range
        i = np.clip(j, 1, len(q) - 1)
        with np.errstate(invalid="ignore", divide="ignore"):
            t = np.clip((v - q[i - 1]) / (q[i] - q[i - 1]), 0.0, 1.0)
        inside = p[i - 1] + t * (p[i] - p[i - 1])
        return np.where(j == 0, 0.0, np.where(j == len(q), 1.0, inside))

    f_lo = cdf_left(lo)
    # the top bin is closed: it takes the distribution's right end
    f_hi = np.where((bins == len(edges) - 2) & (hi >= q[-1]), 1.0, cdf_left(hi))
    shaped = np.clip(np.interp(f_lo + u * (f_hi - f_lo), p, q), lo, hi)
    return np.where(f_hi > f_lo, shaped, uniform)
