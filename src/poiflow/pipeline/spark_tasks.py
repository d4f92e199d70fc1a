"""What the Spark stages' tasks run (:mod:`poiflow.pipeline.spark_stages` plans them):
functions of Arrow tables, each given a task's row groups, a hash partition of keys, or a
shard, that call the same ``poiflow.conflate`` functions as the local stages. Records
travel between tasks as Arrow IPC payloads (:func:`to_payloads`), one per destination; a task
reads the rows it needs of a staged Parquet file itself (:func:`read_groups`,
:func:`take_rows`)."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from poiflow.engines.spark import decode_tables, encode_table
from poiflow.schema import PLACE_SCHEMA

if TYPE_CHECKING:
    from poiflow.conflate.clustering import ClusterConfig
    from poiflow.conflate.fellegi_sunter import PatternCounts
    from poiflow.conflate.keys import BlockingConfig, KeyStats
    from poiflow.conflate.merge import MergeConfig

__all__ = [
    "PAIR_FILES",
    "PAIR_TYPES",
    "PIECE_RESOLUTION",
    "RECORD_TYPES",
    "SCORED_FILES",
    "SHARD_RESOLUTION",
    "added_patterns",
    "as_records",
    "cells_and_names",
    "cluster_shard",
    "count_features",
    "count_keys",
    "environment",
    "keys_to_partitions",
    "merge_routed",
    "on_groups",
    "pair_keys",
    "parquet_file",
    "read_groups",
    "read_range",
    "read_ranges",
    "route_to_clusters",
    "route_to_shards",
    "score_routed",
    "signed",
    "take_rows",
    "to_payloads",
    "unpack_merge",
    "unsigned",
    "write_ranges",
]

SHARD_RESOLUTION: Final = 4  # H3 cells of about 1,800 km2
# A hot cell is cut along these finer cells (~0.015 km2) of its pairs' left records.
PIECE_RESOLUTION: Final = 10
RECORD_TYPES: Final = pa.schema([f for f in PLACE_SCHEMA if f.name != "geometry"])
PAIR_TYPES: Final = pa.schema([("left", pa.int64()), ("right", pa.int64()), ("keys", pa.int32())])


def count_keys(records: pa.Table) -> pa.Table:
    """blocking's key counts of a task's records (``key_counts``), cells as Spark's ``bigint``."""
    from poiflow.conflate.blocking import key_counts

    return signed(key_counts(records), "cell")


def keys_to_partitions(
    records: pa.Table, *, stats: KeyStats, config: BlockingConfig, keys: list[int]
) -> pa.Table:
    """The key rows of ``records``, as payloads to the partitions of their keys."""
    from poiflow.conflate.blocking import record_keys

    table = record_keys(records, stats, config).to_arrow()
    targets = (table.column("key").to_numpy() % np.uint64(len(keys))).astype(np.int64)
    return to_payloads(table, targets, "key", np.asarray(keys, dtype=np.int64), "keys")


def pair_keys(
    payloads: pa.Table,
    *,
    config: BlockingConfig,
    ranges: int,
    record_count: int,
    location: str,
    env: Mapping[str, str],
) -> pa.Table:
    """The pairs of the key rows a key partition was sent (``key_pairs``), written to a
    file of the partition's own in the folder ``location`` by range of left record (see
    :func:`write_ranges`); one row back: ``file``, ``pairs``."""
    from poiflow.conflate.blocking import key_pairs

    keys = decode_tables(payloads, "keys", pa.schema([]))
    pairs = PAIR_TYPES.empty_table()
    if keys.num_rows:
        pairs = key_pairs(pl.DataFrame(keys), config).to_arrow().cast(PAIR_TYPES)
    file = f"{location.rstrip('/')}/pairs-{uuid.uuid4().hex}.arrow"
    write_ranges(pairs, file, ranges=ranges, record_count=record_count, env=env)
    return pa.table({"file": [file], "pairs": pa.array([pairs.num_rows], pa.int64())})


PAIR_FILES: Final = "file string, pairs bigint"


def count_features(records: pa.Table) -> pa.Table:
    """The name and word counts of a task's records (``feature_counts``)."""
    from poiflow.conflate.features import feature_counts

    return feature_counts(records)


