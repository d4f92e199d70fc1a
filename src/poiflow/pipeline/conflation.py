"""Conflate: ingest, block, score, cluster and merge into golden places.

Outputs, in the output folder:

- ``places.parquet``: the golden places (GeoParquet, ``GOLDEN_PLACE_SCHEMA``);
- ``membership.parquet``: each valid record's place (``source, id, place_id``);
- ``pairs.parquet``: every scored candidate pair, its probability and its features;
- ``records.parquet``: the normalized records the run matched;
- ``quarantine.parquet``: what validation held back;
- ``changes.parquet``: what changed since ``--previous`` (every place ``created`` without);
- ``run.json``: counts, timings per stage, the model, and where each output is.

Everything is written to a hidden staging folder first and moved into place at the end,
``run.json`` last: a run that fails leaves the previous outputs as they were.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from poiflow._version import __version__
from poiflow.config import OsmOptions, SourceMapping
from poiflow.conflate.blocking import KEYS, BlockingConfig, candidate_pairs
from poiflow.conflate.clustering import ClusterConfig, cluster_records
from poiflow.conflate.features import RecordView, pair_features
from poiflow.conflate.fellegi_sunter import FellegiSunter, fit_fellegi_sunter
from poiflow.conflate.ids import assign_ids, changelog, fresh_ids
from poiflow.conflate.matcher import DEFAULT_MODEL, UNSUPERVISED, AnyMatcher, load_matcher
from poiflow.conflate.merge import MergeConfig, merge_clusters
from poiflow.errors import InputError, OutputError
from poiflow.pipeline.ingestion import IngestProgress, IngestReport, ingest
from poiflow.schema import GOLDEN_PLACE_SCHEMA, PAIR_KEY_FIELDS
from poiflow.sinks import ParquetSink
from poiflow.sources import DEFAULT_BATCH_SIZE, Source

__all__ = ["OUTPUTS", "ConflateReport", "conflate"]

OUTPUTS = (
    "places.parquet",
    "membership.parquet",
    "pairs.parquet",
    "records.parquet",
    "quarantine.parquet",
    "changes.parquet",
    "run.json",
)


@dataclass(slots=True)
class ConflateReport:
    """What a conflate run did: counts and seconds per stage, and the model it used."""

    output: Path
    ingest: IngestReport
    model: str
    model_info: dict[str, Any] = field(default_factory=dict)
    records: int = 0
    candidate_pairs: int = 0
    matched_pairs: int = 0
    places: int = 0
    multi_source_places: int = 0
    seconds: dict[str, float] = field(default_factory=dict)
    pairs_by_key: dict[str, int] = field(default_factory=dict)
    changes: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The report as plain JSON-ready data (what ``run.json`` holds)."""
        return {
            "poiflow": __version__,
            "model": self.model,
            "model_info": self.model_info,
            "output": str(self.output),
            "files": {name: name for name in OUTPUTS},
            "counts": {
                "read": self.ingest.read,
                "quarantined": self.ingest.quarantined,
                "withheld_values": self.ingest.withheld_values,
                "records": self.records,
                "candidate_pairs": self.candidate_pairs,
                "candidates_per_record": round(self.candidate_pairs / max(1, self.records), 3),
                "matched_pairs": self.matched_pairs,
                "places": self.places,
                "multi_source_places": self.multi_source_places,
            },
            "candidate_pairs_by_key": self.pairs_by_key,
            "changes": self.changes,
            "seconds": {k: round(v, 3) for k, v in self.seconds.items()},
            "inputs": self.ingest.to_dict()["inputs"],
        }


