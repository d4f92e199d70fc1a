"""The public surface: ``poiflow.__all__`` lists exactly the public names, and all import."""

from __future__ import annotations

import types

import poiflow


def test_all_names_exist() -> None:
    for name in poiflow.__all__:
        assert hasattr(poiflow, name), name


def test_every_public_member_is_exported() -> None:
    for name in poiflow.__all__:  # names load on first use
        getattr(poiflow, name)
    public = {
        name
        for name, value in vars(poiflow).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert public == set(poiflow.__all__) - {"__version__"}


def test_conflate_is_the_function_whatever_was_imported_first() -> None:
    # The stage package poiflow.conflate shares the name; its modules load lazily, later.
    import poiflow.conflate.blocking
    import poiflow.pipeline.conflation

    assert poiflow.conflate is poiflow.pipeline.conflation.conflate
    assert poiflow.ingest.__module__ == "poiflow.pipeline.ingestion"
