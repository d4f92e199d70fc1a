"""A place's point from its geometry: WKB points vectorized (Overture), centroids of rings
and lines (OpenStreetMap's ways and areas, GeoJSON's polygons)."""

from __future__ import annotations

import itertools
import struct
from collections.abc import Iterable

import numpy as np
import pyarrow as pa

__all__ = ["area_centroid", "centroid", "points_from_wkb"]

_POINT_WKB_SIZE = 21  # byte order (1) + type (4) + x (8) + y (8)


def points_from_wkb(
    geometry: pa.Array | pa.ChunkedArray,
) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """Latitudes and longitudes of WKB points, NaN where a value is null or not a point.

    Returns:
        ``(lat, lon, not_points)``: two float64 arrays and the rows whose geometry is
        present but is not a 2D point (reported by the caller).
    """
    if isinstance(geometry, pa.ChunkedArray):
        geometry = geometry.combine_chunks() if geometry.num_chunks else pa.array([], pa.binary())
    geometry = geometry.cast(pa.binary())
    n = len(geometry)
    lat = np.full(n, np.nan)
    lon = np.full(n, np.nan)
    not_points: list[int] = []
    if n == 0:
        return lat, lon, not_points
    offsets = np.frombuffer(geometry.buffers()[1], dtype=np.int32)[
        geometry.offset : geometry.offset + n + 1
    ]
    lengths = np.diff(offsets)
    valid = geometry.is_valid().to_numpy(zero_copy_only=False)
    data = geometry.buffers()[2]
    raw = np.frombuffer(data, dtype=np.uint8) if data is not None else np.zeros(0, np.uint8)
    fast = valid & (lengths == _POINT_WKB_SIZE)
    if fast.any():
        starts = offsets[:-1][fast]
        rows = raw[starts[:, None] + np.arange(_POINT_WKB_SIZE)]
        little = rows[:, 0] == 1
        kind = rows[:, 1:5].copy().view("<u4").ravel()
        ok = little & (kind == 1)
        coords = rows[:, 5:21].copy().view("<f8").reshape(-1, 2)
        idx = np.flatnonzero(fast)
        lon[idx[ok]] = coords[ok, 0]
        lat[idx[ok]] = coords[ok, 1]
        fast[idx[~ok]] = False
    for row in np.flatnonzero(valid & ~fast):
        point = _slow_point(geometry[int(row)].as_py())
        if point is None:
            not_points.append(int(row))
        else:
            lon[row], lat[row] = point
    return lat, lon, not_points


def _slow_point(wkb: bytes) -> tuple[float, float] | None:
    """A point from big-endian, Z/M or EWKB-with-SRID encodings; None if not a point."""
    if len(wkb) < _POINT_WKB_SIZE:
        return None
    order = "<" if wkb[0] == 1 else ">"
    (kind,) = struct.unpack(order + "I", wkb[1:5])
    offset = 5
    if kind & 0x20000000:  # EWKB SRID flag
        offset += 4
        kind &= ~0x20000000
    # 2D, Z, M and ZM points in ISO (1, 1001, 2001, 3001) and EWKB (high bits) encodings.
    if (kind & 0x0FFFFFFF) % 1000 != 1:
        return None
    if len(wkb) < offset + 16:
        return None
    x, y = struct.unpack(order + "dd", wkb[offset : offset + 16])
    return x, y


def area_centroid(rings: Iterable[list[tuple[float, float]]]) -> tuple[float | None, float | None]:
    """(lat, lon) of the area-weighted centroid of outer rings of ``(lon, lat)`` points
    (holes are small; ignoring them is fine here); the points' mean where the rings have
    no area."""
    total_x = total_y = total_area = 0.0
    fallback: list[tuple[float, float]] = []
    for points in rings:
        fallback.extend(points)
        x, y, a = _ring_moments(points)
        if a < 0:  # rings may wind either way; only their size matters here
            x, y, a = -x, -y, -a
        total_x, total_y, total_area = total_x + x, total_y + y, total_area + a
    if abs(total_area) > 1e-15:
        return total_y / total_area, total_x / total_area
    return centroid(fallback)


def centroid(points: list[tuple[float, float]]) -> tuple[float | None, float | None]:
    """(lat, lon) of a closed ring's area centroid, else of its points' mean."""
    if not points:
        return None, None
    if len(points) >= 4 and points[0] == points[-1]:
        x, y, a = _ring_moments(points)
        if abs(a) > 1e-15:
            lon, lat = x / a, y / a
            xs, ys = [p[0] for p in points], [p[1] for p in points]
            # A near-degenerate ring can put the centroid far away; keep it within the ring's box.
            if min(xs) <= lon <= max(xs) and min(ys) <= lat <= max(ys):
                return lat, lon
    unique = list(dict.fromkeys(points))
    return (sum(p[1] for p in unique) / len(unique), sum(p[0] for p in unique) / len(unique))


def _ring_moments(points: list[tuple[float, float]]) -> tuple[float, float, float]:
    """First moments and signed area of a ring (shoelace), as (Sx, Sy, A), summed about
    the ring's first point so that a small ring far from (0, 0) loses no precision."""
    if not points:
        return 0.0, 0.0, 0.0
    ox, oy = points[0]
    sx = sy = a = 0.0
    for (x0, y0), (x1, y1) in itertools.pairwise(points):
        x0, y0, x1, y1 = x0 - ox, y0 - oy, x1 - ox, y1 - oy
        cross = x0 * y1 - x1 * y0
        a += cross
        sx += (x0 + x1) * cross
        sy += (y0 + y1) * cross
    a /= 2.0
    return sx / 6.0 + ox * a, sy / 6.0 + oy * a, a
