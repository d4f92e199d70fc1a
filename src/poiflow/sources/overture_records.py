"""Overture places rows -> source records, column by column (``overture_records``).

Overture's columns are nested (``names`` with ``common``/``rules``, ``categories`` or the newer
``taxonomy``, ``addresses``, ``brand``, ``sources``); a release may lack a column or a field
of one, which reads as missing.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Final

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from poiflow.errors import SchemaMismatchError
from poiflow.schema import SOURCE_RECORD_SCHEMA
from poiflow.sources.base import spread
from poiflow.sources.geometry import points_from_wkb
from poiflow.sources.text import read_number

__all__ = [
    "other_names",
    "overture_json_records",
    "overture_records",
    "overture_typed",
    "source_time",
]


def overture_records(table: pa.Table, name: str, where: str, start: int) -> pa.Table:
    """Source records (``SOURCE_RECORD_SCHEMA``) of a batch of Overture rows, column by
    column: the nested values are read by polars and Arrow; in Python only a record's other
    names (where it has any) and each distinct source time, once.

    Args:
        table: The rows, in Overture's columns (those a release lacks are missing).
        name: The source name written into each record.
        where: The file the rows come from, as origins name it.
        start: The number of the batch's first row in that file.
    """
    import polars as pl

    n = table.num_rows
    lat, lon, not_points = points_from_wkb(table.column("geometry"))
    frame = pl.from_arrow(table.drop_columns(["geometry"]))
    assert isinstance(frame, pl.DataFrame)
    schema = table.schema
    picked = frame.with_columns(_labels_expr(schema).alias("_labels")).select(
        _nested(schema, "names", "primary").cast(pl.String).alias("primary"),
        pl.col("_labels").list.first().alias("first"),
        pl.col("_labels").list.slice(1).alias("rest"),
        pl.col("_labels").list.len().alias("count"),
        _nested(schema, "brand", "names", "primary").cast(pl.String).alias("brand"),
        _nested(schema, "brand", "wikidata").cast(pl.String).alias("wikidata"),
    )
    none = pa.array(picked["count"].to_numpy() == 0)
    source_category = picked["first"].to_arrow().cast(pa.string())
    categories = pa.StructArray.from_arrays(
        [source_category, picked["rest"].to_arrow().cast(_STRINGS)],
        fields=list(_CATEGORIES),
        mask=none,
    )
    issues: list[list[str] | None] = [None] * n
    for i in not_points:
        issues[i] = ["geometry: not a point"]
    columns = {
        "source": pa.array([name] * n, pa.string()),
        "id": _column(table, "id", pa.string()),
        "names": pa.StructArray.from_arrays(
            [picked["primary"].to_arrow().cast(pa.string()), _alternates(table)],
            fields=list(_NAMES),
        ),
        "categories": categories,
        "lat": pa.array(lat, mask=np.isnan(lat)),
        "lon": pa.array(lon, mask=np.isnan(lon)),
        "address": _first_address(table),
        "phones": _column(table, "phones", _STRINGS),
        "websites": _column(table, "websites", _STRINGS),
        "emails": _column(table, "emails", _STRINGS),
        "brand": _brand(picked),
        "opening_hours": pa.nulls(n, pa.string()),
        "operating_status": _column(table, "operating_status", pa.string()),
        "update_time": _update_times(table),
        "source_category": source_category,
        "origin": pa.array([f"{where}#row={start + i}" for i in range(n)], pa.string()),
        "issues": pa.array(issues, _STRINGS),
    }
    return pa.Table.from_arrays(
        [columns[f.name] for f in SOURCE_RECORD_SCHEMA], schema=SOURCE_RECORD_SCHEMA
    )


def _json_types() -> dict[str, pa.DataType]:
    """The types of Overture's places columns (the published schema), as JSON is read into
    them: fields a feature lacks are null, fields the schema lacks are left out."""
    text = pa.string()
    texts = pa.list_(text)
    names = pa.struct(
        [
            ("primary", text),
            ("common", pa.map_(text, text)),
            (
                "rules",
                pa.list_(
                    pa.struct(
                        [
                            ("variant", text),
                            ("language", text),
                            ("value", text),
                            ("between", pa.list_(pa.float64())),
                            ("side", text),
                        ]
                    )
                ),
            ),
        ]
    )
    return {
        "id": text,
        "basic_category": text,
        "operating_status": text,
        "names": names,
        "categories": pa.struct([("primary", text), ("alternate", texts)]),
        "taxonomy": pa.struct([("primary", text), ("hierarchy", texts), ("alternates", texts)]),
        "websites": texts,
        "emails": texts,
        "phones": texts,
        "brand": pa.struct([("wikidata", text), ("names", names)]),
        "addresses": pa.list_(
            pa.struct(
                [(part, text) for part in ("freeform", "locality", "postcode", "region", "country")]
            )
        ),
        "sources": pa.list_(
            pa.struct(
                [
                    ("property", text),
                    ("dataset", text),
                    ("record_id", text),
                    ("update_time", text),
                    ("confidence", pa.float64()),
                ]
            )
        ),
    }


def overture_typed(table: pa.Table) -> pa.Table:
    """Overture's columns of a table in the published schema's types, where a table in
    memory has them otherwise: a GeoDataFrame read from a release has been through pandas,
    which types a column of nulls as null and turns ``common`` maps into lists of pairs.

    Raises:
        SchemaMismatchError: A column's values do not fit Overture's type.
    """
    for column, kind in _json_types().items():
        if column not in table.column_names or table.schema.field(column).type == kind:
            continue
        index = table.column_names.index(column)
        values = table.column(column)
        try:
            typed = values.cast(kind)
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
            try:
                typed = pa.chunked_array(
                    [pa.array([_as_overture(v) for v in values.to_pylist()], kind)]
                )
            except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
                raise SchemaMismatchError(
                    f"Overture's '{column}' is not as its schema has it ({exc})"
                ) from exc
        table = table.set_column(index, column, typed)
    return table


def overture_json_records(
    raw: pa.Table, origins: Sequence[str], name: str
) -> tuple[pa.Table, pa.Table, list[tuple[str, str, str]]]:
    """Source records of Overture places whose nested values are JSON text, as GeoJSON
    features carry them (Overture's own download tool writes a place's ``names``,
    ``addresses``, ``sources``, ... as objects), with ``lat`` and ``lon`` as text: the
    rows of ``raw`` read, their records, and the rows held back as ``(origin, reason, row
    as JSON)`` (a nested value that is not JSON).

    Raises:
        SchemaMismatchError: A column holds values of different kinds (a number in one
            feature, a text in another).
    """
    import orjson

    columns: dict[str, pa.Array] = {}
    bad: dict[int, str] = {}  # row: why it is held back
    for column, kind in _json_types().items():
        if column not in raw.column_names:
            if column == "names":  # every place has them; read as missing where none is
                columns[column] = pa.nulls(raw.num_rows, kind)
            continue
        values = raw.column(column).to_pylist()
        if kind != pa.string():
            for row, value in enumerate(values):
                try:
                    values[row] = None if value is None else _as_overture(orjson.loads(value))
                except orjson.JSONDecodeError as exc:
                    values[row] = None
                    bad.setdefault(row, f"{column}: not JSON ({exc})")
        try:
            columns[column] = pa.array(values, kind)
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            raise SchemaMismatchError(
                f"Overture's '{column}' is not as its schema has it ({exc})"
            ) from exc
    issues: list[str] = []
    points = []
    for lat, lon in zip(_texts(raw, "lat"), _texts(raw, "lon"), strict=True):
        y, x = read_number("lat", lat, issues), read_number("lon", lon, issues)
        points.append(None if x is None or y is None else struct.pack("<BIdd", 1, 1, x, y))
    columns["geometry"] = pa.array(points, pa.binary())
    records = overture_records(pa.table(columns), name, "", 0)
    records = records.set_column(
        records.schema.get_field_index("origin"), "origin", pa.array(origins, pa.string())
    )
    if not bad:
        return raw, records, []
    held = sorted(bad)
    rows = raw.take(held).to_pylist()
    rejected = [
        (origins[i], bad[i], orjson.dumps(row).decode()) for i, row in zip(held, rows, strict=True)
    ]
    keep = np.setdiff1d(np.arange(raw.num_rows), held)
    return raw.take(keep), records.take(keep), rejected


def _texts(raw: pa.Table, column: str) -> list[str | None]:
    if column not in raw.column_names:
        return [None] * raw.num_rows
    return raw.column(column).to_pylist()  # type: ignore[no-any-return]


def _as_overture(value: Any) -> Any:
    """A decoded JSON value as Arrow reads it into Overture's types: a ``common`` map
    written as its pairs (``[["en", "Cafe"]]``, as Arrow's maps are turned into JSON) back
    into pairs Arrow takes."""
    if isinstance(value, dict):
        return {k: _pairs_of(v) if k == "common" else _as_overture(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_as_overture(v) for v in value]
    return value


def _pairs_of(common: Any) -> Any:
    if isinstance(common, list):
        return [tuple(pair) for pair in common if isinstance(pair, list) and len(pair) == 2]
    return common


_STRINGS: Final = pa.list_(pa.string())
_NAMES: Final = SOURCE_RECORD_SCHEMA.field("names").type
_CATEGORIES: Final = SOURCE_RECORD_SCHEMA.field("categories").type
_BRAND: Final = SOURCE_RECORD_SCHEMA.field("brand").type


def _column(table: pa.Table, name: str, kind: pa.DataType) -> pa.Array:
    """A column as one array of ``kind``; nulls where the release lacks it."""
    if name not in table.column_names:
        return pa.nulls(table.num_rows, kind)
    return table.column(name).combine_chunks().cast(kind)


def _nested(schema: pa.Schema, column: str, *fields: str) -> Any:
    """The polars expression for ``column.field.field...``; a null where the release's
    layout lacks the column or any field on the way (as reading a missing key gives)."""
    import polars as pl

    kind = schema.field(column).type if column in schema.names else None
    expr = pl.col(column)
    for name in fields:
        if kind is None or not pa.types.is_struct(kind) or kind.get_field_index(name) < 0:
            return pl.lit(None)
        kind = kind.field(name).type
        expr = expr.struct.field(name)
    return expr if kind is not None else pl.lit(None)


def _labels_expr(schema: pa.Schema) -> Any:
    """A place's category labels, in order, once each: categories' primary and alternates,
    then the newer taxonomy's, then the basic category (empty and null ones left out)."""
    import polars as pl

    strings = pl.List(pl.String)

    def one(value: Any) -> Any:
        return pl.concat_list([value.cast(pl.String)]).fill_null(pl.lit([], dtype=strings))

    def many(value: Any) -> Any:
        return value.cast(strings).fill_null(pl.lit([], dtype=strings))

    parts = [
        one(_nested(schema, "categories", "primary")),
        many(_nested(schema, "categories", "alternate")),
        one(_nested(schema, "taxonomy", "primary")),
        many(_nested(schema, "taxonomy", "alternates")),
        one(_nested(schema, "basic_category")),
    ]
    kept = pl.element().filter(pl.element().is_not_null() & (pl.element() != ""))
    return pl.concat_list(parts).list.eval(kept).list.unique(maintain_order=True)


def _alternates(table: pa.Table) -> pa.Array:
    """A record's other names: names.common (variant "common") then the names.rules that
    have a value; null where there are none. Read in Python for the records that have any."""
    kind = _NAMES[1].type
    names = table.column("names").combine_chunks()
    subfields = {names.type.field(i).name for i in range(names.type.num_fields)}
    some = np.zeros(len(names), dtype=bool)
    for field in ("common", "rules"):
        if field in subfields:
            some |= _lengths(pc.struct_field(names, field)) > 0
    out: list[Any] = [None] * len(names)
    rows = np.flatnonzero(some)
    for i, value in zip(rows, names.take(pa.array(rows, pa.int64())).to_pylist(), strict=True):
        out[i] = other_names(value)
    return pa.array(out, kind)


def other_names(names: dict[str, Any] | None) -> list[dict[str, Any]] | None:
    """A record's other names from its Overture ``names``: ``common`` (variant "common"),
    then the ``rules`` that have a value; None where there are none."""
    if not names:
        return None
    alternates = [
        {"value": value, "language": language, "variant": "common"}
        for language, value in _pairs(names.get("common"))
    ] + [
        {
            "value": rule.get("value"),
            "language": rule.get("language"),
            "variant": rule.get("variant") or "alternate",
        }
        for rule in names.get("rules") or []
        if rule.get("value")
    ]
    return alternates or None


def _lengths(lists: pa.Array) -> np.ndarray:
    """How many items each list (or map) holds; 0 where it is null."""
    valid = lists.is_valid().to_numpy(zero_copy_only=False)
    return np.where(valid, np.diff(lists.offsets.to_numpy()), 0)


def _first_address(table: pa.Table) -> pa.Array:
    """Each record's first address, in poiflow's address type; null where it has none."""
    n = table.num_rows
    kind = SOURCE_RECORD_SCHEMA.field("address").type
    if "addresses" not in table.column_names:
        return pa.nulls(n, kind)
    addresses = table.column("addresses").combine_chunks()
    some = _lengths(addresses) > 0
    at = pa.array(np.where(some, addresses.offsets.to_numpy()[:-1], 0), pa.int64(), mask=~some)
    first = addresses.values.take(at)
    have = {first.type.field(i).name for i in range(first.type.num_fields)}
    return pa.StructArray.from_arrays(
        [
            first.field(f.name).cast(pa.string()) if f.name in have else pa.nulls(n, pa.string())
            for f in kind
        ],
        fields=list(kind),
        mask=first.is_null(),
    )


def _brand(picked: Any) -> pa.Array:
    """The brand's primary name and Wikidata id; null where neither is given."""
    name = picked["brand"].to_arrow().cast(pa.string())
    wikidata = picked["wikidata"].to_arrow().cast(pa.string())

    def given(values: pa.Array) -> pa.Array:
        return pc.fill_null(pc.not_equal(values, ""), False)

    return pa.StructArray.from_arrays(
        [name, wikidata], fields=list(_BRAND), mask=pc.invert(pc.or_(given(name), given(wikidata)))
    )


def _update_times(table: pa.Table) -> pa.Array:
    """The newest ``update_time`` among each record's sources (each distinct text parsed
    once); null where none can be read."""
    kind = SOURCE_RECORD_SCHEMA.field("update_time").type
    n = table.num_rows
    if "sources" not in table.column_names:
        return pa.nulls(n, kind)
    sources = table.column("sources").combine_chunks()
    if sources.type.value_type.get_field_index("update_time") < 0:
        return pa.nulls(n, kind)
    texts = pc.struct_field(pc.list_flatten(sources), "update_time").cast(pa.string())
    distinct = pc.unique(texts)
    stamps = pa.array([source_time(text) for text in distinct.to_pylist()], kind)
    newest = (
        pa.table(
            {
                "row": pc.list_parent_indices(sources),
                "time": stamps.take(pc.index_in(texts, distinct)),
            }
        )
        .group_by("row")
        .aggregate([("time", "max")])
    )
    return spread(n, newest.column("row").to_numpy(), newest.column("time_max").combine_chunks())


def _pairs(common: Any) -> list[tuple[str, str]]:
    """Language/value pairs of a names.common map (Arrow gives a list of pairs or a dict)."""
    if not common:
        return []
    if isinstance(common, dict):
        return [(k, v) for k, v in common.items() if v]
    return [(k, v) for k, v in common if v]


def source_time(text: str | None) -> datetime | None:
    """An Overture source's ``update_time`` (ISO 8601; UTC where it names no zone), or None
    where it is missing or unreadable."""
    if not text:
        return None
    try:
        stamp = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return None
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)
