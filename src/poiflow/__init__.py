"""poiflow: Points of Interest from many sources into one clean set of places.

The public API; everything else is internal and may change, but for ``poiflow.testing``
(hypothesis strategies for tests of your own stages and checks). Names are imported on
first use, so that ``import poiflow`` (and every worker process poiflow starts) loads only
the parts it needs.
"""

import importlib as _importlib
import typing as _typing

from poiflow._lazy import lazy_names as _lazy_names
from poiflow._version import __version__
from poiflow.errors import (
    ConfigError,
    CorruptInputError,
    InputError,
    OutputError,
    PoiflowError,
    SchemaMismatchError,
    ServerUnavailableError,
    StageFailedError,
    UnknownFormatError,
)

if _typing.TYPE_CHECKING:
    from poiflow.config import CsvOptions, OsmOptions, PipelineSpec, SourceMapping, load_yaml
    from poiflow.pipeline import (
        ConflateReport,
        Decision,
        Evaluation,
        IngestReport,
        PairStory,
        Pipeline,
        PlaceStory,
        RunResult,
        Trained,
        conflate,
        decide,
        evaluate,
        explain_pair,
        explain_place,
        ingest,
        questions,
        train,
    )
    from poiflow.schema import PLACE_SCHEMA, QUARANTINE_SCHEMA, SOURCE_RECORD_SCHEMA
    from poiflow.serving.answers import MatchResult, match
    from poiflow.sources import (
        FrameSource,
        OsmSource,
        OvertureSource,
        TabularSource,
        open_source,
    )

_LAZY = {
    "CsvOptions": "poiflow.config",
    "OsmOptions": "poiflow.config",
    "SourceMapping": "poiflow.config",
    "PipelineSpec": "poiflow.config",
    "Pipeline": "poiflow.pipeline",
    "RunResult": "poiflow.pipeline",
    "load_yaml": "poiflow.config",
    "ConflateReport": "poiflow.pipeline",
    "IngestReport": "poiflow.pipeline",
    "conflate": "poiflow.pipeline",
    "decide": "poiflow.pipeline",
    "Decision": "poiflow.pipeline",
    "evaluate": "poiflow.pipeline",
    "Evaluation": "poiflow.pipeline",
    "explain_pair": "poiflow.pipeline",
    "PairStory": "poiflow.pipeline",
    "explain_place": "poiflow.pipeline",
    "PlaceStory": "poiflow.pipeline",
    "ingest": "poiflow.pipeline",
    "train": "poiflow.pipeline",
    "questions": "poiflow.pipeline",
    "Trained": "poiflow.pipeline",
    "match": "poiflow.serving.answers",
    "MatchResult": "poiflow.serving.answers",
    "PLACE_SCHEMA": "poiflow.schema",
    "QUARANTINE_SCHEMA": "poiflow.schema",
    "SOURCE_RECORD_SCHEMA": "poiflow.schema",
    "FrameSource": "poiflow.sources",
    "OsmSource": "poiflow.sources",
    "OvertureSource": "poiflow.sources",
    "TabularSource": "poiflow.sources",
    "open_source": "poiflow.sources",
}

__all__ = [
    "PLACE_SCHEMA",
    "QUARANTINE_SCHEMA",
    "SOURCE_RECORD_SCHEMA",
    "ConfigError",
    "ConflateReport",
    "CorruptInputError",
    "CsvOptions",
    "Decision",
    "Evaluation",
    "FrameSource",
    "IngestReport",
    "InputError",
    "MatchResult",
    "OsmOptions",
    "OsmSource",
    "OutputError",
    "OvertureSource",
    "PairStory",
    "Pipeline",
    "PipelineSpec",
    "PlaceStory",
    "PoiflowError",
    "RunResult",
    "SchemaMismatchError",
    "ServerUnavailableError",
    "SourceMapping",
    "StageFailedError",
    "TabularSource",
    "Trained",
    "UnknownFormatError",
    "__version__",
    "conflate",
    "decide",
    "evaluate",
    "explain_pair",
    "explain_place",
    "ingest",
    "load_yaml",
    "match",
    "open_source",
    "questions",
    "train",
]


# ``poiflow.conflate`` is both the stage package and the public function. Load the package
# (its ``__init__`` is empty) now and drop the attribute the import set, so that the name
# resolves to the function below; later imports of its modules leave the name alone.
_importlib.import_module("poiflow.conflate")
globals().pop("conflate", None)


__getattr__ = _lazy_names("poiflow", _LAZY, globals())


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
