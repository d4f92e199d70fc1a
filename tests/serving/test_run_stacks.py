"""The points a run withheld as a geocoder's centres stay withheld from the records
matched against it later: a request's, a feed's and a stream's few records cannot show a
stack of their own."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

import polars as pl
import pyarrow.parquet as pq
import pytest

from poiflow.normalize.points import POINT_FIELD, KnownStacks
from poiflow.serving.matching import Match, MatchIndex
from poiflow.streaming import StreamState, edit_message, parse_edit

from ..conftest import moved_to_town_centres


class Stacked(NamedTuple):
    run: Path
    moved: list[dict[str, Any]]  # the moved records, in the flat place format
    blank: list[dict[str, Any]]  # the same records without their points


@pytest.fixture(scope="module")
def stacked(tmp_path_factory: pytest.TempPathFactory) -> Stacked:
    """A run of a world whose last source has every fifth located record with a town at
    its town's centre (the run withholds those points), and those records."""
    from poiflow.generate import generate
    from poiflow.pipeline import conflate

    folder = tmp_path_factory.mktemp("stacked")
    made = generate(1500, 3, 21, folder / "sources")
    last = made.sources[-1]
    ids = moved_to_town_centres(last, made.sources, last)
    conflate(made.sources, folder / "out", workers=1)
    # Those the run withheld (a town of fewer records is no stack).
    held = pl.read_parquet(folder / "out" / "quarantine.parquet")
    withheld = held.filter(pl.col("field") == POINT_FIELD)["id"]
    assert 0.8 * len(ids) <= withheld.len() <= len(ids)
    frame = pl.read_csv(last).filter(pl.col("id").cast(pl.String).is_in(withheld.implode()))
    moved = [
        {"source": last.stem, **{k: v for k, v in row.items() if v is not None}}
        for row in frame.with_columns(pl.col("id").cast(pl.String)).to_dicts()
    ]
    blank = [{k: v for k, v in row.items() if k not in ("lat", "lon")} for row in moved]
    return Stacked(folder / "out", moved, blank)


def answers(matches: list[Match]) -> list[tuple[Any, ...]]:
    return [(m.source, m.id, m.place_id, round(m.probability, 9), m.new_place) for m in matches]


def point_withheld(match: Match) -> bool:
    return any(value.startswith(f"{POINT_FIELD}: ") for value in match.withheld)


@pytest.mark.parametrize("size", [40, 120], ids=["rows", "table"])
def test_a_request_at_a_point_the_run_withheld_is_matched_without_it(
    stacked: Stacked, size: int
) -> None:
    """``POST /match``: a few records take the plain-Python path, many the tables'."""
    assert len(stacked.moved) >= size
    index = MatchIndex(stacked.run)
    assert len(index.stacks) >= 1
    moved, refused = index.match_objects(stacked.moved[:size])
    blank, _ = index.match_objects(stacked.blank[:size])
    assert not refused
    assert answers(moved) == answers(blank)
    assert all(point_withheld(m) for m in moved)
    # With the points kept, the records are looked for near their towns' centres.
    index.stacks = KnownStacks.none()
    kept, _ = index.match_objects(stacked.moved[:size])
    assert not any(point_withheld(m) for m in kept)
    differ = sum(a != b for a, b in zip(answers(kept), answers(blank), strict=True))
    assert differ >= 0.05 * size, differ


def test_only_the_source_that_stacked_a_point_loses_it(stacked: Stacked) -> None:
    index = MatchIndex(stacked.run)
    other = {**stacked.moved[0], "source": "another", "id": "x1"}
    (match,), _ = index.match_objects([other])
    assert not point_withheld(match)


def test_a_feed_of_a_few_records_at_the_runs_stacks_is_matched_without_them(
    stacked: Stacked, tmp_path: Path
) -> None:
    """Three records: too few for the feed alone to show a stack."""
    import poiflow

    source = stacked.moved[0]["source"]
    results = []
    for name, rows in (("moved", stacked.moved[:3]), ("blank", stacked.blank[:3])):
        feed = tmp_path / name / f"{source}.csv"
        feed.parent.mkdir()
        pl.DataFrame(rows).drop("source").write_csv(feed)
        results.append(poiflow.match(stacked.run, feed))
    moved, blank = results
    held = pl.DataFrame(pl.from_arrow(moved.quarantine))
    assert sorted(held.filter(pl.col("field") == POINT_FIELD)["id"]) == sorted(
        r["id"] for r in stacked.moved[:3]
    )
    assert moved.matches.equals(blank.matches)


def test_a_streamed_record_at_a_point_the_run_withheld_is_kept_without_it(
    stacked: Stacked, tmp_path: Path
) -> None:
    time = datetime(2026, 12, 5, 9, tzinfo=UTC)

    def upserted(rows: list[dict[str, Any]], state: StreamState) -> tuple[Any, ...]:
        edits = [
            parse_edit(edit_message(f"e{i}", "upsert", time, {**row, "id": f"new-{row['id']}"}))
            for i, row in enumerate(rows)
        ]
        out = state.apply(edits)
        index = state.index
        rows_of = [index.twin[(row["source"], f"new-{row['id']}")] for row in rows]
        records = index.take(rows_of, ["lat", "lon"]).to_pylist()
        places = index.place_ids[index.place_of[rows_of]].tolist()
        return out.counts["withheld_values"], records, places

    state = StreamState(stacked.run)
    withheld, records, places = upserted(stacked.moved[:20], state)
    assert withheld == 20
    assert all(r == {"lat": None, "lon": None} for r in records)
    _, _, as_blank = upserted(stacked.blank[:20], StreamState(stacked.run))
    assert places == as_blank
    # A snapshot carries the run's quarantine, and the stream restarted from it its stacks.
    snapshot = state.save(tmp_path / "state")
    quarantine = pq.read_table(snapshot / "quarantine.parquet")
    assert quarantine.equals(pq.read_table(stacked.run / "quarantine.parquet"))
    again = StreamState.open(stacked.run, tmp_path / "state")
    assert again.index.stacks.frame.equals(state.index.stacks.frame)
    assert len(again.index.stacks) == len(state.index.stacks)
