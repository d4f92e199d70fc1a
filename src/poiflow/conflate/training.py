"""Labelled pairs for training and evaluation, from a records file and its truth."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pyarrow.parquet as pq

from poiflow.conflate.blocking import BlockingConfig, candidate_pairs
from poiflow.conflate.features import RecordView, pair_features

__all__ = ["candidate_features", "labelled_pairs"]


def candidate_features(
    records_path: str | Path, blocking: BlockingConfig | None = None
) -> dict[str, np.ndarray]:
    """The features of every candidate pair of a records file (no labels needed)."""
    records = pq.read_table(records_path)
    pairs = candidate_pairs(records, blocking)
    left = pairs.column("left").to_numpy()
    right = pairs.column("right").to_numpy()
    return pair_features(RecordView.of(records), left, right)


def labelled_pairs(
    records_path: str | Path, gold: pl.DataFrame, blocking: BlockingConfig | None = None
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Features and labels of the candidate pairs of a records file.

    Args:
        records_path: Normalized records (``PLACE_SCHEMA``, as ``poiflow ingest`` writes).
        gold: ``source, id, place``: which real place each record describes (see
            :func:`poiflow.conflate.evaluate.read_gold`).
        blocking: How candidates are proposed.

    Returns:
        The features of every candidate pair, and 1 where both records are the same place.
        Records missing from the gold file are never a match.
    """
    records = pq.read_table(records_path)
    keys = pl.DataFrame(records.select(["source", "id"]))
    truth = keys.join(gold, on=["source", "id"], how="left", maintain_order="left")["place"]
    place = truth.to_numpy()
    pairs = candidate_pairs(records, blocking)
    left = pairs.column("left").to_numpy()
    right = pairs.column("right").to_numpy()
    labels = (place[left] == place[right]) & (place[left] != None)  # noqa: E711
    return pair_features(RecordView.of(records), left, right), labels.astype(np.int8)
