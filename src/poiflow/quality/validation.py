"""Record validation: which source records may go on, and why the others may not.

A record is held back when it has no id or no name (or a placeholder for one: "Unknown",
"N/A", "<unnamed>"), when a coordinate is unparsable, out of
range (metres of another coordinate system, said so, where it is far out) or alone (a
latitude without a longitude), or when the source itself found a problem with it.
Field-level problems (an unparsable phone, a point at (0, 0)) do not hold a record back:
normalization withholds just that value.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["LONGEST_TEXT", "DuplicateIds", "Validation", "validate_records", "validate_rows"]


# The reasons a record is held back, shared by the table and the row paths.
_NO_ID: Final = "id is missing"
_NO_NAME: Final = "name is missing"
_NO_ALNUM: Final = "name has no letters or digits"
_ONE_COORDINATE: Final = "only one of lat and lon is given"
# What a feed writes where a place has no name ("Unknown", "N/A", "<unnamed>", "Nimetön";
# in the eleven languages normalization reads closures in): records so named would meet
# each other, not their places. Compared in lower case, without the marks around them.
_PLACEHOLDERS: Final = frozenset(
    [
        "unknown",
        "unnamed",
        "no name",
        "no-name",
        "no_name",
        "noname",
        "nameless",
        "none",
        "null",
        "nil",
        "n/a",
        "n.a",
        "na",
        "tbd",
        "tba",
        "tbc",
        "untitled",
        "not available",
        "placeholder",
        "nimetön",
        "nimeton",
        "tuntematon",
        "ei nimeä",
        "namnlös",
        "namnlos",
        "okänd",
        "okand",
        "unbenannt",
        "ohne namen",
        "unbekannt",
        "sans nom",
        "inconnu",
        "sin nombre",
        "desconocido",
        "senza nome",
        "sconosciuto",
        "onbekend",
        "geen naam",
        "naamloos",
        "bez nazwy",
        "nieznany",
        "uten navn",
        "ukjent",
        "ukendt",
    ]
)
_PLACEHOLDER_MARKS: Final = " <>()[]{}-_.*#?!\"'"
_LONGEST_PLACEHOLDER: Final = 2 + max(map(len, _PLACEHOLDERS))
LONGEST_TEXT: Final = 500
"""The most characters a name or street may have (OpenStreetMap allows 255). Matching
compares these texts pair by pair, and a text of megabytes (a description, or a row
whose quotes broke) would stall it: such a record is held back."""
# A source's own issue about these fields already says what is wrong with the location.
_COORDINATE_ISSUES: Final = ("lat", "lon", "geometry", "location")


# Past this, a coordinate is metres of another coordinate system, not degrees gone astray.
_METRES: Final = 1000.0
_IN_METRES: Final = (
    "coordinates in metres of another coordinate system? name it with crs in a mapping"
)


def _lat_range(lat: float) -> str:
    return f"lat {lat} is out of range [-90, 90]"


def _lon_range(lon: float) -> str:
    return f"lon {lon} is out of range [-180, 180]"


@dataclass(frozen=True, slots=True)
class Validation:
    """The verdict on one batch of records.

    Attributes:
        valid: One flag per record: may it go on?
        reasons: For each record held back, why (several reasons joined by "; ").
    """

    valid: np.ndarray
    reasons: list[str | None]

    @property
    def held_back(self) -> int:
        """How many records were held back."""
        return int((~self.valid).sum())


def validate_records(records: pa.Table) -> Validation:
    """Validate a batch of source records (``SOURCE_RECORD_SCHEMA``).

    Vectorized: each rule is one Arrow or numpy expression over the batch; only the rows
    that fail pay for building a message.
    """
    n = records.num_rows
    # Only the rows held back get a list of reasons: most rows have none.
    reasons: dict[int, list[str]] = {}

    def flag(mask: np.ndarray, message: str | Callable[[int], str]) -> None:
        for row in np.flatnonzero(mask).tolist():
            reasons.setdefault(row, []).append(message(row) if callable(message) else message)

    ids = records.column("id")
    flag(_blank(ids), _NO_ID)
    names = pc.struct_field(records.column("names"), "primary")
    blank_name = _blank(names)
    flag(blank_name, _NO_NAME)
    # In Python, not with Arrow's regex: RE2 builds its Unicode classes on every call
    # (0.6 ms, which a request of one record feels), and most names stop at their first
    # character.
    listed = names.to_pylist()
    no_alnum = np.array(
        [v is not None and not any(map(str.isalnum, v)) for v in listed], dtype=bool
    )
    flag(no_alnum & ~blank_name, _NO_ALNUM)
    placeholders = {v for v in set(listed) if v is not None and _placeholder(v)}  # most: none
    if placeholders:
        placeholder = np.array([v in placeholders for v in listed], dtype=bool)
        flag(placeholder, lambda row: _placeholder_reason(listed[row]))

    for field, lengths in _compared_lengths(records):
        flag(lengths > LONGEST_TEXT, functools.partial(_too_long_at, field, lengths))

    lat = records.column("lat").to_numpy(zero_copy_only=False).astype(float)
    lon = records.column("lon").to_numpy(zero_copy_only=False).astype(float)
    issues = records.column("issues").to_pylist()
    coordinate_issue = np.zeros(n, dtype=bool)
    for row, found in enumerate(issues):
        if found:
            reasons.setdefault(row, []).extend(found)
            coordinate_issue[row] = any(i.startswith(_COORDINATE_ISSUES) for i in found)
    lat_missing, lon_missing = np.isnan(lat), np.isnan(lon)
    flag((lat_missing ^ lon_missing) & ~coordinate_issue, _ONE_COORDINATE)
    with np.errstate(invalid="ignore"):
        flag(np.abs(lat) > 90, lambda row: _lat_range(lat[row]))
        flag(np.abs(lon) > 180, lambda row: _lon_range(lon[row]))
        flag((np.abs(lat) > _METRES) | (np.abs(lon) > _METRES), _IN_METRES)

    joined: list[str | None] = [None] * n
    valid = np.ones(n, dtype=bool)
    for row, why in reasons.items():
        joined[row] = "; ".join(why)
        valid[row] = False
    return Validation(valid, joined)


def validate_rows(records: Sequence[Mapping[str, Any]]) -> Validation:
    """``validate_records`` of records given as rows (``SOURCE_RECORD_SCHEMA``'s fields),
    rule by rule in plain Python: the same verdicts and reasons, without Arrow's fixed
    cost per call that a request of one record would pay for every rule."""
    joined: list[str | None] = []
    for record in records:
        reasons: list[str] = []
        if _blank_text(record["id"]):
            reasons.append(_NO_ID)
        name = None if record["names"] is None else record["names"]["primary"]
        if _blank_text(name):
            reasons.append(_NO_NAME)
        elif name is not None and not any(map(str.isalnum, name)):
            reasons.append(_NO_ALNUM)
        elif name is not None and _placeholder(name):
            reasons.append(_placeholder_reason(name))
        for field, length in _compared_lengths_of(record):
            if length > LONGEST_TEXT:
                reasons.append(_too_long(field, length))
        issues = record["issues"] or []
        reasons.extend(issues)
        lat = np.nan if record["lat"] is None else float(record["lat"])
        lon = np.nan if record["lon"] is None else float(record["lon"])
        coordinate_issue = any(i.startswith(_COORDINATE_ISSUES) for i in issues)
        if np.isnan(lat) != np.isnan(lon) and not coordinate_issue:
            reasons.append(_ONE_COORDINATE)
        if abs(lat) > 90:
            reasons.append(_lat_range(lat))
        if abs(lon) > 180:
            reasons.append(_lon_range(lon))
        if abs(lat) > _METRES or abs(lon) > _METRES:
            reasons.append(_IN_METRES)
        joined.append("; ".join(reasons) if reasons else None)
    return Validation(np.array([r is None for r in joined], dtype=bool), joined)


def _compared_lengths(records: pa.Table) -> list[tuple[str, np.ndarray]]:
    """The characters of each record's texts that matching compares (0 where missing):
    its name, its longest other name, its street."""
    n = records.num_rows
    names = records.column("names")
    others = pc.struct_field(pc.list_flatten(pc.struct_field(names, "alternates")), "value")
    longest_other = np.zeros(n, dtype=np.int64)
    if len(others):
        rows = pc.list_parent_indices(pc.struct_field(names, "alternates")).to_numpy()
        np.maximum.at(longest_other, rows, _lengths(others))
    street = pc.struct_field(records.column("address"), "street")
    return [
        ("name", _lengths(pc.struct_field(names, "primary"))),
        ("another name", longest_other),
        ("street", _lengths(street)),
    ]


def _compared_lengths_of(record: Mapping[str, Any]) -> list[tuple[str, int]]:
    """``_compared_lengths`` of one record given as a row."""
    names = record.get("names") or {}
    address = record.get("address") or {}
    others = [(a or {}).get("value") or "" for a in names.get("alternates") or []]
    return [
        ("name", len(names.get("primary") or "")),
        ("another name", max(map(len, others), default=0)),
        ("street", len(address.get("street") or "")),
    ]


def _lengths(values: pa.ChunkedArray | pa.Array) -> np.ndarray:
    counted = pc.fill_null(pc.utf8_length(values), 0)
    return np.asarray(counted.to_numpy(zero_copy_only=False), dtype=np.int64)


def _too_long_at(field: str, lengths: np.ndarray, row: int) -> str:
    return _too_long(field, int(lengths[row]))


def _too_long(field: str, length: int) -> str:
    return (
        f"{field} is {length:,} characters long: longer than any place's "
        f"(at most {LONGEST_TEXT:,}), a description or a broken row"
    )


def _placeholder(name: str) -> bool:
    """Whether ``name`` is what a feed writes where it has none ("Unknown", "<unnamed>")."""
    return (
        len(name) <= _LONGEST_PLACEHOLDER
        and name.lower().strip(_PLACEHOLDER_MARKS) in _PLACEHOLDERS
    )


def _placeholder_reason(name: str) -> str:
    return f"name '{name}' is what a feed writes for no name"


def _blank_text(value: str | None) -> bool:
    return value is None or not value.strip()


def _blank(values: pa.ChunkedArray | pa.Array) -> np.ndarray:
    trimmed = pc.utf8_trim_whitespace(values)
    blank = pc.fill_null(pc.equal(trimmed, ""), True)
    return np.asarray(blank.to_numpy(zero_copy_only=False), dtype=bool)


class DuplicateIds:
    """Remembers the (source, id) pairs seen so far, to hold back a repeated id.

    The first record with an id goes on; a later record with the same id in the same
    source is held back with a reason that names where the first one was.

    Each id is remembered with the number of its batch only: where in the batch it was
    (its ``origin``) is looked up when an id repeats, which is rare, so a usual batch costs
    one pass over its ids (a million records: no tuple and no origin made per record).
    """

    def __init__(self) -> None:
        self._first: dict[str, dict[str, int]] = {}  # source -> id -> its batch
        self._batches: list[tuple[pa.Table, np.ndarray]] = []  # source, id, origin; valid rows

    def check(self, records: pa.Table, valid: np.ndarray) -> list[str | None]:
        """For each valid record, ``None`` or why it repeats an earlier id."""
        out: list[str | None] = [None] * records.num_rows
        rows = np.flatnonzero(valid)
        batch = len(self._batches)
        self._batches.append((records.select(["source", "id", "origin"]), rows))
        taken = pa.array(rows, pa.int64())
        sources = records.column("source").take(taken)
        ids = records.column("id").take(taken).to_pylist()
        if pc.count_distinct(sources).as_py() == 1:  # the usual batch: one source
            seen = self._first.setdefault(sources[0].as_py(), {})
            if len(set(ids)) == len(ids) and seen.keys().isdisjoint(ids):
                seen.update(dict.fromkeys(ids, batch))  # no id seen twice
                return out
        for row, source, record_id in zip(rows.tolist(), sources.to_pylist(), ids, strict=True):
            seen = self._first.setdefault(source, {})
            first = seen.get(record_id)
            if first is None:
                seen[record_id] = batch
            else:
                out[row] = (
                    f"duplicate id '{record_id}' in source '{source}' "
                    f"(first at {self._origin(first, source, record_id)})"
                )
        return out

    def _origin(self, batch: int, source: str, record_id: str) -> str:
        """Where the first valid record of ``batch`` with this source and id was."""
        keys, rows = self._batches[batch]
        alike = pc.and_(
            pc.equal(keys.column("source"), source), pc.equal(keys.column("id"), record_id)
        )
        found = np.flatnonzero(pc.fill_null(alike, False).to_numpy(zero_copy_only=False))
        first = int(found[np.isin(found, rows)][0])
        origin = keys.column("origin")[first].as_py()
        return str(origin) if origin else "an earlier row"
