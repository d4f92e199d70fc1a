"""Sinks: where tables go. Every writer is atomic: a failed run leaves no output behind."""

from poiflow.sinks.parquet import ParquetSink, point_wkb

__all__ = ["ParquetSink", "point_wkb"]
