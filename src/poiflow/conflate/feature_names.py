"""The names of the pair features, in the order a model reads them.

Apart from :mod:`poiflow.conflate.features`, which computes them with polars, rapidfuzz
and scipy: loading a model checks its feature list against these names, and a run loads
its model (to fail early on a bad one) before those libraries are needed.
"""

from __future__ import annotations

from typing import Final

__all__ = ["FEATURES"]

FEATURES: Final = (
    "distance_m",
    "distance_over_extent",
    "name_token_set",
    "name_jaro_winkler",
    "name_partial",
    "name_best_alternate",
    "name_tfidf",
    "name_commonness",
    "name_area_commonness",
    "brand_match",
    "phone_match",
    "domain_match",
    "page_match",
    "housenumber_match",
    "street_similarity",
    "postcode_match",
    "locality_match",
    "located",
    "category_agreement",
    "same_source",
)
