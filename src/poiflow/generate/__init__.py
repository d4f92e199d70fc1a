"""The benchmark generator: many sources describing one world, with the truth.

``generate(places=N, sources=K, seed=S, output=DIR)`` writes one flat place file per source
(``DIR/source_a.csv``, ...), ``DIR/gold.csv`` (``source,id,place``: which real place each
record describes), ``DIR/gold_places.csv`` (each real place as it truly is, in the flat
place format with the place as its id: what a golden record should say) and
``DIR/manifest.json`` (the parameters and each source's noise profile). The same
arguments give the same bytes.

A world is written whole or not at all: its files are made in a hidden folder inside
``DIR`` and moved in together, ``manifest.json`` last, in place of the files of the world
``DIR`` held before (a source of that world this one lacks is removed, so ``source_*.csv``
names this world's sources only). Other files in ``DIR`` are left alone.
"""

from __future__ import annotations

import csv
import json
import numbers
import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from poiflow.errors import OutputError
from poiflow.generate.habits import HABITS, with_habits
from poiflow.generate.hours import SourceHours
from poiflow.generate.noise import SourceProfile, check_noise, describe, profile_dict, profiles
from poiflow.generate.world import COUNTRIES, Place, build_world, read_seed
from poiflow.schema import FLAT_FIELDS
from poiflow.storage import clear_stale

__all__ = [
    "COUNTRIES",
    "GENERATOR",
    "GOLD_PLACES",
    "Generated",
    "Place",
    "SourceProfile",
    "generate",
    "is_current",
    "read_seed",
]

# The flat place format, less what the generator leaves to the file name (source) and to
# the parts (a freeform address), plus the brand of chain stores.
_COLUMNS: Final = (
    *(f for f in FLAT_FIELDS if f not in ("source", "address")),
    "brand",
    "opening_hours",
)
GOLD: Final = "gold.csv"  # which place each record describes
GOLD_PLACES: Final = "gold_places.csv"  # the truth of each place's attributes
MANIFEST: Final = "manifest.json"
# Which generator wrote a world (``manifest.json``'s ``generator``): one more each time the
# same arguments come to give other bytes. 2: a city drawn at sea is moved ashore. 3: each
# of a chain's stores has a page of its own.
GENERATOR: Final = 3


def is_current(folder: str | Path) -> bool:
    """Whether ``folder`` holds a whole world that this generator wrote (its files and a
    manifest naming this ``GENERATOR``): a world kept from an older one is made again."""
    folder = Path(folder)
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    whole = (folder / GOLD).exists() and (folder / GOLD_PLACES).exists()
    return whole and isinstance(manifest, dict) and manifest.get("generator") == GENERATOR


@dataclass(frozen=True, slots=True)
class Generated:
    """What :func:`generate` wrote."""

    sources: list[Path]
    gold: Path
    manifest: Path
    records: int
    places: int
    gold_places: Path


def generate(
    places: int,
    sources: int,
    seed: int,
    output: str | Path,
    *,
    file_format: Literal["csv", "parquet"] = "csv",
    drop_coordinates: bool = False,
    vendor_noise: Mapping[str, float] | None = None,
    seed_places: Sequence[Mapping[str, Any]] | None = None,
) -> Generated:
    """Generate ``sources`` noisy descriptions of ``places`` real-looking places.

    Args:
        places: How many real places the world has.
        sources: How many sources describe it (the first is OSM-like, the rest vendor-like).
        seed: Everything follows from it.
        output: The folder to write into (created).
        file_format: ``csv`` or ``parquet`` files, one per source.
        drop_coordinates: Write the vendor sources without any coordinates (address-only
            feeds), to test matching on addresses alone.
        vendor_noise: Rates of ``SourceProfile`` set for every vendor source, in place of
            the drawn ones (e.g. ``{"jitter_m": 250}``: feeds geocoded to the street, a
            noise the shipped model was not trained on), to stress a matcher.
        seed_places: The places to draw names, categories, streets and brands from
            (``read_seed``), in place of the bundled Helsinki extract.

    Raises:
        ValueError: A count that is not a whole number of 1 or more, a seed below 0, a
            ``file_format`` other than the two, or a ``vendor_noise`` that is not a rate
            of ``SourceProfile`` or is below 0 (``check_noise``); each named.
        OutputError: ``output`` is a file.
    """
    for name, value, least in (("places", places, 1), ("sources", sources, 1), ("seed", seed, 0)):
        if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < least:
            msg = f"{name} is {value!r}: give a whole number of {least} or more"
            raise ValueError(msg)
    places, sources, seed = int(places), int(sources), int(seed)  # numpy's too
    if Path(output).is_file():
        raise OutputError("a file, not a folder: the world is written into a folder", path=output)
    if file_format not in ("csv", "parquet"):
        msg = f"file_format '{file_format}' is not one of csv, parquet"
        raise ValueError(msg)
    rng = np.random.default_rng(seed)
    world = build_world(places, rng, seed_places)
    source_profiles = profiles(sources, rng)
    vendor = {**(vendor_noise or {}), **({"no_coordinates": 1.0} if drop_coordinates else {})}
    check_noise(vendor)
    if vendor:
        source_profiles = [
            p if i == 0 else SourceProfile(**{**profile_dict(p), **vendor})
            for i, p in enumerate(source_profiles)
        ]
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    clear_stale(output, ".generating-*")  # a generation killed outright left it
    # Moved in when whole; named by this process, whose leftovers the next one removes.
    made = Path(tempfile.mkdtemp(prefix=".generating-", suffix=f"-{os.getpid()}", dir=output))
    try:
        names, records = _write_world(made, world, source_profiles, rng, seed, file_format)
        manifest = {
            "generator": GENERATOR,
            "places": places,
            "sources": sources,
            "seed": seed,
            "records": records,
            "format": file_format,
            "drop_coordinates": drop_coordinates,
            "vendor_noise": dict(vendor_noise or {}),
            "profiles": [profile_dict(p) for p in source_profiles],
            **(
                {
                    "attribution": "names, streets and categories drawn from OpenStreetMap "
                    "(© OpenStreetMap contributors, ODbL 1.0)"
                }
                if seed_places is None
                else {"names": f"{len(seed_places)} places given"}
            ),
        }
        (made / MANIFEST).write_text(json.dumps(manifest, indent=2), encoding="utf-8")
        _move_in(made, output, [*names, GOLD, GOLD_PLACES])
    finally:
        shutil.rmtree(made, ignore_errors=True)
    return Generated(
        [output / name for name in names],
        output / GOLD,
        output / MANIFEST,
        records,
        len(world),
        output / GOLD_PLACES,
    )