def cells_and_names(records: pa.Table) -> pa.Table:
    """Each record's scoring cell (its H3 cell, or for a record without coordinates a hash
    of its locality: it meets the records of its locality), the finer cell a hot cell is
    cut by (for a record without coordinates, its row), and its name key."""
    import polars_h3 as plh3

    from poiflow.conflate.feature_stats import name_area_keys

    frame = pl.DataFrame(records).select(
        "row",
        pl.when(pl.col("lat").is_not_null())
        .then(plh3.latlng_to_cell("lat", "lon", SHARD_RESOLUTION).cast(pl.Int64))
        .otherwise(
            (pl.col("keys").struct.field("locality").fill_null("").hash(seed=11) // 2).cast(
                pl.Int64
            )
        )
        .alias("cell"),
        pl.when(pl.col("lat").is_not_null())
        .then(plh3.latlng_to_cell("lat", "lon", PIECE_RESOLUTION).cast(pl.Int64))
        .otherwise(pl.col("row"))
        .alias("fine"),
        pl.col("keys").struct.field("name").fill_null("").alias("name_key"),
        pl.Series("area_key", name_area_keys(records)),
    )
    return frame.to_arrow()


def cluster_shard(members: pa.Table, pairs: pa.Table, *, config: ClusterConfig) -> pa.Table:
    from poiflow.conflate.clustering import cluster_part, key_rank

    members = members.sort_by("row")
    rows = members.column("row").to_numpy()
    labels, best = cluster_part(
        rows,
        np.asarray(members.column("source").to_pylist(), dtype=object),
        pairs.column("left").to_numpy(),
        pairs.column("right").to_numpy(),
        pairs.column("probability").to_numpy(),
        config,
        pairs.column("decision").to_numpy(),
        key_rank(members.column("source"), members.column("id")),
    )
    return pa.table({"row": rows, "label": labels, "best": best})


def environment() -> dict[str, str]:
    """The driver's storage settings (AWS's, Hadoop's), for workers that read a staged file
    themselves (Spark's Python workers need not have been started with them)."""
    import os

    return {k: v for k, v in os.environ.items() if k.startswith(("AWS_", "HADOOP_"))}


def on_groups(
    groups: pa.Table,
    *,
    function: Callable[[pa.Table], pa.Table],
    location: str,
    columns: list[str],
    env: Mapping[str, str],
) -> pa.Table:
    """``function`` of the ``columns`` of the row groups ``groups`` of the file at
    ``location`` (see ``spark_stages._records_of``)."""
    return function(read_groups(parquet_file(location, env), groups, columns))


def parquet_file(location: str, env: Mapping[str, str]) -> pq.ParquetFile:
    """The Parquet file at ``location``: a local path, or a staged copy (``s3a://``,
    ``hdfs://``; storage reads both)."""
    if "://" not in location:
        return pq.ParquetFile(location)
    return pq.ParquetFile(_input(location, env))


def read_groups(file: pq.ParquetFile, groups: pa.Table, columns: list[str]) -> pa.Table:
    """The ``columns`` of the given row groups (``group``, ``first``), in file order, with
    each record's file row as ``row``."""
    groups = groups.sort_by("group")
    ids = groups.column("group").to_pylist()
    firsts = groups.column("first").to_pylist()
    table = file.read_row_groups(ids, columns=columns)
    rows = [
        np.arange(first, first + file.metadata.row_group(group).num_rows, dtype=np.int64)
        for group, first in zip(ids, firsts, strict=True)
    ]
    return table.append_column("row", pa.array(np.concatenate(rows) if rows else [], pa.int64()))


def take_rows(file: pq.ParquetFile, rows: np.ndarray, columns: list[str]) -> pa.Table:
    """The ``columns`` of the file rows ``rows`` (ascending), reading only the row groups
    they fall in."""
    meta = file.metadata
    sizes = np.array([meta.row_group(i).num_rows for i in range(meta.num_row_groups)])
    firsts = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
    where = np.searchsorted(firsts, rows, side="right") - 1
    groups = np.unique(where)
    table = file.read_row_groups(groups.tolist(), columns=columns)
    offsets = np.concatenate([[0], np.cumsum(sizes[groups])[:-1]]).astype(np.int64)
    positions = offsets[np.searchsorted(groups, where)] + (rows - firsts[where])
    return table.take(pa.array(positions))


