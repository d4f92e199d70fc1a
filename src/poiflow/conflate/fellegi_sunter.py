"""The unsupervised matcher: Fellegi-Sunter match weights, fitted by EM without labels.

Each candidate pair is compared on a few *comparisons* (name, where, phone, website,
address, category, brand, source), each cut into levels from the pair features, best level first;
a comparison the two records cannot make (one has no phone) is left out of the pair's
score, not counted against it. The model holds, per comparison and level, ``m`` (how often
a true match shows that level) and ``u`` (how often a non-match does); a pair's match
weight is the sum of ``log2(m / u)`` over its comparisons, and its probability follows
from the prior share of matches ``lambda``.

Without labels, ``m``, ``u`` and ``lambda`` are fitted by expectation-maximisation over the
run's own candidate pairs, which is the population the model will score (``u`` estimated
from random pairs instead would describe pairs blocking never proposes, and call every
neighbour a match). Comparisons that move together among non-matches (street, house
number and postcode: neighbours share them) are one comparison with joint levels, so
that the independence EM assumes roughly holds. EM runs on the distinct comparison
patterns with their counts, a few thousand rows whatever the number of pairs, in two
stages that keep it from settling on "same chain" instead of "same place", and a third
that frees it from there (see :func:`fit_fellegi_sunter`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np

from poiflow.errors import NoCandidatesError

__all__ = [
    "COMPARISONS",
    "FellegiSunter",
    "PatternCounts",
    "comparison_levels",
    "count_patterns",
    "fit_fellegi_sunter",
    "fit_patterns",
]

KIND: Final = "fellegi-sunter"

# Each comparison's levels, best evidence of a match first.
COMPARISONS: Final[dict[str, tuple[str, ...]]] = {
    "name": (
        "exact, rare name",
        "exact, name seen up to 16 times",
        "exact, common name",
        "similar (>= 0.9)",
        "alike (>= 0.75)",
        "some overlap (>= 0.5)",
        "different",
    ),
    "where": (
        "within a quarter of the category's extent",
        "within 0.6 extent",
        "within 1.5 extents",
        "within 4 extents",
        "further",
        "no coordinates, same locality",
        "no coordinates, other locality",
    ),
    "phone": ("shared", "different"),
    "website": ("same page", "same domain", "different domain or page"),
    "address": ("same street and number", "same street", "same postcode", "different"),
    "category": ("same", "related", "unrelated"),
    "brand": ("same", "different"),
    "source": ("other sources", "one source"),
}
# What is known of each comparison's levels before any data: along each chain, evidence
# can only weaken (a match weight never rises from one level to the next); each of
# ``between``'s levels lies between two others. EM fits within these bounds, so that it
# cannot settle on a latent split that is not "same place", such as "far apart" or "same
# chain".
_ORDER: Final[dict[str, tuple[tuple[tuple[int, ...], ...], dict[int, tuple[int, int]]]]] = {
    "name": (((0, 1, 3, 4, 5, 6),), {2: (1, 4)}),
    "where": (((0, 1, 2, 3, 4), (5, 6)), {}),
    "phone": (((0, 1),), {}),
    "website": (((0, 1, 2),), {}),
    "address": (((0, 1, 3),), {2: (0, 3)}),
    "category": (((0, 1, 2),), {}),
    "brand": (((0, 1),), {}),
    "source": (((0, 1),), {}),
}
# Known before any data, as a least gap in bits between two levels' match weights: a
# record in another locality is at least 16 times less likely the same place than one in
# the same locality. Where vendors have no coordinates, EM otherwise pools the two levels
# (a chain's branches in other towns share its name and domain); on generated worlds
# without vendor coordinates, pair F1 0.8577 -> 0.8950 and 0.8926 -> 0.9203, and within
# 0.0004 on four worlds with coordinates (see benchmarks/RESULTS.md). Likewise a record
# further than four extents away weighs at least 4 bits less than one within them: on a
# generated world of Japanese names EM pooled every distance at +3.1 bits (chains' far
# branches share name, brand and domain) and pair F1 fell to 0.81; with the gap, 0.96.
_GAPS: Final[dict[str, dict[int, tuple[int, float]]]] = {"where": {4: (3, 4.0), 6: (5, 4.0)}}
# Known before any data, and held: a place is rarely in one source twice (most feeds
# have few duplicates). Without this, EM on a big feed and a small one settles on
# whatever splits the big feed's own pairs best.
_HELD_M: Final[dict[str, tuple[float, ...]]] = {"source": (0.95, 0.05)}
# The features the levels are cut from.
INPUTS: Final = (
    "name_token_set",
    "name_best_alternate",
    "name_jaro_winkler",
    "name_commonness",
    "distance_over_extent",
    "locality_match",
    "phone_match",
    "domain_match",
    "page_match",
    "street_similarity",
    "housenumber_match",
    "postcode_match",
    "category_agreement",
    "brand_match",
    "same_source",
)
_NULL: Final = -1
# A pattern as one integer: each comparison's level (null as one more digit) a digit.
_RADIX: Final = np.array([len(levels) + 1 for levels in COMPARISONS.values()], dtype=np.int64)
_PLACE: Final = np.concatenate([[1], np.cumprod(_RADIX[:-1])])


def _monotone(
    m: np.ndarray,
    u: np.ndarray,
    weight: np.ndarray,
    order: tuple[Any, Any],
    gaps: Mapping[int, tuple[int, float]] | None = None,
) -> np.ndarray:
    """``m`` moved the least (in weighted log-ratio) to respect ``order``, then ``gaps``
    (a level's weight at least so many bits below another's), ``u`` kept."""
    ratio = np.log(m / u)
    chains, between = order
    for chain in chains:
        index = np.asarray(chain)
        ratio[index] = _decreasing(ratio[index], weight[index])
    for level, (upper, lower) in between.items():
        ratio[level] = np.clip(ratio[level], ratio[lower], ratio[upper])
    for level, (above, bits) in (gaps or {}).items():
        ratio[level] = min(ratio[level], ratio[above] - bits * np.log(2))
    fitted = u * np.exp(ratio)
    return np.asarray(fitted / fitted.sum())


def _decreasing(values: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Weighted least-squares non-increasing fit (pool adjacent violators)."""
    blocks: list[list[float]] = []  # [mean, weight, length]
    for value, w in zip(values.tolist(), np.maximum(weight, 1e-9).tolist(), strict=True):
        blocks.append([value, w, 1])
        while len(blocks) > 1 and blocks[-2][0] < blocks[-1][0]:
            v2, w2, n2 = blocks.pop()
            v1, w1, n1 = blocks.pop()
            blocks.append([(v1 * w1 + v2 * w2) / (w1 + w2), w1 + w2, n1 + n2])
    return np.concatenate([np.full(int(n), v) for v, _, n in blocks])


