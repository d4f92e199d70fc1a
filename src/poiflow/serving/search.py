"""Search the golden places: the embedded index (Tantivy), built from ``places.parquet``.

Names (primary and alternates), brand, categories and address are indexed as folded words
(``poiflow.text.fold``: every script transliterated to ASCII, accents and case dropped), so
"Москва", "moskva" and "MOSKVA" find the same place. A query is cut into the same words;
each word matches exactly (scored by BM25: a rare word counts for more) or within a few
typos (one from four letters, two from eight), and the last word also as the start of a
word, for autocomplete ("kahv" finds "Kahvila"). Results are ranked by text relevance,
re-ranked by how alike the whole query and the place's name are (a query that is a whole
name beats a longer name that contains it), and blended with the place's confidence and,
given a point, weighed by the distance to it::

    text = relevance / best relevance + NAME_WEIGHT * similarity(query, name)
           + CONFIDENCE_WEIGHT * confidence
    nearness = (1 - FAR_SHARE) * exp(-km / DISTANCE_SCALE_KM)
               + FAR_SHARE * (1 - log(1 + km) / log(1 + half the Earth's circumference))
    score = text * (1 - DISTANCE_WEIGHT * (1 - nearness))

with ``similarity`` rapidfuzz's normalized Indel similarity of the folded texts (0-1).
Nearness falls fast over the first kilometres and slowly after (a place 8 km away still
beats one 8,000 km away); a place without a point is as far as can be. Given a point, the
text matches nearest to it are ranked too, not only the best ones of the whole index.

With a point and no words ("pharmacies near here", "open now near here"), the places
nearest to it are found, and ranked, first: the query is kept to the smallest box around
the point, doubling from 500 m, that holds enough of them (then widened to the circle
through its corners), not to the first matches in index order.

A category filter keeps places whose primary or alternate category is the one given; an
``open_at`` filter the places open then (see ``poiflow.serving.opening``: each document
lists the hours of the week its place can be open, and what passes is checked exactly).
"""

from __future__ import annotations

import math
import os
import shutil
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import pyarrow as pa
import pyarrow.parquet as pq
from rapidfuzz import fuzz

from poiflow.errors import InputError, OutputError
from poiflow.serving.opening import When, open_until, week_hours
from poiflow.text import fold, tokens

if TYPE_CHECKING:
    import tantivy

__all__ = [
    "CONFIDENCE_WEIGHT",
    "DISTANCE_SCALE_KM",
    "DISTANCE_WEIGHT",
    "FAR_SHARE",
    "NAME_WEIGHT",
    "STARTS_BOOST",
    "TEXT_FIELDS",
    "TYPO_BOOST",
    "Hit",
    "SearchIndex",
    "build_search_index",
    "candidates_wanted",
    "check_query",
    "gather",
    "near_wanted",
    "places_file",
    "rank_matches",
    "ranked",
    "search_documents",
    "word_typos",
]

NAME_WEIGHT: Final = 1.0
DISTANCE_WEIGHT: Final = 0.7
DISTANCE_SCALE_KM: Final = 2.0
FAR_SHARE: Final = 0.3
CONFIDENCE_WEIGHT: Final = 0.2
# The text fields a word is looked for in, and how much a match there counts.
TEXT_FIELDS: Final = {
    "name": 3.0,
    "alternates": 2.0,
    "brand": 2.0,
    "category_words": 1.0,
    "address": 0.7,
}
_STORED_ONLY: Final = ("id", "display", "primary_category", "opening_hours")
_INDEX_VERSION: Final = "3"  # bumped when the fields change: an older index is rebuilt
_BATCH: Final = 10_000
# How many text matches are re-ranked (by name, distance and confidence): per result asked
# for, and at least.
_RERANK: Final = 5
_RERANK_MIN: Final = 50
# The most text matches fetched to find enough places open at a time.
_OPEN_POOL_MAX: Final = 10_000
# Places near a point, with no words: boxes around it, from this half-width, doubling.
_FIRST_BOX_KM: Final = 0.5
_EARTH_KM: Final = 20_037.5  # half the equator: a box this wide holds every place
# The Earth's mean radius, as ``poiflow.conflate.geo`` has it (not imported from there:
# it brings polars, which search does not otherwise load), and a degree of latitude.
_EARTH_RADIUS_KM: Final = 6371.0088
_KM_PER_DEGREE: Final = _EARTH_RADIUS_KM * math.pi / 180
# With words and a point: the text matches nearest to it also ranked (per result, at least).
_NEAR_MIN: Final = 10
# What a match of a word counts for beside BM25's score of an exact match (~1-10): as the
# start of a word (the last one), or within a few typos. A place matching more of the
# query's words ranks higher than a shorter name matching fewer of them.
STARTS_BOOST: Final = 4.0
TYPO_BOOST: Final = 3.0


