"""What the HTTP API takes in a request's body, described for its OpenAPI description
(``/openapi.json``) and checked as it comes: a place in the flat place format (one, a
list, a GeoJSON Feature or FeatureCollection) for ``POST /match``, and a reviewer's answers
for ``POST /labels``. What it answers is in :mod:`poiflow.serving.responses`.
"""

# No ``from __future__ import annotations``: FastAPI reads the models' annotations.
from typing import Annotated, Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag

from poiflow.sources.geojson import feature_row

__all__ = [
    "FeatureProperties",
    "FlatPlace",
    "Label",
    "LabelBody",
    "MatchBody",
    "PlaceFeature",
    "PlaceFeatures",
    "PointGeometry",
]

_TEXT: Final = 500  # the longest text value of a place field


def _text(description: str = "") -> Any:
    return Field(None, max_length=_TEXT, description=description or None)


class FlatPlace(BaseModel):
    """A place in the flat place format: ``id`` and ``name`` required, the rest optional."""

    model_config = ConfigDict(extra="forbid")

    source: str | None = Field(
        None, min_length=1, max_length=200, description="Default: 'request'."
    )
    id: str = Field(min_length=1, max_length=200, description="The place's id in its source.")
    name: str = Field(min_length=1, max_length=_TEXT)
    lat: float | None = Field(None, allow_inf_nan=False, description="WGS84 latitude.")
    lon: float | None = Field(None, allow_inf_nan=False, description="WGS84 longitude.")
    category: str | None = _text("A category id or the source's own category.")
    street: str | None = _text()
    housenumber: str | None = _text()
    postcode: str | None = _text()
    city: str | None = _text()
    country: str | None = _text("ISO 3166-1 alpha-2 code or a country name.")
    phone: str | None = _text()
    website: str | None = _text()
    address: str | None = _text("The address as one line, if not in parts.")
    unit: str | None = _text()
    region: str | None = _text()
    email: str | None = _text()
    brand: str | None = _text()
    opening_hours: str | None = _text()
    operating_status: str | None = _text()
    update_time: str | None = _text("ISO 8601.")


class FeatureProperties(FlatPlace):
    """A GeoJSON feature's properties: the flat place format, its ``id`` where the feature
    has none of its own, ``lat``/``lon`` where the feature has no geometry."""

    id: str | None = Field(  # type: ignore[assignment]
        None, min_length=1, max_length=200, description="Default: the feature's id."
    )


class PointGeometry(BaseModel):
    """A GeoJSON Point: ``[longitude, latitude]`` in WGS 84 (an altitude is ignored)."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["Point"]
    coordinates: list[Annotated[float, Field(allow_inf_nan=False)]] = Field(
        min_length=2, max_length=3
    )


class PlaceFeature(BaseModel):
    """A place as a GeoJSON Feature: a Point (or none) and flat properties."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["Feature"]
    id: str | int | None = Field(None, description="The place's id, unless its properties say.")
    geometry: PointGeometry | None
    properties: FeatureProperties

    def flat(self) -> dict[str, Any] | None:
        """The place in the flat place format, read as a GeoJSON input's feature is (its
        point as ``lat``/``lon``, the feature's id where the properties have none); None
        where it has no id at all."""
        row, _ = feature_row(self.model_dump(exclude_none=True))
        return row if row and row.get("id") else None


class PlaceFeatures(BaseModel):
    """Places as a GeoJSON FeatureCollection."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["FeatureCollection"]
    features: list[PlaceFeature]


def _shape(value: Any) -> str:
    """Which of a request body's shapes a value is, by its look: a list, a GeoJSON Feature
    or FeatureCollection (by its ``type``), or one flat place. A bad body is then told
    what is wrong with it in the shape it was sent in, not in every shape at once."""
    if isinstance(value, list):
        return "list"
    kind = value.get("type") if isinstance(value, dict) else getattr(value, "type", None)
    return {"Feature": "feature", "FeatureCollection": "collection"}.get(str(kind), "one")


MatchBody = Annotated[
    Annotated[FlatPlace, Tag("one")]
    | Annotated[list[FlatPlace], Tag("list")]
    | Annotated[PlaceFeature, Tag("feature")]
    | Annotated[PlaceFeatures, Tag("collection")],
    Discriminator(_shape),
]
"""``POST /match``'s body: one flat place, a list of them, a Feature or a collection."""


class Label(BaseModel):
    """A reviewer's answer about two records: the same place or not."""

    model_config = ConfigDict(extra="forbid")

    left_source: str = Field(min_length=1, max_length=200)
    left_id: str = Field(min_length=1, max_length=200)
    right_source: str = Field(min_length=1, max_length=200)
    right_id: str = Field(min_length=1, max_length=200)
    label: Literal["match", "different", "unsure"]
    probability: float | None = Field(None, ge=0, le=1, description="The model's, if shown.")
    labeller: str = Field("", max_length=100)


LabelBody = Annotated[
    Annotated[Label, Tag("one")] | Annotated[list[Label], Tag("list")], Discriminator(_shape)
]
"""``POST /labels``' body: one answer or a list of them."""
