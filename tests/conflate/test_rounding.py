"""A source that rounds its points to a kilometre: its rounding is read off its points,
and a pair's distance is read less it, on every path that computes features."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from poiflow.conflate import rounding
from poiflow.conflate.evaluate import read_gold, score_membership
from poiflow.conflate.features import (
    FEATURE_COLUMNS,
    FEATURES,
    RecordView,
    feature_counts,
    feature_stats,
    pair_features,
)
from poiflow.conflate.geo import haversine_m
from poiflow.conflate.lookup import FeatureLookup, few_pair_features
from poiflow.generate import generate
from poiflow.pipeline import conflate

from .conftest import World


def rounded(world: World, source: str, decimals: int) -> pa.Table:
    """The world's records with one source's points rounded to ``decimals``."""
    frame = pl.from_arrow(world.records)
    assert isinstance(frame, pl.DataFrame)
    ours = pl.col("source") == source
    return frame.with_columns(
        lat=pl.when(ours).then(pl.col("lat").round(decimals)).otherwise("lat"),
        lon=pl.when(ours).then(pl.col("lon").round(decimals)).otherwise("lon"),
    ).to_arrow()


def test_a_sources_rounding_is_read_off_its_points(world: World) -> None:
    source = world.records.column("source")[0].as_py()
    assert feature_stats(feature_counts(world.records)).rounding == {}
    # To 3 decimals: judged, and read as given (0 m), not point by point.
    for decimals, metres in ((3, 0.0), (2, 556.6), (1, 5566.0)):
        records = rounded(world, source, decimals)
        found = feature_stats(feature_counts(records)).rounding
        assert list(found) == [source], decimals
        assert found[source] == pytest.approx(metres)
    # Counted in two halves, summed: the same.
    records = rounded(world, source, 2)
    half = records.num_rows // 2
    parts = [feature_counts(records.slice(0, half)), feature_counts(records.slice(half))]
    assert feature_stats(parts).rounding == feature_stats(feature_counts(records)).rounding


def test_a_pairs_distance_is_read_less_its_sources_rounding(world: World) -> None:
    point = ("lat", "lon")
    source = world.records.column("source")[0].as_py()
    records = rounded(world, source, 2).select(list(FEATURE_COLUMNS))
    stats = feature_stats(feature_counts(records))
    sources = np.asarray(records.column("source").to_pylist(), dtype=object)
    lat, lon = (records.column(c).to_numpy(zero_copy_only=False).astype(float) for c in point)
    rng = np.random.default_rng(3)
    left, right = rng.integers(0, records.num_rows, (2, 3000))
    got = pair_features(RecordView.of(records, stats), left, right)["distance_m"]
    raw = haversine_m(lat[left], lon[left], lat[right], lon[right]).astype(np.float32)
    less = (sources[left] == source).astype(float) + (sources[right] == source)
    expected = np.maximum(0.0, raw.astype(float) - less * stats.rounding[source])
    np.testing.assert_allclose(got, expected.astype(np.float32), rtol=1e-5, atol=0.05)
    assert (got < raw).any()
    assert np.array_equal(got[less == 0], raw[less == 0], equal_nan=True)
    # A request's few pairs (plain Python) give the same, bit for bit.
    lookup = FeatureLookup.of_counts(feature_counts(records))
    some = records.take(pa.array(np.unique(np.r_[left[:40], right[:40]])))
    a, b = rng.integers(0, some.num_rows, (2, 60))
    few = few_pair_features(some.to_pylist(), a, b, lookup)
    vectorized = pair_features(RecordView.of(some, lookup.narrowed(some)), a, b)
    for name in FEATURES:
        np.testing.assert_array_equal(few[name], vectorized[name], err_msg=name)


def test_a_point_of_a_source_not_judged_is_read_by_its_own_digits(world: World) -> None:
    """A source that rounds a fifth of its points (not most) is not judged: each of those
    points is read less its rounding, the others as given; a source of 3 decimals is
    judged, and its points that land on whole hundredths are read as given."""
    source = world.records.column("source")[0].as_py()
    frame = pl.from_arrow(world.records)
    assert isinstance(frame, pl.DataFrame)
    some = (pl.col("source") == source) & (pl.int_range(pl.len()) % 5 == 0)
    for decimals, read in ((2, True), (3, False)):
        records = frame.with_columns(
            lat=pl.when(some if read else pl.col("source") == source)
            .then(pl.col("lat").round(decimals))
            .otherwise("lat"),
            lon=pl.when(some if read else pl.col("source") == source)
            .then(pl.col("lon").round(decimals))
            .otherwise("lon"),
        ).to_arrow()
        stats = feature_stats(feature_counts(records))
        assert stats.rounding == ({} if read else {source: 0.0})
        lat, lon = (records.column(c).to_numpy(zero_copy_only=False) for c in ("lat", "lon"))
        micro = [np.rint(np.nan_to_num(c, nan=0.5) * 1e6) for c in (lat, lon)]
        whole = (micro[0] % 10_000 == 0) & (micro[1] % 10_000 == 0)
        assert whole.sum() > 20
        rng = np.random.default_rng(4)
        left, right = rng.integers(0, records.num_rows, (2, 4000))
        got = pair_features(RecordView.of(records, stats), left, right)["distance_m"]
        raw = haversine_m(lat[left], lon[left], lat[right], lon[right]).astype(np.float32)
        less = 556.6 * (whole[left].astype(float) + whole[right]) if read else 0.0
        expected = np.maximum(0.0, raw.astype(float) - less).astype(np.float32)
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=0.05)


def test_a_feeds_rounding_counts_with_the_runs(world: World) -> None:
    """A feed matched against a run reads its source's rounding as a run of both would."""
    source = world.records.column("source")[0].as_py()
    records = rounded(world, source, 2)
    even = pa.array(np.arange(0, records.num_rows, 2))
    odd = pa.array(np.arange(1, records.num_rows, 2))
    first, second = records.take(even), records.take(odd)  # each half of every source
    plus = FeatureLookup.of_counts(feature_counts(first)).plus(feature_counts(second))
    both = feature_stats(feature_counts(records))
    assert plus.rounding == both.rounding == {source: pytest.approx(556.6)}
    # A run whose half of that source is not rounded: half its points are, not most.
    fine = FeatureLookup.of_counts(feature_counts(world.records.take(even)))
    assert fine.rounding == {}
    assert fine.plus(feature_counts(second)).rounding == {}
    assert fine.plus(feature_counts(second)).plus(feature_counts(second)).rounding == (
        both.rounding
    )


