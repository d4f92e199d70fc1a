"""The serving store on a real Apache Cassandra (one node from Maven Central's jars,
started on 127.0.0.1 by ``scripts/cassandra_server.sh``): publish, idempotent re-publish,
a newer release removing what is gone, lookups by id, record and cell, and errors."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
import pytest

from poiflow.errors import ConfigError, InputError
from poiflow.serving.cassandra import CassandraStore, parse_hosts

from ..conftest import free_port, one_worker, poiflow, script_server
from .test_api import get, serving

pytestmark = [pytest.mark.cassandra, pytest.mark.server, one_worker("cassandra")]


@pytest.fixture(scope="module")
def cassandra(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Cassandra on 127.0.0.1 for this module; yields ``host:port`` of its CQL."""
    with script_server("cassandra", tmp_path_factory.mktemp("cassandra")) as where:
        yield where


def open_store(where: str, keyspace: str) -> CassandraStore:
    hosts, port = parse_hosts(where)
    return CassandraStore(hosts, port, keyspace)


def test_a_published_output_is_found_by_id_record_and_cell(cassandra: str, conflated: Path) -> None:
    places = pl.DataFrame(pq.read_table(conflated / "places.parquet").drop_columns(["geometry"]))
    membership = pl.DataFrame(pq.read_table(conflated / "membership.parquet"))
    with open_store(cassandra, "lookups") as store:
        report = store.publish(conflated)
        assert (report.places, report.records) == (places.height, membership.height)
        assert (report.removed_places, report.removed_records) == (0, 0)
        release = store.release()
        assert release is not None
        assert (release["places"], release["records"]) == (places.height, membership.height)
        shared = membership.group_by("place_id").len().filter(pl.col("len") == 3)
        place_id = shared.sort("place_id")["place_id"][0]
        found = store.place(place_id)
        assert found is not None
        expected = places.filter(pl.col("id") == place_id).to_dicts()[0]
        assert found["names"] == expected["names"]
        assert found["lat"] == pytest.approx(expected["lat"])
        assert found["confidence"] == pytest.approx(expected["confidence"])
        assert len(found["sources"]) == len(expected["sources"])  # provenance kept whole
        members = membership.filter(pl.col("place_id") == place_id)
        assert sorted((m["source"], m["id"]) for m in found["member_records"]) == sorted(
            members.select("source", "id").iter_rows()
        )
        source, record = members.row(0)[:2]
        assert store.place_of(source, record) == place_id
        near = store.places_near(expected["lat"], expected["lon"])
        assert place_id in {p["id"] for p in near}
        assert all(abs(p["lat"] - expected["lat"]) < 0.2 for p in near)  # only its cells
        # Values are bound, never formatted into CQL.
        assert store.place("x' OR '1'='1") is None
        assert store.place_of("osm", "'; DROP TABLE places; --") is None


def test_publishing_again_is_idempotent_and_a_newer_release_removes_what_is_gone(
    cassandra: str, conflated: Path, tmp_path: Path
) -> None:
    with open_store(cassandra, "releases") as store:
        first = store.publish(conflated)
        again = store.publish(conflated)
        assert (again.places, again.records) == (first.places, first.records)
        assert (again.removed_places, again.removed_records) == (0, 0)
        assert store._stored_places().height == first.places
        assert store._stored_members().height == first.records
        # A newer output: ten places gone with their records, one record moved elsewhere.
        newer = tmp_path / "newer"
        shutil.copytree(conflated, newer)
        places = pl.DataFrame(pq.read_table(newer / "places.parquet"))
        membership = pl.DataFrame(pq.read_table(newer / "membership.parquet"))
        sizes = membership.group_by("place_id").len()
        gone = sizes.filter(pl.col("len") == 1).sort("place_id")["place_id"][:10].to_list()
        pair = sizes.filter(pl.col("len") == 2).sort("place_id")["place_id"][:2].to_list()
        mover = membership.filter(pl.col("place_id") == pair[0]).sort("source", "id").row(0)
        membership = membership.filter(~pl.col("place_id").is_in(gone)).with_columns(
            pl.when((pl.col("source") == mover[0]) & (pl.col("id") == mover[1]))
            .then(pl.lit(pair[1]))
            .otherwise(pl.col("place_id"))
            .alias("place_id")
        )
        places.filter(~pl.col("id").is_in(gone)).write_parquet(newer / "places.parquet")
        membership.write_parquet(newer / "membership.parquet")
        report = store.publish(newer)
        assert (report.removed_places, report.removed_records) == (10, 10)
        assert all(store.place(place_id) is None for place_id in gone)
        assert store.place_of(mover[0], mover[1]) == pair[1]
        old = store.place(pair[0])
        assert old is not None
        assert (mover[0], mover[1]) not in {(m["source"], m["id"]) for m in old["member_records"]}
        assert store._stored_places().height == first.places - 10
        assert store._stored_members().height == first.records - 10


