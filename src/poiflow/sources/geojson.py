"""GeoJSON features as rows of text, for the tabular reader.

A file is a FeatureCollection, read feature by feature as a stream (never whole in
memory), or one feature a line: newline-delimited GeoJSON and GeoJSON text sequences
(RFC 8142, each feature after a record separator). Each feature's properties become
columns (nested values as JSON text); its geometry becomes ``lat`` and ``lon`` (a point,
or the centroid of a polygon, line or collection); its ``id`` becomes the ``id`` column
where the properties have none. A feature with no geometry is a place without
coordinates; one that is not a feature, whose coordinates are not numbers, or that holds
NaN or Infinity (not JSON, though Python's ``json.dumps`` writes them), is a rejected row
with the reason, and the features after it are read.
"""

from __future__ import annotations

import functools
import itertools
import json
import math
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import ijson
import orjson
import pyarrow as pa

from poiflow.errors import CorruptInputError
from poiflow.sources.geometry import area_centroid, centroid
from poiflow.sources.json_items import BrokenJsonError, ConstantError, NotJson, list_items, not_json
from poiflow.sources.text import LazyRow, Rows, Wanted, as_text, batched_rows, open_bytes, open_text

__all__ = ["feature_row", "geojson_rows", "looks_like_geojson"]

_RECORD_SEPARATOR: Final = "\x1e"
_HEAD: Final = 1 << 20  # how much of a file is read to tell how it is laid out
_COLLECTION: Final = re.compile(r'"type"\s*:\s*"FeatureCollection"|"features"\s*:\s*\[')
_FEATURE: Final = re.compile(r'"type"\s*:\s*"Feature"')
_LONG_NUMBER: Final = re.compile(r"[0-9]{20}")  # may be an integer past 64 bits
_NOT_A_NUMBER: Final = re.compile(r"[:\[,]\s*-?(?:NaN|Infinity)\b")  # in the C parser's error
# The old GeoJSON's named coordinate system ("crs": {"type": "name", "properties": {"name":
# "urn:ogc:def:crs:EPSG::3067"}}), which GDAL still writes for data not in WGS 84.
_CRS: Final = re.compile(r'"crs"\s*:\s*\{[^{}]*"properties"\s*:\s*\{[^{}]*"name"\s*:\s*"([^"]+)"')
_WGS84: Final = frozenset({"4326", "CRS84"})


def looks_like_geojson(file: Path, encoding: str = "utf-8") -> bool:
    """Whether a ``.json`` or ``.jsonl`` file holds GeoJSON features (a FeatureCollection,
    or a feature a line) rather than flat places."""
    try:
        with open_text(file, encoding) as handle:
            head = handle.read(_HEAD)
    except (UnicodeDecodeError, OSError, pa.ArrowInvalid):
        return False
    first = head.lstrip()
    if first.startswith(_RECORD_SEPARATOR):
        return True
    line = first.split("\n", 1)[0]
    return bool(_COLLECTION.search(head[:4096]) or _FEATURE.search(line))


def geojson_rows(
    file: Path,
    where: str,
    encoding: str,
    batch_size: int,
    wanted: Wanted = None,
) -> Rows:
    """Yield ``(table of text columns, origin per row, rejected rows)`` for each run of
    ``batch_size`` features in the file; origins are ``where:LINE`` for a feature a line and
    ``where#feature=N`` (from 0) in a collection.

    Args:
        wanted: Which batches (numbered from 0 in the file) to build rows for; the others
            are yielded empty, unread beyond the parse (a worker reads only its share).

    Raises:
        CorruptInputError: The file is neither a FeatureCollection nor a feature a line, or
            it is cut short.
    """
    try:
        with open_text(file, encoding) as handle:
            head = handle.read(_HEAD)
        if _is_collection(head):
            yield from batched_rows(_collection(file, head, where), batch_size, wanted)
        else:
            yield from batched_rows(_lines(file, encoding, where), batch_size, wanted)
    except UnicodeDecodeError as exc:
        raise CorruptInputError(f"not {encoding} text ({exc})", path=file) from exc
    except ijson.JSONError as exc:
        raise CorruptInputError(
            f"not readable as GeoJSON ({exc}); is it cut short?", path=file
        ) from exc
    except (pa.ArrowInvalid, OSError) as exc:  # a compressed file cut short or corrupt
        raise CorruptInputError(f"cannot be read to its end ({exc})", path=file) from exc


