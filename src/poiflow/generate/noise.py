"""Sources that describe the generated world, each with its own coverage and noise."""

from __future__ import annotations

import math
import string
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any, Final

import numpy as np

from poiflow.errors import did_you_mean
from poiflow.generate.habits import HABITS
from poiflow.generate.world import Place

__all__ = ["NOISES", "SourceProfile", "check_noise", "describe", "parse_noise", "profiles"]

# Words vendors shorten, and how.
_ABBREVIATIONS: Final = {
    "Restaurant": "Rest.",
    "Ravintola": "Rav.",
    "Street": "St.",
    "Saint": "St.",
    "International": "Intl",
    "Center": "Ctr",
    "Centre": "Ctr",
    "Hotel": "Htl",
    "Company": "Co.",
    "Katu": "K.",
    "Museum": "Mus.",
}
# What sources file places under when they disagree with the others.
_OTHER_CATEGORIES: Final = (
    "restaurant",
    "cafe",
    "bar",
    "shopping",
    "Shop",
    "Food",
    "Services",
    "professional_service",
    "Local business",
    "Store",
    "fast_food_restaurant",
    "other",
)
_BRANCH_WORDS: Final = ("Centre", "Station", "Mall", "Airport", "Downtown", "Kamppi", "Keskusta")


@dataclass(frozen=True, slots=True)
class SourceProfile:
    """How one source sees the world (rates are per record)."""

    name: str
    coverage: float  # share of places the source has
    jitter_m: float  # typical coordinate error
    geocode_error: float  # records placed at a wrong spot up to a kilometre away
    no_coordinates: float  # records without coordinates (address-only feeds)
    case_change: float
    strip_accents: float
    translate: float  # use a translation of the name when one exists
    typo: float
    abbreviate: float
    legal_form: float
    branch_suffix: float
    phone_national: float  # write the phone nationally, not in E.164
    missing_phone: float
    missing_website: float
    missing_address: float
    missing_category: float
    duplicates: float  # a second record of the same place within the source
    stale_phone: float  # an old or wrong number
    wrong_housenumber: float
    other_category: float  # filed under a related or a wrong category
    brand: float  # writes the brand of a chain store
    # Habits of real vendors' files (``poiflow.generate.habits``); none unless asked for.
    rounded_points: float = 0.0
    town_centre: float = 0.0
    null_island: float = 0.0
    mojibake: float = 0.0
    web_escaped: float = 0.0
    html_tags: float = 0.0
    listing_title: float = 0.0
    bilingual_name: float = 0.0
    closed_in_name: float = 0.0
    former_name: float = 0.0
    contact_in_name: float = 0.0
    numeric_postcode: float = 0.0
    house_number_forms: float = 0.0
    phone_note: float = 0.0
    store_number: float = 0.0
    degrees_minutes: float = 0.0


NOISES: Final = tuple(f for f in SourceProfile.__dataclass_fields__ if f != "name")
"""The rates of a source profile, by name (what ``poiflow generate --vendor-noise`` sets)."""


def check_noise(noise: Mapping[str, float]) -> None:
    """Refuse a noise that is not a rate of ``SourceProfile``, a value below 0 or not
    finite, or a share of records (all but ``jitter_m``, in metres) above 1.

    Raises:
        ValueError: Naming the noise, the closest known one and every known one.
    """
    for name, value in noise.items():
        if name not in NOISES:
            msg = (
                f"unknown source noise '{name}'.{did_you_mean(name, NOISES)} "
                f"The noises are: {', '.join(NOISES)}"
            )
            raise ValueError(msg)
        if not 0 <= value < math.inf:  # also NaN
            msg = f"source noise {name}={value}: give a number >= 0"
            raise ValueError(msg)
        if name != "jitter_m" and value > 1:
            msg = f"source noise {name}={value}: a share of the records, from 0 to 1"
            raise ValueError(msg)


