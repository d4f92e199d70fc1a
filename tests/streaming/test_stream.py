"""``poiflow stream`` against a real Kafka broker (KRaft, started by the project's script):
edits in, change events and dead letters out, offsets committed after the writes, and the
faults the issue names: the consumer killed mid-batch, the broker stopped and started."""

from __future__ import annotations

import csv
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
import yaml
from confluent_kafka import Consumer

from poiflow.config import StreamSettings
from poiflow.generate.edits import generate_edits
from poiflow.pipeline import conflate
from poiflow.serving import SearchIndex, build_search_index
from poiflow.streaming import StreamState, edit_message, parse_edit
from poiflow.streaming.consumer import EditStream
from poiflow.streaming.producer import create_topics, send_edits

from ..conftest import ROOT, one_worker, poiflow, script_server
from .releases import later_sources

pytestmark = [pytest.mark.kafka, pytest.mark.server, one_worker("stream")]


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    folder = tmp_path_factory.mktemp("kafka")
    with script_server("kafka", folder) as where:
        yield where, folder


def settings(broker: str, name: str, partitions: int = 3, **more: Any) -> StreamSettings:
    """Stream settings with topics of their own (made here), for one test."""
    config = StreamSettings.prefixed(broker, name, **more)
    made = create_topics(config, partitions)
    assert sorted(made) == sorted([config.edits, config.events, config.dead_letters])
    assert create_topics(config) == []  # only what is missing
    return config


