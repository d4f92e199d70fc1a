"""A record's answer from its scored pairs, as clustering judges a record joining a
cluster (:func:`decide`), and a person's decisions about pairs, held and applied
(:func:`held_decisions`, :func:`with_decisions`): what :class:`MatchIndex` answers with.

A candidate place takes a record when the best probability over the pairs blocking
proposed with its members reaches the threshold, their mean reaches the bar (the higher
same-source bar where the place already has a record of the record's source), enough of
its members were proposed, and none was scored clearly apart. A person's decision about
any member decides the place: a match takes the record whatever the scores, a
difference keeps it out.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Final

import numpy as np
import pyarrow.parquet as pq

from poiflow.schema import PAIR_RECORD_KEYS
from poiflow.serving.held_keys import ranges

if TYPE_CHECKING:
    from poiflow.serving.matching import MatchIndex

__all__ = ["Candidate", "Match", "decide", "held_decisions", "with_decisions"]

_RUNNERS_UP: Final = 3  # candidate places shown beside the answer


@dataclass(frozen=True, slots=True)
class Candidate:
    """A place a record was compared with.

    Attributes:
        place_id: The place.
        probability: The mean match probability over the pairs scored with its members.
        best: The highest of those probabilities.
        scored: How many of its members were scored (blocking proposed them).
        members: How many members it has (the record itself aside).
        passes: Whether it clears clustering's bars (it would take the record).
        decided: ``match`` when a person decided the record is one place with one of its
            members (it takes the record, whatever the scores), ``different`` when with
            one of its members another place (it cannot take it); else None.
    """

    place_id: str
    probability: float
    best: float
    scored: int
    members: int
    passes: bool
    decided: str | None = None


@dataclass(frozen=True, slots=True)
class Match:
    """The answer for one record: the place it joins (or None: a new place)."""

    source: str
    id: str
    place_id: str | None
    probability: float
    runner_up: Candidate | None
    candidates: list[Candidate] = field(default_factory=list)
    withheld: list[str] = field(default_factory=list)  # values normalization dropped
    new_place: str | None = None  # a new record's new place (see ``poiflow.serving.new_places``)

    @property
    def decision(self) -> str:
        """``"match"`` or ``"new"``."""
        return "new" if self.place_id is None else "match"


def held_decisions(folder: Path) -> dict[tuple[str, str], list[tuple[tuple[str, str], int]]]:
    """A person's decisions a run was given (its ``decisions.parquet``; none in an output
    of a poiflow before decisions), by each record's key: the other record, and 1 (one
    place) or -1 (different places). Those naming a record the run lacked are held too:
    that record may arrive now."""
    path = folder / "decisions.parquet"
    if not path.exists():
        return {}
    table = pq.read_table(path, columns=[*PAIR_RECORD_KEYS, "decision"]).to_pydict()
    held: dict[tuple[str, str], list[tuple[tuple[str, str], int]]] = {}
    for left_source, left_id, right_source, right_id, decision in zip(*table.values(), strict=True):
        said = 1 if decision == "match" else -1
        held.setdefault((left_source, left_id), []).append(((right_source, right_id), said))
        held.setdefault((right_source, right_id), []).append(((left_source, left_id), said))
    return held


def with_decisions(
    index: MatchIndex,
    sources: list[str],
    ids: list[str],
    twins: np.ndarray,
    query: np.ndarray,
    stored: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The candidate pairs with every pair a person decided among them (a held record
    decided with a query, compared even if blocking did not propose it), still each
    once and sorted by query, and each pair's decision (1 one place, -1 different
    places, 0 none)."""
    none = np.zeros(len(query), np.int8)
    if not index.decisions:
        return query, stored, none
    extra = [
        (i, held, said)
        for i, key in enumerate(zip(sources, ids, strict=True))
        if key in index.decisions
        for other, said in index.decisions[key]
        if (held := index.twin.get(other, -1)) >= 0 and index.alive[held] and held != twins[i]
    ]
    if not extra:
        return query, stored, none
    n = index.size
    at, rows, says = (np.array(c, dtype=np.int64) for c in zip(*extra, strict=True))
    pair = np.union1d(query * n + stored, at * n + rows)
    decided = np.zeros(len(pair), np.int8)
    decided[np.searchsorted(pair, at * n + rows)] = says
    return pair // n, pair % n, decided


