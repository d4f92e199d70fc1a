"""The serving store: publishing golden places into Apache Cassandra, and looking them up,
against the embedded store (the output's own files in memory) on the same places.

Starts a one-node Cassandra on 127.0.0.1 (`scripts/cassandra_server.sh`), publishes the
search benchmark's 20k world (made by `benchmarks/search.py` if missing), publishes it
again (idempotent: nothing changes), then times 2,000 lookups of a place by id and 500 of
the places around a point (the candidates a real-time matcher would fetch) on each store.

Usage:
    .venv/bin/python benchmarks/store.py
"""

from __future__ import annotations

import random
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from poiflow.serving.cassandra import CassandraStore
from poiflow.serving.releases import Store
from search import golden_places

ROOT = Path(__file__).resolve().parent.parent


def timed(calls: list, function) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    ms = []
    for args in calls:
        started = time.perf_counter()
        function(*args)
        ms.append((time.perf_counter() - started) * 1000)
    p50, p99 = np.percentile(ms, [50, 99])
    return float(p50), float(p99)


def main() -> None:
    out = golden_places(20_000, 2, 5)
    places = pq.read_table(out / "places.parquet", columns=["id", "lat", "lon"]).to_pylist()
    rng = random.Random(7)
    by_id = [(p["id"],) for p in rng.sample(places, 2000)]
    located = [p for p in places if p["lat"] is not None]
    around = [(p["lat"], p["lon"]) for p in rng.sample(located, 500)]
    folder = Path(tempfile.mkdtemp(prefix="poiflow-bench-cassandra-"))
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    script = ROOT / "scripts" / "cassandra_server.sh"
    subprocess.run(["bash", str(script), "start", str(folder), str(port)], check=True)
    try:
        with CassandraStore(["127.0.0.1"], port, "bench") as store:
            first = store.publish(out)
            again = store.publish(out)
            rows = first.places * 2 + first.records * 2
            print(f"{first.places:,} places and {first.records:,} records ({rows:,} rows)")
            print(
                f"publish: {first.seconds:.1f} s ({rows / first.seconds:,.0f} rows/s); again "
                f"(idempotent): {again.seconds:.1f} s, removed {again.removed_places}"
            )
            embedded = Store(out)
            near_embedded = 0.02  # degrees: about the reach of one ring of res-7 cells
            print(f"{'lookup':40} {'p50 ms':>7} {'p99 ms':>7}")
            for label, calls, function in (
                ("place by id, Cassandra", by_id, store.place),
                ("place by id, embedded", by_id, embedded.place),
                ("places around a point, Cassandra", around, store.places_near),
                (
                    "places in a box around it, embedded",
                    around,
                    lambda lat, lon: embedded.in_box(
                        lon - near_embedded,
                        lat - near_embedded,
                        lon + near_embedded,
                        lat + near_embedded,
                        1000,
                        0,
                    ),
                ),
            ):
                p50, p99 = timed(calls, function)
                print(f"{label:40} {p50:7.2f} {p99:7.2f}")
    finally:
        subprocess.run(["bash", str(script), "stop", str(folder)], check=False)
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
