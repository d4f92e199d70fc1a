"""The built-in checks of golden places: rules (ranges, formats, a pharmacy has a phone)
and anomaly detectors (in the sea, far from its locality, a name that says another
category, a likely duplicate, sources that disagree on whether it is open, stale).
:mod:`poiflow.quality.checks` runs them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import ClassVar, Literal

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from poiflow.land import boxes_at, in_country_box, on_land
from poiflow.quality.checking import (
    CheckResult,
    Kind,
    QualityInput,
    Severity,
    each_value,
    flagged,
    result,
)
from poiflow.schema import PAIR_RECORD_KEYS, PAIR_SCORE_COLUMNS
from poiflow.taxonomy import taxonomy

__all__ = [
    "CategoryNeeds",
    "ConfidenceInRange",
    "CoordinatesInRange",
    "FarFromLocality",
    "HasLocation",
    "InTheSea",
    "LikelyDuplicates",
    "NameSaysOtherCategory",
    "OutsideItsCountry",
    "PhoneFormat",
    "SharedPhone",
    "StackedPoint",
    "Stale",
    "StatusDisagrees",
    "WebsiteFormat",
]


class CoordinatesInRange:
    """Latitude within [-90, 90] and longitude within [-180, 180]."""

    name: ClassVar[str] = "coordinates_in_range"
    kind: ClassVar[Kind] = "rule"
    severity: ClassVar[Severity] = "error"
    description: ClassVar[str] = "latitude in [-90, 90], longitude in [-180, 180]"

    def run(self, data: QualityInput) -> CheckResult:
        frame = data.columns("lat", "lon").filter(pl.col("lat").is_not_null())
        bad = frame.filter(
            ~pl.col("lat").is_between(-90, 90) | ~pl.col("lon").is_between(-180, 180)
        )
        return flagged(self, frame, bad, "lat {lat}, lon {lon} is out of range")


class HasLocation:
    """A place has coordinates (a feed without them leaves some places unlocated)."""

    name: ClassVar[str] = "has_location"
    kind: ClassVar[Kind] = "rule"
    severity: ClassVar[Severity] = "warn"
    description: ClassVar[str] = "the place has coordinates"

    def run(self, data: QualityInput) -> CheckResult:
        frame = data.columns("lat", "lon", "locality")
        bad = frame.filter(pl.col("lat").is_null() | pl.col("lon").is_null())
        return flagged(self, frame, bad, "no coordinates (address: {locality})")


class InTheSea:
    """A place with no land within about 4 km (NOAA's GLOBE land mask, in 1/24-degree cells).

    Places that belong on water (marinas, ferry terminals) are not checked.
    """

    name: ClassVar[str] = "in_the_sea"
    kind: ClassVar[Kind] = "rule"
    severity: ClassVar[Severity] = "error"
    description: ClassVar[str] = "no land within about 4 km (GLOBE land mask)"
    on_water: ClassVar[frozenset[str]] = frozenset({"bus_station", "sports_venue"})

    def run(self, data: QualityInput) -> CheckResult:
        frame = data.columns("name", "category", "lat", "lon").filter(
            pl.col("lat").is_between(-90, 90)
            & pl.col("lon").is_between(-180, 180)
            & ~pl.col("category").is_in(list(self.on_water)).fill_null(False)
        )
        land = on_land(frame["lat"].to_numpy(), frame["lon"].to_numpy())
        bad = frame.filter(pl.Series(~land))
        return flagged(self, frame, bad, "{name} at {lat}, {lon} is in the sea")


class OutsideItsCountry:
    """A place whose point is far from its address's country: outside the box of that
    country's towns and half a degree around them (GeoNames' towns; a territory's, Åland's,
    count as its sovereign's, Finland's). Swapped latitude and longitude, a geocoder that
    found a namesake abroad, or an address that names the wrong country. A place near a
    border is within its country's box, and is not flagged."""

    name: ClassVar[str] = "outside_its_country"
    kind: ClassVar[Kind] = "anomaly"
    severity: ClassVar[Severity] = "warn"
    description: ClassVar[str] = "its point is far outside its address's country"

    def run(self, data: QualityInput) -> CheckResult:
        frame = data.frame.select(
            "id", "name", "lat", "lon", pl.col("address").struct.field("country")
        ).filter(
            pl.col("country").is_not_null()
            & pl.col("lat").is_between(-90, 90)
            & pl.col("lon").is_between(-180, 180)
        )
        lat, lon = frame["lat"].to_numpy(), frame["lon"].to_numpy()
        outside = ~in_country_box(lat, lon, frame["country"].to_numpy())
        bad = frame.filter(pl.Series(outside))
        found = [
            ", ".join(c) or "none" for c in boxes_at(bad["lat"].to_numpy(), bad["lon"].to_numpy())
        ]
        return flagged(
            self,
            frame,
            bad.with_columns(found=pl.Series(found, dtype=pl.String)),
            "{name} at {lat}, {lon} is far from {country} (in the box of {found})",
        )


