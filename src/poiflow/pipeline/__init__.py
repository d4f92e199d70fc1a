"""Pipelines: stages composed into runs. Today: ingest (sources -> validate -> normalize -> file)."""

from poiflow.pipeline.ingest import IngestProgress, IngestReport, SourceReport, ingest

__all__ = ["IngestProgress", "IngestReport", "SourceReport", "ingest"]
