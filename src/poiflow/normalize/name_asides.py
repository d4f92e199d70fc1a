"""What a place's name says beside the name, read out of it, one name at a time: the name
in other languages ("Merenneito / Sjöjungfru"), a closure ("Cafe Aalto (closed)"), an old
name ("Cafe Aalto (formerly Bar Rio)"), a phone or web address ("Cafe Aalto, puh. 09 123
4567"), a chain's number for its store ("Starbucks #10234").
:mod:`poiflow.normalize.name_readings` applies them to a batch's records.

Each first takes a quick look (a bracket or separator, a stem of its words, a last digit
or dot) that most names fail, and only then its patterns.
"""

from __future__ import annotations

import re
from typing import Final

from poiflow.text import fold

__all__ = [
    "CONTACTS",
    "FORMER",
    "NAMES",
    "STATUSES",
    "STORE_NUMBERS",
    "contact_in_name",
    "name_aside",
    "name_parts",
    "status_in_name",
    "store_number_in_name",
]


NAMES: Final = (
    "a name in two languages or more, read as the first, the others kept as its other names"
)
"""What ingest says of the records whose name :func:`name_parts` split ("Merenneito /
Sjöjungfru")."""


def name_parts(name: str) -> tuple[str, ...]:
    """The names that ``name`` writes between spaced slashes, as a bilingual town's feed
    writes a place's name in each language ("Merenneito / Sjöjungfru"); ``(name,)``
    where it writes one.

    A part is a name only if it has a letter, and, where the name has capitals, starts
    with one: "Rautatientori / länsi kaupunkipyöräasema" (the square's west bike
    station) is one name. A slash without spaces ("M/S Maria", "frank/ie") splits
    nothing.

    >>> name_parts("Merenneito / Sjöjungfru")
    ('Merenneito', 'Sjöjungfru')
    >>> name_parts("Rautatientori / länsi kaupunkipyöräasema")
    ('Rautatientori / länsi kaupunkipyöräasema',)
    >>> name_parts("Ravintolalaiva M/S Maria")
    ('Ravintolalaiva M/S Maria',)
    """
    if " / " not in name:
        return (name,)
    parts = tuple(part.strip() for part in name.split(" / "))
    cased = name != name.lower() and name != name.upper()
    for part in parts:
        first = next((c for c in part if c.isalpha()), None)
        if first is None or (cased and not first.isupper()):
            return (name,)
    return parts


_CLOSED: Final = (
    "closed, permanently closed, closed permanently, closed down, closed for good, defunct, "
    "out of business, suljettu, pysyvasti suljettu, lopettanut, lakkautettu, stangd, stangt, "
    "permanent stangd, nedlagd, geschlossen, dauerhaft geschlossen, ferme, ferme "
    "definitivement, definitivement ferme, cerrado, cerrado permanentemente, chiuso, chiuso "
    "definitivamente, gesloten, permanent gesloten, definitief gesloten, zamkniete, stengt, "
    "nedlagt, lukket"
)
_CLOSED_FOR_NOW: Final = (
    "temporarily closed, closed temporarily, tilapaisesti suljettu, valiaikaisesti suljettu, "
    "tillfalligt stangd, tillfalligt stangt, vorubergehend geschlossen, ferme temporairement, "
    "temporairement ferme, cerrado temporalmente, chiuso temporaneamente, tijdelijk gesloten, "
    "midlertidig stengt, midlertidigt lukket"
)
_STATUS_WORDS: Final = {
    **dict.fromkeys(_CLOSED.split(", "), "permanently_closed"),
    **dict.fromkeys(_CLOSED_FOR_NOW.split(", "), "temporarily_closed"),
}
# A word that begins some status above, as written, in lower case (most names have none:
# only those that do are read further; searched in the name lowered, as a pattern that
# ignores case takes four times as long).
_STATUS_STEMS: Final = re.compile(
    r"clos|defunct|business|sulj|lopett|lakkaut|st[aä]ng|nedlag|geschl|ferm[eé]|cerrad|"
    r"chius|geslot|zamkni|steng|lukket"
)
# What stands apart from a name beside it: brackets, or a separator after the name (",",
# "-", "|", ":") or before it (":", "-", "|").
_BRACKETS: Final = {"(": ")", "[": "]"}
_IN_BRACKETS: Final = re.compile(r"\s*\(([^()]*)\)")
_AFTER: Final = re.compile(r"\s+[-–—|]\s+|\s*[,:]\s+")
_BEFORE: Final = re.compile(r"\s*[:]\s+|\s+[-–—|]\s+")
_APART: Final = re.compile(r"[(\[,:|–—]| - ")


