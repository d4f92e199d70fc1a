"""The serving store on Apache Cassandra: golden places by id and by H3 cell, each place's
records, and each record's place, for lookups that must not wait for a file to load (the
real-time matcher's candidates, an app's place pages).

``poiflow publish store DIR --hosts H:P --keyspace K`` loads an output into it. poiflow
creates the keyspace and tables (``TABLES``) when they are missing; writes are prepared
statements run concurrently, and idempotent: publishing the same output twice leaves the
same rows, and publishing a newer one removes the places and records that are gone. The
embedded default needs none of this: ``poiflow serve`` reads the output's own files.

Tables (the place itself is kept whole as JSON, provenance included):

- ``places``: ``id`` -> name, category, lat, lon, cell, confidence, members, the place;
- ``places_by_cell``: (H3 resolution-7 cell, about 5 km^2) -> the places in it;
- ``records_by_place``: place -> its member records (source, id);
- ``place_of_record``: (source, id) -> place;
- ``releases``: what was published last (how many places, when, from which run).

The keyspace name is checked against CQL's identifier rules before it goes into any
statement; every value is bound, never formatted into CQL.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import polars as pl
import polars_h3 as plh3
import pyarrow as pa
import pyarrow.parquet as pq

from poiflow.errors import ConfigError, InputError, ServerUnavailableError
from poiflow.schema import GOLDEN_PLACE_SCHEMA

__all__ = ["CELL_RESOLUTION", "TABLES", "CassandraStore", "PublishReport", "parse_hosts"]

CELL_RESOLUTION: Final = 7
DEFAULT_PORT: Final = 9042
_KEYSPACE: Final = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,47}$")
_CONCURRENCY: Final = 64

TABLES: Final = {
    "places": """CREATE TABLE IF NOT EXISTS {ks}.places (
        id text PRIMARY KEY, name text, category text, lat double, lon double,
        cell bigint, confidence double, members int, place text)""",
    "places_by_cell": """CREATE TABLE IF NOT EXISTS {ks}.places_by_cell (
        cell bigint, id text, name text, category text, lat double, lon double,
        confidence double, PRIMARY KEY ((cell), id))""",
    "records_by_place": """CREATE TABLE IF NOT EXISTS {ks}.records_by_place (
        place_id text, source text, record_id text, PRIMARY KEY ((place_id), source, record_id))""",
    "place_of_record": """CREATE TABLE IF NOT EXISTS {ks}.place_of_record (
        source text, record_id text, place_id text, PRIMARY KEY ((source, record_id)))""",
    "releases": """CREATE TABLE IF NOT EXISTS {ks}.releases (
        name text PRIMARY KEY, places int, records int, run text, published_at timestamp)""",
}


def parse_hosts(text: str) -> tuple[list[str], int]:
    """``"h1,h2:9043"`` -> ``(["h1", "h2"], 9043)`` (one port for all, as the driver takes).

    Raises:
        ConfigError: The text is not host[:port] items, or they name different ports.
    """
    hosts, ports = [], set()
    for item in (part.strip() for part in text.split(",")):
        host, _, port = item.partition(":")
        if not host or (port and not port.isdigit()):
            raise ConfigError(f"--hosts: {item!r} is not host or host:port (e.g. 127.0.0.1:9042)")
        hosts.append(host)
        ports.add(int(port) if port else DEFAULT_PORT)
    if len(ports) > 1:
        raise ConfigError("--hosts: give every host the same port (the driver uses one)")
    return hosts, ports.pop()


@dataclass(frozen=True, slots=True)
class PublishReport:
    """What a publish wrote: rows per table, and what it removed as gone."""

    places: int
    records: int
    removed_places: int
    removed_records: int
    seconds: float


class CassandraStore:
    """A keyspace of golden places on a Cassandra cluster.

    Args:
        hosts: Contact points.
        port: Their CQL port.
        keyspace: The keyspace (created by :meth:`publish` when missing).
        replication_factor: Its replication factor when poiflow creates it.

    Raises:
        ConfigError: The keyspace name is not a CQL identifier.
        InputError: No host can be reached (the message says how to start one).
    """

    def __init__(
        self,
        hosts: Sequence[str],
        port: int = DEFAULT_PORT,
        keyspace: str = "poiflow",
        *,
        replication_factor: int = 1,
    ) -> None:
        from cassandra.cluster import (
            EXEC_PROFILE_DEFAULT,
            Cluster,
            ExecutionProfile,
            NoHostAvailable,
        )
        from cassandra.policies import RoundRobinPolicy

        if not _KEYSPACE.match(keyspace):
            raise ConfigError(
                f"keyspace {keyspace!r}: a letter, then letters, digits or _, at most 48"
            )
        self.keyspace = keyspace
        self.replication_factor = replication_factor
        self.where = f"{','.join(hosts)}:{port}"
        self._cluster = Cluster(
            list(hosts),
            port=port,
            connect_timeout=5,
            execution_profiles={
                EXEC_PROFILE_DEFAULT: ExecutionProfile(load_balancing_policy=RoundRobinPolicy())
            },
            protocol_version=5,
        )
        try:
            self._session = self._cluster.connect()
        except NoHostAvailable as exc:
            self._cluster.shutdown()
            raise ServerUnavailableError(
                f"cannot reach Cassandra at {self.where}: start one "
                "(scripts/cassandra_server.sh start DIR PORT) or name yours with --hosts"
            ) from exc
        self._prepared: dict[str, Any] = {}

    def close(self) -> None:
        """Disconnect."""
        self._cluster.shutdown()

    def __enter__(self) -> CassandraStore:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # -- writing ----------------------------------------------------------------------

    def create_schema(self) -> None:
        """The keyspace and its tables, where missing (never altered or dropped)."""
        self._session.execute(
            f"CREATE KEYSPACE IF NOT EXISTS {self.keyspace} WITH replication = "
            f"{{'class': 'SimpleStrategy', 'replication_factor': {int(self.replication_factor)}}}"
        )
        for statement in TABLES.values():
            self._session.execute(statement.format(ks=self.keyspace))

    def publish(self, folder: Path, progress: Any = None) -> PublishReport:
        """Load an output's places and membership; remove what an earlier publish wrote
        that this output no longer has.

        Args:
            folder: A conflate/run output.
            progress: Called with (rows written, rows in all) as writing goes on.
        """
        import time

        started = time.perf_counter()
        places_path = folder / "places.parquet"
        membership_path = folder / "membership.parquet"
        for path in (places_path, membership_path):
            if not path.exists():
                raise InputError(f"no {path.name} in {folder}: publish takes a conflate output")
        self.create_schema()
        places = _with_cells(pq.read_table(places_path, columns=_SHOWN))
        membership = pl.DataFrame(
            pq.read_table(membership_path, columns=["source", "id", "place_id"])
        )
        gone_places = self._stored_places().join(places.select("id"), on="id", how="anti")
        gone_records = self._stored_records().join(
            membership.select("source", "id"), on=["source", "id"], how="anti"
        )
        place_rows = _place_rows(places)
        member_rows = list(membership.select("place_id", "source", "id").iter_rows())
        self._write(place_rows, member_rows, progress)
        ks = self.keyspace
        self._remove(gone_places, gone_records, places, membership)
        self._session.execute(
            self._prepare(
                f"INSERT INTO {ks}.releases (name, places, records, run, published_at) "
                "VALUES ('current', ?, ?, ?, ?)"
            ),
            (len(place_rows), len(member_rows), _run_of(folder), datetime.now(UTC)),
        )
        return PublishReport(
            len(place_rows),
            len(member_rows),
            gone_places.height,
            gone_records.height,
            time.perf_counter() - started,
        )

    def upsert(self, places: pa.Table, removed: Sequence[str] = ()) -> int:
        """Write these places (golden places, their members named by their provenance)
        and remove the ``removed`` ones: what the store held for them and no longer
        applies (a cell the place left, records it lost) is deleted. Doing it twice
        changes nothing. Returns how many places were written."""
        from cassandra.concurrent import execute_concurrent_with_args

        ks = self.keyspace
        frame = _with_cells(places.select(_SHOWN))
        place_rows = _place_rows(frame)
        member_rows = [
            (r["id"], ref["dataset"], ref["record_id"])
            for r in frame.select("id", "sources").to_dicts()
            for ref in r["sources"] or []
            if not ref["property"]
        ]
        ids = [*frame["id"].to_list(), *removed]
        held = self._held(ids)
        new_cells = {row[0]: row[5] for row in place_rows}
        stale_cells = [
            (cell, place)
            for place, (cell, _) in held.items()
            if cell is not None and new_cells.get(place) != cell
        ]
        kept = {(source, record) for _, source, record in member_rows}
        now = set(member_rows)
        lost = sorted(
            {
                (place, source, record)
                for place, (_, members) in held.items()
                for source, record in members
                if (place, source, record) not in now
            }
        )
        self._write(place_rows, member_rows)
        for statement, rows in (
            (f"DELETE FROM {ks}.places WHERE id = ?", [(i,) for i in removed]),
            (f"DELETE FROM {ks}.places_by_cell WHERE cell = ? AND id = ?", stale_cells),
            (
                f"DELETE FROM {ks}.records_by_place "
                "WHERE place_id = ? AND source = ? AND record_id = ?",
                lost,
            ),
            (
                f"DELETE FROM {ks}.place_of_record WHERE source = ? AND record_id = ?",
                sorted({(s, r) for _, s, r in lost if (s, r) not in kept}),
            ),
        ):
            self._run(execute_concurrent_with_args, statement, rows)
        return len(place_rows)

    def _held(self, ids: Sequence[str]) -> dict[str, tuple[int | None, list[tuple[str, str]]]]:
        """What the store holds of some places: each one's cell and member records."""
        from cassandra.concurrent import execute_concurrent_with_args

        ks = self.keyspace
        held: dict[str, tuple[int | None, list[tuple[str, str]]]] = {}
        cells = execute_concurrent_with_args(
            self._session,
            self._prepare(f"SELECT id, cell FROM {ks}.places WHERE id = ?"),
            [(i,) for i in ids],
            concurrency=_CONCURRENCY,
        )
        members = execute_concurrent_with_args(
            self._session,
            self._prepare(
                f"SELECT place_id, source, record_id FROM {ks}.records_by_place WHERE place_id = ?"
            ),
            [(i,) for i in ids],
            concurrency=_CONCURRENCY,
        )
        for place, (ok, rows) in zip(ids, cells, strict=True):
            if not ok:
                raise InputError(f"reading {self.where} failed: {rows}")
            found = list(rows)
            held[place] = (found[0].cell if found else None, [])
        for place, (ok, rows) in zip(ids, members, strict=True):
            if not ok:
                raise InputError(f"reading {self.where} failed: {rows}")
            held[place][1].extend((r.source, r.record_id) for r in rows)
        return held

    def _write(
        self,
        place_rows: list[tuple[Any, ...]],
        member_rows: list[tuple[Any, ...]],
        progress: Any = None,
    ) -> None:
        """Insert places (by id and by cell), their records and each record's place."""
        from cassandra.concurrent import execute_concurrent_with_args

        cell_rows = [
            (r[5], r[0], r[1], r[2], r[3], r[4], r[6]) for r in place_rows if r[5] is not None
        ]
        record_rows = [(source, record, place) for place, source, record in member_rows]
        total = len(place_rows) + len(cell_rows) + 2 * len(member_rows)
        done = 0
        ks = self.keyspace
        for statement, rows in (
            (
                f"INSERT INTO {ks}.places (id, name, category, lat, lon, cell, confidence, "
                "members, place) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                place_rows,
            ),
            (
                f"INSERT INTO {ks}.places_by_cell (cell, id, name, category, lat, lon, "
                "confidence) VALUES (?, ?, ?, ?, ?, ?, ?)",
                cell_rows,
            ),
            (
                f"INSERT INTO {ks}.records_by_place (place_id, source, record_id) VALUES (?, ?, ?)",
                member_rows,
            ),
            (
                f"INSERT INTO {ks}.place_of_record (source, record_id, place_id) VALUES (?, ?, ?)",
                record_rows,
            ),
        ):
            self._run(execute_concurrent_with_args, statement, rows)
            done += len(rows)
            if progress is not None:
                progress(done, total)

    def _run(self, execute: Any, statement: str, rows: list[tuple[Any, ...]]) -> None:
        if not rows:
            return
        results = execute(self._session, self._prepare(statement), rows, concurrency=_CONCURRENCY)
        failed = [result for ok, result in results if not ok]
        if failed:
            raise InputError(f"{len(failed)} writes to {self.where} failed; the first: {failed[0]}")

    def _remove(
        self,
        gone_places: pl.DataFrame,
        gone_records: pl.DataFrame,
        places: pl.DataFrame,
        membership: pl.DataFrame,
    ) -> None:
        from cassandra.concurrent import execute_concurrent_with_args

        ks = self.keyspace
        self._run(
            execute_concurrent_with_args,
            f"DELETE FROM {ks}.places WHERE id = ?",
            [(i,) for i in gone_places["id"]],
        )
        self._run(
            execute_concurrent_with_args,
            f"DELETE FROM {ks}.places_by_cell WHERE cell = ? AND id = ?",
            [(c, i) for i, c in gone_places.drop_nulls("cell").select("id", "cell").iter_rows()],
        )
        # A place that stays may have lost records; a place that went loses them all.
        kept = set(places["id"].to_list())
        self._run(
            execute_concurrent_with_args,
            f"DELETE FROM {ks}.records_by_place WHERE place_id = ?",
            [(i,) for i in gone_places["id"] if i not in kept],
        )
        stale = self._stored_members().join(
            membership.select("place_id", "source", "id"),
            on=["place_id", "source", "id"],
            how="anti",
        )
        self._run(
            execute_concurrent_with_args,
            f"DELETE FROM {ks}.records_by_place "
            "WHERE place_id = ? AND source = ? AND record_id = ?",
            list(stale.select("place_id", "source", "id").iter_rows()),
        )
        self._run(
            execute_concurrent_with_args,
            f"DELETE FROM {ks}.place_of_record WHERE source = ? AND record_id = ?",
            list(gone_records.select("source", "id").iter_rows()),
        )

    def _stored_places(self) -> pl.DataFrame:
        return self._scan("places", {"id": "id", "cell": "cell"})

    def _stored_records(self) -> pl.DataFrame:
        return self._scan("place_of_record", {"source": "source", "record_id": "id"})

    def _stored_members(self) -> pl.DataFrame:
        return self._scan(
            "records_by_place", {"place_id": "place_id", "source": "source", "record_id": "id"}
        )

    def _scan(self, table: str, columns: dict[str, str]) -> pl.DataFrame:
        """Every row of one of poiflow's tables: each CQL column (key) as a frame column
        (value), text but for ``cell``."""
        rows = self._read(f"SELECT {', '.join(columns)} FROM {self.keyspace}.{table}")
        schema = {name: pl.Int64 if name == "cell" else pl.String for name in columns.values()}
        return pl.DataFrame([tuple(row) for row in rows], schema=schema, orient="row")

    # -- reading ----------------------------------------------------------------------

    def place(self, place_id: str) -> dict[str, Any] | None:
        """The golden place ``place_id`` (as ``places.parquet`` has it) with its member
        records, or None."""
        ks = self.keyspace
        row = self._one(f"SELECT place FROM {ks}.places WHERE id = ?", (place_id,))
        if row is None:
            return None
        found: dict[str, Any] = json.loads(row.place)
        members = self._read(
            f"SELECT source, record_id FROM {ks}.records_by_place WHERE place_id = ?", (place_id,)
        )
        found["member_records"] = [{"source": m.source, "id": m.record_id} for m in members]
        return found

    def place_of(self, source: str, record_id: str) -> str | None:
        """The place a record is part of, or None."""
        row = self._one(
            f"SELECT place_id FROM {self.keyspace}.place_of_record "
            "WHERE source = ? AND record_id = ?",
            (source, record_id),
        )
        return None if row is None else str(row.place_id)

    def places_near(self, lat: float, lon: float, rings: int = 1) -> list[dict[str, Any]]:
        """The places in the resolution-7 cell of a point and the ``rings`` of cells
        around it (one ring reaches about 2 km): id, name, category, lat, lon, confidence."""
        cells = (
            pl.DataFrame({"lat": [lat], "lon": [lon]})
            .select(plh3.latlng_to_cell("lat", "lon", CELL_RESOLUTION).alias("cell"))
            .select(plh3.grid_disk("cell", rings).alias("cell"))
            .explode("cell")["cell"]
            .cast(pl.Int64)
            .to_list()
        )
        return self.places_in_cells(cells)

    def places_in_cells(self, cells: Iterable[int]) -> list[dict[str, Any]]:
        """The places in some resolution-7 H3 cells."""
        statement = self._prepare(
            f"SELECT id, name, category, lat, lon, confidence FROM {self.keyspace}.places_by_cell "
            "WHERE cell = ?"
        )
        futures = [self._session.execute_async(statement, (int(c),)) for c in cells]
        found: list[dict[str, Any]] = []
        for future in futures:
            found.extend(
                {
                    "id": r.id,
                    "name": r.name,
                    "category": r.category,
                    "lat": r.lat,
                    "lon": r.lon,
                    "confidence": r.confidence,
                }
                for r in self._result(future)
            )
        return sorted(found, key=lambda p: p["id"])

    def release(self) -> dict[str, Any] | None:
        """What was published last: places, records, the run, when."""
        row = self._one(
            f"SELECT places, records, run, published_at FROM {self.keyspace}.releases "
            "WHERE name = 'current'",
            (),
        )
        return None if row is None else dict(row._asdict())

    def _prepare(self, statement: str) -> Any:
        if statement not in self._prepared:
            self._prepared[statement] = self._guard(lambda: self._session.prepare(statement))
        return self._prepared[statement]

    def _one(self, statement: str, values: tuple[Any, ...]) -> Any:
        rows = self._read(statement, values)
        return rows[0] if rows else None

    def _read(self, statement: str, values: tuple[Any, ...] = ()) -> list[Any]:
        prepared = self._prepare(statement)
        return list(self._guard(lambda: self._session.execute(prepared, values)))

    def _result(self, future: Any) -> list[Any]:
        return list(self._guard(future.result))

    def _guard(self, call: Any) -> Any:
        from cassandra import InvalidRequest, OperationTimedOut
        from cassandra.cluster import NoHostAvailable

        try:
            return call()
        except InvalidRequest as exc:
            if "does not exist" in str(exc) or "unconfigured table" in str(exc):
                raise ServerUnavailableError(
                    f"the store at {self.where} has no keyspace {self.keyspace!r} with poiflow's "
                    f"tables yet: publish into it first "
                    f"('poiflow publish store DIR --hosts {self.where} --keyspace {self.keyspace}')"
                ) from exc
            raise
        except (NoHostAvailable, OperationTimedOut) as exc:
            raise ServerUnavailableError(
                f"the store at {self.where} does not answer ({type(exc).__name__}): is it up?"
            ) from exc


