"""A table's geometry column as a place's ``lat`` and ``lon``.

GeoParquet files (what geopandas' ``to_parquet``, DuckDB's spatial extension, GDAL and
Sedona write), GeoArrow columns (a GeoDataFrame's ``to_arrow()``) and GDAL's layers carry
where a place is as a geometry, not as two numbers: a point, or a building's polygon, in
WGS 84 or in another coordinate system. Here such a column becomes ``lat`` and ``lon``:
a point's coordinates, or a shape's centroid, reprojected to WGS 84 with PROJ where the
column says it is in another system.

Points are read without any library (most POI files hold nothing else); shapes need
shapely, and another coordinate system pyproj (the ``gis`` extra).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
import pyarrow as pa

from poiflow.errors import CorruptInputError, InputError
from poiflow.sources.geometry import points_from_wkb

__all__ = [
    "TEXT_GEOMETRY_NAMES",
    "GeometryColumn",
    "Transform",
    "geometry_column",
    "located_rows",
    "refuse_projected",
    "text_geometry_column",
    "wgs84_transform",
    "with_points",
]

Transform = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]
"""Longitudes and latitudes in WGS 84 of a column's x and y."""

_WGS84: Final = "EPSG:4326"
# Names of WGS 84 with longitude first or latitude first: the same points either way here,
# since GeoParquet and GeoArrow always store x (longitude) first.
_WGS84_IDS: Final = {("OGC", "CRS84"), ("EPSG", "4326"), ("OGC", "CRS:84")}
_WKB: Final = ("geoarrow.wkb", "ogc.wkb", "geoarrow.wkt")
_POINT: Final = "geoarrow.point"
_EXTENSION: Final = b"ARROW:extension:name"
_EXTENSION_META: Final = b"ARROW:extension:metadata"
_GDAL_EXTRA: Final = "pip install 'poiflow[gis]'"


@dataclass(frozen=True, slots=True)
class GeometryColumn:
    """Where a table keeps its places' geometry, and how.

    Attributes:
        name: The column.
        encoding: ``"WKB"``, ``"WKT"``, or one of GeoArrow's native encodings (``"point"``,
            ``"polygon"``, ...), as GeoParquet's metadata names them.
        crs: The coordinate system as the table gives it (PROJJSON, or a string PROJ
            reads); None for WGS 84.
        known: Whether the table says which system it is in at all (a GeoParquet
            column's ``"crs": null`` does not: its coordinates are read as WGS 84 if
            they can be).
        derived: Columns computed from the geometry that go with it (GeoParquet 1.1's
            ``bbox`` covering column).
    """

    name: str
    encoding: str = "WKB"
    crs: str | dict[str, Any] | None = None
    known: bool = True
    derived: tuple[str, ...] = ()


def geometry_column(schema: pa.Schema) -> GeometryColumn | None:
    """The table's primary geometry column, from GeoParquet's ``geo`` metadata or from a
    GeoArrow extension type on a column; None where it has none."""
    metadata = schema.metadata or {}
    if b"geo" in metadata:
        try:
            geo = json.loads(metadata[b"geo"])
            primary = geo["primary_column"]
            column = geo["columns"][primary]
        except (ValueError, KeyError, TypeError):
            geo = None
        if geo is not None and primary in schema.names:
            covering = column.get("covering") or {}
            bbox = covering.get("bbox") if isinstance(covering, dict) else None
            derived = tuple(
                {part[0] for part in bbox.values() if isinstance(part, list) and part}
                if isinstance(bbox, dict)
                else ()
            )
            return GeometryColumn(
                name=primary,
                encoding=str(column.get("encoding", "WKB")),
                # Absent: OGC:CRS84, by the specification; null: not known.
                crs=_not_wgs84(column["crs"]) if "crs" in column else None,
                known="crs" not in column or column["crs"] is not None,
                derived=tuple(sorted(d for d in derived if d in schema.names)),
            )
    for field in schema:
        extension = _extension_name(field)
        if extension in (*_WKB, _POINT):
            crs = _extension_crs(field)
            return GeometryColumn(
                name=field.name,
                encoding={"geoarrow.point": "point", "geoarrow.wkt": "WKT"}.get(extension, "WKB"),
                crs=_not_wgs84(crs),
                known=crs is not None,
            )
    return None


def _extension_name(field: pa.Field) -> str | None:
    if isinstance(field.type, pa.ExtensionType):
        return str(field.type.extension_name)
    name = (field.metadata or {}).get(_EXTENSION)
    return name.decode() if name else None


