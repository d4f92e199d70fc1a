"""Matching served: requests answered together, whole files, answers as the API gives them.

:class:`MatchQueue` is what ``POST /match`` submits to: a worker thread matches every
request waiting at once (a call's fixed cost is shared), :func:`match_file` is what
``poiflow match`` runs over an input file (:func:`match` in Python), and :func:`answer_of` is a
:class:`~poiflow.serving.matching.Match` as JSON.
"""

from __future__ import annotations

import queue
import sys
import threading
from collections.abc import Mapping
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel, ConfigDict, Field

from poiflow.config import SourceMapping
from poiflow.conflate.features import FEATURE_COUNTS_SCHEMA, feature_counts
from poiflow.conflate.lookup import FeatureLookup
from poiflow.errors import ConfigError, InputError
from poiflow.schema import PLACE_SCHEMA
from poiflow.serving.matching import Candidate, Match, MatchIndex
from poiflow.serving.new_places import new_place_ids
from poiflow.sources import Source

__all__ = [
    "MATCHES_SCHEMA",
    "CandidateAnswer",
    "MatchAnswer",
    "MatchQueue",
    "MatchRefused",
    "MatchResult",
    "MatchResults",
    "answer_of",
    "match",
    "match_file",
]

MATCHES_SCHEMA: Final = pa.schema(
    [
        pa.field("source", pa.string()),
        pa.field("id", pa.string()),
        pa.field("decision", pa.string()),  # "match" or "new"
        pa.field("place_id", pa.string()),
        pa.field("new_place", pa.string()),  # a new record's new place (see MatchIndex)
        pa.field("probability", pa.float64()),
        pa.field("runner_up", pa.string()),
        pa.field("runner_up_probability", pa.float64()),
    ]
)


class MatchQueue:
    """Requests to match, answered together: a worker thread takes every request waiting
    (up to ``most`` records) and matches them in one go. Matching has a fixed cost per
    call (building a few small query plans) that a batch shares, so under load the server
    answers many requests for the price of a few, instead of falling behind.

    Args:
        index: What to match against.
        most: The most records matched in one go.
    """

    def __init__(self, index: MatchIndex, most: int = 1000) -> None:
        self.index = index
        self.most = most
        self._waiting: queue.SimpleQueue[
            tuple[list[Mapping[str, Any]], Future[list[Match | str]]] | None
        ]
        self._waiting = queue.SimpleQueue()
        self._closing = threading.Lock()
        self._closed = False
        threading.Thread(target=self._work, name="poiflow-match", daemon=True).start()

    def submit(self, objects: list[Mapping[str, Any]]) -> Future[list[Match | str]]:
        """Queue some places; the future holds what :meth:`MatchIndex.answers` would (once
        the queue is closed, they are answered here and now)."""
        future: Future[list[Match | str]] = Future()
        with self._closing:
            if not self._closed:
                self._waiting.put((objects, future))
                return future
        self._answer([(objects, future)])
        return future

    def close(self) -> None:
        """Stop the worker once the requests already queued are answered."""
        with self._closing:
            self._closed = True
            self._waiting.put(None)

    def _work(self) -> None:
        while True:
            first = self._waiting.get()
            if first is None:
                return
            taken = [first]
            count = len(taken[0][0])
            while count < self.most:
                try:
                    more = self._waiting.get_nowait()
                except queue.Empty:
                    break
                if more is None:  # closed: these last, then stop
                    self._waiting.put(None)
                    break
                taken.append(more)
                count += len(more[0])
            self._answer(taken)

    def _answer(
        self, taken: list[tuple[list[Mapping[str, Any]], Future[list[Match | str]]]]
    ) -> None:
        try:
            answers = self.index.answers(
                [o for objects, _ in taken for o in objects], [len(o) for o, _ in taken]
            )
        except Exception:  # one bad request must not fail the others: each on its own
            if len(taken) > 1:
                for one in taken:
                    self._answer([one])
                return
            taken[0][1].set_exception(sys.exc_info()[1] or RuntimeError("match failed"))
            return
        start = 0
        for objects, future in taken:
            future.set_result(answers[start : start + len(objects)])
            start += len(objects)


