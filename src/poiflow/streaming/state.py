"""The golden places as edits change them: held in memory, written as snapshots.

A :class:`StreamState` starts from a run's output (or from its own latest snapshot) and
applies batches of edits (:meth:`StreamState.apply`):

1. A batch's edits of one record fold in the order they arrived (an upsert then a close:
   the upserted record, closed). An edit no later, by ``(time, edit_id)``, than what the
   record already has is stale, or a duplicate when it is the very same edit: either
   changes nothing. A deleted record keeps its last stamp (a tombstone), so a late upsert
   older than the delete does not bring it back.
2. Upserts are validated and normalized as ingest does (a refused record goes to the dead
   letters with ingest's reason), and a point the run withheld from their source as a
   geocoder's centre is withheld from them too; closes and deletes must name a record the
   state holds.
3. Each upserted record is matched with the run's own matcher against the places as they
   now are (:class:`~poiflow.serving.matching.MatchIndex`, which takes in every change):
   an edited record stays in its place while that place would still take it, moves to the
   place that would otherwise, or becomes a place of its own; a new record joins the best
   place that passes, or starts a new one. Records of one place edited in the same batch
   (two sources disagreeing) are matched in turns, each against the other's new version.
   Records that started places in this batch are matched once more against each other,
   so two sources announcing one new place in the same batch give one place
   (:mod:`poiflow.streaming.placing`).
4. Every place that gained, lost or changed a record is merged again with the batch's own
   rules (:func:`~poiflow.conflate.merge.merge_clusters`), and each one that changed gives
   a change event: ``created``, ``updated`` (with the changed attributes), ``closed`` (its
   status became ``permanently_closed``), ``merged`` (its records all went to another place,
   named in ``into``) or ``removed`` (its records were all deleted). Every event carries the
   ids of the edits that caused it.

:meth:`StreamState.save` writes the state as a snapshot folder, a complete output that
``poiflow serve`` and ``poiflow match`` read as they read a run's (records, membership,
places, the run's model and settings), plus ``stream.parquet`` (each record's last edit,
tombstones included), ``links.parquet`` (the match probabilities a place's confidence
grows with) and ``statistics.parquet`` (the run's records, linked: the matcher's word and
cell statistics stay the run's, so a restart decides as the stream would have) and
the run's ``quarantine.parquet`` (linked too: the points it withheld stay withheld). A
snapshot is made current atomically (:mod:`poiflow.streaming.snapshots`): a crash leaves
the previous one in force.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from poiflow._gc import paused_gc
from poiflow.conflate.ids import COMPARED_ATTRIBUTES, changed_attributes
from poiflow.conflate.merge import MergeConfig, merge_clusters
from poiflow.conflate.reliability import learn_sources, learned_of, with_learned
from poiflow.errors import ConfigError, InputError
from poiflow.schema import (
    FLAT_EXTRA_FIELDS,
    FLAT_FIELDS,
    GOLDEN_PLACE_SCHEMA,
    MEMBERSHIP_SCHEMA,
    PLACE_SCHEMA,
)
from poiflow.serving.matching import MODEL_FILE, STATISTICS_FILE, MatchIndex
from poiflow.sources import flat_records
from poiflow.storage import link_or_copy
from poiflow.streaming.edits import Edit
from poiflow.streaming.events import Change, Outcome
from poiflow.streaming.links import Links
from poiflow.streaming.placing import Placer
from poiflow.streaming.snapshots import (
    current_snapshot,
    publish_snapshot,
    read_stream,
    stream_table,
    write_tables,
)

__all__ = ["Change", "Outcome", "StreamState"]

CLOSED: Final = "permanently_closed"
_FIELDS: Final = frozenset((*FLAT_FIELDS, *FLAT_EXTRA_FIELDS))
_LINKS_FILE: Final = "links.parquet"
_LEARNED_FILE: Final = "sources.json"  # what the stream learned of each source at its start
# What an event compares of a place's old version (changed_attributes and membership).
_EVENT_COLUMNS: Final = ["id", *COMPARED_ATTRIBUTES, "lat", "lon", "members", "sources"]


@dataclass(slots=True)
class _Effect:
    """What a batch's edits of one record come to, folded in arrival order: ``upsert``
    (the prepared row ``row``, closed as of ``closed`` when a close followed it),
    ``close``, or ``delete``."""

    key: tuple[str, str]
    op: str = "keep"
    row: int = -1
    closed: datetime | None = None
    stamp: tuple[int, str] = (0, "")
    edit_ids: list[str] = field(default_factory=list)

    def take(self, edit: Edit, row: int | None) -> None:
        self.stamp = edit.stamp
        self.edit_ids.append(edit.edit_id)
        if edit.op == "upsert":
            self.op, self.row, self.closed = "upsert", -1 if row is None else row, None
        elif edit.op == "close":
            self.closed = edit.time
            if self.op != "upsert":
                self.op = "close"
        else:
            self.op, self.closed = "delete", None


def _same_run(snapshot: Path, output: Path) -> bool:
    """Whether ``snapshot`` grew from the run in ``output``: it keeps a copy of that run's
    ``run.json``, and every run writes its own (a run that reused every stage too: its
    timings differ)."""
    try:
        return (snapshot / "run.json").read_bytes() == (output / "run.json").read_bytes()
    except OSError:  # an output without one: the snapshots are all there is to go on
        return True


def _run_coverage(folder: Path) -> dict[str, Any]:
    """What the run in ``folder`` learnt of how much of the world each source covers
    (``run.json``'s ``place_coverage``; it needs the run's scored pairs): empty where it
    says nothing."""
    from poiflow.pipeline.outputs import read_run

    coverage = read_run(folder).get("place_coverage")
    return coverage if isinstance(coverage, dict) else {}


class StreamState:
    """The places, their records and each record's last edit.

    Args:
        folder: A run's output, or a snapshot this class wrote.
        merge: How attribute values are chosen (the pipeline's ``stages.merge``).
    """

    def __init__(self, folder: Path, merge: MergeConfig | None = None) -> None:
        self.folder = Path(folder)
        self.index = MatchIndex(self.folder)
        # What the places as they stand say of each source (as a run learns it from its
        # clusters): kept for the stream, so that a place merges as a run would, and in
        # each snapshot, so that a restart merges as the stream did.
        index = self.index
        kept = self.folder / _LEARNED_FILE
        if kept.exists():
            self.merge = with_learned(merge or MergeConfig(), json.loads(kept.read_text("utf-8")))
        else:
            self.merge = with_learned(
                learn_sources(
                    index.records, np.where(index.alive, index.place_of, -1), merge or MergeConfig()
                ),
                _run_coverage(self.folder),
            )
        self._learned_text: str | None = None
        if not (self.folder / "places.parquet").exists():
            raise InputError(f"{self.folder}: no places.parquet; it is not a run's output")
        # The places as the last checkpoint wrote them, and those changed since (None: gone),
        # so that a batch costs what it touches, not what the world holds.
        self._base = pq.read_table(
            self.folder / "places.parquet", columns=GOLDEN_PLACE_SCHEMA.names
        ).cast(GOLDEN_PLACE_SCHEMA)
        self._base_row = {place: i for i, place in enumerate(self._base["id"].to_pylist())}
        # A changed place is a row of the batch table that made it: at a checkpoint each
        # batch's rows are taken at once, not thousands of one-row tables joined.
        self._changed: dict[str, tuple[pa.Table, int] | None] = {}
        self.stamps: dict[tuple[str, str], tuple[int, str]] = {}
        self.deleted: set[tuple[str, str]] = set()
        # Match probabilities between records (those of each place, and those each edited
        # record was scored with): a record's strongest link within its place is what
        # clustering calls its best match, and what a place's confidence grows with.
        self.links = Links()
        self._load()
        # The snapshot a later run replaced, and what was carried from it (see ``open``).
        self.rebased: tuple[Path, Outcome] | None = None

    @classmethod
    def open(cls, start: Path, state: Path, merge: MergeConfig | None = None) -> StreamState:
        """The latest snapshot in ``state``, or the run output ``start`` when there is none.

        When ``start`` holds a later run than the one the snapshots grew from (a new
        release of the sources, run in the same output), the places start from that run,
        and the stream's own edits are carried onto it (:meth:`carry`): the snapshots'
        places would hide the run for good. ``rebased`` then says from which snapshot,
        and what was carried.
        """
        snapshot = current_snapshot(Path(state))
        if snapshot is None:
            return cls(Path(start), merge)
        if _same_run(snapshot, Path(start)):
            return cls(snapshot, merge)
        live = cls(Path(start), merge)
        live.rebased = (snapshot, live.carry(snapshot))
        return live

    def carry(self, snapshot: Path) -> Outcome:
        """Carry the stream's edits in ``snapshot`` (a snapshot of the stream over another
        run) onto these places: each record the stream edited, as its last edit left it,
        where that edit is later than this run's record (its ``update_time``; a record
        with none, or one this run lacks, takes the edit). Per record, the latest source
        time wins, as between edits. Records and places change as a batch of those
        edits would change them.
        """
        stamps, deleted = read_stream(snapshot / "stream.parquet")
        out = Outcome()
        if not stamps:
            return out
        index = self.index
        keys = sorted(stamps, key=lambda key: (stamps[key], key))  # in the edits' order
        held = [(key, row) for key in keys if (row := index.twin.get(key)) is not None]
        rows = np.array([row for _, row in held], dtype=np.int64)
        times = index.take(rows, ["update_time"]).column(0).cast(pa.int64()).to_pylist()
        run_time = dict(zip([key for key, _ in held], times, strict=True))  # ms, or None
        old = pq.read_table(snapshot / "records.parquet", columns=PLACE_SCHEMA.names)
        old = old.cast(PLACE_SCHEMA)
        old_row = {
            key: row
            for row, key in enumerate(
                zip(old.column("source").to_pylist(), old.column("id").to_pylist(), strict=True)
            )
        }
        todo: list[_Effect] = []
        taken: list[int] = []
        for key in keys:
            stamp = stamps[key]
            newer = run_time.get(key)
            if newer is not None and newer >= stamp[0]:
                out.counts["stale"] += 1  # the run's record is as new: it stays
                self.stamps[key] = stamp  # and a replay of that edit changes nothing
                continue
            if key in deleted:
                todo.append(_Effect(key, "delete", stamp=stamp, edit_ids=[stamp[1]]))
            elif key in old_row:
                todo.append(_Effect(key, "upsert", len(taken), stamp=stamp, edit_ids=[stamp[1]]))
                taken.append(old_row[key])
        self._take(todo, old.take(pa.array(taken, pa.int64())), out)
        return out

    # --- applying edits ---------------------------------------------------------------

    def apply(self, edits: Sequence[Edit]) -> Outcome:
        """Apply a batch of edits, in the order they arrived (see the module).

        Raises:
            ConfigError: ``edits`` is not a list of :class:`Edit` (a message is read
                into one by :func:`~poiflow.streaming.edits.parse_edit`).
        """
        if isinstance(edits, Edit):
            raise ConfigError("edits: give a list of edits, [edit], not one edit")
        edits = list(edits)
        for i, edit in enumerate(edits):
            if not isinstance(edit, Edit):
                raise ConfigError(
                    f"edits[{i}]: {type(edit).__name__}, not an Edit "
                    "(parse_edit reads a message into one)"
                )
        # The collector paused: a batch makes Python objects per edit, and the state holds
        # millions that a full collection would walk (see poiflow._gc).
        with paused_gc():
            return self._apply(edits)

    def _apply(self, edits: Sequence[Edit]) -> Outcome:
        out = Outcome()
        index = self.index
        prepared, row_of = self._prepare([e for e in edits if e.op == "upsert"], out)
        refused = {id(edit) for edit, _ in out.dead}
        effects: dict[tuple[str, str], _Effect] = {}
        for edit in edits:
            if id(edit) in refused:
                continue
            key = edit.record
            effect = effects.get(key)
            held = effect.stamp if effect is not None else self.stamps.get(key)
            if held is not None and edit.stamp <= held:
                out.counts["duplicate" if edit.stamp == held else "stale"] += 1
                continue
            exists = (
                effect.op in ("upsert", "close", "keep")
                if effect is not None
                else key in index.twin
            )
            if edit.op != "upsert" and not exists:
                out.dead.append((edit, f"{edit.op} of {edit.source}/{edit.id}: no such record"))
                continue
            if effect is None:
                effect = effects[key] = _Effect(key)
            else:
                out.counts["superseded"] += 1
            effect.take(edit, row_of.get(id(edit)))
        out.counts["dead"] += len(out.dead)
        self._take(list(effects.values()), prepared, out)
        return out

    def _take(self, todo: list[_Effect], prepared: pa.Table, out: Outcome) -> None:
        """Put the effects of a batch's edits into the places (``prepared``: the upserted
        records, by each effect's ``row``) and merge the places they touch again."""
        index = self.index
        touched: dict[str, list[str]] = {}  # place id -> edit ids

        def touch(place: str, edit_ids: list[str]) -> None:
            touched.setdefault(place, []).extend(edit_ids)

        # Deletes: the record leaves its place (one added and deleted in the batch leaves
        # only its tombstone).
        gone = [e for e in todo if e.op == "delete" and e.key in index.twin]
        for effect in gone:
            row = index.twin[effect.key]
            touch(str(index.place_ids[index.place_of[row]]), effect.edit_ids)
            self.links.drop(effect.key)
        index.retire(np.array([index.twin[e.key] for e in gone], dtype=np.int64))
        # Closes: the record stays where it is, closed as of the edit.
        closes = [e for e in todo if e.op == "close"]
        if closes:
            rows = np.array([index.twin[e.key] for e in closes], dtype=np.int64)
            places = [str(index.place_ids[index.place_of[r]]) for r in rows]
            closed = _closed(index.take(rows), [e.closed for e in closes])
            index.retire(rows)
            index.add(closed, places)
            for effect, place in zip(closes, places, strict=True):
                touch(place, effect.edit_ids)
        upserts = [e for e in todo if e.op == "upsert"]
        if upserts:
            table = prepared.take(pa.array([e.row for e in upserts], pa.int64()))
            then = [i for i, e in enumerate(upserts) if e.closed is not None]
            if then:  # upserted, then closed, in this batch
                closed = _closed(table.take(pa.array(then)), [upserts[i].closed for i in then])
                keep = np.setdiff1d(np.arange(len(upserts)), then)
                upserts = [upserts[i] for i in keep] + [upserts[i] for i in then]
                table = pa.concat_tables([table.take(pa.array(keep)), closed])
            Placer(index, self.links).upsert(upserts, table, touch)
        for effect in todo:
            self.stamps[effect.key] = effect.stamp
            if effect.op == "delete":
                self.deleted.add(effect.key)
            else:
                self.deleted.discard(effect.key)
        out.counts["applied"] += sum(len(e.edit_ids) for e in todo)
        self._remerge(touched, out)

    def _prepare(self, edits: list[Edit], out: Outcome) -> tuple[pa.Table, dict[int, int]]:
        """Validate and normalize upserts as ingest does: the records, and the row of each
        edit's (by ``id(edit)``); the refused go to ``out.dead``."""
        good: list[Edit] = []
        for edit in edits:
            unknown = sorted(set(edit.place) - _FIELDS)
            if unknown:
                out.dead.append((edit, f"place.{unknown[0]}: not a field of the flat place format"))
            elif edit.place.get("name") in (None, ""):
                out.dead.append((edit, "place.name: missing (an upsert needs the name)"))
            else:
                good.append(edit)
        if not good:
            return PLACE_SCHEMA.empty_table(), {}
        objects = []
        for edit in good:
            place = dict(edit.place)
            if place.get("update_time") in (None, ""):
                place["update_time"] = edit.time.isoformat()
            objects.append(place)
        origins = [f"edit[{i}]" for i in range(len(good))]
        # Prepared as the run prepared its records (its geocoder centres withheld too).
        places, quarantine = self.index.prepare(flat_records(objects, "stream", origins), "stream")
        for row in quarantine.to_pylist():
            at = int(row["origin"].removeprefix("edit[").removesuffix("]"))
            if row["scope"] == "record":
                out.dead.append((good[at], row["reason"]))
            else:
                out.counts["withheld_values"] += 1
        kept = [
            int(o.removeprefix("edit[").removesuffix("]")) for o in places["origin"].to_pylist()
        ]
        return places, {id(good[at]): row for row, at in enumerate(kept)}

    def _remerge(self, touched: dict[str, list[str]], out: Outcome) -> None:
        """Merge the touched places again; their change events (by place id), the places
        as they now are and the ids of those gone go into ``out``."""
        if not touched:
            return
        index = self.index
        ids = sorted(touched)
        member_rows = [index.members(p) for p in ids]
        rows = np.concatenate([*member_rows, np.zeros(0, np.int64)])
        labels = np.repeat(np.arange(len(ids)), [len(m) for m in member_rows])
        new_places = GOLDEN_PLACE_SCHEMA.empty_table()
        if len(rows):
            new_places, _ = merge_clusters(
                index.take(rows),
                labels,
                self.links.best(index.keys_at(rows), index.place_of[rows]),
                self.merge,
                dict(enumerate(ids)),
            )
        before = self._current(ids)
        after = {p["id"]: p for p in new_places.to_pylist()}
        for place in ids:
            self._changed[place] = None
        for i, place in enumerate(new_places.column("id").to_pylist()):
            self._changed[place] = (new_places, i)
        events = []
        for place in ids:
            old, new = before.get(place), after.get(place)
            edits = list(dict.fromkeys(touched[place]))
            if old is None and new is None:
                continue
            if old is None:
                events.append(Change(place, "created", [], edits, new))
            elif new is None:
                into = self._merged_into(old)
                change = "removed" if into is None else "merged"
                events.append(Change(place, change, [], edits, None, into))
            else:
                changed = changed_attributes(old, new)
                if old.get("members") != new.get("members") or old.get("sources") != new.get(
                    "sources"
                ):
                    changed.append("sources")
                if not changed:
                    continue
                kind = (
                    "closed"
                    if new.get("operating_status") == CLOSED
                    and old.get("operating_status") != CLOSED
                    else "updated"
                )
                events.append(Change(place, kind, changed, edits, new))
        out.events = events
        out.places = new_places
        out.removed = [place for place in ids if place in before and place not in after]

    @property
    def places(self) -> pa.Table:
        """The golden places as they now are, sorted by id."""
        if self._changed:
            base = self._base
            kept = base.filter(pc.invert(pc.is_in(base["id"], pa.array(list(self._changed)))))
            parts = [kept, *(table.take(pa.array(rows)) for table, rows in self._by_table())]
            self._base = pa.concat_tables(parts).sort_by("id").combine_chunks()
            self._base_row = {place: i for i, place in enumerate(self._base["id"].to_pylist())}
            self._changed = {}
        return self._base

    def _current(self, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """What an event compares of some places as they now are (absent: no such place)."""
        found: dict[str, dict[str, Any]] = {}
        rows = []
        for place in ids:
            if place not in self._changed and place in self._base_row:
                rows.append(self._base_row[place])
        parts = [(self._base, rows), *self._by_table(ids)]
        for table, at in parts:
            if at:
                for row in table.take(pa.array(at)).select(_EVENT_COLUMNS).to_pylist():
                    found[row["id"]] = row
        return found

    def _by_table(self, ids: Iterable[str] | None = None) -> list[tuple[pa.Table, list[int]]]:
        """The changed places (of ``ids``, or all) that are still there, as rows of the
        batch tables that hold them."""
        grouped: dict[int, tuple[pa.Table, list[int]]] = {}
        for place in self._changed if ids is None else ids:
            held = self._changed.get(place)
            if held is not None:
                grouped.setdefault(id(held[0]), (held[0], []))[1].append(held[1])
        return list(grouped.values())

    def _merged_into(self, old: dict[str, Any]) -> str | None:
        """Where the records of a place that has none left went (None: deleted)."""
        index = self.index
        for ref in old.get("sources") or []:
            row = index.twin.get((ref.get("dataset"), ref.get("record_id")))
            if row is not None:
                return str(index.place_ids[index.place_of[row]])
        return None

    # --- snapshots --------------------------------------------------------------------

    def save(self, state: Path, summary: dict[str, Any] | None = None) -> Path:
        """Write a snapshot into ``state`` and make it the current one; returns it
        (:func:`~poiflow.streaming.snapshots.publish_snapshot`).

        Raises:
            OutputError: The folder cannot be written (the previous snapshot stays current).
        """
        snapshot = publish_snapshot(Path(state), lambda folder: self._write(folder, summary or {}))
        self.folder = snapshot  # what the next snapshot copies the run's files from
        return snapshot

    def _write(self, folder: Path, summary: dict[str, Any]) -> None:
        folder.mkdir(parents=True)
        index = self.index
        alive = np.flatnonzero(index.alive[: index.size])
        records = index.take(alive)
        membership = pa.table(
            {
                "source": records.column("source"),
                "id": records.column("id"),
                "place_id": pa.array(index.place_ids[index.place_of[alive]].tolist(), pa.string()),
            },
            schema=MEMBERSHIP_SCHEMA,
        )
        alive_keys = zip(records["source"].to_pylist(), records["id"].to_pylist(), strict=True)
        tables = {
            "records.parquet": records,
            "membership.parquet": membership,
            "stream.parquet": stream_table(alive_keys, self.deleted, self.stamps),
            _LINKS_FILE: self.links.table(),
        }
        write_tables(folder, self.places, tables)
        for name in (MODEL_FILE, "run.json"):
            shutil.copyfile(self.folder / name, folder / name)
        # The records the matcher's statistics come from: the run's, for every snapshot.
        base = self.folder / STATISTICS_FILE
        if not base.exists():
            base = self.folder / "records.parquet"
        link_or_copy(base, folder / STATISTICS_FILE)
        # What the run held back, and the points it withheld (``MatchIndex.stacks``).
        if (self.folder / "quarantine.parquet").exists():
            link_or_copy(self.folder / "quarantine.parquet", folder / "quarantine.parquet")
        if self._learned_text is None:  # what was learnt at the start: the same each time
            self._learned_text = json.dumps(learned_of(self.merge), indent=2, sort_keys=True)
        (folder / _LEARNED_FILE).write_text(self._learned_text, "utf-8")
        (folder / "stream.json").write_text(
            json.dumps(
                {"written": datetime.now(UTC).isoformat(), **summary}, indent=2, default=str
            ),
            "utf-8",
        )

    def _load(self) -> None:
        """Each record's last edit and the links: from the snapshot, or from the run's
        scored pairs within each place."""
        stream = self.folder / "stream.parquet"
        if not stream.exists():
            index = self.index
            self.links = Links.within_places(
                self.folder / "pairs.parquet",
                index.keys_at(np.arange(index.size)),
                index.place_of[: index.size],
            )
            return
        self.stamps, self.deleted = read_stream(stream)
        self.links = Links.read(self.folder / _LINKS_FILE)


def _closed(records: pa.Table, times: Iterable[datetime | None]) -> pa.Table:
    """The records, closed for good as of the given times."""
    n = records.num_rows
    status = records.schema.get_field_index("operating_status")
    updated = records.schema.get_field_index("update_time")
    records = records.set_column(status, "operating_status", pa.array([CLOSED] * n, pa.string()))
    return records.set_column(
        updated,
        "update_time",
        pa.array(list(times), PLACE_SCHEMA.field("update_time").type),
    )
