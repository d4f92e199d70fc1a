"""The HTTP API (``poiflow serve``), started for real on 127.0.0.1 and asked over HTTP:
search, a place with its provenance, places in a box page by page, and 4xx answers that
say what is wrong for every bad parameter, never a 500."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from poiflow.schema import GOLDEN_PLACE_SCHEMA, MEMBERSHIP_SCHEMA
from poiflow.serving.responses import Health, PlacesPage, Refusal, SearchResults, Stored

from ..conftest import free_port
from .test_search import PLACES

pytestmark = pytest.mark.server

# Place ids as conflation makes them: p and 16 hex digits.
IDS = {p["id"]: f"p{int(p['id'][1:]):016x}" for p in PLACES}


TOKEN = "test-token-5f1c"


def answer_of(raw: bytes) -> Any:
    try:
        return json.loads(raw or b"null")
    except ValueError:
        return raw.decode(errors="replace")


def post(base: str, path: str, body: Any, token: str | None = TOKEN) -> tuple[int, Any]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    request = urllib.request.Request(f"{base}{path}", data=data, method="POST")
    request.add_header("Content-Type", "application/json")
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, answer_of(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, answer_of(error.read())


def get(base: str, path: str, **params: Any) -> tuple[int, Any]:
    query = urllib.parse.urlencode({k: v for k, v in params.items() if v is not None})
    url = f"{base}{path}" + (f"?{query}" if query else "")
    try:
        with urllib.request.urlopen(url, timeout=10) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


@pytest.fixture(scope="module")
def output(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("output")
    rows = [{**p, "id": IDS[p["id"]]} for p in PLACES]
    places = pa.Table.from_pylist(rows, schema=GOLDEN_PLACE_SCHEMA)
    pq.write_table(places, folder / "places.parquet")
    members = [
        {"source": "osm", "id": f"node/{i}", "place_id": row["id"]} for i, row in enumerate(rows)
    ] + [{"source": "vendor", "id": "V1", "place_id": IDS["p1"]}]
    membership = pa.Table.from_pylist(members, schema=MEMBERSHIP_SCHEMA)
    pq.write_table(membership, folder / "membership.parquet")
    return folder


@contextlib.contextmanager
def serving(
    folder: Path | str, token: str | None, *options: str, logs: Path | None = None
) -> Iterator[str]:
    """``poiflow serve FOLDER [OPTIONS]`` on a free port, with ``token`` as its write token;
    its log in ``logs`` (by default, in ``folder``)."""
    port = free_port()
    log = (logs or Path(folder)) / f"server-{port}.log"
    env = {k: v for k, v in os.environ.items() if k != "POIFLOW_API_TOKEN"}
    if token is not None:
        env["POIFLOW_API_TOKEN"] = token
    with log.open("w") as sink:
        server = subprocess.Popen(
            [sys.executable, "-m", "poiflow", "serve", str(folder), "--port", str(port), *options],
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=env,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(150):
            try:
                if get(base, "/health")[0] == 200:
                    break
            except OSError:
                time.sleep(0.2)
        else:
            pytest.fail(f"poiflow serve did not start: {log.read_text()}")
        yield base
    finally:
        server.terminate()
        server.wait(timeout=10)


@pytest.fixture(scope="module")
def api(output: Path) -> Iterator[str]:
    with serving(output, TOKEN) as base:
        yield base


def test_health_says_what_is_loaded(api: str) -> None:
    assert get(api, "/health") == (
        200,
        {
            "status": "ok",
            "places": len(PLACES),
            "search_documents": len(PLACES),
            "matching": False,
            "store": "embedded",
            "search": "embedded",
        },
    )


def test_search_finds_a_place_despite_a_typo_and_ranks_the_nearer_first(api: str) -> None:
    status, body = get(api, "/search", q="stokman")
    assert status == 200
    assert body["results"][0]["id"] == IDS["p1"]
    assert body["results"][0]["name"] == "Stockmann"
    status, body = get(api, "/search", q="cafe java", lat=60.25, lon=25.1, limit=2)
    assert [r["id"] for r in body["results"]] == [IDS["p4"], IDS["p3"]]
    assert body["results"][0]["distance_km"] < 0.01


def test_search_keeps_the_places_open_at_a_time_and_says_when_they_close(api: str) -> None:
    status, body = get(api, "/search", q="ravintola savoy", open_at="2026-12-12T22:30")
    assert status == 200
    assert [(r["id"], r["open_until"]) for r in body["results"]] == [
        (IDS["p8"], "2026-12-12T23:00:00+02:00"),
        (IDS["p9"], "2026-12-13T04:00:00+02:00"),
    ]
    # 02:00 in Helsinki, as an instant.
    status, body = get(api, "/search", q="ravintola savoy", open_at="2026-12-12T00:00:00Z")
    assert [r["id"] for r in body["results"]] == [IDS["p9"]]
    assert body["results"][0]["opening_hours"] == "Fr-Sa 22:00-04:00"
    # 'now' is read at the request: the 24/7 café is always open.
    status, body = get(api, "/search", q="cafe java", lat=60.25, lon=25.1, open_at="now")
    assert (status, body["results"][0]["id"]) == (200, IDS["p4"])


def test_a_place_says_whether_it_is_open_now(api: str) -> None:
    always = get(api, f"/places/{IDS['p4']}")[1]  # 24/7
    assert (always["open_now"], always["open_until"]) == (True, None)
    assert get(api, f"/places/{IDS['p10']}")[1]["open_now"] is None  # no hours
    assert get(api, f"/places/{IDS['p5']}")[1]["open_now"] is False  # "by appointment"
    weekdays = get(api, f"/places/{IDS['p3']}")[1]  # Mo-Fr 07:00-17:00 in Helsinki
    if weekdays["open_now"]:
        closes = datetime.fromisoformat(weekdays["open_until"])
        assert (closes.hour, closes.utcoffset()) in {(17, timedelta(hours=h)) for h in (2, 3)}
    else:
        assert weekdays["open_until"] is None


def test_a_place_comes_with_its_provenance_and_member_records(api: str) -> None:
    status, body = get(api, f"/places/{IDS['p1']}")
    assert status == 200
    assert body["names"]["primary"] == "Stockmann"
    assert body["categories"]["primary"] == "department_store"
    assert sorted((m["source"], m["id"]) for m in body["member_records"]) == [
        ("osm", "node/0"),
        ("vendor", "V1"),
    ]


def test_places_in_a_box_come_page_by_page_in_id_order(api: str) -> None:
    box = "24.90,60.15,24.96,60.17"  # central Helsinki: not p4 (far east), not p7/p8 (north)
    inside = sorted(
        IDS[p["id"]] for p in PLACES if 24.90 <= p["lon"] <= 24.96 and 60.15 <= p["lat"] <= 60.17
    )
    seen: list[str] = []
    offset: int | None = 0
    while offset is not None:
        status, body = get(api, "/places", bbox=box, limit=2, offset=offset)
        assert status == 200
        assert body["total"] == len(inside)
        seen += [place["id"] for place in body["places"]]
        offset = body["next_offset"]
    assert seen == inside
    # A box across the antimeridian holds nothing of Helsinki; one around the world all.
    assert get(api, "/places", bbox="170,-10,-170,10")[1]["total"] == 0
    assert get(api, "/places", bbox="-180,-90,180,90")[1]["total"] == len(PLACES)


@pytest.mark.parametrize(
    ("path", "params", "status", "says"),
    [
        ("/places/p0000000000000099", {}, 404, "no place p0000000000000099"),
        ("/places/..%2F..%2Fetc%2Fpasswd", {}, 404, "Not Found"),  # no route, no file read
        ("/places/xyz", {}, 422, "should match pattern"),
        ("/places", {"bbox": "abc"}, 422, "four numbers"),
        ("/places", {"bbox": "1,2,3"}, 422, "four numbers"),
        ("/places", {"bbox": "0,80,10,95"}, 422, "out of range"),
        ("/places", {"bbox": "0,10,10,0"}, 422, "south <= north"),
        ("/places", {}, 422, "missing"),
        ("/places", {"bbox": "0,0,1,1", "limit": 5000}, 422, "less than or equal to 1000"),
        ("/search", {"q": ""}, 422, "nothing to search for"),
        ("/search", {"q": "cafe", "lat": 60}, 422, "both lat and lon"),
        ("/search", {"q": "cafe", "lat": 95, "lon": 0}, 422, "less than or equal to 90"),
        ("/search", {"q": "x" * 300}, 422, "at most 200 characters"),
        ("/search", {"category": "'; DROP TABLE places; --"}, 422, "should match pattern"),
        ("/search", {"q": "cafe", "open_at": "soon"}, 422, "not a time: 'soon'"),
        ("/search", {"q": "cafe", "open_at": "9" * 50}, 422, "at most 40 characters"),
        # A misspelt parameter is named, not dropped (the answer would look right).
        ("/search", {"q": "cafe", "near": "60,25"}, 422, "unknown query parameter 'near'"),
        ("/search", {"q": "cafe", "limt": 2}, 422, "'limt'. Did you mean 'limit'?"),
        ("/search", {"q": "cafe", "lng": 25}, 422, "takes q, lat, lon, category, open_at, limit"),
        ("/places", {"bbox": "0,0,1,1", "lim": 5}, 422, "takes bbox, limit, offset"),
        ("/health", {"verbose": 1}, 422, "/health: it takes none"),
    ],
)
def test_bad_requests_get_a_4xx_that_says_what_is_wrong(
    api: str, path: str, params: dict[str, Any], status: int, says: str
) -> None:
    got, body = get(api, path, **params)
    assert got == status
    assert says in json.dumps(body)


def test_the_openapi_description_lists_every_endpoint(api: str) -> None:
    status, spec = get(api, "/openapi.json")
    assert status == 200
    assert {"/health", "/search", "/places/{place_id}", "/places"} <= set(spec["paths"])
    # ... with what each answers, and what the answers are.
    described = {
        ("/health", "get", "200"): Health,
        ("/search", "get", "200"): SearchResults,
        ("/places", "get", "200"): PlacesPage,
        ("/labels", "post", "201"): Stored,
        ("/labels", "post", "409"): Refusal,
        ("/search", "get", "422"): Refusal,
    }
    for (path, method, code), model in described.items():
        answer = spec["paths"][path][method]["responses"][code]["content"]["application/json"]
        assert answer["schema"]["$ref"].endswith(f"/{model.__name__}")
    Health.model_validate(get(api, "/health")[1], strict=True)
    found = SearchResults.model_validate(get(api, "/search", q="stokman")[1])
    assert found.results
    PlacesPage.model_validate(get(api, "/places", bbox="-180,-90,180,90", limit=2)[1])
    assert isinstance(Refusal.model_validate(get(api, "/search", lat=1)[1]).detail, str)


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    q=st.text(max_size=60),
    lat=st.one_of(st.none(), st.floats(-100, 100)),
    lon=st.one_of(st.none(), st.floats(-200, 200)),
    limit=st.integers(-5, 200),
)
def test_no_search_request_makes_the_server_fail(
    api: str, q: str, lat: float | None, lon: float | None, limit: int
) -> None:
    status, body = get(api, "/search", q=q, lat=lat, lon=lon, limit=limit)
    assert status in (200, 422), body
    if status == 200:
        assert len(body["results"]) <= limit


ANSWER = {
    "left_source": "osm",
    "left_id": "node/2",
    "right_source": "osm",
    "right_id": "node/3",
    "label": "match",
    "probability": 0.62,
    "labeller": "ana",
}


def test_review_answers_are_stored_for_the_token_holder_only(api: str, output: Path) -> None:
    from poiflow.conflate.active import read_labels

    labels = output / "labels.csv"
    assert post(api, "/labels", ANSWER, token=None)[0] == 401
    assert post(api, "/labels", ANSWER, token="wrong")[0] == 401
    assert not labels.exists()
    assert post(api, "/labels", ANSWER) == (201, {"stored": 1})
    second = {**ANSWER, "right_id": "node/4", "label": "different", "probability": None}
    assert post(api, "/labels", [second, {**ANSWER, "label": "unsure"}]) == (201, {"stored": 2})
    stored = read_labels(labels)
    # The last answer about a pair wins; the file keeps all three.
    assert sorted(stored["label"].to_list()) == ["different", "unsure"]
    assert len(labels.read_text().splitlines()) == 4
    assert TOKEN not in labels.read_text()


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        ({**ANSWER, "right_id": "node/999"}, 422, "no record 'node/999' of source 'osm'"),
        ({**ANSWER, "label": "maybe"}, 422, "'match', 'different' or 'unsure'"),
        ({**ANSWER, "extra": 1}, 422, "Extra inputs are not permitted"),
        ({**ANSWER, "probability": 2}, 422, "less than or equal to 1"),
        ([], 422, "between 1 and 1000 answers"),
        ([ANSWER] * 1001, 422, "between 1 and 1000 answers"),
        (b"{not json", 422, "JSON decode error"),
    ],
)
def test_bad_answers_are_refused_and_nothing_is_written(
    api: str, output: Path, body: Any, status: int, says: str
) -> None:
    labels = output / "labels.csv"
    before = labels.read_text() if labels.exists() else ""
    got, detail = post(api, "/labels", body)
    assert got == status, detail
    assert says in json.dumps(detail)
    assert (labels.read_text() if labels.exists() else "") == before


def test_an_oversized_body_is_refused_before_it_is_read(api: str, output: Path) -> None:
    # Only the headers go out: the server must answer 413 from Content-Length alone,
    # without waiting for (or reading) the megabytes announced.
    labels = output / "labels.csv"
    before = labels.read_text() if labels.exists() else ""
    address = urllib.parse.urlsplit(api)
    connection = http.client.HTTPConnection(address.hostname, address.port, timeout=10)
    try:
        connection.putrequest("POST", "/labels")
        connection.putheader("Content-Type", "application/json")
        connection.putheader("Authorization", f"Bearer {TOKEN}")
        connection.putheader("Content-Length", "1100000")
        connection.endheaders()
        connection.send(b"[")
        answer = connection.getresponse()
        assert answer.status == 413
        answer.read()
    finally:
        connection.close()
    assert (labels.read_text() if labels.exists() else "") == before


def test_a_server_without_a_token_takes_no_writes(output: Path) -> None:
    with serving(output, None) as base:
        status, body = post(base, "/labels", ANSWER)
        assert status == 403
        assert "POIFLOW_API_TOKEN" in body["detail"]
        assert get(base, "/health")[0] == 200


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_server_indexes_again_the_places_of_a_later_run(
    output: Path, tmp_path: Path, workers: str
) -> None:
    """The index DIR had was built from the places of an earlier run: the server builds
    it anew (once, with several processes), so that /search finds what /places holds."""
    from poiflow.serving import build_search_index

    folder = tmp_path / "out"
    shutil.copytree(output, folder, ignore=shutil.ignore_patterns("search", "*.log"))
    build_search_index(folder / "places.parquet", folder / "search")
    earlier = pq.read_table(folder / "places.parquet")
    kept = pc.is_in(earlier["id"], pa.array([IDS["p1"], IDS["p2"], IDS["p3"]]))
    pq.write_table(earlier.filter(kept), folder / "later.parquet")
    os.replace(folder / "later.parquet", folder / "places.parquet")

    with serving(folder, None, "--workers", workers) as base:
        status, health = get(base, "/health")
        assert status == 200
        assert (health["places"], health["search_documents"]) == (3, 3)
        status, body = get(base, "/search", q="savoy")
        assert (status, body["results"]) == (200, [])
    assert list(folder.glob(".search.building-*")) + list(folder.glob(".search.old-*")) == []


def later_run(folder: Path, conflated: Path) -> int:
    """Run the generated world's first two sources into ``folder``, as a later release
    would (``run.json`` last). How many places it made."""
    from poiflow.pipeline import conflate

    sources = sorted((conflated.parent / "sources").glob("source_*.csv"))[:2]
    return conflate(sources, folder, workers=1).places


def test_a_later_run_is_taken_up_and_one_that_cannot_load_leaves_the_last(
    conflated: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from poiflow.serving.releases import Releases

    folder = tmp_path / "out"
    shutil.copytree(conflated, folder)
    releases = Releases(folder)
    first = releases.now
    assert not releases.take_up()  # nothing new
    assert releases.now is first

    made = later_run(folder, conflated)
    assert made != len(first.store)
    # A later run that cannot be read: the last goes on answering, said once.
    good = (folder / "places.parquet").read_bytes()
    (folder / "places.parquet").write_bytes(b"not parquet")
    with caplog.at_level("WARNING", logger="poiflow.serving.releases"):
        assert not releases.take_up()
        assert not releases.take_up()
    assert releases.now is first
    assert [r.message for r in caplog.records].count(
        f"cannot load the later run in {folder}; serving the last"
    ) == 1
    (folder / "places.parquet").write_bytes(good)
    assert releases.take_up()
    assert len(releases.now.store) == made
    assert len(releases.now.store.search) == made  # its index built again, for these places
    assert releases.now.matching is not None
    assert first.matching is not None
    # The last one's matcher answers what it was given after it was let go, here and now.
    answered = first.matching.submit([{"id": "x", "name": "Kahvila", "lat": 60.17, "lon": 24.9}])
    assert len(answered.result(timeout=30)) == 1


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_server_answers_from_a_later_run_once_it_has_loaded_it(
    conflated: Path, tmp_path: Path, workers: str
) -> None:
    folder = tmp_path / "out"
    shutil.copytree(conflated, folder)
    with serving(folder, None, "--watch", "0.3", "--workers", workers) as base:
        before = get(base, "/health")[1]["places"]
        made = later_run(folder, conflated)
        assert made != before
        deadline = time.monotonic() + 60
        seen: set[int] = set()
        while seen != {made}:  # every process has taken it up
            assert time.monotonic() < deadline, f"still {seen} places, not {made}"
            seen = {get(base, "/health")[1]["places"] for _ in range(8)}
            time.sleep(0.2)
        status, health = get(base, "/health")
        assert (status, health["search_documents"], health["matching"]) == (200, made, True)
        some = pq.read_table(folder / "places.parquet", columns=["id"])["id"][0].as_py()
        assert get(base, f"/places/{some}")[0] == 200


def _started(folder: Path, *options: str) -> tuple[subprocess.Popen[bytes], str, Path]:
    """``poiflow serve FOLDER OPTIONS`` on a free port, once it answers."""
    port = free_port()
    log = folder / f"server-{port}.log"
    with log.open("w") as sink:
        server = subprocess.Popen(
            [sys.executable, "-m", "poiflow", "serve", str(folder), "--port", str(port), *options],
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    for _ in range(150):
        try:
            if get(base, "/health")[0] == 200:
                return server, base, log
        except OSError:
            time.sleep(0.2)
    server.kill()
    pytest.fail(f"poiflow serve did not start: {log.read_text()}")


def _server_processes(pid: int) -> list[int]:
    """The processes ``poiflow serve --workers`` spawned (its multiprocessing children)."""
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            with contextlib.suppress(OSError):
                if b"multiprocessing.spawn" in Path(f"/proc/{child}/cmdline").read_bytes():
                    found.append(int(child))
    return found


def _server_processes_of(server: subprocess.Popen[bytes], count: int, log: Path) -> list[int]:
    """The ``count`` server processes of ``server``, once all have started."""
    deadline = time.monotonic() + 60
    while len(found := _server_processes(server.pid)) < count and time.monotonic() < deadline:
        time.sleep(0.2)
    assert len(found) == count, log.read_text()
    return found


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def _wait_until_gone(pids: list[int], seconds: float = 15) -> list[int]:
    deadline = time.monotonic() + seconds
    while (left := [p for p in pids if _running(p)]) and time.monotonic() < deadline:
        time.sleep(0.1)
    return left


def test_several_server_processes_answer_on_one_port_and_stop_together(output: Path) -> None:
    server, base, log = _started(output, "--workers", "2")
    try:
        workers = _server_processes_of(server, 2, log)
        for _ in range(10):  # each on a new connection, whichever process takes it
            assert get(base, "/places/" + IDS["p1"])[0] == 200
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=20) == 0, log.read_text()
        assert _wait_until_gone(workers) == []
    finally:
        if server.poll() is None:
            server.kill()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_server_stopped_by_a_signal_stops_cleanly(output: Path, signum: int) -> None:
    # As one process, as with --workers: a server's way to stop, not an error (exit 0).
    server, base, log = _started(output)
    try:
        assert get(base, "/places/" + IDS["p1"])[0] == 200
        server.send_signal(signum)
        assert server.wait(timeout=20) == 0, log.read_text()
        said = log.read_text()
        assert said.rstrip().endswith("stopped"), said
        assert "no output was written" not in said
        # Where a person finds what it serves: the pages as well as the API.
        pages = "search and a map at /, pairs to review at /review, the API at /docs"
        assert pages in " ".join(said.split())
    finally:
        if server.poll() is None:
            server.kill()


def test_a_server_process_that_dies_stops_the_others(output: Path) -> None:
    server, _, log = _started(output, "--workers", "2")
    try:
        workers = _server_processes_of(server, 2, log)
        os.kill(workers[0], signal.SIGKILL)
        assert server.wait(timeout=20) != 0
        assert _wait_until_gone(workers) == []
        assert "a server process failed" in log.read_text()
    finally:
        if server.poll() is None:
            server.kill()
