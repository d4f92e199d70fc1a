"""What moved the scores of a run's pairs: the largest parts of a few pairs' scores (the
examples a report and ``poiflow evaluate`` show), and the mean parts of every mistake the
matcher made, kind by kind (``poiflow evaluate --drivers``). The parts are
:func:`poiflow.conflate.explain.explain_scores`'s."""

from __future__ import annotations

from pathlib import Path
from typing import Final

import numpy as np
import polars as pl
import pyarrow as pa

from poiflow.conflate.explain import describe_feature, explain_scores
from poiflow.conflate.matcher import AnyMatcher
from poiflow.schema import PAIR_RECORD_KEYS

__all__ = ["DRIVERS", "MISTAKE_DRIVERS", "error_drivers", "stored_error_drivers", "with_drivers"]

DRIVERS: Final = 3
"""How many parts of a score :func:`with_drivers` names."""

MISTAKE_DRIVERS: Final = 8
"""How many features a kind of mistake shows (``poiflow evaluate --drivers``, and the
report of a run with known truth)."""


def with_drivers(
    examples: pl.DataFrame,
    model: AnyMatcher,
    pairs_path: Path,
    *,
    keys: pa.Table | pl.DataFrame | None = None,
) -> pl.DataFrame:
    """``examples`` (pairs by their record keys) with ``drivers``: the parts of each scored
    pair's score that moved it most ("names, Jaro-Winkler 1.00 +6.3 · distance 789 m
    -1.6 · ..."), null for a pair never scored.

    Args:
        examples: A few pairs: ``left_source, left_id, right_source, right_id``.
        model: The model that scored them.
        pairs_path: The run's ``pairs.parquet`` (their features are read from it).
        keys: The record keys of ``pairs_path``'s rows, in order, if read already.
    """
    if examples.is_empty():
        return examples.with_columns(pl.lit(None, pl.String).alias("drivers"))
    rows = _pair_rows(examples, pairs_path, keys)
    scored = sorted({r for r in rows if r is not None})
    features = _parquet_rows(pairs_path, scored, list(model.features))
    explained = dict(zip(scored, explain_scores(model, features), strict=True))
    text: list[str | None] = []
    for row in rows:
        if row is None:
            text.append(None)
            continue
        parts = explained[row].parts[:DRIVERS]
        text.append(" · ".join(f"{p.label} {p.shows} {p.bits:+.1f}" for p in parts))
    return examples.with_columns(pl.Series("drivers", text, pl.String))


def _pair_rows(
    pairs: pl.DataFrame, pairs_path: Path, keys: pa.Table | pl.DataFrame | None
) -> list[int | None]:
    """The row of each of ``pairs`` (by their record keys, either way round) in
    ``pairs_path``, or None for a pair never scored; ``keys``: the file's record keys, in
    order, if read already."""
    import pyarrow.parquet as pq

    keyed = pl.DataFrame(
        keys if keys is not None else pq.read_table(pairs_path, columns=list(PAIR_RECORD_KEYS))
    )
    stored = keyed.select(PAIR_RECORD_KEYS).with_row_index("pair_row")
    # The few pairs asked about are turned round, not the run's many.
    asked = pairs.select(PAIR_RECORD_KEYS).with_row_index("pair")
    turned = asked.rename(
        {
            "left_source": "right_source",
            "left_id": "right_id",
            "right_source": "left_source",
            "right_id": "left_id",
        }
    )
    found = (
        pl.concat([asked, turned.select(asked.columns)])
        .join(stored, on=list(PAIR_RECORD_KEYS))
        .group_by("pair")
        .agg(pl.col("pair_row").min())
    )
    rows: list[int | None] = (
        asked.select("pair")
        .join(found, on="pair", how="left", maintain_order="left")["pair_row"]
        .to_list()
    )
    return rows


