"""Search the golden places: the embedded index (Tantivy), built from ``places.parquet``.

Names (primary and alternates), brand, categories and address are indexed as folded words
(``poiflow.text.fold``: every script transliterated to ASCII, accents and case dropped), so
"Москва", "moskva" and "MOSKVA" find the same place. A query is cut into the same words;
each word matches exactly (scored by BM25: a rare word counts for more) or within a few
typos (one from four letters, two from eight), and the last word also as the start of a
word, for autocomplete ("kahv" finds "Kahvila"). Results are ranked as
``poiflow.serving.ranking`` says (text relevance, the name's likeness to the query, the
place's confidence and, given a point, the distance to it). Given a point, the text
matches nearest to it are ranked too, not only the best ones of the whole index.

A category filter keeps places whose primary or alternate category is the one given; an
``open_at`` filter the places open then (see ``poiflow.serving.opening``: each document
lists the hours of the week its place can be open, and what passes is checked exactly).
"""

from __future__ import annotations

import contextlib
import glob
import math
import os
import shutil
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import pyarrow as pa
import pyarrow.parquet as pq

from poiflow.errors import InputError, OutputError
from poiflow.serving.opening import When
from poiflow.serving.ranking import (
    EARTH_KM,
    KM_PER_DEGREE,
    STARTS_BOOST,
    TEXT_FIELDS,
    TYPO_BOOST,
    Hit,
    candidates_wanted,
    check_query,
    gather,
    near_wanted,
    rank_matches,
    search_documents,
    word_typos,
)
from poiflow.storage import clear_stale, file_stamp

if TYPE_CHECKING:
    import tantivy

__all__ = [
    "SEARCH_FOLDER",
    "Hit",
    "SearchIndex",
    "build_search_index",
    "output_index",
    "places_file",
]

SEARCH_FOLDER: Final = "search"
"""Where an output folder's embedded index is (``DIR/search``)."""
_MARKER: Final = "poiflow-index.txt"  # the index's version; the places it was built from
_NONE: Final = "no search index here"

_STORED_ONLY: Final = ("id", "display", "primary_category", "opening_hours")
_INDEX_VERSION: Final = "4"  # bumped when the fields or the marker change: built again
_BATCH: Final = 10_000
# Places near a point, with no words: boxes around it, from this half-width, doubling.
_FIRST_BOX_KM: Final = 0.5


def places_file(folder: Path) -> Path:
    """The golden places of the conflate/run output ``folder``.

    Raises:
        InputError: ``folder`` is not such an output.
    """
    path = Path(folder) / "places.parquet"
    if not path.exists():
        raise InputError(
            "no places.parquet here: is it a conflate or run output?", path=str(folder)
        )
    return path


def build_search_index(places: Path | pa.Table, folder: Path) -> SearchIndex:
    """Index the golden places (a ``places.parquet`` or its table) into ``folder``.

    The index is written beside ``folder`` and moved into place when complete: a reader
    never opens a half-built index, and a failed build leaves the old one. Built from a
    file, it records which (its size, time and hash), so that :func:`output_index` can
    tell when a later run has changed it.

    Raises:
        InputError: ``places`` is not a golden places table.
    """
    table = pq.read_table(places) if isinstance(places, Path) else places
    missing = {"id", "names", "categories", "lat", "lon"} - set(table.column_names)
    if missing:
        raise InputError(
            f"not a golden places table: no {', '.join(sorted(missing))} column",
            path=str(places) if isinstance(places, Path) else None,
        )
    import tantivy

    folder = Path(folder)
    partial = folder.with_name(f".{folder.name}.building-{os.getpid()}")
    for left in ("building", "old"):  # what a build killed outright left beside it
        clear_stale(folder.parent, f".{glob.escape(folder.name)}.{left}-*")
    shutil.rmtree(partial, ignore_errors=True)
    try:
        partial.mkdir(parents=True)
    except OSError as exc:
        raise OutputError(
            f"cannot write the search index: {exc.strerror}", path=str(folder)
        ) from exc
    index = writer = None
    try:
        index = tantivy.Index(_schema(), path=str(partial))
        writer = index.writer(heap_size=128 * 1024 * 1024, num_threads=1)
        since = datetime.now(UTC)
        for batch in table.to_batches(_BATCH):
            for document in search_documents(batch.to_pylist(), since=since):
                writer.add_document(tantivy.Document(**document))
        writer.commit()
        writer.wait_merging_threads()
        stamp = [_stamp(places, fingerprint=True)] if isinstance(places, Path) else []
        (partial / _MARKER).write_text("\n".join([_INDEX_VERSION, *stamp]) + "\n", "utf-8")
    except BaseException:
        # Let go of the writer first: its threads would go on writing into the folder.
        index = writer = None
        shutil.rmtree(partial, ignore_errors=True)
        raise
    old = folder.with_name(f".{folder.name}.old-{os.getpid()}")
    if folder.exists():
        folder.rename(old)
    partial.rename(folder)
    shutil.rmtree(old, ignore_errors=True)
    return SearchIndex(folder)


