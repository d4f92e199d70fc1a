"""``poiflow explain``: why a run put two records together or kept them apart."""

from __future__ import annotations

import itertools
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from poiflow.conflate.diagnosis import RULES
from poiflow.conflate.explain import FEATURE_WORDS
from poiflow.conflate.matcher import load_matcher
from poiflow.errors import InputError
from poiflow.pipeline.drivers import DRIVERS, error_drivers, stored_error_drivers, with_drivers
from poiflow.pipeline.explaining import explain_pair, record_keys

from ..conftest import poiflow

_KEYS = ["left_source", "left_id", "right_source", "right_id"]


def _scored(folder: Path) -> pl.DataFrame:
    """The run's scored pairs with the place each of their records ended in."""
    places = pl.read_parquet(folder / "membership.parquet")
    return (
        pl.read_parquet(folder / "pairs.parquet")
        .join(
            places.rename({"source": "left_source", "id": "left_id", "place_id": "left_place"}),
            on=["left_source", "left_id"],
        )
        .join(
            places.rename({"source": "right_source", "id": "right_id", "place_id": "right_place"}),
            on=["right_source", "right_id"],
        )
    )


def _key(row: dict[str, object], side: str) -> str:
    return f"{row[f'{side}_source']}:{row[f'{side}_id']}"


def test_a_strong_pair_is_one_place_for_the_score_the_run_gave(conflated: Path) -> None:
    pair = (
        _scored(conflated)
        .filter(pl.col("left_place") == pl.col("right_place"))
        .sort("match_probability", "left_id", "right_id", descending=[True, False, False])
        .row(0, named=True)
    )
    story = explain_pair(conflated, _key(pair, "left"), _key(pair, "right"))
    assert story.candidate
    assert story.run_probability == pytest.approx(pair["match_probability"], abs=1e-6)
    assert story.explanation.probability == pytest.approx(pair["match_probability"], abs=1e-6)
    assert story.places == (pair["left_place"], pair["right_place"])
    assert story.verdict.startswith("one place: scored above")
    assert story.rule is None
    assert story.path == ()
    assert story.explanation.total_bits > 0
    assert story.explanation.total_bits > story.threshold_bits  # scored above the threshold
    # Either way round, the same story.
    back = explain_pair(conflated, _key(pair, "right"), _key(pair, "left"))
    assert back.explanation == story.explanation
    assert back.records == story.records[::-1]
    # Named by a row's columns, (source, id), the same pair.
    keys = [(pair[f"{side}_source"], pair[f"{side}_id"]) for side in ("left", "right")]
    assert explain_pair(conflated, *keys) == story


def test_a_pair_never_compared_is_scored_as_the_run_would_have(
    conflated: Path, tmp_path: Path
) -> None:
    # A copy of the run without one of its scored pairs: explain computes the features
    # itself, with the whole run's counts, and must find what the run found.
    pairs = _scored(conflated)
    pair = pairs.filter(pl.col("match_probability").is_between(0.2, 0.95)).row(0, named=True)
    folder = tmp_path / "run"
    shutil.copytree(conflated, folder)
    kept = pl.read_parquet(conflated / "pairs.parquet").join(
        pl.DataFrame({k: [pair[k]] for k in _KEYS}), on=_KEYS, how="anti"
    )
    kept.write_parquet(folder / "pairs.parquet")
    story = explain_pair(folder, _key(pair, "left"), _key(pair, "right"))
    assert not story.candidate
    assert story.run_probability is None
    # The run compared them: blocking, run again on the two, says it would.
    assert any(key.pairs for key in story.blocking)
    assert "would compare them now" in story.verdict
    assert story.explanation.probability == pytest.approx(pair["match_probability"], abs=1e-6)
    seen = {part.name: part.shows for part in story.explanation.parts}
    assert set(seen) == set(load_matcher("default").features)  # each feature the model reads
    assert seen["distance_m"] == (
        "distance unknown"
        if pair["distance_m"] != pair["distance_m"]
        else f"{pair['distance_m']:,.0f} m"
    )
    if pair["left_place"] != pair["right_place"]:
        assert story.verdict.startswith("two places: never compared")


