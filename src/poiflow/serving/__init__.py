"""Serving the golden places: search (an embedded Tantivy index of ``places.parquet``)."""

from __future__ import annotations

from poiflow.serving.search import (
    Hit,
    SearchIndex,
    build_search_index,
    output_index,
    places_file,
)

__all__ = ["Hit", "SearchIndex", "build_search_index", "output_index", "places_file"]
