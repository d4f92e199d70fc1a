"""How far a record's point may be from its place because it was rounded: a point to 2
decimals lies up to about half a kilometre from where it was taken. A pair's distance is
read less that (``distance_m`` and ``distance_over_extent``, never below 0), so that two
records of one place are not kept apart by the rounding of one of them.

Each source is judged from counts summed over batches and shards like the features' other
counts (``feature_counts``): its located records (``points``) and those whose both
coordinates are whole multiples of 0.001, 0.01, 0.1 and 1 degree (``rounded 3``, ``2``,
``1``, ``0``). A source of 20 or more located records, most of them rounded to 2 decimals
or fewer, rounds every point by half a step of its last decimal (:func:`rounding_of`);
one most of whose points are to 3 decimals is read as given (its points land on whole
hundredths by chance, once in a hundred). Of any other source, each record's own digits
say (:func:`point_rounding`): a point at whole hundredths of a source of 6 decimals was
rounded, not taken there (a feed that rounds some of its records, or a small one).

Blocking reads a record's own point (:func:`point_rounding_expr`): a point at whole
hundredths of a degree widens the ring its name keys look in by half that step, so that
a rounded record still meets its place's other records. A point of a source of 3
decimals lands there once in a hundred, of 4 once in ten thousand, of 6 practically
never: a few more candidates, no record missed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

import numpy as np
import polars as pl
import pyarrow as pa

__all__ = [
    "ROUNDED",
    "partly_rounded",
    "point_rounding",
    "point_rounding_expr",
    "rounded_decimals",
    "rounding_counts",
    "rounding_of",
    "uncertainty",
]

ROUNDED: Final = ("points", "rounded 3", "rounded 2", "rounded 1", "rounded 0")  # counts' kinds
_LEAST: Final = 20  # located records a source needs for its rounding to be read
_METRES_A_DEGREE: Final = 111_320.0
_STEPS: Final = (0, 1, 2)  # the decimals a point may be rounded to, coarsest first
_FINEST: Final = 3  # a source mostly to this many decimals is judged, and read as given


def rounding_counts(records: pa.Table) -> pl.DataFrame:
    """``what, value, len``: for each source (``value``) of records with ``source``,
    ``lat`` and ``lon``, how many are located and how many rounded to 3, 2, 1, 0
    decimals."""
    lat = records.column("lat").to_numpy(zero_copy_only=False).astype(np.float64)
    lon = records.column("lon").to_numpy(zero_copy_only=False).astype(np.float64)
    located = ~(np.isnan(lat) | np.isnan(lon))
    frame = pl.DataFrame(
        {
            "source": pl.Series(records.column("source").combine_chunks(), dtype=pl.String),
            "lat": np.rint(np.where(located, lat, 0.0) * 1e6).astype(np.int64),
            "lon": np.rint(np.where(located, lon, 0.0) * 1e6).astype(np.int64),
        }
    ).filter(pl.Series(located))
    counted = frame.group_by("source").agg(
        pl.len().alias("points"),
        *(
            ((pl.col("lat") % 10 ** (6 - d) == 0) & (pl.col("lon") % 10 ** (6 - d) == 0))
            .sum()
            .alias(f"rounded {d}")
            for d in (3, 2, 1, 0)
        ),
    )
    return counted.unpivot(index="source", variable_name="what", value_name="len").select(
        "what", pl.col("source").alias("value"), pl.col("len").cast(pl.Int64)
    )


def rounded_decimals(counts: pl.DataFrame, finest: int = 2) -> dict[str, int]:
    """The sources that give most of their points to ``finest`` decimals or fewer, with
    the fewest decimals most of their points have, from the summed counts (``what``,
    ``value``, a count column named ``records``, ``count`` or ``len``). A source of fewer
    than 20 located records is not judged."""
    return _judged(_by_source(counts), finest)


def partly_rounded(counts: pl.DataFrame) -> dict[str, float]:
    """The sources not judged (see :func:`rounding_of`) that give 10 or more of their
    points, and at least 1% of them, to 2 decimals or fewer: each such share. A source
    of finer points lands there by chance too rarely for that (one of 6 decimals once in
    a hundred million), so these were rounded: each is read by its own digits."""
    sources = _by_source(counts)
    judged = _judged(sources, _FINEST)
    return {
        source: rounded.get(2, 0) / points
        for source, points, rounded in sources
        if source not in judged and rounded.get(2, 0) >= max(10, points / 100)
    }


def _judged(sources: list[tuple[str, int, dict[int, int]]], finest: int) -> dict[str, int]:
    """:func:`rounded_decimals` of the sources' counts (:func:`_by_source`)."""
    found: dict[str, int] = {}
    for source, points, rounded in sources:
        if points < _LEAST:
            continue
        for decimals in range(finest + 1):  # the coarsest that most of its points are
            if rounded.get(decimals, 0) > points / 2:
                found[source] = decimals
                break
    return found


