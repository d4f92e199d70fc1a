"""Shard invariance: blocking, features, clustering and merging give on any cut of the data
what they give on the whole, which is what lets Spark run them per partition."""

from __future__ import annotations

import os
import sys
from itertools import pairwise
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np
import polars as pl
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from poiflow.conflate import clustering_cores
from poiflow.conflate.blocking import (
    candidate_pairs,
    finish_pairs,
    key_counts,
    key_pairs,
    key_stats,
    record_keys,
)
from poiflow.conflate.clustering import ClusterConfig, cluster_part
from poiflow.conflate.clustering_cores import ClusterInput, cluster_on_cores, component_shards
from poiflow.conflate.features import (
    FEATURES,
    RecordView,
    feature_counts,
    feature_stats,
    pair_features,
)
from poiflow.conflate.keys import BLOCKING_COLUMNS
from poiflow.conflate.merge import merge_clusters

from .conftest import World


def with_rows(records: pa.Table) -> pa.Table:
    rows = pa.array(np.arange(records.num_rows, dtype=np.int64))
    return records.select(list(BLOCKING_COLUMNS)).append_column("row", rows)


def test_blocking_in_batches_and_key_partitions_equals_the_whole(world: World) -> None:
    table = with_rows(world.records)
    whole = candidate_pairs(world.records)
    # Statistics from counts per batch (uneven batches), keys per batch, pairs per hash
    # partition of the keys: what Spark does.
    bounds = [0, 1000, 1001, 4500, table.num_rows]
    batches = [table.slice(a, b - a) for a, b in pairwise(bounds)]
    stats = key_stats([key_counts(b) for b in batches])
    assert stats.records == table.num_rows
    keys = pl.concat([record_keys(b, stats) for b in batches])
    parts = keys.with_columns((pl.col("key") % 5).alias("part")).partition_by("part")
    pieces = [key_pairs(part.drop("part")) for part in parts]
    assert len(pieces) == 5
    assert finish_pairs(pieces, table.num_rows).equals(whole)


def test_a_pair_found_by_two_keys_in_two_partitions_keeps_both_bits() -> None:
    a = pl.DataFrame({"left": [0, 1], "right": [5, 2], "keys": [1, 4]})
    b = pl.DataFrame({"left": [0], "right": [5], "keys": [2]})
    done = finish_pairs([a, b], 10)
    assert done.to_pylist() == [
        {"left": 0, "right": 5, "keys": 3},
        {"left": 1, "right": 2, "keys": 4},
    ]


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 30), st.integers(0, 30), st.sampled_from([1, 2, 4, 8, 16, 3])),
        min_size=1,
        max_size=60,
    )
)
def test_pairs_finished_as_one_number_or_as_two_columns_are_the_same(
    found: list[tuple[int, int, int]],
) -> None:
    """Up to half a billion records a pair and its key's bit are sorted as one integer;
    beyond, as two columns: the same candidates either way."""
    frame = pl.DataFrame(
        {
            "left": [min(a, b) for a, b, _ in found],
            "right": [max(a, b) + 1 for a, b, _ in found],
            "keys": [k for _, _, k in found],
        },
        schema={"left": pl.Int64, "right": pl.Int64, "keys": pl.Int32},
    )
    one_number = finish_pairs([frame], 32)
    with mock.patch.object(sys.modules["poiflow.conflate.blocking"], "_ONE_NUMBER_ROWS", 0):
        two_columns = finish_pairs([frame], 32)
    assert one_number.equals(two_columns)
    expected: dict[tuple[int, int], int] = {}
    for a, b, k in found:
        key = (min(a, b), max(a, b) + 1)
        expected[key] = expected.get(key, 0) | k
    assert [(r["left"], r["right"], r["keys"]) for r in one_number.to_pylist()] == sorted(
        (a, b, k) for (a, b), k in expected.items()
    )


def test_features_of_a_shard_with_global_counts_equal_the_whole(world: World) -> None:
    records = world.records
    pairs = candidate_pairs(records)
    left = pairs.column("left").to_numpy()
    right = pairs.column("right").to_numpy()
    whole = pair_features(RecordView.of(records), left, right)
    # One shard: the pairs of a third of the left records, with every record they touch.
    chosen = np.flatnonzero(left % 3 == 0)
    rows = np.unique(np.concatenate([left[chosen], right[chosen]]))
    shard = records.take(pa.array(rows))
    stats = feature_stats(
        [feature_counts(records.slice(0, 2000)), feature_counts(records.slice(2000))]
    )
    part = pair_features(
        RecordView.of(shard, stats),
        np.searchsorted(rows, left[chosen]),
        np.searchsorted(rows, right[chosen]),
    )
    for name in FEATURES:  # the very same bits, NaN where missing
        np.testing.assert_array_equal(part[name], whole[name][chosen], err_msg=name)
    # Counting only the shard's own records would change the name weights: the stats matter.
    own = pair_features(
        RecordView.of(shard),
        np.searchsorted(rows, left[chosen]),
        np.searchsorted(rows, right[chosen]),
    )
    assert not np.array_equal(own["name_commonness"], whole["name_commonness"][chosen])