def conflate(
    inputs: Sequence[str | Path | Source],
    output: str | Path,
    *,
    model: str | Path = DEFAULT_MODEL,
    previous: str | Path | None = None,
    mapping: SourceMapping | None = None,
    osm: OsmOptions | None = None,
    blocking: BlockingConfig | None = None,
    clustering: ClusterConfig | None = None,
    merging: MergeConfig | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    workers: int | None = None,
    progress: IngestProgress | None = None,
    on_stage: Any = None,
) -> ConflateReport:
    """Find the records of all inputs that are the same place and merge them.

    Args:
        inputs: Files of any kind ``ingest`` reads, or opened sources.
        output: The output folder (created; earlier outputs in it are replaced).
        model: A model file, ``"default"`` for the model poiflow ships, or ``"em"`` to fit
            an unsupervised Fellegi-Sunter model on this run's own candidate pairs (no
            labels needed; its match weights are reported in ``run.json``).
        previous: An earlier output folder: places keep their ids where they persist, and
            ``changes.parquet`` says what changed.
        mapping, osm, batch_size, workers, progress: As for :func:`poiflow.ingest`.
        blocking, clustering, merging: Settings of those stages. Without ``clustering``,
            a Fellegi-Sunter model clusters at its own threshold.
        on_stage: Called with each stage's name as it starts (for progress displays).

    Raises:
        poiflow.errors.ModelError: The model cannot be used (checked before any work).
        poiflow.errors.InputError: An input cannot be read.
        poiflow.errors.OutputError: No record survived validation.
    """
    # Fail before any work on a bad model.
    matcher = None if str(model) == UNSUPERVISED else load_matcher(model)
    history = _read_previous(Path(previous)) if previous is not None else None
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    staging = output / f".staging-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        report = _run(
            inputs,
            staging,
            matcher,
            mapping,
            osm,
            blocking,
            clustering,
            merging,
            batch_size,
            workers,
            progress,
            on_stage,
            history,
        )
        report.output = output
        (staging / "run.json").write_text(json.dumps(report.to_dict(), indent=2), "utf-8")
        for name in OUTPUTS:  # run.json last: its presence means the run completed
            os.replace(staging / name, output / name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return report


def _run(
    inputs: Sequence[str | Path | Source],
    staging: Path,
    matcher: AnyMatcher | None,
    mapping: SourceMapping | None,
    osm: OsmOptions | None,
    blocking: BlockingConfig | None,
    clustering: ClusterConfig | None,
    merging: MergeConfig | None,
    batch_size: int,
    workers: int | None,
    progress: IngestProgress | None,
    on_stage: Any,
    history: tuple[dict[tuple[str, str], str], pa.Table] | None,
) -> ConflateReport:
    seconds: dict[str, float] = {}

    def stage(name: str) -> float:
        if on_stage is not None:
            on_stage(name)
        return time.perf_counter()

    t = stage("ingest")
    ingested = ingest(
        inputs,
        staging / "records.parquet",
        staging / "quarantine.parquet",
        mapping=mapping,
        osm=osm,
        batch_size=batch_size,
        workers=workers,
        progress=progress,
    )
    seconds["ingest"] = time.perf_counter() - t
    report = ConflateReport(
        staging, ingested, matcher.version if matcher else UNSUPERVISED, seconds=seconds
    )
    records = pq.read_table(staging / "records.parquet").drop_columns(["geometry"])
    report.records = records.num_rows

    t = stage("block")
    pairs = candidate_pairs(records, blocking)
    left = pairs.column("left").to_numpy()
    right = pairs.column("right").to_numpy()
    key_bits = pairs.column("keys").to_numpy()
    report.candidate_pairs = len(left)
    report.pairs_by_key = {k: int(((key_bits & bit) > 0).sum()) for k, bit in KEYS.items()}
    seconds["block"] = time.perf_counter() - t

    t = stage("features")
    features = pair_features(RecordView.of(records), left, right)
    seconds["features"] = time.perf_counter() - t

    t = stage("score")
    if matcher is None:
        matcher = fit_fellegi_sunter(features, name="fellegi-sunter, fitted on this run")
        report.model = matcher.version
    report.model_info = matcher.describe()
    probability = matcher.predict(features)
    seconds["score"] = time.perf_counter() - t

    t = stage("cluster")
    source_names = records.column("source").to_pylist()
    sources = np.asarray(source_names, dtype=object)
    if clustering is None and isinstance(matcher, FellegiSunter):
        clustering = ClusterConfig(threshold=matcher.threshold)
    config = clustering or ClusterConfig()
    labels = cluster_records(records.num_rows, left, right, probability, sources, config)
    together = labels[left] == labels[right]
    report.matched_pairs = int(together.sum())
    best = np.zeros(records.num_rows)
    np.maximum.at(best, left[together], probability[together])
    np.maximum.at(best, right[together], probability[together])
    best[best == 0] = 1.0  # a record alone is its own place
    seconds["cluster"] = time.perf_counter() - t

    # The scored pairs are written now, and their features dropped, so that the merge
    # (the run's largest working set) does not hold them too.
    t = time.perf_counter()
    pq.write_table(
        _pairs_table(records, left, right, probability, features),
        staging / "pairs.parquet",
        compression="zstd",
    )
    del features
    written = time.perf_counter() - t

    t = stage("merge")
    keys = list(zip(source_names, records.column("id").to_pylist(), strict=True))
    label_list = labels.tolist()
    previous_membership = history[0] if history else {}
    ids = assign_ids(keys, label_list, previous_membership, fresh_ids(keys, label_list))
    places, membership = merge_clusters(records, labels, best, merging, ids)
    changes = changelog(
        previous_membership,
        dict(zip(keys, (ids[label] for label in label_list), strict=True))
        if previous_membership
        else {},
        history[1] if history else GOLDEN_PLACE_SCHEMA.empty_table(),
        places,
    )
    report.changes = dict(Counter(changes.column("change").to_pylist()))
    report.places = places.num_rows
    report.multi_source_places = int(
        (places.column("members").to_numpy(zero_copy_only=False) > 1).sum()
    )
    seconds["merge"] = time.perf_counter() - t

    t = stage("write")
    with ParquetSink(staging / "places.parquet", GOLDEN_PLACE_SCHEMA, geo=True) as sink:
        sink.write(places)
    pq.write_table(membership, staging / "membership.parquet", compression="zstd")
    pq.write_table(changes, staging / "changes.parquet", compression="zstd")
    seconds["write"] = written + time.perf_counter() - t
    if places.num_rows == 0:  # pragma: no cover - ingest refuses an empty run first
        raise OutputError("no places: nothing to write")
    return report


def _read_previous(folder: Path) -> tuple[dict[tuple[str, str], str], pa.Table]:
    """The membership and places of an earlier output folder."""
    try:
        membership = pq.read_table(
            folder / "membership.parquet", columns=["source", "id", "place_id"]
        )
        places = pq.read_table(folder / "places.parquet").drop_columns(["geometry"])
    except (OSError, pa.ArrowInvalid, KeyError) as exc:
        raise InputError(
            f"not a poiflow conflate output folder ({exc}); --previous takes the folder "
            "an earlier 'poiflow conflate' wrote",
            path=folder,
        ) from exc
    keys = zip(
        membership.column("source").to_pylist(), membership.column("id").to_pylist(), strict=True
    )
    return dict(zip(keys, membership.column("place_id").to_pylist(), strict=True)), places


def _pairs_table(
    records: pa.Table,
    left: np.ndarray,
    right: np.ndarray,
    probability: np.ndarray,
    features: dict[str, np.ndarray],
) -> pa.Table:
    source = records.column("source")
    ids = records.column("id")
    left_idx, right_idx = pa.array(left), pa.array(right)
    columns = [
        source.take(left_idx),
        ids.take(left_idx),
        source.take(right_idx),
        ids.take(right_idx),
        pa.array(probability, pa.float32()),
        *(pa.array(values, pa.float32()) for values in features.values()),
    ]
    schema = pa.schema([*PAIR_KEY_FIELDS, *(pa.field(n, pa.float32()) for n in features)])
    return pa.Table.from_arrays(columns, schema=schema)