def _apart(name: str) -> bool:
    """Whether anything in ``name`` may stand apart from the rest (brackets, separators):
    a quick look before the patterns, which most names need not be read by."""
    return _APART.search(name) is not None


def _opening(text: str) -> int:
    """Where the bracket opens that closes ``text`` (which ends with ")" or "]"), with the
    brackets inside it ("Cafe (ex-Zio (Shoe store))"); where they do not pair up, the
    last that opens; -1 where none does."""
    close = text[-1]
    open_ = "(" if close == ")" else "["
    depth = 0
    for at in range(len(text) - 1, -1, -1):
        if text[at] == close:
            depth += 1
        elif text[at] == open_:
            depth -= 1
            if depth == 0:
                return at
    return text.rfind(open_)


STATUSES: Final = "a place's status in its name, read as its status"
"""What ingest says of the records whose name :func:`status_in_name` read a status in
("Cafe Aalto (closed)", "[SULJETTU] Cafe Aalto")."""


def status_in_name(name: str) -> tuple[str, str | None]:
    """``name`` without a status written in it, as a feed or a mapper marks a place that
    closed ("Cafe Aalto (closed)", "Cafe Aalto - permanently closed", "[SULJETTU] Cafe
    Aalto", "Cafe Aalto (tillfälligt stängd)"), and that status (``permanently_closed`` or
    ``temporarily_closed``); ``(name, None)`` where it writes none.

    The status must stand apart, in brackets or after a separator, and be all there is
    there, in English, Finnish, Swedish, German, French, Spanish, Italian, Dutch, Polish,
    Norwegian or Danish: "Closed Loop Cafe" and "Cafe Aalto (Closed Mondays)" keep their
    names.

    >>> status_in_name("Cafe Aalto (CLOSED)")
    ('Cafe Aalto', 'permanently_closed')
    >>> status_in_name("[Tilapäisesti suljettu] Cafe Aalto")
    ('Cafe Aalto', 'temporarily_closed')
    >>> status_in_name("Closed Loop Cafe")
    ('Closed Loop Cafe', None)
    """
    if not _apart(name) or not _STATUS_STEMS.search(name.lower()):  # most names
        return name, None
    for rest, said in _beside(name):
        status = _STATUS_WORDS.get(fold(said))
        if status and fold(rest):
            return rest, status
    return name, None


def _beside(name: str) -> list[tuple[str, str]]:
    """Each way ``name`` may be a name and something beside it, (the name, that): in
    brackets at its end ("Cafe Aalto (closed)", "Cafe (ex-Zio (Shoes))"), at its start
    ("[closed] Cafe Aalto") or within it ("Cafe Aalto (ex-Zio) - Helsinki"), after its
    last separator ("Cafe Aalto - closed") or before its first ("CLOSED: Cafe Aalto")."""
    found: list[tuple[str, str]] = []
    stripped = name.strip()
    if stripped[-1:] in (")", "]") and (opened := _opening(stripped)) > 0:
        found.append((stripped[:opened].rstrip(), stripped[opened + 1 : -1].strip()))
    if stripped[:1] in _BRACKETS and (closing := stripped.find(_BRACKETS[stripped[0]])) > 0:
        found.append((stripped[closing + 1 :].lstrip(), stripped[1:closing].strip()))
    for bracket in _IN_BRACKETS.finditer(stripped):
        if bracket.start() > 0 and bracket.end() < len(stripped):
            rest = f"{stripped[: bracket.start()]}{stripped[bracket.end() :]}".strip()
            found.append((rest, bracket.group(1).strip()))
    after = list(_AFTER.finditer(stripped))
    if after:
        found.append((stripped[: after[-1].start()], stripped[after[-1].end() :]))
    before = _BEFORE.search(stripped)
    if before:
        found.append((stripped[before.end() :], stripped[: before.start()]))
    return found


