"""A conflated output of a small generated world, made once per session for the serving
tests that need the real thing (records, membership, model): matching, fuzzing."""

from __future__ import annotations

from pathlib import Path

import pytest

from poiflow.generate import generate
from poiflow.pipeline import conflate


@pytest.fixture(scope="session")
def conflated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("conflated")
    made = generate(1500, 3, 21, folder / "sources")
    conflate(made.sources, folder / "out", workers=1)
    return folder / "out"
