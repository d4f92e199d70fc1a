"""Countries: ISO 3166-1 alpha-2 codes from names or codes, and from coordinates."""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any, Final

import pycountry

from poiflow.text import fold

__all__ = ["country_code", "places_at"]

# Names in the countries' own languages that pycountry (English names) does not know.
_LOCAL_NAMES: Final = {
    "suomi": "FI",
    "finland": "FI",
    "sverige": "SE",
    "norge": "NO",
    "noreg": "NO",
    "danmark": "DK",
    "island": "IS",
    "eesti": "EE",
    "deutschland": "DE",
    "osterreich": "AT",
    "schweiz": "CH",
    "suisse": "CH",
    "svizzera": "CH",
    "espana": "ES",
    "italia": "IT",
    "nederland": "NL",
    "belgie": "BE",
    "belgique": "BE",
    "polska": "PL",
    "cesko": "CZ",
    "magyarorszag": "HU",
    "rossiia": "RU",
    "rossiya": "RU",
    "uk": "GB",
    "great britain": "GB",
    "england": "GB",
    "scotland": "GB",
    "wales": "GB",
    "usa": "US",
    "u s a": "US",
    "united states of america": "US",
    "u s": "US",
    "nippon": "JP",
    "zhongguo": "CN",
    "brasil": "BR",
    "mexico": "MX",
    "turkiye": "TR",
    "ellada": "GR",
    "latvija": "LV",
    "lietuva": "LT",
    "ahvenanmaa": "AX",
    "aland": "AX",
}


@lru_cache(maxsize=4096)
def country_code(value: str) -> str | None:
    """The ISO 3166-1 alpha-2 code of a country written as a code or a name, or ``None``.

    >>> country_code("fin"), country_code("Suomi"), country_code("United Kingdom")
    ('FI', 'FI', 'GB')
    """
    text = value.strip()
    if not text:
        return None
    folded = fold(text)
    if folded in _LOCAL_NAMES:
        return _LOCAL_NAMES[folded]
    if len(text) in (2, 3) and text.isascii() and text.isalpha():
        found = pycountry.countries.get(alpha_2=text.upper()) if len(text) == 2 else None
        found = found or (pycountry.countries.get(alpha_3=text.upper()) if len(text) == 3 else None)
        return str(found.alpha_2) if found else None
    for country in pycountry.countries:
        names = (
            country.name,
            getattr(country, "official_name", None),
            getattr(country, "common_name", None),
        )
        if any(name and fold(name) == folded for name in names):
            return str(country.alpha_2)
    return None


def places_at(lats: Sequence[float], lons: Sequence[float]) -> list[tuple[str, str]]:
    """For each point, the (country code, nearest town) of the nearest GeoNames town.

    Uses the offline GeoNames table of towns with 1,000 or more people; near a border the
    nearest town can be across it, which is why a record's own country always wins.
    """
    if len(lats) == 0:
        return []
    import reverse_geocode

    found: list[dict[str, Any]] = reverse_geocode.search(list(zip(lats, lons, strict=True)))
    return [(str(place["country_code"]), str(place["city"])) for place in found]
