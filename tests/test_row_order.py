"""The helper that gives polars' rows in any order where none was asked for."""

from __future__ import annotations

import polars as pl

from .row_order import rows_in_any_order


def test_unordered_outputs_are_shuffled_and_ordered_ones_kept() -> None:
    left = pl.DataFrame({"k": list(range(200)), "v": list(range(200))})
    right = pl.DataFrame({"k": list(range(200)), "w": list(range(200))})
    with rows_in_any_order(seed=5):
        shuffled = [
            left.join(right, on="k")["k"].to_list(),
            left.group_by("k").agg(pl.col("v").sum())["k"].to_list(),
            left.unique()["k"].to_list(),
        ]
        kept = [
            left.join(right, on="k", maintain_order="left")["k"].to_list(),
            left.group_by("k", maintain_order=True).agg(pl.col("v").sum())["k"].to_list(),
            left.unique(maintain_order=True)["k"].to_list(),
        ]
        again = left.join(right, on="k")["k"].to_list()
    in_order = list(range(200))
    for rows in shuffled:
        assert sorted(rows) == in_order != rows
    assert again != shuffled[0]  # another shuffle each time
    assert kept == [in_order] * 3
    # And polars is itself again outside it.
    assert left.join(right, on="k", maintain_order="left")["k"].to_list() == in_order
    assert pl.LazyFrame.join.__module__.startswith("polars")
