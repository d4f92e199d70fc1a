"""Pipelines: stages composed into runs: ingest, and conflate (ingest, block, score,
cluster, merge)."""

from poiflow.pipeline.conflate import ConflateReport, conflate
from poiflow.pipeline.ingest import IngestProgress, IngestReport, SourceReport, ingest

__all__ = ["ConflateReport", "IngestProgress", "IngestReport", "SourceReport", "conflate", "ingest"]
