"""Tabular feeds: CSV, TSV, JSON lines, GeoJSON, Parquet and what GDAL reads (GeoPackage,
Shapefile, ...), each read as rows of columns, in one of three layouts.

The flat place format has the columns ``source, id, name, lat, lon, category, street,
housenumber, postcode, city, country, phone, website, address`` (plus the optional
``unit, region, email, brand, opening_hours, operating_status, update_time``), all optional
but ``id`` and ``name``; without a ``source`` column the file's stem names the source, and
any other layout of columns is read through a :class:`~poiflow.config.SourceMapping`
(``sources/flat.py``). Columns that are OpenStreetMap tags are read as an extract's tags are
(``sources/osm_tags.py``), and Overture's nested columns as JSON as its GeoParquet is
(``sources/overture_records.py``).
"""

from __future__ import annotations

import contextlib
import csv
import functools
import json
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, Final

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from poiflow.config import SourceMapping
from poiflow.errors import CorruptInputError, InputError, SchemaMismatchError
from poiflow.schema import SOURCE_RECORD_SCHEMA
from poiflow.sources.base import (
    DEFAULT_BATCH_SIZE,
    SourceBatch,
    default_name,
    files_of,
    origin_name,
    owns,
    partition_values,
)
from poiflow.sources.csv_lines import OTHER_ENCODING, CsvLines, not_text, undecodable_rows
from poiflow.sources.flat import FLAT_KNOWN, FlatFormat
from poiflow.sources.geojson import geojson_rows, looks_like_geojson
from poiflow.sources.gis import gis_rows, gis_size, is_gis
from poiflow.sources.osm_tags import looks_tagged, tagged_records
from poiflow.sources.overture_records import overture_json_records
from poiflow.sources.spatial import (
    GeometryColumn,
    geometry_column,
    located_rows,
    text_geometry_column,
    wgs84_transform,
)
from poiflow.sources.text import (
    COMPRESSED,
    LazyRow,
    Rows,
    Wanted,
    as_text,
    batched_rows,
    file_encoding,
    is_utf8,
    open_bytes,
    open_text,
    zip_member,
)

__all__ = ["TabularSource", "tabular_format"]

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
    ".gdb": "File Geodatabase",
    ".xlsx": "Excel",
    ".ods": "OpenDocument sheet",
    ".kml": "KML",
    ".kmz": "KMZ",
    ".gpx": "GPX",
    ".sqlite": "SpatiaLite",
}
_LAYOUT_NAMES: Final = {"tags": "OSM tags", "overture": "Overture"}
_SNIFF_ROWS: Final = 1000  # rows read to tell a table of OSM tags from flat places
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
_SNIFF_BLOCK: Final = 256 << 10  # a CSV's first bytes read to tell its layout
_OTHER_DELIMITERS: Final = (";", "\t", "|")  # tried, in this order, when "," finds one column


def tabular_format(path: Path) -> str | None:
    """The tabular format a file name says ("csv", "tsv", "jsonl", "parquet"), or None; a
    text format may end in .gz, .bz2, .zst or .zip ("feed.csv.gz" is "csv"; "feed.zip" is
    what its one file is)."""
    if is_gis(path):
        return "gis"
    suffix = path.suffix.lower()
    if suffix not in COMPRESSED:
        return _SUFFIXES.get(suffix)
    inner = Path(path.stem).suffix.lower()
    if suffix == ".zip" and not inner and path.is_file():  # feed.zip: what it holds says
        inner = Path(zip_member(path)).suffix.lower()
    kind = _SUFFIXES.get(inner)
    return None if kind == "parquet" else kind


