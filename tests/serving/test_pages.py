"""The pages of ``poiflow serve``: the map page (search, results on a map, a place with its
sources) and the review page (labelling), in a real headless Chromium against a real
server; screenshots are kept in out/test-artifacts."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow.parquet as pq
import pytest

from poiflow.conflate.active import read_labels

from ..conftest import ROOT
from .test_api import TOKEN, get, serving

pytestmark = pytest.mark.server

ARTIFACTS = ROOT / "out" / "test-artifacts"


@pytest.fixture(scope="module")
def site(conflated: Path) -> Iterator[str]:
    with serving(conflated, TOKEN) as base:
        yield base


def shared_place(folder: Path) -> tuple[str, str, list[str]]:
    """A place that three sources describe: its id, its name, its member records."""
    membership = pl.DataFrame(pq.read_table(folder / "membership.parquet"))
    sizes = membership.group_by("place_id").len().filter(pl.col("len") == 3)
    place_id = sizes.sort("place_id")["place_id"][0]
    places = pq.read_table(folder / "places.parquet", columns=["id", "names"]).to_pylist()
    name = next(p["names"]["primary"] for p in places if p["id"] == place_id)
    members = membership.filter(pl.col("place_id") == place_id)
    return place_id, name, [f"{s}/{i}" for s, i in members.select("source", "id").iter_rows()]


def test_the_pages_are_whole_documents_that_need_nothing_from_elsewhere(site: str) -> None:
    import urllib.request

    for path in ("/", "/review"):
        with urllib.request.urlopen(f"{site}{path}", timeout=10) as answer:
            assert answer.headers["Content-Type"].startswith("text/html")
            html = answer.read().decode()
        assert "L.map(" in html  # Leaflet is inlined ...
        assert not re.search(r"<script[^>]+src=", html)  # ... and nothing is fetched
        assert not re.search(r"<link[^>]+stylesheet", html)


def test_review_questions_come_one_by_one_until_done(site: str) -> None:
    status, first = get(site, "/review/question/0")
    assert status == 200
    assert first["index"] == 0
    assert first["total"] > 0
    assert f"{first['left_source']}/{first['left_id']}" == first["left"]["record"]
    assert 0 <= first["probability"] <= 1
    assert get(site, f"/review/question/{first['total']}") == (200, {"done": True})
    assert get(site, "/review/question/-1")[0] == 422


@pytest.mark.browser
def test_the_map_page_finds_a_place_and_shows_its_sources(
    conflated: Path, site: str, browser_page: Any
) -> None:
    place_id, name, members = shared_place(conflated)
    page = browser_page
    page.goto(f"{site}/")
    page.wait_for_selector("body[data-ready='1']", timeout=30_000)
    assert int(page.evaluate("document.body.dataset.markers")) > 100  # a first page of places
    page.keyboard.type(name)  # the search box has the focus from the start
    # The results of the whole name (those of a prefix typed on the way may come first).
    page.wait_for_function(f"document.body.dataset.query === {json.dumps(name)}", timeout=10_000)
    found = page.locator("#results li")
    assert found.count() > 0
    names = [found.nth(i).locator("b").inner_text() for i in range(found.count())]
    assert name.lower() in [n.lower() for n in names]
    # Move to the place with the keyboard, and open it.
    hits = get(site, "/search", q=name, limit=20)[1]
    position = [h["id"] for h in hits["results"]].index(place_id)
    for _ in range(position):
        page.keyboard.press("ArrowDown")
    page.keyboard.press("Enter")
    page.wait_for_selector(f"body[data-place='{place_id}']", timeout=10_000)
    details = page.inner_text("#details")
    assert place_id in details
    assert sorted(page.locator("#sources li").all_inner_texts()) == sorted(members)
    assert page.locator("#provenance tr").count() >= 3  # names, categories, geometry at least
    hours = get(site, f"/places/{place_id}")[1]["opening_hours"]
    assert (hours in details) if hours else ("hours" not in details)
    # Only the places open now, each saying so.
    every = int(page.evaluate("document.body.dataset.results"))
    page.check("#open")
    page.wait_for_selector("body[data-open='1']", timeout=10_000)
    shown = page.locator("#results li")
    assert int(page.evaluate("document.body.dataset.results")) == shown.count() <= every
    for i in range(shown.count()):
        assert shown.nth(i).locator(".open").inner_text().startswith("open")
    page.uncheck("#open")
    page.wait_for_selector("body[data-open='0']", timeout=10_000)
    assert page.locator("#results li").count() == every
    assert page.poiflow_errors == []
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "serve-map.png"
    page.wait_for_timeout(500)  # the map has stopped moving
    page.screenshot(path=str(shot))
    assert shot.stat().st_size > 30_000


def _listed(page: Any) -> list[tuple[str, str]]:
    """The map page's results as it shows them: (name, distance)."""
    rows = page.locator("#results li")
    return [
        (rows.nth(i).locator("b").inner_text(), rows.nth(i).locator(".meta").last.inner_text())
        for i in range(rows.count())
    ]


