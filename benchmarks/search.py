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

Then the queries whose place is open at one time (`--open-at`, default "Sa 12:00", each
place's local time) are asked again with that time: only places open then may be found.
The peer is the same scan over the names of the places open then, found by checking every
place's hours with the `opening_hours` parser once for that time (its cost printed apart).

Last, `--nearby` queries with a point and a category and no words ("pharmacies near
here"), at the points of places picked at random: found when the 5 places returned are
the 5 of that category (primary or alternate, as the filter reads it) nearest the point,
nearest first. The peer is numpy's haversine over every place of the category.

And `--nearby` queries of one common word (a word of at least 30 places' names, "cafe",
"pizza") at the point of a place picked at random: found when the place nearest the
point whose name has the word is among the 5 results.

Usage:
    .venv/bin/python benchmarks/search.py                  # 20,000 places, 2 sources
    .venv/bin/python benchmarks/search.py --places 100000
    .venv/bin/python benchmarks/search.py --opensearch     # and the search server backend
    .venv/bin/python benchmarks/search.py --open-at "Su 21:00"
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
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
from rapidfuzz import fuzz, process

from measure import DATA, fresh_folder, world_arguments
from poiflow.conflate.geo import haversine_m
from poiflow.generate import generate
from poiflow.serving import build_search_index
from poiflow.serving.opening import When, open_until, parse_when
from poiflow.serving.opensearch import OpenSearchIndex
from poiflow.text import fold

ROOT = Path(__file__).resolve().parent.parent
# A query: its text, the row of the place it was made from, and whether it has a point.
Query = tuple[str, int, bool]


def golden_places(places: int, sources: int, seed: int) -> Path:
    folder = DATA / f"search-{places}-{sources}-{seed}"
    out = folder / "out"
    if fresh_folder(folder, out / "model.json.gz"):  # matching needs the run's model
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
    parser.add_argument("--open-at", default="Sa 12:00", help="the time of the open queries")
    parser.add_argument("--nearby", type=int, default=200, help="category-near-a-point queries")
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

    def score(asked: list[Query], results: list[list[int]]) -> tuple[float, float]:
        top1 = top3 = 0
        for (_, i, _), rows in zip(asked, results, strict=True):
            same = by_name[fold(names[i])]
            top1 += bool(rows[:1]) and rows[0] in same
            top3 += any(r in same for r in rows[:3])
        return top1 / len(asked), top3 / len(asked)

    def ask(
        backend: Any, asked: list[Query], open_at: When | None = None
    ) -> tuple[list[list[int]], list[float]]:
        found: list[list[int]] = []
        ms = []
        for query, i, with_point in asked:
            located = places[i]["lat"] is not None
            near = (places[i]["lat"], places[i]["lon"]) if with_point and located else None
            t = time.perf_counter()
            hits = backend.search(query, near=near, open_at=open_at, limit=3)
            ms.append((time.perf_counter() - t) * 1000)
            found.append([row_of[hit.id] for hit in hits])
        return found, ms

    def scan(asked: list[Query], rows: list[int]) -> tuple[list[list[int]], list[float]]:
        """The peer: rapidfuzz's WRatio over the folded names of ``rows``."""
        among = [fold(names[row]) for row in rows]
        found: list[list[int]] = []
        ms = []
        for query, _, _ in asked:
            t = time.perf_counter()
            best = process.extract(fold(query), among, scorer=fuzz.WRatio, limit=3)
            ms.append((time.perf_counter() - t) * 1000)
            found.append([rows[at] for _, _, at in best])
        return found, ms

    when = parse_when(args.open_at)
    hours = table.column("opening_hours").to_pylist()
    started = time.perf_counter()
    open_rows = [
        i for i, p in enumerate(places) if open_until(hours[i], p["lat"], p["lon"], when)[0]
    ]
    checked = time.perf_counter() - started
    is_open = set(open_rows)
    open_queries = [q for q in queries if q[1] in is_open]
    near_found, near_ms, near_peer_ms = nearby(index, table, args.nearby, rng)
    word_found, word_ms = common_word_nearby(index, table, args.nearby, rng)
    ours, ours_ms = ask(index, queries)
    open_found, open_ms = ask(index, open_queries, when)
    rows = [("poiflow index (Tantivy)", ours, ours_ms)]
    open_rows_printed = [("poiflow index (Tantivy)", open_found, open_ms)]
    if args.opensearch:
        with opensearch_server() as url:
            server = OpenSearchIndex(url, "bench")
            started = time.perf_counter()
            server.publish(table)
            published = time.perf_counter() - started
            print(f"OpenSearch publish: {published:.2f} s, {len(places) / published:,.0f} places/s")
            ask(server, queries)  # warm the JVM up first: the figures are of a running server
            found, ms = ask(server, queries)
            rows.append(("poiflow on OpenSearch 2.19", found, ms))
            found, ms = ask(server, open_queries, when)
            open_rows_printed.append(("poiflow on OpenSearch 2.19", found, ms))
    peer, peer_ms = scan(queries, list(range(len(names))))
    open_peer, open_peer_ms = scan(open_queries, open_rows)
    made = f"{args.places:,} generated places x {args.sources} sources"
    print(f"{len(places):,} golden places from {made}")
    print(
        f"index build: {build:.2f} s, {len(places) / build:,.0f} places/s, {len(index):,} documents"
    )
    print(f"{'search':34} {'top-1':>6} {'top-3':>6} {'p50 ms':>7} {'p99 ms':>7}")
    for label, results, ms in (*rows, ("rapidfuzz WRatio scan (peer)", peer, peer_ms)):
        top1, top3 = score(queries, results)
        p50, p99 = np.percentile(ms, [50, 99])
        print(f"{label:34} {top1:6.3f} {top3:6.3f} {p50:7.2f} {p99:7.2f}")
    with_hours = sum(bool(h) for h in hours)
    print(
        f"\nopen at {args.open_at!r}: {with_hours:,} places have hours, {len(open_rows):,} are "
        f"open then; {len(open_queries):,} of the queries are of an open place. The peer's "
        f"check of every place's hours took {checked:.2f} s ({len(places) / checked:,.0f}/s)."
    )
    print(f"{'search, open then':34} {'top-1':>6} {'top-3':>6} {'p50 ms':>7} {'p99 ms':>7}")
    peer_row = ("open places, WRatio scan (peer)", open_peer, open_peer_ms)
    for label, results, ms in (*open_rows_printed, peer_row):
        top1, top3 = score(open_queries, results)
        p50, p99 = np.percentile(ms, [50, 99])
        print(f"{label:34} {top1:6.3f} {top3:6.3f} {p50:7.2f} {p99:7.2f}")
        shut = sum(row not in is_open for found in results for row in found)
        assert shut == 0, f"{label} found {shut} places closed then"
    print(f"\n{'category near a point, no words':34} {'right':>6} {'p50 ms':>7} {'p99 ms':>7}")
    for label, right, ms in (
        ("poiflow index (Tantivy)", near_found, near_ms),
        ("numpy haversine scan (peer)", 1.0, near_peer_ms),
    ):
        p50, p99 = np.percentile(ms, [50, 99])
        print(f"{label:34} {right:6.3f} {p50:7.2f} {p99:7.2f}")
    p50, p99 = np.percentile(word_ms, [50, 99])
    print(f"{'a common word near a point':34} {'found':>6} {'p50 ms':>7} {'p99 ms':>7}")
    print(f"{'poiflow index (Tantivy)':34} {word_found:6.3f} {p50:7.2f} {p99:7.2f}")


def common_word_nearby(
    index: Any, table: Any, count: int, rng: random.Random
) -> tuple[float, list[float]]:
    """``count`` queries of a word of at least 30 names at the point of a random place: the
    share whose 5 results hold the nearest place with the word in its name, and latencies."""
    rows = [r for r in table.select(["id", "names", "lat", "lon"]).to_pylist() if r["lat"]]
    words = [set(fold((r["names"] or {}).get("primary") or "").split()) for r in rows]
    often = Counter(word for known in words for word in known)
    common = sorted(w for w, n in often.items() if n >= 30 and len(w) >= 4)
    having = {w: np.array([i for i, known in enumerate(words) if w in known]) for w in common}
    lat = np.array([r["lat"] for r in rows])
    lon = np.array([r["lon"] for r in rows])
    found = 0
    ms: list[float] = []
    for _ in range(count):
        here = rng.choice(rows)
        word = rng.choice(common)
        point = (here["lat"], here["lon"])
        among = having[word]
        metres = haversine_m(point[0], point[1], lat[among], lon[among])
        nearest = rows[among[int(np.argmin(metres))]]
        t = time.perf_counter()
        hits = index.search(word, near=point, limit=5)
        ms.append((time.perf_counter() - t) * 1000)
        found += nearest["id"] in {hit.id for hit in hits}
    return found / count, ms


def nearby(
    index: Any, table: Any, count: int, rng: random.Random
) -> tuple[float, list[float], list[float]]:
    """``count`` queries of a category near the point of a place: the share whose 5 results
    are the 5 nearest of the category, and the latencies of the index and of the scan."""
    rows = table.select(["id", "categories", "lat", "lon"]).to_pylist()
    located = [r for r in rows if r["lat"] is not None and (r["categories"] or {}).get("primary")]
    kinds = [{r["categories"]["primary"], *(r["categories"]["alternate"] or [])} for r in located]
    lat = np.array([r["lat"] for r in located])
    lon = np.array([r["lon"] for r in located])
    ids = np.array([r["id"] for r in located])
    right = 0
    ours_ms: list[float] = []
    peer_ms: list[float] = []
    for picked in rng.sample(located, count):
        here, kind = (picked["lat"], picked["lon"]), picked["categories"]["primary"]
        t = time.perf_counter()
        hits = index.search("", category=kind, near=here, limit=5)
        ours_ms.append((time.perf_counter() - t) * 1000)
        t = time.perf_counter()
        keep = np.array([i for i, known in enumerate(kinds) if kind in known])
        metres = haversine_m(here[0], here[1], lat[keep], lon[keep])
        order = keep[np.argsort(metres, kind="stable")[:5]]
        peer_ms.append((time.perf_counter() - t) * 1000)
        right += [hit.id for hit in hits] == list(ids[order])
    return right / count, ours_ms, peer_ms


if __name__ == "__main__":
    main()