def _extension_crs(field: pa.Field) -> str | dict[str, Any] | None:
    """A GeoArrow column's coordinate system (its extension metadata's ``crs``)."""
    if isinstance(field.type, pa.ExtensionType):
        raw: bytes | None = field.type.__arrow_ext_serialize__()
    else:
        raw = (field.metadata or {}).get(_EXTENSION_META)
    try:
        meta = json.loads(raw) if raw else {}
    except ValueError:
        return None
    crs = meta.get("crs") if isinstance(meta, dict) else None
    return crs if isinstance(crs, str | dict) else None


def _not_wgs84(crs: Any) -> str | dict[str, Any] | None:
    """``crs`` where it is not plainly WGS 84 (by its id), else None."""
    if crs is None:
        return None
    if isinstance(crs, dict):
        ident = crs.get("id") or {}
        if isinstance(ident, dict) and (
            (str(ident.get("authority")), str(ident.get("code"))) in _WGS84_IDS
        ):
            return None
        return crs
    text = str(crs).strip()
    if tuple(text.upper().split(":", 1)) in _WGS84_IDS or text.upper() == "WGS84":
        return None
    return text


def wgs84_transform(crs: str | dict[str, Any] | None, path: Path | str) -> Transform | None:
    """A transform of a column's x and y into WGS 84 longitude and latitude; None where
    it is in WGS 84 already or names no coordinate system.

    Raises:
        InputError: pyproj is not installed.
        CorruptInputError: PROJ does not know the system.
    """
    if not crs:
        return None
    try:
        import pyproj
    except ImportError as exc:
        raise InputError(
            f"its coordinates are in another coordinate system than WGS 84 ({_crs_name(crs)}); "
            f"reprojecting them needs the 'gis' extra: {_GDAL_EXTRA}",
            path=path,
        ) from exc
    try:
        source = (
            pyproj.CRS.from_json_dict(crs)
            if isinstance(crs, dict)
            else pyproj.CRS.from_user_input(crs)
        )
    except pyproj.exceptions.CRSError as exc:
        raise CorruptInputError(
            f"its coordinate system is not one PROJ knows ({_crs_name(crs)}): {exc}", path=path
        ) from exc
    if source.equals(pyproj.CRS.from_user_input(_WGS84), ignore_axis_order=True):
        return None
    transformer = pyproj.Transformer.from_crs(source, _WGS84, always_xy=True)
    transform: Transform = transformer.transform
    return transform


def _crs_name(crs: str | dict[str, Any]) -> str:
    if isinstance(crs, dict):
        ident = crs.get("id") or {}
        if isinstance(ident, dict) and ident.get("authority"):
            return f"{ident['authority']}:{ident.get('code')}"
        return str(crs.get("name", "PROJJSON"))
    return crs if len(crs) < 80 else crs[:77] + "..."


def with_points(
    table: pa.Table, column: GeometryColumn, transform: Transform | None, path: Path | str
) -> tuple[pa.Table, np.ndarray]:
    """The table with ``lat`` and ``lon`` (a point's, or a shape's centroid) in place of
    its geometry column and the columns derived from it (any ``lat`` and ``lon`` of its
    own are replaced too), and the rows whose geometry cannot be read.

    Raises:
        InputError: The column holds shapes and shapely is not installed, or is in a
            native encoding other than points.
    """
    values = table.column(column.name)
    if isinstance(values.type, pa.ExtensionType):
        values = pa.chunked_array([c.storage for c in values.chunks], values.type.storage_type)
    encoding = _read_as(column, values.type)
    if encoding == "TEXT":
        _refuse_nested_text(column, values.type, path)
    if encoding == "WKB":
        x, y, bad = _wkb_points(values, path)
    elif encoding == "TEXT":  # WKT or hex WKB, SRIDs included (EWKT, PostGIS's EWKB)
        x, y, bad = _text_points(values, transform, path)
        transform = None  # done, by each value's own SRID where it has one
    elif encoding == "WKT":
        x, y, bad = _shapes(_shapely(path).from_wkt, values, path)
    elif encoding == "POINT":
        x, y, bad = _native_points(values)
    elif encoding in _NATIVE_DEPTH:
        x, y, bad = _native_shapes(values, encoding, path)
    else:
        raise InputError(
            f"its geometry column '{column.name}' is in an encoding not read here "
            f"('{column.encoding}'); write it as WKB "
            "(geopandas: to_parquet(..., geometry_encoding='WKB'))",
            path=path,
        )
    if transform is not None:
        x, y = transform(x, y)
    located = np.isfinite(x) & np.isfinite(y)
    gone = {column.name, *column.derived}
    table = table.drop_columns(
        [c for c in table.column_names if c in gone or c.strip().lower() in ("lat", "lon")]
    )
    table = table.append_column("lat", pa.array(y, pa.float64(), mask=~located))
    table = table.append_column("lon", pa.array(x, pa.float64(), mask=~located))
    return table, bad


