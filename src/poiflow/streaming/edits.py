"""POI edits as they travel on Kafka: one JSON object per message.

An edit says what a source did to one of its records, and when::

    {"schema": 1, "edit_id": "osm-8812-2", "op": "upsert",
     "time": "2026-11-30T08:15:00Z",
     "place": {"source": "osm", "id": "n42", "name": "Cafe Aalto", "lat": 60.17,
               "lon": 24.94, "category": "cafe", "phone": "+358 9 123 4567"}}

- ``schema``: the message format's version; this consumer reads version 1 and sends any
  other to the dead-letter topic, so a producer upgraded first never has its edits misread.
- ``edit_id``: unique per edit; it rides on every change event the edit causes, so
  consumers can drop duplicates.
- ``op``: ``upsert`` (the place as the source now has it, in the flat place format),
  ``close`` (the place closed for good: its operating status becomes
  ``permanently_closed``) or ``delete`` (the source withdrew the record). ``close`` and
  ``delete`` need only ``source`` and ``id`` in ``place``.
- ``time``: when the source made the edit, with a time zone. A record keeps the edit with
  the latest ``(time, edit_id)``: an older edit that arrives late changes nothing
  (last writer wins, by the source's clock), and so does an edit seen twice.

Messages are keyed by region (:func:`region_key`), so that the edits of one place, and of
the places near it, stay in one partition and in order.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Literal

import polars as pl
import polars_h3 as plh3
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from poiflow.errors import InputError

__all__ = [
    "EDIT_SCHEMA_VERSION",
    "OPERATIONS",
    "REGION_RESOLUTION",
    "Edit",
    "EditError",
    "coordinate",
    "edit_message",
    "parse_edit",
    "region_key",
    "region_keys",
]

EDIT_SCHEMA_VERSION: Final = 1
OPERATIONS: Final = ("upsert", "close", "delete")
REGION_RESOLUTION: Final = 3  # H3 cells of about 12,000 km²: a metropolitan region
_UNLOCATED: Final = "unlocated"
_MOST_BYTES: Final = 1 << 20


class EditError(InputError):
    """A message that is not a valid edit; the message says what is wrong with it."""


class _Message(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=False)

    schema_: int = Field(alias="schema")
    edit_id: str = Field(min_length=1, max_length=200)
    op: Literal["upsert", "close", "delete"]
    time: datetime
    place: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Edit:
    """One valid edit.

    Attributes:
        edit_id: The producer's id of the edit.
        op: ``upsert``, ``close`` or ``delete``.
        source: The record's source.
        id: The record's id in its source.
        time: When the source made it (UTC).
        place: The record in the flat place format (``source`` and ``id`` included).
    """

    edit_id: str
    op: str
    source: str
    id: str
    time: datetime
    place: dict[str, Any]

    @property
    def record(self) -> tuple[str, str]:
        """``(source, id)`` of the record it edits."""
        return (self.source, self.id)

    @property
    def stamp(self) -> tuple[int, str]:
        """What orders edits of one record: ``(time in ms, edit_id)``."""
        return (int(self.time.timestamp() * 1000), self.edit_id)


def parse_edit(value: bytes | str | Mapping[str, Any] | None) -> Edit:
    """Read one message (or its JSON object, already decoded).

    Raises:
        EditError: It is not an edit: not JSON, not an object, another schema version,
            a missing or malformed field, a time without a time zone, a place without
            ``source`` or ``id``. The message says which, in one line.
    """
    if value is None:
        raise EditError("empty message (no value)")
    if isinstance(value, Mapping):
        return _edit(value)
    if not isinstance(value, bytes | bytearray | str):
        raise EditError(f"not a message but {type(value).__name__}")
    if len(value) > _MOST_BYTES:
        raise EditError(f"message of {len(value):,} bytes; an edit is at most {_MOST_BYTES:,}")
    try:
        data = json.loads(value)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise EditError(f"not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise EditError(f"not a JSON object but {type(data).__name__}")
    return _edit(data)


def _edit(data: Mapping[str, Any]) -> Edit:
    """A message's JSON object as an edit (see :func:`parse_edit`)."""
    version = data.get("schema")
    if version != EDIT_SCHEMA_VERSION:
        said = "no schema version" if version is None else f"schema version {version!r}"
        raise EditError(f"{said}; this consumer reads version {EDIT_SCHEMA_VERSION}")
    try:
        message = _Message.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(message)"
        raise EditError(f"{where}: {first['msg']}") from None
    if message.time.tzinfo is None or message.time.utcoffset() is None:
        raise EditError(f"time: {data['time']!r} has no time zone (write Z or +02:00)")
    place = message.place
    keys = []
    for field in ("source", "id"):
        value_ = place.get(field)
        if not isinstance(value_, str | int) or isinstance(value_, bool) or str(value_) == "":
            raise EditError(f"place.{field}: missing (every edit names its record)")
        keys.append(str(value_))
    place = {**place, "source": keys[0], "id": keys[1]}
    return Edit(message.edit_id, message.op, keys[0], keys[1], message.time.astimezone(UTC), place)


def edit_message(edit_id: str, op: str, time: datetime | str, place: dict[str, Any]) -> bytes:
    """The message of an edit (what a producer sends).

    Raises:
        EditError: The consumer would refuse it (the reason :func:`parse_edit` would
            give): an operation other than ``upsert``, ``close`` or ``delete``, a time
            without a time zone (a naive ``datetime`` too: whose clock it is cannot be
            known), a place without ``source`` or ``id``. Nothing is sent that is bound
            for the dead letters.
    """
    if isinstance(time, datetime):
        if time.tzinfo is None or time.utcoffset() is None:
            raise EditError(
                f"time: {time.isoformat()} has no time zone "
                "(give datetime(..., tzinfo=UTC) or an ISO string ending in Z or +02:00)"
            )
        when = time.astimezone(UTC).isoformat()
    else:
        when = time
    data: dict[str, Any] = {
        "schema": EDIT_SCHEMA_VERSION,
        "edit_id": edit_id,
        "op": op,
        "time": when,
        "place": place,
    }
    _edit(data)  # what the consumer would say of it, said here instead
    return json.dumps(data, ensure_ascii=False, default=str).encode()


def region_key(lat: float | str | None, lon: float | str | None) -> str:
    """The message key of an edit at a point: its H3 region (``unlocated`` without one;
    a coordinate written as text, as a feed may have it, is read as its number)."""
    return region_keys([coordinate(lat)], [coordinate(lon)])[0]


def coordinate(value: Any) -> float | None:
    """A coordinate as a message or a feed gives it (a number, or its text): None where it
    is none."""
    try:
        return None if value in (None, "") else float(value)
    except (TypeError, ValueError):
        return None


def region_keys(lat: list[float | None], lon: list[float | None]) -> list[str]:
    """:func:`region_key` of many points at once."""
    frame = pl.DataFrame({"lat": lat, "lon": lon}, schema={"lat": pl.Float64, "lon": pl.Float64})
    located = (
        pl.col("lat").is_between(-90, 90)
        & pl.col("lon").is_between(-180, 180)
        & pl.col("lat").is_not_nan()
        & pl.col("lon").is_not_nan()
    )
    cells = frame.select(
        pl.when(located)
        .then(plh3.latlng_to_cell("lat", "lon", REGION_RESOLUTION, return_dtype=pl.Utf8))
        .otherwise(pl.lit(_UNLOCATED))
        .fill_null(_UNLOCATED)
        .alias("key")
    )
    return cells["key"].to_list()