def to_payloads(
    table: pa.Table, targets: np.ndarray, key: str, keys: np.ndarray, what: str = "records"
) -> pa.Table:
    """``table`` cut by ``targets`` (one value per row), each piece an Arrow payload in a
    row of its own: (``key``: its target's entry of ``keys``, ``what``, ``payload``)."""
    order = np.argsort(targets, kind="stable")
    values, starts = np.unique(targets[order], return_index=True)
    ends = [*starts[1:], len(order)] if len(order) else []
    pieces = [
        encode_table(table.take(pa.array(order[start:end])), what)
        for start, end in zip(starts, ends, strict=True)
    ]
    if not pieces:
        return pa.table(
            {
                key: pa.array([], pa.int64()),
                "what": pa.array([], pa.string()),
                "payload": pa.array([], pa.binary()),
            }
        )
    packed = pa.concat_tables(pieces)
    return packed.add_column(0, key, pa.array(keys[values], pa.int64()))


def route_to_shards(
    members: pa.Table, *, location: str, columns: list[str], env: Mapping[str, str]
) -> pa.Table:
    """The records each scoring shard needs (``members``: ``row``, ``piece``: its shard,
    ``name_records``, ``area_key``, ``area_records``: the counts of its name in all the
    data and in its area), read from the file and sent to their shards."""
    members = members.sort_by("row")
    member_rows = members.column("row").to_numpy()
    rows, first = np.unique(member_rows, return_index=True)
    records = take_rows(parquet_file(location, env), rows, columns)
    name = pc.fill_null(pc.struct_field(records.column("keys"), "name"), "")
    records = records.append_column("row", pa.array(rows, pa.int64()))
    records = records.append_column("name_key", name)
    records = records.append_column("name_records", members.column("name_records").take(first))
    records = records.append_column("area_key", members.column("area_key").take(first))
    records = records.append_column("area_records", members.column("area_records").take(first))
    wanted = records.take(pa.array(np.searchsorted(rows, member_rows)))
    shards = members.column("piece").to_numpy()
    return to_payloads(wanted, shards, "shard", np.arange(int(shards.max(initial=0)) + 1))


def score_routed(
    payloads: pa.Table,
    pairs: pa.Table,
    *,
    words: pl.DataFrame,
    pages: frozenset[str],
    phones: frozenset[str],
    rounding: Mapping[str, float],
    total: int,
    matcher: Any,
    ranges: int,
    record_count: int,
    location: str,
    env: Mapping[str, str],
) -> pa.Table:
    """The features and match probability of a scoring shard's pairs, from the records it
    was sent (rows of the records table) and the counts of all the data.

    The scored pairs (~100 bytes a pair with their features) do not go back through
    Spark: the shard writes them to a file of its own in the folder ``location``, one
    Arrow batch for each of ``ranges`` equal ranges of left record (of ``record_count``
    records; :func:`read_range` reads a range back). It returns one row: ``shard``,
    ``file``, ``pairs``, and without a matcher (Fellegi-Sunter, fitted on every pair of
    the run) ``patterns``, the comparison patterns of its pairs counted (an Arrow
    payload).
    """
    from poiflow.conflate.features import FEATURES, FeatureStats, RecordView, pair_features
    from poiflow.conflate.fellegi_sunter import count_patterns

    if pairs.num_rows == 0:  # a shard is made of pairs: not seen, but no file for none
        return pa.table({"shard": [], "file": [], "pairs": [], "patterns": []}, schema=_FILES)
    records = decode_tables(payloads, "records", pa.schema([])).sort_by("row")
    rows = records.column("row").to_numpy()
    names = pl.DataFrame(
        {"name": records.column("name_key"), "records": records.column("name_records")}
    ).unique("name")
    areas = (
        pl.DataFrame(
            {"area": records.column("area_key"), "records": records.column("area_records")},
            schema={"area": pl.String, "records": pl.Int64},
        )
        .drop_nulls("area")
        .unique("area")
    )
    stats = FeatureStats(total, names, words, pages, phones, rounding, areas)
    area_keys = pl.Series("area", records.column("area_key"), dtype=pl.String)
    view = RecordView.of(as_records(records), stats, area_keys)
    left = np.searchsorted(rows, pairs.column("left").to_numpy())
    right = np.searchsorted(rows, pairs.column("right").to_numpy())
    features = pair_features(view, left, right)
    probability = matcher.predict(features) if matcher is not None else np.full(len(left), np.nan)
    scored = pa.table(
        {
            "left": pairs.column("left"),
            "right": pairs.column("right"),
            "probability": pa.array(probability, pa.float64()),
            **{name: pa.array(features[name], pa.float32()) for name in FEATURES},
        }
    )
    shard = int(pairs.column("shard")[0].as_py())
    file = f"{location.rstrip('/')}/shard-{shard:06d}.arrow"
    write_ranges(scored, file, ranges=ranges, record_count=record_count, env=env)
    patterns = None
    if matcher is None:
        counted = count_patterns(features)
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, _PATTERNS) as writer:
            writer.write_table(pa.table({"code": counted.codes, "count": counted.counts}))
        patterns = sink.getvalue().to_pybytes()
    row = {"shard": [shard], "file": [file], "pairs": [scored.num_rows], "patterns": [patterns]}
    return pa.table(row, schema=_FILES)


