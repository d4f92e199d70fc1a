"""New places among the records that no place of a run takes (``poiflow match``,
``POST /match``): those records clustered among themselves as the run clusters, so that
two sources announcing one new place give one place, named as a run would name it.

The records are compared with each other as a run of them and the run's records would
compare them (:func:`among`: blocking's keys with the statistics of both, the run's
model), and clustered with the run's thresholds and a person's decisions between them
(:func:`with_new_places`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa

from poiflow.conflate.blocking import finish_pairs, key_counts, key_pairs, key_stats, record_keys
from poiflow.conflate.clustering import cluster_records, key_rank
from poiflow.conflate.keys import BLOCKING_COLUMNS
from poiflow.conflate.lookup import FeatureLookup
from poiflow.serving.held_keys import HeldKeys
from poiflow.serving.matching import Match, MatchIndex, record_ids

__all__ = ["among", "new_place_ids", "with_new_places"]


def among(
    index: MatchIndex,
    places: pa.Table | Sequence[Mapping[str, Any]],
    features: FeatureLookup | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The records to match (a table or rows) compared with each other, as a run of
    them and the run's records would: the pairs their blocking keys propose and every
    pair a person decided, scored by the run's model.

    Their keys are made with the statistics of the run's records and theirs together
    (which name words are rare, which terms records without coordinates have): with
    the run's alone, a record without coordinates whose terms the run never saw would
    get no key. A request's few records count theirs in plain Python, as
    ``StatsLookup.row_keys`` says.

    Returns:
        ``(left, right, probability, decided)``: positions in ``places`` (left below
        right, each pair once), the pair's match probability, and its decision (1 one
        place, -1 different places, 0 none).
    """
    rows, table = index.rows_or_table(places)
    sources, ids = record_ids(rows, table)
    q = len(sources)
    if table is None:  # a request's few: the words and terms they add, in plain Python
        keys = index.stats.row_keys(rows, index.blocking, common=index.common)
        held = HeldKeys.of(pl.DataFrame(keys))
        # Each record is its own twin here: never paired with itself, counted once.
        query, other = held.lookup(keys, np.arange(q, dtype=np.int64), index.caps)
        pair = np.unique(np.minimum(query, other) * q + np.maximum(query, other))
    else:  # a file's: paired key group by key group, as a run pairs its records
        pair = _table_pairs(index, table)
    decided = np.zeros(len(pair), np.int8)
    if index.decisions:
        at = {key: i for i, key in enumerate(zip(sources, ids, strict=True))}
        said = {
            (min(i, j), max(i, j)): verdict
            for i, key in enumerate(zip(sources, ids, strict=True))
            for other_key, verdict in index.decisions.get(key, ())
            if (j := at.get(other_key, i)) != i
        }
        if said:
            extra = np.array([i * q + j for i, j in said], dtype=np.int64)
            pair = np.union1d(pair, extra)
            decided = np.zeros(len(pair), np.int8)
            decided[np.searchsorted(pair, extra)] = list(said.values())
    left, right = pair // q, pair % q
    probability = index.pair_probability(rows, table, np.zeros(0, np.int64), left, right, features)
    return left, right, probability, decided


def _table_pairs(index: MatchIndex, table: pa.Table) -> np.ndarray:
    """The pairs (``left * n + right``, sorted) that a table of ``n`` records' blocking
    keys propose among them, made with the statistics of the run's records and theirs."""
    n = table.num_rows
    blocked = table.select(list(BLOCKING_COLUMNS)).append_column(
        "row", pa.array(np.arange(n, dtype=np.int64))
    )
    stats = key_stats([index.counts, key_counts(blocked)], index.blocking)
    proposed = key_pairs(record_keys(blocked, stats, index.blocking), index.blocking, once=False)
    found = finish_pairs([proposed], n)  # the key rows are let go first: a file's are large
    pair: np.ndarray = found.column("left").to_numpy() * n + found.column("right").to_numpy()
    return pair


def with_new_places(
    index: MatchIndex,
    places: pa.Table | Sequence[Mapping[str, Any]],
    matches: Sequence[Match],
    features: FeatureLookup | None = None,
) -> list[Match]:
    """``matches`` (the answers for ``places``, in order) with the new place of each
    record that no place of the run takes (:func:`new_place_ids`)."""
    named = new_place_ids(index, places, matches, features)
    return [
        m if p is None else replace(m, new_place=p) for m, p in zip(matches, named, strict=True)
    ]


def new_place_ids(
    index: MatchIndex,
    places: pa.Table | Sequence[Mapping[str, Any]],
    matches: Sequence[Match],
    features: FeatureLookup | None = None,
) -> list[str | None]:
    """The new place of each of ``matches`` (the answers for ``places``, in order) that no
    place of the run takes, None for the others: those records clustered among
    themselves as the run clusters (its thresholds, and a person's decisions between
    them), so that two sources announcing one new place give one place. Each new place
    is named as a run names a place, after its first record (by source, then id), and
    never takes an id in use. ``features``: as ``MatchIndex.scored`` takes them."""
    fresh = [i for i, m in enumerate(matches) if m.place_id is None]
    named: list[str | None] = [None] * len(matches)
    if not fresh:
        return named
    labels = np.zeros(1, np.int64)
    if len(fresh) > 1:
        rows, table = index.rows_or_table(places)
        if len(fresh) == len(matches):  # a file's new records, gathered already
            part: pa.Table | Sequence[Mapping[str, Any]] = rows if table is None else table
        else:
            part = [rows[i] for i in fresh] if table is None else table.take(pa.array(fresh))
        left, right, probability, decided = among(index, part, features)
        sources = np.asarray([matches[i].source for i in fresh], dtype=object)
        labels = cluster_records(
            len(fresh),
            left,
            right,
            probability,
            sources,
            index.clustering,
            decided if decided.any() else None,
            key_rank([matches[i].source for i in fresh], [matches[i].id for i in fresh]),
        )
    first: dict[int, tuple[str, str]] = {}
    for label, i in zip(labels.tolist(), fresh, strict=True):
        key = (matches[i].source, matches[i].id)
        first[label] = min(first.get(label, key), key)
    place_of = {label: index.fresh_place_id(*key) for label, key in first.items()}
    for label, i in zip(labels.tolist(), fresh, strict=True):
        named[i] = place_of[label]
    return named
