"""Tabular feeds: CSV, TSV, JSON lines and Parquet in the flat place format, or mapped.

The flat place format has the columns ``source, id, name, lat, lon, category, street,
housenumber, postcode, city, country, phone, website, address`` (plus the optional
``unit, region, email, brand, opening_hours, operating_status, update_time``), all optional
but ``id`` and ``name``. Without a ``source`` column the file's stem names the source.
Any other layout is read through a :class:`~poiflow.config.SourceMapping`.
"""

from __future__ import annotations

import csv
import functools
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Final

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from poiflow.config import SourceMapping
from poiflow.errors import CorruptInputError, InputError, SchemaMismatchError, did_you_mean
from poiflow.schema import ADDRESS_TYPE, FLAT_EXTRA_FIELDS, FLAT_FIELDS, SOURCE_RECORD_SCHEMA
from poiflow.sources.base import (
    DEFAULT_BATCH_SIZE,
    SourceBatch,
    files_of,
    origin_name,
    owns,
    partition_values,
)
from poiflow.sources.geojson import geojson_rows, looks_like_geojson
from poiflow.sources.gis import gis_rows, gis_size, is_gis
from poiflow.sources.osm_tags import looks_tagged, tagged_records
from poiflow.sources.overture_records import overture_json_records
from poiflow.sources.text import (
    COMPRESSED,
    NUMBER,
    LazyRow,
    Rows,
    Wanted,
    as_text,
    batched_rows,
    not_a_time,
    open_text,
    read_number,
    read_time,
    strings_table,
)

__all__ = ["TabularSource", "flat_records", "tabular_format"]

_KNOWN: Final = (*FLAT_FIELDS, *FLAT_EXTRA_FIELDS)
_KIND_NAMES: Final = {
    "csv": "CSV",
    "tsv": "TSV",
    "jsonl": "JSON lines",
    "geojson": "GeoJSON",
    "gis": "GDAL",
    "parquet": "Parquet",
}
_GIS_NAMES: Final = {
    ".gpkg": "GeoPackage",
    ".shp": "Shapefile",
    ".shp.zip": "Shapefile",
    ".fgb": "FlatGeobuf",
    ".xlsx": "Excel",
    ".ods": "OpenDocument sheet",
}
_LAYOUT_NAMES: Final = {"tags": "OSM tags", "overture": "Overture"}
_SNIFF_ROWS: Final = 1000  # rows read to tell a table of OSM tags from flat places
_FEW_VALUES: Final = 64  # up to this many rows of text are read value by value
_SUFFIXES: Final = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
    ".geojson": "geojson",
    ".geojsonl": "geojson",
    ".geojsons": "geojson",
    ".geojsonseq": "geojson",
    ".ndgeojson": "geojson",
    ".parquet": "parquet",
    ".geoparquet": "parquet",
    ".pq": "parquet",
}
_CSV_BLOCK: Final = 4 << 20
_OTHER_DELIMITERS: Final = (";", "\t", "|")  # tried, in this order, when "," finds one column
_FLAT_ADDRESS: Final = {"freeform": "address", "locality": "city"}


def tabular_format(path: Path) -> str | None:
    """The tabular format a file name says ("csv", "tsv", "jsonl", "parquet"), or None; a
    text format may end in .gz, .bz2 or .zst ("feed.csv.gz" is "csv")."""
    if is_gis(path):
        return "gis"
    suffix = path.suffix.lower()
    if suffix not in COMPRESSED:
        return _SUFFIXES.get(suffix)
    kind = _SUFFIXES.get(Path(path.stem).suffix.lower())
    return None if kind == "parquet" else kind


