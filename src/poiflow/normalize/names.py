"""Place and brand names: the folded keys that matching compares.

The key of a name is its folded text (see :func:`poiflow.text.fold`) with the
legal form of a company dropped ("Oy", "GmbH", "S.p.A.", "Sp. z o.o."), common
abbreviations spelled out ("Intl" -> "international"), connectors ("&", "and") and a
leading article dropped. A brand's key is its name key without spaces, so "Mc Donald's",
"McDonalds" and "MCDONALD'S" agree.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Final

from poiflow.text import LEGAL_FORMS, fold

__all__ = [
    "FORMER",
    "LEGAL_FORMS",
    "NAMES",
    "SEPARATED",
    "SEPARATORS",
    "STATUSES",
    "TITLES",
    "brand_key",
    "name_aside",
    "name_key",
    "name_parts",
    "status_in_name",
    "without_own_parts",
]

_MAX_FORM = max(len(form) for form in LEGAL_FORMS)
# Forms that also open a name ("Oy Hartwall Ab", "Tmi Virtanen").
_LEADING_FORMS: Final = frozenset({("oy",), ("tmi",), ("ab",), ("as",), ("ooo",)})

ABBREVIATIONS: Final[dict[str, str]] = {
    "intl": "international",
    "int": "international",
    "ctr": "center",
    "cntr": "center",
    "centre": "center",
    "dept": "department",
    "univ": "university",
    "uni": "university",
    "hosp": "hospital",
    "mkt": "market",
    "mkts": "markets",
    "bros": "brothers",
    "mt": "mount",
    "ft": "fort",
    "st": "saint",
    "ste": "sainte",
    "sta": "santa",
    "natl": "national",
    "assn": "association",
    "assoc": "association",
    "svc": "service",
    "svcs": "services",
    "mfg": "manufacturing",
    "dr": "doctor",
    "no": "number",
    "n": "number",  # only ever reached as a lone "N°"-style token after the check below
}
# "N" alone is far more often an initial than "number"; only expand it before a digit.
_EXPAND_BEFORE_DIGIT_ONLY: Final = frozenset({"no", "n"})

_DROPPED: Final = frozenset({"and"})
_ARTICLES: Final = frozenset({"the"})


# What a listing's title puts between a place's name and what it says of the place ("Cafe
# Aalto - Helsinki", "Cafe Aalto, Mannerheimintie 5", "Cafe Aalto (Cafe)").
SEPARATORS: Final = (", ", " - ", " – ", " — ", " | ", " @ ", " / ", " (")
SEPARATED: Final = re.compile("|".join(re.escape(s) for s in SEPARATORS))
"""Any of :data:`SEPARATORS`: where a name may be a title."""
TITLES: Final = (
    'a listing\'s title for a name ("Cafe Aalto - Helsinki", "Cafe Aalto (Cafe)"), '
    "read as the name before it"
)
"""What ingest says of the records whose name :func:`without_own_parts` shortened."""


def without_own_parts(name: str, *own: str | None) -> str:
    """``name`` up to a separator (:data:`SEPARATORS`; the last such first) whose part
    after it, to the end, is one of ``own`` (what the record says of the place elsewhere:
    its town, street, street and number, category), folded alike: a listing's title
    repeats it; the place's name is the rest. A name with no separator keeps all its
    words ("Hotel Helsinki" in Helsinki), and so does a name that is only such a part.

    >>> without_own_parts("Cafe Aalto - HELSINKI", "Helsinki")
    'Cafe Aalto'
    >>> without_own_parts("Cafe Aalto, Mannerheimintie 5", "Helsinki", "Mannerheimintie 5")
    'Cafe Aalto'
    >>> without_own_parts("Aalto (Coffee shop)", "Helsinki", "coffee_shop")
    'Aalto'
    >>> street = "Galleria Esplanad, Aleksanterinkatu 2"
    >>> without_own_parts(f"Forex, {street}", street)
    'Forex'
    >>> without_own_parts("Hotel Helsinki", "Helsinki")
    'Hotel Helsinki'
    """
    wanted = {fold(o) for o in own if o} - {""}
    # Every separator, the last first: an address may hold one itself ("Galleria
    # Esplanad, Aleksanterinkatu 2").
    cuts = sorted(((m.start(), m.group()) for m in SEPARATED.finditer(name)), reverse=True)
    for at, separator in cuts:
        tail = name[at + len(separator) :]
        if separator == " (":
            if not tail.endswith(")"):
                continue
            tail = tail[:-1]
        if at > 0 and fold(tail) in wanted:
            return name[:at].rstrip()
    return name


NAMES: Final = (
    'a name in two languages or more ("Merenneito / Sjöjungfru"), read as the first, '
    "the others kept as its other names"
)
"""What ingest says of the records whose name :func:`name_parts` split."""


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


STATUSES: Final = (
    'a place\'s status in its name ("Cafe Aalto (closed)", "[SULJETTU] Cafe Aalto"), '
    "read as its status"
)
"""What ingest says of the records whose name :func:`status_in_name` read a status in."""


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
    'a name with another beside it ("Cafe Aalto (formerly Bar Rio)", "Cafe Aalto (aka '
    'Aalto)"), read as the name, the other kept as its old or other name'
)
"""What ingest says of the records whose name :func:`name_aside` read another name in."""


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
    'a phone number or web address in a name ("Cafe Aalto, puh. 09 123 4567", "Cafe '
    "Aalto - www.cafeaalto.fi\"), read as the record's where it gives none"
)
"""What ingest says of the records whose name :func:`contact_in_name` read a contact in."""


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


@lru_cache(maxsize=1 << 18)
def name_key(name: str) -> str:
    """The folded key of a place name, for comparing names across sources.

    Idempotent: ``name_key(name_key(x)) == name_key(x)``. Never empties a name that has
    letters or digits: a name made only of a legal form ("AB") keeps it.

    >>> name_key("Hartwall Oy")
    'hartwall'
    >>> name_key("The Marks & Spencer Intl Ltd.")
    'marks spencer international'
    """
    words = fold(name).split()
    if not words:
        return ""
    words = _strip_legal_forms(words)
    expanded: list[str] = []
    for index, word in enumerate(words):
        if word in _DROPPED and 0 < index < len(words) - 1:
            continue
        full = ABBREVIATIONS.get(word)
        if full is not None and word in _EXPAND_BEFORE_DIGIT_ONLY:
            following = words[index + 1] if index + 1 < len(words) else ""
            full = full if following[:1].isdigit() else None
        expanded.append(full if full is not None else word)
    # No expansion is itself a legal form or an article, so one pass settles the key.
    return " ".join(expanded)


def _strip_legal_forms(words: list[str]) -> list[str]:
    """Drop legal forms at the end, and legal forms and articles at the start, keeping a word."""
    changed = True
    while changed and len(words) > 1:
        changed = False
        for size in range(min(_MAX_FORM, len(words) - 1), 0, -1):
            if tuple(words[-size:]) in LEGAL_FORMS:
                words = words[:-size]
                changed = True
                break
        if len(words) > 1 and ((words[0],) in _LEADING_FORMS or words[0] in _ARTICLES):
            words = words[1:]
            changed = True
    return words


@lru_cache(maxsize=1 << 16)
def brand_key(brand: str) -> str:
    """The key of a brand: its name key without spaces.

    >>> brand_key("Mc Donald's")
    'mcdonalds'
    >>> brand_key("K-Market")
    'kmarket'
    """
    key = name_key(brand).replace(" ", "")
    # A key that is itself an abbreviation ("S:T" -> "st") spells out when keyed again
    # ("saint"): keyed once more, the key of a key is the key.
    return name_key(key).replace(" ", "")
