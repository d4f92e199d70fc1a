"""A person's decisions about pairs of records, which conflation follows over the model.

A decisions file is a labels file, as ``poiflow label`` writes it (``LABEL_COLUMNS``; of
those, only the two records' keys and ``label`` are needed, so a file written by hand
has five columns): ``match`` puts the two records in one place whatever the model says,
``different`` keeps them in different places, ``unsure`` is left to the model. The last
answer about a pair wins, as in training.

Matches join through each other: a match of A and B and one of B and C put A, B and C
in one place, so a file that also says A and C are different contradicts itself. It is
refused, with the lines whose matches join the two.
"""

from __future__ import annotations

import csv
import math
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, Literal

import numpy as np
import polars as pl
import pyarrow as pa
from scipy import sparse
from scipy.sparse import csgraph

from poiflow.errors import InputError
from poiflow.schema import PAIR_RECORD_KEYS

__all__ = [
    "ANSWERS",
    "DECIDED_BY",
    "DECISIONS_SCHEMA",
    "LABEL_COLUMNS",
    "Answer",
    "Decided",
    "append_label",
    "append_labels",
    "apply_decisions",
    "decisions_of",
    "read_answers",
    "read_decisions",
]

Answer = Literal["match", "different", "unsure"]
ANSWERS: tuple[Answer, ...] = ("match", "different", "unsure")
LABEL_COLUMNS: Final = (
    *PAIR_RECORD_KEYS,
    "label",
    "probability",
    "labelled_at",
    "labeller",
)
"""The columns of a labels file (``poiflow label`` appends one row an answer)."""

DECISIONS_SCHEMA: Final = pa.schema(
    [
        *(pa.field(key, pa.string(), nullable=False) for key in PAIR_RECORD_KEYS),
        pa.field("decision", pa.string(), nullable=False),
        pa.field("in_run", pa.bool_(), nullable=False),
        pa.field("model_probability", pa.float64()),
        pa.field("line", pa.int64(), nullable=False),
    ],
    metadata={"poiflow.table": "decisions"},
)
"""``decisions.parquet`` of a run: each decision of the file, whether both its records were
in the run, what the model had scored the pair (null where it never compared them), and
its line in the file."""


def read_answers(path: str | Path, required: tuple[str, ...] = LABEL_COLUMNS) -> pl.DataFrame:
    """The answers of a labels file (empty if it does not exist yet), the last about a
    pair kept, with each one's ``line`` in the file.

    Raises:
        InputError: The file lacks a ``required`` column, or an answer is not one of
            ``ANSWERS`` (the error names its line).
    """
    path = Path(path)
    if not path.exists():
        return pl.DataFrame(schema=dict.fromkeys(required, pl.String) | {"line": pl.Int64})
    try:
        frame = pl.read_csv(path, infer_schema=False)
    except (pl.exceptions.ComputeError, pl.exceptions.NoDataError, OSError) as exc:
        raise InputError(f"not a labels file ({exc})", path=path) from exc
    missing = [c for c in required if c not in frame.columns]
    if missing:
        needs, columns = ", ".join(required), ", ".join(frame.columns) or "none"
        said = (
            f"it needs the columns {needs}; its columns are {columns}"
            if len(missing) == len(required)
            else f"it lacks {', '.join(missing)} (it needs {needs}; its columns: {columns})"
        )
        raise InputError(f"not a labels file: {said}", path=path)
    frame = frame.with_row_index("line", offset=2).with_columns(pl.col("line").cast(pl.Int64))
    _refuse_first(
        frame.filter(~pl.col("label").is_in(ANSWERS) | pl.col("label").is_null()),
        path,
        lambda row: f"label '{row['label']}' is not one of {', '.join(ANSWERS)}",
    )
    # The last answer about a pair wins (a person may change their mind).
    return frame.unique(PAIR_RECORD_KEYS, keep="last", maintain_order=True)


