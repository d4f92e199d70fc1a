"""poiflow: Points of Interest from many sources into one clean set of places.

The public API; everything else is internal and may change.
"""

from poiflow._version import __version__
from poiflow.config import CsvOptions, OsmOptions, SourceMapping, load_yaml
from poiflow.errors import (
    ConfigError,
    CorruptInputError,
    InputError,
    OutputError,
    PoiflowError,
    SchemaMismatchError,
    UnknownFormatError,
)
from poiflow.pipeline import ConflateReport, IngestReport, conflate, ingest
from poiflow.schema import PLACE_SCHEMA, QUARANTINE_SCHEMA, SOURCE_RECORD_SCHEMA
from poiflow.sources import OsmSource, OvertureSource, TabularSource, open_source

__all__ = [
    "PLACE_SCHEMA",
    "QUARANTINE_SCHEMA",
    "SOURCE_RECORD_SCHEMA",
    "ConfigError",
    "ConflateReport",
    "CorruptInputError",
    "CsvOptions",
    "IngestReport",
    "InputError",
    "OsmOptions",
    "OsmSource",
    "OutputError",
    "OvertureSource",
    "PoiflowError",
    "SchemaMismatchError",
    "SourceMapping",
    "TabularSource",
    "UnknownFormatError",
    "__version__",
    "conflate",
    "ingest",
    "load_yaml",
    "open_source",
]
