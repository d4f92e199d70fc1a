"""Pair features: explainable evidence for or against two records being one place.

Every feature is computed for all pairs at once (numpy, scipy sparse products, rapidfuzz's
``cpdist`` over aligned string lists), never in a Python loop per pair. Missing evidence is
NaN, not 0: a feed without phones says nothing about phones, and the matcher learns that.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Final

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
from rapidfuzz import fuzz, process
from rapidfuzz.distance import JaroWinkler
from scipy import sparse

from poiflow.conflate.alike import number_spans, numbers_agree
from poiflow.conflate.feature_names import FEATURES
from poiflow.conflate.feature_stats import (
    FEATURE_COUNTS_SCHEMA,
    SHARED_PHONE,
    FeatureStats,
    feature_counts,
    feature_counts_with,
    feature_stats,
    name_area_keys,
    shared_pages,
    shared_phones,
    word_counts,
)
from poiflow.conflate.geo import arc_m
from poiflow.conflate.pages import list_column, page_lists, record_pages
from poiflow.conflate.rounding import uncertainty
from poiflow.taxonomy import taxonomy

__all__ = [
    "FEATURES",
    "FEATURE_COLUMNS",
    "FEATURE_COUNTS_SCHEMA",
    "SHARED_PHONE",
    "FeatureStats",
    "RecordView",
    "agreement_matrix",
    "feature_counts",
    "feature_stats",
    "pair_features",
    "same_building",
    "shared_pages",
    "shared_phones",
    "word_counts",
]


# What features read of a record.
FEATURE_COLUMNS: Final = ("source", "lat", "lon", "categories", "keys", "phones", "websites")

# Categories that one place is often filed under by different sources.
_RELATED: Final = (
    {
        "cafe",
        "bakery",
        "ice_cream_shop",
        "restaurant",
        "fast_food_restaurant",
        "bar",
        "pub",
        "food_court",
        "eat_and_drink",
        "food_shop",
    },
    {"bar", "pub", "nightclub", "restaurant"},
    {"hotel", "hostel", "accommodation", "campground"},
    {"clinic", "dentist", "hospital", "health", "pharmacy", "optician"},
    {"supermarket", "convenience_store", "food_shop", "department_store", "shopping"},
    {"museum", "art_gallery", "attraction", "artwork", "arts_and_entertainment", "theatre"},
    {"school", "university", "library", "public_service"},
    {"bank", "atm", "financial_service"},
    {"gym", "sports_venue", "park", "active_life", "beauty_salon"},
)


@dataclass(frozen=True, slots=True)
class Encoded:
    """A string column as integer codes: equal strings, equal codes; -1 where missing."""

    codes: np.ndarray
    values: np.ndarray  # object array: the string of each code

    @classmethod
    def of(cls, column: pa.Array | pa.ChunkedArray) -> Encoded:
        """Dictionary-encode an Arrow string column (hashing in Arrow, not Python)."""
        if isinstance(column, pa.ChunkedArray):
            column = column.combine_chunks()
        encoded = pc.dictionary_encode(column.cast(pa.string()))
        codes = pc.fill_null(encoded.indices, -1).to_numpy(zero_copy_only=False)
        return cls(codes.astype(np.int64), np.asarray(encoded.dictionary.to_pylist(), dtype=object))


@dataclass(frozen=True, slots=True)
class Listed:
    """A list column as features compare it: each record's first value as a code, and the
    whole lists of the few records with more than one value (most have at most one)."""

    first: Encoded
    several: dict[int, list[str]]  # by row

    @classmethod
    def of(cls, column: pa.ChunkedArray) -> Listed:
        """Encode an Arrow list-of-strings column."""
        first = Encoded.of(pc.list_element(pc.list_slice(column, 0, 1), 0))
        return cls(first, _lists_longer_than(column, 1))

    def values(self, row: int) -> set[str]:
        """The values of one record."""
        listed = self.several.get(row)
        if listed is not None:
            return set(listed)
        code = int(self.first.codes[row])
        return {self.first.values[code]} if code >= 0 else set()


@dataclass(frozen=True, slots=True)
class RecordView:
    """The columns of the records table that features read, extracted once.

    Single-valued strings are dictionary-encoded: equality is an integer comparison, and
    string similarities are computed once per distinct pair of strings (a chain's name
    meets the same other names many times over).
    """

    source: np.ndarray
    lat: np.ndarray
    lon: np.ndarray
    extent: np.ndarray
    name: Encoded
    alternates: dict[int, list[str]]  # the other names of the records that have any, by row
    brand: Encoded
    phones: Listed
    domains: Listed
    pages: Listed  # each record's own pages (``pages.page_key``), but those a source shares
    street: Encoded
    housenumber: Encoded
    number_spans: tuple[np.ndarray, np.ndarray, np.ndarray]  # of each house number's code
    postcode: Encoded
    locality: Encoded
    category: Encoded
    tfidf: sparse.csr_matrix  # one row per distinct name (code)
    commonness: np.ndarray  # log1p of the records carrying the name, in all the data
    area_commonness: np.ndarray  # ... in the record's area and source (``name_area_keys``)
    uncertainty: np.ndarray  # each record's source's rounding, metres (``rounding``)

    @classmethod
    def of(
        cls, records: pa.Table, stats: FeatureStats | None = None, areas: pl.Series | None = None
    ) -> RecordView:
        """Extract the feature inputs of a records table (``PLACE_SCHEMA``).

        Args:
            records: The records whose pairs will be scored.
            stats: How many records carry each name and each name word, in all the data
                (when ``records`` is only part of it, as in a shard); by default, counted
                in ``records``.
            areas: Each record's name key in its area (``name_area_keys``), where the
                caller has them already (a Spark scoring shard is sent them).
        """
        pages = record_pages(records)  # each record's pages, for the counts and the view
        if areas is None:  # made once: for the counts and the view
            areas = name_area_keys(records)
        stats = stats or feature_stats(feature_counts_with(records, pages, areas))
        keys = records.column("keys")

        def key(name: str) -> pa.ChunkedArray:
            return pc.struct_field(keys, name)

        tax = taxonomy()
        source = Encoded.of(records.column("source"))
        category = Encoded.of(pc.struct_field(records.column("categories"), "primary"))
        extents = [
            tax.categories[c].extent_m if c in tax.categories else 80.0 for c in category.values
        ]
        extent = np.append(np.asarray(extents, dtype=float), 80.0)[category.codes]  # -1: none
        name = Encoded.of(pc.fill_null(key("name"), ""))
        # How many records carry each name, in all the data, and in the record's area and
        # source (in all for a record with neither a point nor a locality): a chain's name
        # is weak evidence.
        carrying = np.log1p(_lookup(stats.names, name.values, "name"))[name.codes]
        in_area = areas.is_not_null().to_numpy()
        nearby = carrying.copy()
        nearby[in_area] = np.log1p(_lookup(stats.areas, areas.drop_nulls().to_numpy(), "area"))
        lat = records.column("lat").to_numpy(zero_copy_only=False).astype(float)
        lon = records.column("lon").to_numpy(zero_copy_only=False).astype(float)
        housenumber = Encoded.of(key("housenumber"))
        return cls(
            source=source.codes,
            lat=lat,
            lon=lon,
            extent=extent,
            name=name,
            alternates=_lists_longer_than(key("name_alternates"), 0),
            brand=Encoded.of(key("brand")),
            phones=Listed.of(_without(records.column("phones"), stats.shared_phones)),
            domains=Listed.of(key("domains")),
            pages=Listed.of(page_lists(records.num_rows, pages, stats.shared_pages)),
            street=Encoded.of(key("street")),
            housenumber=housenumber,
            number_spans=number_spans(housenumber.values.tolist()),
            postcode=Encoded.of(key("postcode")),
            locality=Encoded.of(key("locality")),
            category=category,
            tfidf=_tfidf(name.values.tolist(), stats),
            commonness=carrying,
            area_commonness=nearby,
            uncertainty=uncertainty(source.values, lat, lon, stats.rounding, source.codes),
        )


def _without(lists: pa.ChunkedArray, left_out: frozenset[str]) -> pa.ChunkedArray:
    """A list-of-strings column without the values in ``left_out`` (null where none is
    left)."""
    if not left_out:
        return lists
    column = lists.combine_chunks()
    flat = pc.list_flatten(column)
    keep = pc.invert(pc.fill_null(pc.is_in(flat, pa.array(sorted(left_out))), False))
    rows = pc.list_parent_indices(column).to_numpy()[keep.to_numpy(zero_copy_only=False)]
    return list_column(len(column), rows, flat.filter(keep))


def _lookup(counts: pl.DataFrame, values: np.ndarray, column: str) -> np.ndarray:
    """The count of each of ``values`` in ``counts`` (0 where absent)."""
    found = pl.DataFrame({column: pl.Series(values.tolist(), dtype=pl.String)}).join(
        counts, on=column, how="left", maintain_order="left"
    )
    return found["records"].fill_null(0).to_numpy().astype(np.int64)


def _tfidf(names: Sequence[str], stats: FeatureStats) -> sparse.csr_matrix:
    """Rows of L2-normalized IDF weights of each distinct name's words: a rare shared word
    weighs much, "cafe" little. A word's document frequency is over records.

    Columns are the words in sorted order, so a name's row sums its words in the same
    order whatever other names are in the view: the same pair gets the same bits in a
    shard as in the whole table.
    """
    words = (
        pl.DataFrame({"name": list(names)}, schema={"name": pl.String})
        .with_row_index("row")
        .select("row", pl.col("name").str.split(" ").alias("word"))
        .explode("word")
        .filter(pl.col("word").is_not_null() & (pl.col("word") != ""))
        .unique(["row", "word"])
    )
    n = len(names)
    if words.height == 0:
        return sparse.csr_matrix((n, 1))
    vocabulary = words.select("word").unique().sort("word").with_row_index("column")
    words = words.join(vocabulary, on="word").sort("row", "column")
    df = _lookup(stats.words, vocabulary["word"].to_numpy(), "word")
    idf = np.log((stats.records + 1) / (df + 1)) + 1.0
    rows = words["row"].to_numpy()
    columns = words["column"].to_numpy().astype(np.int64)
    matrix = sparse.csr_matrix((idf[columns], (rows, columns)), shape=(n, vocabulary.height))
    norms = np.sqrt(np.asarray(matrix.multiply(matrix).sum(axis=1)).ravel())
    norms[norms == 0] = 1.0
    return sparse.csr_matrix(sparse.diags(1.0 / norms) @ matrix)


# From this many pairs, pair_features splits them between threads (one a core, at most
# 4): numpy's gathers, polars and rapidfuzz run without the interpreter lock. On 2 cores,
# the 1M world's 10.2M pairs took 9.4 s in one piece and 6.4 s in two, with the same values.
PARALLEL_PAIRS: Final = 500_000


def pair_features(view: RecordView, left: np.ndarray, right: np.ndarray) -> dict[str, np.ndarray]:
    """The features of every pair ``(left[i], right[i])`` of record rows, as float32 columns.

    Each pair's features depend on that pair alone, so the pairs may be split into pieces
    (threads, from ``PARALLEL_PAIRS`` pairs) without changing a value.
    """
    parts = min(os.cpu_count() or 1, 4) if len(left) >= PARALLEL_PAIRS else 1
    if parts == 1:
        return _pair_features(view, left, right)
    bounds = np.linspace(0, len(left), parts + 1).astype(np.int64)
    pieces = list(zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True))
    with ThreadPoolExecutor(parts, thread_name_prefix="poiflow-features") as pool:
        done = list(
            pool.map(
                lambda ab: _pair_features(view, left[ab[0] : ab[1]], right[ab[0] : ab[1]]), pieces
            )
        )
    return {name: np.concatenate([piece[name] for piece in done]) for name in FEATURES}


def _pair_features(view: RecordView, left: np.ndarray, right: np.ndarray) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    distance = _pair_distance_m(view.lat, view.lon, left, right)
    if view.uncertainty.any():  # a source's rounding is no distance (see conflate.rounding)
        rounded = view.uncertainty[left] + view.uncertainty[right]
        distance = np.maximum(0.0, distance - rounded)
    out["distance_m"] = distance
    out["distance_over_extent"] = distance / np.maximum(view.extent[left], view.extent[right])

    names = _distinct_pairs(view.name, left, right)
    token_set, jaro_winkler, partial = _similarities(
        view.name,
        names,
        (fuzz.token_set_ratio, JaroWinkler.normalized_similarity, fuzz.partial_ratio),
    )
    out["name_token_set"] = token_set / 100
    out["name_jaro_winkler"] = jaro_winkler
    out["name_partial"] = partial / 100
    out["name_best_alternate"] = _best_alternate(view, left, right, out["name_token_set"])
    out["name_tfidf"] = _tfidf_cosine(view, names)
    # Rounding to float32 keeps order, so the larger rounded is the larger one rounded.
    commonness = view.commonness.astype(np.float32)
    out["name_commonness"] = np.maximum(commonness[left], commonness[right])
    nearby = view.area_commonness.astype(np.float32)
    out["name_area_commonness"] = np.maximum(nearby[left], nearby[right])

    out["brand_match"] = _equal(view.brand.codes, left, right)
    out["phone_match"] = _overlap(view.phones, left, right)
    out["domain_match"] = _overlap(view.domains, left, right)
    out["page_match"] = _overlap(view.pages, left, right)
    out["housenumber_match"] = same_building(view.housenumber.codes, view.number_spans, left, right)
    (out["street_similarity"],) = _similarities(
        view.street, _distinct_pairs(view.street, left, right), (JaroWinkler.normalized_similarity,)
    )
    out["postcode_match"] = _equal(view.postcode.codes, left, right)
    out["locality_match"] = _equal(view.locality.codes, left, right)
    # How many of the two have coordinates: a missing distance means little when one has none.
    out["located"] = (~np.isnan(view.lat[left])).astype(np.float32) + (~np.isnan(view.lat[right]))
    out["category_agreement"] = _category_agreement(view.category, left, right)
    out["same_source"] = (view.source[left] == view.source[right]).astype(np.float32)
    return {name: np.asarray(out[name], dtype=np.float32) for name in FEATURES}


def _distinct_pairs(
    column: Encoded, left: np.ndarray, right: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The distinct unordered pairs of codes among the pairs where both have a value:
    ``(known, low, high, inverse)``, with ``pairs[known] == distinct[inverse]``."""
    a, b = column.codes[left], column.codes[right]
    known = (a >= 0) & (b >= 0)
    base = len(column.values) + 1
    key = np.minimum(a[known], b[known]) * base + np.maximum(a[known], b[known])
    # Each pair's dense rank among the distinct keys (polars, all cores) is its place in
    # the sorted distinct keys: several times faster than np.unique's sort, or than a
    # binary search of every pair in them.
    inverse = pl.Series(key, dtype=pl.Int64).rank("dense").to_numpy().astype(np.int64) - 1
    distinct = np.empty(int(inverse.max()) + 1 if len(inverse) else 0, dtype=np.int64)
    distinct[inverse] = key
    return known, distinct // base, distinct % base, inverse