def test_errors_say_what_is_wrong_and_what_to_do(cassandra: str) -> None:
    with pytest.raises(InputError, match=r"cannot reach Cassandra at 127.0.0.1:\d+: start one"):
        CassandraStore(["127.0.0.1"], free_port())
    with pytest.raises(ConfigError, match="keyspace 'no-dashes'"):
        open_store(cassandra, "no-dashes")
    with (
        open_store(cassandra, "never_published") as store,
        pytest.raises(InputError, match="publish into it first"),
    ):
        store.place("p0000000000000001")
    with pytest.raises(ConfigError, match="same port"):
        parse_hosts("a:1,b:2")


def test_the_cli_publishes_and_the_server_reads_places_from_the_store(
    cassandra: str, conflated: Path
) -> None:
    done = poiflow("publish", "store", str(conflated), "--hosts", cassandra, "--keyspace", "cli")
    assert done.returncode == 0, done.stderr
    assert "published 1," in done.stdout + done.stderr
    place_id = pq.read_table(conflated / "places.parquet", columns=["id"])["id"][0].as_py()
    with serving(conflated, None, "--cassandra", cassandra, "--keyspace", "cli") as base:
        status, health = get(base, "/health")
        assert health["store"] == f"cassandra {cassandra}"
        status, place = get(base, f"/places/{place_id}")
        assert status == 200
        assert place["id"] == place_id
        assert place["member_records"]
    missing = poiflow("serve", str(conflated), "--cassandra", cassandra, "--keyspace", "nothing")
    assert missing.returncode != 0
    assert "publish store" in missing.stdout + missing.stderr


def test_a_server_whose_keyspace_went_away_answers_503_and_keeps_serving(
    cassandra: str, conflated: Path
) -> None:
    with open_store(cassandra, "vanishing") as store:
        store.publish(conflated)
        place_id = pq.read_table(conflated / "places.parquet", columns=["id"])["id"][0].as_py()
        with serving(conflated, None, "--cassandra", cassandra, "--keyspace", "vanishing") as base:
            assert get(base, f"/places/{place_id}")[0] == 200
            store._session.execute("DROP KEYSPACE vanishing")
            status, body = get(base, f"/places/{place_id}")
            assert status == 503
            assert "publish into it first" in body["detail"]
            assert get(base, "/health")[0] == 200


def test_a_stream_keeps_the_store_current(cassandra: str, conflated: Path, tmp_path: Path) -> None:
    from poiflow.generate.edits import generate_edits
    from poiflow.streaming import StreamState, edit_message, parse_edit

    state = StreamState(conflated)
    day = generate_edits(conflated.parent / "sources", 250, 4)
    out = state.apply(
        [parse_edit(edit_message(e["edit_id"], e["op"], e["time"], e["place"])) for e in day]
    )
    assert out.removed
    live = pl.DataFrame(pq.read_table(state.save(tmp_path / "state") / "membership.parquet"))
    changed = out.places.column("id").to_pylist()
    with open_store(cassandra, "streamed") as store:
        store.publish(conflated)
        for _ in range(2):  # a replayed batch writes the same again
            assert store.upsert(out.places, out.removed) == len(changed)
        for place in out.places.to_pylist():
            found = store.place(place["id"])
            assert found is not None
            assert found["names"] == place["names"]
            assert found["phones"] == place["phones"]
            assert found["operating_status"] == place["operating_status"]
            expected = live.filter(pl.col("place_id") == place["id"])
            assert sorted((m["source"], m["id"]) for m in found["member_records"]) == sorted(
                expected.select("source", "id").iter_rows()
            )
            if place["lat"] is not None:
                near = store.places_near(place["lat"], place["lon"], rings=0)
                assert place["id"] in {p["id"] for p in near}
        for place in out.removed:
            assert store.place(place) is None
        for source, record, place in live.filter(pl.col("source") == "user").iter_rows():
            assert store.place_of(source, record) == place
        deleted = [e["place"] for e in day if e["op"] == "delete"]
        gone = [(p["source"], p["id"]) for p in deleted]
        assert gone
        assert all(store.place_of(*key) is None for key in gone)
