"""The generated world: cities with real place names, chains and look-alike neighbours.

Places are drawn from the seed (real named POIs of the bundled Helsinki extract, with their
translations, categories, streets and brands) and scattered over synthetic cities in a
dozen countries at realistic densities: dense centres, chains repeated across a city,
and look-alike neighbours (a similar name a few doors away) that a matcher must not merge.
"""

from __future__ import annotations

import csv
import gzip
import json
import re
import unicodedata
import zlib
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, Final

import numpy as np

from poiflow.errors import InputError, SchemaMismatchError, did_you_mean
from poiflow.land import nearest_land, on_land
from poiflow.taxonomy import taxonomy

__all__ = [
    "COUNTRIES",
    "SEED_COLUMNS",
    "Country",
    "Place",
    "build_world",
    "bundled_seed",
    "read_seed",
]

SEED_COLUMNS: Final = ("name", "category", "street", "brand", "domain", "opening_hours")
"""The columns of a file of place names the world can be drawn from (:func:`read_seed`):
``name`` and ``category`` are required. A name given more than once is a chain."""


@dataclass(frozen=True, slots=True)
class Country:
    """What the generator needs to know of a country."""

    code: str
    bbox: tuple[float, float, float, float]  # lat_min, lat_max, lon_min, lon_max
    calling_code: str
    trunk: str  # national prefix written before the national number ("0"), or ""
    subscriber: str  # leading digits of generated numbers, then random digits to length
    length: int  # national significant number length
    postcode: str  # a pattern: 9 = digit, A = letter
    legal_forms: tuple[str, ...]
    city_word: str


COUNTRIES: Final = (
    Country(
        "FI",
        (60.2, 63.0, 22.0, 29.5),
        "358",
        "0",
        "40",
        9,
        "99999",
        ("Oy", "Oyj", "Ky"),
        "Helsinki",
    ),
    Country("SE", (55.6, 60.5, 12.0, 18.5), "46", "0", "70", 9, "999 99", ("AB", "HB"), "Stad"),
    Country(
        "DE", (48.0, 54.0, 7.0, 14.0), "49", "0", "30", 10, "99999", ("GmbH", "AG", "KG"), "Stadt"
    ),
    Country(
        "FR", (43.5, 49.5, -1.0, 7.0), "33", "0", "1", 9, "99999", ("SARL", "SA", "SAS"), "Ville"
    ),
    Country("GB", (51.0, 55.0, -3.0, 0.5), "44", "0", "20", 10, "AA9 9AA", ("Ltd", "PLC"), "Town"),
    Country(
        "US", (33.0, 45.0, -120.0, -75.0), "1", "", "212", 10, "99999", ("LLC", "Inc."), "City"
    ),
    Country("NL", (51.5, 53.2, 4.5, 6.8), "31", "0", "20", 9, "9999 AA", ("B.V.", "N.V."), "Stad"),
    Country("ES", (37.0, 43.0, -6.0, 0.0), "34", "", "91", 9, "99999", ("S.L.", "S.A."), "Ciudad"),
    Country(
        "IT", (38.5, 45.5, 8.0, 16.0), "39", "", "06", 10, "99999", ("S.r.l.", "S.p.A."), "Citta"
    ),
    Country("NO", (58.5, 63.5, 6.0, 11.0), "47", "", "2", 8, "9999", ("AS", "ASA"), "By"),
    Country("DK", (55.0, 57.0, 8.5, 12.5), "45", "", "3", 8, "9999", ("ApS", "A/S"), "By"),
    Country("PL", (50.0, 54.0, 15.5, 23.5), "48", "", "22", 9, "99-999", ("Sp. z o.o.",), "Miasto"),
)

_LOOKALIKE_RATE: Final = 0.06
_SAME_BUILDING_RATE: Final = 0.15  # shops of a mall, offices of one block: one address
_CHAIN_RATE: Final = 0.25
_NOT_ALNUM: Final = re.compile(r"[^a-z0-9]+")


