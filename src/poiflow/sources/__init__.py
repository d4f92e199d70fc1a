"""Sources: one module per input kind, all yielding ``SourceBatch`` es of source records.

:func:`open_source` picks the kind from the file name (and, for Parquet, the columns).
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from poiflow.config import OsmOptions, SourceMapping
from poiflow.errors import CorruptInputError, InputError, UnknownFormatError
from poiflow.sources.base import DEFAULT_BATCH_SIZE, Source, SourceBatch, records_from_rows
from poiflow.sources.osm import OSM_KEY_PRIORITY, OsmSource
from poiflow.sources.overture import OvertureSource, looks_like_overture
from poiflow.sources.tabular import (
    TabularSource,
    flat_place,
    flat_record_rows,
    flat_records,
    tabular_format,
)

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "OSM_KEY_PRIORITY",
    "OsmSource",
    "OvertureSource",
    "Source",
    "SourceBatch",
    "TabularSource",
    "flat_place",
    "flat_record_rows",
    "flat_records",
    "open_source",
    "records_from_rows",
]

_OSM_SUFFIXES = (".osm.pbf", ".pbf", ".osm", ".osm.bz2", ".osm.gz", ".o5m")


def open_source(
    path: str | Path,
    mapping: SourceMapping | None = None,
    osm: OsmOptions | None = None,
) -> Source:
    """Open an input file as the right kind of source.

    Args:
        path: An OSM extract (``.osm.pbf``), an Overture places GeoParquet, or a flat place
            file (``.csv``, ``.tsv``, ``.jsonl``, any of them compressed as ``.gz``, ``.bz2``
            or ``.zst``, or ``.parquet``).
        mapping: How a tabular file's columns map onto the flat place format.
        osm: Which OSM objects count as places.

    Raises:
        InputError: The file does not exist.
        UnknownFormatError: The file's kind cannot be told.
    """
    path = Path(path)
    if not path.exists():
        raise InputError("no such file", path=path)
    if path.is_dir():
        raise InputError(
            f"a folder, not a file: give the files in it (e.g. {path}/*.parquet)", path=path
        )
    name = path.name.lower()
    if mapping is not None and mapping.format is not None:
        return TabularSource(path, mapping)
    if name.endswith(_OSM_SUFFIXES):
        if mapping is not None:
            raise InputError("a mapping applies to tabular files, not to OSM extracts", path=path)
        return OsmSource(path, osm)
    kind = tabular_format(path)
    if kind == "parquet" and mapping is None:
        try:
            schema = pq.read_schema(path)
        except (pa.ArrowInvalid, OSError) as exc:
            raise CorruptInputError(f"not a readable Parquet file ({exc})", path=path) from exc
        if looks_like_overture(schema):
            return OvertureSource(path)
    if kind is not None:
        return TabularSource(path, mapping)
    raise UnknownFormatError(
        f"cannot tell what kind of file this is from its name; expected one of "
        f"{', '.join(_OSM_SUFFIXES[:2])} (OpenStreetMap), .parquet (Overture or flat places), "
        ".csv, .tsv, .jsonl (flat places, also as .gz, .bz2 or .zst), or a --mapping with "
        "'format:'",
        path=path,
    )
