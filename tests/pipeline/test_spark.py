"""The spark engine: the same pipeline on a real local Spark gives the same outputs as on
the local engine, connected components come out right, hot shards are cut, and a
machine without PySpark is told how to get it."""

from __future__ import annotations

import importlib.util
import socket
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import sparse
from scipy.sparse import csgraph

from poiflow.engines.spark import decode_tables
from poiflow.errors import ConfigError, ServerUnavailableError
from poiflow.generate import generate
from poiflow.pipeline import Pipeline
from poiflow.pipeline.spark_stages import shard_count, shard_plan
from poiflow.pipeline.spark_tasks import (
    read_groups,
    read_range,
    take_rows,
    to_payloads,
    write_ranges,
)

from ..conftest import ONE_SPARK, ROOT, free_port, poiflow

HAS_SPARK = importlib.util.find_spec("pyspark") is not None
needs_spark = pytest.mark.skipif(not HAS_SPARK, reason="PySpark is not installed")
pytestmark = ONE_SPARK
SPARK = {"engine": "spark", "spark": {"master": "local[2]", "partitions": 3}}
COMPARED = ("membership", "places", "pairs", "changes", "decisions")


def run_both(
    pipeline: Pipeline, tmp_path: Path, spark_settings: dict[str, Any] | None = None
) -> tuple[Path, Path, Any]:
    local = pipeline.run(tmp_path / "local", use_cache=False, track=False)
    settings = SPARK | {"spark": SPARK["spark"] | (spark_settings or {})}
    spark = pipeline.replace(settings).run(tmp_path / "spark", use_cache=False, track=False)
    assert local.output is not None
    assert spark.output is not None
    return local.output, spark.output, spark


def assert_same_outputs(local: Path, spark: Path) -> None:
    for name in COMPARED:
        expected = pq.read_table(local / f"{name}.parquet")
        got = pq.read_table(spark / f"{name}.parquet")
        assert got.num_rows == expected.num_rows, name
        assert got.schema.equals(expected.schema, check_metadata=True), name
        # Every value the same (a missing feature is NaN on both sides: polars counts
        # NaN equal to NaN, pyarrow does not).
        assert pl.from_arrow(got).equals(pl.from_arrow(expected)), f"{name} differs"


@pytest.mark.spark
@pytest.mark.slow
@needs_spark
def test_helsinki_pipeline_gives_the_same_places_on_spark(tmp_path: Path) -> None:
    pipeline = Pipeline.from_yaml(ROOT / "examples" / "helsinki" / "pipeline.yaml")
    local, spark, result = run_both(pipeline, tmp_path)
    assert_same_outputs(local, spark)
    assert result.stage("score").summary["engine"] == "spark"
    assert result.stage("block").summary["candidate_pairs"] > 10_000
    # Scoring brought its 10,000-odd pairs to the driver: it clusters them itself.
    assert result.stage("cluster").summary["clustered"] == "on the driver"


@pytest.mark.spark
@pytest.mark.slow
@needs_spark
def test_a_hot_cell_cut_into_many_shards_gives_the_same_places(tmp_path: Path) -> None:
    # Central Helsinki is one H3 cell of the shard resolution: at 2,000 pairs a shard its
    # >10,000 candidate pairs are cut by finer cells into several shards.
    pipeline = Pipeline.from_yaml(ROOT / "examples" / "helsinki" / "pipeline.yaml")
    local = pipeline.run(tmp_path / "local", use_cache=False, track=False)
    cut = {"engine": "spark", "spark": {"master": "local[2]", "partitions": 3, "shard_pairs": 2000}}
    spark = pipeline.replace(cut).run(tmp_path / "spark", use_cache=False, track=False)
    assert local.output is not None
    assert spark.output is not None
    assert_same_outputs(local.output, spark.output)
    summary = spark.stage("score").summary
    pairs = spark.stage("block").summary["candidate_pairs"]
    assert summary["shards"] >= pairs // 2000
    assert summary["largest_shard_pairs"] < pairs / 2


