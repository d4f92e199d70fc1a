"""The Source protocol, the batch it yields, and helpers shared by the source kinds."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Protocol, runtime_checkable
from urllib.parse import unquote

import numpy as np
import pyarrow as pa

from poiflow.schema import SOURCE_RECORD_SCHEMA

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "Source",
    "SourceBatch",
    "bytes_on_disk",
    "companion_suffixes",
    "companions",
    "files_of",
    "origin_name",
    "owns",
    "partition_values",
    "records_from_rows",
]

DEFAULT_BATCH_SIZE = 50_000
# What writers leave beside a folder's parts (Spark's _SUCCESS, Hadoop's .crc files).
_BOOKKEEPING = (".", "_")
# How Spark and Hive write a null partition value (`country=__HIVE_DEFAULT_PARTITION__/`).
_NULL_PARTITION = "__HIVE_DEFAULT_PARTITION__"


@dataclass(frozen=True, slots=True)
class SourceBatch:
    """One batch of records from a source.

    Attributes:
        records: The records in ``SOURCE_RECORD_SCHEMA``.
        original: The same rows as the source gave them (its own columns), so that a record
            held back by validation can be quarantined with its original values; ``None``
            where the records carry the source's values unchanged and the ``origin`` points
            back into the input (an OSM object id).
        rejected: Rows the source could not even split into fields (a CSV row with the wrong
            number of columns, a line that is not JSON): ``(origin, reason, raw text)``.
        chunk: The batch's place in the source: batches are numbered 0, 1, 2, ... in input
            order, whichever partition reads them.
    """

    records: pa.Table
    original: pa.Table | None = None
    rejected: tuple[tuple[str, str, str], ...] = ()
    chunk: int = 0

    def __post_init__(self) -> None:
        if self.original is not None and self.records.num_rows != self.original.num_rows:
            msg = "records and original must have the same rows"
            raise ValueError(msg)


@runtime_checkable
class Source(Protocol):
    """A readable input of places: one file of one kind.

    Attributes:
        name: The source's name, as it appears in every record's ``source`` column for
            sources that do not carry their own.
        path: The file, or a folder whose files are read as one input, in name order
            (Overture's releases and Spark's outputs are folders of Parquet parts).
    """

    name: str
    path: Path

    @property
    def kind(self) -> str:
        """What kind of input it is, for people ("OpenStreetMap", "GeoJSON, OSM tags")."""
        ...

    def batches(
        self, batch_size: int = DEFAULT_BATCH_SIZE, part: int = 0, parts: int = 1
    ) -> Iterator[SourceBatch]:
        """Yield the records in batches of at most ``batch_size`` rows.

        With ``parts > 1``, yield only the batches whose ``chunk % parts == part``, every one
        of them (empty ones too), so that ``parts`` processes can share one input and their
        batches can be merged back into input order.

        Raises:
            poiflow.errors.InputError: The file is unreadable, truncated or malformed.
        """
        ...

    def size_hint(self) -> int | None:
        """How many records the source holds, if it can tell cheaply; for progress bars."""
        ...


def owns(chunk: int, part: int, parts: int) -> bool:
    """Whether partition ``part`` of ``parts`` reads batch number ``chunk``."""
    return chunk % parts == part


def records_from_rows(rows: Sequence[dict[str, Any]]) -> pa.Table:
    """A ``SOURCE_RECORD_SCHEMA`` table from row dicts (missing keys are null)."""
    return pa.Table.from_pylist(list(rows), schema=SOURCE_RECORD_SCHEMA)


def records_table(columns: Mapping[str, pa.Array]) -> pa.Table:
    """A ``SOURCE_RECORD_SCHEMA`` table of its columns by name."""
    return pa.Table.from_arrays(
        [columns[field.name] for field in SOURCE_RECORD_SCHEMA], schema=SOURCE_RECORD_SCHEMA
    )


def spread(count: int, rows: np.ndarray, values: pa.Array) -> pa.Array:
    """``count`` values: ``values[i]`` at row ``rows[i]``, null at the rows none is for."""
    index = np.full(count, -1, dtype=np.int64)
    index[rows] = np.arange(len(rows))
    return values.take(pa.array(index, mask=index < 0))


def default_name(path: Path | str) -> str:
    """The name of a file's source where nothing else names it: the file's name up to its
    first dot (``vendor`` for ``feeds/vendor.csv.gz``)."""
    return Path(path).name.split(".")[0]


def files_of(path: Path) -> list[Path]:
    """The files an input reads: the file itself, or every file under a folder in name
    order, without the bookkeeping that writers leave beside their parts (names starting
    with ``.`` or ``_``: ``_SUCCESS``, ``.part-0.parquet.crc``)."""
    if not path.is_dir() or path.name.lower().endswith(_ONE_FILE_FOLDERS):
        return [path]
    found = []
    for file in path.rglob("*"):
        parts = file.relative_to(path).parts
        if any(part.startswith(_BOOKKEEPING) for part in parts):
            continue
        if any(part.lower().endswith(_ONE_FILE_FOLDERS) for part in parts[:-1]):
            continue  # inside a folder that is one file (a .gdb's own tables)
        one_file = file.is_dir() and file.name.lower().endswith(_ONE_FILE_FOLDERS)
        if one_file or (file.is_file() and not _companion(file)):
            found.append(file)
    return sorted(found)


# Folders that are one file to the library that reads them (an Esri File Geodatabase).
_ONE_FILE_FOLDERS = (".gdb",)
# The files beside a file that are part of it (read with it), not inputs of their own: a
# shapefile's attributes and coordinate system, a MapInfo table's data, map and index, a
# MapInfo interchange file's attributes, a GML file's schema (and GDAL's own schema file).
_PARTS: Final = {
    ".shp": (".dbf", ".shx", ".prj", ".cpg", ".qix", ".sbn", ".sbx", ".shp.xml"),
    ".tab": (".dat", ".map", ".id", ".ind"),
    ".mif": (".mid",),
    ".gml": (".xsd", ".gfs"),
}


def companion_suffixes(name: str) -> tuple[str, ...]:
    """The suffixes of the files read with a file of this name, beside its own: a
    shapefile's ``.dbf``, ``.shx``, ``.prj``, ... (its attributes and coordinate system are
    there, not in the ``.shp``), a MapInfo table's ``.dat`` and ``.map``, a MapInfo
    interchange file's ``.mid``, a GML file's ``.xsd``; none for other files."""
    parts = next((p for main, p in _PARTS.items() if name.lower().endswith(main)), ())
    return tuple(s for suffix in parts for s in (suffix, suffix.upper()))


def companions(path: Path) -> list[Path]:
    """The files read with a file, beside it (see ``companion_suffixes``)."""
    stem = path.name[: -len(path.suffix)] if path.suffix else path.name
    return sorted(
        file
        for suffix in companion_suffixes(path.name)
        if (file := path.with_name(stem + suffix)).is_file()
    )


def _companion(file: Path) -> bool:
    """Whether a file is part of another beside it (a shapefile's ``.dbf``)."""
    name = file.name.lower()
    for main, parts in _PARTS.items():
        for suffix in parts:
            if name.endswith(suffix):
                stem = file.name[: -len(suffix)]
                if any(file.with_name(stem + m).exists() for m in (main, main.upper())):
                    return True
    return False


def origin_name(path: Path, file: Path) -> str:
    """How a record's origin names its file: the file's name, or its path within the
    folder read as the input (``theme=places/part-00001.parquet``)."""
    return file.name if file == path else file.relative_to(path).as_posix()


def partition_values(path: Path, file: Path) -> dict[str, str | None]:
    """The values a folder's layout gives a file: each ``key=value`` folder between the
    input folder and the file (``country=FI/day=2024-05-01/part-0.parquet``), as Spark,
    Hive and DuckDB write a table partitioned by columns they leave out of the files.

    Values are unescaped as those writers escape them (``%3A`` is ``:``), and Hive's
    ``__HIVE_DEFAULT_PARTITION__`` is null. A file given alone has none.
    """
    if file == path:
        return {}
    values: dict[str, str | None] = {}
    for folder in file.relative_to(path).parts[:-1]:
        key, equals, value = folder.partition("=")
        if equals and key:
            text = unquote(value)
            values[unquote(key)] = None if text == _NULL_PARTITION else text
    return values


def bytes_on_disk(path: Path) -> int:
    """The size of an input's files together (0 where it cannot be read)."""
    try:
        return sum(file.stat().st_size for file in files_of(path))
    except OSError:
        return 0
