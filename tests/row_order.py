"""Polars as it may be: rows in any order where no order was asked for.

A join without ``maintain_order``, a ``group_by`` or a ``unique`` without
``maintain_order=True``: polars promises no row order for their output, and the order it
gives can change with the threads' timing, from one run to the next. Code whose output
depends on that order (a tie broken by whichever row came first, a float sum added up in
row order) writes different bytes from the same input now and then. Inside
:func:`rows_in_any_order`, each such output is shuffled (a different way each time, set
by the seed), so a test can hold the result to the one polars gave in order.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import polars as pl
from polars.lazyframe.group_by import LazyGroupBy

_INDEX = "__row_order__"


@contextmanager
def rows_in_any_order(seed: int = 0) -> Iterator[None]:
    """Shuffle the output of every unordered join, group-by and unique, inside it."""
    seeds = itertools.count(seed * 1_000_003 + 1)

    def shuffled(frame: pl.LazyFrame) -> pl.LazyFrame:
        rank = pl.col(_INDEX).hash(next(seeds))
        return frame.with_row_index(_INDEX).sort(rank).drop(_INDEX)

    join, unique, group_by = pl.LazyFrame.join, pl.LazyFrame.unique, pl.LazyFrame.group_by

    class AnyOrder(LazyGroupBy):
        def agg(self, *args: Any, **kwargs: Any) -> pl.LazyFrame:
            return shuffled(super().agg(*args, **kwargs))

    def any_join(self: pl.LazyFrame, *args: Any, maintain_order: Any = None, **kw: Any) -> Any:
        joined = join(self, *args, maintain_order=maintain_order, **kw)
        return shuffled(joined) if maintain_order in (None, "none") else joined

    def any_unique(self: pl.LazyFrame, *args: Any, maintain_order: bool = False, **kw: Any) -> Any:
        kept = unique(self, *args, maintain_order=maintain_order, **kw)
        return kept if maintain_order else shuffled(kept)

    def any_group_by(self: pl.LazyFrame, *by: Any, maintain_order: bool = False, **kw: Any) -> Any:
        grouped = group_by(self, *by, maintain_order=maintain_order, **kw)
        return grouped if maintain_order else AnyOrder(grouped.lgb)

    pl.LazyFrame.join = any_join  # type: ignore[method-assign]
    pl.LazyFrame.unique = any_unique  # type: ignore[method-assign]
    pl.LazyFrame.group_by = any_group_by  # type: ignore[method-assign]
    try:
        yield
    finally:
        pl.LazyFrame.join = join  # type: ignore[method-assign]
        pl.LazyFrame.unique = unique  # type: ignore[method-assign]
        pl.LazyFrame.group_by = group_by  # type: ignore[method-assign]
