"""The public surface: ``poiflow.__all__`` lists exactly the public names, and all import."""

from __future__ import annotations

import types

import poiflow


def test_all_names_exist() -> None:
    for name in poiflow.__all__:
        assert hasattr(poiflow, name), name


def test_every_public_member_is_exported() -> None:
    public = {
        name
        for name, value in vars(poiflow).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert public == set(poiflow.__all__) - {"__version__"}
