"""Fixtures shared by every test area."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

ROOT = Path(__file__).resolve().parent.parent
HELSINKI = ROOT / "examples" / "helsinki" / "Helsinki.osm.pbf"
VENDOR_FEED = ROOT / "examples" / "helsinki" / "vendor_feed.csv"
SHARED_DATA = ROOT.parent / "shared" / "data"

# CI explores a fixed, larger set of examples (a red CI must be reproducible); a developer's
# run explores new random ones each time.
settings.register_profile(
    "ci",
    max_examples=300,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", max_examples=100, deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else "dev")


@pytest.fixture(scope="session")
def helsinki_pbf() -> Path:
    """The bundled OSM extract of central Helsinki (ODbL, © OpenStreetMap contributors)."""
    return HELSINKI


@pytest.fixture(scope="session")
def small_pbf() -> Path:
    """The small OSM extract from shared data (a dozen POIs), when present."""
    path = SHARED_DATA / "osm" / "test.osm.pbf"
    if not path.is_file():
        pytest.skip("shared/data/osm/test.osm.pbf is not present")
    return path
