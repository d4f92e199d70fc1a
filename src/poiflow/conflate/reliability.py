"""What a run's clusters say of each source, for the merge to weigh its values by.

Learned once over all clusters, before any is merged (:func:`learn_sources`), so that
every engine (the local one, Spark's shards) and a stream merge alike:

- how far a source's points typically lie from their places' (:func:`source_precision`):
  the golden point is a median weighted by it;
- how often a source's phone is one another source gives the same place
  (:func:`phone_agreement`): it breaks ties between numbers.

Both are rounded, so that a few records more or less leave them as they were.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Final

import numpy as np
import polars as pl
import pyarrow as pa

from poiflow.conflate.geo import haversine_m
from poiflow.conflate.merge import MergeConfig

__all__ = ["learn_sources", "phone_agreement", "source_precision"]

_MIN_POINTS: Final = 3  # a place's median point means little with fewer
_MIN_RECORDS: Final = 20  # what a source is worth, from at least these of its records
_L: Final = "label"


def learn_sources(records: pa.Table, labels: np.ndarray, config: MergeConfig) -> MergeConfig:
    """``config`` with what the records and their clusters say of each source: its points'
    precision (:func:`source_precision`) and its phones' agreement
    (:func:`phone_agreement`). What ``config`` gives already wins.

    Args:
        records: The records (``source``, ``lat``, ``lon``, ``phones``).
        labels: Each record's cluster; a negative label leaves the record out.
        config: The merge's settings.
    """
    sources = records.column("source")
    precision = source_precision(sources, records.column("lat"), records.column("lon"), labels)
    agreement = phone_agreement(sources, records.column("phones"), labels)
    return dataclasses.replace(
        config,
        precision_m={**precision, **config.precision_m},
        phone_agreement={**agreement, **config.phone_agreement},
    )


def source_precision(
    sources: pa.Array | pa.ChunkedArray,
    lat: pa.Array | pa.ChunkedArray,
    lon: pa.Array | pa.ChunkedArray,
    labels: np.ndarray,
) -> dict[str, float]:
    """How far each source's points typically lie from their places' (metres): over the
    places of at least ``_MIN_POINTS`` located records, the median distance of a source's
    points from the place's median point, for sources with at least ``_MIN_RECORDS``
    such points, rounded to steps of a factor of about 1.19.

    Args:
        sources, lat, lon: The records' source and coordinates.
        labels: Each record's cluster; a negative label leaves the record out.
    """
    frame = (
        _frame(
            sources,
            labels,
            lat=pl.Series(lat, dtype=pl.Float64),
            lon=pl.Series(lon, dtype=pl.Float64),
        )
        .filter(pl.col("lat").is_not_null() & pl.col("lon").is_not_null() & (pl.col(_L) >= 0))
        .with_columns(
            pl.col("lat").median().over(_L).alias("mlat"),
            pl.col("lon").median().over(_L).alias("mlon"),
            pl.len().over(_L).alias("points"),
        )
        .filter(pl.col("points") >= _MIN_POINTS)
    )
    if frame.is_empty():
        return {}
    metres = haversine_m(*(frame[c].to_numpy() for c in ("lat", "lon", "mlat", "mlon")))
    typical = (
        frame.select("source", pl.Series("metres", metres))
        .group_by("source")
        .agg(pl.col("metres").median(), pl.len())
        .filter(pl.col("len") >= _MIN_RECORDS)
        .sort("source")
    )
    return {
        source: round(float(2 ** (round(4 * math.log2(max(m, 1.0))) / 4)), 1)
        for source, m in typical.select("source", "metres").iter_rows()
    }


def phone_agreement(
    sources: pa.Array | pa.ChunkedArray, phones: pa.Array | pa.ChunkedArray, labels: np.ndarray
) -> dict[str, float]:
    """How often each source's phone is one another source gives the same place: over the
    records whose place has a phone from another source too, the share whose first phone
    some other source gives, smoothed ((agreeing + 1) / (records + 2)) and rounded to two
    places, for sources with at least ``_MIN_RECORDS`` such records.

    Args:
        sources, phones: The records' source and phones (normalized).
        labels: Each record's cluster; a negative label leaves the record out.
    """
    first = pl.Series(phones, dtype=pl.List(pl.String)).list.first()
    checked = (
        _frame(sources, labels, phone=first)
        .filter(pl.col("phone").is_not_null() & (pl.col(_L) >= 0))
        .with_columns(
            pl.col("source").n_unique().over(_L).alias("giving"),
            pl.col("source").n_unique().over(_L, "phone").alias("agreeing"),
        )
        .filter(pl.col("giving") >= 2)
        .group_by("source")
        .agg((pl.col("agreeing") >= 2).sum().alias("agree"), pl.len().alias("records"))
        .filter(pl.col("records") >= _MIN_RECORDS)
        .sort("source")
    )
    return {
        source: round((agree + 1) / (records + 2), 2)
        for source, agree, records in checked.iter_rows()
    }


def _frame(
    sources: pa.Array | pa.ChunkedArray, labels: np.ndarray, **columns: pl.Series
) -> pl.DataFrame:
    """The records' source and cluster, beside ``columns``."""
    return pl.DataFrame(
        {
            "source": pl.Series(sources, dtype=pl.String),
            _L: pl.Series(np.asarray(labels, dtype=np.int64)),
            **columns,
        }
    )
