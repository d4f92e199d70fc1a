"""The review queue of ``poiflow serve``: the candidate pairs of the output most worth a
person's answer (active learning's :func:`~poiflow.conflate.active.pick_pairs`), shown one
by one on the labelling page; answers go to ``POST /labels``."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Final

from poiflow.errors import InputError

__all__ = ["ReviewQueue"]

QUESTIONS: Final = 200  # pairs chosen per server start


class ReviewQueue:
    """The questions of an output folder, chosen on first use (skipping pairs already in
    its ``labels.csv``) and kept while the server runs.

    Args:
        folder: A conflate/run output (``pairs.parquet``, ``membership.parquet``,
            ``records.parquet``).
        count: How many pairs to choose.
    """

    def __init__(self, folder: Path, count: int = QUESTIONS) -> None:
        self.folder = Path(folder)
        self.count = count
        self._chosen: list[dict[str, Any]] | None = None
        self._cards: Any = None
        self._lock = threading.Lock()

    def question(self, index: int) -> dict[str, Any] | None:
        """Question ``index`` (from 0) as the labelling page shows it; None past the last.

        Raises:
            InputError: The output has no pairs to review (the message says what is missing).
        """
        chosen, cards = self._load()
        if index >= len(chosen):
            return None
        return dict(cards.question(chosen[index], index, len(chosen)))

    def _load(self) -> tuple[list[dict[str, Any]], Any]:
        with self._lock:
            if self._chosen is None:
                import polars as pl
                import pyarrow.parquet as pq

                from poiflow.conflate.active import RecordCards, pick_pairs, read_labels

                needed = ("pairs.parquet", "membership.parquet", "records.parquet")
                missing = [name for name in needed if not (self.folder / name).exists()]
                if missing:
                    raise InputError(
                        f"nothing to review in {self.folder}: no {', '.join(missing)} "
                        "(it needs the output of 'poiflow conflate' or 'poiflow run')"
                    )
                chosen = pick_pairs(
                    pl.read_parquet(self.folder / "pairs.parquet"),
                    pl.read_parquet(self.folder / "membership.parquet"),
                    count=self.count,
                    labelled=read_labels(self.folder / "labels.csv"),
                )
                self._cards = RecordCards(pq.read_table(self.folder / "records.parquet"), chosen)
                self._chosen = list(chosen.iter_rows(named=True))
            return self._chosen, self._cards
