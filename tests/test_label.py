"""``poiflow label`` in the terminal and in a web page, and ``poiflow train --labels``."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow.parquet as pq
import pytest

from poiflow.cli.label_web import LabellingServer
from poiflow.conflate.active import pick_pairs, read_labels
from poiflow.conflate.decisions import read_decisions
from poiflow.conflate.matcher import load_matcher
from poiflow.generate import generate
from poiflow.pipeline import conflate

ENV = {**os.environ, "COLUMNS": "200"}


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("label")
    generate(300, 3, 13, folder / "data")
    conflate(sorted((folder / "data").glob("source_*.csv")), folder / "run")
    return folder


def poiflow(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "poiflow", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=ENV,
        check=False,
    )


def gold_of(folder: Path) -> dict[tuple[str, str], str]:
    gold = pl.read_csv(folder / "data" / "gold.csv", schema_overrides={"id": pl.String})
    return {(s, i): str(p) for s, i, p in gold.iter_rows()}


def test_simulated_answers_follow_the_truth_and_are_not_asked_twice(
    run: Path, tmp_path: Path
) -> None:
    store = tmp_path / "labels.csv"
    gold = str(run / "data" / "gold.csv")
    first = poiflow(
        "label", str(run / "run"), "--labels", str(store), "--simulate", gold, "--count", "8"
    )
    assert first.returncode == 0, first.stderr
    labels = read_labels(store)
    assert labels.height == 8
    truth = gold_of(run)
    for row in labels.iter_rows(named=True):
        same = (
            truth[(row["left_source"], row["left_id"])]
            == truth[(row["right_source"], row["right_id"])]
        )
        assert row["label"] == ("match" if same else "different")
        assert row["labeller"] == "simulated"
    poiflow("label", str(run / "run"), "--labels", str(store), "--simulate", gold, "--count", "8")
    again = read_labels(store)
    assert again.height == 16  # eight new pairs: none asked twice


def test_the_terminal_flow_stores_each_answer_and_stops_on_q(run: Path, tmp_path: Path) -> None:
    store = tmp_path / "labels.csv"
    result = poiflow(
        "label", str(run / "run"), "--labels", str(store), "--count", "5", stdin="y\nn\nq\n"
    )
    assert result.returncode == 0, result.stderr
    assert "pair 1 of 5" in result.stderr
    assert "pair 2 of 5" in result.stderr
    assert read_labels(store)["label"].to_list() == ["match", "different"]


def test_a_decisions_file_written_by_hand_is_asked_on_in_its_own_columns(
    run: Path, tmp_path: Path
) -> None:
    # The pair label would ask first is already decided in a five-column file: it is not
    # asked again, and the answer given comes in the file's columns, so conflate --decisions
    # and train --labels go on reading it.
    pairs = pl.read_parquet(run / "run" / "pairs.parquet")
    membership = pl.read_parquet(run / "run" / "membership.parquet")
    keys = ["left_source", "left_id", "right_source", "right_id"]
    first = pick_pairs(pairs, membership, count=1).select(keys)
    then = pick_pairs(pairs, membership, count=1, labelled=first).select(keys)
    decided = first.row(0)
    store = tmp_path / "mine.csv"
    store.write_text(
        "left_source,left_id,right_source,right_id,label\n" + ",".join(decided) + ",different\n"
    )
    result = poiflow("label", str(run / "run"), "--labels", str(store), "--count", "1", stdin="y\n")
    assert result.returncode == 0, result.stderr
    lines = store.read_text().splitlines()
    assert [len(line.split(",")) for line in lines] == [5, 5, 5]
    assert lines[2] == ",".join(then.row(0)) + ",match"
    assert read_decisions(store)["decision"].to_list() == ["different", "match"]


def test_the_end_of_the_input_stops_like_q_and_says_what_was_stored(
    run: Path, tmp_path: Path
) -> None:
    store = tmp_path / "labels.csv"
    result = poiflow("label", str(run / "run"), "--labels", str(store), "--count", "5", stdin="s\n")
    assert result.returncode == 0, result.stderr
    assert "Aborted" not in result.stderr
    assert f"1 answer (0 same place, 0 different, 1 unsure) added to {store}" in " ".join(
        result.stderr.split()
    )
    assert read_labels(store)["label"].to_list() == ["unsure"]


def test_train_from_answers_reports_the_gain_and_writes_a_refined_model(
    run: Path, tmp_path: Path
) -> None:
    store = tmp_path / "labels.csv"
    gold = str(run / "data" / "gold.csv")
    poiflow("label", str(run / "run"), "--labels", str(store), "--simulate", gold, "--count", "30")
    model = tmp_path / "refined.json.gz"
    records = str(run / "run" / "records.parquet")
    result = poiflow("train", records, "--labels", str(store), "-o", str(model))
    assert result.returncode == 0, result.stderr
    assert "held-out answers" in result.stderr
    assert "refined" in result.stderr
    matcher = load_matcher(model)
    assert matcher.describe()["refined_from"] == "default-5"
    assert matcher.describe()["refined_on"]["pairs"] == 30
    both = poiflow("train", records, "--labels", str(store), "--gold", gold, "-o", str(model))
    assert both.returncode == 1
    assert "give one of --gold" in both.stderr


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def server(run: Path, tmp_path: Path) -> LabellingServer:
    chosen = pick_pairs(
        pl.read_parquet(run / "run" / "pairs.parquet"),
        pl.read_parquet(run / "run" / "membership.parquet"),
        count=3,
    )
    records = pq.read_table(run / "run" / "records.parquet")
    server = LabellingServer(chosen, records, tmp_path / "labels.csv", port=_free_port())
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def _call(url: str, data: dict[str, object] | None = None) -> tuple[int, dict[str, object] | str]:
    body = None if data is None else json.dumps(data).encode()
    request = urllib.request.Request(url, data=body, method="POST" if data is not None else "GET")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            text = response.read().decode()
            status = response.status
    except urllib.error.HTTPError as error:
        text, status = error.read().decode(), error.code
    try:
        return status, json.loads(text)
    except json.JSONDecodeError:
        return status, text


def test_the_web_page_serves_questions_and_stores_answers(server: LabellingServer) -> None:
    base = f"http://127.0.0.1:{server.server_address[1]}"
    status, page = _call(f"{base}/")
    assert status == 200
    assert "Are these the same place?" in str(page)
    status, question = _call(f"{base}/question/0")
    assert status == 200
    assert isinstance(question, dict)
    assert question["total"] == 3
    assert question["left"]["record"] == (
        f"{server.pairs[0]['left_source']}/{server.pairs[0]['left_id']}"
    )
    assert _call(f"{base}/answer", {"index": 0, "label": "match"})[0] == 200
    assert _call(f"{base}/answer", {"index": 1, "label": "yes"})[0] == 422
    assert _call(f"{base}/answer", {"index": 9, "label": "match"})[0] == 422
    assert _call(f"{base}/question/x")[0] == 400
    assert _call(f"{base}/question/3")[1] == {"done": True}
    assert read_labels(server.store)["label"].to_list() == ["match"]


@pytest.mark.browser
def test_the_web_page_is_answered_with_the_keyboard_alone(
    server: LabellingServer, browser_page: Any
) -> None:
    page = browser_page
    page.goto(f"http://127.0.0.1:{server.server_address[1]}/")
    page.wait_for_selector("body[data-question='0']", timeout=30_000)
    first = server.pairs[0]
    assert f"{first['left_source']}/{first['left_id']}" in page.inner_text("#left")
    assert "question 1 of 3" in page.inner_text("#progress")
    page.keyboard.press("y")
    page.wait_for_selector("body[data-question='1']", timeout=30_000)
    page.keyboard.press("n")
    page.wait_for_selector("body[data-question='2']", timeout=30_000)
    page.keyboard.press("x")  # not an answer: nothing happens
    page.keyboard.press("s")
    page.wait_for_selector("body[data-question='done']", timeout=30_000)
    assert read_labels(server.store)["label"].to_list() == ["match", "different", "unsure"]
    assert page.poiflow_errors == []
