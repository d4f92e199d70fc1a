"""A small generated world, ingested once per test session."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from poiflow.conflate.evaluate import read_gold
from poiflow.generate import generate
from poiflow.pipeline import ingest


@dataclass(frozen=True)
class World:
    folder: Path
    sources: list[Path]
    gold: Path
    records: pa.Table  # normalized, PLACE_SCHEMA (no geometry)
    truth: list[str | None]  # the real place of each record row


@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    folder = tmp_path_factory.mktemp("world")
    made = generate(3000, 3, 11, folder)
    ingest(made.sources, folder / "records.parquet", workers=1)
    records = pq.read_table(folder / "records.parquet").drop_columns(["geometry"])
    gold = read_gold(made.gold)
    keys = pl.DataFrame(records.select(["source", "id"]))
    truth = keys.join(gold, on=["source", "id"], how="left", maintain_order="left")["place"]
    return World(folder, made.sources, made.gold, records, truth.to_list())
