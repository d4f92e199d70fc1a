"""What a record's name says beside the place's name, read out of it: a phone or web
address ("Cafe Aalto, puh. 09 123 4567"), a closure ("Cafe Aalto (closed)"), an old name
("Cafe Aalto (formerly Bar Rio)"), what the record says elsewhere (a listing's title:
"Cafe Aalto - Helsinki"), the name in other languages ("Merenneito / Sjöjungfru").

Each reading is a function of one name in :mod:`poiflow.normalize.name_asides` (the
listing's title: :mod:`poiflow.normalize.names`); this module
applies them to a batch's names in order, each distinct name once, and gives the other
names, statuses and contacts they find to the records.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, NamedTuple

from poiflow.normalize.name_asides import (
    CONTACTS,
    FORMER,
    NAMES,
    STATUSES,
    STORE_NUMBERS,
    contact_in_name,
    name_aside,
    name_parts,
    status_in_name,
    store_number_in_name,
)
from poiflow.normalize.names import SEPARATED, TITLES, without_own_parts
from poiflow.text import kept_examples

__all__ = ["NameReadings", "keep_as_written", "read_contacts", "read_names"]


@dataclass(frozen=True, slots=True)
class NameReadings:
    """What :func:`read_contacts` or :func:`read_names` read in a batch's names.

    Attributes:
        written: Each name read, as written (the first reading's, where several read it),
            by row.
        contacts: A phone or web address read in a name, by row: ``("phone", value)`` or
            ``("website", value)``, as written.
        repaired: How many records each reading read, by what ingest says of it (only
            readings that read some).
        examples: The first names each reading read, as it read them, by what ingest says of
            it (``poiflow.text.kept_examples``).
    """

    written: dict[int, str]
    contacts: dict[int, tuple[str, str]]
    repaired: dict[str, int]
    examples: dict[str, tuple[str, ...]]

    def then(self, later: NameReadings) -> NameReadings:
        """These readings and ``later`` ones of the same names: a name as written is the
        one the first reading saw."""
        return NameReadings(
            {**later.written, **self.written},
            {**later.contacts, **self.contacts},
            {**self.repaired, **later.repaired},
            {**self.examples, **later.examples},
        )

    def filled(self, values: list[list[str] | None], kind: str) -> list[list[str] | None]:
        """A record's ``values`` (its phones or web addresses, as given), with the
        ``kind`` of contact read in its name where it gives none."""
        rows = {row: value for row, (k, value) in self.contacts.items() if k == kind}
        if not rows:
            return values
        return [
            [rows[row]] if row in rows and not given else given for row, given in enumerate(values)
        ]


def read_contacts(primary: list[str | None]) -> NameReadings:
    """In place: a phone number or web address after a name ("Cafe Aalto, puh. 09 123
    4567", ``contact_in_name``) is left out of it. Read before the records' phones and web
    addresses are, which take it where they give none (:meth:`NameReadings.filled`)."""
    done = _read(primary, _contact_reading)
    written = {row: written for row, (written, _) in done.items()}
    return NameReadings(
        written=written,
        contacts={row: r.contact for row, (_, r) in done.items() if r.contact is not None},
        repaired={CONTACTS: len(done)} if done else {},
        examples={CONTACTS: kept_examples((), written.values())} if done else {},
    )


def read_names(
    primary: list[str | None],
    alternates: list[list[dict[str, Any]] | None],
    status: list[str | None],
    address: dict[str, list[Any]],
    labels: list[tuple[str, ...]],
    categories: list[dict[str, Any] | None],
) -> NameReadings:
    """In place: each record's name is read for what it says beside the place's name, in
    this order: a closure, an old name, what the record says elsewhere, a chain's number
    for its store, other languages (after :func:`read_contacts`). The place's name is what
    is left; the other names found join the record's (``alternates``), a status found is
    the record's where it gives none (``status``).

    Args:
        primary: The records' names (cleaned).
        alternates: The records' other names.
        status: The records' operating statuses.
        address: The records' address parts, by part (``locality``, ``street``, ...).
        labels: Each record's category labels, as given.
        categories: Each record's categories in the taxonomy.
    """
    marked = _given(_read(primary, _status_reading), alternates, status)
    asides = _given(_read(primary, _aside_reading), alternates, status)
    titles = _names_without_own_parts(primary, address, labels, categories)
    stores = _given(_read(primary, _store_reading), alternates, status)
    wholes = _given(_read(primary, _parts_reading), alternates, status)
    read = (
        (STATUSES, marked),
        (FORMER, asides),
        (TITLES, titles),
        (STORE_NUMBERS, stores),
        (NAMES, wholes),
    )
    return NameReadings(
        written={**wholes, **stores, **titles, **asides, **marked},
        contacts={},
        repaired={said: len(rows) for said, rows in read if rows},
        examples={said: kept_examples((), rows.values()) for said, rows in read if rows},
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
        # The number as written, and its first number alone ("6" of "6 B 12", "6-8").
        written = dict.fromkeys([number, *_FIRST_NUMBER.findall(number or "")])
        rest = without_own_parts(
            name,
            towns[row],
            street,
            *(p for n in written if street and n for p in (f"{street} {n}", f"{n} {street}")),
            *labels[row],
            category["primary"] if category else None,
        )
        if rest != name:
            primary[row] = rest
            titles[row] = name
    return titles


class _Reading(NamedTuple):
    """What one reading found in a name."""

    name: str  # the place's name in it
    others: tuple[tuple[str, str], ...] = ()  # other names: (value, variant "alternate"/"old")
    status: str | None = None
    contact: tuple[str, str] | None = None  # ("phone" or "website", value as written)


def _read(
    primary: list[str | None], read: Callable[[str], _Reading | None]
) -> dict[int, tuple[str, _Reading]]:
    """In place: each name that ``read`` reads (each distinct name once) is the name it
    gives. Returns, by row, the name as written and what was read in it."""
    found = {n: got for n in set(primary) if n and (got := read(n)) is not None}
    done: dict[int, tuple[str, _Reading]] = {}
    if not found:
        return done
    for row, name in enumerate(primary):
        if name and name in found:
            primary[row] = found[name].name
            done[row] = (name, found[name])
    return done


def _given(
    done: dict[int, tuple[str, _Reading]],
    alternates: list[list[dict[str, Any]] | None],
    status: list[str | None],
) -> dict[int, str]:
    """In place: the other names read join their record's (those it has not), and a
    status read is the record's where it gives none. Returns the names read, as written,
    by row."""
    for row, (_, reading) in done.items():
        have = {a["value"] for a in alternates[row] or ()} | {reading.name}
        new = [
            _other_name(v, variant) for v, variant in dict.fromkeys(reading.others) if v not in have
        ]
        alternates[row] = [*(alternates[row] or ()), *new] or None
        status[row] = status[row] or reading.status
    return {row: written for row, (written, _) in done.items()}


_DIGIT_OR_DOT: Final = re.compile(r"[\d.]")
_FIRST_NUMBER: Final = re.compile(r"^\d+")


def _contact_reading(name: str) -> _Reading | None:
    """A phone number or web address after the name ("Cafe Aalto, puh. 09 123 4567",
    ``contact_in_name``), or before a closure that ends it ("Cafe Aalto, puh. 09 123 4567
    (closed)"), which stays in the name for its own reading."""
    found, closure = contact_in_name(name), ""
    if found is None:
        if not _DIGIT_OR_DOT.search(name):  # no phone and no web address: most names
            return None
        rest, said = status_in_name(name)
        if not said or not name.startswith(rest) or (found := contact_in_name(rest)) is None:
            return None
        closure = name[len(rest) :]
    return _Reading(found[0] + closure, contact=(found[1], found[2]))


def _status_reading(name: str) -> _Reading | None:
    """A closure written in a name ("Cafe Aalto (closed)", ``status_in_name``)."""
    rest, said = status_in_name(name)
    return _Reading(rest, status=said) if said else None


def _aside_reading(name: str) -> _Reading | None:
    """An old name, or another, beside the name ("Cafe Aalto (formerly Bar Rio)",
    ``name_aside``)."""
    found = name_aside(name)
    return _Reading(found[0], ((found[1], found[2]),)) if found else None


def _store_reading(name: str) -> _Reading | None:
    """A chain's number for its store after the name ("Starbucks #10234",
    ``store_number_in_name``)."""
    rest = store_number_in_name(name)
    return _Reading(rest) if rest is not None else None


def _parts_reading(name: str) -> _Reading | None:
    """A name in two languages or more ("Merenneito / Sjöjungfru", ``name_parts``): the
    first, the others as its other names, matched by their keys as a translation is."""
    parts = name_parts(name)
    return _Reading(parts[0], tuple((p, "alternate") for p in parts[1:])) if parts[1:] else None


def _other_name(value: str, variant: str = "alternate") -> dict[str, Any]:
    """Another name of a record's place, of no known language."""
    return {"value": value, "language": None, "variant": variant}