def _write_world(
    output: Path,
    world: list[Place],
    source_profiles: list[SourceProfile],
    rng: np.random.Generator,
    seed: int,
    file_format: str,
) -> tuple[list[str], int]:
    """Each source's records, ``gold.csv`` and ``gold_places.csv``, into ``output``: the
    sources' file names, and how many records they hold."""
    names: list[str] = []
    gold_rows: list[tuple[str, str, str]] = []
    # Opening hours and vendors' habits from streams of their own: without them, every
    # other value is the same.
    hours = SourceHours(world, np.random.default_rng([seed, 1]))
    habits, apart = np.random.default_rng([seed, 2]), np.random.default_rng([seed, 3])
    centres = _town_centres(world)
    alternates = {place.place_id: place.alternates for place in world if place.alternates}
    former = sorted({place.name for place in world})
    chains = frozenset(place.place_id for place in world if place.chain)
    for number, profile in enumerate(source_profiles):
        rows = _records(world, profile, rng)
        hours.add(rows, number)
        rates = {habit: getattr(profile, habit) for habit in HABITS}
        for row in rows:
            with_habits(row, rates, habits, centres, alternates, former, apart, chains)
        order = rng.permutation(len(rows))
        rows = [rows[i] for i in order]
        for index, row in enumerate(rows):
            row["id"] = f"{profile.name[-1].upper()}{index:07d}"
            gold_rows.append((profile.name, row["id"], row.pop("_place")))
        names.append(f"{profile.name}.{file_format}")
        _write(output / names[-1], rows)
    with (output / GOLD).open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(("source", "id", "place"))
        writer.writerows(gold_rows)
    _write(output / GOLD_PLACES, [_truth(place) for place in world])
    return names, len(gold_rows)


def _world_files(folder: Path) -> set[str]:
    """The names of the files of the world ``folder`` holds, by its manifest (none without
    one, or with one that is not a generator's)."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
        extension = manifest["format"]
        sources = [f"{profile['name']}.{extension}" for profile in manifest["profiles"]]
    except (OSError, ValueError, KeyError, TypeError):
        return set()
    return {*(Path(name).name for name in sources), GOLD, GOLD_PLACES}


def _move_in(made: Path, output: Path, names: list[str]) -> None:
    """Put the world written in ``made`` into ``output`` in place of the one there: the
    old manifest goes first (a world half moved in is no world, see ``is_current``), then
    the files of the old world that the new one lacks, and the new manifest comes last."""
    stale = _world_files(output) - set(names)
    (output / MANIFEST).unlink(missing_ok=True)
    for name in sorted(stale):
        (output / name).unlink(missing_ok=True)
    for name in names:
        (made / name).replace(output / name)
    (made / MANIFEST).replace(output / MANIFEST)


def _truth(place: Place) -> dict[str, Any]:
    """A place as it truly is, as a flat record whose id is the place."""
    return {
        "id": place.place_id,
        "name": place.name,
        "lat": place.lat,
        "lon": place.lon,
        "category": place.category,
        "street": place.street,
        "housenumber": place.housenumber,
        "postcode": place.postcode,
        "city": place.city,
        "country": place.country.code,
        "phone": place.e164,
        "website": place.website,
        "brand": place.brand,
        "opening_hours": place.opening_hours,
    }


def _records(
    world: list[Place], profile: SourceProfile, rng: np.random.Generator
) -> list[dict[str, Any]]:
    rows = []
    for place in world:
        if rng.random() >= profile.coverage:
            continue
        copies = 2 if rng.random() < profile.duplicates else 1
        for _ in range(copies):
            row = describe(place, profile, rng)
            row["_place"] = place.place_id
            rows.append(row)
    return rows


def _town_centres(world: list[Place]) -> dict[str, tuple[float, float]]:
    """Each town's centre, as a geocoder has it: the mean point of its places, to 6
    decimals."""
    points: dict[str, list[tuple[float, float]]] = {}
    for place in world:
        points.setdefault(place.city, []).append((place.lat, place.lon))
    return {
        town: (
            round(float(np.mean([p[0] for p in at])), 6),
            round(float(np.mean([p[1] for p in at])), 6),
        )
        for town, at in points.items()
    }


def _write(path: Path, rows: list[dict[str, Any]]) -> None:
    columns = {name: [row.get(name) for row in rows] for name in _COLUMNS}
    if path.suffix == ".parquet":
        table = pa.table(
            {
                name: pa.array(values, pa.float64() if name in ("lat", "lon") else pa.string())
                for name, values in columns.items()
            }
        )
        pq.write_table(table, path)
        return
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(_COLUMNS)
        for row in rows:
            writer.writerow(["" if row.get(c) is None else row[c] for c in _COLUMNS])