def output_index(output: Path, *, build: bool = False, rebuild: bool = False) -> SearchIndex:
    """The embedded search index of the conflate/run output ``output`` (``DIR/search``),
    as current as its places. One that is missing, of another poiflow version, or built
    from other places than ``DIR/places.parquet`` holds now (a later run wrote them) is
    built anew with ``build``, and refused without it: its answers would name places
    that are gone, and miss the new ones. ``rebuild``: built anew whatever it is.

    One process at a time builds a folder's index (a lock file beside it): the
    processes of a server that all find it old build it once, the others then open it.
    An index shipped without its places (``DIR/search`` alone) has nothing to be checked
    against, and answers as it is.

    Raises:
        InputError: ``output`` has no index, or (with ``build``) no places; or, without
            ``build``, its index is not current (the message says why, and the command
            that builds it).
    """
    index = Path(output) / SEARCH_FOLDER
    places = Path(output) / "places.parquet"
    if not places.exists():
        if build or rebuild:
            places_file(output)  # says it is no conflate or run output
        return SearchIndex(index)
    if not rebuild:
        why = _not_current(index, places)
        if why is None:
            return SearchIndex(index)
        if not build:
            remedy = "build one" if why == _NONE else "build it again"
            message = f"{why}: {remedy} with `poiflow publish search {output}`"
            raise InputError(message, path=str(index))
    with _one_builder(index):
        if not rebuild and _not_current(index, places) is None:  # another built it meanwhile
            return SearchIndex(index)
        return build_search_index(places, index)


@contextmanager
def _one_builder(index: Path) -> Iterator[None]:
    """Held by one process (or open file) at a time for the index in ``index``: an
    advisory lock on a hidden file beside it."""
    import fcntl

    try:
        handle = index.with_name(f".{index.name}.lock").open("a")
    except OSError as exc:
        raise OutputError(
            f"cannot write the search index: {exc.strerror}", path=str(index)
        ) from exc
    with handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _not_current(index: Path, places: Path) -> str | None:
    """Why the index in ``index`` does not answer for ``places`` now; None: it does."""
    marker = index / _MARKER
    if not marker.exists():
        return _NONE
    version, *built = marker.read_text("utf-8").splitlines() or [""]
    if version.strip() != _INDEX_VERSION:
        return "this search index is from another poiflow version"
    if not built:
        return "this search index does not say which places it was built from"
    was = built[0].split()
    now = _stamp(places).split()
    if was[:2] == now[:2]:  # the same size and time: the same file
        return None
    if was[0] == now[0]:
        again = _stamp(places, fingerprint=True)
        if was[2:] == again.split()[2:]:
            # The same bytes written again (a run that changed nothing): remembered, so
            # that the next look reads nothing.
            with contextlib.suppress(OSError):
                marker.write_text(f"{_INDEX_VERSION}\n{again}\n", "utf-8")
            return None
    return f"the places changed since this search index was built (a later run wrote {places})"


def _stamp(places: Path, *, fingerprint: bool = False) -> str:
    """``SIZE MTIME_NS [HASH]`` of a places file: what an index records of its source."""
    from poiflow.pipeline.runner import file_fingerprint

    _, size, mtime = file_stamp(places) or (0, -1, -1)  # gone: like no file written
    parts = [str(size), str(mtime)]
    return " ".join([*parts, file_fingerprint(places)] if fingerprint else parts)


