"""Points withheld as a geocoder's centres: a run's, known later to what is matched."""

from __future__ import annotations

import copy

import pyarrow as pa
from hypothesis import given
from hypothesis import strategies as st

from poiflow.normalize.points import POINT_FIELD, STACKED_POINT, KnownStacks, withhold_points
from poiflow.schema import QUARANTINE_SCHEMA

# Few distinct values, so that records often share a point; some equal to 6 decimals
# (rounded, not cut: 60.1699006 and 60.1699014 are one point).
_DEGREES = st.sampled_from(
    [60.1699, 60.16990004, 60.1699006, 60.1699014, 24.9384, -0.000001, -0.0000014, 0.0]
)
_RECORD = st.fixed_dictionaries(
    {
        "source": st.sampled_from(["a", "b"]),
        "lat": st.none() | _DEGREES,
        "lon": st.none() | _DEGREES,
    }
)
_TABLE_SCHEMA = pa.schema(
    [("source", pa.string()), ("id", pa.string()), ("origin", pa.string())]
    + [(c, pa.float64()) for c in ("lat", "lon")]
)


def _table(records: list[dict[str, object]]) -> pa.Table:
    rows = [{**r, "id": str(i), "origin": f"row {i}"} for i, r in enumerate(records)]
    return pa.Table.from_pylist(rows, schema=_TABLE_SCHEMA)


@given(st.lists(_RECORD, max_size=12), st.lists(_RECORD, min_size=1, max_size=12))
def test_a_runs_stacks_are_withheld_alike_from_rows_and_tables(
    run: list[dict[str, object]], asked: list[dict[str, object]]
) -> None:
    """The stacks read back from a run's quarantine withhold what ``withhold_points``
    withheld there; a request's rows and a batch's table lose the same points."""
    located = [r for r in run if r["lat"] is not None and r["lon"] is not None]
    stacked = _table(located)
    first = KnownStacks.of_quarantine(_stacks_of(stacked))
    _, held = withhold_points(stacked, first.frame)
    assert held.num_rows == len(located)
    known = KnownStacks.of_quarantine(held)  # ingest's own quarantine rows read back
    assert known.frame.equals(first.frame)
    table, table_held = known.table(_table(asked))
    rows = [{**r, "id": str(i), "origin": f"row {i}"} for i, r in enumerate(copy.deepcopy(asked))]
    rows_held = known.rows(rows)
    assert table.to_pylist() == rows
    assert table_held.to_pylist() == rows_held
    assert all(h["field"] == POINT_FIELD for h in rows_held)
    points = {(r["source"], r["lat"], r["lon"]) for r in located}
    for before, after in zip(asked, rows, strict=True):
        point = (before["source"], before["lat"], before["lon"])
        # Equal to 6 decimals is one point.
        withheld = after["lat"] is None and before["lat"] is not None
        assert withheld == any(_same(point, p) for p in points)


def _same(one: tuple[object, ...], other: tuple[object, ...]) -> bool:
    return (
        one[0] == other[0]
        and all(
            a is not None and b is not None and round(a * 1e6) == round(b * 1e6)  # type: ignore[operator]
            for a, b in zip(one[1:], other[1:], strict=True)
        )
    )


def _stacks_of(records: pa.Table) -> pa.Table:
    """A quarantine that names every point of ``records`` as stacked."""
    return pa.Table.from_pylist(
        [
            {
                "source": r["source"],
                "id": r["id"],
                "origin": r["origin"],
                "scope": "field",
                "field": POINT_FIELD,
                "reason": STACKED_POINT,
                "original": f'{{"lat": {r["lat"]!r}, "lon": {r["lon"]!r}}}',
            }
            for r in records.to_pylist()
        ],
        schema=QUARANTINE_SCHEMA,
    )
