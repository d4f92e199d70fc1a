"""How right the golden records are: each golden place's attributes against the truth.

Matching quality (:mod:`poiflow.conflate.evaluate`) says whether the right records were
put together; this says whether the place made of them says the right things. Each golden
place is held to the true place most of its records describe, attribute by attribute:

``place``
    The place itself: right when its records are all of one true place, and all the
    records the truth has of it (not two places merged, nor a fragment of one); its
    confidence is the place's ``confidence``.
``name``
    The primary name, folded (case, accents and punctuation aside: "NORDEA" is "Nordea").
``name as written``
    The primary name, character for character: what a map would show.
``category``
    The primary category.
``location``
    Within ``NEAR_M`` metres of the true point (and the distances' median and 90th
    percentile).
``address``
    Street (folded) and house number.
``phone``
    The first phone (both normalized to E.164).
``website``
    The first website, as the site it names (``alike.site``: scheme, case, "www." and a
    trailing "/" aside).
``brand``
    The brand's name, folded.
``opening hours``
    The hours, as normalization spells them (OSM's syntax): the same hours written
    another way are the same value.

Per attribute: how many places the truth gives a value (``true``), how many of those the
golden record gives one (``given``, and ``coverage`` = given / true), how many of those are
right (``accuracy`` = correct / given), and how many values it gives that the truth does
not have (``spurious``: a brand on a place that has none). The same for the simplest merge
a user might write instead (``naive``): each place takes every attribute from its first
member record, sources in name order. And each attribute's own confidence
(``attribute_confidence``), binned, against how often it is right: a confidence is worth
reading only if higher means right more often, and worth trusting as a probability only
if a value of confidence 0.9 is right nine times in ten. Two figures say how far it is:
the calibration error (the gap between each bin's mean confidence and its accuracy,
averaged over the values) and the Brier score (the mean squared gap between each value's
confidence and 1 if right, 0 if not; lower is better, and a confidence that knows nothing
beyond the accuracy scores accuracy * (1 - accuracy)).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import polars as pl
import pyarrow as pa

from poiflow.conflate.alike import site
from poiflow.conflate.evaluate import plurality
from poiflow.conflate.geo import haversine_m
from poiflow.conflate.point import NEAR_M
from poiflow.text import fold

__all__ = [
    "ATTRIBUTES",
    "CONFIDENCE_BINS",
    "GOLDEN_READS",
    "NEAR_M",
    "READS",
    "PlaceAccuracy",
    "score_places",
]

# The columns read of golden places (and ``attribute_confidence``) and of records.
READS: Final = (
    "names",
    "categories",
    "lat",
    "lon",
    "address",
    "phones",
    "websites",
    "brand",
    "opening_hours",
)
# The columns of golden places scored: what ``score_places`` reads of ``places.parquet``.
GOLDEN_READS: Final = ("id", *READS, "confidence", "attribute_confidence")
ATTRIBUTES: Final = (
    "place",
    "name",
    "name as written",
    "category",
    "location",
    "address",
    "phone",
    "website",
    "brand",
    "opening hours",
)
# (label, lowest confidence): the bins of the calibration table, each up to the next.
CONFIDENCE_BINS: Final = (
    ("< 0.5", 0.0),
    ("0.5-0.8", 0.5),
    ("0.8-0.9", 0.8),
    ("0.9-0.95", 0.9),
    ("0.95-0.99", 0.95),
    (">= 0.99", 0.99),
)
# Which confidence of ``attribute_confidence`` speaks for each attribute (the place's is
# its own ``confidence``).
_CONFIDENCE: Final = {
    "place": "place",
    "name": "name",
    "category": "category",
    "location": "location",
    "address": "address",
    "phone": "phone",
    "website": "website",
}


@dataclass(frozen=True, slots=True)
class PlaceAccuracy:
    """How right the golden records are (see the module's text).

    Attributes:
        places: Golden places scored: those with a record the truth knows.
        table: One row per attribute: ``attribute``, ``true``, ``given``, ``coverage``,
            ``correct``, ``accuracy``, ``spurious``, the naive merge's ``naive_given``,
            ``naive_accuracy``, and (attributes with a confidence of their own)
            ``calibration_error`` and ``brier``.
        calibration: ``attribute``, ``confidence`` (a bin of ``CONFIDENCE_BINS``),
            ``places`` (golden values in the bin that the truth can check), ``accuracy``,
            ``mean_confidence``.
        location_m: Median and 90th percentile of the metres between the golden and the
            true point (``median``, ``p90``), and the naive merge's (``naive_median``,
            ``naive_p90``); None where no place has both.
    """

    places: int
    table: pl.DataFrame
    calibration: pl.DataFrame
    location_m: dict[str, float | None]

    def accuracy(self, attribute: str) -> float | None:
        """The share of given values of ``attribute`` that are right."""
        row = self.table.filter(pl.col("attribute") == attribute)
        return row["accuracy"].item() if row.height else None

    def metrics(self) -> dict[str, float]:
        """The figures as flat metrics, for a run's ``metrics`` (and so for tracking and
        ``poiflow compare``): ``golden.<attribute>.<figure>`` for ``accuracy``,
        ``coverage``, ``naive_accuracy``, ``calibration_error`` and ``brier`` (the
        attribute's spaces as "_"), ``golden.location.median_m`` and ``.p90_m``; figures
        that are None are left out."""
        figures = ("accuracy", "coverage", "naive_accuracy", "calibration_error", "brier")
        out: dict[str, float] = {}
        for row in self.table.iter_rows(named=True):
            name = row["attribute"].replace(" ", "_")
            for figure in figures:
                if row[figure] is not None:
                    out[f"golden.{name}.{figure}"] = float(row[figure])
        for key, metres in (("median_m", "median"), ("p90_m", "p90")):
            if self.location_m[metres] is not None:
                out[f"golden.location.{key}"] = float(self.location_m[metres])  # type: ignore[arg-type]
        return out

    def as_dict(self) -> dict[str, Any]:
        """Plain data, for JSON."""
        return {
            "places": self.places,
            "attributes": self.table.to_dicts(),
            "calibration": self.calibration.to_dicts(),
            "location_m": self.location_m,
        }


def score_places(
    places: pa.Table | pl.DataFrame,
    membership: pa.Table | pl.DataFrame,
    gold: pa.Table | pl.DataFrame,
    truth: pa.Table | pl.DataFrame,
    records: pa.Table | pl.DataFrame | None = None,
) -> PlaceAccuracy:
    """Score golden places against the true places.

    Args:
        places: The golden places (``places.parquet`` of a run).
        membership: ``source, id, place_id`` of the run.
        gold: ``source, id, place``: which true place each record describes.
        truth: The true places, normalized like any input (``PLACE_SCHEMA``), their id the
            true place's (``gold_places.csv`` of ``poiflow generate``, ingested).
        records: The run's normalized input records (``records.parquet``), for the naive
            merge; without them its columns are null.
    """
    members = pl.DataFrame(membership).select(
        pl.col("source").cast(pl.String), pl.col("id").cast(pl.String), "place_id"
    )
    # Each golden place's true place: the one most of its records describe.
    votes = plurality(
        members.join(pl.DataFrame(gold).select("source", "id", "place"), on=["source", "id"]),
        "place_id",
        "place",
    )
    true = _values(pl.DataFrame(truth).rename({"id": "place"}), ["place"])
    golden = _values(pl.DataFrame(places).rename({"id": "place_id"}), ["place_id"], confidence=True)
    scored = (
        votes.join(golden, on="place_id")
        .join(true, on="place", suffix="_true")
        .join(_whole(members, pl.DataFrame(gold)), on="place_id")
    )
    naive = None
    if records is not None:
        first = (
            members.sort("source", "id")
            .group_by("place_id", maintain_order=True)
            .first()
            .join(_values(pl.DataFrame(records), ["source", "id"]), on=["source", "id"])
            .drop("source", "id")
        )
        naive = votes.join(first, on="place_id").join(true, on="place", suffix="_true")
    rows = []
    bins = []
    for attribute in ATTRIBUTES:
        if attribute == "place" and "confidence_place" not in scored.columns:
            continue  # places read without their confidence
        given, right, has_truth = _judge(scored, attribute)
        row: dict[str, Any] = {
            "attribute": attribute,
            "true": int(has_truth.sum()),
            "given": int((given & has_truth).sum()),
        }
        row["coverage"] = row["given"] / row["true"] if row["true"] else None
        row["correct"] = int(right.sum())
        row["accuracy"] = row["correct"] / row["given"] if row["given"] else None
        row["spurious"] = int((given & ~has_truth).sum())
        row["naive_given"] = row["naive_accuracy"] = None
        row["calibration_error"] = row["brier"] = None
        if naive is not None and attribute != "place":  # the naive merge's are the same
            n_given, n_right, n_truth = _judge(naive, attribute)
            row["naive_given"] = int((n_given & n_truth).sum())
            row["naive_accuracy"] = (
                int(n_right.sum()) / row["naive_given"] if row["naive_given"] else None
            )
        rows.append(row)
        if attribute in _CONFIDENCE:
            attribute_bins, row["calibration_error"], row["brier"] = _calibration(
                scored, attribute, given & has_truth, right
            )
            bins += attribute_bins
    location = {
        **_spread(_metres(scored), ""),
        **_spread(_metres(naive) if naive is not None else np.zeros(0), "naive_"),
    }
    table = pl.DataFrame(rows).cast(
        {
            **dict.fromkeys(("true", "given", "correct", "spurious", "naive_given"), pl.Int64),
            **dict.fromkeys(
                ("coverage", "accuracy", "naive_accuracy", "calibration_error", "brier"),
                pl.Float64,
            ),
        }
    )
    calibration = pl.DataFrame(bins).cast(
        {"places": pl.Int64, "accuracy": pl.Float64, "mean_confidence": pl.Float64}
    )
    return PlaceAccuracy(scored.height, table, calibration, location)


def _values(frame: pl.DataFrame, keys: list[str], *, confidence: bool = False) -> pl.DataFrame:
    """One row per place of the attributes scored, beside its ``keys``."""
    columns = [
        *(pl.col(k) for k in keys),
        pl.col("names").struct.field("primary").alias("name"),
        pl.col("categories").struct.field("primary").alias("category"),
        pl.col("lat"),
        pl.col("lon"),
        pl.col("address").struct.field("street").alias("street"),
        pl.col("address").struct.field("housenumber").alias("housenumber"),
        pl.col("phones").list.first().alias("phone"),
        site(pl.col("websites").list.first()).alias("website"),
        pl.col("brand").struct.field("name").alias("brand"),
        pl.col("opening_hours"),
    ]
    if confidence:
        columns += [
            pl.col("attribute_confidence").struct.field(c).alias(f"confidence_{c}")
            for c in _CONFIDENCE.values()
            if c != "place"
        ]
        if "confidence" in frame.columns:
            columns.append(pl.col("confidence").alias("confidence_place"))
    return frame.select(columns)


def _whole(members: pl.DataFrame, gold: pl.DataFrame) -> pl.DataFrame:
    """``place_id, whole``: whether a golden place's records the truth knows are all of one
    true place, and all the records the truth has of it (among the run's)."""
    known = members.join(gold.select("source", "id", "place"), on=["source", "id"])
    sizes = known.group_by("place").len("records_true")
    return (
        known.group_by("place_id")
        .agg(
            pl.col("place").n_unique().alias("true_places"),
            pl.col("place").first(),
            pl.len().alias("records"),
        )
        .join(sizes, on="place")
        .select(
            "place_id",
            ((pl.col("true_places") == 1) & (pl.col("records") == pl.col("records_true"))).alias(
                "whole"
            ),
        )
    )


def _judge(frame: pl.DataFrame, attribute: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(given, right, the truth has a value) per row, for one attribute."""
    if attribute == "place":
        every = np.ones(frame.height, dtype=bool)
        return every, frame["whole"].to_numpy().astype(bool), every
    if attribute == "location":
        given = frame["lat"].is_not_null().to_numpy()
        has_truth = frame["lat_true"].is_not_null().to_numpy()
        metres = _metres(frame, keep_missing=True)
        return given, given & has_truth & (metres <= NEAR_M), has_truth
    if attribute == "address":
        ours = list(zip(frame["street"], frame["housenumber"], strict=True))
        theirs = list(zip(frame["street_true"], frame["housenumber_true"], strict=True))
        given = np.array([s is not None and n is not None for s, n in ours], dtype=bool)
        has_truth = np.array([s is not None and n is not None for s, n in theirs], dtype=bool)
        right = np.array(
            [
                g and t and fold(a[0]) == fold(b[0]) and a[1] == b[1]
                for g, t, a, b in zip(given, has_truth, ours, theirs, strict=True)
            ],
            dtype=bool,
        )
        return given, right, has_truth
    column, same = _COMPARE[attribute]
    ours_values = frame[column].to_list()
    theirs_values = frame[f"{column}_true"].to_list()
    given = np.array([v is not None for v in ours_values], dtype=bool)
    has_truth = np.array([v is not None for v in theirs_values], dtype=bool)
    right = np.array(
        [
            a is not None and b is not None and same(a, b)
            for a, b in zip(ours_values, theirs_values, strict=True)
        ],
        dtype=bool,
    )
    return given, right, has_truth


def _folded(a: str, b: str) -> bool:
    return fold(a) == fold(b)


_COMPARE: Final[dict[str, tuple[str, Callable[[str, str], bool]]]] = {
    "name": ("name", _folded),
    "name as written": ("name", str.__eq__),
    "category": ("category", str.__eq__),
    "phone": ("phone", str.__eq__),
    "website": ("website", str.__eq__),
    "brand": ("brand", _folded),
    "opening hours": ("opening_hours", str.__eq__),
}


def _metres(frame: pl.DataFrame | None, *, keep_missing: bool = False) -> np.ndarray:
    """Metres between each golden and true point (NaN where either is missing; only the
    known ones unless ``keep_missing``)."""
    if frame is None or not frame.height:
        return np.zeros(0)
    cols = [frame[c].cast(pl.Float64).fill_null(np.nan).to_numpy() for c in ("lat", "lon")]
    true = [
        frame[f"{c}_true"].cast(pl.Float64).fill_null(np.nan).to_numpy() for c in ("lat", "lon")
    ]
    metres = haversine_m(cols[0], cols[1], true[0], true[1])
    return metres if keep_missing else metres[~np.isnan(metres)]


def _spread(metres: np.ndarray, prefix: str) -> dict[str, float | None]:
    if not len(metres):
        return {f"{prefix}median": None, f"{prefix}p90": None}
    median, p90 = np.percentile(metres, [50, 90])
    return {f"{prefix}median": round(float(median), 1), f"{prefix}p90": round(float(p90), 1)}


def _calibration(
    frame: pl.DataFrame, attribute: str, checked: np.ndarray, right: np.ndarray
) -> tuple[list[dict[str, Any]], float | None, float | None]:
    """The accuracy and mean confidence of ``attribute``'s values in each bin of their own
    confidence; the calibration error and the Brier score over all of them."""
    # In float64, and every mean taken over sorted values: the same figures whatever order
    # the places come in (a run scores them as it made them, evaluate as it read them).
    confidence = (
        frame[f"confidence_{_CONFIDENCE[attribute]}"].fill_null(0.0).to_numpy().astype(np.float64)
    )
    rows = []
    gap = 0.0
    edges = [low for _, low in CONFIDENCE_BINS[1:]] + [np.inf]
    for (label, low), high in zip(CONFIDENCE_BINS, edges, strict=True):
        inside = checked & (confidence >= low) & (confidence < high)
        count = int(inside.sum())
        accuracy = float(right[inside].mean()) if count else None
        mean = float(np.sort(confidence[inside]).mean()) if count else None
        if count:
            gap += count * abs(accuracy - mean)  # type: ignore[operator]
        rows.append(
            {
                "attribute": attribute,
                "confidence": label,
                "places": count,
                "accuracy": accuracy,
                "mean_confidence": mean,
            }
        )
    total = int(checked.sum())
    if not total:
        return rows, None, None
    brier = float(np.sort((confidence[checked] - right[checked]) ** 2).mean())
    return rows, gap / total, brier