class SearchIndex:
    """The search index of golden places in ``folder`` (see :func:`build_search_index`)."""

    def __init__(self, folder: Path) -> None:
        import tantivy

        folder = Path(folder)
        marker = folder / _MARKER
        if not marker.exists():
            raise InputError(
                "no search index here: build one with `poiflow publish search DIR`",
                path=str(folder),
            )
        if marker.read_text("utf-8").split("\n", 1)[0].strip() != _INDEX_VERSION:
            raise InputError(
                "this search index is from another poiflow version: build it again with "
                "`poiflow publish search DIR`",
                path=str(folder),
            )
        self.folder = folder
        self._index = tantivy.Index.open(str(folder))
        self._schema = self._index.schema

    def __len__(self) -> int:
        return int(self._index.searcher().num_docs)

    def upsert(self, places: pa.Table, removed: Sequence[str] = ()) -> None:
        """Index these places anew (their old documents go) and drop the ``removed`` ones,
        in one commit: a reader sees all of it or none. Doing it twice changes nothing."""
        import tantivy

        writer = self._index.writer(heap_size=64 * 1024 * 1024, num_threads=1)
        try:
            for place in [*places.column("id").to_pylist(), *removed]:
                writer.delete_documents_by_term("id", place)
            for document in search_documents(places.to_pylist()):
                writer.add_document(tantivy.Document(**document))
            writer.commit()
            writer.wait_merging_threads()
        except BaseException:
            writer.rollback()
            raise
        self._index.reload()

    def search(
        self,
        text: str,
        *,
        near: tuple[float, float] | None = None,
        category: str | None = None,
        open_at: When | None = None,
        limit: int = 10,
    ) -> list[Hit]:
        """The places that best match ``text``, best first.

        Args:
            text: Free text: names, brands, categories, address words; typos and an
                unfinished last word are forgiven.
            near: (lat, lon): places nearer to it rank higher; with no words, the places
                nearest to it are found first.
            category: Only places with this category (primary or alternate).
            open_at: Only places open then (``opening.parse_when`` reads one).
            limit: How many to return (1-1000).

        Raises:
            InputError: Nothing to search for (no word, no category, no point), a point
                off the globe, or a limit out of range.
        """
        import tantivy

        words = check_query(text, near, category, limit)
        filters: list[tuple[tantivy.Occur, tantivy.Query]] = []
        if category:
            wanted = tantivy.Query.term_query(self._schema, "category", category.strip())
            filters.append((tantivy.Occur.Must, wanted))
        if open_at is not None:  # a filter: it adds nothing to the text's score
            hour = tantivy.Query.term_query(self._schema, open_at.field, open_at.hour)
            filters.append((tantivy.Occur.Must, tantivy.Query.const_score_query(hour, 0.0)))
        matched = [self._word(word, last=i == len(words) - 1) for i, word in enumerate(words)]
        query = self._all_of(matched, filters)
        searcher = self._index.searcher()

        def fetch(pool: int) -> list[tuple[dict[str, Any], float]]:
            if near is not None and not words:  # the nearest first, not any of them
                found = self._nearest(searcher, query, near, pool)
            else:
                found = searcher.search(query, limit=pool).hits
            if near is not None and words and len(found) == pool:
                # The index has more matches than were fetched: the nearest of them too.
                # Found by the words as they are (cheap to ask again and again, as the box
                # grows), each scored as the weakest match fetched (none of them beat it).
                exact = self._all_of([self._exactly(word) for word in words], filters)
                seen = {(a.segment_ord, a.doc) for _, a in found}
                weakest = min(score for score, _ in found)
                found += [
                    (weakest, address)
                    for _, address in self._nearest(searcher, exact, near, near_wanted(limit))
                    if (address.segment_ord, address.doc) not in seen
                ]
            return [
                (
                    {
                        name: (got or [None])[0]
                        for name, got in searcher.doc(address).to_dict().items()
                    },
                    score,
                )
                for score, address in found
            ]

        matches = gather(fetch, candidates_wanted(limit, words, near), open_at, limit)
        return rank_matches(matches, words, near, limit)

    def _nearest(
        self,
        searcher: tantivy.Searcher,
        query: tantivy.Query,
        near: tuple[float, float],
        wanted: int,
    ) -> list[tuple[Any, tantivy.DocAddress]]:
        """Every match of ``query`` in the box :meth:`_around` finds (the ``wanted`` nearest
        among them), with its text score."""
        around = self._around(searcher, query, near, wanted)
        return list(searcher.search(around, limit=max(wanted, _count(searcher, around))).hits)

    def _around(
        self,
        searcher: tantivy.Searcher,
        query: tantivy.Query,
        near: tuple[float, float],
        wanted: int,
    ) -> tantivy.Query:
        """``query`` kept to a box around ``near`` that holds the ``wanted`` places nearest to
        it: the smallest box, doubling from 500 m, that holds that many, grown to hold the
        circle through its corners (a place in a corner may be further than one outside)."""
        km = _FIRST_BOX_KM
        while km < EARTH_KM:
            if _count(searcher, self._boxed(query, near, km)) >= wanted:
                return self._boxed(query, near, km * math.sqrt(2))
            km *= 2
        return query

    def _boxed(self, query: tantivy.Query, near: tuple[float, float], km: float) -> tantivy.Query:
        import tantivy

        clauses = [(tantivy.Occur.Must, query)]
        for field, low, high in _box_around(near, km):
            ranged = tantivy.Query.range_query(
                self._schema, field, tantivy.FieldType.Float, low, high
            )
            clauses.append((tantivy.Occur.Must, tantivy.Query.const_score_query(ranged, 0.0)))
        return tantivy.Query.boolean_query(clauses)

    def _all_of(
        self, words: list[tantivy.Query], filters: list[tuple[tantivy.Occur, tantivy.Query]]
    ) -> tantivy.Query:
        """Any of the words (every place, with none), and every filter."""
        import tantivy

        either = (
            tantivy.Query.boolean_query([(tantivy.Occur.Should, q) for q in words])
            if words
            else tantivy.Query.all_query()
        )
        return tantivy.Query.boolean_query([(tantivy.Occur.Must, either), *filters])

    def _exactly(self, word: str) -> tantivy.Query:
        """One query word as it is, in any text field."""
        import tantivy

        return tantivy.Query.boolean_query(
            [
                (tantivy.Occur.Should, tantivy.Query.term_query(self._schema, field, word))
                for field in TEXT_FIELDS
            ]
        )

    def _word(self, word: str, *, last: bool) -> tantivy.Query:
        """One query word: exactly (BM25), as the start of a word (the last one only) or
        within a few typos, in any text field."""
        import tantivy

        typos = word_typos(word)
        per_field = []
        for field, boost in TEXT_FIELDS.items():
            exact = tantivy.Query.boost_query(
                tantivy.Query.term_query(self._schema, field, word), 2.0
            )
            near_miss = tantivy.Query.fuzzy_term_query(
                self._schema, field, word, distance=typos, transposition_cost_one=True, prefix=last
            )
            near_miss = tantivy.Query.boost_query(near_miss, TYPO_BOOST)
            ways = [(tantivy.Occur.Should, exact), (tantivy.Occur.Should, near_miss)]
            if last:  # the start of a word, typed so far: above a near miss
                started = tantivy.Query.fuzzy_term_query(
                    self._schema, field, word, distance=0, prefix=True
                )
                ways.append(
                    (tantivy.Occur.Should, tantivy.Query.boost_query(started, STARTS_BOOST))
                )
            either = tantivy.Query.boolean_query(ways)
            per_field.append(tantivy.Query.boost_query(either, boost))
        return tantivy.Query.disjunction_max_query(per_field)


