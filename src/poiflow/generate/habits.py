"""What real vendors' files do to their records, beyond noise: habits a source may have,
each a rate of its ``SourceProfile`` (0 by default: a world without them is as it was).

``rounded_points``
    The point to 2 decimals (about 1 km): a feed that keeps few digits, or hides where.
``town_centre``
    The point at the centre of the record's town (the mean point of its places): a
    geocoder that could not place the address gave it the town's (a record with a town).
``null_island``
    The point at (0, 0): where a geocoder that failed writes zeros.
``mojibake``
    Every text read as Windows-1252 and saved as UTF-8 again ("CafÃ©" for "Café"): a
    spreadsheet's round trip.
``web_escaped``
    The text escaped for HTML or XML in ASCII ("Ben &amp; Jerry's", "Caf&#233;"): a
    feed exported for the web.
``html_tags``
    The name marked up as the web page it was scraped from showed it ("<b>Café</b>",
    "Café<br>").
``listing_title``
    The name as a listing's title, with what the record says of the place after it: its
    town ("Café Aalto - Helsinki", "Café Aalto (Helsinki)"), its address ("Café Aalto,
    Mannerheimintie 5") or its category ("Café Aalto (Cafe)"), one drawn a record (of
    what the record has).
``bilingual_name``
    The name and another of the place's names (a translation) after a slash, as a
    bilingual town's feed writes them ("Merenneito / Sjöjungfru"; a place with another
    name).
``closed_in_name``
    The name marked as a place that closed ("Café Aalto (closed)", "[SULJETTU] Café
    Aalto", "Café Aalto (tillfälligt stängd)"): a feed, or its mappers, keeping a
    closure in the name, one of the ways of :data:`CLOSED_MARKS` drawn a record.
``former_name``
    The name with the name the place had before after it ("Café Aalto (formerly Bar
    Rio)", "Café Aalto (ent. Bar Rio)"): a feed that keeps a renamed place's old name in
    sight, one of the ways of :data:`FORMER_MARKS` drawn a record; the old name is
    another place's.
``contact_in_name``
    The record's phone or web address moved into its name, as a scraped directory writes
    a listing ("Café Aalto, puh. 09 123 4567", "Café Aalto - cafeaalto.fi"; one of the
    ways of :data:`CONTACT_MARKS` drawn a record, of what the record has).
``numeric_postcode``
    A postcode of digits read as a number and written back ("00170" as "170" or, as pandas
    writes a column with gaps, "170.0").
``house_number_forms``
    The house number as a building's sign or a tenant's letterhead writes it: with the
    entrance's letter ("14 A", "14b"), as the building's range of numbers ("14-16"), with
    the floor after it ("14, 2. krs", "14, 3rd floor"), or after the street, in the
    number's column ("Mannerheimintie 14"); one of the ways of :data:`NUMBER_FORMS` drawn
    a record (with a number).
``store_number``
    A chain's number for its store after the name, one number a place, in one of the ways
    of :data:`STORE_FORMS` drawn a record ("Alepa #4512", "Alepa (Store 4512)"): a chain's
    own list of its stores (a chain's records only).
``degrees_minutes``
    The point in degrees, minutes and seconds, or degrees and decimal minutes, as a GPS
    or an older survey writes it ("60°10′05.7″N", "N 60° 10.095'"), one of the ways of
    :func:`as_degrees` drawn a record.
``phone_note``
    A note after the phone number: whose or which line it is, or when it answers ("09 123
    4567 (vaihde)", "040 123 4567 (mobile)", "09 123 4567 (24h)"); one of the ways of
    :data:`PHONE_NOTES` drawn a record (with a phone).

The habits draw from a random stream of their own: a world with them has the same
records, ids and truth as without, only these values changed.
"""

from __future__ import annotations

import html
import zlib
from collections.abc import Mapping, Sequence
from typing import Any, Final

import numpy as np

__all__ = [
    "APART",
    "CLOSED_MARKS",
    "CONTACT_MARKS",
    "ESCAPED_FIELDS",
    "FORMER_MARKS",
    "HABITS",
    "MARKUP",
    "NUMBER_FORMS",
    "PHONE_NOTES",
    "STORE_FORMS",
    "as_a_number",
    "as_degrees",
    "escaped_for_the_web",
    "read_as_windows_1252",
    "with_habits",
]

HABITS: Final = (
    "rounded_points",
    "town_centre",
    "null_island",
    "mojibake",
    "web_escaped",
    "html_tags",
    "listing_title",
    "bilingual_name",
    "closed_in_name",
    "former_name",
    "contact_in_name",
    "numeric_postcode",
    "house_number_forms",
    "phone_note",
    "store_number",
    "degrees_minutes",
)
"""The habits' rates, by name (each a field of ``SourceProfile``)."""

APART: Final = ("house_number_forms", "phone_note", "store_number", "degrees_minutes")
"""The habits drawn from a stream of their own (:func:`with_habits`' ``apart``): those
added after the worlds the benchmarks record were drawn, so that those worlds, with a
habit of these added, keep every other value."""