def _similarities(
    column: Encoded,
    distinct: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    scorers: Sequence[object],
) -> list[np.ndarray]:
    """Each scorer on every pair, computed once per distinct unordered pair of strings
    (so also symmetric by construction); NaN where either string is missing."""
    known, low, high, inverse = distinct
    first = column.values[low].tolist()
    second = column.values[high].tolist()
    results = []
    for scorer in scorers:
        out = np.full(len(known), np.nan)
        out[known] = _cpdist(first, second, scorer)[inverse]
        results.append(out)
    return results


def _tfidf_cosine(
    view: RecordView, distinct: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]
) -> np.ndarray:
    """Cosine of the two names' IDF-weighted words, once per distinct pair of names."""
    known, low, high, inverse = distinct
    cosine = np.asarray(view.tfidf[low].multiply(view.tfidf[high]).sum(axis=1)).ravel()
    out = np.zeros(len(known))
    out[known] = cosine[inverse]
    return out


def _pair_distance_m(
    lat: np.ndarray, lon: np.ndarray, left: np.ndarray, right: np.ndarray
) -> np.ndarray:
    """``haversine_m`` between each pair's two records, with each record's latitude in
    radians and its cosine computed once, not once for each of its pairs."""
    radians = np.radians(lat)
    cosine = np.cos(radians)
    dp, dl = radians[right] - radians[left], np.radians(lon[right] - lon[left])
    return arc_m(dp, dl, cosine[left], cosine[right])