@settings(max_examples=40, deadline=None)
@given(
    edges=st.lists(
        st.tuples(st.integers(0, 29), st.integers(0, 29), st.floats(0.0, 1.0)), max_size=80
    ),
    cut=st.integers(1, 4),
)
def test_clustering_whole_components_apart_equals_clustering_them_together(
    edges: list[tuple[int, int, float]], cut: int
) -> None:
    n = 30
    pairs = {(min(a, b), max(a, b)): p for a, b, p in edges if a != b}
    left = np.array([k[0] for k in pairs], dtype=np.int64)
    right = np.array([k[1] for k in pairs], dtype=np.int64)
    probability = np.array(list(pairs.values()), dtype=np.float64)
    sources = np.array(["abc"[i % 3] for i in range(n)], dtype=object)
    config = ClusterConfig(threshold=0.4)
    rows = np.arange(n, dtype=np.int64)
    labels, best = cluster_part(rows, sources, left, right, probability, config)
    # Components of the strong edges, dealt round-robin into `cut` shards.
    parent = list(range(n))

    def find(x: int) -> int:
        while parent[x] != x:
            x = parent[x]
        return x

    for a, b, p in zip(left, right, probability, strict=True):
        if p >= config.threshold:
            parent[find(int(a))] = find(int(b))
    component = np.array([find(i) for i in range(n)])
    shard = component % cut
    got_labels, got_best = np.arange(n), np.ones(n)
    for s in range(cut):
        members = rows[shard == s]
        inside = (shard[left] == s) & (component[left] == component[right])
        part_labels, part_best = cluster_part(
            members, sources[members], left[inside], right[inside], probability[inside], config
        )
        got_labels[members] = part_labels
        got_best[members] = part_best
    np.testing.assert_array_equal(got_labels, labels)
    np.testing.assert_array_equal(got_best, best)


def random_graph(
    n: int, edges: list[tuple[int, int, float]], decisions: list[tuple[int, int, int]]
) -> ClusterInput:
    """``n`` records of three sources and their pairs: each pair once, the first of its
    edges and decisions kept."""
    pairs: dict[tuple[int, int], float] = {}
    for a, b, p in edges:
        if a != b:
            pairs.setdefault((min(a, b), max(a, b)), p)
    said = {(min(a, b), max(a, b)): d for a, b, d in decisions if (min(a, b), max(a, b)) in pairs}
    keys = list(pairs)
    return ClusterInput(
        np.arange(n, dtype=np.int64),
        np.array(["abc"[i % 3] for i in range(n)], dtype=object),
        np.array([k[0] for k in keys], dtype=np.int64),
        np.array([k[1] for k in keys], dtype=np.int64),
        np.array([pairs[k] for k in keys], dtype=np.float64),
        np.array([said.get(k, 0) for k in keys], dtype=np.int8),
    )


@settings(max_examples=200)
@given(
    edges=st.lists(
        st.tuples(st.integers(0, 39), st.integers(0, 39), st.floats(0.0, 1.0)), max_size=120
    ),
    decisions=st.lists(
        st.tuples(st.integers(0, 39), st.integers(0, 39), st.sampled_from([1, -1])), max_size=6
    ),
    parts=st.integers(2, 5),
    threshold=st.sampled_from([0.05, 0.3, 0.6]),
)
def test_shards_of_whole_components_clustered_apart_give_the_clusters_of_the_whole(
    edges: list[tuple[int, int, float]],
    decisions: list[tuple[int, int, int]],
    parts: int,
    threshold: float,
) -> None:
    """What ``cluster_on_cores`` hands each process (by ``component_shards``), clustered
    here shard by shard and put together as it puts them: the whole's labels and best."""
    whole = random_graph(40, edges, decisions)
    decided = whole.decided
    assert decided is not None
    if np.any(decided > 0) and np.any(decided < 0):  # decisions that contradict are refused
        whole = whole._replace(decided=np.maximum(decided, 0).astype(np.int8))
    config = ClusterConfig(threshold=threshold)
    labels, best = cluster_part(*whole[:5], config, whole.decided)
    shards = component_shards(whole, config, parts)
    assert shards is not None
    got_labels, got_best = whole.rows.copy(), np.ones(len(whole.rows))
    seen: list[np.ndarray] = []
    for shard in shards:
        part_labels, part_best = shard.cluster(config)
        got_labels[shard.rows], got_best[shard.rows] = part_labels, part_best
        seen.append(shard.rows)
    np.testing.assert_array_equal(got_labels, labels)
    np.testing.assert_array_equal(got_best, best)
    every = np.concatenate(seen) if seen else np.empty(0, np.int64)
    assert len(np.unique(every)) == len(every)  # a record in one shard at most


