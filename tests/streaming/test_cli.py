"""The streaming commands without a broker: help that teaches, a day of edits written as
messages, and the errors a wrong set-up gets."""

from __future__ import annotations

from pathlib import Path

import yaml

from poiflow.streaming import parse_edit

from ..conftest import poiflow


def test_help_teaches_the_guarantees_and_examples() -> None:
    shown = poiflow("stream", "--help")
    assert shown.returncode == 0
    for words in ("dead_letters", "committed only after", "poiflow run PIPELINE.yaml", "SIGTERM"):
        assert words in " ".join(shown.stdout.split()), words


def test_generate_edits_writes_messages_the_stream_reads(conflated: Path, tmp_path: Path) -> None:
    out = tmp_path / "edits.jsonl"
    made = poiflow(
        "generate-edits", str(conflated.parent / "sources"), "--count", "50", "-o", str(out)
    )
    assert made.returncode == 0, made.stderr
    lines = out.read_bytes().splitlines()
    assert len(lines) >= 50
    edits = [parse_edit(line) for line in lines]
    assert {e.op for e in edits} <= {"upsert", "close", "delete"}
    again = tmp_path / "again.jsonl"
    poiflow("generate-edits", str(conflated.parent / "sources"), "--count", "50", "-o", str(again))
    assert again.read_bytes() == out.read_bytes()  # seeded: the same day again


def test_a_pipeline_without_an_output_yet_is_told_to_run_first(tmp_path: Path) -> None:
    pipeline = tmp_path / "pipeline.yaml"
    pipeline.write_text(
        yaml.safe_dump(
            {"name": "p", "sources": [{"path": "a.csv"}], "output": "nothing-here", "cache": None}
        )
    )
    ran = poiflow("stream", str(pipeline), "--brokers", "127.0.0.1:1")
    assert ran.returncode == 1
    said = " ".join((ran.stdout + ran.stderr).split())
    assert "nothing-here yet" in said
    assert "run 'poiflow run" in said
    misspelt = tmp_path / "bad.yaml"
    misspelt.write_text(
        yaml.safe_dump({"name": "p", "sources": [{"path": "a.csv"}], "stream": {"topic": "x"}})
    )
    wrong = poiflow("stream", str(misspelt))
    assert wrong.returncode == 1
    assert "stream.topic" in wrong.stdout + wrong.stderr


def test_a_broker_that_cannot_be_reached_is_said_in_one_line(
    conflated: Path, tmp_path: Path
) -> None:
    """Said before the places are loaded, not waited for under the client's log of every
    failed connection (it printed about 20 lines a second, and the stream never ended)."""
    pipeline = tmp_path / "pipeline.yaml"
    sources = sorted(str(p) for p in (conflated.parent / "sources").glob("source_*.csv"))
    pipeline.write_text(
        yaml.safe_dump(
            {"name": "p", "sources": [{"path": s} for s in sources], "output": str(conflated)}
        )
    )
    ran = poiflow("stream", str(pipeline), "--brokers", "127.0.0.1:1", "--until-idle", "1")
    assert ran.returncode == 1
    said = " ".join((ran.stdout + ran.stderr).split())
    assert "cannot reach Kafka at 127.0.0.1:1 (" in said
    assert "scripts/kafka_server.sh start" in said
    assert "places from" not in said  # nothing was loaded
    assert "rdkafka" not in ran.stderr