def _cpdist(a: list[str], b: list[str], scorer: object) -> np.ndarray:
    if not a:
        return np.zeros(0)
    # All cores: rapidfuzz splits the aligned lists between threads.
    return np.asarray(process.cpdist(a, b, scorer=scorer, workers=-1), dtype=float)  # type: ignore[arg-type]


def _best_alternate(
    view: RecordView, left: np.ndarray, right: np.ndarray, primary: np.ndarray
) -> np.ndarray:
    """The best token-set score over every pairing of the two records' names (primary and
    translations); the primary score where neither has alternates. The pairings are
    joined in polars and each distinct pair of strings is scored once."""
    best = primary.copy()
    with_alternates = np.zeros(len(view.name.codes), dtype=bool)  # per record
    with_alternates[list(view.alternates)] = True
    pairs = np.flatnonzero(with_alternates[left] | with_alternates[right])
    if len(pairs) == 0:
        return best
    involved = np.unique(np.concatenate([left[pairs], right[pairs]]))
    names = (
        pl.DataFrame(
            {
                "row": involved,
                "primary": view.name.values[view.name.codes[involved]].tolist(),
                "alternates": [view.alternates.get(i, []) for i in involved.tolist()],
            },
            schema={"row": pl.Int64, "primary": pl.String, "alternates": pl.List(pl.String)},
        )
        .select("row", pl.concat_list(pl.col("primary"), "alternates").alias("name"))
        .explode("name")
    )
    pairings = (
        pl.DataFrame({"k": pairs, "i": left[pairs], "j": right[pairs]})
        .join(names.rename({"row": "i", "name": "x"}), on="i")
        .join(names.rename({"row": "j", "name": "y"}), on="j")
    )
    distinct = pairings.select("x", "y").unique()
    scored = distinct.with_columns(
        pl.Series(
            "score",
            _cpdist(distinct["x"].to_list(), distinct["y"].to_list(), fuzz.token_set_ratio) / 100,
        )
    )
    top = pairings.join(scored, on=["x", "y"]).group_by("k").agg(pl.col("score").max())
    k = top["k"].to_numpy()
    best[k] = np.maximum(best[k], top["score"].to_numpy())
    return best