SCORED_FILES: Final = "shard bigint, file string, pairs bigint, patterns binary"
_FILES: Final = pa.schema(
    [("shard", pa.int64()), ("file", pa.string()), ("pairs", pa.int64()), ("patterns", pa.binary())]
)


def write_ranges(
    pairs: pa.Table, file: str, *, ranges: int, record_count: int, env: Mapping[str, str]
) -> None:
    """Write pairs (a ``left`` column of record rows, and any others) to ``file`` as one
    Arrow batch for each of ``ranges`` equal ranges of left record (of ``record_count``
    records), empty or not: batch ``i`` holds range ``i`` (:func:`read_range`)."""
    in_range = (pairs.column("left").to_numpy() * ranges) // max(record_count, 1)
    order = np.argsort(in_range, kind="stable")
    bounds = np.searchsorted(in_range[order], np.arange(ranges + 1))
    pairs = pairs.take(pa.array(order))
    _write_batches(
        [pairs.slice(a, b - a) for a, b in itertools.pairwise(bounds)], pairs.schema, file, env
    )


_PATTERNS: Final = pa.schema([("code", pa.int64()), ("count", pa.int64())])


def added_patterns(payloads: pa.ChunkedArray) -> PatternCounts:
    """The comparison patterns of every shard's pairs, counted: the sum of the shards'
    ``patterns`` (:func:`score_routed`)."""
    from poiflow.conflate.fellegi_sunter import PatternCounts

    total = PatternCounts(np.zeros(0, np.int64), np.zeros(0, np.int64))
    for payload in payloads.to_pylist():
        counted = pa.ipc.open_stream(payload).read_all()
        total += PatternCounts(
            counted.column("code").to_numpy(), counted.column("count").to_numpy()
        )
    return total


def read_ranges(files: list[str], ranges: int, env: Mapping[str, str]) -> Iterator[pa.Table]:
    """Each of the ``ranges`` ranges of the pairs in ``files`` (of :func:`write_ranges`),
    in order, one at a time (none without files)."""
    for index in range(ranges if files else 0):
        yield read_range(files, index, env)


def read_range(files: list[str], index: int, env: Mapping[str, str]) -> pa.Table:
    """Range ``index`` of the pairs in ``files`` (of :func:`write_ranges`; at least one)."""
    batches = []
    for file in files:
        with _input(file, env) as source:  # read into memory, not mapped: closed here
            batches.append(pa.ipc.open_file(source).get_batch(index))
    return pa.Table.from_batches(batches)


