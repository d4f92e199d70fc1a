"""What a run's clusters say of each source, and its records of names, for the merge.

Learned once over all clusters, before any is merged (:func:`learn_sources`), so that
every engine (the local one, Spark's shards) and a stream merge alike:

- how far a source's points typically lie from their places' (:func:`source_precision`):
  the golden point weighs each point by it, and leaves out those too far for it;
- how often each of a source's values is right (:func:`source_accuracy`): what each
  attribute's confidence is reckoned from; it weighs the category's and the address's
  vote, and breaks ties between phone numbers;
- how many records carry each word of a name (:func:`name_words`): between two names
  backed alike, a typo's word is the rarer.

The figures of sources are rounded, so that a few records more or less leave them as
they were.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any, Final

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from poiflow.conflate.alike import address_key, site
from poiflow.conflate.features import word_counts
from poiflow.conflate.geo import haversine_m
from poiflow.conflate.merge import MergeConfig
from poiflow.conflate.naming import spellings
from poiflow.conflate.point import NEAR_M

__all__ = [
    "learn_sources",
    "learned_of",
    "name_words",
    "place_coverage",
    "source_accuracy",
    "source_precision",
    "with_learned",
]

_MIN_POINTS: Final = 3  # a place's median point means little with fewer
_MIN_RECORDS: Final = 20  # what a source is worth, from at least these of its records
_L: Final = "label"
_LEAST, _MOST = 0.05, 0.999  # an accuracy learned is kept within these
_FAINT: Final = 0.01  # a match probability below this is the matcher's floor, not a miss
# The attributes judged by how often sources agree on them (the location is judged apart).
_COMPARED: Final = ("name", "category", "address", "phone", "website", "opening_hours")


def learn_sources(records: pa.Table, labels: np.ndarray, config: MergeConfig) -> MergeConfig:
    """``config`` with what the records and their clusters say of each source: its points'
    precision (:func:`source_precision`), its values' accuracy (:func:`source_accuracy`)
    and the words of its names (:func:`name_words`). What ``config`` gives already wins.
    (How much of the world each source covers needs the scored pairs too:
    :func:`place_coverage`.)

    Args:
        records: The records (``PLACE_SCHEMA``).
        labels: Each record's cluster; a negative label leaves the record out.
        config: The merge's settings.
    """
    sources = records.column("source")
    located = _located(sources, records.column("lat"), records.column("lon"), labels)
    learned = {
        "precision_m": _precision(located),
        "accuracy": source_accuracy(records, labels, located),
        "name_words": name_words(records),
    }
    return with_learned(config, learned)


def learned_of(config: MergeConfig) -> dict[str, Any]:
    """What ``config`` says of each source, as plain data (what :func:`with_learned` reads):
    a stream keeps it in its snapshots, so that a restart merges as before."""
    return {
        "precision_m": dict(config.precision_m),
        "accuracy": {attribute: dict(v) for attribute, v in config.accuracy.items()},
        "name_words": dict(config.name_words),
        "whole": dict(config.whole),
        "split": dict(config.split),
    }


def with_learned(config: MergeConfig, learned: Mapping[str, Any]) -> MergeConfig:
    """``config`` with what was learned of each source (as :func:`learned_of` gives it);
    what ``config`` gives already wins."""
    accuracy = learned.get("accuracy", {})
    return dataclasses.replace(
        config,
        precision_m={**learned.get("precision_m", {}), **config.precision_m},
        accuracy={
            attribute: {**accuracy.get(attribute, {}), **config.accuracy.get(attribute, {})}
            for attribute in sorted({*accuracy, *config.accuracy})
        },
        name_words={**learned.get("name_words", {}), **config.name_words},
        whole={**learned.get("whole", {}), **config.whole},
        split={**learned.get("split", {}), **config.split},
    )


def place_coverage(
    sources: pa.Array | pa.ChunkedArray | np.ndarray,
    labels: np.ndarray,
    left: np.ndarray,
    right: np.ndarray,
    probability: np.ndarray,
) -> dict[str, Any]:
    """How much of the world each source covers, and so how often a place is whole: what
    a place's confidence is reckoned from (``MergeConfig.whole`` and ``.split``).

    Each source holds a record of a place or not, independently of the others. Then the
    places two sources share, against those each has, tell how many places there are
    (Lincoln-Petersen: n_s n_t / m_st, the median over pairs of sources); the matches the
    matcher missed would hide shared places, so m_st counts too, for each place and each
    source it lacks, the strongest probability of a scored pair to that source's records
    in other places (half from each side). A source's coverage is its places over them
    all, and of its places, those without any other source number n_s Π(1 - c_t):

    - ``whole[s]``: the share of the places of ``s``'s records alone that are so in the
      world, not a fragment of a place the matcher split (``expected / observed``);
    - ``split[t]``: how often a place without ``t`` has a record of ``t`` split off, the
      places of ``t`` alone beyond those expected, over the places without ``t``.

    Args:
        sources: Each record's source.
        labels: Each record's cluster; a negative label leaves the record out.
        left, right, probability: The scored pairs (record rows) and their match
            probability.

    Returns:
        ``places`` (the estimate of how many there are), ``coverage``, ``whole`` and
        ``split`` per source, rounded (a source that shares fewer than ``_MIN_RECORDS``
        places with every other is left out of ``whole`` and ``split``); empty where no
        two sources share that many.
    """
    labels = np.asarray(labels, dtype=np.int64)
    if isinstance(sources, np.ndarray):
        sources = pa.array(sources, pa.string())
    encoded = pc.dictionary_encode(
        sources.cast(pa.string()).combine_chunks()
        if isinstance(sources, pa.ChunkedArray)
        else sources
    )
    codes = np.asarray(encoded.indices, dtype=np.int64)
    names = encoded.dictionary.to_pylist()
    places = (
        pl.DataFrame({"source": codes, _L: labels})
        .filter(pl.col(_L) >= 0)
        .group_by(_L)
        .agg(pl.col("source").unique().sort().alias("sources"))
    )
    total = places.height
    holding = places.explode("sources").rename({"sources": "source"})
    held = {names[c]: n for c, n in holding.group_by("source").len().iter_rows()}
    shared = (
        holding.join(holding, on=_L, suffix="_t")
        .filter(pl.col("source") < pl.col("source_t"))
        .group_by("source", "source_t")
        .len()
    )
    missed = _missed_overlaps(codes, places, labels, left, right, probability)
    # The world's size as each pair of sources sees it, and as each source sees it with
    # the others (the median of its pairs): a source whose places the others lack (a
    # feed of new openings) sees a larger world, and its places alone are not fragments.
    seen: dict[str, list[float]] = {source: [] for source in held}
    for a, b, both in shared.iter_rows():
        if both >= _MIN_RECORDS:
            overlap = both + 0.5 * (missed.get((a, b), 0.0) + missed.get((b, a), 0.0))
            s, t = names[a], names[b]
            seen[s].append(held[s] * held[t] / overlap)
            seen[t].append(held[s] * held[t] / overlap)
    estimates = [n for sizes in seen.values() for n in sizes]
    if not estimates:
        return {}
    world = max(float(np.median(estimates)), float(max(held.values())))
    alone = {
        names[c]: n
        for c, n in places.filter(pl.col("sources").list.len() == 1)
        .group_by(pl.col("sources").list.first())
        .len()
        .iter_rows()
    }
    whole, split = {}, {}
    for s in sorted(held):
        observed = alone.get(s, 0)
        lacking = total - held[s]
        if not seen[s]:  # too few places shared with any other source to judge it by:
            continue  # the merge takes it as the least whole, and none split off of it
        size = max(float(np.median(seen[s])), float(max(held.values())))
        others = [min(n / size, _MOST) for t, n in held.items() if t != s]
        expected = held[s] * float(np.prod([1.0 - c for c in others]))
        whole[s] = round(min(max(expected / observed, _LEAST), _MOST), 3) if observed else _MOST
        split[s] = round(min(max(observed - expected, 0.0) / lacking, 0.5), 4) if lacking else 0.0
    return {
        "places": round(world),
        "coverage": {s: round(min(n / world, _MOST), 3) for s, n in sorted(held.items())},
        "whole": whole,
        "split": split,
    }


def _missed_overlaps(
    codes: np.ndarray,
    places: pl.DataFrame,
    labels: np.ndarray,
    left: np.ndarray,
    right: np.ndarray,
    probability: np.ndarray,
) -> dict[tuple[int, int], float]:
    """For each pair of sources (s, t) by code: over the places with ``s`` and without
    ``t``, the sum of each one's strongest match probability to a record of ``t`` in
    another place: how many places the two share that the matcher split. Pairs below
    ``_FAINT`` are left out: not matches missed, but the matcher's floor."""
    strong = np.flatnonzero(np.asarray(probability) >= _FAINT)
    probability = np.asarray(probability)[strong].astype(np.float64)
    left, right = np.asarray(left)[strong], np.asarray(right)[strong]
    place_l, place_r = labels[left], labels[right]
    source_l, source_r = codes[left], codes[right]
    keep = (place_l >= 0) & (place_r >= 0) & (place_l != place_r) & (source_l != source_r)
    sides = pl.DataFrame(
        {
            _L: np.concatenate([place_l[keep], place_r[keep]]),
            "t": np.concatenate([source_r[keep], source_l[keep]]),
            "p": np.concatenate([probability[keep], probability[keep]]),
        }
    )
    missed = (
        sides.group_by(_L, "t", maintain_order=True)  # summed below in one order
        .agg(pl.col("p").max())
        .join(places, on=_L, maintain_order="left")
        .filter(~pl.col("sources").list.contains(pl.col("t")))
        .explode("sources")
        .group_by("sources", "t")
        .agg(pl.col("p").sum())
    )
    return {(s, t): p for s, t, p in missed.iter_rows()}


