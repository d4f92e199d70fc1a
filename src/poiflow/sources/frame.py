"""Places in a table in memory: a pandas, polars, GeoPandas or Spark DataFrame, an Arrow
table, or anything that hands out Arrow data (DuckDB's results, a list of dicts).

A data scientist has a vendor's feed in a notebook as a DataFrame, already cleaned; it is
read as a file of the same columns would be (``sources/tabular.py``): the flat place
format, or any other columns through a :class:`~poiflow.config.SourceMapping`, columns of
OpenStreetMap tags, or Overture's own columns (a query over its release); a geometry
column (a GeoDataFrame's) gives each place its point, in WGS 84 whatever the frame's
coordinate system.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Final

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from poiflow.config import SourceMapping
from poiflow.errors import InputError
from poiflow.sources.base import DEFAULT_BATCH_SIZE, SourceBatch, owns
from poiflow.sources.flat import FlatFormat
from poiflow.sources.osm_tags import looks_tagged, tagged_records
from poiflow.sources.overture import looks_like_overture
from poiflow.sources.overture_records import overture_records, overture_typed
from poiflow.sources.spatial import (
    geometry_column,
    located_rows,
    text_geometry_column,
    wgs84_transform,
)

__all__ = ["FrameSource", "is_frame"]

_EXPECTED: Final = (
    "a pandas, polars, GeoPandas or Spark DataFrame, an Arrow table or record batch reader, an "
    "object with Arrow's stream interface (__arrow_c_stream__), a dict of columns or a "
    "list of dicts"
)


def is_frame(value: object) -> bool:
    """Whether an input is a table in memory rather than a path or an opened source."""
    if isinstance(value, str | Path | bytes):
        return False
    return (
        isinstance(value, pa.Table | pa.RecordBatch | pa.RecordBatchReader | Mapping)
        or hasattr(value, "__arrow_c_stream__")
        or hasattr(value, "to_arrow")
        or _module(value) in ("pandas", "geopandas", "polars", "pyspark")
        or (isinstance(value, list) and all(isinstance(row, Mapping) for row in value))
    )


class FrameSource:
    """A table of places in memory, read as a file of the same columns would be.

    Args:
        data: The places: see :func:`is_frame` for what is taken. A pandas frame's named
            index is read as columns (``df.set_index("id")`` keeps its ids).
        name: The source's name: what each record's ``source`` says (unless the table has
            a ``source`` column), and what the run's report calls the input.
        mapping: How its columns map onto the flat place format, as for a file.

    Raises:
        InputError: ``data`` is not a table, or cannot be turned into Arrow.

    Example:
        >>> import pandas as pd, poiflow
        >>> feed = pd.DataFrame({"id": ["1"], "name": ["Cafe Regatta"],
        ...                      "lat": [60.1827], "lon": [24.9112]})
        >>> poiflow.conflate(["helsinki.osm.pbf", poiflow.FrameSource(feed, "vendor")], "out")
    """

    def __init__(self, data: Any, name: str, mapping: SourceMapping | None = None):
        if not name or not str(name).strip():
            raise InputError("a table in memory needs a source name (name='vendor')")
        self.mapping = mapping or SourceMapping()
        self.name: str = self.mapping.source or str(name)
        table, self._kind = _arrow_table(data, self.name)
        self._prepare(table)

    def _prepare(self, table: pa.Table) -> None:
        self.path = Path(self.name)
        self._flat = FlatFormat(self.mapping, self.name, self.path)
        self._layout = _layout(table.schema, self.mapping)
        if self._layout == "overture":
            table = overture_typed(table)
        if self._layout == "tags":
            table = _typed_osm_ids(table)
        self._geometry = None if self._layout == "overture" else geometry_column(table.schema)
        if self._geometry is None and self._layout == "flat":  # WKT, as BigQuery gives it
            text = text_geometry_column(table.column_names)
            self._geometry = None if text is None or text.name in self.mapping.ignore else text
        if self._geometry is not None and {"lat", "lon"} & set(self.mapping.columns):
            # The mapping names the columns of the coordinates: the geometry is not read.
            table = table.drop_columns([self._geometry.name, *self._geometry.derived])
            self._geometry = None
        self.table = table

    def __getstate__(self) -> dict[str, Any]:
        """What a worker is handed: the table as Arrow's IPC stream, which holds only the
        rows of each chunk (a table read from Parquet is slices of larger buffers, which
        pickling hands over whole: 944 MiB for 117 MiB of rows, by hand)."""
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, self.table.schema) as writer:
            writer.write_table(self.table)
        return {
            "mapping": self.mapping,
            "name": self.name,
            "kind": self._kind,
            "ipc": sink.getvalue(),
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.mapping, self.name, self._kind = state["mapping"], state["name"], state["kind"]
        self._prepare(pa.ipc.open_stream(state["ipc"]).read_all())

    def saved(self, folder: Path) -> Path:
        """The table as a Parquet file under ``folder``, in a folder named by a hash of its
        bytes (written once: the same table is the same file, and a pipeline's input key
        stays the same). ``open_source`` reads it, with ``mapping`` naming the source, as
        this source reads the table."""
        sink = pa.BufferOutputStream()
        pq.write_table(self.table, sink, compression="zstd")
        data = sink.getvalue()
        digest = hashlib.blake2b(data, digest_size=12).hexdigest()
        file = folder / digest / f"{self.name.replace('/', '_').lstrip('.') or 'table'}.parquet"
        if not file.exists():
            file.parent.mkdir(parents=True, exist_ok=True)
            partial = file.with_name(f".{file.name}.{os.getpid()}")
            partial.write_bytes(data.to_pybytes())
            partial.replace(file)  # whole, or not there
        return file

    @property
    def saved_mapping(self) -> SourceMapping:
        """The mapping that reads the saved file as this source reads the table: its own,
        naming the source."""
        return self.mapping.model_copy(update={"source": self.name})

    @property
    def kind(self) -> str:
        """What the table was ("pandas DataFrame", "GeoDataFrame", "Arrow table"), and
        whether its columns are OSM tags or Overture's."""
        layout = {"tags": ", OSM tags", "overture": ", Overture"}.get(self._layout, "")
        return f"{self._kind}{layout}"

    def size_hint(self) -> int:
        """The table's rows."""
        return int(self.table.num_rows)

    def batches(
        self, batch_size: int = DEFAULT_BATCH_SIZE, part: int = 0, parts: int = 1
    ) -> Iterator[SourceBatch]:
        """Yield the records in batches of the table's rows, in order; origins are
        ``NAME#row=N`` (from 0)."""
        geometry = self._geometry
        if geometry is not None:
            self._flat.refuse_crs(f"its geometry column '{geometry.name}'")
        to_wgs84 = None if geometry is None else wgs84_transform(geometry.crs, self.path)
        for chunk, start in enumerate(range(0, max(self.table.num_rows, 1), batch_size)):
            if not owns(chunk, part, parts):
                continue
            raw = self.table.slice(start, batch_size)
            if not raw.num_rows:
                return
            origins = [f"{self.name}#row={start + i}" for i in range(raw.num_rows)]
            rejected: list[tuple[str, str, str]] = []
            if self._layout == "overture":
                records = overture_records(raw, self.mapping.source or self.name, self.name, start)
                yield SourceBatch(records, raw, chunk=chunk)
                continue
            if geometry is not None:
                raw, origins, rejected = located_rows(raw, origins, geometry, to_wgs84, self.path)
            if self._layout == "tags":
                records = tagged_records(raw, origins, self.name, self.mapping.constants)
            else:
                columns = self._flat.resolve_typed(raw.schema, self.path)
                records = self._flat.records(raw, origins, columns)
            yield SourceBatch(records, raw, tuple(rejected), chunk=chunk)


