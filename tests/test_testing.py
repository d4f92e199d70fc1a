"""poiflow.testing: the strategies draw tables as a run hands them over, and stage_result
holds a function of the user's to what a run holds it to."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from poiflow.cli import app
from poiflow.errors import ConfigError
from poiflow.normalize import name_key
from poiflow.pipeline.plan import load_function
from poiflow.quality.checking import QualityInput
from poiflow.quality.checks import FunctionCheck
from poiflow.schema import (
    FLAT_EXTRA_FIELDS,
    FLAT_FIELDS,
    GOLDEN_PLACE_SCHEMA,
    PAIR_SCORE_COLUMNS,
    PLACE_SCHEMA,
)
from poiflow.testing import (
    check_frames,
    check_result,
    flat_places,
    golden_places,
    records,
    scored_pairs,
    stage_result,
)

SLOW = settings(max_examples=25, deadline=None)


@given(flat_places(source="acme", located=True))
def test_flat_places_are_in_the_flat_format(place: dict[str, Any]) -> None:
    assert set(place) <= {*FLAT_FIELDS, *FLAT_EXTRA_FIELDS}
    assert place["source"] == "acme"
    assert place["id"]
    assert place["name"].strip()
    assert -90 <= place["lat"] <= 90
    assert -180 <= place["lon"] <= 180


@SLOW
@given(records(min_size=2, max_size=12, sources=("osm", "acme")))
def test_records_are_normalized_as_ingest_makes_them(table: pa.Table) -> None:
    assert table.schema.equals(PLACE_SCHEMA, check_metadata=True)
    assert 2 <= table.num_rows <= 12
    keys = list(
        zip(table.column("source").to_pylist(), table.column("id").to_pylist(), strict=True)
    )
    assert len(set(keys)) == len(keys)
    assert {source for source, _ in keys} <= {"osm", "acme"}
    # Normalized by poiflow: each name's key is the one matching reads.
    for names, made in zip(
        table.column("names").to_pylist(), table.column("keys").to_pylist(), strict=True
    ):
        assert made["name"] == (name_key(names["primary"]) or None)


@SLOW
@given(golden_places(min_size=1, max_size=6))
def test_golden_places_are_merged_as_merge_makes_them(places: pa.Table) -> None:
    assert places.schema.equals(GOLDEN_PLACE_SCHEMA, check_metadata=True)
    assert 1 <= places.num_rows <= 6
    ids = places.column("id").to_pylist()
    assert len(set(ids)) == len(ids)
    assert all(i.startswith("p") for i in ids)
    for members, sources in zip(
        places.column("members").to_pylist(), places.column("sources").to_pylist(), strict=True
    ):
        assert 1 <= members <= 3  # one record a source, of three
        assert len({(s["dataset"], s["record_id"]) for s in sources}) == members
    confidence = places.column("confidence").to_numpy(zero_copy_only=False)
    assert ((confidence >= 0) & (confidence <= 1)).all()


@SLOW
@given(scored_pairs(min_size=1, max_size=6))
def test_scored_pairs_are_as_a_stage_after_score_gets_them(pairs: pa.Table) -> None:
    assert pairs.column_names[:5] == list(PAIR_SCORE_COLUMNS)
    assert pairs.column_names[-2:] == ["left_row", "right_row"]
    p = pairs.column("match_probability").to_numpy()
    assert ((p >= 0) & (p <= 1)).all()
    left, right = pairs.column("left_row").to_numpy(), pairs.column("right_row").to_numpy()
    assert (left < right).all()

    def one_phone_one_place(table: pa.Table) -> pa.Table:  # overrule the model
        same = pc.fill_null(pc.equal(table["phone_match"], 1.0), False)  # NaN: not equal
        sure = pc.if_else(same, pa.scalar(1.0, pa.float32()), table["match_probability"])
        return table.set_column(
            table.schema.get_field_index("match_probability"), "match_probability", sure
        )

    overruled = stage_result(one_phone_one_place, pairs, after="score")
    assert overruled.schema.equals(pairs.schema)
    assert (overruled.column("match_probability").to_numpy() >= p).all()


def test_scored_pairs_score_with_the_model_named(tmp_path: Path) -> None:
    from poiflow.conflate.matcher import ModelError, load_matcher, save_model

    path = save_model(load_matcher("default"), tmp_path / "mine.json.gz")

    @given(scored_pairs(min_size=2, max_size=4, model=str(path)))
    @settings(max_examples=5, deadline=None)
    def scored(pairs: pa.Table) -> None:
        p = pairs.column("match_probability").to_numpy()
        assert ((p >= 0) & (p <= 1)).all()

    scored()
    missing = str(tmp_path / "none.json.gz")

    @given(scored_pairs(min_size=2, max_size=2, model=missing))
    @settings(max_examples=1, deadline=None)
    def unknown(pairs: pa.Table) -> None:
        raise AssertionError("a model that is not there scored pairs")

    with pytest.raises(ModelError, match=r"none\.json\.gz"):
        unknown()


@SLOW
@given(check_frames(max_size=5))
def test_a_check_of_ones_own_runs_on_the_frames_as_in_a_run(frame: pl.DataFrame) -> None:
    assert {"name", "category", "locality", *GOLDEN_PLACE_SCHEMA.names} <= set(frame.columns)

    def places_named(places: pl.DataFrame, word: str) -> pl.DataFrame:
        return places.filter(pl.col("name").str.to_lowercase().str.contains(word)).select("id")

    places = pa.Table.from_pydict(
        {name: frame[name].to_arrow() for name in GOLDEN_PLACE_SCHEMA.names}
    ).cast(GOLDEN_PLACE_SCHEMA)
    data = QualityInput(places)
    assert data.frame.equals(frame)
    found = FunctionCheck("named_cafe", places_named, params={"word": "caf"}).run(data)
    names = dict(zip(frame["id"].to_list(), frame["name"].to_list(), strict=True))
    assert sorted(i.place_id for i in found.issues) == sorted(
        i for i, name in names.items() if "caf" in name.lower()
    )
    # check_result: the same, as a run makes it, from the golden places.
    again = check_result(places_named, places, word="caf")
    assert [i.place_id for i in again.issues] == [i.place_id for i in found.issues]
    assert again.name == "places_named"
    assert again.checked == frame.height


@given(golden_places(min_size=1, max_size=3))
@settings(max_examples=5, deadline=None)
def test_check_result_fails_as_a_run_would(places: pa.Table) -> None:
    def made_up(frame: pl.DataFrame) -> pl.DataFrame:
        return pl.DataFrame({"id": ["pnotaplace"]})

    with pytest.raises(ConfigError, match="ids that are no place of the run, first 'pnotaplace'"):
        check_result(made_up, places)
    with pytest.raises(ConfigError, match="with an 'id' column"):
        check_result(lambda frame: frame.select("name"), places)


@pytest.fixture(scope="module")
def drop_closed(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., pa.Table]:
    """The custom stage ``poiflow init`` writes, loaded as a run loads it."""
    folder = tmp_path_factory.mktemp("flow")
    result = CliRunner().invoke(app, ["init", str(folder)])
    assert result.exit_code == 0, result.output
    return load_function("rules.py:drop_closed", folder)


@SLOW
@given(table=records(max_size=15))
def test_the_stage_poiflow_init_writes_leaves_out_only_the_closed(
    drop_closed: Callable[..., pa.Table], table: pa.Table
) -> None:
    kept = stage_result(drop_closed, table, after="ingest", statuses=["permanently_closed"])
    assert kept.schema.equals(PLACE_SCHEMA)
    statuses = table.column("operating_status").to_pylist()
    assert kept.num_rows == sum(s != "permanently_closed" for s in statuses)
    assert "permanently_closed" not in kept.column("operating_status").to_pylist()


@given(st.data())
@settings(max_examples=5, deadline=None)
def test_stage_result_fails_as_a_run_would(data: st.DataObject) -> None:
    table = data.draw(records(min_size=1, max_size=4))
    with pytest.raises(ConfigError, match="returned dict, not a table"):
        stage_result(lambda t: {"rows": t.num_rows}, table, after="ingest")
    with pytest.raises(ConfigError, match=r"without the columns \['keys'\]"):
        stage_result(lambda t: t.drop_columns(["keys"]), table, after="ingest")
    with pytest.raises(ConfigError, match="'merge'"):
        stage_result(lambda t: t, table, after="mrege")
    places = data.draw(golden_places(min_size=2, max_size=3))
    with pytest.raises(ConfigError, match="not add or drop them"):
        stage_result(lambda t: t.slice(1), places, after="merge")
    renamed = stage_result(
        lambda t: t.set_column(
            t.schema.get_field_index("members"), "members", pc.multiply(t["members"], 1)
        ),
        places,
        after="merge",
    )
    assert renamed.schema.equals(GOLDEN_PLACE_SCHEMA)


def test_without_hypothesis_it_says_how_to_have_it() -> None:
    code = (
        "import sys; sys.modules['hypothesis'] = None\n"
        "try:\n    import poiflow.testing\nexcept ImportError as e:\n    print(e)\n"
    )
    said = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=Path.cwd()
    ).stdout
    assert "pip install hypothesis" in said


def test_the_example_in_the_rules_poiflow_init_writes_runs(
    drop_closed: Callable[..., pa.Table],
) -> None:
    import inspect
    import textwrap

    doc = inspect.getdoc(inspect.getmodule(drop_closed)) or ""
    example = textwrap.dedent(doc.split("\n\n", 2)[2])
    assert "@given(records())" in example
    namespace: dict[str, Any] = {"drop_closed": drop_closed}
    exec(compile(example, "rules.py docstring", "exec"), namespace)  # the example, as written
    namespace["test_drop_closed_leaves_out_the_closed"]()  # hypothesis runs its examples
