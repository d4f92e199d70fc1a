"""Quality: record validation (here), checks and anomaly detectors of golden places
(:mod:`poiflow.quality.checks`) and the run's ``report.html`` (:mod:`poiflow.quality.report`),
imported on their own so that an ingest worker loads only validation. The profile of a
places file (DuckDB) is imported on first use."""

from __future__ import annotations

from typing import TYPE_CHECKING

from poiflow._lazy import lazy_names
from poiflow.quality.validation import DuplicateIds, Validation, validate_records, validate_rows

if TYPE_CHECKING:
    from poiflow.quality.profile import PlacesProfile, profile_places

_LAZY = {
    "PlacesProfile": "poiflow.quality.profile",
    "profile_places": "poiflow.quality.profile",
}

__all__ = [
    "DuplicateIds",
    "PlacesProfile",
    "Validation",
    "profile_places",
    "validate_records",
    "validate_rows",
]

__getattr__ = lazy_names("poiflow.quality", _LAZY, globals())