def _read_as(column: GeometryColumn, kind: pa.DataType) -> str:
    """How a geometry column's values are read: its encoding, but where a column said to
    be text (a table's 'geometry' with no metadata saying what it is) holds bytes, WKB, and
    where it holds structs of numbers ``x`` and ``y``, points."""
    encoding = column.encoding.upper()
    if encoding != "TEXT":
        return encoding
    if _is_bytes(kind):
        return "WKB"
    return "POINT" if _is_point_struct(kind) else encoding


def _is_point_struct(kind: pa.DataType) -> bool:
    """Whether values of ``kind`` are GeoArrow's native points: structs of numbers ``x``
    and ``y`` (and maybe ``z``)."""
    if not pa.types.is_struct(kind):
        return False
    fields = {kind.field(i).name: kind.field(i).type for i in range(kind.num_fields)}
    return all(
        name in fields and (pa.types.is_floating(fields[name]) or pa.types.is_integer(fields[name]))
        for name in ("x", "y")
    )


def _refuse_nested_text(column: GeometryColumn, kind: pa.DataType, path: Path | str) -> None:
    """Refuse a column said to be text whose values are lists, maps or structs that are
    not points: neither a geometry as text nor as WKB."""
    if pa.types.is_nested(kind):
        raise InputError(
            f"its geometry column '{column.name}' holds {kind} values, neither text (WKT, "
            "GeoJSON), WKB nor points of x and y: write it as one of those, or leave it out "
            "with the mapping's 'ignore:'",
            path=path,
        )


def _is_bytes(kind: pa.DataType) -> bool:
    return bool(
        pa.types.is_binary(kind) or pa.types.is_large_binary(kind) or pa.types.is_binary_view(kind)
    )


