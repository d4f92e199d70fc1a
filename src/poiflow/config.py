"""User-facing configuration: pydantic models shared by YAML files, the CLI and Python.

Every model forbids unknown keys, and :func:`load_yaml` turns a validation failure into a
:class:`~poiflow.errors.ConfigError` that names the file, the line and the key, with a
"did you mean" for misspelt keys.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from poiflow.errors import ConfigError, did_you_mean
from poiflow.schema import FLAT_EXTRA_FIELDS, FLAT_FIELDS

__all__ = [
    "DEFAULT_OSM_KEYS",
    "CsvOptions",
    "OsmOptions",
    "SourceMapping",
    "load_yaml",
]

DEFAULT_OSM_KEYS = ("amenity", "shop", "tourism", "leisure", "office", "craft", "healthcare")

Model = TypeVar("Model", bound=BaseModel)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CsvOptions(_Strict):
    """How to read a delimited text file."""

    delimiter: str = Field(",", min_length=1, max_length=1)
    quote_char: str = Field('"', min_length=1, max_length=1)
    encoding: str = "utf-8"
    newlines_in_values: bool = Field(
        False,
        description="Allow quoted values to span lines (row numbers in messages are then unknown).",
    )


class SourceMapping(_Strict):
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
    """

    source: str | None = Field(None, min_length=1)
    format: Literal["csv", "tsv", "jsonl", "parquet"] | None = None
    columns: dict[str, str] = Field(default_factory=dict)
    constants: dict[str, str] = Field(default_factory=dict)
    ignore: tuple[str, ...] = ()
    csv: CsvOptions = CsvOptions()

    @field_validator("columns", "constants")
    @classmethod
    def _known_fields(cls, value: dict[str, str]) -> dict[str, str]:
        known = (*FLAT_FIELDS, *FLAT_EXTRA_FIELDS)
        for field in value:
            if field not in known:
                raise ValueError(
                    f"unknown flat field '{field}'.{did_you_mean(field, known)} "
                    f"Known fields: {', '.join(known)}"
                )
        return value


class OsmOptions(_Strict):
    """Which OpenStreetMap objects become places."""

    keys: tuple[str, ...] = Field(DEFAULT_OSM_KEYS, min_length=1)
    ways: bool = True
    relations: bool = Field(True, description="Multipolygon relations, placed at their centroid.")


def load_yaml(path: str | Path, model: type[Model]) -> Model:
    """Load ``path`` as YAML into ``model``, or raise a ConfigError naming file, line and key.

    Args:
        path: The YAML file.
        model: The pydantic model the file describes.

    Raises:
        ConfigError: The file is missing, is not YAML, or does not fit the model.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror or exc}", path=path) from exc
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"not valid YAML: {problem}", path=path, location=line) from exc
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"expected a mapping of keys to values, found {type(data).__name__}", path=path
        )
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = tuple(first["loc"])
        key = ".".join(str(part) for part in loc) or "(top level)"
        message = str(first["msg"]).removeprefix("Value error, ")
        # A validator of a whole mapping names the bad key in its message; point at that key.
        named = re.search(r"'([^']+)'", message)
        line = _line_of(root, (*loc, named.group(1)) if named else loc)
        if first["type"] == "extra_forbidden":
            known = _known_keys(model, loc[:-1])
            message = f"unknown key '{loc[-1]}'.{did_you_mean(str(loc[-1]), known)}"
            if known:
                message += f" Known keys: {', '.join(known)}"
        more = len(exc.errors()) - 1
        suffix = f" (and {more} more problem{'s' if more > 1 else ''})" if more else ""
        raise ConfigError(f"{key}: {message}{suffix}", path=path, location=line) from exc


def _line_of(node: yaml.Node | None, loc: tuple[Any, ...]) -> int | None:
    """The 1-based line of the YAML node at ``loc``, or of its nearest existing parent."""
    line = node.start_mark.line + 1 if node is not None else None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            match = [v for k, v in node.value if k.value == part]
            keys = [k for k, _ in node.value if k.value == part]
            if not match:
                return line
            line = keys[0].start_mark.line + 1
            node = match[0]
        elif (
            isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value)
        ):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            return line
    return line


def _known_keys(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """The keys accepted at ``loc`` inside ``model``, for "did you mean"."""
    current: Any = model
    for part in loc:
        fields = getattr(current, "model_fields", None)
        if not fields or part not in fields:
            return []
        current = fields[part].annotation
    fields = getattr(current, "model_fields", None)
    return list(fields) if fields else []
