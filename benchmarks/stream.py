"""Streaming end to end: edits through a real Kafka broker into the golden places.

Makes a generated world (``poiflow generate``) and conflates it, makes a day of edits of it
(``generate_edits``), starts a Kafka broker with the project's script, and measures:

1. **drain**: all edits waiting on the topic, then ``EditStream`` consumes, applies,
   produces events, snapshots and commits, batch after batch: edits/s end to end;
2. **steady**: edits produced at a fixed rate while the stream runs: p50/p99 seconds from
   an edit's production (its Kafka timestamp) to the acknowledgement of its change events;
3. **apply only**: the same edits applied in process without Kafka, to show where the
   time goes;
4. the peer: **the batch** re-run over the sources the day leaves (``poiflow conflate``
   with ``--previous``), the way the places would be brought up to date without a stream:
   its wall time is how stale the places get without one.

Usage:
    .venv/bin/python benchmarks/stream.py [--places 20000] [--edits 20000] [--batch 5000]
        [--rate 500] [--group-protocol classic|consumer]
"""

from __future__ import annotations

import argparse
import gc
import resource
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
from confluent_kafka import Producer

from measure import fresh_folder
from poiflow.config import StreamSettings
from poiflow.generate import generate
from poiflow.generate.edits import edited_sources, generate_edits
from poiflow.pipeline import conflate
from poiflow.streaming import StreamState, edit_message, parse_edit
from poiflow.streaming.consumer import EditStream, StreamMetrics
from poiflow.streaming.producer import create_topics, edit_keys, send_edits

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "benchmarks" / "data"


def world(places: int, seed: int) -> tuple[Path, Path]:
    folder = DATA / f"stream-world-{places}-{seed}"
    if fresh_folder(folder / "sources", folder / "out" / "places.parquet"):
        shutil.rmtree(folder / "out", ignore_errors=True)  # the sources went with the check
        made = generate(places, 3, seed, folder / "sources")
        conflate(made.sources, folder / "out", workers=2)
    return folder / "sources", folder / "out"


def topics(broker: str, name: str) -> StreamSettings:
    config = StreamSettings.prefixed(broker, name)
    create_topics(config)
    return config


COMPARED = ["names", "categories", "address", "phones", "websites", "opening_hours"]
COMPARED += ["operating_status", "lat", "lon", "members", "attribute_confidence"]