def _is_collection(head: str) -> bool:
    """Whether a file's start is a FeatureCollection's (one JSON document), not one
    feature a line: its first line is not a whole feature."""
    first = head.lstrip()
    if first.startswith(_RECORD_SEPARATOR):
        return False
    line = first.split("\n", 1)[0].strip()
    try:
        value = json.loads(line)  # NaN and Infinity too: a feature a line all the same
    except ValueError:
        return True  # a document over many lines
    return not (isinstance(value, dict) and value.get("type") == "Feature")


def _collection(file: Path, head: str, where: str) -> Iterator[LazyRow]:
    if not _COLLECTION.search(head[:4096]):
        found = head.lstrip()[:40].replace("\n", " ")
        raise CorruptInputError(
            "not GeoJSON: expected a FeatureCollection, or one feature a line (GeoJSON "
            f"text sequences), but it starts {found!r}",
            path=file,
        )
    crs = _CRS.search(head)
    if crs and crs.group(1).replace("::", ":").upper().rsplit(":", 1)[-1] not in _WGS84:
        raise CorruptInputError(
            f"its coordinates are in {crs.group(1)}, and GeoJSON is read in WGS 84 "
            "longitude and latitude (RFC 7946); reproject it first, e.g. "
            f"'ogr2ogr -t_srs EPSG:4326 out.geojson {file.name}'",
            path=file,
        )

    def row_of(feature: Any) -> tuple[dict[str, str | None] | None, str, str]:
        if isinstance(feature, NotJson):
            return None, _not_json_reason(feature.constant), feature.text
        row, reason = feature_row(feature)
        return row, reason, "" if row is not None else _dump(feature)

    for number, feature in enumerate(_features(file)):
        yield f"{where}#feature={number}", functools.partial(row_of, feature)


def _features(file: Path) -> Iterator[Any]:
    """A collection's features, one by one, by the C parser where it can. It holds no
    integer past 64 bits (a feed's id written as a number of twenty digits: valid JSON),
    and it stops at NaN or Infinity (not JSON, though Python's ``json.dumps`` writes them
    for a missing value): where it meets either, Python's own parser reads the features
    from there on (:func:`_features_one_by_one`)."""
    read = 0
    try:
        with open_bytes(file) as handle:  # GeoJSON is UTF-8 (RFC 7946); the parser reads bytes
            for feature in ijson.items(handle, "features.item", use_float=True):
                yield feature
                read += 1
    except ijson.JSONError as exc:
        if "integer overflow" not in str(exc) and not _NOT_A_NUMBER.search(str(exc)):
            raise
        try:
            with open_text(file, "utf-8") as handle:
                yield from itertools.islice(list_items(handle, "features"), read, None)
        except BrokenJsonError as broken:
            raise ijson.JSONError(str(broken)) from broken


def _lines(file: Path, encoding: str, where: str) -> Iterator[LazyRow]:
    def row_of(text: str) -> tuple[dict[str, str | None] | None, str, str]:
        try:
            feature = _loads(text)
        except ValueError as exc:
            return None, _line_not_json(text, exc), text
        row, reason = feature_row(feature)
        return row, reason, "" if row is not None else text

    with open_text(file, encoding) as handle:
        for number, line in enumerate(handle, start=1):
            text = line.strip().lstrip(_RECORD_SEPARATOR).strip()
            if text:
                yield f"{where}:{number}", functools.partial(row_of, text)


def _loads(text: str) -> Any:
    """One JSON document. orjson reads an integer past 64 bits as a float (an id no longer
    itself) and one past a float's range not at all: a text with a number that long is
    read by Python's parser.

    Raises:
        ValueError: The text is not JSON (orjson's error is one too).
    """
    if _LONG_NUMBER.search(text) is None:
        return orjson.loads(text)
    return json.loads(text, parse_constant=not_json)


def _not_json_reason(constant: str) -> str:
    return f"{constant} is not JSON (Python's json.dumps writes it for a missing value): write null"


def _line_not_json(text: str, error: ValueError) -> str:
    """Why a line is not JSON: a constant JSON has not, named, or the parser's error."""
    try:
        json.loads(text, parse_constant=not_json)
    except ConstantError as constant:
        return _not_json_reason(constant.name)
    except ValueError:
        pass
    return f"not JSON: {error}"


