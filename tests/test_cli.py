"""The CLI as a person uses it: real subprocesses, exit codes, one-line errors."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from .conftest import VENDOR_FEED
from .test_readme import parse_error, walk_commands

POIFLOW = [sys.executable, "-m", "poiflow"]


def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*POIFLOW, *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
        env={"COLUMNS": "120", "PATH": "/usr/bin:/bin"},
    )


def test_conflate_says_what_each_stage_did_as_run_json_counts_it(tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = run("conflate", VENDOR_FEED, "-o", out)
    assert result.returncode == 0, result.stderr
    counts = json.loads((out / "run.json").read_text())["counts"]
    said = " ".join(result.stderr.replace("│", " ").split())  # the table's rows as words
    per_record = counts["candidate_pairs"] / counts["records"]
    assert f"block {counts['candidate_pairs']:,} candidate pairs ({per_record:.1f} per" in said
    assert f"cluster {counts['matched_pairs']:,} matched pairs" in said
    assert f"merge {counts['places']:,} places, {counts['multi_source_places']:,} from 2+" in said
    assert counts["places"] < counts["records"]  # the feed lists some places twice


def test_an_inputs_name_is_broken_not_cut_in_a_narrow_ingest_table(tmp_path: Path) -> None:
    # 80 columns: a terminal's least, and a log's (Airflow's) width. The name was cut
    # to "a_rather_lo…", which no one could find.
    feed = tmp_path / "a_rather_long_name_for_a_vendor_feed.csv"
    feed.write_text("id,name,lat,lon\n1,Kahvila,60.17,24.94\n", encoding="utf-8")
    result = subprocess.run(
        [*POIFLOW, "ingest", str(feed), "-o", str(tmp_path / "p.parquet")],
        capture_output=True,
        text=True,
        env={"COLUMNS": "80", "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr
    rows = [line for line in result.stderr.splitlines() if line.count("│") == 6]
    assert rows, result.stderr
    assert max(len(line) for line in rows) <= 80
    assert "…" not in "".join(rows)
    assert "".join(row.split("│")[0].strip() for row in rows) == feed.name


def test_help_teaches_with_examples() -> None:
    result = run("ingest", "--help")
    assert result.returncode == 0
    assert "Examples" in result.stdout
    assert "poiflow ingest" in result.stdout
    assert "--mapping" in result.stdout
    assert "quarantine" in result.stdout


def test_ingest_and_summary(helsinki_pbf: Path, tmp_path: Path) -> None:
    out = tmp_path / "places.parquet"
    result = run("ingest", helsinki_pbf, VENDOR_FEED, "--output", out, "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["read"] == report["valid"] + report["quarantined"]
    # The feed's broken rows; its "Null Island Cafe" at (0, 0) goes on without its point.
    assert report["quarantined"] >= 5
    assert report["withheld_values"] >= 1
    assert pq.read_table(out).num_rows == report["valid"]
    summary = run("summary", out)
    assert summary.returncode == 0
    assert f"{report['valid']:,} places" in summary.stdout
    assert "phones in E.164" in summary.stdout
    assert "OpenStreetMap contributors" in summary.stdout
    # Its three tables side by side where they fit (120 columns), one under another where
    # they would be cut short (80: "professiona…").
    assert any(
        "By source" in line and "Top categories" in line for line in summary.stdout.split("\n")
    )
    narrow = subprocess.run(
        [*POIFLOW, "summary", str(out)],
        capture_output=True,
        text=True,
        env={"COLUMNS": "80", "PATH": "/usr/bin:/bin"},
    ).stdout
    tables = narrow.partition("phones in E.164")[0]
    assert "professional_service" in tables
    assert "…" not in tables
    assert not any("By source" in line and "Top categories" in line for line in narrow.split("\n"))


def test_summary_shows_the_labels_a_mapping_could_map(tmp_path: Path) -> None:
    feed = tmp_path / "codes.csv"
    feed.write_text("id,name,category\n1,Nord,5812\n2,Sud,5812\n3,Cafe,Kahvila\n", "utf-8")
    assert run("ingest", feed, "-o", tmp_path / "p.parquet").returncode == 0
    said = run("summary", tmp_path / "p.parquet")
    assert said.returncode == 0
    text = " ".join(said.stdout.split())
    assert "Category labels not in the taxonomy" in text
    assert "5812 │ 2" in text
    assert "with 'categories:' in a mapping" in text


def test_ingest_says_which_source_rounds_its_points_to_a_kilometre(tmp_path: Path) -> None:
    feed = tmp_path / "coarse.csv"
    rows = "".join(f"{i},Place {i},{60.1 + i / 97:.2f},24.94\n" for i in range(30))
    feed.write_text("id,name,lat,lon\n" + rows, "utf-8")
    result = run("ingest", feed, "-o", tmp_path / "p.parquet")
    assert result.returncode == 0
    text = " ".join((result.stdout + result.stderr).split())
    assert "source 'coarse' gives most of its points to 2 decimals (about 1 km)" in text


def test_errors_are_one_readable_line(helsinki_pbf: Path, tmp_path: Path) -> None:
    truncated = tmp_path / "cut.osm.pbf"
    truncated.write_bytes(helsinki_pbf.read_bytes()[:300_000])
    result = run("ingest", truncated, "-o", tmp_path / "p.parquet")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert f"error: {truncated}: not a readable OSM file" in result.stderr
    assert len(result.stderr.strip().splitlines()[-1]) > 80  # one line, not wrapped
    assert not (tmp_path / "p.parquet").exists()

    mapping = tmp_path / "m.yaml"
    mapping.write_text("colums: {id: x}\n", encoding="utf-8")
    result = run("ingest", VENDOR_FEED, "-o", tmp_path / "p.parquet", "--mapping", mapping)
    assert result.returncode == 1
    assert "Did you mean 'columns'?" in result.stderr
    assert "Traceback" not in result.stderr


def test_an_unreadable_input_to_conflate_is_named_without_a_librarys_frame(
    tmp_path: Path,
) -> None:
    # The reader's error says what is wrong; where pyarrow noticed it would only confuse.
    fake = tmp_path / "feed.parquet"
    fake.write_text("id,name\n1,Cafe\n", encoding="utf-8")
    result = run("conflate", fake, "-o", tmp_path / "out")
    assert result.returncode == 1
    assert f"error: {fake}: not a readable Parquet file" in result.stderr
    assert "raised at" not in result.stderr
    assert "pyarrow" not in result.stderr.split("error:")[1].split("(")[0]
    assert not (tmp_path / "out").exists()


def test_ingest_into_a_folder_is_refused_before_any_work(tmp_path: Path) -> None:
    folder = tmp_path / "out"
    folder.mkdir()
    result = run("ingest", VENDOR_FEED, "-o", folder)
    assert result.returncode == 1
    assert f"error: {folder}: a folder, not a file" in result.stderr
    assert f"{folder / 'places.parquet'}" in result.stderr
    assert "Traceback" not in result.stderr
    assert not list(folder.iterdir())
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_unknown_command_suggests() -> None:
    result = run("ingets")
    assert result.returncode == 2
    assert "Did you mean 'ingest'" in result.stderr


def test_version() -> None:
    result = run("--version")
    assert result.returncode == 0
    assert result.stdout.startswith("poiflow ")


def test_generate_conflate_evaluate_train(tmp_path: Path) -> None:
    gen = tmp_path / "gen"
    result = run("generate", "--places", "1500", "--sources", "3", "--seed", "4", "-o", gen)
    assert result.returncode == 0, result.stderr
    sources = sorted(gen.glob("source_*.csv"))
    # What to do next, as one line to copy, which the CLI takes.
    (next_step,) = [line for line in result.stderr.splitlines() if line.startswith("next: ")]
    command = next_step.removeprefix("next: ").split(" (")[0]
    assert command == f"poiflow conflate {gen}/source_*.csv -o out/run --gold {gen}/gold.csv"
    assert parse_error(command, whole=True) is None
    result = run(
        "conflate",
        *sources,
        "-o",
        tmp_path / "run",
        "--json",
        "--gold",
        gen / "gold.csv",
        "--gold-places",
        gen / "gold_places.csv",
    )
    assert result.returncode == 0, result.stderr
    conflated = json.loads(result.stdout)
    assert conflated["counts"]["places"] > 1000
    assert "<h2>Where the errors are" in (tmp_path / "run" / "report.html").read_text()
    # --help names every file the run wrote, and no file it did not write.
    helped = run("conflate", "--help").stdout
    named = set(re.findall(r"^\s+([a-z_]+\.(?:parquet|json|html|json\.gz))\s", helped, re.M))
    assert named == {p.name for p in (tmp_path / "run").iterdir()}
    judged = (
        "evaluate",
        "--gold",
        gen / "gold.csv",
        "--membership",
        tmp_path / "run" / "membership.parquet",
    )
    result = run(*judged, "--json", "--sweep")
    assert result.returncode == 0, result.stderr
    scores = json.loads(result.stdout)
    # The run scored itself against the same truth (--gold), with the same counts.
    assert conflated["metrics"]["f1"] == scores["f1"]
    assert {k: conflated["metrics"][k] for k in scores["errors"]} == scores["errors"]
    own = next(row for row in scores["sweep"] if row["threshold"] == 0.3)
    assert own["f1"] == scores["f1"]  # the run's own threshold, clustered again
    assert len(scores["sweep"]) > 5
    assert scores["f1"] > 0.9
    assert scores["bcubed_f1"] > 0.9
    # Where the errors came from: pairs.parquet and run.json beside the membership.
    errors = scores["errors"]
    missed = sum(n for kind, n in errors.items() if kind.startswith("missed_"))
    wrong = sum(n for kind, n in errors.items() if kind.startswith("wrong_"))
    assert missed == scores["true_pairs"] - scores["correct_pairs"] > 0
    assert wrong == scores["predicted_pairs"] - scores["correct_pairs"]
    assert scores["threshold"] == 0.3
    assert sum(row["true_pairs"] for row in scores["by_sources"]) == scores["true_pairs"]
    result = run(*judged, "--errors", tmp_path / "errors.parquet", "--examples", "2")
    assert result.returncode == 0, result.stderr
    assert "Where the errors are (threshold 0.3, from run.json)" in result.stdout
    assert "source_a · source_b" in result.stdout
    # On a terminal of 80 columns too, each pair of sources is one line of the table, and
    # a mistake's records are broken over lines, not cut short ("source_b:B00…"): their
    # keys are what poiflow explain takes.
    narrow = subprocess.run(
        [*POIFLOW, *map(str, judged), "--examples", "2"],
        capture_output=True,
        text=True,
        timeout=300,
        env={"COLUMNS": "80", "PATH": "/usr/bin:/bin"},
    )
    lines = narrow.stdout.splitlines()
    assert max(map(len, lines)) <= 80
    assert any(line.startswith(" source_a · source_b │") for line in lines)
    assert "missed · matcher" in narrow.stdout
    assert "…" not in narrow.stdout
    assert "missed · matcher: scored below the threshold" in result.stdout
    written = pq.read_table(tmp_path / "errors.parquet")
    assert written.num_rows == missed + wrong
    assert {"stage", "left_name", "right_name", "name_token_set"} <= set(written.column_names)
    # The golden records against the true places: every attribute scored, beside the
    # naive merge, and the same figures as a table and as JSON.
    result = run(*judged, "--gold-places", gen / "gold_places.csv", "--json")
    assert result.returncode == 0, result.stderr
    golden = json.loads(result.stdout)["golden"]
    rows = {row["attribute"]: row for row in golden["attributes"]}
    assert golden["places"] == conflated["counts"]["places"]
    assert rows["name"]["accuracy"] > rows["name"]["naive_accuracy"]
    assert rows["location"]["accuracy"] > 0.7
    # The run scored its golden records itself (--gold-places): the same figures.
    for attribute in ("name", "name as written", "location", "phone"):
        key = attribute.replace(" ", "_")
        assert conflated["metrics"][f"golden.{key}.accuracy"] == rows[attribute]["accuracy"]
        assert conflated["metrics"][f"golden.{key}.coverage"] == rows[attribute]["coverage"]
    assert conflated["metrics"]["golden.name.brier"] == rows["name"]["brier"]
    assert "golden.brand.brier" not in conflated["metrics"]  # the brand has no confidence
    assert all(0 <= row["correct"] <= row["given"] <= row["true"] for row in rows.values())
    result = run(*judged, "--gold-places", gen / "gold_places.csv", "--examples", "0")
    assert result.returncode == 0, result.stderr
    assert "Golden records against the truth" in result.stdout
    assert f"{rows['name']['accuracy']:.4f}" in result.stdout
    assert "(accuracy/values)" in result.stdout  # 120 columns: each cell on one line
    # On 80 columns the calibration's cells were cut short ("0.28/1…"): each value now
    # stands under its accuracy, and nothing is cut.
    narrow = subprocess.run(
        [*POIFLOW, *map(str, judged), "--gold-places", str(gen / "gold_places.csv")],
        capture_output=True,
        text=True,
        timeout=300,
        env={"COLUMNS": "80", "PATH": "/usr/bin:/bin"},
    ).stdout
    assert "(accuracy, and the values under it)" in " ".join(narrow.split())
    assert "…" not in narrow
    result = run(*judged, "--gold-places", gen / "source_a.csv")  # not the true places
    assert result.returncode == 1
    assert "none of its ids is a place of the gold file" in result.stderr
    summary = run("summary", tmp_path / "run" / "places.parquet")  # golden places
    assert summary.returncode == 0, summary.stderr
    assert "source_a" in summary.stdout
    assert "Completeness" in summary.stdout
    result = run("train", *sources, "--gold", gen / "gold.csv", "-o", tmp_path / "m.json.gz")
    assert result.returncode == 0, result.stderr
    assert "held out" in result.stderr
    assert f"next: poiflow conflate INPUT... -o out/run --model {tmp_path / 'm.json.gz'}" in (
        result.stderr
    )
    result = run("conflate", *sources, "-o", tmp_path / "run2", "--model", tmp_path / "m.json.gz")
    assert result.returncode == 0, result.stderr
    learnt = json.loads((tmp_path / "run2" / "run.json").read_text())["source_precision_m"]
    assert set(learnt) == {"source_a", "source_b", "source_c"}
    assert "golden points weigh each source" in result.stdout + result.stderr
    said = json.loads((tmp_path / "run2" / "run.json").read_text())["source_accuracy"]
    assert set(said["name"]) == {"source_a", "source_b", "source_c"}
    assert all(0.05 <= a <= 0.999 for by in said.values() for a in by.values())
    covered = json.loads((tmp_path / "run2" / "run.json").read_text())["place_coverage"]
    assert set(covered["whole"]) == set(covered["split"]) == {"source_a", "source_b", "source_c"}
    places = pq.read_table(tmp_path / "run2" / "places.parquet", columns=["confidence", "members"])
    # A place of one record is as sure as its source's places alone are whole.
    alone = {round(c, 3) for c, m in zip(*places.to_pydict().values(), strict=True) if m == 1}
    assert alone <= {round(w, 3) for w in covered["whole"].values()}
    assert "how often each source is right" in result.stdout + result.stderr
    assert "judged by two sources alone" not in result.stdout + result.stderr  # three here
    # The true places without the truth of which record is which place: refused first.
    result = run("conflate", *sources, "-o", tmp_path / "x", "--gold-places", gen / "gold.csv")
    assert result.returncode == 1
    assert "the true places need the gold file too" in result.stderr
    assert not (tmp_path / "x").exists()
    # Without labels: a Fellegi-Sunter model, its weights shown, then used as a model file.
    result = run("train", *sources, "--unsupervised", "-o", tmp_path / "em.json.gz")
    assert result.returncode == 0, result.stderr
    assert "Match weights" in result.stderr
    assert "exact, rare name" in result.stderr
    result = run("conflate", *sources, "-o", tmp_path / "run3", "--model", tmp_path / "em.json.gz")
    assert result.returncode == 0, result.stderr
    result = run("conflate", *sources, "-o", tmp_path / "run4", "--model", "em")
    assert result.returncode == 0, result.stderr
    assert "Match weights" in result.stderr  # what EM learnt on this run, shown
    result = run("train", *sources, "-o", tmp_path / "x.json.gz")  # neither --gold nor --unsup.
    assert result.returncode == 1
    assert "--gold" in result.stderr
    assert "--unsupervised" in result.stderr


def test_two_sources_are_said_to_be_judged_alike(tmp_path: Path) -> None:
    # Two sources alone: where they differ, their agreement cannot say which is wrong, so
    # the run takes them to be as often right as each other, and says so under the table.
    gen = tmp_path / "gen"
    assert (
        run("generate", "--places", "300", "--sources", "2", "--seed", "5", "-o", gen).returncode
        == 0
    )
    result = run("conflate", *sorted(gen.glob("source_*.csv")), "-o", tmp_path / "run")
    assert result.returncode == 0, result.stderr
    said = json.loads((tmp_path / "run" / "run.json").read_text())["source_accuracy"]
    shown = [a for a in ("name", "category", "address", "phone") if a in said]
    assert all(len(set(said[a].values())) == 1 for a in shown)
    text = " ".join((result.stdout + result.stderr).split())
    assert f"{', '.join(shown).capitalize()}: judged by two sources alone." in text
    # So does a place's story, under the same table.
    places = pq.read_table(tmp_path / "run" / "places.parquet", columns=["id", "members"])
    place = next(i for i, m in zip(*places.to_pydict().values(), strict=True) if m == 2)
    told = run("explain", tmp_path / "run", place)
    assert told.returncode == 0, told.stderr
    assert "judged by two sources alone." in " ".join(told.stdout.split())


def test_conflate_refuses_a_bad_model_in_one_line(tmp_path: Path) -> None:
    junk = tmp_path / "junk.json.gz"
    junk.write_text("{}", encoding="utf-8")
    result = run("conflate", VENDOR_FEED, "-o", tmp_path / "run", "--model", junk)
    assert result.returncode == 1
    assert "not a poiflow model" in result.stderr
    assert "Traceback" not in result.stderr
    # A truth file without its columns: refused before any work, nothing written.
    gold = tmp_path / "gold.csv"
    gold.write_text("source,id\na,1\n", encoding="utf-8")
    result = run("conflate", VENDOR_FEED, "-o", tmp_path / "run", "--gold", gold)
    assert result.returncode == 1
    assert f"{gold}: the gold file needs columns source, id, place" in result.stderr
    assert not (tmp_path / "run").exists()


def _rewritten_gold(gold: Path, to: Path, row: str) -> Path:
    """``gold`` with each record's line made from ``row``, formatted with the line's source,
    id and place and its index."""
    lines = gold.read_text(encoding="utf-8").splitlines()[1:]
    made = [row.format(*line.split(","), i) for i, line in enumerate(lines)]
    to.write_text("source,id,place\n" + "\n".join(made) + "\n", encoding="utf-8")
    return to


def test_a_gold_file_that_cannot_teach_or_judge_says_why(tmp_path: Path) -> None:
    world = tmp_path / "world"
    made = run("generate", "--places", "300", "--sources", "2", "--seed", "3", "-o", world)
    assert made.returncode == 0, made.stderr
    sources = sorted(world.glob("source_*.csv"))
    gold = world / "gold.csv"
    other = _rewritten_gold(gold, tmp_path / "other.csv", "x_{0},{1},{2}")
    alone = _rewritten_gold(gold, tmp_path / "alone.csv", "{0},{1},P{3}")
    one = _rewritten_gold(gold, tmp_path / "one.csv", "{0},{1},P")
    said = {
        other: "is one of the inputs': its sources are x_source_a, x_source_b; the inputs' "
        "are source_a, source_b",
        alone: "is a match by the gold file: it puts no two of the inputs' records in one place",
        one: "is a match by the gold file: a model needs non-matching pairs too",
    }
    for truth, why in said.items():
        result = run("train", *sources, "--gold", truth, "-o", tmp_path / "m.json.gz")
        assert result.returncode == 1, truth
        assert "Traceback" not in result.stderr
        assert f"error: {truth}: " in result.stderr
        assert why in " ".join(result.stderr.split())
    assert not (tmp_path / "m.json.gz").exists()
    assert run("train", *sources, "--gold", gold, "-o", tmp_path / "m.json.gz").returncode == 0

    assert run("conflate", *sources, "-o", tmp_path / "run").returncode == 0
    result = run("evaluate", "--gold", other, "--membership", tmp_path / "run")
    assert result.returncode == 1
    assert "none of the gold file's 4" in result.stderr  # its records, counted
    assert "is one of the run's: its sources are x_source_a" in " ".join(result.stderr.split())
    empty = tmp_path / "empty.csv"
    empty.write_text("source,id,place\n", encoding="utf-8")
    result = run("evaluate", "--gold", empty, "--membership", tmp_path / "run")
    assert result.returncode == 1
    assert "the gold file lists no records" in result.stderr


def test_a_model_fitted_on_records_without_candidate_pairs_is_refused(tmp_path: Path) -> None:
    lonely = tmp_path / "lonely.csv"
    lonely.write_text("id,name,lat,lon\n1,Kahvila Sininen,60.17,24.94\n", encoding="utf-8")
    for args in (
        ("train", lonely, "--unsupervised", "-o", tmp_path / "em.json.gz"),
        ("train", lonely, "--gold", _one_place(lonely, tmp_path), "-o", tmp_path / "m.json.gz"),
        ("conflate", lonely, "--model", "em", "-o", tmp_path / "run"),
    ):
        result = run(*args)
        assert result.returncode == 1, args
        said = " ".join(result.stderr.split())
        assert "needs candidate pairs, and these records give none" in said, args
        assert "Traceback" not in said
        assert "raised at" not in said
    assert not [p.name for p in tmp_path.iterdir() if p.suffix != ".csv"]
    assert run("conflate", lonely, "-o", tmp_path / "run").returncode == 0  # the default model


def _one_place(feed: Path, folder: Path) -> Path:
    gold = folder / "gold.csv"
    gold.write_text(f"source,id,place\n{feed.stem},1,P\n", encoding="utf-8")
    return gold


def test_ingest_notes_two_inputs_that_give_one_source(tmp_path: Path) -> None:
    (tmp_path / "jan").mkdir()
    (tmp_path / "feb").mkdir()
    january, february = tmp_path / "jan" / "feed.csv", tmp_path / "feb" / "feed.csv"
    january.write_text("id,name\n1,Kahvila\n2,Baari\n", encoding="utf-8")
    february.write_text("id,name\n2,Baari\n3,Kirja\n", encoding="utf-8")
    result = run("ingest", january, february, "-o", tmp_path / "p.parquet")
    assert result.returncode == 0, result.stderr
    said = " ".join((result.stdout + result.stderr).split())
    assert (
        f"note: {january} and {february} both give source 'feed', so they are one source: "
        "an id in both is held back as a repeat"
    ) in said
    held = pq.read_table(tmp_path / "p.quarantine.parquet").to_pylist()
    assert [(r["source"], r["id"]) for r in held] == [("feed", "2")]
    # Two folders are two sources, named by the folders.
    result = run("ingest", tmp_path / "jan", tmp_path / "feb", "-o", tmp_path / "q.parquet")
    assert result.returncode == 0, result.stderr
    assert "note:" not in result.stdout + result.stderr
    assert pq.read_table(tmp_path / "q.parquet").num_rows == 4


def test_a_repair_that_many_inputs_needed_is_said_once(tmp_path: Path) -> None:
    for name, rows in (("a", 2), ("b", 1), ("c", 0)):
        lines = "".join(f"{i},Caf&#233; {name}{i}\n" for i in range(rows))
        (tmp_path / f"{name}.csv").write_text(f"id,name\n{lines}9,Baari\n", encoding="utf-8")
    inputs = [tmp_path / f"{name}.csv" for name in "abc"]
    result = run("ingest", *inputs, "-o", tmp_path / "p.parquet")
    assert result.returncode == 0, result.stderr
    said = " ".join((result.stdout + result.stderr).split())
    assert said.count("note:") == 1
    # The first two values, from whichever inputs had them, then each input's count.
    assert (
        'note: 3 records had text escaped for the web, read as its characters: "Caf&#233; a0", '
        f'"Caf&#233; a1"; in {tmp_path}/: a.csv 2, b.csv 1'
    ) in said
    # One input: its path and its count, as before.
    result = run("ingest", inputs[1], "-o", tmp_path / "q.parquet")
    said = " ".join((result.stdout + result.stderr).split())
    assert f"note: {inputs[1]}: 1 record had text escaped for the web, read as its " in said
    assert 'characters: "Caf&#233; b0"' in said


def test_conflate_says_what_the_quality_checks_found(tmp_path: Path) -> None:
    feed = tmp_path / "feed.csv"
    feed.write_text(
        "id,name,lat,lon\n1,Cafe Aalto,60.1675,24.9425\n2,Kahvila Sävel,,\n"
        "3,Apteekki Kamppi,59.9,24.9\n",  # one without a point, one in the sea
        encoding="utf-8",
    )
    result = run("conflate", feed, "-o", tmp_path / "out")
    assert result.returncode == 0, result.stderr
    said = " ".join((result.stdout + result.stderr).split())
    checks = json.loads((tmp_path / "out" / "run.json").read_text())["checks"]
    assert checks["failed"] == {"has_location": 1, "in_the_sea": 1}
    assert checks["failed_at_error"] == ["in_the_sea"]
    assert len(checks["passed"]) == checks["checks"] - 2
    assert (
        f"quality checks: 2 of {checks['checks']} flagged places, 1 issue of error level "
        f"(in_the_sea) and 1 of warn level; the most: has_location 1, in_the_sea 1 (each in "
        f"{tmp_path / 'out'}/issues.parquet, the whole in report.html)"
    ) in said
    # Nothing flagged: said so.
    feed.write_text("id,name,lat,lon\n1,Cafe Aalto,60.1675,24.9425\n", encoding="utf-8")
    result = run("conflate", feed, "-o", tmp_path / "clean")
    said = " ".join((result.stdout + result.stderr).split())
    assert f"quality checks: none of {checks['checks']} flagged a place" in said


def test_mappings_for_every_tabular_input_and_for_one(helsinki_pbf: Path, tmp_path: Path) -> None:
    # A vendor's own columns beside an OSM extract: the one mapping is the feed's.
    feed = tmp_path / "toimittaja.csv"
    feed.write_text("tunnus;nimi;lev;pit\nT1;Kahvila Kulma;60,1645;24,9369\n", "utf-8")
    every = tmp_path / "every.yaml"
    every.write_text(
        "source: toimittaja\ncolumns: {id: tunnus, name: nimi, lat: lev, lon: pit}\n", "utf-8"
    )
    result = run("ingest", helsinki_pbf, feed, "--mapping", every, "-o", tmp_path / "a.parquet")
    assert result.returncode == 0, result.stderr
    places = pq.read_table(tmp_path / "a.parquet").to_pylist()
    assert {p["source"] for p in places} == {"osm", "toimittaja"}
    (kulma,) = [p for p in places if p["source"] == "toimittaja"]
    assert (kulma["id"], kulma["lat"]) == ("T1", 60.1645)

    # Two feeds, each in its own layout: one mapping each, named by the input.
    other = tmp_path / "other.jsonl"
    other.write_text('{"ref": "O1", "title": "Baari"}\n', "utf-8")
    own = tmp_path / "own.yaml"
    own.write_text("columns: {id: ref, name: title}\n", "utf-8")
    result = run(
        "ingest", feed, other, "--mapping", every, "--mapping", f"{other}={own}",
        "-o", tmp_path / "b.parquet",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    ids = sorted(pq.read_table(tmp_path / "b.parquet").column("id").to_pylist())
    assert ids == ["O1", "T1"]

    # A mapping for an input that is not given is refused with the one that was meant.
    typo = str(other).replace("other", "othr")
    result = run("ingest", feed, other, "--mapping", f"{typo}={own}", "-o", tmp_path / "c.parquet")
    assert result.returncode != 0
    said = " ".join(result.stderr.split())
    assert f"a mapping is given for {typo}, which is not an input. Did you mean '{other}'?" in said
    result = run("ingest", feed, "--mapping", every, "--mapping", own, "-o", tmp_path / "d.parquet")
    assert result.returncode != 0
    assert "two mappings for every input" in result.stderr


def test_conflate_warns_of_an_input_that_adds_nothing_and_refuses_when_none_adds_any(
    tmp_path: Path,
) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("id,name,lat,lon\n1,,60.1,24.9\n2,Bar,95,24.9\n", encoding="utf-8")
    empty = tmp_path / "empty.csv"
    empty.write_text("id,name,lat,lon\n", encoding="utf-8")
    result = run("conflate", bad, VENDOR_FEED, empty, "-o", tmp_path / "run")
    assert result.returncode == 0, result.stderr
    said = " ".join((result.stdout + result.stderr).split())
    assert (
        f"warning: {bad}: all 2 of its records were quarantined, so it adds nothing; "
        f"their reasons are in {tmp_path / 'run'}/quarantine.parquet"
    ) in said
    assert f"warning: {empty} holds no records" in said
    assert f"warning: {VENDOR_FEED}" not in said
    assert f"note: {bad}" not in said
    assert f"note: {empty}" not in said
    # Alone, it gives nothing to conflate: one line says why, and nothing is written.
    result = run("conflate", bad, "-o", tmp_path / "none")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: {bad}: no valid records: all 2 records read were quarantined: "
        "name is missing (1 record, at bad.csv:2); "
        "lat 95.0 is out of range [-90, 90] (1 record, at bad.csv:3)"
    )
    assert not (tmp_path / "none").exists() or not any((tmp_path / "none").iterdir())


def membership_file(path: Path, place_of: dict[str, str]) -> Path:
    """A membership file of source 'a''s records: each id in its place."""
    pq.write_table(
        pa.table(
            {
                "source": ["a"] * len(place_of),
                "id": list(place_of),
                "place_id": list(place_of.values()),
            }
        ),
        path,
    )
    return path


