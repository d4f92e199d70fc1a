"""What every settings model is: strict (an unknown key is refused) and frozen."""

from __future__ import annotations

from typing import TypeVar

from pydantic import BaseModel, ConfigDict

__all__ = ["Model", "StrictModel"]

Model = TypeVar("Model", bound=BaseModel)


class StrictModel(BaseModel):
    """A settings model: an unknown key is an error, a number is finite (YAML's ``.nan``
    and ``.inf`` are refused), and it cannot change."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)
