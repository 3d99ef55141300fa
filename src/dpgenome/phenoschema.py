"""A declared phenotype schema: the public types and value domains of a cohort's phenotype
columns, read from a YAML file (``--pheno-schema FILE``) instead of from the members' data.

Under differential privacy every data-dependent choice must use public information or be
charged to the ledger. A column's type (0/1, continuous, categorical), its levels and its
range are such choices: read from the members' table, they are a statistic of the members.
The shipped CFW schema covers the CFW columns; this file covers the rest::

    # public knowledge of the phenotype table (no member data)
    strict: true                 # every column must be declared here or in the CFW schema
    columns:
      bmi:    {type: continuous, range: [10, 60]}   # equal-width bins over the range
      years:  {type: continuous, range: [18, 90], integer: true}   # whole numbers
      age:    continuous                            # no domain: DP bins (on the ledger)
      smoker: binary                                # values 0 / 1
      site:   {type: categorical, levels: [A, B, C]}
      parity: {type: continuous, values: [0, 1, 2, 3, 4]}
      sex:    {type: categorical, levels: [F, M], shares: [0.5, 0.5], missing: 0.01}

``shares`` (one per level, value, 0 / 1 or ``range`` bin) and ``missing`` (the share of missing
values) are public marginals, e.g. from a census or an earlier publication: the synthesizer's
marginal starts from them instead of uniform (:attr:`PhenotypeConfig.public_prior`), as the
CFW columns start from the public table's shares.

A declared column overrides the CFW schema's entry of the same name. The members' values are
checked against the declaration before any training (a level, a 0/1 or a listed value outside
it is an error naming the file, line and column); values outside a declared ``range`` fall
into the outer bins, as a fixed domain requires. The public CFW schema's types are checked
the same way at ingest (:func:`check_schema_domains`: a value other than 0 / 1 in one of its
0/1 columns is an error naming the line, not a refusal after the ingest). Columns of the
table that neither the file nor the CFW schema declares keep their type read from the data,
and the release's ledger names them as an assumption (``strict: true`` refuses them
instead).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dpgenome.cohort import Cohort, PhenoType
from dpgenome.config import config_key_lines, load_config_file
from dpgenome.errors import ConfigError, InputError
from dpgenome.io.pheno import find_pheno, first_pheno_line
from dpgenome.nesting import derived_columns, nested_in, without_nestings
from dpgenome.phenoencoding import (
    ColumnSchema,
    EncodedMissing,
    PhenoSchema,
    cfw_schema,
    encoded_as_missing,
    type_conflict,
)
from dpgenome.phenotypes import PhenotypeConfig, public_column_specs

log = logging.getLogger(__name__)

_TOP_KEYS = ("columns", "strict")
_COLUMN_KEYS = (
    "type",
    "range",
    "levels",
    "values",
    "n_bins",
    "integer",
    "shares",
    "missing",
)
_TYPES = {t.value: t for t in PhenoType}


@dataclass(frozen=True)
class DeclaredSchema:
    """What a ``--pheno-schema`` file declares. ``schema`` holds the columns with a domain
    (levels, values, range, or 0/1); ``unbinned`` the continuous ones declared without one
    (they get DP bins); ``types`` every declared column's type."""

    types: Mapping[str, PhenoType]
    schema: PhenoSchema
    strict: bool
    source: str
    digest: str

    @property
    def unbinned(self) -> frozenset[str]:
        return frozenset(self.types) - frozenset(self.schema.columns)

    def resolved(self, base: PhenoSchema) -> PhenoSchema:
        """``base`` (the public CFW schema) with every declared column replaced by its
        declaration; a continuous column declared without a domain leaves the schema (it
        gets DP bins rather than the CFW bins of a column that happens to share its name)."""
        cols = {c: s for c, s in base.columns.items() if c not in self.types}
        cols.update(self.schema.columns)
        # a declared column is not the public table's column of that name: its missingness
        # is no longer governed by the public patterns (dpgenome.missingness)
        missing = None if base.missing is None else base.missing.without(self.types)
        nested = without_nestings(base.nested, self.types)  # nor nested in the public way
        return PhenoSchema(cols, f"{base.source} + {self.source}", missing, nested)

    def record(self) -> dict[str, Any]:
        """JSON-safe summary (configuration records and cache keys)."""
        return {"source": self.source, "sha256": self.digest, "columns": len(self.types)}

    def apply(self, cohort: Cohort, base: PhenoSchema | None = None) -> Cohort:
        """``cohort`` with the declared types, after checking its values against the
        declaration (and, when ``strict``, that every column is declared here or in
        ``base``, by default the public CFW schema). Raises :class:`InputError` naming the
        cohort's phenotype file."""
        base = cfw_schema() if base is None else base
        table = cohort.phenotypes
        where = pheno_file(cohort)
        absent = sorted(set(self.types) - set(table.columns))
        if absent:
            log.warning(
                "%s declares %d column(s) the cohort does not have: %s",
                self.source,
                len(absent),
                ", ".join(absent[:8]),
            )
        table = table.copy()
        for name in table.columns:
            if name not in self.types:
                continue
            if self.types[name] == PhenoType.CATEGORICAL:
                table[name] = _as_levels(table[name])
            spec = self.schema.columns.get(name)
            _check_column(table[name], name, self.types[name], spec, where, list(cohort.sample_ids))
        if self.strict:
            undeclared = typed_from_data(table.columns, self.resolved(base), self)
            if undeclared:
                raise InputError(
                    f"{len(undeclared)} phenotype column(s) are declared neither in "
                    f"{self.source} nor in the public CFW schema, and the file is strict: "
                    f"{', '.join(undeclared[:8])}{' ...' if len(undeclared) > 8 else ''}; "
                    "declare them (or drop them from the table)",
                    file=where,
                    column=undeclared[0],
                )
        types = dict(cohort.pheno_types)
        types.update({c: t for c, t in self.types.items() if c in table.columns})
        return replace(cohort, phenotypes=table, pheno_types=types)


