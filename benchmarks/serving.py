"""The HTTP API under a steady load: /search and /match against a trivial endpoint, on
127.0.0.1; and how often /match agrees with the batch run.

Starts `poiflow serve` on the output of a generated world (the search benchmark's, made by
`benchmarks/search.py` if missing), then drives it with vegeta (a constant-rate HTTP load
generator, built once from its Go module into benchmarks/data/bin) at a steady rate:
first `GET /health` (a trivial FastAPI endpoint that returns a small dict: the floor any
endpoint of this server stands on), then `GET /search` over 1,000 queries made from
perturbed names, half with a point, then `POST /match` of 1,000 records of the sources,
one per request. Prints p50, p99 and max latency, the share of requests that failed, and
the server's CPU time per request (from /proc: what one request costs it).

Agreement: 10,000 records of the sources, as the sources give them, are sent to
`POST /match` in batches of 1,000 and each answer is compared with the batch run's
decision on that record: its place, or new when the run left it alone (a record is never
its own evidence, so this is the run's decision as if the record arrived last).

Usage:
    .venv/bin/python benchmarks/serving.py                     # 200 requests/s, 60 s each
    .venv/bin/python benchmarks/serving.py --rate 100 --seconds 20
"""

from __future__ import annotations

import argparse
import base64
import csv
import json
import os
import random
import shutil
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pyarrow.parquet as pq

from measure import free_port
from poiflow.text import fold
from search import golden_places, perturbed

ROOT = Path(__file__).resolve().parent.parent
BIN = ROOT / "benchmarks" / "data" / "bin"
VEGETA = "github.com/tsenart/vegeta/v12@v12.13.0"


def vegeta() -> Path:
    found = BIN / "vegeta"
    if not found.exists():
        if shutil.which("go") is None:
            sys.exit("this benchmark builds vegeta with Go: install Go (golang-go) first")
        print(f"building vegeta ({VEGETA}) into {BIN} (once)")
        subprocess.run(["go", "install", VEGETA], check=True, env={**os.environ, "GOBIN": str(BIN)})
    return found


def attack(tool: Path, targets: list[str | dict], rate: int, seconds: int) -> dict:
    """Send ``targets`` (round robin: a URL to GET, or a JSON body to POST to /match) at
    ``rate`` per second for ``seconds``; vegeta's report as JSON."""
    listing = "".join(
        json.dumps(
            {"method": "GET", "url": t}
            if isinstance(t, str)
            else {
                "method": "POST",
                "url": t["url"],
                "body": base64.b64encode(json.dumps(t["body"]).encode()).decode(),
                "header": {"Content-Type": ["application/json"]},
            }
        )
        + "\n"
        for t in targets
    )
    results = subprocess.run(
        [
            str(tool),
            "attack",
            "-format=json",
            f"-rate={rate}",
            f"-duration={seconds}s",
            "-timeout=10s",
        ],
        input=listing.encode(),
        capture_output=True,
        check=True,
    ).stdout
    report = subprocess.run(
        [str(tool), "report", "-type=json"], input=results, capture_output=True, check=True
    )
    return json.loads(report.stdout)


