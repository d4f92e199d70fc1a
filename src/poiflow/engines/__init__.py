"""Engines: how work is spread. ``local`` runs partitions in-process or in a process pool."""

from poiflow.engines.local import PartitionTask, run_partitioned

__all__ = ["PartitionTask", "run_partitioned"]