@pytest.mark.spark
@pytest.mark.slow
@needs_spark
def test_generated_sources_with_and_without_coordinates_agree_on_spark(tmp_path: Path) -> None:
    located = generate(1500, 3, 21, tmp_path / "located")
    unlocated = generate(1500, 2, 22, tmp_path / "unlocated", drop_coordinates=True)
    sources = [*located.sources, *unlocated.sources]
    # A chain's call centre: one phone that a source gives to a dozen of its records.
    feed = pl.read_csv(located.sources[1], infer_schema=False)
    called = pl.int_range(pl.len()) < 12
    feed.with_columns(
        phone=pl.when(called).then(pl.lit("+358 20 123 4567")).otherwise("phone")
    ).write_csv(located.sources[1])
    # A source whose points are rounded to 2 decimals (about 1 km): its distances are
    # read less its rounding, and its records' name and typo keys look in wider rings.
    rounded = pl.read_csv(located.sources[2], infer_schema=False)
    rounded.with_columns(pl.col(c).cast(pl.Float64).round(2) for c in ("lat", "lon")).write_csv(
        located.sources[2]
    )
    # A person's decisions, against the truth: records of one place said to be two, and
    # records of two places said to be one (each record in one decision at most).
    gold = pl.read_csv(tmp_path / "located" / "gold.csv", infer_schema=False)
    shared = gold.group_by("place", maintain_order=True).agg("source", "id")
    twos = shared.filter(pl.col("id").list.len() >= 2).head(15).rows()
    ones = shared.filter(pl.col("id").list.len() == 1).head(30).rows()
    said = [(s[0], i[0], s[1], i[1], "different") for _, s, i in twos]
    said += [
        (a[1][0], a[2][0], b[1][0], b[2][0], "match")
        for a, b in zip(ones[::2], ones[1::2], strict=True)
    ]
    decisions = tmp_path / "decisions.csv"
    pl.DataFrame(
        said, schema=["left_source", "left_id", "right_source", "right_id", "label"], orient="row"
    ).write_csv(decisions)
    spec = {
        "name": "mixed",
        "sources": [{"path": str(s)} for s in sources],
        # The unsupervised model: fitted on every pair, on the driver, on both engines.
        "stages": {"score": {"model": "em"}, "ingest": {"workers": 1}},
        "decisions": str(decisions),
        "tracking": None,
        "cache": None,
    }
    pipeline = Pipeline.from_dict(spec, tmp_path)
    # Clustered by Spark's connected components, as a run with more pairs than the driver
    # clusters itself would be: the same places.
    local, spark, result = run_both(pipeline, tmp_path, {"driver_cluster_pairs": 0})
    assert_same_outputs(local, spark)
    assert result.stage("cluster").summary["clustered"] == "by Spark"
    membership = pl.read_parquet(spark / "membership.parquet")
    place = {(s, i): p for s, i, p in membership.select("source", "id", "place_id").iter_rows()}
    for left_source, left_id, right_source, right_id, label in said:
        together = place[left_source, left_id] == place[right_source, right_id]
        assert together == (label == "match")
    assert result.stage("cluster").summary["decisions"]["overruled"] >= 20
    assert result.stage("block").summary["candidate_pairs_by_key"]["locality"] > 0
    assert result.stage("merge").summary["multi_source_places"] > 500
    ingested = result.stage("ingest").summary["inputs"]
    assert [i["rounded"] for i in ingested].count({located.sources[2].stem: 2}) == 1


@pytest.mark.spark
@needs_spark
def test_connected_components_on_spark_match_scipy() -> None:
    from poiflow.engines.spark import SparkEngine

    engine = SparkEngine("local[2]", partitions=3)
    rng = np.random.default_rng(5)
    n = 400
    random_edges = rng.integers(0, n, size=(260, 2))
    chain = np.stack([np.arange(1000, 1199), np.arange(1001, 1200)], axis=1)  # a long path
    rng.shuffle(chain)
    edges = np.concatenate([random_edges, chain])
    frame = engine.frame(pa.table({"u": edges[:, 0], "v": edges[:, 1]}))
    found = engine.collect(engine.components(frame)).sort_by("node")
    nodes = np.unique(edges[edges[:, 0] != edges[:, 1]])
    graph = sparse.coo_matrix((np.ones(len(edges)), (edges[:, 0], edges[:, 1])), shape=(1200, 1200))
    _, component = csgraph.connected_components(graph, directed=False)
    smallest = np.full(component.max() + 1, 10**9)
    np.minimum.at(smallest, component, np.arange(1200))
    assert found.column("node").to_pylist() == nodes.tolist()
    assert found.column("component").to_numpy().tolist() == smallest[component[nodes]].tolist()


@st.composite
def files_and_rows(draw: st.DrawFn) -> tuple[list[int], list[int], list[int]]:
    """Row group sizes, a sorted subset of the file's rows, and a subset of its groups."""
    sizes = draw(st.lists(st.integers(1, 12), min_size=1, max_size=8))
    total = sum(sizes)
    rows = sorted(draw(st.sets(st.integers(0, total - 1), min_size=1)))
    groups = sorted(draw(st.sets(st.integers(0, len(sizes) - 1), min_size=1)))
    return sizes, rows, groups


