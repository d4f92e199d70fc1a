"""Streaming: POI edits in from Kafka, applied to the golden places, change events out.

``edits`` reads the edit messages, ``state`` applies them to the places (the same
validation, matcher and merge as the batch) and says what changed in ``events``,
``consumer`` runs it against Kafka.
"""

from __future__ import annotations

from poiflow.streaming.edits import Edit, EditError, edit_message, parse_edit, region_key
from poiflow.streaming.events import Change, Outcome
from poiflow.streaming.state import StreamState

__all__ = [
    "Change",
    "Edit",
    "EditError",
    "Outcome",
    "StreamState",
    "edit_message",
    "parse_edit",
    "region_key",
]
