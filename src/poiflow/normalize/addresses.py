"""Addresses: parse a freeform line into parts, and fold streets into comparable keys.

US addresses go through ``usaddress`` (a CRF parser trained on US addresses), but for the
line that most of them are, a number and a street ending in a USPS street type ("1600
Amphitheatre Pkwy", "350 5th Ave Ste 200"), which is read by rule at a fifteenth of the
cost. Elsewhere a
rule parser reads the two layouts that cover most of the world's street addresses:
"Street 12 B 5, 00100 City" (number after the street, most of Europe) and
"12 Street Name, City Postcode" (number first, English- and French-speaking countries).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache, lru_cache
from pathlib import Path
from typing import Final

import usaddress

from poiflow.text import fold

__all__ = ["AddressParts", "parse_address", "postcode_key", "street_key"]

# Ordinals spelled out, as numbered streets write them ("Fifth Avenue", "5th Ave").
_ORDINALS: Final = {
    "first": "1st",
    "second": "2nd",
    "third": "3rd",
    "fourth": "4th",
    "fifth": "5th",
    "sixth": "6th",
    "seventh": "7th",
    "eighth": "8th",
    "ninth": "9th",
    "tenth": "10th",
    "eleventh": "11th",
    "twelfth": "12th",
    "thirteenth": "13th",
    "fourteenth": "14th",
    "fifteenth": "15th",
    "sixteenth": "16th",
    "seventeenth": "17th",
    "eighteenth": "18th",
    "nineteenth": "19th",
    "twentieth": "20th",
}
# Street-type abbreviations, by language group; applied to folded words.
_STREET_TYPES_EN: Final = {
    "st": "street",
    "str": "street",
    "ave": "avenue",
    "av": "avenue",
    "rd": "road",
    "blvd": "boulevard",
    "dr": "drive",
    "ln": "lane",
    "ct": "court",
    "pl": "place",
    "sq": "square",
    "hwy": "highway",
    "pkwy": "parkway",
    "ter": "terrace",
    "cres": "crescent",
    "cir": "circle",
    "trl": "trail",
    "pk": "park",
    "gdns": "gardens",
    "cl": "close",
    "n": "north",
    "s": "south",
    "e": "east",
    "w": "west",
    "ne": "northeast",
    "nw": "northwest",
    "se": "southeast",
    "sw": "southwest",
    "jr": "junior",
    "mt": "mount",
    "ft": "fort",
    **_ORDINALS,
}
_STREET_TYPES_DE: Final = {"str": "strasse", "pl": "platz", "g": "gasse"}
_STREET_TYPES_FR: Final = {
    "r": "rue",
    "av": "avenue",
    "ave": "avenue",
    "bd": "boulevard",
    "bld": "boulevard",
    "pl": "place",
    "che": "chemin",
    "imp": "impasse",
    "fg": "faubourg",
    "rte": "route",
}
_STREET_TYPES_ES_PT_IT: Final = {
    "c": "calle",
    "cl": "calle",
    "avda": "avenida",
    "av": "avenida",
    "pza": "plaza",
    "pl": "plaza",
    "ctra": "carretera",
    "r": "rua",
    "v": "via",
    "p": "piazza",
    "le": "viale",
}
_STREET_TYPES_NL: Final = {"str": "straat", "pln": "plein", "ln": "laan"}
_GROUPS: Final = {
    **dict.fromkeys(("DE", "AT", "CH", "LI"), _STREET_TYPES_DE),
    **dict.fromkeys(("FR", "BE", "LU", "MC"), _STREET_TYPES_FR),
    **dict.fromkeys(("ES", "PT", "IT", "MX", "AR", "CO", "CL", "PE", "BR"), _STREET_TYPES_ES_PT_IT),
    **dict.fromkeys(("NL",), _STREET_TYPES_NL),
}
# Nordic streets are compounds; the abbreviation is a suffix ("Aleksanterink." -> "-katu").
_NORDIC_SUFFIXES: Final = (
    ("kj", "kuja"),
    ("gt", "gate"),
    ("vn", "veien"),
    ("k", "katu"),
    ("t", "tie"),
    ("g", "gatan"),
    ("v", "vagen"),
)
_NORDIC: Final = frozenset({"FI", "SE", "NO", "DK", "IS", "AX"})
_GERMAN_TYPES: Final = frozenset({"strasse", "gasse", "platz", "weg", "allee", "damm"})

# "12", "12a", "12-14", "12 B", "12 B 5", "12 as 3" (Finnish "asunto", flat)
_NUMBER: Final = r"\d+[a-z]?(?:\s*[-–/]\s*\d+[a-z]?)?"
_UNIT: Final = r"(?:(?:as\.?|asunto|lgh|apt\.?|apartment|flat|unit|suite|ste\.?|#)\s*)?[a-z]?\s*\d*"
_NUMBER_LAST = re.compile(
    rf"^(?P<street>.*?\D)\s+(?P<number>{_NUMBER})(?:\s+(?P<unit>[a-z](?:\s*\d+)?|(?:as\.?|asunto|lgh|apt\.?)\s*\d+))?$",
    re.IGNORECASE,
)
_NUMBER_FIRST = re.compile(rf"^(?P<number>{_NUMBER}),?\s+(?P<street>\D.*)$", re.IGNORECASE)
_UNIT_PREFIX = re.compile(
    r"^(?P<unit>(?:apt\.?|apartment|flat|unit|suite|ste\.?|#)\s*\w+)\s*,?\s*(?P<rest>.*)$",
    re.IGNORECASE,
)
_POSTCODES: Final = {
    "FI": r"\d{5}",
    "DE": r"\d{5}",
    "FR": r"\d{5}",
    "ES": r"\d{5}",
    "IT": r"\d{5}",
    "EE": r"\d{5}",
    "US": r"\d{5}(?:-\d{4})?",
    "SE": r"\d{3}\s?\d{2}",
    "NO": r"\d{4}",
    "DK": r"\d{4}",
    "AT": r"\d{4}",
    "CH": r"\d{4}",
    "BE": r"\d{4}",
    "NL": r"\d{4}\s?[A-Z]{2}",
    "GB": r"[A-Z]{1,2}\d[A-Z\d]?\s*\d[A-Z]{2}",
    "CA": r"[A-Z]\d[A-Z]\s?\d[A-Z]\d",
    "PL": r"\d{2}-\d{3}",
    "PT": r"\d{4}-\d{3}",
    "JP": r"\d{3}-\d{4}",
    "BR": r"\d{5}-?\d{3}",
}
_GENERIC_POSTCODE: Final = r"\d{4,6}|\d{2,3}-\d{3,4}|[A-Z]{1,2}\d[A-Z\d]?\s*\d[A-Z]{2}"
_US_STATES: Final = re.compile(
    r",\s*(?:AL|AK|AZ|AR|CA|CO|CT|DE|DC|FL|GA|HI|ID|IL|IN|IA|KS|KY|LA|ME|MD|MA|MI|MN|MS|MO|MT|"
    r"NE|NV|NH|NJ|NM|NY|NC|ND|OH|OK|OR|PA|RI|SC|SD|TN|TX|UT|VT|VA|WA|WV|WI|WY)\s+\d{5}(?:-\d{4})?\s*$"
)
# The country at the end of an American address line ("..., CA 94043, USA").
_US_COUNTRY: Final = re.compile(
    r"\s*,\s*(?:USA|U\.S\.A\.?|US|U\.S\.|United States(?: of America)?)\s*$", re.IGNORECASE
)

# A direction before or after an American street's name ("N Main St", "Sharp Hwy E").
_COMPASS: Final = ("north", "south", "east", "west", "northeast", "northwest", "southeast")
_US_DIRECTIONS: Final = frozenset((*_COMPASS, "southwest", *"nsew", "ne", "nw", "se", "sw"))
_US_UNITS: Final = frozenset(("apt", "apartment", "suite", "ste", "unit", "#"))
# A word of a street: letters, or a numbered street's ordinal ("5th"), maybe with a dot.
_US_STREET_WORD: Final = re.compile(r"(?:[a-z]{2,}|[nsew]|\d+(?:st|nd|rd|th))\.?", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class AddressParts:
    """The parts of one address; every part is optional."""

    street: str | None = None
    housenumber: str | None = None
    unit: str | None = None
    postcode: str | None = None
    locality: str | None = None
    region: str | None = None
    extra: tuple[str, ...] = field(default=())

    def as_dict(self) -> dict[str, str | None]:
        """The parts by name, without ``extra``."""
        return {
            "street": self.street,
            "housenumber": self.housenumber,
            "unit": self.unit,
            "postcode": self.postcode,
            "locality": self.locality,
            "region": self.region,
        }


def parse_address(freeform: str | None, country: str | None = None) -> AddressParts:
    """Parse a one-line address into parts. Never raises; unknown layouts give fewer parts.

    Args:
        freeform: The address as one line ("Mannerheimintie 12 B 5, 00100 Helsinki").
        country: ISO country code of the place, if known; it picks the layout and postcode.

    >>> parse_address("Mannerheimintie 12 B 5, 00100 Helsinki", "FI").as_dict()["unit"]
    'B 5'
    """
    if not freeform or not freeform.strip():
        return AddressParts()
    text = " ".join(freeform.split())
    if country in (None, "US"):
        # An American line may end with its country; without it, it is the usual layout.
        bare = _US_COUNTRY.sub("", text)
        if country == "US" or _US_STATES.search(bare):
            parsed = _parse_us(bare)
            if parsed is not None:
                return parsed
    return _parse_generic(text, country)


def _parse_us(text: str) -> AddressParts | None:
    line = _us_street_line(text)
    return line if line is not None else _tagged_us(text)


def _tagged_us(text: str) -> AddressParts | None:
    """An American address as ``usaddress`` tags it; None where it cannot."""
    try:
        tagged, kind = usaddress.tag(text)
    except (usaddress.RepeatedLabelError, ValueError, TypeError, IndexError):
        return None
    if kind not in ("Street Address", "Ambiguous") or not tagged:
        return None
    street = " ".join(
        tagged[label]
        for label in (
            "StreetNamePreDirectional",
            "StreetNamePreModifier",
            "StreetNamePreType",
            "StreetName",
            "StreetNamePostType",
            "StreetNamePostDirectional",
        )
        if label in tagged
    )
    units = [k for k in ("OccupancyType", "OccupancyIdentifier") if k in tagged]
    if len(units) == 2:  # in the line's order: "Ste 5", but "0A) AA" of a line so written
        order = [label for _, label in usaddress.parse(text)]
        units.sort(key=order.index)
    unit = " ".join(tagged[k] for k in units)
    return AddressParts(
        street=street or None,
        housenumber=tagged.get("AddressNumber"),
        unit=unit or None,
        postcode=tagged.get("ZipCode"),
        locality=tagged.get("PlaceName"),
        region=tagged.get("StateName"),
    )


def _us_street_line(text: str) -> AddressParts | None:
    """A line of a house number, a street that ends in a USPS street type (and maybe a
    direction), and maybe an apartment or suite ("2211 N 1st St Ste 5"), read by rule;
    None for anything else, for ``usaddress``.

    On lines of this shape the two agree but where the parser errs
    (``benchmarks/us_addresses.py``): it reads "NE" alone as the street of "99668 NE
    Williams Carpenter Field", an "E" after the type as a unit, and nothing at all of
    "82290 Murphy Allen Shore".
    """
    words = text.split(" ")
    number = words[0]
    if len(words) < 3 or not (number.isascii() and number.isdigit()) or not number.strip("0"):
        return None
    unit = None
    if len(words) >= 5 and words[-2].lower().rstrip(".") in _US_UNITS and words[-1].isalnum():
        unit = f"{words[-2]} {words[-1]}"
        words = words[:-2]
    street = words[1:]
    last = street[-1].lower().rstrip(".")
    if last in _US_DIRECTIONS and len(street) >= 3:
        last = street[-2].lower().rstrip(".")
    if last not in _us_street_types() or not all(_US_STREET_WORD.fullmatch(w) for w in street):
        return None
    return AddressParts(street=" ".join(street), housenumber=number, unit=unit)


@cache
def _us_street_types() -> frozenset[str]:
    """USPS's street suffixes, every spelling it lists (``data/us_street_types.txt``)."""
    text = (Path(__file__).resolve().parent.parent / "data" / "us_street_types.txt").read_text()
    return frozenset(
        word for line in text.splitlines() if not line.startswith("#") for word in line.split()
    )