class StackedPoint:
    """A place at the very point of many places of several streets: where a geocoder put
    an address it could not find (a town's or a postcode's centre), not where the place
    is. The shops of one mall share a point too, but one street. Ingest withholds such a
    point where one source gives it to many of its records (``poiflow.normalize.points``);
    this finds the stacks that only several sources together make, and those of places
    conflated elsewhere."""

    name: ClassVar[str] = "stacked_point"
    kind: ClassVar[Kind] = "anomaly"
    severity: ClassVar[Severity] = "warn"
    description: ClassVar[str] = (
        "its point is that of 5 or more places of 2 or more streets (a geocoder's centre?)"
    )
    places: ClassVar[int] = 5
    streets: ClassVar[int] = 2

    def run(self, data: QualityInput) -> CheckResult:
        frame = data.frame.select(
            "id", "lat", "lon", pl.col("address").struct.field("street")
        ).filter(pl.col("lat").is_not_null() & pl.col("lon").is_not_null())
        point = [pl.col("lat").round(6), pl.col("lon").round(6)]
        stacks = (
            frame.group_by(point)
            .agg(pl.len().alias("places"), pl.col("street").drop_nulls().n_unique().alias("of"))
            .filter((pl.col("places") >= self.places) & (pl.col("of") >= self.streets))
        )
        bad = frame.with_columns(point).join(stacks, on=["lat", "lon"], maintain_order="left")
        return flagged(
            self,
            frame,
            bad.with_columns(others=pl.col("places") - 1),
            "its point {lat}, {lon} is that of {others} other places, of {of} streets",
        )


class PhoneFormat:
    """Every phone is E.164 (normalization guarantees it; a custom stage might not)."""

    name: ClassVar[str] = "phone_format"
    kind: ClassVar[Kind] = "rule"
    severity: ClassVar[Severity] = "error"
    description: ClassVar[str] = "every phone number is E.164 (+ and 7-15 digits)"

    def run(self, data: QualityInput) -> CheckResult:
        return each_value(self, data, "phones", r"^\+[1-9]\d{6,14}$", "is not E.164")


class WebsiteFormat:
    """Every website is an http(s) URL with a host."""

    name: ClassVar[str] = "website_format"
    kind: ClassVar[Kind] = "rule"
    severity: ClassVar[Severity] = "error"
    description: ClassVar[str] = "every website is an http(s) URL with a host name"

    def run(self, data: QualityInput) -> CheckResult:
        pattern = r"^https?://[a-z0-9.-]+\.[a-z0-9-]+"
        return each_value(self, data, "websites", pattern, "is not a URL")


class SharedPhone:
    """A place whose phone number other places carry too: a chain's call centre or a
    placeholder, not the place's own (conflation does not count such a number as evidence
    that two records are one place)."""

    name: ClassVar[str] = "shared_phone"
    kind: ClassVar[Kind] = "anomaly"
    severity: ClassVar[Severity] = "warn"
    description: ClassVar[str] = "its phone is one that 3 or more places have (a call centre?)"
    places: ClassVar[int] = 3

    def run(self, data: QualityInput) -> CheckResult:
        values = (
            data.columns("phones")
            .explode("phones")
            .drop_nulls("phones")
            .unique(maintain_order=True)  # a place's number once
        )
        carried = values.group_by("phones").len().filter(pl.col("len") >= self.places)
        shared = (
            values.join(carried, on="phones", maintain_order="left")
            .group_by("id", maintain_order=True)
            .first()
        )
        checked = data.frame.select((pl.col("phones").list.len() > 0).sum()).item()
        details = [
            f"its phone {phone} is the phone of {count - 1:,} other places too"
            for phone, count in shared.select("phones", "len").iter_rows()
        ]
        return result(self, checked, shared["id"].to_list(), details)


class ConfidenceInRange:
    """Confidence is a probability."""

    name: ClassVar[str] = "confidence_in_range"
    kind: ClassVar[Kind] = "rule"
    severity: ClassVar[Severity] = "error"
    description: ClassVar[str] = "place confidence is within [0, 1]"

    def run(self, data: QualityInput) -> CheckResult:
        frame = data.columns("confidence")
        bad = frame.filter(~pl.col("confidence").is_between(0, 1).fill_null(False))
        return flagged(self, frame, bad, "confidence {confidence} is not in [0, 1]")