def test_evaluate_names_what_the_gold_file_lacks(tmp_path: Path) -> None:
    gold = tmp_path / "gold.csv"
    gold.write_text("source,id,cluster\na,1,X\n", encoding="utf-8")
    membership = membership_file(tmp_path / "m.parquet", {"1": "p"})
    result = run("evaluate", "--gold", gold, "--membership", membership)
    assert result.returncode == 1
    assert f"{gold}: the gold file needs columns source, id, place; missing place" in result.stderr
    # No pairs.parquet beside the membership: the scores, and how to see more.
    gold.write_text("source,id,place\na,1,X\n", encoding="utf-8")
    result = run("evaluate", "--gold", gold, "--membership", membership)
    assert result.returncode == 0, result.stderr
    assert "give --pairs" in result.stdout
    result = run("evaluate", "--gold", gold, "--membership", membership, "--errors", "e.csv")
    assert result.returncode == 1
    assert (
        f"{tmp_path / 'pairs.parquet'}: no scored pairs to trace the errors with" in result.stderr
    )


def test_evaluate_reads_the_runs_folder_and_names_what_a_wrong_file_lacks(
    tmp_path: Path,
) -> None:
    gold = tmp_path / "gold.csv"
    gold.write_text("source,id,place\na,1,X\na,2,X\n", encoding="utf-8")
    run_folder = tmp_path / "run"
    run_folder.mkdir()
    membership_file(run_folder / "membership.parquet", {"1": "p", "2": "p"})
    by_folder = run("evaluate", "--gold", gold, "--membership", run_folder, "--json")
    by_file = run(
        "evaluate", "--gold", gold, "--membership", run_folder / "membership.parquet", "--json"
    )
    assert by_folder.returncode == 0, by_folder.stderr
    assert json.loads(by_folder.stdout)["f1"] == json.loads(by_file.stdout)["f1"] == 1.0
    places = run_folder / "places.parquet"
    pq.write_table(pa.table({"id": ["p"], "lat": [60.1], "members": [2]}), places)
    result = run("evaluate", "--gold", gold, "--membership", places)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: {places}: not a membership file: no source, place_id column (it has id, lat, "
        "members); give the membership.parquet that 'poiflow conflate' wrote"
    )
    result = run("evaluate", "--gold", gold, "--membership", tmp_path / "nowhere.parquet")
    assert f"error: {tmp_path / 'nowhere.parquet'}: no such file" in result.stderr


