"""Where a batch's upserted records go: matched against the places as they now are.

An edited record stays in its place while that place would still take it (unless a person
decided it is one place with a record of another), moves to the place that would
otherwise, or becomes a place of its own; a new record joins the best
place that passes, or starts a new one (:meth:`Placer.upsert`). Records of one place
edited in the same batch are matched in turns (:func:`turns`), each against what the turns
before it wrote, and records that started places in the batch are matched once more
against each other, so that two sources announcing one new place give one place.
:class:`~poiflow.streaming.state.StreamState` then merges every place touched.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np
import pyarrow as pa

from poiflow.conflate.ids import place_id_for
from poiflow.serving.matching import MatchIndex, pick_keys
from poiflow.streaming.links import Links

__all__ = ["Edited", "Placer", "Touch", "turns"]

Touch = Callable[[str, list[str]], None]
"""Told of each place an edit touched: its id and the ids of the edits."""


class Edited(Protocol):
    """What a batch's edits of one record come to, as placing reads it."""

    @property
    def key(self) -> tuple[str, str]: ...

    @property
    def edit_ids(self) -> list[str]: ...


class Placer:
    """Puts a batch's upserted records into the places of ``index``, and keeps their
    scores in ``links`` (what a place's confidence grows with)."""

    def __init__(self, index: MatchIndex, links: Links) -> None:
        self.index = index
        self.links = links

    def upsert(self, edits: Sequence[Edited], places: pa.Table, touch: Touch) -> None:
        """Match the upserted ``places`` (one row per edit of ``edits``) and put each
        record in its place; ``touch`` hears of every place that gained or lost one."""
        index = self.index
        begun = len(index.place_ids)  # places numbered from here on are this batch's
        keys = index.query_keys(places)  # made once: for matching, and for holding them
        scored = index.scored(places, keys)
        # Records edited together that were scored against each other's old versions
        # (two sources editing one place) are taken in turns, each turn matched against
        # what the turns before it wrote, as a run matches every record as it now is.
        twins = [index.twin.get(e.key) for e in edits]
        turn = turns(twins, [s[1] for s in scored], index.place_of)
        rows = np.zeros(len(edits), np.int64)
        chosen = [""] * len(edits)
        for t in range(max(turn, default=-1) + 1):
            now = [i for i, n in enumerate(turn) if n == t]
            part = places.take(pa.array(now))
            part_keys = pick_keys(keys, now)
            found = [scored[i] for i in now] if t == 0 else index.scored(part, part_keys)
            placed, added = self._place([edits[i] for i in now], part, found, touch, part_keys)
            for k, i in enumerate(now):
                rows[i], chosen[i] = added[k], placed[k]
        # Places begun in this batch: matched once more, now that the batch is in.
        fresh = [
            i
            for i, place in enumerate(chosen)
            if index.place_index[place] >= begun and len(index.members(place)) == 1
        ]
        if fresh:
            again = index.scored(places.take(pa.array(fresh)), pick_keys(keys, fresh))
            self._join_fresh(fresh, edits, again, rows, chosen)
        for edit, place in zip(edits, chosen, strict=True):
            touch(place, edit.edit_ids)

    def _place(
        self,
        edits: Sequence[Edited],
        places: pa.Table,
        scored: Sequence[Any],
        touch: Touch,
        keys: dict[str, np.ndarray],
    ) -> tuple[list[str], np.ndarray]:
        """Decide where each upserted record goes, and put it there: ``(places, rows)``."""
        index = self.index
        chosen: list[str] = []
        handover: list[tuple[int, str]] = []  # (row, place): members that leave their place
        for edit, (match, _, _) in zip(edits, scored, strict=True):
            twin = index.twin.get(edit.key)
            home = None if twin is None else str(index.place_ids[index.place_of[twin]])
            if home is not None:
                touch(home, edit.edit_ids)
            stays = next((c for c in match.candidates if c.place_id == home and c.passes), None)
            if match.candidates and match.candidates[0].decided == "match":
                place = match.candidates[0].place_id  # a person's decision, over staying
            elif stays is not None:
                place = stays.place_id
            elif match.place_id is not None:
                place = match.place_id
            elif home is not None and len(index.members(home)) == 1:
                place = home  # alone before, alone still
            else:
                place = self.index.fresh_place_id(*edit.key)
                if home is not None:
                    others = index.members(home)
                    others = others[others != twin]
                    other = index.keys_at(others[:1])[0]
                    if len(others) == 1 and edit.key < other:
                        # A pair split in two: as a run keeps a place's id, the part
                        # with the first record (by source, then id) keeps it.
                        handover.append((int(others[0]), self.index.fresh_place_id(*other)))
                        place = home
            chosen.append(place)
        twins = [index.twin.get(e.key) for e in edits]
        index.retire(np.array([t for t in twins if t is not None], dtype=np.int64))
        for row, place in handover:
            index.assign(np.array([row]), [place])
            touch(place, [])
        rows = index.add(places, chosen, keys)
        for edit, (_, against, probability) in zip(edits, scored, strict=True):
            self._link(edit.key, against, probability)
        return chosen, rows

    def _join_fresh(
        self,
        fresh: list[int],
        edits: Sequence[Edited],
        again: Sequence[Any],
        rows: np.ndarray,
        chosen: list[str],
    ) -> None:
        """Records that began places in this batch, matched against each other (``again``:
        their scores now that the batch is in): records that match join up (their place
        named as a run would name it, after the first record), and a record that now
        matches an older place joins it."""
        index = self.index
        group = {chosen[i]: chosen[i] for i in fresh}  # union-find over the new places

        def root(place: str) -> str:
            while group[place] != place:
                place = group[place]
            return place

        joins: dict[str, str] = {}  # a new place's group -> the older place it joins
        for k, (match, _, _) in enumerate(again):
            target = match.place_id
            if target is None:
                continue
            if target in group:
                a, b = root(chosen[fresh[k]]), root(target)
                group[max(a, b)] = min(a, b)
            else:
                joins.setdefault(chosen[fresh[k]], target)
        first: dict[str, tuple[str, str]] = {}
        for i in fresh:
            r = root(chosen[i])
            first[r] = min(first.get(r, edits[i].key), edits[i].key)
        for r, target in list(joins.items()):
            joins[root(r)] = target
        for i in fresh:
            r = root(chosen[i])
            target = joins.get(r) or place_id_for(*first[r])
            if target == chosen[i]:
                continue
            chosen[i] = target
            index.assign(rows[i : i + 1], [target])
        for k, i in enumerate(fresh):
            self._link(edits[i].key, again[k][1], again[k][2], keep=True)

    def _link(
        self, key: tuple[str, str], rows: np.ndarray, probability: np.ndarray, keep: bool = False
    ) -> None:
        """A record's links are now its scores against the records of ``rows``."""
        others = self.index.keys_at(rows)
        self.links.set(key, others, probability.tolist(), keep=keep)


def turns(
    twins: Sequence[int | None], against: Sequence[np.ndarray], place_of: np.ndarray
) -> list[int]:
    """A turn for each upsert: records of one place scored against each other's old
    versions never share one (a greedy colouring of that graph; records edited alone in
    their place, almost all of them, take turn 0)."""
    owner = {row: i for i, row in enumerate(twins) if row is not None}
    near: list[set[int]] = [set() for _ in twins]
    # Every upsert's scored rows at once: those in the place its record's old version is in.
    rows = np.concatenate([*against, np.zeros(0, np.int64)]).astype(np.int64)
    who = np.repeat(np.arange(len(against)), [len(r) for r in against])
    home = np.array([-1 if t is None else t for t in twins], dtype=np.int64)[who]
    same = (home >= 0) & (place_of[rows] == place_of[np.maximum(home, 0)])
    for i, row in zip(who[same].tolist(), rows[same].tolist(), strict=True):
        j = owner.get(row)
        if j is not None and j != i:
            near[i].add(j)
            near[j].add(i)
    turn: list[int] = []
    for i in range(len(twins)):
        taken = {turn[j] for j in near[i] if j < i}
        turn.append(next(t for t in range(len(twins) + 1) if t not in taken))
    return turn
