"""Why a matcher scores a pair as it does: each feature's part of the score, in bits.

A trained model's score is a sum over its trees; SHAP values (LightGBM's own
``pred_contrib``, exact for trees) share each pair's sum out among its features, so that
the model's average pair plus every feature's part is the pair's score, in log-odds. A
Fellegi-Sunter model's score is a sum already: the prior odds plus each comparison's match
weight, ``log2(m / u)`` of the level the pair shows. Both are given here in bits (log2
odds: +1 bit doubles the odds of a match), as Splink's waterfall charts give match
weights, so that the two kinds of model read alike.

A trained model's probability is its score's logistic, mapped by the model's isotonic
calibration: a monotone map, so a part that raises the score never lowers the probability.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

import numpy as np

from poiflow.conflate.fellegi_sunter import COMPARISONS, FellegiSunter, comparison_levels
from poiflow.conflate.matcher import AnyMatcher, Matcher

__all__ = [
    "FEATURE_WORDS",
    "Explanation",
    "Part",
    "describe_feature",
    "explain_scores",
    "threshold_bits",
]

_LN2: Final = math.log(2.0)

FEATURE_WORDS: Final[dict[str, str]] = {
    "distance_m": "distance",
    "distance_over_extent": "distance, in category extents",
    "name_token_set": "names, word sets",
    "name_jaro_winkler": "names, Jaro-Winkler",
    "name_partial": "names, partial match",
    "name_best_alternate": "names, with other names",
    "name_tfidf": "names, rare words shared",
    "name_commonness": "name, how common",
    "name_area_commonness": "name, how common in its area",
    "brand_match": "brand",
    "phone_match": "phone",
    "domain_match": "website domain",
    "page_match": "website page",
    "housenumber_match": "house number",
    "street_similarity": "street",
    "postcode_match": "postcode",
    "locality_match": "locality",
    "located": "with coordinates",
    "category_agreement": "category",
    "same_source": "source",
}
"""Each pair feature in a person's words."""

_SAME: Final = {
    "brand_match",
    "phone_match",
    "domain_match",
    "page_match",
    "housenumber_match",
    "postcode_match",
    "locality_match",
}


def describe_feature(name: str, value: float) -> str:
    """A pair feature's value as a person reads it ("120 m", "same", "0.93")."""
    if math.isnan(value):
        return "distance unknown" if name.startswith("distance") else "one lacks it"
    if name == "distance_m":
        return f"{value:,.0f} m"
    if name == "distance_over_extent":
        return f"{value:.2f}"
    if name in _SAME:
        return "same" if value >= 0.5 else "different"
    if name == "category_agreement":
        return {2: "same", 1: "related"}.get(round(value), "unrelated")
    if name == "same_source":
        return "one source" if value >= 0.5 else "two sources"
    if name == "located":
        return f"{round(value)} of 2"
    # log1p of the records carrying the commoner name (in all the data, or in its area)
    if name in ("name_commonness", "name_area_commonness"):
        records = round(math.expm1(min(value, 40.0)))
        return f"{records:,} record{'' if records == 1 else 's'}"
    return f"{value:.2f}"


@dataclass(frozen=True, slots=True)
class Part:
    """One feature's (or comparison's) part of a pair's score.

    Attributes:
        name: The feature (a trained model) or comparison (Fellegi-Sunter).
        shows: What the pair shows there: the feature's value, or the comparison's level.
        bits: How far it moves the score, in bits (log2 odds of a match).
    """

    name: str
    shows: str
    bits: float

    @property
    def label(self) -> str:
        """The feature in a person's words (``FEATURE_WORDS``); a comparison by its name."""
        return FEATURE_WORDS.get(self.name, self.name)


