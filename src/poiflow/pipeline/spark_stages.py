"""The conflation stages on Spark: the functions of the local stages, spread by Spark.

Each stage reads its input artifacts (Parquet files of the stage before), runs the same
``poiflow.conflate`` functions per partition, and writes the same artifact files, so
caching, publishing and every later stage work as on the local engine, and the two engines
give the same bytes (the parity test holds them to it). Wide records never become Spark
rows: a task reads its own rows of the records file with pyarrow (a row group, or the rows
a range of its input needs) and sends records on as Arrow IPC payloads, one per
destination; Spark moves only those payloads and narrow columns (rows, keys, cells, pairs).

- ``block``: key counts per row group, summed by Spark; key rows per row group; pairs per
  hash partition of the keys (every record of a key meets in one call), written by each
  partition to a file by range of left record; a pair proposed by keys of several
  partitions merged on the driver a range at a time (``finish_pairs``, bits OR-ed);
- ``score``: pairs sharded by space (the H3 cell of a pair's left record), hot cells cut
  (at fine cells' edges) into pieces and small ones packed together to about an even
  number of pairs per shard; the
  records a shard needs are read by range of row and sent to it; each shard's records and
  pairs meet in a ``cogroup`` and get their features and probability there, with the name
  and word counts of all the data; each shard writes its scored pairs to a file (by
  range of left record) in a scratch folder, and returns its comparison patterns counted
  (an unsupervised model is fitted on their sum); the driver reads the files back a range
  at a time, writes the pairs file in order, and keeps only what clustering reads;
- ``cluster``: connected components of the strong edges as DataFrame jobs, then the
  non-chaining clustering per hash partition of the components (a component is clustered
  on its own, whatever else is in its partition);
- ``merge``: each task reads its row groups of the records and their clusters (from a file
  the driver writes), and sends each cluster's records to the shard that merges it;
  place ids and the changelog on the driver (they compare with the previous release as a
  whole).

``ingest`` runs on the driver, as on the local engine: it reads each source once.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from functools import partial
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from poiflow.engines.spark import PAYLOAD_SCHEMA, SparkEngine
from poiflow.pipeline.artifacts import StageContext
from poiflow.pipeline.spark_tasks import (
    PAIR_FILES,
    SCORED_FILES,
    added_patterns,
    cells_and_names,
    cluster_shard,
    count_features,
    count_keys,
    environment,
    keys_to_partitions,
    merge_routed,
    on_groups,
    pair_keys,
    read_ranges,
    route_to_clusters,
    route_to_shards,
    score_routed,
    unpack_merge,
    unsigned,
)
from poiflow.pipeline.stage_results import (
    block_summary,
    cluster_on_driver,
    cluster_settings,
    cluster_summary,
    decided_pairs,
    keep_model,
    merge_outputs,
    model_clustering,
    pairs_table,
    prepared,
    scores_table,
)

if TYPE_CHECKING:
    from poiflow.conflate.merge import MergeConfig

__all__ = ["RANGE_PAIRS", "SPARK_STAGES", "shard_count", "shard_plan"]

# Pairs the driver reads back from the tasks' files at a time, by range of left record
# (~100 bytes a scored pair with its features, 20 a candidate pair).
RANGE_PAIRS: Final = 2_000_000
# Candidate pairs a record, as blocking's key partitions find them (a pair once for each
# partition of keys that proposed it): ~13 on generated worlds, more where keys are big.
_RAW_PAIRS_PER_RECORD: Final = 20


def spark_block(ctx: StageContext) -> dict[str, Any]:
    """Candidate pairs, blocked by Spark."""
    from pyspark.sql import functions as sf

    from poiflow.conflate.blocking import finish_pairs, key_stats
    from poiflow.conflate.keys import BLOCKING_COLUMNS, BlockingConfig
    from poiflow.schema import CANDIDATE_SCHEMA

    engine = _engine(ctx)
    config = BlockingConfig(**ctx.settings)
    path = ctx.artifacts.path("records")
    n = pq.ParquetFile(path).metadata.num_rows
    groups = engine.row_groups(str(path))
    reading = partial(_records_of, engine=engine, path=str(path), columns=list(BLOCKING_COLUMNS))
    counts = engine.map(
        groups, reading(count_keys), "what string, value string, cell bigint, count bigint"
    )
    summed = counts.groupBy("what", "value", "cell").agg(sf.sum("count").alias("count"))
    stats = key_stats(unsigned(engine.collect(summed), "cell"), config)
    # Key rows (~45 a record) go to their key's partition as Arrow payloads, and the
    # pairs of each partition come back so: Spark moves bytes, not rows.
    spread = engine.spread_keys(engine.partitions)
    keys = engine.map(
        groups,
        reading(partial(keys_to_partitions, stats=stats, config=config, keys=spread)),
        "key bigint, what string, payload binary",
    )
    # Each key partition writes its pairs to a file by range of left record. A pair that
    # keys of several partitions proposed comes once per partition: the driver merges
    # them (bits OR-ed) a range at a time, cheaper than one more shuffle.
    ranges = max(1, math.ceil(n * _RAW_PAIRS_PER_RECORD / RANGE_PAIRS))
    with engine.scratch(str(ctx.folder / ".pairs")) as location:
        pairs = engine.by_key(
            keys,
            "key",
            partial(
                pair_keys,
                config=config,
                ranges=ranges,
                record_count=n,
                location=location,
                env=environment(),
            ),
            PAIR_FILES,
        )
        files = engine.collect(pairs).column("file").to_pylist()
        key_bits = [np.zeros(0, np.int32)]
        with ctx.stream("candidates", CANDIDATE_SCHEMA) as written:
            for found in read_ranges(files, ranges, environment()):
                candidates = finish_pairs([found], n)
                written.write(candidates)
                key_bits.append(candidates.column("keys").to_numpy())
    summary = block_summary(n, pa.table({"keys": np.concatenate(key_bits)}))
    return summary | {"engine": "spark"}


def spark_score(ctx: StageContext) -> dict[str, Any]:
    """Pair features and match probabilities, shard by shard on Spark."""
    from pyspark.sql import functions as sf
    from pyspark.sql.window import Window

    from poiflow.conflate.features import SHARED_PHONE, shared_pages, shared_phones
    from poiflow.conflate.fellegi_sunter import fit_patterns
    from poiflow.conflate.matcher import UNSUPERVISED, load_matcher
    from poiflow.conflate.rounding import ROUNDED, rounding_of

    engine = _engine(ctx)
    model = str(ctx.settings.get("model", "default"))
    matcher = ctx.objects.get("matcher") or (None if model == UNSUPERVISED else load_matcher(model))
    fitted = matcher is None
    path = str(ctx.artifacts.path("records"))
    columns = ["source", "lat", "lon", "categories", "keys", "phones", "websites"]
    groups = engine.row_groups(path)
    reading = partial(_records_of, engine=engine, path=path, columns=columns)
    # The name and word counts of all the data: names travel with their records, the
    # (much smaller) word counts and the pages and phones a source shares with the
    # function.
    counted = engine.map(groups, reading(count_features), "what string, value string, count bigint")
    counts = counted.groupBy("what", "value").agg(sf.sum("count").alias("count"))
    counts = counts.localCheckpoint()
    total = int(counts.where(sf.col("what") == "records").first()["count"])  # type: ignore[index]
    words = pl.DataFrame(engine.collect(counts.where(sf.col("what") == "word")))
    words = words.select(pl.col("value").alias("word"), pl.col("count").alias("records"))
    shared = pl.DataFrame(
        engine.collect(
            counts.where(
                ((sf.col("what") == "page") & (sf.col("count") > 1))
                | ((sf.col("what") == "phone") & (sf.col("count") >= SHARED_PHONE))
            )
        )
    )
    pages, phones = shared_pages(shared), shared_phones(shared)
    rounding = rounding_of(
        pl.DataFrame(engine.collect(counts.where(sf.col("what").isin(*ROUNDED))))
    )
    names = counts.where(sf.col("what") == "name").select(
        sf.col("value").alias("name_key"), sf.col("count").alias("name_records")
    )
    areas = counts.where(sf.col("what") == "area").select(
        sf.col("value").alias("area_key"), sf.col("count").alias("area_records")
    )
    # Each record's scoring cell and the counts of its name, in all and in its area:
    # narrow rows, not records.
    located = engine.map(
        groups,
        reading(cells_and_names),
        "row bigint, cell bigint, fine bigint, name_key string, area_key string",
    )
    located = (
        located.join(names, "name_key")
        .join(areas, "area_key", "left")
        .drop("name_key")
        .localCheckpoint()
    )

    candidates = engine.read(str(ctx.artifacts.path("candidates")), ["left", "right"])
    pairs = candidates.join(located.select(sf.col("row").alias("left"), "cell", "fine"), "left")
    pairs = pairs.localCheckpoint()  # read three times below
    per_cell = engine.collect(pairs.groupBy("cell").count())
    plan = shard_plan(per_cell, engine.shard_pairs)
    pairs = pairs.join(sf.broadcast(engine.frame(plan)), "cell")
    # A hot cell's pairs, in the order of their left records' fine cells (H3 numbers a
    # cell's children together), are cut into runs of about equal length, at the fine
    # cells' edges: each piece is a patch of the map, and few records are needed by two
    # pieces. (Where the cut falls is found on the pairs counted per fine cell, not by
    # ordering the pairs themselves.)
    hot = pairs.where(sf.col("pieces") > 1)
    earlier = Window.partitionBy("cell").orderBy("fine").rowsBetween(Window.unboundedPreceding, -1)
    runs = (
        hot.groupBy("cell", "fine")
        .count()
        .select(
            "cell", "fine", sf.coalesce(sf.sum("count").over(earlier), sf.lit(0)).alias("before")
        )
    )
    place = sf.col("before") * sf.col("pieces") / sf.col("count")
    hot = hot.join(runs, ["cell", "fine"]).select(
        "left", "right", (sf.col("first") + sf.floor(place)).cast("bigint").alias("shard")
    )
    cold = pairs.where(sf.col("pieces") == 1).select(
        "left", "right", sf.col("first").alias("shard")
    )
    pairs = hot.unionByName(cold).localCheckpoint()
    sizes = engine.collect(pairs.groupBy("shard").count()).column("count")
    largest = int(pc.max(sizes).as_py() or 0) if len(sizes) else 0
    # Each shard's records: the rows it needs, by range of row, read by the task of the
    # range and sent to the shard as one Arrow payload (the records never become Spark
    # rows). (Fresh column names: the two sides of the cogroup share no lineage.)
    members = (
        pairs.select(sf.col("shard").alias("piece"), sf.col("left").alias("row"))
        .union(pairs.select(sf.col("shard").alias("piece"), sf.col("right").alias("row")))
        .distinct()
        .join(located.select("row", "name_records", "area_key", "area_records"), "row")
        .repartitionByRange(engine.partitions, "row")
    )
    routed = engine.map(
        members,
        partial(route_to_shards, location=engine.staged(path), columns=columns, env=environment()),
        "shard bigint, what string, payload binary",
    )
    # Each shard writes its scored pairs to a file, by range of left record; the driver
    # reads them back a range at a time, writes the pairs file in order, and keeps only
    # what clustering reads.
    candidates_count = pq.ParquetFile(ctx.artifacts.path("candidates")).metadata.num_rows
    ranges = max(1, math.ceil(candidates_count / RANGE_PAIRS))
    if matcher is not None:
        # Its trees compiled here first, into this machine's cache: the tasks that run
        # here load them, rather than each compiling them at once.
        prepared(ctx, matcher)
    with engine.scratch(str(ctx.folder / ".scored")) as location:
        scored = engine.cogroup(
            routed,
            pairs,
            "shard",
            partial(
                score_routed,
                words=words,
                pages=pages,
                phones=phones,
                rounding=rounding,
                total=total,
                matcher=matcher,
                ranges=ranges,
                record_count=pq.ParquetFile(path).metadata.num_rows,
                location=location,
                env=environment(),
            ),
            SCORED_FILES,
        )
        files = engine.collect(scored).sort_by("shard")
        if matcher is None:  # fitted on every pair, as on the local engine: on their counts
            matcher = fit_patterns(
                added_patterns(files.column("patterns")),
                name="fellegi-sunter, fitted on this run",
            )
        keep_model(ctx, matcher)
        left, right, probability = _write_pairs(ctx, files, ranges, matcher, fitted=fitted)
    ctx.write("scores", scores_table(left, right, probability))
    return {
        "model": matcher.version,
        "model_info": matcher.describe(),
        **model_clustering(matcher),
        "pairs": len(left),
        "shards": shard_count(plan),
        "largest_shard_pairs": largest,
        "engine": "spark",
    }


def spark_cluster(ctx: StageContext) -> dict[str, Any]:
    """Clusters: on the driver, where it holds no more scored pairs than the engine's
    ``driver_cluster_pairs`` (scoring brought them there); else components of the strong
    edges by Spark, then clustering per component. Both give the same clusters."""
    from pyspark.sql import functions as sf

    from poiflow.conflate.clustering import ClusterConfig, as_decided

    engine = _engine(ctx)
    # The whole scores table, held for both ways (the summary reads it on the driver too).
    if ctx.artifacts.table("scores").num_rows <= engine.driver_cluster_pairs:
        return cluster_on_driver(ctx) | {"engine": "spark", "clustered": "on the driver"}
    config = ClusterConfig(**cluster_settings(ctx))
    n = pq.ParquetFile(ctx.artifacts.path("records")).metadata.num_rows
    scores = engine.session.read.parquet(engine.staged(str(ctx.artifacts.path("scores")))).select(
        sf.col("left_row").cast("bigint").alias("left"),
        sf.col("right_row").cast("bigint").alias("right"),
        "probability",
        sf.lit(0).cast("tinyint").alias("decision"),
    )
    scored = ctx.artifacts.table("scores")
    decided = decided_pairs(ctx, scored)
    if decided is not None:  # the few decided pairs replace their scores (or join them)
        pairs = pa.table(
            {
                "left": pa.array(decided.left, pa.int64()),
                "right": pa.array(decided.right, pa.int64()),
                "probability": as_decided(decided.probability, decided.decision),
                "decision": pa.array(decided.decision, pa.int8()),
            }
        ).filter(pa.array(decided.decision != 0))
        said = engine.frame(pairs)
        scores = scores.join(said.select("left", "right"), ["left", "right"], "left_anti")
        scores = scores.unionByName(said)
    strong = scores.where(sf.col("probability") >= config.threshold)
    components = engine.components(
        strong.select(sf.col("left").alias("u"), sf.col("right").alias("v"))
    )
    components = components.localCheckpoint()
    # (Fresh column names: the two sides of the cogroup must not share a column's lineage.)
    inside = (
        scores.join(
            components.select(sf.col("node").alias("left"), sf.col("component").alias("cl")), "left"
        )
        .join(
            components.select(sf.col("node").alias("right"), sf.col("component").alias("cr")),
            "right",
        )
        .where(sf.col("cl") == sf.col("cr"))
        .select(
            sf.pmod(sf.xxhash64("cl"), sf.lit(engine.partitions)).alias("shard"),
            "left",
            "right",
            "probability",
            "decision",
        )
    )
    sources = engine.read(str(ctx.artifacts.path("records")), ["source", "id"])
    members = components.select(
        sf.pmod(sf.xxhash64("component"), sf.lit(engine.partitions)).alias("shard"),
        sf.col("node").alias("row"),
    ).join(sources, "row")
    clustered = engine.cogroup(
        members,
        inside,
        "shard",
        partial(cluster_shard, config=config),
        "row bigint, label bigint, best double",
    )
    found = engine.collect(clustered)
    labels = np.arange(n, dtype=np.int64)
    best = np.ones(n)
    rows = found.column("row").to_numpy()
    labels[rows] = found.column("label").to_numpy()
    best[rows] = found.column("best").to_numpy()
    ctx.write("clusters", pa.table({"label": labels, "best": best}))
    summary = cluster_summary(scored, labels, config, decided)
    return summary | {"engine": "spark", "clustered": "by Spark"}


def spark_merge(ctx: StageContext) -> dict[str, Any]:
    """Golden places per partition of the clusters on Spark; ids and changes on the driver."""

    engine = _engine(ctx)

    def build(
        records: pa.Table,
        labels: np.ndarray,
        best: np.ndarray,
        config: MergeConfig,
        ids: Mapping[int, str],
    ) -> tuple[pa.Table, pa.Table]:
        # A place id per cluster, then taken for each record (no loop over records).
        clusters, of_record = np.unique(labels, return_inverse=True)
        place_ids = pa.array([ids[int(label)] for label in clusters], pa.string())
        assigned = pa.table(
            {
                "label": labels.astype(np.int64),
                "best": best.astype(np.float64),
                "place_id": place_ids.take(pa.array(of_record)),
            }
        )
        # Each task reads its row groups of the records and their clusters (from a file
        # written here), and sends each cluster's records to its shard as Arrow payloads:
        # the wide records move once, and never as Spark rows.
        path = ctx.folder / "assignment.parquet"
        pq.write_table(assigned, path)
        records = str(ctx.artifacts.path("records"))
        keys = engine.spread_keys(engine.partitions)
        routed = engine.map(
            engine.row_groups(records),
            partial(
                route_to_clusters,
                location=engine.staged(records),
                assignment=engine.staged(str(path)),
                keys=keys,
                env=environment(),
            ),
            "key bigint, what string, payload binary",
        )
        merged = engine.by_key(routed, "key", partial(merge_routed, config=config), PAYLOAD_SCHEMA)
        payloads = engine.collect(merged)
        path.unlink()
        return unpack_merge(payloads)

    return merge_outputs(ctx, build) | {"engine": "spark"}


SPARK_STAGES: Final[dict[str, Callable[[StageContext], dict[str, Any]]]] = {
    "block": spark_block,
    "score": spark_score,
    "cluster": spark_cluster,
    "merge": spark_merge,
}


def shard_plan(per_cell: pa.Table, target: int) -> pa.Table:
    """Scoring shards from the pairs per H3 cell (``cell``, ``count``): a cell with more
    than ``target`` pairs is cut into pieces (a dense city centre spreads over many tasks),
    and small cells are packed together up to ``target`` (no task for a handful of pairs).

    Returns:
        ``cell``, ``first`` (its first shard), ``pieces`` (how many shards it spans),
        ``count`` (its pairs).
    """
    frame = pl.DataFrame(per_cell).sort("cell")
    cells = frame["cell"].to_list()
    counts = frame["count"].to_list()
    first: list[int] = []
    pieces: list[int] = []
    shard, filled = 0, 0
    for count in counts:
        cut = max(1, math.ceil(count / target))
        if cut > 1:  # a hot cell: shards of its own
            if filled:
                shard, filled = shard + 1, 0
            first.append(shard)
            pieces.append(cut)
            shard += cut
            continue
        if filled and filled + count > target:
            shard, filled = shard + 1, 0
        first.append(shard)
        pieces.append(1)
        filled += count
    return pa.table(
        {
            "cell": pa.array(cells, pa.int64()),
            "first": pa.array(first, pa.int64()),
            "pieces": pa.array(pieces, pa.int64()),
            "count": pa.array(counts, pa.int64()),
        }
    )


def shard_count(plan: pa.Table) -> int:
    """How many shards a :func:`shard_plan` makes."""
    if plan.num_rows == 0:
        return 0
    ends = pc.add(plan.column("first"), plan.column("pieces"))
    return int(pc.max(ends).as_py())


# The functions Spark runs on its workers: top-level, of Arrow tables.


def _records_of(
    function: Callable[[pa.Table], pa.Table], *, engine: SparkEngine, path: str, columns: list[str]
) -> Callable[[pa.Table], pa.Table]:
    """``function`` of the records (``columns`` and ``row``) of the row groups of ``path``
    a task is given by :meth:`SparkEngine.row_groups`; the task reads them itself."""
    return partial(
        on_groups,
        function=function,
        location=engine.staged(path),
        columns=columns,
        env=environment(),
    )


def _write_pairs(
    ctx: StageContext, files: pa.Table, ranges: int, matcher: Any, *, fitted: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Write the pairs file from the shards' files, a range of left record at a time, and
    return the left and right rows and probability of every pair, in order."""
    from poiflow.conflate.features import FEATURES

    record_keys = ctx.artifacts.table("records", ["source", "id"])
    source = record_keys.column("source").combine_chunks()
    keys = pa.table({"source": source, "id": record_keys.column("id").combine_chunks()})
    empty = np.zeros(0, np.int64)
    schema = pairs_table(keys, empty, empty, empty, dict.fromkeys(FEATURES, empty)).schema
    names = files.column("file").to_pylist()
    lefts, rights, probabilities = [empty], [empty], [np.zeros(0)]
    with ctx.stream("pairs", schema) as written:
        for found in read_ranges(names, ranges, environment()):
            part = found.sort_by([("left", "ascending"), ("right", "ascending")])
            left = part.column("left").to_numpy()
            right = part.column("right").to_numpy()
            features = {name: part.column(name).to_numpy() for name in FEATURES}
            if fitted:
                probability = matcher.predict(features)
            else:
                probability = part.column("probability").to_numpy()
            written.write(pairs_table(keys, left, right, probability, features))
            lefts.append(left)
            rights.append(right)
            probabilities.append(probability)
    return np.concatenate(lefts), np.concatenate(rights), np.concatenate(probabilities)


def _engine(ctx: StageContext) -> SparkEngine:
    engine = ctx.engine
    if not isinstance(engine, SparkEngine):  # pragma: no cover - the runner sets it
        raise TypeError("a Spark stage needs ctx.engine to be a SparkEngine")
    return engine
