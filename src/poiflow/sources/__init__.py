"""Sources: one module per input kind, all yielding ``SourceBatch`` es of source records.

:func:`open_source` picks the kind from the file name (and, for Parquet, the columns).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final, cast, overload

import pyarrow as pa
import pyarrow.parquet as pq

from poiflow.config import OsmOptions, SourceMapping
from poiflow.errors import (
    ConfigError,
    CorruptInputError,
    InputError,
    UnknownFormatError,
    did_you_mean,
)
from poiflow.sources.base import (
    DEFAULT_BATCH_SIZE,
    Source,
    SourceBatch,
    bytes_on_disk,
    default_name,
    files_of,
    origin_name,
    records_from_rows,
)
from poiflow.sources.flat import flat_place, flat_record_rows, flat_records
from poiflow.sources.frame import FrameSource, is_frame
from poiflow.sources.osm import OSM_KEY_PRIORITY, OsmSource
from poiflow.sources.overture import OvertureSource, looks_like_overture
from poiflow.sources.tabular import TabularSource, tabular_format

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "OSM_KEY_PRIORITY",
    "FrameSource",
    "Input",
    "Inputs",
    "OsmSource",
    "OvertureSource",
    "Source",
    "SourceBatch",
    "TabularSource",
    "bytes_on_disk",
    "flat_place",
    "flat_record_rows",
    "flat_records",
    "input_list",
    "mapping_for",
    "open_inputs",
    "open_source",
    "records_from_rows",
    "refuse_unknown_inputs",
    "source_name",
]

_OSM_SUFFIXES = (".osm.pbf", ".pbf", ".osm", ".osm.bz2", ".osm.gz", ".o5m")


def open_source(
    path: str | Path,
    mapping: SourceMapping | None = None,
    osm: OsmOptions | None = None,
) -> Source:
    """Open an input file, or a folder of files of one kind, as the right kind of source.

    Args:
        path: An OSM extract (``.osm.pbf``), an Overture places GeoParquet, or a flat
            place file (``.csv``, ``.tsv``, ``.jsonl``, any of them compressed as ``.gz``,
            ``.bz2``, ``.zst`` or ``.zip``, or ``.parquet``, GeoParquet's geometry read as
            its point), GeoJSON features (``.geojson``, ``.geojsonl``, of flat properties or
            OSM tags), a file GDAL reads (``.gpkg``, ``.shp``, ``.fgb``, ``.xlsx``,
            ``.ods``, ``.kml``, ``.kmz``, ``.gpx``); or a folder of Overture or flat place
            files, read as one input (its files in name order, those named ``.*`` or ``_*``
            left out).
        mapping: How a tabular file's columns map onto the flat place format.
        osm: Which OSM objects count as places.

    Raises:
        InputError: The file does not exist.
        UnknownFormatError: The file's kind cannot be told, or a folder's files are not all
            of one kind.
    """
    path = Path(path)
    if not path.exists():
        raise InputError("no such file", path=path)
    if mapping is not None and mapping.format is not None:
        if path.is_dir():
            _listed(path)
        return TabularSource(path, mapping)
    first = _first_of_one_kind(path) if path.is_dir() else path
    if first.name.lower().endswith(_OSM_SUFFIXES):
        if path.is_dir():
            raise InputError(
                f"a folder of OpenStreetMap extracts: give them one by one (e.g. {path}/*.pbf)",
                path=path,
            )
        if mapping is not None:
            raise InputError("a mapping applies to tabular files, not to OSM extracts", path=path)
        return OsmSource(path, osm)
    if _is_overture(first, mapping):
        return OvertureSource(path, (mapping.source if mapping else None) or "overture")
    if tabular_format(first) is not None:
        return TabularSource(path, mapping)
    raise UnknownFormatError(
        f"cannot tell what kind of file this is from its name; {_KINDS}", path=path
    )


def source_name(path: str | Path, mapping: SourceMapping | None = None) -> str:
    """The name ``open_source`` gives the source it opens for ``path``: an OpenStreetMap
    extract's ``osm``; an Overture file's ``overture`` (or the source its mapping names);
    any other file's mapping's ``source``, or its file's name up to the first dot
    (``default_name``).

    Reads no more than a Parquet file's schema. A path that is not there (or cannot be
    read) is named as a file that is not Overture's.
    """
    named = mapping.source if mapping is not None and mapping.source else None
    path = Path(path)
    if mapping is None or mapping.format is None:
        if path.name.lower().endswith(_OSM_SUFFIXES):
            return "osm"
        try:
            first = _first_of_one_kind(path) if path.is_dir() else path
            if named is None and first.is_file() and _is_overture(first, mapping):
                return "overture"
        except InputError:
            pass  # not there, or not readable: named by its file
    return named or default_name(path)


def _is_overture(first: Path, mapping: SourceMapping | None) -> bool:
    """Whether an input whose first file is ``first`` is read as Overture's places: a
    Parquet file of Overture's own columns, whose mapping (if any) only names the source.

    Raises:
        CorruptInputError: A Parquet file that cannot be read.
    """
    if tabular_format(first) != "parquet" or not (mapping is None or _names_only(mapping)):
        return False
    try:
        schema = pq.read_schema(first)
    except (pa.ArrowInvalid, OSError) as exc:
        raise CorruptInputError(f"not a readable Parquet file ({exc})", path=first) from exc
    return looks_like_overture(schema)


def _names_only(mapping: SourceMapping) -> bool:
    """Whether a mapping does no more than name the source."""
    return mapping.model_dump(exclude={"source"}) == _NO_MAPPING


_NO_MAPPING: Final = SourceMapping().model_dump(exclude={"source"})


def mapping_for(
    source: str | Path,
    mapping: SourceMapping | None,
    mappings: Mapping[str, SourceMapping] | None = None,
) -> SourceMapping | None:
    """The mapping an input is read with: its own, from ``mappings`` (keyed by the input as
    given), else ``mapping``, the one for every tabular input, which OSM extracts do not
    take (``poiflow conflate city.osm.pbf feed.csv --mapping feed.yaml``)."""
    own = {_input_key(key): value for key, value in (mappings or {}).items()}
    if _input_key(source) in own:
        return own[_input_key(source)]
    if mapping is not None and not str(source).lower().endswith(_OSM_SUFFIXES):
        return mapping
    return None


Input = str | Path | Source  # a path, a URI, or an opened source (a table: FrameSource)
Inputs = Sequence[Input] | Input  # one of them given alone is a list of it


@overload
def input_list(inputs: Sequence[str | Path] | str | Path) -> list[str | Path]: ...
@overload
def input_list(inputs: Inputs) -> list[Input]: ...
def input_list(inputs: Inputs) -> list[Any]:
    """The inputs as a list: one path, URI, source or table given alone is a list of it
    (a string is not read as its letters, nor a table as its columns); paths stay paths.

    Raises:
        ConfigError: No input at all (an empty list, or None).
    """
    if isinstance(inputs, str | os.PathLike | Source):
        return [inputs]
    if not isinstance(inputs, list | tuple) and is_frame(inputs):  # refused by name later
        return [cast(Input, inputs)]
    listed = list(inputs) if inputs is not None else []
    if not listed:
        raise ConfigError(
            "no inputs given: name one or more (a file, a folder, a URI, or a table as "
            "poiflow.FrameSource(table, name='vendor'))"
        )
    return listed


def refuse_unknown_inputs(
    inputs: Sequence[str | Path | Source], mappings: Mapping[str, SourceMapping] | None
) -> None:
    """Refuse mappings of inputs that are not given (a typo would read a feed unmapped) or
    that are opened sources (read with their own mapping), and tables in memory that are
    not named.

    Raises:
        InputError: A mapping's input is not among ``inputs`` (as given), or is an opened
            source; or an input is a table in memory not wrapped in a ``FrameSource``,
            which names it.
    """
    for position, value in enumerate(inputs, start=1):
        if not isinstance(value, Source) and is_frame(value):
            raise InputError(
                f"input {position} is a table in memory ({type(value).__name__}): give it a "
                "source name with poiflow.FrameSource(table, name='vendor')"
            )
        if not isinstance(value, Source | str | os.PathLike):
            raise InputError(
                f"input {position} is not a path or a source ({type(value).__name__} "
                f"{value!r:.40}): give a path, a URI, an opened source, or a table as "
                "poiflow.FrameSource(table, name)"
            )
    opened = {_input_key(str(i.path)): i for i in inputs if isinstance(i, Source)}
    for key in mappings or {}:
        if _input_key(key) in opened:  # it was read with its own mapping, or none
            raise InputError(
                f"a mapping is given for {key}, which is a source opened already "
                f"({opened[_input_key(key)].kind}): give the mapping to the source itself "
                "(poiflow.FrameSource(table, name, mapping), TabularSource(path, mapping))",
                path=key,
            )
    names = [str(i.path if isinstance(i, Source) else i) for i in inputs]
    given = {_input_key(name) for name in names}
    unknown = sorted(key for key in mappings or {} if _input_key(key) not in given)
    if unknown:
        raise InputError(
            f"a mapping is given for {', '.join(unknown)}, which is not an input."
            f"{did_you_mean(unknown[0], names)} The inputs: {', '.join(names)}",
            path=unknown[0],
        )


def open_inputs(
    inputs: Sequence[str | Path | Source],
    mapping: SourceMapping | None = None,
    mappings: Mapping[str, SourceMapping] | None = None,
    osm: OsmOptions | None = None,
) -> list[Source]:
    """The inputs as sources (those given opened as they are), each path opened with its
    mapping (see ``mapping_for``)."""
    return [
        s
        if isinstance(s, Source)
        else open_source(s, mapping=mapping_for(s, mapping, mappings), osm=osm)
        for s in inputs
    ]


def _input_key(value: object) -> str:
    """An input as a mapping names it: a local path as Python writes it (``feed/`` is
    ``feed``), a URI as it is."""
    text = str(value)
    return text if "://" in text else str(Path(text))


_KINDS = (
    f"expected one of {', '.join(_OSM_SUFFIXES[:2])} (OpenStreetMap), .parquet (Overture or "
    "flat places), .csv, .tsv, .jsonl (flat places, also as .gz, .bz2, .zst or .zip), .geojson "
    "(GeoJSON features), .gpkg, .shp, .fgb, .xlsx, .ods, .kml, .gpx (read by GDAL), or a "
    "--mapping with 'format:'"
)


def _first_of_one_kind(folder: Path) -> Path:
    """A folder's first file, once every file in it is known to be of one kind.

    Raises:
        InputError: The folder holds no files.
        UnknownFormatError: A file's kind cannot be told, or there are files of two kinds.
    """
    files = _listed(folder)
    kinds: dict[str, Path] = {}
    for file in files:
        kind = "osm" if file.name.lower().endswith(_OSM_SUFFIXES) else tabular_format(file)
        if kind is None:
            raise UnknownFormatError(
                f"a folder is read as one input, and {origin_name(folder, file)} in it is of a "
                f"kind that cannot be told from its name; {_KINDS}",
                path=folder,
            )
        kinds.setdefault(kind, file)
    if len(kinds) > 1:
        shown = ", ".join(f"{origin_name(folder, file)} ({kind})" for kind, file in kinds.items())
        raise UnknownFormatError(
            f"a folder is read as one input, all of one kind, but this one holds files of "
            f"{len(kinds)} kinds: {shown}; give them as separate inputs",
            path=folder,
        )
    return files[0]


def _listed(folder: Path) -> list[Path]:
    """The files a folder is read as; refused where there are none."""
    files = files_of(folder)
    if not files:
        raise InputError("an empty folder: it holds no files to read", path=folder)
    return files