def test_records_joined_through_others_show_the_chain(conflated: Path) -> None:
    pairs = _scored(conflated)
    weak = pairs.filter(
        (pl.col("left_place") == pl.col("right_place")) & (pl.col("match_probability") < 0.3)
    ).sort("left_id", "right_id")
    if weak.is_empty():
        pytest.fail("the test world has no records joined through others: pick another seed")
    pair = weak.row(0, named=True)
    story = explain_pair(conflated, _key(pair, "left"), _key(pair, "right"))
    assert "joined through other records" in story.verdict
    assert len(story.path) >= 2
    assert story.path[-1][0] == _key(pair, "right")
    members = set(
        pl.read_parquet(conflated / "membership.parquet")
        .filter(pl.col("place_id") == pair["left_place"])
        .select(pl.concat_str("source", pl.lit(":"), "id"))
        .to_series()
    )
    chain = [_key(pair, "left"), *(key for key, _ in story.path)]
    assert set(chain) <= members
    # Each link of the chain is a pair the run scored at or above its threshold.
    linked = {
        frozenset((_key(r, "left"), _key(r, "right"))): r["match_probability"]
        for r in pairs.filter(pl.col("left_place") == pair["left_place"]).iter_rows(named=True)
    }
    for (a, b), (_, p) in zip(itertools.pairwise(chain), story.path, strict=True):
        assert linked[frozenset((a, b))] == pytest.approx(p, abs=1e-6)
        assert p >= story.threshold


def test_a_strong_pair_kept_apart_names_the_rule(conflated: Path, tmp_path: Path) -> None:
    # The run's own places, with one record of a strong pair moved to a place of its own
    # beside a second record of its source: the rule clustering would apply is named.
    pairs = _scored(conflated)
    pair = (
        pairs.filter(
            (pl.col("left_place") == pl.col("right_place"))
            & (pl.col("left_source") != pl.col("right_source"))
            & (pl.col("match_probability") > 0.9)
        )
        .sort("left_id", "right_id")
        .row(0, named=True)
    )
    folder = tmp_path / "run"
    shutil.copytree(conflated, folder)
    membership = pl.read_parquet(conflated / "membership.parquet")
    moved = (pl.col("source") == pair["right_source"]) & (pl.col("id") == pair["right_id"])
    membership.with_columns(
        pl.when(moved).then(pl.lit("p-alone")).otherwise(pl.col("place_id")).alias("place_id")
    ).write_parquet(folder / "membership.parquet")
    story = explain_pair(folder, _key(pair, "left"), _key(pair, "right"))
    assert story.places == (pair["left_place"], "p-alone")
    assert story.verdict.startswith("two places: scored above")
    assert story.rule in {"veto", "same source", "average", "coverage", "order"}
    assert story.rule is not None
    assert RULES[story.rule] in story.verdict
    said = {  # what the rule found there, after it
        "veto": "(the veto is",
        "same source": "both hold records of",
        "average": "pairs across average",
        "coverage": "compared (at least",
        "order": "",
    }[story.rule]
    assert said in story.verdict


def test_a_veto_names_the_pair_across_that_scored_below_it(conflated: Path, tmp_path: Path) -> None:
    # A strong pair's right record alone in a place, and a record scored clearly apart from
    # it moved into the left record's place: the veto keeps them apart, and the verdict
    # names the weakest pair across the two places and its score.
    pairs = _scored(conflated)
    strong = pairs.filter(
        (pl.col("left_place") == pl.col("right_place"))
        & (pl.col("left_source") != pl.col("right_source"))
        & (pl.col("match_probability") > 0.9)
    ).sort("left_id", "right_id")
    weak = pairs.filter(pl.col("match_probability") < 0.02)
    pair, apart = None, None
    for row in strong.iter_rows(named=True):  # a record scored clearly apart from the right one
        found = weak.filter(
            (pl.col("right_source") == row["right_source"])
            & (pl.col("right_id") == row["right_id"])
        )
        if found.height:
            pair, apart = row, found.sort("left_id").row(0, named=True)
            break
    assert pair is not None
    assert apart is not None
    folder = tmp_path / "run"
    shutil.copytree(conflated, folder)
    membership = pl.read_parquet(conflated / "membership.parquet")
    right = (pl.col("source") == pair["right_source"]) & (pl.col("id") == pair["right_id"])
    other = (pl.col("source") == apart["left_source"]) & (pl.col("id") == apart["left_id"])
    membership = membership.with_columns(
        pl.when(right)
        .then(pl.lit("p-alone"))
        .when(other)
        .then(pl.lit(pair["left_place"]))
        .otherwise(pl.col("place_id"))
        .alias("place_id")
    )
    membership.write_parquet(folder / "membership.parquet")
    story = explain_pair(folder, _key(pair, "left"), _key(pair, "right"))
    assert story.rule == "veto"
    # The weakest scored pair between the right record and the left record's place.
    members = membership.filter(pl.col("place_id") == pair["left_place"])
    keys = set(zip(members["source"], members["id"], strict=True))
    across = [
        (p, f"{ls}:{li}")
        for ls, li, rs, ri, p in pairs.select(*_KEYS, "match_probability").iter_rows()
        if (rs, ri) == (pair["right_source"], pair["right_id"]) and (ls, li) in keys
    ] + [
        (p, f"{rs}:{ri}")
        for ls, li, rs, ri, p in pairs.select(*_KEYS, "match_probability").iter_rows()
        if (ls, li) == (pair["right_source"], pair["right_id"]) and (rs, ri) in keys
    ]
    least, weakest = min(across)
    assert least <= apart["match_probability"] < 0.02
    assert weakest in story.verdict
    assert _key(pair, "right") in story.verdict
    assert f"scored {least:.3f} (the veto is 0.02)" in story.verdict


