"""Quality: record validation (:mod:`poiflow.quality.validation`), checks and anomaly
detectors of golden places (:mod:`poiflow.quality.checks`) and the run's ``report.html``
(:mod:`poiflow.quality.report`), imported on their own so that an ingest worker loads only
validation. The names here are imported on first use: the command line's help, which reads
the notes of :mod:`poiflow.quality.notes`, loads neither numpy nor Arrow."""

from __future__ import annotations

from typing import TYPE_CHECKING

from poiflow._lazy import lazy_names

if TYPE_CHECKING:
    from poiflow.quality.profile import PlacesProfile, profile_places
    from poiflow.quality.validation import (
        DuplicateIds,
        Validation,
        validate_records,
        validate_rows,
    )

_LAZY = {
    **dict.fromkeys(
        ("DuplicateIds", "Validation", "validate_records", "validate_rows"),
        "poiflow.quality.validation",
    ),
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
