"""Vector files that GDAL reads (GeoPackage, Shapefile, FlatGeobuf, Esri's File
Geodatabase, SpatiaLite, GML, MapInfo's TAB and MIF), placemarks and waypoints (KML, KMZ,
GPX) and spreadsheets (Excel, OpenDocument), as rows for the tabular reader, through
pyogrio.

Vendors deliver POIs in these as often as in CSV. A layer's attribute columns become
columns as they are (a mapping maps them, as for a CSV); its geometry becomes ``lat`` and
``lon``: a point, or the centroid of a polygon or line, in WGS 84 (a layer in another
coordinate system, such as Finland's EPSG:3067, is reprojected with PROJ). A spreadsheet
has no geometry: its own columns say where a place is. A KML folder (a layer of Google My
Maps) that names a kind of place ("Cafes", "Bookshops") is the category of its placemarks
that have no category column.

Needs the ``gis`` extra (pyogrio, with GDAL in its wheel; shapely; pyproj).
"""

from __future__ import annotations

import contextlib
import hashlib
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import pyarrow as pa

from poiflow.errors import CorruptInputError, InputError, did_you_mean
from poiflow.sources.base import origin_name
from poiflow.sources.spatial import GeometryColumn, located_rows, wgs84_transform
from poiflow.sources.text import Rows

__all__ = ["GIS_SUFFIXES", "gis_rows", "gis_size", "is_gis", "place_ids"]

GIS_SUFFIXES: Final = (
    ".gpkg",
    ".shp",
    ".shp.zip",
    ".fgb",
    ".gdb",
    ".xlsx",
    ".ods",
    ".kml",
    ".kmz",
    ".gpx",
    ".sqlite",
    ".gml",
    ".tab",
    ".mif",
)
# Files of placemarks or waypoints (Google My Maps, Google Earth, a GPS): their own columns
# are renamed to the flat place format's, their bookkeeping left out, and they carry no
# ids of their own but by chance (a KML placemark's id attribute).
_MARKS: Final = (".kml", ".kmz", ".gpx")
_MARK_NAMES: Final = {
    # KML (GDAL's LIBKML driver): a placemark's name; its <TimeStamp> as its time.
    "Name": "name",
    "timestamp": "update_time",
    # GPX's waypoints: <name>, <type>, <time>, <link href>.
    "type": "category",
    "time": "update_time",
    "link1_href": "website",
}
_MARK_BOOKKEEPING: Final = frozenset(
    {
        # KML: how a placemark is drawn, and text for people.
        "description",
        "begin",
        "end",
        "altitudeMode",
        "tessellate",
        "extrude",
        "visibility",
        "drawOrder",
        "icon",
        "snippet",
        # GPX: what the receiver measured, and text for people.
        "ele",
        "magvar",
        "geoidheight",
        "cmt",
        "desc",
        "src",
        "link1_text",
        "link1_type",
        "link2_href",
        "link2_text",
        "link2_type",
        "sym",
        "fix",
        "sat",
        "hdop",
        "vdop",
        "pdop",
        "ageofdgpsdata",
        "dgpsid",
    }
)
_GPX_LAYER: Final = "waypoints"  # its routes and tracks are paths, not places


def is_gis(path: Path) -> bool:
    """Whether a file's name says GDAL reads it here."""
    return path.name.lower().endswith(GIS_SUFFIXES)


def _pyogrio(path: Path) -> Any:
    try:
        import pyogrio
    except ImportError as exc:
        raise InputError(
            "reading GeoPackage, Shapefile, FlatGeobuf, KML, GPX and spreadsheets needs the "
            "'gis' extra (pyogrio, shapely, pyproj): pip install 'poiflow[gis]'",
            path=path,
        ) from exc
    return pyogrio


def _layers(path: Path, layer: str | None) -> list[str | None]:
    """The layers to read: the one named; else the file's only one, a GPX file's waypoints,
    or every folder of a KML file in order (Google My Maps keeps each map layer in one).

    Raises:
        InputError: The file has several layers and none is named, or not the one named.
    """
    pyogrio = _pyogrio(path)
    try:
        layers = _layer_names(pyogrio, path)
    except pyogrio.errors.DataSourceError as exc:
        raise CorruptInputError(f"not readable by GDAL ({exc})", path=path) from exc
    if layer is not None:
        if layer not in layers:
            raise InputError(
                f"no layer '{layer}' in it.{did_you_mean(layer, layers)} Its layers: "
                f"{', '.join(layers)}",
                path=path,
            )
        return [layer]
    suffix = _suffix(path)
    if suffix == ".gpx" and _GPX_LAYER in layers:
        return [_GPX_LAYER]
    if suffix in (".kml", ".kmz") and layers:
        return list(layers)
    if len(layers) > 1:
        raise InputError(
            f"it holds {len(layers)} layers ({', '.join(layers)}); name the one to read with "
            "'layer:' in a mapping file (--mapping)",
            path=path,
        )
    return [None]


