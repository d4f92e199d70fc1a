"""``poiflow explain RUN PLACE``: a golden place and its records beside it."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from poiflow.conflate.geo import haversine_m
from poiflow.errors import InputError
from poiflow.pipeline.place_story import ATTRIBUTES, PROVENANCE, explain_place

from ..conftest import poiflow


def _largest_place(folder: Path) -> str:
    sizes = (
        pl.read_parquet(folder / "membership.parquet")
        .group_by("place_id")
        .len()
        .sort("len", "place_id", descending=[True, False])
    )
    return str(sizes["place_id"][0])


def test_a_place_shows_its_records_and_what_it_took_from_each(conflated: Path) -> None:
    place_id = _largest_place(conflated)
    story = explain_place(conflated, place_id)
    assert story.place["id"] == place_id
    members = (
        pl.read_parquet(conflated / "membership.parquet")
        .filter(pl.col("place_id") == place_id)
        .sort("source", "id")
    )
    assert [(r["source"], r["id"]) for r in story.records] == members.select("source", "id").rows()
    # Each attribute the place has was taken from exactly one of its records, as its
    # provenance says.
    given = {
        ref["property"]: (ref["dataset"], ref["record_id"])
        for ref in story.place["sources"]
        if ref["property"]
    }
    took = {a: (r["source"], r["id"]) for r in story.records for a in r["gave"]}
    assert {PROVENANCE[a]: key for a, key in took.items()} == given
    # A record agrees with the place's name when it is the one the name came from.
    giver = next(r for r in story.records if "name" in r["gave"])
    assert giver["agrees"]["name"] is True
    # Distances and agreement, checked against the records themselves.
    records = pl.read_parquet(conflated / "records.parquet").join(
        members.drop("place_id"), on=["source", "id"], how="semi"
    )
    by_key = {(r["source"], r["id"]): r for r in records.iter_rows(named=True)}
    for shown in story.records:
        raw = by_key[(shown["source"], shown["id"])]
        if raw["lat"] is None or story.place["lat"] is None:
            assert shown["metres"] is None
        else:
            ends = (raw["lat"], raw["lon"], story.place["lat"], story.place["lon"])
            metres = float(haversine_m(*(np.array([v]) for v in ends))[0])
            assert shown["metres"] == pytest.approx(metres, abs=0.1)
            assert shown["agrees"]["location"] == (metres <= 50.0)
        phones = set(raw["phones"] or [])
        assert shown["agrees"]["phone"] == (
            None if not phones else bool(phones & set(story.place["phones"] or []))
        )
        category = (raw["categories"] or {}).get("primary")
        golden = (story.place["categories"] or {}).get("primary")
        assert shown["agrees"]["category"] == (None if category is None else category == golden)
        hours = raw["opening_hours"]
        assert shown["opening_hours"] == hours
        assert shown["agrees"]["opening_hours"] == (
            None if hours is None else hours == story.place["opening_hours"]
        )
        assert set(shown["agrees"]) == set(ATTRIBUTES)


def test_each_record_shows_its_strongest_link_within_the_place(conflated: Path) -> None:
    place_id = _largest_place(conflated)
    story = explain_place(conflated, place_id)
    keys = {(r["source"], r["id"]) for r in story.records}
    pairs = pl.read_parquet(conflated / "pairs.parquet").filter(
        pl.struct("left_source", "left_id").is_in(
            [{"left_source": s, "left_id": i} for s, i in keys]
        )
        & pl.struct("right_source", "right_id").is_in(
            [{"right_source": s, "right_id": i} for s, i in keys]
        )
    )
    for shown in story.records:
        key = (shown["source"], shown["id"])
        mine = [
            p
            for ls, li, rs, ri, p in pairs.select(
                "left_source", "left_id", "right_source", "right_id", "match_probability"
            ).iter_rows()
            if key in ((ls, li), (rs, ri))
        ]
        if mine:
            assert shown["link"] == pytest.approx(max(mine), abs=1e-6)
        else:
            assert shown["link"] is None


def test_a_record_names_its_place(conflated: Path) -> None:
    place_id = _largest_place(conflated)
    member = (
        pl.read_parquet(conflated / "membership.parquet")
        .filter(pl.col("place_id") == place_id)
        .row(0, named=True)
    )
    by_record = explain_place(conflated, f"{member['source']}:{member['id']}")
    assert by_record == explain_place(conflated, place_id)
    assert explain_place(conflated, (member["source"], member["id"])) == by_record
    with pytest.raises(InputError, match=r"as SOURCE:ID or \(source, id\), not None"):
        explain_place(conflated, None)  # type: ignore[arg-type]
    with pytest.raises(InputError, match=f"no record '{member['source']}:nothing'"):
        explain_place(conflated, (member["source"], "nothing"))


def test_an_unknown_place_is_named_with_the_nearest_id(conflated: Path) -> None:
    place_id = _largest_place(conflated)
    typo = place_id[:-1] + ("0" if place_id[-1] != "0" else "1")
    with pytest.raises(InputError, match=f"no place '{typo}'.*Did you mean '{place_id}'"):
        explain_place(conflated, typo)
    with pytest.raises(InputError, match="no record"):
        explain_place(
            conflated, f"{pl.read_parquet(conflated / 'membership.parquet')['source'][0]}:nothing"
        )


def test_the_cli_shows_a_place(conflated: Path) -> None:
    place_id = _largest_place(conflated)
    shown = poiflow("explain", str(conflated), place_id)
    assert shown.returncode == 0, shown.stderr
    assert "the place took" in shown.stdout
    assert "How often each source is right" in shown.stdout
    assert "judged by two sources alone" not in shown.stdout  # three sources judge each other
    found = poiflow("explain", str(conflated), place_id, "--json")
    assert found.returncode == 0, found.stderr
    story = json.loads(found.stdout)
    assert story["place"]["id"] == place_id
    assert len(story["records"]) == story["place"]["members"]
    assert all(0 <= r["link"] <= 1 for r in story["records"] if r["link"] is not None)
    assert not math.isnan(story["place"]["confidence"])
    mixed = poiflow("explain", str(conflated), place_id, "--model", "default")
    assert mixed.returncode == 1
    assert "name two records" in mixed.stdout + mixed.stderr
    # On 80 columns, a record's key and a long value are broken over lines, not cut short.
    narrow = subprocess.run(
        [sys.executable, "-m", "poiflow", "explain", str(conflated), place_id],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "80"},
        timeout=300,
    )
    assert narrow.returncode == 0, narrow.stderr
    assert narrow.stdout.startswith(f"{place_id}: ")
    assert "…" not in narrow.stdout


def test_a_place_shows_whose_opening_hours_it_took_and_who_says_otherwise(
    conflated: Path,
) -> None:
    records = pl.read_parquet(
        conflated / "records.parquet", columns=["source", "id", "opening_hours"]
    )
    membership = pl.read_parquet(conflated / "membership.parquet")
    # A place whose records give two different opening hours (one of them out of date).
    split = (
        records.join(membership, on=["source", "id"])
        .drop_nulls("opening_hours")
        .group_by("place_id")
        .agg(pl.col("opening_hours").n_unique().alias("hours"))
        .filter(pl.col("hours") > 1)
        .sort("place_id")
    )
    assert split.height > 0
    story = explain_place(conflated, split["place_id"][0])
    giver = next(r for r in story.records if "opening_hours" in r["gave"])
    assert giver["opening_hours"] == story.place["opening_hours"]
    assert giver["agrees"]["opening_hours"] is True
    assert any(r["agrees"]["opening_hours"] is False for r in story.records)