def _nearest(site: str, point: str) -> list[tuple[str, str]]:
    """What the API lists nearest ``point`` ("lat,lon") with no words, as the page shows it."""
    lat, lon = point.split(",")
    hits = get(site, "/search", q="", lat=lat, lon=lon, limit=20)[1]["results"]
    return [(h["name"] or h["id"], f"{h['distance_km']:.1f} km") for h in hits]


@pytest.mark.browser
def test_the_map_page_lists_the_places_nearest_its_centre_and_follows_the_map(
    site: str, browser_page: Any
) -> None:
    page = browser_page
    page.goto(f"{site}/")
    page.wait_for_selector("body[data-ready='1']", timeout=30_000)
    # No words: "near the map's centre" alone lists the nearest places, nearest first.
    page.check("#near")
    page.wait_for_function("!!document.body.dataset.near", timeout=10_000)
    first = page.evaluate("document.body.dataset.near")
    listed = _listed(page)
    assert len(listed) == 20
    assert listed == _nearest(site, first)
    distances = [float(d.split()[0]) for _, d in listed]
    assert distances == sorted(distances)
    # Dragged, the map is asked again at its new centre; the results are not fitted to.
    area = page.locator("#map").bounding_box()
    x, y = area["x"] + area["width"] / 2, area["y"] + area["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + 250, y + 120, steps=8)
    page.mouse.up()
    page.wait_for_function(f"document.body.dataset.near !== {json.dumps(first)}", timeout=10_000)
    second = page.evaluate("document.body.dataset.near")
    assert _listed(page) == _nearest(site, second) != listed
    # Unticked with an empty box, nothing is asked and nothing is listed.
    page.uncheck("#near")
    page.wait_for_function("document.body.dataset.results === '0'", timeout=10_000)
    assert page.poiflow_errors == []


@pytest.mark.browser
def test_the_review_page_stores_answers_only_with_the_token(
    conflated: Path, site: str, browser_page: Any
) -> None:
    labels = conflated / "labels.csv"
    before = read_labels(labels).height
    page = browser_page
    page.goto(f"{site}/review")
    page.wait_for_selector("body[data-question='0']", timeout=30_000)
    first = get(site, "/review/question/0")[1]
    assert first["left"]["record"] in page.inner_text("#left")
    page.keyboard.press("y")  # no token yet: refused, and said so
    page.wait_for_selector("body[data-refused='401']", timeout=10_000)
    assert "write token" in page.inner_text("#why")
    assert read_labels(labels).height == before
    page.fill("#token", TOKEN)
    page.keyboard.press("Enter")
    page.keyboard.press("y")
    page.wait_for_selector("body[data-question='1']", timeout=10_000)
    page.keyboard.press("n")
    page.wait_for_selector("body[data-question='2']", timeout=10_000)
    stored = read_labels(labels)
    assert stored.height == before + 2
    last = stored.tail(2).to_dicts()
    assert [row["label"] for row in last] == ["match", "different"]
    assert (last[0]["left_source"], last[0]["left_id"]) == (first["left_source"], first["left_id"])
    # The refused answer is the one console error (the browser logs the 401 itself).
    assert [e for e in page.poiflow_errors if "401" not in e] == []
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.wait_for_timeout(500)
    page.screenshot(path=str(ARTIFACTS / "serve-review.png"))
