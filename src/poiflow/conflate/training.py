"""Candidate pairs with their features, and their labels, from a records file and its truth."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from poiflow.conflate.blocking import candidate_pairs
from poiflow.conflate.features import RecordView, pair_features
from poiflow.conflate.keys import BlockingConfig

__all__ = ["Candidates", "candidate_features", "candidates", "labelled_pairs", "labels_of"]


@dataclass(frozen=True, slots=True)
class Candidates:
    """The records of a file, their candidate pairs (rows), and the pairs' features."""

    records: pa.Table
    left: np.ndarray
    right: np.ndarray
    features: dict[str, np.ndarray]


def candidates(records_path: str | Path, blocking: BlockingConfig | None = None) -> Candidates:
    """Read a records file once, block it, and compute the features of every pair."""
    records = pq.read_table(records_path)
    pairs = candidate_pairs(records, blocking)
    left = pairs.column("left").to_numpy()
    right = pairs.column("right").to_numpy()
    return Candidates(records, left, right, pair_features(RecordView.of(records), left, right))


def candidate_features(
    records_path: str | Path, blocking: BlockingConfig | None = None
) -> dict[str, np.ndarray]:
    """The features of every candidate pair of a records file (no labels needed)."""
    return candidates(records_path, blocking).features


def labels_of(found: Candidates, gold: pl.DataFrame) -> np.ndarray:
    """1 where both records of a pair are the same place in ``gold`` (``source, id,
    place``, see :func:`poiflow.conflate.evaluate.read_gold`), else 0. Records missing
    from the gold file are never a match."""
    keys = pl.DataFrame(found.records.select(["source", "id"]))
    truth = keys.join(gold, on=["source", "id"], how="left", maintain_order="left")["place"]
    place = truth.to_numpy()
    labels = (place[found.left] == place[found.right]) & (place[found.left] != None)  # noqa: E711
    return np.asarray(labels, dtype=np.int8)


def labelled_pairs(
    records_path: str | Path, gold: pl.DataFrame, blocking: BlockingConfig | None = None
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Features and labels of the candidate pairs of a records file.

    Args:
        records_path: Normalized records (``PLACE_SCHEMA``, as ``poiflow ingest`` writes).
        gold: ``source, id, place``: which real place each record describes.
        blocking: How candidates are proposed.

    Returns:
        The features of every candidate pair, and 1 where both records are the same place.
    """
    found = candidates(records_path, blocking)
    return found.features, labels_of(found, gold)