_SHOWN: Final = [f.name for f in GOLDEN_PLACE_SCHEMA if f.name != "geometry"]


def _with_cells(places: pa.Table) -> pl.DataFrame:
    """Golden places with the H3 cell of each (null where it has no point)."""
    return pl.DataFrame(places).with_columns(
        pl.when(pl.col("lat").is_not_null())
        .then(plh3.latlng_to_cell("lat", "lon", CELL_RESOLUTION).cast(pl.Int64))
        .alias("cell")
    )


def _place_rows(places: pl.DataFrame) -> list[tuple[Any, ...]]:
    """The ``places`` table's rows (the place kept whole as JSON, as places.parquet has it)."""
    cells = places["cell"].to_list()
    return [
        (
            r["id"],
            _name(r),
            _category(r),
            r["lat"],
            r["lon"],
            cell,
            r["confidence"],
            r["members"],
            json.dumps(r, default=str),
        )
        for r, cell in zip(places.drop("cell").to_dicts(), cells, strict=True)
    ]


def _name(row: dict[str, Any]) -> str | None:
    return (row.get("names") or {}).get("primary")


def _category(row: dict[str, Any]) -> str | None:
    return (row.get("categories") or {}).get("primary")


def _run_of(folder: Path) -> str:
    """Which run an output is, as run.json says (its stages' keys), or its path."""
    try:
        run = json.loads((folder / "run.json").read_text("utf-8"))
        return ",".join(stage["key"] for stage in run.get("stages", [])) or str(folder)
    except (OSError, ValueError, KeyError, TypeError):
        return str(folder.resolve())