# What says that the name after it is the place's old name ("formerly", "ent.", "f.d.",
# "ehem.", ...), or another it goes by ("aka"), in the languages of the statuses above;
# not what says what the place was ("former bank", "ehemaliges Kino").
_ASIDE: Final = re.compile(
    r"(?P<old>formerly known as|formerly|previously|ex-|ex\.|entinen|ent\.|aiemmin|"
    r"f\.\s?d\.|tidigare|ehem\.|ehemals|vormals|früher|anciennement|"
    r"anteriormente|antes|già|voorheen|v/h|dawniej|tidligere|f\.?k\.?a\.?)"
    r"|(?P<also>also known as|a\.?k\.?a\.?|alias)",
    re.IGNORECASE,
)
_ASIDE_WORD: Final = re.compile(_ASIDE.pattern)  # in lower case: four times as quick
FORMER: Final = (
    "a name with another beside it, read as the name, the other kept as its old or other name"
)
"""What ingest says of the records whose name :func:`name_aside` read another name in
("Cafe Aalto (formerly Bar Rio)", "Cafe Aalto (aka Aalto)")."""


def name_aside(name: str) -> tuple[str, str, str] | None:
    """The name, and another written beside it: the name the place had before ("Cafe
    Aalto (formerly Bar Rio)", "Cafe Aalto - ent. Bar Rio", "Cafe Aalto (f.d. Bar Rio)":
    variant ``old``, as OpenStreetMap's ``old_name``), or one it also goes by ("Cafe
    Aalto (aka Aalto)": ``alternate``); None where it writes none.

    The other name stands apart, in brackets (at the end, or before more of a listing's
    title: "Cafe Aalto (formerly Bar Rio) - Helsinki") or after the last separator (" - ",
    ", "), and opens with the word that says so.

    >>> name_aside("Cafe Aalto (formerly Bar Rio)")
    ('Cafe Aalto', 'Bar Rio', 'old')
    >>> name_aside("Cafe Aalto - Ent. Bar Rio")
    ('Cafe Aalto', 'Bar Rio', 'old')
    >>> name_aside("Cafe Aalto (Espoo)") is None
    True
    """
    if not _apart(name) or not _ASIDE_WORD.search(name.lower()):  # most names
        return None
    for rest, aside in _beside(name):
        said = _ASIDE.match(aside)
        if said is None:
            continue
        other = aside[said.end() :].strip(" :")
        # "ex-" and "ex." hold the name close; the other words stand apart from it.
        spaced = said.group().endswith(("-", ".")) or aside[said.end() : said.end() + 1] == " "
        if spaced and fold(other) and fold(rest):
            return rest, other, "old" if said.group("old") else "alternate"
    return None


# A phone number or web address at the end of a name, after a separator, a bracket or a
# space, a phone perhaps after the word for one ("puh.", "tel:", "☎").
_CONTACT: Final = re.compile(
    r"(?P<apart>\s*[,|–—(]\s*|\s+-\s+|\s+)"
    r"(?:(?P<word>(?:tel|puh|ph|phone|p|tfn|telefon|tél|téléphone|puhelin|tlf|fon)"
    r"(?:\.:?|:|\s)|☎)\s*)?"
    r"(?:(?P<phone>\+?\(?\d[\d\s\-./()]{5,}\d)"
    r"|(?P<web>(?:https?://)?(?:www\.)?[^\s,()|]+\.[a-z]{2,}(?:/[^\s()]*)?))"
    r"\)?\s*$",
    re.IGNORECASE,
)
CONTACTS: Final = (
    "a phone number or web address in a name, read as the record's where it gives none"
)
"""What ingest says of the records whose name :func:`contact_in_name` read a contact in
("Cafe Aalto, puh. 09 123 4567", "Cafe Aalto - www.cafeaalto.fi")."""


