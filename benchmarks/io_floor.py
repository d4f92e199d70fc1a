"""The least a conflation of a folder's sources can take: its files, and no matching.

Run as a whole process by ``vs_splink.py``, beside poiflow and Splink. It imports polars
and pyarrow (as any Python conflation does), reads the folder's ``source_*.csv`` files,
and writes what any conflation must write at the least: the records, a membership (each
record its own place), and the scored pairs of poiflow's run of the folder (its
``pairs.parquet``, read before the work is timed and written again as it was: the same
rows, columns and compression). It prints, as JSON, the seconds it spent reading that
file, which are not the floor's own: the caller takes them off the process's wall time.

Usage:
    .venv/bin/python benchmarks/io_floor.py FOLDER  # writes FOLDER/floor/
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq


def main() -> None:
    folder = Path(sys.argv[1])
    out = folder / "floor"
    t = time.perf_counter()
    pairs = pq.read_table(folder / "poiflow" / "pairs.parquet")
    reading = time.perf_counter() - t
    records = pl.concat(
        [
            pl.read_csv(path, infer_schema_length=0).with_columns(source=pl.lit(path.stem))
            for path in sorted(folder.glob("source_*.csv"))
        ],
        how="diagonal",
    )
    out.mkdir(exist_ok=True)
    records.write_parquet(out / "records.parquet")
    records.select("source", "id", place_id=pl.int_range(pl.len())).write_parquet(
        out / "membership.parquet"
    )
    pq.write_table(pairs, out / "pairs.parquet", compression="zstd")
    print(json.dumps({"reading_pairs_s": reading, "records": records.height, "pairs": len(pairs)}))


if __name__ == "__main__":
    main()