def test_the_cli_batch_size_default_is_the_sources_one() -> None:
    from poiflow import cli
    from poiflow.pipeline import conflation
    from poiflow.sources import DEFAULT_BATCH_SIZE

    assert cli.DEFAULT_BATCH_SIZE == conflation.DEFAULT_BATCH_SIZE == DEFAULT_BATCH_SIZE


def test_help_prose_wraps_at_the_terminal_width_and_layouts_keep_their_lines() -> None:
    from poiflow.cli import reflow

    text = """
    First line.

    A paragraph written
    over three lines
    at 88 columns.

      poiflow run a.yaml
      poiflow run b.yaml
    - a list item
    - another
    """
    assert reflow(text) == (
        "First line.\n\nA paragraph written over three lines at 88 columns.\n\n"
        "  poiflow run a.yaml\n  poiflow run b.yaml\n- a list item\n- another"
    )
    result = subprocess.run(
        [*POIFLOW, "conflate", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        env={"COLUMNS": "80", "PATH": "/usr/bin:/bin"},
    )
    lines = result.stdout.splitlines()
    # Written "...with provenance and" / "confidence.": wrapped at 80, no word alone.
    assert "confidence." in next(line for line in lines if "provenance and" in line)
    assert all(line.strip() != "confidence." for line in lines)
    assert "ignore: [internal_score]" in run("ingest", "--help").stdout  # not eaten as markup


def test_workers_read_a_large_input_to_the_same_bytes(helsinki_pbf: Path, tmp_path: Path) -> None:
    written = []
    for workers in ("1", "2"):
        out = tmp_path / f"w{workers}.parquet"
        result = run("ingest", helsinki_pbf, "-o", out, "--workers", workers, "--json")
        assert result.returncode == 0, result.stderr
        written.append(out.read_bytes())
    assert written[0] == written[1]
    result = run("ingest", helsinki_pbf, "-o", tmp_path / "x.parquet", "--workers", "0")
    assert result.returncode == 2
    assert "--workers" in result.stderr
    assert "--workers" in run("conflate", "--help").stdout


def every_command() -> list[tuple[list[str], Any]]:
    """Each command of the CLI (a group's too, not the group), with its words after
    ``poiflow``."""
    import typer

    from poiflow.cli import app

    found = [
        (name.split()[1:], command)
        for name, command in walk_commands(typer.main.get_command(app), ["poiflow"])
        if not hasattr(command, "commands")
    ]
    assert len(found) > 20
    return found


def test_every_usage_line_names_its_arguments_as_the_help_does() -> None:
    # The help's prose speaks of RUN, INPUT, PIPELINE...: the usage line names them so,
    # and an argument that takes many is shown once, with the dots after it.
    for path, command in every_command():
        with command.context_class(command, info_name=" ".join(path)) as context:
            pieces = command.collect_usage_pieces(context)
        arguments = [p for p in pieces if p != "[OPTIONS]"]
        for piece in arguments:
            assert piece.strip("{}[].").isupper(), (path, piece)
            assert "..." not in piece.rstrip("."), (path, piece)


def test_every_example_of_a_help_is_shown_indented_under_its_prose() -> None:
    # Typer dedents what follows a help's first paragraph as one docstring: a help with
    # one heading and then examples alone ('poiflow compare', 'poiflow summary') showed
    # them flush with the heading.
    from typer.testing import CliRunner

    from poiflow.cli import app

    runner = CliRunner()
    examples = 0
    for path, command in every_command():
        shown = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "250"}).output
        for line in command.help.splitlines():
            if line.startswith("  poiflow "):
                examples += 1
                assert f"\n {line.rstrip()}" in shown, (path, line)
    assert examples > 50