@dataclass(slots=True)
class Place:
    """One real-world place of the generated world: the truth every source describes."""

    place_id: str
    name: str
    alternates: list[tuple[str, str]]
    category: str
    lat: float
    lon: float
    street: str
    housenumber: str
    postcode: str
    city: str
    country: Country
    phone_national: str  # national significant number (digits)
    website: str | None
    brand: str | None
    opening_hours: str | None
    chain: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def e164(self) -> str:
        """The phone in E.164."""
        return f"+{self.country.calling_code}{self.phone_national}"


@cache
def bundled_seed() -> list[dict[str, Any]]:
    """The places the world is drawn from by default: the named POIs of the bundled
    Helsinki extract (names, translations, categories, streets, brands)."""
    text = resources.files("poiflow.generate").joinpath("data/seed.json.gz").read_bytes()
    places: list[dict[str, Any]] = json.loads(gzip.decompress(text))["places"]
    return places


def read_seed(path: str | Path) -> list[dict[str, Any]]:
    """The places of a CSV file (``SEED_COLUMNS``) to draw the world's names, categories,
    streets and brands from, in place of the bundled Helsinki extract: a world named like
    your own region, or in another script.

    Raises:
        InputError: The file cannot be read, or a row has no name or a category the
            taxonomy does not know (the message names the line).
        SchemaMismatchError: It lacks the ``name`` or ``category`` column.
    """
    try:
        with Path(path).open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            missing = {"name", "category"} - set(reader.fieldnames or ())
            if missing:
                raise SchemaMismatchError(
                    f"a names file needs the columns name and category (also read: "
                    f"{', '.join(SEED_COLUMNS[2:])}); missing {', '.join(sorted(missing))}",
                    path=path,
                )
            rows = list(reader)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InputError(f"cannot read the names file ({exc})", path=path) from exc
    known = taxonomy()
    places: list[dict[str, Any]] = []
    for line, row in enumerate(rows, start=2):
        name, category = (row.get("name") or "").strip(), (row.get("category") or "").strip()
        if not name:
            raise InputError("a place needs a name", path=path, location=f"line {line}")
        if category not in known:
            hint = did_you_mean(category, known.categories)
            raise InputError(
                f"category '{category}' is not in the taxonomy.{hint}",
                path=path,
                location=f"line {line}",
            )
        places.append(
            {
                "name": name,
                "category": category,
                "alternates": [],
                **{key: (row.get(key) or "").strip() or None for key in SEED_COLUMNS[2:]},
            }
        )
    if not places:
        raise InputError("the names file has no places", path=path)
    return places


