"""Columns rebuilt from a parent column rather than modelled: one-hot copies, nested columns.

A one-hot copy (``SW16`` of ``round``) is a function of its parent (:func:`derived_columns`).
A CFW mouse's cage (``cageid``, 298 cages of 1-4 mice) belongs to exactly one round
(``round``, 25 rounds of 12 cages): a cage is a grouping factor within a round, not a number.
Modelled as a number, a synthesizer makes up cages that do not exist, cages of one mouse and
cages spread over rounds. A nested column is therefore not modelled: it is rebuilt from the
sampled parent by :meth:`Nesting.draw`, which fills the public table's cages of that parent
level at their public sizes. Its inputs are the synthetic parent, the public table and
fresh randomness (post-processing: no privacy cost); the members' own cages are never read.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

#: one-hot columns rebuilt from a parent column: (parent, prefix, levels); public CFW schema
ONE_HOT_GROUPS: tuple[tuple[str, str, tuple[object, ...]], ...] = (
    ("round", "SW", tuple(f"SW{i}" for i in range(1, 26))),
    ("FCbox", "FCbox", tuple(float(i) for i in range(1, 5))),
    ("PPIbox", "PPIbox", tuple(float(i) for i in range(1, 6))),
    ("methcage", "methcage", tuple(float(i) for i in range(1, 13))),
)

#: (child, parent): public CFW schema knowledge (Parker et al. 2016: each cage is one round's)
NESTED_GROUPS: tuple[tuple[str, str], ...] = (("cageid", "round"),)


def derived_columns(columns: Iterable[str]) -> dict[str, tuple[str, object]]:
    """One-hot columns rebuilt from a parent: ``{column: (parent, level)}``."""
    present = set(columns)
    out: dict[str, tuple[str, object]] = {}
    for parent, prefix, levels in ONE_HOT_GROUPS:
        if parent not in present:
            continue
        for i, level in enumerate(levels, start=1):
            if f"{prefix}{i}" in present:
                out[f"{prefix}{i}"] = (parent, level)
    return out


@dataclass(frozen=True)
class Nesting:
    """A child column nested in ``parent``: per parent level (as text), the child values
    under it in a public table and how many rows each holds there."""

    parent: str
    groups: Mapping[str, tuple[tuple[object, ...], tuple[int, ...]]]
    #: the child's values are numbers (else text)
    numeric: bool

    @classmethod
    def of(cls, table: pd.DataFrame, child: str, parent: str) -> Nesting | None:
        """The nesting of ``child`` in ``parent`` in a **public** table, or None when the
        table lacks either column, holds no row with both, or some child value sits under
        two parent levels (not nested)."""
        if child not in table or parent not in table:
            return None
        both = table[[child, parent]].dropna()
        if both.empty:
            return None
        numeric = bool(pd.api.types.is_numeric_dtype(both[child]))
        keys = both[parent].astype(str)
        if (both.groupby(both[child])[parent].nunique() > 1).any():
            return None
        groups: dict[str, tuple[tuple[object, ...], tuple[int, ...]]] = {}
        for level, rows in both.groupby(keys, sort=True)[child]:
            counts = rows.value_counts(sort=False).sort_index()
            values = tuple(float(v) if numeric else str(v) for v in counts.index)
            groups[str(level)] = (values, tuple(int(c) for c in counts.to_numpy()))
        return cls(parent, groups, numeric)

    def draw(self, parent: pd.Series | np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """A child value for each row of ``parent`` (synthetic parent values). The rows of
        one parent level fill that level's public children in a random order, each up to
        its public count, before any child takes more (so children hold as many rows as in
        the public table while there are as many rows; more rows go round again). Missing
        where the parent is missing or is a level the public table has no child under."""
        p = pd.Series(parent).reset_index(drop=True)
        out = np.full(len(p), np.nan, dtype=np.float64 if self.numeric else object)
        keys = p.astype(str).to_numpy()
        present = p.notna().to_numpy()
        for level in np.unique(keys[present]):
            if level not in self.groups:
                continue
            rows = rng.permutation(np.flatnonzero(present & (keys == level)))
            values, counts = self.groups[level]
            sizes = np.asarray(counts)
            slots: list[np.ndarray] = []
            while sum(len(s) for s in slots) < len(rows):
                order = rng.permutation(len(values))
                slots.append(np.repeat(order, sizes[order]))
            chosen = np.concatenate(slots)[: len(rows)] if slots else np.array([], dtype=int)
            out[rows] = np.asarray(values, dtype=out.dtype)[chosen]
        return out


def public_nestings(table: pd.DataFrame) -> dict[str, Nesting]:
    """``{child: Nesting}`` for the :data:`NESTED_GROUPS` a public table holds."""
    found = {child: Nesting.of(table, child, parent) for child, parent in NESTED_GROUPS}
    return {child: n for child, n in found.items() if n is not None}


def nested_in(columns: Iterable[str], nestings: Mapping[str, Nesting]) -> dict[str, Nesting]:
    """The nestings whose child and parent are both among ``columns``."""
    present = set(columns)
    return {c: n for c, n in nestings.items() if c in present and n.parent in present}


def without_nestings(nestings: Mapping[str, Nesting], columns: Iterable[str]) -> dict[str, Nesting]:
    """The nestings neither of whose columns is among ``columns`` (columns another schema
    redefines: a declared ``cageid`` is not the public table's)."""
    gone = set(columns)
    return {c: n for c, n in nestings.items() if c not in gone and n.parent not in gone}


def nesting_figures(table: pd.DataFrame, child: str, nesting: Nesting) -> dict[str, float]:
    """How well ``table``'s ``child`` column keeps a public nesting (a bench figure, any
    table): ``outside`` the share of rows with both values whose child is not one the public
    table has under that parent level (a made-up cage, or another round's); ``lone`` the
    share of children holding one row; ``split`` the share of children under more than one
    parent level; ``mean_size`` rows per child."""
    both = table[[child, nesting.parent]].dropna()
    if both.empty:
        nan = float("nan")
        return {"outside": nan, "lone": nan, "split": nan, "mean_size": nan}
    known = {(level, v) for level, (values, _counts) in nesting.groups.items() for v in values}
    values = both[child]
    values = pd.to_numeric(values, errors="coerce") if nesting.numeric else values.astype(str)
    pairs = zip(both[nesting.parent].astype(str), values.tolist(), strict=True)
    outside = np.mean([pair not in known for pair in pairs])
    sizes = both.groupby(child).size()
    split = both.groupby(child)[nesting.parent].nunique() > 1
    return {
        "outside": float(outside),
        "lone": float((sizes == 1).mean()),
        "split": float(split.mean()),
        "mean_size": float(sizes.mean()),
    }