def name_words(records: pa.Table) -> dict[str, int]:
    """How many records carry each word of their name key (``keys.name``: folded, legal
    forms aside): a typo's word is carried by few."""
    counted = word_counts(pc.struct_field(records.column("keys"), "name")).sort("word")
    return dict(zip(counted["word"].to_list(), counted["len"].to_list(), strict=True))


def source_precision(
    sources: pa.Array | pa.ChunkedArray,
    lat: pa.Array | pa.ChunkedArray,
    lon: pa.Array | pa.ChunkedArray,
    labels: np.ndarray,
) -> dict[str, float]:
    """How far each source's points typically lie from their places' (metres): over the
    places of at least ``_MIN_POINTS`` located records, the median distance of a source's
    points from the place's median point, for sources with at least ``_MIN_RECORDS``
    such points, rounded to steps of a factor of about 1.19.

    Args:
        sources, lat, lon: The records' source and coordinates.
        labels: Each record's cluster; a negative label leaves the record out.
    """
    return _precision(_located(sources, lat, lon, labels))


def _located(
    sources: pa.Array | pa.ChunkedArray,
    lat: pa.Array | pa.ChunkedArray,
    lon: pa.Array | pa.ChunkedArray,
    labels: np.ndarray,
) -> pl.DataFrame:
    """``source`` and ``metres`` of each located record of a place of at least
    ``_MIN_POINTS`` located records: how far it lies from the place's median point."""
    frame = (
        _frame(
            sources,
            labels,
            lat=pl.Series(lat, dtype=pl.Float64),
            lon=pl.Series(lon, dtype=pl.Float64),
        )
        .filter(pl.col("lat").is_not_null() & pl.col("lon").is_not_null() & (pl.col(_L) >= 0))
        .with_columns(
            pl.col("lat").median().over(_L).alias("mlat"),
            pl.col("lon").median().over(_L).alias("mlon"),
            pl.len().over(_L).alias("points"),
        )
        .filter(pl.col("points") >= _MIN_POINTS)
    )
    metres = haversine_m(*(frame[c].to_numpy() for c in ("lat", "lon", "mlat", "mlon")))
    return frame.select("source", pl.Series("metres", metres, dtype=pl.Float64))