class CategoryNeeds:
    """Places of a category should have a field (a pharmacy has a phone)."""

    kind: ClassVar[Kind] = "rule"
    severity: ClassVar[Severity] = "warn"

    def __init__(self, category: str, needs: Literal["phones", "websites", "opening_hours"]):
        self.category = category
        self.needs = needs
        self.name = f"{category}_has_{needs.removesuffix('s')}"
        self.description = f"a {category.replace('_', ' ')} has {needs.replace('_', ' ')}"

    def run(self, data: QualityInput) -> CheckResult:
        frame = data.columns("name", "category", self.needs)
        frame = frame.filter(pl.col("category") == self.category)
        column = pl.col(self.needs)
        if self.needs in ("phones", "websites"):
            empty = column.is_null() | (column.list.len() == 0)
        else:
            empty = column.is_null()
        bad = frame.filter(empty)
        return flagged(self, frame, bad, f"{{name}} has no {self.needs.removesuffix('s')}")


class FarFromLocality:
    """A place far from the other places of its locality: a wrong town, or wrong coordinates.

    The locality's centre is the median of its places; a place is flagged beyond
    ``max(min_km, 3 x the locality's 90th-percentile distance)``.
    """

    name: ClassVar[str] = "far_from_locality"
    kind: ClassVar[Kind] = "anomaly"
    severity: ClassVar[Severity] = "warn"
    description: ClassVar[str] = "far from the other places of its locality"
    min_places: ClassVar[int] = 5
    min_km: ClassVar[float] = 20.0

    def run(self, data: QualityInput) -> CheckResult:
        frame = data.columns("name", "locality", "lat", "lon")
        frame = frame.filter(pl.col("locality").is_not_null() & pl.col("lat").is_not_null())
        frame = frame.with_columns(pl.col("locality").str.to_lowercase().alias("town"))
        centres = frame.group_by("town").agg(
            pl.len().alias("n"),
            pl.col("lat").median().alias("c_lat"),
            pl.col("lon").median().alias("c_lon"),
        )
        joined = frame.join(centres.filter(pl.col("n") >= self.min_places), on="town")
        rad = np.pi / 180
        dlat = (joined["lat"] - joined["c_lat"]).to_numpy() * rad
        dlon = (joined["lon"] - joined["c_lon"]).to_numpy() * rad
        mean_lat = ((joined["lat"] + joined["c_lat"]) / 2).to_numpy() * rad
        km = 6371.0 * np.hypot(dlat, dlon * np.cos(mean_lat))
        joined = joined.with_columns(pl.Series("km", np.round(km, 1)))
        spread = joined.group_by("town").agg(pl.col("km").quantile(0.9).alias("p90"))
        joined = joined.join(spread, on="town")
        bad = joined.filter(
            pl.col("km") > pl.max_horizontal(pl.lit(self.min_km), 3 * pl.col("p90"))
        )
        return flagged(self, joined, bad, "{name} is {km} km from the centre of {locality}")


class NameSaysOtherCategory:
    """A name that names a category of another kind ("Apteekki ..." filed as a restaurant)."""

    name: ClassVar[str] = "name_category_mismatch"
    kind: ClassVar[Kind] = "anomaly"
    severity: ClassVar[Severity] = "warn"
    description: ClassVar[str] = "the name says a category of another kind than the place's"

    def run(self, data: QualityInput) -> CheckResult:
        tax = taxonomy()
        frame = data.columns("name", "category")
        frame = frame.filter(pl.col("category").is_not_null() & pl.col("name").is_not_null())
        pairs = frame.select("name", "category").unique()  # chains repeat: once per pair
        said: list[str | None] = []
        names_say = tax.from_texts(pairs["name"].to_list())
        for found, category in zip(names_say, pairs["category"].to_list(), strict=True):
            if found is None or found not in tax or category not in tax:
                said.append(None)
            elif tax.ancestors(found)[-1] != tax.ancestors(category)[-1]:
                said.append(found)
            else:
                said.append(None)
        odd = pairs.with_columns(pl.Series("said", said, dtype=pl.String)).drop_nulls("said")
        bad = frame.join(odd, on=["name", "category"])
        return flagged(self, frame, bad, "'{name}' sounds like {said}, filed as {category}")