def _parse_generic(text: str, country: str | None) -> AddressParts:
    postcode_re = re.compile(
        rf"^(?:(?P<pc1>{_POSTCODES.get(country or '', _GENERIC_POSTCODE)})\s+(?P<city1>\D.*)"
        rf"|(?P<city2>\D.*?)\s+(?P<pc2>{_POSTCODES.get(country or '', _GENERIC_POSTCODE)}))$",
        re.IGNORECASE,
    )
    parts = [part.strip() for part in text.split(",") if part.strip()]
    street = housenumber = unit = postcode = locality = None
    extra: list[str] = []
    rest: list[str] = []
    for part in parts:
        match = postcode_re.match(part) if postcode is None else None
        if match:
            postcode = (match.group("pc1") or match.group("pc2")).upper()
            locality = match.group("city1") or match.group("city2")
            continue
        rest.append(part)
    if rest:
        first = rest.pop(0)
        prefix = _UNIT_PREFIX.match(first)
        if prefix and prefix.group("rest"):
            unit, first = prefix.group("unit"), prefix.group("rest")
        number_last = _NUMBER_LAST.match(first)
        number_first = _NUMBER_FIRST.match(first)
        if number_first and (country not in _NUMBER_LAST_COUNTRIES or not number_last):
            housenumber, street = number_first.group("number"), number_first.group("street")
        elif number_last:
            street, housenumber = number_last.group("street"), number_last.group("number")
            unit = number_last.group("unit") or unit
        elif any(ch.isalpha() for ch in first):
            street = first
        else:
            extra.append(first)
    for part in rest:
        if locality is None and postcode is None and not any(ch.isdigit() for ch in part):
            locality = part
        elif (
            unit is None
            and re.fullmatch(_UNIT, part, re.IGNORECASE)
            and any(ch.isdigit() for ch in part)
        ):
            unit = part
        else:
            extra.append(part)
    if locality is not None and locality.isdigit():
        extra.append(locality)
        locality = None
    return AddressParts(
        street=_tidy(street),
        housenumber=_tidy(housenumber),
        unit=_tidy(unit),
        postcode=postcode,
        locality=_tidy(locality),
        extra=tuple(extra),
    )