def _precision(located: pl.DataFrame) -> dict[str, float]:
    typical = (
        located.group_by("source")
        .agg(pl.col("metres").median(), pl.len())
        .filter(pl.col("len") >= _MIN_RECORDS)
        .sort("source")
    )
    return {
        source: round(float(2 ** (round(4 * math.log2(max(m, 1.0))) / 4)), 1)
        for source, m in typical.select("source", "metres").iter_rows()
    }


def source_accuracy(
    records: pa.Table, labels: np.ndarray, located: pl.DataFrame | None = None
) -> dict[str, dict[str, float]]:
    """How often each source's value of each attribute is right (``name``, ``category``,
    ``address``, ``phone``, ``website``, ``opening_hours``, ``location``), for sources with
    at least ``_MIN_RECORDS`` records to judge by, rounded to three places.

    A value is judged by the others of its place, not by a truth the run lacks:

    - Two sources agree on a place's value when both are right, or (rarely) both wrong
      alike. So over the places both describe, the share where sources *s* and *t* agree
      is about the product of their accuracies, and with three sources or more each
      one's follows (least squares on the logarithms, each pair weighed by its places;
      two sources alone are taken to be alike). Name (as written, case, accents and
      punctuation aside), category (a known one), address (street and number), first
      phone, first website (the site it names) and opening hours (as normalization
      spells them).
    - A point is right when within ``NEAR_M`` of the place: the share of a source's
      points that close to the median point of a place of three located records or more.
      Where the other sources are often far off, so is the median, and the share is
      low for all (a judge that ignores its own point, or asks the others to agree,
      was further off on the generator's worlds: its noise counts against the judged).

    Args:
        records: The records (``PLACE_SCHEMA``).
        labels: Each record's cluster; a negative label leaves the record out.
        located: What ``_located`` made of the records, when made already.
    """
    names = pl.Series(pc.struct_field(records.column("names"), "primary"))
    frame = pl.DataFrame(
        records.select(
            ["source", "id", "categories", "address", "phones", "websites", "opening_hours"]
        )
    ).select(
        pl.Series(_L, np.asarray(labels, dtype=np.int64)),
        pl.col("source").cast(pl.String),
        pl.col("id").cast(pl.String),
        spellings(names).alias("name"),
        pl.col("categories").struct.field("primary").replace("other", None).alias("category"),
        address_key(pl.col("address")).alias("address"),
        pl.col("phones").list.first().alias("phone"),
        site(pl.col("websites").list.first()).alias("website"),
        pl.col("opening_hours"),
    )
    learned = _agreement(frame.filter(pl.col(_L) >= 0), list(_COMPARED))
    if located is None:
        located = _located(
            records.column("source"), records.column("lat"), records.column("lon"), labels
        )
    learned["location"] = _near_median(located)
    return {attribute: values for attribute, values in learned.items() if values}