class LikelyDuplicates:
    """Two places whose records were scored a likely match but were kept apart, where the
    pairs scored across the two places say so on average too.

    A strong pair among weak ones across two places (a museum's record and its bistro's,
    two outlets of a chain: one pair alike, the rest not) is two places that look alike,
    and clustering was right to keep them apart: only pairs of places whose pairs across
    average the bar are flagged. On generated worlds this keeps a fifth of the flags at
    four times the precision; on the Helsinki demo it keeps every true duplicate.
    """

    name: ClassVar[str] = "likely_duplicates"
    kind: ClassVar[Kind] = "anomaly"
    severity: ClassVar[Severity] = "warn"
    description: ClassVar[str] = (
        "another place's records match its own (p >= 0.5, and on average over the pairs "
        "scored across the two)"
    )
    threshold: ClassVar[float] = 0.5

    def run(self, data: QualityInput) -> CheckResult:
        if data.pairs is None or data.membership is None:
            return result(self, 0, [], [])
        member = pl.DataFrame(data.membership.select(["source", "id", "place_id"]))
        # Filtered in Arrow first: only the likely pairs' keys are copied into polars (a
        # run's pairs are ~10 a record, most of them unlikely).
        likely = pc.greater_equal(data.pairs.column("match_probability"), self.threshold)
        pairs = pl.DataFrame(data.pairs.select(list(PAIR_SCORE_COLUMNS)).filter(likely))
        apart = _across_places(pairs, member)
        if apart.height:
            mean = _mean_across(data.pairs, member, apart)
            apart = apart.join(mean, on=["left_place", "right_place"], how="left")
            apart = apart.filter(pl.col("mean") >= self.threshold)
        else:
            apart = apart.with_columns(pl.lit(None, pl.Float64).alias("mean"), pl.lit(0).alias("n"))
        apart = (
            # Ties in probability go to the first pair by its records' keys, so that
            # which pair is named does not hang on the order the joins gave.
            apart.sort(
                "match_probability",
                *PAIR_RECORD_KEYS,
                descending=[True] + [False] * len(PAIR_RECORD_KEYS),
            ).unique("left_place", keep="first", maintain_order=True)
        )
        apart = _with_record_names(apart, data)
        details = [
            f"its record {ls}/{li}{_said(ln)} matches {rs}/{ri}{_said(rn)} of place {rp} "
            f"(p = {p:.2f}{_on_average(mean, n)})"
            for ls, li, ln, rs, ri, rn, p, rp, mean, n in apart.select(
                "left_source",
                "left_id",
                "left_name",
                "right_source",
                "right_id",
                "right_name",
                "match_probability",
                "right_place",
                "mean",
                "n",
            ).iter_rows()
        ]
        return result(self, data.places.num_rows, apart["left_place"].to_list(), details)


def _across_places(pairs: pl.DataFrame, member: pl.DataFrame) -> pl.DataFrame:
    """The scored ``pairs`` whose two records are in different places, with each record's
    place (``left_place``, ``right_place``), each from the side of its place with the lower
    id, whichever way round the run wrote it (its records' rows: the input's order)."""
    pairs = pairs.join(
        member.rename({"source": "left_source", "id": "left_id", "place_id": "left_place"}),
        on=["left_source", "left_id"],
    ).join(
        member.rename({"source": "right_source", "id": "right_id", "place_id": "right_place"}),
        on=["right_source", "right_id"],
    )
    turn = pl.col("left_place") > pl.col("right_place")
    return pairs.select(
        *(
            pl.when(turn)
            .then(pl.col(f"{other}_{part}"))
            .otherwise(pl.col(f"{side}_{part}"))
            .alias(f"{side}_{part}")
            for side, other in (("left", "right"), ("right", "left"))
            for part in ("source", "id", "place")
        ),
        "match_probability",
    ).filter(pl.col("left_place") != pl.col("right_place"))


def _mean_across(scored: pa.Table, member: pl.DataFrame, apart: pl.DataFrame) -> pl.DataFrame:
    """For each pair of places of ``apart``: the mean probability of every pair of
    ``scored`` across the two (``mean``) and how many there are (``n``)."""
    places = pl.concat([apart["left_place"], apart["right_place"]]).unique()
    records = member.filter(pl.col("place_id").is_in(places.implode()))
    # Only pairs one of whose records is in such a place are copied out of Arrow, found
    # by id alone (a few of another source's records with the same id come along).
    ids = pa.array(records["id"].unique().to_list(), scored.schema.field("left_id").type)
    near = pc.or_(
        pc.is_in(scored.column("left_id"), value_set=ids),
        pc.is_in(scored.column("right_id"), value_set=ids),
    )
    pairs = pl.DataFrame(scored.select(list(PAIR_SCORE_COLUMNS)).filter(near))
    wanted = apart.select("left_place", "right_place").unique()
    return (
        _across_places(pairs, records)
        .join(wanted, on=["left_place", "right_place"])
        .group_by("left_place", "right_place")
        .agg(
            # Summed in one order whatever order the pairs came in: the same mean to the bit.
            pl.col("match_probability").sort().mean().alias("mean"),
            pl.len().alias("n"),
        )
    )