def _layout(schema: pa.Schema, mapping: SourceMapping) -> str:
    """``"overture"``, ``"tags"`` or ``"flat"``: how the table's columns are laid out (a
    mapping that maps columns reads the flat format)."""
    if mapping.columns:
        return "flat"
    if looks_like_overture(schema):
        return "overture"
    return "tags" if looks_tagged(schema.names) else "flat"


# The index of OSMnx's features (``features_from_place``): the element's kind and its id,
# as 2.x and 1.x name them.
_OSMNX_INDEX: Final = (("element", "id"), ("element_type", "osmid"))


def _typed_osm_ids(table: pa.Table) -> pa.Table:
    """OSM tags whose ids are OSMnx's (a kind column beside a number: ``way``, ``1234``)
    with each id as an extract's (``way/1234``): a node and a way may share the number."""
    for kind, number in _OSMNX_INDEX:
        if {kind, number} <= set(table.column_names):
            ids = pc.binary_join_element_wise(
                table.column(kind).cast(pa.string()), table.column(number).cast(pa.string()), "/"
            )
            table = table.drop_columns([kind, number])
            return table.append_column("id", ids)
    return table


def _module(value: object) -> str:
    return type(value).__module__.split(".", 1)[0]


def _pandas_table(frame: Any) -> pa.Table:
    """A pandas frame as an Arrow table; a column of text and numbers mixed (ids that are
    sometimes numbers, what a spreadsheet gives pandas) as text, as a CSV of it would
    read. A column that holds lists or dicts among its values is left to fail."""
    try:
        return pa.Table.from_pandas(frame, preserve_index=None)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        mixed = {}
        for column in frame.columns:
            values = frame[column]
            if values.dtype != object or not values.map(_scalar).all():
                continue
            try:
                pa.array(values, from_pandas=True)
            except (pa.ArrowInvalid, pa.ArrowTypeError):
                mixed[column] = values.map(lambda v: None if _missing(v) else str(v))
        if not mixed:
            raise
        frame = frame.copy()
        for column, texts in mixed.items():
            frame[column] = texts.astype(object)
        return pa.Table.from_pandas(frame, preserve_index=None)


