"""Overture Maps places, as GeoParquet in Overture's own column layout.

Reads the columns of the places theme (``id``, ``geometry`` as WKB, ``names`` with
``primary``/``common``/``rules``, ``categories`` with ``primary``/``alternate`` or the newer
``taxonomy``, ``websites``, ``emails``, ``phones``, ``brand``, ``addresses``, ``sources``,
``operating_status``). Columns the release lacks are treated as empty.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Final

import pyarrow as pa
import pyarrow.parquet as pq

from poiflow.errors import CorruptInputError, InputError, SchemaMismatchError
from poiflow.sources.base import (
    DEFAULT_BATCH_SIZE,
    SourceBatch,
    files_of,
    origin_name,
    owns,
)
from poiflow.sources.overture_records import overture_records

__all__ = ["OVERTURE_COLUMNS", "OvertureSource", "looks_like_overture"]

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

    @property
    def kind(self) -> str:
        """Overture Maps places."""
        return "Overture"

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
                    records = overture_records(original, self.name, where, start)
                    yield SourceBatch(records, original, chunk=chunk)
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