def _write_batches(
    batches: list[pa.Table], schema: pa.Schema, location: str, env: Mapping[str, str]
) -> None:
    """An Arrow IPC file of one batch per table at ``location``: a local path (written
    beside it and renamed, so that a retried task never leaves half a file), or an
    ``s3a://`` or ``hdfs://`` one."""
    import os

    def write(sink: Any) -> None:
        with pa.ipc.new_file(sink, schema) as writer:
            for table in batches:  # exactly one batch each, if empty: batch i is range i
                pieces = table.combine_chunks().to_batches()
                writer.write_batch(pieces[0] if pieces else pa.RecordBatch.from_pylist([], schema))

    if "://" not in location:
        partial = f"{location}.{os.getpid()}.part"
        with pa.OSFile(partial, "wb") as sink:
            write(sink)
        os.replace(partial, location)
        return
    from poiflow.storage import filesystem

    os.environ.update(env)
    fs, path = filesystem(location)
    with fs.open_output_stream(path) as sink:
        write(sink)


def _input(location: str, env: Mapping[str, str]) -> Any:
    """The file at ``location`` (local, ``s3a://``, ``hdfs://``), open to read; ``env``:
    the driver's storage settings (:func:`environment`)."""
    if "://" not in location:
        return pa.OSFile(location)
    import os

    from poiflow.storage import filesystem

    os.environ.update(env)
    fs, path = filesystem(location)
    return fs.open_input_file(path)


def route_to_clusters(
    groups: pa.Table,
    *,
    location: str,
    assignment: str,
    keys: list[int],
    env: Mapping[str, str],
) -> pa.Table:
    """The records of a task's row groups with their clusters (label, best, place id, from
    the assignment file), sent to their clusters' shards."""
    records = read_groups(parquet_file(location, env), groups, list(RECORD_TYPES.names))
    rows = records.column("row").to_numpy()
    assigned = take_rows(parquet_file(assignment, env), rows, ["label", "best", "place_id"])
    for name in ("label", "best", "place_id"):
        records = records.append_column(name, assigned.column(name))
    labels = records.column("label").to_numpy()
    return to_payloads(records, labels % len(keys), "key", np.asarray(keys, dtype=np.int64))


def merge_routed(payloads: pa.Table, *, config: MergeConfig) -> pa.Table:
    """The places and membership of the whole clusters a merge shard was sent
    (``merge_clusters``), as payloads."""
    from poiflow.conflate.merge import merge_clusters

    records = decode_tables(payloads, "records", pa.schema([]))
    if records.num_rows == 0:
        return pa.table({"what": pa.array([], pa.string()), "payload": pa.array([], pa.binary())})
    records = records.sort_by("row")
    labels = records.column("label").to_numpy()
    ids = dict(zip(labels.tolist(), records.column("place_id").to_pylist(), strict=True))
    places, membership = merge_clusters(
        as_records(records), labels, records.column("best").to_numpy(), config, ids
    )
    return pa.concat_tables(
        [encode_table(places, "places"), encode_table(membership, "membership")]
    )


def unpack_merge(payloads: pa.Table) -> tuple[pa.Table, pa.Table]:
    """Every merge shard's places and membership, each as one table in a stable order."""
    from poiflow.schema import GOLDEN_PLACE_SCHEMA, MEMBERSHIP_SCHEMA

    places = decode_tables(payloads, "places", GOLDEN_PLACE_SCHEMA)
    membership = decode_tables(payloads, "membership", MEMBERSHIP_SCHEMA)
    return (
        places.sort_by("id"),
        membership.sort_by([("source", "ascending"), ("id", "ascending")]),
    )


def as_records(table: pa.Table) -> pa.Table:
    """Spark's columns back in the records' own types (Spark has no unsigned integers,
    and keeps timestamps in microseconds)."""
    names = [f.name for f in RECORD_TYPES if f.name in table.column_names]
    return table.select(names).cast(pa.schema([RECORD_TYPES.field(n) for n in names]))


def signed(table: pa.Table, column: str) -> pa.Table:
    """A 64-bit unsigned column as signed (same bits): Spark's ``bigint``."""
    index = table.schema.get_field_index(column)
    return table.set_column(index, column, pc.cast(table.column(column), pa.int64(), safe=False))


def unsigned(table: pa.Table, column: str) -> pa.Table:
    """A column :func:`signed` made back as 64-bit unsigned (same bits)."""
    index = table.schema.get_field_index(column)
    return table.set_column(index, column, pc.cast(table.column(column), pa.uint64(), safe=False))