def option_rows(path: list[str], panel: str = "Options") -> list[str]:
    """The rows of a panel of ``poiflow PATH --help``, one per option (or argument), their
    borders and spaces squeezed: "--output -o DIR The output folder ..."."""
    from typer.testing import CliRunner

    from poiflow.cli import app

    shown = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "250"}).output
    lines = shown.partition(f"─ {panel} ─")[2].partition("╰")[0].splitlines()
    rows = [" ".join(line.strip("│ *").split()) for line in lines]
    # An option's row starts with its name; an argument's with its own, in capitals.
    return [
        row for row in rows if row.startswith("--") or (panel != "Options" and row[:1].isupper())
    ]


def test_every_option_shows_what_it_takes_and_no_flag_a_type() -> None:
    # Typer writes a Python type beside each option: '--json <bool>' read as if the flag
    # wanted a value ('--json true' is refused), '--output <str>' said less than DIR.
    arguments = 0
    for path in [*(p for p, _ in every_command()), ["deploy"], ["publish"], []]:
        rows = option_rows(path)
        assert "--help Show this message and exit." in rows, path
        for row in [*rows, *option_rows(path, "Arguments")]:
            assert not re.search(r"<(bool|str|path|int|float|list)\b", row), (path, row)
        arguments += len(option_rows(path, "Arguments"))
    assert arguments > 20  # INPUT, RUN, DIR, ... each named once, then its help
    assert option_rows(["explain"], "Arguments")[0].startswith("RUN An output folder")
    assert "--json Print run.json on stdout." in option_rows(["conflate"])
    assert "--version Print the version." in option_rows([])
    assert any(r.startswith("--output -o DIR The output folder") for r in option_rows(["conflate"]))
    assert any(r.startswith("--places N [x>=1] Real places") for r in option_rows(["generate"]))
    assert any(r.startswith("--engine <local|spark> Where") for r in option_rows(["conflate"]))


