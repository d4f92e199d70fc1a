"""Artifacts written in the background: a reader of the file waits for it, a failed write
is raised where the run waits, and nothing is left running; an artifact written in parts
is the file written whole, or no file at all."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from poiflow.errors import OutputError
from poiflow.pipeline.artifacts import ROW_GROUP_ROWS, Artifacts, StageContext


def test_the_path_waits_for_the_file_the_table_does_not(tmp_path: Path) -> None:
    artifacts = Artifacts()
    table = pa.table({"x": [1, 2, 3]})
    path = tmp_path / "pairs.parquet"
    release = threading.Event()

    def slow_write() -> None:
        release.wait(5)
        pq.write_table(table, path)

    artifacts.put("pairs", path, table, pending=slow_write)
    assert artifacts.table("pairs") is table  # held in memory: no wait
    assert not path.exists()
    release.set()
    assert artifacts.path("pairs") == path
    assert pq.read_table(path).equals(table)  # written by the time the path is handed out
    artifacts.release("pairs")
    assert artifacts.table("pairs").equals(table)
    artifacts.close()


def test_settle_waits_for_every_write_and_raises_a_failure_once(tmp_path: Path) -> None:
    artifacts = Artifacts()

    def fail() -> None:
        raise OutputError("cannot write (disk full)", path=tmp_path / "pairs.parquet")

    artifacts.put("pairs", tmp_path / "pairs.parquet", pending=fail)
    written = []
    artifacts.put("scores", tmp_path / "scores.parquet", pending=lambda: written.append(1))
    with pytest.raises(OutputError, match="disk full"):
        artifacts.settle()
    assert written == [1]  # the other write was waited for too
    artifacts.settle()  # raised once
    artifacts.close()


def test_close_waits_swallows_and_stops_the_writer(tmp_path: Path) -> None:
    artifacts = Artifacts()
    done = []

    def fail() -> None:
        raise OutputError("cannot write", path=tmp_path / "a.parquet")

    artifacts.put("a", tmp_path / "a.parquet", pending=fail)
    artifacts.put("b", tmp_path / "b.parquet", pending=lambda: done.append("b"))
    artifacts.close()
    assert done == ["b"]  # written in order, after the failed one
    assert not [t for t in threading.enumerate() if t.name.startswith("poiflow-write")]


def test_a_file_nobody_asks_for_is_not_written(tmp_path: Path) -> None:
    """Without a stage cache only the published files are needed: the others are written
    if their file is asked for (the Spark engine reads files), else never."""
    artifacts = Artifacts(files=["places"])
    table = pa.table({"x": [1, 2, 3]})

    def writer(path: Path) -> Callable[[], None]:
        return lambda: pq.write_table(table, path)

    places, scores, clusters = (tmp_path / f"{n}.parquet" for n in ("places", "scores", "c"))
    artifacts.put("places", places, table, pending=writer(places), background=False)
    artifacts.put("scores", scores, table, pending=writer(scores))
    artifacts.put("clusters", clusters, table, pending=writer(clusters), background=False)
    assert places.exists()  # published: written
    assert not scores.exists()
    assert not clusters.exists()
    assert artifacts.table("scores") is table  # held in memory all the same
    assert artifacts.path("scores") == scores  # asked for: written now
    assert pq.read_table(scores).equals(table)
    artifacts.release("clusters")  # after its last use
    artifacts.settle()
    artifacts.close()
    assert not clusters.exists()


@pytest.mark.parametrize(
    "sizes",
    [
        [],
        [0, 7, 0],
        [ROW_GROUP_ROWS],
        [ROW_GROUP_ROWS - 1, 2, ROW_GROUP_ROWS + 5],
        [300_001] * 8,
    ],
)
def test_an_artifact_written_in_parts_is_the_file_written_whole(
    tmp_path: Path, sizes: list[int]
) -> None:
    n = sum(sizes)
    rng = np.random.default_rng(n)
    whole = pa.table({"left": np.arange(n), "probability": rng.random(n).astype(np.float32)})
    context = StageContext(tmp_path / "parts", Artifacts(), {})
    (tmp_path / "whole").mkdir()
    (tmp_path / "parts").mkdir()
    StageContext(tmp_path / "whole", Artifacts(), {}).write("pairs", whole)
    with context.stream("pairs", whole.schema) as written:
        start = 0
        for size in sizes:
            written.write(whole.slice(start, size))
            start += size
    path = context.artifacts.path("pairs")
    assert path == tmp_path / "parts" / "pairs.parquet"
    assert path.read_bytes() == (tmp_path / "whole" / "pairs.parquet").read_bytes()
    groups = pq.ParquetFile(path).metadata.num_row_groups
    assert groups == max(1, -(-n // ROW_GROUP_ROWS))
    assert sorted(p.name for p in path.parent.iterdir()) == ["pairs.parquet"]


@pytest.mark.parametrize("geo", [False, True])
def test_an_artifact_is_the_same_bytes_however_its_table_is_chunked(
    tmp_path: Path, geo: bool
) -> None:
    # polars hands over a table in as many chunks as it has threads; where a page of
    # the file ends must not follow them, or machines of other cores write other bytes.
    n = 110_000
    rng = np.random.default_rng(3)
    whole = pa.table(
        {
            "source": rng.choice(["osm", "vendor"], n),
            "id": [f"V{i:07d}" for i in rng.permutation(n)],
            "lat": rng.uniform(60, 61, n),
            "lon": rng.uniform(24, 25, n),
        }
    )
    written = []
    for step in (n, 4096, 13_751):
        chunked = pa.concat_tables([whole.slice(i, step) for i in range(0, n, step)])
        folder = tmp_path / str(step)
        folder.mkdir()
        StageContext(folder, Artifacts(), {}).write("membership", chunked, geo=geo)
        written.append((folder / "membership.parquet").read_bytes())
    assert written[1] == written[0] == written[2]


def test_an_artifact_whose_parts_fail_leaves_no_file(tmp_path: Path) -> None:
    context = StageContext(tmp_path, Artifacts(), {})
    part = pa.table({"left": np.arange(10)})

    def failing() -> None:
        with context.stream("pairs", part.schema) as written:
            written.write(part)
            raise RuntimeError("a task failed")

    with pytest.raises(RuntimeError, match="a task failed"):
        failing()
    assert list(tmp_path.iterdir()) == []
    assert "pairs" not in context.artifacts


def test_a_row_group_that_fails_on_its_thread_fails_the_block_and_leaves_no_file(
    tmp_path: Path,
) -> None:
    context = StageContext(tmp_path, Artifacts(), {})
    schema = pa.schema([("left", pa.int64())])
    # A whole row group of another type: it is written on the writer's thread, and the
    # error comes out where the block ends.
    wrong = pa.table({"left": np.arange(ROW_GROUP_ROWS, dtype=np.int32)})

    def write() -> None:
        with context.stream("pairs", schema) as written:
            written.write(wrong)

    with pytest.raises(ValueError, match="schema"):
        write()
    assert list(tmp_path.iterdir()) == []
    assert "pairs" not in context.artifacts
