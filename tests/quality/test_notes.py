"""What a run says of its inputs' repairs: each kind once, however many inputs had it."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from poiflow.quality.notes import repair_note, repair_notes

KINDS = ("text garbled", "text escaped for the web", "a name in two languages")


def test_one_input_is_worded_as_before_and_several_are_one_line() -> None:
    assert repair_notes([("a.csv", {KINDS[0]: 1}, {})]) == [repair_note("a.csv", KINDS[0], 1)]
    notes = repair_notes(
        [
            ("feeds/a.csv", {KINDS[0]: 7, KINDS[1]: 2}, {}),
            ("feeds/b.csv", {KINDS[0]: 1_200}, {}),
            ("feeds/c.csv", {}, {}),
        ]
    )
    assert notes == [
        "feeds/a.csv: 2 records had text escaped for the web",
        "1,207 records had text garbled; in feeds/: a.csv 7, b.csv 1,200",
    ]


def test_files_of_one_name_in_other_folders_are_named_whole() -> None:
    [note] = repair_notes(
        [("jan/feed.csv", {KINDS[0]: 2}, {}), ("feb/feed.csv", {KINDS[0]: 3}, {})]
    )
    assert note == "5 records had text garbled; jan/feed.csv 2, feb/feed.csv 3"
    [note] = repair_notes([("x/a.csv", {KINDS[0]: 2}, {}), ("y/b.csv", {KINDS[0]: 3}, {})])
    assert note == "5 records had text garbled; x/a.csv 2, y/b.csv 3"
    # Inputs in object storage keep their address whole.
    [note] = repair_notes(
        [
            ("s3://bucket/feeds/a.csv", {KINDS[0]: 2}, {}),
            ("s3://bucket/feeds/b.csv", {KINDS[0]: 3}, {}),
        ]
    )
    assert note == "5 records had text garbled; in s3://bucket/feeds/: a.csv 2, b.csv 3"


@st.composite
def repairs(draw: st.DrawFn) -> tuple[dict[str, int], dict[str, list[str]]]:
    """An input's records repaired, by kind, and up to two of the values of each."""
    counts = draw(st.dictionaries(st.sampled_from(KINDS), st.integers(1, 10**6), max_size=3))
    values = st.lists(st.sampled_from(["Caf&#233;", "CafÃ©", "Br&ouml;d", "x" * 80]), max_size=2)
    return counts, {what: draw(values.filter(lambda v: len(set(v)) == len(v))) for what in counts}


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["a.csv", "b.csv", "in/a.csv", "in/c.csv", "out/a.csv"]), repairs()
        ),
        max_size=6,
        unique_by=lambda item: item[0],
    ).map(lambda items: [(path, counts, shown) for path, (counts, shown) in items])
)
def test_each_kind_is_said_once_with_every_record_counted(
    inputs: list[tuple[str, dict[str, int], dict[str, list[str]]]],
) -> None:
    notes = repair_notes(inputs)
    kinds = sorted({what for _, repaired, _ in inputs for what in repaired})
    assert len(notes) == len(kinds)
    for what, note in zip(kinds, notes, strict=True):
        having = [(path, repaired[what]) for path, repaired, _ in inputs if what in repaired]
        # The first two values of the kind, in the inputs' order, each once and quoted,
        # a long one cut short.
        values = list(dict.fromkeys(v for _, _, shown in inputs for v in shown.get(what, ())))
        for value in values[:2]:
            assert f'"{value}"' in note if len(value) < 50 else f'"{value[:49]}…"' in note
        for value in values[2:]:
            assert value not in note
        total = sum(records for _, records in having)
        assert f"{total:,} record" in note
        assert what in note
        for path, records in having:  # each input named, with its own count
            name = path if len(having) == 1 or "/" not in path else path.rsplit("/", 1)[1]
            assert f"{name}: {records:,}" in note or f"{name} {records:,}" in note