def test_help_loads_no_data_library() -> None:
    # The help of every command is read before any data is: it loads neither numpy, Arrow
    # nor polars (about a quarter of a second of each --help: 0.80 -> 0.58 s).
    probe = (
        "import sys\n"
        "from poiflow.cli import app\n"
        "for args in ([], ['conflate'], ['ingest'], ['run'], ['serve']):\n"
        "    try:\n"
        "        app([*args, '--help'], standalone_mode=False)\n"
        "    except SystemExit:\n"
        "        pass\n"
        "print(sorted(m for m in ('numpy', 'pyarrow', 'polars') if m in sys.modules))\n"
    )
    run = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert run.stdout.count("Usage:") == 5  # each help was shown
    assert run.stdout.splitlines()[-1] == "[]"


# Runs a `poiflow` command (argv[2]) in this process, as the command's own process or as a
# library user's, and prints whether pandas came in during the run and whether it imports
# after.
_PANDAS_PROBE = """
import sys
from poiflow import _imports
from poiflow.cli import app
if sys.argv[1] == "command":
    _imports.command_process()
app([*sys.argv[2:], "--json"], standalone_mode=False)
print("pandas" in sys.modules)
import pandas
print(pandas.DataFrame({"a": [1]}).shape == (1, 1))
"""