def feature_row(feature: Any) -> tuple[dict[str, str | None] | None, str]:
    """A feature's row of text columns, or ``(None, why it is not a place)``."""
    if not isinstance(feature, dict) or feature.get("type") != "Feature":
        kind = feature.get("type") if isinstance(feature, dict) else type(feature).__name__
        return None, f"expected a GeoJSON Feature, found {kind!r}"
    properties = feature.get("properties")
    if properties is None:
        properties = {}
    if not isinstance(properties, dict):
        return None, f"properties: expected an object, found {type(properties).__name__}"
    tags = properties.get("tags")
    if isinstance(tags, dict):  # osmtogeojson's older layout: {"type", "id", "tags": {...}}
        kind, number = properties.get("type"), properties.get("id")
        properties = {k: v for k, v in properties.items() if k not in ("tags", "type")} | tags
        if kind in ("node", "way", "relation") and number is not None:
            properties["id"] = f"{kind}/{number}"
    row = {str(key): as_text(value) for key, value in properties.items()}
    if row.get("id") is None and feature.get("id") is not None:
        row["id"] = as_text(feature["id"])
    geometry = feature.get("geometry")
    if geometry is not None:
        try:
            lat, lon = point_of(geometry)
        except ValueError as exc:
            return None, f"geometry: {exc}"
        if lat is not None and lon is not None:
            row["lat"], row["lon"] = repr(lat), repr(lon)
    return row, ""


def point_of(geometry: Any) -> tuple[float | None, float | None]:
    """(lat, lon) of a GeoJSON geometry: a point, the mean of points, the centroid of a
    line's vertices or of polygons' outer rings (weighted by area); (None, None) where it
    has no coordinates.

    Raises:
        ValueError: The geometry is not GeoJSON or its coordinates are not numbers.
    """
    if not isinstance(geometry, dict):
        raise ValueError(f"expected an object, found {type(geometry).__name__}")
    kind = geometry.get("type")
    if kind == "GeometryCollection":
        members = geometry.get("geometries")
        if not isinstance(members, list):
            raise ValueError("a GeometryCollection without 'geometries'")
        points = [point_of(member) for member in members]
        located = [(lon, lat) for lat, lon in points if lat is not None and lon is not None]
        return centroid(located) if located else (None, None)
    coordinates = geometry.get("coordinates")
    if kind == "Point":
        if coordinates in (None, []):
            return None, None
        lon, lat = _position(coordinates)
        return lat, lon
    if kind in ("MultiPoint", "LineString"):
        return centroid(_positions(coordinates))
    if kind == "MultiLineString":
        return centroid([p for line in _parts(coordinates) for p in _positions(line)])
    if kind == "Polygon":
        rings = _parts(coordinates)
        return area_centroid([_positions(rings[0])] if rings else [])
    if kind == "MultiPolygon":
        polygons = [_parts(polygon) for polygon in _parts(coordinates)]
        return area_centroid([_positions(rings[0]) for rings in polygons if rings])
    raise ValueError(f"unknown geometry type {kind!r}")


def _parts(coordinates: Any) -> list[Any]:
    if coordinates is None:
        return []
    if not isinstance(coordinates, list):
        raise ValueError(f"coordinates: expected a list, found {type(coordinates).__name__}")
    return coordinates


def _positions(coordinates: Any) -> list[tuple[float, float]]:
    """The ``(lon, lat)`` of a list of positions."""
    return [_position(position) for position in _parts(coordinates)]


def _position(position: Any) -> tuple[float, float]:
    """A position's ``(lon, lat)``, as finite numbers."""
    if isinstance(position, list | tuple) and len(position) >= 2:
        x, y = position[0], position[1]
        if all(isinstance(v, int | float) and not isinstance(v, bool) for v in (x, y)):
            try:
                lon, lat = float(x), float(y)
            except OverflowError:
                lon = lat = math.inf
            if math.isfinite(lon) and math.isfinite(lat):
                return lon, lat
    raise ValueError(f"a position must be [longitude, latitude] numbers, found {position!r}")


def _dump(value: Any) -> str:
    try:
        return orjson.dumps(value, default=str).decode()
    except TypeError:
        return repr(value)