def type_sources(
    columns: Iterable[str], schema: PhenoSchema, declared: DeclaredSchema | None = None
) -> dict[str, str]:
    """What fixes each column's type: the declaration file's name, ``one-hot of <parent>``
    or ``nested in <parent> (...)`` (rebuilt from its parent, not modelled:
    :mod:`dpgenome.nesting`), ``schema.source``, or ``"data"`` (read from the members'
    values: nothing public fixes it)."""
    cols = [str(c) for c in columns]
    derived = derived_columns(cols)
    declared_types = {} if declared is None else declared.types
    nested = nested_in(cols, without_nestings(schema.nested, declared_types))
    out = {}
    for c in cols:
        if c in declared_types:
            out[c] = declared.source  # type: ignore[union-attr]
        elif c in derived:
            out[c] = f"one-hot of {derived[c][0]}"
        elif c in nested:
            out[c] = f"nested in {nested[c].parent} (the public table's {c} values)"
        else:
            out[c] = schema.source if c in schema.columns else "data"
    return out


def typed_from_data(
    columns: Iterable[str], schema: PhenoSchema, declared: DeclaredSchema | None = None
) -> list[str]:
    """The modelled columns whose type nothing public fixes (:func:`type_sources`)."""
    return [c for c, src in type_sources(columns, schema, declared).items() if src == "data"]


def values_encoded_as_missing(
    cohort: Cohort, config: PhenotypeConfig | None = None
) -> list[EncodedMissing]:
    """The phenotype columns of ``cohort`` (declarations already applied) whose observed
    values the synthesizer's encoding under ``config`` (default: the public CFW schema) turns
    into missing -- a level outside a categorical column's public or declared levels, a
    value other than 0 / 1 of a binary column -- with the count, the reason and what types
    the column (:func:`type_sources`). The encoding :func:`dpgenome.phenotypes.fit_phenotypes`
    trains on, so ``dpgenome inspect`` and a release agree. Counts and names only."""
    config = PhenotypeConfig() if config is None else config
    table = cohort.phenotypes
    specs = public_column_specs(list(table.columns), cohort.pheno_types, config)
    base = replace(config, declared=None).resolved_schema()
    typed_by = type_sources(table.columns, base, config.declared)
    found = encoded_as_missing(table, specs, cohort.pheno_types)
    return [replace(lost, typed_by=typed_by[c]) for c, lost in found.items()]


def warn_values_encoded_as_missing(
    members: Cohort, config: PhenotypeConfig | None = None
) -> list[EncodedMissing]:
    """Log a warning per phenotype column of the training ``members`` with observed values
    the encoding turns into missing (:func:`values_encoded_as_missing`): the synthesizer
    trains on them as missing, so the synthetic column's missing share is inflated. Names
    and counts only (the log is not a release artefact, but a value is a person's). A column
    the synthesizer refuses (its type in the cohort is not the schema's) is left to that
    error."""
    found = [lost for lost in values_encoded_as_missing(members, config) if not lost.refused]
    for lost in found:
        log.warning(
            "phenotype column %r: %s: they are trained on as missing, so the synthetic "
            "column's missing share is inflated; %s",
            lost.column,
            lost.describe(),
            lost.remedy,
        )
    return found