def append_label(
    path: str | Path,
    pair: Mapping[str, Any],
    label: Answer,
    *,
    labeller: str = "",
) -> None:
    """Add one answer to a labels file (created with its header), flushed at once."""
    append_labels(path, [(pair, label, labeller)])


def append_labels(
    path: str | Path, answers: Sequence[tuple[Mapping[str, Any], Answer, str]]
) -> None:
    """Add answers (each: the pair, the answer, who gave it) to a labels file (created
    with its header), in one write. A file of its own columns (a decisions file written by
    hand: the two records' keys and ``label``) is given each answer in those columns, so
    that it stays one table.

    Raises:
        ValueError: An answer is not one of ``ANSWERS`` (nothing is written): a file with
            one would be refused by every reader.
    """
    wrong = next((label for _, label, _ in answers if label not in ANSWERS), None)
    if wrong is not None:
        raise ValueError(f"label {wrong!r} is not one of {', '.join(ANSWERS)}")
    path = Path(path)
    header, ended = _header(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    now = datetime.now(UTC).isoformat(timespec="seconds")
    with path.open("a", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        if header is None:
            header = list(LABEL_COLUMNS)
            writer.writerow(header)
        elif not ended:  # a file written by hand may end without a line break
            handle.write("\r\n")
        for pair, label, labeller in answers:
            said = {
                **{k: pair[k] for k in PAIR_RECORD_KEYS},
                "label": label,
                "probability": _probability_text(pair.get("match_probability")),
                "labelled_at": now,
                "labeller": labeller,
            }
            writer.writerow([said.get(column, "") for column in header])


def _header(path: Path) -> tuple[list[str] | None, bool]:
    """A labels file's columns (None: no file, or an empty one), and whether its text
    ends with a line break."""
    if not path.exists() or path.stat().st_size == 0:
        return None, True
    with path.open(encoding="utf-8", newline="") as handle:
        header = next(csv.reader(handle), None)
    with path.open("rb") as handle:
        handle.seek(-1, 2)
        ended = handle.read(1) in (b"\n", b"\r")
    return ([c.strip().lstrip("\ufeff") for c in header] if header else None), ended


def _probability_text(probability: float | None) -> str:
    """The model's probability as a labels file writes it: blank for a pair it never
    scored (a decision about two records no key brought together)."""
    if probability is None or math.isnan(probability):
        return ""
    return f"{float(probability):.4f}"


def read_decisions(path: str | Path) -> pl.DataFrame:
    """The decisions of a labels file: ``PAIR_RECORD_KEYS``, ``decision`` (``match`` or
    ``different``; ``unsure`` answers are left out) and ``line``.

    Raises:
        InputError: The file does not exist, is not a labels file, pairs a record with
            itself or leaves a key empty, or contradicts itself (names the lines).
    """
    path = Path(path)
    if not path.is_file():
        raise InputError("the decisions file does not exist", path=path)
    return decisions_of(read_answers(path, DECIDED_BY), path)


DECIDED_BY: Final = (*PAIR_RECORD_KEYS, "label")
"""The columns of a labels file that a decision needs."""


def decisions_of(frame: pl.DataFrame, path: Path) -> pl.DataFrame:
    """The decisions the answers ``frame`` make (``DECIDED_BY`` and ``line``, as
    :func:`read_answers` gives them; a later row wins), as :func:`read_decisions`.

    Raises:
        InputError: As :func:`read_decisions` (naming ``path`` and the line).
    """
    # A pair is the same either way round: the last answer about it wins, whichever side
    # each record was on.
    source = pl.col("left_source").fill_null("") > pl.col("right_source").fill_null("")
    same = pl.col("left_source").fill_null("") == pl.col("right_source").fill_null("")
    swap = source | (same & (pl.col("left_id").fill_null("") > pl.col("right_id").fill_null("")))
    sides = {
        f"{side}_{part}": pl.when(swap)
        .then(pl.col(f"{other}_{part}"))
        .otherwise(pl.col(f"{side}_{part}"))
        for side, other in (("left", "right"), ("right", "left"))
        for part in ("source", "id")
    }
    frame = (
        frame.select(*PAIR_RECORD_KEYS, "label", "line")
        .with_columns(**sides)
        .unique(PAIR_RECORD_KEYS, keep="last")
        .sort("line")
        .filter(pl.col("label") != "unsure")
        .rename({"label": "decision"})
    )
    _refuse_first(
        frame.filter(pl.any_horizontal(pl.col(k).is_null() for k in PAIR_RECORD_KEYS)),
        path,
        lambda row: "a decision names a record without its source or id",
    )
    _refuse_first(
        frame.filter(
            (pl.col("left_source") == pl.col("right_source"))
            & (pl.col("left_id") == pl.col("right_id"))
        ),
        path,
        lambda row: f"a decision pairs {row['left_source']}:{row['left_id']} with itself",
    )
    _refuse_contradiction(frame, path)
    return frame


def _refuse_first(bad: pl.DataFrame, path: Path, says: Callable[[dict[str, Any]], str]) -> None:
    """Refuse the file at the line of ``bad``'s first row, if it has any, with what
    ``says`` of that row."""
    if bad.height:
        row = bad.row(0, named=True)
        raise InputError(says(row), path=path, location=row["line"])


def _refuse_contradiction(frame: pl.DataFrame, path: Path) -> None:
    """Refuse a ``different`` decision between two records that matches join."""
    # Each record a number; the groups the matches make, at once (a file may hold a whole
    # release's decisions); only a difference inside a group is looked at in Python.
    keyed = frame.with_columns(
        pl.concat_str("left_source", "left_id", separator="\x1f").alias("a"),
        pl.concat_str("right_source", "right_id", separator="\x1f").alias("b"),
    )
    ends = keyed.select(pl.concat_list("a", "b")).to_series().explode().to_numpy()
    names, codes = np.unique(ends, return_inverse=True)
    a, b = codes[0::2], codes[1::2]
    match = (keyed["decision"] == "match").to_numpy()
    graph = sparse.coo_matrix(
        (np.ones(int(match.sum())), (a[match], b[match])), shape=(len(names), len(names))
    )
    _, group = csgraph.connected_components(graph, directed=False)
    inside = np.flatnonzero(~match & (group[a] == group[b]))
    if not len(inside):
        return
    row = keyed.row(int(inside[0]), named=True)
    links: dict[tuple[str, str], list[tuple[tuple[str, str], int]]] = {}
    for r in keyed.filter(pl.col("decision") == "match").iter_rows(named=True):
        left, right = (r["left_source"], r["left_id"]), (r["right_source"], r["right_id"])
        links.setdefault(left, []).append((right, r["line"]))
        links.setdefault(right, []).append((left, r["line"]))
    first, second = (row["left_source"], row["left_id"]), (row["right_source"], row["right_id"])
    lines = _joining_lines(links, first, second) or []
    said = ", ".join(str(line) for line in lines)
    raise InputError(
        f"{first[0]}:{first[1]} and {second[0]}:{second[1]} are decided different, but the "
        f"matches of line{'s' if len(lines) > 1 else ''} {said} put them in one place; "
        "remove one of those decisions",
        path=path,
        location=row["line"],
    )


def _joining_lines(
    graph: dict[tuple[str, str], list[tuple[tuple[str, str], int]]],
    start: tuple[str, str],
    goal: tuple[str, str],
) -> list[int] | None:
    """The lines of the fewest matches that lead from ``start`` to ``goal`` (None: none)."""
    came: dict[tuple[str, str], tuple[tuple[str, str], int] | None] = {start: None}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        if node == goal:
            lines = []
            while (step := came[node]) is not None:
                node, line = step
                lines.append(line)
            return sorted(lines)
        for other, line in graph[node]:
            if other not in came:
                came[other] = (node, line)
                queue.append(other)
    return None


@dataclass(frozen=True, slots=True)
class Decided:
    """The scored pairs with a run's decisions in them.

    Attributes:
        left, right, probability: The scored pairs, then each decided pair that was
            never scored (its probability 1.0 for a match, 0.0 for different).
        decision: Per pair: 1 a person decided they are one place, -1 different places,
            0 the model's score stands.
        table: ``DECISIONS_SCHEMA``: each decision, and what became of it.
    """

    left: np.ndarray
    right: np.ndarray
    probability: np.ndarray
    decision: np.ndarray
    table: pa.Table

    def summary(self, threshold: float) -> dict[str, int]:
        """How many decisions the run followed, how many of them overruled the model (a
        match it scored below ``threshold`` or never compared, a different pair it scored
        at or above), and how many name a record that is not in the run."""
        frame = pl.DataFrame(self.table.select(["decision", "in_run", "model_probability"]))
        followed = frame.filter("in_run")
        score = pl.col("model_probability")
        overruled = followed.filter(
            pl.when(pl.col("decision") == "match")
            .then(score.is_null() | (score < threshold))
            .otherwise(score.fill_null(0.0) >= threshold)
        )
        return {
            "match": followed.filter(pl.col("decision") == "match").height,
            "different": followed.filter(pl.col("decision") == "different").height,
            "overruled": overruled.height,
            "not_in_run": frame.height - followed.height,
        }


def apply_decisions(
    records: pa.Table,
    left: np.ndarray,
    right: np.ndarray,
    probability: np.ndarray,
    decisions: pl.DataFrame,
) -> Decided:
    """Put ``decisions`` (as :func:`read_decisions` gives them) into the scored pairs.

    Args:
        records: The run's records' ``source`` and ``id``, in row order.
        left, right, probability: The scored pairs, as record rows.
        decisions: The decisions; those naming a record not in ``records`` are kept in
            the table, ``in_run`` false, and change nothing.
    """
    n = records.num_rows
    rows = pl.DataFrame(
        {"source": records.column("source"), "id": records.column("id")}
    ).with_row_index("row")
    located = decisions.join(
        rows.rename({"source": "left_source", "id": "left_id", "row": "left_row"}),
        on=["left_source", "left_id"],
        how="left",
    ).join(
        rows.rename({"source": "right_source", "id": "right_id", "row": "right_row"}),
        on=["right_source", "right_id"],
        how="left",
    )
    in_run = located["left_row"].is_not_null() & located["right_row"].is_not_null()
    a = located["left_row"].fill_null(0).to_numpy().astype(np.int64)
    b = located["right_row"].fill_null(0).to_numpy().astype(np.int64)
    wanted = np.minimum(a, b) * n + np.maximum(a, b)
    pair_keys = np.minimum(left, right).astype(np.int64) * n + np.maximum(left, right)
    order = np.argsort(pair_keys, kind="stable")
    at = np.searchsorted(pair_keys[order], wanted)
    found = in_run.to_numpy() & (at < len(order))
    found[found] = pair_keys[order[at[found]]] == wanted[found]
    scored_at = np.where(found, order[np.minimum(at, len(order) - 1)], -1)
    said = np.where(located["decision"].to_numpy() == "match", 1, -1).astype(np.int8)
    decision = np.zeros(len(left), dtype=np.int8)
    decision[scored_at[found]] = said[found]
    new = in_run.to_numpy() & ~found
    model = np.full(len(located), np.nan)
    model[found] = probability[scored_at[found]]
    table = pa.table(
        {
            **{key: located[key].to_arrow() for key in PAIR_RECORD_KEYS},
            "decision": located["decision"].to_arrow(),
            "in_run": in_run.to_arrow(),
            "model_probability": pa.array(model, pa.float64(), mask=np.isnan(model)),
            "line": located["line"].to_arrow(),
        }
    ).cast(DECISIONS_SCHEMA)
    return Decided(
        np.concatenate([left, np.minimum(a, b)[new]]).astype(np.int64),
        np.concatenate([right, np.maximum(a, b)[new]]).astype(np.int64),
        np.concatenate([probability, (said[new] > 0).astype(np.float64)]),
        np.concatenate([decision, said[new]]),
        table,
    )
