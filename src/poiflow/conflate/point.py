"""A place's golden point, the record it is nearest to, and how sure it is.

The point is each coordinate's median, weighted by trust and by how precise the record's
source is (``MergeConfig.precision_m``, learned by ``reliability.source_precision``), then
the weighted mean of the points within ``INLIER_SPREADS`` of their source's typical
distance from it: a geocoding error is left out, and the jitter of the rest averaged (a
mean of n points is nearer than their median). The point is right where the records within
``NEAR_M`` metres of it are; its confidence is the probability that it is right, from
those records and the others (``belief.sure``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

import polars as pl

from poiflow.conflate.belief import sure
from poiflow.conflate.geo import planar_m

__all__ = ["INLIER_SPREADS", "NEAR_M", "golden_point"]

NEAR_M: Final = 50.0  # a point this close to the place's is right
# A point farther from the place's median than this many times its source's typical
# distance is an error of its own (a geocoding error), left out of the golden point's mean.
INLIER_SPREADS: Final = 5.0
_L: Final = "label"


def golden_point(
    frame: pl.DataFrame, precision_m: Mapping[str, float]
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Per label with a located record: the golden point (``glat``, ``glon``) and its
    ``location_confidence``; and the position of the located record nearest to it
    (``geometry_pos``, the first such by position).

    Args:
        frame: The records, a row each: ``label``, ``pos`` (its position in its place),
            ``source``, ``lat``, ``lon``, ``weight`` (trust and recency) and
            ``odds_location`` (``belief.evidence``).
        precision_m: How far each source's points typically lie from their places'
            (metres); a source not named counts as the least precise named.
    """
    located = frame.select(_L, "source", "lat", "lon", "weight", "pos", "odds_location").filter(
        pl.col("lat").is_not_null()
    )
    precision = dict(precision_m)
    least = max(precision.values(), default=1.0)
    spread = pl.col("source").replace_strict(precision, default=least, return_dtype=pl.Float64)
    located = located.with_columns(
        (pl.col("weight") / spread.clip(1.0) ** 2).alias("point_weight"),
        spread.clip(1.0).alias("spread"),
    )
    median = _weighted_median(located, "lat", "mlat").join(
        _weighted_median(located, "lon", "mlon"), on=_L
    )
    inlier = planar_m(pl.col("lat"), pl.col("lon"), pl.col("mlat"), pl.col("mlon")) <= (
        INLIER_SPREADS * pl.col("spread")
    )
    weight = pl.col("point_weight")
    mean = (
        located.join(median, on=_L, maintain_order="left")
        .filter(inlier)
        .group_by(_L)
        .agg(
            ((pl.col("lat") * weight).sum() / weight.sum()).alias("alat"),
            ((pl.col("lon") * weight).sum() / weight.sum()).alias("alon"),
        )
    )
    centre = median.join(mean, on=_L, how="left").select(
        _L, pl.coalesce("alat", "mlat").alias("glat"), pl.coalesce("alon", "mlon").alias("glon")
    )
    located = located.join(centre, on=_L, maintain_order="left").with_columns(
        ((pl.col("lat") - pl.col("glat")) ** 2 + (pl.col("lon") - pl.col("glon")) ** 2).alias("d2")
    )
    medoid = (
        located.select(_L, "d2", "pos")
        .sort(_L, "d2", "pos")
        .group_by(_L, maintain_order=True)
        .first()
        .select(_L, pl.col("pos").alias("geometry_pos"))
    )
    # The point is right where the records within NEAR_M of it are.
    near = planar_m(pl.col("lat"), pl.col("lon"), pl.col("glat"), pl.col("glon")) <= NEAR_M
    point = (
        located.group_by(_L)
        .agg(
            pl.col("odds_location").filter(near).sum().alias("chosen"),
            pl.col("odds_location").filter(~near).alias("against"),
        )
        .select(_L, sure(pl.col("chosen"), pl.col("against")).alias("location_confidence"))
    )
    centre = centre.join(point, on=_L)
    return centre, medoid


def _weighted_median(located: pl.DataFrame, column: str, alias: str) -> pl.DataFrame:
    """Per label: the weighted median of ``column`` (``point_weight``); where the weight
    below one value is exactly half, the middle of it and the next (so two points of equal
    weight give their midpoint, as the plain median does)."""
    ranked = located.select(_L, column, "point_weight").sort(_L, column)
    ranked = ranked.with_columns(
        pl.col("point_weight").cum_sum().over(_L).alias("below"),
        (pl.col("point_weight").sum().over(_L) / 2).alias("half"),
    )
    lower = (
        ranked.filter(pl.col("below") >= pl.col("half") * (1 - 1e-12))
        .group_by(_L, maintain_order=True)
        .first()
        .select(_L, pl.col(column).alias("lower"))
    )
    upper = (
        ranked.filter(pl.col("below") > pl.col("half") * (1 + 1e-12))
        .group_by(_L, maintain_order=True)
        .first()
        .select(_L, pl.col(column).alias("upper"))
    )
    return lower.join(upper, on=_L).select(
        _L, ((pl.col("lower") + pl.col("upper")) / 2).alias(alias)
    )
