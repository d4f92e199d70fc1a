"""Distances on the Earth: the haversine distance in metres, for arrays of points, and a
planar one as a polars expression, for points a few kilometres apart at most."""

from __future__ import annotations

import math

import numpy as np
import polars as pl

__all__ = ["arc_m", "haversine_m", "planar_m"]

EARTH_RADIUS_M = 6_371_008.8
"""The mean radius of the Earth (IUGG), in metres."""


def haversine_m(
    lat1: np.ndarray, lon1: np.ndarray, lat2: np.ndarray, lon2: np.ndarray
) -> np.ndarray:
    """The great-circle distance in metres between each pair of points (degrees); NaN
    where a coordinate is NaN."""
    p1, p2 = np.radians(lat1), np.radians(lat2)
    return arc_m(p2 - p1, np.radians(lon2 - lon1), np.cos(p1), np.cos(p2))


def arc_m(dp: np.ndarray, dl: np.ndarray, cos1: np.ndarray, cos2: np.ndarray) -> np.ndarray:
    """The haversine distance in metres, from the differences of latitude and longitude
    (radians) and the cosines of the two latitudes."""
    a = np.sin(dp / 2) ** 2 + cos1 * cos2 * np.sin(dl / 2) ** 2
    return np.asarray(2 * EARTH_RADIUS_M * np.arcsin(np.sqrt(np.clip(a, 0, 1))), dtype=float)


_METRES_PER_DEGREE = EARTH_RADIUS_M * math.pi / 180  # of latitude


def planar_m(lat: pl.Expr, lon: pl.Expr, lat0: pl.Expr, lon0: pl.Expr) -> pl.Expr:
    """Metres between two points (degrees), on a plane tangent at the second: exact
    enough within a few kilometres."""
    return (
        (lat - lat0) ** 2 + ((lon - lon0) * lat0.radians().cos()) ** 2
    ).sqrt() * _METRES_PER_DEGREE
