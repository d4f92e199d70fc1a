"""What the HTTP API answers, described for its OpenAPI description (``/openapi.json``).

The endpoints build their answers as plain dicts (no validation on the way out: a request
costs what it did); these models only describe them, and the fuzz test holds every answer
to its description. ``POST /match``'s answers are in :mod:`poiflow.serving.answers`.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from poiflow.serving.ranking import Hit

__all__ = ["Health", "PlacesPage", "Refusal", "SearchResults", "Stored"]


class Refusal(BaseModel):
    """Why a request was refused (4xx, 503): what FastAPI's own validation finds, item by
    item, or one sentence that says what is wrong and what to do."""

    detail: str | list[dict[str, Any]]


class SearchResults(BaseModel):
    """The best places for the words, best first (``GET /search``)."""

    model_config = ConfigDict(extra="forbid")

    results: list[Hit]


class Health(BaseModel):
    """Alive, and what is loaded (``GET /health``)."""

    model_config = ConfigDict(extra="forbid")

    status: Literal["ok", "degraded"]
    problems: dict[str, str] | None = Field(
        None, description="What is wrong where the status is degraded (e.g. the search server)."
    )
    places: int
    search_documents: int | None = Field(description="Null when the search server is away.")
    matching: bool = Field(description="Whether POST /match answers (the output has a model).")
    store: str = Field(description="'embedded', or the Cassandra cluster places are read from.")
    search: str = Field(description="'embedded', or the OpenSearch server and alias.")


class Stored(BaseModel):
    """How many review answers were stored (``POST /labels``)."""

    model_config = ConfigDict(extra="forbid")

    stored: int


class PlacesPage(BaseModel):
    """A page of the places in a box, in id order (``GET /places``)."""

    model_config = ConfigDict(extra="forbid")

    total: int = Field(description="How many places lie in the box.")
    offset: int
    next_offset: int | None = Field(description="Where the next page starts; null: none.")
    places: list[dict[str, Any]] = Field(description="Golden places, as GET /places/{id}.")