MARKUP: Final = (
    "<b>{}</b>",
    "<strong>{}</strong>",
    '<span class="name">{}</span>',
    "<p>{}</p>",
    "{}<br>",
    "{}<br/>",
)
"""How a page scraped for a feed marks a name up (``html_tags``), one drawn a record."""

CLOSED_MARKS: Final = (
    "{} (closed)",
    "{} (CLOSED)",
    "{} - permanently closed",
    "[CLOSED] {}",
    "{} (suljettu)",
    "[SULJETTU] {}",
    "{} (tillfälligt stängd)",
    "{} (Temporarily closed)",
    "CLOSED: {}",
)
"""How a feed marks a place that closed in its name (``closed_in_name``)."""

CONTACT_MARKS: Final = (
    ("phone", "{} {}"),
    ("phone", "{}, puh. {}"),
    ("phone", "{} (tel. {})"),
    ("website", "{} - {}"),
    ("website", "{} ({})"),
)
"""How a scraped listing writes a record's phone or web address in its name
(``contact_in_name``): the field it moves, and the name it writes."""

FORMER_MARKS: Final = (
    "{} (formerly {})",
    "{} (ex-{})",
    "{} - formerly {}",
    "{} (ent. {})",
    "{} (f.d. {})",
    "{} (previously {})",
)
"""How a feed writes a renamed place's old name beside its name (``former_name``)."""

NUMBER_FORMS: Final = (
    "{n} A",
    "{n}b",
    "{n} C",
    "{n}-{m}",
    "{n}–{m}",
    "{n}, 2. krs",
    "{n}, 3rd floor",
    "{n} B 12",
    "{street} {n}",
)
"""How a feed writes a house number ``n`` (``house_number_forms``): an entrance's letter, the
building's range (to ``m``, the next number on its side of the street), a floor, a
staircase and flat, or the street before it."""

PHONE_NOTES: Final = (
    "{} (mobile)",
    "{} (vaihde)",
    "{} (växel)",
    "{} (24h)",
    "{} (ma-pe 9-17)",
    "{} (reception)",
    "{} Matti",
)
"""How a feed writes a note after a phone number (``phone_note``)."""

STORE_FORMS: Final = (
    "{} #{}",
    "{} Store {}",
    "{} Store #{}",
    "{} (Store {})",
    "{} (#{})",
    "{} - Myymälä {}",
)
"""How a chain's list of its stores writes a store's number after its name
(``store_number``)."""

# The text fields of a generated record that an export for the web escapes (ids, points
# and phones stay as they are; a web address's "&" between parameters is escaped too).
ESCAPED_FIELDS: Final = ("name", "category", "street", "city", "brand", "website")


def read_as_windows_1252(text: str) -> str:
    """``text``'s UTF-8 bytes, each read as the Windows-1252 character (a byte it leaves
    undefined as Latin-1, as most readers do): a spreadsheet's round trip."""
    return "".join(
        bytes([b]).decode("cp1252", errors="ignore") or chr(b) for b in text.encode("utf-8")
    )


def escaped_for_the_web(text: str) -> str:
    """``text`` as an XML feed in ASCII writes it: "&", "<" and ">" escaped, every other
    character beyond ASCII a numeric reference."""
    return html.escape(text, quote=False).encode("ascii", "xmlcharrefreplace").decode("ascii")


def as_a_number(postcode: str | None, *, as_float: bool = True) -> str | None:
    """A postcode of digits read as a number and written back: "00170" -> "170.0" (as
    pandas writes a float column), or "170" (``as_float`` False: a spreadsheet)."""
    if postcode is None or not postcode.isdigit():
        return postcode
    return f"{int(postcode)}.0" if as_float else str(int(postcode))


def as_degrees(value: float, axis: str, way: int) -> str:
    """A latitude (``axis`` "lat") or longitude ("lon") as a GPS or a survey writes it:
    degrees, minutes and seconds to a tenth ("60°10′05.7″N", ``way`` 0), the letter first
    and decimal minutes to a thousandth ("N 60° 10.095'", 1), or numbers and a letter
    ("60 10 5.7 N", 2)."""
    letter = ("N" if value >= 0 else "S") if axis == "lat" else ("E" if value >= 0 else "W")
    tenths = round(abs(value) * 36_000)  # in tenths of a second
    d, rest = divmod(tenths, 36_000)
    m, s = divmod(rest, 600)
    if way == 1:
        minutes = round(abs(value) * 60_000)  # in thousandths of a minute
        return f"{letter} {minutes // 60_000}° {minutes % 60_000 / 1000:.3f}'"
    if way == 2:
        return f"{d} {m} {s / 10:.1f} {letter}"
    return f"{d}°{m:02d}′{s / 10:04.1f}″{letter}"