@pytest.mark.parametrize(
    ("command", "output", "written"),
    [
        ("conflate", ".", ("places", "membership", "pairs", "records", "quarantine")),
        ("ingest", "places.parquet", ("places", "places.quarantine")),
    ],
)
def test_commands_that_read_run_without_pandas_and_write_the_same(
    tmp_path: Path, command: str, output: str, written: tuple[str, ...]
) -> None:
    # pyarrow and lleaves import pandas only to ask whether a value is one of its objects
    # (0.3 s): the command keeps it out of its own process while it reads and conflates,
    # and writes what a library user's run writes, byte for byte. Imports after the run
    # are as usual.
    said = {}
    for process in ("command", "library"):
        out = tmp_path / process / output
        args = [command, str(VENDOR_FEED), "-o", str(out)]
        run = subprocess.run(
            [sys.executable, "-c", _PANDAS_PROBE, process, *args], capture_output=True, text=True
        )
        assert run.returncode == 0, run.stderr
        said[process] = run.stdout.split()[-2:]
    assert said == {"command": ["False", "True"], "library": ["True", "True"]}
    for name in written:
        command_bytes = (tmp_path / "command" / f"{name}.parquet").read_bytes()
        assert command_bytes == (tmp_path / "library" / f"{name}.parquet").read_bytes(), name


