"""Quality: record validation (here), checks and anomaly detectors of golden places
(:mod:`poiflow.quality.checks`) and the run's ``report.html`` (:mod:`poiflow.quality.report`),
imported on their own so that an ingest worker loads only validation."""

from poiflow.quality.profile import PlacesProfile, profile_places
from poiflow.quality.validation import DuplicateIds, Validation, validate_records, validate_rows

__all__ = [
    "DuplicateIds",
    "PlacesProfile",
    "Validation",
    "profile_places",
    "validate_records",
    "validate_rows",
]