def _lists_longer_than(column: pa.ChunkedArray, size: int) -> dict[int, list[str]]:
    """The lists of a list column with more than ``size`` values, by row: only those become
    Python objects."""
    lengths = pc.fill_null(pc.list_value_length(column), 0).to_numpy(zero_copy_only=False)
    rows = np.flatnonzero(lengths > size)
    lists = column.take(pa.array(rows, pa.int64())).to_pylist()
    return dict(zip(rows.tolist(), lists, strict=True))


def _equal(codes: np.ndarray, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """1 where both records have the value and it is the same, 0 where it differs, NaN
    where either lacks it."""
    a, b = codes[left], codes[right]
    out = np.asarray(a == b, dtype=np.float32)  # exact: 0, 1 or NaN
    out[(a < 0) | (b < 0)] = np.nan
    return out


def same_building(
    codes: np.ndarray,
    spans: tuple[np.ndarray, np.ndarray, np.ndarray],
    left: np.ndarray,
    right: np.ndarray,
) -> np.ndarray:
    """``_equal`` of house numbers (``codes``, and the :func:`alike.number_spans` of the
    values they code), where one building's two numbers are the same ("14" and "14-20",
    "20" and "20b": ``alike.numbers_agree``)."""
    out = _equal(codes, left, right)
    first, last, letter = spans
    if not letter.any() and (first == last).all():
        return out  # no letter and no range: one building's numbers are one number
    differ = np.flatnonzero(out == 0)
    out[differ] = numbers_agree(spans, codes[left[differ]], codes[right[differ]])
    return out


def _overlap(values: Listed, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """1 where the two lists share a value, 0 where they do not, NaN where either is empty.

    Most records have at most one phone or domain: those compare as single values (their
    codes), at once; only pairs with a longer list on either side are compared as sets.
    """
    out = _equal(values.first.codes, left, right)
    several = np.zeros(len(values.first.codes), dtype=bool)
    several[list(values.several)] = True
    for k in np.flatnonzero((several[left] | several[right]) & ~np.isnan(out)).tolist():
        out[k] = 1.0 if values.values(int(left[k])) & values.values(int(right[k])) else 0.0
    return out


def _category_agreement(category: Encoded, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """2 the same category, 1 related (same branch of the tree, or often confused), 0 not."""
    codes, agreement = agreement_matrix()
    n = len(codes)
    coded = np.array([codes.get(v, n) for v in category.values.tolist()] + [n], dtype=np.int64)
    row_codes = coded[category.codes]  # a missing category (-1) takes the last: unknown
    exact = agreement.astype(np.float32)  # 0, 1, 2 or NaN
    return np.asarray(exact[row_codes[left], row_codes[right]])


@functools.cache
def agreement_matrix() -> tuple[dict[str, int], np.ndarray]:
    """Each category's code, and the agreement of every two codes (the last: unknown)."""
    tax = taxonomy()
    codes = {c: i for i, c in enumerate(sorted(tax.categories))}
    n = len(codes)
    agreement = np.zeros((n + 1, n + 1))
    for a, i in codes.items():
        top_a = tax.ancestors(a)[-1]
        for b, j in codes.items():
            related = top_a == tax.ancestors(b)[-1] or any(a in g and b in g for g in _RELATED)
            agreement[i, j] = 2.0 if a == b else 1.0 if related else 0.0
    agreement[n, :] = agreement[:, n] = np.nan
    agreement.flags.writeable = False
    return codes, agreement