def _layer_names(pyogrio: Any, path: Path) -> list[str]:
    """A file's layers. A GML file's are asked one by one, with the open options that keep
    GDAL from writing into the input's folder (its list of layers takes none)."""
    with _quiet():
        if _suffix(path) != ".gml":
            return [str(name) for name, _ in pyogrio.list_layers(_gdal_path(path))]
        names: list[str] = []
        while True:
            try:
                info = pyogrio.read_info(_gdal_path(path), layer=len(names), **_open_options(path))
            except pyogrio.errors.DataLayerError:
                return names
            names.append(str(info["layer_name"]))


def _suffix(path: Path) -> str:
    return next((s for s in GIS_SUFFIXES if path.name.lower().endswith(s)), "")


def gis_size(path: Path, layer: str | None) -> int | None:
    """How many features the layers read hold, where GDAL can tell without reading them."""
    pyogrio = _pyogrio(path)
    total = 0
    try:
        for chosen in _layers(path, layer):
            with _quiet():
                info = pyogrio.read_info(_gdal_path(path), layer=chosen, **_open_options(path))
            count = int(info["features"])
            if count < 0:
                return None
            total += count
    except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError):
        return None
    return total


def gis_rows(
    path: Path, file: Path, layer: str | None, batch_size: int, *, mapped: bool = False
) -> Rows:
    """Yield ``(table, origin per row, rejected rows)`` of a file's layers in batches;
    origins are ``FILE#feature=N`` (from 0; ``FILE#layer=L,feature=N`` where several layers
    are read). The geometry column is replaced by ``lat`` and ``lon``. A file of placemarks
    or waypoints (KML, GPX) has its own columns renamed to the flat format's (unless
    ``mapped``: a mapping names them) and its bookkeeping left out, and a placemark without
    an id is given one (``place_ids``).

    Raises:
        CorruptInputError: GDAL cannot read the file, or its coordinate system is unknown.
    """
    pyogrio = _pyogrio(file)
    where = origin_name(path, file)
    layers = _layers(file, layer)
    marks = _suffix(file) in _MARKS
    kml = _suffix(file) in (".kml", ".kmz")
    gml = _suffix(file) == ".gml"
    for chosen in layers:
        named = f"{where}#layer={chosen}," if len(layers) > 1 else f"{where}#"
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
                    meta["geometry_name"] or "wkb_geometry",
                    crs=meta["crs"],
                    known=bool(meta["crs"]),
                )
                to_wgs84 = wgs84_transform(meta["crs"], file)
                start = 0
                for batch in _quietly(reader):
                    table = pa.Table.from_batches([batch])
                    if not _whole(table, geometry.name):
                        table = _features(file, chosen, start, table.num_rows, geometry.name)
                    origins = [f"{named}feature={start + i}" for i in range(table.num_rows)]
                    start += table.num_rows
                    table, origins, rejected = located_rows(
                        table, origins, geometry, to_wgs84, file
                    )
                    if marks:
                        table = _as_places(table, mapped, chosen if kml else None)
                    elif gml:
                        table = _gml_columns(table, mapped)
                    yield table, origins, rejected
        except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError) as exc:
            raise CorruptInputError(f"not readable by GDAL ({exc})", path=file) from exc


def _degrees(value: float) -> str:
    """A coordinate to 1e-7 degrees as text: rounded first, so that -0.00000001 and
    0.00000001 are one point (``-0.0000000`` would not be)."""
    return f"{round(value, 7) + 0.0:.7f}"


def _whole(table: pa.Table, column: str) -> bool:
    """Whether a batch's geometry column is a valid Arrow array. GDAL's FlatGeobuf reader
    (3.10, in pyogrio 0.13's wheel) hands over a batch with features without geometry
    whose WKB offsets run past its data."""
    if column not in table.column_names:
        return True
    try:
        table.column(column).validate(full=True)
    except pa.ArrowInvalid:
        return False
    return True


