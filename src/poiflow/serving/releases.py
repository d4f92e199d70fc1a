"""What a server answers from: the golden places of an output folder held in memory
(:class:`Store`, the embedded store, with its search index and matcher as one
:class:`Release`), and :class:`Releases`, which takes up a later run of the output while
the server answers.

A later run is found by its ``run.json`` (written last by a run): when a run has written
it again, the new places, index and matcher are loaded beside the old ones and answer
from then on (a request in hand finishes on what it began with). One that cannot be
loaded is logged, and the last one goes on answering. An output in object storage is
answered from a local copy (``storage.fetch``), copied anew for a later run.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from poiflow.errors import InputError
from poiflow.schema import GOLDEN_PLACE_SCHEMA
from poiflow.serving.answers import MatchQueue
from poiflow.serving.matching import MatchIndex
from poiflow.serving.opensearch import OpenSearchIndex
from poiflow.serving.requests import Label
from poiflow.serving.review import ReviewQueue
from poiflow.serving.search import SearchIndex, output_index, places_file
from poiflow.storage import (
    TEMP_ROOT,
    fetch,
    file_stamp,
    is_remote,
    object_stamp,
    remove_fetched_before,
)

__all__ = ["Release", "Releases", "Store"]

_MEMBERS: Final = pa.schema(
    [("source", pa.string()), ("id", pa.string()), ("place_id", pa.string())]
)
_log = logging.getLogger(__name__)


class Store:
    """The golden places of an output folder, in memory, with its search index."""

    def __init__(self, folder: Path, search: SearchIndex | OpenSearchIndex | None = None) -> None:
        folder = Path(folder)
        table = pq.read_table(places_file(folder))
        # Every golden place column but the WKB geometry (lat and lon say the same).
        shown = [f.name for f in GOLDEN_PLACE_SCHEMA if f.name in table.column_names]
        self.places = table.select(shown).sort_by("id")
        # Sorted ids: a place is found by binary search, with no dictionary of them all.
        self.ids = self.places.column("id").to_numpy(zero_copy_only=False).astype(str)
        self.lat = self.places.column("lat").to_numpy(zero_copy_only=False).astype(float)
        self.lon = self.places.column("lon").to_numpy(zero_copy_only=False).astype(float)
        membership = folder / "membership.parquet"
        members = (
            pq.read_table(membership, columns=["source", "id", "place_id"])
            if membership.exists()
            else pa.table({"source": [], "id": [], "place_id": []}, schema=_MEMBERS)
        )
        self.members = members.sort_by("place_id")
        self.member_places = self.members.column("place_id").to_numpy(zero_copy_only=False)
        self.member_places = self.member_places.astype(str)
        self.record_keys = _record_keys(
            self.members.column("source"), self.members.column("id")
        ).combine_chunks()
        self.labels = folder / "labels.csv"
        self._writing = threading.Lock()
        # DIR's own index, built first where it has none or it is older than the places.
        self.search: SearchIndex | OpenSearchIndex = (
            search if search is not None else output_index(folder, build=True)
        )

    def __len__(self) -> int:
        return len(self.ids)

    def add_labels(self, labels: list[Label]) -> None:
        """Append review answers to the labels file, after checking that every record
        they name is one of the output's.

        Raises:
            InputError: A record is not known (nothing is written then).
        """
        from poiflow.conflate.active import append_labels

        for side in ("left", "right"):
            sources = pa.array([getattr(label, f"{side}_source") for label in labels])
            ids = pa.array([getattr(label, f"{side}_id") for label in labels])
            known = pc.is_in(_record_keys(sources, ids), value_set=self.record_keys)
            if not pc.all(known).as_py():
                i = pc.index(known, False).as_py()
                raise InputError(
                    f"label {i}: no record {ids[i].as_py()!r} of source {sources[i].as_py()!r} here"
                )
        answers = []
        for label in labels:
            pair = label.model_dump()
            if label.probability is not None:
                pair["match_probability"] = label.probability
            answers.append((pair, label.label, label.labeller))
        with self._writing:
            append_labels(self.labels, answers)

    def place(self, place_id: str) -> dict[str, Any] | None:
        """The golden place ``place_id`` with its member records, or None."""
        row = int(np.searchsorted(self.ids, place_id))
        if row == len(self.ids) or self.ids[row] != place_id:
            return None
        found: dict[str, Any] = self.places.slice(row, 1).to_pylist()[0]
        start = int(np.searchsorted(self.member_places, place_id, side="left"))
        end = int(np.searchsorted(self.member_places, place_id, side="right"))
        found["member_records"] = (
            self.members.slice(start, end - start).select(["source", "id"]).to_pylist()
        )
        return found

    def in_box(
        self, west: float, south: float, east: float, north: float, limit: int, offset: int
    ) -> tuple[int, list[dict[str, Any]]]:
        """How many places lie in the box, and the page ``offset:offset+limit`` of them (in
        id order). A box whose west edge is east of its east edge crosses the antimeridian."""
        with np.errstate(invalid="ignore"):  # places without coordinates are never inside
            across = (self.lon >= west) | (self.lon <= east) if west > east else None
            along = (self.lon >= west) & (self.lon <= east) if across is None else across
            inside = along & (self.lat >= south) & (self.lat <= north)
        rows = np.flatnonzero(inside)
        page = rows[offset : offset + limit]
        return len(rows), self.places.take(pa.array(page, pa.int64())).to_pylist()


@dataclass(frozen=True, slots=True)
class Release:
    """What the server answers from, as one run left the output folder.

    Attributes:
        store: The places and their search index.
        matching: The matcher of ``POST /match``; None where the folder cannot match
            (``unavailable`` says why).
        review: The review page's questions.
        stamp: ``run.json`` as it was when this was loaded (``storage.file_stamp``, or
            ``storage.object_stamp`` for an output in object storage).
        folder: The local folder it was loaded from (a copy, for object storage).
    """

    store: Store
    matching: MatchQueue | None
    unavailable: str
    review: ReviewQueue
    stamp: tuple[int, ...] | None
    folder: Path

    @classmethod
    def load(
        cls,
        folder: Path,
        search_server: OpenSearchIndex | None = None,
        stamp: tuple[int, ...] | None = None,
    ) -> Release:
        """The release in ``folder``; ``stamp`` is its ``run.json``'s, taken before it
        was read (by default, that of ``folder``'s own, taken now)."""
        if stamp is None:
            stamp = file_stamp(folder / "run.json")  # before reading: a run meanwhile is next
        store = Store(folder, search_server)
        matching: MatchQueue | None = None
        unavailable = ""
        try:
            matching = MatchQueue(MatchIndex(folder))
        except InputError as exc:  # the read endpoints still serve; /match says why not
            unavailable = str(exc)
        return cls(store, matching, unavailable, ReviewQueue(folder), stamp, folder)


class Releases:
    """The release a server answers from (``now``), and a watcher that loads a later run
    of the output when one has written its ``run.json`` (see the module). The output is a
    local folder, or a folder in object storage answered from a local copy under
    ``copies`` (by default in the system's temporary folder)."""

    def __init__(
        self,
        location: Path | str,
        search_server: OpenSearchIndex | None = None,
        copies: Path | None = None,
    ) -> None:
        self.location = location
        self.remote = is_remote(location)
        if self.remote and str(location).startswith(("http://", "https://")):
            raise InputError(
                "a web address is not served: name a folder, or one in object storage "
                "(s3://, hdfs://)",
                path=str(location),
            )
        key = hashlib.blake2b(str(location).encode(), digest_size=8).hexdigest()
        self.copies = (copies or TEMP_ROOT / "served") / key  # this output's copies alone
        self.search_server = search_server
        stamp = self._stamp()
        self.now = Release.load(self._local(), search_server, stamp)
        self._failed: tuple[int, ...] | None = None  # the run.json said to fail last
        self._unreachable = False  # said once, until it answers again
        self._stopping = threading.Event()

    def _stamp(self) -> tuple[int, ...] | None:
        if self.remote:
            return object_stamp(f"{str(self.location).rstrip('/')}/run.json")
        return file_stamp(Path(self.location) / "run.json")

    def _local(self) -> Path:
        """The folder to load: the output's own, or a copy of the one in object storage."""
        if self.remote:
            return fetch(str(self.location), self.copies)
        return Path(self.location)

    def take_up(self) -> bool:
        """Load the run that wrote ``run.json`` since the last look, if one did, and answer
        from it. Whether it did so. One that fails to load is tried again at the next look
        (another server process may have been building its search index), and said once;
        so is object storage that cannot be reached."""
        try:
            stamp = self._stamp()
        except InputError as exc:
            if not self._unreachable:
                self._unreachable = True
                _log.warning("cannot look for a later run: %s; serving the last", exc)
            return False
        self._unreachable = False
        if stamp is None or stamp == self.now.stamp:
            return False
        try:
            fresh = Release.load(self._local(), self.search_server, stamp)
        except Exception:  # the last release goes on answering
            if stamp != self._failed:
                self._failed = stamp
                _log.exception("cannot load the later run in %s; serving the last", self.location)
            return False
        old, self.now = self.now, fresh
        if old.matching is not None:
            old.matching.close()  # after the requests already queued
        if self.remote:  # the copies before the last go; the last may be in use yet
            remove_fetched_before(self.copies, old.folder)
        _log.warning("serving the later run in %s: %d places", self.location, len(fresh.store))
        return True

    def watch(self, every_s: float) -> threading.Thread:
        """Look for a later run every ``every_s`` seconds, on a thread of its own, until
        :meth:`stop`."""

        def loop() -> None:
            while not self._stopping.wait(every_s):
                self.take_up()

        thread = threading.Thread(target=loop, name="poiflow-releases", daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        self._stopping.set()


def _record_keys(sources: pa.Array | pa.ChunkedArray, ids: pa.Array | pa.ChunkedArray) -> Any:
    """One string per record, source and id joined by a separator neither can hold."""
    return pc.binary_join_element_wise(sources, ids, "\x1f")
