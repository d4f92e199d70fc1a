"""Blocking key rows held sorted by key, for real-time matching: which held records share a
key with a new record, as batch blocking would pair them (see ``poiflow.serving.matching``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import polars as pl

__all__ = ["HeldKeys", "ranges"]


@dataclass(frozen=True, slots=True)
class HeldKeys:
    """Blocking key rows sorted by key, for lookups: which rows hold a key, on which side
    of a pair it may put them, and how many rows hold it on the left (the cap)."""

    key: np.ndarray
    kind: np.ndarray
    row: np.ndarray
    left: np.ndarray
    right: np.ndarray
    lefts: np.ndarray

    @classmethod
    def of(cls, keys: pl.DataFrame) -> HeldKeys:
        key, kind, row, left, right = (
            keys[c].to_numpy() for c in ("key", "kind", "row", "left", "right")
        )
        order = np.lexsort((kind, key))  # by key, then kind
        key, kind, row, left, right = (a[order] for a in (key, kind, row, left, right))
        # How many rows hold each (key, kind) on the left: summed over each run of them.
        starts = np.flatnonzero(
            np.r_[True, (key[1:] != key[:-1]) | (kind[1:] != kind[:-1])] if len(key) else []
        )
        sums = np.add.reduceat(left.astype(np.int32), starts) if len(key) else np.zeros(0)
        lefts = np.repeat(sums, np.diff(np.r_[starts, len(key)])).astype(np.int32)
        return cls(key, kind, row, left, right, lefts)

    def lookup(
        self, keys: Mapping[str, np.ndarray], twins: np.ndarray, caps: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(query, row)`` of every held row that shares a key with a query (``keys``:
        the queries' key rows, by column) as blocking would pair them: kinds agree, sides
        fit, the key is under its cap, and never the query's own twin."""
        key = keys["key"]
        if len(key) > 64:  # sorted needles: each binary search starts where the last ended
            order = np.argsort(key)
            lo, hi = np.empty(len(key), np.int64), np.empty(len(key), np.int64)
            lo[order] = np.searchsorted(self.key, key[order], side="left")
            hi[order] = np.searchsorted(self.key, key[order], side="right")
        else:
            lo = np.searchsorted(self.key, key, side="left")
            hi = np.searchsorted(self.key, key, side="right")
        count = hi - lo
        owner = np.repeat(np.arange(len(key)), count)
        at = ranges(lo, count)
        kind = keys["kind"][owner]
        query = keys["row"][owner]
        left = keys["left"][owner]
        right = keys["right"][owner]
        # A query with a twin held here was already counted among the key's left rows.
        lefts = self.lefts[at] + (left & (twins[query] < 0))
        keep = (
            (self.kind[at] == kind)
            & ((left & self.right[at]) | (right & self.left[at]))
            & (lefts <= caps[kind])
            & (self.row[at] != twins[query])
        )
        return query[keep], self.row[at][keep]


def ranges(starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """The positions ``starts[i] .. starts[i] + counts[i] - 1`` of every ``i``, one after
    the other, without a Python loop."""
    return np.repeat(starts - np.cumsum(counts) + counts, counts) + np.arange(counts.sum())
