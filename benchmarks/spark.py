"""The Spark engine against the local engine on the same generated records, in one run.

Runs the same pipeline (generated sources with known truth) as whole processes: on the
local engine, and on Spark in local mode with 1 and 2 cores. Prints wall seconds, records/s,
peak RSS of the process tree (the JVM included), seconds per stage, the Spark/local ratio
and the local[2]/local[1] throughput ratio, and checks that every engine wrote the same
membership and places. Then projects, from the measured per-record core-seconds of each
Spark stage, the cluster size and time for 100M places from 3 sources.

Usage:
    .venv/bin/python benchmarks/spark.py                   # ~1M records (365,000 places)
    .venv/bin/python benchmarks/spark.py --places 36000    # ~110k records, a quick look
    .venv/bin/python benchmarks/spark.py --skewed          # one dense city centre
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import polars as pl
import yaml

from measure import DATA, fresh_folder, measure, world_arguments
from poiflow.generate import generate

STAGES = ("ingest", "block", "score", "cluster", "merge")


def world(places: int, sources: int, seed: int, skewed: bool) -> tuple[Path, list[str]]:
    folder = DATA / f"world-{places}-{sources}-{seed}{'-skewed' if skewed else ''}"
    if fresh_folder(folder):
        generate(places, sources, seed, folder)
        if skewed:
            crowd_into_one_city(folder, share=0.5)
    return folder, sorted(str(p) for p in folder.glob("source_*.csv"))


def crowd_into_one_city(folder: Path, share: float) -> None:
    """Move ``share`` of the real places (with every record of them, keeping their
    offsets from the place) into one ~15 km wide city centre: a hot shard."""
    gold = pl.read_csv(folder / "gold.csv", schema_overrides={"id": pl.String})
    places = gold.select("place").unique().sort("place")
    chosen = places.filter(pl.col("place").hash(seed=3) % 1000 < int(share * 1000))
    centre = chosen.with_columns(
        (60.17 + ((pl.col("place").hash(seed=5) % 10_000) / 10_000 - 0.5) * 0.14).alias("c_lat"),
        (24.94 + ((pl.col("place").hash(seed=7) % 10_000) / 10_000 - 0.5) * 0.28).alias("c_lon"),
    )
    for path in sorted(folder.glob("source_*.csv")):
        source = path.stem
        frame = pl.read_csv(path, infer_schema=False)
        if "lat" not in frame.columns:
            continue
        keys = gold.filter(pl.col("source") == source).select("id", "place")
        frame = frame.join(keys, on="id", how="left", maintain_order="left")
        frame = frame.with_columns(pl.col("lat").cast(pl.Float64), pl.col("lon").cast(pl.Float64))
        means = frame.group_by("place").agg(
            pl.col("lat").mean().alias("m_lat"), pl.col("lon").mean().alias("m_lon")
        )
        frame = frame.join(means, on="place", how="left").join(centre, on="place", how="left")
        moved = pl.col("c_lat").is_not_null() & pl.col("lat").is_not_null()
        frame = frame.with_columns(
            pl.when(moved)
            .then(pl.col("c_lat") + pl.col("lat") - pl.col("m_lat"))
            .otherwise(pl.col("lat"))
            .alias("lat"),
            pl.when(moved)
            .then(pl.col("c_lon") + pl.col("lon") - pl.col("m_lon"))
            .otherwise(pl.col("lon"))
            .alias("lon"),
        )
        frame.drop("place", "m_lat", "m_lon", "c_lat", "c_lon").write_csv(path)


def run(
    folder: Path,
    files: list[str],
    name: str,
    engine: str,
    master: str,
    shard_pairs: int,
    cores: str | None = None,
) -> dict:
    """One whole ``poiflow run`` of the world's sources (on the CPU list ``cores`` only,
    through taskset, if given)."""
    out = folder / f"run-{name}"
    pipeline = {
        "name": f"bench-{name}",
        "sources": [{"path": f} for f in files],
        "engine": engine,
        "spark": {
            "master": master,
            "partitions": 8,
            "shard_pairs": shard_pairs,
            "driver_memory": "8g",
        },
        "output": str(out),
        "cache": None,
        "tracking": None,
    }
    path = folder / f"pipeline-{name}.yaml"
    path.write_text(yaml.safe_dump(pipeline), "utf-8")
    command = [sys.executable, "-m", "poiflow", "run", str(path), "--no-cache", "--no-track"]
    if cores is not None:
        command = ["taskset", "--cpu-list", cores, *command]
    seconds, peak, _ = measure([*command, "--json"])
    report = json.loads((out / "run.json").read_text("utf-8"))
    stages = {s["name"]: s for s in report["stages"]}
    records = report["counts"]["records"]
    return {
        "name": name,
        "seconds": seconds,
        "records": records,
        "records_per_s": records / seconds,
        "peak_mib": peak,
        "stage_seconds": {s: round(stages[s]["seconds"], 1) for s in STAGES},
        "score": report.get("score_shards") or {"shards": "-", "largest_shard_pairs": "-"},
        "out": out,
    }


def same(a: Path, b: Path) -> bool:
    return all(
        pl.read_parquet(a / f"{n}.parquet").equals(pl.read_parquet(b / f"{n}.parquet"))
        for n in ("membership", "places")
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    world_arguments(parser, places=365_000, sources=4, seed=1234)
    parser.add_argument("--skewed", action="store_true", help="half the places in one city")
    parser.add_argument("--no-local1", action="store_true", help="skip Spark local[1]")
    args = parser.parse_args()
    folder, files = world(args.places, args.sources, args.seed, args.skewed)
    runs = [run(folder, files, "local-engine", "local", "local[2]", 50_000)]
    runs.append(run(folder, files, "spark-local2", "spark", "local[2]", 50_000))
    if args.skewed:  # the same Spark run without cutting hot cells
        runs.append(run(folder, files, "spark-local2-uncut", "spark", "local[2]", 10**12))
    if not args.no_local1:
        runs.append(run(folder, files, "spark-local1", "spark", "local[1]", 50_000))
        # One task slot is not one core (the JVM's shuffle and GC threads use the other):
        # the same run held to one core shows what a second core buys.
        runs.append(run(folder, files, "spark-local1-one-core", "spark", "local[1]", 50_000, "0"))
    print(
        f"{runs[0]['records']:,} records, {args.sources} sources, seed {args.seed}"
        + (", half the places in one city" if args.skewed else "")
    )
    print(
        f"{'run':22} {'seconds':>8} {'records/s':>10} {'peak MiB':>9}  "
        + "  ".join(f"{s:>7}" for s in STAGES)
        + "  score shards (largest)"
    )
    for r in runs:
        stages = "  ".join(f"{r['stage_seconds'][s]:7.1f}" for s in STAGES)
        shards = r["score"]
        head = f"{r['name']:22} {r['seconds']:8.1f} {r['records_per_s']:10,.0f}"
        tail = f"{shards['shards']} ({shards['largest_shard_pairs']})"
        print(f"{head} {r['peak_mib']:9,.0f}  {stages}  {tail}")
    local, spark2 = runs[0], runs[1]
    overhead = spark2["seconds"] / local["seconds"]
    print(f"Spark local[2] / local engine, wall time: {overhead:.2f}x (target <= 3x)")
    by_name = {r["name"]: r for r in runs}
    if "spark-local1" in by_name:
        ratio = spark2["records_per_s"] / by_name["spark-local1"]["records_per_s"]
        print(f"Spark local[2] / local[1] throughput: {ratio:.2f}x (aim >= 1.7x)")
        ratio = spark2["records_per_s"] / by_name["spark-local1-one-core"]["records_per_s"]
        print(f"Spark local[2] on 2 cores / local[1] on 1 core throughput: {ratio:.2f}x")
    # Core-seconds of each stage: local[2]'s wall seconds on both cores.
    project({s: 2 * spark2["stage_seconds"][s] for s in STAGES}, local["records"])
    if "spark-local2-uncut" in by_name:
        cut, uncut = (
            spark2["stage_seconds"]["score"],
            by_name["spark-local2-uncut"]["stage_seconds"]["score"],
        )
        print(f"skew: score stage {cut:.1f} s with hot cells cut, {uncut:.1f} s without")
        print(f"      ({uncut / cut:.2f}x longer without)")
    print(
        "same membership and places on every engine:",
        all(same(local["out"], r["out"]) for r in runs[1:]),
    )


def project(core_seconds: dict[str, float], records: int) -> None:
    """Cluster size and time for 100M places from 3 sources, from the core-seconds per
    record of each stage."""
    per_record = {s: v / records for s, v in core_seconds.items()}
    target = 100_000_000 * 3 * 0.9  # ~0.9 records per place per source, as generated
    total = sum(per_record[s] for s in STAGES if s != "ingest") * target
    ingest = per_record["ingest"] * target
    print(f"projection, 100M places x 3 sources (~{target / 1e6:.0f}M records):")
    print(f"  Spark stages {total / 3600:,.0f} core-hours")
    print(f"  ingest on the driver {ingest / 3600:,.1f} h")
    for cores in (64, 256, 1024):
        hours = total / cores / 3600 / 0.7  # 70% parallel efficiency
        print(f"  {cores:5d} executor cores: ~{hours:,.1f} h of Spark stages")
    print(f"  ({math.ceil(total / 3600 / 2 / 0.7):,} cores would finish the Spark stages in ~2 h)")


if __name__ == "__main__":
    main()