def stored_error_drivers(
    errors: pl.DataFrame,
    model: AnyMatcher,
    pairs_path: Path,
    *,
    keys: pa.Table | pl.DataFrame | None = None,
    at_most: int | None = None,
) -> pl.DataFrame:
    """:func:`error_drivers` of errors known by their record keys alone (a diagnosis of
    the pairs' keys and probabilities), their features read from the run's
    ``pairs.parquet``: only the rows of the pairs that were scored.

    Args:
        errors: ``Diagnosis.errors``: ``error``, ``stage``, the record keys and
            ``match_probability``.
        model: The model that scored them.
        pairs_path: The run's ``pairs.parquet``.
        keys: Its record keys, in order, if read already.
        at_most: Take apart at most this many scored pairs of each kind, spread evenly
            over them in the order of their keys: the model's parts of a score (TreeSHAP)
            cost about 1.5 ms a pair on one core. None: every one.
    """
    if at_most is not None:
        scored = errors.filter(pl.col("match_probability").is_not_null())
        spread = [
            part.sort(PAIR_RECORD_KEYS).gather_every(-(-part.height // at_most))
            for part in scored.partition_by("error", "stage", maintain_order=True)
        ]
        errors = pl.concat(spread) if spread else scored
    found = [
        (k, row) for k, row in enumerate(_pair_rows(errors, pairs_path, keys)) if row is not None
    ]
    if not found:
        return error_drivers(errors.head(0), model)
    stored = sorted({row for _, row in found})
    features = _parquet_rows(pairs_path, stored, list(model.features))
    index = {row: i for i, row in enumerate(stored)}
    take = np.asarray([index[row] for _, row in found], dtype=np.int64)
    scored = errors[[k for k, _ in found]].with_columns(
        pl.Series(name, values[take]) for name, values in features.items()
    )
    return error_drivers(scored, model)


def error_drivers(errors: pl.DataFrame, model: AnyMatcher) -> pl.DataFrame:
    """What moved the scores of the pairs the matcher got wrong, kind by kind.

    Args:
        errors: Missed and wrong pairs with their features (``Diagnosis.errors`` of pairs
            read with their features); those never scored are left out.
        model: The model that scored them.

    Returns:
        One row per kind of error (``error``, ``stage``) and feature (or comparison):
        ``pairs``, ``mean_bits`` (the feature's mean part of their scores), ``typical``
        (what the pairs showed there most often) and ``typical_share``; each kind's
        features by the size of their mean part, largest first.
    """
    columns = {
        "error": pl.String,
        "stage": pl.String,
        "feature": pl.String,
        "pairs": pl.Int64,
        "mean_bits": pl.Float64,
        "typical": pl.String,
        "typical_share": pl.Float64,
    }
    scored = errors.filter(pl.col("match_probability").is_not_null())
    rows = []
    for (error, stage), part in sorted(
        scored.partition_by(["error", "stage"], as_dict=True).items()
    ):
        explained = explain_scores(model, {n: part[n].to_numpy() for n in model.features})
        by_name: dict[str, list[tuple[float, str]]] = {}
        for explanation in explained:
            for p in explanation.parts:
                by_name.setdefault(p.name, []).append((p.bits, p.shows))
        for name, seen in by_name.items():
            typical, share = _typical([shown for _, shown in seen], part, name)
            rows.append(
                {
                    "error": error,
                    "stage": stage,
                    "feature": name,
                    "pairs": len(seen),
                    "mean_bits": float(np.mean([bits for bits, _ in seen])),
                    "typical": typical,
                    "typical_share": share,
                }
            )
    found = pl.DataFrame(rows, schema=columns)
    return found.sort(
        "error",
        "stage",
        pl.col("mean_bits").abs(),
        "feature",
        descending=[False, False, True, False],
    )


def _typical(shows: list[str], pairs: pl.DataFrame, name: str) -> tuple[str, float]:
    """What most of the pairs showed for a feature, and the share that showed it; for a
    measure no one value of which most show (a distance, a similarity), the median of the
    pairs that have one, and their share."""
    counts = pl.Series(shows).value_counts(sort=True)
    value, count = str(counts[0, 0]), int(counts[0, 1])
    if 2 * count >= len(shows) or name not in pairs.columns:
        return value, count / len(shows)
    known = pairs[name].cast(pl.Float64).fill_nan(None).drop_nulls()
    if known.is_empty():
        return value, count / len(shows)
    median = float(known.median())  # type: ignore[arg-type]
    return f"median {describe_feature(name, median)}", known.len() / len(shows)


def _parquet_rows(path: Path, rows: list[int], columns: list[str]) -> dict[str, np.ndarray]:
    """Rows ``rows`` (sorted) of a Parquet file, reading only the row groups that hold them."""
    import pyarrow.parquet as pq

    file = pq.ParquetFile(path)
    sizes = [file.metadata.row_group(i).num_rows for i in range(file.num_row_groups)]
    starts = np.concatenate([[0], np.cumsum(sizes)])
    at = np.asarray(rows, dtype=np.int64)
    groups = np.searchsorted(starts, at, side="right") - 1
    wanted = sorted(set(groups.tolist()))
    table = file.read_row_groups(wanted, columns=columns)
    offset = {g: int(sum(sizes[w] for w in wanted[:k])) for k, g in enumerate(wanted)}
    local = np.asarray([offset[g] + int(r - starts[g]) for g, r in zip(groups, at, strict=True)])
    taken = table.take(pa.array(local, pa.int64()))
    return {name: taken.column(name).to_numpy(zero_copy_only=False) for name in columns}