def read_topic(broker: str, topic: str, idle_s: float = 4) -> list[dict[str, Any]]:
    """Every message of a topic, from the start."""
    consumer = Consumer(
        {
            "bootstrap.servers": broker,
            "group.id": f"reader-{topic}-{time.monotonic_ns()}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    got: list[dict[str, Any]] = []
    last = time.monotonic()
    try:
        while time.monotonic() - last < idle_s:
            message = consumer.poll(0.3)
            if message is None or message.error() is not None:
                continue
            last = time.monotonic()
            got.append(
                {
                    "key": message.key(),
                    "value": message.value(),
                    "headers": {k: v.decode() for k, v in message.headers() or []},
                }
            )
    finally:
        consumer.close()
    return got


def day(conflated: Path, count: int, seed: int) -> list[bytes]:
    edits = generate_edits(conflated.parent / "sources", count, seed)
    return [edit_message(e["edit_id"], e["op"], e["time"], e["place"]) for e in edits]


def last_writer(messages: list[bytes]) -> dict[tuple[str, str], tuple[int, str]]:
    """Each record's winning edit, worked out apart from the stream: the latest stamp of
    the edits that name a record the state can hold."""
    best: dict[tuple[str, str], tuple[int, str]] = {}
    for message in messages:
        edit = parse_edit(message)
        if edit.record not in best or edit.stamp > best[edit.record]:
            best[edit.record] = edit.stamp
    return best


def current_snapshot(state: Path) -> Path:
    return state / (state / "CURRENT").read_text().strip()


def stamps_of(snapshot: Path) -> dict[tuple[str, str], tuple[int, str]]:
    table = pq.read_table(snapshot / "stream.parquet").to_pylist()
    return {(r["source"], r["id"]): (r["time"], r["edit_id"]) for r in table if r["time"]}


BAD = [
    b"{this is not json",
    json.dumps(
        {"schema": 2, "edit_id": "v2", "op": "upsert", "time": "2026-11-30T08:00:00Z"}
    ).encode(),
    edit_message("ghost", "close", "2026-11-30T09:00:00Z", {"source": "osm", "id": "nobody"}),
]


# The classic group protocol, and the broker-side one of Kafka 4 (KIP-848), which a
# consumer asks for with a setting of its own.
@pytest.mark.parametrize("protocol", ["classic", "consumer"])
def test_edits_in_events_and_dead_letters_out_and_offsets_committed(
    broker: tuple[str, Path], conflated: Path, tmp_path: Path, protocol: str
) -> None:
    where, _ = broker
    config = settings(
        where,
        f"flow-{protocol}",
        batch_size=150,
        wait_ms=300,
        consumer={"group.protocol": protocol},
    )
    messages = day(conflated, 400, 3)
    sent = send_edits(config, [*messages, *BAD])
    assert sent == len(messages) + len(BAD)
    state = StreamState(conflated)
    search = build_search_index(state.places, tmp_path / "state" / "search")
    stream = EditStream(state, tmp_path / "state", config, publishers=[search])
    metrics = stream.run(idle_exit_s=4)
    counts = metrics.counts
    assert counts["received"] == sent
    assert counts["dead"] == len(BAD)
    assert counts["applied"] + counts["stale"] + counts["duplicate"] == len(messages)
    assert counts["duplicate"] > 0
    assert counts["stale"] > 0

    events = read_topic(where, config.events)
    assert len(events) == counts["events"] > 0
    sent_ids = {parse_edit(m).edit_id for m in messages}
    for event in events:
        body = json.loads(event["value"])
        assert event["key"].decode() == body["place_id"]
        assert event["headers"]["change"] == body["change"]
        assert set(body["edit_ids"]) <= sent_ids
    changes = Counter(json.loads(e["value"])["change"] for e in events)
    assert {"created", "updated", "closed"} <= set(changes)
    dead = read_topic(where, config.dead_letters)
    reasons = sorted(d["headers"]["reason"] for d in dead)
    assert len(dead) == len(BAD)
    assert any(r.startswith("not JSON") for r in reasons)
    assert any("schema version 2" in r for r in reasons)
    assert any("no such record" in r for r in reasons)
    assert {d["value"] for d in dead} == set(BAD)  # the messages themselves, unchanged

    # The search index was kept current: new places are found, places gone are not.
    bodies = [json.loads(e["value"]) for e in events]
    for body in [b for b in bodies if b["change"] == "created"][:5]:
        name = body["place"]["names"]["primary"]
        assert body["place_id"] in [h.id for h in search.search(name, limit=5)], name
    gone = {b["place_id"] for b in bodies if b["change"] in ("removed", "merged")}
    assert gone
    assert len(search) == state.places.num_rows
    assert not gone & set(state.places.column("id").to_pylist())

    snapshot = current_snapshot(tmp_path / "state")
    assert stamps_of(snapshot) == last_writer(messages)  # every edit took effect
    assert json.loads((tmp_path / "state" / "metrics.json").read_text())["total_lag"] == 0
    # The offsets were committed: the group starts after them.
    again = EditStream(StreamState.open(conflated, tmp_path / "state"), tmp_path / "state", config)
    assert again.run(idle_exit_s=3).counts["received"] == 0


def pipeline_file(
    folder: Path, conflated: Path, config: StreamSettings, output: Path | None = None
) -> Path:
    path = folder / "pipeline.yaml"
    spec = {
        "name": "stream-test",
        "sources": [
            {"path": str(p)} for p in sorted((conflated.parent / "sources").glob("source_*.csv"))
        ],
        "output": str(output or conflated),
        "cache": None,
        "tracking": None,
        "stream": {**config.model_dump(), "state": str(folder / "state")},
    }
    path.write_text(yaml.safe_dump(spec))
    return path


def test_a_consumer_killed_mid_run_applies_every_edit_once_and_loses_no_event(
    broker: tuple[str, Path], conflated: Path, tmp_path: Path
) -> None:
    where, _ = broker
    # A restarted consumer waits for the killed one's session to lapse before it gets the
    # partition; a short session keeps the test short.
    config = settings(
        where,
        "kill",
        partitions=1,
        batch_size=40,
        wait_ms=200,
        consumer={"session.timeout.ms": "6000", "heartbeat.interval.ms": "1000"},
    )
    messages = day(conflated, 500, 8)
    send_edits(config, messages)
    pipeline = pipeline_file(tmp_path, conflated, config)
    command = [sys.executable, "-m", "poiflow", "stream", str(pipeline), "--until-idle", "5"]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    first = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    metrics = tmp_path / "state" / "metrics.json"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if metrics.exists() and json.loads(metrics.read_text()).get("batches", 0) >= 3:
            break
        time.sleep(0.05)
    time.sleep(0.25)  # a batch takes about half a second: kill the next one midway
    first.send_signal(signal.SIGKILL)  # the batch in hand is lost, not committed
    first.wait()
    killed_at = json.loads(metrics.read_text())["batches"]
    assert 3 <= killed_at < len(messages) / 40
    second = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert second.returncode == 0, second.stderr[-2000:]

    # Exactly once in effect: each record holds its winning edit.
    final = current_snapshot(tmp_path / "state")
    assert stamps_of(final) == last_writer(messages)
    # The embedded search index the command keeps holds the live places.
    live = pq.read_table(final / "places.parquet", columns=["id"]).num_rows
    assert len(SearchIndex(tmp_path / "state" / "search")) == live
    # At least once: every edit a run without the crash turns into events is in one.
    reference = StreamState(conflated)
    expected: set[str] = set()
    for start in range(0, len(messages), 40):
        out = reference.apply([parse_edit(m) for m in messages[start : start + 40]])
        expected |= {i for e in out.events for i in e.edit_ids}
    events = [json.loads(e["value"]) for e in read_topic(where, config.events)]
    produced = {i for e in events for i in e["edit_ids"]}
    assert expected <= produced, sorted(expected - produced)[:5]
    repeated = sum(n - 1 for n in Counter(e["event_id"] for e in events).values())
    print(f"killed after {killed_at} batches: {len(events)} events, {repeated} repeated")


def _metrics(state: Path) -> dict[str, Any]:
    """The stream's ``metrics.json``; empty before its first batch."""
    try:
        return dict(json.loads((state / "metrics.json").read_text()))
    except (OSError, ValueError):
        return {}


def _renamed_release(conflated: Path, to: Path, edited: set[tuple[str, str]]) -> tuple[str, str]:
    """The run's sources as their next release has them, in ``to``: a record alone in
    its place that the stream did not edit renamed. Its id and old name."""
    with (conflated.parent / "sources" / "source_b.csv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    membership = pq.read_table(conflated / "membership.parquet").to_pylist()
    members = Counter(m["place_id"] for m in membership)
    alone = {(m["source"], m["id"]) for m in membership if members[m["place_id"]] == 1}
    row = next(r for r in rows if ("source_b", r["id"]) in alone - edited and len(r["name"]) > 5)
    later_sources(conflated, to, {("source_b", row["id"]): {"name": f"{row['name']} Uusi"}})
    return row["id"], row["name"]


@pytest.mark.parametrize("stream_is", ["stopped", "running"])
def test_a_stream_goes_on_from_a_later_run_into_its_output(
    broker: tuple[str, Path],
    conflated: Path,
    tmp_path: Path,
    stream_is: str,
    request: pytest.FixtureRequest,
) -> None:
    """The next release of the sources is run into the output under a stream's
    snapshots: the stream's places become that run's (a stopped stream's when it starts,
    a running one's between its batches), with its own later edits carried over, and the
    search index it keeps holds them."""
    where, _ = broker
    config = settings(where, f"rebase-{stream_is}", partitions=1)
    output, state = tmp_path / "out", tmp_path / "state"
    shutil.copytree(conflated, output)
    first_day = day(conflated, 200, 11)
    send_edits(config, first_day)
    pipeline = pipeline_file(tmp_path, conflated, config, output)
    command = [sys.executable, "-m", "poiflow", "stream", str(pipeline)]
    log = tmp_path / "stream.log"
    if stream_is == "stopped":
        first = poiflow("stream", str(pipeline), "--until-idle", "3")
        assert first.returncode == 0, first.stderr[-2000:]
    else:
        with log.open("w") as sink:
            running = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT)
        request.addfinalizer(running.kill)  # whatever fails below
        wait_for(lambda: "checkpoints" in _metrics(state), 120)  # a snapshot, committed
    before = current_snapshot(state)
    edited = stamps_of(before)
    rid, name = _renamed_release(conflated, tmp_path / "release-2", set(edited))
    conflate(sorted((tmp_path / "release-2").glob("source_*.csv")), output, workers=1)

    if stream_is == "stopped":
        second = poiflow("stream", str(pipeline), "--until-idle", "3")
        assert second.returncode == 0, second.stderr[-2000:]
        said = second.stdout + second.stderr
    else:
        later = (output / "run.json").read_bytes()
        wait_for(lambda: (current_snapshot(state) / "run.json").read_bytes() == later, 120)
        more = day(conflated, 20, 12)
        send_edits(config, more)  # and the stream, started again from the run, goes on
        won = last_writer(first_day + more)
        wait_for(  # in a snapshot (metrics.json may still be the first stream's)
            lambda: all(
                stamps_of(current_snapshot(state)).get(key) == won[key] for key in last_writer(more)
            ),
            120,
        )
        running.send_signal(signal.SIGTERM)
        assert running.wait(timeout=60) == 0, log.read_text()[-2000:]
        said = log.read_text()
        assert f"a later run landed in {output}" in " ".join(said.split())
    said = " ".join(said.split())
    assert f"holds a later run than the stream's snapshots ({before.name})" in said
    now = current_snapshot(state)
    assert (now / "run.json").read_bytes() == (output / "run.json").read_bytes()
    names = {
        (r["source"], r["id"]): r["names"]["primary"]
        for r in pq.read_table(
            now / "records.parquet", columns=["source", "id", "names"]
        ).to_pylist()
    }
    assert names[("source_b", rid)] == f"{name} Uusi"
    kept = stamps_of(now)
    if stream_is == "running":  # the edits after the run are applied as ever
        assert {key: kept[key] for key in last_writer(more)} == {
            k: won[k] for k in last_writer(more)
        }
        edited = {
            key: stamp for key, stamp in edited.items() if key not in won or won[key] == stamp
        }
    assert {key: kept[key] for key in edited} == edited  # every edit carried over
    live = pq.read_table(now / "places.parquet", columns=["id"]).num_rows
    index = SearchIndex(state / "search")
    assert len(index) == live
    assert f"{name} Uusi" in [hit.name for hit in index.search(f"{name} uusi", limit=3)]


def test_the_consumer_rides_out_a_broker_restart(
    conflated: Path, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    folder = tmp_path_factory.mktemp("kafka-restart")
    with script_server("kafka", folder) as where:
        config = settings(where, "restart", batch_size=50, wait_ms=200)
        messages = day(conflated, 300, 13)
        half = len(messages) // 2
        broker = int((folder / "server.pid").read_text())
        frozen, freeze_at, received = threading.Event(), [math.inf], Counter[str]()

        def between_turns() -> bool:  # at the top of each turn of the stream's loop
            if received["received"] >= freeze_at[0] and not frozen.is_set():
                os.kill(broker, signal.SIGSTOP)  # hung: connections open, no answers
                frozen.set()
            return False  # no later run

        stream = EditStream(
            StreamState(conflated), tmp_path / "state", config, later_run=between_turns
        )
        stream.heartbeat_s = 0.2
        received = stream.metrics.counts
        runner = threading.Thread(target=stream.run, daemon=True)
        runner.start()
        send_edits(config, messages[:half])
        metrics = stream.metrics
        wait_for(lambda: metrics.counts["received"] >= half, 60)
        # Quiet, it commits at once.
        wait_for(lambda: metrics.counts["checkpoints"] >= 1, 60)
        time.sleep(1)
        heartbeat = tmp_path / "state" / StreamSettings.HEARTBEAT
        # Twenty edits again (they change nothing: no event to send), and the broker hangs
        # once they are applied, before the quiet stream commits them: the commit is not
        # waited for, and the loop goes on turning.
        checkpoints = metrics.counts["checkpoints"]
        freeze_at[0] = metrics.counts["received"] + 20
        send_edits(config, messages[:20])
        try:
            wait_for(frozen.is_set, 60)
            wait_for(lambda: metrics.counts["checkpoints"] > checkpoints, 10)
            beat = heartbeat.stat().st_mtime_ns
            time.sleep(2)
            assert heartbeat.stat().st_mtime_ns > beat
        finally:
            os.kill(broker, signal.SIGCONT)
        port = where.rsplit(":", 1)[1]
        script = str(ROOT / "scripts" / "kafka_server.sh")
        subprocess.run(["bash", script, "stop", str(folder)], check=True, timeout=120)
        beat = heartbeat.stat().st_mtime_ns
        time.sleep(3)  # the consumer polls a broker that is not there
        # Its loop goes on turning meanwhile: the heartbeat says it is alive, not stuck.
        assert heartbeat.stat().st_mtime_ns > beat
        subprocess.run(
            ["bash", script, "start", str(folder), port],
            check=True,
            timeout=180,
            capture_output=True,
        )
        send_edits(config, messages[half:])
        wait_for(lambda: metrics.counts["received"] >= len(messages) + 20, 120)
        stream.stop()
        runner.join(30)
        assert not runner.is_alive()
        assert stamps_of(current_snapshot(tmp_path / "state")) == last_writer(messages)
        counts = stream.metrics.counts
        print(
            f"broker restarted: {counts['received']} edits, {counts['events']} events, "
            f"{counts['client_errors']} client errors, {counts['commit_failures']} failed commits"
        )
        del stream, runner  # its Kafka clients close before the broker stops


def wait_for(condition: Any, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_sigterm_stops_after_the_batch_in_hand_with_everything_committed(
    broker: tuple[str, Path], conflated: Path, tmp_path: Path
) -> None:
    where, _ = broker
    config = settings(where, "term", partitions=1, batch_size=30, wait_ms=200)
    messages = day(conflated, 300, 21)
    pipeline = pipeline_file(tmp_path, conflated, config)
    (tmp_path / "edits.jsonl").write_bytes(b"\n".join(messages) + b"\n")
    sent = poiflow("send-edits", str(pipeline), str(tmp_path / "edits.jsonl"))
    assert sent.returncode == 0, sent.stderr
    assert f"{len(messages)} edits sent to {config.edits}" in sent.stdout + sent.stderr
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    running = subprocess.Popen(
        [sys.executable, "-m", "poiflow", "stream", str(pipeline)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    metrics = tmp_path / "state" / "metrics.json"
    deadline = time.monotonic() + 120
    while not (metrics.exists() and json.loads(metrics.read_text()).get("batches", 0) >= 2):
        assert time.monotonic() < deadline, "no batch was applied"
        time.sleep(0.05)
    running.send_signal(signal.SIGTERM)
    out, _ = running.communicate(timeout=120)
    assert running.returncode == 0, out[-2000:]
    assert "stopped" in out
    done = json.loads(metrics.read_text())
    assert done["checkpoints"] >= 1
    assert done["received"] < len(messages)  # it stopped early, not at the end
    # What it applied is in the snapshot and committed: a new run takes up the rest only.
    again = EditStream(
        StreamState.open(conflated, tmp_path / "state"), tmp_path / "state", config
    ).run(idle_exit_s=4)
    assert again.counts["received"] == len(messages) - done["received"]
    assert stamps_of(current_snapshot(tmp_path / "state")) == last_writer(messages)


def test_topics_made_by_two_processes_at_once_are_made_once(broker: tuple[str, Path]) -> None:
    # Two producers starting together both find the topics missing; the broker makes each
    # once, and the one that comes second is told it exists: that is no error.
    from concurrent.futures import ThreadPoolExecutor
    from threading import Barrier

    where, _ = broker
    config = StreamSettings.prefixed(where, "twice")
    start = Barrier(2)

    def make() -> list[str]:
        start.wait()
        return create_topics(config)

    with ThreadPoolExecutor(2) as pool:
        made = [pool.submit(make) for _ in range(2)]
        first, second = (m.result(timeout=60) for m in made)
    assert sorted(first + second) == sorted([config.edits, config.events, config.dead_letters])
