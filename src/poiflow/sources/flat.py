"""The flat place format: a feed's columns mapped onto the flat fields, and records made of
them, column by column (a file's batches) or value by value (a request's few places).

A :class:`~poiflow.config.SourceMapping` says which column is which field, which columns
to leave out and which fields are the same for every row.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Final

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from poiflow.config import SourceMapping
from poiflow.errors import InputError, SchemaMismatchError, did_you_mean
from poiflow.schema import ADDRESS_TYPE, FLAT_EXTRA_FIELDS, FLAT_FIELDS, SOURCE_RECORD_SCHEMA
from poiflow.sources.spatial import Transform, wgs84_transform
from poiflow.sources.text import (
    NUMBER,
    as_text,
    degrees,
    not_a_time,
    read_number,
    read_time,
    strings_table,
)
from poiflow.text import fold

__all__ = [
    "COORDINATE_NAMES",
    "FLAT_KNOWN",
    "FlatFormat",
    "flat_place",
    "flat_record_rows",
    "flat_records",
]

FLAT_KNOWN: Final = (*FLAT_FIELDS, *FLAT_EXTRA_FIELDS)
"""Every field of the flat place format."""
COORDINATE_NAMES: Final = {"latitude": "lat", "longitude": "lon", "lng": "lon"}
"""Other names of the coordinates' columns that spreadsheets, web maps and GIS exports
write, read as ``lat`` and ``lon`` where the file has no column of that name (in any
case: ``Latitude``)."""
_FEW_VALUES: Final = 64  # up to this many rows of text are read value by value
_FLAT_ADDRESS: Final = {"freeform": "address", "locality": "city"}


class FlatFormat:
    """A feed's columns read as the flat place format.

    Args:
        mapping: Which column is which field, what to leave out, what every row has.
        name: The source of a row without a ``source`` column.
        path: The input, as errors name it where no file of it is.
    """

    def __init__(self, mapping: SourceMapping, name: str, path: Path):
        self.mapping = mapping
        self.name = name
        self.path = path
        wgs84_transform(mapping.crs, path)  # an unknown system, or no pyproj: said now

    def refuse_crs(self, geometry: str, file: Path | None = None) -> None:
        """Refuse a mapping's ``crs`` where the points come from a geometry (``geometry``:
        which), not from ``lat`` and ``lon`` columns: a geometry says its own system."""
        if self.mapping.crs is not None:
            raise InputError(
                f"the mapping's crs ({self.mapping.crs}) is for lat and lon columns, but the "
                f"points come from {geometry}, which says its own coordinate system (WGS 84 "
                "where it says none); leave crs out, or map the lat and lon columns",
                path=file or self.path,
            )

    def resolve_typed(self, schema: pa.Schema, file: Path | None = None) -> dict[str, str]:
        """``resolve`` of a table's columns, which also refuses a column of a type no flat
        field holds (lists, structs)."""
        file = file or self.path
        mapped = self.resolve(schema.names, file)
        for field, column in mapped.items():
            kind = schema.field(column).type
            if pa.types.is_dictionary(kind):
                kind = kind.value_type
            if pa.types.is_nested(kind):
                named = f"column '{column}'" + (f" ({field})" if field != column else "")
                raise SchemaMismatchError(
                    f"{named} holds {kind} values, and a flat field is a "
                    "text or a number: flatten it to one value per row (a list's first "
                    "item, a struct's field), or leave it out with the mapping's 'ignore:'",
                    path=file,
                )
        return mapped

    def resolve(self, file_columns: list[str], file: Path | None = None) -> dict[str, str]:
        """Map flat field -> file column, or raise naming what is missing or unknown (in
        ``file``, one of a folder's)."""
        file = file or self.path
        mapped = dict(self.mapping.columns)
        for field, column in mapped.items():
            if column not in file_columns:
                raise SchemaMismatchError(
                    f"the mapping reads column '{column}' for '{field}', but the file has no "
                    f"such column.{did_you_mean(column, file_columns)} "
                    f"Its columns: {', '.join(file_columns)}",
                    path=file,
                )
        used = set(mapped.values()) | set(self.mapping.ignore)
        named = {column.strip().lower() for column in file_columns}
        unknown: list[str] = []  # all of them said at once: one run to mend them all
        for column in file_columns:
            if column in used:
                continue
            field = column.strip().lower()
            if field in COORDINATE_NAMES:
                field = COORDINATE_NAMES[field]  # "latitude" is lat, "lng" lon
                if field in named:
                    raise SchemaMismatchError(
                        f"column '{column}' is another name of '{field}', which the file "
                        f"gives too (a '{field}' column, or its geometry): add '{column}' to "
                        "the mapping's 'ignore:' list, or map one of the two",
                        path=file,
                    )
            if field in FLAT_KNOWN and field not in mapped:
                mapped[field] = column
                continue
            if field in FLAT_KNOWN:
                given = (
                    f"which the mapping reads from column '{mapped[field]}'"
                    if field in self.mapping.columns
                    else f"as column '{mapped[field]}' is"
                )
                raise SchemaMismatchError(
                    f"column '{column}' is the flat field '{field}', {given}; add "
                    f"'{column}' to the mapping's 'ignore:' list, or map one of the two",
                    path=file,
                )
            unknown.append(column)
        if unknown:
            raise SchemaMismatchError(_unknown_columns(unknown), path=file)
        for required in ("id", "name"):
            if required not in mapped and required not in self.mapping.constants:
                raise SchemaMismatchError(
                    f"no '{required}' column; every flat place file needs 'id' and 'name' "
                    "(map them with --mapping if they are called something else)",
                    path=file,
                )
        return mapped

    def records(self, raw: pa.Table, origins: list[str], columns: dict[str, str]) -> pa.Table:
        """Source records (``SOURCE_RECORD_SCHEMA``) of a raw table's flat columns, their
        points in WGS 84 (the mapping's ``crs`` reprojected)."""
        if raw.num_rows <= _FEW_VALUES and all(
            pa.types.is_string(t) or pa.types.is_large_string(t) for t in raw.schema.types
        ):
            records = self._few_records(raw, origins, columns)
        else:
            records = self._columnar_records(raw, origins, columns)
        if self.mapping.crs is None:
            return records
        return _reprojected(records, _transform_of(self.mapping.crs, self.path))

    @functools.cached_property
    def _categories(self) -> dict[str, str]:
        """The mapping's categories by folded label."""
        return {fold(label): category for label, category in self.mapping.categories.items()}

    def _category_of(self, label: str | None) -> str | None:
        """The taxonomy's category the mapping gives a label, else the label."""
        if label is None or not self._categories:
            return label
        return self._categories.get(fold(label), label)

    def _categories_of(self, labels: pa.Array) -> pa.Array:
        """``_category_of`` each label."""
        if not self._categories:
            return labels
        distinct = pc.unique(labels)  # a few labels, however many rows
        mapped = pa.array([self._category_of(v) for v in distinct.to_pylist()], pa.string())
        return pc.take(mapped, pc.index_in(labels, value_set=distinct))

    def _few_records(self, raw: pa.Table, origins: list[str], columns: dict[str, str]) -> pa.Table:
        """``_columnar_records`` of a few rows of text, value by value in Python: the same
        rules (trimming is Arrow's, whose whitespace is Python's), without the eighty-odd
        Arrow calls that a request of one record would otherwise pay for."""
        rows = self._record_rows(raw.to_pylist(), origins, columns)
        return pa.Table.from_pylist(rows, schema=SOURCE_RECORD_SCHEMA)

    def _record_rows(
        self, raw: list[dict[str, str | None]], origins: list[str], columns: dict[str, str]
    ) -> list[dict[str, Any]]:
        """Source records as rows (``SOURCE_RECORD_SCHEMA``'s fields) of raw rows of text."""
        out = []
        for i, row in enumerate(raw):
            issues: list[str] = []

            def text(field: str, row: dict[str, Any] = row) -> str | None:
                if field not in columns:
                    return self.mapping.constants.get(field)
                value = row[columns[field]]
                return None if value is None else (value.strip() or None)

            def number(field: str, issues: list[str] = issues) -> float | None:
                return read_number(field, text(field), issues)

            source, category, brand = text("source"), text("category"), text("brand")
            mapped = self._category_of(category)
            update_time = read_time(text("update_time"), issues)
            lat, lon = number("lat"), number("lon")
            out.append(
                {
                    "source": self.name if source is None else source,
                    "id": text("id"),
                    "names": {"primary": text("name"), "alternates": None},
                    "categories": None
                    if category is None
                    else {"primary": mapped, "alternate": None},
                    "source_category": category,
                    "lat": lat,
                    "lon": lon,
                    "address": {
                        part: text(_FLAT_ADDRESS.get(part, part)) for part in ADDRESS_TYPE.names
                    },
                    "phones": _singleton(text("phone")),
                    "websites": _singleton(text("website")),
                    "emails": _singleton(text("email")),
                    "brand": None if brand is None else {"name": brand, "wikidata": None},
                    "opening_hours": text("opening_hours"),
                    "operating_status": text("operating_status"),
                    "update_time": update_time,
                    "origin": origins[i],
                    "issues": issues or None,
                }
            )
        return out

    def _columnar_records(
        self, raw: pa.Table, origins: list[str], columns: dict[str, str]
    ) -> pa.Table:
        n = raw.num_rows
        issues: dict[int, list[str]] = {}

        def text(field: str) -> pa.Array:
            if field in columns:
                array = _combine(raw.column(columns[field]))
                if not pa.types.is_string(array.type):  # large, view, dictionary, numbers
                    try:
                        array = pc.cast(array, pa.string())
                    except pa.ArrowInvalid as exc:  # bytes that are not UTF-8
                        raise SchemaMismatchError(
                            f"column '{columns[field]}' holds bytes that are not UTF-8 "
                            f"text ({exc})",
                            path=self.path,
                        ) from exc
                array = pc.utf8_trim_whitespace(array)
                return pc.if_else(pc.equal(array, ""), pa.scalar(None, pa.string()), array)
            constant = self.mapping.constants.get(field)
            return pa.array([constant] * n, pa.string())

        def number(field: str) -> pa.Array:
            if field in columns and pa.types.is_floating(raw.column(columns[field]).type):
                return pc.cast(_combine(raw.column(columns[field])), pa.float64())
            if field in columns and pa.types.is_integer(raw.column(columns[field]).type):
                return pc.cast(_combine(raw.column(columns[field])), pa.float64())
            values = text(field)
            fixed = pc.if_else(
                pc.match_substring(values, "."), values, pc.replace_substring(values, ",", ".")
            )
            ok = pc.fill_null(pc.match_substring_regex(fixed, f"^{NUMBER.pattern}$"), False)
            read = pc.cast(pc.if_else(ok, fixed, pa.scalar(None, pa.string())), pa.float64())
            unread = np.flatnonzero(
                ~ok.to_numpy(zero_copy_only=False)
                & values.is_valid().to_numpy(zero_copy_only=False)
            )
            if not len(unread):
                return read
            out = read.to_numpy(zero_copy_only=False).astype(np.float64)
            for row in unread.tolist():
                value = values[row].as_py()
                if (angle := degrees(field, value)) is not None:  # "60°10′05.7″N"
                    out[row] = angle
                else:
                    issues.setdefault(row, []).append(f"{field}: '{value}' is not a number")
            return pa.array(out, pa.float64(), mask=np.isnan(out))

        source = pc.fill_null(text("source"), self.name)
        update_time = self._times(text("update_time"), issues)
        address = pa.StructArray.from_arrays(
            # Every address part has a flat column of its own name, but for these two.
            [text(_FLAT_ADDRESS.get(part, part)) for part in ADDRESS_TYPE.names],
            fields=list(ADDRESS_TYPE),
        )
        category = text("category")
        mapped = self._categories_of(category)
        brand = text("brand")
        arrays = {
            "source": source,
            "id": text("id"),
            "names": pa.StructArray.from_arrays(
                [text("name"), pa.nulls(n, SOURCE_RECORD_SCHEMA.field("names").type[1].type)],
                fields=list(SOURCE_RECORD_SCHEMA.field("names").type),
            ),
            "categories": pa.StructArray.from_arrays(
                [mapped, pa.nulls(n, pa.list_(pa.string()))],
                fields=list(SOURCE_RECORD_SCHEMA.field("categories").type),
                mask=pc.is_null(category),
            ),
            "source_category": category,
            "lat": number("lat"),
            "lon": number("lon"),
            "address": address,
            "phones": _singletons(text("phone")),
            "websites": _singletons(text("website")),
            "emails": _singletons(text("email")),
            "brand": pa.StructArray.from_arrays(
                [brand, pa.nulls(n, pa.string())],
                fields=list(SOURCE_RECORD_SCHEMA.field("brand").type),
                mask=pc.is_null(brand),
            ),
            "opening_hours": text("opening_hours"),
            "operating_status": text("operating_status"),
            "update_time": update_time,
            "origin": pa.array(origins, pa.string()),
        }
        arrays["issues"] = pa.array([issues.get(i) for i in range(n)], pa.list_(pa.string()))
        return pa.Table.from_pydict(arrays, schema=SOURCE_RECORD_SCHEMA)

    @staticmethod
    def _times(values: pa.Array, issues: dict[int, list[str]]) -> pa.Array:
        parsed: dict[str, datetime | None] = {}
        out: list[datetime | None] = []
        for row, value in enumerate(values.to_pylist()):
            if value is not None and value not in parsed:
                parsed[value] = read_time(value, [])
            if value is not None and parsed[value] is None:
                issues.setdefault(row, []).append(not_a_time(value))
            out.append(None if value is None else parsed[value])
        return pa.array(out, pa.timestamp("ms", tz="UTC"))


@functools.lru_cache(maxsize=8)
def _transform_of(crs: str, path: Path) -> Transform | None:
    return wgs84_transform(crs, path)


def _reprojected(records: pa.Table, transform: Transform | None) -> pa.Table:
    """``records`` with each point that has both coordinates moved by ``transform`` (lon
    as x, lat as y); a missing coordinate stays missing."""
    if transform is None:
        return records
    lat = records.column("lat").to_numpy(zero_copy_only=False).astype(np.float64)
    lon = records.column("lon").to_numpy(zero_copy_only=False).astype(np.float64)
    both = ~(np.isnan(lat) | np.isnan(lon))
    if both.any():
        lon[both], lat[both] = transform(lon[both], lat[both])
    for name, values in (("lat", lat), ("lon", lon)):
        index = records.schema.get_field_index(name)
        column = pa.array(values, pa.float64(), from_pandas=True)  # NaN: missing
        records = records.set_column(index, records.schema.field(index), column)
    return records


def flat_records(
    objects: Sequence[Mapping[str, Any]], source: str, origins: Sequence[str]
) -> pa.Table:
    """Source records (``SOURCE_RECORD_SCHEMA``) of places given as objects in the flat
    place format, read exactly as a JSON-lines file of them would be.

    Args:
        objects: The places (keys are flat fields; values are strings, numbers or null).
        source: The source of an object without a ``source`` field.
        origins: Where each object came from (``"request[3]"``), for error messages.

    Raises:
        SchemaMismatchError: A key is not a flat field, or ``id`` or ``name`` is missing.
    """
    reader, rows, columns = _flat_text(objects, source)
    raw = strings_table(rows, columns)
    return reader.records(raw, list(origins), reader.resolve(raw.column_names))


def flat_record_rows(
    objects: Sequence[Mapping[str, Any]], source: str, origins: Sequence[str]
) -> list[dict[str, Any]]:
    """``flat_records`` as rows (``SOURCE_RECORD_SCHEMA``'s fields, as ``to_pylist`` gives
    them), read value by value without Arrow: for a request's few places."""
    reader, rows, columns = _flat_text(objects, source)
    resolved = reader.resolve(list(columns))
    raw = [{name: row.get(name) for name in columns} for row in rows]
    return reader._record_rows(raw, list(origins), resolved)


def flat_place(record: Mapping[str, Any]) -> dict[str, Any]:
    """A place (a ``PLACE_SCHEMA`` row) back in the flat place format, as a source or a
    request to ``POST /match`` would send it: the first phone and website, the address
    in parts; fields without a value are left out."""
    address = record["address"] or {}
    flat = {
        "source": record["source"],
        "id": record["id"],
        "name": record["names"]["primary"],
        "lat": record["lat"],
        "lon": record["lon"],
        "category": (record["categories"] or {}).get("primary"),
        "street": address.get("street"),
        "housenumber": address.get("housenumber"),
        "postcode": address.get("postcode"),
        "city": address.get("locality"),
        "country": address.get("country"),
        "phone": (record["phones"] or [None])[0],
        "website": (record["websites"] or [None])[0],
    }
    return {k: v for k, v in flat.items() if v is not None}


def _flat_text(
    objects: Sequence[Mapping[str, Any]], source: str
) -> tuple[FlatFormat, list[dict[str, str | None]], dict[str, None]]:
    """A reader of the flat place format, each object's values as text, and every key."""
    reader = FlatFormat(SourceMapping(source=source), source, Path(f"{source}.jsonl"))
    columns: dict[str, None] = {}
    for item in objects:
        columns.update(dict.fromkeys(item))
    return reader, [{k: as_text(v) for k, v in item.items()} for item in objects], columns


def _combine(column: pa.ChunkedArray | pa.Array) -> pa.Array:
    if isinstance(column, pa.ChunkedArray):
        return column.combine_chunks() if column.num_chunks else pa.array([], column.type)
    return column


def _singleton(value: str | None) -> list[str] | None:
    return None if value is None else [value]


def _singletons(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    """A list column holding each non-null value alone (null stays null), made from the
    column's buffers: offsets that step by one at each value."""
    strings = _combine(values).cast(pa.string())
    valid = strings.is_valid().to_numpy(zero_copy_only=False)
    offsets = np.zeros(len(strings) + 1, dtype=np.int32)
    np.cumsum(valid, out=offsets[1:])
    return pa.ListArray.from_arrays(
        pa.array(offsets), strings.drop_null(), pa.list_(pa.string()), mask=pa.array(~valid)
    )


def _unknown_columns(columns: list[str]) -> str:
    """What a feed's columns that are no flat field are: each with the field it may have
    meant, then how a mapping maps or leaves them out."""
    if len(columns) == 1:
        said = f"unknown column '{columns[0]}'.{_meant(columns[0])}"
    else:
        each = [
            f"'{c}'" + (f" ({hint.strip().lower()})" if (hint := _meant(c)) else "")
            for c in columns
        ]
        said = f"unknown columns {', '.join(each)}."
    return (
        f"{said} The flat place format has: {', '.join(FLAT_KNOWN)}; map or ignore other "
        "columns with --mapping (see 'poiflow ingest --help')"
    )


def _meant(column: str) -> str:
    """``" Did you mean 'x'?"``: a flat field that is a word of the column's name ("Phone
    Number": phone), else the closest spelling, else nothing."""
    words = re.split(r"[^a-z0-9]+", column.strip().lower())
    field = next((f for f in FLAT_KNOWN if f in words), None)
    if field is not None:
        return f" Did you mean '{field}'?"
    return did_you_mean(column.strip().lower(), FLAT_KNOWN)