@dataclass(frozen=True, slots=True, repr=False)
class MatchResult:
    """What :func:`match` found for each record of an input.

    Attributes:
        matches: An answer per record that passed validation (``MATCHES_SCHEMA``): the
            place it is (``decision == "match"``) or ``"new"``, its probability, and the
            runner-up place; a new record's ``new_place``, shared with the other new
            records of the input that are one place with it.
        quarantine: The records held back and the values withheld, with their reasons
            (``QUARANTINE_SCHEMA``; ``scope`` says which).
    """

    matches: pa.Table
    quarantine: pa.Table

    def __repr__(self) -> str:
        return (
            f"MatchResult(matched={self.matched}, new={self.new}, "
            f"new_places={self.new_places}, held_back={self.held_back}, "
            f"withheld_values={self.withheld_values})"
        )

    @property
    def held_back(self) -> int:
        """How many records were held back, unanswered (invalid, or an id seen before)."""
        return _in_scope(self.quarantine, "record")

    @property
    def withheld_values(self) -> int:
        """How many values were withheld from records that were answered without them."""
        return _in_scope(self.quarantine, "field")

    @property
    def matched(self) -> int:
        """How many records are a place of the run."""
        return int(self.matches.column("decision").to_pylist().count("match"))

    @property
    def new(self) -> int:
        """How many records are no place of the run."""
        return int(self.matches.column("decision").to_pylist().count("new"))

    @property
    def new_places(self) -> int:
        """How many new places the new records make (records of one new place, from two
        sources say, share a ``new_place``)."""
        return len(set(self.matches.column("new_place").drop_null().to_pylist()))


def match(
    run: str | Path,
    records: str | Path | Source,
    *,
    mapping: SourceMapping | None = None,
    batch_size: int = 10_000,
) -> MatchResult:
    """Match records against the golden places of a run, as ``poiflow match`` and
    ``POST /match`` do: which place each one is, or that it is new.

    Args:
        run: A ``poiflow conflate`` or ``poiflow run`` output folder.
        records: An input of any kind ``ingest`` reads, or an opened source (a table in
            memory: ``poiflow.FrameSource(frame, "vendor")``).
        mapping: How a tabular file's columns map onto the flat place format.
        batch_size: Records matched at a time.

    Raises:
        poiflow.errors.ConfigError: ``batch_size`` below 1.
        poiflow.errors.InputError: The run's folder lacks what matching needs, or the
            records cannot be read, or there are none.

    Example:
        >>> result = poiflow.match("out/run", poiflow.FrameSource(new_feed, "vendor"))
        >>> result.matches.to_pandas().query("decision == 'match'")
    """
    if batch_size < 1:
        raise ConfigError(f"batch_size is {batch_size}: match 1 record or more at a time")
    index = MatchIndex(Path(run))
    found, held = match_file(index, records, mapping, batch_size)
    return MatchResult(found, held)