def _scalar(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and value != value)  # NaN


def _arrow_table(data: Any, name: str) -> tuple[pa.Table, str]:
    """The data as one Arrow table, and what it was, for people.

    Raises:
        InputError: It is not a table, or Arrow cannot hold it.
    """
    module = _module(data)
    try:
        if isinstance(data, pa.Table):
            return data, "Arrow table"
        if isinstance(data, pa.RecordBatch):
            return pa.Table.from_batches([data]), "Arrow table"
        if isinstance(data, pa.RecordBatchReader):
            return data.read_all(), "Arrow table"
        if module in ("geopandas", "pandas"):
            with warnings.catch_warnings():
                # pandas 3.1 warns that a time zone will be kept where pyarrow asks for a
                # column's values; pyarrow reads the zone from the column's type.
                warnings.filterwarnings("ignore", message="Series.values returning")
                if module == "pandas":
                    table = _pandas_table(data)
                    return _without_row_numbers(table), "pandas DataFrame"
                # Its geometry as WKB, with the frame's coordinate system (GeoArrow).
                table = pa.table(data.to_arrow(index=None, geometry_encoding="WKB"))
                return _without_row_numbers(table), "GeoDataFrame"
        if module == "pyspark":  # collected to this process: a feed, not a planet
            table = data.toArrow()
            return table, "Spark DataFrame"
        if module == "polars":
            if hasattr(data, "collect"):  # a LazyFrame
                data = data.collect()
            return data.to_arrow(), "polars DataFrame"
        if isinstance(data, Mapping):
            return pa.table(dict(data)), "dict of columns"
        if isinstance(data, Sequence) and not isinstance(data, str | bytes):
            if not all(isinstance(row, Mapping) for row in data):
                raise InputError(f"a list that is not of dicts: expected {_EXPECTED}", path=name)
            return pa.Table.from_pylist(list(data)), "list of dicts"
        if hasattr(data, "__arrow_c_stream__"):
            return pa.RecordBatchReader.from_stream(data).read_all(), f"{module} table"
        if hasattr(data, "to_arrow"):
            table = data.to_arrow()
            if isinstance(table, pa.RecordBatchReader):
                table = table.read_all()
            if isinstance(table, pa.Table):
                return table, f"{module} table"
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, TypeError) as exc:
        raise InputError(f"cannot be turned into an Arrow table ({exc})", path=name) from exc
    raise InputError(f"not a table: {type(data).__name__}; expected {_EXPECTED}", path=name)


def _without_row_numbers(table: pa.Table) -> pa.Table:
    """A pandas frame's table without its unnamed index (``__index_level_0__``): row
    numbers, not data. A named index is kept as columns."""
    return table.drop_columns([c for c in table.column_names if c.startswith("__index_level_")])
