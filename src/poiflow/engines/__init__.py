"""Engines: how work is spread. ``local`` runs partitions in-process or in a process pool."""

from poiflow.engines.local import (
    FORKED_WORKERS,
    PartitionTask,
    prepare_workers,
    release_workers,
    run_partitioned,
)

__all__ = [
    "FORKED_WORKERS",
    "PartitionTask",
    "prepare_workers",
    "release_workers",
    "run_partitioned",
]
