from __future__ import annotations

import csv
import json
import math
import os
import re
import unicodedata
from collections import Counter
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from poiflow.errors import OutputError
from poiflow.generate import generate
from poiflow.normalize.house_numbers import house_number_parts, housenumber_key
from poiflow.normalize.name_asides import (
    contact_in_name,
    name_aside,
    status_in_name,
    store_number_in_name,
)
from poiflow.normalize.phones import parse_phones
from poiflow.sources.text import degrees
from poiflow.text import clean_text

from ..conftest import killed_outright, poiflow


def read(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_same_seed_same_bytes_other_seed_other_data(tmp_path: Path) -> None:
    a = generate(500, 3, 5, tmp_path / "a")
    b = generate(500, 3, 5, tmp_path / "b")
    c = generate(500, 3, 6, tmp_path / "c")
    for x, y in zip([*a.sources, a.gold], [*b.sources, b.gold], strict=True):
        assert x.read_bytes() == y.read_bytes()
    assert a.gold.read_bytes() != c.gold.read_bytes()


def test_the_true_places_are_every_place_of_the_gold_as_it_truly_is(tmp_path: Path) -> None:
    made = generate(800, 3, 2, tmp_path / "a")
    truth = {r["id"]: r for r in read(made.gold_places)}
    assert len(truth) == made.places
    gold = read(made.gold)
    assert {g["place"] for g in gold} <= set(truth)
    # Sources describe their place with noise: most records give its true phone's digits
    # and its true street, far more than they give another place's.
    records = {(p.stem, r["id"]): r for p in made.sources for r in read(p)}
    same_street = sum(
        records[g["source"], g["id"]]["street"] == truth[g["place"]]["street"] for g in gold
    )
    assert same_street > 0.5 * len(gold)
    assert all(t["phone"].startswith("+") for t in truth.values())
    # Written beside the sources, it changes none of their bytes.
    again = generate(800, 3, 2, tmp_path / "b")
    assert again.gold_places.read_bytes() == made.gold_places.read_bytes()
    assert [p.read_bytes() for p in again.sources] == [p.read_bytes() for p in made.sources]


def test_gold_covers_every_record_and_sources_are_noisy(tmp_path: Path) -> None:
    made = generate(2000, 4, 1, tmp_path)
    gold = read(made.gold)
    assert len(gold) == made.records
    records = {(p.stem, r["id"]): r for p in made.sources for r in read(p)}
    assert set(records) == {(g["source"], g["id"]) for g in gold}
    by_place: dict[str, list[dict[str, str]]] = {}
    for g in gold:
        by_place.setdefault(g["place"], []).append(records[(g["source"], g["id"])])
    multi = [rs for rs in by_place.values() if len(rs) > 1]
    assert len(multi) > 1000  # most places are described by several sources
    differing_names = sum(1 for rs in multi if len({r["name"] for r in rs}) > 1)
    assert differing_names > 0.2 * len(multi)
    vendor = read(made.sources[1])
    assert (
        any(not r["lat"] for r in vendor)
        or json.loads(made.manifest.read_text())["profiles"][1]["no_coordinates"] == 0
    )
    assert any(r["phone"].startswith("+") for r in vendor)
    assert any(
        r["phone"].startswith("0") or r["phone"].startswith("(") for r in vendor if r["phone"]
    )


def test_address_only_feeds(tmp_path: Path) -> None:
    made = generate(300, 3, 2, tmp_path, drop_coordinates=True)
    assert all(r["lat"] for r in read(made.sources[0]))
    assert not any(r["lat"] for p in made.sources[1:] for r in read(p))


def test_vendor_noise_sets_a_noise_of_every_vendor_feed_and_bad_arguments_are_named(
    tmp_path: Path,
) -> None:
    plain = generate(800, 3, 4, tmp_path / "plain")
    coarse = generate(800, 3, 4, tmp_path / "coarse", vendor_noise={"jitter_m": 400.0})
    manifest = json.loads((tmp_path / "coarse" / "manifest.json").read_text())
    assert manifest["vendor_noise"] == {"jitter_m": 400.0}
    assert [p["jitter_m"] for p in manifest["profiles"]][1:] == [400.0, 400.0]
    assert manifest["profiles"][0]["jitter_m"] < 20  # the OSM-like source is left alone
    # The same world and draws: the OSM-like file is the same, vendors' points spread out.
    assert (tmp_path / "plain" / "source_a.csv").read_bytes() == (
        tmp_path / "coarse" / "source_a.csv"
    ).read_bytes()
    gold = {(r["source"], r["id"]): r["place"] for r in read(tmp_path / "coarse" / "gold.csv")}

    def spread(folder: Path) -> float:
        anchor = {
            gold[("source_a", r["id"])]: (float(r["lat"]), float(r["lon"]))
            for r in read(folder / "source_a.csv")
            if r["lat"]
        }
        offsets = []
        for r in read(folder / "source_b.csv"):
            place = gold[("source_b", r["id"])]
            if r["lat"] and place in anchor:
                lat, lon = anchor[place]
                dy = (float(r["lat"]) - lat) * 111_000
                dx = (float(r["lon"]) - lon) * 111_000 * math.cos(math.radians(lat))
                offsets.append(math.hypot(dx, dy))
        return sorted(offsets)[len(offsets) // 2]

    assert plain.records == coarse.records
    assert spread(tmp_path / "coarse") > 4 * spread(tmp_path / "plain")
    with pytest.raises(ValueError, match="unknown source noise 'jiter_m'"):
        generate(10, 2, 1, tmp_path / "bad", vendor_noise={"jiter_m": 3.0})
    # A format it does not write is refused, not written as CSV under that name.
    with pytest.raises(ValueError, match="file_format 'xlsx' is not one of csv, parquet"):
        generate(10, 2, 1, tmp_path / "bad", file_format="xlsx")  # type: ignore[arg-type]
    # A share of records above 1 (a percentage given for a share), and no infinity.
    for noise, said in (
        ({"typo": 5.0}, "a share of the records, from 0 to 1"),
        ({"jitter_m": math.inf}, ">= 0"),
    ):
        with pytest.raises(ValueError, match=said):
            generate(10, 2, 1, tmp_path / "bad", vendor_noise=noise)
    # Counts and the seed named when wrong (a float was taken, a negative seed failed in
    # numpy); numpy's integers are whole numbers, and give the same world.
    for wrong, said in (
        ({"places": 0}, "places is 0: give a whole number of 1 or more"),
        ({"places": 10.5}, "places is 10.5: give a whole number of 1 or more"),
        ({"sources": 0}, "sources is 0: give a whole number of 1 or more"),
        ({"seed": -1}, "seed is -1: give a whole number of 0 or more"),
    ):
        with pytest.raises(ValueError, match=said):
            generate(**({"places": 10, "sources": 2, "seed": 1} | wrong), output=tmp_path / "bad")  # type: ignore[arg-type]
    generate(np.int64(10), np.int64(2), np.int64(1), tmp_path / "numpy")  # type: ignore[arg-type]
    generate(10, 2, 1, tmp_path / "ints")
    for name in ("gold.csv", "manifest.json"):
        assert (tmp_path / "numpy" / name).read_bytes() == (tmp_path / "ints" / name).read_bytes()
    with pytest.raises(OutputError, match="a file, not a folder"):
        generate(10, 2, 1, tmp_path / "ints" / "gold.csv")
    said = poiflow("generate", "--places", "10", "--vendor-noise", "jiter_m=3", "-o", "x")
    assert said.returncode != 0
    assert "Did you mean 'jitter_m'?" in said.stdout + said.stderr


def write_names(
    path: Path, rows: list[tuple[str, ...]], header: str = "name,category,street"
) -> Path:
    path.write_text(header + "\n" + "".join(",".join(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_a_world_named_from_a_file_of_your_own(tmp_path: Path) -> None:
    from poiflow.generate import read_seed
    from poiflow.generate.world import bundled_seed

    names = write_names(
        tmp_path / "names.csv",
        [
            ("Café Luise", "cafe", "Hauptstraße"),
            ("Bäckerei Kramer", "bakery", "Lindenweg"),
            ("Bäckerei Kramer", "bakery", "Hauptstraße"),  # twice: a chain
            ("Κουζίνα Μαρίας", "restaurant", "Ερμού"),
            ("山田書店", "bookstore", ""),
        ],
    )
    made = generate(400, 3, 2, tmp_path / "gen", seed_places=read_seed(names))
    osm_like = read(made.sources[0])
    base = {"Café Luise", "Bäckerei Kramer", "Κουζίνα Μαρίας", "山田書店"}
    # The names come from the file (look-alikes are made of its words; noise changes
    # some), none from Helsinki.
    words = {w for n in base for w in n.split()}
    named = sum(1 for r in osm_like if set(r["name"].split()) & words)
    assert named > 0.8 * len(osm_like)
    helsinki = {p["name"] for p in bundled_seed()}
    assert not helsinki & {r["name"] for p in made.sources for r in read(p)}
    assert {r["street"] for r in osm_like} <= {"Hauptstraße", "Lindenweg", "Ερμού", ""}
    assert any(r["brand"] == "Bäckerei Kramer" for p in made.sources for r in read(p))
    # A name in another script gets a web address of its own, not a shared "place.xx".
    sites = {r["website"] for p in made.sources for r in read(p) if r["name"] == "山田書店"}
    assert any("place" in (s or "") for s in sites)

    def hosts(name: str) -> set[str]:
        sites = [r["website"] for p in made.sources for r in read(p) if r["name"] == name]
        return {re.sub(r"^\w+://", "", w).split("/")[0].removeprefix("www.") for w in sites if w}

    greek, japanese = hosts("Κουζίνα Μαρίας"), hosts("山田書店")
    assert greek
    assert japanese
    assert not greek & japanese
    manifest = json.loads(made.manifest.read_text())
    assert manifest["names"] == "5 places given"
    assert "attribution" not in manifest


def test_a_bad_names_file_says_which_line_and_what(tmp_path: Path) -> None:
    from poiflow.errors import InputError, SchemaMismatchError
    from poiflow.generate import read_seed

    with pytest.raises(SchemaMismatchError, match="needs the columns name and category"):
        read_seed(write_names(tmp_path / "a.csv", [("Cafe",)], header="name"))
    bad = write_names(tmp_path / "b.csv", [("Cafe", "cafe", ""), ("Pub", "pubb", "")])
    with pytest.raises(
        InputError, match=r"line 3.*'pubb' is not in the taxonomy\. Did you mean 'pub'"
    ):
        read_seed(bad)
    with pytest.raises(InputError, match=r"line 2.*a place needs a name"):
        read_seed(write_names(tmp_path / "c.csv", [(" ", "cafe", "")]))
    result = poiflow("generate", "--names", str(tmp_path / "missing.csv"), "-o", str(tmp_path))
    assert result.returncode == 1
    assert "missing.csv: cannot read the names file" in result.stderr


def test_plain_ascii_feeds_keep_the_letters_of_other_scripts() -> None:
    from poiflow.generate.noise import _strip_accents

    assert _strip_accents("Smørrebrød Café") == "Smrrebrd Cafe"  # as before: ASCII only
    assert _strip_accents("Κουζίνα Μαρίας") == "Κουζινα Μαριας"  # tonos gone, letters kept
    assert _strip_accents("Парк Эспланада") == "Парк Эспланада"
    assert _strip_accents("山田書店") == "山田書店"


@given(st.text(alphabet=st.characters(max_codepoint=0x24F, exclude_categories=("Cs",))))
def test_for_latin_text_plain_ascii_is_what_it_always_was(name: str) -> None:
    """Names in Latin script (the bundled ones) come out as before the change for other
    scripts: the worlds of every seed keep their bytes."""
    from poiflow.generate.noise import _strip_accents

    before = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode() or name
    assert _strip_accents(name) == before


def test_sources_write_opening_hours_in_their_own_style_and_change_nothing_else(
    tmp_path: Path,
) -> None:
    """The OSM-like source writes a place's hours in OSM's syntax, the feeds in English or
    Finnish for people; the hours come from a random stream of their own, so every other
    value of the world is what it was before hours were written."""
    from poiflow.generate.hours import hours_as_written
    from poiflow.normalize import canonical_hours

    made = generate(1500, 4, 3, tmp_path)
    truth = {r["id"]: r["opening_hours"] for r in read(made.gold_places)}
    place_of = {(g["source"], g["id"]): g["place"] for g in read(made.gold)}
    styles: dict[str, Counter[str]] = {}
    agree = total = 0
    for path in made.sources:
        for row in read(path):
            hours = row["opening_hours"]
            if not hours:
                continue
            true = truth[place_of[path.stem, row["id"]]]
            total += 1
            agree += canonical_hours(hours) == canonical_hours(true)
            kind = (
                "en"
                if re.search(r"\d(am|pm)\b|midnight", hours)
                else "fi"
                if re.match(r"(ma|ti|ke|to|pe|la|su)\b", hours)
                else "osm"
            )
            styles.setdefault(path.stem, Counter())[kind] += 1
    # As the places' OSM values are (a few of them were written in English by a mapper);
    # and hours beyond days and times (holidays, months) a feed writes as OSM does.
    assert {source: count.most_common(1)[0][0] for source, count in styles.items()} == {
        "source_a": "osm",
        "source_b": "osm",
        "source_c": "en",
        "source_d": "fi",
    }
    assert styles["source_a"]["fi"] == styles["source_c"]["fi"] == styles["source_d"]["en"] == 0
    assert 0.85 < agree / total < 1.0  # a few are another place's (out of date)
    # Every written style reads back as the hours it was written from.
    for hours in {h for h in truth.values() if h}:
        for style in ("en", "fi"):
            assert canonical_hours(hours_as_written(hours, style)) == canonical_hours(hours)


def test_no_city_and_no_place_lies_in_the_sea() -> None:
    import numpy as np

    from poiflow.generate.world import build_world
    from poiflow.land import on_land

    # Thirty cities over five seeds: with centres drawn anywhere in the countries' boxes
    # (half of Italy's is sea), about one in nine lay at sea, with their places around.
    for seed in range(5):
        world = build_world(12_000, np.random.default_rng(seed))
        lat = np.array([p.lat for p in world])
        lon = np.array([p.lon for p in world])
        assert on_land(lat, lon).all(), seed


def test_nearest_land_moves_a_point_at_sea_and_only_such_a_point() -> None:
    from poiflow.generate.world import COUNTRIES
    from poiflow.land import nearest_land

    italy = next(c for c in COUNTRIES if c.code == "IT").bbox
    assert nearest_land(41.9, 12.5, italy) == (41.9, 12.5)  # Rome stays
    # The Tyrrhenian Sea: Ponza (40.90 N, 12.96 E) is nearer than Naples or Sardinia.
    lat, lon = nearest_land(40.0, 12.0, italy)
    assert abs(lat - 40.9) < 0.15
    assert abs(lon - 12.96) < 0.15
    lat, lon = nearest_land(39.5, 11.0, italy)  # further west: Sardinia's east coast
    assert abs(lat - 39.7) < 0.15
    assert abs(lon - 9.7) < 0.15
    atlantic = (30.0, 31.0, -40.0, -39.0)
    assert nearest_land(30.5, -39.5, atlantic) == (30.5, -39.5)  # no land to go to


def test_a_world_says_which_generator_wrote_it(tmp_path: Path) -> None:
    from poiflow.generate import GENERATOR, is_current

    made = generate(300, 2, 1, tmp_path / "w")
    assert json.loads(made.manifest.read_text(encoding="utf-8"))["generator"] == GENERATOR
    assert is_current(tmp_path / "w")
    manifest = json.loads(made.manifest.read_text(encoding="utf-8"))
    made.manifest.write_text(json.dumps({**manifest, "generator": GENERATOR - 1}))
    assert not is_current(tmp_path / "w")  # an older generator's world: made again
    assert not is_current(tmp_path / "nothing")


def test_a_world_made_again_replaces_the_last_one_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Made into a folder that holds a world: that world's files go, a source it had and
    this one lacks too (``source_*.csv`` once named a source of the last world, not in
    ``gold.csv``), and a file of the person's own stays. A generation that fails half-way
    leaves the last world as it was, whole."""
    import poiflow.generate as generator
    from poiflow.generate import is_current

    folder = tmp_path / "w"
    three = generate(300, 3, 1, folder)
    (folder / "notes.txt").write_text("mine")
    two = generate(300, 2, 1, folder, file_format="parquet")
    assert sorted(p.name for p in folder.iterdir()) == [
        "gold.csv",
        "gold_places.csv",
        "manifest.json",
        "notes.txt",
        "source_a.parquet",
        "source_b.parquet",
    ]
    assert two.sources == [folder / "source_a.parquet", folder / "source_b.parquet"]
    # The same bytes as a world made into an empty folder.
    alone = generate(300, 2, 1, tmp_path / "alone", file_format="parquet")
    for name in ("gold.csv", "gold_places.csv", "manifest.json", "source_b.parquet"):
        assert (folder / name).read_bytes() == (tmp_path / "alone" / name).read_bytes()
    assert alone.records == two.records < three.records

    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    calls = []

    def fail_second(path: Path, rows: list[dict[str, str]]) -> None:
        calls.append(path)
        if len(calls) == 2:
            raise OSError("no space left on device")
        written(path, rows)

    written = generator._write
    monkeypatch.setattr(generator, "_write", fail_second)
    with pytest.raises(OSError, match="no space left"):
        generate(300, 3, 9, folder)
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
    assert is_current(folder)


def test_a_generation_killed_outright_leaves_the_last_world_and_the_next_clears_up(
    tmp_path: Path,
) -> None:
    """Killed while writing (SIGKILL: no ``finally`` runs), a generation leaves the last
    world whole and its hidden half-written folder, named by its process; the next
    generation into the folder removes it, and leaves a live process's alone."""
    from poiflow.generate import is_current

    folder = tmp_path / "w"
    generate(300, 2, 1, folder)
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    pid = killed_outright(
        "import os; import poiflow.generate as g\n"
        "def dies(path, rows): os.kill(os.getpid(), 9)\n"
        "g._write = dies\n"
        f"g.generate(300, 3, 9, {str(folder)!r})\n"
    )
    (left,) = folder.glob(".generating-*")
    assert left.name.endswith(f"-{pid}")
    assert {p.name: p.read_bytes() for p in folder.iterdir() if p != left} == before
    assert is_current(folder)
    live = folder / f".generating-x-{os.getppid()}"
    live.mkdir()

    generate(300, 2, 1, folder)
    assert not left.exists()
    assert live.exists()  # another generation, still at work
    assert {p.name: p.read_bytes() for p in folder.iterdir() if p != live} == before


def test_vendors_habits_change_only_their_values_and_each_does_what_it_says(
    tmp_path: Path,
) -> None:
    from poiflow.generate.habits import HABITS

    plain = generate(1200, 3, 8, tmp_path / "plain")
    assert "rounded_points" not in json.loads(plain.manifest.read_text())["profiles"][1]
    # Given at 0, a habit changes no byte of the world.
    zero = generate(1200, 3, 8, tmp_path / "zero", vendor_noise=dict.fromkeys(HABITS, 0.0))
    for x, y in zip([*plain.sources, plain.gold], [*zero.sources, zero.gold], strict=True):
        assert x.read_bytes() == y.read_bytes()

    def rows_of(habit: str) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
        made = generate(1200, 3, 8, tmp_path / habit, vendor_noise={habit: 1.0})
        assert made.gold.read_bytes() == plain.gold.read_bytes()
        assert made.sources[0].read_bytes() == plain.sources[0].read_bytes()  # OSM-like
        return read(plain.sources[1]), read(made.sources[1])

    def only_changed(before: list[dict[str, str]], after: list[dict[str, str]]) -> set[str]:
        return {k for b, a in zip(before, after, strict=True) for k in b if b[k] != a[k]}

    before, after = rows_of("rounded_points")
    assert only_changed(before, after) == {"lat", "lon"}
    located = [r for r in after if r["lat"]]
    assert located
    assert all(round(float(r["lat"]), 2) == float(r["lat"]) for r in located)
    assert all(round(float(r["lon"]), 2) == float(r["lon"]) for r in located)

    before, after = rows_of("town_centre")
    assert only_changed(before, after) == {"lat", "lon"}
    # A record of a town at its centre, one point a town; one without a town as it was.
    towns = {(r["lat"], r["lon"]) for r in after if r["lat"] and r["city"]}
    assert len(towns) == len({r["city"] for r in after if r["lat"] and r["city"]})
    unplaced = [(b, a) for b, a in zip(before, after, strict=True) if not a["city"]]
    assert unplaced
    assert all((b["lat"], b["lon"]) == (a["lat"], a["lon"]) for b, a in unplaced)

    before, after = rows_of("null_island")
    assert {(r["lat"], r["lon"]) for r in after if r["lat"]} == {("0.0", "0.0")}

    before, after = rows_of("mojibake")
    accented = [(b, a) for b, a in zip(before, after, strict=True) if "é" in b["name"]]
    assert accented
    assert all("Ã©" in a["name"] for _, a in accented)
    assert "lat" not in only_changed(before, after)

    before, after = rows_of("web_escaped")
    assert all(a["name"].isascii() for a in after)
    assert any("&#" in a["name"] for a in after)
    assert any("&amp;" in a["name"] for a in after)
    assert only_changed(before, after) <= {"name", "category", "street", "city", "brand", "website"}

    before, after = rows_of("html_tags")
    assert only_changed(before, after) == {"name"}
    marked = [a["name"] for a in after if a["name"]]
    assert all(a.startswith("<") or a.endswith(">") for a in marked)
    assert all(
        clean_text(a["name"]) == clean_text(b["name"]) for b, a in zip(before, after, strict=True)
    )

    before, after = rows_of("listing_title")
    assert only_changed(before, after) == {"name"}
    titled = [(b, a) for b, a in zip(before, after, strict=True) if b["name"] != a["name"]]
    assert {a["name"][len(b["name"]) :][:2] for b, a in titled} == {" -", " (", ", "}
    assert all(a["name"].startswith(b["name"]) for b, a in titled)

    before, after = rows_of("bilingual_name")
    assert only_changed(before, after) == {"name"}
    both = [(b, a) for b, a in zip(before, after, strict=True) if b["name"] != a["name"]]
    assert both
    assert all(a["name"].startswith(f"{b['name']} / ") for b, a in both)
    # In the case the source wrote the name in.
    assert all(a["name"].islower() for b, a in both if b["name"].islower())

    before, after = rows_of("closed_in_name")
    assert only_changed(before, after) == {"name"}
    marked = [(b["name"], a["name"]) for b, a in zip(before, after, strict=True) if b["name"]]
    said = [
        "temporarily_closed" if "tillfälligt" in a or "Temporarily" in a else "permanently_closed"
        for _, a in marked
    ]
    assert [status_in_name(a) for _, a in marked] == [
        (b, s) for (b, _), s in zip(marked, said, strict=True)
    ]
    assert set(said) == {"permanently_closed", "temporarily_closed"}

    before, after = rows_of("former_name")
    assert only_changed(before, after) == {"name"}
    renamed = [(b["name"], a["name"]) for b, a in zip(before, after, strict=True) if b["name"]]
    asides = [name_aside(a) for _, a in renamed]
    assert [r[0] if r else None for r in asides] == [b for b, _ in renamed]
    assert {r[2] for r in asides if r} == {"old"}

    before, after = rows_of("contact_in_name")
    assert only_changed(before, after) == {"name", "phone", "website"}
    moved = [(b, a) for b, a in zip(before, after, strict=True) if b["name"] != a["name"]]
    assert moved
    for b, a in moved:
        field = "phone" if b["phone"] != a["phone"] else "website"
        assert not a[field]
        assert contact_in_name(a["name"]) == (b["name"], field, b[field])

    before, after = rows_of("numeric_postcode")
    assert only_changed(before, after) == {"postcode"}
    written = [(b["postcode"], a["postcode"]) for b, a in zip(before, after, strict=True)]
    assert all(a in (str(int(b)), f"{int(b)}.0") for b, a in written if b.isdigit())
    assert {a.endswith(".0") for b, a in written if b.isdigit()} == {True, False}

    before, after = rows_of("house_number_forms")
    assert only_changed(before, after) == {"housenumber"}
    forms = [(b["housenumber"], a) for b, a in zip(before, after, strict=True) if b["housenumber"]]
    assert forms
    assert all(a["housenumber"] != b for b, a in forms)
    # Read (the street written before it left out) and keyed as the number, with its
    # letter, or as its building's range.
    keys = [
        housenumber_key(house_number_parts(a["housenumber"], a["street"], None)[0])
        for _, a in forms
    ]
    assert all(
        re.fullmatch(rf"{b}([a-c]|-{int(b) + 2})?", k)
        for (b, _), k in zip(forms, keys, strict=True)
    )

    before, after = rows_of("phone_note")
    assert only_changed(before, after) == {"phone"}
    noted = [(b, a) for b, a in zip(before, after, strict=True) if b["phone"]]
    assert noted
    assert all(a["phone"] != b["phone"] for b, a in noted)
    for b, a in noted:
        assert parse_phones(a["phone"], b["country"]) == parse_phones(b["phone"], b["country"])

    before, after = rows_of("store_number")
    assert only_changed(before, after) == {"name"}
    stores = [(b["name"], a["name"]) for b, a in zip(before, after, strict=True) if b != a]
    assert stores
    assert [store_number_in_name(a) for _, a in stores] == [b for b, _ in stores]

    before, after = rows_of("degrees_minutes")
    assert only_changed(before, after) == {"lat", "lon"}
    located = [(b, a) for b, a in zip(before, after, strict=True) if b["lat"]]
    assert located
    for b, a in located:
        for axis in ("lat", "lon"):
            assert degrees(axis, a[axis]) == pytest.approx(float(b[axis]), abs=1 / 36_000)


def test_a_world_with_every_habit_but_the_points_conflates_as_well_as_without(
    tmp_path: Path,
) -> None:
    # Text garbled, escaped or marked up on its way, names that repeat where the place is,
    # postcodes read as numbers, house numbers as buildings write them, notes after phone
    # numbers and a chain's store numbers are all put back or read through by
    # normalization: the same records meet and merge as in the world without them.
    from poiflow.conflate.evaluate import read_gold, score_membership
    from poiflow.pipeline import conflate

    habits = {
        "mojibake": 0.2,
        "web_escaped": 0.2,
        "html_tags": 0.2,
        "listing_title": 0.2,
        "bilingual_name": 0.5,
        "closed_in_name": 0.2,
        "former_name": 0.2,
        "contact_in_name": 0.2,
        "numeric_postcode": 0.3,
        "house_number_forms": 0.3,
        "phone_note": 0.3,
        "store_number": 0.5,
    }
    scores = []
    for name, noise in (("plain", None), ("habits", habits)):
        made = generate(1500, 3, 9, tmp_path / name, vendor_noise=noise)
        out = tmp_path / f"{name}-out"
        conflate(made.sources, out, workers=1)
        membership = pl.read_parquet(out / "membership.parquet")
        scores.append(score_membership(membership, read_gold(made.gold)).f1)
    assert scores[1] == pytest.approx(scores[0], abs=0.002)