@dataclass(frozen=True)
class Hit:
    """One place found: its id, name and primary category, where it is, and why it ranks
    where it does (``relevance`` from the text, ``distance_km`` to the point asked about,
    ``score`` the blend the results are sorted by); its opening hours, and, asked about a
    time, until when it is open then (ISO 8601 in the place's time zone; None: no end in
    the year ahead)."""

    id: str
    name: str | None
    category: str | None
    lat: float | None
    lon: float | None
    confidence: float | None
    relevance: float
    distance_km: float | None
    score: float
    opening_hours: str | None = None
    open_until: str | None = None


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
    never opens a half-built index, and a failed build leaves the old one.

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
        (partial / "poiflow-index.txt").write_text(f"{_INDEX_VERSION}\n", "utf-8")
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


class SearchIndex:
    """The search index of golden places in ``folder`` (see :func:`build_search_index`)."""

    def __init__(self, folder: Path) -> None:
        import tantivy

        folder = Path(folder)
        marker = folder / "poiflow-index.txt"
        if not marker.exists():
            raise InputError(
                "no search index here: build one with `poiflow publish search DIR`",
                path=str(folder),
            )
        if marker.read_text("utf-8").strip() != _INDEX_VERSION:
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
        while km < _EARTH_KM:
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


def gather(
    fetch: Callable[[int], list[tuple[dict[str, Any], float]]],
    pool: int,
    open_at: When | None,
    limit: int,
) -> list[tuple[dict[str, Any], float]]:
    """A query's text matches (``fetch(pool)``: the best ``pool`` of them, each a found
    place's stored fields and its text score), and asked about a time, only those open then,
    each with ``open_until``: more are fetched while fewer than ``limit`` are open and the
    index has more."""
    while True:
        matches = fetch(pool)
        if open_at is None:
            return matches
        kept = []
        for document, score in matches:
            is_open, until = open_until(
                document.get("opening_hours"), document.get("lat"), document.get("lon"), open_at
            )
            if is_open:
                kept.append(({**document, "open_until": until and until.isoformat()}, score))
        if len(kept) >= limit or len(matches) < pool or pool >= _OPEN_POOL_MAX:
            return kept
        pool = min(pool * 4, _OPEN_POOL_MAX)


def rank_matches(
    matches: Sequence[tuple[Mapping[str, Any], float]],
    words: Sequence[str],
    near: tuple[float, float] | None,
    limit: int,
) -> list[Hit]:
    """The best ``limit`` of a query's text matches (each a found place's stored fields and
    its text score), ranked by :func:`ranked`: what every backend returns. With a point and
    no words, nearest first (the score breaks ties)."""
    if not matches:
        return []
    best = max(score for _, score in matches) or 1.0
    asked = " ".join(words)
    hits = [ranked(document, score / best, asked, near) for document, score in matches]
    if near is not None and not words:
        hits.sort(key=lambda hit: (_or_inf(hit.distance_km), -hit.score, hit.id))
    else:
        # Far away, the distance's part of the score is below a float's precision: the
        # nearer of two equal scores first.
        hits.sort(key=lambda hit: (-hit.score, _or_inf(hit.distance_km), hit.id))
    return hits[:limit]


def ranked(
    document: Mapping[str, Any], relevance: float, asked: str, near: tuple[float, float] | None
) -> Hit:
    """A found place (its stored fields: ``id``, ``display``, ``primary_category``, ``lat``,
    ``lon``, ``confidence``) scored as the module's docstring says; ``relevance`` is its
    text score over the best one's, ``asked`` the folded query. Every backend ranks with
    this, so they order the same matches the same way."""
    lat, lon, confidence = document.get("lat"), document.get("lon"), document.get("confidence")
    distance = None
    score = relevance + CONFIDENCE_WEIGHT * (confidence or 0.0)
    if asked:
        name = fold(document.get("display") or "")
        score += NAME_WEIGHT * fuzz.ratio(asked, name) / 100
    if near is not None:
        # Unknown is as far as can be: a place with no point keeps the least share.
        nearness = 0.0
        if lat is not None and lon is not None:
            distance = _haversine_km(near[0], near[1], lat, lon)
            nearness = (1 - FAR_SHARE) * math.exp(-distance / DISTANCE_SCALE_KM) + FAR_SHARE * (
                1 - math.log1p(distance) / math.log1p(_EARTH_KM)
            )
        score *= 1 - DISTANCE_WEIGHT * (1 - nearness)
    return Hit(
        id=document["id"],
        name=document.get("display"),
        category=document.get("primary_category"),
        lat=lat,
        lon=lon,
        confidence=confidence,
        relevance=relevance,
        distance_km=distance,
        score=score,
        opening_hours=document.get("opening_hours"),
        open_until=document.get("open_until"),
    )


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


