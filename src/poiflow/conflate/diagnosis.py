"""Where a conflation's errors come from, against known truth.

Every pair of records that the truth puts in one place and the membership does not is a
*missed* pair; every pair the membership puts in one place and the truth does not is a
*wrong* pair. Each is traced to the stage that lost it:

- missed, ``blocking``: the two records never became a candidate pair;
- missed, ``matcher``: they were scored below the clustering threshold;
- missed, ``clustering``: they were scored above it, and clustering kept them apart; the
  rule that keeps their two places apart is named (``kept_apart_by``): ``veto`` (a pair
  across them scored below the veto), ``same source`` (they share a source, and the pairs
  across them fall short of that bar), ``average`` (the pairs across them average below
  the threshold), ``coverage`` (too few pairs across them were compared), or ``order``
  (none of these holds for the places as they ended: the pair was refused while they
  were still growing);
- wrong, ``matcher``: they were scored above the threshold;
- wrong, ``clustering``: they were scored below it (or never compared) and were joined
  through other records;
- missed or wrong, ``decision``: a person decided so (``poiflow conflate --decisions``:
  the two are different places, or one place), and the run followed.

The counts say which stage to work on; the pairs themselves (with their features, from
``pairs.parquet``) say what it got wrong.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
import polars as pl
import pyarrow as pa

from poiflow.conflate.clustering import ClusterConfig, cluster_records, key_rank
from poiflow.conflate.decisions import apply_decisions
from poiflow.conflate.evaluate import pairs_within_groups, score_membership, with_pair_rows
from poiflow.conflate.geo import haversine_m
from poiflow.errors import InputError
from poiflow.schema import PAIR_RECORD_KEYS, PAIR_SCORE_COLUMNS

__all__ = ["CAUSES", "RULES", "SWEEP", "Diagnosis", "diagnose", "kept_apart_by", "sweep_thresholds"]

CAUSES: Final[dict[tuple[str, str], str]] = {
    ("missed", "blocking"): "never a candidate pair",
    ("missed", "matcher"): "scored below the threshold",
    ("missed", "clustering"): "scored above the threshold, kept apart by clustering",
    ("wrong", "matcher"): "scored above the threshold",
    ("wrong", "clustering"): "scored below it or never compared, joined through others",
    ("missed", "decision"): "a person decided they are different places",
    ("wrong", "decision"): "a person decided they are one place",
}
"""Each kind of error, ``(error, stage)``, and what happened to its pairs."""

RULES: Final[dict[str, str]] = {
    "veto": "a pair across the two places scored below the veto",
    "same source": "they share a source, and the pairs across fall short of that bar",
    "average": "the pairs across the two places average below the threshold",
    "coverage": "too few pairs across the two places were compared",
    "order": "refused while the places were still growing",
}
"""The clustering rules that keep two places apart, in the order clustering checks them."""

MAX_PAIRS: Final = 50_000_000
"""The most pairs (true plus predicted) that :func:`diagnose` lists: a membership that
puts more records together is a run gone wrong, and its scores say so already."""

SWEEP: Final = (0.02, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95)
"""The clustering thresholds :func:`sweep_thresholds` tries unless told others."""


@dataclass(frozen=True, slots=True)
class Diagnosis:
    """A conflation's errors against the truth, each traced to a stage.

    Attributes:
        cluster: The clustering's settings; its threshold split ``matcher`` from
            ``clustering``.
        errors: One row per missed or wrong pair: ``error``, ``stage``,
            ``kept_apart_by`` (a missed pair of clustering: the rule, see :data:`RULES`),
            both records' ``source``/``id`` (``left_*``, ``right_*``), their true places
            (``left_place``, ``right_place``) and predicted ones (``left_place_id``,
            ``right_place_id``), ``match_probability`` (null: never a candidate), then,
            if the records were given, ``left_name``/``right_name``, ``metres_apart``
            (null where either has no coordinates; known for pairs never compared too)
            and both records' ``lat``/``lon``, and the pair's features if the pairs
            carried them.
        by_sources: Per pair of sources (``left_source <= right_source``): ``true_pairs``,
            ``predicted_pairs``, ``correct_pairs``, ``precision``, ``recall``, ``f1``.
    """

    cluster: ClusterConfig
    errors: pl.DataFrame
    by_sources: pl.DataFrame

    @property
    def threshold(self) -> float:
        """The clustering threshold."""
        return self.cluster.threshold

    def kept_apart(self) -> dict[str, int]:
        """How many missed pairs each clustering rule kept apart (every rule, zero
        included)."""
        found = dict(
            self.errors.drop_nulls("kept_apart_by")["kept_apart_by"].value_counts().iter_rows()
        )
        return {rule: int(found.get(rule, 0)) for rule in RULES}

    def counts(self) -> dict[str, int]:
        """How many pairs each kind of error has, as ``missed_blocking`` and so on (every
        kind, zero included)."""
        found = {
            (str(row[0]), str(row[1])): int(row[2])
            for row in self.errors.group_by("error", "stage").len().iter_rows()
        }
        return {f"{error}_{stage}": found.get((error, stage), 0) for error, stage in CAUSES}

    def examples(self, error: str, stage: str, limit: int) -> pl.DataFrame:
        """Up to ``limit`` pairs of one kind, the most telling first: the wrong pairs the
        model was surest of, the missed pairs it was surest were apart (or, kept apart by
        clustering, surest were one place); pairs never compared in key order."""
        rows = self.errors.filter((pl.col("error") == error) & (pl.col("stage") == stage))
        descending = error == "wrong" or stage == "clustering"
        return rows.sort(
            ["match_probability", *PAIR_RECORD_KEYS],
            descending=[descending, False, False, False, False],
            nulls_last=True,
        ).head(limit)


def diagnose(
    membership: pa.Table | pl.DataFrame,
    gold: pa.Table | pl.DataFrame,
    pairs: pa.Table | pl.DataFrame,
    cluster: ClusterConfig,
    *,
    records: pa.Table | pl.DataFrame | None = None,
    decisions: pa.Table | pl.DataFrame | None = None,
) -> Diagnosis:
    """Trace every missed and wrong pair of ``membership`` to the stage that lost it.

    Args:
        membership: ``source, id, place_id`` (``membership.parquet``).
        gold: ``source, id, place``: the truth. Only records in both are judged.
        pairs: The scored candidate pairs (``pairs.parquet``): the record keys and
            ``match_probability``; any further columns (the features) are carried into
            :attr:`Diagnosis.errors`.
        cluster: The clustering settings the run used (``run.json``'s
            ``matching.cluster``).
        records: The normalized records (``records.parquet``: ``source``, ``id``,
            ``names``, ``lat``, ``lon``), to show each record's name beside its key, and
            how far apart each pair's records are.
        decisions: The person's decisions the run followed (``decisions.parquet``:
            the record keys and ``decision``): a missed pair decided different, or a
            wrong pair decided one place, is the decision's.

    Raises:
        InputError: The pairs lack the record keys or the probability, or the membership
            and the truth together put more than :data:`MAX_PAIRS` pairs in one place.
    """
    scored = pl.DataFrame(pairs)
    missing = set(PAIR_SCORE_COLUMNS) - set(scored.columns)
    if missing:
        raise InputError(f"the scored pairs lack {', '.join(sorted(missing))}")
    scored = scored.with_columns(pl.col(PAIR_RECORD_KEYS).cast(pl.String))
    if scored.schema["match_probability"] == pl.Null:  # no pairs at all
        scored = scored.with_columns(pl.col("match_probability").cast(pl.Float64))
    key = [pl.col("source").cast(pl.String), pl.col("id").cast(pl.String)]
    judged = (
        pl.DataFrame(membership)
        .select(*key, pl.col("place_id").cast(pl.String))
        .join(
            pl.DataFrame(gold).select(*key, pl.col("place").cast(pl.String)),
            on=["source", "id"],
            # The rows in the membership's order: a pair is written the way round its
            # rows come (row < row_r), as the run's pairs are.
            maintain_order="left",
        )
        .with_row_index("row")
    )
    _refuse_huge(judged)
    side = judged.select("row", "source", "place", "place_id")
    true_pairs = _pairs_within(side, "place")
    predicted = _pairs_within(side, "place_id")
    missed = true_pairs.filter(pl.col("place_id") != pl.col("place_id_r")).with_columns(
        pl.col("place").alias("place_r"), pl.lit("missed").alias("error")
    )
    wrong = predicted.filter(pl.col("place") != pl.col("place_r")).with_columns(
        pl.col("place_id").alias("place_id_r"), pl.lit("wrong").alias("error")
    )
    columns = ["error", "row", "row_r", "place", "place_r", "place_id", "place_id_r"]
    errors = pl.concat([missed.select(columns), wrong.select(columns)])
    scored_rows = _scored_rows(scored, judged)
    errors = errors.join(scored_rows, on=["row", "row_r"], how="left")
    p = pl.col("match_probability")
    above = p.is_not_null() & (p >= cluster.threshold)
    stage = (
        pl.when(pl.col("error") == "wrong")
        .then(pl.when(above).then(pl.lit("matcher")).otherwise(pl.lit("clustering")))
        .when(p.is_null())
        .then(pl.lit("blocking"))
        .when(above)
        .then(pl.lit("clustering"))
        .otherwise(pl.lit("matcher"))
    )
    keys = judged.select("row", "source", "id")
    if decisions is not None:
        said = _decided_rows(pl.DataFrame(decisions), keys)
        errors = errors.join(said, on=["row", "row_r"], how="left")
        decided = ((pl.col("error") == "missed") & (pl.col("decision") == "different")) | (
            (pl.col("error") == "wrong") & (pl.col("decision") == "match")
        )
        stage = pl.when(decided.fill_null(False)).then(pl.lit("decision")).otherwise(stage)
    errors = kept_apart_by(errors.with_columns(stage.alias("stage")), scored_rows, judged, cluster)
    errors = errors.join(keys.rename({"source": "left_source", "id": "left_id"}), on="row").join(
        keys.rename({"row": "row_r", "source": "right_source", "id": "right_id"}), "row_r"
    )
    features = [c for c in scored.columns if c not in PAIR_SCORE_COLUMNS]
    described = records is not None
    if records is not None:
        errors = _describe(errors, pl.DataFrame(records))
    errors = errors.select(
        "error",
        "stage",
        "kept_apart_by",
        *PAIR_RECORD_KEYS,
        *(["left_name", "right_name", "metres_apart"] if described else []),
        *([f"{e}_{a}" for e in ("left", "right") for a in ("lat", "lon")] if described else []),
        pl.col("place").alias("left_place"),
        pl.col("place_r").alias("right_place"),
        pl.col("place_id").alias("left_place_id"),
        pl.col("place_id_r").alias("right_place_id"),
        "match_probability",
        *features,
    ).sort("error", "stage", *PAIR_RECORD_KEYS)
    return Diagnosis(cluster, errors, _by_sources(true_pairs, predicted))


def sweep_thresholds(
    membership: pa.Table | pl.DataFrame,
    gold: pa.Table | pl.DataFrame,
    pairs: pa.Table | pl.DataFrame,
    cluster: ClusterConfig,
    thresholds: Sequence[float] = SWEEP,
    *,
    decisions: pa.Table | pl.DataFrame | None = None,
) -> pl.DataFrame:
    """The run's scored pairs clustered again at each threshold (the other settings as
    ``cluster``, and the person's ``decisions`` the run followed, if any:
    ``decisions.parquet``), each scored against the truth: what the threshold would have
    given, with clustering's rules in play (a precision/recall curve of single pairs
    ignores them).

    Returns:
        One row per threshold (``cluster``'s own among them): ``threshold``,
        ``precision``, ``recall``, ``f1``, ``bcubed_f1``, ``places``.
    """
    records = (
        pl.DataFrame(membership)
        .select(pl.col("source").cast(pl.String), pl.col("id").cast(pl.String))
        .with_row_index("row")
    )
    scored = with_pair_rows(pl.DataFrame(pairs).select(PAIR_SCORE_COLUMNS), records, ("a", "b"))
    left = scored["a"].to_numpy().astype(np.int64)
    right = scored["b"].to_numpy().astype(np.int64)
    probability = scored["match_probability"].cast(pl.Float64).to_numpy()
    sources = np.asarray(records["source"].to_list(), dtype=object)
    rank = key_rank(records["source"].to_arrow(), records["id"].to_arrow())
    decided = None
    if decisions is not None:
        said = pl.DataFrame(decisions).select(*PAIR_RECORD_KEYS, "decision", "line")
        keys = records.select("source", "id").to_arrow()
        found = apply_decisions(keys, left, right, probability, said)
        left, right, probability, decided = (
            found.left,
            found.right,
            found.probability,
            found.decision,
        )
    rows = []
    for threshold in sorted({*thresholds, cluster.threshold}):
        config = dataclasses.replace(cluster, threshold=threshold)
        labels = cluster_records(
            records.height, left, right, probability, sources, config, decided, rank
        )
        predicted = records.select("source", "id", pl.Series("place_id", labels))
        scores = score_membership(predicted, gold)
        rows.append(
            {
                "threshold": threshold,
                "precision": scores.precision,
                "recall": scores.recall,
                "f1": scores.f1,
                "bcubed_f1": scores.bcubed_f1,
                "places": int(np.unique(labels).size),
            }
        )
    return pl.DataFrame(rows)


def kept_apart_by(
    errors: pl.DataFrame, scored_rows: pl.DataFrame, records: pl.DataFrame, cluster: ClusterConfig
) -> pl.DataFrame:
    """``errors`` with ``kept_apart_by``: for each missed pair of clustering, the rule that
    keeps the two places it ended in apart (the rules as clustering checks them, on the
    places as they ended)."""
    ends = [
        pl.min_horizontal("place_id", "place_id_r").alias("a"),
        pl.max_horizontal("place_id", "place_id_r").alias("b"),
    ]
    errors = errors.with_columns(ends)
    apart = (
        errors.filter((pl.col("error") == "missed") & (pl.col("stage") == "clustering"))
        .select("a", "b")
        .unique()
    )
    place = records.select("row", "place_id", "source")
    cross = (
        scored_rows.select("row", "row_r", "match_probability")
        .join(place.select("row", "place_id"), on="row")
        .join(
            place.select(pl.col("row").alias("row_r"), pl.col("place_id").alias("place_id_r")),
            on="row_r",
        )
        .with_columns(ends)
        .join(apart, on=["a", "b"], how="semi")
        .group_by("a", "b")
        .agg(
            pl.len().alias("compared"),
            pl.col("match_probability").mean().alias("mean"),
            pl.col("match_probability").min().alias("least"),
        )
    )
    sizes = place.group_by("place_id").agg(pl.len().alias("size"), pl.col("source").unique())
    stats = (
        apart.join(cross, on=["a", "b"], how="left")
        .join(sizes.rename({"place_id": "a", "size": "size_a", "source": "sources_a"}), on="a")
        .join(sizes.rename({"place_id": "b", "size": "size_b", "source": "sources_b"}), on="b")
    )
    single = (pl.col("size_a") == 1) & (pl.col("size_b") == 1)
    shared = pl.col("sources_a").list.set_intersection(pl.col("sources_b")).list.len() > 0
    coverage = pl.col("compared") / (pl.col("size_a") * pl.col("size_b"))
    rule = (
        pl.when(~single & (pl.col("least") < cluster.veto))
        .then(pl.lit("veto"))
        .when(shared & (pl.col("mean") < cluster.source_bar))
        .then(pl.lit("same source"))
        .when(pl.col("mean") < cluster.threshold)
        .then(pl.lit("average"))
        .when(coverage < cluster.min_coverage)
        .then(pl.lit("coverage"))
        .otherwise(pl.lit("order"))
    )
    stats = stats.select("a", "b", rule.alias("kept_apart_by"))
    missed_clustering = (pl.col("error") == "missed") & (pl.col("stage") == "clustering")
    return (
        errors.join(stats, on=["a", "b"], how="left")
        .with_columns(
            pl.when(missed_clustering).then(pl.col("kept_apart_by")).alias("kept_apart_by")
        )
        .drop("a", "b")
    )


def _refuse_huge(judged: pl.DataFrame) -> None:
    total = pairs_within_groups(judged, ["place"]) + pairs_within_groups(judged, ["place_id"])
    if total > MAX_PAIRS:
        raise InputError(
            f"the truth and the membership put {total:,} pairs of records in one place, more "
            f"than the {MAX_PAIRS:,} a diagnosis lists; the pairwise scores tell the story"
        )


def _describe(errors: pl.DataFrame, records: pl.DataFrame) -> pl.DataFrame:
    """``errors`` with each record's primary name and how far apart the two are."""
    about = records.select(
        pl.col("source").cast(pl.String),
        pl.col("id").cast(pl.String),
        pl.col("names").struct.field("primary").cast(pl.String).alias("name"),
        pl.col("lat").cast(pl.Float64),
        pl.col("lon").cast(pl.Float64),
    )
    for end in ("left", "right"):
        errors = errors.join(
            about.rename({c: f"{end}_{c}" for c in about.columns}),
            on=[f"{end}_source", f"{end}_id"],
            how="left",
        )
    coordinates = [
        errors[f"{end}_{axis}"].fill_null(float("nan")).to_numpy()
        for end in ("left", "right")
        for axis in ("lat", "lon")
    ]
    metres = pl.Series("metres_apart", haversine_m(*coordinates)).fill_nan(None)
    return errors.with_columns(metres)


def _pairs_within(side: pl.DataFrame, by: str) -> pl.DataFrame:
    """Every pair of records (``row < row_r``) that share ``by``."""
    return side.join(side, on=by, suffix="_r").filter(pl.col("row") < pl.col("row_r"))


def _decided_rows(decisions: pl.DataFrame, keys: pl.DataFrame) -> pl.DataFrame:
    """The decisions the run followed by record rows (``row < row_r``, ``decision``)."""
    if "in_run" in decisions.columns:
        decisions = decisions.filter("in_run")
    rows = with_pair_rows(decisions.select(*PAIR_RECORD_KEYS, "decision"), keys, ("a", "b"))
    return rows.select(
        pl.min_horizontal("a", "b").alias("row"),
        pl.max_horizontal("a", "b").alias("row_r"),
        "decision",
    ).unique(["row", "row_r"], keep="last")


def _scored_rows(scored: pl.DataFrame, records: pl.DataFrame) -> pl.DataFrame:
    """The scored pairs by record rows (``row < row_r``), one per pair: the highest
    probability if a pair was scored twice."""
    rows = with_pair_rows(scored, records.select("row", "source", "id"), ("a", "b"))
    return (
        rows.with_columns(
            pl.min_horizontal("a", "b").alias("row"), pl.max_horizontal("a", "b").alias("row_r")
        )
        .drop("a", "b", *PAIR_RECORD_KEYS)
        .sort("match_probability", descending=True, nulls_last=True)
        .unique(["row", "row_r"], keep="first", maintain_order=True)
    )


def _by_sources(true_pairs: pl.DataFrame, predicted: pl.DataFrame) -> pl.DataFrame:
    """Pairwise scores per pair of sources."""
    ordered = [
        pl.min_horizontal("source", "source_r").alias("left_source"),
        pl.max_horizontal("source", "source_r").alias("right_source"),
    ]
    truth = (
        true_pairs.with_columns(ordered)
        .group_by("left_source", "right_source")
        .agg(
            pl.len().alias("true_pairs"),
            (pl.col("place_id") == pl.col("place_id_r")).sum().alias("correct_pairs"),
        )
    )
    called = predicted.with_columns(ordered).group_by("left_source", "right_source").len()
    table = truth.join(
        called.rename({"len": "predicted_pairs"}),
        on=["left_source", "right_source"],
        how="full",
        coalesce=True,
    ).with_columns(pl.col("true_pairs", "correct_pairs", "predicted_pairs").fill_null(0))
    correct = pl.col("correct_pairs").cast(pl.Float64)
    precision = (
        pl.when(pl.col("predicted_pairs") > 0)
        .then(correct / pl.col("predicted_pairs"))
        .otherwise(1.0)
    )
    recall = pl.when(pl.col("true_pairs") > 0).then(correct / pl.col("true_pairs")).otherwise(1.0)
    table = table.with_columns(precision.alias("precision"), recall.alias("recall"))
    f1 = (
        pl.when(pl.col("precision") + pl.col("recall") > 0)
        .then(2 * pl.col("precision") * pl.col("recall") / (pl.col("precision") + pl.col("recall")))
        .otherwise(0.0)
    )
    return (
        table.with_columns(f1.alias("f1"))
        .select(
            "left_source",
            "right_source",
            pl.col("true_pairs", "predicted_pairs", "correct_pairs").cast(pl.Int64),
            "precision",
            "recall",
            "f1",
        )
        .sort("left_source", "right_source")
    )