# Where a number after the street is the rule; a leading number there is rare.
_NUMBER_LAST_COUNTRIES: Final = frozenset(
    {
        "FI",
        "SE",
        "NO",
        "DK",
        "DE",
        "AT",
        "CH",
        "NL",
        "BE",
        "IT",
        "ES",
        "PT",
        "PL",
        "CZ",
        "SK",
        "HU",
        "EE",
        "LV",
        "LT",
        "SI",
        "HR",
        "RS",
        "RU",
        "UA",
        "GR",
        "TR",
        "BR",
        "AR",
        "MX",
        "CL",
        "CO",
        "IS",
        "AX",
    }
)


def _tidy(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip(" ,;")
    return value or None


@lru_cache(maxsize=1 << 18)
def street_key(street: str, country: str | None = None) -> str:
    """The folded key of a street, with street types spelled out.

    Idempotent. ``"Aleksanterink."`` in Finland and ``"Aleksanterinkatu"`` agree, so do
    ``"Main St"`` and ``"Main Street"``, and ``"Hauptstr."`` and ``"Haupt Straße"``.

    >>> street_key("Aleksanterink.", "FI")
    'aleksanterinkatu'
    >>> street_key("W Main St.", "US")
    'west main street'
    """
    words = fold(street).split()
    if not words:
        return ""
    table: dict[str, str] = {}
    if country in _NORDIC:
        # Only a written abbreviation ("Aleksanterink.") is expanded; whole words stay.
        last = words[-1]
        if street.rstrip().endswith("."):
            for abbreviation, full in _NORDIC_SUFFIXES:
                if len(last) > len(abbreviation) + 2 and last.endswith(abbreviation):
                    words[-1] = last[: -len(abbreviation)] + full
                    break
    else:
        table = _GROUPS.get(country or "", _STREET_TYPES_EN)
    expanded = [table.get(word, word) for word in words]
    if country in ("DE", "AT", "CH", "LI"):
        if expanded[-1].endswith("str"):
            expanded[-1] += "asse"
        if len(expanded) > 1 and expanded[-1] in _GERMAN_TYPES:
            expanded[-2:] = [expanded[-2] + expanded[-1]]
    return " ".join(expanded)


# Countries whose postcodes are all digits, this many: a spreadsheet that read them as
# numbers dropped their leading zeros ("00170" -> "170", "170.0"), which the key puts back.
_DIGITS: Final = {
    **dict.fromkeys(
        ("FI", "SE", "DE", "FR", "IT", "ES", "US", "EE", "GR", "HR", "MX", "TR", "MY", "KR"), 5
    ),
    **dict.fromkeys(("UA", "CZ", "SK", "LT", "DZ", "MA", "EG", "SA", "ID", "TH", "PK"), 5),
    **dict.fromkeys(("NO", "DK", "AT", "CH", "BE", "LU", "HU", "SI", "BG", "AU", "NZ"), 4),
    **dict.fromkeys(("ZA", "LV", "CY", "PH", "GE", "AM", "TN", "AX"), 4),
    **dict.fromkeys(("IN", "RU", "CN", "SG", "RO", "VN", "BY", "KZ", "NG", "CO"), 6),
}
# A country's letters before the digits: "FI-00100", "D-10115", "CH-8001", "LV-1050".
_PREFIXED: Final = re.compile(r"^[A-Z]{1,3}-(?=[0-9])")
_AS_FLOAT: Final = re.compile(r"^([0-9]+)\.0+$")  # "170.0": a number written by a table
_ZIP_PLUS_4: Final = re.compile(r"^([0-9]{5})-?[0-9]{4}$")


@lru_cache(maxsize=1 << 16)
def postcode_key(postcode: str, country: str | None = None) -> str:
    """A postcode as a key: without spaces, upper-cased ("sw1a 1aa" -> "SW1A1AA"), without
    the country's letters before it ("FI-00100" -> "00100"). In a country whose postcodes
    are all digits, the zeros a spreadsheet dropped are put back ("170", "170.0" ->
    "00170" in Finland), and an American ZIP+4 is its ZIP ("02134-1234" -> "02134").

    >>> postcode_key("D-1067", "DE")
    '01067'
    """
    key = _PREFIXED.sub("", "".join(postcode.split()).upper())
    key = _AS_FLOAT.sub(r"\1", key)
    if country == "US" and (zip_plus_4 := _ZIP_PLUS_4.match(key)):
        return zip_plus_4.group(1)
    digits = _DIGITS.get(country or "")
    if digits and key.isascii() and key.isdigit() and len(key) < digits:
        return key.zfill(digits)
    return key
