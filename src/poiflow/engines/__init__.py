"""Engines: how work is spread. ``local`` runs partitions in-process or in a process pool."""

from poiflow.engines.local import *  # noqa: F403 - the local engine's names are the package's
from poiflow.engines.local import __all__ as __all__
