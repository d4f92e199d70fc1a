"""Active learning: which pairs to ask a person about, where answers are kept, and a model
refined from them.

- :func:`pick_pairs` ranks a run's candidate pairs by how much an answer would teach: the
  pairs where clustering disagrees with the model (scored a match but kept apart, or
  joined though scored apart) first, then those the model is least sure of, with each
  record asked about at most once per batch.
- Answers are labelled pairs in a CSV file (``LABEL_COLUMNS``), appended one by one, so
  that nothing is lost when a session stops; the same file is what ``poiflow train
  --labels`` reads, whichever front end (terminal or web page) wrote it.
- :func:`refine_matcher` continues the boosting of a trained model on the labelled pairs
  (a few small trees, strongly regularized), keeping its calibration: 50 answers cannot
  train a model, but they can correct one where it is unsure.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Final

import numpy as np
import polars as pl
import pyarrow as pa

from poiflow.conflate.decisions import (
    DECIDED_BY,
    LABEL_COLUMNS,
    Answer,
    append_label,
    append_labels,
    read_answers,
)
from poiflow.conflate.evaluate import with_pair_rows
from poiflow.conflate.features import RecordView, pair_features
from poiflow.conflate.matcher import Matcher, lightgbm
from poiflow.schema import PAIR_RECORD_KEYS, PAIR_SCORE_COLUMNS

__all__ = [
    "LABEL_COLUMNS",
    "STRENGTHS",
    "Answer",
    "RecordCards",
    "append_label",
    "append_labels",
    "distance_m",
    "label_features",
    "pick_pairs",
    "read_labels",
    "refine_matcher",
]


def read_labels(path: str | Path) -> pl.DataFrame:
    """The labelled pairs of a labels file (empty if it does not exist yet), the last
    answer about a pair kept, in ``LABEL_COLUMNS``.

    A decisions file written by hand (the two records' keys and ``label``) is a labels
    file too: what it does not say (the model's probability, when and by whom) is null.

    Raises:
        InputError: The file is not a labels file (names the line of a bad answer).
    """
    answers = read_answers(path, DECIDED_BY)
    unsaid = [pl.lit(None, pl.String).alias(c) for c in LABEL_COLUMNS if c not in answers.columns]
    return answers.with_columns(unsaid).select(LABEL_COLUMNS)


def pick_pairs(
    pairs: pl.DataFrame,
    membership: pl.DataFrame,
    *,
    count: int,
    labelled: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """The ``count`` pairs most worth asking about, most useful first.

    Args:
        pairs: The scored candidate pairs of a run (``pairs.parquet``).
        membership: Each record's place in that run.
        count: How many.
        labelled: Pairs already answered (left out).

    Returns:
        The chosen pairs with ``match_probability``, ``same_place`` (whether the run put
        them in one place) and ``reason`` ("kept apart though scored a match", ...).
    """
    member = membership.select("source", "id", "place_id")
    frame = pairs.select(PAIR_SCORE_COLUMNS).join(
        member.rename({"source": "left_source", "id": "left_id", "place_id": "left_place"}),
        on=["left_source", "left_id"],
    )
    frame = frame.join(
        member.rename({"source": "right_source", "id": "right_id", "place_id": "right_place"}),
        on=["right_source", "right_id"],
    ).with_columns((pl.col("left_place") == pl.col("right_place")).alias("same_place"))
    if labelled is not None and labelled.height:
        frame = frame.join(labelled.select(PAIR_RECORD_KEYS), on=PAIR_RECORD_KEYS, how="anti")
    p = pl.col("match_probability")
    frame = frame.with_columns(
        (1 - (2 * p - 1).abs()).alias("uncertainty"),
        pl.when((p >= 0.5) & ~pl.col("same_place"))
        .then(pl.lit("kept apart though scored a match"))
        .when((p < 0.5) & pl.col("same_place"))
        .then(pl.lit("joined though scored apart"))
        .otherwise(pl.lit("the model is unsure"))
        .alias("reason"),
    )
    frame = frame.with_columns(
        (pl.col("reason") != "the model is unsure").alias("disagrees")
    ).filter(pl.col("disagrees") | (pl.col("uncertainty") > 0.02))
    ranked = frame.sort(
        ["disagrees", "uncertainty", *PAIR_RECORD_KEYS],
        descending=[True, True, False, False, False, False],
    )
    chosen: list[int] = []
    seen: set[tuple[str, str]] = set()
    for index, (ls, li, rs, ri) in enumerate(ranked.select(PAIR_RECORD_KEYS).iter_rows()):
        if len(chosen) >= count:
            break
        if (ls, li) in seen or (rs, ri) in seen:
            continue  # one question per record per batch: answers teach more spread out
        seen.update({(ls, li), (rs, ri)})
        chosen.append(index)
    return ranked[chosen].drop("disagrees", "left_place", "right_place")


@dataclass(frozen=True, slots=True)
class LabelledPairs:
    """Labelled pairs resolved to record rows, with their features."""

    left: np.ndarray
    right: np.ndarray
    labels: np.ndarray
    features: dict[str, np.ndarray]
    unknown: int


def label_features(records: pa.Table, labels: pl.DataFrame) -> LabelledPairs:
    """The features of the labelled pairs (``match`` / ``different``; ``unsure`` left out)
    among ``records``, computed as in a run over all of them.

    Pairs whose records are not in ``records`` are counted in ``unknown``.
    """
    answered = labels.filter(pl.col("label") != "unsure")
    keys = pl.DataFrame(records.select(["source", "id"])).with_row_index("row")
    joined = with_pair_rows(answered, keys)
    left = joined["left_row"].to_numpy().astype(np.int64)
    right = joined["right_row"].to_numpy().astype(np.int64)
    features = pair_features(RecordView.of(records), left, right)
    truth = (joined["label"] == "match").to_numpy().astype(np.int8)
    return LabelledPairs(left, right, truth, features, answered.height - joined.height)


STRENGTHS: Final = {"gentle": (20, 10.0), "strong": (50, 1.0)}
"""How hard ``refine_matcher`` may move a model: (more trees, their L2 penalty). Gentle
keeps a model that already fits the data (the generator's worlds, which the shipped model
learnt from); strong lets 50 answers teach it a feed unlike its training data (benchmarked
in ``benchmarks/active_learning.py``)."""
SURPRISE: Final = 3.0
"""How many standard deviations the answers' matches must lie from the number the model
expected (the sum of its probabilities) before it is refined strongly."""


def refine_matcher(
    base: Matcher,
    features: Mapping[str, np.ndarray],
    labels: np.ndarray,
    *,
    rounds: int | None = None,
    seed: int = 0,
    name: str | None = None,
) -> Matcher:
    """``base`` with more trees fitted to labelled pairs, its calibration kept.

    How hard the answers may move it depends on whether they contradict it. A calibrated
    model expects the sum of its probabilities as the number of matches among the pairs
    asked about; when the answers' count lies ``SURPRISE`` or more standard deviations
    from that (a calibration test), the model does not know this data and is refined
    strongly, else gently (``STRENGTHS``). Measured: on a world like its training data
    the answers stay within 2 deviations and strong refining would cost F1; on feeds
    geocoded 250 m off they reach 3-4 after 30 answers, and strong refining gains it.
    The model's info says which was chosen and why.

    Args:
        rounds: Fit exactly this many gentle trees instead of choosing.

    Raises:
        ValueError: No labelled pairs, or answers of one kind only.
    """
    labels = np.asarray(labels, dtype=np.int8)
    if labels.size == 0:
        raise ValueError("refining needs labelled pairs (answers 'match' or 'different')")
    if labels.min() == labels.max():
        kind = "same place" if labels[0] else "different"
        raise ValueError(f"every answer is '{kind}': refining needs answers of both kinds")
    matrix = np.column_stack([features[n] for n in base.features]).astype(np.float32)
    expected = base.predict(features, compiled=False).astype(np.float64)
    spread = float(np.sqrt(np.sum(expected * (1 - expected))))
    surprise = float((labels.sum() - expected.sum()) / max(spread, 1e-9))
    strength = "strong" if abs(surprise) >= SURPRISE else "gentle"
    trees, l2 = STRENGTHS[strength]
    if rounds is not None:
        strength, trees, l2 = "given", rounds, STRENGTHS["gentle"][1]
    params = {
        "objective": "binary",
        "learning_rate": 0.1,
        "num_leaves": 4,
        "min_data_in_leaf": 3,
        "lambda_l2": l2,
        "min_gain_to_split": 0.0,
        "verbose": -1,
        "seed": seed,
        "deterministic": True,
        "num_threads": 1,
    }
    lgb = lightgbm()
    data = lgb.Dataset(matrix, labels, feature_name=list(base.features), free_raw_data=True)
    booster = lgb.train(params, data, num_boost_round=trees, init_model=base.booster)
    info = {
        **base.info,
        "name": name or f"{base.version}+{labels.size}-labels",
        "refined_from": base.version,
        "refined_on": {
            "pairs": int(labels.size),
            "matches": int(labels.sum()),
            "expected_matches": round(float(expected.sum()), 2),
            "surprise": round(surprise, 2),
            "strength": strength,
            "rounds": trees,
        },
    }
    return replace(base, model=booster, info=info)


def agreement(
    model: Matcher, features: Mapping[str, np.ndarray], labels: np.ndarray
) -> dict[str, float]:
    """How a model does on labelled pairs: accuracy, log-loss, precision, recall, F1."""
    p = np.clip(model.predict(features, compiled=False).astype(np.float64), 1e-6, 1 - 1e-6)
    called = p >= 0.5
    truth = labels == 1
    tp = int((called & truth).sum())
    precision = tp / max(1, int(called.sum()))
    recall = tp / max(1, int(truth.sum()))
    return {
        "pairs": int(labels.size),
        "accuracy": float((called == truth).mean()) if labels.size else 0.0,
        "log_loss": float(-np.mean(truth * np.log(p) + (~truth) * np.log(1 - p)))
        if labels.size
        else 0.0,
        "precision": precision,
        "recall": recall,
        "f1": 2 * precision * recall / max(1e-9, precision + recall),
    }


def split(count: int, held_share: float, seed: int) -> np.ndarray:
    """A boolean mask of the held-out part of ``count`` items."""
    rng = np.random.default_rng(seed)
    held = np.zeros(count, dtype=bool)
    held[rng.permutation(count)[: round(count * held_share)]] = True
    return held


def keys_of(rows: Iterable[Mapping[str, Any]]) -> list[tuple[str, str, str, str]]:
    """The pair keys of rows (for tests and front ends)."""
    return [tuple(str(r[k]) for k in PAIR_RECORD_KEYS) for r in rows]  # type: ignore[misc]


class RecordCards:
    """Records by (source, id), described for a person comparing two of them.

    Args:
        records: The records (``PLACE_SCHEMA``).
        pairs: The pairs that will be asked about (``pick_pairs``): only their records are
            kept, so a large run costs no more than the questions.
    """

    def __init__(self, records: pa.Table, pairs: pl.DataFrame | None = None) -> None:
        if pairs is not None:
            asked = pl.concat(
                [
                    pairs.select(
                        pl.col(f"{side}_source").alias("source"), pl.col(f"{side}_id").alias("id")
                    )
                    for side in ("left", "right")
                ]
            ).unique()
            keys = pl.DataFrame(records.select(["source", "id"])).with_row_index("row")
            rows = keys.join(asked, on=["source", "id"], how="semi")["row"].to_numpy()
            records = records.take(pa.array(rows))
        self._rows = {
            (r["source"], r["id"]): r
            for r in records.select(
                [
                    "source",
                    "id",
                    "names",
                    "categories",
                    "lat",
                    "lon",
                    "address",
                    "phones",
                    "websites",
                    "update_time",
                ]
            ).to_pylist()
        }

    def describe(self, source: str, record_id: str) -> dict[str, str]:
        """The fields a person compares, as text."""
        row = self._rows.get((source, record_id))
        if row is None:
            return {"record": f"{source}/{record_id} (not in records.parquet)"}
        address = row["address"] or {}
        return {
            "record": f"{source}/{record_id}",
            "name": (row["names"] or {}).get("primary") or "",
            "category": (row["categories"] or {}).get("primary") or "",
            "address": " ".join(
                str(address.get(k))
                for k in ("street", "housenumber", "postcode", "locality")
                if address.get(k)
            ),
            "phone": ", ".join(row["phones"] or []),
            "website": ", ".join(row["websites"] or []),
            "where": "" if row["lat"] is None else f"{row['lat']:.5f}, {row['lon']:.5f}",
            "updated": str(row["update_time"] or "")[:10],
        }

    def position(self, source: str, record_id: str) -> tuple[float, float] | None:
        """Where the record is (lat, lon), if it says."""
        row = self._rows.get((source, record_id))
        if row is None or row["lat"] is None:
            return None
        return float(row["lat"]), float(row["lon"])

    def question(self, pair: Mapping[str, Any], index: int, total: int) -> dict[str, Any]:
        """Pair number ``index`` of ``total`` (a row of :func:`pick_pairs`) as a labelling
        page shows it: both records side by side, where they are, and why it is asked."""
        left = (pair["left_source"], pair["left_id"])
        right = (pair["right_source"], pair["right_id"])
        a, b = self.position(*left), self.position(*right)
        metres = distance_m(a, b)
        return {
            "index": index,
            "total": total,
            **{key: pair[key] for key in PAIR_RECORD_KEYS},
            "probability": round(float(pair["match_probability"]), 4),
            "reason": pair["reason"],
            "distance_m": None if metres is None else round(metres),
            "left": {**self.describe(*left), "position": a},
            "right": {**self.describe(*right), "position": b},
        }


def distance_m(a: tuple[float, float] | None, b: tuple[float, float] | None) -> float | None:
    """Metres between two points (haversine), or None if one is unknown."""
    if a is None or b is None:
        return None
    lat1, lon1, lat2, lon2 = map(math.radians, (*a, *b))
    h = (
        math.sin((lat2 - lat1) / 2) ** 2
        + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    )
    return 2 * 6_371_000 * math.asin(math.sqrt(h))