def test_clustering_on_two_cores_gives_the_clusters_of_one() -> None:
    """Processes of their own, each given its shard as a file: the same labels and best."""
    rng = np.random.default_rng(5)
    n = 600
    ends, ps = rng.integers(0, n, (3000, 2)), rng.random(3000)
    edges = [(int(a), int(b), float(p)) for (a, b), p in zip(ends, ps, strict=True)]
    decisions = [(int(a), int(b), -1) for a, b in rng.integers(0, n, (20, 2))]
    graph = random_graph(n, edges, decisions)
    config = ClusterConfig(threshold=0.4)
    whole = cluster_part(*graph[:5], config, graph.decided)
    apart = cluster_on_cores(graph, config, parts=2)
    np.testing.assert_array_equal(apart[0], whole[0])
    np.testing.assert_array_equal(apart[1], whole[1])
    assert len(np.unique(whole[0])) < n  # some records did join


@pytest.mark.parametrize(
    "edges",
    [
        [(0, 1, 0.9), (1, 2, 0.8), (0, 2, 0.7), (3, 4, 0.1)],  # one component of several
        [(0, 1, 0.1), (2, 3, 0.2)],  # none: every record alone
    ],
)
def test_clustering_on_cores_with_fewer_components_than_cores(
    edges: list[tuple[int, int, float]],
) -> None:
    """Shards left empty are not run, and one shard alone is clustered here."""
    graph = random_graph(6, edges, [])
    whole = cluster_part(*graph[:5], ClusterConfig(), graph.decided)
    for parts in (2, 4):
        got = cluster_on_cores(graph, ClusterConfig(), parts=parts)
        np.testing.assert_array_equal(got[0], whole[0])
        np.testing.assert_array_equal(got[1], whole[1])


def test_a_run_clustered_on_every_core_writes_the_places_of_one_clustered_here(
    conflated: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The cluster stage takes the cores past a size (``PARALLEL_INSIDE``): made to at
    once, a run writes the same places as the one clustered in one process."""
    from poiflow.pipeline import conflate

    cores = os.cpu_count() or 1
    if cores < 2:
        pytest.skip("one core: nothing to share out")
    monkeypatch.setattr(clustering_cores, "PARALLEL_INSIDE", 0)
    monkeypatch.setattr(clustering_cores, "PARALLEL_SHARE", 0.0)
    parts = []
    real = clustering_cores.component_shards

    def counted(*args: Any, **kwargs: Any) -> Any:
        shards = real(*args, **kwargs)
        parts.append(None if shards is None else len(shards))
        return shards

    monkeypatch.setattr(clustering_cores, "component_shards", counted)
    sources = sorted((conflated.parent / "sources").glob("source_*.csv"))
    conflate(sources, tmp_path / "out", workers=1)
    assert parts == [cores]  # it did share the work out
    for name in ("membership.parquet", "places.parquet"):
        assert (tmp_path / "out" / name).read_bytes() == (conflated / name).read_bytes()


def test_merging_clusters_apart_equals_merging_them_together(world: World) -> None:
    records = world.records
    # Clusters: the known truth, a place per real place.
    truth = pl.Series(world.truth).fill_null("?")
    labels = truth.rank("dense").cast(pl.Int64).to_numpy()
    best = np.linspace(0.5, 1.0, records.num_rows)
    places, membership = merge_clusters(records, labels, best)
    halves = labels % 2 == 0
    parts = [
        merge_clusters(records.filter(pa.array(mask)), labels[mask], best[mask])
        for mask in (halves, ~halves)
    ]
    together = pa.concat_tables([p for p, _ in parts]).sort_by("id")
    assert together.equals(places)
    members = pa.concat_tables([m for _, m in parts]).sort_by(
        [("source", "ascending"), ("id", "ascending")]
    )
    assert members.equals(membership)


@pytest.mark.parametrize("count", [0, 1])
def test_blocking_counts_of_an_empty_or_tiny_batch_add_nothing_wrong(
    count: int, world: World
) -> None:
    table = with_rows(world.records)
    tiny = key_stats([key_counts(table.slice(0, count)), key_counts(table.slice(count))])
    whole = key_stats(key_counts(table))
    assert tiny.records == whole.records
    assert tiny.rare_words.sort("word").equals(whole.rare_words.sort("word"))
    assert tiny.localities.sort("cell").equals(whole.localities.sort("cell"))
