from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest

from poiflow.generate import generate

from ..conftest import poiflow


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


def test_vendor_noise_sets_a_noise_of_every_vendor_feed(tmp_path: Path) -> None:
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
    said = poiflow("generate", "--places", "10", "--vendor-noise", "jiter_m=3", "-o", "x")
    assert said.returncode != 0
    assert "Did you mean 'jitter_m'?" in said.stdout + said.stderr
