"""The search server backend against a real OpenSearch (one node assembled from Maven
Central's jars, started on 127.0.0.1 by ``scripts/opensearch_server.sh``): the same
queries find the same places as the embedded index, re-publishing swaps the alias
atomically while readers read, and errors say what to do."""

from __future__ import annotations

import random
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from poiflow.errors import ConfigError, InputError
from poiflow.schema import GOLDEN_PLACE_SCHEMA
from poiflow.serving import build_search_index
from poiflow.serving.opening import parse_when
from poiflow.serving.opensearch import OpenSearchIndex
from poiflow.text import fold

from ..conftest import free_port, one_worker, poiflow, script_server
from .test_api import get, serving
from .test_search import (
    FOUND_BY,
    NEARBY,
    PIZZAS,
    PLACES,
    _perturbed,
    check_nearest,
    check_open_at,
    check_upsert,
    check_words_near,
)

pytestmark = [pytest.mark.opensearch, pytest.mark.server, one_worker("opensearch")]


@pytest.fixture(scope="module")
def opensearch(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An OpenSearch on 127.0.0.1 for this module; yields its URL."""
    with script_server("opensearch", tmp_path_factory.mktemp("opensearch")) as url:
        yield url


@pytest.fixture(scope="module")
def small(opensearch: str) -> OpenSearchIndex:
    index = OpenSearchIndex(opensearch, "small")
    assert index.publish(pa.Table.from_pylist(PLACES, schema=GOLDEN_PLACE_SCHEMA)) == len(PLACES)
    return index


@pytest.mark.parametrize(("query", "expected"), FOUND_BY)
def test_the_server_finds_what_the_embedded_index_finds(
    small: OpenSearchIndex, query: str, expected: str
) -> None:
    assert small.search(query, limit=3)[0].id == expected


def test_filters_distance_and_confidence_rank_as_embedded(small: OpenSearchIndex) -> None:
    assert len(small) == len(PLACES)
    assert {h.id for h in small.search("", category="cafe")} == {"p2", "p3", "p4", "p5", "p12"}
    assert [h.id for h in small.search("cafe java", near=(60.25, 25.1), limit=2)] == ["p4", "p3"]
    assert [h.id for h in small.search("ravintola savoy", limit=2)] == ["p8", "p9"]
    assert small.search("zzqxw") == []
    with pytest.raises(InputError, match="nothing to search for"):
        small.search("   ")


def test_the_server_finds_the_places_open_at_a_time_as_embedded(small: OpenSearchIndex) -> None:
    check_open_at(small)


def test_the_server_finds_the_nearest_places_as_embedded(opensearch: str) -> None:
    index = OpenSearchIndex(opensearch, "nearby")
    index.publish(pa.Table.from_pylist(NEARBY, schema=GOLDEN_PLACE_SCHEMA))
    check_nearest(index)
    pizzas = OpenSearchIndex(opensearch, "pizzas")
    pizzas.publish(pa.Table.from_pylist(PIZZAS, schema=GOLDEN_PLACE_SCHEMA))
    check_words_near(pizzas)


def test_an_index_of_another_poiflow_version_is_refused_with_what_to_do(opensearch: str) -> None:
    index = OpenSearchIndex(opensearch, "older")
    index.publish(pa.Table.from_pylist(PLACES, schema=GOLDEN_PLACE_SCHEMA))
    (name,) = index.indices()
    # As a poiflow before opening hours left it: no version in the mapping.
    index._client.indices.put_mapping(index=name, body={"_meta": {}})
    again = OpenSearchIndex(opensearch, "older")
    assert again.search("stockmann", limit=1)[0].id == "p1"  # words alone still work
    with pytest.raises(InputError, match="published by another poiflow version: publish again"):
        again.search("stockmann", open_at=parse_when("now"))
    with pytest.raises(InputError, match="publish again"):
        again.upsert(pa.Table.from_pylist(PLACES[:1], schema=GOLDEN_PLACE_SCHEMA))
    again.publish(pa.Table.from_pylist(PLACES, schema=GOLDEN_PLACE_SCHEMA))
    assert "p4" in {h.id for h in again.search("cafe java", open_at=parse_when("now"))}


def test_both_backends_find_perturbed_names_of_a_generated_world(
    opensearch: str, conflated: Path, tmp_path: Path
) -> None:
    places = pq.read_table(conflated / "places.parquet")
    server = OpenSearchIndex(opensearch, "world")
    server.publish(places)
    embedded = build_search_index(places, tmp_path / "search")
    rng = random.Random(3)
    # Places whose name is their own: a name alone (no point) cannot tell a chain's branches
    # apart, and how many of them a run keeps apart is the matcher's business, not search's.
    rows = places.select(["id", "names"]).to_pylist()
    seen = Counter(fold(p["names"]["primary"]) for p in rows)
    named = [
        p
        for p in rows
        if len(p["names"]["primary"]) >= 6 and seen[fold(p["names"]["primary"])] == 1
    ]
    asked = rng.sample(named, 150)
    found = {"server": 0, "embedded": 0}
    same_first = 0
    for place in asked:
        query = _perturbed(place["names"]["primary"], rng)
        a = [h.id for h in server.search(query, limit=3)]
        b = [h.id for h in embedded.search(query, limit=3)]
        found["server"] += place["id"] in a
        found["embedded"] += place["id"] in b
        same_first += bool(a) and bool(b) and a[0] == b[0]
    assert found["server"] >= 0.9 * len(asked), found
    assert abs(found["server"] - found["embedded"]) <= 0.05 * len(asked), found
    assert same_first >= 0.8 * len(asked)


def test_republishing_swaps_the_alias_while_readers_read(opensearch: str, conflated: Path) -> None:
    places = pq.read_table(conflated / "places.parquet")
    index = OpenSearchIndex(opensearch, "swapped")
    index.publish(places)
    first = index.indices()
    answers: list[int] = []
    failures: list[BaseException] = []
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            try:
                answers.append(len(index.search("cafe", limit=5)))
            except BaseException as exc:  # any failure is the finding
                failures.append(exc)

    reader = threading.Thread(target=read)
    reader.start()
    try:
        index.publish(places.slice(0, places.num_rows - 7))
    finally:
        stop.set()
        reader.join()
    assert failures == []
    assert answers
    assert min(answers) == 5  # never an empty or half-built index
    now = index.indices()
    assert len(now) == 1
    assert now != first
    assert len(index) == places.num_rows - 7
    assert not OpenSearchIndex(opensearch, first[0].replace("-", "_")).indices()


def test_errors_say_what_is_wrong_and_what_to_do(opensearch: str) -> None:
    with pytest.raises(InputError, match=r"cannot reach OpenSearch at http://127\.0\.0\.1:"):
        OpenSearchIndex(f"http://127.0.0.1:{free_port()}")
    with pytest.raises(ConfigError, match="lowercase letters"):
        OpenSearchIndex(opensearch, "Bad Name")
    with pytest.raises(InputError, match="publish into it first"):
        OpenSearchIndex(opensearch, "never_published").search("cafe")


def test_the_cli_publishes_searches_and_serves_through_the_server(
    opensearch: str, conflated: Path
) -> None:
    done = poiflow(
        "publish", "search", str(conflated), "--opensearch", opensearch, "--index", "cli"
    )
    assert done.returncode == 0, done.stderr
    assert "alias cli now points at it" in done.stdout + done.stderr
    name = pq.read_table(conflated / "places.parquet", columns=["names"])["names"][0].as_py()
    found = poiflow(
        "search", str(conflated), name["primary"], "--opensearch", opensearch, "--index", "cli"
    )
    assert found.returncode == 0, found.stderr
    assert name["primary"] in found.stdout + found.stderr
    with serving(conflated, None, "--opensearch", opensearch, "--index", "cli") as base:
        status, health = get(base, "/health")
        assert health["search"] == f"opensearch {opensearch} cli"
        status, body = get(base, "/search", q=name["primary"])
        assert status == 200
        assert body["results"][0]["name"].lower() == name["primary"].lower()


def test_a_server_whose_index_went_away_answers_503_and_keeps_serving(
    opensearch: str, conflated: Path
) -> None:
    index = OpenSearchIndex(opensearch, "vanishing")
    index.publish(pq.read_table(conflated / "places.parquet"))
    with serving(conflated, None, "--opensearch", opensearch, "--index", "vanishing") as base:
        assert get(base, "/search", q="cafe")[0] == 200
        for name in index.indices():
            index._client.indices.delete(index=name)
        status, body = get(base, "/search", q="cafe")
        assert status == 503
        assert "publish into it first" in body["detail"]
        assert get(base, "/search", q="")[0] == 422  # a bad request is still the client's
        status, health = get(base, "/health")
        assert status == 200
        assert health["status"] == "degraded"
        assert "publish into it first" in health["problems"]["search"]


def test_a_stream_keeps_the_server_index_current(opensearch: str) -> None:
    index = OpenSearchIndex(opensearch, "streamed")
    with pytest.raises(InputError, match="publish into it first"):
        index.upsert(pa.Table.from_pylist(PLACES[:1], schema=GOLDEN_PLACE_SCHEMA))
    index.publish(pa.Table.from_pylist(PLACES, schema=GOLDEN_PLACE_SCHEMA))
    check_upsert(index)