def _slug(name: str) -> str:
    """A name in web-address letters; a name in another script (no Latin letter to keep)
    gets one of its own from its hash, as such a place's site would have its own name."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return _NOT_ALNUM.sub("", ascii_name.lower()) or f"place{zlib.crc32(name.encode()):08x}"


def _postcode(pattern: str, rng: np.random.Generator) -> str:
    letters = "ABCDEFGHJKLMNPRSTUVWXYZ"
    return "".join(
        str(rng.integers(10))
        if ch == "9"
        else letters[rng.integers(len(letters))]
        if ch == "A"
        else ch
        for ch in pattern
    )


def build_world(
    places: int, rng: np.random.Generator, seed_places: Sequence[Mapping[str, Any]] | None = None
) -> list[Place]:
    """``places`` places over ``max(1, places // 2000)`` cities, deterministic given ``rng``,
    drawn from ``seed_places`` (:func:`read_seed`; default: the bundled Helsinki extract)."""
    seed = [dict(s) for s in seed_places] if seed_places is not None else bundled_seed()
    streets = sorted({s["street"] for s in seed if s["street"]}) or ["Main Street"]
    uses = Counter(s["name"] for s in seed)  # a name given more than once is a chain
    chains = sorted(name for name, n in uses.items() if n > 1)
    by_name = {s["name"]: s for s in seed}
    n_cities = max(1, places // 2000)
    cities = []
    for index in range(n_cities):
        country = COUNTRIES[int(rng.integers(len(COUNTRIES)))]
        # A centre drawn at sea (half of Italy's box is) moves to the nearest land: a city
        # never lies in the sea, and a world whose cities are all on land is as it was.
        lat0, lon0 = nearest_land(
            float(rng.uniform(country.bbox[0], country.bbox[1])),
            float(rng.uniform(country.bbox[2], country.bbox[3])),
            country.bbox,
        )
        sigma_km = float(rng.uniform(1.0, 4.0))
        postcodes = [_postcode(country.postcode, rng) for _ in range(12)]
        cities.append(
            (country, lat0, lon0, sigma_km, f"{country.city_word} {index + 1}", postcodes)
        )
    world: list[Place] = []
    used_phones: set[str] = set()
    names_in: dict[str, set[str]] = {}  # per city: the names of its places
    while len(world) < places:
        country, lat0, lon0, sigma_km, city, postcodes = cities[int(rng.integers(n_cities))]
        chain = bool(rng.random() < _CHAIN_RATE) and bool(chains)  # no name twice: none
        template = (
            by_name[chains[int(rng.integers(len(chains)))]]
            if chain
            else seed[int(rng.integers(len(seed)))]
        )
        taken = names_in.setdefault(city, set())
        if not chain and template["name"] in taken:
            # A town has one "Formverk": a name drawn twice becomes another real-looking
            # name (its first word with another place's last), not a second Formverk.
            template = _renamed(template, seed, taken, rng)
        taken.add(template["name"])
        lat, lon = _scatter(lat0, lon0, sigma_km, rng)
        place = _place(
            f"P{len(world):07d}",
            template,
            chain,
            lat,
            lon,
            country,
            city,
            postcodes,
            streets,
            used_phones,
            rng,
        )
        if world and rng.random() < _SAME_BUILDING_RATE:
            _move_in_with(place, world[int(rng.integers(max(0, len(world) - 50), len(world)))], rng)
        world.append(place)
        if len(world) < places and rng.random() < _LOOKALIKE_RATE:
            world.append(_lookalike(f"P{len(world):07d}", place, seed, streets, used_phones, rng))
    _ashore(world, {city: (lat0, lon0) for _, lat0, lon0, _, city, _ in cities})
    return world


def _ashore(world: list[Place], centres: Mapping[str, tuple[float, float]]) -> None:
    """Move each place that a coastal city spread into the sea towards its city's centre
    (on land) until it is ashore: halfway, then halfway again, as often as it takes. No
    random draw is made, so the rest of the world is as it would be without."""
    lat = np.array([p.lat for p in world])
    lon = np.array([p.lon for p in world])
    wet = np.flatnonzero(~on_land(lat, lon))
    centre = np.array([centres[world[i].city] for i in wet]).reshape(-1, 2)
    wet_lat, wet_lon = lat[wet], lon[wet]
    for _ in range(12):  # the centre is on land: a 4096th of the way out is ashore
        still = ~on_land(wet_lat, wet_lon)
        if not still.any():
            break
        wet_lat = np.where(still, (wet_lat + centre[:, 0]) / 2, wet_lat)
        wet_lon = np.where(still, (wet_lon + centre[:, 1]) / 2, wet_lon)
    for i, place_lat, place_lon in zip(wet.tolist(), wet_lat, wet_lon, strict=True):
        world[i].lat, world[i].lon = round(float(place_lat), 7), round(float(place_lon), 7)


def _renamed(
    template: dict[str, Any],
    seed: list[dict[str, Any]],
    taken: set[str],
    rng: np.random.Generator,
) -> dict[str, Any]:
    """The template under a name not yet used in the town, made of real name words."""
    first = template["name"].split()[0]
    for _attempt in range(20):
        other = seed[int(rng.integers(len(seed)))]["name"].split()[-1]
        name = f"{first} {other}"
        if name not in taken and other != first:
            break
    else:
        name = f"{template['name']} {len(taken)}"
    return {**template, "name": name, "alternates": [], "domain": None, "brand": None}


def _scatter(
    lat0: float, lon0: float, sigma_km: float, rng: np.random.Generator
) -> tuple[float, float]:
    # Half the places crowd the centre, the rest spread over the city.
    scale = sigma_km * (0.35 if rng.random() < 0.5 else 1.0)
    dy, dx = rng.normal(0.0, scale, size=2)
    lat = lat0 + dy / 111.32
    lon = lon0 + dx / (111.32 * np.cos(np.radians(lat0)))
    return round(float(lat), 7), round(float(lon), 7)


def _phone(country: Country, used: set[str], rng: np.random.Generator) -> str:
    while True:
        rest = country.length - len(country.subscriber)
        number = country.subscriber + "".join(str(d) for d in rng.integers(0, 10, size=rest))
        if number not in used:
            used.add(number)
            return number


def _place(
    place_id: str,
    template: dict[str, Any],
    chain: bool,
    lat: float,
    lon: float,
    country: Country,
    city: str,
    postcodes: list[str],
    streets: list[str],
    used_phones: set[str],
    rng: np.random.Generator,
) -> Place:
    name = template["name"]
    domain = template["domain"] or f"{_slug(name)}.{country.code.lower()}"
    website = f"https://www.{domain}/" if rng.random() < 0.8 else None
    if chain and website is not None:
        # One page a store (two of a chain's stores in a town once drew one number); the
        # number once drawn is drawn still, so that every other value stays as it was.
        rng.integers(1, 999)
        website = f"https://www.{domain}/locations/{_slug(city)}-{int(place_id[1:])}"
    return Place(
        place_id=place_id,
        name=name,
        alternates=[(lang, value) for lang, value in template["alternates"]],
        category=template["category"],
        lat=lat,
        lon=lon,
        street=streets[int(rng.integers(len(streets)))],
        housenumber=str(int(rng.integers(1, 120))),
        postcode=postcodes[int(rng.integers(len(postcodes)))],
        city=city,
        country=country,
        phone_national=_phone(country, used_phones, rng),
        website=website,
        brand=template["brand"] or (name if chain else None),
        opening_hours=template["opening_hours"],
        chain=chain,
    )


def _move_in_with(place: Place, host: Place, rng: np.random.Generator) -> None:
    """Put ``place`` in ``host``'s building: same address, a few metres apart; now and then
    another outlet of the same brand ("Fazer Café" beside "Fazer Food Market")."""
    if rng.random() < 0.3 and place.name.split()[0] != host.name.split()[0]:
        place.name = f"{host.name.split()[0]} {place.name.split()[-1]}"
        place.alternates = []
    place.country, place.city = host.country, host.city
    place.street, place.housenumber, place.postcode = host.street, host.housenumber, host.postcode
    dy, dx = rng.normal(0.0, 6.0, size=2)
    place.lat = round(host.lat + float(dy) / 111_320, 7)
    place.lon = round(host.lon + float(dx) / (111_320 * np.cos(np.radians(host.lat))), 7)


def _lookalike(
    place_id: str,
    near: Place,
    seed: list[dict[str, Any]],
    streets: list[str],
    used_phones: set[str],
    rng: np.random.Generator,
) -> Place:
    """A different place a few doors from ``near`` whose name differs by little."""
    words = near.name.split()
    other = seed[int(rng.integers(len(seed)))]["name"].split()
    if len(words) > 1 and rng.random() < 0.5:
        name = " ".join([*words[:-1], other[-1]])  # "Cafe Aalto" -> "Cafe Regatta"
    else:
        name = f"{near.name} {other[0]}"  # "Aalto" -> "Aalto Sushi"
    distance_m = float(rng.uniform(10, 120))
    angle = float(rng.uniform(0, 2 * np.pi))
    lat = near.lat + distance_m * np.sin(angle) / 111_320
    lon = near.lon + distance_m * np.cos(angle) / (111_320 * np.cos(np.radians(near.lat)))
    return Place(
        place_id=place_id,
        name=name,
        alternates=[],
        category=near.category if rng.random() < 0.6 else "other",
        lat=round(float(lat), 7),
        lon=round(float(lon), 7),
        street=near.street if rng.random() < 0.5 else streets[int(rng.integers(len(streets)))],
        housenumber=str(int(rng.integers(1, 120))),
        postcode=near.postcode,
        city=near.city,
        country=near.country,
        phone_national=_phone(near.country, used_phones, rng),
        website=None,
        brand=None,
        opening_hours=None,
    )
