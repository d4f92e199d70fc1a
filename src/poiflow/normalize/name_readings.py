"""What a record's name says beside the place's name, read out of it: a phone or web
address ("Cafe Aalto, puh. 09 123 4567"), a closure ("Cafe Aalto (closed)"), an old name
("Cafe Aalto (formerly Bar Rio)"), what the record says elsewhere (a listing's title:
"Cafe Aalto - Helsinki"), the name in other languages ("Merenneito / Sjöjungfru").

Each reading is a function of one name in :mod:`poiflow.normalize.names`; this module
applies them to a batch's names in order, each distinct name once, and gives the other
names, statuses and contacts they find to the records.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from poiflow.normalize.names import (
    CONTACTS,
    FORMER,
    NAMES,
    SEPARATED,
    STATUSES,
    TITLES,
    contact_in_name,
    name_aside,
    name_parts,
    status_in_name,
    without_own_parts,
)

__all__ = ["NameReadings", "keep_as_written", "read_names"]


@dataclass(frozen=True, slots=True)
class NameReadings:
    """What :func:`read_names` read in a batch's names.

    Attributes:
        written: Each name read, as written (the first reading's, where several read it),
            by row.
        contacts: A phone or web address read in a name, by row: ``("phone", value)`` or
            ``("website", value)``, as written.
        repaired: How many records each reading read, by what ingest says of it (only
            readings that read some).
    """

    written: dict[int, str]
    contacts: dict[int, tuple[str, str]]
    repaired: dict[str, int]


def read_names(
    primary: list[str | None],
    alternates: list[list[dict[str, Any]] | None],
    status: list[str | None],
    address: dict[str, list[Any]],
    labels: list[tuple[str, ...]],
    categories: list[dict[str, Any] | None],
) -> NameReadings:
    """In place: each record's name is read for what it says beside the place's name, in
    this order: a phone or web address, a closure, an old name, what the record says
    elsewhere, other languages. The place's name is what is left; the other names found
    join the record's (``alternates``), a status found is the record's where it gives
    none (``status``).

    Args:
        primary: The records' names (cleaned).
        alternates: The records' other names.
        status: The records' operating statuses.
        address: The records' address parts, by part (``locality``, ``street``, ...).
        labels: Each record's category labels, as given.
        categories: Each record's categories in the taxonomy.
    """
    contacts = _read(primary, alternates, status, _contact_reading)
    marked = _read(primary, alternates, status, _status_reading)
    asides = _read(primary, alternates, status, _aside_reading)
    titles = _names_without_own_parts(primary, address, labels, categories)
    wholes = _read(primary, alternates, status, _parts_reading)
    found = {written: contact_in_name(written) for written in set(contacts.values())}
    return NameReadings(
        written={**wholes, **titles, **asides, **marked, **contacts},
        contacts={
            row: (read[1], read[2])
            for row, written in contacts.items()
            if (read := found[written]) is not None
        },
        repaired={
            said: len(rows)
            for said, rows in (
                (CONTACTS, contacts),
                (STATUSES, marked),
                (FORMER, asides),
                (TITLES, titles),
                (NAMES, wholes),
            )
            if rows
        },
    )


def keep_as_written(
    primary: list[str | None],
    alternates: list[list[dict[str, Any]] | None],
    written: dict[int, str],
) -> None:
    """In place: each name read (``NameReadings.written``) is kept among its record's
    other names as written. Call it once the other names' keys are made: it is to be read,
    not matched by (its contact, status, town, street or category words are what it was
    read without, and the other names in it have keys of their own)."""
    for row, name in written.items():
        others = [a for a in alternates[row] or () if a["value"] != primary[row]]
        alternates[row] = [*others, _other_name(name)]


def _names_without_own_parts(
    primary: list[str | None],
    address: dict[str, list[Any]],
    labels: list[tuple[str, ...]],
    categories: list[dict[str, Any] | None],
) -> dict[int, str]:
    """In place: a name that repeats after a separator what its record says of the place
    elsewhere, its town, address or category ("Cafe Aalto - Helsinki", "Cafe Aalto
    (Cafe)": a listing's title, ``without_own_parts``), is the rest. Returns the titles
    so read, by row."""
    separated = {n for n in set(primary) if n and SEPARATED.search(n)}  # each name once
    titles: dict[int, str] = {}
    if not separated:
        return titles
    towns, streets, numbers = address["locality"], address["street"], address["housenumber"]
    for row, name in enumerate(primary):
        if name not in separated:
            continue
        street, number = streets[row], numbers[row]
        category = categories[row]
        rest = without_own_parts(
            name,
            towns[row],
            street,
            *((f"{street} {number}", f"{number} {street}") if street and number else ()),
            *labels[row],
            category["primary"] if category else None,
        )
        if rest != name:
            primary[row] = rest
            titles[row] = name
    return titles


# A reading of a name: the place's name in it, the other names it gives (each with its
# variant: "alternate", "old"), and a status it gives.
_Reading = tuple[str, tuple[tuple[str, str], ...], str | None]


def _read(
    primary: list[str | None],
    alternates: list[list[dict[str, Any]] | None],
    status: list[str | None],
    read: Callable[[str], _Reading | None],
) -> dict[int, str]:
    """In place: each name that ``read`` reads (each distinct name once) is the name it
    gives; the other names it gives join the record's (those it has not), and a status it
    gives is the record's where it gives none. Returns the names so read, by row."""
    found = {n: got for n in set(primary) if n and (got := read(n)) is not None}
    written: dict[int, str] = {}
    if not found:
        return written
    for row, name in enumerate(primary):
        if not name or name not in found:
            continue
        primary[row], others, said = found[name]
        have = {a["value"] for a in alternates[row] or ()} | {primary[row]}
        new = [_other_name(v, variant) for v, variant in dict.fromkeys(others) if v not in have]
        alternates[row] = [*(alternates[row] or ()), *new] or None
        status[row] = status[row] or said
        written[row] = name
    return written


def _contact_reading(name: str) -> _Reading | None:
    """A phone number or web address after the name ("Cafe Aalto, puh. 09 123 4567",
    ``contact_in_name``)."""
    found = contact_in_name(name)
    return (found[0], (), None) if found else None


def _status_reading(name: str) -> _Reading | None:
    """A closure written in a name ("Cafe Aalto (closed)", ``status_in_name``)."""
    rest, said = status_in_name(name)
    return (rest, (), said) if said else None


def _aside_reading(name: str) -> _Reading | None:
    """An old name, or another, beside the name ("Cafe Aalto (formerly Bar Rio)",
    ``name_aside``)."""
    found = name_aside(name)
    return (found[0], ((found[1], found[2]),), None) if found else None


def _parts_reading(name: str) -> _Reading | None:
    """A name in two languages or more ("Merenneito / Sjöjungfru", ``name_parts``): the
    first, the others as its other names, matched by their keys as a translation is."""
    parts = name_parts(name)
    return (parts[0], tuple((p, "alternate") for p in parts[1:]), None) if parts[1:] else None


def _other_name(value: str, variant: str = "alternate") -> dict[str, Any]:
    """Another name of a record's place, of no known language."""
    return {"value": value, "language": None, "variant": variant}
