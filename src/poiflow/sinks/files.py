"""The golden places as a flat file for people and GIS tools: a GeoPackage to open in QGIS,
GeoJSON for a web map, a CSV for a spreadsheet.

``places.parquet`` keeps everything (alternate names, every phone, each attribute's
confidence and sources) in nested columns, which these formats and their readers do not
take. Here each place is one row of the flat place format's columns (so that the file can
be read back by ``poiflow ingest`` as a source, with its extra columns ignored), and a few
columns of the golden record's own: its confidence, how many records it merges, and the
datasets they came from.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Final

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from poiflow.errors import InputError, OutputError

__all__ = ["PLACE_FILE_FORMATS", "flat_golden_places", "write_places_file"]

PLACE_FILE_FORMATS: Final = {
    ".gpkg": "GPKG",
    ".geojson": "GeoJSON",
    ".geojsonl": "GeoJSONSeq",
    ".fgb": "FlatGeobuf",
    ".csv": "csv",
    ".parquet": "parquet",
}
"""The suffixes a places file may have, and what writes each (GDAL's driver, or Arrow)."""

GOLDEN_COLUMNS: Final = ("confidence", "members", "datasets")
"""The golden record's own columns, after the flat place format's."""


def flat_golden_places(places: pa.Table) -> pa.Table:
    """Golden places (``GOLDEN_PLACE_SCHEMA``) as flat rows: the flat place format's
    columns but ``source`` (a file read back is a source of its own name; a place's phones
    joined by ``"; "``, its first web site and e-mail), then
    ``confidence``, ``members`` and ``datasets`` (the sources' datasets, in order of first
    appearance, joined by ``", "``)."""

    def field(column: str, *path: str) -> pa.ChunkedArray:
        values = places.column(column)
        for name in path:
            values = pc.struct_field(values, name)
        return values

    def first(column: str) -> pa.Array:
        return _first(places.column(column))

    address = "address"
    columns = {
        "id": places.column("id"),
        "name": field("names", "primary"),
        "lat": places.column("lat"),
        "lon": places.column("lon"),
        "category": field("categories", "primary"),
        "street": field(address, "street"),
        "housenumber": field(address, "housenumber"),
        "postcode": field(address, "postcode"),
        "city": field(address, "locality"),
        "country": field(address, "country"),
        "phone": _joined(places.column("phones"), "; "),
        "website": first("websites"),
        "address": field(address, "freeform"),
        "unit": field(address, "unit"),
        "region": field(address, "region"),
        "email": first("emails"),
        "brand": field("brand", "name"),
        "opening_hours": places.column("opening_hours"),
        "operating_status": places.column("operating_status"),
        "update_time": places.column("update_time"),
        "confidence": places.column("confidence"),
        "members": places.column("members"),
        "datasets": _datasets(places.column("sources")),
    }
    return pa.table(columns)


def _first(lists: pa.ChunkedArray) -> pa.Array:
    """Each list's first item; null for a null or empty list."""
    values = lists.to_pylist()
    return pa.array([v[0] if v else None for v in values], pa.string())


def _joined(lists: pa.ChunkedArray, separator: str) -> pa.ChunkedArray:
    """Each list's items joined by ``separator``; null for a null or empty list."""
    joined = pc.binary_join(lists, separator)
    return pc.if_else(pc.greater(pc.list_value_length(lists), 0), joined, None)


def _datasets(sources: pa.ChunkedArray) -> pa.Array:
    out = []
    for refs in sources.to_pylist():
        seen = dict.fromkeys(ref["dataset"] for ref in refs or () if ref["dataset"])
        out.append(", ".join(seen) or None)
    return pa.array(out, pa.string())


def write_places_file(places: pa.Table, path: Path) -> int:
    """Write golden places (``GOLDEN_PLACE_SCHEMA``) to ``path`` as flat rows, in the
    format its suffix names (``PLACE_FILE_FORMATS``): GeoPackage, GeoJSON (a
    FeatureCollection, or one a line), FlatGeobuf (points, in WGS 84), CSV or Parquet (with
    ``lat`` and ``lon``). Written beside it first and moved into place whole. Returns the
    rows written.

    Raises:
        InputError: The suffix is none of those, or a GDAL format without the ``gis`` extra.
        OutputError: The file cannot be written there.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    writer = PLACE_FILE_FORMATS.get(suffix)
    if writer is None:
        raise InputError(
            f"cannot tell the format from '{path.name}': give a file ending in "
            f"{', '.join(PLACE_FILE_FORMATS)}",
            path=path,
        )
    flat = flat_golden_places(places)
    partial = path.with_name(f".{path.stem}.partial{suffix}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial.unlink(missing_ok=True)
        if writer == "csv":
            import pyarrow.csv as pa_csv

            pa_csv.write_csv(flat, partial)
        elif writer == "parquet":
            import pyarrow.parquet as pq

            pq.write_table(flat, partial, compression="zstd")
        else:
            _write_layer(flat, partial, writer)
        partial.replace(path)
    except OSError as exc:
        _remove(partial)
        raise OutputError(f"cannot write it ({exc.strerror or exc})", path=path) from exc
    except BaseException:
        _remove(partial)
        raise
    return int(flat.num_rows)


def _remove(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.unlink(missing_ok=True)


def _write_layer(flat: pa.Table, path: Path, driver: str) -> None:
    """A layer of points for GDAL's ``driver``: the flat columns but ``lat`` and ``lon``,
    which are the points."""
    try:
        from pyogrio.raw import write_arrow
    except ImportError as exc:
        raise InputError(
            f"writing {path.suffix} files needs the 'gis' extra (pyogrio): "
            "pip install 'poiflow[gis]'",
            path=path,
        ) from exc
    from poiflow.sinks.parquet import point_wkb

    def degrees(column: str) -> np.ndarray:
        values = pc.fill_null(flat.column(column), float("nan"))
        return np.asarray(values.to_numpy(), dtype=np.float64)

    geometry = point_wkb(degrees("lat"), degrees("lon"))
    layer = flat.drop_columns(["lat", "lon"]).append_column("geometry", geometry)
    # GDAL's writers take times without a zone as local: ISO text says UTC.
    index = layer.column_names.index("update_time")
    times = pc.strftime(layer.column("update_time"), format="%Y-%m-%dT%H:%M:%SZ")
    layer = layer.set_column(index, "update_time", times)
    options = {
        # A place without coordinates is a feature without geometry, which FlatGeobuf's
        # spatial index cannot hold; GeoJSON keeps GDAL's 7 decimals (1 cm) otherwise.
        "FlatGeobuf": {"SPATIAL_INDEX": "NO"} if geometry.null_count else {},
        "GeoJSON": {"COORDINATE_PRECISION": "15"},
        "GeoJSONSeq": {"COORDINATE_PRECISION": "15"},
    }.get(driver, {})
    write_arrow(
        layer,
        path,
        driver=driver,
        layer="places",
        geometry_name="geometry",
        geometry_type="Point",
        crs="EPSG:4326",
        layer_options=options,
    )