def _wkb_points(
    values: pa.ChunkedArray, path: Path | str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """x, y and unreadable rows of WKB geometries: points read directly, the others (a
    polygon, a line, a value that is not WKB) by shapely, at their centroids."""
    if _is_bytes(values.type) and not pa.types.is_binary(values.type):
        values = values.cast(pa.binary())
    lat, lon, others = points_from_wkb(values)
    if not others:
        return lon, lat, np.zeros(0, dtype=np.int64)
    rows = np.asarray(others, dtype=np.int64)
    shapely = _shapely(path)
    x, y, bad = _shapes(shapely.from_wkb, values.take(pa.array(rows)), path)
    lon[rows], lat[rows] = x, y
    return lon, lat, rows[bad]


# Arrow's (RE2) patterns, matched on trimmed text: an EWKT's SRID, and WKB in hex.
_SRID: Final = r"(?i)^SRID=(?P<srid>[0-9]+)\s*;"
_HEX: Final = r"^(00|01)[0-9A-Fa-f]{8,}$"
TEXT_GEOMETRY_NAMES: Final = frozenset(
    {"geometry", "geom", "the_geom", "wkt", "wkt_geom", "wkb", "wkb_geometry", "geog", "geography"}
)
"""Names of a text column of geometries (WKT, or WKB in hex as PostGIS and DuckDB print
it) that a CSV or JSON export of a spatial table has instead of ``lat`` and ``lon``."""


def text_geometry_column(names: list[str]) -> GeometryColumn | None:
    """The column of a table without ``lat`` and ``lon`` whose name says it holds
    geometries as text (``TEXT_GEOMETRY_NAMES``, in any case); None where it has none, or
    has ``lat`` or ``lon`` columns."""
    lowered = {name.strip().lower(): name for name in names}
    if "lat" in lowered or "lon" in lowered:
        return None
    found = [lowered[n] for n in TEXT_GEOMETRY_NAMES if n in lowered]
    return GeometryColumn(found[0], encoding="TEXT", known=False) if len(found) == 1 else None


def _text_points(
    values: pa.ChunkedArray, transform: Transform | None, path: Path | str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """x and y in WGS 84, and unreadable rows, of geometries as text: WKT or hex WKB, each
    with an SRID or not (``SRID=3067;POINT (...)``, PostGIS's EWKB), or a GeoJSON geometry
    (a JSON-lines export's object). A value's SRID (other than 4326) says its system; one
    without is in ``transform``'s, or in WGS 84."""
    import pyarrow.compute as pc

    shapely = _shapely(path)
    texts = pc.utf8_trim_whitespace(values.cast(pa.string()))

    def where(mask: pa.ChunkedArray) -> np.ndarray:
        return np.asarray(pc.fill_null(mask, False).to_numpy(zero_copy_only=False), dtype=bool)

    given = where(pc.not_equal(texts, ""))
    is_hex = where(pc.match_substring_regex(texts, _HEX))
    is_json = where(pc.starts_with(texts, "{")) & ~is_hex  # GeoJSON: WGS 84 by definition
    is_wkt = given & ~is_hex & ~is_json
    tagged = pc.struct_field(pc.extract_regex(texts, _SRID), "srid")
    srids = np.array(  # a copy: the SRIDs of hex and GeoJSON values are set below
        pc.fill_null(pc.cast(tagged, pa.int64()), 0).to_numpy(zero_copy_only=False),
        dtype=np.int64,
    )
    wkt = pc.replace_substring_regex(texts, _SRID, "")
    raw = np.asarray(texts.to_numpy(zero_copy_only=False), dtype=object)
    shapes = np.full(len(raw), None, dtype=object)
    with np.errstate(over="ignore"):  # "1e400": not read (below), not warned of
        shapes[is_wkt] = shapely.from_wkt(
            np.asarray(wkt.to_numpy(zero_copy_only=False), dtype=object)[is_wkt],
            on_invalid="ignore",
        )
    from_hex = shapely.from_wkb(raw[is_hex], on_invalid="ignore")
    shapes[is_hex] = from_hex
    shapes[is_json] = shapely.from_geojson(raw[is_json], on_invalid="ignore")
    srids[is_hex] = shapely.get_srid(from_hex)
    srids[is_json] = 4326
    srids[~is_wkt & ~is_hex & ~is_json] = 0
    bad = _unread(shapely, given, shapes)
    x, y = _centroids(shapely, shapes)
    for srid in np.unique(srids):
        rows = srids == srid
        if srid in (0, 4326):
            move = None if srid == 4326 else transform
        else:
            move = wgs84_transform(f"EPSG:{int(srid)}", path)
        if move is not None:
            x[rows], y[rows] = move(x[rows], y[rows])
    return x, y, bad


def _shapes(
    parse: Callable[..., np.ndarray], values: pa.ChunkedArray | pa.Array, path: Path | str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """x and y of each shape's centroid, and the rows that do not parse (null rows have no
    point and are not bad)."""
    shapely = _shapely(path)
    raw = values.to_numpy(zero_copy_only=False)
    with np.errstate(over="ignore"):  # "1e400" in WKT: not read (below), not warned of
        shapes = parse(raw, on_invalid="ignore")
    given = values.is_valid().to_numpy(zero_copy_only=False)
    bad = _unread(shapely, given, shapes)
    x, y = _centroids(shapely, shapes)
    return x, y, bad


def _native_points(values: pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """x and y of GeoArrow's native points (a struct of ``x``, ``y`` and maybe ``z``)."""
    array = values.combine_chunks() if values.num_chunks else pa.array([], values.type)
    present = array.is_valid()
    x = pa.compute.if_else(present, array.field("x"), None)
    y = pa.compute.if_else(present, array.field("y"), None)
    return (
        x.to_numpy(zero_copy_only=False).astype(np.float64),
        y.to_numpy(zero_copy_only=False).astype(np.float64),
        np.zeros(0, dtype=np.int64),
    )


# GeoArrow's native shapes: how many levels of lists hold their points.
_NATIVE_DEPTH: Final = {
    "LINESTRING": 1,
    "MULTIPOINT": 1,
    "POLYGON": 2,
    "MULTILINESTRING": 2,
    "MULTIPOLYGON": 3,
}


def _native_shapes(
    values: pa.ChunkedArray, encoding: str, path: Path | str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """x and y of the centroids of GeoArrow's native shapes (lists of lists of ``x``/``y``
    structs, as GeoParquet 1.1's ``geoarrow`` encoding writes them); a null or empty shape
    has none."""
    shapely = _shapely(path)
    array = values.combine_chunks() if values.num_chunks else pa.array([], values.type)
    if array.offset or (len(array) and array.offsets[0].as_py()):
        # A slice: taken whole, so that every level's offsets start at its child's start.
        array = array.take(pa.array(np.arange(len(array))))
    offsets = []
    level: Any = array
    for _ in range(_NATIVE_DEPTH[encoding]):
        offsets.append(np.asarray(level.offsets.to_numpy(), dtype=np.int64))
        level = level.values
    coords = np.column_stack(
        [
            np.asarray(level.field(axis).to_numpy(zero_copy_only=False), dtype=np.float64)
            for axis in ("x", "y")
        ]
    )
    kind = getattr(shapely.GeometryType, encoding)
    shapes = shapely.from_ragged_array(kind, coords, tuple(reversed(offsets)))
    shapes[~array.is_valid().to_numpy(zero_copy_only=False)] = None
    x, y = _centroids(shapely, shapes)
    return x, y, np.zeros(0, dtype=np.int64)


def _unread(shapely: Any, given: np.ndarray, shapes: np.ndarray) -> np.ndarray:
    """The rows given a geometry that is not read: it does not parse, or a coordinate is
    past a number's range (WKT's "1e400", or infinity in WKB)."""
    with np.errstate(invalid="ignore"):
        infinite = np.isinf(shapely.bounds(shapes)).any(axis=1)
    return np.flatnonzero(given & (shapely.is_missing(shapes) | infinite))


def _centroids(shapely: Any, shapes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """x and y of each shape's centroid; NaN for a missing or empty one (GEOS refuses the
    x of an empty point, such as an empty polygon's centroid)."""
    middles = shapely.centroid(shapes)
    middles[shapely.is_empty(middles)] = None
    return shapely.get_x(middles), shapely.get_y(middles)


def _shapely(path: Path | str) -> Any:
    try:
        import shapely
    except ImportError as exc:
        raise InputError(
            f"its geometries include shapes that are not points; their centroids need the "
            f"'gis' extra: {_GDAL_EXTRA}",
            path=path,
        ) from exc
    return shapely


def refuse_projected(table: pa.Table, path: Path | str) -> None:
    """Refuse a table that names no coordinate system (a shapefile without its ``.prj``,
    a GeoParquet column whose ``crs`` is null) when its coordinates cannot be longitudes
    and latitudes: they are in another system, and every record would be held back as
    out of range."""
    lon = table.column("lon").to_numpy(zero_copy_only=False)
    lat = table.column("lat").to_numpy(zero_copy_only=False)
    far = np.flatnonzero((np.abs(lon) > 180) | (np.abs(lat) > 90))
    if len(far) > table.num_rows // 2:
        x, y = lon[far[0]], lat[far[0]]
        raise CorruptInputError(
            f"it names no coordinate system, and its coordinates ({x:.0f}, {y:.0f}) are not "
            "longitudes and latitudes; say which system it is in (a shapefile's .prj beside "
            "it, a GeoParquet column's 'crs'), or reproject it to WGS 84 (EPSG:4326)",
            path=path,
        )


def located_rows(
    table: pa.Table,
    origins: list[str],
    column: GeometryColumn,
    transform: Transform | None,
    path: Path | str,
) -> tuple[pa.Table, list[str], list[tuple[str, str, str]]]:
    """A batch with ``lat`` and ``lon`` in place of its geometry (``with_points``), less
    the rows whose geometry cannot be read, which come back as rejected rows
    ``(origin, reason, "")``.

    Raises:
        CorruptInputError: The column names no coordinate system and its coordinates are
            not longitudes and latitudes.
    """
    if column.name not in table.column_names:
        return table, origins, []
    read_as = _read_as(column, table.schema.field(column.name).type)
    what = {"WKT": "WKT", "TEXT": "WKT or hex WKB"}.get(read_as, "WKB")
    table, bad = with_points(table, column, transform, path)
    if not column.known:
        refuse_projected(table, path)
    if not len(bad):
        return table, origins, []
    rejected = [(origins[i], f"geometry: not readable as {what}", "") for i in bad]
    keep = np.setdiff1d(np.arange(table.num_rows), bad)
    return table.take(keep), [origins[i] for i in keep], rejected
