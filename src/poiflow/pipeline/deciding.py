"""A person's decision about two records or two places of a run (``poiflow decide``),
kept in the run's labels file, the one ``poiflow label`` writes and ``poiflow conflate
--decisions`` follows.

A place stands for its first record (by source, then id): a match of one record of each
of two places puts the two places in one (matches join through each other), and a
difference between them keeps those records, and the places that hold them, apart; an
``unsure`` takes a decision back (the last answer about a pair holds). A decision that
would make the file contradict itself is refused before it is written.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa

from poiflow.conflate.decisions import (
    ANSWERS,
    DECIDED_BY,
    Answer,
    append_label,
    decisions_of,
    read_answers,
)
from poiflow.errors import ConfigError, InputError
from poiflow.pipeline.outputs import (
    RecordName,
    name_text,
    output_path,
    pair_row,
    read_output,
    record_keys,
    record_name,
)
from poiflow.schema import PAIR_RECORD_KEYS, PAIR_SCORE_COLUMNS

__all__ = ["Decision", "decide", "pairs_to_ask", "questions"]


@dataclass(frozen=True, slots=True)
class Decision:
    """A decision written.

    Attributes:
        left, right: The two records decided about (``(source, id)``).
        label: ``match`` (one place), ``different`` (two), or ``unsure`` (the model's).
        labels: The labels file it was appended to.
        line: Its line there.
        together: Whether the run has the two records in one place.
        probability: The run's score of the pair (None: the run never compared them).
    """

    left: tuple[str, str]
    right: tuple[str, str]
    label: str
    labels: Path
    line: int
    together: bool
    probability: float | None

    @property
    def overrules(self) -> bool:
        """Whether the decision says otherwise than the run did."""
        return self.label != "unsure" and self.together != (self.label == "match")


def decide(
    folder: str | Path,
    first: RecordName,
    second: RecordName,
    *,
    label: Answer,
    labels: str | Path | None = None,
    labeller: str = "",
) -> Decision:
    """Decide that two records or places of the run in ``folder`` are one place
    (``match``), two (``different``), or leave them to the model again (``unsure``: the
    last answer about a pair is the one that holds), and append it to its labels file.

    Args:
        folder: An output folder of ``poiflow conflate`` or ``poiflow run``.
        first, second: Each a record (``SOURCE:ID``, or ``(source, id)`` as
            :func:`questions` gives its columns) or a place (its id).
        label: ``match``, ``different`` or ``unsure``.
        labels: The labels file (default: ``labels.csv`` in ``folder``).
        labeller: Who decided (kept with the decision).

    Raises:
        ConfigError: ``label`` is not one of ``match``, ``different`` and ``unsure``.
        InputError: A record or place is not in the run, the two are one record, or the
            file would contradict itself with the decision (nothing is written then).
    """
    if label not in ANSWERS:
        raise ConfigError(f"label '{label}' is not one of {', '.join(ANSWERS)}")
    first, second = record_name(first), record_name(second)
    folder = Path(folder)
    membership = pl.DataFrame(
        read_output(folder, "membership.parquet", ["source", "id", "place_id"])
    )
    sources = sorted(set(membership["source"].to_list()))
    (left, left_place), (right, right_place) = (
        _record_of(membership, text, sources, folder) for text in (first, second)
    )
    if left == right:
        raise InputError(f"'{name_text(first)}' and '{name_text(second)}' are one record: name two")
    path = Path(labels) if labels is not None else folder / "labels.csv"
    scored = pair_row(output_path(folder, "pairs.parquet"), (left, right))
    probability = None if scored is None else float(scored["match_probability"])
    pair = {
        "left_source": left[0],
        "left_id": left[1],
        "right_source": right[0],
        "right_id": right[1],
        "match_probability": probability,
    }
    # The file as it would be with the decision must still be one a run can follow.
    answers = read_answers(path, DECIDED_BY).select(*DECIDED_BY, "line")
    line = max(answers["line"].to_list(), default=1) + 1  # line 1 is the header
    new = pl.DataFrame({**{k: [str(pair[k])] for k in PAIR_RECORD_KEYS}, "label": [label]})
    try:
        decisions_of(
            pl.concat([answers, new.with_columns(pl.lit(line, pl.Int64).alias("line"))]), path
        )
    except InputError as exc:
        raise InputError(
            f"not written: {exc.message} (line {line} would be this decision)", path=path
        ) from None
    append_label(path, pair, label, labeller=labeller)
    return Decision(left, right, label, path, line, left_place == right_place, probability)


def _record_of(
    membership: pl.DataFrame, name: RecordName, sources: list[str], folder: Path
) -> tuple[tuple[str, str], str]:
    """The record ``name`` names (a place's first record, by source then id, or the
    record ``SOURCE:ID`` or ``(source, id)``) and its place."""
    if isinstance(name, str):
        place = membership.filter(pl.col("place_id") == name).sort("source", "id")
        if place.height:
            return (place["source"][0], place["id"][0]), name
        if ":" not in name:
            raise InputError(
                f"no place '{name}' in the run; name a place by its id, or a record as SOURCE:ID",
                path=folder / "membership.parquet",
            )
    for source, record_id in record_keys(name, sources):
        held = membership.filter((pl.col("source") == source) & (pl.col("id") == record_id))
        if held.height:
            return (source, record_id), held["place_id"][0]
    raise InputError(
        f"no record '{name_text(name)}' in the run", path=folder / "membership.parquet"
    )


_DESCRIBED = ("name", "category", "address", "phone", "website", "where", "updated")


def pairs_to_ask(
    folder: Path, count: int, labels: str | Path | None = None
) -> tuple[pl.DataFrame, pa.Table]:
    """The ``count`` pairs of the run in ``folder`` most worth asking about
    (``active.pick_pairs``; those answered in ``labels``, default ``labels.csv`` in
    ``folder``, left out), and the run's records that describe them: what ``poiflow
    label``, the review page and :func:`questions` ask.

    Raises:
        InputError: The folder lacks the run's pairs, membership or records.
    """
    from poiflow.conflate.active import pick_pairs, read_labels

    pairs = pl.DataFrame(read_output(folder, "pairs.parquet", list(PAIR_SCORE_COLUMNS)))
    membership = pl.DataFrame(
        read_output(folder, "membership.parquet", ["source", "id", "place_id"])
    )
    store = Path(labels) if labels is not None else folder / "labels.csv"
    chosen = pick_pairs(pairs, membership, count=count, labelled=read_labels(store))
    return chosen, read_output(folder, "records.parquet")


def questions(
    folder: str | Path, *, count: int = 20, labels: str | Path | None = None
) -> pl.DataFrame:
    """The pairs of the run in ``folder`` most worth a person's answer, most useful first,
    as ``poiflow label`` asks them (those already answered in the labels file left out):
    where clustering disagrees with the model, then where the model is least sure.

    Answer each with :func:`decide` (the same labels file): ``poiflow train --labels``
    learns from the answers, ``conflate(..., decisions=)`` keeps them.

    Args:
        folder: An output folder of ``poiflow conflate`` or ``poiflow run``.
        count: How many.
        labels: The labels file (default: ``labels.csv`` in ``folder``).

    Returns:
        One row a pair: both records' keys, ``match_probability``, ``same_place`` (whether
        the run put them in one place), ``reason`` (why it is asked), ``metres`` apart, and
        each record's ``name``, ``category``, ``address``, ``phone``, ``website``,
        ``where`` and ``updated`` as text (``left_name``, ``right_name``, ...).

    Raises:
        ConfigError: ``count`` is below 1.
        InputError: The folder lacks the run's pairs, membership or records.
    """
    if count < 1:
        raise ConfigError(f"count is {count}: ask for 1 pair or more")
    from poiflow.conflate.active import RecordCards, distance_m

    chosen, records = pairs_to_ask(Path(folder), count, labels)
    cards = RecordCards(records, chosen)
    described: dict[str, list[Any]] = {
        f"{s}_{f}": [] for s in ("left", "right") for f in _DESCRIBED
    }
    metres: list[float | None] = []
    for ls, li, rs, ri in chosen.select(*PAIR_RECORD_KEYS).iter_rows():
        for side, said in (("left", cards.describe(ls, li)), ("right", cards.describe(rs, ri))):
            for field in _DESCRIBED:
                described[f"{side}_{field}"].append(said.get(field, ""))
        apart = distance_m(cards.position(ls, li), cards.position(rs, ri))
        metres.append(None if apart is None else round(apart, 1))
    return chosen.select(
        *PAIR_RECORD_KEYS, "match_probability", "same_place", "reason"
    ).with_columns(
        pl.Series("metres", metres, dtype=pl.Float64),
        *(pl.Series(name, values, dtype=pl.String) for name, values in described.items()),
    )
