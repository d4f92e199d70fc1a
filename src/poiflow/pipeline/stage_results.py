"""What the local and the Spark stages make alike, so that every engine reports and
writes the same: the stages' summaries, the ``pairs`` and ``scores`` tables, the model
kept with the run, and the merge stage's outputs from its clusters."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from poiflow.errors import InputError, OutputError
from poiflow.pipeline.artifacts import ARTIFACT_FILES, StageContext
from poiflow.schema import GOLDEN_PLACE_SCHEMA, PAIR_KEY_FIELDS

if TYPE_CHECKING:  # imported when a stage runs
    from poiflow.conflate.clustering import ClusterConfig
    from poiflow.conflate.decisions import Decided
    from poiflow.conflate.matcher import AnyMatcher
    from poiflow.conflate.merge import MergeConfig

__all__ = [
    "MergeBuild",
    "block_summary",
    "cluster_on_driver",
    "cluster_settings",
    "cluster_summary",
    "decided_pairs",
    "keep_model",
    "merge_outputs",
    "model_clustering",
    "pairs_table",
    "prepared",
    "read_previous",
    "scores_table",
]


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


COMPILING = "compiling the model (once per machine)"
"""What the progress display shows while a model is compiled for this machine."""


def prepared(ctx: StageContext, matcher: AnyMatcher) -> None:
    """The matcher's compiled trees loaded before its first prediction, and compiled first
    where this machine has none yet (a few seconds, once per model): the progress display
    is told, or a first run would pause in its score stage without a word."""
    progress = ctx.progress
    if progress is None:
        matcher.prepare()
        return
    compiling: list[bool] = []

    def say() -> None:
        progress.start(COMPILING, 1)
        compiling.append(True)

    matcher.prepare(on_compile=say)
    if compiling:
        progress.advance(1)
        progress.finish()


def decided_pairs(ctx: StageContext, scores: pa.Table) -> Decided | None:
    """The scored pairs with the run's decisions in them (None: it has none), and the
    ``decisions`` artifact written (empty without decisions).

    Args:
        ctx: The cluster stage's context (``ctx.decisions``: the decisions file; its
            ``objects["decisions"]``: the decisions as read before any work, if they were).
        scores: The scored pairs, as record rows (``scores_table``), read as arrays only
            when there are decisions.
    """
    from poiflow.conflate.decisions import DECISIONS_SCHEMA, apply_decisions, read_decisions

    if ctx.decisions is None:
        ctx.write("decisions", DECISIONS_SCHEMA.empty_table())
        return None
    records = ctx.artifacts.table("records", ["source", "id"])
    said = ctx.objects.get("decisions")  # as read before any work, else from the file
    decisions = said if said is not None else read_decisions(ctx.decisions)
    left = scores.column("left_row").to_numpy().astype(np.int64)
    right = scores.column("right_row").to_numpy().astype(np.int64)
    probability = scores.column("probability").to_numpy().astype(np.float64)
    decided = apply_decisions(records, left, right, probability, decisions)
    ctx.write("decisions", decided.table)
    return decided


def cluster_on_driver(ctx: StageContext) -> dict[str, Any]:
    """Cluster the run's scored pairs on this machine (``clustering_cores.cluster_on_cores``
    over every record: on every core where there are many): the local engine's cluster
    stage, and a Spark run's whose pairs the driver holds already."""
    from poiflow.conflate.clustering import ClusterConfig, key_rank
    from poiflow.conflate.clustering_cores import ClusterInput, cluster_on_cores

    records = ctx.artifacts.table("records", ["source", "id"])
    scores = ctx.artifacts.table("scores")
    left = scores.column("left_row").to_numpy().astype(np.int64)
    right = scores.column("right_row").to_numpy().astype(np.int64)
    probability = scores.column("probability").to_numpy().astype(np.float64)
    # Clustering compares sources only: their codes, not a Python string a record.
    sources = records.column("source").dictionary_encode().combine_chunks().indices.to_numpy()
    rows = np.arange(records.num_rows, dtype=np.int64)
    config = ClusterConfig(**cluster_settings(ctx))
    decided = decided_pairs(ctx, scores)
    if decided is not None:
        left, right, probability = decided.left, decided.right, decided.probability
    whole = ClusterInput(
        rows,
        sources,
        left,
        right,
        probability,
        None if decided is None else decided.decision,
        key_rank(records.column("source"), records.column("id")),
    )
    labels, best = cluster_on_cores(whole, config)
    ctx.write("clusters", pa.table({"label": labels, "best": best}))
    return cluster_summary(scores, labels, config, decided)


def cluster_summary(
    scores: pa.Table, labels: np.ndarray, config: ClusterConfig, decided: Decided | None = None
) -> dict[str, Any]:
    """What ``cluster`` reports: how many scored pairs ended in one place, at which bars
    (``config``, a ``ClusterConfig``), and what became of a person's decisions."""
    left = scores.column("left_row").to_numpy().astype(np.int64)
    right = scores.column("right_row").to_numpy().astype(np.int64)
    summary: dict[str, Any] = {
        "matched_pairs": int((labels[left] == labels[right]).sum()),
        "threshold": config.threshold,
        "same_source": config.source_bar,
    }
    if decided is not None:
        summary["decisions"] = decided.summary(config.threshold)
    return summary


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
    """The membership and places of an earlier output folder (the places with every
    attribute the earlier release has: what changed is compared where it has them).

    Raises:
        InputError: The folder lacks either file, a file is not Parquet, or it lacks a
            column read here (the message names the file and the columns).
    """
    membership = _previous_table(folder, "membership.parquet", ("source", "id", "place_id"))
    places = _previous_table(folder, "places.parquet", ("id", "lat", "lon"), whole=True)
    if "geometry" in places.column_names:
        places = places.drop_columns(["geometry"])
    keys = zip(
        membership.column("source").to_pylist(), membership.column("id").to_pylist(), strict=True
    )
    return dict(zip(keys, membership.column("place_id").to_pylist(), strict=True)), places


def _previous_table(
    folder: Path, name: str, needed: tuple[str, ...], whole: bool = False
) -> pa.Table:
    """File ``name`` of an earlier output folder: its ``needed`` columns, or with ``whole``
    every column it has (``needed`` among them)."""
    try:
        columns = pq.read_schema(folder / name).names
        lacking = [c for c in needed if c not in columns]
        if lacking:
            raise InputError(
                f"{name} lacks the column{'s' if len(lacking) > 1 else ''} "
                f"{', '.join(lacking)}; --previous takes the folder an earlier "
                "'poiflow conflate' wrote",
                path=folder,
            )
        return pq.read_table(folder / name, columns=None if whole else list(needed))
    except (OSError, pa.ArrowInvalid) as exc:
        raise InputError(
            f"not a poiflow conflate output folder ({exc}); --previous takes the folder "
            "an earlier 'poiflow conflate' wrote",
            path=folder,
        ) from exc