def match_file(
    index: MatchIndex,
    path: str | Path | Source,
    mapping: SourceMapping | None = None,
    batch_size: int = 10_000,
    progress: Any = None,
    grouping: Any = None,
) -> tuple[pa.Table, pa.Table]:
    """Match every record of an input (any kind ``ingest`` reads, or an opened source)
    against the run: ``(matches, quarantine)``, an answer per record that passed
    validation (``MATCHES_SCHEMA``) and the records held back with their reasons.

    Args:
        index: What to match against.
        path: The input.
        mapping: How a tabular file's columns map onto the flat place format.
        batch_size: Records matched at a time.
        progress: Called with how many records were read so far.
        grouping: Called with how many records are new, before their new places are
            found among them.

    Raises:
        poiflow.errors.InputError: The input cannot be read, its points look swapped, or
            it holds no record at all (an empty answer would look like a feed of new
            places only).
    """
    from poiflow.normalize.points import PointTally, SwapWatch
    from poiflow.pipeline.preparing import repeats_held_back
    from poiflow.quality import DuplicateIds
    from poiflow.schema import QUARANTINE_SCHEMA
    from poiflow.sources import open_inputs, refuse_unknown_inputs

    refuse_unknown_inputs([path], None)
    (source,) = open_inputs([path], mapping)
    batches: list[_Answered] = []
    held: list[pa.Table] = [QUARANTINE_SCHEMA.empty_table()]
    counted: list[pa.Table] = []  # the name statistics of the records the run lacks
    points, swapped = PointTally(), SwapWatch(source.path)
    # A repeated id is held back as ingest holds it: one answer an id.
    duplicates, kept = DuplicateIds(), []
    read = 0
    for batch in source.batches(batch_size):
        places, quarantine = index.prepare(batch, source.name)  # the run's stacks withheld
        places, quarantine, keep = repeats_held_back(places, quarantine, duplicates)
        kept.append(keep)
        points.add(places)
        swapped.add(places)
        # Features read the run's name statistics and the batch's own, as a run of them
        # all would (a chain's name counted once in a run of one source is rare there).
        counted.append(feature_counts(_not_in(index, places)))
        batches.append(_answered(index, places, index.features.plus(counted[-1])))
        held.append(quarantine)
        read += batch.records.num_rows + len(batch.rejected)
        if progress is not None:
            progress(read)
    if read == 0:  # a wrong file, or a feed cut short: not an empty answer
        raise InputError("no records to match: the input holds none", path=source.path)
    swapped.finish()
    stacks = points.stacks()
    if not stacks.is_empty():  # a geocoder's centres: answered again without them
        rows_at = points.rows_at(stacks)
        held.extend(
            _without_stacks(index, source, batch_size, stacks, rows_at, kept, counted, batches)
        )
    # New places among the new records of the whole input, not of each batch alone.
    news = [m for answered in batches for m in answered.news]
    if grouping is not None:
        grouping(len(news))
    matched = pa.concat_tables([MATCHES_SCHEMA.empty_table(), *(a.found for a in batches)])
    features = index.features.plus(
        pa.concat_tables([FEATURE_COUNTS_SCHEMA.empty_table(), *counted])
    )
    new = pa.concat_tables([PLACE_SCHEMA.empty_table(), *(a.new for a in batches)])
    named = new_place_ids(index, new, news, features)
    at, start = [np.empty(0, np.int64)], 0  # where the new records' answers are
    for answered in batches:
        at.append(start + answered.fresh)
        start += answered.found.num_rows
    new_place = np.full(matched.num_rows, None, dtype=object)
    new_place[np.concatenate(at)] = named
    column = MATCHES_SCHEMA.get_field_index("new_place")
    matched = matched.set_column(column, "new_place", pa.array(new_place, pa.string()))
    return matched, pa.concat_tables(held)


@dataclass(frozen=True, slots=True)
class _Answered:
    """A batch's answers: as rows (``MATCHES_SCHEMA``, no new places yet), and the records
    no place takes (``PLACE_SCHEMA``), their answers, and their rows among the batch's."""

    found: pa.Table
    new: pa.Table
    news: list[Match]
    fresh: np.ndarray


def _answered(index: MatchIndex, places: pa.Table, features: FeatureLookup) -> _Answered:
    """Match a batch of prepared records (``prepare_records``) with ``features``."""
    matches = index.match(places, features=features)
    fresh = [i for i, m in enumerate(matches) if m.place_id is None]
    return _Answered(
        found=pa.Table.from_pylist([_row(m) for m in matches], schema=MATCHES_SCHEMA),
        new=places.select(PLACE_SCHEMA.names).cast(PLACE_SCHEMA).take(pa.array(fresh, pa.int64())),
        news=[matches[i] for i in fresh],
        fresh=np.asarray(fresh, dtype=np.int64),
    )


def _without_stacks(
    index: MatchIndex,
    source: Source,
    batch_size: int,
    stacks: pl.DataFrame,
    at: list[np.ndarray],
    kept: list[np.ndarray],
    counted: list[pa.Table],
    batches: list[_Answered],
) -> list[pa.Table]:
    """Answer again, without their points, the records at a point of ``stacks`` (one that
    the input gives to many records of several streets, see ``poiflow.normalize.points``),
    as ingest withholds such a point: ``at`` holds their rows in each batch, ``kept`` the
    records of each that the first reading kept (not a repeated id). Returns the
    quarantine rows of the points withheld. The input is read a second time; each batch
    with such records is counted and matched again whole, since a name is counted in its
    area (the town's, no longer the geocoder's centre's), which its other records' names
    are counted in too."""
    from poiflow.normalize.points import withhold_points

    withheld: list[pa.Table] = []
    for k, (batch, rows) in enumerate(zip(source.batches(batch_size), at, strict=True)):
        if not len(rows):
            continue
        # Valid as the first time (any other record was held back then).
        places, _ = index.prepare(batch, source.name)
        places = places.filter(pa.array(kept[k]))
        places, quarantine = withhold_points(places, stacks)
        counted[k] = feature_counts(_not_in(index, places))
        batches[k] = _answered(index, places, index.features.plus(counted[k]))
        withheld.append(quarantine)
    return withheld


