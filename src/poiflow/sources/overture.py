"""Overture Maps places, as GeoParquet in Overture's own column layout.

Reads the columns of the places theme (``id``, ``geometry`` as WKB, ``names`` with
``primary``/``common``/``rules``, ``categories`` with ``primary``/``alternate`` or the newer
``taxonomy``, ``websites``, ``emails``, ``phones``, ``brand``, ``addresses``, ``sources``,
``operating_status``). Columns the release lacks are treated as empty.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from poiflow.errors import CorruptInputError, InputError, SchemaMismatchError
from poiflow.schema import SOURCE_RECORD_SCHEMA
from poiflow.sources.base import (
    DEFAULT_BATCH_SIZE,
    SourceBatch,
    files_of,
    origin_name,
    owns,
)
from poiflow.sources.geometry import points_from_wkb

__all__ = ["OVERTURE_COLUMNS", "OvertureSource", "looks_like_overture", "other_names"]

OVERTURE_COLUMNS: Final = (
    "id",
    "geometry",
    "names",
    "categories",
    "taxonomy",
    "basic_category",
    "websites",
    "emails",
    "phones",
    "brand",
    "addresses",
    "sources",
    "operating_status",
)
_REQUIRED: Final = ("id", "geometry", "names")


def looks_like_overture(schema: pa.Schema) -> bool:
    """Whether a Parquet schema is Overture's places layout."""
    names = set(schema.names)
    return {"id", "geometry", "names"} <= names and pa.types.is_struct(schema.field("names").type)


class OvertureSource:
    """Overture places GeoParquet: one file, or a folder of them read as one input (a
    release's ``theme=places/type=place/`` parts, or an extract).

    Args:
        path: The GeoParquet file or folder.
        name: The source name written into each record.
    """

    def __init__(self, path: str | Path, name: str = "overture"):
        self.path = Path(path)
        self.name = name
        # Listed once, here, so that every partition reads the same files in one order.
        self.files = files_of(self.path)

    def _open(self, file: Path) -> pq.ParquetFile:
        if not file.is_file():
            raise InputError("no such file", path=file)
        try:
            return pq.ParquetFile(file)
        except (pa.ArrowInvalid, OSError) as exc:
            raise CorruptInputError(f"not a readable Parquet file ({exc})", path=file) from exc

    def size_hint(self) -> int | None:
        """The row count from the Parquet footers."""
        return sum(int(self._open(file).metadata.num_rows) for file in self.files)

    def batches(
        self, batch_size: int = DEFAULT_BATCH_SIZE, part: int = 0, parts: int = 1
    ) -> Iterator[SourceBatch]:
        """Yield the places in batches, file after file."""
        chunk = 0
        for file in self.files:
            where = origin_name(self.path, file)
            for batch, start in self._batches(file, batch_size):
                if owns(chunk, part, parts):
                    original = pa.Table.from_batches([batch])
                    yield SourceBatch(self._records(original, where, start), original, chunk=chunk)
                chunk += 1

    def _batches(self, file: Path, batch_size: int) -> Iterator[tuple[pa.RecordBatch, int]]:
        """The file's batches, each with the number of its first row in the file."""
        parquet = self._open(file)
        schema = parquet.schema_arrow
        missing = [column for column in _REQUIRED if column not in schema.names]
        if missing:
            raise SchemaMismatchError(
                f"not an Overture places file: missing column(s) {', '.join(missing)}",
                path=file,
            )
        columns = [c for c in OVERTURE_COLUMNS if c in schema.names]
        start = 0
        try:
            for batch in parquet.iter_batches(batch_size=batch_size, columns=columns):
                yield batch, start
                start += batch.num_rows
        except (pa.ArrowInvalid, OSError) as exc:
            raise CorruptInputError(
                f"cannot read row group after row {start} ({exc}); is the file truncated?",
                path=file,
            ) from exc

    def _records(self, table: pa.Table, where: str, start: int) -> pa.Table:
        """Source records of a batch of Overture rows, column by column: the nested values
        are read by polars and Arrow, and only a row's other names and a source's time
        text in Python (a record's names.common/rules, each distinct time once)."""
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
            "source": pa.array([self.name] * n, pa.string()),
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
    if "update_time" not in {
        sources.type.value_type.field(i).name for i in range(sources.type.value_type.num_fields)
    }:
        return pa.nulls(n, kind)
    rows = pc.list_parent_indices(sources).to_numpy()
    texts = pc.struct_field(pc.list_flatten(sources), "update_time").cast(pa.string())
    parsed = {text: _latest([{"update_time": text}]) for text in pc.unique(texts).to_pylist()}
    newest: list[datetime | None] = [None] * n
    for row, text in zip(rows, texts.to_pylist(), strict=True):
        stamp = parsed[text]
        if stamp is not None and (newest[row] is None or stamp > newest[row]):
            newest[row] = stamp
    return pa.array(newest, kind)


def _pairs(common: Any) -> list[tuple[str, str]]:
    """Language/value pairs of a names.common map (Arrow gives a list of pairs or a dict)."""
    if not common:
        return []
    if isinstance(common, dict):
        return [(k, v) for k, v in common.items() if v]
    return [(k, v) for k, v in common if v]


def _latest(sources: Any) -> datetime | None:
    """The newest ``update_time`` among an Overture record's sources."""
    latest = None
    for source in sources or []:
        text = source.get("update_time")
        if not text:
            continue
        try:
            stamp = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
        except ValueError:
            continue
        stamp = stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)
        latest = stamp if latest is None or stamp > latest else latest
    return latest
