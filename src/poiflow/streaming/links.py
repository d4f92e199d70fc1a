"""Match probabilities between records, for a place's confidence as the stream edits it.

Clustering calls a record's strongest match within its place its best match, and a
place's confidence grows with its members' best matches. The stream keeps those
probabilities per record (the run's pairs within each place, then each edited record's
scores), so that an edit that weakens a match weakens the place's confidence as a run of
the batch would.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Final

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

__all__ = ["LINK_COLUMNS", "Links"]

Key = tuple[str, str]

LINK_COLUMNS: Final = ("left_source", "left_id", "right_source", "right_id", "match_probability")


class Links:
    """Match probabilities between records, both ways: ``(source, id)`` to the records it
    was scored with."""

    def __init__(self) -> None:
        self._of: dict[Key, dict[Key, float]] = {}

    @classmethod
    def read(cls, path: Path) -> Links:
        """The links a snapshot wrote (:meth:`table`)."""
        return cls._of_pairs(pl.DataFrame(pq.read_table(path)))

    @classmethod
    def within_places(cls, pairs_file: Path, keys: Sequence[Key], places: np.ndarray) -> Links:
        """The scored pairs of a run (``pairs.parquet``) whose records share a place;
        ``keys`` and ``places`` give each record's place."""
        if not pairs_file.exists():
            return cls()
        pairs = pl.DataFrame(pq.read_table(pairs_file, columns=list(LINK_COLUMNS)))
        placed = pl.DataFrame(
            {
                "source": [k[0] for k in keys],
                "id": [k[1] for k in keys],
                "place": places.astype(np.int64),
            }
        )
        for side in ("left", "right"):
            pairs = pairs.join(
                placed.rename({"source": f"{side}_source", "id": f"{side}_id", "place": side}),
                on=[f"{side}_source", f"{side}_id"],
            )
        return cls._of_pairs(
            pairs.filter(pl.col("left") == pl.col("right")).select(list(LINK_COLUMNS))
        )

    @classmethod
    def _of_pairs(cls, pairs: pl.DataFrame) -> Links:
        links = cls()
        of = links._of
        for ls, li, rs, ri, p in pairs.select(list(LINK_COLUMNS)).iter_rows():
            of.setdefault((ls, li), {})[(rs, ri)] = p
            of.setdefault((rs, ri), {})[(ls, li)] = p
        return links

    def set(
        self,
        key: Key,
        others: Sequence[Key],
        probabilities: Sequence[float],
        *,
        keep: bool = False,
    ) -> None:
        """A record's links are now its scores against ``others`` (added to those it had,
        with ``keep``)."""
        if not keep:
            self.drop(key)
        mine = self._of.setdefault(key, {})
        for other, p in zip(others, probabilities, strict=True):
            mine[other] = p
            self._of.setdefault(other, {})[key] = p

    def drop(self, key: Key) -> None:
        """Forget a record's links (it was deleted, or is scored anew)."""
        for other in self._of.pop(key, {}):
            self._of.get(other, {}).pop(key, None)

    def best(self, keys: Sequence[Key], places: np.ndarray) -> np.ndarray:
        """Each record's strongest link to a record of the same place among ``keys``
        (``places``: each one's place); 1.0 for a record with none, as clustering gives
        a record alone."""
        place_of = dict(zip(keys, places.tolist(), strict=True))
        best = np.ones(len(keys))
        for i, key in enumerate(keys):
            here = place_of[key]
            strongest = [p for o, p in self._of.get(key, {}).items() if place_of.get(o) == here]
            if strongest:
                best[i] = max(strongest)
        return best

    def table(self) -> pa.Table:
        """Each link once (left < right): four key columns and the probability."""
        # Plain appends to five lists: tuples through object arrays cost three times this.
        left_source: list[str] = []
        left_id: list[str] = []
        right_source: list[str] = []
        right_id: list[str] = []
        probabilities: list[float] = []
        for a, others in self._of.items():
            source, record = a
            for b, p in others.items():
                if a < b:
                    left_source.append(source)
                    left_id.append(record)
                    right_source.append(b[0])
                    right_id.append(b[1])
                    probabilities.append(p)
        return pa.table(
            {
                "left_source": pa.array(left_source, pa.string()),
                "left_id": pa.array(left_id, pa.string()),
                "right_source": pa.array(right_source, pa.string()),
                "right_id": pa.array(right_id, pa.string()),
                "match_probability": pa.array(probabilities, pa.float64()),
            }
        )