def parse_noise(items: Iterable[str]) -> dict[str, float]:
    """``NAME=VALUE`` items (``--vendor-noise``) as a checked noise (see ``check_noise``).

    Raises:
        ValueError: An item that is not NAME=VALUE with a number, or a bad noise.
    """
    noise: dict[str, float] = {}
    for item in items:
        name, _, value = item.partition("=")
        try:
            noise[name] = float(value)
        except ValueError:
            msg = f"'{item}': give NAME=VALUE with a number, e.g. jitter_m=250"
            raise ValueError(msg) from None
    check_noise(noise)
    return noise


def profiles(count: int, rng: np.random.Generator) -> list[SourceProfile]:
    """``count`` source profiles: the first is OSM-like (clean points), the rest vendor-like."""
    out = []
    for index in range(count):
        vendor = index > 0

        def r(lo: float, hi: float) -> float:
            return round(float(rng.uniform(lo, hi)), 3)

        out.append(
            SourceProfile(
                name=f"source_{chr(ord('a') + index)}" if index < 26 else f"source_{index}",
                coverage=r(0.55, 0.9),
                jitter_m=r(3, 15) if not vendor else r(10, 60),
                geocode_error=0.0 if not vendor else r(0.0, 0.05),
                no_coordinates=0.0 if not vendor else r(0.0, 0.25),
                case_change=r(0.0, 0.05) if not vendor else r(0.05, 0.3),
                strip_accents=r(0.0, 0.3),
                translate=0.0 if not vendor else r(0.0, 0.08),
                typo=r(0.0, 0.03) if not vendor else r(0.03, 0.12),
                abbreviate=r(0.0, 0.15),
                legal_form=0.0 if not vendor else r(0.05, 0.3),
                branch_suffix=r(0.0, 0.2),
                phone_national=r(0.0, 0.3) if not vendor else r(0.3, 0.9),
                missing_phone=r(0.3, 0.7),
                missing_website=r(0.2, 0.6),
                missing_address=r(0.05, 0.4),
                missing_category=r(0.0, 0.1),
                duplicates=r(0.0, 0.01) if not vendor else r(0.0, 0.03),
                stale_phone=r(0.0, 0.02) if not vendor else r(0.01, 0.06),
                wrong_housenumber=r(0.0, 0.02) if not vendor else r(0.01, 0.05),
                other_category=r(0.0, 0.05) if not vendor else r(0.05, 0.2),
                brand=r(0.3, 0.9),
            )
        )
    return out


def describe(place: Place, profile: SourceProfile, rng: np.random.Generator) -> dict[str, Any]:
    """One record of ``place`` as ``profile``'s source would write it (flat place format)."""
    p = profile
    name = place.name
    if place.alternates and rng.random() < p.translate:
        name = place.alternates[int(rng.integers(len(place.alternates)))][1]
    if place.chain and rng.random() < p.branch_suffix:
        name = f"{name} {_BRANCH_WORDS[int(rng.integers(len(_BRANCH_WORDS)))]}"
    if rng.random() < p.abbreviate:
        name = " ".join(_ABBREVIATIONS.get(word, word) for word in name.split())
    if rng.random() < p.legal_form:
        forms = place.country.legal_forms
        name = f"{name} {forms[int(rng.integers(len(forms)))]}"
    if rng.random() < p.typo:
        name = _typo(name, rng)
    if rng.random() < p.strip_accents:
        name = _strip_accents(name)
    if rng.random() < p.case_change:
        name = name.upper() if rng.random() < 0.7 else name.lower()
    lat: float | None = place.lat
    lon: float | None = place.lon
    if rng.random() < p.no_coordinates:
        lat = lon = None
    else:
        error = p.jitter_m if rng.random() >= p.geocode_error else float(rng.uniform(200, 1000))
        dy, dx = rng.normal(0.0, error, size=2)
        lat = round(place.lat + dy / 111_320, 6)
        lon = round(place.lon + dx / (111_320 * np.cos(np.radians(place.lat))), 6)
    phone = None
    if rng.random() >= p.missing_phone:
        phone = _national(place) if rng.random() < p.phone_national else _international(place, rng)
        if rng.random() < p.stale_phone:
            phone = phone[:-3] + "".join(str(d) for d in rng.integers(0, 10, size=3))
    website = None
    if place.website and rng.random() >= p.missing_website:
        website = _website_variant(place.website, rng)
    has_address = rng.random() >= p.missing_address
    street = place.street
    if has_address and rng.random() < p.abbreviate:
        street = street.replace("katu", "k.").replace("tie", "t.")
    housenumber = place.housenumber
    if rng.random() < p.wrong_housenumber:
        housenumber = str(max(1, int(housenumber) + int(rng.choice([-2, -1, 1, 2, 10]))))
    category: str | None = _category_label(place, rng)
    if rng.random() < p.other_category:
        category = _OTHER_CATEGORIES[int(rng.integers(len(_OTHER_CATEGORIES)))]
    if rng.random() < p.missing_category:
        category = None
    return {
        "name": name,
        "lat": lat,
        "lon": lon,
        "category": category,
        "street": street if has_address else None,
        "housenumber": housenumber if has_address else None,
        "postcode": place.postcode if has_address else None,
        "city": place.city if has_address or lat is None else None,
        "country": place.country.code,
        "phone": phone,
        "website": website,
        "brand": place.brand if place.brand and rng.random() < p.brand else None,
    }


