"""Pair features: explainable evidence for or against two records being one place.

Every feature is computed for all pairs at once (numpy, scipy sparse products, rapidfuzz's
``cpdist`` over aligned string lists), never in a Python loop per pair. Missing evidence is
NaN, not 0: a feed without phones says nothing about phones, and the matcher learns that.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
from rapidfuzz import fuzz, process
from rapidfuzz.distance import JaroWinkler
from scipy import sparse

from poiflow.taxonomy import taxonomy

__all__ = ["FEATURES", "RecordView", "pair_features"]

FEATURES: Final = (
    "distance_m",
    "distance_over_extent",
    "name_token_set",
    "name_jaro_winkler",
    "name_partial",
    "name_best_alternate",
    "name_tfidf",
    "name_commonness",
    "brand_match",
    "phone_match",
    "domain_match",
    "housenumber_match",
    "street_similarity",
    "postcode_match",
    "locality_match",
    "located",
    "category_agreement",
    "same_source",
)

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
class RecordView:
    """The columns of the records table that features read, extracted once."""

    source: np.ndarray
    lat: np.ndarray
    lon: np.ndarray
    extent: np.ndarray
    name: list[str]
    alternates: list[list[str] | None]
    brand: list[str | None]
    phones: list[list[str] | None]
    domains: list[list[str] | None]
    street: list[str | None]
    housenumber: list[str | None]
    postcode: list[str | None]
    locality: list[str | None]
    category: list[str | None]
    tfidf: sparse.csr_matrix
    commonness: np.ndarray

    @classmethod
    def of(cls, records: pa.Table) -> RecordView:
        """Extract the feature inputs of a records table (``PLACE_SCHEMA``)."""
        keys = records.column("keys")

        def key(name: str) -> list[object]:
            return pc.struct_field(keys, name).to_pylist()  # type: ignore[no-any-return]

        tax = taxonomy()
        category = pc.struct_field(records.column("categories"), "primary").to_pylist()
        extent = np.array(
            [tax.categories[c].extent_m if c in tax.categories else 80.0 for c in category]
        )
        names = [str(n or "") for n in key("name")]
        frame = pl.DataFrame({"name": names})
        counts = frame.group_by("name").len()
        commonness = np.log1p(
            frame.join(counts, on="name", how="left", maintain_order="left")["len"].to_numpy()
        )
        return cls(
            source=np.asarray(records.column("source").to_pylist(), dtype=object),
            lat=records.column("lat").to_numpy(zero_copy_only=False).astype(float),
            lon=records.column("lon").to_numpy(zero_copy_only=False).astype(float),
            extent=extent,
            name=names,
            alternates=key("name_alternates"),  # type: ignore[arg-type]
            brand=key("brand"),  # type: ignore[arg-type]
            phones=records.column("phones").to_pylist(),
            domains=key("domains"),  # type: ignore[arg-type]
            street=key("street"),  # type: ignore[arg-type]
            housenumber=key("housenumber"),  # type: ignore[arg-type]
            postcode=key("postcode"),  # type: ignore[arg-type]
            locality=key("locality"),  # type: ignore[arg-type]
            category=category,
            tfidf=_tfidf(names),
            commonness=commonness,
        )


def _tfidf(names: Sequence[str]) -> sparse.csr_matrix:
    """Rows of L2-normalized IDF weights of each name's words: a rare shared word weighs
    much, "cafe" little."""
    words = (
        pl.DataFrame({"name": list(names)})
        .with_row_index("row")
        .select("row", pl.col("name").str.split(" ").alias("word"))
        .explode("word")
        .filter(pl.col("word").is_not_null() & (pl.col("word") != ""))
        .unique(["row", "word"])
    )
    n = len(names)
    if words.height == 0:
        return sparse.csr_matrix((n, 1))
    vocabulary = words.select("word").unique(maintain_order=True).with_row_index("column")
    words = words.join(vocabulary, on="word")
    df = words.group_by("column").len()
    idf = np.zeros(vocabulary.height)
    idf[df["column"].to_numpy()] = np.log((n + 1) / (df["len"].to_numpy() + 1)) + 1.0
    rows = words["row"].to_numpy()
    columns = words["column"].to_numpy()
    matrix = sparse.csr_matrix((idf[columns], (rows, columns)), shape=(n, vocabulary.height))
    norms = np.sqrt(np.asarray(matrix.multiply(matrix).sum(axis=1)).ravel())
    norms[norms == 0] = 1.0
    return sparse.csr_matrix(sparse.diags(1.0 / norms) @ matrix)


def pair_features(view: RecordView, left: np.ndarray, right: np.ndarray) -> dict[str, np.ndarray]:
    """The features of every pair ``(left[i], right[i])`` of record rows, as float32 columns."""
    out: dict[str, np.ndarray] = {}
    distance = _haversine_m(view.lat[left], view.lon[left], view.lat[right], view.lon[right])
    out["distance_m"] = distance
    out["distance_over_extent"] = distance / np.maximum(view.extent[left], view.extent[right])

    # Gather by fancy indexing on object arrays, not a Python loop per pair.
    names = np.asarray(view.name, dtype=object)
    left_names = names[left].tolist()
    right_names = names[right].tolist()
    out["name_token_set"] = _cpdist(left_names, right_names, fuzz.token_set_ratio) / 100
    out["name_jaro_winkler"] = _cpdist(left_names, right_names, JaroWinkler.normalized_similarity)
    out["name_partial"] = _cpdist(left_names, right_names, fuzz.partial_ratio) / 100
    out["name_best_alternate"] = _best_alternate(view, left, right, out["name_token_set"])
    out["name_tfidf"] = np.asarray(view.tfidf[left].multiply(view.tfidf[right]).sum(axis=1)).ravel()
    out["name_commonness"] = np.maximum(view.commonness[left], view.commonness[right])

    out["brand_match"] = _equal(view.brand, left, right)
    out["phone_match"] = _overlap(view.phones, left, right)
    out["domain_match"] = _overlap(view.domains, left, right)
    out["housenumber_match"] = _equal(view.housenumber, left, right)
    out["street_similarity"] = _string_similarity(view.street, left, right)
    out["postcode_match"] = _equal(view.postcode, left, right)
    out["locality_match"] = _equal(view.locality, left, right)
    # How many of the two have coordinates: a missing distance means little when one has none.
    out["located"] = (~np.isnan(view.lat[left])).astype(float) + (~np.isnan(view.lat[right]))
    out["category_agreement"] = _category_agreement(view.category, left, right)
    out["same_source"] = (view.source[left] == view.source[right]).astype(float)
    return {name: np.asarray(out[name], dtype=np.float32) for name in FEATURES}


def _haversine_m(
    lat1: np.ndarray, lon1: np.ndarray, lat2: np.ndarray, lon2: np.ndarray
) -> np.ndarray:
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dp, dl = p2 - p1, np.radians(lon2 - lon1)
    a = np.sin(dp / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    return np.asarray(2 * 6_371_008.8 * np.arcsin(np.sqrt(np.clip(a, 0, 1))), dtype=float)


def _cpdist(a: list[str], b: list[str], scorer: object) -> np.ndarray:
    if not a:
        return np.zeros(0)
    # All cores: rapidfuzz splits the aligned lists between threads.
    return np.asarray(process.cpdist(a, b, scorer=scorer, workers=-1), dtype=float)  # type: ignore[arg-type]


def _best_alternate(
    view: RecordView, left: np.ndarray, right: np.ndarray, primary: np.ndarray
) -> np.ndarray:
    """The best token-set score over every pairing of the two records' names (primary and
    translations); the primary score where neither has alternates."""
    best = primary.copy()
    with_alternates = np.array([bool(a) for a in view.alternates], dtype=bool)  # per record
    has = with_alternates[left] | with_alternates[right]
    index: list[int] = []
    a: list[str] = []
    b: list[str] = []
    for k in np.flatnonzero(has):
        i, j = left[k], right[k]
        for x in [view.name[i], *(view.alternates[i] or [])]:
            for y in [view.name[j], *(view.alternates[j] or [])]:
                index.append(int(k))
                a.append(x)
                b.append(y)
    if index:
        scores = _cpdist(a, b, fuzz.token_set_ratio) / 100
        np.maximum.at(best, np.array(index), scores)
    return best


def _equal(values: list[str | None], left: np.ndarray, right: np.ndarray) -> np.ndarray:
    a = np.asarray(values, dtype=object)
    la, ra = a[left], a[right]
    known = (la != None) & (ra != None)  # noqa: E711  (element-wise on object arrays)
    out = np.full(len(left), np.nan)
    out[known] = (la[known] == ra[known]).astype(float)
    return out


def _overlap(values: list[list[str] | None], left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """1 where the two lists share a value, 0 where they do not, NaN where either is empty.

    Most records have at most one phone or domain: those compare as single values, at once;
    only pairs with a longer list on either side are compared as sets.
    """
    first = [v[0] if v else None for v in values]
    out = _equal(first, left, right)
    several = np.array([len(v) > 1 if v else False for v in values], dtype=bool)
    for k in np.flatnonzero((several[left] | several[right]) & ~np.isnan(out)):
        a, b = values[left[k]], values[right[k]]
        out[k] = 1.0 if set(a or ()) & set(b or ()) else 0.0
    return out


def _string_similarity(values: list[str | None], left: np.ndarray, right: np.ndarray) -> np.ndarray:
    out = np.full(len(left), np.nan)
    column = np.asarray(values, dtype=object)
    present = np.array([v is not None for v in values], dtype=bool)  # per record
    known = present[left] & present[right]
    if known.any():
        a = column[left[known]].tolist()
        b = column[right[known]].tolist()
        out[known] = _cpdist(a, b, JaroWinkler.normalized_similarity)
    return out


def _category_agreement(
    values: list[str | None], left: np.ndarray, right: np.ndarray
) -> np.ndarray:
    """2 the same category, 1 related (same branch of the tree, or often confused), 0 not."""
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
    coded = np.array([codes.get(v, n) if v is not None else n for v in values])
    return np.asarray(agreement[coded[left], coded[right]], dtype=float)
