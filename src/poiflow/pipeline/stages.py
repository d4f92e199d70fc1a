"""The stages of a conflation pipeline, each a function of the tables before it.

A stage reads the artifacts it needs from an :class:`Artifacts` store, writes the files it
makes into its own folder, hands its tables on, and returns a summary (plain JSON: counts,
the model it used). The runner (:mod:`poiflow.pipeline.runner`) decides where that folder
is (a cache entry, or a run's staging folder) and whether a stage runs at all.

Artifacts, by the stage that makes them:

- ``ingest``: ``records`` (GeoParquet, ``PLACE_SCHEMA``), ``quarantine``;
- ``block``: ``candidates`` (``left``, ``right`` record rows and the keys that proposed them);
- ``score``: ``pairs`` (what ``pairs.parquet`` publishes: both record keys, the match
  probability and the features), ``scores`` (``left_row``, ``right_row``, ``probability``);
- ``cluster``: ``clusters`` (each record's ``label`` and ``best`` match probability);
- ``merge``: ``places`` (GeoParquet, ``GOLDEN_PLACE_SCHEMA``), ``membership``, ``changes``;
- ``evaluate`` (with known truth): ``metrics``;
- ``report``: ``checks`` (one row per quality check), ``issues`` (one row per flagged
  place), ``report`` (``report.html``).
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import json
from collections import Counter
from collections.abc import Callable, Collection, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from poiflow.config import OsmOptions, SourceMapping, SparkSettings
from poiflow.errors import InputError, OutputError
from poiflow.schema import GOLDEN_PLACE_SCHEMA, PAIR_KEY_FIELDS

if TYPE_CHECKING:  # the stages import what they run when they run it
    from poiflow.conflate.clustering import ClusterConfig
    from poiflow.conflate.matcher import AnyMatcher
    from poiflow.conflate.merge import MergeConfig
    from poiflow.pipeline.ingestion import IngestProgress
    from poiflow.sources import Source

__all__ = [
    "ARTIFACT_FILES",
    "Artifacts",
    "StageContext",
    "StageFunction",
    "block_summary",
    "cluster_summary",
    "keep_model",
    "make_engine",
    "merge_outputs",
    "run_cluster_config",
]

# The model an "em" run fitted, kept in the score stage's folder.
# The file each artifact is kept in, inside its stage's folder.
ARTIFACT_FILES = {
    "records": "records.parquet",
    "quarantine": "quarantine.parquet",
    "candidates": "candidates.parquet",
    "pairs": "pairs.parquet",
    "scores": "scores.parquet",
    "clusters": "clusters.parquet",
    "places": "places.parquet",
    "membership": "membership.parquet",
    "changes": "changes.parquet",
    "metrics": "metrics.json",
    "checks": "checks.parquet",
    "issues": "issues.parquet",
    "report": "report.html",
    "model": "model.json.gz",
}


class Artifacts:
    """The artifacts of a run: each on disk, and in memory while a later stage needs it.

    A stage may hand a file to be written in the background (``StageContext.write``'s
    ``background``): Arrow writes it without the interpreter lock, on the other core, while
    the next stages run. Asking for its path (or for its table once it is no longer held
    in memory) waits for the file; :meth:`settle` waits for every one, and raises what a
    write raised.
    """

    def __init__(self, files: Collection[str] | None = None) -> None:
        """``files``: the artifacts whose files must be written (None: every one). The file
        of another artifact held in memory is written only if asked for (:meth:`path`): a
        run without a stage cache publishes only some files, and holds the others (the
        candidate pairs, the scores, the clusters) until their last use anyway."""
        self._paths: dict[str, Path] = {}
        self._tables: dict[str, pa.Table] = {}
        self._pending: dict[str, Future[None]] = {}
        self._unwritten: dict[str, Callable[[], None]] = {}
        self._writer: ThreadPoolExecutor | None = None
        self._files = None if files is None else frozenset(files)

    def put(
        self,
        name: str,
        path: Path,
        table: pa.Table | None = None,
        *,
        pending: Callable[[], None] | None = None,
        background: bool = True,
    ) -> None:
        """Record that ``name`` is at ``path`` (and, if given, keep its table in memory).

        Args:
            name: The artifact.
            path: Its file.
            table: Its table, kept in memory for the stages after.
            pending: Writes the file: now, or in the background (in the order given), or
                only when the file is asked for (an artifact whose file need not be
                written, held in memory).
            background: Whether ``pending`` may run in the background.
        """
        self.settle(name)
        self._unwritten.pop(name, None)
        self._paths[name] = path
        self._tables.pop(name, None)
        if table is not None:
            self._tables[name] = table
        if pending is None:
            return
        if table is not None and self._files is not None and name not in self._files:
            self._unwritten[name] = pending
        elif background:
            if self._writer is None:
                self._writer = ThreadPoolExecutor(1, thread_name_prefix="poiflow-write")
            self._pending[name] = self._writer.submit(pending)
        else:
            pending()

    def settle(self, name: str | None = None) -> None:
        """Wait until the file of ``name`` (default: of every artifact) is written; raise
        the first error of those writes."""
        names = list(self._pending) if name is None else [name]
        futures = [f for f in (self._pending.pop(each, None) for each in names) if f is not None]
        errors = [f.exception() for f in futures]  # waits for each
        first = next((e for e in errors if e is not None), None)
        if first is not None:
            raise first

    def close(self) -> None:
        """Wait for the background writes without raising (the run is over, or failed
        anyway), and stop the writer."""
        for future in self._pending.values():
            with contextlib.suppress(BaseException):
                future.result()
        self._pending.clear()
        if self._writer is not None:
            self._writer.shutdown()
            self._writer = None

    def path(self, name: str) -> Path:
        """Where ``name`` is on disk (once written; written now if it was not to be)."""
        write = self._unwritten.pop(name, None)
        if write is not None:
            write()
        self.settle(name)
        return self._paths[name]

    def __contains__(self, name: object) -> bool:
        return name in self._paths

    def table(self, name: str, columns: Sequence[str] | None = None) -> pa.Table:
        """The table of ``name`` (only ``columns``, if given), read from disk if not held."""
        table = self._tables.get(name)
        if table is None:
            table = pq.read_table(self.path(name), columns=list(columns) if columns else None)
            if columns is None:
                self._tables[name] = table
        if "geometry" in table.column_names:
            table = table.drop_columns(["geometry"])
        return table.select(list(columns)) if columns else table

    def relocate(self, old: Path, new: Path) -> None:
        """The files of folder ``old`` are now in folder ``new`` (written by now: the
        caller settles before it moves them)."""
        for name, path in self._paths.items():
            if path.parent == old:
                self._paths[name] = new / path.name

    def release(self, name: str) -> None:
        """Let go of the in-memory table of ``name`` (it stays on disk, if it was to be
        written; the runner releases an artifact after its last use)."""
        self._tables.pop(name, None)
        self._unwritten.pop(name, None)


@dataclass(slots=True)
class StageContext:
    """What a stage function gets: where to write, what came before, and its settings."""

    folder: Path
    artifacts: Artifacts
    settings: Mapping[str, Any]
    sources: Sequence[str | Path | Source] = ()
    mapping: SourceMapping | None = None
    osm: OsmOptions | None = None
    per_source: Sequence[tuple[SourceMapping | None, OsmOptions | None]] = ()
    previous: Path | None = None
    gold: Path | None = None
    gold_places: Path | None = None
    progress: IngestProgress | None = None
    objects: dict[str, Any] = field(default_factory=dict)
    engine: Any = None  # None: the local engine; else the engine that spreads the work

    def write(
        self, name: str, table: pa.Table, *, geo: bool = False, background: bool = False
    ) -> None:
        """Write ``table`` as artifact ``name`` into this stage's folder, and hand it on.

        Args:
            name: The artifact.
            table: Its table.
            geo: Write GeoParquet (a ``geometry`` column from ``lat``/``lon``).
            background: Write it while the run goes on (a large file the next stages do
                not read back): the runner waits for it before it keeps or publishes the
                stage's files, and a failed write still fails the run.
        """
        path = self.folder / ARTIFACT_FILES[name]
        write = functools.partial(_write_table, table, path, geo)
        self.artifacts.put(name, path, table, pending=write, background=background)


def _write_table(table: pa.Table, path: Path, geo: bool) -> None:
    from poiflow.sinks import ParquetSink

    try:
        if geo:
            with ParquetSink(path, table.schema, geo=True) as sink:
                sink.write(table)
        else:
            pq.write_table(table, path, compression="zstd")
    except OSError as exc:
        raise OutputError(f"cannot write ({exc})", path=path) from exc


StageFunction = Callable[[StageContext], dict[str, Any]]


LATER_MODULES: Final = (
    "poiflow.conflate.blocking",
    "poiflow.conflate.features",
    "poiflow.conflate.clustering",
    "poiflow.conflate.merge",
    "poiflow.conflate.ids",
    "poiflow.quality.checks",
    "poiflow.quality.report",
    "lleaves",
)
"""What the stages after ingest import (with polars, polars-h3, scipy and rapidfuzz, about
0.4 s; lleaves, which loads the matcher's compiled trees and imports pandas, 0.2-0.6 s):
imported while ingest's workers read and this process waits for them, instead of before
ingest or at each later stage's start."""


def import_later_stages() -> None:
    """Import ``LATER_MODULES``; one that fails is left for its stage to import and report."""
    for name in LATER_MODULES:
        with contextlib.suppress(Exception):
            importlib.import_module(name)


def run_ingest(ctx: StageContext) -> dict[str, Any]:
    """Read, validate and normalize every input into ``records`` and ``quarantine``."""
    from poiflow.pipeline.ingestion import ingest
    from poiflow.sources import Source, open_source

    sources: list[str | Path | Source] = list(ctx.sources)
    if ctx.per_source:
        sources = [
            open_source(s, mapping=m, osm=o) if not isinstance(s, Source) else s
            for s, (m, o) in zip(sources, ctx.per_source, strict=True)
        ]
    records = ctx.folder / ARTIFACT_FILES["records"]
    quarantine = ctx.folder / ARTIFACT_FILES["quarantine"]
    places: list[pa.Table] = []  # what the next stage reads, without reading the file back
    report = ingest(
        sources,
        records,
        quarantine,
        mapping=ctx.mapping,
        osm=ctx.osm,
        batch_size=int(ctx.settings.get("batch_size", 50_000)),
        workers=ctx.settings.get("workers"),
        progress=ctx.progress,
        on_places=places.append,
        meanwhile=import_later_stages,
    )
    ctx.artifacts.put("records", records, pa.concat_tables(places))
    ctx.artifacts.put("quarantine", quarantine)
    files = {"output": ARTIFACT_FILES["records"], "quarantine": ARTIFACT_FILES["quarantine"]}
    return report.to_dict() | files


def run_block(ctx: StageContext) -> dict[str, Any]:
    """Propose candidate pairs from shared keys."""
    from poiflow.conflate.blocking import candidate_pairs
    from poiflow.conflate.keys import BlockingConfig

    if ctx.engine is not None:
        return _on_engine("block", ctx)
    records = ctx.artifacts.table("records")
    pairs = candidate_pairs(records, BlockingConfig(**ctx.settings))
    ctx.write("candidates", pairs, background=True)
    return block_summary(records.num_rows, pairs)


def block_summary(records: int, pairs: pa.Table) -> dict[str, Any]:
    """What ``block`` reports of its candidate pairs."""
    from poiflow.conflate.keys import KEYS

    key_bits = pairs.column("keys").to_numpy()
    return {
        "records": records,
        "candidate_pairs": pairs.num_rows,
        "candidates_per_record": round(pairs.num_rows / max(1, records), 3),
        "candidate_pairs_by_key": {k: int(((key_bits & b) > 0).sum()) for k, b in KEYS.items()},
    }


def run_score(ctx: StageContext) -> dict[str, Any]:
    """Pair features, and the match probability of every candidate pair."""
    from poiflow.conflate.features import RecordView, pair_features
    from poiflow.conflate.fellegi_sunter import fit_fellegi_sunter
    from poiflow.conflate.matcher import UNSUPERVISED, load_matcher

    if ctx.engine is not None:
        return _on_engine("score", ctx)
    model = str(ctx.settings.get("model", "default"))
    matcher = ctx.objects.get("matcher") or (None if model == UNSUPERVISED else load_matcher(model))
    records = ctx.artifacts.table("records")
    candidates = ctx.artifacts.table("candidates", ["left", "right"])
    left = candidates.column("left").to_numpy()
    right = candidates.column("right").to_numpy()
    features = pair_features(RecordView.of(records), left, right)
    if matcher is None:
        matcher = fit_fellegi_sunter(features, name="fellegi-sunter, fitted on this run")
    keep_model(ctx, matcher)
    probability = matcher.predict(features)
    # Large, and no later built-in stage reads it whole: written while clustering runs.
    ctx.write("pairs", pairs_table(records, left, right, probability, features), background=True)
    del features
    ctx.artifacts.release("pairs")
    ctx.write("scores", scores_table(left, right, probability), background=True)
    return {
        "model": matcher.version,
        "model_info": matcher.describe(),
        **model_clustering(matcher),
        "pairs": len(left),
    }


def model_clustering(matcher: AnyMatcher) -> dict[str, float | None]:
    """The clustering bars a model brings (None: clustering's defaults): Fellegi-Sunter
    its threshold (LightGBM's is 0.3), a trained model its bar for records of one source
    (Fellegi-Sunter's is ``clustering.SAME_SOURCE``)."""
    from poiflow.conflate.fellegi_sunter import FellegiSunter
    from poiflow.conflate.matcher import Matcher

    return {
        "model_threshold": matcher.threshold if isinstance(matcher, FellegiSunter) else None,
        "model_source_bar": matcher.source_bar if isinstance(matcher, Matcher) else None,
    }


def cluster_settings(ctx: StageContext) -> dict[str, Any]:
    """The cluster stage's settings, with the bars left unset taken from the model."""
    settings = dict(ctx.settings)
    if settings.get("threshold") is None:
        settings["threshold"] = ctx.objects.get("model_threshold") or 0.3
    if settings.get("same_source") is None:
        settings["same_source"] = ctx.objects.get("model_source_bar")
    return settings


def keep_model(ctx: StageContext, matcher: AnyMatcher) -> None:
    """Keep the model that scored the run as the ``model`` artifact: the output carries the
    very model its decisions came from (what ``POST /match`` and tracking use)."""
    from poiflow.conflate.matcher import save_model

    path = ctx.folder / ARTIFACT_FILES["model"]
    save_model(matcher, path)
    ctx.artifacts.put("model", path)


def run_cluster(ctx: StageContext) -> dict[str, Any]:
    """Cluster the records by their scored pairs, without chaining."""
    from poiflow.conflate.clustering import ClusterConfig, cluster_part

    if ctx.engine is not None:
        return _on_engine("cluster", ctx)
    settings = cluster_settings(ctx)
    records = ctx.artifacts.table("records", ["source"])
    scores = ctx.artifacts.table("scores")
    left = scores.column("left_row").to_numpy().astype(np.int64)
    right = scores.column("right_row").to_numpy().astype(np.int64)
    probability = scores.column("probability").to_numpy().astype(np.float64)
    sources = np.asarray(records.column("source").to_pylist(), dtype=object)
    rows = np.arange(records.num_rows, dtype=np.int64)
    config = ClusterConfig(**settings)
    labels, best = cluster_part(rows, sources, left, right, probability, config)
    ctx.write("clusters", pa.table({"label": labels, "best": best}))
    return cluster_summary(scores, labels, config)


def cluster_summary(scores: pa.Table, labels: np.ndarray, config: ClusterConfig) -> dict[str, Any]:
    """What ``cluster`` reports: how many scored pairs ended in one place, and at which
    bars (``config``, a ``ClusterConfig``)."""
    left = scores.column("left_row").to_numpy().astype(np.int64)
    right = scores.column("right_row").to_numpy().astype(np.int64)
    return {
        "matched_pairs": int((labels[left] == labels[right]).sum()),
        "threshold": config.threshold,
        "same_source": config.source_bar,
    }


def run_merge(ctx: StageContext) -> dict[str, Any]:
    """Golden places with stable ids, each record's place, and what changed."""
    from poiflow.conflate.merge import merge_clusters

    if ctx.engine is not None:
        return _on_engine("merge", ctx)
    return merge_outputs(ctx, merge_clusters)


MergeBuild = Callable[
    [pa.Table, np.ndarray, np.ndarray, "MergeConfig", Mapping[int, str]],
    tuple[pa.Table, pa.Table],
]


def merge_outputs(ctx: StageContext, build: MergeBuild) -> dict[str, Any]:
    """Place ids (kept from ``--previous``), the places and membership ``build`` makes of
    the clusters (with what they say of each source, learned here from all of them, so
    that every engine merges alike: ``reliability.learn_sources``), and what changed: written
    as ``merge``'s artifacts, and its summary."""
    from poiflow.conflate.ids import assign_ids, changelog, fresh_ids, reads_keys
    from poiflow.conflate.merge import MergeConfig
    from poiflow.conflate.reliability import learn_sources, place_coverage, with_learned

    history = read_previous(ctx.previous) if ctx.previous is not None else None
    records = ctx.artifacts.table("records")
    clusters = ctx.artifacts.table("clusters")
    labels = clusters.column("label").to_numpy()
    best = clusters.column("best").to_numpy()
    fresh = fresh_ids(records.column("source"), records.column("id"), labels)
    previous_membership = history[0] if history else {}
    label_list = labels.tolist()
    if reads_keys(previous_membership, fresh):
        keys = list(
            zip(records.column("source").to_pylist(), records.column("id").to_pylist(), strict=True)
        )
        ids = assign_ids(keys, label_list, previous_membership, fresh)
        membership_now = dict(zip(keys, (ids[label] for label in label_list), strict=True))
    else:  # a first release: each cluster its fresh id
        ids = dict(fresh)
        membership_now = {}
    scores = ctx.artifacts.table("scores")
    coverage = place_coverage(
        records.column("source"),
        labels,
        *(scores.column(c).to_numpy() for c in ("left_row", "right_row", "probability")),
    )
    config = learn_sources(records, labels, MergeConfig(**ctx.settings))
    config = with_learned(config, coverage)
    places, membership = build(records, labels, best, config, ids)
    changes = changelog(
        previous_membership,
        membership_now,
        history[1] if history else GOLDEN_PLACE_SCHEMA.empty_table(),
        places,
    )
    if places.num_rows == 0:  # pragma: no cover - ingest refuses an empty run first
        raise OutputError("no places: nothing to write")
    ctx.write("places", places, geo=True, background=True)
    ctx.write("membership", membership, background=True)
    ctx.write("changes", changes, background=True)
    return {
        "places": places.num_rows,
        "multi_source_places": int(
            (places.column("members").to_numpy(zero_copy_only=False) > 1).sum()
        ),
        "changes": dict(Counter(changes.column("change").to_pylist())),
        "source_precision_m": dict(config.precision_m),
        "source_accuracy": {k: dict(v) for k, v in config.accuracy.items()},
        # As learnt, with what the settings say instead where they say it.
        "place_coverage": (
            {**coverage, "whole": dict(config.whole), "split": dict(config.split)}
            if coverage or config.whole
            else {}
        ),
    }


def make_engine(name: str, spark: SparkSettings | None = None) -> Any:
    """The engine a run's stages are spread by: None for ``local``, a ``SparkEngine``
    for ``spark`` (Spark itself starts when the first stage needs it).

    Raises:
        ConfigError: ``spark`` without PySpark installed (the message says how).
    """
    if name == "local":
        return None
    from poiflow.engines.spark import SparkEngine, require_pyspark

    require_pyspark()
    settings = spark or SparkSettings()
    return SparkEngine(
        settings.master,
        settings.partitions,
        settings.spark_conf(),
        staging=settings.staging,
        shard_pairs=settings.shard_pairs,
    )


def _on_engine(stage: str, ctx: StageContext) -> dict[str, Any]:
    """Run ``stage`` on the context's engine (only Spark spreads stages today)."""
    from poiflow.pipeline.spark_stages import SPARK_STAGES

    return SPARK_STAGES[stage](ctx)


def run_cluster_config(ctx: StageContext) -> ClusterConfig | None:
    """The clustering settings this run's ``cluster`` stage used, the bars it took from
    the model included (None before it ran)."""
    from poiflow.conflate.clustering import ClusterConfig

    run = next((r for r in ctx.objects.get("runs", ()) if r.name == "cluster"), None)
    if run is None:
        return None
    said = {key: run.summary[key] for key in ("threshold", "same_source")}
    return ClusterConfig(**(dict(run.settings) | said))


def run_evaluate(ctx: StageContext) -> dict[str, Any]:
    """Pairwise and B-cubed scores of the membership against known truth, and how many
    missed and wrong pairs each stage lost (``missed_blocking`` and so on: see
    ``poiflow.conflate.diagnosis``), so that tracking shows which stage a change helped;
    with the true places too (``gold_places``), how right the golden records are
    (``golden.<attribute>.accuracy`` and so on: ``PlaceAccuracy.metrics``)."""
    from poiflow.conflate.diagnosis import diagnose
    from poiflow.conflate.evaluate import read_gold, score_membership

    if ctx.gold is None:  # pragma: no cover - the runner only plans it with truth
        raise InputError("evaluate needs known truth (gold)")
    gold = read_gold(ctx.gold)
    membership = ctx.artifacts.table("membership")
    scores: dict[str, Any] = score_membership(membership, gold).as_dict()
    pairs = ctx.artifacts.table("pairs", [f.name for f in PAIR_KEY_FIELDS])
    cluster = run_cluster_config(ctx)
    if cluster is not None:
        scores.update(diagnose(membership, gold, pairs, cluster).counts())
    if ctx.gold_places is not None:  # and how right the golden records are
        from poiflow.conflate.accuracy import GOLDEN_READS, READS, score_places
        from poiflow.pipeline.ingestion import true_places

        places = ctx.artifacts.table("places", list(GOLDEN_READS))
        records = ctx.artifacts.table("records", ["source", "id", *READS])
        truth = true_places(ctx.gold_places, gold["place"].to_list())
        scores.update(score_places(places, membership, gold, truth, records).metrics())
    path = ctx.folder / ARTIFACT_FILES["metrics"]
    path.write_text(json.dumps(scores, indent=2), "utf-8")
    ctx.artifacts.put("metrics", path)
    return scores


def pairs_table(
    records: pa.Table,
    left: np.ndarray,
    right: np.ndarray,
    probability: np.ndarray,
    features: Mapping[str, np.ndarray],
) -> pa.Table:
    """What ``pairs.parquet`` holds: both record keys, the probability and the features."""
    # Each in one piece first: the records come in a chunk an ingest batch, and taking
    # 3.7M pairs' ids out of such a column takes 0.2-0.3 s against 0.03-0.08 s. (Only
    # these two: the whole table in one piece raised the peak memory at 1M by ~0.5 GiB.)
    source = records.column("source").combine_chunks()
    ids = records.column("id").combine_chunks()
    left_idx, right_idx = pa.array(left), pa.array(right)
    columns = [
        source.take(left_idx),
        ids.take(left_idx),
        source.take(right_idx),
        ids.take(right_idx),
        pa.array(probability, pa.float32()),
        *(pa.array(values, pa.float32()) for values in features.values()),
    ]
    schema = pa.schema([*PAIR_KEY_FIELDS, *(pa.field(n, pa.float32()) for n in features)])
    return pa.Table.from_arrays(columns, schema=schema)


def scores_table(left: np.ndarray, right: np.ndarray, probability: np.ndarray) -> pa.Table:
    """The scored pairs as record rows: what clustering reads."""
    return pa.table(
        {
            "left_row": pa.array(left, pa.uint32()),
            "right_row": pa.array(right, pa.uint32()),
            "probability": pa.array(probability, pa.float64()),
        }
    )


def read_previous(folder: Path) -> tuple[dict[tuple[str, str], str], pa.Table]:
    """The membership and places of an earlier output folder."""
    try:
        membership = pq.read_table(
            folder / "membership.parquet", columns=["source", "id", "place_id"]
        )
        places = pq.read_table(folder / "places.parquet").drop_columns(["geometry"])
    except (OSError, pa.ArrowInvalid, KeyError) as exc:
        raise InputError(
            f"not a poiflow conflate output folder ({exc}); --previous takes the folder "
            "an earlier 'poiflow conflate' wrote",
            path=folder,
        ) from exc
    keys = zip(
        membership.column("source").to_pylist(), membership.column("id").to_pylist(), strict=True
    )
    return dict(zip(keys, membership.column("place_id").to_pylist(), strict=True)), places


BUILT_IN: dict[str, tuple[StageFunction, tuple[str, ...], tuple[str, ...]]] = {
    # name: (function, artifacts it needs, artifacts it makes)
    "ingest": (run_ingest, (), ("records", "quarantine")),
    "block": (run_block, ("records",), ("candidates",)),
    "score": (run_score, ("records", "candidates"), ("pairs", "scores", "model")),
    "cluster": (run_cluster, ("records", "scores"), ("clusters",)),
    "merge": (run_merge, ("records", "clusters", "scores"), ("places", "membership", "changes")),
    "evaluate": (run_evaluate, ("membership", "pairs", "places", "records"), ("metrics",)),
}