def _strip_accents(name: str) -> str:
    """What a feed that writes plain ASCII makes of a name: Latin letters lose their
    accents, and those with no ASCII form ("ø") are dropped; letters of other scripts
    lose only their accent marks (Greek tonos), never the letters themselves."""
    kept = []
    for char in name:
        parts = unicodedata.normalize("NFKD", char)
        plain = "".join(part for part in parts if part.isascii())
        latin = ord(char) < 0x370 or unicodedata.name(char, "").startswith("LATIN")
        if plain or latin or not char.isalpha():
            kept.append(plain)
        else:  # a letter of another script, without its accent marks
            kept.append("".join(part for part in parts if not unicodedata.combining(part)))
    return unicodedata.normalize("NFC", "".join(kept)) or name


def _typo(name: str, rng: np.random.Generator) -> str:
    if len(name) < 4:
        return name
    i = int(rng.integers(1, len(name) - 1))
    kind = int(rng.integers(3))
    if kind == 0:  # swap two letters
        return name[:i] + name[i + 1] + name[i] + name[i + 2 :]
    if kind == 1:  # drop one
        return name[:i] + name[i + 1 :]
    return name[:i] + string.ascii_lowercase[int(rng.integers(26))] + name[i + 1 :]


def _national(place: Place) -> str:
    number = place.phone_national
    if place.country.code == "US":
        return f"({number[:3]}) {number[3:6]}-{number[6:]}"
    return f"{place.country.trunk}{number[:2]} {number[2:5]} {number[5:]}"


def _international(place: Place, rng: np.random.Generator) -> str:
    number = place.phone_national
    if rng.random() < 0.5:
        return place.e164
    return f"+{place.country.calling_code} {number[:2]} {number[2:5]} {number[5:]}"


def _website_variant(url: str, rng: np.random.Generator) -> str:
    variant = int(rng.integers(4))
    if variant == 0:
        return url
    if variant == 1:
        return url.replace("https://", "http://")
    if variant == 2:
        return url.replace("https://www.", "")
    return url.rstrip("/") + "/?utm_source=feed"


def _category_label(place: Place, rng: np.random.Generator) -> str:
    # Sources spell categories their own way: an id, a title, or a plural.
    label = place.category
    style = int(rng.integers(3))
    if style == 0:
        return label
    words = label.replace("_", " ")
    return words.title() if style == 1 else words + "s"


def profile_dict(profile: SourceProfile) -> dict[str, Any]:
    """The profile as plain data, for the generator's manifest (habits only where set)."""
    return {k: v for k, v in asdict(profile).items() if k not in HABITS or v}
