"""Search over golden places: the embedded index against a brute-force fuzzy scan.

Conflates a generated world (the project's generator, seeded), indexes its golden places
(`poiflow publish search`), then asks 1,000 queries made from the names of places picked
at random, each perturbed the way people type: two letters swapped, a letter dropped, the
last letters not typed yet, all in capitals, or accents left out. Half the queries carry
the place's position as `near`. Prints index build speed, top-1 and top-3 accuracy, and
p50/p99 latency; the peer is rapidfuzz's `process.extract` (WRatio) over every name, on
the same queries in the same run. With `--opensearch`, the same places are also published
to a real OpenSearch started here by `scripts/opensearch_server.sh` (the search server
backend) and asked the same queries.

A query counts as found when a place whose primary name folds to the same words is among
the results (chains share names; "MEMPHIS" and "Memphis" no text can tell apart).

Usage:
    .venv/bin/python benchmarks/search.py                  # 20,000 places, 2 sources
    .venv/bin/python benchmarks/search.py --places 100000
    .venv/bin/python benchmarks/search.py --opensearch     # and the search server backend
"""

from __future__ import annotations

import argparse
import contextlib
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
from rapidfuzz import fuzz, process

from measure import DATA, world_arguments
from poiflow.generate import generate
from poiflow.serving import build_search_index
from poiflow.serving.opensearch import OpenSearchIndex
from poiflow.text import fold

ROOT = Path(__file__).resolve().parent.parent


def golden_places(places: int, sources: int, seed: int) -> Path:
    folder = DATA / f"search-{places}-{sources}-{seed}"
    out = folder / "out"
    if not (out / "model.json.gz").exists():  # made by this version (matching needs it)
        made = generate(places, sources, seed, folder)
        command = [sys.executable, "-m", "poiflow", "conflate", *map(str, made.sources)]
        subprocess.run([*command, "-o", str(out)], check=True)
    return out


def perturbed(name: str, rng: random.Random) -> str:
    how = rng.choice(["swap", "drop", "prefix", "upper", "accents"])
    if how == "upper":
        return name.upper()
    if how == "accents":
        text = unicodedata.normalize("NFKD", name)
        return "".join(c for c in text if not unicodedata.combining(c))
    if how == "prefix":
        return name[: max(4, len(name) - 2)]
    at = rng.randrange(1, len(name) - 2)
    if how == "drop":
        return name[:at] + name[at + 1 :]
    return name[:at] + name[at + 1] + name[at] + name[at + 2 :]


@contextlib.contextmanager
def opensearch_server() -> Iterator[str]:
    """A one-node OpenSearch on a free port of 127.0.0.1, stopped afterwards."""
    folder = Path(tempfile.mkdtemp(prefix="poiflow-bench-opensearch-"))
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    script = ROOT / "scripts" / "opensearch_server.sh"
    started = subprocess.run(
        ["bash", str(script), "start", str(folder), str(port)],
        capture_output=True,
        text=True,
        check=True,
    )
    try:
        yield started.stdout.strip()
    finally:
        subprocess.run(["bash", str(script), "stop", str(folder)], check=False)
        shutil.rmtree(folder, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    world_arguments(parser, places=20_000, sources=2, seed=5)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument(
        "--opensearch", action="store_true", help="also the OpenSearch backend (started here)"
    )
    args = parser.parse_args()
    out = golden_places(args.places, args.sources, args.seed)
    table = pq.read_table(out / "places.parquet")
    started = time.perf_counter()
    index = build_search_index(out / "places.parquet", out / "search")
    build = time.perf_counter() - started
    places = table.select(["id", "names", "lat", "lon"]).to_pylist()
    names = [(p["names"] or {}).get("primary") or "" for p in places]
    # Places whose names fold the same ("MEMPHIS", "Memphis") no text can tell apart.
    by_name: dict[str, set[int]] = {}
    for i, name in enumerate(names):
        by_name.setdefault(fold(name), set()).add(i)
    rng = random.Random(args.seed)
    candidates = [i for i, name in enumerate(names) if len(fold(name)) >= 6]
    picked = rng.sample(candidates, args.queries)
    queries = [(perturbed(names[i], rng), i, rng.random() < 0.5) for i in picked]
    ids = [p["id"] for p in places]
    row_of = {place_id: i for i, place_id in enumerate(ids)}

    def score(results: list[list[int]]) -> tuple[float, float]:
        top1 = top3 = 0
        for (_, i, _), rows in zip(queries, results, strict=True):
            same = by_name[fold(names[i])]
            top1 += bool(rows[:1]) and rows[0] in same
            top3 += any(r in same for r in rows[:3])
        return top1 / len(queries), top3 / len(queries)

    def ask(backend: Any) -> tuple[list[list[int]], list[float]]:
        found: list[list[int]] = []
        ms = []
        for query, i, with_point in queries:
            located = places[i]["lat"] is not None
            near = (places[i]["lat"], places[i]["lon"]) if with_point and located else None
            t = time.perf_counter()
            hits = backend.search(query, near=near, limit=3)
            ms.append((time.perf_counter() - t) * 1000)
            found.append([row_of[hit.id] for hit in hits])
        return found, ms

    ours, ours_ms = ask(index)
    rows = [("poiflow index (Tantivy)", ours, ours_ms)]
    if args.opensearch:
        with opensearch_server() as url:
            server = OpenSearchIndex(url, "bench")
            started = time.perf_counter()
            server.publish(table)
            published = time.perf_counter() - started
            print(f"OpenSearch publish: {published:.2f} s, {len(places) / published:,.0f} places/s")
            ask(server)  # warm the JVM up first: the figures are of a running server
            found, ms = ask(server)
            rows.append(("poiflow on OpenSearch 2.19", found, ms))
    folded = [fold(name) for name in names]
    peer: list[list[int]] = []
    peer_ms = []
    for query, _, _ in queries:
        t = time.perf_counter()
        found = process.extract(fold(query), folded, scorer=fuzz.WRatio, limit=3)
        peer_ms.append((time.perf_counter() - t) * 1000)
        peer.append([row for _, _, row in found])
    made = f"{args.places:,} generated places x {args.sources} sources"
    print(f"{len(places):,} golden places from {made}")
    print(
        f"index build: {build:.2f} s, {len(places) / build:,.0f} places/s, {len(index):,} documents"
    )
    print(f"{'search':34} {'top-1':>6} {'top-3':>6} {'p50 ms':>7} {'p99 ms':>7}")
    for label, results, ms in (*rows, ("rapidfuzz WRatio scan (peer)", peer, peer_ms)):
        top1, top3 = score(results)
        p50, p99 = np.percentile(ms, [50, 99])
        print(f"{label:34} {top1:6.3f} {top3:6.3f} {p50:7.2f} {p99:7.2f}")


if __name__ == "__main__":
    main()
