"""A snapshot's links table is rebuilt only where a batch changed links; it must always
list exactly the links held, each once."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from poiflow.streaming.links import Links

_keys = st.sampled_from([("a", str(i)) for i in range(5)] + [("b", str(i)) for i in range(4)])
_operation = st.one_of(
    st.tuples(
        st.just("set"),
        _keys,
        st.lists(st.tuples(_keys, st.floats(0, 1)), max_size=4),
        st.booleans(),
    ),
    st.tuples(st.just("drop"), _keys),
    st.just(("table",)),
)


def _held(links: Links) -> set[tuple[str, str, str, str, float]]:
    """Every link held, each once, lower record first: what the table must list."""
    return {(*a, *b, p) for a, others in links._of.items() for b, p in others.items() if a < b}


@settings(max_examples=200, deadline=None)
@given(operations=st.lists(_operation, max_size=30))
def test_the_links_table_lists_every_link_held_once_after_any_edits(operations: list) -> None:
    links = Links()
    for operation in operations:
        if operation[0] == "set":
            _, key, scores, keep = operation
            scores = [(other, p) for other, p in scores if other != key]
            links.set(key, [o for o, _ in scores], [p for _, p in scores], keep=keep)
        elif operation[0] == "drop":
            links.drop(operation[1])
        else:
            rows = links.table().to_pylist()
            listed = [tuple(r.values()) for r in rows]
            assert len(listed) == len(set(listed))
            assert set(listed) == _held(links)
    rows = [tuple(r.values()) for r in links.table().to_pylist()]
    assert sorted(rows) == sorted(_held(links))


def test_links_read_back_from_a_snapshot_list_every_link_after_more_edits(tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    links = Links()
    links.set(("a", "1"), [("a", "2"), ("b", "1")], [0.9, 0.4])
    links.set(("a", "3"), [("a", "2")], [0.7])
    pq.write_table(links.table(), tmp_path / "links.parquet")
    again = Links.read(tmp_path / "links.parquet")
    assert _held(again) == _held(links)
    again.set(("a", "2"), [("b", "1")], [0.6])  # drops its links to a1 and a3
    rows = [tuple(r.values()) for r in again.table().to_pylist()]
    assert sorted(rows) == sorted(_held(again))
    assert ("a", "1", "a", "2", 0.9) not in rows