def comparison_levels(features: Mapping[str, np.ndarray]) -> np.ndarray:
    """The level of every comparison of every pair: int8 columns in ``COMPARISONS`` order,
    -1 where the two records cannot be compared on it."""
    n = len(next(iter(features.values()))) if features else 0
    columns = [
        _name(features),
        _where(features),
        _binary(features["phone_match"]),
        _website(features),
        _address(features),
        _cut(features["category_agreement"], (1.5, 0.5)),
        _binary(features["brand_match"]),
        _cut(features["same_source"], (0.5,), larger_is_better=False),
    ]
    return (
        np.column_stack(columns).astype(np.int8) if n else np.zeros((0, len(COMPARISONS)), np.int8)
    )


def _cut(
    values: np.ndarray, edges: tuple[float, ...], *, larger_is_better: bool = True
) -> np.ndarray:
    """Level 0 above the first edge (or below, when smaller is better), 1 above the next..."""
    values = np.asarray(values, dtype=float)
    level = np.zeros(len(values), dtype=np.int8)
    for edge in edges:
        level += (values < edge) if larger_is_better else (values > edge)
    level[np.isnan(values)] = _NULL
    return level


def _binary(values: np.ndarray) -> np.ndarray:
    return _cut(values, (0.5,))


def _name(f: Mapping[str, np.ndarray]) -> np.ndarray:
    token = np.fmax(f["name_token_set"], f["name_best_alternate"])
    best = np.fmax(token, f["name_jaro_winkler"])
    seen = np.expm1(np.asarray(f["name_commonness"], dtype=float))  # records with that name
    exact = np.where(seen <= 4, 0, np.where(seen <= 16, 1, 2))
    similar = _cut(best, (0.9, 0.75)) + 3  # 3, 4 or 5
    level = np.where(
        token >= 0.999, exact, np.where(best >= 0.75, similar, _cut(token, (0.5,)) + 5)
    )
    return level.astype(np.int8)