class TabularSource:
    """A CSV, TSV, JSON-lines or Parquet file of places, or a folder of such files read as
    one input (Spark's and DuckDB's outputs are folders of parts).

    Args:
        path: The file or folder.
        mapping: How its columns map onto the flat place format; without one, the file must
            already be in the flat format.
    """

    def __init__(self, path: str | Path, mapping: SourceMapping | None = None):
        self.path = Path(path)
        self.mapping = mapping or SourceMapping()
        # Listed once, here, so that every partition reads the same files in one order.
        self.files = files_of(self.path)
        kind = self.mapping.format or tabular_format(self.files[0] if self.files else self.path)
        if kind is None:
            raise InputError(
                f"cannot tell the format from the suffix '{self.path.suffix}'; "
                "set 'format:' in a mapping file",
                path=self.path,
            )
        if kind == "jsonl" and self.mapping.format is None and self.files:
            kind = (
                "geojson" if looks_like_geojson(self.files[0], self.mapping.csv.encoding) else kind
            )
        self.format: str = kind
        self.name = self.mapping.source or self.path.name.split(".")[0]
        self._layout: str | None = None

    @property
    def kind(self) -> str:
        """The format by name ("CSV", "GeoPackage"), and whether its columns are OSM tags."""
        name = _KIND_NAMES.get(self.format, self.format)
        if self.format == "gis":
            first = (self.files[0] if self.files else self.path).name.lower()
            name = next((n for suffix, n in _GIS_NAMES.items() if first.endswith(suffix)), name)
        layout = self.layout()
        return name if layout == "flat" else f"{name}, {_LAYOUT_NAMES[layout]}"

    def size_hint(self) -> int | None:
        """The row count of Parquet files and of GDAL's layers; unknown for text formats."""
        if not all(file.is_file() for file in self.files):
            return None
        if self.format == "gis":
            counts = [gis_size(file, self.mapping.layer) for file in self.files]
            return None if None in counts else sum(c for c in counts if c is not None)
        if self.format != "parquet":
            return None
        try:
            return sum(int(pq.ParquetFile(file).metadata.num_rows) for file in self.files)
        except (pa.ArrowInvalid, OSError):
            return None

    def batches(
        self, batch_size: int = DEFAULT_BATCH_SIZE, part: int = 0, parts: int = 1
    ) -> Iterator[SourceBatch]:
        """Yield the records in batches, file after file (every partition reads the files;
        each builds records only for its own batches)."""
        if not self.path.exists():
            raise InputError("no such file", path=self.path)
        reader = self._reader()
        layout = self.layout()
        chunk = 0
        for file in self.files:
            partitions = self._partitions(file)
            # Readers that can turn only this worker's share into rows do.
            wanted = functools.partial(_owns_after, chunk, part, parts)
            for read, origins, rejected in reader(file, batch_size, wanted):
                if owns(chunk, part, parts):
                    raw = _with_constants(read, partitions)
                    if raw.num_columns == 0:  # no rows at all (an empty FeatureCollection)
                        records = SOURCE_RECORD_SCHEMA.empty_table()
                    elif layout == "tags":
                        records = tagged_records(raw, origins, self.name, self.mapping.constants)
                    elif layout == "overture":
                        name = self.mapping.source or "overture"
                        records = overture_json_records(raw, origins, name)
                    else:
                        columns = self._resolve(raw.column_names, file)
                        records = self._records(raw, origins, columns)
                    yield SourceBatch(records, raw, tuple(rejected), chunk=chunk)
                chunk += 1

    def _reader(self) -> Callable[[Path, int, Wanted], Rows]:
        """The reader of the input's format: it yields ``(raw table, origin per row, rejected
        rows)`` of a file in batches; those that can, turn only the wanted batches into
        rows (JSON lines, GeoJSON), the others read every batch whole."""
        return {
            "csv": self._csv,
            "tsv": self._csv,
            "jsonl": self._jsonl,
            "geojson": self._geojson,
            "gis": self._gis,
            "parquet": self._parquet,
        }[self.format]

    def tagged(self) -> bool:
        """Whether the input's columns are OpenStreetMap tags (see ``layout``)."""
        return self.layout() == "tags"

    def layout(self) -> str:
        """How the input's columns are laid out: ``"flat"`` (the flat place format),
        ``"tags"`` (OpenStreetMap tags: ``amenity``, ``addr:street``, as an Overpass export
        or All the Places has them) or ``"overture"`` (Overture's nested columns as JSON:
        GeoJSON from Overture's own download tool). Told from the first rows of the first
        file that has any, so that every partition reads it alike; a mapping that maps
        columns reads the flat format."""
        if self._layout is None:
            self._layout = "flat"
            if not self.mapping.columns:
                for file in self.files:
                    if not file.is_file():
                        break
                    first = next(iter(self._reader()(file, _SNIFF_ROWS, None)), None)
                    if first is not None and first[0].num_columns:
                        self._layout = self._layout_of(first[0])
                        break
        return self._layout

    def _layout_of(self, table: pa.Table) -> str:
        if looks_tagged(table.column_names):
            return "tags"
        if self.format in ("geojson", "jsonl") and {"id", "names"} <= set(table.column_names):
            names = table.column("names").drop_null()
            if len(names) and str(names[0]).lstrip().startswith("{"):
                return "overture"
        return "flat"

    def _partitions(self, file: Path) -> dict[str, str | None]:
        """The ``key=value`` folders above a file of the folder that is the input, as
        columns: those that the mapping reads or ignores, and flat fields that it neither
        maps from another column nor sets (``country=FI/``). Others (``day=2/``) only lay
        the files out, and are left out. A column of the file itself comes before a
        folder's value of the same name."""
        used = set(self.mapping.columns.values()) | set(self.mapping.ignore)
        taken = set(self.mapping.columns) | set(self.mapping.constants)
        return {
            key: value
            for key, value in partition_values(self.path, file).items()
            if key in used or (key.strip().lower() in _KNOWN and key.strip().lower() not in taken)
        }

    # -- column mapping ---------------------------------------------------------------

    def _resolve(self, file_columns: list[str], file: Path | None = None) -> dict[str, str]:
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
        for column in file_columns:
            if column in used:
                continue
            field = column.strip().lower()
            if field in _KNOWN and field not in mapped:
                mapped[field] = column
                continue
            if field in _KNOWN:
                raise SchemaMismatchError(
                    f"column '{column}' is the flat field '{field}', which the mapping "
                    f"reads from column '{mapped[field]}'; add '{column}' to the mapping's "
                    "'ignore:' list, or map one of the two",
                    path=file,
                )
            hint = did_you_mean(field, _KNOWN)
            raise SchemaMismatchError(
                f"unknown column '{column}'.{hint} The flat place format has: "
                f"{', '.join(_KNOWN)}; map or ignore other columns with --mapping "
                "(see 'poiflow ingest --help')",
                path=file,
            )
        for required in ("id", "name"):
            if required not in mapped and required not in self.mapping.constants:
                raise SchemaMismatchError(
                    f"no '{required}' column; every flat place file needs 'id' and 'name' "
                    "(map them with --mapping if they are called something else)",
                    path=file,
                )
        return mapped

    # -- readers: each yields (raw table, origin per row, rejected rows) ---------------

    def _csv(self, file: Path, batch_size: int, wanted: Wanted = None) -> Rows:
        where = origin_name(self.path, file)
        options = self.mapping.csv
        delimiter = "\t" if self.format == "tsv" and options.delimiter == "," else options.delimiter
        header = self._csv_header(file, delimiter, options.encoding)
        if len(header) == 1 and "delimiter" not in options.model_fields_set:
            # One column by the default delimiter: a file of ';' (Europe's spreadsheets),
            # tabs or '|', whichever splits the header most.
            sniffed = max(_OTHER_DELIMITERS, key=header[0].count)
            if header[0].count(sniffed) > 0:
                delimiter = sniffed
                header = self._csv_header(file, delimiter, options.encoding)
        skipped: list[tuple[int | None, str, str]] = []

        def on_invalid(row: Any) -> str:
            reason = (
                ""
                if not row.text.strip()
                else f"expected {row.expected_columns} columns, found {row.actual_columns}"
            )
            skipped.append((row.number, reason, row.text))
            return "skip"

        try:
            reader = pa_csv.open_csv(
                file,
                read_options=pa_csv.ReadOptions(
                    use_threads=False, block_size=_CSV_BLOCK, encoding=options.encoding
                ),
                parse_options=pa_csv.ParseOptions(
                    delimiter=delimiter,
                    quote_char=options.quote_char,
                    newlines_in_values=options.newlines_in_values,
                    ignore_empty_lines=False,
                    invalid_row_handler=on_invalid,
                ),
                convert_options=pa_csv.ConvertOptions(
                    column_types={name: pa.string() for name in header},
                    strings_can_be_null=True,
                    quoted_strings_can_be_null=True,
                ),
            )
            next_line, row_index, taken = 2, 0, 0
            skipped_lines: set[int] = set()
            for batch in reader:
                table = pa.Table.from_batches([batch])
                fresh = skipped[taken:]
                taken = len(skipped)
                skipped_lines.update(number for number, _, _ in fresh if number is not None)
                rejected = [
                    (f"{where}:{number}" if number else where, reason, text)
                    for number, reason, text in fresh
                    if reason
                ]
                origins = []
                for _ in range(table.num_rows):
                    if options.newlines_in_values:
                        row_index += 1
                        origins.append(f"{where}#row={row_index}")
                        continue
                    while next_line in skipped_lines:
                        next_line += 1
                    origins.append(f"{where}:{next_line}")
                    next_line += 1
                table, origins, empty = _split_empty(table, origins)
                yield from _rebatch(table, origins, rejected + empty, batch_size)
        except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
            raise CorruptInputError(
                f"not readable as {self.format.upper() if self.format else 'CSV'} ({exc}); "
                "for another encoding or delimiter use a mapping with 'csv: {encoding: ..., "
                "delimiter: ...}'",
                path=file,
            ) from exc
        except OSError as exc:  # a compressed file cut short or corrupt
            raise CorruptInputError(f"cannot be read to its end ({exc})", path=file) from exc

    def _csv_header(self, file: Path, delimiter: str, encoding: str) -> list[str]:
        try:
            with open_text(file, encoding, newline="") as handle:
                header = next(csv.reader(handle, delimiter=delimiter), None)
        except (UnicodeDecodeError, LookupError) as exc:
            raise CorruptInputError(
                f"cannot decode the header as {encoding} ({exc})", path=file
            ) from exc
        except (pa.ArrowInvalid, OSError) as exc:
            raise CorruptInputError(f"cannot read the header ({exc})", path=file) from exc
        if not header or not any(h.strip() for h in header):
            raise SchemaMismatchError("empty file: expected a header row", path=file, location=1)
        duplicates = sorted({h for h in header if header.count(h) > 1})
        if duplicates:
            raise SchemaMismatchError(
                f"duplicate column(s) in the header: {', '.join(duplicates)}",
                path=file,
                location=1,
            )
        return header

    def _jsonl(self, file: Path, batch_size: int, wanted: Wanted = None) -> Rows:
        where = origin_name(self.path, file)

        def row_of(line: str) -> tuple[dict[str, str | None] | None, str, str]:
            try:
                value = json.loads(line)
            except json.JSONDecodeError as exc:
                return None, f"not JSON: {exc.msg} at column {exc.colno}", line
            if not isinstance(value, dict):
                return None, f"expected a JSON object, found {type(value).__name__}", line
            return {k: as_text(v) for k, v in value.items()}, "", ""

        def lines() -> Iterator[LazyRow]:
            with open_text(file, self.mapping.csv.encoding) as handle:
                for number, line in enumerate(handle, start=1):
                    if line.strip():
                        yield f"{where}:{number}", functools.partial(row_of, line.rstrip("\n"))

        try:
            yield from batched_rows(lines(), batch_size, wanted)
        except UnicodeDecodeError as exc:
            raise CorruptInputError(
                f"not {self.mapping.csv.encoding} text ({exc})", path=file
            ) from exc
        except (pa.ArrowInvalid, OSError) as exc:  # a compressed file cut short or corrupt
            raise CorruptInputError(f"cannot be read to its end ({exc})", path=file) from exc

    def _geojson(self, file: Path, batch_size: int, wanted: Wanted = None) -> Rows:
        return geojson_rows(
            file, origin_name(self.path, file), self.mapping.csv.encoding, batch_size, wanted
        )

    def _gis(self, file: Path, batch_size: int, wanted: Wanted = None) -> Rows:
        return gis_rows(self.path, file, self.mapping.layer, batch_size)

    def _parquet(self, file: Path, batch_size: int, wanted: Wanted = None) -> Rows:
        where = origin_name(self.path, file)
        try:
            parquet = pq.ParquetFile(file)
            start = 0
            for batch in parquet.iter_batches(batch_size=batch_size):
                table = pa.Table.from_batches([batch])
                origins = [f"{where}#row={start + i}" for i in range(table.num_rows)]
                start += table.num_rows
                yield table, origins, []
        except (pa.ArrowInvalid, OSError) as exc:
            raise CorruptInputError(f"not a readable Parquet file ({exc})", path=file) from exc

    # -- flat columns -> source records -----------------------------------------------

    def _records(self, raw: pa.Table, origins: list[str], columns: dict[str, str]) -> pa.Table:
        """Source records (``SOURCE_RECORD_SCHEMA``) of a raw table's flat columns."""
        if raw.num_rows <= _FEW_VALUES and all(
            pa.types.is_string(t) or pa.types.is_large_string(t) for t in raw.schema.types
        ):
            return self._few_records(raw, origins, columns)
        return self._columnar_records(raw, origins, columns)

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
            update_time = read_time(text("update_time"), issues)
            lat, lon = number("lat"), number("lon")
            out.append(
                {
                    "source": self.name if source is None else source,
                    "id": text("id"),
                    "names": {"primary": text("name"), "alternates": None},
                    "categories": None
                    if category is None
                    else {"primary": category, "alternate": None},
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
                if not pa.types.is_string(array.type) and not pa.types.is_large_string(array.type):
                    array = pc.cast(array, pa.string())
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
            for row in np.flatnonzero(
                ~ok.to_numpy(zero_copy_only=False)
                & values.is_valid().to_numpy(zero_copy_only=False)
            ):
                issues.setdefault(int(row), []).append(
                    f"{field}: '{values[int(row)].as_py()}' is not a number"
                )
            return pc.cast(pc.if_else(ok, fixed, pa.scalar(None, pa.string())), pa.float64())

        source = pc.fill_null(text("source"), self.name)
        update_time = self._times(text("update_time"), issues)
        address = pa.StructArray.from_arrays(
            # Every address part has a flat column of its own name, but for these two.
            [text(_FLAT_ADDRESS.get(part, part)) for part in ADDRESS_TYPE.names],
            fields=list(ADDRESS_TYPE),
        )
        category = text("category")
        brand = text("brand")
        arrays = {
            "source": source,
            "id": text("id"),
            "names": pa.StructArray.from_arrays(
                [text("name"), pa.nulls(n, SOURCE_RECORD_SCHEMA.field("names").type[1].type)],
                fields=list(SOURCE_RECORD_SCHEMA.field("names").type),
            ),
            "categories": pa.StructArray.from_arrays(
                [category, pa.nulls(n, pa.list_(pa.string()))],
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


def _owns_after(first: int, part: int, parts: int, number: int) -> bool:
    """Whether partition ``part`` reads the ``number``-th batch of a file whose first batch
    is the input's ``first``."""
    return owns(first + number, part, parts)


def _with_constants(table: pa.Table, values: Mapping[str, str | None]) -> pa.Table:
    """``table`` with a text column of one value for each of ``values`` it lacks (by name,
    in any case and spacing)."""
    present = {column.strip().lower() for column in table.column_names}
    for name, value in values.items():
        if name.strip().lower() not in present:
            table = table.append_column(name, pa.array([value] * table.num_rows, pa.string()))
    return table


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
    return reader._records(raw, list(origins), reader._resolve(raw.column_names))


def flat_record_rows(
    objects: Sequence[Mapping[str, Any]], source: str, origins: Sequence[str]
) -> list[dict[str, Any]]:
    """``flat_records`` as rows (``SOURCE_RECORD_SCHEMA``'s fields, as ``to_pylist`` gives
    them), read value by value without Arrow: for a request's few places."""
    reader, rows, columns = _flat_text(objects, source)
    resolved = reader._resolve(list(columns))
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
) -> tuple[TabularSource, list[dict[str, str | None]], dict[str, None]]:
    """A reader of the flat place format, each object's values as text, and every key."""
    reader = TabularSource(Path(f"{source}.jsonl"), SourceMapping(source=source))
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


def _split_empty(
    table: pa.Table, origins: list[str]
) -> tuple[pa.Table, list[str], list[tuple[str, str, str]]]:
    """Take out rows where every field is empty (blank lines, ",,,,"), as rejected rows."""
    if table.num_columns == 0 or table.num_rows == 0:
        return table, origins, []
    empty = np.ones(table.num_rows, dtype=bool)
    for column in table.columns:
        empty &= column.is_null().to_numpy(zero_copy_only=False)
    if not empty.any():
        return table, origins, []
    keep = np.flatnonzero(~empty)
    rejected = [(origins[i], "empty row: every field is empty", "") for i in np.flatnonzero(empty)]
    return table.take(keep), [origins[i] for i in keep], rejected


def _rebatch(
    table: pa.Table, origins: list[str], rejected: list[tuple[str, str, str]], size: int
) -> Iterator[tuple[pa.Table, list[str], list[tuple[str, str, str]]]]:
    if table.num_rows <= size:
        yield table, origins, rejected
        return
    for start in range(0, table.num_rows, size):
        yield (
            table.slice(start, size),
            origins[start : start + size],
            rejected if start == 0 else [],
        )
