"""Quality: record validation now; checks, anomalies and the report build on it."""

from poiflow.quality.profile import PlacesProfile, profile_places
from poiflow.quality.validation import DuplicateIds, Validation, validate_records

__all__ = [
    "DuplicateIds",
    "PlacesProfile",
    "Validation",
    "profile_places",
    "validate_records",
]
