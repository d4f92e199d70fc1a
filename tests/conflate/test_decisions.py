"""A person's decisions: read from a labels file (refused with the line that is wrong, or
the lines that contradict each other), and put into a run's scored pairs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from poiflow.conflate.active import append_label
from poiflow.conflate.decisions import (
    DECISIONS_SCHEMA,
    LABEL_COLUMNS,
    apply_decisions,
    read_decisions,
)
from poiflow.errors import InputError

HEADER = "left_source,left_id,right_source,right_id,label\n"


def written(tmp_path: Path, rows: str, header: str = HEADER) -> Path:
    path = tmp_path / "decisions.csv"
    path.write_text(header + rows, encoding="utf-8")
    return path


def test_a_labels_file_of_poiflow_label_is_a_decisions_file(tmp_path: Path) -> None:
    store = tmp_path / "labels.csv"
    pair = {"left_source": "osm", "left_id": "1", "right_source": "vendor", "right_id": "9"}
    append_label(store, pair | {"match_probability": 0.2}, "match", labeller="ann")
    other = {"left_source": "osm", "left_id": "2", "right_source": "vendor", "right_id": "8"}
    append_label(store, other | {"match_probability": 0.9}, "different")
    append_label(store, other | {"left_id": "3", "match_probability": 0.5}, "unsure")
    decisions = read_decisions(store)
    assert decisions.select("left_id", "right_id", "decision").rows() == [
        ("1", "9", "match"),
        ("2", "8", "different"),
    ]
    assert decisions["line"].to_list() == [2, 3]


@pytest.mark.parametrize("ending", ["\n", "\r\n"])
@pytest.mark.parametrize("ended", [True, False])
@pytest.mark.parametrize("bom", ["", "\ufeff"])
def test_an_answer_added_to_a_hand_written_file_keeps_to_its_columns(
    tmp_path: Path, ending: str, ended: bool, bom: str
) -> None:
    # A decisions file written by hand (five columns, either line ending, perhaps none at
    # the end, perhaps Excel's byte-order mark): an answer added to it (poiflow decide)
    # comes in its columns, so that the file stays one table that a run can follow.
    path = tmp_path / "mine.csv"
    rows = HEADER.replace("\n", ending) + "osm,1,vendor,9,match" + (ending if ended else "")
    path.write_text(bom + rows, encoding="utf-8", newline="")
    pair = {"left_source": "osm", "left_id": "2", "right_source": "vendor", "right_id": "8"}
    append_label(path, pair | {"match_probability": 0.4}, "different", labeller="ann")
    lines = path.read_text(encoding="utf-8-sig").splitlines()
    assert lines[-1] == "osm,2,vendor,8,different"
    assert read_decisions(path).select("left_id", "right_id", "decision").rows() == [
        ("1", "9", "match"),
        ("2", "8", "different"),
    ]
    # A labels file of poiflow label's own columns gets all of them, as before.
    full = tmp_path / "labels.csv"
    append_label(full, pair | {"match_probability": 0.4}, "different", labeller="ann")
    append_label(full, pair | {"left_id": "3", "match_probability": 0.4}, "match")
    header, *answers = full.read_text(encoding="utf-8").splitlines()
    assert header.split(",") == list(LABEL_COLUMNS)
    assert [len(a.split(",")) for a in answers] == [len(LABEL_COLUMNS)] * 2


def test_a_pair_the_model_never_scored_is_written_without_a_probability(tmp_path: Path) -> None:
    store = tmp_path / "labels.csv"
    pair = {"left_source": "osm", "left_id": "1", "right_source": "vendor", "right_id": "9"}
    append_label(store, pair | {"match_probability": 0.87654}, "match")
    append_label(store, pair | {"left_id": "2", "match_probability": None}, "different")
    append_label(store, pair | {"left_id": "3", "match_probability": float("nan")}, "different")
    append_label(store, pair | {"left_id": "4"}, "different")
    rows = store.read_text(encoding="utf-8").splitlines()[1:]
    assert [row.split(",")[5] for row in rows] == ["0.8765", "", "", ""]
    assert read_decisions(store)["left_id"].to_list() == ["1", "2", "3", "4"]


def test_the_last_answer_about_a_pair_wins_whichever_way_round(tmp_path: Path) -> None:
    path = written(tmp_path, "b,2,a,1,match\na,1,b,2,different\nc,3,a,1,match\nc,3,a,1,unsure\n")
    decisions = read_decisions(path)
    # a/1 ~ b/2: the second line (written the other way round) overrules the first; the
    # last word on c/3 ~ a/1 is unsure, which leaves it to the model.
    assert decisions.rows() == [("a", "1", "b", "2", "different", 3)]


@pytest.mark.parametrize(
    ("rows", "header", "said"),
    [
        ("a,1,b,2,yes\n", HEADER, ":2: label 'yes' is not one of match, different, unsure"),
        ("a,1,b,2\n", "left_source,left_id,right_source,right_id\n", "it lacks label ("),
        (
            "1,2\n",
            "a,b\n",
            "not a labels file: it needs the columns left_source, left_id, right_source, "
            "right_id, label; its columns are a, b$",
        ),
        ("a,1,b,2,match\na,1,,2,match\n", HEADER, ":3: a decision names a record without"),
        ("a,1,a,1,match\n", HEADER, ":2: a decision pairs a:1 with itself"),
    ],
)
def test_a_bad_decisions_file_is_refused_with_its_line(
    tmp_path: Path, rows: str, header: str, said: str
) -> None:
    with pytest.raises(InputError, match=said.replace("(", r"\(")):
        read_decisions(written(tmp_path, rows, header))


def test_a_missing_decisions_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        read_decisions(tmp_path / "nowhere.csv")


def test_matches_that_join_records_decided_different_are_refused_with_their_lines(
    tmp_path: Path,
) -> None:
    path = written(
        tmp_path,
        "a,1,b,2,match\n"  # line 2
        "x,9,y,9,match\n"  # line 3: elsewhere
        "b,2,c,3,match\n"  # line 4
        "c,3,d,4,match\n"  # line 5
        "d,4,a,1,different\n",  # line 6
    )
    with pytest.raises(InputError) as error:
        read_decisions(path)
    message = str(error.value)
    assert message.startswith(f"{path}:6: ")
    assert "a:1 and d:4 are decided different" in message
    assert "lines 2, 4, 5" in message


def records(*keys: str) -> pa.Table:
    sources, ids = zip(*(k.split(":") for k in keys), strict=True)
    return pa.table({"source": list(sources), "id": list(ids)})


def test_decisions_replace_scores_join_unscored_pairs_and_skip_records_not_in_the_run(
    tmp_path: Path,
) -> None:
    run = records("a:1", "b:2", "c:3", "d:4")
    left = np.array([0, 1], dtype=np.int64)
    right = np.array([1, 2], dtype=np.int64)
    probability = np.array([0.9, 0.1])
    path = written(
        tmp_path,
        "b,2,a,1,different\n"  # scored 0.9: against the model
        "c,3,b,2,match\n"  # scored 0.1: against the model
        "a,1,d,4,match\n"  # never compared: against the model
        "a,1,z,7,match\n",  # z:7 is not in the run
    )
    decided = apply_decisions(run, left, right, probability, read_decisions(path))
    assert decided.left.tolist() == [0, 1, 0]
    assert decided.right.tolist() == [1, 2, 3]
    assert decided.probability.tolist() == [0.9, 0.1, 1.0]
    assert decided.decision.tolist() == [-1, 1, 1]
    table = decided.table
    assert table.schema.equals(DECISIONS_SCHEMA, check_metadata=True)
    assert table.column("in_run").to_pylist() == [True, True, True, False]
    assert table.column("model_probability").to_pylist() == [0.9, 0.1, None, None]
    assert decided.summary(0.3) == {"match": 2, "different": 1, "overruled": 3, "not_in_run": 1}
    # A match the model already made, and a difference it already saw, overrule nothing.
    agreed = written(tmp_path, "a,1,b,2,match\nb,2,c,3,different\n")
    same = apply_decisions(run, left, right, probability, read_decisions(agreed))
    assert same.summary(0.3) == {"match": 1, "different": 1, "overruled": 0, "not_in_run": 0}


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 6), st.integers(0, 6), st.sampled_from(["match", "different", "unsure"])
        ),
        min_size=1,
        max_size=14,
    )
)
def test_a_file_is_refused_exactly_when_its_matches_join_records_it_says_differ(
    tmp_path_factory: pytest.TempPathFactory, said: list[tuple[int, int, str]]
) -> None:
    said = [(a, b, label) for a, b, label in said if a != b]
    assume(said)
    path = tmp_path_factory.mktemp("said") / "decisions.csv"
    path.write_text(HEADER + "".join(f"s,{a},s,{b},{label}\n" for a, b, label in said))
    last = {}  # the last answer about each pair, either way round
    for a, b, label in said:
        last[min(a, b), max(a, b)] = label
    group = list(range(7))

    def root(x: int) -> int:
        while group[x] != x:
            x = group[x]
        return x

    for (a, b), label in last.items():
        if label == "match":
            group[root(a)] = root(b)
    torn = any(label == "different" and root(a) == root(b) for (a, b), label in last.items())
    if torn:
        with pytest.raises(InputError, match="are decided different, but the matches of line"):
            read_decisions(path)
    else:
        decisions = read_decisions(path)
        kept = {(int(a), int(b)): d for _, a, _, b, d, _ in decisions.rows()}
        assert kept == {pair: label for pair, label in last.items() if label != "unsure"}
