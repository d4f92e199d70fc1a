"""Real-time matching: one new record (or a batch) against a run's golden places.

A record is matched the way the run matched its own records, with the run's own parts:

1. it is validated and normalized as ingest does (``prepare_records``; a request's few
   records as Python rows, ``prepare_rows``, which tests hold to the same result), and
   its point is withheld where the run withheld it from other records of its source (a
   geocoder's centre, see ``poiflow.normalize.points``);
2. its blocking keys are made with the run's blocking settings and the statistics of the
   run's records (which name words are rare), and looked up in the keys of the run's
   records, held in memory sorted by key: its candidates are the records that share a key
   with it, as they would have in the run;
3. the candidate pairs are scored with the run's own model (``model.json.gz`` in the
   output, the very file that scored the run), on features that read the run's name
   statistics;
4. each candidate place is judged as clustering judges a record joining a cluster: the
   mean probability over the pairs blocking proposed with the place's members must reach
   the threshold (the higher same-source bar when the place already has a record of the
   record's source), enough of those members must have been proposed, and none may have
   been scored clearly apart;
5. a person's decisions the run followed (``decisions.parquet``) hold here too: a record
   decided to be one place with a member of a place joins that place, whatever its
   scores (compared with that member even if blocking would not have), and a place with
   a member decided to be another place than the record cannot take it.

The best place that passes is the answer, with the runner-up; when none passes the record
is a new place. A record that is already in the run (same source and id) is never its own
evidence: it is matched against the others, as if it were arriving now.

Records of one request are matched each on its own against the run; those that no place
takes are then grouped into new places among themselves (:mod:`poiflow.serving.new_places`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, Final

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from poiflow.conflate import lookup
from poiflow.conflate.blocking import (
    common_words,
    key_counts,
    key_stats,
    open_to_unlocated,
    record_keys,
)
from poiflow.conflate.clustering import ClusterConfig, as_decided
from poiflow.conflate.features import (
    FEATURE_COLUMNS,
    RecordView,
    feature_counts,
    pair_features,
)
from poiflow.conflate.ids import place_id_for
from poiflow.conflate.keys import BLOCKING_COLUMNS, BlockingConfig
from poiflow.conflate.lookup import FeatureLookup, StatsLookup, few_pair_features
from poiflow.conflate.matcher import load_matcher
from poiflow.errors import InputError
from poiflow.normalize.points import KnownStacks
from poiflow.pipeline.preparing import prepare_records, prepare_rows
from poiflow.schema import PLACE_SCHEMA
from poiflow.serving.held_keys import HeldKeys
from poiflow.serving.verdicts import (
    Candidate,
    Match,
    decide,
    held_decisions,
    with_decisions,
)
from poiflow.sources import SourceBatch, flat_record_rows, flat_records

__all__ = [
    "MODEL_FILE",
    "STATISTICS_FILE",
    "Candidate",
    "Match",
    "MatchIndex",
    "pick_keys",
]

MODEL_FILE: Final = "model.json.gz"
STATISTICS_FILE: Final = "statistics.parquet"
_FEW_PAIRS: Final = 1024  # at most this many pairs take the plain-Python feature path
_PAIRS_AT_ONCE: Final = 1_000_000  # pairs whose features are held at once (about 200 MB)


def pick_keys(keys: Mapping[str, np.ndarray], picked: Sequence[int]) -> dict[str, np.ndarray]:
    """The key rows of some of the records ``keys`` were made for (``query_keys``), those
    records numbered from 0 in the order picked: the keys of ``places.take(picked)``."""
    picked_rows = np.asarray(picked, dtype=np.int64)
    size = max(int(keys["row"].max(initial=-1)), int(picked_rows.max(initial=-1))) + 1
    position = np.full(size, -1, dtype=np.int64)
    position[picked_rows] = np.arange(len(picked_rows))
    at = position[keys["row"]]
    kept = at >= 0
    return {**{c: v[kept] for c, v in keys.items()}, "row": at[kept]}


class MatchIndex:
    """What matching needs of a run's output, held in memory.

    Args:
        folder: A conflate/run output: ``records.parquet``, ``membership.parquet``,
            ``model.json.gz`` and ``run.json``.
        model: Another model file than the output's own (an output made before outputs
            carried their model: the model that made it).

    Raises:
        InputError: A file is missing or unreadable (the message says which and what to do).
    """

    def __init__(self, folder: Path, model: Path | None = None) -> None:
        folder = Path(folder)
        needed: tuple[str, ...] = ("records.parquet", "membership.parquet", "run.json")
        needed += (MODEL_FILE,) if model is None else ()
        missing = [name for name in needed if not (folder / name).exists()]
        if missing:
            raise InputError(
                f"cannot match against {folder}: no {', '.join(missing)}; it needs the "
                "output of 'poiflow conflate' or 'poiflow run' of this version (run it again)"
            )
        run = json.loads((folder / "run.json").read_text("utf-8"))
        settings = run.get("matching", {})
        self.blocking = BlockingConfig(**settings.get("block", {}))
        self.clustering = ClusterConfig(**settings.get("cluster", {}))
        self.matcher = load_matcher(model or folder / MODEL_FILE)
        # Compiled trees: a request's prediction costs half of LightGBM's per-call time.
        self.matcher.prepare()
        records = pq.read_table(folder / "records.parquet", columns=PLACE_SCHEMA.names).cast(
            PLACE_SCHEMA
        )
        # One chunk: taking a few rows from a table of many chunks costs a call per chunk.
        self.records = records.combine_chunks()
        n = records.num_rows
        self.size = n
        # Each record's place, as an index into the sorted place ids.
        membership = pl.DataFrame(
            pq.read_table(folder / "membership.parquet", columns=["source", "id", "place_id"])
        )
        placed = (
            pl.DataFrame(records.select(["source", "id"]))
            .with_row_index("row")
            .join(membership, on=["source", "id"], how="left")
            .sort("row")
        )
        if placed["place_id"].null_count():
            raise InputError(f"{folder}: membership.parquet lacks some records; re-run it")
        self.place_ids = np.asarray(placed["place_id"].unique().sort().to_list(), dtype=object)
        self.place_of = np.searchsorted(self.place_ids, placed["place_id"].to_numpy())
        self.sources = np.asarray(records.column("source").to_pylist(), dtype=object)
        # Each record's source as a number (``source_code``), for counting by source.
        self.source_code: dict[str, int] = {}
        self.source_of = self._source_numbers(self.sources.tolist())
        self.ids = np.asarray(records.column("id").to_pylist(), dtype=object)
        # Members of each place: rows sorted by place, and where each place starts.
        self._members_changed()
        self.twin = {
            key: row
            for row, key in enumerate(zip(self.sources.tolist(), self.ids.tolist(), strict=True))
        }
        # The statistics (which words are rare, which cells are localities) are those of
        # the run's records; a live output (see poiflow.streaming) keeps that run's records
        # beside its own, so that its answers do not drift as its records change.
        base = records
        if (folder / STATISTICS_FILE).exists():
            base = pq.read_table(folder / STATISTICS_FILE, columns=PLACE_SCHEMA.names)
            base = base.cast(PLACE_SCHEMA)
        self.features = FeatureLookup.of_counts(feature_counts(base))
        table = records.select(list(BLOCKING_COLUMNS)).append_column(
            "row", pa.array(np.arange(n, dtype=np.int64))
        )
        counted = base.select(list(BLOCKING_COLUMNS)).append_column(
            "row", pa.array(np.arange(base.num_rows, dtype=np.int64))
        )
        self.counts = key_counts(counted)  # what the keys' statistics are summed from
        self.common = common_words(self.counts, self.blocking)
        # Records without coordinates may be asked about, though the run had none.
        stats = open_to_unlocated(key_stats(self.counts, self.blocking))
        self.stats = StatsLookup(stats)
        held = record_keys(table, stats, self.blocking)
        self._key_schema = held.schema  # what keys made elsewhere are held as
        self.keys = HeldKeys.of(held)
        self.caps = np.array([self.blocking.cap(kind) for kind in range(8)])
        # What changed since the run (see ``add``, ``retire`` and ``assign``): records added
        # after it have their keys in ``added``, sorted runs looked up beside the run's;
        # a run as large as the one before it is merged with it (as a log-structured merge
        # tree does), so there are few of them and each key is re-sorted a few times only.
        self.place_index = {place: i for i, place in enumerate(self.place_ids.tolist())}
        self.alive = np.ones(n, dtype=bool)
        self.added: list[tuple[pl.DataFrame, HeldKeys]] = []
        self.decisions = held_decisions(folder)
        # The points the run took as a geocoder's centres: withheld from what is matched.
        self.stacks = _run_stacks(folder)

    def add(
        self,
        places: pa.Table,
        place_ids: Sequence[str],
        keys: Mapping[str, np.ndarray] | None = None,
    ) -> np.ndarray:
        """Take in records (``PLACE_SCHEMA``) as members of the given places (new place ids
        are created): later matches see them. A record already held under the same
        (source, id) must be retired first. Returns their rows.

        ``keys``: their blocking keys as ``query_keys`` made them when they were matched
        (``row`` numbering the records from 0), so that they are not made twice."""
        places = places.select(PLACE_SCHEMA.names).cast(PLACE_SCHEMA)
        start, count = self.size, places.num_rows
        rows = np.arange(start, start + count, dtype=np.int64)
        if count == 0:
            return rows
        self.records = pa.concat_tables([self.records, places])
        if self.records.column(0).num_chunks > 16:
            self.records = self.records.combine_chunks()
        self.size += count
        sources = places.column("source").to_pylist()
        ids = places.column("id").to_pylist()
        for row, key in zip(rows.tolist(), zip(sources, ids, strict=True), strict=True):
            self.twin[key] = row
        self.sources = np.concatenate([self.sources, np.asarray(sources, dtype=object)])
        self.source_of = np.concatenate([self.source_of, self._source_numbers(sources)])
        self.ids = np.concatenate([self.ids, np.asarray(ids, dtype=object)])
        self.alive = np.concatenate([self.alive, np.ones(count, dtype=bool)])
        self.place_of = np.concatenate([self.place_of, self._place_numbers(place_ids)])
        self._members_changed()
        if keys is None:
            table = places.select(list(BLOCKING_COLUMNS)).append_column("row", pa.array(rows))
            held = self.stats.record_keys(table, self.blocking)
        else:
            held = pl.DataFrame({**keys, "row": keys["row"] + start}, schema=self._key_schema)
        self.added.append((held, HeldKeys.of(held)))
        while len(self.added) > 1 and self.added[-1][0].height >= self.added[-2][0].height:
            merged = pl.concat([self.added[-2][0], self.added[-1][0]])
            self.added[-2:] = [(merged, HeldKeys.of(merged))]
        return rows

    def take(self, rows: np.ndarray, columns: Sequence[str] | None = None) -> pa.Table:
        """The records at ``rows``, in that order (only ``columns``, if given).

        Arrow's ``take`` on a table of several chunks with nested columns joins the chunks
        first, which costs the whole table on every call: a few rows are taken from each
        chunk on their own instead.
        """
        rows = np.asarray(rows, dtype=np.int64)
        records = self.records if columns is None else self.records.select(list(columns))
        batches = records.to_batches()
        if len(batches) <= 1 or len(rows) > self.size // 8:
            return records.take(pa.array(rows))
        starts = np.cumsum([0, *(b.num_rows for b in batches)])
        order = np.argsort(rows, kind="stable")
        ordered = rows[order]
        bounds = np.searchsorted(ordered, starts)
        parts = [
            batch.take(pa.array(ordered[bounds[k] : bounds[k + 1]] - starts[k]))
            for k, batch in enumerate(batches)
            if bounds[k + 1] > bounds[k]
        ]
        taken = pa.Table.from_batches(parts, schema=records.schema).combine_chunks()
        if np.all(order[1:] > order[:-1]):
            return taken
        return taken.take(pa.array(np.argsort(order)))

    def keys_at(self, rows: np.ndarray) -> list[tuple[str, str]]:
        """The ``(source, id)`` of the records at ``rows``."""
        return list(zip(self.sources[rows].tolist(), self.ids[rows].tolist(), strict=True))

    def retire(self, rows: np.ndarray) -> None:
        """Drop records (a deleted record, or the old version of an edited one): they are
        no longer candidates nor members."""
        self.alive[rows] = False
        rows = np.asarray(rows, dtype=np.int64)
        for key, row in zip(self.keys_at(rows), rows.tolist(), strict=True):
            if self.twin.get(key) == row:
                del self.twin[key]
        self._members_changed()

    def assign(self, rows: np.ndarray, place_ids: Sequence[str]) -> None:
        """Move records to other places (new place ids are created)."""
        self.place_of[rows] = self._place_numbers(place_ids)
        self._members_changed()

    def members(self, place_id: str) -> np.ndarray:
        """The rows of a place's records (empty for a place that has none left)."""
        place = self.place_index.get(place_id)
        if place is None:
            return np.zeros(0, np.int64)
        by_place, place_start = self.membership()
        members = by_place[place_start[place] : place_start[place + 1]]
        return np.asarray(members[self.alive[members]])

    def _place_numbers(self, place_ids: Sequence[str]) -> np.ndarray:
        fresh = [p for p in dict.fromkeys(place_ids) if p not in self.place_index]
        if fresh:
            for place in fresh:
                self.place_index[place] = len(self.place_index)
            self.place_ids = np.concatenate([self.place_ids, np.asarray(fresh, dtype=object)])
        return np.asarray([self.place_index[p] for p in place_ids], dtype=self.place_of.dtype)

    def _source_numbers(self, sources: Sequence[str]) -> np.ndarray:
        codes = self.source_code
        return np.asarray([codes.setdefault(s, len(codes)) for s in sources], dtype=np.int64)

    def _members_changed(self) -> None:
        self._by_place: tuple[np.ndarray, np.ndarray] | None = None

    @property
    def by_place(self) -> np.ndarray:
        """Rows sorted by place (see ``place_start``)."""
        return self.membership()[0]

    @property
    def place_start(self) -> np.ndarray:
        """Where each place's rows start in ``by_place``."""
        return self.membership()[1]

    def membership(self) -> tuple[np.ndarray, np.ndarray]:
        """``(by_place, place_start)``: rows sorted by place, and where each place starts."""
        if self._by_place is None:
            order = np.argsort(self.place_of, kind="stable")
            start = np.searchsorted(self.place_of[order], np.arange(len(self.place_ids) + 1))
            self._by_place = (order, start)
        return self._by_place

    def match_objects(
        self,
        objects: Sequence[Mapping[str, Any]],
        source: str = "request",
        requests: Sequence[int] = (),
    ) -> tuple[list[Match], list[tuple[int, str]]]:
        """Match places given in the flat place format (JSON-like objects).

        Args:
            objects: The places.
            source: The source of an object without a ``source`` field.
            requests: How many of the objects each request sent, in order, when they are
                several requests answered together: new places are found among the
                records of one request only (default: all are one request).

        Returns:
            ``(matches, refused)``: an answer for each object that passed validation, in
            order, and ``(index, reason)`` for each that did not.
        """
        origins = [f"request[{i}]" for i in range(len(objects))]
        places: pa.Table | list[dict[str, Any]]
        if len(objects) <= lookup.FEW_RECORDS:  # a request's few: rows, no Arrow call
            places, held = prepare_rows(flat_record_rows(objects, source, origins), source)
            held.extend(self.stacks.rows(places))
            placed = [p["origin"] for p in places]
        else:
            places, quarantine = self.prepare(flat_records(objects, source, origins), source)
            held, placed = quarantine.to_pylist(), places.column("origin").to_pylist()
        refused: list[tuple[int, str]] = []
        withheld: dict[str, list[str]] = {}
        for row in held:
            index = int(row["origin"].removeprefix("request[").removesuffix("]"))
            if row["scope"] == "record":
                refused.append((index, row["reason"]))
            else:
                withheld.setdefault(row["origin"], []).append(f"{row['field']}: {row['reason']}")
        from poiflow.serving.new_places import with_new_places

        matches = self.match(places)
        # Each answer's request: the request of the object it answers.
        ends = np.cumsum(requests or [len(objects)])
        asked = np.searchsorted(
            ends, [int(o.removeprefix("request[").removesuffix("]")) for o in placed], "right"
        )
        for request in np.unique(asked[[m.place_id is None for m in matches]]).tolist():
            at = np.flatnonzero(asked == request).tolist()
            part = (
                places.take(pa.array(at))
                if isinstance(places, pa.Table)
                else [places[i] for i in at]
            )
            grouped = with_new_places(self, part, [matches[i] for i in at])
            for i, match in zip(at, grouped, strict=True):
                matches[i] = match
        return [
            replace(m, withheld=withheld[origin]) if origin in withheld else m
            for m, origin in zip(matches, placed, strict=True)
        ], sorted(refused)

    def prepare(
        self, records: pa.Table | SourceBatch, source_name: str
    ) -> tuple[pa.Table, pa.Table]:
        """``prepare_records`` as the run prepared its own records: validated and
        normalized, and the points the run withheld from their source as a geocoder's
        centres withheld (``stacks``). ``(places, quarantine)``."""
        places, quarantine = prepare_records(records, source_name)
        places, stacked = self.stacks.table(places)
        if stacked.num_rows:
            quarantine = pa.concat_tables([quarantine, stacked])
        return places, quarantine

    def answers(
        self, objects: Sequence[Mapping[str, Any]], requests: Sequence[int] = ()
    ) -> list[Match | str]:
        """Match places in the flat place format: for each, in order, its match or the
        reason it was refused (``requests``: as ``match_objects`` takes them)."""
        found, refused = self.match_objects(objects, requests=requests)
        out: list[Match | str] = []
        matches = iter(found)
        reasons = dict(refused)
        for index in range(len(objects)):
            out.append(reasons[index] if index in reasons else next(matches))
        return out

    def match(
        self,
        places: pa.Table | Sequence[Mapping[str, Any]],
        features: FeatureLookup | None = None,
    ) -> list[Match]:
        """Match normalized records (``PLACE_SCHEMA``, as ``prepare_records`` makes them,
        or its rows, as ``prepare_rows`` does); ``features``: as ``scored`` takes them."""
        return [match for match, _, _ in self.scored(places, features=features)]

    def query_keys(self, places: pa.Table | Sequence[Mapping[str, Any]]) -> dict[str, np.ndarray]:
        """The blocking keys of records to match (a table or rows), by column, ``row``
        numbering the records from 0: what ``scored`` and ``add`` may be given."""
        return self._keys_of(*self.rows_or_table(places))

    def _keys_of(
        self, rows: Sequence[Mapping[str, Any]], table: pa.Table | None
    ) -> dict[str, np.ndarray]:
        """``query_keys`` of records already put as ``rows_or_table`` puts them."""
        if table is None:
            return self.stats.row_keys(rows, self.blocking)
        blocked = table.select(list(BLOCKING_COLUMNS)).append_column(
            "row", pa.array(np.arange(table.num_rows, dtype=np.int64))
        )
        found = self.stats.record_keys(blocked, self.blocking)
        return {c: found[c].to_numpy() for c in found.columns}

    @staticmethod
    def rows_or_table(
        places: pa.Table | Sequence[Mapping[str, Any]],
    ) -> tuple[Sequence[Mapping[str, Any]], pa.Table | None]:
        """A few records as rows (the plain-Python path), many as a table."""
        if not isinstance(places, pa.Table):
            return places, None
        if places.num_rows <= lookup.FEW_RECORDS:
            return places.select(PLACE_SCHEMA.names).to_pylist(), None
        return [], places.select(PLACE_SCHEMA.names).cast(PLACE_SCHEMA)

    def scored(
        self,
        places: pa.Table | Sequence[Mapping[str, Any]],
        keys: Mapping[str, np.ndarray] | None = None,
        features: FeatureLookup | None = None,
    ) -> list[tuple[Match, np.ndarray, np.ndarray]]:
        """Match normalized records (a table or rows), and say on what: for each, its
        match, the rows it was scored against and their match probabilities.

        A few records (a request's) are matched as rows in plain Python, many as tables
        with vectorized keys and features: both make the same keys and features (tests
        hold each pair of paths to it). ``keys``: theirs from ``query_keys``, if made.
        ``features``: the name statistics the features read (default: the run's; a
        feed's own counted too: ``self.features.plus(...)``)."""
        rows, table = self.rows_or_table(places)
        sources, ids = record_ids(rows, table)
        q = len(sources)
        if q == 0:
            return []
        n = self.size
        twins = np.array(
            [self.twin.get(key, -1) for key in zip(sources, ids, strict=True)], dtype=np.int64
        )
        if keys is None:
            keys = self._keys_of(rows, table)
        query, stored = self._candidates(keys, twins)
        query, stored, said = with_decisions(self, sources, ids, twins, query, stored)
        # Features over the queries and their candidates only, with the run's statistics.
        against, local = np.unique(stored, return_inverse=True)
        # Each pair in the run's orientation: the record of the lower row on the left (a
        # query stands where its twin stood, or after every record of the run).
        position = np.where(twins[query] >= 0, twins[query], n)
        left_first = position < against[local]
        a = np.where(left_first, query, q + local)
        b = np.where(left_first, q + local, query)
        probability = self.pair_probability(rows, table, against, a, b, features)
        stored = against[local]
        if said.any():  # a person's decisions over the model's scores, as clustering takes them
            probability = as_decided(probability, said)
        decided = decide(self, sources, ids, query, stored, probability, twins, said)
        # The pairs come sorted by query: each query's are one slice of them.
        bounds = np.searchsorted(query, np.arange(q + 1))
        return [
            (match, stored[bounds[i] : bounds[i + 1]], probability[bounds[i] : bounds[i + 1]])
            for i, match in enumerate(decided)
        ]

    def pair_probability(
        self,
        rows: Sequence[Mapping[str, Any]],
        table: pa.Table | None,
        against: np.ndarray,
        a: np.ndarray,
        b: np.ndarray,
        features: FeatureLookup | None = None,
    ) -> np.ndarray:
        """The run's model's match probability of each pair ``(a[i], b[i])`` of positions
        in the queries (``rows`` or ``table``, as ``rows_or_table`` puts them) followed by
        the held records at ``against``, its features reading ``features`` (default: the
        run's statistics)."""
        columns = list(FEATURE_COLUMNS)
        stats = self.features if features is None else features
        if len(a) == 0:
            return np.zeros(0)
        if len(a) <= _FEW_PAIRS:  # a request's few pairs: plain Python, no fixed cost
            head = rows if table is None else table.select(columns).to_pylist()
            compared = [*head, *self.take(against, columns).to_pylist()]
            return self.matcher.predict(few_pair_features(compared, a, b, stats)).astype(np.float64)
        if table is None:
            table = pa.Table.from_pylist(list(rows), schema=PLACE_SCHEMA)
        view_of = pa.concat_tables([table.select(columns), self.take(against, columns)])
        view = RecordView.of(view_of, stats.narrowed(view_of))
        # A file's new records may make millions of pairs: their features a slice at a time.
        return np.concatenate(
            [
                self.matcher.predict(
                    pair_features(view, a[i : i + _PAIRS_AT_ONCE], b[i : i + _PAIRS_AT_ONCE])
                ).astype(np.float64)
                for i in range(0, len(a), _PAIRS_AT_ONCE)
            ]
        )

    def fresh_place_id(self, source: str, record_id: str) -> str:
        """A new place's id: as a run would name it (after its first record), never one
        a place of other records holds."""
        base = candidate = place_id_for(source, record_id)
        twin = self.twin.get((source, record_id), -1)
        salt = 0
        while len(members := self.members(candidate)) and (members != twin).any():
            salt += 1
            candidate = f"{base}-{salt}"
        return candidate

    def _candidates(
        self, keys: Mapping[str, np.ndarray], twins: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """The candidate pairs of the queries (``keys``: their key rows, by column):
        ``(query index, stored row)``, each once, sorted by query."""
        n = self.size
        if len(keys["key"]) == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        found = [
            stored.lookup(keys, twins, self.caps)
            for stored in (self.keys, *(held for _, held in self.added))
        ]
        query = np.concatenate([f[0] for f in found])
        row = np.concatenate([f[1] for f in found])
        keep = self.alive[row]
        pair = np.unique(query[keep] * n + row[keep])
        return pair // n, pair % n


def record_ids(
    rows: Sequence[Mapping[str, Any]], table: pa.Table | None
) -> tuple[list[str], list[str]]:
    """The sources and ids of records put as ``MatchIndex.rows_or_table`` puts them."""
    if table is None:
        return [r["source"] for r in rows], [r["id"] for r in rows]
    return table.column("source").to_pylist(), table.column("id").to_pylist()


def _run_stacks(folder: Path) -> KnownStacks:
    """The points a run withheld as a geocoder's centres (its ``quarantine.parquet``'s;
    none where it has none)."""
    path = folder / "quarantine.parquet"
    if not path.exists():
        return KnownStacks.none()
    held = pq.read_table(path, columns=["source", "field", "reason", "original"])
    return KnownStacks.of_quarantine(held)
