"""Pipelines: stages composed into runs: ingest, conflate (ingest, block, score, cluster,
merge), and declared pipelines (a YAML file or a :class:`Pipeline`) with a stage cache.
Imported on first use: a worker that only ingests never loads the matcher."""

from __future__ import annotations

from typing import TYPE_CHECKING

from poiflow._lazy import lazy_names

if TYPE_CHECKING:
    from poiflow.pipeline.conflation import ConflateReport, conflate
    from poiflow.pipeline.deciding import Decision, decide, questions
    from poiflow.pipeline.declared import Pipeline
    from poiflow.pipeline.evaluation import Evaluation, evaluate
    from poiflow.pipeline.explaining import PairStory, explain_pair
    from poiflow.pipeline.ingest_report import IngestProgress, IngestReport, SourceReport
    from poiflow.pipeline.ingestion import ingest
    from poiflow.pipeline.place_story import PlaceStory, explain_place
    from poiflow.pipeline.runner import RunResult, StageRun
    from poiflow.pipeline.training import Trained, train

_LAZY = {
    "ConflateReport": "poiflow.pipeline.conflation",
    "conflate": "poiflow.pipeline.conflation",
    "IngestProgress": "poiflow.pipeline.ingest_report",
    "IngestReport": "poiflow.pipeline.ingest_report",
    "SourceReport": "poiflow.pipeline.ingest_report",
    "ingest": "poiflow.pipeline.ingestion",
    "Pipeline": "poiflow.pipeline.declared",
    "Decision": "poiflow.pipeline.deciding",
    "decide": "poiflow.pipeline.deciding",
    "questions": "poiflow.pipeline.deciding",
    "Evaluation": "poiflow.pipeline.evaluation",
    "evaluate": "poiflow.pipeline.evaluation",
    "PairStory": "poiflow.pipeline.explaining",
    "explain_pair": "poiflow.pipeline.explaining",
    "PlaceStory": "poiflow.pipeline.place_story",
    "explain_place": "poiflow.pipeline.place_story",
    "RunResult": "poiflow.pipeline.runner",
    "StageRun": "poiflow.pipeline.runner",
    "Trained": "poiflow.pipeline.training",
    "train": "poiflow.pipeline.training",
}

__all__ = [
    "ConflateReport",
    "Decision",
    "Evaluation",
    "IngestProgress",
    "IngestReport",
    "PairStory",
    "Pipeline",
    "PlaceStory",
    "RunResult",
    "SourceReport",
    "StageRun",
    "Trained",
    "conflate",
    "decide",
    "evaluate",
    "explain_pair",
    "explain_place",
    "ingest",
    "questions",
    "train",
]


__getattr__ = lazy_names("poiflow.pipeline", _LAZY, globals())
