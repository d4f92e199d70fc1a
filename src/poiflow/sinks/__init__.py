"""Sinks: where tables go. Every writer is atomic: a failed run leaves no output behind."""

from poiflow.sinks.files import PLACE_FILE_FORMATS, flat_golden_places, write_places_file
from poiflow.sinks.parquet import ParquetSink, point_wkb

__all__ = [
    "PLACE_FILE_FORMATS",
    "ParquetSink",
    "flat_golden_places",
    "point_wkb",
    "write_places_file",
]