def _on_average(mean: float | None, n: int) -> str:
    """What a likely duplicate's detail says of the pairs across its two places (nothing
    where the one pair is all there is)."""
    if mean is None or n < 2:
        return ""
    return f"; {mean:.2f} on average over the {n} pairs scored across the two"


def _with_record_names(pairs: pl.DataFrame, data: QualityInput) -> pl.DataFrame:
    """``pairs`` with each side's record's name (``left_name``, ``right_name``; null where
    the run's records are not given), so that a person sees what the two records say."""
    if data.records is None or "names" not in data.records.column_names or pairs.is_empty():
        return pairs.with_columns(
            pl.lit(None, pl.String).alias("left_name"), pl.lit(None, pl.String).alias("right_name")
        )
    names = pl.DataFrame(
        {
            "source": data.records.column("source"),
            "id": data.records.column("id"),
            "name": pc.struct_field(data.records.column("names"), "primary"),
        }
    )
    for side in ("left", "right"):
        named = names.rename(
            {"source": f"{side}_source", "id": f"{side}_id", "name": f"{side}_name"}
        )
        pairs = pairs.join(
            named, on=[f"{side}_source", f"{side}_id"], how="left", maintain_order="left"
        )
    return pairs


def _said(name: str | None) -> str:
    """A record's name as a detail quotes it after its key (nothing without one)."""
    return f" ('{name}')" if name else ""


class StatusDisagrees:
    """A place one of whose sources says it is open and another that it is closed (for
    good or for now): which is current decides whether it belongs on the map."""

    name: ClassVar[str] = "status_disagrees"
    kind: ClassVar[Kind] = "anomaly"
    severity: ClassVar[Severity] = "warn"
    description: ClassVar[str] = "one of its sources says it is open, another closed"

    def run(self, data: QualityInput) -> CheckResult:
        if data.records is None or data.membership is None:
            return result(self, 0, [], [])
        said = pl.DataFrame(data.records.select(["source", "id", "operating_status"]))
        said = said.drop_nulls("operating_status")
        member = pl.DataFrame(data.membership.select(["source", "id", "place_id"]))
        statuses = (
            said.join(member, on=["source", "id"])
            .group_by("place_id", "operating_status")
            .agg(pl.col("source").unique().sort().str.join(", ").alias("sources"))
            .sort("place_id", "operating_status")
        )
        mixed = (
            statuses.group_by("place_id", maintain_order=True)
            .agg(
                (pl.col("operating_status") == "open").any().alias("open"),
                (pl.col("operating_status") != "open").any().alias("closed"),
                pl.format("{} by {}", "operating_status", "sources").str.join("; ").alias("d"),
            )
            .filter(pl.col("open") & pl.col("closed"))
        )
        checked = statuses["place_id"].n_unique()
        return result(self, checked, mixed["place_id"].to_list(), mixed["d"].to_list())


@dataclass(frozen=True, slots=True)
class Stale:
    """A place whose newest record is older than ``years`` (relative to the data's newest)."""

    years: float = 3.0
    name: ClassVar[str] = "stale"
    kind: ClassVar[Kind] = "anomaly"
    severity: ClassVar[Severity] = "warn"

    @property
    def description(self) -> str:
        """What it checks, for people."""
        return f"not updated for {self.years:g} years (relative to the newest update)"

    def run(self, data: QualityInput) -> CheckResult:
        frame = data.columns("name", "update_time").filter(pl.col("update_time").is_not_null())
        if frame.height == 0:
            return result(self, 0, [], [])
        as_of = data.as_of or frame["update_time"].max()
        assert isinstance(as_of, datetime)
        cutoff = as_of.astimezone(UTC) - timedelta(days=365.25 * self.years)
        bad = frame.filter(pl.col("update_time") < cutoff).with_columns(
            pl.col("update_time").dt.strftime("%Y-%m-%d").alias("updated")
        )
        return flagged(self, frame, bad, "{name} last updated {updated}")
