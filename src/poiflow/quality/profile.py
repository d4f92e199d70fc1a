"""A profile of a places file: how many, from where, of what kind, how complete."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import duckdb

from poiflow.errors import InputError
from poiflow.schema import UNKNOWN_CATEGORY

__all__ = [
    "PlacesProfile",
    "QuarantineReason",
    "profile_places",
    "quarantine_reasons",
    "unknown_categories",
]


_COMPLETENESS = {
    "coordinates": "lat IS NOT NULL",
    "category": "categories.primary IS NOT NULL",
    "street address": "address.street IS NOT NULL AND address.housenumber IS NOT NULL",
    "postcode": "address.postcode IS NOT NULL",
    "phone": "len(phones) > 0",
    "website": "len(websites) > 0",
    "opening hours": "opening_hours IS NOT NULL",
    "alternate names": "len(names.alternates) > 0",
}


@dataclass(frozen=True, slots=True)
class PlacesProfile:
    """Counts that describe a places file (and its quarantine, if it has one)."""

    path: Path
    places: int
    # Records per source (for golden places: member records per source).
    by_source: list[tuple[str, int]]
    top_categories: list[tuple[str, int]]
    completeness: list[tuple[str, float]]
    phones_e164: tuple[int, int]
    quarantine_reasons: list[tuple[str, str, int]] = field(default_factory=list)
    # The commonest category labels the taxonomy did not know, with their records.
    unknown_categories: list[tuple[str, int]] = field(default_factory=list)


def profile_places(path: str | Path, quarantine: str | Path | None = None) -> PlacesProfile:
    """Profile a places file written by ``poiflow ingest``, with DuckDB.

    Args:
        path: The places GeoParquet.
        quarantine: Its quarantine file; default: ``<name>.quarantine.parquet`` beside it.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError("no such file", path=path)
    with path.open("rb") as handle:
        if handle.read(4) != b"PAR1":  # a feed itself, not what ingest made of it
            raise InputError(
                "not a Parquet file: summary profiles what 'poiflow ingest' or 'poiflow "
                f"conflate' wrote; to profile a feed, ingest it first: poiflow ingest "
                f"{path.name} -o places.parquet",
                path=path,
            )
    con = duckdb.connect()
    try:
        con.read_parquet(str(path)).create_view("places")
    except duckdb.Error as exc:
        raise InputError(f"not a readable places file ({exc})", path=path) from exc

    def rows(sql: str) -> list[tuple[Any, ...]]:
        try:
            return con.execute(sql).fetchall()
        except duckdb.Error as exc:
            raise InputError(
                f"not a places file from 'poiflow ingest' or 'poiflow conflate' ({exc})",
                path=path,
            ) from exc

    columns = {str(row[0]) for row in rows("DESCRIBE places")}
    needed = {"lat", "names", "categories", "address", "phones", "websites", "opening_hours"}
    lacking = sorted(needed - columns) + ([] if columns & {"source", "sources"} else ["source"])
    if lacking:
        raise InputError(
            "not a places file from 'poiflow ingest' or 'poiflow conflate': it has no "
            f"{', '.join(lacking)} (its columns: {', '.join(sorted(columns))})",
            path=path,
        )
    total = int(rows("SELECT count(*) FROM places")[0][0])
    # Records carry their source; golden places name their member records in `sources`.
    by_source_sql = (
        "SELECT source, count(*) FROM places GROUP BY 1 ORDER BY 2 DESC, 1"
        if "source" in columns
        else "SELECT s.dataset, count(*) FROM (SELECT unnest(sources) AS s FROM places) "
        "WHERE s.property = '' GROUP BY 1 ORDER BY 2 DESC, 1"
    )
    by_source = [(str(s), int(n)) for s, n in rows(by_source_sql)]
    top = [
        (str(c), int(n))
        for c, n in rows(
            "SELECT coalesce(categories.primary, '(none)'), count(*) FROM places "
            "GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 12"
        )
    ]
    shares = ", ".join(f"avg(CASE WHEN {sql} THEN 1 ELSE 0 END)" for sql in _COMPLETENESS.values())
    share_row = rows(f"SELECT {shares} FROM places")[0]  # noqa: S608 (constant SQL)
    completeness = [(name, float(v or 0)) for name, v in zip(_COMPLETENESS, share_row, strict=True)]
    phone_row = rows(
        "SELECT count(*), count(*) FILTER (WHERE regexp_full_match(p, '\\+[1-9][0-9]{6,14}')) "
        "FROM (SELECT unnest(phones) AS p FROM places)"
    )[0]
    beside = path.with_name(f"{path.name.removesuffix('.parquet')}.quarantine.parquet")
    # 'poiflow ingest' writes NAME.quarantine.parquet; 'poiflow conflate' quarantine.parquet.
    fallback = beside if beside.is_file() else path.with_name("quarantine.parquet")
    quarantine_path = Path(quarantine) if quarantine else fallback
    reasons, unknown = [], []
    if quarantine_path.is_file():
        reasons = [(r.scope, r.reason, r.records) for r in quarantine_reasons(quarantine_path)[:10]]
        unknown = unknown_categories(quarantine_path)
    return PlacesProfile(
        path=path,
        places=total,
        by_source=by_source,
        top_categories=top,
        completeness=completeness,
        phones_e164=(int(phone_row[0]), int(phone_row[1])),
        quarantine_reasons=reasons,
        unknown_categories=unknown,
    )


def unknown_categories(path: str | Path, shown: int = 10) -> list[tuple[str, int]]:
    """The category labels a quarantine file says the taxonomy did not know, commonest
    first, with how many records gave each: what a mapping's ``categories`` could map."""
    sql = (
        "SELECT json_extract_string(original, '$.categories') AS label, count(*) "
        "FROM read_parquet($path) WHERE scope = 'field' AND field = 'categories' "
        "AND reason = $reason GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT $shown"
    )
    params = {"path": str(path), "reason": UNKNOWN_CATEGORY, "shown": shown}
    found = _quarantine_rows(path, sql, params)
    return [(str(label), int(n)) for label, n in found if label is not None]


class QuarantineReason(NamedTuple):
    """One reason records or values were held back, over a quarantine file."""

    scope: str  # "record" (held back whole) or "field" (a value withheld, the record went on)
    reason: str  # its shape: quoted values, which vary per record, masked ('…')
    records: int
    first: str  # where it first occurs ("feed.csv:2")


def quarantine_reasons(path: str | Path, *, scope: str | None = None) -> list[QuarantineReason]:
    """The reasons in a quarantine file, commonest first (ties: the one first in the file).

    Args:
        path: The quarantine file.
        scope: Only this scope's reasons ("record" or "field"); default: both.

    Raises:
        InputError: Not a readable quarantine file.
    """
    sql = (
        "SELECT scope, regexp_replace(reason, '''[^'']*''', '''…''', 'g') AS shape, count(*), "
        "arg_min(origin, file_row_number) FROM read_parquet($path, file_row_number = true) "
        "WHERE $scope IS NULL OR scope = $scope "
        "GROUP BY 1, 2 ORDER BY 3 DESC, min(file_row_number)"
    )
    found = _quarantine_rows(path, sql, {"path": str(path), "scope": scope})
    return [QuarantineReason(str(s), str(r), int(n), str(o)) for s, r, n, o in found]


def _quarantine_rows(path: str | Path, sql: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
    """The rows of a query of a quarantine file.

    Raises:
        InputError: Not a readable quarantine file.
    """
    try:
        return duckdb.connect().execute(sql, params).fetchall()
    except duckdb.Error as exc:
        raise InputError(f"not a readable quarantine file ({exc})", path=path) from exc