def _where(f: Mapping[str, np.ndarray]) -> np.ndarray:
    level = _cut(f["distance_over_extent"], (0.25, 0.6, 1.5, 4.0), larger_is_better=False)
    unplaced = level == _NULL
    locality = _binary(f["locality_match"])
    level[unplaced & (locality >= 0)] = 5 + locality[unplaced & (locality >= 0)]
    return level


def _website(f: Mapping[str, np.ndarray]) -> np.ndarray:
    """Same branch page, else same domain, else different (another domain, or another
    page of the same one: another branch of the chain)."""
    domain = np.asarray(f["domain_match"], dtype=float)
    page = np.asarray(f["page_match"], dtype=float)
    level = np.full(len(domain), _NULL, dtype=np.int8)
    level[domain == 1] = 1
    level[(domain == 0) | (page == 0)] = 2
    level[page == 1] = 0
    return level


def _address(f: Mapping[str, np.ndarray]) -> np.ndarray:
    street = np.asarray(f["street_similarity"], dtype=float)
    number = np.asarray(f["housenumber_match"], dtype=float)
    postcode = np.asarray(f["postcode_match"], dtype=float)
    level = np.full(len(street), _NULL, dtype=np.int8)
    level[postcode == 1] = 2
    level[(postcode == 0) | (street < 0.9)] = 3
    level[street >= 0.9] = 1
    level[(street >= 0.9) & (number == 1)] = 0
    level[(street >= 0.9) & (number == 0)] = 3
    return level


@dataclass
class FellegiSunter:
    """A Fellegi-Sunter model: ``m`` and ``u`` per comparison level, and the prior.

    Attributes:
        m: Per comparison, P(level | match), best level first.
        u: Per comparison, P(level | non-match).
        prior: The share of candidate pairs that are matches (``lambda``).
        threshold: The probability from which a pair joins two records into one place.
            Lower than a trained model's: the independence Fellegi-Sunter assumes makes
            its probabilities of true matches too low, not too high (on generated worlds,
            0.05 gives the best F1 after clustering).
        info: How the model was fitted (pairs, patterns, iterations, converged).
    """

    m: dict[str, np.ndarray]
    u: dict[str, np.ndarray]
    prior: float
    threshold: float = 0.05
    info: dict[str, Any] = field(default_factory=dict)

    features: tuple[str, ...] = INPUTS

    @property
    def version(self) -> str:
        """The model's name, as run reports show it."""
        return str(self.info.get("name", KIND))

    def weights(self) -> dict[str, dict[str, float]]:
        """Match weight, ``log2(m / u)``, of every level of every comparison."""
        return {
            name: {
                label: round(float(np.log2(self.m[name][k] / self.u[name][k])), 3)
                for k, label in enumerate(labels)
            }
            for name, labels in COMPARISONS.items()
        }

    def match_weight(self, levels: np.ndarray) -> np.ndarray:
        """The total match weight (log2 Bayes factor plus prior odds) of each pair."""
        total = np.full(len(levels), np.log2(self.prior / (1 - self.prior)))
        for j, name in enumerate(COMPARISONS):
            column = levels[:, j]
            known = column != _NULL
            bf = np.log2(self.m[name] / self.u[name])
            total[known] += bf[column[known]]
        return total

    def prepare(self, on_compile: Callable[[], None] | None = None) -> bool:
        """Nothing to compile (``Matcher.prepare``'s counterpart): False."""
        return False

    def predict(self, features: Mapping[str, np.ndarray]) -> np.ndarray:
        """Match probabilities of the pairs whose features are given."""
        levels = comparison_levels(features)
        if len(levels) == 0:
            return np.zeros(0, dtype=np.float32)
        weight = np.clip(self.match_weight(levels), -60, 60)
        return np.asarray(1 / (1 + np.exp2(-weight)), dtype=np.float32)

    def describe(self) -> dict[str, Any]:
        """How the model was fitted, its prior and its match weights (for run reports)."""
        return {**self.info, "prior": round(self.prior, 6), "match_weights": self.weights()}

    def to_payload(self) -> dict[str, Any]:
        """The model as JSON-ready data (the body of a model file)."""
        return {
            "kind": KIND,
            "features": list(self.features),
            "threshold": self.threshold,
            "prior": self.prior,
            "m": {k: v.tolist() for k, v in self.m.items()},
            "u": {k: v.tolist() for k, v in self.u.items()},
            "info": self.info,
        }

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> FellegiSunter:
        """The model a :meth:`to_payload` body describes.

        Raises:
            ValueError: The comparisons or their levels are not the ones poiflow makes.
        """
        m = {k: np.asarray(v, dtype=float) for k, v in payload["m"].items()}
        u = {k: np.asarray(v, dtype=float) for k, v in payload["u"].items()}
        for name, labels in COMPARISONS.items():
            for table in (m, u):
                if name not in table or table[name].shape != (len(labels),):
                    msg = f"comparison {name!r} needs {len(labels)} levels"
                    raise ValueError(msg)
        return cls(
            m,
            u,
            float(payload["prior"]),
            float(payload.get("threshold", 0.05)),
            dict(payload.get("info", {})),
        )


