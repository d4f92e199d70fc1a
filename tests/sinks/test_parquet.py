from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from hypothesis import given
from hypothesis import strategies as st

from poiflow.sinks import ParquetSink, point_wkb
from poiflow.sources.geometry import points_from_wkb

from ..conftest import killed_outright

SCHEMA = pa.schema([("id", pa.string()), ("lat", pa.float64()), ("lon", pa.float64())])


@given(
    st.lists(
        st.tuples(st.floats(-90, 90), st.floats(-180, 180)) | st.just((np.nan, np.nan)), max_size=50
    ).map(lambda xs: xs if isinstance(xs, list) else [xs])
)
def test_wkb_round_trip(points: list[tuple[float, float]]) -> None:
    lat = np.array([p[0] for p in points], dtype=float)
    lon = np.array([p[1] for p in points], dtype=float)
    back_lat, back_lon, not_points = points_from_wkb(point_wkb(lat, lon))
    assert not_points == []
    np.testing.assert_array_equal(back_lat, lat)
    np.testing.assert_array_equal(back_lon, lon)


def test_file_appears_only_on_close(tmp_path: Path) -> None:
    path = tmp_path / "p.parquet"
    sink = ParquetSink(path, SCHEMA, geo=True)
    sink.write(pa.table({"id": ["a", "b"], "lat": [60.0, None], "lon": [24.0, None]}))
    assert not path.exists()
    sink.close()
    table = pq.read_table(path)
    assert table.column("geometry").null_count == 1
    geo = json.loads(pq.read_metadata(path).metadata[b"geo"])
    assert geo["columns"]["geometry"]["bbox"] == [24.0, 60.0, 24.0, 60.0]


def test_an_exception_leaves_nothing_and_keeps_the_old_file(tmp_path: Path) -> None:
    path = tmp_path / "p.parquet"
    path.write_bytes(b"old")

    def failing_run() -> None:
        with ParquetSink(path, SCHEMA) as sink:
            sink.write(pa.table({"id": ["a"], "lat": [1.0], "lon": [2.0]}))
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        failing_run()
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["p.parquet"]


def test_a_rewrite_passes_every_table_written_so_far_through_the_fix(tmp_path: Path) -> None:
    path = tmp_path / "p.parquet"
    sink = ParquetSink(path, SCHEMA, geo=True)
    sink.write(pa.table({"id": ["a", "b"], "lat": [60.0, 10.0], "lon": [24.0, 5.0]}))
    sink.write(pa.table({"id": ["c"], "lat": [61.0], "lon": [25.0]}))
    seen: list[list[str]] = []

    def without_b(table: pa.Table) -> pa.Table:
        seen.append(table.column("id").to_pylist())
        b = pa.array([i == "b" for i in table.column("id").to_pylist()])
        nothing = pa.scalar(None, pa.float64())
        lat = pc.if_else(b, nothing, table.column("lat"))
        lon = pc.if_else(b, nothing, table.column("lon"))
        return table.set_column(1, "lat", lat).set_column(2, "lon", lon)

    sink.rewrite(without_b)
    assert seen == [["a", "b"], ["c"]]  # table by table, without the geometry it adds
    sink.write(pa.table({"id": ["d"], "lat": [62.0], "lon": [26.0]}))
    assert not path.exists()
    sink.close()
    table = pq.read_table(path)
    assert table.column("id").to_pylist() == ["a", "b", "c", "d"]
    assert table.column("lat").to_pylist() == [60.0, None, 61.0, 62.0]
    assert table.column("geometry").null_count == 1
    geo = json.loads(pq.read_metadata(path).metadata[b"geo"])
    assert geo["columns"]["geometry"]["bbox"] == [24.0, 60.0, 26.0, 62.0]  # b's point is gone
    assert sink.rows == 4
    assert [p.name for p in tmp_path.iterdir()] == ["p.parquet"]


def test_an_abort_after_a_rewrite_leaves_nothing(tmp_path: Path) -> None:
    sink = ParquetSink(tmp_path / "p.parquet", SCHEMA)
    sink.write(pa.table({"id": ["a"], "lat": [1.0], "lon": [2.0]}))
    sink.rewrite(lambda table: table)
    sink.abort()
    assert list(tmp_path.iterdir()) == []


def test_a_writer_killed_outright_leaves_its_part_for_the_next_writer_to_remove(
    tmp_path: Path,
) -> None:
    """A process killed mid-write cannot remove its hidden part-file (a million records'
    worth, at scale); the next writer of the same file does, and leaves alone a live
    process's and another file's."""
    path = tmp_path / "p.parquet"
    pid = killed_outright(
        "import os, pyarrow as pa; from poiflow.sinks import ParquetSink\n"
        f"sink = ParquetSink({str(path)!r}, pa.schema([('id', pa.string())]))\n"
        "sink.write(pa.table({'id': ['a']}))\n"
        "os.kill(os.getpid(), 9)\n"
    )
    left = tmp_path / f".p.parquet.{pid}.tmp"
    assert [p.name for p in tmp_path.iterdir()] == [left.name]
    writing = tmp_path / f".p.parquet.{os.getppid()}.tmp"  # a live process's
    writing.write_bytes(b"half")
    other = tmp_path / f".q.parquet.{pid}.tmp"  # another file's: its writer's to remove
    other.write_bytes(b"half")

    with ParquetSink(path, SCHEMA) as sink:
        sink.write(pa.table({"id": ["a"], "lat": [1.0], "lon": [2.0]}))
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [writing.name, other.name, "p.parquet"]
    )