def agreement(streamed: Path, batch: Path) -> None:
    """How the places the stream made of the day compare with the batch's."""
    members = [pl.DataFrame(pq.read_table(f / "membership.parquet")) for f in (streamed, batch)]
    joined = members[0].join(members[1], on=["source", "id"], suffix="_batch")
    same_place = (joined["place_id"] == joined["place_id_batch"]).mean()

    def groups(frame: pl.DataFrame) -> pl.DataFrame:
        return frame.group_by("place_id").agg(pl.concat_str("source", "id").sort().alias("m"))

    same = groups(members[0]).join(groups(members[1]), on=["place_id", "m"])["place_id"]
    columns = ["id", *COMPARED, "confidence"]
    places = [
        pl.DataFrame(pq.read_table(f / "places.parquet", columns=columns)).filter(
            pl.col("id").is_in(same.implode())
        )
        for f in (streamed, batch)
    ]
    both = places[0].join(places[1], on="id", suffix="_batch")
    equal = pl.all_horizontal([pl.col(c).eq_missing(pl.col(f"{c}_batch")) for c in COMPARED])
    drift = (both["confidence"] - both["confidence_batch"]).abs()
    print(
        f"stream vs batch: {same_place:.2%} of {joined.height:,} records in the same place; "
        f"{same.len():,} of {members[1]['place_id'].n_unique():,} places with the same "
        f"members, {both.filter(equal).height / both.height:.2%} of those with the same "
        f"attributes; confidence drift p95 {drift.quantile(0.95):.4f}, max {drift.max():.4f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--places", type=int, default=20_000)
    parser.add_argument("--edits", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=StreamSettings().batch_size)
    parser.add_argument("--rate", type=int, default=500, help="edits/s in the steady run")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--group-protocol",
        choices=["classic", "consumer"],
        default="classic",
        help="the consumer group protocol (consumer: KIP-848, Kafka 4)",
    )
    args = parser.parse_args()
    sources, out = world(args.places, args.seed)
    day = generate_edits(sources, args.edits, args.seed)
    messages = [edit_message(e["edit_id"], e["op"], e["time"], e["place"]) for e in day]
    print(f"world: {args.places:,} places ({out}); {len(messages):,} edits")

    # 3. apply only, in process: the last 1,000 edits in batches of 100, to show a batch's
    # fixed cost; then what a checkpoint costs (the places put together, the snapshot).
    state = StreamState(out)
    edits = [parse_edit(m) for m in messages]
    small = min(1000, len(edits) // 10)
    started = time.perf_counter()
    for i in range(0, len(edits) - small, args.batch):
        state.apply(edits[i : min(i + args.batch, len(edits) - small)])
    middle = time.perf_counter()
    for i in range(len(edits) - small, len(edits), 100):
        state.apply(edits[i : i + 100])
    apply_s = middle - started
    per_small = (time.perf_counter() - middle) / max(1, small / 100)
    started = time.perf_counter()
    state.places  # noqa: B018 - put together, as a checkpoint does first
    together = time.perf_counter() - started
    timed = Path(tempfile.mkdtemp(prefix="poiflow-stream-bench-"))
    state.save(timed)  # later snapshots take the run's files from it: kept until the end
    written = time.perf_counter() - started - together
    print(
        f"a batch of 100 edits: {per_small * 1000:.0f} ms; a checkpoint: "
        f"{together:.2f} s putting the places together, {written:.2f} s writing the snapshot"
    )
    print(
        f"apply only: {(len(edits) - small) / apply_s:,.0f} edits/s in batches of "
        f"{args.batch:,} ({apply_s:.1f} s)"
    )

    scratch = Path(tempfile.mkdtemp(prefix="poiflow-stream-bench-"))
    script = str(ROOT / "scripts" / "kafka_server.sh")
    broker = (
        subprocess.run(
            ["bash", script, "start", str(scratch / "kafka"), "19392"],
            check=True,
            capture_output=True,
            text=True,
        )
        .stdout.strip()
        .splitlines()[-1]
    )
    try:
        # 1. drain a backlog
        group = {"consumer": {"group.protocol": args.group_protocol}}
        config = topics(broker, "drain").model_copy(update={"batch_size": args.batch, **group})
        send_edits(config, messages)
        first: list[float] = []  # when the first batch was through, less its own time

        def on_batch(metrics: StreamMetrics) -> None:
            if not first:
                first.append(time.perf_counter() - started - metrics.seconds)

        stream = EditStream(StreamState(out), scratch / "drain", config, on_batch=on_batch)
        started = time.perf_counter()
        metrics = stream.run(idle_exit_s=3)
        drain_s = time.perf_counter() - started - 3
        counts = metrics.counts
        print(
            f"drain: {counts['received'] / drain_s:,.0f} edits/s end to end, joining the "
            f"group included; {counts['received'] / (drain_s - first[0]):,.0f} edits/s "
            f"sustained (from the first batch on: consuming, applying, events, snapshots and "
            f"commits); {counts['received'] / metrics.seconds:,.0f} edits/s while "
            f"applying ({counts['received']:,} edits, {counts['batches']} batches, "
            f"{counts['events']:,} events, {counts['dead']} dead, "
            f"{counts['stale'] + counts['duplicate']} stale or repeated) in {drain_s:.1f} s; "
            f"the first batch came {first[0]:.1f} s after the start ({args.group_protocol} "
            "group protocol)"
        )
        # 2. steady rate
        config = topics(broker, "steady").model_copy(
            update={"batch_size": args.batch, "wait_ms": 100, **group}
        )
        stream = EditStream(StreamState(out), scratch / "steady", config)
        runner = threading.Thread(target=stream.run)
        runner.start()
        warm = Producer({"bootstrap.servers": broker})
        while not stream.metrics.counts["batches"]:  # once it holds its partitions
            send_edits(config, messages[:1], warm)
            time.sleep(1)
        stream.metrics.latencies.clear()
        sent_before = stream.metrics.counts["received"]
        step = max(1, args.rate // 10)
        keys = [k.encode() for k in edit_keys(messages)]
        producer = Producer({"bootstrap.servers": broker, "enable.idempotence": True})
        started = time.perf_counter()
        for k, i in enumerate(range(0, len(messages), step)):
            for key, message in zip(keys[i : i + step], messages[i : i + step], strict=True):
                producer.produce(config.edits, key=key, value=message)
            producer.poll(0)
            pause = started + (k + 1) * 0.1 - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
        producer.flush(60)
        while stream.metrics.counts["received"] < sent_before + len(messages):
            time.sleep(0.2)
        stream.stop()
        runner.join()
        summary = stream.metrics.summary()
        batches = stream.metrics.counts["batches"]
        print(
            f"steady {args.rate}/s: edit to event p50 {summary['latency_p50_s'] * 1000:.0f} ms, "
            f"p99 {summary['latency_p99_s'] * 1000:.0f} ms over {summary['received']:,} edits "
            f"in {batches} batches of {summary['received'] / batches:.0f} "
            f"({stream.metrics.seconds / batches * 1000:.0f} ms each, "
            f"{stream.metrics.counts['checkpoints']} checkpoints)"
        )
        # Kafka clients are closed when collected: before the broker stops, or they
        # keep trying to reach it and log each try.
        del stream, runner, warm, producer
        gc.collect()
    finally:
        subprocess.run(["bash", script, "stop", str(scratch / "kafka")], check=False)
    # 4. the peer: the batch over the edited sources
    edited = edited_sources(sources, day, scratch / "edited")
    started = time.perf_counter()
    conflate(edited, scratch / "batch", workers=2, previous=out)
    batch_s = time.perf_counter() - started
    print(
        f"batch re-run over the day's sources: {batch_s:.1f} s (places this stale without a stream)"
    )
    agreement(state.save(scratch / "applied"), scratch / "batch")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    print(f"peak RSS {peak:.2f} GB")
    shutil.rmtree(scratch, ignore_errors=True)
    shutil.rmtree(timed, ignore_errors=True)


if __name__ == "__main__":
    main()
