"""How an input is read: a tabular feed's mapping onto the flat place format (its CSV
dialect, its coordinate system, its own category labels), which OpenStreetMap objects are
places, and a pipeline's input."""

from __future__ import annotations

from typing import Any, Final, Literal

from pydantic import Field, field_validator, model_validator

from poiflow.config.base import StrictModel
from poiflow.errors import did_you_mean

__all__ = ["DEFAULT_OSM_KEYS", "CsvOptions", "OsmOptions", "SourceMapping", "SourceSpec"]

DEFAULT_OSM_KEYS = ("amenity", "shop", "tourism", "leisure", "office", "craft", "healthcare")


# What Arrow (as pandas) reads as no value: spreadsheets', R's, databases' and C's spellings.
_MISSING: Final = (
    *("", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND"),
    *("1.#QNAN", "N/A", "NA", "NULL", "NaN", "n/a", "nan", "null"),
)


class CsvOptions(StrictModel):
    """How to read a delimited text file."""

    delimiter: str = Field(
        ",",
        min_length=1,
        max_length=1,
        description=(
            "Between values. Left unset, a header that is one column by ',' is read by "
            "';', a tab or '|', whichever splits it most."
        ),
    )
    quote_char: str = Field('"', min_length=1, max_length=1)
    encoding: str = "utf-8"
    missing: tuple[str, ...] = Field(
        _MISSING,
        description=(
            "Values that mean 'no value' (a field left empty always does). The default is "
            "what spreadsheets, R and databases write; a feed whose 'NA' is Namibia or "
            "whose 'Null' is a name says 'missing: [\"\"]'."
        ),
    )


class SourceMapping(StrictModel):
    """How the columns of a tabular feed map onto the flat place format.

    Example (YAML)::

        source: acme            # the source's name; default: the file's stem
        columns:                # flat field: the feed's column
          id: vendor_id
          name: business_name
          lat: latitude
          lon: longitude
          category: type
        constants:              # flat field: a value for every row
          country: FI
        ignore: [internal_score]
        csv: {delimiter: ";"}
        layer: kahvilat         # a GeoPackage's layer, where it holds several
        crs: EPSG:3067          # lat and lon as metres of another coordinate system
        categories:             # the feed's own category labels or codes: a category
          "5812": restaurant    #   of poiflow's taxonomy each
          "5814": fast_food_restaurant
    """

    source: str | None = Field(None, min_length=1)
    format: Literal["csv", "tsv", "jsonl", "geojson", "gis", "parquet"] | None = None
    layer: str | None = Field(
        None, min_length=1, description="The layer of a GeoPackage that holds several."
    )
    columns: dict[str, str] = Field(default_factory=dict)
    constants: dict[str, str] = Field(default_factory=dict)
    ignore: tuple[str, ...] = ()
    csv: CsvOptions = CsvOptions()
    crs: str | None = Field(
        None,
        min_length=1,
        description="The coordinate system of the lat and lon columns where it is not WGS 84: "
        "'EPSG:3067' (Finland's), 'EPSG:3857' (web maps' metres), any system PROJ knows. lat "
        "is then the northing (y), lon the easting (x). A file whose points are a geometry "
        "says its own system. Needs the 'gis' extra (pyproj).",
    )

    categories: dict[str, str] = Field(
        default_factory=dict,
        description="The feed's own category labels or codes, each a category of poiflow's "
        "taxonomy ('5812': restaurant); a label not listed is read as any is. The label is "
        "kept as the record's source_category.",
    )

    @field_validator("crs", mode="before")
    @classmethod
    def _code_as_epsg(cls, value: Any) -> Any:
        """A bare code (``crs: 3067``, which YAML reads as a number) is EPSG's."""
        if isinstance(value, int) and not isinstance(value, bool):
            return f"EPSG:{value}"
        return value

    @field_validator("categories", mode="before")
    @classmethod
    def _labels_as_text(cls, value: Any) -> Any:
        """A code YAML reads as a number (5812: restaurant) is the label "5812"."""
        if isinstance(value, dict):
            return {str(label): category for label, category in value.items()}
        return value

    @field_validator("categories")
    @classmethod
    def _known_categories(cls, value: dict[str, str]) -> dict[str, str]:
        if not value:  # the taxonomy is loaded only to check a mapping that maps some
            return value
        from poiflow.taxonomy import taxonomy

        known = taxonomy().categories
        for label, category in value.items():
            if category not in known:
                raise ValueError(
                    f"'{label}' maps to '{category}', not a category of the taxonomy."
                    f"{did_you_mean(category, list(known))} (src/poiflow/data/categories.yaml "
                    "lists them)"
                )
        return value

    @field_validator("columns", "constants")
    @classmethod
    def _known_fields(cls, value: dict[str, str]) -> dict[str, str]:
        # Imported here: the schemas load Arrow, which a command's --help has no need of.
        from poiflow.schema import FLAT_EXTRA_FIELDS, FLAT_FIELDS

        known = (*FLAT_FIELDS, *FLAT_EXTRA_FIELDS)
        for field in value:
            if field not in known:
                raise ValueError(
                    f"unknown flat field '{field}'.{did_you_mean(field, known)} "
                    f"Known fields: {', '.join(known)}"
                )
        return value

    @field_validator("columns")
    @classmethod
    def _one_column_each(cls, value: dict[str, str]) -> dict[str, str]:
        if value.get("lat") is not None and value.get("lat") == value.get("lon"):
            raise ValueError(f"lat and lon both read the column '{value['lat']}'")
        return value


class OsmOptions(StrictModel):
    """Which OpenStreetMap objects become places."""

    keys: tuple[str, ...] = Field(DEFAULT_OSM_KEYS, min_length=1)
    ways: bool = True
    relations: bool = Field(True, description="Multipolygon relations, placed at their centroid.")
    locations: Literal["memory", "disk"] = Field(
        "memory",
        description="Where the nodes' locations are held while ways are placed: 'memory' "
        "(the fastest; a large country's extract needs several GB), or 'disk' (a file in the "
        "temporary folder, removed after: for an extract larger than memory).",
    )


class SourceSpec(StrictModel):
    """One input of a pipeline: a file, and how to read it.

    Example (YAML)::

        - path: Helsinki.osm.pbf          # relative to the pipeline file
          osm: {keys: [amenity, shop]}
        - path: vendor_feed.csv
          mapping: {source: vendor, columns: {id: vendor_id}}
        - places.parquet                  # a path alone: read as it is
    """

    path: str = Field(min_length=1)
    mapping: SourceMapping | None = None
    osm: OsmOptions | None = None

    @model_validator(mode="before")
    @classmethod
    def _just_a_path(cls, data: Any) -> Any:
        """A source given as its path alone (``- places.csv``) is read as ``{path: ...}``."""
        return {"path": data} if isinstance(data, str) else data