def contact_in_name(name: str) -> tuple[str, str, str] | None:
    """The name, and a phone number or web address written after it, as a scraped
    directory writes a listing ("Cafe Aalto, puh. 09 123 4567", "Cafe Aalto (+358 9
    1234567)", "Cafe Aalto - www.cafeaalto.fi"): ``(name, "phone" or "website", value)``;
    None where it writes none.

    A phone has 7 to 15 digits and stands apart (a separator, a bracket, the word for a
    phone, or a leading "+" or "0"): "Route 66", "Kiosk 24/7" and "Pizzeria 2000" are
    names. A web address stands apart or opens with "www." or a scheme: "Booking.com"
    is a name.

    >>> contact_in_name("Cafe Aalto, puh. 09 123 4567")
    ('Cafe Aalto', 'phone', '09 123 4567')
    >>> contact_in_name("Cafe Aalto - www.cafeaalto.fi")
    ('Cafe Aalto', 'website', 'www.cafeaalto.fi')
    >>> contact_in_name("Route 66") is None
    True
    """
    end = name.rstrip(" )")
    if not end[-1:].isdigit():  # a phone ends with a digit, a web address with a domain
        tail = end.rsplit(".", 1)[1:]
        if not tail or " " in tail[0] or not tail[0].split("/", 1)[0].isalpha():
            return None  # most names
    found = _CONTACT.search(name)
    if found is None:
        return None
    rest = name[: found.start()].strip()
    if not any(c.isalnum() for c in rest):
        return None
    apart = bool(found.group("apart").strip() or found.group("word"))
    if phone := found.group("phone"):
        digits = sum(c.isdigit() for c in phone)
        if 7 <= digits <= 15 and (apart or phone.startswith(("+", "0", "(+", "(0"))):
            return rest, "phone", phone.strip()
        return None
    web = found.group("web")
    if not found.group("word") and (apart or web.lower().startswith(("www.", "http"))):
        return rest, "website", web
    return None


# A chain's number for a store after its name, after "#" or the word for a store ("Store
# 10234", "Myymälä 452"), apart from the name or in brackets.
_STORE: Final = re.compile(
    r"(?:\s*[-–—,]\s*|\s+|\s*\()"
    r"(?:(?P<word>store|shop|branch|location|myymälä|myymala|butik|filiale|filial|tienda"
    r"|magasin)\s*(?P<hash>#)?\s*|#\s*)"
    r"(?P<number>\d{1,6})\)?\s*$",
    re.IGNORECASE,
)
_STORE_TAIL: Final = 40  # the longest such ending ("  (Myymälä #123456)") and more
STORE_NUMBERS: Final = "a chain's number for its store after a name, read as the name without it"
"""What ingest says of the records whose name :func:`store_number_in_name` read
("Starbucks #10234", "Alepa (Store 1234)")."""


def store_number_in_name(name: str) -> str | None:
    """The name without a chain's number for its store written after it, as a chain's own
    list of its stores writes them ("Starbucks #10234", "Walmart Supercenter Store 1234",
    "Alepa (Store 1234)", "Alko - Myymälä 452"); None where it writes none.

    The number follows "#" (two digits or more), or the word for a store (three or more):
    "Route 66", "Studio 54", "Bar #1", "Barber Shop 2" and "Store 24" (nothing before it)
    are names.

    >>> store_number_in_name("Starbucks #10234")
    'Starbucks'
    >>> store_number_in_name("Alepa (Store 1234)")
    'Alepa'
    >>> store_number_in_name("Studio 54") is None
    True
    """
    if not name[-1:].isdigit() and not name.endswith(")"):  # most names
        return None
    tail = len(name) - len(name[-_STORE_TAIL:])  # looked for in the last characters only
    found = _STORE.search(name, tail)
    if found is None:
        return None
    if len(found["number"]) < (3 if found["word"] and not found["hash"] else 2):
        return None  # "Barber Shop 2", "Bar #1": a name's own number
    rest = name[: found.start()].rstrip(" -–—,")
    return rest if any(c.isalnum() for c in rest) else None