def data_typed_assumption(columns: list[str]) -> str:
    """The ledger's line for columns typed from the members' data (empty list: none)."""
    shown = ", ".join(columns[:12]) + (
        f" and {len(columns) - 12} more" if len(columns) > 12 else ""
    )
    return (
        f"the type (0/1, continuous or categorical) of {len(columns)} phenotype column(s) was "
        f"read from the members' data and is treated as public: {shown}; declare them with "
        "--pheno-schema to remove this assumption"
    )


def read_pheno_schema(path: str | Path) -> DeclaredSchema:
    """Read and validate a phenotype schema file (the module docstring gives the form)."""
    p = Path(path)
    data = load_config_file(p, "phenotype schema file")
    lines = config_key_lines(p)
    unknown = sorted(set(map(str, data)) - set(_TOP_KEYS))
    if unknown:  # before the 'columns' check: a misspelt 'colums' is named with its line
        raise ConfigError(
            f"unknown key {unknown[0]!r}; valid keys: {', '.join(_TOP_KEYS)}",
            file=p,
            line=lines.get(unknown[0]),
            column=unknown[0],
        )
    if "columns" not in data:
        raise ConfigError("the top level must be a mapping with a 'columns' mapping", file=p)
    strict = data.get("strict", False)
    if not isinstance(strict, bool):
        raise ConfigError("'strict' must be true or false", file=p, line=lines.get("strict"))
    columns = data["columns"]
    if not isinstance(columns, dict) or not columns:
        raise ConfigError(
            "'columns' must map each column name to its type", file=p, line=lines.get("columns")
        )
    col_lines = config_key_lines(p, section="columns")
    types: dict[str, PhenoType] = {}
    specs: dict[str, ColumnSchema] = {}
    for raw_name, entry in columns.items():
        name = str(raw_name)
        if name in types:  # 2010 and "2010" are one column of the table
            raise ConfigError(
                f"column {name!r} is declared twice", file=p, line=col_lines.get(name), column=name
            )
        t, spec = _parse_column(entry, _ColumnErrors(p, col_lines.get(name), name))
        types[name] = t
        if spec is not None:
            specs[name] = spec
    canonical = json.dumps(
        {"strict": strict, "columns": {str(c): _canonical(e) for c, e in columns.items()}},
        sort_keys=True,
        default=str,
    )
    digest = hashlib.sha256(canonical.encode()).hexdigest()
    return DeclaredSchema(types, PhenoSchema(specs, p.name), strict, p.name, digest)


# ---------------------------------------------------------------------------- parsing


@dataclass(frozen=True)
class _ColumnErrors:
    file: Path
    line: int | None
    name: str

    def __call__(self, message: str) -> ConfigError:
        return ConfigError(
            f"column {self.name!r}: {message}", file=self.file, line=self.line, column=self.name
        )


def _canonical(entry: object) -> object:
    return {"type": entry} if isinstance(entry, str) else entry


def _numbers(value: object, what: str, err: _ColumnErrors) -> list[float]:
    if not isinstance(value, list) or not value:
        raise err(f"'{what}' must be a non-empty list of numbers")
    out = []
    for v in value:
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
            raise err(f"'{what}' holds {v!r}, not a finite number")
        out.append(float(v))
    return out


def _parse_column(entry: object, err: _ColumnErrors) -> tuple[PhenoType, ColumnSchema | None]:
    spec = _canonical(entry)
    if not isinstance(spec, dict):
        raise err("give a type (binary, continuous, categorical) or a mapping with 'type'")
    unknown = sorted(set(map(str, spec)) - set(_COLUMN_KEYS))
    if unknown:
        raise err(f"unknown key {unknown[0]!r}; valid keys: {', '.join(_COLUMN_KEYS)}")
    kind = _TYPES.get(str(spec.get("type", "")).strip().lower())
    if kind is None:
        raise err(f"type {spec.get('type')!r} is not one of {', '.join(_TYPES)}")
    domain = [k for k in ("range", "levels", "values") if k in spec]
    allowed = {
        PhenoType.BINARY: (),
        PhenoType.CATEGORICAL: ("levels",),
        PhenoType.CONTINUOUS: ("range", "values"),
    }[kind]
    bad = [k for k in domain if k not in allowed]
    if bad or len(domain) > 1:
        raise err(
            f"a {kind.value} column takes {' or '.join(allowed) or 'no domain'}, got "
            f"{', '.join(domain)}"
        )
    for key in ("n_bins", "integer"):
        if key in spec and "range" not in spec:
            raise err(f"'{key}' needs a 'range'")
    if "integer" in spec and not isinstance(spec["integer"], bool):
        raise err(f"'integer' must be true or false, got {spec['integer']!r}")
    col = _domain(kind, spec, err)
    if col is None:
        if "shares" in spec or "missing" in spec:
            raise err("'shares' and 'missing' need a domain (levels, values, range or binary)")
        return kind, None
    return kind, _with_prior(col, spec, err)


