"""Where there is land: the land mask poiflow ships (NOAA's GLOBE, written by
``scripts/make_land_mask.py``), one bit per 1/24-degree cell (~4 km).

Shared reference data: the quality checks ask whether a place is in the sea, and the
generator keeps its cities out of it.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Final

import numpy as np

__all__ = ["CELLS_PER_DEGREE", "nearest_land", "on_land"]

CELLS_PER_DEGREE: Final = 24


@functools.cache
def _land() -> np.ndarray:
    """The mask's bits, eight cells a byte, rows from the north pole down."""
    with np.load(Path(__file__).resolve().parent / "data" / "land_mask.npz") as data:
        land: np.ndarray = np.asarray(data["land"])
    return land


def on_land(lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """Whether there is land within about one 1/24-degree cell (~4 km) of each point."""
    land = _land()
    rows = np.clip(np.floor((90.0 - lat) * CELLS_PER_DEGREE).astype(np.int64), 0, land.shape[0] - 1)
    cols = np.floor((lon + 180.0) * CELLS_PER_DEGREE).astype(np.int64) % (land.shape[1] * 8)
    bits: np.ndarray = (land[rows, cols >> 3] >> (7 - (cols & 7))) & 1
    return bits.astype(bool)


def nearest_land(
    lat: float, lon: float, box: tuple[float, float, float, float]
) -> tuple[float, float]:
    """The point itself where it is on land; else the centre of the land cell nearest to it
    within ``box`` (``lat_min, lat_max, lon_min, lon_max``), or the point where the box
    holds no land."""
    if on_land(np.array([lat]), np.array([lon]))[0]:
        return lat, lon
    step = 1.0 / CELLS_PER_DEGREE
    lats = np.arange(box[0] + step / 2, box[1], step)
    lons = np.arange(box[2] + step / 2, box[3], step)
    grid_lat, grid_lon = (g.ravel() for g in np.meshgrid(lats, lons, indexing="ij"))
    land = on_land(grid_lat, grid_lon)
    if not land.any():
        return lat, lon
    grid_lat, grid_lon = grid_lat[land], grid_lon[land]
    # Far enough for "nearest": degrees of longitude shrunk by the latitude's cosine.
    east = (grid_lon - lon) * np.cos(np.radians(lat))
    nearest = int(np.argmin((grid_lat - lat) ** 2 + east**2))
    return float(grid_lat[nearest]), float(grid_lon[nearest])