def _in_scope(quarantine: pa.Table, scope: str) -> int:
    """How many quarantine rows are of ``scope`` (``record`` or ``field``)."""
    return int(pc.sum(pc.equal(quarantine.column("scope"), scope)).as_py() or 0)


def _not_in(index: MatchIndex, places: pa.Table) -> pa.Table:
    """The records of ``places`` that the run does not hold (by source and id)."""
    keys = zip(places.column("source").to_pylist(), places.column("id").to_pylist(), strict=True)
    return places.filter(pa.array([key not in index.twin for key in keys], pa.bool_()))


def _row(match: Match) -> dict[str, Any]:
    """A match as a row of ``MATCHES_SCHEMA`` (its new place made later: None)."""
    runner_up = match.runner_up
    return {
        "source": match.source,
        "id": match.id,
        "decision": match.decision,
        "place_id": match.place_id,
        "new_place": None,
        "probability": match.probability,
        "runner_up": runner_up.place_id if runner_up else None,
        "runner_up_probability": runner_up.probability if runner_up else None,
    }


class CandidateAnswer(BaseModel):
    """A place a record was compared with (``POST /match``)."""

    model_config = ConfigDict(extra="forbid")

    place_id: str
    probability: float = Field(description="The mean match probability over its members scored.")
    best_pair: float = Field(description="The highest of those probabilities.")
    scored_members: int = Field(description="How many of its members blocking proposed.")
    members: int = Field(description="How many members it has (the record itself aside).")
    passes: bool = Field(description="Whether it clears clustering's bars (it would take it).")
    decided: Literal["match", "different"] | None = Field(
        description="A person's decision about the record and one of its members."
    )


class MatchAnswer(BaseModel):
    """Which golden place a record is, or that it is new (``POST /match``)."""

    model_config = ConfigDict(extra="forbid")

    source: str
    id: str
    decision: Literal["match", "new"]
    place_id: str | None = Field(description="The place it is; null when it is new.")
    probability: float = Field(description="The place's probability; 0 when it is new.")
    runner_up: CandidateAnswer | None
    new_place: str | None = Field(
        description="When it is new: the place it begins, shared with the records of the "
        "request that are one new place with it (named as a run would name it)."
    )
    candidates: list[CandidateAnswer] = Field(description="The places weighed, best first.")
    withheld: list[str] = Field(description="Values normalization dropped, and why.")


class MatchRefused(BaseModel):
    """A place of a list that validation refused (``POST /match``)."""

    model_config = ConfigDict(extra="forbid")

    index: int = Field(description="Its position in the list sent.")
    error: str


class MatchResults(BaseModel):
    """The answers to a list of places (``POST /match``), in the order sent."""

    model_config = ConfigDict(extra="forbid")

    results: list[MatchAnswer | MatchRefused]


def answer_of(match: Match) -> dict[str, Any]:
    """A match as the API returns it (a ``MatchAnswer``)."""

    def candidate(c: Candidate) -> dict[str, Any]:
        return {
            "place_id": c.place_id,
            "probability": round(c.probability, 6),
            "best_pair": round(c.best, 6),
            "scored_members": c.scored,
            "members": c.members,
            "passes": c.passes,
            "decided": c.decided,
        }

    return {
        "source": match.source,
        "id": match.id,
        "decision": match.decision,
        "place_id": match.place_id,
        "probability": round(match.probability, 6),
        "runner_up": candidate(match.runner_up) if match.runner_up else None,
        "new_place": match.new_place,
        "candidates": [candidate(c) for c in match.candidates],
        "withheld": match.withheld,
    }