def _by_source(counts: pl.DataFrame) -> list[tuple[str, int, dict[int, int]]]:
    """Each source of the summed counts (as ``rounded_decimals`` takes them), in name
    order: its located records, and how many of them are rounded to each number of
    decimals."""
    column = next(c for c in ("records", "count", "len") if c in counts.columns)
    kept = counts.filter(pl.col("what").is_in(ROUNDED))
    if kept.is_empty():
        return []
    wide = kept.pivot(on="what", index="value", values=column, aggregate_function="sum")
    return [
        (
            str(row["value"]),
            int(row.get("points") or 0),
            {d: int(row.get(f"rounded {d}") or 0) for d in range(_FINEST + 1)},
        )
        for row in wide.sort("value").iter_rows(named=True)
    ]


def rounding_of(counts: pl.DataFrame) -> dict[str, float]:
    """The sources judged from the summed counts (as ``rounded_decimals``), each with its
    rounding in metres: half a step of its last decimal for one that rounds to 2 decimals
    or fewer, 0 for one of 3 (read as given). The records of a source not named here are
    read by their own digits (:func:`uncertainty`)."""
    return {
        source: _half_step_m(decimals) if decimals < _FINEST else 0.0
        for source, decimals in rounded_decimals(counts, _FINEST).items()
    }


def uncertainty(
    sources: np.ndarray,
    lat: np.ndarray,
    lon: np.ndarray,
    rounding: Mapping[str, float],
    codes: np.ndarray | None = None,
) -> np.ndarray:
    """Each record's rounding in metres, of the records' ``sources`` (their values; or,
    with ``codes``, the distinct values that each record's code indexes) and points (NaN
    where none): its source's, where ``rounding`` names it, else its own point's
    (:func:`point_rounding`)."""
    own = _point_rounding(np.asarray(lat, dtype=np.float64), np.asarray(lon, dtype=np.float64))
    if not rounding:
        return own
    names = sources.tolist()
    judged = np.array([s in rounding for s in names], dtype=bool)
    theirs = np.array([rounding.get(s, 0.0) for s in names], dtype=np.float64)
    if codes is not None:
        judged, theirs = judged[codes], theirs[codes]
    return np.where(judged, theirs, own)


def _point_rounding(lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """:func:`point_rounding` of many points (NaN: 0)."""
    found = np.zeros(len(lat))
    located = ~(np.isnan(lat) | np.isnan(lon))
    micro = [np.rint(np.where(located, c, 0.5) * 1e6).astype(np.int64) for c in (lat, lon)]
    for decimals in reversed(_STEPS):  # the coarsest step, tested last, wins
        step = 10 ** (6 - decimals)
        whole = located & (micro[0] % step == 0) & (micro[1] % step == 0)
        found = np.where(whole, _half_step_m(decimals), found)
    return found


def _half_step_m(decimals: int) -> float:
    """Half a step of the ``decimals``-th decimal of a degree, in metres."""
    return 0.5 * 10.0**-decimals * _METRES_A_DEGREE


def point_rounding_expr(lat: pl.Expr, lon: pl.Expr) -> pl.Expr:
    """How far a point may be from where it was taken, by its own digits, in metres: half
    a step of the coarsest of 0, 1 or 2 decimals that both coordinates are whole in, else
    0 (null coordinates: 0)."""
    micro = [(c * 1e6).round().cast(pl.Int64) for c in (lat, lon)]
    found = pl.lit(0.0)
    for decimals in reversed(_STEPS):  # the coarsest step, tested last, wins
        whole = (micro[0] % 10 ** (6 - decimals) == 0) & (micro[1] % 10 ** (6 - decimals) == 0)
        found = pl.when(whole.fill_null(False)).then(_half_step_m(decimals)).otherwise(found)
    return found


def point_rounding(lat: float | None, lon: float | None) -> float:
    """:func:`point_rounding_expr` of one point."""
    if lat is None or lon is None:
        return 0.0
    micro = (round(lat * 1e6), round(lon * 1e6))
    for decimals in _STEPS:
        if all(m % 10 ** (6 - decimals) == 0 for m in micro):
            return _half_step_m(decimals)
    return 0.0
