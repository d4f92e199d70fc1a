"""Vector files that GDAL reads (GeoPackage, Shapefile, FlatGeobuf, Esri's File
Geodatabase) and spreadsheets (Excel, OpenDocument), as rows for the tabular reader,
through pyogrio.

Vendors deliver POIs in these as often as in CSV. A layer's attribute columns become
columns as they are (a mapping maps them, as for a CSV); its geometry becomes ``lat`` and
``lon``: a point, or the centroid of a polygon or line, in WGS 84 (a layer in another
coordinate system, such as Finland's EPSG:3067, is reprojected with PROJ). A spreadsheet
has no geometry: its own columns say where a place is.

Needs the ``gis`` extra (pyogrio, with GDAL in its wheel; shapely; pyproj).
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import pyarrow as pa

from poiflow.errors import CorruptInputError, InputError, did_you_mean
from poiflow.sources.base import origin_name
from poiflow.sources.spatial import GeometryColumn, located_rows, wgs84_transform
from poiflow.sources.text import Rows

__all__ = ["GIS_SUFFIXES", "gis_rows", "gis_size", "is_gis"]

GIS_SUFFIXES: Final = (".gpkg", ".shp", ".shp.zip", ".fgb", ".gdb", ".xlsx", ".ods")


def is_gis(path: Path) -> bool:
    """Whether a file's name says GDAL reads it here."""
    return path.name.lower().endswith(GIS_SUFFIXES)


def _pyogrio(path: Path) -> Any:
    try:
        import pyogrio
    except ImportError as exc:
        raise InputError(
            "reading GeoPackage, Shapefile, FlatGeobuf and spreadsheets needs the 'gis' extra "
            "(pyogrio, shapely, pyproj): pip install 'poiflow[gis]'",
            path=path,
        ) from exc
    return pyogrio


def _layer(path: Path, layer: str | None) -> str | None:
    """The layer to read: the one named, or the file's only one.

    Raises:
        InputError: The file has several layers and none is named, or not the one named.
    """
    pyogrio = _pyogrio(path)
    try:
        with _quiet():
            layers = [str(name) for name, _ in pyogrio.list_layers(_gdal_path(path))]
    except pyogrio.errors.DataSourceError as exc:
        raise CorruptInputError(f"not readable by GDAL ({exc})", path=path) from exc
    if layer is not None:
        if layer not in layers:
            raise InputError(
                f"no layer '{layer}' in it.{did_you_mean(layer, layers)} Its layers: "
                f"{', '.join(layers)}",
                path=path,
            )
        return layer
    if len(layers) > 1:
        raise InputError(
            f"it holds {len(layers)} layers ({', '.join(layers)}); name the one to read with "
            "'layer:' in a mapping file (--mapping)",
            path=path,
        )
    return None


def gis_size(path: Path, layer: str | None) -> int | None:
    """How many features the layer holds, where GDAL can tell without reading it."""
    pyogrio = _pyogrio(path)
    try:
        chosen = _layer(path, layer)
        with _quiet():
            info = pyogrio.read_info(_gdal_path(path), layer=chosen, **_open_options(path))
        count = int(info["features"])
    except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError):
        return None
    return count if count >= 0 else None


def gis_rows(path: Path, file: Path, layer: str | None, batch_size: int) -> Rows:
    """Yield ``(table, origin per row, rejected rows)`` of a layer in batches; origins are
    ``FILE#feature=N`` (from 0). The geometry column is replaced by ``lat`` and ``lon``.

    Raises:
        CorruptInputError: GDAL cannot read the file, or its coordinate system is unknown.
    """
    pyogrio = _pyogrio(file)
    where = origin_name(path, file)
    chosen = _layer(file, layer)
    try:
        with contextlib.ExitStack() as stack:
            with _quiet():
                meta, reader = stack.enter_context(
                    pyogrio.raw.open_arrow(
                        _gdal_path(file),
                        layer=chosen,
                        use_pyarrow=True,
                        batch_size=batch_size,
                        **_open_options(file),
                    )
                )
            geometry = GeometryColumn(
                meta["geometry_name"] or "wkb_geometry", crs=meta["crs"], known=bool(meta["crs"])
            )
            to_wgs84 = wgs84_transform(meta["crs"], file)
            start = 0
            for batch in _quietly(reader):
                table = pa.Table.from_batches([batch])
                origins = [f"{where}#feature={start + i}" for i in range(table.num_rows)]
                start += table.num_rows
                table, origins, rejected = located_rows(table, origins, geometry, to_wgs84, file)
                yield table, origins, rejected
    except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError) as exc:
        raise CorruptInputError(f"not readable by GDAL ({exc})", path=file) from exc


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """GDAL's warnings left out: pyogrio raises them as Python warnings from inside its
    error handler ("bad application_id"); what GDAL cannot read still raises."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        yield


def _quietly(reader: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """A reader's batches, each read without GDAL's warnings (but not what the caller does
    with them)."""
    batches = iter(reader)
    while True:
        with _quiet():
            batch = next(batches, None)
        if batch is None:
            return
        yield batch


def _open_options(path: Path) -> dict[str, str]:
    """GDAL's open options for a file: a spreadsheet's first row is its header, as a CSV's
    is (GDAL would take a sheet of text alone for one without, its columns Field1, ...)."""
    return {"HEADERS": "FORCE"} if path.suffix.lower() in (".xlsx", ".ods") else {}


def _gdal_path(path: Path) -> str:
    """The path as GDAL opens it (a zipped shapefile through its virtual file system)."""
    return f"/vsizip/{path}" if path.name.lower().endswith(".zip") else str(path)