def _features(file: Path, layer: str | None, skip: int, count: int, geometry: str) -> pa.Table:
    """Features ``skip`` to ``skip + count`` of a layer, read feature by feature (GDAL's
    older reading path) instead of as Arrow."""
    import pyogrio.raw

    with _quiet():
        meta, _, shapes, fields = pyogrio.raw.read(
            _gdal_path(file),
            layer=layer,
            skip_features=skip,
            max_features=count,
            **_open_options(file),
        )
    columns = {
        str(name): pa.array(values) for name, values in zip(meta["fields"], fields, strict=True)
    }
    columns[geometry] = pa.array(list(shapes), pa.binary())
    return pa.table(columns)


def _as_places(table: pa.Table, mapped: bool, folder: str | None = None) -> pa.Table:
    """Placemarks or waypoints in the flat format's columns: bookkeeping left out, their own
    columns renamed (unless a mapping names them), and an id for each that has none.

    ``folder`` is a KML layer's name: where the placemarks have no category column and the
    name is a kind of place the taxonomy knows ("Cafes"; not "Untitled layer" or "My
    trip"), it is their category."""
    table = table.drop_columns([c for c in table.column_names if c in _MARK_BOOKKEEPING])
    if mapped:
        return table
    renamed = [_MARK_NAMES.get(c, c) for c in table.column_names]
    if len(set(renamed)) == len(renamed):  # a column of the flat name already: left as is
        table = table.rename_columns(renamed)
    if folder and not any(c.lower() == "category" for c in table.column_names):
        from poiflow.taxonomy import taxonomy

        if taxonomy().from_text(folder) is not None:
            table = table.append_column("category", pa.array([folder] * len(table), pa.string()))
    if "name" not in table.column_names:
        return table
    ids = place_ids(
        table.column("name").to_pylist(),
        table.column("lat").to_pylist() if "lat" in table.column_names else [None] * len(table),
        table.column("lon").to_pylist() if "lon" in table.column_names else [None] * len(table),
    )
    if "id" in table.column_names:
        given = table.column("id").cast(pa.string()).to_pylist()
        ids = [g if g else made for g, made in zip(given, ids, strict=True)]
        return table.set_column(table.column_names.index("id"), "id", pa.array(ids, pa.string()))
    return table.append_column("id", pa.array(ids, pa.string()))


def place_ids(
    names: list[str | None], lats: list[float | None], lons: list[float | None]
) -> list[str | None]:
    """Ids for places that come without any: a hash of the name and the point (to 1e-7
    degrees, about a centimetre), so that the same placemark in a file exported again has
    the same id, and two identical placemarks one id (the second is then held back as a
    repeat). An edited placemark gets a new id. None where there is no name."""
    out: list[str | None] = []
    for name, lat, lon in zip(names, lats, lons, strict=True):
        if name is None:
            out.append(None)
            continue
        point = "" if lat is None or lon is None else f"{_degrees(lat)},{_degrees(lon)}"
        digest = hashlib.blake2b(f"{name}\x1f{point}".encode(), digest_size=8).hexdigest()
        out.append(f"h{digest}")
    return out


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
    is (GDAL would take a sheet of text alone for one without, its columns Field1, ...); a
    GML file's schema is not written beside it (GDAL writes a ``.gfs`` into the input's
    folder otherwise, which would change the input's fingerprint)."""
    suffix = path.suffix.lower()
    if suffix in (".xlsx", ".ods"):
        return {"HEADERS": "FORCE"}
    return {"WRITE_GFS": "NO"} if suffix == ".gml" else {}


# What GDAL's GML reader adds to a feature's own columns: each feature's envelope
# (``boundedBy``, where the file has no schema), and its ``gml:id``, which is an id where
# the feature has no ``id`` of its own.
_GML_ENVELOPE: Final = ("lowerCorner", "upperCorner")
_GML_ID: Final = "gml_id"


def _gml_columns(table: pa.Table, mapped: bool) -> pa.Table:
    """A GML layer's rows without the reader's envelope, and with its ``gml:id`` as the id
    where no column is (unless a mapping names the columns)."""
    table = table.drop_columns([c for c in _GML_ENVELOPE if c in table.column_names])
    if _GML_ID not in table.column_names or mapped:
        return table
    if "id" in table.column_names:
        return table.drop_columns([_GML_ID])
    return table.rename_columns(["id" if c == _GML_ID else c for c in table.column_names])


def _gdal_path(path: Path) -> str:
    """The path as GDAL opens it (a zipped shapefile through its virtual file system)."""
    return f"/vsizip/{path}" if path.name.lower().endswith(".zip") else str(path)
