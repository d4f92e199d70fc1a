"""Pipelines: stages composed into runs: ingest, and conflate (ingest, block, score,
cluster, merge). Imported on first use: a worker that only ingests never loads the
matcher."""

from __future__ import annotations

from typing import TYPE_CHECKING

from poiflow._lazy import lazy_names

if TYPE_CHECKING:
    from poiflow.pipeline.conflation import ConflateReport, conflate
    from poiflow.pipeline.ingestion import IngestProgress, IngestReport, SourceReport, ingest

_LAZY = {
    "ConflateReport": "poiflow.pipeline.conflation",
    "conflate": "poiflow.pipeline.conflation",
    "IngestProgress": "poiflow.pipeline.ingestion",
    "IngestReport": "poiflow.pipeline.ingestion",
    "SourceReport": "poiflow.pipeline.ingestion",
    "ingest": "poiflow.pipeline.ingestion",
}

__all__ = ["ConflateReport", "IngestProgress", "IngestReport", "SourceReport", "conflate", "ingest"]


__getattr__ = lazy_names("poiflow.pipeline", _LAZY, globals())
