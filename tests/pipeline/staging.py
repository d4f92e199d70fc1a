"""The Helsinki pipeline run on both engines, Spark handing its stage tables through a
staging folder in object storage: what the S3 and HDFS tests compare."""

from __future__ import annotations

from pathlib import Path
from typing import Final

from poiflow.pipeline import Pipeline, RunResult

from ..conftest import ROOT

# What Spark reads through the staging folder: every stage table it is handed (the scores
# too: the run clusters on Spark, as one with more pairs than its driver clusters would).
STAGED_TABLES: Final = [
    "assignment.parquet",
    "candidates.parquet",
    "records.parquet",
    "scores.parquet",
]


def run_both_through(staging: str, output: str, tmp_path: Path) -> tuple[Path, RunResult]:
    """The local engine's output folder, and the Spark run that staged its tables at
    ``staging`` and wrote ``output``."""
    pipeline = Pipeline.from_yaml(ROOT / "examples" / "helsinki" / "pipeline.yaml")
    expected = pipeline.run(tmp_path / "local", use_cache=False, track=False)
    assert expected.output is not None
    staged = pipeline.replace(
        {
            "engine": "spark",
            "spark": {
                "master": "local[2]",
                "partitions": 3,
                "staging": staging,
                "driver_cluster_pairs": 0,
            },
        }
    )
    return expected.output, staged.run(output, use_cache=False, track=False)
