"""What every search backend shares (the embedded index, ``poiflow.serving.search``, and
OpenSearch, ``poiflow.serving.opensearch``): the fields of a place's search document, how
a query is checked, how many matches are fetched, and how they are ranked, so that the
backends order the same matches the same way.

Results are ranked by text relevance, re-ranked by how alike the whole query and the
place's name are (a query that is a whole name beats a longer name that contains it), and
blended with the place's confidence and, given a point, weighed by the distance to it::

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
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from rapidfuzz import fuzz

from poiflow.errors import InputError
from poiflow.serving.opening import When, open_until, week_hours
from poiflow.text import fold, tokens

__all__ = [
    "CONFIDENCE_WEIGHT",
    "DISTANCE_SCALE_KM",
    "DISTANCE_WEIGHT",
    "EARTH_KM",
    "FAR_SHARE",
    "KM_PER_DEGREE",
    "NAME_WEIGHT",
    "STARTS_BOOST",
    "TEXT_FIELDS",
    "TYPO_BOOST",
    "Hit",
    "candidates_wanted",
    "check_query",
    "gather",
    "haversine_km",
    "near_wanted",
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
# How many text matches are re-ranked (by name, distance and confidence): per result asked
# for, and at least.
_RERANK: Final = 5
_RERANK_MIN: Final = 50
# The most text matches fetched to find enough places open at a time.
_OPEN_POOL_MAX: Final = 10_000
EARTH_KM: Final = 20_037.5  # half the equator: a box this wide holds every place
# The Earth's mean radius, as ``poiflow.conflate.geo`` has it (not imported from there:
# it brings polars, which search does not otherwise load), and a degree of latitude.
_EARTH_RADIUS_KM: Final = 6371.0088
KM_PER_DEGREE: Final = _EARTH_RADIUS_KM * math.pi / 180
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
            distance = haversine_km(near[0], near[1], lat, lon)
            nearness = (1 - FAR_SHARE) * math.exp(-distance / DISTANCE_SCALE_KM) + FAR_SHARE * (
                1 - math.log1p(distance) / math.log1p(EARTH_KM)
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


def _on_the_globe(point: Sequence[Any]) -> bool:
    if len(point) != 2 or not all(isinstance(v, int | float) for v in point):
        return False
    lat, lon = point
    return bool(-90 <= lat <= 90 and -180 <= lon <= 180)


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """The great-circle distance between two points, in kilometres."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * _EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(a)))