def test_conflate_follows_a_persons_decisions_and_says_so(tmp_path: Path) -> None:
    decisions = tmp_path / "labels.csv"
    decisions.write_text(
        "left_source,left_id,right_source,right_id,label\n"
        "vendor_feed,V1000,vendor_feed,V1001,match\n"  # a clothes shop and a cafe
        "vendor_feed,V1000,vendor_feed,V9999,different\n",  # no such record
        encoding="utf-8",
    )
    result = run("conflate", VENDOR_FEED, "-o", tmp_path / "run", "--decisions", decisions)
    assert result.returncode == 0, result.stderr
    said = " ".join((result.stdout + result.stderr).split())
    assert "decisions: 1 followed (1 match, 0 different), 1 of them against the model" in said
    assert "1 name a record this run does not have" in said
    places = {
        r["id"]: r["place_id"]
        for r in pq.read_table(tmp_path / "run" / "membership.parquet").to_pylist()
    }
    assert places["V1000"] == places["V1001"]
    report = (tmp_path / "run" / "report.html").read_text(encoding="utf-8")
    assert "<b>1 (1 overruled)</b><span>decisions followed</span>" in report
    why = run("explain", tmp_path / "run", "vendor_feed:V1000", "vendor_feed:V1001", "--json")
    assert why.returncode == 0, why.stderr
    story = json.loads(why.stdout)
    assert story["same_place"]
    assert story["verdict"].startswith("one place: a person decided so (line 2 of the run's")
    # Decisions that contradict each other: refused before any work, with their lines.
    with decisions.open("a", encoding="utf-8") as handle:
        handle.write("vendor_feed,V1001,vendor_feed,V1002,match\n")
        handle.write("vendor_feed,V1002,vendor_feed,V1000,different\n")
    result = run("conflate", VENDOR_FEED, "-o", tmp_path / "again", "--decisions", decisions)
    assert result.returncode == 1
    assert f"{decisions}:5: vendor_feed:V1000 and vendor_feed:V1002 are decided different" in (
        " ".join(result.stderr.split())
    )
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "again").exists()


