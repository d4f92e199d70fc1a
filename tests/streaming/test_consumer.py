"""The consumer's bookkeeping that needs no broker: metrics, and knowing whether the
indexes it keeps hold the current snapshot."""

from __future__ import annotations

from pathlib import Path

from poiflow.streaming.consumer import StreamMetrics, publishers_current


def test_indexes_written_by_a_batch_that_was_lost_are_filled_again(tmp_path: Path) -> None:
    assert publishers_current(tmp_path)  # nothing written yet: built from the start
    (tmp_path / "CURRENT").write_text("snapshot-00000003\n")
    (tmp_path / "published.txt").write_text("writing\n")  # stopped while writing them
    assert not publishers_current(tmp_path)
    (tmp_path / "published.txt").write_text("snapshot-00000002\n")  # the snapshot before
    assert not publishers_current(tmp_path)
    (tmp_path / "published.txt").write_text("snapshot-00000003\n")
    assert publishers_current(tmp_path)


def test_metrics_sum_up_throughput_lag_and_latency() -> None:
    metrics = StreamMetrics()
    metrics.counts.update(received=300, events=120)
    metrics.seconds = 2.0
    metrics.lag = {"edits[0]": 5, "edits[1]": 7}
    metrics.latencies = [0.1] * 98 + [2.0, 3.0]
    summary = metrics.summary()
    assert summary["edits_per_s"] == 150
    assert summary["total_lag"] == 12
    assert summary["latency_p50_s"] == 0.1
    assert 1.0 < summary["latency_p99_s"] <= 3.0