def cpu_seconds(pid: int) -> float:
    """User and system CPU time a process and its children (``serve --workers``) have
    used so far (Linux's /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    own = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    children = [
        int(child)
        for task in Path(f"/proc/{pid}/task").iterdir()
        for child in (task / "children").read_text().split()
    ]
    return own + sum(cpu_seconds(child) for child in children)


def source_rows(folder: Path) -> list[dict]:
    """Every record of the generated sources, as the sources give it (flat place format)."""
    rows = []
    for path in sorted(folder.glob("source_*.csv")):
        with path.open(newline="", encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                place = {k: v for k, v in row.items() if v not in ("", None)}
                place.setdefault("source", path.stem)
                for number in ("lat", "lon"):
                    if number in place:
                        place[number] = float(place[number])
                rows.append(place)
    return rows


def agreement(base: str, out: Path, rows: list[dict]) -> None:
    """Send ``rows`` to /match in batches of 1,000; print how often each answer is the
    batch run's decision on that record."""
    membership = pq.read_table(out / "membership.parquet").to_pylist()
    place_of = {(m["source"], m["id"]): m["place_id"] for m in membership}
    size: dict[str, int] = {}
    for place in place_of.values():
        size[place] = size.get(place, 0) + 1
    same = total = 0
    started = time.perf_counter()
    for start in range(0, len(rows), 1000):
        batch = rows[start : start + 1000]
        request = urllib.request.Request(
            f"{base}/match",
            data=json.dumps(batch).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=600) as answer:
            results = json.loads(answer.read())["results"]
        for row, result in zip(batch, results, strict=True):
            place = place_of.get((row["source"], row["id"]))
            if place is None:  # the run held it back: so must /match
                same += "error" in result
            else:
                expected = place if size[place] > 1 else None
                same += "error" not in result and result["place_id"] == expected
            total += 1
    seconds = time.perf_counter() - started
    print(
        f"POST /match in batches of 1,000: {total:,} records in {seconds:.1f} s "
        f"({total / seconds:,.0f} records/s); agreement with the batch run: {same / total:.2%}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=int, default=200, help="requests per second")
    parser.add_argument("--seconds", type=int, default=60, help="per endpoint")
    parser.add_argument("--places", type=int, default=20_000)
    parser.add_argument("--workers", type=int, default=1, help="server processes (serve --workers)")
    args = parser.parse_args()
    tool = vegeta()
    out = golden_places(args.places, 2, 5)
    places = pq.read_table(out / "places.parquet", columns=["names", "lat", "lon"]).to_pylist()
    rng = random.Random(5)
    named = [p for p in places if p["names"] and len(fold(p["names"]["primary"] or "")) >= 6]
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    queries = []
    for p in rng.sample(named, 1000):
        params = {"q": perturbed(p["names"]["primary"], rng), "limit": 10}
        if rng.random() < 0.5 and p["lat"] is not None:
            params |= {"lat": p["lat"], "lon": p["lon"]}
        queries.append(f"{base}/search?{urllib.parse.urlencode(params)}")
    log = out.parent / "serve.log"
    with log.open("w") as sink:
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "poiflow",
                "serve",
                str(out),
                "--port",
                str(port),
                "--workers",
                str(args.workers),
            ],
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:
        for _ in range(300):
            try:
                with urllib.request.urlopen(f"{base}/health", timeout=2):
                    break
            except OSError:
                time.sleep(0.2)
        print(f"{len(places):,} golden places; {args.rate} requests/s for {args.seconds} s each")
        columns = ("requests", "errors", "p50 ms", "p99 ms", "max ms", "CPU ms/req")
        print(f"{'endpoint':28} " + " ".join(f"{c:>9}" for c in columns))
        rows = source_rows(out.parent)
        matches: list[str | dict] = [
            {"url": f"{base}/match", "body": row} for row in rng.sample(rows, 1000)
        ]
        plain: list[str | dict] = [f"{base}/health"]
        searches: list[str | dict] = list(queries)
        for label, targets in (
            ("GET /health (trivial)", plain),
            ("GET /search", searches),
            ("POST /match (one record)", matches),
        ):
            spent = cpu_seconds(server.pid)
            report = attack(tool, targets, args.rate, args.seconds)
            # The server's own CPU time per request under this load (all its threads).
            cpu_ms = (cpu_seconds(server.pid) - spent) * 1000 / max(1, report["requests"])
            latency = report["latencies"]
            errors = 1 - report["success"]
            print(
                f"{label:28} {report['requests']:9,} {errors:9.2%} {latency['50th'] / 1e6:9.2f} "
                f"{latency['99th'] / 1e6:9.2f} {latency['max'] / 1e6:9.2f} {cpu_ms:9.2f}"
            )
            for error in report.get("errors") or []:  # what failed, in vegeta's words
                print(f"{'':28} error: {error}")
        agreement(base, out, rng.sample(rows, 10_000))
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:  # still answering a backlog
            server.kill()
            server.wait()


if __name__ == "__main__":
    main()
