"""A day of edits to a generated world, and the source files those edits leave behind.

``generate_edits(folder, count, seed)`` reads what :func:`poiflow.generate.generate` wrote
and makes ``count`` edits in arrival order, each ``{"edit_id", "op", "time", "place"}``
(``place`` in the flat place format, with ``source`` and ``id``):

- new phone numbers and opening hours of existing records (upserts of the whole record);
- conflicting edits of one place by two of its sources (each gives it another phone);
- closures and deletions;
- new records of existing places from a new source (``user``), and brand-new places;
- edits that arrive late (older than what their record already has) and edits sent twice.

``edited_sources(folder, edits, output)`` writes the source files as they stand once the
edits are applied, the latest edit of each record winning: the inputs a batch run over the
same day reads.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import numpy as np

from poiflow.generate import GOLD_PLACES

__all__ = ["NEW_SOURCE", "edited_sources", "generate_edits"]

NEW_SOURCE: Final = "user"
_KINDS: Final = (
    ("phone", 0.28),
    ("hours", 0.14),
    ("conflict", 0.1),
    ("close", 0.1),
    ("delete", 0.05),
    ("new_record", 0.18),
    ("new_place", 0.15),
)
_HOURS: Final = ("Mo-Fr 08:00-18:00", "Mo-Su 10:00-22:00", "Mo-Sa 07:00-15:00; Su off")
_WORDS: Final = ("Aurora", "Kivi", "Lumo", "Sointu", "Tähti", "Virta", "Halla", "Kuura", "Ilta")
_KINDS_OF_PLACE: Final = ("Cafe", "Bistro", "Kiosk", "Studio", "Bakery", "Bar")


def _read(folder: Path) -> dict[str, list[dict[str, str]]]:
    sources: dict[str, list[dict[str, str]]] = {}
    for path in sorted(folder.glob("*.csv")):
        if path.name in ("gold.csv", GOLD_PLACES):
            continue
        with path.open(newline="", encoding="utf-8") as handle:
            sources[path.stem] = list(csv.DictReader(handle))
    return sources


def _gold(folder: Path) -> dict[tuple[str, str], str]:
    with (folder / "gold.csv").open(newline="", encoding="utf-8") as handle:
        return {(r["source"], r["id"]): r["place"] for r in csv.DictReader(handle)}


def generate_edits(
    folder: str | Path,
    count: int,
    seed: int,
    *,
    start: datetime = datetime(2026, 11, 30, tzinfo=UTC),
) -> list[dict[str, Any]]:
    """``count`` edits of the generated world in ``folder`` (see the module)."""
    folder = Path(folder)
    rng = np.random.default_rng(seed)
    sources = _read(folder)
    gold = _gold(folder)
    records = [(source, row) for source, rows in sources.items() for row in rows if row.get("name")]
    by_place: dict[str, list[tuple[str, dict[str, str]]]] = {}
    for source, row in records:
        by_place.setdefault(gold[(source, row["id"])], []).append((source, row))
    shared = sorted(p for p, rs in by_place.items() if len({s for s, _ in rs}) > 1)
    names = [k for k, _ in _KINDS]
    weights = np.array([w for _, w in _KINDS])
    seconds = np.sort(rng.uniform(0, 86_400, size=count))
    edits: list[dict[str, Any]] = []
    last: dict[tuple[str, str], int] = {}  # record -> index of its latest edit
    current: dict[tuple[str, str], dict[str, Any]] = {}

    def record(source: str, row: dict[str, str]) -> dict[str, Any]:
        key = (source, row["id"])
        base = current.get(key) or {"source": source, **{k: v for k, v in row.items() if v}}
        return dict(base)

    def emit(op: str, place: dict[str, Any], second: float) -> None:
        time = start + timedelta(seconds=float(second))
        edit_id = f"e{len(edits):07d}"
        if op == "upsert":
            place = {**place, "update_time": time.isoformat()}
            current[(place["source"], place["id"])] = place
        edits.append({"edit_id": edit_id, "op": op, "time": time.isoformat(), "place": place})
        last[(place["source"], place["id"])] = len(edits) - 1

    gone: set[tuple[str, str]] = set()
    new_ids = 0
    for second in seconds:
        if len(edits) >= count:
            break
        kind = names[int(rng.choice(len(names), p=weights / weights.sum()))]
        source, row = records[int(rng.integers(len(records)))]
        key = (source, row["id"])
        if key in gone and kind not in ("new_record", "new_place"):
            continue
        if kind in ("phone", "hours"):
            place = record(source, row)
            if kind == "phone":
                place["phone"] = _new_phone(place.get("phone"), rng)
            else:
                place["opening_hours"] = _HOURS[int(rng.integers(len(_HOURS)))]
            emit("upsert", place, second)
        elif kind == "conflict" and shared:
            members = by_place[shared[int(rng.integers(len(shared)))]]
            picked: dict[str, dict[str, str]] = {}
            for s, r in members:
                picked.setdefault(s, r)
            (s1, r1), (s2, r2) = list(picked.items())[:2]
            if (s1, r1["id"]) in gone or (s2, r2["id"]) in gone:
                continue
            for offset, (s, r) in enumerate(((s1, r1), (s2, r2))):
                place = record(s, r)
                place["phone"] = _new_phone(place.get("phone"), rng)
                emit("upsert", place, second + offset)
        elif kind == "close":
            emit("close", {"source": source, "id": row["id"]}, second)
        elif kind == "delete":
            emit("delete", {"source": source, "id": row["id"]}, second)
            gone.add(key)
        elif kind == "new_record":
            new_ids += 1
            place = {k: v for k, v in record(source, row).items() if k != "opening_hours"}
            place.update(source=NEW_SOURCE, id=f"U{new_ids:07d}")
            emit("upsert", place, second)
        elif kind == "new_place":
            new_ids += 1
            place = {k: v for k, v in record(source, row).items() if k not in ("phone", "website")}
            word = _WORDS[int(rng.integers(len(_WORDS)))]
            place.update(
                source=NEW_SOURCE,
                id=f"U{new_ids:07d}",
                name=f"{word} {_KINDS_OF_PLACE[int(rng.integers(len(_KINDS_OF_PLACE)))]} {new_ids}",
                housenumber=str(int(rng.integers(1, 300))),
            )
            if place.get("lat"):
                place["lat"] = round(float(place["lat"]) + 0.03, 6)
                place["lon"] = round(float(place["lon"]) + 0.03, 6)
            emit("upsert", place, second)
    return _late_and_twice(edits, rng)


def _late_and_twice(edits: list[dict[str, Any]], rng: np.random.Generator) -> list[dict[str, Any]]:
    """Add edits that arrive after newer ones of their record, and edits sent twice."""
    out = list(edits)
    upserts = [e for e in edits if e["op"] == "upsert"]
    for i in rng.choice(len(upserts), size=max(1, len(upserts) // 30), replace=False):
        edit = upserts[int(i)]
        time = datetime.fromisoformat(edit["time"]) - timedelta(hours=1)
        place = {**edit["place"], "phone": "+358 40 000 0000", "update_time": time.isoformat()}
        late = {"edit_id": f"{edit['edit_id']}-late", "op": "upsert", "time": time.isoformat()}
        out.insert(min(len(out), out.index(edit) + 5), {**late, "place": place})
    for i in rng.choice(len(edits), size=max(1, len(edits) // 50), replace=False):
        out.insert(min(len(out), out.index(edits[int(i)]) + 3), edits[int(i)])
    return out


def _new_phone(phone: str | None, rng: np.random.Generator) -> str:
    digits = "".join(str(d) for d in rng.integers(0, 10, size=3))
    if phone and len(phone) > 4:
        return phone[:-3] + digits
    return f"+358 9 {int(rng.integers(100, 999))} {digits}1"


def edited_sources(
    folder: str | Path, edits: Sequence[dict[str, Any]], output: str | Path
) -> list[Path]:
    """The source files of ``folder`` with ``edits`` applied, written to ``output``;
    returns them.

    Edits apply in the order given; one no later, by ``(time, edit_id)``, than the last
    applied to its record changes nothing. An upsert replaces the record, a close marks it
    ``permanently_closed`` as of its time, a delete removes it.
    """
    folder, output = Path(folder), Path(output)
    output.mkdir(parents=True, exist_ok=True)
    sources: dict[str, dict[str, dict[str, Any] | None]] = {
        name: {r["id"]: dict(r) for r in rows} for name, rows in _read(folder).items()
    }
    sources.setdefault(NEW_SOURCE, {})
    stamps: dict[tuple[str, str], tuple[datetime, str]] = {}
    for edit in edits:
        source, record_id = edit["place"]["source"], edit["place"]["id"]
        stamp = (datetime.fromisoformat(edit["time"]), edit["edit_id"])
        if (source, record_id) in stamps and stamp <= stamps[(source, record_id)]:
            continue
        rows = sources.setdefault(source, {})
        row = rows.get(record_id)
        if edit["op"] == "upsert":
            rows[record_id] = {k: v for k, v in edit["place"].items() if k != "source"}
        elif row is None:
            continue  # a close or delete of no record: refused, and nothing changes
        elif edit["op"] == "close":
            rows[record_id] = {
                **row,
                "operating_status": "permanently_closed",
                "update_time": edit["time"],
            }
        else:
            rows[record_id] = None
        stamps[(source, record_id)] = stamp
    written = []
    for name, by_id in sources.items():
        kept = [row for row in by_id.values() if row is not None]
        columns: dict[str, None] = {"id": None}
        for row in kept:
            columns.update(dict.fromkeys(row))
        path = output / f"{name}.csv"
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(columns))
            writer.writeheader()
            for row in kept:
                writer.writerow({k: "" if v is None else v for k, v in row.items()})
        written.append(path)
    return written