def _with_prior(col: ColumnSchema, spec: dict[str, Any], err: _ColumnErrors) -> ColumnSchema:
    """``col`` with the declared public marginal (``shares``, ``missing``) as its prior."""
    if "shares" not in spec and "missing" not in spec:
        return col
    k = col.n_categories - 1
    shares = np.full(k, 1.0 / k)
    if "shares" in spec:
        shares = np.asarray(_numbers(spec["shares"], "shares", err))
        if len(shares) != k or (shares < 0).any() or shares.sum() <= 0:
            raise err(f"'shares' must be {k} non-negative numbers, one per category")
        if (shares <= 1).all() and abs(shares.sum() - 1) > 0.01:  # proportions, mistyped?
            log.warning(
                "%s, line %s, column %s: 'shares' sum to %.4g, not 1; rescaled to sum to 1 "
                "(write proportions, percentages or counts)",
                err.file,
                err.line,
                err.name,
                shares.sum(),
            )
        shares = shares / shares.sum()
    missing = spec.get("missing", 0.0)
    if isinstance(missing, bool) or not isinstance(missing, int | float) or not 0 <= missing < 1:
        raise err(f"'missing' must be a share in [0, 1), got {missing!r}")
    prior = np.append((1.0 - missing) * shares, missing)
    prior = np.maximum(prior, 1e-3)  # a share of 0 would be a logit of -inf
    return replace(col, prior=tuple((prior / prior.sum()).tolist()))


def _domain(kind: PhenoType, spec: dict[str, Any], err: _ColumnErrors) -> ColumnSchema | None:
    if kind == PhenoType.BINARY:
        return ColumnSchema("binary", source="declared")
    if kind == PhenoType.CATEGORICAL:
        levels = spec.get("levels")
        if not isinstance(levels, list) or not levels:
            raise err(
                "a categorical column needs its public 'levels' (a private level set cannot "
                "be released)"
            )
        names = [_level_text(v, err) for v in levels]
        if len(set(names)) != len(names):
            raise err("'levels' lists a level twice")
        return ColumnSchema("levels", levels=tuple(names), source="declared")
    if "values" in spec:
        values = _numbers(spec["values"], "values", err)
        if len(set(values)) != len(values) or values != sorted(values):
            raise err("'values' must be increasing, each listed once")
        integer = all(v == round(v) for v in values)
        return ColumnSchema("values", values=tuple(values), integer=integer, source="declared")
    if "range" in spec:
        lo_hi = _numbers(spec["range"], "range", err)
        if len(lo_hi) != 2 or not lo_hi[0] < lo_hi[1]:
            raise err("'range' must be [low, high] with low < high")
        n_bins = spec.get("n_bins", 20)
        if isinstance(n_bins, bool) or not isinstance(n_bins, int) or not 2 <= n_bins <= 1000:
            raise err(f"'n_bins' must be an integer from 2 to 1000, got {n_bins!r}")
        edges = np.linspace(lo_hi[0], lo_hi[1], n_bins + 1)
        # whole numbers (an age in years, a count): drawn within a bin, then rounded
        integer = bool(spec.get("integer", False))
        if integer and math.floor(lo_hi[1]) < math.ceil(lo_hi[0]):
            raise err(f"'integer: true' but the range {lo_hi} holds no whole number")
        return ColumnSchema("bins", edges=tuple(edges.tolist()), integer=integer, source="declared")
    return None


# ---------------------------------------------------------------------------- checking


def pheno_file(cohort: Cohort) -> str:
    """The phenotype file of ``cohort`` (for messages)."""
    if cohort.source is None:
        return "phenotype table"
    src = Path(cohort.source)
    found = find_pheno(src if src.is_dir() else src.parent)
    return str(found or src)