def _titled(row: dict[str, Any], way: int) -> str:
    """The record's name as a listing's title: with its town after a dash (``way`` 0) or
    in brackets (1), its street and number after a comma (2), or its category in brackets
    (3); as it is where the record has not that."""
    town, street, category = row.get("city"), row.get("street"), row.get("category")
    if way == 3:
        return f"{row['name']} ({category})" if category else str(row["name"])
    if way == 2 and street:
        return f"{row['name']}, {street} {row.get('housenumber') or ''}".rstrip()
    if town:
        return f"{row['name']} ({town})" if way == 1 else f"{row['name']} - {town}"
    return str(row["name"])


def _bilingual(name: str, other: str) -> str:
    """``name`` with the place's ``other`` name after a slash, in the case the source
    writes its names in ("MERENNEITO / SJÖJUNGFRU")."""
    if name.isupper():
        other = other.upper()
    elif name.islower():
        other = other.lower()
    return name if other == name else f"{name} / {other}"


def with_habits(
    row: dict[str, Any],
    rates: Mapping[str, float],
    rng: np.random.Generator,
    centres: Mapping[str, tuple[float, float]],
    alternates: Mapping[str, list[tuple[str, str]]] | None = None,
    former: Sequence[str] = (),
    apart: np.random.Generator | None = None,
    chains: frozenset[str] = frozenset(),
) -> dict[str, Any]:
    """``row`` (a generated record, flat place format) as a source with these habits
    writes it. ``rates``: each habit's rate (of :data:`HABITS`; one left out is 0);
    ``centres``: each town's centre, where a geocoder puts a record of the town (one
    without a town it cannot put there); ``alternates``: each place's other names
    (language, name), by place id; ``former``: the names a renamed place may have had. A
    habit at rate 0 draws nothing. The habits of :data:`APART` draw from ``apart`` (``rng``
    where None), so that a world with them has every other habit's values as without.
    ``chains``: the ids of the places that are a chain's stores."""

    draw = apart if apart is not None else rng  # the stream of the habits of ``APART``

    def chance(habit: str) -> bool:
        rate = rates.get(habit, 0.0)
        return bool(rate) and bool((draw if habit in APART else rng).random() < rate)

    if row["lat"] is not None:
        if chance("town_centre") and row.get("city") in centres:
            row["lat"], row["lon"] = centres[row["city"]]
        elif chance("null_island"):
            row["lat"], row["lon"] = 0.0, 0.0
        if chance("rounded_points"):
            row["lat"], row["lon"] = round(row["lat"], 2), round(row["lon"], 2)
    if chance("numeric_postcode"):
        row["postcode"] = as_a_number(row.get("postcode"), as_float=bool(rng.random() < 0.5))
    named = isinstance(row.get("name"), str)  # a name the habits below may change
    others = (alternates or {}).get(row.get("_place", ""), [])
    if others and chance("bilingual_name") and named:
        row["name"] = _bilingual(row["name"], others[int(rng.integers(len(others)))][1])
    place = row.get("_place", "")
    if place in chains and chance("store_number") and named:
        number = 100 + zlib.crc32(place.encode()) % 9900  # the chain's, one a store
        row["name"] = STORE_FORMS[int(draw.integers(len(STORE_FORMS)))].format(row["name"], number)
    if chance("listing_title") and named:
        row["name"] = _titled(row, int(rng.integers(4)))
    if former and chance("former_name") and named:
        old = former[int(rng.integers(len(former)))]
        row["name"] = FORMER_MARKS[int(rng.integers(len(FORMER_MARKS)))].format(row["name"], old)
    if chance("contact_in_name") and named:
        ways = [(field, way) for field, way in CONTACT_MARKS if row.get(field)]
        if ways:
            field, way = ways[int(rng.integers(len(ways)))]
            row["name"], row[field] = way.format(row["name"], row[field]), None
    if chance("closed_in_name") and named:
        row["name"] = CLOSED_MARKS[int(rng.integers(len(CLOSED_MARKS)))].format(row["name"])
    if chance("html_tags") and named:
        row["name"] = MARKUP[int(rng.integers(len(MARKUP)))].format(row["name"])
    if chance("web_escaped"):
        for field in ESCAPED_FIELDS:
            if isinstance(row.get(field), str):
                row[field] = escaped_for_the_web(row[field])
    if chance("mojibake"):
        for field, value in row.items():
            if isinstance(value, str) and not field.startswith("_"):
                row[field] = read_as_windows_1252(value)
    # Last: a listing's title, drawn before, writes the address as the vendor has it.
    if chance("house_number_forms") and str(row.get("housenumber") or "").isdigit():
        number, street = int(row["housenumber"]), row.get("street") or ""
        forms = [form for form in NUMBER_FORMS if street or "{street}" not in form]
        row["housenumber"] = forms[int(draw.integers(len(forms)))].format(
            n=number, m=number + 2, street=street
        )
    if row["lat"] is not None and chance("degrees_minutes"):
        written = int(draw.integers(3))
        row["lat"], row["lon"] = (as_degrees(row[a], a, written) for a in ("lat", "lon"))
    if chance("phone_note") and row.get("phone"):
        row["phone"] = PHONE_NOTES[int(draw.integers(len(PHONE_NOTES)))].format(row["phone"])
    return row