def search_documents(
    places: Sequence[dict[str, Any]], *, since: datetime | None = None
) -> Iterator[dict[str, Any]]:
    """Each golden place as the fields of its search document (empty ones left out); its
    hours of the week open are those of the year from ``since`` (default: now)."""
    since = since or datetime.now(UTC)
    for place in places:
        names = place.get("names") or {}
        categories = place.get("categories") or {}
        address = place.get("address") or {}
        brand = place.get("brand") or {}
        primary = categories.get("primary")
        all_categories = [c for c in [primary, *(categories.get("alternate") or [])] if c]
        alternates = [a["value"] for a in names.get("alternates") or [] if a.get("value")]
        street = [address.get(p) for p in ("street", "housenumber", "postcode", "locality")]
        hours = place.get("opening_hours")
        week = week_hours(hours, place.get("lat"), place.get("lon"), since=since)
        fields: dict[str, Any] = {
            "id": place["id"],
            "display": names.get("primary"),
            "primary_category": primary,
            "name": fold(names.get("primary") or ""),
            "alternates": fold(" ".join(alternates)),
            "brand": fold(brand.get("name") or ""),
            "category_words": fold(" ".join(c.replace("_", " ") for c in all_categories)),
            "address": fold(" ".join(p for p in street if p)),
            "category": all_categories,
            "lat": place.get("lat"),
            "lon": place.get("lon"),
            "confidence": place.get("confidence"),
            "opening_hours": hours,
            "open_utc": list(week.utc) if week else None,
            "open_local": list(week.local) if week else None,
        }
        yield {k: v for k, v in fields.items() if v not in (None, "", [])}


def check_query(
    text: str, near: tuple[float, float] | None, category: str | None, limit: int
) -> list[str]:
    """The folded words of a query, after checking it as every backend does.

    Raises:
        InputError: Nothing to search for (no word, no category, no point), a point off
            the globe, or a limit out of range.
    """
    if not 1 <= limit <= 1000:
        raise InputError(f"limit must be between 1 and 1000, not {limit}")
    if near is not None and not _on_the_globe(near):
        raise InputError(f"not a point on the globe: {near}")
    words = tokens(text)
    if not words and not category and near is None:
        raise InputError("nothing to search for: give some words, a category or a point")
    return words


def _box_around(near: tuple[float, float], km: float) -> list[tuple[str, float, float]]:
    """The ranges of ``lat`` and ``lon`` (degrees) of a box reaching ``km`` from ``near`` each
    way; the longitude is left open near a pole or where the box would cross the
    antimeridian."""
    lat, lon = near
    dlat = km / _KM_PER_DEGREE
    ranges = [("lat", max(-90.0, lat - dlat), min(90.0, lat + dlat))]
    across = math.cos(math.radians(min(89.9, abs(lat) + dlat)))
    dlon = km / (_KM_PER_DEGREE * across) if lat + dlat < 90 and lat - dlat > -90 else 180.0
    if lon - dlon >= -180 and lon + dlon <= 180:
        ranges.append(("lon", lon - dlon, lon + dlon))
    return ranges


def near_wanted(limit: int) -> int:
    """With words and a point: how many of the text matches nearest to it are ranked too."""
    return max(limit, _NEAR_MIN)


def candidates_wanted(limit: int, words: Sequence[str], near: object) -> int:
    """How many text matches to fetch for re-ranking (per result asked for, and at least);
    without words, the ``limit`` nearest to a point are all there is to rank."""
    return max(limit * _RERANK, _RERANK_MIN) if words else limit


def word_typos(word: str) -> int:
    """How many typos a query word may have: none below three letters, two from six."""
    return 0 if len(word) < 3 else 1 if len(word) < 6 else 2


def _or_inf(km: float | None) -> float:
    return math.inf if km is None else km


def _count(searcher: tantivy.Searcher, query: tantivy.Query) -> int:
    """How many documents ``query`` matches."""
    return int(searcher.search(query, limit=1).count)  # type: ignore[attr-defined]  # not in its stubs


def _on_the_globe(point: Sequence[Any]) -> bool:
    if len(point) != 2 or not all(isinstance(v, int | float) for v in point):
        return False
    lat, lon = point
    return bool(-90 <= lat <= 90 and -180 <= lon <= 180)


def _haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * _EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(a)))
