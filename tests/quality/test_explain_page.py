"""``poiflow explain ... --html``: a pair's story as a page, its score as a waterfall."""

from __future__ import annotations

import html
import re
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from poiflow.pipeline.explaining import explain_pair
from poiflow.quality.explain_page import write_explain_page


@pytest.fixture(scope="module")
def story(conflated: Path) -> dict[str, Any]:
    pair = (
        pl.read_parquet(conflated / "pairs.parquet")
        .filter(pl.col("match_probability").is_between(0.2, 0.98))
        .sort("left_id", "right_id")
        .row(0, named=True)
    )
    left = f"{pair['left_source']}:{pair['left_id']}"
    right = f"{pair['right_source']}:{pair['right_id']}"
    return explain_pair(conflated, left, right).as_dict()


def bars(page: str) -> list[tuple[str, float]]:
    """Each bar of the waterfall: its class and the change it is labelled with."""
    found = re.findall(r'<rect class="(\w+)"[^>]*><title>([+-][\d.]+) bits</title>', page)
    return [(kind, float(change)) for kind, change in found]


def test_the_waterfall_walks_from_the_start_to_the_score(
    story: dict[str, Any], tmp_path: Path
) -> None:
    path = write_explain_page(story, tmp_path / "why.html")
    page = path.read_text()
    explanation = story["explanation"]
    drawn = bars(page)
    # The start, then the parts (small ones summed into one bar), then the score.
    assert drawn[0] == ("total", pytest.approx(explanation["start_bits"], abs=0.01))
    assert drawn[-1] == ("total", pytest.approx(explanation["total_bits"], abs=0.01))
    steps = drawn[1:-1]
    assert sum(change for _, change in steps) == pytest.approx(
        explanation["total_bits"] - explanation["start_bits"], abs=0.05
    )
    assert all((kind == "up") == (change > 0) for kind, change in steps)
    assert html.escape(story["verdict"]) in page
    assert story["records"][0]["id"] in page
    # Nothing fetched: one file to share (a record's web address is shown as text only).
    assert not re.search(r"""(?:src|href)\s*=\s*["']?https?:|url\(\s*["']?https?:""", page)
    assert not list(tmp_path.glob(".*.tmp"))


@pytest.mark.browser
def test_the_page_loads_in_chromium(
    story: dict[str, Any], tmp_path: Path, browser_page: Any
) -> None:
    path = write_explain_page(story, tmp_path / "why.html")
    browser_page.goto(path.as_uri())
    assert browser_page.locator("svg.waterfall rect").count() == len(bars(path.read_text()))
    assert browser_page.poiflow_errors == []
