"""Matching quality against known truth: pairwise precision/recall/F1 and B-cubed."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Final

import polars as pl
import pyarrow as pa

from poiflow.errors import InputError, SchemaMismatchError

__all__ = [
    "Scores",
    "pairs_within_groups",
    "plurality",
    "read_gold",
    "score_membership",
    "with_pair_rows",
]


@dataclass(frozen=True, slots=True)
class Scores:
    """How a clustering compares with the truth.

    Pairwise scores count pairs of records put in one place; B-cubed scores average, per
    record, the share of its predicted place that truly belongs with it (precision) and
    of its true place that was found (recall).
    """

    records: int
    predicted_pairs: int
    true_pairs: int
    correct_pairs: int
    precision: float
    recall: float
    f1: float
    bcubed_precision: float
    bcubed_recall: float
    bcubed_f1: float
    unmatched_records: int

    def as_dict(self) -> dict[str, float | int]:
        """The scores as plain data."""
        return asdict(self)


_GOLD: Final = ("source", "id", "place")


def read_gold(path: str | Path) -> pl.DataFrame:
    """A truth file: CSV of ``source,id,place`` (which real place each record describes);
    a record listed twice in one place is kept once.

    Raises:
        InputError: The file cannot be read as CSV, a row lacks a value, or a record is
            listed in two places (the message gives the lines).
        SchemaMismatchError: A column is missing.
    """
    try:
        gold = pl.read_csv(
            path, schema_overrides={"source": pl.String, "id": pl.String, "place": pl.String}
        )
    except (OSError, pl.exceptions.PolarsError) as exc:
        raise InputError(f"cannot read the gold file ({exc})", path=path) from exc
    missing = set(_GOLD) - set(gold.columns)
    if missing:
        raise SchemaMismatchError(
            f"the gold file needs columns source, id, place; missing {', '.join(sorted(missing))}",
            path=path,
        )
    blank = pl.any_horizontal(pl.col(c).is_null() | pl.col(c).str.contains(r"^\s*$") for c in _GOLD)
    if gold.select(blank.any()).item():
        lined = gold.with_row_index("line", offset=2).filter(blank)
        first = lined.row(0, named=True)
        lacking = next(c for c in _GOLD if not (first[c] or "").strip())
        raise InputError(
            f"a row without its {lacking} ({lined.height} such row"
            f"{'s' if lined.height > 1 else ''}): each row names a record and its place; "
            "leave out a record whose place is not known",
            path=path,
            location=first["line"],
        )
    if gold.select(pl.struct("source", "id").is_duplicated().any()).item():  # seldom
        lined = gold.with_row_index("line", offset=2)
        twice = lined.filter(pl.col("place").n_unique().over("source", "id") > 1)
        if twice.height:
            first = twice.row(0, named=True)
            rows = twice.filter(
                (pl.col("source") == first["source"]) & (pl.col("id") == first["id"])
            )
            said = ", ".join(f"{p} (line {n})" for p, n in rows.select("place", "line").iter_rows())
            raise InputError(
                f"{first['source']}:{first['id']} is listed in more than one place: {said}; "
                "a record describes one place",
                path=path,
                location=first["line"],
            )
        gold = gold.unique(list(_GOLD), maintain_order=True)
    return gold


def pairs_within_groups(frame: pl.DataFrame, by: list[str]) -> int:
    """How many pairs of rows share ``by`` (a group of n rows holds n(n-1)/2)."""
    sizes = frame.group_by(by).len()["len"].cast(pl.Int64)
    return int((sizes * (sizes - 1) // 2).sum())


def with_pair_rows(
    pairs: pl.DataFrame, keys: pl.DataFrame, names: tuple[str, str] = ("left_row", "right_row")
) -> pl.DataFrame:
    """``pairs`` (``left_source, left_id, right_source, right_id``, ...) with the row of
    each of its records in ``keys`` (``row, source, id``), as columns ``names``; a pair
    with a record that ``keys`` lacks is dropped. The pairs stay in their order (what is
    made of them, a clustering or a held-out share, may depend on it)."""
    left, right = names
    return pairs.join(
        keys.rename({"row": left, "source": "left_source", "id": "left_id"}),
        on=["left_source", "left_id"],
        maintain_order="left",
    ).join(
        keys.rename({"row": right, "source": "right_source", "id": "right_id"}),
        on=["right_source", "right_id"],
        maintain_order="left",
    )


def plurality(rows: pl.DataFrame, of: str, by: str) -> pl.DataFrame:
    """``of, by``: for each value of ``of`` in ``rows``, the value of ``by`` that most of
    its rows have (ties: the least), ordered by ``of``. Each golden place's true place (the
    one most of its records describe), or each true place's place in a run."""
    return (
        rows.group_by(of, by)
        .len()
        .sort([of, "len", by], descending=[False, True, False])
        .group_by(of, maintain_order=True)
        .first()
        .select(of, by)
    )


def _f1(p: float, r: float) -> float:
    return 2 * p * r / (p + r) if p + r else 0.0


def score_membership(membership: pa.Table | pl.DataFrame, gold: pa.Table | pl.DataFrame) -> Scores:
    """Score ``membership`` (``source, id, place_id``) against ``gold`` (``source, id, place``).

    Only records present in both are scored; ``unmatched_records`` counts the gold records
    the membership lacks (quarantined, or never read).
    """
    predicted = pl.DataFrame(membership)
    truth = pl.DataFrame(gold)
    both = predicted.select("source", "id", "place_id").join(
        truth.select("source", "id", pl.col("place").cast(pl.String)), on=["source", "id"]
    )
    n = both.height
    if n == 0:
        return Scores(0, 0, 0, 0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, truth.height)

    predicted_pairs = pairs_within_groups(both, ["place_id"])
    true_pairs = pairs_within_groups(both, ["place"])
    correct = pairs_within_groups(both, ["place_id", "place"])
    precision = correct / predicted_pairs if predicted_pairs else 1.0
    recall = correct / true_pairs if true_pairs else 1.0

    cell = both.group_by("place_id", "place").len().rename({"len": "both"})
    sizes_p = both.group_by("place_id").len().rename({"len": "pred"})
    sizes_t = both.group_by("place").len().rename({"len": "true"})
    cells = cell.join(sizes_p, on="place_id").join(sizes_t, on="place")
    # Each record in a cell shares `both` records with its predicted and its true place.
    b_precision = float((cells["both"] ** 2 / cells["pred"]).sum()) / n
    b_recall = float((cells["both"] ** 2 / cells["true"]).sum()) / n
    return Scores(
        records=n,
        predicted_pairs=predicted_pairs,
        true_pairs=true_pairs,
        correct_pairs=correct,
        precision=round(precision, 6),
        recall=round(recall, 6),
        f1=round(_f1(precision, recall), 6),
        bcubed_precision=round(b_precision, 6),
        bcubed_recall=round(b_recall, 6),
        bcubed_f1=round(_f1(b_precision, b_recall), 6),
        unmatched_records=truth.height - n,
    )
