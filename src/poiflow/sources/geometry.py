"""Points from WKB, vectorized: the only geometry sources here carry."""

from __future__ import annotations

import struct

import numpy as np
import pyarrow as pa

__all__ = ["points_from_wkb"]

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