def decide(
    index: MatchIndex,
    sources: list[str],
    ids: list[str],
    query: np.ndarray,
    rows: np.ndarray,
    probability: np.ndarray,
    twins: np.ndarray,
    said: np.ndarray,
) -> list[Match]:
    """Each query's answer from its scored pairs (``query``, ``rows``, ``probability``,
    sorted by query; ``said``: each pair's decision, if a person made one), as
    clustering judges a record joining a cluster.

    Every candidate place of every query is judged at once with numpy (a place's
    members are counted, not listed); only the few candidates of each query are then
    ordered and made objects in Python.
    """
    config = index.clustering
    place = index.place_of[rows]
    # Groups (query, place), pairs kept in their order within a group.
    order = np.lexsort((place, query))
    group_query, group_place, score = query[order], place[order], probability[order]
    decision = said[order]
    starts = (
        np.flatnonzero(
            np.r_[
                True,
                (group_query[1:] != group_query[:-1]) | (group_place[1:] != group_place[:-1]),
            ]
        )
        if len(order)
        else np.zeros(0, np.int64)
    )
    group_query, group_place = group_query[starts], group_place[starts]
    scored = np.diff(np.r_[starts, len(order)])
    if len(starts):
        mean = np.add.reduceat(score, starts) / scored
        best = np.maximum.reduceat(score, starts)
        low = np.minimum.reduceat(score, starts)
        # A decision about any member decides the place; a difference wins.
        decided = np.where(
            np.minimum.reduceat(decision, starts) < 0,
            -1,
            np.maximum.reduceat(decision, starts),
        )
    else:
        mean = best = low = np.zeros(0)
        decided = np.zeros(0, np.int8)
    # Members of each candidate place: alive ones, the query's own twin aside.
    by_place, place_start = index.membership()
    alive = index.alive[by_place]
    counted = np.r_[0, np.cumsum(alive)]
    members = counted[place_start[group_place + 1]] - counted[place_start[group_place]]
    twin = twins[group_query]
    own = twin >= 0
    twin_here = np.zeros(len(starts), dtype=bool)
    twin_here[own] = (index.place_of[twin[own]] == group_place[own]) & index.alive[twin[own]]
    members = members - twin_here
    # Whether a place has another record of the query's source (the higher bar): its
    # alive members of that source, counted, less the twin (of that source by its key).
    places, local = np.unique(group_place, return_inverse=True)
    size = place_start[places + 1] - place_start[places]
    member_rows = by_place[ranges(place_start[places], size)]
    owner = np.repeat(np.arange(len(places)), size)
    keep = index.alive[member_rows]
    # Counted as numbers: (candidate place, source code) of each alive member, and of
    # each group's query (a source the run never had is a code no member has).
    width = len(index.source_code) + 1
    held, count = np.unique(
        owner[keep] * width + index.source_of[member_rows[keep]], return_counts=True
    )
    codes = index.source_code
    query_code = np.array([codes.get(s, width - 1) for s in sources], dtype=np.int64)
    wanted = local * width + query_code[group_query]
    same_count = np.zeros(len(wanted), np.int64)
    if len(held):
        at = np.minimum(np.searchsorted(held, wanted), len(held) - 1)
        same_count = np.where(held[at] == wanted, count[at], 0)
    same_source = same_count - twin_here > 0
    bar = np.where(same_source, config.source_bar, config.threshold)
    passes = (
        (best >= config.threshold)
        & (mean >= bar)
        & (scored / np.maximum(1, members) >= config.min_coverage)
        & ~((members > 1) & (low < config.veto))
    )
    passes = (passes | (decided > 0)) & (decided >= 0)
    names = [str(n) for n in index.place_ids[group_place].tolist()]
    bounds = np.searchsorted(group_query, np.arange(len(sources) + 1)).tolist()
    # Ordered as plain tuples (a place decided for the record first, then passing
    # ones, then by mean, best, id); objects are made for the few shown only.
    order_keys = list(
        zip(
            (decided <= 0).tolist(),
            (~passes).tolist(),
            (-mean).tolist(),
            (-best).tolist(),
            names,
            strict=True,
        )
    )
    counts = (scored.tolist(), members.tolist())
    said_of = {1: "match", -1: "different"}
    verdicts = [said_of.get(d) for d in decided.tolist()]
    out = []
    for i, (source, record_id) in enumerate(zip(sources, ids, strict=True)):
        ranked = sorted(range(bounds[i], bounds[i + 1]), key=order_keys.__getitem__)
        found = [
            Candidate(
                names[g],
                -order_keys[g][2],
                -order_keys[g][3],
                counts[0][g],
                counts[1][g],
                not order_keys[g][1],
                verdicts[g],
            )
            for g in ranked[: _RUNNERS_UP + 1]
        ]
        chosen = found[0] if found and found[0].passes else None
        others = found[1:] if chosen is not None else found
        out.append(
            Match(
                source=source,
                id=record_id,
                place_id=chosen.place_id if chosen else None,
                probability=chosen.probability if chosen else 0.0,
                runner_up=others[0] if others else None,
                candidates=found[: _RUNNERS_UP + 1],
            )
        )
    return out