def test_a_record_is_named_by_its_source_and_id() -> None:
    assert record_keys("osm:n42", ["osm", "vendor"]) == [("osm", "n42")]
    # A colon in a source's name, or in an id: every reading, shortest source first.
    assert record_keys("a:b:c", ["a", "a:b"]) == [("a", "b:c"), ("a:b", "c")]
    with pytest.raises(InputError, match="SOURCE:ID"):
        record_keys("n42", ["osm"])
    with pytest.raises(InputError, match="Did you mean 'vendor'"):
        record_keys("vendr:1", ["osm", "vendor"])
    # A pair of a table's columns is itself, colons and all.
    assert record_keys(("a:b", "c"), ["a", "a:b"]) == [("a:b", "c")]
    with pytest.raises(InputError, match="Did you mean 'vendor'"):
        record_keys(("vendr", "1"), ["osm", "vendor"])


def test_unknown_records_and_folders_are_named(conflated: Path, tmp_path: Path) -> None:
    first = pl.read_parquet(conflated / "membership.parquet").row(0, named=True)
    known = f"{first['source']}:{first['id']}"
    with pytest.raises(InputError, match=f"no record '{first['source']}:nothing-here'"):
        explain_pair(conflated, known, f"{first['source']}:nothing-here")
    with pytest.raises(InputError, match="one record"):
        explain_pair(conflated, known, known)
    with pytest.raises(InputError, match=f"'{known}' and '{known}' are one record"):
        explain_pair(conflated, known, (first["source"], first["id"]))
    with pytest.raises(InputError, match=r"no records\.parquet"):
        explain_pair(tmp_path, known, known)


def test_a_quarantined_record_says_why(conflated: Path, tmp_path: Path) -> None:
    # The run with one more record held back whole, as validation writes it.
    folder = tmp_path / "run"
    shutil.copytree(conflated, folder)
    held = pl.read_parquet(conflated / "quarantine.parquet")
    row = {
        "source": "source_a",
        "id": "A-held",
        "origin": "source_a.csv:7",
        "scope": "record",
        "field": None,
        "reason": "no name",
        "original": "{}",
    }
    pl.concat([held, pl.DataFrame([row], schema=held.schema)]).write_parquet(
        folder / "quarantine.parquet"
    )
    known = pl.read_parquet(conflated / "membership.parquet").row(0, named=True)
    with pytest.raises(InputError, match=r"quarantined \(no name, at source_a.csv:7\)"):
        explain_pair(folder, f"{known['source']}:{known['id']}", "source_a:A-held")


