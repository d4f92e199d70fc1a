from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from poiflow.conflate.geo import haversine_m

latitudes = st.floats(-89.0, 89.0)
longitudes = st.floats(-180.0, 180.0)


def test_known_distances_and_missing_coordinates() -> None:
    a = np.array([60.0, 0.0, 60.1699, np.nan])
    b = np.array([25.0, 0.0, 24.9384, 25.0])
    c = np.array([61.0, 0.0, 59.4370, 60.0])
    d = np.array([25.0, 1.0, 24.7536, 25.0])
    got = haversine_m(a, b, c, d)
    assert got[0] == pytest.approx(111_195, rel=1e-3)  # a degree of latitude
    assert got[1] == pytest.approx(111_195, rel=1e-3)  # a degree of longitude at the equator
    assert got[2] == pytest.approx(82_000, rel=0.02)  # Helsinki to Tallinn, centre to centre
    assert np.isnan(got[3])


@given(latitudes, longitudes, latitudes, longitudes)
def test_symmetric_and_zero_only_at_the_same_point(
    lat1: float, lon1: float, lat2: float, lon2: float
) -> None:
    there = haversine_m(np.array([lat1]), np.array([lon1]), np.array([lat2]), np.array([lon2]))
    back = haversine_m(np.array([lat2]), np.array([lon2]), np.array([lat1]), np.array([lon1]))
    assert there[0] == pytest.approx(back[0], abs=1e-6)
    assert 0.0 <= there[0] <= np.pi * 6_371_008.8 + 1e-6
    same = haversine_m(np.array([lat1]), np.array([lon1]), np.array([lat1]), np.array([lon1]))
    assert same[0] == 0.0
