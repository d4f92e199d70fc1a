"""Match probabilities between records, for a place's confidence as the stream edits it.

Clustering calls a record's strongest match within its place its best match, and a
place's confidence grows with its members' best matches. The stream keeps those
probabilities per record (the run's pairs within each place, then each edited record's
scores), so that an edit that weakens a match weakens the place's confidence as a run of
the batch would.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Final

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from poiflow.schema import PAIR_SCORE_COLUMNS

__all__ = ["Links"]

Key = tuple[str, str]


class Links:
    """Match probabilities between records, both ways: ``(source, id)`` to the records it
    was scored with."""

    def __init__(self) -> None:
        self._of: dict[Key, dict[Key, float]] = {}
        # The links as the last ``table`` wrote them, and the records whose links changed
        # since: a snapshot after a batch rebuilds only what the batch touched.
        self._written: pl.DataFrame | None = None
        self._dirty: set[Key] = set()

    @classmethod
    def read(cls, path: Path) -> Links:
        """The links a snapshot wrote (:meth:`table`)."""
        written = pl.DataFrame(pq.read_table(path)).select(list(PAIR_SCORE_COLUMNS)).cast(_SCHEMA)
        links = cls._of_pairs(written)
        links._written = written  # the next snapshot lists only what changes from here
        return links

    @classmethod
    def within_places(cls, pairs_file: Path, keys: Sequence[Key], places: np.ndarray) -> Links:
        """The scored pairs of a run (``pairs.parquet``) whose records share a place;
        ``keys`` and ``places`` give each record's place."""
        if not pairs_file.exists():
            return cls()
        pairs = pl.DataFrame(pq.read_table(pairs_file, columns=list(PAIR_SCORE_COLUMNS)))
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
            pairs.filter(pl.col("left") == pl.col("right")).select(list(PAIR_SCORE_COLUMNS))
        )

    @classmethod
    def _of_pairs(cls, pairs: pl.DataFrame) -> Links:
        links = cls()
        of = links._of
        for ls, li, rs, ri, p in pairs.select(list(PAIR_SCORE_COLUMNS)).iter_rows():
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
        self._dirty.add(key)
        mine = self._of.setdefault(key, {})
        for other, p in zip(others, probabilities, strict=True):
            mine[other] = p
            self._of.setdefault(other, {})[key] = p

    def drop(self, key: Key) -> None:
        """Forget a record's links (it was deleted, or is scored anew)."""
        self._dirty.add(key)
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
        """Each link once (left < right): four key columns and the probability.

        The first call lists every link; later ones keep the rows of the call before whose
        records' links did not change, and list the changed records' links anew (a link
        is a row of the records on both its ends, so it is listed from a changed end)."""
        if self._written is None:
            rows = self._rows(self._of, lambda a, b: a < b)
            written = pl.DataFrame(rows, schema=_SCHEMA, orient="col")
        else:
            dirty = self._dirty
            changed = pl.DataFrame(
                {"source": [k[0] for k in dirty], "id": [k[1] for k in dirty]},
                schema={"source": pl.String, "id": pl.String},
            )
            kept = self._written
            for side in ("left", "right"):
                kept = kept.join(
                    changed.rename({"source": f"{side}_source", "id": f"{side}_id"}),
                    on=[f"{side}_source", f"{side}_id"],
                    how="anti",
                )
            # From each changed end; a link between two changed records from its lower end.
            rows = self._rows(
                {a: self._of.get(a, {}) for a in dirty}, lambda a, b: b not in dirty or a < b
            )
            fresh = pl.DataFrame(rows, schema=_SCHEMA, orient="col")
            written = pl.concat([kept, fresh])
        self._written, self._dirty = written, set()
        return written.to_arrow().cast(_ARROW_SCHEMA)

    @staticmethod
    def _rows(
        links: dict[Key, dict[Key, float]], listed: Callable[[Key, Key], bool]
    ) -> list[list[Any]]:
        """The five columns of the links ``a`` to ``b`` of ``links`` that ``listed(a, b)``
        keeps, each with its lower record on the left."""
        # Plain appends to five lists: tuples through object arrays cost three times this.
        left_source: list[str] = []
        left_id: list[str] = []
        right_source: list[str] = []
        right_id: list[str] = []
        probabilities: list[float] = []
        for a, others in links.items():
            for b, p in others.items():
                if listed(a, b):
                    low, high = (a, b) if a < b else (b, a)
                    left_source.append(low[0])
                    left_id.append(low[1])
                    right_source.append(high[0])
                    right_id.append(high[1])
                    probabilities.append(p)
        return [left_source, left_id, right_source, right_id, probabilities]


_SCHEMA: Final = pl.Schema(zip(PAIR_SCORE_COLUMNS, [pl.String] * 4 + [pl.Float64], strict=True))
_ARROW_SCHEMA: Final = pa.schema(
    [(name, pa.float64() if name == "match_probability" else pa.string()) for name in _SCHEMA]
)