def test_drivers_are_the_largest_parts_of_each_scored_pair(conflated: Path) -> None:
    pairs = _scored(conflated).sort("left_id", "right_id")
    picked = pairs.gather([0, pairs.height // 2, pairs.height - 1]).select(_KEYS)
    never = pl.DataFrame(
        {
            "left_source": ["nowhere"],
            "left_id": ["1"],
            "right_source": ["nowhere"],
            "right_id": ["2"],
        }
    )
    examples = pl.concat([picked, never])
    model = load_matcher(conflated / "model.json.gz")
    found = with_drivers(examples, model, conflated / "pairs.parquet")
    assert found.select(_KEYS).equals(examples)
    texts = found["drivers"].to_list()
    assert texts[-1] is None
    for row, text in zip(picked.iter_rows(named=True), texts, strict=False):
        story = explain_pair(conflated, _key(row, "left"), _key(row, "right"))
        expected = [
            f"{FEATURE_WORDS[p.name]} {p.shows} {p.bits:+.1f}"
            for p in story.explanation.parts[:DRIVERS]
        ]
        assert text == " · ".join(expected)
    # A pair is the same pair either way round.
    turned = picked.select(
        pl.col("right_source").alias("left_source"),
        pl.col("right_id").alias("left_id"),
        pl.col("left_source").alias("right_source"),
        pl.col("left_id").alias("right_id"),
    )
    assert (
        with_drivers(turned, model, conflated / "pairs.parquet")["drivers"].to_list()
        == (texts[:-1])
    )


def test_the_mistakes_drivers_are_the_mean_parts_of_their_scores(conflated: Path) -> None:
    from poiflow.conflate.clustering import ClusterConfig
    from poiflow.conflate.diagnosis import diagnose
    from poiflow.conflate.evaluate import read_gold
    from poiflow.conflate.explain import explain_scores

    run = json.loads((conflated / "run.json").read_text())
    cluster = ClusterConfig(**run["matching"]["cluster"])
    pairs = pl.read_parquet(conflated / "pairs.parquet")
    gold = read_gold(conflated.parent / "sources" / "gold.csv")
    found = diagnose(pl.read_parquet(conflated / "membership.parquet"), gold, pairs, cluster)
    model = load_matcher(conflated / "model.json.gz")
    drivers = error_drivers(found.errors, model)
    scored = found.errors.filter(pl.col("match_probability").is_not_null())
    kinds = scored.group_by("error", "stage").len()
    assert kinds.height > 0
    assert (
        drivers.group_by("error", "stage")
        .agg(pl.col("pairs").first())
        .sort("error", "stage")
        .rows()
        == kinds.sort("error", "stage").rows()
    )
    for (error, stage), rows in drivers.partition_by(["error", "stage"], as_dict=True).items():
        assert set(rows["feature"]) == set(model.features)
        sizes = rows["mean_bits"].abs().to_list()
        assert sizes == sorted(sizes, reverse=True)
        assert rows["typical_share"].is_between(0, 1).all()
        part = scored.filter((pl.col("error") == error) & (pl.col("stage") == stage))
        explained = explain_scores(model, {n: part[n].to_numpy() for n in model.features})
        # The mean parts and the mean start add up to the mean score.
        start = sum(e.start_bits for e in explained) / len(explained)
        total = sum(e.total_bits for e in explained) / len(explained)
        assert start + rows["mean_bits"].sum() == pytest.approx(total, abs=1e-6)
        if (error, stage) == ("wrong", "matcher"):  # scored above the threshold: pushed up
            assert total > start


def test_the_drivers_of_mistakes_known_by_their_keys_read_their_features(
    conflated: Path,
) -> None:
    # The report diagnoses the pairs' keys alone and reads the mistakes' features from
    # pairs.parquet afterwards: the same drivers as a diagnosis of the pairs with them.
    from poiflow.conflate.clustering import ClusterConfig
    from poiflow.conflate.diagnosis import diagnose
    from poiflow.conflate.evaluate import read_gold
    from poiflow.schema import PAIR_SCORE_COLUMNS

    run = json.loads((conflated / "run.json").read_text())
    cluster = ClusterConfig(**run["matching"]["cluster"])
    membership = pl.read_parquet(conflated / "membership.parquet")
    gold = read_gold(conflated.parent / "sources" / "gold.csv")
    model = load_matcher(conflated / "model.json.gz")
    keys = pl.read_parquet(conflated / "pairs.parquet", columns=list(PAIR_SCORE_COLUMNS))
    bare = diagnose(membership, gold, keys, cluster).errors
    assert not set(model.features) & set(bare.columns)
    full = diagnose(membership, gold, pl.read_parquet(conflated / "pairs.parquet"), cluster)
    read = stored_error_drivers(bare, model, conflated / "pairs.parquet", keys=keys)
    assert read.height > 0
    assert read.equals(error_drivers(full.errors, model))


def test_the_cli_prints_the_parts_and_the_verdict(conflated: Path) -> None:
    pair = _scored(conflated).sort("match_probability", descending=True).row(0, named=True)
    args = ("explain", str(conflated), _key(pair, "left"), _key(pair, "right"))
    shown = poiflow(*args)
    assert shown.returncode == 0, shown.stderr
    assert "bits" in shown.stdout
    assert "one place: scored above" in shown.stdout
    assert pair["left_id"] in shown.stdout
    assert pair["right_id"] in shown.stdout
    found = poiflow(*args, "--json")
    assert found.returncode == 0, found.stderr
    story = json.loads(found.stdout)
    assert story["same_place"] is True
    assert story["run_probability"] == pytest.approx(pair["match_probability"], abs=1e-6)
    parts = story["explanation"]["parts"]
    total = story["explanation"]["start_bits"] + sum(p["bits"] for p in parts)
    assert total == pytest.approx(story["explanation"]["total_bits"], abs=1e-3)
    bad = poiflow("explain", str(conflated), _key(pair, "left"), "nosuchsource:1")
    assert bad.returncode == 1
    assert "no source 'nosuchsource'" in bad.stdout + bad.stderr


def test_evaluate_shows_what_moved_the_mistakes_scores(conflated: Path, tmp_path: Path) -> None:
    gold = str(conflated.parent / "sources" / "gold.csv")
    membership = str(conflated / "membership.parquet")
    found = poiflow("evaluate", "--gold", gold, "--membership", membership, "--drivers", "--json")
    assert found.returncode == 0, found.stderr
    report = json.loads(found.stdout)
    kinds = {(row["error"], row["stage"]) for row in report["drivers"]}
    assert kinds
    assert kinds <= {
        ("missed", "matcher"),
        ("missed", "clustering"),
        ("wrong", "matcher"),
        ("wrong", "clustering"),
    }
    for error, stage in kinds:
        assert report["errors"][f"{error}_{stage}"] > 0
    shown = poiflow("evaluate", "--gold", gold, "--membership", membership, "--drivers")
    assert shown.returncode == 0, shown.stderr
    assert "What moved the scores" in shown.stdout
    # Without the run's model there is nothing to take the scores apart with.
    folder = tmp_path / "run"
    shutil.copytree(conflated, folder)
    (folder / "model.json.gz").unlink()
    bare = poiflow(
        "evaluate", "--gold", gold, "--membership", str(folder / "membership.parquet"), "--drivers"
    )
    assert bare.returncode == 1
    assert "needs the run's model.json.gz" in bare.stdout + bare.stderr


def test_an_unsupervised_runs_pairs_are_taken_apart_by_match_weights(
    conflated: Path, tmp_path: Path
) -> None:
    from poiflow.pipeline import conflate

    sources = sorted((conflated.parent / "sources").glob("source_*.csv"))
    out = tmp_path / "em"
    conflate(sources, out, model="em", workers=1)
    pair = (
        _scored(out)
        .sort("match_probability", "left_id", descending=[True, False])
        .row(0, named=True)
    )
    story = explain_pair(out, _key(pair, "left"), _key(pair, "right"))
    assert not story.explanation.calibrated
    assert {p.name for p in story.explanation.parts} == {
        "name",
        "where",
        "phone",
        "website",
        "address",
        "category",
        "brand",
        "source",
    }
    assert story.explanation.probability == pytest.approx(pair["match_probability"], abs=1e-6)
    # Its probability is its score's logistic, in bits.
    assert 1 / (1 + 2**-story.explanation.total_bits) == pytest.approx(
        pair["match_probability"], abs=1e-6
    )
    assert story.verdict.startswith("one place")


@given(
    st.lists(st.text(min_size=1, max_size=8), min_size=1, max_size=4, unique=True),
    st.data(),
)
def test_any_record_name_parses_to_its_source_and_id(
    sources: list[str], data: st.DataObject
) -> None:
    source = data.draw(st.sampled_from(sources))
    record_id = data.draw(st.text(max_size=10))
    readings = record_keys(f"{source}:{record_id}", sources)
    assert (source, record_id) in readings
    for s, i in readings:  # every reading is a source of the run, and gives the text back
        assert s in sources
        assert f"{s}:{i}" == f"{source}:{record_id}"


def test_two_records_of_one_source_are_held_to_their_bar(conflated: Path) -> None:
    cluster = json.loads((conflated / "run.json").read_text())["matching"]["cluster"]
    pairs = _scored(conflated).filter(pl.col("left_source") == pl.col("right_source"))
    assert pairs.height, "the test world has no pair of one source: pick another seed"
    top = pairs.sort("match_probability", "left_id", descending=[True, False]).row(0, named=True)
    story = explain_pair(conflated, _key(top, "left"), _key(top, "right"))
    bar = max(cluster["threshold"], cluster["same_source"])
    assert story.threshold == bar
    if story.places[0] == story.places[1] and top["match_probability"] >= bar:
        assert (
            story.verdict
            == f"one place: scored above the run's bar for two records of one source ({bar:g})"
        )
    elif story.places[0] != story.places[1]:
        assert story.verdict.startswith("two places")


def test_the_cli_writes_the_pairs_page(conflated: Path, tmp_path: Path) -> None:
    pair = _scored(conflated).sort("match_probability", descending=True).row(0, named=True)
    page = tmp_path / "why.html"
    made = poiflow(
        "explain", str(conflated), _key(pair, "left"), _key(pair, "right"), "--html", str(page)
    )
    assert made.returncode == 0, made.stderr
    assert f"the page: {page}" in made.stdout.replace("\n", "")
    assert '<svg class="waterfall"' in page.read_text()


def test_a_pair_blocking_never_met_says_what_distance_keeps_apart(conflated: Path) -> None:
    from poiflow.conflate.geo import haversine_m

    records = pl.read_parquet(conflated / "records.parquet", columns=["source", "id", "lat", "lon"])
    located = records.drop_nulls("lat").sort("source", "id")
    first = located.row(0, named=True)
    far = located.with_columns(
        pl.Series(
            "metres",
            haversine_m(
                located["lat"].to_numpy(),
                located["lon"].to_numpy(),
                np.full(located.height, first["lat"]),
                np.full(located.height, first["lon"]),
            ),
        )
    ).sort("metres", descending=True)
    other = far.row(0, named=True)
    story = explain_pair(
        conflated, f"{first['source']}:{first['id']}", f"{other['source']}:{other['id']}"
    )
    assert not story.candidate
    assert story.blocking == ()
    # Any two records in one spot meet by the near key: the story says what else would.
    assert ("were they nearer" in story.verdict) or ("only standing within" in story.verdict)
    assert f"they lie {other['metres']:,.0f} m apart" in story.verdict


def test_a_decided_pair_is_explained_as_decided_and_its_places_links_count_it(
    decided: dict[str, Any],
) -> None:
    from poiflow.pipeline.outputs import pairs_among

    out = decided["out"]
    (a, b, c, d) = (decided[k] for k in "abcd")
    joined = explain_pair(out, ":".join(c), ":".join(d))
    assert joined.places[0] == joined.places[1]
    assert joined.verdict.startswith("one place: a person decided so (line 3 of")
    apart = explain_pair(out, ":".join(a), ":".join(b))
    assert apart.places[0] != apart.places[1]
    assert apart.verdict.startswith("two places: a person decided so (line 2 of")
    # The pairs among records, as explain's chains and a place's story read them: the
    # decisions over the model's scores, a decided pair the run never scored among them.
    members = pl.DataFrame([a, b, c, d], schema=["source", "id"], orient="row").with_row_index(
        "row"
    )
    among = {(min(r, s), max(r, s)): p for r, s, p in pairs_among(out, members).iter_rows()}
    assert among[(0, 1)] == 0.0
    assert among[(2, 3)] == 1.0
    assert len(among) == len(pairs_among(out, members))  # each pair once


def test_a_call_centres_number_is_said_to_be_shared_not_missing(tmp_path: Path) -> None:
    from poiflow.pipeline import conflate
    from poiflow.pipeline.explaining import PHONE_SHARED

    # Source "b" gives its three branches the chain's one number; "a" lists one branch
    # with its own number, and one without any.
    rows = [
        ("a", "a1", "Alepa Kallio", 60.1840, 24.9500, "+358 9 111 1111"),
        ("a", "a2", "Alepa Vallila", 60.1940, 24.9600, ""),
        ("b", "b1", "Alepa Kallio", 60.1841, 24.9501, "+358 20 555 0000"),
        ("b", "b2", "Alepa Sörnäinen", 60.1870, 24.9610, "+358 20 555 0000"),
        ("b", "b3", "Alepa Vallila", 60.1941, 24.9601, "+358 20 555 0000"),
    ]
    files = []
    for source in ("a", "b"):
        files.append(tmp_path / f"{source}.csv")
        pl.DataFrame(
            [r[1:] for r in rows if r[0] == source],
            schema=["id", "name", "lat", "lon", "phone"],
            orient="row",
        ).write_csv(files[-1])
    out = tmp_path / "out"
    conflate(files, out, workers=1)

    def phone(left: str, right: str) -> str:
        story = explain_pair(out, left, right)
        return next(p.shows for p in story.explanation.parts if p.name == "phone_match")

    assert phone("b:b2", "b:b3") == PHONE_SHARED
    assert phone("a:a1", "b:b1") == PHONE_SHARED
    assert phone("a:a2", "b:b3") == "one lacks it"