def _number_text(v: float) -> str:
    """A number as a level's text, as in the schema file: ``1``, not ``1.0``."""
    return str(int(v)) if v == round(v) else repr(float(v))


def _level_text(value: object, err: _ColumnErrors) -> str:
    """A declared level as the text the data's levels are compared in (:func:`_as_levels`):
    ``1.0`` and ``1`` are ``'1'``; YAML's unquoted yes/no/true/null are refused, not read as
    ``'True'`` or ``'None'``."""
    if isinstance(value, bool) or value is None:
        raise err(
            f"'levels' holds {value!r} (YAML reads unquoted yes/no/true/false/null so): "
            "quote the level, e.g. 'yes'"
        )
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise err(f"'levels' holds {value!r}, not a level")
        return _number_text(value)
    if isinstance(value, str):
        return value
    raise err(f"'levels' holds {value!r}: give each level as text or a number")


def _as_levels(col: pd.Series) -> pd.Series:
    """A categorical column as text levels: numbers written as in the schema file (``1``, not
    ``1.0``), missing values ``None``."""
    if not pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col):
        return col.astype(object).where(col.notna(), None)
    x = col.to_numpy(dtype=np.float64, na_value=np.nan)
    text = [None if not math.isfinite(v) else _number_text(v) for v in x]
    return pd.Series(text, index=col.index, dtype=object)


def _check_column(
    col: pd.Series,
    name: str,
    kind: PhenoType,
    spec: ColumnSchema | None,
    where: str,
    ids: Sequence[str],
) -> None:
    """Values of ``col`` against the declaration. The error names the file, the column, how
    many values break it and the line of the first (no value is quoted: the message may end
    up in a log, and a value is a person's)."""
    present = col.notna().to_numpy(dtype=bool)
    if kind == PhenoType.CATEGORICAL:
        assert spec is not None
        bad = present & ~col.astype(object).isin(spec.levels).to_numpy(dtype=bool)
        problem = "level(s) not among the declared levels"
    else:
        x = pd.to_numeric(col.where(present), errors="coerce").to_numpy(dtype=np.float64)
        text = present & np.isnan(x)
        if text.any():
            bad, problem = text, f"text value(s) in a column declared {kind.value}"
        elif kind == PhenoType.BINARY:
            bad = present & ~np.isin(x, (0.0, 1.0))
            problem = "value(s) other than 0 / 1 in a column declared binary"
        elif spec is not None and spec.kind == "values":
            bad = present & ~np.isin(x, np.asarray(spec.values))
            problem = "value(s) outside the declared values"
        else:
            return
    if not bad.any():
        return
    line, first = _first_line(where, ids, bad)
    raise InputError(f"{int(bad.sum())} {problem}" + first, file=where, line=line, column=name)


def _first_line(where: str, ids: Sequence[str], bad: np.ndarray) -> tuple[int | None, str]:
    """The line of ``where`` (the phenotype file) holding the first of the rows ``bad``
    marks, and the phrase that points at it (the sample's position when the file cannot
    be read again): never the sample's id or value."""
    path = Path(where)
    rows = np.flatnonzero(bad)
    line = first_pheno_line(path, [str(ids[i]) for i in rows]) if path.is_file() else None
    if line is not None:
        return line, " (the first on this line)"
    return None, f" (the first is sample {int(rows[0]) + 1})"


#: the type a schema entry's kind fixes
_KIND_TYPE: Mapping[str, PhenoType] = {
    "binary": PhenoType.BINARY,
    "levels": PhenoType.CATEGORICAL,
    "bins": PhenoType.CONTINUOUS,
    "values": PhenoType.CONTINUOUS,
}


def schema_pheno_types(
    columns: Iterable[str], config: PhenotypeConfig | None = None
) -> dict[str, PhenoType]:
    """The type the public schema (with a declaration file's entries: ``config``'s
    :meth:`~PhenotypeConfig.resolved_schema`) fixes for each of ``columns`` it covers, by
    its entry's kind: ``binary`` 0/1, ``levels`` categorical, ``bins`` and ``values``
    continuous. Columns rebuilt from a parent (one-hot) and columns the schema lacks are
    left out."""
    config = PhenotypeConfig() if config is None else config
    schema = config.resolved_schema().columns
    cols = [str(c) for c in columns]
    derived = derived_columns(cols)
    return {c: _KIND_TYPE[schema[c].kind] for c in cols if c in schema and c not in derived}