def _schema() -> tantivy.Schema:
    import tantivy

    builder = tantivy.SchemaBuilder()
    for name in _STORED_ONLY:
        builder.add_text_field(name, stored=True, tokenizer_name="raw", index_option="basic")
    for name in TEXT_FIELDS:
        builder.add_text_field(name, stored=False, tokenizer_name="default", index_option="freq")
    builder.add_text_field("category", stored=False, tokenizer_name="raw", index_option="basic")
    for name in ("open_utc", "open_local"):
        builder.add_integer_field(name, stored=False, indexed=True)
    builder.add_float_field("lat", stored=True, indexed=True, fast=True)
    builder.add_float_field("lon", stored=True, indexed=True, fast=True)
    builder.add_float_field("confidence", stored=True)
    return builder.build()


def _box_around(near: tuple[float, float], km: float) -> list[tuple[str, float, float]]:
    """The ranges of ``lat`` and ``lon`` (degrees) of a box reaching ``km`` from ``near`` each
    way; the longitude is left open near a pole or where the box would cross the
    antimeridian."""
    lat, lon = near
    dlat = km / KM_PER_DEGREE
    ranges = [("lat", max(-90.0, lat - dlat), min(90.0, lat + dlat))]
    across = math.cos(math.radians(min(89.9, abs(lat) + dlat)))
    dlon = km / (KM_PER_DEGREE * across) if lat + dlat < 90 and lat - dlat > -90 else 180.0
    if lon - dlon >= -180 and lon + dlon <= 180:
        ranges.append(("lon", lon - dlon, lon + dlon))
    return ranges


def _count(searcher: tantivy.Searcher, query: tantivy.Query) -> int:
    """How many documents ``query`` matches."""
    return int(searcher.search(query, limit=1).count)  # type: ignore[attr-defined]  # not in its stubs
