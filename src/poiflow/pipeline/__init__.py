"""Pipelines: stages composed into runs. Today: ingest (read, validate, normalize, write)."""

from poiflow.pipeline.ingest import IngestProgress, IngestReport, SourceReport, ingest

__all__ = ["IngestProgress", "IngestReport", "SourceReport", "ingest"]