class TabularSource:
    """A tabular file of places (CSV, TSV, JSON lines, GeoJSON, Parquet, or one GDAL reads),
    or a folder of such files read as one input (Spark's and DuckDB's outputs are folders
    of parts).

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
                "geojson"
                if looks_like_geojson(self.files[0], self._encoding(self.files[0]))
                else kind
            )
        self.format: str = kind
        self.name = self.mapping.source or default_name(self.path)
        self._flat = FlatFormat(self.mapping, self.name, self.path)
        if kind in ("gis", "geojson"):
            self._flat.refuse_crs(f"its features' geometry ({_KIND_NAMES.get(kind, kind)})")
        self._layout: str | None = None

    @property
    def kind(self) -> str:
        """The format by name ("CSV", "GeoPackage"), and whether its columns are OSM tags."""
        name = _KIND_NAMES.get(self.format, self.format)
        if self.format == "gis":
            first = (self.files[0] if self.files else self.path).name.lower()
            name = next((n for suffix, n in _GIS_NAMES.items() if first.endswith(suffix)), name)
        elif self.format == "parquet" and self._geometry() is not None:
            name = "GeoParquet"
        layout = self.layout()
        return name if layout == "flat" else f"{name}, {_LAYOUT_NAMES[layout]}"

    def _geometry(self) -> GeometryColumn | None:
        """The first Parquet file's geometry column, if it has one."""
        first = next((file for file in self.files if file.exists()), None)
        try:
            return None if first is None else geometry_column(pq.read_schema(first))
        except (pa.ArrowInvalid, OSError):
            return None

    def size_hint(self) -> int | None:
        """The row count of Parquet files and of GDAL's layers; unknown for text formats."""
        if not all(file.exists() for file in self.files):
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
                    try:
                        raw, records, rejected = self._records(raw, origins, rejected, file, layout)
                    except SchemaMismatchError as exc:
                        if exc.path is not None:
                            raise
                        raise SchemaMismatchError(exc.message, path=file) from None  # this one
                    yield SourceBatch(records, raw, tuple(rejected), chunk=chunk)
                chunk += 1

    def _records(
        self,
        raw: pa.Table,
        origins: list[str],
        rejected: list[tuple[str, str, str]],
        file: Path,
        layout: str,
    ) -> tuple[pa.Table, pa.Table, list[tuple[str, str, str]]]:
        """A batch's rows as read (less those held back), their records in the input's
        ``layout``, and the rows held back so far."""
        if raw.num_columns == 0:  # no rows at all (an empty FeatureCollection)
            return raw, SOURCE_RECORD_SCHEMA.empty_table(), rejected
        if layout == "tags":
            return raw, tagged_records(raw, origins, self.name, self.mapping.constants), rejected
        if layout == "overture":
            name = self.mapping.source or "overture"
            raw, records, held = overture_json_records(raw, origins, name)
            return raw, records, [*rejected, *held]
        text = self._text_geometry(raw.column_names)
        if text is not None:  # a CSV export of a spatial table: WKT
            self._flat.refuse_crs(f"its geometry column '{text.name}'", file)
            raw, origins, more = located_rows(raw, origins, text, None, file)
            rejected = [*rejected, *more]
        columns = self._flat.resolve_typed(raw.schema, file)
        return raw, self._flat.records(raw, origins, columns), rejected

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
                    if not file.exists():
                        break
                    first = self._first_rows(file)
                    if first is not None and first.num_columns:
                        self._layout = self._layout_of(first)
                        break
        return self._layout

    def _first_rows(self, file: Path) -> pa.Table | None:
        """Up to ``_SNIFF_ROWS`` of the first rows of ``file``, or None if it has none. A
        CSV's are read from its first ``_SNIFF_BLOCK`` bytes, not a whole block (a file of
        30,000 rows took 40 ms), unless its rows are too long for that."""
        if self.format in ("csv", "tsv"):
            with contextlib.suppress(CorruptInputError):  # read again below, whole blocks
                return _first_table(self._csv(file, _SNIFF_ROWS, block=_SNIFF_BLOCK))
        return _first_table(self._reader()(file, _SNIFF_ROWS, None))

    def _layout_of(self, table: pa.Table) -> str:
        if looks_tagged(table.column_names):
            return "tags"
        if self.format in ("geojson", "jsonl") and {"id", "names"} <= set(table.column_names):
            names = table.column("names").drop_null()
            if len(names) and str(names[0]).lstrip().startswith("{"):
                return "overture"
        return "flat"

    def _text_geometry(self, names: list[str]) -> GeometryColumn | None:
        """A column of geometries as text (``WKT``, ``geometry``: a spatial table's CSV
        export) where the input has no ``lat``/``lon`` and the mapping neither names the
        coordinates' columns nor ignores it."""
        if {"lat", "lon"} & set(self.mapping.columns):
            return None
        found = text_geometry_column(names)
        return None if found is None or found.name in self.mapping.ignore else found

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
            if key in used
            or (key.strip().lower() in FLAT_KNOWN and key.strip().lower() not in taken)
        }

    def _encoding(self, file: Path) -> str:
        """The mapping's text encoding of a file, UTF-16 where the default meets a file
        that begins with UTF-16's byte-order mark (``file_encoding``)."""
        return file_encoding(file, self.mapping.csv.encoding)

    # -- readers: each yields (raw table, origin per row, rejected rows) ---------------

    def _csv(
        self, file: Path, batch_size: int, wanted: Wanted = None, *, block: int = _CSV_BLOCK
    ) -> Rows:
        where = origin_name(self.path, file)
        options = self.mapping.csv
        delimiter = "\t" if self.format == "tsv" and options.delimiter == "," else options.delimiter
        encoding = self._encoding(file)
        header = self._csv_header(file, delimiter, encoding)
        if len(header) == 1 and "delimiter" not in options.model_fields_set:
            # One column by the default delimiter: a file of ';' (Europe's spreadsheets),
            # tabs or '|', whichever splits the header most.
            sniffed = max(_OTHER_DELIMITERS, key=header[0].count)
            if header[0].count(sniffed) > 0:
                delimiter = sniffed
                header = self._csv_header(file, delimiter, encoding)
        lines = CsvLines(where)

        def on_invalid(row: Any) -> str:
            reason = (
                ""
                if not row.text.strip()
                else f"expected {row.expected_columns} columns, found {row.actual_columns}"
            )
            lines.skipped(row.number, reason, row.text)
            return "skip"

        undecodable: list[BaseException] = []
        try:
            with undecodable_rows(on_invalid) as undecodable:
                reader = pa_csv.open_csv(
                    # Arrow reads .gz, .bz2 and .zst itself; a .zip's one file is handed to it.
                    open_bytes(file) if file.suffix.lower() == ".zip" else file,
                    read_options=pa_csv.ReadOptions(
                        use_threads=False, block_size=block, encoding=encoding
                    ),
                    parse_options=pa_csv.ParseOptions(
                        delimiter=delimiter,
                        quote_char=options.quote_char,
                        # A quoted value may span lines (a spreadsheet's address); read one
                        # thread at a time, this costs nothing measurable.
                        newlines_in_values=True,
                        ignore_empty_lines=False,
                        invalid_row_handler=on_invalid,
                    ),
                    convert_options=pa_csv.ConvertOptions(
                        column_types={name: pa.string() for name in header},
                        null_values=["", *options.missing],
                        strings_can_be_null=True,
                        quoted_strings_can_be_null=True,
                    ),
                )
                for batch in reader:
                    table = pa.Table.from_batches([batch])
                    origins, rejected = lines.of(table)
                    table, origins, empty = _split_empty(table, origins)
                    yield from _rebatch(table, origins, rejected + empty, batch_size)
                # Rows skipped after the last batch, or in a file with no valid row at all,
                # come with no batch of their own: they go to quarantine all the same.
                rejected = lines.rest()
                if rejected:
                    yield reader.schema.empty_table(), [], rejected
        except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
            not_utf8 = undecodable or "UTF8" in str(exc) or isinstance(exc, UnicodeDecodeError)
            if not_utf8 and is_utf8(encoding):
                raise not_text(file, encoding) from exc  # where: the line and column
            hint = (
                OTHER_ENCODING
                if not_utf8
                else "for another delimiter use a mapping with 'csv: {delimiter: ...}'"
            )
            raise CorruptInputError(
                f"not readable as {self.format.upper() if self.format else 'CSV'} ({exc}); " + hint,
                path=file,
            ) from exc
        except OSError as exc:  # a compressed file cut short or corrupt
            raise CorruptInputError(f"cannot be read to its end ({exc})", path=file) from exc

    def _csv_header(self, file: Path, delimiter: str, encoding: str) -> list[str]:
        try:
            with open_text(file, encoding, newline="") as handle:
                header = next(csv.reader(handle, delimiter=delimiter), None)
        except UnicodeDecodeError as exc:
            raise not_text(file, encoding) from exc
        except LookupError as exc:
            raise CorruptInputError(f"cannot read text as {encoding} ({exc})", path=file) from exc
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
            with open_text(file, self._encoding(file)) as handle:
                for number, line in enumerate(handle, start=1):
                    if line.strip():
                        yield f"{where}:{number}", functools.partial(row_of, line.rstrip("\n"))

        try:
            yield from batched_rows(lines(), batch_size, wanted)
        except UnicodeDecodeError as exc:
            raise not_text(file, self._encoding(file)) from exc
        except (pa.ArrowInvalid, OSError) as exc:  # a compressed file cut short or corrupt
            raise CorruptInputError(f"cannot be read to its end ({exc})", path=file) from exc

    def _geojson(self, file: Path, batch_size: int, wanted: Wanted = None) -> Rows:
        return geojson_rows(
            file, origin_name(self.path, file), self._encoding(file), batch_size, wanted
        )

    def _gis(self, file: Path, batch_size: int, wanted: Wanted = None) -> Rows:
        mapped = bool(self.mapping.columns)
        return gis_rows(self.path, file, self.mapping.layer, batch_size, mapped=mapped)

    def _parquet(self, file: Path, batch_size: int, wanted: Wanted = None) -> Rows:
        where = origin_name(self.path, file)
        try:
            parquet = pq.ParquetFile(file)
            geometry = geometry_column(parquet.schema_arrow)
            # Where the mapping names the columns of the coordinates, the geometry is not read.
            placed = geometry is not None and not {"lat", "lon"} & set(self.mapping.columns)
            if placed and geometry:
                self._flat.refuse_crs(f"its geometry column '{geometry.name}'", file)
            to_wgs84 = wgs84_transform(geometry.crs, file) if placed and geometry else None
            start = 0
            for batch in parquet.iter_batches(batch_size=batch_size):
                table = pa.Table.from_batches([batch])
                origins = [f"{where}#row={start + i}" for i in range(table.num_rows)]
                start += table.num_rows
                if geometry is None:
                    yield table, origins, []
                elif placed:
                    yield located_rows(table, origins, geometry, to_wgs84, file)
                else:
                    yield table.drop_columns([geometry.name, *geometry.derived]), origins, []
        except (pa.ArrowInvalid, OSError) as exc:
            raise CorruptInputError(f"not a readable Parquet file ({exc})", path=file) from exc


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


def _first_table(rows: Rows) -> pa.Table | None:
    """The raw table of a reader's first batch, or None if it yields none."""
    first = next(iter(rows), None)
    return None if first is None else first[0]


def _split_empty(
    table: pa.Table, origins: list[str]
) -> tuple[pa.Table, list[str], list[tuple[str, str, str]]]:
    """Take out rows where every field is empty (blank lines, ",,,,"), as rejected rows."""
    if table.num_columns == 0 or table.num_rows == 0:
        return table, origins, []
    # Arrow's own kernels: a first to_numpy in a process imports pandas (0.27 s).
    empty = functools.reduce(pc.and_, (pc.is_null(column) for column in table.columns))
    if not pc.any(empty).as_py():
        return table, origins, []
    keep = pc.indices_nonzero(pc.invert(empty))
    rejected = [
        (origins[i], "empty row: every field is empty", "")
        for i in pc.indices_nonzero(empty).to_pylist()
    ]
    return table.take(keep), [origins[i] for i in keep.to_pylist()], rejected


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
