"""The stages of a conflation pipeline, each a function of the tables before it.

A stage reads the artifacts it needs from an :class:`~poiflow.pipeline.artifacts.Artifacts`
store, writes the files it makes into its own folder, hands its tables on, and returns a
summary (plain JSON: counts, the model it used). The runner (:mod:`poiflow.pipeline.runner`)
decides where that folder is (a cache entry, or a run's staging folder) and whether a
stage runs at all. On Spark, :mod:`poiflow.pipeline.spark_stages` runs ``block`` to
``merge`` instead, making the same summaries and tables (:mod:`poiflow.pipeline.stage_results`).

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
import importlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import pyarrow as pa

from poiflow.config import ENGINES, SparkSettings
from poiflow.errors import ConfigError, InputError, NothingValidError
from poiflow.pipeline.artifacts import ARTIFACT_FILES, StageContext, StageFunction
from poiflow.pipeline.stage_results import (
    block_summary,
    cluster_on_driver,
    keep_model,
    merge_outputs,
    model_clustering,
    pairs_table,
    prepared,
    scores_table,
)
from poiflow.schema import PAIR_KEY_FIELDS

if TYPE_CHECKING:  # the stages import what they run when they run it
    from poiflow.conflate.clustering import ClusterConfig
    from poiflow.sources import Source

__all__ = [
    "BUILT_IN",
    "LATER_MODULES",
    "import_later_stages",
    "make_engine",
    "run_cluster_config",
]


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
0.4 s; lleaves, which loads the matcher's compiled trees, 0.2-0.6 s with the pandas it
imports where the command does not keep it out): imported while ingest's workers read and
this process waits for them, instead of before ingest or at each later stage's start."""


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
    try:
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
    except NothingValidError as exc:  # its quarantine file goes with the failed run
        raise NothingValidError(exc.why, path=exc.path) from None
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
    prepared(ctx, matcher)
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


def run_cluster(ctx: StageContext) -> dict[str, Any]:
    """Cluster the records by their scored pairs, without chaining."""
    if ctx.engine is not None:
        return _on_engine("cluster", ctx)
    return cluster_on_driver(ctx)


def run_merge(ctx: StageContext) -> dict[str, Any]:
    """Golden places with stable ids, each record's place, and what changed."""
    from poiflow.conflate.merge import merge_clusters

    if ctx.engine is not None:
        return _on_engine("merge", ctx)
    return merge_outputs(ctx, merge_clusters)


def make_engine(name: str, spark: SparkSettings | None = None) -> Any:
    """The engine a run's stages are spread by: None for ``local``, a ``SparkEngine``
    for ``spark`` (Spark itself starts when the first stage needs it).

    Raises:
        ConfigError: ``spark`` without PySpark installed (the message says how); an
            engine that is neither.
        ServerUnavailableError: A cluster's master cannot be reached.
    """
    if name == "local":
        return None
    if name not in ENGINES:
        raise ConfigError(f"engine '{name}' is not one of {', '.join(ENGINES)}")
    from poiflow.engines.spark import SparkEngine, reach_master, require_pyspark

    require_pyspark()
    settings = spark or SparkSettings()
    reach_master(settings.master)
    return SparkEngine(
        settings.master,
        settings.partitions,
        settings.spark_conf(),
        staging=settings.staging,
        shard_pairs=settings.shard_pairs,
        driver_cluster_pairs=settings.driver_cluster_pairs,
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
        decisions = ctx.artifacts.table("decisions")
        scores.update(diagnose(membership, gold, pairs, cluster, decisions=decisions).counts())
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


BUILT_IN: dict[str, tuple[StageFunction, tuple[str, ...], tuple[str, ...]]] = {
    # name: (function, artifacts it needs, artifacts it makes)
    "ingest": (run_ingest, (), ("records", "quarantine")),
    "block": (run_block, ("records",), ("candidates",)),
    "score": (run_score, ("records", "candidates"), ("pairs", "scores", "model")),
    "cluster": (run_cluster, ("records", "scores"), ("clusters", "decisions")),
    "merge": (run_merge, ("records", "clusters", "scores"), ("places", "membership", "changes")),
    "evaluate": (
        run_evaluate,
        ("membership", "pairs", "places", "records", "decisions"),
        ("metrics",),
    ),
}