@dataclass(frozen=True, slots=True)
class Explanation:
    """A pair's score, taken apart.

    Attributes:
        start_bits: The score before this pair's evidence: a trained model's average pair,
            or a Fellegi-Sunter model's prior odds, in bits.
        parts: Each feature's or comparison's part, largest first (by size).
        probability: The model's match probability of the pair.
        calibrated: True where a calibration map lies between the score and the
            probability (a trained model); False where the probability is the score's
            logistic (Fellegi-Sunter).
    """

    start_bits: float
    parts: tuple[Part, ...]
    probability: float
    calibrated: bool

    @property
    def total_bits(self) -> float:
        """The pair's score in bits: the start plus every part."""
        return self.start_bits + sum(part.bits for part in self.parts)

    def as_dict(self) -> dict[str, object]:
        """JSON-ready."""
        return {
            "start_bits": round(self.start_bits, 4),
            "total_bits": round(self.total_bits, 4),
            "probability": round(self.probability, 6),
            "calibrated": self.calibrated,
            "parts": [
                {
                    "name": p.name,
                    "label": p.label,
                    "shows": p.shows,
                    "bits": round(p.bits, 4),
                }
                for p in self.parts
            ],
        }


def explain_scores(model: AnyMatcher, features: Mapping[str, np.ndarray]) -> list[Explanation]:
    """Each pair's score taken apart by ``model`` (one explanation a pair, in order).

    Args:
        model: A trained matcher or a Fellegi-Sunter model.
        features: The pairs' feature columns (``features.pair_features``, or the columns of
            a run's ``pairs.parquet``).
    """
    if isinstance(model, FellegiSunter):
        return _fellegi_sunter(model, features)
    return _trees(model, features)


def threshold_bits(model: AnyMatcher, threshold: float) -> float:
    """The score, in bits, from which ``model`` gives a pair at least ``threshold``: what a
    pair's parts must add up to for clustering to join it (-inf where every score does,
    inf where none does).

    A trained model's probability is its calibration of the score's logistic: the least
    score whose calibrated probability reaches the threshold, interpolated between the
    calibration's knots as ``Matcher.predict`` does.
    """
    if isinstance(model, FellegiSunter):
        raw = threshold
    else:
        x, y = (np.asarray(a, dtype=float) for a in model.calibration)
        reached = np.flatnonzero(y >= threshold)
        if len(reached) == 0:
            return math.inf
        k = int(reached[0])
        if k == 0:
            return -math.inf
        raw = x[k - 1] + (threshold - y[k - 1]) * (x[k] - x[k - 1]) / (y[k] - y[k - 1])
    if raw <= 0.0:
        return -math.inf
    if raw >= 1.0:
        return math.inf
    return math.log2(raw / (1 - raw))


def _trees(model: Matcher, features: Mapping[str, np.ndarray]) -> list[Explanation]:
    columns = [np.asarray(features[name], dtype=np.float32) for name in model.features]
    if not columns or len(columns[0]) == 0:
        return []
    matrix = np.column_stack(columns)
    # SHAP values in log-odds, one column a feature and the model's average (the bias) last.
    shap = np.asarray(model.booster.predict(matrix, pred_contrib=True, num_threads=1))
    probability = model.predict(features)
    found = []
    for i in range(len(matrix)):
        parts = [
            Part(name, describe_feature(name, float(matrix[i, j])), float(shap[i, j]) / _LN2)
            for j, name in enumerate(model.features)
        ]
        found.append(
            Explanation(
                float(shap[i, -1]) / _LN2, _largest_first(parts), float(probability[i]), True
            )
        )
    return found


def _fellegi_sunter(model: FellegiSunter, features: Mapping[str, np.ndarray]) -> list[Explanation]:
    levels = comparison_levels(features)
    probability = model.predict(features)
    start = math.log2(model.prior / (1 - model.prior))
    found = []
    for i in range(len(levels)):
        parts = []
        for j, (name, labels) in enumerate(COMPARISONS.items()):
            level = int(levels[i, j])
            if level < 0:  # the two records cannot be compared on it: left out of the score
                parts.append(Part(name, "not comparable", 0.0))
                continue
            weight = math.log2(float(model.m[name][level]) / float(model.u[name][level]))
            parts.append(Part(name, labels[level], weight))
        found.append(Explanation(start, _largest_first(parts), float(probability[i]), False))
    return found


def _largest_first(parts: list[Part]) -> tuple[Part, ...]:
    return tuple(sorted(parts, key=lambda part: (-abs(part.bits), part.name)))