def test_decide_keeps_a_persons_word_for_the_next_run(tmp_path: Path) -> None:
    first = tmp_path / "run"
    assert run("conflate", VENDOR_FEED, "-o", first).returncode == 0
    membership = pq.read_table(first / "membership.parquet").to_pylist()
    place = {r["id"]: r["place_id"] for r in membership}
    assert place["V1000"] != place["V1001"]
    labels = first / "labels.csv"
    # Two records said to be one place; then a place said to be apart from a third record.
    said = run("decide", first, "vendor_feed:V1000", "vendor_feed:V1001", "--same")
    assert said.returncode == 0, said.stderr
    text = " ".join((said.stdout + said.stderr).split())
    assert f"vendor_feed:V1000 and vendor_feed:V1001 are one place: line 2 of {labels}" in text
    assert "the decision overrules it" in text
    said = run("decide", first, place["V1002"], "vendor_feed:V1001", "--different")
    assert said.returncode == 0, said.stderr
    # A decision the file cannot hold with the others: refused, and nothing written.
    before = labels.read_text(encoding="utf-8")
    refused = run("decide", first, "vendor_feed:V1000", place["V1002"], "--same")
    assert refused.returncode == 1
    assert "not written" in refused.stderr
    assert "line 4 would be this decision" in " ".join(refused.stderr.split())
    assert labels.read_text(encoding="utf-8") == before
    assert run("decide", first, "nowhere", "vendor_feed:V1001", "--same").returncode == 1
    # The next run follows the file.
    second = tmp_path / "run2"
    assert run("conflate", VENDOR_FEED, "-o", second, "--decisions", labels).returncode == 0
    after = {
        r["id"]: r["place_id"] for r in pq.read_table(second / "membership.parquet").to_pylist()
    }
    assert after["V1000"] == after["V1001"] != after["V1002"]
    # Taken back, the pair is the model's again.
    said = run("decide", first, "vendor_feed:V1001", "vendor_feed:V1000", "--forget")
    assert said.returncode == 0, said.stderr
    assert "are the model's to decide again" in " ".join((said.stdout + said.stderr).split())
    third = tmp_path / "run3"
    assert run("conflate", VENDOR_FEED, "-o", third, "--decisions", labels).returncode == 0
    again = {
        r["id"]: r["place_id"] for r in pq.read_table(third / "membership.parquet").to_pylist()
    }
    assert again["V1000"] != again["V1001"]
    unsaid = run("decide", first, "vendor_feed:V1000", "vendor_feed:V1001")
    assert unsaid.returncode == 1
    assert "say one of --same, --different or --forget" in unsaid.stderr