@given(files_and_rows())
def test_a_task_reads_exactly_its_rows_and_row_groups_of_a_file(
    tmp_path_factory: pytest.TempPathFactory, case: tuple[list[int], list[int], list[int]]
) -> None:
    sizes, rows, groups = case
    total = sum(sizes)
    path = tmp_path_factory.mktemp("groups") / "records.parquet"
    values = pa.table({"x": np.arange(total) * 10, "name": [f"n{i}" for i in range(total)]})
    with pq.ParquetWriter(path, values.schema) as writer:
        start = 0
        for size in sizes:  # one row group per write
            writer.write_table(values.slice(start, size), row_group_size=size)
            start += size
    file = pq.ParquetFile(path)
    assert file.metadata.num_row_groups == len(sizes)
    taken = take_rows(file, np.array(rows, dtype=np.int64), ["x", "name"])
    assert taken.column("x").to_pylist() == [10 * r for r in rows]
    assert taken.column("name").to_pylist() == [f"n{r}" for r in rows]
    firsts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    picked = pa.table({"group": groups[::-1], "first": [int(firsts[g]) for g in groups[::-1]]})
    read = read_groups(file, picked, ["x"])
    expected = [r for g in groups for r in range(firsts[g], firsts[g] + sizes[g])]
    assert read.column("row").to_pylist() == expected
    assert read.column("x").to_pylist() == [10 * r for r in expected]


@given(st.lists(st.integers(0, 5), max_size=40))
def test_payloads_send_every_row_once_to_its_target(targets: list[int]) -> None:
    table = pa.table({"row": np.arange(len(targets), dtype=np.int64)})
    keys = np.array([100, 101, 102, 103, 104, 105], dtype=np.int64)
    packed = to_payloads(table, np.array(targets, dtype=np.int64), "key", keys)
    assert packed.column_names == ["key", "what", "payload"]
    seen: list[int] = []
    for key in packed.column("key").to_pylist():
        one = packed.filter(pc.equal(packed.column("key"), key))
        rows = decode_tables(one, "records", table.schema).column("row").to_pylist()
        assert all(targets[row] == key - 100 for row in rows)
        seen += rows
    assert sorted(seen) == list(range(len(targets)))
    assert len(set(packed.column("key").to_pylist())) == len(set(targets))


@given(
    st.lists(
        st.lists(st.tuples(st.integers(0, 99), st.integers(0, 99)), max_size=30),
        min_size=1,
        max_size=4,
    ),
    st.integers(1, 7),
)
def test_pairs_written_by_tasks_come_back_a_range_of_left_records_at_a_time(
    tmp_path_factory: pytest.TempPathFactory, shards: list[list[tuple[int, int]]], ranges: int
) -> None:
    folder = tmp_path_factory.mktemp("scored")
    files = []
    for shard, pairs in enumerate(shards):
        left, right = zip(*pairs, strict=True) if pairs else ((), ())
        scored = pa.table(
            {
                "left": pa.array(left, pa.int64()),
                "right": pa.array(right, pa.int64()),
                "probability": pa.array([lf / 100 + r / 1e4 for lf, r in pairs], pa.float64()),
            }
        )
        files.append(str(folder / f"shard-{shard}.arrow"))
        write_ranges(scored, files[-1], ranges=ranges, record_count=100, env={})
    read = [
        read_range(files, index, {}).sort_by([("left", "ascending"), ("right", "ascending")])
        for index in range(ranges)
    ]
    for index, part in enumerate(read):
        assert all(
            index * 100 <= left * ranges < (index + 1) * 100 for left in part["left"].to_pylist()
        )
    whole = pa.concat_tables(read)
    got = list(zip(whole["left"].to_pylist(), whole["right"].to_pylist(), strict=True))
    assert got == sorted(pair for pairs in shards for pair in pairs)
    assert whole["probability"].to_pylist() == [lf / 100 + r / 1e4 for lf, r in got]
    assert not list(folder.glob("*.part"))


@pytest.mark.spark
@needs_spark
def test_spread_keys_land_in_partitions_of_their_own() -> None:
    from pyspark.sql import functions as sf

    from poiflow.engines.spark import SparkEngine

    engine = SparkEngine("local[2]", partitions=7)
    keys = engine.spread_keys(7)
    frame = engine.frame(pa.table({"key": pa.array(keys, pa.int64())}))
    placed = engine.collect(
        frame.repartition(7, "key").select("key", sf.spark_partition_id().alias("part"))
    )
    assert sorted(placed.column("part").to_pylist()) == list(range(7))
    assert dict(
        zip(placed.column("key").to_pylist(), placed.column("part").to_pylist(), strict=True)
    ) == {key: i for i, key in enumerate(keys)}


