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

import pyarrow as pa
import pyarrow.parquet as pq

from poiflow.errors import CorruptInputError, InputError, SchemaMismatchError
from poiflow.sources.base import (
    DEFAULT_BATCH_SIZE,
    SourceBatch,
    files_of,
    origin_name,
    owns,
    records_from_rows,
)
from poiflow.sources.geometry import points_from_wkb

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
        lat, lon, not_points = points_from_wkb(table.column("geometry"))
        bad_geometry = set(not_points)
        column = {
            name: table.column(name).to_pylist()
            for name in table.column_names
            if name != "geometry"
        }
        empty: list[Any] = [None] * table.num_rows
        rows = []
        for i in range(table.num_rows):

            def get(name: str, i: int = i) -> Any:
                return column.get(name, empty)[i]

            issues = ["geometry: not a point"] if i in bad_geometry else []
            names = get("names") or {}
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
            labels = _labels(get("categories"), get("taxonomy"), get("basic_category"))
            address = (get("addresses") or [None])[0]
            brand = get("brand") or {}
            brand_name = (brand.get("names") or {}).get("primary")
            point_ok = lat[i] == lat[i]  # NaN check without numpy per row
            rows.append(
                {
                    "source": self.name,
                    "id": get("id"),
                    "names": {"primary": names.get("primary"), "alternates": alternates or None},
                    "categories": {"primary": labels[0], "alternate": labels[1:]}
                    if labels
                    else None,
                    "source_category": labels[0] if labels else None,
                    "lat": float(lat[i]) if point_ok else None,
                    "lon": float(lon[i]) if point_ok else None,
                    "address": address,
                    "phones": get("phones"),
                    "websites": get("websites"),
                    "emails": get("emails"),
                    "brand": {"name": brand_name, "wikidata": brand.get("wikidata")}
                    if brand_name or brand.get("wikidata")
                    else None,
                    "opening_hours": None,
                    "operating_status": get("operating_status"),
                    "update_time": _latest(get("sources")),
                    "origin": f"{where}#row={start + i}",
                    "issues": issues or None,
                }
            )
        return records_from_rows(rows)


def _pairs(common: Any) -> list[tuple[str, str]]:
    """Language/value pairs of a names.common map (Arrow gives a list of pairs or a dict)."""
    if not common:
        return []
    if isinstance(common, dict):
        return [(k, v) for k, v in common.items() if v]
    return [(k, v) for k, v in common if v]


def _labels(categories: Any, taxonomy: Any, basic: Any) -> list[str]:
    labels: list[str] = []
    if categories:
        labels += [categories.get("primary"), *(categories.get("alternate") or [])]
    if taxonomy:
        labels += [taxonomy.get("primary"), *(taxonomy.get("alternates") or [])]
    if basic:
        labels.append(basic)
    return list(dict.fromkeys(label for label in labels if label))


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