def with_schema_types(cohort: Cohort, config: PhenotypeConfig | None = None) -> Cohort:
    """``cohort`` checked against the schema (:func:`check_schema_domains`) and typed by it
    (:func:`schema_pheno_types`) rather than by its values. A type read from the members'
    values is a statistic of the members: a schema ``values`` column whose members all hold
    0 or 1 reads as 0/1, and one member with another value makes it continuous, which
    switches an analysis phenotype between the 0/1 and the continuous release paths at no
    privacy cost on the ledger. Idempotent."""
    check_schema_domains(cohort, config)
    fixed = schema_pheno_types(cohort.phenotypes.columns, config)
    if all(cohort.pheno_types.get(c) == t for c, t in fixed.items()):
        return cohort
    return replace(cohort, pheno_types={**cohort.pheno_types, **fixed})


def check_schema_domains(cohort: Cohort, config: PhenotypeConfig | None = None) -> None:
    """Before any work: the cohort's values against the types and domains the public schema
    fixes -- the public CFW schema and a ``--pheno-schema`` file's declarations
    (``config.resolved_schema()``). A value other than 0 / 1 in a column the schema types
    0/1, a text value in a column it types numeric, or numbers in a column it types
    categorical would otherwise surface only when the synthesizer refuses the column, after
    the ingest; they are :class:`InputError` naming the phenotype file, the column and the
    line of the first such value (no value, no sample id: a value is a person's). Not
    errors: a level outside a categorical column's public levels (trained on as missing, a
    warning: :func:`warn_values_encoded_as_missing`) and a value beyond a range (its outer
    bin). A declared column's own check is :meth:`DeclaredSchema.apply`."""
    config = PhenotypeConfig() if config is None else config
    schema = config.resolved_schema().columns
    table = cohort.phenotypes
    wanted = [c for c in table.columns if c in schema]
    if not wanted:
        return
    base = replace(config, declared=None).resolved_schema().source
    where = pheno_file(cohort)
    ids = [str(i) for i in cohort.sample_ids]
    derived = derived_columns(list(table.columns))  # rebuilt from a parent, not modelled
    for name in wanted:
        spec = schema[name]
        col = table[name]
        ptype = cohort.pheno_types.get(name)
        if spec.source == "declared" and config.declared is not None:
            who = f"the --pheno-schema file {config.declared.source}"
        else:
            who = "the public CFW schema" if base == "public CFW table" else base
        present = col.notna().to_numpy(dtype=bool)
        x = pd.to_numeric(col.where(present), errors="coerce").to_numpy(dtype=np.float64)
        if spec.kind == "binary":
            bad = present & ~np.isin(x, (0.0, 1.0))
            problem = "value(s) other than 0 or 1"
            typed = "0/1 (binary)"
            remedy = (
                "recode the column to 0 / 1 (NA for missing), or, if it is not a 0/1 trait, "
                "declare its type in a --pheno-schema file"
            )
        elif spec.kind == "levels":
            if ptype == PhenoType.CATEGORICAL:
                continue  # a level outside the schema's: trained on as missing (a warning)
            bad = present
            shown = ", ".join(spec.levels[:3]) + (", ..." if len(spec.levels) > 3 else "")
            problem = "number(s) and no text level"
            typed = f"categorical (levels {shown})"
            remedy = (
                "write the levels as the schema names them, or declare the column's type "
                "and levels in a --pheno-schema file"
            )
        else:  # bins or values: a numeric column
            if ptype != PhenoType.CATEGORICAL:
                continue  # a value beyond the bins falls into the outer bin
            bad = present & np.isnan(x)
            problem = "text value(s)"
            typed = "continuous (numbers)"
            remedy = (
                "fix the values (NA for missing), or declare the column's type in a "
                "--pheno-schema file"
            )
        if bad.any():
            line, first = _first_line(where, ids, bad)
            raise InputError(
                f"{int(bad.sum())} {problem} in the column{first}, but {who} types {name} "
                f"{typed}: {remedy}",
                file=where,
                line=line,
                column=name,
            )
        if name not in derived and type_conflict(spec, ptype):  # the synthesizer's refusal
            what = "every value is missing" if not present.any() else f"its values are {ptype}"
            raise InputError(
                f"{what}, but {who} types {name} {typed}: the synthesizer cannot model the "
                "column; drop it from the table, or declare its type in a --pheno-schema file",
                file=where,
                column=name,
            )