def _near_median(located: pl.DataFrame) -> dict[str, float]:
    """Each source's share of points within ``NEAR_M`` of their place's median point
    (see :func:`source_accuracy`), smoothed ((near + 1) / (points + 2))."""
    near = (
        located.group_by("source")
        .agg((pl.col("metres") <= NEAR_M).sum().alias("near"), pl.len().alias("points"))
        .filter(pl.col("points") >= _MIN_RECORDS)
        .sort("source")
    )
    return {source: round((n + 1) / (points + 2), 3) for source, n, points in near.iter_rows()}


def _agreement(frame: pl.DataFrame, attributes: list[str]) -> dict[str, dict[str, float]]:
    """Each source's accuracy for each of ``attributes`` from how often pairs of sources
    agree (see :func:`source_accuracy`): ``frame`` is ``label, source, id`` and a column
    per attribute. Each source's value in a place is that of its first record there, by
    id: whatever order the input lists them in."""
    codes = frame.select(pl.col("source").unique().sort())["source"].to_list()
    one = (
        frame.sort("id")
        .with_columns(
            pl.col("source").replace_strict(codes, list(range(len(codes))), return_dtype=pl.Int32)
        )
        .filter(pl.col("source").n_unique().over(_L) >= 2)
        .group_by(_L, "source")
        .agg(pl.col(a).drop_nulls().first() for a in attributes)
    )
    pairs = (
        one.join(one, on=_L, suffix="_t")
        .filter(pl.col("source") < pl.col("source_t"))
        .group_by("source", "source_t")
        .agg(
            *((pl.col(a) == pl.col(f"{a}_t")).sum().alias(f"{a}_agree") for a in attributes),
            *(
                (pl.col(a).is_not_null() & pl.col(f"{a}_t").is_not_null()).sum().alias(f"{a}_n")
                for a in attributes
            ),
        )
        .sort("source", "source_t")
    )
    learned = {}
    for attribute in attributes:
        counted = pairs.filter(pl.col(f"{attribute}_n") >= _MIN_RECORDS)
        if counted.height:
            learned[attribute] = _solve(
                [codes[i] for i in counted["source"]],
                [codes[i] for i in counted["source_t"]],
                counted[f"{attribute}_agree"].to_numpy().astype(np.float64),
                counted[f"{attribute}_n"].to_numpy().astype(np.float64),
            )
    return learned


def _solve(left: list[str], right: list[str], agree: np.ndarray, n: np.ndarray) -> dict[str, float]:
    """Each source's accuracy a such that a_s * a_t is about each pair's share of agreeing
    places ((agree + 1) / (n + 2)): least squares on the logarithms, each pair weighed by
    the square root of its places."""
    names = sorted({*left, *right})
    index = {name: i for i, name in enumerate(names)}
    design = np.zeros((len(left), len(names)))
    rows = np.arange(len(left))
    design[rows, [index[s] for s in left]] = 1.0
    design[rows, [index[s] for s in right]] = 1.0
    rate = np.log((agree + 1.0) / (n + 2.0))
    weight = np.sqrt(n)[:, None]
    solution = np.linalg.lstsq(design * weight, rate * weight[:, 0], rcond=None)[0]
    accuracy = np.clip(np.exp(solution), _LEAST, _MOST)
    return {name: round(float(a), 3) for name, a in zip(names, accuracy, strict=True)}


def _frame(
    sources: pa.Array | pa.ChunkedArray, labels: np.ndarray, **columns: pl.Series
) -> pl.DataFrame:
    """The records' source and cluster, beside ``columns``."""
    return pl.DataFrame(
        {
            "source": pl.Series(sources, dtype=pl.String),
            _L: pl.Series(np.asarray(labels, dtype=np.int64)),
            **columns,
        }
    )
