"""The review queue of ``poiflow serve``: the candidate pairs of the output most worth a
person's answer (active learning's :func:`~poiflow.conflate.active.pick_pairs`), shown one
by one on the labelling page; answers go to ``POST /labels``."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Final

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
                from poiflow.conflate.active import RecordCards
                from poiflow.pipeline.deciding import pairs_to_ask

                chosen, records = pairs_to_ask(self.folder, self.count)
                self._cards = RecordCards(records, chosen)
                self._chosen = list(chosen.iter_rows(named=True))
            return self._chosen, self._cards