def fit_fellegi_sunter(
    features: Mapping[str, np.ndarray],
    *,
    max_iterations: int = 200,
    tolerance: float = 1e-5,
    smoothing: float = 1.0,
    name: str = KIND,
) -> FellegiSunter:
    """Fit ``m``, ``u`` and the prior by EM on unlabelled candidate pairs.

    EM has more than one answer on candidate pairs: besides "same place", the pairs split
    well into "same chain" (one name, one website, one brand, anywhere in town). Two stages
    keep it on the first, and a third fits it freely from there:

    1. ``u`` is held at each level's share over all pairs (most candidates are not
       matches, so this is close to the truth), and EM fits ``m`` and the prior. Held
       ``u`` makes "same chain" a poor fit: its pairs are common, so their levels are
       already likely under ``u``.
    2. EM fits everything else, with ``m`` of the "where" and "name" comparisons held at
       what stage 1 found: a match is near (or in the same locality), which is what a
       chain is not, and freeing the name's ``m`` from the start lets "same chain" back in
       where the records carry no coordinates (a vendor feed matched to OSM by name and
       town).
    3. EM fits every ``m`` and ``u`` again from there (but the held source's). Stage 1's
       ``u`` counts the matches too, so its ``m`` of the levels matches seldom show (names
       only alike, a record far away) comes out far too small: on generated worlds a name
       only alike weighed -7.4 to -11 bits against -4 to -5 counted from the truth, and
       true pairs with a typo or an abbreviation were scored apart. Started from stage 2's
       "same place", this stage stays there and brings those weights to within about a
       bit of the truth (see benchmarks/RESULTS.md).

    Every step also keeps the order of each comparison's levels (see ``_ORDER``).

    Args:
        features: Feature columns of the candidate pairs (from ``pair_features``).
        max_iterations: Each stage stops here if it has not converged.
        tolerance: A stage stops when no probability moves more than this in one step.
        smoothing: Pseudo-count added to every level in every step, so that no level is
            ever impossible (a zero ``m`` would veto a match on one comparison alone).
        name: A name recorded in the model.

    Raises:
        NoCandidatesError: There are no pairs to fit on (a ``ValueError`` too).
    """
    return fit_patterns(
        count_patterns(features),
        max_iterations=max_iterations,
        tolerance=tolerance,
        smoothing=smoothing,
        name=name,
    )


@dataclass(frozen=True, slots=True)
class PatternCounts:
    """The distinct comparison patterns of some pairs, and how many pairs show each: all
    that EM needs of the pairs. Counts of the pairs in parts (a part at a time, as the
    Spark engine brings scored pairs to the driver) add up to the counts of the whole.

    Attributes:
        codes: One integer per pattern (mixed radix of the comparisons' levels, null as
            one more digit), ascending.
        counts: How many pairs show each.
    """

    codes: np.ndarray
    counts: np.ndarray

    def __add__(self, other: PatternCounts) -> PatternCounts:
        codes, inverse = np.unique(np.concatenate([self.codes, other.codes]), return_inverse=True)
        counts = np.zeros(len(codes), dtype=np.int64)
        np.add.at(counts, inverse, np.concatenate([self.counts, other.counts]))
        return PatternCounts(codes, counts)


def count_patterns(features: Mapping[str, np.ndarray]) -> PatternCounts:
    """The comparison patterns of the pairs whose features are given, counted."""
    levels = comparison_levels(features)
    # np.unique on integers is far faster than on rows.
    codes, counts = np.unique((levels.astype(np.int64) + 1) @ _PLACE, return_counts=True)
    return PatternCounts(codes, counts.astype(np.int64))


