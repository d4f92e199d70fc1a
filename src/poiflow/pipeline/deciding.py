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

import math
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from poiflow.conflate.decisions import Answer, append_label, read_decisions
from poiflow.errors import InputError
from poiflow.pipeline.outputs import output_path, pair_row, read_output, record_keys

__all__ = ["Decision", "decide"]


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
    first: str,
    second: str,
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
        first, second: Each a record (``SOURCE:ID``) or a place (its id).
        label: ``match``, ``different`` or ``unsure``.
        labels: The labels file (default: ``labels.csv`` in ``folder``).
        labeller: Who decided (kept with the decision).

    Raises:
        InputError: A record or place is not in the run, the two are one record, or the
            file would contradict itself with the decision (nothing is written then).
    """
    folder = Path(folder)
    membership = pl.DataFrame(
        read_output(folder, "membership.parquet", ["source", "id", "place_id"])
    )
    sources = sorted(set(membership["source"].to_list()))
    left, right = (_record_of(membership, text, sources, folder) for text in (first, second))
    if left == right:
        raise InputError(f"'{first}' and '{second}' are one record: name two")
    path = Path(labels) if labels is not None else folder / "labels.csv"
    scored = pair_row(output_path(folder, "pairs.parquet"), (left, right))
    probability = None if scored is None else float(scored["match_probability"])
    pair = {
        "left_source": left[0],
        "left_id": left[1],
        "right_source": right[0],
        "right_id": right[1],
        "match_probability": math.nan if probability is None else probability,
    }
    _refuse_contradiction(path, pair, label)
    append_label(path, pair, label, labeller=labeller)
    with path.open(encoding="utf-8") as handle:
        line = sum(1 for _ in handle)
    place = dict(
        zip(
            zip(membership["source"], membership["id"], strict=True),
            membership["place_id"],
            strict=True,
        )
    )
    return Decision(left, right, label, path, line, place[left] == place[right], probability)


def _record_of(
    membership: pl.DataFrame, text: str, sources: list[str], folder: Path
) -> tuple[str, str]:
    """The record ``text`` names: a place's first record (by source, then id), or the
    record ``SOURCE:ID``."""
    place = membership.filter(pl.col("place_id") == text).sort("source", "id")
    if place.height:
        return place["source"][0], place["id"][0]
    if ":" not in text:
        raise InputError(
            f"no place '{text}' in the run; name a place by its id, or a record as SOURCE:ID",
            path=folder / "membership.parquet",
        )
    for source, record_id in record_keys(text, sources):
        held = membership.filter((pl.col("source") == source) & (pl.col("id") == record_id))
        if held.height:
            return source, record_id
    raise InputError(f"no record '{text}' in the run", path=folder / "membership.parquet")


def _refuse_contradiction(path: Path, pair: dict[str, object], label: Answer) -> None:
    """Refuse a decision with which the labels file would contradict itself."""
    with tempfile.TemporaryDirectory() as tmp:
        trial = Path(tmp) / "labels.csv"
        if path.exists():
            shutil.copyfile(path, trial)
        append_label(trial, pair, label)
        try:
            read_decisions(trial)
        except InputError as exc:
            with trial.open(encoding="utf-8") as handle:
                line = sum(1 for _ in handle)
            raise InputError(
                f"not written: {exc.message} (line {line} would be this decision)", path=path
            ) from None
