"""What the S3 and HDFS tests both check: the Helsinki pipeline run on both engines, Spark
handing its stage tables through a staging folder in the storage; and a server's
releases of an output there."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Final

import pyarrow.parquet as pq

from poiflow.pipeline import Pipeline, RunResult
from poiflow.storage import put_folder

from ..conftest import ROOT
from ..serving.test_api import later_run

if TYPE_CHECKING:
    from poiflow.serving.releases import Releases

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


def served_and_taken_up(uri: str, conflated: Path, tmp_path: Path) -> Releases:
    """Upload ``conflated`` to ``uri`` and answer from it; then a later run, and the first
    again, each uploaded over it and taken up (checked). The releases, answering from the
    first run's places."""
    from poiflow.serving.releases import Releases

    put_folder(conflated, uri)
    copies = tmp_path / "copies"
    releases = Releases(uri, copies=copies)
    first = releases.now
    places = pq.read_table(conflated / "places.parquet", columns=["id"])
    assert len(first.store) == places.num_rows
    assert first.folder.is_relative_to(copies)
    assert (first.folder / "places.parquet").read_bytes() == (
        conflated / "places.parquet"
    ).read_bytes()
    assert not releases.take_up()  # nothing new there

    # A later run uploaded over it (run.json last, as a run's upload writes it).
    made = later_run(tmp_path / "later", conflated)
    assert made != len(first.store)
    put_folder(tmp_path / "later", uri)
    assert releases.take_up()
    assert len(releases.now.store) == made
    assert len(releases.now.store.search) == made
    assert releases.now.folder != first.folder
    assert first.folder.exists()  # the last copy may be in use yet: kept

    put_folder(conflated, uri)  # and the first again: the copy before the last goes
    assert releases.take_up()
    assert len(releases.now.store) == places.num_rows
    assert not first.folder.exists()
    assert len([c for c in copies.iterdir() for _ in c.iterdir()]) == 2
    return releases