@pytest.mark.slow
def test_a_world_with_a_source_rounded_to_a_kilometre_keeps_its_matches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    made = generate(3000, 4, 14, tmp_path / "world")
    last = made.sources[-1]
    frame = pl.read_csv(last, infer_schema_length=0)
    frame.with_columns(
        pl.col(c).cast(pl.Float64).round(2).cast(pl.String) for c in ("lat", "lon")
    ).write_csv(last)
    gold = read_gold(made.gold)

    def f1(out: Path) -> float:
        conflate(made.sources, out, workers=1)
        return score_membership(pl.read_parquet(out / "membership.parquet"), gold).f1

    read_less = f1(tmp_path / "less")
    # No source is ever judged, nor any point read by its digits: every point as given.
    monkeypatch.setattr(rounding, "_LEAST", 10**9)
    monkeypatch.setattr(rounding, "_point_rounding", lambda lat, _lon: np.zeros(len(lat)))
    as_given = f1(tmp_path / "given")
    # 0.9903 against 0.9873 here (0.9933 as generated); 0.9861 against 0.9689 on the 100k
    # world, whose towns are denser (benchmarks/RESULTS.md).
    assert read_less > as_given + 0.002, (read_less, as_given)


@given(
    points=st.lists(
        st.one_of(
            st.tuples(st.floats(-89.99, 89.99), st.floats(-179.99, 179.99)),
            st.tuples(
                st.integers(-8999, 8999).map(lambda v: v / 100),
                st.integers(-17999, 17999).map(lambda v: v / 100),
            ),
            st.tuples(st.integers(-899, 899).map(lambda v: v / 10), st.just(24.0)),
            st.just((None, None)),
        ),
        min_size=1,
        max_size=30,
    )
)
def test_a_points_rounding_reads_the_same_in_polars_numpy_and_python(
    points: list[tuple[float | None, float | None]],
) -> None:
    # Blocking's batch keys read it in polars, a request's keys in Python, the features
    # in numpy: one rule, three readings.
    lat = [p[0] for p in points]
    lon = [p[1] for p in points]
    one_by_one = [rounding.point_rounding(a, b) for a, b in points]
    frame = pl.DataFrame({"lat": lat, "lon": lon}, schema={"lat": pl.Float64, "lon": pl.Float64})
    batch = frame.select(rounding.point_rounding_expr(pl.col("lat"), pl.col("lon"))).to_series()
    as_arrays = [np.nan if v is None else v for v in lat], [np.nan if v is None else v for v in lon]
    sources = np.array(["s"] * len(points), dtype=object)
    columns = rounding.uncertainty(sources, *map(np.asarray, as_arrays), {})
    assert batch.to_list() == one_by_one
    assert columns.tolist() == one_by_one