def fit_patterns(
    patterns: PatternCounts,
    *,
    max_iterations: int = 200,
    tolerance: float = 1e-5,
    smoothing: float = 1.0,
    name: str = KIND,
) -> FellegiSunter:
    """:func:`fit_fellegi_sunter` on the counted patterns of the pairs (the same model as
    on their features)."""
    codes, counts = patterns.codes, patterns.counts
    if counts.sum() == 0:
        raise NoCandidatesError("fitting a Fellegi-Sunter model")
    sizes = [len(labels) for labels in COMPARISONS.values()]
    em = _EM(
        ((codes[:, None] // _PLACE) % _RADIX - 1).astype(np.int8),
        counts.astype(float),
        smoothing=smoothing,
    )
    for j, size in enumerate(sizes):
        column = em.patterns[:, j]
        known = column != _NULL
        share = np.bincount(column[known], em.counts[known], size) + smoothing
        em.u.append(share / share.sum())
        start = 0.5 ** np.arange(size)
        em.m.append(start / start.sum())
    names = list(COMPARISONS)
    held = {names.index(k): np.asarray(v) for k, v in _HELD_M.items()}
    for j, values in held.items():
        em.m[j] = values
    first = em.run(max_iterations, tolerance, hold_u=True, hold_m=held)
    anchors = {names.index(k): em.m[names.index(k)].copy() for k in ("where", "name")}
    second = em.run(max_iterations, tolerance, hold_m={**held, **anchors})
    third = em.run(max_iterations, tolerance, hold_m=held)
    return FellegiSunter(
        dict(zip(names, em.m, strict=True)),
        dict(zip(names, em.u, strict=True)),
        em.prior,
        info={
            "name": name,
            "kind": KIND,
            "pairs": int(counts.sum()),
            "patterns": len(codes),
            "iterations": first[0] + second[0] + third[0],
            "converged": first[1] and second[1] and third[1],
        },
    )


@dataclass
class _EM:
    """EM over distinct comparison patterns weighted by their counts."""

    patterns: np.ndarray
    counts: np.ndarray
    m: list[np.ndarray] = field(default_factory=list)
    u: list[np.ndarray] = field(default_factory=list)
    prior: float = 0.1
    smoothing: float = 1.0

    def run(
        self,
        max_iterations: int,
        tolerance: float,
        *,
        hold_u: bool = False,
        hold_m: Mapping[int, np.ndarray] | None = None,
    ) -> tuple[int, bool]:
        """Iterate until no probability moves more than ``tolerance``; return the steps
        taken and whether it converged. ``hold_m`` holds some comparisons' ``m`` (kept in
        the order of their levels as ``u`` moves)."""
        held = hold_m or {}
        orders = list(_ORDER.values())
        gaps = [_GAPS.get(name) for name in COMPARISONS]
        for iteration in range(1, max_iterations + 1):
            log_m = np.full(len(self.patterns), np.log(self.prior))
            log_u = np.full(len(self.patterns), np.log(1 - self.prior))
            for j, column in enumerate(self.patterns.T):
                known = column != _NULL
                log_m[known] += np.log(self.m[j][column[known]])
                log_u[known] += np.log(self.u[j][column[known]])
            as_match = self.counts / (1 + np.exp(np.clip(log_u - log_m, -700, 700)))
            as_other = self.counts - as_match
            before = np.concatenate([*self.m, *self.u, [self.prior]])
            for j, column in enumerate(self.patterns.T):
                known = column != _NULL
                size = len(self.m[j])
                mm = np.bincount(column[known], as_match[known], size) + self.smoothing
                uu = np.bincount(column[known], as_other[known], size) + self.smoothing
                if not hold_u:
                    self.u[j] = uu / uu.sum()
                fitted = held[j] if j in held else mm / mm.sum()
                self.m[j] = _monotone(fitted, self.u[j], mm, orders[j], gaps[j])
            self.prior = float(np.clip(as_match.sum() / self.counts.sum(), 1e-6, 1 - 1e-6))
            after = np.concatenate([*self.m, *self.u, [self.prior]])
            if float(np.abs(after - before).max()) < tolerance:
                return iteration, True
        return max_iterations, False
