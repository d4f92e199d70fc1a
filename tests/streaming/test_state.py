"""Applying edits to the golden places: what each kind of edit does, that nothing happens
twice, that snapshots restart where they stopped, and that the stream and the batch agree
on a generated day of edits."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pyarrow.parquet as pq
import pytest

from poiflow.conflate.ids import place_id_for
from poiflow.conflate.merge import MergeConfig
from poiflow.errors import ConfigError, OutputError
from poiflow.generate.edits import NEW_SOURCE, edited_sources, generate_edits
from poiflow.pipeline import conflate
from poiflow.sources import flat_place
from poiflow.streaming import Edit, StreamState, edit_message, parse_edit

from .releases import later_sources

T0 = datetime(2026, 11, 30, 8, tzinfo=UTC)


def edit(edit_id: str, op: str, place: dict[str, Any], minutes: float = 0) -> Edit:
    return parse_edit(edit_message(edit_id, op, T0 + timedelta(minutes=minutes), place))


@pytest.fixture
def state(conflated: Path) -> StreamState:
    return StreamState(conflated)


def singles(conflated: Path) -> list[dict[str, Any]]:
    """Records alone in their place, with coordinates and a phone-less simple shape."""
    membership = pl.DataFrame(pq.read_table(conflated / "membership.parquet"))
    alone = membership.filter(pl.len().over("place_id") == 1)
    records = pl.DataFrame(
        pq.read_table(conflated / "records.parquet", columns=["source", "id", "lat", "lon"])
    ).join(alone, on=["source", "id"])
    return records.filter(pl.col("lat").is_not_null()).sort("source", "id").to_dicts()


def flat(state: StreamState, source: str, record_id: str) -> dict[str, Any]:
    """A record of the state in the flat place format (what a source would send)."""
    row = state.index.records.take([state.index.twin[(source, record_id)]]).to_pylist()[0]
    return flat_place(row)


def place_of(state: StreamState, source: str, record_id: str) -> str:
    index = state.index
    return str(index.place_ids[index.place_of[index.twin[(source, record_id)]]])


def place(state: StreamState, place_id: str) -> dict[str, Any]:
    rows = [p for p in state.places.to_pylist() if p["id"] == place_id]
    assert len(rows) == 1, place_id
    return rows[0]


def test_an_upsert_updates_its_place_and_a_replay_changes_nothing(
    state: StreamState, conflated: Path
) -> None:
    record = singles(conflated)[0]
    key = (record["source"], record["id"])
    where = place_of(state, *key)
    changed = {**flat(state, *key), "phone": "+358 9 555 0101"}
    batch = [edit("e1", "upsert", changed)]
    out = state.apply(batch)
    assert out.counts["applied"] == 1
    assert not out.dead
    assert [(e.place_id, e.change, e.edit_ids) for e in out.events] == [(where, "updated", ["e1"])]
    assert "phones" in out.events[0].attributes
    assert place(state, where)["phones"] == ["+35895550101"]
    again = state.apply(batch)  # the same edit, replayed
    assert again.events == []
    assert again.counts["duplicate"] == 1
    late = state.apply([edit("e0", "upsert", {**changed, "phone": "+358 9 555 9999"}, -5)])
    assert late.events == []
    assert late.counts["stale"] == 1
    assert place(state, where)["phones"] == ["+35895550101"]


def test_close_delete_and_an_older_upsert_after_a_delete(
    state: StreamState, conflated: Path
) -> None:
    first, second = singles(conflated)[1:3]
    a, b = (first["source"], first["id"]), (second["source"], second["id"])
    place_a, place_b = place_of(state, *a), place_of(state, *b)
    resurrect = {**flat(state, *b)}
    out = state.apply(
        [
            edit("c1", "close", {"source": a[0], "id": a[1]}, 1),
            edit("d1", "delete", {"source": b[0], "id": b[1]}, 1),
        ]
    )
    changes = {e.place_id: (e.change, e.edit_ids) for e in out.events}
    assert changes == {place_a: ("closed", ["c1"]), place_b: ("removed", ["d1"])}
    assert place(state, place_a)["operating_status"] == "permanently_closed"
    assert place_b not in state.places.column("id").to_pylist()
    assert b not in state.index.twin
    # An upsert made before the delete arrives late: the record stays deleted.
    late = state.apply([edit("u0", "upsert", resurrect, 0)])
    assert late.counts["stale"] == 1
    assert late.events == []
    assert b not in state.index.twin


def test_new_records_join_their_place_or_start_one(state: StreamState, conflated: Path) -> None:
    record = singles(conflated)[3]
    key = (record["source"], record["id"])
    where = place_of(state, *key)
    copy = {**flat(state, *key), "source": NEW_SOURCE, "id": "U1"}
    far = {
        **copy,
        "id": "U2",
        "name": "Kuura Bistro 9",
        "lat": copy["lat"] + 0.05,
        "lon": copy["lon"] + 0.05,
        "phone": None,
        "website": None,
    }
    out = state.apply([edit("n1", "upsert", copy), edit("n2", "upsert", far)])
    assert place_of(state, NEW_SOURCE, "U1") == where
    created = place_id_for(NEW_SOURCE, "U2")
    assert place_of(state, NEW_SOURCE, "U2") == created
    changes = {e.place_id: e for e in out.events}
    assert changes[where].change == "updated"
    assert "sources" in changes[where].attributes
    assert changes[created].change == "created"
    assert changes[created].edit_ids == ["n2"]
    assert place(state, where)["members"] == 2


def test_two_sources_announcing_one_new_place_in_one_batch_give_one_place(
    state: StreamState, conflated: Path
) -> None:
    record = singles(conflated)[4]
    base = flat(state, record["source"], record["id"])
    new = {
        **base,
        "name": "Halla Studio 77",
        "lat": base["lat"] + 0.04,
        "lon": base["lon"] + 0.04,
        "phone": "+358 9 777 0077",
        "website": None,
        "source": NEW_SOURCE,
    }
    out = state.apply(
        [edit("x1", "upsert", {**new, "id": "U10"}), edit("x2", "upsert", {**new, "id": "U11"})]
    )
    assert place_of(state, NEW_SOURCE, "U10") == place_of(state, NEW_SOURCE, "U11")
    assert [e.change for e in out.events] == ["created"]
    assert sorted(out.events[0].edit_ids) == ["x1", "x2"]


def test_an_upsert_then_a_close_in_one_batch_keeps_both(
    state: StreamState, conflated: Path
) -> None:
    record = singles(conflated)[5]
    key = (record["source"], record["id"])
    where = place_of(state, *key)
    out = state.apply(
        [
            edit("u1", "upsert", {**flat(state, *key), "phone": "+358 9 555 0202"}, 1),
            edit("c1", "close", {"source": key[0], "id": key[1]}, 2),
        ]
    )
    now = place(state, where)
    assert now["phones"] == ["+35895550202"]
    assert now["operating_status"] == "permanently_closed"
    assert [(e.change, e.edit_ids) for e in out.events] == [("closed", ["u1", "c1"])]


def test_bad_edits_go_to_the_dead_letters_with_their_reason(
    state: StreamState, conflated: Path
) -> None:
    record = singles(conflated)[6]
    good = flat(state, record["source"], record["id"])
    out = state.apply(
        [
            edit("b1", "close", {"source": "osm", "id": "no-such-record"}),
            edit("b2", "upsert", {**good, "colour": "red"}),
            edit("b3", "upsert", {**good, "name": ""}),
            edit("b4", "upsert", {**good, "lat": 123.0, "id": "fresh"}),
            edit("b5", "delete", {"source": NEW_SOURCE, "id": "never"}),
        ]
    )
    reasons = {e.edit_id: reason for e, reason in out.dead}
    assert set(reasons) == {"b1", "b2", "b3", "b4", "b5"}, reasons
    assert "no such record" in reasons["b1"]
    assert "no such record" in reasons["b5"]
    assert "colour" in reasons["b2"]
    assert "name" in reasons["b3"]
    assert "lat" in reasons["b4"]
    assert out.events == []
    assert out.counts["dead"] == 5
    assert out.counts["applied"] == 0


def test_a_batch_of_anything_but_edits_is_refused_before_it_changes_a_thing(
    state: StreamState, conflated: Path, tmp_path: Path
) -> None:
    record = singles(conflated)[2]
    changed = {**flat(state, record["source"], record["id"]), "phone": "+358 9 555 0199"}
    good = edit("g1", "upsert", changed)
    before = state.places
    message = edit_message("g1", "upsert", T0, changed)
    with pytest.raises(ConfigError, match=r"edits\[1\]: bytes, not an Edit \(parse_edit"):
        state.apply([good, message])  # type: ignore[list-item]
    with pytest.raises(ConfigError, match=r"a list of edits, \[edit\], not one edit"):
        state.apply(good)  # type: ignore[arg-type]
    assert state.places.equals(before)
    assert state.stamps == {}
    # The good edit is applied once given as it should be: the refusal had kept nothing.
    assert state.apply([good]).counts["applied"] == 1
    # Snapshots where a file is: said, and nothing written.
    with pytest.raises(OutputError, match="cannot write the stream's snapshots here"):
        state.save(conflated / "places.parquet")
    snapshot = state.save(str(tmp_path / "state"))  # type: ignore[arg-type]
    assert StreamState.open(str(conflated), str(tmp_path / "state")).folder == snapshot  # type: ignore[arg-type]


def test_a_snapshot_restarts_where_it_stopped(
    state: StreamState, conflated: Path, tmp_path: Path
) -> None:
    edits = [
        parse_edit(edit_message(e["edit_id"], e["op"], e["time"], e["place"]))
        for e in generate_edits(conflated.parent / "sources", 120, 3)
    ]
    state.apply(edits[:80])
    snapshot = state.save(tmp_path / "state")
    assert (tmp_path / "state" / "CURRENT").read_text().strip() == snapshot.name
    again = StreamState.open(conflated, tmp_path / "state")
    assert again.folder == snapshot
    # What the run learnt of how much of the world each source covers (places merge by
    # it), kept from the run's run.json through the snapshot.
    covered = json.loads((conflated / "run.json").read_text())["place_coverage"]
    assert dict(state.merge.whole) == covered["whole"]
    assert dict(again.merge.split) == covered["split"]
    assert again.places.equals(state.places)
    assert again.stamps == state.stamps
    assert again.deleted == state.deleted
    replay = again.apply(edits[:80])  # the batch a crash before the commit replays
    assert replay.events == []
    assert replay.counts["applied"] == 0
    rest_a, rest_b = state.apply(edits[80:]), again.apply(edits[80:])
    assert [e.event_id for e in rest_a.events] == [e.event_id for e in rest_b.events]
    assert again.places.equals(state.places)
    # The snapshot is an output: the matcher (and so poiflow serve) reads it.
    assert (snapshot / "places.parquet").exists()
    assert (snapshot / "model.json.gz").exists()
    state.save(tmp_path / "state")
    state.save(tmp_path / "state")
    assert len(list((tmp_path / "state").glob("snapshot-*"))) == 2  # older ones are dropped


def test_a_later_run_under_the_snapshots_is_started_from_with_the_streams_later_edits(
    state: StreamState, conflated: Path, tmp_path: Path
) -> None:
    """The sources' next release, run into the output, must not stay hidden behind the
    stream's snapshots of the last one: the places start from the later run, and each
    record the stream edited keeps its edit where the edit is later than the run's
    record (per record, the latest source time wins)."""
    one, two, three, four = ((r["source"], r["id"]) for r in singles(conflated)[5:9])
    state.apply(
        [
            edit("p1", "upsert", {**flat(state, *one), "phone": "+358 9 555 0101"}),
            edit("d2", "delete", {"source": two[0], "id": two[1]}),
            edit("n5", "upsert", {**flat(state, *one), "source": NEW_SOURCE, "id": "U5"}),
            edit("p3", "upsert", {**flat(state, *three), "phone": "+358 9 555 0303"}),
        ]
    )
    snapshot = state.save(tmp_path / "state")
    renamed = f"{flat(state, *four)['name']} Uusi"
    later = tmp_path / "later"
    conflate(
        later_sources(
            conflated,
            tmp_path / "release-2",
            {
                # The source changed this record after the stream's edit of it.
                three: {"phone": "+358 9 555 0999", "update_time": "2026-12-01T00:00:00Z"},
                four: {"name": renamed},  # a change only the run knows
            },
        ),
        later,
        workers=1,
    )

    live = StreamState.open(later, tmp_path / "state")
    assert live.rebased is not None
    assert live.rebased[0] == snapshot
    carried = live.rebased[1]
    assert (carried.counts["applied"], carried.counts["stale"]) == (3, 1)
    assert place(live, place_of(live, *four))["names"]["primary"] == renamed
    assert place(live, place_of(live, *one))["phones"] == ["+35895550101"]
    assert two not in live.index.twin
    assert place_of(live, NEW_SOURCE, "U5") == place_of(live, *one)
    assert place(live, place_of(live, *three))["phones"] == ["+35895550999"]
    # A replay of the edits the stream had applied changes nothing.
    again = live.apply([edit("p1", "upsert", {**flat(state, *one), "phone": "+358 9 555 0101"})])
    assert (again.counts["applied"], again.events) == (0, [])

    # Saved, the later run is what the snapshots grow from: the next start is no rebase.
    after = live.save(tmp_path / "state")
    reopened = StreamState.open(later, tmp_path / "state")
    assert (reopened.rebased, reopened.folder) == (None, after)
    assert reopened.places.equals(live.places)


COMPARED = [
    "names",
    "categories",
    "address",
    "phones",
    "websites",
    "brand",
    "opening_hours",
    "operating_status",
    "update_time",
    "lat",
    "lon",
    "members",
    "attribute_confidence",
]


def test_a_day_through_the_stream_gives_the_places_a_batch_over_the_same_edits_gives(
    conflated: Path, tmp_path: Path
) -> None:
    sources = conflated.parent / "sources"
    day = generate_edits(sources, 600, 11)
    kinds = {e["op"] for e in day}
    assert kinds == {"upsert", "close", "delete"}
    assert any(e["edit_id"].endswith("-late") for e in day)  # late edits are in the day
    state = StreamState(conflated)
    messages = [edit_message(e["edit_id"], e["op"], e["time"], e["place"]) for e in day]
    for start in range(0, len(messages), 150):
        out = state.apply([parse_edit(m) for m in messages[start : start + 150]])
        assert not out.dead, out.dead[:3]
    streamed = state.save(tmp_path / "state")
    batch = tmp_path / "batch"
    edited = edited_sources(sources, day, tmp_path / "edited")
    # The batch is told what the stream learnt of each source from the run it started
    # from (as a pipeline's stages.merge may say it): the same statistics, the same places.
    # Of the new source, the stream knows nothing: its places alone are as whole as the
    # least whole source's, and no place lacks a record of it split off.
    known = MergeConfig(
        precision_m=state.merge.precision_m,
        accuracy=state.merge.accuracy,
        whole={**state.merge.whole, NEW_SOURCE: min(state.merge.whole.values())},
        split={**state.merge.split, NEW_SOURCE: 0.0},
    )
    conflate(edited, batch, workers=1, previous=conflated, merging=known)
    shutil.rmtree(tmp_path / "edited")

    members = {}
    for name, folder in (("stream", streamed), ("batch", batch)):
        members[name] = pl.DataFrame(pq.read_table(folder / "membership.parquet"))
    joined = members["stream"].join(members["batch"], on=["source", "id"], how="full")
    assert joined.filter(
        pl.col("place_id").is_null() | pl.col("place_id_right").is_null()
    ).is_empty()
    agree = (joined["place_id"] == joined["place_id_right"]).mean()
    assert agree >= 0.99, agree  # the stream re-decides edited records; the batch all

    def groups(frame: pl.DataFrame) -> pl.DataFrame:
        return frame.group_by("place_id").agg(pl.concat_str("source", "id").sort().alias("m"))

    same = groups(members["stream"]).join(groups(members["batch"]), on=["place_id", "m"])
    assert same.height >= 0.98 * members["batch"]["place_id"].n_unique()
    columns = ["id", *COMPARED, "confidence"]
    stream_places = pl.DataFrame(pq.read_table(streamed / "places.parquet", columns=columns))
    batch_places = pl.DataFrame(pq.read_table(batch / "places.parquet", columns=columns))
    both = stream_places.join(batch_places, on="id", suffix="_batch").filter(
        pl.col("id").is_in(same["place_id"].implode())
    )
    assert both.height == same.height
    # The batch learnt those of the edits' new source too, which the stream weighs as the
    # least precise, least agreeing and least often right: only places with a record of
    # that source may have another point, first phone, category, address or confidence;
    # every other place is the same.
    new_sources = set(members["batch"]["source"].unique()) - set(state.merge.accuracy["name"])
    assert new_sources == {NEW_SOURCE}
    with_new = members["batch"].filter(pl.col("source").is_in(list(new_sources)))["place_id"]
    for column in COMPARED:
        differ = both.filter(pl.col(column).ne_missing(pl.col(f"{column}_batch")))
        if column in ("lat", "lon", "phones", "categories", "address", "attribute_confidence"):
            differ = differ.filter(~pl.col("id").is_in(with_new.implode()))
        assert differ.is_empty(), (column, differ.select("id", column, f"{column}_batch").head(3))
    # Confidence grows with match probabilities, which the batch scores with statistics of
    # the new records too (copies of a name make it more common, so weaker evidence); the
    # stream keeps the run's. Places drift by that alone: most hardly, a few more (a name's
    # count in its area is small, and one copy moves it further than its count in all).
    drift = (both["confidence"] - both["confidence_batch"]).abs()
    assert drift.quantile(0.95) <= 0.02, drift.quantile(0.95)
    assert drift.max() <= 0.25, drift.max()


def test_records_of_one_place_scored_against_each_other_take_turns() -> None:
    from poiflow.streaming.placing import turns as turns_of

    place_of = np.array([0, 0, 1, 0, 1])  # rows 0, 1 and 3 share a place; 2 and 4 another
    turns = turns_of(
        [0, 1, 2, None, 4],
        [np.array([1, 2]), np.array([0]), np.array([4, 0]), np.array([0, 1]), np.array([3])],
        place_of,
    )
    # 0 and 1 were scored against each other in their place; 2 against 4 in theirs; 4
    # against a row of another place, and the new record (no old version) against anyone.
    assert turns[0] != turns[1]
    assert turns[2] != turns[4]
    assert turns[3] == 0
    assert sorted(turns) == [0, 0, 0, 1, 1]


def test_edits_keep_to_the_decisions_the_run_was_given(decided: dict[str, Any]) -> None:
    state = StreamState(decided["out"])
    a, b, c, d, y = (decided[k] for k in "abcdy")
    apart, together = place_of(state, *b), place_of(state, *c)
    assert place_of(state, *a) != apart
    assert place_of(state, *d) == together
    # C moves across town under another name: the model would call it a place of its
    # own, the decision keeps it with D. A is edited: it still cannot join B's place.
    moved = {
        **flat(state, *c),
        "name": "Zyxwv Qwerty Workshop",
        "lat": -45.0,
        "lon": -120.0,
        "phone": None,
        "website": None,
    }
    renamed = {**flat(state, *a), "phone": "+358 9 555 0199"}
    new = {"source": "app", "id": "report-9", "name": "Kuura Bistro 9", "lat": 10.0, "lon": 10.0}
    state.apply(
        [edit("d1", "upsert", moved), edit("d2", "upsert", renamed), edit("d3", "upsert", new)]
    )
    assert place_of(state, *c) == place_of(state, *d)
    assert place_of(state, *a) != place_of(state, *b)
    # A record the run lacked, decided one place with Y, joins Y's place when it comes.
    assert place_of(state, "app", "report-9") == place_of(state, *y)
