"""Points that a geocoder gave to many records: a town's or a postcode's centre, not the
places' own.

A source whose geocoder cannot place an address often gives it the centre of its town or
postcode, the same point for every such record. Matching would look for the record's
place near that centre, kilometres away, and take the distance between the record and
its place's other records as evidence against them. Such a point is worse than none: a
record without coordinates is matched by its town, name and address instead.

So ingest tallies every source's points (:class:`PointTally`) and withholds a point that
one source gives to ``STACK_RECORDS`` or more of its records of ``STACK_STREETS`` or more
streets (:func:`withhold_points`): the record goes on without coordinates, and its point
goes to quarantine (``scope == "field"``). The shops of a mall share one point too, but
one street; two records of one place in a source (its duplicates) share one street; and
a point rounded to 100 m or coarser is shared by rounding, so it stays.
Nothing here can be told from one batch: a source's stacks are known once it is all read.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from poiflow.errors import InputError
from poiflow.land import in_country_box
from poiflow.schema import PLACE_SCHEMA, POINT_FIELD, QUARANTINE_SCHEMA

__all__ = [
    "POINT_FIELD",
    "STACKED_POINT",
    "STACK_RECORDS",
    "STACK_STREETS",
    "KnownStacks",
    "PointTally",
    "SwapWatch",
    "at_stacks",
    "withhold_points",
]

STACK_RECORDS: Final = 5
STACK_STREETS: Final = 2
# No quote mark: a quarantine's reasons are summed up with quoted values left out.
STACKED_POINT: Final = (
    f"the point of {STACK_RECORDS} or more records of this source, of {STACK_STREETS} or "
    "more streets: the centre of a town or postcode that a geocoder gave them, not where "
    "the place is"
)
_SCALE: Final = 1e6  # points equal to 6 decimals (about 0.1 m) are one point
_POINT: Final = ("source", "lat", "lon")
_COARSE: Final = 1000  # millionths: a point to 3 decimals or fewer is a multiple of it


def _micro(degrees: pa.ChunkedArray) -> pl.Series:
    """Degrees as whole millionths (to 6 decimals, about 0.1 m); null where missing."""
    values = degrees.to_numpy(zero_copy_only=False).astype(np.float64)
    missing = np.isnan(values)
    micro = np.rint(np.where(missing, 0.0, values) * _SCALE).astype(np.int64)
    return pl.Series(micro).set(pl.Series(missing), None) if missing.any() else pl.Series(micro)


def _located(table: pa.Table) -> pl.DataFrame:
    """``source``, and ``lat`` and ``lon`` in millionths of a degree (null where missing),
    of each row of a table of records (places, or a source's records as read)."""
    return pl.DataFrame(
        {
            "source": table.column("source"),
            "lat": _micro(table.column("lat")),
            "lon": _micro(table.column("lon")),
        }
    )


def _points(places: pa.Table) -> pl.DataFrame:
    """:func:`_located` of each place, with its ``street`` (its key); null points stay,
    :meth:`PointTally.stacks` leaves them out."""
    street = pc.struct_field(places.column("keys"), "street")
    return _located(places).with_columns(pl.Series("street", street))


class PointTally:
    """Every source's points, batch by batch, and the stacks among them (:meth:`stacks`)."""

    def __init__(self) -> None:
        self._parts: list[pl.DataFrame] = []

    def add(self, places: pa.Table) -> None:
        """Tally a batch of places (``PLACE_SCHEMA``)."""
        self._parts.append(_points(places))

    def rows_at(self, stacks: pl.DataFrame) -> list[np.ndarray]:
        """For each batch tallied, in order, its rows at a point of ``stacks``."""
        return [
            part.with_row_index("row")
            .join(stacks.select(_POINT), on=_POINT, how="semi")["row"]
            .to_numpy()
            for part in self._parts
        ]

    def stacks(self) -> pl.DataFrame:
        """The stacked points: ``source``, ``lat``, ``lon`` (millionths of a degree), ``records``
        and ``streets``, in source and point order; usually none. A point rounded to 3
        decimals or fewer (100 m) is none: several places share it by rounding, not by a
        geocoder's centre (whether the source rounds all its points or some)."""
        frame = pl.concat(self._parts) if self._parts else _points(PLACE_SCHEMA.empty_table())
        rounded = (pl.col("lat") % _COARSE == 0) & (pl.col("lon") % _COARSE == 0)
        return (
            frame.drop_nulls(["lat", "lon"])
            .filter(~rounded)
            .group_by(*_POINT)
            .agg(
                pl.len().alias("records"),
                pl.col("street").drop_nulls().n_unique().alias("streets"),
            )
            .filter((pl.col("records") >= STACK_RECORDS) & (pl.col("streets") >= STACK_STREETS))
            .sort(*_POINT)
        )


def at_stacks(records: pa.Table, stacks: pl.DataFrame) -> np.ndarray:
    """Whether each row of a table with ``source``, ``lat`` and ``lon`` (places, or a
    source's records as read) is at a point of ``stacks``."""
    at = np.zeros(records.num_rows, dtype=bool)
    if not stacks.is_empty():
        frame = _located(records).with_row_index("row")
        at[frame.join(stacks.select(_POINT), on=_POINT, how="semi")["row"].to_numpy()] = True
    return at


def withhold_points(places: pa.Table, stacks: pl.DataFrame) -> tuple[pa.Table, pa.Table]:
    """``places`` without the points of ``stacks`` (:meth:`PointTally.stacks`), and a
    quarantine row (``QUARANTINE_SCHEMA``) for each point withheld, in row order."""
    withheld = at_stacks(places, stacks)
    if not withheld.any():
        return places, QUARANTINE_SCHEMA.empty_table()
    taken = places.select(["source", "id", "origin", "lat", "lon"]).filter(pa.array(withheld))
    quarantine = pa.Table.from_pylist(
        [_withheld(record) for record in taken.to_pylist()], schema=QUARANTINE_SCHEMA
    )
    mask = pa.array(withheld)
    for column in ("lat", "lon"):
        index = places.schema.get_field_index(column)
        values = places.column(column)
        nothing = pa.scalar(None, values.type)
        places = places.set_column(
            index, places.schema.field(index), pc.if_else(mask, nothing, values)
        )
    return places, quarantine


def _withheld(record: Mapping[str, Any]) -> dict[str, Any]:
    """The quarantine row (``QUARANTINE_SCHEMA``'s) of a record's stacked point."""
    return {
        "source": record["source"],
        "id": record["id"],
        "origin": record["origin"],
        "scope": "field",
        "field": POINT_FIELD,
        "reason": STACKED_POINT,
        "original": json.dumps({"lat": record["lat"], "lon": record["lon"]}),
    }


class KnownStacks:
    """The stacked points a run withheld, withheld again from the records matched against
    it later (``poiflow match``, ``POST /match``, the stream). A request's or an edit's
    few records cannot show a stack of their own, but a source's geocoder gives the same
    centres again: a record of that source at one of them is placed by its town, name and
    address, as the run placed the others.

    Args:
        stacks: ``source``, ``lat`` and ``lon`` (millionths of a degree) of each point,
            as :meth:`PointTally.stacks` gives them.
    """

    def __init__(self, stacks: pl.DataFrame) -> None:
        self.frame = stacks.select(_POINT).unique(maintain_order=True)
        self._points = set(self.frame.iter_rows())

    @classmethod
    def none(cls) -> KnownStacks:
        """No point."""
        return cls(pl.DataFrame(schema={"source": pl.String, "lat": pl.Int64, "lon": pl.Int64}))

    @classmethod
    def of_quarantine(cls, quarantine: pa.Table) -> KnownStacks:
        """The points a run's quarantine (``QUARANTINE_SCHEMA``) says were stacked."""
        held = pl.DataFrame(quarantine.select(["source", "field", "reason", "original"]))
        held = held.filter((pl.col("field") == POINT_FIELD) & (pl.col("reason") == STACKED_POINT))
        point = pl.Struct({"lat": pl.Float64, "lon": pl.Float64})
        decoded = held.select("source", pl.col("original").str.json_decode(point)).unnest(
            "original"
        )
        return cls(_located(decoded.to_arrow()))

    def __len__(self) -> int:
        return len(self._points)

    def table(self, places: pa.Table) -> tuple[pa.Table, pa.Table]:
        """:func:`withhold_points` of these points."""
        if not self._points:
            return places, QUARANTINE_SCHEMA.empty_table()
        return withhold_points(places, self.frame)

    def rows(self, places: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """Withhold these points from places given as rows (``PLACE_SCHEMA``'s, as
        ``to_pylist`` gives them), in place: the quarantine rows of the points withheld."""
        if not self._points:
            return []
        withheld = []
        for place in places:
            lat, lon = place["lat"], place["lon"]
            if lat is None or lon is None:
                continue
            if (place["source"], round(lat * _SCALE), round(lon * _SCALE)) in self._points:
                withheld.append(_withheld(place))
                place["lat"] = place["lon"] = None
        return withheld


# A source's points judged for swapped latitude and longitude: its first located records
# that name their country, this many at most, and at least this many to say anything.
SWAP_SAMPLE: Final = 500
SWAP_LEAST: Final = 30


class SwapWatch:
    """Refuses a source whose latitudes and longitudes are the wrong way round, as a
    mapping of the columns the other way, or GeoJSON written latitude first, gives them:
    each of its records would be a place far from where it is. Judged on its first located
    records that name their country (:meth:`add`, then :meth:`finish`). Its points are
    swapped where at most a fifth of them lie in the box of the country their address
    names (``poiflow.land.in_country_box``), and four fifths or more do once swapped back.

    Args:
        path: The source's input, as the refusal names it.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = path
        self._parts: list[pl.DataFrame] = []
        self._seen = 0
        self._judged = False

    def add(self, places: pa.Table) -> None:
        """Tally a batch of places (``PLACE_SCHEMA``), and judge once enough are seen.

        Raises:
            InputError: The points are swapped.
        """
        if self._judged:
            return
        frame = pl.DataFrame(
            {
                "lat": places.column("lat"),
                "lon": places.column("lon"),
                "country": pc.struct_field(places.column("address"), "country"),
            }
        ).drop_nulls()
        self._parts.append(frame.head(SWAP_SAMPLE - self._seen))
        self._seen += self._parts[-1].height
        if self._seen >= SWAP_SAMPLE:
            self.finish()

    def finish(self) -> None:
        """Judge on what was seen, if not done yet.

        Raises:
            InputError: The points are swapped.
        """
        if self._judged:
            return
        self._judged = True
        if self._seen < SWAP_LEAST:
            return
        frame = pl.concat(self._parts)
        self._parts = []
        lat, lon = frame["lat"].to_numpy(), frame["lon"].to_numpy()
        country = frame["country"].to_numpy().astype(object)
        here = float(in_country_box(lat, lon, country).mean())
        if here > 0.2:
            return
        back = float((in_country_box(lon, lat, country) & (np.abs(lon) <= 90)).mean())
        if back < 0.8:
            return
        raise InputError(
            f"its latitudes and longitudes look swapped: {here:.0%} of the first {len(lat):,} "
            f"located records that name their country lie in it, {back:.0%} do with the two "
            "swapped; map the two columns the other way round (a mapping's columns: {lat: "
            "<its longitude column>, lon: <its latitude column>}), or write GeoJSON and WKT "
            "longitude first",
            path=self.path,
        )
