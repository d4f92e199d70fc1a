"""User-facing configuration: pydantic models shared by YAML files, the CLI and Python.

Every model forbids unknown keys, and :func:`load_yaml` turns a validation failure into a
:class:`~poiflow.errors.ConfigError` that names the file, the line and the key, with a
"did you mean" for misspelt keys.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from poiflow.config.base import Model, StrictModel
from poiflow.config.pipeline import (
    CUSTOM_AFTER,
    ENGINES,
    STAGES,
    BlockSettings,
    ChecksSettings,
    ClusterSettings,
    CustomCheck,
    CustomStage,
    GateSettings,
    IngestSettings,
    MergeSettings,
    PipelineSpec,
    ScoreSettings,
    StageSettings,
)
from poiflow.config.platform import (
    ResourceSettings,
    SparkSettings,
    StreamSettings,
    TrackingSettings,
)
from poiflow.config.sources import (
    DEFAULT_OSM_KEYS,
    CsvOptions,
    OsmOptions,
    SourceMapping,
    SourceSpec,
)
from poiflow.errors import ConfigError, did_you_mean

__all__ = [
    "CUSTOM_AFTER",
    "DEFAULT_OSM_KEYS",
    "ENGINES",
    "STAGES",
    "BlockSettings",
    "ChecksSettings",
    "ClusterSettings",
    "CsvOptions",
    "CustomCheck",
    "CustomStage",
    "GateSettings",
    "IngestSettings",
    "MergeSettings",
    "Model",
    "OsmOptions",
    "PipelineSpec",
    "ResourceSettings",
    "ScoreSettings",
    "SourceMapping",
    "SourceSpec",
    "SparkSettings",
    "StageSettings",
    "StreamSettings",
    "StrictModel",
    "TrackingSettings",
    "load_yaml",
    "validated",
]


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
        errors = exc.errors()
        problems = [_problem(root, model, e) for e in errors if not _follows(e, errors)]
        line, first = problems[0]
        # Every problem at once, each where it is: one run of the command to mend them all.
        rest = "".join(
            f"\n  and {path}{'' if at is None else f':{at}'}: {text}" for at, text in problems[1:]
        )
        raise ConfigError(first + rest, path=path, location=line) from exc


def validated(model: type[Model], data: Any, argument: str = "") -> Model:
    """``data`` (a mapping, as a file's YAML would give: a function's arguments, a
    pipeline made in code) as ``model``, said as a file's problems are said (an unknown
    key with its "did you mean" and the keys there are), each named by its key, under
    ``argument`` where one is given (``clustering.threshold: ...``), all in one message.

    Raises:
        ConfigError: ``data`` is not a mapping, or does not fit ``model``.
    """
    if not isinstance(data, Mapping):
        raise ConfigError(f"expected a mapping of keys to values, found {type(data).__name__}")
    try:
        return model.model_validate(dict(data))
    except ValidationError as exc:
        errors = exc.errors()
        said = [_problem(None, model, e)[1] for e in errors if not _follows(e, errors)]
        prefix = f"{argument}." if argument else ""
        raise ConfigError("; ".join(prefix + text for text in said)) from None


def _follows(error: Any, errors: list[Any]) -> bool:
    """Whether an error only follows from others: a list too short because its items
    inside it were refused ("sources: at least 1 item" after a bad source)."""
    loc = tuple(error["loc"])
    return error["type"] == "too_short" and any(
        len(other["loc"]) > len(loc) and tuple(other["loc"][: len(loc)]) == loc for other in errors
    )


def _problem(root: yaml.Node | None, model: type[BaseModel], error: Any) -> tuple[int | None, str]:
    """One of pydantic's validation errors as ``(line, "key: what is wrong")``."""
    loc = tuple(error["loc"])
    message = str(error["msg"]).removeprefix("Value error, ")
    if loc[-1:] == ("[key]",):  # a mapping's key is what is wrong, not its value
        loc = loc[:-1]
        message = f"not a key here: {message}"
    key = ".".join(str(part) for part in loc) or "(top level)"
    # A validator of a whole mapping names the bad key in its message; point at that key.
    named = re.search(r"'([^']+)'", message)
    line = _line_of(root, (*loc, named.group(1)) if named else loc)
    if error["type"] == "extra_forbidden":
        known = _known_keys(model, loc[:-1])
        message = f"unknown key '{loc[-1]}'.{did_you_mean(str(loc[-1]), known)}"
        if known:
            message += f" Known keys: {', '.join(known)}"
    elif error["type"] == "string_pattern_mismatch":
        # The field's own words for what it takes, rather than its regular expression.
        described = _field_description(model, loc)
        if described:
            message = f"{error['input']!r}: expected {described}"
    return line, f"{key}: {message}"


def _field_description(model: type[BaseModel], loc: tuple[Any, ...]) -> str | None:
    """The description of the field at ``loc`` inside ``model``, without its last full stop."""
    if not loc or isinstance(loc[-1], int):
        return None
    fields = getattr(_model_in(_annotation_at(model, loc[:-1])), "model_fields", None) or {}
    described = fields[loc[-1]].description if loc[-1] in fields else None
    return described.rstrip(".") if described else None


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
    fields = getattr(_model_in(_annotation_at(model, loc)), "model_fields", None)
    return list(fields) if fields else []


def _annotation_at(model: type[BaseModel], loc: tuple[Any, ...]) -> Any:
    """The type of the value at ``loc`` inside ``model`` (an item of a list: the list's
    item type), or None where ``loc`` names no field."""
    current: Any = model
    for part in loc:
        current = _model_in(current)
        if isinstance(part, int):
            continue  # an item of a list: the list's type was unwrapped to its item's model
        fields = getattr(current, "model_fields", None)
        if not fields or part not in fields:
            return None
        current = fields[part].annotation
    return current


def _model_in(annotation: Any) -> Any:
    """The pydantic model inside ``X | None``, ``tuple[X, ...]`` or ``list[X]``, else as is."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        if isinstance(arg, type) and issubclass(arg, BaseModel):
            return arg
    return annotation