def test_a_hot_cell_is_cut_into_shards_and_small_cells_are_packed() -> None:
    per_cell = pa.table({"cell": [5, 1, 9, 3], "count": [120_000, 10, 30, 40_000]})
    plan = shard_plan(per_cell, 50_000).to_pylist()
    by_cell = {row["cell"]: (row["first"], row["pieces"]) for row in plan}
    assert by_cell[5][1] == 3  # 120,000 pairs: three shards of at most 50,000
    assert by_cell[1][1] == by_cell[3][1] == by_cell[9][1] == 1
    assert by_cell[1][0] == by_cell[3][0]  # 10 + 40,000 pairs share a shard
    hot = set(range(by_cell[5][0], by_cell[5][0] + 3))
    others = {first for cell, (first, _) in by_cell.items() if cell != 5}
    assert not hot & others  # a hot cell's shards are its own
    assert shard_count(shard_plan(per_cell, 50_000)) == 5
    assert shard_count(shard_plan(pa.table({"cell": [], "count": []}), 10)) == 0


def test_spark_without_pyspark_says_how_to_install_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = importlib.util.find_spec

    def find_spec(name: str, *args: Any) -> Any:
        return None if name == "pyspark" else real(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    pipeline = Pipeline.from_yaml(ROOT / "examples" / "helsinki" / "pipeline.yaml").replace(SPARK)
    with pytest.raises(ConfigError) as caught:
        pipeline.run(tmp_path / "out", use_cache=False, track=False)
    assert "pip install -e '.[spark]'" in str(caught.value)
    assert not (tmp_path / "out").exists()  # refused before any work


@needs_spark
def test_a_cluster_master_that_cannot_be_reached_is_said_before_any_work(
    tmp_path: Path,
) -> None:
    """Before: a minute of Spark's retries and stack traces, then 'Cannot call methods on
    a stopped SparkContext' from the block stage, after ingest had run."""
    from poiflow.engines.spark import reach_master

    refused, live = free_port(), socket.create_server(("127.0.0.1", 0))
    with live:
        port = live.getsockname()[1]
        reach_master(f"spark://127.0.0.1:{port}")
        reach_master(f"spark://127.0.0.1:{refused},127.0.0.1:{port}")  # a standby answers
        reach_master(f"k8s://https://127.0.0.1:{port}")
        for local in ("local[2]", "local[*]", "yarn", ""):
            reach_master(local)  # not asked
        with pytest.raises(ServerUnavailableError, match=r"master at k8s://.*: start it"):
            reach_master(f"k8s://https://127.0.0.1:{refused}")
    nowhere = f"spark://127.0.0.1:{refused}"
    pipeline = Pipeline.from_yaml(ROOT / "examples" / "helsinki" / "pipeline.yaml").replace(
        SPARK | {"spark": SPARK["spark"] | {"master": nowhere}}
    )
    said = rf"cannot reach the Spark master at {nowhere} \(Connection refused\): start it"
    with pytest.raises(ServerUnavailableError, match=said):
        pipeline.run(tmp_path / "out", use_cache=False, track=False)
    assert not (tmp_path / "out").exists()


@pytest.mark.spark
@pytest.mark.slow
@needs_spark
def test_pairs_come_to_the_driver_a_range_of_records_at_a_time(tmp_path: Path) -> None:
    from poiflow.engines.spark import spark_session

    world = generate(3000, 3, 31, tmp_path / "world")
    spec = {
        "name": "capped",
        "sources": [{"path": str(s)} for s in world.sources],
        "tracking": None,
        "cache": None,
    }
    pipeline = Pipeline.from_dict(spec, tmp_path)
    # The driver may take 3 MiB of results a job: less than blocking's pairs as its key
    # partitions find them (~40 bytes a pair) or the scored pairs with their features
    # (~100 bytes a pair), more than the golden places it writes.
    conf = spark_session("local[2]").sparkContext._jsc.sc().conf()
    cap = conf.get("spark.driver.maxResultSize")
    conf.set("spark.driver.maxResultSize", "3m")
    try:
        local, spark, result = run_both(pipeline, tmp_path, {"partitions": 8})
    finally:
        conf.set("spark.driver.maxResultSize", cap)
    assert result.stage("block").summary["candidate_pairs"] * 40 > 3 * 2**20
    # Written a range at a time, in order: the very file the local engine writes whole.
    assert (spark / "pairs.parquet").read_bytes() == (local / "pairs.parquet").read_bytes()
    assert_same_outputs(local, spark)


@pytest.mark.spark
@pytest.mark.slow
@needs_spark
def test_a_spark_run_says_what_poiflow_did_not_how_spark_started(tmp_path: Path) -> None:
    done = poiflow(
        "conflate",
        str(ROOT / "examples" / "helsinki" / "Helsinki.osm.pbf"),
        "-o",
        str(tmp_path / "out"),
        "--engine",
        "spark",
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "out" / "membership.parquet").is_file()
    said = done.stdout + done.stderr
    # Spark's start-up notes (its log profile and level, the machine's address, Hadoop's
    # native library) and PySpark's pandas warning: none of them.
    for noise in ("log4j", "Setting default log level", " WARN ", "FutureWarning"):
        assert noise not in said, noise
    assert "outputs in" in said  # what poiflow said is still there
